"""Both kinds of photo on top of the shipped network (issue 12): the heads, their fit, and the
ONNX surgery that adds them to the shipped graph.

What the image model gains (all computed from tensors the graph already has):
  photo_type       [1, 1]    logit of "clinical" (an ordinary phone photo) vs "dermoscopic", a
                             logistic regression on the block-10 statistics (how the photo was taken)
  clinical_logits  [1, 7]    the phone-photo head: multinomial logistic regression on the same
                             embedding, trained on PAD photos and, down-weighted, dermoscopic ones
  clinical_cam     [1, 7, h, w]  that head applied at every position of the last feature map
  ood_clinical     [1]       Mahalanobis distance of the block-10 statistics from PAD training photos
  ood_clinical_retake [1, 3] the same statistics against PAD photos made too dark, overexposed, blurry
  non_lesion       [1, 1]    logit of "not a skin lesion", a logistic regression on the block-10
                             statistics, the photo's colourfulness and the embedding, trained on
                             photos of skin from every source against pictures that are not of
                             skin (non_lesion.py)
  colour           [1, 1]    that colourfulness (photos.chroma): 0 for a black-and-white photo

The pipeline averages the clinical head's logits over the quarter turns it already runs (for a
linear head, the same as applying it to the mean embedding, which is what it was fitted on); the
photo type and the clinical OOD score are read on the photo as given, like the gate's scores.
"""
from __future__ import annotations

import numpy as np
from scipy.stats import beta
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from . import ensemble, metrics
from .data import CLASSES
from .photos import chroma

PHOTO_TYPES = ["dermoscopic", "clinical"]

# The stage's settings, written to the manifest and the model card from here.
HEAD_C = 0.01          # phone-photo head: chosen by 5-fold patient-grouped CV on PAD train
DERM_WEIGHT = 0.3      # dermoscopic photos' total weight in the phone-photo head, relative to PAD's
PT_C = 0.1             # photo type on block-10 statistics: best worst-source accuracy out of fold
CLINICAL_FROM = 0.5    # P(clinical) from which a photo is clinical (the balanced head's logit 0)
LOW_BUDGET = 0.025     # upper 95% bound of malignant-in-low on every validation source (promise 5%, halved for source shift)
HIGH_SPEC = 0.90
NL_C = 0.1             # non-lesion head: best out-of-fold recall (grouped by picture) of 0.01, 0.1, 1
NL_LESION_PCT = 99.5   # its cut: this percentile of out-of-fold scores on the worst lesion source
NL_VIEWS = 6           # views per non-lesion picture
MIN_COLOUR_FRACTION = 0.5  # a well-exposed photo less colourful than half the least colourful lesion photos is not one


# ------------------------------------------------------------------ linear heads
def fit_linear(X, y, C: float, weight=None, class_weight=None) -> dict:
    """Logistic regression on standardised features, folded back into one affine map
    (``W x + b`` on the raw embedding) so the graph needs no scaler."""
    sc = StandardScaler().fit(X)
    lr = LogisticRegression(C=C, max_iter=5000, class_weight=class_weight)
    lr.fit(sc.transform(X), y, sample_weight=weight)
    coef, icpt = lr.coef_ / sc.scale_, lr.intercept_ - (lr.coef_ * sc.mean_ / sc.scale_).sum(1)
    if len(lr.classes_) > 2:  # multinomial: one row per class, classes absent from y get -inf-ish rows
        W = np.zeros((len(CLASSES), X.shape[1])); b = np.full(len(CLASSES), -30.0)
        W[lr.classes_] = coef; b[lr.classes_] = icpt
        return {"W": W, "b": b}
    return {"W": coef, "b": icpt}


def apply_linear(head: dict, X) -> np.ndarray:
    return np.asarray(X, np.float64) @ head["W"].T + head["b"]


