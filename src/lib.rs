//! SkinScan: skin-lesion risk classification from a photo and optional patient metadata,
//! one pipeline for the browser (wasm32) and native code (CLI, tests).
//!
//! `Classifier::from_bytes(manifest, image model, tabular model)` once, then
//! `classify(image bytes, metadata)` per photo.

pub mod decode;
pub mod ensemble;
pub mod error;
pub mod evaluate;
pub mod manifest;
mod model;
pub mod pipeline;
pub mod preprocess;
pub mod quality;
pub mod tabular;
#[cfg(target_arch = "wasm32")]
mod wasm;

pub use ensemble::RiskTier;
pub use model::OpTime;
pub use error::{Error, Result};
pub use manifest::Manifest;
pub use pipeline::{Assessment, Classifier, DiagnosisProbs, Heatmap, Timings, Warning};
pub use quality::{QualityReport, Reason, Verdict};
pub use tabular::Metadata;
