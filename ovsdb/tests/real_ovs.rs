//! Tests against a real `ovsdb-server` and `ovs-vswitchd` (userspace datapath), each
//! test with its own private instance and network namespace. Run as root.

use std::time::Duration;

use nix::sys::signal::Signal;
use ovsdb_client::vswitch;
use ovsdb_client::{Client, Condition, Error, Operation};
use testbed::names::unique_name;
use testbed::ovs::{OvsDaemon, OvsInstance};

const LONG: Duration = Duration::from_secs(30);

fn ovs_with_bridge() -> (OvsInstance, String) {
    let ovs = OvsInstance::start().expect("start OVS");
    let br = unique_name("br");
    ovs.add_bridge(&br).expect("add bridge");
    (ovs, br)
}

/// A veth pair inside the instance's namespace, both ends up; returns the first end.
fn veth(ovs: &OvsInstance) -> String {
    let a = unique_name("va");
    let b = unique_name("vb");
    ovs.ip(["link", "add", &a, "type", "veth", "peer", "name", &b])
        .unwrap();
    ovs.ip(["link", "set", &a, "up"]).unwrap();
    ovs.ip(["link", "set", &b, "up"]).unwrap();
    a
}

/// An `echo` round trip: the session is alive and the server echoes the parameters.
async fn echo(client: &Client) -> Result<(), Error> {
    let got = client.call("echo", serde_json::json!(["ping"])).await?;
    assert_eq!(got, serde_json::json!(["ping"]));
    Ok(())
}

fn vsctl_get(ovs: &OvsInstance, args: &[&str]) -> String {
    ovs.vsctl(args).unwrap().trim().to_string()
}

#[tokio::test]
async fn add_port_for_veth_gets_real_ofport() {
    let (ovs, br) = ovs_with_bridge();
    let rep = veth(&ovs);
    let client = Client::connect(&ovs.endpoint()).await.unwrap();
    let vs = client.vswitch();
    assert!(vs.bridge_exists(&br).await.unwrap());
    let added = vs
        .add_port(&br, &rep)
        .external_id("iface-id", "pod.ns")
        .external_id("vendor", "sriov-ovs")
        .tag(Some(42))
        .execute()
        .await
        .unwrap();
    assert!(added.replaced.is_empty());
    let ofport = vs.wait_for_ofport(&rep, LONG).await.unwrap();
    assert!(ofport > 0);
    let shown = vsctl_get(&ovs, &["get", "Interface", &rep, "ofport"]);
    assert_eq!(shown, ofport.to_string());
    assert_eq!(vsctl_get(&ovs, &["get", "Port", &rep, "tag"]), "42");
    assert_eq!(vsctl_get(&ovs, &["port-to-br", &rep]), br);
    assert_eq!(
        vsctl_get(&ovs, &["get", "Interface", &rep, "external_ids:iface-id"]),
        "pod.ns"
    );
    let info = vs.interface(&rep).await.unwrap().unwrap();
    assert_eq!(info.uuid, added.interface);
    assert_eq!(info.ofport, Some(ofport));
    assert_eq!(info.error, None);
    let overview = vs.overview().await.unwrap();
    let port = overview.ports.iter().find(|p| p.name == rep).unwrap();
    assert_eq!(port.uuid, added.port);
    assert_eq!(port.bridge.as_deref(), Some(br.as_str()));
    assert_eq!(port.tag, Some(42));
}

#[tokio::test]
async fn del_port_is_idempotent() {
    let (ovs, br) = ovs_with_bridge();
    let rep = veth(&ovs);
    let client = Client::connect(&ovs.endpoint()).await.unwrap();
    let vs = client.vswitch();
    vs.add_port(&br, &rep).execute().await.unwrap();
    assert!(vs.del_port(&br, &rep).execute().await.unwrap());
    assert!(!vs.del_port(&br, &rep).execute().await.unwrap());
    assert_eq!(vsctl_get(&ovs, &["list-ports", &br]), "");
    assert!(vs.interface(&rep).await.unwrap().is_none());
    // Removing from a bridge that does not exist is also "nothing to do".
    assert!(!vs.del_port("nosuchbr", &rep).execute().await.unwrap());
}

