//! The CNI result: read from IPAM (any version) and written in the requested version's format.

use crate::ipnet::IpNet;
use crate::version::CniVersion;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::net::IpAddr;

/// One interface of the result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Interface {
    /// Interface name.
    pub name: String,
    /// MAC address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// Netns path for pod interfaces; absent for host interfaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
    /// MTU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// PCI address of the device (1.1.0).
    #[serde(default, rename = "pciID", skip_serializing_if = "Option::is_none")]
    pub pci_id: Option<String>,
}

/// One IP configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpConfig {
    /// Address with prefix.
    pub address: IpNet,
    /// Gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    /// Index into `interfaces`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<usize>,
}

/// One route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Route {
    /// Destination.
    pub dst: IpNet,
    /// Gateway; the IP config's gateway when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<IpAddr>,
    /// Route MTU (1.1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// Advertised MSS (1.1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advmss: Option<u32>,
    /// Route metric (1.1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    /// Route table (1.1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<u32>,
    /// Route scope (1.1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<u8>,
}

/// DNS settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dns {
    /// Name servers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    /// Local domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Search domains.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    /// Resolver options.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

/// A version-neutral CNI result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CniResult {
    /// Interfaces.
    #[serde(default)]
    pub interfaces: Vec<Interface>,
    /// IP configurations.
    #[serde(default)]
    pub ips: Vec<IpConfig>,
    /// Routes.
    #[serde(default)]
    pub routes: Vec<Route>,
    /// DNS.
    #[serde(default)]
    pub dns: Dns,
}

/// A result (from IPAM or `prevResult`) that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot decode CNI result")]
pub struct DecodeResult {
    #[source]
    source: serde_json::Error,
}

impl CniResult {
    /// Reads a result of any supported version (0.3.x/0.4.0 carry `ips[].version`, ignored).
    pub fn from_value(value: &Value) -> Result<CniResult, DecodeResult> {
        CniResult::deserialize(value).map_err(|source| DecodeResult { source })
    }

    /// Reads a result from bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<CniResult, DecodeResult> {
        serde_json::from_slice(bytes).map_err(|source| DecodeResult { source })
    }

    /// Writes the result in `version`'s format.
    pub fn to_value(&self, version: CniVersion) -> Value {
        let interfaces: Vec<Value> = self
            .interfaces
            .iter()
            .map(|i| {
                json!(Interface {
                    pci_id: i.pci_id.clone().filter(|_| version >= CniVersion::V1_1_0),
                    ..i.clone()
                })
            })
            .collect();
        let ips: Vec<Value> = self
            .ips
            .iter()
            .map(|ip| {
                let mut v = json!(ip);
                if version.ips_have_version() {
                    if let Some(obj) = v.as_object_mut() {
                        let family = if ip.address.is_ipv4() { "4" } else { "6" };
                        obj.insert("version".into(), json!(family));
                    }
                }
                v
            })
            .collect();
        let routes: Vec<Value> = self
            .routes
            .iter()
            .map(|r| {
                if version >= CniVersion::V1_1_0 {
                    json!(r)
                } else {
                    json!(Route {
                        mtu: None,
                        advmss: None,
                        priority: None,
                        table: None,
                        scope: None,
                        ..r.clone()
                    })
                }
            })
            .collect();
        let mut out = Map::new();
        out.insert("cniVersion".into(), json!(version.as_str()));
        for (key, list) in [("interfaces", interfaces), ("ips", ips), ("routes", routes)] {
            if !list.is_empty() {
                out.insert(key.into(), Value::Array(list));
            }
        }
        if self.dns != Dns::default() {
            out.insert("dns".into(), json!(self.dns));
        }
        Value::Object(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CniResult {
        CniResult {
            interfaces: vec![
                Interface {
                    name: "eth0".into(),
                    mac: Some("02:00:00:00:00:01".into()),
                    sandbox: Some("/run/netns/x".into()),
                    mtu: Some(1400),
                    pci_id: Some("0000:84:00.2".into()),
                },
                Interface {
                    name: "abc_h".into(),
                    mac: Some("02:00:00:00:00:02".into()),
                    ..Default::default()
                },
            ],
            ips: vec![IpConfig {
                address: "10.0.0.5/24".parse().unwrap(),
                gateway: Some("10.0.0.1".parse().unwrap()),
                interface: Some(0),
            }],
            routes: vec![Route {
                dst: "0.0.0.0/0".parse().unwrap(),
                gw: None,
                mtu: Some(1300),
                advmss: None,
                priority: None,
                table: None,
                scope: None,
            }],
            dns: Dns {
                nameservers: vec!["10.0.0.10".into()],
                ..Default::default()
            },
        }
    }

    #[test]
    fn v031_and_v040_carry_ip_version_and_no_pci_id() {
        for v in [CniVersion::V0_3_1, CniVersion::V0_4_0] {
            let j = sample().to_value(v);
            assert_eq!(j["cniVersion"], v.as_str());
            assert_eq!(j["ips"][0]["version"], "4");
            assert!(j["interfaces"][0].get("pciID").is_none());
            assert!(j["routes"][0].get("mtu").is_none());
            assert_eq!(j["interfaces"][0]["mtu"], 1400);
        }
    }

    #[test]
    fn v100_drops_ip_version_and_v110_has_pci_id() {
        let j = sample().to_value(CniVersion::V1_0_0);
        assert!(j["ips"][0].get("version").is_none());
        assert!(j["interfaces"][0].get("pciID").is_none());
        let j = sample().to_value(CniVersion::V1_1_0);
        assert_eq!(j["interfaces"][0]["pciID"], "0000:84:00.2");
        assert_eq!(j["routes"][0]["mtu"], 1300);
        assert_eq!(j["dns"]["nameservers"][0], "10.0.0.10");
        assert!(j["interfaces"][1].get("sandbox").is_none());
    }

    #[test]
    fn reads_any_version_back() {
        for v in crate::version::SUPPORTED {
            let back = CniResult::from_value(&sample().to_value(v)).unwrap();
            assert_eq!(back.ips, sample().ips);
            assert_eq!(back.interfaces[0].name, "eth0");
        }
    }

    #[test]
    fn reads_host_local_output() {
        let out = br#"{"cniVersion":"0.3.1","ips":[{"version":"4","address":"10.22.0.2/16","gateway":"10.22.0.1"}],"dns":{}}"#;
        let r = CniResult::from_slice(out).unwrap();
        assert_eq!(r.ips[0].address.to_string(), "10.22.0.2/16");
        assert!(r.interfaces.is_empty());
    }
}
