//! [`Proposal`]: what a log entry carries, and its byte encoding.
//!
//! A write is proposed as its raw arguments plus the random seed it was parsed with;
//! the entry also carries the leader's `now_ms`. Applying re-parses the arguments with
//! `Ctx { now_ms, seed }` and applies the result. Parsing is a pure function of those, so
//! every replica derives the same command (the same absolute expiry for `EX 10`, the same
//! pick for `SPOP`) without each command type needing its own wire format.
//!
//! Encoding (all integers little-endian): a tag byte, then
//! - `1` Command: `u64 seed`, args;
//! - `2` Exec: `u32 n` watches (`key`, `u64 seq`, `u8 flags`), `u32 n` commands (`u64 seed`, args);
//! - `3` ExpireKeys: `u32 n` keys;
//! - `4` Claim: `u64 epoch`, `u32 n` ranges (`u16 first`, `u16 last`);
//! - `5` Meta: a byte string, a `meta::MetaCommand`'s encoding;
//! - `6` Routed: `u16 slot` (`0xffff` for a keyless write), `u64 epoch`, then a Command or
//!   an Exec (tag and body) routed with them;
//! - `7` Acl: a byte string, a `meta::acl::Change`'s encoding;
//! - `8` Move: a step of a slot move (`moves::Step`: a tag, the job id, then its fields);
//!
//! where args are `u32 n` then `n` byte strings, and a byte string is `u32 len` + bytes.
//! [`Proposal::decode`] refuses truncated or trailing bytes and absurd counts with an
//! error, never a panic.

use bytes::Bytes;
use resp::Frame;

use types::{Epoch, Slot};

use crate::bytes::CompactBytes;
use crate::claim::{self, Claim};
use crate::command::{self, Cmd, Ctx, Write};
use crate::db::{Db, Watch};
use crate::error::{Error, Result};

/// One replicated write.
#[derive(Clone, Debug, PartialEq)]
pub enum Proposal {
    /// A write command, as the client sent it.
    Command { args: Vec<Bytes>, seed: u64 },
    /// `EXEC`: the watched keys and the queued data commands (connection commands in
    /// the queue are answered by the session, not logged).
    Exec {
        watches: Vec<Watch>,
        cmds: Vec<(Vec<Bytes>, u64)>,
    },
    /// Active expiry: remove each key that has expired by the entry's time.
    ExpireKeys(Vec<Bytes>),
    /// The group takes these slots (see [`crate::claim`]).
    Claim(Claim),
    /// A change of the cluster map, which only the meta group keeps
    /// ([`meta::MetaState::apply`]); a data group (one that holds a claim) refuses it.
    Meta(meta::MetaCommand),
    /// A change of the users and their rules, which only the meta group keeps
    /// ([`meta::acl::Users::apply`]); a data group refuses it.
    Acl(meta::acl::Change),
    /// A command or transaction with the slot and epoch the node that routed it saw (see
    /// [`Route`]). Entries written before routes were carried are bare, and checked by the
    /// claim alone.
    Routed { route: Route, write: Box<Proposal> },
    /// A step of a slot move (see [`crate::moves`]).
    Move(crate::moves::Step),
}

/// What a data write was routed with: the slot of its keys and the epoch of that slot's
/// ownership in the routing node's view. Applying refuses, on every replica alike, a route
/// whose epoch is not the group's (an ownership change came between routing and applying:
/// TiKV's region-epoch rule) or whose slot is not the keys'.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// `None` for a keyless write (`FLUSHALL` sent to each group).
    pub slot: Option<Slot>,
    pub epoch: Epoch,
}

/// The encoding of "no slot" in a route.
const NO_SLOT: u16 = u16::MAX;

