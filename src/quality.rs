//! The photo-quality and not-a-lesion gate (issue 6): the twin of
//! `training/skinscan_train/quality.py` (`measures`, `verdict`), which is the specification.
//!
//! Every measure is taken on the canonical `size x size` float RGB image the pipeline already
//! computes for the model (decoded, squashed, values 0..255, not rounded), on its luminance
//! `Y = 0.299 R + 0.587 G + 0.114 B` (f32, as numpy), inside the central window (the middle
//! `center` fraction of each side, so a dermatoscope's dark vignette does not count).
//! Accumulations are f64, as numpy's on the f32 image, so the figures agree with training's to
//! ~1e-9 relative; the box blur repeats numpy's summed-area arithmetic step for step, so the
//! lesion mask is the same pixel for pixel.
//!
//! All cuts come from the manifest's `quality` block. The only constants here are the ones
//! `quality.py` itself hard-codes: the luma weights, the 4-neighbour Laplacian, the clipping
//! level 250 and the 255 that scales the contrast.

use std::fmt;
use std::str::FromStr;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::manifest::{PhotoKind, Quality, QualityParams, QualityThresholds, RetakeMax};
use crate::model::ImageOutputs;

/// ITU-R BT.601 luma weights (`quality.luminance`).
pub const LUMA: [f32; 3] = [0.299, 0.587, 0.114];
/// A window pixel with luminance at or above this counts as clipped (`quality.measures`).
pub const CLIPPED_LEVEL: f64 = 250.0;

/// Why a photo should be taken again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Blurry,
    TooDark,
    Overexposed,
    LesionTooSmall,
    NotCentred,
}

impl Reason {
    /// Every reason, in the order the gate checks them.
    pub const ALL: [Reason; 5] = [
        Reason::TooDark,
        Reason::Overexposed,
        Reason::Blurry,
        Reason::LesionTooSmall,
        Reason::NotCentred,
    ];

    /// The snake_case name, as in `quality.py` and the JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Blurry => "blurry",
            Reason::TooDark => "too_dark",
            Reason::Overexposed => "overexposed",
            Reason::LesionTooSmall => "lesion_too_small",
            Reason::NotCentred => "not_centred",
        }
    }
}

impl FromStr for Reason {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Reason::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("`{s}` is not a retake reason (blurry, too_dark, overexposed, lesion_too_small, not_centred)"))
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The gate's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// A usable close-up of a lesion: the tier may be shown.
    Ok,
    /// A lesion photo, but too poor to judge: take it again.
    Retake(Reason),
    /// Does not look like a close-up photo of a skin lesion at all.
    NotALesion,
}

impl Verdict {
    /// `ok`, `retake` or `not_a_lesion`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Retake(_) => "retake",
            Verdict::NotALesion => "not_a_lesion",
        }
    }

    /// The JSON `reason`: the retake reason, `not_a_lesion` for that verdict (as training's
    /// `quality.verdict` returns it), `None` when ok.
    pub fn reason_str(self) -> Option<&'static str> {
        match self {
            Verdict::Ok => None,
            Verdict::Retake(r) => Some(r.as_str()),
            Verdict::NotALesion => Some("not_a_lesion"),
        }
    }

    pub fn is_ok(self) -> bool {
        self == Verdict::Ok
    }

    /// What went wrong and how to take a better photo; `None` when ok.
    pub fn advice(self) -> Option<&'static str> {
        Some(match self {
            Verdict::Ok => return None,
            Verdict::Retake(Reason::Blurry) => {
                "The photo is blurry. Hold the phone steady about 10 cm from the skin, tap the lesion \
                 so the camera focuses on it, and take the photo again."
            }
            Verdict::Retake(Reason::TooDark) => {
                "The photo is too dark. Take it again in daylight or bright room light, without your \
                 shadow falling on the skin."
            }
            Verdict::Retake(Reason::Overexposed) => {
                "The photo is overexposed (too bright or washed out). Turn the flash off, avoid direct \
                 sun and glare, and take it again."
            }
            Verdict::Retake(Reason::LesionTooSmall) => {
                "The spot looks too far away or too small in the frame. Move closer, about 10 cm \
                 away, so that it fills a good part of the middle of the frame, and take the photo \
                 again."
            }
            Verdict::Retake(Reason::NotCentred) => {
                "The lesion is not in the middle of the photo. Centre the lesion in the frame and take \
                 the photo again."
            }
            Verdict::NotALesion => {
                "This looks like a picture of something other than skin, or of skin from too far \
                 away to judge, so the result is not meaningful. If it is a skin spot, take a \
                 close-up: about 10 cm away, the spot filling the middle of the frame, in focus and \
                 in good light."
            }
        })
    }
}

