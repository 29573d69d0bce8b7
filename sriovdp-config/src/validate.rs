//! Turns the raw config into validated resources, rejecting anything the
//! plugin cannot honour.

use std::collections::{BTreeMap, HashMap};

use sriov_host::PciAddress;

use crate::range::PfSelector;
use crate::raw::{RawConfig, RawResource, RawSelector};
use crate::selector::Selector;
use crate::ConfigError;

/// The only `deviceType` this plugin serves.
pub const NET_DEVICE: &str = "netDevice";

/// A validated configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Resources, in file order (earlier resources take devices first).
    pub resources: Vec<ResourceConfig>,
}

/// One validated resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceConfig {
    /// Resource prefix (`mellanox.com`).
    pub prefix: String,
    /// Resource name (`cx5_sriov_switchdev`).
    pub name: String,
    /// Do not report NUMA topology for this resource's devices.
    pub exclude_topology: bool,
    /// Selectors, OR'ed in order.
    pub selectors: Vec<Selector>,
    /// `additionalInfo`: key/values added to each device's `_INFO` entry.
    pub additional_info: AdditionalInfo,
}

/// The Go plugin's `additionalInfo`: key/values for every device (`"*"`)
/// and per device address; a device's own values override `"*"`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AdditionalInfo {
    /// The key is in the config (even as `{}`): Go then gives every
    /// device an `extra` entry, empty when no values apply.
    pub configured: bool,
    /// Values of `"*"`.
    pub all: BTreeMap<String, String>,
    /// Values per device.
    pub by_device: BTreeMap<PciAddress, BTreeMap<String, String>>,
}

impl AdditionalInfo {
    /// The values for `device`: `"*"` first, then the device's own.
    pub fn for_device(&self, device: &PciAddress) -> BTreeMap<String, String> {
        let mut values = self.all.clone();
        if let Some(own) = self.by_device.get(device) {
            values.extend(own.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        values
    }
}

impl ResourceConfig {
    /// `<prefix>/<name>`, as registered with the kubelet.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.prefix, self.name)
    }

    /// Socket file name: `<prefix>_<name>.sock`.
    pub fn socket_name(&self) -> String {
        format!("{}_{}.sock", self.prefix, self.name)
    }

    /// Name of the environment variable listing allocated PCI addresses:
    /// `PCIDEVICE_<PREFIX>_<NAME>` with `.` turned into `_`, upper case.
    pub fn env_name(&self) -> String {
        format!("PCIDEVICE_{}_{}", self.prefix, self.name)
            .replace('.', "_")
            .to_ascii_uppercase()
    }
}

impl Config {
    /// Validates `raw`; `default_prefix` applies where `resourcePrefix` is absent.
    pub fn validate(raw: RawConfig, default_prefix: &str) -> Result<Config, ConfigError> {
        let mut resources = Vec::with_capacity(raw.resources.len());
        let mut seen: HashMap<String, usize> = HashMap::new();
        for resource in raw.resources {
            let index = resource.index;
            let validated = validate_resource(resource, default_prefix)?;
            let full_name = validated.full_name();
            if let Some(first_index) = seen.get(&full_name) {
                return Err(ConfigError::DuplicateResource {
                    resource: validated.name,
                    full_name,
                    first_index: *first_index,
                });
            }
            seen.insert(full_name, index);
            resources.push(validated);
        }
        Ok(Config { resources })
    }
}

fn validate_resource(raw: RawResource, default_prefix: &str) -> Result<ResourceConfig, ConfigError> {
    let label = raw.label();
    let bad = |key: &'static str, value: &str, reason: &str| ConfigError::BadValue {
        resource: label.clone(),
        key,
        value: value.to_string(),
        reason: reason.to_string(),
    };
    let Some(name) = raw.resource_name.clone() else {
        return Err(ConfigError::MissingResourceName { resource: label });
    };
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(bad("resourceName", &name, "must match [A-Za-z0-9_-]+"));
    }
    let prefix = raw
        .resource_prefix
        .clone()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| default_prefix.to_string());
    if !valid_prefix(&prefix) {
        return Err(bad(
            "resourcePrefix",
            &prefix,
            "must be a DNS subdomain such as mellanox.com",
        ));
    }
    if let Some(device_type) = &raw.device_type {
        if device_type != NET_DEVICE && !device_type.is_empty() {
            return Err(bad(
                "deviceType",
                device_type,
                "only \"netDevice\" is supported (accelerator and auxNetDevice resources are not)",
            ));
        }
    }
    if raw.selectors.is_empty() {
        return Err(match raw.selectors_value {
            None => ConfigError::MissingSelectors { resource: label },
            Some(value) => ConfigError::NoSelectors {
                resource: label,
                value,
            },
        });
    }
    let selectors = raw
        .selectors
        .iter()
        .map(|s| validate_selector(s, &label))
        .collect::<Result<Vec<_>, _>>()?;
    let mut additional_info = AdditionalInfo {
        configured: raw.additional_info.is_some(),
        ..AdditionalInfo::default()
    };
    for (device, values) in raw.additional_info.iter().flatten() {
        let values: BTreeMap<String, String> = values.iter().cloned().collect();
        if device == "*" {
            additional_info.all.extend(values);
            continue;
        }
        // Go compares the key with the device's address as text; parsing it
        // catches keys that could never match.
        let address: PciAddress = device.parse().map_err(|_| {
            bad(
                "additionalInfo",
                device,
                "not \"*\" or a PCI address such as 0000:84:00.2",
            )
        })?;
        additional_info
            .by_device
            .entry(address)
            .or_default()
            .extend(values);
    }
    Ok(ResourceConfig {
        prefix,
        name,
        exclude_topology: raw.exclude_topology,
        selectors,
        additional_info,
    })
}

