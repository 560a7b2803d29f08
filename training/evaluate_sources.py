#!/usr/bin/env python3
"""The shipped pipeline on every untouched test split (issue 20), through `skinscan evaluate`.

    cargo build --release --bin skinscan
    python training/gate_set.py --data ../shared/data --out /tmp/gate
    python training/evaluate_sources.py --bin $CARGO_TARGET_DIR/release/skinscan --models models \\
        --data ../shared/data --sources $SKINSCAN_CACHE/data --gate /tmp/gate --out models/report/sources.json

Each split is classified by the Rust pipeline exactly as the page does (photo only unless a row
says "with answers": age, sex, site and the six answers of PAD's patients), one `evaluate` run per
image folder, and scored here from its `--predictions`: ROC-AUC, the share of malignant photos
in "low", the share of benign photos in "low", the gate's verdicts and the photo type. Nothing
reads these figures to choose anything: every cut was fixed by training/mixed.py before.
"""
from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from skinscan_train import card, metrics  # noqa: E402

PHOTO_ONLY = ["image", "malignant", "dx", "photo_type"]
ANSWERS = ["age", "sex", "site", "itch", "grew", "hurt", "changed", "bleed", "elevation", "diameter_1"]


def rows_of(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def run(binary: Path, models: Path, images: Path, rows: list[dict], cols: list[str], tmp: Path, name: str) -> dict:
    """`skinscan evaluate` on ``rows`` (only ``cols`` kept); image -> prediction row."""
    labels, preds = tmp / f"{name}.csv", tmp / f"{name}.pred.csv"
    with open(labels, "w", newline="") as f:
        w = csv.DictWriter(f, cols, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({c: r.get(c, "") for c in cols})
    t0 = time.time()
    subprocess.run([str(binary), "evaluate", "--images", str(images), "--labels", str(labels), "--json",
                    "--predictions", str(preds), "--models", str(models)], check=True, stdout=subprocess.DEVNULL)
    print(f"  {name}: {len(rows)} photos in {time.time() - t0:.0f} s", flush=True)
    return {r["image"]: r for r in rows_of(preds)}


def score(rows: list[dict], pred: dict, kind: str | None) -> dict:
    """The issue's figures for the labelled rows that were classified."""
    got = [(r, pred[r["image"]]) for r in rows if r["image"] in pred]
    lab = [(r, p) for r, p in got if r.get("malignant") in ("0", "1")]
    y = np.array([int(r["malignant"]) for r, _ in lab])
    p = np.array([float(q["malignant_probability"]) for _, q in lab])
    low = np.array([q["risk_tier"] == "low" for _, q in lab])
    verdict = [q["quality"] for _, q in got]
    out = {"photos": len(got), "failed": len(rows) - len(got), "malignant": int(y.sum()), "benign": int((y == 0).sum()),
           "roc_auc": metrics.auc(y, p) if len(set(y)) == 2 else None,
           "malignant_in_low": float((low & (y == 1)).sum() / max(y.sum(), 1)) if len(y) else None,
           "benign_in_low": float((low & (y == 0)).sum() / max((y == 0).sum(), 1)) if len(y) else None,
           "not_a_lesion": float(np.mean([v == "not_a_lesion" for v in verdict])) if got else None,
           "retake": float(np.mean([v.startswith("retake") for v in verdict])) if got else None,
           "tiers": {t: float(np.mean([q["risk_tier"] == t for _, q in got])) for t in ("low", "moderate", "high")} if got else {}}
    if kind:
        out["photo_type_right"] = float(np.mean([q["photo_type"] == kind for _, q in got])) if got else None
    return out


def groups(rows: list[dict], pred: dict, key: str, bins: dict[str, set], kind: str) -> dict:
    return {g: score([r for r in rows if r.get(key, "") in vals], pred, kind) for g, vals in bins.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", type=Path, required=True)
    ap.add_argument("--models", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--sources", type=Path, required=True)
    ap.add_argument("--gate", type=Path, default=None, help="training/gate_set.py's output")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    t0 = time.time()
    res = {}
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        ev = lambda folder, rows, cols, name: run(a.bin, a.models, folder / "images", rows, cols, tmp, name)
        ham = rows_of(a.data / "ham10000-test" / "labels.csv")
        res["ham10000-test"] = score(ham, ev(a.data / "ham10000-test", ham, PHOTO_ONLY, "ham"), "dermoscopic")
        pad = [r for r in rows_of(a.data / "pad-ufes-20" / "labels.csv") if r["split"] == "test"]
        res["pad-ufes-20 test, photo only"] = score(pad, ev(a.data / "pad-ufes-20", pad, PHOTO_ONLY, "pad"), "clinical")
        res["pad-ufes-20 test, with answers"] = score(pad, ev(a.data / "pad-ufes-20", pad, PHOTO_ONLY + ANSWERS, "pad_answers"),
                                                      "clinical")
        d7 = [r for r in rows_of(a.data / "derm7pt" / "labels.csv") if r["split"] == "valid"]
        pred = ev(a.data / "derm7pt", d7, PHOTO_ONLY, "d7")
        for kind in ("dermoscopic", "clinical"):
            res[f"derm7pt valid {kind}"] = score([r for r in d7 if r["photo_type"] == kind], pred, kind)
        milk = [r for r in rows_of(a.sources / "milk10k" / "labels.csv") if r["split"] == "test"]
        pred = ev(a.sources / "milk10k", milk, PHOTO_ONLY, "milk")
        tones = {"tone 0-1": {"0", "1"}, "tone 2-3": {"2", "3"}, "tone 4-5": {"4", "5"}}
        for kind in ("clinical", "dermoscopic"):
            part = [r for r in milk if r["photo_type"] == kind]
            res[f"milk10k test {kind}"] = score(part, pred, kind)
            res[f"milk10k test {kind}, by skin_tone_class"] = groups(part, pred, "skin_tone", tones, kind)
        fitz = [r for r in rows_of(a.sources / "fitzpatrick17k" / "labels.csv") if r["split"] == "test"]
        pred = ev(a.sources / "fitzpatrick17k", fitz, PHOTO_ONLY, "fitz")
        neo = [r for r in fitz if r["neoplastic"] == "1"]
        res["fitzpatrick17k test neoplasms"] = score(neo, pred, "clinical")
        res["fitzpatrick17k test neoplasms, by Fitzpatrick type"] = groups(
            neo, pred, "skin_type", {"1-2": {"1", "2"}, "3-4": {"3", "4"}, "5-6": {"5", "6"}}, "clinical")
        res["fitzpatrick17k test, not neoplasms (rashes and other conditions)"] = score(
            [r for r in fitz if r["neoplastic"] == "0"], pred, "clinical")
        sd = [r for r in rows_of(a.sources / "sd198" / "labels.csv") if r["split"] == "test"]
        pred = ev(a.sources / "sd198", sd, PHOTO_ONLY, "sd")
        res["sd198 test neoplasms"] = score([r for r in sd if r["neoplastic"] == "1"], pred, "clinical")
        res["sd198 test, not neoplasms"] = score([r for r in sd if r["neoplastic"] == "0"], pred, "clinical")
        samples = rows_of(a.data / "samples" / "labels.csv")
        # The page's sample photos lie in the folder itself, beside their labels.
        res["samples"] = score(samples, run(a.bin, a.models, a.data / "samples", samples, ["image", "malignant", "dx"],
                                            tmp, "samples"), None)
        if a.gate:
            for name in ("non_lesion", "non_lesion_other", "degraded"):
                g = rows_of(a.gate / name / "labels.csv")
                pred = ev(a.gate / name, g, ["image", "malignant", "dx", "expected"], f"gate_{name}")
                res[f"gate {name}"] = score(g, pred, None)
                res[f"gate {name}"]["as_expected"] = float(np.mean([
                    pred[r["image"]]["quality"].startswith(r["expected"].split(":")[0]) for r in g if r["image"] in pred]))
    res["_meta"] = {"seconds": round(time.time() - t0), "binary": str(a.bin), "command": " ".join(sys.argv)}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=1) + "\n")
    if a.out.parent == a.models / "report":
        card.write(a.models)  # the model card with these figures
    for k, v in res.items():
        if k != "_meta" and "photos" in v:
            print(f"{k:60s} n={v['photos']:5d} auc={v['roc_auc'] or float('nan'):.3f} mal_low={v['malignant_in_low'] or 0:.3f} "
                  f"ben_low={v['benign_in_low'] or 0:.3f} nal={v['not_a_lesion'] or 0:.3f} retake={v['retake'] or 0:.3f} "
                  f"type={v.get('photo_type_right') or float('nan'):.3f}")


if __name__ == "__main__":
    main()