#[tokio::test]
async fn del_port_leaves_ports_on_other_bridges() {
    let (ovs, br) = ovs_with_bridge();
    let client = Client::connect(&ovs.endpoint()).await.unwrap();
    let vs = client.vswitch();
    let port = unique_name("p");
    vs.add_port(&br, &port).execute().await.unwrap();
    let other = unique_name("bo");
    ovs.add_bridge(&other).unwrap();
    let err = vs.del_port(&other, &port).execute().await.unwrap_err();
    assert!(matches!(err, vswitch::Error::PortOnOtherBridge { .. }), "{err:?}");
    assert_eq!(vsctl_get(&ovs, &["list-ports", &br]), port);
    assert!(vs.del_port(&other, &port).any_bridge().execute().await.unwrap());
    assert_eq!(vsctl_get(&ovs, &["list-ports", &br]), "");
}

#[tokio::test]
async fn add_to_missing_bridge_is_typed_error_and_changes_nothing() {
    let (ovs, br) = ovs_with_bridge();
    let before = ovs.vsctl(["show"]).unwrap();
    let client = Client::connect(&ovs.endpoint()).await.unwrap();
    let vs = client.vswitch();
    let missing = unique_name("nobr");
    assert!(!vs.bridge_exists(&missing).await.unwrap());
    let port = unique_name("p");
    let err = vs.add_port(&missing, &port).execute().await.unwrap_err();
    assert!(
        matches!(&err, vswitch::Error::BridgeNotFound { bridge } if *bridge == missing),
        "{err:?}"
    );
    assert!(err.to_string().contains(&missing));
    assert_eq!(ovs.vsctl(["show"]).unwrap(), before);
    assert!(vs.interface(&port).await.unwrap().is_none());
    assert!(vs.overview().await.unwrap().ports.iter().all(|p| p.name != port));
    let _ = br;
}

#[tokio::test]
async fn add_port_replaces_stale_port() {
    let (ovs, br) = ovs_with_bridge();
    let client = Client::connect(&ovs.endpoint()).await.unwrap();
    let vs = client.vswitch();
    let port = unique_name("p");
    let first = vs
        .add_port(&br, &port)
        .external_id("owner", "old")
        .execute()
        .await
        .unwrap();
    let second = vs
        .add_port(&br, &port)
        .external_id("owner", "new")
        .execute()
        .await
        .unwrap();
    assert_ne!(first.port, second.port);
    assert_eq!(second.replaced.len(), 1);
    assert_eq!(second.replaced[0].bridge.as_deref(), Some(br.as_str()));
    assert_eq!(
        second.replaced[0].external_ids.get("owner").map(String::as_str),
        Some("old")
    );
    assert_eq!(vsctl_get(&ovs, &["list-ports", &br]), port);
    assert_eq!(
        vsctl_get(&ovs, &["get", "Interface", &port, "external_ids:owner"]),
        "new"
    );
    // A port of another name holding our interface name is replaced too.
    let other = unique_name("q");
    let third = vs
        .add_port(&br, &other)
        .iface_name(&port)
        .execute()
        .await
        .unwrap();
    assert_eq!(third.replaced.len(), 1);
    assert_eq!(third.replaced[0].name, port);
    assert_eq!(vsctl_get(&ovs, &["list-ports", &br]), other);
    assert_eq!(vsctl_get(&ovs, &["iface-to-br", &port]), br);
}

#[tokio::test]
async fn invalid_input_is_rejected_before_any_request() {
    let (ovs, br) = ovs_with_bridge();
    let client = Client::connect(&ovs.endpoint()).await.unwrap();
    let vs = client.vswitch();
    let err = vs.add_port(&br, "").execute().await.unwrap_err();
    assert!(matches!(err, vswitch::Error::InvalidInput { .. }));
    let err = vs.add_port(&br, "x").tag(Some(5000)).execute().await.unwrap_err();
    assert!(matches!(err, vswitch::Error::InvalidInput { .. }));
    assert_eq!(vsctl_get(&ovs, &["list-ports", &br]), "");
}

