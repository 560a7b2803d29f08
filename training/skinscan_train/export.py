"""ONNX export with an onnxruntime check, the manifest, and golden vectors for the Rust parity test."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from . import preprocess
from .image_models import mean_softmax, quarter_turns

OPSET = 13
INPUT = "input0"
OUTPUTS = ["logits", "embedding", "cam", "ood"]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def export_image_model(model: torch.nn.Module, path: Path, check_inputs: np.ndarray) -> float:
    """Export with a fixed 1x3x224x224 input; returns max |onnxruntime - torch| over the outputs
    (relative for the OOD distance)."""
    import onnx
    import onnxruntime as ort

    model.eval()
    names = getattr(model, "output_names", OUTPUTS)
    dummy = torch.zeros(1, 3, preprocess.SIZE, preprocess.SIZE)
    torch.onnx.export(model, (dummy,), str(path), input_names=[INPUT], output_names=names,
                      opset_version=OPSET, do_constant_folding=True, dynamo=False)
    onx = onnx.load(str(path))
    onnx.checker.check_model(onx, full_check=True)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = 0.0
    with torch.no_grad():
        for x in check_inputs:
            x = x[None].astype(np.float32)
            ref = [t.numpy() for t in model(torch.from_numpy(x))]
            got = sess.run(names, {INPUT: x})
            for name, a, b in zip(names, ref, got):
                d = np.abs(a - b)
                # The OOD scores are squared distances (tens to thousands for a photo of a cat):
                # judged relative to their size; the model's own outputs are judged absolutely.
                worst = max(worst, float((d / np.maximum(1.0, np.abs(a))).max() if name.startswith("ood") else d.max()))
    if worst > 1e-4:
        raise RuntimeError(f"onnxruntime disagrees with torch on {path.name}: max abs diff {worst:.2e}")
    return worst


class OrtImage:
    """The exported image model in onnxruntime: normalised input -> 7 probabilities, averaged
    over ``turns`` quarter turns of the input as the manifest's ``quarter_turns`` says."""

    def __init__(self, path: Path, turns: int = 1):
        import onnxruntime as ort
        self.sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        self.names = [o.name for o in self.sess.get_outputs()]
        self.turns = turns

    def run(self, x: np.ndarray) -> dict:
        return dict(zip(self.names, self.sess.run(self.names, {INPUT: x.astype(np.float32)})))

    def logits(self, x: np.ndarray) -> np.ndarray:
        return self.sess.run(["logits"], {INPUT: x.astype(np.float32)})[0][0]

    def proba(self, x: np.ndarray) -> np.ndarray:
        views = quarter_turns(torch.from_numpy(np.ascontiguousarray(x, np.float32)), self.turns).numpy()
        return mean_softmax(np.stack([self.logits(v[None]) for v in views]))


def file_entry(path: Path) -> dict:
    return {"file": path.name, "sha256": sha256(path), "bytes": path.stat().st_size}


def write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")
