//! Shared by the integration tests: paths and one classifier per test binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use skinscan::Classifier;

pub fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `$SKINSCAN_MODELS` (e.g. another training run's output), else `<crate>/models`.
pub fn models_dir() -> PathBuf {
    std::env::var_os("SKINSCAN_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate_dir().join("models"))
}

/// Folder with `golden.json` and `golden/`: `$SKINSCAN_GOLDEN`, else `tests/fixtures`.
pub fn golden_dir() -> PathBuf {
    std::env::var_os("SKINSCAN_GOLDEN")
        .map(PathBuf::from)
        .unwrap_or_else(fixtures)
}

pub fn fixtures() -> PathBuf {
    crate_dir().join("tests").join("fixtures")
}

pub fn input(name: &str) -> Vec<u8> {
    let p = fixtures().join("inputs").join(name);
    std::fs::read(&p)
        .unwrap_or_else(|e| panic!("{}: {e} (run tests/fixtures/make_inputs.py)", p.display()))
}

/// Where the shared data folder should be: `$SKINSCAN_DATA`, else `<crate>/../shared/data`.
pub fn data_path() -> PathBuf {
    std::env::var_os("SKINSCAN_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate_dir().join("..").join("shared").join("data"))
}

/// The shared data folder, `None` if absent.
pub fn data_dir() -> Option<PathBuf> {
    let dir = data_path();
    dir.is_dir().then_some(dir)
}

/// The shared data folder, or `None` after [`skip`] has reported it missing.
pub fn data_dir_or_skip() -> Option<PathBuf> {
    let dir = data_dir();
    if dir.is_none() {
        skip(&data_path(), "no shared data folder (set SKINSCAN_DATA)");
    }
    dir
}

/// Whether this run is CI's (`CI=true`, as GitHub Actions sets it): there, missing data is a failure.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// For a test that cannot run because `path` is absent; the caller returns right after.
/// Under CI this panics, naming the path, so a checkout without the data cannot pass by
/// skipping. Elsewhere it prints that the test was skipped, as [`skipped`] does.
pub fn skip(path: &Path, why: &str) {
    let what = format!("{}: {why}", path.display());
    if under_ci() {
        panic!("{}: missing test data under CI=true: {what}", test_name());
    }
    skipped(&what);
}

/// Prints `SKIPPED: <test>: <why>` on the process's stderr itself: libtest captures
/// `eprintln!` from passing tests, so a skip reported that way would not be seen.
pub fn skipped(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {}: {why}", test_name());
}

/// libtest names each test's thread after the test.
fn test_name() -> String {
    let name = std::thread::current().name().map(str::to_string);
    name.unwrap_or_else(|| "a test".into())
}

/// The default classifier, built once per test binary.
pub fn classifier() -> &'static Classifier {
    static C: OnceLock<Classifier> = OnceLock::new();
    C.get_or_init(|| Classifier::from_dir(models_dir(), None).expect("the shipped models load"))
}

/// The default models, with the image model's test-time quarter turns set to `turns`.
pub fn classifier_with_turns(turns: usize) -> Classifier {
    let bytes = std::fs::read(models_dir().join("manifest.json")).unwrap();
    let mut m = skinscan::Manifest::from_json(&bytes).unwrap();
    let (img, tab) = m.resolve(None, None).unwrap();
    let (img, tab) = (img.clone(), tab.clone());
    let entry = m.image_models.iter_mut().find(|e| e.id == img.id).unwrap();
    entry.quarter_turns = turns;
    let read = |f: &str| std::fs::read(models_dir().join(f)).unwrap();
    Classifier::from_parts(m, &img.id, &tab.id, &read(&img.file), &read(&tab.file)).unwrap()
}

/// `skinscan evaluate --json` (the CLI built for these tests) on `images` with `labels`, under the
/// models of [`models_dir`]; asserts it ran and failed on no photo, and returns its report.
pub fn evaluate_json(images: &Path, labels: &Path) -> serde_json::Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_skinscan"))
        .args(["evaluate", "--json", "--images"])
        .arg(images)
        .arg("--labels")
        .arg(labels)
        .arg("--models")
        .arg(models_dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["failed"]["count"], 0, "{r}");
    r
}
