//! The whole pipeline behind one type: `Classifier::from_bytes(manifest, models…)` once, then
//! `classify(image bytes, metadata) -> Assessment` per image. Native and wasm run this same code;
//! the only platform difference, the clock, is passed in by the caller.

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::decode;
use crate::ensemble::{self, RiskTier};
use crate::error::{Error, Result};
use crate::manifest::{ImageModel, Manifest, PhotoKind, TabularModel};
use crate::model::{ImageNet, ImageOutputNames, ImageOutputs, TabularNet};
use crate::preprocess::Preprocessor;
use crate::quality::{Gate, Measures, QualityReport, Verdict};
use crate::tabular::{self, Metadata};

/// What a result warns of, as a code: each front end words it itself (the CLI in `cli.rs`, the
/// page in `www/ui.js`). Serialised as `{"code": "close_up"}`, `{"code": "no_gate"}`,
/// `{"code": "photo_quality", "verdict": "retake", "reason": "blurry"}`,
/// `{"code": "small_image", "width": 8, "height": 8}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Warning {
    /// With every result (issue 4): only close-ups of one lesion are valid; not a diagnosis.
    CloseUp,
    /// The manifest has no `quality` block: blurry, dark or unrelated photos are not detected.
    NoGate,
    /// The photo check's verdict is not ok: the tier shown with it is unreliable.
    PhotoQuality {
        verdict: &'static str,
        reason: Option<&'static str>,
    },
    /// Below half the model's input side the photo is upscaled more than 2x: too little detail.
    SmallImage { width: u32, height: u32 },
}

impl Warning {
    /// The warning of a photo-check verdict, `None` for ok.
    pub fn of_verdict(v: Verdict) -> Option<Warning> {
        (!v.is_ok()).then(|| Warning::PhotoQuality {
            verdict: v.as_str(),
            reason: v.reason_str(),
        })
    }
}

/// Loaded models and the manifest's settings, built once.
pub struct Classifier {
    manifest: Manifest,
    image_cfg: ImageModel,
    tabular_cfg: TabularModel,
    malignant: Vec<usize>,
    preprocess: Preprocessor,
    background: [u8; 3],
    image_net: ImageNet,
    tabular_net: TabularNet,
    model_version: String,
    /// The photo-quality gate, when the manifest has one.
    gate: Option<Gate>,
}

/// Probabilities per diagnosis code, serialised as an object in manifest order.
#[derive(Debug, Clone, PartialEq)]
pub struct DiagnosisProbs(pub Vec<(String, f64)>);

impl DiagnosisProbs {
    /// Probability of `code`, if it is a diagnosis of the manifest.
    pub fn get(&self, code: &str) -> Option<f64> {
        self.0.iter().find(|(c, _)| c == code).map(|(_, p)| *p)
    }
}

impl Serialize for DiagnosisProbs {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (code, p) in &self.0 {
            m.serialize_entry(code, p)?;
        }
        m.end()
    }
}

/// Where the photo type came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PhotoTypeSource {
    /// The model's photo-type head.
    Detected,
    /// The user said (`--photo-type`, the page's "taken with a dermatoscope?").
    Given,
    /// Neither: the image model has no photo-type head and nobody said (dermoscopic assumed).
    Assumed,
}

/// `{"kind": "clinical"|"dermoscopic", "source": "detected"|"given"|"assumed", "probability": p}`;
/// `probability` is the detector's P(clinical), null when the model has no detector.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PhotoType {
    pub kind: PhotoKind,
    pub source: PhotoTypeSource,
    pub probability: Option<f64>,
}

/// Milliseconds per stage, from the caller's clock.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Timings {
    pub decode: f64,
    pub preprocess: f64,
    pub cnn: f64,
    pub tabular: f64,
    pub ensemble: f64,
    pub total: f64,
}

impl Timings {
    /// From the clock's readings at the start and after decode, preprocess, CNN, tabular
    /// model and ensemble.
    fn between([start, decode, pre, cnn, tab, end]: [f64; 6]) -> Timings {
        Timings {
            decode: decode - start,
            preprocess: pre - decode,
            cnn: cnn - pre,
            tabular: tab - cnn,
            ensemble: end - tab,
            total: end - start,
        }
    }
}

