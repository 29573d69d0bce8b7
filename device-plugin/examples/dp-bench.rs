//! Benchmark of the device plugin on a simulated 8 PF x 127 VF node.
//!
//! Prints: discovery time, time to the first `ListAndWatch` response,
//! `Allocate` latency p50/p99, health-change propagation (uplink set down
//! over netlink until the stream shows the VFs unhealthy), and the plugin
//! process's resident memory. Needs root (it creates links).
//!
//! ```text
//! cargo build --release -p sriov-device-plugin --bins --examples
//! target/release/examples/dp-bench            # or: --bin PATH/sriov-device-plugin
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

fn plugin_binary() -> Result<PathBuf, String> {
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--bin" {
            return args
                .next()
                .map(PathBuf::from)
                .ok_or("--bin needs a path".to_string());
        }
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

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
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

    // Discovery, in-process, best of 10 after one warm-up.
    let config = config::parse(CONFIG, "intel.com")?;
    let sysfs = Sysfs::new(node.sysfs_root());
    let mut times = Vec::new();
    let mut count = 0;
    for _ in 0..11 {
        let started = Instant::now();
        let found = discover(&sysfs, &config, &HashSet::new())?;
        times.push(started.elapsed());
        count = found.resources[0].len();
    }
    times.remove(0);
    times.sort();
    println!(
        "discovery of {count} VFs: median {:.2?}, best {:.2?}",
        percentile(&times, 0.5),
        times[0]
    );

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
    let started = Instant::now();
    let child = KillOnDrop(
        Command::new(&binary)
            .arg("--config-file")
            .arg(&config_file)
            .arg("--device-plugin-path")
            .arg(&dp)
            .arg("--device-info-dir")
            .arg(tmp.path().join("devinfo"))
            .arg("--sysfs-root")
            .arg(node.sysfs_root())
            .arg("--log-level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let pid = child.0.id();
    registrations.recv().await.ok_or("kubelet channel closed")?;
    println!("start to registration: {:.2?}", started.elapsed());

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
    drop(stream);
    drop(child);
    kubelet.stop().await;
    node.down()?;
    Ok(())
}
