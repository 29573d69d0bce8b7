//! Raw config types mirroring the Go plugin's JSON. Keys are matched
//! case-insensitively, as Go's `encoding/json` does; unknown keys are kept
//! so they can be warned about.

use serde_json::{Map, Value};

use crate::ConfigError;

/// The whole file: `{"resourceList": [...]}`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RawConfig {
    /// Entries of `resourceList`, in order.
    pub resources: Vec<RawResource>,
    /// Top-level keys other than `resourceList`.
    pub unknown_keys: Vec<String>,
}

/// One entry of `resourceList`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RawResource {
    /// Position in `resourceList`.
    pub index: usize,
    /// `resourceName`.
    pub resource_name: Option<String>,
    /// `resourcePrefix`.
    pub resource_prefix: Option<String>,
    /// `deviceType`.
    pub device_type: Option<String>,
    /// `excludeTopology`.
    pub exclude_topology: bool,
    /// `selectors`: one object or a list of objects.
    pub selectors: Vec<RawSelector>,
    /// The `selectors` value as JSON, `None` when the key is absent (for
    /// the error when it holds no selector object).
    pub selectors_value: Option<String>,
    /// `additionalInfo`: `"*"` or a device's PCI address to key/values,
    /// in file order; `None` when absent or `null` (Go then adds no
    /// `extra` entry, while `{}` gives an empty one).
    pub additional_info: Option<Vec<RawAdditionalInfo>>,
    /// Keys not understood.
    pub unknown_keys: Vec<String>,
}

/// One `additionalInfo` entry: `"*"` or a PCI address, and its key/values.
pub type RawAdditionalInfo = (String, Vec<(String, String)>);

/// Keys a resource object accepts (matched case-insensitively).
pub const RESOURCE_KEYS: [&str; 6] = [
    "resourceName",
    "resourcePrefix",
    "deviceType",
    "excludeTopology",
    "selectors",
    "additionalInfo",
];

/// Keys a selector object accepts (matched case-insensitively). The Go
/// filters of [`UNSUPPORTED_SELECTOR_KEYS`] are known too, but only empty.
pub const SELECTOR_KEYS: [&str; 10] = [
    "vendors",
    "devices",
    "drivers",
    "pciAddresses",
    "acpiIndexes",
    "pfNames",
    "rootDevices",
    "linkTypes",
    "isRdma",
    "needVhostNet",
];

/// Selector keys of the Go plugin whose filters this plugin does not
/// implement. Ignoring one would offer devices it excludes, so a non-empty
/// value is an error rather than a warning.
pub const UNSUPPORTED_SELECTOR_KEYS: [&str; 4] = ["ddpProfiles", "vdpaType", "pKeys", "auxTypes"];

/// One selector object.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RawSelector {
    /// `vendors`: hex vendor IDs.
    pub vendors: Vec<String>,
    /// `devices`: hex device IDs.
    pub devices: Vec<String>,
    /// `drivers`.
    pub drivers: Vec<String>,
    /// `pciAddresses`.
    pub pci_addresses: Vec<String>,
    /// `acpiIndexes`.
    pub acpi_indexes: Vec<String>,
    /// `pfNames`: `<PF name or address>[#ranges]`.
    pub pf_names: Vec<String>,
    /// `rootDevices`: `<PF address>[#ranges]`.
    pub root_devices: Vec<String>,
    /// `linkTypes`.
    pub link_types: Vec<String>,
    /// `isRdma`.
    pub is_rdma: bool,
    /// `needVhostNet`.
    pub need_vhost_net: bool,
    /// Keys not understood.
    pub unknown_keys: Vec<String>,
}

impl RawConfig {
    /// Reads the raw config out of parsed JSON.
    pub fn from_json(value: &Value) -> Result<RawConfig, ConfigError> {
        let root = as_object(value, "config", "config")?;
        let mut config = RawConfig::default();
        let mut list = None;
        for (key, value) in root {
            if key.eq_ignore_ascii_case("resourceList") {
                list = Some(value);
            } else {
                config.unknown_keys.push(key.clone());
            }
        }
        let list = list.ok_or(ConfigError::MissingResourceList)?;
        let Value::Array(entries) = list else {
            return Err(wrong_type("config", "resourceList", list, "a list"));
        };
        for (index, entry) in entries.iter().enumerate() {
            config.resources.push(RawResource::from_json(index, entry)?);
        }
        Ok(config)
    }

