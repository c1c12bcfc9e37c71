//! Workloads: which operations clients invoke, how each runs against redraft through the
//! `redis` crate, and how a reply or an error becomes `ok`, `fail` or `info`.
//!
//! - register: `SET`/`GET` of integers on [`REGISTER_KEYS`] keys; written values are
//!   unique per key (a counter per key), which keeps the linearizability search small.
//! - counter: `INCRBY counterK n` (n in 1..=5) and `GET counterK` (a missing key reads 0)
//!   on [`COUNTER_KEYS`] keys.
//! - set: `SADD setK n` of unique integers on [`SET_KEYS`] keys, a few `SMEMBERS` reads
//!   along the way.
//! - list-append: `MULTI` of 1-3 `RPUSH`/`LRANGE` on the [`LIST_KEYS`] keys of one of
//!   [`LIST_TAGS`] hash tags (`{laT}kK`: a transaction stays in one slot, as Redis Cluster
//!   demands), then `EXEC`; appended values are unique per key.
//!
//! With the default 16 groups every workload's keys span several slots and groups (a
//! test checks it), so faults meet many groups at once.
//! - big-values: the register on [`BIG_KEYS`] keys, each written integer `n` padded to
//!   [`big_len`]`(n)` bytes (1 KiB to 3 MiB: most travel as large writes, in parts); a
//!   read checks the padding, and a value whose padding is wrong reads as `-1`, a value no
//!   write wrote, so the checker reports it.
//!
//! Outcomes (see `cluster`'s module header for redraft's error semantics): a read that
//! fails in any way is `fail` (reads change nothing). A write refused with `-CLUSTERDOWN`
//! or `-MISCONF` (a node whose disk is full refuses it before proposing) never reached a
//! log: `fail`. Any other error on a write (`write outcome unknown`, a
//! timeout, a lost connection, an error text we do not know) is `info`: it may or may not
//! take effect.

use std::sync::atomic::{AtomicI64, Ordering};

use lincheck::history::Type;
pub use lincheck::Workload;
use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::{json, Value};

/// Keys of the register workload.
pub const REGISTER_KEYS: usize = 3;
/// TTL of every register write: a day, far beyond any run. Its expiry time is computed
/// from the entry's time, the same on every replica, so it is part of what the replica
/// checks compare (the `local-clock` self-test breaks exactly that).
const REGISTER_TTL_MS: u64 = 86_400_000;
/// Hash tags of the list-append workload, each its own slot.
pub const LIST_TAGS: usize = 4;
/// Keys of the list-append workload per hash tag.
pub const LIST_KEYS: usize = 3;
/// Keys of the counter workload.
pub const COUNTER_KEYS: usize = 6;
/// Keys of the set workload.
pub const SET_KEYS: usize = 6;

/// The counter key `i`.
pub fn counter_key(i: usize) -> String {
    format!("counter{i}")
}

/// The set key `i`.
pub fn set_key(i: usize) -> String {
    format!("set{i}")
}
/// Keys of the big-values workload.
pub const BIG_KEYS: usize = 3;

/// The big-values key `i`.
pub fn big_key(i: usize) -> String {
    format!("big{i}")
}

/// The length of the value that carries integer `n` in the big-values workload: one of
/// 1 KiB, 48 KiB, 200 KiB, 1 MiB and 3 MiB, picked by `n`.
pub fn big_len(n: i64) -> usize {
    const SIZES: [usize; 5] = [1 << 10, 48 << 10, 200 << 10, 1 << 20, 3 << 20];
    SIZES[(n.unsigned_abs().wrapping_mul(2_654_435_761) % SIZES.len() as u64) as usize]
}

/// The value that carries `n`: `n:` then padding that depends on `n` and the offset.
pub fn big_value(n: i64) -> Vec<u8> {
    let mut v = format!("{n}:").into_bytes();
    let len = big_len(n).max(v.len());
    let start = v.len();
    v.extend((start..len).map(|i| b'a' + ((n.unsigned_abs() as usize + i) % 26) as u8));
    v
}

