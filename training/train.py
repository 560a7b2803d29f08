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
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
from pathlib import Path

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


SMOKE_PER_CLASS = {"train": 16, "val": 8, "test": 6}  # images per diagnosis in --smoke (finetune.py pack too)


def smoke_subset(items, per_class, seed):
    rng = random.Random(seed)
    out = []
    for c in data.CLASSES:
        its = [it for it in items if it.dx == c]
        rng.shuffle(its)
        out += its[:per_class]
    return out


def main():
    a = parse()
    t_start = time.time()
    work = a.work or Path.home() / ".cache" / "skinscan" / ("train-smoke" if a.smoke else "train")
    work.mkdir(parents=True, exist_ok=True)
    a.out.mkdir(parents=True, exist_ok=True)
    golden_dir = a.golden or ((a.out / "golden") if a.smoke else (a.out.resolve().parent / "tests" / "fixtures"))
    log = Log(work / "train.log")
    log(f"start {'smoke' if a.smoke else 'full'} run: data={a.data} out={a.out} work={work}")
    random.seed(a.seed); np.random.seed(a.seed); torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)

    # ---- 1. splits
    ham = data.read_set(a.data, "ham10000")
    i17 = data.read_set(a.data, "isic2017-train")
    test = data.read_set(a.data, "ham10000-test")
    ham_tr, ham_val = data.split_by_group(ham, a.val_frac, a.seed)
    assert not ({it.group for it in ham_tr} & {it.group for it in ham_val}), "lesion leaked across splits"
    test_ids = {it.image for it in test}
    assert not (test_ids & {it.image for it in ham + i17}), "test image in training data"
    train = ham_tr + i17
    if a.smoke:
        n = SMOKE_PER_CLASS
        train, ham_val, test = (smoke_subset(train, n["train"], a.seed), smoke_subset(ham_val, n["val"], a.seed),
                                smoke_subset(test, n["test"], a.seed))
    y7_tr, ym_tr = data.labels(train)
    y7_val, ym_val = data.labels(ham_val)
    y7_te, ym_te = data.labels(test)
    folds = data.group_folds(ham_val, 5, a.seed)
    log(f"split: train {len(train)} ({len(ham_tr)} HAM + ISIC2017), val {len(ham_val)} HAM "
        f"({len({i.group for i in ham_val})} lesions), test {len(test)}")

    # ---- 2. canonical images
    u8_tr = data.load_u8(train, work / "u8_train.npy", log)
    u8_val = data.load_u8(ham_val, work / "u8_val.npy", log)
    u8_te = data.load_u8(test, work / "u8_test.npy", log)

    results = {}
    # ---- 3. EfficientNet-Lite0
    # Either the upper blocks are trained here on cached frozen-block features (2 CPU cores), or a
    # full fine-tune from finetune.py (a GPU) is loaded; everything after this stage is the same.
    full_ft = None
    if a.image_checkpoint:
        full = im.load_full(a.image_checkpoint, a.cut)
        full_ft = torch.load(a.image_checkpoint, map_location="cpu", weights_only=False)["summary"]
        # The checkpoint must come from this very train/validation split (finetune.py pack with the
        # same --val-frac, --seed and --smoke): otherwise validation images may have been trained on,
        # and calibration, tiers and the OOD cut would be fitted on seen images.
        theirs, mine = full_ft["pack"].get("split_sha256"), data.split_digest({"train": train, "val": ham_val})
        if theirs != mine:
            raise SystemExit(f"{a.image_checkpoint} was fine-tuned on another train/validation split "
                             f"(pack: {theirs}, here: {mine}); pack with the same --val-frac/--seed/--smoke")
        tag = "ft-" + export.sha256(a.image_checkpoint)[:12]
        bottom, top, views, feat = full.bottom, full.top, 1, f"feat_{{}}_{tag}.npy"
        log(f"image model: full fine-tune {a.image_checkpoint} ({full_ft['chosen']}, val score {full_ft['val_score']:.4f}, "
            f"{full_ft['device']}, {full_ft['seconds']:.0f}s)")
    else:
        net = im.load_effnet(7)
        bottom, views, feat = im.Bottom(net, a.cut), 1 if a.smoke else a.views, "feat_{}.npy"
    bottom = bottom.eval()
    for p in bottom.parameters():
        p.requires_grad_(False)
    bottom = bottom.to(memory_format=torch.channels_last)
    f_tr = np.asarray(im.compute_bottom_features(bottom, u8_tr, views, work / feat.format("train"), a.seed, log=log))
    f_val = np.asarray(im.compute_bottom_features(bottom, u8_val, 1, work / feat.format("val"), a.seed, log=log, dtype=np.float32))[:, 0]
    f_te = np.asarray(im.compute_bottom_features(bottom, u8_te, 1, work / feat.format("test"), a.seed, log=log, dtype=np.float32))[:, 0]
    log(f"bottom features ready: train {f_tr.shape}, {time.time() - t_start:.0f}s elapsed")

    if full_ft is None:
        top = im.Top(net, a.cut)
    top = top.to(memory_format=torch.channels_last)
    cl = torch.channels_last

    def eff_batches(ep, bs=64):
        rng = np.random.default_rng(a.seed + ep)
        g = torch.Generator().manual_seed(a.seed + ep)
        idx = im.epoch_indices(y7_tr, rng)
        def gen():
            for i in range(0, len(idx), bs):
                b = idx[i:i + bs]
                v = rng.integers(0, views, len(b))
                x = torch.from_numpy(f_tr[b, v].astype(np.float32))
                yield im.dihedral(x, g).contiguous(memory_format=cl), torch.from_numpy(y7_tr[b])
        return (len(idx) + bs - 1) // bs, gen()

    def feats_proba(model, f):
        return im.predict_proba(model, (torch.from_numpy(f[i:i + 256]).contiguous(memory_format=cl) for i in range(0, len(f), 256)))

    def val_score(proba_fn):
        def fn():
            p7 = proba_fn()
            auc = metrics.auc(ym_val, ensemble.malignant_prob(p7))
            bal = metrics.multiclass(y7_val, p7)["balanced_accuracy"]
            return auc + bal, {"val_auc": auc, "val_bal_acc": bal}
        return fn

    # Weights on the class mix an epoch actually sees (nv is subsampled each epoch).
    w = im.class_weights(y7_tr[im.epoch_indices(y7_tr, np.random.default_rng(0))], 7)
    head_params = list(top.fc.parameters())
    body_params = [p for n, p in top.named_parameters() if not n.startswith("fc.")]
    lr = 1e-3
    groups = [{"params": body_params, "lr": lr * 0.5, "base_lr": lr * 0.5}, {"params": head_params, "lr": lr, "base_lr": lr}]
    if full_ft is None:
        hist_eff = im.train_loop(top, groups, eff_batches, val_score(lambda: feats_proba(top, f_val)),
                                 1 if a.smoke else a.effnet_epochs, lr, work / "effnet_top.pt", w, log)
    else:
        chosen = full_ft["chosen"].get("config") or full_ft["soup"]["members"][0]
        hist_eff = next(r["history"] for r in full_ft["runs"] if r["config"]["name"] == chosen)
    p7_val_eff, p7_te_eff = feats_proba(top, f_val), feats_proba(top, f_te)
    one_view = {"validation": p7_val_eff, "test": p7_te_eff}  # for the report's "one view" row
    if a.turns > 1:
        # What ships: the mean softmax over quarter turns of the photo. Calibration, stacker,
        # tiers and the test report below all see these probabilities.
        key = export.sha256(a.image_checkpoint or work / "effnet_top.pt")[:12]
        log(f"single view: val AUC {metrics.auc(ym_val, ensemble.malignant_prob(p7_val_eff)):.4f}; {a.turns} quarter turns:")
        p7_val_eff = im.predict_turns(bottom, top, u8_val, a.turns, work / f"p7_val_{key}_t{a.turns}.npy", log)
        p7_te_eff = im.predict_turns(bottom, top, u8_te, a.turns, work / f"p7_test_{key}_t{a.turns}.npy", log)
    # ---- 3b. quality gate: out-of-distribution statistics and photo-quality thresholds,
    # fitted on training images (thresholds) and validation images (OOD quantile) only.
    pooled = {"train": quality.pooled_stats(f_tr[:, 0]), "val": quality.pooled_stats(f_val), "test": quality.pooled_stats(f_te)}
    ood = quality.fit_ood(pooled["train"], pooled["val"])
    rng_q = np.random.default_rng(a.seed)
    q_pick = rng_q.choice(len(u8_tr), min(3000, len(u8_tr)), replace=False)
    q_thr, q_summary = quality.fit_thresholds([np.asarray(u8_tr[i]) for i in q_pick], a.seed, 30 if a.smoke else 300)
    # The hard OOD cut: beyond the 99th percentile of *degraded training* photos, no retake advice
    # can help, so the verdict is not_a_lesion even before exposure and blur are judged.
    # Per photo problem (too dark, overexposed, blurry): a Gaussian of the same statistics over
    # training photos degraded that way, its cut the 99th percentile of validation photos degraded
    # the same way. A photo the gate would send back for a problem is not a lesion when it is far
    # from lesions with that problem (a blurred face is not a blurred lesion).
    def degraded_stats(u8, idx, reason, seed):
        out, rng = [], np.random.default_rng(seed)
        with torch.no_grad():
            for j in range(0, len(idx), 32):
                x = torch.from_numpy(np.stack([preprocess.normalize(quality.degrade_random(np.asarray(u8[i]), reason, rng)) for i in idx[j:j + 32]]))
                out.append(quality.pooled_stats(bottom(x.contiguous(memory_format=cl)).numpy()))
        return np.concatenate(out)
    pick_rt = np.sort(rng_q.choice(len(u8_tr), min(10 if a.smoke else 800, len(u8_tr)), replace=False))
    pick_rv = np.sort(rng_q.choice(len(u8_val), min(10 if a.smoke else 400, len(u8_val)), replace=False))
    retake, deg_scores = [], []
    for r in quality.RETAKE_REASONS:
        st_tr = degraded_stats(u8_tr, pick_rt, r, a.seed + 1)
        retake.append(quality.fit_ood(st_tr, degraded_stats(u8_val, pick_rv, r, a.seed + 2)))
        deg_scores += [float(v) for v in ood["score_fn"](st_tr)]
    # The hard OOD cut: beyond the 99th percentile of *degraded training* photos' ordinary score,
    # no retake advice can help, so the verdict is not_a_lesion before exposure and blur are judged.
    ood["hard_threshold"] = max(float(np.percentile(deg_scores, 99)), ood["threshold"])
    ood["degraded_train_percentiles"] = {str(p): float(np.percentile(deg_scores, p)) for p in (50, 90, 99)}
    ood["retake_max"] = {r: fit["threshold"] for r, fit in zip(quality.RETAKE_REASONS, retake)}
    ood_retake_test = np.stack([fit["score_fn"](pooled["test"]) for fit in retake], 1)
    # The cut comes from HAM10000 validation images; other dermoscopy archives sit further out.
    s_tr = ood["score_fn"](pooled["train"])
    ood["train_above_threshold_by_source"] = {src: float((s_tr[[it.source == src for it in train]] > ood["threshold"]).mean())
                                              for src in sorted({it.source for it in train})}
    log(f"gate: ood threshold {ood['threshold']:.3f}, hard {ood['hard_threshold']:.3f}, retake_max {ood['retake_max']} (degraded train {ood['degraded_train_percentiles']}) (val percentiles {ood['val_percentiles']}), thresholds {q_thr}")
    log(f"effnet done: val AUC {metrics.auc(ym_val, ensemble.malignant_prob(p7_val_eff)):.4f}, {time.time() - t_start:.0f}s elapsed")

    # ---- 4. compact CNN
    cnn = im.CompactCNN().to(memory_format=cl)

    def cnn_batches(ep, bs=64):
        rng = np.random.default_rng(a.seed * 7 + ep)
        g = torch.Generator().manual_seed(a.seed * 7 + ep)
        idx = im.epoch_indices(y7_tr, rng)
        def gen():
            for i in range(0, len(idx), bs):
                b = np.sort(idx[i:i + bs])
                x = im.augment(im.to_input(u8_tr[b]), g)
                yield x.contiguous(memory_format=cl), torch.from_numpy(y7_tr[b])
        return (len(idx) + bs - 1) // bs, gen()

    def u8_proba(model, u8):
        return im.predict_proba(model, (im.to_input(u8[i:i + 128]).contiguous(memory_format=cl) for i in range(0, len(u8), 128)))

    hist_cnn = im.train_loop(cnn, [{"params": list(cnn.parameters()), "lr": 2e-3, "base_lr": 2e-3}], cnn_batches,
                             val_score(lambda: u8_proba(cnn, u8_val)), 1 if a.smoke else a.compact_epochs, 2e-3,
                             work / "compact.pt", w, log)
    p7_val_cnn, p7_te_cnn = u8_proba(cnn, u8_val), u8_proba(cnn, u8_te)
    log(f"compact done: val AUC {metrics.auc(ym_val, ensemble.malignant_prob(p7_val_cnn)):.4f}, {time.time() - t_start:.0f}s elapsed")

    # ---- 5. tabular
    exclude = {it.image for it in ham + i17 + test}
    (Xe, ye), (X20v, y20v) = tabular.external_rows(a.data / "metadata", exclude, 0.2, a.seed)
    if a.smoke:
        Xe, ye, X20v, y20v = Xe[:3000], ye[:3000], X20v[:1000], y20v[:1000]
    Xt = np.concatenate([tabular.encode_items(train), Xe]); yt = np.concatenate([ym_tr, ye])
    X_val = tabular.encode_items(ham_val)
    tab_models = {"lightgbm": tabular.fit_lightgbm(Xt, yt, a.seed, a.smoke), "xgboost": tabular.fit_xgboost(Xt, yt, a.seed, a.smoke)}
    log(f"tabular trained on {len(yt)} rows ({int(yt.sum())} malignant)")

    # ---- 6. export + checks
    staging = work / "export"
    shutil.rmtree(staging, ignore_errors=True); staging.mkdir()
    files = {}
    check = np.stack([preprocess.normalize(u8_val[i].astype(np.float32)) for i in range(min(4, len(u8_val)))])
    eff_export = im.Exported(bottom.to(memory_format=torch.contiguous_format), top, ood, retake).eval()
    top.eval()
    diff_eff = export.export_image_model(eff_export, staging / "image_effnet_lite0.onnx", check)
    diff_cnn = export.export_image_model(im.Exported(torch.nn.Identity(), cnn).eval(), staging / "image_compact_cnn.onnx", check)
    tabular.export_lightgbm(tab_models["lightgbm"], staging / "tabular_lightgbm.onnx")
    tabular.export_xgboost(tab_models["xgboost"], staging / "tabular_xgboost.onnx")
    tab_val, tab_diff, tab_auc = {}, {}, {}
    for name, m in tab_models.items():
        path = staging / f"tabular_{name}.onnx"
        p_onnx = tabular.onnx_proba(path, X_val)
        tab_diff[name] = float(np.abs(p_onnx - m.predict_proba(X_val)[:, 1]).max())
        if tab_diff[name] > 1e-4:
            raise RuntimeError(f"{name} ONNX disagrees with predict_proba: {tab_diff[name]:.2e}")
        tab_val[name] = p_onnx
        tab_auc[name] = {"ham_val": metrics.auc(ym_val, p_onnx), "isic2020_val_patients": metrics.auc(y20v, m.predict_proba(X20v)[:, 1])}
    tab_use = max(tab_auc, key=lambda k: tab_auc[k]["ham_val"])
    log(f"onnx checks: effnet {diff_eff:.2e}, compact {diff_cnn:.2e}, tabular {tab_diff}; tabular AUC {tab_auc}, using {tab_use}")

    # ---- ensemble fitted on validation (out-of-fold where it is evaluated)
    has_meta = tabular.has_metadata(ham_val)
    cfgs, vals = {}, {}
    for mid, p7v in (("effnet_lite0", p7_val_eff), ("compact_cnn", p7_val_cnn)):
        cfgs[mid], vals[mid] = ensemble.fit_all(p7v[has_meta], tab_val[tab_use][has_meta], ym_val[has_meta], folds[has_meta], a.low_miss, a.high_spec)
        # Image-only calibration and tiers use every validation image, metadata or not.
        cfg_img, val_img = ensemble.fit_all(p7v, np.full(len(p7v), 0.5), ym_val, folds, a.low_miss, a.high_spec)
        cfgs[mid]["calibration"] = cfg_img["calibration"]
        cfgs[mid]["decision_threshold"] = cfg_img["decision_threshold"]
        cfgs[mid]["tiers"]["image_only"] = cfg_img["tiers"]["image_only"]
        for k in ("auc_image", "auc_image_oof_calibrated", "ece_raw", "ece_calibrated_in_sample", "ece_calibrated_oof", "tiers_image_only_oof"):
            vals[mid][k] = val_img[k]
        cfgs[mid]["quarter_turns"] = a.turns if mid == "effnet_lite0" else 1
        log(f"{mid}: {json.dumps(cfgs[mid])}")

    # ---- 7. test report (image-only: the test set has no metadata)
    for mid, p7t, p7v, hist in (("effnet_lite0", p7_te_eff, p7_val_eff, hist_eff), ("compact_cnn", p7_te_cnn, p7_val_cnn, hist_cnn)):
        cfg = cfgs[mid]
        z = metrics.logit(ensemble.malignant_prob(p7t))
        p_cal = ensemble.apply_platt(z, (cfg["calibration"]["a"], cfg["calibration"]["b"]))
        t = cfg["tiers"]["image_only"]
        results[mid] = {
            "test": {
                "n": int(len(ym_te)), "malignant": int(ym_te.sum()),
                "roc_auc": metrics.auc(ym_te, p_cal),
                "roc_auc_ci95": metrics.auc_ci(ym_te, p_cal, 50 if a.smoke else 1000, a.seed),
                "diagnosis": metrics.multiclass(y7_te, p7t),
                "at_decision_threshold": metrics.binary_at(ym_te, p_cal, cfg["decision_threshold"]),
                "ece_raw": metrics.ece(ym_te, ensemble.malignant_prob(p7t)),
                "ece_calibrated": metrics.ece(ym_te, p_cal),
                "tiers": metrics.tier_table(ym_te, p_cal, t["low_below"], t["high_from"]),
            },
            "validation": vals[mid],
            "history": hist,
            "_p_test": p_cal, "_p7_test": p7t,
        }
        if mid == "effnet_lite0" and a.turns > 1:
            # The same network on the photo alone (no turns): what test-time augmentation adds.
            # Threshold-free figures only; tiers and calibration belong to the shipped probabilities.
            fig = lambda p, y_m, y_7: {"roc_auc": metrics.auc(y_m, ensemble.malignant_prob(p)),
                                       "balanced_accuracy": metrics.multiclass(y_7, p)["balanced_accuracy"]}
            results[mid]["turns_effect"] = {
                split: {"one_view": fig(one_view[split], y_m, y_7), f"{a.turns}_turns": fig(p, y_m, y_7)}
                for split, p, y_m, y_7 in (("validation", p7_val_eff, ym_val, y7_val), ("test", p7t, ym_te, y7_te))}
        log(f"{mid} TEST: AUC {results[mid]['test']['roc_auc']:.4f} bal-acc7 {results[mid]['test']['diagnosis']['balanced_accuracy']:.4f} "
            f"low-miss {results[mid]['test']['tiers']['malignant_in_low_fraction']:.4f}")

    # ---- publish: models/, manifest, golden, report
    for f in ("image_effnet_lite0.onnx", "image_compact_cnn.onnx", "tabular_lightgbm.onnx", "tabular_xgboost.onnx"):
        shutil.copy2(staging / f, a.out / f)
    wall = log.total_wall()  # all invocations of this run, resumed ones included
    manifest = report.build_manifest(a, cfgs, tab_use, tab_auc, results, train, ham_val, test, len(yt), wall, diff_eff, diff_cnn, tab_diff, full_ft)
    manifest["quality"] = {
        "params": quality.PARAMS,
        "thresholds": q_thr,
        "ood": {"model": "effnet_lite0", "output": "ood", "threshold": ood["threshold"], "hard_threshold": ood["hard_threshold"],
                "train_above_threshold_by_source": ood["train_above_threshold_by_source"],
                "retake_output": "ood_retake", "retake_order": quality.RETAKE_REASONS, "retake_max": ood["retake_max"],
                "degraded_train_percentiles": ood["degraded_train_percentiles"], "method": "mahalanobis_pooled_block_stats", "dim": ood["dim"], "validation_percentiles": {str(k): v for k, v in ood["val_percentiles"].items()}},
        "fitted_on": {"thresholds": f"{len(q_pick)} training images and {q_summary['n_degraded_each']} degraded copies of training images per degradation",
                      "ood": "pooled block statistics of training images (mean, covariance) and validation images (99th percentile threshold)",
                      "retake": f"one Gaussian per problem over {len(pick_rt)} training images degraded that way at random strengths {quality.STRENGTHS}; cut = 99th percentile of {len(pick_rv)} validation images degraded the same way"},
        "clean_percentiles": q_summary["clean_percentiles"],
    }
    export.write_json(a.out / "manifest.json", manifest)
    gate = report.gate_report(a, a.out / "image_effnet_lite0.onnx", manifest["quality"], u8_te, ood["score_fn"](pooled["test"]), ood_retake_test, work, log)
    report.write_golden(a, manifest, golden_dir, log)
    report.write_report(a.out, manifest, results, tab_auc, vals, ym_te, y7_te, ym_val, p7_val_eff, tab_val, tab_use, has_meta, gate, log)
    log(f"done in {wall / 60:.1f} min")


if __name__ == "__main__":
    sys.exit(main())
