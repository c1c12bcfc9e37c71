//! Hash commands: HSET HSETNX HGET HMGET HMSET HDEL HEXISTS HLEN HSTRLEN HKEYS HVALS
//! HGETALL HINCRBY HINCRBYFLOAT HRANDFIELD HSCAN.
//!
//! A hash keeps its fields in insertion order ([`Hash`]); while it is small (`listpack`
//! in Redis) deletes keep that order, so replies that list fields match Redis's. Errors
//! that Redis reports only after looking the key up (an `HSCAN` option, say) are parsed
//! up front and carried as a [`Deferred`] so that a missing key or `WRONGTYPE` still wins.
//! `HRANDFIELD` draws its seed at parse time; running it is a pure function of the seed.

use std::collections::HashSet;

use bytes::Bytes;
use resp::Frame;

use crate::args;
use crate::bytes::CompactBytes;
use crate::command::{Cmd, Ctx, KeySpec, Spec, DENYOOM, FAST, RANDOM, READONLY, WRITE};
use crate::db::Db;
use crate::error::{Error, Result};
use crate::float::F80;
use crate::rng::Rng;
use crate::scan::{self, ScanArgs};
use crate::value::{Hash, Value};

/// The largest `|count|` a negative `HRANDFIELD` count may ask for. Redis has no bound
/// (it would build the reply until memory runs out); a node must not.
pub const MAX_RANDOM_REPEATS: i64 = 1 << 22;

const G: &str = "hash";
#[rustfmt::skip]
pub const SPECS: &[Spec] = &[
    Spec::new("hset", -4, WRITE | DENYOOM | FAST, KeySpec::one(), G, "Set the string value of a hash field", parse_hset),
    Spec::new("hsetnx", 4, WRITE | DENYOOM | FAST, KeySpec::one(), G, "Set the value of a hash field, only if the field does not exist", parse_hsetnx),
    Spec::new("hget", 3, READONLY | FAST, KeySpec::one(), G, "Get the value of a hash field", parse_hget),
    Spec::new("hmget", -3, READONLY | FAST, KeySpec::one(), G, "Get the values of all the given hash fields", parse_hmget),
    Spec::new("hmset", -4, WRITE | DENYOOM | FAST, KeySpec::one(), G, "Set multiple hash fields to multiple values", parse_hset),
    Spec::new("hdel", -3, WRITE | FAST, KeySpec::one(), G, "Delete one or more hash fields", parse_hdel),
    Spec::new("hexists", 3, READONLY | FAST, KeySpec::one(), G, "Determine if a hash field exists", parse_hexists),
    Spec::new("hlen", 2, READONLY | FAST, KeySpec::one(), G, "Get the number of fields in a hash", parse_hlen),
    Spec::new("hstrlen", 3, READONLY | FAST, KeySpec::one(), G, "Get the length of the value of a hash field", parse_hstrlen),
    Spec::new("hkeys", 2, READONLY, KeySpec::one(), G, "Get all the fields in a hash", parse_hgetall),
    Spec::new("hvals", 2, READONLY, KeySpec::one(), G, "Get all the values in a hash", parse_hgetall),
    Spec::new("hgetall", 2, READONLY, KeySpec::one(), G, "Get all the fields and values in a hash", parse_hgetall),
    Spec::new("hincrby", 4, WRITE | DENYOOM | FAST, KeySpec::one(), G, "Increment the integer value of a hash field by the given number", parse_hincrby),
    Spec::new("hincrbyfloat", 4, WRITE | DENYOOM | FAST, KeySpec::one(), G, "Increment the float value of a hash field by the given amount", parse_hincrbyfloat),
    Spec::new("hrandfield", -2, READONLY | RANDOM, KeySpec::one(), G, "Get one or multiple random fields from a hash", parse_hrandfield),
    Spec::new("hscan", -3, READONLY, KeySpec::one(), G, "Incrementally iterate hash fields and associated values", parse_hscan),
];

/// An argument that parsed badly, reported only after the key checks, as Redis does.
pub type Deferred<T> = std::result::Result<T, Error>;

