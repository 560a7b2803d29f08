"""The mixed-data stage's manifest entries, test figures and model-card section (issue 12).

The Python twin of the pipeline's photo-type choice lives here (:func:`assess_photo`): the
Rust side (`src/pipeline.rs`) must agree with it, and `tests/golden.rs` checks that it does.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np

from . import anywhere, ensemble, export, metrics, mixed, sources, tabular



# ------------------------------------------------------------------ the pipeline's twin
def photo_kind(photo_type_logit: float, entry: dict, given: str | None = None) -> tuple[str, float]:
    """(kind, P(clinical)): the user's choice wins; else clinical from ``clinical_from`` on."""
    p = float(metrics.sigmoid(photo_type_logit))
    if given:
        return given, p
    return ("clinical" if p >= entry["photo_type"]["clinical_from"] else "dermoscopic"), p


def head_p7(kind: str, logits_turns: np.ndarray, clinical_turns: np.ndarray) -> np.ndarray:
    """Diagnosis probabilities of the chosen head from its per-turn logits ([turns, 7]):
    dermoscopic = mean softmax over turns, clinical = softmax of the mean logits (a linear head
    on the mean embedding, which is what it was fitted on)."""
    if kind == "clinical":
        return mixed.softmax(np.asarray(clinical_turns, np.float64).mean(0))
    return mixed.softmax(np.asarray(logits_turns, np.float64)).mean(0)


def head_cfg(entry: dict, kind: str) -> dict:
    return entry["clinical"] if kind == "clinical" else entry


def assess_photo(outs: dict, p_tab: float | None, entry: dict, given: str | None = None) -> dict:
    """``outs``: per-turn ``logits``, ``clinical_logits``, ``photo_type`` ([turns, ...]); the
    photo type is read on the photo as given (turn 0), as the gate reads it."""
    kind, p = photo_kind(float(np.reshape(outs["photo_type"], -1)[0]), entry, given)
    res = ensemble.assess(head_p7(kind, outs["logits"], outs["clinical_logits"]), p_tab, head_cfg(entry, kind))
    res["photo_type"] = {"kind": kind, "source": "given" if given else "detected", "probability": p}
    return res


# ------------------------------------------------------------------ test figures
def _scores(entry: dict, f: dict, heads: dict, p_tab: np.ndarray | None, given: str | None = None):
    """Final probability, tier and photo type of every photo of a cached feature set."""
    pt = mixed.apply_linear(heads["photo_type"], f["stats"]).reshape(-1)
    clin_p7 = mixed.softmax(mixed.apply_linear(heads["clinical"], f["emb"]))
    out = {"p": [], "tier": [], "kind": []}
    for i in range(len(pt)):
        kind, _ = photo_kind(pt[i], entry, given)
        p7 = clin_p7[i] if kind == "clinical" else f["p7"][i]
        r = ensemble.assess(p7, None if p_tab is None else float(p_tab[i]), head_cfg(entry, kind))
        out["p"].append(r["malignant_probability"]); out["tier"].append(r["risk_tier"]); out["kind"].append(kind)
    return {k: np.array(v) for k, v in out.items()}


def _figures(y, sc, want_kind: str) -> dict:
    y = np.asarray(y)
    return {"n": int(len(y)), "malignant": int(y.sum()), "roc_auc": metrics.auc(y, sc["p"]),
            "roc_auc_ci95": metrics.auc_ci(y, sc["p"], 1000, 0),
            "malignant_in_low": float(((sc["tier"] == "low") & (y == 1)).sum() / max(y.sum(), 1)),
            "share_low": float((sc["tier"] == "low").mean()),
            "photo_type_correct": float((sc["kind"] == want_kind).mean())}


