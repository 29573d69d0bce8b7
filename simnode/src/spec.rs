//! What a simulated node should look like: the options of `simnode up`, with defaults and validation.

use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sriov_host::EswitchMode;

/// Most VFs one simulated PF may have (the mlx5 `sriov_totalvfs` of a ConnectX card).
pub const MAX_VFS_PER_PF: u32 = 127;
/// Most PFs one simulated node may have (four dual-port cards).
pub const MAX_PFS: u32 = 8;
/// Longest accepted instance prefix: the longest link name, `<prefix>p7v126`, must fit in 15 bytes.
pub const MAX_PREFIX_LEN: usize = 9;
/// Where `up` keeps per-instance state (`<dir>/<prefix>/state.json`) unless told otherwise.
pub const DEFAULT_STATE_DIR: &str = "/run/simnode";

/// Errors of [`SimNodeSpec::validate`] and of parsing the option enums.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The prefix is empty, too long or has characters not allowed in link names.
    #[error("invalid prefix {prefix:?}: want 1..={MAX_PREFIX_LEN} ASCII letters/digits starting with a lowercase letter")]
    InvalidPrefix {
        /// The rejected prefix.
        prefix: String,
    },
    /// The number of PFs is outside `1..=MAX_PFS`.
    #[error("invalid PF count {pfs}: want 1..={MAX_PFS}")]
    InvalidPfCount {
        /// The rejected count.
        pfs: u32,
    },
    /// The number of VFs per PF is above `MAX_VFS_PER_PF`.
    #[error("invalid VF count {vfs}: want 0..={MAX_VFS_PER_PF}")]
    InvalidVfCount {
        /// The rejected count.
        vfs: u32,
    },
    /// The PCI buses the PFs need run past bus 0xff, or start at bus 0 (kept for the decoys).
    #[error("first bus {first_bus:#04x} is 0 or leaves no room for {pfs} PFs")]
    BusOverflow {
        /// The first bus asked for.
        first_bus: u8,
        /// The number of PFs.
        pfs: u32,
    },
    /// The netns name is not a plain file name under `/run/netns`.
    #[error("invalid netns name {netns:?}")]
    InvalidNetns {
        /// The rejected name.
        netns: String,
    },
    /// An option value (model, naming, driver, eswitch mode) is unknown.
    #[error("unknown {what} {value:?}; expected one of: {expected}")]
    UnknownValue {
        /// Which option.
        what: &'static str,
        /// The rejected value.
        value: String,
        /// The accepted values.
        expected: &'static str,
    },
}

/// The NIC model: decides the PCI device IDs of PFs and VFs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum Model {
    /// ConnectX-5: PF `0x1017`, VF `0x1018`.
    #[default]
    Cx5,
    /// ConnectX-6: PF `0x101b`, VF `0x101c`.
    Cx6,
    /// ConnectX-6 Dx: PF `0x101d`, VF `0x101e`.
    Cx6Dx,
    /// ConnectX-7: PF `0x1021`, VF `0x101e`.
    Cx7,
    /// BlueField-2 (host side): PF `0xa2d6`, VF `0x101e`.
    BlueField2,
}

impl Model {
    /// The Mellanox/NVIDIA PCI vendor ID.
    pub const VENDOR: u16 = 0x15b3;

    /// PCI device ID of the physical function.
    pub fn pf_device_id(self) -> u16 {
        match self {
            Model::Cx5 => 0x1017,
            Model::Cx6 => 0x101b,
            Model::Cx6Dx => 0x101d,
            Model::Cx7 => 0x1021,
            Model::BlueField2 => 0xa2d6,
        }
    }

    /// PCI device ID of its virtual functions.
    pub fn vf_device_id(self) -> u16 {
        match self {
            Model::Cx5 => 0x1018,
            Model::Cx6 => 0x101c,
            Model::Cx6Dx | Model::Cx7 | Model::BlueField2 => 0x101e,
        }
    }
}

/// How representors are named in `phys_port_name`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum RepresentorNaming {
    /// Current kernels: `pf0vf3`.
    #[default]
    PfVf,
    /// Old kernels: bare VF index, `3`.
    Legacy,
    /// BlueField host representors as seen on the DPU: `c1pf0vf3`.
    Dpu,
}

impl RepresentorNaming {
    /// The `phys_port_name` of the representor of VF `vf` on the PF with port number `port`.
    pub fn port_name(self, port: u32, vf: u32) -> String {
        match self {
            RepresentorNaming::PfVf => format!("pf{port}vf{vf}"),
            RepresentorNaming::Legacy => format!("{vf}"),
            RepresentorNaming::Dpu => format!("c1pf{port}vf{vf}"),
        }
    }
}

/// The driver the VFs are bound to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum VfDriver {
    /// `mlx5_core`: each VF has a netdev.
    #[default]
    Mlx5,
    /// `vfio-pci` (DPDK): no VF netdev, `net/` is empty.
    VfioPci,
    /// No driver: no `driver` link and no netdev.
    Unbound,
}