/// A `width x height` map, row-major.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Heatmap {
    pub width: usize,
    pub height: usize,
    pub values: Vec<f32>,
}

impl Heatmap {
    /// `(min, max)` of the values (`(0, 0)` when empty).
    pub fn range(&self) -> (f32, f32) {
        let mut it = self.values.iter().copied();
        let first = it.next().unwrap_or(0.0);
        it.fold((first, first), |(lo, hi), v| (lo.min(v), hi.max(v)))
    }

    /// Min–max normalised to [0, 1] (1 = the strongest malignant evidence in this photo);
    /// all zeros for a constant map.
    pub fn normalised(&self) -> Vec<f32> {
        let (lo, hi) = self.range();
        let span = hi - lo;
        self.values
            .iter()
            .map(|&v| if span > 0.0 { (v - lo) / span } else { 0.0 })
            .collect()
    }
}

/// The heatmap as the page draws it: `{width, height, values, min, max}`, `values` min–max
/// normalised to [0, 1] row-major, `min`/`max` the raw range they were scaled from.
fn heatmap_json<S: Serializer>(h: &Heatmap, s: S) -> std::result::Result<S::Ok, S::Error> {
    let (lo, hi) = h.range();
    let mut m = s.serialize_map(Some(5))?;
    m.serialize_entry("width", &h.width)?;
    m.serialize_entry("height", &h.height)?;
    m.serialize_entry("values", &h.normalised())?;
    m.serialize_entry("min", &lo)?;
    m.serialize_entry("max", &hi)?;
    m.end()
}

/// The result for one image. Serialises (serde) with exactly the keys of the CLI's `--json`
/// and the page's result object; `logits`, `embedding`, `ood_score` and `image_size` are for
/// Rust callers.
///
/// The tier and probabilities are given whatever the quality verdict: when it is not ok the
/// page hides them behind a "show anyway" button and `warnings` says why and how to retake.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assessment {
    /// Final P(malignant): stacked with metadata when given, else the calibrated image probability.
    pub malignant_probability: f64,
    pub risk_tier: RiskTier,
    /// Softmax over the diagnoses, code -> probability, in manifest order.
    pub diagnosis: DiagnosisProbs,
    /// Calibrated image-only P(malignant).
    pub image_probability: f64,
    /// The tabular model's P(malignant); `None` (JSON null) without metadata.
    pub tabular_probability: Option<f64>,
    /// The metadata fields the tabular model used (empty: image only), in the manifest's
    /// vocabulary (`age`, `sex`, `site`, `itch`, …, `diameter_mm`).
    pub metadata_used: Vec<&'static str>,
    /// Dermoscopic or clinical, detected or given: which head judged the photo.
    pub photo_type: PhotoType,
    pub warnings: Vec<Warning>,
    /// The photo-quality gate's verdict (see [`QualityReport`]); `None` (JSON null) when the
    /// manifest has no `quality` block.
    pub quality: Option<QualityReport>,
    pub model_version: String,
    pub timings_ms: Timings,
    /// Code of the most probable diagnosis.
    pub top_dx: String,
    /// Sum of the malignant diagnoses' class activation maps (raw, unnormalised), e.g. 7x7, on
    /// the model's input grid (the squashed photo). In JSON: normalised, see `heatmap_json`.
    #[serde(serialize_with = "heatmap_json")]
    pub heatmap: Heatmap,
    /// The judging head's logits, in manifest diagnosis order: raw for one pass, else the log of
    /// the turn-averaged probabilities (either way `diagnosis` is their softmax).
    #[serde(skip)]
    pub logits: Vec<f32>,
    /// The image model's pooled features (for out-of-distribution checks).
    #[serde(skip)]
    pub embedding: Vec<f32>,
    /// The model's raw out-of-distribution score, when the manifest names an `ood` output
    /// (also for models the OOD cut does not apply to; `quality.ood_score` is then null).
    #[serde(skip)]
    pub ood_score: Option<f32>,
    /// `(width, height)` of the decoded, upright image.
    #[serde(skip)]
    pub image_size: (u32, u32),
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn verify(file: &str, expected: &str, bytes: &[u8]) -> Result<()> {
    let actual = sha256_hex(bytes);
    if actual != expected {
        return Err(Error::Checksum {
            file: file.to_string(),
            expected: expected.to_string(),
            actual,
        });
    }
    Ok(())
}

