//! A pod: its netns, identity (name, namespace, UID, infra container ID), OVN port and address,
//! and how its network interface was made (a VF through our CNI, or a plain veth for harness checks).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use crate::fabric::{create_netns, FabricError};
use crate::logical::PortAddress;
use crate::multus::Attachment;
use crate::node::Node;
use crate::traffic::{self, TrafficError};
use testbed::cmd::{ip_in, tx_off, CmdError};
use testbed::netns::Netns;

/// Pod MTU: leaves room for Geneve on a 1500-byte underlay, as Kube-OVN sets.
pub const POD_MTU: u32 = 1400;

/// Errors of plumbing a veth pod.
#[derive(Debug, thiserror::Error)]
pub enum PodError {
    /// The netns could not be created.
    #[error("pod {pod}: netns")]
    Netns {
        /// The pod.
        pod: String,
        /// Why.
        #[source]
        source: Box<FabricError>,
    },
    /// A plumbing step failed.
    #[error("pod {pod}: {step}")]
    Step {
        /// The pod.
        pod: String,
        /// What failed.
        step: &'static str,
        /// Why.
        #[source]
        source: CmdError,
    },
}

/// How the pod's interface was made.
#[derive(Debug)]
pub enum PodNic {
    /// A plain veth plugged into `br-int` by the harness (`host_if` on the node).
    Veth {
        /// Host end on the node.
        host_if: String,
    },
    /// A VF handed over by `sriov-ovs` through the Multus stand-in.
    Vf {
        /// VF PCI address (the kubelet's device ID).
        device_id: String,
        /// The VF's original netdev name on the node.
        vf_netdev: String,
        /// The representor's name on the node after ADD (read from OVS).
        representor: String,
        /// The attachment (conflist results), for DEL.
        attachment: Box<Attachment>,
        /// How long the whole CNI ADD chain took.
        add_time: Duration,
    },
}

/// A pod's cluster default network interface made by the harness (Kube-OVN's CNI stand-in).
#[derive(Clone, Debug)]
pub struct PrimaryIf {
    /// Its OVN port (`<pod>.<ns>` in `ovn-default`).
    pub lsp: String,
    /// Its address.
    pub addr: PortAddress,
    /// Host end of the veth on the node.
    pub host_if: String,
}

/// A running pod.
#[derive(Debug)]
pub struct Pod {
    /// Pod name.
    pub name: String,
    /// Pod namespace.
    pub namespace: String,
    /// Pod UID.
    pub uid: String,
    /// Infra (sandbox) container ID.
    pub container_id: String,
    /// Index of the node it runs on.
    pub node: usize,
    /// Logical switch (Kube-OVN subnet).
    pub subnet: String,
    /// Logical switch port name.
    pub lsp: String,
    /// Allocated address.
    pub addr: PortAddress,
    /// Interface name in the pod.
    pub ifname: String,
    /// How the interface was made.
    pub nic: PodNic,
    /// The cluster default network (`eth0`) of a pod whose VF is a secondary network.
    pub primary: Option<PrimaryIf>,
    netns: Netns,
}

impl Pod {
    /// Creates the pod's netns (`<prefix>-<name>`), with nothing but `lo`.
    #[allow(clippy::too_many_arguments)]
    pub fn create(
        prefix: &str,
        name: &str,
        namespace: &str,
        node: usize,
        subnet: &str,
        lsp: &str,
        addr: PortAddress,
        ifname: &str,
    ) -> Result<Pod, PodError> {
        let netns = create_netns(&format!("{prefix}-{name}")).map_err(|source| PodError::Netns {
            pod: name.to_string(),
            source: Box::new(source),
        })?;
        let uid = format!(
            "{:08x}-0000-4000-8000-{:012x}",
            hash(name) & 0xffff_ffff,
            hash(&netns.path()) & 0xffff_ffff_ffff
        );
        let container_id = format!(
            "{:016x}{:016x}{:016x}{:016x}",
            hash(&uid),
            hash(prefix),
            hash(name),
            hash(namespace)
        );
        Ok(Pod {
            name: name.to_string(),
            namespace: namespace.to_string(),
            uid,
            container_id,
            node,
            subnet: subnet.to_string(),
            lsp: lsp.to_string(),
            addr,
            ifname: ifname.to_string(),
            nic: PodNic::Veth {
                host_if: String::new(),
            },
            primary: None,
            netns,
        })
    }

