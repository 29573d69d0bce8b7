//! Kube-OVN's pod annotation names (kube-ovn `pkg/util/const.go` at v1.12.35, unchanged at
//! v1.16.2): `<provider>.kubernetes.io/<suffix>`, and the Multus selection annotations.

/// Multus: the pod's networks (`k8s.v1.cni.cncf.io/networks`).
pub const NETWORKS: &str = "k8s.v1.cni.cncf.io/networks";
/// Multus: a NAD replacing the cluster default network (`v1.multus-cni.io/default-network`).
pub const DEFAULT_NETWORK: &str = "v1.multus-cni.io/default-network";
/// The primary network's provider (`util.OvnProvider`).
pub const OVN_PROVIDER: &str = "ovn";

/// `allocated`: `true` once the controller wrote the allocation.
pub const ALLOCATED: &str = "allocated";
/// `routed`: `true` once routes and port groups are in place.
pub const ROUTED: &str = "routed";
/// `ip_address` (`a,b` for dual stack).
pub const IP_ADDRESS: &str = "ip_address";
/// `mac_address`.
pub const MAC_ADDRESS: &str = "mac_address";
/// `cidr`.
pub const CIDR: &str = "cidr";
/// `gateway`.
pub const GATEWAY: &str = "gateway";
/// `logical_switch`: the Subnet.
pub const LOGICAL_SWITCH: &str = "logical_switch";
/// `logical_router`: the Subnet's VPC (overlay only).
pub const LOGICAL_ROUTER: &str = "logical_router";
/// `pod_nic_type` (`veth-pair`, `internal-port`).
pub const POD_NIC_TYPE: &str = "pod_nic_type";
/// `vlan_id` (underlay).
pub const VLAN_ID: &str = "vlan_id";
/// `provider_network` (underlay).
pub const PROVIDER_NETWORK: &str = "provider_network";
/// `port_security`.
pub const PORT_SECURITY: &str = "port_security";
/// `routes` (JSON list of `{dst, gw}`).
pub const ROUTES: &str = "routes";
/// `default_route`.
pub const DEFAULT_ROUTE: &str = "default_route";
/// `ingress_rate` (Mbit/s).
pub const INGRESS_RATE: &str = "ingress_rate";
/// `egress_rate` (Mbit/s).
pub const EGRESS_RATE: &str = "egress_rate";

/// `<provider>.kubernetes.io/<suffix>`.
pub fn key(provider: &str, suffix: &str) -> String {
    format!("{provider}.kubernetes.io/{suffix}")
}
