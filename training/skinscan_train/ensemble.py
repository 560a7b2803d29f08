"""Calibration, the meta-ensemble (stacker) and triage tiers: fitted on validation only.

The maths here is what ``src/ensemble.rs`` evaluates at run time from the manifest:

    z_img  = logit(P(mel) + P(bcc) + P(akiec))            (raw image-model malignant logit)
    image  = sigmoid(a * z_img + b)                          (Platt scaling)
    z_tab  = logit(P_tabular(malignant))
    final  = sigmoid(c0 + c1 * z_img + c2 * z_tab)  if any metadata was given, else image
    tier   = low if final < low_below; high if final >= high_from; moderate otherwise
             (separate thresholds for the image-only and the with-metadata path)
"""
from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from . import metrics
from .data import CLASSES, MALIGNANT

MAL_IDX = [CLASSES.index(c) for c in MALIGNANT]


def malignant_prob(p7: np.ndarray) -> np.ndarray:
    return np.asarray(p7)[..., MAL_IDX].sum(-1)


def fit_platt(z, y, w=None) -> tuple[float, float]:
    lr = LogisticRegression(C=1e6, max_iter=1000).fit(np.asarray(z).reshape(-1, 1), y, sample_weight=w)
    return float(lr.coef_[0, 0]), float(lr.intercept_[0])


def fit_stacker(z_img, z_tab, y, w=None) -> tuple[float, float, float]:
    X = np.stack([z_img, z_tab], 1)
    lr = LogisticRegression(C=1e6, max_iter=1000).fit(X, y, sample_weight=w)
    return float(lr.intercept_[0]), float(lr.coef_[0, 0]), float(lr.coef_[0, 1])


def apply_platt(z, ab) -> np.ndarray:
    return metrics.sigmoid(ab[0] * np.asarray(z) + ab[1])


def apply_stacker(z_img, z_tab, c) -> np.ndarray:
    return metrics.sigmoid(c[0] + c[1] * np.asarray(z_img) + c[2] * np.asarray(z_tab))


def oof_stacked(z_img, z_tab, y, folds, w=None) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold (image-only calibrated, stacked) probabilities: every prediction comes from a
    calibrator/stacker that never saw that lesion. ``w``: sample weights of the fits."""
    p_img = np.zeros(len(y)); p_stk = np.zeros(len(y))
    for k in np.unique(folds):
        tr, te = folds != k, folds == k
        wt = None if w is None else w[tr]
        p_img[te] = apply_platt(z_img[te], fit_platt(z_img[tr], y[tr], wt))
        p_stk[te] = apply_stacker(z_img[te], z_tab[te], fit_stacker(z_img[tr], z_tab[tr], y[tr], wt))
    return p_img, p_stk


def fit_all(p7_val, ptab_val, y_val, folds, low_miss: float, high_spec: float, w=None) -> tuple[dict, dict]:
    """Everything the manifest needs for one image model, plus validation figures for the report.
    ``w``: sample weights of the calibration and the stacker (None: every photo alike)."""
    z_img = metrics.logit(malignant_prob(p7_val))
    z_tab = metrics.logit(ptab_val)
    platt = fit_platt(z_img, y_val, w)
    stack = fit_stacker(z_img, z_tab, y_val, w)
    p_raw = malignant_prob(p7_val)
    p_cal = apply_platt(z_img, platt)
    oof_img, oof_stk = oof_stacked(z_img, z_tab, y_val, folds, w)
    low_i, high_i = metrics.tier_thresholds(y_val, oof_img, low_miss, high_spec)
    low_m, high_m = metrics.tier_thresholds(y_val, oof_stk, low_miss, high_spec)
    cfg = {
        "calibration": {"method": "platt", "a": platt[0], "b": platt[1]},
        "stacker": {"intercept": stack[0], "image_coef": stack[1], "tabular_coef": stack[2]},
        "decision_threshold": metrics.youden_threshold(y_val, oof_img),
        "tiers": {"image_only": {"low_below": low_i, "high_from": high_i},
                  "with_metadata": {"low_below": low_m, "high_from": high_m}},
    }
    val = {
        "auc_image": metrics.auc(y_val, p_raw),
        "auc_image_oof_calibrated": metrics.auc(y_val, oof_img),
        "auc_stacked_oof": metrics.auc(y_val, oof_stk),
        "stacking_gain_auc": metrics.auc(y_val, oof_stk) - metrics.auc(y_val, oof_img),
        "ece_raw": metrics.ece(y_val, p_raw),
        "ece_calibrated_in_sample": metrics.ece(y_val, p_cal),
        "ece_calibrated_oof": metrics.ece(y_val, oof_img),
        "ece_stacked_oof": metrics.ece(y_val, oof_stk),
        "tiers_image_only_oof": metrics.tier_table(y_val, oof_img, low_i, high_i),
        "tiers_with_metadata_oof": metrics.tier_table(y_val, oof_stk, low_m, high_m),
    }
    return cfg, val


def assess(p7: np.ndarray, p_tab: float | None, cfg: dict) -> dict:
    """One image: the Python twin of ``src/ensemble.rs`` (used for golden vectors)."""
    z = float(metrics.logit(malignant_prob(p7)))
    cal = cfg["calibration"]
    image_p = float(metrics.sigmoid(cal["a"] * z + cal["b"]))
    if p_tab is None:
        final, t = image_p, cfg["tiers"]["image_only"]
    else:
        s = cfg["stacker"]
        final = float(metrics.sigmoid(s["intercept"] + s["image_coef"] * z + s["tabular_coef"] * float(metrics.logit(p_tab))))
        t = cfg["tiers"]["with_metadata"]
    tier = "low" if final < t["low_below"] else ("high" if final >= t["high_from"] else "moderate")
    return {"malignant_probability": final, "image_probability": image_p, "tabular_probability": p_tab,
            "risk_tier": tier, "diagnosis": {c: float(v) for c, v in zip(CLASSES, p7)}}
