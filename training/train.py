#!/usr/bin/env python3
"""Rebuild every model SkinScan ships, from the real data, with a report.

    python training/train.py --data ../shared/data --out models            # full run (~1.5 h on 2 cores)
    python training/train.py --data ../shared/data --out /tmp/m --smoke    # tiny subset, minutes

Stages (each cached under --work, so a killed run resumes where it stopped):
 1. splits: HAM10000 by lesion_id into train/validation; ISIC 2017 joins training;
    ham10000-test is touched only by the final report.
 2. canonical 224x224 images (the same decode + resize the Rust pipeline runs).
 3. EfficientNet-Lite0: frozen lower blocks run once per cached view; upper blocks + head trained.
 4. compact CNN from scratch (baseline row).
 5. LightGBM and XGBoost on age/sex/site (HAM train + ISIC 2017/2019/2020 metadata).
 6. ONNX export with onnxruntime checks; calibration, stacker and tiers on validation.
 7. test-set report, manifest, golden vectors, model card.
Each stage is a function below (stage_data ... stage_publish); main() runs them in order.
The train/validation split is data.make_split, which finetune.py pack shares.
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from skinscan_train import data, ensemble, export, image_models as im, metrics, preprocess, quality, report, tabular


class Log:
    """Log lines, and the wall time of every invocation (resumed runs add up) in wall.json."""

    def __init__(self, path: Path):
        self.f = open(path, "a")
        self.wall = path.parent / "wall.json"
        self.t0, self.key = time.time(), time.strftime("%Y-%m-%dT%H:%M:%S")

    def __call__(self, msg: str):
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        print(line, flush=True)
        self.f.write(line + "\n"); self.f.flush()
        runs = json.loads(self.wall.read_text()) if self.wall.exists() else {}
        runs[self.key] = round(time.time() - self.t0)
        self.wall.write_text(json.dumps(runs, indent=1))

    def total_wall(self) -> int:
        return sum(json.loads(self.wall.read_text()).values())


def parse():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, type=Path, help="the shared data folder (../shared/data)")
    ap.add_argument("--out", required=True, type=Path, help="models folder to (re)write")
    ap.add_argument("--golden", type=Path, default=None, help="where golden.json + fixtures go (default: <out>/../tests/fixtures, or <out>/golden in smoke mode)")
    ap.add_argument("--work", type=Path, default=None, help="cache/checkpoint folder (default: ~/.cache/skinscan/train[-smoke])")
    ap.add_argument("--smoke", action="store_true", help="tiny subset, one epoch each: exercises every stage in minutes")
    ap.add_argument("--seed", type=int, default=20261126)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--val-frac", type=float, default=0.2)
    ap.add_argument("--cut", type=int, default=11, help="first trainable EfficientNet block (0..16)")
    ap.add_argument("--views", type=int, default=2, help="cached views per training image (view 0 plain, others augmented)")
    ap.add_argument("--effnet-epochs", type=int, default=5)
    ap.add_argument("--compact-epochs", type=int, default=4)
    ap.add_argument("--image-checkpoint", type=Path, default=None,
                    help="a fully fine-tuned EfficientNet-Lite0 (training/finetune.py run, on a GPU): ships instead of the upper-block training")
    ap.add_argument("--turns", type=int, default=im.QUARTER_TURNS, help="quarter turns the shipped EfficientNet averages at test time (1 = none)")
    ap.add_argument("--low-miss", type=float, default=0.04, help="max share of validation malignant lesions in 'low' (the product promise is 5%%; the margin absorbs the shift to unseen data)")
    ap.add_argument("--high-spec", type=float, default=0.90, help="min specificity of 'high' on validation")
    return ap.parse_args()


class Run:
    """What every stage reads: the arguments, the cache folder, the log and the start time."""

    def __init__(self, a):
        self.a, self.t_start = a, time.time()
        self.work = a.work or Path.home() / ".cache" / "skinscan" / ("train-smoke" if a.smoke else "train")
        self.work.mkdir(parents=True, exist_ok=True)
        a.out.mkdir(parents=True, exist_ok=True)
        self.golden_dir = a.golden or ((a.out / "golden") if a.smoke else (a.out.resolve().parent / "tests" / "fixtures"))
        self.log = Log(self.work / "train.log")

    def elapsed(self) -> str:
        return f"{time.time() - self.t_start:.0f}s elapsed"


CL = torch.channels_last


def stage_data(run: Run) -> SimpleNamespace:
    """1-2. The splits (data.make_split, shared with finetune.py pack), labels, validation folds
    and the canonical 224x224 images of each split."""
    a, log = run.a, run.log
    split = data.make_split(a.data, a.val_frac, a.seed, a.smoke)
    test = data.read_set(a.data, "ham10000-test")
    assert not ({it.image for it in test} & {it.image for it in split.read}), "test image in training data"
    if a.smoke:
        test = data.smoke_subset(test, data.SMOKE_PER_CLASS["test"], a.seed)
    d = SimpleNamespace(train=split.train, val=split.val, test=test, read=split.read)
    d.y7_tr, d.ym_tr = data.labels(d.train)
    d.y7_val, d.ym_val = data.labels(d.val)
    d.y7_te, d.ym_te = data.labels(d.test)
    d.folds = data.group_folds(d.val, 5, a.seed)
    log(f"split: train {len(d.train)} ({split.n_ham_train} HAM + ISIC2017), val {len(d.val)} HAM "
        f"({len({i.group for i in d.val})} lesions), test {len(d.test)}")
    d.u8_tr = data.load_u8(d.train, run.work / "u8_train.npy", log)
    d.u8_val = data.load_u8(d.val, run.work / "u8_val.npy", log)
    d.u8_te = data.load_u8(d.test, run.work / "u8_test.npy", log)
    # Weights on the class mix an epoch actually sees (nv is subsampled each epoch).
    d.class_w = im.class_weights(d.y7_tr[im.epoch_indices(d.y7_tr, np.random.default_rng(0))], 7)
    return d


def stage_features(run: Run, d) -> SimpleNamespace:
    """3a. EfficientNet-Lite0's frozen lower blocks, and their cached features per split. Either
    the upper blocks are trained next on these (2 CPU cores), or a full fine-tune from
    finetune.py (a GPU) is loaded; everything after this stage is the same."""
    a, log = run.a, run.log
    f = SimpleNamespace(full_ft=None, net=None, top=None)
    if a.image_checkpoint:
        full = im.load_full(a.image_checkpoint, a.cut)
        f.full_ft = torch.load(a.image_checkpoint, map_location="cpu", weights_only=False)["summary"]
        # The checkpoint must come from this very train/validation split (finetune.py pack with the
        # same --val-frac, --seed and --smoke): otherwise validation images may have been trained on,
        # and calibration, tiers and the OOD cut would be fitted on seen images.
        theirs, mine = f.full_ft["pack"].get("split_sha256"), data.split_digest({"train": d.train, "val": d.val})
        if theirs != mine:
            raise SystemExit(f"{a.image_checkpoint} was fine-tuned on another train/validation split "
                             f"(pack: {theirs}, here: {mine}); pack with the same --val-frac/--seed/--smoke")
        tag = "ft-" + export.sha256(a.image_checkpoint)[:12]
        bottom, f.top, f.views, feat = full.bottom, full.top, 1, f"feat_{{}}_{tag}.npy"
        log(f"image model: full fine-tune {a.image_checkpoint} ({f.full_ft['chosen']}, val score {f.full_ft['val_score']:.4f}, "
            f"{f.full_ft['device']}, {f.full_ft['seconds']:.0f}s)")
    else:
        f.net = im.load_effnet(7)
        bottom, f.views, feat = im.Bottom(f.net, a.cut), 1 if a.smoke else a.views, "feat_{}.npy"
    bottom = bottom.eval()
    for p in bottom.parameters():
        p.requires_grad_(False)
    f.bottom = bottom.to(memory_format=torch.channels_last)
    cached = lambda u8, views, name, **kw: np.asarray(im.compute_bottom_features(
        f.bottom, u8, views, run.work / feat.format(name), a.seed, log=log, **kw))
    f.tr = cached(d.u8_tr, f.views, "train")
    f.val = cached(d.u8_val, 1, "val", dtype=np.float32)[:, 0]
    f.te = cached(d.u8_te, 1, "test", dtype=np.float32)[:, 0]
    log(f"bottom features ready: train {f.tr.shape}, {run.elapsed()}")
    return f


def feats_proba(model, feats):
    return im.predict_proba(model, (torch.from_numpy(feats[i:i + 256]).contiguous(memory_format=CL) for i in range(0, len(feats), 256)))


def u8_proba(model, u8):
    return im.predict_proba(model, (im.to_input(u8[i:i + 128]).contiguous(memory_format=CL) for i in range(0, len(u8), 128)))


def val_score(proba_fn, d):
    """train_loop's checkpoint score: validation malignant ROC-AUC + 7-class balanced accuracy."""
    def fn():
        p7 = proba_fn()
        auc = metrics.auc(d.ym_val, ensemble.malignant_prob(p7))
        bal = metrics.multiclass(d.y7_val, p7)["balanced_accuracy"]
        return auc + bal, {"val_auc": auc, "val_bal_acc": bal}
    return fn


