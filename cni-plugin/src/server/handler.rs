//! ADD and DEL of the node server: a Kube-OVN [`CniRequest`] and the pod's allocation turned
//! into the same [`AttachRequest`]/[`ReleaseRequest`] the CNI verbs build, run by the same
//! node operations.

use super::allocation::{self, Allocation, AllocationError};
use super::cluster::{Cluster, ClusterError};
use super::mtu::{self, Choice, SubnetFacts};
use super::protocol::{self, CniRequest, CniResponse};
use crate::node::{
    self, Addresses, Addressing, AttachRequest, Attachment, Node, PortRequest, ReleaseRequest,
};
use crate::ovs::OvsdbOvs;
use crate::result::{Dns, Route};
use crate::sys::Namespaces;
use ovsdb_client::Endpoint;
use sriov_host::{PciAddress, Sysfs};
use sriov_logging::error_chain as chain;
use std::net::IpAddr;
use std::time::Duration;

/// What every request of this server shares.
pub struct Settings {
    /// OVSDB endpoint.
    pub ovsdb: Endpoint,
    /// OVS bridge.
    pub bridge: String,
    /// Pod MTU when the Subnet sets none (overlay; see [`mtu`]).
    pub mtu: Option<u32>,
    /// This node's name (for its provider-network MTU labels).
    pub node_name: String,
    /// How long ADD waits for the controller's annotations.
    pub wait_timeout: Duration,
    /// How long ADD waits for `ovn-installed` (zero: don't).
    pub ovn_installed_timeout: Duration,
    /// How long DEL (and a rollback) waits for ovs-vswitchd to apply a port removal.
    pub ovs_apply_timeout: Duration,
}

/// A request failed: the HTTP status and the message for `{"error": ...}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// 400 for requests we refuse, 500 for work that failed.
    pub status: u16,
    /// What failed, naming the pod, provider and step.
    pub message: String,
}

impl Failure {
    fn bad(req: &CniRequest, what: impl std::fmt::Display) -> Failure {
        Failure {
            status: 400,
            message: format!("{}: {what}", who(req)),
        }
    }

    fn failed(req: &CniRequest, step: &str, err: &(dyn std::error::Error + 'static)) -> Failure {
        Failure {
            status: 500,
            message: format!("{}: {step}: {}", who(req), chain(err)),
        }
    }
}

fn who(req: &CniRequest) -> String {
    format!(
        "pod {}/{} provider {:?} interface {:?}",
        req.pod_namespace, req.pod_name, req.provider, req.if_name
    )
}

/// The node server's work: node operations plus where their inputs come from.
pub struct Handler<'a, K> {
    /// Where node operations act.
    pub node: Node<'a, K>,
    /// The Kubernetes API.
    pub cluster: &'a Cluster,
    /// Shared settings.
    pub settings: &'a Settings,
}

fn ifname(req: &CniRequest) -> &str {
    if req.if_name.is_empty() {
        "eth0"
    } else {
        &req.if_name
    }
}

/// The routes of the attachment: the NAD's, the pod's `routes` annotation and, on the
/// default-route interface, a default route per family via the allocation's gateway (as
/// Kube-OVN's daemon configures them).
fn routes(req: &CniRequest, alloc: &Allocation) -> Result<Vec<Route>, String> {
    let mut routes: Vec<Route> = req
        .routes
        .iter()
        .map(|r| {
            allocation::RawRoute {
                dst: r.destination.clone(),
                gw: r.gateway.clone(),
            }
            .route()
        })
        .collect::<Result<_, _>>()?;
    routes.extend(alloc.routes.iter().cloned());
    if alloc.default_route {
        for ip in &alloc.ips {
            let Some(gw) = ip.gateway else { continue };
            let has_default = routes
                .iter()
                .any(|r| r.dst.prefix == 0 && r.dst.is_ipv4() == gw.is_ipv4());
            if !has_default {
                let raw = allocation::RawRoute {
                    dst: String::new(),
                    gw: gw.to_string(),
                };
                routes.push(raw.route()?);
            }
        }
    }
    Ok(routes)
}