/// What `HKEYS`, `HVALS` and `HGETALL` list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Fields,
    Values,
    Both,
}

#[derive(Clone, Debug)]
pub enum Read {
    /// `HGET key field`
    Get(Bytes, Bytes),
    /// `HMGET key field [field ...]`
    MGet(Bytes, Vec<Bytes>),
    /// `HEXISTS key field`
    Exists(Bytes, Bytes),
    /// `HLEN key`
    Len(Bytes),
    /// `HSTRLEN key field`
    StrLen(Bytes, Bytes),
    /// `HKEYS key`, `HVALS key`, `HGETALL key`
    GetAll(Bytes, Part),
    /// `HRANDFIELD key [count [WITHVALUES]]`
    RandField {
        key: Bytes,
        count: Option<i64>,
        with_values: bool,
        seed: u64,
    },
    /// `HSCAN key cursor [MATCH pattern] [COUNT count]`
    Scan {
        key: Bytes,
        opts: Deferred<ScanArgs>,
    },
}

#[derive(Clone, Debug)]
pub enum Write {
    /// `HSET key field value [field value ...]`; `HMSET` (same syntax) when `reply_ok`.
    Set {
        key: Bytes,
        pairs: Vec<(Bytes, Bytes)>,
        reply_ok: bool,
    },
    /// `HSETNX key field value`
    SetNx(Bytes, Bytes, Bytes),
    /// `HDEL key field [field ...]`
    Del(Bytes, Vec<Bytes>),
    /// `HINCRBY key field increment`
    IncrBy(Bytes, Bytes, i64),
    /// `HINCRBYFLOAT key field increment`
    IncrByFloat(Bytes, Bytes, F80),
}

fn read(r: Read) -> Result<Cmd> {
    Ok(Cmd::Read(crate::command::Read::Hashes(r)))
}

fn write(w: Write) -> Result<Cmd> {
    Ok(Cmd::Write(crate::command::Write::Hashes(w)))
}

fn parse_hset(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    if args.len() % 2 == 1 {
        return Err(Error::Arity(args::name(args)));
    }
    let pairs = args[2..]
        .chunks(2)
        .map(|p| (p[0].clone(), p[1].clone()))
        .collect();
    write(Write::Set {
        key: args[1].clone(),
        pairs,
        reply_ok: args::is(&args[0], "hmset"),
    })
}

fn parse_hsetnx(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    write(Write::SetNx(
        args[1].clone(),
        args[2].clone(),
        args[3].clone(),
    ))
}

fn parse_hget(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    read(Read::Get(args[1].clone(), args[2].clone()))
}

fn parse_hmget(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    read(Read::MGet(args[1].clone(), args[2..].to_vec()))
}

fn parse_hdel(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    write(Write::Del(args[1].clone(), args[2..].to_vec()))
}

fn parse_hexists(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    read(Read::Exists(args[1].clone(), args[2].clone()))
}

fn parse_hlen(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    read(Read::Len(args[1].clone()))
}

fn parse_hstrlen(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    read(Read::StrLen(args[1].clone(), args[2].clone()))
}

fn parse_hgetall(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    let part = if args::is(&args[0], "hkeys") {
        Part::Fields
    } else if args::is(&args[0], "hvals") {
        Part::Values
    } else {
        Part::Both
    };
    read(Read::GetAll(args[1].clone(), part))
}

fn parse_hincrby(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    write(Write::IncrBy(
        args[1].clone(),
        args[2].clone(),
        args::int(&args[3])?,
    ))
}

fn parse_hincrbyfloat(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    let by = F80::parse(&args[3]).ok_or(Error::NotFloat)?;
    if !by.is_finite() {
        return Err(Error::err("value is NaN or Infinity"));
    }
    write(Write::IncrByFloat(args[1].clone(), args[2].clone(), by))
}