/// One pass's logits of the judging head: the clinical head's for a clinical photo (when the
/// model has one), else the dermoscopic ones.
fn head_logits(o: &ImageOutputs, clinical: bool) -> Vec<f32> {
    match (clinical, &o.clinical_logits) {
        (true, Some(l)) => l.clone(),
        _ => o.logits.clone(),
    }
}

/// A photo ready for the model: [`Classifier::prepare`]'s result.
struct Prepared {
    /// The model input, `[1, 3, size, size]` NCHW.
    input: Vec<f32>,
    /// The gate's measures on the resized photo, when the manifest has a gate.
    measures: Option<Measures>,
    /// `(width, height)` of the decoded, upright image.
    size: (u32, u32),
    /// The caller's clock after decoding.
    t_decode: f64,
}

/// A photo between [`Classifier::begin`] and [`Classifier::finish`]: decoded, preprocessed,
/// measured, its metadata checked and encoded, waiting for the image model's quarter turns.
pub struct Pending {
    prepared: Prepared,
    /// The tabular model's input, when a metadata field is given.
    features: Option<Vec<f32>>,
    meta: Metadata,
    /// The caller's clock at the start and after preprocessing.
    t_start: f64,
    t_pre: f64,
}

impl Pending {
    /// The model input, `[1, 3, size, size]` NCHW: what [`Classifier::run_turn`] turns and runs.
    pub fn input(&self) -> &[f32] {
        &self.prepared.input
    }
}

/// A probability's log, floored at the smallest positive f64 (a logit of the averaged turns).
fn log_prob(p: f64) -> f32 {
    p.max(f64::MIN_POSITIVE).ln() as f32
}

/// The code of the most probable diagnosis (the first of equals).
fn top_dx(diagnosis: &[(String, f64)]) -> String {
    diagnosis
        .iter()
        .fold(None::<&(String, f64)>, |best, d| match best {
            Some(b) if b.1 >= d.1 => Some(b),
            _ => Some(d),
        })
        .map(|(c, _)| c.clone())
        .unwrap_or_default()
}

/// The image model's graph, with the outputs its manifest entry names.
fn load_image_net(cfg: &ImageModel, bytes: &[u8], n_diagnoses: usize) -> Result<ImageNet> {
    let o = &cfg.outputs;
    ImageNet::load(
        &cfg.file,
        bytes,
        &cfg.input,
        &cfg.input_shape,
        ImageOutputNames {
            logits: &o.logits,
            embedding: &o.embedding,
            cam: &o.cam,
            ood: o.ood.as_deref(),
            ood_retake: o.ood_retake.as_deref(),
            ood_clinical: o.ood_clinical.as_deref(),
            ood_clinical_retake: o.ood_clinical_retake.as_deref(),
            photo_type: cfg.photo_type.as_ref().map(|p| p.output.as_str()),
            non_lesion: o.non_lesion.as_deref(),
            colour: o.colour.as_deref(),
            clinical: cfg
                .clinical
                .as_ref()
                .map(|c| (c.logits.as_str(), c.cam.as_str())),
        },
        n_diagnoses,
    )
}

impl Classifier {
    /// Build from the manifest JSON and the bytes of its default image and tabular models.
    /// Both blobs are checked against the manifest's SHA-256.
    pub fn from_bytes(
        manifest_json: &[u8],
        image_model: &[u8],
        tabular_model: &[u8],
    ) -> Result<Classifier> {
        Self::build_default(manifest_json, image_model, tabular_model, true)
    }

