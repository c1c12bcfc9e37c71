//! Set commands: SADD SREM SISMEMBER SMISMEMBER SMEMBERS SCARD SPOP SRANDMEMBER SMOVE
//! SINTER SINTERCARD SINTERSTORE SUNION SUNIONSTORE SDIFF SDIFFSTORE SSCAN.
//!
//! Reply order: Redis replies an `intset`-encoded set in ascending numeric order, so a set
//! that is not `big` is replied sorted by value. A `hashtable` set's order is random in
//! Redis; here it is the set's insertion order, the same on every replica. The results of
//! `SINTER`, `SUNION` and `SDIFF` are built as a set with the encoding Redis's result set
//! would have (`intset` while every member is an integer and there are at most 512), and
//! replied by the same rule; the `*STORE` variants store that set.
//!
//! `SPOP` and `SRANDMEMBER` draw their seed at parse time ([`Ctx::seed`]) and pick by
//! position with [`Rng`], so the same state and command give the same picks everywhere.

use std::collections::HashMap;

use bytes::Bytes;
use resp::Frame;

use crate::args;
use crate::bytes::CompactBytes;
use crate::command::{Cmd, Ctx, KeySpec, Spec, DENYOOM, FAST, RANDOM, READONLY, WRITE};
use crate::db::Db;
use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::scan::{self, ScanArgs};
use crate::value::{SetValue, Value};

/// The most members a negative-count `SRANDMEMBER` may reply with. Redis streams any
/// count up to `LONG_MAX`; building such a reply here would exhaust memory, so larger
/// counts are refused.
pub const MAX_REPEATED_PICKS: u64 = 1 << 22;

const G: &str = "set";
#[rustfmt::skip]
pub const SPECS: &[Spec] = &[
    Spec::new("sadd", -3, WRITE | DENYOOM | FAST, KeySpec::one(), G, "Add one or more members to a set", parse_sadd),
    Spec::new("srem", -3, WRITE | FAST, KeySpec::one(), G, "Remove one or more members from a set", parse_srem),
    Spec::new("sismember", 3, READONLY | FAST, KeySpec::one(), G, "Determine if a given value is a member of a set", parse_sismember),
    Spec::new("smismember", -3, READONLY | FAST, KeySpec::one(), G, "Returns the membership associated with the given elements for a set", parse_smismember),
    Spec::new("smembers", 2, READONLY, KeySpec::one(), G, "Get all the members in a set", parse_smembers),
    Spec::new("scard", 2, READONLY | FAST, KeySpec::one(), G, "Get the number of members in a set", parse_scard),
    Spec::new("spop", -2, WRITE | FAST | RANDOM, KeySpec::one(), G, "Remove and return one or multiple random members from a set", parse_spop),
    Spec::new("srandmember", -2, READONLY | RANDOM, KeySpec::one(), G, "Get one or multiple random members from a set", parse_srandmember),
    Spec::new("smove", 4, WRITE | FAST, KeySpec::range(1, 2, 1), G, "Move a member from one set to another", parse_smove),
    Spec::new("sinter", -2, READONLY, KeySpec::range(1, -1, 1), G, "Intersect multiple sets", parse_combine),
    Spec::new("sintercard", -3, READONLY, KeySpec::numkeys(1, false), G, "Intersect multiple sets and return the cardinality of the result", parse_sintercard),
    Spec::new("sinterstore", -3, WRITE | DENYOOM, KeySpec::range(1, -1, 1), G, "Intersect multiple sets and store the resulting set in a key", parse_store),
    Spec::new("sunion", -2, READONLY, KeySpec::range(1, -1, 1), G, "Add multiple sets", parse_combine),
    Spec::new("sunionstore", -3, WRITE | DENYOOM, KeySpec::range(1, -1, 1), G, "Add multiple sets and store the resulting set in a key", parse_store),
    Spec::new("sdiff", -2, READONLY, KeySpec::range(1, -1, 1), G, "Subtract multiple sets", parse_combine),
    Spec::new("sdiffstore", -3, WRITE | DENYOOM, KeySpec::range(1, -1, 1), G, "Subtract multiple sets and store the resulting set in a key", parse_store),
    Spec::new("sscan", -3, READONLY, KeySpec::one(), G, "Incrementally iterate Set elements", parse_sscan),
];

