//! Stand-ins for a cluster running unmodified Kube-OVN (issue 11), each pinned to the Kube-OVN
//! file and tag it follows: the Kubernetes API server ([`apiserver`], [`store`]), Kube-OVN's
//! controller ([`controller`], writing the real OVN NB through [`nbctl`]) and the `kube-ovn` CNI
//! shim ([`shim`], binary `kube-ovn-shim`, installed as `kube-ovn` by [`install_shim`]), with
//! the CNI-server protocol it speaks ([`protocol`], [`result`]).

use std::path::{Path, PathBuf};

pub mod annotations;
pub mod apiserver;
pub mod controller;
pub mod http;
pub mod nbctl;
pub mod objects;
pub mod podnets;
pub mod protocol;
pub mod result;
pub mod shim;
pub mod store;
pub mod sysctl;
pub mod watch;

/// The CNI plugin name the shim is installed under (`/opt/cni/bin/kube-ovn`).
pub const SHIM_PLUGIN: &str = "kube-ovn";

/// Errors of installing the shim.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The shim binary is not available.
    #[error("kube-ovn shim stand-in")]
    Binary(#[from] crate::binaries::BinaryError),
    /// The link could not be made.
    #[error("cannot link {link} to {target}")]
    Link {
        /// The link.
        link: PathBuf,
        /// The binary.
        target: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Makes `dir/kube-ovn` the shim stand-in (a symlink to the built `kube-ovn-shim`), so a
/// `CNI_PATH` holding `dir` runs it for `"type": "kube-ovn"`. Returns the link.
pub fn install_shim(dir: &Path) -> Result<PathBuf, InstallError> {
    let target = crate::binaries::binary(crate::binaries::KUBE_OVN_SHIM)?;
    let link = dir.join(SHIM_PLUGIN);
    let err = |source| InstallError::Link {
        link: link.clone(),
        target: target.clone(),
        source,
    };
    match std::fs::remove_file(&link) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(err(e)),
        _ => {}
    }
    std::os::unix::fs::symlink(&target, &link).map_err(err)?;
    Ok(link)
}
