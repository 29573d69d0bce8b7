//! Every CNI version's result format, portmap chaining, STATUS and GC, end to end.

mod common;

use common::*;
use serde_json::json;

#[test]
fn every_version_gets_its_own_result_format() {
    let node = Node::new(4);
    let pod = pod_ns();
    let before = node.snapshot();
    for (i, version) in ["0.3.1", "0.4.0", "1.0.0", "1.1.0"].into_iter().enumerate() {
        let cid = format!("c{i}aaaaaaaaaaaaaa");
        let ifname = format!("net{i}");
        let call = Call::new("ADD", &cid, &pod.path(), &ifname);
        let conf = node.conf(version, i as u32);
        let res = node.run(&call, &conf).expect_ok().json();
        assert_eq!(res["cniVersion"], version);
        let has_version = res["ips"][0].get("version").is_some();
        assert_eq!(has_version, version.starts_with("0."), "{version}: {res}");
        assert_eq!(
            res["interfaces"][0].get("pciID").is_some(),
            version == "1.1.0",
            "{version}: {res}"
        );
        if version == "1.1.0" {
            assert_eq!(res["interfaces"][0]["pciID"], node.vf_pci(3));
        }
        assert!(res["interfaces"][0]["mac"].is_string());
        if version != "0.3.1" {
            let mut c = conf.clone();
            c["prevResult"] = res.clone();
            node.run(&call.verb("CHECK"), &c).expect_ok();
        } else {
            let mut c = conf.clone();
            c["prevResult"] = res.clone();
            assert_eq!(node.run(&call.verb("CHECK"), &c).code(), 1);
        }
        node.run(&call.verb("DEL"), &conf).expect_ok();
    }
    assert_eq!(node.snapshot(), before);
}

#[test]
fn version_lists_all_supported_versions() {
    let node = Node::new(1);
    let out = node.run(&Call::new("VERSION", "", "", ""), &json!({"cniVersion": "1.0.0"}));
    let v = out.expect_ok().json();
    assert_eq!(
        v["supportedVersions"],
        json!(["0.3.1", "0.4.0", "1.0.0", "1.1.0"])
    );
}

#[test]
fn chains_with_the_real_portmap_plugin() {
    let node = Node::new(1);
    let pod = pod_ns();
    let before = node.snapshot();
    let cid = "portmap0123456789";
    let call = Call::new("ADD", cid, &pod.path(), "eth0");
    let conf = node.conf("0.3.1", 0);
    let res = node.run(&call, &conf).expect_ok().json();
    let pm_conf = json!({
        "cniVersion": "0.3.1",
        "name": "sriov-test",
        "type": "portmap",
        "capabilities": {"portMappings": true},
        "snat": true,
        "runtimeConfig": {"portMappings": [{"hostPort": 18080, "containerPort": 80, "protocol": "tcp"}]},
        "prevResult": res,
    });
    let run_pm = |verb: &str| {
        node.run_plugin(
            "/usr/lib/cni/portmap",
            &call.verb(verb),
            pm_conf.to_string().as_bytes(),
        )
    };
    let out = run_pm("ADD");
    assert!(out.ok, "portmap ADD: {} {}", out.stdout, out.stderr);
    let chained = out.json();
    assert_eq!(chained["ips"][0]["address"], "10.77.0.2/24");
    let nat = sh("ip", &["netns", "exec", node.ns(), "iptables", "-t", "nat", "-S"]);
    assert!(nat.contains("18080"), "{nat}");
    let out = run_pm("DEL");
    assert!(out.ok, "portmap DEL: {}", out.stdout);
    let mut del_conf = conf.clone();
    del_conf["prevResult"] = chained;
    node.run(&call.verb("DEL"), &del_conf).expect_ok();
    assert_eq!(node.snapshot(), before);
}

