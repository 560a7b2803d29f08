//! Calibration, the metadata stacker and the risk tiers: pure maths on the models' outputs,
//! the twin of `training/skinscan_train/ensemble.py::assess`.
//!
//! ```text
//! p7      = mean over quarter turns of softmax(logits)      (dermoscopic head)
//!         = softmax(mean over quarter turns of logits)      (clinical head, a linear head)
//! z_img   = logit(sum of p7 over malignant diagnoses)     (p clipped to [1e-6, 1 - 1e-6])
//! image   = sigmoid(a * z_img + b)                         (Platt)
//! final   = sigmoid(c0 + c1 * z_img + c2 * logit(p_tab))   if metadata was given, else image
//! tier    = low if final < low_below; high if final >= high_from; else moderate
//! ```

use serde::Serialize;

use crate::manifest::{Head, Tiers, TurnAverage};

/// `metrics.logit`'s clip in training: keeps the logit finite for saturated probabilities.
pub const LOGIT_EPS: f64 = 1e-6;

/// Triage tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RiskTier {
    Low,
    Moderate,
    High,
}

impl RiskTier {
    pub fn as_str(self) -> &'static str {
        match self {
            RiskTier::Low => "low",
            RiskTier::Moderate => "moderate",
            RiskTier::High => "high",
        }
    }

    /// `low` below `low_below`, `high` from `high_from` on (inclusive), else `moderate`.
    pub fn of(p: f64, t: &Tiers) -> RiskTier {
        if p < t.low_below {
            RiskTier::Low
        } else if p >= t.high_from {
            RiskTier::High
        } else {
            RiskTier::Moderate
        }
    }
}

/// The ensemble's numbers for one image.
#[derive(Debug, Clone, PartialEq)]
pub struct RiskResult {
    /// Softmax of the image logits, in manifest diagnosis order.
    pub diagnosis: Vec<f64>,
    /// Sum of the malignant diagnoses' probabilities (uncalibrated).
    pub malignant_sum: f64,
    /// Platt-calibrated image-only probability.
    pub image_probability: f64,
    /// The tabular model's P(malignant), when metadata was given.
    pub tabular_probability: Option<f64>,
    /// The final probability: stacked with metadata, image-only otherwise.
    pub malignant_probability: f64,
    pub risk_tier: RiskTier,
}

pub fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

pub fn logit(p: f64) -> f64 {
    let p = p.clamp(LOGIT_EPS, 1.0 - LOGIT_EPS);
    (p / (1.0 - p)).ln()
}

