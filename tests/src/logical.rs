//! The OVN logical network as Kube-OVN's controller writes it to NB: the overlay `ovn-default`
//! behind router `ovn-cluster`, underlay subnets with a `localnet` port and VLAN tag, and pod ports
//! with the MAC/IP the controller allocated.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use crate::ovn_central::OvnCentral;
use testbed::cmd::CmdError;

/// Kube-OVN's cluster router.
pub const CLUSTER_ROUTER: &str = "ovn-cluster";
/// Kube-OVN's default overlay subnet.
pub const OVN_DEFAULT: &str = "ovn-default";

/// Errors of writing the logical network.
#[derive(Debug, thiserror::Error)]
pub enum LogicalError {
    /// An NB update failed.
    #[error("NB: {step}")]
    Nb {
        /// What was being written.
        step: String,
        /// Why.
        #[source]
        source: CmdError,
    },
    /// The subnet has no free address left.
    #[error("subnet {subnet} is exhausted")]
    Exhausted {
        /// The subnet.
        subnet: String,
    },
}

/// A Kube-OVN subnet: a logical switch with a CIDR, a gateway and, for underlay, a VLAN.
#[derive(Clone, Debug)]
pub struct Subnet {
    /// Logical switch name (`ovn-default`, `vlan0`).
    pub name: String,
    /// Network address.
    pub network: Ipv4Addr,
    /// Prefix length.
    pub prefix_len: u8,
    /// Gateway address (router port for overlay, upstream router for underlay).
    pub gateway: Ipv4Addr,
    /// First address handed to pods (Kube-OVN's `excludeIps` end + 1).
    pub first_pod_ip: Ipv4Addr,
    /// For an underlay subnet: the provider network and VLAN id (0 = untagged).
    pub underlay: Option<Underlay>,
    /// Byte put in the 4th octet of generated MACs, distinct per subnet.
    pub mac_tag: u8,
}

/// The provider-network side of an underlay subnet (Kube-OVN `ProviderNetwork` + `Vlan`).
#[derive(Clone, Debug)]
pub struct Underlay {
    /// Provider network name (`underlay-offload`), mapped to a bridge on every node.
    pub provider: String,
    /// Kube-OVN `Vlan` object name (`vlan0`).
    pub vlan_name: String,
    /// VLAN id; 0 means untagged as in the seed guide.
    pub vlan_id: u16,
}

impl Subnet {
    /// The seed's overlay: `ovn-default` 10.16.0.0/16, gateway 10.16.0.1.
    pub fn ovn_default() -> Subnet {
        Subnet {
            name: OVN_DEFAULT.to_string(),
            network: Ipv4Addr::new(10, 16, 0, 0),
            prefix_len: 16,
            gateway: Ipv4Addr::new(10, 16, 0, 1),
            first_pod_ip: Ipv4Addr::new(10, 16, 0, 2),
            underlay: None,
            mac_tag: 0x16,
        }
    }

    /// The seed's underlay: `vlan0` 10.10.204.0/24, gateway .254, pods from .101, on provider
    /// `underlay-offload` with VLAN id `vlan_id`.
    pub fn vlan0(vlan_id: u16) -> Subnet {
        Subnet {
            name: "vlan0".to_string(),
            network: Ipv4Addr::new(10, 10, 204, 0),
            prefix_len: 24,
            gateway: Ipv4Addr::new(10, 10, 204, 254),
            first_pod_ip: Ipv4Addr::new(10, 10, 204, 101),
            underlay: Some(Underlay {
                provider: "underlay-offload".to_string(),
                vlan_name: "vlan0".to_string(),
                vlan_id,
            }),
            mac_tag: 0xcc,
        }
    }

    /// `network/prefix_len`.
    pub fn cidr(&self) -> String {
        format!("{}/{}", self.network, self.prefix_len)
    }

    fn broadcast(&self) -> u32 {
        let host_bits = 32 - u32::from(self.prefix_len);
        u32::from(self.network) | ((1u64 << host_bits) - 1) as u32
    }
}

