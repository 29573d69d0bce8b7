//! `sriov-ovs doctor` on a simulated node (sysfs tree + veth VFs in the namespace of a private
//! OVS): each FAIL the guide's prerequisites can produce, once, by its check name; the JSON
//! shape and the exit code. (The healthy node, with OVN and the device plugin running, is
//! tested end to end in `tests/tests/doctor.rs`.)

mod common;

use common::{Node, BIN};
use serde_json::Value;
use simnode::{EswitchMode, VfDriver};
use std::process::Command;

/// The config of the guide's pool: ConnectX-5 VFs bound to mlx5_core.
const CONFIG: &str = r#"{"resourceList":[{"resourcePrefix":"mellanox.com","resourceName":"cx5_sriov_switchdev",
  "selectors":{"vendors":["15b3"],"devices":["1018"],"drivers":["mlx5_core"]}}]}"#;

/// A node whose OVS has `br-int` and `hw-offload=true`.
fn node(vfs: u32, tweak: impl FnOnce(simnode::SimNodeSpec) -> simnode::SimNodeSpec) -> Node {
    let n = Node::with(vfs, tweak);
    n.ovs.add_bridge("br-int").unwrap();
    n.ovs
        .vsctl(["set", "Open_vSwitch", ".", "other_config:hw-offload=true"])
        .unwrap();
    std::fs::write(n.dir.path().join("sriovdp.json"), CONFIG).unwrap();
    n
}

/// Runs `sriov-ovs doctor --json` in the node; returns the exit code and the report.
fn doctor(n: &Node, extra: &[&str]) -> (i32, Value) {
    let out = Command::new("ip")
        .args(["netns", "exec", n.ns(), BIN, "doctor", "--json"])
        .arg("--config-file")
        .arg(n.dir.path().join("sriovdp.json"))
        .arg("--ovsdb")
        .arg(n.ovs.endpoint())
        .arg("--device-plugin-path")
        .arg(n.dir.path().join("device-plugins"))
        .args(extra)
        .env("SRIOV_SYSFS_ROOT", n.sim.sysfs_root())
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {} stderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap(), json)
}

/// The results of check `name`.
fn results<'a>(report: &'a Value, name: &str) -> Vec<&'a Value> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["check"] == name)
        .collect()
}