    /// Every key not understood, top level first, then by resource.
    pub fn unknown_keys(&self) -> Vec<UnknownKey> {
        let mut out = Vec::new();
        let mut push = |resource: Option<&RawResource>, scope, keys: &[String]| {
            out.extend(keys.iter().map(|key| UnknownKey {
                resource: resource.map(RawResource::label),
                scope,
                key: key.clone(),
            }));
        };
        push(None, KeyScope::TopLevel, &self.unknown_keys);
        for resource in &self.resources {
            push(Some(resource), KeyScope::Resource, &resource.unknown_keys);
            for selector in &resource.selectors {
                push(Some(resource), KeyScope::Selector, &selector.unknown_keys);
            }
        }
        out
    }
}

/// Where an unknown key was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyScope {
    /// The top-level object (next to `resourceList`).
    TopLevel,
    /// A resource object.
    Resource,
    /// A selector object.
    Selector,
}

/// A key the parser does not understand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownKey {
    /// The resource's label (`"name"` or `#index`); `None` at top level.
    pub resource: Option<String>,
    /// Object kind holding the key.
    pub scope: KeyScope,
    /// The key, as written.
    pub key: String,
}

impl std::fmt::Display for UnknownKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(resource) = &self.resource {
            write!(f, "resource {resource}: ")?;
        }
        let (scope, accepted): (&str, &[&str]) = match self.scope {
            KeyScope::TopLevel => ("top-level", &["resourceList"]),
            KeyScope::Resource => ("resource", &RESOURCE_KEYS),
            KeyScope::Selector => ("selector", &SELECTOR_KEYS),
        };
        write!(
            f,
            "unknown {scope} key {:?} (accepted: {})",
            self.key,
            accepted.join(", ")
        )
    }
}

impl RawResource {
    fn from_json(index: usize, value: &Value) -> Result<RawResource, ConfigError> {
        let position = format!("#{index}");
        let object = as_object(value, &position, "resourceList")?;
        let mut resource = RawResource {
            index,
            ..RawResource::default()
        };
        // The name first, so later errors can name the resource.
        for (key, value) in object {
            if key.eq_ignore_ascii_case("resourceName") {
                resource.resource_name = Some(as_string(value, &position, key)?);
            }
        }
        let label = resource.label();
        for (key, value) in object {
            match key.to_ascii_lowercase().as_str() {
                "resourcename" => {}
                "resourceprefix" => resource.resource_prefix = Some(as_string(value, &label, key)?),
                "devicetype" => resource.device_type = Some(as_string(value, &label, key)?),
                "excludetopology" => resource.exclude_topology = as_bool(value, &label, key)?,
                "selectors" => {
                    resource.selectors = selectors(value, &label, key)?;
                    resource.selectors_value = Some(value.to_string());
                }
                "additionalinfo" => resource.additional_info = additional_info(value, &label, key)?,
                _ => resource.unknown_keys.push(key.clone()),
            }
        }
        Ok(resource)
    }

    /// How error messages name this resource: its quoted name, else `#<index>`.
    pub fn label(&self) -> String {
        match &self.resource_name {
            Some(name) => format!("{name:?}"),
            None => format!("#{}", self.index),
        }
    }
}

/// `{"*": {"k": "v"}, "0000:84:00.2": {...}}`; `null` is none.
fn additional_info(
    value: &Value,
    resource: &str,
    key: &str,
) -> Result<Option<Vec<RawAdditionalInfo>>, ConfigError> {
    if value.is_null() {
        return Ok(None);
    }
    as_object(value, resource, key)?
        .iter()
        .map(|(device, values)| {
            let entry_key = format!("{key}.{device}");
            let pairs = as_object(values, resource, &entry_key)?
                .iter()
                .map(|(k, v)| Ok((k.clone(), as_string(v, resource, &format!("{entry_key}.{k}"))?)))
                .collect::<Result<Vec<_>, ConfigError>>()?;
            Ok((device.clone(), pairs))
        })
        .collect::<Result<Vec<_>, ConfigError>>()
        .map(Some)
}

