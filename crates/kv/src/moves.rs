//! A data group's part in moving slots to another group (see `DESIGN.md`, "Moving a
//! slot"): every step is a [`Step`] in the log of the group it changes, applied alike on
//! every replica, idempotent by job id.
//!
//! On the source group S: [`Step::Freeze`] stops every change to the job's slots (writes
//! and reads are refused with `TRYAGAIN`, active expiry skips them, a flush waits) and
//! records their key count and digest; [`Step::Release`] gives them away (deletes their
//! keys, drops them from the claim, remembers where they went); [`Step::Unfreeze`] ends a
//! cancelled job. On the target group T: [`Step::Prepare`] opens an import, whose staged
//! keys ([`Step::Stage`]) are invisible to every command; [`Step::Commit`] is the one point
//! where ownership changes: it checks the staged keys' count and digest against what S
//! froze, then makes them live and adds the slots to T's claim with a new epoch.
//! [`Step::Abort`] drops an import. A job that committed here can never abort, and one
//! that aborted can never commit.

use std::collections::BTreeMap;

use resp::Frame;
use sha1_smol::Sha1;
use types::{GroupId, Slot};

use crate::bytes::CompactBytes;
use crate::claim::Claim;
use crate::db::{Db, Entry};
use crate::value::{BuildHasher, Map};

/// A move job's id (given by the meta group's journal).
pub type JobId = u64;

/// One step of a move, as a data group's log entry (tag 8 of [`crate::Proposal`]).
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// On the target: start importing `ranges` from group `from`.
    Prepare {
        job: JobId,
        from: GroupId,
        ranges: Vec<(Slot, Slot)>,
    },
    /// On the source: freeze `ranges` for a move to `to`. Replies `[count, digest]`.
    Freeze {
        job: JobId,
        to: GroupId,
        ranges: Vec<(Slot, Slot)>,
    },
    /// On the target: keys of the job's slots, staged (encoded by [`encode_entries`]).
    Stage { job: JobId, entries: Vec<u8> },
    /// On the target: the commit point, if the staged keys match what the source froze.
    Commit {
        job: JobId,
        count: u64,
        digest: [u8; 20],
    },
    /// On the target: drop the import (refused once committed).
    Abort { job: JobId },
    /// On the source, only after the target committed: delete and give the slots away.
    Release { job: JobId },
    /// On the source, only after the target aborted: the slots serve again.
    Unfreeze { job: JobId },
}

/// What a data group holds about moves.
#[derive(Clone, Debug, Default)]
pub struct Moves {
    /// Slots frozen here, by job.
    pub frozen: BTreeMap<JobId, Frozen>,
    /// Imports in progress here, by job.
    pub importing: BTreeMap<JobId, Import>,
    /// How each job that passed through here ended here.
    pub ended: BTreeMap<JobId, Ended>,
    /// Slots this group gave away, by first slot: (last slot, the group they went to).
    pub gone: BTreeMap<Slot, (Slot, GroupId)>,
}

/// Slots frozen for a job.
#[derive(Clone, Debug, PartialEq)]
pub struct Frozen {
    pub to: GroupId,
    pub ranges: Vec<(Slot, Slot)>,
    /// Keys in the slots when frozen (expired ones not yet removed included).
    pub count: u64,
    pub digest: [u8; 20],
}

/// An import in progress.
#[derive(Clone, Debug)]
pub struct Import {
    pub from: GroupId,
    pub ranges: Vec<(Slot, Slot)>,
    /// Keys staged so far: invisible until the commit.
    pub staged: Map<CompactBytes, Entry>,
}

/// How a job ended in this group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// Target: the slots are owned here.
    Committed,
    /// Target: the import was dropped.
    Aborted,
    /// Source: the slots were given away.
    Released,
    /// Source: the slots serve again.
    Unfrozen,
}

