//! Eswitch mode of a PF (`compat/devlink/mode`): `switchdev` or `legacy`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::address::PciAddress;
use crate::pci::PciError;
use crate::sysfs::{read_attr, Sysfs};

/// The eswitch mode of a PF.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum EswitchMode {
    /// VF traffic goes through representors (what offload needs).
    Switchdev,
    /// The NIC switches VF traffic itself; no representors.
    Legacy,
}

impl EswitchMode {
    /// The text of `compat/devlink/mode` (and of `devlink dev eswitch show`).
    pub fn as_str(self) -> &'static str {
        match self {
            EswitchMode::Switchdev => "switchdev",
            EswitchMode::Legacy => "legacy",
        }
    }
}

impl fmt::Display for EswitchMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Text that is not an eswitch mode.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown eswitch mode {value:?}, expected switchdev or legacy")]
pub struct UnknownEswitchMode {
    /// The text.
    pub value: String,
}

impl FromStr for EswitchMode {
    type Err = UnknownEswitchMode;

    /// The mode named exactly as the kernel writes it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "switchdev" => Ok(EswitchMode::Switchdev),
            "legacy" => Ok(EswitchMode::Legacy),
            _ => Err(UnknownEswitchMode { value: s.to_string() }),
        }
    }
}

/// The eswitch mode could not be read.
#[derive(Debug, thiserror::Error)]
pub enum EswitchError {
    /// The PF itself could not be read.
    #[error("cannot read PF {pf}")]
    Pf {
        /// The PF.
        pf: PciAddress,
        /// The cause.
        #[source]
        source: PciError,
    },
    /// None of the PF's netdevs has `compat/devlink/mode`.
    #[error("PF {pf} has no netdev with compat/devlink/mode (netdevs: {netdevs:?}); is it an mlx5 PF in the host namespace?")]
    NoModeFile {
        /// The PF.
        pf: PciAddress,
        /// The netdevs that were tried.
        netdevs: Vec<String>,
    },
    /// The file exists but reading it failed.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file holds something else.
    #[error("{} holds {value:?}, expected switchdev or legacy", path.display())]
    BadValue {
        /// The file.
        path: PathBuf,
        /// What it held.
        value: String,
    },
}

impl Sysfs {
    /// The eswitch mode of PF `pf`, read through the first of its netdevs
    /// that has `compat/devlink/mode`.
    pub fn eswitch_mode(&self, pf: &PciAddress) -> Result<EswitchMode, EswitchError> {
        let function = self
            .pci_function(pf)
            .map_err(|source| EswitchError::Pf { pf: *pf, source })?;
        for netdev in &function.netdevs {
            let path = self.class_net_dir().join(netdev).join("compat/devlink/mode");
            let value = match read_attr(&path) {
                Ok(Some(value)) => value,
                Ok(None) => continue,
                Err(source) => return Err(EswitchError::Read { path, source }),
            };
            return value.parse().map_err(|_| EswitchError::BadValue { path, value });
        }
        Err(EswitchError::NoModeFile {
            pf: *pf,
            netdevs: function.netdevs,
        })
    }
}
