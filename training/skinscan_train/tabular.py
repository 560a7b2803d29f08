"""Tabular models on age, sex, body site and (issue 12) what the person noticed: LightGBM and
XGBoost, exported for tract.

Encoding (written to the manifest, reproduced by ``src/tabular.rs``):
``[age, sex (female=0, male=1), one-hot site x 9, itch, grew, hurt, changed, bleed, elevation
(no=0, yes=1), diameter_mm]``; a field not given is NaN in all of its columns, which both GBDTs
route with their learned missing-value branch. ISIC rows never have the answers or the size; PAD
rows usually do.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from .data import SEXES, SITES, Item

# The patient's answers (PAD-UFES-20's questions), each yes / no / not given.
ANSWERS = ["itch", "grew", "hurt", "changed", "bleed", "elevation"]
DIAMETER_MAX_MM = 200
WIDTH = 2 + len(SITES) + len(ANSWERS) + 1


def feature_spec() -> list[dict]:
    return [
        {"name": "age", "kind": "numeric", "min": 0, "max": 120},
        {"name": "sex", "kind": "index", "values": SEXES},
        {"name": "site", "kind": "one_hot", "values": SITES},
        *({"name": a, "kind": "boolean"} for a in ANSWERS),
        {"name": "diameter_mm", "kind": "numeric", "min": 0, "max": DIAMETER_MAX_MM},
    ]


def encode(age, sex, site, answers: dict | None = None, diameter=None) -> np.ndarray:
    v = np.full(WIDTH, np.nan, np.float32)
    if age is not None:
        v[0] = age
    if sex is not None:
        v[1] = SEXES.index(sex)
    if site is not None:
        v[2:2 + len(SITES)] = 0.0
        v[2 + SITES.index(site)] = 1.0
    for i, a in enumerate(ANSWERS):
        if (answers or {}).get(a) is not None:
            v[2 + len(SITES) + i] = float(bool(answers[a]))
    if diameter is not None:
        v[-1] = diameter
    return v


def encode_items(items: list[Item]) -> np.ndarray:
    rows = [encode(it.age, it.sex, it.site, getattr(it, "answers", None), getattr(it, "diameter", None)) for it in items]
    return np.stack(rows) if rows else np.zeros((0, WIDTH), np.float32)


def has_metadata(items: list[Item]) -> np.ndarray:
    return ~np.isnan(encode_items(items)).all(1) if items else np.zeros(0, bool)


def _norm_site(s):
    s = (s or "").strip().lower()
    return s if s in SITES else None


def _norm_sex(s):
    s = (s or "").strip().lower()
    return s if s in SEXES else None


def _num(v):
    try:
        return float(v) if v not in ("", None) else None
    except ValueError:
        return None


def external_rows(meta_dir: Path, exclude: set[str], val_patient_frac: float, seed: int):
    """ISIC 2019 + 2020 metadata -> (train X, y), (val X, y).

    ISIC 2019 contains HAM10000 and ISIC 2017 images: those ids are excluded (HAM is split by lesion
    elsewhere). ISIC 2020 is split by ``patient_id``; its held-out patients give a second AUC.
    """
    X, y = [], []
    mal2019 = {"MEL", "BCC", "AK", "SCC"}
    with open(meta_dir / "isic2019.csv", newline="") as f:
        for r in csv.DictReader(f):
            img = r["image"].replace("_downsampled", "")
            if img in exclude or r["label"] == "UNK":
                continue
            X.append(encode(_num(r["age_approx"]), _norm_sex(r["sex"]), _norm_site(r["anatom_site_general"])))
            y.append(int(r["label"] in mal2019))
    rng = np.random.default_rng(seed)
    rows2020 = list(csv.DictReader(open(meta_dir / "isic2020.csv", newline="")))
    patients = sorted({r["patient_id"] for r in rows2020})
    rng.shuffle(patients)
    val_p = set(patients[: int(len(patients) * val_patient_frac)])
    Xv, yv = [], []
    for r in rows2020:
        v = encode(_num(r["age_approx"]), _norm_sex(r["sex"]), _norm_site(r["anatom_site_general_challenge"]))
        (Xv if r["patient_id"] in val_p else X).append(v)
        (yv if r["patient_id"] in val_p else y).append(int(r["target"]))
    return (np.array(X, np.float32), np.array(y)), (np.array(Xv, np.float32), np.array(yv))


def fit_lightgbm(X, y, seed: int, smoke: bool):
    import lightgbm as lgb
    m = lgb.LGBMClassifier(n_estimators=40 if smoke else 400, learning_rate=0.03, num_leaves=15,
                           min_child_samples=40, subsample=0.8, subsample_freq=1, colsample_bytree=0.9,
                           is_unbalance=True, random_state=seed, verbose=-1, n_jobs=2,
                           deterministic=True, force_row_wise=True)  # same data, same bytes: the manifest pins SHA-256
    m.fit(X, y)
    return m


def fit_xgboost(X, y, seed: int, smoke: bool):
    import xgboost as xgb
    pos = max(y.mean(), 1e-3)
    m = xgb.XGBClassifier(n_estimators=40 if smoke else 400, learning_rate=0.03, max_depth=4, subsample=0.8,
                          colsample_bytree=0.9, min_child_weight=5, scale_pos_weight=(1 - pos) / pos,
                          random_state=seed, n_jobs=2, eval_metric="auc")
    m.fit(X, y)
    return m


def export_lightgbm(model, path: Path) -> None:
    import onnxmltools
    from onnxmltools.convert.common.data_types import FloatTensorType
    onx = onnxmltools.convert_lightgbm(model, initial_types=[("input", FloatTensorType([1, WIDTH]))],
                                       zipmap=False, target_opset=13)
    onx.graph.name = path.stem  # the converters name the graph with a random UUID: same model, same bytes
    path.write_bytes(onx.SerializeToString())


def export_xgboost(model, path: Path) -> None:
    """XGBoost's export carries one base_values entry for two classes, which tract refuses.

    shared/notes/toolchain.md: drop ``base_values`` and add it to every class weight of tree 0;
    onnxruntime and tract then both match ``predict_proba``.
    """
    import onnx
    import onnxmltools
    from onnx import helper
    from onnxmltools.convert.common.data_types import FloatTensorType
    onx = onnxmltools.convert_xgboost(model, initial_types=[("input", FloatTensorType([1, WIDTH]))], target_opset=13)
    for node in onx.graph.node:
        if node.op_type != "TreeEnsembleClassifier":
            continue
        attrs = {a.name: a for a in node.attribute}
        if "base_values" in attrs:
            base = list(attrs["base_values"].floats)
            tree_ids = list(attrs["class_treeids"].ints)
            weights = list(attrs["class_weights"].floats)
            b = base[0] if len(set(base)) == 1 else None
            if b is None:
                raise ValueError(f"unexpected base_values {base}")
            # Add the base once per class: to the leaves of the first tree.
            first = min(tree_ids)
            weights = [w + b if t == first else w for w, t in zip(weights, tree_ids)]
            node.attribute.remove(attrs["base_values"])
            node.attribute.remove(attrs["class_weights"])
            node.attribute.append(helper.make_attribute("class_weights", weights))
    onnx.checker.check_model(onx)
    onx.graph.name = path.stem  # the converters name the graph with a random UUID: same model, same bytes
    path.write_bytes(onx.SerializeToString())


def onnx_proba(path: Path, X: np.ndarray) -> np.ndarray:
    """P(malignant) from the exported model, one row at a time (the shipped model has batch 1)."""
    import onnxruntime as ort
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    outs = [o.name for o in s.get_outputs()]
    name = "probabilities" if "probabilities" in outs else outs[-1]
    return np.array([s.run([name], {"input": X[i:i + 1]})[0][0, 1] for i in range(len(X))])
