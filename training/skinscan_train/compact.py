"""Compact weight storage for the image model (issue 15): the same network, a smaller file.

Convolution kernels are stored as int8 with one float scale per output channel (symmetric,
``scale = max|w| / 127``), except the kernels where int8 moves the output most for their size,
which are stored as float16 (up to ``FP16_BUDGET`` weights; measured on validation photos, one
kernel at a time). The graph expands them back to float32 with a ``Cast`` (and, for int8, a
``Mul``) in front of the convolution. Those nodes only read constants, so tract and onnxruntime
fold them once, when the model is built: the network still computes in float32.

Everything else (biases, the classifier, the OOD statistics' matrices, the mixed-data heads)
stays float32: they are small, or (the Mahalanobis factors) a distance's precision rests on them.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

FORMAT = "int8-per-channel+float16"
FP16_BUDGET = 600_000  # weights kept as float16: about 0.55 MB more gzipped than int8
PREFIX = "q_"          # initializers and nodes this module adds; mixed.strip_heads leaves them alone
MIN_SIZE = 1024        # smaller kernels are not worth a scale per channel


def quantize(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``w`` [O, ...] -> (int8 [O, ...], float32 scales [O, 1, ...]) with ``q * s`` close to ``w``."""
    flat = np.abs(w.reshape(w.shape[0], -1)).max(1)
    s = np.where(flat > 0, flat / 127.0, 1.0).astype(np.float32).reshape((-1,) + (1,) * (w.ndim - 1))
    q = np.clip(np.rint(w / s), -127, 127).astype(np.int8)
    return q, s


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


def dequantized(w: np.ndarray) -> np.ndarray:
    q, s = quantize(w)
    return q.astype(np.float32) * s


def choose_float16(onnx_path: Path, x: np.ndarray, budget: int = FP16_BUDGET) -> tuple[list[str], dict]:
    """The kernels to keep as float16: each kernel alone is made int8 and the mean |change| of the
    logits on ``x`` measured; kernels are taken by that change per weight, largest first, while
    the budget lasts."""
    ks = kernels(onnx_path)
    ref = _logits(_with(onnx_path, {}), x)
    sens = {k: float(np.abs(_logits(_with(onnx_path, {k: dequantized(w)}), x) - ref).mean()) for k, w in ks.items()}
    keep, used = [], 0
    for k in sorted(ks, key=lambda k: -sens[k] / ks[k].size):
        if used + ks[k].size <= budget:
            keep.append(k)
            used += ks[k].size
    mixed = {k: (w.astype(np.float16) if k in keep else dequantized(w)) for k, w in ks.items()}
    err = {"mean_abs_logit_change_all_int8": float(np.abs(_logits(_with(onnx_path, {k: dequantized(w) for k, w in ks.items()}), x) - ref).mean()),
           "mean_abs_logit_change_chosen": float(np.abs(_logits(_with(onnx_path, mixed), x) - ref).mean()),
           "float16_weights": int(used)}
    return keep, err


def compact(onnx_in: Path, onnx_out: Path, float16: list[str] = ()) -> dict:
    """Store ``onnx_in``'s convolution kernels compactly (``float16``: those kept as float16, the
    rest int8 per output channel); returns a record for the manifest. A graph that is already
    compact has no kernels left to compact and is written unchanged."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    m = onnx.load(str(onnx_in))
    g = m.graph
    ks = kernels(onnx_in)
    keep, nodes, worst, n8, n16 = [], [], 0.0, 0, 0
    for t in g.initializer:
        if t.name not in ks:
            keep.append(t)
            continue
        a = ks[t.name]
        base = PREFIX + t.name.replace("::", "_").replace(".", "_")
        if t.name in float16:
            keep.append(numpy_helper.from_array(a.astype(np.float16), base + "_f16"))
            nodes.append(helper.make_node("Cast", [base + "_f16"], [t.name], to=TensorProto.FLOAT, name=base + "/cast"))
            n16 += 1
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
    count = lambda end: sum(1 for t in keep if t.name.startswith(PREFIX) and t.name.endswith(end))
    return {"format": FORMAT, "kernels": count("_int8") + count("_f16"), "int8_kernels": count("_int8"),
            "float16_kernels": count("_f16"), "newly_quantized": n8 + n16,
            "max_abs_int8_weight_error": worst if n8 else None}


def compare(f32_path: Path, compact_path: Path, x: np.ndarray, outputs=("logits", "embedding")) -> dict:
    """Largest absolute difference of ``outputs`` between the float32 graph and the compact one
    on inputs ``x`` [N, 3, H, W] (checked in training, like every export)."""
    import onnxruntime as ort
    a = ort.InferenceSession(str(f32_path), providers=["CPUExecutionProvider"])
    b = ort.InferenceSession(str(compact_path), providers=["CPUExecutionProvider"])
    worst = {k: 0.0 for k in outputs}
    for xi in x:
        ra = dict(zip(outputs, a.run(list(outputs), {"input0": xi[None]})))
        rb = dict(zip(outputs, b.run(list(outputs), {"input0": xi[None]})))
        for k in outputs:
            worst[k] = max(worst[k], float(np.abs(ra[k] - rb[k]).max()))
    return worst
