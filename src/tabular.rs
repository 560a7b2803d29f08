//! Patient metadata: validation against the manifest's vocabulary and encoding into the tabular
//! model's feature vector, as `training/skinscan_train/tabular.py::encode` does.
//!
//! Encoding per manifest feature, in order: `numeric` -> the number; `index` -> the position of
//! the value in `values`; `one_hot` -> one column per value. A field that is not given is NaN in
//! every one of its columns (the gradient-boosted trees route NaN down their learned
//! missing-value branch): "not given" is never zero.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::manifest::{FeatureKind, PhotoKind, Tabular};

/// What the user told us, parsed. `None` means "not given" (or "don't know").
///
/// This is the one place metadata is parsed: the CLI, `evaluate`'s labels file and the page all
/// hand raw text (or JSON values) to [`Metadata::parse`] / [`Metadata::from_json`]; the
/// vocabulary and ranges are then checked against the manifest by [`encode`].
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Metadata {
    /// Age in years (the manifest's range, 0–120).
    pub age: Option<f64>,
    /// `male` or `female` (the manifest's `sex` values).
    pub sex: Option<String>,
    /// Body site from the manifest's `site` vocabulary, e.g. `posterior torso`.
    pub site: Option<String>,
    /// The person's answers (issue 12): does it itch, has it grown, does it hurt, has it
    /// changed, has it bled, is it raised.
    pub itch: Option<bool>,
    pub grew: Option<bool>,
    pub hurt: Option<bool>,
    pub changed: Option<bool>,
    pub bleed: Option<bool>,
    pub elevation: Option<bool>,
    /// The lesion's largest diameter in millimetres.
    pub diameter_mm: Option<f64>,
    /// The user's own answer to "taken with a dermatoscope?"; `None` = detect it (`auto`).
    pub photo_type: Option<PhotoKind>,
}

/// The yes/no questions, in the manifest's feature order.
pub const ANSWERS: [&str; 6] = ["itch", "grew", "hurt", "changed", "bleed", "elevation"];

/// The names of the tabular fields `Metadata` carries; the manifest's features must be among them.
pub const FIELDS: [&str; 10] = [
    "age",
    "sex",
    "site",
    "itch",
    "grew",
    "hurt",
    "changed",
    "bleed",
    "elevation",
    "diameter_mm",
];

/// Other spellings a raw key may use: the page's camelCase and PAD-UFES-20's column names.
const ALIASES: [(&str, &str); 5] = [
    ("diameterMm", "diameter_mm"),
    ("diameter", "diameter_mm"),
    ("diameter_1", "diameter_mm"),
    ("photoType", "photo_type"),
    ("photo-type", "photo_type"),
];

/// Values that mean "not given" for any field (after trimming, any case); `photo_type` also
/// takes `auto` (detect it).
const UNKNOWN: [&str; 5] = ["", "unk", "unknown", "dont_know", "don't know"];

/// The canonical name of a raw key (an alias resolved).
fn canonical(key: &str) -> &str {
    ALIASES
        .iter()
        .find(|(alias, _)| *alias == key)
        .map_or(key, |(_, canonical)| canonical)
}

/// Whether `key` (by its own name or an alias, e.g. PAD's `diameter_1`) is a tabular field.
pub fn is_field(key: &str) -> bool {
    FIELDS.contains(&canonical(key))
}

fn number(field: &str, v: &str) -> Result<f64> {
    v.parse::<f64>()
        .map_err(|_| Error::input(field, format!("`{v}` is not a number")))
}

fn yes_no(field: &str, v: &str) -> Result<bool> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "true" | "y" | "1" => Ok(true),
        "no" | "false" | "n" | "0" => Ok(false),
        _ => Err(Error::input(
            field,
            format!("`{v}` is not yes, no or unknown"),
        )),
    }
}

impl Metadata {
    /// Parse raw `(field, value)` pairs: form fields, CLI flags or CSV cells, as text.
    ///
    /// Blank, `UNK`, `unknown` and `auto` mean "not given". Yes/no fields take `yes`/`no` or
    /// `true`/`false`. An unknown field or an unparsable value is an [`Error::Input`] naming the
    /// field; vocabulary and ranges are checked by [`encode`] against the manifest.
    pub fn parse<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Metadata> {
        let mut m = Metadata::default();
        for (key, raw) in pairs {
            let key = canonical(key);
            let v = raw.trim();
            let auto = key == "photo_type" && v.eq_ignore_ascii_case("auto");
            if auto || UNKNOWN.iter().any(|u| u.eq_ignore_ascii_case(v)) {
                if !FIELDS.contains(&key) && key != "photo_type" {
                    return Err(Error::input(key, "is not a metadata field"));
                }
                continue;
            }
            m.set(key, v)?;
        }
        Ok(m)
    }

    fn set(&mut self, key: &str, v: &str) -> Result<()> {
        if let Some(i) = ANSWERS.iter().position(|a| *a == key) {
            *self.answer_mut(i) = Some(yes_no(key, v)?);
            return Ok(());
        }
        match key {
            "age" => self.age = Some(number(key, v)?),
            "sex" => self.sex = Some(v.to_string()),
            "site" => self.site = Some(v.to_string()),
            "diameter_mm" => self.diameter_mm = Some(number(key, v)?),
            "photo_type" => {
                self.photo_type = Some(PhotoKind::parse(v).ok_or_else(|| {
                    Error::input(key, format!("`{v}` is not auto, dermoscopic or clinical"))
                })?)
            }
            _ => return Err(Error::input(key, "is not a metadata field")),
        }
        Ok(())
    }