/// The integer a big-values value carries, or why it is not one [`big_value`] made.
pub fn parse_big(v: &[u8]) -> Result<i64, String> {
    let colon = v
        .iter()
        .position(|&b| b == b':')
        .ok_or_else(|| "no `n:` prefix".to_string())?;
    let n: i64 = std::str::from_utf8(&v[..colon])
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| "the prefix is not an integer".to_string())?;
    if v != big_value(n).as_slice() {
        return Err(format!(
            "the value of {n} is {} bytes, not the {} written, or its padding differs",
            v.len(),
            big_len(n)
        ));
    }
    Ok(n)
}

/// One operation as invoked (the `f`, `key` and `value` of its invoke event).
#[derive(Clone, Debug, PartialEq)]
pub struct Op {
    pub f: &'static str,
    pub key: Option<String>,
    pub value: Value,
}

impl Op {
    /// True if the operation may change state (its unknown outcomes are `info`).
    pub fn is_write(&self) -> bool {
        match self.f {
            "write" | "add" => true,
            "txn" => self
                .value
                .as_array()
                .is_some_and(|mops| mops.iter().any(|m| m[0] == "append")),
            _ => false,
        }
    }
}

/// Every key `workload` writes to.
pub fn keys(workload: Workload) -> Vec<String> {
    match workload {
        Workload::Register => (0..REGISTER_KEYS).map(register_key).collect(),
        Workload::BigValues => (0..BIG_KEYS).map(big_key).collect(),
        Workload::ListAppend => (0..LIST_TAGS)
            .flat_map(|t| (0..LIST_KEYS).map(move |k| list_key(t, k)))
            .collect(),
        Workload::Counter => (0..COUNTER_KEYS).map(counter_key).collect(),
        Workload::Set => (0..SET_KEYS).map(set_key).collect(),
    }
}

/// The register key `i`.
pub fn register_key(i: usize) -> String {
    format!("r{i}")
}

/// The list-append key `k` of hash tag `tag`.
pub fn list_key(tag: usize, k: usize) -> String {
    format!("{{la{tag}}}k{k}")
}

/// Draws operations for one workload; shared by every worker (values are unique across
/// workers).
#[derive(Debug)]
pub struct Generator {
    workload: Workload,
    /// Next value per key (register: per register key; list-append: per list key; set:
    /// slot 0).
    next: Vec<AtomicI64>,
}

impl Generator {
    pub fn new(workload: Workload) -> Self {
        let keys = match workload {
            Workload::Register => REGISTER_KEYS,
            Workload::BigValues => BIG_KEYS,
            Workload::ListAppend => LIST_TAGS * LIST_KEYS,
            Workload::Counter => COUNTER_KEYS,
            Workload::Set => SET_KEYS,
        };
        Generator {
            workload,
            next: (0..keys).map(|_| AtomicI64::new(1)).collect(),
        }
    }

    fn value(&self, key: usize) -> i64 {
        self.next[key].fetch_add(1, Ordering::Relaxed)
    }

    /// The next operation of a worker.
    pub fn next(&self, rng: &mut impl Rng) -> Op {
        match self.workload {
            Workload::Register | Workload::BigValues => {
                let (k, key) = if self.workload == Workload::Register {
                    let k = rng.gen_range(0..REGISTER_KEYS);
                    (k, register_key(k))
                } else {
                    let k = rng.gen_range(0..BIG_KEYS);
                    (k, big_key(k))
                };
                if rng.gen_bool(0.5) {
                    Op {
                        f: "read",
                        key: Some(key),
                        value: Value::Null,
                    }
                } else {
                    Op {
                        f: "write",
                        key: Some(key),
                        value: json!(self.value(k)),
                    }
                }
            }
            Workload::Counter => {
                let key = counter_key(rng.gen_range(0..COUNTER_KEYS));
                if rng.gen_bool(0.25) {
                    read_op(&key)
                } else {
                    Op {
                        f: "add",
                        key: Some(key),
                        value: json!(rng.gen_range(1..=5)),
                    }
                }
            }
            Workload::Set => {
                let k = rng.gen_range(0..SET_KEYS);
                if rng.gen_bool(0.05) {
                    read_op(&set_key(k))
                } else {
                    Op {
                        f: "add",
                        key: Some(set_key(k)),
                        value: json!(self.value(k)),
                    }
                }
            }
            Workload::ListAppend => {
                let n = rng.gen_range(1..=3);
                let tag = rng.gen_range(0..LIST_TAGS);
                let mut keys: Vec<usize> = (0..LIST_KEYS).collect();
                keys.shuffle(rng);
                let mops: Vec<Value> = keys[..n]
                    .iter()
                    .map(|&k| {
                        if rng.gen_bool(0.5) {
                            let value = self.value(tag * LIST_KEYS + k);
                            json!(["append", list_key(tag, k), value])
                        } else {
                            json!(["r", list_key(tag, k), null])
                        }
                    })
                    .collect();
                Op {
                    f: "txn",
                    key: None,
                    value: Value::Array(mops),
                }
            }
        }
    }

