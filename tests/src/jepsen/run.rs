//! One run, inside the run's namespace: start the nodes, let the workers record a history
//! while the nemesis applies its schedule, heal everything, make the final reads, stop.
//!
//! Files written in the run directory (the outer process judges them afterwards):
//! `history.jsonl` (as it happens), `nemesis.log` (every fault and heal, with times),
//! `faults.json` (the fault windows for the plot, and nodes that exited on their own),
//! `nodes/nN.log` and `nodes/nN/` (each node's log and data).
//!
//! Invariants:
//! - Every loop is bounded in time and count: workers stop at the run's end (an operation
//!   in flight then ends within the client timeout), waits poll with deadlines.
//! - A run stops early, healing and killing everything, on SIGINT/SIGTERM or when the
//!   outer process (its parent) is gone.
//! - `iptables` runs only inside the namespace: [`inner`] refuses to start elsewhere.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use lincheck::history::Type;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::db::{self, Db, DbOptions};
use super::nemesis::{self, Fault, Kinds, Shape, Target, Timing};
use super::netns;
use super::record::{Entry, Processes, Recorder};
use super::workload::{self, Generator, Op, Workload};

/// Everything a run needs; written to `run.json` by the outer process.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunSpec {
    /// `register`, `counter`, `set`, `list-append` or `big-values`.
    pub workload: String,
    /// `none`, `mixed` or a comma-separated list of nemeses.
    pub nemesis: String,
    pub seconds: u64,
    pub nodes: u64,
    pub workers: usize,
    pub seed: u64,
    pub heartbeat_ms: u64,
    pub snapshot_logs: u64,
    /// `--raft-groups` of the nodes.
    #[serde(default = "one_group")]
    pub raft_groups: u32,
    /// `--unsafe` for the nodes (the self-test), if any.
    pub unsafe_mode: Option<String>,
    /// How long a client waits for a reply before the operation is unknown.
    pub op_timeout_ms: u64,
    /// Mean pause of a worker between two operations.
    pub think_ms: u64,
    pub bin: PathBuf,
    pub dir: PathBuf,
}

/// What a `run.json` written before runs had several groups meant.
fn one_group() -> u32 {
    1
}

impl RunSpec {
    pub fn workload(&self) -> Result<Workload> {
        self.workload.parse().map_err(|e| anyhow!("{e}"))
    }

    pub fn kinds(&self) -> Result<Kinds> {
        self.nemesis.parse().map_err(|e: String| anyhow!(e))
    }

    /// The run's settings in one line: `nemesis kill, 20 s, 3 nodes, 8 workers, seed 2`
    /// (and the UNSAFE mode, if any), for the nemesis log and the verdict.
    pub fn describe(&self, kinds: &Kinds) -> String {
        format!(
            "nemesis {}, {} s, {} nodes, {} workers, seed {}{}",
            kinds.name(),
            self.seconds,
            self.nodes,
            self.workers,
            self.seed,
            self.unsafe_mode
                .as_deref()
                .map(|u| format!(", UNSAFE {u}"))
                .unwrap_or_default()
        )
    }
}

/// A time span in which a fault held (nanoseconds since the run's start).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Window {
    pub label: String,
    pub start: u64,
    pub end: u64,
}

/// What the nemesis leaves for the outer process.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Faults {
    pub windows: Vec<Window>,
    /// Nodes that exited without being killed (a crash), with their exit status.
    pub crashes: Vec<String>,
    /// What the replica checks after the final reads found wrong: a group whose replicas'
    /// digests differ, slots not served exactly once (see [`replica_checks`]).
    #[serde(default)]
    pub diverged: Vec<String>,
    /// Set when the run stopped early.
    pub interrupted: bool,
}

/// Why a run should stop now.
#[derive(Clone)]
struct Stop {
    signal: Arc<AtomicBool>,
    parent: u32,
}

impl Stop {
    fn now(&self) -> bool {
        self.signal.load(Ordering::SeqCst) || std::os::unix::process::parent_id() != self.parent
    }
}

/// The nemesis log: one line per event, to `nemesis.log` and stdout.
struct Log {
    start: Instant,
    file: Mutex<fs::File>,
}

impl Log {
    fn line(&self, text: impl AsRef<str>) {
        let t = self.start.elapsed().as_secs_f64();
        let line = format!("[{t:8.3}s] {}", text.as_ref());
        println!("{line}");
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(f, "{line}");
    }
}

/// How often leaders move while a shuffle-leaders step holds.
const SHUFFLE_EVERY: Duration = Duration::from_millis(800);

/// Sleeps until `at` after `start`, in short naps; false if told to stop first.
fn wait_until(start: Instant, at: Duration, stop: &Stop) -> bool {
    loop {
        if stop.now() {
            return false;
        }
        let now = start.elapsed();
        if now >= at {
            return true;
        }
        std::thread::sleep((at - now).min(Duration::from_millis(50)));
    }
}