impl Proposal {
    /// Applies the proposal with the entry's time: a pure function of `db`, `self` and
    /// `now_ms`, so every replica computes the same state and reply.
    ///
    /// A command or transaction with a key in a slot the database does not serve is
    /// refused whole ([`crate::claim::not_served`]) and changes nothing.
    pub fn apply(&self, db: &mut Db, now_ms: i64) -> Frame {
        if db.claim.is_some() {
            let serves = |slot| db.serves_now(slot);
            let unserved = match self {
                Proposal::Command { args, .. } => claim::unserved(serves, args),
                Proposal::Exec { watches, cmds } => watches
                    .iter()
                    .map(|w| types::key_slot(&w.key))
                    .find(|&s| !serves(s))
                    .or_else(|| {
                        cmds.iter()
                            .find_map(|(args, _)| claim::unserved(serves, args))
                    }),
                Proposal::ExpireKeys(_)
                | Proposal::Claim(_)
                | Proposal::Meta(_)
                | Proposal::Acl(_)
                | Proposal::Routed { .. }
                | Proposal::Move(_) => None,
            };
            if let Some(slot) = unserved {
                return claim::not_served(db, slot);
            }
            if !db.moves.frozen.is_empty() && self.flushes() {
                return Frame::error("TRYAGAIN a slot move is in progress in this group");
            }
        }
        match self {
            Proposal::Move(step) => db.apply_step(step),
            Proposal::Routed { route, write } => {
                refuse_route(db, route, write).unwrap_or_else(|| write.apply(db, now_ms))
            }
            Proposal::Claim(claim) => apply_claim(db, claim),
            Proposal::Meta(command) => apply_meta(db, command),
            Proposal::Acl(change) => apply_acl(db, change),
            Proposal::Command { args, seed } => {
                let mut ctx = Ctx {
                    now_ms,
                    seed: *seed,
                };
                match command::parse(args, &mut ctx) {
                    Ok(cmd) => cmd.execute(db, now_ms),
                    Err(e) => e.to_frame(),
                }
            }
            Proposal::Exec { watches, cmds } => {
                let mut parsed = Vec::with_capacity(cmds.len());
                let mut errors = Vec::new();
                for (i, (args, seed)) in cmds.iter().enumerate() {
                    let mut ctx = Ctx {
                        now_ms,
                        seed: *seed,
                    };
                    match command::parse(args, &mut ctx) {
                        Ok(cmd) => parsed.push(cmd),
                        Err(e) => errors.push((i, e.to_frame())),
                    }
                }
                let exec = Cmd::Write(Write::Exec {
                    watches: watches.clone(),
                    cmds: parsed,
                });
                match exec.execute(db, now_ms) {
                    Frame::Array(mut replies) => {
                        for (i, error) in errors {
                            replies.insert(i.min(replies.len()), error);
                        }
                        Frame::Array(replies)
                    }
                    other => other,
                }
            }
            Proposal::ExpireKeys(keys) => {
                // A frozen slot's keys stay as they are until the move ends.
                let keys = keys
                    .iter()
                    .filter(|k| db.moves.frozen_by(types::key_slot(k)).is_none())
                    .map(|k| CompactBytes::new(k))
                    .collect();
                Cmd::Write(Write::ExpireKeys(keys)).execute(db, now_ms)
            }
        }
    }

    /// The slot of the write's first key: what a route names. `None` for a keyless write
    /// and for entries that are not routed (expiry, claims, map changes).
    pub fn slot(&self) -> Option<Slot> {
        let first = |args: &[Bytes]| {
            let spec = command::lookup(args.first()?)?;
            if !spec.arity_ok(args.len()) {
                return None;
            }
            let i = spec.first_key(args)?;
            Some(types::key_slot(&args[i]))
        };
        match self {
            Proposal::Command { args, .. } => first(args),
            Proposal::Exec { watches, cmds } => watches
                .first()
                .map(|w| types::key_slot(&w.key))
                .or_else(|| cmds.iter().find_map(|(args, _)| first(args))),
            Proposal::Routed { write, .. } => write.slot(),
            Proposal::ExpireKeys(_)
            | Proposal::Claim(_)
            | Proposal::Meta(_)
            | Proposal::Acl(_)
            | Proposal::Move(_) => None,
        }
    }

