//! `models/manifest.json`, the single source of truth written by training: preprocessing, the
//! diagnosis vocabulary, the image and tabular models, calibration, stacker and tiers.
//!
//! Deserialised strictly (`deny_unknown_fields`) so that a renamed key fails loudly instead of
//! silently falling back to a default. `provenance` (for people) is carried opaquely; `quality`
//! (the photo-quality / not-a-lesion gate, issue 6) is typed, with its descriptive statistics
//! (`fitted_on`, percentiles) carried opaquely.

use serde::Deserialize;

use crate::error::{Error, Result};

/// The manifest schema this crate understands.
pub const SCHEMA: u32 = 1;

/// The whole manifest.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub schema: u32,
    pub model_version: String,
    pub preprocess: Preprocess,
    /// Output classes of the image models, in logit order.
    pub diagnoses: Vec<Diagnosis>,
    pub image_models: Vec<ImageModel>,
    /// `id` of the image model the page uses.
    pub default_image_model: String,
    pub tabular: Tabular,
    #[serde(default)]
    pub provenance: Option<serde_json::Value>,
    /// The photo-quality and not-a-lesion gate (issue 6). Optional: a manifest without it gives
    /// results without a verdict (`quality: null`) and a warning saying so.
    #[serde(default)]
    pub quality: Option<Quality>,
}

/// The quality gate's settings, fitted by training (`training/skinscan_train/quality.py`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quality {
    pub params: QualityParams,
    pub thresholds: QualityThresholds,
    /// The out-of-distribution cut; absent = the gate judges the photo only.
    #[serde(default)]
    pub ood: Option<OodGate>,
    /// For people: what the thresholds and the OOD statistics were fitted on.
    #[serde(default)]
    pub fitted_on: Option<serde_json::Value>,
    /// For people: the measures' percentiles on clean training images.
    #[serde(default)]
    pub clean_percentiles: Option<serde_json::Value>,
}

/// How the measures are taken on the canonical `size x size` image.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QualityParams {
    /// Fraction of each side kept as the central window, in (0, 1] (0.8: a dermatoscope's dark
    /// vignette falls outside).
    pub center: f64,
    /// Lesion pixels are darker than `mean - k * std` of the blurred window; k >= 0.
    pub k: f64,
    /// Box-blur radius in pixels before the lesion threshold.
    pub blur_radius: usize,
}

/// Cuts on the measures (see `quality::Measures` for units).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QualityThresholds {
    /// Mean luminance (0..255) below this: too dark.
    pub min_brightness: f64,
    /// Mean luminance above this: overexposed.
    pub max_brightness: f64,
    /// Share of window pixels with luminance >= 250 above this: overexposed.
    pub max_clipped: f64,
    /// Laplacian variance below this: blurry.
    pub min_sharpness: f64,
    /// Lesion share of the window below this: lesion too small.
    pub min_lesion_area: f64,
    /// (skin - lesion) mean luminance / 255 below this: lesion too small (no visible lesion).
    pub min_lesion_contrast: f64,
    /// Lesion centroid farther than this from the centre (in half-sides): not centred.
    pub max_lesion_offset: f64,
}

/// The out-of-distribution cut on an image model's `ood` output.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OodGate {
    /// `id` of the image model whose score these thresholds fit; other models skip the OOD check.
    pub model: String,
    /// The output tensor name (must equal that model's `outputs.ood`).
    pub output: String,
    /// Above this, a well-exposed sharp photo is `not_a_lesion`.
    pub threshold: f64,
    /// Above this, the photo is `not_a_lesion` before exposure and blur are judged.
    pub hard_threshold: f64,
    /// Per retake reason: above this score on the model's `retake_output`, a photo with that
    /// exposure or blur problem is `not_a_lesion` rather than `retake`.
    #[serde(default)]
    pub retake_max: Option<RetakeMax>,
    /// The output holding the per-problem scores (must equal the model's `outputs.ood_retake`).
    #[serde(default)]
    pub retake_output: Option<String>,
    /// Order of `retake_output`'s three scores; only `["too_dark", "overexposed", "blurry"]`.
    #[serde(default)]
    pub retake_order: Option<Vec<String>>,
    /// How the score is computed inside the model (for people; the gate only compares it).
    #[serde(default)]
    pub method: Option<String>,
    /// Principal components kept (`pca_mahalanobis_plus_residual`).
    #[serde(default)]
    pub k: Option<usize>,
    /// Feature dimension (`mahalanobis_pooled_block_stats`).
    #[serde(default)]
    pub dim: Option<usize>,
    #[serde(default)]
    pub validation_percentiles: Option<serde_json::Value>,
    #[serde(default)]
    pub degraded_train_percentiles: Option<serde_json::Value>,
    /// For people: the share of each training source's images above `threshold` (in-sample).
    #[serde(default)]
    pub train_above_threshold_by_source: Option<serde_json::Value>,
    /// For people: the share of each source's photos above `threshold` when that source took no
    /// part in the fit (issue 20), and the cut the reference training fit chose.
    #[serde(default)]
    pub held_out: Option<serde_json::Value>,
    #[serde(default)]
    pub reference_threshold: Option<f64>,
    /// The cut for clinical (phone) photos, on their own score (issue 12). Without it, clinical
    /// photos are judged by `output` and `threshold` like dermoscopic ones.
    #[serde(default)]
    pub clinical: Option<ClinicalOod>,
    /// The non-lesion head's cut, for photos of both types. Without it, only the distances
    /// above turn pictures away.
    #[serde(default)]
    pub non_lesion: Option<NonLesionCut>,
}

/// The gate's non-lesion head: a logit of "not a skin lesion" and the cut above which a photo
/// is `not_a_lesion` whatever else the gate measures.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NonLesionCut {
    /// The output holding the logit (must be the model's `outputs.non_lesion`).
    pub output: String,
    pub threshold: f64,
    /// The output holding the photo's colourfulness (the model's `outputs.colour`) and the
    /// least a well-exposed lesion photo has; below it a photo is black and white.
    #[serde(default)]
    pub colour_output: Option<String>,
    #[serde(default)]
    pub min_colour: Option<f64>,
    #[serde(default)]
    pub validation: Option<serde_json::Value>,
    #[serde(default)]
    pub fitted_on: Option<serde_json::Value>,
    #[serde(default)]
    pub provenance: Option<serde_json::Value>,
}