    /// The reads made after every fault is healed: nothing for the register (every read
    /// along the way is checked), one read of the whole state for the others.
    pub fn final_reads(&self) -> Vec<Op> {
        match self.workload {
            Workload::Register | Workload::BigValues => Vec::new(),
            Workload::Counter => (0..COUNTER_KEYS)
                .map(|k| read_op(&counter_key(k)))
                .collect(),
            Workload::Set => (0..SET_KEYS).map(|k| read_op(&set_key(k))).collect(),
            Workload::ListAppend => (0..LIST_TAGS)
                .map(|tag| Op {
                    f: "txn",
                    key: None,
                    value: Value::Array(
                        (0..LIST_KEYS)
                            .map(|k| json!(["r", list_key(tag, k), null]))
                            .collect(),
                    ),
                })
                .collect(),
        }
    }
}

fn read_op(key: &str) -> Op {
    Op {
        f: "read",
        key: Some(key.into()),
        value: Value::Null,
    }
}

/// How an operation ended.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub kind: Type,
    /// The value of the completion event (see `lincheck::history`).
    pub value: Value,
    pub error: Option<String>,
}

/// What went wrong with a request, reduced to what decides its outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The server answered with an error reply: its code (`CLUSTERDOWN`, `ERR`, ...) and
    /// whole text.
    Reply { code: String, text: String },
    /// No reply: a timeout, a connection lost or refused mid-call.
    Transport(String),
    /// A reply of a shape the workload does not expect (reported as an `info`/`fail` with
    /// this text, never a panic).
    Unexpected(String),
}

impl Failure {
    pub fn from_redis(e: &redis::RedisError) -> Failure {
        if e.is_io_error()
            || e.is_timeout()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
        {
            return Failure::Transport(e.to_string());
        }
        match e.code() {
            Some(code) => Failure::Reply {
                code: code.to_string(),
                text: match e.detail() {
                    Some(d) => format!("{code} {d}"),
                    None => code.to_string(),
                },
            },
            None => Failure::Transport(e.to_string()),
        }
    }

    fn text(&self) -> String {
        match self {
            Failure::Reply { text, .. } => text.clone(),
            Failure::Transport(t) => format!("no reply: {t}"),
            Failure::Unexpected(t) => format!("unexpected reply: {t}"),
        }
    }

    /// True when the connection can no longer be trusted (a reply may still be on its way).
    pub fn breaks_connection(&self) -> bool {
        !matches!(self, Failure::Reply { .. })
    }
}

/// The outcome of an operation that failed with `failure` (see the module header).
pub fn classify(op: &Op, failure: &Failure) -> Outcome {
    let kind = if !op.is_write() {
        Type::Fail
    } else {
        match failure {
            Failure::Reply { code, .. } if code == "CLUSTERDOWN" || code == "MISCONF" => Type::Fail,
            _ => Type::Info,
        }
    };
    let value = if kind == Type::Info {
        op.value.clone()
    } else {
        Value::Null
    };
    Outcome {
        kind,
        value,
        error: Some(failure.text()),
    }
}

