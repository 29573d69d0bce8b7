//! Failure paths: bad input, OVSDB down mid-ADD, kill -9 mid-ADD, ovn-installed timeout.
//! Every failed ADD must leave the node exactly as it was.

mod common;

use common::*;
use serde_json::{json, Value};
use simnode::EswitchMode;
use testbed::ovs::OvsDaemon;

fn pod_links(pod: &Netns) -> Vec<String> {
    pod.ip(["-o", "link"])
        .unwrap()
        .lines()
        .filter(|l| !l.contains(" lo:"))
        .map(str::to_string)
        .collect()
}

#[test]
fn bad_input_gives_a_cni_error_and_leaves_the_host_untouched() {
    let node = Node::new(2);
    let pod = pod_ns();
    let before = node.snapshot();
    let call = Call::new("ADD", "bad0123456789abc", &pod.path(), "eth0");
    let good = node.conf("1.0.0", 0);
    let with = |k: &str, v: Value| {
        let mut c = good.clone();
        c[k] = v;
        c
    };
    let without = |k: &str| {
        let mut c = good.clone();
        c.as_object_mut().unwrap().remove(k);
        c
    };
    let pf = node.sim.pf(0).pci.to_string();
    let cases: Vec<(&str, Value, u64)> = vec![
        ("missing deviceID", without("deviceID"), 7),
        ("missing cniVersion", without("cniVersion"), 7),
        ("unsupported cniVersion", with("cniVersion", json!("0.2.0")), 1),
        ("wrong-typed mtu", with("mtu", json!("big")), 7),
        ("wrong-typed bridge", with("bridge", json!(5)), 7),
        ("garbage deviceID", with("deviceID", json!("not-a-pci")), 7),
        ("unknown PCI address", with("deviceID", json!("0000:99:00.7")), 7),
        ("a PF address", with("deviceID", json!(pf)), 7),
        ("multicast mac", with("mac", json!("01:00:5e:00:00:01")), 7),
        (
            "unknown IPAM plugin",
            with("ipam", json!({"type": "no-such-ipam"})),
            7,
        ),
        ("missing bridge", with("bridge", json!("br-nope")), 11),
        (
            "OVSDB socket absent",
            with(
                "ovsdbSocket",
                json!(format!("unix:{}/none.sock", node.dir.path().display())),
            ),
            102,
        ),
        ("ssl OVSDB", with("ovsdbSocket", json!("ssl:127.0.0.1:6640")), 7),
        (
            "relative OVSDB path",
            with("ovsdbSocket", json!("unix:db.sock")),
            7,
        ),
        (
            "nothing on the OVSDB port",
            with("ovsdbSocket", json!("tcp:127.0.0.1:6640")),
            102,
        ),
    ];
    for (what, conf, code) in cases {
        let out = node.run(&call, &conf);
        assert_eq!(out.code(), code, "{what}: {}", out.stdout);
        assert!(out.json()["cniVersion"].as_str().is_some(), "{what}");
        assert!(!out.json()["msg"].as_str().unwrap().is_empty(), "{what}");
        assert_eq!(node.snapshot(), before, "{what} changed the node");
        assert!(pod_links(&pod).is_empty(), "{what} changed the pod");
    }
    // Garbage stdin, missing env.
    assert_eq!(node.run_raw(&call, b"{\"cniVersion\": ").code(), 6);
    assert_eq!(node.run_raw(&call, b"").code(), 6);
    let mut no_netns = call.clone();
    no_netns.netns = String::new();
    assert_eq!(node.run(&no_netns, &good).code(), 4);
    let mut gone_netns = call.clone();
    gone_netns.netns = "/run/netns/does-not-exist".into();
    assert_eq!(node.run(&gone_netns, &good).code(), 4);
    let mut bad_cmd = call.clone();
    bad_cmd.verb = "FROB".into();
    assert_eq!(node.run(&bad_cmd, &good).code(), 4);
    assert_eq!(node.snapshot(), before);
    assert!(pod_links(&pod).is_empty());
}

