//! Logging with `tracing` to stderr or `logFile`, at `logLevel`, in `logFormat`; never to
//! stdout (it carries the result). Level and format names are the device plugin's.

use std::fs::OpenOptions;
use std::path::Path;

use sriov_logging::{Format, Level, Sink};
use tracing::subscriber::DefaultGuard;

/// Installs a subscriber for the current thread until the guard is dropped.
pub fn init(level: Level, format: Format, log_file: Option<&Path>) -> DefaultGuard {
    let Some(path) = log_file else {
        return tracing::dispatcher::set_default(&sriov_logging::dispatch(level, format, Sink::Stderr));
    };
    match OpenOptions::new().create(true).append(true).open(path) {
        Ok(file) => {
            tracing::dispatcher::set_default(&sriov_logging::dispatch(level, format, Sink::File(file)))
        }
        Err(e) => {
            let guard =
                tracing::dispatcher::set_default(&sriov_logging::dispatch(level, format, Sink::Stderr));
            tracing::warn!(path = %path.display(), error = &e as &dyn std::error::Error, "cannot open logFile; logging to stderr");
            guard
        }
    }
}
