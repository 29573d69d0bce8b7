//! Pods of the simulated cluster: created as kubelet + Kube-OVN + Multus would (VF pods) or with
//! a plain veth (harness checks), and deleted in reverse, also when creation failed half-way.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use super::{Attach, Cluster, ClusterError, POD_NAMESPACE};
use crate::binaries;
use crate::logical::{self, OVN_DEFAULT};
use crate::multus::{CniEnv, MultusError, Nad, NetworkSelection, PodRef};
use crate::pod::{Pod, PodNic};

impl Cluster {
    /// A pod on `node` in `subnet` whose `eth0` is a plain veth plugged by the harness (checks the
    /// OVN setup without our binaries). Port name `<pod>.<ns>` (provider `ovn`).
    pub fn add_veth_pod(&mut self, node: usize, name: &str, subnet: &str) -> Result<(), ClusterError> {
        let addr = self.allocate(subnet)?;
        let lsp = logical::port_name(name, POD_NAMESPACE, "ovn");
        logical::add_port(&self.central, subnet, &lsp, &addr, name, POD_NAMESPACE)?;
        let result = Pod::create(
            &self.prefix,
            name,
            POD_NAMESPACE,
            node,
            subnet,
            &lsp,
            addr.clone(),
            "eth0",
        )
        .and_then(|mut pod| {
            self.veth_count += 1;
            pod.plug_veth(&self.nodes[node], &format!("vp{}", self.veth_count))
                .map(|()| pod)
        });
        match result {
            Ok(pod) => {
                self.pods.push(pod);
                Ok(())
            }
            Err(e) => {
                let _ = logical::del_port(&self.central, &lsp);
                self.release(subnet, addr.ip);
                Err(e.into())
            }
        }
    }

    fn allocate(&mut self, subnet: &str) -> Result<logical::PortAddress, ClusterError> {
        let ipam = self
            .ipams
            .get_mut(subnet)
            .ok_or_else(|| ClusterError::Harness(format!("no subnet {subnet}")))?;
        Ok(ipam.allocate()?)
    }

    fn release(&mut self, subnet: &str, ip: Ipv4Addr) {
        if let Some(ipam) = self.ipams.get_mut(subnet) {
            ipam.release(ip);
        }
    }

    /// The CNI environment of node `i`: plugins run in the node netns, `CNI_PATH` holds our
    /// `sriov-ovs` and the reference plugins, node-local OVSDB socket and state directory.
    pub fn cni_env(&self, i: usize) -> Result<CniEnv, ClusterError> {
        if let Some(k) = &self.kube_ovn {
            return Ok(self.kube_ovn_env(k, i));
        }
        let node = &self.nodes[i];
        let ours = binaries::binary(binaries::CNI_PLUGIN)?;
        let ours_dir = ours.parent().map_or_else(PathBuf::new, Path::to_path_buf);
        let mut local = Map::new();
        local.insert(
            "ovsdbSocket".into(),
            json!(format!("unix:{}", node.db_sock().display())),
        );
        local.insert("stateDir".into(), json!(node.dir().join("cni-state")));
        local.insert("logFile".into(), json!(node.dir().join("sriov-ovs.log")));
        local.insert("logLevel".into(), json!("debug"));
        let mut env = vec![];
        if let Some(root) = node.sysfs_root() {
            env.push(("SRIOV_SYSFS_ROOT".to_string(), root.display().to_string()));
        }
        Ok(CniEnv {
            cni_path: vec![ours_dir, PathBuf::from("/usr/lib/cni")],
            node_netns: Some(node.netns().to_string()),
            env,
            node_local: vec![(binaries::CNI_PLUGIN.to_string(), local)],
        })
    }