/// The OOD cut for clinical photos: distance from phone photos rather than from dermoscopy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClinicalOod {
    /// The output holding the score (must be the model's `outputs.ood_clinical`).
    pub output: String,
    /// Above this, a well-exposed sharp clinical photo is `not_a_lesion`.
    pub threshold: f64,
    /// Above this, `not_a_lesion` before exposure and blur are judged (phone photos made too
    /// dark, overexposed or blurry stay below it).
    pub hard_threshold: f64,
    /// The output with the per-problem scores (the model's `outputs.ood_clinical_retake`) and
    /// their limits, as for dermoscopic photos; without them a problem always gets retake advice.
    #[serde(default)]
    pub retake_output: Option<String>,
    #[serde(default)]
    pub retake_max: Option<RetakeMax>,
    #[serde(default)]
    pub validation_percentiles: Option<serde_json::Value>,
    #[serde(default)]
    pub degraded_train_percentiles: Option<serde_json::Value>,
    #[serde(default)]
    pub fitted_on: Option<serde_json::Value>,
    /// For people: the share of each clinical source's photos above `threshold` when that source
    /// took no part in the fit (issue 20).
    #[serde(default)]
    pub held_out: Option<serde_json::Value>,
}

/// OOD limits per photo problem (see [`OodGate::retake_max`]).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetakeMax {
    pub too_dark: f64,
    pub overexposed: f64,
    pub blurry: f64,
}

/// How an image becomes the model input; mirrored by `training/skinscan_train/preprocess.py`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preprocess {
    /// Output side in pixels (square).
    pub size: u32,
    /// Only `"squash"`: the whole image to `size x size`, aspect ratio not kept.
    pub resize: String,
    /// Only `"triangle"`: PIL's antialiased BILINEAR coefficient rule.
    pub filter: String,
    /// Only `"RGB"`.
    pub channel_order: String,
    /// Only `"NCHW"`.
    pub layout: String,
    /// Pixel values are divided by this first (255 -> [0, 1]).
    pub scale: f64,
    /// Per-channel mean subtracted after scaling, in `channel_order`.
    pub mean: Vec<f64>,
    /// Per-channel standard deviation divided by after the mean.
    pub std: Vec<f64>,
    /// RGB colour that transparent pixels are composited onto.
    pub alpha_background: Vec<u8>,
}

/// One output class of the image models.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Diagnosis {
    /// Lowercase code as in the data sets' `dx` column (`nv`, `mel`, …).
    pub code: String,
    pub name: String,
    pub malignant: bool,
}

/// An image model and everything fitted on top of it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageModel {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    /// File name, relative to the manifest's folder.
    pub file: String,
    /// Lowercase hex SHA-256 of the file.
    pub sha256: String,
    pub bytes: u64,
    /// Input tensor name.
    pub input: String,
    /// `[1, 3, size, size]`.
    pub input_shape: Vec<usize>,
    pub outputs: ImageOutputs,
    pub calibration: Calibration,
    pub stacker: Stacker,
    /// Threshold on the malignant probability for a binary call (evaluation only).
    pub decision_threshold: f64,
    pub tiers: TierSets,
    #[serde(default)]
    pub test_roc_auc: Option<f64>,
    /// Test-time augmentation: the diagnosis probabilities are the mean softmax over this many
    /// quarter turns of the input (1 to 4; 1 = the photo as given). Calibration, stacker and
    /// tiers were fitted on those averaged probabilities.
    #[serde(default = "one_turn")]
    pub quarter_turns: usize,
    /// The photo-type detector (issue 12): which head a photo goes to when the user does not say.
    #[serde(default)]
    pub photo_type: Option<PhotoTypeHead>,
    /// The head for ordinary phone photos, with its own calibration, stacker and tiers. Without
    /// it every photo goes through the fields above (the dermoscopic head).
    #[serde(default)]
    pub clinical: Option<ClinicalHead>,
    /// For people: the dermoscopic head's validation figures (the low-tier promise per source).
    #[serde(default)]
    pub validation: Option<serde_json::Value>,
    /// How the file stores its weights (issue 15); absent = float32 throughout.
    #[serde(default)]
    pub weights: Option<WeightStorage>,
}

fn one_turn() -> usize {
    1
}

/// How an image model's file stores its weights. Either way the network computes in float32:
/// compact kernels are expanded by constant nodes in the graph, which tract folds at load.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightStorage {
    pub format: WeightFormat,
    /// Kernels stored compactly, and how.
    pub kernels: usize,
    #[serde(default)]
    pub int8_kernels: Option<usize>,
    /// Kernels kept finer than int8: float16 (`int8-per-channel+float16`) or split 11-bit
    /// fixed point (`int8-per-channel+int11-split`).
    #[serde(default)]
    pub float16_kernels: Option<usize>,
    #[serde(default)]
    pub int11_kernels: Option<usize>,
    /// Mahalanobis factors (the OOD and retake Gaussians') stored as float16.
    #[serde(default)]
    pub float16_factors: Option<usize>,
    #[serde(default)]
    pub newly_quantized: Option<usize>,
    #[serde(default)]
    pub max_abs_int8_weight_error: Option<f64>,
    /// For people: how the float16 kernels were chosen, and the logit change it bought.
    #[serde(default)]
    pub float16_budget: Option<u64>,
    #[serde(default)]
    pub float16_weights: Option<u64>,
    #[serde(default)]
    pub int11_budget: Option<u64>,
    #[serde(default)]
    pub int11_weights: Option<u64>,
    #[serde(default)]
    pub chosen_on: Option<String>,
    #[serde(default)]
    pub mean_abs_logit_change_all_int8: Option<f64>,
    #[serde(default)]
    pub mean_abs_logit_change_chosen: Option<f64>,
    /// Size of the float32 file it was made from.
    #[serde(default)]
    pub float32_bytes: Option<u64>,
    /// For people: how far the compact graph's outputs are from the float32 graph's.
    #[serde(default)]
    pub max_abs_diff_vs_float32: Option<serde_json::Value>,
    /// For people: how far storing the Mahalanobis factors as float16 alone moved the OOD scores.
    #[serde(default)]
    pub factors_max_relative_ood_change: Option<serde_json::Value>,
    #[serde(default)]
    pub checked_on: Option<String>,
}