def softmax(z) -> np.ndarray:
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def oof_linear(X, y, folds, fit) -> np.ndarray:
    """Out-of-fold outputs of ``fit(X_train, y_train, mask_train)`` heads."""
    out = None
    for k in np.unique(folds):
        tr, te = folds != k, folds == k
        z = apply_linear(fit(tr), X[te])
        if out is None:
            out = np.zeros((len(X),) + z.shape[1:])
        out[te] = z
    return out


# ------------------------------------------------------------------ conservative low tier
def miss_upper(k: int, n: int, confidence: float = 0.95) -> float:
    """One-sided Clopper-Pearson upper bound of a miss rate of k in n."""
    return 1.0 if k >= n else float(beta.ppf(confidence, k + 1, n - k))


def conservative_low(sources: dict, budget: float, confidence: float = 0.95) -> tuple[float, dict]:
    """The "low" boundary as a safety promise: the largest cut at which, on *every* validation
    source, the one-sided ``confidence`` upper bound of the share of malignant photos below it is
    at most ``budget``. ``sources``: name -> (y, p). Returns (low_below, per-source figures)."""
    cuts = []
    for name, (y, p) in sources.items():
        mal = np.sort(np.asarray(p, np.float64)[np.asarray(y) == 1])
        k = -1
        while k + 1 < len(mal) and miss_upper(k + 1, len(mal), confidence) <= budget:
            k += 1
        # at most k malignant strictly below; none allowed at all -> no low tier (the data cannot support one)
        cuts.append(0.0 if k < 0 or not len(mal) else float(mal[k]))
    low = min(cuts) if cuts else 0.0
    figs = {}
    for name, (y, p) in sources.items():
        y, p = np.asarray(y), np.asarray(p)
        k = int(((p < low) & (y == 1)).sum()); n = int((y == 1).sum())
        figs[name] = {"malignant": n, "malignant_in_low": k, "fraction": k / max(n, 1),
                      "upper_bound": miss_upper(k, n, confidence), "share_in_low": float((p < low).mean())}
    return low, figs


def fit_type(p7_val, ptab_val, y, folds, sources_img: dict, sources_meta: dict, budget: float, high_spec: float, weight=None):
    """Calibration, stacker, decision threshold and tiers for one photo type: ensemble.fit_all
    (out-of-fold on validation photos the network and heads never trained on), with the low
    boundary replaced by :func:`conservative_low` over every validation source of that type.
    ``sources_*``: name -> mask into the validation arrays."""
    cfg, val = ensemble.fit_all(p7_val, ptab_val, y, folds, 0.04, high_spec, weight)
    z_img = metrics.logit(ensemble.malignant_prob(p7_val))
    oof_img, oof_stk = ensemble.oof_stacked(z_img, metrics.logit(ptab_val), y, folds, weight)
    for path, oof, srcs in (("image_only", oof_img, sources_img), ("with_metadata", oof_stk, sources_meta)):
        low, figs = conservative_low({n: (y[m], oof[m]) for n, m in srcs.items()}, budget)
        t = cfg["tiers"][path]
        t["low_below"] = low
        t["high_from"] = max(t["high_from"], low)
        val[f"tiers_{path}_oof"] = metrics.tier_table(y, oof, low, t["high_from"])
        val[f"low_promise_{path}"] = figs
    return cfg, val, (oof_img, oof_stk)


# ------------------------------------------------------------------ clinical OOD
def fit_mahalanobis(train_stats, shrink: float = 1e-2) -> dict:
    """Gaussian of block statistics; shrinkage towards the diagonal (few hundred photos, 224-d)."""
    x = np.asarray(train_stats, np.float64)
    mu = x.mean(0)
    cov = np.cov(x.T)
    cov = (1 - shrink) * cov + shrink * np.diag(np.diag(cov)) + 1e-6 * np.eye(len(mu))
    # The graph stores the factor as float16 (compact.py, issue 15): round it here, so that every
    # score this module computes, and the cuts fitted on them, use the values the graph holds.
    L = np.linalg.cholesky(np.linalg.inv(cov)).astype(np.float16).astype(np.float64)
    return {"mu": mu, "L": L, "dim": len(mu)}


