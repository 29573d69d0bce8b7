//! The end-to-end scenarios of the seed guide, shared by the integration tests and the demo: each
//! records every check (real traffic, real OVN state) instead of stopping at the first failure.

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::cluster::{Attach, Cluster, ClusterError};
use crate::fabric::UPSTREAM_REMOTE;
use crate::logical::OVN_DEFAULT;
use crate::pod::{Pod, PodNic};
use sriov_logging::error_chain;
use testbed::cmd::ip_in;

/// How long ports get to reach `ovn-installed` and be bound.
pub const PORT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a device plugin gets to register and list its VFs.
pub const DEVICE_TIMEOUT: Duration = Duration::from_secs(60);
/// Bytes moved in each direction of a TCP check.
pub const TCP_BYTES: usize = 1 << 20;

/// One row of the demo's table: a pod and how its checks went.
#[derive(Clone, Debug, Default)]
pub struct Row {
    /// Pod name.
    pub pod: String,
    /// Node name.
    pub node: String,
    /// VF PCI address and original netdev.
    pub vf: String,
    /// Representor on `br-int`.
    pub representor: String,
    /// Pod IP/prefix and interface.
    pub ip: String,
    /// Ping checks from this pod: passed/total.
    pub ping: (u32, u32),
    /// TCP checks from this pod: passed/total.
    pub tcp: (u32, u32),
    /// CNI ADD time of the whole chain.
    pub add_time: Duration,
}

/// What a scenario did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Scenario name.
    pub name: String,
    /// Per-pod rows.
    pub rows: Vec<Row>,
    /// Every check: description and error (None = passed).
    pub checks: Vec<(String, Option<String>)>,
}

impl Outcome {
    fn new(name: &str) -> Outcome {
        Outcome {
            name: name.to_string(),
            ..Outcome::default()
        }
    }

    /// Failed checks with their errors.
    pub fn failures(&self) -> Vec<String> {
        self.checks
            .iter()
            .filter_map(|(what, err)| err.as_ref().map(|e| format!("{what}: {e}")))
            .collect()
    }

    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|(_, e)| e.is_none())
    }

    /// Records a check.
    pub fn check<E: std::error::Error>(&mut self, what: impl Into<String>, r: Result<(), E>) -> bool {
        let err = r.err().map(|e| error_chain(&e));
        let ok = err.is_none();
        self.checks.push((what.into(), err));
        ok
    }

    /// Records a boolean check.
    pub fn expect(&mut self, what: impl Into<String>, ok: bool, detail: impl FnOnce() -> String) -> bool {
        self.checks.push((what.into(), (!ok).then(detail)));
        ok
    }

    fn row(&mut self, pod: &str) -> Option<&mut Row> {
        self.rows.iter_mut().find(|r| r.pod == pod)
    }
}

/// The resource of the `default/sriov` NAD.
pub fn resource(c: &Cluster) -> Result<String, ClusterError> {
    c.nad()?
        .resource_name
        .ok_or_else(|| ClusterError::Harness("NAD default/sriov has no resourceName".into()))
}

/// Waits until every node's kubelet lists `vfs` healthy devices.
pub fn wait_for_vfs(c: &Cluster, vfs: usize) -> Result<(), ClusterError> {
    let res = resource(c)?;
    for i in 0..c.nodes().len() {
        if let Some(k) = c.kubelet(i) {
            k.wait_for_devices(&res, vfs, DEVICE_TIMEOUT)?;
        }
    }
    Ok(())
}

/// A table row for `pod`.
pub fn row_of(c: &Cluster, pod: &Pod) -> Row {
    let (vf, representor, add_time) = match &pod.nic {
        PodNic::Vf {
            device_id,
            vf_netdev,
            representor,
            add_time,
            ..
        } => (
            format!("{device_id} ({vf_netdev})"),
            representor.clone(),
            *add_time,
        ),
        PodNic::Veth { host_if } => ("-".into(), host_if.clone(), Duration::ZERO),
    };
    Row {
        pod: pod.name.clone(),
        node: c.node(pod.node).name().to_string(),
        vf,
        representor,
        ip: format!("{} {}", pod.addr.cidr(), pod.ifname),
        add_time,
        ..Row::default()
    }
}