def eff_batches(seed, d, feats, views):
    """Epoch -> (number of batches, batches) of cached features, a random view and dihedral turn each."""
    def batches(ep, bs=64):
        rng = np.random.default_rng(seed + ep)
        g = torch.Generator().manual_seed(seed + ep)
        idx = im.epoch_indices(d.y7_tr, rng)
        def gen():
            for i in range(0, len(idx), bs):
                b = idx[i:i + bs]
                v = rng.integers(0, views, len(b))
                x = torch.from_numpy(feats[b, v].astype(np.float32))
                yield im.dihedral(x, g).contiguous(memory_format=CL), torch.from_numpy(d.y7_tr[b])
        return (len(idx) + bs - 1) // bs, gen()
    return batches


def stage_image_model(run: Run, d, f) -> SimpleNamespace:
    """3b. EfficientNet-Lite0's upper blocks trained on the cached features (or the fine-tune's
    history), then its probabilities on validation and test, averaged over quarter turns."""
    a, log = run.a, run.log
    top = (im.Top(f.net, a.cut) if f.full_ft is None else f.top).to(memory_format=CL)
    head_params = list(top.fc.parameters())
    body_params = [p for n, p in top.named_parameters() if not n.startswith("fc.")]
    lr = 1e-3
    groups = [{"params": body_params, "lr": lr * 0.5, "base_lr": lr * 0.5}, {"params": head_params, "lr": lr, "base_lr": lr}]
    if f.full_ft is None:
        hist = im.train_loop(top, groups, eff_batches(a.seed, d, f.tr, f.views), val_score(lambda: feats_proba(top, f.val), d),
                             1 if a.smoke else a.effnet_epochs, lr, run.work / "effnet_top.pt", d.class_w, log)
    else:
        chosen = f.full_ft["chosen"].get("config") or f.full_ft["soup"]["members"][0]
        hist = next(r["history"] for r in f.full_ft["runs"] if r["config"]["name"] == chosen)
    p7_val, p7_te = feats_proba(top, f.val), feats_proba(top, f.te)
    one_view = {"validation": p7_val, "test": p7_te}  # for the report's "one view" row
    if a.turns > 1:
        # What ships: the mean softmax over quarter turns of the photo. Calibration, stacker,
        # tiers and the test report below all see these probabilities.
        key = export.sha256(a.image_checkpoint or run.work / "effnet_top.pt")[:12]
        log(f"single view: val AUC {metrics.auc(d.ym_val, ensemble.malignant_prob(p7_val)):.4f}; {a.turns} quarter turns:")
        p7_val = im.predict_turns(f.bottom, top, d.u8_val, a.turns, run.work / f"p7_val_{key}_t{a.turns}.npy", log)
        p7_te = im.predict_turns(f.bottom, top, d.u8_te, a.turns, run.work / f"p7_test_{key}_t{a.turns}.npy", log)
    return SimpleNamespace(top=top, hist=hist, p7_val=p7_val, p7_te=p7_te, one_view=one_view)


