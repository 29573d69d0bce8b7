//! OVSDB data encoding (RFC 7047 §5.1): atoms, UUIDs, sets, maps and rows.
//!
//! On the wire an atom is a JSON scalar or `["uuid", "…"]` / `["named-uuid", "…"]`;
//! a set is `["set", [atoms]]` (or a bare atom when it has exactly one element);
//! a map is `["map", [[key, value], …]]`. [`Value`] decodes all of these and
//! offers accessors that treat a bare atom as a one-element set.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// A row: column name to value, as found in `insert`/`update` operations and `select` results.
pub type Row = BTreeMap<String, Value>;

/// A UUID as OVSDB prints it (36 characters, lowercase hex and dashes).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Uuid(String);

impl Uuid {
    /// Parses the canonical textual form, rejecting anything else.
    pub fn parse(s: &str) -> Result<Uuid, DecodeError> {
        let ok = s.len() == 36
            && s.char_indices().all(|(i, c)| match i {
                8 | 13 | 18 | 23 => c == '-',
                _ => c.is_ascii_hexdigit(),
            });
        if ok {
            Ok(Uuid(s.to_ascii_lowercase()))
        } else {
            Err(DecodeError::BadUuid { text: s.to_string() })
        }
    }

    /// The textual form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One OVSDB atom.
#[derive(Clone, Debug, PartialEq)]
pub enum Atom {
    /// `integer`.
    Integer(i64),
    /// `real`.
    Real(f64),
    /// `boolean`.
    Boolean(bool),
    /// `string`.
    String(String),
    /// A reference to an existing row: `["uuid", "…"]`.
    Uuid(Uuid),
    /// A reference to a row inserted earlier in the same transaction: `["named-uuid", "…"]`.
    NamedUuid(String),
}

impl Atom {
    /// The string, when this is a string atom.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Atom::String(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, when this is an integer atom.
    pub fn as_integer(&self) -> Option<i64> {
        match self {
            Atom::Integer(i) => Some(*i),
            _ => None,
        }
    }

    /// The UUID, when this is a `["uuid", …]` atom.
    pub fn as_uuid(&self) -> Option<&Uuid> {
        match self {
            Atom::Uuid(u) => Some(u),
            _ => None,
        }
    }

    fn to_json(&self) -> Json {
        match self {
            Atom::Integer(i) => Json::from(*i),
            Atom::Real(r) => Json::from(*r),
            Atom::Boolean(b) => Json::from(*b),
            Atom::String(s) => Json::from(s.as_str()),
            Atom::Uuid(u) => Json::Array(vec!["uuid".into(), u.as_str().into()]),
            Atom::NamedUuid(n) => Json::Array(vec!["named-uuid".into(), n.as_str().into()]),
        }
    }

    fn from_json(json: &Json) -> Result<Atom, DecodeError> {
        match json {
            Json::Bool(b) => Ok(Atom::Boolean(*b)),
            Json::String(s) => Ok(Atom::String(s.clone())),
            Json::Number(n) => match n.as_i64() {
                Some(i) => Ok(Atom::Integer(i)),
                None => n
                    .as_f64()
                    .map(Atom::Real)
                    .ok_or_else(|| DecodeError::unexpected("number", json)),
            },
            Json::Array(a) => match (a.first().and_then(Json::as_str), a.get(1), a.len()) {
                (Some("uuid"), Some(Json::String(s)), 2) => Ok(Atom::Uuid(Uuid::parse(s)?)),
                (Some("named-uuid"), Some(Json::String(s)), 2) => Ok(Atom::NamedUuid(s.clone())),
                _ => Err(DecodeError::unexpected("atom", json)),
            },
            _ => Err(DecodeError::unexpected("atom", json)),
        }
    }
}

impl From<&str> for Atom {
    fn from(s: &str) -> Atom {
        Atom::String(s.to_string())
    }
}
impl From<i64> for Atom {
    fn from(i: i64) -> Atom {
        Atom::Integer(i)
    }
}

/// A column value: an atom, a set or a map.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A single atom (also the wire form of a one-element set).
    Atom(Atom),
    /// `["set", [...]]`; the empty set is how OVSDB says "no value" for optional columns.
    Set(Vec<Atom>),
    /// `["map", [[k, v], ...]]`.
    Map(Vec<(Atom, Atom)>),
}

impl Value {
    /// A map of strings to strings (e.g. `external_ids`).
    pub fn string_map<K: AsRef<str>, V: AsRef<str>>(pairs: impl IntoIterator<Item = (K, V)>) -> Value {
        Value::Map(
            pairs
                .into_iter()
                .map(|(k, v)| (Atom::from(k.as_ref()), Atom::from(v.as_ref())))
                .collect(),
        )
    }

    /// The elements, treating a bare atom as a one-element set. `None` for a map.
    pub fn as_set(&self) -> Option<&[Atom]> {
        match self {
            Value::Atom(a) => Some(std::slice::from_ref(a)),
            Value::Set(s) => Some(s),
            Value::Map(_) => None,
        }
    }

    /// The single atom of an optional column: `None` for the empty set, a map or
    /// a set of several elements.
    pub fn as_optional(&self) -> Option<&Atom> {
        match self.as_set() {
            Some([a]) => Some(a),
            _ => None,
        }
    }

