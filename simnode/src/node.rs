//! A running simulated node: `up` builds links and tree, `down`/`Drop`/`down_prefix` undo it all.

use std::fs;
use std::path::{Path, PathBuf};

use sriov_logging::error_chain;
use tracing::{debug, info, warn};

use crate::layout::{Layout, PfLayout, VfLayout};
use crate::links::{self, LinkError};
use crate::mount::{self, MountError};
use crate::spec::{validate_prefix, SimNodeSpec, SpecError, DEFAULT_STATE_DIR};
use crate::state::{self, State, StateError};
use crate::tree::{self, TreeError};

/// Errors of bringing a simulated node up or down.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The spec is invalid; nothing was touched.
    #[error("invalid simnode spec")]
    InvalidSpec(#[source] SpecError),
    /// The sysfs root cannot be used; nothing was touched.
    #[error("unusable sysfs root {root}")]
    SysfsRoot {
        /// The root.
        root: PathBuf,
        /// The cause.
        #[source]
        source: TreeError,
    },
    /// A step on the instance's links failed: `prepare` (checking the target netns, names or
    /// link groups; nothing was touched), `create` (what was made has been removed again) or
    /// `delete`.
    #[error("cannot {step} links of instance {prefix:?}")]
    Links {
        /// The step.
        step: &'static str,
        /// The prefix.
        prefix: String,
        /// The cause.
        #[source]
        source: LinkError,
    },
    /// Claiming, writing or reading the instance state failed.
    #[error("state of instance {prefix:?}")]
    State {
        /// The prefix.
        prefix: String,
        /// The cause.
        #[source]
        source: StateError,
    },
    /// A step on the instance's sysfs tree failed: `write sysfs tree` (links and tree have been
    /// removed again), `mirror a netdev rename into the sysfs tree`, `write a bond into the
    /// sysfs tree` or `remove sysfs tree`.
    #[error("cannot {step} of instance {prefix:?}")]
    Tree {
        /// The step.
        step: &'static str,
        /// The prefix.
        prefix: String,
        /// The cause.
        #[source]
        source: TreeError,
    },
    /// Unmounting the tree's tmpfs failed.
    #[error("cannot unmount sysfs tree of instance {prefix:?}")]
    Unmount {
        /// The prefix.
        prefix: String,
        /// The cause.
        #[source]
        source: MountError,
    },
    /// There is no instance with this prefix (no state file).
    #[error("no simnode instance {prefix:?} (no state in {dir})")]
    NoInstance {
        /// The prefix.
        prefix: String,
        /// The state directory searched.
        dir: PathBuf,
    },
}

impl SimError {
    fn links(step: &'static str, prefix: &str) -> impl FnOnce(LinkError) -> SimError {
        let prefix = prefix.to_string();
        move |source| SimError::Links { step, prefix, source }
    }

    fn tree(step: &'static str, prefix: &str) -> impl FnOnce(TreeError) -> SimError {
        let prefix = prefix.to_string();
        move |source| SimError::Tree { step, prefix, source }
    }

    fn state(prefix: &str) -> impl FnOnce(StateError) -> SimError {
        let prefix = prefix.to_string();
        move |source| SimError::State { prefix, source }
    }
}

/// A simulated node that is up. Dropping it tears it down (errors are logged).
#[derive(Debug)]
pub struct SimNode {
    state: State,
    state_dir: PathBuf,
    torn_down: bool,
}

