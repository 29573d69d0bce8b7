//! Our device plugin serves each configured resource on `<prefix>_<name>.sock` in the kubelet's
//! device-plugins directory; the kubelet records the resources it registered in its
//! `kubelet_internal_checkpoint` there.

use std::os::unix::net::UnixStream;
use std::path::Path;

use sriovdp_config::Config;

use super::report::Check;

const CHECK: &str = "device-plugin";

/// The kubelet's checkpoint file in the device-plugins directory.
pub const CHECKPOINT: &str = "kubelet_internal_checkpoint";

/// Resource names in the kubelet checkpoint's `Data.RegisteredDevices`; `None` when there is no
/// readable checkpoint.
pub fn registered(path: &Path) -> Option<Vec<String>> {
    let text = std::fs::read(path).ok()?;
    let json: serde_json::Value = serde_json::from_slice(&text).ok()?;
    let devices = json.get("Data")?.get("RegisteredDevices")?.as_object()?;
    Some(devices.keys().cloned().collect())
}

/// One line per resource of `config` (or one for the directory without a config).
pub fn checks(dir: &Path, config: Option<&Config>) -> Vec<Check> {
    let Some(config) = config else {
        let sockets: Vec<String> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sock") && n != "kubelet.sock")
            .collect();
        let subject = dir.display().to_string();
        return vec![if sockets.is_empty() {
            Check::warn(
                CHECK,
                subject,
                "no device plugin socket (pass --config-file to name the expected ones)",
            )
        } else {
            Check::ok(CHECK, subject, format!("sockets {}", sockets.join(" ")))
        }];
    };
    let registered = registered(&dir.join(CHECKPOINT));
    config
        .resources
        .iter()
        .map(|resource| {
            let name = resource.full_name();
            let path = dir.join(resource.socket_name());
            let fix = "kubectl -n kube-system rollout restart daemonset/sriov-device-plugin";
            if !path.exists() {
                return Check::fail(CHECK, name, format!("no socket {}", path.display())).fix(fix);
            }
            if let Err(e) = UnixStream::connect(&path) {
                return Check::fail(
                    CHECK,
                    name,
                    format!("socket {} does not answer: {e}", path.display()),
                )
                .fix(fix);
            }
            let served = format!("served on {}", path.display());
            match &registered {
                Some(names) if names.contains(&name) => {
                    Check::ok(CHECK, name, format!("{served}, registered (kubelet checkpoint)"))
                }
                Some(_) => Check::warn(
                    CHECK,
                    name,
                    format!("{served}, but not among the kubelet checkpoint's registered devices"),
                )
                .fix("kubectl -n kube-system logs daemonset/sriov-device-plugin (look for registration errors)"),
                None => Check::ok(
                    CHECK,
                    name,
                    format!("{served} (no kubelet checkpoint to confirm registration)"),
                ),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::report::Status;
    use super::*;

    #[test]
    fn resource_socket_must_be_served_and_the_checkpoint_decides_registration() {
        let dir = tempfile::tempdir().unwrap();
        let config = sriovdp_config::parse(
            r#"{"resourceList":[{"resourcePrefix":"mellanox.com","resourceName":"cx5","selectors":{}}]}"#,
            "intel.com",
        )
        .unwrap();
        let status = || checks(dir.path(), Some(&config))[0].status;
        assert_eq!(status(), Status::Fail);
        let socket = dir.path().join("mellanox.com_cx5.sock");
        let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        assert_eq!(status(), Status::Ok);
        let checkpoint = dir.path().join(CHECKPOINT);
        std::fs::write(&checkpoint, r#"{"Data":{"PodDeviceEntries":[{"ResourceName":"mellanox.com/cx5"}],"RegisteredDevices":{"intel.com/x":["a"]}},"Checksum":1}"#).unwrap();
        assert_eq!(status(), Status::Warn);
        std::fs::write(&checkpoint, r#"{"Data":{"PodDeviceEntries":null,"RegisteredDevices":{"mellanox.com/cx5":["0000:84:00.2"]}},"Checksum":1}"#).unwrap();
        assert_eq!(status(), Status::Ok);
        assert!(checks(dir.path(), Some(&config))[0]
            .found
            .ends_with("registered (kubelet checkpoint)"));
        drop(listener);
        // The file stays, nobody answers: the plugin is gone.
        assert_eq!(status(), Status::Fail);
    }
}