/// The inner process's main: runs the spec in `dir/run.json`. Ok(true) when the run
/// went to the end, Ok(false) when it was interrupted.
pub fn inner(spec_path: &Path) -> Result<bool> {
    let spec: RunSpec = serde_json::from_slice(
        &fs::read(spec_path).with_context(|| format!("read {}", spec_path.display()))?,
    )
    .with_context(|| format!("parse {}", spec_path.display()))?;
    let workload = spec.workload()?;
    let kinds = spec.kinds()?;
    let stop = Stop {
        signal: netns::stop_on_signals(),
        parent: std::os::unix::process::parent_id(),
    };
    // iptables rules and fixed ports are only safe inside the harness's own namespace.
    let here = netns::run(
        "ip",
        &["netns", "identify", &std::process::id().to_string()],
    )?;
    if !here.trim().starts_with(netns::PREFIX) {
        bail!(
            "`jepsen inner` must run inside a {}* network namespace (it is in `{}`); run `jepsen run`",
            netns::PREFIX,
            here.trim()
        );
    }
    netns::run("iptables", &["-w", "-F", "INPUT"])?;
    let log = Log {
        start: Instant::now(),
        file: Mutex::new(fs::File::create(spec.dir.join("nemesis.log"))?),
    };
    log.line(format!(
        "run: workload {workload}, {}",
        spec.describe(&kinds)
    ));
    let db = Db::start(DbOptions {
        bin: spec.bin.clone(),
        nodes: spec.nodes,
        heartbeat_ms: spec.heartbeat_ms,
        snapshot_logs: spec.snapshot_logs,
        raft_groups: spec.raft_groups,
        unsafe_mode: spec.unsafe_mode.clone(),
        dir: spec.dir.clone(),
        tmpfs: kinds
            .0
            .contains(&nemesis::Kind::DiskFull)
            .then(|| DISK_SIZE.to_string()),
    })?;
    let leader = db.leader();
    // Times in the history, the nemesis log and the windows all count from here.
    let start = Instant::now();
    let log = Log {
        start,
        file: log.file,
    };
    log.line(format!("cluster up; leader n{}", leader.unwrap_or(0)));

    let recorder = Arc::new(Recorder::create(&spec.dir.join("history.jsonl"), start)?);
    let generator = Arc::new(Generator::new(workload));
    let processes = Arc::new(Processes::new(spec.workers as u64));
    let total = Duration::from_secs(spec.seconds);
    let workers_stop = Arc::new(AtomicBool::new(false));
    let ids = db.ids();
    let op_timeout = Duration::from_millis(spec.op_timeout_ms.max(100));
    let workers: Vec<_> = (0..spec.workers)
        .map(|w| {
            let ctx = Worker {
                process: w as u64,
                rng: StdRng::seed_from_u64(spec.seed.wrapping_add(1 + w as u64)),
                ids: ids.clone(),
                generator: generator.clone(),
                recorder: recorder.clone(),
                processes: processes.clone(),
                stop: workers_stop.clone(),
                deadline: start + total,
                op_timeout,
                think: Duration::from_millis(spec.think_ms),
            };
            std::thread::spawn(move || ctx.run())
        })
        .collect();

    let mut nemesis = Nemesis {
        db,
        rng: StdRng::seed_from_u64(spec.seed),
        log: &log,
        faults: Faults::default(),
        removed: BTreeSet::new(),
        ballast: Vec::new(),
        hot_slots: hot_slots(workload),
        groups: spec.raft_groups.max(1),
    };
    let steps = nemesis::schedule(&kinds, total, Timing::for_run(total), &mut nemesis.rng);
    log.line(format!("{} nemesis steps scheduled", steps.len()));
    let mut completed = true;
    for step in &steps {
        if !wait_until(start, step.start, &stop) {
            completed = false;
            break;
        }
        nemesis.check_crashes();
        // A slow heal or a slow fault (a membership change waits for its commit) may eat
        // into the schedule: a step holds for its full length once its faults are in
        // place, as far as the run has room, and is skipped when it has none.
        let last_end = total.saturating_sub(nemesis::TAIL);
        if start.elapsed() + Duration::from_millis(500) >= last_end {
            log.line("no time left for the remaining steps");
            break;
        }
        let t0 = recorder.now();
        let undo: Vec<(String, Undo)> = step.faults.iter().map(|&f| nemesis.apply(f)).collect();
        let end = (start.elapsed() + step.hold).min(last_end);
        // A shuffle of leaders or a move of slots is over at once: while its step holds,
        // leaders move again every SHUFFLE_EVERY, slots every MOVE_EVERY.
        let repeats: Vec<(Fault, Duration)> = step
            .faults
            .iter()
            .filter_map(|&f| match f {
                Fault::ShuffleLeaders => Some((f, SHUFFLE_EVERY)),
                Fault::MoveSlots => Some((f, nemesis::MOVE_EVERY)),
                _ => None,
            })
            .collect();
        let mut ticks: Vec<Duration> = repeats
            .iter()
            .map(|&(_, every)| start.elapsed() + every)
            .collect();
        let held = loop {
            let until = ticks.iter().copied().min().unwrap_or(end).min(end);
            if !wait_until(start, until, &stop) {
                break false;
            }
            if until >= end {
                break true;
            }
            for (i, &(fault, every)) in repeats.iter().enumerate() {
                if ticks[i] <= until {
                    nemesis.apply(fault);
                    ticks[i] += every;
                }
            }
        };
        for (label, u) in undo.into_iter().rev() {
            nemesis.heal(u);
            nemesis.faults.windows.push(Window {
                label,
                start: t0,
                end: recorder.now(),
            });
        }
        if !held {
            completed = false;
            break;
        }
    }
    if completed {
        completed = wait_until(start, total, &stop);
    }
    workers_stop.store(true, Ordering::SeqCst);
    for w in workers {
        if w.join().is_err() {
            log.line("a worker panicked");
        }
    }
    nemesis.check_crashes();
    log.line(format!("workers done: {} events recorded", recorder.len()));

    if completed {
        nemesis.heal_all()?;
        let ops = generator.final_reads();
        if !ops.is_empty() {
            final_reads(
                &nemesis.db,
                &recorder,
                &processes,
                &ops,
                op_timeout,
                &log,
                &stop,
            );
        }
    }
    if completed {
        let mut problems = moves_settled(&nemesis.db, &log);
        problems.extend(replica_checks(&nemesis.db, spec.raft_groups, &log));
        problems.extend(slot_checks(
            &nemesis.db,
            spec.raft_groups,
            &nemesis.hot_slots,
            &log,
        ));
        nemesis.faults.diverged = problems;
    }
    nemesis.check_crashes();
    nemesis.db.stop_all();
    recorder.flush().context("write history.jsonl")?;
    nemesis.faults.interrupted = !completed;
    fs::write(
        spec.dir.join("faults.json"),
        serde_json::to_vec_pretty(&nemesis.faults)?,
    )?;
    log.line(if completed { "done" } else { "interrupted" });
    Ok(completed)
}

