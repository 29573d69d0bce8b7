//! Real links of a simulated node: creation, teardown, parallel instances, crash recovery, scale.

mod common;

use std::process::Command;

use common::{ip_o_link, names_with_prefix, spec, tx_checksum_off, up};
use simnode::{SimError, SimNode, SimNodeSpec};
use testbed::netns::Netns;

#[test]
fn links_exist_with_tx_checksum_off_and_down_restores_ip_link() {
    let before = ip_o_link("sntlk");
    assert!(before.is_empty(), "leftovers: {before:?}");
    let (_dir, spec) = spec("sntlk", 2, 3);
    let node = up(spec.with_vf_altnames(true));
    let mut expected = node.layout().link_names();
    expected.sort();
    assert_eq!(names_with_prefix(None, "sntlk"), expected);
    assert_eq!(ip_o_link("sntlk").len(), 2 * 2 + 2 * 3 * 2);
    for pf in &node.layout().pfs {
        let uplink = common::link(None, &pf.uplink.name).unwrap();
        assert_eq!(uplink["link"], pf.wire.name.as_str(), "uplink's peer is the wire");
        assert!(tx_checksum_off(None, &pf.uplink.name));
        assert!(tx_checksum_off(None, &pf.wire.name));
        for vf in &pf.vfs {
            let (n, r) = (vf.netdev_name().unwrap(), vf.representor_name().unwrap());
            let real = common::link(None, n).unwrap();
            assert_eq!(real["link"], r, "VF netdev and representor are one veth");
            assert!(tx_checksum_off(None, n), "{n}");
            assert!(tx_checksum_off(None, r), "{r}");
            let alt = vf.altname.as_deref().unwrap();
            assert!(alt.starts_with("sntlkenp132s0f"));
            assert_eq!(real["altnames"][0], alt);
        }
    }
    let group = node.link_group();
    node.down().unwrap();
    assert_eq!(ip_o_link("sntlk"), before);
    let out = Command::new("ip")
        .args(["-o", "link", "show", "group", &group.to_string()])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).trim().is_empty());
}

#[test]
fn drop_tears_down_links_tree_and_state() {
    let (dir, spec) = spec("sntdr", 1, 2);
    let root = spec.sysfs_root.clone();
    {
        let _node = up(spec);
        assert!(!ip_o_link("sntdr").is_empty());
        assert!(root.join("bus/pci/devices").exists());
    }
    assert!(ip_o_link("sntdr").is_empty());
    assert!(!common::tree_mounted("sntdr"));
    assert!(!root.exists());
    assert!(dir.path().exists());
    assert!(!std::path::Path::new("/run/simnode/sntdr").exists());
}

