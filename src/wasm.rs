//! The JavaScript facade (wasm32 only): one class, `Classifier`, over `pipeline::Classifier`.
//!
//! ```js
//! import init, { Classifier } from "./pkg/skinscan.js";
//! await init();
//! const c = new Classifier(manifestText, imageModelBytes, tabularModelBytes);
//! const result = c.classify(imageBytes, { age: 45, sex: "female", site: "posterior torso" });
//! ```
//! The result is a plain object with the same keys as `skinscan classify --json`
//! (`null` for a missing tabular probability, `diagnosis` as an object), including the
//! photo-quality verdict and the heatmap (issue 6):
//!
//! ```js
//! result.quality  // {verdict: "ok"|"retake"|"not_a_lesion", reason: null|"blurry"|…,
//!                 //  advice: null|string, ood_score: number|null, measures: {…}} or null
//! result.heatmap  // {width: 7, height: 7, values: [49 numbers in 0..1, row-major], min, max}
//! ```
//! `values` cover the whole photo as the model saw it (squashed to a square), so the page
//! stretches the grid over the photo's own aspect ratio.

use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::model::ImageOutputs;
use crate::pipeline;
use crate::tabular::Metadata;

/// Route Rust panics to the browser console.
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

/// `performance.now()` where the global scope has it (window and workers), else `Date.now()`.
fn clock() -> impl Fn() -> f64 {
    let perf = js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("performance"))
        .ok()
        .and_then(|p| p.dyn_into::<web_sys::Performance>().ok());
    move || perf.as_ref().map_or_else(js_sys::Date::now, |p| p.now())
}

/// `undefined`/`null` (nothing given) or the page's raw form values, parsed by `Metadata`.
fn parse_metadata(metadata: JsValue) -> Result<Metadata, JsError> {
    if metadata.is_undefined() || metadata.is_null() {
        return Ok(Metadata::default());
    }
    let value: serde_json::Value = serde_wasm_bindgen::from_value(metadata)
        .map_err(|e| JsError::new(&format!("invalid metadata: {e}")))?;
    Ok(Metadata::from_json(&value)?)
}

/// An assessment as a plain object with the CLI's `--json` keys (`null`, not `undefined`).
fn to_js(assessment: &pipeline::Assessment) -> Result<JsValue, JsError> {
    let ser = serde_wasm_bindgen::Serializer::json_compatible();
    assessment
        .serialize(&ser)
        .map_err(|e| JsError::new(&e.to_string()))
}

/// Build and run a tiny built-in graph `runs` times (issue 15): www/worker.js calls it while the
/// models download, so that the browser has optimised the engine's code by the time they arrive.
/// Returns the sum of the graph's outputs (a finite number).
#[wasm_bindgen]
pub fn warm_up(runs: u32) -> Result<f64, JsError> {
    Ok(pipeline::Classifier::warm_up(runs as usize)?)
}

/// A photo between `Classifier.prepare` and `Classifier.finish`: decoded, preprocessed, its
/// metadata checked. Pass it to `finish` (which consumes it), or `free()` it.
#[wasm_bindgen]
pub struct Photo {
    inner: pipeline::Pending,
}

#[wasm_bindgen]
impl Photo {
    /// The model input, `[1, 3, size, size]` NCHW f32 (a copy): what `run_turn` takes.
    pub fn input(&self) -> Vec<f32> {
        self.inner.input().to_vec()
    }
}

/// The classifier, built once from the manifest and the two model files.
#[wasm_bindgen]
pub struct Classifier {
    inner: pipeline::Classifier,
}

#[wasm_bindgen]
impl Classifier {
    /// `manifest_json`: the text of `models/manifest.json`; `image_model` and `tabular_model`:
    /// the bytes of the manifest's default image and tabular models (checked by SHA-256).
    #[wasm_bindgen(constructor)]
    pub fn new(
        manifest_json: &str,
        image_model: &[u8],
        tabular_model: &[u8],
    ) -> Result<Classifier, JsError> {
        let inner =
            pipeline::Classifier::from_bytes(manifest_json.as_bytes(), image_model, tabular_model)?;
        Ok(Classifier { inner })
    }

    /// Classify the bytes of an image file. `metadata` is `undefined`, `null` or the page's
    /// raw form values `{age?, sex?, site?, photoType?, itch?, grew?, hurt?, changed?, bleed?,
    /// elevation?, diameterMm?}`, parsed and checked by `tabular::Metadata` (the one parser);
    /// `null`, `""` and "don't know" mean "not given". The turns one after another, in this
    /// instance: `prepare`, `run_turn` for each turn, `finish` (the page's worker calls those
    /// three itself, to spread the turns over instances).
    pub fn classify(&self, image: &[u8], metadata: JsValue) -> Result<JsValue, JsError> {
        let meta = parse_metadata(metadata)?;
        let now = clock();
        let assessment = self.inner.classify_with_clock(image, &meta, &now)?;
        to_js(&assessment)
    }