impl Ended {
    fn code(self) -> u8 {
        match self {
            Ended::Committed => 0,
            Ended::Aborted => 1,
            Ended::Released => 2,
            Ended::Unfrozen => 3,
        }
    }

    fn from_code(code: u8) -> Option<Ended> {
        Some(match code {
            0 => Ended::Committed,
            1 => Ended::Aborted,
            2 => Ended::Released,
            3 => Ended::Unfrozen,
            _ => return None,
        })
    }
}

/// Two states are equal when they encode alike (staged values have no `==` of their own).
impl PartialEq for Moves {
    fn eq(&self, other: &Moves) -> bool {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        encode_moves(&mut a, self);
        encode_moves(&mut b, other);
        a == b
    }
}

impl Moves {
    /// True if nothing is recorded (a group that never took part in a move).
    pub fn is_empty(&self) -> bool {
        self.frozen.is_empty()
            && self.importing.is_empty()
            && self.ended.is_empty()
            && self.gone.is_empty()
    }

    /// The job that froze `slot` here, if one did.
    pub fn frozen_by(&self, slot: Slot) -> Option<JobId> {
        self.frozen
            .iter()
            .find(|(_, f)| covers(&f.ranges, slot))
            .map(|(&job, _)| job)
    }

    /// The group `slot` went to, if this group gave it away.
    pub fn gone_to(&self, slot: Slot) -> Option<GroupId> {
        let (_, &(last, to)) = self.gone.range(..=slot).next_back()?;
        (slot <= last).then_some(to)
    }
}

pub use meta::jobs::{covers, overlaps};

/// The slots of `ranges` as a bitmap over the slot space.
fn bits(ranges: &[(Slot, Slot)]) -> Vec<bool> {
    let mut bits = vec![false; Slot::COUNT as usize];
    for &(a, b) in ranges {
        for s in a.0..=b.0.min(Slot::COUNT - 1) {
            bits[s as usize] = true;
        }
    }
    bits
}

/// The ascending, non-overlapping ranges of a bitmap.
fn ranges_of(bits: &[bool]) -> Vec<(Slot, Slot)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, &b) in bits.iter().enumerate() {
        match (b, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((Slot(s as u16), Slot(i as u16 - 1)));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((Slot(s as u16), Slot(Slot::COUNT - 1)));
    }
    out
}

/// `a` and `b` joined.
pub fn union(a: &[(Slot, Slot)], b: &[(Slot, Slot)]) -> Vec<(Slot, Slot)> {
    let mut bits = bits(a);
    for (x, y) in bits.iter_mut().zip(self::bits(b)) {
        *x |= y;
    }
    ranges_of(&bits)
}

/// `a` without `b`.
pub fn minus(a: &[(Slot, Slot)], b: &[(Slot, Slot)]) -> Vec<(Slot, Slot)> {
    let mut bits = bits(a);
    for (x, y) in bits.iter_mut().zip(self::bits(b)) {
        *x &= !y;
    }
    ranges_of(&bits)
}

/// True if every slot of `inner` is in `outer`.
pub fn contains_all(outer: &[(Slot, Slot)], inner: &[(Slot, Slot)]) -> bool {
    minus(inner, outer).is_empty()
}

/// Ranges as `a-b a-b ...` (`a` alone for one slot), for messages.
pub fn show_ranges(ranges: &[(Slot, Slot)]) -> String {
    let parts: Vec<String> = ranges
        .iter()
        .map(|&(a, b)| {
            if a == b {
                a.0.to_string()
            } else {
                format!("{}-{}", a.0, b.0)
            }
        })
        .collect();
    parts.join(" ")
}

/// The SHA-1 of one key's name, raw expiry and value (as the snapshot encodes them), to
/// be XORed with the others': a digest of a set of keys that does not depend on order.
fn entry_digest(key: &[u8], entry: &Entry) -> [u8; 20] {
    let mut h = Sha1::new();
    h.update(&(key.len() as u64).to_le_bytes());
    h.update(key);
    let mut value = Vec::new();
    crate::snapshot::encode_entry(&mut value, key, entry);
    h.update(&value);
    h.digest().bytes()
}

