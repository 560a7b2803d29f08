"""Both kinds of photo: dermoscopic close-ups (HAM10000, ISIC 2017) and smartphone photos
(PAD-UFES-20), read and embedded by the shipped image model.

The image model's convolutional body is the fully fine-tuned EfficientNet-Lite0 that ships; the
mixed-data stage (``training/mixed.py``) fits small heads on its pooled 1280-d embedding, averaged
over the same quarter turns the pipeline runs, and on its block-10 statistics (the OOD gate).
This module owns reading the sets and computing those features once (cached, resumable).
"""
from __future__ import annotations

import csv
import random
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import torch

from . import preprocess
from .data import CLASSES, Item
from .image_models import quarter_turns

# PAD-UFES-20's diagnoses outside HAM10000's seven: actinic keratosis is HAM's `akiec` ("actinic
# keratosis / intraepithelial carcinoma"); squamous cell carcinoma (PAD's SCC includes Bowen's
# disease, i.e. intraepithelial carcinoma) joins it there: the keratinocyte-cancer class. Both stay
# malignant. The model card says so.
PAD_DX = {"ak": "akiec", "scc": "akiec"}
ANSWERS = ["itch", "grew", "hurt", "changed", "bleed", "elevation"]
# The block statistics node and the feature map of the shipped graph (image_models.Exported).
STATS_NODE = "/Concat_output_0"
FMAP_NODE = "/act/Clip_output_0"


@dataclass
class Photo(Item):
    """An image with its photo type and (PAD only) the patient's answers."""
    kind: str = "dermoscopic"  # or "clinical"
    answers: dict = field(default_factory=dict)  # name -> True/False (absent = unknown)
    diameter: float | None = None
    split: str = ""


def _tri(v: str):
    v = (v or "").strip().lower()
    return True if v in ("true", "yes", "1") else False if v in ("false", "no", "0") else None


def read_pad(root: Path) -> list[Photo]:
    """``pad-ufes-20``: every photo, its ``split`` kept (``test`` is for the final report only)."""
    base = root / "pad-ufes-20"
    out = []
    with open(base / "labels.csv", newline="") as f:
        for r in csv.DictReader(f):
            dx = PAD_DX.get(r["dx"], r["dx"])
            if dx not in CLASSES:
                continue
            ans = {k: _tri(r.get(k)) for k in ANSWERS}
            try:
                diam = float(r["diameter_1"]) if r.get("diameter_1") not in ("", None, "UNK") else None
            except ValueError:
                diam = None
            age = float(r["age"]) if r.get("age") else None
            out.append(Photo(
                image=r["image"], path=base / "images" / r["image"], dx=dx, malignant=int(r["malignant"]),
                age=age, sex=r.get("sex") or None, site=r.get("site") or None, group=r["patient_id"],
                source="pad-ufes-20", kind="clinical", answers={k: v for k, v in ans.items() if v is not None},
                diameter=diam, split=r["split"],
            ))
    return out


def as_photos(items: list[Item], split: str) -> list[Photo]:
    return [Photo(**vars(it), kind="dermoscopic", split=split) for it in items]


def patient_folds(items: list[Photo], k: int, seed: int) -> np.ndarray:
    """Fold per photo, whole patients per fold, patients stratified by their worst diagnosis."""
    by_group: dict[str, int] = defaultdict(int)
    for it in items:
        by_group[it.group] = max(by_group[it.group], it.malignant)
    rng = random.Random(seed)
    fold_of = {}
    for m in (0, 1):
        gs = sorted(g for g, v in by_group.items() if v == m)
        rng.shuffle(gs)
        for i, g in enumerate(gs):
            fold_of[g] = i % k
    return np.array([fold_of[it.group] for it in items])