#[tokio::test]
async fn server_killed_mid_session_is_a_typed_error_not_a_hang() {
    let (ovs, br) = ovs_with_bridge();
    let client = Client::connect(&ovs.endpoint()).await.unwrap();
    let vs = client.vswitch();
    echo(&client).await.unwrap();
    let never = unique_name("nx");
    let waiter = {
        let vs = vs.clone();
        tokio::spawn(async move { vs.wait_for_ofport(&never, Duration::from_secs(600)).await })
    };
    // Make sure the monitor is in place before the kill (the interface lookup after it
    // goes through the same session, in order).
    assert!(!vs.bridge_exists("nosuch").await.unwrap());
    ovs.crash(OvsDaemon::OvsdbServer);
    let err = waiter.await.unwrap().unwrap_err();
    assert!(err.is_unreachable(), "{err:?}");
    let err = vs.bridge_exists(&br).await.unwrap_err();
    assert!(err.is_unreachable(), "{err:?}");
    let err = echo(&client).await.unwrap_err();
    assert!(matches!(err, Error::ConnectionClosed { .. }), "{err:?}");
    let err = Client::connect(&ovs.endpoint()).await.unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
}

#[tokio::test]
async fn connect_failure_names_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sock");
    let err = Client::connect(&format!("unix:{}", path.display()))
        .await
        .unwrap_err();
    assert!(matches!(&err, Error::Connect { endpoint, .. } if endpoint.contains(&*path.to_string_lossy())));
    assert!(err.to_string().contains(&*path.to_string_lossy()));
    let err = Client::connect("ssl:1.2.3.4:6640").await.unwrap_err();
    assert!(matches!(err, Error::Endpoint(_)));
}