    /// Creates a pod on `node` requesting one `mellanox.com/...` VF, attached to `subnet` through
    /// the `default/sriov` NAD, as kubelet + Multus + Kube-OVN would.
    pub fn add_sriov_pod(
        &mut self,
        node: usize,
        name: &str,
        subnet: &str,
        attach: Attach,
    ) -> Result<(), ClusterError> {
        if self.kube_ovn.is_some() {
            return self.add_kube_ovn_pod(node, name, subnet, attach);
        }
        let nad = self.nad()?;
        let resource = nad
            .resource_name
            .clone()
            .ok_or_else(|| ClusterError::Harness(format!("{} has no resourceName", nad.id())))?;
        let provider = nad
            .plugins()
            .map_err(MultusError::from)?
            .first()
            .and_then(|p| p.get("provider"))
            .and_then(Value::as_str)
            .unwrap_or("ovn")
            .to_string();
        let env = self.cni_env(node)?;
        let lsp = logical::port_name(name, POD_NAMESPACE, &provider);
        let addr = self.allocate(subnet)?;
        let (ifname, default_route) = match &attach {
            Attach::DefaultNetwork => ("eth0", vec![]),
            Attach::Secondary { default_route } => ("net1", default_route.clone()),
        };
        let mut pod = match Pod::create(
            &self.prefix,
            name,
            POD_NAMESPACE,
            node,
            subnet,
            &lsp,
            addr.clone(),
            ifname,
        ) {
            Ok(p) => p,
            Err(e) => {
                self.release(subnet, addr.ip);
                return Err(e.into());
            }
        };
        let sel = NetworkSelection {
            name: nad.name.clone(),
            namespace: nad.namespace.clone(),
            interface: Some(ifname.to_string()),
            ips: vec![addr.cidr()],
            mac: Some(addr.mac.clone()),
            default_route,
        };
        let secondary = matches!(attach, Attach::Secondary { .. });
        let created = self.attach_vf(&mut pod, &nad, &resource, &sel, &env, secondary);
        self.keep_or_undo(pod, created)
    }

    /// The kubelet, Kube-OVN and Multus steps of a VF pod; `teardown_pod` undoes any prefix of them.
    fn attach_vf(
        &mut self,
        pod: &mut Pod,
        nad: &Nad,
        resource: &str,
        sel: &NetworkSelection,
        env: &CniEnv,
        with_primary: bool,
    ) -> Result<(), ClusterError> {
        let node = pod.node;
        if with_primary {
            // The cluster default network, as Kube-OVN's own CNI makes it.
            let addr = self.allocate(OVN_DEFAULT)?;
            let lsp = logical::port_name(&pod.name, POD_NAMESPACE, "ovn");
            self.veth_count += 1;
            let host_if = format!("vp{}", self.veth_count);
            logical::add_port(&self.central, OVN_DEFAULT, &lsp, &addr, &pod.name, POD_NAMESPACE)?;
            pod.plug_primary(&self.nodes[node], &host_if, &lsp, addr)?;
        }
        let device_id = self.allocate_vf(pod, resource)?;
        logical::add_port(
            &self.central,
            &pod.subnet,
            &pod.lsp,
            &pod.addr,
            &pod.name,
            POD_NAMESPACE,
        )?;
        self.multus_add(pod, nad, sel, env, device_id)
    }

    /// The kubelet's `Allocate` of one VF of `resource` for the pod.
    fn allocate_vf(&self, pod: &Pod, resource: &str) -> Result<String, ClusterError> {
        let alloc = match self.kubelet(pod.node) {
            Some(k) => k.allocate(&pod.uid, resource, 1)?,
            None => return Err(ClusterError::Harness(format!("node {} has no kubelet", pod.node))),
        };
        Ok(alloc.device_ids.first().cloned().unwrap_or_default())
    }

    /// Multus ADD of `nad` with VF `device_id` for the pod, recorded as the pod's NIC.
    fn multus_add(
        &self,
        pod: &mut Pod,
        nad: &Nad,
        sel: &NetworkSelection,
        env: &CniEnv,
        device_id: String,
    ) -> Result<(), ClusterError> {
        let pref = PodRef {
            name: pod.name.clone(),
            namespace: POD_NAMESPACE.to_string(),
            uid: pod.uid.clone(),
            container_id: pod.container_id.clone(),
            netns_path: pod.netns_path(),
            netns: pod.netns().to_string(),
        };
        let attachment = env.add(nad, sel, &pref, &pod.ifname, Some(&device_id))?;
        let n = &self.nodes[pod.node];
        let vf_netdev = n
            .vf_by_pci(&device_id)
            .and_then(|vf| vf.netdev_name().map(str::to_string))
            .unwrap_or_default();
        let representor = n.interfaces_of(&pod.lsp).into_iter().next().unwrap_or_default();
        pod.nic = PodNic::Vf {
            device_id,
            vf_netdev,
            representor,
            add_time: attachment.add_time,
            attachment: Box::new(attachment),
        };
        Ok(())
    }

