#!/usr/bin/env python3
"""Teach the shipped model ordinary phone photos (issue 12), on 2 CPU cores in minutes.

    python training/mixed.py --data ../shared/data --models models          # the shipped run
    python training/mixed.py --data ../shared/data --models /tmp/m --smoke  # CI: tiny subsets

Run it after training/compact.py (which stores the network's kernels as int8/float16): every fit
here is then made on what the shipped, compact network computes.

Stages (each a function below; features are cached under --work, so a rerun resumes):
 1. data      PAD-UFES-20 `train` (split by patient into 5 folds), HAM10000 validation (split by
              lesion exactly as train.py; the network never trained on it), ISIC 2017 and a sample of
              HAM10000 training images. `ham10000-test` and PAD `test` are read only by the report.
 2. features  the shipped network's 1280-d embedding, averaged over its 4 quarter turns, its
              block-10 statistics and colourfulness, for every photo, and for views of pictures
              that are not of skin (non_lesion.py: Debian packages fetched into the cache; the embedding of
              HAM10000 and PAD photos is the turns' mean, of the others one view's)
              (onnxruntime, about 5 minutes on 2 cores; cached per network hash).
 3. heads     photo type (dermoscopic / clinical) and the phone-photo head, logistic regressions
              on the embedding; out-of-fold predictions for everything fitted after them.
 4. tabular   XGBoost and LightGBM on age, sex, site and the six answers plus the size, on ISIC
              metadata, HAM10000 training rows and PAD training rows.
 5. ensemble  calibration, stacker and tiers per photo type, each on validation photos of that
              type; the "low" boundary by mixed.conservative_low. Then the gate's clinical cuts
              and its non-lesion head and black-and-white cut.
 6. export    the heads appended to the shipped graph (dermoscopic outputs untouched), checked in
              onnxruntime; tabular models exported and checked; manifest rewritten.
 7. report    figures on the untouched test sets, models/report/mixed.json and the model card.
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from skinscan_train import anywhere, data, ensemble, export, metrics, mixed, non_lesion, photos, quality, sources, tabular  # noqa: E402

IMAGE_MODEL = "effnet_lite0"
OTHER_TRAIN_SETS = ("d7_derm_train", "d7_clin_train", "milk_derm_train", "milk_clin_train", "fitz_train", "sd_train")
TURNS = 4
from skinscan_train.mixed import DERM_WEIGHT, HEAD_C, HIGH_SPEC, LOW_BUDGET, NL_C, NL_LESION_PCT, NL_VIEWS, PT_C  # noqa: E402,F401


def parse():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--models", required=True, type=Path, help="models folder: read and rewritten in place")
    ap.add_argument("--work", type=Path, default=None, help="feature cache (default ~/.cache/skinscan/mixed[-smoke])")
    ap.add_argument("--smoke", action="store_true", help="tiny subsets: every stage in a few minutes")
    ap.add_argument("--seed", type=int, default=20261126, help="train.py's seed: the same HAM10000 split")
    ap.add_argument("--non-lesion-cache", type=Path, default=None,
                    help="where the non-lesion pictures' Debian packages are fetched (default $SKINSCAN_CACHE/nonlesion)")
    ap.add_argument("--sources", type=Path, default=None,
                    help="the fetched sources assembled by training/sources.py (default $SKINSCAN_CACHE/data; "
                         "left out where absent, as in CI)")
    ap.add_argument("--golden", type=Path, default=None,
                    help="where golden.json + fixtures go (default: <models>/../tests/fixtures, or <models>/golden with --smoke)")
    return ap.parse_args()


# ------------------------------------------------------------------ 1. data
def load_sets(a) -> dict:
    pad = photos.read_pad(a.data)
    ham = data.read_set(a.data, "ham10000")
    ham_tr, ham_val = data.split_by_group(ham, 0.2, a.seed)
    i17 = data.read_set(a.data, "isic2017-train")
    s = {
        "pad_train": [p for p in pad if p.split == "train"],
        "pad_test": [p for p in pad if p.split == "test"],
        "ham_val": photos.as_photos(ham_val, "val"),
        "isic2017": photos.as_photos(i17, "train"),
        "ham_train_sample": photos.as_photos(random.Random(1).sample(ham_tr, 2000), "train"),
        "ham_test": photos.as_photos(data.read_set(a.data, "ham10000-test"), "test"),
    }
    s.update(other_sources(a))
    if a.smoke:
        rng = random.Random(a.seed)
        s = {k: sorted(rng.sample(v, min(len(v), 60 if k in ("pad_train", "ham_val") else 24)), key=lambda p: p.image)
             for k, v in s.items()}
    s["ham_train_rows"] = ham_tr if not a.smoke else ham_tr[:500]
    nl_cache = a.non_lesion_cache or non_lesion.default_cache("nonlesion")
    s["non_lesion"], s["non_lesion_provenance"] = non_lesion.build(nl_cache, NL_VIEWS, a.seed, 24 if a.smoke else None)
    s["exclude"] = {it.image for it in ham + i17} | {p.image for p in s["ham_test"]}
    return s


def other_sources(a) -> dict:
    """derm7pt (shared: its `train` cases for fitting, `valid` for the report only) and the
    fetched sources (training/sources.py: their `train` split for fitting, `test` for the
    report only), each view of a lesion in its own set."""
    out = {}
    a.sources_used = []
    d7 = sources.read_source(a.data, "derm7pt")
    for kind, tag in (("dermoscopic", "derm"), ("clinical", "clin")):
        for split, name in (("train", "train"), ("valid", "valid")):
            out[f"d7_{tag}_{name}"] = [p for p in d7 if p.kind == kind and p.split == split]
    root = a.sources or non_lesion.default_cache("data")
    for src, key in (("milk10k", "milk"), ("fitzpatrick17k", "fitz"), ("sd198", "sd")):
        if a.smoke or not (root / src / "labels.csv").exists():
            continue
        a.sources_used.append(src)
        got = sources.read_source(root, src)
        for split in ("train", "test"):
            part = [p for p in got if p.split == split]
            if key == "milk":
                out[f"milk_derm_{split}"] = [p for p in part if p.kind == "dermoscopic"]
                out[f"milk_clin_{split}"] = [p for p in part if p.kind == "clinical"]
            else:
                out[f"{key}_{split}"] = part
    return out


# ------------------------------------------------------------------ 2. features
def features(a, s: dict, work: Path, log) -> dict:
    emb = photos.Embedder(a.models / "image_effnet_lite0.onnx")
    f = {}
    for name in ("pad_train", "pad_test", "ham_val", "ham_test"):
        f[name] = photos.embed(emb, s[name], TURNS, work / f"{name}.npz", log=log)
    for name in ("isic2017", "ham_train_sample"):
        f[name] = photos.embed(emb, s[name], 1, work / f"{name}.npz", log=log)
    # Phone photos made soft (as HAM10000's upscaled copies are): photo type must not be sharpness.
    f["pad_train_soft"] = photos.embed(emb, s["pad_train"], 1, work / "pad_train_soft.npz", soft_seed=7, log=log)
    f["pad_test_soft"] = photos.embed(emb, s["pad_test"], 1, work / "pad_test_soft.npz", soft_seed=8, log=log)
    # Phone photos made too dark, overexposed or blurry: the clinical gate's hard cut.
    f["pad_train_degraded"] = photos.embed(emb, s["pad_train"], 1, work / "pad_train_degraded.npz", degrade_seed=9, log=log)
    # The other sources' training photos, one view each (the fits here; their test splits are
    # measured by `skinscan evaluate`, on the Rust pipeline).
    for name in OTHER_TRAIN_SETS:
        if s.get(name):
            f[name] = photos.embed(emb, s[name], 1, work / f"{name}.npz", log=log)
    # Pictures that are not of skin: the gate's non-lesion head.
    f["non_lesion"] = photos.embed(emb, s["non_lesion"], 1, work / "non_lesion.npz", log=log)
    return f


# ------------------------------------------------------------------ 3. heads
def y7(items) -> np.ndarray:
    return np.array([data.CLASSES.index(p.dx) for p in items])


def ym(items) -> np.ndarray:
    return np.array([p.malignant for p in items])


def fit_heads(s: dict, f: dict, folds: np.ndarray, log) -> dict:
    """Photo type (on block statistics) and the phone-photo head (on the embedding), fitted on
    every source and judged on each source held out (anywhere.py)."""
    # Photo type on the block-10 statistics (per-channel mean and std of mid-level features: how
    # the photo was taken) rather than on the lesion embedding: out of fold, its worst source
    # (soft phone photos) was right 98.7% of the time, against 93.5% from the embedding (issue 12).
    photo_type, pt_val = anywhere.photo_type(s, f, log)
    clinical, cl_val = anywhere.clinical_head(s, f, log)
    return {"photo_type": photo_type, "clinical": clinical, "held_out": cl_val["oof"],
            "photo_type_validation": pt_val["held_out_source_accuracy"], "counts": pt_val["counts"],
            "clinical_validation": {k: v for k, v in cl_val.items() if k != "oof"}}


# ------------------------------------------------------------------ 4. tabular
def fit_tabular(a, s: dict, folds: np.ndarray, log) -> dict:
    (Xe, ye), (X20v, y20v) = tabular.external_rows(a.data / "metadata", s["exclude"], 0.2, a.seed)
    if a.smoke:
        Xe, ye, X20v, y20v = Xe[:3000], ye[:3000], X20v[:1000], y20v[:1000]
    base_X = np.concatenate([tabular.encode_items(s["ham_train_rows"]), Xe])
    base_y = np.concatenate([ym(s["ham_train_rows"]), ye])
    Xp, yp = tabular.encode_items(s["pad_train"]), ym(s["pad_train"])
    fitters = {"lightgbm": tabular.fit_lightgbm, "xgboost": tabular.fit_xgboost}
    out = {"models": {}, "oof_pad": {}, "ham_val": {}, "auc": {}}
    for name, fit in fitters.items():
        oof = np.zeros(len(yp))
        for k in np.unique(folds):
            tr = folds != k
            m = fit(np.concatenate([base_X, Xp[tr]]), np.r_[base_y, yp[tr]], a.seed, a.smoke)
            oof[folds == k] = m.predict_proba(Xp[folds == k])[:, 1]
        m = fit(np.concatenate([base_X, Xp]), np.r_[base_y, yp], a.seed, a.smoke)
        out["models"][name], out["oof_pad"][name] = m, oof
        out["ham_val"][name] = m.predict_proba(tabular.encode_items(s["ham_val"]))[:, 1]
        out["auc"][name] = {"pad_train_oof": metrics.auc(yp, oof), "ham_val": metrics.auc(ym(s["ham_val"]), out["ham_val"][name]),
                            "isic2020_val_patients": metrics.auc(y20v, m.predict_proba(X20v)[:, 1])}
    out["use"] = max(out["auc"], key=lambda k: out["auc"][k]["pad_train_oof"] + out["auc"][k]["ham_val"])
    out["rows"] = int(len(base_y) + len(yp))
    log(f"tabular: {out['auc']}; using {out['use']}")
    return out


# ------------------------------------------------------------------ 5. ensemble
def fit_ensembles(a, s: dict, f: dict, heads: dict, tab: dict, folds: np.ndarray, log) -> dict:
    """Per photo type, from predictions on sources held out of every fit (anywhere.fit_type_loso):
    dermoscopic = the network's own head on the dermoscopic sources it never trained on;
    clinical = the phone-photo head, each clinical source predicted by a head fitted without it."""
    t = tab["use"]
    model = tab["models"][t]

    def ptab(name, items):
        return tab["oof_pad"][t] if name == "pad-ufes-20" else tab["ham_val"][t] if name == "ham10000" \
            else model.predict_proba(tabular.encode_items(items))[:, 1]

    derm_sets = {"ham10000": "ham_val", "derm7pt-dermoscopic": "d7_derm_train", "milk10k-dermoscopic": "milk_derm_train"}
    derm = {n: (s[k], f[k]["p7"]) for n, k in derm_sets.items() if s.get(k)}
    clin = heads["held_out"]
    out = {}
    for kind, parts in (("dermoscopic", derm), ("clinical", clin)):
        cfg, val = anywhere.fit_type_loso(parts, {n: ptab(n, it) for n, (it, _) in parts.items()},
                                          {n: tabular.has_metadata(it) for n, (it, _) in parts.items()}, log, kind)
        out[kind] = (cfg, val)
    return out


def fit_compact(a, s: dict, tab: dict, work: Path, log) -> dict:
    """The compact CNN (dermoscopic only, no heads): its stacker and tiers refitted on the new
    tabular model's probabilities, on the same HAM10000 validation photos."""
    path = a.models / "image_compact_cnn.onnx"
    if not path.exists():
        return {}
    p7 = photos.p7_only(path, s["ham_val"], work / "compact_ham_val.npy")
    hv = s["ham_val"]
    cfg, val, _ = mixed.fit_type(p7, tab["ham_val"][tab["use"]], ym(hv), data.group_folds(hv, 5, a.seed),
                                 {"ham10000_val": np.ones(len(hv), bool)}, {"ham10000_val_with_metadata": tabular.has_metadata(hv)},
                                 LOW_BUDGET, HIGH_SPEC)
    log(f"compact CNN: stacked OOF AUC {val['auc_stacked_oof']:.4f}")
    return cfg


