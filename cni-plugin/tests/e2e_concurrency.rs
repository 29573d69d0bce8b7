//! Concurrency: 16 ADDs on different VFs at once; ADD and DEL racing on one VF.

mod common;

use common::*;
use std::thread;

#[test]
fn sixteen_concurrent_adds_on_different_vfs() {
    let node = Node::new(16);
    let pods: Vec<Netns> = (0..16).map(|_| pod_ns()).collect();
    let before = node.snapshot();
    let calls: Vec<Call> = (0..16)
        .map(|i| Call::new("ADD", &format!("con{i:02}0123456789ab"), &pods[i].path(), "eth0"))
        .collect();
    let results: Vec<Outcome> = thread::scope(|s| {
        let handles: Vec<_> = calls
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let node = &node;
                s.spawn(move || node.run(c, &node.conf("1.0.0", i as u32)))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut ips: Vec<String> = results
        .iter()
        .map(|r| {
            r.expect_ok().json()["ips"][0]["address"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 16, "distinct addresses");
    assert_eq!(node.ports().len(), 16);
    for p in &pods {
        assert!(p.ip(["-o", "link", "show", "eth0"]).unwrap().contains("UP"));
    }
    thread::scope(|s| {
        for (i, c) in calls.iter().enumerate() {
            let node = &node;
            s.spawn(move || {
                node.run(&c.verb("DEL"), &node.conf("1.0.0", i as u32))
                    .expect_ok()
                    .ok
            });
        }
    });
    assert_eq!(node.snapshot(), before);
}

#[test]
fn add_and_del_racing_on_one_vf_end_consistent() {
    let node = Node::new(1);
    let before = node.snapshot();
    let conf = node.conf("1.0.0", 0);
    for round in 0..4 {
        let pod_a = pod_ns();
        let pod_b = pod_ns();
        let a = Call::new("ADD", &format!("racea{round}0123456789"), &pod_a.path(), "eth0");
        let b = Call::new("ADD", &format!("raceb{round}0123456789"), &pod_b.path(), "eth0");
        node.run(&a, &conf).expect_ok();
        // DEL of the old pod races ADD of the new one on the same VF.
        let (del_a, add_b) = thread::scope(|s| {
            let d = s.spawn(|| node.run(&a.verb("DEL"), &conf));
            let n = s.spawn(|| node.run(&b, &conf));
            (d.join().unwrap(), n.join().unwrap())
        });
        del_a.expect_ok();
        if add_b.ok {
            assert_eq!(node.ports(), vec![format!("raceb{round}012345_h")]);
            assert!(pod_b.ip(["-o", "link"]).unwrap().contains("eth0"));
        } else {
            assert_eq!(add_b.code(), 11, "B may only be told to retry: {}", add_b.stdout);
            assert!(node.ports().is_empty());
            node.run(&b, &conf).expect_ok();
        }
        assert!(!pod_a.ip(["-o", "link"]).unwrap().contains("eth0"));
        node.run(&b.verb("DEL"), &conf).expect_ok();
        assert_eq!(node.snapshot(), before, "round {round}");
    }
}
