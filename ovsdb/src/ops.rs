//! Typed `transact` operations (RFC 7047 §5.2) and their results.

use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::data::{DecodeError, Row, Uuid, Value};

/// A condition `[column, function, value]` of a `where` clause.
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    /// Column name (`_uuid` included).
    pub column: String,
    /// Comparison.
    pub function: Function,
    /// Right-hand side.
    pub value: Value,
}

impl Condition {
    /// `column == value`.
    pub fn eq(column: impl Into<String>, value: impl Into<Value>) -> Condition {
        Condition {
            column: column.into(),
            function: Function::Eq,
            value: value.into(),
        }
    }

    /// `column includes value` (sets and maps).
    pub fn includes(column: impl Into<String>, value: impl Into<Value>) -> Condition {
        Condition {
            column: column.into(),
            function: Function::Includes,
            value: value.into(),
        }
    }
}

impl Serialize for Condition {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (&self.column, self.function, &self.value).serialize(serializer)
    }
}

/// Comparison functions of conditions (the ones this workspace uses).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Function {
    /// `==`
    #[serde(rename = "==")]
    Eq,
    /// `includes`
    #[serde(rename = "includes")]
    Includes,
}

/// A mutation `[column, mutator, value]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Mutation {
    /// Column name.
    pub column: String,
    /// What to do.
    pub mutator: Mutator,
    /// Operand.
    pub value: Value,
}

impl Mutation {
    /// Adds elements (set) or pairs whose key is absent (map).
    pub fn insert(column: impl Into<String>, value: Value) -> Mutation {
        Mutation {
            column: column.into(),
            mutator: Mutator::Insert,
            value,
        }
    }

    /// Removes elements (set), pairs (map), or keys (map, when `value` is a set).
    pub fn delete(column: impl Into<String>, value: Value) -> Mutation {
        Mutation {
            column: column.into(),
            mutator: Mutator::Delete,
            value,
        }
    }
}

impl Serialize for Mutation {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (&self.column, self.mutator, &self.value).serialize(serializer)
    }
}

/// Mutators (the ones this workspace uses).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Mutator {
    /// `+=`
    #[serde(rename = "+=")]
    Add,
    /// `insert`
    #[serde(rename = "insert")]
    Insert,
    /// `delete`
    #[serde(rename = "delete")]
    Delete,
}

/// `until` of a `wait` operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum WaitUntil {
    /// The selected rows equal `rows`.
    #[serde(rename = "==")]
    Equal,
}

/// One operation of a transaction.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Operation {
    /// Inserts a row; `uuid_name` lets later operations refer to it as `["named-uuid", name]`.
    Insert {
        /// Table.
        table: String,
        /// Column values (others take defaults).
        row: Row,
        /// Name for `named-uuid` references.
        #[serde(rename = "uuid-name", skip_serializing_if = "Option::is_none")]
        uuid_name: Option<String>,
    },
    /// Reads rows.
    Select {
        /// Table.
        table: String,
        /// Conditions, all of which must hold.
        #[serde(rename = "where")]
        conditions: Vec<Condition>,
        /// Columns to return (all when `None`).
        #[serde(skip_serializing_if = "Option::is_none")]
        columns: Option<Vec<String>>,
    },
    /// Mutates columns of matching rows.
    Mutate {
        /// Table.
        table: String,
        /// Conditions.
        #[serde(rename = "where")]
        conditions: Vec<Condition>,
        /// Mutations.
        mutations: Vec<Mutation>,
    },
    /// Deletes matching rows.
    Delete {
        /// Table.
        table: String,
        /// Conditions.
        #[serde(rename = "where")]
        conditions: Vec<Condition>,
    },
    /// Checks (or waits, up to `timeout` ms) that the selected columns of matching rows
    /// are (or are not) exactly `rows`; aborts the transaction otherwise.
    Wait {
        /// Table.
        table: String,
        /// Conditions.
        #[serde(rename = "where")]
        conditions: Vec<Condition>,
        /// Columns compared.
        columns: Vec<String>,
        /// Comparison.
        until: WaitUntil,
        /// Expected rows.
        rows: Vec<Row>,
        /// Milliseconds to wait; 0 checks once.
        #[serde(skip_serializing_if = "Option::is_none")]
        timeout: Option<u64>,
    },
    /// A comment written to the database log (`ovsdb-tool show-log`).
    Comment {
        /// Text.
        comment: String,
    },
}

