//! Keyspace commands: DEL UNLINK EXISTS TOUCH TYPE RENAME RENAMENX COPY KEYS SCAN
//! RANDOMKEY DBSIZE FLUSHDB FLUSHALL EXPIRE PEXPIRE EXPIREAT PEXPIREAT TTL PTTL EXPIRETIME
//! PEXPIRETIME PERSIST OBJECT, and the two pure connection commands PING and ECHO (here so
//! that `MULTI` can queue them like any other command).
//!
//! Invariants:
//! - Expired keys are absent to every command here, `KEYS` and `SCAN` included. Reads
//!   skip them without deleting (reads never change state); `DBSIZE` counts them until a
//!   write or active expiry removes them, as Redis does.
//! - Relative expiries become absolute Unix milliseconds at parse time (`Ctx::now_ms`);
//!   every argument error is found at parse time too, so `apply` only fails on the data
//!   (`ERR no such key`).
//! - `RANDOMKEY` draws its seed at parse time and carries it, so the pick is a function of
//!   the command and the keyspace.
//! - There is one database (Redis Cluster's db 0): `FLUSHALL` is `FLUSHDB`, and
//!   `COPY ... DB n` accepts only 0, with Redis Cluster's errors for any other index.

use bytes::Bytes;
use resp::Frame;

use crate::args;
use crate::command::{Cmd, Ctx, KeySpec, Spec, DENYOOM, FAST, RANDOM, READONLY, WRITE};
use crate::db::Db;
use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::scan::{self, ScanArgs};
use crate::strings::Unit;
use crate::value::Value;

const G: &str = "generic";
const C: &str = "connection";
/// Keys of `RENAME`, `RENAMENX` and `COPY`: the source and the destination.
const TWO_KEYS: KeySpec = KeySpec::range(1, 2, 1);
/// Every argument after the name is a key (`DEL`, `EXISTS`, ...).
const ALL_KEYS: KeySpec = KeySpec::range(1, -1, 1);

#[rustfmt::skip]
pub const SPECS: &[Spec] = &[
    Spec::new("del", -2, WRITE, ALL_KEYS, G, "Delete a key", parse_del),
    Spec::new("unlink", -2, WRITE | FAST, ALL_KEYS, G, "Delete a key asynchronously in another thread. Otherwise it is just as DEL, but non blocking.", parse_del),
    Spec::new("exists", -2, READONLY | FAST, ALL_KEYS, G, "Determine if a key exists", parse_exists),
    Spec::new("touch", -2, READONLY | FAST, ALL_KEYS, G, "Alters the last access time of a key(s). Returns the number of existing keys specified.", parse_exists),
    Spec::new("type", 2, READONLY | FAST, KeySpec::one(), G, "Determine the type stored at key", parse_type),
    Spec::new("rename", 3, WRITE, TWO_KEYS, G, "Rename a key", parse_rename),
    Spec::new("renamenx", 3, WRITE | FAST, TWO_KEYS, G, "Rename a key, only if the new key does not exist", parse_rename),
    Spec::new("copy", -3, WRITE | DENYOOM, TWO_KEYS, G, "Copy a key", parse_copy),
    Spec::new("keys", 2, READONLY, KeySpec::NONE, G, "Find all keys matching the given pattern", parse_keys),
    Spec::new("scan", -2, READONLY, KeySpec::NONE, G, "Incrementally iterate the keys space", parse_scan),
    Spec::new("randomkey", 1, READONLY | RANDOM, KeySpec::NONE, G, "Return a random key from the keyspace", parse_randomkey),
    Spec::new("dbsize", 1, READONLY | FAST, KeySpec::NONE, G, "Return the number of keys in the selected database", parse_dbsize),
    Spec::new("flushdb", -1, WRITE, KeySpec::NONE, G, "Remove all keys from the current database", parse_flush),
    Spec::new("flushall", -1, WRITE, KeySpec::NONE, G, "Remove all keys from all databases", parse_flush),
    Spec::new("expire", -3, WRITE | FAST, KeySpec::one(), G, "Set a key's time to live in seconds", parse_expire),
    Spec::new("pexpire", -3, WRITE | FAST, KeySpec::one(), G, "Set a key's time to live in milliseconds", parse_expire),
    Spec::new("expireat", -3, WRITE | FAST, KeySpec::one(), G, "Set the expiration for a key as a UNIX timestamp", parse_expire),
    Spec::new("pexpireat", -3, WRITE | FAST, KeySpec::one(), G, "Set the expiration for a key as a UNIX timestamp specified in milliseconds", parse_expire),
    Spec::new("ttl", 2, READONLY | FAST, KeySpec::one(), G, "Get the time to live for a key in seconds", parse_ttl),
    Spec::new("pttl", 2, READONLY | FAST, KeySpec::one(), G, "Get the time to live for a key in milliseconds", parse_ttl),
    Spec::new("expiretime", 2, READONLY | FAST, KeySpec::one(), G, "Get the expiration Unix timestamp for a key", parse_ttl),
    Spec::new("pexpiretime", 2, READONLY | FAST, KeySpec::one(), G, "Get the expiration Unix timestamp for a key in milliseconds", parse_ttl),
    Spec::new("persist", 2, WRITE | FAST, KeySpec::one(), G, "Remove the expiration from a key", parse_persist),
    // The key is argument 2 of the subcommands that take one (`OBJECT ENCODING key`);
    // `OBJECT HELP` has no argument 2 and so no key.
    Spec::new("object", -2, READONLY, KeySpec::range(2, 2, 1), G, "A container for object introspection commands", parse_object),
    Spec::new("ping", -1, FAST, KeySpec::NONE, C, "Ping the server", parse_ping),
    Spec::new("echo", 2, FAST, KeySpec::NONE, C, "Echo the given string", parse_echo),
];

