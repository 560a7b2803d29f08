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

/// The shared data folder: `$SKINSCAN_DATA`, else `<crate>/../shared/data`. `None` if absent.
pub fn data_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("SKINSCAN_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate_dir().join("..").join("shared").join("data"));
    dir.is_dir().then_some(dir)
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
    let (img, tab) = (m.default_image_model.clone(), m.tabular.default.clone());
    let entry = m.image_models.iter_mut().find(|e| e.id == img).unwrap();
    entry.quarter_turns = turns;
    let img_file = entry.file.clone();
    let tab_file = m
        .tabular
        .models
        .iter()
        .find(|t| t.id == tab)
        .unwrap()
        .file
        .clone();
    let read = |f: &str| std::fs::read(models_dir().join(f)).unwrap();
    Classifier::from_parts(m, &img, &tab, &read(&img_file), &read(&tab_file)).unwrap()
}
