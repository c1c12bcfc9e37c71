//! The counter workload: `add n` (INCRBY) and `read` per key (a final read is a read).
//!
//! Every `ok` read must lie within bounds the adds around it allow:
//! - added for certain: the `ok` adds that returned before the read was invoked;
//! - added perhaps: the other `ok` adds invoked before the read returned, and every `info`
//!   (or pending) add invoked before the read returned (it may take effect at any time);
//! - never: `fail` adds, and adds invoked after the read returned.
//!
//! The lower bound is the certain sum plus every negative perhaps-add, the upper bound the
//! certain sum plus every positive one. This is necessary for linearizability (not
//! sufficient: it does not relate reads to each other), and it catches a lost increment
//! (too low), an increment applied twice or invented (too high) and a stale read.
//!
//! A read of null counts as 0 (a counter no add has created). Sums are exact (`i128`), and
//! each read costs a few binary searches over prefix sums.

use std::collections::BTreeMap;

use crate::ops::{HistoryError, Op, Status};
use crate::verdict::{Anomaly, AnomalyKind, Verdict};
use crate::workloads::{Collector, PrefixSums};

/// Checks every key; `ops` are the history's operations (from [`crate::ops::pair`]).
pub fn check(ops: &[Op]) -> Result<Verdict, HistoryError> {
    let mut by_key: BTreeMap<Option<&str>, Vec<&Op>> = BTreeMap::new();
    for op in ops {
        by_key.entry(op.key.as_deref()).or_default().push(op);
    }
    let mut found = Collector::default();
    for (key, key_ops) in by_key {
        check_key(key, &key_ops, &mut found)?;
    }
    Ok(Verdict::from_parts(found.finish(), Vec::new()))
}

fn check_key(key: Option<&str>, ops: &[&Op], found: &mut Collector) -> Result<(), HistoryError> {
    // Positive and negative parts of ok adds by return and by call, and of info adds by call.
    let (mut ok_by_ret, mut ok_pos_by_call, mut ok_neg_by_call) = (vec![], vec![], vec![]);
    let (mut ok_pos_by_ret, mut ok_neg_by_ret) = (vec![], vec![]);
    let (mut info_pos_by_call, mut info_neg_by_call) = (vec![], vec![]);
    let mut reads = Vec::new();
    for &op in ops {
        match op.f.as_str() {
            "add" => {
                let n = op
                    .input
                    .as_i64()
                    .ok_or_else(|| HistoryError::bad(op, "an add's value must be an integer"))?
                    as i128;
                let (pos, neg) = (n.max(0), n.min(0));
                match (op.status, op.ret) {
                    (Status::Ok, Some(ret)) => {
                        ok_by_ret.push((ret, n));
                        ok_pos_by_ret.push((ret, pos));
                        ok_neg_by_ret.push((ret, neg));
                        ok_pos_by_call.push((op.call, pos));
                        ok_neg_by_call.push((op.call, neg));
                    }
                    (Status::Fail, _) => {}
                    _ => {
                        info_pos_by_call.push((op.call, pos));
                        info_neg_by_call.push((op.call, neg));
                    }
                }
            }
            "read" => {
                if let (Status::Ok, Some(ret)) = (op.status, op.ret) {
                    let value = if op.output.is_null() {
                        0
                    } else {
                        op.output.as_i64().ok_or_else(|| {
                            HistoryError::bad(op, "a read must return an integer or null")
                        })?
                    };
                    reads.push((op, op.call, ret, value as i128));
                }
            }
            f => {
                return Err(HistoryError::bad(
                    op,
                    format!("{f:?} is not a counter operation (add, read)"),
                ))
            }
        }
    }
    let certain = PrefixSums::new(ok_by_ret);
    let (ok_pos_ret, ok_neg_ret) = (
        PrefixSums::new(ok_pos_by_ret),
        PrefixSums::new(ok_neg_by_ret),
    );
    let (ok_pos_call, ok_neg_call) = (
        PrefixSums::new(ok_pos_by_call),
        PrefixSums::new(ok_neg_by_call),
    );
    let (info_pos, info_neg) = (
        PrefixSums::new(info_pos_by_call),
        PrefixSums::new(info_neg_by_call),
    );
    for (op, call, ret, value) in reads {
        let sure = certain.before(call);
        let low = sure + (ok_neg_call.before(ret) - ok_neg_ret.before(call)) + info_neg.before(ret);
        let high =
            sure + (ok_pos_call.before(ret) - ok_pos_ret.before(call)) + info_pos.before(ret);
        if value < low || value > high {
            found.push(Anomaly {
                kind: AnomalyKind::ReadOutOfBounds,
                key: key.map(str::to_string),
                explanation: format!(
                    "read {value}, but the adds allow only {low}..={high} (the ok adds that \
                     returned before the read began sum to {sure})"
                ),
                ops: vec![op.clone()],
                sub_history: Vec::new(),
            });
        }
    }
    Ok(())
}
