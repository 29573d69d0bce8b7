//! The CNI environment plus stdin turned into one [`Command`]; all input is injected for tests.

use crate::cni_args::{CniArgs, InvalidCniArgs};
use crate::error::{code, ErrorCode};
use crate::netconf::{valid_ifname, NetConf, NetconfError};
use crate::node::IpamFacts;
use crate::version::CniVersion;
use std::collections::HashMap;
use std::path::PathBuf;

/// A CNI verb.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// ADD
    Add,
    /// DEL
    Del,
    /// CHECK
    Check,
    /// STATUS
    Status,
    /// VERSION
    Version,
    /// GC
    Gc,
}

impl Verb {
    /// The verb as written in `CNI_COMMAND`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Add => "ADD",
            Verb::Del => "DEL",
            Verb::Check => "CHECK",
            Verb::Status => "STATUS",
            Verb::Version => "VERSION",
            Verb::Gc => "GC",
        }
    }
}

/// Everything a verb handler gets.
#[derive(Debug, Clone)]
pub struct Request {
    /// `CNI_CONTAINERID` (empty for STATUS/GC).
    pub container_id: String,
    /// `CNI_NETNS` (`None` when empty).
    pub netns: Option<PathBuf>,
    /// `CNI_IFNAME` (empty for STATUS/GC).
    pub ifname: String,
    /// `CNI_ARGS` as given.
    pub args_raw: String,
    /// `CNI_ARGS` parsed.
    pub args: CniArgs,
    /// `CNI_PATH` as given.
    pub path: String,
    /// The configuration.
    pub conf: NetConf,
}

impl Request {
    /// The IPAM plugin to delegate to, unless `runtimeConfig.ips` gives the addresses.
    pub fn ipam_facts(&self) -> Option<IpamFacts> {
        let conf = &self.conf;
        let plugin = conf.ipam_type.clone().filter(|_| conf.runtime_ips.is_empty())?;
        Some(IpamFacts {
            plugin,
            conf: conf.raw.clone(),
            args: self.args_raw.clone(),
            path: self.path.clone(),
        })
    }
}

/// A parsed invocation of a verb that takes a configuration (all but VERSION).
pub type Command = (Verb, Request);

