#!/usr/bin/env python3
"""Assemble the fetched training sources (issue 20) in the shared data layout, reproducibly.

    python training/sources.py --mirror /work/.mirror --out $SKINSCAN_CACHE/data
    python training/sources.py --mirror DIR --out DIR --smoke      # CI: 40 images per source

`--mirror` holds the pinned public repositories, either as the search tool's `fetch` leaves them
(`DIR/<owner>+<name>/repo`, a bare git directory) or as plain clones (`DIR/<name>`). Every file is
read from the pinned commit with `git cat-file`, never from a work tree, so a later commit of a
repository cannot change what is written. Nothing here is committed to the SkinScan repository.

What it writes, per source (`milk10k`, `fitzpatrick17k`, `sd198`): `images/<image>.jpg` (the
file's own bytes) and `labels.csv` with the shared columns (`image`, `malignant`, `dx`, `age`,
`sex`, `site`) plus `photo_type`, `group`, `source`, `skin_type`, `split`, `condition` (the
source's own label) and `neoplastic`. Before any split:
  * exact duplicates (same bytes) and near duplicates (perceptual hash within DUP_BITS bits and
    grey thumbnails correlated at least THUMB_CORR: resized, recompressed or colour-corrected copies) are
    removed within each source and across the fetched sources (the first in SOURCES order, then
    by image id, is kept);
  * a fetched image that near-duplicates any photo of the shared data (`../shared/data`), by the
    looser THUMB_CORR_SHARED (a few different spots go too; no copy of a test photo may stay), is
    removed: the shared copy wins, so no test photo of ham10000-test, PAD `test` or derm7pt
    `valid` can come back through another archive.
Then each group (MILK10k: `lesion_id`; Fitzpatrick17k and SD-198: the image, having no patient
id) is put in `split` = `test` when the first byte of SHA-256("skinscan-split:" + group) is below
TEST_FRAC * 256, else `train`. The model card reads `summary.json` for its counts.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from skinscan_train.sources import (  # noqa: E402
    DUP_BITS, PINS, SOURCES, THUMB, THUMB_CORR, THUMB_CORR_SHARED, TEST_FRAC, label_fitzpatrick, label_milk, label_sd198, split_of,
)


class Repo:
    """One pinned repository read through ``git cat-file`` (no work tree needed)."""

    def __init__(self, mirror: Path, slug: str, commit: str):
        owner, name = slug.split("/")
        for cand in (mirror / f"{owner}+{name}" / "repo", mirror / name, mirror / f"{owner}+{name}"):
            if (cand / "HEAD").exists() or (cand / ".git").exists():
                self.git = cand
                break
        else:
            raise SystemExit(f"{slug} not found under {mirror}: fetch it (github:{slug}) or git clone it there")
        self.commit = commit
        r = subprocess.run(["git", "-C", str(self.git), "cat-file", "-t", commit], capture_output=True, text=True)
        if r.stdout.strip() != "commit":
            raise SystemExit(f"{slug}: pinned commit {commit} is not in {self.git}")

    def ls(self, under: str) -> list[str]:
        r = subprocess.run(["git", "-C", str(self.git), "ls-tree", "-r", "--name-only", self.commit, under],
                           capture_output=True, text=True, check=True)
        return [p for p in r.stdout.splitlines() if p.lower().endswith((".jpg", ".jpeg", ".png"))]

    def text(self, path: str) -> str:
        return self.read([path])[path].decode("utf-8")

    def read(self, paths: list[str]) -> dict[str, bytes]:
        """Blobs of ``paths`` at the pinned commit, in one ``git cat-file --batch``."""
        req = "".join(f"{self.commit}:{p}\n" for p in paths).encode()
        out = subprocess.run(["git", "-C", str(self.git), "cat-file", "--batch"], input=req,
                             capture_output=True, check=True).stdout
        blobs, pos = {}, 0
        for p in paths:
            nl = out.index(b"\n", pos)
            head = out[pos:nl].split()
            if head[1] == b"missing":
                raise SystemExit(f"{p} missing at {self.commit}")
            size = int(head[2])
            blobs[p] = out[nl + 1: nl + 1 + size]
            pos = nl + 1 + size + 1
        return blobs


def phash(data: bytes) -> np.ndarray:
    """An image's fingerprint: its 64-bit DCT perceptual hash (64 values 0/1) followed by a
    THUMB x THUMB grey thumbnail (0-255). The hash finds candidates; the thumbnail's correlation
    confirms them: two smooth photos of different spots can share a hash, seldom their layout,
    while a copy keeps its layout through resizing and colour correction."""
    from PIL import Image
    from scipy.fft import dctn
    im = Image.open(io.BytesIO(data)).convert("L")
    d = dctn(np.asarray(im.resize((32, 32), Image.BILINEAR), np.float64), norm="ortho")[:8, :8].ravel()
    thumb = np.asarray(im.resize((THUMB, THUMB), Image.BILINEAR), np.uint8).ravel()
    return np.concatenate([(d > np.median(d[1:])).astype(np.uint8), thumb])


def phash_file(path: str) -> np.ndarray:
    return phash(Path(path).read_bytes())


def _corr(x: np.ndarray, y: np.ndarray) -> float:
    x, y = x.astype(np.float64) - x.mean(), y.astype(np.float64) - y.mean()
    return float((x * y).sum() / max(np.sqrt((x * x).sum() * (y * y).sum()), 1e-9))


def near_pairs(a: np.ndarray, b: np.ndarray, bits: int, same: bool, corr: float) -> list[tuple[int, int]]:
    """Index pairs (i in a, j in b) of fingerprints whose hashes differ in at most ``bits`` bits
    and whose grey thumbnails correlate at least ``corr``."""
    sa, sb = a[:, :64].astype(np.float32) * 2 - 1, b[:, :64].astype(np.float32) * 2 - 1
    out = []
    for s in range(0, len(sa), 2048):
        ham = (64 - sa[s:s + 2048] @ sb.T) / 2
        i, j = np.nonzero(ham <= bits)
        for ii, jj in zip(i + s, j):
            if same and ii >= jj:
                continue
            if _corr(a[ii, 64:], b[jj, 64:]) >= corr:
                out.append((int(ii), int(jj)))
    return out


def shared_hashes(data: Path, workers: int) -> np.ndarray:
    paths = sorted(str(p) for p in data.glob("*/images/*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    with ProcessPoolExecutor(workers) as ex:
        return np.stack(list(ex.map(phash_file, paths, chunksize=64))) if paths else np.zeros((0, 64 + THUMB * THUMB), np.uint8)


def collect(a, log) -> list[dict]:
    """Every fetched image with its labels, bytes still in the repositories."""
    rows = []
    for name, fn in (("milk10k", label_milk), ("fitzpatrick17k", label_fitzpatrick), ("sd198", label_sd198)):
        pin = PINS[name]
        repos = {slug: Repo(a.mirror, slug, commit) for slug, commit in pin["repos"].items()}
        got = fn(repos)
        if a.smoke:
            got = sorted(got, key=lambda r: hashlib.sha256(r["image"].encode()).hexdigest())[:40]
        log(f"{name}: {len(got)} labelled images")
        rows += got
    return rows


def dedup(rows: list[dict], blobs: list[bytes], shared: np.ndarray, log) -> list[dict]:
    """Mark each row's ``dup_of`` (kept rows: ''), exact and near, in SOURCES order."""
    order = sorted(range(len(rows)), key=lambda i: (SOURCES.index(rows[i]["source"]), rows[i]["image"]))
    with ProcessPoolExecutor(2) as ex:
        h = np.stack(list(ex.map(phash, blobs, chunksize=64)))
    sha = [hashlib.sha256(b).hexdigest() for b in blobs]
    drop: dict[int, str] = {}
    seen: dict[str, int] = {}
    for i in order:  # exact
        if sha[i] in seen:
            drop[i] = rows[seen[sha[i]]]["image"]
        else:
            seen[sha[i]] = i
    rank = {i: r for r, i in enumerate(order)}
    for i, j in near_pairs(h, h, DUP_BITS, True, THUMB_CORR):  # near, within and across fetched sources
        keep, lose = (i, j) if rank[i] < rank[j] else (j, i)
        if lose not in drop and keep not in drop:
            drop[lose] = rows[keep]["image"]
    for i, _ in near_pairs(h, shared, DUP_BITS, False, THUMB_CORR_SHARED):
        drop.setdefault(i, "shared-data")
    for i, r in enumerate(rows):
        r["dup_of"] = drop.get(i, "")
    log(f"duplicates: {sum(1 for v in drop.values() if v != 'shared-data')} within/across fetched sources, "
        f"{sum(1 for v in drop.values() if v == 'shared-data')} of shared photos")
    return rows