/// After the run, with every fault healed: each group's replicas hold the same data (its
/// `DEBUG DIGEST-GROUP`, read after a read barrier, equal on every running node), the meta
/// group's replicas the same cluster map (group 0's digest), and every
/// slot is served by exactly one range of `CLUSTER SLOTS` on every node. A node still
/// catching up gets up to 30 s. What is wrong, in words (empty when all is well).
fn replica_checks(db: &Db, groups: u32, log: &Log) -> Vec<String> {
    let timeout = Duration::from_secs(5);
    let deadline = Instant::now() + Duration::from_secs(30);
    let nodes = db.awake();
    let text = |v: &redis::Value| match v {
        redis::Value::SimpleString(s) => s.clone(),
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        other => format!("{other:?}"),
    };
    let mut problems = Vec::new();
    for g in 0..=groups.max(1) {
        let group = g.to_string();
        let mut last = String::new();
        let agreed = loop {
            let digests: Vec<(u64, Result<String, String>)> = nodes
                .iter()
                .map(|&id| {
                    let d = db::call(id, &["DEBUG", "DIGEST-GROUP", &group], timeout);
                    (id, d.map(|v| text(&v)))
                })
                .collect();
            let distinct: BTreeSet<&Result<String, String>> =
                digests.iter().map(|(_, d)| d).collect();
            if distinct.len() == 1 && digests.iter().all(|(_, d)| d.is_ok()) {
                break true;
            }
            last = digests
                .iter()
                .map(|(id, d)| format!("n{id}={}", d.as_ref().unwrap_or_else(|e| e)))
                .collect::<Vec<_>>()
                .join(" ");
            if Instant::now() >= deadline {
                break false;
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        if !agreed {
            problems.push(format!("group {g}: replicas differ: {last}"));
        }
    }
    for &id in &nodes {
        let mut served = vec![0u32; 16384];
        match db::call(id, &["CLUSTER", "SLOTS"], timeout) {
            Ok(redis::Value::Array(ranges)) => {
                for range in ranges {
                    if let redis::Value::Array(e) = range {
                        if let (Some(redis::Value::Int(a)), Some(redis::Value::Int(b))) =
                            (e.first(), e.get(1))
                        {
                            for s in (*a).max(0)..=(*b).min(16383) {
                                served[s as usize] += 1;
                            }
                        }
                    }
                }
                let wrong = served.iter().filter(|&&n| n != 1).count();
                if wrong > 0 {
                    problems.push(format!("n{id}: {wrong} slots not served exactly once"));
                }
            }
            other => problems.push(format!("n{id}: CLUSTER SLOTS answered {other:?}")),
        }
    }
    log.line(if problems.is_empty() {
        format!(
            "replica checks: {} groups agree on every node",
            groups.max(1)
        )
    } else {
        format!("replica checks FAILED: {}", problems.join("; "))
    });
    problems
}

/// The slots `workload`'s keys live in.
fn hot_slots(workload: Workload) -> Vec<u16> {
    let slots: BTreeSet<u16> = workload::keys(workload)
        .iter()
        .map(|k| types::key_slot(k.as_bytes()).0)
        .collect();
    slots.into_iter().collect()
}

/// Waits (up to 60 s) until no slot move is in progress: every job the run started ended
/// done or aborted. What is wrong, in words.
fn moves_settled(db: &Db, log: &Log) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last;
    loop {
        let nodes = db.awake();
        let answer = nodes
            .iter()
            .find_map(|&id| db::call(id, &["CLUSTER", "GETSLOTMIGRATIONS"], CHECK_TIMEOUT).ok());
        match answer {
            Some(redis::Value::Array(jobs)) => {
                let states: Vec<String> = jobs.iter().map(job_state).collect();
                let open: Vec<&String> = states
                    .iter()
                    .filter(|s| !s.ends_with("done") && !s.ends_with("aborted"))
                    .collect();
                if open.is_empty() {
                    log.line(format!(
                        "slot moves: {} listed, {} done, none in progress",
                        states.len(),
                        states.iter().filter(|s| s.ends_with("done")).count()
                    ));
                    return Vec::new();
                }
                last = format!("{open:?}");
            }
            other => last = format!("GETSLOTMIGRATIONS answered {other:?}"),
        }
        if Instant::now() >= deadline {
            let problem = format!("slot moves still in progress after 60 s: {last}");
            log.line(&problem);
            return vec![problem];
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The fields of one job of `CLUSTER GETSLOTMIGRATIONS` (a map, flat in RESP2), as text.
fn job_fields(job: &redis::Value) -> BTreeMap<String, String> {
    let text = |v: &redis::Value| match v {
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        redis::Value::SimpleString(s) => s.clone(),
        redis::Value::Int(n) => n.to_string(),
        other => format!("{other:?}"),
    };
    match job {
        redis::Value::Array(items) => items
            .chunks(2)
            .filter(|kv| kv.len() == 2)
            .map(|kv| (text(&kv[0]), text(&kv[1])))
            .collect(),
        redis::Value::Map(pairs) => pairs.iter().map(|(k, v)| (text(k), text(v))).collect(),
        _ => BTreeMap::new(),
    }
}

/// `<job>:<state>` of one job of `CLUSTER GETSLOTMIGRATIONS`.
fn job_state(job: &redis::Value) -> String {
    let fields = job_fields(job);
    let get = |k: &str| fields.get(k).map_or("?", String::as_str).to_string();
    format!("{}:{}", get("name"), get("state"))
}

/// A group and the slot ranges a node routes to it.
type GroupSlots = (u64, Vec<(u16, u16)>);

/// Timeout of the checks' calls.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// After the moves settled: every node routes each slot to the same group (`INFO`'s
/// `slots=` of every group, and `CLUSTER SLOTS`' ranges, equal on every node), and no
/// replica of a group holds keys of a workload slot the group does not serve. What is
/// wrong, in words.
fn slot_checks(db: &Db, groups: u32, hot: &[u16], log: &Log) -> Vec<String> {
    let nodes = db.awake();
    let mut problems = Vec::new();
    let mut routes: BTreeMap<u64, Vec<GroupSlots>> = BTreeMap::new();
    let mut ranges: BTreeMap<u64, Vec<(i64, i64)>> = BTreeMap::new();
    // The nodes learn of the last moves within moments: a few tries.
    for attempt in 0..20 {
        routes.clear();
        ranges.clear();
        for &id in &nodes {
            if let Ok(info) = db.info(id) {
                routes.insert(
                    id,
                    info.groups
                        .iter()
                        .map(|(&g, line)| (g, line.slots.clone()))
                        .collect(),
                );
            }
            if let Ok(redis::Value::Array(rs)) = db::call(id, &["CLUSTER", "SLOTS"], CHECK_TIMEOUT)
            {
                let mut mine: Vec<(i64, i64)> = rs
                    .iter()
                    .filter_map(|r| match r {
                        redis::Value::Array(e) => match (e.first(), e.get(1)) {
                            (Some(redis::Value::Int(a)), Some(redis::Value::Int(b))) => {
                                Some((*a, *b))
                            }
                            _ => None,
                        },
                        _ => None,
                    })
                    .collect();
                mine.sort_unstable();
                ranges.insert(id, mine);
            }
        }
        let routes_agree = routes.len() == nodes.len()
            && routes.values().all(|r| Some(r) == routes.values().next());
        let ranges_agree = ranges.len() == nodes.len()
            && ranges.values().all(|r| Some(r) == ranges.values().next());
        if routes_agree && ranges_agree {
            break;
        }
        if attempt == 19 {
            if !routes_agree {
                problems.push(format!(
                    "the nodes route slots to different groups: {routes:?}"
                ));
            }
            if !ranges_agree {
                problems.push(format!("CLUSTER SLOTS differs between nodes: {ranges:?}"));
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    for &id in &nodes {
        let Some(mine) = routes.get(&id) else {
            continue;
        };
        for g in 1..=u64::from(groups) {
            let serves = |s: u16| {
                mine.iter()
                    .any(|(group, r)| *group == g && r.iter().any(|&(a, b)| a <= s && s <= b))
            };
            for &slot in hot {
                if serves(slot) {
                    continue;
                }
                let keys = db::call(
                    id,
                    &[
                        "DEBUG",
                        "GROUP-SLOT-KEYS",
                        &g.to_string(),
                        &slot.to_string(),
                    ],
                    CHECK_TIMEOUT,
                );
                if let Ok(redis::Value::Int(n)) = keys {
                    if n > 0 {
                        problems.push(format!(
                            "n{id}: group {g} holds {n} keys of slot {slot}, which it does not serve"
                        ));
                    }
                }
            }
        }
    }
    log.line(if problems.is_empty() {
        format!(
            "slot checks: every node routes alike, no group holds keys of the {} workload slots it does not serve",
            hot.len()
        )
    } else {
        format!("slot checks FAILED: {}", problems.join("; "))
    });
    problems
}

/// Reads the whole state once per final op, through any node that answers (bounded).
fn final_reads(
    db: &Db,
    recorder: &Recorder,
    processes: &Processes,
    ops: &[Op],
    timeout: Duration,
    log: &Log,
    stop: &Stop,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    for op in ops {
        let process = processes.fresh();
        let mut done = false;
        for attempt in 0..100u32 {
            if done || Instant::now() >= deadline || stop.now() {
                break;
            }
            let nodes = db.awake();
            let Some(&id) = nodes.get(attempt as usize % nodes.len().max(1)) else {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            };
            let Ok(mut con) = db::connect(id, timeout) else {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            };
            recorder.record(invoke(process, op));
            let outcome = workload::execute(&mut con, op);
            done = outcome.kind == Type::Ok;
            recorder.record(complete(process, op, outcome, id));
        }
        log.line(format!(
            "final read {} {}",
            op.key.as_deref().unwrap_or("(all keys)"),
            if done {
                "done"
            } else {
                "FAILED: no node answered in time"
            }
        ));
    }
}

fn invoke(process: u64, op: &Op) -> Entry {
    Entry {
        process,
        kind: Type::Invoke,
        f: op.f.to_string(),
        key: op.key.clone(),
        value: op.value.clone(),
        error: None,
        node: None,
    }
}

fn complete(process: u64, op: &Op, outcome: workload::Outcome, node: u64) -> Entry {
    Entry {
        process,
        kind: outcome.kind,
        f: op.f.to_string(),
        key: op.key.clone(),
        value: outcome.value,
        error: outcome.error,
        node: Some(format!("n{node}")),
    }
}

/// One client thread.
struct Worker {
    process: u64,
    rng: StdRng,
    ids: Vec<u64>,
    generator: Arc<Generator>,
    recorder: Arc<Recorder>,
    processes: Arc<Processes>,
    stop: Arc<AtomicBool>,
    deadline: Instant,
    op_timeout: Duration,
    think: Duration,
}

/// The most operations one worker invokes in a run (a bound besides the clock).
const MAX_OPS_PER_WORKER: u32 = 200_000;

impl Worker {
    fn run(mut self) {
        let mut con: Option<(u64, redis::Connection)> = None;
        for _ in 0..MAX_OPS_PER_WORKER {
            if self.stop.load(Ordering::SeqCst) || Instant::now() >= self.deadline {
                return;
            }
            if con.is_none() {
                let id = *self.ids.choose(&mut self.rng).expect("nodes");
                match db::connect(id, self.op_timeout) {
                    Ok(c) => con = Some((id, c)),
                    Err(_) => {
                        // A killed node: try another after a short pause.
                        std::thread::sleep(Duration::from_millis(50));
                        continue;
                    }
                }
            }
            let Some((id, c)) = con.as_mut() else {
                continue;
            };
            let id = *id;
            let op = self.generator.next(&mut self.rng);
            self.recorder.record(invoke(self.process, &op));
            let outcome = workload::execute(c, &op);
            let kind = outcome.kind;
            self.recorder
                .record(complete(self.process, &op, outcome, id));
            match kind {
                Type::Info => {
                    self.process = self.processes.fresh();
                    con = None;
                }
                Type::Fail => con = None,
                _ => {}
            }
            if !self.think.is_zero() {
                let ms = self.rng.gen_range(0..=2 * self.think.as_millis() as u64);
                std::thread::sleep(Duration::from_millis(ms));
            }
        }
    }
}

/// Each node's disk under the disk-full nemesis (a tmpfs).
const DISK_SIZE: &str = "256m";
/// What the disk-full nemesis leaves free: less than the log's low-water mark, so the
/// node stops writing its log (and answers -MISCONF) until it is freed.
const DISK_FULL_LEAVES: u64 = 1 << 20;

/// What heals an applied fault.
enum Undo {
    Nothing,
    Heal,
    Restart(Vec<u64>),
    Resume(Vec<u64>),
    Rejoin(u64),
    /// Remove the ballast that fills a node's disk.
    FreeDisk(u64, std::path::PathBuf),
}

struct Nemesis<'a> {
    db: Db,
    rng: StdRng,
    log: &'a Log,
    faults: Faults,
    /// Nodes removed from the cluster and not yet back.
    removed: BTreeSet<u64>,
    /// Ballast files filling nodes' disks.
    ballast: Vec<std::path::PathBuf>,
    /// The slots the workload's keys live in (the move-slots nemesis moves them).
    hot_slots: Vec<u16>,
    /// Data groups in the cluster.
    groups: u32,
}

impl Nemesis<'_> {
    fn check_crashes(&mut self) {
        for (id, status) in self.db.reap_exited() {
            let text = format!("NODE n{id} EXITED ON ITS OWN ({status}); see nodes/n{id}.log");
            self.log.line(&text);
            self.faults.crashes.push(text);
        }
    }

    fn leader_or_random(&mut self) -> Option<u64> {
        self.db
            .leader()
            .or_else(|| self.db.awake().choose(&mut self.rng).copied())
    }

    /// A node a slot move in progress depends on, at random: the meta group's leader (it
    /// runs the mover) or the leader of an unfinished job's source or target group; the
    /// meta leader when no job is in progress; the first group's leader or a random node
    /// when nothing answers.
    fn move_party(&mut self) -> Option<u64> {
        let awake = self.db.awake();
        let &via = awake.choose(&mut self.rng)?;
        let info = db::call(via, &["INFO", "replication"], CHECK_TIMEOUT).ok();
        let text = match &info {
            Some(redis::Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
            Some(redis::Value::VerbatimString { text, .. }) => text.clone(),
            _ => return self.leader_or_random(),
        };
        let leader_in = |line: Option<&str>| {
            line?
                .split(',')
                .find_map(|kv| kv.strip_prefix("leader="))
                .and_then(|l| l.parse::<u64>().ok())
        };
        let mut parties: Vec<u64> = leader_in(crate::info::field(&text, "raft_meta"))
            .into_iter()
            .collect();
        if let Ok(redis::Value::Array(jobs)) =
            db::call(via, &["CLUSTER", "GETSLOTMIGRATIONS"], CHECK_TIMEOUT)
        {
            for job in jobs.iter().map(job_fields) {
                let open = job
                    .get("state")
                    .is_some_and(|s| s != "done" && s != "aborted");
                if !open {
                    continue;
                }
                for side in ["source_group", "target_group"] {
                    let line = job
                        .get(side)
                        .and_then(|g| crate::info::field(&text, &format!("raft_group_{g}")));
                    parties.extend(leader_in(line));
                }
            }
        }
        parties.retain(|p| awake.contains(p));
        parties
            .choose(&mut self.rng)
            .copied()
            .or_else(|| self.leader_or_random())
    }

    /// Applies one fault; its label (for the plot) and how to heal it.
    fn apply(&mut self, fault: Fault) -> (String, Undo) {
        match self.try_apply(fault) {
            Ok((label, undo)) => {
                self.log.line(format!("start {label}"));
                (label, undo)
            }
            Err(e) => {
                let label = format!("{fault} (not applied)");
                self.log.line(format!("could not {fault}: {e:#}"));
                (label, Undo::Nothing)
            }
        }
    }

    fn try_apply(&mut self, fault: Fault) -> Result<(String, Undo)> {
        match fault {
            Fault::Partition(shape) => {
                let ids = self.db.ids();
                let leader = match shape {
                    Shape::IsolateLeader | Shape::MajorityMinority => self.db.leader(),
                    _ => None,
                };
                let pairs = nemesis::cut(shape, &ids, leader, &mut self.rng);
                for rule in nemesis::rules(&pairs, db::ip_of) {
                    let args: Vec<&str> = rule.iter().map(String::as_str).collect();
                    netns::run("iptables", &args)?;
                }
                Ok((
                    format!(
                        "partition {} {}",
                        shape.name(),
                        nemesis::describe(&pairs, &ids)
                    ),
                    Undo::Heal,
                ))
            }
            Fault::Kill(target) => {
                let running = self.db.running();
                let victims: Vec<u64> = match target {
                    Target::Leader => self.leader_or_random().into_iter().collect(),
                    Target::MoveParty => self.move_party().into_iter().collect(),
                    Target::Random => running.choose(&mut self.rng).copied().into_iter().collect(),
                    Target::Majority => {
                        let n = self.db.ids().len() / 2 + 1;
                        running.choose_multiple(&mut self.rng, n).copied().collect()
                    }
                };
                if victims.is_empty() {
                    bail!("no running node to kill");
                }
                for &v in &victims {
                    self.db.kill(v)?;
                }
                Ok((
                    format!("kill -9 {} {}", target.name(), names(&victims)),
                    Undo::Restart(victims),
                ))
            }
            Fault::Pause(target) => {
                let victim = match target {
                    Target::Leader => self.leader_or_random(),
                    Target::MoveParty => self.move_party(),
                    _ => self.db.awake().choose(&mut self.rng).copied(),
                }
                .ok_or_else(|| anyhow!("no awake node to pause"))?;
                self.db.pause(victim)?;
                Ok((
                    format!("pause {} n{victim}", target.name()),
                    Undo::Resume(vec![victim]),
                ))
            }
            Fault::ShuffleLeaders => Ok((
                format!("shuffle leaders: {}", self.shuffle_leaders()?),
                Undo::Nothing,
            )),
            Fault::MoveSlots => Ok((format!("move slots: {}", self.move_slots()?), Undo::Nothing)),
            Fault::Membership { leader } => {
                let current = self.db.leader();
                let victim = if leader {
                    current
                } else {
                    let others: Vec<u64> = self
                        .db
                        .awake()
                        .into_iter()
                        .filter(|&i| Some(i) != current && !self.removed.contains(&i))
                        .collect();
                    others.choose(&mut self.rng).copied()
                }
                .ok_or_else(|| anyhow!("no node to remove"))?;
                self.forget(victim)?;
                self.removed.insert(victim);
                self.db.kill(victim)?;
                Ok((
                    format!(
                        "remove n{victim}{}, wipe it, re-add it",
                        if leader { " (leader)" } else { "" }
                    ),
                    Undo::Rejoin(victim),
                ))
            }
            Fault::DiskFull(target) => {
                let victim = match target {
                    Target::Leader => self.leader_or_random(),
                    _ => self.db.running().choose(&mut self.rng).copied(),
                }
                .ok_or_else(|| anyhow!("no running node"))?;
                let ballast = self.db.fill_disk(victim, DISK_FULL_LEAVES)?;
                self.ballast.push(ballast.clone());
                Ok((
                    format!("fill the disk of the {} n{victim}", target.name()),
                    Undo::FreeDisk(victim, ballast),
                ))
            }
        }
    }

    fn heal(&mut self, undo: Undo) {
        let result = match undo {
            Undo::Nothing => return,
            Undo::Heal => netns::run("iptables", &["-w", "-F", "INPUT"])
                .map(|_| "healed the network".to_string()),
            Undo::Resume(ids) => ids
                .iter()
                .try_for_each(|&id| self.db.resume(id))
                .map(|()| format!("resumed {}", names(&ids))),
            Undo::Restart(ids) => self
                .restart(&ids)
                .map(|()| format!("restarted {}", names(&ids))),
            Undo::Rejoin(id) => self.rejoin(id).map(|()| format!("n{id} is a voter again")),
            Undo::FreeDisk(id, path) => {
                self.ballast.retain(|b| *b != path);
                fs::remove_file(&path)
                    .map(|()| format!("freed the disk of n{id}"))
                    .with_context(|| format!("remove {}", path.display()))
            }
        };
        match result {
            Ok(text) => self.log.line(format!("heal: {text}")),
            Err(e) => self.log.line(format!("heal failed: {e:#}")),
        }
    }

    fn restart(&mut self, ids: &[u64]) -> Result<()> {
        for &id in ids {
            if !self.db.running().contains(&id) {
                self.db.spawn(id)?;
            }
        }
        for &id in ids {
            self.db.wait_ready(id, Duration::from_secs(30))?;
        }
        Ok(())
    }

    /// Starts removed node `id` with an empty disk and `--join`, and waits until the
    /// leader counts it as a voter and every awake node lists it among the voters of
    /// every data group (a join goes group by group: the next step must not remove
    /// another node from a group this one has not joined yet).
    fn rejoin(&mut self, id: u64) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let via = loop {
            if let Some(l) = self.db.leader().filter(|&l| l != id) {
                break l;
            }
            if Instant::now() >= deadline {
                bail!("no leader to re-add n{id} through");
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        self.db.rejoin(id, via)?;
        loop {
            let voter = self
                .db
                .leader()
                .and_then(|l| self.db.info(l).ok())
                .is_some_and(|i| i.voters.is_some_and(|v| v.contains(&id)));
            let everywhere = || {
                self.db.awake().into_iter().all(|n| {
                    self.db
                        .info(n)
                        .is_ok_and(|i| i.groups.values().all(|g| g.voters.contains(&id)))
                })
            };
            if voter && everywhere() {
                self.removed.remove(&id);
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("n{id} did not become a voter again within 30 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Moves the leadership of a quarter of the data groups (at least one), chosen at
    /// random, each to a random other awake voter; says which moved where (and which
    /// refused; an error, logged as a step that could not be taken, when all did). A
    /// group's leader is the node that says it leads it, in the highest term.
    fn shuffle_leaders(&mut self) -> Result<String> {
        let awake = self.db.awake();
        let mut leaders: BTreeMap<u64, (u64, u64, Vec<u64>)> = BTreeMap::new();
        for &n in &awake {
            let Ok(info) = self.db.info(n) else {
                continue;
            };
            for (&group, line) in &info.groups {
                let newer = leaders
                    .get(&group)
                    .is_none_or(|&(_, term, _)| line.term > term);
                if line.role == "leader" && line.leader == Some(n) && newer {
                    leaders.insert(group, (n, line.term, line.voters.clone()));
                }
            }
        }
        let groups: Vec<u64> = leaders.keys().copied().collect();
        let count = (groups.len() / 4).max(1);
        let chosen: Vec<u64> = groups
            .choose_multiple(&mut self.rng, count)
            .copied()
            .collect();
        let mut moved = Vec::new();
        for group in chosen {
            let (from, _, voters) = &leaders[&group];
            let others: Vec<u64> = voters
                .iter()
                .copied()
                .filter(|v| v != from && awake.contains(v))
                .collect();
            let Some(&to) = others.choose(&mut self.rng) else {
                continue;
            };
            moved.push(match self.db.transfer_group(*from, to, group) {
                Ok(()) => format!("g{group} n{from}->n{to}"),
                Err(e) => format!("g{group} n{from}->n{to} refused ({e:#})"),
            });
        }
        if moved.is_empty() {
            bail!("no group has a leader and another awake voter");
        }
        if moved.iter().all(|m| m.contains("refused")) {
            bail!("every transfer was refused: {}", moved.join(", "));
        }
        Ok(moved.join(", "))
    }

    /// Starts moves of one or two of the workload's slots, and with even odds of a random
    /// range of up to 64 slots, each to a random group other than the one a node routes
    /// it to now, asked of a random awake node; says which were asked for and how each
    /// answer went (an error, logged as a step that could not be taken, when none was
    /// accepted). A refusal (the slot is moving already, no quorum) is no failure of the
    /// cluster.
    fn move_slots(&mut self) -> Result<String> {
        let awake = self.db.awake();
        let via = *awake
            .choose(&mut self.rng)
            .ok_or_else(|| anyhow!("no awake node"))?;
        let info = self.db.info(via)?;
        let owner = |slot: u16| {
            info.groups
                .iter()
                .find(|(_, line)| line.serves(slot))
                .map(|(&g, _)| g)
        };
        let mut ranges: Vec<(u16, u16)> = self
            .hot_slots
            .choose_multiple(&mut self.rng, 2)
            .take(self.rng.gen_range(1..=2))
            .map(|&s| (s, s))
            .collect();
        if self.rng.gen_bool(0.5) {
            let first = self.rng.gen_range(0..16_384u16);
            let len = self.rng.gen_range(1..=64u16);
            ranges.push((first, first.saturating_add(len - 1).min(16_383)));
        }
        let mut asked = Vec::new();
        for (a, b) in ranges {
            let from = owner(a);
            let others: Vec<u64> = (1..=u64::from(self.groups))
                .filter(|&g| Some(g) != from)
                .collect();
            let Some(&to) = others.choose(&mut self.rng) else {
                bail!("one group only: nothing to move to");
            };
            let args = [
                "CLUSTER",
                "MIGRATESLOTS",
                "SLOTSRANGE",
                &a.to_string(),
                &b.to_string(),
                "GROUP",
                &to.to_string(),
            ];
            let answer = match db::call(via, &args, CHECK_TIMEOUT) {
                Ok(redis::Value::Okay) => "ok".to_string(),
                Ok(other) => format!("refused ({other:?})"),
                Err(e) => format!("refused ({e})"),
            };
            asked.push(format!(
                "{a}-{b} g{}->g{to} via n{via}: {answer}",
                from.unwrap_or(0)
            ));
        }
        if asked.iter().all(|a| a.contains("refused")) {
            bail!("every move was refused: {}", asked.join(", "));
        }
        Ok(asked.join(", "))
    }

    /// `CLUSTER FORGET victim` until it succeeds, for up to 30 s: a removal goes group by
    /// group and one cut short (a deadline, a change of leader) is finished by asking
    /// again, never left half done.
    fn forget(&mut self, victim: u64) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut asked = false;
        loop {
            match self.db.forget(victim) {
                Ok(()) => return Ok(()),
                // The last ask finished the removal, though its answer was lost.
                Err(e) if asked && format!("{e:#}").contains("Unknown node") => return Ok(()),
                Err(e) if Instant::now() < deadline => {
                    asked = true;
                    self.log.line(format!(
                        "CLUSTER FORGET {victim} failed, asking again: {e:#}"
                    ));
                    std::thread::sleep(Duration::from_millis(500));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Heals everything before the final reads: every node awake and running, the network
    /// whole, removed nodes back, one leader agreed on.
    fn heal_all(&mut self) -> Result<()> {
        for id in self.db.paused() {
            self.db.resume(id)?;
        }
        for path in std::mem::take(&mut self.ballast) {
            fs::remove_file(&path).with_context(|| format!("remove {}", path.display()))?;
        }
        netns::run("iptables", &["-w", "-F", "INPUT"])?;
        let down: Vec<u64> = self
            .db
            .ids()
            .into_iter()
            .filter(|id| !self.db.running().contains(id) && !self.removed.contains(id))
            .collect();
        self.restart(&down)?;
        for id in self.removed.clone() {
            self.rejoin(id)?;
        }
        let leader = self.db.wait_leader(Duration::from_secs(30))?;
        self.log
            .line(format!("healed everything; leader n{leader}"));
        Ok(())
    }
}

fn names(ids: &[u64]) -> String {
    ids.iter()
        .map(|i| format!("n{i}"))
        .collect::<Vec<_>>()
        .join(",")
}
