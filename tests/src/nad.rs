//! NetworkAttachmentDefinitions as Multus reads them: the YAML objects (one or many per file),
//! their `k8s.v1.cni.cncf.io/resourceName` annotation and CNI config, and network-selection elements.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

/// The annotation naming the device plugin resource of a NAD.
pub const RESOURCE_ANNOTATION: &str = "k8s.v1.cni.cncf.io/resourceName";

/// The Kube-OVN guide's NetworkAttachmentDefinition, verbatim: "Mellanox 网卡 Offload 支持",
/// section "安装 Multus-CNI" → "创建 NetworkAttachmentDefinition" (kube-ovn docs, v1.12). Copied
/// here because CI has no copy of the guide.
pub const GUIDE_NAD: &str = r#"apiVersion: "k8s.cni.cncf.io/v1"
kind: NetworkAttachmentDefinition
metadata:
  name: sriov
  namespace: default
  annotations:
    k8s.v1.cni.cncf.io/resourceName: mellanox.com/cx5_sriov_switchdev
spec:
  config: '{
    "cniVersion": "0.3.1",
    "name": "kube-ovn",
    "plugins":[
        {
            "type":"kube-ovn",
            "server_socket":"/run/openvswitch/kube-ovn-daemon.sock",
            "provider": "sriov.default.ovn"
        },
        {
            "type":"portmap",
            "capabilities":{
                "portMappings":true
            }
        }
    ]
}'
"#;

/// The `server_socket` the guide's NAD names: kube-ovn-daemon's.
pub const GUIDE_SOCKET: &str = "/run/openvswitch/kube-ovn-daemon.sock";

/// Errors of reading NetworkAttachmentDefinitions.
#[derive(Debug, thiserror::Error)]
pub enum NadError {
    /// A NAD file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A NAD file is not valid YAML of the expected shape.
    #[error("{path}: not a NetworkAttachmentDefinition")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_yaml_ng::Error,
    },
    /// `spec.config` is not a JSON CNI config.
    #[error("{nad}: spec.config is not valid CNI JSON")]
    Config {
        /// The NAD (`namespace/name`).
        nad: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// No NAD of that name in the directory.
    #[error("no NetworkAttachmentDefinition {namespace}/{name} in {dir}")]
    NotFound {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// Directory searched.
        dir: PathBuf,
    },
    /// The config has no plugin, or a plugin has no `type`.
    #[error("{nad}: {problem}")]
    BadConfig {
        /// The NAD.
        nad: String,
        /// What is wrong.
        problem: String,
    },
}

#[derive(Debug, Deserialize)]
struct RawNad {
    kind: String,
    metadata: RawMeta,
    spec: RawSpec,
}

#[derive(Debug, Deserialize)]
struct RawMeta {
    name: String,
    #[serde(default = "default_ns")]
    namespace: String,
    #[serde(default)]
    annotations: std::collections::BTreeMap<String, String>,
}

fn default_ns() -> String {
    "default".to_string()
}

#[derive(Debug, Deserialize)]
struct RawSpec {
    config: String,
}

/// A NetworkAttachmentDefinition.
#[derive(Clone, Debug)]
pub struct Nad {
    /// Name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Its `k8s.v1.cni.cncf.io/resourceName`, if any.
    pub resource_name: Option<String>,
    /// `spec.config`, parsed.
    pub config: Value,
    /// The file it came from.
    pub path: PathBuf,
}

impl Nad {
    /// Parses every NetworkAttachmentDefinition in a (multi-document) YAML text.
    pub fn parse_all(yaml: &str, path: &Path) -> Result<Vec<Nad>, NadError> {
        let mut out = vec![];
        for doc in serde_yaml_ng::Deserializer::from_str(yaml) {
            let value = serde_yaml_ng::Value::deserialize(doc).map_err(|source| NadError::Parse {
                path: path.to_path_buf(),
                source,
            })?;
            let is_nad = value.get("kind").and_then(|k| k.as_str()) == Some("NetworkAttachmentDefinition");
            if !is_nad {
                continue;
            }
            let raw: RawNad = serde_yaml_ng::from_value(value).map_err(|source| NadError::Parse {
                path: path.to_path_buf(),
                source,
            })?;
            debug_assert_eq!(raw.kind, "NetworkAttachmentDefinition");
            let id = format!("{}/{}", raw.metadata.namespace, raw.metadata.name);
            let config: Value = serde_json::from_str(&raw.spec.config)
                .map_err(|source| NadError::Config { nad: id, source })?;
            out.push(Nad {
                resource_name: raw.metadata.annotations.get(RESOURCE_ANNOTATION).cloned(),
                name: raw.metadata.name,
                namespace: raw.metadata.namespace,
                config,
                path: path.to_path_buf(),
            });
        }
        Ok(out)
    }

    /// Finds NAD `namespace/name` among the `*.yaml`/`*.yml` files of `dir` (not recursive).
    pub fn find(dir: &Path, namespace: &str, name: &str) -> Result<Nad, NadError> {
        let not_found = || NadError::NotFound {
            namespace: namespace.to_string(),
            name: name.to_string(),
            dir: dir.to_path_buf(),
        };
        let entries = std::fs::read_dir(dir).map_err(|source| NadError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        files.sort();
        for path in files {
            let text = std::fs::read_to_string(&path).map_err(|source| NadError::Read {
                path: path.clone(),
                source,
            })?;
            // Other manifests (DaemonSets, ConfigMaps) may not parse as NADs: skip their errors.
            let Ok(nads) = Nad::parse_all(&text, &path) else {
                continue;
            };
            if let Some(nad) = nads
                .into_iter()
                .find(|n| n.namespace == namespace && n.name == name)
            {
                return Ok(nad);
            }
        }
        Err(not_found())
    }

    /// `namespace/name`.
    pub fn id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The conflist's `cniVersion`.
    pub fn cni_version(&self) -> String {
        self.config
            .get("cniVersion")
            .and_then(Value::as_str)
            .unwrap_or("0.3.1")
            .to_string()
    }

    /// The plugins of the config: `plugins` of a conflist, or the single conf itself.
    pub fn plugins(&self) -> Result<Vec<Map<String, Value>>, NadError> {
        let bad = |problem: &str| NadError::BadConfig {
            nad: self.id(),
            problem: problem.to_string(),
        };
        let list: Vec<Value> = match self.config.get("plugins") {
            Some(Value::Array(p)) => p.clone(),
            Some(_) => return Err(bad("plugins is not a list")),
            None => vec![self.config.clone()],
        };
        if list.is_empty() {
            return Err(bad("no plugins"));
        }
        list.into_iter()
            .map(|p| match p {
                Value::Object(m) if m.get("type").is_some_and(Value::is_string) => Ok(m),
                _ => Err(bad("a plugin has no type")),
            })
            .collect()
    }
}

/// A network-selection element (`k8s.v1.cni.cncf.io/networks` entry).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct NetworkSelection {
    /// NAD name.
    pub name: String,
    /// NAD namespace.
    #[serde(default = "default_ns")]
    pub namespace: String,
    /// Interface name in the pod (`net1` when absent).
    #[serde(default)]
    pub interface: Option<String>,
    /// Static IPs (`ips` capability).
    #[serde(default)]
    pub ips: Vec<String>,
    /// Static MAC (`mac` capability).
    #[serde(default)]
    pub mac: Option<String>,
    /// Gateways to install as the pod's default route through this interface.
    #[serde(default, rename = "default-route")]
    pub default_route: Vec<Ipv4Addr>,
}
