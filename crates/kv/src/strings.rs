//! String commands: GET SET SETNX SETEX PSETEX MGET MSET MSETNX GETSET GETDEL GETEX
//! APPEND STRLEN GETRANGE SETRANGE INCR DECR INCRBY DECRBY INCRBYFLOAT.
//!
//! Relative expiries (`EX`, `PX`, `SETEX`) become absolute Unix milliseconds at parse
//! time, so `apply` needs no clock.

use bytes::Bytes;
use resp::Frame;

use crate::args;
use crate::bytes::CompactBytes;
use crate::command::{Cmd, Ctx, KeySpec, Spec, DENYOOM, FAST, READONLY, WRITE};
use crate::db::Db;
use crate::error::{Error, Result};
use crate::float::F80;
use crate::value::Value;

/// Redis's `proto-max-bulk-len`: the largest string `APPEND`/`SETRANGE` may build.
pub const MAX_STRING_LEN: usize = 512 * 1024 * 1024;

const G: &str = "string";
#[rustfmt::skip]
pub const SPECS: &[Spec] = &[
    Spec::new("get", 2, READONLY | FAST, KeySpec::one(), G, "Get the value of a key", parse_get),
    Spec::new("set", -3, WRITE | DENYOOM, KeySpec::one(), G, "Set the string value of a key", parse_set),
    Spec::new("setnx", 3, WRITE | DENYOOM | FAST, KeySpec::one(), G, "Set the value of a key, only if the key does not exist", parse_setnx),
    Spec::new("setex", 4, WRITE | DENYOOM, KeySpec::one(), G, "Set the value and expiration of a key", parse_setex),
    Spec::new("psetex", 4, WRITE | DENYOOM, KeySpec::one(), G, "Set the value and expiration in milliseconds of a key", parse_setex),
    Spec::new("mget", -2, READONLY | FAST, KeySpec::range(1, -1, 1), G, "Get the values of all the given keys", parse_mget),
    Spec::new("mset", -3, WRITE | DENYOOM, KeySpec::range(1, -1, 2), G, "Set multiple keys to multiple values", parse_mset),
    Spec::new("msetnx", -3, WRITE | DENYOOM, KeySpec::range(1, -1, 2), G, "Set multiple keys to multiple values, only if none of the keys exist", parse_mset),
    Spec::new("getset", 3, WRITE | DENYOOM | FAST, KeySpec::one(), G, "Set the string value of a key and return its old value", parse_getset),
    Spec::new("getdel", 2, WRITE | FAST, KeySpec::one(), G, "Get the value of a key and delete the key", parse_getdel),
    Spec::new("getex", -2, WRITE | FAST, KeySpec::one(), G, "Get the value of a key and optionally set its expiration", parse_getex),
    Spec::new("append", 3, WRITE | DENYOOM | FAST, KeySpec::one(), G, "Append a value to a key", parse_append),
    Spec::new("strlen", 2, READONLY | FAST, KeySpec::one(), G, "Get the length of the value stored in a key", parse_strlen),
    Spec::new("getrange", 4, READONLY, KeySpec::one(), G, "Get a substring of the string stored at a key", parse_getrange),
    Spec::new("setrange", 4, WRITE | DENYOOM, KeySpec::one(), G, "Overwrite part of a string at key starting at the specified offset", parse_setrange),
    Spec::new("incr", 2, WRITE | DENYOOM | FAST, KeySpec::one(), G, "Increment the integer value of a key by one", parse_incr),
    Spec::new("decr", 2, WRITE | DENYOOM | FAST, KeySpec::one(), G, "Decrement the integer value of a key by one", parse_incr),
    Spec::new("incrby", 3, WRITE | DENYOOM | FAST, KeySpec::one(), G, "Increment the integer value of a key by the given amount", parse_incr),
    Spec::new("decrby", 3, WRITE | DENYOOM | FAST, KeySpec::one(), G, "Decrement the integer value of a key by the given number", parse_incr),
    Spec::new("incrbyfloat", 3, WRITE | DENYOOM | FAST, KeySpec::one(), G, "Increment the float value of a key by the given amount", parse_incrbyfloat),
];

/// What happens to a key's expiry when it is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ttl {
    /// Drop any expiry (plain `SET`).
    Clear,
    /// Keep the current expiry (`KEEPTTL`; `GETEX` without options).
    Keep,
    /// Expire at this Unix time in milliseconds.
    At(i64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    Always,
    /// `NX`: only if the key does not exist.
    IfAbsent,
    /// `XX`: only if the key exists.
    IfPresent,
}

