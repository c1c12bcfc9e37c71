//! Sorted set commands: ZADD ZINCRBY ZSCORE ZMSCORE ZCARD ZCOUNT ZLEXCOUNT ZRANK ZREVRANK
//! ZRANGE ZRANGESTORE ZRANGEBYSCORE ZREVRANGEBYSCORE ZRANGEBYLEX ZREVRANGEBYLEX ZREVRANGE
//! ZREM ZREMRANGEBYRANK ZREMRANGEBYSCORE ZREMRANGEBYLEX ZPOPMIN ZPOPMAX ZMPOP ZRANDMEMBER
//! ZUNIONSTORE ZINTERSTORE ZDIFFSTORE ZUNION ZINTER ZDIFF ZINTERCARD ZSCAN.
//!
//! A [`ZSet`] keeps member → score and the `(score, member)` order. What Redis does
//! differently for its two encodings is followed where a reply shows it: `ZSCAN` of a
//! small (listpack) set returns everything in order with cursor 0 and prints integral
//! scores as integers, a large (skiplist) one is scanned by position; lexicographic ranges
//! walk the set as Redis's listpack code does (which only means something when all
//! scores are equal).
//!
//! Replies with scores: RESP2 wants one flat array `member, score, member, score`, Redis
//! 7.0's RESP3 an array of `[member, score]` pairs: [`pairs_reply`] builds a
//! [`Frame::Pairs`], which encodes as either. Exceptions, as in Redis: `ZPOPMIN`/`ZPOPMAX`
//! without a count reply one flat `[member, score]`, `ZMPOP` nests its pairs in both
//! protocols, and `ZSCAN` replies scores as strings.
//!
//! Randomness (`ZRANDMEMBER`) is drawn from [`Ctx::seed`] at parse time.

use std::collections::HashSet;
use std::ops::Bound;

use bytes::Bytes;
use resp::Frame;

use crate::args;
use crate::bytes::CompactBytes;
use crate::command::{Cmd, Ctx, KeySpec, Spec, DENYOOM, FAST, RANDOM, READONLY, WRITE};
use crate::db::Db;
use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::scan::{self, ScanArgs};
use crate::value::{Score, SetValue, Value, ZSet};

/// The longest reply `ZRANDMEMBER` with a negative count builds. Redis has no limit (it
/// would stream the reply until memory runs out); a node must not fall over on one
/// command, so larger counts are refused with `value is out of range`.
pub const MAX_RANDOM_REPLY: u64 = 1 << 24;

const G: &str = "sorted-set";
const RW: u32 = WRITE;
const RO: u32 = READONLY;
#[rustfmt::skip]
pub const SPECS: &[Spec] = &[
    Spec::new("zadd", -4, RW | DENYOOM | FAST, KeySpec::one(), G, "Add one or more members to a sorted set, or update its score if it already exists", parse_zadd),
    Spec::new("zincrby", 4, RW | DENYOOM | FAST, KeySpec::one(), G, "Increment the score of a member in a sorted set", parse_zincrby),
    Spec::new("zscore", 3, RO | FAST, KeySpec::one(), G, "Get the score associated with the given member in a sorted set", parse_zscore),
    Spec::new("zmscore", -3, RO | FAST, KeySpec::one(), G, "Get the score associated with the given members in a sorted set", parse_zmscore),
    Spec::new("zcard", 2, RO | FAST, KeySpec::one(), G, "Get the number of members in a sorted set", parse_zcard),
    Spec::new("zcount", 4, RO | FAST, KeySpec::one(), G, "Count the members in a sorted set with scores within the given values", parse_zcount),
    Spec::new("zlexcount", 4, RO | FAST, KeySpec::one(), G, "Count the number of members in a sorted set between a given lexicographical range", parse_zlexcount),
    Spec::new("zrank", 3, RO | FAST, KeySpec::one(), G, "Determine the index of a member in a sorted set", parse_zrank),
    Spec::new("zrevrank", 3, RO | FAST, KeySpec::one(), G, "Determine the index of a member in a sorted set, with scores ordered from high to low", parse_zrank),
    Spec::new("zrange", -4, RO, KeySpec::one(), G, "Return a range of members in a sorted set", parse_zrange),
    Spec::new("zrangestore", -5, RW | DENYOOM, KeySpec::range(1, 2, 1), G, "Store a range of members from sorted set into another key", parse_zrangestore),
    Spec::new("zrangebyscore", -4, RO, KeySpec::one(), G, "Return a range of members in a sorted set, by score", parse_zrange),
    Spec::new("zrevrangebyscore", -4, RO, KeySpec::one(), G, "Return a range of members in a sorted set, by score, with scores ordered from high to low", parse_zrange),
    Spec::new("zrangebylex", -4, RO, KeySpec::one(), G, "Return a range of members in a sorted set, by lexicographical range", parse_zrange),
    Spec::new("zrevrangebylex", -4, RO, KeySpec::one(), G, "Return a range of members in a sorted set, by lexicographical range, ordered from higher to lower strings", parse_zrange),
    Spec::new("zrevrange", -4, RO, KeySpec::one(), G, "Return a range of members in a sorted set, by index, with scores ordered from high to low", parse_zrange),
    Spec::new("zrem", -3, RW | FAST, KeySpec::one(), G, "Remove one or more members from a sorted set", parse_zrem),
    Spec::new("zremrangebyrank", 4, RW, KeySpec::one(), G, "Remove all members in a sorted set within the given indexes", parse_zremrange),
    Spec::new("zremrangebyscore", 4, RW, KeySpec::one(), G, "Remove all members in a sorted set within the given scores", parse_zremrange),
    Spec::new("zremrangebylex", 4, RW, KeySpec::one(), G, "Remove all members in a sorted set between the given lexicographical range", parse_zremrange),
    Spec::new("zpopmin", -2, RW | FAST, KeySpec::one(), G, "Remove and return members with the lowest scores in a sorted set", parse_zpop),
    Spec::new("zpopmax", -2, RW | FAST, KeySpec::one(), G, "Remove and return members with the highest scores in a sorted set", parse_zpop),
    Spec::new("zmpop", -4, RW, KeySpec::numkeys(1, false), G, "Remove and return members with scores in a sorted set", parse_zmpop),
    Spec::new("zrandmember", -2, RO | RANDOM, KeySpec::one(), G, "Get one or multiple random elements from a sorted set", parse_zrandmember),
    Spec::new("zunionstore", -4, RW | DENYOOM, KeySpec::numkeys(2, true), G, "Add multiple sorted sets and store the resulting sorted set in a new key", parse_setop_store),
    Spec::new("zinterstore", -4, RW | DENYOOM, KeySpec::numkeys(2, true), G, "Intersect multiple sorted sets and store the resulting sorted set in a new key", parse_setop_store),
    Spec::new("zdiffstore", -4, RW | DENYOOM, KeySpec::numkeys(2, true), G, "Subtract multiple sorted sets and store the resulting sorted set in a new key", parse_setop_store),
    Spec::new("zunion", -3, RO, KeySpec::numkeys(1, false), G, "Add multiple sorted sets", parse_setop),
    Spec::new("zinter", -3, RO, KeySpec::numkeys(1, false), G, "Intersect multiple sorted sets", parse_setop),
    Spec::new("zdiff", -3, RO, KeySpec::numkeys(1, false), G, "Subtract multiple sorted sets", parse_setop),
    Spec::new("zintercard", -3, RO, KeySpec::numkeys(1, false), G, "Intersect multiple sorted sets and return the cardinality of the result", parse_setop),
    Spec::new("zscan", -3, RO, KeySpec::one(), G, "Incrementally iterate sorted sets elements and associated scores", parse_zscan),
];

/// `ZADD`'s options (`ZINCRBY` is `ZADD key INCR increment member`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AddFlags {
    pub nx: bool,
    pub xx: bool,
    pub gt: bool,
    pub lt: bool,
    pub ch: bool,
    pub incr: bool,
}

/// A score interval, as `ZRANGEBYSCORE` takes it (`(1.5`, `-inf`, `+inf`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoreRange {
    pub min: f64,
    pub min_ex: bool,
    pub max: f64,
    pub max_ex: bool,
}

impl ScoreRange {
    fn gte_min(&self, s: f64) -> bool {
        if self.min_ex {
            s > self.min
        } else {
            s >= self.min
        }
    }

    fn lte_max(&self, s: f64) -> bool {
        if self.max_ex {
            s < self.max
        } else {
            s <= self.max
        }
    }
}

/// One end of a lexicographic range: `-`, `+`, `[member` or `(member`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LexBound {
    NegInf,
    PosInf,
    Incl(Bytes),
    Excl(Bytes),
}

