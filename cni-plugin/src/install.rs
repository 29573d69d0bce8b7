//! `sriov-ovs install --dest DIR`: copies the running executable into a CNI binary directory
//! atomically, so a kubelet running the plugin meanwhile executes the old or the new binary.
//! [`command_line`] is the binary's whole non-CNI command line: runtimes pass no arguments.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sriov_host::atomic::{replace_with, AtomicWriteError};

/// The file name the plugin is installed under (the `type` in network configurations).
pub const BINARY_NAME: &str = "sriov-ovs";

/// Where the running executable is read from.
pub const SELF_EXE: &str = "/proc/self/exe";

/// Mode of the installed binary.
const MODE: u32 = 0o755;

/// Installing the binary failed; the destination's existing `sriov-ovs` is untouched.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The destination directory is missing or unreadable.
    #[error("cannot use destination directory {}", path.display())]
    DestDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The destination exists but is not a directory.
    #[error("destination {} is not a directory", path.display())]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// The executable to copy could not be opened.
    #[error("cannot open the executable {}", path.display())]
    OpenSource {
        /// The executable.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Copying into the destination failed (see [`sriov_host::atomic`] for the step).
    #[error("cannot copy {} to {}", from.display(), to.display())]
    Copy {
        /// The executable.
        from: PathBuf,
        /// The installed binary.
        to: PathBuf,
        /// The cause.
        #[source]
        source: AtomicWriteError,
    },
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    /// No arguments: a CNI invocation (verb in `CNI_COMMAND`).
    Cni,
    /// `--help` / `-h` / `help`.
    Help,
    /// `install --help`.
    InstallHelp,
    /// `--version` / `-V`.
    Version,
    /// `install --dest DIR`.
    Install {
        /// The directory to install into.
        dest: PathBuf,
    },
}

/// The command line is not one we know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    /// An argument we do not know.
    #[error("unexpected argument {0:?}")]
    Unexpected(String),
    /// `install` without `--dest DIR`.
    #[error("install needs --dest DIR")]
    MissingDest,
}

/// Usage text printed by `--help`.
pub const USAGE: &str = "\
sriov-ovs: CNI plugin moving a switchdev SR-IOV VF into a pod and attaching its representor
to an Open vSwitch bridge.

Usage:
  sriov-ovs                     run as a CNI plugin: verb in CNI_COMMAND, network configuration
                                on stdin (how container runtimes call it)
  sriov-ovs install --dest DIR  copy this executable to DIR/sriov-ovs atomically
                                (temp file, fsync, chmod 0755, rename)
  sriov-ovs --help | --version
";

/// Usage text printed by `install --help`.
pub const INSTALL_USAGE: &str = "\
Usage: sriov-ovs install --dest DIR

Copies this executable to DIR/sriov-ovs atomically: a temporary file in DIR, fsync, mode 0755,
then rename over the old binary, so a CNI call running at that moment executes the old or the
new binary, never a half-written one. The installer DaemonSet runs it as
`sriov-ovs install --dest /host/opt/cni/bin` with the host's /opt/cni/bin mounted there.

Options:
  --dest DIR   the CNI binary directory (required)
  -h, --help   this text
";

/// Parses the arguments after the program name.
pub fn parse_args(args: &[OsString]) -> Result<Invocation, UsageError> {
    let args: Vec<String> = args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    let Some(first) = args.first() else {
        return Ok(Invocation::Cni);
    };
    match first.as_str() {
        "-h" | "--help" | "help" if args.len() == 1 => Ok(Invocation::Help),
        "-V" | "--version" if args.len() == 1 => Ok(Invocation::Version),
        "install" => {
            let mut dest = None;
            let mut rest = args[1..].iter();
            while let Some(arg) = rest.next() {
                match arg.as_str() {
                    "-h" | "--help" => return Ok(Invocation::InstallHelp),
                    "--dest" => dest = Some(rest.next().ok_or(UsageError::MissingDest)?.clone()),
                    other => match other.strip_prefix("--dest=") {
                        Some(value) => dest = Some(value.to_string()),
                        None => return Err(UsageError::Unexpected(other.to_string())),
                    },
                }
            }
            match dest.filter(|d| !d.is_empty()) {
                Some(dest) => Ok(Invocation::Install {
                    dest: PathBuf::from(dest),
                }),
                None => Err(UsageError::MissingDest),
            }
        }
        _ => Err(UsageError::Unexpected(args.join(" "))),
    }
}

