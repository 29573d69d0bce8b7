//! The undo stack of attach: every step that changed the host pushes its undo; a failure unwinds all.

use super::record::AttachmentRecord;
use super::release::Steps;
use super::state::StateDir;
use crate::sys::Net;
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

impl Rollback {
    /// Records that `undo` must run if a later step fails.
    pub fn push(&mut self, undo: Undo) {
        self.steps.push(undo);
    }

    /// The pending undo actions, most recent first.
    pub fn pending(&self) -> impl Iterator<Item = &Undo> {
        self.steps.iter().rev()
    }

    /// Runs every undo action of the attachment `rec`, most recent first, with `steps` (whose
    /// pod namespace is the one the VF went into); failures are logged and do not stop the unwinding.
    pub async fn unwind<O: Ovs, N: Net>(
        self,
        steps: &Steps<'_, O, N>,
        state: &StateDir,
        rec: &AttachmentRecord,
    ) {
        for step in self.steps.into_iter().rev() {
            let r = match step {
                Undo::DelPort => steps.remove_port(rec).await.map(drop),
                Undo::RestoreRepresentor => steps.restore_representor(rec).await,
                Undo::IpamDel => steps.ipam_del(rec),
                Undo::RestoreVf => steps.restore_vf(steps.host, rec).await,
                Undo::StateFiles => {
                    let a = state.remove(&rec.container_id, &rec.ifname);
                    let b = state.clear_owner(&rec.pci);
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
        let mut rb = Rollback::default();
        rb.push(Undo::StateFiles);
        rb.push(Undo::RestoreVf);
        rb.push(Undo::DelPort);
        assert_eq!(
            rb.pending().copied().collect::<Vec<_>>(),
            vec![Undo::DelPort, Undo::RestoreVf, Undo::StateFiles]
        );
    }
}
