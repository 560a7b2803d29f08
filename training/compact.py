#!/usr/bin/env python3
"""Store the image model's convolution kernels compactly: int8 per output channel, and 11-bit
fixed point (split into an int8 and a uint8 plane) for the kernels int8 would move most (issue 15).

    python training/compact.py --data ../shared/data --models models [--model effnet_lite0]

Run it after train.py (or finetune.py) and before mixed.py: mixed.py then fits every head,
calibration and tier on what the compact network computes, and the test figures it reports are
the compact model's. The float32 graph is compared with the compact one on HAM10000 and PAD
photos (largest logit and embedding difference), and the manifest's image model entry records
the storage format under `weights`. The network's Mahalanobis factors (the OOD and retake
Gaussians') are stored as float16 as well, checked by how much that alone moves the OOD scores
(relative). A model that is already compact is left as it is.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from skinscan_train import compact, data, export, photos, preprocess  # noqa: E402

LOGIT_LIMIT = 0.5  # a larger change than this on a check photo means the compaction went wrong


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--models", required=True, type=Path, help="models folder: the model file and manifest are rewritten")
    ap.add_argument("--model", default="effnet_lite0")
    ap.add_argument("--check-photos", type=int, default=16, help="photos of each kind to compare the graphs on")
    ap.add_argument("--choose-photos", type=int, default=48, help="validation photos that choose the finer kernels")
    ap.add_argument("--seed", type=int, default=20261126, help="train.py's seed: the same HAM10000 split")
    a = ap.parse_args()
    man_path = a.models / "manifest.json"
    man = json.loads(man_path.read_text())
    entry = next(e for e in man["image_models"] if e["id"] == a.model)
    path = a.models / entry["file"]
    if not compact.kernels(path):
        print(f"{path.name}: already compact ({entry.get('weights', {}).get('format')}); nothing to do")
        return
    with tempfile.TemporaryDirectory() as tmp:
        f32, kern, out = (Path(tmp) / n for n in ("f32.onnx", "kernels.onnx", "compact.onnx"))
        shutil.copy(path, f32)
        # Which kernels get the finer storage: measured on HAM10000 validation photos (train.py's lesion
        # split; the network never trained on them), never on a test set.
        _, val = data.split_by_group(data.read_set(a.data, "ham10000"), 0.2, a.seed)
        pick = np.random.default_rng(1).choice(len(val), a.choose_photos, replace=False)
        xv = np.concatenate([preprocess.preprocess(str(val[i].path)) for i in pick])
        fine, err = compact.choose_fine(f32, xv)
        rec = compact.compact(f32, kern, fine, factors=False)
        rec["float16_factors"] = compact.compact(kern, out)["float16_factors"]
        rec.update(err, chosen_on=f"{a.choose_photos} HAM10000 validation photos",
                   **{f"int{compact.FINE_BITS}_budget": compact.FINE_BUDGET})
        ham = data.read_set(a.data, "ham10000")[: a.check_photos]
        pad = [p for p in photos.read_pad(a.data) if p.split == "train"][: a.check_photos]
        x = np.concatenate([preprocess.preprocess(str(p.path)) for p in ham + pad])
        diff = compact.compare(f32, out, x, relative=())
        if diff["logits"] > LOGIT_LIMIT:
            raise SystemExit(f"compact graph's logits differ by {diff['logits']:.3f} (> {LOGIT_LIMIT}); not written")
        # The factors alone (the kernels move the OOD statistics themselves; mixed.py refits on them).
        fdiff = compact.compare(kern, out, x, outputs=(), relative=("ood", "ood_retake"))
        if max(fdiff.values(), default=0.0) > compact.FACTOR_LIMIT:
            raise SystemExit(f"float16 factors move the OOD scores by {fdiff} (> {compact.FACTOR_LIMIT} relative); not written")
        shutil.copy(out, path)
        rec.update({"float32_bytes": f32.stat().st_size, "max_abs_diff_vs_float32": diff,
                    "factors_max_relative_ood_change": fdiff,
                    "checked_on": f"{len(ham)} HAM10000 training photos and {len(pad)} PAD-UFES-20 train photos"})
    entry.update(export.file_entry(path))
    entry["weights"] = rec
    man_path.write_text(json.dumps(man, indent=1) + "\n")
    print(f"{path.name}: {rec['float32_bytes']} -> {entry['bytes']} bytes; {rec}")


if __name__ == "__main__":
    main()