/// Handles a non-CNI command line: `None` when `args` (after the program name) is empty and
/// the process is a CNI invocation, else the exit code after printing help, the version, or
/// installing (0 success, 1 install failed, 2 usage error).
pub fn command_line(args: &[OsString], stdout: &mut dyn Write, stderr: &mut dyn Write) -> Option<i32> {
    let out = match parse_args(args) {
        Ok(Invocation::Cni) => return None,
        Ok(Invocation::Help) => format!("{USAGE}\n{}", crate::netconf_keys::help_text()),
        Ok(Invocation::InstallHelp) => INSTALL_USAGE.to_string(),
        Ok(Invocation::Version) => format!("sriov-ovs {}\n", env!("CARGO_PKG_VERSION")),
        Ok(Invocation::Install { dest }) => match install_from(Path::new(SELF_EXE), &dest) {
            Ok(path) => format!("installed {}\n", path.display()),
            Err(err) => {
                let _ = writeln!(stderr, "sriov-ovs install: {}", sriov_logging::error_chain(&err));
                return Some(1);
            }
        },
        Err(err) => {
            let _ = writeln!(stderr, "sriov-ovs: {err}\n\n{USAGE}");
            return Some(2);
        }
    };
    let _ = stdout.write_all(out.as_bytes());
    Some(0)
}

