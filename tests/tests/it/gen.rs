//! Random command sequences for the differential test.
//!
//! A sequence is a list of [`Step`]s, each one command on one of two client connections
//! (connection 0 does transactions; connection 1 is "another client" that writes between a
//! `WATCH` and its `EXEC`). Commands work on a small key space (`k0`..`k7`, shared by every
//! family so wrong types happen naturally) with small members and integers, and now and then
//! a bad argument, a wrong arity or an unknown command, so that error texts are compared too.
//!
//! Everything is drawn from one seed, so a sequence is replayed exactly from its seed.
//! Replies that may legitimately differ are named by [`kind_of`]: order-free replies are
//! compared as multisets, random picks by shape, millisecond clocks with a tolerance. The one
//! command whose *effect* is random, `SPOP` of fewer than all members, "taints" its key: the
//! generator keeps away from it (but for commands that only see its cardinality) until a
//! `DEL` clears it, so random pops never make later replies differ.
//!
//! Hashes are compared in order: they stay small, with short values, so Redis keeps them as
//! listpacks, whose order (insertion order) is part of what clients see. (A value longer than
//! 64 bytes would turn one into a hashtable with a random order; the generator never makes
//! one.) Sets, whose small non-integer form is already a hashtable in Redis 7.0, are
//! compared as multisets. Scans are whole-collection passes (cursor 0, `COUNT 1000`).
//! Relative TTLs are long and never repeat within a sequence, so GT/LT comparisons between
//! them never depend on the milliseconds between two commands.

use std::collections::BTreeSet;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The command families a sequence can draw from.
pub const FAMILIES: &[&str] = &["strings", "keys", "hashes", "lists", "sets", "zsets", "tx"];

pub const KEYS: &[&str] = &["k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"];

/// A far-future Unix time (2100-01-01) for EXAT/EXPIREAT, so absolute expiries are exact.
const FUTURE_S: i64 = 4_102_444_800;

#[derive(Clone, Debug)]
pub struct Step {
    pub conn: usize,
    pub args: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct Sequence {
    pub seed: u64,
    /// Both connections switch to RESP3 (`HELLO 3`) before the steps.
    pub resp3: bool,
    pub steps: Vec<Step>,
    /// Keys whose members were popped at random: compared by cardinality only at the end.
    pub tainted: BTreeSet<String>,
}

/// How two replies to one command are compared.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// Exactly, error texts included.
    Exact,
    /// Arrays (or RESP3 sets) as multisets: `SMEMBERS`, `KEYS`, `SUNION`, ...
    Multiset,
    /// A random pick of members: arrays of the same length (or both exactly equal otherwise).
    SameLen,
    /// A random pick of distinct members (positive count): as `SameLen`, and no repeats.
    SameLenDistinct,
    /// One random member: both bulk strings (or both exactly equal otherwise).
    AnyBulk,
    /// Integers that may differ by the given amount (clocks in ms or s); negative exactly.
    Near(i64),
    /// `[cursor, items]` of a whole scan in one call: cursors equal, items as a multiset of
    /// groups of `.0` (1 for keys and set members, 2 for field/value and member/score pairs).
    Scan(usize),
    /// Integers equal, or both at least `.0` and within `.1` of each other.
    NearAbove(i64, i64),
    /// `EXEC`: elementwise, with the kinds of the commands that were queued.
    Exec(Vec<Kind>),
}

/// How replies to `args` are compared (see [`Kind`]).
pub fn kind_of(args: &[String]) -> Kind {
    let name = args
        .first()
        .map(|s| s.to_ascii_uppercase())
        .unwrap_or_default();
    let count = |i: usize| args.get(i).and_then(|s| s.parse::<i64>().ok());
    match name.as_str() {
        "SMEMBERS" | "SINTER" | "SUNION" | "SDIFF" | "KEYS" => Kind::Multiset,
        "SCAN" | "SSCAN" => Kind::Scan(1),
        "HSCAN" | "ZSCAN" => Kind::Scan(2),
        "SPOP" | "SRANDMEMBER" | "HRANDFIELD" | "ZRANDMEMBER" => match count(2) {
            None if args.len() == 2 => Kind::AnyBulk,
            Some(n) if n >= 100 => Kind::Multiset,
            Some(n) if n > 0 && args.len() == 3 => Kind::SameLenDistinct,
            _ => Kind::SameLen,
        },
        // TTL rounds to the nearest second: exact for the relative TTLs set here (the
        // elapsed time is far below 500 ms), but for an absolute far-future expiry the
        // rounding flips at the half second, when the two servers may read a ms apart.
        "TTL" => Kind::NearAbove(100_000_000, 1),
        "PTTL" | "PEXPIRETIME" => Kind::Near(1000),
        "EXPIRETIME" => Kind::Near(1),
        _ => Kind::Exact,
    }
}

struct Gen {
    r: StdRng,
    tainted: BTreeSet<String>,
    steps: Vec<Step>,
    families: Vec<&'static str>,
    ttl_draws: i64,
}

const BLOCKING: &[&str] = &[
    "BLPOP",
    "BRPOP",
    "BLMOVE",
    "BRPOPLPUSH",
    "BLMPOP",
    "BZPOPMIN",
    "BZPOPMAX",
    "BZMPOP",
];

