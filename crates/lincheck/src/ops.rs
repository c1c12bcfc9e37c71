//! Operations: a history's invoke events paired with their completions.
//!
//! Checkers reason about operations, not events. [`pair`] walks a [`History`] once and
//! matches each completion with the pending invocation of the same process. Positions
//! (`call`, `ret`) are places in the event list, which is the order the recorder observed
//! (see the header of [`crate::history`]); they are the checkers' only notion of time.
//!
//! Invariants of the result: operations are sorted by `call`; `ret > call` when present;
//! an operation still pending when the history ends counts as [`Status::Info`] (it may take
//! effect at any time, or never).

use std::collections::HashMap;
use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::history::{Event, History, Type};

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// It took effect and returned `output`.
    Ok,
    /// It certainly did not take effect.
    Fail,
    /// Unknown: it may take effect at any time after its invocation, or never.
    Info,
}

/// One operation of a history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Op {
    pub process: u64,
    pub f: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The invocation's value (the argument).
    pub input: Value,
    /// The completion's value (the result for `ok`; often null otherwise).
    pub output: Value,
    pub status: Status,
    /// The `index` field of the invoke event.
    pub invoke_index: u64,
    /// The `index` field of the completion event; `None` when it never completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub complete_index: Option<u64>,
    /// Position of the invoke event in the history.
    #[serde(skip)]
    pub call: usize,
    /// Position of the completion event in the history; `None` when it never completed.
    #[serde(skip)]
    pub ret: Option<usize>,
}

impl Op {
    /// The operation's two events as they appear in `history` (one if it never completed).
    pub fn events<'h>(&self, history: &'h History) -> impl Iterator<Item = &'h Event> {
        std::iter::once(&history.events[self.call]).chain(self.ret.map(|r| &history.events[r]))
    }
}

impl fmt::Display for Op {
    /// `p3 write 5 → ok [#12..#15]`, `p1 read → 4 [#13..#20]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p{} {}", self.process, self.f)?;
        if let Some(key) = &self.key {
            write!(f, " {key}")?;
        }
        if !self.input.is_null() {
            write!(f, " {}", self.input)?;
        }
        match self.status {
            // A write's or add's completion usually repeats its argument.
            Status::Ok
                if !self.input.is_null()
                    && (self.output.is_null() || self.output == self.input) =>
            {
                write!(f, " → ok")?
            }
            Status::Ok => write!(f, " → {}", self.output)?,
            Status::Fail => write!(f, " → fail")?,
            Status::Info => write!(f, " → info (unknown)")?,
        }
        match self.complete_index {
            Some(end) => write!(f, " [#{}..#{}]", self.invoke_index, end),
            None => write!(f, " [#{}..never]", self.invoke_index),
        }
    }
}

/// Why a history cannot be read as operations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HistoryError {
    #[error("event #{index}: process {process} completes an operation it never invoked")]
    CompletionWithoutInvoke { index: u64, process: u64 },
    #[error("event #{index}: process {process} invokes while its operation #{pending} is pending")]
    InvokeWhilePending {
        index: u64,
        process: u64,
        pending: u64,
    },
    #[error("event #{index}: completes {f:?} but process {process} invoked {invoked:?}")]
    MismatchedCompletion {
        index: u64,
        process: u64,
        f: String,
        invoked: String,
    },
    #[error("event #{index}: {message}")]
    BadOperation { index: u64, message: String },
}

impl HistoryError {
    /// A malformed operation, named by the index of its invoke event.
    pub fn bad(op: &Op, message: impl Into<String>) -> HistoryError {
        HistoryError::BadOperation {
            index: op.invoke_index,
            message: message.into(),
        }
    }
}