def degraded_stats(bottom, u8, idx, reason, seed):
    """Pooled block statistics of the photos ``u8[idx]``, each degraded by ``reason`` at random."""
    out, rng = [], np.random.default_rng(seed)
    with torch.no_grad():
        for j in range(0, len(idx), 32):
            x = torch.from_numpy(np.stack([preprocess.normalize(quality.degrade_random(np.asarray(u8[i]), reason, rng)) for i in idx[j:j + 32]]))
            out.append(quality.pooled_stats(bottom(x.contiguous(memory_format=CL)).numpy()))
    return np.concatenate(out)


def stage_gate(run: Run, d, f) -> SimpleNamespace:
    """3c. The quality gate: out-of-distribution statistics and photo-quality thresholds, fitted
    on training images (thresholds) and validation images (OOD quantile) only."""
    a = run.a
    g = SimpleNamespace()
    g.pooled = {"train": quality.pooled_stats(f.tr[:, 0]), "val": quality.pooled_stats(f.val), "test": quality.pooled_stats(f.te)}
    ood = g.ood = quality.fit_ood(g.pooled["train"], g.pooled["val"])
    rng_q = np.random.default_rng(a.seed)
    g.q_pick = rng_q.choice(len(d.u8_tr), min(3000, len(d.u8_tr)), replace=False)
    g.q_thr, g.q_summary = quality.fit_thresholds([np.asarray(d.u8_tr[i]) for i in g.q_pick], a.seed, 30 if a.smoke else 300)
    # Per photo problem (too dark, overexposed, blurry): a Gaussian of the same statistics over
    # training photos degraded that way, its cut the 99th percentile of validation photos degraded
    # the same way. A photo the gate would send back for a problem is not a lesion when it is far
    # from lesions with that problem (a blurred face is not a blurred lesion).
    g.pick_rt = np.sort(rng_q.choice(len(d.u8_tr), min(10 if a.smoke else 800, len(d.u8_tr)), replace=False))
    g.pick_rv = np.sort(rng_q.choice(len(d.u8_val), min(10 if a.smoke else 400, len(d.u8_val)), replace=False))
    g.retake, deg_scores = [], []
    for r in quality.RETAKE_REASONS:
        st_tr = degraded_stats(f.bottom, d.u8_tr, g.pick_rt, r, a.seed + 1)
        g.retake.append(quality.fit_ood(st_tr, degraded_stats(f.bottom, d.u8_val, g.pick_rv, r, a.seed + 2)))
        deg_scores += [float(v) for v in ood["score_fn"](st_tr)]
    # The hard OOD cut: beyond the 99th percentile of *degraded training* photos' ordinary score,
    # no retake advice can help, so the verdict is not_a_lesion before exposure and blur are judged.
    ood["hard_threshold"] = max(float(np.percentile(deg_scores, 99)), ood["threshold"])
    ood["degraded_train_percentiles"] = {str(p): float(np.percentile(deg_scores, p)) for p in (50, 90, 99)}
    ood["retake_max"] = {r: fit["threshold"] for r, fit in zip(quality.RETAKE_REASONS, g.retake)}
    g.ood_retake_test = np.stack([fit["score_fn"](g.pooled["test"]) for fit in g.retake], 1)
    # The cut comes from HAM10000 validation images; other dermoscopy archives sit further out.
    s_tr = ood["score_fn"](g.pooled["train"])
    ood["train_above_threshold_by_source"] = {src: float((s_tr[[it.source == src for it in d.train]] > ood["threshold"]).mean())
                                              for src in sorted({it.source for it in d.train})}
    run.log(f"gate: ood threshold {ood['threshold']:.3f}, hard {ood['hard_threshold']:.3f}, retake_max {ood['retake_max']} (degraded train {ood['degraded_train_percentiles']}) (val percentiles {ood['val_percentiles']}), thresholds {g.q_thr}")
    return g


