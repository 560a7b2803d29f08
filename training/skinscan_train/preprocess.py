"""Canonical preprocessing, mirrored line for line by ``src/preprocess.rs``.

decode (PIL, EXIF orientation applied, alpha flattened on a background)
-> squash the whole image to 224x224 with an antialiased triangle (bilinear) filter, in float
-> scale to [0, 1], subtract mean, divide by std -> NCHW float32.

The resize is PIL's BILINEAR coefficient rule (support 1, widened by the downscale factor,
weights normalised per output pixel) computed in float64 and applied in float32 *without*
rounding to 8 bits between passes, so that the Rust side can reproduce it exactly.
"""
from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageOps

SIZE = 224
# EfficientNet-Lite was trained by TF with inputs in [-1, 1]; shared/notes/model-baseline.md
# found its first batch-norm fits that range better than ImageNet mean/std.
MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)
SCALE = 255.0
BACKGROUND = (255, 255, 255)


def resize_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) float32 matrix of triangle-filter weights; rows sum to 1."""
    scale = n_in / n_out
    filterscale = max(scale, 1.0)
    support = 1.0 * filterscale
    w = np.zeros((n_out, n_in), dtype=np.float64)
    for i in range(n_out):
        center = (i + 0.5) * scale
        lo = max(int(math.floor(center - support + 0.5)), 0)
        hi = min(int(math.floor(center + support + 0.5)), n_in)
        js = np.arange(lo, hi)
        k = np.maximum(0.0, 1.0 - np.abs((js + 0.5 - center) / filterscale))
        total = k.sum()
        if total > 0:
            w[i, lo:hi] = k / total
    return w.astype(np.float32)


_CACHE: dict[tuple[int, int], np.ndarray] = {}


def _weights(n_in: int, n_out: int) -> np.ndarray:
    key = (n_in, n_out)
    if key not in _CACHE:
        _CACHE[key] = resize_weights(n_in, n_out)
    return _CACHE[key]


def resize(rgb: np.ndarray, size: int = SIZE) -> np.ndarray:
    """uint8 HxWx3 -> float32 size x size x 3 in [0, 255] (horizontal pass, then vertical)."""
    h, w, _ = rgb.shape
    x = rgb.astype(np.float32)
    wx = _weights(w, size)  # (size, w)
    wy = _weights(h, size)  # (size, h)
    tmp = np.einsum("hwc,ow->hoc", x, wx, optimize=True)
    return np.einsum("hoc,ph->poc", tmp, wy, optimize=True).astype(np.float32)


def decode(data: bytes | str, background=BACKGROUND) -> np.ndarray:
    """Bytes or path -> uint8 HxWx3 RGB, upright (EXIF) and with alpha flattened."""
    im = Image.open(io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data)
    im = ImageOps.exif_transpose(im)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, tuple(background) + (255,))
        im = Image.alpha_composite(bg, im)
    return np.asarray(im.convert("RGB"), dtype=np.uint8)


def normalize(resized: np.ndarray, mean=MEAN, std=STD, scale=SCALE) -> np.ndarray:
    """float HxWx3 in [0, 255] -> float32 3xHxW normalised."""
    x = resized.astype(np.float32) / np.float32(scale)
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def preprocess(data: bytes | str) -> np.ndarray:
    """The whole inference preprocessing: 1x3x224x224 float32."""
    return normalize(resize(decode(data)))[None]