/// `ok`, `not_a_lesion` or `retake:<reason>` (the gate set's `expected` column).
impl FromStr for Verdict {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ok" => Ok(Verdict::Ok),
            "not_a_lesion" => Ok(Verdict::NotALesion),
            _ => match s.strip_prefix("retake:") {
                Some(r) => Ok(Verdict::Retake(r.parse()?)),
                None => Err(format!(
                    "`{s}` is not a verdict (ok, not_a_lesion or retake:<reason>)"
                )),
            },
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Retake(r) => write!(f, "retake:{r}"),
            v => f.write_str(v.as_str()),
        }
    }
}

impl Serialize for Verdict {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The photo measures, as `quality.measures` returns them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Measures {
    /// Population variance of the 4-neighbour Laplacian of Y over the window's interior.
    pub sharpness: f64,
    /// Mean Y in the window, 0..255.
    pub brightness: f64,
    /// Share of window pixels with Y >= 250, 0..1.
    pub clipped: f64,
    /// Share of the window that is "lesion" (blurred Y below mean - k std), 0..1.
    pub lesion_area: f64,
    /// Lesion centroid's distance from the image centre in half-sides (Chebyshev), 0..~1;
    /// 1 when no lesion pixel was found.
    pub lesion_offset: f64,
    /// (mean blurred Y of skin - mean of lesion) / 255; 0 when no lesion pixel was found.
    pub lesion_contrast: f64,
}

/// Luminance of HWC RGB (f32, the same operation order as numpy).
pub fn luminance(rgb: &[f32]) -> Vec<f32> {
    rgb.chunks_exact(3)
        .map(|p| LUMA[0] * p[0] + LUMA[1] * p[1] + LUMA[2] * p[2])
        .collect()
}

/// `quality.window`: `(start, end)` of the middle `center` fraction of `n`, with Python's
/// round-half-to-even (224, 0.8 -> m = round(22.4) = 22 -> 22..202).
pub fn window(n: usize, center: f64) -> (usize, usize) {
    let m = (n as f64 * (1.0 - center) / 2.0)
        .round_ties_even()
        .clamp(0.0, (n / 2) as f64) as usize;
    (m, n - m)
}

/// `quality.box_blur`: the mean over a `(2r+1)^2` box with edges clamped, `w x h` row-major.
///
/// Computed as numpy does it, so the results are bit-identical: the edge-padded image in f64,
/// cumulative sums down the columns then along the rows, the four-corner difference
/// `((C[i+k][j+k] - C[i][j+k]) - C[i+k][j]) + C[i][j]`, divided by k² and rounded to f32.
pub fn box_blur(y: &[f32], w: usize, h: usize, r: usize) -> Vec<f32> {
    let (pw, ph) = (w + 2 * r, h + 2 * r);
    let clamp = |v: usize, n: usize| v.saturating_sub(r).min(n - 1);
    // c[(i + 1) * (pw + 1) + (j + 1)] = sum of padded[..=i][..=j]; row 0 and column 0 are zero.
    let cw = pw + 1;
    let mut c = vec![0f64; (ph + 1) * cw];
    for i in 0..ph {
        let src = clamp(i, h) * w;
        for j in 0..pw {
            let v = f64::from(y[src + clamp(j, w)]);
            // numpy's cumsum(0): column sums, row after row.
            c[(i + 1) * cw + j + 1] = c[i * cw + j + 1] + v;
        }
    }
    for i in 1..=ph {
        // Then cumsum(1) along each row.
        for j in 2..=pw {
            c[i * cw + j] += c[i * cw + j - 1];
        }
    }
    let k = 2 * r + 1;
    let kk = (k * k) as f64;
    let mut out = Vec::with_capacity(w * h);
    for i in 0..h {
        for j in 0..w {
            let s =
                c[(i + k) * cw + j + k] - c[i * cw + j + k] - c[(i + k) * cw + j] + c[i * cw + j];
            out.push((s / kk) as f32);
        }
    }
    out
}

fn mean(v: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    (n > 0).then(|| sum / n as f64)
}

/// Population variance (numpy's `var`, ddof 0): mean, then mean squared deviation.
fn mean_var(v: &[f64]) -> (f64, f64) {
    let m = mean(v.iter().copied()).unwrap_or(0.0);
    let var = mean(v.iter().map(|x| (x - m) * (x - m))).unwrap_or(0.0);
    (m, var)
}

/// `quality.measures` on a `width x height` HWC RGB image with values 0..255.
///
/// Degenerate windows (under 3x3 pixels) give sharpness 0 where numpy would give NaN.
pub fn measures(rgb: &[f32], width: usize, height: usize, p: &QualityParams) -> Measures {
    let (w, h) = (width, height);
    debug_assert_eq!(rgb.len(), w * h * 3);
    let y = luminance(rgb);
    let (y0, y1) = window(h, p.center);
    let (x0, x1) = window(w, p.center);
    let (ww, wh) = (x1 - x0, y1 - y0);
    let win: Vec<f64> = (y0..y1)
        .flat_map(|i| y[i * w + x0..i * w + x1].iter().map(|&v| f64::from(v)))
        .collect();

    // 4-neighbour Laplacian over the window's interior, numpy's operation order.
    let mut lap = Vec::with_capacity(ww.saturating_sub(2) * wh.saturating_sub(2));
    for i in 1..wh.saturating_sub(1) {
        for j in 1..ww.saturating_sub(1) {
            let at = |di: usize, dj: usize| win[(i + di - 1) * ww + j + dj - 1];
            lap.push(4.0 * at(1, 1) - at(0, 1) - at(2, 1) - at(1, 0) - at(1, 2));
        }
    }
    let sharpness = if lap.is_empty() {
        0.0
    } else {
        mean_var(&lap).1
    };
    let n = win.len().max(1) as f64;
    let brightness = mean(win.iter().copied()).unwrap_or(0.0);
    let clipped = win.iter().filter(|&&v| v >= CLIPPED_LEVEL).count() as f64 / n;

    // Lesion: darker than mean - k std of the blurred window (blurred over the whole image, so
    // the window's border sees its real neighbours).
    let blurred = box_blur(&y, w, h, p.blur_radius);
    let sm: Vec<f64> = (y0..y1)
        .flat_map(|i| {
            blurred[i * w + x0..i * w + x1]
                .iter()
                .map(|&v| f64::from(v))
        })
        .collect();
    let (m, var) = mean_var(&sm);
    let thr = m - p.k * var.sqrt();
    let (mut count, mut sum_r, mut sum_c) = (0usize, 0f64, 0f64);
    for (idx, &v) in sm.iter().enumerate() {
        if v < thr {
            count += 1;
            sum_r += (idx / ww) as f64;
            sum_c += (idx % ww) as f64;
        }
    }
    let lesion_area = count as f64 / n;
    let (lesion_offset, lesion_contrast) = if count == 0 {
        (1.0, 0.0)
    } else {
        let cy = sum_r / count as f64 + y0 as f64;
        let cx = sum_c / count as f64 + x0 as f64;
        let (hh, hw) = (h as f64 / 2.0, w as f64 / 2.0);
        let off = ((cy + 0.5 - hh).abs() / hh).max((cx + 0.5 - hw).abs() / hw);
        let inside = mean(sm.iter().copied().filter(|&v| v < thr));
        let outside = mean(sm.iter().copied().filter(|&v| v >= thr));
        let contrast = match (outside, inside) {
            (Some(o), Some(i)) => (o - i) / 255.0,
            _ => 0.0,
        };
        (off, contrast)
    };
    Measures {
        sharpness,
        brightness,
        clipped,
        lesion_area,
        lesion_offset,
        lesion_contrast,
    }
}

/// The out-of-distribution cuts, when they apply to the image model in use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OodCuts {
    pub threshold: f64,
    pub hard_threshold: f64,
    pub retake_max: Option<RetakeMax>,
}