/// The storage formats the training scripts write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum WeightFormat {
    /// Every weight float32.
    #[serde(rename = "float32")]
    Float32,
    /// Convolution kernels as int8 with one float32 scale per output channel, except those
    /// int8 would move most, kept as float16 (`training/skinscan_train/compact.py`).
    #[serde(rename = "int8-per-channel+float16")]
    Int8PerChannelFloat16,
    /// The same, with the finer kernels in 11-bit fixed point (one scale per output channel),
    /// split into an int8 plane of high bits and a uint8 plane of the 3 low bits (issue 15).
    #[serde(rename = "int8-per-channel+int11-split")]
    Int8PerChannelInt11Split,
}

/// The kind of photo, which picks the head, calibration, stacker, tiers and OOD cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PhotoKind {
    /// Taken through a dermatoscope (HAM10000, ISIC).
    Dermoscopic,
    /// An ordinary (phone) close-up, without a dermatoscope.
    Clinical,
}

impl PhotoKind {
    pub const ALL: [PhotoKind; 2] = [PhotoKind::Dermoscopic, PhotoKind::Clinical];

    pub fn as_str(self) -> &'static str {
        match self {
            PhotoKind::Dermoscopic => "dermoscopic",
            PhotoKind::Clinical => "clinical",
        }
    }

    /// `dermoscopic` or `clinical`, trimmed, any case.
    pub fn parse(s: &str) -> Option<PhotoKind> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

/// `[1, 1]` logit of "clinical" on the embedding, averaged over the quarter turns.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhotoTypeHead {
    pub output: String,
    /// A photo is `clinical` when sigmoid(mean logit) is at least this.
    pub clinical_from: f64,
    /// For people: accuracy out of fold per kind, and the photos it was fitted on.
    #[serde(default)]
    pub validation: Option<serde_json::Value>,
    #[serde(default)]
    pub fitted_on: Option<serde_json::Value>,
}

/// How a head's per-turn logits become one set of probabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TurnAverage {
    /// Mean of the per-turn softmax (the fine-tuned network's own classifier).
    Softmax,
    /// Softmax of the mean logits (a linear head fitted on the turn-averaged embedding).
    Logits,
}

/// The phone-photo head: its outputs and everything fitted on top of it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClinicalHead {
    /// `[1, n_diagnoses]` logits.
    pub logits: String,
    /// `[1, n_diagnoses, h, w]` class activation maps.
    pub cam: String,
    pub turn_average: TurnAverage,
    pub calibration: Calibration,
    pub stacker: Stacker,
    pub decision_threshold: f64,
    pub tiers: TierSets,
    #[serde(default)]
    pub validation: Option<serde_json::Value>,
    /// For people: malignant ROC-AUC on PAD-UFES-20 `test` photos, photo only.
    #[serde(default)]
    pub test_roc_auc: Option<f64>,
}

/// One head's numbers, whichever block of the manifest they come from.
#[derive(Debug, Clone, Copy)]
pub struct Head<'a> {
    pub kind: PhotoKind,
    pub calibration: &'a Calibration,
    pub stacker: &'a Stacker,
    pub decision_threshold: f64,
    pub tiers: &'a TierSets,
    pub turn_average: TurnAverage,
}

impl ImageModel {
    /// The head for photos of `kind`: the clinical block for clinical photos when the model has
    /// one, else the dermoscopic fields (a model without a clinical head uses them for both).
    pub fn head(&self, kind: PhotoKind) -> Head<'_> {
        match (kind, &self.clinical) {
            (PhotoKind::Clinical, Some(c)) => Head {
                kind,
                calibration: &c.calibration,
                stacker: &c.stacker,
                decision_threshold: c.decision_threshold,
                tiers: &c.tiers,
                turn_average: c.turn_average,
            },
            _ => Head {
                kind: PhotoKind::Dermoscopic,
                calibration: &self.calibration,
                stacker: &self.stacker,
                decision_threshold: self.decision_threshold,
                tiers: &self.tiers,
                turn_average: TurnAverage::Softmax,
            },
        }
    }
}

/// Output tensor names of an image model.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageOutputs {
    /// `[1, n_diagnoses]` raw logits.
    pub logits: String,
    /// `[1, D]` pooled features.
    pub embedding: String,
    /// `[1, n_diagnoses, h, w]` class activation maps.
    pub cam: String,
    /// `[1]` out-of-distribution score of the embedding (issue 6), when the model has one.
    #[serde(default)]
    pub ood: Option<String>,
    /// `[1, 3]` the same statistics scored against training photos degraded as too dark,
    /// overexposed and blurry (in that order), when the model has them.
    #[serde(default)]
    pub ood_retake: Option<String>,
    /// `[1]` the statistics' distance from phone photos (issue 12), when the model has it.
    #[serde(default)]
    pub ood_clinical: Option<String>,
    /// `[1, 3]` the same against phone photos degraded as too dark, overexposed, blurry.
    #[serde(default)]
    pub ood_clinical_retake: Option<String>,
    /// `[1, 1]` logit of "not a skin lesion" (the gate's non-lesion head), when the model has it.
    #[serde(default)]
    pub non_lesion: Option<String>,
    /// `[1, 1]` the input's colourfulness (0 for a black-and-white photo), when the model has it.
    #[serde(default)]
    pub colour: Option<String>,
}

/// Platt scaling of the image model's malignant logit: `sigmoid(a * z + b)`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    pub method: String,
    pub a: f64,
    pub b: f64,
}

/// Logistic stacker: `sigmoid(intercept + image_coef * z_img + tabular_coef * z_tab)`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stacker {
    pub intercept: f64,
    pub image_coef: f64,
    pub tabular_coef: f64,
}

/// Tier thresholds for the two paths.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierSets {
    pub image_only: Tiers,
    pub with_metadata: Tiers,
}

/// `low` if p < `low_below`, `high` if p >= `high_from`, else `moderate`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tiers {
    pub low_below: f64,
    pub high_from: f64,
}

/// The tabular (metadata) side.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tabular {
    /// In column order.
    pub features: Vec<Feature>,
    /// Total number of columns.
    pub width: usize,
    pub models: Vec<TabularModel>,
    /// `id` of the tabular model to use.
    pub default: String,
}