COLUMNS = ["image", "malignant", "dx", "age", "sex", "site", "photo_type", "group", "source", "skin_type",
           "split", "condition", "neoplastic", "repo", "path"]


def write(out: Path, rows: list[dict], blobs: list[bytes], log) -> dict:
    summary = {"pins": PINS, "dup_bits": DUP_BITS, "test_frac": TEST_FRAC, "sources": {}}
    for name in SOURCES:
        base = out / name
        (base / "images").mkdir(parents=True, exist_ok=True)
        kept = [(r, b) for r, b in zip(rows, blobs) if r["source"] == name and not r["dup_of"]]
        for r, b in kept:
            r["split"] = split_of(r["group"])
            (base / "images" / f"{r['image']}.jpg").write_bytes(b)
        with open(base / "labels.csv", "w", newline="") as f:
            w = csv.DictWriter(f, COLUMNS, extrasaction="ignore")
            w.writeheader()
            for r, _ in kept:
                w.writerow(r)
        dropped = [r for r in rows if r["source"] == name and r["dup_of"]]
        s = {"written": len(kept), "duplicates_removed": len(dropped),
             "of_shared": sum(r["dup_of"] == "shared-data" for r in dropped)}
        for split in ("train", "test"):
            part = [r for r, _ in kept if r["split"] == split]
            s[split] = {"images": len(part), "groups": len({r["group"] for r in part}),
                        "malignant": sum(r["malignant"] == "1" for r in part),
                        "by_photo_type": {t: sum(r["photo_type"] == t for r in part) for t in ("clinical", "dermoscopic")}}
        summary["sources"][name] = s
        log(f"{name}: {s}")
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mirror", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[1] / ".." / "shared" / "data")
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args()
    log = lambda m: print(m, flush=True)
    rows = collect(a, log)
    blobs = []
    for (slug, commit), group in _by_repo(rows).items():
        got = Repo(a.mirror, slug, commit).read([r["path"] for r in group])
        for r in group:
            r["_blob"] = got[r["path"]]
    blobs = [r.pop("_blob") for r in rows]
    shared = shared_hashes(a.shared, 2) if not a.smoke else np.zeros((0, 64 + THUMB * THUMB), np.uint8)
    log(f"hashed {len(shared)} shared photos")
    write(a.out, dedup(rows, blobs, shared, log), blobs, log)


def _by_repo(rows):
    out = {}
    for r in rows:
        out.setdefault((r["repo"], PINS[r["source"]]["repos"][r["repo"]]), []).append(r)
    return out


if __name__ == "__main__":
    main()