def test_figures(s: dict, f: dict, heads: dict, tab: dict, entry: dict) -> dict:
    m = tab["models"][tab["use"]]
    pad_tab = m.predict_proba(tabular.encode_items(s["pad_test"]))[:, 1]
    y_pad, y_ham = [p.malignant for p in s["pad_test"]], [p.malignant for p in s["ham_test"]]
    return {
        "pad_test_photo_only": _figures(y_pad, _scores(entry, f["pad_test"], heads, None), "clinical"),
        "pad_test_with_answers": _figures(y_pad, _scores(entry, f["pad_test"], heads, pad_tab), "clinical"),
        "pad_test_soft_copies_photo_type": float(
            (mixed.apply_linear(heads["photo_type"], f["pad_test_soft"]["stats"]) >= 0).mean()),
        "ham10000_test": _figures(y_ham, _scores(entry, f["ham_test"], heads, None), "dermoscopic"),
    }


# ------------------------------------------------------------------ manifest
def image_entry(entry: dict, staging: Path, heads: dict, ens: dict) -> dict:
    derm_cfg, derm_val = ens["dermoscopic"]
    clin_cfg, clin_val = ens["clinical"]
    e = {**entry, **export.file_entry(staging / "image_effnet_lite0.onnx")}
    e["file"] = entry["file"]
    base = {k: v for k, v in entry["outputs"].items() if k not in mixed.HEAD_OUTPUTS}
    e["outputs"] = {**base, "ood_clinical": "ood_clinical", "ood_clinical_retake": "ood_clinical_retake", "non_lesion": "non_lesion",
                    "colour": "colour"}
    e.update({k: derm_cfg[k] for k in ("calibration", "stacker", "decision_threshold", "tiers")})
    e["validation"] = _val_summary(derm_val)
    e["photo_type"] = {"output": "photo_type", "clinical_from": mixed.CLINICAL_FROM, "validation": heads["photo_type_validation"],
                       "fitted_on": heads["counts"]}
    e["clinical"] = {"logits": "clinical_logits", "cam": "clinical_cam", "turn_average": "logits",
                     **{k: clin_cfg[k] for k in ("calibration", "stacker", "decision_threshold", "tiers")},
                     "validation": _val_summary(clin_val)}
    return e


def _val_summary(v: dict) -> dict:
    keep = ("auc_image", "auc_image_oof_calibrated", "auc_stacked_oof", "ece_calibrated_oof", "ece_stacked_oof",
            "low_promise_image_only", "low_promise_with_metadata", "tiers_image_only_oof", "tiers_with_metadata_oof")
    return {k: v[k] for k in keep if k in v}


def fine_kernels(w: dict) -> str:
    """How many kernels are stored finer than int8, and how (compact.py's record)."""
    if w.get("int11_kernels") is not None:
        return f"{w['int11_kernels']} as 11-bit fixed point (an int8 and a uint8 plane)"
    return f"{w.get('float16_kernels')} as float16"


