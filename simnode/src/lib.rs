//! Simulated switchdev SR-IOV node for tests: an mlx5-shaped sysfs tree plus real links.
//!
//! [`SimNode::up`] writes a sysfs tree under a root of your choice (point `SRIOV_SYSFS_ROOT` at
//! it) mirroring mlx5 PFs, VFs, representors and eswitch mode, and creates real links standing in
//! for them: per VF a veth pair (VF netdev + representor), per PF a veth (uplink + "wire"), all
//! with TX checksum offload off. Every name starts with the instance prefix, so instances run in
//! parallel; dropping the [`SimNode`] (or [`down_prefix`] after a crash) removes everything.
//!
//! ```no_run
//! use simnode::{SimNode, SimNodeSpec};
//! let dir = tempfile::tempdir().unwrap();
//! let node = SimNode::up(SimNodeSpec::new("ex0", 2, 4).with_sysfs_root(dir.path())).unwrap();
//! let vf = node.vf(1, 3);
//! println!("{} {:?} {:?}", vf.pci, vf.netdev_name(), vf.representor_name());
//! node.down().unwrap();
//! ```

pub mod addr;
pub mod ethtool;
pub mod layout;
pub mod links;
pub mod mount;
pub mod node;
pub mod spec;
pub mod state;
pub mod status;
pub mod tree;

pub use layout::{Decoy, DecoyKind, Layout, Netdev, PfLayout, VfLayout};
pub use node::{down_prefix, down_prefix_in, instance_state_in, SimError, SimNode};
pub use spec::{Model, RepresentorNaming, SimNodeSpec, VfDriver};
// The host model's types, so a spec can be written with simnode's names alone.
pub use sriov_host::{EswitchMode, PciAddress};
pub use state::State;
