//! Kubelet device plugin advertising switchdev SR-IOV VFs, compatible with the
//! Go `sriov-network-device-plugin` configuration (`sriovdp-config`).
//!
//! The binary is [`cli::Args`] plus [`daemon::run`]; the rest are the pieces
//! the daemon is built from, public so tests and tools can use them.

pub mod allocate;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod device_info;
pub mod discovery;
pub mod health;
pub mod links;
pub mod plugin;
pub mod plugin_watcher;
pub mod pool;
pub mod preferred;
pub mod probe;
pub mod registration;
pub mod server;
pub mod transport;
pub mod uevent;
pub mod watch;

/// An error and its causes on one line: `error: cause: cause`.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
