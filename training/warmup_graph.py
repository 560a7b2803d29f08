#!/usr/bin/env python3
"""Write src/warmup.onnx: a tiny graph with the shipped image model's kinds of work (issue 15).

    python training/warmup_graph.py            # rewrites src/warmup.onnx (commit it)

The browser compiles our wasm with a quick baseline compiler first and recompiles a function
with the optimising one only once it has run a while. On a phone's network the wasm arrives
many seconds before the image model; during that wait the worker builds and runs this graph
(src/warmup.rs) so that, when the model arrives, parsing, optimising and the CNN's kernels
already run optimised code. Its weights carry no meaning (a seeded pattern); what matters is
that it takes the same paths: ONNX parsing, int8 and split 11-bit kernels folded through Cast,
Mul and Add, float16 factors, padded and strided convolutions (3x3, depthwise 3x3 and 5x5,
1x1), Clip (ReLU6), residual Add, ReduceMean, Gemm, Einsum, MatMul, Slice, Max, Min, Log,
Concat. It uses only operators of vendor/tract-onnx's list. About 4 kB gzipped inside the wasm.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = Path(__file__).resolve().parent.parent / "src" / "warmup.onnx"
SIDE = 64


def build() -> onnx.ModelProto:
    rng = np.random.default_rng(15)
    inits, nodes = [], []
    n = helper.make_node

    def small(shape):  # few distinct values: the graph adds little to the gzipped wasm
        return (rng.integers(-2, 3, shape) * 0.05).astype(np.float32)

    def const(name, a):
        inits.append(numpy_helper.from_array(np.asarray(a), name))
        return name

    def kernel(name, shape, storage):
        """A kernel stored the way training/skinscan_train/compact.py stores them."""
        w = small(shape)
        s = np.full((shape[0],) + (1,) * (len(shape) - 1), 0.01, np.float32)
        if storage == "int8":
            q = const(name + "_int8", np.clip(np.rint(w / s), -127, 127).astype(np.int8))
            nodes.append(n("Cast", [q], [name + "_f"], to=TensorProto.FLOAT))
            nodes.append(n("Mul", [name + "_f", const(name + "_s", s)], [name]))
        else:  # split 11-bit: int8 high part, uint8 low 3 bits
            q = np.clip(np.rint(w / s), -1023, 1023).astype(np.int32)
            hi, lo = (q >> 3).astype(np.int8), (q & 7).astype(np.uint8)
            nodes.append(n("Cast", [const(name + "_hi", hi)], [name + "_hf"], to=TensorProto.FLOAT))
            nodes.append(n("Mul", [name + "_hf", const(name + "_hs", s * 8)], [name + "_hw"]))
            nodes.append(n("Cast", [const(name + "_lo", lo)], [name + "_lf"], to=TensorProto.FLOAT))
            nodes.append(n("Mul", [name + "_lf", const(name + "_ls", s)], [name + "_lw"]))
            nodes.append(n("Add", [name + "_hw", name + "_lw"], [name]))
        return name

    six = (const("zero", np.float32(0)), const("six", np.float32(6)))

    def conv(x, name, cin, cout, k, stride=1, group=1, storage="int8", act=True, pad=None):
        if pad is not None:  # explicit Pad in front, as the exported EfficientNet has
            nodes.append(n("Pad", [x, const(name + "_pads", np.array(pad, np.int64))], [name + "_p"], mode="constant"))
            x, pads = name + "_p", [0, 0, 0, 0]
        else:
            pads = [k // 2] * 4
        w = kernel(name + "_w", (cout, cin // group, k, k), storage)
        b = const(name + "_b", small(cout))
        nodes.append(n("Conv", [x, w, b], [name + "_c"], kernel_shape=[k, k], strides=[stride, stride],
                       pads=pads, group=group))
        if not act:
            return name + "_c"
        nodes.append(n("Clip", [name + "_c", *six], [name]))
        return name

    x = conv("input0", "stem", 3, 16, 3, 2, pad=[0, 0, 0, 0, 0, 0, 1, 1])
    x = conv(x, "dw1", 16, 16, 3, 1, group=16)
    x = conv(x, "pw1", 16, 24, 1, storage="int11", act=False)
    x = conv(x, "ex2", 24, 48, 1)
    x = conv(x, "dw2", 48, 48, 5, 2, group=48, pad=[0, 0, 1, 1, 0, 0, 2, 2])
    y = conv(x, "pw2", 48, 32, 1, storage="int11", act=False)
    z = conv(x, "sk2", 48, 32, 1, act=False)
    nodes.append(n("Add", [y, z], ["res"]))
    f = conv("res", "head", 32, 64, 1)
    nodes.append(n("ReduceMean", [f], ["emb"], axes=[2, 3], keepdims=0))
    fc = small((7, 64))
    nodes.append(n("Cast", [const("fc_f16", fc.astype(np.float16))], ["fc_w"], to=TensorProto.FLOAT))
    nodes.append(n("Gemm", ["emb", "fc_w", const("fc_b", np.zeros(7, np.float32))], ["logits"], transB=1))
    nodes.append(n("Einsum", ["fc_w", f], ["cam"], equation="kc,nchw->nkhw"))
    # Pooled statistics and a Mahalanobis distance, as the OOD outputs compute them.
    nodes.append(n("ReduceMean", [x], ["m4"], axes=[2, 3], keepdims=1))
    nodes.append(n("Sub", [x, "m4"], ["d4"]))
    nodes.append(n("Mul", ["d4", "d4"], ["sq4"]))
    nodes.append(n("ReduceMean", ["sq4"], ["v"], axes=[2, 3], keepdims=0))
    nodes.append(n("Sqrt", ["v"], ["sd"]))
    nodes.append(n("ReduceMean", [x], ["m"], axes=[2, 3], keepdims=0))
    nodes.append(n("Concat", ["m", "sd"], ["stats"], axis=1))
    L = np.tril(small((96, 96))).astype(np.float16)
    nodes.append(n("Cast", [const("L_f16", L)], ["L"], to=TensorProto.FLOAT))
    nodes.append(n("MatMul", ["stats", "L"], ["zz"]))
    nodes.append(n("Pow", ["zz", const("two", np.float32(2))], ["z2"]))
    nodes.append(n("ReduceSum", ["z2", const("ax1", np.array([1], np.int64))], ["ood"], keepdims=0))
    # Colourfulness: the channel planes' elementwise max minus min, averaged, and its log.
    for c in range(3):
        nodes.append(n("Slice", ["input0", const(f"c{c}", np.array([c], np.int64)),
                                 const(f"c{c}e", np.array([c + 1], np.int64)), "ax1"], [f"p{c}"]))
    nodes.append(n("Max", ["p0", "p1", "p2"], ["hi"]))
    nodes.append(n("Min", ["p0", "p1", "p2"], ["lo"]))
    nodes.append(n("Sub", ["hi", "lo"], ["spread"]))
    nodes.append(n("ReduceMean", ["spread"], ["colour"], axes=[1, 2, 3], keepdims=0))
    nodes.append(n("Log", ["colour"], ["log_colour"]))
    side = SIDE // 4
    outputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape) for name, shape in
               (("logits", [1, 7]), ("cam", [1, 7, side, side]), ("ood", [1]), ("log_colour", [1]))]
    g = helper.make_graph(nodes, "skinscan-warmup",
                          [helper.make_tensor_value_info("input0", TensorProto.FLOAT, [1, 3, SIDE, SIDE])],
                          outputs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], producer_name="training/warmup_graph.py")
    onnx.checker.check_model(m, full_check=True)
    return m


def main():
    m = build()
    onnx.save(m, str(OUT))
    print(f"{OUT}: {OUT.stat().st_size} bytes, {len(m.graph.node)} nodes")


if __name__ == "__main__":
    main()