impl Operation {
    /// The `op` name, for error messages.
    pub fn name(&self) -> &'static str {
        match self {
            Operation::Insert { .. } => "insert",
            Operation::Select { .. } => "select",
            Operation::Mutate { .. } => "mutate",
            Operation::Delete { .. } => "delete",
            Operation::Wait { .. } => "wait",
            Operation::Comment { .. } => "comment",
        }
    }

    /// `select` of `columns` (all when empty) from rows matching `conditions`.
    pub fn select(table: &str, conditions: Vec<Condition>, columns: &[&str]) -> Operation {
        Operation::Select {
            table: table.to_string(),
            conditions,
            columns: (!columns.is_empty()).then(|| columns.iter().map(|c| c.to_string()).collect()),
        }
    }
}

/// The result of one successful operation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OperationResult {
    /// `insert`: the new row's UUID.
    pub uuid: Option<Uuid>,
    /// `select`: the rows.
    pub rows: Option<Vec<Row>>,
    /// `mutate`/`delete`: rows affected.
    pub count: Option<u64>,
}

/// An operation result as received: success fields or `error`/`details`.
#[derive(Deserialize)]
pub(crate) struct RawResult {
    uuid: Option<Json>,
    rows: Option<Vec<Row>>,
    count: Option<u64>,
    pub(crate) error: Option<String>,
    pub(crate) details: Option<String>,
}

impl RawResult {
    pub(crate) fn into_result(self) -> Result<OperationResult, DecodeError> {
        let uuid = match self.uuid {
            None => None,
            Some(j) => match Value::from_json(&j)? {
                Value::Atom(crate::data::Atom::Uuid(u)) => Some(u),
                _ => return Err(DecodeError::unexpected("[\"uuid\", …]", &j)),
            },
        };
        Ok(OperationResult {
            uuid,
            rows: self.rows,
            count: self.count,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn operations_serialize_as_rfc7047() {
        let op = Operation::Mutate {
            table: "Bridge".into(),
            conditions: vec![Condition::eq("name", "br-int")],
            mutations: vec![Mutation::insert(
                "ports",
                Value::Set(vec![crate::data::Atom::NamedUuid("p".into())]),
            )],
        };
        assert_eq!(
            serde_json::to_value(&op).unwrap(),
            json!({"op":"mutate","table":"Bridge","where":[["name","==","br-int"]],
                   "mutations":[["ports","insert",["set",[["named-uuid","p"]]]]]})
        );
        let op = Operation::Insert {
            table: "Port".into(),
            row: Row::new(),
            uuid_name: Some("p".into()),
        };
        assert_eq!(
            serde_json::to_value(&op).unwrap(),
            json!({"op":"insert","table":"Port","row":{},"uuid-name":"p"})
        );
        let op = Operation::Comment { comment: "hi".into() };
        assert_eq!(
            serde_json::to_value(&op).unwrap(),
            json!({"op":"comment","comment":"hi"})
        );
        let op = Operation::Wait {
            table: "Port".into(),
            conditions: vec![Condition::eq("name", "x")],
            columns: vec!["name".into()],
            until: WaitUntil::Equal,
            rows: vec![],
            timeout: Some(0),
        };
        assert_eq!(
            serde_json::to_value(&op).unwrap(),
            json!({"op":"wait","table":"Port","where":[["name","==","x"]],"columns":["name"],
                   "until":"==","rows":[],"timeout":0})
        );
    }
}
