"""Compact weight storage for the image model (issue 15): the same network, a smaller file.

Convolution kernels are stored as int8 with one float scale per output channel (symmetric,
``scale = max|w| / 127``), except the kernels where int8 moves the output most for their size
(up to ``FINE_BUDGET`` weights; measured on validation photos, one kernel at a time). Those are
stored in ``FINE_BITS``-bit fixed point, also with a scale per output channel, split in two
planes gzip compresses well: the high bits as int8 and the low ``FINE_BITS - 8`` bits as uint8
(``q = 2^(FINE_BITS-8) * hi + lo``). On the validation photos this moves the logits about as
little as float16 did (0.0073 against 0.0064 mean |change|; int8 alone: 0.037) for 0.31 MB less
gzipped. The graph expands every kernel back to float32 with ``Cast``, ``Mul`` (and ``Add``)
nodes in front of the convolution. Those nodes only read constants, so tract and onnxruntime fold
them once, when the model is built: the network still computes in float32.

The network's Mahalanobis factors (``FACTORS``: the Cholesky factors of the OOD and retake
Gaussians' precision matrices, 224x224 each, 1.6 MB as float32, a fifth of the file gzipped) are
stored as float16, behind a ``Cast``; ``compare`` checks the OOD scores they give move by less
than ``FACTOR_LIMIT`` relative. mixed.py stores its own heads' factors the same way, rounded when
they are fitted, so that its Python twins compute with the very values the graph holds.
Everything else (biases, the classifier, the mixed-data heads' small weights) stays float32.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

FINE_BITS = 11
FORMAT = f"int8-per-channel+int{FINE_BITS}-split"
FINE_BUDGET = 600_000  # weights kept in FINE_BITS bits: about 0.2 MB more gzipped than int8
PREFIX = "q_"          # initializers and nodes this module adds; mixed.strip_heads leaves them alone
MIN_SIZE = 1024        # smaller kernels are not worth a scale per channel
FACTORS = ("ood_L", "rt_L")  # image_models.Exported's Mahalanobis factors
FACTOR_LIMIT = 1e-3    # largest relative change of an OOD score that float16 factors may cause


def quantize(w: np.ndarray, bits: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """``w`` [O, ...] -> (integers [O, ...] in ±(2^(bits-1) - 1): int8 for 8 bits, else int32;
    float32 scales [O, 1, ...]) with ``q * s`` close to ``w``."""
    top = (1 << (bits - 1)) - 1
    flat = np.abs(w.reshape(w.shape[0], -1)).max(1)
    s = np.where(flat > 0, flat / top, 1.0).astype(np.float32).reshape((-1,) + (1,) * (w.ndim - 1))
    q = np.clip(np.rint(w / s), -top, top).astype(np.int8 if bits == 8 else np.int32)
    return q, s


def split(q: np.ndarray, bits: int = FINE_BITS) -> tuple[np.ndarray, np.ndarray]:
    """``bits``-bit integers -> (int8 high part, uint8 low ``bits - 8`` bits): ``q = 2^(bits-8) * hi + lo``."""
    shift = bits - 8
    hi = (q >> shift).astype(np.int8)  # floor division: lo is never negative
    lo = (q - (hi.astype(np.int32) << shift)).astype(np.uint8)
    return hi, lo


def kernels(onnx_path: Path) -> dict[str, np.ndarray]:
    """The convolution kernels worth compacting: float32, at least MIN_SIZE weights, one consumer."""
    import onnx
    from onnx import numpy_helper
    g = onnx.load(str(onnx_path)).graph
    conv = {n.input[1] for n in g.node if n.op_type == "Conv" and len(n.input) > 1}
    uses: dict[str, int] = {}
    for n in g.node:
        for x in n.input:
            uses[x] = uses.get(x, 0) + 1
    out = {}
    for t in g.initializer:
        a = numpy_helper.to_array(t)
        if t.name in conv and a.dtype == np.float32 and a.size >= MIN_SIZE and uses.get(t.name) == 1:
            out[t.name] = a
    return out


def factors(onnx_path: Path) -> list[str]:
    """The network's Mahalanobis factors still stored as float32."""
    import onnx
    from onnx import TensorProto
    return [t.name for t in onnx.load(str(onnx_path)).graph.initializer
            if t.name in FACTORS and t.data_type == TensorProto.FLOAT]


def _with(onnx_path: Path, weights: dict[str, np.ndarray]):
    """An onnxruntime session of the graph with some initializers replaced (float32)."""
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper
    m = onnx.load(str(onnx_path))
    for t in m.graph.initializer:
        if t.name in weights:
            t.CopyFrom(numpy_helper.from_array(np.asarray(weights[t.name], np.float32), t.name))
    return ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])


def _logits(sess, x: np.ndarray) -> np.ndarray:
    return np.concatenate([sess.run(["logits"], {"input0": xi[None]})[0] for xi in x])


def dequantized(w: np.ndarray, bits: int = 8) -> np.ndarray:
    q, s = quantize(w, bits)
    return q.astype(np.float32) * s