    /// Keeps the pod when its creation succeeded, else undoes whatever part of it happened.
    fn keep_or_undo(&mut self, pod: Pod, created: Result<(), ClusterError>) -> Result<(), ClusterError> {
        match created {
            Ok(()) => {
                self.pods.push(pod);
                Ok(())
            }
            Err(e) => {
                if let Err(undo) = self.teardown_pod(pod) {
                    tracing::warn!(error = %sriov_logging::error_chain(&undo), "undoing a failed pod creation");
                }
                Err(e)
            }
        }
    }

    /// Deletes pod `name`: CNI DEL (reverse chain) for VF pods, frees its devices in the kubelet,
    /// deletes its OVN port and address, then its netns.
    pub fn delete_pod(&mut self, name: &str) -> Result<(), ClusterError> {
        let Some(idx) = self.pods.iter().position(|p| p.name == name) else {
            return Err(ClusterError::Harness(format!("no pod {name}")));
        };
        let pod = self.pods.remove(idx);
        self.teardown_pod(pod)
    }

    pub(super) fn teardown_pod(&mut self, pod: Pod) -> Result<(), ClusterError> {
        if self.kube_ovn.is_some() {
            return self.teardown_kube_ovn_pod(pod);
        }
        let mut first_err: Option<ClusterError> = None;
        match &pod.nic {
            PodNic::Vf { attachment, .. } => match self.cni_env(pod.node) {
                Ok(env) => {
                    if let Err(e) = env.del(attachment) {
                        first_err.get_or_insert(e.into());
                    }
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            },
            PodNic::Veth { host_if } => {
                if !host_if.is_empty() {
                    let _ = self.nodes[pod.node].vsctl(["--if-exists", "del-port", "br-int", host_if]);
                }
            }
        }
        if let Some(k) = self.kubelet(pod.node) {
            k.release(&pod.uid);
        }
        if let Some(primary) = &pod.primary {
            let _ = self.nodes[pod.node].vsctl(["--if-exists", "del-port", "br-int", &primary.host_if]);
            if let Err(e) = logical::del_port(&self.central, &primary.lsp) {
                first_err.get_or_insert(e.into());
            }
            self.release(OVN_DEFAULT, primary.addr.ip);
        }
        if let Err(e) = logical::del_port(&self.central, &pod.lsp) {
            first_err.get_or_insert(e.into());
        }
        self.release(&pod.subnet.clone(), pod.addr.ip);
        drop(pod);
        first_err.map_or(Ok(()), Err)
    }
}

impl Cluster {
    /// A VF pod through the guide's Kube-OVN NAD: the pod object goes to the API-server
    /// stand-in, the controller stand-in allocates (late), Multus runs the kube-ovn shim, which
    /// asks the node's `sriov-ovs-server`; the pod's address is what the controller allocated.
    fn add_kube_ovn_pod(
        &mut self,
        node: usize,
        name: &str,
        subnet: &str,
        attach: Attach,
    ) -> Result<(), ClusterError> {
        let Some(k) = &self.kube_ovn else {
            return Err(ClusterError::Harness("no Kube-OVN path".into()));
        };
        let nad = k.nad.clone();
        let provider = format!("{}.{}.ovn", nad.name, nad.namespace);
        let lsp = logical::port_name(name, POD_NAMESPACE, &provider);
        let (ifname, gateways) = match &attach {
            Attach::DefaultNetwork => ("eth0", None),
            Attach::Secondary { default_route } => ("net1", Some(default_route.clone())),
        };
        let unknown = logical::PortAddress {
            mac: String::new(),
            ip: Ipv4Addr::UNSPECIFIED,
            prefix_len: 0,
            gateway: Ipv4Addr::UNSPECIFIED,
        };
        let mut pod = Pod::create(
            &self.prefix,
            name,
            POD_NAMESPACE,
            node,
            subnet,
            &lsp,
            unknown,
            ifname,
        )?;
        let object = super::kubeovn::pod_object(
            name,
            self.nodes[node].name(),
            &nad,
            &provider,
            subnet,
            gateways.as_deref(),
        );
        if let Err(e) = k.api.store().create_pod(object) {
            return Err(ClusterError::Harness(format!(
                "create pod object {name}: {}",
                sriov_logging::error_chain(&e)
            )));
        }
        let created = self.attach_kube_ovn_vf(&mut pod, &nad, &provider, gateways);
        self.keep_or_undo(pod, created)
    }

