//! Field-level validation errors, collected rather than returned one at a time.
//!
//! A user who sends a request with three mistakes should learn about all three in one
//! answer. Parsers here read a JSON object field by field, record every problem with
//! the field's name and a fix, and fail once at the end.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;

/// One problem with one field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FieldError {
    /// Dotted path of the field (`provisioning.vastai.min_dph`), or `$` for the body.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// Every field error found in one request; never empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationErrors(Vec<FieldError>);

impl ValidationErrors {
    /// One error, for callers that found a single problem.
    pub fn single(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self(vec![FieldError { field: field.into(), message: message.into() }])
    }

    /// Adds another problem.
    pub fn push(&mut self, error: FieldError) {
        self.0.push(error);
    }

    /// The individual problems, in the order they were found.
    pub fn fields(&self) -> &[FieldError] {
        &self.0
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", e.field, e.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

/// Collects field errors while reading a JSON object.
///
/// Each accessor returns a usable value even when the field is wrong (the default), so a
/// parser can keep going and report everything; [`FieldReader::finish`] decides.
#[derive(Debug)]
pub struct FieldReader<'a> {
    prefix: String,
    object: Option<&'a Map<String, Value>>,
    seen: Vec<&'static str>,
    errors: Vec<FieldError>,
}

impl<'a> FieldReader<'a> {
    /// Starts reading `value`, which must be a JSON object; `prefix` names where it sits
    /// in the request (empty for the body itself).
    pub fn new(value: &'a Value, prefix: &str) -> Self {
        let mut reader =
            Self { prefix: prefix.to_owned(), object: value.as_object(), seen: Vec::new(), errors: Vec::new() };
        if reader.object.is_none() {
            let what = if prefix.is_empty() { "$".to_owned() } else { prefix.to_owned() };
            reader.errors.push(FieldError {
                field: what,
                message: format!("expected a JSON object, found {}", type_name(value)),
            });
        }
        reader
    }

    fn path(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    /// Records a problem with `name` found by the caller's own checks.
    pub fn error(&mut self, name: &str, message: impl Into<String>) {
        let field = self.path(name);
        self.errors.push(FieldError { field, message: message.into() });
    }

    /// The raw value of `name`, treating JSON `null` as absent.
    pub fn raw(&mut self, name: &'static str) -> Option<&'a Value> {
        self.seen.push(name);
        self.object.and_then(|o| o.get(name)).filter(|v| !v.is_null())
    }

    /// An optional string no longer than `max_len` characters.
    pub fn opt_string(&mut self, name: &'static str, max_len: usize) -> Option<String> {
        let value = self.raw(name)?;
        match value.as_str() {
            Some(s) if s.chars().count() > max_len => {
                self.error(name, format!("is {} characters long; the maximum is {max_len}", s.chars().count()));
                None
            }
            Some(s) => Some(s.to_owned()),
            None => {
                self.error(name, format!("expected a string, found {}", type_name(value)));
                None
            }
        }
    }

    /// A string with a default, no longer than `max_len`; empty strings are rejected when
    /// `required_non_empty`.
    pub fn string(&mut self, name: &'static str, default: &str, max_len: usize, required_non_empty: bool) -> String {
        let value = self.opt_string(name, max_len).unwrap_or_else(|| default.to_owned());
        if required_non_empty && value.trim().is_empty() {
            self.error(name, "must not be empty");
        }
        value
    }

    /// A boolean with a default.
    pub fn bool(&mut self, name: &'static str, default: bool) -> bool {
        match self.raw(name) {
            None => default,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                let found = type_name(other);
                self.error(name, format!("expected true or false, found {found}"));
                default
            }
        }
    }

    /// A finite number within `[min, max]`, with a default.
    pub fn f64_in(&mut self, name: &'static str, default: f64, min: f64, max: f64) -> f64 {
        match self.raw(name) {
            None => default,
            Some(v) => match v.as_f64() {
                Some(x) if x.is_finite() && x >= min && x <= max => x,
                Some(x) => {
                    self.error(name, format!("{x} is out of range; expected a number from {min} to {max}"));
                    default
                }
                None => {
                    let found = type_name(v);
                    self.error(name, format!("expected a number, found {found}"));
                    default
                }
            },
        }
    }

    /// A whole number within `[min, max]`, with a default.
    pub fn u64_in(&mut self, name: &'static str, default: u64, min: u64, max: u64) -> u64 {
        match self.raw(name) {
            None => default,
            Some(v) => match v.as_u64() {
                Some(x) if (min..=max).contains(&x) => x,
                _ if v.is_number() => {
                    self.error(name, format!("{v} is out of range; expected a whole number from {min} to {max}"));
                    default
                }
                _ => {
                    let found = type_name(v);
                    self.error(name, format!("expected a whole number, found {found}"));
                    default
                }
            },
        }
    }

    /// Merges errors found by a nested reader.
    pub fn absorb(&mut self, nested: FieldReader<'_>) {
        let mut nested = nested;
        nested.reject_unknown();
        self.errors.append(&mut nested.errors);
    }

    fn reject_unknown(&mut self) {
        let Some(object) = self.object else { return };
        let mut unknown: Vec<&String> = object.keys().filter(|k| !self.seen.contains(&k.as_str())).collect();
        unknown.sort();
        for key in unknown {
            let mut known = self.seen.clone();
            known.sort_unstable();
            known.dedup();
            let field = self.path(key);
            self.errors
                .push(FieldError { field, message: format!("unknown field; expected one of: {}", known.join(", ")) });
        }
    }

    /// Fails with every error found, including unknown fields.
    pub fn finish(mut self) -> Result<(), ValidationErrors> {
        self.reject_unknown();
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ValidationErrors(self.errors))
        }
    }
}

/// Human name of a JSON value's type, for error messages.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Every kind of mistake is reported together, each naming its field.
    #[test]
    fn collects_all_errors() {
        let body = json!({"a": 5, "b": "x", "c": -1, "zz": true});
        let mut r = FieldReader::new(&body, "");
        r.opt_string("a", 10);
        r.bool("b", false);
        r.u64_in("c", 1, 1, 10);
        let errs = r.finish().unwrap_err();
        let fields: Vec<_> = errs.fields().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["a", "b", "c", "zz"]);
        assert!(errs.to_string().contains("zz: unknown field; expected one of: a, b, c"));
    }

    /// A body that is not an object is rejected with the type found.
    #[test]
    fn non_object_body() {
        let body = json!([1, 2]);
        let errs = FieldReader::new(&body, "").finish().unwrap_err();
        assert_eq!(errs.fields()[0].field, "$");
        assert!(errs.fields()[0].message.contains("an array"));
    }

    /// Length limits count characters, not bytes.
    #[test]
    fn length_counts_characters() {
        let body = json!({"s": "ééé"});
        let mut r = FieldReader::new(&body, "");
        assert_eq!(r.opt_string("s", 3).as_deref(), Some("ééé"));
        assert!(r.finish().is_ok());
    }
}
