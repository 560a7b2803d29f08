//! The only file that names tract: load ONNX bytes once (fixed input shape, optimised,
//! runnable) and run them on plain `Vec<f32>`s.

use std::io::Cursor;
use std::sync::Arc;

use tract_onnx::prelude::*;

use crate::error::{Error, Result};

/// An optimised, runnable tract plan.
type Plan = Arc<TypedRunnableModel>;

fn model_err(model: &str) -> impl Fn(TractError) -> Error + '_ {
    // `{:#}` prints anyhow's context chain on one line.
    move |e| Error::Model {
        model: model.to_string(),
        message: format!("{e:#}"),
    }
}

fn plain(model: &str, message: String) -> Error {
    Error::Model {
        model: model.to_string(),
        message,
    }
}

/// Load `bytes`, fix input `input` to f32 `shape`, keep `outputs` (by tensor name, in that order),
/// optimise and make runnable. Returns the plan and the concrete output shapes.
fn load(
    name: &str,
    bytes: &[u8],
    input: &str,
    shape: &[usize],
    outputs: &[&str],
) -> Result<(Plan, Vec<Vec<usize>>)> {
    let err = model_err(name);
    let typed = tract_onnx::onnx()
        .model_for_read(&mut Cursor::new(bytes))
        .map_err(&err)?
        .with_input_names([input])
        .map_err(&err)?
        .with_input_fact(0, f32::fact(shape).into())
        .map_err(&err)?
        .with_outputs_by_name(outputs.iter().copied())
        .map_err(&err)?
        .into_optimized()
        .map_err(&err)?;
    let mut shapes = Vec::with_capacity(outputs.len());
    for (i, out) in outputs.iter().enumerate() {
        let fact = typed.output_fact(i).map_err(&err)?;
        if fact.datum_type != f32::datum_type() {
            return Err(plain(
                name,
                format!("output `{out}` is {:?}, expected f32", fact.datum_type),
            ));
        }
        let s = fact
            .shape
            .as_concrete()
            .ok_or_else(|| plain(name, format!("output `{out}` has no fixed shape")))?;
        shapes.push(s.to_vec());
    }
    let plan = typed.into_runnable().map_err(&err)?;
    Ok((plan, shapes))
}

fn run(name: &str, plan: &Plan, shape: &[usize], input: &[f32]) -> Result<Vec<Vec<f32>>> {
    let err = model_err(name);
    let tensor = Tensor::from_shape(shape, input).map_err(&err)?;
    let outputs = plan.run(tvec!(tensor.into_tvalue())).map_err(&err)?;
    outputs
        .iter()
        .map(|t| {
            Ok(t.to_plain_array_view::<f32>()
                .map_err(&err)?
                .iter()
                .copied()
                .collect())
        })
        .collect()
}

/// Output tensor names of an image model.
pub struct ImageOutputNames<'a> {
    pub logits: &'a str,
    pub embedding: &'a str,
    pub cam: &'a str,
    /// Optional `[1]` out-of-distribution score.
    pub ood: Option<&'a str>,
    /// Optional `[1, 3]` per-problem out-of-distribution scores (needs `ood`).
    pub ood_retake: Option<&'a str>,
}

/// What an image model returns for one image.
#[derive(Debug, Clone)]
pub struct ImageOutputs {
    /// `[n_classes]`.
    pub logits: Vec<f32>,
    /// `[D]` pooled features.
    pub embedding: Vec<f32>,
    /// `[n_classes, h, w]` class activation maps, row-major.
    pub cam: Vec<f32>,
    /// Out-of-distribution score, when the model exports one.
    pub ood: Option<f32>,
    /// Scores against training photos degraded as too dark, overexposed, blurry.
    pub ood_retake: Option<[f32; 3]>,
}

/// A loaded image model.
pub struct ImageNet {
    name: String,
    plan: Plan,
    input_shape: Vec<usize>,
    /// `(classes, embedding width, cam height, cam width)`.
    dims: (usize, usize, usize, usize),
    has_ood: bool,
    has_retake: bool,
}

