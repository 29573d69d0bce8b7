//! Network configuration: raw serde mirror of stdin, validated into [`NetConf`].

use crate::cni_args::CniArgs;
use crate::error::{code, ErrorCode};
use crate::field_type;
use crate::ipnet::IpNet;
use crate::mac::MacAddr;
use crate::version::CniVersion;
use ovsdb_client::Endpoint;
use serde::Deserialize;
use serde_json::Value;
use sriov_host::PciAddress;
use sriov_logging::{Format, Level};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Default OVS bridge.
pub const DEFAULT_BRIDGE: &str = "br-int";
/// Default OVSDB socket.
pub const DEFAULT_OVSDB_SOCKET: &str = "unix:/run/openvswitch/db.sock";
/// Default state directory.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/cni/sriov-ovs";
/// Default `ovnInstalledTimeout` in seconds.
pub const DEFAULT_OVN_INSTALLED_TIMEOUT: u64 = 30;
/// Default `ovsApplyTimeout` in seconds: covers ovs-vswitchd's reconnect back-off (up to 8 s)
/// after an `ovsdb-server` restart, plus the restart itself.
pub const DEFAULT_OVS_APPLY_TIMEOUT: u64 = 20;
/// Largest `ovsApplyTimeout` accepted, in seconds.
pub const MAX_OVS_APPLY_TIMEOUT: u64 = 3600;

/// The wire shape of the configuration; every field optional so validation can say what is wrong.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawNetConf {
    cni_version: Option<String>,
    name: Option<String>,
    #[serde(rename = "type")]
    plugin_type: Option<String>,
    #[serde(rename = "deviceID")]
    device_id: Option<String>,
    #[serde(rename = "pciBusID")]
    pci_bus_id: Option<String>,
    bridge: Option<String>,
    ovsdb_socket: Option<String>,
    provider: Option<String>,
    #[serde(rename = "ifaceID")]
    iface_id: Option<String>,
    ovn_installed_timeout: Option<u64>,
    ovs_apply_timeout: Option<u64>,
    mtu: Option<u32>,
    mac: Option<String>,
    vlan: Option<u16>,
    ipam: Option<RawIpam>,
    state_dir: Option<PathBuf>,
    log_file: Option<PathBuf>,
    log_level: Option<String>,
    log_format: Option<String>,
    runtime_config: Option<RawRuntimeConfig>,
    prev_result: Option<Value>,
    #[serde(rename = "cni.dev/valid-attachments")]
    valid_attachments: Option<Vec<Attachment>>,
    #[serde(rename = "cni.dev/attachments")]
    attachments: Option<Vec<Attachment>>,
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

#[derive(Debug, Deserialize)]
struct RawIpam {
    #[serde(rename = "type")]
    ipam_type: Option<String>,
    #[serde(flatten)]
    _other: BTreeMap<String, Value>,
}

#[derive(Debug, Default, Deserialize)]
struct RawRuntimeConfig {
    mac: Option<String>,
    ips: Option<Vec<String>>,
    #[serde(rename = "deviceID")]
    device_id: Option<String>,
    #[serde(flatten)]
    _other: BTreeMap<String, Value>,
}

/// One `cni.dev/valid-attachments` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Attachment {
    /// Container ID.
    #[serde(rename = "containerID")]
    pub container_id: String,
    /// Interface name.
    pub ifname: String,
}

