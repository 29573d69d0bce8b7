//! Stand-in of the Kubernetes API server for what the Kube-OVN node server uses: pod get, list
//! and watch (`fieldSelector=metadata.name=...`, `resourceVersion`, `allowWatchBookmarks`,
//! `sendInitialEvents`, `timeoutSeconds`) and Kube-OVN Subnet get/list/watch
//! (`/apis/kubeovn.io/v1/subnets`, CRD `subnets.kubeovn.io` of kube-ovn `dist/images/install.sh`
//! at v1.12.35), and node get (its labels). Plain http on a loopback port, no authentication; errors are `Status` objects
//! as the real server writes them. Objects live in a [`Store`] the tests change directly.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::sync::oneshot;

use super::http::{full, Body};
use super::store::{meta_str, Kind, Store};
use super::watch::{watch, WatchOptions};

/// Errors of starting the stand-in.
#[derive(Debug, thiserror::Error)]
pub enum ApiServerError {
    /// The loopback port could not be bound or the runtime not built.
    #[error("cannot start the API-server stand-in")]
    Start(#[source] std::io::Error),
    /// The kubeconfig could not be written.
    #[error("cannot write kubeconfig {path}")]
    Kubeconfig {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A running stand-in; stops on drop.
pub struct ApiServer {
    addr: SocketAddr,
    store: Arc<Store>,
    runtime: tokio::runtime::Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ApiServer {
    /// Starts serving an empty store on `127.0.0.1:<free port>`, on its own thread and runtime
    /// so sync and async tests can use it alike.
    pub fn start() -> Result<ApiServer, ApiServerError> {
        let listener =
            std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(ApiServerError::Start)?;
        listener.set_nonblocking(true).map_err(ApiServerError::Start)?;
        let addr = listener.local_addr().map_err(ApiServerError::Start)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(ApiServerError::Start)?;
        let store = Arc::new(Store::default());
        let runtime = rt.handle().clone();
        let (stop, stopped) = oneshot::channel();
        let served = Arc::clone(&store);
        let thread = std::thread::spawn(move || {
            rt.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                tokio::select! {
                    () = accept_loop(listener, served) => {}
                    _ = stopped => {}
                }
            });
            rt.shutdown_timeout(Duration::from_secs(1));
        });
        Ok(ApiServer {
            addr,
            store,
            runtime,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Also serves on `127.0.0.1:<free port>` inside network namespace `netns` (by name, as
    /// `ip netns` knows it), so a process confined there (a simulated node's server) reaches
    /// the same store; returns that URL. Stops with the server.
    pub fn listen_in(&self, netns: &str) -> Result<String, ApiServerError> {
        let path = Path::new("/var/run/netns").join(netns);
        // A socket belongs to the namespace of the thread that creates it: bind on a thread
        // that joined `netns`, then serve it from the runtime like the first listener.
        let bound = std::thread::spawn(move || {
            let ns = std::fs::File::open(&path)?;
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)?;
            let l = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
            l.set_nonblocking(true)?;
            Ok::<_, std::io::Error>(l)
        })
        .join()
        .map_err(|_| ApiServerError::Start(std::io::Error::other("listener thread panicked")))?
        .map_err(ApiServerError::Start)?;
        let addr = bound.local_addr().map_err(ApiServerError::Start)?;
        let store = Arc::clone(&self.store);
        self.runtime.spawn(async move {
            if let Ok(listener) = tokio::net::TcpListener::from_std(bound) {
                accept_loop(listener, store).await;
            }
        });
        Ok(format!("http://{addr}"))
    }

    /// Writes a kubeconfig for `url` (one of [`ApiServer::url`] or [`ApiServer::listen_in`]).
    pub fn write_kubeconfig_for(&self, url: &str, path: &Path) -> Result<(), ApiServerError> {
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: standin\n  cluster:\n    server: {url}\n\
             users:\n- name: standin\n  user:\n    token: standin-dummy-token\n\
             contexts:\n- name: standin\n  context:\n    cluster: standin\n    user: standin\n    namespace: default\n\
             current-context: standin\n"
        );
        std::fs::write(path, text).map_err(|source| ApiServerError::Kubeconfig {
            path: path.to_path_buf(),
            source,
        })
    }

    /// The objects served.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Writes a kubeconfig for this server (`server: http://127.0.0.1:PORT`, a dummy token the
    /// stand-in ignores, namespace `default`).
    pub fn write_kubeconfig(&self, path: &Path) -> Result<(), ApiServerError> {
        self.write_kubeconfig_for(&self.url(), path)
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn accept_loop(listener: tokio::net::TcpListener, store: Arc<Store>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of descriptors, say: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let store = Arc::clone(&store);
                async move { Ok::<_, std::convert::Infallible>(handle(&store, &req)) }
            });
            // A client closing mid-watch is normal.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// What a URL path names.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    kind: Kind,
    namespace: Option<String>,
    name: Option<String>,
}

fn parse_path(path: &str) -> Option<Target> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let t = |kind, namespace: Option<&str>, name: Option<&str>| Target {
        kind,
        namespace: namespace.map(str::to_string),
        name: name.map(str::to_string),
    };
    match parts.as_slice() {
        ["api", "v1", "pods"] => Some(t(Kind::Pod, None, None)),
        ["api", "v1", "namespaces", ns, "pods"] => Some(t(Kind::Pod, Some(ns), None)),
        ["api", "v1", "namespaces", ns, "pods", name] => Some(t(Kind::Pod, Some(ns), Some(name))),
        ["apis", "kubeovn.io", "v1", "subnets"] => Some(t(Kind::Subnet, None, None)),
        ["apis", "kubeovn.io", "v1", "subnets", name] => Some(t(Kind::Subnet, None, Some(name))),
        ["api", "v1", "nodes"] => Some(t(Kind::Node, None, None)),
        ["api", "v1", "nodes", name] => Some(t(Kind::Node, None, Some(name))),
        _ => None,
    }
}

/// Query parameters of list and watch.
#[derive(Debug, Default)]
struct Query {
    watch: bool,
    resource_version: Option<String>,
    field_name: Option<String>,
    field_namespace: Option<String>,
    timeout: Option<Duration>,
    bookmarks: bool,
    send_initial_events: bool,
}

fn parse_query(q: Option<&str>) -> Result<Query, String> {
    let mut out = Query::default();
    for pair in q.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_decode(v);
        match k {
            "watch" => out.watch = v == "true" || v == "1",
            "resourceVersion" => out.resource_version = Some(v),
            "allowWatchBookmarks" => out.bookmarks = v == "true",
            "sendInitialEvents" => out.send_initial_events = v == "true",
            "timeoutSeconds" => out.timeout = v.parse().ok().map(Duration::from_secs),
            "fieldSelector" => {
                for sel in v.split(',').filter(|s| !s.is_empty()) {
                    match sel.split_once('=') {
                        Some(("metadata.name", n)) => out.field_name = Some(n.to_string()),
                        Some(("metadata.namespace", n)) => out.field_namespace = Some(n.to_string()),
                        _ => return Err(format!("field selector {sel:?} is not supported by the stand-in")),
                    }
                }
            }
            "labelSelector" if !v.is_empty() => {
                return Err("label selectors are not supported by the stand-in".into())
            }
            // Paging and list semantics do not change what a store this small returns.
            _ => {}
        }
    }
    Ok(out)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn respond(status: StatusCode, body: &Value) -> Response<Body> {
    let mut resp = Response::new(full(body.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

/// A `Status` failure object, as the API server returns with 4xx.
pub fn status_failure(code: StatusCode, reason: &str, message: &str, details: Option<Value>) -> Value {
    let mut v = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code.as_u16(),
    });
    if let Some(d) = details {
        v["details"] = d;
    }
    v
}

fn not_found(kind: Kind, name: &str) -> Response<Body> {
    let resource = if kind.group().is_empty() {
        kind.plural().to_string()
    } else {
        format!("{}.{}", kind.plural(), kind.group())
    };
    let mut details = json!({"name": name, "kind": kind.plural()});
    if !kind.group().is_empty() {
        details["group"] = json!(kind.group());
    }
    respond(
        StatusCode::NOT_FOUND,
        &status_failure(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("{resource} \"{name}\" not found"),
            Some(details),
        ),
    )
}

fn handle(store: &Arc<Store>, req: &Request<Incoming>) -> Response<Body> {
    let Some(target) = parse_path(req.uri().path()) else {
        return respond(
            StatusCode::NOT_FOUND,
            &status_failure(
                StatusCode::NOT_FOUND,
                "NotFound",
                "the server could not find the requested resource",
                None,
            ),
        );
    };
    if req.method() != Method::GET {
        return respond(
            StatusCode::METHOD_NOT_ALLOWED,
            &status_failure(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
                None,
            ),
        );
    }
    if let Some(name) = &target.name {
        let ns = target.namespace.as_deref().unwrap_or_default();
        return match store.get(target.kind, ns, name) {
            Some(obj) => respond(StatusCode::OK, &obj),
            None => not_found(target.kind, name),
        };
    }
    let query = match parse_query(req.uri().query()) {
        Ok(q) => q,
        Err(msg) => {
            return respond(
                StatusCode::BAD_REQUEST,
                &status_failure(StatusCode::BAD_REQUEST, "BadRequest", &msg, None),
            )
        }
    };
    let namespace = target.namespace.clone().or(query.field_namespace.clone());
    let field_name = query.field_name.clone();
    let matches = move |obj: &Value| {
        namespace
            .as_deref()
            .is_none_or(|ns| meta_str(obj, "namespace") == ns)
            && field_name.as_deref().is_none_or(|n| meta_str(obj, "name") == n)
    };
    if query.watch {
        let opts = WatchOptions {
            resource_version: query.resource_version.clone(),
            timeout: query.timeout,
            bookmarks: query.bookmarks,
            send_initial_events: query.send_initial_events,
        };
        return match watch(store, target.kind, &opts, matches) {
            Ok(resp) => resp,
            Err(msg) => respond(
                StatusCode::BAD_REQUEST,
                &status_failure(StatusCode::BAD_REQUEST, "BadRequest", &msg, None),
            ),
        };
    }
    let (items, rv) = store.list(target.kind, None, &matches);
    let items: Vec<Value> = items
        .into_iter()
        .map(|mut o| {
            if !target.kind.typed_list_items() {
                if let Some(m) = o.as_object_mut() {
                    m.remove("kind");
                    m.remove("apiVersion");
                }
            }
            o
        })
        .collect();
    respond(
        StatusCode::OK,
        &json!({
            "kind": format!("{}List", target.kind.kind()),
            "apiVersion": target.kind.api_version(),
            "metadata": {"resourceVersion": rv.to_string()},
            "items": items,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_queries_as_kube_rs_sends_them() {
        assert_eq!(
            parse_path("/api/v1/namespaces/default/pods/p"),
            Some(Target {
                kind: Kind::Pod,
                namespace: Some("default".into()),
                name: Some("p".into())
            })
        );
        assert_eq!(
            parse_path("/apis/kubeovn.io/v1/subnets/vlan0").map(|t| t.kind),
            Some(Kind::Subnet)
        );
        assert_eq!(parse_path("/api/v1/nodes/n1").map(|t| t.kind), Some(Kind::Node));
        assert!(parse_path("/api/v1/services").is_none());
        let q = parse_query(Some(
            "&watch=true&timeoutSeconds=290&fieldSelector=metadata.name%3Dp&allowWatchBookmarks=true&resourceVersion=7",
        ))
        .unwrap();
        assert!(q.watch && q.bookmarks);
        assert_eq!(q.field_name.as_deref(), Some("p"));
        assert_eq!(q.resource_version.as_deref(), Some("7"));
        assert_eq!(q.timeout, Some(Duration::from_secs(290)));
        assert!(parse_query(Some("labelSelector=app%3Dx")).is_err());
        assert_eq!(percent_decode("a%3Db%2"), "a=b%2");
    }
}