def fit_ood(s: dict, f: dict, folds: np.ndarray, log) -> dict:
    """The clinical OOD cuts, as train.py fits the dermoscopic ones: ``threshold`` = 99th
    percentile of out-of-fold PAD training photos' distances; ``hard_threshold`` = 99th
    percentile of the same photos made too dark, overexposed or blurry (beyond it no retake
    advice can help)."""
    st = f["pad_train"]["stats"]
    oof = np.zeros(len(st))
    for k in np.unique(folds):
        oof[folds == k] = mixed.mahalanobis(mixed.fit_mahalanobis(st[folds != k]), st[folds == k])
    g = mixed.fit_mahalanobis(st)
    g["threshold"] = float(np.percentile(oof, 99))
    g["validation_percentiles"] = {str(p): float(np.percentile(oof, p)) for p in (50, 95, 99)}
    deg_st = f["pad_train_degraded"]["stats"]
    deg = mixed.mahalanobis(g, deg_st)
    g["hard_threshold"] = max(float(np.percentile(deg, 99)), g["threshold"])
    g["degraded_train_percentiles"] = {str(p): float(np.percentile(deg, p)) for p in (50, 90, 99)}
    # Per photo problem, as the dermoscopic gate: a Gaussian over PAD training photos degraded
    # that way (photos.degrade gives photo i the problem i % 3), its cut the 99th percentile of
    # out-of-fold distances. A clinical photo with that problem is not a lesion beyond it.
    # The distance itself, since issue 20: from every clinical source, its cut from each source
    # held out (the PAD-only fit above stays the reference for the degraded-photo cuts).
    g_all, g_val = anywhere.clinical_ood(s, f, log)
    g["pad_only_threshold"] = g["threshold"]
    g.update({k: g_all[k] for k in ("mu", "L", "dim", "threshold", "validation_percentiles")})
    g["held_out"] = g_val
    g["hard_threshold"] = max(g["hard_threshold"], g["threshold"])
    g["retake"] = []
    for r, reason in enumerate(quality.RETAKE_REASONS):
        mask = np.arange(len(deg_st)) % len(quality.RETAKE_REASONS) == r
        x, fr = deg_st[mask], folds[mask]
        oof_r = np.zeros(len(x))
        for k in np.unique(fr):
            oof_r[fr == k] = mixed.mahalanobis(mixed.fit_mahalanobis(x[fr != k]), x[fr == k])
        g["retake"].append({**mixed.fit_mahalanobis(x), "reason": reason, "max": float(np.percentile(oof_r, 99))})
    log(f"clinical OOD: threshold {g['threshold']:.3f}, hard {g['hard_threshold']:.3f}, "
        f"per problem {[round(t['max'], 2) for t in g['retake']]}")
    return g


