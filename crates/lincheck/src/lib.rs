//! Histories of concurrent operations against a store, and the checkers that judge them.
//!
//! The Jepsen-style harness (`tests/`, the `jepsen` binary) records what its clients did as a
//! [`history::History`]; this crate says whether that history is allowed. It knows nothing
//! of redraft, Redis or the network: a history is data, a checker is a pure function of it.
//!
//! Layers: [`history`] (the file format) → [`ops`] (invocations paired with completions) →
//! [`model`] (sequential specifications) and [`wgl`] (the linearizability search) →
//! [`workloads`] (one checker per workload) → [`check`], which returns a [`Report`]: the
//! counts of operations and a [`Verdict`] (valid, invalid with its anomalies, or unknown).
//!
//! The `lincheck` binary checks a history file from the command line:
//! `cargo run -p lincheck --bin lincheck -- register history.jsonl [--json]` (exit 0 valid,
//! 1 invalid, 2 unknown).

pub mod history;
pub mod model;
pub mod ops;
pub mod verdict;
pub mod wgl;
pub mod workloads;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::ser::SerializeStruct;
use serde::Serialize;

pub use history::History;
pub use verdict::{Anomaly, AnomalyKind, Verdict};

/// The workloads a history can come from; each has its own checker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// `read`/`write` of integers per key: linearizability.
    Register,
    /// `add` and `read` per key: every read within the bounds the adds allow.
    Counter,
    /// `add` of unique integers and `read`s of the whole set per key.
    Set,
    /// `txn`s of appends and reads of lists.
    ListAppend,
    /// The register's `read`/`write` of integers, each written value padded to between a
    /// kilobyte and a few megabytes (so many writes travel as large writes in parts): the
    /// same linearizability check.
    BigValues,
}

impl Workload {
    pub const ALL: [Workload; 5] = [
        Workload::Register,
        Workload::Counter,
        Workload::Set,
        Workload::ListAppend,
        Workload::BigValues,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Workload::Register => "register",
            Workload::Counter => "counter",
            Workload::Set => "set",
            Workload::ListAppend => "list-append",
            Workload::BigValues => "big-values",
        }
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A workload name that is not one of [`Workload::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown workload {0:?} (expected register, counter, set, list-append or big-values)")]
pub struct UnknownWorkload(pub String);

impl FromStr for Workload {
    type Err = UnknownWorkload;

    fn from_str(s: &str) -> Result<Workload, UnknownWorkload> {
        Workload::ALL
            .into_iter()
            .find(|w| w.name() == s)
            .ok_or_else(|| UnknownWorkload(s.to_string()))
    }
}

/// How many operations a check looked at (pending operations count as `info`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub ops: u64,
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
}

impl Counts {
    pub fn of(ops: &[ops::Op]) -> Counts {
        let mut counts = Counts {
            ops: ops.len() as u64,
            ..Counts::default()
        };
        for op in ops {
            match op.status {
                ops::Status::Ok => counts.ok += 1,
                ops::Status::Fail => counts.fail += 1,
                ops::Status::Info => counts.info += 1,
            }
        }
        counts
    }
}

/// Limits on a check: linearizability searches give up (verdict unknown) past them.
#[derive(Debug, Clone)]
pub struct Options {
    /// The most search states, over all keys.
    pub max_states: u64,
    /// The longest a check may search.
    pub time_limit: Duration,
    /// The longest spent shrinking each failing key's history.
    pub shrink_time: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_states: 10_000_000,
            time_limit: Duration::from_secs(60),
            shrink_time: Duration::from_secs(2),
        }
    }
}

/// A workload checker's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub workload: Workload,
    pub counts: Counts,
    pub verdict: Verdict,
}

impl Report {
    /// `Some(true)` valid, `Some(false)` invalid, `None` unknown.
    pub fn valid(&self) -> Option<bool> {
        self.verdict.valid()
    }
}

impl Serialize for Report {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut out = ser.serialize_struct("Report", 4)?;
        out.serialize_field("workload", &self.workload)?;
        out.serialize_field("valid", &self.valid())?;
        out.serialize_field("counts", &self.counts)?;
        out.serialize_field("result", &self.verdict)?;
        out.end()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.counts;
        write!(
            f,
            "{}: {} ops ({} ok, {} fail, {} info): {}",
            self.workload, c.ops, c.ok, c.fail, c.info, self.verdict
        )
    }
}

/// Checks a history of `workload` with the default [`Options`].
pub fn check(workload: Workload, history: &History) -> Report {
    check_with(workload, history, &Options::default())
}

/// Checks a history of `workload`. A malformed history (a completion without invocation,
/// a value of the wrong shape) gives an unknown verdict that says where.
pub fn check_with(workload: Workload, history: &History, options: &Options) -> Report {
    let ops = match ops::pair(history) {
        Ok(ops) => ops,
        Err(err) => {
            return Report {
                workload,
                counts: Counts::default(),
                verdict: Verdict::Unknown {
                    reason: format!("bad history: {err}"),
                },
            }
        }
    };
    let counts = Counts::of(&ops);
    let result = match workload {
        Workload::Register | Workload::BigValues => {
            workloads::register::check(history, &ops, options)
        }
        Workload::Counter => workloads::counter::check(&ops),
        Workload::Set => workloads::set::check(&ops),
        Workload::ListAppend => workloads::list_append::check(&ops),
    };
    let verdict = result.unwrap_or_else(|err| Verdict::Unknown {
        reason: format!("bad history: {err}"),
    });
    Report {
        workload,
        counts,
        verdict,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workloads_parse_from_their_names() {
        for w in Workload::ALL {
            assert_eq!(w.name().parse::<Workload>(), Ok(w));
            assert_eq!(serde_json::to_string(&w).unwrap(), format!("\"{w}\""));
        }
        let err = "bank".parse::<Workload>().unwrap_err();
        assert!(err.to_string().contains("\"bank\""), "{err}");
    }

    #[test]
    fn a_malformed_history_is_unknown_with_a_reason() {
        let history =
            History::read_jsonl(&br#"{"index":0,"process":1,"type":"ok","f":"read","time":0}"#[..])
                .unwrap();
        let report = check(Workload::Register, &history);
        assert_eq!(report.valid(), None);
        assert!(report.to_string().contains("never invoked"), "{report}");
    }
}
