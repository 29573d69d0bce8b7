//! DEL across `ovsdb-server` restarts (an upgrade of the ovs-ovn pod restarts it on every node):
//! ovs-vswitchd reconnects with a back-off of up to 8 s, DEL waits for it rather than failing, and
//! never renames a representor before ovs-vswitchd has let go of it.

mod common;

use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::time::{Duration, Instant};
use testbed::ovs::OvsDaemon;

/// How long `ovsdb-server` stays down in successive cycles: ovs-vswitchd retries after 1, 2, 4
/// and then every 8 s, so these land it on each step of its back-off.
const DOWNTIMES_MS: [u64; 4] = [0, 1500, 3500, 7500];

#[test]
fn del_after_ovsdb_server_restarts_succeeds_on_its_first_call() {
    let node = Node::new(1);
    let pod = pod_ns();
    let before = node.snapshot();
    let conf = node.conf("1.0.0", 0);
    let cycles = 12;
    let mut failures = Vec::new();
    let mut slowest = Duration::ZERO;
    // DELs that waited longer than the 5 s this wait used to be limited to.
    let mut over_5s = 0;
    for i in 0..cycles {
        let call = Call::new("ADD", &format!("restart{i:02}012345678"), &pod.path(), "eth0");
        node.run(&call, &conf).expect_ok();
        node.ovs.stop(OvsDaemon::OvsdbServer);
        std::thread::sleep(Duration::from_millis(DOWNTIMES_MS[i % DOWNTIMES_MS.len()]));
        node.ovs.start_ovsdb_server().unwrap();
        let start = Instant::now();
        let out = node.run(&call.verb("DEL"), &conf);
        slowest = slowest.max(start.elapsed());
        over_5s += usize::from(start.elapsed() > Duration::from_secs(5));
        if !out.ok {
            failures.push(format!("cycle {i}: {}", out.stdout));
            // Let the runtime's retry clean up so the next cycle starts from a clean node.
            std::thread::sleep(Duration::from_secs(10));
            node.run(&call.verb("DEL"), &conf).expect_ok();
        }
        assert_eq!(node.snapshot(), before, "cycle {i}");
    }
    println!(
        "{cycles} ovsdb-server restarts between ADD and DEL: {} DEL failures, slowest DEL {slowest:?}, {over_5s} DELs took over 5 s",
        failures.len()
    );
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn del_waits_for_an_ovsdb_server_that_is_down_when_it_starts() {
    let node = Node::new(1);
    let pod = pod_ns();
    let before = node.snapshot();
    let conf = node.conf("1.0.0", 0);
    let call = Call::new("ADD", "srvdown0123456789", &pod.path(), "eth0");
    node.run(&call, &conf).expect_ok();
    node.ovs.stop(OvsDaemon::OvsdbServer);
    let restart = std::thread::scope(|s| {
        let restart = s.spawn(|| {
            std::thread::sleep(Duration::from_secs(2));
            node.ovs.start_ovsdb_server()
        });
        node.run(&call.verb("DEL"), &conf).expect_ok();
        restart.join().unwrap()
    });
    restart.unwrap();
    assert_eq!(node.snapshot(), before);
}

#[test]
fn del_reconnects_when_ovsdb_server_restarts_while_it_waits_for_vswitchd() {
    let node = Node::new(1);
    let pod = pod_ns();
    let before = node.snapshot();
    let conf = node.conf("1.0.0", 0);
    let call = Call::new("ADD", "midwait0123456789", &pod.path(), "eth0");
    node.run(&call, &conf).expect_ok();
    let rep = "midwait01234_h";
    // ovs-vswitchd is held so that DEL sits in its wait when the server restarts.
    let vswitchd = Pid::from_raw(node.ovs.pid(OvsDaemon::Vswitchd).unwrap());
    kill(vswitchd, Signal::SIGSTOP).unwrap();
    let next_cfg = || -> i64 {
        let out = node.ovs.vsctl(["get", "Open_vSwitch", ".", "next_cfg"]);
        out.unwrap().trim().parse().unwrap()
    };
    let before_del = next_cfg();
    let out = std::thread::scope(|s| {
        let del = s.spawn(|| node.run(&call.verb("DEL"), &conf));
        // The port row goes at once; the representor stays until ovs-vswitchd confirms. DEL
        // is in its wait once it has asked for a new configuration number (next_cfg moved).
        let start = Instant::now();
        while node.ports().iter().any(|p| p == rep) || next_cfg() == before_del {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "DEL never removed the port and started waiting for ovs-vswitchd"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let restarted = node.ovs.restart_ovsdb_server();
        assert!(
            node.link_exists(rep),
            "representor renamed before ovs-vswitchd confirmed"
        );
        kill(vswitchd, Signal::SIGCONT).unwrap();
        restarted.unwrap();
        del.join().unwrap()
    });
    out.expect_ok();
    // The restart hit DEL inside its wait, and DEL reconnected rather than failing.
    assert!(
        out.stderr.contains("OVSDB session lost; reconnecting"),
        "{}",
        out.stderr
    );
    assert_eq!(node.snapshot(), before);
}