def fit_non_lesion(s: dict, f: dict, folds: np.ndarray, log) -> dict:
    """The gate's non-lesion head (anywhere.non_lesion): skin photos of every source, plus PAD
    photos made soft and too dark, overexposed or blurry (those must get retake advice, not
    this), against views of pictures that are not of skin; its cut holds on each source held out."""
    extra = {"pad-ufes-20": np.concatenate([mixed.non_lesion_x(f[k]) for k in ("pad_train_soft", "pad_train_degraded")])}
    head = anywhere.non_lesion(s, f, extra, log)
    # No skin photo is black and white. A well-exposed photo (too dark and overexposed ones get
    # retake advice) below this colourfulness is not a lesion photo: half the 0.1th percentile of
    # the least colourful well-exposed lesion source.
    exposed = [k for sets, _ in anywhere.present(s).values() for k in sets]
    low = {k: float(np.percentile(f[k]["chroma"], 0.1)) for k in exposed}
    head["min_colour"] = mixed.MIN_COLOUR_FRACTION * min(low.values())
    head["provenance"] = s["non_lesion_provenance"]
    head["validation"]["colour_p0_1_by_source"] = low
    return head


def fit_dermoscopic_cut(a, s: dict, f: dict, log) -> dict:
    """The dermoscopic distance cut (manifest quality.ood.threshold) on dermoscopic sources the
    network's Gaussian never saw."""
    q = json.loads((a.models / "manifest.json").read_text())["quality"]["ood"]
    cut, turned = anywhere.dermoscopic_ood_cut(s, f, q.get("reference_threshold", q["threshold"]), log)
    return {"threshold": cut, "reference_threshold": q.get("reference_threshold", q["threshold"]),
            "hard_threshold": max(cut, q["hard_threshold"]), "held_out_turned_away": turned}


