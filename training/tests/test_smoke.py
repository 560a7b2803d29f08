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
    assert {e["id"]: e["quarter_turns"] for e in m["image_models"]} == {"effnet_lite0": 4, "compact_cnn": 1}
    g = json.loads((golden / "golden.json").read_text())
    assert len(g["cases"]) >= 5 and any(c["metadata"] for c in g["cases"])
    for c in g["cases"]:
        assert abs(sum(c["expected"]["diagnosis"].values()) - 1) < 1e-6
    for f in ("metrics.json", "roc_pr.png", "confusion.png", "calibration.png", "training_curves.png"):
        assert (out / "report" / f).stat().st_size > 0
    assert "CC BY-NC 4.0" in (out / "README.md").read_text()


def test_full_finetune_path_pack_run_and_train_from_checkpoint(tmp_path, data_dir):
    """finetune.py pack -> run (CPU, smoke configurations) -> train.py --image-checkpoint."""
    pack, ckpt, work = tmp_path / "pack", tmp_path / "ckpt", tmp_path / "work"
    script = str(ROOT / "training" / "finetune.py")
    subprocess.run([sys.executable, script, "pack", "--data", str(data_dir), "--out", str(pack), "--work", str(work), "--smoke"],
                   check=True, timeout=600)
    info = json.loads((pack / "pack.json").read_text())
    assert set(info["counts"]) == {"train", "val"}, "the test set is never packed"
    subprocess.run([sys.executable, script, "run", "--pack", str(pack), "--out", str(ckpt), "--configs", "smoke", "--device", "cpu"],
                   check=True, timeout=900)
    summary = json.loads((ckpt / "finetune.json").read_text())
    assert len(summary["runs"]) == 2 and summary["soup"] is not None
    assert summary["val_score"] >= max(r["score"] for r in summary["runs"]) - 1e-9
    # compare: a network averaged with itself scores exactly what it scores alone, per turns.
    rows_json = tmp_path / "compare.json"
    subprocess.run([sys.executable, script, "compare", "--pack", str(pack), str(ckpt / "effnet_full.pt"), str(ckpt / "effnet_full.pt"),
                    "--device", "cpu", "--out", str(rows_json)], check=True, timeout=600)
    rows = json.loads(rows_json.read_text())
    alone = {r["turns"]: r for r in rows if r["model"] == "ckpt"}
    pair = {r["turns"]: r for r in rows if r["model"] == "ckpt + ckpt"}
    assert sorted(alone) == sorted(pair) == [1, 2, 4]
    for t in alone:
        assert pair[t]["passes"] == 2 * alone[t]["passes"] == 2 * t
        assert abs(pair[t]["score"] - alone[t]["score"]) < 1e-9
    assert len(rows) == 3 * 2 + 3 + 3 and all(0.0 <= r["val_auc"] <= 1.0 for r in rows)
    out = tmp_path / "models"
    subprocess.run([sys.executable, str(ROOT / "training" / "train.py"), "--data", str(data_dir), "--out", str(out),
                    "--work", str(work), "--golden", str(tmp_path / "golden"), "--smoke",
                    "--image-checkpoint", str(ckpt / "effnet_full.pt")], check=True, timeout=1200)
    m = json.loads((out / "manifest.json").read_text())
    assert m["provenance"]["image_training"]["method"] == "full fine-tune"
    assert set(m["quality"]["ood"]["retake_max"]) == {"too_dark", "overexposed", "blurry"}
    # The exported model is the checkpoint's network: same probabilities as torch on an input.
    import torch
    from skinscan_train import image_models as im
    full = im.load_full(ckpt / "effnet_full.pt", m["provenance"]["cut_block"])
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 224, 224)).astype(np.float32)
    with torch.no_grad():
        ref = torch.softmax(full(torch.from_numpy(x)), 1).numpy()
    e = next(e for e in m["image_models"] if e["id"] == "effnet_lite0")
    logits = ort.InferenceSession(str(out / e["file"]), providers=["CPUExecutionProvider"]).run(["logits"], {"input0": x})[0]
    got = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    np.testing.assert_allclose(got, ref, atol=1e-4)
    # A checkpoint fine-tuned on another split is refused: its validation images may be train.py's
    # training images or the other way round (leakage into calibration, tiers and the OOD cut).
    r = subprocess.run([sys.executable, str(ROOT / "training" / "train.py"), "--data", str(data_dir), "--out", str(tmp_path / "m2"),
                        "--work", str(tmp_path / "work2"), "--golden", str(tmp_path / "g2"), "--smoke", "--val-frac", "0.3",
                        "--image-checkpoint", str(ckpt / "effnet_full.pt")], capture_output=True, text=True, timeout=600)
    assert r.returncode != 0 and "another train/validation split" in r.stderr, r.stderr[-2000:]
    assert not (tmp_path / "m2" / "manifest.json").exists()