#[test]
fn add_and_check_fail_at_once_on_an_unreachable_ovsdb_whatever_ovs_apply_timeout() {
    let node = Node::new(1);
    let pod = pod_ns();
    let before = node.snapshot();
    let mut conf = node.conf("1.0.0", 0);
    conf["ovsdbSocket"] = json!(format!("unix:{}/none.sock", node.dir.path().display()));
    // DEL and GC wait this long for a restarting ovsdb-server; ADD and CHECK must not.
    conf["ovsApplyTimeout"] = json!(600);
    for verb in ["ADD", "CHECK"] {
        let start = std::time::Instant::now();
        let out = node.run(&Call::new(verb, "fastfail012345678", &pod.path(), "eth0"), &conf);
        assert_eq!(out.code(), 102, "{verb}: {}", out.stdout);
        // Half the allowance: a bound on behaviour (no reconnect loop), not on speed.
        assert!(
            start.elapsed() < std::time::Duration::from_secs(300),
            "{verb} waited for OVSDB"
        );
    }
    assert_eq!(node.snapshot(), before);
    assert!(pod_links(&pod).is_empty());
}

#[test]
fn vf_of_a_legacy_mode_pf_is_refused() {
    let node = Node::with(1, |s| s.with_eswitch(EswitchMode::Legacy));
    let pod = pod_ns();
    let before = node.links();
    let mut conf = node.conf("1.0.0", 0);
    conf["deviceID"] = json!(node.sim.vf(0, 0).pci.to_string());
    let out = node.run(&Call::new("ADD", "legacy0123456789", &pod.path(), "eth0"), &conf);
    assert_eq!(out.code(), 7, "{}", out.stdout);
    assert!(
        out.json()["msg"].as_str().unwrap().contains("VF")
            || out.json()["details"].as_str().unwrap().contains("legacy")
    );
    assert_eq!(node.links(), before);
}

#[test]
fn ovsdb_down_mid_add_rolls_everything_back() {
    let node = Node::new(1);
    let pod = pod_ns();
    let before = node.links();
    let call = Call::new("ADD", "ovsdown0123456789", &pod.path(), "eth0");
    let (child, pause) = node.spawn_paused(&call, &node.conf("1.0.0", 0), "before-attach");
    // The VF is in the pod and IPAM ran; now OVSDB dies.
    assert!(!pod_links(&pod).is_empty());
    node.ovs.crash(OvsDaemon::OvsdbServer);
    std::fs::remove_file(&pause).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let err: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(err["code"].as_u64().unwrap() >= 100, "{err}");
    assert_eq!(node.links(), before);
    assert!(pod_links(&pod).is_empty());
    assert!(
        !node.dir.path().join("ipam/sriov-test/10.77.0.2").exists(),
        "IPAM released"
    );
}

#[test]
fn kill_9_mid_add_then_del_restores_the_node() {
    for step in ["after-vf-move", "before-attach", "after-attach"] {
        let node = Node::new(1);
        let pod = pod_ns();
        let before = node.snapshot();
        let cid = format!("kill{}0123456789", step.len());
        let call = Call::new("ADD", &cid, &pod.path(), "eth0");
        let conf = node.conf("0.4.0", 0);
        let (mut child, _pause) = node.spawn_paused(&call, &conf, step);
        child.kill().unwrap();
        child.wait().unwrap();
        node.run(&call.verb("DEL"), &conf).expect_ok();
        assert_eq!(node.snapshot(), before, "after kill at {step}");
        assert!(pod_links(&pod).is_empty(), "{step}");
        // The VF is usable again.
        node.run(&call, &conf).expect_ok();
        node.run(&call.verb("DEL"), &conf).expect_ok();
        assert_eq!(node.snapshot(), before, "second round after {step}");
    }
}

