//! The command line itself (native only; see main.rs).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use skinscan::evaluate;
use skinscan::{Assessment, Classifier, Error, Metadata, Warning};

/// What the command line can fail with: a bad command line, which only the CLI knows of, or the
/// library's own error. Both print as one line.
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Lib(#[from] Error),
}

type Result<T, E = CliError> = std::result::Result<T, E>;

fn usage<T>(message: impl Into<String>) -> Result<T> {
    Err(CliError::Usage(message.into()))
}

const USAGE: &str = "usage:
  skinscan classify IMAGE [--age N] [--sex male|female] [--site SITE]
                    [--photo-type auto|dermoscopic|clinical]
                    [--itch yes|no] [--grew yes|no] [--hurt yes|no] [--changed yes|no]
                    [--bleed yes|no] [--elevation yes|no] [--diameter MM]
                    [--json] [--models DIR] [--model ID]
  skinscan evaluate --images DIR --labels CSV [--json] [--predictions FILE] [--models DIR] [--model ID]
  skinscan bench IMAGE [--runs N] [--models DIR] [--model ID]

Models are read from ./models (or the crate's models/ folder) unless --models DIR is given;
--model ID picks an image model of the manifest (default: its default_image_model).";

pub fn main() {
    // A panic is a bug, but the user still gets one line, not a backtrace.
    std::panic::set_hook(Box::new(|_| {}));
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = std::panic::catch_unwind(|| run(&args));
    let message = match outcome {
        Ok(Ok(())) => return,
        Ok(Err(e)) => e.to_string(),
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown".into());
            format!("internal error: {what}")
        }
    };
    eprintln!("error: {}", message.replace('\n', " "));
    std::process::exit(2);
}

/// The metadata flags of `classify`: each is a field of `Metadata::parse` (by its own name or
/// an alias: `photo-type`, `diameter`).
const META_FLAGS: [&str; 11] = [
    "--age",
    "--sex",
    "--site",
    "--photo-type",
    "--itch",
    "--grew",
    "--hurt",
    "--changed",
    "--bleed",
    "--elevation",
    "--diameter",
];

/// Parsed options shared by both commands.
#[derive(Default)]
struct Opts {
    positional: Vec<String>,
    /// Metadata flags as given (`age`, `photo-type`, …), parsed by `Metadata::parse`.
    meta: Vec<(String, String)>,
    json: bool,
    models: Option<PathBuf>,
    model: Option<String>,
    images: Option<PathBuf>,
    labels: Option<PathBuf>,
    predictions: Option<PathBuf>,
    runs: Option<String>,
}

fn parse(args: &[String], allowed: &[&str]) -> Result<Opts> {
    let mut o = Opts::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if !a.starts_with("--") || a == "--" {
            o.positional.push(a.clone());
            continue;
        }
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (a.as_str(), None),
        };
        if !allowed.contains(&name) {
            return usage(format!("unknown option `{name}` (see `skinscan --help`)"));
        }
        if name == "--json" {
            o.json = true;
            continue;
        }
        let value = match inline {
            Some(v) => v,
            None => it
                .next()
                .cloned()
                .ok_or_else(|| CliError::Usage(format!("`{name}` needs a value")))?,
        };
        if META_FLAGS.contains(&name) {
            o.meta
                .push((name.trim_start_matches("--").to_string(), value));
            continue;
        }
        match name {
            "--models" => o.models = Some(value.into()),
            "--model" => o.model = Some(value),
            "--images" => o.images = Some(value.into()),
            "--labels" => o.labels = Some(value.into()),
            "--predictions" => o.predictions = Some(value.into()),
            "--runs" => o.runs = Some(value),
            _ => unreachable!("every allowed option is matched"),
        }
    }
    Ok(o)
}

fn run(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("classify") => classify(&args[1..]),
        Some("evaluate") => evaluate(&args[1..]),
        Some("bench") => bench(&args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => usage(format!(
            "unknown command `{other}`; expected `classify`, `evaluate` or `bench`"
        )),
        None => usage("missing command; try `skinscan classify IMAGE` or `skinscan --help`"),
    }
}

