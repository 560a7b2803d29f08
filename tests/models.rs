//! Every model the manifest lists loads in tract with the manifest's shapes and runs; the
//! byte blobs are checked against the manifest's SHA-256.

mod common;

use skinscan::{Classifier, Error, Manifest, Metadata};

fn read_model(file: &str) -> Vec<u8> {
    std::fs::read(common::models_dir().join(file)).unwrap()
}

#[test]
fn every_listed_model_loads_and_runs() {
    let manifest_bytes = std::fs::read(common::models_dir().join("manifest.json")).unwrap();
    let manifest = Manifest::from_json(&manifest_bytes).unwrap();
    let n_img = manifest.image_models.len();
    let n_tab = manifest.tabular.models.len();
    let photo = common::input("reference.png");
    let meta = Metadata::parse([
        ("age", "55"),
        ("sex", "female"),
        ("site", "lower extremity"),
        ("grew", "yes"),
        ("diameter_mm", "7"),
    ])
    .unwrap();
    let partial = Metadata::parse([("sex", "male")]).unwrap();
    // Pair every image model and every tabular model at least once.
    for k in 0..n_img.max(n_tab) {
        let im = &manifest.image_models[k % n_img];
        let tm = &manifest.tabular.models[k % n_tab];
        let c = Classifier::from_parts(
            manifest.clone(),
            &im.id,
            &tm.id,
            &read_model(&im.file),
            &read_model(&tm.file),
        )
        .unwrap_or_else(|e| panic!("{} + {}: {e}", im.id, tm.id));
        for m in [&Metadata::default(), &meta, &partial] {
            let a = c.classify(&photo, m).unwrap();
            assert_eq!(a.diagnosis.0.len(), manifest.diagnoses.len());
            let codes: Vec<&str> = a.diagnosis.0.iter().map(|(c, _)| c.as_str()).collect();
            let want: Vec<&str> = manifest.diagnoses.iter().map(|d| d.code.as_str()).collect();
            assert_eq!(codes, want, "diagnoses in manifest order");
            let total: f64 = a.diagnosis.0.iter().map(|(_, p)| p).sum();
            assert!((total - 1.0).abs() < 1e-6, "softmax sums to 1: {total}");
            assert!((0.0..=1.0).contains(&a.malignant_probability));
            assert_eq!(a.metadata_used, m.given());
            let pt = a.tabular_probability;
            assert_eq!(pt.is_some(), m.any(), "{}: tabular p {pt:?}", tm.id);
            assert!(pt.is_none_or(|p| (0.0..=1.0).contains(&p)));
            assert!(
                a.heatmap.width > 0 && a.heatmap.values.len() == a.heatmap.width * a.heatmap.height
            );
            assert!(a.heatmap.values.iter().all(|v| v.is_finite()));
            assert!(!a.embedding.is_empty() && a.embedding.iter().all(|v| v.is_finite()));
            assert_eq!(
                a.ood_score.is_some(),
                im.outputs.ood.is_some(),
                "{}: ood output",
                im.id
            );
            assert!(a.ood_score.is_none_or(f32::is_finite));
        }
        // The tabular model distinguishes patients: a young woman's site vs an old man's.
        let young = c
            .classify(
                &photo,
                &Metadata::parse([("age", "20"), ("sex", "female")]).unwrap(),
            )
            .unwrap();
        let old = c
            .classify(
                &photo,
                &Metadata::parse([("age", "85"), ("sex", "male")]).unwrap(),
            )
            .unwrap();
        assert_ne!(
            young.tabular_probability, old.tabular_probability,
            "{}: metadata has no effect",
            tm.id
        );
        assert_eq!(young.image_probability, old.image_probability);
    }
}

#[test]
fn quarter_turns_average_the_softmax_of_turned_inputs() {
    let c = common::classifier();
    let turns = c.image_model().quarter_turns;
    let single = common::classifier_with_turns(1);
    for name in ["reference.png", "upright.jpg"] {
        let bytes = common::input(name);
        let a = c.classify(&bytes, &Metadata::default()).unwrap();
        let one = single.classify(&bytes, &Metadata::default()).unwrap();
        // By hand: each turn of the preprocessed input through the graph alone, softmax, mean.
        let input = c.preprocess_bytes(&bytes).unwrap();
        let mut mean = vec![0f64; a.diagnosis.0.len()];
        for k in 0..turns {
            let side = c.manifest().preprocess.size as usize;
            let turned = skinscan::preprocess::quarter_turn(&input, side, k);
            let p = skinscan::ensemble::softmax(&c.run_image_model(&turned).unwrap());
            for (m, v) in mean.iter_mut().zip(p) {
                *m += v / turns as f64;
            }
        }
        for ((code, p), want) in a.diagnosis.0.iter().zip(&mean) {
            assert!((p - want).abs() < 1e-6, "{name} {code}: {p} vs {want}");
        }
        if turns > 1 {
            assert_ne!(
                a.image_probability, one.image_probability,
                "{name}: turns had no effect"
            );
        }
        // The heatmap and the gate's score are the photo's own (turn 0), whatever the turns.
        assert_eq!(a.heatmap.values, one.heatmap.values);
        assert_eq!(a.ood_score, one.ood_score);
    }
}

