//! The shipped `manifests/` checked against our own code: every file parses, the kustomization
//! is complete, the NetworkAttachmentDefinitions parse with the CNI plugin's netconf parser and
//! name resources the `sriovdp-config` ConfigMap defines, the ConfigMaps load with the device
//! plugin's config loader and select the right VFs on a simulated node, the DaemonSets pass
//! flags our binaries accept, and container paths line up with the binaries' defaults. The
//! default NAD is the Kube-OVN guide's with only `server_socket` changed to the node server's
//! socket, and the only RBAC shipped is the node server's read-only role.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Parser;
use integration_tests::binaries::{self, CNI_PLUGIN, DEVICE_PLUGIN, NODE_SERVER};
use integration_tests::nad::{GUIDE_NAD, GUIDE_SOCKET};
use serde::Deserialize;
use serde_json::Value as Json;
use serde_yaml_ng::Value as Yaml;
use simnode::{Layout, Model, SimNodeSpec, VfDriver};
use sriov_device_plugin::cli::Args;
use sriov_device_plugin::discovery::discover;
use sriov_device_plugin::rdma::RdmaMemory;
use sriov_host::{PciAddress, Sysfs};
use sriov_ovs::netconf::{NetConf, DEFAULT_STATE_DIR};
use sriov_ovs::server::cli::Options as ServerOptions;
use sriovdp_config::{self as config, Config};

// ----------------------------------------------------------------------------------------------
// Reading the manifests.

/// One YAML document of a manifest file.
struct Doc {
    file: PathBuf,
    value: Yaml,
}

impl Doc {
    fn kind(&self) -> &str {
        self.value["kind"].as_str().unwrap_or("")
    }
    fn name(&self) -> &str {
        self.value["metadata"]["name"].as_str().unwrap_or("")
    }
    fn namespace(&self) -> &str {
        self.value["metadata"]["namespace"].as_str().unwrap_or("default")
    }
    /// kustomize input only (`config.kubernetes.io/local-config`), never sent to the cluster.
    fn local_config(&self) -> bool {
        self.value["metadata"]["annotations"]["config.kubernetes.io/local-config"].as_str() == Some("true")
    }
}

fn manifests() -> PathBuf {
    binaries::manifests_dir()
}

/// Every `.yaml`/`.yml` file under `manifests/`, sorted.
fn yaml_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&manifests(), &mut out);
    out.sort();
    out
}

/// The documents of one file (multi-document YAML; empty documents skipped).
fn docs_of(file: &Path) -> Vec<Doc> {
    let text = std::fs::read_to_string(file).unwrap();
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| Yaml::deserialize(d).unwrap_or_else(|e| panic!("{}: {e}", file.display())))
        .filter(|v| !v.is_null())
        .map(|value| Doc {
            file: file.to_path_buf(),
            value,
        })
        .collect()
}

fn all_docs() -> Vec<Doc> {
    yaml_files().iter().flat_map(|f| docs_of(f)).collect()
}

/// The one document of `kind` named `name` in `file` (relative to `manifests/`).
fn doc(file: &str, kind: &str, name: &str) -> Doc {
    let mut found: Vec<Doc> = docs_of(&manifests().join(file))
        .into_iter()
        .filter(|d| d.kind() == kind && d.name() == name)
        .collect();
    assert_eq!(found.len(), 1, "{file}: want one {kind} {name}");
    found.remove(0)
}

fn str_list(v: &Yaml) -> Vec<String> {
    v.as_sequence()
        .map(|s| s.iter().map(|x| x.as_str().unwrap_or("").to_string()).collect())
        .unwrap_or_default()
}

/// `data.config.json` of a ConfigMap document.
fn config_json(cm: &Doc) -> String {
    cm.value["data"]["config.json"]
        .as_str()
        .unwrap_or_else(|| panic!("{}: no data.config.json", cm.file.display()))
        .to_string()
}

/// The shipped device plugin config, loaded the way the binary loads it (from a file).
fn shipped_config() -> Config {
    let cm = doc("optional/sriovdp-config.yaml", "ConfigMap", "sriovdp-config");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.json");
    std::fs::write(&file, config_json(&cm)).unwrap();
    config::load_with(
        &file,
        &default_args().resource_prefix,
        config::UnknownKeys::Reject,
    )
    .unwrap()
}

fn default_args() -> Args {
    Args::try_parse_from([DEVICE_PLUGIN]).unwrap()
}

/// The pod template's container (or init container) named `name` of a DaemonSet.
fn container<'a>(ds: &'a Doc, name: &str) -> &'a Yaml {
    let spec = &ds.value["spec"]["template"]["spec"];
    for list in ["containers", "initContainers"] {
        if let Some(found) = spec[list]
            .as_sequence()
            .and_then(|s| s.iter().find(|c| c["name"].as_str() == Some(name)))
        {
            return found;
        }
    }
    panic!("{}: no container {name}", ds.file.display())
}

/// `command` + `args` of a container.
fn argv(c: &Yaml) -> Vec<String> {
    let mut v = str_list(&c["command"]);
    v.extend(str_list(&c["args"]));
    v
}

/// Mounts of a container resolved against the pod's volumes: mountPath -> (volume, readOnly).
/// A `subPath` mount gets a copy of its volume whose `hostPath.path` names the subdirectory.
fn mounts(ds: &Doc, c: &Yaml) -> BTreeMap<String, (Yaml, bool)> {
    let volumes = ds.value["spec"]["template"]["spec"]["volumes"]
        .as_sequence()
        .unwrap();
    let mut out = BTreeMap::new();
    for m in c["volumeMounts"].as_sequence().into_iter().flatten() {
        let name = m["name"].as_str().unwrap();
        let volume = volumes
            .iter()
            .find(|v| v["name"].as_str() == Some(name))
            .unwrap_or_else(|| panic!("{}: volume {name} is not defined", ds.file.display()));
        let ro = m["readOnly"].as_bool().unwrap_or(false);
        let mut volume = volume.clone();
        if let (Some(sub), Some(host)) = (m["subPath"].as_str(), volume["hostPath"]["path"].as_str()) {
            volume["hostPath"]["path"] = Yaml::from(format!("{host}/{sub}"));
        }
        out.insert(m["mountPath"].as_str().unwrap().to_string(), (volume, ro));
    }
    out
}

