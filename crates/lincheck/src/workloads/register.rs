//! The register workload: `read` and `write` of integers (or null) per key, checked for
//! linearizability with [`crate::wgl`], one key at a time (keys are independent objects,
//! and linearizability is compositional, so a history is linearizable iff every key's is).
//!
//! Before the search, each key's operations are reduced; every step keeps the answer the
//! same (the history is linearizable after it iff it was before):
//! - `fail` operations did not happen: dropped.
//! - `info` (and pending) reads: a read changes nothing and its value is unknown, so it can
//!   always be linearized anywhere in its interval: dropped.
//! - an `info` write of `v` that no `ok` read returned: dropped. If a linearization places
//!   it, no read lies between it and the next write (a read there would return `v`), so
//!   taking it out leaves every read's value unchanged; and an info write may never happen.
//! - an `info` write of `v` (not null) that some `ok` read returned, when no other write
//!   writes `v`: it must have taken effect before that read, so it is given a return at the
//!   earliest completion of such a read. That changes no valid linearization (each already
//!   places it before the read's linearization point, which precedes the read's return), and
//!   it ends the operation's "pending forever", which would otherwise rule out every later
//!   quiescent point (see [`crate::wgl`]).
//!
//! An info write left after this (its value written twice, or null) stays pending forever.
//!
//! A key with no linearization is reported with its smallest failing sub-history
//! ([`crate::wgl::shrink`], bounded by [`Options::shrink_time`]) and the longest partial
//! order of it that works ([`crate::wgl::explain`]).

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use crate::history::History;
use crate::model::{Register, RegisterOp};
use crate::ops::{int_or_null, HistoryError, Op, Status};
use crate::verdict::{Anomaly, AnomalyKind, Verdict};
use crate::wgl::{self, Budget, Operation, Outcome};
use crate::Options;

type RegOperation = Operation<RegisterOp, Option<i64>>;

/// Checks every key; `ops` are the history's operations (from [`crate::ops::pair`]).
pub fn check(history: &History, ops: &[Op], options: &Options) -> Result<Verdict, HistoryError> {
    let mut by_key: BTreeMap<Option<&str>, Vec<&Op>> = BTreeMap::new();
    for op in ops {
        by_key.entry(op.key.as_deref()).or_default().push(op);
    }
    let mut budget = Budget::with_limits(options.max_states, Some(options.time_limit));
    let mut anomalies = Vec::new();
    let mut undecided = Vec::new();
    for (key, key_ops) in by_key {
        let (operations, origin) = reduce(&key_ops)?;
        match wgl::check(&Register, &operations, &mut budget) {
            Outcome::Linearizable => {}
            Outcome::GaveUp(reason) => undecided.push(format!("key {key:?}: {reason}")),
            Outcome::NotLinearizable(failure) => {
                let deadline = Instant::now() + options.shrink_time;
                let writes = writes_by_value(&operations);
                let needs = |i: usize| match (operations[i].input, operations[i].output) {
                    (RegisterOp::Read, Some(Some(v))) => {
                        writes.get(&v).cloned().unwrap_or_default()
                    }
                    _ => Vec::new(),
                };
                let small = wgl::shrink(&Register, &operations, &failure, &needs, deadline);
                anomalies.push(anomaly(history, key, &operations, &origin, &small));
            }
        }
    }
    Ok(Verdict::from_parts(anomalies, undecided))
}

