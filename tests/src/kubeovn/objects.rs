//! The objects of the API-server stand-in: the kinds it serves with their API names, the pod and
//! Subnet shapes tests create (a Kube-OVN Subnet as the guide declares it, CRD
//! `subnets.kubeovn.io` of kube-ovn `dist/images/install.sh` at v1.12.35), and metadata helpers.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::logical;

/// The kinds the stand-in serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// `pods`, core `v1`, namespaced.
    Pod,
    /// `subnets.kubeovn.io`, `kubeovn.io/v1`, cluster-scoped.
    Subnet,
    /// `nodes`, core `v1`, cluster-scoped.
    Node,
}

impl Kind {
    /// The plural resource name in URLs and Status details.
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Pod => "pods",
            Kind::Subnet => "subnets",
            Kind::Node => "nodes",
        }
    }

    /// The API group (`""` for core).
    pub fn group(self) -> &'static str {
        match self {
            Kind::Pod => "",
            Kind::Subnet => "kubeovn.io",
            Kind::Node => "",
        }
    }

    /// `apiVersion` of objects and lists.
    pub fn api_version(self) -> &'static str {
        match self {
            Kind::Pod => "v1",
            Kind::Subnet => "kubeovn.io/v1",
            Kind::Node => "v1",
        }
    }

    /// `kind` of one object.
    pub fn kind(self) -> &'static str {
        match self {
            Kind::Pod => "Pod",
            Kind::Subnet => "Subnet",
            Kind::Node => "Node",
        }
    }

    /// Whether list items carry `kind`/`apiVersion`: the real server drops them for built-in
    /// types and keeps them for custom resources.
    pub fn typed_list_items(self) -> bool {
        self == Kind::Subnet
    }
}

/// `metadata.<key>` of an object as a string, empty when missing.
pub fn meta_str<'a>(object: &'a Value, key: &str) -> &'a str {
    object
        .pointer(&format!("/metadata/{key}"))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// `metadata.annotations[key]` of an object.
pub fn annotation<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object.get("metadata")?.get("annotations")?.get(key)?.as_str()
}

/// A pod to create: what the tests decide; the rest is filled in as the real server does.
#[derive(Clone, Debug, Default)]
pub struct NewPod {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `spec.nodeName` (the scheduler's choice).
    pub node_name: Option<String>,
    /// Annotations (`k8s.v1.cni.cncf.io/networks`, `<provider>.kubernetes.io/logical_switch`, ...).
    pub annotations: BTreeMap<String, String>,
}

/// A Kube-OVN Subnet's spec fields the node server and the controller stand-in read.
#[derive(Clone, Debug, Default)]
pub struct SubnetSpec {
    /// Name (`ovn-default`, `vlan0`).
    pub name: String,
    /// `spec.protocol` (`IPv4`).
    pub protocol: String,
    /// `spec.provider` (`ovn`, or `<nad>.<ns>.ovn` for a subnet of one attachment).
    pub provider: String,
    /// `spec.cidrBlock`.
    pub cidr_block: String,
    /// `spec.gateway`.
    pub gateway: String,
    /// `spec.excludeIps`.
    pub exclude_ips: Vec<String>,
    /// `spec.vlan` (a `Vlan` object's name), empty for overlay.
    pub vlan: String,
    /// `spec.vpc`.
    pub vpc: String,
    /// `spec.mtu`, absent when `None`.
    pub mtu: Option<u32>,
}

impl SubnetSpec {
    /// The Subnet object of a harness subnet, as the guide declares it (`provider: ovn`,
    /// `excludeIps` up to the first pod address, `vpc: ovn-cluster` as the controller fills in).
    pub fn from_logical(s: &logical::Subnet) -> SubnetSpec {
        let first = u32::from(s.first_pod_ip);
        let exclude_ips = if first > u32::from(s.network) + 1 {
            let from = std::net::Ipv4Addr::from(u32::from(s.network) + 1);
            let to = std::net::Ipv4Addr::from(first - 1);
            vec![format!("{from}..{to}")]
        } else {
            vec![]
        };
        SubnetSpec {
            name: s.name.clone(),
            protocol: "IPv4".into(),
            provider: "ovn".into(),
            cidr_block: s.cidr(),
            gateway: s.gateway.to_string(),
            exclude_ips,
            vlan: s
                .underlay
                .as_ref()
                .map(|u| u.vlan_name.clone())
                .unwrap_or_default(),
            vpc: logical::CLUSTER_ROUTER.into(),
            mtu: None,
        }
    }

    /// The Subnet object without server-set metadata.
    pub fn to_json(&self) -> Value {
        let mut spec = json!({
            "protocol": self.protocol,
            "provider": self.provider,
            "cidrBlock": self.cidr_block,
            "gateway": self.gateway,
            "excludeIps": self.exclude_ips,
            "vpc": self.vpc,
            "gatewayType": "distributed",
            "natOutgoing": false,
            "private": false,
        });
        if !self.vlan.is_empty() {
            spec["vlan"] = json!(self.vlan);
        }
        if let Some(mtu) = self.mtu {
            spec["mtu"] = json!(mtu);
        }
        json!({"kind": "Subnet", "apiVersion": Kind::Subnet.api_version(), "metadata": {"name": self.name}, "spec": spec})
    }
}

/// `metadata.resourceVersion` as a number (0 when missing).
pub fn rv_of(object: &Value) -> u64 {
    meta_str(object, "resourceVersion").parse().unwrap_or(0)
}

/// Now as RFC 3339 UTC with seconds, as `metav1.Time` is written.
pub(crate) fn rfc3339_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnet_from_harness_subnet_carries_guide_fields() {
        let s = super::super::store::Store::default();
        let v = s.put_subnet(&SubnetSpec {
            mtu: Some(1400),
            ..SubnetSpec::from_logical(&logical::Subnet::vlan0(0))
        });
        assert_eq!(v["spec"]["cidrBlock"], "10.10.204.0/24");
        assert_eq!(v["spec"]["gateway"], "10.10.204.254");
        assert_eq!(v["spec"]["vlan"], "vlan0");
        assert_eq!(v["spec"]["mtu"], 1400);
        assert_eq!(v["spec"]["excludeIps"], json!(["10.10.204.1..10.10.204.100"]));
        let again = s.put_subnet(&SubnetSpec::from_logical(&logical::Subnet::vlan0(0)));
        assert!(rv_of(&again) > rv_of(&v));
        assert!(again["spec"].get("mtu").is_none());
        assert_eq!(meta_str(&again, "uid"), meta_str(&v, "uid"));
    }
}