/// Which combination of sets `SINTER`, `SUNION`, `SDIFF` and their `*STORE` forms compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetOp {
    Inter,
    Union,
    Diff,
}

#[derive(Clone, Debug)]
pub enum Read {
    /// `SISMEMBER key member`
    IsMember(Bytes, Bytes),
    /// `SMISMEMBER key member [member ...]`
    MIsMember(Bytes, Vec<Bytes>),
    /// `SMEMBERS key`
    Members(Bytes),
    /// `SCARD key`
    Card(Bytes),
    /// `SRANDMEMBER key [count]`: `count` is never `i64::MIN`.
    RandMember {
        key: Bytes,
        count: Option<i64>,
        seed: u64,
    },
    /// `SINTER key [key ...]`, `SUNION key [key ...]`, `SDIFF key [key ...]`
    Combine(SetOp, Vec<Bytes>),
    /// `SINTERCARD numkeys key [key ...] [LIMIT limit]`: `limit` 0 is no limit.
    InterCard { keys: Vec<Bytes>, limit: u64 },
    /// `SSCAN key cursor [MATCH pattern] [COUNT count]`: the options are checked only
    /// when the key holds a set, as Redis does, so their error waits in `opts`.
    Scan {
        key: Bytes,
        opts: std::result::Result<ScanArgs, Error>,
    },
}

#[derive(Clone, Debug)]
pub enum Write {
    /// `SADD key member [member ...]`
    Add(Bytes, Vec<Bytes>),
    /// `SREM key member [member ...]`
    Rem(Bytes, Vec<Bytes>),
    /// `SPOP key [count]`
    Pop {
        key: Bytes,
        count: Option<u64>,
        seed: u64,
    },
    /// `SMOVE source destination member`
    Move {
        src: Bytes,
        dst: Bytes,
        member: Bytes,
    },
    /// `SINTERSTORE destination key [key ...]`, `SUNIONSTORE ...`, `SDIFFSTORE ...`
    Store {
        op: SetOp,
        dst: Bytes,
        keys: Vec<Bytes>,
    },
}

fn read(r: Read) -> Result<Cmd> {
    Ok(Cmd::Read(crate::command::Read::Sets(r)))
}

fn write(w: Write) -> Result<Cmd> {
    Ok(Cmd::Write(crate::command::Write::Sets(w)))
}

fn op_of(args: &[Bytes]) -> SetOp {
    let name = args::name(args);
    if name.starts_with("sinter") {
        SetOp::Inter
    } else if name.starts_with("sunion") {
        SetOp::Union
    } else {
        SetOp::Diff
    }
}

fn parse_sadd(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    write(Write::Add(args[1].clone(), args[2..].to_vec()))
}

fn parse_srem(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    write(Write::Rem(args[1].clone(), args[2..].to_vec()))
}

fn parse_sismember(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    read(Read::IsMember(args[1].clone(), args[2].clone()))
}

fn parse_smismember(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    read(Read::MIsMember(args[1].clone(), args[2..].to_vec()))
}

fn parse_smembers(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    read(Read::Members(args[1].clone()))
}

fn parse_scard(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    read(Read::Card(args[1].clone()))
}

fn parse_spop(args: &[Bytes], ctx: &mut Ctx) -> Result<Cmd> {
    let count = match args.len() {
        2 => None,
        3 => match resp::request::parse_int(&args[2]) {
            Some(n) if n >= 0 => Some(n as u64),
            _ => return Err(Error::OutOfRangePositive),
        },
        _ => return Err(Error::Syntax),
    };
    write(Write::Pop {
        key: args[1].clone(),
        count,
        seed: ctx.draw_seed(),
    })
}

fn parse_srandmember(args: &[Bytes], ctx: &mut Ctx) -> Result<Cmd> {
    let count = match args.len() {
        2 => None,
        3 => {
            let n = args::int(&args[2])?;
            if n == i64::MIN {
                return Err(Error::err(format!(
                    "value is out of range, value must between {} and {}",
                    -i64::MAX,
                    i64::MAX
                )));
            }
            Some(n)
        }
        _ => return Err(Error::Syntax),
    };
    read(Read::RandMember {
        key: args[1].clone(),
        count,
        seed: ctx.draw_seed(),
    })
}

