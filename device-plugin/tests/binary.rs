//! The `sriov-device-plugin` binary: invalid configs exit non-zero before any
//! socket exists; `--probe` asks the running plugin (a broken config edit
//! leaves it green) and tells a live plugin from a stopped one; SIGTERM stops
//! it cleanly with exit code 0.

mod common;

use std::process::{Command, Stdio};

use common::*;
use kubelet_proto::v1beta1::{AllocateRequest, ContainerAllocateRequest};
use simnode::SimNodeSpec;
use sriov_device_plugin::status::STATUS_SOCKET;

const BIN: &str = env!("CARGO_BIN_EXE_sriov-device-plugin");

/// Runs the binary on `config` and returns (exit code, stderr); asserts that
/// the device plugin directory stayed empty.
fn run_with_config(config: &str) -> (Option<i32>, String) {
    let tmp = tempfile::tempdir().unwrap();
    let dp = tmp.path().join("dp");
    std::fs::create_dir(&dp).unwrap();
    let config_file = tmp.path().join("config.json");
    std::fs::write(&config_file, config).unwrap();
    let output = Command::new(BIN)
        .arg("--config-file")
        .arg(&config_file)
        .arg("--device-plugin-path")
        .arg(&dp)
        .arg("--device-info-dir")
        .arg(tmp.path().join("devinfo"))
        .arg("--sysfs-root")
        .arg(tmp.path().join("sys"))
        .output()
        .unwrap();
    assert_eq!(std::fs::read_dir(&dp).unwrap().count(), 0, "sockets created");
    assert!(!tmp.path().join("devinfo").exists());
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn invalid_configs_exit_non_zero_naming_resource_key_and_value() {
    let cases = [
        ("{", "is not valid JSON"),
        (
            r#"{"resourceList":[{"resourceName":"cx5 vfs"}]}"#,
            r#"resource "cx5 vfs": key "resourceName": bad value "cx5 vfs": must match [A-Za-z0-9_-]+"#,
        ),
        (
            r#"{"resourceList":[{"resourceName":"a","selectors":{}},{"resourceName":"a","selectors":{}}]}"#,
            r#"resource "a": key "resourceName": duplicate resource "intel.com/a""#,
        ),
        (
            r#"{"resourceList":[{"resourceName":"a","selectors":{"pfNames":["ens1f0#3-1"]}}]}"#,
            r#"resource "a": key "pfNames": bad value "ens1f0#3-1": range "3-1" starts after it ends"#,
        ),
        (
            r#"{"resourceList":[{"resourceName":"a","selectors":{"rootDevices":["0000:84:00.0#2-x"]}}]}"#,
            r#"resource "a": key "rootDevices": bad value "0000:84:00.0#2-x""#,
        ),
        (
            r#"{"resourceList":[{"resourceName":"gpu","deviceType":"accelerator"}]}"#,
            r#"resource "gpu": key "deviceType": bad value "accelerator""#,
        ),
        (
            r#"{"resourceList":[{"resourceName":"a","selectors":{"isRdma":"yes"}}]}"#,
            r#"resource "a": key "isRdma": value "yes" is not true or false"#,
        ),
        // A resource without a selector object would otherwise take every device.
        (
            r#"{"resourceList":[{"resourceName":"typo"},{"resourceName":"b","selectors":{}}]}"#,
            r#"resource "typo": key "selectors" is missing: at least one selector object is needed ({} matches every device)"#,
        ),
        (
            r#"{"resourceList":[{"resourceName":"typo","selectors":[]}]}"#,
            r#"resource "typo": key "selectors": value [] holds no selector object"#,
        ),
        (
            r#"{"resourceList":[{"resourceName":"typo","selectors":null}]}"#,
            r#"resource "typo": key "selectors": value null holds no selector object"#,
        ),
        // A Go filter we cannot apply would widen the match.
        (
            r#"{"resourceList":[{"resourceName":"gtp","selectors":{"vendors":["8086"],"ddpProfiles":["GTPv1"]}}]}"#,
            r#"resource "gtp": key "ddpProfiles": value ["GTPv1"]: this filter is not supported"#,
        ),
    ];
    for (config, message) in cases {
        let (code, stderr) = run_with_config(config);
        assert!(matches!(code, Some(c) if c != 0), "{config}: exit {code:?}");
        assert!(
            stderr.contains(message),
            "{config}: stderr {stderr:?} lacks {message:?}"
        );
    }
    let (code, stderr) = run_with_config("");
    assert_ne!(code, Some(0));
    assert!(stderr.contains("config file"), "{stderr}");
}

#[test]
fn missing_config_file_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let output = Command::new(BIN)
        .arg("--config-file")
        .arg(tmp.path().join("nope.json"))
        .arg("--device-plugin-path")
        .arg(tmp.path().join("dp"))
        .output()
        .unwrap();
    assert_ne!(output.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot read config file"));
    assert!(!tmp.path().join("dp").exists());
}

#[test]
fn help_explains_every_flag() {
    let output = Command::new(BIN).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--config-file",
        "--resource-prefix",
        "--device-plugin-path",
        "--sysfs-root",
        "--device-info-dir",
        "--log-level",
        "--plugin-registry-path",
        "--registration-mode",
        "--log-format",
        "--log-dir",
        "--logtostderr",
        "--alsologtostderr",
        "SRIOV_SYSFS_ROOT",
        "/etc/pcidp/config.json",
        "intel.com",
        "/var/lib/kubelet/device-plugins",
        "/var/run/k8s.cni.cncf.io/devinfo/dp",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
}

#[test]
fn unknown_log_level_is_a_start_up_error_naming_the_accepted_ones() {
    for level in ["verbose", "warnings", "sriov_device_plugin=debug"] {
        let output = Command::new(BIN)
            .arg(format!("--log-level={level}"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{level}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "unknown log level {level:?}: accepted are error, warn (or warning), info, debug, trace"
            )),
            "{stderr}"
        );
    }
}