const MEMBERS: &[&str] = &[
    "a",
    "b",
    "c",
    "d",
    "e",
    "1",
    "2",
    "3",
    "-1",
    "10",
    "x y",
    "",
    "\u{e9}t\u{e9}",
];
const VALUES: &[&str] = &[
    "a",
    "b",
    "hello",
    "",
    "1",
    "2",
    "-3",
    "10",
    "3.5",
    "x y",
    "0",
    "007",
    " 1",
    "1e3",
    "-0",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "inf",
    "abc",
    "a\r\nb",
    "\u{e9}",
];
const FLOATS: &[&str] = &[
    "1",
    "0.5",
    "-2.25",
    "0",
    "1.5",
    "10.1",
    "3.0e2",
    "-1e-3",
    "inf",
    "-inf",
    "+inf",
    "nan",
    "abc",
    "1e400",
    "5.0000000000000001",
    "0x10",
];
const SCORES: &[&str] = &[
    "0", "1", "2", "3", "-1", "1.5", "2.5", "-inf", "+inf", "10", "1e1", "-0",
];
const SCORE_BOUNDS: &[&str] = &[
    "-inf", "+inf", "0", "1", "2", "(1", "(2", "1.5", "(1.5", "-1", "10", "(10", "inf", "abc", "(",
];
const LEX_BOUNDS: &[&str] = &[
    "-", "+", "[a", "(a", "[b", "(c", "[d", "[e", "(", "[", "a", "[1", "(3", "[x y",
];
const PATTERNS: &[&str] = &[
    "*", "k*", "k?", "k[0-3]", "k[^1-5]", "*7", "x*", "k\\1", "?", "k[", "k[]", "*[", "[k]*",
    "k[3-1]",
];