    /// True for a command that empties the database (`FLUSHALL`, `FLUSHDB`), alone or in
    /// a transaction: it waits while a slot move has frozen slots here.
    fn flushes(&self) -> bool {
        let flush = |args: &[Bytes]| {
            args.first().is_some_and(|n| {
                n.eq_ignore_ascii_case(b"flushall") || n.eq_ignore_ascii_case(b"flushdb")
            })
        };
        match self {
            Proposal::Command { args, .. } => flush(args),
            Proposal::Exec { cmds, .. } => cmds.iter().any(|(args, _)| flush(args)),
            Proposal::Routed { write, .. } => write.flushes(),
            _ => false,
        }
    }

    /// True for what is routed by slot, and so carries a route once encoded with
    /// [`Proposal::encode_routed`]: a command or a transaction (not expiry, claims or map
    /// changes, nor a proposal already routed).
    pub fn is_routable(&self) -> bool {
        matches!(self, Proposal::Command { .. } | Proposal::Exec { .. })
    }

    /// The encoding of this write routed with `epoch` (and its own slot): a command or a
    /// transaction becomes [`Proposal::Routed`]; anything else is encoded as it is.
    pub fn encode_routed(&self, epoch: Epoch) -> Vec<u8> {
        if !self.is_routable() {
            return self.encode();
        }
        let route = Route {
            slot: self.slot(),
            epoch,
        };
        let mut out = Vec::new();
        put_route(&mut out, &route);
        self.encode_into(&mut out);
        out
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Proposal::Routed { route, write } => {
                put_route(out, route);
                write.encode_into(out);
            }
            Proposal::Command { args, seed } => {
                out.push(1);
                out.extend_from_slice(&seed.to_le_bytes());
                put_args(out, args);
            }
            Proposal::Exec { watches, cmds } => {
                out.push(2);
                put_u32(out, watches.len());
                for w in watches {
                    put_bytes(out, &w.key);
                    out.extend_from_slice(&w.seq.to_le_bytes());
                    out.push(w.volatile_live as u8 | (w.existed as u8) << 1);
                }
                put_u32(out, cmds.len());
                for (args, seed) in cmds {
                    out.extend_from_slice(&seed.to_le_bytes());
                    put_args(out, args);
                }
            }
            Proposal::ExpireKeys(keys) => {
                out.push(3);
                put_args(out, keys);
            }
            Proposal::Claim(claim) => {
                out.push(4);
                out.extend_from_slice(&claim.epoch.to_le_bytes());
                put_u32(out, claim.ranges.len());
                for (a, b) in &claim.ranges {
                    out.extend_from_slice(&a.0.to_le_bytes());
                    out.extend_from_slice(&b.0.to_le_bytes());
                }
            }
            Proposal::Meta(command) => {
                out.push(5);
                put_bytes(out, &command.encode());
            }
            Proposal::Acl(change) => {
                out.push(7);
                put_bytes(out, &change.encode());
            }
            Proposal::Move(step) => {
                out.push(8);
                step.encode_into(out);
            }
        }
    }

    pub fn decode(bytes: &[u8]) -> Result<Proposal> {
        Proposal::decode_from(Reader {
            buf: bytes,
            pos: 0,
            shared: None,
        })
    }

    /// [`Proposal::decode`] whose arguments share `bytes`' buffer instead of copying it
    /// (a large write's value is not copied once more to be applied).
    pub fn decode_shared(bytes: &Bytes) -> Result<Proposal> {
        Proposal::decode_from(Reader {
            buf: bytes,
            pos: 0,
            shared: Some(bytes),
        })
    }

    fn decode_from(mut r: Reader<'_>) -> Result<Proposal> {
        let tag = r.u8()?;
        let proposal = match tag {
            6 => {
                let slot = match r.u16()? {
                    NO_SLOT => None,
                    s if s < Slot::COUNT => Some(Slot(s)),
                    s => return Err(Error::err(format!("a route names slot {s}"))),
                };
                let epoch = Epoch(r.u64()?);
                let write = match r.u8()? {
                    tag @ (1 | 2) => Proposal::decode_body(tag, &mut r)?,
                    tag => return Err(Error::err(format!("a routed proposal of tag {tag}"))),
                };
                Proposal::Routed {
                    route: Route { slot, epoch },
                    write: Box::new(write),
                }
            }
            tag => Proposal::decode_body(tag, &mut r)?,
        };
        if r.pos != r.buf.len() {
            return Err(Error::err("trailing bytes after a proposal"));
        }
        Ok(proposal)
    }

    /// The proposal of tag `tag` (1 to 5) whose body `r` holds.
    fn decode_body(tag: u8, r: &mut Reader<'_>) -> Result<Proposal> {
        let proposal = match tag {
            1 => {
                let seed = r.u64()?;
                Proposal::Command {
                    seed,
                    args: r.args()?,
                }
            }
            2 => {
                let n = r.count()?;
                let mut watches = Vec::with_capacity(n);
                for _ in 0..n {
                    let key = CompactBytes::new(&r.bytes()?);
                    let seq = r.u64()?;
                    let flags = r.u8()?;
                    watches.push(Watch {
                        key,
                        seq,
                        volatile_live: flags & 1 != 0,
                        existed: flags & 2 != 0,
                    });
                }
                let n = r.count()?;
                let mut cmds = Vec::with_capacity(n);
                for _ in 0..n {
                    let seed = r.u64()?;
                    cmds.push((r.args()?, seed));
                }
                Proposal::Exec { watches, cmds }
            }
            3 => Proposal::ExpireKeys(r.args()?),
            4 => {
                let epoch = r.u64()?;
                let n = r.count()?;
                let mut ranges = Vec::with_capacity(n);
                for _ in 0..n {
                    let b = r.take(4)?;
                    ranges.push((
                        Slot(u16::from_le_bytes([b[0], b[1]])),
                        Slot(u16::from_le_bytes([b[2], b[3]])),
                    ));
                }
                let claim = Claim { epoch, ranges };
                if !claim.is_well_formed() {
                    return Err(Error::err("a slot claim's ranges are not well formed"));
                }
                Proposal::Claim(claim)
            }
            5 => {
                let bytes = r.bytes()?;
                let command = meta::MetaCommand::decode(&bytes)
                    .map_err(|e| Error::err(format!("a bad cluster map command: {e}")))?;
                Proposal::Meta(command)
            }
            7 => {
                let bytes = r.bytes()?;
                let change = meta::acl::Change::decode(&bytes)
                    .map_err(|e| Error::err(format!("a bad ACL change: {e}")))?;
                Proposal::Acl(change)
            }
            8 => Proposal::Move(crate::moves::Step::decode_from(r)?),
            tag => return Err(Error::err(format!("bad proposal tag {tag}"))),
        };
        Ok(proposal)
    }
}

