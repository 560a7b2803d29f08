"""The whole training entry point on a tiny subset: every stage, export and onnxruntime checks."""
import hashlib
import json
import subprocess
import sys

import numpy as np
import onnxruntime as ort

from conftest import ROOT


def test_smoke_run_produces_a_consistent_model_set(tmp_path, data_dir):
    out, work, golden = tmp_path / "models", tmp_path / "work", tmp_path / "golden"
    subprocess.run([sys.executable, str(ROOT / "training" / "train.py"), "--data", str(data_dir), "--out", str(out),
                    "--work", str(work), "--golden", str(golden), "--smoke"], check=True, timeout=1200)
    m = json.loads((out / "manifest.json").read_text())
    assert m["schema"] == 1 and m["provenance"]["smoke"] is True
    files = [e for e in m["image_models"]] + m["tabular"]["models"]
    assert {e["id"] for e in m["image_models"]} == {"effnet_lite0", "compact_cnn"}
    for e in files:
        blob = (out / e["file"]).read_bytes()
        assert hashlib.sha256(blob).hexdigest() == e["sha256"], e["file"]
    for k, v in m["provenance"]["onnx_max_abs_diff"].items():
        assert v <= 1e-4, k
    for e in m["image_models"]:
        s = ort.InferenceSession(str(out / e["file"]), providers=["CPUExecutionProvider"])
        logits, emb, cam = s.run(["logits", "embedding", "cam"], {"input0": np.zeros((1, 3, 224, 224), np.float32)})
        assert logits.shape == (1, 7) and cam.shape[:2] == (1, 7)
        # the class activation maps average to the logits (that is what makes them a faithful heatmap)
        np.testing.assert_allclose(cam.mean((2, 3)), logits, atol=1e-4)
        t = e["tiers"]
        assert t["image_only"]["low_below"] <= t["image_only"]["high_from"]
    g = json.loads((golden / "golden.json").read_text())
    assert len(g["cases"]) >= 5 and any(c["metadata"] for c in g["cases"])
    for c in g["cases"]:
        assert abs(sum(c["expected"]["diagnosis"].values()) - 1) < 1e-6
    for f in ("metrics.json", "roc_pr.png", "confusion.png", "calibration.png", "training_curves.png"):
        assert (out / "report" / f).stat().st_size > 0
    assert "CC BY-NC 4.0" in (out / "README.md").read_text()