fn parse_smove(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    write(Write::Move {
        src: args[1].clone(),
        dst: args[2].clone(),
        member: args[3].clone(),
    })
}

fn parse_combine(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    read(Read::Combine(op_of(args), args[1..].to_vec()))
}

fn parse_store(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    write(Write::Store {
        op: op_of(args),
        dst: args[1].clone(),
        keys: args[2..].to_vec(),
    })
}

fn parse_sintercard(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    let numkeys = match resp::request::parse_int(&args[1]) {
        Some(n) if n > 0 => n as u64,
        _ => return Err(Error::err("numkeys should be greater than 0")),
    };
    let available = (args.len() - 2) as u64;
    if numkeys > available {
        return Err(Error::err(
            "Number of keys can't be greater than number of args",
        ));
    }
    let end = 2 + numkeys as usize;
    let mut limit = 0;
    let mut i = end;
    while i < args.len() {
        if args::is(&args[i], "limit") && i + 1 < args.len() {
            limit = match resp::request::parse_int(&args[i + 1]) {
                Some(n) if n >= 0 => n as u64,
                _ => return Err(Error::err("LIMIT can't be negative")),
            };
            i += 2;
        } else {
            return Err(Error::Syntax);
        }
    }
    read(Read::InterCard {
        keys: args[2..end].to_vec(),
        limit,
    })
}

fn parse_sscan(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    scan::parse_cursor(&args[2])?;
    read(Read::Scan {
        key: args[1].clone(),
        opts: ScanArgs::parse(args, 2, false),
    })
}

/// The set at `key`, `None` if absent, `WRONGTYPE` for another type.
fn get_set<'a>(db: &'a Db, key: &[u8], now_ms: i64) -> Result<Option<&'a SetValue>> {
    db.get(key, now_ms).map(Value::as_set).transpose()
}

/// The members in reply order: ascending by value for an `intset`, else insertion order.
fn ordered(set: &SetValue) -> Vec<&CompactBytes> {
    let mut members: Vec<&CompactBytes> = set.members.iter().collect();
    if !set.big {
        members.sort_unstable_by_key(|m| resp::request::parse_int(m));
    }
    members
}

fn bulks<'a>(members: impl IntoIterator<Item = &'a CompactBytes>) -> Vec<Frame> {
    members.into_iter().map(|m| Frame::bulk(&**m)).collect()
}

/// Adds `member` to `set`, keeping the encoding flag right; true if it was new.
fn add(set: &mut SetValue, member: &[u8]) -> bool {
    let added = set.members.insert(CompactBytes::new(member));
    if added {
        set.note_insert(member);
    }
    added
}

/// `count` distinct positions out of `0..len` (`count <= len`), in the order drawn: the
/// first `count` steps of a Fisher-Yates shuffle, with the few swapped slots in a map so
/// that time and memory follow `count`, not `len`.
fn distinct_positions(len: usize, count: usize, rng: &mut Rng) -> Vec<usize> {
    let count = count.min(len);
    let mut moved: HashMap<usize, usize> = HashMap::with_capacity(count);
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let j = i + rng.below((len - i) as u64) as usize;
        let at_j = moved.get(&j).copied().unwrap_or(j);
        let at_i = moved.get(&i).copied().unwrap_or(i);
        moved.insert(j, at_i);
        out.push(at_j);
    }
    out
}

/// Members of `set` at `positions`.
fn members_at<'a>(set: &'a SetValue, positions: &[usize]) -> Vec<&'a CompactBytes> {
    positions
        .iter()
        .filter_map(|&i| set.members.get_index(i))
        .collect()
}

/// The sets at `keys` (`None` for an absent key), after checking every key's type.
fn sources<'a>(db: &'a Db, keys: &[Bytes], now_ms: i64) -> Result<Vec<Option<&'a SetValue>>> {
    keys.iter().map(|k| get_set(db, k, now_ms)).collect()
}

/// Every set in `keys`, smallest first, or `None` if one is absent (an empty result).
fn for_intersection<'a>(
    db: &'a Db,
    keys: &[Bytes],
    now_ms: i64,
) -> Result<Option<Vec<&'a SetValue>>> {
    let sets = sources(db, keys, now_ms)?;
    let Some(mut sets) = sets.into_iter().collect::<Option<Vec<_>>>() else {
        return Ok(None);
    };
    sets.sort_by_key(|s| s.members.len());
    Ok(Some(sets))
}