def choose_fine(onnx_path: Path, x: np.ndarray, budget: int = FINE_BUDGET) -> tuple[list[str], dict]:
    """The kernels to keep in FINE_BITS bits: each kernel alone is made int8 and the mean |change|
    of the logits on ``x`` measured; kernels are taken by that change per weight, largest first,
    while the budget lasts."""
    ks = kernels(onnx_path)
    ref = _logits(_with(onnx_path, {}), x)
    sens = {k: float(np.abs(_logits(_with(onnx_path, {k: dequantized(w)}), x) - ref).mean()) for k, w in ks.items()}
    keep, used = [], 0
    for k in sorted(ks, key=lambda k: -sens[k] / ks[k].size):
        if used + ks[k].size <= budget:
            keep.append(k)
            used += ks[k].size
    mixed = {k: dequantized(w, FINE_BITS if k in keep else 8) for k, w in ks.items()}
    err = {"mean_abs_logit_change_all_int8": float(np.abs(_logits(_with(onnx_path, {k: dequantized(w) for k, w in ks.items()}), x) - ref).mean()),
           "mean_abs_logit_change_chosen": float(np.abs(_logits(_with(onnx_path, mixed), x) - ref).mean()),
           f"int{FINE_BITS}_weights": int(used)}
    return keep, err


def compact(onnx_in: Path, onnx_out: Path, fine: list[str] = (), factors: bool = True) -> dict:
    """Store ``onnx_in``'s convolution kernels compactly (``fine``: those kept in FINE_BITS bits,
    the rest int8, each per output channel) and, with ``factors``, its Mahalanobis factors as
    float16; returns a
    record for the manifest. A graph that is already compact has nothing left to compact and is
    written unchanged."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    m = onnx.load(str(onnx_in))
    g = m.graph
    ks = kernels(onnx_in)
    keep, nodes, worst, n8, nfine = [], [], 0.0, 0, 0
    for t in g.initializer:
        if factors and t.name in FACTORS and t.data_type == TensorProto.FLOAT:
            base = PREFIX + t.name
            keep.append(numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float16), base + "_f16"))
            nodes.append(helper.make_node("Cast", [base + "_f16"], [t.name], to=TensorProto.FLOAT, name=base + "/cast"))
            continue
        if t.name not in ks:
            keep.append(t)
            continue
        a = ks[t.name]
        base = PREFIX + t.name.replace("::", "_").replace(".", "_")
        if t.name in fine:
            q, s = quantize(a, FINE_BITS)
            hi, lo = split(q)
            keep += [numpy_helper.from_array(hi, base + "_hi"), numpy_helper.from_array(lo, base + "_lo"),
                     numpy_helper.from_array((s * (1 << (FINE_BITS - 8))).astype(np.float32), base + "_hi_scale"),
                     numpy_helper.from_array(s, base + "_lo_scale")]
            nodes += [helper.make_node("Cast", [base + "_hi"], [base + "_hi_f32"], to=TensorProto.FLOAT, name=base + "/cast_hi"),
                      helper.make_node("Mul", [base + "_hi_f32", base + "_hi_scale"], [base + "_hi_w"], name=base + "/scale_hi"),
                      helper.make_node("Cast", [base + "_lo"], [base + "_lo_f32"], to=TensorProto.FLOAT, name=base + "/cast_lo"),
                      helper.make_node("Mul", [base + "_lo_f32", base + "_lo_scale"], [base + "_lo_w"], name=base + "/scale_lo"),
                      helper.make_node("Add", [base + "_hi_w", base + "_lo_w"], [t.name], name=base + "/join")]
            nfine += 1
            continue
        q, s = quantize(a)
        worst = max(worst, float(np.abs(q.astype(np.float32) * s - a).max()))
        keep += [numpy_helper.from_array(q, base + "_int8"), numpy_helper.from_array(s, base + "_scale")]
        nodes += [helper.make_node("Cast", [base + "_int8"], [base + "_f32"], to=TensorProto.FLOAT, name=base + "/cast"),
                  helper.make_node("Mul", [base + "_f32", base + "_scale"], [t.name], name=base + "/scale")]
        n8 += 1
    del g.initializer[:]
    g.initializer.extend(keep)
    rest = list(g.node)
    del g.node[:]
    g.node.extend(nodes + rest)
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, str(onnx_out))
    stored_factors = {PREFIX + f + "_f16" for f in FACTORS}
    count = lambda end: sum(1 for t in keep if t.name.startswith(PREFIX) and t.name.endswith(end))
    return {"format": FORMAT, "kernels": count("_int8") + count("_hi"), "int8_kernels": count("_int8"),
            f"int{FINE_BITS}_kernels": count("_hi"), "float16_factors": sum(1 for t in keep if t.name in stored_factors),
            "newly_quantized": n8 + nfine,
            "max_abs_int8_weight_error": worst if n8 else None}


def compare(f32_path: Path, compact_path: Path, x: np.ndarray, outputs=("logits", "embedding"),
            relative=("ood", "ood_retake")) -> dict:
    """Largest absolute difference of ``outputs`` between the float32 graph and the compact one
    on inputs ``x`` [N, 3, H, W] (checked in training, like every export), and the largest
    relative difference of the ``relative`` outputs (OOD scores: their cuts are relative), under
    ``<name>_relative``."""
    import onnxruntime as ort
    a = ort.InferenceSession(str(f32_path), providers=["CPUExecutionProvider"])
    b = ort.InferenceSession(str(compact_path), providers=["CPUExecutionProvider"])
    have = {o.name for o in a.get_outputs()}
    relative = [k for k in relative if k in have]
    names = list(outputs) + relative
    worst = {k: 0.0 for k in outputs} | {k + "_relative": 0.0 for k in relative}
    for xi in x:
        ra = dict(zip(names, a.run(names, {"input0": xi[None]})))
        rb = dict(zip(names, b.run(names, {"input0": xi[None]})))
        for k in outputs:
            worst[k] = max(worst[k], float(np.abs(ra[k] - rb[k]).max()))
        for k in relative:
            rel = np.abs(ra[k] - rb[k]) / np.maximum(np.abs(ra[k]), 1e-6)
            worst[k + "_relative"] = max(worst[k + "_relative"], float(rel.max()))
    return worst
