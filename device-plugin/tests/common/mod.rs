//! Test harness: a simulated node, the test bed's kubelet stand-in serving `Registration` on a
//! temporary `kubelet.sock`, and the daemon running in-process.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use kubelet_proto::pluginregistration::registration_client::RegistrationClient;
use kubelet_proto::pluginregistration::{InfoRequest, PluginInfo, RegistrationStatus};
use kubelet_proto::v1beta1::device_plugin_client::DevicePluginClient;
use kubelet_proto::v1beta1::{
    AllocateRequest, ContainerAllocateRequest, ContainerAllocateResponse, Empty, ListAndWatchResponse,
};
use simnode::{SimNode, SimNodeSpec};
use sriov_device_plugin::daemon::{self, Settings};
use sriov_device_plugin::transport::connect;
pub use testbed::kubelet::Kubelet;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic::Streaming;

/// Generous bound for things that should happen "at once".
pub const WAIT: Duration = Duration::from_secs(15);

/// The guide's config: CX-5 VFs on mlx5_core as mellanox.com/cx5_sriov_switchdev.
pub const GUIDE_CONFIG: &str = r#"{
  "resourceList": [{
    "resourcePrefix": "mellanox.com",
    "resourceName": "cx5_sriov_switchdev",
    "selectors": {"vendors": ["15b3"], "devices": ["1018"], "drivers": ["mlx5_core"]}
  }]
}"#;

/// Socket of the guide's resource.
pub const GUIDE_SOCKET: &str = "mellanox.com_cx5_sriov_switchdev.sock";

/// A short prefix unique to this test and process (simnode allows 9 chars).
pub fn prefix(tag: &str) -> String {
    assert_eq!(tag.len(), 2);
    format!("dp{tag}{:05}", std::process::id() % 100_000)
}

/// A node, directories, a kubelet and the daemon.
pub struct Harness {
    pub node: SimNode,
    pub tmp: tempfile::TempDir,
    pub kubelet: Option<Kubelet>,
    shutdown: Option<oneshot::Sender<()>>,
    pub daemon: Option<JoinHandle<Result<(), daemon::DaemonError>>>,
}

impl Harness {
    /// Brings up a node from `spec` (its sysfs root is set here) and a kubelet.
    pub fn node(spec: SimNodeSpec) -> Harness {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let tmp = tempfile::tempdir().unwrap();
        let node = SimNode::up(spec.with_sysfs_root(tmp.path().join("sys"))).unwrap();
        for dir in ["dp", "devinfo", "config"] {
            std::fs::create_dir_all(tmp.path().join(dir)).unwrap();
        }
        let kubelet = Some(Kubelet::registrar(&tmp.path().join("dp")).unwrap());
        Harness {
            node,
            tmp,
            kubelet,
            shutdown: None,
            daemon: None,
        }
    }

    pub fn dp_dir(&self) -> PathBuf {
        self.tmp.path().join("dp")
    }

    pub fn devinfo_dir(&self) -> PathBuf {
        self.tmp.path().join("devinfo")
    }

    pub fn config_file(&self) -> PathBuf {
        self.tmp.path().join("config/config.json")
    }

    pub fn registry_dir(&self) -> PathBuf {
        self.tmp.path().join("registry")
    }

    pub fn settings(&self) -> Settings {
        Settings {
            config_file: self.config_file(),
            resource_prefix: "intel.com".to_string(),
            device_plugin_path: self.dp_dir(),
            sysfs_root: self.node.sysfs_root().to_path_buf(),
            device_info_dir: self.devinfo_dir(),
            plugin_registry_path: None,
            registration: sriov_device_plugin::registration::RegistrationMode::Auto,
            watch_uevents: false,
            unknown_keys: sriovdp_config::UnknownKeys::Reject,
            cdi_spec_dir: None,
            metrics_address: None,
        }
    }

    /// Writes the config atomically (like a ConfigMap update).
    pub fn write_config(&self, text: &str) {
        let temp = self.tmp.path().join("config/.config.json.tmp");
        std::fs::write(&temp, text).unwrap();
        std::fs::rename(&temp, self.config_file()).unwrap();
    }

    /// Starts the daemon with `settings`.
    pub fn start_with(&mut self, settings: Settings) {
        let (tx, rx) = oneshot::channel();
        self.shutdown = Some(tx);
        self.daemon = Some(tokio::spawn(daemon::run(settings, async move {
            let _ = rx.await;
        })));
    }

    /// Writes `config` and starts the daemon with default settings.
    pub fn start(&mut self, config: &str) {
        self.write_config(config);
        self.start_with(self.settings());
    }

    pub fn kubelet(&mut self) -> &mut Kubelet {
        self.kubelet.as_mut().unwrap()
    }

    /// A client of our socket `name`.
    pub async fn client(&self, name: &str) -> DevicePluginClient<Channel> {
        DevicePluginClient::new(connect(&self.dp_dir().join(name), WAIT).await.unwrap())
    }

    /// Stops the daemon and waits for it.
    pub async fn shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.daemon.take() {
            tokio::time::timeout(WAIT, task).await.unwrap().unwrap().unwrap();
        }
        if let Some(kubelet) = self.kubelet.take() {
            kubelet.stop();
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(task) = self.daemon.take() {
            task.abort();
        }
    }
}

