//! The only file that names tract: load ONNX bytes once (fixed input shape, optimised,
//! runnable) and run them on plain `Vec<f32>`s.

use std::io::Cursor;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
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
    let onnx = tract_onnx::onnx();
    // The protobuf (with the expanded weights) is dropped once tract has its own copy: in wasm
    // the memory's high-water mark stays with the page for good.
    let model = {
        let mut proto = onnx.proto_model_for_read(&mut Cursor::new(bytes)).map_err(&err)?;
        if let Some(graph) = proto.graph.as_mut() {
            expand_constants(&onnx, graph).map_err(&err)?;
        }
        onnx.model_for_proto_model(&proto).map_err(&err)?
    };
    let typed = model
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

/// Fold, in the ONNX graph itself, every `Cast` to float32, `Mul` and `Add` whose inputs are
/// all initializers into a float32 initializer: how the compact weights are stored (int8 or
/// split 11-bit kernels with per-channel scales, float16 factors; training/skinscan_train/
/// compact.py) expanded once, with plain loops, before tract sees the graph. tract would fold
/// them too, but in its inference-model analysis, which took 165 ms natively for the shipped
/// model against 8 ms for its float32 twin (issue 15). The values are the very ones tract's
/// folding gave: the same IEEE float32 operations. Returns how many nodes were folded.
fn expand_constants(onnx: &tract_onnx::Onnx, graph: &mut tract_onnx::pb::GraphProto) -> TractResult<usize> {
    use std::collections::{HashMap, HashSet};
    use tract_onnx::pb::tensor_proto::DataType;
    use tract_onnx::pb::TensorProto;
    let initializers: HashMap<String, usize> =
        graph.initializer.iter().enumerate().map(|(i, t)| (t.name.clone(), i)).collect();
    // Folded values stay tensors until the end: a chain (Cast, Mul, Cast, Mul, Add) is never
    // written back to bytes in between.
    let mut folded: HashMap<String, Tensor> = HashMap::new();
    let mut uses: HashMap<String, usize> = HashMap::new();
    for name in graph.node.iter().flat_map(|n| &n.input).chain(graph.output.iter().map(|o| &o.name)) {
        *uses.entry(name.clone()).or_default() += 1;
    }
    let mut keep = Vec::with_capacity(graph.node.len());
    for node in std::mem::take(&mut graph.node) {
        let constant = |i: &String| folded.contains_key(i) || initializers.contains_key(i);
        let to_f32 = node.op_type != "Cast"
            || node.attribute.iter().any(|a| a.name == "to" && a.i == DataType::Float as i64);
        if !(matches!(node.op_type.as_str(), "Cast" | "Mul" | "Add")
            && node.domain.is_empty()
            && node.output.len() == 1
            && !node.input.is_empty()
            && node.input.iter().all(constant)
            && to_f32)
        {
            keep.push(node);
            continue;
        }
        // A folded value is taken (not copied) by the node that reads it last.
        for i in &node.input {
            *uses.get_mut(i).unwrap() -= 1;
        }
        let mut load = |name: &String| -> TractResult<Tensor> {
            if uses[name] == 0 {
                if let Some(t) = folded.remove(name) {
                    return Ok(t);
                }
            }
            match folded.get(name) {
                Some(t) => Ok(t.clone()),
                None => {
                    let t = &graph.initializer[initializers[name]];
                    Ok(tract_onnx::tensor::load_tensor(&*onnx.provider, t, None)?.cast_to::<f32>()?.into_owned())
                }
            }
        };
        let value = match node.op_type.as_str() {
            "Cast" => load(&node.input[0])?,
            op => combine(op == "Mul", load(&node.input[0])?, load(&node.input[1])?)?,
        };
        folded.insert(node.output[0].clone(), value);
    }
    graph.node = keep;
    let used: HashSet<String> = graph
        .node
        .iter()
        .flat_map(|n| n.input.iter().cloned())
        .chain(graph.output.iter().map(|o| o.name.clone()))
        .collect();
    // The compact parts are no longer read: drop them (memory is the phone's).
    graph.initializer.retain(|t| used.contains(&t.name));
    let n = folded.len();
    for (name, value) in folded.into_iter().filter(|(name, _)| used.contains(name)) {
        graph.initializer.push(TensorProto {
            name,
            dims: value.shape().iter().map(|&d| d as i64).collect(),
            data_type: DataType::Float as i32,
            raw_data: value.as_bytes().to_vec(), // little-endian, as ONNX stores it, on every target we build
            ..Default::default()
        });
    }
    Ok(n)
}