/// The reply in both shapes (see [`CniResponse`]).
pub fn response(att: &Attachment, alloc: &Allocation, ifname: &str, dns: &protocol::Dns) -> CniResponse {
    let ips = &att.addresses.ips;
    let join =
        |f: &dyn Fn(&crate::result::IpConfig) -> String| ips.iter().map(f).collect::<Vec<_>>().join(",");
    let cidr_of = |a: &IpAddr| {
        alloc
            .cidr
            .split(',')
            .find(|c| c.contains(':') == a.is_ipv6())
            .unwrap_or_default()
            .to_string()
    };
    let protocol = match (
        ips.iter().any(|i| i.address.is_ipv4()),
        ips.iter().any(|i| !i.address.is_ipv4()),
    ) {
        (true, true) => "Dual",
        (false, true) => "IPv6",
        _ => "IPv4",
    };
    let pod = att.pod_interface.as_ref();
    CniResponse {
        protocol: protocol.into(),
        address: join(&|i| i.address.addr.to_string()),
        cidr: alloc.cidr.clone(),
        gateway: join(&|i| i.gateway.map(|g| g.to_string()).unwrap_or_default()),
        ips: ips
            .iter()
            .map(|i| protocol::IpConfig {
                protocol: protocol::protocol_of(&i.address.addr).into(),
                ip: i.address.addr.to_string(),
                cidr: cidr_of(&i.address.addr),
                gateway: i.gateway.map(|g| g.to_string()).unwrap_or_default(),
            })
            .collect(),
        mac_address: pod.and_then(|l| l.mac).map(|m| m.to_string()).unwrap_or_default(),
        routes: att
            .addresses
            .routes
            .iter()
            .map(|r| protocol::Route {
                destination: r.dst.to_string(),
                gateway: r.gw.map(|g| g.to_string()).unwrap_or_default(),
            })
            .collect(),
        mtu: pod.and_then(|l| l.mtu).unwrap_or_default(),
        nicname: ifname.to_string(),
        dns: dns.clone(),
        error: String::new(),
    }
}

impl<K: Namespaces> Handler<'_, K> {
    /// ADD: wait for the controller's allocation, attach, reply.
    pub async fn add(&self, req: &CniRequest) -> Result<CniResponse, Failure> {
        if req.device_id.is_empty() {
            return Err(Failure::bad(
                req,
                "no deviceID: this socket serves SR-IOV attachments only (sriov-ovs); point \
                 server_socket of other NetworkAttachmentDefinitions at kube-ovn's own socket",
            ));
        }
        for (field, value) in [
            ("pod_name", &req.pod_name),
            ("pod_namespace", &req.pod_namespace),
            ("container_id", &req.container_id),
            ("net_ns", &req.net_ns),
            ("provider", &req.provider),
        ] {
            if value.is_empty() {
                return Err(Failure::bad(req, format!("{field} is required")));
            }
        }
        let pci: PciAddress = req
            .device_id
            .parse()
            .map_err(|e| Failure::bad(req, format!("deviceID: {e}")))?;
        let ifname = ifname(req);
        let s = self.settings;
        let annotations = self
            .cluster
            .wait_ready(
                &req.pod_namespace,
                &req.pod_name,
                &req.provider,
                ifname,
                s.wait_timeout,
            )
            .await
            .map_err(|e| Failure::failed(req, "waiting for kube-ovn-controller", &e))?;
        let alloc = allocation::read(&annotations, &req.provider, ifname)
            .map_err(|e: AllocationError| Failure::failed(req, "reading the allocation", &e))?;
        let subnet = match &alloc.logical_switch {
            Some(name) => self
                .cluster
                .subnet(name)
                .await
                .map_err(|e: ClusterError| Failure::failed(req, "reading the Subnet", &e))?,
            None => SubnetFacts::default(),
        };
        let mtu = match mtu::choose(&subnet, alloc.provider_network.as_deref(), s.mtu) {
            Choice::Fixed(mtu) => mtu,
            Choice::NodeLabel(key) => {
                let step = "reading the provider network's MTU";
                let value = self
                    .cluster
                    .node_label(&s.node_name, &key)
                    .await
                    .map_err(|e: ClusterError| Failure::failed(req, step, &e))?;
                mtu::from_label(&key, value.as_deref()).map_err(|e| Failure::failed(req, step, &e))?
            }
        };
        let routes = routes(req, &alloc).map_err(|e| Failure::bad(req, format!("routes: {e}")))?;
        let attach = AttachRequest {
            container_id: req.container_id.clone(),
            ifname: ifname.to_string(),
            netns: req.net_ns.clone().into(),
            pci,
            mac: alloc.mac,
            mtu,
            addressing: Addressing::Given(Addresses {
                ips: alloc.ips.clone(),
                routes,
                dns: Dns {
                    nameservers: req.dns.nameservers.clone(),
                    domain: Some(req.dns.domain.clone()).filter(|d| !d.is_empty()),
                    search: req.dns.search.clone(),
                    options: req.dns.options.clone(),
                },
            }),
            port: PortRequest {
                bridge: s.bridge.clone(),
                iface_id: Some(allocation::port_name(
                    &req.pod_name,
                    &req.pod_namespace,
                    &req.provider,
                )),
                vlan: None,
                pod_name: Some(req.pod_name.clone()),
                pod_namespace: Some(req.pod_namespace.clone()),
                ingress_policing_mbps: alloc.egress_rate,
                egress_max_rate_mbps: alloc.ingress_rate,
            },
            network: network(&req.provider),
            ovn_installed_timeout: s.ovn_installed_timeout,
            ovs_apply_timeout: s.ovs_apply_timeout,
        };
        let connect = OvsdbOvs::connect(&s.ovsdb, Duration::ZERO);
        let att = node::attach(self.node, connect, &attach)
            .await
            .map_err(|e| Failure::failed(req, "attaching the VF", &e))?;
        tracing::info!(pod = %format!("{}/{}", req.pod_namespace, req.pod_name), provider = %req.provider, pci = %pci, representor = %att.representor.name, "ADD done");
        Ok(response(&att, &alloc, ifname, &req.dns))
    }

    /// DEL: release whatever this attachment left; idempotent.
    pub async fn del(&self, req: &CniRequest) -> Result<(), Failure> {
        if req.container_id.is_empty() {
            return Err(Failure::bad(req, "container_id is required"));
        }
        // Without deviceID the record still names the VF; refusing would leave the pod stuck.
        let pci = match req.device_id.as_str() {
            "" => None,
            d => Some(
                d.parse()
                    .map_err(|e| Failure::bad(req, format!("deviceID: {e}")))?,
            ),
        };
        let s = self.settings;
        let release = ReleaseRequest {
            container_id: req.container_id.clone(),
            ifname: ifname(req).to_string(),
            netns: Some(req.net_ns.clone().into()).filter(|p: &std::path::PathBuf| !p.as_os_str().is_empty()),
            pci,
            bridge: s.bridge.clone(),
            ipam: None,
            ovs_apply_timeout: s.ovs_apply_timeout,
            listed_phase: None,
        };
        // DEL must survive an ovsdb-server restart: reconnect as long as the apply wait lasts.
        let ovs = OvsdbOvs::connect(&s.ovsdb, s.ovs_apply_timeout)
            .await
            .map_err(|e| Failure::failed(req, "connecting to OVSDB", &e))?;
        let outcome = node::release(self.node, &ovs, &release)
            .await
            .map_err(|e| Failure::failed(req, "releasing the VF", &e))?;
        tracing::info!(pod = %format!("{}/{}", req.pod_namespace, req.pod_name), ?outcome, "DEL done");
        Ok(())
    }
}