impl LexBound {
    /// Orders bounds as Redis's `sdscmplex` does (`-` below everything, `+` above).
    fn cmp(&self, other: &LexBound) -> std::cmp::Ordering {
        fn key(b: &LexBound) -> (u8, &[u8]) {
            match b {
                LexBound::NegInf => (0, b""),
                LexBound::PosInf => (2, b""),
                LexBound::Incl(m) | LexBound::Excl(m) => (1, m),
            }
        }
        key(self).cmp(&key(other))
    }

    /// `-` and `+` count as exclusive, as in Redis.
    fn exclusive(&self) -> bool {
        !matches!(self, LexBound::Incl(_))
    }
}

/// A lexicographic interval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LexRange {
    pub min: LexBound,
    pub max: LexBound,
}

impl LexRange {
    fn gte_min(&self, m: &[u8]) -> bool {
        match &self.min {
            LexBound::NegInf => true,
            LexBound::PosInf => false,
            LexBound::Incl(x) => m >= &x[..],
            LexBound::Excl(x) => m > &x[..],
        }
    }

    fn lte_max(&self, m: &[u8]) -> bool {
        match &self.max {
            LexBound::NegInf => false,
            LexBound::PosInf => true,
            LexBound::Incl(x) => m <= &x[..],
            LexBound::Excl(x) => m < &x[..],
        }
    }

    /// True for a range that can hold nothing (`min > max`, or equal with an open end).
    fn is_empty(&self) -> bool {
        match self.min.cmp(&self.max) {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Equal => self.min.exclusive() || self.max.exclusive(),
            std::cmp::Ordering::Less => false,
        }
    }
}

/// What a range selects by.
#[derive(Clone, Debug, PartialEq)]
pub enum By {
    /// `start stop` indexes, negative from the end.
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange),
}

/// A parsed `ZRANGE`-family range.
#[derive(Clone, Debug, PartialEq)]
pub struct RangeQuery {
    pub by: By,
    pub rev: bool,
    /// `LIMIT offset count` (score and lex ranges only); `limit < 0` means no limit.
    pub offset: i64,
    pub limit: i64,
}

/// Which set operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    Union,
    Inter,
    Diff,
    /// `ZINTERCARD`: the size of the intersection, counting stops at `limit` (0: none).
    InterCard(u64),
}

/// How scores of one member in several inputs combine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aggregate {
    Sum,
    Min,
    Max,
}

/// `numkeys key [key ...] [WEIGHTS ...] [AGGREGATE ...] [WITHSCORES]`.
#[derive(Clone, Debug, PartialEq)]
pub struct SetOp {
    pub kind: OpKind,
    pub keys: Vec<Bytes>,
    pub weights: Vec<f64>,
    pub aggregate: Aggregate,
    pub withscores: bool,
    /// An error in the options. Redis checks the input keys' types before it reads the
    /// options, so this is replied only once every input key has the right type.
    pub deferred: Option<Error>,
}

#[derive(Clone, Debug)]
pub enum Read {
    /// `ZSCORE key member`
    Score(Bytes, Bytes),
    /// `ZMSCORE key member [member ...]`
    MScore(Bytes, Vec<Bytes>),
    /// `ZCARD key`
    Card(Bytes),
    /// `ZCOUNT key min max`
    Count(Bytes, ScoreRange),
    /// `ZLEXCOUNT key min max`
    LexCount(Bytes, LexRange),
    /// `ZRANK key member` / `ZREVRANK key member` (`rev`)
    Rank {
        key: Bytes,
        member: Bytes,
        rev: bool,
    },
    /// `ZRANGE key start stop [BYSCORE | BYLEX] [REV] [LIMIT offset count] [WITHSCORES]`,
    /// and `ZRANGEBYSCORE`, `ZREVRANGEBYSCORE`, `ZRANGEBYLEX`, `ZREVRANGEBYLEX`, `ZREVRANGE`.
    Range {
        key: Bytes,
        query: RangeQuery,
        withscores: bool,
    },
    /// `ZRANDMEMBER key [count [WITHSCORES]]`
    RandMember {
        key: Bytes,
        count: Option<i64>,
        withscores: bool,
        seed: u64,
    },
    /// `ZUNION`, `ZINTER`, `ZDIFF numkeys key [key ...] [WEIGHTS w ...] [AGGREGATE SUM|MIN|MAX]
    /// [WITHSCORES]` and `ZINTERCARD numkeys key [key ...] [LIMIT limit]`
    SetOp(SetOp),
    /// `ZSCAN key cursor [MATCH pattern] [COUNT count]`: options checked after the key,
    /// as in Redis.
    Scan {
        key: Bytes,
        cursor: u64,
        opts: std::result::Result<ScanArgs, Error>,
    },
}

#[derive(Clone, Debug)]
pub enum Write {
    /// `ZADD key [NX | XX] [GT | LT] [CH] [INCR] score member [score member ...]`, and
    /// `ZINCRBY key increment member`.
    Add {
        key: Bytes,
        flags: AddFlags,
        pairs: Vec<(f64, Bytes)>,
    },
    /// `ZREM key member [member ...]`
    Rem(Bytes, Vec<Bytes>),
    /// `ZREMRANGEBYRANK key start stop`, `ZREMRANGEBYSCORE key min max`,
    /// `ZREMRANGEBYLEX key min max`
    RemRange(Bytes, By),
    /// `ZPOPMIN key [count]` / `ZPOPMAX key [count]` (`max`). Without a count the reply
    /// is one flat `[member, score]`.
    Pop {
        key: Bytes,
        max: bool,
        count: Option<u64>,
    },
    /// `ZMPOP numkeys key [key ...] MIN | MAX [COUNT count]`
    MPop {
        keys: Vec<Bytes>,
        max: bool,
        count: u64,
    },
    /// `ZRANGESTORE dst src min max [BYSCORE | BYLEX] [REV] [LIMIT offset count]`
    RangeStore {
        dst: Bytes,
        src: Bytes,
        query: RangeQuery,
    },
    /// `ZUNIONSTORE`, `ZINTERSTORE`, `ZDIFFSTORE destination numkeys key [key ...] ...`
    Store { dst: Bytes, op: SetOp },
}

fn read(r: Read) -> Result<Cmd> {
    Ok(Cmd::Read(crate::command::Read::ZSets(r)))
}

fn write(w: Write) -> Result<Cmd> {
    Ok(Cmd::Write(crate::command::Write::ZSets(w)))
}

// ---------------------------------------------------------------------------------------
// Number parsing with C's `strtod` rules.

/// C's `isspace`.
fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Parses all of `s` as C's `strtod` would (decimal, hex, `inf`, `infinity`, `nan`, no
/// surrounding space), or `None` if `strtod` would stop early. Also says whether
/// `strtod` would set `ERANGE` with an infinite or zero result (overflow, underflow).
fn strtod_all(s: &[u8]) -> Option<(f64, bool)> {
    let text = std::str::from_utf8(s).ok()?;
    let (negative, body) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if body.len() > 2 && body.as_bytes()[0] == b'0' && matches!(body.as_bytes()[1], b'x' | b'X') {
        let v = parse_hex_float(&body[2..])?;
        return Some((if negative { -v } else { v }, false));
    }
    let lower = body.to_ascii_lowercase();
    if lower == "inf" || lower == "infinity" || lower == "nan" {
        let v = if lower == "nan" {
            f64::NAN
        } else {
            f64::INFINITY
        };
        return Some((if negative { -v } else { v }, false));
    }
    // Rust's decimal grammar is C's, once the words above are handled.
    if !body
        .bytes()
        .next()
        .is_some_and(|c| c.is_ascii_digit() || c == b'.')
    {
        return None;
    }
    let v: f64 = text.parse().ok()?;
    let mantissa = body.split(['e', 'E']).next().unwrap_or("");
    let overflow = v.is_infinite();
    let underflow = v == 0.0 && mantissa.bytes().any(|c| (b'1'..=b'9').contains(&c));
    Some((v, overflow || underflow))
}