/// `--models DIR`, else `./models` when it has a manifest, else the crate's own `models/`.
fn models_dir(opt: &Option<PathBuf>) -> PathBuf {
    if let Some(d) = opt {
        return d.clone();
    }
    let local = PathBuf::from("models");
    if local.join("manifest.json").is_file() {
        local
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("models")
    }
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

fn classify(args: &[String]) -> Result<()> {
    let allowed: Vec<&str> = META_FLAGS
        .iter()
        .copied()
        .chain(["--json", "--models", "--model"])
        .collect();
    let o = parse(args, &allowed)?;
    let image = match o.positional.as_slice() {
        [one] => PathBuf::from(one),
        [] => return usage("classify needs an IMAGE path"),
        more => return usage(format!("classify takes one IMAGE, got {}", more.len())),
    };
    let meta = Metadata::parse(o.meta.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let bytes = read(&image)?;
    let classifier = Classifier::from_dir(models_dir(&o.models), o.model.as_deref())?;
    let a = classifier.classify(&bytes, &meta)?;
    if o.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&a).expect("an Assessment always serialises")
        );
    } else {
        print_assessment(&image, &a, &classifier);
    }
    Ok(())
}

fn pct(p: f64) -> String {
    format!("{:.1}%", p * 100.0)
}

fn print_assessment(path: &Path, a: &Assessment, c: &Classifier) {
    let name = |code: &str| {
        c.manifest()
            .diagnoses
            .iter()
            .find(|d| d.code == code)
            .map_or("", |d| d.name.as_str())
    };
    println!("{}", path.display());
    println!("  risk tier              {}", a.risk_tier.as_str());
    let pt = &a.photo_type;
    let p_clin = pt
        .probability
        .map_or(String::new(), |p| format!(", P(clinical) {}", pct(p)));
    println!(
        "  photo type             {} ({}{p_clin})",
        pt.kind.as_str(),
        serde_json::to_value(pt.source)
            .map_or(String::new(), |v| v.as_str().unwrap_or("").to_string())
    );
    if !a.metadata_used.is_empty() {
        println!("  details used           {}", a.metadata_used.join(", "));
    }
    match a.tabular_probability {
        Some(t) => println!(
            "  malignant probability  {} (image {}, metadata model {})",
            pct(a.malignant_probability),
            pct(a.image_probability),
            pct(t)
        ),
        None => println!(
            "  malignant probability  {} (image only)",
            pct(a.malignant_probability)
        ),
    }
    let top = a.diagnosis.get(&a.top_dx).unwrap_or(0.0);
    println!(
        "  top diagnosis          {} ({}) {}",
        a.top_dx,
        name(&a.top_dx),
        pct(top)
    );
    let all: Vec<String> = a
        .diagnosis
        .0
        .iter()
        .map(|(c, p)| format!("{c} {}", pct(*p)))
        .collect();
    println!("  diagnoses              {}", all.join(", "));
    let t = &a.timings_ms;
    println!(
        "  time                   {:.1} ms (decode {:.1}, preprocess {:.1}, cnn {:.1}, tabular {:.1}, ensemble {:.2})",
        t.total, t.decode, t.preprocess, t.cnn, t.tabular, t.ensemble
    );
    println!("  model                  {}", a.model_version);
    print_quality(a);
    for w in &a.warnings {
        println!("  warning: {}", warning_text(w));
    }
}

/// The photo check's lines of `classify`'s output.
fn print_quality(a: &Assessment) {
    match &a.quality {
        Some(q) => {
            let ood = q
                .ood_score
                .map_or(String::new(), |s| format!(" (OOD score {s:.3})"));
            let what = match q.verdict {
                skinscan::Verdict::Retake(r) => format!("retake: {}", r.as_str().replace('_', " ")),
                v => v.as_str().replace('_', " "),
            };
            println!("  photo quality          {what}{ood}");
            if let Some(advice) = q.verdict.advice() {
                println!("  advice                 {advice}");
            }
            if !q.verdict.is_ok() {
                println!(
                    "  ! the risk tier above is unreliable for this photo (see the warning below)"
                );
            }
        }
        None => println!("  photo quality          not checked (the model has no quality gate)"),
    }
}