    /// The pairs of a map. The empty set (`["set",[]]`) also reads as an empty map,
    /// since some servers print empty maps that way.
    pub fn as_map(&self) -> Option<&[(Atom, Atom)]> {
        match self {
            Value::Map(m) => Some(m),
            Value::Set(s) if s.is_empty() => Some(&[]),
            _ => None,
        }
    }

    /// A string-to-string map (non-string pairs are skipped). `None` when not a map.
    pub fn to_string_map(&self) -> Option<BTreeMap<String, String>> {
        self.as_map().map(|pairs| {
            pairs
                .iter()
                .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.as_str()?.to_string())))
                .collect()
        })
    }

    /// The UUIDs of a set of references (non-UUID atoms are skipped).
    pub fn uuids(&self) -> Vec<Uuid> {
        self.as_set()
            .unwrap_or_default()
            .iter()
            .filter_map(|a| a.as_uuid().cloned())
            .collect()
    }

    /// Decodes a JSON value in OVSDB notation.
    pub fn from_json(json: &Json) -> Result<Value, DecodeError> {
        if let Json::Array(a) = json {
            match (a.first().and_then(Json::as_str), a.get(1), a.len()) {
                (Some("set"), Some(Json::Array(items)), 2) => {
                    return items
                        .iter()
                        .map(Atom::from_json)
                        .collect::<Result<_, _>>()
                        .map(Value::Set);
                }
                (Some("map"), Some(Json::Array(pairs)), 2) => {
                    return pairs
                        .iter()
                        .map(|p| match p.as_array().map(Vec::as_slice) {
                            Some([k, v]) => Ok((Atom::from_json(k)?, Atom::from_json(v)?)),
                            _ => Err(DecodeError::unexpected("map pair", p)),
                        })
                        .collect::<Result<_, _>>()
                        .map(Value::Map);
                }
                _ => {}
            }
        }
        Atom::from_json(json).map(Value::Atom)
    }

    /// Encodes in OVSDB notation.
    pub fn to_json(&self) -> Json {
        match self {
            Value::Atom(a) => a.to_json(),
            Value::Set(items) => Json::Array(vec![
                "set".into(),
                Json::Array(items.iter().map(Atom::to_json).collect()),
            ]),
            Value::Map(pairs) => Json::Array(vec![
                "map".into(),
                Json::Array(
                    pairs
                        .iter()
                        .map(|(k, v)| Json::Array(vec![k.to_json(), v.to_json()]))
                        .collect(),
                ),
            ]),
        }
    }
}

impl<T: Into<Atom>> From<T> for Value {
    fn from(a: T) -> Value {
        Value::Atom(a.into())
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
        let json = Json::deserialize(deserializer)?;
        Value::from_json(&json).map_err(de::Error::custom)
    }
}

/// A value from the server that does not follow RFC 7047 notation.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Something other than the expected shape.
    #[error("expected {expected}, got {got}")]
    Unexpected {
        /// What was expected.
        expected: &'static str,
        /// The JSON received (truncated).
        got: String,
    },
    /// A `["uuid", …]` whose text is not a UUID.
    #[error("malformed uuid {text:?}")]
    BadUuid {
        /// The text received.
        text: String,
    },
}

impl DecodeError {
    pub(crate) fn unexpected(expected: &'static str, got: &Json) -> DecodeError {
        let mut got = got.to_string();
        if got.len() > 200 {
            let mut cut = 200;
            while !got.is_char_boundary(cut) {
                cut -= 1;
            }
            got.truncate(cut);
            got.push('…');
        }
        DecodeError::Unexpected { expected, got }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_every_notation() {
        let v = Value::from_json(&json!(["set", [1, 2]])).unwrap();
        assert_eq!(v, Value::Set(vec![Atom::Integer(1), Atom::Integer(2)]));
        let v = Value::from_json(&json!(5)).unwrap();
        assert_eq!(v.as_optional().and_then(Atom::as_integer), Some(5));
        assert!(Value::from_json(&json!(["set", []]))
            .unwrap()
            .as_optional()
            .is_none());
        let u = "36e2ef1c-02f5-4e64-8a6e-4f2c1a9f2b00";
        let v = Value::from_json(&json!(["uuid", u])).unwrap();
        assert_eq!(v.uuids(), vec![Uuid::parse(u).unwrap()]);
        let v = Value::from_json(&json!(["map", [["a", "1"], ["b", "2"]]])).unwrap();
        let m = v.to_string_map().unwrap();
        assert_eq!(m.get("b").map(String::as_str), Some("2"));
        assert!(Value::from_json(&json!(["uuid", "nope"])).is_err());
        assert!(Value::from_json(&json!({"x": 1})).is_err());
        assert!(Value::from_json(&json!(["map", [["a"]]])).is_err());
    }

    #[test]
    fn encodes_round_trip() {
        let v = Value::string_map([("iface-id", "p.ns")]);
        let s = serde_json::to_value(&v).unwrap();
        assert_eq!(s, json!(["map", [["iface-id", "p.ns"]]]));
        assert_eq!(Value::from_json(&s).unwrap(), v);
        let n = Value::Atom(Atom::NamedUuid("p".into()));
        assert_eq!(serde_json::to_value(&n).unwrap(), json!(["named-uuid", "p"]));
        let set = Value::Set(vec![Atom::NamedUuid("p".into())]);
        assert_eq!(
            serde_json::to_value(&set).unwrap(),
            json!(["set", [["named-uuid", "p"]]])
        );
    }
}