/// How `SET`-like commands reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetReply {
    /// `OK`, or null when the condition failed (`SET`, `SETEX`).
    Ok,
    /// The old value (`SET ... GET`, `GETSET`).
    Old,
    /// 1 or 0 (`SETNX`).
    Flag,
}

#[derive(Clone, Debug)]
pub enum Read {
    /// `GET key`
    Get(Bytes),
    /// `MGET key [key ...]`
    MGet(Vec<Bytes>),
    /// `STRLEN key`
    StrLen(Bytes),
    /// `GETRANGE key start end`
    GetRange(Bytes, i64, i64),
}

#[derive(Clone, Debug)]
pub enum Write {
    /// `SET key value [NX | XX] [GET] [EX s | PX ms | EXAT t | PXAT t | KEEPTTL]`
    Set {
        key: Bytes,
        value: Bytes,
        condition: Condition,
        ttl: Ttl,
        reply: SetReply,
    },
    /// `MSET key value [key value ...]`, or `MSETNX` when `only_if_none` is set.
    MSet {
        pairs: Vec<(Bytes, Bytes)>,
        only_if_none: bool,
    },
    /// `GETDEL key`
    GetDel(Bytes),
    /// `GETEX key [EX s | PX ms | EXAT t | PXAT t | PERSIST]`: `ttl` is `Keep` without options.
    ///
    /// A bad expiry value is reported only after the key is found to be a string, as
    /// Redis does, so it travels as an error.
    GetEx {
        key: Bytes,
        ttl: std::result::Result<Ttl, Error>,
    },
    /// `APPEND key value`
    Append(Bytes, Bytes),
    /// `SETRANGE key offset value`
    SetRange(Bytes, usize, Bytes),
    /// `INCR`, `DECR`, `INCRBY`, `DECRBY`
    IncrBy(Bytes, i64),
    /// `INCRBYFLOAT key increment`: `None` if the increment is not a valid float, which
    /// Redis reports only after checking the key's type.
    IncrByFloat(Bytes, Option<F80>),
}

fn read(r: Read) -> Result<Cmd> {
    Ok(Cmd::Read(crate::command::Read::Strings(r)))
}

fn write(w: Write) -> Result<Cmd> {
    Ok(Cmd::Write(crate::command::Write::Strings(w)))
}

fn parse_get(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    read(Read::Get(args[1].clone()))
}

fn parse_mget(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    read(Read::MGet(args[1..].to_vec()))
}

fn parse_strlen(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    read(Read::StrLen(args[1].clone()))
}

fn parse_getrange(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    read(Read::GetRange(
        args[1].clone(),
        args::int(&args[2])?,
        args::int(&args[3])?,
    ))
}

/// The unit of an expiry argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Seconds,
    Millis,
}

/// Turns an `EX`/`PX`/`EXAT`/`PXAT` argument into absolute milliseconds with Redis's
/// checks: not an integer, not positive, or overflowing is an error naming `cmd`.
pub fn expire_arg(arg: &[u8], unit: Unit, relative: bool, now_ms: i64, cmd: &str) -> Result<i64> {
    let v = args::int(arg)?;
    let bad = || Error::InvalidExpire(cmd.to_string());
    if v <= 0 || (unit == Unit::Seconds && v > i64::MAX / 1000) {
        return Err(bad());
    }
    let ms = if unit == Unit::Seconds { v * 1000 } else { v };
    let at = if relative {
        ms.checked_add(now_ms).ok_or_else(bad)?
    } else {
        ms
    };
    if at <= 0 {
        return Err(bad());
    }
    Ok(at)
}

fn parse_set(args: &[Bytes], ctx: &mut Ctx) -> Result<Cmd> {
    let mut condition = Condition::Always;
    let mut get = false;
    let mut keep_ttl = false;
    // (unit, relative, argument index)
    let mut expire: Option<(Unit, bool, usize)> = None;
    let mut i = 3;
    while i < args.len() {
        let opt = &args[i];
        let has_next = i + 1 < args.len();
        let exp_kind = |e: &Option<(Unit, bool, usize)>| e.map(|(u, r, _)| (u, r));
        if args::is(opt, "nx") && condition != Condition::IfPresent {
            condition = Condition::IfAbsent;
        } else if args::is(opt, "xx") && condition != Condition::IfAbsent {
            condition = Condition::IfPresent;
        } else if args::is(opt, "get") {
            get = true;
        } else if args::is(opt, "keepttl") && expire.is_none() {
            keep_ttl = true;
        } else if let Some((unit, relative)) = expire_option(opt) {
            let same = exp_kind(&expire).is_none_or(|k| k == (unit, relative));
            if keep_ttl || !same || !has_next {
                return Err(Error::Syntax);
            }
            expire = Some((unit, relative, i + 1));
            i += 1;
        } else {
            return Err(Error::Syntax);
        }
        i += 1;
    }
    let ttl = match expire {
        Some((unit, relative, at)) => {
            Ttl::At(expire_arg(&args[at], unit, relative, ctx.now_ms, "set")?)
        }
        None if keep_ttl => Ttl::Keep,
        None => Ttl::Clear,
    };
    let reply = if get { SetReply::Old } else { SetReply::Ok };
    write(Write::Set {
        key: args[1].clone(),
        value: args[2].clone(),
        condition,
        ttl,
        reply,
    })
}