/// The part of a C hex float after `0x`: `h[.h][p[+-]d]`, at least one hex digit.
fn parse_hex_float(s: &str) -> Option<f64> {
    let (mantissa, exp) = match s.find(['p', 'P']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut value = 0.0f64;
    let mut exp2: i64 = 0;
    for c in int.chars() {
        value = value * 16.0 + c.to_digit(16)? as f64;
    }
    for c in frac.chars() {
        value = value * 16.0 + c.to_digit(16)? as f64;
        exp2 -= 4;
    }
    if let Some(e) = exp {
        let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
        if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let n: i64 = digits.parse().unwrap_or(i64::MAX / 4).min(100_000);
        exp2 += if e.starts_with('-') { -n } else { n };
    }
    // Two steps so that a large mantissa with a very negative exponent stays finite.
    let half = (exp2 / 2).clamp(-2000, 2000) as i32;
    let rest = (exp2 - exp2 / 2).clamp(-2000, 2000) as i32;
    Some(value * 2f64.powi(half) * 2f64.powi(rest))
}

/// A score argument (`ZADD`, `ZINCRBY`, `WEIGHTS`) with Redis's `getDoubleFromObject`
/// rules: `strtod` of the whole text, no leading space, no overflow or underflow to 0,
/// no NaN.
fn score_value(arg: &[u8]) -> Option<f64> {
    if arg.is_empty() || is_c_space(arg[0]) {
        return None;
    }
    match strtod_all(arg) {
        Some((v, false)) if !v.is_nan() => Some(v),
        _ => None,
    }
}

fn score_arg(arg: &[u8]) -> Result<f64> {
    score_value(arg).ok_or(Error::NotFloat)
}

/// One end of a score range with Redis's `zslParseRange` rules (`strtod`: leading space
/// allowed, an empty string is 0, NaN refused); `(` makes it exclusive.
fn range_end(arg: &[u8]) -> Option<(f64, bool)> {
    let (text, ex) = match arg.first() {
        Some(b'(') => (&arg[1..], true),
        _ => (arg, false),
    };
    if text.is_empty() {
        return Some((0.0, ex));
    }
    let start = text.iter().position(|&c| !is_c_space(c))?;
    match strtod_all(&text[start..]) {
        Some((v, _)) if !v.is_nan() => Some((v, ex)),
        _ => None,
    }
}

fn score_range(min: &[u8], max: &[u8]) -> Result<ScoreRange> {
    match (range_end(min), range_end(max)) {
        (Some((min, min_ex)), Some((max, max_ex))) => Ok(ScoreRange {
            min,
            min_ex,
            max,
            max_ex,
        }),
        _ => Err(Error::MinMaxNotFloat),
    }
}

fn lex_bound(arg: &Bytes) -> Option<LexBound> {
    match arg.first()? {
        b'+' if arg.len() == 1 => Some(LexBound::PosInf),
        b'-' if arg.len() == 1 => Some(LexBound::NegInf),
        b'(' => Some(LexBound::Excl(arg.slice(1..))),
        b'[' => Some(LexBound::Incl(arg.slice(1..))),
        _ => None,
    }
}

fn lex_range(min: &Bytes, max: &Bytes) -> Result<LexRange> {
    match (lex_bound(min), lex_bound(max)) {
        (Some(min), Some(max)) => Ok(LexRange { min, max }),
        _ => Err(Error::MinMaxNotStringRange),
    }
}

/// Redis's `getRangeLongFromObjectOrReply(.., 0, LONG_MAX, msg)`: a non-negative
/// integer; a non-integer and a negative number both get `msg`.
fn non_negative(arg: &[u8], msg: &str) -> Result<u64> {
    match resp::request::parse_int(arg) {
        Some(n) if n >= 0 => Ok(n as u64),
        _ => Err(Error::err(msg)),
    }
}

/// Like [`non_negative`], 0 refused too (`ZMPOP`'s numkeys and count).
fn positive(arg: &[u8], msg: &str) -> Result<u64> {
    match resp::request::parse_int(arg) {
        Some(n) if n >= 1 => Ok(n as u64),
        _ => Err(Error::err(msg)),
    }
}

// ---------------------------------------------------------------------------------------
// Parsing.

fn parse_zadd(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    let mut flags = AddFlags::default();
    let mut i = 2;
    while i < args.len() {
        let a = &args[i];
        if args::is(a, "nx") {
            flags.nx = true;
        } else if args::is(a, "xx") {
            flags.xx = true;
        } else if args::is(a, "ch") {
            flags.ch = true;
        } else if args::is(a, "incr") {
            flags.incr = true;
        } else if args::is(a, "gt") {
            flags.gt = true;
        } else if args::is(a, "lt") {
            flags.lt = true;
        } else {
            break;
        }
        i += 1;
    }
    let rest = &args[i..];
    if rest.is_empty() || !rest.len().is_multiple_of(2) {
        return Err(Error::Syntax);
    }
    if flags.nx && flags.xx {
        return Err(Error::err(
            "XX and NX options at the same time are not compatible",
        ));
    }
    if (flags.nx && (flags.gt || flags.lt)) || (flags.gt && flags.lt) {
        return Err(Error::err(
            "GT, LT, and/or NX options at the same time are not compatible",
        ));
    }
    if flags.incr && rest.len() > 2 {
        return Err(Error::err(
            "INCR option supports a single increment-element pair",
        ));
    }
    let pairs = rest
        .chunks(2)
        .map(|p| Ok((score_arg(&p[0])?, p[1].clone())))
        .collect::<Result<Vec<_>>>()?;
    write(Write::Add {
        key: args[1].clone(),
        flags,
        pairs,
    })
}

fn parse_zincrby(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    let by = score_arg(&args[2])?;
    let flags = AddFlags {
        incr: true,
        ..AddFlags::default()
    };
    write(Write::Add {
        key: args[1].clone(),
        flags,
        pairs: vec![(by, args[3].clone())],
    })
}

fn parse_zscore(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    read(Read::Score(args[1].clone(), args[2].clone()))
}

fn parse_zmscore(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    read(Read::MScore(args[1].clone(), args[2..].to_vec()))
}

fn parse_zcard(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    read(Read::Card(args[1].clone()))
}

fn parse_zcount(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    read(Read::Count(
        args[1].clone(),
        score_range(&args[2], &args[3])?,
    ))
}

fn parse_zlexcount(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    read(Read::LexCount(
        args[1].clone(),
        lex_range(&args[2], &args[3])?,
    ))
}

fn parse_zrank(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    let rev = args::is(&args[0], "zrevrank");
    read(Read::Rank {
        key: args[1].clone(),
        member: args[2].clone(),
        rev,
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ByKind {
    Rank,
    Score,
    Lex,
}

/// Redis's `zrangeGenericCommand` argument rules: the key at `at`, the range after it,
/// then options. `by`/`rev` are fixed by the command name (`ZRANGEBYSCORE`, ...) or, for
/// `ZRANGE` and `ZRANGESTORE`, chosen by options. Returns the query and `WITHSCORES`.
fn parse_range_args(
    args: &[Bytes],
    at: usize,
    store: bool,
    fixed_by: Option<ByKind>,
    fixed_rev: Option<bool>,
) -> Result<(RangeQuery, bool)> {
    let mut by = fixed_by;
    let mut rev = fixed_rev;
    let mut withscores = false;
    let mut limit: Option<(i64, i64)> = None;
    let mut j = at + 3;
    while j < args.len() {
        let a = &args[j];
        let left = args.len() - j - 1;
        if !store && args::is(a, "withscores") {
            withscores = true;
        } else if args::is(a, "limit") && left >= 2 {
            limit = Some((args::int(&args[j + 1])?, args::int(&args[j + 2])?));
            j += 2;
        } else if fixed_rev.is_none() && rev.is_none() && args::is(a, "rev") {
            rev = Some(true);
        } else if fixed_by.is_none() && by.is_none() && args::is(a, "bylex") {
            by = Some(ByKind::Lex);
        } else if fixed_by.is_none() && by.is_none() && args::is(a, "byscore") {
            by = Some(ByKind::Score);
        } else {
            return Err(Error::Syntax);
        }
        j += 1;
    }
    let rev = rev.unwrap_or(false);
    let by = by.unwrap_or(ByKind::Rank);
    // Redis refuses LIMIT by rank only when its count is not -1 (no limit).
    if limit.is_some_and(|(_, count)| count != -1) && by == ByKind::Rank {
        return Err(Error::err(
            "syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if withscores && by == ByKind::Lex {
        return Err(Error::err(
            "syntax error, WITHSCORES not supported in combination with BYLEX",
        ));
    }
    let (mut min, mut max) = (&args[at + 1], &args[at + 2]);
    if rev && by != ByKind::Rank {
        std::mem::swap(&mut min, &mut max);
    }
    let by = match by {
        ByKind::Rank => By::Rank(args::int(min)?, args::int(max)?),
        ByKind::Score => By::Score(score_range(min, max)?),
        ByKind::Lex => By::Lex(lex_range(min, max)?),
    };
    let (offset, limit) = limit.unwrap_or((0, -1));
    Ok((
        RangeQuery {
            by,
            rev,
            offset,
            limit,
        },
        withscores,
    ))
}

fn parse_zrange(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    let (by, rev) = match args::name(args).as_str() {
        "zrangebyscore" => (Some(ByKind::Score), Some(false)),
        "zrevrangebyscore" => (Some(ByKind::Score), Some(true)),
        "zrangebylex" => (Some(ByKind::Lex), Some(false)),
        "zrevrangebylex" => (Some(ByKind::Lex), Some(true)),
        "zrevrange" => (Some(ByKind::Rank), Some(true)),
        _ => (None, None),
    };
    let (query, withscores) = parse_range_args(args, 1, false, by, rev)?;
    read(Read::Range {
        key: args[1].clone(),
        query,
        withscores,
    })
}

fn parse_zrangestore(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    let (query, _) = parse_range_args(args, 2, true, None, None)?;
    write(Write::RangeStore {
        dst: args[1].clone(),
        src: args[2].clone(),
        query,
    })
}

fn parse_zrem(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    write(Write::Rem(args[1].clone(), args[2..].to_vec()))
}

fn parse_zremrange(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    let by = match args::name(args).as_str() {
        "zremrangebyrank" => By::Rank(args::int(&args[2])?, args::int(&args[3])?),
        "zremrangebyscore" => By::Score(score_range(&args[2], &args[3])?),
        _ => By::Lex(lex_range(&args[2], &args[3])?),
    };
    write(Write::RemRange(args[1].clone(), by))
}

fn parse_zpop(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    if args.len() > 3 {
        return Err(Error::Syntax);
    }
    let count = match args.get(2) {
        Some(a) => Some(non_negative(a, "value is out of range, must be positive")?),
        None => None,
    };
    write(Write::Pop {
        key: args[1].clone(),
        max: args::is(&args[0], "zpopmax"),
        count,
    })
}

fn parse_zmpop(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    let numkeys = positive(&args[1], "numkeys should be greater than 0")?;
    let where_at = numkeys.saturating_add(2);
    if where_at >= args.len() as u64 {
        return Err(Error::Syntax);
    }
    let where_at = where_at as usize;
    let max = if args::is(&args[where_at], "min") {
        false
    } else if args::is(&args[where_at], "max") {
        true
    } else {
        return Err(Error::Syntax);
    };
    let mut count = None;
    let mut j = where_at + 1;
    while j < args.len() {
        if count.is_none() && args::is(&args[j], "count") && j + 1 < args.len() {
            count = Some(positive(&args[j + 1], "count should be greater than 0")?);
            j += 2;
        } else {
            return Err(Error::Syntax);
        }
    }
    let keys = args[2..where_at].to_vec();
    write(Write::MPop {
        keys,
        max,
        count: count.unwrap_or(1),
    })
}

fn parse_zrandmember(args: &[Bytes], ctx: &mut Ctx) -> Result<Cmd> {
    let key = args[1].clone();
    let seed = ctx.seed;
    let Some(count_arg) = args.get(2) else {
        return read(Read::RandMember {
            key,
            count: None,
            withscores: false,
            seed,
        });
    };
    let count = args::int(count_arg)?;
    if count == i64::MIN {
        return Err(Error::err(
            "value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        ));
    }
    if args.len() > 4 || (args.len() == 4 && !args::is(&args[3], "withscores")) {
        return Err(Error::Syntax);
    }
    let withscores = args.len() == 4;
    if withscores && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&count) {
        return Err(Error::err("value is out of range"));
    }
    if count < 0 && count.unsigned_abs() > MAX_RANDOM_REPLY {
        return Err(Error::err("value is out of range"));
    }
    read(Read::RandMember {
        key,
        count: Some(count),
        withscores,
        seed,
    })
}

/// Parses `numkeys key [key ...] options` with `numkeys` at `at`.
fn parse_setop_args(args: &[Bytes], at: usize, store: bool) -> Result<SetOp> {
    let name = args::name(args);
    let kind = match name.trim_end_matches("store") {
        "zunion" => OpKind::Union,
        "zinter" => OpKind::Inter,
        "zintercard" => OpKind::InterCard(0),
        _ => OpKind::Diff,
    };
    let n = args::int(&args[at])?;
    if n < 1 {
        return Err(Error::err(format!(
            "at least 1 input key is needed for '{name}' command"
        )));
    }
    let first = at + 1;
    if n > (args.len() - first) as i64 {
        return Err(Error::Syntax);
    }
    let n = n as usize;
    let mut op = SetOp {
        kind,
        keys: args[first..first + n].to_vec(),
        weights: vec![1.0; n],
        aggregate: Aggregate::Sum,
        withscores: false,
        deferred: None,
    };
    if let Err(e) = parse_setop_options(args, first + n, store, &mut op) {
        op.deferred = Some(e);
    }
    Ok(op)
}

fn parse_setop_options(args: &[Bytes], mut j: usize, store: bool, op: &mut SetOp) -> Result<()> {
    let n = op.keys.len();
    let card = matches!(op.kind, OpKind::InterCard(_));
    let weighted = op.kind != OpKind::Diff && !card;
    while j < args.len() {
        let remaining = args.len() - j;
        let a = &args[j];
        if weighted && remaining > n && args::is(a, "weights") {
            for i in 0..n {
                op.weights[i] = score_value(&args[j + 1 + i])
                    .ok_or_else(|| Error::err("weight value is not a float"))?;
            }
            j += 1 + n;
        } else if weighted && remaining >= 2 && args::is(a, "aggregate") {
            let v = &args[j + 1];
            op.aggregate = if args::is(v, "sum") {
                Aggregate::Sum
            } else if args::is(v, "min") {
                Aggregate::Min
            } else if args::is(v, "max") {
                Aggregate::Max
            } else {
                return Err(Error::Syntax);
            };
            j += 2;
        } else if !store && !card && args::is(a, "withscores") {
            op.withscores = true;
            j += 1;
        } else if card && remaining >= 2 && args::is(a, "limit") {
            op.kind = OpKind::InterCard(non_negative(&args[j + 1], "LIMIT can't be negative")?);
            j += 2;
        } else {
            return Err(Error::Syntax);
        }
    }
    Ok(())
}

fn parse_setop(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    read(Read::SetOp(parse_setop_args(args, 1, false)?))
}

fn parse_setop_store(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    let op = parse_setop_args(args, 2, true)?;
    write(Write::Store {
        dst: args[1].clone(),
        op,
    })
}

fn parse_zscan(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    let cursor = scan::parse_cursor(&args[2])?;
    let opts = ScanArgs::parse(args, 2, false);
    read(Read::Scan {
        key: args[1].clone(),
        cursor,
        opts,
    })
}

// ---------------------------------------------------------------------------------------
// Ranges over a sorted set.

type Item<'a> = (&'a CompactBytes, f64);
type Iter<'a> = Box<dyn Iterator<Item = &'a (Score, CompactBytes)> + 'a>;

fn item(e: &(Score, CompactBytes)) -> Item<'_> {
    (&e.1, e.0 .0)
}

/// The smallest double above `x` (for an exclusive lower bound of a B-tree range).
fn next_up(x: f64) -> f64 {
    if x.is_nan() || x == f64::INFINITY {
        x
    } else if x == 0.0 {
        f64::from_bits(1)
    } else if x > 0.0 {
        f64::from_bits(x.to_bits() + 1)
    } else {
        f64::from_bits(x.to_bits() - 1)
    }
}

/// The smallest member (the empty string), for the low end of a B-tree range.
fn no_member() -> CompactBytes {
    CompactBytes::new(b"")
}

/// Members from the first in `r` onward (or, `rev`, from the last in `r` downward);
/// the caller stops at the other end.
fn score_start<'a>(z: &'a ZSet, r: &ScoreRange, rev: bool) -> Iter<'a> {
    let r = *r;
    if rev {
        let upper = if r.max == f64::INFINITY {
            Bound::Unbounded
        } else {
            Bound::Excluded((Score(next_up(r.max)), no_member()))
        };
        Box::new(
            z.order
                .range((Bound::Unbounded, upper))
                .rev()
                .skip_while(move |e| !r.lte_max(e.0 .0)),
        )
    } else {
        let lower = Bound::Included((Score(r.min), no_member()));
        Box::new(
            z.order
                .range((lower, Bound::Unbounded))
                .skip_while(move |e| !r.gte_min(e.0 .0)),
        )
    }
}

/// Lexicographic walk start, as Redis's listpack code walks: from the first member (or,
/// `rev`, the last) that passes the near end, provided it also passes the far end. When
/// every score is equal (the only case where lex ranges mean something) this is a
/// B-tree range.
fn lex_start<'a>(z: &'a ZSet, r: &LexRange, rev: bool) -> Iter<'a> {
    let (Some(first), Some(last)) = (z.order.first(), z.order.last()) else {
        return Box::new(std::iter::empty());
    };
    if r.is_empty() || !r.gte_min(&last.1) || !r.lte_max(&first.1) {
        return Box::new(std::iter::empty());
    }
    if first.0 == last.0 {
        let s = first.0;
        let lower = match &r.min {
            LexBound::NegInf => Bound::Unbounded,
            LexBound::Incl(m) => Bound::Included((s, CompactBytes::new(m))),
            LexBound::Excl(m) => Bound::Excluded((s, CompactBytes::new(m))),
            LexBound::PosInf => return Box::new(std::iter::empty()),
        };
        let upper = match &r.max {
            LexBound::PosInf => Bound::Unbounded,
            LexBound::Incl(m) => Bound::Included((s, CompactBytes::new(m))),
            LexBound::Excl(m) => Bound::Excluded((s, CompactBytes::new(m))),
            LexBound::NegInf => return Box::new(std::iter::empty()),
        };
        // Not empty (checked above), so the bounds are in order and `range` is safe.
        let it = z.order.range((lower, upper));
        return if rev {
            Box::new(it.rev())
        } else {
            Box::new(it)
        };
    }
    let near = r.clone();
    let it: Iter<'a> = if rev {
        Box::new(
            z.order
                .iter()
                .rev()
                .skip_while(move |e| !near.lte_max(&e.1)),
        )
    } else {
        Box::new(z.order.iter().skip_while(move |e| !near.gte_min(&e.1)))
    };
    let mut it = it.peekable();
    let far_ok = it.peek().is_some_and(|e| {
        if rev {
            r.gte_min(&e.1)
        } else {
            r.lte_max(&e.1)
        }
    });
    if far_ok {
        Box::new(it)
    } else {
        Box::new(std::iter::empty())
    }
}