/// Allocates `ids` for one container on our socket `socket`.
pub async fn allocate_one(h: &Harness, socket: &str, ids: &[String]) -> ContainerAllocateResponse {
    let mut client = h.client(socket).await;
    let mut response = client
        .allocate(AllocateRequest {
            container_requests: vec![ContainerAllocateRequest {
                devices_ids: ids.to_vec(),
            }],
        })
        .await
        .unwrap()
        .into_inner();
    response.container_responses.remove(0)
}

/// Opens ListAndWatch.
pub async fn list_and_watch(client: &mut DevicePluginClient<Channel>) -> Streaming<ListAndWatchResponse> {
    client.list_and_watch(Empty {}).await.unwrap().into_inner()
}

/// Next list on the stream.
pub async fn next_list(stream: &mut Streaming<ListAndWatchResponse>) -> ListAndWatchResponse {
    tokio::time::timeout(WAIT, stream.message())
        .await
        .expect("no list in time")
        .unwrap()
        .expect("stream ended")
}

/// Reads lists until `pred` holds.
pub async fn wait_list(
    stream: &mut Streaming<ListAndWatchResponse>,
    pred: impl Fn(&ListAndWatchResponse) -> bool,
) -> ListAndWatchResponse {
    loop {
        let list = next_list(stream).await;
        if pred(&list) {
            return list;
        }
    }
}

/// Health of device `id` in `list`.
pub fn health<'a>(list: &'a ListAndWatchResponse, id: &str) -> Option<&'a str> {
    list.devices
        .iter()
        .find(|d| d.id == id)
        .map(|d| d.health.as_str())
}

/// Runs `ip` with `args`, panicking on failure.
pub fn ip(args: &[&str]) {
    let status = std::process::Command::new("ip").args(args).status().unwrap();
    assert!(status.success(), "ip {args:?} failed");
}

/// Waits until `cond` holds (polling a file system condition in tests).
pub async fn wait_for(what: &str, cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A channel to the server on `socket`, retrying while the file exists but
/// nobody listens yet (between the server's `bind` and `listen`).
pub async fn connect_when_listening(socket: &Path) -> Channel {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match connect(socket, WAIT).await {
            Ok(channel) => return channel,
            Err(error) => assert!(
                tokio::time::Instant::now() < deadline,
                "{}: {error:?}",
                socket.display()
            ),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// What the kubelet's plugin watcher does with a new socket in
/// `plugins_registry`: `GetInfo`, then `NotifyRegistrationStatus`.
pub async fn plugin_watcher_registers(socket: &Path) -> PluginInfo {
    wait_for("plugin-watcher socket", || socket.exists()).await;
    let mut watcher = RegistrationClient::new(connect_when_listening(socket).await);
    let info = watcher.get_info(InfoRequest {}).await.unwrap().into_inner();
    watcher
        .notify_registration_status(RegistrationStatus {
            plugin_registered: true,
            error: String::new(),
        })
        .await
        .unwrap();
    info
}

/// A loopback address with a port free a moment ago (for `--metrics-address`).
pub fn free_tcp_address() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// `GET path` over HTTP/1.1 on `stream`; returns (status, body).
async fn http_get<S>(mut stream: S, path: &str) -> (u16, String)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut response))
        .await
        .expect("no HTTP answer in time")
        .unwrap();
    let response = String::from_utf8(response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("no end of HTTP headers");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("no HTTP status");
    (status, body.to_string())
}

/// `GET path` on the metrics address; returns (status, body).
pub async fn http_get_tcp(address: std::net::SocketAddr, path: &str) -> (u16, String) {
    http_get(tokio::net::TcpStream::connect(address).await.unwrap(), path).await
}

/// `GET path` on a Unix socket (the plugin's status socket); returns (status, body).
pub async fn http_get_unix(socket: &Path, path: &str) -> (u16, String) {
    http_get(tokio::net::UnixStream::connect(socket).await.unwrap(), path).await
}

/// The value of the sample `series` (name and labels as exposed) in a scrape.
pub fn sample(scrape: &str, series: &str) -> Option<f64> {
    scrape
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.parse().ok())
}

/// Scrapes `/metrics` at `address` until `series` satisfies `pred`; returns
/// that scrape.
pub async fn wait_sample(address: std::net::SocketAddr, series: &str, pred: impl Fn(f64) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, text) = http_get_tcp(address, "/metrics").await;
        assert_eq!(status, 200, "{text}");
        if sample(&text, series).is_some_and(&pred) {
            return text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {series}; last scrape:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A child process killed and reaped when dropped, so a failing test leaves
/// no plugin running.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Harness {
    /// The binary's flags for this harness's config, directories and sysfs tree.
    pub fn plugin_flags(&self) -> Vec<std::ffi::OsString> {
        let mut flags = Vec::new();
        for (flag, value) in [
            ("--config-file", self.config_file()),
            ("--device-plugin-path", self.dp_dir()),
            ("--device-info-dir", self.devinfo_dir()),
            ("--sysfs-root", self.node.sysfs_root().to_path_buf()),
        ] {
            flags.push(flag.into());
            flags.push(value.into_os_string());
        }
        flags
    }
}
