#!/usr/bin/env python3
"""Build the quality gate's test set from what is on the machine (nobody trains on it).

    python training/gate_set.py --data ../shared/data --out /tmp/gate

Writes (images are generated, never committed):
  <out>/non_lesion/   real photos shipped inside scikit-image and scikit-learn (people, a cat,
                      coffee, a rocket, text, textures, a retina...) -> expected ``not_a_lesion``
  <out>/non_lesion_other/  a second non-lesion set, blind to every choice made for the gate: a
                      seeded sample of pictures from Debian packages that training does not use
                      (planet maps, game textures, Tux Paint's photo stamps) -> ``not_a_lesion``
  <out>/degraded/     blurred, darkened and overexposed variants of ham10000-test images
                      -> expected ``retake`` with that reason
each with a ``labels.csv`` in the data sets' format plus an ``expected`` column.
In-distribution images are ``ham10000-test`` and ``samples`` themselves (expected ``ok``).
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from skinscan_train import non_lesion, preprocess, quality  # noqa: E402

# Not sample images: masks, stereo pairs, charts and the like. Everything else in the folders counts.
SKIP = {"chessboard_GRAY", "chessboard_RGB", "motorcycle_right", "phantom", "no_time_for_that_tiny", "logo", "color"}


def photo_sources() -> list[Path]:
    import skimage
    import sklearn
    out = []
    for folder in (Path(skimage.__file__).parent / "data", Path(sklearn.__file__).parent / "datasets" / "images"):
        for p in sorted(folder.iterdir()):
            if p.suffix.lower() in (".png", ".jpg", ".jpeg") and p.stem not in SKIP:
                out.append(p)
    return out


def lfw_faces(n: int) -> list[np.ndarray]:
    """A few faces from scikit-image's LFW subset (selfie stand-ins), upscaled to phone-ish size."""
    import skimage
    arr = np.load(Path(skimage.__file__).parent / "data" / "lfw_subset.npy")[:n]
    return [np.asarray(Image.fromarray((a * 255).astype(np.uint8)).resize((400, 400), Image.BICUBIC).convert("RGB")) for a in arr]


# Debian packages for the second non-lesion set; training's packages (non_lesion.PACKAGES) are
# different ones, and nothing was tuned on this set.
OTHER_PACKAGES = ["xplanet-images", "extremetuxracer-data", "neverball-data", "tuxpaint-stamps-default"]


def other_pictures(cache: Path, n: int, seed: int) -> list[tuple[str, np.ndarray]]:
    """``n`` pictures drawn (seeded) from OTHER_PACKAGES; transparent ones (stamps) put on white,
    as a photo of the thing would have a background."""
    root, _ = non_lesion.fetch(cache, OTHER_PACKAGES)
    pics = non_lesion.pictures(root)
    keys = sorted(pics)
    pick = sorted(np.random.default_rng(seed).choice(len(keys), min(n, len(keys)), replace=False))
    out = []
    for i in pick:
        with Image.open(pics[keys[i]]) as im:
            im = im.convert("RGBA")
            bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
            im = Image.alpha_composite(bg, im).convert("RGB")
            im.thumbnail((1024, 1024))
            out.append((f"other_{i}", np.asarray(im)))
    return out


def write(out: Path, rows: list[tuple[str, np.ndarray, str]]) -> None:
    (out / "images").mkdir(parents=True, exist_ok=True)
    with open(out / "labels.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image", "malignant", "dx", "age", "sex", "site", "expected"])
        for name, img, expected in rows:
            Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8)).save(out / "images" / f"{name}.png")
            w.writerow([name, "", "", "", "", "", expected])


def build(data: Path, out: Path, n_degraded: int = 100, n_faces: int = 10, seed: int = 7,
          other_cache: Path | None = None, n_other: int = 40) -> dict:
    rows = []
    for p in photo_sources():
        img = preprocess.decode(str(p))
        rows.append((p.stem, img, "not_a_lesion"))
    for i, f in enumerate(lfw_faces(n_faces)):
        rows.append((f"lfw_face_{i}", f, "not_a_lesion"))
    write(out / "non_lesion", rows)
    other = other_pictures(other_cache or non_lesion.default_cache("nonlesion-blind"), n_other, seed)
    write(out / "non_lesion_other", [(name, img, "not_a_lesion") for name, img in other])
    test_rows = list(csv.DictReader(open(data / "ham10000-test" / "labels.csv")))
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(test_rows), n_degraded, replace=False)
    drows = []
    for i in pick:
        r = test_rows[i]
        img = preprocess.decode(str(data / "ham10000-test" / "images" / f"{r['image']}.jpg"))
        for reason, f in quality.DEGRADATIONS.items():
            drows.append((f"{r['image']}_{reason}", f(img), f"retake:{reason}"))
    write(out / "degraded", drows)
    return {"non_lesion": len(rows), "non_lesion_other": len(other), "degraded": len(drows)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--degraded", type=int, default=100, help="ham10000-test images to degrade (x3 variants)")
    a = ap.parse_args()
    print(build(a.data, a.out, a.degraded))


if __name__ == "__main__":
    main()
