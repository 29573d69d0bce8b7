//! The Kube-OVN stand-ins proved on their own: the API-server stand-in through the real kube-rs
//! client, the `kube-ovn` shim stand-in against a recording CNI server (both reply shapes and an
//! error), and the controller stand-in writing the real OVN NB (root; skipped without OVN).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::wait::await_condition;
use serde_json::{json, Value};
use tokio_stream::StreamExt;

use integration_tests::kubeovn::annotations::{self as ann};
use integration_tests::kubeovn::apiserver::ApiServer;
use integration_tests::kubeovn::controller::{nb_of, Controller, ControllerConfig, Mode};
use integration_tests::kubeovn::http::{full, Body};
use integration_tests::kubeovn::protocol::{CniRequest, FlatReply, IpConfig, IpsReply, Route};
use integration_tests::kubeovn::shim::{ReplyShape, REPLY_ENV};
use integration_tests::kubeovn::store::{NewPod, SubnetSpec};
use integration_tests::kubeovn::{install_shim, SHIM_PLUGIN};
use integration_tests::logical::{self, Subnet};
use integration_tests::multus::{CniEnv, NetworkSelection, PodRef};
use integration_tests::nad::{Nad, GUIDE_NAD};
use integration_tests::ovn_central::{CentralOptions, OvnCentral};
use testbed::cmd::Cmd;
use testbed::names::{base_dir, unique_prefix};
use testbed::netns::Netns;

