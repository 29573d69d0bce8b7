//! Helpers shared by the simnode integration tests: inspecting real links and the tree.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use simnode::{SimNode, SimNodeSpec};

/// A sysfs root in a fresh temp dir plus the spec pointing at it, after clearing leftovers of
/// an earlier crashed run with the same prefix.
pub fn spec(prefix: &str, pfs: u32, vfs: u32) -> (tempfile::TempDir, SimNodeSpec) {
    let dir = tempfile::tempdir().unwrap();
    simnode::down_prefix(prefix, None).unwrap();
    let spec = SimNodeSpec::new(prefix, pfs, vfs).with_sysfs_root(dir.path().join("sys"));
    (dir, spec)
}

/// Brings a node up from `spec` (panics on error, with the whole error chain).
pub fn up(spec: SimNodeSpec) -> SimNode {
    match SimNode::up(spec) {
        Ok(n) => n,
        Err(e) => panic!("simnode up: {}", sriov_logging::error_chain(&e)),
    }
}

/// `ip -j -d link show` of the current netns (or `netns`), as JSON objects.
pub fn links(netns: Option<&str>) -> Vec<Value> {
    let mut cmd = Command::new("ip");
    if let Some(ns) = netns {
        cmd.args(["-n", ns]);
    }
    let out = cmd.args(["-j", "-d", "link", "show"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// One link by name, if present.
pub fn link(netns: Option<&str>, name: &str) -> Option<Value> {
    links(netns).into_iter().find(|l| l["ifname"] == name)
}

/// Names of the links in the netns starting with `prefix`, sorted.
pub fn names_with_prefix(netns: Option<&str>, prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = links(netns)
        .iter()
        .filter_map(|l| l["ifname"].as_str().map(str::to_string))
        .filter(|n| n.starts_with(prefix))
        .collect();
    names.sort();
    names
}

/// `ip -o link` lines of the links in the netns starting with `prefix`.
pub fn ip_o_link(prefix: &str) -> Vec<String> {
    let out = Command::new("ip").args(["-o", "link"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.split_whitespace().nth(1).is_some_and(|n| n.starts_with(prefix)))
        .map(str::to_string)
        .collect()
}

/// Whether `ethtool -k` reports TX checksumming off.
pub fn tx_checksum_off(netns: Option<&str>, iface: &str) -> bool {
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "ethtool", "-k", iface]);
            c
        }
        None => {
            let mut c = Command::new("ethtool");
            c.args(["-k", iface]);
            c
        }
    };
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.trim() == "tx-checksumming: off")
}

/// Trimmed contents of a file.
pub fn read(path: impl AsRef<Path>) -> String {
    let path = path.as_ref();
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim()
        .to_string()
}

/// The raw (relative) target of a symlink.
pub fn link_target(path: impl AsRef<Path>) -> PathBuf {
    let path = path.as_ref();
    fs::read_link(path).unwrap_or_else(|e| panic!("readlink {}: {e}", path.display()))
}

/// Whether any tmpfs of instance `prefix` is still mounted.
pub fn tree_mounted(prefix: &str) -> bool {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let source = format!(" simnode-{prefix} ");
    info.lines().any(|l| l.contains(&source))
}