/// One metadata field and how it is encoded.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Feature {
    pub name: String,
    pub kind: FeatureKind,
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
    #[serde(default)]
    pub values: Option<Vec<String>>,
}

/// Encodings: one column with the number, one column with the index into `values`, one
/// column per value, or one column with 1 for yes and 0 for no.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureKind {
    Numeric,
    Index,
    OneHot,
    Boolean,
}

impl Feature {
    /// Number of columns this feature occupies.
    pub fn columns(&self) -> usize {
        match self.kind {
            FeatureKind::Numeric | FeatureKind::Index | FeatureKind::Boolean => 1,
            FeatureKind::OneHot => self.values.as_ref().map_or(0, Vec::len),
        }
    }
}

/// A tabular model file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TabularModel {
    pub id: String,
    pub file: String,
    pub sha256: String,
    pub bytes: u64,
    pub input: String,
    /// Output tensor `[1, 2]` of class probabilities.
    pub output: String,
    /// Column of `output` that is P(malignant).
    pub positive_index: usize,
    #[serde(default)]
    pub val_roc_auc: Option<f64>,
    /// For people: out-of-fold ROC-AUC on PAD-UFES-20 training photos' answers (issue 12).
    #[serde(default)]
    pub pad_train_oof_roc_auc: Option<f64>,
}