impl Gen {
    fn chance(&mut self, p: f64) -> bool {
        self.r.gen_bool(p)
    }

    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.r.gen_range(0..xs.len())]
    }

    /// An untainted key.
    fn key(&mut self) -> String {
        let free: Vec<&str> = KEYS
            .iter()
            .copied()
            .filter(|k| !self.tainted.contains(*k))
            .collect();
        if free.is_empty() {
            return "k0".into();
        }
        self.pick(&free).to_string()
    }

    fn keys(&mut self, max: usize) -> Vec<String> {
        let n = self.r.gen_range(1..=max);
        (0..n).map(|_| self.key()).collect()
    }

    fn member(&mut self) -> String {
        self.pick(MEMBERS).to_string()
    }

    fn value(&mut self) -> String {
        self.pick(VALUES).to_string()
    }

    /// A small integer, now and then an edge or a non-integer.
    fn int(&mut self) -> String {
        match self.r.gen_range(0..20) {
            0 => self
                .pick(&[
                    "9223372036854775807",
                    "-9223372036854775808",
                    "abc",
                    "1.5",
                    "",
                    "+1",
                    "00",
                ])
                .into(),
            1 => self.pick(&["100", "-100", "1000"]).into(),
            _ => self.r.gen_range(-3i64..=10).to_string(),
        }
    }

    /// A count argument: mostly small and positive.
    fn count(&mut self) -> String {
        match self.r.gen_range(0..20) {
            0 => "-1".into(),
            1 => "0".into(),
            2 => self
                .pick(&["abc", "9223372036854775807", "-9223372036854775808"])
                .into(),
            3 => "100".into(),
            _ => self.r.gen_range(1i64..=4).to_string(),
        }
    }

    fn index(&mut self) -> String {
        match self.r.gen_range(0..20) {
            0 => self
                .pick(&["abc", "9223372036854775807", "-9223372036854775808", "1.0"])
                .into(),
            _ => self.r.gen_range(-6i64..=6).to_string(),
        }
    }

    fn float(&mut self) -> String {
        self.pick(FLOATS).to_string()
    }

    fn score(&mut self) -> String {
        if self.chance(0.03) {
            return self.pick(&["nan", "abc", "(1", ""]).into();
        }
        self.pick(SCORES).to_string()
    }

    fn push(&mut self, conn: usize, args: Vec<String>) {
        self.steps.push(Step { conn, args });
    }

    /// Seconds for a relative expiry: long, so timing never decides (and now and then bad).
    fn ttl_s(&mut self) -> String {
        match self.r.gen_range(0..20) {
            0 => "0".into(),
            1 => "-5".into(),
            2 => self
                .pick(&["abc", "9223372036854775807", "1.5", "-9223372036854775808"])
                .into(),
            _ => self.relative_s().to_string(),
        }
    }

    /// A long relative TTL in seconds, never the same twice in a sequence: two equal
    /// relative TTLs set a few ms apart compare (GT/LT) by timing, which must never decide.
    fn relative_s(&mut self) -> i64 {
        self.ttl_draws += 1;
        let base = [1000i64, 2000, 5000, 100_000][self.r.gen_range(0..4)];
        base + 7 * self.ttl_draws
    }

    fn ttl_ms(&mut self) -> String {
        match self.r.gen_range(0..20) {
            0 => "0".into(),
            1 => "-5".into(),
            2 => self.pick(&["abc", "9223372036854775807"]).into(),
            _ => (self.relative_s() * 1000).to_string(),
        }
    }

    fn at_s(&mut self) -> String {
        match self.r.gen_range(0..10) {
            0 => "1".into(),
            1 => "abc".into(),
            _ => (FUTURE_S + self.r.gen_range(0i64..4) * 1000).to_string(),
        }
    }

    fn at_ms(&mut self) -> String {
        match self.r.gen_range(0..10) {
            0 => "1".into(),
            1 => "abc".into(),
            _ => ((FUTURE_S + self.r.gen_range(0i64..4) * 1000) * 1000).to_string(),
        }
    }

    /// An expiry option for SET / GETEX. SET never gets a time in the past: Redis 7.0 keeps
    /// such a key (counted by DBSIZE) until active expiry happens to sample it, so replies
    /// would depend on timing; GETEX deletes it at once, deterministically.
    fn expiry_opt(&mut self, out: &mut Vec<String>, past_ok: bool) {
        match self.r.gen_range(0..5) {
            0 => {
                out.push("EX".into());
                let t = self.ttl_s();
                out.push(t);
            }
            1 => {
                out.push("PX".into());
                let t = self.ttl_ms();
                out.push(t);
            }
            2 => {
                out.push("EXAT".into());
                let mut t = self.at_s();
                if t == "1" && !past_ok {
                    t = FUTURE_S.to_string();
                }
                out.push(t);
            }
            3 => {
                out.push("PXAT".into());
                let mut t = self.at_ms();
                if t == "1" && !past_ok {
                    t = (FUTURE_S * 1000).to_string();
                }
                out.push(t);
            }
            _ => out.push("KEEPTTL".into()),
        }
    }

    fn strings(&mut self) -> Vec<String> {
        let k = self.key();
        let s = |x: &str| x.to_string();
        match self.r.gen_range(0..26) {
            0..=2 => vec![s("GET"), k],
            3..=6 => {
                let mut a = vec![s("SET"), k, self.value()];
                if self.chance(0.2) {
                    a.push(self.pick(&["NX", "XX"]).into());
                }
                if self.chance(0.2) {
                    a.push("GET".into());
                }
                if self.chance(0.3) {
                    self.expiry_opt(&mut a, false);
                }
                if self.chance(0.05) {
                    self.expiry_opt(&mut a, false);
                }
                if self.chance(0.05) {
                    a.push(self.pick(&["NX", "XX", "PERSIST", "EX"]).into());
                }
                a
            }
            7 => vec![s("SETNX"), k, self.value()],
            8 => vec![s("SETEX"), k, self.ttl_s(), self.value()],
            9 => vec![s("PSETEX"), k, self.ttl_ms(), self.value()],
            10 => vec![s("GETSET"), k, self.value()],
            11 => vec![s("GETDEL"), k],
            12 => {
                let mut a = vec![s("GETEX"), k];
                match self.r.gen_range(0..6) {
                    0 => a.push("PERSIST".into()),
                    1 => {}
                    _ => self.expiry_opt(&mut a, true),
                }
                a
            }
            13 => {
                let mut a = vec![s("MGET")];
                a.extend(self.keys(4));
                a
            }
            14 => {
                let mut a = vec![s(self.pick(&["MSET", "MSET", "MSETNX"]))];
                for _ in 0..self.r.gen_range(1..=3) {
                    a.push(self.key());
                    a.push(self.value());
                }
                a
            }
            15 => vec![s("APPEND"), k, self.value()],
            16 => vec![s("STRLEN"), k],
            17 => vec![s(self.pick(&["INCR", "DECR"])), k],
            18 => vec![s(self.pick(&["INCRBY", "DECRBY"])), k, self.int()],
            19 => vec![s("INCRBYFLOAT"), k, self.float()],
            20 => vec![
                s(self.pick(&["GETRANGE", "SUBSTR"])),
                k,
                self.index(),
                self.index(),
            ],
            21 => {
                let off = match self.r.gen_range(0..12) {
                    0 => "-1".into(),
                    1 => "536870912".into(),
                    2 => "abc".into(),
                    _ => self.r.gen_range(0..8).to_string(),
                };
                vec![s("SETRANGE"), k, off, self.value()]
            }
            22 => {
                let mut a = vec![s("LCS"), k, self.key()];
                match self.r.gen_range(0..4) {
                    0 => a.push("LEN".into()),
                    1 => {
                        a.push("IDX".into());
                        if self.chance(0.5) {
                            a.push("MINMATCHLEN".into());
                            a.push(self.r.gen_range(0..3).to_string());
                        }
                        if self.chance(0.5) {
                            a.push("WITHMATCHLEN".into());
                        }
                    }
                    _ => {}
                }
                a
            }
            23 => vec![s("SET"), k, self.int()],
            24 => vec![s("INCRBY"), k, self.int()],
            _ => vec![s("APPEND"), k, self.member()],
        }
    }

    /// A scan that covers everything in one call (cursor 0, a large COUNT; small
    /// collections), so no cursor order is compared; now and then a bad cursor or option.
    fn scan(&mut self, name: &str, key: Option<String>) -> Vec<String> {
        let mut a = vec![name.to_string()];
        a.extend(key);
        a.push(match self.r.gen_range(0..20) {
            0 => self.pick(&["abc", "", "1.5"]).into(),
            _ => "0".into(),
        });
        a.push("COUNT".into());
        a.push(
            self.pick(&["1000", "1000", "1000", "1000", "0", "-1", "abc"])
                .into(),
        );
        if self.chance(0.4) {
            a.push("MATCH".into());
            a.push(self.pick(PATTERNS).into());
        }
        if name == "SCAN" && self.chance(0.3) {
            a.push("TYPE".into());
            a.push(
                self.pick(&["string", "list", "hash", "set", "zset", "nosuch"])
                    .into(),
            );
        }
        a
    }

    fn expire_flag(&mut self, a: &mut Vec<String>) {
        if self.chance(0.3) {
            a.push(self.pick(&["NX", "XX", "GT", "LT"]).into());
            if self.chance(0.15) {
                a.push(self.pick(&["NX", "XX", "GT", "LT", "FOO"]).into());
            }
        }
    }

    fn keyspace(&mut self) -> Vec<String> {
        let k = self.key();
        let s = |x: &str| x.to_string();
        match self.r.gen_range(0..27) {
            26 => self.scan("SCAN", None),
            24 | 25 => match self.r.gen_range(0..10) {
                0 => vec![s("OBJECT"), s("REFCOUNT"), k],
                1 => vec![s("OBJECT"), s("FREQ"), k],
                2 => vec![s("OBJECT"), s(self.pick(&["NOSUCH", "ENCODING"]))],
                _ => vec![s("OBJECT"), s(self.pick(&["ENCODING", "encoding"])), k],
            },
            0 | 1 => {
                let mut a = vec![s(self.pick(&["DEL", "UNLINK"]))];
                a.extend(self.keys(3));
                a
            }
            2 => {
                let mut a = vec![s(self.pick(&["EXISTS", "TOUCH"]))];
                a.extend(self.keys(3));
                a
            }
            3 => vec![s("TYPE"), k],
            4 | 5 => {
                let mut a = vec![s("EXPIRE"), k, self.ttl_s()];
                self.expire_flag(&mut a);
                a
            }
            6 => {
                let mut a = vec![s("PEXPIRE"), k, self.ttl_ms()];
                self.expire_flag(&mut a);
                a
            }
            7 => {
                let mut a = vec![s("EXPIREAT"), k, self.at_s()];
                self.expire_flag(&mut a);
                a
            }
            8 => {
                let mut a = vec![s("PEXPIREAT"), k, self.at_ms()];
                self.expire_flag(&mut a);
                a
            }
            9 | 10 => vec![s("TTL"), k],
            11 => vec![s(self.pick(&["PTTL", "EXPIRETIME", "PEXPIRETIME"])), k],
            12 => vec![s("PERSIST"), k],
            13 => vec![s(self.pick(&["RENAME", "RENAMENX"])), k, self.key()],
            14 => {
                let mut a = vec![s("COPY"), k, self.key()];
                if self.chance(0.4) {
                    a.push("REPLACE".into());
                }
                a
            }
            15 | 16 => vec![s("KEYS"), s(self.pick(PATTERNS))],
            17 => vec![s("DBSIZE")],
            18..=20 => {
                let mut a = vec![s(self.pick(&["SORT", "SORT", "SORT_RO"])), k];
                if self.chance(0.3) {
                    a.push("LIMIT".into());
                    a.push(self.index());
                    a.push(self.count());
                }
                if self.chance(0.4) {
                    a.push(s(self.pick(&["ASC", "DESC"])));
                }
                if self.chance(0.4) {
                    a.push("ALPHA".into());
                }
                if a[0] == "SORT" && self.chance(0.2) {
                    a.push("STORE".into());
                    a.push(self.key());
                }
                a
            }
            21 => vec![s("PING")],
            22 => vec![s("ECHO"), self.value()],
            _ => vec![s("EXISTS"), k],
        }
    }

    fn hashes(&mut self) -> Vec<String> {
        let k = self.key();
        let s = |x: &str| x.to_string();
        match self.r.gen_range(0..23) {
            22 => self.scan("HSCAN", Some(k)),
            0..=3 => {
                let mut a = vec![s(self.pick(&["HSET", "HSET", "HMSET"])), k];
                for _ in 0..self.r.gen_range(1..=3) {
                    a.push(self.member());
                    a.push(self.value());
                }
                a
            }
            4 => vec![s("HSETNX"), k, self.member(), self.value()],
            5 | 6 => vec![s("HGET"), k, self.member()],
            7 => {
                let mut a = vec![s("HMGET"), k];
                for _ in 0..self.r.gen_range(1..=3) {
                    a.push(self.member());
                }
                a
            }
            8 | 9 => {
                let mut a = vec![s("HDEL"), k];
                for _ in 0..self.r.gen_range(1..=3) {
                    a.push(self.member());
                }
                a
            }
            10 => vec![s("HLEN"), k],
            11 => vec![s("HSTRLEN"), k, self.member()],
            12 => vec![s("HEXISTS"), k, self.member()],
            13 => vec![s("HKEYS"), k],
            14 => vec![s("HVALS"), k],
            15 | 16 => vec![s("HGETALL"), k],
            17 => vec![s("HINCRBY"), k, self.member(), self.int()],
            18 => {
                // No 1e400 here: its 400-digit result would make Redis convert the hash to a
                // hashtable, whose order is not comparable; hashes are compared in order.
                let f = self.float();
                let f = if f == "1e400" { s("1e30") } else { f };
                vec![s("HINCRBYFLOAT"), k, self.member(), f]
            }
            19 | 20 => {
                let mut a = vec![s("HRANDFIELD"), k];
                if self.chance(0.7) {
                    a.push(self.count());
                    if self.chance(0.5) {
                        a.push("WITHVALUES".into());
                    }
                }
                a
            }
            _ => vec![s("HSET"), k, self.member(), self.int()],
        }
    }

    fn end(&mut self) -> String {
        self.pick(&["LEFT", "RIGHT"]).into()
    }

    fn timeout(&mut self) -> String {
        self.pick(&["0.01", "0.01", "0.02", "-1", "abc"]).into()
    }

    fn lists(&mut self, in_multi: bool) -> Vec<String> {
        let k = self.key();
        let s = |x: &str| x.to_string();
        match self.r.gen_range(0..30) {
            0..=4 => {
                let mut a = vec![
                    s(self.pick(&["LPUSH", "RPUSH", "LPUSH", "RPUSH", "LPUSHX", "RPUSHX"])),
                    k,
                ];
                for _ in 0..self.r.gen_range(1..=3) {
                    a.push(self.member());
                }
                a
            }
            5..=7 => {
                let mut a = vec![s(self.pick(&["LPOP", "RPOP"])), k];
                if self.chance(0.4) {
                    a.push(self.count());
                }
                a
            }
            8 => vec![s("LLEN"), k],
            9..=11 => vec![s("LRANGE"), k, self.index(), self.index()],
            12 => vec![s("LINDEX"), k, self.index()],
            13 => vec![s("LSET"), k, self.index(), self.member()],
            14 => vec![
                s("LINSERT"),
                k,
                s(self.pick(&["BEFORE", "AFTER", "before", "MIDDLE"])),
                self.member(),
                self.member(),
            ],
            15 => vec![s("LREM"), k, self.index(), self.member()],
            16 => vec![s("LTRIM"), k, self.index(), self.index()],
            17 => {
                let mut a = vec![s("LPOS"), k, self.member()];
                if self.chance(0.4) {
                    a.push("RANK".into());
                    a.push(self.pick(&["1", "2", "-1", "-2", "0", "abc"]).into());
                }
                if self.chance(0.4) {
                    a.push("COUNT".into());
                    a.push(self.pick(&["0", "1", "2", "-1"]).into());
                }
                if self.chance(0.2) {
                    a.push("MAXLEN".into());
                    a.push(self.pick(&["0", "1", "3", "-1"]).into());
                }
                a
            }
            18 | 19 => vec![s("LMOVE"), k, self.key(), self.end(), self.end()],
            20 => vec![s("RPOPLPUSH"), k, self.key()],
            21 => {
                let keys = self.keys(3);
                let mut a = vec![s("LMPOP"), keys.len().to_string()];
                if self.chance(0.05) {
                    a[1] = s(self.pick(&["0", "5", "-1"]));
                }
                a.extend(keys);
                a.push(self.end());
                if self.chance(0.5) {
                    a.push("COUNT".into());
                    a.push(self.count());
                }
                a
            }
            22..=24 if in_multi || self.chance(0.3) => {
                // Outside MULTI these block for at most a few ms on an empty list.
                match self.r.gen_range(0..5) {
                    0 | 1 => {
                        let mut a = vec![s(self.pick(&["BLPOP", "BRPOP"]))];
                        a.extend(self.keys(2));
                        a.push(self.timeout());
                        a
                    }
                    2 => vec![
                        s("BLMOVE"),
                        k,
                        self.key(),
                        self.end(),
                        self.end(),
                        self.timeout(),
                    ],
                    3 => vec![s("BRPOPLPUSH"), k, self.key(), self.timeout()],
                    _ => {
                        let keys = self.keys(2);
                        let mut a = vec![s("BLMPOP"), self.timeout(), keys.len().to_string()];
                        a.extend(keys);
                        a.push(self.end());
                        if self.chance(0.5) {
                            a.push("COUNT".into());
                            a.push(self.count());
                        }
                        a
                    }
                }
            }
            _ => vec![s("RPUSH"), k, self.member()],
        }
    }

    fn sets(&mut self) -> Vec<String> {
        let k = self.key();
        let s = |x: &str| x.to_string();
        match self.r.gen_range(0..27) {
            26 => self.scan("SSCAN", Some(k)),
            0..=4 => {
                let mut a = vec![s("SADD"), k];
                for _ in 0..self.r.gen_range(1..=4) {
                    a.push(self.member());
                }
                a
            }
            5 | 6 => {
                let mut a = vec![s("SREM"), k];
                for _ in 0..self.r.gen_range(1..=3) {
                    a.push(self.member());
                }
                a
            }
            7 => vec![s("SCARD"), k],
            8 => vec![s("SISMEMBER"), k, self.member()],
            9 => {
                let mut a = vec![s("SMISMEMBER"), k];
                for _ in 0..self.r.gen_range(1..=3) {
                    a.push(self.member());
                }
                a
            }
            10 | 11 => vec![s("SMEMBERS"), k],
            12 | 13 => {
                let mut a = vec![s(self.pick(&["SINTER", "SUNION", "SDIFF"]))];
                a.extend(self.keys(3));
                a
            }
            14 | 15 => {
                let mut a = vec![
                    s(self.pick(&["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"])),
                    k,
                ];
                a.extend(self.keys(3));
                a
            }
            16 => {
                let keys = self.keys(3);
                let mut a = vec![s("SINTERCARD"), keys.len().to_string()];
                if self.chance(0.05) {
                    a[1] = s(self.pick(&["0", "5", "-1", "abc"]));
                }
                a.extend(keys);
                if self.chance(0.4) {
                    a.push("LIMIT".into());
                    a.push(self.pick(&["0", "1", "2", "-1"]).into());
                }
                a
            }
            17 | 18 => vec![s("SMOVE"), k, self.key(), self.member()],
            19 | 20 => {
                // A pop of fewer than all members is random: the key is tainted.
                let mut a = vec![s("SPOP"), k.clone()];
                match self.r.gen_range(0..4) {
                    0 => a.push("100".into()),
                    1 => a.push(self.pick(&["0", "-1", "abc"]).into()),
                    2 => {
                        a.push(self.r.gen_range(1..4).to_string());
                        self.tainted.insert(k);
                    }
                    _ => {
                        self.tainted.insert(k);
                    }
                }
                a
            }
            21 | 22 => {
                let mut a = vec![s("SRANDMEMBER"), k];
                if self.chance(0.7) {
                    a.push(self.count());
                }
                a
            }
            _ => vec![s("SADD"), k, self.int()],
        }
    }

    fn zadd_pairs(&mut self, a: &mut Vec<String>, max: usize) {
        for _ in 0..self.r.gen_range(1..=max) {
            a.push(self.score());
            a.push(self.member());
        }
    }

    fn limit(&mut self, a: &mut Vec<String>) {
        a.push("LIMIT".into());
        a.push(self.pick(&["0", "1", "2", "-1", "5"]).into());
        a.push(self.pick(&["1", "2", "-1", "0", "10"]).into());
    }

    fn zsets(&mut self, in_multi: bool) -> Vec<String> {
        let k = self.key();
        let s = |x: &str| x.to_string();
        match self.r.gen_range(0..41) {
            40 => self.scan("ZSCAN", Some(k)),
            0..=5 => {
                let mut a = vec![s("ZADD"), k];
                for flag in ["NX", "XX", "GT", "LT", "CH", "INCR"] {
                    if self.chance(0.12) {
                        a.push(flag.into());
                    }
                }
                let incr = a.iter().any(|x| x == "INCR");
                let max = if incr && self.chance(0.8) { 1 } else { 3 };
                self.zadd_pairs(&mut a, max);
                a
            }
            6 => vec![s("ZINCRBY"), k, self.float(), self.member()],
            7 | 8 => vec![s("ZSCORE"), k, self.member()],
            9 => {
                let mut a = vec![s("ZMSCORE"), k];
                for _ in 0..self.r.gen_range(1..=3) {
                    a.push(self.member());
                }
                a
            }
            10 => vec![s("ZCARD"), k],
            11 => vec![
                s("ZCOUNT"),
                k,
                s(self.pick(SCORE_BOUNDS)),
                s(self.pick(SCORE_BOUNDS)),
            ],
            12 => vec![
                s("ZLEXCOUNT"),
                k,
                s(self.pick(LEX_BOUNDS)),
                s(self.pick(LEX_BOUNDS)),
            ],
            13..=16 => {
                let mut a = vec![s("ZRANGE"), k];
                let by = self.r.gen_range(0..3);
                match by {
                    0 => {
                        a.push(self.index());
                        a.push(self.index());
                    }
                    1 => {
                        a.push(s(self.pick(SCORE_BOUNDS)));
                        a.push(s(self.pick(SCORE_BOUNDS)));
                        a.push("BYSCORE".into());
                    }
                    _ => {
                        a.push(s(self.pick(LEX_BOUNDS)));
                        a.push(s(self.pick(LEX_BOUNDS)));
                        a.push("BYLEX".into());
                    }
                }
                if self.chance(0.3) {
                    a.push("REV".into());
                }
                if self.chance(if by == 0 { 0.05 } else { 0.3 }) {
                    self.limit(&mut a);
                }
                if self.chance(if by == 2 { 0.05 } else { 0.4 }) {
                    a.push("WITHSCORES".into());
                }
                a
            }
            17 | 18 => {
                let name = s(self.pick(&["ZRANGEBYSCORE", "ZREVRANGEBYSCORE"]));
                let mut a = vec![
                    name,
                    k,
                    s(self.pick(SCORE_BOUNDS)),
                    s(self.pick(SCORE_BOUNDS)),
                ];
                if self.chance(0.4) {
                    a.push("WITHSCORES".into());
                }
                if self.chance(0.3) {
                    self.limit(&mut a);
                }
                a
            }
            19 => {
                let name = s(self.pick(&["ZRANGEBYLEX", "ZREVRANGEBYLEX"]));
                let mut a = vec![name, k, s(self.pick(LEX_BOUNDS)), s(self.pick(LEX_BOUNDS))];
                if self.chance(0.3) {
                    self.limit(&mut a);
                }
                a
            }
            20 => {
                let mut a = vec![s("ZREVRANGE"), k, self.index(), self.index()];
                if self.chance(0.4) {
                    a.push("WITHSCORES".into());
                }
                a
            }
            21 | 22 => vec![s(self.pick(&["ZRANK", "ZREVRANK"])), k, self.member()],
            23 | 24 => {
                let mut a = vec![s("ZREM"), k];
                for _ in 0..self.r.gen_range(1..=3) {
                    a.push(self.member());
                }
                a
            }
            25 => vec![s("ZREMRANGEBYRANK"), k, self.index(), self.index()],
            26 => vec![
                s("ZREMRANGEBYSCORE"),
                k,
                s(self.pick(SCORE_BOUNDS)),
                s(self.pick(SCORE_BOUNDS)),
            ],
            27 => vec![
                s("ZREMRANGEBYLEX"),
                k,
                s(self.pick(LEX_BOUNDS)),
                s(self.pick(LEX_BOUNDS)),
            ],
            28 | 29 => {
                let mut a = vec![s(self.pick(&["ZPOPMIN", "ZPOPMAX"])), k];
                if self.chance(0.4) {
                    a.push(self.count());
                }
                a
            }
            30 => {
                let keys = self.keys(3);
                let mut a = vec![s("ZMPOP"), keys.len().to_string()];
                a.extend(keys);
                a.push(s(self.pick(&["MIN", "MAX", "MIN", "MAX", "LEFT"])));
                if self.chance(0.5) {
                    a.push("COUNT".into());
                    a.push(self.count());
                }
                a
            }
            31 if in_multi || self.chance(0.3) => {
                if self.chance(0.7) {
                    let mut a = vec![s(self.pick(&["BZPOPMIN", "BZPOPMAX"]))];
                    a.extend(self.keys(2));
                    a.push(self.timeout());
                    a
                } else {
                    let keys = self.keys(2);
                    let mut a = vec![s("BZMPOP"), self.timeout(), keys.len().to_string()];
                    a.extend(keys);
                    a.push(s(self.pick(&["MIN", "MAX"])));
                    a
                }
            }
            32 => {
                let mut a = vec![s("ZRANDMEMBER"), k];
                if self.chance(0.7) {
                    a.push(self.count());
                    if self.chance(0.5) {
                        a.push("WITHSCORES".into());
                    }
                }
                a
            }
            33..=35 => {
                let store = self.chance(0.5);
                let op = s(self.pick(&["ZUNION", "ZINTER", "ZDIFF"]));
                let keys = self.keys(3);
                let mut a = if store {
                    vec![format!("{op}STORE"), k]
                } else {
                    vec![op.clone()]
                };
                a.push(keys.len().to_string());
                if self.chance(0.04) {
                    let last = a.len() - 1;
                    a[last] = s(self.pick(&["0", "9", "-1", "abc"]));
                }
                let n = keys.len();
                a.extend(keys);
                if op != "ZDIFF" {
                    if self.chance(0.3) {
                        a.push("WEIGHTS".into());
                        for _ in 0..n {
                            a.push(s(self.pick(&["1", "2", "0", "-1", "0.5", "inf", "abc"])));
                        }
                    }
                    if self.chance(0.3) {
                        a.push("AGGREGATE".into());
                        a.push(s(self.pick(&["SUM", "MIN", "MAX", "AVG"])));
                    }
                }
                if !store && self.chance(0.5) {
                    a.push("WITHSCORES".into());
                }
                a
            }
            36 => {
                let keys = self.keys(3);
                let mut a = vec![s("ZINTERCARD"), keys.len().to_string()];
                a.extend(keys);
                if self.chance(0.4) {
                    a.push("LIMIT".into());
                    a.push(s(self.pick(&["0", "1", "2", "-1"])));
                }
                a
            }
            37 => {
                let mut a = vec![s("ZRANGESTORE"), k, self.key()];
                if self.chance(0.5) {
                    a.push(self.index());
                    a.push(self.index());
                } else {
                    a.push(s(self.pick(SCORE_BOUNDS)));
                    a.push(s(self.pick(SCORE_BOUNDS)));
                    a.push("BYSCORE".into());
                    if self.chance(0.3) {
                        self.limit(&mut a);
                    }
                }
                if self.chance(0.3) {
                    a.push("REV".into());
                }
                a
            }
            _ => {
                let mut a = vec![s("ZADD"), k];
                self.zadd_pairs(&mut a, 2);
                a
            }
        }
    }

    /// One command from a family (not `tx`), maybe mangled.
    fn command(&mut self, in_multi: bool) -> Vec<String> {
        let fams: Vec<&str> = self
            .families
            .iter()
            .copied()
            .filter(|f| *f != "tx")
            .collect();
        let fam = if fams.is_empty() {
            "strings"
        } else {
            self.pick(&fams)
        };
        let mut a = match fam {
            "strings" => self.strings(),
            "keys" => self.keyspace(),
            "hashes" => self.hashes(),
            "lists" => self.lists(in_multi),
            "sets" => self.sets(),
            "zsets" => self.zsets(in_multi),
            _ => unreachable!("family {fam}"),
        };
        self.mangle(&mut a);
        a
    }

    /// Now and then: a wrong arity, a junk argument, an unknown command, a lower-case name.
    fn mangle(&mut self, a: &mut Vec<String>) {
        // Blocking commands keep their timeout: a mangled one could block for good.
        // Nor do scans: another cursor or COUNT would make the reply implementation-defined.
        let blocking = BLOCKING
            .iter()
            .chain(&["SCAN", "HSCAN", "SSCAN", "ZSCAN"])
            .any(|b| a[0].eq_ignore_ascii_case(b));
        match self.r.gen_range(0..100) {
            0..=4 if blocking => {}
            0 if a.len() > 1 => {
                a.pop();
            }
            1 => a.push(self.pick(&["junk", "1", "WITHSCORES", "NX"]).into()),
            2 => a.truncate(1),
            3 if a.len() > 2 => {
                let i = self.r.gen_range(1..a.len());
                a[i] = self.pick(&["notanumber", "-1", "", "0"]).into();
            }
            4 => a[0] = self.pick(&["FOO", "SETT", "getx"]).into(),
            5..=9 => a[0] = a[0].to_ascii_lowercase(),
            _ => {}
        }
        // A SPOP that lost its count or key may still pop at random.
        if a.first().is_some_and(|n| n.eq_ignore_ascii_case("spop")) && kind_of(a) != Kind::Multiset
        {
            if let Some(k) = a.get(1) {
                self.tainted.insert(k.clone());
            }
        }
    }

    /// A transaction on connection 0: maybe WATCH (and another client's write), then
    /// MULTI, a few queued commands (maybe a bad one), then EXEC or DISCARD.
    fn transaction(&mut self) {
        let s = |x: &str| x.to_string();
        let watched = if self.chance(0.6) {
            let keys = self.keys(2);
            let mut a = vec![s("WATCH")];
            a.extend(keys.iter().cloned());
            self.push(0, a);
            keys
        } else {
            Vec::new()
        };
        for _ in 0..self.r.gen_range(0..3) {
            // Some writes between WATCH and EXEC, from this or another client, maybe to a
            // watched key, maybe a write that changes nothing.
            let conn = self.r.gen_range(0..2);
            let key = if !watched.is_empty() && self.chance(0.6) {
                watched[self.r.gen_range(0..watched.len())].clone()
            } else {
                self.key()
            };
            let a = match self.r.gen_range(0..7) {
                0 => vec![s("SET"), key, self.value()],
                1 => vec![s("DEL"), key],
                2 => vec![s("SREM"), key, s("nosuchmember")],
                3 => vec![s("GET"), key],
                4 => vec![s("EXPIRE"), key, self.ttl_s()],
                5 => vec![s("SADD"), key, self.member()],
                _ => self.command(false),
            };
            self.push(conn, a);
        }
        if self.chance(0.1) {
            self.push(0, vec![s("UNWATCH")]);
        }
        self.push(0, vec![s("MULTI")]);
        for _ in 0..self.r.gen_range(0..6) {
            let a = match self.r.gen_range(0..30) {
                0 => vec![s("MULTI")],
                1 => vec![s("WATCH"), self.key()],
                2 => vec![s("GET")],
                3 => vec![s("NOSUCHCMD"), s("x")],
                _ => self.command(true),
            };
            self.push(0, a);
        }
        let end = match self.r.gen_range(0..10) {
            0 => "DISCARD",
            _ => "EXEC",
        };
        self.push(0, vec![s(end)]);
        if self.chance(0.1) {
            let extra = s(self.pick(&["EXEC", "DISCARD", "UNWATCH"]));
            self.push(0, vec![extra]);
        }
    }
}

