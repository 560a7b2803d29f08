//! The command line itself (native only; see main.rs).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use skinscan::evaluate::{self, Failed, Failure, Outcome};
use skinscan::{Assessment, Classifier, Error, Metadata, Result};

const USAGE: &str = "usage:
  skinscan classify IMAGE [--age N] [--sex male|female] [--site SITE] [--json] [--models DIR] [--model ID]
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

/// Parsed options shared by both commands.
#[derive(Default)]
struct Opts {
    positional: Vec<String>,
    age: Option<String>,
    sex: Option<String>,
    site: Option<String>,
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
            return Err(Error::Usage(format!(
                "unknown option `{name}` (see `skinscan --help`)"
            )));
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
                .ok_or_else(|| Error::Usage(format!("`{name}` needs a value")))?,
        };
        match name {
            "--age" => o.age = Some(value),
            "--sex" => o.sex = Some(value),
            "--site" => o.site = Some(value),
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
        Some(other) => Err(Error::Usage(format!(
            "unknown command `{other}`; expected `classify`, `evaluate` or `bench`"
        ))),
        None => Err(Error::Usage(
            "missing command; try `skinscan classify IMAGE` or `skinscan --help`".into(),
        )),
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

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

fn classify(args: &[String]) -> Result<()> {
    let o = parse(
        args,
        &["--age", "--sex", "--site", "--json", "--models", "--model"],
    )?;
    let image = match o.positional.as_slice() {
        [one] => PathBuf::from(one),
        [] => return Err(Error::Usage("classify needs an IMAGE path".into())),
        more => {
            return Err(Error::Usage(format!(
                "classify takes one IMAGE, got {}",
                more.len()
            )))
        }
    };
    let age = match o.age.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(a) => Some(a.parse::<f64>().map_err(|_| Error::Input {
            field: "age".into(),
            reason: format!("`{a}` is not a number"),
        })?),
    };
    let meta = Metadata {
        age,
        sex: o.sex.filter(|s| !s.trim().is_empty()),
        site: o.site.filter(|s| !s.trim().is_empty()),
    };
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
            if !q.verdict.is_ok() {
                println!(
                    "  ! the risk tier above is unreliable for this photo (see the warning below)"
                );
            }
        }
        None => println!("  photo quality          not checked (the model has no quality gate)"),
    }
    for w in &a.warnings {
        println!("  warning: {w}");
    }
}

/// Model load time, then the first classification and the median / min of `--runs` more
/// (tract's run_bench habit: the first run pays for allocations, so it is shown apart).
fn bench(args: &[String]) -> Result<()> {
    let o = parse(args, &["--runs", "--models", "--model"])?;
    let image = match o.positional.as_slice() {
        [one] => PathBuf::from(one),
        _ => return Err(Error::Usage("bench needs one IMAGE path".into())),
    };
    let runs: usize = match o.runs.as_deref() {
        None => 20,
        Some(r) => r
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| Error::Usage(format!("--runs `{r}` is not a positive integer")))?,
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
    Ok(())
}