/// Numerically stable softmax in f64.
pub fn softmax(logits: &[f32]) -> Vec<f64> {
    let max = logits
        .iter()
        .fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)));
    let e: Vec<f64> = logits.iter().map(|&v| (f64::from(v) - max).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

/// One head's diagnosis probabilities from its logits for each quarter turn of the photo
/// (`training/skinscan_train/mixed_report.py::head_p7`). Empty input gives an empty vector.
pub fn combine_turns(turns: &[Vec<f32>], how: TurnAverage) -> Vec<f64> {
    let Some(first) = turns.first() else {
        return Vec::new();
    };
    let n = turns.len() as f64;
    let mut acc = vec![0f64; first.len()];
    for t in turns {
        let v: Vec<f64> = match how {
            TurnAverage::Softmax => softmax(t),
            TurnAverage::Logits => t.iter().map(|&x| f64::from(x)).collect(),
        };
        for (a, x) in acc.iter_mut().zip(v) {
            *a += x / n;
        }
    }
    match how {
        TurnAverage::Softmax => acc,
        TurnAverage::Logits => softmax(&acc.iter().map(|&x| x as f32).collect::<Vec<_>>()),
    }
}

/// Combine a head's diagnosis probabilities and the optional tabular probability as the
/// manifest says for that head.
pub fn assess(
    diagnosis: Vec<f64>,
    malignant: &[usize],
    p_tab: Option<f64>,
    head: Head<'_>,
) -> RiskResult {
    let malignant_sum: f64 = malignant.iter().map(|&i| diagnosis[i]).sum();
    let z = logit(malignant_sum);
    let image_probability = sigmoid(head.calibration.a * z + head.calibration.b);
    let (malignant_probability, tiers) = match p_tab {
        None => (image_probability, &head.tiers.image_only),
        Some(pt) => {
            let s = head.stacker;
            (
                sigmoid(s.intercept + s.image_coef * z + s.tabular_coef * logit(pt)),
                &head.tiers.with_metadata,
            )
        }
    };
    RiskResult {
        risk_tier: RiskTier::of(malignant_probability, tiers),
        diagnosis,
        malignant_sum,
        image_probability,
        tabular_probability: p_tab,
        malignant_probability,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> crate::manifest::ImageModel {
        crate::manifest::tests::sample().image_models[0].clone()
    }

    fn run(logits: &[f32], p_tab: Option<f64>) -> RiskResult {
        let c = cfg();
        let head = c.head(crate::manifest::PhotoKind::Dermoscopic);
        assess(softmax(logits), &[1, 2], p_tab, head)
    }

    #[test]
    fn turns_average_softmax_or_logits() {
        let turns = vec![vec![0.0f32, 2.0], vec![2.0, 0.0]];
        let p = combine_turns(&turns, TurnAverage::Softmax);
        assert!((p[0] - 0.5).abs() < 1e-12 && (p[1] - 0.5).abs() < 1e-12);
        let q = combine_turns(&[vec![0.0f32, 2.0], vec![0.0, 0.0]], TurnAverage::Logits);
        let want = softmax(&[0.0, 1.0]);
        assert!((q[1] - want[1]).abs() < 1e-7, "{q:?}");
        let r = combine_turns(&[vec![0.0f32, 2.0], vec![0.0, 0.0]], TurnAverage::Softmax);
        assert!((r[1] - q[1]).abs() > 1e-3, "the two rules differ");
        assert!(combine_turns(&[], TurnAverage::Logits).is_empty());
    }

    #[test]
    fn tier_edges_are_low_exclusive_high_inclusive() {
        let t = Tiers {
            low_below: 0.2,
            high_from: 0.6,
        };
        assert_eq!(RiskTier::of(0.0, &t), RiskTier::Low);
        assert_eq!(RiskTier::of(0.199_999_999, &t), RiskTier::Low);
        assert_eq!(RiskTier::of(0.2, &t), RiskTier::Moderate);
        assert_eq!(RiskTier::of(0.599_999_999, &t), RiskTier::Moderate);
        assert_eq!(RiskTier::of(0.6, &t), RiskTier::High);
        assert_eq!(RiskTier::of(1.0, &t), RiskTier::High);
        // Equal thresholds: no moderate band.
        let t = Tiers {
            low_below: 0.5,
            high_from: 0.5,
        };
        assert_eq!(RiskTier::of(0.5, &t), RiskTier::High);
        assert_eq!(RiskTier::of(0.499, &t), RiskTier::Low);
    }

    #[test]
    fn logit_clips_like_training() {
        assert!((logit(0.5)).abs() < 1e-15);
        assert!((logit(0.0) - (1e-6f64 / (1.0 - 1e-6)).ln()).abs() < 1e-9);
        assert!(logit(1.0).is_finite() && logit(1.0) > 13.0);
        assert!((sigmoid(logit(0.3)) - 0.3).abs() < 1e-12);
    }

    #[test]
    fn image_only_path() {
        // Logits [0, ln 2, ln 1] -> softmax [1/4, 1/2, 1/4]; malignant = mel + bcc = 3/4.
        let r = run(&[0.0, std::f32::consts::LN_2, 0.0], None);
        assert!((r.diagnosis[1] - 0.5).abs() < 1e-7);
        assert!((r.malignant_sum - 0.75).abs() < 1e-7);
        let z = (3.0f64).ln();
        let expect = sigmoid(2.0 * z - 0.5);
        assert!((r.image_probability - expect).abs() < 1e-7);
        assert_eq!(r.malignant_probability, r.image_probability);
        assert_eq!(r.tabular_probability, None);
        // 0.8 >= image_only.high_from 0.6
        assert_eq!(r.risk_tier, RiskTier::High);
    }

    #[test]
    fn stacked_path_uses_with_metadata_tiers() {
        let r = run(&[0.0, std::f32::consts::LN_2, 0.0], Some(0.2));
        let z = (3.0f64).ln();
        let expect = sigmoid(0.1 + 1.5 * z + 0.5 * (0.25f64).ln());
        assert!(
            (r.malignant_probability - expect).abs() < 1e-7,
            "{}",
            r.malignant_probability
        );
        assert_eq!(r.tabular_probability, Some(0.2));
        // 0.84 >= with_metadata.high_from 0.7
        assert_eq!(r.risk_tier, RiskTier::High);
        // A benign-looking image with metadata: low under with_metadata (< 0.1).
        let r = run(&[5.0, -5.0, -5.0], Some(0.01));
        assert!(r.malignant_probability < 0.1);
        assert_eq!(r.risk_tier, RiskTier::Low);
    }
}