/// Pairs invocations with completions (see the module header).
pub fn pair(history: &History) -> Result<Vec<Op>, HistoryError> {
    let mut ops: Vec<Op> = Vec::new();
    // process → index in `ops` of its pending operation.
    let mut pending: HashMap<u64, usize> = HashMap::new();
    for (pos, event) in history.events.iter().enumerate() {
        match event.kind {
            Type::Invoke => {
                if let Some(&open) = pending.get(&event.process) {
                    return Err(HistoryError::InvokeWhilePending {
                        index: event.index,
                        process: event.process,
                        pending: ops[open].invoke_index,
                    });
                }
                pending.insert(event.process, ops.len());
                ops.push(Op {
                    process: event.process,
                    f: event.f.clone(),
                    key: event.key.clone(),
                    input: event.value.clone(),
                    output: Value::Null,
                    status: Status::Info,
                    invoke_index: event.index,
                    complete_index: None,
                    call: pos,
                    ret: None,
                });
            }
            kind => {
                let Some(open) = pending.remove(&event.process) else {
                    return Err(HistoryError::CompletionWithoutInvoke {
                        index: event.index,
                        process: event.process,
                    });
                };
                let op = &mut ops[open];
                if op.f != event.f {
                    return Err(HistoryError::MismatchedCompletion {
                        index: event.index,
                        process: event.process,
                        f: event.f.clone(),
                        invoked: op.f.clone(),
                    });
                }
                op.status = match kind {
                    Type::Ok => Status::Ok,
                    Type::Fail => Status::Fail,
                    _ => Status::Info,
                };
                op.output = event.value.clone();
                op.complete_index = Some(event.index);
                op.ret = Some(pos);
            }
        }
    }
    Ok(ops)
}

/// Integer or null, as registers hold them.
pub fn int_or_null(value: &Value) -> Option<Option<i64>> {
    match value {
        Value::Null => Some(None),
        v => v.as_i64().map(Some),
    }
}

/// A list of integers (`[1, 2, 3]`).
pub fn int_list(value: &Value) -> Option<Vec<i64>> {
    value.as_array()?.iter().map(Value::as_i64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(index: u64, process: u64, kind: Type, f: &str, value: Value) -> Event {
        Event {
            index,
            process,
            kind,
            f: f.into(),
            key: None,
            value,
            time: index,
            error: None,
            node: None,
        }
    }

    #[test]
    fn invocations_pair_with_completions_of_the_same_process() {
        let history = History {
            events: vec![
                ev(0, 1, Type::Invoke, "write", 1.into()),
                ev(1, 2, Type::Invoke, "read", Value::Null),
                ev(2, 2, Type::Ok, "read", Value::Null),
                ev(3, 1, Type::Info, "write", 1.into()),
                ev(4, 3, Type::Invoke, "read", Value::Null),
            ],
        };
        let ops = pair(&history).unwrap();
        assert_eq!(ops.len(), 3);
        assert_eq!(
            (ops[0].status, ops[0].call, ops[0].ret),
            (Status::Info, 0, Some(3))
        );
        assert_eq!(
            (ops[1].status, ops[1].call, ops[1].ret),
            (Status::Ok, 1, Some(2))
        );
        assert_eq!((ops[2].status, ops[2].ret), (Status::Info, None));
        assert_eq!(ops[1].to_string(), "p2 read → null [#1..#2]");
    }

    #[test]
    fn malformed_histories_are_errors() {
        let orphan = History {
            events: vec![ev(0, 1, Type::Ok, "read", Value::Null)],
        };
        assert!(matches!(
            pair(&orphan),
            Err(HistoryError::CompletionWithoutInvoke { index: 0, .. })
        ));
        let twice = History {
            events: vec![
                ev(0, 1, Type::Invoke, "read", Value::Null),
                ev(1, 1, Type::Invoke, "read", Value::Null),
            ],
        };
        assert!(matches!(
            pair(&twice),
            Err(HistoryError::InvokeWhilePending { pending: 0, .. })
        ));
        let mismatched = History {
            events: vec![
                ev(0, 1, Type::Invoke, "read", Value::Null),
                ev(1, 1, Type::Ok, "write", Value::Null),
            ],
        };
        let err = pair(&mismatched).unwrap_err();
        assert!(err.to_string().contains("invoked \"read\""), "{err}");
    }
}
