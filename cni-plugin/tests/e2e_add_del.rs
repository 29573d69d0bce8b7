//! ADD and DEL end to end: simulated node, real OVS in userspace, real host-local.

mod common;

use common::*;

#[test]
fn add_moves_vf_attaches_representor_and_del_restores_everything() {
    let node = Node::new(2);
    let pod = pod_ns();
    let before = node.snapshot();
    let cid = "0123456789abcdef0123";
    let call = Call::new("ADD", cid, &pod.path(), "eth0");
    let conf = node.conf("1.0.0", 0);
    let out = node.run(&call, &conf);
    out.expect_ok();
    let res = out.json();
    assert_eq!(res["cniVersion"], "1.0.0");
    assert_eq!(res["interfaces"][0]["name"], "eth0");
    assert_eq!(res["interfaces"][0]["sandbox"], pod.path());
    assert_eq!(res["interfaces"][1]["name"], "0123456789ab_h");
    assert!(res["interfaces"][1].get("sandbox").is_none());
    assert_eq!(res["ips"][0]["address"], "10.77.0.2/24");
    assert_eq!(res["ips"][0]["interface"], 0);
    assert!(res["ips"][0].get("version").is_none());
    // The VF is in the pod as eth0, up, with the address and the default route.
    let link = pod.ip(["-o", "link", "show", "eth0"]).unwrap();
    assert!(link.contains("UP"), "{link}");
    assert!(
        link.contains(res["interfaces"][0]["mac"].as_str().unwrap()),
        "{link}"
    );
    assert!(pod
        .ip(["-o", "addr", "show", "eth0"])
        .unwrap()
        .contains("10.77.0.2/24"));
    assert!(pod
        .ip(["route"])
        .unwrap()
        .contains("default via 10.77.0.1 dev eth0"));
    // Its host name is gone from the node; the representor is renamed and on the bridge.
    assert!(!node.link_exists(&node.vf_name(0)));
    assert!(node.link_exists("0123456789ab_h"));
    assert_eq!(node.ports(), vec!["0123456789ab_h".to_string()]);
    let ids = node.iface_col("0123456789ab_h", "external_ids");
    for want in [
        "vendor=sriov-ovs",
        "pod_name=pod-0123456789abcdef0123",
        "pod_namespace=default",
        "ip=\"10.77.0.2\"",
    ] {
        assert!(ids.contains(want), "{want} not in {ids}");
    }
    assert!(node.iface_col("0123456789ab_h", "ofport").parse::<i64>().unwrap() > 0);
    // Up, and still up once ovs-vswitchd has opened it (it rewrites the flags for promiscuous mode).
    let rep = node.ip(&["-o", "link", "show", "0123456789ab_h"]);
    let flags = rep.split(['<', '>']).nth(1).unwrap_or_default();
    assert!(flags.split(',').any(|f| f == "UP"), "{rep}");
    assert!(flags.split(',').any(|f| f == "PROMISC"), "{rep}");

    // CHECK with the result as prevResult passes.
    let mut check_conf = conf.clone();
    check_conf["prevResult"] = res.clone();
    node.run(&call.verb("CHECK"), &check_conf).expect_ok();

    // DEL restores the node exactly; a second DEL is a no-op success.
    let mut del_conf = conf.clone();
    del_conf["prevResult"] = res;
    node.run(&call.verb("DEL"), &del_conf).expect_ok();
    assert_eq!(node.snapshot(), before);
    assert!(pod
        .ip(["-o", "link"])
        .unwrap()
        .lines()
        .all(|l| !l.contains("eth0")));
    node.run(&call.verb("DEL"), &del_conf).expect_ok();
    assert_eq!(node.snapshot(), before);
    // The IP went back to host-local.
    assert!(!node.dir.path().join("ipam/sriov-test/10.77.0.2").exists());
    let out = node.run(
        &Call::new("ADD", "fedcba9876543210", &pod.path(), "net1"),
        &node.conf("1.0.0", 1),
    );
    assert_eq!(out.expect_ok().json()["interfaces"][1]["name"], "fedcba98_net1_h");
    node.run(
        &Call::new("DEL", "fedcba9876543210", &pod.path(), "net1"),
        &node.conf("1.0.0", 1),
    )
    .expect_ok();
    assert_eq!(node.snapshot(), before);
}

