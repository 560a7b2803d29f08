//! `skinscan evaluate` on the official test set reproduces the training report's ROC-AUC.
//!
//! Skips (with the reason printed; under `CI=true`, fails) only when `models/report/metrics.json`
//! or the shared data are absent; a report from a different training run than the shipped
//! manifest is a failure.

mod common;

use std::process::Command;

#[test]
fn evaluate_reproduces_the_report_auc() {
    let metrics_path = common::models_dir().join("report").join("metrics.json");
    let Ok(metrics) = std::fs::read(&metrics_path) else {
        common::skip(&metrics_path, "absent (the full training run writes it)");
        return;
    };
    let Some(data) = common::data_dir_or_skip() else {
        return;
    };
    let metrics: serde_json::Value = serde_json::from_slice(&metrics).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(common::models_dir().join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(
        metrics["model_version"], manifest["model_version"],
        "metrics.json is from another training run"
    );
    let test = &metrics["image_models"]["effnet_lite0"]["test"];
    let want_auc = test["roc_auc"].as_f64().unwrap();
    let want_n = test["n"].as_u64().unwrap();

    let set = data.join("ham10000-test");
    let predictions =
        std::env::temp_dir().join(format!("skinscan-eval-{}.csv", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_skinscan"))
        .args(["evaluate", "--json", "--model", "effnet_lite0", "--images"])
        .arg(set.join("images"))
        .arg("--labels")
        .arg(set.join("labels.csv"))
        .arg("--predictions")
        .arg(&predictions)
        .arg("--models")
        .arg(common::models_dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("{}", serde_json::to_string_pretty(&r).unwrap());
    let got_auc = r["roc_auc"].as_f64().unwrap();
    eprintln!("ROC-AUC: skinscan {got_auc:.4}, training report {want_auc:.4} (n {want_n})");
    assert_eq!(r["failed"]["count"], 0);
    assert_eq!(
        r["n"].as_u64().unwrap(),
        want_n,
        "the report and the labels cover different images"
    );
    assert!(
        (got_auc - want_auc).abs() <= 0.005,
        "ROC-AUC {got_auc} vs report {want_auc}"
    );

    let csv = std::fs::read_to_string(&predictions).unwrap();
    std::fs::remove_file(&predictions).ok();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("image,malignant_probability,risk_tier,top_dx,quality")
    );
    assert_eq!(lines.count() as u64, want_n);
}
