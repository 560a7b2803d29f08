"""Photo-quality measures for the gate, mirrored by ``src/quality.rs``.

All measures run on the canonical 224x224 float RGB image (after decode + squash resize, values
0..255), on luminance Y = 0.299 R + 0.587 G + 0.114 B, inside the central window
(the middle ``center`` fraction of each side) so a dermatoscope's dark vignette does not count.

* sharpness: variance of the 4-neighbour Laplacian of Y (valid pixels of the window);
* exposure: mean of Y in the window, and the share of window pixels with Y >= 250 (clipped);
* lesion: the lesion is darker than the skin around it. Y is box-blurred (radius 2); pixels
  below ``mean - k * std`` of the window are "lesion"; we report the lesion's area share of the
  window and its centroid's distance from the image centre (in half-widths), plus the contrast
  (mean Y of skin minus mean Y of lesion) divided by 255.
"""
from __future__ import annotations

import numpy as np


def luminance(img: np.ndarray) -> np.ndarray:
    img = img.astype(np.float32)
    return (np.float32(0.299) * img[..., 0] + np.float32(0.587) * img[..., 1] + np.float32(0.114) * img[..., 2]).astype(np.float32)


def window(n: int, center: float) -> tuple[int, int]:
    m = int(round(n * (1 - center) / 2))
    return m, n - m


def box_blur(y: np.ndarray, r: int) -> np.ndarray:
    """Mean over a (2r+1)^2 box, edges clamped (same as Rust's)."""
    p = np.pad(y, r, mode="edge").astype(np.float64)
    c = p.cumsum(0).cumsum(1)
    c = np.pad(c, ((1, 0), (1, 0)))
    k = 2 * r + 1
    s = c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]
    return (s / (k * k)).astype(np.float32)


def measures(img: np.ndarray, center: float, k: float) -> dict:
    y = luminance(img)
    h, w = y.shape
    y0, y1 = window(h, center)
    x0, x1 = window(w, center)
    win = y[y0:y1, x0:x1].astype(np.float64)
    lap = (4 * win[1:-1, 1:-1] - win[:-2, 1:-1] - win[2:, 1:-1] - win[1:-1, :-2] - win[1:-1, 2:])
    sharp = float(lap.var())
    mean = float(win.mean())
    clipped = float((win >= 250).mean())
    sm = box_blur(y, 2)[y0:y1, x0:x1].astype(np.float64)
    thr = sm.mean() - k * sm.std()
    mask = sm < thr
    area = float(mask.mean())
    if mask.any():
        ys, xs = np.nonzero(mask)
        cy, cx = ys.mean() + y0, xs.mean() + x0
        off = float(max(abs(cy + 0.5 - h / 2) / (h / 2), abs(cx + 0.5 - w / 2) / (w / 2)))
        contrast = float((sm[~mask].mean() - sm[mask].mean()) / 255.0) if (~mask).any() else 0.0
    else:
        off, contrast = 1.0, 0.0
    return {"sharpness": sharp, "brightness": mean, "clipped": clipped, "lesion_area": area,
            "lesion_offset": off, "lesion_contrast": contrast}


def photo_problem(m: dict, t: dict) -> str | None:
    """The retake reason an exposure or blur problem gives, in the gate's order (dark, overexposed, blurry)."""
    if m["brightness"] < t["min_brightness"]:
        return "too_dark"
    if m["brightness"] > t["max_brightness"] or m["clipped"] > t["max_clipped"]:
        return "overexposed"
    if m["sharpness"] < t["min_sharpness"]:
        return "blurry"
    return None


RETAKE_REASONS = ["too_dark", "overexposed", "blurry"]  # order of the model's ``ood_retake`` output