/// Checks a VF pod's plumbing: the interface is in the pod with the allocated MAC and address,
/// the representor is on `br-int` bound to the pod's port, the port is installed and bound here.
pub fn check_vf_pod(c: &Cluster, pod: &Pod, out: &mut Outcome) {
    let node = c.node(pod.node);
    let link = ip_in(pod.netns(), ["-o", "addr", "show", "dev", &pod.ifname]).unwrap_or_default();
    out.expect(
        format!("{}: {} has {}", pod.name, pod.ifname, pod.addr.cidr()),
        link.contains(&pod.addr.cidr()),
        || format!("addresses: {link}"),
    );
    let mac = ip_in(pod.netns(), ["-o", "link", "show", "dev", &pod.ifname]).unwrap_or_default();
    out.expect(
        format!("{}: {} has MAC {}", pod.name, pod.ifname, pod.addr.mac),
        mac.contains(&pod.addr.mac),
        || format!("link: {mac}"),
    );
    let rep = ip_in(node.netns(), ["-o", "link", "show", "dev", pod.host_side()]).unwrap_or_default();
    out.expect(
        format!("{}: representor {} is up", pod.name, pod.host_side()),
        admin_up(&rep),
        || format!("link: {rep}"),
    );
    let ifaces = node.interfaces_of(&pod.lsp);
    out.expect(
        format!("{}: representor on br-int with iface-id {}", pod.name, pod.lsp),
        ifaces.len() == 1,
        || format!("interfaces bound to the port: {ifaces:?}"),
    );
    out.expect(
        format!("{}: ovn-installed=true", pod.name),
        node.ovn_installed(&pod.lsp),
        || "not installed".into(),
    );
    let chassis = c.central().port_chassis(&pod.lsp);
    out.expect(
        format!("{}: Port_Binding on chassis {}", pod.name, node.name()),
        chassis.as_deref() == Some(node.name()),
        || format!("bound to {chassis:?}"),
    );
}

/// Whether `ip -o link show` output has the administrative `UP` flag.
fn admin_up(link: &str) -> bool {
    link.split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .is_some_and(|(flags, _)| flags.split(',').any(|f| f == "UP"))
}

/// Pings from `from` to `to` and records it in the outcome and `from`'s row.
pub fn ping(c: &Cluster, out: &mut Outcome, from: &str, to: Ipv4Addr, label: &str) -> bool {
    let Some(p) = c.pod(from) else { return false };
    let ok = out.check(format!("ping {from} -> {label}"), p.ping(to));
    if let Some(r) = out.row(from) {
        r.ping.1 += 1;
        r.ping.0 += u32::from(ok);
    }
    ok
}

/// Moves [`TCP_BYTES`] each way between `client` and `server`, recording it.
pub fn tcp(c: &Cluster, out: &mut Outcome, client: &str, server: &str, port: u16) -> bool {
    let (Some(a), Some(b)) = (c.pod(client), c.pod(server)) else {
        return false;
    };
    let ok = out.check(
        format!("tcp {client} <-> {server} ({TCP_BYTES} bytes each way)"),
        a.tcp_to(b, port, TCP_BYTES),
    );
    if let Some(r) = out.row(client) {
        r.tcp.1 += 1;
        r.tcp.0 += u32::from(ok);
    }
    ok
}

/// Creates `pods` (name, node, subnet, attach) in order, recording a failed creation as a check.
pub fn create_pods(
    c: &mut Cluster,
    out: &mut Outcome,
    pods: &[(&str, usize, &str, Attach)],
    progress: &dyn Fn(&str),
) {
    for (name, node, subnet, attach) in pods {
        progress(&format!(
            "creating pod {name} on {} in {subnet}",
            c.node(*node).name()
        ));
        let r = c.add_sriov_pod(*node, name, subnet, attach.clone());
        if out.check(format!("create pod {name} (kubelet Allocate + Multus ADD)"), r) {
            if let Some(p) = c.pod(name) {
                let row = row_of(c, p);
                out.rows.push(row);
            }
        }
    }
}

