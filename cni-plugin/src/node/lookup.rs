//! Finding what an attachment is made of: the pod namespace, the VF's netdev wherever it is,
//! the representor, and the names used on the way.

use crate::netlink::link::{Link, LinkError};
use crate::sys::{Namespaces, Net};
use crate::vf::VfInfo;
use sriov_host::PciAddress;
use std::path::Path;

/// Opens the pod namespace for a release; `None` when the path is empty, gone or no longer
/// a namespace (the VF then comes back to the host by itself).
pub fn open_pod_ns<K: Namespaces>(kernel: &K, path: &Path) -> Option<K::Net> {
    if path.as_os_str().is_empty() {
        return None;
    }
    let opened = kernel.open(path).map_err(|err| {
        tracing::info!(netns = %path.display(), error = &err as &dyn std::error::Error, "pod namespace unusable; looking for the VF on the host");
    });
    opened.ok()
}

/// Finds the VF in the host namespace: by alias, by the names sysfs shows, by cached ifindex
/// (with a name it plausibly has: its pod name, its old name, or the kernel's `dev<N>`).
pub async fn find_vf_on_host<N: Net>(
    host: &N,
    alias: &str,
    sysfs_names: &[String],
    cached: Option<(u32, &[&str])>,
) -> Result<Option<Link>, LinkError> {
    let links = host.links().await?;
    let found = links
        .iter()
        .find(|l| l.alias.as_deref() == Some(alias))
        .or_else(|| links.iter().find(|l| sysfs_names.contains(&l.name)))
        .or_else(|| {
            let (index, names) = cached?;
            let plausible = |l: &Link| names.contains(&l.name.as_str()) || is_dev_n(&l.name);
            links.iter().find(|l| l.index == index && plausible(l))
        });
    Ok(found.cloned())
}

fn is_dev_n(name: &str) -> bool {
    name.strip_prefix("dev")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Temporary name used while moving a VF between namespaces (unique per VF).
pub fn temp_name(pci: &PciAddress) -> String {
    let digits: String = pci
        .to_string()
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .collect();
    let tail = &digits[digits.len().saturating_sub(10)..];
    format!("sov{tail}")
}

/// The VF's netdev on the host (`Some(None)`: it has none, e.g. bound to vfio-pci) and its
/// representor; `None` for what is not there under the names `vf` gives.
pub async fn locate<N: Net>(
    host: &N,
    alias: &str,
    vf: &VfInfo,
) -> Result<(Option<Option<Link>>, Option<Link>), LinkError> {
    let vf_link = if vf.has_kernel_netdev() {
        find_vf_on_host(host, alias, &vf.netdevs, None).await?.map(Some)
    } else {
        Some(None)
    };
    let rep_link = host.link_by_name(&vf.representor).await?;
    Ok((vf_link, rep_link))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_fit_and_differ_per_vf() {
        let a: PciAddress = "0000:84:00.2".parse().unwrap();
        let b: PciAddress = "0000:84:00.3".parse().unwrap();
        assert!(temp_name(&a).len() <= 15);
        assert_ne!(temp_name(&a), temp_name(&b));
        assert!(is_dev_n("dev12") && !is_dev_n("dev") && !is_dev_n("devx"));
    }
}
