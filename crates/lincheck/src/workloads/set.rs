//! The set workload: `add` of unique integers and `read`s of the whole set, per key.
//!
//! For every `ok` read (the final read is the last one to return):
//! - each element read was added by some operation that was not `fail`, invoked before the
//!   read returned ([`AnomalyKind::UnexpectedValue`] otherwise);
//! - no element twice ([`AnomalyKind::Duplicate`]);
//! - every `ok` add that returned before the read was invoked is there: missing from the
//!   final read it is a [`AnomalyKind::LostWrite`], from an earlier read a
//!   [`AnomalyKind::StaleRead`]. When the final read is taken after the run, this is
//!   "every acknowledged add is in the final read". `info` adds may or may not be there.
//!
//! A key with adds but no `ok` read cannot be judged: the verdict is unknown.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::ops::{int_list, HistoryError, Op, Status};
use crate::verdict::{Anomaly, AnomalyKind, Verdict};
use crate::workloads::Collector;

/// Checks every key; `ops` are the history's operations (from [`crate::ops::pair`]).
pub fn check(ops: &[Op]) -> Result<Verdict, HistoryError> {
    let mut by_key: BTreeMap<Option<&str>, Vec<&Op>> = BTreeMap::new();
    for op in ops {
        by_key.entry(op.key.as_deref()).or_default().push(op);
    }
    let mut found = Collector::default();
    let mut undecided = Vec::new();
    for (key, key_ops) in by_key {
        if let Some(reason) = check_key(key, &key_ops, &mut found)? {
            undecided.push(format!("key {key:?}: {reason}"));
        }
    }
    Ok(Verdict::from_parts(found.finish(), undecided))
}

fn check_key(
    key: Option<&str>,
    ops: &[&Op],
    found: &mut Collector,
) -> Result<Option<String>, HistoryError> {
    let mut adds: HashMap<i64, &Op> = HashMap::new();
    let mut reads: Vec<(&Op, Vec<i64>)> = Vec::new();
    for &op in ops {
        match op.f.as_str() {
            "add" => {
                let v = op
                    .input
                    .as_i64()
                    .ok_or_else(|| HistoryError::bad(op, "an add's value must be an integer"))?;
                if adds.insert(v, op).is_some() {
                    return Err(HistoryError::bad(op, format!("{v} is added twice")));
                }
            }
            "read" if op.status == Status::Ok => {
                let list = int_list(&op.output).ok_or_else(|| {
                    HistoryError::bad(op, "a read must return a list of integers")
                })?;
                reads.push((op, list));
            }
            "read" => {}
            f => {
                return Err(HistoryError::bad(
                    op,
                    format!("{f:?} is not a set operation (add, read)"),
                ))
            }
        }
    }
    let Some(last_ret) = reads.iter().filter_map(|(op, _)| op.ret).max() else {
        return Ok((!adds.is_empty()).then(|| "adds but no ok read".to_string()));
    };
    // Ok adds by return position, for "acknowledged before the read began".
    let mut acked: Vec<(usize, i64, &Op)> = adds
        .iter()
        .filter(|(_, op)| op.status == Status::Ok)
        .filter_map(|(&v, op)| Some((op.ret?, v, *op)))
        .collect();
    acked.sort_unstable_by_key(|&(ret, v, _)| (ret, v));
    let anomaly = |kind, explanation: String, ops: Vec<Op>| Anomaly {
        kind,
        key: key.map(str::to_string),
        explanation,
        ops,
        sub_history: Vec::new(),
    };
    for (read, list) in &reads {
        let read_ret = read.ret.unwrap_or(usize::MAX);
        let mut present = HashSet::with_capacity(list.len());
        for &v in list {
            if !present.insert(v) {
                found.push(anomaly(
                    AnomalyKind::Duplicate,
                    format!("{v} is read twice"),
                    vec![(*read).clone()],
                ));
                continue;
            }
            match adds.get(&v) {
                None => found.push(anomaly(
                    AnomalyKind::UnexpectedValue,
                    format!("{v} is read but was never added"),
                    vec![(*read).clone()],
                )),
                Some(add) if add.status == Status::Fail => found.push(anomaly(
                    AnomalyKind::UnexpectedValue,
                    format!("{v} is read but its add failed"),
                    vec![(*add).clone(), (*read).clone()],
                )),
                Some(add) if add.call > read_ret => found.push(anomaly(
                    AnomalyKind::UnexpectedValue,
                    format!("{v} is read before its add was invoked"),
                    vec![(*read).clone(), (*add).clone()],
                )),
                Some(_) => {}
            }
        }
        let before = acked.partition_point(|&(ret, _, _)| ret < read.call);
        // Only scan the acknowledged adds when some are missing (keeps this linear in the
        // size of the reads).
        let acked_present = present
            .iter()
            .filter(|v| {
                adds.get(v).is_some_and(|add| {
                    add.status == Status::Ok && add.ret.is_some_and(|r| r < read.call)
                })
            })
            .count();
        if acked_present == before {
            continue;
        }
        let is_final = read.ret == Some(last_ret);
        for &(_, v, add) in &acked[..before] {
            if !present.contains(&v) {
                let (kind, which) = if is_final {
                    (AnomalyKind::LostWrite, "the final read")
                } else {
                    (AnomalyKind::StaleRead, "a read")
                };
                found.push(anomaly(
                    kind,
                    format!("{v} was added (ok) before {which} began, but is missing from it"),
                    vec![add.clone(), (*read).clone()],
                ));
            }
        }
    }
    Ok(None)
}