/// `quality.photo_problem`: the retake reason of an exposure or blur problem, in the gate's
/// order (too dark, overexposed by brightness or clipping, blurry).
pub fn photo_problem(m: &Measures, t: &QualityThresholds) -> Option<Reason> {
    if m.brightness < t.min_brightness {
        Some(Reason::TooDark)
    } else if m.brightness > t.max_brightness || m.clipped > t.max_clipped {
        Some(Reason::Overexposed)
    } else if m.sharpness < t.min_sharpness {
        Some(Reason::Blurry)
    } else {
        None
    }
}

/// `quality.verdict`, in its order: OOD beyond the hard cut -> not a lesion; an exposure or
/// blur problem -> not a lesion if the photo's score against training photos with that problem
/// (`retake`: too dark, overexposed, blurry) is beyond its `retake_max`, else retake; OOD beyond
/// the cut -> not a lesion; lesion too small (area or contrast); not centred; else ok.
/// `ood` is `None` to skip the OOD checks.
pub fn verdict(
    m: &Measures,
    ood: Option<f64>,
    retake: Option<[f64; 3]>,
    t: &QualityThresholds,
    cuts: Option<OodCuts>,
) -> Verdict {
    let ood = ood.zip(cuts);
    if matches!(ood, Some((s, c)) if s > c.hard_threshold) {
        return Verdict::NotALesion;
    }
    if let Some(problem) = photo_problem(m, t) {
        let far = ood
            .and_then(|(_, c)| c.retake_max)
            .zip(retake)
            .is_some_and(|(max, s)| match problem {
                Reason::TooDark => s[0] > max.too_dark,
                Reason::Overexposed => s[1] > max.overexposed,
                _ => s[2] > max.blurry,
            });
        return if far {
            Verdict::NotALesion
        } else {
            Verdict::Retake(problem)
        };
    }
    if matches!(ood, Some((s, c)) if s > c.threshold) {
        return Verdict::NotALesion;
    }
    if m.lesion_area < t.min_lesion_area || m.lesion_contrast < t.min_lesion_contrast {
        return Verdict::Retake(Reason::LesionTooSmall);
    }
    if m.lesion_offset > t.max_lesion_offset {
        return Verdict::Retake(Reason::NotCentred);
    }
    Verdict::Ok
}