    /// As [`Classifier::from_bytes`], for a caller that has already checked both blobs against
    /// the manifest's SHA-256. The page's worker does, with `crypto.subtle`: hashing the image
    /// model again in wasm cost about 0.1 s of cold start, `crypto.subtle` about 20 ms (issue 5).
    pub fn from_checked_bytes(
        manifest_json: &[u8],
        image_model: &[u8],
        tabular_model: &[u8],
    ) -> Result<Classifier> {
        Self::build_default(manifest_json, image_model, tabular_model, false)
    }

    /// Build from a parsed manifest with a chosen image model and tabular model (by `id`),
    /// given those models' bytes (checked by SHA-256). The manifest is validated here, as the
    /// caller may have built or changed it.
    pub fn from_parts(
        manifest: Manifest,
        image_model_id: &str,
        tabular_model_id: &str,
        image_model: &[u8],
        tabular_model: &[u8],
    ) -> Result<Classifier> {
        manifest.validate()?;
        let ids = (Some(image_model_id), Some(tabular_model_id));
        Self::build(manifest, ids, (image_model, tabular_model), true)
    }

    /// The manifest's default image and tabular models (`from_json` has validated it).
    fn build_default(
        manifest_json: &[u8],
        image_model: &[u8],
        tabular_model: &[u8],
        check_sha256: bool,
    ) -> Result<Classifier> {
        let manifest = Manifest::from_json(manifest_json)?;
        Self::build(
            manifest,
            (None, None),
            (image_model, tabular_model),
            check_sha256,
        )
    }

    /// From a validated manifest: `ids` are the image and tabular model ids (`None`: the
    /// manifest's default), `bytes` those models' files.
    fn build(
        manifest: Manifest,
        ids: (Option<&str>, Option<&str>),
        bytes: (&[u8], &[u8]),
        check_sha256: bool,
    ) -> Result<Classifier> {
        let (image_cfg, tabular_cfg) = manifest.resolve(ids.0, ids.1)?;
        let (image_cfg, tabular_cfg) = (image_cfg.clone(), tabular_cfg.clone());
        if check_sha256 {
            verify(&image_cfg.file, &image_cfg.sha256, bytes.0)?;
            verify(&tabular_cfg.file, &tabular_cfg.sha256, bytes.1)?;
        }
        let image_net = load_image_net(&image_cfg, bytes.0, manifest.diagnoses.len())?;
        let tabular_net = TabularNet::load(
            &tabular_cfg.file,
            bytes.1,
            &tabular_cfg.input,
            &tabular_cfg.output,
            manifest.tabular.width,
            tabular_cfg.positive_index,
        )?;
        let bg = &manifest.preprocess.alpha_background;
        let model_version = if image_cfg.id == manifest.default_image_model {
            manifest.model_version.clone()
        } else {
            format!("{}+{}", manifest.model_version, image_cfg.id)
        };
        let gate = manifest
            .quality
            .as_ref()
            .map(|q| Gate::new(q, &image_cfg.id));
        Ok(Classifier {
            gate,
            malignant: manifest.malignant_indices(),
            preprocess: Preprocessor::new(&manifest.preprocess),
            background: [bg[0], bg[1], bg[2]],
            image_net,
            tabular_net,
            image_cfg,
            tabular_cfg,
            model_version,
            manifest,
        })
    }

