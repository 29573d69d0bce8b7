//! Logging with `tracing` to stderr or `logFile` at `logLevel`; never to stdout (it carries the result).

use std::fs::OpenOptions;
use std::path::Path;
use std::sync::Mutex;
use tracing::subscriber::DefaultGuard;

/// Installs a subscriber for the current thread until the guard is dropped.
pub fn init(level: tracing::Level, log_file: Option<&Path>) -> DefaultGuard {
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(false)
        .with_target(false);
    if let Some(path) = log_file {
        match OpenOptions::new().create(true).append(true).open(path) {
            Ok(file) => {
                return tracing::subscriber::set_default(builder.with_writer(Mutex::new(file)).finish())
            }
            Err(e) => {
                let guard = tracing::subscriber::set_default(builder.with_writer(std::io::stderr).finish());
                tracing::warn!(path = %path.display(), error = &e as &dyn std::error::Error, "cannot open logFile; logging to stderr");
                return guard;
            }
        }
    }
    tracing::subscriber::set_default(builder.with_writer(std::io::stderr).finish())
}