#[tokio::test]
async fn raw_methods_and_transaction_errors() {
    let (ovs, br) = ovs_with_bridge();
    // A plain path works as well as unix:PATH.
    let client = Client::connect(&ovs.socket_path().to_string_lossy())
        .await
        .unwrap();
    echo(&client).await.unwrap();
    let dbs = client.call("list_dbs", serde_json::json!([])).await.unwrap();
    assert!(dbs.as_array().unwrap().contains(&"Open_vSwitch".into()), "{dbs}");
    let err = client
        .call("get_schema", serde_json::json!(["NoSuchDb"]))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Rpc { .. }), "{err:?}");
    let ops = vec![
        Operation::select("Bridge", vec![Condition::eq("name", br.as_str())], &["name"]),
        Operation::select("NoSuchTable", vec![], &[]),
    ];
    let err = client.transact("Open_vSwitch", ops).await.unwrap_err();
    match err {
        Error::Transaction { index, op, error, .. } => {
            assert_eq!((index, op), (1, "select"));
            assert!(!error.is_empty());
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_and_requests() {
    let (ovs, br) = ovs_with_bridge();
    let shared = Client::connect(&ovs.endpoint()).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let br = br.clone();
        let endpoint = ovs.endpoint();
        // Half share one session, half open their own.
        let client = if i % 2 == 0 {
            shared.clone()
        } else {
            Client::connect(&endpoint).await.unwrap()
        };
        let port = unique_name("c");
        tasks.push(tokio::spawn(async move {
            let vs = client.vswitch();
            vs.add_port(&br, &port)
                .interface_type("internal")
                .external_id("vendor", "sriov-ovs")
                .external_id("n", &i.to_string())
                .execute()
                .await
                .unwrap();
            vs.wait_for_ofport(&port, LONG).await.unwrap();
            port
        }));
    }
    let mut ports = Vec::new();
    for t in tasks {
        ports.push(t.await.unwrap());
    }
    let listed = ovs.vsctl(["list-ports", &br]).unwrap();
    for p in &ports {
        assert!(listed.lines().any(|l| l == p), "{p} missing from {listed}");
    }
    let overview = shared.vswitch().overview().await.unwrap();
    let found: Vec<_> = overview
        .ports
        .iter()
        .filter(|p| p.external_ids.get("vendor").map(String::as_str) == Some("sriov-ovs"))
        .collect();
    assert_eq!(found.len(), 16);
    assert!(found.iter().all(|p| p.bridge.as_deref() == Some(br.as_str())));
    let ifaces = shared
        .vswitch()
        .find_interfaces_by_external_id("n", "3")
        .await
        .unwrap();
    assert_eq!(ifaces.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_for_external_id_set_later_by_vsctl() {
    let (ovs, br) = ovs_with_bridge();
    let client = Client::connect(&ovs.endpoint()).await.unwrap();
    let vs = client.vswitch();
    let port = unique_name("p");
    vs.add_port(&br, &port)
        .interface_type("internal")
        .execute()
        .await
        .unwrap();
    let waiter = {
        let vs = vs.clone();
        let port = port.clone();
        tokio::spawn(async move {
            vs.wait_for_external_id(&port, "ovn-installed", "true", LONG)
                .await
        })
    };
    let ovs = std::sync::Arc::new(ovs);
    let setter = {
        let ovs = ovs.clone();
        let port = port.clone();
        tokio::task::spawn_blocking(move || {
            ovs.vsctl(["set", "Interface", &port, "external_ids:ovn-installed=false"])
                .unwrap();
            std::thread::sleep(Duration::from_millis(100));
            ovs.vsctl(["set", "Interface", &port, "external_ids:ovn-installed=true"])
                .unwrap();
        })
    };
    setter.await.unwrap();
    waiter.await.unwrap().unwrap();
}

#[tokio::test]
async fn waits_time_out_naming_the_interface() {
    let (ovs, br) = ovs_with_bridge();
    let client = Client::connect(&ovs.endpoint()).await.unwrap();
    let vs = client.vswitch();
    let port = unique_name("p");
    vs.add_port(&br, &port)
        .interface_type("internal")
        .external_id("ovn-installed", "false")
        .execute()
        .await
        .unwrap();
    let short = Duration::from_millis(200);
    let err = vs
        .wait_for_external_id(&port, "ovn-installed", "true", short)
        .await
        .unwrap_err();
    match &err {
        vswitch::Error::ExternalIdTimeout { iface, last, .. } => {
            assert_eq!(iface, &port);
            assert_eq!(last.as_deref(), Some("false"));
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains(&port));
    // A port whose netdev does not exist never gets an ofport; the error says why.
    let ghost = unique_name("gh");
    vs.add_port(&br, &ghost).execute().await.unwrap();
    let err = vs.wait_for_ofport(&ghost, short).await.unwrap_err();
    assert!(
        matches!(&err, vswitch::Error::OfportTimeout { iface, .. } if *iface == ghost),
        "{err:?}"
    );
    assert!(err.to_string().contains(&ghost));
    // The session is still usable after timed-out waits.
    assert!(vs.bridge_exists(&br).await.unwrap());
}

#[tokio::test]
async fn server_echo_requests_are_answered() {
    let ovs = OvsInstance::start().unwrap();
    let probe_sock = ovs.dir().join("probe.sock");
    let target = format!("punix:{}", probe_sock.display());
    ovs.vsctl(["set-manager", &target]).unwrap();
    ovs.vsctl(["set", "Manager", &target, "inactivity_probe=1000"])
        .unwrap();
    // ovsdb-server creates the socket once it has read the Manager row.
    for _ in 0..500 {
        if probe_sock.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let client = Client::connect(&format!("unix:{}", probe_sock.display()))
        .await
        .unwrap();
    echo(&client).await.unwrap();
    // Idle for several probe intervals (the server probes after ~2 s idle and hangs
    // up ~1 s later): without our echo replies the server
    // would drop the session.
    tokio::time::sleep(Duration::from_millis(4500)).await;
    echo(&client).await.unwrap();
    assert!(ovs
        .log_tail(OvsDaemon::OvsdbServer, 50)
        .lines()
        .all(|l| !l.contains("no response to inactivity probe")));
}

#[test]
fn tcp_endpoint_works_inside_the_namespace() {
    let ovs = OvsInstance::start().unwrap();
    ovs.vsctl(["set-manager", "ptcp:6640:127.0.0.1"]).unwrap();
    let ns_file = std::fs::File::open(format!("/run/netns/{}", ovs.netns().unwrap())).unwrap();
    let dbs = std::thread::spawn(move || {
        // This thread only: enter the instance's namespace, where the port listens.
        nix::sched::setns(ns_file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut last = None;
            for _ in 0..500 {
                match Client::connect("tcp:127.0.0.1:6640").await {
                    Ok(client) => return client.call("list_dbs", serde_json::json!([])).await.unwrap(),
                    Err(e) => last = Some(e),
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("no tcp listener: {last:?}");
        })
    })
    .join()
    .unwrap();
    assert!(dbs.as_array().unwrap().contains(&"Open_vSwitch".into()), "{dbs}");
}

#[tokio::test]
async fn unixctl_runs_vswitchd_commands_like_ovs_appctl() {
    let (ovs, _br) = ovs_with_bridge();
    let path = ovsdb_client::unixctl::find_socket(ovs.dir(), "ovs-vswitchd").unwrap();
    let ctl = ovsdb_client::Unixctl::connect(&path, LONG).await.unwrap();
    let version = ctl.run("version", &[]).await.unwrap();
    assert_eq!(version.trim(), ovs.appctl(["version"]).unwrap().trim());
    let flows = ctl.run("dpctl/dump-flows", &["-m"]).await.unwrap();
    assert_eq!(flows, ovs.appctl(["dpctl/dump-flows", "-m"]).unwrap());
    let err = ctl.run("no-such/command", &[]).await.unwrap_err();
    assert!(format!("{:?}", err).contains("is not a valid command"), "{err:?}");
}

#[tokio::test]
async fn wait_applied_returns_once_vswitchd_caught_up_and_times_out_while_it_is_stopped() {
    use nix::sys::signal::kill;
    use nix::unistd::Pid;
    let (ovs, br) = ovs_with_bridge();
    let client = Client::connect(&ovs.endpoint()).await.unwrap();
    let vs = client.vswitch();
    let first = vs.wait_applied(LONG).await.unwrap();
    let port = unique_name("p");
    vs.add_port(&br, &port)
        .interface_type("internal")
        .execute()
        .await
        .unwrap();
    let second = vs.wait_applied(LONG).await.unwrap();
    assert!(second > first, "{first} then {second}");
    // Applied means ovs-vswitchd has acted on the port added before the call.
    let cur: i64 = vsctl_get(&ovs, &["get", "Open_vSwitch", ".", "cur_cfg"])
        .parse()
        .unwrap();
    assert!(cur >= second);
    assert!(vsctl_get(&ovs, &["get", "Interface", &port, "ofport"]) != "[]");

    let vswitchd = Pid::from_raw(ovs.pid(OvsDaemon::Vswitchd).unwrap());
    kill(vswitchd, Signal::SIGSTOP).unwrap();
    let stalled = vs.wait_applied(Duration::from_millis(300)).await;
    kill(vswitchd, Signal::SIGCONT).unwrap();
    match stalled.unwrap_err() {
        vswitch::Error::ApplyTimeout {
            next_cfg, cur_cfg, ..
        } => {
            assert_eq!(next_cfg, second + 1);
            assert_eq!(cur_cfg, Some(second));
        }
        other => panic!("{other:?}"),
    }
    // Running again, it catches up with every request made meanwhile.
    assert!(vs.wait_applied(LONG).await.unwrap() > second + 1);
}

#[tokio::test]
async fn wait_applied_waits_for_vswitchd_to_reconnect_after_an_ovsdb_server_restart() {
    let (ovs, _br) = ovs_with_bridge();
    ovs.restart_ovsdb_server().unwrap();
    let client = Client::connect(&ovs.endpoint()).await.unwrap();
    let vs = client.vswitch();
    let start = std::time::Instant::now();
    vs.wait_applied(LONG).await.unwrap();
    println!("ovs-vswitchd applied {:?} after the restart", start.elapsed());
}

#[tokio::test]
async fn overview_reads_root_settings_bridges_and_ports_with_their_bridge() {
    let (ovs, br) = ovs_with_bridge();
    ovs.vsctl(["set", "Open_vSwitch", ".", "other_config:hw-offload=true"])
        .unwrap();
    let client = Client::connect(&ovs.endpoint()).await.unwrap();
    let vs = client.vswitch();
    let port = unique_name("p");
    vs.add_port(&br, &port)
        .interface_type("internal")
        .external_id("vendor", "sriov-ovs")
        .execute()
        .await
        .unwrap();
    let overview = vs.overview().await.unwrap();
    assert_eq!(overview.other_config["hw-offload"], "true");
    assert!(overview.bridges.contains(&br), "{:?}", overview.bridges);
    let found = overview.ports.iter().find(|p| p.name == port).unwrap();
    assert_eq!(found.bridge.as_deref(), Some(br.as_str()));
    assert_eq!(found.external_ids["vendor"], "sriov-ovs");
}
