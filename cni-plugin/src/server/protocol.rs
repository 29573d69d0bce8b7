//! Kube-OVN's CNI-server protocol (kube-ovn `pkg/request/cniserver.go`, v1.12.0 to master):
//! the shim `/opt/cni/bin/kube-ovn` POSTs a [`CniRequest`] as JSON to `/api/v1/add` or
//! `/api/v1/del` on the unix socket the NAD's `server_socket` names.

use serde::{Deserialize, Deserializer, Serialize};

/// Go encodes a nil slice as `null`: read it as empty.
fn null_as_empty<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Option::<T>::deserialize(d).map(Option::unwrap_or_default)
}

/// A route as the protocol carries it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// Destination CIDR (empty: default).
    #[serde(rename = "dst", default, skip_serializing_if = "String::is_empty")]
    pub destination: String,
    /// Gateway.
    #[serde(rename = "gw", default, skip_serializing_if = "String::is_empty")]
    pub gateway: String,
}

/// DNS as the CNI types carry it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dns {
    /// Name servers.
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub nameservers: Vec<String>,
    /// Domain.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub domain: String,
    /// Search domains.
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub search: Vec<String>,
    /// Options.
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub options: Vec<String>,
}

/// The request (`request.CniRequest`). Unknown fields (vhost-user, newer additions) are
/// ignored, as Go's decoder does.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct CniRequest {
    /// `kube-ovn`.
    pub cni_type: String,
    /// Pod name.
    pub pod_name: String,
    /// Pod namespace.
    pub pod_namespace: String,
    /// Container ID.
    pub container_id: String,
    /// Network namespace path.
    pub net_ns: String,
    /// Interface name in the pod.
    pub if_name: String,
    /// Kube-OVN provider (`ovn` or `<nad>.<ns>.ovn`).
    pub provider: String,
    /// Routes from the NAD.
    #[serde(deserialize_with = "null_as_empty")]
    pub routes: Vec<Route>,
    /// DNS from the NAD.
    #[serde(deserialize_with = "null_as_empty")]
    pub dns: Dns,
    /// Driver the VF should have (unused: the device plugin's pool fixes it).
    pub vf_driver: String,
    /// The VF (`deviceID` from Multus).
    #[serde(rename = "deviceID")]
    pub device_id: String,
}

/// One address in master's reply shape (`request.IPConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpConfig {
    /// `IPv4` or `IPv6`.
    pub protocol: String,
    /// Address without prefix.
    pub ip: String,
    /// The subnet's CIDR.
    pub cidr: String,
    /// Gateway.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub gateway: String,
}

/// The ADD reply in both shapes at once: v1.12–v1.15 read `protocol`, `address`, `cidr`,
/// `gateway`; master reads `ips`; all read the rest. Go's decoder ignores what it does not know.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CniResponse {
    /// `IPv4`, `IPv6` or `Dual` (v1.12–v1.15).
    pub protocol: String,
    /// Addresses, comma separated (v1.12–v1.15).
    pub address: String,
    /// CIDRs, comma separated (v1.12–v1.15).
    pub cidr: String,
    /// Gateways, comma separated (v1.12–v1.15).
    pub gateway: String,
    /// Addresses (master).
    pub ips: Vec<IpConfig>,
    /// MAC address of the pod interface.
    pub mac_address: String,
    /// Routes configured.
    pub routes: Vec<Route>,
    /// MTU of the pod interface.
    pub mtu: u32,
    /// Name of the pod interface.
    pub nicname: String,
    /// DNS.
    pub dns: Dns,
    /// Error text (only on failure).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
}

/// `IPv4` or `IPv6`, as Kube-OVN spells protocols.
pub fn protocol_of(ip: &std::net::IpAddr) -> &'static str {
    if ip.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_shims_request_with_go_nulls_and_unknown_fields() {
        let r: CniRequest = serde_json::from_str(
            r#"{"cni_type":"kube-ovn","pod_name":"p","pod_namespace":"default","container_id":"c",
            "net_ns":"/var/run/netns/x","if_name":"net1","provider":"sriov.default.ovn","routes":null,
            "dns":{"nameservers":null,"search":null},"vf_driver":"","deviceID":"0000:84:00.2",
            "vhost_user_socket_volume_name":"","something_newer":1}"#,
        )
        .unwrap();
        assert!(r.routes.is_empty() && r.dns.nameservers.is_empty());
        assert_eq!(
            (r.device_id.as_str(), r.if_name.as_str()),
            ("0000:84:00.2", "net1")
        );
        let null_dns: CniRequest = serde_json::from_str(r#"{"dns":null}"#).unwrap();
        assert_eq!(null_dns.dns, Dns::default());
    }
}
