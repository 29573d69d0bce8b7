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

/// An error and its causes on one line: `error: cause: cause`.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut last = text.clone();
    let mut source = error.source();
    while let Some(cause) = source {
        // Some wrappers (tonic, hyper) repeat their cause's text: say it once.
        let part = cause.to_string();
        if part != last && !last.ends_with(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        last = part;
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::error_chain;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot connect to /dp/kubelet.sock")]
    struct Outer(#[source] Repeating);

    /// Like tonic's transport error: its own text ends with its cause's.
    #[derive(Debug, thiserror::Error)]
    #[error("transport error: {0}")]
    struct Repeating(#[source] std::io::Error);

    #[test]
    fn error_chain_says_each_cause_once() {
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let text = error_chain(&Outer(Repeating(io)));
        assert_eq!(
            text,
            "cannot connect to /dp/kubelet.sock: transport error: entity not found"
        );
    }
}