def mahalanobis(g: dict, stats) -> np.ndarray:
    z = (np.asarray(stats, np.float64) - g["mu"]) @ g["L"]
    return (z * z).sum(1) / g["dim"]


# ------------------------------------------------------------------ non-lesion head
def non_lesion_x(f: dict) -> np.ndarray:
    """The non-lesion head's features: block-10 statistics, colourfulness and its log, and the
    network's embedding (block statistics alone hold textures, not what is pictured: cats,
    faces and motorcycles scored as skin; with the embedding the head's out-of-fold catch at
    the same held-out turn-away rose from 74% to 87%)."""
    c = np.asarray(f["chroma"], np.float64)[:, None]
    return np.concatenate([np.asarray(f["stats"], np.float64), c, np.log(c + 0.01), np.asarray(f["emb"], np.float64)], 1)


# ------------------------------------------------------------------ ONNX surgery
HEAD_OUTPUTS = ["photo_type", "clinical_logits", "clinical_cam", "ood_clinical", "ood_clinical_retake", "non_lesion", "colour"]


def strip_heads(onnx_in, onnx_out) -> None:
    """The shipped graph without this stage's heads (nodes, outputs and weights named mx*), so
    that a rerun starts from the fine-tuned network as train.py exported it."""
    import onnx
    m = onnx.load(str(onnx_in))
    g = m.graph
    keep = [n for n in g.node if not n.name.startswith("mx/")]
    del g.node[:]; g.node.extend(keep)
    made = {o for n in keep for o in n.output}
    outs = [o for o in g.output if o.name not in HEAD_OUTPUTS and o.name in made]
    del g.output[:]; g.output.extend(outs)
    inits = [i for i in g.initializer if not i.name.startswith("mx_")]
    del g.initializer[:]; g.initializer.extend(inits)
    onnx.save(m, str(onnx_out))