/// `EX`, `PX`, `EXAT`, `PXAT` → (unit, relative).
fn expire_option(opt: &[u8]) -> Option<(Unit, bool)> {
    if args::is(opt, "ex") {
        Some((Unit::Seconds, true))
    } else if args::is(opt, "px") {
        Some((Unit::Millis, true))
    } else if args::is(opt, "exat") {
        Some((Unit::Seconds, false))
    } else if args::is(opt, "pxat") {
        Some((Unit::Millis, false))
    } else {
        None
    }
}

fn parse_setnx(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    write(Write::Set {
        key: args[1].clone(),
        value: args[2].clone(),
        condition: Condition::IfAbsent,
        ttl: Ttl::Clear,
        reply: SetReply::Flag,
    })
}

fn parse_setex(args: &[Bytes], ctx: &mut Ctx) -> Result<Cmd> {
    let name = args::name(args);
    let unit = if name == "setex" {
        Unit::Seconds
    } else {
        Unit::Millis
    };
    let at = expire_arg(&args[2], unit, true, ctx.now_ms, &name)?;
    write(Write::Set {
        key: args[1].clone(),
        value: args[3].clone(),
        condition: Condition::Always,
        ttl: Ttl::At(at),
        reply: SetReply::Ok,
    })
}

fn parse_mset(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    if args.len().is_multiple_of(2) {
        return Err(Error::Arity(args::name(args)));
    }
    let pairs = args[1..]
        .chunks(2)
        .map(|p| (p[0].clone(), p[1].clone()))
        .collect();
    write(Write::MSet {
        pairs,
        only_if_none: args::is(&args[0], "msetnx"),
    })
}

fn parse_getset(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    write(Write::Set {
        key: args[1].clone(),
        value: args[2].clone(),
        condition: Condition::Always,
        ttl: Ttl::Clear,
        reply: SetReply::Old,
    })
}

fn parse_getdel(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    write(Write::GetDel(args[1].clone()))
}

fn parse_getex(args: &[Bytes], ctx: &mut Ctx) -> Result<Cmd> {
    let mut ttl = Ttl::Keep;
    let mut persist = false;
    let mut expire: Option<(Unit, bool, usize)> = None;
    let mut i = 2;
    while i < args.len() {
        let opt = &args[i];
        if args::is(opt, "persist") && expire.is_none() {
            persist = true;
        } else if let Some((unit, relative)) = expire_option(opt) {
            let same = expire.is_none_or(|(u, r, _)| (u, r) == (unit, relative));
            if persist || !same || i + 1 >= args.len() {
                return Err(Error::Syntax);
            }
            expire = Some((unit, relative, i + 1));
            i += 1;
        } else {
            return Err(Error::Syntax);
        }
        i += 1;
    }
    if persist {
        ttl = Ttl::Clear;
    }
    let ttl = match expire {
        Some((unit, relative, at)) => {
            expire_arg(&args[at], unit, relative, ctx.now_ms, "getex").map(Ttl::At)
        }
        None => Ok(ttl),
    };
    write(Write::GetEx {
        key: args[1].clone(),
        ttl,
    })
}

fn parse_append(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    write(Write::Append(args[1].clone(), args[2].clone()))
}

fn parse_setrange(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    let offset = args::int(&args[2])?;
    if offset < 0 {
        return Err(Error::err("offset is out of range"));
    }
    // The size limit is checked in apply, after the type, as Redis orders its errors.
    write(Write::SetRange(
        args[1].clone(),
        offset as usize,
        args[3].clone(),
    ))
}

