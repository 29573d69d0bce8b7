//! The command line of `sriov-ovs-server`.

use clap::Parser;
use ovsdb_client::Endpoint;
use sriov_logging::{Format, Level};
use std::path::PathBuf;
use std::time::Duration;

/// Kube-OVN CNI server for SR-IOV switchdev VFs: serves the shim `/opt/cni/bin/kube-ovn` for
/// NetworkAttachmentDefinitions whose `server_socket` names this socket.
#[derive(Debug, Clone, Parser)]
#[command(name = "sriov-ovs-server", version)]
pub struct Options {
    /// Unix socket to serve on (the NAD's `server_socket`; created 0600, a stale one replaced).
    #[arg(long, default_value = "/run/openvswitch/sriov-ovs.sock")]
    pub socket: PathBuf,
    /// Kubeconfig file (default: the in-cluster service account).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// OVSDB endpoint (`unix:PATH` or `tcp:HOST:PORT`).
    #[arg(long, default_value = "unix:/run/openvswitch/db.sock")]
    pub ovsdb: Endpoint,
    /// OVS bridge the representors go on.
    #[arg(long, default_value = "br-int")]
    pub bridge: String,
    /// Sysfs root.
    #[arg(long, env = "SRIOV_SYSFS_ROOT", default_value = "/sys")]
    pub sysfs_root: PathBuf,
    /// Attachment records, shared with the `sriov-ovs` CNI binary (either releases the other's).
    #[arg(long, default_value = "/var/lib/cni/sriov-ovs")]
    pub state_dir: PathBuf,
    /// Pod MTU when the Subnet sets none, for overlay Subnets (default: leave the VF's).
    /// Underlay Subnets use their provider network's MTU label on this node, as Kube-OVN does.
    #[arg(long)]
    pub mtu: Option<u32>,
    /// This node's name, whose provider-network MTU labels apply (default: the host name).
    #[arg(long, env = "KUBE_NODE_NAME")]
    pub node_name: Option<String>,
    /// How long ADD waits for kube-ovn-controller's annotations (`30s`, `500ms`, `2m`, or seconds).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub wait_timeout: Duration,
    /// How long ADD waits for ovn-controller's `ovn-installed` (0: don't wait).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub ovn_installed_timeout: Duration,
    /// Log level: error, warn (warning), info, debug, trace.
    #[arg(long, default_value = "info")]
    pub log_level: Level,
    /// Log line format: text or json.
    #[arg(long, default_value = "text")]
    pub log_format: Format,
}

impl Options {
    /// `--node-name`, else the host name, lower-cased as Kube-OVN's daemon does.
    pub fn node_name(&self) -> String {
        let name = self
            .node_name
            .clone()
            .unwrap_or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default());
        name.trim().to_lowercase()
    }
}

/// `30s`, `500ms`, `2m`, `1h` or plain seconds; at most an hour.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s:?}: want a number with ms, s, m or h"))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (ms, s, m, h)")),
    };
    if d > Duration::from_secs(3600) {
        return Err(format!("{s:?}: at most 1h"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones() {
        let o = Options::parse_from(["sriov-ovs-server"]);
        assert_eq!(o.socket, PathBuf::from("/run/openvswitch/sriov-ovs.sock"));
        assert_eq!(o.ovsdb.to_string(), "unix:/run/openvswitch/db.sock");
        assert_eq!((o.bridge.as_str(), o.mtu), ("br-int", None));
        assert_eq!(o.state_dir, PathBuf::from("/var/lib/cni/sriov-ovs"));
        assert_eq!(o.wait_timeout, Duration::from_secs(30));
        assert_eq!(o.ovn_installed_timeout, Duration::from_secs(30));
        assert!(o.kubeconfig.is_none());
        if std::env::var_os("KUBE_NODE_NAME").is_none() {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
            assert_eq!(o.node_name(), host.trim().to_lowercase());
        }
        let named = Options::parse_from(["s", "--node-name", "Worker-1"]);
        assert_eq!(named.node_name(), "worker-1");
    }

    #[test]
    fn durations_and_bad_values() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(
            parse_duration("2d").is_err() && parse_duration("x").is_err() && parse_duration("2h").is_err()
        );
        let e = Options::try_parse_from(["s", "--log-level", "verbose"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("verbose"), "{e}");
    }
}
