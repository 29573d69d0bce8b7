//! Naming the key behind a serde type error of a JSON object, with the JSON type it needs:
//! `"mtu":"1400"` reads `field "mtu" must be a JSON number (an integer, e.g. 1400)` rather
//! than serde's `invalid type: string "1400", expected u32`.

use crate::netconf::NetconfError;
use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};

/// More than the JSON type, for keys where it helps.
const DETAILS: &[(&str, &str)] = &[
    ("mtu", "an integer, e.g. 1400"),
    ("vlan", "an integer from 1 to 4094"),
    ("ovnInstalledTimeout", "whole seconds, e.g. 30"),
    (
        "cni.dev/valid-attachments",
        "of {\"containerID\", \"ifname\"} objects",
    ),
    ("cni.dev/attachments", "of {\"containerID\", \"ifname\"} objects"),
];

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

/// `value` as an error message shows it: `string "1400"`, `number 1400`.
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "a list".to_string(),
        Value::Object(_) => "an object".to_string(),
    }
}

/// `T` parsed from an object holding only `key: value`.
fn parse_alone<T: DeserializeOwned>(key: &str, value: Value) -> Result<T, serde_json::Error> {
    serde_json::from_value(Value::Object(Map::from_iter([(key.to_string(), value)])))
}

/// The JSON kinds `T` takes for `key`, found by trying one value of each; so keys added to
/// `T` later are described right without a table.
fn accepted_kinds<T: DeserializeOwned>(key: &str) -> Vec<&'static str> {
    [json!(""), json!(0), json!(false), json!({}), json!([])]
        .into_iter()
        .filter_map(|probe| {
            let kind = kind_of(&probe);
            parse_alone::<T>(key, probe).is_ok().then_some(kind)
        })
        .collect()
}

/// For an `object` that `T` (every field optional) refused: the first key that `T` refuses
/// alone, with what it must be (`a JSON number (an integer, e.g. 1400)`) and what it is
/// (`string "1400"`). `None` when no single key explains the error.
pub fn find<T: DeserializeOwned>(object: &Map<String, Value>) -> Option<NetconfError> {
    object.iter().find_map(|(key, value)| {
        let source = parse_alone::<T>(key, value.clone()).err()?;
        let kinds = accepted_kinds::<T>(key);
        let found_kind = kind_of(value);
        let detail = DETAILS
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, d)| format!(" ({d})"));
        let expected = match detail {
            // Right kind, wrong inside (a nested key, a number out of range): the parser's
            // words name it best.
            None if kinds.contains(&found_kind) => format!("a well-formed JSON {found_kind} ({source})"),
            Some(d) if kinds.contains(&found_kind) => format!("a JSON {found_kind}{d}"),
            d => {
                let d = d.unwrap_or_default();
                let names: Vec<String> = kinds.iter().map(|kind| format!("a JSON {kind}{d}")).collect();
                names.join(" or ")
            }
        };
        Some(NetconfError::FieldType {
            field: key.clone(),
            expected,
            found: describe(value),
            source,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A configuration with a key no table knows, as a new netconf key would be.
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Raw {
        #[serde(rename = "applyTimeout")]
        apply_timeout: Option<u64>,
        name: Option<String>,
    }

    /// What the error says: field, expected, found.
    struct Said {
        field: String,
        expected: String,
        found: String,
    }

    fn error_for(v: Value) -> Said {
        match find::<Raw>(v.as_object().unwrap()) {
            Some(NetconfError::FieldType {
                field,
                expected,
                found,
                ..
            }) => Said {
                field,
                expected,
                found,
            },
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn expected_type_of_a_key_comes_from_its_rust_type() {
        let f = error_for(json!({"name": "ok", "applyTimeout": "5"}));
        assert_eq!(
            (f.field.as_str(), f.expected.as_str(), f.found.as_str()),
            ("applyTimeout", "a JSON number", r#"string "5""#)
        );
        let f = error_for(json!({"applyTimeout": -1}));
        assert!(
            f.expected
                .starts_with("a well-formed JSON number (invalid value: integer `-1`"),
            "{}",
            f.expected
        );
        let f = error_for(json!({"name": ["a"]}));
        assert_eq!(
            (f.expected.as_str(), f.found.as_str()),
            ("a JSON string", "a list")
        );
    }

    #[test]
    fn well_typed_objects_name_no_field() {
        assert!(find::<Raw>(json!({"name": "x", "applyTimeout": 3}).as_object().unwrap()).is_none());
    }
}