/// The manifest's gate, resolved for one image model.
#[derive(Debug, Clone)]
pub struct Gate {
    params: QualityParams,
    thresholds: QualityThresholds,
    /// `None` when the manifest's OOD statistics belong to another image model (or are absent).
    ood: Option<OodCuts>,
    /// The cuts on the clinical score (`ood_clinical`), for clinical photos, when fitted.
    clinical: Option<OodCuts>,
    /// The non-lesion head's cut and the least colour a well-exposed lesion photo has, for
    /// photos of both types, when fitted.
    non_lesion: Option<NonLesion>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct NonLesion {
    threshold: f64,
    min_colour: Option<f64>,
}

impl Gate {
    /// The gate of a (validated) manifest `quality` block for the image model `image_model_id`.
    pub fn new(q: &Quality, image_model_id: &str) -> Gate {
        // The OOD block belongs to one image model; another model gets the photo checks only.
        let own = q.ood.as_ref().filter(|o| o.model == image_model_id);
        let ood = own.map(|o| OodCuts {
            threshold: o.threshold,
            hard_threshold: o.hard_threshold,
            retake_max: o.retake_max,
        });
        let clinical = own.and_then(|o| o.clinical.as_ref()).map(|c| OodCuts {
            threshold: c.threshold,
            hard_threshold: c.hard_threshold,
            retake_max: c.retake_max,
        });
        let non_lesion = own.and_then(|o| o.non_lesion.as_ref()).map(|n| NonLesion {
            threshold: n.threshold,
            min_colour: n.min_colour,
        });
        Gate {
            params: q.params,
            thresholds: q.thresholds,
            ood,
            clinical,
            non_lesion,
        }
    }

    /// The verdict for a photo of `kind` from the model's outputs for it, with the OOD score
    /// it was judged on (`None` when no OOD cut applies). A clinical photo is judged on its
    /// distance from phone photos when the manifest has that cut, else like a dermoscopic one.
    /// Before either, a photo the non-lesion head scores above its cut is not a lesion.
    pub(crate) fn judge(
        &self,
        m: &Measures,
        kind: PhotoKind,
        out: &ImageOutputs,
    ) -> (Option<f64>, Verdict) {
        let (used, verdict) = self.judge_distances(m, kind, out);
        (
            used,
            self.non_lesion_first(m, out.non_lesion, out.colour, verdict),
        )
    }

    /// `verdict`, unless the non-lesion head's logit is beyond its cut, or the photo is well
    /// exposed and has less colour than any lesion photo (black and white): then `not_a_lesion`.
    /// A too dark or overexposed photo keeps its retake advice: it loses its colour that way.
    pub fn non_lesion_first(
        &self,
        m: &Measures,
        logit: Option<f32>,
        colour: Option<f32>,
        verdict: Verdict,
    ) -> Verdict {
        let Some(nl) = self.non_lesion else {
            return verdict;
        };
        let head = logit.is_some_and(|z| f64::from(z) > nl.threshold);
        let exposed = !matches!(
            photo_problem(m, &self.thresholds),
            Some(Reason::TooDark | Reason::Overexposed)
        );
        let grey = exposed
            && nl
                .min_colour
                .zip(colour)
                .is_some_and(|(min, c)| f64::from(c) < min);
        if head || grey {
            Verdict::NotALesion
        } else {
            verdict
        }
    }

    fn judge_distances(
        &self,
        m: &Measures,
        kind: PhotoKind,
        out: &ImageOutputs,
    ) -> (Option<f64>, Verdict) {
        let clinical = kind == PhotoKind::Clinical && self.clinical.is_some();
        let ood = if clinical { out.ood_clinical } else { out.ood }.map(f64::from);
        let retake = if clinical {
            out.ood_clinical_retake
        } else {
            out.ood_retake
        };
        let retake = retake.map(|r| r.map(f64::from));
        let used = if clinical || self.uses_ood() {
            ood
        } else {
            None
        };
        (used, self.verdict_for(kind, m, ood, retake))
    }

    /// [`Gate::verdict`] for a photo of `kind`: a clinical photo, when the manifest has clinical
    /// cuts, is judged on `ood` = its `ood_clinical` score and `retake` = its
    /// `ood_clinical_retake` scores against them (phone photos, not dermoscopic ones).
    pub fn verdict_for(
        &self,
        kind: PhotoKind,
        m: &Measures,
        ood: Option<f64>,
        retake: Option<[f64; 3]>,
    ) -> Verdict {
        match (kind, self.clinical) {
            (PhotoKind::Clinical, Some(cuts)) => {
                verdict(m, ood, retake, &self.thresholds, Some(cuts))
            }
            _ => self.verdict(m, ood, retake),
        }
    }

    /// Whether the OOD score takes part in the verdict for this model.
    pub fn uses_ood(&self) -> bool {
        self.ood.is_some()
    }