fn parse_incr(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    let name = args::name(args);
    let by = match name.as_str() {
        "incr" => 1,
        "decr" => -1,
        "incrby" => args::int(&args[2])?,
        _ => {
            let v = args::int(&args[2])?;
            if v == i64::MIN {
                return Err(Error::err("decrement would overflow"));
            }
            -v
        }
    };
    write(Write::IncrBy(args[1].clone(), by))
}

fn parse_incrbyfloat(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    write(Write::IncrByFloat(args[1].clone(), F80::parse(&args[2])))
}

/// The string at `key`, `None` if absent, `WRONGTYPE` for another type.
fn get_str<'a>(db: &'a Db, key: &[u8], now_ms: i64) -> Result<Option<&'a CompactBytes>> {
    db.get(key, now_ms).map(Value::as_str).transpose()
}

fn bulk_or_null(v: Option<&CompactBytes>) -> Frame {
    match v {
        Some(s) => Frame::bulk(&**s),
        None => Frame::Null,
    }
}

impl Read {
    pub fn run(&self, db: &Db, now_ms: i64) -> Result<Frame> {
        match self {
            Read::Get(key) => Ok(bulk_or_null(get_str(db, key, now_ms)?)),
            Read::MGet(keys) => Ok(Frame::Array(
                keys.iter()
                    .map(|k| match db.get(k, now_ms) {
                        Some(Value::Str(s)) => Frame::bulk(&**s),
                        _ => Frame::Null,
                    })
                    .collect(),
            )),
            Read::StrLen(key) => Ok(Frame::Integer(
                get_str(db, key, now_ms)?.map_or(0, |s| s.len() as i64),
            )),
            Read::GetRange(key, start, end) => {
                let Some(s) = get_str(db, key, now_ms)? else {
                    return Ok(Frame::bulk(""));
                };
                Ok(Frame::bulk(substr(s, *start, *end)))
            }
        }
    }
}

/// `GETRANGE`'s index rules (Redis 7.0).
fn substr(s: &[u8], start: i64, end: i64) -> &[u8] {
    let len = s.len() as i64;
    if start < 0 && end < 0 && start > end {
        return b"";
    }
    let mut start = if start < 0 { len + start } else { start };
    let mut end = if end < 0 { len + end } else { end };
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    if len == 0 || start > end {
        return b"";
    }
    &s[start as usize..=end as usize]
}

