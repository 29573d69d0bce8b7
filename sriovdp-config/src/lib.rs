//! The Go `sriov-network-device-plugin` configuration (`sriovdp-config`):
//! read case-insensitively into raw types, then validated into the types the
//! plugin uses.

mod range;
mod raw;
mod selector;
mod validate;

use std::path::{Path, PathBuf};

pub use range::{PfSelector, PfTarget, VfRange};
pub use raw::{KeyScope, RawConfig, RawResource, RawSelector, UnknownKey, RESOURCE_KEYS, SELECTOR_KEYS};
pub use selector::{Candidate, Selector};
pub use validate::{AdditionalInfo, Config, ResourceConfig};

/// What to do with keys the parser does not understand in a resource or
/// selector (top-level ones are always a warning).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UnknownKeys {
    /// Refuse the config: a typo'd selector key would otherwise match
    /// every device.
    #[default]
    Reject,
    /// Warn once per key and go on, as the Go plugin does
    /// (`--lenient-config`, for migrations).
    Warn,
}

/// The configuration could not be read or is invalid.
///
/// Every variant about a resource names it (`resourceName`, or its position
/// in `resourceList` when it has none), the offending key and its value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not JSON.
    #[error("config file {} is not valid JSON", path.display())]
    ParseJson {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// A value has the wrong JSON type.
    #[error("resource {resource}: key {key:?}: value {value} is not {expected}")]
    WrongType {
        /// The resource, or `config` for top-level keys.
        resource: String,
        /// The key.
        key: String,
        /// The value, as JSON.
        value: String,
        /// The JSON type expected.
        expected: &'static str,
    },
    /// The top level has no `resourceList`.
    #[error("config has no \"resourceList\" key")]
    MissingResourceList,
    /// `resourceList` is empty: the plugin would serve nothing.
    #[error("config key \"resourceList\" is empty: at least one resource is needed")]
    EmptyResourceList,
    /// A resource or selector has a key the parser does not know.
    #[error("{0}; --lenient-config ignores unknown keys with a warning")]
    UnknownKey(UnknownKey),
    /// A resource has no `resourceName`.
    #[error("resource {resource}: key \"resourceName\" is missing")]
    MissingResourceName {
        /// The resource's position, `#<index>`.
        resource: String,
    },
    /// A value is malformed.
    #[error("resource {resource}: key {key:?}: bad value {value:?}: {reason}")]
    BadValue {
        /// The resource.
        resource: String,
        /// The key.
        key: &'static str,
        /// The value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A resource has no `selectors` key. Matching every device instead would
    /// let a typo'd resource take all of them.
    #[error("resource {resource}: key \"selectors\" is missing: at least one selector object is needed ({{}} matches every device)")]
    MissingSelectors {
        /// The resource.
        resource: String,
    },
    /// A resource's `selectors` holds no selector object (`null`, `[]`).
    #[error("resource {resource}: key \"selectors\": value {value} holds no selector object: at least one is needed ({{}} matches every device)")]
    NoSelectors {
        /// The resource.
        resource: String,
        /// The value, as JSON.
        value: String,
    },
    /// A selector uses a Go plugin filter (`ddpProfiles`, `vdpaType`,
    /// `pKeys`, `auxTypes`) this plugin does not implement.
    #[error("resource {resource}: key {key:?}: value {value}: this filter is not supported by this device plugin, and ignoring it would offer devices it excludes")]
    UnsupportedFilter {
        /// The resource.
        resource: String,
        /// The key, as written.
        key: String,
        /// The value, as JSON.
        value: String,
    },
    /// Two resources have the same `<prefix>/<name>`.
    #[error("resource {resource:?}: key \"resourceName\": duplicate resource {full_name:?} (also resource #{first_index})")]
    DuplicateResource {
        /// The resource name.
        resource: String,
        /// `<prefix>/<name>`.
        full_name: String,
        /// Position of the first resource with that name.
        first_index: usize,
    },
}

/// Reads, parses and validates the config file at `path`; `default_prefix`
/// applies to resources without a `resourcePrefix`.
pub fn load_with(path: &Path, default_prefix: &str, unknown: UnknownKeys) -> Result<Config, ConfigError> {
    let text = std::fs::read(path).map_err(|source| ConfigError::ReadFile {
        path: path.to_path_buf(),
        source,
    })?;
    from_slice(&text, path, default_prefix, unknown)
}

/// Parses and validates config text (for tests and tools), rejecting
/// unknown resource and selector keys.
pub fn parse(text: &str, default_prefix: &str) -> Result<Config, ConfigError> {
    parse_with(text, default_prefix, UnknownKeys::Reject)
}

/// [`parse`] with a choice of what unknown keys do.
pub fn parse_with(text: &str, default_prefix: &str, unknown: UnknownKeys) -> Result<Config, ConfigError> {
    from_slice(text.as_bytes(), Path::new("<inline>"), default_prefix, unknown)
}

fn from_slice(
    text: &[u8],
    path: &Path,
    default_prefix: &str,
    unknown: UnknownKeys,
) -> Result<Config, ConfigError> {
    let value: serde_json::Value = serde_json::from_slice(text).map_err(|source| ConfigError::ParseJson {
        path: path.to_path_buf(),
        source,
    })?;
    let raw = RawConfig::from_json(&value)?;
    if raw.resources.is_empty() {
        return Err(ConfigError::EmptyResourceList);
    }
    for key in raw.unknown_keys() {
        if unknown == UnknownKeys::Reject && key.scope != KeyScope::TopLevel {
            return Err(ConfigError::UnknownKey(key));
        }
        tracing::warn!(config = %path.display(), "ignoring {key}");
    }
    Config::validate(raw, default_prefix)
}
