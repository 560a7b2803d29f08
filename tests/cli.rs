//! The `skinscan` binary: output formats, exit status and the one-line error contract.

mod common;

use std::process::{Command, Output};

fn skinscan(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_skinscan"))
        .args(args)
        .arg("--models")
        .arg(common::models_dir())
        .output()
        .unwrap()
}

/// [`skinscan`] that must exit 0; its stderr (and the arguments) explain a failure.
fn skinscan_ok(args: &[&str]) -> Output {
    let out = skinscan(args);
    assert!(
        out.status.success(),
        "skinscan {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn fixture(name: &str) -> String {
    common::fixtures()
        .join("inputs")
        .join(name)
        .display()
        .to_string()
}

/// Exit status 2 and exactly one line `error: …` on stderr, nothing on stdout.
fn assert_one_line_error(out: &Output, needle: &str) {
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "stderr: {err}");
    assert!(
        err.starts_with("error: ") && err.contains(needle),
        "stderr: {err}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn classify_json_has_exactly_the_documented_keys() {
    let out = skinscan_ok(&[
        "classify",
        &fixture("reference.png"),
        "--json",
        "--age",
        "60",
        "--sex",
        "male",
        "--site",
        "torso",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "diagnosis",
            "heatmap",
            "image_probability",
            "malignant_probability",
            "metadata_used",
            "model_version",
            "photo_type",
            "quality",
            "risk_tier",
            "tabular_probability",
            "timings_ms",
            "top_dx",
            "warnings",
        ]
    );
    // Issue 6: the gate's verdict (null only for a manifest without a quality block) and the
    // heatmap normalised to [0, 1] for drawing.
    let q = &v["quality"];
    if common::classifier().has_quality_gate() {
        let mut qk: Vec<&str> = q.as_object().unwrap().keys().map(String::as_str).collect();
        qk.sort();
        assert_eq!(qk, ["advice", "measures", "ood_score", "reason", "verdict"]);
        let verdict = q["verdict"].as_str().unwrap();
        assert!(["ok", "retake", "not_a_lesion"].contains(&verdict), "{q}");
        assert_eq!(q["reason"].is_null(), verdict == "ok", "{q}");
        assert!(
            q["ood_score"].is_f64(),
            "the default model's OOD score applies: {q}"
        );
    } else {
        assert!(q.is_null());
    }
    let h = &v["heatmap"];
    let (hw, hh) = (h["width"].as_u64().unwrap(), h["height"].as_u64().unwrap());
    let values = h["values"].as_array().unwrap();
    assert_eq!(values.len() as u64, hw * hh);
    assert!(values
        .iter()
        .all(|x| (0.0..=1.0).contains(&x.as_f64().unwrap())));
    assert!(
        values.iter().any(|x| x.as_f64().unwrap() == 1.0),
        "normalised to a maximum of 1"
    );
    assert!(h["min"].as_f64().unwrap() <= h["max"].as_f64().unwrap());
    assert_eq!(
        v["metadata_used"],
        serde_json::json!(["age", "sex", "site"])
    );
    assert!(v["tabular_probability"].is_f64());
    let pt = &v["photo_type"];
    assert!(
        ["dermoscopic", "clinical"].contains(&pt["kind"].as_str().unwrap()),
        "{pt}"
    );
    assert_eq!(pt["source"], "detected");
    assert!(
        (0.0..=1.0).contains(&pt["probability"].as_f64().unwrap()),
        "{pt}"
    );
    let mut t: Vec<&str> = v["timings_ms"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    t.sort();
    assert_eq!(
        t,
        [
            "cnn",
            "decode",
            "ensemble",
            "preprocess",
            "tabular",
            "total"
        ]
    );
    assert!(["low", "moderate", "high"].contains(&v["risk_tier"].as_str().unwrap()));
    // Diagnosis codes in manifest order (serde_json::Value sorts keys, so look at the text).
    let text = String::from_utf8_lossy(&out.stdout);
    let manifest = common::classifier().manifest();
    let at: Vec<usize> = manifest
        .diagnoses
        .iter()
        .map(|d| {
            text.find(&format!("\"{}\":", d.code))
                .unwrap_or_else(|| panic!("no {}", d.code))
        })
        .collect();
    assert!(
        at.windows(2).all(|w| w[0] < w[1]),
        "diagnosis order: {text}"
    );
    assert_eq!(
        v["diagnosis"].as_object().unwrap().len(),
        manifest.diagnoses.len()
    );

    let out = skinscan(&["classify", &fixture("reference.png"), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["tabular_probability"].is_null());
    assert_eq!(v["metadata_used"], serde_json::json!([]));
}

#[test]
fn classify_takes_photo_type_and_answers() {
    let photo = fixture("upright.jpg");
    let run = |extra: &[&str]| -> serde_json::Value {
        let out = skinscan_ok(&[&["classify", photo.as_str(), "--json"], extra].concat());
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let auto = run(&[]);
    for kind in ["dermoscopic", "clinical"] {
        let v = run(&["--photo-type", kind]);
        assert_eq!(v["photo_type"]["kind"], kind);
        assert_eq!(v["photo_type"]["source"], "given");
        assert_eq!(
            v["photo_type"]["probability"],
            auto["photo_type"]["probability"]
        );
    }
    // The two heads judge the same photo differently.
    let d = run(&["--photo-type", "dermoscopic"]);
    let c = run(&["--photo-type", "clinical"]);
    assert_ne!(d["malignant_probability"], c["malignant_probability"]);
    assert_eq!(
        run(&["--photo-type", "auto"])["photo_type"],
        auto["photo_type"]
    );
    // Answers are used as given; "unknown" is not given.
    let v = run(&[
        "--photo-type",
        "clinical",
        "--age",
        "70",
        "--grew",
        "yes",
        "--bleed",
        "no",
        "--itch",
        "unknown",
        "--diameter",
        "9",
    ]);
    assert_eq!(
        v["metadata_used"],
        serde_json::json!(["age", "grew", "bleed", "diameter_mm"])
    );
    assert!(v["tabular_probability"].is_f64());
    let other = run(&[
        "--photo-type",
        "clinical",
        "--age",
        "70",
        "--grew",
        "no",
        "--bleed",
        "yes",
        "--diameter",
        "9",
    ]);
    assert_ne!(
        v["tabular_probability"], other["tabular_probability"],
        "the answers change the tabular model"
    );
    let human = skinscan_ok(&[
        "classify",
        photo.as_str(),
        "--photo-type",
        "clinical",
        "--grew",
        "yes",
    ]);
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(
        text.contains("photo type             clinical (given")
            && text.contains("details used           grew"),
        "{text}"
    );
}

#[test]
fn classify_human_output_and_model_choice() {
    let out = skinscan_ok(&[
        "classify",
        &fixture("reference.png"),
        "--model",
        "compact_cnn",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("risk tier") && text.contains("+compact_cnn"),
        "{text}"
    );
    assert!(text.contains("This is not a diagnosis."), "{text}");
    assert!(text.contains("photo quality"), "{text}");
}

#[test]
fn bench_reports_first_and_median_timings() {
    let out = skinscan_ok(&["bench", &fixture("upright.jpg"), "--runs", "2"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("(320x240)") && text.contains("median of 2"),
        "{text}"
    );
    let total = text
        .lines()
        .find(|l| l.starts_with("total"))
        .expect("a total row");
    let ms: Vec<f64> = total
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap())
        .collect();
    assert!(ms.len() == 3 && ms.iter().all(|&v| v > 0.0), "{total}");
    // The CNN's time by operator: convolutions are among them, and the shares add up to a pass.
    let shares: Vec<f64> = text
        .lines()
        .skip_while(|l| !l.starts_with("cnn by operator"))
        .skip(1)
        .map(|l| l.split_whitespace().nth(2).unwrap().trim_end_matches('%').parse().unwrap())
        .collect();
    assert!(text.contains("Conv") || text.contains("MatMul"), "{text}");
    assert!((shares.iter().sum::<f64>() - 100.0).abs() < 2.0 * shares.len() as f64, "{text}");
    assert_one_line_error(
        &skinscan(&["bench", &fixture("upright.jpg"), "--runs", "0"]),
        "--runs",
    );
}

#[test]
fn every_sample_image_is_classified() {
    let Some(data) = common::data_dir_or_skip() else {
        return;
    };
    let mut n = 0;
    for entry in std::fs::read_dir(data.join("samples")).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().and_then(|e| e.to_str()) != Some("jpg") {
            continue;
        }
        let out = skinscan_ok(&["classify", p.to_str().unwrap(), "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        eprintln!(
            "{}: {} {:.3} (total {:.1} ms)",
            p.file_name().unwrap().to_string_lossy(),
            v["risk_tier"],
            v["malignant_probability"].as_f64().unwrap(),
            v["timings_ms"]["total"].as_f64().unwrap()
        );
        n += 1;
    }
    assert!(n >= 10, "{n} samples");
}

#[test]
fn errors_are_one_line_with_status_2() {
    let (photo, heic, truncated) = (
        fixture("reference.png"),
        fixture("photo.heic"),
        fixture("truncated.jpg"),
    );
    let cases: [(&[&str], &str); 16] = [
        (
            &["classify", &heic],
            "HEIC is not supported; export the photo as JPEG",
        ),
        (&["classify", &truncated], "truncated"),
        (&["classify", &photo, "--sex", "x"], "invalid field `sex`"),
        (&["classify", &photo, "--age", "old"], "invalid field `age`"),
        (&["classify", &photo, "--age", "130"], "invalid field `age`"),
        (
            &["classify", &photo, "--site", "moon"],
            "invalid field `site`",
        ),
        (
            &["classify", &photo, "--model", "nope"],
            "invalid field `model`",
        ),
        (&["classify", "/no/such/file.jpg"], "/no/such/file.jpg"),
        (&["classify"], "IMAGE"),
        (&["classify", &photo, "--colour"], "unknown option"),
        (
            &["classify", &photo, "--grew", "maybe"],
            "invalid field `grew`",
        ),
        (
            &["classify", &photo, "--photo-type", "xray"],
            "invalid field `photo_type`",
        ),
        (
            &["classify", &photo, "--diameter", "big"],
            "invalid field `diameter_mm`",
        ),
        (
            &["classify", &photo, "--diameter", "-3"],
            "invalid field `diameter_mm`",
        ),
        (&["frobnicate"], "unknown command"),
        (&["evaluate", "--images", "/nonexistent"], "--labels"),
    ];
    for (args, needle) in cases {
        assert_one_line_error(&skinscan(args), needle);
    }
    // Not through `skinscan()`, which passes the crate's own --models.
    let out = Command::new(env!("CARGO_BIN_EXE_skinscan"))
        .args([
            "classify",
            &fixture("reference.png"),
            "--models",
            "/nonexistent",
        ])
        .output()
        .unwrap();
    assert_one_line_error(&out, "manifest.json");
}

#[test]
fn evaluate_counts_bad_images_and_goes_on() {
    let dir = std::env::temp_dir().join(format!("skinscan-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let copy = |from: &str, to: &str| {
        std::fs::copy(common::fixtures().join("inputs").join(from), dir.join(to)).unwrap()
    };
    copy("upright.jpg", "a.jpg");
    copy("reference.png", "b.png");
    copy("truncated.jpg", "c.jpg");
    copy("gray.jpg", "d.jpg");
    let labels = dir.join("labels.csv");
    std::fs::write(
        &labels,
        "image,malignant,dx,age,sex,site\n\
         a,1,mel,70,male,posterior torso\n\
         b,0,nv,,,\n\
         c,0,nv,,,\n\
         d,0,bkl,40,female,\n\
         missing,1,bcc,,,\n",
    )
    .unwrap();
    let preds = dir.join("preds.csv");
    let out = skinscan_ok(&[
        "evaluate",
        "--images",
        dir.to_str().unwrap(),
        "--labels",
        labels.to_str().unwrap(),
        "--json",
        "--predictions",
        preds.to_str().unwrap(),
    ]);
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["n"], 3);
    assert_eq!(r["failed"]["count"], 2);
    let failed: Vec<&str> = r["failed"]["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["image"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["c", "missing"]);
    let roc = r["roc_auc"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&roc));
    let tiers = &r["tiers"];
    let total: u64 = ["low", "moderate", "high"]
        .iter()
        .map(|t| tiers[t]["benign"].as_u64().unwrap() + tiers[t]["malignant"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 3);
    let csv = std::fs::read_to_string(&preds).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(
        rows[0],
        "image,malignant_probability,risk_tier,top_dx,quality,photo_type"
    );
    assert!(
        rows[1].ends_with(",dermoscopic") || rows[1].ends_with(",clinical"),
        "{}",
        rows[1]
    );
    assert_eq!(rows.len(), 4);
    assert!(rows[1].starts_with("a,"));
    // Human output mentions the failures by name.
    let out = skinscan(&[
        "evaluate",
        "--images",
        dir.to_str().unwrap(),
        "--labels",
        labels.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("roc_auc") && text.contains("  c: ") && text.contains("  missing: "),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn evaluate_reads_answers_and_photo_type_and_fails_when_every_row_fails() {
    let dir = std::env::temp_dir().join(format!("skinscan-cli-pad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let copy = |from: &str, to: &str| {
        std::fs::copy(common::fixtures().join("inputs").join(from), dir.join(to)).unwrap()
    };
    copy("upright.jpg", "a.jpg");
    copy("reference.png", "b.png");
    let labels = dir.join("labels.csv");
    std::fs::write(
        &labels,
        "image,malignant,dx,age,photo_type,itch,grew,hurt,changed,bleed,elevation,diameter_1\n\
         a,1,bcc,70,clinical,True,True,False,UNK,False,True,8\n\
         b,0,nv,30,dermoscopic,,,,,,,\n",
    )
    .unwrap();
    let args = [
        "evaluate",
        "--images",
        dir.to_str().unwrap(),
        "--labels",
        labels.to_str().unwrap(),
    ];
    let out = skinscan_ok(&[&args[..], &["--json"]].concat());
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["failed"]["count"], 0, "{r}");
    let pt = &r["photo_type"];
    assert_eq!(pt["labelled"], 2);
    assert_eq!(
        pt["dermoscopic"].as_u64().unwrap() + pt["clinical"].as_u64().unwrap(),
        2
    );
    // A bad answer fails its row and names the field; every row failing is exit status 2.
    std::fs::write(&labels, "image,malignant,grew\na,1,maybe\nb,0,sometimes\n").unwrap();
    let out = skinscan(&[&args[..], &["--json"]].concat());
    assert_eq!(out.status.code(), Some(2));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["failed"]["count"], 2);
    assert!(
        r["failed"]["images"][0]["error"]
            .as_str()
            .unwrap()
            .contains("grew"),
        "{r}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn evaluate_counts_verdicts_on_a_gate_set_without_malignancy_labels() {
    // A gate test set's shape (training/gate_set.py): blank malignant/dx, an `expected` column.
    let dir = std::env::temp_dir().join(format!("skinscan-cli-gate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        common::fixtures().join("inputs").join("reference.png"),
        dir.join("a.png"),
    )
    .unwrap();
    std::fs::copy(
        common::fixtures().join("inputs").join("upright.jpg"),
        dir.join("b.jpg"),
    )
    .unwrap();
    let labels = dir.join("labels.csv");
    std::fs::write(
        &labels,
        "image,malignant,dx,age,sex,site,expected\na,,,,,,not_a_lesion\nb,,,,,,retake:blurry\n",
    )
    .unwrap();
    let args = [
        "evaluate",
        "--images",
        dir.to_str().unwrap(),
        "--labels",
        labels.to_str().unwrap(),
    ];
    let out = skinscan_ok(&[&args[..], &["--json"]].concat());
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["n"], 0);
    for k in [
        "roc_auc",
        "accuracy",
        "balanced_accuracy",
        "sensitivity",
        "specificity",
    ] {
        assert!(r[k].is_null(), "{k} is undefined without labels: {r}");
    }
    assert_eq!(r["failed"]["count"], 0);
    let q = &r["quality"];
    if common::classifier().has_quality_gate() {
        assert_eq!(q["n"], 2);
        let counted = ["ok", "retake", "not_a_lesion"]
            .iter()
            .map(|k| q[k].as_u64().unwrap())
            .sum::<u64>();
        assert_eq!(counted, 2);
        let reasons: u64 = q["reasons"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(reasons, q["retake"].as_u64().unwrap());
        let right = q["as_expected"].as_u64().unwrap();
        assert_eq!(
            q["as_expected_fraction"].as_f64().unwrap(),
            right as f64 / 2.0
        );
    } else {
        assert!(q.is_null());
    }
    let out = skinscan_ok(&args);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("roc_auc                      n/a") && text.contains("photo quality"),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
