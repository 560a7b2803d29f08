"""training/mixed.py (issue 12) on tiny subsets: the heads added to a copy of the shipped models."""
import json
import shutil
import subprocess
import sys

import numpy as np
import onnxruntime as ort

from conftest import ROOT
from skinscan_train import mixed, non_lesion, photos, preprocess


def test_mixed_stage_adds_heads_and_reruns_cleanly(tmp_path, data_dir):
    models = tmp_path / "models"
    shutil.copytree(ROOT / "models", models)
    run = [sys.executable, str(ROOT / "training" / "mixed.py"), "--data", str(data_dir), "--models", str(models),
           "--work", str(tmp_path / "work"), "--smoke"]
    subprocess.run(run, check=True, timeout=900)
    subprocess.run(run, check=True, timeout=900)  # a rerun strips the heads it added first
    m = json.loads((models / "manifest.json").read_text())
    e = next(x for x in m["image_models"] if x["id"] == "effnet_lite0")
    assert e["photo_type"]["output"] == "photo_type" and e["clinical"]["turn_average"] == "logits"
    assert e["outputs"]["ood_clinical"] == "ood_clinical"
    assert m["quality"]["ood"]["clinical"]["hard_threshold"] >= m["quality"]["ood"]["clinical"]["threshold"]
    nl = m["quality"]["ood"]["non_lesion"]
    assert e["outputs"]["non_lesion"] == nl["output"] == "non_lesion" and np.isfinite(nl["threshold"])
    assert set(nl["provenance"]["debian_packages"]) == set(non_lesion.PACKAGES)
    for head in (e, e["clinical"]):
        for path in ("image_only", "with_metadata"):
            t = head["tiers"][path]
            assert 0 <= t["low_below"] <= t["high_from"] <= 1
    assert [f["name"] for f in m["tabular"]["features"]][3:] == [
        "itch", "grew", "hurt", "changed", "bleed", "elevation", "diameter_mm"]
    assert m["tabular"]["width"] == 18 and m["provenance"]["smoke"] is True
    s = ort.InferenceSession(str(models / e["file"]), providers=["CPUExecutionProvider"])
    names = [o.name for o in s.get_outputs()]
    assert names.count("photo_type") == 1 and names.count("clinical_logits") == 1 and names.count("non_lesion") == 1, names
    pad = [p for p in photos.read_pad(data_dir) if p.split == "test"][:1]
    x = preprocess.preprocess(str(pad[0].path))
    o = dict(zip(names, s.run(None, {"input0": x})))
    # The clinical maps average to the clinical logits: the heatmap explains that head.
    np.testing.assert_allclose(o["clinical_cam"].mean((2, 3)), o["clinical_logits"], atol=1e-4)
    # The dermoscopic outputs are the shipped network's, untouched.
    base = ort.InferenceSession(str(ROOT / "models" / e["file"]), providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(base.run(["logits"], {"input0": x})[0], o["logits"])
    g = json.loads((models / "golden" / "golden.json").read_text())
    types = {c["image"]: c["expected"]["photo_type"] for c in g["cases"]}
    assert all(t["source"] == "detected" for t in types.values())
    pad = [k for k in types if k.startswith("golden/PAT_")]  # phone photos, as lossless copies
    assert len(pad) == 2 and all((models / "golden" / k).is_file() for k in pad), list(types)
    assert json.loads((models / "report" / "mixed.json").read_text())["model_version"] == m["model_version"]
    card = (models / "README.md").read_text()  # one document, written whole by the run (issue 20)
    assert "Both kinds of photo are in scope" in card and "judged on a source it never saw" in card
    assert "Phone photos" not in card and card.count("# SkinScan models") == 1


def test_conservative_low_holds_the_bound_on_every_source():
    rng = np.random.default_rng(0)
    a = (rng.integers(0, 2, 800), rng.uniform(0, 1, 800))
    b = (rng.integers(0, 2, 300), rng.uniform(0, 1, 300))
    low, figs = mixed.conservative_low({"a": a, "b": b}, 0.05)
    assert all(f["upper_bound"] <= 0.05 for f in figs.values())
    assert low == min(mixed.conservative_low({"a": a}, 0.05)[0], mixed.conservative_low({"b": b}, 0.05)[0])
    # Too few malignant cases to promise anything: no low tier at all.
    assert mixed.conservative_low({"tiny": (np.array([1, 1, 0]), np.array([0.1, 0.2, 0.3]))}, 0.05)[0] == 0.0
