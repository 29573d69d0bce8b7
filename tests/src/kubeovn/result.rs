//! The CNI result Kube-OVN's shim builds from the daemon's ADD reply (`generateCNIResult` in
//! kube-ovn `cmd/cni/cni.go`: flat reply at v1.15.24, `ips` reply at v1.16.2) and prints in the
//! netconf's `cniVersion` (CNI library v1.3.0 `types/100`, converted down to `types/040`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Serialize;

use super::protocol::{Dns, FlatReply, IpConfig, IpsReply, Route};

/// Why a reply cannot become a CNI result.
#[derive(Debug, thiserror::Error)]
pub enum ResultError {
    /// A CIDR of the reply does not parse.
    #[error("failed to parse CIDR {0:?}")]
    Cidr(String),
    /// An address or gateway of the reply does not parse.
    #[error("failed to parse IP {0:?}")]
    Ip(String),
    /// The netconf asks for a result version the stand-in does not print (0.1.0, 0.2.0).
    #[error("cannot print a result as CNI version {0:?}")]
    Version(String),
}

/// One interface of the result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResultInterface {
    /// `nicname` of the reply.
    pub name: String,
    /// `mac_address`.
    pub mac: String,
    /// `mtu` (printed from CNI 1.0 on).
    pub mtu: i64,
    /// `CNI_NETNS`.
    pub sandbox: String,
}

/// One address of the result (always on interface 0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResultIp {
    /// Address.
    pub ip: IpAddr,
    /// Prefix length of its subnet.
    pub prefix_len: u8,
    /// Gateway, if the reply had one.
    pub gateway: Option<IpAddr>,
}

/// One route of the result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResultRoute {
    /// Destination CIDR (`<nil>` when it did not parse, as Go prints a zero `IPNet`).
    pub dst: String,
    /// Next hop.
    pub gw: Option<IpAddr>,
}

/// The result, independent of the version it is printed in.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CniResult {
    /// Interfaces (the pod's, or none for a flat reply of unknown protocol, as Go does).
    pub interfaces: Vec<ResultInterface>,
    /// Addresses.
    pub ips: Vec<ResultIp>,
    /// Routes: the reply's, else a default route per gateway.
    pub routes: Vec<ResultRoute>,
    /// DNS.
    pub dns: Dns,
}

fn is_v4_text(s: &str) -> bool {
    // util.CheckProtocol: an address (or CIDR) with a dot is IPv4.
    s.contains('.')
}

fn parse_routes(routes: &[Route]) -> Vec<ResultRoute> {
    routes
        .iter()
        .map(|r| {
            let dst = if r.destination.is_empty() {
                if is_v4_text(&r.gateway) {
                    "0.0.0.0/0".to_string()
                } else {
                    "::/0".to_string()
                }
            } else {
                r.destination.clone()
            };
            let dst =
                parse_cidr(&dst).map_or_else(|_| "<nil>".to_string(), |(net, len)| format!("{net}/{len}"));
            ResultRoute {
                dst,
                gw: r.gateway.parse().ok(),
            }
        })
        .collect()
}

/// A CIDR's network address and prefix length.
fn parse_cidr(s: &str) -> Result<(IpAddr, u8), ResultError> {
    let bad = || ResultError::Cidr(s.to_string());
    let (ip, len) = s.split_once('/').ok_or_else(bad)?;
    let ip: IpAddr = ip.parse().map_err(|_| bad())?;
    let len: u8 = len.parse().map_err(|_| bad())?;
    let net = match ip {
        IpAddr::V4(a) if len <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
        }
        IpAddr::V6(a) if len <= 128 => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
        }
        _ => return Err(bad()),
    };
    Ok((net, len))
}

fn default_route(gw: IpAddr) -> ResultRoute {
    let dst = if gw.is_ipv4() { "0.0.0.0/0" } else { "::/0" };
    ResultRoute {
        dst: dst.to_string(),
        gw: Some(gw),
    }
}

fn parse_ip(s: &str) -> Result<IpAddr, ResultError> {
    s.parse().map_err(|_| ResultError::Ip(s.to_string()))
}

fn gateway(s: &str) -> Result<Option<IpAddr>, ResultError> {
    if s.is_empty() {
        Ok(None)
    } else {
        parse_ip(s).map(Some)
    }
}

impl CniResult {
    fn new(routes: &Option<Vec<Route>>, dns: &Dns) -> CniResult {
        CniResult {
            routes: parse_routes(routes.as_deref().unwrap_or_default()),
            dns: dns.clone(),
            ..CniResult::default()
        }
    }

