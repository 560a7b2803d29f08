"""Photos that are not of a skin lesion, for the gate's non-lesion head (issue 12, issue 6's figure).

The gate's test set (`gate_set.py`) uses the photos shipped inside scikit-image and
scikit-learn, and LFW faces. None of those are used here: training draws on other free photo and
texture collections that Debian packages (wallpapers: landscapes, plants, water, sky, wood,
abstract art; GIMP's texture patterns: stone, marble, bark, leather, fabric, paper...), plus
Matplotlib's sample photos; and, since those hold no people, animals or everyday objects (issue 20:
a cat, a coffee cup and an astronaut passed the gate), the photos of GCompris's activities (animals,
monuments, tools, food, paintings: WebP images packed in Qt resource files, cut out here) and
OpenCV's sample pictures. They are fetched with `apt-get download` (no root needed) into a cache
outside the repository and unpacked with `dpkg -x`; nothing is installed and nothing is shipped.

Each source picture gives several views (random crops at several scales, flips, a softened or
dimmed copy), so that a close crop of a texture or a whole scene both count. Views of one picture
share its ``group``: cross-validation splits by picture, never by view.
"""
from __future__ import annotations

import hashlib
import os
import re
import struct
import subprocess
from pathlib import Path

import numpy as np

from .photos import Photo

# Debian (bookworm) packages whose pictures are the non-lesion training photos.
PACKAGES = ["plasma-workspace-wallpapers", "mate-backgrounds", "gnome-backgrounds", "lomiri-wallpapers",
            "desktop-base", "gimp-data", "gcompris-qt-data", "opencv-doc"]
# Unpacked paths that are not photos: OpenCV's manual (diagrams and screenshots; its examples stay).
SKIP_DIRS = ("usr/share/doc/opencv-doc/opencv4",)
RCC_IMAGES = "rcc-images"  # where the pictures cut out of Qt resource files go, under the unpacked root
RASTER = (".jpg", ".jpeg", ".png", ".webp")
MIN_SIDE = 128      # smaller pictures are icons and widgets, not photos
VIEW_SIDE = 448     # views are written at most this long side (a phone photo, downscaled)


def default_cache(name: str) -> Path:
    """``$SKINSCAN_CACHE/<name>`` (default ``~/.cache/skinscan/<name>``), outside the clone."""
    return Path(os.environ.get("SKINSCAN_CACHE") or Path.home() / ".cache" / "skinscan") / name


def fetch(cache: Path, packages: list[str] = PACKAGES, log=print) -> tuple[Path, dict]:
    """Download and unpack ``packages`` under ``cache`` (once); returns the unpacked root and
    each package's version (for the manifest's provenance)."""
    debs, root = cache / "deb", cache / "root"
    debs.mkdir(parents=True, exist_ok=True)
    have = {p.name.split("_")[0]: p for p in debs.glob("*.deb")}
    missing = [p for p in packages if p not in have]
    if missing:
        log(f"non-lesion photos: apt-get download {' '.join(missing)}")
        download = lambda: subprocess.run(["apt-get", "download", *missing], cwd=debs, capture_output=True, text=True)
        r = download()
        if r.returncode != 0:
            # A fresh machine may never have read the package lists (build.sh only does when it
            # installs Chromium): read them once, as root or through sudo, and try again.
            root_cmd = [] if os.geteuid() == 0 else ["sudo", "-n"]
            log("non-lesion photos: apt-get update, then download again")
            subprocess.run(root_cmd + ["apt-get", "update"], capture_output=True)
            r = download()
        if r.returncode != 0:
            raise RuntimeError(f"apt-get download {' '.join(missing)} failed:\n{r.stderr.strip()}")
        have = {p.name.split("_")[0]: p for p in debs.glob("*.deb")}
    versions = {}
    for p in packages:
        deb = have[p]
        versions[p] = deb.name.split("_")[1].replace("%3a", ":")
        stamp = root / f".{deb.name}.done"
        if not stamp.exists():
            root.mkdir(parents=True, exist_ok=True)
            subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True)
            unpack_qt_resources(root)
            stamp.touch()
    return root, versions