    /// The pod's netns name.
    pub fn netns(&self) -> &str {
        self.netns.name()
    }

    /// The pod's netns path (`CNI_NETNS`).
    pub fn netns_path(&self) -> String {
        self.netns.path()
    }

    /// Plugs a plain veth into the node's `br-int` with `iface-id` = the pod's port, configured
    /// with the pod's MAC, IP, MTU and default route, TX checksum offload off on both ends.
    pub fn plug_veth(&mut self, node: &Node, host_if: &str) -> Result<(), PodError> {
        self.nic = PodNic::Veth {
            host_if: host_if.to_string(),
        };
        let (ifname, lsp, addr) = (self.ifname.clone(), self.lsp.clone(), self.addr.clone());
        self.plug(node, &ifname, host_if, &lsp, &addr)
    }

    /// Gives the pod its cluster default network as Kube-OVN's own CNI would: `eth0`, a veth on
    /// `br-int` bound to `lsp` (in `ovn-default`), with `addr` and the default route via its
    /// gateway. Used for pods whose VF is a secondary network.
    pub fn plug_primary(
        &mut self,
        node: &Node,
        host_if: &str,
        lsp: &str,
        addr: PortAddress,
    ) -> Result<(), PodError> {
        self.primary = Some(PrimaryIf {
            lsp: lsp.to_string(),
            addr: addr.clone(),
            host_if: host_if.to_string(),
        });
        self.plug(node, "eth0", host_if, lsp, &addr)
    }

    fn plug(
        &self,
        node: &Node,
        ifname: &str,
        host_if: &str,
        lsp: &str,
        addr: &PortAddress,
    ) -> Result<(), PodError> {
        let step = |step: &'static str| {
            let pod = self.name.clone();
            move |source| PodError::Step { pod, step, source }
        };
        let ns = self.netns.name();
        let mtu = POD_MTU.to_string();
        #[rustfmt::skip]
        ip_in(ns, [
            "link", "add", ifname, "mtu", &mtu, "type", "veth", "peer", "name", host_if, "mtu", &mtu,
            "netns", node.netns(),
        ])
        .map_err(step("create veth"))?;
        ip_in(ns, ["link", "set", ifname, "address", &addr.mac, "up"]).map_err(step("configure pod side"))?;
        ip_in(ns, ["addr", "add", &addr.cidr(), "dev", ifname]).map_err(step("configure pod side"))?;
        let gw = addr.gateway.to_string();
        ip_in(ns, ["route", "add", "default", "via", &gw, "dev", ifname]).map_err(step("default route"))?;
        tx_off(ns, ifname).map_err(step("tx off"))?;
        tx_off(node.netns(), host_if).map_err(step("tx off"))?;
        ip_in(node.netns(), ["link", "set", host_if, "up"]).map_err(step("host side up"))?;
        let iface_id = format!("external_ids:iface-id={lsp}");
        node.vsctl([
            "add-port",
            "br-int",
            host_if,
            "--",
            "set",
            "interface",
            host_if,
            &iface_id,
        ])
        .map_err(step("add port to br-int"))?;
        Ok(())
    }

    /// The pod IP.
    pub fn ip(&self) -> Ipv4Addr {
        self.addr.ip
    }

    /// Pings `to` from the pod (a few attempts, the first packets may meet cold flows).
    pub fn ping(&self, to: Ipv4Addr) -> Result<(), TrafficError> {
        traffic::ping(self.netns(), to, 5)
    }

    /// Moves `len` bytes each way between this pod (client) and `server` listening on `port`.
    pub fn tcp_to(&self, server: &Pod, port: u16, len: usize) -> Result<(), TrafficError> {
        traffic::tcp_both_ways(
            server.netns(),
            self.netns(),
            SocketAddrV4::new(server.ip(), port),
            len,
        )
    }

    /// The representor (VF pods) or host veth (veth pods) on the node.
    pub fn host_side(&self) -> &str {
        match &self.nic {
            PodNic::Veth { host_if } => host_if,
            PodNic::Vf { representor, .. } => representor,
        }
    }
}

/// FNV-1a, for stable made-up IDs.
fn hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}