/// Copies `source` to `dest/sriov-ovs` through a temporary file in `dest` (fsync, mode 0755,
/// rename, fsync of `dest`); returns the installed path.
pub fn install_from(source: &Path, dest: &Path) -> Result<PathBuf, InstallError> {
    let meta = fs::metadata(dest).map_err(|source| InstallError::DestDir {
        path: dest.to_path_buf(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(InstallError::NotADirectory {
            path: dest.to_path_buf(),
        });
    }
    let mut input = File::open(source).map_err(|e| InstallError::OpenSource {
        path: source.to_path_buf(),
        source: e,
    })?;
    let target = dest.join(BINARY_NAME);
    replace_with(&target, Some(MODE), |output| {
        io::copy(&mut input, output).map(drop)
    })
    .map_err(|e| InstallError::Copy {
        from: source.to_path_buf(),
        to: target.clone(),
        source: e,
    })?;
    tracing::info!(path = %target.display(), "installed");
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn installs_a_copy_with_mode_0755_and_leaves_no_temp_file() {
        let src = tempfile::tempdir().unwrap();
        let dest = tempfile::tempdir().unwrap();
        let exe = src.path().join("exe");
        fs::write(&exe, b"\x7fELF new binary").unwrap();
        let installed = install_from(&exe, dest.path()).unwrap();
        assert_eq!(installed, dest.path().join("sriov-ovs"));
        assert_eq!(fs::read(&installed).unwrap(), b"\x7fELF new binary");
        assert_eq!(
            fs::metadata(&installed).unwrap().permissions().mode() & 0o7777,
            0o755
        );
        assert_eq!(names(dest.path()), vec!["sriov-ovs"]);
    }

    #[test]
    fn replaces_an_existing_binary_by_rename_not_in_place() {
        let src = tempfile::tempdir().unwrap();
        let dest = tempfile::tempdir().unwrap();
        let exe = src.path().join("exe");
        fs::write(&exe, b"v2").unwrap();
        let old = dest.path().join("sriov-ovs");
        fs::write(&old, b"v1").unwrap();
        // A reader holding the old file (a running plugin) keeps seeing the old content.
        let held = File::open(&old).unwrap();
        install_from(&exe, dest.path()).unwrap();
        assert_eq!(fs::read(&old).unwrap(), b"v2");
        let mut content = String::new();
        io::Read::read_to_string(&mut &held, &mut content).unwrap();
        assert_eq!(content, "v1");
        assert_eq!(names(dest.path()), vec!["sriov-ovs"]);
    }

    #[test]
    fn replaces_a_temp_file_left_by_a_crashed_install() {
        let src = tempfile::tempdir().unwrap();
        let dest = tempfile::tempdir().unwrap();
        let exe = src.path().join("exe");
        fs::write(&exe, b"whole").unwrap();
        // The installer is pid 1 in every container: the temporary name repeats.
        fs::write(
            sriov_host::atomic::temp_path(&dest.path().join("sriov-ovs")),
            b"ha",
        )
        .unwrap();
        install_from(&exe, dest.path()).unwrap();
        assert_eq!(fs::read(dest.path().join("sriov-ovs")).unwrap(), b"whole");
        assert_eq!(names(dest.path()), vec!["sriov-ovs"]);
    }

    #[test]
    fn missing_or_non_directory_destination_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("exe");
        fs::write(&exe, b"x").unwrap();
        let e = install_from(&exe, &dir.path().join("missing")).unwrap_err();
        assert!(matches!(e, InstallError::DestDir { .. }), "{e}");
        let e = install_from(&exe, &exe).unwrap_err();
        assert!(matches!(e, InstallError::NotADirectory { .. }), "{e}");
        assert_eq!(fs::read(&exe).unwrap(), b"x");
    }

    #[test]
    fn unreadable_source_leaves_destination_untouched() {
        let dest = tempfile::tempdir().unwrap();
        fs::write(dest.path().join("sriov-ovs"), b"old").unwrap();
        let e = install_from(&dest.path().join("nope"), dest.path()).unwrap_err();
        assert!(matches!(e, InstallError::OpenSource { .. }), "{e}");
        assert_eq!(fs::read(dest.path().join("sriov-ovs")).unwrap(), b"old");
        assert_eq!(names(dest.path()), vec!["sriov-ovs"]);
    }

    fn args(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn command_line_forms() {
        assert_eq!(parse_args(&[]), Ok(Invocation::Cni));
        assert_eq!(parse_args(&args(&["--help"])), Ok(Invocation::Help));
        assert_eq!(parse_args(&args(&["-V"])), Ok(Invocation::Version));
        let want = Ok(Invocation::Install {
            dest: PathBuf::from("/host/opt/cni/bin"),
        });
        assert_eq!(
            parse_args(&args(&["install", "--dest", "/host/opt/cni/bin"])),
            want
        );
        assert_eq!(parse_args(&args(&["install", "--dest=/host/opt/cni/bin"])), want);
        assert_eq!(parse_args(&args(&["install"])), Err(UsageError::MissingDest));
        assert_eq!(
            parse_args(&args(&["install", "--help"])),
            Ok(Invocation::InstallHelp)
        );
        assert_eq!(
            parse_args(&args(&["install", "--dest", "/d", "-h"])),
            Ok(Invocation::InstallHelp)
        );
        assert_eq!(
            parse_args(&args(&["install", "--dest"])),
            Err(UsageError::MissingDest)
        );
        assert!(matches!(
            parse_args(&args(&["install", "--force"])),
            Err(UsageError::Unexpected(_))
        ));
        assert!(matches!(
            parse_args(&args(&["ADD"])),
            Err(UsageError::Unexpected(_))
        ));
    }

    #[test]
    fn command_line_prints_help_and_reports_errors_with_exit_codes() {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(command_line(&[], &mut out, &mut err), None);
        assert_eq!(command_line(&args(&["--help"]), &mut out, &mut err), Some(0));
        assert!(String::from_utf8_lossy(&out).contains("install --dest DIR"));
        assert!(
            String::from_utf8_lossy(&out).contains("ovsdbSocket          [unix:/run/openvswitch/db.sock]")
        );
        out.clear();
        assert_eq!(
            command_line(&args(&["install", "--help"]), &mut out, &mut err),
            Some(0)
        );
        assert!(String::from_utf8_lossy(&out).starts_with("Usage: sriov-ovs install --dest DIR"));
        assert_eq!(command_line(&args(&["bogus"]), &mut out, &mut err), Some(2));
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let code = command_line(
            &args(&["install", "--dest", missing.to_str().unwrap()]),
            &mut out,
            &mut err,
        );
        assert_eq!(code, Some(1));
        assert!(String::from_utf8_lossy(&err).contains("missing"));
        let code = command_line(
            &args(&["install", "--dest", dir.path().to_str().unwrap()]),
            &mut out,
            &mut err,
        );
        assert_eq!(code, Some(0));
        assert!(dir.path().join("sriov-ovs").exists());
    }

    #[test]
    fn install_copies_the_running_executable() {
        let dest = tempfile::tempdir().unwrap();
        let installed = install_from(Path::new(SELF_EXE), dest.path()).unwrap();
        let me = fs::read(SELF_EXE).unwrap();
        assert_eq!(fs::read(installed).unwrap(), me);
    }
}