fn parse_hrandfield(args: &[Bytes], ctx: &mut Ctx) -> Result<Cmd> {
    let mut count = None;
    let mut with_values = false;
    if args.len() >= 3 {
        let n = args::int(&args[2])?;
        if n == i64::MIN {
            return Err(Error::err(format!(
                "value is out of range, value must between {} and {}",
                -i64::MAX,
                i64::MAX
            )));
        }
        if args.len() > 4 || (args.len() == 4 && !args::is(&args[3], "withvalues")) {
            return Err(Error::Syntax);
        }
        with_values = args.len() == 4;
        // Redis refuses counts whose reply size would overflow, before the key lookup.
        if with_values && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&n) {
            return Err(Error::err("value is out of range"));
        }
        count = Some(n);
    }
    read(Read::RandField {
        key: args[1].clone(),
        count,
        with_values,
        seed: ctx.draw_seed(),
    })
}

fn parse_hscan(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    // The cursor is checked before the key, the options after it.
    scan::parse_cursor(&args[2])?;
    read(Read::Scan {
        key: args[1].clone(),
        opts: ScanArgs::parse(args, 2, false),
    })
}

/// The hash at `key`, `None` if absent, `WRONGTYPE` for another type.
fn get_hash<'a>(db: &'a Db, key: &[u8], now_ms: i64) -> Result<Option<&'a Hash>> {
    db.get(key, now_ms).map(Value::as_hash).transpose()
}

/// The hash at `key` for writing, created empty if absent.
fn hash_mut<'a>(db: &'a mut Db, key: &[u8], now_ms: i64) -> Result<&'a mut Hash> {
    db.get_or_create(
        key,
        now_ms,
        || Value::Hash(Default::default()),
        Value::as_hash_mut,
    )
}

fn bulk(b: &CompactBytes) -> Frame {
    Frame::bulk(&**b)
}

impl Read {
    pub fn run(&self, db: &Db, now_ms: i64) -> Result<Frame> {
        match self {
            Read::Get(key, field) => {
                let v = get_hash(db, key, now_ms)?.and_then(|h| h.map.get(&field[..]));
                Ok(v.map_or(Frame::Null, bulk))
            }
            Read::MGet(key, fields) => {
                let hash = get_hash(db, key, now_ms)?;
                Ok(Frame::Array(
                    fields
                        .iter()
                        .map(|f| {
                            hash.and_then(|h| h.map.get(&f[..]))
                                .map_or(Frame::Null, bulk)
                        })
                        .collect(),
                ))
            }
            Read::Exists(key, field) => {
                let found =
                    get_hash(db, key, now_ms)?.is_some_and(|h| h.map.contains_key(&field[..]));
                Ok(Frame::Integer(found as i64))
            }
            Read::Len(key) => Ok(Frame::Integer(
                get_hash(db, key, now_ms)?.map_or(0, |h| h.map.len() as i64),
            )),
            Read::StrLen(key, field) => {
                let v = get_hash(db, key, now_ms)?.and_then(|h| h.map.get(&field[..]));
                Ok(Frame::Integer(v.map_or(0, |v| v.len() as i64)))
            }
            Read::GetAll(key, part) => {
                let hash = get_hash(db, key, now_ms)?;
                let entries = hash.into_iter().flat_map(|h| h.map.iter());
                Ok(match part {
                    Part::Fields => Frame::Array(entries.map(|(f, _)| bulk(f)).collect()),
                    Part::Values => Frame::Array(entries.map(|(_, v)| bulk(v)).collect()),
                    Part::Both => Frame::Map(entries.map(|(f, v)| (bulk(f), bulk(v))).collect()),
                })
            }
            Read::RandField {
                key,
                count,
                with_values,
                seed,
            } => {
                let hash = get_hash(db, key, now_ms)?;
                let mut rng = Rng::new(*seed);
                let Some(count) = *count else {
                    return Ok(match hash {
                        Some(h) if !h.map.is_empty() => {
                            let i = rng.below(h.map.len() as u64) as usize;
                            h.map.get_index(i).map_or(Frame::Null, |(f, _)| bulk(f))
                        }
                        _ => Frame::Null,
                    });
                };
                let Some(hash) = hash else {
                    return Ok(Frame::Array(Vec::new()));
                };
                // Redis would build a reply of any size for a negative count; a node here
                // refuses one that would not fit in memory.
                if count < -MAX_RANDOM_REPEATS {
                    return Err(Error::err("value is out of range"));
                }
                let picks = random_positions(hash.map.len(), count, &mut rng);
                let entries = picks.into_iter().filter_map(|i| hash.map.get_index(i));
                Ok(if *with_values {
                    Frame::Pairs(entries.map(|(f, v)| (bulk(f), bulk(v))).collect())
                } else {
                    Frame::Array(entries.map(|(f, _)| bulk(f)).collect())
                })
            }
            Read::Scan { key, opts } => {
                let Some(hash) = get_hash(db, key, now_ms)? else {
                    return Ok(scan::reply(0, Vec::new()));
                };
                let opts = opts.clone()?;
                let mut items = Vec::new();
                let mut add = |f: &CompactBytes, v: &CompactBytes| {
                    if opts.matches(f) {
                        items.push(bulk(f));
                        items.push(bulk(v));
                    }
                };
                if !hash.big {
                    // A listpack is returned whole, whatever the cursor, as Redis does.
                    for (f, v) in &hash.map {
                        add(f, v);
                    }
                    return Ok(scan::reply(0, items));
                }
                let (positions, next) = scan::step(opts.cursor, hash.map.len(), opts.count);
                for i in positions {
                    if let Some((f, v)) = hash.map.get_index(i) {
                        add(f, v);
                    }
                }
                Ok(scan::reply(next, items))
            }
        }
    }
}

