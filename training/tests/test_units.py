"""Fast unit tests of the pieces the Rust side must mirror."""
import numpy as np
from PIL import Image

from skinscan_train import data, ensemble, metrics, preprocess, tabular


def test_resize_weights_rows_sum_to_one_and_identity():
    for n_in, n_out in [(1024, 224), (150, 224), (224, 224), (7, 3)]:
        w = preprocess.resize_weights(n_in, n_out)
        assert w.shape == (n_out, n_in)
        np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(preprocess.resize_weights(224, 224), np.eye(224, dtype=np.float32))


def test_resize_matches_pil_bilinear_within_rounding():
    rng = np.random.default_rng(0)
    img = (rng.random((300, 400, 3)) * 255).astype(np.uint8)
    ours = preprocess.resize(img)
    pil = np.asarray(Image.fromarray(img).resize((224, 224), Image.BILINEAR), np.float32)
    # PIL rounds to 8 bits between its passes; the coefficient rule is the same.
    assert np.abs(ours - pil).max() <= 1.5


def test_normalize_layout_is_nchw_rgb():
    img = np.zeros((2, 2, 3), np.float32)
    img[0, 1] = [255, 0, 0]      # top-right red
    x = preprocess.normalize(img)
    assert x.shape == (3, 2, 2)
    assert x[0, 0, 1] == 1.0 and x[1, 0, 1] == -1.0 and x[0, 0, 0] == -1.0


def test_tabular_missing_fields_are_nan_not_zero():
    v = tabular.encode(None, "male", None)
    assert np.isnan(v[0]) and v[1] == 1.0 and np.isnan(v[2:]).all()
    v = tabular.encode(40, None, "palms/soles")
    assert v[0] == 40 and np.isnan(v[1]) and v[2 + data.SITES.index("palms/soles")] == 1 and np.nansum(v[2:]) == 1


def test_tier_thresholds_respect_targets():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 2000)
    p = np.clip(rng.normal(0.3 + 0.3 * y, 0.15), 0, 1)
    low, high = metrics.tier_thresholds(y, p, 0.05, 0.90)
    assert (p[y == 1] < low).mean() <= 0.05
    assert (p[y == 0] >= high).mean() <= 0.10
    assert low <= high


def test_assess_without_metadata_is_calibrated_image_score():
    cfg = {"calibration": {"a": 1.5, "b": -0.2}, "stacker": {"intercept": 0, "image_coef": 1, "tabular_coef": 1},
           "tiers": {"image_only": {"low_below": 0.1, "high_from": 0.6}, "with_metadata": {"low_below": 0.2, "high_from": 0.7}}}
    p7 = np.array([0.5, 0.2, 0.1, 0.1, 0.05, 0.03, 0.02])
    r = ensemble.assess(p7, None, cfg)
    z = metrics.logit(0.35)
    assert abs(r["malignant_probability"] - metrics.sigmoid(1.5 * z - 0.2)) < 1e-12
    assert r["tabular_probability"] is None and r["risk_tier"] == "moderate"


def test_splits_have_no_lesion_leakage(data_dir):
    ham = data.read_set(data_dir, "ham10000")
    tr, va = data.split_by_group(ham, 0.2, 20261126)
    assert not ({i.group for i in tr} & {i.group for i in va})
    assert 0.17 < len(va) / len(ham) < 0.23
    test_ids = {i.image for i in data.read_set(data_dir, "ham10000-test")}
    assert not (test_ids & {i.image for i in ham})


def test_gate_verdict_per_reason_ood_limits_mirror_rust():
    from skinscan_train import quality

    t = {"min_brightness": 60.0, "max_brightness": 240.0, "max_clipped": 0.3, "min_sharpness": 2.0,
         "min_lesion_area": 0.02, "min_lesion_contrast": 0.03, "max_lesion_offset": 0.7}
    good = {"sharpness": 30.0, "brightness": 150.0, "clipped": 0.0, "lesion_area": 0.15, "lesion_offset": 0.1, "lesion_contrast": 0.2}
    blurry, dark = {**good, "sharpness": 0.5}, {**good, "brightness": 30.0, "sharpness": 0.5}
    q = {"thresholds": t, "ood": {"threshold": 1.0, "hard_threshold": 10.0,
                                  "retake_max": {"too_dark": 3.0, "overexposed": 4.0, "blurry": 1.2}}}
    # ood_retake in RETAKE_REASONS order: too_dark, overexposed, blurry
    assert quality.verdict(blurry, 5.0, q, [9.0, 9.0, 1.1]) == ("retake", "blurry")
    assert quality.verdict(blurry, 5.0, q, [0.0, 0.0, 2.0]) == ("not_a_lesion", "not_a_lesion")
    assert quality.verdict(dark, 5.0, q, [2.0, 9.0, 9.0]) == ("retake", "too_dark")
    assert quality.verdict(dark, 5.0, q, [3.5, 0.0, 0.0]) == ("not_a_lesion", "not_a_lesion")
    assert quality.verdict(blurry, 11.0, q, [0.0, 0.0, 0.0]) == ("not_a_lesion", "not_a_lesion")
    assert quality.verdict(good, 0.5, q, [9.0, 9.0, 9.0]) == ("ok", None)
    # Without the model's per-problem scores only the hard cut applies.
    assert quality.verdict(blurry, 5.0, q) == ("retake", "blurry")


def test_quarter_turns_are_rot90_in_order_and_mean_softmax_averages():
    import torch
    from skinscan_train import image_models as im

    x = torch.arange(3 * 5 * 5, dtype=torch.float32).reshape(1, 3, 5, 5)
    turns = im.quarter_turns(x, 4)
    for k in range(4):  # src/preprocess.rs::quarter_turn uses the same order
        assert torch.equal(turns[k], torch.rot90(x[0], k, (1, 2)))
    assert torch.equal(im.quarter_turns(x, 1), x)
    z = np.array([[0.0, 1.0, 2.0], [2.0, 1.0, 0.0]])
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    np.testing.assert_allclose(im.mean_softmax(z), p.mean(0))
    np.testing.assert_allclose(im.mean_softmax(z[:1] + 100.0), p[0])  # shift-invariant, no overflow