fn valid_prefix(prefix: &str) -> bool {
    prefix.len() <= 253
        && prefix.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn validate_selector(raw: &RawSelector, label: &str) -> Result<Selector, ConfigError> {
    let bad = |key: &'static str, value: &str, reason: String| ConfigError::BadValue {
        resource: label.to_string(),
        key,
        value: value.to_string(),
        reason,
    };
    let hex_ids = |key: &'static str, values: &[String]| {
        values
            .iter()
            .map(|v| parse_hex_id(v).ok_or_else(|| bad(key, v, "not a 4-digit hex ID such as 15b3".into())))
            .collect::<Result<Vec<u16>, _>>()
    };
    let pf_selectors = |key: &'static str, values: &[String], addresses_only: bool| {
        values
            .iter()
            .map(|v| PfSelector::parse(v, addresses_only).map_err(|reason| bad(key, v, reason)))
            .collect::<Result<Vec<_>, _>>()
    };
    Ok(Selector {
        vendors: hex_ids("vendors", &raw.vendors)?,
        devices: hex_ids("devices", &raw.devices)?,
        drivers: raw.drivers.clone(),
        pci_addresses: raw
            .pci_addresses
            .iter()
            .map(|v| {
                v.parse::<PciAddress>()
                    .map_err(|_| bad("pciAddresses", v, "not a PCI address such as 0000:84:00.2".into()))
            })
            .collect::<Result<_, _>>()?,
        acpi_indexes: raw.acpi_indexes.clone(),
        pf_names: pf_selectors("pfNames", &raw.pf_names, false)?,
        root_devices: pf_selectors("rootDevices", &raw.root_devices, true)?,
        link_types: raw.link_types.iter().map(|t| t.to_ascii_lowercase()).collect(),
        is_rdma: raw.is_rdma,
        need_vhost_net: raw.need_vhost_net,
    })
}

fn parse_hex_id(value: &str) -> Option<u16> {
    let digits = value.trim();
    let digits = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
        .unwrap_or(digits);
    if digits.is_empty() || digits.len() > 4 {
        return None;
    }
    u16::from_str_radix(digits, 16).ok()
}

#[cfg(test)]
mod tests {
    use crate::{parse, parse_with, ConfigError, Selector, UnknownKeys};

