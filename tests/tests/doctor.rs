//! `sriov-ovs doctor` on a healthy simulated node: OVN (ovn-controller connected to the
//! southbound database), `sriov-device-plugin` registered with a kubelet stand-in, two VF pods
//! on `br-int` that just exchanged traffic. Every check the simulation can pass is OK; the two
//! a veth cannot pass (TC offload on the PF, offloaded flows) are WARN saying why; exit 0.

use std::process::Command;

use integration_tests::binaries::{binary, CNI_PLUGIN};
use integration_tests::cleanup::leftovers;
use integration_tests::cluster::{Attach, Cluster, ClusterSpec};
use integration_tests::logical::OVN_DEFAULT;
use integration_tests::scenarios::{self, PORT_TIMEOUT};
use serde_json::Value;

fn doctor(c: &Cluster, json: bool) -> (i32, String) {
    let node = c.node(0);
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", node.netns()])
        .arg(binary(CNI_PLUGIN).unwrap())
        .arg("doctor")
        .arg("--config-file")
        .arg(node.dir().join("sriovdp-config.json"))
        .arg("--ovsdb")
        .arg(format!("unix:{}", node.db_sock().display()))
        .arg("--ovn-rundir")
        .arg(node.dir())
        .arg("--device-plugin-path")
        .arg(node.dir().join("device-plugins"))
        // The node's own (empty) NetworkManager state: a NetworkManager on the test host keeps
        // files keyed by host ifindexes, which may equal the node's representors'.
        .arg("--networkmanager-run-dir")
        .arg(node.dir().join("NetworkManager"))
        .env("SRIOV_SYSFS_ROOT", node.sysfs_root().unwrap());
    if json {
        cmd.arg("--json");
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn healthy_simulated_node_passes_every_check_a_veth_can_pass() {
    let mut c = Cluster::start(ClusterSpec {
        nodes: 1,
        vfs_per_node: 2,
        underlay: None,
        sriov: true,
        kube_ovn: None,
    })
    .unwrap();
    let prefix = c.prefix().to_string();
    scenarios::wait_for_vfs(&c, 2).unwrap();
    c.add_sriov_pod(0, "p1", OVN_DEFAULT, Attach::DefaultNetwork)
        .unwrap();
    c.add_sriov_pod(0, "p2", OVN_DEFAULT, Attach::DefaultNetwork)
        .unwrap();
    c.wait_ports_ready(PORT_TIMEOUT).unwrap();
    c.node(0)
        .vsctl(["set", "Open_vSwitch", ".", "other_config:hw-offload=true"])
        .unwrap();
    let p2 = c.pod("p2").unwrap().ip();
    let (code, text) = doctor(&c, false);
    eprintln!("{text}");
    // Datapath flows idle out after 10 s: traffic right before the run whose flows are asserted,
    // however long the text run took on a loaded machine.
    c.pod("p1").unwrap().ping(p2).unwrap();
    let (json_code, json) = doctor(&c, true);
    let report: Value = serde_json::from_str(&json).unwrap();
    let checks = report["checks"].as_array().unwrap();
    let status_of = |name: &str| -> Vec<&str> {
        checks
            .iter()
            .filter(|k| k["check"] == name)
            .map(|k| k["status"].as_str().unwrap())
            .collect()
    };
    assert_eq!((code, json_code), (0, 0), "{text}");
    assert_eq!(report["fail"], 0, "{text}");
    for ok in [
        "kernel",
        "sriovdp-config",
        "pf-eswitch-mode",
        "pf-sriov-numvfs",
        "pf-bond",
        "ovs-hw-offload",
        "ovs-bridge",
        "ovn-controller",
        "networkmanager",
        "device-plugin",
    ] {
        assert_eq!(status_of(ok), ["OK"], "{ok}: {text}");
    }
    assert_eq!(status_of("vf-driver"), ["OK", "OK"], "{text}");
    assert_eq!(status_of("vf-representor"), ["OK", "OK"], "{text}");
    assert_eq!(status_of("pf-hw-tc-offload"), ["WARN"], "{text}");
    // Both pods' representors carry the ping's flows; a veth offloads none of them.
    let flows: Vec<&Value> = checks.iter().filter(|k| k["check"] == "offload-flows").collect();
    assert_eq!(flows.len(), 2, "{text}");
    for f in flows {
        let found = f["found"].as_str().unwrap();
        assert_eq!(f["status"], "WARN", "{f}");
        assert!(
            found.contains(", 0 offloaded:yes: ") && found.contains("cannot offload TC flows"),
            "{f}"
        );
        assert!(
            !found.starts_with("0 datapath flows"),
            "the ping left no flow: {f}"
        );
    }
    drop(c);
    assert_eq!(leftovers(&prefix), Vec::<String>::new());
}