# ------------------------------------------------------------------ 6. export
def export_all(a, s: dict, f: dict, heads: dict, tab: dict, ood: dict, staging: Path, log) -> dict:
    src = a.models / "image_effnet_lite0.onnx"
    base = staging / "base.onnx"
    mixed.strip_heads(src, base)
    out = staging / "image_effnet_lite0.onnx"
    mixed.add_heads(base, out, heads["photo_type"], heads["clinical"], ood, ood["non_lesion"], photos.STATS_NODE, photos.FMAP_NODE)
    from skinscan_train import preprocess
    check = np.stack([preprocess.preprocess(str(p.path))[0] for p in (s["pad_test"][:2] + s["ham_val"][:2])])
    diff = {"effnet_lite0_heads": mixed.check_heads(out, check, heads["photo_type"], heads["clinical"], ood, ood["non_lesion"],
                                                    photos.STATS_NODE)}
    Xv = tabular.encode_items(s["pad_test"][:50] + s["ham_val"][:50])
    for name, m in tab["models"].items():
        path = staging / f"tabular_{name}.onnx"
        (tabular.export_lightgbm if name == "lightgbm" else tabular.export_xgboost)(m, path)
        diff[name] = float(np.abs(tabular.onnx_proba(path, Xv) - m.predict_proba(Xv)[:, 1]).max())
        if diff[name] > 1e-4:
            raise RuntimeError(f"{name} ONNX disagrees with predict_proba: {diff[name]:.2e}")
    log(f"export checks: {diff}")
    return diff


