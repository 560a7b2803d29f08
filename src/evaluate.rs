//! `skinscan evaluate`: the data sets' `labels.csv` and the metrics of a run, as training's
//! `metrics.py` computes them (ROC-AUC with tied ranks averaged, binary figures at the model's
//! decision threshold with `p >= threshold` positive, 7-class balanced accuracy over the classes
//! present in the truth, tiers by truth), plus the quality gate's verdict counts (issue 6) and,
//! for a gate test set whose labels have an `expected` column, how many came out as expected.
//! Rows without a `malignant` label (the gate set leaves it blank) count for the verdicts only;
//! with no labelled row at all, every malignancy metric is `null`.
//!
//! [`run`] classifies a labelled folder (one thread per core, results in row order) and
//! [`tally`] turns the results into [`Outcome`]s and failures; the rest is pure maths. The CLI
//! parses arguments and prints; tests reuse the same loop.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::ensemble::RiskTier;
use crate::error::{Error, Result};
use crate::manifest::PhotoKind;
use crate::quality::{Reason, Verdict};
use crate::tabular::Metadata;

/// A gate test set's `expected` cell: `ok`, `not_a_lesion`, `retake:<reason>`, or plain
/// `retake` (any reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    Verdict(Verdict),
    AnyRetake,
}

impl Expected {
    pub fn parse(s: &str) -> std::result::Result<Expected, String> {
        if s == "retake" {
            return Ok(Expected::AnyRetake);
        }
        s.parse().map(Expected::Verdict)
    }

    pub fn matches(self, v: Verdict) -> bool {
        match self {
            Expected::Verdict(e) => e == v,
            Expected::AnyRetake => matches!(v, Verdict::Retake(_)),
        }
    }
}

/// One row of a `labels.csv` (`image,malignant,dx[,age,sex,site][,photo_type][,itch,…,diameter_1]
/// [,lesion_id][,expected]`).
#[derive(Debug, Clone, PartialEq)]
pub struct LabelRow {
    /// 1-based line number in the file, for messages.
    pub line: usize,
    /// File stem under the images folder.
    pub image: String,
    /// Ground truth, when known.
    pub malignant: Option<bool>,
    /// Diagnosis code, when known (lowercase).
    pub dx: Option<String>,
    /// Raw metadata cells `(column, text)` of the columns that are tabular fields (`age`, `sex`,
    /// `site`, the six answers, `diameter_1`: `tabular::is_field`); parsed by
    /// [`LabelRow::metadata`].
    pub meta: Vec<(String, String)>,
    /// The photo's true kind (`dermoscopic` / `clinical`), when labelled: scores the detector.
    /// It is not given to the classifier, which detects the type as a user's page would.
    pub photo_type: Option<PhotoKind>,
    /// The quality verdict this image should get (gate test sets), when given.
    pub expected: Option<Expected>,
}

impl LabelRow {
    /// The row's metadata, parsed by `Metadata::parse`; a bad cell is an input error naming
    /// its field (the row then counts as failed).
    pub fn metadata(&self) -> Result<Metadata> {
        Metadata::parse(self.meta.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }
}

/// Split one CSV record (RFC 4180 quoting: `"a,b"`, `""` for a quote).
fn split_csv(line: &str) -> std::result::Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => cur.push(c),
            (false, '"') if cur.is_empty() => quoted = true,
            (false, ',') => out.push(std::mem::take(&mut cur)),
            (false, c) => cur.push(c),
        }
    }
    if quoted {
        return Err("unterminated quote".into());
    }
    out.push(cur);
    Ok(out)
}

/// Parse a labels CSV. Only `image` is required; `malignant`, `dx`, `age`, `sex`, `site` and
/// `expected` are used when present (blank cells = unknown) and other columns are ignored. `path` only labels error messages.
pub fn parse_labels(text: &str, path: &str) -> Result<Vec<LabelRow>> {
    let err = |line: usize, reason: String| Error::Labels {
        path: path.to_string(),
        line,
        reason,
    };
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')));
    let (hline, header) = lines
        .next()
        .ok_or_else(|| err(1, "the file is empty".into()))?;
    let header = split_csv(header.trim_start_matches('\u{feff}')).map_err(|e| err(hline, e))?;
    let columns = Columns::of(&header).map_err(|e| err(hline, e))?;
    let mut rows = Vec::new();
    for (n, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let cells = split_csv(line).map_err(|e| err(n, e))?;
        rows.push(columns.row(n, &cells).map_err(|e| err(n, e))?);
    }
    Ok(rows)
}

