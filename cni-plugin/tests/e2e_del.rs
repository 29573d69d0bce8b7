//! DEL robustness: pod namespace gone, state file gone, a newer ADD owning the VF, altname clashes,
//! vfio-pci VFs.

mod common;

use common::*;
use serde_json::json;
use simnode::VfDriver;

fn pod_links(pod: &Netns) -> Vec<String> {
    pod.ip(["-o", "link"])
        .unwrap()
        .lines()
        .filter(|l| !l.contains(" lo:"))
        .map(str::to_string)
        .collect()
}

#[test]
fn del_restores_vf_after_netns_vanished() {
    for empty_netns in [false, true] {
        let node = Node::new(1);
        let pod = pod_ns();
        let before = node.snapshot();
        let call = Call::new("ADD", "vanish0123456789", &pod.path(), "net1");
        let conf = node.conf("1.0.0", 0);
        node.run(&call, &conf).expect_ok();
        // The kernel hands the VF back under its pod name, then the namespace is gone.
        pod.vanish_returning("net1", node.ns()).unwrap();
        assert!(node.link_exists("net1"));
        let mut del = call.verb("DEL");
        if empty_netns {
            del.netns = String::new();
        }
        node.run(&del, &conf).expect_ok();
        assert_eq!(node.snapshot(), before, "empty CNI_NETNS: {empty_netns}");
        assert!(!node.link_exists("net1"));
        node.run(&del, &conf).expect_ok();
    }
}

#[test]
fn del_waits_for_the_kernel_to_hand_the_vf_back() {
    let node = Node::new(1);
    let pod = pod_ns();
    let before = node.snapshot();
    let call = Call::new("ADD", "late0123456789ab", &pod.path(), "net1");
    let conf = node.conf("1.0.0", 0);
    node.run(&call, &conf).expect_ok();
    // The namespace is gone before DEL; its cleanup returns the VF 400 ms later.
    let back = pod
        .vanish_returning_later("net1", node.ns(), std::time::Duration::from_millis(400))
        .unwrap();
    node.run(&call.verb("DEL"), &conf).expect_ok();
    back.join().unwrap().unwrap();
    assert_eq!(node.snapshot(), before);
    node.run(&call.verb("DEL"), &conf).expect_ok();
    assert_eq!(node.snapshot(), before);
}

#[test]
fn vf_not_back_in_time_is_restored_by_the_next_add() {
    let node = Node::new(1);
    let pod_a = pod_ns();
    let pod_b = pod_ns();
    let before = node.snapshot();
    let conf = node.conf("1.0.0", 0);
    let a = Call::new("ADD", "slow0123456789ab", &pod_a.path(), "net1");
    node.run(&a, &conf).expect_ok();
    // Back only after DEL gave up waiting: DEL still succeeds (the pod can go) and keeps the record.
    // 9 s: well past DEL's 5 s wait even if DEL starts late on a loaded machine.
    let back = pod_a
        .vanish_returning_later("net1", node.ns(), std::time::Duration::from_secs(9))
        .unwrap();
    node.run(&a.verb("DEL"), &conf).expect_ok();
    assert!(node.ports().is_empty());
    back.join().unwrap().unwrap();
    assert!(node.link_exists("net1"));
    // The next pod's ADD finds the VF by its record and gives it its own name back first.
    let b = Call::new("ADD", "next0123456789ab", &pod_b.path(), "eth0");
    node.run(&b, &conf).expect_ok();
    assert!(!node.link_exists("net1"));
    node.run(&b.verb("DEL"), &conf).expect_ok();
    assert_eq!(node.snapshot(), before);
}

#[test]
fn del_finds_vf_returned_as_dev_n() {
    let node = Node::new(1);
    let pod = pod_ns();
    let before = node.snapshot();
    let call = Call::new("ADD", "devn0123456789ab", &pod.path(), "eth0");
    let conf = node.conf("1.0.0", 0);
    node.run(&call, &conf).expect_ok();
    pod.ip(["link", "set", "eth0", "netns", node.ns(), "name", "dev7"])
        .unwrap();
    sh("ip", &["netns", "del", pod.name()]);
    node.run(&call.verb("DEL"), &conf).expect_ok();
    assert_eq!(node.snapshot(), before);
}

#[test]
fn del_without_state_file_finds_vf_from_device_id() {
    let node = Node::new(1);
    let pod = pod_ns();
    let before = node.snapshot();
    let call = Call::new("ADD", "nostate0123456789", &pod.path(), "eth0");
    let conf = node.conf("1.0.0", 0);
    node.run(&call, &conf).expect_ok();
    std::fs::remove_dir_all(node.state_dir()).unwrap();
    node.run(&call.verb("DEL"), &conf).expect_ok();
    assert!(pod_links(&pod).is_empty());
    assert!(node.ports().is_empty());
    // Name, alias and representor are back; MAC/MTU were not changed by this ADD.
    assert_eq!(node.snapshot(), before);
}

