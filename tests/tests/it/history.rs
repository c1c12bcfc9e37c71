//! Concurrent writers that record what the cluster acknowledged, and the checker that
//! proves no acknowledged write was lost.
//!
//! Each writer `w` owns its keys, so the expected state follows from its own history
//! alone: it alternates `SET k:w:SEQ vSEQ` (a fresh key per write) and `INCR n:w` (one
//! counter per writer). Every command sent is recorded with its outcome: `Acked` with the
//! reply, or `Unknown` when the reply was an error or never came (a write that timed out
//! or met `-CLUSTERDOWN` may still commit later, so it may or may not be present).
//!
//! [`History::check`] compares a history with the values read back from one node:
//! - an acknowledged `SET` must be there with its value; an unknown one absent or with its
//!   value; nothing else may be there;
//! - a counter must be at least its highest acknowledged `INCR` reply and at most the
//!   number of `INCR`s sent (more means an increment was applied twice); a writer's
//!   acknowledged replies must rise strictly (each `INCR` follows the previous one).
//!
//! [`Register`] is the read side: one writer `INCR`s a counter while a reader on every node
//! `GET`s it; [`Register::stale_reads`] finds any read that returned less than a value an
//! `INCR` had answered before the read began.
//!
//! Writers and readers are bounded: at most [`MAX_OPS`] commands and [`MAX_RUN`] of running
//! each.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use redis::Value;

use crate::harness::{error_text, show_value, Conn};
use crate::nodes::poll;

/// The most commands one writer sends.
pub const MAX_OPS: u64 = 200_000;
/// The longest one writer runs.
pub const MAX_RUN: Duration = Duration::from_secs(120);
/// How long a writer waits for one reply before it records the write as unknown.
const WRITE_TIMEOUT: Duration = Duration::from_secs(8);
/// The pause after a failed command before the next node is tried (pacing, not waiting).
const RETRY_PAUSE: Duration = Duration::from_millis(25);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpKind {
    Set { key: String, value: String },
    Incr { key: String },
}