/// The MAC and IP Kube-OVN allocated to a pod port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortAddress {
    /// MAC, `00:00:00:xx:xx:xx` like Kube-OVN's.
    pub mac: String,
    /// Pod IP.
    pub ip: Ipv4Addr,
    /// Prefix length of the subnet.
    pub prefix_len: u8,
    /// The subnet's gateway.
    pub gateway: Ipv4Addr,
}

impl PortAddress {
    /// `ip/prefix_len`, as in the CNI `ips` runtime config.
    pub fn cidr(&self) -> String {
        format!("{}/{}", self.ip, self.prefix_len)
    }
}

/// Address allocation for one subnet, like Kube-OVN's IPAM (lowest free address first).
#[derive(Clone, Debug)]
pub struct Ipam {
    subnet: Subnet,
    used: BTreeSet<u32>,
}

impl Ipam {
    /// An allocator for `subnet`.
    pub fn new(subnet: Subnet) -> Ipam {
        Ipam {
            subnet,
            used: BTreeSet::new(),
        }
    }

    /// The subnet.
    pub fn subnet(&self) -> &Subnet {
        &self.subnet
    }

    /// Allocates the lowest free address.
    pub fn allocate(&mut self) -> Result<PortAddress, LogicalError> {
        let s = &self.subnet;
        let first = u32::from(s.first_pod_ip);
        let ip = (first..s.broadcast())
            .find(|ip| !self.used.contains(ip) && *ip != u32::from(s.gateway))
            .ok_or_else(|| LogicalError::Exhausted {
                subnet: s.name.clone(),
            })?;
        self.used.insert(ip);
        let [_, _, b3, b4] = ip.to_be_bytes();
        Ok(PortAddress {
            mac: format!("00:00:00:{:02x}:{b3:02x}:{b4:02x}", s.mac_tag),
            ip: Ipv4Addr::from(ip),
            prefix_len: s.prefix_len,
            gateway: s.gateway,
        })
    }

    /// Returns an address to the pool.
    pub fn release(&mut self, ip: Ipv4Addr) {
        self.used.remove(&u32::from(ip));
    }
}

fn nb(central: &OvnCentral, step: impl Into<String>, args: &[&str]) -> Result<String, LogicalError> {
    central.nbctl(args).map_err(|source| LogicalError::Nb {
        step: step.into(),
        source,
    })
}

/// Creates the cluster router and `subnet` as an overlay switch attached to it (Kube-OVN's `ovn-default`).
pub fn create_overlay(central: &OvnCentral, subnet: &Subnet) -> Result<(), LogicalError> {
    let ls = subnet.name.as_str();
    let lrp = format!("{CLUSTER_ROUTER}-{ls}");
    let lsp = format!("{ls}-{CLUSTER_ROUTER}");
    let lrp_mac = format!("00:00:00:{:02x}:00:01", subnet.mac_tag);
    let lrp_net = format!("{}/{}", subnet.gateway, subnet.prefix_len);
    let cidr = format!("other_config:subnet={}", subnet.cidr());
    let gw = format!("other_config:gateway={}", subnet.gateway);
    let rp = format!("router-port={lrp}");
    nb(
        central,
        format!("overlay {ls}"),
        &[
            "--may-exist",
            "lr-add",
            CLUSTER_ROUTER,
            "--",
            "lrp-add",
            CLUSTER_ROUTER,
            &lrp,
            &lrp_mac,
            &lrp_net,
            "--",
            "ls-add",
            ls,
            "--",
            "set",
            "logical_switch",
            ls,
            &cidr,
            &gw,
            "external_ids:vendor=kube-ovn",
            "--",
            "lsp-add",
            ls,
            &lsp,
            "--",
            "lsp-set-type",
            &lsp,
            "router",
            "--",
            "lsp-set-addresses",
            &lsp,
            "router",
            "--",
            "lsp-set-options",
            &lsp,
            &rp,
        ],
    )
    .map(drop)
}