/// The sequence for `seed`: `len` steps (a transaction counts as several) from `families`;
/// `resp3` is the chance that the sequence runs in RESP3.
pub fn sequence(seed: u64, len: usize, families: &[&'static str], resp3: f64) -> Sequence {
    let mut g = Gen {
        r: StdRng::seed_from_u64(seed),
        tainted: BTreeSet::new(),
        steps: Vec::new(),
        families: Vec::new(),
        ttl_draws: 0,
    };
    // Each sequence draws from one to three of the allowed families, so collections grow.
    let mut fams: Vec<&'static str> = families.to_vec();
    let n = g.r.gen_range(1..=3.min(fams.len().max(1)));
    let mut chosen = Vec::new();
    while chosen.len() < n && !fams.is_empty() {
        let i = g.r.gen_range(0..fams.len());
        chosen.push(fams.swap_remove(i));
    }
    if chosen == ["tx"] {
        chosen.push("strings");
    }
    g.families = chosen;
    let resp3 = g.chance(resp3.clamp(0.0, 1.0));
    let tx = g.families.contains(&"tx");
    while g.steps.len() < len {
        if g.tainted.len() >= 4 {
            let mut a = vec!["DEL".to_string()];
            a.extend(g.tainted.iter().cloned());
            g.tainted.clear();
            g.push(0, a);
            continue;
        }
        if tx && g.chance(0.12) {
            g.transaction();
        } else {
            let conn = usize::from(tx && g.chance(0.1));
            let a = g.command(false);
            g.push(conn, a);
        }
    }
    Sequence {
        seed,
        resp3,
        steps: g.steps,
        tainted: g.tainted,
    }
}