    /// [`measures`] with the manifest's parameters.
    pub fn measures(&self, rgb: &[f32], width: usize, height: usize) -> Measures {
        measures(rgb, width, height, &self.params)
    }

    /// [`verdict`] with the manifest's thresholds; `ood` and `retake` are ignored unless
    /// [`Gate::uses_ood`].
    pub fn verdict(&self, m: &Measures, ood: Option<f64>, retake: Option<[f64; 3]>) -> Verdict {
        verdict(m, ood, retake, &self.thresholds, self.ood)
    }
}

/// The gate's result for one image: serialised as
/// `{verdict, reason, advice, ood_score, measures}` (`reason` and `advice` null when ok,
/// `ood_score` null when the OOD check does not apply to the model in use).
#[derive(Debug, Clone, PartialEq)]
pub struct QualityReport {
    pub verdict: Verdict,
    /// The model's out-of-distribution score, when the manifest's OOD cut applies to the model.
    pub ood_score: Option<f64>,
    pub measures: Measures,
}

impl Serialize for QualityReport {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(5))?;
        m.serialize_entry("verdict", &self.verdict)?;
        m.serialize_entry("reason", &self.verdict.reason_str())?;
        m.serialize_entry("advice", &self.verdict.advice())?;
        m.serialize_entry("ood_score", &self.ood_score)?;
        m.serialize_entry("measures", &self.measures)?;
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIDE: usize = 224;

    fn params() -> QualityParams {
        QualityParams {
            center: 0.8,
            k: 1.0,
            blur_radius: 2,
        }
    }

    fn thresholds() -> QualityThresholds {
        QualityThresholds {
            min_brightness: 60.0,
            max_brightness: 220.0,
            max_clipped: 0.3,
            min_sharpness: 2.0,
            min_lesion_area: 0.03,
            min_lesion_contrast: 0.03,
            max_lesion_offset: 0.7,
        }
    }

    /// A grey `side x side` image with a dark disc of radius `r` at (cx, cy), plus mild texture
    /// (a checker of +-amp) so the image is not perfectly smooth.
    fn disc(side: usize, cx: f64, cy: f64, r: f64, skin: f32, spot: f32, amp: f32) -> Vec<f32> {
        let mut img = Vec::with_capacity(side * side * 3);
        for y in 0..side {
            for x in 0..side {
                let d = ((x as f64 + 0.5 - cx).powi(2) + (y as f64 + 0.5 - cy).powi(2)).sqrt();
                let base = if d < r { spot } else { skin };
                let v = base + if (x + y) % 2 == 0 { amp } else { -amp };
                img.extend([v, v * 0.9, v * 0.8]);
            }
        }
        img
    }

    #[test]
    fn window_rounds_half_to_even_like_python() {
        assert_eq!(window(224, 0.8), (22, 202)); // round(22.4) = 22
        assert_eq!(window(10, 0.5), (2, 8)); // round(2.5) = 2 (banker's), not 3
        assert_eq!(window(14, 0.5), (4, 10)); // round(3.5) = 4
        assert_eq!(window(7, 1.0), (0, 7));
    }

    #[test]
    fn luminance_uses_bt601_weights() {
        let y = luminance(&[
            255.0, 0.0, 0.0, 0.0, 255.0, 0.0, 0.0, 0.0, 255.0, 100.0, 100.0, 100.0,
        ]);
        assert!(
            (y[0] - 76.245).abs() < 1e-4
                && (y[1] - 149.685).abs() < 1e-4
                && (y[2] - 29.07).abs() < 1e-4
        );
        assert!((y[3] - 100.0).abs() < 1e-4);
    }

    #[test]
    fn box_blur_clamps_edges() {
        // 3x1 row [0, 3, 6], radius 1: the padded rows repeat it, so a pixel's box mean is the
        // mean of its row neighbourhood with the end values repeated:
        // x=0: (0 + 0 + 3) / 3 = 1; x=1: (0 + 3 + 6) / 3 = 3; x=2: (3 + 6 + 6) / 3 = 5.
        let out = box_blur(&[0.0, 3.0, 6.0], 3, 1, 1);
        assert_eq!(out, vec![1.0, 3.0, 5.0]);
        // A corner pixel of a 2x2 image with radius 2 sees itself 9 times, each neighbour 6
        // times and the opposite corner 4 times: (9*1 + 6*2 + 6*3 + 4*4) / 25.
        let out = box_blur(&[1.0, 2.0, 3.0, 4.0], 2, 2, 2);
        assert!((out[0] - 55.0 / 25.0).abs() < 1e-6, "{out:?}");
        // Radius 0 is the identity; a constant image stays constant.
        assert_eq!(box_blur(&[1.5, 2.5], 2, 1, 0), vec![1.5, 2.5]);
        assert!(box_blur(&[7.0; 30], 6, 5, 2).iter().all(|&v| v == 7.0));
    }