#[test]
fn parallel_instances_with_different_prefixes() {
    let handles: Vec<_> = (0..4)
        .map(|i| {
            std::thread::spawn(move || {
                let prefix = format!("sntpa{i}");
                let (_dir, spec) = spec(&prefix, 2, 4);
                let node = up(spec);
                assert_eq!(names_with_prefix(None, &prefix).len(), 2 * 2 + 2 * 4 * 2);
                node.down().unwrap();
                assert!(ip_o_link(&prefix).is_empty());
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn down_prefix_recovers_after_a_crash() {
    let (_dir, spec) = spec("sntcr", 2, 2);
    let root = spec.sysfs_root.clone();
    let node = up(spec);
    // The creating process "crashes": nothing is torn down.
    std::mem::forget(node);
    assert!(!ip_o_link("sntcr").is_empty());
    assert!(common::tree_mounted("sntcr"));
    simnode::down_prefix("sntcr", None).unwrap();
    assert!(ip_o_link("sntcr").is_empty());
    assert!(!common::tree_mounted("sntcr"));
    assert!(!root.exists());
    // Idempotent.
    simnode::down_prefix("sntcr", None).unwrap();
}

#[test]
fn down_prefix_without_state_file_uses_names_and_marker() {
    let (dir, spec) = spec("sntns", 1, 2);
    let state_dir = dir.path().join("state");
    let root = dir.path().join("tree");
    std::fs::create_dir(&root).unwrap();
    let node = up(spec.with_state_dir(&state_dir).with_sysfs_root(&root));
    std::mem::forget(node);
    std::fs::remove_dir_all(&state_dir).unwrap();
    simnode::down_prefix_in(&state_dir, "sntns", Some(&root)).unwrap();
    assert!(ip_o_link("sntns").is_empty());
    assert!(!common::tree_mounted("sntns"));
    assert!(root.exists(), "a root made by the caller stays");
    assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0);
}

#[test]
fn links_go_into_the_given_netns() {
    let ns = Netns::recreate("sntnetns").unwrap();
    let (_dir, spec) = spec("sntnn", 1, 2);
    let node = up(spec.with_netns("sntnetns"));
    assert!(ip_o_link("sntnn").is_empty(), "nothing in the current netns");
    let inside = names_with_prefix(Some(ns.name()), "sntnn");
    assert_eq!(inside.len(), 2 + 2 * 2);
    let rep = node.vf(0, 1).representor_name().unwrap();
    assert!(tx_checksum_off(Some(ns.name()), rep));
    node.down().unwrap();
    assert!(names_with_prefix(Some(ns.name()), "sntnn").is_empty());
}

#[test]
fn eight_pfs_of_127_vfs_come_up_and_go_down() {
    let (_dir, spec) = spec("sntbig", 8, 127);
    let node = up(spec);
    assert_eq!(node.layout().vfs().count(), 8 * 127);
    assert_eq!(names_with_prefix(None, "sntbig").len(), 8 * 2 + 8 * 127 * 2);
    let last = node.vf(7, 126);
    assert_eq!(last.pci.to_string(), "0000:87:1f.7");
    assert!(node
        .sysfs_root()
        .join("class/net")
        .join(last.representor_name().unwrap())
        .join("phys_port_name")
        .exists());
    node.down().unwrap();
    assert!(ip_o_link("sntbig").is_empty());
}

#[test]
fn taken_name_fails_and_leaves_host_untouched() {
    let (_dir, spec) = spec("sntnt", 1, 2);
    let _ = Command::new("ip").args(["link", "del", "sntntp0r1"]).output();
    let st = Command::new("ip")
        .args([
            "link",
            "add",
            "sntntp0r1",
            "type",
            "veth",
            "peer",
            "name",
            "sntntzz",
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let root = spec.sysfs_root.clone();
    let err = SimNode::up(spec).unwrap_err();
    let _ = Command::new("ip").args(["link", "del", "sntntp0r1"]).status();
    assert!(matches!(err, SimError::Links { step: "prepare", .. }), "{err:?}");
    assert!(ip_o_link("sntnt").is_empty());
    assert!(!root.exists());
    assert!(!std::path::Path::new("/run/simnode/sntnt").exists());
}

#[test]
fn second_up_with_same_prefix_is_refused() {
    let (_dir, spec1) = spec("sntdu", 1, 1);
    let dir2 = tempfile::tempdir().unwrap();
    let node = up(spec1);
    let spec2 = SimNodeSpec::new("sntdu", 1, 1).with_sysfs_root(dir2.path().join("sys"));
    let err = SimNode::up(spec2).unwrap_err();
    assert!(
        matches!(
            err,
            SimError::Links { step: "prepare", .. } | SimError::State { .. }
        ),
        "{err:?}"
    );
    // The first instance is intact.
    assert_eq!(names_with_prefix(None, "sntdu").len(), 4);
    node.down().unwrap();
}

#[test]
fn non_empty_root_and_bad_specs_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x"), "").unwrap();
    let err = SimNode::up(SimNodeSpec::new("sntbr", 1, 1).with_sysfs_root(dir.path())).unwrap_err();
    assert!(matches!(err, SimError::SysfsRoot { .. }), "{err:?}");
    let err = SimNode::up(SimNodeSpec::new("sntbr", 1, 200)).unwrap_err();
    assert!(matches!(err, SimError::InvalidSpec { .. }), "{err:?}");
    let err = SimNode::up(SimNodeSpec::new("sntbr", 1, 1).with_netns("sntnosuchns")).unwrap_err();
    assert!(matches!(err, SimError::Links { step: "prepare", .. }), "{err:?}");
    assert!(ip_o_link("sntbr").is_empty());
}

#[test]
fn cli_up_status_down() {
    let bin = env!("CARGO_BIN_EXE_simnode");
    let state = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(bin)
            .args(args)
            .env("SIMNODE_STATE_DIR", state.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let before = ip_o_link("sntcl");
    // Removes the instance even when an assertion fails (the CLI leaves it up by design).
    struct Down<'a>(&'a std::path::Path);
    impl Drop for Down<'_> {
        fn drop(&mut self) {
            let _ = Command::new(env!("CARGO_BIN_EXE_simnode"))
                .args(["down", "--prefix", "sntcl"])
                .env("SIMNODE_STATE_DIR", self.0)
                .status();
        }
    }
    let _guard = Down(state.path());
    let up_out = run(&[
        "up", "--prefix", "sntcl", "--pfs", "2", "--vfs", "4", "--numa", "0",
    ]);
    let root = state.path().join("sntcl/sys");
    assert_eq!(
        up_out.lines().next().unwrap(),
        format!("SRIOV_SYSFS_ROOT={}", root.display())
    );
    let status = run(&["status", "--prefix", "sntcl"]);
    let rows: Vec<Vec<&str>> = status
        .lines()
        .skip(2)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 2 + 8);
    assert!(rows
        .iter()
        .any(|r| r[..6] == ["1", "0000:84:00.6", "0", "sntclp1v0", "sntclp1r0", "pf1vf0"]));
    assert_eq!(ip_o_link("sntcl").len(), 2 * 2 + 2 * 4 * 2);
    run(&["down", "--prefix", "sntcl"]);
    assert_eq!(ip_o_link("sntcl"), before);
    assert!(!root.exists());
}

#[test]
fn failure_midway_removes_what_was_made() {
    let (_dir, spec) = spec("sntrb", 2, 2);
    let ip = |args: &[&str]| Command::new("ip").args(args).status().unwrap().success();
    struct DelLink;
    impl Drop for DelLink {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["link", "del", "sntrbzz"]).status();
        }
    }
    ip(&["link", "del", "sntrbzz"]);
    let _guard = DelLink;
    assert!(ip(&[
        "link", "add", "sntrbzz", "type", "veth", "peer", "name", "sntrbzy"
    ]));
    // An altname the node wants for PF1's VF 1 is taken: the batch fails halfway.
    assert!(ip(&[
        "link",
        "property",
        "add",
        "dev",
        "sntrbzz",
        "altname",
        "sntrbenp132s0f1v1"
    ]));
    let root = spec.sysfs_root.clone();
    let err = SimNode::up(spec.with_vf_altnames(true)).unwrap_err();
    let left = names_with_prefix(None, "sntrb");
    assert!(matches!(err, SimError::Links { step: "create", .. }), "{err:?}");
    assert_eq!(left, ["sntrbzy", "sntrbzz"]);
    assert!(!root.exists());
    assert!(!common::tree_mounted("sntrb"));
    assert!(!std::path::Path::new("/run/simnode/sntrb").exists());
}
