//! Latency figures for the fast path against a private real OVS:
//! connect + one transaction, add+delete a port, and `ovs-vsctl` as a baseline.
//!
//! `cargo run --release -p ovsdb-client --example ovsdb-bench [ITERATIONS]` (root).

use std::time::{Duration, Instant};

use ovsdb_client::Client;
use testbed::names::unique_name;
use testbed::ovs::OvsInstance;

fn report(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let pick = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples.get(i).copied().unwrap_or_default()
    };
    println!(
        "{what:<40} n={:<5} p50={:>9.1?} p99={:>9.1?}",
        samples.len(),
        pick(0.5),
        pick(0.99)
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let ovs = OvsInstance::start()?;
    let br = unique_name("bench");
    ovs.add_bridge(&br)?;
    let endpoint = ovs.endpoint();

    let mut connect_txn = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let client = Client::connect(&endpoint).await?;
        client.vswitch().bridge_exists(&br).await?;
        connect_txn.push(t.elapsed());
    }
    report("connect + bridge_exists", connect_txn);

    let client = Client::connect(&endpoint).await?;
    let vs = client.vswitch();
    let mut add = Vec::with_capacity(n);
    let mut del = Vec::with_capacity(n);
    for i in 0..n {
        let port = format!("bp{i}");
        let t = Instant::now();
        vs.add_port(&br, &port)
            .external_id("vendor", "sriov-ovs")
            .execute()
            .await?;
        add.push(t.elapsed());
        let t = Instant::now();
        vs.del_port(&br, &port).execute().await?;
        del.push(t.elapsed());
    }
    report("add_port (one transaction)", add);
    report("del_port (select + transaction)", del);

    let mut ofport = Vec::with_capacity(n / 4);
    for i in 0..n / 4 {
        let port = format!("bi{i}");
        let t = Instant::now();
        vs.add_port(&br, &port)
            .interface_type("internal")
            .execute()
            .await?;
        vs.wait_for_ofport(&port, Duration::from_secs(30)).await?;
        ofport.push(t.elapsed());
        vs.del_port(&br, &port).execute().await?;
    }
    report("add internal port + wait_for_ofport", ofport);

    let mut vsctl = Vec::with_capacity(n / 4);
    for _ in 0..n / 4 {
        let t = Instant::now();
        // As a shell script on the node runs it: through `ip netns exec`.
        ovs.command("ovs-vsctl")
            .arg(format!("--db={endpoint}"))
            .args(["--timeout=30", "br-exists", &br])
            .run()?;
        vsctl.push(t.elapsed());
    }
    report("baseline: ovs-vsctl br-exists", vsctl);
    Ok(())
}