/// Creates an underlay switch: `subnet` plus its `localnet` port on the provider network, tagged
/// when the VLAN id is not 0. Like Kube-OVN's default, it is not attached to the cluster router:
/// the gateway is the upstream router.
pub fn create_underlay(central: &OvnCentral, subnet: &Subnet) -> Result<(), LogicalError> {
    let Some(u) = &subnet.underlay else {
        return create_overlay(central, subnet);
    };
    let ls = subnet.name.as_str();
    let ln = format!("localnet.{ls}");
    let cidr = format!("other_config:subnet={}", subnet.cidr());
    let gw = format!("other_config:gateway={}", subnet.gateway);
    let net = format!("network_name={}", u.provider);
    let mut args = vec![
        "ls-add",
        ls,
        "--",
        "set",
        "logical_switch",
        ls,
        &cidr,
        &gw,
        "external_ids:vendor=kube-ovn",
        "--",
        "lsp-add",
        ls,
        &ln,
        "--",
        "lsp-set-type",
        &ln,
        "localnet",
        "--",
        "lsp-set-addresses",
        &ln,
        "unknown",
        "--",
        "lsp-set-options",
        &ln,
        &net,
    ];
    let tag = format!("tag={}", u.vlan_id);
    if u.vlan_id != 0 {
        args.extend(["--", "set", "logical_switch_port", &ln, &tag]);
    }
    nb(central, format!("underlay {ls}"), &args).map(drop)
}

/// The OVN port name Kube-OVN gives an attachment: `<pod>.<ns>` for provider `ovn`, else
/// `<pod>.<ns>.<provider>`.
pub fn port_name(pod: &str, namespace: &str, provider: &str) -> String {
    if provider == "ovn" {
        format!("{pod}.{namespace}")
    } else {
        format!("{pod}.{namespace}.{provider}")
    }
}

/// Adds the pod's logical switch port with its allocated address, as the controller does before
/// the CNI runs.
pub fn add_port(
    central: &OvnCentral,
    switch: &str,
    lsp: &str,
    addr: &PortAddress,
    pod: &str,
    namespace: &str,
) -> Result<(), LogicalError> {
    let addresses = format!("{} {}", addr.mac, addr.ip);
    let pod_id = format!("external_ids:pod={namespace}/{pod}");
    let ls = format!("external_ids:ls={switch}");
    nb(
        central,
        format!("port {lsp}"),
        &[
            "lsp-add",
            switch,
            lsp,
            "--",
            "lsp-set-addresses",
            lsp,
            &addresses,
            "--",
            "lsp-set-port-security",
            lsp,
            &addresses,
            "--",
            "set",
            "logical_switch_port",
            lsp,
            &pod_id,
            &ls,
            "external_ids:vendor=kube-ovn",
        ],
    )
    .map(drop)
}

/// Deletes a logical switch port (idempotent).
pub fn del_port(central: &OvnCentral, lsp: &str) -> Result<(), LogicalError> {
    nb(
        central,
        format!("delete port {lsp}"),
        &["--if-exists", "lsp-del", lsp],
    )
    .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipam_hands_out_lowest_free_addresses_after_excluded_range() {
        let mut ipam = Ipam::new(Subnet::vlan0(0));
        let a = ipam.allocate().unwrap();
        let b = ipam.allocate().unwrap();
        assert_eq!(a.ip, Ipv4Addr::new(10, 10, 204, 101));
        assert_eq!(b.ip, Ipv4Addr::new(10, 10, 204, 102));
        assert_eq!(a.mac, "00:00:00:cc:cc:65");
        assert_eq!(a.cidr(), "10.10.204.101/24");
        ipam.release(a.ip);
        assert_eq!(ipam.allocate().unwrap().ip, a.ip);
        let mut small = Ipam::new(Subnet {
            first_pod_ip: Ipv4Addr::new(10, 10, 204, 253),
            ..Subnet::vlan0(0)
        });
        small.allocate().unwrap();
        assert!(matches!(small.allocate(), Err(LogicalError::Exhausted { .. })));
    }

    #[test]
    fn port_names_follow_kube_ovn() {
        assert_eq!(port_name("p", "default", "ovn"), "p.default");
        assert_eq!(
            port_name("p", "default", "sriov.default.ovn"),
            "p.default.sriov.default.ovn"
        );
    }
}
