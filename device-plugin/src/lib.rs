//! Kubelet device plugin advertising switchdev SR-IOV VFs, compatible with the
//! Go `sriov-network-device-plugin` configuration (`sriovdp-config`).
//!
//! The binary is [`cli::Args`] plus [`daemon::run`]; the rest are the pieces
//! the daemon is built from, public so tests and tools can use them.

pub mod allocate;
pub mod cdi;
pub mod cli;
pub mod daemon;
pub mod device_info;
pub mod discovery;
pub mod go_flags;
pub mod health;
pub mod links;
pub mod metrics;
pub mod plugin;
pub mod plugin_watcher;
pub mod pool;
pub mod preferred;
pub mod probe;
pub mod rdma;
pub mod registration;
pub mod server;
pub mod status;
pub mod topology;
pub mod transport;
pub mod uevent;
pub mod watch;
