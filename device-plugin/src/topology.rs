//! Facts about where a VF's traffic goes that change its health rule: a
//! PF enslaved to an SR-IOV VF LAG bond (traffic follows the bond), and a
//! BlueField in DPU mode (representors on the DPU's Arm cores, not here).

use std::collections::BTreeMap;

use sriov_host::{PciFunction, Sysfs};

use crate::links::LinkTable;

/// Mellanox/NVIDIA PCI vendor ID.
const MELLANOX: u16 = 0x15b3;

/// PF device IDs of BlueField, BlueField-2 and BlueField-3.
const BLUEFIELD_PFS: [u16; 3] = [0xa2d2, 0xa2d6, 0xa2dc];

/// Bonding modes mlx5 offloads as SR-IOV VF LAG (the first word of
/// `bonding/mode`).
const VF_LAG_MODES: [&str; 3] = ["active-backup", "balance-xor", "802.3ad"];

/// True for a BlueField PF.
pub fn is_bluefield(pf: &PciFunction) -> bool {
    pf.vendor == MELLANOX && BLUEFIELD_PFS.contains(&pf.device)
}

/// The bond `netdev` is enslaved to when that bond runs a VF LAG mode: its
/// `master` link names it and its `bonding/mode` reads e.g. `802.3ad 4`.
/// A bridge or a bond in another mode gives `None` (own carrier counts).
pub fn vf_lag_bond(sysfs: &Sysfs, netdev: &str) -> Option<String> {
    let master = sysfs.netdev_master(netdev)?;
    let mode = sysfs.netdev_attr(&master, "bonding/mode").ok().flatten()?;
    let name = mode.split_whitespace().next()?;
    VF_LAG_MODES.contains(&name).then_some(master)
}

/// The netlink master (`IFLA_MASTER`) of each uplink as of the last
/// discovery. A PF enslaved to a bond (or released) after discovery sends
/// no uevent and changes nothing sysfs watches tell: netlink is the only
/// sign, and the VF LAG rule needs a rediscovery to read the bond's mode.
#[derive(Debug, Default)]
pub struct UplinkMasters {
    masters: BTreeMap<String, Option<String>>,
}

impl UplinkMasters {
    /// Starts over with `uplinks` and their masters in `links`.
    pub fn reset<'a>(&mut self, uplinks: impl IntoIterator<Item = &'a str>, links: &LinkTable) {
        self.masters = uplinks
            .into_iter()
            .map(|uplink| (uplink.to_string(), links.master_of(uplink).map(str::to_string)))
            .collect();
    }

    /// True when an uplink's master in `links` differs from the one
    /// recorded (then recorded, so one change asks once).
    pub fn changed(&mut self, links: &LinkTable) -> bool {
        let mut changed = false;
        for (uplink, master) in &mut self.masters {
            let now = links.master_of(uplink);
            if master.as_deref() != now {
                *master = now.map(str::to_string);
                changed = true;
            }
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::links::LinkState;

    #[test]
    fn uplink_masters_report_an_enslave_and_a_release_once() {
        let state = |index, master| LinkState {
            index,
            up: true,
            master,
        };
        let mut links = LinkTable::default();
        links.upsert("p0", state(1, None));
        links.upsert("bond1", state(9, None));
        let mut masters = UplinkMasters::default();
        masters.reset(["p0"], &links);
        assert!(!masters.changed(&links));
        links.upsert("p0", state(1, Some(9)));
        assert!(masters.changed(&links));
        assert!(!masters.changed(&links));
        // Another link's master is none of our business.
        links.upsert("eth9", state(5, Some(9)));
        assert!(!masters.changed(&links));
        links.upsert("p0", state(1, None));
        assert!(masters.changed(&links));
    }

    fn netdev(root: &std::path::Path, name: &str) -> std::path::PathBuf {
        let dir = root.join("devices/virtual/net").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::create_dir_all(root.join("class/net")).unwrap();
        let _ = std::os::unix::fs::symlink(&dir, root.join("class/net").join(name));
        dir
    }

    #[test]
    fn only_bonds_in_vf_lag_modes_count() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let pf = netdev(root, "p0");
        let bond = netdev(root, "bond1");
        std::os::unix::fs::symlink("../bond1", pf.join("master")).unwrap();
        let sysfs = Sysfs::new(root);
        // No bonding/ directory: a bridge.
        assert_eq!(vf_lag_bond(&sysfs, "p0"), None);
        std::fs::create_dir_all(bond.join("bonding")).unwrap();
        for (mode, lag) in [
            ("802.3ad 4", true),
            ("active-backup 1", true),
            ("balance-xor 2", true),
            ("balance-rr 0", false),
            ("balance-alb 6", false),
        ] {
            std::fs::write(bond.join("bonding/mode"), format!("{mode}\n")).unwrap();
            assert_eq!(vf_lag_bond(&sysfs, "p0").is_some(), lag, "{mode}");
        }
        assert_eq!(vf_lag_bond(&sysfs, "bond1"), None);
    }
}