fn ok(value: Value) -> Outcome {
    Outcome {
        kind: Type::Ok,
        value,
        error: None,
    }
}

/// An integer reply or bulk string holding one, or nil.
fn int_or_nil(v: &redis::Value) -> Result<Value, Failure> {
    match v {
        redis::Value::Nil => Ok(Value::Null),
        redis::Value::Int(i) => Ok(json!(i)),
        redis::Value::BulkString(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
            .map(|i| json!(i))
            .ok_or_else(|| {
                Failure::Unexpected(format!(
                    "`{}` is not an integer",
                    String::from_utf8_lossy(b)
                ))
            }),
        other => Err(Failure::Unexpected(format!("{other:?}"))),
    }
}

/// A list of integers (`SMEMBERS`, `LRANGE`); sorted when `sort`.
fn int_list(v: &redis::Value, sort: bool) -> Result<Value, Failure> {
    let items = match v {
        redis::Value::Array(items) | redis::Value::Set(items) => items,
        other => return Err(Failure::Unexpected(format!("{other:?} is not a list"))),
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match int_or_nil(item)? {
            Value::Number(n) => out.push(n.as_i64().unwrap_or_default()),
            other => return Err(Failure::Unexpected(format!("list element {other}"))),
        }
    }
    if sort {
        out.sort_unstable();
    }
    Ok(json!(out))
}

/// Runs `op` on `con` and says how it ended.
pub fn execute(con: &mut redis::Connection, op: &Op) -> Outcome {
    match run(con, op) {
        Ok(outcome) => outcome,
        Err(failure) => classify(op, &failure),
    }
}

fn run(con: &mut redis::Connection, op: &Op) -> Result<Outcome, Failure> {
    let q = |cmd: &mut redis::Cmd, con: &mut redis::Connection| -> Result<redis::Value, Failure> {
        cmd.query::<redis::Value>(con)
            .map_err(|e| Failure::from_redis(&e))
    };
    let key = op.key.clone().unwrap_or_default();
    let big = key.starts_with("big");
    match op.f {
        "write" if big => {
            let n = op.value.as_i64().unwrap_or_default();
            let reply = q(redis::cmd("SET").arg(&key).arg(big_value(n)), con)?;
            match reply {
                redis::Value::Okay => Ok(ok(op.value.clone())),
                redis::Value::SimpleString(s) if s == "OK" => Ok(ok(op.value.clone())),
                other => Err(Failure::Unexpected(format!("SET -> {other:?}"))),
            }
        }
        "read" if big => {
            let reply = q(redis::cmd("GET").arg(&key), con)?;
            match reply {
                redis::Value::Nil => Ok(ok(Value::Null)),
                redis::Value::BulkString(b) => Ok(match parse_big(&b) {
                    Ok(n) => ok(json!(n)),
                    // A value no write wrote: the checker reports the read.
                    Err(why) => Outcome {
                        kind: Type::Ok,
                        value: json!(-1),
                        error: Some(format!("corrupt value: {why}")),
                    },
                }),
                other => Err(Failure::Unexpected(format!("GET -> {other:?}"))),
            }
        }
        "write" => {
            // With a TTL far beyond the run, so that the replica checks also compare the
            // expiry time every replica computed from the entry's time.
            let reply = q(
                redis::cmd("SET")
                    .arg(&key)
                    .arg(op.value.to_string())
                    .arg("PX")
                    .arg(REGISTER_TTL_MS),
                con,
            )?;
            match reply {
                redis::Value::Okay => Ok(ok(op.value.clone())),
                redis::Value::SimpleString(s) if s == "OK" => Ok(ok(op.value.clone())),
                other => Err(Failure::Unexpected(format!("SET -> {other:?}"))),
            }
        }
        "add" if is_counter_key(&key) => {
            q(
                redis::cmd("INCRBY").arg(&key).arg(op.value.to_string()),
                con,
            )?;
            Ok(ok(op.value.clone()))
        }
        "add" => {
            q(redis::cmd("SADD").arg(&key).arg(op.value.to_string()), con)?;
            Ok(ok(op.value.clone()))
        }
        "read" if is_set_key(&key) => {
            let reply = q(redis::cmd("SMEMBERS").arg(&key), con)?;
            Ok(ok(int_list(&reply, true)?))
        }
        "read" => {
            let reply = q(redis::cmd("GET").arg(&key), con)?;
            let v = int_or_nil(&reply)?;
            // A counter never written reads as 0, as INCRBY would see it.
            Ok(ok(if is_counter_key(&key) && v.is_null() {
                json!(0)
            } else {
                v
            }))
        }
        "txn" => txn(con, op),
        other => Err(Failure::Unexpected(format!("no such operation `{other}`"))),
    }
}

fn is_counter_key(key: &str) -> bool {
    key.strip_prefix("counter")
        .is_some_and(|k| k.parse::<usize>().is_ok())
}

fn is_set_key(key: &str) -> bool {
    key.strip_prefix("set")
        .is_some_and(|k| k.parse::<usize>().is_ok())
}

/// A list-append transaction: `MULTI`, one `RPUSH` or `LRANGE` per micro-operation, `EXEC`.
fn txn(con: &mut redis::Connection, op: &Op) -> Result<Outcome, Failure> {
    let mops = op
        .value
        .as_array()
        .ok_or_else(|| Failure::Unexpected("txn value is not a list".into()))?;
    let mut pipe = redis::pipe();
    pipe.atomic();
    for m in mops {
        let key = m[1].as_str().unwrap_or_default();
        if m[0] == "append" {
            pipe.cmd("RPUSH").arg(key).arg(m[2].to_string());
        } else {
            pipe.cmd("LRANGE").arg(key).arg(0).arg(-1);
        }
    }
    let replies: Vec<redis::Value> = pipe.query(con).map_err(|e| Failure::from_redis(&e))?;
    if replies.len() != mops.len() {
        return Err(Failure::Unexpected(format!(
            "EXEC returned {} replies for {} commands",
            replies.len(),
            mops.len()
        )));
    }
    let mut done = Vec::with_capacity(mops.len());
    for (m, reply) in mops.iter().zip(&replies) {
        if let redis::Value::ServerError(e) = reply {
            return Err(Failure::Reply {
                code: e.code().to_string(),
                text: format!("{} {}", e.code(), e.details().unwrap_or_default()),
            });
        }
        if m[0] == "append" {
            done.push(m.clone());
        } else {
            done.push(json!(["r", m[1], int_list(reply, false)?]));
        }
    }
    Ok(ok(Value::Array(done)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn reply(code: &str) -> Failure {
        Failure::Reply {
            code: code.into(),
            text: format!("{code} something"),
        }
    }

    #[test]
    fn write_errors_are_info_unless_they_never_reached_a_log() {
        let g = Generator::new(Workload::Register);
        let mut rng = StdRng::seed_from_u64(1);
        let write = loop {
            let op = g.next(&mut rng);
            if op.is_write() {
                break op;
            }
        };
        assert_eq!(classify(&write, &reply("CLUSTERDOWN")).kind, Type::Fail);
        let unknown = classify(&write, &reply("ERR"));
        assert_eq!(unknown.kind, Type::Info);
        assert_eq!(
            unknown.value, write.value,
            "an info keeps the written value"
        );
        assert_eq!(
            classify(&write, &Failure::Transport("timed out".into())).kind,
            Type::Info
        );
        let read = Op {
            f: "read",
            key: Some("r0".into()),
            value: Value::Null,
        };
        for f in [
            reply("CLUSTERDOWN"),
            reply("ERR"),
            Failure::Transport("reset".into()),
        ] {
            let o = classify(&read, &f);
            assert_eq!(o.kind, Type::Fail, "{f:?}");
            assert!(o.error.is_some());
        }
    }

    #[test]
    fn misconf_means_the_write_never_reached_a_log() {
        let write = Op {
            f: "write",
            key: Some("r0".into()),
            value: json!(3),
        };
        assert_eq!(classify(&write, &reply("MISCONF")).kind, Type::Fail);
    }

    #[test]
    fn big_values_carry_their_integer_and_catch_damage() {
        for n in [1, 2, 3, 4, 5, 77, 1_000_003] {
            let v = big_value(n);
            assert_eq!(v.len(), big_len(n));
            assert_eq!(parse_big(&v), Ok(n));
            let mut cut = v.clone();
            cut.pop();
            assert!(parse_big(&cut).is_err());
            let mut flipped = v.clone();
            let at = v.len() - 7;
            flipped[at] ^= 1;
            assert!(parse_big(&flipped).is_err());
        }
        let sizes: std::collections::BTreeSet<usize> = (1..50).map(big_len).collect();
        assert_eq!(sizes.len(), 5, "every size comes up");
    }

    #[test]
    fn a_transaction_is_a_write_only_if_it_appends() {
        let read_only = Op {
            f: "txn",
            key: None,
            value: json!([["r", "{la}k0", null]]),
        };
        let appends = Op {
            f: "txn",
            key: None,
            value: json!([["r", "{la}k0", null], ["append", "{la}k1", 3]]),
        };
        assert!(!read_only.is_write());
        assert!(appends.is_write());
        assert_eq!(
            classify(&read_only, &Failure::Transport("x".into())).kind,
            Type::Fail
        );
        assert_eq!(
            classify(&appends, &Failure::Transport("x".into())).kind,
            Type::Info
        );
    }

    #[test]
    fn written_values_are_unique_per_key() {
        let g = Generator::new(Workload::ListAppend);
        let mut rng = StdRng::seed_from_u64(9);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..500 {
            for m in g.next(&mut rng).value.as_array().unwrap() {
                if m[0] == "append" {
                    assert!(
                        seen.insert((m[1].to_string(), m[2].as_i64().unwrap())),
                        "{m}"
                    );
                }
            }
        }
        let g = Generator::new(Workload::Set);
        assert_eq!(g.final_reads().len(), SET_KEYS);
        assert_eq!(g.final_reads()[0], read_op(&set_key(0)));
    }

    #[test]
    fn every_workload_spreads_its_keys_over_several_groups() {
        // The group of a slot with the default 16 groups of 1024 slots each.
        let group = |key: &str| types::key_slot(key.as_bytes()).0 / 1024;
        for workload in [
            Workload::Register,
            Workload::Counter,
            Workload::Set,
            Workload::ListAppend,
            Workload::BigValues,
        ] {
            let g = Generator::new(workload);
            let mut rng = StdRng::seed_from_u64(3);
            let mut groups = std::collections::BTreeSet::new();
            for _ in 0..500 {
                let op = g.next(&mut rng);
                match op.value.as_array() {
                    Some(mops) if op.f == "txn" => {
                        let slots: std::collections::BTreeSet<u16> = mops
                            .iter()
                            .map(|m| types::key_slot(m[1].as_str().unwrap().as_bytes()).0)
                            .collect();
                        assert_eq!(slots.len(), 1, "a transaction stays in one slot: {op:?}");
                        groups.insert(group(mops[0][1].as_str().unwrap()));
                    }
                    _ => {
                        groups.insert(group(op.key.as_deref().unwrap()));
                    }
                }
            }
            assert!(groups.len() >= 3, "{workload:?} touches groups {groups:?}");
        }
    }

    #[test]
    fn replies_of_an_unexpected_shape_are_errors_not_panics() {
        assert_eq!(int_or_nil(&redis::Value::Nil).unwrap(), Value::Null);
        assert_eq!(
            int_or_nil(&redis::Value::BulkString(b"42".to_vec())).unwrap(),
            json!(42)
        );
        assert!(int_or_nil(&redis::Value::BulkString(b"x".to_vec())).is_err());
        let list = redis::Value::Array(vec![
            redis::Value::BulkString(b"3".to_vec()),
            redis::Value::BulkString(b"1".to_vec()),
        ]);
        assert_eq!(int_list(&list, true).unwrap(), json!([1, 3]));
        assert_eq!(int_list(&list, false).unwrap(), json!([3, 1]));
        assert!(int_list(&redis::Value::Okay, false).is_err());
    }
}
