//! The wire types of Kube-OVN's CNI-server protocol: what the `kube-ovn` shim POSTs to
//! `http://dummy/api/v1/{add,del}` over the daemon's unix socket and the two shapes of the ADD
//! reply. Pinned to kube-ovn `pkg/request/cniserver.go`: the request at v1.15.24 and v1.16.2
//! (identical; v1.12.x lacks only `vhost_user_socket_consumption`), the flat reply at v1.15.24
//! (v1.13.0 to v1.15.x; v1.12.x has no `routes`) and the `ips` reply at v1.16.2 (v1.16.0 to
//! master 1533681d).

use serde::{Deserialize, Serialize};

/// Kube-OVN's `request.Route`; `dst`/`gw` are `omitempty` from v1.13 on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Route {
    /// Destination CIDR; empty means the default route of the gateway's family.
    #[serde(rename = "dst", skip_serializing_if = "String::is_empty")]
    pub destination: String,
    /// Next hop.
    #[serde(rename = "gw", skip_serializing_if = "String::is_empty")]
    pub gateway: String,
}

/// CNI `types.DNS`: every field `omitempty`, so an empty one is `{}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Dns {
    /// Name servers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    /// Local domain.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub domain: String,
    /// Search domains.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    /// Resolver options.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl Dns {
    /// Whether every field is empty (CNI omits such a `dns` from results).
    pub fn is_empty(&self) -> bool {
        *self == Dns::default()
    }
}

/// Kube-OVN's `request.CniRequest`. No field is `omitempty`: every key is always sent, `routes`
/// as `null` when the netconf has none.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CniRequest {
    /// The netconf's `type` (`kube-ovn`).
    pub cni_type: String,
    /// `K8S_POD_NAME` from `CNI_ARGS`.
    pub pod_name: String,
    /// `K8S_POD_NAMESPACE` from `CNI_ARGS`.
    pub pod_namespace: String,
    /// `CNI_CONTAINERID`.
    pub container_id: String,
    /// `CNI_NETNS`.
    pub net_ns: String,
    /// `CNI_IFNAME`.
    pub if_name: String,
    /// The netconf's `provider` (`ovn` when empty).
    pub provider: String,
    /// The netconf's `routes` (ADD only).
    pub routes: Option<Vec<Route>>,
    /// The netconf's `dns` (ADD only).
    pub dns: Dns,
    /// The netconf's `vf_driver` (ADD only).
    pub vf_driver: String,
    /// The VF's PCI address Multus injected from the device plugin.
    #[serde(rename = "deviceID")]
    pub device_id: String,
    /// DPDK: the volume holding the vhost-user socket.
    pub vhost_user_socket_volume_name: String,
    /// DPDK: the vhost-user socket name (ADD only).
    pub vhost_user_socket_name: String,
    /// DPDK: who consumes the socket.
    pub vhost_user_socket_consumption: String,
}

/// The ADD reply of v1.12 to v1.15 (`request.CniResponse` at v1.15.24): one address string,
/// `a,b` for dual stack with `protocol` `Dual`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FlatReply {
    /// `IPv4`, `IPv6` or `Dual`.
    pub protocol: String,
    /// Pod address(es), without prefix length.
    pub address: String,
    /// Pod MAC.
    pub mac_address: String,
    /// Subnet CIDR(s).
    pub cidr: String,
    /// Gateway(s).
    pub gateway: String,
    /// Routes for the CNI result; when empty the shim adds a default route via the gateway.
    pub routes: Option<Vec<Route>>,
    /// Interface MTU.
    pub mtu: i64,
    /// The interface's name in the pod.
    pub nicname: String,
    /// DNS for the CNI result.
    pub dns: Dns,
    /// Error text of a failed request.
    pub error: String,
}

/// One address of the v1.16 reply (`request.IPConfig` at v1.16.2).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct IpConfig {
    /// `IPv4` or `IPv6`.
    pub protocol: String,
    /// Address without prefix length.
    pub ip: String,
    /// Subnet CIDR.
    pub cidr: String,
    /// Gateway, `omitempty`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub gateway: String,
}

/// The ADD reply of v1.16 to master (`request.CniResponse` at v1.16.2).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct IpsReply {
    /// One entry per address family.
    pub ips: Option<Vec<IpConfig>>,
    /// Pod MAC.
    pub mac_address: String,
    /// Routes for the CNI result; when empty the shim adds default routes via the gateways.
    pub routes: Option<Vec<Route>>,
    /// Interface MTU.
    pub mtu: i64,
    /// The interface's name in the pod.
    pub nicname: String,
    /// DNS for the CNI result.
    pub dns: Dns,
    /// Error text of a failed request.
    pub error: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn empty_request_sends_every_key_like_go() {
        let v = serde_json::to_value(CniRequest::default()).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut want = vec![
            "cni_type",
            "pod_name",
            "pod_namespace",
            "container_id",
            "net_ns",
            "if_name",
            "provider",
            "routes",
            "dns",
            "vf_driver",
            "deviceID",
            "vhost_user_socket_volume_name",
            "vhost_user_socket_name",
            "vhost_user_socket_consumption",
        ];
        want.sort_unstable();
        let mut got = keys.clone();
        got.sort_unstable();
        assert_eq!(got, want);
        assert_eq!(v["routes"], json!(null));
        assert_eq!(v["dns"], json!({}));
    }

    #[test]
    fn replies_tolerate_missing_and_unknown_fields_like_go() {
        let r: IpsReply = serde_json::from_str(r#"{"mac_address":"m","protocol":"IPv4","extra":1}"#).unwrap();
        assert_eq!(r.mac_address, "m");
        assert!(r.ips.is_none());
        let f: FlatReply = serde_json::from_str(r#"{"ips":[],"address":"10.0.0.2"}"#).unwrap();
        assert_eq!(f.address, "10.0.0.2");
    }
}
