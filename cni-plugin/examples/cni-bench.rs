//! Benchmark: `sriov-ovs` ADD/DEL latency (IPs from `runtimeConfig.ips`) against a shell baseline
//! doing the same steps with `ip` and `ovs-vsctl`, in the same run, on a simulated node with a
//! real userspace OVS; then 16 concurrent ADDs of each.
//!
//! `cargo build --release -p sriov-ovs && cargo run --release -p sriov-ovs --example cni-bench [-- ITERATIONS]`
//! (root; uses the release plugin binary next to the example). `BENCH_PREVIOUS=PATH` adds a
//! third series, interleaved with the others: another build of `sriov-ovs` (say, the previous
//! release) on the same node, so two builds compare under the same load.

use nix::sched::{setns, CloneFlags};
use serde_json::json;
use simnode::{SimNode, SimNodeSpec};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use testbed::cmd::Cmd;
use testbed::cni::CniCall;
use testbed::names::unique_name;
use testbed::netns::Netns;
use testbed::ovs::OvsInstance;

const VFS: u32 = 16;

struct Bench {
    sim: SimNode,
    ovs: OvsInstance,
    bridge: String,
    dir: tempfile::TempDir,
    plugin: PathBuf,
    previous: Option<PathBuf>,
    pods: Vec<Netns>,
    node: String,
}

