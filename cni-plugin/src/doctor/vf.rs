//! Per-VF checks: the bound driver is the one its pool selects, and its representor exists and
//! is up (a representor that is a port of the OVS bridge and down drops the pod's traffic).

use std::collections::{BTreeMap, HashMap, HashSet};

use sriov_host::{PciAddress, Representor, Sysfs};

use super::report::Check;
use super::scope::{PfTarget, VfTarget};
use crate::netlink::link::Link;

/// Links of the doctor's namespace, by name and by ifindex.
#[derive(Debug, Default)]
pub struct Links {
    by_name: HashMap<String, Link>,
    by_index: HashMap<u32, Link>,
}

impl Links {
    /// Indexes `links`.
    pub fn new(links: Vec<Link>) -> Links {
        let by_index = links.iter().map(|l| (l.index, l.clone())).collect();
        let by_name = links.into_iter().map(|l| (l.name.clone(), l)).collect();
        Links { by_name, by_index }
    }

    /// The link named `name`, else the one with the ifindex sysfs records for it (a static
    /// sysfs tree keeps a renamed netdev's old name).
    pub fn find(&self, sysfs: &Sysfs, name: &str) -> Option<&Link> {
        self.by_name
            .get(name)
            .or_else(|| sysfs.netdev_ifindex(name).and_then(|i| self.by_index.get(&i)))
    }
}

/// The driver check of one VF.
pub fn driver(pf: &PfTarget, vf: &VfTarget) -> Check {
    const CHECK: &str = "vf-driver";
    let address = vf.function.address;
    let subject = match vf.function.vf_index {
        Some(i) => format!("{address} (VF {i} of {})", pf.function.address),
        None => address.to_string(),
    };
    let bound = vf.function.driver.as_deref();
    let wanted = vf.pool.as_ref().map(|p| p.drivers.as_slice()).unwrap_or_default();
    let pool = vf
        .pool
        .as_ref()
        .map(|p| format!(" (pool {})", p.resource))
        .unwrap_or_default();
    match bound {
        Some(d) if wanted.is_empty() || wanted.iter().any(|w| w == d) => {
            Check::ok(CHECK, subject, format!("bound to {d}{pool}"))
        }
        _ => {
            let want = wanted.first().map(String::as_str).unwrap_or("mlx5_core");
            let bind = format!("echo {address} > /sys/bus/pci/drivers/{want}/bind");
            let (found, fix) = match bound {
                Some(d) => (
                    format!("bound to {d}, pool wants {}{pool}", wanted.join(" or ")),
                    format!("echo {address} > /sys/bus/pci/drivers/{d}/unbind && {bind}"),
                ),
                None if wanted.is_empty() => ("unbound: no driver".to_string(), bind),
                None => (format!("unbound, pool wants {}{pool}", wanted.join(" or ")), bind),
            };
            if wanted.is_empty() {
                Check::warn(CHECK, subject, found).fix(fix)
            } else {
                Check::fail(CHECK, subject, found).fix(fix)
            }
        }
    }
}

/// A VF whose sysfs entry cannot be read: its driver and representor are not checked.
pub fn unreadable(sysfs: &Sysfs, pf: &PfTarget, address: &PciAddress) -> Check {
    let why = match sysfs.pci_function(address) {
        Err(e) => sriov_logging::error_chain(&e),
        Ok(_) => "it vanished while listed".to_string(),
    };
    Check::warn(
        "vf-driver",
        format!("{address} (VF of {})", pf.function.address),
        format!("unreadable sysfs entry, not checked: {why}"),
    )
}

/// The representor check of one VF; `reps` are the PF's representors by VF index, `on_bridge`
/// the names of the OVS bridge's ports.
pub fn representor(
    sysfs: &Sysfs,
    pf: &PfTarget,
    vf: &VfTarget,
    reps: &BTreeMap<u32, Representor>,
    links: &Links,
    on_bridge: &HashSet<String>,
) -> Check {
    const CHECK: &str = "vf-representor";
    let address = vf.function.address;
    let Some(index) = vf.function.vf_index else {
        return Check::warn(
            CHECK,
            address.to_string(),
            "no VF index (no virtfn link on its PF)",
        );
    };
    let subject = format!("{address} (VF {index} of {})", pf.function.address);
    let Some(rep) = reps.get(&index) else {
        let path = pf.numvfs_path();
        let n = pf.function.sriov.map(|s| s.num_vfs).unwrap_or(1);
        return Check::fail(
            CHECK,
            subject,
            format!("no representor netdev for VF {index} on the PF's eswitch (recreating the VFs in switchdev mode creates them)"),
        )
        .fix(format!("echo 0 > {path} && echo {n} > {path}"));
    };
    let Some(link) = links.find(sysfs, &rep.netdev) else {
        return Check::warn(
            CHECK,
            subject,
            format!(
                "representor {} is in sysfs but not in this network namespace",
                rep.netdev
            ),
        );
    };
    let attached = on_bridge.contains(&link.name);
    match (link.up, attached) {
        (true, _) => Check::ok(CHECK, subject, format!("representor {} up", link.name)),
        (false, true) => Check::fail(
            CHECK,
            subject,
            format!("representor {} is an OVS port and down", link.name),
        )
        .fix(format!("ip link set {} up", link.name)),
        (false, false) => Check::warn(
            CHECK,
            subject,
            format!("representor {} down (free VF: ADD sets it up)", link.name),
        )
        .fix(format!("ip link set {} up", link.name)),
    }
}
