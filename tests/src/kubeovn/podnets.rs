//! Which Kube-OVN networks a pod has, as the controller decides (kube-ovn `pkg/controller/pod.go`
//! `getPodKubeovnNets` and `getPodAttachmentNet` at v1.12.35, `util.IsOvnNetwork`): attachments
//! whose NAD has a `kube-ovn` plugin get provider `<nad>.<ns>.ovn` (whatever the netconf's
//! `provider` says) and the subnet named by `<provider>.kubernetes.io/logical_switch`, else the
//! Subnet whose `spec.provider` is the provider, else the default; the primary `ovn` network is
//! added unless `v1.multus-cni.io/default-network` replaces it.

use serde::Deserialize;
use serde_json::Value;

use super::annotations::{self as ann, DEFAULT_NETWORK, NETWORKS, OVN_PROVIDER};
use super::store::{annotation, meta_str};
use crate::nad::Nad;

/// Why a pod's networks cannot be determined.
#[derive(Debug, thiserror::Error)]
pub enum NetsError {
    /// A network-selection annotation does not parse.
    #[error("pod {pod}: annotation {key} is not a network selection")]
    Selection {
        /// `ns/name`.
        pod: String,
        /// The annotation.
        key: &'static str,
    },
    /// A selected NAD is unknown.
    #[error("pod {pod}: no NetworkAttachmentDefinition {nad}")]
    NoNad {
        /// `ns/name`.
        pod: String,
        /// `ns/name` of the NAD.
        nad: String,
    },
}

/// One Kube-OVN network of a pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodNet {
    /// Provider (`ovn`, `sriov.default.ovn`).
    pub provider: String,
    /// Subnet (logical switch) name.
    pub subnet: String,
}

/// `getPodKubeovnNets` at v1.12.35: the pod's Kube-OVN networks, given the NADs, the Subnet
/// objects (for `spec.provider`) and the namespace's default subnet.
pub fn pod_nets(
    pod: &Value,
    nads: &[Nad],
    subnets: &[Value],
    default_subnet: &str,
) -> Result<Vec<PodNet>, NetsError> {
    let (ns, name) = (meta_str(pod, "namespace"), meta_str(pod, "name"));
    let id = format!("{ns}/{name}");
    let default_net = annotation(pod, DEFAULT_NETWORK);
    let mut selections = vec![];
    for (key, text) in [
        (DEFAULT_NETWORK, default_net),
        (NETWORKS, annotation(pod, NETWORKS)),
    ] {
        if let Some(text) = text.filter(|t| !t.is_empty()) {
            selections
                .extend(parse_selections(text, ns).ok_or(NetsError::Selection { pod: id.clone(), key })?);
        }
    }
    let default_subnet = annotation(pod, &ann::key(OVN_PROVIDER, ann::LOGICAL_SWITCH))
        .unwrap_or(default_subnet)
        .to_string();
    let mut nets = vec![];
    for (nad_ns, nad_name) in selections {
        let nad = nads
            .iter()
            .find(|n| n.namespace == nad_ns && n.name == nad_name)
            .ok_or_else(|| NetsError::NoNad {
                pod: id.clone(),
                nad: format!("{nad_ns}/{nad_name}"),
            })?;
        let is_ovn = nad.plugins().is_ok_and(|ps| {
            ps.iter()
                .any(|p| p.get("type").and_then(Value::as_str) == Some(super::shim::CNI_TYPE))
        });
        if !is_ovn {
            continue;
        }
        let provider = format!("{nad_name}.{nad_ns}.ovn");
        let subnet = annotation(pod, &ann::key(&provider, ann::LOGICAL_SWITCH))
            .map(str::to_string)
            .or_else(|| {
                subnets
                    .iter()
                    .find(|s| s.pointer("/spec/provider").and_then(Value::as_str) == Some(provider.as_str()))
                    .map(|s| meta_str(s, "name").to_string())
            })
            .unwrap_or_else(|| default_subnet.clone());
        nets.push(PodNet { provider, subnet });
    }
    if default_net.is_none() {
        nets.push(PodNet {
            provider: OVN_PROVIDER.to_string(),
            subnet: default_subnet,
        });
    }
    Ok(nets)
}

#[derive(Deserialize)]
struct Selection {
    name: String,
    namespace: Option<String>,
}

/// Network-selection annotation: a JSON list of elements, or `ns/name@if` items separated by
/// commas (Multus' short form).
fn parse_selections(text: &str, pod_ns: &str) -> Option<Vec<(String, String)>> {
    let text = text.trim();
    if text.starts_with('[') {
        let list: Vec<Selection> = serde_json::from_str(text).ok()?;
        return Some(
            list.into_iter()
                .map(|s| (s.namespace.unwrap_or_else(|| pod_ns.to_string()), s.name))
                .collect(),
        );
    }
    Some(
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|item| {
                let item = item.split('@').next().unwrap_or(item);
                match item.split_once('/') {
                    Some((ns, name)) => (ns.to_string(), name.to_string()),
                    None => (pod_ns.to_string(), item.to_string()),
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selections_in_json_and_short_form() {
        assert_eq!(
            parse_selections(
                r#"[{"name":"sriov","namespace":"default","default-route":["10.10.204.254"]}]"#,
                "x"
            ),
            Some(vec![("default".into(), "sriov".into())])
        );
        assert_eq!(
            parse_selections("default/sriov, other@net2", "ns"),
            Some(vec![
                ("default".into(), "sriov".into()),
                ("ns".into(), "other".into())
            ])
        );
        assert_eq!(parse_selections("[{", "ns"), None);
    }

    #[test]
    fn attachment_provider_ignores_netconf_provider_and_default_net_drops_ovn() {
        let nad = Nad {
            name: "sriov".into(),
            namespace: "default".into(),
            resource_name: None,
            config: json!({"cniVersion": "0.3.1", "plugins": [
                {"type": "kube-ovn", "server_socket": "/s", "provider": "whatever"},
                {"type": "portmap"}]}),
            path: "x".into(),
        };
        let plain = Nad {
            name: "plain".into(),
            config: json!({"type": "macvlan"}),
            ..nad.clone()
        };
        let subnets = vec![json!({"metadata": {"name": "att"}, "spec": {"provider": "sriov.default.ovn"}})];
        let pod = json!({"metadata": {"name": "p", "namespace": "default", "annotations": {
            NETWORKS: "default/sriov,default/plain"}}});
        let nets = pod_nets(&pod, &[nad.clone(), plain], &subnets, "ovn-default").unwrap();
        assert_eq!(
            nets,
            vec![
                PodNet {
                    provider: "sriov.default.ovn".into(),
                    subnet: "att".into()
                },
                PodNet {
                    provider: "ovn".into(),
                    subnet: "ovn-default".into()
                },
            ]
        );
        let pod = json!({"metadata": {"name": "p", "namespace": "default", "annotations": {
            DEFAULT_NETWORK: "default/sriov"}}});
        let nets = pod_nets(&pod, &[nad], &[], "ovn-default").unwrap();
        assert_eq!(
            nets,
            vec![PodNet {
                provider: "sriov.default.ovn".into(),
                subnet: "ovn-default".into()
            }]
        );
        let e = pod_nets(&pod, &[], &[], "ovn-default").unwrap_err();
        assert!(matches!(e, NetsError::NoNad { .. }), "{e}");
    }
}