/// The mount whose mountPath holds `path`, longest match first.
fn mount_holding<'m>(
    mounts: &'m BTreeMap<String, (Yaml, bool)>,
    path: &str,
) -> Option<(&'m String, &'m (Yaml, bool))> {
    mounts
        .iter()
        .filter(|(mp, _)| Path::new(path).starts_with(mp.as_str()))
        .max_by_key(|(mp, _)| mp.len())
}

// ----------------------------------------------------------------------------------------------
// A simulated node's sysfs tree (no links needed: discovery reads sysfs only).

struct Tree {
    _dir: tempfile::TempDir,
    layout: Layout,
}

fn tree(prefix: &str, spec: impl FnOnce(SimNodeSpec) -> SimNodeSpec) -> Tree {
    let dir = tempfile::tempdir().unwrap();
    let base = SimNodeSpec::new(prefix, 2, 16).with_sysfs_root(dir.path());
    let layout = Layout::plan(&spec(base));
    simnode::tree::write_tree(&layout).unwrap();
    Tree { _dir: dir, layout }
}

impl Tree {
    fn sysfs(&self) -> Sysfs {
        Sysfs::new(&self.layout.sysfs_root)
    }
    /// Addresses of VF `vf` of PF `pf` for every (pf, vf) given.
    fn vfs(&self, pick: impl Fn(u32, u32) -> bool) -> BTreeSet<PciAddress> {
        self.layout
            .vfs()
            .filter(|v| pick(v.pf_index, v.vf_index))
            .map(|v| v.pci.to_string().parse().unwrap())
            .collect()
    }
}

/// The devices each resource of `config` gets on `tree`, by full resource name.
fn selected(config: &Config, tree: &Tree) -> BTreeMap<String, BTreeSet<PciAddress>> {
    let found = discover(&tree.sysfs(), config, &HashSet::new(), &mut RdmaMemory::default()).unwrap();
    config
        .resources
        .iter()
        .zip(found.resources)
        .map(|(r, devices)| (r.full_name(), devices.iter().map(|d| d.address).collect()))
        .collect()
}

// ----------------------------------------------------------------------------------------------
// Parsing and completeness.

#[test]
fn every_manifest_file_parses_and_every_document_names_its_kind() {
    let files = yaml_files();
    assert!(files.len() >= 6, "manifests/ has only {files:?}");
    for d in all_docs() {
        let file = d.file.display();
        assert!(
            d.value["apiVersion"].as_str().is_some(),
            "{file}: a document lacks apiVersion"
        );
        assert!(!d.kind().is_empty(), "{file}: a document lacks kind");
        if d.kind() != "Kustomization" {
            assert!(!d.name().is_empty(), "{file}: a {} lacks metadata.name", d.kind());
        }
    }
}

#[test]
fn kustomization_lists_existing_files_that_make_the_whole_install() {
    let k = doc("kustomization.yaml", "Kustomization", "");
    let resources = str_list(&k.value["resources"]);
    let mut kinds = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for r in &resources {
        let path = manifests().join(r);
        assert!(path.is_file(), "kustomization resource {r} does not exist");
        for d in docs_of(&path) {
            let id = (
                d.kind().to_string(),
                d.namespace().to_string(),
                d.name().to_string(),
            );
            assert!(seen.insert(id.clone()), "{id:?} defined twice");
            if !d.local_config() {
                kinds.insert(format!("{}/{}/{}", d.kind(), d.namespace(), d.name()));
            }
        }
    }
    // An existing sriovdp-config (the Go plugin's) is never overwritten by `kubectl apply -k`.
    assert!(!kinds.iter().any(|k| k.starts_with("ConfigMap/")), "{kinds:?}");
    for want in [
        "DaemonSet/kube-system/sriov-device-plugin",
        "DaemonSet/kube-system/sriov-ovs-cni-installer",
        "DaemonSet/kube-system/sriov-ovs-server",
        "ServiceAccount/kube-system/sriov-ovs-server",
        "NetworkAttachmentDefinition/default/sriov",
    ] {
        assert!(kinds.contains(want), "kustomization lacks {want}: {kinds:?}");
    }
    // The NAD it installs is the Kube-OVN one; the `type: sriov-ovs` NAD is an example only.
    assert!(
        resources.contains(&"nad-kube-ovn.yaml".to_string()),
        "{resources:?}"
    );
    assert!(
        !resources.iter().any(|r| r.starts_with("examples/")),
        "{resources:?}"
    );
    // Example pods are not installed by `kubectl apply -k`.
    assert!(!kinds.iter().any(|k| k.starts_with("Pod/")), "{kinds:?}");
    // The image override names the image the DaemonSets use.
    let image_names: Vec<String> = k.value["images"]
        .as_sequence()
        .into_iter()
        .flatten()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect();
    for (file, ds, c) in [
        (
            "device-plugin-daemonset.yaml",
            "sriov-device-plugin",
            "sriov-device-plugin",
        ),
        (
            "cni-installer-daemonset.yaml",
            "sriov-ovs-cni-installer",
            "install-cni",
        ),
        (
            "node-server-daemonset.yaml",
            "sriov-ovs-server",
            "sriov-ovs-server",
        ),
    ] {
        let d = doc(file, "DaemonSet", ds);
        let image = container(&d, c)["image"].as_str().unwrap();
        let name = image.rsplit_once(':').map_or(image, |(n, _)| n);
        assert!(
            image_names.iter().any(|n| n == name),
            "{image} not in kustomization images {image_names:?}"
        );
    }
}

/// The node server's objects (`node-server-daemonset.yaml`).
const SERVER_FILE: &str = "node-server-daemonset.yaml";
const SERVER_NAME: &str = "sriov-ovs-server";

