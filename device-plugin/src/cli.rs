//! Command-line flags of `sriov-device-plugin`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

use crate::daemon::Settings;
use crate::go_flags::{parse_log_level, GoFlags};
use crate::probe::ProbeKind;
use crate::registration::RegistrationMode;
use sriov_logging::{Format, Level};
use sriovdp_config::UnknownKeys;

/// Kubelet device plugin for switchdev SR-IOV VFs (Mellanox ConnectX /
/// BlueField), reading the Go sriov-network-device-plugin's config unchanged.
#[derive(Clone, Debug, Parser)]
#[command(name = "sriov-device-plugin", version, about)]
pub struct Args {
    /// Resource config in the Go plugin's format ({"resourceList":[...]}).
    /// Watched: changes add, remove and re-select resources without restart.
    #[arg(long, default_value = "/etc/pcidp/config.json")]
    pub config_file: PathBuf,

    /// Prefix of resources whose config has no resourcePrefix
    /// (resource name "<prefix>/<resourceName>").
    #[arg(long, default_value = "intel.com")]
    pub resource_prefix: String,

    /// Kubelet device plugin directory: holds kubelet.sock and the plugin's
    /// sockets "<prefix>_<resourceName>.sock".
    #[arg(long, default_value = "/var/lib/kubelet/device-plugins")]
    pub device_plugin_path: PathBuf,

    /// Root of the sysfs tree to read devices from.
    #[arg(long, env = "SRIOV_SYSFS_ROOT", default_value = "/sys")]
    pub sysfs_root: PathBuf,

    /// Directory for the device-info files read by the CNI plugin
    /// ("<prefix>-<resourceName>-<pci>-device.json").
    #[arg(long, default_value = "/var/run/k8s.cni.cncf.io/devinfo/dp")]
    pub device_info_dir: PathBuf,

    /// Kubelet plugin-watcher directory [default: plugins_registry next to
    /// --device-plugin-path, i.e. /var/lib/kubelet/plugins_registry]. Given
    /// explicitly, it forces plugin-watcher registration (when it exists).
    #[arg(long)]
    pub plugin_registry_path: Option<PathBuf>,

    /// How to register with the kubelet: "auto" uses the plugin watcher when
    /// the plugins_registry directory exists (like the Go plugin) and falls
    /// back to kubelet.sock if the kubelet does not query it within 5 s.
    #[arg(long, value_enum, default_value_t = RegistrationMode::Auto)]
    pub registration_mode: RegistrationMode,

    /// Log level: error, warn (or warning), info, debug, trace, or a glog
    /// verbosity number as the Go plugin's DaemonSets pass (0-3 info,
    /// 4 debug, 5+ trace).
    #[arg(long, value_parser = parse_log_level, default_value = "info")]
    pub log_level: Level,

    /// Log line format: text, or json (one object per line) for log pipelines.
    #[arg(long, default_value = "text")]
    pub log_format: Format,

    /// The Go plugin's glog flags.
    #[command(flatten)]
    pub go: GoFlags,

    /// Write a CDI spec per resource and answer Allocate with CDI device
    /// names (cdi_devices and the cdi.k8s.io annotation) instead of device
    /// nodes, as the Go plugin's --use-cdi does.
    #[arg(long)]
    pub use_cdi: bool,

    /// Directory of the CDI specs written with --use-cdi.
    #[arg(long, default_value = crate::cdi::DEFAULT_CDI_SPEC_DIR)]
    pub cdi_spec_dir: PathBuf,

    /// Ignore unknown resource and selector keys in the config with one
    /// warning each (the Go plugin's behaviour) instead of refusing it.
    #[arg(long)]
    pub lenient_config: bool,

    /// Serve Prometheus metrics (/metrics) and health (/healthz, /readyz,
    /// /livez) over HTTP on HOST:PORT (off by default). Health is also always
    /// served on a Unix socket in --device-plugin-path, which --probe asks.
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics_address: Option<SocketAddr>,

    /// Ask the running plugin instead of running one: "live" (default) exits
    /// 0 while its event loop answers, "ready" while every resource is
    /// registered with the kubelet and serving; else 1 with the reason. It
    /// reads no config file: only --device-plugin-path matters (the image
    /// has no shell for a script probe).
    #[arg(long, value_enum, value_name = "live|ready", num_args = 0..=1, require_equals = true, default_missing_value = "live")]
    pub probe: Option<ProbeKind>,
}

impl Args {
    /// The daemon settings these flags describe.
    pub fn settings(&self) -> Settings {
        Settings {
            config_file: self.config_file.clone(),
            resource_prefix: self.resource_prefix.clone(),
            device_plugin_path: self.device_plugin_path.clone(),
            sysfs_root: self.sysfs_root.clone(),
            device_info_dir: self.device_info_dir.clone(),
            plugin_registry_path: self.plugin_registry_path.clone(),
            registration: self.registration(),
            watch_uevents: true,
            unknown_keys: if self.lenient_config {
                UnknownKeys::Warn
            } else {
                UnknownKeys::Reject
            },
            cdi_spec_dir: self.use_cdi.then(|| self.cdi_spec_dir.clone()),
            metrics_address: self.metrics_address,
        }
    }

