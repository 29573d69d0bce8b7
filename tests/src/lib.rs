//! End-to-end harness: a simulated cluster of real OVN/OVS nodes with simulated SR-IOV NICs,
//! driven through our device plugin and CNI plugin by kubelet and Multus stand-ins.
//!
//! [`cluster::Cluster`] is the entry point: it starts OVN central, a fabric, nodes
//! ([`node::Node`]), the Kube-OVN logical network ([`logical`]), and creates pods either with a
//! plain veth (harness self-checks) or with a VF allocated by `sriov-device-plugin` through the
//! kubelet stand-in ([`kubelet`]) and attached by `sriov-ovs` through the Multus stand-in
//! ([`multus`]). Everything is removed when the cluster is dropped.

pub mod binaries;
pub mod cleanup;
pub mod cluster;
pub mod demo;
pub mod fabric;
pub mod kubeovn;
pub mod logical;
pub mod multus;
pub mod nad;
pub mod node;
pub mod ovn_central;
pub mod pod;
pub mod scenarios;
pub mod traffic;