/// `a * b` or `a + b` of two float32 constants with ONNX (numpy) broadcasting, in place in the
/// larger one. The compact weights' shapes take a plain loop: a per-output-channel scale
/// (`[O, 1, 1, 1]` against `[O, I, h, w]`) or two tensors of one shape.
fn combine(mul: bool, a: Tensor, b: Tensor) -> TractResult<Tensor> {
    let (mut big, small) = if a.len() >= b.len() { (a, b) } else { (b, a) };
    let op = |x: &mut f32, y: f32| if mul { *x *= y } else { *x += y };
    let small_view = small.to_plain_array_view::<f32>()?;
    let same_shape = small.shape() == big.shape();
    let per_channel = small.rank() == big.rank()
        && small.shape()[0] == big.shape()[0]
        && small.shape()[1..].iter().all(|&d| d == 1);
    let mut big_view = big.to_plain_array_view_mut::<f32>()?;
    match (big_view.as_slice_mut(), small_view.as_slice()) {
        (Some(x), Some(y)) if same_shape => x.iter_mut().zip(y).for_each(|(x, &y)| op(x, y)),
        (Some(x), Some(y)) if per_channel && !y.is_empty() => {
            let inner = x.len() / y.len();
            x.chunks_mut(inner).zip(y).for_each(|(c, &y)| c.iter_mut().for_each(|x| op(x, y)));
        }
        _ => {
            let shape = big_view.shape().to_vec();
            let small_b = small_view
                .broadcast(shape.clone())
                .ok_or_else(|| tract_onnx::prelude::tract_data::internal::anyhow!("cannot broadcast {:?} to {shape:?}", small.shape()))?;
            tract_ndarray::Zip::from(&mut big_view).and(&small_b).for_each(|x, &y| op(x, y));
        }
    }
    Ok(big)
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

/// The warm-up graph (issue 15): `src/warmup.onnx`, written by `training/warmup_graph.py`, a
/// tiny graph that takes the shipped image model's paths through tract (parsing, folding compact
/// kernels, padded, strided and depthwise convolutions, the OOD and colour outputs).
const WARMUP_GRAPH: &[u8] = include_bytes!("warmup.onnx");
const WARMUP_SHAPE: [usize; 4] = [1, 3, 64, 64];

/// Build the warm-up graph and run it `runs` times on a fixed pattern; returns the sum of its
/// outputs. The browser's worker calls it while the real model downloads, so that the browser
/// has compiled these paths with its optimising compiler by the time the model arrives.
pub fn warm_up(runs: usize) -> Result<f64> {
    let outputs = ["logits", "cam", "ood", "log_colour"];
    let (plan, _) = load("warm-up", WARMUP_GRAPH, "input0", &WARMUP_SHAPE, &outputs)?;
    let n: usize = WARMUP_SHAPE.iter().product();
    let input: Vec<f32> = (0..n).map(|i| ((i * 7919) % 255) as f32 / 255.0 - 0.5).collect();
    let mut sum = 0.0;
    for _ in 0..runs {
        for out in run("warm-up", &plan, &WARMUP_SHAPE, &input)? {
            sum += out.iter().map(|&v| f64::from(v)).sum::<f64>();
        }
    }
    Ok(sum)
}

/// One operator's share of a pass of the graph (see [`ImageNet::profile`]).
#[derive(Debug, Clone, Serialize)]
pub struct OpTime {
    /// tract's name for the optimised operator (e.g. `OptMatMul`, `DepthWise`).
    pub op: String,
    /// Milliseconds per pass, all its nodes together.
    pub ms_per_pass: f64,
    /// How many nodes of the plan run it.
    pub nodes: usize,
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
    /// Optional `[1]` distance from phone photos (issue 12), and `[1, 3]` per problem.
    pub ood_clinical: Option<&'a str>,
    pub ood_clinical_retake: Option<&'a str>,
    /// Optional `[1, 1]` photo-type logit (clinical vs dermoscopic).
    pub photo_type: Option<&'a str>,
    /// Optional `[1, 1]` logit of "not a skin lesion" (the gate's non-lesion head).
    pub non_lesion: Option<&'a str>,
    /// Optional `[1, 1]` colourfulness of the input.
    pub colour: Option<&'a str>,
    /// Optional second head: `[1, classes]` logits and `[1, classes, h, w]` maps.
    pub clinical: Option<(&'a str, &'a str)>,
}

/// What an image model returns for one input. Serde: the page's worker hands one quarter turn's
/// outputs from the wasm instance that ran it to the one that finishes the assessment (issue 15);
/// f32 -> JS number -> f32 is exact, so they arrive bit for bit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// Distance from phone photos, and from phone photos too dark, overexposed, blurry.
    pub ood_clinical: Option<f32>,
    pub ood_clinical_retake: Option<[f32; 3]>,
    /// Logit of "clinical photo", when the model has a photo-type head.
    pub photo_type: Option<f32>,
    /// Logit of "not a skin lesion", when the model has the gate's non-lesion head.
    pub non_lesion: Option<f32>,
    /// The input's colourfulness (0 = black and white), when the model computes it.
    pub colour: Option<f32>,
    /// The clinical head's logits and maps, when the model has one.
    pub clinical_logits: Option<Vec<f32>>,
    pub clinical_cam: Option<Vec<f32>>,
}

