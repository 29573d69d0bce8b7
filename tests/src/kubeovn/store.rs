//! The object store behind the API-server stand-in: pods (namespaced, core `v1`) and Kube-OVN
//! Subnets (cluster-scoped, `kubeovn.io/v1`) as JSON, one resourceVersion counter bumped on every
//! change, and the event history watches replay from. The Rust API here is what tests and the
//! controller stand-in use to play kubelet, scheduler and controller.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use serde_json::{json, Map, Value};
use tokio::sync::broadcast;

use super::objects::rfc3339_now;
pub use super::objects::{annotation, meta_str, rv_of, Kind, NewPod, SubnetSpec};

/// A watch event type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    /// Object created.
    Added,
    /// Object changed.
    Modified,
    /// Object removed; the event carries its last state.
    Deleted,
}

impl EventType {
    /// The wire name (`ADDED`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as watches stream it.
#[derive(Clone, Debug)]
pub struct Event {
    /// The resourceVersion the change produced.
    pub rv: u64,
    /// Kind of the object.
    pub kind: Kind,
    /// What happened.
    pub event_type: EventType,
    /// The object after the change (before it, for `Deleted`).
    pub object: Value,
}

impl Event {
    /// `metadata.namespace` (empty for cluster-scoped objects).
    pub fn namespace(&self) -> &str {
        meta_str(&self.object, "namespace")
    }

    /// `metadata.name`.
    pub fn name(&self) -> &str {
        meta_str(&self.object, "name")
    }
}

/// Errors of the Rust API.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such object.
    #[error("{} {namespace}/{name} not found", kind.plural())]
    NotFound {
        /// Kind.
        kind: Kind,
        /// Namespace (empty for cluster-scoped).
        namespace: String,
        /// Name.
        name: String,
    },
    /// The object exists already.
    #[error("{} {namespace}/{name} already exists", kind.plural())]
    AlreadyExists {
        /// Kind.
        kind: Kind,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
}

/// Annotation changes applied in one update: `Some` sets, `None` removes.
pub type AnnotationPatch = Vec<(String, Option<String>)>;

type Key = (Kind, String, String);

#[derive(Default)]
struct Inner {
    rv: u64,
    objects: BTreeMap<Key, Value>,
    history: Vec<Event>,
}

/// The store; shared between the HTTP server and the Rust API.
pub struct Store {
    inner: Mutex<Inner>,
    tx: broadcast::Sender<Event>,
    uid: AtomicU64,
}

impl Default for Store {
    fn default() -> Self {
        Store {
            inner: Mutex::new(Inner::default()),
            tx: broadcast::channel(4096).0,
            uid: AtomicU64::new(1),
        }
    }
}

impl Store {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.lock().rv
    }