impl Write {
    pub fn apply(&self, db: &mut Db, now_ms: i64) -> Result<Frame> {
        match self {
            Write::Set {
                key,
                value,
                condition,
                ttl,
                reply,
            } => {
                let old = match db.get(key, now_ms) {
                    None => None,
                    Some(v) if *reply == SetReply::Old => Some(v.as_str()?.clone()),
                    Some(_) => Some(CompactBytes::new(b"")),
                };
                let exists = old.is_some();
                let go = match condition {
                    Condition::Always => true,
                    Condition::IfAbsent => !exists,
                    Condition::IfPresent => exists,
                };
                if go {
                    let v = Value::str(value);
                    match ttl {
                        Ttl::Keep => db.insert_keep_ttl(key, v, now_ms),
                        Ttl::Clear => {
                            db.insert(key, v, now_ms);
                        }
                        Ttl::At(at) => {
                            db.insert(key, v, now_ms);
                            db.set_expire(key, Some(*at), now_ms);
                        }
                    }
                }
                Ok(match reply {
                    SetReply::Ok if go => Frame::OK,
                    SetReply::Ok => Frame::Null,
                    SetReply::Old => bulk_or_null(old.as_ref()),
                    SetReply::Flag => Frame::Integer(go as i64),
                })
            }
            Write::MSet {
                pairs,
                only_if_none,
            } => {
                if *only_if_none && pairs.iter().any(|(k, _)| db.contains(k, now_ms)) {
                    return Ok(Frame::Integer(0));
                }
                for (k, v) in pairs {
                    db.insert(k, Value::str(v), now_ms);
                }
                Ok(if *only_if_none {
                    Frame::Integer(1)
                } else {
                    Frame::OK
                })
            }
            Write::GetDel(key) => {
                let Some(s) = get_str(db, key, now_ms)? else {
                    return Ok(Frame::Null);
                };
                let reply = Frame::bulk(&**s);
                db.remove(key, now_ms);
                Ok(reply)
            }
            Write::GetEx { key, ttl } => {
                let Some(s) = get_str(db, key, now_ms)? else {
                    return Ok(Frame::Null);
                };
                let reply = Frame::bulk(&**s);
                match ttl.clone()? {
                    Ttl::Keep => {}
                    Ttl::Clear => {
                        if db.expire_at(key, now_ms).flatten().is_some() {
                            db.set_expire(key, None, now_ms);
                        }
                    }
                    Ttl::At(at) => {
                        db.set_expire(key, Some(at), now_ms);
                    }
                }
                Ok(reply)
            }
            Write::Append(key, value) => {
                let old = get_str(db, key, now_ms)?;
                let len = old.map_or(0, |s| s.len()) + value.len();
                if len > MAX_STRING_LEN {
                    return Err(Error::StringTooLong);
                }
                // Appending to a missing key creates an ordinary string; appending to an
                // existing one leaves Redis's `raw` encoding.
                let created = old.is_none();
                let mut buf = Vec::with_capacity(len);
                buf.extend_from_slice(old.map_or(&b""[..], |s| s));
                buf.extend_from_slice(value);
                let s = if created {
                    CompactBytes::from(buf)
                } else {
                    CompactBytes::raw(buf)
                };
                db.insert_keep_ttl(key, Value::Str(s), now_ms);
                Ok(Frame::Integer(len as i64))
            }
            Write::SetRange(key, offset, value) => {
                let old = get_str(db, key, now_ms)?;
                let old_len = old.map_or(0, |s| s.len());
                if value.is_empty() {
                    return Ok(Frame::Integer(old_len as i64));
                }
                if *offset as u64 + value.len() as u64 > MAX_STRING_LEN as u64 {
                    return Err(Error::StringTooLong);
                }
                let len = old_len.max(offset + value.len());
                let mut buf = Vec::with_capacity(len);
                buf.extend_from_slice(old.map_or(&b""[..], |s| s));
                buf.resize(len, 0);
                buf[*offset..offset + value.len()].copy_from_slice(value);
                db.insert_keep_ttl(key, Value::Str(CompactBytes::raw(buf)), now_ms);
                Ok(Frame::Integer(len as i64))
            }
            Write::IncrBy(key, by) => {
                let current = match get_str(db, key, now_ms)? {
                    Some(s) => args::int(s)?,
                    None => 0,
                };
                let next = current.checked_add(*by).ok_or(Error::Overflow)?;
                let mut buf = [0u8; 20];
                let text = resp::frame::format_i64(next, &mut buf);
                db.insert_keep_ttl(key, Value::str(text), now_ms);
                Ok(Frame::Integer(next))
            }
            Write::IncrByFloat(key, by) => {
                let current = match get_str(db, key, now_ms)? {
                    Some(s) => F80::parse(s).ok_or(Error::NotFloat)?,
                    None => F80::ZERO,
                };
                let by = by.ok_or(Error::NotFloat)?;
                let next = current
                    .checked_add(by)
                    .ok_or_else(|| Error::err("increment would produce NaN or Infinity"))?;
                let text = next.format_human();
                // Redis stores the result as an `embstr` even when it looks like an integer.
                db.insert_keep_ttl(key, Value::Str(CompactBytes::text(text.as_bytes())), now_ms);
                Ok(Frame::bulk(text))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn getrange_rules() {
        assert_eq!(substr(b"Hello", 0, 3), b"Hell");
        assert_eq!(substr(b"Hello", -3, -1), b"llo");
        assert_eq!(substr(b"Hello", 0, -100), b"H");
        assert_eq!(substr(b"Hello", -1, -5), b"");
        assert_eq!(substr(b"Hello", 10, 20), b"");
        assert_eq!(substr(b"", 0, -1), b"");
    }

    #[test]
    fn incrbyfloat_stores_the_reply() {
        let mut db = Db::new();
        let by = |s: &str| Write::IncrByFloat(Bytes::from("f"), F80::parse(s.as_bytes()));
        db.insert(b"f", Value::str(b"10.5"), 0);
        assert_eq!(by("0.1").apply(&mut db, 0), Ok(Frame::bulk("10.6")));
        assert_eq!(by("-5").apply(&mut db, 0), Ok(Frame::bulk("5.6")));
        assert_eq!(
            by("2.0e2").apply(&mut db, 0),
            Ok(Frame::bulk("205.60000000000000001"))
        );
        assert_eq!(
            get_str(&db, b"f", 0).ok().flatten().map(|s| s.to_vec()),
            Some(b"205.60000000000000001".to_vec())
        );
        assert_eq!(by("abc").apply(&mut db, 0), Err(Error::NotFloat));
        // Redis checks the type before the increment.
        db.insert(b"f", Value::List(Default::default()), 0);
        assert_eq!(by("abc").apply(&mut db, 0), Err(Error::WrongType));
    }
}