/// The result of `op` over the sets at `keys`, with the encoding Redis gives it.
fn combine(db: &Db, op: SetOp, keys: &[Bytes], now_ms: i64) -> Result<SetValue> {
    let mut out = SetValue::default();
    match op {
        SetOp::Inter => {
            let Some(sets) = for_intersection(db, keys, now_ms)? else {
                return Ok(out);
            };
            if let Some((first, rest)) = sets.split_first() {
                for m in &first.members {
                    if rest.iter().all(|s| s.members.contains(&**m)) {
                        add(&mut out, m);
                    }
                }
            }
        }
        SetOp::Union => {
            for set in sources(db, keys, now_ms)?.into_iter().flatten() {
                for m in &set.members {
                    add(&mut out, m);
                }
            }
        }
        SetOp::Diff => {
            let sets = sources(db, keys, now_ms)?;
            if let Some((Some(first), rest)) = sets.split_first() {
                for m in &first.members {
                    if !rest.iter().flatten().any(|s| s.members.contains(&**m)) {
                        add(&mut out, m);
                    }
                }
            }
        }
    }
    Ok(out)
}

fn inter_card(db: &Db, keys: &[Bytes], limit: u64, now_ms: i64) -> Result<u64> {
    let Some(sets) = for_intersection(db, keys, now_ms)? else {
        return Ok(0);
    };
    let Some((first, rest)) = sets.split_first() else {
        return Ok(0);
    };
    let mut n = 0;
    for m in &first.members {
        if rest.iter().all(|s| s.members.contains(&**m)) {
            n += 1;
            if n == limit {
                break;
            }
        }
    }
    Ok(n)
}

/// `SRANDMEMBER key count`.
fn rand_members(set: &SetValue, count: i64, seed: u64) -> Result<Frame> {
    let len = set.members.len();
    let mut rng = Rng::new(seed);
    if count < 0 {
        let n = count.unsigned_abs();
        if n > MAX_REPEATED_PICKS {
            return Err(Error::err(format!(
                "count is too large: at most {MAX_REPEATED_PICKS} members with repetitions"
            )));
        }
        let picks: Vec<usize> = (0..n).map(|_| rng.below(len as u64) as usize).collect();
        return Ok(Frame::Array(bulks(members_at(set, &picks))));
    }
    let count = count as u64;
    if count >= len as u64 {
        return Ok(Frame::Array(bulks(ordered(set))));
    }
    let picks = distinct_positions(len, count as usize, &mut rng);
    Ok(Frame::Array(bulks(members_at(set, &picks))))
}

fn sscan(set: &SetValue, opts: &ScanArgs) -> Frame {
    let keep = |m: &&CompactBytes| opts.matches(m);
    if !set.big {
        // Redis returns a small encoding whole, in one call, whatever the cursor.
        return scan::reply(0, bulks(ordered(set).into_iter().filter(keep)));
    }
    let (positions, next) = scan::step(opts.cursor, set.members.len(), opts.count);
    let items = positions
        .filter_map(|i| set.members.get_index(i))
        .filter(keep);
    scan::reply(next, bulks(items))
}