def quality_block(g) -> dict:
    """The manifest's `quality` block, from stage_gate's fits."""
    ood = g.ood
    return {
        "params": quality.PARAMS,
        "thresholds": g.q_thr,
        "ood": {"model": "effnet_lite0", "output": "ood", "threshold": ood["threshold"], "hard_threshold": ood["hard_threshold"],
                "train_above_threshold_by_source": ood["train_above_threshold_by_source"],
                "retake_output": "ood_retake", "retake_order": quality.RETAKE_REASONS, "retake_max": ood["retake_max"],
                "degraded_train_percentiles": ood["degraded_train_percentiles"], "method": "mahalanobis_pooled_block_stats", "dim": ood["dim"], "validation_percentiles": {str(k): v for k, v in ood["val_percentiles"].items()}},
        "fitted_on": {"thresholds": f"{len(g.q_pick)} training images and {g.q_summary['n_degraded_each']} degraded copies of training images per degradation",
                      "ood": "pooled block statistics of training images (mean, covariance) and validation images (99th percentile threshold)",
                      "retake": f"one Gaussian per problem over {len(g.pick_rt)} training images degraded that way at random strengths {quality.STRENGTHS}; cut = 99th percentile of {len(g.pick_rv)} validation images degraded the same way"},
        "clean_percentiles": g.q_summary["clean_percentiles"],
    }