def soften(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A sharp photo made as soft as HAM10000's upscaled 200x150 copies: down to a random
    150-260 px long side and back (the photo-type head must not learn 'soft = dermoscopic')."""
    from PIL import Image
    h, w, _ = rgb.shape
    s = rng.uniform(150, 260) / max(h, w)
    if s >= 1:
        return rgb
    im = Image.fromarray(rgb).resize((max(8, round(w * s)), max(8, round(h * s))), Image.BILINEAR)
    return np.asarray(im.resize((w, h), Image.BILINEAR))


class Embedder:
    """The shipped image graph in onnxruntime, with its block statistics exposed."""

    def __init__(self, onnx_path: Path, threads: int = 2):
        import onnx
        import onnxruntime as ort
        m = onnx.load(str(onnx_path))
        have = {o.name for o in m.graph.output}
        for name in (STATS_NODE,):
            if name not in have:
                m.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
        # A batch dimension (the export fixes it to 1): the graph has no batch-dependent reshape.
        for v in list(m.graph.input) + list(m.graph.output):
            if v.type.tensor_type.HasField("shape") and v.type.tensor_type.shape.dim:
                v.type.tensor_type.shape.dim[0].dim_param = "N"
        del m.graph.value_info[:]
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        self.sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
        self.names = ["logits", "embedding", "ood", "ood_retake", STATS_NODE]

    def run(self, x: np.ndarray) -> dict:
        return dict(zip(self.names, self.sess.run(self.names, {"input0": x.astype(np.float32)})))


def degrade(resized: np.ndarray, i: int, seed: int) -> np.ndarray:
    """Photo ``i`` made too dark, overexposed or blurry (in turn) at a random strength, on the
    canonical 224x224 image, as train.py degrades training photos for the gate."""
    from . import quality
    rng = np.random.default_rng(seed * 1_000_003 + i)
    reason = quality.RETAKE_REASONS[i % len(quality.RETAKE_REASONS)]
    return quality.degrade_random(np.clip(np.rint(resized), 0, 255), reason, rng)


def embed(emb: Embedder, items: list[Photo], turns: int, cache: Path, soft_seed: int | None = None,
          batch: int = 16, log=print, degrade_seed: int | None = None) -> dict:
    """Per photo: mean embedding and mean logit over ``turns`` (the pipeline averages the
    heads' outputs over turns, and a linear head on the mean embedding is the mean of its
    outputs), mean softmax, and the first view's OOD scores and block statistics. Cached.
    ``soft_seed``: each photo made soft first (:func:`soften`); ``degrade_seed``: each photo
    degraded after the resize (:func:`degrade`)."""
    if cache.exists():
        d = dict(np.load(cache))
        if len(d["emb"]) == len(items) and "chroma" in d:
            return d
    out = {k: [] for k in ("emb", "p7", "ood", "ood_retake", "stats", "chroma")}

    def load(i):
        it = items[i]
        rgb = preprocess.decode(str(it.path))
        if soft_seed is not None:
            rgb = soften(rgb, np.random.default_rng(soft_seed * 1_000_003 + i))
        resized = preprocess.resize(rgb)
        if degrade_seed is not None:
            resized = degrade(resized, i, degrade_seed)
        return preprocess.normalize(resized)

    t0 = time.time()
    with ThreadPoolExecutor(2) as pool:
        for s in range(0, len(items), batch):
            xs = list(pool.map(load, range(s, min(s + batch, len(items)))))
            x = np.concatenate([quarter_turns(torch.from_numpy(v[None]), turns).numpy() for v in xs])
            r = emb.run(x)
            n = len(xs)
            e = r["embedding"].reshape(n, turns, -1)
            z = r["logits"].reshape(n, turns, -1).astype(np.float64)
            p = np.exp(z - z.max(2, keepdims=True))
            p /= p.sum(2, keepdims=True)
            out["emb"].append(e.mean(1))
            out["p7"].append(p.mean(1))
            out["ood"].append(r["ood"].reshape(n, turns)[:, 0])
            out["ood_retake"].append(r["ood_retake"].reshape(n, turns, 3)[:, 0])
            out["stats"].append(r[STATS_NODE].reshape(n, turns, -1)[:, 0])
            out["chroma"].append(np.array([chroma(v) for v in xs]))
            if (s // batch) % 25 == 0:
                log(f"  embed {cache.name}: {s + n}/{len(items)} ({(s + n) / max(time.time() - t0, 1e-6):.1f} photos/s)")
    d = {k: np.concatenate(v) for k, v in out.items()}
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, **d)
    tmp.rename(cache)
    # How long computing this cache took, for the model card's rebuild time.
    cache.with_suffix(".seconds").write_text(f"{time.time() - t0:.1f}\n")
    return d


def chroma(x: np.ndarray) -> float:
    """How coloured the photo is: the mean over pixels of (largest - smallest channel) on the
    model's input (3xHxW, normalised) taken back to [0, 1]. 0 for a black-and-white photo;
    skin never is. The graph computes the same from its input (``mixed.add_heads``)."""
    rgb = x * np.asarray(preprocess.STD, np.float32)[:, None, None] + np.asarray(preprocess.MEAN, np.float32)[:, None, None]
    return float((rgb.max(0) - rgb.min(0)).mean())


def cached_seconds(work: Path) -> float | None:
    """Seconds the feature caches under ``work`` took to compute (None if any is unrecorded)."""
    caches = sorted(work.glob("*.npz"))
    secs = [c.with_suffix(".seconds") for c in caches]
    if not caches or not all(s.exists() for s in secs):
        return None
    return sum(float(s.read_text()) for s in secs)


def p7_only(onnx_path: Path, items: list[Photo], cache: Path) -> np.ndarray:
    """Softmax of a model's ``logits`` for each photo as given (one view): the compact CNN."""
    import onnxruntime as ort
    if cache.exists():
        p = np.load(cache)
        if len(p) == len(items):
            return p
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    out = []
    for it in items:
        z = sess.run(["logits"], {"input0": preprocess.preprocess(str(it.path))})[0][0].astype(np.float64)
        e = np.exp(z - z.max())
        out.append(e / e.sum())
    p = np.stack(out)
    np.save(cache, p)
    return p