impl RangeQuery {
    /// The members (with scores) the range selects, in reply order.
    pub fn items<'a>(&self, z: &'a ZSet) -> Vec<Item<'a>> {
        if let By::Rank(start, stop) = self.by {
            let Some((s, e)) = args::range(start, stop, z.len()) else {
                return Vec::new();
            };
            let n = e - s + 1;
            return if self.rev {
                z.order.iter().rev().skip(s).take(n).map(item).collect()
            } else {
                z.order.iter().skip(s).take(n).map(item).collect()
            };
        }
        // Redis: a negative offset skips everything, a negative count means no limit.
        if self.offset < 0 || (self.offset > 0 && self.offset as u64 >= z.len() as u64) {
            return Vec::new();
        }
        let offset = self.offset as usize;
        let limit = if self.limit < 0 {
            usize::MAX
        } else {
            self.limit as usize
        };
        let rev = self.rev;
        match &self.by {
            By::Score(r) => score_start(z, r, rev)
                .skip(offset)
                .take(limit)
                .take_while(|e| {
                    if rev {
                        r.gte_min(e.0 .0)
                    } else {
                        r.lte_max(e.0 .0)
                    }
                })
                .map(item)
                .collect(),
            By::Lex(r) => lex_start(z, r, rev)
                .skip(offset)
                .take(limit)
                .take_while(|e| {
                    if rev {
                        r.gte_min(&e.1)
                    } else {
                        r.lte_max(&e.1)
                    }
                })
                .map(item)
                .collect(),
            By::Rank(..) => Vec::new(),
        }
    }
}

