//! Shared fixture of the end-to-end tests: a simulated node (sysfs tree + veth VFs) inside the
//! network namespace of a private OVS, pod namespaces, and the plugin binary run in that node.
#![allow(dead_code)]

use serde_json::{json, Value};
use simnode::{SimNode, SimNodeSpec};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use tempfile::TempDir;
use testbed::cmd::Cmd;
pub use testbed::cni::{CniCall as Call, Outcome};
use testbed::names::unique_name;
pub use testbed::netns::Netns;
use testbed::ovs::OvsInstance;

/// The plugin binary.
pub const BIN: &str = env!("CARGO_BIN_EXE_sriov-ovs");

/// A fresh pod network namespace (deleted on drop).
pub fn pod_ns() -> Netns {
    Netns::unique("pod").unwrap()
}

/// Runs a command and returns stdout; panics on failure.
pub fn sh(prog: &str, args: &[&str]) -> String {
    Cmd::new(prog)
        .args(args)
        .run()
        .unwrap_or_else(|e| panic!("{}", sriov_logging::error_chain(&e)))
}

/// A simulated node with its own OVS.
pub struct Node {
    pub sim: SimNode,
    pub ovs: OvsInstance,
    pub bridge: String,
    pub dir: TempDir,
}

impl Node {
    pub fn new(vfs: u32) -> Node {
        Node::with(vfs, |s| s)
    }

    pub fn with(vfs: u32, tweak: impl FnOnce(SimNodeSpec) -> SimNodeSpec) -> Node {
        let ovs = OvsInstance::start().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let bridge = unique_name("br");
        ovs.add_bridge(&bridge).unwrap();
        let prefix = unique_name("s").chars().take(9).collect::<String>();
        let spec = SimNodeSpec::new(prefix, 1, vfs)
            .with_netns(ovs.netns().unwrap())
            .with_sysfs_root(dir.path().join("sys"))
            .with_state_dir(dir.path().join("simstate"));
        let sim = SimNode::up(tweak(spec)).unwrap();
        Node {
            sim,
            ovs,
            bridge,
            dir,
        }
    }

    pub fn ns(&self) -> &str {
        self.ovs.netns().unwrap()
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("cni-state")
    }

    pub fn vf_pci(&self, vf: u32) -> String {
        self.sim.vf(0, vf).pci.to_string()
    }

    pub fn vf_name(&self, vf: u32) -> String {
        self.sim.vf(0, vf).netdev_name().unwrap().to_string()
    }

    pub fn rep_name(&self, vf: u32) -> String {
        self.sim.vf(0, vf).representor_name().unwrap().to_string()
    }

    /// A netconf for VF `vf` in `version`, IPAM from host-local.
    pub fn conf(&self, version: &str, vf: u32) -> Value {
        json!({
            "cniVersion": version,
            "name": "sriov-test",
            "type": "sriov-ovs",
            "deviceID": self.vf_pci(vf),
            "bridge": self.bridge,
            "ovsdbSocket": format!("unix:{}", self.ovs.socket_path().display()),
            "ovnInstalledTimeout": 0,
            "stateDir": self.state_dir(),
            "logLevel": "debug",
            "ipam": {
                "type": "host-local",
                "subnet": "10.77.0.0/24",
                "gateway": "10.77.0.1",
                "routes": [{"dst": "0.0.0.0/0"}],
                "dataDir": self.dir.path().join("ipam"),
            },
        })
    }

    /// Runs the plugin inside the node's namespace.
    pub fn run(&self, call: &Call, conf: &Value) -> Outcome {
        self.run_raw(call, conf.to_string().as_bytes())
    }

