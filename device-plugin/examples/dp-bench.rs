//! Benchmark of the device plugin on a simulated 8 PF x 127 VF node (every
//! VF and representor netdev present).
//!
//! Prints: start-up, exec to `Register` seen by a kubelet stand-in, over
//! `--starts N` (default 10) fresh processes of the real binary (min, p50,
//! max) with the median of each start-up phase the plugin's debug log
//! reports; in-process discovery (warm, for comparison); time to the first
//! `ListAndWatch` response; `Allocate` latency p50/p99; health-change
//! propagation (uplink set down over netlink until the stream shows the VFs
//! unhealthy); and the plugin process's resident memory. Needs root (it
//! creates links).
//!
//! ```text
//! cargo build --release -p sriov-device-plugin --bins --examples
//! target/release/examples/dp-bench            # or: --bin PATH/sriov-device-plugin --starts 20
//! target/release/examples/dp-bench --metrics  # and print the plugin's metrics at the end
//! ```

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kubelet_proto::v1beta1::device_plugin_client::DevicePluginClient;
use kubelet_proto::v1beta1::registration_server::{Registration, RegistrationServer};
use kubelet_proto::v1beta1::{
    AllocateRequest, ContainerAllocateRequest, Empty, ListAndWatchResponse, RegisterRequest, UNHEALTHY,
};
use rtnetlink::LinkUnspec;
use simnode::{SimNode, SimNodeSpec};
use sriov_device_plugin::discovery::discover;
use sriov_device_plugin::rdma::RdmaMemory;
use sriov_device_plugin::transport::{connect, SocketServer};
use sriov_host::Sysfs;
use sriovdp_config as config;
use tokio::sync::{mpsc, watch};
use tonic::transport::Server;

const CONFIG: &str = r#"{"resourceList": [{"resourcePrefix": "mellanox.com",
  "resourceName": "cx5_sriov_switchdev",
  "selectors": {"vendors": ["15b3"], "devices": ["1018"], "drivers": ["mlx5_core"]}}]}"#;
const SOCKET: &str = "mellanox.com_cx5_sriov_switchdev.sock";
const PFS: u32 = 8;
const VFS: u32 = 127;
const ALLOCATIONS: usize = 2000;

struct Kubelet(mpsc::UnboundedSender<RegisterRequest>);

#[tonic::async_trait]
impl Registration for Kubelet {
    async fn register(
        &self,
        request: tonic::Request<RegisterRequest>,
    ) -> Result<tonic::Response<Empty>, tonic::Status> {
        let _ = self.0.send(request.into_inner());
        Ok(tonic::Response::new(Empty {}))
    }
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The value after `name` on the command line.
fn flag(name: &str) -> Option<String> {
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == name {
            return args.next();
        }
    }
    None
}

fn plugin_binary() -> Result<PathBuf, String> {
    if let Some(path) = flag("--bin") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let path = exe
        .parent()
        .and_then(|examples| examples.parent())
        .map(|dir| dir.join("sriov-device-plugin"))
        .ok_or("cannot locate the target directory")?;
    if path.exists() {
        Ok(path)
    } else {
        Err(format!(
            "{} not found: build it first (cargo build --release -p sriov-device-plugin --bins --examples) or pass --bin PATH",
            path.display()
        ))
    }
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// CPU time the process `pid` has used so far, all threads (the first
/// field of each thread's `schedstat`, in ns): unlike wall time, it hardly
/// moves when other processes compete for the cores.
fn cpu_time(pid: u32) -> Option<Duration> {
    let mut total = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(total))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// `GET /metrics` at `address` (HTTP/1.0: the plugin closes after answering).
fn scrape(address: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address)?;
    stream.write_all(b"GET /metrics HTTP/1.0\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or(response))
}

/// A `Duration` as its `Debug` form prints it (`1.234ms`, `56.7µs`).
fn parse_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let seconds = match unit {
        "s" => number,
        "ms" => number / 1e3,
        "µs" | "us" => number / 1e6,
        "ns" => number / 1e9,
        _ => return None,
    };
    Some(Duration::from_secs_f64(seconds))
}