/// The CLI's words for each warning code (the page has its own, in www/ui.js).
fn warning_text(w: &Warning) -> String {
    match *w {
        Warning::CloseUp => "Only clear, close-up photos of a single lesion give meaningful results; \
            selfies or unrelated images may produce false high-risk results. This is not a diagnosis."
            .into(),
        Warning::NoGate => "This model has no photo-quality check: blurry, badly lit or unrelated \
            photos are not detected."
            .into(),
        Warning::PhotoQuality { verdict, reason } => {
            let what = match (verdict, reason) {
                ("not_a_lesion", _) => "could not check this photo (it looks like something other than a close-up of skin)".to_string(),
                (v, Some(r)) => format!("{v} ({})", r.replace('_', " ")),
                (v, None) => v.to_string(),
            };
            format!("Photo check: {what}. The risk tier for this photo is unreliable (see the advice above).")
        }
        Warning::SmallImage { width, height } => {
            format!("image is very small ({width}x{height}); results are unreliable")
        }
    }
}

/// Model load time, then the first classification and the median / min of `--runs` more
/// (tract's run_bench habit: the first run pays for allocations, so it is shown apart).
fn bench(args: &[String]) -> Result<()> {
    let o = parse(args, &["--runs", "--models", "--model"])?;
    let image = match o.positional.as_slice() {
        [one] => PathBuf::from(one),
        _ => return usage("bench needs one IMAGE path"),
    };
    let runs: usize =
        match o.runs.as_deref() {
            None => 20,
            Some(r) => r.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                CliError::Usage(format!("--runs `{r}` is not a positive integer"))
            })?,
        };
    let bytes = read(&image)?;
    let t = Instant::now();
    let c = Classifier::from_dir(models_dir(&o.models), o.model.as_deref())?;
    let load_ms = t.elapsed().as_secs_f64() * 1e3;
    let first = c.classify(&bytes, &Metadata::default())?;
    let mut all = Vec::with_capacity(runs);
    for _ in 0..runs {
        all.push(c.classify(&bytes, &Metadata::default())?.timings_ms);
    }
    let stat = |f: fn(&skinscan::Timings) -> f64| {
        let mut v: Vec<f64> = all.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        (v[v.len() / 2], v[0])
    };
    let (w, h) = first.image_size;
    println!("{} ({w}x{h}), model {}", image.display(), c.model_version());
    println!("load + optimise     {load_ms:.1} ms");
    println!("stage               first    median of {runs}    min");
    let rows: [(&str, fn(&skinscan::Timings) -> f64); 6] = [
        ("decode", |t| t.decode),
        ("preprocess", |t| t.preprocess),
        ("cnn", |t| t.cnn),
        ("tabular", |t| t.tabular),
        ("ensemble", |t| t.ensemble),
        ("total", |t| t.total),
    ];
    for (name, f) in rows {
        let (median, min) = stat(f);
        println!(
            "{name:<18}{:>7.2}    {median:>12.2}    {min:>6.2}",
            f(&first.timings_ms)
        );
    }
    // Where one pass of the CNN goes, by tract operator (the same hook as the browser bench's).
    let input = c.preprocess_bytes(&bytes)?;
    let t0 = Instant::now();
    let now = move || t0.elapsed().as_secs_f64() * 1e3;
    let ops = c.profile_image_model(&input, runs as u32, &now)?;
    let pass: f64 = ops.iter().map(|o| o.ms_per_pass).sum();
    println!("cnn by operator     ms/pass  share  nodes   (one pass: {pass:.2} ms, {runs} passes)");
    for o in &ops {
        println!("  {:<24}{:>7.2}  {:>4.0}%  {:>5}", o.op, o.ms_per_pass, 100.0 * o.ms_per_pass / pass, o.nodes);
    }
    Ok(())
}

/// `DIR/stem` as given if it exists, else with a common photo extension.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// `evaluate`'s options, checked.
struct EvalArgs {
    images: PathBuf,
    labels: PathBuf,
    json: bool,
    predictions: Option<PathBuf>,
    models: Option<PathBuf>,
    model: Option<String>,
}