/// The statuses of check `name`, in order.
fn statuses(report: &Value, name: &str) -> Vec<String> {
    results(report, name)
        .iter()
        .map(|c| c["status"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn json_report_has_counts_and_one_object_per_check() {
    let n = node(2, |s| s);
    let (code, report) = doctor(&n, &[]);
    let checks = report["checks"].as_array().unwrap();
    let count = |s: &str| checks.iter().filter(|c| c["status"] == s).count() as u64;
    assert_eq!(report["ok"].as_u64(), Some(count("OK")));
    assert_eq!(report["warn"].as_u64(), Some(count("WARN")));
    assert_eq!(report["fail"].as_u64(), Some(count("FAIL")));
    for c in checks {
        for key in ["check", "subject", "status", "found"] {
            assert!(c[key].is_string(), "{key} missing in {c}");
        }
        assert_eq!(
            c["fix"].is_string(),
            c["status"] != "OK" && c.get("fix").is_some(),
            "{c}"
        );
        assert!(
            c["status"] != "FAIL" || c["fix"].is_string(),
            "a FAIL without a fix: {c}"
        );
    }
    // No device plugin runs here: its socket is missing, which fails the node.
    assert_eq!(statuses(&report, "device-plugin"), ["FAIL"]);
    assert_eq!(code, 1);
    assert_eq!(statuses(&report, "pf-eswitch-mode"), ["OK"]);
    assert_eq!(statuses(&report, "vf-driver"), ["OK", "OK"]);
    assert_eq!(statuses(&report, "vf-representor"), ["OK", "OK"]);
    assert_eq!(statuses(&report, "ovs-hw-offload"), ["OK"]);
    // Veths cannot offload TC: a warning that says so, not a failure.
    let tc = results(&report, "pf-hw-tc-offload");
    assert_eq!(tc[0]["status"], "WARN");
    assert!(
        tc[0]["found"]
            .as_str()
            .unwrap()
            .contains("cannot offload TC flows"),
        "{}",
        tc[0]
    );
}

#[test]
fn text_output_is_one_line_per_check_and_exit_code_follows_failures() {
    let n = node(1, |s| s);
    n.ovs
        .vsctl([
            "set",
            "Open_vSwitch",
            ".",
            "external_ids:system-id=node1",
            "external_ids:ovn-remote=unix:/nonexistent/sb.sock",
            "external_ids:ovn-encap-type=geneve",
            "external_ids:ovn-encap-ip=192.0.2.1",
        ])
        .unwrap();
    let out = Command::new("ip")
        .args(["netns", "exec", n.ns(), BIN, "doctor"])
        .arg("--ovsdb")
        .arg(n.ovs.endpoint())
        // Not the host's /run/ovn: an ovn-controller running there must not answer.
        .arg("--ovn-rundir")
        .arg(n.dir.path())
        .arg("--device-plugin-path")
        .arg(n.dir.path().join("device-plugins"))
        .env("SRIOV_SYSFS_ROOT", n.sim.sysfs_root())
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let summary = lines.last().unwrap();
    let counted: usize = summary
        .split(", ")
        .map(|p| p.split(' ').next().unwrap().parse::<usize>().unwrap())
        .sum();
    assert_eq!(counted, lines.len() - 1, "{text}");
    assert!(lines[..lines.len() - 1]
        .iter()
        .all(|l| ["OK ", "WARN ", "FAIL "].iter().any(|p| l.starts_with(p))));
    // Without a config nothing is required of the device plugin, and no ovn-controller runs
    // here to ask about its connection: warnings only, exit 0.
    assert!(
        text.contains("\nWARN ovn-controller   chassis node1: encap geneve 192.0.2.1; connection unknown"),
        "{text}"
    );
    assert!(!text.contains("\nFAIL "), "{text}");
    assert_eq!(out.status.code(), Some(0), "{text}");
    let bad = Command::new(BIN).args(["doctor", "--nope"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn legacy_eswitch_fails_pf_eswitch_mode() {
    let n = node(2, |s| s.with_eswitch(EswitchMode::Legacy));
    let (code, report) = doctor(&n, &[]);
    let c = results(&report, "pf-eswitch-mode")[0];
    assert_eq!(c["status"], "FAIL", "{c}");
    // The guide's sequence, runnable as printed: unbind the bound VFs, switch, bind them back.
    let vfs = format!("{} {}", n.vf_pci(0), n.vf_pci(1));
    assert_eq!(
        c["fix"],
        format!(
            "for vf in {vfs}; do echo $vf > /sys/bus/pci/drivers/mlx5_core/unbind; done && \
             devlink dev eswitch set pci/{} mode switchdev && \
             for vf in {vfs}; do echo $vf > /sys/bus/pci/drivers/mlx5_core/bind; done",
            n.sim.pf(0).pci
        ),
        "{c}"
    );
    assert_eq!(code, 1);
}

#[test]
fn legacy_eswitch_without_bound_vfs_fix_is_the_bare_devlink_command() {
    let n = node(1, |s| {
        s.with_eswitch(EswitchMode::Legacy)
            .with_vf_driver(VfDriver::Unbound)
    });
    let (_, report) = doctor(&n, &[]);
    let c = results(&report, "pf-eswitch-mode")[0];
    assert_eq!(c["status"], "FAIL", "{c}");
    assert_eq!(
        c["fix"],
        format!("devlink dev eswitch set pci/{} mode switchdev", n.sim.pf(0).pci)
    );
}

#[test]
fn pf_without_vfs_that_the_config_would_pool_fails_pf_sriov_numvfs() {
    // After a reboot sriov_numvfs is 0: no VF exists for a selector to match, yet the PF is the
    // one the guide's pool (vendor 15b3, VF device 1018) is about.
    let n = node(0, |s| s);
    let (code, report) = doctor(&n, &[]);
    let c = results(&report, "pf-sriov-numvfs");
    assert_eq!(c.len(), 1, "{report}");
    assert_eq!(c[0]["status"], "FAIL", "{}", c[0]);
    assert_eq!(c[0]["found"], "0 of 127 VFs");
    let pf = n.sim.pf(0).uplink.name.clone();
    assert_eq!(
        c[0]["fix"],
        format!("echo 127 > /sys/class/net/{pf}/device/sriov_numvfs")
    );
    assert_eq!(code, 1);
    // A pool for another VF device ID does not drag the PF in.
    let other = CONFIG.replace("\"1018\"", "\"101e\"");
    std::fs::write(n.dir.path().join("sriovdp.json"), other).unwrap();
    let (_, report) = doctor(&n, &[]);
    assert!(results(&report, "pf-sriov-numvfs").is_empty(), "{report}");
    assert_eq!(statuses(&report, "pf"), ["WARN"]);
}

#[test]
fn unreadable_representor_listing_warns_once_instead_of_failing_every_vf() {
    let n = node(2, |s| s);
    let root = n.sim.sysfs_root();
    // A read error (EISDIR here; EIO on a sick device) on one representor's phys_switch_id.
    let attr = std::fs::canonicalize(root.join("class/net").join(n.rep_name(0)))
        .unwrap()
        .join("phys_switch_id");
    std::fs::remove_file(&attr).unwrap();
    std::fs::create_dir(&attr).unwrap();
    let (_, report) = doctor(&n, &[]);
    let reps = results(&report, "vf-representor");
    assert_eq!(reps.len(), 1, "{report}");
    assert_eq!(reps[0]["status"], "WARN", "{}", reps[0]);
    assert!(
        reps[0]["found"]
            .as_str()
            .unwrap()
            .starts_with("cannot list the PF's representors: "),
        "{}",
        reps[0]
    );
    // The VFs themselves are still checked.
    assert_eq!(statuses(&report, "vf-driver"), ["OK", "OK"]);
}

#[test]
fn pf_in_a_plain_bond_fails_pf_bond_and_a_vf_lag_bond_passes() {
    let n = node(1, |s| s);
    let pf = n.sim.pf(0).uplink.name.clone();
    let root = n.sim.sysfs_root();
    // The kernel here has no bonding module: the tree gets what sysfs shows for an enslaved PF.
    let bond = format!("{}b", n.sim.prefix());
    let bond_dir = root.join("devices/virtual/net").join(&bond);
    std::fs::create_dir_all(bond_dir.join("bonding")).unwrap();
    std::os::unix::fs::symlink(&bond_dir, root.join("class/net").join(&bond)).unwrap();
    std::os::unix::fs::symlink(
        format!("../{bond}"),
        root.join("class/net").join(&pf).join("master"),
    )
    .unwrap();
    std::fs::write(bond_dir.join("bonding/mode"), "balance-rr 0\n").unwrap();
    let (code, report) = doctor(&n, &[]);
    let c = results(&report, "pf-bond")[0];
    assert_eq!(c["status"], "FAIL", "{c}");
    assert!(c["found"].as_str().unwrap().contains("balance-rr"), "{c}");
    assert_eq!(c["fix"], format!("ip link set {pf} nomaster"));
    assert_eq!(code, 1);
    std::fs::write(bond_dir.join("bonding/mode"), "802.3ad 4\n").unwrap();
    let (_, report) = doctor(&n, &[]);
    assert_eq!(statuses(&report, "pf-bond"), ["OK"]);
}

#[test]
fn unbound_vf_fails_vf_driver() {
    let n = node(2, |s| s.with_vf_driver(VfDriver::Unbound));
    let (code, report) = doctor(&n, &[]);
    let c = results(&report, "vf-driver")[0];
    assert_eq!(c["status"], "FAIL", "{c}");
    assert!(
        c["found"]
            .as_str()
            .unwrap()
            .starts_with("unbound, pool wants mlx5_core"),
        "{c}"
    );
    assert_eq!(
        c["fix"],
        format!("echo {} > /sys/bus/pci/drivers/mlx5_core/bind", n.vf_pci(0))
    );
    assert_eq!(code, 1);
}

#[test]
fn missing_representor_fails_vf_representor() {
    let n = node(2, |s| s);
    let rep = n.rep_name(1);
    let root = n.sim.sysfs_root();
    // The eswitch created no representor for VF 1: neither its netdev directory nor its link.
    let dir = std::fs::canonicalize(root.join("class/net").join(&rep)).unwrap();
    std::fs::remove_dir_all(dir).unwrap();
    std::fs::remove_file(root.join("class/net").join(&rep)).unwrap();
    let (code, report) = doctor(&n, &[]);
    assert_eq!(statuses(&report, "vf-representor"), ["OK", "FAIL"]);
    let c = results(&report, "vf-representor")[1];
    assert!(
        c["found"]
            .as_str()
            .unwrap()
            .contains("no representor netdev for VF 1"),
        "{c}"
    );
    assert_eq!(code, 1);
}

#[test]
fn unset_hw_offload_fails_ovs_hw_offload() {
    let n = node(1, |s| s);
    n.ovs
        .vsctl(["remove", "Open_vSwitch", ".", "other_config", "hw-offload"])
        .unwrap();
    let (code, report) = doctor(&n, &[]);
    let c = results(&report, "ovs-hw-offload")[0];
    assert_eq!(c["status"], "FAIL", "{c}");
    assert_eq!(c["found"], "other_config:hw-offload is unset");
    assert!(c["fix"]
        .as_str()
        .unwrap()
        .starts_with("ovs-vsctl set Open_vSwitch . other_config:hw-offload=true"));
    assert_eq!(code, 1);
}

#[test]
fn unreachable_ovsdb_fails_one_check_and_skips_the_ovs_ones() {
    let n = node(1, |s| s);
    let missing = n.dir.path().join("no-such-db.sock");
    let (code, report) = doctor(&n, &["--ovsdb", &format!("unix:{}", missing.display())]);
    let c = results(&report, "ovsdb")[0];
    assert_eq!(c["status"], "FAIL", "{c}");
    assert!(
        c["found"].as_str().unwrap().contains("cannot connect to OVSDB"),
        "{c}"
    );
    for skipped in ["ovs-hw-offload", "ovs-bridge", "ovn-controller", "offload-flows"] {
        assert!(
            results(&report, skipped).is_empty(),
            "{skipped} ran without OVSDB"
        );
    }
    // The host checks still ran.
    assert_eq!(statuses(&report, "vf-representor"), ["OK"]);
    assert_eq!(code, 1);
}

#[test]
fn vf_with_an_unreadable_sysfs_entry_is_reported_not_dropped() {
    let n = node(2, |s| s);
    let root = n.sim.sysfs_root();
    // A garbled attribute makes the PCI listing skip VF 1.
    std::fs::write(
        root.join("bus/pci/devices").join(n.vf_pci(1)).join("vendor"),
        "garbage\n",
    )
    .unwrap();
    let (_, report) = doctor(&n, &[]);
    let drivers = results(&report, "vf-driver");
    assert_eq!(drivers.len(), 2, "{report}");
    let bad = drivers
        .iter()
        .find(|c| c["subject"].as_str().unwrap().starts_with(&n.vf_pci(1)))
        .unwrap();
    assert_eq!(bad["status"], "WARN", "{bad}");
    let found = bad["found"].as_str().unwrap();
    assert!(
        found.starts_with("unreadable sysfs entry, not checked: ") && found.contains("garbage"),
        "{bad}"
    );
}
