//! The shim's `sysctlEnableIPv6` (kube-ovn `cmd/cni/sysctl.go` at v1.16.2): in the pod's netns,
//! `net.ipv6.conf.{all,default}.{disable_ipv6,accept_ra}` are set to 0 (docker's "none" network
//! disables IPv6); a missing key or a permission error is skipped.

use std::fs::File;
use std::io::ErrorKind;
use std::path::Path;

use nix::sched::CloneFlags;

const SETTINGS: [(&str, &str); 2] = [("disable_ipv6", "0"), ("accept_ra", "0")];

/// Applies the settings inside the netns at `netns` (a `/run/netns/...` or `/proc/PID/ns/net`
/// path), from a short-lived thread so the caller's thread keeps its namespace.
pub fn enable_ipv6(netns: &Path) -> std::io::Result<()> {
    let ns = File::open(netns)?;
    std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::setns(&ns, CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)?;
            for conf in ["all", "default"] {
                for (key, value) in SETTINGS {
                    // /proc/sys/net follows the opening thread's netns.
                    let path = format!("/proc/sys/net/ipv6/conf/{conf}/{key}");
                    let current = match std::fs::read_to_string(&path) {
                        Ok(v) => v,
                        Err(e) if e.kind() == ErrorKind::NotFound => continue,
                        Err(e) => return Err(e),
                    };
                    if current.trim() == value {
                        continue;
                    }
                    match std::fs::write(&path, value) {
                        Err(e) if e.kind() != ErrorKind::PermissionDenied => return Err(e),
                        _ => {}
                    }
                }
            }
            Ok(())
        })
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("sysctl thread panicked")))
    })
}