    /// The controller's allocation of `provider` for the pod, waiting for it.
    fn allocation_of(
        &self,
        pod: &str,
        provider: &str,
    ) -> Result<crate::kubeovn::controller::Allocation, ClusterError> {
        let k = self
            .kube_ovn
            .as_ref()
            .ok_or_else(|| ClusterError::Harness("no Kube-OVN path".into()))?;
        testbed::daemon::wait_for(std::time::Duration::from_secs(30), || {
            k.controller
                .allocations(POD_NAMESPACE, pod)
                .into_iter()
                .find(|a| a.net.provider == provider)
        })
        .ok_or_else(|| {
            ClusterError::Harness(format!(
                "kube-ovn-controller stand-in allocated nothing for {pod} provider {provider}"
            ))
        })
    }

    fn attach_kube_ovn_vf(
        &mut self,
        pod: &mut Pod,
        nad: &Nad,
        provider: &str,
        gateways: Option<Vec<Ipv4Addr>>,
    ) -> Result<(), ClusterError> {
        let node = pod.node;
        if gateways.is_some() {
            // The pod's default network, as Kube-OVN's own CNI makes it from the controller's
            // `ovn` allocation.
            let primary = self.allocation_of(&pod.name, "ovn")?;
            self.veth_count += 1;
            let host_if = format!("vp{}", self.veth_count);
            pod.plug_primary(&self.nodes[node], &host_if, &primary.lsp, primary.addr)?;
        }
        let resource = nad
            .resource_name
            .clone()
            .ok_or_else(|| ClusterError::Harness(format!("{} has no resourceName", nad.id())))?;
        let device_id = self.allocate_vf(pod, &resource)?;
        let sel = NetworkSelection {
            name: nad.name.clone(),
            namespace: nad.namespace.clone(),
            interface: Some(pod.ifname.clone()),
            ips: vec![],
            mac: None,
            default_route: gateways.unwrap_or_default(),
        };
        let env = self.cni_env(node)?;
        // Multus stores the result; the pod's address is the controller's allocation.
        self.multus_add(pod, nad, &sel, &env, device_id)?;
        pod.addr = self.allocation_of(&pod.name, provider)?.addr;
        Ok(())
    }

    /// CNI DEL through the shim and the node server, the kubelet's release, then the pod
    /// object's deletion (the controller stand-in deletes its ports and frees its addresses).
    fn teardown_kube_ovn_pod(&mut self, pod: Pod) -> Result<(), ClusterError> {
        let mut first_err: Option<ClusterError> = None;
        if let PodNic::Vf { attachment, .. } = &pod.nic {
            match self.cni_env(pod.node) {
                Ok(env) => {
                    if let Err(e) = env.del(attachment) {
                        first_err.get_or_insert(e.into());
                    }
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        if let Some(k) = self.kubelet(pod.node) {
            k.release(&pod.uid);
        }
        if let Some(primary) = &pod.primary {
            let _ = self.nodes[pod.node].vsctl(["--if-exists", "del-port", "br-int", &primary.host_if]);
        }
        if let Some(k) = &self.kube_ovn {
            if let Err(e) = k.api.store().delete_pod(POD_NAMESPACE, &pod.name) {
                tracing::debug!(error = %sriov_logging::error_chain(&e), pod = %pod.name, "pod object already gone");
            }
        }
        drop(pod);
        first_err.map_or(Ok(()), Err)
    }
}
