"""Metrics shared by training, the report and the tests (scikit-learn where it has them)."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import balanced_accuracy_score, confusion_matrix, roc_auc_score


def logit(p, eps: float = 1e-6):
    p = np.clip(np.asarray(p, np.float64), eps, 1 - eps)
    return np.log(p / (1 - p))


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-np.asarray(z, np.float64)))


def auc(y, p) -> float:
    return float(roc_auc_score(y, p)) if len(set(np.asarray(y).tolist())) == 2 else float("nan")


def auc_ci(y, p, n_boot: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap 95% interval of ROC-AUC."""
    y, p = np.asarray(y), np.asarray(p)
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(n_boot):
        i = rng.integers(0, len(y), len(y))
        if y[i].min() != y[i].max():
            vals.append(roc_auc_score(y[i], p[i]))
    return float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5))


def ece(y, p, bins: int = 10) -> float:
    """Expected calibration error of the malignant probability, equal-width bins."""
    y, p = np.asarray(y, np.float64), np.asarray(p, np.float64)
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    e = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            e += m.mean() * abs(p[m].mean() - y[m].mean())
    return float(e)


def binary_at(y, p, thr: float) -> dict:
    y, pred = np.asarray(y), (np.asarray(p) >= thr).astype(int)
    tn, fp, fn, tp = confusion_matrix(y, pred, labels=[0, 1]).ravel()
    sens = tp / max(tp + fn, 1)
    spec = tn / max(tn + fp, 1)
    return {"threshold": float(thr), "accuracy": float((tp + tn) / len(y)), "balanced_accuracy": float((sens + spec) / 2),
            "sensitivity": float(sens), "specificity": float(spec), "tp": int(tp), "fp": int(fp), "tn": int(tn), "fn": int(fn)}


def youden_threshold(y, p) -> float:
    """Threshold maximising sensitivity + specificity (chosen on validation only)."""
    y, p = np.asarray(y), np.asarray(p)
    best, thr = -1.0, 0.5
    for t in np.unique(p):
        m = binary_at(y, p, t)
        if m["balanced_accuracy"] > best:
            best, thr = m["balanced_accuracy"], float(t)
    return thr


def tier_thresholds(y, p, low_miss: float, high_spec: float) -> tuple[float, float]:
    """(low_below, high_from) on validation.

    * ``low`` = p < low_below holds at most ``low_miss`` of the malignant cases;
    * ``high`` = p >= high_from keeps specificity >= ``high_spec`` (at most 1-high_spec of benign reach it).
    """
    y, p = np.asarray(y), np.asarray(p, np.float64)
    mal = np.sort(p[y == 1])
    k = int(np.floor(low_miss * len(mal)))          # at most k malignant strictly below
    low = float(mal[k]) if len(mal) else 0.0
    ben = np.sort(p[y == 0])
    allowed = int(np.floor((1 - high_spec) * len(ben)))  # at most this many benign at or above
    high = float(np.nextafter(ben[len(ben) - allowed - 1], 1.0)) if len(ben) else 1.0
    return low, max(high, low)


def tiers(p, low: float, high: float) -> np.ndarray:
    p = np.asarray(p)
    return np.where(p < low, "low", np.where(p >= high, "high", "moderate"))


def tier_table(y, p, low: float, high: float) -> dict:
    t = tiers(p, low, high)
    y = np.asarray(y)
    out = {}
    for name in ("low", "moderate", "high"):
        m = t == name
        out[name] = {"benign": int(((y == 0) & m).sum()), "malignant": int(((y == 1) & m).sum())}
    n_mal = max(int((y == 1).sum()), 1)
    out["malignant_in_low_fraction"] = out["low"]["malignant"] / n_mal
    out["benign_in_high_fraction"] = out["high"]["benign"] / max(int((y == 0).sum()), 1)
    return out


def multiclass(y7, prob7, k: int = 7) -> dict:
    pred = np.asarray(prob7).argmax(1)
    return {"balanced_accuracy": float(balanced_accuracy_score(y7, pred)),
            "accuracy": float((pred == np.asarray(y7)).mean()),
            "confusion": confusion_matrix(y7, pred, labels=list(range(k))).tolist()}