    /// Parse a JSON object (the page's options): numbers and booleans are taken as their text,
    /// `null` as "not given"; anything else goes through [`Metadata::parse`].
    pub fn from_json(v: &serde_json::Value) -> Result<Metadata> {
        let obj = match v {
            serde_json::Value::Null => return Ok(Metadata::default()),
            serde_json::Value::Object(o) => o,
            _ => return Err(Error::input("metadata", "must be an object")),
        };
        let mut pairs = Vec::with_capacity(obj.len());
        for (k, v) in obj {
            let text = match v {
                serde_json::Value::Null => String::new(),
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                _ => return Err(Error::input(k, "must be text, a number or a boolean")),
            };
            pairs.push((k.as_str(), text));
        }
        Metadata::parse(pairs.iter().map(|(k, v)| (*k, v.as_str())))
    }

    fn answer_mut(&mut self, i: usize) -> &mut Option<bool> {
        match i {
            0 => &mut self.itch,
            1 => &mut self.grew,
            2 => &mut self.hurt,
            3 => &mut self.changed,
            4 => &mut self.bleed,
            _ => &mut self.elevation,
        }
    }

    fn answer(&self, name: &str) -> Option<bool> {
        let i = ANSWERS.iter().position(|a| *a == name)?;
        [
            self.itch,
            self.grew,
            self.hurt,
            self.changed,
            self.bleed,
            self.elevation,
        ][i]
    }

    /// True when at least one tabular field is given (the photo type is not one).
    pub fn any(&self) -> bool {
        !self.given().is_empty()
    }

    /// The tabular fields given, in [`FIELDS`] order: what `metadata_used` lists.
    pub fn given(&self) -> Vec<&'static str> {
        FIELDS
            .iter()
            .copied()
            .filter(|f| self.field(f).is_some())
            .collect()
    }

    fn field(&self, name: &str) -> Option<Field<'_>> {
        match name {
            "age" => self.age.map(Field::Number),
            "sex" => self.sex.as_deref().map(Field::Text),
            "site" => self.site.as_deref().map(Field::Text),
            "diameter_mm" => self.diameter_mm.map(Field::Number),
            other => self.answer(other).map(Field::Bool),
        }
    }
}

enum Field<'a> {
    Number(f64),
    Text(&'a str),
    Bool(bool),
}

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
            (FeatureKind::Boolean, Field::Bool(b)) => out[start] = if b { 1.0 } else { 0.0 },
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
            ..Metadata::default()
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
    fn parses_js_style_input() {
        let json = |t: &str| Metadata::from_json(&serde_json::from_str(t).unwrap());
        assert_eq!(
            json(r#"{"age": "45", "sex": "", "site": null}"#).unwrap(),
            meta(Some(45.0), None, None)
        );
        assert_eq!(
            json(r#"{"age": 12.5, "sex": "male"}"#).unwrap(),
            meta(Some(12.5), Some("male"), None)
        );
        assert!(!json(r#"{"age": ""}"#).unwrap().any());
        let m = json(r#"{"photoType": "clinical", "grew": "yes", "bleed": false, "itch": "UNK", "diameterMm": "6"}"#)
            .unwrap();
        assert_eq!(m.photo_type, Some(PhotoKind::Clinical));
        assert_eq!((m.grew, m.bleed, m.itch), (Some(true), Some(false), None));
        assert_eq!(m.diameter_mm, Some(6.0));
        assert_eq!(m.given(), ["grew", "bleed", "diameter_mm"]);
        assert_eq!(json(r#"{"photoType": "auto"}"#).unwrap().photo_type, None);
        let field = |t: &str| match json(t) {
            Err(Error::Input { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(r#"{"age": "old"}"#), "age");
        assert_eq!(field(r#"{"gender": "male"}"#), "gender");
        assert_eq!(field(r#"{"grew": "maybe"}"#), "grew");
        assert_eq!(
            field(r#"{"age": "auto"}"#),
            "age",
            "auto is for the photo type only"
        );
        assert_eq!(field(r#"{"photoType": "xray"}"#), "photo_type");
        assert_eq!(field(r#"{"diameterMm": "big"}"#), "diameter_mm");
    }

    #[test]
    fn answers_encode_as_one_and_zero_and_missing_as_nan() {
        let mut spec = spec();
        let extra = serde_json::json!([{"name": "grew", "kind": "boolean"}, {"name": "bleed", "kind": "boolean"},
                                       {"name": "diameter_mm", "kind": "numeric", "min": 0, "max": 200}]);
        spec.features
            .extend(serde_json::from_value::<Vec<crate::manifest::Feature>>(extra).unwrap());
        spec.width += 3;
        let m = Metadata::parse([("grew", "Yes"), ("bleed", "no"), ("diameter", "4.5")]).unwrap();
        let v = encode(&m, &spec).unwrap();
        let n = f32::NAN;
        assert!(same(&v, &[n, n, n, n, n, 1.0, 0.0, 4.5]), "{v:?}");
        let m = Metadata::parse([("diameter_mm", "250")]).unwrap();
        assert!(
            matches!(encode(&m, &spec), Err(Error::Input { field, .. }) if field == "diameter_mm")
        );
    }
}
