//! Log levels, log formats and the `tracing` subscriber: one place, so both binaries
//! (`sriov-device-plugin`, `sriov-ovs`) accept the same names and write the same shapes;
//! and [`error_chain`], the one way errors are put on a line.

use std::fmt;
use std::io::IsTerminal;
use std::str::FromStr;
use std::sync::Mutex;

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::SubscriberExt;

mod chain;

pub use chain::error_chain;

/// Crates whose events follow the chosen level; everything else (tonic, h2, hyper,
/// netlink) stays at `info` at most, or `debug`/`trace` would drown our lines in theirs.
const OWN_TARGETS: &[&str] = &["sriov", "ovsdb_client"];

/// How much to log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Failures only.
    Error,
    /// Failures and things that look wrong.
    Warn,
    /// What the program does, one line per step a user cares about.
    Info,
    /// Details for debugging.
    Debug,
    /// Everything.
    Trace,
}

impl Level {
    /// The `tracing` level.
    pub fn as_tracing(self) -> tracing::Level {
        match self {
            Level::Error => tracing::Level::ERROR,
            Level::Warn => tracing::Level::WARN,
            Level::Info => tracing::Level::INFO,
            Level::Debug => tracing::Level::DEBUG,
            Level::Trace => tracing::Level::TRACE,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_tracing().as_str().to_ascii_lowercase())
    }
}

impl FromStr for Level {
    type Err = LoggingError;

    /// A level name, any case: `error`, `warn`/`warning`, `info`, `debug`, `trace`.
    fn from_str(s: &str) -> Result<Level, LoggingError> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "error" => Level::Error,
            "warn" | "warning" => Level::Warn,
            "info" => Level::Info,
            "debug" => Level::Debug,
            "trace" => Level::Trace,
            _ => return Err(LoggingError::UnknownLevel { given: s.to_string() }),
        })
    }
}

/// What a log line looks like.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line (`timestamp`, `level`, `fields`, `target`), for log pipelines.
    Json,
}

impl FromStr for Format {
    type Err = LoggingError;

    fn from_str(s: &str) -> Result<Format, LoggingError> {
        match s.to_ascii_lowercase().as_str() {
            "text" => Ok(Format::Text),
            "json" => Ok(Format::Json),
            _ => Err(LoggingError::UnknownFormat { given: s.to_string() }),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Text => "text",
            Format::Json => "json",
        })
    }
}

/// A level or format name that is not one of ours.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// Not a level name.
    #[error("unknown log level {given:?}: accepted are error, warn (or warning), info, debug, trace")]
    UnknownLevel {
        /// What was given.
        given: String,
    },
    /// Not a format name.
    #[error("unknown log format {given:?}: accepted are text, json")]
    UnknownFormat {
        /// What was given.
        given: String,
    },
}

/// Where lines go.
pub enum Sink {
    /// Standard error; colours only when it is a terminal (never in `kubectl logs`).
    Stderr,
    /// An open file (appended to); never coloured.
    File(std::fs::File),
}

/// A subscriber logging at `level` in `format` to `sink`, to install globally
/// (`tracing::dispatcher::set_global_default`) or per thread (`set_default`).
pub fn dispatch(level: Level, format: Format, sink: Sink) -> tracing::Dispatch {
    let own = LevelFilter::from_level(level.as_tracing());
    let filter = OWN_TARGETS.iter().fold(
        Targets::new().with_default(own.min(LevelFilter::INFO)),
        |t, target| t.with_target(*target, own),
    );
    let registry = tracing_subscriber::registry().with(filter);
    let (writer, ansi) = match sink {
        Sink::Stderr => (
            BoxMakeWriter::new(std::io::stderr),
            std::io::stderr().is_terminal(),
        ),
        Sink::File(file) => (BoxMakeWriter::new(Mutex::new(file)), false),
    };
    let layer = tracing_subscriber::fmt::layer().with_writer(writer);
    match format {
        Format::Text => tracing::Dispatch::new(registry.with(layer.with_ansi(ansi))),
        Format::Json => tracing::Dispatch::new(registry.with(layer.json())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_binary_level_name_parses_in_any_case() {
        for (name, level) in [
            ("error", Level::Error),
            ("warn", Level::Warn),
            ("warning", Level::Warn),
            ("WARNING", Level::Warn),
            ("info", Level::Info),
            ("Debug", Level::Debug),
            ("trace", Level::Trace),
        ] {
            assert_eq!(name.parse::<Level>().unwrap(), level, "{name}");
        }
    }

    #[test]
    fn unknown_level_names_the_accepted_ones() {
        for given in ["verbose", "10", "", "sriov_device_plugin=debug"] {
            let error = given.parse::<Level>().unwrap_err().to_string();
            assert_eq!(
                error,
                format!(
                    "unknown log level {given:?}: accepted are error, warn (or warning), info, debug, trace"
                )
            );
        }
    }

    #[test]
    fn formats_are_text_and_json() {
        assert_eq!("json".parse::<Format>().unwrap(), Format::Json);
        assert_eq!("TEXT".parse::<Format>().unwrap(), Format::Text);
        let error = "logfmt".parse::<Format>().unwrap_err().to_string();
        assert_eq!(error, "unknown log format \"logfmt\": accepted are text, json");
    }

    /// Logs one event of each level through `dispatch` into a file and returns the lines.
    fn lines(level: Level, format: Format) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let file = std::fs::File::create(&path).unwrap();
        tracing::dispatcher::with_default(&dispatch(level, format, Sink::File(file)), || {
            tracing::error!(target: "sriov_test", pci = "0000:84:00.2", "e");
            tracing::warn!(target: "sriov_test", "w");
            tracing::info!(target: "sriov_test", "i");
            tracing::debug!(target: "sriov_test", "d");
            tracing::debug!(target: "h2::codec", "dependency chatter");
        });
        let text = std::fs::read_to_string(&path).unwrap();
        text.lines().map(str::to_string).collect()
    }

    #[test]
    fn level_keeps_our_events_and_caps_dependencies_at_info() {
        assert_eq!(lines(Level::Warn, Format::Text).len(), 2);
        let debug = lines(Level::Debug, Format::Text);
        assert_eq!(debug.len(), 4, "{debug:?}");
        assert!(!debug.iter().any(|l| l.contains("dependency chatter")));
    }

    #[test]
    fn json_format_writes_one_object_per_line_without_escapes() {
        let lines = lines(Level::Info, Format::Json);
        assert_eq!(lines.len(), 3);
        let first: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(first["level"], "ERROR");
        assert_eq!(first["fields"]["message"], "e");
        assert_eq!(first["fields"]["pci"], "0000:84:00.2");
        assert!(lines.iter().all(|l| !l.contains('\u{1b}')));
    }

    #[test]
    fn text_to_a_file_has_no_colour_codes() {
        let lines = lines(Level::Info, Format::Text);
        assert!(lines.iter().all(|l| !l.contains('\u{1b}')), "{lines:?}");
        assert!(
            lines[0].contains("ERROR") && lines[0].contains("pci=\"0000:84:00.2\""),
            "{lines:?}"
        );
    }
}