/// The network name recorded for the server's attachments: CNI GC of a `type: sriov-ovs`
/// network never matches it.
pub fn network(provider: &str) -> String {
    format!("kube-ovn:{provider}")
}

/// The sysfs root and state directory a [`Handler`] acts on.
pub struct Paths {
    /// Sysfs.
    pub sysfs: Sysfs,
    /// State directory.
    pub state: node::StateDir,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::LinkFacts;
    use std::collections::BTreeMap;

    fn alloc(pairs: &[(&str, &str)]) -> Allocation {
        let a: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (allocation::key("ovn", k), v.to_string()))
            .collect();
        allocation::read(&a, "ovn", "eth0").unwrap()
    }

    fn dual() -> Allocation {
        alloc(&[
            ("ip_address", "10.16.0.5,fd00::5"),
            ("cidr", "10.16.0.0/16,fd00::/64"),
            ("gateway", "10.16.0.1,fd00::1"),
            ("mac_address", "02:00:00:00:00:05"),
        ])
    }

    #[test]
    fn the_default_route_interface_gets_one_default_route_per_family_after_the_nads() {
        let req = CniRequest {
            routes: vec![protocol::Route {
                destination: "172.16.0.0/12".into(),
                gateway: "10.16.0.254".into(),
            }],
            ..Default::default()
        };
        let r = routes(&req, &dual()).unwrap();
        let dsts: Vec<String> = r.iter().map(|r| format!("{} {:?}", r.dst, r.gw)).collect();
        assert_eq!(
            dsts,
            [
                "172.16.0.0/12 Some(10.16.0.254)",
                "0.0.0.0/0 Some(10.16.0.1)",
                "::/0 Some(fd00::1)"
            ]
        );
        let mut not_default = dual();
        not_default.default_route = false;
        assert_eq!(routes(&CniRequest::default(), &not_default).unwrap(), vec![]);
    }

    #[test]
    fn the_reply_carries_both_shapes() {
        let a = dual();
        let att = Attachment {
            pod_interface: Some(LinkFacts {
                name: "eth0".into(),
                mac: a.mac,
                mtu: Some(1400),
            }),
            representor: LinkFacts::default(),
            addresses: Addresses {
                ips: a.ips.clone(),
                routes: vec![],
                dns: Dns::default(),
            },
        };
        let r = response(&att, &a, "eth0", &protocol::Dns::default());
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["protocol"], "Dual");
        assert_eq!(v["address"], "10.16.0.5,fd00::5");
        assert_eq!(v["cidr"], "10.16.0.0/16,fd00::/64");
        assert_eq!(v["gateway"], "10.16.0.1,fd00::1");
        assert_eq!(
            v["ips"][0],
            serde_json::json!({"protocol":"IPv4","ip":"10.16.0.5","cidr":"10.16.0.0/16","gateway":"10.16.0.1"})
        );
        assert_eq!(v["ips"][1]["cidr"], "fd00::/64");
        assert_eq!(
            (v["mtu"].as_u64(), v["nicname"].as_str()),
            (Some(1400), Some("eth0"))
        );
        assert_eq!(v["mac_address"], "02:00:00:00:00:05");
        assert!(v.get("error").is_none());
    }
}