/// Where a labels header has each column this module reads.
struct Columns<'h> {
    width: usize,
    image: usize,
    malignant: Option<usize>,
    dx: Option<usize>,
    expected: Option<usize>,
    photo_type: Option<usize>,
    /// The tabular fields' columns, by name.
    meta: Vec<(&'h str, usize)>,
}

impl<'h> Columns<'h> {
    fn of(header: &'h [String]) -> std::result::Result<Columns<'h>, String> {
        let col = |name: &str| header.iter().position(|h| h.trim() == name);
        Ok(Columns {
            width: header.len(),
            image: col("image").ok_or("no `image` column")?,
            malignant: col("malignant"),
            dx: col("dx"),
            expected: col("expected"),
            photo_type: col("photo_type"),
            meta: header
                .iter()
                .enumerate()
                .map(|(i, h)| (h.trim(), i))
                .filter(|(h, _)| crate::tabular::is_field(h))
                .collect(),
        })
    }

    /// One record (line `n`); the error is the reason, without the place.
    fn row(&self, n: usize, cells: &[String]) -> std::result::Result<LabelRow, String> {
        if cells.len() != self.width {
            let got = cells.len();
            return Err(format!("{got} cells, but the header has {}", self.width));
        }
        let cell = |c: Option<usize>| c.map(|i| cells[i].trim().to_string()).unwrap_or_default();
        let image = cell(Some(self.image));
        if image.is_empty() {
            return Err("empty `image`".into());
        }
        let malignant = match cell(self.malignant).as_str() {
            "" => None,
            "0" => Some(false),
            "1" => Some(true),
            other => return Err(format!("`malignant` is `{other}`, expected 0, 1 or blank")),
        };
        let dx = Some(cell(self.dx).to_ascii_lowercase()).filter(|d| !d.is_empty());
        let expected = match cell(self.expected).as_str() {
            "" => None,
            e => Some(Expected::parse(e).map_err(|why| format!("`expected`: {why}"))?),
        };
        let photo_type = match cell(self.photo_type).as_str() {
            "" => None,
            t => Some(PhotoKind::parse(t).ok_or_else(|| {
                format!("`photo_type` is `{t}`, expected dermoscopic, clinical or blank")
            })?),
        };
        let meta = self
            .meta
            .iter()
            .map(|&(name, i)| (name.to_string(), cells[i].trim().to_string()))
            .collect();
        Ok(LabelRow {
            line: n,
            image,
            malignant,
            dx,
            meta,
            photo_type,
            expected,
        })
    }
}

/// ROC-AUC of `scores` for `truth` (Mann–Whitney U, tied scores share their average rank).
/// `None` when either class is absent.
pub fn roc_auc(truth: &[bool], scores: &[f64]) -> Option<f64> {
    let n_pos = truth.iter().filter(|&&t| t).count();
    let n_neg = truth.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return None;
    }
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut rank_sum_pos = 0.0;
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0; // ranks are 1-based
        rank_sum_pos += avg_rank * idx[i..=j].iter().filter(|&&k| truth[k]).count() as f64;
        i = j + 1;
    }
    let (p, n) = (n_pos as f64, n_neg as f64);
    Some((rank_sum_pos - p * (p + 1.0) / 2.0) / (p * n))
}

/// Binary figures at a threshold (`score >= threshold` is malignant).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Binary {
    pub accuracy: f64,
    pub balanced_accuracy: f64,
    pub sensitivity: f64,
    pub specificity: f64,
}

/// As training's `metrics.binary_at` (empty classes count as 0 recall, not NaN).
pub fn binary_at(truth: &[bool], scores: &[f64], threshold: f64) -> Binary {
    let (mut tp, mut tn, mut fp, mut fneg) = (0usize, 0usize, 0usize, 0usize);
    for (&t, &s) in truth.iter().zip(scores) {
        match (t, s >= threshold) {
            (true, true) => tp += 1,
            (true, false) => fneg += 1,
            (false, true) => fp += 1,
            (false, false) => tn += 1,
        }
    }
    let sens = tp as f64 / (tp + fneg).max(1) as f64;
    let spec = tn as f64 / (tn + fp).max(1) as f64;
    Binary {
        accuracy: (tp + tn) as f64 / truth.len().max(1) as f64,
        balanced_accuracy: (sens + spec) / 2.0,
        sensitivity: sens,
        specificity: spec,
    }
}