#[test]
fn the_only_rbac_is_the_node_servers_read_only_role_bound_to_its_daemonset() {
    const RBAC: [&str; 5] = [
        "Role",
        "ClusterRole",
        "RoleBinding",
        "ClusterRoleBinding",
        "ServiceAccount",
    ];
    let rbac: Vec<Doc> = all_docs()
        .into_iter()
        .filter(|d| RBAC.contains(&d.kind()))
        .collect();
    let found: BTreeSet<(String, String, String)> = rbac
        .iter()
        .map(|d| {
            let file = d.file.strip_prefix(manifests()).unwrap().display().to_string();
            (file, d.kind().to_string(), d.name().to_string())
        })
        .collect();
    // One ServiceAccount, one ClusterRole, one binding; the other components need no API access.
    let want: BTreeSet<(String, String, String)> = ["ServiceAccount", "ClusterRole", "ClusterRoleBinding"]
        .iter()
        .map(|k| (SERVER_FILE.to_string(), k.to_string(), SERVER_NAME.to_string()))
        .collect();
    assert_eq!(found, want);

    // The rules are exactly what the server does (cni-plugin/src/server/cluster.rs): get a pod
    // and watch it until kube-ovn-controller has annotated it (a watch lists first), get the
    // pod's Subnet. No write verb, no wildcard, nothing else.
    let role = doc(SERVER_FILE, "ClusterRole", SERVER_NAME);
    assert!(role.value["aggregationRule"].is_null());
    let mut granted = BTreeSet::new();
    for rule in role.value["rules"].as_sequence().unwrap() {
        let keys: BTreeSet<&str> = rule
            .as_mapping()
            .unwrap()
            .keys()
            .map(|k| k.as_str().unwrap())
            .collect();
        assert_eq!(
            keys,
            BTreeSet::from(["apiGroups", "resources", "verbs"]),
            "no resourceNames or nonResourceURLs: {rule:?}"
        );
        for group in str_list(&rule["apiGroups"]) {
            for resource in str_list(&rule["resources"]) {
                for verb in str_list(&rule["verbs"]) {
                    granted.insert((group.clone(), resource.clone(), verb));
                }
            }
        }
    }
    let needed: BTreeSet<(String, String, String)> = [
        ("", "pods", "get"),
        ("", "pods", "list"),
        ("", "pods", "watch"),
        ("kubeovn.io", "subnets", "get"),
        ("", "nodes", "get"),
    ]
    .iter()
    .map(|(g, r, v)| (g.to_string(), r.to_string(), v.to_string()))
    .collect();
    assert_eq!(granted, needed);

    // Bound to the DaemonSet's own service account, in the DaemonSet's namespace.
    let ds = server_ds();
    let account = ds.value["spec"]["template"]["spec"]["serviceAccountName"]
        .as_str()
        .expect("the node server's DaemonSet names its service account");
    let sa = doc(SERVER_FILE, "ServiceAccount", account);
    assert_eq!(sa.namespace(), ds.namespace());
    let binding = doc(SERVER_FILE, "ClusterRoleBinding", SERVER_NAME);
    let role_ref = &binding.value["roleRef"];
    assert_eq!(role_ref["apiGroup"].as_str(), Some("rbac.authorization.k8s.io"));
    assert_eq!(role_ref["kind"].as_str(), Some("ClusterRole"));
    assert_eq!(role_ref["name"].as_str(), Some(role.name()));
    let subjects = binding.value["subjects"].as_sequence().unwrap();
    assert_eq!(subjects.len(), 1, "{subjects:?}");
    assert_eq!(subjects[0]["kind"].as_str(), Some("ServiceAccount"));
    assert_eq!(subjects[0]["name"].as_str(), Some(account));
    assert_eq!(subjects[0]["namespace"].as_str(), Some(ds.namespace()));
    // The in-cluster client reads the mounted token.
    assert_ne!(
        ds.value["spec"]["template"]["spec"]["automountServiceAccountToken"].as_bool(),
        Some(false)
    );
}

// ----------------------------------------------------------------------------------------------
// NetworkAttachmentDefinitions and pods.

/// Every NetworkAttachmentDefinition under `manifests/`.
fn nads() -> Vec<Doc> {
    all_docs()
        .into_iter()
        .filter(|d| d.kind() == "NetworkAttachmentDefinition")
        .collect()
}

/// The plugin configurations of a NAD's `spec.config`: a conflist's `plugins` with the list's
/// `cniVersion` and `name` injected (as libcni does), or the single plugin configuration.
fn plugin_confs(nad: &Doc) -> (Json, Vec<Json>) {
    let text = nad.value["spec"]["config"].as_str().unwrap();
    let conf: Json = serde_json::from_str(text).unwrap_or_else(|e| {
        panic!(
            "{}: NAD {} config is not JSON: {e}",
            nad.file.display(),
            nad.name()
        )
    });
    let plugins = match conf.get("plugins").and_then(Json::as_array) {
        Some(list) => list
            .iter()
            .map(|p| {
                let mut p = p.clone();
                p["cniVersion"] = conf["cniVersion"].clone();
                p["name"] = conf["name"].clone();
                p
            })
            .collect(),
        None => vec![conf.clone()],
    };
    (conf, plugins)
}

/// The default NAD: the guide's, served by `sriov-ovs-server`.
fn kube_ovn_nad() -> Doc {
    doc("nad-kube-ovn.yaml", "NetworkAttachmentDefinition", "sriov")
}

/// The example NAD for clusters without Kube-OVN: `sriov-ovs` as the CNI plugin.
fn sriov_ovs_nad() -> Doc {
    doc(
        "examples/nad-sriov-ovs.yaml",
        "NetworkAttachmentDefinition",
        "sriov",
    )
}

/// The node server's default `--socket`.
fn server_socket_default() -> PathBuf {
    ServerOptions::try_parse_from([NODE_SERVER]).unwrap().socket
}

#[test]
fn kube_ovn_nad_is_the_guides_with_only_server_socket_changed() {
    let shipped = kube_ovn_nad();
    let socket = server_socket_default();
    let socket = socket.to_str().unwrap();
    assert_ne!(socket, GUIDE_SOCKET);
    // Same document, the config string included character for character, but for the path.
    assert_eq!(GUIDE_NAD.matches(GUIDE_SOCKET).count(), 1);
    let want: Yaml = serde_yaml_ng::from_str(&GUIDE_NAD.replace(GUIDE_SOCKET, socket)).unwrap();
    assert_eq!(shipped.value, want);
    // And the path is where the server listens by default, in the field the shim reads.
    let (conf, plugins) = plugin_confs(&shipped);
    assert_eq!(conf["plugins"].as_array().map(Vec::len), Some(2));
    assert_eq!(plugins[0]["type"], "kube-ovn");
    assert_eq!(plugins[0]["server_socket"], socket);
    // The guide's provider rule: {name}.{namespace}.ovn.
    let provider = format!("{}.{}.ovn", shipped.name(), shipped.namespace());
    assert_eq!(plugins[0]["provider"], provider.as_str());
}