/// One key's operations for the search (see the module header), and for each the history
/// operation it stands for.
fn reduce<'o>(ops: &[&'o Op]) -> Result<(Vec<RegOperation>, Vec<&'o Op>), HistoryError> {
    let mut decoded = Vec::with_capacity(ops.len());
    for &op in ops {
        let input = match op.f.as_str() {
            "read" => RegisterOp::Read,
            "write" => RegisterOp::Write(int_or_null(&op.input).ok_or_else(|| {
                HistoryError::bad(op, "a write's value must be an integer or null")
            })?),
            f => {
                return Err(HistoryError::bad(
                    op,
                    format!("{f:?} is not a register operation (read, write)"),
                ))
            }
        };
        let output = match (input, op.status) {
            (RegisterOp::Read, Status::Ok) => {
                Some(int_or_null(&op.output).ok_or_else(|| {
                    HistoryError::bad(op, "a read must return an integer or null")
                })?)
            }
            (RegisterOp::Write(_), Status::Ok) => Some(None),
            _ => None,
        };
        decoded.push((op, input, output));
    }
    // Writers of each value (fail writes never happened), and the first return of a read
    // of each value.
    let mut writers: HashMap<Option<i64>, usize> = HashMap::new();
    let mut first_read: HashMap<i64, usize> = HashMap::new();
    for &(op, input, output) in &decoded {
        match input {
            RegisterOp::Write(v) if op.status != Status::Fail => {
                *writers.entry(v).or_default() += 1
            }
            RegisterOp::Read => {
                if let (Some(Some(v)), Some(ret)) = (output, op.ret) {
                    let first = first_read.entry(v).or_insert(ret);
                    *first = (*first).min(ret);
                }
            }
            _ => {}
        }
    }
    let mut operations = Vec::with_capacity(decoded.len());
    let mut origin = Vec::with_capacity(decoded.len());
    for (op, input, output) in decoded {
        let mut ret = op.ret;
        match (op.status, input) {
            (Status::Fail, _) => continue,
            (Status::Info, RegisterOp::Read) => continue,
            (Status::Info, RegisterOp::Write(v)) => {
                let seen = v.and_then(|v| first_read.get(&v).copied());
                match seen {
                    None if v.is_some() => continue,
                    Some(read_ret) if writers[&v] == 1 && read_ret > op.call => {
                        ret = Some(read_ret)
                    }
                    _ => ret = None,
                }
            }
            (Status::Ok, _) => {}
        }
        operations.push(Operation {
            input,
            output,
            call: op.call,
            ret,
        });
        origin.push(op);
    }
    Ok((operations, origin))
}

/// The writes of each value: when shrinking, a read of `v` cannot do without them (so that
/// a stale read never shrinks into a read of a value never written).
fn writes_by_value(operations: &[RegOperation]) -> HashMap<i64, Vec<usize>> {
    let mut writes: HashMap<i64, Vec<usize>> = HashMap::new();
    for (i, op) in operations.iter().enumerate() {
        if let RegisterOp::Write(Some(v)) = op.input {
            writes.entry(v).or_default().push(i);
        }
    }
    writes
}

fn anomaly(
    history: &History,
    key: Option<&str>,
    operations: &[RegOperation],
    origin: &[&Op],
    small: &[usize],
) -> Anomaly {
    let sub: Vec<RegOperation> = small.iter().map(|&i| operations[i].clone()).collect();
    let conflict: Vec<Op> = small.iter().map(|&i| origin[i].clone()).collect();
    let mut events: Vec<_> = conflict
        .iter()
        .flat_map(|op| op.events(history))
        .cloned()
        .collect();
    events.sort_by_key(|e| e.index);
    let mut explanation = if sub.len() == 1 {
        "this operation cannot be linearized".to_string()
    } else {
        format!(
            "no order of these {} operations respects both real time and the register's \
             semantics",
            sub.len()
        )
    };
    // A small budget: the sub-history is small, and a failed explanation only loses words.
    let mut budget = Budget::with_limits(1_000_000, Some(std::time::Duration::from_secs(2)));
    if let Outcome::NotLinearizable(why) = wgl::explain(&Register, &sub, &mut budget) {
        let value = |v: Option<i64>| v.map_or("null".to_string(), |v| v.to_string());
        if let Some(stuck) = why.stuck {
            if why.longest.is_empty() {
                explanation.push_str(&format!(
                    ": {} cannot take effect in the initial state (null)",
                    conflict[stuck]
                ));
            } else {
                let order: Vec<String> = why
                    .longest
                    .iter()
                    .map(|&i| conflict[i].to_string())
                    .collect();
                explanation.push_str(&format!(
                    ": the longest order that works is [{}], leaving {}, and then {} cannot \
                     take effect before it returns",
                    order.join("; "),
                    value(why.state),
                    conflict[stuck]
                ));
            }
            if let (RegisterOp::Read, Some(Some(v))) = (sub[stuck].input, sub[stuck].output) {
                let written = origin
                    .iter()
                    .filter(|op| op.f == "write" && int_or_null(&op.input) == Some(Some(v)))
                    .count();
                if written == 0 {
                    explanation.push_str(&format!(" (no operation ever wrote {v})"));
                }
            }
        }
    }
    Anomaly {
        kind: AnomalyKind::NotLinearizable,
        key: key.map(str::to_string),
        explanation,
        ops: conflict,
        sub_history: events,
    }
}