/// Members selected for `ZREMRANGEBY*` (no offset, no limit, ascending).
fn members_in(z: &ZSet, by: &By) -> Vec<CompactBytes> {
    let q = RangeQuery {
        by: by.clone(),
        rev: false,
        offset: 0,
        limit: -1,
    };
    q.items(z).into_iter().map(|(m, _)| m.clone()).collect()
}

// ---------------------------------------------------------------------------------------
// Replies.

/// Member/score pairs as a reply: Redis 7.0 sends a flat `[m1, s1, m2, s2, ...]` in
/// RESP2 and `[[m1, s1], [m2, s2], ...]` in RESP3, which [`Frame::Pairs`] encodes.
pub fn pairs_reply<'a>(items: impl IntoIterator<Item = (&'a [u8], f64)>) -> Frame {
    Frame::Pairs(
        items
            .into_iter()
            .map(|(m, s)| (Frame::bulk(m), Frame::Double(s)))
            .collect(),
    )
}

/// A list of members, with their scores if asked.
fn members_reply(items: &[Item<'_>], withscores: bool) -> Frame {
    if withscores {
        pairs_reply(items.iter().map(|(m, s)| (&m[..], *s)))
    } else {
        Frame::Array(items.iter().map(|(m, _)| Frame::bulk(&m[..])).collect())
    }
}

/// How a small (listpack) sorted set holds a score, which `ZSCAN` replies with: an
/// integer when the score is one (and within half the `long long` range), else `%.17g`.
fn listpack_score_text(d: f64) -> String {
    let bound = (i64::MAX / 2) as f64;
    if (-bound..=bound).contains(&d) && d.trunc() == d {
        (d as i64).to_string()
    } else {
        resp::double::format_g17(d)
    }
}

// ---------------------------------------------------------------------------------------
// Running.

fn get_zset<'a>(db: &'a Db, key: &[u8], now_ms: i64) -> Result<Option<&'a ZSet>> {
    db.get(key, now_ms).map(Value::as_zset).transpose()
}

/// An input of a set operation: sorted sets, and plain sets (every score 1).
enum Source<'a> {
    None,
    Z(&'a ZSet),
    S(&'a SetValue),
}

impl Source<'_> {
    fn len(&self) -> usize {
        match self {
            Source::None => 0,
            Source::Z(z) => z.len(),
            Source::S(s) => s.members.len(),
        }
    }

    fn find(&self, member: &[u8]) -> Option<f64> {
        match self {
            Source::None => None,
            Source::Z(z) => z.score(member),
            Source::S(s) => s.members.contains(member).then_some(1.0),
        }
    }

    fn for_each(&self, mut f: impl FnMut(&CompactBytes, f64)) {
        match self {
            Source::None => {}
            Source::Z(z) => z.order.iter().for_each(|(s, m)| f(m, s.0)),
            Source::S(s) => s.members.iter().for_each(|m| f(m, 1.0)),
        }
    }
}

/// Redis's `zunionInterAggregate`: a sum of `inf` and `-inf` is 0.
fn aggregate(target: &mut f64, value: f64, how: Aggregate) {
    match how {
        Aggregate::Sum => {
            *target += value;
            if target.is_nan() {
                *target = 0.0;
            }
        }
        Aggregate::Min => {
            if value < *target {
                *target = value;
            }
        }
        Aggregate::Max => {
            if value > *target {
                *target = value;
            }
        }
    }
}

/// The result of a set operation.
enum OpResult {
    Members(Vec<(CompactBytes, f64)>),
    Card(u64),
}

impl SetOp {
    fn compute(&self, db: &Db, now_ms: i64) -> Result<OpResult> {
        let mut sources = Vec::with_capacity(self.keys.len());
        for (key, &weight) in self.keys.iter().zip(&self.weights) {
            let src = match db.get(key, now_ms) {
                None => Source::None,
                Some(Value::ZSet(z)) => Source::Z(z),
                Some(Value::Set(s)) => Source::S(s),
                Some(_) => return Err(Error::WrongType),
            };
            sources.push((src, weight));
        }
        if let Some(e) = &self.deferred {
            return Err(e.clone());
        }
        if self.kind != OpKind::Diff {
            // Smallest first, as Redis does (it also fixes the order scores are summed in).
            sources.sort_by_key(|(s, _)| s.len());
        }
        let mut out: Vec<(CompactBytes, f64)> = Vec::new();
        match self.kind {
            OpKind::Inter | OpKind::InterCard(_) => {
                let limit = match self.kind {
                    OpKind::InterCard(l) => l,
                    _ => 0,
                };
                let mut card = 0u64;
                let (first, w0) = &sources[0];
                let mut done = false;
                first.for_each(|m, s| {
                    if done {
                        return;
                    }
                    let mut score = w0 * s;
                    if score.is_nan() {
                        score = 0.0;
                    }
                    for (src, w) in &sources[1..] {
                        match src.find(m) {
                            Some(v) => aggregate(&mut score, v * w, self.aggregate),
                            None => return,
                        }
                    }
                    card += 1;
                    if limit > 0 && card >= limit {
                        done = true;
                    }
                    if !matches!(self.kind, OpKind::InterCard(_)) {
                        out.push((m.clone(), score));
                    }
                });
                if matches!(self.kind, OpKind::InterCard(_)) {
                    return Ok(OpResult::Card(card));
                }
            }
            OpKind::Union => {
                let mut acc: crate::value::Map<CompactBytes, f64> = Default::default();
                for (src, w) in &sources {
                    src.for_each(|m, s| {
                        let mut score = w * s;
                        if score.is_nan() {
                            score = 0.0;
                        }
                        match acc.get_mut(&m[..]) {
                            Some(t) => aggregate(t, score, self.aggregate),
                            None => {
                                acc.insert(m.clone(), score);
                            }
                        }
                    });
                }
                out = acc.into_iter().collect();
            }
            OpKind::Diff => {
                let (first, _) = &sources[0];
                first.for_each(|m, s| {
                    if !sources[1..].iter().any(|(src, _)| src.find(m).is_some()) {
                        out.push((m.clone(), s));
                    }
                });
            }
        }
        out.sort_by(|a, b| Score(a.1).cmp(&Score(b.1)).then_with(|| a.0.cmp(&b.0)));
        Ok(OpResult::Members(out))
    }
}

