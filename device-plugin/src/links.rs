//! The host's network links as last reported by netlink: which exist and
//! which are up. Health is computed from this view, never from sysfs
//! `operstate` (static in simulation).

use std::collections::HashMap;

/// State of one link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkState {
    /// Interface index.
    pub index: u32,
    /// Administratively up and with carrier (`IFF_UP` and `IFF_LOWER_UP`).
    pub up: bool,
    /// Index of its upper device (`IFLA_MASTER`: a bond or bridge).
    pub master: Option<u32>,
}

/// Links of the host namespace by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkTable {
    by_name: HashMap<String, LinkState>,
    /// Index -> current name, so a renamed link is still found by index.
    names: HashMap<u32, String>,
}

impl LinkTable {
    /// Records a link (new or changed); a rename drops the old name, and a
    /// name taken over by a new index (a missed delete) drops the old index.
    /// Returns true when the table changed.
    pub fn upsert(&mut self, name: &str, state: LinkState) -> bool {
        if self.by_name.get(name) == Some(&state) {
            return false;
        }
        if let Some(old) = self.names.insert(state.index, name.to_string()) {
            if old != name {
                self.by_name.remove(&old);
            }
        }
        if let Some(previous) = self.by_name.insert(name.to_string(), state) {
            if previous.index != state.index {
                self.names.remove(&previous.index);
            }
        }
        true
    }

    /// Forgets a deleted link. Returns true when it was known.
    pub fn remove(&mut self, index: u32) -> bool {
        match self.names.remove(&index) {
            Some(name) => self.by_name.remove(&name).is_some(),
            None => false,
        }
    }

    /// The link named `name`.
    pub fn get(&self, name: &str) -> Option<LinkState> {
        self.by_name.get(name).copied()
    }

    /// True when `name` exists.
    pub fn exists(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    /// Name of the upper device (`IFLA_MASTER`) of link `name`.
    pub fn master_of(&self, name: &str) -> Option<&str> {
        self.get(name)?.master.and_then(|m| self.name_of(m))
    }

    /// Name of the link with index `index`.
    pub fn name_of(&self, index: u32) -> Option<&str> {
        self.names.get(&index).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(index: u32, up: bool) -> LinkState {
        LinkState {
            index,
            up,
            master: None,
        }
    }

    #[test]
    fn master_of_names_the_upper_device_by_its_index() {
        let mut t = LinkTable::default();
        t.upsert("bond1", state(9, true));
        t.upsert(
            "p0",
            LinkState {
                master: Some(9),
                ..state(1, true)
            },
        );
        assert_eq!(t.master_of("p0"), Some("bond1"));
        assert_eq!(t.master_of("bond1"), None);
        t.remove(9);
        assert_eq!(t.master_of("p0"), None);
    }

    #[test]
    fn rename_and_delete_follow_the_index() {
        let mut t = LinkTable::default();
        t.upsert("eth0", state(5, true));
        t.upsert("net1", state(5, false));
        assert!(!t.exists("eth0"));
        assert_eq!(t.get("net1"), Some(state(5, false)));
        assert_eq!(t.name_of(5), Some("net1"));
        t.remove(5);
        assert_eq!(t, LinkTable::default());
    }

    #[test]
    fn name_reused_by_a_new_index_forgets_the_old_index() {
        let mut t = LinkTable::default();
        t.upsert("eth0", state(5, true));
        // The delete of index 5 was missed (event overflow).
        t.upsert("eth0", state(6, true));
        assert_eq!(t.name_of(5), None);
        assert!(!t.remove(5));
        assert_eq!(t.get("eth0"), Some(state(6, true)));
    }
}