/// `(phase, elapsed)` of each "start-up phase done" line of a JSON log.
fn phases_of(log: &str) -> Vec<(String, Duration)> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|json| json["fields"]["message"] == "start-up phase done")
        .filter_map(|json| {
            let fields = &json["fields"];
            Some((
                fields["phase"].as_str()?.to_string(),
                parse_duration(fields["elapsed"].as_str()?)?,
            ))
        })
        .collect()
}

async fn next(stream: &mut tonic::Streaming<ListAndWatchResponse>) -> ListAndWatchResponse {
    stream
        .message()
        .await
        .expect("stream failed")
        .expect("stream ended")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let binary = plugin_binary()?;
    let tmp = tempfile::tempdir()?;
    let prefix = format!("dpbn{:05}", std::process::id() % 100_000);
    print!("simulated node {PFS} PFs x {VFS} VFs ... ");
    let started = Instant::now();
    let node = SimNode::up(SimNodeSpec::new(prefix, PFS, VFS).with_sysfs_root(tmp.path().join("sys")))?;
    println!("up in {:.1?}", started.elapsed());

    // The plugin as its own process, against a test kubelet.
    let dp = tmp.path().join("dp");
    std::fs::create_dir_all(&dp)?;
    let config_file = tmp.path().join("config.json");
    std::fs::write(&config_file, CONFIG)?;
    let (tx, mut registrations) = mpsc::unbounded_channel();
    let (stop, _) = watch::channel(false);
    let kubelet = SocketServer::start(
        &dp.join("kubelet.sock"),
        Server::builder().add_service(RegistrationServer::new(Kubelet(tx))),
        stop,
    )?;
    let plugin = |log_level: &str, stderr: Stdio, extra: &[String]| -> std::io::Result<Child> {
        Command::new(&binary)
            .args(extra)
            .arg("--config-file")
            .arg(&config_file)
            .arg("--device-plugin-path")
            .arg(&dp)
            .arg("--device-info-dir")
            .arg(tmp.path().join("devinfo"))
            .arg("--sysfs-root")
            .arg(node.sysfs_root())
            .arg(format!("--log-level={log_level}"))
            .arg("--log-format=json")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
    };

    // Start-up: exec to Register, fresh processes (each its own first
    // discovery, allocations and page faults), with the plugin's phases.
    let starts: usize = flag("--starts").and_then(|n| n.parse().ok()).unwrap_or(10);
    let mut totals = Vec::new();
    let mut cpu = Vec::new();
    let mut phases: Vec<(String, Vec<Duration>)> = Vec::new();
    let mut start_rss = None;
    for run in 0..starts {
        let log = tmp.path().join("start.log");
        let started = Instant::now();
        let child = KillOnDrop(plugin("debug", Stdio::from(std::fs::File::create(&log)?), &[])?);
        registrations.recv().await.ok_or("kubelet channel closed")?;
        totals.push(started.elapsed());
        cpu.extend(cpu_time(child.0.id()));
        if run == 0 {
            start_rss = rss_kib(child.0.id());
        }
        // SIGTERM: the plugin removes its sockets before the next run.
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.0.id())?);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)?;
        let mut child = child;
        tokio::task::spawn_blocking(move || child.0.wait()).await??;
        for (phase, elapsed) in phases_of(&std::fs::read_to_string(&log)?) {
            match phases.iter_mut().find(|(p, _)| *p == phase) {
                Some((_, times)) => times.push(elapsed),
                None => phases.push((phase, vec![elapsed])),
            }
        }
    }
    totals.sort();
    println!(
        "start-up, exec to Register seen by the kubelet stand-in ({starts} fresh processes): min {:.2?}, p50 {:.2?}, max {:.2?}",
        totals[0],
        percentile(&totals, 0.5),
        totals[totals.len() - 1]
    );
    cpu.sort();
    if !cpu.is_empty() {
        println!(
            "  CPU time of the plugin until then (all threads): min {:.2?}, p50 {:.2?}, max {:.2?}",
            cpu[0],
            percentile(&cpu, 0.5),
            cpu[cpu.len() - 1]
        );
    }
    for (phase, times) in &mut phases {
        times.sort();
        println!("  phase {phase:<18} median {:.2?}", percentile(times, 0.5));
    }
    match start_rss {
        Some(kib) => println!(
            "  resident memory once registered: {:.1} MiB",
            kib as f64 / 1024.0
        ),
        None => println!("  resident memory once registered: unknown"),
    }

    // Discovery in-process, warm (best of 10 after one warm-up): what a
    // rediscovery in a running plugin costs, not what start-up gets.
    let config = config::parse(CONFIG, "intel.com")?;
    let sysfs = Sysfs::new(node.sysfs_root());
    let mut times = Vec::new();
    let mut count = 0;
    for _ in 0..11 {
        let started = Instant::now();
        let found = discover(&sysfs, &config, &HashSet::new(), &mut RdmaMemory::default())?;
        times.push(started.elapsed());
        count = found.resources[0].len();
    }
    times.remove(0);
    times.sort();
    println!(
        "discovery of {count} VFs in-process, warm: median {:.2?}, best {:.2?}",
        percentile(&times, 0.5),
        times[0]
    );

    // One more plugin, quiet, for the rest.
    // With --metrics, it serves metrics too and the run ends with a scrape.
    let metrics = std::env::args().any(|a| a == "--metrics").then(|| {
        let address = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr());
        address.map(|a| a.to_string())
    });
    let metrics = metrics.transpose()?;
    let extra: Vec<String> = metrics.iter().map(|a| format!("--metrics-address={a}")).collect();
    let child = KillOnDrop(plugin("warn", Stdio::null(), &extra)?);
    let pid = child.0.id();
    registrations.recv().await.ok_or("kubelet channel closed")?;

    let started = Instant::now();
    let mut client = DevicePluginClient::new(connect(&dp.join(SOCKET), Duration::from_secs(5)).await?);
    let mut stream = client.list_and_watch(Empty {}).await?.into_inner();
    let first = next(&mut stream).await;
    println!(
        "first ListAndWatch response ({} devices, connect included): {:.2?}",
        first.devices.len(),
        started.elapsed()
    );

    let ids: Vec<String> = first.devices.iter().map(|d| d.id.clone()).collect();
    let mut latencies = Vec::with_capacity(ALLOCATIONS);
    for i in 0..ALLOCATIONS {
        let request = AllocateRequest {
            container_requests: vec![ContainerAllocateRequest {
                devices_ids: vec![ids[i % ids.len()].clone()],
            }],
        };
        let started = Instant::now();
        client.allocate(request).await?;
        latencies.push(started.elapsed());
    }
    latencies.sort();
    println!(
        "Allocate x{ALLOCATIONS} (1 VF, device-info file written): p50 {:.1?}, p99 {:.1?}, max {:.1?}",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies[latencies.len() - 1]
    );

    // Health: set PF 7's uplink down over netlink; time until the stream
    // shows its 127 VFs unhealthy.
    let (connection, handle, _) = rtnetlink::new_connection()?;
    tokio::spawn(connection);
    let uplink = node.pf(PFS - 1).uplink.clone();
    let mut samples = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        handle
            .link()
            .set(LinkUnspec::new_with_index(uplink.ifindex).down().build())
            .execute()
            .await?;
        loop {
            let list = next(&mut stream).await;
            if list.devices.iter().filter(|d| d.health == UNHEALTHY).count() == VFS as usize {
                break;
            }
        }
        samples.push(started.elapsed());
        handle
            .link()
            .set(LinkUnspec::new_with_index(uplink.ifindex).up().build())
            .execute()
            .await?;
        loop {
            let list = next(&mut stream).await;
            if list.devices.iter().all(|d| d.health != UNHEALTHY) {
                break;
            }
        }
    }
    samples.sort();
    println!(
        "health change (uplink down -> {VFS} VFs Unhealthy on the stream): median {:.2?}, max {:.2?}",
        percentile(&samples, 0.5),
        samples[samples.len() - 1]
    );
    match rss_kib(pid) {
        Some(kib) => println!("plugin resident memory: {:.1} MiB", kib as f64 / 1024.0),
        None => println!("plugin resident memory: unknown"),
    }
    if let Some(address) = &metrics {
        // The exposition after the runs above, without histogram buckets.
        println!("\n$ curl -s http://{address}/metrics | grep -v _bucket");
        for line in scrape(address)?.lines().filter(|l| !l.contains("_bucket")) {
            println!("{line}");
        }
    }
    drop(stream);
    drop(child);
    kubelet.stop().await;
    node.down()?;
    Ok(())
}