#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// A reply that is not an error.
    Acked(Value),
    /// An error reply, a broken connection or a timeout: the write may or may not be applied.
    Unknown(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Op {
    pub writer: usize,
    pub kind: OpKind,
    pub outcome: Outcome,
    /// When it was sent, and how long its reply (or its failure) took.
    pub sent: Instant,
    pub took: Duration,
}

impl Op {
    pub fn key(&self) -> &str {
        match &self.kind {
            OpKind::Set { key, .. } | OpKind::Incr { key } => key,
        }
    }

    pub fn args(&self) -> Vec<&str> {
        match &self.kind {
            OpKind::Set { key, value } => vec!["SET", key, value],
            OpKind::Incr { key } => vec!["INCR", key],
        }
    }

    pub fn is_acked(&self) -> bool {
        matches!(self.outcome, Outcome::Acked(_))
    }
}

/// Every command the writers sent, in each writer's order.
#[derive(Clone, Debug, Default)]
pub struct History {
    pub ops: Vec<Op>,
}

impl History {
    /// The longest an acknowledged write took among those that were in flight at some
    /// moment between `from` and `to`.
    pub fn worst_latency_between(&self, from: Instant, to: Instant) -> Duration {
        self.ops
            .iter()
            .filter(|o| o.is_acked() && o.sent <= to && o.sent + o.took >= from)
            .map(|o| o.took)
            .max()
            .unwrap_or_default()
    }

    pub fn acked(&self) -> usize {
        self.ops.iter().filter(|o| o.is_acked()).count()
    }

    /// Every key the history writes, sorted.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.ops.iter().map(|o| o.key().to_string()).collect();
        keys.sort();
        keys.dedup();
        keys
    }

    /// A summary for messages: commands sent, acknowledged, unknown (with a few reasons).
    pub fn summary(&self) -> String {
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        for op in &self.ops {
            if let Outcome::Unknown(why) = &op.outcome {
                let short: String = why.chars().take(120).collect();
                *reasons.entry(short).or_default() += 1;
            }
        }
        let reasons = reasons
            .iter()
            .take(5)
            .map(|(r, n)| format!("{n}× {r}"))
            .collect::<Vec<_>>()
            .join("; ");
        format!(
            "{} writes sent, {} acknowledged, {} unknown ({reasons})",
            self.ops.len(),
            self.acked(),
            self.ops.len() - self.acked()
        )
    }

    /// What is wrong with `state` (each key of the history, read from one node) given this
    /// history; empty when nothing is.
    pub fn check(&self, state: &BTreeMap<String, Option<String>>) -> Vec<String> {
        let mut bad = Vec::new();
        let value_of = |key: &str| -> Option<&str> { state.get(key).and_then(|v| v.as_deref()) };
        // key -> (INCRs sent, highest acknowledged reply)
        let mut counters: BTreeMap<&str, (i64, Option<i64>)> = BTreeMap::new();
        for op in &self.ops {
            if !state.contains_key(op.key()) {
                bad.push(format!("`{}` was not read back", op.key()));
                continue;
            }
            match (&op.kind, &op.outcome) {
                (OpKind::Set { key, value }, Outcome::Acked(reply)) => {
                    if *reply != Value::Okay {
                        bad.push(format!(
                            "SET {key} {value} was answered {}",
                            show_value(reply)
                        ));
                    }
                    match value_of(key) {
                        Some(v) if v == value => {}
                        Some(v) => bad.push(format!(
                            "acknowledged SET {key} {value} lost: the key holds {v:?}"
                        )),
                        None => bad.push(format!(
                            "acknowledged SET {key} {value} lost: the key is missing"
                        )),
                    }
                }
                (OpKind::Set { key, value }, Outcome::Unknown(_)) => match value_of(key) {
                    Some(v) if v != value => bad.push(format!(
                        "{key} holds {v:?}, which no SET wrote (the SET sent was {value:?})"
                    )),
                    _ => {}
                },
                (OpKind::Incr { key }, outcome) => {
                    let entry = counters.entry(key).or_insert((0, None));
                    entry.0 += 1;
                    if let Outcome::Acked(reply) = outcome {
                        match reply {
                            Value::Int(n) => {
                                if entry.1.is_some_and(|prev| *n <= prev) {
                                    bad.push(format!(
                                        "INCR {key} answered {n} after an earlier INCR answered {}",
                                        entry.1.unwrap_or_default()
                                    ));
                                }
                                if *n > entry.0 {
                                    bad.push(format!(
                                        "INCR {key} answered {n}, but only {} INCRs had been sent",
                                        entry.0
                                    ));
                                }
                                entry.1 = Some(entry.1.map_or(*n, |p| p.max(*n)));
                            }
                            other => {
                                bad.push(format!("INCR {key} was answered {}", show_value(other)))
                            }
                        }
                    }
                }
            }
        }
        for (key, (sent, acked_max)) in counters {
            let value = match value_of(key) {
                None => 0,
                Some(v) => match v.parse::<i64>() {
                    Ok(n) => n,
                    Err(_) => {
                        bad.push(format!("counter {key} holds {v:?}, not an integer"));
                        continue;
                    }
                },
            };
            if let Some(max) = acked_max {
                if value < max {
                    bad.push(format!(
                        "acknowledged INCR {key} -> {max} lost: the counter is {value}"
                    ));
                }
            }
            if value > sent {
                bad.push(format!(
                    "counter {key} is {value}, but only {sent} INCRs were sent (one applied twice?)"
                ));
            }
        }
        bad
    }
}

/// Reads every key in `keys` with pipelined `GET`s on `conn` (a read error is an `Err`).
pub fn read_state(
    conn: &mut Conn,
    keys: &[String],
) -> Result<BTreeMap<String, Option<String>>, String> {
    let mut state = BTreeMap::new();
    for chunk in keys.chunks(200) {
        let cmds: Vec<Vec<&str>> = chunk.iter().map(|k| vec!["GET", k.as_str()]).collect();
        conn.send(&cmds).map_err(|e| format!("send GETs: {e}"))?;
        for key in chunk {
            let v = conn.recv().map_err(|e| format!("GET {key}: {e}"))?;
            let value = match &v {
                Value::Nil => None,
                Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
                other => {
                    return Err(format!("GET {key} -> {}", show_value(other)));
                }
            };
            state.insert(key.clone(), value);
        }
    }
    Ok(state)
}