fn selectors(value: &Value, resource: &str, key: &str) -> Result<Vec<RawSelector>, ConfigError> {
    match value {
        Value::Object(map) => Ok(vec![RawSelector::from_map(map, resource)?]),
        Value::Array(items) => items
            .iter()
            .map(|item| RawSelector::from_map(as_object(item, resource, key)?, resource))
            .collect(),
        Value::Null => Ok(Vec::new()),
        other => Err(wrong_type(resource, key, other, "an object or a list of objects")),
    }
}

impl RawSelector {
    fn from_map(map: &Map<String, Value>, resource: &str) -> Result<RawSelector, ConfigError> {
        let mut selector = RawSelector::default();
        for (key, value) in map {
            let list = || as_string_list(value, resource, key);
            match key.to_ascii_lowercase().as_str() {
                "vendors" => selector.vendors = list()?,
                "devices" => selector.devices = list()?,
                "drivers" => selector.drivers = list()?,
                "pciaddresses" => selector.pci_addresses = list()?,
                "acpiindexes" => selector.acpi_indexes = list()?,
                "pfnames" => selector.pf_names = list()?,
                "rootdevices" => selector.root_devices = list()?,
                "linktypes" => selector.link_types = list()?,
                "isrdma" => selector.is_rdma = as_bool(value, resource, key)?,
                "needvhostnet" => selector.need_vhost_net = as_bool(value, resource, key)?,
                _ if is_unsupported(key) => {
                    // An empty filter excludes nothing in the Go plugin either.
                    if !is_empty(value) {
                        return Err(ConfigError::UnsupportedFilter {
                            resource: resource.to_string(),
                            key: key.clone(),
                            value: value.to_string(),
                        });
                    }
                }
                _ => selector.unknown_keys.push(key.clone()),
            }
        }
        Ok(selector)
    }
}

fn is_unsupported(key: &str) -> bool {
    UNSUPPORTED_SELECTOR_KEYS
        .iter()
        .any(|k| k.eq_ignore_ascii_case(key))
}

/// `null`, `""`, `[]` or `{}`: a filter that filters nothing.
fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
        Value::Bool(_) | Value::Number(_) => false,
    }
}

fn as_object<'a>(value: &'a Value, resource: &str, key: &str) -> Result<&'a Map<String, Value>, ConfigError> {
    match value {
        Value::Object(map) => Ok(map),
        other => Err(wrong_type(resource, key, other, "an object")),
    }
}

fn as_string(value: &Value, resource: &str, key: &str) -> Result<String, ConfigError> {
    match value {
        Value::String(s) => Ok(s.clone()),
        other => Err(wrong_type(resource, key, other, "a string")),
    }
}

fn as_bool(value: &Value, resource: &str, key: &str) -> Result<bool, ConfigError> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::Null => Ok(false),
        other => Err(wrong_type(resource, key, other, "true or false")),
    }
}

fn as_string_list(value: &Value, resource: &str, key: &str) -> Result<Vec<String>, ConfigError> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items.iter().map(|item| as_string(item, resource, key)).collect(),
        other => Err(wrong_type(resource, key, other, "a list of strings")),
    }
}

