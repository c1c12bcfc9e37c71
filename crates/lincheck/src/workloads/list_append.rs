//! The list-append workload: `txn`s of micro-operations `["append", key, n]` and
//! `["r", key, list]`, with values unique per key (as in Elle). The checks that need no
//! dependency graph, per key:
//! - every read is a prefix of the longest read of that key, which is the key's order
//!   ([`AnomalyKind::IncompatibleOrder`]);
//! - no value twice in a read ([`AnomalyKind::Duplicate`]);
//! - no value that no append wrote, that only a failed transaction appended, or whose
//!   transaction was invoked after the read's returned ([`AnomalyKind::UnexpectedValue`]);
//! - real time: an append acknowledged before a read's transaction began is in that read
//!   (missing from the key's last read, or from every read: [`AnomalyKind::LostWrite`];
//!   else [`AnomalyKind::StaleRead`]); and a read is no shorter than any read that
//!   returned before it began ([`AnomalyKind::StaleRead`]). When a final read follows the
//!   run, the first rule says "every acknowledged append is in the final read";
//! - inside one transaction: a read ends with the transaction's own earlier appends to that
//!   key, in order, and holds none of its later ones ([`AnomalyKind::InternalInconsistency`]).
//!
//! `ok` transactions are read from their completion (which carries what the reads
//! returned), others from their invocation; `info` appends may or may not appear. Keys
//! inside micro-operations may be strings or integers.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::Value;

use crate::ops::{int_list, HistoryError, Op, Status};
use crate::verdict::{Anomaly, AnomalyKind, Verdict};
use crate::workloads::{Collector, MAX_PER_KIND};

#[derive(Debug, Clone, PartialEq)]
enum Micro {
    Append(String, i64),
    Read(String, Vec<i64>),
}

/// Checks every key; `ops` are the history's operations (from [`crate::ops::pair`]).
pub fn check(ops: &[Op]) -> Result<Verdict, HistoryError> {
    let mut txns: Vec<(&Op, Vec<Micro>)> = Vec::with_capacity(ops.len());
    for op in ops {
        if op.f != "txn" {
            return Err(HistoryError::bad(
                op,
                format!("{:?} is not a list-append operation (txn)", op.f),
            ));
        }
        txns.push((op, parse(op)?));
    }
    let mut found = Collector::default();
    internal_consistency(&txns, &mut found);
    // Per key: who appended each value, and every ok read.
    let mut keys: BTreeMap<&str, Key> = BTreeMap::new();
    for (op, micros) in &txns {
        for micro in micros {
            match micro {
                Micro::Append(k, v) => {
                    let key = keys.entry(k).or_default();
                    if key.appends.insert(*v, op).is_some() {
                        return Err(HistoryError::bad(
                            op,
                            format!("{v} is appended to {k:?} twice"),
                        ));
                    }
                }
                Micro::Read(k, list) if op.status == Status::Ok => {
                    keys.entry(k).or_default().reads.push((op, list));
                }
                Micro::Read(..) => {}
            }
        }
    }
    for (k, key) in &keys {
        key.check(k, &mut found);
    }
    Ok(Verdict::from_parts(found.finish(), Vec::new()))
}

fn parse(op: &Op) -> Result<Vec<Micro>, HistoryError> {
    let value = if op.status == Status::Ok && !op.output.is_null() {
        &op.output
    } else {
        &op.input
    };
    let bad = |what: &str| HistoryError::bad(op, what.to_string());
    let micros = value
        .as_array()
        .ok_or_else(|| bad("a txn's value must be a list of micro-operations"))?;
    micros
        .iter()
        .map(|micro| {
            let parts = micro
                .as_array()
                .filter(|p| p.len() == 3)
                .ok_or_else(|| bad("a micro-operation must be [f, key, value]"))?;
            let key = match &parts[1] {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => {
                    return Err(bad(
                        "a micro-operation's key must be a string or an integer",
                    ))
                }
            };
            match parts[0].as_str() {
                Some("append") => Ok(Micro::Append(
                    key,
                    parts[2]
                        .as_i64()
                        .ok_or_else(|| bad("an append's value must be an integer"))?,
                )),
                Some("r") if parts[2].is_null() => Ok(Micro::Read(key, Vec::new())),
                Some("r") => Ok(Micro::Read(
                    key,
                    int_list(&parts[2])
                        .ok_or_else(|| bad("a read must return a list of integers"))?,
                )),
                _ => Err(bad("a micro-operation is \"append\" or \"r\"")),
            }
        })
        .collect()
}

/// Reads inside a transaction against that transaction's own appends.
fn internal_consistency(txns: &[(&Op, Vec<Micro>)], found: &mut Collector) {
    for (op, micros) in txns.iter().filter(|(op, _)| op.status == Status::Ok) {
        for (i, micro) in micros.iter().enumerate() {
            let Micro::Read(k, list) = micro else {
                continue;
            };
            let own_appends = |range: &[Micro]| -> Vec<i64> {
                range
                    .iter()
                    .filter_map(|m| match m {
                        Micro::Append(ak, v) if ak == k => Some(*v),
                        _ => None,
                    })
                    .collect()
            };
            let earlier = own_appends(&micros[..i]);
            let later = own_appends(&micros[i + 1..]);
            let problem = if !list.ends_with(&earlier) {
                Some(format!(
                    "the read of {k:?} returned {list:?}, which does not end with the \
                     transaction's own earlier appends {earlier:?}"
                ))
            } else {
                later.iter().find(|v| list.contains(v)).map(|v| {
                    format!("the read of {k:?} returned {v}, which the transaction appends later")
                })
            };
            if let Some(explanation) = problem {
                found.push(Anomaly {
                    kind: AnomalyKind::InternalInconsistency,
                    key: Some(k.clone()),
                    explanation,
                    ops: vec![(*op).clone()],
                    sub_history: Vec::new(),
                });
            }
        }
    }
}