/// Writers running in threads until [`Workload::finish`].
pub struct Workload {
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicU64>,
    handles: Vec<JoinHandle<Vec<Op>>>,
}

impl Workload {
    /// Starts `writers` threads; writer `w` starts on `addrs[w % len]` and moves to the next
    /// address whenever a command fails.
    pub fn start(addrs: Vec<SocketAddr>, writers: usize) -> Workload {
        assert!(!addrs.is_empty(), "a workload needs an address");
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicU64::new(0));
        let handles = (0..writers)
            .map(|w| {
                let (stop, acked, addrs) = (stop.clone(), acked.clone(), addrs.clone());
                thread::Builder::new()
                    .name(format!("writer-{w}"))
                    .spawn(move || run_writer(w, &addrs, &stop, &acked))
                    .expect("spawn a writer thread")
            })
            .collect();
        Workload {
            stop,
            acked,
            handles,
        }
    }

    /// Writes acknowledged so far, by every writer.
    pub fn acked(&self) -> u64 {
        self.acked.load(Ordering::Relaxed)
    }

    /// Polls until at least `n` writes are acknowledged in all; panics after `timeout`.
    pub fn wait_acked(&self, n: u64, timeout: Duration, what: &str) {
        if poll(timeout, || (self.acked() >= n).then_some(())).is_none() {
            panic!(
                "{what}: only {} of {n} writes acknowledged within {timeout:?}",
                self.acked()
            );
        }
    }

    /// Stops the writers and joins them; their histories, writer by writer.
    pub fn finish(mut self) -> History {
        self.stop.store(true, Ordering::Relaxed);
        let mut ops = Vec::new();
        for h in self.handles.drain(..) {
            ops.extend(h.join().expect("a writer thread panicked"));
        }
        History { ops }
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        // On a test failure: stop the threads; they end within one write timeout.
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn run_writer(w: usize, addrs: &[SocketAddr], stop: &AtomicBool, acked: &AtomicU64) -> Vec<Op> {
    let started = Instant::now();
    let mut ops = Vec::new();
    let mut at = w % addrs.len();
    let mut conn: Option<Conn> = None;
    for seq in 0..MAX_OPS {
        if stop.load(Ordering::Relaxed) || started.elapsed() > MAX_RUN {
            break;
        }
        if conn.is_none() {
            match Conn::try_connect(addrs[at]) {
                Ok(mut c) => {
                    let _ = c.writer().set_read_timeout(Some(WRITE_TIMEOUT));
                    conn = Some(c);
                }
                Err(_) => {
                    // Nothing was sent: not part of the history.
                    at = (at + 1) % addrs.len();
                    thread::sleep(RETRY_PAUSE);
                    continue;
                }
            }
        }
        let kind = if seq % 2 == 0 {
            OpKind::Set {
                key: format!("k:{w}:{seq}"),
                value: format!("v{seq}"),
            }
        } else {
            OpKind::Incr {
                key: format!("n:{w}"),
            }
        };
        let mut op = Op {
            writer: w,
            kind,
            outcome: Outcome::Unknown(String::new()),
            sent: Instant::now(),
            took: Duration::ZERO,
        };
        let c = conn.as_mut().expect("connected above");
        op.outcome = match c.call(&op.args()) {
            Ok(v) => match error_text(&v) {
                None => Outcome::Acked(v),
                Some(e) => Outcome::Unknown(e),
            },
            Err(e) => Outcome::Unknown(e.to_string()),
        };
        op.took = op.sent.elapsed();
        let failed = !op.is_acked();
        if failed {
            conn = None;
            at = (at + 1) % addrs.len();
        } else {
            acked.fetch_add(1, Ordering::Relaxed);
        }
        ops.push(op);
        if failed {
            thread::sleep(RETRY_PAUSE);
        }
    }
    ops
}

/// One counter `INCR`ed by a single writer while readers on every node `GET` it: the
/// writer's acknowledgements and the readers' observations, each with the instant it
/// happened (acknowledgement: reply received; read: request about to be sent).
#[derive(Clone, Debug, Default)]
pub struct Register {
    pub acks: Vec<(Instant, i64)>,
    pub reads: Vec<(Instant, u64, i64)>,
}

impl Register {
    /// Reads that missed a write acknowledged before they began (stale reads). A
    /// linearizable store has none.
    pub fn stale_reads(&self) -> Vec<String> {
        let mut acks = self.acks.clone();
        acks.sort_by_key(|(at, _)| *at);
        let mut bad = Vec::new();
        for (began, node, value) in &self.reads {
            let before = acks.partition_point(|(at, _)| at < began);
            let newest = acks[..before].iter().map(|(_, n)| *n).max();
            if let Some(newest) = newest {
                if *value < newest {
                    bad.push(format!(
                        "a read on node {node} returned {value} after INCR had answered {newest}"
                    ));
                }
            }
        }
        bad
    }
}

/// Runs a single `INCR` writer and one `GET` reader per node (`(id, address)`) until
/// `stop`; at most [`MAX_OPS`] commands and [`MAX_RUN`] each.
pub fn run_register(nodes: &[(u64, SocketAddr)], key: &str, stop: &AtomicBool) -> Register {
    let addrs: Vec<SocketAddr> = nodes.iter().map(|(_, a)| *a).collect();
    let addrs = &addrs;
    let acks = thread::scope(|scope| {
        let readers: Vec<_> = (0..nodes.len())
            .map(|i| {
                scope.spawn(move || {
                    let mut reads = Vec::new();
                    client_loop(addrs, i, stop, |c, at| {
                        let began = Instant::now();
                        let node = nodes[at].0;
                        match c.call(&["GET", key]) {
                            Ok(Value::Nil) => {
                                reads.push((began, node, 0));
                                true
                            }
                            Ok(Value::BulkString(b)) => {
                                let n = String::from_utf8_lossy(&b).parse().unwrap_or(-1);
                                reads.push((began, node, n));
                                true
                            }
                            _ => false,
                        }
                    });
                    reads
                })
            })
            .collect();
        let mut acks = Vec::new();
        client_loop(addrs, 0, stop, |c, _| match c.call(&["INCR", key]) {
            Ok(Value::Int(n)) => {
                acks.push((Instant::now(), n));
                true
            }
            _ => false,
        });
        let reads: Vec<(Instant, u64, i64)> = readers
            .into_iter()
            .flat_map(|r| r.join().expect("a reader thread panicked"))
            .collect();
        (acks, reads)
    });
    Register {
        acks: acks.0,
        reads: acks.1,
    }
}

/// Calls `step` with a connection to `addrs[at]` (and `at`), moving to the next address whenever a
/// step fails (returns `false`) or a connection cannot be made; until `stop`, bounded.
fn client_loop(
    addrs: &[SocketAddr],
    mut at: usize,
    stop: &AtomicBool,
    mut step: impl FnMut(&mut Conn, usize) -> bool,
) {
    let started = Instant::now();
    let mut conn: Option<Conn> = None;
    for _ in 0..MAX_OPS {
        if stop.load(Ordering::Relaxed) || started.elapsed() > MAX_RUN {
            break;
        }
        if conn.is_none() {
            match Conn::try_connect(addrs[at]) {
                Ok(mut c) => {
                    let _ = c.writer().set_read_timeout(Some(WRITE_TIMEOUT));
                    conn = Some(c);
                }
                Err(_) => {
                    at = (at + 1) % addrs.len();
                    thread::sleep(RETRY_PAUSE);
                    continue;
                }
            }
        }
        if !step(conn.as_mut().expect("connected above"), at) {
            conn = None;
            at = (at + 1) % addrs.len();
            thread::sleep(RETRY_PAUSE);
        }
    }
}

mod checker_tests {
    //! The checker must be able to fail: hand-made histories and states with a lost write.

    use super::*;

    fn set(writer: usize, key: &str, value: &str, acked: bool) -> Op {
        Op {
            writer,
            kind: OpKind::Set {
                key: key.into(),
                value: value.into(),
            },
            outcome: if acked {
                Outcome::Acked(Value::Okay)
            } else {
                Outcome::Unknown("CLUSTERDOWN no leader".into())
            },
            sent: Instant::now(),
            took: Duration::ZERO,
        }
    }

    fn incr(writer: usize, key: &str, reply: Option<i64>) -> Op {
        Op {
            writer,
            kind: OpKind::Incr { key: key.into() },
            outcome: match reply {
                Some(n) => Outcome::Acked(Value::Int(n)),
                None => Outcome::Unknown("connection reset".into()),
            },
            sent: Instant::now(),
            took: Duration::ZERO,
        }
    }

    fn state(pairs: &[(&str, Option<&str>)]) -> BTreeMap<String, Option<String>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
            .collect()
    }

    fn history() -> History {
        History {
            ops: vec![
                set(0, "k:0:0", "v0", true),
                incr(0, "n:0", Some(1)),
                set(0, "k:0:2", "v2", false),
                incr(0, "n:0", None),
                set(0, "k:0:4", "v4", true),
                incr(0, "n:0", Some(3)),
            ],
        }
    }

    #[test]
    fn checker_accepts_a_complete_state() {
        let h = history();
        // The unknown SET may be absent or present, the unknown INCR counted or not.
        let without_unknowns = state(&[
            ("k:0:0", Some("v0")),
            ("k:0:2", None),
            ("k:0:4", Some("v4")),
            ("n:0", Some("3")),
        ]);
        assert_eq!(h.check(&without_unknowns), Vec::<String>::new());
        let with_unknown_set = state(&[
            ("k:0:0", Some("v0")),
            ("k:0:2", Some("v2")),
            ("k:0:4", Some("v4")),
            ("n:0", Some("3")),
        ]);
        assert_eq!(h.check(&with_unknown_set), Vec::<String>::new());
    }

    #[test]
    fn checker_reports_a_missing_acknowledged_write() {
        let h = history();
        let s = state(&[
            ("k:0:0", Some("v0")),
            ("k:0:2", None),
            ("k:0:4", None),
            ("n:0", Some("3")),
        ]);
        let bad = h.check(&s);
        assert_eq!(
            bad,
            vec!["acknowledged SET k:0:4 v4 lost: the key is missing".to_string()]
        );
    }

    #[test]
    fn checker_reports_a_lost_or_doubled_increment_and_a_foreign_value() {
        let h = history();
        let lost = state(&[
            ("k:0:0", Some("v0")),
            ("k:0:2", None),
            ("k:0:4", Some("v4")),
            ("n:0", Some("1")),
        ]);
        assert_eq!(
            h.check(&lost),
            vec!["acknowledged INCR n:0 -> 3 lost: the counter is 1".to_string()]
        );
        let doubled = state(&[
            ("k:0:0", Some("v0")),
            ("k:0:2", Some("v2")),
            ("k:0:4", Some("v4")),
            ("n:0", Some("4")),
        ]);
        assert_eq!(
            h.check(&doubled),
            vec!["counter n:0 is 4, but only 3 INCRs were sent (one applied twice?)".to_string()]
        );
        let foreign = state(&[
            ("k:0:0", Some("v0")),
            ("k:0:2", Some("v9")),
            ("k:0:4", Some("v4")),
            ("n:0", Some("3")),
        ]);
        assert_eq!(h.check(&foreign).len(), 1);
        let unread = state(&[("k:0:0", Some("v0"))]);
        assert!(h.check(&unread).iter().any(|b| b.contains("not read back")));
    }

    #[test]
    fn register_check_reports_a_stale_read() {
        let t0 = Instant::now();
        let t = |ms: u64| t0 + Duration::from_millis(ms);
        let mut r = Register {
            acks: vec![(t(10), 1), (t(20), 2)],
            // Concurrent with the second INCR: 1 is fine; after it: 2 is required.
            reads: vec![(t(5), 0, 0), (t(15), 1, 1), (t(19), 2, 2), (t(25), 1, 2)],
        };
        assert_eq!(r.stale_reads(), Vec::<String>::new());
        r.reads.push((t(30), 2, 1));
        assert_eq!(
            r.stale_reads(),
            vec!["a read on node 2 returned 1 after INCR had answered 2".to_string()]
        );
    }

    #[test]
    fn checker_reports_increments_out_of_order() {
        let h = History {
            ops: vec![incr(1, "n:1", Some(2)), incr(1, "n:1", Some(2))],
        };
        let bad = h.check(&state(&[("n:1", Some("2"))]));
        assert_eq!(
            bad,
            vec![
                "INCR n:1 answered 2, but only 1 INCRs had been sent".to_string(),
                "INCR n:1 answered 2 after an earlier INCR answered 2".to_string(),
            ]
        );
    }
}