fn run_ok(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Bench {
    fn conf(&self, vf: u32) -> serde_json::Value {
        json!({
            "cniVersion": "1.0.0", "name": "bench", "type": "sriov-ovs",
            "deviceID": self.sim.vf(0, vf).pci.to_string(),
            "bridge": self.bridge,
            "ovsdbSocket": format!("unix:{}", self.ovs.socket_path().display()),
            "ovnInstalledTimeout": 0,
            "stateDir": self.dir.path().join("state"),
            "logLevel": std::env::var("BENCH_LOG").unwrap_or("warning".into()),
            "logFile": std::env::var("BENCH_LOG_FILE").unwrap_or("/dev/null".into()),
            "runtimeConfig": {"ips": [format!("10.66.{}.{}/16", vf / 200, vf % 200 + 2)]},
        })
    }

    fn cid(vf: u32) -> String {
        format!("bench{vf:02}0123456789abcdef")
    }

    fn plugin(&self, verb: &str, vf: u32) -> Duration {
        self.run(&self.plugin, verb, vf)
    }

    fn run(&self, plugin: &Path, verb: &str, vf: u32) -> Duration {
        let start = Instant::now();
        let cmd = match std::env::var("BENCH_WRAP") {
            Ok(w) => {
                let mut parts = w.split_whitespace();
                Cmd::new(parts.next().expect("wrapper")).args(parts).arg(plugin)
            }
            Err(_) => Cmd::new(plugin),
        };
        let call = CniCall {
            args: format!("K8S_POD_NAMESPACE=bench;K8S_POD_NAME=p{vf}"),
            ..CniCall::new(verb, &Self::cid(vf), &self.pods[vf as usize].path(), "eth0")
        };
        let out = call
            .env("SRIOV_SYSFS_ROOT", self.sim.sysfs_root().display().to_string())
            .apply(cmd)
            .stdin(self.conf(vf).to_string())
            .output()
            .expect("plugin");
        let took = start.elapsed();
        assert!(
            out.status.success(),
            "{verb} failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        took
    }

    /// The same steps as the plugin, with `ip` and `ovs-vsctl`.
    fn shell(&self, verb: &str, vf: u32) -> Duration {
        let l = self.sim.vf(0, vf);
        let (vfn, rep) = (l.netdev_name().expect("vf"), l.representor_name().expect("rep"));
        let pod = self.pods[vf as usize].name();
        let new = format!("{}_h", &Self::cid(vf)[..12]);
        let ip = &self.conf(vf)["runtimeConfig"]["ips"][0];
        let db = format!("--db=unix:{}", self.ovs.socket_path().display());
        let script = if verb == "ADD" {
            format!(
                "set -e
ip link set {vfn} down
ip link set {vfn} alias sriov-ovs:{pci}
ip link set {vfn} netns {pod}
ip -n {pod} link set {vfn} name eth0
ip -n {pod} link set eth0 up
ip -n {pod} addr add {ip} dev eth0
ip link set {rep} down
ip link set {rep} name {new}
ovs-vsctl {db} add-port {br} {new} -- set Interface {new} external_ids:iface-id=p{vf}.bench external_ids:pod_name=p{vf} external_ids:pod_namespace=bench external_ids:vendor=sriov-ovs
ip link set {new} up
ovs-vsctl {db} get Interface {new} ofport >/dev/null
",
                pci = l.pci,
                ip = ip.as_str().expect("ip"),
                br = self.bridge
            )
        } else {
            format!(
                "set -e
ovs-vsctl {db} --if-exists del-port {br} {new}
ip link set {new} down
ip link set {new} name {rep}
ip link set {rep} up
ip -n {pod} link set eth0 down
ip -n {pod} link set eth0 name {vfn}
ip -n {pod} link set {vfn} netns {node}
ip link set {vfn} alias ''
",
                br = self.bridge,
                node = self.node
            )
        };
        let start = Instant::now();
        run_ok(Command::new("sh").arg("-c").arg(&script), verb);
        start.elapsed()
    }
}

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64() * 1000.0
}

fn main() {
    let iterations: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(50);
    let plugin = std::env::current_exe()
        .expect("exe")
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("sriov-ovs");
    assert!(
        plugin.exists(),
        "build the plugin first: cargo build --release -p sriov-ovs ({})",
        plugin.display()
    );
    let ovs = OvsInstance::start().expect("ovs");
    let bridge = unique_name("bb");
    ovs.add_bridge(&bridge).expect("bridge");
    let dir = tempfile::tempdir().expect("tmp");
    let prefix: String = unique_name("b").chars().take(9).collect();
    let netns = ovs.netns().expect("netns").to_string();
    let sim = SimNode::up(
        SimNodeSpec::new(prefix, 1, VFS)
            .with_netns(netns.clone())
            .with_sysfs_root(dir.path().join("sys"))
            .with_state_dir(dir.path().join("sim")),
    )
    .expect("simnode");
    let pods: Vec<Netns> = (0..VFS)
        .map(|_| Netns::unique("bpod").expect("netns add"))
        .collect();
    // Run everything (plugin and baseline) from inside the node's namespace.
    let ns = std::fs::File::open(format!("/run/netns/{netns}")).expect("node netns");
    setns(&ns, CloneFlags::CLONE_NEWNET).expect("setns");
    let b = Bench {
        sim,
        ovs,
        bridge,
        dir,
        plugin,
        previous: std::env::var_os("BENCH_PREVIOUS").map(PathBuf::from),
        pods,
        node: netns,
    };

    let (mut p_add, mut p_del, mut s_add, mut s_del) = (vec![], vec![], vec![], vec![]);
    let (mut prev_add, mut prev_del) = (vec![], vec![]);
    for _ in 0..iterations {
        p_add.push(b.plugin("ADD", 0));
        p_del.push(b.plugin("DEL", 0));
        s_add.push(b.shell("ADD", 0));
        s_del.push(b.shell("DEL", 0));
        if let Some(prev) = &b.previous {
            prev_add.push(b.run(prev, "ADD", 0));
            prev_del.push(b.run(prev, "DEL", 0));
        }
    }
    // The kernel's share: moving the VF netdev into the pod and back, one `ip` call each
    // (an `ip` process alone costs about 2 ms here).
    let (mut mv_in, mut mv_out, mut noop) = (vec![], vec![], vec![]);
    {
        let vfn = b.sim.vf(0, 1).netdev_name().expect("vf").to_string();
        let pod = b.pods[1].name().to_string();
        for _ in 0..iterations.min(30) {
            let t = Instant::now();
            run_ok(
                Command::new("ip").args(["link", "set", &vfn, "netns", &pod]),
                "move in",
            );
            mv_in.push(t.elapsed());
            let t = Instant::now();
            run_ok(
                Command::new("ip").args(["-n", &pod, "link", "set", &vfn, "netns", &b.node]),
                "move out",
            );
            mv_out.push(t.elapsed());
            let t = Instant::now();
            run_ok(Command::new("ip").args(["link", "show", "dev", &vfn]), "show");
            noop.push(t.elapsed());
        }
    }
    println!(
        "kernel floor: `ip link set VF netns POD` p50 {:.1} ms, back {:.1} ms; `ip link show` (process cost) p50 {:.1} ms",
        pct(&mut mv_in, 0.5),
        pct(&mut mv_out, 0.5),
        pct(&mut noop, 0.5)
    );
    println!("sequential, {iterations} iterations on one VF (ms)");
    println!("{:<22}{:>9}{:>9}", "", "p50", "p99");
    for (name, v) in [
        ("sriov-ovs ADD", &mut p_add),
        ("shell ADD", &mut s_add),
        ("sriov-ovs DEL", &mut p_del),
        ("shell DEL", &mut s_del),
    ] {
        println!("{name:<22}{:>9.1}{:>9.1}", pct(v, 0.5), pct(v, 0.99));
    }
    if let Some(prev) = &b.previous {
        println!("previous build: {}", prev.display());
        for (name, v) in [("previous ADD", &mut prev_add), ("previous DEL", &mut prev_del)] {
            println!("{name:<22}{:>9.1}{:>9.1}", pct(v, 0.5), pct(v, 0.99));
        }
    }
    println!(
        "speed-up at p50: ADD {:.1}x, DEL {:.1}x",
        pct(&mut s_add, 0.5) / pct(&mut p_add, 0.5),
        pct(&mut s_del, 0.5) / pct(&mut p_del, 0.5)
    );

    for (name, shell) in [("sriov-ovs", false), ("shell", true)] {
        let start = Instant::now();
        let mut each: Vec<Duration> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..VFS)
                .map(|vf| {
                    let b = &b;
                    s.spawn(move || {
                        if shell {
                            b.shell("ADD", vf)
                        } else {
                            b.plugin("ADD", vf)
                        }
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().expect("thread")).collect()
        });
        let wall = start.elapsed();
        println!(
            "{VFS} concurrent ADDs, {name}: wall {:.1} ms, per ADD p50 {:.1} ms p99 {:.1} ms",
            wall.as_secs_f64() * 1000.0,
            pct(&mut each, 0.5),
            pct(&mut each, 0.99)
        );
        std::thread::scope(|s| {
            for vf in 0..VFS {
                let b = &b;
                s.spawn(move || {
                    if shell {
                        b.shell("DEL", vf)
                    } else {
                        b.plugin("DEL", vf)
                    }
                });
            }
        });
    }
}
