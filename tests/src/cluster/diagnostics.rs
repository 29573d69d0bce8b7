//! A snapshot of the cluster's state for a failed scenario: what a person debugging it would
//! look at first (OVS ports and flows per node, the fabric's bridge tables, OVN's view).

use std::fmt::Write as _;

use super::Cluster;
use crate::node::PROVIDER_BRIDGE;
use testbed::cmd::{ip_in, Cmd};

impl Cluster {
    /// Every node's OVS layout, OpenFlow ports, datapath flows and links; the fabric's links and
    /// forwarding database; OVN's southbound view; each pod's addresses, routes and neighbours.
    /// Each command's failure is reported in place, so the snapshot is always complete.
    pub fn diagnostics(&self) -> String {
        let mut out = String::new();
        let mut section = |title: &str, r: Result<String, testbed::cmd::CmdError>| {
            let body = r.unwrap_or_else(|e| format!("(failed: {})", sriov_logging::error_chain(&e)));
            let _ = writeln!(out, "----- {title}\n{}", body.trim_end());
        };
        for node in self.nodes() {
            let n = node.name();
            section(&format!("{n}: ovs-vsctl show"), node.vsctl(["show"]));
            section(
                &format!("{n}: Open_vSwitch external_ids"),
                node.vsctl(["get", "open_vswitch", ".", "external_ids"]),
            );
            for br in ["br-int", PROVIDER_BRIDGE] {
                section(&format!("{n}: ofctl show {br}"), node.ofctl("show", br));
            }
            section(
                &format!("{n}: ofctl dump-flows {PROVIDER_BRIDGE}"),
                node.ofctl("dump-flows", PROVIDER_BRIDGE),
            );
            section(
                &format!("{n}: fdb/show {PROVIDER_BRIDGE}"),
                node.appctl(["fdb/show", PROVIDER_BRIDGE]),
            );
            section(&format!("{n}: datapath flows"), node.datapath_flows());
            section(
                &format!("{n}: links"),
                ip_in(node.netns(), ["-br", "-s", "link", "show"]),
            );
        }
        let fab = self.fabric().netns();
        section("fabric: links", ip_in(fab, ["-br", "link", "show"]));
        section(
            "fabric: bridge fdb",
            Cmd::new("bridge").args(["fdb", "show"]).netns(Some(fab)).run(),
        );
        if let Some(gw) = self.fabric().router_netns() {
            section("router: addresses", ip_in(gw, ["-br", "addr", "show"]));
            section("router: neighbours", ip_in(gw, ["neigh", "show"]));
        }
        section("ovn-sbctl show", self.central().sbctl(["show"]));
        for pod in self.pods() {
            let ns = pod.netns();
            section(
                &format!("pod {}: addresses", pod.name),
                ip_in(ns, ["-br", "addr", "show"]),
            );
            section(&format!("pod {}: routes", pod.name), ip_in(ns, ["route", "show"]));
            section(
                &format!("pod {}: neighbours", pod.name),
                ip_in(ns, ["neigh", "show"]),
            );
        }
        out
    }
}