#[test]
fn mac_mtu_and_runtime_ips_are_applied_and_restored() {
    let node = Node::new(1);
    let pod = pod_ns();
    let before = node.snapshot();
    let mut conf = node.conf("1.1.0", 0);
    conf["mtu"] = serde_json::json!(1400);
    conf["vlan"] = serde_json::json!(100);
    conf["mac"] = serde_json::json!("02:00:00:00:00:01");
    conf["runtimeConfig"] =
        serde_json::json!({"mac": "02:00:00:aa:bb:cc", "ips": ["10.99.0.7/24", "fd00:99::7/64"]});
    let mut call = Call::new("ADD", "macmtu0123456789", &pod.path(), "eth0");
    call.args.push_str(";MAC=02:00:00:00:00:02");
    let res = node.run(&call, &conf).expect_ok().json();
    assert_eq!(res["interfaces"][0]["mac"], "02:00:00:aa:bb:cc");
    assert_eq!(res["interfaces"][0]["mtu"], 1400);
    let link = pod.ip(["-o", "link", "show", "eth0"]).unwrap();
    assert!(
        link.contains("mtu 1400") && link.contains("02:00:00:aa:bb:cc"),
        "{link}"
    );
    let addrs = pod.ip(["-o", "addr", "show", "eth0"]).unwrap();
    assert!(
        addrs.contains("10.99.0.7/24") && addrs.contains("fd00:99::7/64"),
        "{addrs}"
    );
    assert!(
        addrs
            .lines()
            .filter(|l| l.contains("fd00:99::7"))
            .all(|l| !l.contains("tentative")),
        "{addrs}"
    );
    assert!(node
        .ip(&["-o", "link", "show", "macmtu012345_h"])
        .contains("mtu 1400"));
    assert!(node
        .iface_col("macmtu012345_h", "external_ids:ip")
        .contains("10.99.0.7,fd00:99::7"));
    assert_eq!(
        node.ovs
            .vsctl(["get", "Port", "macmtu012345_h", "tag"])
            .unwrap()
            .trim(),
        "100"
    );
    // The gratuitous ARP went through the representor into OVS (its upcall may still be in
    // flight in ovs-vswitchd when ADD returns).
    let mut flows = String::new();
    for _ in 0..100 {
        flows = node.ovs.appctl(["dpctl/dump-flows"]).unwrap();
        if flows.contains("0x0806") && flows.contains("dst=33:33:00:00:00:01") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(flows.contains("0x0806"), "{flows}");
    assert!(
        flows.contains("dst=33:33:00:00:00:01"),
        "unsolicited NA to ff02::1: {flows}"
    );
    node.run(&call.verb("DEL"), &conf).expect_ok();
    assert_eq!(node.snapshot(), before);
}

#[test]
fn check_fails_when_the_attachment_drifted() {
    let node = Node::new(1);
    let pod = pod_ns();
    let call = Call::new("ADD", "drift0123456789ab", &pod.path(), "eth0");
    let conf = node.conf("1.0.0", 0);
    let res = node.run(&call, &conf).expect_ok().json();
    let mut check = conf.clone();
    check["prevResult"] = res;
    node.run(&call.verb("CHECK"), &check).expect_ok();
    // Someone removes the address in the pod.
    pod.ip(["addr", "flush", "dev", "eth0"]).unwrap();
    let out = node.run(&call.verb("CHECK"), &check);
    assert!(
        out.code() >= 100 && out.json()["msg"].as_str().unwrap().contains("10.77.0.2"),
        "{}",
        out.stdout
    );
    // Someone removes the OVS port.
    pod.ip(["addr", "add", "10.77.0.2/24", "dev", "eth0"]).unwrap();
    node.run(&call.verb("CHECK"), &check).expect_ok();
    node.ovs
        .vsctl(["del-port", &node.bridge, "drift0123456_h"])
        .unwrap();
    let out = node.run(&call.verb("CHECK"), &check);
    assert!(
        out.json()["msg"].as_str().unwrap().contains("missing"),
        "{}",
        out.stdout
    );
    // CHECK of an unknown attachment.
    assert_eq!(
        node.run(
            &Call::new("CHECK", "unknown0123456789", &pod.path(), "eth1"),
            &check
        )
        .code(),
        3
    );
    node.run(&call.verb("DEL"), &conf).expect_ok();
}

#[test]
fn logs_go_to_log_file_and_stdout_holds_only_the_result() {
    let node = Node::new(1);
    let pod = pod_ns();
    let log = node.dir.path().join("plugin.log");
    let mut conf = node.conf("1.0.0", 0);
    conf["logFile"] = serde_json::json!(log);
    conf["logLevel"] = serde_json::json!("debug");
    let call = Call::new("ADD", "log0123456789abcd", &pod.path(), "eth0");
    let out = node.run(&call, &conf);
    out.expect_ok().json();
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("ADD done"), "{text}");
    node.run(&call.verb("DEL"), &conf).expect_ok();
}