    #[test]
    fn uniform_image_has_no_sharpness_and_no_lesion() {
        let img = vec![150.0f32; SIDE * SIDE * 3];
        let m = measures(&img, SIDE, SIDE, &params());
        assert_eq!(m.sharpness, 0.0);
        assert!((m.brightness - 150.0).abs() < 1e-3);
        assert_eq!(m.clipped, 0.0);
        assert_eq!(
            (m.lesion_area, m.lesion_offset, m.lesion_contrast),
            (0.0, 1.0, 0.0)
        );
        // No texture: blurry comes before the lesion checks.
        assert_eq!(
            verdict(&m, None, None, &thresholds(), None),
            Verdict::Retake(Reason::Blurry)
        );
    }

    #[test]
    fn centred_dark_disc_is_a_lesion() {
        let c = SIDE as f64 / 2.0;
        let img = disc(SIDE, c, c, 40.0, 170.0, 90.0, 4.0);
        let m = measures(&img, SIDE, SIDE, &params());
        // The disc covers pi 40^2 / 180^2 = 15.5 % of the window.
        assert!((m.lesion_area - 0.155).abs() < 0.01, "{m:?}");
        assert!(m.lesion_offset < 0.02, "{m:?}");
        assert!(m.lesion_contrast > 0.25, "{m:?}");
        assert!(m.sharpness > 2.0, "{m:?}");
        assert_eq!(verdict(&m, None, None, &thresholds(), None), Verdict::Ok);
    }

    #[test]
    fn offset_dark_disc_is_not_centred() {
        // Centre at x = 175 (y centred): (175 - 112) / 112 = 0.56 half-sides off (the window's
        // edge at x = 202 trims the disc's right rim a little, moving the centroid left).
        let img = disc(SIDE, 175.0, 112.0, 30.0, 170.0, 80.0, 4.0);
        let m = measures(&img, SIDE, SIDE, &params());
        assert!((m.lesion_offset - 0.56).abs() < 0.02, "{m:?}");
        assert!(m.lesion_area > 0.06, "{m:?}");
        assert_eq!(verdict(&m, None, None, &thresholds(), None), Verdict::Ok);
        let strict = QualityThresholds {
            max_lesion_offset: 0.5,
            ..thresholds()
        };
        assert_eq!(
            verdict(&m, None, None, &strict, None),
            Verdict::Retake(Reason::NotCentred)
        );
        // A disc in a corner is far off centre on both axes (Chebyshev distance).
        let corner = disc(SIDE, 185.0, 40.0, 30.0, 170.0, 80.0, 4.0);
        let m = measures(&corner, SIDE, SIDE, &params());
        assert!(m.lesion_offset > 0.6, "{m:?}");
    }

    #[test]
    fn dark_and_bright_images_trip_exposure() {
        let c = SIDE as f64 / 2.0;
        let dark = disc(SIDE, c, c, 40.0, 40.0, 15.0, 2.0);
        let m = measures(&dark, SIDE, SIDE, &params());
        assert!(m.brightness < 40.0);
        assert_eq!(
            verdict(&m, None, None, &thresholds(), None),
            Verdict::Retake(Reason::TooDark)
        );
        // Washed-out skin at full white, the lesion still visible: clipped, not too bright on
        // average only because of the lesion.
        let bright: Vec<f32> = disc(SIDE, c, c, 40.0, 255.0, 160.0, 0.0)
            .chunks_exact(3)
            .flat_map(|p| [p[0]; 3])
            .collect();
        let m = measures(&bright, SIDE, SIDE, &params());
        assert!(m.clipped > 0.8 && m.brightness < 250.0, "{m:?}");
        assert_eq!(
            verdict(&m, None, None, &thresholds(), None),
            Verdict::Retake(Reason::Overexposed)
        );
    }

    /// Measures of a sharp, well-exposed photo of a centred lesion.
    fn good_photo() -> Measures {
        Measures {
            sharpness: 30.0,
            brightness: 150.0,
            clipped: 0.0,
            lesion_area: 0.15,
            lesion_offset: 0.1,
            lesion_contrast: 0.2,
        }
    }

    /// A soft OOD cut at 1.0 and a hard one at 1.4.
    fn cuts() -> Option<OodCuts> {
        Some(OodCuts {
            threshold: 1.0,
            hard_threshold: 1.4,
            retake_max: None,
        })
    }

    #[test]
    fn verdict_order_follows_quality_py() {
        let (t, cuts, good) = (thresholds(), cuts(), good_photo());
        let dark = Measures {
            brightness: 30.0,
            sharpness: 0.5,
            ..good
        };
        assert_eq!(verdict(&good, Some(0.5), None, &t, cuts), Verdict::Ok);
        // Hard OOD cut beats exposure; the soft cut comes after exposure and blur.
        assert_eq!(
            verdict(&dark, Some(1.5), None, &t, cuts),
            Verdict::NotALesion
        );
        assert_eq!(
            verdict(&dark, Some(1.2), None, &t, cuts),
            Verdict::Retake(Reason::TooDark)
        );
        assert_eq!(
            verdict(&good, Some(1.2), None, &t, cuts),
            Verdict::NotALesion
        );
        // Dark beats blurry; overexposed (by clipping) beats blurry; blurry beats lesion checks.
        assert_eq!(
            verdict(&dark, None, None, &t, cuts),
            Verdict::Retake(Reason::TooDark)
        );
        let clipped = Measures {
            clipped: 0.5,
            sharpness: 0.5,
            ..good
        };
        assert_eq!(
            verdict(&clipped, None, None, &t, None),
            Verdict::Retake(Reason::Overexposed)
        );
        let blurry = Measures {
            sharpness: 0.5,
            lesion_area: 0.0,
            ..good
        };
        assert_eq!(
            verdict(&blurry, None, None, &t, None),
            Verdict::Retake(Reason::Blurry)
        );
    }

