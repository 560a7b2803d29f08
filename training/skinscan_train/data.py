"""Data sets, label vocabularies and leakage-free splits.

HAM10000 is split by ``lesion_id`` (never by image); ``ham10000-test`` is read only by the report.
"""
from __future__ import annotations

import csv
import hashlib
import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import preprocess

CLASSES = ["nv", "mel", "bkl", "bcc", "akiec", "vasc", "df"]
CLASS_NAMES = {
    "nv": "Melanocytic nevus",
    "mel": "Melanoma",
    "bkl": "Benign keratosis",
    "bcc": "Basal cell carcinoma",
    "akiec": "Actinic keratosis / intraepithelial carcinoma",
    "vasc": "Vascular lesion",
    "df": "Dermatofibroma",
}
MALIGNANT = ["mel", "bcc", "akiec"]
# The data README's general site vocabulary, shared by every source and by the page.
SITES = [
    "head/neck", "upper extremity", "lower extremity", "anterior torso", "posterior torso",
    "lateral torso", "torso", "palms/soles", "oral/genital",
]
SEXES = ["female", "male"]


@dataclass
class Item:
    image: str
    path: Path
    dx: str
    malignant: int
    age: float | None
    sex: str | None
    site: str | None
    group: str  # lesion (HAM) or image id: the unit that must not straddle splits
    source: str


def _num(v):
    try:
        return float(v) if v not in ("", None) else None
    except ValueError:
        return None


def read_set(root: Path, name: str) -> list[Item]:
    """Read ``<root>/<name>/labels.csv``; HAM10000 prefers the sharper ``images-224`` copy."""
    base = root / name
    out = []
    with open(base / "labels.csv", newline="") as f:
        for r in csv.DictReader(f):
            p = base / "images" / f"{r['image']}.jpg"
            sharp = base / "images-224" / f"{r['image']}.jpg"
            if sharp.exists():
                p = sharp
            dx = r["dx"]
            if dx not in CLASSES:
                continue
            out.append(Item(
                image=r["image"], path=p, dx=dx, malignant=int(r["malignant"]),
                age=_num(r.get("age")), sex=r.get("sex") or None, site=r.get("site") or None,
                group=r.get("lesion_id") or r["image"], source=name,
            ))
    return out


def split_by_group(items: list[Item], val_frac: float, seed: int) -> tuple[list[Item], list[Item]]:
    """Group-wise split, stratified by each group's diagnosis, so no lesion is on both sides."""
    groups: dict[str, list[Item]] = defaultdict(list)
    for it in items:
        groups[it.group].append(it)
    by_dx: dict[str, list[str]] = defaultdict(list)
    for g, its in sorted(groups.items()):
        by_dx[its[0].dx].append(g)
    rng = random.Random(seed)
    val_groups = set()
    for dx in sorted(by_dx):
        gs = by_dx[dx]
        rng.shuffle(gs)
        val_groups.update(gs[: int(round(len(gs) * val_frac))])
    train = [it for it in items if it.group not in val_groups]
    val = [it for it in items if it.group in val_groups]
    return train, val


def split_digest(splits: dict[str, list[Item]]) -> dict[str, str]:
    """SHA-256 of each split's sorted image ids: finetune.py records it in the pack, train.py
    refuses a checkpoint whose split differs from its own (its validation images would not be
    unseen)."""
    return {name: hashlib.sha256("\n".join(sorted(it.image for it in items)).encode()).hexdigest()
            for name, items in splits.items()}


# Images per diagnosis in a --smoke run (train.py and finetune.py pack take the same subset).
SMOKE_PER_CLASS = {"train": 16, "val": 8, "test": 6}


def smoke_subset(items: list[Item], per_class: int, seed: int) -> list[Item]:
    """Up to ``per_class`` items of each diagnosis, drawn with ``seed``."""
    rng = random.Random(seed)
    out = []
    for c in CLASSES:
        its = [it for it in items if it.dx == c]
        rng.shuffle(its)
        out += its[:per_class]
    return out


@dataclass
class Split:
    """The training data: ``train`` (HAM10000 train lesions + ISIC 2017) and ``val`` (HAM10000)."""
    train: list[Item]
    val: list[Item]
    n_ham_train: int  # HAM10000 training images before any --smoke subset
    read: list[Item]  # every item read (HAM10000 + ISIC 2017), for leak checks

    def digest(self) -> dict[str, str]:
        return split_digest({"train": self.train, "val": self.val})


def make_split(root: Path, val_frac: float, seed: int, smoke: bool) -> Split:
    """The one train/validation split of train.py and finetune.py pack: HAM10000 by lesion into
    train/validation, ISIC 2017 joins training; ``smoke`` takes SMOKE_PER_CLASS per diagnosis.
    The test set is not read here (finetune.py never packs it)."""
    ham = read_set(root, "ham10000")
    i17 = read_set(root, "isic2017-train")
    ham_tr, ham_val = split_by_group(ham, val_frac, seed)
    assert not ({it.group for it in ham_tr} & {it.group for it in ham_val}), "lesion leaked across splits"
    train = ham_tr + i17
    if smoke:
        n = SMOKE_PER_CLASS
        train, ham_val = smoke_subset(train, n["train"], seed), smoke_subset(ham_val, n["val"], seed)
    return Split(train, ham_val, len(ham_tr), ham + i17)


def group_folds(items: list[Item], k: int, seed: int) -> np.ndarray:
    """Fold index per item, whole groups per fold (for out-of-fold stacking)."""
    groups = sorted({it.group for it in items})
    rng = random.Random(seed)
    rng.shuffle(groups)
    fold_of = {g: i % k for i, g in enumerate(groups)}
    return np.array([fold_of[it.group] for it in items])


def labels(items: list[Item]) -> tuple[np.ndarray, np.ndarray]:
    y7 = np.array([CLASSES.index(it.dx) for it in items], dtype=np.int64)
    ym = np.array([it.malignant for it in items], dtype=np.int64)
    return y7, ym


def load_u8(items: list[Item], cache: Path, log=print) -> np.ndarray:
    """Canonical 224x224 uint8 images (decode + squash resize), cached as .npy for resume."""
    if cache.exists():
        arr = np.load(cache, mmap_mode="r")
        if arr.shape[0] == len(items):
            return np.asarray(arr)
    arr = np.zeros((len(items), preprocess.SIZE, preprocess.SIZE, 3), np.uint8)
    for i, it in enumerate(items):
        arr[i] = np.clip(np.rint(preprocess.resize(preprocess.decode(str(it.path)))), 0, 255)
        if i % 2000 == 0:
            log(f"  decoded {i}/{len(items)} -> {cache.name}")
    tmp = cache.with_suffix(".tmp.npy")
    np.save(tmp, arr)
    tmp.rename(cache)
    return arr
