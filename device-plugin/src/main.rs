//! `sriov-device-plugin`: parses flags, runs the daemon until SIGTERM/SIGINT.

use clap::Parser;
use sriov_device_plugin::cli::Args;
use sriov_device_plugin::daemon;
use sriov_device_plugin::probe::probe;
use sriov_logging::error_chain;
use tokio::signal::unix::{signal, SignalKind};

/// How long `--probe` waits for the plugin's answer (which waits up to 2 s
/// for the event loop).
const PROBE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(3);

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let logging = sriov_logging::dispatch(args.log_level, args.log_format, sriov_logging::Sink::Stderr);
    if tracing::dispatcher::set_global_default(logging).is_err() {
        eprintln!("sriov-device-plugin: a logger is already installed");
    }
    args.go.warn_ignored();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("sriov-device-plugin: cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    if let Some(kind) = args.probe {
        return match runtime.block_on(probe(&args.device_plugin_path, kind, PROBE_DEADLINE)) {
            Ok(answer) => {
                println!("{answer}");
                std::process::ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("sriov-device-plugin: probe failed: {}", error_chain(&error));
                std::process::ExitCode::FAILURE
            }
        };
    }
    let result = runtime.block_on(async {
        let (mut term, mut int) = match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
            (Ok(term), Ok(int)) => (term, int),
            (Err(error), _) | (_, Err(error)) => {
                eprintln!("sriov-device-plugin: cannot handle signals: {error}");
                return Err(());
            }
        };
        let shutdown = async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM"),
                _ = int.recv() => tracing::info!("SIGINT"),
            }
        };
        daemon::run(args.settings(), shutdown)
            .await
            .map_err(|error| eprintln!("sriov-device-plugin: {}", error_chain(&error)))
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(()) => std::process::ExitCode::FAILURE,
    }
}