/// Why a write routed with `route` is refused here, if it is: the group's claim has
/// another epoch, or the route names another slot than the write's keys. A database
/// without a claim (a log written before claims) checks no route.
fn refuse_route(db: &Db, route: &Route, write: &Proposal) -> Option<Frame> {
    let claim = db.claim.as_ref()?;
    if route.epoch.0 != claim.epoch {
        return Some(claim::stale_route(route, claim.epoch));
    }
    let slot = write.slot();
    (slot != route.slot).then(|| {
        Frame::error(format!(
            "ERR a write routed for slot {} holds keys of slot {}",
            show_slot(route.slot),
            show_slot(slot)
        ))
    })
}

/// A claim replaces an older one (a lower epoch); the same claim again is a no-op; any
/// other claim is refused. Either way the keys are untouched.
fn apply_claim(db: &mut Db, claim: &Claim) -> Frame {
    match &db.claim {
        Some(held) if held == claim => Frame::OK,
        Some(held) if held.epoch >= claim.epoch => Frame::error(format!(
            "ERR stale slot claim: epoch {} is not after the held epoch {}",
            claim.epoch, held.epoch
        )),
        _ => {
            db.claim = Some(claim.clone());
            Frame::OK
        }
    }
}

/// A cluster map change: the map's new version (a planned move: its job id), or why it
/// changed nothing. Only a database
/// without a claim (the meta group's) keeps a map; it starts empty at the first change.
fn apply_meta(db: &mut Db, command: &meta::MetaCommand) -> Frame {
    if db.claim.is_some() {
        return Frame::error("ERR a data group keeps no cluster map");
    }
    let map = db.meta.get_or_insert_with(meta::MetaState::default);
    match map.apply(command) {
        Ok(()) if matches!(command, meta::MetaCommand::PlanMove { .. }) => {
            Frame::Integer(map.next_job as i64)
        }
        Ok(()) => Frame::Integer(map.version as i64),
        Err(refused) => Frame::error(format!("ERR cluster map: {refused}")),
    }
}

