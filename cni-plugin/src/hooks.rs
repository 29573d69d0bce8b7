//! Test hooks (feature `test-hooks`, absent from release builds): pause ADD at the step
//! `SRIOV_OVS_PAUSE_AT` while `SRIOV_OVS_PAUSE_FILE` exists, so tests can kill the plugin or
//! stop OVSDB at a known point. Inert unless both variables are set.

use std::path::PathBuf;
use std::time::Duration;

/// Env var naming the step to pause at.
pub const PAUSE_AT: &str = "SRIOV_OVS_PAUSE_AT";
/// Env var naming the file whose existence holds the pause; the plugin creates `<file>.reached` when paused.
pub const PAUSE_FILE: &str = "SRIOV_OVS_PAUSE_FILE";

/// Pauses while the pause file exists, if `step` is the one the process environment names.
pub async fn pause_point(step: &str) {
    let (Some(at), Some(file)) = (std::env::var_os(PAUSE_AT), std::env::var_os(PAUSE_FILE)) else {
        return;
    };
    if at != step {
        return;
    }
    let file = PathBuf::from(file);
    let reached = file.with_extension("reached");
    if let Err(e) = std::fs::write(&reached, step) {
        tracing::warn!(path = %reached.display(), error = &e as &dyn std::error::Error, "cannot write pause marker");
    }
    tracing::info!(step, "paused by test hook");
    while file.exists() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