    /// The registration mode: an explicit `--plugin-registry-path` forces the
    /// plugin watcher unless `--registration-mode` says otherwise.
    pub fn registration(&self) -> RegistrationMode {
        match (self.registration_mode, &self.plugin_registry_path) {
            (RegistrationMode::Auto, Some(_)) => RegistrationMode::PluginWatcher,
            (mode, _) => mode,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_go_plugin() {
        let args = Args::try_parse_from(["sriov-device-plugin"]).unwrap();
        assert_eq!(args.config_file, PathBuf::from("/etc/pcidp/config.json"));
        assert_eq!(args.resource_prefix, "intel.com");
        assert_eq!(
            args.device_plugin_path,
            PathBuf::from("/var/lib/kubelet/device-plugins")
        );
        assert_eq!(
            args.device_info_dir,
            PathBuf::from("/var/run/k8s.cni.cncf.io/devinfo/dp")
        );
        assert_eq!(args.plugin_registry_path, None);
        assert_eq!(args.log_level, Level::Info);
        assert_eq!(args.log_format, Format::Text);
        assert_eq!(args.registration(), RegistrationMode::Auto);
    }

    #[test]
    fn flags_are_spelled_as_documented() {
        let args = Args::try_parse_from([
            "x",
            "--config-file=/c.json",
            "--resource-prefix=mellanox.com",
            "--device-plugin-path=/dp",
            "--sysfs-root=/s",
            "--device-info-dir=/d",
            "--plugin-registry-path=/r",
            "--log-level=debug",
        ])
        .unwrap();
        let s = args.settings();
        assert_eq!(s.config_file, PathBuf::from("/c.json"));
        assert_eq!(s.sysfs_root, PathBuf::from("/s"));
        assert_eq!(s.plugin_registry_path, Some(PathBuf::from("/r")));
        assert_eq!(s.cdi_spec_dir, None);
        assert_eq!(s.unknown_keys, UnknownKeys::Reject);
        assert_eq!(s.registration, RegistrationMode::PluginWatcher);
        assert_eq!(args.log_level, Level::Debug);
    }

    #[test]
    fn use_cdi_and_lenient_config_reach_the_settings() {
        let s = Args::try_parse_from(["x", "--use-cdi", "--lenient-config"])
            .unwrap()
            .settings();
        assert_eq!(s.cdi_spec_dir, Some(PathBuf::from("/var/run/cdi")));
        assert_eq!(s.unknown_keys, UnknownKeys::Warn);
        let s = Args::try_parse_from(["x", "--use-cdi", "--cdi-spec-dir=/t/cdi"])
            .unwrap()
            .settings();
        assert_eq!(s.cdi_spec_dir, Some(PathBuf::from("/t/cdi")));
    }

    #[test]
    fn metrics_address_is_off_by_default_and_probe_defaults_to_live() {
        let args = Args::try_parse_from(["x"]).unwrap();
        assert_eq!(args.settings().metrics_address, None);
        assert_eq!(args.probe, None);
        let args = Args::try_parse_from(["x", "--metrics-address=127.0.0.1:9808", "--probe"]).unwrap();
        assert_eq!(
            args.settings().metrics_address,
            Some("127.0.0.1:9808".parse().unwrap())
        );
        assert_eq!(args.probe, Some(ProbeKind::Live));
        for (flag, kind) in [
            ("--probe=live", ProbeKind::Live),
            ("--probe=ready", ProbeKind::Ready),
        ] {
            assert_eq!(Args::try_parse_from(["x", flag]).unwrap().probe, Some(kind));
        }
        // The old DaemonSet's probe command line still parses.
        let args = Args::try_parse_from([
            "x",
            "--probe",
            "--device-plugin-path=/dp",
            "--config-file=/c.json",
        ])
        .unwrap();
        assert_eq!(args.probe, Some(ProbeKind::Live));
        assert!(Args::try_parse_from(["x", "--probe=sometimes"]).is_err());
        assert!(Args::try_parse_from(["x", "--metrics-address=9808"]).is_err());
    }

    #[test]
    fn registration_mode_flag_overrides_an_explicit_registry_path() {
        let args = Args::try_parse_from([
            "x",
            "--plugin-registry-path=/r",
            "--registration-mode=kubelet-socket",
        ])
        .unwrap();
        assert_eq!(args.registration(), RegistrationMode::KubeletSocket);
    }

    #[test]
    fn go_daemonset_and_entrypoint_command_lines_parse() {
        for argv in [
            &["x", "--log-dir=sriovdp", "--log-level=10"][..],
            &["x", "--log-level=10", "--logtostderr"],
            &[
                "x",
                "--alsologtostderr",
                "--resource-prefix=mellanox.com",
                "--config-file=/c.json",
            ],
            &[
                "x",
                "--logtostderr=false",
                "--log-format=json",
                "--log-level=warning",
            ],
        ] {
            Args::try_parse_from(argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        }
    }

    #[test]
    fn unknown_log_level_or_format_is_a_usage_error_naming_the_accepted_ones() {
        for (flag, accepted) in [
            (
                "--log-level=verbose",
                "error, warn (or warning), info, debug, trace",
            ),
            ("--log-format=logfmt", "text, json"),
        ] {
            let error = Args::try_parse_from(["x", flag]).unwrap_err();
            assert_eq!(error.kind(), clap::error::ErrorKind::ValueValidation);
            assert!(error.to_string().contains(accepted), "{error}");
        }
    }
}