/// A new sorted set from `(member, score)` pairs.
fn build<'a>(items: impl IntoIterator<Item = (&'a [u8], f64)>) -> ZSet {
    let mut z = ZSet::default();
    for (m, s) in items {
        z.insert(m, s);
    }
    z
}

/// Stores `z` at `dst`, or deletes `dst` if `z` is empty; replies with the size.
fn store(db: &mut Db, dst: &[u8], z: ZSet, now_ms: i64) -> Frame {
    let n = z.len();
    if n == 0 {
        db.remove(dst, now_ms);
    } else {
        db.insert(dst, Value::ZSet(z.into()), now_ms);
    }
    Frame::Integer(n as i64)
}

impl Read {
    pub fn run(&self, db: &Db, now_ms: i64) -> Result<Frame> {
        match self {
            Read::Score(key, member) => Ok(
                match get_zset(db, key, now_ms)?.and_then(|z| z.score(member)) {
                    Some(s) => Frame::Double(s),
                    None => Frame::Null,
                },
            ),
            Read::MScore(key, members) => {
                let z = get_zset(db, key, now_ms)?;
                Ok(Frame::Array(
                    members
                        .iter()
                        .map(|m| {
                            z.and_then(|z| z.score(m))
                                .map_or(Frame::Null, Frame::Double)
                        })
                        .collect(),
                ))
            }
            Read::Card(key) => Ok(Frame::Integer(
                get_zset(db, key, now_ms)?.map_or(0, |z| z.len() as i64),
            )),
            Read::Count(key, r) => {
                let Some(z) = get_zset(db, key, now_ms)? else {
                    return Ok(Frame::Integer(0));
                };
                let n = score_start(z, r, false)
                    .take_while(|e| r.lte_max(e.0 .0))
                    .count();
                Ok(Frame::Integer(n as i64))
            }
            Read::LexCount(key, r) => {
                let Some(z) = get_zset(db, key, now_ms)? else {
                    return Ok(Frame::Integer(0));
                };
                let n = lex_start(z, r, false)
                    .take_while(|e| r.lte_max(&e.1))
                    .count();
                Ok(Frame::Integer(n as i64))
            }
            Read::Rank { key, member, rev } => {
                let Some(z) = get_zset(db, key, now_ms)? else {
                    return Ok(Frame::Null);
                };
                Ok(match z.rank(member) {
                    Some(r) if *rev => Frame::Integer((z.len() - 1 - r) as i64),
                    Some(r) => Frame::Integer(r as i64),
                    None => Frame::Null,
                })
            }
            Read::Range {
                key,
                query,
                withscores,
            } => {
                let Some(z) = get_zset(db, key, now_ms)? else {
                    return Ok(Frame::Array(Vec::new()));
                };
                Ok(members_reply(&query.items(z), *withscores))
            }
            Read::RandMember {
                key,
                count,
                withscores,
                seed,
            } => {
                let z = get_zset(db, key, now_ms)?;
                match count {
                    None => Ok(
                        match z.and_then(|z| random_members(z, 1, *seed).first().copied()) {
                            Some((m, _)) => Frame::bulk(&m[..]),
                            None => Frame::Null,
                        },
                    ),
                    Some(count) => {
                        let Some(z) = z else {
                            return Ok(Frame::Array(Vec::new()));
                        };
                        Ok(members_reply(
                            &random_members(z, *count, *seed),
                            *withscores,
                        ))
                    }
                }
            }
            Read::SetOp(op) => Ok(match op.compute(db, now_ms)? {
                OpResult::Card(n) => Frame::Integer(n as i64),
                OpResult::Members(items) => {
                    let items: Vec<Item<'_>> = items.iter().map(|(m, s)| (m, *s)).collect();
                    members_reply(&items, op.withscores)
                }
            }),
            Read::Scan { key, cursor, opts } => {
                let Some(z) = get_zset(db, key, now_ms)? else {
                    return Ok(scan::reply(0, Vec::new()));
                };
                let opts = opts.as_ref().map_err(Clone::clone)?;
                Ok(zscan(z, *cursor, opts))
            }
        }
    }
}

/// One `ZSCAN` step: a small set is returned whole (cursor 0), in order, as Redis does
/// for a listpack; a large one by position.
fn zscan(z: &ZSet, cursor: u64, opts: &ScanArgs) -> Frame {
    let mut items = Vec::new();
    if !z.big {
        for (s, m) in &z.order {
            if opts.matches(m) {
                items.push(Frame::bulk(&m[..]));
                items.push(Frame::bulk(listpack_score_text(s.0)));
            }
        }
        return scan::reply(0, items);
    }
    let (positions, next) = scan::step(cursor, z.scores.len(), opts.count);
    for i in positions {
        if let Some((m, s)) = z.scores.get_index(i) {
            if opts.matches(m) {
                items.push(Frame::bulk(&m[..]));
                items.push(Frame::bulk(resp::double::format_g17(*s)));
            }
        }
    }
    scan::reply(next, items)
}

/// `ZRANDMEMBER`'s picks, deterministic for a seed. A negative count picks with
/// repetition; a count at least the size returns the whole set, highest first (what
/// Redis 7.0 replies); a smaller positive count picks distinct members.
pub fn random_members(z: &ZSet, count: i64, seed: u64) -> Vec<Item<'_>> {
    let size = z.len();
    let at = |i: usize| z.scores.get_index(i).map(|(m, s)| (m, *s));
    if size == 0 || count == 0 {
        return Vec::new();
    }
    let mut rng = Rng::new(seed);
    if count < 0 || count == 1 {
        let n = count.unsigned_abs();
        return (0..n)
            .filter_map(|_| at(rng.below(size as u64) as usize))
            .collect();
    }
    let count = count as u64;
    if count >= size as u64 {
        return z.order.iter().rev().map(item).collect();
    }
    let count = count as usize;
    let picks: Vec<usize> = if count * 3 > size {
        let mut all: Vec<usize> = (0..size).collect();
        for i in 0..count {
            let j = i + rng.below((size - i) as u64) as usize;
            all.swap(i, j);
        }
        all.truncate(count);
        all
    } else {
        let mut seen = HashSet::with_capacity(count);
        let mut out = Vec::with_capacity(count);
        while out.len() < count {
            let i = rng.below(size as u64) as usize;
            if seen.insert(i) {
                out.push(i);
            }
        }
        out
    };
    picks.into_iter().filter_map(at).collect()
}

/// What one `ZADD` pair did.
enum AddOutcome {
    Added(f64),
    Updated(f64),
    /// Present with the same score: counts as processed.
    Same(f64),
    /// Nothing to do (`NX` on a present member, `XX` on an absent one, `GT`/`LT` refused).
    Nop,
}

/// Redis's `zsetAdd` for one member.
fn zadd_one(z: &mut ZSet, score: f64, member: &[u8], f: AddFlags) -> Result<AddOutcome> {
    let nan = || Error::err("resulting score is not a number (NaN)");
    match z.score(member) {
        Some(cur) => {
            if f.nx {
                return Ok(AddOutcome::Nop);
            }
            let mut score = score;
            if f.incr {
                score += cur;
                if score.is_nan() {
                    return Err(nan());
                }
            }
            if (f.lt && score >= cur) || (f.gt && score <= cur) {
                return Ok(AddOutcome::Nop);
            }
            if score != cur {
                z.insert(member, score);
                Ok(AddOutcome::Updated(score))
            } else {
                Ok(AddOutcome::Same(score))
            }
        }
        None if f.xx => Ok(AddOutcome::Nop),
        None => {
            z.insert(member, score);
            Ok(AddOutcome::Added(score))
        }
    }
}