/// Which optional outputs a loaded model has (in this order after logits, embedding, cam).
#[derive(Debug, Clone, Copy, Default)]
struct Optional {
    ood: bool,
    ood_retake: bool,
    ood_clinical: bool,
    ood_clinical_retake: bool,
    photo_type: bool,
    non_lesion: bool,
    colour: bool,
    clinical: bool,
}

impl Optional {
    fn of(names: &ImageOutputNames<'_>) -> Optional {
        Optional {
            ood: names.ood.is_some(),
            ood_retake: names.ood_retake.is_some(),
            ood_clinical: names.ood_clinical.is_some(),
            ood_clinical_retake: names.ood_clinical_retake.is_some(),
            photo_type: names.photo_type.is_some(),
            non_lesion: names.non_lesion.is_some(),
            colour: names.colour.is_some(),
            clinical: names.clinical.is_some(),
        }
    }
}

/// A loaded image model.
pub struct ImageNet {
    name: String,
    plan: Plan,
    input_shape: Vec<usize>,
    /// `(classes, embedding width, cam height, cam width)`.
    dims: (usize, usize, usize, usize),
    has: Optional,
}

/// Checks one output's concrete shape.
struct ShapeCheck<'a> {
    model: &'a str,
}

impl ShapeCheck<'_> {
    fn err(&self, what: &str, got: &[usize], want: &str) -> Error {
        plain(
            self.model,
            format!("output `{what}` has shape {got:?}, expected {want}"),
        )
    }

    fn expect(&self, what: &str, got: &[usize], ok: bool, want: &str) -> Result<()> {
        if ok {
            Ok(())
        } else {
            Err(self.err(what, got, want))
        }
    }
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
            return Err(plain(
                name,
                "an ood_retake output needs an ood output".into(),
            ));
        }
        // The optional one-value and per-problem ([1, 3]) scores, in the order they are loaded.
        let one = |s: &[usize]| s.iter().product::<usize>() == 1;
        let per_problem = |s: &[usize]| s == [1, 3];
        let scores: [(Option<&str>, &dyn Fn(&[usize]) -> bool, &str); 7] = [
            (names.ood, &one, "[1]"),
            (names.ood_retake, &per_problem, "[1, 3]"),
            (names.ood_clinical, &one, "[1]"),
            (names.ood_clinical_retake, &per_problem, "[1, 3]"),
            (names.photo_type, &one, "[1]"),
            (names.non_lesion, &one, "[1]"),
            (names.colour, &one, "[1]"),
        ];
        let mut wanted = vec![names.logits, names.embedding, names.cam];
        wanted.extend(scores.iter().filter_map(|(n, _, _)| *n));
        if let Some((l, c)) = names.clinical {
            wanted.extend([l, c]);
        }
        let (plan, shapes) = load(name, bytes, input, input_shape, &wanted)?;
        let chk = ShapeCheck { model: name };
        chk.expect(
            names.logits,
            &shapes[0],
            shapes[0] == [1, classes],
            &format!("[1, {classes}]"),
        )?;
        let emb = match shapes[1].as_slice() {
            [1, d] if *d > 0 => *d,
            s => return Err(chk.err(names.embedding, s, "[1, D]")),
        };
        let (h, w) = match shapes[2].as_slice() {
            [1, k, h, w] if *k == classes && *h > 0 && *w > 0 => (*h, *w),
            s => return Err(chk.err(names.cam, s, &format!("[1, {classes}, h, w]"))),
        };
        let mut rest = shapes[3..].iter().map(Vec::as_slice);
        let none: &[usize] = &[];
        let mut next = || rest.next().unwrap_or(none);
        for (n, ok, want) in scores {
            if let Some(n) = n {
                let s = next();
                chk.expect(n, s, ok(s), want)?;
            }
        }
        if let Some((l, c)) = names.clinical {
            let (sl, sc) = (next(), next());
            chk.expect(l, sl, sl == [1, classes], &format!("[1, {classes}]"))?;
            chk.expect(
                c,
                sc,
                sc == [1, classes, h, w],
                &format!("[1, {classes}, {h}, {w}]"),
            )?;
        }
        Ok(ImageNet {
            name: name.to_string(),
            plan,
            input_shape: input_shape.to_vec(),
            dims: (classes, emb, h, w),
            has: Optional::of(&names),
        })
    }

    /// `(height, width)` of the class activation maps.
    pub fn cam_size(&self) -> (usize, usize) {
        (self.dims.2, self.dims.3)
    }

    /// Whether `o` has the shapes this model's [`ImageNet::run`] returns: for outputs that come
    /// back from another instance of the model (the page's parallel turns), before indexing them.
    pub fn check_outputs(&self, o: &ImageOutputs) -> Result<()> {
        let (classes, width, h, w) = self.dims;
        let has = self.has;
        let ok = o.logits.len() == classes
            && o.embedding.len() == width
            && o.cam.len() == classes * h * w
            && o.ood.is_some() == has.ood
            && o.ood_retake.is_some() == has.ood_retake
            && o.ood_clinical.is_some() == has.ood_clinical
            && o.ood_clinical_retake.is_some() == has.ood_clinical_retake
            && o.photo_type.is_some() == has.photo_type
            && o.non_lesion.is_some() == has.non_lesion
            && o.colour.is_some() == has.colour
            && o.clinical_logits.as_ref().map(Vec::len) == has.clinical.then_some(classes)
            && o.clinical_cam.as_ref().map(Vec::len) == has.clinical.then_some(classes * h * w);
        if ok {
            Ok(())
        } else {
            Err(plain(
                &self.name,
                "a quarter turn's outputs have the wrong shapes".into(),
            ))
        }
    }

    /// Side of the square model input (what a quarter turn turns).
    pub fn input_side(&self) -> usize {
        self.input_shape[self.input_shape.len() - 1]
    }

    /// Where the graph's time goes (the benchmark's profile): `runs` passes on `input`, each
    /// node timed with `now` (milliseconds), summed by operator, slowest first.
    pub fn profile(&self, input: &[f32], runs: u32, now: &dyn Fn() -> f64) -> Result<Vec<OpTime>> {
        let err = model_err(&self.name);
        let mut state = TypedSimpleState::new(&self.plan).map_err(&err)?;
        let mut by_op: std::collections::BTreeMap<String, (f64, std::collections::BTreeSet<usize>)> =
            Default::default();
        for _ in 0..runs {
            let tensor = Tensor::from_shape(&self.input_shape, input).map_err(&err)?;
            state
                .run_plan_with_eval(tvec!(tensor.into_tvalue()), |ctx, op_state, node, inputs| {
                    let t0 = now();
                    let out = tract_onnx::tract_core::plan::eval(ctx, op_state, node, inputs);
                    let entry = by_op.entry(node.op().name().to_string()).or_default();
                    entry.0 += now() - t0;
                    entry.1.insert(node.id);
                    out
                })
                .map_err(&err)?;
        }
        let mut ops: Vec<OpTime> = by_op
            .into_iter()
            .map(|(op, (ms, nodes))| OpTime { op, ms_per_pass: ms / f64::from(runs.max(1)), nodes: nodes.len() })
            .collect();
        ops.sort_by(|a, b| b.ms_per_pass.total_cmp(&a.ms_per_pass));
        Ok(ops)
    }

    /// Run on one preprocessed input of `input_shape`.
    pub fn run(&self, input: &[f32]) -> Result<ImageOutputs> {
        let mut out = run(&self.name, &self.plan, &self.input_shape, input)?.into_iter();
        let missing = || plain(&self.name, "missing outputs".into());
        let mut next = || out.next().ok_or_else(missing);
        let (logits, embedding, cam) = (next()?, next()?, next()?);
        let has = self.has;
        let mut scalar = |on: bool| -> Result<Option<Vec<f32>>> {
            if on {
                next().map(Some)
            } else {
                Ok(None)
            }
        };
        let ood = scalar(has.ood)?.and_then(|v| v.first().copied());
        let ood_retake = scalar(has.ood_retake)?.and_then(|v| <[f32; 3]>::try_from(v).ok());
        let ood_clinical = scalar(has.ood_clinical)?.and_then(|v| v.first().copied());
        let ood_clinical_retake =
            scalar(has.ood_clinical_retake)?.and_then(|v| <[f32; 3]>::try_from(v).ok());
        let photo_type = scalar(has.photo_type)?.and_then(|v| v.first().copied());
        let non_lesion = scalar(has.non_lesion)?.and_then(|v| v.first().copied());
        let colour = scalar(has.colour)?.and_then(|v| v.first().copied());
        let clinical_logits = scalar(has.clinical)?;
        let clinical_cam = scalar(has.clinical)?;
        if (has.ood_retake && ood_retake.is_none())
            || (has.ood_clinical_retake && ood_clinical_retake.is_none())
        {
            return Err(missing());
        }
        Ok(ImageOutputs {
            logits,
            embedding,
            cam,
            ood,
            ood_retake,
            ood_clinical,
            ood_clinical_retake,
            photo_type,
            non_lesion,
            colour,
            clinical_logits,
            clinical_cam,
        })
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
