//! Everything a cluster prefix owns on the host, found from the outside: for `demo --down` (a
//! kept cluster), for recovering after a killed test, and for tests asserting nothing leaked.

use std::path::Path;

use testbed::cmd::ip;
use testbed::daemon::{alive, read_pid, terminate};
use testbed::names::base_dir;

/// Netns names of cluster `prefix` (`<prefix>-...`).
pub fn netns_of(prefix: &str) -> Vec<String> {
    let head = format!("{prefix}-");
    let Ok(entries) = std::fs::read_dir("/run/netns") else {
        return vec![];
    };
    let mut out: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(&head))
        .collect();
    out.sort();
    out
}

/// Pidfiles under the cluster's directory whose process is still alive.
pub fn live_pidfiles(prefix: &str) -> Vec<(String, i32)> {
    let mut out = vec![];
    walk(Path::new(&base_dir(prefix)), &mut |p| {
        if p.extension().is_some_and(|x| x == "pid") {
            if let Some(pid) = read_pid(p).filter(|pid| alive(*pid)) {
                out.push((p.display().to_string(), pid));
            }
        }
    });
    out
}

/// Processes whose command line mentions the cluster's directory (daemons, plugins).
pub fn processes_of(prefix: &str) -> Vec<i32> {
    let needle = base_dir(prefix);
    let me = std::process::id() as i32;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok()?.parse::<i32>().ok())
        .filter(|pid| *pid != me && alive(*pid))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&needle))
        })
        .collect()
}

/// Mount points under the cluster's directory (simulated sysfs trees are tmpfs mounts).
pub fn mounts_of(prefix: &str) -> Vec<String> {
    let dir = format!("{}/", base_dir(prefix));
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|m| m.starts_with(&dir))
        .map(str::to_string)
        .collect()
}

/// What of cluster `prefix` is still on the host (empty when everything was removed).
pub fn leftovers(prefix: &str) -> Vec<String> {
    let mut out: Vec<String> = netns_of(prefix)
        .into_iter()
        .map(|n| format!("netns {n}"))
        .collect();
    out.extend(processes_of(prefix).into_iter().map(|p| format!("process {p}")));
    out.extend(mounts_of(prefix).into_iter().map(|m| format!("mount {m}")));
    if Path::new(&base_dir(prefix)).exists() {
        out.push(format!("directory {}", base_dir(prefix)));
    }
    out
}

/// Removes everything of cluster `prefix`: stops its processes, deletes its namespaces (and so
/// their links), removes its directory. Returns what it removed.
pub fn remove_prefix(prefix: &str) -> Vec<String> {
    let mut done = vec![];
    for (file, pid) in live_pidfiles(prefix) {
        terminate(pid);
        done.push(format!("stopped {pid} ({file})"));
    }
    for pid in processes_of(prefix) {
        terminate(pid);
        done.push(format!("stopped {pid}"));
    }
    // Simulated NICs: their own teardown (links, sysfs tree and its mount, state).
    let base = base_dir(prefix);
    walk_dirs(Path::new(&base), &mut |d| {
        if d.file_name().is_some_and(|n| n == "simnode") {
            let Ok(entries) = std::fs::read_dir(d) else { return };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let sysfs = d.parent().map(|p| p.join("sys"));
                match simnode::down_prefix_in(d, &name, sysfs.as_deref()) {
                    Ok(()) => done.push(format!("removed simulated NIC {name}")),
                    Err(e) => done.push(format!(
                        "simulated NIC {name}: {}",
                        sriov_logging::error_chain(&e)
                    )),
                }
            }
        }
    });
    for m in mounts_of(prefix) {
        if nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH).is_ok() {
            done.push(format!("unmounted {m}"));
        }
    }
    for ns in netns_of(prefix) {
        if ip(["netns", "del", &ns]).is_ok() {
            done.push(format!("deleted netns {ns}"));
        }
    }
    let dir = base_dir(prefix);
    if std::fs::remove_dir_all(&dir).is_ok() {
        done.push(format!("removed {dir}"));
    }
    done
}

fn walk_dirs(dir: &Path, f: &mut dyn FnMut(&Path)) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            let p = e.path();
            f(&p);
            if !p.ends_with("sys") {
                walk_dirs(&p, f);
            }
        }
    }
}

fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() && !p.ends_with("sys") => walk(&p, f),
            Ok(t) if t.is_file() => f(&p),
            _ => {}
        }
    }
}
