//! NetworkManager must leave representors alone (the guide: it "may make the driver misbehave").
//! Read from procfs (`comm`) and its run-state files `<run dir>/devices/<ifindex>`: no D-Bus.

use std::path::Path;

use super::report::Check;

const CHECK: &str = "networkmanager";

/// Whether a process named `NetworkManager` runs (from `<proc>/<pid>/comm`).
pub fn running(proc_root: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(proc_root) else {
        return false;
    };
    entries.flatten().any(|e| {
        e.file_name()
            .to_string_lossy()
            .bytes()
            .all(|b| b.is_ascii_digit())
            && std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == "NetworkManager")
    })
}

/// `managed=` of the device's run-state file: `Some(true|false)`, `None` when NM has no file.
pub fn managed(run_dir: &Path, ifindex: u32) -> Option<bool> {
    let text = std::fs::read_to_string(run_dir.join("devices").join(ifindex.to_string())).ok()?;
    let mut in_device = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_device = line == "[device]";
        } else if in_device {
            if let Some(value) = line.strip_prefix("managed=") {
                return Some(matches!(value.trim(), "true" | "1" | "yes"));
            }
        }
    }
    None
}

/// One line: OK when NM does not run or manages none of `representors` (`(name, ifindex)`).
pub fn check(proc_root: &Path, run_dir: &Path, representors: &[(String, u32)]) -> Check {
    if !running(proc_root) {
        return Check::ok(CHECK, "NetworkManager", "not running");
    }
    let managed: Vec<&str> = representors
        .iter()
        .filter(|(_, index)| managed(run_dir, *index) == Some(true))
        .map(|(name, _)| name.as_str())
        .collect();
    if managed.is_empty() {
        return Check::ok(
            CHECK,
            "NetworkManager",
            format!("running, manages none of the {} representors", representors.len()),
        );
    }
    let devices = managed.join(" ");
    // The fix is the command; how to keep it across restarts goes with what was found.
    Check::fail(
        CHECK,
        "NetworkManager",
        format!(
            "running and managing representors {devices} (to keep it so, list them under unmanaged-devices in /etc/NetworkManager/conf.d/, or stop NetworkManager as the guide does)"
        ),
    )
    .fix(format!("for d in {devices}; do nmcli device set $d managed no; done"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn managed_representors_fail_only_while_networkmanager_runs() {
        let proc_root = tempfile::tempdir().unwrap();
        let run = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(run.path().join("devices")).unwrap();
        std::fs::write(
            run.path().join("devices/7"),
            "[device]\nmanaged=true\nperm-hw-addr-fake=\n",
        )
        .unwrap();
        std::fs::write(run.path().join("devices/8"), "[device]\nmanaged=false\n").unwrap();
        let reps = vec![
            ("r0".to_string(), 7),
            ("r1".to_string(), 8),
            ("r2".to_string(), 9),
        ];
        let c = check(proc_root.path(), run.path(), &reps);
        assert_eq!(
            (c.status, c.found.as_str()),
            (super::super::report::Status::Ok, "not running")
        );
        std::fs::create_dir_all(proc_root.path().join("812")).unwrap();
        std::fs::write(proc_root.path().join("812/comm"), "NetworkManager\n").unwrap();
        let c = check(proc_root.path(), run.path(), &reps);
        assert_eq!(c.status, super::super::report::Status::Fail);
        assert!(
            c.found.starts_with("running and managing representors r0 ("),
            "{c:?}"
        );
        assert_eq!(
            c.fix.as_deref(),
            Some("for d in r0; do nmcli device set $d managed no; done")
        );
        assert_eq!(managed(run.path(), 9), None);
    }
}