def write_gate(q: dict, ood: dict) -> None:
    """The gate's cuts of the manifest's ``quality.ood`` block, each with its held-out figures."""
    d = ood["dermoscopic"]
    q.update({"threshold": d["threshold"], "hard_threshold": d["hard_threshold"], "reference_threshold": d["reference_threshold"],
              "held_out": {"turned_away_by_source": d["held_out_turned_away"],
                           "rule": f"cut = the largest of the reference fit's cut and the {anywhere.GATE_LESION_PCT}th percentile of "
                                   "each dermoscopic source the Gaussian never saw"}})
    q.pop("train_above_threshold_by_source", None)
    q["clinical"] = {"output": "ood_clinical", "threshold": ood["threshold"], "hard_threshold": ood["hard_threshold"],
                     "retake_output": "ood_clinical_retake", "retake_max": {t["reason"]: t["max"] for t in ood["retake"]},
                     "validation_percentiles": ood["validation_percentiles"],
                     "degraded_train_percentiles": ood["degraded_train_percentiles"],
                     "held_out": ood["held_out"],
                     "fitted_on": "block-10 statistics of every clinical source's training photos (Gaussian, 1% diagonal "
                                  f"shrinkage): {', '.join(ood['held_out']['sources'])}; cut = the largest over sources of the "
                                  f"{anywhere.GATE_LESION_PCT}th percentile of its distances from a Gaussian fitted without it; hard cut = "
                                  "at least that and the 99th percentile of PAD train photos made too dark, overexposed or blurry; per "
                                  "problem, one Gaussian over PAD train photos degraded that way, its cut the 99th percentile of "
                                  "out-of-fold distances"}
    nl = ood["non_lesion"]
    q["non_lesion"] = {"output": "non_lesion", "threshold": nl["threshold"], "colour_output": "colour", "min_colour": nl["min_colour"],
                       "validation": nl["validation"],
                       "fitted_on": f"logistic regression (C = {mixed.NL_C}, balanced) on block-10 statistics, colourfulness and the embedding: "
                                    "photos of skin from every source (lesions, and the rashes Fitzpatrick17k and SD-198 hold), PAD "
                                    "train photos softened and degraded, against views of pictures that are not of skin (Debian's "
                                    "wallpaper packages, GIMP's texture patterns, GCompris's and OpenCV's pictures, Matplotlib's sample photos; see provenance); cut = the "
                                    f"{anywhere.GATE_NON_LESION_PCT}th percentile of held-out scores on the worst source (each source scored by "
                                    "a head fitted without it). It applies to photos of both types. min_colour: a photo without an "
                                    f"exposure problem whose colourfulness is below {mixed.MIN_COLOUR_FRACTION} x the 0.1th percentile of "
                                    "the least colourful source (black and white) is not a lesion photo.",
                       "provenance": nl["provenance"]}


def source_counts(a, s: dict) -> dict:
    """Photos per source and split, as fitted (train) and as kept for the report (test)."""
    sets = {"derm7pt": ("d7_derm_train", "d7_clin_train", "d7_derm_valid", "d7_clin_valid"),
            "milk10k": ("milk_derm_train", "milk_clin_train", "milk_derm_test", "milk_clin_test"),
            "fitzpatrick17k": ("fitz_train", "fitz_test"), "sd198": ("sd_train", "sd_test")}
    out = {}
    for name, keys in sets.items():
        have = {k: s[k] for k in keys if s.get(k)}
        if not have:
            continue
        out[name] = {k: {"photos": len(v), "groups": len({p.group for p in v}), "malignant": sum(p.malignant == 1 for p in v),
                         "benign": sum(p.malignant == 0 for p in v), "unlabelled": sum(p.malignant < 0 for p in v)}
                     for k, v in have.items()}
        if name in sources.PINS:
            out[name]["pins"] = sources.PINS[name]["repos"]
            out[name]["licence"] = sources.PINS[name]["licence"]
    return out