/// The positions `HRANDFIELD key count` picks among `len`, following Redis's cases:
/// a negative count draws `|count|` times with repeats, in random order; a count of at
/// least `len` takes everything in order; otherwise `count` distinct positions, in
/// position order (Redis samples a listpack in order too).
pub fn random_positions(len: usize, count: i64, rng: &mut Rng) -> Vec<usize> {
    if len == 0 || count == 0 {
        return Vec::new();
    }
    if count < 0 || count == 1 {
        let n = count.unsigned_abs();
        return (0..n).map(|_| rng.below(len as u64) as usize).collect();
    }
    let count = count as u64;
    if count >= len as u64 {
        return (0..len).collect();
    }
    let count = count as usize;
    if count.saturating_mul(3) > len {
        // Selection sampling: one pass, each position kept with the right odds.
        let mut out = Vec::with_capacity(count);
        for i in 0..len {
            let left = (len - i) as u64;
            let need = (count - out.len()) as u64;
            if rng.below(left) < need {
                out.push(i);
            }
        }
        return out;
    }
    // Few out of many: Floyd's algorithm, O(count), then sorted into position order.
    let mut chosen = HashSet::with_capacity(count);
    let mut out = Vec::with_capacity(count);
    for j in (len - count)..len {
        let t = rng.below(j as u64 + 1) as usize;
        let pick = if chosen.contains(&t) { j } else { t };
        chosen.insert(pick);
        out.push(pick);
    }
    out.sort_unstable();
    out
}

