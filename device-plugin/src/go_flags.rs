//! The Go `sriov-network-device-plugin`'s command line, as its DaemonSets and
//! image entrypoint pass it: accepted so that swapping only the image works.
//! `--config-file` and `--resource-prefix` mean the same here and live in
//! [`crate::cli::Args`]; the glog flags below have no effect and say so once.

use sriov_logging::Level;

/// Heading of these flags in `--help`.
const HEADING: &str = "Go plugin compatibility (accepted, no effect)";

/// glog flags of the Go plugin; none changes what this binary does.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct GoFlags {
    /// Go plugin: write log files under /var/log/DIR. Ignored: logs go to
    /// stderr only (`kubectl logs`).
    #[arg(long, value_name = "DIR", help_heading = HEADING)]
    pub log_dir: Option<String>,

    /// Go plugin (glog): log to stderr. Always so here.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", help_heading = HEADING)]
    pub logtostderr: Option<bool>,

    /// Go plugin (glog): log to stderr as well as to files. Always stderr only here.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", help_heading = HEADING)]
    pub alsologtostderr: Option<bool>,
}

impl GoFlags {
    /// `(flag, why it has no effect)` for each flag given.
    pub fn ignored(&self) -> Vec<(&'static str, &'static str)> {
        let mut out = Vec::new();
        if self.log_dir.is_some() {
            out.push((
                "--log-dir",
                "no log files are written; logs go to stderr (kubectl logs)",
            ));
        }
        if self.logtostderr.is_some() {
            out.push(("--logtostderr", "logs always go to stderr"));
        }
        if self.alsologtostderr.is_some() {
            out.push(("--alsologtostderr", "logs go to stderr only"));
        }
        out
    }

    /// Logs one warning per flag given that has no effect.
    pub fn warn_ignored(&self) {
        for (flag, why) in self.ignored() {
            tracing::warn!(flag, "Go plugin flag has no effect here: {why}");
        }
    }
}

/// `--log-level`: a level name, or a number as the Go plugin's DaemonSets pass
/// it (glog verbosity, Kubernetes conventions: 0-3 steady-state information,
/// 4 debugging, 5 and more tracing).
pub fn parse_log_level(text: &str) -> Result<Level, String> {
    match text.parse::<u32>() {
        Ok(0..=3) => Ok(Level::Info),
        Ok(4) => Ok(Level::Debug),
        Ok(_) => Ok(Level::Trace),
        Err(_) => text.parse::<Level>().map_err(|error| {
            format!("{error}, or a glog verbosity number (Go plugin: 0-3 info, 4 debug, 5 and more trace)")
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glog_verbosity_maps_to_our_levels() {
        for (text, level) in [
            ("0", Level::Info),
            ("3", Level::Info),
            ("4", Level::Debug),
            ("5", Level::Trace),
            ("10", Level::Trace),
            ("warning", Level::Warn),
            ("debug", Level::Debug),
        ] {
            assert_eq!(parse_log_level(text).unwrap(), level, "{text}");
        }
    }

    #[test]
    fn unknown_level_lists_names_and_numbers() {
        let error = parse_log_level("verbose").unwrap_err();
        assert!(error.starts_with(r#"unknown log level "verbose": accepted are error, warn (or warning), info, debug, trace, or a glog verbosity number"#), "{error}");
        assert!(parse_log_level("-1").is_err());
    }

    #[test]
    fn only_given_flags_are_reported_once_each() {
        assert!(GoFlags::default().ignored().is_empty());
        let flags = GoFlags {
            log_dir: Some("sriovdp".into()),
            logtostderr: None,
            alsologtostderr: Some(true),
        };
        let names: Vec<_> = flags.ignored().into_iter().map(|(f, _)| f).collect();
        assert_eq!(names, ["--log-dir", "--alsologtostderr"]);
    }
}
