//! Running the host tools tests drive (`ip`, `ovs-vsctl`, `ovn-nbctl`, daemons, plugins),
//! optionally inside a netns.

use std::ffi::OsString;
use std::fmt;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Errors of running a command.
#[derive(Debug, thiserror::Error)]
pub enum CmdError {
    /// The program could not be started (missing binary, bad path).
    #[error("cannot run `{cmd}`")]
    Spawn {
        /// The command line.
        cmd: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The program ran and exited non-zero.
    #[error("`{cmd}` failed ({detail})")]
    Failed {
        /// The command line.
        cmd: String,
        /// Exit status and what it wrote on stderr (or stdout when stderr was empty).
        detail: String,
    },
}

/// A command line with its environment and, optionally, the netns it runs in.
#[derive(Clone, Debug, Default)]
pub struct Cmd {
    program: OsString,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    netns: Option<String>,
    stdin: Option<Vec<u8>>,
}

impl Cmd {
    /// A command running `program`.
    pub fn new(program: impl Into<OsString>) -> Cmd {
        Cmd {
            program: program.into(),
            ..Cmd::default()
        }
    }

    /// Appends one argument.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Cmd {
        self.args.push(arg.into());
        self
    }

    /// Appends arguments.
    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Cmd {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Points every OVS/OVN directory variable at `dir`, so the tools never reach for `/var/run/openvswitch`.
    pub fn ovs_dirs(self, dir: &Path) -> Cmd {
        [
            "OVS_RUNDIR",
            "OVS_LOGDIR",
            "OVS_DBDIR",
            "OVS_SYSCONFDIR",
            "OVN_RUNDIR",
            "OVN_LOGDIR",
            "OVN_DBDIR",
            "OVN_SYSCONFDIR",
        ]
        .into_iter()
        .fold(self, |c, k| c.env(k, dir))
    }

    /// Runs the command inside the named netns (`ip netns exec NS ...`).
    pub fn netns(mut self, netns: Option<&str>) -> Cmd {
        self.netns = netns.map(str::to_string);
        self
    }

    /// Feeds `data` on standard input.
    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Cmd {
        self.stdin = Some(data.into());
        self
    }

    /// The process to run, not started (for a test that spawns it and drives it itself).
    pub fn command(&self) -> Command {
        let mut c = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(&self.program);
                c
            }
            None => Command::new(&self.program),
        };
        c.args(&self.args);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// Runs to completion and returns the raw output whatever the exit status.
    pub fn output(&self) -> Result<Output, CmdError> {
        let mut c = self.command();
        c.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let spawn = |source| CmdError::Spawn {
            cmd: self.to_string(),
            source,
        };
        // A program written just now can be "text file busy" for a moment: another thread's
        // fork may still hold a copy of the writer's descriptor until that child execs.
        let mut tries = 0;
        let mut child = loop {
            match c.spawn() {
                Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 50 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                other => break other.map_err(spawn)?,
            }
        };
        if let (Some(data), Some(mut pipe)) = (&self.stdin, child.stdin.take()) {
            // A program that exits without reading its input is not an error here.
            let _ = pipe.write_all(data);
        }
        child.wait_with_output().map_err(spawn)
    }

    /// Runs to completion; returns stdout, or an error carrying stderr when the exit status is not 0.
    pub fn run(&self) -> Result<String, CmdError> {
        let out = self.output()?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            return Ok(stdout);
        }
        let mut stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if stderr.is_empty() {
            stderr = stdout.trim().to_string();
        }
        Err(CmdError::Failed {
            cmd: self.to_string(),
            detail: format!("{}: {stderr}", out.status),
        })
    }

    /// Runs and reports only whether it exited 0 (for probes and best-effort cleanup).
    pub fn ok(&self) -> bool {
        self.output().is_ok_and(|o| o.status.success())
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(ns) = &self.netns {
            write!(f, "ip netns exec {ns} ")?;
        }
        write!(f, "{}", self.program.to_string_lossy())?;
        for a in &self.args {
            write!(f, " {}", a.to_string_lossy())?;
        }
        Ok(())
    }
}

/// `ip ARGS...` in the root netns.
pub fn ip<I, S>(args: I) -> Result<String, CmdError>
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    Cmd::new("ip").args(args).run()
}

/// `ip -n NS ARGS...`.
pub fn ip_in<I, S>(netns: &str, args: I) -> Result<String, CmdError>
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    Cmd::new("ip").args(["-n", netns]).args(args).run()
}

/// Turns TX checksum offload off on a link in `netns` (userspace OVS never completes partial checksums).
pub fn tx_off(netns: &str, ifname: &str) -> Result<(), CmdError> {
    Cmd::new("ethtool")
        .args(["-K", ifname, "tx", "off"])
        .netns(Some(netns))
        .run()
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_returns_stdout_and_reports_failures() {
        assert_eq!(Cmd::new("echo").arg("hi").run().unwrap(), "hi\n");
        let err = Cmd::new("sh")
            .args(["-c", "echo oops >&2; exit 3"])
            .run()
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("oops") && text.contains("sh -c"), "{text}");
        assert!(matches!(
            Cmd::new("/nonexistent/x").run(),
            Err(CmdError::Spawn { .. })
        ));
        assert_eq!(Cmd::new("cat").stdin("abc").run().unwrap(), "abc");
    }
}