/// Pops up to `count` members from the low (or `max`, high) end.
fn pop(z: &mut ZSet, max: bool, count: u64) -> Vec<(CompactBytes, f64)> {
    let mut out = Vec::new();
    while (out.len() as u64) < count {
        let next = if max { z.order.last() } else { z.order.first() };
        let Some((_, m)) = next.cloned() else {
            break;
        };
        if let Some(s) = z.remove(&m) {
            out.push((m, s));
        }
    }
    out
}

impl Write {
    pub fn apply(&self, db: &mut Db, now_ms: i64) -> Result<Frame> {
        match self {
            Write::Add { key, flags, pairs } => {
                let exists = get_zset(db, key, now_ms)?.is_some();
                if !exists && flags.xx {
                    return Ok(if flags.incr {
                        Frame::Null
                    } else {
                        Frame::Integer(0)
                    });
                }
                let z = db.get_or_create(
                    key,
                    now_ms,
                    || Value::ZSet(Default::default()),
                    Value::as_zset_mut,
                )?;
                let (mut added, mut updated, mut processed) = (0i64, 0i64, 0i64);
                let mut last = 0.0;
                let mut failure = None;
                for (score, member) in pairs {
                    match zadd_one(z, *score, member, *flags) {
                        Ok(AddOutcome::Added(s)) => {
                            (added, processed, last) = (added + 1, processed + 1, s)
                        }
                        Ok(AddOutcome::Updated(s)) => {
                            (updated, processed, last) = (updated + 1, processed + 1, s)
                        }
                        Ok(AddOutcome::Same(s)) => (processed, last) = (processed + 1, s),
                        Ok(AddOutcome::Nop) => {}
                        Err(e) => {
                            failure = Some(e);
                            break;
                        }
                    }
                }
                if added + updated > 0 {
                    db.touch(key);
                }
                db.remove_if_empty(key);
                if let Some(e) = failure {
                    return Err(e);
                }
                Ok(if flags.incr {
                    if processed > 0 {
                        Frame::Double(last)
                    } else {
                        Frame::Null
                    }
                } else if flags.ch {
                    Frame::Integer(added + updated)
                } else {
                    Frame::Integer(added)
                })
            }
            Write::Rem(key, members) => {
                let Some(v) = db.get_mut(key, now_ms) else {
                    return Ok(Frame::Integer(0));
                };
                let z = v.as_zset_mut()?;
                let removed = members.iter().filter(|m| z.remove(m).is_some()).count();
                if removed > 0 {
                    db.touch(key);
                    db.remove_if_empty(key);
                }
                Ok(Frame::Integer(removed as i64))
            }
            Write::RemRange(key, by) => {
                let Some(v) = db.get_mut(key, now_ms) else {
                    return Ok(Frame::Integer(0));
                };
                let z = v.as_zset_mut()?;
                let members = members_in(z, by);
                for m in &members {
                    z.remove(m);
                }
                if !members.is_empty() {
                    db.touch(key);
                    db.remove_if_empty(key);
                }
                Ok(Frame::Integer(members.len() as i64))
            }
            Write::Pop { key, max, count } => {
                let Some(v) = db.get_mut(key, now_ms) else {
                    return Ok(Frame::Array(Vec::new()));
                };
                let z = v.as_zset_mut()?;
                let popped = pop(z, *max, count.unwrap_or(1));
                if !popped.is_empty() {
                    db.touch(key);
                    db.remove_if_empty(key);
                }
                Ok(match count {
                    None => match popped.first() {
                        Some((m, s)) => Frame::Array(vec![Frame::bulk(&m[..]), Frame::Double(*s)]),
                        None => Frame::Array(Vec::new()),
                    },
                    Some(_) => pairs_reply(popped.iter().map(|(m, s)| (&m[..], *s))),
                })
            }
            Write::MPop { keys, max, count } => {
                for key in keys {
                    let Some(v) = db.get_mut(key, now_ms) else {
                        continue;
                    };
                    let z = v.as_zset_mut()?;
                    let popped = pop(z, *max, *count);
                    db.touch(key);
                    db.remove_if_empty(key);
                    // ZMPOP nests the pairs in both protocols.
                    let pairs = popped
                        .iter()
                        .map(|(m, s)| Frame::Array(vec![Frame::bulk(&m[..]), Frame::Double(*s)]))
                        .collect();
                    return Ok(Frame::Array(vec![
                        Frame::bulk(&key[..]),
                        Frame::Array(pairs),
                    ]));
                }
                Ok(Frame::NullArray)
            }
            Write::RangeStore { dst, src, query } => {
                let z = match get_zset(db, src, now_ms)? {
                    Some(z) => build(query.items(z).into_iter().map(|(m, s)| (&m[..], s))),
                    None => ZSet::default(),
                };
                Ok(store(db, dst, z, now_ms))
            }
            Write::Store { dst, op } => {
                let z = match op.compute(db, now_ms)? {
                    OpResult::Members(items) => build(items.iter().map(|(m, s)| (&m[..], *s))),
                    OpResult::Card(_) => ZSet::default(),
                };
                Ok(store(db, dst, z, now_ms))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zset(pairs: &[(&str, f64)]) -> ZSet {
        build(pairs.iter().map(|(m, s)| (m.as_bytes(), *s)))
    }

    fn names(items: &[Item<'_>]) -> Vec<String> {
        items
            .iter()
            .map(|(m, _)| String::from_utf8_lossy(m).into_owned())
            .collect()
    }

    fn cmd(db: &mut Db, line: &str, seed: u64) -> Frame {
        let args: Vec<Bytes> = line
            .split_whitespace()
            .map(|s| Bytes::from(s.to_string()))
            .collect();
        let mut ctx = Ctx { now_ms: 0, seed };
        match crate::command::parse(&args, &mut ctx) {
            Ok(c) => c.execute(db, 0),
            Err(e) => e.to_frame(),
        }
    }

    #[test]
    fn randmember_is_deterministic_by_seed() {
        let pairs: Vec<(String, f64)> = (0..50).map(|i| (format!("m{i}"), i as f64)).collect();
        let z = build(pairs.iter().map(|(m, s)| (m.as_bytes(), *s)));
        for count in [1, 5, 20, 40, -10] {
            let a = names(&random_members(&z, count, 7));
            assert_eq!(a, names(&random_members(&z, count, 7)), "count {count}");
            assert_eq!(a.len(), count.unsigned_abs() as usize);
            if count > 0 {
                let distinct: HashSet<_> = a.iter().collect();
                assert_eq!(distinct.len(), a.len(), "distinct picks for count {count}");
            }
        }
        let seeds: HashSet<Vec<String>> =
            (0..10).map(|s| names(&random_members(&z, 5, s))).collect();
        assert!(seeds.len() > 1, "the seed changes the picks");
        let all = names(&random_members(&z, 100, 1));
        assert_eq!(
            all.first().map(String::as_str),
            Some("m49"),
            "whole set, highest first"
        );
        assert_eq!(all.len(), 50);
        assert!(random_members(&z, 0, 1).is_empty());
    }

    #[test]
    fn randmember_command_uses_the_parse_seed() {
        let mut db = Db::new();
        cmd(&mut db, "ZADD z 1 a 2 b 3 c 4 d 5 e 6 f", 0);
        let a = cmd(&mut db, "ZRANDMEMBER z -8 WITHSCORES", 3);
        assert_eq!(a, cmd(&mut db, "ZRANDMEMBER z -8 WITHSCORES", 3));
        let Frame::Pairs(items) = a else {
            panic!("pairs")
        };
        assert_eq!(items.len(), 8);
        assert!(matches!(cmd(&mut db, "ZRANDMEMBER z", 9), Frame::Bulk(_)));
        assert_eq!(cmd(&mut db, "ZRANDMEMBER nokey", 9), Frame::Null);
    }

    #[test]
    fn pairs_encode_flat_in_resp2_and_nested_in_resp3() {
        use resp::frame::Protocol;
        let f = pairs_reply([(&b"a"[..], 0.1), (&b"b"[..], 2.0)]);
        assert_eq!(
            &f.to_bytes(Protocol::Resp2)[..],
            b"*4\r\n$1\r\na\r\n$19\r\n0.10000000000000001\r\n$1\r\nb\r\n$1\r\n2\r\n"
        );
        assert_eq!(
            &f.to_bytes(Protocol::Resp3)[..],
            b"*2\r\n*2\r\n$1\r\na\r\n,0.10000000000000001\r\n*2\r\n$1\r\nb\r\n,2\r\n"
        );
    }

    #[test]
    fn ranks() {
        let z = zset(&[("c", 3.0), ("a", 1.0), ("b", 2.0), ("b2", 2.0)]);
        assert_eq!(z.rank(b"a"), Some(0));
        assert_eq!(z.rank(b"b2"), Some(2));
        assert_eq!(z.rank(b"c"), Some(3));
        assert_eq!(z.rank(b"x"), None);
        let mut db = Db::new();
        cmd(&mut db, "ZADD z 3 c 1 a 2 b 2 b2", 0);
        assert_eq!(cmd(&mut db, "ZREVRANK z c", 0), Frame::Integer(0));
        assert_eq!(cmd(&mut db, "ZREVRANK z a", 0), Frame::Integer(3));
        assert_eq!(cmd(&mut db, "ZRANK z b2", 0), Frame::Integer(2));
        assert_eq!(cmd(&mut db, "ZRANK z nope", 0), Frame::Null);
        let q = RangeQuery {
            by: By::Rank(-2, -1),
            rev: true,
            offset: 0,
            limit: -1,
        };
        assert_eq!(names(&q.items(&z)), ["b", "a"]);
    }

    #[test]
    fn score_and_lex_ranges() {
        let z = zset(&[
            ("a", 1.0),
            ("b", 2.0),
            ("c", 2.0),
            ("d", 3.0),
            ("e", f64::INFINITY),
        ]);
        let r = score_range(b"(1", b"3").unwrap();
        let q = |by: By, rev: bool, offset: i64, limit: i64| RangeQuery {
            by,
            rev,
            offset,
            limit,
        };
        assert_eq!(
            names(&q(By::Score(r), false, 0, -1).items(&z)),
            ["b", "c", "d"]
        );
        assert_eq!(names(&q(By::Score(r), true, 1, 1).items(&z)), ["c"]);
        let all = score_range(b"-inf", b"+inf").unwrap();
        assert_eq!(names(&q(By::Score(all), true, 0, 2).items(&z)), ["e", "d"]);
        let open = score_range(b"(3", b"(inf").unwrap();
        assert!(q(By::Score(open), false, 0, -1).items(&z).is_empty());
        let same = zset(&[("a", 0.0), ("b", 0.0), ("c", 0.0), ("d", 0.0)]);
        let lr = lex_range(&Bytes::from("(a"), &Bytes::from("[c")).unwrap();
        assert_eq!(
            names(&q(By::Lex(lr.clone()), false, 0, -1).items(&same)),
            ["b", "c"]
        );
        assert_eq!(names(&q(By::Lex(lr), true, 0, -1).items(&same)), ["c", "b"]);
        let all = lex_range(&Bytes::from("-"), &Bytes::from("+")).unwrap();
        assert_eq!(
            names(&q(By::Lex(all), false, 1, 2).items(&same)),
            ["b", "c"]
        );
        assert!(lex_range(&Bytes::from("a"), &Bytes::from("+")).is_err());
        let empty = lex_range(&Bytes::from("+"), &Bytes::from("-")).unwrap();
        assert!(q(By::Lex(empty), false, 0, -1).items(&same).is_empty());
    }

    #[test]
    fn float_rules() {
        assert_eq!(score_value(b"0x10"), Some(16.0));
        assert_eq!(score_value(b"0x1p3"), Some(8.0));
        assert_eq!(score_value(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(score_value(b"1e400"), None);
        assert_eq!(score_value(b"1e-400"), None);
        assert_eq!(score_value(b" 1"), None);
        assert_eq!(score_value(b"nan"), None);
        assert_eq!(score_value(b"1_0"), None);
        assert_eq!(score_value(b".5"), Some(0.5));
        assert_eq!(score_value(b"5."), Some(5.0));
        assert_eq!(range_end(b""), Some((0.0, false)));
        assert_eq!(range_end(b"("), Some((0.0, true)));
        assert_eq!(range_end(b" 1"), Some((1.0, false)));
        assert_eq!(range_end(b"1 "), None);
        assert_eq!(range_end(b"(1e400"), Some((f64::INFINITY, true)));
        assert_eq!(
            listpack_score_text(123456789012345678.0),
            "123456789012345680"
        );
        assert_eq!(listpack_score_text(1e20), "1e+20");
        assert_eq!(listpack_score_text(0.1), "0.10000000000000001");
        assert_eq!(listpack_score_text(-0.0), "0");
    }

    #[test]
    fn zscan_small_is_whole_and_big_walks_positions() {
        let mut db = Db::new();
        cmd(&mut db, "ZADD small 2 b 1 a 1.5 c", 0);
        let reply = cmd(&mut db, "ZSCAN small 5 COUNT 1", 0);
        let want = scan::reply(
            0,
            ["a", "1", "c", "1.5", "b", "2"]
                .iter()
                .map(|s| Frame::bulk(s.as_bytes()))
                .collect(),
        );
        assert_eq!(reply, want);
        let args: String = (0..300).map(|i| format!(" {i}.5 m{i}")).collect();
        cmd(&mut db, &format!("ZADD big{args}"), 0);
        let mut cursor = 0u64;
        let mut seen = HashSet::new();
        loop {
            let Frame::Array(parts) = cmd(&mut db, &format!("ZSCAN big {cursor} COUNT 7"), 0)
            else {
                panic!("array")
            };
            let [Frame::Bulk(c), Frame::Array(items)] = &parts[..] else {
                panic!("shape")
            };
            for pair in items.chunks(2) {
                let [Frame::Bulk(m), Frame::Bulk(s)] = pair else {
                    panic!("pair")
                };
                let i: usize = std::str::from_utf8(&m[1..]).unwrap().parse().unwrap();
                assert_eq!(&s[..], format!("{i}.5").as_bytes());
                seen.insert(i);
            }
            cursor = std::str::from_utf8(c).unwrap().parse().unwrap();
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(seen.len(), 300);
        // Options are checked after the key, as in Redis.
        assert_eq!(
            cmd(&mut db, "ZSCAN nokey 0 COUNT 0", 0),
            scan::reply(0, Vec::new())
        );
        assert_eq!(
            cmd(&mut db, "ZSCAN small 0 COUNT 0", 0),
            Error::Syntax.to_frame()
        );
    }

    #[test]
    fn set_operations_take_plain_sets_and_check_types_first() {
        let mut db = Db::new();
        let mut set = SetValue::default();
        set.members.insert(CompactBytes::new(b"a"));
        set.members.insert(CompactBytes::new(b"x"));
        db.insert(b"s", Value::Set(set.into()), 0);
        cmd(&mut db, "ZADD z 5 a 6 b", 0);
        let want = pairs_reply([(&b"x"[..], 2.0), (&b"b"[..], 6.0), (&b"a"[..], 7.0)]);
        assert_eq!(cmd(&mut db, "ZUNION 2 z s WEIGHTS 1 2 WITHSCORES", 0), want);
        assert_eq!(cmd(&mut db, "ZINTERSTORE out 2 s z", 0), Frame::Integer(1));
        assert_eq!(cmd(&mut db, "ZSCORE out a", 0), Frame::Double(6.0));
        assert_eq!(
            cmd(&mut db, "ZDIFF 2 s z", 0),
            Frame::Array(vec![Frame::bulk("x")])
        );
        db.insert(b"str", Value::str(b"v"), 0);
        assert_eq!(
            cmd(&mut db, "ZUNION 2 z str WEIGHTS x y", 0),
            Error::WrongType.to_frame()
        );
        assert_eq!(
            cmd(&mut db, "ZUNION 2 z s WEIGHTS x y", 0),
            Error::err("weight value is not a float").to_frame()
        );
    }

    #[test]
    fn writes_touch_only_on_change() {
        let mut db = Db::new();
        cmd(&mut db, "ZADD z 1 a", 0);
        let w = db.watch(b"z", 0);
        cmd(&mut db, "ZADD z 1 a", 0);
        cmd(&mut db, "ZREM z nope", 0);
        cmd(&mut db, "ZADD z NX 5 a", 0);
        cmd(&mut db, "ZREMRANGEBYSCORE z 5 6", 0);
        assert!(!db.watch_is_dirty(&w, 0));
        cmd(&mut db, "ZINCRBY z 1 a", 0);
        assert!(db.watch_is_dirty(&w, 0));
        cmd(&mut db, "ZPOPMIN z", 0);
        assert!(
            db.get(b"z", 0).is_none(),
            "an emptied sorted set is deleted"
        );
    }
}
