//! Which hash slots a database serves: the claim of the Raft group it belongs to.
//!
//! A group's state machine is the authority for its slots (see `DESIGN.md`, "Groups and
//! slots"): a write for a key whose slot the group does not claim is refused when it is
//! applied, identically on every replica, whatever the node that routed it believed. A
//! database with no claim (the in-memory engine, or a group's log before its claim
//! entry) serves every slot, so a log written before groups claimed slots replays as it
//! did.
//!
//! A claim changes only by a [`crate::Proposal::Claim`] entry with a higher epoch; the same
//! claim proposed twice (by two leaders of one term change, say) applies once.

use bytes::Bytes;
use resp::Frame;
use types::Slot;

use crate::command;

/// The slots a group serves, and the epoch of that ownership.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    pub epoch: u64,
    /// Inclusive ranges, ascending, not overlapping.
    pub ranges: Vec<(Slot, Slot)>,
}

impl Claim {
    /// True if `slot` is in one of the ranges.
    pub fn covers(&self, slot: Slot) -> bool {
        self.ranges.iter().any(|&(a, b)| a <= slot && slot <= b)
    }

    /// True if the ranges are ascending, within the slot space, and do not overlap.
    pub fn is_well_formed(&self) -> bool {
        let mut next = 0u32;
        self.ranges.iter().all(|&(a, b)| {
            let ok = u32::from(a.0) >= next && a <= b && b.0 < Slot::COUNT;
            next = u32::from(b.0) + 1;
            ok
        })
    }
}

/// The text of the reply to a write whose slot the group does not serve (not claimed,
/// or frozen by a move in progress). A client (or the node that routed the write) may try
/// again: the write was not applied.
pub fn not_served(db: &crate::Db, slot: Slot) -> Frame {
    if let Some(job) = db.moves().frozen_by(slot) {
        return Frame::error(format!("TRYAGAIN slot {} is moving (job {job})", slot.0));
    }
    Frame::error(format!(
        "TRYAGAIN slot {} is not served by this group",
        slot.0
    ))
}

/// The reply to a write routed with another epoch than the group's claim: ownership
/// changed between routing and applying, so the route may be wrong; nothing was applied.
/// [`is_refusal`] recognises it, as it does [`not_served`]'s.
pub fn stale_route(route: &crate::proposal::Route, held: u64) -> Frame {
    let slot = route.slot.map_or(0, |s| s.0);
    Frame::error(format!(
        "TRYAGAIN slot {slot} was routed with epoch {}, and this group's is {held}",
        route.epoch
    ))
}

/// True if `reply` is a refusal by the group's claim ([`not_served`], [`stale_route`]):
/// the write was not applied, and the router's view of the slots may be out of date.
pub fn is_refusal(reply: &Frame) -> bool {
    matches!(reply, Frame::Error(e) if e.starts_with("TRYAGAIN "))
}

/// The first slot of `args`' keys that `claim` does not cover (`None` when every key is
/// served, or when the command is unknown or malformed: it fails by itself).
pub(crate) fn unserved(serves: impl Fn(Slot) -> bool, args: &[Bytes]) -> Option<Slot> {
    let spec = command::lookup(args.first()?)?;
    if !spec.arity_ok(args.len()) {
        return None;
    }
    spec.key_positions(args)
        .into_iter()
        .map(|i| types::key_slot(&args[i]))
        .find(|&slot| !serves(slot))
}

/// The first slot of a read's keys (`args`) that `db` does not serve now (see
/// [`crate::Db::serves_now`]): a read must not see a slot another group may own, nor one
/// frozen by a move (the target may own it already).
pub fn unserved_read(db: &crate::Db, args: &[Bytes]) -> Option<Slot> {
    db.claim.as_ref()?;
    unserved(|s| db.serves_now(s), args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(ranges: &[(u16, u16)]) -> Claim {
        Claim {
            epoch: 1,
            ranges: ranges.iter().map(|&(a, b)| (Slot(a), Slot(b))).collect(),
        }
    }

    #[test]
    fn ranges_must_ascend_without_overlap() {
        assert!(claim(&[(0, 10), (11, 16383)]).is_well_formed());
        assert!(claim(&[]).is_well_formed());
        assert!(!claim(&[(0, 10), (10, 20)]).is_well_formed());
        assert!(!claim(&[(5, 4)]).is_well_formed());
        assert!(!claim(&[(0, 16384)]).is_well_formed());
    }

    #[test]
    fn a_command_is_served_when_all_its_keys_are() {
        let a = types::key_slot(b"a"); // 15495
        let c = claim(&[(a.0, a.0)]);
        let args =
            |v: &[&str]| -> Vec<Bytes> { v.iter().map(|s| Bytes::from(s.to_string())).collect() };
        let serves = |s| c.covers(s);
        assert_eq!(unserved(serves, &args(&["SET", "a", "1"])), None);
        assert_eq!(
            unserved(serves, &args(&["SET", "b", "1"])),
            Some(types::key_slot(b"b"))
        );
        assert_eq!(
            unserved(serves, &args(&["MSET", "a", "1", "b", "2"])),
            Some(types::key_slot(b"b"))
        );
        // Keyless and malformed commands are not refused here.
        assert_eq!(unserved(serves, &args(&["FLUSHALL"])), None);
        assert_eq!(unserved(serves, &args(&["SET", "b"])), None);
    }
}
