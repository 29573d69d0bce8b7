//! Writing an Interface's `external_ids` (merge or replace).

use super::{count, Error, Vswitch};
use crate::data::{Row, Value};
use crate::ops::{Condition, Mutation, Operation};

impl Vswitch {
    /// Sets `pairs` in the interface's `external_ids`, keeping other keys.
    pub async fn merge_interface_external_ids<K: AsRef<str>, V: AsRef<str>>(
        &self,
        iface: &str,
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<(), Error> {
        let pairs: Vec<(String, String)> = pairs
            .into_iter()
            .map(|(k, v)| (k.as_ref().to_string(), v.as_ref().to_string()))
            .collect();
        let keys = Value::string_set(pairs.iter().map(|(k, _)| k));
        let cond = vec![Condition::eq("name", iface)];
        let op = Operation::Mutate {
            table: "Interface".into(),
            conditions: cond,
            mutations: vec![
                Mutation::delete("external_ids", keys),
                Mutation::insert("external_ids", Value::string_map(pairs)),
            ],
        };
        self.update_interface(iface, op).await
    }

    /// Replaces the interface's whole `external_ids` with `pairs`.
    pub async fn set_interface_external_ids<K: AsRef<str>, V: AsRef<str>>(
        &self,
        iface: &str,
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<(), Error> {
        let row = Row::from([("external_ids".to_string(), Value::string_map(pairs))]);
        let op = Operation::Update {
            table: "Interface".into(),
            conditions: vec![Condition::eq("name", iface)],
            row,
        };
        self.update_interface(iface, op).await
    }

    /// Runs one write on the Interface row named `iface`; no row matched is
    /// [`Error::InterfaceNotFound`].
    async fn update_interface(&self, iface: &str, op: Operation) -> Result<(), Error> {
        let res = self
            .transact(|| format!("set external_ids of interface {iface}"), vec![op])
            .await?;
        if count(res.first()) == 0 {
            return Err(Error::InterfaceNotFound {
                iface: iface.to_string(),
            });
        }
        Ok(())
    }
}