impl VfDriver {
    /// The driver's name under `bus/pci/drivers`, `None` when unbound.
    pub fn name(self) -> Option<&'static str> {
        match self {
            VfDriver::Mlx5 => Some("mlx5_core"),
            VfDriver::VfioPci => Some("vfio-pci"),
            VfDriver::Unbound => None,
        }
    }
}

macro_rules! parse_enum {
    ($ty:ty, $what:literal, $expected:literal, { $($text:literal => $val:expr),+ $(,)? }) => {
        impl FromStr for $ty {
            type Err = SpecError;
            fn from_str(s: &str) -> Result<Self, SpecError> {
                match s.to_ascii_lowercase().as_str() {
                    $($text => Ok($val),)+
                    _ => Err(SpecError::UnknownValue { what: $what, value: s.to_string(), expected: $expected }),
                }
            }
        }
    };
}

parse_enum!(Model, "model", "cx5, cx6, cx6dx, cx7, bf2", {
    "cx5" => Model::Cx5, "cx6" => Model::Cx6, "cx6dx" => Model::Cx6Dx, "cx7" => Model::Cx7,
    "bf2" => Model::BlueField2, "bluefield2" => Model::BlueField2,
});
parse_enum!(RepresentorNaming, "naming", "pfvf, legacy, dpu", {
    "pfvf" => RepresentorNaming::PfVf, "legacy" => RepresentorNaming::Legacy, "dpu" => RepresentorNaming::Dpu,
});
parse_enum!(VfDriver, "vf driver", "mlx5, vfio-pci, unbound", {
    "mlx5" => VfDriver::Mlx5, "mlx5_core" => VfDriver::Mlx5, "vfio-pci" => VfDriver::VfioPci,
    "vfio" => VfDriver::VfioPci, "unbound" => VfDriver::Unbound, "none" => VfDriver::Unbound,
});

/// Parses `--eswitch` the way the other options are parsed (any case); the mode itself is the
/// host model's [`EswitchMode`].
pub fn parse_eswitch(s: &str) -> Result<EswitchMode, SpecError> {
    s.to_ascii_lowercase()
        .parse()
        .map_err(|_| SpecError::UnknownValue {
            what: "eswitch mode",
            value: s.to_string(),
            expected: "switchdev, legacy",
        })
}

/// Everything `SimNode::up` needs. Build with [`SimNodeSpec::new`] and the `with_*`/field setters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimNodeSpec {
    /// Instance prefix: every link name starts with it; also names the state directory.
    pub prefix: String,
    /// Number of PFs (ports); PFs are grouped two per card, one PCI bus per card.
    pub pfs: u32,
    /// VFs per PF, at most [`MAX_VFS_PER_PF`].
    pub vfs_per_pf: u32,
    /// NIC model (device IDs).
    pub model: Model,
    /// NUMA node of every function; `None` writes `-1`.
    pub numa_node: Option<u32>,
    /// Representor `phys_port_name` scheme.
    pub naming: RepresentorNaming,
    /// Driver of the VFs.
    pub vf_driver: VfDriver,
    /// Eswitch mode of the PFs.
    pub eswitch: EswitchMode,
    /// Give each VF netdev an udev-like altname (`<prefix>enp132s0f0v3`).
    pub vf_altnames: bool,
    /// Give each mlx5_core-bound VF an RDMA device (`infiniband/mlx5_N`) with its
    /// `uverbsN`, `umadN` and `issmN` character devices, and the node `rdma_cm`.
    #[serde(default)]
    pub rdma: bool,
    /// Create the links inside this existing netns (`/run/netns/<name>`) instead of the current one.
    pub netns: Option<String>,
    /// Root of the simulated sysfs tree. Must be absent or an empty directory.
    pub sysfs_root: PathBuf,
    /// PCI bus of the first card (not 0: bus 0 holds the decoys); each further card takes the next bus.
    pub first_bus: u8,
    /// Directory holding `<prefix>/state.json` (default [`DEFAULT_STATE_DIR`]).
    pub state_dir: PathBuf,
}

impl SimNodeSpec {
    /// A spec with defaults: CX-5, switchdev, `pfvf` naming, mlx5_core VFs, no NUMA node,
    /// bus 0x84, sysfs root `/run/simnode/<prefix>/sys`, links in the current netns.
    pub fn new(prefix: impl Into<String>, pfs: u32, vfs_per_pf: u32) -> SimNodeSpec {
        let prefix = prefix.into();
        let state_dir = PathBuf::from(DEFAULT_STATE_DIR);
        SimNodeSpec {
            sysfs_root: state_dir.join(&prefix).join("sys"),
            prefix,
            pfs,
            vfs_per_pf,
            model: Model::default(),
            numa_node: None,
            naming: RepresentorNaming::default(),
            vf_driver: VfDriver::default(),
            eswitch: EswitchMode::Switchdev,
            vf_altnames: false,
            rdma: false,
            netns: None,
            first_bus: 0x84,
            state_dir,
        }
    }

