//! The README's main command: bring up two simulated nodes, run the overlay and underlay
//! scenarios with visible progress, print the result table and the datapath flows, tear down
//! (or keep the cluster for inspection and remove it later with `--down`).

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::cleanup;
use crate::cluster::{Cluster, ClusterSpec};
use crate::logical::Subnet;
use crate::scenarios::{self, Outcome, Row};

/// Where `--keep` records kept clusters for `--down`.
pub const KEPT_FILE: &str = "/tmp/sriov-ovs-demo.kept";

/// Demo options.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Number of nodes.
    pub nodes: usize,
    /// VFs per node.
    pub vfs: u32,
    /// VLAN id of the underlay (0 = untagged, as in the seed guide).
    pub vlan: u16,
    /// Leave the cluster running.
    pub keep: bool,
    /// Run pods through the `type: sriov-ovs` NAD instead of the guide's Kube-OVN NAD and
    /// `sriov-ovs-server`.
    pub plain: bool,
}

/// Errors of the demo itself (scenario failures are reported in the outcome instead).
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The cluster could not be built.
    #[error("cannot bring the simulated cluster up")]
    Cluster(#[source] Box<crate::cluster::ClusterError>),
    /// The kept-cluster file could not be read or written.
    #[error("cannot use {path}")]
    KeptFile {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

fn say(msg: &str) {
    println!("{msg}");
    let _ = std::io::stdout().flush();
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Runs the demo; returns whether every scenario passed.
pub fn run(opts: &DemoOptions) -> Result<bool, DemoError> {
    let started = Instant::now();
    let sub = Subnet::vlan0(opts.vlan);
    say(&format!(
        "==> [1/5] starting OVN central and {} simulated nodes ({} VFs each, underlay {} VLAN {})",
        opts.nodes,
        opts.vfs,
        sub.cidr(),
        opts.vlan
    ));
    let mut c = Cluster::start(ClusterSpec {
        nodes: opts.nodes,
        vfs_per_node: opts.vfs,
        underlay: Some(sub.clone()),
        sriov: true,
        kube_ovn: (!opts.plain).then(crate::cluster::KubeOvnSpec::default),
    })
    .map_err(|e| DemoError::Cluster(Box::new(e)))?;
    say(&format!("    cluster {} in {}", c.prefix(), c.dir().display()));
    say(if opts.plain {
        "    path: NAD type sriov-ovs (manifests/examples/nad-sriov-ovs.yaml)"
    } else {
        "    path: the guide's NAD type kube-ovn -> kube-ovn shim -> sriov-ovs-server; addresses and ports from the kube-ovn-controller stand-in"
    });
    say("==> [2/5] sriov-device-plugin registering VFs with the kubelet stand-in");
    let res = scenarios::resource(&c).map_err(|e| DemoError::Cluster(Box::new(e)))?;
    let mut outcomes = vec![];
    match scenarios::wait_for_vfs(&c, opts.vfs as usize) {
        Ok(()) => {
            for (i, node) in c.nodes().iter().enumerate() {
                let n = c.kubelet(i).map_or(0, |k| k.allocatable(&res));
                say(&format!("    {}: {res}: {n}", node.name()));
            }
        }
        Err(e) => {
            let mut o = Outcome {
                name: "device plugin registration".into(),
                ..Outcome::default()
            };
            o.check("VFs advertised", Err::<(), _>(e));
            outcomes.push(o);
        }
    }
    if outcomes.is_empty() {
        let progress = |m: &str| say(&format!("    .. {m}"));
        say("==> [3/5] overlay: 2 pods per node on ovn-default, VF as eth0, Geneve between nodes");
        outcomes.push(scenarios::overlay(&mut c, &progress));
        say(&format!(
            "==> [4/5] underlay: 1 pod per node on {}, VF as net1, default route via {}",
            sub.name, sub.gateway
        ));
        outcomes.push(scenarios::underlay(&mut c, &sub.name, sub.gateway, &progress));
    }
    say("==> [5/5] results");
    print_table(outcomes.iter().flat_map(|o| o.rows.iter()));
    let mut ok = true;
    for o in &outcomes {
        let failures = o.failures();
        let passed = o.checks.len() - failures.len();
        say(&format!(
            "    {}: {passed}/{} checks passed",
            o.name,
            o.checks.len()
        ));
        for f in &failures {
            say(&format!("      FAILED {f}"));
        }
        ok &= failures.is_empty();
    }
    print_flows(&c);
    if opts.keep {
        let prefix = c.keep();
        record_kept(&prefix)?;
        say(&format!(
            "kept cluster {prefix}: netns `ip netns list | grep {prefix}`, OVS via OVS_RUNDIR=/tmp/e2e-{prefix}/n0; remove with scripts/demo.sh --down"
        ));
    } else {
        say("tearing down");
        let prefix = c.prefix().to_string();
        drop(c);
        let left = cleanup::leftovers(&prefix);
        if !left.is_empty() {
            say(&format!("    left behind: {left:?}"));
            ok = false;
        }
    }
    say(&format!(
        "{} in {:.1} s",
        if ok { "PASSED" } else { "FAILED" },
        started.elapsed().as_secs_f64()
    ));
    Ok(ok)
}

fn print_table<'a>(rows: impl Iterator<Item = &'a Row>) {
    let header = ["POD", "NODE", "VF", "REPRESENTOR", "IP", "PING", "TCP", "CNI ADD"];
    let body: Vec<[String; 8]> = rows
        .map(|r| {
            let frac = |(ok, n): (u32, u32)| {
                if n == 0 {
                    "-".to_string()
                } else {
                    format!("{}{ok}/{n}", if ok == n { "ok " } else { "FAIL " })
                }
            };
            [
                r.pod.clone(),
                r.node.clone(),
                r.vf.clone(),
                r.representor.clone(),
                r.ip.clone(),
                frac(r.ping),
                frac(r.tcp),
                ms(r.add_time),
            ]
        })
        .collect();
    let mut width = header.map(str::len);
    for row in &body {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: &[String]| {
        let parts: Vec<String> = cells.iter().zip(width).map(|(c, w)| format!("{c:<w$}")).collect();
        say(&format!("    {}", parts.join("  ").trim_end()));
    };
    line(&header.map(str::to_string));
    for row in &body {
        line(row);
    }
}

fn print_flows(c: &Cluster) {
    say("datapath flows (ovs-appctl dpctl/dump-flows -m, as the seed guide's verification step):");
    for node in c.nodes() {
        say(&format!("  -- {} --", node.name()));
        let flows = node
            .datapath_flows()
            .unwrap_or_else(|e| format!("(cannot dump flows: {e})"));
        // The pods' flows: those entering from a representor that carried packets.
        let pod_flows = |l: &&str| {
            l.split("in_port(")
                .nth(1)
                .is_some_and(|p| p.split(')').next().is_some_and(|p| p.ends_with("_h")))
                && !l.contains("packets:0,")
        };
        let mut shown: Vec<&str> = flows.lines().filter(pod_flows).take(8).collect();
        if shown.is_empty() {
            shown = flows.lines().take(8).collect();
        }
        for l in shown {
            say(&format!("    {l}"));
        }
        let offloaded = node
            .appctl(["dpctl/dump-flows", "-m", "type=offloaded"])
            .unwrap_or_default();
        say(&format!(
            "    type=offloaded: {} flow(s)",
            offloaded.lines().filter(|l| !l.trim().is_empty()).count()
        ));
    }
    say("  note: these flows run in Open vSwitch's userspace (netdev) datapath. `offloaded:yes, dp:tc`");
    say("        needs the real NIC (ConnectX/BlueField in switchdev mode with hw-offload=true); no");
    say("        machine here has one, so type=offloaded is empty by design.");
}

fn record_kept(prefix: &str) -> Result<(), DemoError> {
    let err = |source| DemoError::KeptFile {
        path: KEPT_FILE.into(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(KEPT_FILE)
        .map_err(err)?;
    writeln!(f, "{prefix}").map_err(err)
}

/// Removes every cluster recorded by `--keep`.
pub fn down() -> Result<(), DemoError> {
    if !Path::new(KEPT_FILE).exists() {
        say("no kept demo cluster");
        return Ok(());
    }
    let text = std::fs::read_to_string(KEPT_FILE).map_err(|source| DemoError::KeptFile {
        path: KEPT_FILE.into(),
        source,
    })?;
    let valid =
        |p: &&str| p.len() == testbed::names::PREFIX_LEN && p.chars().all(|c| c.is_ascii_alphanumeric());
    for prefix in text.split_whitespace().filter(valid) {
        say(&format!("removing cluster {prefix}"));
        for step in cleanup::remove_prefix(prefix) {
            say(&format!("    {step}"));
        }
    }
    std::fs::remove_file(KEPT_FILE).map_err(|source| DemoError::KeptFile {
        path: KEPT_FILE.into(),
        source,
    })
}
