//! `simnode up|down|status`: command-line front end of the simulated SR-IOV node.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use simnode::{
    down_prefix_in, instance_state_in, EswitchMode, Model, RepresentorNaming, SimNode, SimNodeSpec, VfDriver,
};
use sriov_logging::error_chain;

/// Simulated switchdev SR-IOV node: mlx5-shaped sysfs tree plus veth pairs.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Directory holding per-instance state (`<dir>/<prefix>/state.json`).
    #[arg(long, global = true, env = "SIMNODE_STATE_DIR", default_value = simnode::spec::DEFAULT_STATE_DIR)]
    state_dir: PathBuf,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create the tree and links; prints `SRIOV_SYSFS_ROOT=...` and the layout.
    Up(UpArgs),
    /// Remove everything of an instance (also after a crash).
    Down {
        /// Instance prefix.
        #[arg(long)]
        prefix: String,
        /// Sysfs root to remove when the state file is lost.
        #[arg(long)]
        sysfs_root: Option<PathBuf>,
    },
    /// Print the layout of an instance as a table.
    Status {
        /// Instance prefix.
        #[arg(long)]
        prefix: String,
    },
}

#[derive(Args)]
struct UpArgs {
    /// Instance prefix (1-9 letters/digits, lowercase first); starts every link name.
    #[arg(long)]
    prefix: String,
    /// Number of PFs (1-8).
    #[arg(long, default_value_t = 2)]
    pfs: u32,
    /// VFs per PF (0-127).
    #[arg(long, default_value_t = 4)]
    vfs: u32,
    /// NIC model: cx5, cx6, cx6dx, cx7, bf2.
    #[arg(long, default_value = "cx5")]
    model: Model,
    /// NUMA node of the NIC (default: none, `-1`).
    #[arg(long)]
    numa: Option<u32>,
    /// Representor naming: pfvf, legacy, dpu.
    #[arg(long, default_value = "pfvf")]
    naming: RepresentorNaming,
    /// VF driver: mlx5, vfio-pci, unbound.
    #[arg(long, default_value = "mlx5")]
    vf_driver: VfDriver,
    /// Eswitch mode: switchdev, legacy.
    #[arg(long, default_value = "switchdev", value_parser = simnode::spec::parse_eswitch)]
    eswitch: EswitchMode,
    /// Give mlx5_core VFs RDMA devices (infiniband/, infiniband_verbs/, infiniband_mad/).
    #[arg(long)]
    rdma: bool,
    /// Give VF netdevs udev-like altnames.
    #[arg(long)]
    altnames: bool,
    /// Sysfs root (default `<state dir>/<prefix>/sys`).
    #[arg(long)]
    sysfs_root: Option<PathBuf>,
    /// Create the links in this existing netns.
    #[arg(long)]
    netns: Option<String>,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("simnode: {}", error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), simnode::SimError> {
    match cli.command {
        Cmd::Up(a) => {
            let root = a
                .sysfs_root
                .unwrap_or_else(|| cli.state_dir.join(&a.prefix).join("sys"));
            let mut spec = SimNodeSpec::new(a.prefix, a.pfs, a.vfs)
                .with_model(a.model)
                .with_numa_node(a.numa)
                .with_naming(a.naming)
                .with_vf_driver(a.vf_driver)
                .with_eswitch(a.eswitch)
                .with_vf_altnames(a.altnames)
                .with_rdma(a.rdma)
                .with_sysfs_root(root)
                .with_state_dir(&cli.state_dir);
            spec.netns = a.netns;
            let node = SimNode::up(spec)?;
            println!("SRIOV_SYSFS_ROOT={}", node.sysfs_root().display());
            print!("{}", simnode::status::table(node.layout()));
            // The instance outlives this process; `simnode down` removes it.
            std::mem::forget(node);
            Ok(())
        }
        Cmd::Down { prefix, sysfs_root } => down_prefix_in(&cli.state_dir, &prefix, sysfs_root.as_deref()),
        Cmd::Status { prefix } => {
            let state = instance_state_in(&cli.state_dir, &prefix)?;
            println!("SRIOV_SYSFS_ROOT={}", state.layout.sysfs_root.display());
            print!("{}", simnode::status::table(&state.layout));
            Ok(())
        }
    }
}