fn xor(acc: &mut [u8; 20], d: [u8; 20]) {
    for (a, b) in acc.iter_mut().zip(d) {
        *a ^= b;
    }
}

/// The key count and digest of `entries`, as [`Db::slots_digest`] and a commit compute
/// them.
pub fn entries_digest(entries: &[(CompactBytes, Entry)]) -> (u64, [u8; 20]) {
    let mut acc = [0u8; 20];
    for (key, entry) in entries {
        xor(&mut acc, entry_digest(key, entry));
    }
    (entries.len() as u64, acc)
}

/// The digest as 40 hex characters.
pub fn hex(digest: &[u8; 20]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A digest from [`hex`]'s form.
pub fn from_hex(text: &[u8]) -> Option<[u8; 20]> {
    if text.len() != 40 {
        return None;
    }
    let mut out = [0u8; 20];
    for (i, pair) in text.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

/// Encodes keys for a [`Step::Stage`]: `u32 n`, then each key with its raw expiry and
/// value as a snapshot writes them.
pub fn encode_entries<'a>(entries: impl IntoIterator<Item = (&'a [u8], &'a Entry)>) -> Vec<u8> {
    let mut body = Vec::new();
    let mut n = 0u32;
    for (key, entry) in entries {
        crate::snapshot::encode_entry(&mut body, key, entry);
        n += 1;
    }
    let mut out = n.to_le_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

/// `entries` encoded as [`Step::Stage`] chunks of at most `max_keys` keys and about
/// `max_bytes` (a single larger key goes alone).
pub fn encode_chunks(
    entries: &[(CompactBytes, Entry)],
    max_keys: usize,
    max_bytes: usize,
) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut body = Vec::new();
    let mut n = 0u32;
    for (key, entry) in entries {
        crate::snapshot::encode_entry(&mut body, key, entry);
        n += 1;
        if n as usize >= max_keys || body.len() >= max_bytes {
            let mut chunk = n.to_le_bytes().to_vec();
            chunk.append(&mut body);
            out.push(chunk);
            n = 0;
        }
    }
    if n > 0 {
        let mut chunk = n.to_le_bytes().to_vec();
        chunk.append(&mut body);
        out.push(chunk);
    }
    out
}

/// The keys of [`encode_entries`]' bytes; an error for anything else.
pub fn decode_entries(bytes: &[u8]) -> Result<Vec<(CompactBytes, Entry)>, String> {
    crate::snapshot::decode_entries(bytes).map_err(|e| e.to_string())
}

impl Db {
    /// What this group holds about moves.
    pub fn moves(&self) -> &Moves {
        &self.moves
    }

    /// True if a write or read of `slot` is served here now: the claim covers it (or
    /// there is none) and no move froze it.
    pub fn serves_now(&self, slot: Slot) -> bool {
        self.claim.as_ref().is_none_or(|c| c.covers(slot)) && self.moves.frozen_by(slot).is_none()
    }

    /// Every key of `slot` with its entry (expired ones included), cloned: values are
    /// shared, not copied.
    pub fn slot_entries(&self, slot: Slot) -> Vec<(CompactBytes, Entry)> {
        self.raw_keys_in_slot(slot)
            .into_iter()
            .filter_map(|k| self.keys.get(&**k).map(|e| (k.clone(), e.clone())))
            .collect()
    }

    /// The key count and digest of `ranges`' keys here, expired ones included.
    pub fn slots_digest(&self, ranges: &[(Slot, Slot)]) -> (u64, [u8; 20]) {
        let mut acc = [0u8; 20];
        let mut n = 0;
        for &(a, b) in ranges {
            for s in a.0..=b.0 {
                for key in self.raw_keys_in_slot(Slot(s)) {
                    if let Some(entry) = self.keys.get(&**key) {
                        xor(&mut acc, entry_digest(key, entry));
                        n += 1;
                    }
                }
            }
        }
        (n, acc)
    }

    /// Applies a move step (see the module header): deterministic, idempotent by job.
    pub(crate) fn apply_step(&mut self, step: &Step) -> Frame {
        let Some(claim) = self.claim.clone() else {
            return Frame::error("ERR only a data group that claims slots takes part in moves");
        };
        match step {
            Step::Prepare { job, from, ranges } => {
                match self.moves.ended.get(job) {
                    Some(Ended::Committed) => return Frame::OK,
                    Some(e) => return job_ended(*job, *e),
                    None => {}
                }
                if self.moves.importing.contains_key(job) {
                    return Frame::OK;
                }
                if overlaps(&claim.ranges, ranges) {
                    return Frame::error(format!(
                        "ERR move job {job}: this group already owns some of slots {}",
                        show_ranges(ranges)
                    ));
                }
                if let Some((other, _)) = self
                    .moves
                    .importing
                    .iter()
                    .find(|(_, i)| overlaps(&i.ranges, ranges))
                {
                    return Frame::error(format!(
                        "ERR move job {job}: job {other} is importing some of its slots"
                    ));
                }
                self.moves.importing.insert(
                    *job,
                    Import {
                        from: *from,
                        ranges: ranges.clone(),
                        staged: Map::with_hasher(BuildHasher::new()),
                    },
                );
                Frame::OK
            }
            Step::Freeze { job, to, ranges } => {
                if let Some(f) = self.moves.frozen.get(job) {
                    return frozen_reply(f);
                }
                if let Some(&e) = self.moves.ended.get(job) {
                    return job_ended(*job, e);
                }
                if !contains_all(&claim.ranges, ranges) {
                    return Frame::error(format!(
                        "ERR move job {job}: this group does not own all of slots {}",
                        show_ranges(ranges)
                    ));
                }
                if let Some((other, _)) = self
                    .moves
                    .frozen
                    .iter()
                    .find(|(_, f)| overlaps(&f.ranges, ranges))
                {
                    return Frame::error(format!(
                        "ERR move job {job}: job {other} froze some of its slots"
                    ));
                }
                let (count, digest) = self.slots_digest(ranges);
                let frozen = Frozen {
                    to: *to,
                    ranges: ranges.clone(),
                    count,
                    digest,
                };
                let reply = frozen_reply(&frozen);
                self.moves.frozen.insert(*job, frozen);
                reply
            }
            Step::Stage { job, entries } => {
                if self.moves.ended.get(job) == Some(&Ended::Committed) {
                    return Frame::OK;
                }
                let Some(import) = self.moves.importing.get_mut(job) else {
                    return no_job(*job, "importing", self.moves.ended.get(job));
                };
                let entries = match decode_entries(entries) {
                    Ok(entries) => entries,
                    Err(e) => return Frame::error(format!("ERR move job {job}: bad keys: {e}")),
                };
                if let Some((key, _)) = entries
                    .iter()
                    .find(|(k, _)| !covers(&import.ranges, types::key_slot(k)))
                {
                    return Frame::error(format!(
                        "ERR move job {job}: key {:?} is not in the job's slots",
                        String::from_utf8_lossy(key)
                    ));
                }
                let n = entries.len();
                for (key, entry) in entries {
                    import.staged.insert(key, entry);
                }
                Frame::Integer(n as i64)
            }
            Step::Commit { job, count, digest } => {
                match self.moves.ended.get(job) {
                    Some(Ended::Committed) => return Frame::OK,
                    Some(&e) => return job_ended(*job, e),
                    None => {}
                }
                let Some(import) = self.moves.importing.get(job) else {
                    return no_job(*job, "importing", None);
                };
                let mut staged = [0u8; 20];
                for (key, entry) in &import.staged {
                    xor(&mut staged, entry_digest(key, entry));
                }
                let n = import.staged.len() as u64;
                if n != *count || staged != *digest {
                    return Frame::error(format!(
                        "ERR move job {job}: {n} keys staged with digest {}, the source froze \
                         {count} with digest {}: not committed",
                        hex(&staged),
                        hex(digest)
                    ));
                }
                let import = self.moves.importing.remove(job).expect("checked above");
                for (key, entry) in import.staged {
                    self.put_moved(&key, entry);
                }
                let ranges = union(&claim.ranges, &import.ranges);
                self.claim = Some(Claim {
                    epoch: claim.epoch + 1,
                    ranges,
                });
                self.moves.gone = gone_without(&self.moves.gone, &import.ranges);
                self.moves.ended.insert(*job, Ended::Committed);
                Frame::OK
            }
            Step::Abort { job } => {
                match self.moves.ended.get(job) {
                    Some(Ended::Aborted) => return Frame::OK,
                    Some(&e) => return job_ended(*job, e),
                    None => {}
                }
                self.moves.importing.remove(job);
                self.moves.ended.insert(*job, Ended::Aborted);
                Frame::OK
            }
            Step::Release { job } => {
                match self.moves.ended.get(job) {
                    Some(Ended::Released) => return Frame::OK,
                    Some(&e) => return job_ended(*job, e),
                    None => {}
                }
                let Some(frozen) = self.moves.frozen.remove(job) else {
                    return no_job(*job, "frozen", None);
                };
                for &(a, b) in &frozen.ranges {
                    for s in a.0..=b.0 {
                        let keys: Vec<CompactBytes> = self
                            .raw_keys_in_slot(Slot(s))
                            .into_iter()
                            .cloned()
                            .collect();
                        for key in keys {
                            self.remove_moved(&key);
                        }
                    }
                }
                self.claim = Some(Claim {
                    epoch: claim.epoch + 1,
                    ranges: minus(&claim.ranges, &frozen.ranges),
                });
                let mut gone = gone_without(&self.moves.gone, &frozen.ranges);
                for &(a, b) in &frozen.ranges {
                    gone.insert(a, (b, frozen.to));
                }
                self.moves.gone = gone;
                self.moves.ended.insert(*job, Ended::Released);
                Frame::OK
            }
            Step::Unfreeze { job } => {
                match self.moves.ended.get(job) {
                    Some(Ended::Unfrozen) => return Frame::OK,
                    Some(&e) => return job_ended(*job, e),
                    None => {}
                }
                self.moves.frozen.remove(job);
                self.moves.ended.insert(*job, Ended::Unfrozen);
                Frame::OK
            }
        }
    }
}

/// `gone` without any slot of `ranges` (those slots came back, or go elsewhere now).
fn gone_without(
    gone: &BTreeMap<Slot, (Slot, GroupId)>,
    ranges: &[(Slot, Slot)],
) -> BTreeMap<Slot, (Slot, GroupId)> {
    let mut out = BTreeMap::new();
    for (&a, &(b, to)) in gone {
        for (x, y) in minus(&[(a, b)], ranges) {
            out.insert(x, (y, to));
        }
    }
    out
}

/// The reply to a freeze: the key count and digest recorded.
fn frozen_reply(f: &Frozen) -> Frame {
    Frame::Array(vec![
        Frame::Integer(f.count as i64),
        Frame::Bulk(hex(&f.digest).into()),
    ])
}

fn job_ended(job: JobId, ended: Ended) -> Frame {
    let how = match ended {
        Ended::Committed => "committed",
        Ended::Aborted => "aborted",
        Ended::Released => "released",
        Ended::Unfrozen => "unfrozen",
    };
    Frame::error(format!("ERR move job {job} was {how} in this group"))
}

fn no_job(job: JobId, what: &str, ended: Option<&Ended>) -> Frame {
    match ended {
        Some(&e) => job_ended(job, e),
        None => Frame::error(format!("ERR move job {job} is not {what} in this group")),
    }
}

impl Step {
    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        let put_ranges = |out: &mut Vec<u8>, ranges: &[(Slot, Slot)]| {
            out.extend_from_slice(&(ranges.len() as u32).to_le_bytes());
            for (a, b) in ranges {
                out.extend_from_slice(&a.0.to_le_bytes());
                out.extend_from_slice(&b.0.to_le_bytes());
            }
        };
        match self {
            Step::Prepare { job, from, ranges } => {
                out.push(1);
                out.extend_from_slice(&job.to_le_bytes());
                out.extend_from_slice(&from.0.to_le_bytes());
                put_ranges(out, ranges);
            }
            Step::Freeze { job, to, ranges } => {
                out.push(2);
                out.extend_from_slice(&job.to_le_bytes());
                out.extend_from_slice(&to.0.to_le_bytes());
                put_ranges(out, ranges);
            }
            Step::Stage { job, entries } => {
                out.push(3);
                out.extend_from_slice(&job.to_le_bytes());
                out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
                out.extend_from_slice(entries);
            }
            Step::Commit { job, count, digest } => {
                out.push(4);
                out.extend_from_slice(&job.to_le_bytes());
                out.extend_from_slice(&count.to_le_bytes());
                out.extend_from_slice(digest);
            }
            Step::Abort { job } => {
                out.push(5);
                out.extend_from_slice(&job.to_le_bytes());
            }
            Step::Release { job } => {
                out.push(6);
                out.extend_from_slice(&job.to_le_bytes());
            }
            Step::Unfreeze { job } => {
                out.push(7);
                out.extend_from_slice(&job.to_le_bytes());
            }
        }
    }

    pub(crate) fn decode_from(r: &mut crate::proposal::Reader<'_>) -> crate::error::Result<Step> {
        let ranges =
            |r: &mut crate::proposal::Reader<'_>| -> crate::error::Result<Vec<(Slot, Slot)>> {
                let n = r.count()?;
                let mut out = Vec::with_capacity(n);
                for _ in 0..n {
                    out.push((Slot(r.u16()?), Slot(r.u16()?)));
                }
                let claim = Claim {
                    epoch: 0,
                    ranges: out,
                };
                if claim.ranges.is_empty() || !claim.is_well_formed() {
                    return Err(crate::Error::err(
                        "a move's slot ranges are not well formed",
                    ));
                }
                Ok(claim.ranges)
            };
        let step = match r.u8()? {
            1 => Step::Prepare {
                job: r.u64()?,
                from: GroupId(r.u64()?),
                ranges: ranges(r)?,
            },
            2 => Step::Freeze {
                job: r.u64()?,
                to: GroupId(r.u64()?),
                ranges: ranges(r)?,
            },
            3 => {
                let job = r.u64()?;
                let n = r.u32()?;
                Step::Stage {
                    job,
                    entries: r.take(n)?.to_vec(),
                }
            }
            4 => {
                let job = r.u64()?;
                let count = r.u64()?;
                let mut digest = [0u8; 20];
                digest.copy_from_slice(r.take(20)?);
                Step::Commit { job, count, digest }
            }
            5 => Step::Abort { job: r.u64()? },
            6 => Step::Release { job: r.u64()? },
            7 => Step::Unfreeze { job: r.u64()? },
            tag => return Err(crate::Error::err(format!("bad move step {tag}"))),
        };
        Ok(step)
    }
}

