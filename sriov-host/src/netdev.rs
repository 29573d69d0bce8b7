//! Attributes of network devices under `class/net/<ifname>`.

use std::io;
use std::path::PathBuf;

use crate::address::PciAddress;
use crate::sysfs::{link_target_name, read_attr, Sysfs};

/// Reading a netdev attribute failed for a reason other than "the device has
/// no such attribute".
#[derive(Debug, thiserror::Error)]
#[error("cannot read {}", path.display())]
pub struct NetdevError {
    /// The attribute file.
    pub path: PathBuf,
    /// The cause.
    #[source]
    pub source: io::Error,
}

impl Sysfs {
    /// Reads `class/net/<ifname>/<attribute>`, trimmed. `Ok(None)` when the
    /// netdev or the attribute does not exist, is empty, or the read fails
    /// with EOPNOTSUPP.
    pub fn netdev_attr(&self, ifname: &str, attribute: &str) -> Result<Option<String>, NetdevError> {
        let path = self.class_net_dir().join(ifname).join(attribute);
        match read_attr(&path) {
            Ok(Some(value)) if value.is_empty() => Ok(None),
            Ok(value) => Ok(value),
            Err(source) => Err(NetdevError { path, source }),
        }
    }

    /// The interface index sysfs records for `ifname` (its `ifindex` file).
    ///
    /// Remembering it lets callers follow a netdev through later renames,
    /// which a static (simulated) tree does not show under the new name.
    pub fn netdev_ifindex(&self, ifname: &str) -> Option<u32> {
        self.netdev_attr(ifname, "ifindex").ok()??.parse().ok()
    }

    /// The PCI function a netdev belongs to (its `device` link), if any.
    ///
    /// Virtual devices (veth, bridges) have no such link and give `None`.
    pub fn pci_address_of_netdev(&self, ifname: &str) -> Option<PciAddress> {
        let link = self.class_net_dir().join(ifname).join("device");
        link_target_name(&link).ok()??.parse().ok()
    }

    /// The netdev's upper device (its `master` link: a bond or bridge it is
    /// enslaved to), if any.
    pub fn netdev_master(&self, ifname: &str) -> Option<String> {
        link_target_name(&self.class_net_dir().join(ifname).join("master"))
            .ok()
            .flatten()
    }
}