def unpack_qt_resources(root: Path) -> int:
    """The WebP pictures inside the Qt resource files (``*.rcc``) under ``root``, written as PNGs
    (transparent ones put on white, as a picture on a page is seen) under ``root/RCC_IMAGES``.
    Qt stores WebP uncompressed, so each is a RIFF chunk found by its header. Returns how many."""
    from PIL import Image
    import io
    out = root / RCC_IMAGES
    n = 0
    for rcc in sorted(root.rglob("*.rcc")):
        raw = rcc.read_bytes()
        for m in re.finditer(rb"RIFF(....)WEBP", raw, re.S):
            size = struct.unpack("<I", m.group(1))[0]
            try:
                with Image.open(io.BytesIO(raw[m.start():m.start() + 8 + size])) as im:
                    im.load()
                    if min(im.size) < MIN_SIDE:
                        continue
                    im = im.convert("RGBA")
                    page = Image.new("RGB", im.size, (255, 255, 255))
                    page.paste(im, mask=im.split()[3])
            except Exception:
                continue
            out.mkdir(exist_ok=True)
            # ".o<offset>": no "-<digits>" before the suffix, which _group reads as a size.
            page.save(out / f"{rcc.stem}.o{m.start()}.png")
            n += 1
    return n


def read_gimp_pattern(path: Path) -> np.ndarray:
    """A GIMP ``.pat`` pattern as an RGB uint8 array (format: a big-endian header of header size,
    version, width, height, bytes per pixel, ``GPAT``, name; then the pixels)."""
    raw = path.read_bytes()
    header, _version, w, h, bpp = struct.unpack(">5I", raw[:20])
    if raw[20:24] != b"GPAT" or bpp not in (1, 2, 3, 4):
        raise ValueError(f"{path}: not a GIMP pattern")
    px = np.frombuffer(raw[header:header + w * h * bpp], np.uint8).reshape(h, w, bpp)
    rgb = px[..., :1].repeat(3, 2) if bpp <= 2 else px[..., :3]
    return np.ascontiguousarray(rgb)


def _group(path: Path, root: Path) -> str:
    """One name per picture: a wallpaper's sizes, and its light and dark variants, are one picture."""
    rel = path.relative_to(root).as_posix()
    m = re.match(r"usr/share/wallpapers/([^/]+)/", rel)
    if m:
        return "wallpapers/" + m.group(1)
    rel = re.sub(r"/\d+x\d+/", "/", rel)                       # an icon's sizes
    return re.sub(r"([-_]\d+(x\d+)?)?(-[dl])?\.\w+$", "", rel)   # sizes and light/dark variants


def pictures(root: Path, extra: list[Path] = ()) -> dict[str, Path]:
    """The source pictures under the unpacked ``root`` (and ``extra`` files): per group, its
    largest file. Patterns (``.pat``) are included; SVGs, icons and boot-screen widgets are not."""
    from PIL import Image
    best: dict[str, tuple[int, Path]] = {}
    files = sorted(p for p in root.rglob("*") if p.is_file() and (p.suffix.lower() in RASTER or p.suffix == ".pat")
                   and not p.relative_to(root).as_posix().startswith(SKIP_DIRS))
    for p in list(files) + list(extra):
        try:
            if p.suffix == ".pat":
                h, w = read_gimp_pattern(p).shape[:2]
            else:
                with Image.open(p) as im:
                    w, h = im.size
        except Exception:
            continue
        side = min(w, h)
        if p.suffix != ".pat" and side < MIN_SIDE:
            continue
        g = _group(p, root) if p.is_relative_to(root) else "extra/" + p.stem
        if g not in best or w * h > best[g][0]:
            best[g] = (w * h, p)
    return {g: p for g, (_, p) in sorted(best.items())}