impl Write {
    pub fn apply(&self, db: &mut Db, now_ms: i64) -> Result<Frame> {
        match self {
            Write::Set {
                key,
                pairs,
                reply_ok,
            } => {
                let hash = hash_mut(db, key, now_ms)?;
                let mut added = 0;
                for (f, v) in pairs {
                    if hash
                        .map
                        .insert(CompactBytes::new(f), CompactBytes::new(v))
                        .is_none()
                    {
                        added += 1;
                    }
                    hash.note_insert(f, v);
                }
                db.touch(key);
                Ok(if *reply_ok {
                    Frame::OK
                } else {
                    Frame::Integer(added)
                })
            }
            Write::SetNx(key, field, value) => {
                if get_hash(db, key, now_ms)?.is_some_and(|h| h.map.contains_key(&field[..])) {
                    return Ok(Frame::Integer(0));
                }
                let hash = hash_mut(db, key, now_ms)?;
                hash.map
                    .insert(CompactBytes::new(field), CompactBytes::new(value));
                hash.note_insert(field, value);
                db.touch(key);
                Ok(Frame::Integer(1))
            }
            Write::Del(key, fields) => {
                let Some(value) = db.get_mut(key, now_ms) else {
                    return Ok(Frame::Integer(0));
                };
                let hash = value.as_hash_mut()?;
                let mut deleted = 0;
                for f in fields {
                    if hash.remove(f).is_some() {
                        deleted += 1;
                    }
                }
                if deleted > 0 {
                    db.touch(key);
                    db.remove_if_empty(key);
                }
                Ok(Frame::Integer(deleted))
            }
            Write::IncrBy(key, field, by) => {
                let current = match get_hash(db, key, now_ms)?.and_then(|h| h.map.get(&field[..])) {
                    Some(v) => {
                        args::int(v).map_err(|_| Error::err("hash value is not an integer"))?
                    }
                    None => 0,
                };
                let next = current.checked_add(*by).ok_or(Error::Overflow)?;
                let mut buf = [0u8; 20];
                let text = resp::frame::format_i64(next, &mut buf);
                let hash = hash_mut(db, key, now_ms)?;
                hash.map
                    .insert(CompactBytes::new(field), CompactBytes::new(text));
                hash.note_insert(field, text);
                db.touch(key);
                Ok(Frame::Integer(next))
            }
            Write::IncrByFloat(key, field, by) => {
                let current = match get_hash(db, key, now_ms)?.and_then(|h| h.map.get(&field[..])) {
                    Some(v) => {
                        F80::parse(v).ok_or_else(|| Error::err("hash value is not a float"))?
                    }
                    None => F80::ZERO,
                };
                let next = current
                    .checked_add(*by)
                    .ok_or_else(|| Error::err("increment would produce NaN or Infinity"))?;
                let text = next.format_human();
                let hash = hash_mut(db, key, now_ms)?;
                hash.map
                    .insert(CompactBytes::new(field), CompactBytes::new(text.as_bytes()));
                hash.note_insert(field, text.as_bytes());
                db.touch(key);
                Ok(Frame::bulk(text))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<Bytes> {
        line.split_whitespace()
            .map(|s| Bytes::from(s.to_string()))
            .collect()
    }

    fn exec(db: &mut Db, line: &str, seed: u64) -> Frame {
        let mut ctx = Ctx { now_ms: 0, seed };
        match crate::parse(&args(line), &mut ctx) {
            Ok(cmd) => cmd.execute(db, 0),
            Err(e) => e.to_frame(),
        }
    }

    fn strings(frame: &Frame) -> Vec<String> {
        match frame {
            Frame::Array(items) => items.iter().flat_map(strings).collect(),
            Frame::Pairs(pairs) => pairs
                .iter()
                .flat_map(|(k, v)| strings(k).into_iter().chain(strings(v)))
                .collect(),
            Frame::Bulk(b) => vec![String::from_utf8_lossy(b).into_owned()],
            other => panic!("unexpected {other:?}"),
        }
    }

    fn hash_of(db: &mut Db, n: usize) {
        for i in 0..n {
            exec(db, &format!("HSET h f{i} v{i}"), 0);
        }
    }

    #[test]
    fn only_changes_touch_watched_keys() {
        let mut db = Db::new();
        exec(&mut db, "HSET h a 1", 0);
        let w = db.watch(b"h", 0);
        exec(&mut db, "HDEL h zz", 0);
        exec(&mut db, "HSETNX h a 2", 0);
        exec(&mut db, "HINCRBY h a x", 0);
        assert!(!db.watch_is_dirty(&w, 0));
        exec(&mut db, "HINCRBY h a 0", 0);
        assert!(db.watch_is_dirty(&w, 0));
        exec(&mut db, "HDEL h a", 0);
        assert!(!db.contains(b"h", 0), "an emptied hash is deleted");
    }

    #[test]
    fn encoding_follows_redis_limits() {
        let mut db = Db::new();
        hash_of(&mut db, 128);
        assert!(!get_hash(&db, b"h", 0).unwrap().unwrap().big);
        exec(&mut db, "HSET h f129 v", 0);
        assert!(get_hash(&db, b"h", 0).unwrap().unwrap().big);
        exec(&mut db, &format!("HINCRBY g {} 1", "x".repeat(65)), 0);
        assert!(get_hash(&db, b"g", 0).unwrap().unwrap().big);
    }

    #[test]
    fn random_positions_follow_redis_cases() {
        let mut rng = Rng::new(7);
        assert!(random_positions(0, 5, &mut rng).is_empty());
        assert!(random_positions(5, 0, &mut rng).is_empty());
        assert_eq!(random_positions(5, 5, &mut rng), vec![0, 1, 2, 3, 4]);
        assert_eq!(random_positions(5, 100, &mut rng), vec![0, 1, 2, 3, 4]);
        for (len, count) in [(10, 4), (10, 9), (1000, 3), (1000, 400)] {
            let picks = random_positions(len, count, &mut rng);
            assert_eq!(picks.len(), count as usize);
            assert!(
                picks.windows(2).all(|w| w[0] < w[1]),
                "distinct and in order: {picks:?}"
            );
            assert!(picks.iter().all(|&i| i < len));
        }
        let repeats = random_positions(3, -50, &mut rng);
        assert_eq!(repeats.len(), 50);
        assert!(repeats.iter().all(|&i| i < 3));
        let mut seen = repeats.clone();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen, vec![0, 1, 2], "50 draws out of 3 hit every position");
    }

    #[test]
    fn hrandfield_is_deterministic_per_seed() {
        let mut db = Db::new();
        hash_of(&mut db, 20);
        for cmd in [
            "HRANDFIELD h",
            "HRANDFIELD h 5",
            "HRANDFIELD h -30 WITHVALUES",
            "HRANDFIELD h 15 WITHVALUES",
        ] {
            let a = exec(&mut db, cmd, 1234);
            let b = exec(&mut db, cmd, 1234);
            assert_eq!(a, b, "{cmd}");
        }
        let picks: HashSet<Vec<String>> = (0..20)
            .map(|seed| strings(&exec(&mut db, "HRANDFIELD h 3", seed)))
            .collect();
        assert!(picks.len() > 1, "different seeds pick differently");
    }

    #[test]
    fn hrandfield_counts() {
        let mut db = Db::new();
        hash_of(&mut db, 10);
        let distinct = strings(&exec(&mut db, "HRANDFIELD h 6", 99));
        assert_eq!(distinct.len(), 6);
        assert_eq!(distinct.iter().collect::<HashSet<_>>().len(), 6);
        let repeats = strings(&exec(&mut db, "HRANDFIELD h -40", 99));
        assert_eq!(repeats.len(), 40);
        assert!(repeats.iter().collect::<HashSet<_>>().len() < 40);
        let with_values = exec(&mut db, "HRANDFIELD h -3 WITHVALUES", 5);
        let Frame::Pairs(pairs) = &with_values else {
            panic!("{with_values:?}")
        };
        assert_eq!(pairs.len(), 3);
        for (f, v) in strings(&with_values).chunks(2).map(|c| (&c[0], &c[1])) {
            assert_eq!(f[1..], v[1..], "value belongs to its field");
        }
        assert_eq!(strings(&exec(&mut db, "HRANDFIELD h 10", 1)).len(), 10);
        let one = strings(&exec(&mut db, "HRANDFIELD h", 3));
        assert_eq!(one.len(), 1);
        let too_many = exec(
            &mut db,
            &format!("HRANDFIELD h -{}", MAX_RANDOM_REPEATS + 1),
            1,
        );
        assert!(too_many.is_error());
    }

    #[test]
    fn consecutive_parses_draw_different_seeds() {
        let mut ctx = Ctx { now_ms: 0, seed: 1 };
        let a = parse_hrandfield(&args("HRANDFIELD h"), &mut ctx).unwrap();
        let b = parse_hrandfield(&args("HRANDFIELD h"), &mut ctx).unwrap();
        let seed = |c: &Cmd| match c {
            Cmd::Read(crate::command::Read::Hashes(Read::RandField { seed, .. })) => *seed,
            _ => panic!(),
        };
        assert_ne!(seed(&a), seed(&b));
    }

    /// Runs a whole HSCAN, calling `between` after every step.
    fn full_scan(
        db: &mut Db,
        count: usize,
        mut between: impl FnMut(&mut Db, usize),
    ) -> Vec<String> {
        let mut cursor = "0".to_string();
        let mut seen = Vec::new();
        let mut step = 0;
        loop {
            let reply = exec(db, &format!("HSCAN h {cursor} COUNT {count}"), 0);
            let Frame::Array(parts) = reply else {
                panic!("{reply:?}")
            };
            let Frame::Bulk(next) = &parts[0] else {
                panic!()
            };
            let items = strings(&parts[1]);
            for pair in items.chunks(2) {
                assert_eq!(pair[0][1..], pair[1][1..]);
                seen.push(pair[0].clone());
            }
            cursor = String::from_utf8_lossy(next).into_owned();
            if cursor == "0" {
                return seen;
            }
            step += 1;
            between(db, step);
        }
    }

    #[test]
    fn hscan_of_a_small_hash_is_one_reply() {
        let mut db = Db::new();
        hash_of(&mut db, 50);
        let reply = exec(&mut db, "HSCAN h 17 COUNT 2", 0);
        let Frame::Array(parts) = reply else { panic!() };
        assert_eq!(parts[0], Frame::bulk("0"));
        assert_eq!(strings(&parts[1]).len(), 100);
    }

    #[test]
    fn hscan_of_a_big_hash_survives_deletions() {
        let mut db = Db::new();
        hash_of(&mut db, 1000);
        assert!(get_hash(&db, b"h", 0).unwrap().unwrap().big);
        // Delete every third field, a few per step, from both ends of the order; the
        // fields never deleted must all be returned.
        let doomed: Vec<usize> = (0..1000).filter(|i| i % 3 == 0).collect();
        let mut next = 0;
        let seen = full_scan(&mut db, 25, |db, step| {
            for _ in 0..8 {
                if next < doomed.len() {
                    let i = if step % 2 == 0 {
                        doomed[next]
                    } else {
                        doomed[doomed.len() - 1 - next]
                    };
                    exec(db, &format!("HDEL h f{i} f{}", doomed[next]), 0);
                    next += 1;
                }
            }
            exec(db, &format!("HSET h fnew{step} vnew{step}"), 0);
        });
        let seen: HashSet<String> = seen.into_iter().collect();
        for i in (0..1000).filter(|i| i % 3 != 0) {
            assert!(seen.contains(&format!("f{i}")), "f{i} missing");
        }
    }

    #[test]
    fn hscan_without_changes_returns_each_field_once() {
        let mut db = Db::new();
        hash_of(&mut db, 300);
        let seen = full_scan(&mut db, 7, |_, _| {});
        assert_eq!(seen.len(), 300);
        assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 300);
    }

    #[test]
    fn hscan_match_and_deferred_errors() {
        let mut db = Db::new();
        hash_of(&mut db, 200);
        let seen = full_scan(&mut db, 1000, |_, _| {});
        assert_eq!(seen.len(), 200);
        let reply = exec(&mut db, "HSCAN h 0 MATCH f1? COUNT 1000", 0);
        let Frame::Array(parts) = reply else { panic!() };
        assert_eq!(strings(&parts[1]).len(), 20);
        assert!(exec(&mut db, "HSCAN h 0 COUNT 0", 0).is_error());
        assert!(!exec(&mut db, "HSCAN missing 0 COUNT 0", 0).is_error());
        assert!(exec(&mut db, "HSCAN missing x", 0).is_error());
    }
}