/// Writes a group's move state for a snapshot: frozen jobs, imports with their staged
/// keys, ended jobs, slots gone.
pub(crate) fn encode_moves(out: &mut Vec<u8>, moves: &Moves) {
    let put_ranges = |out: &mut Vec<u8>, ranges: &[(Slot, Slot)]| {
        out.extend_from_slice(&(ranges.len() as u32).to_le_bytes());
        for (a, b) in ranges {
            out.extend_from_slice(&a.0.to_le_bytes());
            out.extend_from_slice(&b.0.to_le_bytes());
        }
    };
    out.extend_from_slice(&(moves.frozen.len() as u32).to_le_bytes());
    for (job, f) in &moves.frozen {
        out.extend_from_slice(&job.to_le_bytes());
        out.extend_from_slice(&f.to.0.to_le_bytes());
        put_ranges(out, &f.ranges);
        out.extend_from_slice(&f.count.to_le_bytes());
        out.extend_from_slice(&f.digest);
    }
    out.extend_from_slice(&(moves.importing.len() as u32).to_le_bytes());
    for (job, i) in &moves.importing {
        out.extend_from_slice(&job.to_le_bytes());
        out.extend_from_slice(&i.from.0.to_le_bytes());
        put_ranges(out, &i.ranges);
        let entries = encode_entries(i.staged.iter().map(|(k, e)| (&k[..], e)));
        out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        out.extend_from_slice(&entries);
    }
    out.extend_from_slice(&(moves.ended.len() as u32).to_le_bytes());
    for (job, e) in &moves.ended {
        out.extend_from_slice(&job.to_le_bytes());
        out.push(e.code());
    }
    out.extend_from_slice(&(moves.gone.len() as u32).to_le_bytes());
    for (a, (b, to)) in &moves.gone {
        out.extend_from_slice(&a.0.to_le_bytes());
        out.extend_from_slice(&b.0.to_le_bytes());
        out.extend_from_slice(&to.0.to_le_bytes());
    }
}

