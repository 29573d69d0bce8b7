//! `sriov-ovs doctor [flags]`: flag parsing, the runtime, and printing the report.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::Write;

use super::{run, Options};

/// `--help` text.
pub const USAGE: &str = "\
Usage: sriov-ovs doctor [flags]

Read-only check of this node against the Kube-OVN Mellanox offload guide. Prints one line per
check (OK / WARN / FAIL, what was found, the command that fixes it); exits 1 if any check FAILs.

Flags:
  --config-file FILE          sriovdp config (the device plugin's); only the PFs and VFs its
                              resources select are checked (default: every SR-IOV PF)
  --resource-prefix PREFIX    prefix of resources without resourcePrefix (default intel.com)
  --lenient-config            unknown config keys warn instead of failing, as the device
                              plugin's --lenient-config
  --sysfs-root DIR            sysfs root (default $SRIOV_SYSFS_ROOT or /sys)
  --ovsdb ENDPOINT            OVSDB (default unix:/run/openvswitch/db.sock)
  --ovs-rundir DIR            ovs-vswitchd's control socket directory (default: the OVSDB
                              socket's directory)
  --ovn-rundir DIR            ovn-controller's control socket directory (default /run/ovn)
  --bridge NAME               integration bridge (default br-int)
  --device-plugin-path DIR    kubelet device-plugins directory
                              (default /var/lib/kubelet/device-plugins)
  --proc-root DIR             proc filesystem (default /proc)
  --networkmanager-run-dir DIR  NetworkManager's run directory (default /run/NetworkManager)
  --json                      print the report as JSON
";

/// Bad command line.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CliError {
    /// An unknown flag.
    #[error("unknown flag {flag:?} (see sriov-ovs doctor --help)")]
    UnknownFlag {
        /// The flag.
        flag: String,
    },
    /// A flag without its value.
    #[error("flag {flag} needs a value")]
    MissingValue {
        /// The flag.
        flag: String,
    },
}

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Run with these options.
    Run(Box<Options>),
    /// Print [`USAGE`].
    Help,
}

/// Parses `args` (after `doctor`); `env` supplies `SRIOV_SYSFS_ROOT`.
pub fn parse(args: &[OsString], env: &HashMap<String, String>) -> Result<Parsed, CliError> {
    let mut opts = Options::default();
    let root = env.get(sriov_host::SYSFS_ROOT_ENV).map(std::ffi::OsStr::new);
    opts.sysfs_root = sriov_host::Sysfs::from_env_value(root).root().to_path_buf();
    let mut args = args.iter().map(|a| a.to_string_lossy().into_owned());
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| CliError::MissingValue { flag: flag.clone() })
        };
        match flag.as_str() {
            "--help" | "-h" => return Ok(Parsed::Help),
            "--json" => opts.json = true,
            "--lenient-config" => opts.lenient_config = true,
            "--config-file" => opts.config_file = Some(value()?.into()),
            "--resource-prefix" => opts.resource_prefix = value()?,
            "--sysfs-root" => opts.sysfs_root = value()?.into(),
            "--ovsdb" => opts.ovsdb = value()?,
            "--ovs-rundir" => opts.ovs_rundir = Some(value()?.into()),
            "--ovn-rundir" => opts.ovn_rundir = value()?.into(),
            "--bridge" => opts.bridge = value()?,
            "--device-plugin-path" => opts.device_plugin_path = value()?.into(),
            "--proc-root" => opts.proc_root = value()?.into(),
            "--networkmanager-run-dir" => opts.nm_run_dir = value()?.into(),
            _ => return Err(CliError::UnknownFlag { flag }),
        }
    }
    Ok(Parsed::Run(Box::new(opts)))
}

/// Runs `sriov-ovs doctor args…`; returns the exit code (0 healthy or warnings only, 1 a FAIL,
/// 2 a bad command line).
pub fn command_line(args: &[OsString], stdout: &mut dyn Write, stderr: &mut dyn Write) -> i32 {
    let env: HashMap<String, String> = std::env::vars().collect();
    let opts = match parse(args, &env) {
        Ok(Parsed::Run(opts)) => opts,
        Ok(Parsed::Help) => return i32::from(write!(stdout, "{USAGE}").is_err()),
        Err(e) => {
            let _ = writeln!(stderr, "sriov-ovs doctor: {e}");
            return 2;
        }
    };
    let _log = crate::logging::init(sriov_logging::Level::Error, sriov_logging::Format::Text, None);
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(stderr, "sriov-ovs doctor: cannot start the async runtime: {e}");
            return 2;
        }
    };
    let report = rt.block_on(run(&opts));
    let printed = if opts.json {
        writeln!(stdout, "{}", report.to_json())
    } else {
        write!(stdout, "{}", report.to_text())
    };
    if printed.is_err() {
        return 2;
    }
    report.exit_code()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn args(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    #[test]
    fn flags_parse_in_both_spellings_and_env_gives_the_sysfs_root() {
        let env = HashMap::from([("SRIOV_SYSFS_ROOT".to_string(), "/sim".to_string())]);
        let Parsed::Run(o) = parse(
            &args(&["--config-file", "/c.json", "--ovsdb=unix:/x/db.sock", "--json"]),
            &env,
        )
        .unwrap() else {
            panic!("not a run");
        };
        assert_eq!(o.sysfs_root, PathBuf::from("/sim"));
        assert_eq!(o.config_file, Some(PathBuf::from("/c.json")));
        assert!(o.json);
        assert!(!o.lenient_config);
        assert_eq!(o.vswitchd_rundir(), PathBuf::from("/x"));
        let Parsed::Run(o) = parse(&args(&["--sysfs-root", "/flag"]), &env).unwrap() else {
            panic!("not a run");
        };
        assert_eq!(o.sysfs_root, PathBuf::from("/flag"));
        assert_eq!(
            Options::default().vswitchd_rundir(),
            PathBuf::from("/run/openvswitch")
        );
        assert_eq!(parse(&args(&["--help"]), &env), Ok(Parsed::Help));
        assert_eq!(
            parse(&args(&["--nope"]), &env),
            Err(CliError::UnknownFlag {
                flag: "--nope".into()
            })
        );
        assert_eq!(
            parse(&args(&["--ovsdb"]), &env),
            Err(CliError::MissingValue {
                flag: "--ovsdb".into()
            })
        );
    }
}