impl Manifest {
    /// Parse and validate.
    pub fn from_json(bytes: &[u8]) -> Result<Manifest> {
        // Check the schema before the strict parse, so that a future schema says so plainly
        // rather than failing on its first new key.
        let raw: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| Error::manifest(format!("not valid JSON: {e}")))?;
        match raw.get("schema").and_then(serde_json::Value::as_u64) {
            Some(s) if s == u64::from(SCHEMA) => {}
            Some(s) => {
                return Err(Error::manifest(format!(
                    "schema {s} is not supported (expected {SCHEMA})"
                )))
            }
            None => return Err(Error::manifest("missing integer `schema`")),
        }
        let m: Manifest =
            serde_json::from_value(raw).map_err(|e| Error::manifest(e.to_string()))?;
        m.validate()?;
        Ok(m)
    }

    /// Internal consistency: supported preprocessing, vocabularies, shapes, ordered tiers.
    /// Each block has its own check; [`Manifest::from_json`] runs them all once, and so does
    /// `Classifier::from_parts` for a manifest a caller built or changed itself.
    pub fn validate(&self) -> Result<()> {
        if self.schema != SCHEMA {
            return Err(Error::manifest(format!(
                "schema {} is not supported (expected {SCHEMA})",
                self.schema
            )));
        }
        self.validate_preprocess()?;
        self.validate_diagnoses()?;
        self.validate_image_models()?;
        self.validate_tabular()?;
        if let Some(q) = &self.quality {
            self.validate_quality(q, self.preprocess.size as usize)?;
        }
        Ok(())
    }

    fn validate_preprocess(&self) -> Result<()> {
        let bad = |s: String| Err(Error::manifest(s));
        let p = &self.preprocess;
        if p.resize != "squash" {
            return bad(format!(
                "preprocess.resize `{}` is not supported (only `squash`)",
                p.resize
            ));
        }
        if p.filter != "triangle" {
            return bad(format!(
                "preprocess.filter `{}` is not supported (only `triangle`)",
                p.filter
            ));
        }
        if p.channel_order != "RGB" {
            return bad(format!(
                "preprocess.channel_order `{}` is not supported (only `RGB`)",
                p.channel_order
            ));
        }
        if p.layout != "NCHW" {
            return bad(format!(
                "preprocess.layout `{}` is not supported (only `NCHW`)",
                p.layout
            ));
        }
        if p.size == 0 || p.size > 4096 {
            return bad(format!("preprocess.size {} is out of range", p.size));
        }
        if !(p.scale.is_finite() && p.scale > 0.0) {
            return bad(format!(
                "preprocess.scale {} must be a positive number",
                p.scale
            ));
        }
        if p.mean.len() != 3 || p.std.len() != 3 || p.alpha_background.len() != 3 {
            return bad("preprocess.mean, std and alpha_background need 3 values each".into());
        }
        if p.mean.iter().any(|m| !m.is_finite())
            || p.std.iter().any(|s| !(s.is_finite() && *s > 0.0))
        {
            return bad("preprocess.mean must be finite and std positive".into());
        }
        Ok(())
    }

    fn validate_diagnoses(&self) -> Result<()> {
        let bad = |s: String| Err(Error::manifest(s));
        if self.diagnoses.len() < 2 {
            return bad("need at least 2 diagnoses".into());
        }
        if !self.diagnoses.iter().any(|d| d.malignant) {
            return bad("no diagnosis is marked malignant".into());
        }
        if !self.diagnoses.iter().any(|d| !d.malignant) {
            return bad("every diagnosis is marked malignant".into());
        }
        unique(
            self.diagnoses.iter().map(|d| d.code.as_str()),
            "diagnoses code",
        )
    }

    fn validate_image_models(&self) -> Result<()> {
        let bad = |s: String| Err(Error::manifest(s));
        if self.image_models.is_empty() {
            return bad("no image_models".into());
        }
        unique(
            self.image_models.iter().map(|m| m.id.as_str()),
            "image_models id",
        )?;
        let side = self.preprocess.size as usize;
        for m in &self.image_models {
            let ctx = format!("image model `{}`", m.id);
            if m.input_shape != [1, 3, side, side] {
                return bad(format!(
                    "{ctx}: input_shape {:?} does not match preprocess (expected [1, 3, {side}, {side}])",
                    m.input_shape
                ));
            }
            check_sha(&m.sha256, &ctx)?;
            if !(1..=4).contains(&m.quarter_turns) {
                return bad(format!(
                    "{ctx}: quarter_turns {} is not 1 to 4",
                    m.quarter_turns
                ));
            }
            validate_head(&ctx, m.head(PhotoKind::Dermoscopic))?;
            self.validate_photo_types(m, &ctx)?;
        }
        if self.image_model(&self.default_image_model).is_none() {
            return bad(format!(
                "default_image_model `{}` is not among image_models",
                self.default_image_model
            ));
        }
        Ok(())
    }

    fn validate_tabular(&self) -> Result<()> {
        let bad = |s: String| Err(Error::manifest(s));
        let t = &self.tabular;
        unique(
            t.features.iter().map(|f| f.name.as_str()),
            "tabular feature name",
        )?;
        for f in &t.features {
            let ctx = format!("tabular feature `{}`", f.name);
            match f.kind {
                FeatureKind::Numeric => {
                    let (lo, hi) = (
                        f.min.unwrap_or(f64::NEG_INFINITY),
                        f.max.unwrap_or(f64::INFINITY),
                    );
                    if lo.is_nan() || hi.is_nan() || lo > hi {
                        return bad(format!("{ctx}: min must not exceed max"));
                    }
                }
                FeatureKind::Boolean if f.values.is_some() => {
                    return bad(format!("{ctx}: a boolean feature has no `values`"))
                }
                FeatureKind::Boolean => {}
                FeatureKind::Index | FeatureKind::OneHot => match &f.values {
                    Some(v) if !v.is_empty() => {
                        unique(v.iter().map(String::as_str), &format!("{ctx} value"))?
                    }
                    _ => return bad(format!("{ctx}: needs a non-empty `values` list")),
                },
            }
        }
        let width: usize = t.features.iter().map(Feature::columns).sum();
        if width != t.width {
            return bad(format!(
                "tabular.width is {} but the features take {width} columns",
                t.width
            ));
        }
        if t.models.is_empty() {
            return bad("no tabular models".into());
        }
        unique(t.models.iter().map(|m| m.id.as_str()), "tabular model id")?;
        for m in &t.models {
            check_sha(&m.sha256, &format!("tabular model `{}`", m.id))?;
            if m.positive_index > 1 {
                return bad(format!(
                    "tabular model `{}`: positive_index {} is not 0 or 1",
                    m.id, m.positive_index
                ));
            }
        }
        if self.tabular_model(&t.default).is_none() {
            return bad(format!(
                "tabular.default `{}` is not among tabular.models",
                t.default
            ));
        }
        Ok(())
    }

    fn validate_quality(&self, q: &Quality, side: usize) -> Result<()> {
        let bad = |s: String| Err(Error::manifest(s));
        let p = &q.params;
        if !(p.center > 0.0 && p.center <= 1.0) {
            return bad(format!(
                "quality.params.center {} is not in (0, 1]",
                p.center
            ));
        }
        if !(p.k.is_finite() && p.k >= 0.0) {
            return bad(format!(
                "quality.params.k {} must be a non-negative number",
                p.k
            ));
        }
        if p.blur_radius >= side {
            return bad(format!(
                "quality.params.blur_radius {} must be below the image side {side}",
                p.blur_radius
            ));
        }
        let t = &q.thresholds;
        let named = [
            ("min_brightness", t.min_brightness),
            ("max_brightness", t.max_brightness),
            ("max_clipped", t.max_clipped),
            ("min_sharpness", t.min_sharpness),
            ("min_lesion_area", t.min_lesion_area),
            ("min_lesion_contrast", t.min_lesion_contrast),
            ("max_lesion_offset", t.max_lesion_offset),
        ];
        if let Some((name, v)) = named.iter().find(|(_, v)| !v.is_finite()) {
            return bad(format!("quality.thresholds.{name} {v} must be finite"));
        }
        if t.min_brightness > t.max_brightness {
            return bad("quality.thresholds: min_brightness exceeds max_brightness".into());
        }
        match &q.ood {
            Some(o) => self.validate_ood(o),
            None => Ok(()),
        }
    }

    /// The OOD gate names an image model and outputs that model has.
    fn validate_ood(&self, o: &OodGate) -> Result<()> {
        let bad = |s: String| Err(Error::manifest(s));
        if !(o.threshold.is_finite() && o.hard_threshold.is_finite()) {
            return bad("quality.ood thresholds must be finite".into());
        }
        let Some(m) = self.image_model(&o.model) else {
            return bad(format!(
                "quality.ood.model `{}` is not among image_models",
                o.model
            ));
        };
        if let Some(r) = o.retake_max {
            if ![r.too_dark, r.overexposed, r.blurry]
                .iter()
                .all(|v| v.is_finite())
            {
                return bad("quality.ood.retake_max values must be finite".into());
            }
            if o.retake_output.is_none() || o.retake_output != m.outputs.ood_retake {
                return bad(format!(
                        "quality.ood.retake_output {:?} is not image model `{}`'s outputs.ood_retake ({:?})",
                        o.retake_output, o.model, m.outputs.ood_retake
                    ));
            }
        }
        if let Some(order) = &o.retake_order {
            if order
                .iter()
                .map(String::as_str)
                .ne(["too_dark", "overexposed", "blurry"])
            {
                return bad(format!(
                    "quality.ood.retake_order {order:?} must be [too_dark, overexposed, blurry]"
                ));
            }
        }
        if m.outputs.ood.as_deref() != Some(o.output.as_str()) {
            return bad(format!(
                "quality.ood.output `{}` is not image model `{}`'s outputs.ood ({:?})",
                o.output, o.model, m.outputs.ood
            ));
        }
        if let Some(c) = &o.clinical {
            Self::validate_clinical_ood(o, m, c)?;
        }
        if let Some(n) = &o.non_lesion {
            Self::validate_non_lesion(o, m, n)?;
        }
        Ok(())
    }

    /// The clinical cuts name the model's clinical OOD outputs.
    fn validate_clinical_ood(o: &OodGate, m: &ImageModel, c: &ClinicalOod) -> Result<()> {
        let bad = |s: String| Err(Error::manifest(s));
        if !(c.threshold.is_finite() && c.hard_threshold.is_finite()) {
            return bad("quality.ood.clinical thresholds must be finite".into());
        }
        if c.retake_max.is_some()
            && (c.retake_output.is_none() || c.retake_output != m.outputs.ood_clinical_retake)
        {
            return bad(format!(
                "quality.ood.clinical.retake_output {:?} is not image model `{}`'s outputs.ood_clinical_retake ({:?})",
                c.retake_output, o.model, m.outputs.ood_clinical_retake
            ));
        }
        if m.outputs.ood_clinical.as_deref() != Some(c.output.as_str()) {
            return bad(format!(
                "quality.ood.clinical.output `{}` is not image model `{}`'s outputs.ood_clinical ({:?})",
                c.output, o.model, m.outputs.ood_clinical
            ));
        }
        Ok(())
    }

    /// The non-lesion cut names the model's non-lesion logit, and its colour cut (both or
    /// neither of `colour_output` and `min_colour`) the model's colourfulness.
    fn validate_non_lesion(o: &OodGate, m: &ImageModel, n: &NonLesionCut) -> Result<()> {
        let bad = |s: String| Err(Error::manifest(s));
        if !n.threshold.is_finite() {
            return bad("quality.ood.non_lesion.threshold must be finite".into());
        }
        if n.min_colour.is_some_and(|c| !c.is_finite())
            || n.min_colour.is_some() != n.colour_output.is_some()
            || (n.colour_output.is_some() && n.colour_output != m.outputs.colour)
        {
            return bad(format!(
                "quality.ood.non_lesion.colour_output {:?} / min_colour {:?} do not match image model `{}`'s outputs.colour ({:?})",
                n.colour_output, n.min_colour, o.model, m.outputs.colour
            ));
        }
        if m.outputs.non_lesion.as_deref() != Some(n.output.as_str()) {
            return bad(format!(
                "quality.ood.non_lesion.output `{}` is not image model `{}`'s outputs.non_lesion ({:?})",
                n.output, o.model, m.outputs.non_lesion
            ));
        }
        Ok(())
    }

    /// A clinical head needs a photo-type detector, and both name outputs of their own.
    fn validate_photo_types(&self, m: &ImageModel, ctx: &str) -> Result<()> {
        let bad = |s: String| Err(Error::manifest(s));
        if let Some(pt) = &m.photo_type {
            if !(pt.clinical_from > 0.0 && pt.clinical_from < 1.0) {
                return bad(format!(
                    "{ctx}: photo_type.clinical_from {} is not in (0, 1)",
                    pt.clinical_from
                ));
            }
            if pt.output.is_empty() {
                return bad(format!("{ctx}: photo_type.output is empty"));
            }
        }
        if let Some(c) = &m.clinical {
            if m.photo_type.is_none() {
                return bad(format!(
                    "{ctx}: a clinical head needs a photo_type detector"
                ));
            }
            let names = [&c.logits, &c.cam, &m.outputs.logits, &m.outputs.cam];
            unique(
                names.iter().map(|s| s.as_str()),
                &format!("{ctx} head output"),
            )?;
            validate_head(&format!("{ctx} clinical head"), m.head(PhotoKind::Clinical))?;
        }
        Ok(())
    }

    /// The image model `image_id` and the tabular model `tabular_id` a classifier is built from,
    /// each `None` for the manifest's default (`default_image_model`, `tabular.default`): the one
    /// place the defaults are looked up. An id the manifest does not list is an input error that
    /// names the ids it does.
    pub fn resolve(
        &self,
        image_id: Option<&str>,
        tabular_id: Option<&str>,
    ) -> Result<(&ImageModel, &TabularModel)> {
        let image_id = image_id.unwrap_or(&self.default_image_model);
        let tabular_id = tabular_id.unwrap_or(&self.tabular.default);
        let not_one_of = |field: &str, id: &str, ids: Vec<&str>| {
            Error::input(field, format!("`{id}` is not one of: {}", ids.join(", ")))
        };
        let image = self.image_model(image_id).ok_or_else(|| {
            let ids = self.image_models.iter().map(|m| m.id.as_str()).collect();
            not_one_of("model", image_id, ids)
        })?;
        let tabular = self.tabular_model(tabular_id).ok_or_else(|| {
            let ids = self.tabular.models.iter().map(|m| m.id.as_str()).collect();
            not_one_of("tabular model", tabular_id, ids)
        })?;
        Ok((image, tabular))
    }

    /// The image model with this `id`.
    pub fn image_model(&self, id: &str) -> Option<&ImageModel> {
        self.image_models.iter().find(|m| m.id == id)
    }

    /// The tabular model with this `id`.
    pub fn tabular_model(&self, id: &str) -> Option<&TabularModel> {
        self.tabular.models.iter().find(|m| m.id == id)
    }

    /// Indices of the malignant diagnoses, in manifest order.
    pub fn malignant_indices(&self) -> Vec<usize> {
        self.diagnoses
            .iter()
            .enumerate()
            .filter(|(_, d)| d.malignant)
            .map(|(i, _)| i)
            .collect()
    }
}