def add_heads(onnx_in, onnx_out, photo_type: dict, clinical: dict, ood: dict, non_lesion: dict, stats_node: str,
              fmap_node: str) -> None:
    """Append the heads to the shipped graph. Existing outputs are untouched (same nodes, same
    weights), so every dermoscopic figure stays bit-identical."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    m = onnx.load(str(onnx_in))
    g = m.graph
    have = {o.name for o in g.output}
    if have & set(HEAD_OUTPUTS):
        raise ValueError(f"{onnx_in} already has the mixed-data heads")
    f32 = lambda name, a: g.initializer.append(numpy_helper.from_array(np.asarray(a, np.float32), name))

    def f16(name, a):  # a Mahalanobis factor: float16 in the file, float32 once tract/onnxruntime fold the Cast
        g.initializer.append(numpy_helper.from_array(np.asarray(a, np.float16), name + "_f16"))
        g.node.append(helper.make_node("Cast", [name + "_f16"], [name], to=TensorProto.FLOAT,
                                       name="mx/" + name[len("mx_"):] + "_cast"))
    f32("mx_pt_W", photo_type["W"].reshape(1, -1)); f32("mx_pt_b", np.reshape(photo_type["b"], 1))
    f32("mx_cl_W", clinical["W"]); f32("mx_cl_b", clinical["b"]); f32("mx_cl_b4", clinical["b"].reshape(1, -1, 1, 1))
    f32("mx_oc_mu", ood["mu"].reshape(1, -1)); f16("mx_oc_L", ood["L"]); f32("mx_oc_scale", np.array(1.0 / ood["dim"]))
    g.initializer.append(numpy_helper.from_array(np.array([1], np.int64), "mx_axis1"))
    g.initializer.append(numpy_helper.from_array(np.array([2], np.int64), "mx_axis2"))
    for c in range(4):  # Slice bounds of the channel planes
        g.initializer.append(numpy_helper.from_array(np.array([c], np.int64), f"mx_c{c}"))
    rt = ood["retake"]
    f32("mx_ocr_mu", np.stack([t["mu"] for t in rt])[None]); f16("mx_ocr_L", np.stack([t["L"] for t in rt]))
    f32("mx_ocr_scale", np.array(1.0 / rt[0]["dim"]))
    from .preprocess import MEAN, STD
    f32("mx_nl_std", np.reshape(STD, (1, 3, 1, 1))); f32("mx_nl_mean", np.reshape(MEAN, (1, 3, 1, 1)))
    f32("mx_nl_eps", np.array([0.01])); f32("mx_nl_W", non_lesion["W"].reshape(1, -1)); f32("mx_nl_b", np.reshape(non_lesion["b"], 1))
    n = helper.make_node
    g.node.extend([
        n("Mul", ["input0", "mx_nl_std"], ["mx_nl_s"], name="mx/nl_std"),
        n("Add", ["mx_nl_s", "mx_nl_mean"], ["mx_nl_rgb"], name="mx/nl_mean"),
        # The largest and smallest channel per pixel, elementwise over the three channel planes:
        # tract's ReduceMax/ReduceMin across the channel axis took 8 ms each per pass in wasm
        # (a third of the CNN's time, issue 15); Slice + Max/Min take a fraction of a millisecond.
        *[n("Slice", ["mx_nl_rgb", f"mx_c{c}", f"mx_c{c + 1}", "mx_axis1"], [f"mx_nl_c{c}"], name=f"mx/nl_c{c}")
          for c in range(3)],
        n("Max", ["mx_nl_c0", "mx_nl_c1", "mx_nl_c2"], ["mx_nl_max"], name="mx/nl_max"),
        n("Min", ["mx_nl_c0", "mx_nl_c1", "mx_nl_c2"], ["mx_nl_min"], name="mx/nl_min"),
        n("Sub", ["mx_nl_max", "mx_nl_min"], ["mx_nl_spread"], name="mx/nl_spread"),
        n("ReduceMean", ["mx_nl_spread"], ["mx_nl_chroma4"], axes=[2, 3], keepdims=0, name="mx/nl_chroma"),
        n("Add", ["mx_nl_chroma4", "mx_nl_eps"], ["mx_nl_ce"], name="mx/nl_eps"),
        n("Log", ["mx_nl_ce"], ["mx_nl_logc"], name="mx/nl_log"),
        n("Concat", [stats_node, "mx_nl_chroma4", "mx_nl_logc", "embedding"], ["mx_nl_x"], axis=1, name="mx/nl_concat"),
        n("Gemm", ["mx_nl_x", "mx_nl_W", "mx_nl_b"], ["non_lesion"], transB=1, name="mx/non_lesion"),
        n("Identity", ["mx_nl_chroma4"], ["colour"], name="mx/colour"),
        n("Gemm", [stats_node, "mx_pt_W", "mx_pt_b"], ["photo_type"], transB=1, name="mx/photo_type"),
        n("Gemm", ["embedding", "mx_cl_W", "mx_cl_b"], ["clinical_logits"], transB=1, name="mx/clinical_logits"),
        n("Einsum", ["mx_cl_W", fmap_node], ["mx_cam_raw"], equation="kc,nchw->nkhw", name="mx/cam"),
        n("Add", ["mx_cam_raw", "mx_cl_b4"], ["clinical_cam"], name="mx/cam_bias"),
        n("Sub", [stats_node, "mx_oc_mu"], ["mx_oc_d"], name="mx/oc_sub"),
        n("MatMul", ["mx_oc_d", "mx_oc_L"], ["mx_oc_z"], name="mx/oc_matmul"),
        n("Mul", ["mx_oc_z", "mx_oc_z"], ["mx_oc_z2"], name="mx/oc_sq"),
        n("ReduceSum", ["mx_oc_z2", "mx_axis1"], ["mx_oc_sum"], keepdims=0, name="mx/oc_sum"),
        n("Mul", ["mx_oc_sum", "mx_oc_scale"], ["ood_clinical"], name="mx/oc_scale"),
        n("Unsqueeze", [stats_node, "mx_axis1"], ["mx_ocr_x"], name="mx/ocr_unsqueeze"),
        n("Sub", ["mx_ocr_x", "mx_ocr_mu"], ["mx_ocr_d"], name="mx/ocr_sub"),
        n("Einsum", ["mx_ocr_d", "mx_ocr_L"], ["mx_ocr_z"], equation="nrd,rde->nre", name="mx/ocr_einsum"),
        n("Mul", ["mx_ocr_z", "mx_ocr_z"], ["mx_ocr_z2"], name="mx/ocr_sq"),
        n("ReduceSum", ["mx_ocr_z2", "mx_axis2"], ["mx_ocr_sum"], keepdims=0, name="mx/ocr_sum"),
        n("Mul", ["mx_ocr_sum", "mx_ocr_scale"], ["ood_clinical_retake"], name="mx/ocr_scale"),
    ])
    k = clinical["W"].shape[0]
    g.output.extend([
        helper.make_tensor_value_info("photo_type", TensorProto.FLOAT, [1, 1]),
        helper.make_tensor_value_info("clinical_logits", TensorProto.FLOAT, [1, k]),
        helper.make_tensor_value_info("clinical_cam", TensorProto.FLOAT, [1, k, None, None]),
        helper.make_tensor_value_info("ood_clinical", TensorProto.FLOAT, [1]),
        helper.make_tensor_value_info("ood_clinical_retake", TensorProto.FLOAT, [1, 3]),
        helper.make_tensor_value_info("non_lesion", TensorProto.FLOAT, [1, 1]),
        helper.make_tensor_value_info("colour", TensorProto.FLOAT, [1, 1]),
    ])
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, str(onnx_out))


def check_heads(onnx_path, x: np.ndarray, photo_type: dict, clinical: dict, ood: dict, non_lesion: dict,
                stats_node: str) -> float:
    """onnxruntime on the new graph against the heads applied in numpy to the graph's own
    embedding and statistics; returns the worst difference (relative for the OOD distance)."""
    import onnx
    import onnxruntime as ort
    m = onnx.load(str(onnx_path))
    m.graph.output.append(onnx.helper.make_empty_tensor_value_info(stats_node))
    s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    worst = 0.0
    for xi in x:
        o = dict(zip([v.name for v in s.get_outputs()], s.run(None, {"input0": xi[None].astype(np.float32)})))
        e = o["embedding"].astype(np.float64)
        want = {"photo_type": apply_linear(photo_type, o[stats_node]), "clinical_logits": apply_linear(clinical, e),
                "ood_clinical": mahalanobis(ood, o[stats_node]),
                "ood_clinical_retake": np.array([mahalanobis(t, o[stats_node])[0] for t in ood["retake"]]),
                "non_lesion": apply_linear(non_lesion, non_lesion_x({"stats": o[stats_node], "chroma": [chroma(xi)], "emb": e})),
                "colour": np.array([chroma(xi)])}
        for name, w in want.items():
            d = np.abs(o[name].reshape(-1) - w.reshape(-1))
            worst = max(worst, float((d / np.maximum(1.0, np.abs(w.reshape(-1)))).max()))
        cam_mean = o["clinical_cam"].mean((2, 3))
        worst = max(worst, float(np.abs(cam_mean - o["clinical_logits"]).max()))
    if worst > 1e-3:
        raise RuntimeError(f"mixed-data heads in {onnx_path} disagree with numpy: {worst:.2e}")
    return worst