    /// Starts the plugin in the background, paused at `step` until the returned pause file is removed.
    pub fn spawn_paused(&self, call: &Call, conf: &Value, step: &str) -> (std::process::Child, PathBuf) {
        let pause = self.dir.path().join(format!("pause-{}", unique_name("p")));
        std::fs::write(&pause, b"").unwrap();
        let call = call
            .clone()
            .env("SRIOV_OVS_PAUSE_AT", step)
            .env("SRIOV_OVS_PAUSE_FILE", pause.display().to_string());
        let mut cmd = self.plugin_cmd(BIN, &call).command();
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        // Written and closed at once, as Cmd::output does: the plugin reads it before pausing.
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), conf.to_string().as_bytes()).unwrap();
        let reached = pause.with_extension("reached");
        let start = std::time::Instant::now();
        while !reached.exists() {
            if let Ok(Some(status)) = child.try_wait() {
                let out = child.wait_with_output().unwrap();
                panic!(
                    "plugin exited ({status}) before {step}: {}",
                    String::from_utf8_lossy(&out.stdout)
                );
            }
            assert!(
                start.elapsed() < std::time::Duration::from_secs(60),
                "never reached {step}"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        (child, pause)
    }

    /// Runs the plugin with raw stdin.
    pub fn run_raw(&self, call: &Call, stdin: &[u8]) -> Outcome {
        self.run_plugin(BIN, call, stdin)
    }

    /// Runs any CNI plugin binary in the node.
    pub fn run_plugin(&self, bin: &str, call: &Call, stdin: &[u8]) -> Outcome {
        self.sim_call(call)
            .run(Path::new(bin), Some(self.ns()), stdin)
            .unwrap()
    }

    /// `call` with the node's simulated sysfs root.
    fn sim_call(&self, call: &Call) -> Call {
        call.clone()
            .env("SRIOV_SYSFS_ROOT", self.sim.sysfs_root().display().to_string())
    }

    /// Any CNI plugin binary run in the node (not started).
    pub fn plugin_cmd(&self, bin: &str, call: &Call) -> Cmd {
        self.sim_call(call).apply(Cmd::new(bin)).netns(Some(self.ns()))
    }

    /// `ip -n NODE args`.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut a = vec!["-n", self.ns()];
        a.extend_from_slice(args);
        sh("ip", &a)
    }

    /// Links of the node only (for when OVSDB is down).
    pub fn links(&self) -> String {
        self.snapshot_links()
    }

    fn snapshot_links(&self) -> String {
        let links: Vec<String> = self
            .ip(&["-o", "link", "show"])
            .lines()
            .map(|l| l.split_once(": ").map(|(_, r)| r.to_string()).unwrap_or_default())
            .map(|l| {
                l.replace("state UP", "")
                    .replace("state DOWN", "")
                    .replace("state LOWERLAYERDOWN", "")
                    .replace("state UNKNOWN", "")
                    .replace(",LOWER_UP", "")
                    .replace(",M-DOWN", "")
                    // Carrier is operational state: a veth whose peer came up just now shows
                    // NO-CARRIER for a moment.
                    .replace("NO-CARRIER,", "")
            })
            .collect();
        links.join("\n")
    }

    /// Links of the node (names, flags, MTU, MAC, alias, altnames) and the bridge's ports, for before/after comparisons.
    pub fn snapshot(&self) -> String {
        let links = self.snapshot_links();
        let ports = self.ovs.vsctl(["list-ports", &self.bridge]).unwrap();
        let ifaces = self
            .ovs
            .vsctl(["--columns=name,external_ids", "list", "Interface"])
            .unwrap();
        format!("{links}\n--ports--\n{ports}\n--ifaces--\n{ifaces}")
    }

    pub fn ports(&self) -> Vec<String> {
        self.ovs
            .vsctl(["list-ports", &self.bridge])
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    pub fn iface_col(&self, iface: &str, col: &str) -> String {
        self.ovs
            .vsctl(["get", "Interface", iface, col])
            .unwrap()
            .trim()
            .to_string()
    }

    pub fn link_exists(&self, name: &str) -> bool {
        Command::new("ip")
            .args(["-n", self.ns(), "link", "show", "dev", name])
            .output()
            .unwrap()
            .status
            .success()
    }
}

/// Whether `path` exists.
pub fn exists(path: &Path) -> bool {
    path.exists()
}
