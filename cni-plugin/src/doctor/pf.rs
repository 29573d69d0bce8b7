//! Per-PF checks: eswitch mode, `hw-tc-offload`, VF count, bond membership.

use std::collections::BTreeMap;

use sriov_host::{EswitchError, EswitchMode, Sysfs};

use super::ethtool;
use super::report::Check;
use super::scope::PfTarget;

/// Bond modes SR-IOV VF LAG offloads (the guide: active-backup, XOR, LACP).
pub const VF_LAG_MODES: [&str; 3] = ["active-backup", "balance-xor", "802.3ad"];

/// Every PF check of `pf`; also returns whether its eswitch is in switchdev mode.
pub fn checks(sysfs: &Sysfs, pf: &PfTarget) -> (Vec<Check>, bool) {
    let (eswitch, switchdev) = eswitch(sysfs, pf);
    let mut out = vec![eswitch];
    match &pf.netdev {
        Some(netdev) => out.push(tc_offload(&pf.label(), netdev)),
        // Without a netdev neither TC offload nor bond membership can be read: say so.
        None => out.push(Check::warn(
            "pf-netdev",
            pf.label(),
            "no netdev under the PF in sysfs (driver unbound, or moved to another namespace): hw-tc-offload and bond not checked",
        )),
    }
    out.push(numvfs(pf));
    if let Some(netdev) = &pf.netdev {
        out.push(bond(sysfs, &pf.label(), netdev));
    }
    (out, switchdev)
}

fn eswitch(sysfs: &Sysfs, pf: &PfTarget) -> (Check, bool) {
    const CHECK: &str = "pf-eswitch-mode";
    let address = pf.function.address;
    let fix = switchdev_fix(sysfs, pf);
    match sysfs.eswitch_mode(&address) {
        Ok(EswitchMode::Switchdev) => (Check::ok(CHECK, pf.label(), "switchdev"), true),
        Ok(EswitchMode::Legacy) => (Check::fail(CHECK, pf.label(), "legacy: VFs have no representors").fix(fix), false),
        Err(EswitchError::NoModeFile { netdevs, .. }) => (
            Check::warn(
                CHECK,
                pf.label(),
                format!("no compat/devlink/mode under its netdevs {netdevs:?}: not an mlx5 PF, or its netdev is in another namespace"),
            ),
            false,
        ),
        Err(e) => (
            Check::warn(CHECK, pf.label(), format!("cannot read: {}", sriov_logging::error_chain(&e))),
            false,
        ),
    }
}

/// The guide's sequence as one shell command: unbind the PF's bound VFs (mlx5 refuses the mode
/// change while they are bound), switch the eswitch, bind them back to the same drivers.
pub fn switchdev_fix(sysfs: &Sysfs, pf: &PfTarget) -> String {
    let set = format!(
        "devlink dev eswitch set pci/{} mode switchdev",
        pf.function.address
    );
    let mut bound: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for vf in &pf.function.vfs {
        let link = sysfs.pci_device_dir(vf).join("driver");
        if let Some(driver) = std::fs::read_link(link)
            .ok()
            .and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()))
        {
            bound.entry(driver).or_default().push(vf.to_string());
        }
    }
    if bound.is_empty() {
        return set;
    }
    let each = |action: &str| {
        bound
            .iter()
            .map(|(driver, vfs)| {
                format!(
                    "for vf in {}; do echo $vf > /sys/bus/pci/drivers/{driver}/{action}; done",
                    vfs.join(" ")
                )
            })
            .collect::<Vec<_>>()
            .join(" && ")
    };
    format!("{} && {set} && {}", each("unbind"), each("bind"))
}

/// `hw-tc-offload` on the PF (uplink) netdev, as `ethtool -k` shows it.
pub fn tc_offload(subject: &str, netdev: &str) -> Check {
    const CHECK: &str = "pf-hw-tc-offload";
    match ethtool::feature(netdev, "hw-tc-offload") {
        Ok(Some(f)) if f.active => Check::ok(CHECK, subject, format!("hw-tc-offload on {netdev}")),
        Ok(Some(f)) if f.available => Check::fail(CHECK, subject, format!("hw-tc-offload off on {netdev}"))
            .fix(format!("ethtool -K {netdev} hw-tc-offload on")),
        Ok(Some(_)) => Check::warn(
            CHECK,
            subject,
            format!("{netdev} cannot offload TC flows (hw-tc-offload fixed off: a veth or a NIC without TC offload)"),
        ),
        Ok(None) => Check::warn(CHECK, subject, format!("the kernel names no hw-tc-offload feature for {netdev}")),
        Err(e) => Check::warn(
            CHECK,
            subject,
            format!("{} (run the doctor in the host network namespace)", sriov_logging::error_chain(&e)),
        ),
    }
}

fn numvfs(pf: &PfTarget) -> Check {
    const CHECK: &str = "pf-sriov-numvfs";
    let Some(sriov) = pf.function.sriov else {
        return Check::warn(CHECK, pf.label(), "no sriov_totalvfs: not an SR-IOV PF");
    };
    let path = pf.numvfs_path();
    let found = format!("{} of {} VFs", sriov.num_vfs, sriov.total_vfs);
    if sriov.num_vfs == 0 {
        Check::fail(CHECK, pf.label(), found).fix(format!("echo {} > {path}", sriov.total_vfs))
    } else if sriov.num_vfs > sriov.total_vfs {
        Check::fail(CHECK, pf.label(), format!("{found}: more than sriov_totalvfs"))
            .fix(format!("echo 0 > {path} && echo {} > {path}", sriov.total_vfs))
    } else {
        Check::ok(CHECK, pf.label(), found)
    }
}

/// Not in a bond, or in one whose mode SR-IOV VF LAG offloads (sysfs `master`, `bonding/mode`).
fn bond(sysfs: &Sysfs, subject: &str, netdev: &str) -> Check {
    const CHECK: &str = "pf-bond";
    let link = sysfs.root().join("class/net").join(netdev).join("master");
    let master = std::fs::read_link(&link).ok();
    let Some(master) = master.and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned())) else {
        return Check::ok(CHECK, subject, format!("{netdev} is not enslaved"));
    };
    let mode = match sysfs.netdev_attr(&master, "bonding/mode") {
        Ok(Some(mode)) => mode,
        Ok(None) => {
            return Check::ok(
                CHECK,
                subject,
                format!("{netdev}'s master {master} is not a bond"),
            )
        }
        Err(e) => return Check::warn(CHECK, subject, sriov_logging::error_chain(&e)),
    };
    // `802.3ad 4`: the name, then the number.
    let name = mode.split_whitespace().next().unwrap_or_default();
    if VF_LAG_MODES.contains(&name) {
        Check::ok(
            CHECK,
            subject,
            format!("in bond {master}, mode {name} (SR-IOV VF LAG)"),
        )
    } else {
        Check::fail(
            CHECK,
            subject,
            format!(
                "in bond {master}, mode {name}: VF LAG offloads only active-backup, balance-xor, 802.3ad (or recreate {master} in one of them)"
            ),
        )
        .fix(format!("ip link set {netdev} nomaster"))
    }
}