    /// Creates the links in an existing named netns.
    pub fn with_netns(mut self, netns: impl Into<String>) -> Self {
        self.netns = Some(netns.into());
        self
    }

    /// Sets the sysfs root (e.g. a `tempfile::TempDir` path).
    pub fn with_sysfs_root(mut self, root: impl Into<PathBuf>) -> Self {
        self.sysfs_root = root.into();
        self
    }

    /// Sets the state directory (the instance keeps `<dir>/<prefix>/state.json`).
    pub fn with_state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = dir.into();
        self
    }

    /// Number of dual-port cards (PCI buses) the PFs need.
    pub fn cards(&self) -> u32 {
        self.pfs.div_ceil(2)
    }

    /// Checks every option; `up` calls this before touching the host.
    pub fn validate(&self) -> Result<(), SpecError> {
        validate_prefix(&self.prefix)?;
        if self.pfs == 0 || self.pfs > MAX_PFS {
            return Err(SpecError::InvalidPfCount { pfs: self.pfs });
        }
        if self.vfs_per_pf > MAX_VFS_PER_PF {
            return Err(SpecError::InvalidVfCount { vfs: self.vfs_per_pf });
        }
        if self.first_bus == 0 || u32::from(self.first_bus) + self.cards() > 0x100 {
            return Err(SpecError::BusOverflow {
                first_bus: self.first_bus,
                pfs: self.pfs,
            });
        }
        if let Some(ns) = &self.netns {
            let ok = !ns.is_empty() && ns != "." && ns != ".." && !ns.contains('/');
            if !ok {
                return Err(SpecError::InvalidNetns { netns: ns.clone() });
            }
        }
        Ok(())
    }
}

/// Setters `fn $name(self, value) -> Self` for plain fields of [`SimNodeSpec`].
macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident => $field:ident: $ty:ty;)+) => {
        impl SimNodeSpec {
            $($(#[$doc])* pub fn $name(mut self, value: $ty) -> Self {
                self.$field = value;
                self
            })+
        }
    };
}

setters! {
    /// Sets the NIC model.
    with_model => model: Model;
    /// Sets the NUMA node.
    with_numa_node => numa_node: Option<u32>;
    /// Sets the representor naming scheme.
    with_naming => naming: RepresentorNaming;
    /// Sets the VF driver.
    with_vf_driver => vf_driver: VfDriver;
    /// Sets the eswitch mode.
    with_eswitch => eswitch: EswitchMode;
    /// Turns the VFs' RDMA devices on or off.
    with_rdma => rdma: bool;
    /// Turns VF altnames on or off.
    with_vf_altnames => vf_altnames: bool;
    /// Sets the PCI bus of the first card.
    with_first_bus => first_bus: u8;
}

/// Checks an instance prefix: 1..=9 bytes, `[a-z][a-z0-9]*` (uppercase letters allowed after the first).
pub fn validate_prefix(prefix: &str) -> Result<(), SpecError> {
    let mut chars = prefix.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric());
    if first_ok && rest_ok && prefix.len() <= MAX_PREFIX_LEN {
        Ok(())
    } else {
        Err(SpecError::InvalidPrefix {
            prefix: prefix.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_prefixes_and_counts() {
        for p in ["", "Abc", "1ab", "a-b", "abcdefghij", "a/b"] {
            assert!(SimNodeSpec::new(p, 1, 1).validate().is_err(), "{p}");
        }
        assert!(SimNodeSpec::new("ok", 0, 1).validate().is_err());
        assert!(SimNodeSpec::new("ok", 9, 1).validate().is_err());
        assert!(SimNodeSpec::new("ok", 1, 128).validate().is_err());
        assert!(SimNodeSpec::new("ok", 8, 127)
            .with_first_bus(0xfe)
            .validate()
            .is_err());
        assert!(SimNodeSpec::new("ok", 8, 127)
            .with_netns("a/b")
            .validate()
            .is_err());
        assert!(SimNodeSpec::new("abcdefghi", 8, 127).validate().is_ok());
    }

    #[test]
    fn parses_option_values() {
        assert_eq!("cx6dx".parse::<Model>().unwrap(), Model::Cx6Dx);
        assert_eq!("BF2".parse::<Model>().unwrap(), Model::BlueField2);
        assert_eq!(
            "dpu".parse::<RepresentorNaming>().unwrap(),
            RepresentorNaming::Dpu
        );
        assert_eq!("vfio-pci".parse::<VfDriver>().unwrap(), VfDriver::VfioPci);
        assert_eq!(parse_eswitch("Legacy").unwrap(), EswitchMode::Legacy);
        assert!(parse_eswitch("off").is_err());
        assert!("cx4".parse::<Model>().is_err());
    }

    #[test]
    fn representor_port_names_follow_scheme() {
        assert_eq!(RepresentorNaming::PfVf.port_name(1, 3), "pf1vf3");
        assert_eq!(RepresentorNaming::Legacy.port_name(1, 3), "3");
        assert_eq!(RepresentorNaming::Dpu.port_name(0, 3), "c1pf0vf3");
    }
}