impl SimNode {
    /// Builds the node: claims the prefix, creates the links, writes the tree and the state file.
    /// On error everything made so far is removed again.
    pub fn up(mut spec: SimNodeSpec) -> Result<SimNode, SimError> {
        let prefix = spec.prefix.clone();
        // Absolute paths, so `down` from another working directory finds the same tree.
        for path in [&mut spec.sysfs_root, &mut spec.state_dir] {
            *path = std::path::absolute(&*path).map_err(|source| SimError::SysfsRoot {
                root: path.clone(),
                source: TreeError::io("read sysfs root", path)(source),
            })?;
        }
        spec.validate().map_err(SimError::InvalidSpec)?;
        let prep = || SimError::links("prepare", &prefix);
        links::check_netns(spec.netns.as_deref()).map_err(prep())?;
        let root = spec.sysfs_root.clone();
        let created_root = tree::check_root(&root).map_err(|source| SimError::SysfsRoot {
            root: root.clone(),
            source,
        })?;
        let layout = Layout::plan(&spec);
        links::check_names_free(&layout).map_err(prep())?;
        let group = links::pick_group(spec.netns.as_deref(), &prefix).map_err(prep())?;
        state::claim(&spec.state_dir, &prefix).map_err(SimError::state(&prefix))?;
        let mut node = SimNode {
            state: State {
                prefix: prefix.clone(),
                pid: std::process::id(),
                group,
                created_root,
                mounted: false,
                layout,
            },
            state_dir: spec.state_dir.clone(),
            torn_down: false,
        };
        // From here on, dropping `node` on an error path undoes everything.
        node.build()?;
        info!(prefix, root = %root.display(), group, "simnode up");
        Ok(node)
    }

    fn build(&mut self) -> Result<(), SimError> {
        let prefix = self.state.prefix.clone();
        let root = self.state.layout.sysfs_root.clone();
        if self.state.created_root {
            fs::create_dir_all(&root).map_err(|source| SimError::SysfsRoot {
                root: root.clone(),
                source: TreeError::io("create directory", &root)(source),
            })?;
        }
        match mount::mount_tmpfs(&root, &prefix) {
            Ok(()) => self.state.mounted = true,
            // Without the privilege to mount, the tree goes on the root's own file system.
            Err(e) => warn!(error = %error_chain(&e), "tree stays on the underlying file system"),
        }
        self.state
            .write(&self.state_dir)
            .map_err(SimError::state(&prefix))?;
        links::create(&mut self.state.layout, self.state.group)
            .map_err(SimError::links("create", &prefix))?;
        tree::write_tree(&self.state.layout).map_err(SimError::tree("write sysfs tree", &prefix))?;
        self.state
            .write(&self.state_dir)
            .map_err(SimError::state(&prefix))
    }

    /// The layout: PFs, VFs, names, addresses.
    pub fn layout(&self) -> &Layout {
        &self.state.layout
    }

    /// The instance prefix.
    pub fn prefix(&self) -> &str {
        &self.state.prefix
    }

    /// Root of the simulated sysfs tree (what `SRIOV_SYSFS_ROOT` should be).
    pub fn sysfs_root(&self) -> &Path {
        &self.state.layout.sysfs_root
    }

    /// The link group holding every link of the node.
    pub fn link_group(&self) -> u32 {
        self.state.group
    }

    /// PF `pf` (panics if out of range: for tests).
    pub fn pf(&self, pf: u32) -> &PfLayout {
        &self.state.layout.pfs[pf as usize]
    }

    /// VF `vf` of PF `pf` (panics if out of range: for tests).
    pub fn vf(&self, pf: u32, vf: u32) -> &VfLayout {
        &self.pf(pf).vfs[vf as usize]
    }

    /// Shows netdev `from` as `to` in the sysfs tree, as the kernel's sysfs does after a rename
    /// (the tree is written once; links renamed later keep their old names there until told).
    pub fn mirror_rename(&self, from: &str, to: &str) -> Result<(), SimError> {
        let step = "mirror a netdev rename into the sysfs tree";
        tree::rename_netdev(self.sysfs_root(), from, to).map_err(SimError::tree(step, self.prefix()))
    }

    /// Shows the uplinks of PFs `pfs` enslaved to bond `bond` in the sysfs
    /// tree (`bonding/mode` reads `mode`, e.g. `802.3ad 4`). The kernel here
    /// has no bonding driver: the caller makes the netlink side (a Linux
    /// bridge named `bond` as the uplinks' master gives them `IFLA_MASTER`).
    pub fn mirror_bond(&self, bond: &str, mode: &str, ifindex: u32, pfs: &[u32]) -> Result<(), SimError> {
        let slaves: Vec<&str> = pfs.iter().map(|pf| self.pf(*pf).uplink.name.as_str()).collect();
        let step = "write a bond into the sysfs tree";
        tree::write_bond(self.sysfs_root(), bond, mode, ifindex, &slaves)
            .map_err(SimError::tree(step, self.prefix()))
    }