    /// Native convenience: read `dir/manifest.json` and the model files it names.
    /// `image_model_id` defaults to the manifest's `default_image_model`.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_dir(
        dir: impl AsRef<std::path::Path>,
        image_model_id: Option<&str>,
    ) -> Result<Classifier> {
        let dir = dir.as_ref();
        let read = |name: &str| {
            let p = dir.join(name);
            std::fs::read(&p).map_err(|e| Error::io(&p, e))
        };
        let manifest = Manifest::from_json(&read("manifest.json")?)?;
        let (image, tab) = manifest.resolve(image_model_id, None)?;
        let (image, tab) = (read(&image.file)?, read(&tab.file)?);
        Self::build(manifest, (image_model_id, None), (&image, &tab), true)
    }

    /// The manifest this classifier was built from.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The image model's manifest entry (thresholds, tiers, calibration).
    pub fn image_model(&self) -> &ImageModel {
        &self.image_cfg
    }

    /// Whether results carry a quality verdict (the manifest has a `quality` block).
    pub fn has_quality_gate(&self) -> bool {
        self.gate.is_some()
    }

    /// The tabular model's manifest entry.
    pub fn tabular_model(&self) -> &TabularModel {
        &self.tabular_cfg
    }

    /// Manifest `model_version` (with `+id` when a non-default image model is used).
    pub fn model_version(&self) -> &str {
        &self.model_version
    }

    /// Classify with wall-clock timings from `std::time::Instant` (native only: `Instant`
    /// panics on wasm32-unknown-unknown, where the JS facade passes `performance.now`).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn classify(&self, image_bytes: &[u8], meta: &Metadata) -> Result<Assessment> {
        let t0 = std::time::Instant::now();
        self.classify_with_clock(image_bytes, meta, &|| t0.elapsed().as_secs_f64() * 1e3)
    }

    /// Classify one image. `now` returns milliseconds from any fixed origin.
    ///
    /// The three steps of every classify, here one after another: [`Classifier::begin`]
    /// (metadata checked, decode, preprocess), [`Classifier::run_turn`] for each quarter turn,
    /// [`Classifier::finish`] (tabular model, photo type, head, turn average, calibration,
    /// stacker, tiers, quality verdict). The page runs the same three, with the turns spread over
    /// several instances of the model (issue 15).
    pub fn classify_with_clock(
        &self,
        image_bytes: &[u8],
        meta: &Metadata,
        now: &dyn Fn() -> f64,
    ) -> Result<Assessment> {
        let photo = self.begin(image_bytes, meta, now)?;
        let turns = (0..self.quarter_turns())
            .map(|k| self.run_turn(photo.input(), k))
            .collect::<Result<Vec<_>>>()?;
        self.finish(photo, turns, now)
    }

    /// How many passes of the image model a classify takes: the photo as given and its first
    /// `quarter_turns - 1` quarter turns (test-time augmentation).
    pub fn quarter_turns(&self) -> usize {
        self.image_cfg.quarter_turns
    }

    /// The first step of a classify: metadata validated first (a typed error names the field)
    /// and encoded, then decode, preprocess (the squash resize, the quality measures on it,
    /// normalisation). The photo then waits for its turns' image-model outputs.
    pub fn begin(
        &self,
        image_bytes: &[u8],
        meta: &Metadata,
        now: &dyn Fn() -> f64,
    ) -> Result<Pending> {
        let t_start = now();
        let features = if meta.any() {
            Some(tabular::encode(meta, &self.manifest.tabular)?)
        } else {
            None
        };
        let prepared = self.prepare(image_bytes, now)?;
        let t_pre = now();
        Ok(Pending {
            prepared,
            features,
            meta: meta.clone(),
            t_start,
            t_pre,
        })
    }

    /// The image model on quarter turn `k` (0: the photo as given) of `input`, a
    /// [`Pending::input`]. Pure: any instance of the same model gives the same bits.
    pub fn run_turn(&self, input: &[f32], k: usize) -> Result<ImageOutputs> {
        if k >= self.quarter_turns() {
            return Err(Error::Model {
                model: self.image_cfg.file.clone(),
                message: format!(
                    "no quarter turn {k}: the model takes {}",
                    self.quarter_turns()
                ),
            });
        }
        if k == 0 {
            return self.image_net.run(input);
        }
        let side = self.image_net.input_side();
        self.image_net
            .run(&crate::preprocess::quarter_turn(input, side, k))
    }

    /// The last step of a classify: `turns[k]` is [`Classifier::run_turn`]`(photo.input(), k)`
    /// for every quarter turn, in turn order (they are averaged in that order). Runs the tabular
    /// model (only when a metadata field is given), picks the photo type (given, else detected),
    /// that type's head, calibration, stacker and tiers, and the quality verdict.
    pub fn finish(
        &self,
        photo: Pending,
        turns: Vec<ImageOutputs>,
        now: &dyn Fn() -> f64,
    ) -> Result<Assessment> {
        let t_cnn = now();
        self.check_turns(&turns)?;
        let Pending {
            prepared:
                Prepared {
                    measures,
                    size: (w, h),
                    t_decode,
                    ..
                },
            features,
            meta,
            t_start,
            t_pre,
        } = photo;
        let p_tab = match &features {
            Some(f) => Some(self.tabular_net.run(f)?),
            None => None,
        };
        let t_tab = now();
        let photo_type = self.photo_type(&turns, meta.photo_type);
        let head = self.image_cfg.head(photo_type.kind);
        let clinical = head.kind == PhotoKind::Clinical;
        let head_logits: Vec<Vec<f32>> = turns.iter().map(|o| head_logits(o, clinical)).collect();
        let diagnosis = ensemble::combine_turns(&head_logits, head.turn_average);
        let r = ensemble::assess(diagnosis, &self.malignant, p_tab, head);
        // The photo as given: its heatmap lines up with the photo, and the gate was fitted on it.
        let out = turns.into_iter().next().ok_or_else(|| Error::Model {
            model: self.image_cfg.file.clone(),
            message: "no output".into(),
        })?;
        let cam = match (clinical, &out.clinical_cam) {
            (true, Some(c)) => c.as_slice(),
            _ => out.cam.as_slice(),
        };
        let heatmap = self.malignant_heatmap(cam);
        let diagnosis = self.named(&r.diagnosis);
        let quality = self.judge(measures, photo_type.kind, &out);
        let warnings = self.warnings(quality.as_ref(), (w, h));
        let t_end = now();
        Ok(Assessment {
            malignant_probability: r.malignant_probability,
            risk_tier: r.risk_tier,
            top_dx: top_dx(&diagnosis),
            diagnosis: DiagnosisProbs(diagnosis),
            image_probability: r.image_probability,
            tabular_probability: r.tabular_probability,
            metadata_used: if p_tab.is_some() {
                meta.given()
            } else {
                Vec::new()
            },
            photo_type,
            warnings,
            quality,
            model_version: self.model_version.clone(),
            timings_ms: Timings::between([t_start, t_decode, t_pre, t_cnn, t_tab, t_end]),
            heatmap,
            logits: match head_logits.as_slice() {
                [one] => one.clone(),
                _ => r.diagnosis.iter().map(|p| log_prob(*p)).collect(),
            },
            embedding: out.embedding,
            ood_score: out.ood,
            image_size: (w, h),
        })
    }

    /// One output per quarter turn, each with the shapes of this model's (they may come from
    /// another instance of it: the page's parallel turns).
    fn check_turns(&self, turns: &[ImageOutputs]) -> Result<()> {
        if turns.len() != self.quarter_turns() {
            return Err(Error::Model {
                model: self.image_cfg.file.clone(),
                message: format!(
                    "{} quarter turns given, the model takes {}",
                    turns.len(),
                    self.quarter_turns()
                ),
            });
        }
        turns
            .iter()
            .try_for_each(|o| self.image_net.check_outputs(o))
    }

    /// Decode, resize (squash), the gate's measures on the resized photo, normalise.
    fn prepare(&self, image_bytes: &[u8], now: &dyn Fn() -> f64) -> Result<Prepared> {
        let decoded = decode::decode(image_bytes, self.background)?;
        let t_decode = now();
        let size = decoded.image.dimensions();
        let resized = self.preprocess.resize(&decoded.image);
        drop(decoded);
        // The gate measures the same canonical image the model sees (no second resize).
        let side = self.preprocess.size();
        let measures = self.gate.as_ref().map(|g| g.measures(&resized, side, side));
        Ok(Prepared {
            input: self.preprocess.normalise(&resized),
            measures,
            size,
            t_decode,
        })
    }

    /// Probabilities in manifest diagnosis order, paired with their codes.
    fn named(&self, probs: &[f64]) -> Vec<(String, f64)> {
        let codes = self.manifest.diagnoses.iter().map(|d| d.code.clone());
        codes.zip(probs.iter().copied()).collect()
    }

    /// The gate's verdict on the photo's own pass, when the manifest has a gate.
    fn judge(
        &self,
        measures: Option<Measures>,
        kind: PhotoKind,
        out: &ImageOutputs,
    ) -> Option<QualityReport> {
        let (gate, m) = self.gate.as_ref().zip(measures)?;
        let (ood, verdict) = gate.judge(&m, kind, out);
        Some(QualityReport {
            verdict,
            ood_score: ood,
            measures: m,
        })
    }

    /// The close-up warning always; the gate's verdict, or that there is no gate; a small photo.
    fn warnings(&self, quality: Option<&QualityReport>, (w, h): (u32, u32)) -> Vec<Warning> {
        let mut warnings = vec![Warning::CloseUp];
        match quality {
            Some(q) => warnings.extend(Warning::of_verdict(q.verdict)),
            None => warnings.push(Warning::NoGate),
        }
        let min_side = (self.preprocess.size() / 2) as u32;
        if w.min(h) < min_side {
            warnings.push(Warning::SmallImage {
                width: w,
                height: h,
            });
        }
        warnings
    }

    /// Preprocessed model input for `image_bytes` (`[1, 3, size, size]`, NCHW) — what the
    /// golden test compares with training's checksum.
    pub fn preprocess_bytes(&self, image_bytes: &[u8]) -> Result<Vec<f32>> {
        let decoded = decode::decode(image_bytes, self.background)?;
        Ok(self.preprocess.run(&decoded.image))
    }

    /// The image model alone on a preprocessed input (from [`Classifier::preprocess_bytes`]):
    /// the benchmark's CNN-only figure, free of decode and resize: one pass of the graph, what
    /// another runtime runs on the same file (`classify` runs `quarter_turns` of them). Returns
    /// the raw logits.
    pub fn run_image_model(&self, input: &[f32]) -> Result<Vec<f32>> {
        Ok(self.image_net.run(input)?.logits)
    }

    /// Exercise the engine on a tiny built-in graph, `runs` passes (see `model::warm_up`): what
    /// the browser's worker does while the models download. Returns the sum of its outputs.
    pub fn warm_up(runs: usize) -> Result<f64> {
        crate::model::warm_up(runs)
    }

    /// The image model's time by operator over `runs` passes on a preprocessed input (the
    /// benchmark's profile; `now` is a clock in milliseconds).
    pub fn profile_image_model(&self, input: &[f32], runs: u32, now: &dyn Fn() -> f64) -> Result<Vec<crate::OpTime>> {
        self.image_net.profile(input, runs, now)
    }

    /// The user's photo type if given, else the detector's on the photo as given (like the
    /// gate, it reads how the photo was taken, not the lesion), else dermoscopic for a model
    /// without a detector.
    fn photo_type(&self, turns: &[ImageOutputs], given: Option<PhotoKind>) -> PhotoType {
        let probability = turns
            .first()
            .and_then(|o| o.photo_type)
            .map(|z| ensemble::sigmoid(f64::from(z)));
        let detected = self
            .image_cfg
            .photo_type
            .as_ref()
            .zip(probability)
            .map(|(pt, p)| {
                if p >= pt.clinical_from {
                    PhotoKind::Clinical
                } else {
                    PhotoKind::Dermoscopic
                }
            });
        let (kind, source) = match (given, detected) {
            (Some(k), _) => (k, PhotoTypeSource::Given),
            (None, Some(k)) => (k, PhotoTypeSource::Detected),
            (None, None) => (PhotoKind::Dermoscopic, PhotoTypeSource::Assumed),
        };
        PhotoType {
            kind,
            source,
            probability,
        }
    }

    fn malignant_heatmap(&self, cam: &[f32]) -> Heatmap {
        let (height, width) = self.image_net.cam_size();
        let plane = height * width;
        let mut values = vec![0f32; plane];
        for &k in &self.malignant {
            for (v, c) in values.iter_mut().zip(&cam[k * plane..(k + 1) * plane]) {
                *v += c;
            }
        }
        Heatmap {
            width,
            height,
            values,
        }
    }
}