#[derive(Debug, Default)]
struct Key<'o> {
    appends: HashMap<i64, &'o Op>,
    reads: Vec<(&'o Op, &'o Vec<i64>)>,
}

impl Key<'_> {
    fn check(&self, k: &str, found: &mut Collector) {
        let anomaly = |kind, explanation: String, ops: Vec<Op>| Anomaly {
            kind,
            key: Some(k.to_string()),
            explanation,
            ops,
            sub_history: Vec::new(),
        };
        let Some(&(longest_op, longest)) = self.reads.iter().max_by_key(|(_, list)| list.len())
        else {
            return;
        };
        let last_ret = self.reads.iter().filter_map(|(op, _)| op.ret).max();
        // Values and their place in the key's order.
        let place: HashMap<i64, usize> = longest.iter().enumerate().map(|(i, &v)| (v, i)).collect();
        let mut prefix_reads = Vec::new();
        for &(read, list) in &self.reads {
            let read_ret = read.ret.unwrap_or(usize::MAX);
            let mut seen = HashSet::with_capacity(list.len());
            for &v in list {
                if !seen.insert(v) {
                    found.push(anomaly(
                        AnomalyKind::Duplicate,
                        format!("{v} is read twice"),
                        vec![read.clone()],
                    ));
                    continue;
                }
                let problem = match self.appends.get(&v) {
                    None => Some(("was never appended", None)),
                    Some(add) if add.status == Status::Fail => {
                        Some(("was appended by a failed transaction", Some(*add)))
                    }
                    Some(add) if add.call > read_ret => Some((
                        "was appended by a transaction invoked after the read returned",
                        Some(*add),
                    )),
                    Some(_) => None,
                };
                if let Some((why, add)) = problem {
                    let mut ops = vec![read.clone()];
                    ops.extend(add.cloned());
                    found.push(anomaly(
                        AnomalyKind::UnexpectedValue,
                        format!("{v} is read but {why}"),
                        ops,
                    ));
                }
            }
            if list.len() <= longest.len() && longest.starts_with(list) {
                prefix_reads.push((read, list.len()));
            } else {
                let at = list
                    .iter()
                    .zip(longest)
                    .position(|(a, b)| a != b)
                    .unwrap_or(list.len());
                found.push(anomaly(
                    AnomalyKind::IncompatibleOrder,
                    format!(
                        "a read of {} values is not a prefix of the longest read ({} values): \
                         they differ at position {at}",
                        list.len(),
                        longest.len()
                    ),
                    vec![read.clone(), longest_op.clone()],
                ));
            }
        }
        // Acknowledged appends by return, with the latest place in the order so far.
        let mut acked: Vec<(usize, usize, i64, &Op)> = self
            .appends
            .iter()
            .filter(|(_, op)| op.status == Status::Ok)
            .filter_map(|(&v, op)| {
                Some((
                    op.ret?,
                    place.get(&v).copied().unwrap_or(usize::MAX),
                    v,
                    *op,
                ))
            })
            .collect();
        acked.sort_unstable_by_key(|&(ret, _, v, _)| (ret, v));
        let mut latest_place = Vec::with_capacity(acked.len());
        let mut max = 0;
        for &(_, p, _, _) in &acked {
            max = max.max(p);
            latest_place.push(max);
        }
        // Reads by return, with the longest so far.
        let mut by_ret: Vec<(usize, usize, &Op)> = prefix_reads
            .iter()
            .map(|&(op, len)| (op.ret.unwrap_or(usize::MAX), len, op))
            .collect();
        by_ret.sort_unstable_by_key(|&(ret, len, _)| (ret, len));
        let mut longest_so_far: Vec<(usize, &Op)> = Vec::with_capacity(by_ret.len());
        for &(_, len, op) in &by_ret {
            match longest_so_far.last() {
                Some(&(best, _)) if best >= len => {
                    longest_so_far.push(longest_so_far[longest_so_far.len() - 1])
                }
                _ => longest_so_far.push((len, op)),
            }
        }
        for &(read, len) in &prefix_reads {
            let before = acked.partition_point(|&(ret, _, _, _)| ret < read.call);
            if before > 0 && latest_place[before - 1] >= len {
                let is_last = read.ret == last_ret;
                let missing = acked[..before].iter().filter(|&&(_, p, _, _)| p >= len);
                for &(_, p, v, add) in missing.take(MAX_PER_KIND) {
                    let (kind, which) = if is_last || p == usize::MAX {
                        (
                            AnomalyKind::LostWrite,
                            if is_last {
                                "the key's last read"
                            } else {
                                "a read (and from every read)"
                            },
                        )
                    } else {
                        (AnomalyKind::StaleRead, "a read")
                    };
                    found.push(anomaly(
                        kind,
                        format!(
                            "{v} was appended (ok) before {which} began, but is missing from it"
                        ),
                        vec![add.clone(), read.clone()],
                    ));
                }
                continue;
            }
            let earlier = by_ret.partition_point(|&(ret, _, _)| ret < read.call);
            if earlier > 0 {
                let (best, longer) = longest_so_far[earlier - 1];
                if best > len {
                    found.push(anomaly(
                        AnomalyKind::StaleRead,
                        format!("read {len} values after a read of {best} values had returned"),
                        vec![longer.clone(), read.clone()],
                    ));
                }
            }
        }
    }
}