/// Applies an ACL change: `+OK`, the number of users removed, or the refusal (a refused
/// rule as `ERR <rule number> <why>`, which the proposing node words with the rule its
/// client wrote).
fn apply_acl(db: &mut Db, change: &meta::acl::Change) -> Frame {
    if db.claim.is_some() {
        return Frame::error("ERR a data group keeps no users");
    }
    let users = db.acl.get_or_insert_with(meta::acl::Users::default);
    match users.apply(change) {
        meta::acl::Answer::Ok => Frame::OK,
        meta::acl::Answer::Removed(n) => Frame::Integer(n as i64),
        meta::acl::Answer::Refused(why) => Frame::error(format!("ERR {why}")),
        meta::acl::Answer::RefusedRule { at, why } => {
            Frame::error(format!("{RULE_REFUSED} {at} {why}"))
        }
    }
}

/// The first word of the reply to an ACL change refused at one of its rules (see
/// [`apply_acl`]).
pub const RULE_REFUSED: &str = "ACLRULE";

fn put_route(out: &mut Vec<u8>, route: &Route) {
    out.push(6);
    out.extend_from_slice(&route.slot.map_or(NO_SLOT, |s| s.0).to_le_bytes());
    out.extend_from_slice(&route.epoch.0.to_le_bytes());
}

fn show_slot(slot: Option<Slot>) -> String {
    slot.map_or_else(|| "none".to_string(), |s| s.0.to_string())
}

fn put_u32(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n as u32).to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_u32(out, b.len());
    out.extend_from_slice(b);
}

fn put_args(out: &mut Vec<u8>, args: &[Bytes]) {
    put_u32(out, args.len());
    for a in args {
        put_bytes(out, a);
    }
}

pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// The buffer `buf` is, when byte strings may be slices of it.
    shared: Option<&'a Bytes>,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader {
            buf,
            pos: 0,
            shared: None,
        }
    }
    pub(crate) fn at_end(&self) -> bool {
        self.pos == self.buf.len()
    }
    pub(crate) fn take(&mut self, n: usize) -> Result<&[u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or_else(|| Error::err("truncated proposal"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    pub(crate) fn u16(&mut self) -> Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    pub(crate) fn u32(&mut self) -> Result<usize> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }
    pub(crate) fn u64(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    /// A count, no larger than the bytes left could hold (each item is at least 4 bytes).
    pub(crate) fn count(&mut self) -> Result<usize> {
        let n = self.u32()?;
        if n > (self.buf.len() - self.pos) / 4 + 1 {
            return Err(Error::err("proposal count larger than its bytes"));
        }
        Ok(n)
    }
    fn bytes(&mut self) -> Result<Bytes> {
        let n = self.u32()?;
        let start = self.pos;
        let shared = self.shared;
        let taken = self.take(n)?;
        Ok(match shared {
            Some(shared) => shared.slice(start..start + taken.len()),
            None => Bytes::copy_from_slice(taken),
        })
    }
    fn args(&mut self) -> Result<Vec<Bytes>> {
        let n = self.count()?;
        (0..n).map(|_| self.bytes()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_decoding_slices_the_buffer() {
        let p = Proposal::Command {
            args: args("SET key a-value-long-enough"),
            seed: 7,
        };
        let encoded = Bytes::from(p.encode());
        let shared = Proposal::decode_shared(&encoded).unwrap();
        assert_eq!(shared, p);
        assert_eq!(Proposal::decode(&encoded).unwrap(), p);
        let Proposal::Command { args, .. } = shared else {
            unreachable!()
        };
        let inside = encoded.as_ptr_range();
        assert!(inside.contains(&args[2].as_ptr()), "not copied");
        assert!(Proposal::decode_shared(&encoded.slice(..encoded.len() - 1)).is_err());
    }

    fn args(line: &str) -> Vec<Bytes> {
        line.split(' ')
            .map(|s| Bytes::from(s.to_string()))
            .collect()
    }

    #[test]
    fn replicas_applying_the_same_proposals_agree() {
        let log = vec![
            (
                1_000,
                Proposal::Command {
                    args: args("SET k v EX 10"),
                    seed: 1,
                },
            ),
            (
                1_001,
                Proposal::Command {
                    args: args("SADD s a b c d e f"),
                    seed: 2,
                },
            ),
            (
                1_002,
                Proposal::Command {
                    args: args("SPOP s 2"),
                    seed: 3,
                },
            ),
            (
                1_003,
                Proposal::Exec {
                    watches: vec![],
                    cmds: vec![
                        (args("INCR n"), 4),
                        (args("SET k v BADOPT"), 5),
                        (args("GET n"), 6),
                    ],
                },
            ),
            (20_000, Proposal::ExpireKeys(args("k"))),
        ];
        let (mut a, mut b) = (Db::new(), Db::new());
        for (now, p) in &log {
            let p2 = Proposal::decode(&p.encode()).unwrap();
            assert_eq!(&p2, p);
            assert_eq!(p.apply(&mut a, *now), p2.apply(&mut b, *now));
        }
        assert!(
            a.get(b"k", 20_000).is_none(),
            "EX 10 from the entry's time has passed"
        );
        let members = |db: &Db| {
            db.get(b"s", 0)
                .unwrap()
                .as_set()
                .unwrap()
                .members
                .iter()
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(members(&a), members(&b));
        assert_eq!(members(&a).len(), 4);
    }

    #[test]
    fn exec_keeps_error_slots_in_place() {
        let mut db = Db::new();
        let p = Proposal::Exec {
            watches: vec![],
            cmds: vec![
                (args("SET a 1"), 0),
                (args("SET a 1 BADOPT"), 0),
                (args("INCR a"), 0),
            ],
        };
        let reply = p.apply(&mut db, 0);
        let Frame::Array(items) = reply else {
            panic!("{reply:?}")
        };
        assert_eq!(items[0], Frame::OK);
        assert!(items[1].is_error());
        assert_eq!(items[2], Frame::Integer(2));
    }

    #[test]
    fn a_claimed_database_refuses_writes_for_other_slots() {
        let mut db = Db::new();
        let a = types::key_slot(b"a");
        let claim = |epoch, first: u16, last: u16| {
            Proposal::Claim(Claim {
                epoch,
                ranges: vec![(Slot(first), Slot(last))],
            })
        };
        // Unclaimed: every slot is served.
        let set_b = Proposal::Command {
            args: args("SET b 1"),
            seed: 0,
        };
        assert_eq!(set_b.apply(&mut db, 1), Frame::OK);
        assert_eq!(claim(1, a.0, a.0).apply(&mut db, 2), Frame::OK);
        // Claimed: b's slot is refused, a's served, and a transaction touching b changes
        // nothing.
        let refused = set_b.apply(&mut db, 3);
        assert!(refused.is_error() && format!("{refused:?}").contains("TRYAGAIN"));
        let set_a = Proposal::Command {
            args: args("SET a 2"),
            seed: 0,
        };
        assert_eq!(set_a.apply(&mut db, 4), Frame::OK);
        let exec = Proposal::Exec {
            watches: vec![],
            cmds: vec![(args("SET a 3"), 0), (args("DEL b"), 0)],
        };
        assert!(exec.apply(&mut db, 5).is_error());
        let Some(crate::value::Value::Str(a_value)) = db.get(b"a", 6) else {
            panic!("a is a string")
        };
        assert_eq!(
            &a_value[..],
            b"2",
            "the refused transaction changed nothing"
        );
        // The same claim again is a no-op; an older or equal epoch with other ranges is
        // refused; a newer one replaces it.
        assert_eq!(claim(1, a.0, a.0).apply(&mut db, 7), Frame::OK);
        assert!(claim(1, 0, 16383).apply(&mut db, 8).is_error());
        assert_eq!(claim(2, 0, 16383).apply(&mut db, 9), Frame::OK);
        assert_eq!(set_b.apply(&mut db, 10), Frame::OK);
        // A claim survives encoding.
        let c = claim(7, 100, 200);
        assert_eq!(Proposal::decode(&c.encode()).unwrap(), c);
        let mut bad = claim(7, 200, 100).encode();
        assert!(Proposal::decode(&bad).is_err());
        bad.truncate(bad.len() - 1);
        assert!(Proposal::decode(&bad).is_err());
    }

    #[test]
    fn a_write_routed_with_another_epoch_or_slot_is_refused() {
        let mut db = Db::new();
        let a = types::key_slot(b"a");
        let set_a = Proposal::Command {
            args: args("SET a 1"),
            seed: 0,
        };
        let routed = |epoch| Proposal::decode(&set_a.encode_routed(Epoch(epoch))).unwrap();
        assert_eq!(
            routed(3),
            Proposal::Routed {
                route: Route {
                    slot: Some(a),
                    epoch: Epoch(3)
                },
                write: Box::new(set_a.clone()),
            }
        );
        // Without a claim the route is not checked (a log written before claims).
        assert_eq!(routed(9).apply(&mut db, 1), Frame::OK);
        let claim = Proposal::Claim(Claim {
            epoch: 2,
            ranges: vec![(Slot(0), Slot(16383))],
        });
        assert_eq!(claim.apply(&mut db, 2), Frame::OK);
        for stale in [1, 3] {
            let refused = routed(stale).apply(&mut db, 3);
            assert!(claim::is_refusal(&refused), "{refused:?}");
            assert!(format!("{refused:?}").contains(&format!("epoch {stale}")));
        }
        // A route naming another slot than the keys' is refused too.
        let wrong_slot = Proposal::Routed {
            route: Route {
                slot: Some(Slot(a.0 ^ 1)),
                epoch: Epoch(2),
            },
            write: Box::new(Proposal::Command {
                args: args("SET a 2"),
                seed: 0,
            }),
        };
        assert!(wrong_slot.apply(&mut db, 4).is_error());
        let Some(crate::value::Value::Str(v)) = db.get(b"a", 5) else {
            panic!("a is a string")
        };
        assert_eq!(&v[..], b"1", "no refused write changed the data");
        assert_eq!(routed(2).apply(&mut db, 6), Frame::OK);
        // A keyless write routes with no slot; a transaction with its first key's.
        let flush = Proposal::Command {
            args: args("FLUSHALL"),
            seed: 0,
        };
        let exec = Proposal::Exec {
            watches: vec![],
            cmds: vec![(args("PING"), 0), (args("SET a 3"), 0)],
        };
        assert_eq!(flush.slot(), None);
        assert_eq!(exec.slot(), Some(a));
        for write in [flush, exec] {
            let encoded = write.encode_routed(Epoch(2));
            assert_eq!(
                Proposal::decode(&encoded).unwrap(),
                Proposal::Routed {
                    route: Route {
                        slot: write.slot(),
                        epoch: Epoch(2)
                    },
                    write: Box::new(write),
                }
            );
        }
        // Only commands and transactions are routed; a routed claim does not decode.
        assert_eq!(claim.encode_routed(Epoch(2)), claim.encode());
        let mut nested = vec![6, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0];
        nested.extend(claim.encode());
        assert!(Proposal::decode(&nested).is_err());
        let mut bad_slot = set_a.encode_routed(Epoch(2));
        bad_slot[1..3].copy_from_slice(&16384u16.to_le_bytes());
        assert!(Proposal::decode(&bad_slot).is_err());
    }

    #[test]
    fn only_an_unclaimed_database_keeps_the_cluster_map() {
        let member = meta::Member {
            resp_addr: "127.0.0.1:7001".into(),
            grpc_addr: "127.0.0.1:8001".into(),
            hostname: None,
        };
        let bootstrap = Proposal::Meta(meta::MetaCommand::Bootstrap {
            members: [(1, member.clone())].into(),
            groups: 2,
            replication: 1,
        });
        assert_eq!(Proposal::decode(&bootstrap.encode()).unwrap(), bootstrap);
        // The meta group's database: version 1, then a refusal that changes nothing.
        let mut db = Db::new();
        assert_eq!(bootstrap.apply(&mut db, 1), Frame::Integer(1));
        let again = bootstrap.apply(&mut db, 2);
        assert!(
            format!("{again:?}").contains("already bootstrapped"),
            "{again:?}"
        );
        assert_eq!(db.meta().map(|m| m.version), Some(1));
        let moved = Proposal::Meta(meta::MetaCommand::SetMember {
            id: 1,
            member: meta::Member {
                resp_addr: "127.0.0.1:7101".into(),
                ..member
            },
        });
        assert_eq!(moved.apply(&mut db, 3), Frame::Integer(2));
        // A data group's database refuses every map change and keeps no map.
        let mut data = Db::new();
        Proposal::Claim(Claim {
            epoch: 1,
            ranges: vec![(Slot(0), Slot(16383))],
        })
        .apply(&mut data, 1);
        assert!(bootstrap.apply(&mut data, 2).is_error());
        assert_eq!(data.meta(), None);
        let mut bad = bootstrap.encode();
        bad.truncate(bad.len() - 1);
        assert!(Proposal::decode(&bad).is_err());
    }

    #[test]
    fn only_an_unclaimed_database_keeps_the_users() {
        let alice = Proposal::Acl(meta::acl::Change::SetUser {
            name: "alice".into(),
            ops: vec![meta::acl::Op::On, meta::acl::Op::AllKeys],
        });
        assert_eq!(Proposal::decode(&alice.encode()).unwrap(), alice);
        let mut meta_db = Db::new();
        assert_eq!(alice.apply(&mut meta_db, 1), Frame::OK);
        assert_eq!(meta_db.acl().map(|u| u.version), Some(1));
        let unknown = Proposal::Acl(meta::acl::Change::SetUser {
            name: "alice".into(),
            ops: vec![meta::acl::Op::RemovePassword("00".repeat(32))],
        });
        let refused = unknown.apply(&mut meta_db, 2);
        assert!(
            matches!(&refused, Frame::Error(e) if e.starts_with(&format!("{RULE_REFUSED} 0 "))),
            "{refused:?}"
        );
        assert_eq!(
            meta_db.acl().map(|u| u.version),
            Some(1),
            "a refusal changes nothing"
        );
        let mut data = Db::new();
        Proposal::Claim(Claim {
            epoch: 1,
            ranges: vec![(Slot(0), Slot(16383))],
        })
        .apply(&mut data, 1);
        assert!(alice.apply(&mut data, 2).is_error());
        assert_eq!(data.acl(), None);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let good = Proposal::Command {
            args: args("SET k v"),
            seed: 9,
        }
        .encode();
        for cut in 0..good.len() {
            assert!(Proposal::decode(&good[..cut]).is_err());
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(Proposal::decode(&trailing).is_err());
        assert!(Proposal::decode(&[9]).is_err());
        assert!(Proposal::decode(&[1, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255]).is_err());
        let routed = Proposal::Command {
            args: args("SET k v"),
            seed: 9,
        }
        .encode_routed(Epoch(1));
        for cut in 0..routed.len() {
            assert!(Proposal::decode(&routed[..cut]).is_err());
        }
        // Pseudo-random bytes never panic.
        let mut rng = crate::rng::Rng::new(7);
        for _ in 0..10_000 {
            let len = rng.below(40) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| rng.below(256) as u8).collect();
            let _ = Proposal::decode(&bytes);
        }
    }
}