/// Keys that CNI runtimes add and we accept silently.
const TOLERATED: &[&str] = &[
    "capabilities",
    "args",
    "dns",
    "cniVersions",
    "disableCheck",
    "disableGC",
];

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct NetConf {
    /// Requested spec version.
    pub cni_version: CniVersion,
    /// Network name.
    pub name: String,
    /// The VF (`runtimeConfig.deviceID` > `deviceID` > `pciBusID`).
    pub device_id: Option<PciAddress>,
    /// OVS bridge.
    pub bridge: String,
    /// Where ovsdb-server listens: `unix:/absolute/path` or `tcp:HOST:PORT`.
    pub ovsdb: Endpoint,
    /// Kube-OVN provider.
    pub provider: Option<String>,
    /// Explicit OVN port name.
    pub iface_id: Option<String>,
    /// How long to wait for `ovn-installed`; zero means don't.
    pub ovn_installed_timeout: Duration,
    /// How long DEL waits for OVS to confirm a port removal: `ovsdb-server` reachable again
    /// and ovs-vswitchd caught up (never zero).
    pub ovs_apply_timeout: Duration,
    /// Pod interface MTU.
    pub mtu: Option<u32>,
    /// `mac` key (lowest precedence).
    pub mac: Option<MacAddr>,
    /// `runtimeConfig.mac` (highest precedence).
    pub runtime_mac: Option<MacAddr>,
    /// OVS access tag.
    pub vlan: Option<u16>,
    /// IPAM plugin type, when IPAM is delegated.
    pub ipam_type: Option<String>,
    /// `runtimeConfig.ips`.
    pub runtime_ips: Vec<IpNet>,
    /// State directory.
    pub state_dir: PathBuf,
    /// Log file.
    pub log_file: Option<PathBuf>,
    /// Log level (`logLevel`, names shared with the device plugin).
    pub log_level: Level,
    /// Log line format (`logFormat`: `text` or `json`).
    pub log_format: Format,
    /// `prevResult`, when given.
    pub prev_result: Option<Value>,
    /// GC: attachments to keep (`cni.dev/valid-attachments` or `cni.dev/attachments`).
    pub valid_attachments: Option<Vec<Attachment>>,
    /// Keys we do not know (warned about).
    pub unknown_keys: Vec<String>,
    /// The configuration as received, handed to IPAM.
    pub raw: Value,
}

/// Why the configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum NetconfError {
    /// Stdin is not JSON.
    #[error("network configuration is not valid JSON")]
    Decode(#[source] serde_json::Error),
    /// A field has the wrong type (found by [`field_type::find`]).
    #[error("network configuration field {field:?} must be {expected}, not {found}")]
    FieldType {
        /// The top-level key.
        field: String,
        /// What it must be.
        expected: String,
        /// What it is.
        found: String,
        /// The parser's own words.
        #[source]
        source: serde_json::Error,
    },
    /// A field has the wrong type and no single key explains it.
    #[error("network configuration has a field of the wrong type")]
    WrongType(#[source] serde_json::Error),
    /// A required field is missing.
    #[error("network configuration lacks required field {field:?}")]
    Missing {
        /// The field.
        field: &'static str,
    },
    /// `cniVersion` is not one we speak.
    #[error("network configuration asks for a CNI version we do not speak")]
    Version(#[source] crate::version::UnsupportedVersion),
    /// A value cannot be honoured.
    #[error("network configuration field {field:?} has invalid value {value:?}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// The value.
        value: String,
        /// Why.
        reason: &'static str,
    },
}

impl ErrorCode for NetconfError {
    fn code(&self) -> u32 {
        match self {
            NetconfError::Decode(_) => code::DECODE,
            NetconfError::Version(_) => code::INCOMPATIBLE_VERSION,
            _ => code::INVALID_CONFIG,
        }
    }
}

fn invalid(field: &'static str, value: impl Into<String>, reason: &'static str) -> NetconfError {
    NetconfError::Invalid {
        field,
        value: value.into(),
        reason,
    }
}

fn parse_pci(field: &'static str, s: &str) -> Result<PciAddress, NetconfError> {
    s.parse()
        .map_err(|_| invalid(field, s, "not a PCI address (DDDD:BB:DD.F)"))
}

fn parse_mac(field: &'static str, s: &str) -> Result<MacAddr, NetconfError> {
    s.parse()
        .map_err(|_| invalid(field, s, "not a unicast MAC address"))
}

/// A valid Linux interface or OVS port name.
pub fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name.chars().any(|c| c == '/' || c == ':' || c.is_whitespace())
}