impl Read {
    pub fn run(&self, db: &Db, now_ms: i64) -> Result<Frame> {
        match self {
            Read::IsMember(key, member) => {
                let set = get_set(db, key, now_ms)?;
                Ok(Frame::Integer(
                    set.is_some_and(|s| s.members.contains(&member[..])) as i64,
                ))
            }
            Read::MIsMember(key, members) => {
                let set = get_set(db, key, now_ms)?;
                Ok(Frame::Array(
                    members
                        .iter()
                        .map(|m| {
                            Frame::Integer(set.is_some_and(|s| s.members.contains(&m[..])) as i64)
                        })
                        .collect(),
                ))
            }
            Read::Members(key) => Ok(Frame::Set(
                get_set(db, key, now_ms)?.map_or_else(Vec::new, |s| bulks(ordered(s))),
            )),
            Read::Card(key) => Ok(Frame::Integer(
                get_set(db, key, now_ms)?.map_or(0, |s| s.members.len() as i64),
            )),
            Read::RandMember { key, count, seed } => {
                let set = get_set(db, key, now_ms)?;
                match (set, count) {
                    (None, None) => Ok(Frame::Null),
                    (None, Some(_)) => Ok(Frame::Array(Vec::new())),
                    (Some(set), None) => {
                        let i = Rng::new(*seed).below(set.members.len() as u64) as usize;
                        Ok(set
                            .members
                            .get_index(i)
                            .map_or(Frame::Null, |m| Frame::bulk(&**m)))
                    }
                    (Some(set), Some(count)) => rand_members(set, *count, *seed),
                }
            }
            Read::Combine(op, keys) => {
                let result = combine(db, *op, keys, now_ms)?;
                Ok(Frame::Set(bulks(ordered(&result))))
            }
            Read::InterCard { keys, limit } => {
                Ok(Frame::Integer(inter_card(db, keys, *limit, now_ms)? as i64))
            }
            Read::Scan { key, opts } => {
                let Some(set) = get_set(db, key, now_ms)? else {
                    return Ok(scan::reply(0, Vec::new()));
                };
                Ok(sscan(set, opts.as_ref().map_err(Clone::clone)?))
            }
        }
    }
}

/// The set at `key` for changing in place, `None` if absent, `WRONGTYPE` for another type.
fn get_set_mut<'a>(db: &'a mut Db, key: &[u8], now_ms: i64) -> Result<Option<&'a mut SetValue>> {
    db.get_mut(key, now_ms).map(Value::as_set_mut).transpose()
}