    /// Tears the node down: deletes its links, its tree and its state.
    pub fn down(mut self) -> Result<(), SimError> {
        self.torn_down = true;
        teardown(&self.state, &self.state_dir)
    }
}

impl Drop for SimNode {
    fn drop(&mut self) {
        if !self.torn_down {
            if let Err(e) = teardown(&self.state, &self.state_dir) {
                warn!(prefix = %self.state.prefix, error = %error_chain(&e), "simnode teardown failed");
            }
        }
    }
}

fn teardown(state: &State, state_dir: &Path) -> Result<(), SimError> {
    let prefix = &state.prefix;
    let netns = state.layout.netns.as_deref();
    links::delete_group(netns, state.group).map_err(SimError::links("delete", prefix))?;
    let stray = links::delete_by_name(netns, prefix).map_err(SimError::links("delete", prefix))?;
    if stray > 0 {
        debug!(prefix, stray, "deleted stray links by name");
    }
    let root = &state.layout.sysfs_root;
    if state.mounted {
        unmount_if_mounted(root, prefix)?;
    }
    tree::remove_tree(root, state.created_root).map_err(SimError::tree("remove sysfs tree", prefix))?;
    state::release(state_dir, prefix).map_err(SimError::state(prefix))?;
    info!(prefix, "simnode down");
    Ok(())
}

/// Unmounts the tmpfs of instance `prefix` at `root`, if it is there.
fn unmount_if_mounted(root: &Path, prefix: &str) -> Result<(), SimError> {
    if !mount::is_mounted(root, prefix) {
        return Ok(());
    }
    mount::unmount(root).map_err(|source| SimError::Unmount {
        prefix: prefix.to_string(),
        source,
    })
}

/// Reads the state of a running instance from `state_dir`.
pub fn instance_state_in(state_dir: &Path, prefix: &str) -> Result<State, SimError> {
    validate_prefix(prefix).map_err(SimError::InvalidSpec)?;
    State::read(state_dir, prefix)
        .map_err(SimError::state(prefix))?
        .ok_or_else(|| SimError::NoInstance {
            prefix: prefix.to_string(),
            dir: state::instance_dir(state_dir, prefix),
        })
}

/// Removes everything of instance `prefix` (default state directory), also after the process
/// that made it crashed. See [`down_prefix_in`].
pub fn down_prefix(prefix: &str, sysfs_root: Option<&Path>) -> Result<(), SimError> {
    down_prefix_in(Path::new(DEFAULT_STATE_DIR), prefix, sysfs_root)
}

/// Removes everything of instance `prefix` whose state lives in `state_dir`.
///
/// With a state file, its link group, netns and tree are removed. Without one (state lost),
/// links named like the instance's are deleted from the current netns, and the tree at
/// `sysfs_root` is removed if its marker names this prefix. Idempotent: nothing left is fine.
pub fn down_prefix_in(state_dir: &Path, prefix: &str, sysfs_root: Option<&Path>) -> Result<(), SimError> {
    validate_prefix(prefix).map_err(SimError::InvalidSpec)?;
    let found = State::read(state_dir, prefix).map_err(SimError::state(prefix))?;
    if let Some(state) = found {
        return teardown(&state, state_dir);
    }
    let deleted = links::delete_by_name(None, prefix).map_err(SimError::links("delete", prefix))?;
    debug!(prefix, deleted, "no state file: deleted links by name");
    if let Some(root) = sysfs_root {
        unmount_if_mounted(root, prefix)?;
        match tree::marker_prefix(root) {
            Some(owner) if owner.trim() == prefix => {
                tree::remove_tree(root, false).map_err(SimError::tree("remove sysfs tree", prefix))?;
            }
            Some(owner) => {
                warn!(prefix, owner = owner.trim(), root = %root.display(), "tree belongs to another instance; left alone");
            }
            None => {}
        }
    }
    state::release(state_dir, prefix).map_err(SimError::state(prefix))
}