def verdict(m: dict, ood: float | None, q: dict, ood_retake=None) -> tuple[str, str | None]:
    """(verdict, reason) in the order the Rust gate checks them:
    ood > hard_threshold -> not_a_lesion; exposure or blur problem r -> not_a_lesion if
    ood_retake[r] > retake_max[r], else retake r; ood > threshold -> not_a_lesion; lesion size/centring.

    ``ood_retake``: the model's scores against training photos degraded as too dark, overexposed
    and blurry (``RETAKE_REASONS`` order)."""
    t = q["thresholds"]
    o = q.get("ood") if ood is not None else None
    # Far outside anything lesion-like, even a badly exposed lesion: not a lesion.
    if o and ood > o["hard_threshold"]:
        return "not_a_lesion", "not_a_lesion"
    problem = photo_problem(m, t)
    if problem:
        # A dark, washed-out or blurred lesion still looks like training lesions with the same
        # problem; a blurred face or a dark night sky does not, and retaking will not help.
        limit = (o.get("retake_max") or {}).get(problem) if o else None
        if limit is not None and ood_retake is not None and float(ood_retake[RETAKE_REASONS.index(problem)]) > limit:
            return "not_a_lesion", "not_a_lesion"
        return "retake", problem
    # A well-exposed, sharp photo that still does not look like the training images.
    if ood is not None and ood > q["ood"]["threshold"]:
        return "not_a_lesion", "not_a_lesion"
    if m["lesion_area"] < t["min_lesion_area"] or m["lesion_contrast"] < t["min_lesion_contrast"]:
        return "retake", "lesion_too_small"
    if m["lesion_offset"] > t["max_lesion_offset"]:
        return "retake", "not_centred"
    return "ok", None


def non_lesion_first(m: dict, q: dict, outputs: dict, verdict: str, reason: str | None) -> tuple[str, str | None]:
    """The Rust gate's ``Gate::non_lesion_first``: ``(verdict, reason)`` unless the model's
    non-lesion logit (in ``outputs``) is beyond the manifest's cut, or a photo without an exposure
    problem has less colour than ``min_colour``: then not a lesion."""
    nl = (q.get("ood") or {}).get("non_lesion")
    if not nl:
        return verdict, reason
    value = lambda name: float(np.ravel(outputs[name])[0])
    exposed = photo_problem(m, q["thresholds"]) not in ("too_dark", "overexposed")
    grey = exposed and nl.get("colour_output") is not None and value(nl["colour_output"]) < nl["min_colour"]
    if value(nl["output"]) > nl["threshold"] or grey:
        return "not_a_lesion", "not_a_lesion"
    return verdict, reason


# ---------------------------------------------------------------- synthetic degradations (float 0..255)
def gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    r = int(np.ceil(3 * sigma))
    x = np.arange(-r, r + 1)
    k = np.exp(-(x ** 2) / (2 * sigma ** 2)); k /= k.sum()
    out = img.astype(np.float32)
    for axis in (0, 1):
        pad = [(r, r) if a == axis else (0, 0) for a in range(3)]
        p = np.pad(out, pad, mode="edge")
        out = sum(k[i] * np.take(p, range(i, i + out.shape[axis]), axis=axis) for i in range(2 * r + 1))
    return out


def darken(img: np.ndarray, factor: float = 0.22) -> np.ndarray:
    return img.astype(np.float32) * factor


def overexpose(img: np.ndarray, factor: float = 2.6) -> np.ndarray:
    return np.clip(img.astype(np.float32) * factor + 40, 0, 255)


# Each problem: (function of (image, strength), the fixed strength of the gate set and threshold fitting).
_DEGRADE = {"blurry": (gaussian_blur, 3.0), "too_dark": (darken, 0.22), "overexposed": (overexpose, 2.6)}
DEGRADATIONS = {r: (lambda im, f=f, v=v: f(im, v)) for r, (f, v) in _DEGRADE.items()}

# The same problems over a range of strengths, for the per-problem OOD Gaussians. Real photos are
# blurred at camera resolution and then downscaled, so a fixed blur applied to the 224x224 image
# (sigma 3 here is about sigma 8 on a 600-pixel photo) covers only severe blur.
STRENGTHS = {"blurry": (0.7, 4.0), "too_dark": (0.12, 0.35), "overexposed": (1.8, 3.2)}


def degrade_random(img: np.ndarray, reason: str, rng: np.random.Generator) -> np.ndarray:
    lo, hi = STRENGTHS[reason]
    return _DEGRADE[reason][0](img, float(rng.uniform(lo, hi)))