/// Mean per-class recall over the classes that occur in `truth` (scikit-learn's
/// `balanced_accuracy_score`). `None` without rows.
pub fn balanced_accuracy(truth: &[usize], pred: &[usize]) -> Option<f64> {
    let mut per: BTreeMap<usize, (usize, usize)> = BTreeMap::new();
    for (&t, &p) in truth.iter().zip(pred) {
        let e = per.entry(t).or_default();
        e.0 += 1;
        e.1 += usize::from(t == p);
    }
    if per.is_empty() {
        return None;
    }
    Some(
        per.values()
            .map(|&(n, ok)| ok as f64 / n as f64)
            .sum::<f64>()
            / per.len() as f64,
    )
}

/// Benign / malignant counts in one tier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct TierCounts {
    pub benign: usize,
    pub malignant: usize,
}

/// Tier-by-truth table, as training's `metrics.tier_table`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TierTable {
    pub low: TierCounts,
    pub moderate: TierCounts,
    pub high: TierCounts,
    /// Share of the malignant cases that landed in `low` (the dangerous miss); null without
    /// labelled rows.
    pub malignant_in_low_fraction: Option<f64>,
    /// Share of the benign cases that landed in `high`; null without labelled rows.
    pub benign_in_high_fraction: Option<f64>,
}

pub fn tier_table(truth: &[bool], tiers: &[RiskTier]) -> TierTable {
    let mut t = TierTable::default();
    for (&y, &tier) in truth.iter().zip(tiers) {
        let cell = match tier {
            RiskTier::Low => &mut t.low,
            RiskTier::Moderate => &mut t.moderate,
            RiskTier::High => &mut t.high,
        };
        if y {
            cell.malignant += 1;
        } else {
            cell.benign += 1;
        }
    }
    let n_mal = truth.iter().filter(|&&y| y).count();
    let n_ben = truth.len() - n_mal;
    if !truth.is_empty() {
        // As training's tier_table: an absent class counts as 0, not NaN.
        t.malignant_in_low_fraction = Some(t.low.malignant as f64 / n_mal.max(1) as f64);
        t.benign_in_high_fraction = Some(t.high.benign as f64 / n_ben.max(1) as f64);
    }
    t
}

/// One image that could not be classified.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    pub image: String,
    pub error: String,
}

/// Failed images: how many, and which.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Failed {
    pub count: usize,
    pub images: Vec<Failure>,
}

/// Retake counts per reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ReasonCounts {
    pub blurry: usize,
    pub too_dark: usize,
    pub overexposed: usize,
    pub lesion_too_small: usize,
    pub not_centred: usize,
}

impl ReasonCounts {
    fn add(&mut self, r: Reason) {
        *match r {
            Reason::Blurry => &mut self.blurry,
            Reason::TooDark => &mut self.too_dark,
            Reason::Overexposed => &mut self.overexposed,
            Reason::LesionTooSmall => &mut self.lesion_too_small,
            Reason::NotCentred => &mut self.not_centred,
        } += 1;
    }
}

/// The quality gate's verdicts over the classified images.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct QualityCounts {
    /// Images with a verdict.
    pub n: usize,
    pub ok: usize,
    pub retake: usize,
    pub not_a_lesion: usize,
    pub reasons: ReasonCounts,
    /// Images whose verdict is their `expected` one; null when no row has an `expected` value.
    pub as_expected: Option<usize>,
    /// `as_expected` over the classified images with an `expected` value.
    pub as_expected_fraction: Option<f64>,
}

/// Verdict counts; `None` when no outcome has a verdict (a manifest without a quality gate).
pub fn quality_counts(outcomes: &[Outcome]) -> Option<QualityCounts> {
    let mut q = QualityCounts::default();
    let (mut with_expected, mut right) = (0usize, 0usize);
    for o in outcomes {
        let Some(v) = o.verdict else { continue };
        q.n += 1;
        match v {
            Verdict::Ok => q.ok += 1,
            Verdict::Retake(r) => {
                q.retake += 1;
                q.reasons.add(r);
            }
            Verdict::NotALesion => q.not_a_lesion += 1,
        }
        if let Some(e) = o.expected {
            with_expected += 1;
            right += usize::from(e.matches(v));
        }
    }
    if q.n == 0 {
        return None;
    }
    if with_expected > 0 {
        q.as_expected = Some(right);
        q.as_expected_fraction = Some(right as f64 / with_expected as f64);
    }
    Some(q)
}

