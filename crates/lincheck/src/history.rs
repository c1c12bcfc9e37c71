//! A history: what concurrent clients invoked and what came back, in the order observed.
//!
//! One [`Event`] per line of a history file (JSON lines). Every operation appears twice:
//! once as [`Type::Invoke`] when a client sends it, once as its completion by the same
//! `process`:
//! - [`Type::Ok`]: it took effect, and `value` holds what it returned;
//! - [`Type::Fail`]: it certainly did not take effect (the server refused it before the log);
//! - [`Type::Info`]: unknown (a timeout, a lost connection): it may take effect at any time
//!   after its invocation, even after the history ends, or never.
//!
//! A process runs one operation at a time; after an `info` it never invokes again (a client
//! that lost track of an operation takes a new process number, as in Jepsen).
//!
//! `value` by function (`f`), per workload:
//! - register: `write` → invoke and ok carry the integer written; `read` → invoke `null`,
//!   ok the integer read or `null` for a missing key;
//! - counter: `add` → the integer added (invoke and ok); `read` → ok the integer read;
//! - set: `add` → the integer added; `read` → ok the sorted list of integers read;
//! - list-append: `txn` → a list of micro-operations `["append", key, n]` and
//!   `["r", key, null]`; on ok, each `r` carries the list read (`["r", key, [1, 2]]`).
//!
//! Times are nanoseconds on a monotonic clock since the start of the run; they order events
//! of different processes only as far as the recorder observed them, so checkers use the
//! order of events in the file (which is the order they were recorded), not their times.

use std::io::{self, BufRead, Write};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Whether an event starts an operation or says how it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Type {
    Invoke,
    Ok,
    Fail,
    Info,
}

/// One line of a history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The event's position in the history, from 0.
    pub index: u64,
    /// The client (logical process) that ran the operation.
    pub process: u64,
    #[serde(rename = "type")]
    pub kind: Type,
    /// The operation: `read`, `write`, `add`, `txn`, ...
    pub f: String,
    /// The key the operation touches (`None` for multi-key transactions and final reads
    /// that cover a whole workload).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Argument on invoke, result on ok (see the module header).
    #[serde(default)]
    pub value: Value,
    /// Nanoseconds since the start of the run, monotonic.
    pub time: u64,
    /// For completions: what the client saw (an error text, "timeout"), for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// For completions: which node served the operation, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// A whole history, in recorded order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    pub events: Vec<Event>,
}

impl History {
    /// Reads a history file: one JSON [`Event`] per line; blank lines are skipped.
    pub fn read_jsonl(input: impl BufRead) -> io::Result<History> {
        let mut events = Vec::new();
        for (n, line) in input.lines().enumerate() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let event: Event = serde_json::from_str(&line).map_err(|e| {
                io::Error::new(io::ErrorKind::InvalidData, format!("line {}: {e}", n + 1))
            })?;
            events.push(event);
        }
        Ok(History { events })
    }

    /// Writes the history as JSON lines.
    pub fn write_jsonl(&self, mut out: impl Write) -> io::Result<()> {
        for event in &self.events {
            serde_json::to_writer(&mut out, event)?;
            out.write_all(b"\n")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_history_survives_a_round_trip_through_json_lines() {
        let history = History {
            events: vec![
                Event {
                    index: 0,
                    process: 3,
                    kind: Type::Invoke,
                    f: "write".into(),
                    key: Some("r0".into()),
                    value: Value::from(7),
                    time: 10,
                    error: None,
                    node: None,
                },
                Event {
                    index: 1,
                    process: 3,
                    kind: Type::Info,
                    f: "write".into(),
                    key: Some("r0".into()),
                    value: Value::from(7),
                    time: 25,
                    error: Some("timeout".into()),
                    node: Some("n2".into()),
                },
            ],
        };
        let mut bytes = Vec::new();
        history.write_jsonl(&mut bytes).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.starts_with(r#"{"index":0,"process":3,"type":"invoke","f":"write","key":"r0","value":7,"time":10}"#), "{text}");
        assert_eq!(History::read_jsonl(&bytes[..]).unwrap(), history);
    }

    #[test]
    fn a_bad_line_is_an_error_naming_the_line() {
        let err = History::read_jsonl(&b"\n{\"index\":0}\n"[..]).unwrap_err();
        assert!(err.to_string().starts_with("line 2:"), "{err}");
    }
}
