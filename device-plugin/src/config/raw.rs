//! Raw config types mirroring the Go plugin's JSON. Keys are matched
//! case-insensitively, as Go's `encoding/json` does; unknown keys are kept
//! so they can be warned about.

use serde_json::{Map, Value};

use super::ConfigError;

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
    /// Keys not understood.
    pub unknown_keys: Vec<String>,
}

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

    /// Human-readable warnings about keys that were ignored.
    pub fn warnings(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .unknown_keys
            .iter()
            .map(|k| format!("ignoring unknown top-level key {k:?}"))
            .collect();
        for resource in &self.resources {
            let name = resource.label();
            for key in &resource.unknown_keys {
                out.push(format!("resource {name}: ignoring unknown key {key:?}"));
            }
            for selector in &resource.selectors {
                for key in &selector.unknown_keys {
                    out.push(format!("resource {name}: ignoring unknown selector key {key:?}"));
                }
            }
        }
        out
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
                "selectors" => resource.selectors = selectors(value, &label, key)?,
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

fn selectors(value: &Value, resource: &str, key: &str) -> Result<Vec<RawSelector>, ConfigError> {
    match value {
        Value::Object(map) => Ok(vec![RawSelector::from_map(map, resource)?]),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::Object(map) => RawSelector::from_map(map, resource),
                other => Err(wrong_type(resource, key, other, "an object")),
            })
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
                _ => selector.unknown_keys.push(key.clone()),
            }
        }
        Ok(selector)
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
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.clone()),
                other => Err(wrong_type(resource, key, other, "a string")),
            })
            .collect(),
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
    fn selectors_may_be_a_list_and_unknown_keys_warn() {
        let raw = RawConfig::from_json(&json!({
            "resourceList": [{
                "resourceName": "a",
                "additionalInfo": {},
                "selectors": [{"drivers": ["mlx5_core"]}, {"ddpProfiles": ["x"]}]
            }],
            "extra": 1
        }))
        .unwrap();
        assert_eq!(raw.resources[0].selectors.len(), 2);
        let warnings = raw.warnings();
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(warnings[2].contains("ddpProfiles"));
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