/// Calibration, stacker, decision threshold and ordered tiers of one head.
fn validate_head(ctx: &str, h: Head<'_>) -> Result<()> {
    let bad = |s: String| Err(Error::manifest(s));
    if h.calibration.method != "platt" {
        return bad(format!(
            "{ctx}: calibration.method `{}` is not supported (only `platt`)",
            h.calibration.method
        ));
    }
    let nums = [
        h.calibration.a,
        h.calibration.b,
        h.stacker.intercept,
        h.stacker.image_coef,
        h.stacker.tabular_coef,
    ];
    if nums.iter().any(|v| !v.is_finite()) {
        return bad(format!(
            "{ctx}: calibration and stacker coefficients must be finite"
        ));
    }
    if !(0.0..=1.0).contains(&h.decision_threshold) {
        return bad(format!(
            "{ctx}: decision_threshold {} is not in [0, 1]",
            h.decision_threshold
        ));
    }
    for (name, t) in [
        ("image_only", h.tiers.image_only),
        ("with_metadata", h.tiers.with_metadata),
    ] {
        if !(t.low_below.is_finite() && t.high_from.is_finite()) {
            return bad(format!("{ctx}: tiers.{name} thresholds must be finite"));
        }
        if !(0.0 <= t.low_below && t.low_below <= t.high_from && t.high_from <= 1.0) {
            return bad(format!(
                "{ctx}: tiers.{name} must satisfy 0 <= low_below ({}) <= high_from ({}) <= 1",
                t.low_below, t.high_from
            ));
        }
    }
    Ok(())
}

fn unique<'a>(items: impl Iterator<Item = &'a str>, what: &str) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for s in items {
        if s.is_empty() {
            return Err(Error::manifest(format!("empty {what}")));
        }
        if !seen.insert(s) {
            return Err(Error::manifest(format!("duplicate {what} `{s}`")));
        }
    }
    Ok(())
}