def stage_compact(run: Run, d) -> SimpleNamespace:
    """4. The compact CNN, trained from scratch on augmented canonical images (baseline row)."""
    a = run.a
    cnn = im.CompactCNN().to(memory_format=CL)

    def cnn_batches(ep, bs=64):
        rng = np.random.default_rng(a.seed * 7 + ep)
        g = torch.Generator().manual_seed(a.seed * 7 + ep)
        idx = im.epoch_indices(d.y7_tr, rng)
        def gen():
            for i in range(0, len(idx), bs):
                b = np.sort(idx[i:i + bs])
                x = im.augment(im.to_input(d.u8_tr[b]), g)
                yield x.contiguous(memory_format=CL), torch.from_numpy(d.y7_tr[b])
        return (len(idx) + bs - 1) // bs, gen()

    hist = im.train_loop(cnn, [{"params": list(cnn.parameters()), "lr": 2e-3, "base_lr": 2e-3}], cnn_batches,
                         val_score(lambda: u8_proba(cnn, d.u8_val), d), 1 if a.smoke else a.compact_epochs, 2e-3,
                         run.work / "compact.pt", d.class_w, run.log)
    p7_val, p7_te = u8_proba(cnn, d.u8_val), u8_proba(cnn, d.u8_te)
    run.log(f"compact done: val AUC {metrics.auc(d.ym_val, ensemble.malignant_prob(p7_val)):.4f}, {run.elapsed()}")
    return SimpleNamespace(net=cnn, hist=hist, p7_val=p7_val, p7_te=p7_te)


def stage_tabular(run: Run, d) -> SimpleNamespace:
    """5. LightGBM and XGBoost on age/sex/site: HAM10000 train plus ISIC 2017/2019/2020 metadata."""
    a = run.a
    exclude = {it.image for it in d.read + d.test}
    (Xe, ye), (X20v, y20v) = tabular.external_rows(a.data / "metadata", exclude, 0.2, a.seed)
    if a.smoke:
        Xe, ye, X20v, y20v = Xe[:3000], ye[:3000], X20v[:1000], y20v[:1000]
    Xt = np.concatenate([tabular.encode_items(d.train), Xe]); yt = np.concatenate([d.ym_tr, ye])
    models = {"lightgbm": tabular.fit_lightgbm(Xt, yt, a.seed, a.smoke), "xgboost": tabular.fit_xgboost(Xt, yt, a.seed, a.smoke)}
    run.log(f"tabular trained on {len(yt)} rows ({int(yt.sum())} malignant)")
    return SimpleNamespace(models=models, n_rows=len(yt), X_val=tabular.encode_items(d.val), X20v=X20v, y20v=y20v)