impl ImageNet {
    /// Load an image model; its logits must have `classes` entries and the CAM `[1, classes, h, w]`.
    pub fn load(
        name: &str,
        bytes: &[u8],
        input: &str,
        input_shape: &[usize],
        names: ImageOutputNames<'_>,
        classes: usize,
    ) -> Result<Self> {
        if names.ood_retake.is_some() && names.ood.is_none() {
            return Err(Error::Model {
                model: name.to_string(),
                message: "an ood_retake output needs an ood output".into(),
            });
        }
        let mut wanted = vec![names.logits, names.embedding, names.cam];
        wanted.extend(names.ood);
        wanted.extend(names.ood_retake);
        let (plan, shapes) = load(name, bytes, input, input_shape, &wanted)?;
        let bad = |what: &str, s: &[usize], want: String| Error::Model {
            model: name.to_string(),
            message: format!("output `{what}` has shape {s:?}, expected {want}"),
        };
        if shapes[0] != [1, classes] {
            return Err(bad(names.logits, &shapes[0], format!("[1, {classes}]")));
        }
        let emb = match shapes[1].as_slice() {
            [1, d] if *d > 0 => *d,
            s => return Err(bad(names.embedding, s, "[1, D]".into())),
        };
        let (h, w) = match shapes[2].as_slice() {
            [1, k, h, w] if *k == classes && *h > 0 && *w > 0 => (*h, *w),
            s => return Err(bad(names.cam, s, format!("[1, {classes}, h, w]"))),
        };
        if let Some(ood) = names.ood {
            if shapes[3].iter().product::<usize>() != 1 {
                return Err(bad(ood, &shapes[3], "[1]".into()));
            }
        }
        if let Some(rt) = names.ood_retake {
            if shapes[4] != [1, 3] {
                return Err(bad(rt, &shapes[4], "[1, 3]".into()));
            }
        }
        Ok(ImageNet {
            name: name.to_string(),
            plan,
            input_shape: input_shape.to_vec(),
            dims: (classes, emb, h, w),
            has_ood: names.ood.is_some(),
            has_retake: names.ood_retake.is_some(),
        })
    }

    /// `(height, width)` of the class activation maps.
    pub fn cam_size(&self) -> (usize, usize) {
        (self.dims.2, self.dims.3)
    }

    /// Run on one preprocessed input, averaged over `turns` quarter turns of it (the manifest's
    /// `quarter_turns`): `logits` become the log of the mean softmax, so their softmax is the
    /// averaged probability; the embedding, heatmap and out-of-distribution scores stay those of
    /// the input as given (the heatmap lines up with the photo; the gate was calibrated on them).
    pub fn run_turns(&self, input: &[f32], turns: usize) -> Result<ImageOutputs> {
        let mut out = self.run(input)?;
        if turns <= 1 {
            return Ok(out);
        }
        let side = self.input_shape[self.input_shape.len() - 1];
        let mut mean = crate::ensemble::softmax(&out.logits);
        for k in 1..turns {
            let turned = crate::preprocess::quarter_turn(input, side, k);
            let p = crate::ensemble::softmax(&self.run(&turned)?.logits);
            for (m, v) in mean.iter_mut().zip(p) {
                *m += v;
            }
        }
        out.logits = mean
            .iter()
            .map(|m| (m / turns as f64).max(f64::MIN_POSITIVE).ln() as f32)
            .collect();
        Ok(out)
    }

    /// Run on one preprocessed input of `input_shape`.
    pub fn run(&self, input: &[f32]) -> Result<ImageOutputs> {
        let mut out = run(&self.name, &self.plan, &self.input_shape, input)?.into_iter();
        let (logits, embedding, cam) = (out.next(), out.next(), out.next());
        let ood = if self.has_ood {
            out.next().and_then(|v| v.first().copied())
        } else {
            None
        };
        let ood_retake = if self.has_retake {
            out.next().and_then(|v| <[f32; 3]>::try_from(v).ok())
        } else {
            None
        };
        match (logits, embedding, cam) {
            (Some(logits), Some(embedding), Some(cam))
                if ood.is_some() == self.has_ood && ood_retake.is_some() == self.has_retake =>
            {
                Ok(ImageOutputs {
                    logits,
                    embedding,
                    cam,
                    ood,
                    ood_retake,
                })
            }
            _ => Err(Error::Model {
                model: self.name.clone(),
                message: "missing outputs".into(),
            }),
        }
    }
}

/// A loaded tabular model: `[1, width]` features -> `[1, 2]` class probabilities.
pub struct TabularNet {
    name: String,
    plan: Plan,
    width: usize,
    positive_index: usize,
}

impl TabularNet {
    pub fn load(
        name: &str,
        bytes: &[u8],
        input: &str,
        output: &str,
        width: usize,
        positive_index: usize,
    ) -> Result<Self> {
        let (plan, shapes) = load(name, bytes, input, &[1, width], &[output])?;
        if shapes[0].len() != 2 || shapes[0][0] != 1 || shapes[0][1] <= positive_index {
            return Err(Error::Model {
                model: name.to_string(),
                message: format!(
                    "output `{output}` has shape {:?}, expected [1, 2]",
                    shapes[0]
                ),
            });
        }
        Ok(TabularNet {
            name: name.to_string(),
            plan,
            width,
            positive_index,
        })
    }

    /// P(malignant) for one encoded feature vector (NaN = not given).
    pub fn run(&self, features: &[f32]) -> Result<f64> {
        let out = run(&self.name, &self.plan, &[1, self.width], features)?;
        let p = f64::from(out[0][self.positive_index]);
        if !(0.0..=1.0).contains(&p) {
            return Err(Error::Model {
                model: self.name.clone(),
                message: format!("probability {p} is out of [0, 1]"),
            });
        }
        Ok(p)
    }
}
