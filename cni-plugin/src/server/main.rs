//! `sriov-ovs-server`: the Kube-OVN node server (see `sriov_ovs::server`). A separate binary
//! so the per-pod `sriov-ovs` CNI binary carries no Kubernetes client.

use clap::Parser;
use sriov_ovs::server::{self, cli::Options, handler::Settings, Shared};
use std::sync::Arc;

fn main() {
    let opts = Options::parse();
    let _log = tracing::dispatcher::set_global_default(sriov_logging::dispatch(
        opts.log_level,
        opts.log_format,
        sriov_logging::Sink::Stderr,
    ));
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sriov-ovs-server: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(run(opts)) {
        tracing::error!(error = %sriov_logging::error_chain(&e), "sriov-ovs-server stopped");
        std::process::exit(1);
    }
}

async fn run(opts: Options) -> Result<(), server::ServerError> {
    let cluster = server::cluster::Cluster::connect(opts.kubeconfig.as_deref()).await?;
    let shared = Arc::new(Shared {
        in_flight: Default::default(),
        kernel: sriov_ovs::netns::Kernel,
        sysfs: sriov_host::Sysfs::new(&opts.sysfs_root),
        state: sriov_ovs::node::StateDir::new(&opts.state_dir),
        cluster,
        settings: Settings {
            ovsdb: opts.ovsdb.clone(),
            bridge: opts.bridge.clone(),
            mtu: opts.mtu,
            node_name: opts.node_name(),
            wait_timeout: opts.wait_timeout,
            ovn_installed_timeout: opts.ovn_installed_timeout,
            ovs_apply_timeout: std::time::Duration::from_secs(sriov_ovs::netconf::DEFAULT_OVS_APPLY_TIMEOUT),
        },
    });
    let socket = server::bind(&opts.socket)?;
    server::serve(shared, socket).await
}