/// `evaluate --json`: exactly these keys.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Images classified that have a known `malignant` label (the rows the metrics cover).
    pub n: usize,
    /// The malignancy metrics: null when undefined (`roc_auc` needs both classes; all of them
    /// need at least one labelled row).
    pub roc_auc: Option<f64>,
    pub accuracy: Option<f64>,
    pub balanced_accuracy: Option<f64>,
    pub sensitivity: Option<f64>,
    pub specificity: Option<f64>,
    /// 7-class balanced accuracy of the top diagnosis, over rows whose `dx` is a manifest code.
    pub diagnosis_balanced_accuracy: Option<f64>,
    pub tiers: TierTable,
    /// Verdict counts of the quality gate; null when the model has no gate.
    pub quality: Option<QualityCounts>,
    /// Which head judged the photos, and how often that was the labelled type.
    pub photo_type: PhotoTypeCounts,
    pub images_per_second: f64,
    pub failed: Failed,
}

/// Photo types used, and against the labels' `photo_type` column where it is given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct PhotoTypeCounts {
    pub dermoscopic: usize,
    pub clinical: usize,
    /// Rows with a labelled type, and how many were judged as that type.
    pub labelled: usize,
    pub correct: usize,
    /// `correct / labelled`; null without labelled rows.
    pub accuracy: Option<f64>,
}

fn photo_type_counts(outcomes: &[Outcome]) -> PhotoTypeCounts {
    let mut c = PhotoTypeCounts::default();
    for o in outcomes {
        match o.photo_type {
            PhotoKind::Dermoscopic => c.dermoscopic += 1,
            PhotoKind::Clinical => c.clinical += 1,
        }
        if let Some(want) = o.expected_photo_type {
            c.labelled += 1;
            c.correct += usize::from(want == o.photo_type);
        }
    }
    c.accuracy = (c.labelled > 0).then(|| c.correct as f64 / c.labelled as f64);
    c
}

/// One classified image, as the metrics need it.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub malignant: Option<bool>,
    pub dx: Option<String>,
    pub malignant_probability: f64,
    pub risk_tier: RiskTier,
    pub top_dx: String,
    /// The quality gate's verdict, when the model has a gate.
    pub verdict: Option<Verdict>,
    /// The labels' `expected` verdict, when given.
    pub expected: Option<Expected>,
    /// The photo type whose head judged it, and the labelled one.
    pub photo_type: PhotoKind,
    pub expected_photo_type: Option<PhotoKind>,
    /// That head's decision threshold (binary figures use each photo's own head).
    pub decision_threshold: f64,
}

/// The image file of a labels row: `image` as given, else with a usual extension.
#[cfg(not(target_arch = "wasm32"))]
pub fn find_image(dir: &std::path::Path, stem: &str) -> Option<std::path::PathBuf> {
    let direct = dir.join(stem);
    if direct.is_file() {
        return Some(direct);
    }
    ["jpg", "png", "jpeg", "JPG", "PNG", "JPEG"]
        .iter()
        .map(|ext| dir.join(format!("{stem}.{ext}")))
        .find(|p| p.is_file())
}

/// Classify every row's image from `images` with the row's metadata: one contiguous share of
/// the rows per core (tract runs each model on one thread); results come back in row order,
/// so nothing depends on the number of cores. A missing image or bad metadata is that row's
/// error.
#[cfg(not(target_arch = "wasm32"))]
pub fn run(
    c: &crate::pipeline::Classifier,
    images: &std::path::Path,
    rows: &[LabelRow],
) -> Vec<Result<crate::pipeline::Assessment>> {
    let classify_row = |row: &LabelRow| {
        let path = find_image(images, &row.image).ok_or_else(|| Error::Io {
            path: images.join(&row.image).display().to_string(),
            message: "no such image (tried .jpg, .png, .jpeg)".into(),
        })?;
        let meta = row.metadata()?;
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        c.classify(&bytes, &meta)
    };
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let share = rows.len().div_ceil(workers).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = rows
            .chunks(share)
            .map(|chunk| scope.spawn(move || chunk.iter().map(classify_row).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join().unwrap_or_else(|_| {
                    vec![Err(Error::Model {
                        model: "evaluate".into(),
                        message: "a worker panicked".into(),
                    })]
                })
            })
            .collect()
    })
}

