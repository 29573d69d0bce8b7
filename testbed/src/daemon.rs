//! Stopping what the harness started: detached daemons known by their pidfile, and child processes.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// How long a daemon gets between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(3);

/// A detached daemon (`--detach --pidfile=...`), stopped on drop.
#[derive(Debug)]
pub struct Daemon {
    name: String,
    pidfile: PathBuf,
}

impl Daemon {
    /// Tracks the daemon whose pidfile is `pidfile`.
    pub fn new(name: impl Into<String>, pidfile: impl Into<PathBuf>) -> Daemon {
        Daemon {
            name: name.into(),
            pidfile: pidfile.into(),
        }
    }

    /// The daemon's name, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The pidfile path.
    pub fn pidfile(&self) -> &Path {
        &self.pidfile
    }

    /// The pid read from the pidfile, when present.
    pub fn pid(&self) -> Option<i32> {
        read_pid(&self.pidfile)
    }

    /// Whether the process of the pidfile is alive.
    pub fn alive(&self) -> bool {
        self.pid().is_some_and(alive)
    }

    /// Stops it (SIGTERM, then SIGKILL after a grace period) and removes the pidfile.
    pub fn stop(&self) {
        if let Some(pid) = self.pid() {
            terminate(pid);
        }
        let _ = std::fs::remove_file(&self.pidfile);
    }

    /// Kills it with SIGKILL at once (a crash), leaving its pidfile and sockets behind.
    pub fn crash(&self) {
        if let Some(pid) = self.pid() {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            wait_gone(pid, GRACE);
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A child process started by the harness, killed on drop.
#[derive(Debug)]
pub struct ChildGuard {
    name: String,
    child: Option<Child>,
}

impl ChildGuard {
    /// Takes ownership of `child`.
    pub fn new(name: impl Into<String>, child: Child) -> ChildGuard {
        ChildGuard {
            name: name.into(),
            child: Some(child),
        }
    }

    /// The process name, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The pid, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether it has exited already (and so failed, for a server).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }

    /// Stops it (SIGTERM, then SIGKILL) and reaps it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
                let deadline = Instant::now() + GRACE;
                while Instant::now() < deadline {
                    if child.try_wait().ok().flatten().is_some() {
                        return;
                    }
                    sleep(Duration::from_millis(20));
                }
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Reads a pidfile.
pub fn read_pid(pidfile: &Path) -> Option<i32> {
    std::fs::read_to_string(pidfile).ok()?.trim().parse().ok()
}

/// Whether `pid` is a live process (zombies count as gone).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// SIGTERM, wait, SIGKILL.
pub fn terminate(pid: i32) {
    let p = Pid::from_raw(pid);
    if kill(p, Signal::SIGTERM).is_err() {
        return;
    }
    if !wait_gone(pid, GRACE) {
        let _ = kill(p, Signal::SIGKILL);
        wait_gone(pid, GRACE);
    }
}

fn wait_gone(pid: i32, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if !alive(pid) {
            return true;
        }
        sleep(Duration::from_millis(20));
    }
    !alive(pid)
}

/// Polls `probe` every 50 ms until it returns `Some`, or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn child_guard_kills_on_drop() {
        let child = Command::new("sleep").arg("600").spawn().unwrap();
        let pid = child.id() as i32;
        drop(ChildGuard::new("sleep", child));
        assert!(!alive(pid));
    }

    #[test]
    fn daemon_stops_process_named_in_pidfile() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("x.pid");
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "sleep 600 >/dev/null 2>&1 & echo $! > {}",
                pidfile.display()
            ))
            .status()
            .unwrap();
        assert!(out.success());
        let d = Daemon::new("sleep", &pidfile);
        let pid = d.pid().unwrap();
        assert!(d.alive());
        drop(d);
        assert!(!alive(pid));
        assert!(!pidfile.exists());
    }
}
