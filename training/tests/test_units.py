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