/// [`run`]'s results as outcomes (with each photo's head threshold) and failures.
#[cfg(not(target_arch = "wasm32"))]
pub fn tally(
    c: &crate::pipeline::Classifier,
    rows: &[LabelRow],
    results: &[Result<crate::pipeline::Assessment>],
) -> (Vec<Outcome>, Failed) {
    let mut outcomes = Vec::with_capacity(rows.len());
    let mut failed = Failed::default();
    for (row, result) in rows.iter().zip(results) {
        match result {
            Ok(a) => outcomes.push(Outcome {
                malignant: row.malignant,
                dx: row.dx.clone(),
                malignant_probability: a.malignant_probability,
                risk_tier: a.risk_tier,
                top_dx: a.top_dx.clone(),
                verdict: a.quality.as_ref().map(|q| q.verdict),
                expected: row.expected,
                photo_type: a.photo_type.kind,
                expected_photo_type: row.photo_type,
                decision_threshold: c.image_model().head(a.photo_type.kind).decision_threshold,
            }),
            Err(e) => {
                failed.count += 1;
                failed.images.push(Failure {
                    image: row.image.clone(),
                    error: e.to_string(),
                });
            }
        }
    }
    (outcomes, failed)
}

/// Metrics over `outcomes`; `codes` are the manifest's diagnosis codes. The binary figures
/// call a photo positive from its head's `decision_threshold` on.
pub fn report(outcomes: &[Outcome], codes: &[&str], failed: Failed, seconds: f64) -> Report {
    let labelled: Vec<&Outcome> = outcomes.iter().filter(|o| o.malignant.is_some()).collect();
    let truth: Vec<bool> = labelled.iter().map(|o| o.malignant == Some(true)).collect();
    let scores: Vec<f64> = labelled.iter().map(|o| o.malignant_probability).collect();
    let tiers: Vec<RiskTier> = labelled.iter().map(|o| o.risk_tier).collect();
    // Each photo against its own head's threshold: shift every score so the cut is at 0.
    let margins: Vec<f64> = labelled
        .iter()
        .map(|o| o.malignant_probability - o.decision_threshold)
        .collect();
    let b = (!truth.is_empty()).then(|| binary_at(&truth, &margins, 0.0));
    let index = |c: &str| codes.iter().position(|k| *k == c);
    let (dx_true, dx_pred): (Vec<usize>, Vec<usize>) = outcomes
        .iter()
        .filter_map(|o| Some((index(o.dx.as_deref()?)?, index(&o.top_dx)?)))
        .unzip();
    Report {
        n: labelled.len(),
        roc_auc: roc_auc(&truth, &scores),
        accuracy: b.map(|b| b.accuracy),
        balanced_accuracy: b.map(|b| b.balanced_accuracy),
        sensitivity: b.map(|b| b.sensitivity),
        specificity: b.map(|b| b.specificity),
        diagnosis_balanced_accuracy: balanced_accuracy(&dx_true, &dx_pred),
        tiers: tier_table(&truth, &tiers),
        quality: quality_counts(outcomes),
        photo_type: photo_type_counts(outcomes),
        images_per_second: if seconds > 0.0 {
            outcomes.len() as f64 / seconds
        } else {
            0.0
        },
        failed,
    }
}

/// A share as the report prints it: `12.3%`.
fn pct(p: f64) -> String {
    format!("{:.1}%", p * 100.0)
}

