"""Compact weight storage (issue 15): int8 and split 11-bit kernels per output channel, float16 factors, expanded in the graph."""
import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from skinscan_train import compact


def tiny_graph(path, rng):
    """input0 [1, 3, 8, 8] -> conv 3->16 (3x3) -> conv 16->32 (1x1) -> logits [1, 32] (mean)."""
    w1 = rng.normal(0, 0.3, (16, 3, 3, 3)).astype(np.float32)  # 432 weights: below MIN_SIZE, stays float32
    w2 = rng.normal(0, 0.3, (64, 16, 1, 1)).astype(np.float32)
    w2[5] *= 20  # one channel far larger than the rest: a per-tensor scale would crush the others
    w3 = rng.normal(0, 0.3, (32, 64, 1, 1)).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("Conv", ["input0", "w1"], ["a"], pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["a"], ["b"]),
         helper.make_node("Conv", ["b", "w2"], ["c"]),
         helper.make_node("Conv", ["c", "w3"], ["d"]),
         helper.make_node("ReduceMean", ["d"], ["logits"], axes=[2, 3], keepdims=0)],
        "tiny", [helper.make_tensor_value_info("input0", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 32])],
        [numpy_helper.from_array(w, n) for w, n in ((w1, "w1"), (w2, "w2"), (w3, "w3"))])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return w2


def test_quantize_is_per_output_channel():
    w = np.random.default_rng(0).normal(0, 1, (4, 8, 1, 1)).astype(np.float32)
    w[0] *= 100
    q, s = compact.quantize(w)
    assert q.dtype == np.int8 and s.shape == (4, 1, 1, 1)
    assert (np.abs(q).reshape(4, -1).max(1) == 127).all()  # every channel uses its full range
    assert (np.abs(q.astype(np.float32) * s - w) <= s / 2 + 1e-6).all()


def test_split_rebuilds_the_fine_integers_exactly():
    w = np.random.default_rng(2).normal(0, 1, (8, 16, 3, 3)).astype(np.float32)
    q, s = compact.quantize(w, compact.FINE_BITS)
    top = (1 << (compact.FINE_BITS - 1)) - 1
    assert np.abs(q).max() == top and s.shape == (8, 1, 1, 1)
    hi, lo = compact.split(q)
    assert hi.dtype == np.int8 and lo.dtype == np.uint8 and lo.max() < (1 << (compact.FINE_BITS - 8))
    assert np.array_equal(hi.astype(np.int32) * (1 << (compact.FINE_BITS - 8)) + lo, q)
    # finer than int8 by 2^(bits-8)
    assert np.abs(q * s - w).max() <= s.max() / 2 + 1e-6
    assert np.abs(compact.dequantized(w, compact.FINE_BITS) - w).max() < np.abs(compact.dequantized(w) - w).max() / 4


def test_compact_graph_stores_int8_and_fine_kernels_and_computes_nearly_the_same(tmp_path):
    rng = np.random.default_rng(1)
    tiny_graph(tmp_path / "f32.onnx", rng)
    x = rng.normal(0, 1, (6, 3, 8, 8)).astype(np.float32)
    assert sorted(compact.kernels(tmp_path / "f32.onnx")) == ["w2", "w3"]
    keep, err = compact.choose_fine(tmp_path / "f32.onnx", x, budget=1024)
    assert keep == ["w2"] or keep == ["w3"]  # one of the two fits the budget (1024 weights each)
    assert err["mean_abs_logit_change_chosen"] <= err["mean_abs_logit_change_all_int8"]
    rec = compact.compact(tmp_path / "f32.onnx", tmp_path / "c.onnx", keep)
    assert (rec["int8_kernels"], rec[f"int{compact.FINE_BITS}_kernels"], rec["kernels"]) == (1, 1, 2)
    types = {t.name: t.data_type for t in onnx.load(str(tmp_path / "c.onnx")).graph.initializer}
    assert types["w1"] == TensorProto.FLOAT and TensorProto.INT8 in types.values() and TensorProto.UINT8 in types.values()
    # The fine kernel as the graph rebuilds it: exactly its FINE_BITS-bit value.
    fine = onnx.load(str(tmp_path / "c.onnx"))
    fine.graph.output.append(helper.make_tensor_value_info(keep[0], TensorProto.FLOAT, None))
    got = ort.InferenceSession(fine.SerializeToString()).run([keep[0]], {"input0": x[:1]})[0]
    f32 = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(tmp_path / "f32.onnx")).graph.initializer}
    assert np.allclose(got, compact.dequantized(f32[keep[0]], compact.FINE_BITS), rtol=0, atol=1e-6)
    run = lambda p: np.concatenate([ort.InferenceSession(str(p)).run(["logits"], {"input0": xi[None]})[0] for xi in x])
    a, b = run(tmp_path / "f32.onnx"), run(tmp_path / "c.onnx")
    assert np.abs(a - b).max() < 0.05 * np.abs(a).max()
    assert not np.array_equal(a, b)  # the weights did change
    # Nothing left to compact: a second pass changes nothing.
    assert compact.kernels(tmp_path / "c.onnx") == {}
    again = compact.compact(tmp_path / "c.onnx", tmp_path / "c2.onnx")
    assert again["newly_quantized"] == 0 and (tmp_path / "c2.onnx").read_bytes() == (tmp_path / "c.onnx").read_bytes()


def test_mahalanobis_factors_become_float16_and_the_score_barely_moves(tmp_path):
    """A graph with a factor named like the network's (compact.FACTORS): stored as float16, the
    distance it gives moves by far less than compact.FACTOR_LIMIT; a second pass leaves it."""
    rng = np.random.default_rng(3)
    a = rng.normal(0, 1, (400, 24))
    L = np.linalg.cholesky(np.linalg.inv(np.cov(a.T))).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("MatMul", ["input0", "ood_L"], ["z"]),
         helper.make_node("Mul", ["z", "z"], ["z2"]),
         helper.make_node("ReduceSum", ["z2"], ["ood"], keepdims=0)],
        "maha", [helper.make_tensor_value_info("input0", TensorProto.FLOAT, [1, 24])],
        [helper.make_tensor_value_info("ood", TensorProto.FLOAT, [])],
        [numpy_helper.from_array(L, "ood_L")])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), str(tmp_path / "m.onnx"))
    assert compact.factors(tmp_path / "m.onnx") == ["ood_L"]
    rec = compact.compact(tmp_path / "m.onnx", tmp_path / "c.onnx")
    assert rec["float16_factors"] == 1 and compact.factors(tmp_path / "c.onnx") == []
    x = rng.normal(0, 1, (20, 1, 24)).astype(np.float32)
    run = lambda p: np.array([ort.InferenceSession(str(p)).run(["ood"], {"input0": xi})[0] for xi in x])
    before, after = run(tmp_path / "m.onnx"), run(tmp_path / "c.onnx")
    assert np.abs(after - before).max() / np.abs(before).max() < compact.FACTOR_LIMIT
    again = compact.compact(tmp_path / "c.onnx", tmp_path / "c2.onnx")
    assert again["float16_factors"] == 1 and again["newly_quantized"] == 0
