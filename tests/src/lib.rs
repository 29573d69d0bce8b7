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
pub mod cmd;
pub mod daemon;
pub mod demo;
pub mod fabric;
pub mod kubelet;
pub mod kubeovn;
pub mod logical;
pub mod multus;
pub mod nad;
pub mod names;
pub mod node;
pub mod ovn_central;
pub mod ovs;
pub mod pod;
pub mod scenarios;
pub mod traffic;

/// An error and its sources, joined with `: `.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}