#[test]
fn status_reports_ovsdb_bridge_and_ipam() {
    let node = Node::new(1);
    let conf = node.conf("1.1.0", 0);
    node.run(&Call::new("STATUS", "", "", ""), &conf).expect_ok();
    let mut no_bridge = conf.clone();
    no_bridge["bridge"] = json!("br-missing");
    assert_eq!(node.run(&Call::new("STATUS", "", "", ""), &no_bridge).code(), 50);
    let mut no_db = conf.clone();
    no_db["ovsdbSocket"] = json!(format!("unix:{}/nope.sock", node.dir.path().display()));
    assert_eq!(node.run(&Call::new("STATUS", "", "", ""), &no_db).code(), 50);
    // STATUS is forwarded to the delegated IPAM plugin: a missing one means not ready.
    let mut no_ipam = conf.clone();
    no_ipam["ipam"] = json!({"type": "no-such-ipam"});
    assert_eq!(node.run(&Call::new("STATUS", "", "", ""), &no_ipam).code(), 50);
    let mut old = conf;
    old["cniVersion"] = json!("1.0.0");
    assert_eq!(node.run(&Call::new("STATUS", "", "", ""), &old).code(), 1);
}

#[test]
fn gc_releases_attachments_not_listed_as_valid() {
    let node = Node::new(2);
    let pod = pod_ns();
    let pod2 = pod_ns();
    let before = node.snapshot();
    let keep = Call::new("ADD", "keep0123456789ab", &pod.path(), "net1");
    let drop_ = Call::new("ADD", "drop0123456789ab", &pod2.path(), "net2");
    node.run(&keep, &node.conf("1.1.0", 0)).expect_ok();
    node.run(&drop_, &node.conf("1.1.0", 1)).expect_ok();
    assert_eq!(node.ports().len(), 2);
    let mut gc = node.conf("1.1.0", 0);
    gc["cni.dev/valid-attachments"] = json!([{"containerID": "keep0123456789ab", "ifname": "net1"}]);
    node.run(&Call::new("GC", "", "", ""), &gc).expect_ok();
    assert_eq!(node.ports(), vec!["keep0123_net1_h".to_string()]);
    assert!(node.link_exists(&node.vf_name(1)), "dropped VF back on the node");
    assert!(pod.ip(["-o", "link"]).unwrap().contains("net1"));
    assert!(!pod2.ip(["-o", "link"]).unwrap().contains("net2"));
    assert!(!node.dir.path().join("ipam/sriov-test/10.77.0.3").exists());
    node.run(&keep.verb("DEL"), &node.conf("1.1.0", 0)).expect_ok();
    assert_eq!(node.snapshot(), before);
}

#[test]
fn gc_keeps_an_attachment_whose_add_finished_while_it_waited() {
    let node = Node::new(1);
    let pod = pod_ns();
    let add = Call::new("ADD", "racegc0123456789", &pod.path(), "net1");
    let conf = node.conf("1.1.0", 0);
    // ADD holds the VF, its record saved as "adding", when the runtime's GC starts with a valid
    // list from before the ADD.
    let (child, pause) = node.spawn_paused(&add, &conf, "after-attach");
    let mut gc = conf.clone();
    gc["cni.dev/valid-attachments"] = json!([]);
    let gc_log = node.dir.path().join("gc.log");
    gc["logFile"] = json!(gc_log);
    gc["logLevel"] = json!("debug");
    let mut gc_child = node
        .plugin_cmd(BIN, &Call::new("GC", "", "", ""))
        .command()
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    gc_child
        .stdin
        .take()
        .unwrap()
        .write_all(gc.to_string().as_bytes())
        .unwrap();
    // GC has listed the attachment (still "adding") and now waits for the VF's lock.
    let listed = (0..400).any(|_| {
        let seen = std::fs::read_to_string(&gc_log).is_ok_and(|l| l.contains("GC listed attachments"));
        if !seen {
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        seen
    });
    assert!(listed, "GC never listed the attachments");
    std::thread::sleep(std::time::Duration::from_millis(100));
    std::fs::remove_file(&pause).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let gc_out = gc_child.wait_with_output().unwrap();
    assert!(
        gc_out.status.success(),
        "{}",
        String::from_utf8_lossy(&gc_out.stdout)
    );
    assert_eq!(node.ports(), vec!["racegc01_net1_h".to_string()]);
    assert!(pod.ip(["-o", "link"]).unwrap().contains("net1"));
    node.run(&add.verb("DEL"), &conf).expect_ok();
}