/// Reads what [`encode_moves`] wrote.
pub(crate) fn decode_moves(bytes: &[u8]) -> crate::error::Result<Moves> {
    let mut r = crate::proposal::Reader::new(bytes);
    let ranges = |r: &mut crate::proposal::Reader<'_>| -> crate::error::Result<Vec<(Slot, Slot)>> {
        let n = r.count()?;
        let ranges = (0..n)
            .map(|_| Ok((Slot(r.u16()?), Slot(r.u16()?))))
            .collect::<crate::error::Result<Vec<_>>>()?;
        let claim = Claim { epoch: 0, ranges };
        if !claim.is_well_formed() {
            return Err(crate::Error::err(
                "a move's slot ranges are not well formed",
            ));
        }
        Ok(claim.ranges)
    };
    let mut moves = Moves::default();
    for _ in 0..r.count()? {
        let job = r.u64()?;
        let to = GroupId(r.u64()?);
        let ranges = ranges(&mut r)?;
        let count = r.u64()?;
        let mut digest = [0u8; 20];
        digest.copy_from_slice(r.take(20)?);
        moves.frozen.insert(
            job,
            Frozen {
                to,
                ranges,
                count,
                digest,
            },
        );
    }
    for _ in 0..r.count()? {
        let job = r.u64()?;
        let from = GroupId(r.u64()?);
        let ranges = ranges(&mut r)?;
        let n = r.u32()?;
        let entries = decode_entries(r.take(n)?).map_err(crate::Error::err)?;
        let mut staged = Map::with_hasher(BuildHasher::new());
        staged.extend(entries);
        moves.importing.insert(
            job,
            Import {
                from,
                ranges,
                staged,
            },
        );
    }
    for _ in 0..r.count()? {
        let job = r.u64()?;
        let ended = Ended::from_code(r.u8()?)
            .ok_or_else(|| crate::Error::err("a move ended in an unknown way"))?;
        moves.ended.insert(job, ended);
    }
    for _ in 0..r.count()? {
        let a = Slot(r.u16()?);
        let b = Slot(r.u16()?);
        let to = GroupId(r.u64()?);
        if a > b || b.0 >= Slot::COUNT {
            return Err(crate::Error::err("slots gone are not well formed"));
        }
        moves.gone.insert(a, (b, to));
    }
    if !r.at_end() {
        return Err(crate::Error::err("trailing bytes after the moves"));
    }
    Ok(moves)
}

#[cfg(test)]
mod tests;
