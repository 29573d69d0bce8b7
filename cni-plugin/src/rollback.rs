//! The undo stack of ADD: every step that changed the host pushes its undo; a failure unwinds all.

use crate::netns::Netns;
use crate::release;
use crate::state::{AttachmentRecord, StateDir};
use crate::traits::Ovs;

/// One undo action, run in reverse order of the steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Undo {
    /// Remove the attachment record and the VF owner record.
    StateFiles,
    /// Bring the VF back to the host as it was.
    RestoreVf,
    /// IPAM DEL.
    IpamDel,
    /// Give the representor its name, MTU and state back.
    RestoreRepresentor,
    /// Delete the OVS port.
    DelPort,
}

/// The undo stack.
#[derive(Debug, Default)]
pub struct Rollback {
    steps: Vec<Undo>,
}

/// What the undo actions need.
pub struct UndoCtx<'a, O: Ovs> {
    /// OVSDB.
    pub ovs: &'a O,
    /// How long to wait for OVS to confirm the port removal.
    pub apply_timeout: std::time::Duration,
    /// Host namespace.
    pub host: &'a Netns,
    /// Pod namespace.
    pub pod: Option<&'a Netns>,
    /// State directory.
    pub state: &'a StateDir,
    /// The attachment being built.
    pub rec: &'a AttachmentRecord,
    /// Names sysfs shows for the VF.
    pub sysfs_names: &'a [String],
}

impl Rollback {
    /// An empty stack.
    pub fn new() -> Rollback {
        Rollback::default()
    }

    /// Records that `undo` must run if a later step fails.
    pub fn push(&mut self, undo: Undo) {
        self.steps.push(undo);
    }

    /// The pending undo actions, most recent first.
    pub fn pending(&self) -> impl Iterator<Item = &Undo> {
        self.steps.iter().rev()
    }

    /// Runs every undo action, most recent first; failures are logged and do not stop the unwinding.
    pub async fn unwind<O: Ovs>(self, ctx: &UndoCtx<'_, O>) {
        for step in self.steps.into_iter().rev() {
            let r = match step {
                Undo::DelPort => release::remove_port(ctx.ovs, ctx.rec, ctx.apply_timeout)
                    .await
                    .map(drop),
                Undo::RestoreRepresentor => release::restore_representor(ctx.host, ctx.rec).await,
                Undo::IpamDel => release::ipam_del(ctx.rec, &ctx.rec.netns),
                Undo::RestoreVf => release::restore_vf(ctx.host, ctx.pod, ctx.rec, ctx.sysfs_names).await,
                Undo::StateFiles => {
                    let a = ctx.state.remove(&ctx.rec.container_id, &ctx.rec.ifname);
                    let b = ctx.state.clear_owner(&ctx.rec.pci);
                    if let Err(e) = a.and(b) {
                        tracing::warn!(
                            error = &e as &dyn std::error::Error,
                            "rollback: cannot remove state files"
                        );
                    }
                    Ok(())
                }
            };
            match r {
                Ok(()) => tracing::debug!(?step, "rolled back"),
                Err(e) => tracing::warn!(
                    ?step,
                    error = &e as &dyn std::error::Error,
                    "rollback step failed"
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_is_most_recent_first() {
        let mut rb = Rollback::new();
        rb.push(Undo::StateFiles);
        rb.push(Undo::RestoreVf);
        rb.push(Undo::DelPort);
        assert_eq!(
            rb.pending().copied().collect::<Vec<_>>(),
            vec![Undo::DelPort, Undo::RestoreVf, Undo::StateFiles]
        );
    }
}
