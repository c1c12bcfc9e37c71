//! What a checker concludes: a [`Verdict`] with the [`Anomaly`]s it found, in a form for
//! people ([`std::fmt::Display`]) and for files (serde, `verdict.json`).
//!
//! An anomaly names the operations in conflict and, where the checker can find one, the
//! smallest failing sub-history: the events of a subset of the history that is invalid on
//! its own (for linearizability: shrunk until removing any operation makes it valid, as far
//! as a time bound allows).

use std::fmt;

use serde::Serialize;

use crate::history::Event;
use crate::ops::Op;

/// The most sub-history events [`Anomaly`]'s `Display` shows (serde writes them all).
const MAX_SHOWN: usize = 40;

/// The kinds of anomaly the checkers report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AnomalyKind {
    /// No order of a key's operations explains what they returned (register).
    NotLinearizable,
    /// A read outside what the adds around it allow (counter).
    ReadOutOfBounds,
    /// An acknowledged add or append missing from a read that began after it was
    /// acknowledged (set, list-append).
    LostWrite,
    /// A read that returned less than a read completed before it began (list-append).
    StaleRead,
    /// A value read that no operation (or only a failed one) ever wrote.
    UnexpectedValue,
    /// A value read twice in one read (set, list-append).
    Duplicate,
    /// Two reads of one key that are not prefixes of one another (list-append).
    IncompatibleOrder,
    /// A transaction that does not see its own appends as it made them (list-append).
    InternalInconsistency,
}

impl fmt::Display for AnomalyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            AnomalyKind::NotLinearizable => "not linearizable",
            AnomalyKind::ReadOutOfBounds => "read out of bounds",
            AnomalyKind::LostWrite => "lost write",
            AnomalyKind::StaleRead => "stale read",
            AnomalyKind::UnexpectedValue => "unexpected value",
            AnomalyKind::Duplicate => "duplicate",
            AnomalyKind::IncompatibleOrder => "incompatible order",
            AnomalyKind::InternalInconsistency => "internal inconsistency",
        };
        f.write_str(text)
    }
}

/// One thing that went wrong.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Anomaly {
    pub kind: AnomalyKind,
    /// The key it concerns, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// What went wrong, in a sentence or two.
    pub explanation: String,
    /// The operations in conflict.
    pub ops: Vec<Op>,
    /// The smallest failing sub-history found (events in history order); empty when the
    /// conflicting operations say it all.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sub_history: Vec<Event>,
}

/// A checker's conclusion.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "lowercase")]
pub enum Verdict {
    Valid,
    Invalid {
        anomalies: Vec<Anomaly>,
    },
    /// Neither proved valid nor found invalid: a search gave up, or the history could not
    /// be read.
    Unknown {
        reason: String,
    },
}

impl Verdict {
    /// `Some(true)` valid, `Some(false)` invalid, `None` unknown.
    pub fn valid(&self) -> Option<bool> {
        match self {
            Verdict::Valid => Some(true),
            Verdict::Invalid { .. } => Some(false),
            Verdict::Unknown { .. } => None,
        }
    }

    /// Combines anomalies found and reasons for not deciding: any anomaly makes the verdict
    /// invalid, else any undecided part makes it unknown.
    pub fn from_parts(anomalies: Vec<Anomaly>, undecided: Vec<String>) -> Verdict {
        if !anomalies.is_empty() {
            Verdict::Invalid { anomalies }
        } else if !undecided.is_empty() {
            Verdict::Unknown {
                reason: undecided.join("; "),
            }
        } else {
            Verdict::Valid
        }
    }
}

impl fmt::Display for Anomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        if let Some(key) = &self.key {
            write!(f, " on key {key:?}")?;
        }
        writeln!(f, ": {}", self.explanation)?;
        if !self.ops.is_empty() {
            writeln!(f, "  operations in conflict:")?;
            for op in &self.ops {
                writeln!(f, "    {op}")?;
            }
        }
        if !self.sub_history.is_empty() {
            writeln!(
                f,
                "  smallest failing sub-history ({} events):",
                self.sub_history.len()
            )?;
            for event in self.sub_history.iter().take(MAX_SHOWN) {
                let line = serde_json::to_string(event).map_err(|_| fmt::Error)?;
                writeln!(f, "    {line}")?;
            }
            if self.sub_history.len() > MAX_SHOWN {
                writeln!(
                    f,
                    "    ... {} more events (all of them are in the JSON report)",
                    self.sub_history.len() - MAX_SHOWN
                )?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Valid => writeln!(f, "valid"),
            Verdict::Unknown { reason } => writeln!(f, "unknown: {reason}"),
            Verdict::Invalid { anomalies } => {
                let n = anomalies.len();
                writeln!(
                    f,
                    "INVALID: {n} {}",
                    if n == 1 { "anomaly" } else { "anomalies" }
                )?;
                for (n, anomaly) in anomalies.iter().enumerate() {
                    write!(f, "{}. {anomaly}", n + 1)?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_serialize_with_a_tag() {
        let json = serde_json::to_string(&Verdict::Valid).unwrap();
        assert_eq!(json, r#"{"verdict":"valid"}"#);
        let unknown = Verdict::from_parts(Vec::new(), vec!["gave up".into()]);
        let json = serde_json::to_string(&unknown).unwrap();
        assert_eq!(json, r#"{"verdict":"unknown","reason":"gave up"}"#);
        assert_eq!(unknown.valid(), None);
        assert_eq!(unknown.to_string(), "unknown: gave up\n");
    }
}
