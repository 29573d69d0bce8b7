//! CNI DEL: idempotent, best-effort release, also with the pod namespace or the record gone.

use crate::node::{self, Node, ReleaseError, ReleaseRequest, Released};
use crate::skel::Request;
use crate::sys::Namespaces;
use crate::traits::Ovs;

/// The release `req` asks for; `conf` supplies what a lost record would have said.
pub fn release_request(req: &Request) -> ReleaseRequest {
    let conf = &req.conf;
    ReleaseRequest {
        container_id: req.container_id.clone(),
        ifname: req.ifname.clone(),
        netns: req.netns.clone(),
        pci: conf.device_id,
        bridge: conf.bridge.clone(),
        ipam: req.ipam_facts(),
        ovs_apply_timeout: conf.ovs_apply_timeout,
        listed_phase: None,
    }
}

/// Runs DEL.
pub async fn del<K: Namespaces, O: Ovs>(
    node: Node<'_, K>,
    ovs: &O,
    req: &Request,
) -> Result<Released, ReleaseError> {
    node::release(node, ovs, &release_request(req)).await
}
