//! Logging with `tracing` to stderr or `logFile`, at `logLevel`, in `logFormat`; never to
//! stdout (it carries the result). Level and format names are the device plugin's.

use std::fs::OpenOptions;
use std::path::Path;

use sriov_logging::{Format, Level, Sink};
use tracing::subscriber::DefaultGuard;

/// Installs a subscriber for the current thread until the guard is dropped.
pub fn init(level: Level, format: Format, log_file: Option<&Path>) -> DefaultGuard {
    let opened = log_file.map(|path| (path, OpenOptions::new().create(true).append(true).open(path)));
    let (sink, failed) = match opened {
        Some((_, Ok(file))) => (Sink::File(file), None),
        Some((path, Err(e))) => (Sink::Stderr, Some((path, e))),
        None => (Sink::Stderr, None),
    };
    let guard = tracing::dispatcher::set_default(&sriov_logging::dispatch(level, format, sink));
    if let Some((path, e)) = failed {
        tracing::warn!(path = %path.display(), error = &e as &dyn std::error::Error, "cannot open logFile; logging to stderr");
    }
    guard
}