#[test]
fn ovn_installed_timeout_rolls_back_and_ovn_installed_completes() {
    let node = Node::new(1);
    let pod = pod_ns();
    let before = node.snapshot();
    let mut conf = node.conf("1.0.0", 0);
    conf["provider"] = json!("ovn");
    conf["ovnInstalledTimeout"] = json!(1);
    let call = Call::new("ADD", "ovn0123456789abcd", &pod.path(), "eth0");
    let out = node.run(&call, &conf);
    assert_eq!(out.code(), 105, "{}", out.stdout);
    assert_eq!(node.snapshot(), before);
    assert!(pod_links(&pod).is_empty());

    conf["ovnInstalledTimeout"] = json!(30);
    let (child, pause) = node.spawn_paused(&call, &conf, "after-attach");
    let port = "ovn012345678_h";
    assert_eq!(
        node.iface_col(port, "external_ids:iface-id").trim_matches('"'),
        "pod-ovn0123456789abcd.default"
    );
    node.ovs
        .vsctl(["set", "Interface", port, "external_ids:ovn-installed=true"])
        .unwrap();
    std::fs::remove_file(&pause).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    node.run(&call.verb("DEL"), &conf).expect_ok();
    assert_eq!(node.snapshot(), before);
}

#[test]
fn vf_without_a_driver_is_refused() {
    let node = Node::with(1, |s| s.with_vf_driver(simnode::VfDriver::Unbound));
    let pod = pod_ns();
    let before = node.snapshot();
    let out = node.run(
        &Call::new("ADD", "nodrv0123456789a", &pod.path(), "eth0"),
        &node.conf("1.0.0", 0),
    );
    assert_eq!(out.code(), 100, "{}", out.stdout);
    assert_eq!(node.snapshot(), before);
}

#[test]
fn repeated_add_of_the_same_attachment_replaces_it() {
    let node = Node::new(1);
    let pod = pod_ns();
    let before = node.snapshot();
    let call = Call::new("ADD", "again0123456789ab", &pod.path(), "eth0");
    let conf = node.conf("1.0.0", 0);
    node.run(&call, &conf).expect_ok();
    let res = node.run(&call, &conf).expect_ok().json();
    assert_eq!(node.ports(), vec!["again0123456_h".to_string()]);
    assert_eq!(pod_links(&pod).len(), 1);
    let mut check = conf.clone();
    check["prevResult"] = res;
    node.run(&call.verb("CHECK"), &check).expect_ok();
    node.run(&call.verb("DEL"), &conf).expect_ok();
    assert_eq!(node.snapshot(), before);
    assert!(!node.dir.path().join("ipam/sriov-test/10.77.0.2").exists());
    assert!(!node.dir.path().join("ipam/sriov-test/10.77.0.3").exists());
}

#[test]
fn del_leaves_the_representor_alone_until_vswitchd_confirms_the_port_gone() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let node = Node::new(1);
    let pod = pod_ns();
    let before = node.snapshot();
    let call = Call::new("ADD", "frozen0123456789", &pod.path(), "eth0");
    let mut conf = node.conf("1.0.0", 0);
    // ovs-vswitchd is really gone here: no need to wait out a reconnect back-off.
    conf["ovsApplyTimeout"] = json!(1);
    node.run(&call, &conf).expect_ok();
    let rep = "frozen012345_h";
    // ovs-vswitchd stops applying changes: the port row goes, the netdev stays open.
    let vswitchd = Pid::from_raw(node.ovs.pid(OvsDaemon::Vswitchd).unwrap());
    kill(vswitchd, Signal::SIGSTOP).unwrap();
    let out = node.run(&call.verb("DEL"), &conf);
    assert!(!out.ok, "DEL must fail while the port removal is unconfirmed");
    assert_eq!(out.json()["code"].as_u64(), Some(105), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("ovs-vswitchd did not apply the configuration within 1s"),
        "{}",
        out.stdout
    );
    assert!(
        node.link_exists(rep),
        "representor renamed while still open in ovs-vswitchd"
    );
    // The runtime retries while vswitchd is still behind: the port row is gone now, but the
    // representor still must not be renamed.
    let out = node.run(&call.verb("DEL"), &conf);
    kill(vswitchd, Signal::SIGCONT).unwrap();
    assert!(!out.ok, "retried DEL must fail while vswitchd is behind");
    assert!(node.link_exists(rep), "representor renamed by the retried DEL");
    // Once vswitchd runs again, the next retry finishes the job.
    node.run(&call.verb("DEL"), &conf).expect_ok();
    assert_eq!(node.snapshot(), before);
}