# ---------------------------------------------------------------- fitting (training side only)
PARAMS = {"center": 0.8, "k": 1.0, "blur_radius": 2}


def _q(v, p):
    return float(np.percentile(np.asarray(v, np.float64), p))


def fit_thresholds(clean: list[np.ndarray], seed: int, n_degraded: int = 200) -> tuple[dict, dict]:
    """Thresholds from in-distribution training images and degraded copies of *training* images.

    Each cut sits between the clean distribution's 0.5% tail and the degraded one's 99.5% tail
    (geometric mean for the scale-like sharpness)."""
    rng = np.random.default_rng(seed)
    m_clean = [measures(im.astype(np.float32), PARAMS["center"], PARAMS["k"]) for im in clean]
    pick = rng.choice(len(clean), min(n_degraded, len(clean)), replace=False)
    deg = {name: [measures(f(clean[i]), PARAMS["center"], PARAMS["k"]) for i in pick] for name, f in DEGRADATIONS.items()}
    col = lambda ms, key: [m[key] for m in ms]
    t = {
        "min_brightness": 0.5 * (_q(col(m_clean, "brightness"), 0.5) + _q(col(deg["too_dark"], "brightness"), 99.5)),
        "max_brightness": max(_q(col(m_clean, "brightness"), 99.9) + 10.0, 220.0),
        "max_clipped": 0.5 * (_q(col(m_clean, "clipped"), 99.5) + _q(col(deg["overexposed"], "clipped"), 5)),
        "min_sharpness": float(np.sqrt(max(_q(col(m_clean, "sharpness"), 0.5), 1e-6) * max(_q(col(deg["blurry"], "sharpness"), 99.5), 1e-6))),
        "min_lesion_area": 0.5 * _q(col(m_clean, "lesion_area"), 0.5),
        "min_lesion_contrast": 0.5 * _q(col(m_clean, "lesion_contrast"), 0.5),
        "max_lesion_offset": max(_q(col(m_clean, "lesion_offset"), 99.5), 0.7),
    }
    summary = {"n_clean": len(m_clean), "n_degraded_each": len(pick),
               "clean_percentiles": {k: {p: _q(col(m_clean, k), p) for p in (0.5, 50, 99.5)} for k in m_clean[0]}}
    return t, summary


def pooled_stats(fmap: np.ndarray) -> np.ndarray:
    """[N, C, H, W] feature maps -> [N, 2C]: per-channel spatial mean and (population) std."""
    f = np.asarray(fmap, np.float32)
    return np.concatenate([f.mean((2, 3)), f.std((2, 3))], 1)


def fit_ood(train_stats: np.ndarray, val_stats: np.ndarray, val_quantile: float = 99.0, shrink: float = 1e-3) -> dict:
    """Mahalanobis distance of an inner block's pooled statistics (mean and std of each channel of
    EfficientNet block 10: frozen ImageNet weights on the CPU path, fine-tuned ones after
    finetune.py) from the training images' distribution, divided by the dimension. Mid-level
    statistics separate dermoscopy from other photos far better than the final embedding (which
    maps a cat near the lesion classes it was trained on).
    score = |(x - mu) @ L|^2 / D with L L^T = (Cov + shrink I)^-1.
    The threshold is the ``val_quantile`` percentile of held-out *in-distribution* (validation)
    scores: no out-of-distribution image is used to fit it."""
    x = np.asarray(train_stats, np.float64)
    mu = x.mean(0)
    cov = np.cov(x.T) + shrink * np.eye(x.shape[1])
    L = np.linalg.cholesky(np.linalg.inv(cov))
    d = x.shape[1]

    def score(v):
        z = (np.asarray(v, np.float64) - mu) @ L
        return (z * z).sum(1) / d
    sv = score(val_stats)
    return {"mu": mu.astype(np.float32), "L": L.astype(np.float32), "dim": d, "threshold": _q(sv, val_quantile),
            "score_fn": score, "val_percentiles": {p: _q(sv, p) for p in (50, 95, 99, 99.5)}}