/// `DIR/stem` as given if it exists, else with a common photo extension.
fn find_image(dir: &Path, stem: &str) -> Option<PathBuf> {
    let direct = dir.join(stem);
    if direct.is_file() {
        return Some(direct);
    }
    ["jpg", "png", "jpeg", "JPG", "PNG", "JPEG"]
        .iter()
        .map(|ext| dir.join(format!("{stem}.{ext}")))
        .find(|p| p.is_file())
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn evaluate(args: &[String]) -> Result<()> {
    let o = parse(
        args,
        &[
            "--images",
            "--labels",
            "--json",
            "--predictions",
            "--models",
            "--model",
        ],
    )?;
    if let Some(p) = o.positional.first() {
        return Err(Error::Usage(format!("unexpected argument `{p}`")));
    }
    let images = o
        .images
        .clone()
        .ok_or_else(|| Error::Usage("evaluate needs --images DIR".into()))?;
    let labels_path = o
        .labels
        .clone()
        .ok_or_else(|| Error::Usage("evaluate needs --labels CSV".into()))?;
    if !images.is_dir() {
        return Err(Error::Io {
            path: images.display().to_string(),
            message: "not a directory".into(),
        });
    }
    let text = String::from_utf8(read(&labels_path)?).map_err(|_| Error::Labels {
        path: labels_path.display().to_string(),
        line: 0,
        reason: "not UTF-8 text".into(),
    })?;
    let rows = evaluate::parse_labels(&text, &labels_path.display().to_string())?;
    let classifier = Classifier::from_dir(models_dir(&o.models), o.model.as_deref())?;
    // Open the predictions file before the long run, so a bad path fails fast.
    let mut predictions = match &o.predictions {
        Some(p) => {
            let f = std::fs::File::create(p).map_err(|e| Error::io(p, e))?;
            let mut w = std::io::BufWriter::new(f);
            writeln!(w, "image,malignant_probability,risk_tier,top_dx,quality")
                .map_err(|e| Error::io(p, e))?;
            Some((p.clone(), w))
        }
        None => None,
    };

    let mut outcomes = Vec::with_capacity(rows.len());
    let mut failed = Failed::default();
    let start = Instant::now();
    let classify_row = |row: &evaluate::LabelRow| {
        let path = find_image(&images, &row.image).ok_or_else(|| Error::Io {
            path: images.join(&row.image).display().to_string(),
            message: "no such image (tried .jpg, .png, .jpeg)".into(),
        })?;
        let meta = row.metadata()?;
        classifier.classify(&read(&path)?, &meta)
    };
    // One contiguous share of the rows per core (tract runs each model on one thread); results
    // come back in row order, so the output does not depend on the number of cores.
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let share = rows.len().div_ceil(workers).max(1);
    let results: Vec<Result<skinscan::Assessment>> = std::thread::scope(|scope| {
        let handles: Vec<_> = rows
            .chunks(share)
            .map(|chunk| scope.spawn(|| chunk.iter().map(classify_row).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("an evaluate worker panicked"))
            .collect()
    });
    for (row, result) in rows.iter().zip(results) {
        match result {
            Ok(a) => {
                if let Some((p, w)) = predictions.as_mut() {
                    writeln!(
                        w,
                        "{},{},{},{},{}",
                        csv_field(&row.image),
                        a.malignant_probability,
                        a.risk_tier.as_str(),
                        a.top_dx,
                        a.quality
                            .as_ref()
                            .map_or(String::new(), |q| q.verdict.to_string())
                    )
                    .map_err(|e| Error::io(&*p, e))?;
                }
                outcomes.push(Outcome {
                    malignant: row.malignant,
                    dx: row.dx.clone(),
                    malignant_probability: a.malignant_probability,
                    risk_tier: a.risk_tier,
                    top_dx: a.top_dx,
                    verdict: a.quality.as_ref().map(|q| q.verdict),
                    expected: row.expected,
                });
            }
            Err(e) => {
                failed.count += 1;
                failed.images.push(Failure {
                    image: row.image.clone(),
                    error: e.to_string(),
                });
            }
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    if let Some((p, mut w)) = predictions {
        w.flush().map_err(|e| Error::io(&p, e))?;
    }
    let codes: Vec<&str> = classifier
        .manifest()
        .diagnoses
        .iter()
        .map(|d| d.code.as_str())
        .collect();
    let r = evaluate::report(
        &outcomes,
        &codes,
        classifier.image_model().decision_threshold,
        failed,
        seconds,
    );
    if o.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&r).expect("a Report always serialises")
        );
        return Ok(());
    }
    let opt = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.4}"));
    println!(
        "model                        {}",
        classifier.model_version()
    );
    println!("n                            {}", r.n);
    println!("roc_auc                      {}", opt(r.roc_auc));
    println!(
        "threshold                    {:.4} (the model's decision_threshold)",
        classifier.image_model().decision_threshold
    );
    println!("accuracy                     {}", opt(r.accuracy));
    println!("balanced_accuracy            {}", opt(r.balanced_accuracy));
    println!("sensitivity                  {}", opt(r.sensitivity));
    println!("specificity                  {}", opt(r.specificity));
    println!(
        "diagnosis_balanced_accuracy  {}",
        opt(r.diagnosis_balanced_accuracy)
    );
    println!("tiers                        benign  malignant");
    for (name, c) in [
        ("low", r.tiers.low),
        ("moderate", r.tiers.moderate),
        ("high", r.tiers.high),
    ] {
        println!("  {name:<27}{:>6}  {:>9}", c.benign, c.malignant);
    }
    let opt_pct = |v: Option<f64>| v.map_or("n/a".to_string(), pct);
    println!(
        "  malignant in low {}, benign in high {}",
        opt_pct(r.tiers.malignant_in_low_fraction),
        opt_pct(r.tiers.benign_in_high_fraction)
    );
    match &r.quality {
        Some(q) => {
            let share = |k: usize| pct(k as f64 / q.n.max(1) as f64);
            println!("photo quality (of {})", q.n);
            println!("  ok                         {:>6}  {}", q.ok, share(q.ok));
            println!(
                "  retake                     {:>6}  {}",
                q.retake,
                share(q.retake)
            );
            let rs = &q.reasons;
            for (name, k) in [
                ("blurry", rs.blurry),
                ("too_dark", rs.too_dark),
                ("overexposed", rs.overexposed),
                ("lesion_too_small", rs.lesion_too_small),
                ("not_centred", rs.not_centred),
            ] {
                println!("    {name:<25}{k:>6}  {}", share(k));
            }
            println!(
                "  not_a_lesion               {:>6}  {}",
                q.not_a_lesion,
                share(q.not_a_lesion)
            );
            if let (Some(k), Some(f)) = (q.as_expected, q.as_expected_fraction) {
                println!("  as expected                {k:>6}  {}", pct(f));
            }
        }
        None => {
            println!("photo quality                not checked (the model has no quality gate)")
        }
    }
    println!("images_per_second            {:.1}", r.images_per_second);
    println!("failed                       {}", r.failed.count);
    for f in &r.failed.images {
        println!("  {}: {}", f.image, f.error);
    }
    Ok(())
}
