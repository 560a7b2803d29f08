"""training/sources.py (issue 20): duplicates found before the split, and a split fixed by the group."""
import io
import sys

import numpy as np
from PIL import Image

from conftest import ROOT

sys.path.insert(0, str(ROOT / "training"))
import sources as assemble  # noqa: E402
from skinscan_train import sources  # noqa: E402


def jpeg(img: Image.Image, q: int = 90) -> bytes:
    b = io.BytesIO()
    img.save(b, "JPEG", quality=q)
    return b.getvalue()


def test_a_resized_recoloured_copy_is_a_duplicate_and_another_photo_of_the_same_look_is_not(data_dir):
    shared = sorted((data_dir / "ham10000-test" / "images").glob("*.jpg"))[:40]
    fp_shared = np.stack([assemble.phash_file(str(p)) for p in shared])
    orig = Image.open(shared[3]).convert("RGB")
    copy = orig.resize((150, 150), Image.BILINEAR)
    copy = Image.fromarray(np.clip(np.asarray(copy, np.float64) * [1.08, 0.95, 1.0], 0, 255).astype(np.uint8))
    other = Image.open(sorted((data_dir / "ham10000" / "images").glob("*.jpg"))[0]).convert("RGB")
    fp = np.stack([assemble.phash(jpeg(copy, 70)), assemble.phash(jpeg(other))])
    pairs = assemble.near_pairs(fp, fp_shared, sources.DUP_BITS, False, sources.THUMB_CORR_SHARED)
    assert (0, 3) in pairs
    assert not [p for p in pairs if p[0] == 1]


def test_split_depends_on_the_group_alone_and_holds_out_about_a_fifth():
    groups = [f"IL_{i:07d}" for i in range(4000)]
    splits = [sources.split_of(g) for g in groups]
    assert splits == [sources.split_of(g) for g in groups]
    share = splits.count("test") / len(splits)
    assert abs(share - sources.TEST_FRAC) < 0.03, share


def test_label_maps_keep_malignancy_and_the_seven_classes():
    from skinscan_train.data import CLASSES
    assert set(v for v in sources.MILK_DX.values() if v) <= set(CLASSES)
    assert set(v for v in sources.FITZ_DX.values() if v) <= set(CLASSES)
    assert all(dx in CLASSES or dx == "" for dx, _ in sources.SD_NEOPLASM.values())
    assert sources.SD_NEOPLASM["Malignant_Melanoma"] == ("mel", 1) and sources.SD_NEOPLASM["Cutaneous_Horn"][1] == -1