def write_manifest(a, staging: Path, heads: dict, tab: dict, ens: dict, ood: dict, diff: dict, compact: dict, wall: float, s: dict) -> dict:
    man = json.loads((a.models / "manifest.json").read_text())
    man["model_version"] = f"skinscan-{time.strftime('%Y.%m.%d')}-effnet-lite0-mixed{'-smoke' if a.smoke else ''}"
    man["image_models"] = [image_entry(e, staging, heads, ens) if e["id"] == "effnet_lite0"
                           else {**e, **{k: compact[k] for k in ("stacker", "tiers")}} if e["id"] == "compact_cnn" and compact
                           else e for e in man["image_models"]]
    q = man.get("quality")
    if q and q.get("ood"):
        write_gate(q["ood"], ood)
    man["tabular"] = {
        "features": tabular.feature_spec(), "width": tabular.WIDTH, "default": tab["use"],
        "models": [{"id": k, **export.file_entry(staging / f"tabular_{k}.onnx"), "input": "input", "output": "probabilities",
                    "positive_index": 1, "val_roc_auc": tab["auc"][k]["ham_val"], "pad_train_oof_roc_auc": tab["auc"][k]["pad_train_oof"]}
                   for k in ("lightgbm", "xgboost")],
    }
    pv = man.setdefault("provenance", {})
    pv["data"] = ("HAM10000 (Tschandl et al. 2018), ISIC 2017 training set, ISIC 2019/2020 metadata: CC BY-NC 4.0; "
                  "PAD-UFES-20 (Pacheco et al. 2020) smartphone photos: CC BY 4.0; derm7pt (Kawahara et al. 2019): research "
                  "use; " + "; ".join(f"{v['cite']}: {v['licence']}" for k, v in sources.PINS.items() if k in a.sources_used))
    pv["sources"] = source_counts(a, s)
    pv["smoke"] = bool(a.smoke)
    pv["mixed_stage"] = {
        "script": "training/mixed.py", "wall_seconds": round(wall), "seed": a.seed,
        "pad_split": "PAD-UFES-20 split = train only, 5 folds grouped by patient_id; split = test only for the report",
        "pad_dx_mapping": "ak -> akiec, scc -> akiec (keratinocyte cancer class); both malignant",
        "head": {"C": heads["clinical_validation"]["C"], "dermoscopic_weight": mixed.DERM_WEIGHT,
                 "data": "the training photos of every clinical source (" + ", ".join(heads["clinical_validation"]["sources"]) +
                         "), each source weighing sqrt(its size), plus HAM10000 validation, derm7pt and MILK10k dermoscopic photos",
                 "held_out_source_auc": heads["clinical_validation"]["held_out_source_auc"],
                 "by_C": heads["clinical_validation"]["by_C"]},
        "photo_type_held_out_source_accuracy": heads["photo_type_validation"],
        "low_rule": f"largest cut whose one-sided 95% Clopper-Pearson upper bound of malignant-in-low is <= {anywhere.LOSO_LOW_BUDGET:.0%} on every "
                    "source of the photo type, each predicted by heads, calibration and stacker fitted without it (leave one source out)",
        "onnx_max_abs_diff": diff, "tabular_rows": tab["rows"],
    }
    (a.models / "manifest.json").write_text(json.dumps(man, indent=1) + "\n")
    return man


def finish(a, s, f, heads, tab, ens, ood, diff, staging: Path, work: Path, wall: float, log, compact: dict | None = None):
    for name in ["image_effnet_lite0.onnx"] + [f"tabular_{k}.onnx" for k in tab["models"]]:
        shutil.copy(staging / name, a.models / name)
    man = write_manifest(a, staging, heads, tab, ens, ood, diff, compact or {}, wall, s)
    entry = next(e for e in man["image_models"] if e["id"] == "effnet_lite0")
    figs = test_figures(s, f, heads, tab, entry)
    # The test figures, for people (nothing reads them to decide anything).
    entry["test_roc_auc"] = figs["ham10000_test"]["roc_auc"]
    entry["clinical"]["test_roc_auc"] = figs["pad_test_photo_only"]["roc_auc"]
    (a.models / "manifest.json").write_text(json.dumps(man, indent=1) + "\n")
    rep = a.models / "report"
    rep.mkdir(exist_ok=True)
    export.write_json(rep / "mixed.json", {"model_version": man["model_version"], "test": figs, "validation": {"dermoscopic": entry["validation"],
                      "clinical": entry["clinical"]["validation"], "photo_type": entry["photo_type"]["validation"]},
                      "tabular_auc": tab["auc"], "clinical_ood": {"threshold": ood["threshold"]},
                      "non_lesion": {"threshold": ood["non_lesion"]["threshold"], "validation": ood["non_lesion"]["validation"]}, "wall_seconds": round(wall)})
    from . import card
    card.write(a.models)
    log(f"test figures (report only, nothing fitted on them): {json.dumps(figs)}")


def _pct(x) -> str:
    return f"{100 * x:.1f}%"