/// Overlay: two pods per node on `ovn-default` with their VF as `eth0`; every pod pings every
/// other both ways, TCP streams cross nodes both ways, the datapath shows Geneve `tnl_push`.
pub fn overlay(c: &mut Cluster, progress: &dyn Fn(&str)) -> Outcome {
    let mut out = Outcome::new("overlay (ovn-default, Geneve)");
    let names = ["ov1", "ov2", "ov3", "ov4"];
    let pods: Vec<(&str, usize, &str, Attach)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            (
                *n,
                (i / 2) % c.nodes().len().max(1),
                OVN_DEFAULT,
                Attach::DefaultNetwork,
            )
        })
        .collect();
    create_pods(c, &mut out, &pods, progress);
    progress("waiting for ovn-installed and Port_Binding");
    out.check("ports ready", c.wait_ports_ready(PORT_TIMEOUT));
    for n in names {
        if let Some(p) = c.pod(n) {
            check_vf_pod(c, p, &mut out);
        }
    }
    progress("ping between every pair of pods");
    for a in names {
        for b in names {
            if a != b {
                if let Some(ip) = c.pod(b).map(Pod::ip) {
                    ping(c, &mut out, a, ip, b);
                }
            }
        }
    }
    progress("TCP streams across nodes, both directions");
    tcp(c, &mut out, "ov1", "ov3", 5201);
    tcp(c, &mut out, "ov3", "ov1", 5202);
    tcp(c, &mut out, "ov2", "ov4", 5203);
    tcp(c, &mut out, "ov4", "ov2", 5204);
    for node in c.nodes() {
        let flows = node.datapath_flows().unwrap_or_default();
        out.expect(
            format!("{}: datapath shows Geneve tnl_push", node.name()),
            flows.contains("tnl_push"),
            || "no tnl_push in dpctl/dump-flows".into(),
        );
    }
    out
}

/// Underlay: one pod per node with `eth0` on `ovn-default` (the cluster network) and its VF as
/// `net1` on `subnet` with the selection's `default-route` via the upstream gateway; pods reach the gateway, an address behind it (only
/// through the default route), and each other (ping and TCP both ways).
pub fn underlay(c: &mut Cluster, subnet: &str, gateway: Ipv4Addr, progress: &dyn Fn(&str)) -> Outcome {
    let mut out = Outcome::new(&format!("underlay ({subnet}, gateway {gateway})"));
    let attach = Attach::Secondary {
        default_route: vec![gateway],
    };
    let names = ["ul1", "ul2"];
    let pods: Vec<(&str, usize, &str, Attach)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (*n, i % c.nodes().len().max(1), subnet, attach.clone()))
        .collect();
    create_pods(c, &mut out, &pods, progress);
    progress("waiting for ovn-installed and Port_Binding");
    out.check("ports ready", c.wait_ports_ready(PORT_TIMEOUT));
    for n in names {
        let Some(p) = c.pod(n) else { continue };
        check_vf_pod(c, p, &mut out);
        let routes = ip_in(p.netns(), ["route", "show", "default"]).unwrap_or_default();
        let want = format!("default via {gateway} dev {}", p.ifname);
        out.expect(format!("{n}: {want}"), routes.contains(&want), || {
            format!("routes: {routes}")
        });
    }
    progress("ping gateway, upstream and each other; TCP both ways");
    for n in names {
        ping(c, &mut out, n, gateway, "gateway");
        ping(c, &mut out, n, UPSTREAM_REMOTE, "upstream (via default route)");
    }
    if let (Some(a), Some(b)) = (c.pod("ul1").map(Pod::ip), c.pod("ul2").map(Pod::ip)) {
        ping(c, &mut out, "ul1", b, "ul2");
        ping(c, &mut out, "ul2", a, "ul1");
    }
    tcp(c, &mut out, "ul1", "ul2", 5301);
    tcp(c, &mut out, "ul2", "ul1", 5302);
    out
}

#[cfg(test)]
mod tests {
    use super::admin_up;

    #[test]
    fn admin_up_reads_the_flag_list_only() {
        assert!(admin_up(
            "9: r0@if8: <BROADCAST,MULTICAST,PROMISC,UP,LOWER_UP> mtu 1500"
        ));
        assert!(!admin_up(
            "9: r0@if8: <BROADCAST,MULTICAST,PROMISC> mtu 1500 state UP"
        ));
        assert!(!admin_up(
            "9: r0@if8: <NO-CARRIER,BROADCAST,MULTICAST,LOWER_UP> mtu 1500"
        ));
        assert!(!admin_up(""));
    }
}
