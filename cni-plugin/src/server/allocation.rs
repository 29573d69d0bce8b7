//! What Kube-OVN's controller allocated to a pod, read from its annotations as Kube-OVN's
//! daemon reads them (kube-ovn v1.14.0 `pkg/daemon/handler.go` `handleAdd`, names from
//! `pkg/util/const.go`): `<provider>.kubernetes.io/{allocated,routed,ip_address,cidr,gateway,
//! mac_address,logical_switch,provider_network,routes,default_route,ingress_rate,egress_rate}`.

use crate::ipnet::IpNet;
use crate::mac::MacAddr;
use crate::result::{IpConfig, Route};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// The annotation `<provider>.kubernetes.io/<key>`.
pub fn key(provider: &str, key: &str) -> String {
    format!("{provider}.kubernetes.io/{key}")
}

/// Whether `provider` is an OVN provider (`ovn`, or `<nad>.<namespace>.ovn`), whose default
/// route waits for the controller's `routed` (kube-ovn `util.IsOvnProvider`).
pub fn is_ovn_provider(provider: &str) -> bool {
    let fields: Vec<&str> = provider.split('.').collect();
    provider == "ovn" || (fields.len() == 3 && fields[2] == "ovn")
}

/// The OVN logical switch port Kube-OVN names for the pod: `<pod>.<ns>` for the primary `ovn`
/// provider, else `<pod>.<ns>.<provider>` (kube-ovn `ovs.PodNameToPortName`).
pub fn port_name(pod: &str, namespace: &str, provider: &str) -> String {
    if provider == "ovn" {
        format!("{pod}.{namespace}")
    } else {
        format!("{pod}.{namespace}.{provider}")
    }
}

/// An allocation that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AllocationError {
    /// An annotation holds something unusable.
    #[error("annotation {key}={value:?} is invalid: {reason}")]
    Invalid {
        /// The annotation.
        key: String,
        /// Its value.
        value: String,
        /// Why.
        reason: String,
    },
}

/// The pod's allocation for one provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    /// Addresses with their prefix and gateway (one per family).
    pub ips: Vec<IpConfig>,
    /// The subnets' CIDRs as annotated (`a,b` for dual stack).
    pub cidr: String,
    /// MAC address.
    pub mac: Option<MacAddr>,
    /// The Subnet (logical switch).
    pub logical_switch: Option<String>,
    /// The underlay provider network (`provider_network`; set for a Subnet on a Vlan).
    pub provider_network: Option<String>,
    /// Routes the pod asked for (`routes` annotation).
    pub routes: Vec<Route>,
    /// Whether this interface carries the default route.
    pub default_route: bool,
    /// Pod ingress limit, Mbit/s.
    pub ingress_rate: Option<u64>,
    /// Pod egress limit, Mbit/s.
    pub egress_rate: Option<u64>,
}

/// Whether the controller has finished with the pod for `provider`: allocated, and routed when
/// this interface carries the default route of an OVN provider.
pub fn ready(annotations: &BTreeMap<String, String>, provider: &str, ifname: &str) -> bool {
    let get = |k| annotations.get(&key(provider, k)).map(String::as_str);
    if get("allocated") != Some("true") {
        return false;
    }
    !(default_route(annotations, provider, ifname)
        && is_ovn_provider(provider)
        && get("routed") != Some("true"))
}

fn default_route(annotations: &BTreeMap<String, String>, provider: &str, ifname: &str) -> bool {
    match annotations
        .get(&key(provider, "default_route"))
        .map(String::as_str)
    {
        Some("true") => true,
        Some("false") => false,
        _ => ifname == "eth0",
    }
}