impl NetConf {
    /// Parses and validates stdin.
    pub fn parse(bytes: &[u8]) -> Result<NetConf, NetconfError> {
        let raw_value: Value = serde_json::from_slice(bytes).map_err(NetconfError::Decode)?;
        if !raw_value.is_object() {
            return Err(invalid("<root>", raw_value.to_string(), "must be a JSON object"));
        }
        let raw: RawNetConf = match serde_json::from_value(raw_value.clone()) {
            Ok(raw) => raw,
            Err(whole) => {
                let object = raw_value.as_object().cloned().unwrap_or_default();
                return Err(field_type::find::<RawNetConf>(&object).unwrap_or(NetconfError::WrongType(whole)));
            }
        };
        let cni_version = raw
            .cni_version
            .as_deref()
            .ok_or(NetconfError::Missing { field: "cniVersion" })?
            .parse()
            .map_err(NetconfError::Version)?;
        let name = raw
            .name
            .filter(|n| !n.is_empty())
            .ok_or(NetconfError::Missing { field: "name" })?;
        if let Some(t) = raw.plugin_type.as_ref().filter(|t| *t != "sriov-ovs") {
            tracing::warn!(plugin_type = %t, "network configuration type is not sriov-ovs");
        }
        let rc = raw.runtime_config.unwrap_or_default();
        let device_id = match (&rc.device_id, &raw.device_id, &raw.pci_bus_id) {
            (Some(d), _, _) => Some(parse_pci("runtimeConfig.deviceID", d)?),
            (None, Some(d), _) => Some(parse_pci("deviceID", d)?),
            (None, None, Some(d)) => Some(parse_pci("pciBusID", d)?),
            _ => None,
        };
        let bridge = raw.bridge.unwrap_or_else(|| DEFAULT_BRIDGE.to_string());
        if !valid_ifname(&bridge) {
            return Err(invalid("bridge", bridge, "not a valid bridge name"));
        }
        let socket = raw
            .ovsdb_socket
            .unwrap_or_else(|| DEFAULT_OVSDB_SOCKET.to_string());
        // A relative path would depend on the runtime's working directory: refuse it.
        let ovsdb = match Endpoint::parse(&socket) {
            Ok(Endpoint::Unix(path)) if socket.starts_with("unix:/") => Endpoint::Unix(path),
            Ok(tcp @ Endpoint::Tcp(_)) => tcp,
            _ => {
                return Err(invalid(
                    "ovsdbSocket",
                    socket,
                    "use unix:/absolute/path or tcp:HOST:PORT",
                ))
            }
        };
        let provider = raw.provider.filter(|p| !p.is_empty());
        let iface_id = match raw.iface_id {
            Some(id) if id.is_empty() => return Err(invalid("ifaceID", id, "must not be empty")),
            other => other,
        };
        if let Some(mtu) = raw.mtu.filter(|m| !(68..=65535).contains(m)) {
            return Err(invalid("mtu", mtu.to_string(), "must be between 68 and 65535"));
        }
        if let Some(vlan) = raw.vlan.filter(|v| !(1..=4094).contains(v)) {
            return Err(invalid("vlan", vlan.to_string(), "must be between 1 and 4094"));
        }
        let mac = raw.mac.as_deref().map(|m| parse_mac("mac", m)).transpose()?;
        let runtime_mac = rc
            .mac
            .as_deref()
            .map(|m| parse_mac("runtimeConfig.mac", m))
            .transpose()?;
        let runtime_ips = rc
            .ips
            .unwrap_or_default()
            .iter()
            .map(|ip| {
                ip.parse::<IpNet>()
                    .map_err(|_| invalid("runtimeConfig.ips", ip.clone(), "not ADDRESS/PREFIX"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let ipam_type = match raw.ipam {
            Some(ipam) => match ipam.ipam_type {
                Some(t) if !t.is_empty() && !t.contains('/') => Some(t),
                Some(t) => return Err(invalid("ipam.type", t, "not a plugin name")),
                None => return Err(NetconfError::Missing { field: "ipam.type" }),
            },
            None => None,
        };
        let log_level = match raw.log_level {
            Some(l) => l.parse().map_err(|_| {
                invalid(
                    "logLevel",
                    l,
                    "accepted are error, warn (or warning), info, debug, trace",
                )
            })?,
            None => Level::Info,
        };
        let log_format = match raw.log_format {
            Some(f) => f
                .parse()
                .map_err(|_| invalid("logFormat", f, "accepted are text, json"))?,
            None => Format::Text,
        };
        let apply = raw.ovs_apply_timeout.unwrap_or(DEFAULT_OVS_APPLY_TIMEOUT);
        let refused = match apply {
            0 => Some("want at least 1 second: DEL must see ovs-vswitchd release a port before renaming its representor"),
            // Deadlines are `Instant::now() + timeout`, which panics past the clock's range.
            t if t > MAX_OVS_APPLY_TIMEOUT => Some("want at most 3600 seconds (one hour)"),
            _ => None,
        };
        if let Some(reason) = refused {
            return Err(invalid("ovsApplyTimeout", apply.to_string(), reason));
        }
        let unknown_keys: Vec<String> = raw
            .other
            .keys()
            .filter(|k| !TOLERATED.contains(&k.as_str()))
            .cloned()
            .collect();
        Ok(NetConf {
            cni_version,
            name,
            device_id,
            bridge,
            ovsdb,
            provider,
            iface_id,
            ovn_installed_timeout: Duration::from_secs(
                raw.ovn_installed_timeout.unwrap_or(DEFAULT_OVN_INSTALLED_TIMEOUT),
            ),
            ovs_apply_timeout: Duration::from_secs(apply),
            mtu: raw.mtu,
            mac,
            runtime_mac,
            vlan: raw.vlan,
            ipam_type,
            runtime_ips,
            state_dir: raw.state_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR)),
            log_file: raw.log_file,
            log_level,
            log_format,
            prev_result: raw.prev_result,
            valid_attachments: raw.valid_attachments.or(raw.attachments),
            unknown_keys,
            raw: raw_value,
        })
    }

    /// The MAC to give the pod interface: `runtimeConfig.mac` > `CNI_ARGS MAC=` > `mac`.
    pub fn effective_mac(&self, args: &CniArgs) -> Result<Option<MacAddr>, NetconfError> {
        if let Some(m) = self.runtime_mac {
            return Ok(Some(m));
        }
        if let Some(m) = &args.mac {
            return parse_mac("CNI_ARGS MAC", m).map(Some);
        }
        Ok(self.mac)
    }

    /// The OVN logical port name: `ifaceID`, else `<pod>.<ns>[.<provider>]` when the provider and pod identity are known.
    pub fn ovn_port_name(&self, args: &CniArgs) -> Option<String> {
        if let Some(id) = &self.iface_id {
            return Some(id.clone());
        }
        let provider = self.provider.as_deref()?;
        let (pod, ns) = (args.pod_name.as_deref()?, args.pod_namespace.as_deref()?);
        Some(if provider == "ovn" {
            format!("{pod}.{ns}")
        } else {
            format!("{pod}.{ns}.{provider}")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<NetConf, NetconfError> {
        NetConf::parse(v.to_string().as_bytes())
    }

    fn base() -> Value {
        json!({"cniVersion": "1.0.0", "name": "sriov", "type": "sriov-ovs", "deviceID": "0000:84:00.2"})
    }

    #[test]
    fn defaults_apply() {
        let c = parse(base()).unwrap();
        assert_eq!(c.bridge, "br-int");
        assert_eq!(c.ovsdb, Endpoint::Unix(PathBuf::from("/run/openvswitch/db.sock")));
        assert_eq!(c.state_dir, PathBuf::from("/var/lib/cni/sriov-ovs"));
        assert_eq!(c.ovn_installed_timeout, Duration::from_secs(30));
        assert_eq!(c.ovs_apply_timeout, Duration::from_secs(20));
        assert_eq!(c.device_id.unwrap().to_string(), "0000:84:00.2");
        assert!(c.unknown_keys.is_empty());
    }

    #[test]
    fn ovs_apply_timeout_is_read_in_seconds() {
        let mut v = base();
        v["ovsApplyTimeout"] = json!(3);
        assert_eq!(parse(v).unwrap().ovs_apply_timeout, Duration::from_secs(3));
    }

    #[test]
    fn ovs_apply_timeout_beyond_an_hour_is_refused_not_a_panic() {
        let mut v = base();
        v["ovsApplyTimeout"] = json!(3600);
        assert_eq!(
            parse(v.clone()).unwrap().ovs_apply_timeout,
            Duration::from_secs(3600)
        );
        v["ovsApplyTimeout"] = json!(u64::MAX);
        let e = parse(v).unwrap_err().to_string();
        assert!(e.contains("ovsApplyTimeout") && e.contains("at most 3600"), "{e}");
    }

    #[test]
    fn device_id_sources_in_order() {
        let mut v = base();
        v["runtimeConfig"] = json!({"deviceID": "0000:84:00.3"});
        assert_eq!(parse(v).unwrap().device_id.unwrap().to_string(), "0000:84:00.3");
        let v = json!({"cniVersion": "0.3.1", "name": "n", "pciBusID": "84:00.4"});
        assert_eq!(parse(v).unwrap().device_id.unwrap().to_string(), "0000:84:00.4");
    }

    #[test]
    fn mac_precedence_runtime_then_args_then_conf() {
        let mut v = base();
        v["mac"] = json!("02:00:00:00:00:01");
        let args = CniArgs::parse("MAC=02:00:00:00:00:02").unwrap();
        let c = parse(v.clone()).unwrap();
        assert_eq!(
            c.effective_mac(&CniArgs::default()).unwrap().unwrap().to_string(),
            "02:00:00:00:00:01"
        );
        assert_eq!(
            c.effective_mac(&args).unwrap().unwrap().to_string(),
            "02:00:00:00:00:02"
        );
        v["runtimeConfig"] = json!({"mac": "02:00:00:00:00:03"});
        assert_eq!(
            parse(v)
                .unwrap()
                .effective_mac(&args)
                .unwrap()
                .unwrap()
                .to_string(),
            "02:00:00:00:00:03"
        );
    }

    #[test]
    fn ovn_port_name_follows_provider_and_iface_id() {
        let args = CniArgs::parse("K8S_POD_NAME=p;K8S_POD_NAMESPACE=n").unwrap();
        let mut v = base();
        assert_eq!(parse(v.clone()).unwrap().ovn_port_name(&args), None);
        v["provider"] = json!("ovn");
        assert_eq!(parse(v.clone()).unwrap().ovn_port_name(&args).unwrap(), "p.n");
        v["provider"] = json!("sriov.kube-system");
        assert_eq!(
            parse(v.clone()).unwrap().ovn_port_name(&args).unwrap(),
            "p.n.sriov.kube-system"
        );
        assert_eq!(
            parse(v.clone())
                .unwrap()
                .ovn_port_name(&CniArgs::parse("K8S_POD_NAME=p").unwrap()),
            None
        );
        v["ifaceID"] = json!("explicit");
        assert_eq!(
            parse(v).unwrap().ovn_port_name(&CniArgs::default()).unwrap(),
            "explicit"
        );
    }

    #[test]
    fn runtime_injected_keys_tolerated_and_unknown_reported() {
        let mut v = base();
        v["prevResult"] = json!({"cniVersion": "1.0.0"});
        v["capabilities"] = json!({"ips": true});
        v["runtimeConfig"] = json!({"ips": ["10.0.0.2/24"], "portMappings": []});
        v["frobnicate"] = json!(1);
        let c = parse(v).unwrap();
        assert_eq!(c.unknown_keys, vec!["frobnicate".to_string()]);
        assert_eq!(c.runtime_ips[0].to_string(), "10.0.0.2/24");
        assert!(c.prev_result.is_some());
    }

    #[test]
    fn wrong_type_names_the_field_the_expected_type_and_what_was_found() {
        for (key, value, message) in [
            (
                "mtu",
                json!("1400"),
                r#"network configuration field "mtu" must be a JSON number (an integer, e.g. 1400), not string "1400""#,
            ),
            (
                "vlan",
                json!(true),
                r#"network configuration field "vlan" must be a JSON number (an integer from 1 to 4094), not boolean true"#,
            ),
            (
                "bridge",
                json!(7),
                r#"network configuration field "bridge" must be a JSON string, not number 7"#,
            ),
            (
                "ovnInstalledTimeout",
                json!(-1),
                r#"network configuration field "ovnInstalledTimeout" must be a JSON number (whole seconds, e.g. 30), not number -1"#,
            ),
            (
                "ipam",
                json!("kube-ovn"),
                r#"network configuration field "ipam" must be a JSON object, not string "kube-ovn""#,
            ),
        ] {
            let mut v = base();
            v[key] = value;
            let error = parse(v).unwrap_err();
            assert_eq!(error.to_string(), message);
            assert_eq!(error.code(), 7);
        }
        let mut v = base();
        v["runtimeConfig"] = json!({"ips": "10.0.0.2/24"});
        let error = parse(v).unwrap_err().to_string();
        assert!(
            error.starts_with(r#"network configuration field "runtimeConfig" must be a well-formed JSON object (invalid type: string "10.0.0.2/24", expected a sequence"#),
            "{error}"
        );
    }

    #[test]
    fn log_level_and_format_take_the_names_the_device_plugin_takes() {
        let mut v = base();
        v["logLevel"] = json!("warning");
        v["logFormat"] = json!("json");
        let c = parse(v).unwrap();
        assert_eq!((c.log_level, c.log_format), (Level::Warn, Format::Json));
        let c = parse(base()).unwrap();
        assert_eq!((c.log_level, c.log_format), (Level::Info, Format::Text));
        let mut v = base();
        v["logLevel"] = json!("verbose");
        assert_eq!(
            parse(v).unwrap_err().to_string(),
            r#"network configuration field "logLevel" has invalid value "verbose": accepted are error, warn (or warning), info, debug, trace"#
        );
    }

    #[test]
    fn gc_attachments_under_either_key() {
        let mut v = base();
        v["cni.dev/attachments"] = json!([{"containerID": "c1", "ifname": "eth0"}]);
        assert_eq!(parse(v).unwrap().valid_attachments.unwrap()[0].container_id, "c1");
    }

    #[test]
    fn ovsdb_socket_takes_unix_and_tcp_endpoints() {
        let mut v = base();
        v["ovsdbSocket"] = json!("tcp:127.0.0.1:6640");
        assert_eq!(parse(v).unwrap().ovsdb, Endpoint::Tcp("127.0.0.1:6640".into()));
        let mut v = base();
        v["ovsdbSocket"] = json!("unix:/var/run/openvswitch/db.sock");
        assert_eq!(
            parse(v).unwrap().ovsdb.to_string(),
            "unix:/var/run/openvswitch/db.sock"
        );
    }

    #[test]
    fn bad_input_maps_to_the_right_code() {
        let e = NetConf::parse(b"{not json").unwrap_err();
        assert_eq!(e.code(), 6);
        let e = NetConf::parse(b"").unwrap_err();
        assert_eq!(e.code(), 6);
        let mut v = base();
        v["mtu"] = json!("big");
        assert_eq!(parse(v).unwrap_err().code(), 7);
        let mut v = base();
        v["cniVersion"] = json!("0.2.0");
        assert_eq!(parse(v).unwrap_err().code(), 1);
        for (key, val) in [
            ("deviceID", json!("garbage")),
            ("mac", json!("01:00:00:00:00:01")),
            ("mtu", json!(10)),
            ("vlan", json!(5000)),
            ("ovsdbSocket", json!("ssl:1.2.3.4:6640")),
            ("ovsdbSocket", json!("tcp:1.2.3.4")),
            ("ovsdbSocket", json!("unix:run/db.sock")),
            ("ovsdbSocket", json!("/run/openvswitch/db.sock")),
            ("bridge", json!("a/b")),
            ("logLevel", json!("loud")),
            ("logLevel", json!("panic")),
            ("logFormat", json!("logfmt")),
            ("ipam", json!({"subnet": "10.0.0.0/24"})),
            ("ifaceID", json!("")),
            ("ovnInstalledTimeout", json!(-1)),
            ("ovsApplyTimeout", json!(0)),
            ("ovsApplyTimeout", json!(-1)),
            ("name", json!("")),
        ] {
            let mut v = base();
            v[key] = val;
            assert_eq!(parse(v).unwrap_err().code(), 7, "{key}");
        }
        assert_eq!(parse(json!({"name": "x"})).unwrap_err().code(), 7);
        assert_eq!(parse(json!([1])).unwrap_err().code(), 7);
    }
}