# ------------------------------------------------------------------ main
def main():
    a = parse()
    t0 = time.time()
    work = a.work or Path.home() / ".cache" / "skinscan" / ("mixed-smoke" if a.smoke else "mixed")
    work.mkdir(parents=True, exist_ok=True)
    # Features belong to one network: the caches live in a folder named after the shipped graph
    # without this stage's heads (a compacted or retrained network gets fresh features).
    mixed.strip_heads(a.models / "image_effnet_lite0.onnx", work / "network.onnx")
    work = work / f"network-{export.sha256(work / 'network.onnx')[:12]}"
    work.mkdir(exist_ok=True)
    log = lambda m: print(f"[{time.time() - t0:6.0f}s] {m}", flush=True)
    random.seed(a.seed); np.random.seed(a.seed)
    s = load_sets(a)
    folds = photos.patient_folds(s["pad_train"], 5, a.seed)
    t_feat = time.time()
    f = features(a, s, work, log)
    a.feature_seconds_now = time.time() - t_feat  # the model card's rebuild time
    heads = fit_heads(s, f, folds, log)
    tab = fit_tabular(a, s, folds, log)
    ens = fit_ensembles(a, s, f, heads, tab, folds, log)
    ood = fit_ood(s, f, folds, log)
    ood["non_lesion"] = fit_non_lesion(s, f, folds, log)
    ood["dermoscopic"] = fit_dermoscopic_cut(a, s, f, log)
    staging = work / "export"
    shutil.rmtree(staging, ignore_errors=True); staging.mkdir()
    diff = export_all(a, s, f, heads, tab, ood, staging, log)
    compact = fit_compact(a, s, tab, work, log)
    from skinscan_train import mixed_report
    mixed_report.finish(a, s, f, heads, tab, ens, ood, diff, staging, work, time.time() - t0, log, compact)
    from skinscan_train import report
    golden = a.golden or (a.models / "golden" if a.smoke else a.models.parent / "tests" / "fixtures")
    a.out = a.models  # write_golden reads the models from a.out
    report.write_golden(a, json.loads((a.models / "manifest.json").read_text()), golden, log)


if __name__ == "__main__":
    main()