/// Redis's `databases` default: `COPY ... DB n` takes `0 <= n < DATABASES`.
pub const DATABASES: i64 = 16;
/// Random probes `RANDOMKEY` makes before it walks the keyspace for a live key.
const RANDOM_PROBES: usize = 16;
/// Redis shares the string objects of the integers `0..SHARED_INTEGERS`; their
/// `OBJECT REFCOUNT` is `i32::MAX`.
const SHARED_INTEGERS: i64 = 10_000;

/// The conditions of `EXPIRE key time [NX | XX | GT | LT]` (`XX` may go with `GT` or
/// `LT`). A key without an expiry counts as one that never expires.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExpireIf {
    /// `NX`: only if the key has no expiry.
    pub nx: bool,
    /// `XX`: only if the key has an expiry.
    pub xx: bool,
    /// `GT`: only if the new expiry is later than the current one.
    pub gt: bool,
    /// `LT`: only if the new expiry is sooner than the current one.
    pub lt: bool,
}

impl ExpireIf {
    /// True if a key whose expiry is `current` may get the expiry `at`.
    pub fn allows(&self, current: Option<i64>, at: i64) -> bool {
        if self.nx && current.is_some() {
            return false;
        }
        if self.xx && current.is_none() {
            return false;
        }
        if self.gt && current.is_none_or(|c| at <= c) {
            return false;
        }
        if self.lt && current.is_some_and(|c| at >= c) {
            return false;
        }
        true
    }
}

/// What `OBJECT` reports about a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectInfo {
    Encoding,
    Freq,
    IdleTime,
    RefCount,
}

#[derive(Clone, Debug)]
pub enum Read {
    /// `EXISTS key [key ...]`, and `TOUCH key [key ...]`: how many of the keys exist,
    /// counting a repeated key each time.
    Exists(Vec<Bytes>),
    /// `TYPE key`
    Type(Bytes),
    /// `KEYS pattern`
    Keys(Bytes),
    /// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`
    Scan(ScanArgs),
    /// `RANDOMKEY`, with the seed drawn at parse time.
    RandomKey { seed: u64 },
    /// `DBSIZE`
    DbSize,
    /// `TTL key`, `PTTL key`, `EXPIRETIME key`, `PEXPIRETIME key`: the remaining time, or
    /// with `absolute` the Unix time, of the key's expiry in `unit`.
    Ttl {
        key: Bytes,
        unit: Unit,
        absolute: bool,
    },
    /// `OBJECT ENCODING | FREQ | IDLETIME | REFCOUNT key`
    Object(ObjectInfo, Bytes),
    /// `OBJECT HELP`
    ObjectHelp,
    /// `PING [message]`
    Ping(Option<Bytes>),
    /// `ECHO message`
    Echo(Bytes),
}

#[derive(Clone, Debug)]
pub enum Write {
    /// `DEL key [key ...]`, and `UNLINK key [key ...]`
    Del(Vec<Bytes>),
    /// `RENAME key newkey`, or `RENAMENX key newkey` when `nx` is set. Keeps the expiry.
    Rename { from: Bytes, to: Bytes, nx: bool },
    /// `COPY source destination [DB destination-db] [REPLACE]` (db 0 only). Keeps the expiry.
    Copy {
        from: Bytes,
        to: Bytes,
        replace: bool,
    },
    /// `FLUSHDB [ASYNC | SYNC]`, and `FLUSHALL [ASYNC | SYNC]`
    Flush,
    /// `EXPIRE key seconds [NX | XX | GT | LT]`, and `PEXPIRE`, `EXPIREAT`, `PEXPIREAT`:
    /// `at` is absolute Unix milliseconds; a time not after the entry's `now_ms` deletes
    /// the key.
    Expire { key: Bytes, at: i64, cond: ExpireIf },
    /// `PERSIST key`
    Persist(Bytes),
}

fn read(r: Read) -> Result<Cmd> {
    Ok(Cmd::Read(crate::command::Read::Keys(r)))
}

fn write(w: Write) -> Result<Cmd> {
    Ok(Cmd::Write(crate::command::Write::Keys(w)))
}

fn parse_del(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    write(Write::Del(args[1..].to_vec()))
}

fn parse_exists(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    read(Read::Exists(args[1..].to_vec()))
}

fn parse_type(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    read(Read::Type(args[1].clone()))
}

fn parse_rename(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    let nx = args::is(&args[0], "renamenx");
    write(Write::Rename {
        from: args[1].clone(),
        to: args[2].clone(),
        nx,
    })
}

/// Redis's `getIntFromObjectOrReply`: an integer that fits 32 bits.
fn int32(arg: &[u8]) -> Result<i64> {
    let v = args::int(arg)?;
    if v < i32::MIN as i64 || v > i32::MAX as i64 {
        return Err(Error::err(
            "value is out of range, value must between -2147483648 and 2147483647",
        ));
    }
    Ok(v)
}

fn parse_copy(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    let mut replace = false;
    let mut db = 0;
    let mut i = 3;
    while i < args.len() {
        let more = i + 1 < args.len();
        if args::is(&args[i], "replace") {
            replace = true;
        } else if args::is(&args[i], "db") && more {
            db = int32(&args[i + 1])?;
            if !(0..DATABASES).contains(&db) {
                return Err(Error::err("DB index is out of range"));
            }
            i += 1;
        } else {
            return Err(Error::Syntax);
        }
        i += 1;
    }
    // Checked after every option, as Redis Cluster does: the last `DB` counts.
    if db != 0 {
        return Err(Error::err(
            "Copying to another database is not allowed in cluster mode",
        ));
    }
    if args[1] == args[2] {
        return Err(Error::err("source and destination objects are the same"));
    }
    write(Write::Copy {
        from: args[1].clone(),
        to: args[2].clone(),
        replace,
    })
}

fn parse_keys(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    read(Read::Keys(args[1].clone()))
}

fn parse_scan(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    read(Read::Scan(ScanArgs::parse(args, 1, true)?))
}

fn parse_randomkey(_: &[Bytes], ctx: &mut Ctx) -> Result<Cmd> {
    read(Read::RandomKey {
        seed: ctx.draw_seed(),
    })
}