/// The report as `skinscan evaluate` prints it (the CLI puts a `model` line first): one figure
/// a line, `n/a` where a metric is undefined.
impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let opt = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.4}"));
        writeln!(f, "n                            {}", self.n)?;
        writeln!(f, "roc_auc                      {}", opt(self.roc_auc))?;
        writeln!(
            f,
            "threshold                    each photo type's decision_threshold"
        )?;
        writeln!(f, "accuracy                     {}", opt(self.accuracy))?;
        writeln!(
            f,
            "balanced_accuracy            {}",
            opt(self.balanced_accuracy)
        )?;
        writeln!(f, "sensitivity                  {}", opt(self.sensitivity))?;
        writeln!(f, "specificity                  {}", opt(self.specificity))?;
        let dx = opt(self.diagnosis_balanced_accuracy);
        writeln!(f, "diagnosis_balanced_accuracy  {dx}")?;
        write!(f, "{}", self.tiers)?;
        match &self.quality {
            Some(q) => write!(f, "{q}")?,
            None => writeln!(
                f,
                "photo quality                not checked (the model has no quality gate)"
            )?,
        }
        let pt = &self.photo_type;
        let right = pt.accuracy.map_or(String::new(), |a| {
            format!(
                ", {} of {} as labelled ({})",
                pt.correct,
                pt.labelled,
                pct(a)
            )
        });
        writeln!(
            f,
            "photo_type                   dermoscopic {}, clinical {}{right}",
            pt.dermoscopic, pt.clinical
        )?;
        writeln!(
            f,
            "images_per_second            {:.1}",
            self.images_per_second
        )?;
        writeln!(f, "failed                       {}", self.failed.count)?;
        for x in &self.failed.images {
            writeln!(f, "  {}: {}", x.image, x.error)?;
        }
        Ok(())
    }
}

impl std::fmt::Display for TierTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "tiers                        benign  malignant")?;
        for (name, c) in [
            ("low", self.low),
            ("moderate", self.moderate),
            ("high", self.high),
        ] {
            writeln!(f, "  {name:<27}{:>6}  {:>9}", c.benign, c.malignant)?;
        }
        let opt_pct = |v: Option<f64>| v.map_or("n/a".to_string(), pct);
        writeln!(
            f,
            "  malignant in low {}, benign in high {}",
            opt_pct(self.malignant_in_low_fraction),
            opt_pct(self.benign_in_high_fraction)
        )
    }
}

