//! The Kubernetes API as the node server uses it: read a pod, wait for the controller's
//! annotations (a watch, not a sleep loop), read what of a Kube-OVN Subnet and of this node
//! decides the MTU. RBAC: get/list/watch pods, get subnets, get nodes.

use super::allocation;
use super::mtu::SubnetFacts;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ApiResource, DynamicObject};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The Kubernetes API could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The kubeconfig cannot be read.
    #[error("cannot read kubeconfig {path}")]
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// No in-cluster configuration (not running in a pod, or no service account).
    #[error(
        "no in-cluster Kubernetes configuration (run in a pod with a service account, or pass --kubeconfig)"
    )]
    InCluster(#[source] kube::config::InClusterError),
    /// The client cannot be built.
    #[error("cannot build the Kubernetes client")]
    Client(#[source] kube::Error),
    /// A request failed.
    #[error("cannot {what}")]
    Api {
        /// What was being read.
        what: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
    /// Watching failed.
    #[error("cannot {what}")]
    Watch {
        /// What was being watched.
        what: String,
        /// Why.
        #[source]
        source: kube::runtime::wait::Error,
    },
    /// The pod is gone.
    #[error("pod {namespace}/{name} does not exist")]
    NoPod {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// The controller did not finish in time.
    #[error(
        "pod {namespace}/{name} got no {what} for provider {provider} within {timeout:?}: \
         see kube-ovn-controller's logs (kubectl -n kube-system logs deploy/kube-ovn-controller)"
    )]
    Timeout {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// Provider.
        provider: String,
        /// `address` or `route`.
        what: &'static str,
        /// Waited for.
        timeout: Duration,
    },
}

/// The cluster's API.
#[derive(Clone)]
pub struct Cluster {
    client: Client,
}

impl Cluster {
    /// A client from `kubeconfig`, or the in-cluster service account.
    pub async fn connect(kubeconfig: Option<&Path>) -> Result<Cluster, ClusterError> {
        let config = match kubeconfig {
            Some(path) => {
                let err = |source: Box<dyn std::error::Error + Send + Sync>| ClusterError::Kubeconfig {
                    path: path.to_path_buf(),
                    source,
                };
                let file = Kubeconfig::read_from(path).map_err(|e| err(e.into()))?;
                Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
                    .await
                    .map_err(|e| err(e.into()))?
            }
            None => Config::incluster().map_err(ClusterError::InCluster)?,
        };
        let client = Client::try_from(config).map_err(ClusterError::Client)?;
        Ok(Cluster { client })
    }

    /// The pod's annotations once the controller is done with it for `provider` (allocated,
    /// and routed when `ifname` carries an OVN provider's default route), waiting up to `timeout`.
    pub async fn wait_ready(
        &self,
        namespace: &str,
        name: &str,
        provider: &str,
        ifname: &str,
        timeout: Duration,
    ) -> Result<BTreeMap<String, String>, ClusterError> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let annotations = |p: &Pod| p.metadata.annotations.clone().unwrap_or_default();
        let no_pod = || ClusterError::NoPod {
            namespace: namespace.into(),
            name: name.into(),
        };
        // One GET settles the common case (the controller was faster than the runtime).
        let pod = api.get_opt(name).await.map_err(|source| ClusterError::Api {
            what: format!("read pod {namespace}/{name}"),
            source,
        })?;
        let pod = pod.ok_or_else(no_pod)?;
        if allocation::ready(&annotations(&pod), provider, ifname) {
            return Ok(annotations(&pod));
        }
        tracing::info!(pod = %format!("{namespace}/{name}"), provider, "waiting for kube-ovn-controller's annotations");
        let ready = |p: Option<&Pod>| p.is_none_or(|p| allocation::ready(&annotations(p), provider, ifname));
        let waited = tokio::time::timeout(
            timeout,
            kube::runtime::wait::await_condition(api.clone(), name, ready),
        )
        .await;
        match waited {
            Ok(Ok(Some(pod))) => Ok(annotations(&pod)),
            Ok(Ok(None)) => Err(no_pod()),
            Ok(Err(source)) => Err(ClusterError::Watch {
                what: format!("watch pod {namespace}/{name}"),
                source,
            }),
            Err(_) => {
                // Say what is still missing now, not at the start: `allocated` may have come
                // during the wait while `routed` did not.
                let now = api.get_opt(name).await.ok().flatten().unwrap_or(pod);
                let allocated = annotations(&now)
                    .get(&allocation::key(provider, "allocated"))
                    .is_some_and(|v| v == "true");
                Err(ClusterError::Timeout {
                    namespace: namespace.into(),
                    name: name.into(),
                    provider: provider.into(),
                    what: if allocated {
                        "route (routed=true)"
                    } else {
                        "address (allocated=true)"
                    },
                    timeout,
                })
            }
        }
    }

    /// What of the Kube-OVN Subnet `name` decides a pod's MTU.
    pub async fn subnet(&self, name: &str) -> Result<SubnetFacts, ClusterError> {
        let resource = ApiResource {
            group: "kubeovn.io".into(),
            version: "v1".into(),
            api_version: "kubeovn.io/v1".into(),
            kind: "Subnet".into(),
            plural: "subnets".into(),
        };
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &resource);
        let subnet = api.get(name).await.map_err(|source| ClusterError::Api {
            what: format!("read Subnet {name}"),
            source,
        })?;
        let spec = &subnet.data["spec"];
        Ok(SubnetFacts {
            mtu: spec["mtu"]
                .as_u64()
                .and_then(|m| u32::try_from(m).ok())
                .filter(|m| *m > 0),
            logical_gateway: spec["logicalGateway"].as_bool().unwrap_or(false),
            u2o_interconnection: spec["u2oInterconnection"].as_bool().unwrap_or(false),
        })
    }

    /// The label `key` of node `node`.
    pub async fn node_label(&self, node: &str, key: &str) -> Result<Option<String>, ClusterError> {
        let api: Api<Node> = Api::all(self.client.clone());
        let found = api.get(node).await.map_err(|source| ClusterError::Api {
            what: format!("read node {node} (--node-name, else $KUBE_NODE_NAME, else the host name)"),
            source,
        })?;
        Ok(found.metadata.labels.and_then(|mut l| l.remove(key)))
    }
}
