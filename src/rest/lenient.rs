//! Tolerant decoding of upstream JSON values: real VBS bodies send numbers as
//! strings, booleans as "Y"/"N", nulls where lists belong, and objects where
//! strings belong. Each helper is a serde `deserialize_with` target.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// A JSON value read as an integer: numbers, numeric strings; anything else is None.
pub(crate) fn as_i64(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A JSON value read as a float: numbers, numeric strings.
pub(crate) fn as_f64(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A JSON value read as a boolean: true/false, "true"/"false", "Y"/"N", 1/0.
pub(crate) fn as_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "y" | "yes" | "1" => Some(true),
            "false" | "n" | "no" | "0" => Some(false),
            _ => None,
        },
        Value::Number(n) => n.as_i64().map(|i| i != 0),
        _ => None,
    }
}

/// A JSON value as text: strings as they are, other scalars and structures as JSON.
pub(crate) fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

pub(crate) fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(as_i64(&Value::deserialize(d)?))
}

pub(crate) fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(as_bool(&Value::deserialize(d)?))
}

pub(crate) fn opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(as_text(&Value::deserialize(d)?))
}

/// A list that upstream may send as null.
pub(crate) fn list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// A string map whose values may be any JSON: non-strings become JSON text,
/// nulls are dropped.
pub(crate) fn text_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let map = Option::<BTreeMap<String, Value>>::deserialize(d)?.unwrap_or_default();
    Ok(map
        .into_iter()
        .filter_map(|(k, v)| as_text(&v).map(|text| (k, text)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_loose_scalars() {
        assert_eq!(as_i64(&json!("0")), Some(0));
        assert_eq!(as_i64(&json!(12)), Some(12));
        assert_eq!(as_i64(&json!(null)), None);
        assert_eq!(as_bool(&json!("Y")), Some(true));
        assert_eq!(as_bool(&json!("N")), Some(false));
        assert_eq!(as_bool(&json!(true)), Some(true));
        assert_eq!(as_bool(&json!("maybe")), None);
        assert_eq!(as_text(&json!({"a": 1})).as_deref(), Some(r#"{"a":1}"#));
    }
}