async fn client_for(api: &ApiServer, dir: &Path) -> kube::Client {
    let path = dir.join("kubeconfig");
    api.write_kubeconfig(&path).unwrap();
    let kc = Kubeconfig::read_from(&path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

fn pod(ns: &str, name: &str, annotations: &[(&str, &str)]) -> NewPod {
    NewPod {
        namespace: ns.into(),
        name: name.into(),
        node_name: Some("node-a".into()),
        annotations: annotations
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_gets_pod_and_subnet_and_sees_404_as_api_error() {
    let api = ApiServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let client = client_for(&api, dir.path()).await;
    api.store()
        .create_pod(pod(
            "default",
            "nginx-overlay",
            &[(ann::DEFAULT_NETWORK, "default/sriov")],
        ))
        .unwrap();
    api.store().put_subnet(&SubnetSpec {
        mtu: Some(1400),
        ..SubnetSpec::from_logical(&Subnet::vlan0(100))
    });

    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let p = pods.get("nginx-overlay").await.unwrap();
    assert_eq!(p.metadata.name.as_deref(), Some("nginx-overlay"));
    assert_eq!(
        p.metadata.annotations.unwrap_or_default()[ann::DEFAULT_NETWORK],
        "default/sriov"
    );
    assert_eq!(p.spec.unwrap().node_name.as_deref(), Some("node-a"));
    let listed = pods
        .list(&kube::api::ListParams::default().fields("metadata.name=nginx-overlay"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);

    match pods.get("absent").await {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 404);
            assert_eq!(s.reason, "NotFound");
            assert_eq!(s.message, "pods \"absent\" not found");
        }
        other => panic!("expected a 404 Status, got {other:?}"),
    }

    let gvk = GroupVersionKind::gvk("kubeovn.io", "v1", "Subnet");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "subnets");
    let subnets: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    let s = subnets.get("vlan0").await.unwrap();
    assert_eq!(s.data["spec"]["mtu"], 1400);
    assert_eq!(s.data["spec"]["cidrBlock"], "10.10.204.0/24");
    assert_eq!(s.data["spec"]["gateway"], "10.10.204.254");
    assert_eq!(s.data["spec"]["provider"], "ovn");
    assert_eq!(s.data["spec"]["vlan"], "vlan0");
    match subnets.get("nope").await {
        Err(kube::Error::Api(s)) => {
            assert_eq!((s.code, s.reason.as_str()), (404, "NotFound"));
            assert_eq!(s.message, "subnets.kubeovn.io \"nope\" not found");
        }
        other => panic!("expected a 404 Status, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_watch_and_await_condition_see_a_late_annotation() {
    let api = ApiServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let client = client_for(&api, dir.path()).await;
    let created = api.store().create_pod(pod("default", "late", &[])).unwrap();
    let rv = created["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let allocated = ann::key("sriov.default.ovn", ann::ALLOCATED);
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");

    // Plain watch from the pod's resourceVersion: the next event is the annotation change.
    let wp = WatchParams::default().fields("metadata.name=late");
    let mut stream = Box::pin(pods.watch(&wp, &rv).await.unwrap());
    let store = Arc::clone(api.store());
    let key = allocated.clone();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        store
            .patch_pod_annotations("default", "late", &[(key, Some("true".into()))])
            .unwrap();
    });
    let ev = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("no watch event within 10 s")
        .unwrap()
        .unwrap();
    writer.join().unwrap();
    match ev {
        WatchEvent::Modified(p) => {
            assert_eq!(p.metadata.annotations.unwrap_or_default()[&allocated], "true");
        }
        other => panic!("expected MODIFIED, got {other:?}"),
    }

    // kube-runtime's await_condition (list + watch with a field selector) on a later change.
    let routed = ann::key("sriov.default.ovn", ann::ROUTED);
    let store = Arc::clone(api.store());
    let key = routed.clone();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        store
            .patch_pod_annotations("default", "late", &[(key, Some("true".into()))])
            .unwrap();
    });
    let cond_key = routed.clone();
    let started = Instant::now();
    let got = tokio::time::timeout(
        Duration::from_secs(10),
        await_condition(pods.clone(), "late", move |p: Option<&Pod>| {
            p.and_then(|p| p.metadata.annotations.as_ref())
                .is_some_and(|a| a.get(&cond_key).is_some_and(|v| v == "true"))
        }),
    )
    .await
    .expect("condition not met within 10 s")
    .unwrap()
    .unwrap();
    writer.join().unwrap();
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert_eq!(got.metadata.annotations.unwrap()[&routed], "true");

    // A watch from an older version replays what happened since, as the real server does
    // within its history window.
    let before = api.store().resource_version().to_string();
    api.store()
        .patch_pod_annotations("default", "late", &[("replayed".into(), Some("yes".into()))])
        .unwrap();
    let mut stream = Box::pin(pods.watch(&wp, &before).await.unwrap());
    let ev = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("no replayed event")
        .unwrap()
        .unwrap();
    match ev {
        WatchEvent::Modified(p) => assert_eq!(p.metadata.annotations.unwrap()["replayed"], "yes"),
        other => panic!("expected the replayed MODIFIED, got {other:?}"),
    }

    // timeoutSeconds ends the stream (kube-runtime then re-watches).
    let short = WatchParams::default().fields("metadata.name=late").timeout(1);
    let mut stream = Box::pin(pods.watch(&short, "0").await.unwrap());
    let drained = tokio::time::timeout(Duration::from_secs(5), async {
        let mut n = 0;
        while stream.next().await.is_some() {
            n += 1;
        }
        n
    })
    .await
    .expect("watch did not end after timeoutSeconds");
    assert_eq!(
        drained, 1,
        "a watch without resourceVersion starts with the pod as ADDED"
    );

    // A deletion is seen as DELETED by a watch from the last version.
    let last = api.store().resource_version().to_string();
    let mut stream = Box::pin(pods.watch(&wp, &last).await.unwrap());
    api.store().delete_pod("default", "late").unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(matches!(ev, WatchEvent::Deleted(_)), "{ev:?}");
}

/// A CNI server on a unix socket answering ADD with `add` and DEL with `del` (status, body) and
/// recording the requests (path, JSON body).
struct RecordingServer {
    requests: Arc<Mutex<Vec<(String, Value)>>>,
    _rt: tokio::runtime::Runtime,
}

impl RecordingServer {
    fn start(socket: &Path, add: (u16, String), del: (u16, String)) -> RecordingServer {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let requests = Arc::new(Mutex::new(vec![]));
        let listener = {
            let _guard = rt.enter();
            tokio::net::UnixListener::bind(socket).unwrap()
        };
        let seen = Arc::clone(&requests);
        rt.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let seen = Arc::clone(&seen);
                let (add, del) = (add.clone(), del.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let seen = Arc::clone(&seen);
                        let (add, del) = (add.clone(), del.clone());
                        async move {
                            let path = req.uri().path().to_string();
                            let reply = if path.ends_with("/del") { del } else { add };
                            let body: Bytes = req.into_body().collect().await?.to_bytes();
                            let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                            seen.lock().unwrap().push((path, json));
                            let mut resp: Response<Body> = Response::new(full(reply.1));
                            *resp.status_mut() = hyper::StatusCode::from_u16(reply.0).unwrap();
                            Ok::<_, hyper::Error>(resp)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        RecordingServer { requests, _rt: rt }
    }

    fn requests(&self) -> Vec<(String, Value)> {
        self.requests.lock().unwrap().clone()
    }
}

/// Runs the installed shim like the Multus stand-in does (env + netconf on stdin).
fn run_shim(shim: &Path, command: &str, conf: &Value, netns: &str, shape: ReplyShape) -> (bool, Value) {
    let out = Cmd::new(shim)
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", "c0ffee")
        .env("CNI_NETNS", netns)
        .env("CNI_IFNAME", "eth0")
        .env(
            "CNI_ARGS",
            "IgnoreUnknown=true;K8S_POD_NAMESPACE=default;K8S_POD_NAME=nginx-overlay;K8S_POD_INFRA_CONTAINER_ID=c0ffee",
        )
        .env("CNI_PATH", "/nonexistent")
        .env(REPLY_ENV, shape.env_value())
        .stdin(conf.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v = if stdout.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
    };
    (out.status.success(), v)
}

/// The guide NAD's first plugin as Multus hands it over: `name`, `cniVersion`, `deviceID` added,
/// `server_socket` pointed at the test's socket.
fn shim_conf(socket: &Path) -> Value {
    let nad = &Nad::parse_all(GUIDE_NAD, Path::new("guide.yaml")).unwrap()[0];
    let mut conf = nad.plugins().unwrap()[0].clone();
    conf.insert("name".into(), json!("kube-ovn"));
    conf.insert("cniVersion".into(), json!("0.3.1"));
    conf.insert("deviceID".into(), json!("0000:84:00.2"));
    conf.insert("server_socket".into(), json!(socket));
    conf.insert(
        "routes".into(),
        json!([{"dst": "10.96.0.0/12", "gw": "10.16.0.1"}]),
    );
    Value::Object(conf)
}

/// The pod netns the shim sets its IPv6 sysctls in: a fresh netns as root (never the host's),
/// else the shim's own, where writing fails with a permission error the shim skips.
struct PodNetns {
    _ns: Option<Netns>,
    path: String,
}

impl PodNetns {
    fn new() -> PodNetns {
        if !nix::unistd::geteuid().is_root() {
            return PodNetns {
                _ns: None,
                path: "/proc/self/ns/net".into(),
            };
        }
        let prefix = unique_prefix();
        let _ = std::fs::remove_dir(base_dir(&prefix));
        let ns = Netns::create(&format!("{prefix}-shim")).unwrap();
        PodNetns {
            path: ns.path(),
            _ns: Some(ns),
        }
    }

    fn sysctl(&self, key: &str) -> Option<String> {
        let ns = self._ns.as_ref()?;
        Cmd::new("ip")
            .args(["netns", "exec", ns.name(), "sysctl", "-n", key])
            .run()
            .ok()
            .map(|v| v.trim().to_string())
    }
}

fn flat_reply() -> FlatReply {
    FlatReply {
        protocol: "IPv4".into(),
        address: "10.16.0.5".into(),
        mac_address: "00:00:00:16:00:05".into(),
        cidr: "10.16.0.0/16".into(),
        gateway: "10.16.0.1".into(),
        routes: None,
        mtu: 1400,
        nicname: "eth0".into(),
        ..FlatReply::default()
    }
}

fn ips_reply() -> IpsReply {
    IpsReply {
        ips: Some(vec![IpConfig {
            protocol: "IPv4".into(),
            ip: "10.16.0.5".into(),
            cidr: "10.16.0.0/16".into(),
            gateway: "10.16.0.1".into(),
        }]),
        mac_address: "00:00:00:16:00:05".into(),
        mtu: 1400,
        nicname: "eth0".into(),
        ..IpsReply::default()
    }
}

#[test]
fn shim_sends_kube_ovn_request_and_reads_both_reply_shapes_alike() {
    let dir = tempfile::tempdir().unwrap();
    let shim = install_shim(dir.path()).unwrap();
    assert_eq!(shim.file_name().unwrap(), SHIM_PLUGIN);
    let pod_ns = PodNetns::new();
    let netns = pod_ns.path.as_str();
    let mut results = vec![];
    for (shape, reply) in [
        (ReplyShape::Flat, serde_json::to_string(&flat_reply()).unwrap()),
        (ReplyShape::Ips, serde_json::to_string(&ips_reply()).unwrap()),
    ] {
        let socket = dir.path().join(format!("{}.sock", shape.env_value()));
        let server = RecordingServer::start(&socket, (200, reply), (204, String::new()));
        let conf = shim_conf(&socket);
        let (ok, result) = run_shim(&shim, "ADD", &conf, netns, shape);
        assert!(ok, "{result}");
        let reqs = server.requests();
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0].0, "/api/v1/add");
        assert_eq!(
            reqs[0].1,
            json!({
                "cni_type": "kube-ovn",
                "pod_name": "nginx-overlay",
                "pod_namespace": "default",
                "container_id": "c0ffee",
                "net_ns": netns,
                "if_name": "eth0",
                "provider": "sriov.default.ovn",
                "routes": [{"dst": "10.96.0.0/12", "gw": "10.16.0.1"}],
                "dns": {},
                "vf_driver": "",
                "deviceID": "0000:84:00.2",
                "vhost_user_socket_volume_name": "",
                "vhost_user_socket_name": "",
                "vhost_user_socket_consumption": "",
            })
        );
        let parsed: CniRequest = serde_json::from_value(reqs[0].1.clone()).unwrap();
        assert_eq!(
            parsed.routes,
            Some(vec![Route {
                destination: "10.96.0.0/12".into(),
                gateway: "10.16.0.1".into()
            }])
        );
        results.push(result);
    }
    assert_eq!(
        results[0], results[1],
        "both reply shapes must give the same CNI result"
    );
    assert_eq!(
        results[0],
        json!({
            "cniVersion": "0.3.1",
            "interfaces": [{"name": "eth0", "mac": "00:00:00:16:00:05", "sandbox": netns}],
            "ips": [{"version": "4", "interface": 0, "address": "10.16.0.5/16", "gateway": "10.16.0.1"}],
            "routes": [{"dst": "0.0.0.0/0", "gw": "10.16.0.1"}],
        })
    );
    for key in [
        "net.ipv6.conf.all.disable_ipv6",
        "net.ipv6.conf.default.accept_ra",
    ] {
        if let Some(v) = pod_ns.sysctl(key) {
            assert_eq!(v, "0", "{key} in the pod netns");
        }
    }
}

#[test]
fn shim_del_sends_no_add_only_fields_and_accepts_only_204() {
    let dir = tempfile::tempdir().unwrap();
    let shim = install_shim(dir.path()).unwrap();
    let socket = dir.path().join("del.sock");
    let server = RecordingServer::start(&socket, (500, String::new()), (204, String::new()));
    let conf = shim_conf(&socket);
    let (ok, out) = run_shim(&shim, "DEL", &conf, "/run/netns/gone", ReplyShape::Flat);
    assert!(ok && out.is_null(), "{out}");
    let (path, body) = server.requests().remove(0);
    assert_eq!(path, "/api/v1/del");
    assert_eq!(body["net_ns"], "/run/netns/gone");
    assert_eq!(body["routes"], json!(null));
    assert_eq!(body["deviceID"], "0000:84:00.2");

    let socket = dir.path().join("del200.sock");
    let _server = RecordingServer::start(&socket, (500, String::new()), (200, "{}".into()));
    let (ok, err) = run_shim(
        &shim,
        "DEL",
        &shim_conf(&socket),
        "/run/netns/gone",
        ReplyShape::Flat,
    );
    assert!(!ok);
    assert_eq!(
        err,
        json!({"code": 11, "msg": "RPC failed", "details": "delete ip return 200 {}"})
    );
}

#[test]
fn shim_reports_server_errors_and_missing_socket_as_cni_errors() {
    let dir = tempfile::tempdir().unwrap();
    let shim = install_shim(dir.path()).unwrap();
    let pod_ns = PodNetns::new();
    let netns = pod_ns.path.as_str();
    for shape in [ReplyShape::Flat, ReplyShape::Ips] {
        let socket = dir.path().join(format!("err-{}.sock", shape.env_value()));
        let body = json!({"error": "pod default/nginx-overlay provider sriov.default.ovn: wait annotations: timed out"});
        let _server = RecordingServer::start(&socket, (500, body.to_string()), (204, String::new()));
        let (ok, err) = run_shim(&shim, "ADD", &shim_conf(&socket), netns, shape);
        assert!(!ok);
        assert_eq!(
            err,
            json!({"code": 11, "msg": "RPC failed",
                   "details": "request ip return 500 pod default/nginx-overlay provider sriov.default.ovn: wait annotations: timed out"})
        );
    }
    let (ok, err) = run_shim(
        &shim,
        "ADD",
        &shim_conf(&dir.path().join("absent.sock")),
        netns,
        ReplyShape::Flat,
    );
    assert!(!ok);
    assert_eq!(err["code"], 11);
    let details = err["details"].as_str().unwrap();
    assert!(
        details.starts_with("Post \"http://dummy/api/v1/add\": dial unix"),
        "{details}"
    );

    let mut no_socket = shim_conf(Path::new(""));
    no_socket.as_object_mut().unwrap().remove("server_socket");
    let (ok, err) = run_shim(&shim, "ADD", &no_socket, netns, ReplyShape::Flat);
    assert!(!ok);
    assert_eq!(
        (err["code"].as_u64(), err["msg"].as_str()),
        (Some(7), Some("Invalid Configuration"))
    );
}

#[test]
fn multus_standin_runs_guide_nad_through_shim_then_portmap() {
    let dir = tempfile::tempdir().unwrap();
    install_shim(dir.path()).unwrap();
    if !Path::new("/usr/lib/cni/portmap").is_file() {
        eprintln!("skipped: no /usr/lib/cni/portmap");
        return;
    }
    let pod_ns = PodNetns::new();
    let socket = dir.path().join("kube-ovn-daemon.sock");
    let server = RecordingServer::start(
        &socket,
        (200, serde_json::to_string(&ips_reply()).unwrap()),
        (204, String::new()),
    );
    let nad = Nad::parse_all(GUIDE_NAD, Path::new("guide.yaml"))
        .unwrap()
        .remove(0);
    let mut local = serde_json::Map::new();
    local.insert("server_socket".into(), json!(socket));
    let env = CniEnv {
        cni_path: vec![dir.path().to_path_buf(), "/usr/lib/cni".into()],
        node_netns: None,
        env: vec![(REPLY_ENV.to_string(), ReplyShape::Ips.env_value().to_string())],
        node_local: vec![(SHIM_PLUGIN.to_string(), local)],
    };
    let pod = PodRef {
        name: "nginx-overlay".into(),
        namespace: "default".into(),
        uid: "u1".into(),
        container_id: "c0ffee".into(),
        netns_path: pod_ns.path.clone(),
        netns: String::new(),
    };
    let sel = NetworkSelection {
        name: "sriov".into(),
        namespace: "default".into(),
        ..NetworkSelection::default()
    };
    let att = env.add(&nad, &sel, &pod, "eth0", Some("0000:84:00.2")).unwrap();
    assert_eq!(att.result["ips"][0]["address"], "10.16.0.5/16");
    env.del(&att).unwrap();
    let reqs = server.requests();
    let paths: Vec<&str> = reqs.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, ["/api/v1/add", "/api/v1/del"]);
    for (_, body) in &reqs {
        assert_eq!(body["deviceID"], "0000:84:00.2");
        assert_eq!(body["provider"], "sriov.default.ovn");
        assert_eq!(body["net_ns"], pod_ns.path.as_str());
    }
}