fn parse_dbsize(_: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    read(Read::DbSize)
}

fn parse_flush(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    match args {
        [_] => {}
        [_, mode] if args::is(mode, "async") || args::is(mode, "sync") => {}
        _ => return Err(Error::Syntax),
    }
    write(Write::Flush)
}

/// Parses `NX | XX | GT | LT` with Redis 7.0's checks and errors.
fn parse_expire_if(opts: &[Bytes]) -> Result<ExpireIf> {
    let mut cond = ExpireIf::default();
    for opt in opts {
        if args::is(opt, "nx") {
            cond.nx = true;
        } else if args::is(opt, "xx") {
            cond.xx = true;
        } else if args::is(opt, "gt") {
            cond.gt = true;
        } else if args::is(opt, "lt") {
            cond.lt = true;
        } else {
            return Err(Error::err(format!(
                "Unsupported option {}",
                String::from_utf8_lossy(opt)
            )));
        }
    }
    if cond.nx && (cond.xx || cond.gt || cond.lt) {
        return Err(Error::err(
            "NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if cond.gt && cond.lt {
        return Err(Error::err(
            "GT and LT options at the same time are not compatible",
        ));
    }
    Ok(cond)
}

/// An `EXPIRE`-family time in `unit`, relative to `base` ms, as absolute Unix ms. Negative
/// times are allowed (they delete the key); overflow is `invalid expire time`.
fn expire_time(arg: &[u8], unit: Unit, base: i64, cmd: &str) -> Result<i64> {
    let v = args::int(arg)?;
    let bad = || Error::InvalidExpire(cmd.to_string());
    let ms = match unit {
        Unit::Seconds => v.checked_mul(1000).ok_or_else(bad)?,
        Unit::Millis => v,
    };
    // Redis checks `when > LLONG_MAX - basetime` only: `base` is never negative.
    ms.checked_add(base).ok_or_else(bad)
}

fn parse_expire(args: &[Bytes], ctx: &mut Ctx) -> Result<Cmd> {
    let name = args::name(args);
    let cond = parse_expire_if(&args[3..])?;
    let (unit, relative) = match name.as_str() {
        "expire" => (Unit::Seconds, true),
        "pexpire" => (Unit::Millis, true),
        "expireat" => (Unit::Seconds, false),
        _ => (Unit::Millis, false),
    };
    let base = if relative { ctx.now_ms.max(0) } else { 0 };
    let at = expire_time(&args[2], unit, base, &name)?;
    write(Write::Expire {
        key: args[1].clone(),
        at,
        cond,
    })
}

fn parse_ttl(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    let (unit, absolute) = match args::name(args).as_str() {
        "ttl" => (Unit::Seconds, false),
        "pttl" => (Unit::Millis, false),
        "expiretime" => (Unit::Seconds, true),
        _ => (Unit::Millis, true),
    };
    read(Read::Ttl {
        key: args[1].clone(),
        unit,
        absolute,
    })
}

fn parse_persist(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    write(Write::Persist(args[1].clone()))
}

/// `OBJECT`'s subcommands: name, arity (Redis's convention) and what it reports.
const OBJECT_SUBCOMMANDS: &[(&str, usize, Option<ObjectInfo>)] = &[
    ("encoding", 3, Some(ObjectInfo::Encoding)),
    ("freq", 3, Some(ObjectInfo::Freq)),
    ("idletime", 3, Some(ObjectInfo::IdleTime)),
    ("refcount", 3, Some(ObjectInfo::RefCount)),
    ("help", 2, None),
];

fn parse_object(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    let sub = &args[1];
    let Some(&(name, arity, info)) = OBJECT_SUBCOMMANDS.iter().find(|(n, _, _)| args::is(sub, n))
    else {
        return Err(Error::UnknownSubcommand {
            sub: String::from_utf8_lossy(&sub[..sub.len().min(128)]).into_owned(),
            command: String::from_utf8_lossy(&args[0]).to_ascii_uppercase(),
        });
    };
    if args.len() != arity {
        return Err(Error::Arity(format!("object|{name}")));
    }
    match info {
        Some(info) => read(Read::Object(info, args[2].clone())),
        None => read(Read::ObjectHelp),
    }
}

fn parse_ping(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    match args {
        [_] => read(Read::Ping(None)),
        [_, message] => read(Read::Ping(Some(message.clone()))),
        _ => Err(Error::Arity("ping".to_string())),
    }
}

fn parse_echo(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    read(Read::Echo(args[1].clone()))
}

const OBJECT_HELP: &[&str] = &[
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Prints this help.",
];

/// Milliseconds to seconds as Redis's `TTL` and `EXPIRETIME` round them, `(ms + 500) /
/// 1000`, without overflow near `i64::MAX` (`ms` is never negative here).
fn round_to_seconds(ms: i64) -> i64 {
    ((ms as i128 + 500) / 1000) as i64
}

/// `OBJECT REFCOUNT`: Redis shares the objects of small integers, which then report
/// `INT_MAX`; every other value (a copy made by `COPY` included) has one reference.
fn refcount(value: &Value) -> i64 {
    match value {
        Value::Str(s) if value.encoding() == "int" && s.is_inline() => {
            match resp::request::parse_int(s) {
                Some(n) if (0..SHARED_INTEGERS).contains(&n) => i32::MAX as i64,
                _ => 1,
            }
        }
        _ => 1,
    }
}

/// A live key picked with `seed`: a few random probes, then a walk from a random
/// position, so that a keyspace of mostly expired keys still gives a live one if any.
fn random_key(db: &Db, seed: u64, now_ms: i64) -> Option<&[u8]> {
    let n = db.len();
    if n == 0 {
        return None;
    }
    let live = |i: usize| {
        db.key_at(i)
            .filter(|(_, e)| Db::is_live_entry(e, now_ms))
            .map(|(k, _)| &**k)
    };
    let mut rng = Rng::new(seed);
    for _ in 0..RANDOM_PROBES {
        if let Some(key) = live(rng.below(n as u64) as usize) {
            return Some(key);
        }
    }
    let start = rng.below(n as u64) as usize;
    (0..n).find_map(|off| live((start + off) % n))
}

impl Read {
    pub fn run(&self, db: &Db, now_ms: i64) -> Result<Frame> {
        match self {
            Read::Exists(keys) => Ok(Frame::Integer(
                keys.iter().filter(|k| db.contains(k, now_ms)).count() as i64,
            )),
            Read::Type(key) => Ok(Frame::Simple(
                db.get(key, now_ms).map_or("none", Value::type_name),
            )),
            Read::Keys(pattern) => {
                let all = &pattern[..] == b"*";
                let keys = db
                    .iter()
                    .filter(|(k, e)| {
                        Db::is_live_entry(e, now_ms)
                            && (all || crate::glob::glob_match(pattern, k, false))
                    })
                    .map(|(k, _)| Frame::bulk(&**k))
                    .collect();
                Ok(Frame::Array(keys))
            }
            Read::Scan(scan) => {
                let (positions, cursor) = scan::step(scan.cursor, db.len(), scan.count);
                let keys = positions
                    .filter_map(|i| db.key_at(i))
                    .filter(|(k, e)| {
                        Db::is_live_entry(e, now_ms)
                            && scan.matches(k)
                            && scan
                                .type_name
                                .as_ref()
                                .is_none_or(|t| args::is(t, e.value.type_name()))
                    })
                    .map(|(k, _)| Frame::bulk(&**k))
                    .collect();
                Ok(scan::reply(cursor, keys))
            }
            Read::RandomKey { seed } => {
                Ok(random_key(db, *seed, now_ms).map_or(Frame::Null, Frame::bulk))
            }
            Read::DbSize => Ok(Frame::Integer(db.len() as i64)),
            Read::Ttl {
                key,
                unit,
                absolute,
            } => {
                let Some(expire) = db.expire_at(key, now_ms) else {
                    return Ok(Frame::Integer(-2));
                };
                let Some(at) = expire else {
                    return Ok(Frame::Integer(-1));
                };
                let ms = if *absolute {
                    at
                } else {
                    at.saturating_sub(now_ms)
                }
                .max(0);
                Ok(Frame::Integer(match unit {
                    Unit::Millis => ms,
                    Unit::Seconds => round_to_seconds(ms),
                }))
            }
            Read::Object(info, key) => {
                let Some(value) = db.get(key, now_ms) else {
                    return Ok(Frame::Null);
                };
                Ok(match info {
                    ObjectInfo::Encoding => Frame::bulk(value.encoding()),
                    ObjectInfo::Freq => return Err(Error::err(
                        "An LFU maxmemory policy is not selected, access frequency not tracked. \
                         Please note that when switching between policies at runtime LRU and LFU \
                         data will take some time to adjust.",
                    )),
                    // Access times are not tracked: reads never change state.
                    ObjectInfo::IdleTime => Frame::Integer(0),
                    ObjectInfo::RefCount => Frame::Integer(refcount(value)),
                })
            }
            Read::ObjectHelp => Ok(Frame::Array(
                OBJECT_HELP.iter().map(|&l| Frame::Simple(l)).collect(),
            )),
            Read::Ping(None) => Ok(Frame::Simple("PONG")),
            Read::Ping(Some(message)) | Read::Echo(message) => Ok(Frame::bulk(message)),
        }
    }
}

impl Write {
    pub fn apply(&self, db: &mut Db, now_ms: i64) -> Result<Frame> {
        match self {
            Write::Del(keys) => Ok(Frame::Integer(
                keys.iter()
                    .filter(|k| db.remove(k, now_ms).is_some())
                    .count() as i64,
            )),
            Write::Rename { from, to, nx } => {
                if !db.contains(from, now_ms) {
                    return Err(Error::NoSuchKey);
                }
                let done = if *nx { Frame::Integer(1) } else { Frame::OK };
                if from == to {
                    return Ok(if *nx { Frame::Integer(0) } else { Frame::OK });
                }
                if *nx && db.contains(to, now_ms) {
                    return Ok(Frame::Integer(0));
                }
                if let Some(entry) = db.remove(from, now_ms) {
                    db.insert_entry(to, entry, now_ms);
                }
                Ok(done)
            }
            Write::Copy { from, to, replace } => {
                let Some(mut entry) = db.entry(from, now_ms).cloned() else {
                    return Ok(Frame::Integer(0));
                };
                if !*replace && db.contains(to, now_ms) {
                    return Ok(Frame::Integer(0));
                }
                // Redis copies a shared small integer into an object of its own.
                if let Value::Str(s) = &entry.value {
                    entry.value = Value::Str(s.unshared());
                }
                db.insert_entry(to, entry, now_ms);
                Ok(Frame::Integer(1))
            }
            Write::Flush => {
                db.flush();
                Ok(Frame::OK)
            }
            Write::Expire { key, at, cond } => {
                let Some(current) = db.expire_at(key, now_ms) else {
                    return Ok(Frame::Integer(0));
                };
                if !cond.allows(current, *at) {
                    return Ok(Frame::Integer(0));
                }
                db.set_expire(key, Some(*at), now_ms);
                Ok(Frame::Integer(1))
            }
            Write::Persist(key) => {
                if db.expire_at(key, now_ms).flatten().is_none() {
                    return Ok(Frame::Integer(0));
                }
                db.set_expire(key, None, now_ms);
                Ok(Frame::Integer(1))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::command::lookup;
    use crate::value::List;

    const NOW: i64 = 1_700_000_000_000;

    fn argv(words: &[&str]) -> Vec<Bytes> {
        words.iter().map(|w| Bytes::from(w.to_string())).collect()
    }

    fn run_seeded(db: &mut Db, now_ms: i64, seed: u64, words: &[&str]) -> Frame {
        let mut ctx = Ctx { now_ms, seed };
        match crate::parse(&argv(words), &mut ctx) {
            Ok(cmd) => cmd.execute(db, now_ms),
            Err(e) => e.to_frame(),
        }
    }

    fn run(db: &mut Db, now_ms: i64, words: &[&str]) -> Frame {
        run_seeded(db, now_ms, 42, words)
    }

    fn int(n: i64) -> Frame {
        Frame::Integer(n)
    }

    fn set(db: &mut Db, key: &str) {
        db.insert(key.as_bytes(), Value::str(b"v"), NOW);
    }

    /// One `SCAN` call: the next cursor and the keys.
    fn scan_once(db: &Db, args: &[&str]) -> (u64, Vec<String>) {
        let mut words = vec!["SCAN"];
        words.extend_from_slice(args);
        let mut ctx = Ctx {
            now_ms: NOW,
            seed: 0,
        };
        let Ok(Cmd::Read(cmd)) = crate::parse(&argv(&words), &mut ctx) else {
            panic!("SCAN is a read");
        };
        let Frame::Array(reply) = cmd.run(db, NOW) else {
            panic!("SCAN replies with an array");
        };
        let (Frame::Bulk(cursor), Frame::Array(items)) = (&reply[0], &reply[1]) else {
            panic!("SCAN replies [cursor, keys]");
        };
        let cursor = std::str::from_utf8(cursor).unwrap().parse().unwrap();
        let keys = items
            .iter()
            .map(|f| match f {
                Frame::Bulk(b) => String::from_utf8(b.to_vec()).unwrap(),
                other => panic!("not a key: {other:?}"),
            })
            .collect();
        (cursor, keys)
    }

    /// A whole scan with `options`, calling `between` after each call.
    fn scan_all(
        db: &mut Db,
        options: &[&str],
        mut between: impl FnMut(&mut Db, usize),
    ) -> Vec<String> {
        let mut seen = Vec::new();
        let mut cursor = 0u64;
        for round in 0.. {
            let c = cursor.to_string();
            let mut args = vec![c.as_str()];
            args.extend_from_slice(options);
            let (next, keys) = scan_once(db, &args);
            seen.extend(keys);
            cursor = next;
            if cursor == 0 {
                break;
            }
            between(db, round);
            assert!(round < 10_000, "the scan ends");
        }
        seen
    }

    #[test]
    fn scan_returns_every_key_present_throughout() {
        let mut db = Db::new();
        for i in 0..200 {
            set(&mut db, &format!("stay:{i}"));
            set(&mut db, &format!("go:{i}"));
        }
        let mut next_new = 0;
        let seen = scan_all(&mut db, &["COUNT", "7"], |db, round| {
            // Delete some of the keys that go, from everywhere in the keyspace, and add
            // new ones, between every two calls.
            for j in [round * 3, round * 3 + 1, 199 - round] {
                db.remove(format!("go:{j}").as_bytes(), NOW);
            }
            db.insert(format!("new:{next_new}").as_bytes(), Value::str(b"v"), NOW);
            next_new += 1;
        });
        let seen: HashSet<String> = seen.into_iter().collect();
        for i in 0..200 {
            assert!(seen.contains(&format!("stay:{i}")), "stay:{i} missing");
        }
    }

    #[test]
    fn scan_without_changes_returns_each_key_once() {
        let mut db = Db::new();
        for i in 0..50 {
            set(&mut db, &format!("k{i}"));
        }
        let mut seen = scan_all(&mut db, &["COUNT", "3"], |_, _| {});
        seen.sort();
        let mut want: Vec<String> = (0..50).map(|i| format!("k{i}")).collect();
        want.sort();
        assert_eq!(seen, want);
    }

    #[test]
    fn scan_filters_by_type_match_and_expiry() {
        let mut db = Db::new();
        set(&mut db, "str:1");
        set(&mut db, "str:2");
        db.insert(b"list:1", Value::List(Default::default()), NOW);
        let mut list = List::default();
        list.items.push_back(b"x"[..].into());
        db.insert(b"list:2", Value::List(list.into()), NOW);
        db.insert(b"hash:1", Value::Hash(Default::default()), NOW);
        set(&mut db, "gone");
        db.set_expire(b"gone", Some(NOW + 10), NOW);
        let at = NOW + 10;
        let scan = |db: &Db, args: &[&str]| {
            let mut words = vec!["SCAN", "0", "COUNT", "100"];
            words.extend_from_slice(args);
            let mut ctx = Ctx {
                now_ms: at,
                seed: 0,
            };
            let Ok(Cmd::Read(cmd)) = crate::parse(&argv(&words), &mut ctx) else {
                panic!()
            };
            let Frame::Array(reply) = cmd.run(db, at) else {
                panic!()
            };
            let Frame::Array(items) = &reply[1] else {
                panic!()
            };
            let mut keys: Vec<String> = items
                .iter()
                .map(|f| match f {
                    Frame::Bulk(b) => String::from_utf8(b.to_vec()).unwrap(),
                    _ => panic!(),
                })
                .collect();
            keys.sort();
            keys
        };
        assert_eq!(scan(&db, &["TYPE", "list"]), ["list:1", "list:2"]);
        assert_eq!(scan(&db, &["TYPE", "HASH"]), ["hash:1"]);
        assert_eq!(
            scan(&db, &["TYPE", "string"]),
            ["str:1", "str:2"],
            "the expired key is absent"
        );
        assert_eq!(scan(&db, &["TYPE", "zset"]), Vec::<String>::new());
        assert_eq!(scan(&db, &["MATCH", "*:1"]), ["hash:1", "list:1", "str:1"]);
        assert_eq!(scan(&db, &["MATCH", "*:1", "TYPE", "string"]), ["str:1"]);
        assert_eq!(scan(&db, &["MATCH", "g*"]), Vec::<String>::new());
        assert_eq!(db.len(), 6, "a scan does not delete the expired key");
        // KEYS skips expired keys too, and lists in insertion order.
        let frame = run(&mut db, at, &["KEYS", "*"]);
        let Frame::Array(keys) = frame else { panic!() };
        assert_eq!(keys.len(), 5);
        assert_eq!(keys[0], Frame::bulk("str:1"));
        assert_eq!(run(&mut db, at, &["KEYS", "g*"]), Frame::Array(vec![]));
        assert_eq!(
            run(&mut db, at - 1, &["KEYS", "g*"]),
            Frame::Array(vec![Frame::bulk("gone")])
        );
    }

    #[test]
    fn randomkey_is_a_function_of_the_seed() {
        let mut db = Db::new();
        assert_eq!(run(&mut db, NOW, &["RANDOMKEY"]), Frame::Null);
        for i in 0..20 {
            set(&mut db, &format!("k{i}"));
        }
        let mut picked = HashSet::new();
        for seed in 0..200 {
            let a = run_seeded(&mut db, NOW, seed, &["RANDOMKEY"]);
            let b = run_seeded(&mut db, NOW, seed, &["RANDOMKEY"]);
            assert_eq!(a, b, "same seed, same key");
            let Frame::Bulk(key) = a else { panic!("a key") };
            picked.insert(key);
        }
        assert!(
            picked.len() > 10,
            "different seeds pick different keys: {}",
            picked.len()
        );
    }

    #[test]
    fn randomkey_skips_expired_keys() {
        let mut db = Db::new();
        for i in 0..100 {
            let key = format!("k{i}");
            set(&mut db, &key);
            if i != 37 {
                db.set_expire(key.as_bytes(), Some(NOW + 5), NOW);
            }
        }
        for seed in 0..50 {
            assert_eq!(
                run_seeded(&mut db, NOW + 5, seed, &["RANDOMKEY"]),
                Frame::bulk("k37")
            );
        }
        db.set_expire(b"k37", Some(NOW + 5), NOW);
        assert_eq!(run(&mut db, NOW + 5, &["RANDOMKEY"]), Frame::Null);
        assert_eq!(db.len(), 100, "RANDOMKEY does not delete");
    }

    #[test]
    fn randomkey_draws_its_seed_at_parse_time() {
        let mut ctx = Ctx {
            now_ms: NOW,
            seed: 7,
        };
        let first = crate::parse(&argv(&["RANDOMKEY"]), &mut ctx).unwrap();
        let second = crate::parse(&argv(&["RANDOMKEY"]), &mut ctx).unwrap();
        let seed = |c: &Cmd| match c {
            Cmd::Read(crate::command::Read::Keys(Read::RandomKey { seed })) => *seed,
            _ => panic!("RANDOMKEY"),
        };
        assert_eq!(seed(&first), 7);
        assert_ne!(seed(&first), seed(&second), "a MULTI block draws twice");
    }

    #[test]
    fn expire_conditions() {
        let none = None;
        let at100 = Some(100);
        let nx = ExpireIf {
            nx: true,
            ..ExpireIf::default()
        };
        let xx = ExpireIf {
            xx: true,
            ..ExpireIf::default()
        };
        let gt = ExpireIf {
            gt: true,
            ..ExpireIf::default()
        };
        let lt = ExpireIf {
            lt: true,
            ..ExpireIf::default()
        };
        let xx_gt = ExpireIf {
            xx: true,
            gt: true,
            ..ExpireIf::default()
        };
        let table = [
            (ExpireIf::default(), none, 50, true),
            (ExpireIf::default(), at100, 50, true),
            (nx, none, 50, true),
            (nx, at100, 50, false),
            (xx, none, 50, false),
            (xx, at100, 50, true),
            (gt, none, 50, false),
            (gt, at100, 100, false),
            (gt, at100, 101, true),
            (lt, none, 50, true),
            (lt, at100, 100, false),
            (lt, at100, 99, true),
            (xx_gt, none, 500, false),
            (xx_gt, at100, 500, true),
        ];
        for (cond, current, at, want) in table {
            assert_eq!(
                cond.allows(current, at),
                want,
                "{cond:?} current {current:?} at {at}"
            );
        }
    }

    #[test]
    fn expire_options_through_commands() {
        let mut db = Db::new();
        set(&mut db, "k");
        assert_eq!(run(&mut db, NOW, &["EXPIRE", "k", "100", "XX"]), int(0));
        assert_eq!(run(&mut db, NOW, &["EXPIRE", "k", "100", "GT"]), int(0));
        assert_eq!(run(&mut db, NOW, &["EXPIRE", "k", "100", "NX"]), int(1));
        assert_eq!(db.expire_at(b"k", NOW), Some(Some(NOW + 100_000)));
        assert_eq!(run(&mut db, NOW, &["EXPIRE", "k", "50", "NX"]), int(0));
        assert_eq!(
            run(&mut db, NOW, &["PEXPIRE", "k", "100000", "GT"]),
            int(0),
            "equal is not greater"
        );
        assert_eq!(run(&mut db, NOW, &["PEXPIRE", "k", "100001", "GT"]), int(1));
        assert_eq!(
            run(&mut db, NOW, &["EXPIREAT", "k", "4000000000", "LT"]),
            int(0)
        );
        assert_eq!(
            run(
                &mut db,
                NOW,
                &["PEXPIREAT", "k", &(NOW + 10).to_string(), "LT"]
            ),
            int(1)
        );
        assert_eq!(db.expire_at(b"k", NOW), Some(Some(NOW + 10)));
        // A relative time is relative to the parse clock; a failed condition does not touch.
        let watch = db.watch(b"k", NOW);
        assert_eq!(run(&mut db, NOW, &["EXPIRE", "k", "1", "NX"]), int(0));
        assert!(!db.watch_is_dirty(&watch, NOW));
        assert_eq!(run(&mut db, NOW, &["EXPIRE", "k", "1", "XX", "GT"]), int(1));
        assert!(db.watch_is_dirty(&watch, NOW));
        // A time not after now deletes the key and replies 1.
        assert_eq!(
            run(&mut db, NOW, &["PEXPIREAT", "k", &NOW.to_string()]),
            int(1)
        );
        assert!(!db.contains(b"k", NOW));
        assert_eq!(db.len(), 0);
        assert_eq!(
            run(&mut db, NOW, &["EXPIRE", "k", "100"]),
            int(0),
            "absent key"
        );
        // An expired key is absent to EXPIRE.
        set(&mut db, "k");
        db.set_expire(b"k", Some(NOW + 1), NOW);
        assert_eq!(run(&mut db, NOW + 1, &["EXPIRE", "k", "100"]), int(0));
    }

    #[test]
    fn expire_argument_errors() {
        let mut db = Db::new();
        let err = |f: Frame| match f {
            Frame::Error(e) => e,
            other => panic!("not an error: {other:?}"),
        };
        assert_eq!(
            err(run(&mut db, NOW, &["EXPIRE", "k", "x", "NX", "XX"])),
            "ERR NX and XX, GT or LT options at the same time are not compatible"
        );
        assert_eq!(
            err(run(&mut db, NOW, &["EXPIRE", "k", "x", "lt", "GT"])),
            "ERR GT and LT options at the same time are not compatible"
        );
        assert_eq!(
            err(run(&mut db, NOW, &["EXPIRE", "k", "1", "Maybe"])),
            "ERR Unsupported option Maybe"
        );
        assert_eq!(
            err(run(&mut db, NOW, &["EXPIRE", "k", "x"])),
            "ERR value is not an integer or out of range"
        );
        let limit = ((i64::MAX - NOW) / 1000).to_string();
        let over = ((i64::MAX - NOW) / 1000 + 1).to_string();
        assert_eq!(run(&mut db, NOW, &["EXPIRE", "k", &limit]), int(0));
        assert_eq!(
            err(run(&mut db, NOW, &["EXPIRE", "k", &over])),
            "ERR invalid expire time in 'expire' command"
        );
        assert_eq!(
            run(
                &mut db,
                NOW,
                &["pexpireat", "k", "-9223372036854775808", "gt"]
            ),
            int(0)
        );
    }

    #[test]
    fn ttl_family_with_a_fixed_clock() {
        let mut db = Db::new();
        let ttl = |db: &mut Db, now: i64, cmd: &str| run(db, now, &[cmd, "k"]);
        for cmd in ["TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"] {
            assert_eq!(ttl(&mut db, NOW, cmd), int(-2), "{cmd} of an absent key");
        }
        set(&mut db, "k");
        for cmd in ["TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"] {
            assert_eq!(
                ttl(&mut db, NOW, cmd),
                int(-1),
                "{cmd} of a key without expiry"
            );
        }
        db.set_expire(b"k", Some(NOW + 10_499), NOW);
        assert_eq!(ttl(&mut db, NOW, "PTTL"), int(10_499));
        assert_eq!(
            ttl(&mut db, NOW, "TTL"),
            int(10),
            "rounds (ms + 500) / 1000"
        );
        assert_eq!(ttl(&mut db, NOW - 1, "TTL"), int(11));
        assert_eq!(ttl(&mut db, NOW + 10_000, "TTL"), int(0));
        assert_eq!(ttl(&mut db, NOW + 10_498, "PTTL"), int(1));
        assert_eq!(ttl(&mut db, NOW + 10_499, "PTTL"), int(-2), "expired");
        assert_eq!(ttl(&mut db, NOW, "PEXPIRETIME"), int(NOW + 10_499));
        assert_eq!(
            ttl(&mut db, NOW, "EXPIRETIME"),
            int((NOW + 10_499 + 500) / 1000)
        );
        assert_eq!(
            ttl(&mut db, NOW + 5_000, "EXPIRETIME"),
            ttl(&mut db, NOW, "EXPIRETIME"),
            "absolute"
        );
        db.set_expire(b"k", Some(i64::MAX), NOW);
        assert_eq!(
            ttl(&mut db, NOW, "EXPIRETIME"),
            int(9_223_372_036_854_776),
            "as Redis, no overflow"
        );
        assert_eq!(run(&mut db, NOW, &["PERSIST", "k"]), int(1));
        assert_eq!(run(&mut db, NOW, &["PERSIST", "k"]), int(0));
        assert_eq!(ttl(&mut db, NOW, "TTL"), int(-1));
    }

    #[test]
    fn rename_and_copy_keep_the_expiry() {
        let mut db = Db::new();
        set(&mut db, "a");
        db.set_expire(b"a", Some(NOW + 1000), NOW);
        assert_eq!(run(&mut db, NOW, &["RENAME", "a", "b"]), Frame::OK);
        assert_eq!(db.expire_at(b"b", NOW), Some(Some(NOW + 1000)));
        assert_eq!(run(&mut db, NOW, &["COPY", "b", "c"]), int(1));
        assert_eq!(db.expire_at(b"c", NOW), Some(Some(NOW + 1000)));
        assert_eq!(db.volatile_len(), 2);
        set(&mut db, "d");
        assert_eq!(run(&mut db, NOW, &["COPY", "d", "c"]), int(0));
        assert_eq!(run(&mut db, NOW, &["COPY", "d", "c", "REPLACE"]), int(1));
        assert_eq!(
            db.expire_at(b"c", NOW),
            Some(None),
            "REPLACE takes the source's (absent) expiry"
        );
        assert_eq!(db.volatile_len(), 1);
        // An expired source is absent; an expired destination does not block.
        assert_eq!(
            run(&mut db, NOW + 1000, &["RENAME", "b", "x"]),
            Frame::error("ERR no such key")
        );
        assert_eq!(run(&mut db, NOW + 1000, &["COPY", "b", "x"]), int(0));
        set(&mut db, "e");
        db.set_expire(b"e", Some(NOW + 1), NOW);
        assert_eq!(run(&mut db, NOW + 1, &["RENAMENX", "d", "e"]), int(1));
        assert_eq!(db.expire_at(b"e", NOW + 1), Some(None));
    }

    #[test]
    fn copy_is_deep_and_db_zero_only() {
        let mut db = Db::new();
        let mut list = List::default();
        list.items.push_back(b"x"[..].into());
        db.insert(b"l", Value::List(list.into()), NOW);
        assert_eq!(run(&mut db, NOW, &["COPY", "l", "m", "DB", "0"]), int(1));
        if let Some(Ok(l)) = db.get_mut(b"m", NOW).map(Value::as_list_mut) {
            l.items.push_back(b"y"[..].into());
        }
        assert_eq!(db.get(b"l", NOW).unwrap().as_list().unwrap().items.len(), 1);
        assert_eq!(
            run(&mut db, NOW, &["COPY", "l", "n", "DB", "1"]),
            Frame::error("ERR Copying to another database is not allowed in cluster mode")
        );
        assert_eq!(
            run(&mut db, NOW, &["COPY", "l", "l", "DB", "1"]),
            run(&mut db, NOW, &["COPY", "l", "n", "DB", "15"])
        );
        assert_eq!(
            run(&mut db, NOW, &["COPY", "l", "n", "DB", "1", "DB", "0"]),
            int(1),
            "the last DB counts"
        );
        assert_eq!(
            run(&mut db, NOW, &["COPY", "l", "n", "DB", "16"]),
            Frame::error("ERR DB index is out of range")
        );
        assert_eq!(
            run(&mut db, NOW, &["COPY", "l", "n", "DB", "1", "x"]),
            Frame::error("ERR syntax error")
        );
    }

    #[test]
    fn type_and_object_of_collections() {
        let mut db = Db::new();
        db.insert(b"l", Value::List(Default::default()), NOW);
        db.insert(b"h", Value::Hash(Default::default()), NOW);
        assert_eq!(run(&mut db, NOW, &["TYPE", "l"]), Frame::Simple("list"));
        assert_eq!(run(&mut db, NOW, &["TYPE", "h"]), Frame::Simple("hash"));
        assert_eq!(
            run(&mut db, NOW, &["OBJECT", "ENCODING", "l"]),
            Frame::bulk("quicklist")
        );
        assert_eq!(
            run(&mut db, NOW, &["OBJECT", "ENCODING", "h"]),
            Frame::bulk("listpack")
        );
        assert_eq!(run(&mut db, NOW, &["OBJECT", "REFCOUNT", "h"]), int(1));
        assert_eq!(run(&mut db, NOW, &["OBJECT", "IDLETIME", "h"]), int(0));
        db.set_expire(b"h", Some(NOW + 1), NOW);
        assert_eq!(run(&mut db, NOW + 1, &["TYPE", "h"]), Frame::Simple("none"));
        assert_eq!(
            run(&mut db, NOW + 1, &["OBJECT", "ENCODING", "h"]),
            Frame::Null
        );
    }

    #[test]
    fn flush_and_del_touch_watched_keys() {
        let mut db = Db::new();
        set(&mut db, "a");
        let w = db.watch(b"a", NOW);
        assert_eq!(run(&mut db, NOW, &["DEL", "nokey"]), int(0));
        assert!(!db.watch_is_dirty(&w, NOW));
        assert_eq!(run(&mut db, NOW, &["FLUSHALL", "ASYNC"]), Frame::OK);
        assert!(db.watch_is_dirty(&w, NOW));
        assert_eq!(db.len(), 0);
    }

    #[test]
    fn the_first_key_is_the_first_of_the_key_positions() {
        let shapes: [&[&str]; 5] = [
            &["k"],
            &["a", "b", "c", "d"],
            &["2", "a", "b", "x"],
            &["0", "a"],
            &["ENCODING", "a", "b"],
        ];
        for spec in crate::command::specs() {
            for shape in shapes {
                let mut words = vec![spec.name];
                words.extend_from_slice(shape);
                let args = argv(&words);
                assert_eq!(
                    spec.first_key(&args),
                    spec.key_positions(&args).first().copied(),
                    "{words:?}"
                );
            }
        }
    }

    #[test]
    fn key_positions() {
        let positions = |words: &[&str]| {
            let args = argv(words);
            lookup(args[0].as_ref()).unwrap().key_positions(&args)
        };
        assert_eq!(positions(&["DEL", "a", "b", "c"]), [1, 2, 3]);
        assert_eq!(positions(&["EXISTS", "a"]), [1]);
        assert_eq!(positions(&["TOUCH", "a", "b"]), [1, 2]);
        assert_eq!(positions(&["UNLINK", "a", "b"]), [1, 2]);
        assert_eq!(positions(&["RENAME", "a", "b"]), [1, 2]);
        assert_eq!(positions(&["RENAMENX", "a", "b"]), [1, 2]);
        assert_eq!(positions(&["COPY", "a", "b", "DB", "0", "REPLACE"]), [1, 2]);
        assert_eq!(positions(&["EXPIRE", "a", "10", "NX"]), [1]);
        assert_eq!(positions(&["PEXPIREAT", "a", "10"]), [1]);
        assert_eq!(positions(&["TTL", "a"]), [1]);
        assert_eq!(positions(&["PERSIST", "a"]), [1]);
        assert_eq!(positions(&["TYPE", "a"]), [1]);
        assert_eq!(positions(&["OBJECT", "ENCODING", "a"]), [2]);
        assert!(positions(&["OBJECT", "HELP"]).is_empty());
        let keyless: [&[&str]; 7] = [
            &["KEYS", "*"],
            &["SCAN", "0"],
            &["RANDOMKEY"],
            &["DBSIZE"],
            &["FLUSHALL"],
            &["PING", "x"],
            &["ECHO", "x"],
        ];
        for words in keyless {
            assert!(positions(words).is_empty(), "{words:?}");
        }
        assert!(lookup(b"copy").unwrap().is_write());
        assert!(!lookup(b"object").unwrap().is_write());
        assert!(!lookup(b"ping").unwrap().is_write());
    }
}