#[test]
fn nads_name_a_configured_resource_the_ovn_provider_and_plugins_that_exist() {
    let config = shipped_config();
    let resources: Vec<String> = config.resources.iter().map(|r| r.full_name()).collect();
    let mut first_plugins = BTreeMap::new();
    for nad in &nads() {
        let file = nad.file.strip_prefix(manifests()).unwrap().display().to_string();
        let id = format!("{file}: NAD {}/{}", nad.namespace(), nad.name());
        let resource = nad.value["metadata"]["annotations"]["k8s.v1.cni.cncf.io/resourceName"]
            .as_str()
            .unwrap_or_else(|| panic!("{id}: no k8s.v1.cni.cncf.io/resourceName annotation"));
        assert!(
            resources.iter().any(|r| r == resource),
            "{id}: {resource} not in {resources:?}"
        );

        let (conf, plugins) = plugin_confs(nad);
        assert_eq!(
            conf["cniVersion"], "0.3.1",
            "{id}: cniVersion as in the seed guide"
        );
        let first = plugins[0]["type"].as_str().unwrap().to_string();
        // Kube-OVN's provider naming: <NAD name>.<namespace>.ovn.
        let provider = format!("{}.{}.ovn", nad.name(), nad.namespace());
        match first.as_str() {
            CNI_PLUGIN => {
                let parsed = NetConf::parse(plugins[0].to_string().as_bytes())
                    .unwrap_or_else(|e| panic!("{id}: {e:?}"));
                assert!(
                    parsed.unknown_keys.is_empty(),
                    "{id}: keys our plugin ignores: {:?}",
                    parsed.unknown_keys
                );
                assert_eq!(parsed.provider.as_deref(), Some(provider.as_str()), "{id}");
            }
            // Kube-OVN's shim, sending to our server.
            "kube-ovn" => {
                assert_eq!(plugins[0]["provider"], provider.as_str(), "{id}");
                assert_eq!(
                    plugins[0]["server_socket"].as_str().map(PathBuf::from),
                    Some(server_socket_default()),
                    "{id}"
                );
            }
            other => panic!("{id}: first plugin {other} is neither {CNI_PLUGIN} nor kube-ovn"),
        }
        // Only the first plugin attaches the VF; the rest are reference plugins the runtime has.
        for p in &plugins[1..] {
            let t = p["type"].as_str().unwrap();
            assert!(
                ![CNI_PLUGIN, "kube-ovn"].contains(&t),
                "{id}: {t} again in the chain"
            );
            assert!(
                Path::new("/usr/lib/cni").join(t).is_file(),
                "{id}: chained plugin {t} unknown"
            );
        }
        first_plugins.insert(file, first);
    }
    // The default (Kube-OVN) and the example for clusters without it, nothing else.
    assert_eq!(
        first_plugins,
        BTreeMap::from([
            ("examples/nad-sriov-ovs.yaml".to_string(), CNI_PLUGIN.to_string()),
            ("nad-kube-ovn.yaml".to_string(), "kube-ovn".to_string()),
        ])
    );
}