    /// One object.
    pub fn get(&self, kind: Kind, namespace: &str, name: &str) -> Option<Value> {
        self.lock()
            .objects
            .get(&(kind, namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// Objects of `kind` (in `namespace` if given) that `filter` accepts, and the current
    /// resourceVersion.
    pub fn list(
        &self,
        kind: Kind,
        namespace: Option<&str>,
        filter: &dyn Fn(&Value) -> bool,
    ) -> (Vec<Value>, u64) {
        let inner = self.lock();
        let items = inner
            .objects
            .iter()
            .filter(|((k, ns, _), _)| *k == kind && namespace.is_none_or(|n| n == ns))
            .map(|(_, v)| v)
            .filter(|v| filter(v))
            .cloned()
            .collect();
        (items, inner.rv)
    }

    /// Events after `rv` and a receiver of later ones, taken atomically so none is lost.
    pub fn subscribe_after(&self, rv: u64) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let inner = self.lock();
        let rx = self.tx.subscribe();
        let past = inner.history.iter().filter(|e| e.rv > rv).cloned().collect();
        (past, rx)
    }

    /// The current objects of `kind` as synthetic `ADDED` events and a receiver of later
    /// events, taken atomically (a watch without resourceVersion).
    pub fn subscribe_current(&self, kind: Kind) -> (Vec<Event>, u64, broadcast::Receiver<Event>) {
        let inner = self.lock();
        let rx = self.tx.subscribe();
        let now = inner
            .objects
            .iter()
            .filter(|((k, _, _), _)| *k == kind)
            .map(|(_, v)| Event {
                rv: rv_of(v),
                kind,
                event_type: EventType::Added,
                object: v.clone(),
            })
            .collect();
        (now, inner.rv, rx)
    }

    fn commit(&self, inner: &mut Inner, kind: Kind, event_type: EventType, mut object: Value) -> Value {
        inner.rv += 1;
        object["metadata"]["resourceVersion"] = json!(inner.rv.to_string());
        let key = (
            kind,
            meta_str(&object, "namespace").to_string(),
            meta_str(&object, "name").to_string(),
        );
        if event_type == EventType::Deleted {
            inner.objects.remove(&key);
        } else {
            inner.objects.insert(key, object.clone());
        }
        let event = Event {
            rv: inner.rv,
            kind,
            event_type,
            object: object.clone(),
        };
        inner.history.push(event.clone());
        // No receiver is fine: nobody watches.
        let _ = self.tx.send(event);
        object
    }

    fn create(&self, kind: Kind, mut object: Value) -> Result<Value, StoreError> {
        let mut inner = self.lock();
        let (namespace, name) = (
            meta_str(&object, "namespace").to_string(),
            meta_str(&object, "name").to_string(),
        );
        if inner
            .objects
            .contains_key(&(kind, namespace.clone(), name.clone()))
        {
            return Err(StoreError::AlreadyExists {
                kind,
                namespace,
                name,
            });
        }
        let uid = self.uid.fetch_add(1, Ordering::Relaxed);
        object["metadata"]["uid"] = json!(format!("00000000-0000-4000-8000-{uid:012x}"));
        object["metadata"]["creationTimestamp"] = json!(rfc3339_now());
        Ok(self.commit(&mut inner, kind, EventType::Added, object))
    }

    fn modify(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        change: impl FnOnce(&mut Value),
    ) -> Result<Value, StoreError> {
        let mut inner = self.lock();
        let key = (kind, namespace.to_string(), name.to_string());
        let Some(mut object) = inner.objects.get(&key).cloned() else {
            return Err(not_found(kind, namespace, name));
        };
        change(&mut object);
        Ok(self.commit(&mut inner, kind, EventType::Modified, object))
    }

    fn delete(&self, kind: Kind, namespace: &str, name: &str) -> Result<Value, StoreError> {
        let mut inner = self.lock();
        let key = (kind, namespace.to_string(), name.to_string());
        let Some(object) = inner.objects.get(&key).cloned() else {
            return Err(not_found(kind, namespace, name));
        };
        Ok(self.commit(&mut inner, kind, EventType::Deleted, object))
    }

    /// Creates a pod (`Pending`, one container), as kubectl apply + the scheduler would.
    pub fn create_pod(&self, pod: NewPod) -> Result<Value, StoreError> {
        let mut spec = json!({"containers": [{"name": pod.name, "image": "docker.io/library/nginx:alpine"}]});
        if let Some(node) = &pod.node_name {
            spec["nodeName"] = json!(node);
        }
        let object = json!({
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": {"name": pod.name, "namespace": pod.namespace, "annotations": pod.annotations},
            "spec": spec,
            "status": {"phase": "Pending"},
        });
        self.create(Kind::Pod, object)
    }

    /// A pod.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<Value> {
        self.get(Kind::Pod, namespace, name)
    }

    /// Sets (`Some`) or removes (`None`) pod annotations in one change, like kube-ovn's
    /// `util.PatchAnnotations` merge patch.
    pub fn patch_pod_annotations(
        &self,
        namespace: &str,
        name: &str,
        patch: &[(String, Option<String>)],
    ) -> Result<Value, StoreError> {
        self.modify(Kind::Pod, namespace, name, |pod| {
            let meta = &mut pod["metadata"];
            if !meta.get("annotations").is_some_and(Value::is_object) {
                meta["annotations"] = Value::Object(Map::new());
            }
            if let Some(annotations) = meta["annotations"].as_object_mut() {
                for (k, v) in patch {
                    match v {
                        Some(v) => annotations.insert(k.clone(), json!(v)),
                        None => annotations.remove(k),
                    };
                }
            }
        })
    }

    /// Changes a pod with `change` (status, `spec.nodeName`, labels...): one update, one
    /// `MODIFIED` event.
    pub fn update_pod(
        &self,
        namespace: &str,
        name: &str,
        change: impl FnOnce(&mut Value),
    ) -> Result<Value, StoreError> {
        self.modify(Kind::Pod, namespace, name, change)
    }

    /// Deletes a pod at once (no graceful `deletionTimestamp` phase: the kubelet stand-in has
    /// already torn the sandbox down when a test deletes).
    pub fn delete_pod(&self, namespace: &str, name: &str) -> Result<Value, StoreError> {
        self.delete(Kind::Pod, namespace, name)
    }

    /// Creates or replaces a Subnet.
    pub fn put_subnet(&self, spec: &SubnetSpec) -> Value {
        let object = spec.to_json();
        let replaced = self.modify(Kind::Subnet, "", &spec.name, |old| {
            let meta = old["metadata"].clone();
            *old = object.clone();
            old["metadata"] = meta;
        });
        match replaced {
            Ok(v) => v,
            // Not there: create. Nothing else can fail, and a racing creator is only a test bug.
            Err(_) => self.create(Kind::Subnet, object).unwrap_or(Value::Null),
        }
    }

    /// A Subnet.
    pub fn subnet(&self, name: &str) -> Option<Value> {
        self.get(Kind::Subnet, "", name)
    }

    /// Creates or replaces node `name` with `labels` (as the kubelet and Kube-OVN's daemon label it).
    pub fn put_node(&self, name: &str, labels: &BTreeMap<String, String>) -> Value {
        let object = serde_json::json!({
            "kind": "Node", "apiVersion": "v1",
            "metadata": {"name": name, "labels": labels},
        });
        let replaced = self.modify(Kind::Node, "", name, |old| {
            old["metadata"]["labels"] = object["metadata"]["labels"].clone();
        });
        match replaced {
            Ok(v) => v,
            Err(_) => self.create(Kind::Node, object).unwrap_or(Value::Null),
        }
    }

    /// Deletes a Subnet.
    pub fn delete_subnet(&self, name: &str) -> Result<Value, StoreError> {
        self.delete(Kind::Subnet, "", name)
    }
}

fn not_found(kind: Kind, namespace: &str, name: &str) -> StoreError {
    StoreError::NotFound {
        kind,
        namespace: namespace.to_string(),
        name: name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_change_bumps_resource_version_and_is_replayed_after_it() {
        let s = Store::default();
        let p = s
            .create_pod(NewPod {
                namespace: "default".into(),
                name: "a".into(),
                ..NewPod::default()
            })
            .unwrap();
        let rv1 = rv_of(&p);
        let p = s
            .patch_pod_annotations("default", "a", &[("k".into(), Some("v".into()))])
            .unwrap();
        assert!(rv_of(&p) > rv1);
        assert_eq!(annotation(&p, "k"), Some("v"));
        let (past, _rx) = s.subscribe_after(rv1);
        assert_eq!(past.len(), 1);
        assert_eq!(past[0].event_type, EventType::Modified);
        let p2 = s
            .update_pod("default", "a", |p| p["spec"]["nodeName"] = json!("node-b"))
            .unwrap();
        assert_eq!(p2["spec"]["nodeName"], "node-b");
        assert!(rv_of(&p2) > rv_of(&p));
        s.delete_pod("default", "a").unwrap();
        assert!(s.pod("default", "a").is_none());
        assert!(matches!(
            s.delete_pod("default", "a"),
            Err(StoreError::NotFound { .. })
        ));
        let ts = meta_str(&p, "creationTimestamp");
        assert_eq!(ts.len(), 20, "{ts}");
        assert!(ts.starts_with("20") && ts.ends_with('Z'));
    }
}
