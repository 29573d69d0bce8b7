//! The test bed every crate's tests share, one home per fixture:
//!
//! - [`names`]: names unique to a test (links, namespaces, bridges) and cluster prefixes;
//! - [`netns`]: a network namespace deleted on drop ([`netns::Netns`]);
//! - [`cmd`]: running host tools (`ip`, `ovs-vsctl`, a plugin), optionally inside a namespace;
//! - [`daemon`]: stopping detached daemons and child processes, polling for a condition;
//! - [`ovs`]: a private Open vSwitch (`ovsdb-server` + `ovs-vswitchd`, userspace datapath);
//! - [`cni`]: running a CNI plugin binary with the `CNI_*` environment;
//! - [`kubelet`]: the kubelet stand-in (registration, device manager).
//!
//! Tests need root for namespaces and OVS; every fixture cleans up when dropped.

pub mod cmd;
pub mod cni;
pub mod daemon;
pub mod kubelet;
pub mod names;
pub mod netns;
pub mod ovs;