#[test]
fn add_and_del_work_over_a_tcp_ovsdb_endpoint() {
    let node = Node::new(1);
    // ovsdb-server listens where the Manager row says, like ovs-ctl sets it up.
    node.ovs.vsctl(["set-manager", "ptcp:6640:127.0.0.1"]).unwrap();
    let listening = (0..200).any(|_| {
        let probe = std::process::Command::new("ip")
            .args(["netns", "exec", node.ns(), "ovs-vsctl", "--db=tcp:127.0.0.1:6640"])
            .args(["--timeout=1", "get", "Open_vSwitch", ".", "ovs_version"])
            .output();
        let ok = probe.is_ok_and(|o| o.status.success());
        if !ok {
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        ok
    });
    assert!(listening, "ovsdb-server never listened on tcp:127.0.0.1:6640");
    // The snapshot includes the Manager row, so take it now.
    let before = node.snapshot();
    let pod = pod_ns();
    let call = Call::new("ADD", "7c9e6679742540de", &pod.path(), "eth0");
    let mut conf = node.conf("1.1.0", 0);
    conf["ovsdbSocket"] = serde_json::json!("tcp:127.0.0.1:6640");
    let res = node.run(&call, &conf).expect_ok().json();
    assert_eq!(res["interfaces"][1]["name"], "7c9e66797425_h");
    assert_eq!(node.ports(), vec!["7c9e66797425_h".to_string()]);
    node.run(&call.verb("DEL"), &conf).expect_ok();
    assert_eq!(node.snapshot(), before);

    // Nothing listens on another port: a clear connect error naming the endpoint.
    conf["ovsdbSocket"] = serde_json::json!("tcp:127.0.0.1:6641");
    let out = node.run(&call.verb("ADD"), &conf);
    assert!(!out.ok);
    assert!(out.stdout.contains("tcp:127.0.0.1:6641"), "{}", out.stdout);
    assert_eq!(node.snapshot(), before);
}

#[test]
fn long_ifnames_get_distinct_representor_names() {
    let node = Node::new(2);
    let pods = [pod_ns(), pod_ns()];
    let before = node.snapshot();
    // Kube-OVN's scheme would keep one ID character here: these two would collide.
    let calls = [
        Call::new("ADD", "a1111111111111111", &pods[0].path(), "sriovnet001"),
        Call::new("ADD", "a2222222222222222", &pods[1].path(), "sriovnet001"),
    ];
    let mut names = Vec::new();
    for (vf, call) in calls.iter().enumerate() {
        let res = node.run(call, &node.conf("1.0.0", vf as u32)).expect_ok().json();
        names.push(res["interfaces"][1]["name"].as_str().unwrap().to_string());
    }
    assert_ne!(names[0], names[1]);
    let mut ports = node.ports();
    ports.sort();
    names.sort();
    assert_eq!(ports, names);
    for (vf, call) in calls.iter().enumerate() {
        node.run(&call.verb("DEL"), &node.conf("1.0.0", vf as u32))
            .expect_ok();
    }
    assert_eq!(node.snapshot(), before);
}
