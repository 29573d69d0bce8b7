//! `e2e-demo`: the binary behind `scripts/demo.sh` (see `integration_tests::demo`).

use std::process::ExitCode;

use clap::Parser;
use integration_tests::demo::{self, DemoOptions};
use sriov_logging::error_chain;

/// Runs the overlay and underlay scenarios of the Kube-OVN offload guide on two simulated nodes
/// (real OVN/OVS in userspace, simulated SR-IOV NICs, our device plugin and, by default, the
/// guide's Kube-OVN NAD served by sriov-ovs-server with Kube-OVN stand-ins).
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Leave the cluster running for inspection (remove it later with --down).
    #[arg(long)]
    keep: bool,
    /// Remove a cluster left by --keep, then exit.
    #[arg(long, conflicts_with = "keep")]
    down: bool,
    /// Number of simulated nodes.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=8))]
    nodes: u8,
    /// VFs per node (the scenarios use 3 on each of two nodes).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(3..=32))]
    vfs: u32,
    /// VLAN id of the underlay network (0 = untagged, as in the seed guide).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u16).range(0..=4094))]
    vlan: u16,
    /// Attach pods through the `type: sriov-ovs` NAD (manifests/examples/nad-sriov-ovs.yaml)
    /// instead of the guide's Kube-OVN NAD served by sriov-ovs-server.
    #[arg(long)]
    plain: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    if !nix::unistd::geteuid().is_root() {
        eprintln!("e2e-demo: run as root (it creates network namespaces, links and OVS instances)");
        return ExitCode::from(2);
    }
    let result = if args.down {
        demo::down().map(|()| true)
    } else {
        demo::run(&DemoOptions {
            nodes: usize::from(args.nodes),
            vfs: args.vfs,
            vlan: args.vlan,
            keep: args.keep,
            plain: args.plain,
        })
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("e2e-demo: {}", error_chain(&e));
            ExitCode::from(2)
        }
    }
}