/// Reads the allocation of `provider` for interface `ifname`.
pub fn read(
    annotations: &BTreeMap<String, String>,
    provider: &str,
    ifname: &str,
) -> Result<Allocation, AllocationError> {
    let get = |k: &str| {
        annotations
            .get(&key(provider, k))
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    let invalid = |k: &str, reason: String| AllocationError::Invalid {
        key: key(provider, k),
        value: get(k).unwrap_or_default().to_string(),
        reason,
    };
    let list = |k: &str| {
        get(k)
            .map(|v| v.split(',').map(str::trim).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    let cidrs: Vec<IpNet> = list("cidr")
        .iter()
        .map(|c| c.parse().map_err(|e| invalid("cidr", format!("{e}"))))
        .collect::<Result<_, _>>()?;
    let gateways: Vec<IpAddr> = list("gateway")
        .iter()
        .map(|g| g.parse().map_err(|e| invalid("gateway", format!("{e}"))))
        .collect::<Result<_, _>>()?;
    let mut ips = Vec::new();
    for ip in list("ip_address") {
        let addr: IpAddr = ip.parse().map_err(|e| invalid("ip_address", format!("{e}")))?;
        let cidr = cidrs
            .iter()
            .find(|c| c.addr.is_ipv4() == addr.is_ipv4())
            .ok_or_else(|| invalid("cidr", format!("no CIDR of the family of {addr}")))?;
        ips.push(IpConfig {
            address: IpNet {
                addr,
                prefix: cidr.prefix,
            },
            gateway: gateways.iter().find(|g| g.is_ipv4() == addr.is_ipv4()).copied(),
            interface: None,
        });
    }
    if ips.is_empty() {
        return Err(invalid("ip_address", "no address".into()));
    }
    let mac = get("mac_address")
        .map(|m| m.parse().map_err(|e| invalid("mac_address", format!("{e}"))))
        .transpose()?;
    let routes = match get("routes") {
        None => Vec::new(),
        Some(json) => {
            let raw: Vec<RawRoute> =
                serde_json::from_str(json).map_err(|e| invalid("routes", e.to_string()))?;
            raw.into_iter()
                .map(|r| r.route().map_err(|reason| invalid("routes", reason)))
                .collect::<Result<_, _>>()?
        }
    };
    let rate = |k: &str| {
        get(k)
            .map(|v| v.parse::<u64>().map_err(|e| invalid(k, e.to_string())))
            .transpose()
    };
    Ok(Allocation {
        ips,
        cidr: list("cidr").join(","),
        mac,
        logical_switch: get("logical_switch").map(str::to_string),
        provider_network: get("provider_network").map(str::to_string),
        routes,
        default_route: default_route(annotations, provider, ifname),
        ingress_rate: rate("ingress_rate")?.filter(|r| *r > 0),
        egress_rate: rate("egress_rate")?.filter(|r| *r > 0),
    })
}

/// A route as Kube-OVN writes it (`request.Route`: `dst`, `gw`, both optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct RawRoute {
    /// Destination CIDR; empty means the default route.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub dst: String,
    /// Gateway.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub gw: String,
}

impl RawRoute {
    /// The typed route; an empty `dst` is the default route of the gateway's family.
    pub fn route(&self) -> Result<Route, String> {
        let gw: Option<IpAddr> = match self.gw.as_str() {
            "" => None,
            g => Some(g.parse().map_err(|e| format!("gateway {g:?}: {e}"))?),
        };
        let dst: IpNet = match self.dst.as_str() {
            "" if gw.is_some_and(|g| g.is_ipv6()) => "::/0".parse().map_err(|e| format!("{e}"))?,
            "" => "0.0.0.0/0".parse().map_err(|e| format!("{e}"))?,
            d => d.parse().map_err(|e| format!("destination {d:?}: {e}"))?,
        };
        Ok(Route {
            dst,
            gw,
            mtu: None,
            advmss: None,
            priority: None,
            table: None,
            scope: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (key("ovn", k), v.to_string()))
            .collect()
    }

    #[test]
    fn reads_a_dual_stack_allocation() {
        let a = ann(&[
            ("allocated", "true"),
            ("ip_address", "10.16.0.5,fd00:10:16::5"),
            ("cidr", "10.16.0.0/16,fd00:10:16::/64"),
            ("gateway", "10.16.0.1,fd00:10:16::1"),
            ("mac_address", "00:00:00:AB:CD:EF"),
            ("logical_switch", "ovn-default"),
            (
                "routes",
                r#"[{"dst":"192.168.0.0/16","gw":"10.16.0.254"},{"gw":"10.16.0.1"}]"#,
            ),
            ("ingress_rate", "100"),
        ]);
        let alloc = read(&a, "ovn", "eth0").unwrap();
        assert_eq!(alloc.ips.len(), 2);
        assert_eq!(alloc.ips[0].address.to_string(), "10.16.0.5/16");
        assert_eq!(alloc.ips[1].address.to_string(), "fd00:10:16::5/64");
        assert_eq!(alloc.ips[1].gateway, Some("fd00:10:16::1".parse().unwrap()));
        assert_eq!(alloc.mac, Some("00:00:00:ab:cd:ef".parse().unwrap()));
        assert_eq!(alloc.routes[0].dst.to_string(), "192.168.0.0/16");
        assert_eq!(alloc.routes[1].dst.to_string(), "0.0.0.0/0");
        assert_eq!((alloc.ingress_rate, alloc.egress_rate), (Some(100), None));
        assert!(alloc.default_route);
        assert_eq!(alloc.cidr, "10.16.0.0/16,fd00:10:16::/64");
        assert_eq!(alloc.provider_network, None);
        let mut underlay = a.clone();
        underlay.insert(key("ovn", "provider_network"), "pn0".into());
        assert_eq!(
            read(&underlay, "ovn", "eth0")
                .unwrap()
                .provider_network
                .as_deref(),
            Some("pn0")
        );
    }

    #[test]
    fn readiness_waits_for_routed_only_on_the_default_route_of_an_ovn_provider() {
        let p = "sriov.default.ovn";
        let mut a: BTreeMap<String, String> = [(key(p, "allocated"), "true".to_string())].into();
        assert!(!ready(&a, p, "eth0"));
        assert!(ready(&a, p, "net1"));
        a.insert(key(p, "default_route"), "true".into());
        assert!(!ready(&a, p, "net1"));
        a.insert(key(p, "routed"), "true".into());
        assert!(ready(&a, p, "net1"));
        let other: BTreeMap<String, String> = [(key("x.y", "allocated"), "true".to_string())].into();
        assert!(ready(&other, "x.y", "eth0"));
        assert!(!ready(&BTreeMap::new(), p, "net1"));
    }

    #[test]
    fn names_and_bad_annotations() {
        assert_eq!(port_name("p", "ns", "ovn"), "p.ns");
        assert_eq!(
            port_name("p", "ns", "sriov.default.ovn"),
            "p.ns.sriov.default.ovn"
        );
        assert!(is_ovn_provider("ovn") && is_ovn_provider("a.b.ovn") && !is_ovn_provider("a.ovn"));
        let bad = ann(&[("ip_address", "10.16.0.5"), ("cidr", "nope")]);
        let e = read(&bad, "ovn", "eth0").unwrap_err();
        assert!(e.to_string().contains("ovn.kubernetes.io/cidr"), "{e}");
        let v6_only = ann(&[("ip_address", "10.16.0.5"), ("cidr", "fd00::/64")]);
        assert!(read(&v6_only, "ovn", "eth0").is_err());
        assert!(read(&ann(&[]), "ovn", "eth0").is_err());
    }
}