fn check_sha(sha: &str, ctx: &str) -> Result<()> {
    if sha.len() == 64
        && sha
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(Error::manifest(format!(
            "{ctx}: sha256 must be 64 lowercase hex digits"
        )))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small valid manifest, independent of the shipped one (whose numbers change with training).
    pub(crate) fn sample_json() -> serde_json::Value {
        serde_json::json!({
            "schema": 1,
            "model_version": "test-1",
            "preprocess": {"size": 4, "resize": "squash", "filter": "triangle", "channel_order": "RGB",
                           "layout": "NCHW", "scale": 255.0, "mean": [0.5, 0.25, 0.0], "std": [0.5, 0.25, 1.0],
                           "alpha_background": [255, 255, 255]},
            "diagnoses": [{"code": "nv", "name": "Nevus", "malignant": false},
                          {"code": "mel", "name": "Melanoma", "malignant": true},
                          {"code": "bcc", "name": "BCC", "malignant": true}],
            "image_models": [{
                "id": "m", "file": "m.onnx", "sha256": "0".repeat(64), "bytes": 1, "input": "input0",
                "input_shape": [1, 3, 4, 4], "outputs": {"logits": "logits", "embedding": "embedding", "cam": "cam"},
                "calibration": {"method": "platt", "a": 2.0, "b": -0.5},
                "stacker": {"intercept": 0.1, "image_coef": 1.5, "tabular_coef": 0.5},
                "decision_threshold": 0.5,
                "tiers": {"image_only": {"low_below": 0.2, "high_from": 0.6},
                          "with_metadata": {"low_below": 0.1, "high_from": 0.7}}}],
            "default_image_model": "m",
            "tabular": {"features": [{"name": "age", "kind": "numeric", "min": 0, "max": 120},
                                     {"name": "sex", "kind": "index", "values": ["female", "male"]},
                                     {"name": "site", "kind": "one_hot", "values": ["head/neck", "torso", "palms/soles"]}],
                        "width": 5,
                        "models": [{"id": "t", "file": "t.onnx", "sha256": "1".repeat(64), "bytes": 1,
                                    "input": "input", "output": "probabilities", "positive_index": 1}],
                        "default": "t"}
        })
    }

    pub(crate) fn sample() -> Manifest {
        Manifest::from_json(sample_json().to_string().as_bytes()).unwrap()
    }

    fn err_of(v: serde_json::Value) -> String {
        match Manifest::from_json(v.to_string().as_bytes()) {
            Err(Error::Manifest(m)) => m,
            other => panic!("expected a manifest error, got {other:?}"),
        }
    }

    /// A quality block shaped as training writes it (numbers are arbitrary).
    pub(crate) fn quality_json() -> serde_json::Value {
        serde_json::json!({
            "params": {"center": 0.8, "k": 1.0, "blur_radius": 2},
            "thresholds": {"min_brightness": 60.0, "max_brightness": 220.0, "max_clipped": 0.3,
                           "min_sharpness": 2.0, "min_lesion_area": 0.03, "min_lesion_contrast": 0.03,
                           "max_lesion_offset": 0.7},
            "ood": {"model": "m", "output": "ood", "threshold": 1.0, "hard_threshold": 1.4,
                    "method": "pca_mahalanobis_plus_residual", "k": 64,
                    "validation_percentiles": {"99": 1.0}, "degraded_train_percentiles": {"99": 1.4}},
            "fitted_on": {"thresholds": "…"},
            "clean_percentiles": {"sharpness": {"50": 30.0}}
        })
    }

    pub(crate) fn sample_with_quality_json() -> serde_json::Value {
        let mut v = sample_json();
        v["quality"] = quality_json();
        v["image_models"][0]["outputs"]["ood"] = "ood".into();
        v
    }

    #[test]
    fn sample_is_valid_and_quality_block_is_typed() {
        let m = sample();
        assert_eq!(m.malignant_indices(), vec![1, 2]);
        assert!(m.quality.is_none());
        let m = Manifest::from_json(sample_with_quality_json().to_string().as_bytes()).unwrap();
        let q = m.quality.as_ref().unwrap();
        assert_eq!(q.params.blur_radius, 2);
        assert_eq!(q.thresholds.max_lesion_offset, 0.7);
        assert_eq!(q.ood.as_ref().unwrap().model, "m");
        assert_eq!(m.image_models[0].outputs.ood.as_deref(), Some("ood"));
        // Without an OOD part the gate still works on the photo alone.
        let mut v = sample_with_quality_json();
        v["quality"].as_object_mut().unwrap().remove("ood");
        assert!(Manifest::from_json(v.to_string().as_bytes())
            .unwrap()
            .quality
            .unwrap()
            .ood
            .is_none());
    }

    #[test]
    fn weight_storage_is_typed() {
        let mut v = sample_json();
        v["image_models"][0]["weights"] = serde_json::json!({"format": "int8-per-channel+float16", "kernels": 45, "float32_bytes": 15183373});
        let m = Manifest::from_json(v.to_string().as_bytes()).unwrap();
        let w = m.image_models[0].weights.as_ref().unwrap();
        assert_eq!(
            (w.format, w.kernels),
            (WeightFormat::Int8PerChannelFloat16, 45)
        );
        assert!(sample().image_models[0].weights.is_none());
        v["image_models"][0]["weights"]["format"] = "int4".into();
        assert!(Manifest::from_json(v.to_string().as_bytes()).is_err());
    }

    #[test]
    fn rejects_inconsistent_quality() {
        let mut v = sample_with_quality_json();
        v["quality"]["thresholds"]
            .as_object_mut()
            .unwrap()
            .remove("min_sharpness");
        assert!(err_of(v).contains("min_sharpness"));
        let mut v = sample_with_quality_json();
        v["quality"]["thresholds"]["max_blur"] = 1.0.into();
        assert!(err_of(v).contains("max_blur"));
        let mut v = sample_with_quality_json();
        v["quality"]["params"]["center"] = 1.5.into();
        assert!(err_of(v).contains("center"));
        let mut v = sample_with_quality_json();
        v["quality"]["ood"]["model"] = "other".into();
        assert!(err_of(v).contains("quality.ood.model"));
        let mut v = sample_with_quality_json();
        v["image_models"][0]["outputs"]
            .as_object_mut()
            .unwrap()
            .remove("ood");
        assert!(err_of(v).contains("quality.ood.output"));
        let mut v = sample_with_quality_json();
        v["quality"]["thresholds"]["min_brightness"] = 230.0.into();
        assert!(err_of(v).contains("min_brightness"));
    }

    #[test]
    fn retake_limits_need_the_models_per_problem_output() {
        let with_retake = || {
            let mut v = sample_with_quality_json();
            v["image_models"][0]["outputs"]["ood_retake"] = "ood_retake".into();
            v["quality"]["ood"]["retake_output"] = "ood_retake".into();
            v["quality"]["ood"]["retake_order"] =
                serde_json::json!(["too_dark", "overexposed", "blurry"]);
            v["quality"]["ood"]["retake_max"] =
                serde_json::json!({"too_dark": 3.0, "overexposed": 4.0, "blurry": 2.0});
            v
        };
        let m = Manifest::from_json(with_retake().to_string().as_bytes()).unwrap();
        let o = m.quality.unwrap().ood.unwrap();
        assert_eq!(o.retake_max.unwrap().blurry, 2.0);
        let mut v = with_retake();
        v["image_models"][0]["outputs"]
            .as_object_mut()
            .unwrap()
            .remove("ood_retake");
        assert!(err_of(v).contains("retake_output"));
        let mut v = with_retake();
        v["quality"]["ood"]["retake_order"] =
            serde_json::json!(["blurry", "too_dark", "overexposed"]);
        assert!(err_of(v).contains("retake_order"));
        let mut v = with_retake();
        v["quality"]["ood"]["retake_max"]
            .as_object_mut()
            .unwrap()
            .remove("blurry");
        assert!(err_of(v).contains("blurry"));
    }

    #[test]
    fn shipped_manifest_is_valid() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/models/manifest.json");
        let m = Manifest::from_json(&std::fs::read(path).unwrap()).unwrap();
        assert!(m.resolve(None, None).is_ok());
    }

    #[test]
    fn resolve_names_the_ids_it_has() {
        let m = sample();
        let (im, tm) = m.resolve(None, None).unwrap();
        assert_eq!((im.id.as_str(), tm.id.as_str()), ("m", "t"));
        let e = m.resolve(Some("nope"), None).unwrap_err().to_string();
        assert_eq!(e, "invalid field `model`: `nope` is not one of: m");
        let e = m.resolve(None, Some("gone")).unwrap_err().to_string();
        assert_eq!(e, "invalid field `tabular model`: `gone` is not one of: t");
    }

    #[test]
    fn rejects_other_schema_and_bad_json() {
        let mut v = sample_json();
        v["schema"] = 2.into();
        assert!(err_of(v).contains("schema 2"));
        assert!(matches!(Manifest::from_json(b"{"), Err(Error::Manifest(_))));
        assert!(matches!(Manifest::from_json(b""), Err(Error::Manifest(_))));
    }

    #[test]
    fn rejects_unknown_keys() {
        let mut v = sample_json();
        v["preprocess"]["crop_pct"] = 0.875.into();
        assert!(err_of(v).contains("crop_pct"));
    }

    #[test]
    fn rejects_unsupported_preprocessing() {
        for (key, val) in [
            ("resize", "crop"),
            ("filter", "bicubic"),
            ("channel_order", "BGR"),
            ("layout", "NHWC"),
        ] {
            let mut v = sample_json();
            v["preprocess"][key] = val.into();
            let e = err_of(v);
            assert!(e.contains(key) && e.contains(val), "{e}");
        }
        let mut v = sample_json();
        v["preprocess"]["std"] = serde_json::json!([0.5, 0.0, 1.0]);
        assert!(err_of(v).contains("std"));
        let mut v = sample_json();
        v["preprocess"]["mean"] = serde_json::json!([0.5, 0.5]);
        assert!(err_of(v).contains("mean"));
    }

    #[test]
    fn rejects_inconsistent_models() {
        let mut v = sample_json();
        v["image_models"][0]["input_shape"] = serde_json::json!([1, 3, 224, 224]);
        assert!(err_of(v).contains("input_shape"));
        let mut v = sample_json();
        v["image_models"][0]["quarter_turns"] = 5.into();
        assert!(err_of(v).contains("quarter_turns"));
        let mut v = sample_json();
        v["image_models"][0]["quarter_turns"] = 0.into();
        assert!(err_of(v).contains("quarter_turns"));
        let mut v = sample_json();
        v["image_models"][0]["tiers"]["image_only"] =
            serde_json::json!({"low_below": 0.7, "high_from": 0.6});
        assert!(err_of(v).contains("tiers.image_only"));
        let mut v = sample_json();
        v["image_models"][0]["tiers"]["with_metadata"]["high_from"] = 1.5.into();
        assert!(err_of(v).contains("tiers.with_metadata"));
        let mut v = sample_json();
        v["default_image_model"] = "nope".into();
        assert!(err_of(v).contains("nope"));
        let mut v = sample_json();
        v["image_models"][0]["sha256"] = "xyz".into();
        assert!(err_of(v).contains("sha256"));
        let mut v = sample_json();
        v["image_models"][0]["calibration"]["method"] = "isotonic".into();
        assert!(err_of(v).contains("isotonic"));
    }

    #[test]
    fn rejects_inconsistent_tabular() {
        let mut v = sample_json();
        v["tabular"]["width"] = 11.into();
        assert!(err_of(v).contains("width"));
        let mut v = sample_json();
        v["tabular"]["default"] = "gone".into();
        assert!(err_of(v).contains("gone"));
        let mut v = sample_json();
        v["tabular"]["features"][1]["values"] = serde_json::json!(["male", "male"]);
        assert!(err_of(v).contains("duplicate"));
        let mut v = sample_json();
        v["tabular"]["features"][2]["kind"] = "embedding".into();
        assert!(err_of(v).contains("embedding"));
        let mut v = sample_json();
        v["diagnoses"][1]["malignant"] = false.into();
        v["diagnoses"][2]["malignant"] = false.into();
        assert!(err_of(v).contains("malignant"));
    }
}
