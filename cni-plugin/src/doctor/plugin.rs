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
    let checkpoint = std::fs::read_to_string(dir.join(CHECKPOINT)).ok();
    config
        .resources
        .iter()
        .map(|resource| {
            let name = resource.full_name();
            let path = dir.join(resource.socket_name());
            let fix = "kubectl -n kube-system rollout restart daemonset/sriov-device-plugin, then its logs";
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
            match &checkpoint {
                Some(text) if text.contains(&format!("\"{name}\"")) => Check::ok(
                    CHECK,
                    name,
                    format!("{served}, registered in the kubelet checkpoint"),
                ),
                Some(_) => Check::warn(
                    CHECK,
                    name,
                    format!("{served}, not yet in the kubelet checkpoint"),
                ),
                None => Check::ok(
                    CHECK,
                    name,
                    format!("{served} (no kubelet checkpoint to confirm registration)"),
                ),
            }
        })
        .collect()
}