#[test]
fn example_pods_request_the_resource_and_attach_through_the_nad() {
    let config = shipped_config();
    // The default NAD; the `type: sriov-ovs` example replaces it under the same name, so the
    // pods attach through either.
    let nad = kube_ovn_nad();
    let example = sriov_ovs_nad();
    assert_eq!(
        (example.namespace(), example.name()),
        (nad.namespace(), nad.name())
    );
    assert_eq!(
        example.value["metadata"]["annotations"],
        nad.value["metadata"]["annotations"]
    );
    assert_eq!(
        plugin_confs(&example).1[0]["provider"],
        plugin_confs(&nad).1[0]["provider"]
    );
    let resource = nad.value["metadata"]["annotations"]["k8s.v1.cni.cncf.io/resourceName"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(config.resources.iter().any(|r| r.full_name() == resource));
    let provider = plugin_confs(&nad).1[0]["provider"].as_str().unwrap().to_string();
    let nad_ref = format!("{}/{}", nad.namespace(), nad.name());
    let subnets: Vec<String> = docs_of(&manifests().join("examples/underlay-network.yaml"))
        .iter()
        .filter(|d| d.kind() == "Subnet")
        .map(|d| d.name().to_string())
        .collect();

    for (file, name, switch) in [
        ("examples/pod-overlay.yaml", "nginx-overlay", "ovn-default"),
        ("examples/pod-underlay.yaml", "nginx-underlay", "vlan0"),
    ] {
        let pod = doc(file, "Pod", name);
        let annotations = &pod.value["metadata"]["annotations"];
        assert_eq!(
            annotations[format!("{provider}.kubernetes.io/logical_switch").as_str()].as_str(),
            Some(switch),
            "{file}"
        );
        for c in pod.value["spec"]["containers"].as_sequence().unwrap() {
            for side in ["requests", "limits"] {
                assert_eq!(
                    c["resources"][side][resource.as_str()].as_str(),
                    Some("1"),
                    "{file}: {side}"
                );
            }
        }
        match name {
            "nginx-overlay" => {
                // The VF is the pod's primary interface.
                assert_eq!(
                    annotations["v1.multus-cni.io/default-network"].as_str(),
                    Some(nad_ref.as_str())
                );
            }
            _ => {
                // The VF is a secondary interface carrying the default route via the VLAN gateway.
                let nets: Json =
                    serde_json::from_str(annotations["k8s.v1.cni.cncf.io/networks"].as_str().unwrap())
                        .unwrap();
                assert_eq!(nets[0]["name"], nad.name());
                assert_eq!(nets[0]["namespace"], nad.namespace());
                assert_eq!(nets[0]["default-route"][0], "10.10.204.254");
                assert!(subnets.iter().any(|s| s == switch), "{switch} not in {subnets:?}");
            }
        }
    }
}

// ----------------------------------------------------------------------------------------------
// The Kube-OVN node server's DaemonSet against the binary.

fn server_ds() -> Doc {
    doc(SERVER_FILE, "DaemonSet", SERVER_NAME)
}

/// The server's command line as the DaemonSet runs it, parsed by the server's own parser.
fn server_options(ds: &Doc) -> (Vec<String>, ServerOptions) {
    let argv = argv(container(ds, SERVER_NAME));
    assert_eq!(argv[0], format!("/usr/bin/{NODE_SERVER}"));
    let opts = ServerOptions::try_parse_from(&argv).unwrap_or_else(|e| panic!("{e}"));
    (argv, opts)
}

#[test]
fn node_server_daemonset_flags_are_accepted_by_the_binary() {
    let ds = server_ds();
    let (argv, opts) = server_options(&ds);
    let bin = binaries::binary(NODE_SERVER).unwrap();
    let (ok, help) = run(&bin, &["--help"]);
    assert!(ok, "{help}");
    assert_flags_in_help(&argv, &help, "node server args");
    // In-cluster service account, not a kubeconfig file the image does not have.
    assert!(opts.kubeconfig.is_none(), "{argv:?}");
    // Pod MTU for Subnets without spec.mtu: the example NAD's, room for Geneve on 1500.
    let example = NetConf::parse(plugin_confs(&sriov_ovs_nad()).1[0].to_string().as_bytes()).unwrap();
    assert_eq!(opts.mtu, example.mtu);
    assert_eq!(opts.mtu, Some(1400));
    // The node name (for underlay Subnets' provider-network MTU label) comes from the env the
    // binary reads, set to the pod's node.
    assert!(help.contains("[env: KUBE_NODE_NAME="), "{help}");
    let env = container(&ds, SERVER_NAME)["env"]
        .as_sequence()
        .cloned()
        .unwrap_or_default();
    let node = env
        .iter()
        .find(|e| e["name"].as_str() == Some("KUBE_NODE_NAME"))
        .unwrap_or_else(|| panic!("KUBE_NODE_NAME not set: {env:?}"));
    assert_eq!(
        node["valueFrom"]["fieldRef"]["fieldPath"].as_str(),
        Some("spec.nodeName")
    );
}

#[test]
fn node_server_mounts_its_socket_ovsdb_netns_state_and_sysfs_from_the_host() {
    let ds = server_ds();
    let c = container(&ds, SERVER_NAME);
    let (_, opts) = server_options(&ds);
    // It serves the socket the default NAD names, and shares the CNI binary's records.
    let nad_socket = plugin_confs(&kube_ovn_nad()).1[0]["server_socket"]
        .as_str()
        .map(PathBuf::from);
    assert_eq!(Some(opts.socket.clone()), nad_socket);
    assert_eq!(opts.state_dir, Path::new(DEFAULT_STATE_DIR));
    let cni = NetConf::parse(br#"{"cniVersion":"0.3.1","name":"n","type":"sriov-ovs"}"#).unwrap();
    assert_eq!(opts.state_dir, cni.state_dir);
    assert_eq!(opts.sysfs_root, Path::new("/sys"));
    let ovsdb = opts.ovsdb.to_string();
    let ovsdb_path = ovsdb
        .strip_prefix("unix:")
        .unwrap_or_else(|| panic!("--ovsdb {ovsdb}: want the node's unix socket"));
    assert_eq!(opts.bridge, "br-int");

    // Each is a host directory mounted at the same path, writable where the server writes.
    let mounts = mounts(&ds, c);
    let socket_dir = opts.socket.parent().unwrap().to_str().unwrap().to_string();
    assert_eq!(socket_dir, "/run/openvswitch");
    for (path, writable) in [
        (opts.socket.to_str().unwrap(), true),
        (ovsdb_path, true),
        ("/var/run/netns/x", false),
        (opts.state_dir.to_str().unwrap(), true),
        (opts.sysfs_root.to_str().unwrap(), false),
    ] {
        let (mount_path, (volume, ro)) =
            mount_holding(&mounts, path).unwrap_or_else(|| panic!("{path} is not in a mounted volume"));
        let host = volume["hostPath"]["path"]
            .as_str()
            .unwrap_or_else(|| panic!("{path}: volume is not a hostPath"));
        assert_eq!(host, mount_path, "{path}: host and container paths differ");
        if writable {
            assert!(!ro, "{path}: mounted read-only");
        }
    }
    // The socket's directory itself (the shim finds the socket there), not a parent of it.
    assert!(mounts.contains_key(&socket_dir), "{mounts:?}");
    // Network namespaces the runtime creates after the server started must appear inside.
    let netns = c["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"].as_str() == Some("/var/run/netns"))
        .expect("no /var/run/netns mount");
    assert_eq!(netns["mountPropagation"].as_str(), Some("HostToContainer"));
}

#[test]
fn node_server_runs_in_the_hosts_network_and_pid_namespaces_on_every_sriov_node() {
    let ds = server_ds();
    assert_eq!(ds.namespace(), "kube-system");
    let pod = &ds.value["spec"]["template"]["spec"];
    // VFs and representors live in the host's network namespace; pods' namespaces are named
    // by /proc/<pid>/ns/net paths too.
    assert_eq!(pod["hostNetwork"].as_bool(), Some(true));
    assert_eq!(pod["hostPID"].as_bool(), Some(true));
    assert_eq!(
        pod["nodeSelector"]["feature.node.kubernetes.io/network-sriov.capable"].as_str(),
        Some("true"),
        "runs where the device plugin and the CNI binary run"
    );
    let tolerations = pod["tolerations"].as_sequence().unwrap();
    assert!(
        tolerations
            .iter()
            .any(|t| t["operator"].as_str() == Some("Exists") && t["key"].is_null() && t["effect"].is_null()),
        "{tolerations:?}"
    );
    let c = container(&ds, SERVER_NAME);
    for side in ["requests", "limits"] {
        for r in ["cpu", "memory"] {
            assert!(c["resources"][side][r].as_str().is_some(), "{side}.{r}");
        }
    }
}

// ----------------------------------------------------------------------------------------------
// Device plugin configuration against a simulated node.

#[test]
fn shipped_config_is_the_seed_guide_config_and_selects_every_cx5_vf() {
    let config = shipped_config();
    assert_eq!(config.resources.len(), 1);
    assert_eq!(
        config.resources[0].full_name(),
        "mellanox.com/cx5_sriov_switchdev"
    );

    // ConnectX-5, mlx5_core VFs at 84:00.x as in the seed guide: all 32 VFs, no PF, no decoy.
    let cx5 = tree("mfcx5", |s| s);
    let got = selected(&config, &cx5);
    assert_eq!(got["mellanox.com/cx5_sriov_switchdev"], cx5.vfs(|_, _| true));
    assert!(got["mellanox.com/cx5_sriov_switchdev"].contains(&"0000:84:00.2".parse().unwrap()));

    // Not a ConnectX-5 VF, or bound to vfio-pci: nothing.
    let cx6 = tree("mfcx6", |s| s.with_model(Model::Cx6Dx));
    assert!(selected(&config, &cx6)["mellanox.com/cx5_sriov_switchdev"].is_empty());
    let vfio = tree("mfvfio", |s| s.with_vf_driver(VfDriver::VfioPci));
    assert!(selected(&config, &vfio)["mellanox.com/cx5_sriov_switchdev"].is_empty());
}

#[test]
fn example_config_splits_vfs_into_several_resources() {
    let cm = doc(
        "examples/sriovdp-config-multi.yaml",
        "ConfigMap",
        "sriovdp-config",
    );
    let text = config_json(&cm);
    // The example names the seed guide's PFs; the simulated node's PFs have other names.
    let cx5 = tree("mfmul", |s| s);
    let vfio = tree("mfmulv", |s| s.with_vf_driver(VfDriver::VfioPci));
    let cx6 = tree("mfmul6", |s| s.with_model(Model::Cx6Dx).with_first_bus(0x3b));
    for t in [&cx5, &vfio, &cx6] {
        let text = text
            .replace("enp132s0f0np0", &t.layout.pfs[0].uplink.name)
            .replace("enp132s0f1np1", &t.layout.pfs[1].uplink.name);
        let config = config::parse(&text, "intel.com").unwrap();
        let names: Vec<String> = config.resources.iter().map(|r| r.full_name()).collect();
        assert_eq!(
            names,
            [
                "mellanox.com/cx5_sriov_switchdev",
                "mellanox.com/cx5_sriov_dpdk",
                "mellanox.com/cx6_sriov_switchdev"
            ]
        );
        let got = selected(&config, t);
        let want: [BTreeSet<PciAddress>; 3] = if std::ptr::eq(t, &cx5) {
            // VFs 0-7 of both PFs; 8-15 are in no pool (mlx5_core, not vfio-pci).
            [t.vfs(|_, vf| vf <= 7), BTreeSet::new(), BTreeSet::new()]
        } else if std::ptr::eq(t, &vfio) {
            [
                BTreeSet::new(),
                t.vfs(|pf, vf| pf == 0 && (8..=15).contains(&vf)),
                BTreeSet::new(),
            ]
        } else {
            let mut cx6 = t.vfs(|pf, vf| pf == 1 && [0, 2, 3].contains(&vf));
            cx6.insert("0000:3b:00.2".parse().unwrap());
            cx6.insert("0000:3b:00.3".parse().unwrap());
            [BTreeSet::new(), BTreeSet::new(), cx6]
        };
        for (name, want) in names.iter().zip(want) {
            assert_eq!(got[name], want, "{name} on {}", t.layout.prefix);
        }
    }
}

// ----------------------------------------------------------------------------------------------
// DaemonSets against the binaries.

fn device_plugin_ds() -> Doc {
    doc("device-plugin-daemonset.yaml", "DaemonSet", "sriov-device-plugin")
}

fn installer_ds() -> Doc {
    doc(
        "cni-installer-daemonset.yaml",
        "DaemonSet",
        "sriov-ovs-cni-installer",
    )
}

/// Every `--flag` of `argv` appears in `help`.
fn assert_flags_in_help(argv: &[String], help: &str, what: &str) {
    for a in argv.iter().filter(|a| a.starts_with("--")) {
        let name = a.split('=').next().unwrap();
        assert!(
            help.contains(name),
            "{what}: {name} is not a flag of the binary:\n{help}"
        );
    }
}

fn run(bin: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(bin)
        .args(args)
        .env_remove("CNI_COMMAND")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn device_plugin_daemonset_flags_are_accepted_by_the_binary() {
    let ds = device_plugin_ds();
    let c = container(&ds, "sriov-device-plugin");
    let argv = argv(c);
    assert_eq!(argv[0], format!("/usr/bin/{DEVICE_PLUGIN}"));
    // The binary's own parser takes the command line as written.
    let args = Args::try_parse_from(&argv).unwrap_or_else(|e| panic!("{e}"));
    // And the built binary documents every flag.
    let bin = binaries::binary(DEVICE_PLUGIN).unwrap();
    let (ok, help) = run(&bin, &["--help"]);
    assert!(ok, "{help}");
    assert_flags_in_help(&argv, &help, "container args");
    // The log level is one of the names both binaries share.
    assert!(["error", "warn", "info", "debug", "trace"].contains(&args.log_level.to_string().as_str()));
}

#[test]
fn device_plugin_probes_ask_the_running_plugin_without_repeating_its_flags() {
    let ds = device_plugin_ds();
    let c = container(&ds, "sriov-device-plugin");
    let args = Args::try_parse_from(argv(c)).unwrap();
    // Metrics and health on loopback only: the pod is in the host's network namespace.
    let address = args
        .metrics_address
        .expect("the DaemonSet serves metrics (--metrics-address)");
    assert!(
        address.ip().is_loopback(),
        "{address} is reachable from the network"
    );
    // The named port is the one the plugin listens on.
    let ports = c["ports"].as_sequence().expect("container ports");
    let metrics = ports
        .iter()
        .find(|p| p["name"].as_str() == Some("metrics"))
        .expect("a port named metrics");
    assert_eq!(metrics["containerPort"].as_u64(), Some(u64::from(address.port())));
    // Liveness and readiness ask the plugin over HTTP (its event loop, its registrations),
    // never by re-reading the config: no exec command repeating the container's flags.
    for (probe, path) in [("livenessProbe", "/livez"), ("readinessProbe", "/readyz")] {
        let p = &c[probe];
        assert!(p["exec"].is_null(), "{probe} runs a command");
        let get = &p["httpGet"];
        assert_eq!(get["path"].as_str(), Some(path), "{probe}");
        assert_eq!(get["port"].as_str(), Some("metrics"), "{probe}");
        assert_eq!(
            get["host"].as_str(),
            Some(address.ip().to_string().as_str()),
            "{probe}: the listener is loopback-only"
        );
        assert!(
            p["timeoutSeconds"].as_u64().is_some_and(|t| t >= 3),
            "{probe}: the plugin waits up to 2 s for its event loop"
        );
    }
}

#[test]
fn device_plugin_container_paths_match_the_binary_defaults_and_mounts() {
    let ds = device_plugin_ds();
    let c = container(&ds, "sriov-device-plugin");
    let argv = argv(c);
    let defaults = default_args();
    let args = Args::try_parse_from(&argv).unwrap();
    // Explicit flags say what the defaults are: the Go plugin's paths.
    assert_eq!(args.config_file, defaults.config_file);
    assert_eq!(args.config_file, Path::new("/etc/pcidp/config.json"));
    assert_eq!(args.device_plugin_path, defaults.device_plugin_path);
    assert_eq!(
        args.device_plugin_path,
        Path::new("/var/lib/kubelet/device-plugins")
    );
    assert_eq!(args.device_info_dir, defaults.device_info_dir);
    assert_eq!(
        args.device_info_dir,
        Path::new("/var/run/k8s.cni.cncf.io/devinfo/dp")
    );
    assert_eq!(args.sysfs_root, Path::new("/sys"));

    let mounts = mounts(&ds, c);
    // Host directories are mounted at the same path inside the container.
    for (path, read_only) in [
        (args.device_plugin_path.to_str().unwrap(), false),
        (args.device_info_dir.to_str().unwrap(), false),
        (args.sysfs_root.to_str().unwrap(), true),
        ("/var/lib/kubelet/plugins_registry", false),
    ] {
        let (mount_path, (volume, ro)) =
            mount_holding(&mounts, path).unwrap_or_else(|| panic!("{path} is not in a mounted volume"));
        let host = volume["hostPath"]["path"]
            .as_str()
            .unwrap_or_else(|| panic!("{path}: volume is not a hostPath"));
        assert_eq!(host, mount_path, "{path}: host and container paths differ");
        assert_eq!(*ro, read_only, "{path}: readOnly");
    }
    // Auto registration looks for plugins_registry next to the device plugin directory.
    assert!(args.plugin_registry_path.is_none());
    assert_eq!(
        args.registration(),
        sriov_device_plugin::registration::RegistrationMode::Auto
    );
    // The ConfigMap's config.json lands at --config-file, as a directory mount (not subPath) so
    // that edits reach the running plugin.
    let dir = args.config_file.parent().unwrap().to_str().unwrap();
    let (volume, ro) = &mounts[dir];
    assert!(*ro);
    assert_eq!(volume["configMap"]["name"].as_str(), Some("sriovdp-config"));
    let items = volume["configMap"]["items"].as_sequence();
    if let Some(items) = items {
        assert!(items
            .iter()
            .any(|i| i["key"].as_str() == Some("config.json") && i["path"].as_str() == Some("config.json")));
    }
}

#[test]
fn cni_installer_runs_our_install_command_on_the_hosts_cni_bin_dir() {
    let ds = installer_ds();
    let c = container(&ds, "install-cni");
    let argv = argv(c);
    assert_eq!(
        argv,
        [
            format!("/usr/bin/{CNI_PLUGIN}"),
            "install".into(),
            "--dest".into(),
            "/host/opt/cni/bin".into()
        ]
    );
    let mounts = mounts(&ds, c);
    let (volume, ro) = &mounts["/host/opt/cni/bin"];
    assert!(!ro);
    assert_eq!(volume["hostPath"]["path"].as_str(), Some("/opt/cni/bin"));
}

#[test]
fn cni_installer_command_installs_a_working_copy_of_the_binary() {
    let argv = argv(container(&installer_ds(), "install-cni"));
    assert_eq!(argv[1..3], ["install", "--dest"]);
    // The command works: the binary copies itself into the destination, mode 0755, atomically
    // (nothing but the binary is left behind).
    let bin = binaries::binary(CNI_PLUGIN).unwrap();
    let dest = tempfile::tempdir().unwrap();
    let (ok, out) = run(&bin, &["install", "--dest", dest.path().to_str().unwrap()]);
    assert!(ok, "sriov-ovs install failed: {out}");
    let installed = dest.path().join(CNI_PLUGIN);
    assert_eq!(std::fs::read(&installed).unwrap(), std::fs::read(&bin).unwrap());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&installed).unwrap().permissions().mode() & 0o777,
        0o755
    );
    let left: Vec<_> = std::fs::read_dir(dest.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, [CNI_PLUGIN]);
    // The installed copy is a working CNI plugin.
    let out = Command::new(&installed)
        .env("CNI_COMMAND", "VERSION")
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["supportedVersions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x == "0.3.1"));
    // And it documents its command line.
    let (ok, help) = run(&bin, &["--help"]);
    assert!(ok, "{help}");
    assert!(help.contains("install") && help.contains("--dest"), "{help}");
}

#[test]
fn nad_host_paths_match_the_cni_plugin_defaults() {
    let nad = sriov_ovs_nad();
    let ours = plugin_confs(&nad).1.remove(0);
    let parsed = NetConf::parse(ours.to_string().as_bytes()).unwrap();
    let defaults = NetConf::parse(br#"{"cniVersion":"0.3.1","name":"n","type":"sriov-ovs"}"#).unwrap();
    // Kube-OVN's OVS database socket and bridge.
    assert_eq!(parsed.ovsdb, defaults.ovsdb);
    assert_eq!(parsed.ovsdb.to_string(), "unix:/run/openvswitch/db.sock");
    assert_eq!(parsed.bridge, "br-int");
    assert_eq!(parsed.state_dir, defaults.state_dir);
}

#[test]
fn daemonsets_run_with_least_privilege_on_sriov_nodes() {
    for (ds, containers) in [
        (device_plugin_ds(), vec!["sriov-device-plugin"]),
        (installer_ds(), vec!["install-cni", "pause"]),
    ] {
        let id = format!("{}: {}", ds.file.display(), ds.name());
        assert_eq!(ds.namespace(), "kube-system", "{id}");
        let pod = &ds.value["spec"]["template"]["spec"];
        assert_eq!(
            pod["nodeSelector"]["feature.node.kubernetes.io/network-sriov.capable"].as_str(),
            Some("true"),
            "{id}: runs on SR-IOV capable nodes only"
        );
        assert!(pod["serviceAccountName"].is_null(), "{id}: needs no API access");
        assert_eq!(pod["automountServiceAccountToken"].as_bool(), Some(false), "{id}");
        for name in containers {
            let c = container(&ds, name);
            let sc = &c["securityContext"];
            assert_ne!(sc["privileged"].as_bool(), Some(true), "{id}/{name}");
            assert_eq!(
                sc["allowPrivilegeEscalation"].as_bool(),
                Some(false),
                "{id}/{name}"
            );
            assert_eq!(sc["readOnlyRootFilesystem"].as_bool(), Some(true), "{id}/{name}");
            assert_eq!(str_list(&sc["capabilities"]["drop"]), ["ALL"], "{id}/{name}");
            assert!(
                str_list(&sc["capabilities"]["add"]).is_empty(),
                "{id}/{name}: no capability is needed"
            );
            for side in ["requests", "limits"] {
                for r in ["cpu", "memory"] {
                    assert!(
                        c["resources"][side][r].as_str().is_some(),
                        "{id}/{name}: {side}.{r}"
                    );
                }
            }
        }
    }
    let ds = device_plugin_ds();
    let c = container(&ds, "sriov-device-plugin");
    for probe in ["livenessProbe", "readinessProbe"] {
        assert!(c[probe].is_mapping(), "device plugin has a {probe}");
    }
    // It reads the host's links: host network namespace.
    assert_eq!(
        ds.value["spec"]["template"]["spec"]["hostNetwork"].as_bool(),
        Some(true)
    );
}

// ----------------------------------------------------------------------------------------------
// Portability and migration.

/// The kustomization's `replacements` entry whose source is the kubelet root ConfigMap.
fn kubelet_root_replacement() -> Yaml {
    let k = doc("kustomization.yaml", "Kustomization", "");
    k.value["replacements"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|r| r["source"]["name"].as_str() == Some("sriov-ovs-kubelet-root"))
        .expect("no replacement from sriov-ovs-kubelet-root")
        .clone()
}

/// The device plugin DaemonSet as kustomize builds it with kubelet root `root`: the
/// replacement's `volumes.[name=X].hostPath.path` target applied by hand.
fn device_plugin_ds_with_kubelet_root(root: &str) -> Doc {
    let replacement = kubelet_root_replacement();
    assert_eq!(replacement["source"]["fieldPath"].as_str(), Some("data.path"));
    let target = &replacement["targets"][0];
    assert_eq!(target["select"]["kind"].as_str(), Some("DaemonSet"));
    assert_eq!(target["select"]["name"].as_str(), Some("sriov-device-plugin"));
    let field = str_list(&target["fieldPaths"]);
    assert_eq!(field.len(), 1);
    let volume = field[0]
        .strip_prefix("spec.template.spec.volumes.[name=")
        .and_then(|rest| rest.strip_suffix("].hostPath.path"))
        .unwrap_or_else(|| panic!("unexpected fieldPath {}", field[0]));
    let mut ds = device_plugin_ds();
    let volumes = ds.value["spec"]["template"]["spec"]["volumes"]
        .as_sequence_mut()
        .unwrap();
    let v = volumes
        .iter_mut()
        .find(|v| v["name"].as_str() == Some(volume))
        .unwrap_or_else(|| panic!("no volume {volume}"));
    v["hostPath"]["path"] = Yaml::from(root);
    ds
}

#[test]
fn kubelet_root_is_one_value_that_kustomize_puts_into_the_hostpath() {
    let source = doc("kubelet-root.yaml", "ConfigMap", "sriov-ovs-kubelet-root");
    assert!(
        source.local_config(),
        "the kubelet root holder must never reach the cluster"
    );
    assert_eq!(source.value["data"]["path"].as_str(), Some("/var/lib/kubelet"));
    let k = doc("kustomization.yaml", "Kustomization", "");
    assert!(str_list(&k.value["resources"]).contains(&"kubelet-root.yaml".to_string()));
    // The shipped value is what the hostPath says, so the file reads right without kustomize.
    let shipped = device_plugin_ds_with_kubelet_root("/var/lib/kubelet");
    assert_eq!(shipped.value, device_plugin_ds().value);
    // No other host path of any DaemonSet is under the kubelet root, except device-plugins,
    // which the kubelet keeps at /var/lib/kubelet whatever its root-dir.
    for d in all_docs().iter().filter(|d| d.kind() == "DaemonSet") {
        for v in d.value["spec"]["template"]["spec"]["volumes"]
            .as_sequence()
            .unwrap()
        {
            let host = v["hostPath"]["path"].as_str().unwrap_or("");
            if host.starts_with("/var/lib/kubelet") {
                assert!(
                    ["kubelet-root", "device-plugins"].contains(&v["name"].as_str().unwrap()),
                    "{}: {host}",
                    d.file.display()
                );
            }
        }
    }
    // With k0s's root, plugins_registry comes from there; device-plugins stays where the
    // kubelet has it; container paths do not change.
    let ds = device_plugin_ds_with_kubelet_root("/var/lib/k0s/kubelet");
    let c = container(&ds, "sriov-device-plugin");
    let mounts = mounts(&ds, c);
    for (inside, host) in [
        (
            "/var/lib/kubelet/device-plugins",
            "/var/lib/kubelet/device-plugins",
        ),
        (
            "/var/lib/kubelet/plugins_registry",
            "/var/lib/k0s/kubelet/plugins_registry",
        ),
    ] {
        let (volume, ro) = &mounts[inside];
        assert_eq!(volume["hostPath"]["path"].as_str(), Some(host));
        assert!(!ro);
    }
}

#[test]
fn daemonsets_tolerate_every_taint_like_multus() {
    for ds in [device_plugin_ds(), installer_ds()] {
        let tolerations = ds.value["spec"]["template"]["spec"]["tolerations"]
            .as_sequence()
            .unwrap();
        assert!(
            tolerations
                .iter()
                .any(|t| t["operator"].as_str() == Some("Exists")
                    && t["key"].is_null()
                    && t["effect"].is_null()),
            "{}: {tolerations:?}",
            ds.file.display()
        );
    }
}

#[test]
fn sriovdp_config_ships_as_an_optional_manifest_outside_the_kustomization() {
    let k = doc("kustomization.yaml", "Kustomization", "");
    let resources = str_list(&k.value["resources"]);
    let cm = doc("optional/sriovdp-config.yaml", "ConfigMap", "sriovdp-config");
    assert_eq!(cm.namespace(), "kube-system");
    assert!(
        !resources.iter().any(|r| r.starts_with("optional/")),
        "{resources:?}"
    );
    // The DaemonSet mounts it by the Go plugin's name, so an existing one is used as it is.
    let ds = device_plugin_ds();
    let volumes = ds.value["spec"]["template"]["spec"]["volumes"]
        .as_sequence()
        .unwrap();
    assert!(volumes
        .iter()
        .any(|v| v["configMap"]["name"].as_str() == Some("sriovdp-config")));
}