fn evaluate_args(args: &[String]) -> Result<EvalArgs> {
    let allowed = [
        "--images",
        "--labels",
        "--json",
        "--predictions",
        "--models",
        "--model",
    ];
    let o = parse(args, &allowed)?;
    if let Some(p) = o.positional.first() {
        return usage(format!("unexpected argument `{p}`"));
    }
    let Some(images) = o.images else {
        return usage("evaluate needs --images DIR");
    };
    let Some(labels) = o.labels else {
        return usage("evaluate needs --labels CSV");
    };
    if !images.is_dir() {
        return Err(Error::Io {
            path: images.display().to_string(),
            message: "not a directory".into(),
        }
        .into());
    }
    let (json, predictions, models, model) = (o.json, o.predictions, o.models, o.model);
    Ok(EvalArgs {
        images,
        labels,
        json,
        predictions,
        models,
        model,
    })
}

/// `--predictions FILE`: one CSV line per classified image, in row order.
struct Predictions {
    path: PathBuf,
    out: std::io::BufWriter<std::fs::File>,
}

impl Predictions {
    /// Created (with its header) before the long run, so a bad path fails fast.
    fn create(path: &Path) -> Result<Predictions, Error> {
        let f = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
        let mut p = Predictions {
            path: path.to_path_buf(),
            out: std::io::BufWriter::new(f),
        };
        p.line("image,malignant_probability,risk_tier,top_dx,quality,photo_type")?;
        Ok(p)
    }

    fn line(&mut self, text: &str) -> Result<(), Error> {
        writeln!(self.out, "{text}").map_err(|e| Error::io(&self.path, e))
    }

    fn write(
        mut self,
        rows: &[evaluate::LabelRow],
        results: &[skinscan::Result<Assessment>],
    ) -> Result<(), Error> {
        for (row, a) in rows.iter().zip(results) {
            let Ok(a) = a else { continue };
            let verdict = a.quality.as_ref().map(|q| q.verdict.to_string());
            self.line(&format!(
                "{},{},{},{},{},{}",
                csv_field(&row.image),
                a.malignant_probability,
                a.risk_tier.as_str(),
                a.top_dx,
                verdict.unwrap_or_default(),
                a.photo_type.kind.as_str()
            ))?;
        }
        self.out.flush().map_err(|e| Error::io(&self.path, e))
    }
}

fn read_labels(path: &Path) -> Result<Vec<evaluate::LabelRow>, Error> {
    let text = String::from_utf8(read(path)?).map_err(|_| Error::Labels {
        path: path.display().to_string(),
        line: 0,
        reason: "not UTF-8 text".into(),
    })?;
    evaluate::parse_labels(&text, &path.display().to_string())
}

/// Classify a labelled folder with the library's loop ([`evaluate::run`]), then print its
/// [`evaluate::Report`] (as JSON with `--json`).
fn evaluate(args: &[String]) -> Result<()> {
    let a = evaluate_args(args)?;
    let rows = read_labels(&a.labels)?;
    let classifier = Classifier::from_dir(models_dir(&a.models), a.model.as_deref())?;
    let predictions = a
        .predictions
        .as_deref()
        .map(Predictions::create)
        .transpose()?;
    let start = Instant::now();
    let results = evaluate::run(&classifier, &a.images, &rows);
    if let Some(p) = predictions {
        p.write(&rows, &results)?;
    }
    let (outcomes, failed) = evaluate::tally(&classifier, &rows, &results);
    let seconds = start.elapsed().as_secs_f64();
    let codes: Vec<&str> = classifier
        .manifest()
        .diagnoses
        .iter()
        .map(|d| d.code.as_str())
        .collect();
    let all_failed = outcomes.is_empty() && !rows.is_empty();
    let r = evaluate::report(&outcomes, &codes, failed, seconds);
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&r).expect("a Report always serialises")
        );
    } else {
        println!(
            "model                        {}",
            classifier.model_version()
        );
        print!("{r}");
    }
    if all_failed {
        return Err(Error::Labels {
            path: a.labels.display().to_string(),
            line: 0,
            reason: format!("all {} rows failed (see above)", rows.len()),
        }
        .into());
    }
    Ok(())
}