impl Write {
    pub fn apply(&self, db: &mut Db, now_ms: i64) -> Result<Frame> {
        match self {
            Write::Add(key, members) => {
                let set = db.get_or_create(
                    key,
                    now_ms,
                    || Value::Set(Default::default()),
                    Value::as_set_mut,
                )?;
                let added = members.iter().filter(|m| add(set, m)).count();
                if added > 0 {
                    db.touch(key);
                }
                Ok(Frame::Integer(added as i64))
            }
            Write::Rem(key, members) => {
                let Some(set) = get_set_mut(db, key, now_ms)? else {
                    return Ok(Frame::Integer(0));
                };
                let removed = members.iter().filter(|m| set.remove(m)).count();
                if removed > 0 {
                    db.touch(key);
                    db.remove_if_empty(key);
                }
                Ok(Frame::Integer(removed as i64))
            }
            Write::Pop { key, count, seed } => {
                let Some(set) = get_set_mut(db, key, now_ms)? else {
                    return Ok(if count.is_some() {
                        Frame::Set(Vec::new())
                    } else {
                        Frame::Null
                    });
                };
                let len = set.members.len();
                let mut rng = Rng::new(*seed);
                let reply = match count {
                    None => {
                        let i = rng.below(len as u64) as usize;
                        match set.members.swap_remove_index(i) {
                            Some(m) => Frame::bulk(&*m),
                            None => return Ok(Frame::Null),
                        }
                    }
                    Some(0) => return Ok(Frame::Set(Vec::new())),
                    Some(n) if *n >= len as u64 => {
                        let all = Frame::Set(bulks(ordered(set)));
                        db.remove(key, now_ms);
                        return Ok(all);
                    }
                    Some(n) => {
                        let picks = distinct_positions(len, *n as usize, &mut rng);
                        let popped: Vec<CompactBytes> =
                            members_at(set, &picks).into_iter().cloned().collect();
                        for m in &popped {
                            set.remove(m);
                        }
                        Frame::Set(bulks(&popped))
                    }
                };
                db.touch(key);
                db.remove_if_empty(key);
                Ok(reply)
            }
            Write::Move { src, dst, member } => {
                let Some(from) = get_set(db, src, now_ms)? else {
                    return Ok(Frame::Integer(0));
                };
                let present = from.members.contains(&member[..]);
                get_set(db, dst, now_ms)?;
                if src == dst || !present {
                    // Moving a member onto its own set changes nothing.
                    return Ok(Frame::Integer(present as i64));
                }
                if let Some(from) = get_set_mut(db, src, now_ms)? {
                    from.remove(member);
                }
                db.touch(src);
                db.remove_if_empty(src);
                let to = db.get_or_create(
                    dst,
                    now_ms,
                    || Value::Set(Default::default()),
                    Value::as_set_mut,
                )?;
                if add(to, member) {
                    db.touch(dst);
                }
                Ok(Frame::Integer(1))
            }
            Write::Store { op, dst, keys } => {
                let result = combine(db, *op, keys, now_ms)?;
                let len = result.members.len();
                if len == 0 {
                    db.remove(dst, now_ms);
                } else {
                    db.insert(dst, Value::Set(result.into()), now_ms);
                }
                Ok(Frame::Integer(len as i64))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::from(s.to_string())
    }

    fn run(db: &mut Db, line: &str, seed: u64) -> Frame {
        let args: Vec<Bytes> = line.split_whitespace().map(b).collect();
        let mut ctx = Ctx { now_ms: 0, seed };
        match crate::command::parse(&args, &mut ctx) {
            Ok(cmd) => cmd.execute(db, 0),
            Err(e) => e.to_frame(),
        }
    }

    fn items(f: &Frame) -> Vec<Bytes> {
        match f {
            Frame::Array(v) | Frame::Set(v) => v
                .iter()
                .map(|x| match x {
                    Frame::Bulk(b) => b.clone(),
                    other => panic!("not a bulk: {other:?}"),
                })
                .collect(),
            other => panic!("not an array: {other:?}"),
        }
    }

    fn db_with(n: usize, words: bool) -> Db {
        let mut db = Db::new();
        let members: Vec<String> = (0..n)
            .map(|i| {
                if words {
                    format!("m{i}")
                } else {
                    i.to_string()
                }
            })
            .collect();
        run(&mut db, &format!("SADD s {}", members.join(" ")), 0);
        db
    }

    fn distinct(v: &[Bytes]) -> bool {
        let set: std::collections::HashSet<&Bytes> = v.iter().collect();
        set.len() == v.len()
    }

    #[test]
    fn positions_are_distinct_and_in_range() {
        for seed in 0..50 {
            let mut rng = Rng::new(seed);
            let p = distinct_positions(100, 40, &mut rng);
            assert_eq!(p.len(), 40);
            assert!(p.iter().all(|&i| i < 100));
            let set: std::collections::HashSet<_> = p.iter().collect();
            assert_eq!(set.len(), 40);
        }
        let mut rng = Rng::new(7);
        let mut all = distinct_positions(10, 10, &mut rng);
        all.sort();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        assert!(distinct_positions(0, 0, &mut rng).is_empty());
    }

    #[test]
    fn srandmember_is_deterministic_per_seed() {
        for words in [false, true] {
            let mut db = db_with(200, words);
            for cmd in ["SRANDMEMBER s", "SRANDMEMBER s 17", "SRANDMEMBER s -30"] {
                let a = run(&mut db, cmd, 99);
                assert_eq!(a, run(&mut db, cmd, 99), "{cmd}");
                let mut other = db_with(200, words);
                assert_eq!(a, run(&mut other, cmd, 99), "same state, same seed: {cmd}");
            }
            let picks: std::collections::HashSet<String> = (0..20)
                .map(|seed| format!("{:?}", run(&mut db, "SRANDMEMBER s", seed)))
                .collect();
            assert!(picks.len() > 1, "different seeds pick differently");
        }
    }

    #[test]
    fn srandmember_counts() {
        let mut db = db_with(50, true);
        for seed in 0..20 {
            let v = items(&run(&mut db, "SRANDMEMBER s 20", seed));
            assert_eq!(v.len(), 20);
            assert!(distinct(&v));
            let v = items(&run(&mut db, "SRANDMEMBER s -120", seed));
            assert_eq!(v.len(), 120);
            assert!(!distinct(&v), "120 picks of 50 repeat");
            let v = items(&run(&mut db, "SRANDMEMBER s 50", seed));
            assert_eq!(v.len(), 50);
            assert!(distinct(&v));
        }
        assert_eq!(items(&run(&mut db, "SRANDMEMBER s 0", 1)).len(), 0);
        assert_eq!(items(&run(&mut db, "SRANDMEMBER s 1000", 1)).len(), 50);
        assert!(run(&mut db, "SRANDMEMBER s -9223372036854775807", 1).is_error());
        assert_eq!(
            run(&mut db, "SCARD s", 1),
            Frame::Integer(50),
            "a read changes nothing"
        );
    }

    #[test]
    fn spop_counts_and_determinism() {
        for seed in 0..20 {
            let mut a = db_with(30, seed % 2 == 0);
            let mut b = db_with(30, seed % 2 == 0);
            let popped = run(&mut a, "SPOP s 10", seed);
            assert_eq!(popped, run(&mut b, "SPOP s 10", seed));
            let v = items(&popped);
            assert_eq!(v.len(), 10);
            assert!(distinct(&v));
            assert_eq!(run(&mut a, "SCARD s", 0), Frame::Integer(20));
            for m in &v {
                let m = String::from_utf8_lossy(m);
                assert_eq!(
                    run(&mut a, &format!("SISMEMBER s {m}"), 0),
                    Frame::Integer(0)
                );
            }
            assert_eq!(run(&mut a, "SMEMBERS s", 0), run(&mut b, "SMEMBERS s", 0));
            let one = run(&mut a, "SPOP s", seed);
            assert!(matches!(one, Frame::Bulk(_)));
            assert_eq!(run(&mut a, "SCARD s", 0), Frame::Integer(19));
            let rest = items(&run(&mut a, "SPOP s 100", seed));
            assert_eq!(rest.len(), 19);
            assert_eq!(run(&mut a, "SCARD s", 0), Frame::Integer(0));
            assert_eq!(run(&mut a, "SPOP s", seed), Frame::Null);
            assert_eq!(a.len(), 0, "the emptied set is deleted");
        }
    }

    #[test]
    fn spop_single_until_empty() {
        let mut db = db_with(5, false);
        let mut seen = Vec::new();
        for seed in 0..5 {
            match run(&mut db, "SPOP s", seed) {
                Frame::Bulk(m) => seen.push(m),
                other => panic!("{other:?}"),
            }
        }
        assert!(distinct(&seen));
        assert_eq!(db.len(), 0);
    }

    #[test]
    fn seeds_advance_within_one_context() {
        let mut ctx = Ctx { now_ms: 0, seed: 5 };
        let args: Vec<Bytes> = ["SPOP", "s"].iter().map(|s| b(s)).collect();
        let seed_of = |c: Cmd| match c {
            Cmd::Write(crate::command::Write::Sets(Write::Pop { seed, .. })) => seed,
            _ => panic!(),
        };
        let first = seed_of(crate::command::parse(&args, &mut ctx).unwrap());
        let second = seed_of(crate::command::parse(&args, &mut ctx).unwrap());
        assert_eq!(first, 5);
        assert_ne!(first, second);
    }

    #[test]
    fn sscan_visits_every_member_of_a_big_set() {
        let mut db = db_with(1000, true);
        for count in [1, 7, 10, 100, 5000] {
            let mut cursor = "0".to_string();
            let mut seen = Vec::new();
            let mut calls = 0;
            loop {
                let reply = run(&mut db, &format!("SSCAN s {cursor} COUNT {count}"), 0);
                let Frame::Array(parts) = reply else { panic!() };
                let Frame::Bulk(c) = &parts[0] else { panic!() };
                cursor = String::from_utf8_lossy(c).into_owned();
                seen.extend(items(&parts[1]));
                calls += 1;
                if cursor == "0" {
                    break;
                }
            }
            assert_eq!(seen.len(), 1000, "count {count}");
            assert!(distinct(&seen));
            assert_eq!(calls, 1000usize.div_ceil(count));
        }
    }

    #[test]
    fn sscan_keeps_members_present_throughout_while_others_go() {
        let mut db = db_with(300, true);
        let mut cursor = "0".to_string();
        let mut seen = std::collections::HashSet::new();
        let mut i = 0;
        loop {
            let reply = run(&mut db, &format!("SSCAN s {cursor} COUNT 13"), 0);
            let Frame::Array(parts) = reply else { panic!() };
            let Frame::Bulk(c) = &parts[0] else { panic!() };
            cursor = String::from_utf8_lossy(c).into_owned();
            seen.extend(items(&parts[1]));
            // Remove members with odd numbers as the scan goes.
            for _ in 0..5 {
                run(&mut db, &format!("SREM s m{}", 2 * i + 1), 0);
                i += 1;
            }
            if cursor == "0" {
                break;
            }
        }
        for k in (0..300).step_by(2) {
            assert!(seen.contains(&b(&format!("m{k}"))), "m{k} missed");
        }
    }

    #[test]
    fn sscan_of_a_small_set_is_one_sorted_call() {
        let mut db = Db::new();
        run(&mut db, "SADD s 30 -2 100 7", 0);
        let reply = run(&mut db, "SSCAN s 5 COUNT 1", 0);
        assert_eq!(
            reply,
            scan::reply(
                0,
                ["-2", "7", "30", "100"].iter().map(Frame::bulk).collect()
            )
        );
    }

    #[test]
    fn encodings_follow_members() {
        let mut db = db_with(512, false);
        let big = |db: &Db| db.get(b"s", 0).and_then(|v| v.as_set().ok()).map(|s| s.big);
        assert_eq!(big(&db), Some(false));
        run(&mut db, "SADD s 512", 0);
        assert_eq!(big(&db), Some(true));
        run(&mut db, "SADD t 1 2 x", 0);
        run(&mut db, "SINTERSTORE d s t", 0);
        assert_eq!(
            db.get(b"d", 0).and_then(|v| v.as_set().ok()).map(|s| s.big),
            Some(false)
        );
        run(&mut db, "SUNIONSTORE d t", 0);
        assert_eq!(
            db.get(b"d", 0).and_then(|v| v.as_set().ok()).map(|s| s.big),
            Some(true)
        );
    }

    #[test]
    fn resp3_kinds() {
        let mut db = db_with(3, false);
        run(&mut db, "SADD t 1 9", 0);
        for cmd in [
            "SMEMBERS s",
            "SINTER s t",
            "SUNION s t",
            "SDIFF s t",
            "SMEMBERS none",
            "SINTER none s",
        ] {
            assert!(matches!(run(&mut db, cmd, 0), Frame::Set(_)), "{cmd}");
        }
        for cmd in [
            "SRANDMEMBER s 1",
            "SRANDMEMBER s 10",
            "SRANDMEMBER s -2",
            "SRANDMEMBER none 2",
        ] {
            assert!(matches!(run(&mut db, cmd, 0), Frame::Array(_)), "{cmd}");
        }
        assert_eq!(run(&mut db, "SPOP none 2", 0), Frame::Set(Vec::new()));
        assert!(matches!(run(&mut db, "SPOP s 1", 0), Frame::Set(_)));
        assert!(matches!(run(&mut db, "SPOP t 5", 0), Frame::Set(_)));
    }

    #[test]
    fn touches_only_on_change() {
        let mut db = db_with(3, false);
        run(&mut db, "SADD d 7", 0);
        run(&mut db, "SADD t 3", 0);
        let unchanged = [
            "SADD s 1",
            "SREM s 99",
            "SREM none 1",
            "SMOVE s s 1",
            "SMOVE s d 99",
            "SMOVE none d 1",
            "SPOP s 0",
            "SINTERSTORE none s none",
            "SMEMBERS s",
        ];
        for cmd in unchanged {
            let ws = db.watch(b"s", 0);
            let wd = db.watch(b"d", 0);
            let wn = db.watch(b"none", 0);
            run(&mut db, cmd, 0);
            assert!(!db.watch_is_dirty(&ws, 0), "{cmd} touched s");
            assert!(!db.watch_is_dirty(&wd, 0), "{cmd} touched d");
            assert!(!db.watch_is_dirty(&wn, 0), "{cmd} touched none");
        }
        for (cmd, key) in [
            ("SADD s 5", "s"),
            ("SREM s 5", "s"),
            ("SMOVE s d 1", "s"),
            ("SMOVE s d 2", "d"),
            ("SPOP s", "s"),
            ("SINTERSTORE d d s", "d"),
            ("SUNIONSTORE e t", "e"),
        ] {
            let w = db.watch(key.as_bytes(), 0);
            run(&mut db, cmd, 0);
            assert!(db.watch_is_dirty(&w, 0), "{cmd} did not touch {key}");
        }
    }
}