    fn push_address(&mut self, ip: ResultIp, add_route: bool) {
        if let (true, Some(gw)) = (add_route, ip.gateway) {
            self.routes.push(default_route(gw));
        }
        self.ips.push(ip);
    }

    /// From the v1.12–v1.15 reply. Unlike Go, which prints `<nil>` for an address it cannot
    /// parse, the stand-in fails so a bad reply is noticed.
    pub fn from_flat(reply: &FlatReply, netns: &str) -> Result<CniResult, ResultError> {
        let mut r = CniResult::new(&reply.routes, &reply.dns);
        let add_routes = r.routes.is_empty();
        let addrs: Vec<&str> = reply.address.split(',').collect();
        let gws: Vec<&str> = reply.gateway.split(',').collect();
        let nth = |v: &[&str], i: usize| v.get(i).copied().unwrap_or_default().to_string();
        let blocks: Vec<(String, String, String)> = match reply.protocol.as_str() {
            "IPv4" | "IPv6" => vec![(reply.cidr.clone(), reply.address.clone(), reply.gateway.clone())],
            "Dual" => reply
                .cidr
                .split(',')
                .map(|block| {
                    let i = usize::from(!is_v4_text(block));
                    let gw = if reply.gateway.is_empty() {
                        String::new()
                    } else {
                        nth(&gws, i)
                    };
                    (block.to_string(), nth(&addrs, i), gw)
                })
                .collect(),
            // Go sets neither IPs nor interfaces for another protocol.
            _ => return Ok(r),
        };
        for (cidr, ip, gw) in blocks {
            let (_, prefix_len) = parse_cidr(&cidr)?;
            let ip = ResultIp {
                ip: parse_ip(&ip)?,
                prefix_len,
                gateway: gateway(&gw)?,
            };
            r.push_address(ip, add_routes);
        }
        r.interfaces
            .push(interface(&reply.nicname, &reply.mac_address, reply.mtu, netns));
        Ok(r)
    }

    /// From the v1.16–master reply (`assignAddress`).
    pub fn from_ips(reply: &IpsReply, netns: &str) -> Result<CniResult, ResultError> {
        let mut r = CniResult::new(&reply.routes, &reply.dns);
        let add_routes = r.routes.is_empty();
        for IpConfig {
            ip,
            cidr,
            gateway: gw,
            ..
        } in reply.ips.as_deref().unwrap_or_default()
        {
            let (_, prefix_len) = parse_cidr(cidr)?;
            let ip = ResultIp {
                ip: parse_ip(ip)?,
                prefix_len,
                gateway: gateway(gw)?,
            };
            r.push_address(ip, add_routes);
        }
        r.interfaces
            .push(interface(&reply.nicname, &reply.mac_address, reply.mtu, netns));
        Ok(r)
    }

    /// The result as `types.PrintResult` prints it for `version`: 1.0.0/1.1.0 as is, 0.3.x and
    /// 0.4.0 with `version` on each address and without the interface MTU.
    pub fn to_json(&self, version: &str) -> Result<String, ResultError> {
        let v04 = match version {
            "1.0.0" | "1.1.0" => false,
            "0.3.0" | "0.3.1" | "0.4.0" => true,
            other => return Err(ResultError::Version(other.to_string())),
        };
        let out = Printed {
            cni_version: version,
            interfaces: self
                .interfaces
                .iter()
                .map(|i| PrintedInterface {
                    name: &i.name,
                    mac: &i.mac,
                    mtu: if v04 { 0 } else { i.mtu },
                    sandbox: &i.sandbox,
                })
                .collect(),
            ips: self
                .ips
                .iter()
                .map(|ip| PrintedIp {
                    version: v04.then_some(if ip.ip.is_ipv4() { "4" } else { "6" }),
                    interface: 0,
                    address: format!("{}/{}", ip.ip, ip.prefix_len),
                    gateway: ip.gateway,
                })
                .collect(),
            routes: self
                .routes
                .iter()
                .map(|r| PrintedRoute {
                    dst: &r.dst,
                    gw: r.gw,
                })
                .collect(),
            dns: (!self.dns.is_empty()).then_some(&self.dns),
        };
        serde_json::to_string(&out).map_err(|e| ResultError::Version(e.to_string()))
    }
}

fn interface(name: &str, mac: &str, mtu: i64, netns: &str) -> ResultInterface {
    ResultInterface {
        name: name.to_string(),
        mac: mac.to_string(),
        mtu,
        sandbox: netns.to_string(),
    }
}

