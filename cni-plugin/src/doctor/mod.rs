//! `sriov-ovs doctor`: a read-only check of a node against the offload guide, one module per
//! family of checks; [`run`] gathers the facts once and hands them to them.

pub mod cli;
pub mod ethtool;
pub mod kernel;
pub mod nm;
pub mod offload;
pub mod ovs;
pub mod pf;
pub mod plugin;
pub mod report;
pub mod scope;
pub mod vf;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sriov_host::{RepresentorView, Sysfs};

pub use cli::command_line;
use report::{Check, Report};

/// Where the doctor looks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Sysfs root (`--sysfs-root`, `SRIOV_SYSFS_ROOT`).
    pub sysfs_root: PathBuf,
    /// The sriovdp config (`--config-file`); without it every SR-IOV PF is checked.
    pub config_file: Option<PathBuf>,
    /// Prefix of resources without `resourcePrefix` (`--resource-prefix`, as the device plugin's).
    pub resource_prefix: String,
    /// OVSDB endpoint (`--ovsdb`).
    pub ovsdb: String,
    /// Where ovs-vswitchd's control socket is (`--ovs-rundir`; default: the OVSDB socket's directory).
    pub ovs_rundir: Option<PathBuf>,
    /// Where ovn-controller's control socket is (`--ovn-rundir`).
    pub ovn_rundir: PathBuf,
    /// The integration bridge (`--bridge`).
    pub bridge: String,
    /// The kubelet's device-plugins directory (`--device-plugin-path`).
    pub device_plugin_path: PathBuf,
    /// The proc filesystem (`--proc-root`): kernel release, NetworkManager process.
    pub proc_root: PathBuf,
    /// NetworkManager's run directory (`--networkmanager-run-dir`).
    pub nm_run_dir: PathBuf,
    /// Read the config as the device plugin's `--lenient-config` does: unknown keys warn.
    pub lenient_config: bool,
    /// Print JSON (`--json`).
    pub json: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            sysfs_root: PathBuf::from("/sys"),
            config_file: None,
            resource_prefix: "intel.com".into(),
            ovsdb: "unix:/run/openvswitch/db.sock".into(),
            ovs_rundir: None,
            ovn_rundir: PathBuf::from("/run/ovn"),
            bridge: "br-int".into(),
            device_plugin_path: PathBuf::from("/var/lib/kubelet/device-plugins"),
            proc_root: PathBuf::from("/proc"),
            nm_run_dir: PathBuf::from("/run/NetworkManager"),
            lenient_config: false,
            json: false,
        }
    }
}

impl Options {
    /// `--ovs-rundir`, else the directory of a `unix:` OVSDB socket, else `/run/openvswitch`.
    pub fn vswitchd_rundir(&self) -> PathBuf {
        if let Some(dir) = &self.ovs_rundir {
            return dir.clone();
        }
        let path = self.ovsdb.strip_prefix("unix:").unwrap_or(&self.ovsdb);
        match Path::new(path).parent() {
            Some(dir) if path.starts_with('/') && !self.ovsdb.starts_with("tcp:") => dir.to_path_buf(),
            _ => PathBuf::from("/run/openvswitch"),
        }
    }
}

/// Reads the sriovdp config as the device plugin does with the same flags: strict, or
/// lenient about unknown keys with `--lenient-config`.
fn load_config(
    path: &std::path::Path,
    opts: &Options,
) -> Result<sriovdp_config::Config, sriovdp_config::ConfigError> {
    let unknown = if opts.lenient_config {
        sriovdp_config::UnknownKeys::Warn
    } else {
        sriovdp_config::UnknownKeys::Reject
    };
    sriovdp_config::load_with(path, &opts.resource_prefix, unknown)
}