/// The invocation is malformed.
#[derive(Debug, thiserror::Error)]
pub enum SkelError {
    /// `CNI_COMMAND` is missing.
    #[error("CNI_COMMAND is not set")]
    NoCommand,
    /// `CNI_COMMAND` is not a verb.
    #[error("unknown CNI_COMMAND {0:?}")]
    UnknownCommand(String),
    /// A required variable is missing or empty.
    #[error("{name} is required for {verb}")]
    MissingEnv {
        /// Variable.
        name: &'static str,
        /// Verb.
        verb: &'static str,
    },
    /// A variable has an unusable value.
    #[error("{name}={value:?} is invalid: {reason}")]
    InvalidEnv {
        /// Variable.
        name: &'static str,
        /// Value.
        value: String,
        /// Why.
        reason: &'static str,
    },
    /// `CNI_ARGS` is malformed.
    #[error("CNI_ARGS is malformed")]
    Args(#[source] InvalidCniArgs),
    /// Stdin cannot be read.
    #[error("cannot read the network configuration from stdin")]
    Stdin(#[source] std::io::Error),
    /// The configuration is invalid.
    #[error("invalid network configuration")]
    Netconf(#[source] NetconfError),
    /// The verb does not exist in the requested version.
    #[error("{verb} is not defined in CNI version {version}")]
    VerbNotInVersion {
        /// Verb.
        verb: &'static str,
        /// Version.
        version: CniVersion,
    },
}

impl ErrorCode for SkelError {
    fn code(&self) -> u32 {
        match self {
            SkelError::Stdin(_) => code::IO_FAILURE,
            SkelError::Netconf(source) => source.code(),
            SkelError::VerbNotInVersion { .. } => code::INCOMPATIBLE_VERSION,
            _ => code::INVALID_ENV,
        }
    }
}

fn valid_container_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// Reads `CNI_COMMAND`.
pub fn verb(env: &HashMap<String, String>) -> Result<Verb, SkelError> {
    let raw = env.get("CNI_COMMAND").ok_or(SkelError::NoCommand)?;
    let verbs = [
        Verb::Add,
        Verb::Del,
        Verb::Check,
        Verb::Status,
        Verb::Version,
        Verb::Gc,
    ];
    let verb = verbs.into_iter().find(|v| v.as_str() == raw);
    verb.ok_or_else(|| SkelError::UnknownCommand(raw.clone()))
}

/// Builds the command of `verb` (not VERSION) from the environment and the parsed stdin.
pub fn parse(
    env: &HashMap<String, String>,
    verb: Verb,
    conf: Result<NetConf, NetconfError>,
) -> Result<Command, SkelError> {
    let get = |k: &str| env.get(k).map(String::as_str).unwrap_or("");
    let needs_container = matches!(verb, Verb::Add | Verb::Del | Verb::Check);
    let container_id = get("CNI_CONTAINERID").to_string();
    let ifname = get("CNI_IFNAME").to_string();
    let netns = Some(get("CNI_NETNS"))
        .filter(|s| !s.is_empty())
        .map(PathBuf::from);
    if needs_container {
        let checks = [
            (
                "CNI_CONTAINERID",
                &container_id,
                valid_container_id as fn(&str) -> bool,
                "want [A-Za-z0-9][A-Za-z0-9_.-]*",
            ),
            ("CNI_IFNAME", &ifname, valid_ifname, "not a valid interface name"),
        ];
        for (name, value, valid, reason) in checks {
            if value.is_empty() {
                return Err(SkelError::MissingEnv {
                    name,
                    verb: verb.as_str(),
                });
            }
            if !valid(value) {
                let value = value.clone();
                return Err(SkelError::InvalidEnv { name, value, reason });
            }
        }
        if verb != Verb::Del && netns.is_none() {
            return Err(SkelError::MissingEnv {
                name: "CNI_NETNS",
                verb: verb.as_str(),
            });
        }
    }
    let args_raw = get("CNI_ARGS").to_string();
    let args = CniArgs::parse(&args_raw).map_err(SkelError::Args)?;
    let conf = conf.map_err(SkelError::Netconf)?;
    let in_version = match verb {
        Verb::Check => conf.cni_version.has_check(),
        Verb::Status | Verb::Gc => conf.cni_version.has_status_and_gc(),
        _ => true,
    };
    if !in_version {
        return Err(SkelError::VerbNotInVersion {
            verb: verb.as_str(),
            version: conf.cni_version,
        });
    }
    let req = Request {
        container_id,
        netns,
        ifname,
        args_raw,
        args,
        path: get("CNI_PATH").to_string(),
        conf,
    };
    Ok((verb, req))
}

/// The cniVersion to answer errors in: the request's when readable, else the newest.
pub fn error_version(stdin: &[u8]) -> &'static str {
    let value = serde_json::from_slice::<serde_json::Value>(stdin).unwrap_or_default();
    let version = value["cniVersion"]
        .as_str()
        .and_then(|s| s.parse::<CniVersion>().ok());
    version.unwrap_or(CniVersion::LATEST).as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// What `run` does: the verb, then the configuration parsed once.
    fn parse(env: &HashMap<String, String>, stdin: &[u8]) -> Result<Command, SkelError> {
        let verb = verb(env)?;
        super::parse(env, verb, NetConf::parse(stdin))
    }

    const CONF: &[u8] = br#"{"cniVersion":"1.1.0","name":"n","type":"sriov-ovs","deviceID":"0000:84:00.2"}"#;

    #[test]
    fn add_needs_container_netns_and_ifname() {
        let e = parse(&env(&[("CNI_COMMAND", "ADD")]), CONF).unwrap_err();
        assert_eq!(e.code(), 4);
        let e = parse(
            &env(&[
                ("CNI_COMMAND", "ADD"),
                ("CNI_CONTAINERID", "c"),
                ("CNI_IFNAME", "eth0"),
            ]),
            CONF,
        )
        .unwrap_err();
        assert!(matches!(
            e,
            SkelError::MissingEnv {
                name: "CNI_NETNS",
                ..
            }
        ));
        let ok = parse(
            &env(&[
                ("CNI_COMMAND", "ADD"),
                ("CNI_CONTAINERID", "c"),
                ("CNI_IFNAME", "eth0"),
                ("CNI_NETNS", "/run/netns/x"),
            ]),
            CONF,
        )
        .unwrap();
        assert!(matches!(ok, (Verb::Add, _)));
    }

    #[test]
    fn del_tolerates_empty_netns() {
        let c = parse(
            &env(&[
                ("CNI_COMMAND", "DEL"),
                ("CNI_CONTAINERID", "c"),
                ("CNI_IFNAME", "eth0"),
                ("CNI_NETNS", ""),
            ]),
            CONF,
        )
        .unwrap();
        let (Verb::Del, r) = c else { panic!() };
        assert!(r.netns.is_none());
    }

    #[test]
    fn unknown_command_and_bad_ids_are_env_errors() {
        assert_eq!(
            parse(&env(&[("CNI_COMMAND", "FROB")]), CONF).unwrap_err().code(),
            4
        );
        assert_eq!(parse(&env(&[]), CONF).unwrap_err().code(), 4);
        let e = parse(
            &env(&[
                ("CNI_COMMAND", "DEL"),
                ("CNI_CONTAINERID", "-bad"),
                ("CNI_IFNAME", "eth0"),
            ]),
            CONF,
        )
        .unwrap_err();
        assert_eq!(e.code(), 4);
        let e = parse(
            &env(&[
                ("CNI_COMMAND", "DEL"),
                ("CNI_CONTAINERID", "c"),
                ("CNI_IFNAME", "waytoolonginterfacename"),
            ]),
            CONF,
        )
        .unwrap_err();
        assert_eq!(e.code(), 4);
    }

    #[test]
    fn verbs_gated_by_version() {
        let old = br#"{"cniVersion":"0.3.1","name":"n"}"#;
        let e = parse(
            &env(&[
                ("CNI_COMMAND", "CHECK"),
                ("CNI_CONTAINERID", "c"),
                ("CNI_IFNAME", "eth0"),
                ("CNI_NETNS", "/x"),
            ]),
            old,
        )
        .unwrap_err();
        assert_eq!(e.code(), 1);
        let v1 = br#"{"cniVersion":"1.0.0","name":"n"}"#;
        assert_eq!(
            parse(&env(&[("CNI_COMMAND", "STATUS")]), v1).unwrap_err().code(),
            1
        );
        assert!(matches!(
            parse(&env(&[("CNI_COMMAND", "STATUS")]), CONF).unwrap(),
            (Verb::Status, _)
        ));
        assert!(matches!(
            parse(&env(&[("CNI_COMMAND", "GC")]), CONF).unwrap(),
            (Verb::Gc, _)
        ));
    }

    #[test]
    fn version_needs_nothing_else() {
        assert_eq!(verb(&env(&[("CNI_COMMAND", "VERSION")])).unwrap(), Verb::Version);
    }

    #[test]
    fn error_version_falls_back_to_latest() {
        assert_eq!(error_version(b"{\"cniVersion\":\"0.4.0\"}"), "0.4.0");
        assert_eq!(error_version(b"garbage"), "1.1.0");
        assert_eq!(error_version(b"{\"cniVersion\":\"9.9.9\"}"), "1.1.0");
    }
}
