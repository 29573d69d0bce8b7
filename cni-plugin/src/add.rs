//! CNI ADD: the invocation turned into an [`AttachRequest`], the [`Attachment`] into a result.

use crate::error::{code, ErrorCode};
use crate::netconf::NetconfError;
use crate::node::{self, Addresses, Addressing, AttachError, AttachRequest, Attachment, Node, PortRequest};
use crate::result::{CniResult, Interface};
use crate::skel::Request;
use crate::sys::Namespaces;
use crate::traits::{Ovs, OvsError};
use std::future::Future;

/// ADD failed.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    /// Neither `deviceID`, `pciBusID` nor `runtimeConfig.deviceID` is set.
    #[error(
        "no VF given: the network configuration has no deviceID (nor pciBusID, \
         runtimeConfig.deviceID). Usual causes: (1) the NetworkAttachmentDefinition lacks the \
         annotation k8s.v1.cni.cncf.io/resourceName naming the device plugin resource; (2) the \
         pod does not request that resource in resources.requests/limits; (3) Multus runs as \
         the thin plugin, which does not pass deviceID: use the thick plugin \
         (multus-daemonset-thick.yml)"
    )]
    NoDeviceId,
    /// The configuration cannot be honoured.
    #[error("invalid network configuration")]
    Netconf(#[source] NetconfError),
    /// Attaching failed (and was rolled back).
    #[error(transparent)]
    Attach(#[from] AttachError),
}

impl ErrorCode for AddError {
    fn code(&self) -> u32 {
        match self {
            AddError::NoDeviceId => code::INVALID_CONFIG,
            AddError::Netconf(e) => e.code(),
            AddError::Attach(e) => e.code(),
        }
    }
}

/// The attach `req` asks for.
pub fn attach_request(req: &Request) -> Result<AttachRequest, AddError> {
    let conf = &req.conf;
    let pci = conf.device_id.ok_or(AddError::NoDeviceId)?;
    let addressing = match req.ipam_facts() {
        Some(facts) => Addressing::Ipam(facts),
        None => Addressing::Given(Addresses::from_ips(&conf.runtime_ips)),
    };
    Ok(AttachRequest {
        container_id: req.container_id.clone(),
        ifname: req.ifname.clone(),
        netns: req.netns.clone().unwrap_or_default(),
        pci,
        mac: conf.effective_mac(&req.args).map_err(AddError::Netconf)?,
        mtu: conf.mtu,
        addressing,
        port: PortRequest {
            bridge: conf.bridge.clone(),
            iface_id: conf.ovn_port_name(&req.args),
            vlan: conf.vlan,
            pod_name: req.args.pod_name.clone(),
            pod_namespace: req.args.pod_namespace.clone(),
            ..Default::default()
        },
        network: conf.name.clone(),
        ovn_installed_timeout: conf.ovn_installed_timeout,
        ovs_apply_timeout: conf.ovs_apply_timeout,
    })
}

/// The CNI result of an attachment: the pod interface first, then the representor.
pub fn cni_result(att: &Attachment, req: &AttachRequest) -> CniResult {
    let pod = att.pod_interface.as_ref();
    let interfaces = vec![
        Interface {
            name: req.ifname.clone(),
            mac: pod.and_then(|l| l.mac).map(|m| m.to_string()),
            sandbox: Some(req.netns.display().to_string()),
            mtu: pod.and_then(|l| l.mtu),
            pci_id: Some(req.pci.to_string()),
        },
        Interface {
            name: att.representor.name.clone(),
            mac: att.representor.mac.map(|m| m.to_string()),
            sandbox: None,
            mtu: att.representor.mtu,
            pci_id: None,
        },
    ];
    let mut ips = att.addresses.ips.clone();
    for ip in &mut ips {
        ip.interface = pod.is_some().then_some(0);
    }
    CniResult {
        interfaces,
        ips,
        routes: att.addresses.routes.clone(),
        dns: att.addresses.dns.clone(),
    }
}

/// Runs ADD. `connect` opens OVSDB once the input is validated.
pub async fn add<K, O, F>(node: Node<'_, K>, connect: F, req: &Request) -> Result<CniResult, AddError>
where
    K: Namespaces,
    O: Ovs,
    F: Future<Output = Result<O, OvsError>>,
{
    for key in &req.conf.unknown_keys {
        tracing::warn!(key = %key, "unknown network configuration key ignored");
    }
    let attach = attach_request(req)?;
    let att = node::attach(node, connect, &attach).await?;
    tracing::info!(pci = %attach.pci, ifname = %attach.ifname, representor = %att.representor.name, "ADD done");
    Ok(cni_result(&att, &attach))
}