def stage_export(run: Run, d, f, eff, g, cnn, tab) -> SimpleNamespace:
    """6. Every model to ONNX in a staging folder, each checked against its framework."""
    staging = run.work / "export"
    shutil.rmtree(staging, ignore_errors=True); staging.mkdir()
    check = np.stack([preprocess.normalize(d.u8_val[i].astype(np.float32)) for i in range(min(4, len(d.u8_val)))])
    eff_export = im.Exported(f.bottom.to(memory_format=torch.contiguous_format), eff.top, g.ood, g.retake).eval()
    eff.top.eval()
    x = SimpleNamespace(staging=staging, tab_val={}, tab_diff={}, tab_auc={})
    x.diff_eff = export.export_image_model(eff_export, staging / "image_effnet_lite0.onnx", check)
    x.diff_cnn = export.export_image_model(im.Exported(torch.nn.Identity(), cnn.net).eval(), staging / "image_compact_cnn.onnx", check)
    tabular.export_lightgbm(tab.models["lightgbm"], staging / "tabular_lightgbm.onnx")
    tabular.export_xgboost(tab.models["xgboost"], staging / "tabular_xgboost.onnx")
    for name, m in tab.models.items():
        path = staging / f"tabular_{name}.onnx"
        p_onnx = tabular.onnx_proba(path, tab.X_val)
        x.tab_diff[name] = float(np.abs(p_onnx - m.predict_proba(tab.X_val)[:, 1]).max())
        if x.tab_diff[name] > 1e-4:
            raise RuntimeError(f"{name} ONNX disagrees with predict_proba: {x.tab_diff[name]:.2e}")
        x.tab_val[name] = p_onnx
        x.tab_auc[name] = {"ham_val": metrics.auc(d.ym_val, p_onnx), "isic2020_val_patients": metrics.auc(tab.y20v, m.predict_proba(tab.X20v)[:, 1])}
    x.tab_use = max(x.tab_auc, key=lambda k: x.tab_auc[k]["ham_val"])
    run.log(f"onnx checks: effnet {x.diff_eff:.2e}, compact {x.diff_cnn:.2e}, tabular {x.tab_diff}; tabular AUC {x.tab_auc}, using {x.tab_use}")
    return x


def stage_ensemble(run: Run, d, eff, cnn, x) -> SimpleNamespace:
    """The ensemble per image model, fitted on validation (out-of-fold where it is evaluated)."""
    a = run.a
    has_meta = tabular.has_metadata(d.val)
    cfgs, vals = {}, {}
    for mid, p7v in (("effnet_lite0", eff.p7_val), ("compact_cnn", cnn.p7_val)):
        cfgs[mid], vals[mid] = ensemble.fit_all(p7v[has_meta], x.tab_val[x.tab_use][has_meta], d.ym_val[has_meta], d.folds[has_meta], a.low_miss, a.high_spec)
        # Image-only calibration and tiers use every validation image, metadata or not.
        cfg_img, val_img = ensemble.fit_all(p7v, np.full(len(p7v), 0.5), d.ym_val, d.folds, a.low_miss, a.high_spec)
        cfgs[mid]["calibration"] = cfg_img["calibration"]
        cfgs[mid]["decision_threshold"] = cfg_img["decision_threshold"]
        cfgs[mid]["tiers"]["image_only"] = cfg_img["tiers"]["image_only"]
        for k in ("auc_image", "auc_image_oof_calibrated", "ece_raw", "ece_calibrated_in_sample", "ece_calibrated_oof", "tiers_image_only_oof"):
            vals[mid][k] = val_img[k]
        cfgs[mid]["quarter_turns"] = a.turns if mid == "effnet_lite0" else 1
        run.log(f"{mid}: {json.dumps(cfgs[mid])}")
    return SimpleNamespace(cfgs=cfgs, vals=vals, has_meta=has_meta)


def figures_on_test(a, d, cfg, p7t) -> tuple[dict, np.ndarray]:
    """The test set's figures for one image model (image-only: the test set has no metadata), and
    its calibrated probabilities."""
    z = metrics.logit(ensemble.malignant_prob(p7t))
    p_cal = ensemble.apply_platt(z, (cfg["calibration"]["a"], cfg["calibration"]["b"]))
    t = cfg["tiers"]["image_only"]
    return {
        "n": int(len(d.ym_te)), "malignant": int(d.ym_te.sum()),
        "roc_auc": metrics.auc(d.ym_te, p_cal),
        "roc_auc_ci95": metrics.auc_ci(d.ym_te, p_cal, 50 if a.smoke else 1000, a.seed),
        "diagnosis": metrics.multiclass(d.y7_te, p7t),
        "at_decision_threshold": metrics.binary_at(d.ym_te, p_cal, cfg["decision_threshold"]),
        "ece_raw": metrics.ece(d.ym_te, ensemble.malignant_prob(p7t)),
        "ece_calibrated": metrics.ece(d.ym_te, p_cal),
        "tiers": metrics.tier_table(d.ym_te, p_cal, t["low_below"], t["high_from"]),
    }, p_cal