#[test]
fn log_format_json_writes_one_json_object_per_line() {
    let tmp = tempfile::tempdir().unwrap();
    let output = Command::new(BIN)
        .args(["--log-format=json", "--log-dir=sriovdp", "--log-level=warning"])
        .arg("--config-file")
        .arg(tmp.path().join("missing.json"))
        .arg("--device-plugin-path")
        .arg(tmp.path().join("dp"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stderr.lines().next().unwrap();
    let json: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(json["level"], "WARN");
    assert_eq!(json["fields"]["flag"], "--log-dir");
    assert!(!stderr.contains('\u{1b}'));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_removes_sockets_and_device_info_and_exits_zero() {
    let mut h = Harness::node(SimNodeSpec::new(prefix("st"), 1, 2));
    h.write_config(GUIDE_CONFIG);
    let mut child = plugin(&h).stderr(Stdio::null()).spawn().unwrap();
    let reg = h.kubelet().next_registration().await;
    assert_eq!(reg.endpoint, GUIDE_SOCKET);
    let mut client = h.client(GUIDE_SOCKET).await;
    let vf = h.node.vf(0, 1).pci.to_string();
    client
        .allocate(AllocateRequest {
            container_requests: vec![ContainerAllocateRequest {
                devices_ids: vec![vf.clone()],
            }],
        })
        .await
        .unwrap();
    let info = h
        .devinfo_dir()
        .join(format!("mellanox.com-cx5_sriov_switchdev-{vf}-device.json"));
    assert!(info.exists());
    let mut stream = list_and_watch(&mut client).await;
    next_list(&mut stream).await;
    let live = probe(&h, "--probe");
    assert_eq!(
        live.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&live.stderr)
    );

    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = tokio::task::spawn_blocking(move || {
        let status = child.wait();
        drop(KillOnDrop(child));
        status
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(!h.dp_dir().join(GUIDE_SOCKET).exists());
    assert!(!info.exists());
    let dead = probe(&h, "--probe");
    let stderr = String::from_utf8_lossy(&dead.stderr);
    assert_eq!(dead.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot connect to the plugin's status socket")
            && stderr.contains(&h.dp_dir().join(STATUS_SOCKET).display().to_string()),
        "{stderr}"
    );
    let end = tokio::time::timeout(WAIT, stream.message()).await.unwrap();
    assert!(matches!(end, Ok(None) | Err(_)), "{end:?}");
    h.shutdown().await;
}

/// Runs `sriov-device-plugin <flag> --device-plugin-path <dp>`: the probe
/// needs no other flag of the daemon's command line.
fn probe(h: &Harness, flag: &str) -> std::process::Output {
    Command::new(BIN)
        .arg(flag)
        .arg("--device-plugin-path")
        .arg(h.dp_dir())
        .output()
        .unwrap()
}

/// The plugin binary on the harness's node, config and directories.
fn plugin(h: &Harness) -> Command {
    let mut command = Command::new(BIN);
    command.args(h.plugin_flags()).stdout(Stdio::null());
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_stay_green_while_a_broken_config_edit_is_rejected_and_the_last_good_one_served() {
    let mut h = Harness::node(SimNodeSpec::new(prefix("pb"), 1, 2));
    h.write_config(GUIDE_CONFIG);
    let log = h.tmp.path().join("plugin.log");
    let _child = KillOnDrop(
        plugin(&h)
            // Only in the daemon's arguments: the probe must not need it.
            .arg("--resource-prefix=example.com")
            // Appending: truncating the file below then restarts it at offset 0.
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log)
                    .unwrap(),
            )
            .spawn()
            .unwrap(),
    );
    h.kubelet().next_registration().await;
    let green = |h: &Harness, why: &str| {
        for flag in ["--probe", "--probe=live", "--probe=ready"] {
            let out = probe(h, flag);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{flag} after {why}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    };
    green(&h, "start");
    let ready = probe(&h, "--probe=ready");
    assert_eq!(
        String::from_utf8_lossy(&ready.stdout).trim(),
        "ready: 1 resources registered and serving"
    );
    let mut client = h.client(GUIDE_SOCKET).await;
    let mut stream = list_and_watch(&mut client).await;
    assert_eq!(next_list(&mut stream).await.devices.len(), 2);

    for (config, reason) in [
        ("{", "is not valid JSON"),
        (
            r#"{"resourceList":[{"resourceName":"a","selectors":{"pfNames":["ens1f0#3-1"]}}]}"#,
            r#"range "3-1" starts after it ends"#,
        ),
    ] {
        h.write_config(config);
        wait_for("the rejection in the log", || {
            std::fs::read_to_string(&log).is_ok_and(|text| {
                text.lines()
                    .any(|l| l.contains("new config rejected; keeping the running one") && l.contains(reason))
            })
        })
        .await;
        green(&h, config);
        // Still serving the last good config.
        let options = client
            .get_device_plugin_options(kubelet_proto::v1beta1::Empty {})
            .await;
        assert!(options.is_ok(), "{options:?}");
        let vf = h.node.vf(0, 1).pci.to_string();
        allocate_one(&h, GUIDE_SOCKET, std::slice::from_ref(&vf)).await;
        assert!(h.dp_dir().join(GUIDE_SOCKET).exists());
        // Truncate the log so the next case sees its own line.
        std::fs::write(&log, "").unwrap();
    }
    // A good edit is applied again and the probes stay green.
    h.write_config(&GUIDE_CONFIG.replace("cx5_sriov_switchdev", "cx5_again"));
    let registration = h.kubelet().next_registration().await;
    assert_eq!(registration.resource_name, "mellanox.com/cx5_again");
    green(&h, "a good edit");
    h.shutdown().await;
}

#[test]
fn ready_probe_says_which_resource_is_not_registered() {
    let tmp = tempfile::tempdir().unwrap();
    let dp = tmp.path().join("dp");
    std::fs::create_dir(&dp).unwrap();
    let node =
        simnode::SimNode::up(SimNodeSpec::new(prefix("pr"), 1, 1).with_sysfs_root(tmp.path().join("sys")))
            .unwrap();
    let config = tmp.path().join("config.json");
    std::fs::write(&config, GUIDE_CONFIG).unwrap();
    // No kubelet: never registered.
    let _child = KillOnDrop(
        Command::new(BIN)
            .arg("--config-file")
            .arg(&config)
            .arg("--device-plugin-path")
            .arg(&dp)
            .arg("--device-info-dir")
            .arg(tmp.path().join("devinfo"))
            .arg("--registration-mode=kubelet-socket")
            .env("SRIOV_SYSFS_ROOT", node.sysfs_root())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let probe = |flag: &str| {
        Command::new(BIN)
            .arg(flag)
            .arg("--device-plugin-path")
            .arg(&dp)
            .output()
            .unwrap()
    };
    let deadline = std::time::Instant::now() + WAIT;
    while probe("--probe=live").status.code() != Some(0) {
        assert!(std::time::Instant::now() < deadline, "never live");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = probe("--probe=ready");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "/readyz: HTTP 503: resource mellanox.com/cx5_sriov_switchdev: not registered with the kubelet"
        ),
        "{stderr}"
    );
    drop(_child);
    node.down().unwrap();
}