fn wrong_type(resource: &str, key: &str, value: &Value, expected: &'static str) -> ConfigError {
    ConfigError::WrongType {
        resource: resource.to_string(),
        key: key.to_string(),
        value: value.to_string(),
        expected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_match_case_insensitively() {
        let raw = RawConfig::from_json(&json!({
            "ResourceList": [{
                "RESOURCENAME": "a",
                "resourceprefix": "mellanox.com",
                "Selectors": {"Vendors": ["15b3"], "IsRdma": true, "NEEDVHOSTNET": true}
            }]
        }))
        .unwrap();
        let r = &raw.resources[0];
        assert_eq!(r.resource_name.as_deref(), Some("a"));
        assert_eq!(r.resource_prefix.as_deref(), Some("mellanox.com"));
        assert_eq!(r.selectors[0].vendors, ["15b3"]);
        assert!(r.selectors[0].is_rdma && r.selectors[0].need_vhost_net);
    }

    #[test]
    fn selectors_may_be_a_list_and_unknown_keys_are_listed_by_scope() {
        let raw = RawConfig::from_json(&json!({
            "resourceList": [{
                "resourceName": "a",
                "additionalinfo": {"*": {"k": "v"}},
                "resourcename2": 1,
                "selectors": [{"drivers": ["mlx5_core"]}, {"vendor": ["15b3"]}]
            }],
            "extra": 1
        }))
        .unwrap();
        assert_eq!(raw.resources[0].selectors.len(), 2);
        assert_eq!(
            raw.resources[0].additional_info,
            Some(vec![("*".to_string(), vec![("k".to_string(), "v".to_string())])])
        );
        let unknown = raw.unknown_keys();
        let scopes: Vec<(KeyScope, &str)> = unknown.iter().map(|u| (u.scope, u.key.as_str())).collect();
        assert_eq!(
            scopes,
            [
                (KeyScope::TopLevel, "extra"),
                (KeyScope::Resource, "resourcename2"),
                (KeyScope::Selector, "vendor")
            ]
        );
        assert_eq!(
            unknown[2].to_string(),
            r#"resource "a": unknown selector key "vendor" (accepted: vendors, devices, drivers, pciAddresses, acpiIndexes, pfNames, rootDevices, linkTypes, isRdma, needVhostNet)"#
        );
    }

    #[test]
    fn additional_info_values_must_be_strings() {
        let err = RawConfig::from_json(&json!({
            "resourceList": [{"resourceName": "a", "additionalInfo": {"*": {"mtu": 9000}}}]
        }))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"resource "a": key "additionalInfo.*.mtu": value 9000 is not a string"#
        );
    }

    #[test]
    fn unsupported_go_filters_are_errors_naming_resource_key_and_value() {
        let cases = [
            (
                json!({"ddpProfiles": ["GTPv1"]}),
                r#"key "ddpProfiles": value ["GTPv1"]"#,
            ),
            (json!({"VdpaType": "vhost"}), r#"key "VdpaType": value "vhost""#),
            (json!({"pKeys": ["0x8001"]}), r#"key "pKeys": value ["0x8001"]"#),
            (json!({"auxTypes": ["sf"]}), r#"key "auxTypes": value ["sf"]"#),
        ];
        for (selector, expected) in cases {
            let err = RawConfig::from_json(&json!({
                "resourceList": [{"resourceName": "gtp", "selectors": [{"vendors": ["8086"]}, selector]}]
            }))
            .unwrap_err();
            assert!(matches!(err, ConfigError::UnsupportedFilter { .. }), "{err:?}");
            assert_eq!(
                err.to_string(),
                format!(
                    r#"resource "gtp": {expected}: this filter is not supported by this device plugin, and ignoring it would offer devices it excludes"#
                )
            );
        }
    }

    #[test]
    fn empty_unsupported_filters_filter_nothing_and_are_accepted() {
        let raw = RawConfig::from_json(&json!({
            "resourceList": [{"resourceName": "a", "selectors": {
                "vendors": ["15b3"], "ddpProfiles": [], "vdpaType": "", "pKeys": null, "auxTypes": []
            }}]
        }))
        .unwrap();
        assert_eq!(raw.resources[0].selectors[0].vendors, ["15b3"]);
        assert!(raw.unknown_keys().is_empty(), "{:?}", raw.unknown_keys());
    }

    #[test]
    fn wrong_types_name_resource_key_and_value() {
        let err = RawConfig::from_json(&json!({
            "resourceList": [{"resourceName": "cx5", "selectors": {"vendors": "15b3"}}]
        }))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"resource "cx5": key "vendors": value "15b3" is not a list of strings"#
        );
        let err = RawConfig::from_json(&json!({"resourceList": {}})).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"resource config: key "resourceList": value {} is not a list"#
        );
        assert!(matches!(
            RawConfig::from_json(&json!({"resources": []})),
            Err(ConfigError::MissingResourceList)
        ));
    }
}