#[test]
fn live_attachment_refuses_the_vf_and_newer_add_owns_it_after_the_old_pod_died() {
    let node = Node::new(1);
    let pod_a = pod_ns();
    let pod_b = pod_ns();
    let before = node.snapshot();
    let conf = node.conf("1.0.0", 0);
    let a = Call::new("ADD", "aaaa0123456789ab", &pod_a.path(), "eth0");
    let b = Call::new("ADD", "bbbb0123456789ab", &pod_b.path(), "eth0");
    node.run(&a, &conf).expect_ok();
    let during = node.snapshot();
    assert_eq!(node.run(&b, &conf).code(), 11);
    assert_eq!(node.snapshot(), during);
    assert!(pod_links(&pod_b).is_empty());
    // Pod A dies without DEL; B takes the VF over. Real sysfs shows the names the links have
    // now (the VF back as eth0, the representor still renamed); so does the simulated tree.
    pod_a.vanish_returning("eth0", node.ns()).unwrap();
    let (vf, rep) = (node.vf_name(0), node.rep_name(0));
    node.sim.mirror_rename(&vf, "eth0").unwrap();
    node.sim.mirror_rename(&rep, "aaaa01234567_h").unwrap();
    let res_b = node.run(&b, &conf).expect_ok().json();
    node.sim.mirror_rename("eth0", &vf).unwrap();
    node.sim.mirror_rename("aaaa01234567_h", &rep).unwrap();
    assert_eq!(node.ports(), vec!["bbbb01234567_h".to_string()]);
    // The late DEL of A touches nothing of B's.
    let with_b = node.snapshot();
    node.run(&a.verb("DEL"), &conf).expect_ok();
    assert_eq!(node.snapshot(), with_b);
    assert_eq!(pod_links(&pod_b).len(), 1);
    let mut check = conf.clone();
    check["prevResult"] = res_b;
    node.run(&b.verb("CHECK"), &check).expect_ok();
    node.run(&b.verb("DEL"), &conf).expect_ok();
    assert_eq!(node.snapshot(), before);
}

#[test]
fn rename_clears_a_clashing_altname_and_del_leaves_no_pod_name_altname() {
    let node = Node::with(1, |s| s.with_vf_altnames(true));
    let pod = pod_ns();
    let before = node.snapshot();
    let vf = node.vf_name(0);
    // A stale altname equal to the pod interface name, as left by other plugins.
    node.ip(&["link", "property", "add", "dev", &vf, "altname", "net1"]);
    // Another link in the pod already carries the name as an altname too.
    pod.ip(["link", "add", "pv0", "type", "veth", "peer", "name", "pv1"])
        .unwrap();
    pod.ip(["link", "property", "add", "dev", "pv0", "altname", "eth0"])
        .unwrap();
    let conf = node.conf("1.0.0", 0);
    let call = Call::new("ADD", "alt0123456789abc", &pod.path(), "eth0");
    node.run(&call, &conf).expect_ok();
    assert!(
        pod.ip(["-o", "link", "show", "dev", "eth0"])
            .unwrap()
            .contains("sriov-ovs:"),
        "eth0 is our VF"
    );
    node.run(&call.verb("DEL"), &conf).expect_ok();
    let back = node.ip(&["-o", "link", "show", "dev", &vf]);
    assert!(!back.contains("altname eth0"), "{back}");
    // Renaming into the pod as net1 (the VF's own stale altname) also works.
    let call = Call::new("ADD", "alt1123456789abc", &pod.path(), "net1");
    node.run(&call, &conf).expect_ok();
    node.run(&call.verb("DEL"), &conf).expect_ok();
    let back = node.ip(&["-o", "link", "show", "dev", &vf]);
    assert!(
        !back.contains("altname net1") && !back.contains("altname eth0"),
        "{back}"
    );
    // Everything else (the udev altname included) is as before.
    assert_eq!(node.snapshot(), before);
}

#[test]
fn vfio_vf_gets_only_its_representor_attached() {
    let node = Node::with(1, |s| s.with_vf_driver(VfDriver::VfioPci));
    let pod = pod_ns();
    let before = node.snapshot();
    let mut conf = node.conf("1.1.0", 0);
    conf["runtimeConfig"] = json!({"ips": ["10.88.0.5/24"]});
    let call = Call::new("ADD", "vfio0123456789ab", &pod.path(), "net1");
    let res = node.run(&call, &conf).expect_ok().json();
    assert_eq!(res["interfaces"][0]["pciID"], node.vf_pci(0));
    assert_eq!(node.ports(), vec!["vfio0123_net1_h".to_string()]);
    assert!(pod_links(&pod).is_empty());
    node.run(&call.verb("DEL"), &conf).expect_ok();
    assert_eq!(node.snapshot(), before);
}