    #[test]
    fn verdict_order_of_the_lesion_checks_follows_quality_py() {
        let (t, cuts, good) = (thresholds(), cuts(), good_photo());
        // Soft OOD beats lesion size; size (area or contrast) beats centring.
        let small = Measures {
            lesion_area: 0.01,
            lesion_offset: 0.9,
            ..good
        };
        assert_eq!(
            verdict(&small, Some(1.2), None, &t, cuts),
            Verdict::NotALesion
        );
        assert_eq!(
            verdict(&small, Some(1.2), None, &t, None),
            Verdict::Retake(Reason::LesionTooSmall)
        );
        let faint = Measures {
            lesion_contrast: 0.01,
            lesion_offset: 0.9,
            ..good
        };
        assert_eq!(
            verdict(&faint, None, None, &t, None),
            Verdict::Retake(Reason::LesionTooSmall)
        );
        let off = Measures {
            lesion_offset: 0.9,
            ..good
        };
        assert_eq!(
            verdict(&off, None, None, &t, None),
            Verdict::Retake(Reason::NotCentred)
        );
        // Without cuts (another image model) the score is ignored.
        assert_eq!(verdict(&good, Some(99.0), None, &t, None), Verdict::Ok);
        // Thresholds are strict inequalities, as in Python.
        let edge = Measures {
            brightness: t.min_brightness,
            sharpness: t.min_sharpness,
            ..good
        };
        assert_eq!(verdict(&edge, Some(1.0), None, &t, cuts), Verdict::Ok);
    }

    #[test]
    fn retake_max_turns_far_out_problem_photos_into_not_a_lesion() {
        let t = thresholds();
        let retake_max = Some(RetakeMax {
            too_dark: 3.0,
            overexposed: 4.0,
            blurry: 1.2,
        });
        let cuts = Some(OodCuts {
            threshold: 1.0,
            hard_threshold: 10.0,
            retake_max,
        });
        let good = good_photo();
        let blurry = Measures {
            sharpness: 0.5,
            ..good
        };
        let dark = Measures {
            brightness: 30.0,
            sharpness: 0.5,
            ..good
        };
        // Each problem is judged by its own score and limit (too_dark, overexposed, blurry):
        // mirrors test_gate_verdict_per_reason_ood_limits_mirror_rust in training/tests.
        assert_eq!(
            verdict(&blurry, Some(5.0), Some([9.0, 9.0, 1.1]), &t, cuts),
            Verdict::Retake(Reason::Blurry)
        );
        assert_eq!(
            verdict(&blurry, Some(5.0), Some([0.0, 0.0, 2.0]), &t, cuts),
            Verdict::NotALesion
        );
        assert_eq!(
            verdict(&dark, Some(5.0), Some([2.0, 9.0, 9.0]), &t, cuts),
            Verdict::Retake(Reason::TooDark)
        );
        assert_eq!(
            verdict(&dark, Some(5.0), Some([3.5, 0.0, 0.0]), &t, cuts),
            Verdict::NotALesion
        );
        assert_eq!(
            verdict(&blurry, Some(11.0), Some([0.0; 3]), &t, cuts),
            Verdict::NotALesion
        );
        assert_eq!(
            verdict(&good, Some(0.5), Some([9.0; 3]), &t, cuts),
            Verdict::Ok
        );
        // Without the model's per-problem scores, or without limits, only the hard cut applies.
        assert_eq!(
            verdict(&blurry, Some(5.0), None, &t, cuts),
            Verdict::Retake(Reason::Blurry)
        );
        let plain = Some(OodCuts {
            retake_max: None,
            ..cuts.unwrap()
        });
        assert_eq!(
            verdict(&blurry, Some(5.0), Some([0.0, 0.0, 2.0]), &t, plain),
            Verdict::Retake(Reason::Blurry)
        );
        // Another image model (no cuts): the scores are ignored.
        assert_eq!(
            verdict(&blurry, Some(5.0), Some([99.0; 3]), &t, None),
            Verdict::Retake(Reason::Blurry)
        );
        assert_eq!(photo_problem(&good, &t), None);
        assert_eq!(photo_problem(&dark, &t), Some(Reason::TooDark));
    }