    const GUIDE: &str = r#"{
        "resourceList": [{
            "resourcePrefix": "mellanox.com",
            "resourceName": "cx5_sriov_switchdev",
            "selectors": {
                "vendors": ["15b3"],
                "devices": ["1018"],
                "drivers": ["mlx5_core"]
            }
        }]
    }"#;

    #[test]
    fn guide_config_is_accepted() {
        let config = parse(GUIDE, "intel.com").unwrap();
        let r = &config.resources[0];
        assert_eq!(r.full_name(), "mellanox.com/cx5_sriov_switchdev");
        assert_eq!(r.socket_name(), "mellanox.com_cx5_sriov_switchdev.sock");
        assert_eq!(r.env_name(), "PCIDEVICE_MELLANOX_COM_CX5_SRIOV_SWITCHDEV");
        assert_eq!(r.selectors[0].vendors, [0x15b3]);
        assert_eq!(r.selectors[0].devices, [0x1018]);
    }

    #[test]
    fn missing_prefix_takes_the_default() {
        let config = parse(
            r#"{"resourceList":[{"resourceName":"a","selectors":{}}]}"#,
            "intel.com",
        )
        .unwrap();
        assert_eq!(config.resources[0].full_name(), "intel.com/a");
    }

    #[test]
    fn an_empty_selector_object_is_one_match_all_selector() {
        for selectors in ["{}", "[{}]"] {
            let text = format!(r#"{{"resourceList":[{{"resourceName":"all","selectors":{selectors}}}]}}"#);
            let config = parse(&text, "intel.com").unwrap();
            assert_eq!(
                config.resources[0].selectors,
                [Selector::default()],
                "{selectors}"
            );
        }
    }

    #[test]
    fn a_resource_without_a_selector_object_is_rejected() {
        assert_eq!(
            err(r#"{"resourceList":[{"resourceName":"typo"}]}"#),
            r#"resource "typo": key "selectors" is missing: at least one selector object is needed ({} matches every device)"#
        );
        for (value, shown) in [("null", "null"), ("[ ]", "[]")] {
            let text = format!(r#"{{"resourceList":[{{"resourceName":"typo","Selectors":{value}}}]}}"#);
            let e = parse(&text, "intel.com").unwrap_err();
            assert!(matches!(e, ConfigError::NoSelectors { .. }), "{e:?}");
            assert_eq!(
                e.to_string(),
                format!(
                    r#"resource "typo": key "selectors": value {shown} holds no selector object: at least one is needed ({{}} matches every device)"#
                )
            );
        }
        // A later valid resource does not make the config acceptable.
        assert!(matches!(
            parse(
                r#"{"resourceList":[{"resourceName":"ok","selectors":{}},{"resourceName":"b","selectors":[]}]}"#,
                "intel.com"
            ),
            Err(ConfigError::NoSelectors { resource, .. }) if resource == r#""b""#
        ));
    }

    fn err(text: &str) -> String {
        parse(text, "intel.com").unwrap_err().to_string()
    }

    #[test]
    fn bad_values_name_resource_key_and_value() {
        assert_eq!(
            err(r#"{"resourceList":[{"resourceName":"bad name"}]}"#),
            r#"resource "bad name": key "resourceName": bad value "bad name": must match [A-Za-z0-9_-]+"#
        );
        assert_eq!(
            err(r#"{"resourceList":[{"resourceName":"a","selectors":{"pfNames":["ens1f0#3-1"]}}]}"#),
            r#"resource "a": key "pfNames": bad value "ens1f0#3-1": range "3-1" starts after it ends"#
        );
        assert_eq!(
            err(r#"{"resourceList":[{"resourceName":"a","deviceType":"accelerator"}]}"#),
            r#"resource "a": key "deviceType": bad value "accelerator": only "netDevice" is supported (accelerator and auxNetDevice resources are not)"#
        );
        assert_eq!(
            err(r#"{"resourceList":[{"resourceName":"a","selectors":{"vendors":["xyz"]}}]}"#),
            r#"resource "a": key "vendors": bad value "xyz": not a 4-digit hex ID such as 15b3"#
        );
        assert_eq!(
            err(r#"{"resourceList":[{"resourceName":"a","selectors":{"rootDevices":["ens1f0"]}}]}"#),
            r#"resource "a": key "rootDevices": bad value "ens1f0": "ens1f0" is not a PCI address"#
        );
        assert_eq!(
            err(r#"{"resourceList":[{"resourceName":"a","selectors":{"pciAddresses":["84:00"]}}]}"#),
            r#"resource "a": key "pciAddresses": bad value "84:00": not a PCI address such as 0000:84:00.2"#
        );
        assert_eq!(
            err(r#"{"resourceList":[{"resourceName":"a","resourcePrefix":"Bad_Prefix"}]}"#),
            r#"resource "a": key "resourcePrefix": bad value "Bad_Prefix": must be a DNS subdomain such as mellanox.com"#
        );
        assert_eq!(
            err(r#"{"resourceList":[{"selectors":{}}]}"#),
            r#"resource #0: key "resourceName" is missing"#
        );
    }

    #[test]
    fn duplicate_prefix_and_name_is_rejected() {
        assert_eq!(
            err(
                r#"{"resourceList":[{"resourceName":"a","selectors":{}},{"resourceName":"a","resourcePrefix":"intel.com","selectors":{}}]}"#
            ),
            r#"resource "a": key "resourceName": duplicate resource "intel.com/a" (also resource #0)"#
        );
        // Same name under another prefix is a different resource.
        assert!(parse(
            r#"{"resourceList":[{"resourceName":"a","selectors":{}},{"resourceName":"a","resourcePrefix":"mellanox.com","selectors":{}}]}"#,
            "intel.com"
        )
        .is_ok());
    }

    #[test]
    fn additional_info_is_configured_when_present_even_empty_but_not_null() {
        let configured = |info: &str| {
            let text = format!(r#"{{"resourceList":[{{"resourceName":"a","selectors":{{}}{info}}}]}}"#);
            parse(&text, "intel.com").unwrap().resources[0]
                .additional_info
                .configured
        };
        assert!(!configured(""));
        assert!(!configured(r#","additionalInfo":null"#));
        assert!(configured(r#","additionalInfo":{}"#));
    }

    #[test]
    fn additional_info_applies_star_then_the_device_own_values() {
        let config = parse(
            r#"{"resourceList":[{"resourceName":"a","selectors":{},"additionalInfo":{
                "*": {"net": "sriov", "mtu": "1500"},
                "0000:84:00.2": {"mtu": "9000"}}}]}"#,
            "intel.com",
        )
        .unwrap();
        let info = &config.resources[0].additional_info;
        let own = info.for_device(&"0000:84:00.2".parse().unwrap());
        assert_eq!(own["mtu"], "9000");
        assert_eq!(own["net"], "sriov");
        assert_eq!(info.for_device(&"0000:84:00.3".parse().unwrap())["mtu"], "1500");
        assert_eq!(
            err(r#"{"resourceList":[{"resourceName":"a","selectors":{},"additionalInfo":{"eth0":{}}}]}"#),
            r#"resource "a": key "additionalInfo": bad value "eth0": not "*" or a PCI address such as 0000:84:00.2"#
        );
    }

    #[test]
    fn unknown_selector_key_is_an_error_naming_key_resource_and_accepted_keys() {
        let text = r#"{"resourceList":[{"resourceName":"cx5","selectors":{"vendor":["15b3"]}}]}"#;
        let e = parse(text, "intel.com").unwrap_err();
        assert!(matches!(e, ConfigError::UnknownKey(_)), "{e:?}");
        assert_eq!(
            e.to_string(),
            r#"resource "cx5": unknown selector key "vendor" (accepted: vendors, devices, drivers, pciAddresses, acpiIndexes, pfNames, rootDevices, linkTypes, isRdma, needVhostNet); --lenient-config ignores unknown keys with a warning"#
        );
        // Lenient: Go's behaviour, the selector then filters nothing.
        let config = parse_with(text, "intel.com", UnknownKeys::Warn).unwrap();
        assert_eq!(config.resources[0].selectors, [Selector::default()]);
    }

    #[test]
    fn unknown_resource_key_is_an_error_but_a_top_level_one_is_not() {
        let e = err(r#"{"resourceList":[{"resourceName":"cx5","selector":{},"selectors":{}}]}"#);
        assert_eq!(
            e,
            r#"resource "cx5": unknown resource key "selector" (accepted: resourceName, resourcePrefix, deviceType, excludeTopology, selectors, additionalInfo); --lenient-config ignores unknown keys with a warning"#
        );
        assert!(parse(
            r#"{"comment":"x","resourceList":[{"resourceName":"cx5","selectors":{}}]}"#,
            "intel.com"
        )
        .is_ok());
    }

    #[test]
    fn an_empty_resource_list_is_an_error_even_when_lenient() {
        for mode in [UnknownKeys::Reject, UnknownKeys::Warn] {
            let e = parse_with(r#"{"resourceList":[]}"#, "intel.com", mode).unwrap_err();
            assert!(matches!(e, ConfigError::EmptyResourceList), "{e:?}");
        }
        assert_eq!(
            err(r#"{"resourceList":[]}"#),
            r#"config key "resourceList" is empty: at least one resource is needed"#
        );
    }

    #[test]
    fn bad_json_is_an_error() {
        assert!(matches!(
            parse("{", "intel.com"),
            Err(ConfigError::ParseJson { .. })
        ));
    }
}