    /// Step 1 of a classify: check `metadata` (as `classify`'s), decode and preprocess `image`.
    /// The `Photo` then waits for its turns (`run_turn` on `photo.input()`, in any instance of
    /// this same model and wasm build) and is consumed by `finish`.
    pub fn prepare(&self, image: &[u8], metadata: JsValue) -> Result<Photo, JsError> {
        let meta = parse_metadata(metadata)?;
        let inner = self.inner.begin(image, &meta, &clock())?;
        Ok(Photo { inner })
    }

    /// How many quarter turns a classify runs (`run_turn`'s `k` is 0 to this minus one).
    pub fn quarter_turns(&self) -> u32 {
        self.inner.quarter_turns() as u32
    }

    /// Step 2, once per quarter turn `k` (0: the photo as given): the image model on turn `k` of
    /// `input` (a `Photo.input()`). Returns the raw outputs as a plain object (`{logits: [...],
    /// embedding, cam, ood, ...}`, numbers that were f32: they go back into f32 exactly), for
    /// `finish`. Touches no state but the model's scratch space.
    pub fn run_turn(&self, input: &[f32], k: u32) -> Result<JsValue, JsError> {
        let out = self.inner.run_turn(input, k as usize)?;
        out.serialize(&serde_wasm_bindgen::Serializer::new())
            .map_err(|e| JsError::new(&e.to_string()))
    }

    /// Step 3: the assessment (as `classify` returns it) from the photo and its turns' outputs,
    /// `turns[k]` from `run_turn(photo.input(), k)`, in turn order. Consumes `photo`.
    pub fn finish(&self, photo: Photo, turns: Vec<JsValue>) -> Result<JsValue, JsError> {
        let turns = turns
            .into_iter()
            .map(serde_wasm_bindgen::from_value::<ImageOutputs>)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| JsError::new(&format!("invalid quarter-turn outputs: {e}")))?;
        let assessment = self.inner.finish(photo.inner, turns, &clock())?;
        to_js(&assessment)
    }

    /// As the constructor, for bytes the caller has already checked against the manifest's
    /// SHA-256 (www/worker.js does, with `crypto.subtle`, an order of magnitude faster than
    /// hashing again here). Anything not checked must go through the constructor.
    pub fn from_checked(
        manifest_json: &str,
        image_model: &[u8],
        tabular_model: &[u8],
    ) -> Result<Classifier, JsError> {
        let inner = pipeline::Classifier::from_checked_bytes(
            manifest_json.as_bytes(),
            image_model,
            tabular_model,
        )?;
        Ok(Classifier { inner })
    }

    /// The manifest's `model_version`.
    pub fn model_version(&self) -> String {
        self.inner.model_version().to_string()
    }

    /// Benchmark hook (bench/): the model input for `image`, `[1, 3, size, size]` NCHW f32,
    /// so another runtime can be timed on exactly the tensor this one sees.
    pub fn preprocess(&self, image: &[u8]) -> Result<Vec<f32>, JsError> {
        Ok(self.inner.preprocess_bytes(image)?)
    }

    /// Benchmark hook (bench/): preprocess `image` once, then run the image model alone `runs`
    /// times; milliseconds per run, timed with `performance.now()` inside wasm.
    /// Benchmark hook: the image model's time by operator over `runs` passes on `image`
    /// (`[{op, ms_per_pass, nodes}]`, slowest first; see `ImageNet::profile`).
    pub fn bench_profile(&self, image: &[u8], runs: u32) -> Result<JsValue, JsError> {
        let input = self.inner.preprocess_bytes(image)?;
        let now = clock();
        let ops = self.inner.profile_image_model(&input, runs, &now)?;
        serde_wasm_bindgen::to_value(&ops).map_err(|e| JsError::new(&e.to_string()))
    }

    pub fn bench_cnn(&self, image: &[u8], runs: u32) -> Result<Vec<f64>, JsError> {
        let input = self.inner.preprocess_bytes(image)?;
        let now = clock();
        let mut times = Vec::with_capacity(runs as usize);
        for _ in 0..runs {
            let t0 = now();
            std::hint::black_box(self.inner.run_image_model(&input)?);
            times.push(now() - t0);
        }
        Ok(times)
    }
}