    #[test]
    fn gate_applies_ood_only_to_its_model() {
        let m = crate::manifest::Manifest::from_json(
            crate::manifest::tests::sample_with_quality_json()
                .to_string()
                .as_bytes(),
        )
        .unwrap();
        let q = m.quality.as_ref().unwrap();
        assert!(Gate::new(q, "m").uses_ood());
        assert!(!Gate::new(q, "other").uses_ood());
    }

    #[test]
    fn non_lesion_head_turns_a_photo_away_before_anything_else() {
        let mut v = crate::manifest::tests::sample_with_quality_json();
        v["image_models"][0]["outputs"]["non_lesion"] = "nl".into();
        v["image_models"][0]["outputs"]["colour"] = "colour".into();
        v["quality"]["ood"]["non_lesion"] = serde_json::json!(
            {"output": "nl", "threshold": 2.0, "colour_output": "colour", "min_colour": 0.01});
        let m = crate::manifest::Manifest::from_json(v.to_string().as_bytes()).unwrap();
        let q = m.quality.as_ref().unwrap();
        let g = Gate::new(q, "m");
        let good = good_photo();
        let dark = Measures {
            brightness: 0.01,
            ..good_photo()
        };
        let blurry = Verdict::Retake(Reason::Blurry);
        let nl =
            |m: &Measures, z: f32, c: f32, v: Verdict| g.non_lesion_first(m, Some(z), Some(c), v);
        assert_eq!(nl(&good, 2.5, 0.2, Verdict::Ok), Verdict::NotALesion);
        assert_eq!(nl(&good, 2.5, 0.2, blurry), Verdict::NotALesion);
        assert_eq!(nl(&good, 1.5, 0.2, blurry), blurry);
        assert_eq!(nl(&good, 1.5, 0.2, Verdict::Ok), Verdict::Ok);
        // Black and white: not a lesion photo, unless darkness took the colour away.
        assert_eq!(nl(&good, 1.5, 0.0, Verdict::Ok), Verdict::NotALesion);
        assert_eq!(nl(&good, 1.5, 0.0, blurry), Verdict::NotALesion);
        let too_dark = Verdict::Retake(Reason::TooDark);
        assert_eq!(nl(&dark, 1.5, 0.0, too_dark), too_dark);
        assert_eq!(
            g.non_lesion_first(&good, None, None, Verdict::Ok),
            Verdict::Ok
        );
        // The cut belongs to its image model only.
        let other = Gate::new(q, "other");
        assert_eq!(
            other.non_lesion_first(&good, Some(9.0), Some(0.0), Verdict::Ok),
            Verdict::Ok
        );
        // A cut on an output the model does not have is a manifest error.
        v["quality"]["ood"]["non_lesion"]["colour_output"] = "elsewhere".into();
        let e = crate::manifest::Manifest::from_json(v.to_string().as_bytes()).unwrap_err();
        assert!(e.to_string().contains("colour"), "{e}");
        v["quality"]["ood"]["non_lesion"]["colour_output"] = "colour".into();
        v["quality"]["ood"]["non_lesion"]["output"] = "elsewhere".into();
        let e = crate::manifest::Manifest::from_json(v.to_string().as_bytes()).unwrap_err();
        assert!(e.to_string().contains("non_lesion"), "{e}");
    }

    #[test]
    fn verdict_strings_round_trip_and_serialise() {
        for v in [Verdict::Ok, Verdict::NotALesion]
            .into_iter()
            .chain(Reason::ALL.into_iter().map(Verdict::Retake))
        {
            assert_eq!(v.to_string().parse::<Verdict>().unwrap(), v);
            assert_eq!(v.advice().is_none(), v.is_ok());
        }
        assert!("retake:fuzzy".parse::<Verdict>().is_err());
        assert!("retake".parse::<Verdict>().is_err());
        let r = QualityReport {
            verdict: Verdict::Retake(Reason::LesionTooSmall),
            ood_score: None,
            measures: Measures {
                sharpness: 1.0,
                brightness: 2.0,
                clipped: 0.0,
                lesion_area: 0.0,
                lesion_offset: 1.0,
                lesion_contrast: 0.0,
            },
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["verdict"], "retake");
        assert_eq!(v["reason"], "lesion_too_small");
        assert!(v["advice"].is_string() && v["ood_score"].is_null());
        assert_eq!(v["measures"]["lesion_offset"], 1.0);
        let ok = serde_json::to_value(QualityReport {
            verdict: Verdict::Ok,
            ood_score: Some(0.5),
            ..r
        })
        .unwrap();
        assert!(ok["reason"].is_null() && ok["advice"].is_null());
        assert_eq!(ok["ood_score"], 0.5);
        let nal = serde_json::to_value(QualityReport {
            verdict: Verdict::NotALesion,
            ..r
        })
        .unwrap();
        assert_eq!(
            (nal["verdict"].as_str(), nal["reason"].as_str()),
            (Some("not_a_lesion"), Some("not_a_lesion"))
        );
    }
}