#[test]
fn cam_heatmap_is_the_sum_of_the_malignant_maps() {
    // One pass of the graph (no turns), so the logits are those of the maps' own forward pass.
    let c = common::classifier_with_turns(1);
    let mal = c.manifest().malignant_indices();
    for name in ["reference.png", "gif_first.png", "upright.jpg"] {
        let a = c
            .classify(&common::input(name), &Metadata::default())
            .unwrap();
        assert!(
            a.heatmap.width > 1 && a.heatmap.height > 1,
            "{name}: {}x{}",
            a.heatmap.width,
            a.heatmap.height
        );
        // The exported model computes cam = W . fmap + b and logits = W . mean(fmap) + b, so each
        // class map averages to its logit: the heatmap must average to the malignant logits' sum.
        let mean = a.heatmap.values.iter().map(|&v| f64::from(v)).sum::<f64>()
            / a.heatmap.values.len() as f64;
        let want: f64 = mal.iter().map(|&k| f64::from(a.logits[k])).sum();
        assert!(
            (mean - want).abs() < 1e-3 * want.abs().max(1.0),
            "{name}: heatmap mean {mean} vs logits {want}"
        );
        // And the reported diagnosis is the softmax of those logits.
        let z: f64 = a.logits.iter().map(|&l| f64::from(l).exp()).sum();
        for ((_, p), &l) in a.diagnosis.0.iter().zip(&a.logits) {
            assert!((p - f64::from(l).exp() / z).abs() < 1e-9);
        }
    }
}

#[test]
fn checksums_are_enforced() {
    let dir = common::models_dir();
    let manifest = std::fs::read(dir.join("manifest.json")).unwrap();
    let m = Manifest::from_json(&manifest).unwrap();
    let (im, tm) = m.resolve(None, None).unwrap();
    let (image, tab) = (read_model(&im.file), read_model(&tm.file));
    let mut bad = image.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x01;
    match Classifier::from_bytes(&manifest, &bad, &tab) {
        Err(Error::Checksum { file, .. }) => assert_eq!(file, im.file),
        Err(e) => panic!("expected a checksum error, got {e}"),
        Ok(_) => panic!("a corrupted model must not load"),
    }
    // Swapped blobs are caught before tract sees them.
    assert!(matches!(
        Classifier::from_bytes(&manifest, &tab, &image),
        Err(Error::Checksum { .. })
    ));
    assert!(matches!(
        Classifier::from_bytes(b"{}", &image, &tab),
        Err(Error::Manifest(_))
    ));
}

/// The page's parallel path (issue 15): `begin`, each quarter turn on another instance of the
/// model in any order, `finish` with the turns in turn order, gives exactly `classify`'s result;
/// and `finish` refuses turns of the wrong number or shape with an error, not a panic.
#[test]
fn turns_run_elsewhere_and_out_of_order_finish_to_the_same_bits() {
    let here = common::classifier();
    let elsewhere = Classifier::from_dir(common::models_dir(), None).unwrap();
    let clock = || 0.0;
    let meta = Metadata::parse([("age", "55"), ("sex", "male"), ("grew", "yes")]).unwrap();
    let photo = common::input("reference.png");
    let n = here.quarter_turns();
    assert!(n > 1, "the shipped image model averages quarter turns");
    for m in [&Metadata::default(), &meta] {
        let want = here.classify_with_clock(&photo, m, &clock).unwrap();
        let pending = here.begin(&photo, m, &clock).unwrap();
        let mut turns: Vec<_> = (0..n)
            .rev()
            .map(|k| (k, elsewhere.run_turn(pending.input(), k).unwrap()))
            .collect();
        turns.sort_by_key(|(k, _)| *k);
        let turns = turns.into_iter().map(|(_, o)| o).collect();
        let got = here.finish(pending, turns, &clock).unwrap();
        assert_eq!(got, want, "the split path differs from classify");
    }
    let pending = here.begin(&photo, &meta, &clock).unwrap();
    let one = here.run_turn(pending.input(), 0).unwrap();
    let too_few = here.finish(pending, vec![one.clone()], &clock);
    assert!(matches!(too_few, Err(Error::Model { .. })), "{too_few:?}");
    let pending = here.begin(&photo, &meta, &clock).unwrap();
    let mut bad = one;
    bad.cam.pop();
    let misshapen = here.finish(pending, vec![bad; n], &clock);
    assert!(
        matches!(misshapen, Err(Error::Model { .. })),
        "{misshapen:?}"
    );
    assert!(
        here.run_turn(&[0.0; 4], n).is_err(),
        "a turn past the last one"
    );
}

/// vendor/tract-onnx registers only the ONNX operators SkinScan's graphs use (issue 15: a
/// smaller wasm). Every listed operator is really registered (no typo), the models above load
/// with them, and operators outside the list are gone, so the saving cannot vanish unnoticed
/// on a tract upgrade that drops the patch.
#[test]
fn only_skinscans_onnx_operators_are_registered() {
    let registered = tract_onnx::onnx().op_register.0;
    for op in tract_onnx::model::SKINSCAN_OPS {
        assert!(registered.contains_key(*op), "{op} is listed but not registered");
    }
    assert_eq!(registered.len(), tract_onnx::model::SKINSCAN_OPS.len());
    for op in ["STFT", "LSTM", "Resize", "NonMaxSuppression", "RandomNormal", "ReduceMax", "Softmax"] {
        assert!(!registered.contains_key(op), "{op} is registered: is vendor/tract-onnx patched in?");
    }
}

/// The warm-up graph the browser runs while the models download (src/warmup.onnx) loads with
/// SkinScan's operators and computes finite outputs, the same on every call.
#[test]
fn the_warm_up_graph_builds_and_runs() {
    let once = Classifier::warm_up(1).unwrap();
    assert!(once.is_finite() && once != 0.0, "{once}");
    let thrice = Classifier::warm_up(3).unwrap();
    assert!((thrice - 3.0 * once).abs() <= 1e-6 * thrice.abs(), "{thrice} vs 3 x {once}");
}