def load(path: Path) -> np.ndarray:
    """A picture as RGB uint8; a pattern tiled to at least ``VIEW_SIDE`` square (as it would
    fill a photo of that surface)."""
    from PIL import Image
    if path.suffix == ".pat":
        px = read_gimp_pattern(path)
        reps = (-(-VIEW_SIDE // px.shape[0]), -(-VIEW_SIDE // px.shape[1]), 1)
        return np.tile(px, reps)
    with Image.open(path) as im:
        im = im.convert("RGB")
        im.thumbnail((2048, 2048))
        return np.asarray(im)


def views(rgb: np.ndarray, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``n`` views of one picture: the whole picture, then random square-ish crops from a third
    of the short side up, each maybe flipped, softened, made grey or dimmed; at most ``VIEW_SIDE`` px."""
    from PIL import Image, ImageFilter
    h, w, _ = rgb.shape
    out = []
    for i in range(n):
        if i == 0:
            crop = rgb
        else:
            side = int(min(h, w) * rng.uniform(0.33, 1.0))
            cw = min(w, int(side * rng.uniform(0.8, 1.25)))
            y0, x0 = rng.integers(0, h - side + 1), rng.integers(0, w - cw + 1)
            crop = rgb[y0:y0 + side, x0:x0 + cw]
        im = Image.fromarray(np.ascontiguousarray(crop))
        im.thumbnail((VIEW_SIDE, VIEW_SIDE), Image.BILINEAR)
        if i and rng.random() < 0.5:
            im = im.transpose(Image.FLIP_LEFT_RIGHT)
        if i and rng.random() < 0.25:
            im = im.filter(ImageFilter.GaussianBlur(float(rng.uniform(1, 4))))
        if i and rng.random() < 0.2:  # black-and-white: scans, old photos, microscopy
            im = im.convert("L").convert("RGB")
        a = np.asarray(im).astype(np.float32)
        if i and rng.random() < 0.25:
            a = a * rng.uniform(0.35, 0.8)
        out.append(np.clip(np.rint(a), 0, 255).astype(np.uint8))
    return out


def matplotlib_photos() -> list[Path]:
    import matplotlib
    d = Path(matplotlib.__file__).parent / "mpl-data" / "sample_data"
    return sorted(p for p in d.iterdir() if p.suffix.lower() in RASTER)


def build(cache: Path, n_views: int, seed: int, max_pictures: int | None = None, log=print) -> tuple[list[Photo], dict]:
    """The non-lesion training photos: ``n_views`` views of every source picture, written as
    PNGs under ``cache/views`` (once), as :class:`Photo` items grouped by picture. Returns them
    and a provenance record."""
    from PIL import Image
    root, versions = fetch(cache, log=log)
    pics = pictures(root, matplotlib_photos())
    if max_pictures is not None:
        keys = sorted(pics)[:: max(1, len(pics) // max_pictures)][:max_pictures]
        pics = {k: pics[k] for k in keys}
    # A view's crops are seeded by its picture's place in the list: another list, other views.
    digest = hashlib.sha256("\n".join(pics).encode()).hexdigest()[:8]
    out_dir = cache / f"views-{n_views}-{seed}-{digest}"
    out_dir.mkdir(parents=True, exist_ok=True)
    items = []
    for gi, (g, p) in enumerate(pics.items()):
        name = re.sub(r"[^A-Za-z0-9]+", "_", g).strip("_")
        paths = [out_dir / f"{name}__{i}.png" for i in range(n_views)]
        if not all(q.exists() for q in paths):
            for q, v in zip(paths, views(load(p), n_views, np.random.default_rng(seed * 1009 + gi))):
                Image.fromarray(v).save(q)
        items += [Photo(image=q.stem, path=q, dx="", malignant=0, age=None, sex=None, site=None, group=g, source="non_lesion", kind="non_lesion",
                        split="train") for q in paths]
    prov = {"debian_packages": versions, "matplotlib_sample_data": [p.name for p in matplotlib_photos()],
            "pictures": len(pics), "views_per_picture": n_views,
            "patterns": sum(p.suffix == ".pat" for p in pics.values())}
    log(f"non-lesion photos: {len(pics)} pictures ({prov['patterns']} texture patterns), {len(items)} views")
    return items, prov
