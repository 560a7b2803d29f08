//! Patient metadata: validation against the manifest's vocabulary and encoding into the tabular
//! model's feature vector, as `training/skinscan_train/tabular.py::encode` does.
//!
//! Encoding per manifest feature, in order: `numeric` -> the number; `index` -> the position of
//! the value in `values`; `one_hot` -> one column per value. A field that is not given is NaN in
//! every one of its columns (the gradient-boosted trees route NaN down their learned
//! missing-value branch): "not given" is never zero.

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{Error, Result};
use crate::manifest::{FeatureKind, Tabular};

/// What the user told us. `None` (or, from JS, `null`/`""`) means "not given".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// Age in years (the manifest's range, 0–120).
    #[serde(default, deserialize_with = "age_de")]
    pub age: Option<f64>,
    /// `male` or `female` (the manifest's `sex` values).
    #[serde(default, deserialize_with = "text_de")]
    pub sex: Option<String>,
    /// Body site from the manifest's `site` vocabulary, e.g. `posterior torso`.
    #[serde(default, deserialize_with = "text_de")]
    pub site: Option<String>,
}

/// Accepts a number, a numeric string (form fields arrive as text), `null` or `""`.
fn age_de<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<f64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Age {
        Num(f64),
        Text(String),
    }
    match Option::<Age>::deserialize(d)? {
        None => Ok(None),
        Some(Age::Num(v)) => Ok(Some(v)),
        Some(Age::Text(s)) if s.trim().is_empty() => Ok(None),
        Some(Age::Text(s)) => s
            .trim()
            .parse::<f64>()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("age `{s}` is not a number"))),
    }
}

fn text_de<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.filter(|s| !s.trim().is_empty()))
}

impl Metadata {
    /// True when at least one field is given.
    pub fn any(&self) -> bool {
        self.age.is_some() || self.sex.is_some() || self.site.is_some()
    }

    fn field(&self, name: &str) -> Option<Field<'_>> {
        match name {
            "age" => self.age.map(Field::Number),
            "sex" => self.sex.as_deref().map(Field::Text),
            "site" => self.site.as_deref().map(Field::Text),
            _ => None,
        }
    }
}

enum Field<'a> {
    Number(f64),
    Text(&'a str),
}

/// The names of the fields `Metadata` carries; the manifest's features must be among them.
pub const FIELDS: [&str; 3] = ["age", "sex", "site"];

/// Validate `meta` against the manifest and encode it: `width` f32 columns.
///
/// Text values are matched after trimming, case-insensitively. Errors name the field.
pub fn encode(meta: &Metadata, spec: &Tabular) -> Result<Vec<f32>> {
    let mut out = Vec::with_capacity(spec.width);
    for f in &spec.features {
        if !FIELDS.contains(&f.name.as_str()) {
            return Err(Error::manifest(format!(
                "tabular feature `{}` has no matching metadata field",
                f.name
            )));
        }
        let cols = f.columns();
        let start = out.len();
        out.resize(start + cols, f32::NAN);
        let Some(value) = meta.field(&f.name) else {
            continue;
        };
        match (f.kind, value) {
            (FeatureKind::Numeric, Field::Number(v)) => {
                let (lo, hi) = (
                    f.min.unwrap_or(f64::NEG_INFINITY),
                    f.max.unwrap_or(f64::INFINITY),
                );
                if !v.is_finite() || v < lo || v > hi {
                    return Err(Error::input(
                        &f.name,
                        format!("{v} is not a number from {lo} to {hi}"),
                    ));
                }
                out[start] = v as f32;
            }
            (FeatureKind::Index | FeatureKind::OneHot, Field::Text(s)) => {
                let values = f.values.as_deref().unwrap_or(&[]);
                let wanted = s.trim();
                let Some(ix) = values.iter().position(|v| v.eq_ignore_ascii_case(wanted)) else {
                    return Err(Error::input(
                        &f.name,
                        format!("`{s}` is not one of: {}", values.join(", ")),
                    ));
                };
                if f.kind == FeatureKind::Index {
                    out[start] = ix as f32;
                } else {
                    out[start..start + cols].fill(0.0);
                    out[start + ix] = 1.0;
                }
            }
            _ => {
                return Err(Error::input(
                    &f.name,
                    "has the wrong type for this manifest",
                ))
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Tabular {
        crate::manifest::tests::sample().tabular
    }

    fn meta(age: Option<f64>, sex: Option<&str>, site: Option<&str>) -> Metadata {
        Metadata {
            age,
            sex: sex.map(String::from),
            site: site.map(String::from),
        }
    }

    fn same(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| (x.is_nan() && y.is_nan()) || x == y)
    }

    #[test]
    fn encodes_all_fields() {
        let v = encode(&meta(Some(65.0), Some("male"), Some("torso")), &spec()).unwrap();
        assert!(same(&v, &[65.0, 1.0, 0.0, 1.0, 0.0]), "{v:?}");
        let v = encode(
            &meta(Some(0.0), Some(" Female "), Some("HEAD/NECK")),
            &spec(),
        )
        .unwrap();
        assert!(same(&v, &[0.0, 0.0, 1.0, 0.0, 0.0]), "{v:?}");
    }

    #[test]
    fn missing_fields_are_nan_in_all_their_columns() {
        let n = f32::NAN;
        let v = encode(&Metadata::default(), &spec()).unwrap();
        assert!(same(&v, &[n, n, n, n, n]));
        let v = encode(&meta(Some(30.0), Some("female"), None), &spec()).unwrap();
        assert!(same(&v, &[30.0, 0.0, n, n, n]));
        let v = encode(&meta(None, None, Some("palms/soles")), &spec()).unwrap();
        assert!(same(&v, &[n, n, 0.0, 0.0, 1.0]));
        assert!(!Metadata::default().any());
        assert!(meta(None, None, Some("torso")).any());
    }

    #[test]
    fn invalid_values_name_the_field() {
        let field = |m: Metadata| match encode(&m, &spec()) {
            Err(Error::Input { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(meta(Some(-1.0), None, None)), "age");
        assert_eq!(field(meta(Some(120.5), None, None)), "age");
        assert_eq!(field(meta(Some(f64::NAN), None, None)), "age");
        assert_eq!(field(meta(Some(f64::INFINITY), None, None)), "age");
        assert_eq!(field(meta(None, Some("other"), None)), "sex");
        assert_eq!(field(meta(None, None, Some("elbow"))), "site");
        assert!(encode(&meta(Some(120.0), None, None), &spec()).is_ok());
    }

    #[test]
    fn deserialises_js_style_input() {
        let m: Metadata =
            serde_json::from_str(r#"{"age": "45", "sex": "", "site": null}"#).unwrap();
        assert_eq!(m, meta(Some(45.0), None, None));
        let m: Metadata = serde_json::from_str(r#"{"age": 12.5, "sex": "male"}"#).unwrap();
        assert_eq!(m, meta(Some(12.5), Some("male"), None));
        let m: Metadata = serde_json::from_str(r#"{"age": ""}"#).unwrap();
        assert!(!m.any());
        assert!(serde_json::from_str::<Metadata>(r#"{"age": "old"}"#).is_err());
        assert!(serde_json::from_str::<Metadata>(r#"{"gender": "male"}"#).is_err());
    }
}