impl std::fmt::Display for QualityCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let share = |k: usize| pct(k as f64 / self.n.max(1) as f64);
        writeln!(f, "photo quality (of {})", self.n)?;
        writeln!(
            f,
            "  ok                         {:>6}  {}",
            self.ok,
            share(self.ok)
        )?;
        writeln!(
            f,
            "  retake                     {:>6}  {}",
            self.retake,
            share(self.retake)
        )?;
        let rs = &self.reasons;
        for (name, k) in [
            ("blurry", rs.blurry),
            ("too_dark", rs.too_dark),
            ("overexposed", rs.overexposed),
            ("lesion_too_small", rs.lesion_too_small),
            ("not_centred", rs.not_centred),
        ] {
            writeln!(f, "    {name:<25}{k:>6}  {}", share(k))?;
        }
        let nl = self.not_a_lesion;
        writeln!(f, "  not_a_lesion               {nl:>6}  {}", share(nl))?;
        if let (Some(k), Some(x)) = (self.as_expected, self.as_expected_fraction) {
            writeln!(f, "  as expected                {k:>6}  {}", pct(x))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_matches_hand_counts_with_ties() {
        // Pairs (pos, neg): pos {0.9, 0.5}, neg {0.5, 0.1}: 0.9>0.5, 0.9>0.1, 0.5=0.5 (half), 0.5>0.1
        // -> (1 + 1 + 0.5 + 1) / 4.
        let auc = roc_auc(&[true, true, false, false], &[0.9, 0.5, 0.5, 0.1]).unwrap();
        assert!((auc - 0.875).abs() < 1e-12);
        assert_eq!(roc_auc(&[true, false], &[0.1, 0.9]), Some(0.0));
        assert_eq!(roc_auc(&[true, true], &[0.1, 0.9]), None);
    }

    #[test]
    fn binary_and_balanced_accuracy() {
        let b = binary_at(
            &[true, true, false, false, false],
            &[0.5, 0.4, 0.5, 0.1, 0.2],
            0.5,
        );
        assert_eq!(b.sensitivity, 0.5);
        assert!((b.specificity - 2.0 / 3.0).abs() < 1e-12);
        assert!((b.accuracy - 0.6).abs() < 1e-12);
        // Class 0: 2/3 right, class 2: 1/1; class 1 never true so not averaged.
        let ba = balanced_accuracy(&[0, 0, 0, 2], &[0, 0, 1, 2]).unwrap();
        assert!((ba - (2.0 / 3.0 + 1.0) / 2.0).abs() < 1e-12);
        assert_eq!(balanced_accuracy(&[], &[]), None);
    }

    #[test]
    fn parses_labels_with_quotes_and_blanks() {
        let csv = "image,malignant,dx,age,sex,site,lesion_id\r\n\
                   a,1,mel,65,male,\"posterior torso\",L1\r\n\
                   b,,,,,,\r\n\
                   \"c,d\",0,NV,,female,head/neck,\r\n";
        let rows = parse_labels(csv, "x.csv").unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].malignant, Some(true));
        assert_eq!(
            rows[0].metadata().unwrap().site.as_deref(),
            Some("posterior torso")
        );
        assert_eq!(rows[1].malignant, None);
        assert!(!rows[1].metadata().unwrap().any());
        assert_eq!(rows[2].image, "c,d");
        assert_eq!(rows[2].dx.as_deref(), Some("nv"));
        let bad = parse_labels("image,malignant\na,yes\n", "x.csv");
        assert!(matches!(bad, Err(Error::Labels { line: 2, .. })));
        assert!(matches!(
            parse_labels("name\na\n", "x.csv"),
            Err(Error::Labels { line: 1, .. })
        ));
        assert!(matches!(
            parse_labels("image,age\na\n", "x.csv"),
            Err(Error::Labels { line: 2, .. })
        ));
        let row = &parse_labels("image,age\na,old\n", "x.csv").unwrap()[0];
        assert!(matches!(row.metadata(), Err(Error::Input { ref field, .. }) if field == "age"));
    }

    #[test]
    fn report_counts_only_labelled_rows_and_known_codes() {
        let o = |m: Option<bool>, dx: Option<&str>, p: f64, t: RiskTier, top: &str| Outcome {
            malignant: m,
            dx: dx.map(String::from),
            malignant_probability: p,
            risk_tier: t,
            top_dx: top.into(),
            verdict: None,
            expected: None,
            photo_type: PhotoKind::Dermoscopic,
            expected_photo_type: Some(PhotoKind::Dermoscopic),
            decision_threshold: 0.5,
        };
        let outs = [
            o(Some(true), Some("mel"), 0.9, RiskTier::High, "mel"),
            o(Some(false), Some("nv"), 0.2, RiskTier::Low, "nv"),
            o(Some(true), Some("scc"), 0.1, RiskTier::Low, "nv"),
            o(None, None, 0.5, RiskTier::Moderate, "nv"),
        ];
        let r = report(&outs, &["nv", "mel"], Failed::default(), 2.0);
        assert_eq!(r.n, 3);
        assert_eq!(r.roc_auc, Some(0.5));
        assert_eq!(r.sensitivity, Some(0.5));
        assert_eq!(r.diagnosis_balanced_accuracy, Some(1.0));
        assert_eq!(
            r.tiers.low,
            TierCounts {
                benign: 1,
                malignant: 1
            }
        );
        assert_eq!(r.tiers.malignant_in_low_fraction, Some(0.5));
        assert_eq!(r.quality, None);
        assert_eq!(r.images_per_second, 2.0);
        let keys: Vec<String> = serde_json::to_value(&r)
            .unwrap()
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        let mut want = [
            "n",
            "roc_auc",
            "accuracy",
            "balanced_accuracy",
            "sensitivity",
            "specificity",
            "diagnosis_balanced_accuracy",
            "tiers",
            "quality",
            "photo_type",
            "images_per_second",
            "failed",
        ];
        want.sort();
        let mut keys = keys;
        keys.sort();
        assert_eq!(keys, want);
    }

    #[test]
    fn answers_photo_type_and_per_head_thresholds() {
        let csv = "image,malignant,dx,age,photo_type,itch,grew,diameter_1,region\n\
                   a,1,bcc,60,clinical,True,UNK,6.5,FACE\n\
                   b,0,nv,,dermoscopic,,,,\n\
                   c,1,mel,,,maybe,,,\n";
        let rows = parse_labels(csv, "x.csv").unwrap();
        let m = rows[0].metadata().unwrap();
        assert_eq!(
            (m.age, m.itch, m.grew, m.diameter_mm),
            (Some(60.0), Some(true), None, Some(6.5))
        );
        assert_eq!(m.given(), ["age", "itch", "diameter_mm"]);
        assert_eq!(
            m.photo_type, None,
            "the labelled type is the truth, not an input"
        );
        assert_eq!(rows[0].photo_type, Some(PhotoKind::Clinical));
        assert_eq!(rows[2].photo_type, None);
        assert!(
            matches!(rows[2].metadata(), Err(Error::Input { ref field, .. }) if field == "itch")
        );
        let bad = parse_labels("image,photo_type\na,xray\n", "x.csv");
        assert!(matches!(bad, Err(Error::Labels { line: 2, .. })));

        let o = |p: f64, kind: PhotoKind, thr: f64| Outcome {
            malignant: Some(true),
            dx: None,
            malignant_probability: p,
            risk_tier: RiskTier::Moderate,
            top_dx: "nv".into(),
            verdict: None,
            expected: None,
            photo_type: kind,
            expected_photo_type: Some(PhotoKind::Clinical),
            decision_threshold: thr,
        };
        // 0.3 is positive for a head with threshold 0.2, negative for one with 0.4.
        let outs = [
            o(0.3, PhotoKind::Clinical, 0.2),
            o(0.3, PhotoKind::Dermoscopic, 0.4),
        ];
        let r = report(&outs, &["nv"], Failed::default(), 1.0);
        assert_eq!(r.sensitivity, Some(0.5));
        let c = r.photo_type;
        assert_eq!(
            (c.dermoscopic, c.clinical, c.labelled, c.correct),
            (1, 1, 2, 1)
        );
        assert_eq!(c.accuracy, Some(0.5));
    }

    #[test]
    fn gate_set_labels_count_verdicts_without_malignancy_metrics() {
        let csv = "image,malignant,dx,age,sex,site,expected\n\
                   cat,,,,,,not_a_lesion\n\
                   a_blurry,,,,,,retake:blurry\n\
                   a_dark,,,,,,retake:too_dark\n\
                   b_dark,,,,,,retake\n\
                   plain,,,,,,\n";
        let rows = parse_labels(csv, "x.csv").unwrap();
        assert_eq!(
            rows[0].expected,
            Some(Expected::Verdict(Verdict::NotALesion))
        );
        assert_eq!(
            rows[1].expected,
            Some(Expected::Verdict(Verdict::Retake(Reason::Blurry)))
        );
        assert_eq!(rows[3].expected, Some(Expected::AnyRetake));
        assert_eq!(rows[4].expected, None);
        let bad = parse_labels("image,expected\na,retake:fuzzy\n", "x.csv");
        assert!(
            matches!(bad, Err(Error::Labels { line: 2, ref reason, .. }) if reason.contains("fuzzy"))
        );

        let got = [
            Verdict::NotALesion,
            Verdict::Retake(Reason::Blurry),
            Verdict::Retake(Reason::Blurry),
            Verdict::Retake(Reason::TooDark),
            Verdict::Ok,
        ];
        let outs: Vec<Outcome> = rows
            .iter()
            .zip(got)
            .map(|(r, v)| Outcome {
                malignant: r.malignant,
                dx: r.dx.clone(),
                malignant_probability: 0.3,
                risk_tier: RiskTier::Moderate,
                top_dx: "nv".into(),
                verdict: Some(v),
                expected: r.expected,
                photo_type: PhotoKind::Clinical,
                expected_photo_type: r.photo_type,
                decision_threshold: 0.5,
            })
            .collect();
        let r = report(&outs, &["nv", "mel"], Failed::default(), 1.0);
        assert_eq!(r.n, 0);
        assert_eq!(
            (r.roc_auc, r.accuracy, r.sensitivity, r.specificity),
            (None, None, None, None)
        );
        assert_eq!(r.tiers.malignant_in_low_fraction, None);
        let q = r.quality.unwrap();
        assert_eq!((q.n, q.ok, q.retake, q.not_a_lesion), (5, 1, 3, 1));
        assert_eq!(
            q.reasons,
            ReasonCounts {
                blurry: 2,
                too_dark: 1,
                ..Default::default()
            }
        );
        // cat, a_blurry and b_dark (any retake) as expected; a_dark is blurry, not too dark;
        // `plain` has no expectation.
        assert_eq!(q.as_expected, Some(3));
        assert_eq!(q.as_expected_fraction, Some(0.75));
        let v = serde_json::to_value(&q).unwrap();
        assert_eq!(v["reasons"]["lesion_too_small"], 0);
        let none = quality_counts(
            &outs
                .iter()
                .map(|o| Outcome {
                    expected: None,
                    ..o.clone()
                })
                .collect::<Vec<_>>(),
        );
        assert_eq!(none.unwrap().as_expected, None);
    }
}
