//! The network configuration keys `sriov-ovs --help` lists, with their defaults: the table
//! a NetworkAttachmentDefinition author reads, checked against the parser by its tests.

use crate::netconf::{
    DEFAULT_BRIDGE, DEFAULT_OVN_INSTALLED_TIMEOUT, DEFAULT_OVSDB_SOCKET, DEFAULT_OVS_APPLY_TIMEOUT,
    DEFAULT_STATE_DIR,
};

/// One documented key.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    /// The key as written in the JSON.
    pub name: &'static str,
    /// Its default, or what happens without it.
    pub default: &'static str,
    /// What it does.
    pub meaning: &'static str,
}

/// Every key the plugin reads, in the order a configuration usually has them. Defaults
/// held in constants are filled in by [`help_text`].
pub const KEYS: &[Key] = &[
    Key { name: "cniVersion", default: "required", meaning: "0.3.1, 0.4.0, 1.0.0 or 1.1.0" },
    Key { name: "name", default: "required", meaning: "network name" },
    Key { name: "type", default: "sriov-ovs", meaning: "this plugin" },
    Key { name: "deviceID", default: "set by Multus", meaning: "the VF's PCI address, from the NAD's k8s.v1.cni.cncf.io/resourceName allocation (also pciBusID, runtimeConfig.deviceID)" },
    Key { name: "bridge", default: DEFAULT_BRIDGE, meaning: "OVS bridge the representor joins" },
    Key { name: "ovsdbSocket", default: DEFAULT_OVSDB_SOCKET, meaning: "OVSDB endpoint: unix:/absolute/path or tcp:HOST:PORT" },
    Key { name: "provider", default: "none", meaning: "Kube-OVN provider; OVN port <pod>.<namespace>.<provider>" },
    Key { name: "ifaceID", default: "from provider", meaning: "explicit OVN logical port name (external_ids:iface-id)" },
    Key { name: "ovnInstalledTimeout", default: "", meaning: "seconds to wait for ovn-installed on the port; 0 = do not wait" },
    Key { name: "ovsApplyTimeout", default: "", meaning: "seconds DEL/GC wait for ovs-vswitchd to apply a port removal (and for a restarting ovsdb-server); >= 1" },
    Key { name: "mtu", default: "unchanged", meaning: "pod interface MTU (68-65535)" },
    Key { name: "mac", default: "unchanged", meaning: "pod interface MAC (runtimeConfig.mac and CNI_ARGS MAC= win)" },
    Key { name: "vlan", default: "untagged", meaning: "OVS access tag (1-4094)" },
    Key { name: "ipam", default: "none", meaning: "IPAM plugin to delegate to ({\"type\": ...}); skipped when runtimeConfig.ips is set" },
    Key { name: "stateDir", default: DEFAULT_STATE_DIR, meaning: "where attachments are recorded for DEL and GC" },
    Key { name: "logFile", default: "stderr", meaning: "file to append logs to" },
    Key { name: "logLevel", default: "info", meaning: "error, warn (or warning), info, debug, trace" },
    Key { name: "logFormat", default: "text", meaning: "text, or json (one object per line)" },
];

/// The "Network configuration keys" section of `--help`.
pub fn help_text() -> String {
    let timeout = DEFAULT_OVN_INSTALLED_TIMEOUT.to_string();
    let apply = DEFAULT_OVS_APPLY_TIMEOUT.to_string();
    let mut text = String::from("Network configuration keys (stdin JSON; default in brackets):\n");
    for key in KEYS {
        let default = match key.name {
            "ovnInstalledTimeout" => timeout.as_str(),
            "ovsApplyTimeout" => apply.as_str(),
            _ => key.default,
        };
        text.push_str(&format!("  {:<20} [{default}] {}\n", key.name, key.meaning));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netconf::NetConf;
    use serde_json::{json, Value};

    /// A valid value for each key.
    fn sample(key: &str) -> Value {
        match key {
            "cniVersion" => json!("1.0.0"),
            "deviceID" => json!("0000:84:00.2"),
            "ovsdbSocket" => json!("unix:/run/openvswitch/db.sock"),
            "ovnInstalledTimeout" | "mtu" => json!(1400),
            "ovsApplyTimeout" => json!(20),
            "mac" => json!("02:00:00:00:00:01"),
            "vlan" => json!(100),
            "ipam" => json!({"type": "host-local"}),
            "logLevel" => json!("debug"),
            "logFormat" => json!("json"),
            _ => json!("x"),
        }
    }

    #[test]
    fn every_listed_key_is_one_the_parser_reads() {
        let mut conf = serde_json::Map::new();
        for key in KEYS {
            conf.insert(key.name.to_string(), sample(key.name));
        }
        let parsed = NetConf::parse(Value::Object(conf).to_string().as_bytes()).unwrap();
        assert!(parsed.unknown_keys.is_empty(), "{:?}", parsed.unknown_keys);
    }

    #[test]
    fn help_shows_the_parsers_defaults() {
        let text = help_text();
        let defaults = NetConf::parse(br#"{"cniVersion":"1.0.0","name":"n"}"#).unwrap();
        for shown in [
            format!("bridge               [{}]", defaults.bridge),
            format!("ovsdbSocket          [{}]", defaults.ovsdb),
            format!("stateDir             [{}]", defaults.state_dir.display()),
            format!(
                "ovnInstalledTimeout  [{}]",
                defaults.ovn_installed_timeout.as_secs()
            ),
            format!("ovsApplyTimeout      [{}]", defaults.ovs_apply_timeout.as_secs()),
            format!("logLevel             [{}]", defaults.log_level),
            format!("logFormat            [{}]", defaults.log_format),
        ] {
            assert!(text.contains(&shown), "{shown:?} not in\n{text}");
        }
    }
}