def stage_test_report(run: Run, d, eff, cnn, ens) -> dict:
    """7. The test report per image model; for the shipped one, what the quarter turns add."""
    a, results = run.a, {}
    for mid, m in (("effnet_lite0", eff), ("compact_cnn", cnn)):
        p7t = m.p7_te
        test, p_cal = figures_on_test(a, d, ens.cfgs[mid], p7t)
        results[mid] = {"test": test, "validation": ens.vals[mid], "history": m.hist, "_p_test": p_cal, "_p7_test": p7t}
        if mid == "effnet_lite0" and a.turns > 1:
            # The same network on the photo alone (no turns): what test-time augmentation adds.
            # Threshold-free figures only; tiers and calibration belong to the shipped probabilities.
            fig = lambda p, y_m, y_7: {"roc_auc": metrics.auc(y_m, ensemble.malignant_prob(p)),
                                       "balanced_accuracy": metrics.multiclass(y_7, p)["balanced_accuracy"]}
            results[mid]["turns_effect"] = {
                split: {"one_view": fig(eff.one_view[split], y_m, y_7), f"{a.turns}_turns": fig(p, y_m, y_7)}
                for split, p, y_m, y_7 in (("validation", eff.p7_val, d.ym_val, d.y7_val), ("test", p7t, d.ym_te, d.y7_te))}
        run.log(f"{mid} TEST: AUC {results[mid]['test']['roc_auc']:.4f} bal-acc7 {results[mid]['test']['diagnosis']['balanced_accuracy']:.4f} "
                f"low-miss {results[mid]['test']['tiers']['malignant_in_low_fraction']:.4f}")
    return results


def stage_publish(run: Run, d, f, eff, g, tab, x, ens, results):
    """Publish: the models into --out, the manifest, the gate report, golden vectors, the report."""
    a, log = run.a, run.log
    for name in ("image_effnet_lite0.onnx", "image_compact_cnn.onnx", "tabular_lightgbm.onnx", "tabular_xgboost.onnx"):
        shutil.copy2(x.staging / name, a.out / name)
    wall = log.total_wall()  # all invocations of this run, resumed ones included
    manifest = report.build_manifest(a, ens.cfgs, x.tab_use, x.tab_auc, results, d.train, d.val, d.test, tab.n_rows, wall,
                                     x.diff_eff, x.diff_cnn, x.tab_diff, f.full_ft)
    manifest["quality"] = quality_block(g)
    export.write_json(a.out / "manifest.json", manifest)
    gate = report.gate_report(a, a.out / "image_effnet_lite0.onnx", manifest["quality"], d.u8_te,
                              g.ood["score_fn"](g.pooled["test"]), g.ood_retake_test, run.work, log)
    report.write_golden(a, manifest, run.golden_dir, log)
    report.write_report(a.out, manifest, results, x.tab_auc, ens.vals, d.ym_te, d.y7_te, d.ym_val, eff.p7_val, x.tab_val,
                        x.tab_use, ens.has_meta, gate, log)
    log(f"done in {wall / 60:.1f} min")


def main():
    a = parse()
    run = Run(a)
    run.log(f"start {'smoke' if a.smoke else 'full'} run: data={a.data} out={a.out} work={run.work}")
    random.seed(a.seed); np.random.seed(a.seed); torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    # The stages run in this order: torch's global generator seeds each new network in turn.
    d = stage_data(run)
    f = stage_features(run, d)
    eff = stage_image_model(run, d, f)
    g = stage_gate(run, d, f)
    run.log(f"effnet done: val AUC {metrics.auc(d.ym_val, ensemble.malignant_prob(eff.p7_val)):.4f}, {run.elapsed()}")
    cnn = stage_compact(run, d)
    tab = stage_tabular(run, d)
    x = stage_export(run, d, f, eff, g, cnn, tab)
    ens = stage_ensemble(run, d, eff, cnn, x)
    results = stage_test_report(run, d, eff, cnn, ens)
    stage_publish(run, d, f, eff, g, tab, x, ens, results)


if __name__ == "__main__":
    sys.exit(main())