fn ovn_available() -> bool {
    let root = nix::unistd::geteuid().is_root();
    let tools = Cmd::new("ovn-nbctl").arg("--version").ok();
    if !(root && tools) {
        eprintln!("skipped: needs root and OVN (root={root}, ovn-nbctl={tools})");
    }
    root && tools
}

/// OVN central with `subnets` as logical switches, and the API-server stand-in serving them;
/// the private directory goes last.
struct Fixture {
    api: ApiServer,
    central: OvnCentral,
    _dir: DirGuard,
}

impl Fixture {
    fn start(subnets: &[Subnet]) -> Fixture {
        let prefix = unique_prefix();
        let dir = DirGuard(base_dir(&prefix));
        let central =
            OvnCentral::start(&Path::new(&dir.0).join("central"), CentralOptions::default()).unwrap();
        let api = ApiServer::start().unwrap();
        for s in subnets {
            logical::create_underlay(&central, s).unwrap();
            api.store().put_subnet(&SubnetSpec::from_logical(s));
        }
        Fixture {
            api,
            central,
            _dir: dir,
        }
    }
}

struct DirGuard(String);

impl Drop for DirGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn wait_annotation(api: &ApiServer, name: &str, key: &str, within: Duration) -> Option<(String, Duration)> {
    let started = Instant::now();
    while started.elapsed() < within {
        if let Some(v) = api
            .store()
            .pod("default", name)
            .and_then(|p| p.pointer("/metadata/annotations").cloned())
            .and_then(|a| a.get(key).and_then(Value::as_str).map(str::to_string))
        {
            return Some((v, started.elapsed()));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

#[test]
fn controller_creates_port_in_nb_and_annotates_late_then_deletes_port() {
    if !ovn_available() {
        return;
    }
    let overlay = Subnet::ovn_default();
    let fixture = Fixture::start(std::slice::from_ref(&overlay));
    let (central, api) = (&fixture.central, &fixture.api);
    let nads = Nad::parse_all(GUIDE_NAD, Path::new("guide.yaml")).unwrap();
    let alloc_delay = Duration::from_millis(400);
    let routed_delay = Duration::from_millis(300);
    let config = ControllerConfig::new(nads, vec![overlay.clone()], alloc_delay, routed_delay);
    let controller = Controller::start(Arc::clone(api.store()), nb_of(central), config).unwrap();

    // The guide's overlay pod: the NAD replaces the default network, so only its provider.
    let provider = "sriov.default.ovn";
    let started = Instant::now();
    api.store()
        .create_pod(pod(
            "default",
            "nginx-overlay",
            &[
                (ann::DEFAULT_NETWORK, "default/sriov"),
                (&ann::key(provider, ann::LOGICAL_SWITCH), "ovn-default"),
            ],
        ))
        .unwrap();
    let (allocated, _) = wait_annotation(
        api,
        "nginx-overlay",
        &ann::key(provider, ann::ALLOCATED),
        Duration::from_secs(10),
    )
    .expect("no allocation within 10 s");
    let allocated_after = started.elapsed();
    assert_eq!(allocated, "true");
    assert!(
        allocated_after >= alloc_delay,
        "allocated after {allocated_after:?}"
    );
    let pod_now = api.store().pod("default", "nginx-overlay").unwrap();
    let annotations: BTreeMap<String, String> =
        serde_json::from_value(pod_now["metadata"]["annotations"].clone()).unwrap();
    assert!(
        !annotations.contains_key(&ann::key(provider, ann::ROUTED)),
        "routed must come later"
    );
    let a = |s: &str| {
        annotations
            .get(&ann::key(provider, s))
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(a(ann::IP_ADDRESS), "10.16.0.2");
    assert_eq!(a(ann::MAC_ADDRESS), "00:00:00:16:00:02");
    assert_eq!(a(ann::CIDR), "10.16.0.0/16");
    assert_eq!(a(ann::GATEWAY), "10.16.0.1");
    assert_eq!(a(ann::LOGICAL_SWITCH), "ovn-default");
    assert_eq!(a(ann::POD_NIC_TYPE), "veth-pair");
    assert_eq!(a(ann::LOGICAL_ROUTER), "ovn-cluster");
    assert!(!annotations.contains_key(&ann::key(ann::OVN_PROVIDER, ann::ALLOCATED)));

    let lsp = "nginx-overlay.default.sriov.default.ovn";
    let nb = |args: &[&str]| central.nbctl(args).unwrap().trim().to_string();
    assert_eq!(
        nb(&["get", "logical_switch_port", lsp, "addresses"]),
        "[\"00:00:00:16:00:02 10.16.0.2\"]"
    );
    assert_eq!(
        nb(&["get", "logical_switch_port", lsp, "external_ids"]),
        "{ls=ovn-default, pod=\"default/nginx-overlay\", vendor=kube-ovn}"
    );
    assert_eq!(nb(&["get", "logical_switch_port", lsp, "port_security"]), "[]");
    assert!(nb(&["lsp-list", "ovn-default"]).contains(lsp));

    let (routed, _) = wait_annotation(
        api,
        "nginx-overlay",
        &ann::key(provider, ann::ROUTED),
        Duration::from_secs(10),
    )
    .expect("no routed within 10 s");
    assert_eq!(routed, "true");
    assert!(started.elapsed() >= alloc_delay + routed_delay);
    assert_eq!(controller.allocations("default", "nginx-overlay").len(), 1);

    api.store().delete_pod("default", "nginx-overlay").unwrap();
    let gone = testbed::daemon::wait_for(Duration::from_secs(10), || {
        (!nb(&["lsp-list", "ovn-default"]).contains(lsp)).then_some(())
    });
    assert!(gone.is_some(), "port {lsp} not deleted with the pod");
    assert!(controller.allocations("default", "nginx-overlay").is_empty());
}

#[test]
fn controller_names_default_provider_port_pod_dot_ns_and_never_mode_writes_nothing() {
    if !ovn_available() {
        return;
    }
    let overlay = Subnet::ovn_default();
    let underlay = Subnet::vlan0(100);
    let fixture = Fixture::start(&[overlay.clone(), underlay.clone()]);
    let (central, api) = (&fixture.central, &fixture.api);
    let nads = Nad::parse_all(GUIDE_NAD, Path::new("guide.yaml")).unwrap();

    let mut never = ControllerConfig::new(
        nads.clone(),
        vec![overlay.clone(), underlay.clone()],
        Duration::ZERO,
        Duration::ZERO,
    );
    never.mode = Mode::Never;
    let silent = Controller::start(Arc::clone(api.store()), nb_of(central), never).unwrap();
    api.store().create_pod(pod("default", "ignored", &[])).unwrap();
    assert!(wait_annotation(
        api,
        "ignored",
        &ann::key("ovn", ann::ALLOCATED),
        Duration::from_millis(500)
    )
    .is_none());
    assert!(!central
        .nbctl(["lsp-list", "ovn-default"])
        .unwrap()
        .contains("ignored"));
    drop(silent);

    // The guide's underlay pod: an attachment (net1) plus the primary `ovn` network.
    let config = ControllerConfig::new(
        nads,
        vec![overlay, underlay],
        Duration::from_millis(100),
        Duration::from_millis(100),
    );
    let _controller = Controller::start(Arc::clone(api.store()), nb_of(central), config).unwrap();
    let provider = "sriov.default.ovn";
    api.store()
        .create_pod(pod(
            "default",
            "nginx-underlay",
            &[
                (
                    ann::NETWORKS,
                    r#"[{"name": "sriov", "namespace": "default", "default-route": ["10.10.204.254"]}]"#,
                ),
                (&ann::key(provider, ann::LOGICAL_SWITCH), "vlan0"),
            ],
        ))
        .unwrap();
    for p in [provider, "ovn"] {
        wait_annotation(
            api,
            "nginx-underlay",
            &ann::key(p, ann::ROUTED),
            Duration::from_secs(10),
        )
        .unwrap_or_else(|| panic!("{p} not routed"));
    }
    let pod_now = api.store().pod("default", "nginx-underlay").unwrap();
    let annotations: HashMap<String, String> =
        serde_json::from_value(pod_now["metadata"]["annotations"].clone()).unwrap();
    assert_eq!(annotations[&ann::key(provider, ann::IP_ADDRESS)], "10.10.204.101");
    assert_eq!(annotations[&ann::key(provider, ann::VLAN_ID)], "100");
    assert_eq!(
        annotations[&ann::key(provider, ann::PROVIDER_NETWORK)],
        "underlay-offload"
    );
    assert!(!annotations.contains_key(&ann::key(provider, ann::LOGICAL_ROUTER)));
    assert_eq!(annotations[&ann::key("ovn", ann::LOGICAL_SWITCH)], "ovn-default");
    // The primary network in the pod's netns: port `<pod>.<ns>`; the attachment's keeps the provider.
    let primary = central
        .nbctl([
            "get",
            "logical_switch_port",
            "nginx-underlay.default",
            "addresses",
        ])
        .unwrap();
    assert!(
        primary.contains(&annotations[&ann::key("ovn", ann::IP_ADDRESS)]),
        "{primary}"
    );
    let ls = central
        .nbctl([
            "get",
            "logical_switch_port",
            "nginx-underlay.default.sriov.default.ovn",
            "external_ids:ls",
        ])
        .unwrap();
    assert_eq!(ls.trim(), "vlan0");
    api.store().delete_pod("default", "ignored").unwrap();
}