/// Runs every check. Never changes the host.
pub async fn run(opts: &Options) -> Report {
    let mut report = Report::default();
    let sysfs = Sysfs::new(&opts.sysfs_root);
    report.push(kernel::check(std::fs::read_to_string(
        opts.proc_root.join("sys/kernel/osrelease"),
    )));

    let config = opts.config_file.as_ref().and_then(|path| {
        let subject = path.display().to_string();
        match load_config(path, opts) {
            Ok(c) => {
                let found = format!("{} resource(s)", c.resources.len());
                report.push(Check::ok("sriovdp-config", subject, found));
                Some(c)
            }
            Err(e) => {
                let fix = "fix the ConfigMap sriovdp-config (the device plugin rejects it too)";
                report.push(Check::fail("sriovdp-config", subject, sriov_logging::error_chain(&e)).fix(fix));
                None
            }
        }
    });

    let links = vf::Links::new(links().await.unwrap_or_else(|e| {
        report.push(Check::warn("links", "netlink", e));
        Vec::new()
    }));

    let facts = ovs_facts(opts).await.map_err(|found| {
        let fix = "start Open vSwitch (Kube-OVN: the ovs-ovn pod), or pass --ovsdb";
        report.push(Check::fail("ovsdb", opts.ovsdb.clone(), found).fix(fix));
    });
    let facts = facts.ok();
    let on_bridge: HashSet<String> = facts
        .as_ref()
        .and_then(|f| f.bridge_ports.clone())
        .unwrap_or_default()
        .into_iter()
        .collect();

    let mut representors: Vec<(String, u32)> = Vec::new();
    match scope::targets(&sysfs, config.as_ref()) {
        Ok(pfs) if pfs.is_empty() => report.push(Check::warn(
            "pf",
            sysfs.root().display().to_string(),
            "no SR-IOV PF to check (none, or none the config selects)",
        )),
        Ok(pfs) => {
            for pf in &pfs {
                let (checks, switchdev) = pf::checks(&sysfs, pf);
                report.extend(checks);
                // An unreadable eswitch says nothing about single VFs: one WARN, not a FAIL
                // per VF whose fix would recreate every VF.
                let reps =
                    switchdev.then(|| sysfs.pf_representors(&pf.function.address, RepresentorView::Host));
                let reps = reps.transpose().unwrap_or_else(|e| {
                    let why = format!(
                        "cannot list the PF's representors: {}",
                        sriov_logging::error_chain(&e)
                    );
                    report.push(Check::warn("vf-representor", pf.label(), why));
                    None
                });
                for address in &pf.unreadable {
                    report.push(vf::unreadable(&sysfs, pf, address));
                }
                for target in &pf.vfs {
                    report.push(vf::driver(pf, target));
                    if let Some(reps) = &reps {
                        report.push(vf::representor(&sysfs, pf, target, reps, &links, &on_bridge));
                    }
                }
                representors.extend(
                    reps.iter()
                        .flat_map(|r| r.values())
                        .filter_map(|r| links.find(&sysfs, &r.netdev))
                        .map(|l| (l.name.clone(), l.index)),
                );
            }
        }
        Err(e) => report.push(Check::fail(
            "pf",
            sysfs.root().display().to_string(),
            sriov_logging::error_chain(&e),
        )),
    }

    if let Some(facts) = &facts {
        report.push(ovs::hw_offload(facts));
        report.push(ovs::bridge(facts, &opts.bridge));
        report.push(ovs::ovn_controller(facts, &opts.ovn_rundir).await);
    }
    report.push(nm::check(&opts.proc_root, &opts.nm_run_dir, &representors));
    report.extend(plugin::checks(&opts.device_plugin_path, config.as_ref()));

    if let Some(facts) = &facts {
        let known: HashSet<&str> = representors.iter().map(|(n, _)| n.as_str()).collect();
        let on_bridge: Vec<String> = facts
            .bridge_ports
            .iter()
            .flatten()
            .filter(|p| known.contains(p.as_str()) || facts.our_ports.contains(*p))
            .cloned()
            .collect();
        let flows = offload::dump(&opts.vswitchd_rundir()).await;
        report.extend(offload::checks(&on_bridge, &flows));
    }
    report
}

/// Every link of the doctor's network namespace, or why not as one sentence.
async fn links() -> Result<Vec<crate::netlink::link::Link>, String> {
    use crate::sys::Net;
    let host = crate::netns::Netns::host().map_err(|e| sriov_logging::error_chain(&e))?;
    host.links().await.map_err(|e| sriov_logging::error_chain(&e))
}

/// The OVSDB facts, or what went wrong as one sentence.
async fn ovs_facts(opts: &Options) -> Result<ovs::OvsFacts, String> {
    let connect = ovsdb_client::Client::connect(&opts.ovsdb);
    let client = match tokio::time::timeout(Duration::from_secs(5), connect).await {
        Ok(Ok(c)) => c.with_request_timeout(Some(Duration::from_secs(10))),
        Ok(Err(e)) => return Err(sriov_logging::error_chain(&e)),
        Err(_) => return Err(format!("connecting to {} timed out after 5s", opts.ovsdb)),
    };
    ovs::read(&client, &opts.bridge)
        .await
        .map_err(|e| sriov_logging::error_chain(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_with_an_unknown_key_is_refused_unless_lenient_like_the_device_plugin() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let text = r#"{"resourceList":[{"resourceName":"cx5","selectors":{"vendor":["15b3"]}}]}"#;
        std::fs::write(&path, text).unwrap();
        let mut opts = Options::default();
        let error = load_config(&path, &opts).unwrap_err();
        assert!(
            error.to_string().contains("vendor") || format!("{error:?}").contains("vendor"),
            "{error}"
        );
        opts.lenient_config = true;
        assert_eq!(load_config(&path, &opts).unwrap().resources.len(), 1);
    }
}
