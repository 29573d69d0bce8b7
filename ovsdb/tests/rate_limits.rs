//! Port rate limits against a real `ovsdb-server` and `ovs-vswitchd`: ingress policing on the
//! Interface, an egress `linux-htb` QoS with one queue, and both gone with the port. Run as root.

use ovsdb_client::Client;
use testbed::names::unique_name;
use testbed::ovs::OvsInstance;

#[tokio::test]
async fn rate_limits_are_set_with_the_port_and_removed_with_it() {
    let ovs = OvsInstance::start().expect("start OVS");
    let br = unique_name("br");
    ovs.add_bridge(&br).expect("add bridge");
    let (a, b) = (unique_name("va"), unique_name("vb"));
    ovs.ip(["link", "add", &a, "type", "veth", "peer", "name", &b])
        .unwrap();
    let vs = Client::connect(&ovs.endpoint()).await.unwrap().vswitch();
    vs.add_port(&br, &a)
        .external_id("iface-id", "p.ns")
        .ingress_policing(100_000, 80_000)
        .egress_max_rate(50_000_000)
        .execute()
        .await
        .unwrap();
    let get = |args: &[&str]| ovs.vsctl(args).unwrap().trim().to_string();
    assert_eq!(get(&["get", "Interface", &a, "ingress_policing_rate"]), "100000");
    assert_eq!(get(&["get", "Interface", &a, "ingress_policing_burst"]), "80000");
    let qos = get(&["get", "Port", &a, "qos"]);
    assert_eq!(get(&["get", "QoS", &qos, "type"]), "linux-htb");
    let queue = get(&["get", "QoS", &qos, "queues:0"]);
    assert_eq!(
        get(&["get", "Queue", &queue, "other_config:max-rate"]),
        "\"50000000\""
    );
    assert_eq!(get(&["get", "Queue", &queue, "external_ids:iface-id"]), "p.ns");

    assert!(vs.del_port(&br, &a).with_qos().execute().await.unwrap());
    assert_eq!(get(&["--columns=_uuid", "list", "QoS"]), "");
    assert_eq!(get(&["--columns=_uuid", "list", "Queue"]), "");
}