#[derive(Serialize)]
struct Printed<'a> {
    #[serde(rename = "cniVersion")]
    cni_version: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    interfaces: Vec<PrintedInterface<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ips: Vec<PrintedIp>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    routes: Vec<PrintedRoute<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dns: Option<&'a Dns>,
}

#[derive(Serialize)]
struct PrintedInterface<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    mac: &'a str,
    #[serde(skip_serializing_if = "is_zero")]
    mtu: i64,
    #[serde(skip_serializing_if = "str::is_empty")]
    sandbox: &'a str,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

#[derive(Serialize)]
struct PrintedIp {
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'static str>,
    interface: u32,
    address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    gateway: Option<IpAddr>,
}

#[derive(Serialize)]
struct PrintedRoute<'a> {
    dst: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    gw: Option<IpAddr>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn flat_v4() -> FlatReply {
        FlatReply {
            protocol: "IPv4".into(),
            address: "10.16.0.5".into(),
            mac_address: "00:00:00:16:00:05".into(),
            cidr: "10.16.0.0/16".into(),
            gateway: "10.16.0.1".into(),
            mtu: 1400,
            nicname: "eth0".into(),
            ..FlatReply::default()
        }
    }

    #[test]
    fn flat_ipv4_reply_gives_address_and_default_route() {
        let r = CniResult::from_flat(&flat_v4(), "/run/netns/p").unwrap();
        let v: Value = serde_json::from_str(&r.to_json("0.3.1").unwrap()).unwrap();
        assert_eq!(
            v,
            json!({"cniVersion":"0.3.1",
                "interfaces":[{"name":"eth0","mac":"00:00:00:16:00:05","sandbox":"/run/netns/p"}],
                "ips":[{"version":"4","interface":0,"address":"10.16.0.5/16","gateway":"10.16.0.1"}],
                "routes":[{"dst":"0.0.0.0/0","gw":"10.16.0.1"}]})
        );
        let v: Value = serde_json::from_str(&r.to_json("1.0.0").unwrap()).unwrap();
        assert_eq!(v["interfaces"][0]["mtu"], 1400);
        assert!(v["ips"][0].get("version").is_none());
    }

    #[test]
    fn dual_stack_flat_and_ips_replies_agree_and_reply_routes_win() {
        let flat = FlatReply {
            protocol: "Dual".into(),
            address: "10.16.0.5,fd00:10:16::5".into(),
            cidr: "10.16.0.0/16,fd00:10:16::/64".into(),
            gateway: "10.16.0.1,fd00:10:16::1".into(),
            ..flat_v4()
        };
        let ips = IpsReply {
            ips: Some(vec![
                IpConfig {
                    protocol: "IPv4".into(),
                    ip: "10.16.0.5".into(),
                    cidr: "10.16.0.0/16".into(),
                    gateway: "10.16.0.1".into(),
                },
                IpConfig {
                    protocol: "IPv6".into(),
                    ip: "fd00:10:16::5".into(),
                    cidr: "fd00:10:16::/64".into(),
                    gateway: "fd00:10:16::1".into(),
                },
            ]),
            mac_address: flat.mac_address.clone(),
            mtu: flat.mtu,
            nicname: flat.nicname.clone(),
            ..IpsReply::default()
        };
        let a = CniResult::from_flat(&flat, "/n").unwrap();
        assert_eq!(a, CniResult::from_ips(&ips, "/n").unwrap());
        assert_eq!(a.routes.len(), 2);
        let routed = IpsReply {
            routes: Some(vec![Route {
                destination: String::new(),
                gateway: "10.10.204.254".into(),
            }]),
            ..ips
        };
        let b = CniResult::from_ips(&routed, "/n").unwrap();
        assert_eq!(
            b.routes,
            vec![ResultRoute {
                dst: "0.0.0.0/0".into(),
                gw: Some("10.10.204.254".parse().unwrap())
            }]
        );
    }

    #[test]
    fn bad_cidr_in_ips_reply_is_an_error_and_unknown_flat_protocol_gives_no_interface() {
        let bad = IpsReply {
            ips: Some(vec![IpConfig {
                protocol: "IPv4".into(),
                ip: "10.0.0.2".into(),
                cidr: "10.0.0.0".into(),
                gateway: String::new(),
            }]),
            ..IpsReply::default()
        };
        assert!(matches!(
            CniResult::from_ips(&bad, "/n"),
            Err(ResultError::Cidr(_))
        ));
        let none = CniResult::from_flat(&FlatReply::default(), "/n").unwrap();
        assert!(none.interfaces.is_empty() && none.ips.is_empty());
        assert!(CniResult::default().to_json("0.2.0").is_err());
    }
}
