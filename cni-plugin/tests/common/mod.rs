//! Shared fixture of the end-to-end tests: a simulated node (sysfs tree + veth VFs) inside the
//! network namespace of a private OVS, pod namespaces, and the plugin binary run in that node.
#![allow(dead_code)]

use ovsdb_client::testing::{unique_name, OvsInstance};
use serde_json::{json, Value};
use simnode::{SimNode, SimNodeSpec};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use tempfile::TempDir;

/// The plugin binary.
pub const BIN: &str = env!("CARGO_BIN_EXE_sriov-ovs");

/// A pod network namespace, deleted on drop.
pub struct PodNs {
    pub name: String,
}

impl PodNs {
    pub fn new() -> PodNs {
        let name = unique_name("pod");
        sh("ip", &["netns", "add", &name]);
        sh("ip", &["-n", &name, "link", "set", "lo", "up"]);
        PodNs { name }
    }
    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }
    /// `ip -n POD args`.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut a = vec!["-n", self.name.as_str()];
        a.extend_from_slice(args);
        sh("ip", &a)
    }
    /// Emulates the kernel's asynchronous namespace cleanup: the namespace is gone at once, the
    /// VF comes back to `node_ns` only after `delay` (it waits in a limbo namespace meanwhile).
    /// Join the returned thread to know it is back.
    pub fn vanish_returning_later(
        &self,
        ifname: &str,
        node_ns: &str,
        delay: std::time::Duration,
    ) -> std::thread::JoinHandle<()> {
        let limbo = PodNs::new();
        sh(
            "ip",
            &["-n", &self.name, "link", "set", ifname, "netns", &limbo.name],
        );
        sh("ip", &["netns", "del", &self.name]);
        let (ifname, node_ns) = (ifname.to_string(), node_ns.to_string());
        std::thread::spawn(move || {
            std::thread::sleep(delay);
            limbo.vanish_returning(&ifname, &node_ns);
        })
    }

    /// Emulates the kernel returning a VF to the host when the namespace dies, then deletes it.
    pub fn vanish_returning(&self, ifname: &str, node_ns: &str) {
        sh("ip", &["-n", &self.name, "link", "set", ifname, "netns", node_ns]);
        sh("ip", &["netns", "del", &self.name]);
    }
}

impl Drop for PodNs {
    fn drop(&mut self) {
        if Path::new(&self.path()).exists() {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.name])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Runs a command and returns stdout; panics on failure.
pub fn sh(prog: &str, args: &[&str]) -> String {
    let out = Command::new(prog).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{prog} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One plugin invocation's outcome.
#[derive(Debug)]
pub struct Outcome {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout not JSON ({e}): {:?} stderr: {}", self.stdout, self.stderr))
    }
    pub fn code(&self) -> u64 {
        assert!(!self.ok, "expected failure, got {}", self.stdout);
        self.json()["code"].as_u64().unwrap()
    }
    #[track_caller]
    pub fn expect_ok(&self) -> &Self {
        assert!(self.ok, "plugin failed: {} stderr: {}", self.stdout, self.stderr);
        self
    }
}

/// A CNI invocation to run.
#[derive(Clone, Debug)]
pub struct Call {
    pub verb: &'static str,
    pub container_id: String,
    pub netns: String,
    pub ifname: String,
    pub args: String,
    pub extra_env: Vec<(String, String)>,
}

impl Call {
    pub fn new(verb: &'static str, container_id: &str, netns: &str, ifname: &str) -> Call {
        Call {
            verb,
            container_id: container_id.into(),
            netns: netns.into(),
            ifname: ifname.into(),
            args: format!("IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=pod-{container_id};K8S_POD_INFRA_CONTAINER_ID={container_id}"),
            extra_env: Vec::new(),
        }
    }
    pub fn verb(&self, verb: &'static str) -> Call {
        Call { verb, ..self.clone() }
    }
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
        let mut call = call.clone();
        call.extra_env.push(("SRIOV_OVS_PAUSE_AT".into(), step.into()));
        call.extra_env
            .push(("SRIOV_OVS_PAUSE_FILE".into(), pause.display().to_string()));
        let mut cmd = self.command(&call);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(conf.to_string().as_bytes())
            .unwrap();
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
        let mut cmd = self.command(call);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        let out = child.wait_with_output().unwrap();
        Outcome {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// The command that runs the plugin in the node (not started).
    pub fn command(&self, call: &Call) -> Command {
        self.plugin_command(BIN, call)
    }

    /// Any CNI plugin binary run in the node.
    pub fn plugin_command(&self, bin: &str, call: &Call) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", self.ns(), bin])
            .env("CNI_COMMAND", call.verb)
            .env("CNI_CONTAINERID", &call.container_id)
            .env("CNI_NETNS", &call.netns)
            .env("CNI_IFNAME", &call.ifname)
            .env("CNI_ARGS", &call.args)
            .env("CNI_PATH", "/usr/lib/cni")
            .env("SRIOV_SYSFS_ROOT", self.sim.sysfs_root());
        for (k, v) in &call.extra_env {
            cmd.env(k, v);
        }
        cmd
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
            })
            .collect();
        links.join("\n")
    }

    /// Links of the node (names, flags, MTU, MAC, alias, altnames) and the bridge's ports, for before/after comparisons.
    pub fn snapshot(&self) -> String {
        let links = self.snapshot_links();
        let ports = self.ovs.vsctl(&["list-ports", &self.bridge]).unwrap();
        let ifaces = self
            .ovs
            .vsctl(&["--columns=name,external_ids", "list", "Interface"])
            .unwrap();
        format!("{links}\n--ports--\n{ports}\n--ifaces--\n{ifaces}")
    }

    pub fn ports(&self) -> Vec<String> {
        self.ovs
            .vsctl(&["list-ports", &self.bridge])
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    pub fn iface_col(&self, iface: &str, col: &str) -> String {
        self.ovs
            .vsctl(&["get", "Interface", iface, col])
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
