//! The journal of slot moves (see `DESIGN.md`, "Moving a slot"): each job is planned in
//! the meta log, and every phase it passes is recorded there, so that whichever node
//! leads the meta group can resume a job where it stood after any crash. The data groups
//! hold the authority over their slots (`kv::moves`); this journal says what the mover
//! does next, and the map changes at [`crate::MetaCommand::FinishMove`], after the target
//! group committed and the source released.

use serde::{Deserialize, Serialize};
use types::{Epoch, GroupId, Slot};

/// A job's id: 1, 2, ... in the order jobs were planned.
pub type JobId = u64;

/// Finished jobs kept for `CLUSTER GETSLOTMIGRATIONS` (the oldest go first).
pub const FINISHED_KEPT: usize = 64;

/// Where a job stands. The order is the order of the steps; a job only moves forward.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Phase {
    /// In the journal; nothing done yet.
    Planned,
    /// The target group opened its import.
    Prepared,
    /// The source group froze the slots.
    Frozen,
    /// Every key was staged on the target.
    Copied,
    /// The target group owns the slots (the commit point).
    Committed,
    /// The source group deleted the slots' keys and gave them away.
    Released,
    /// The map names the target: finished.
    Done,
    /// Cancelled (or failed) before the commit: the target dropped its import, the source
    /// serves the slots again.
    Aborted,
}

impl Phase {
    /// The name `CLUSTER GETSLOTMIGRATIONS` shows.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Planned => "planned",
            Phase::Prepared => "prepared",
            Phase::Frozen => "frozen",
            Phase::Copied => "copied",
            Phase::Committed => "committed",
            Phase::Released => "released",
            Phase::Done => "done",
            Phase::Aborted => "aborted",
        }
    }

    /// True once the job has finished, either way.
    pub fn is_finished(self) -> bool {
        matches!(self, Phase::Done | Phase::Aborted)
    }
}

/// One slot move.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub id: JobId,
    /// Inclusive ranges, ascending, not overlapping; all owned by `from` when planned.
    pub ranges: Vec<(Slot, Slot)>,
    pub from: GroupId,
    pub to: GroupId,
    /// The highest epoch of the ranges' ownership when planned; the map gives the slots
    /// `epoch + 1` when the job is done.
    pub epoch: Epoch,
    pub phase: Phase,
    /// Keys the source froze (known from [`Phase::Frozen`]).
    pub keys: Option<u64>,
    /// A cancellation was asked for (honoured only before the commit).
    pub cancel: bool,
    /// Why the job was aborted, if it was.
    pub why: Option<String>,
}

/// True if `slot` is in one of `ranges`.
pub fn covers(ranges: &[(Slot, Slot)], slot: Slot) -> bool {
    ranges.iter().any(|&(a, b)| a <= slot && slot <= b)
}

/// True if the ranges ascend within the slot space, do not overlap, and are not empty.
pub fn well_formed(ranges: &[(Slot, Slot)]) -> bool {
    let mut next = 0u32;
    !ranges.is_empty()
        && ranges.iter().all(|&(a, b)| {
            let ok = u32::from(a.0) >= next && a <= b && b.0 < Slot::COUNT;
            next = u32::from(b.0) + 1;
            ok
        })
}

/// True if `a` and `b` share a slot.
pub fn overlaps(a: &[(Slot, Slot)], b: &[(Slot, Slot)]) -> bool {
    a.iter()
        .any(|&(x, y)| b.iter().any(|&(p, q)| x <= q && p <= y))
}
