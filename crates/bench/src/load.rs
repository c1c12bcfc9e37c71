//! The load generator: `clients` connections, each sending batches of `pipeline` requests
//! and waiting for all their replies before the next batch (as redis-benchmark does), until
//! a fixed number of requests has been sent or a time limit has passed.
//!
//! Invariants: connections are opened before the clock starts; the request budget is shared
//! (a connection claims a batch before sending it), so the run sends exactly `requests`
//! requests unless the time limit ends it first; every request is counted once, as ok, miss
//! or error; a connection that breaks stops and its unanswered requests count as errors.

use crate::client::{choose, Conn, Outcome, Req, Target};
use anyhow::Result;
use redraft_bench::report::Workload;
use redraft_bench::stats::{Latencies, Summary};
use redraft_bench::Rng;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What to run.
#[derive(Debug, Clone)]
pub struct Spec {
    pub workload: Workload,
    /// Keys are `key:%012d` below this.
    pub keys: u64,
    /// Stop after this many requests...
    pub requests: u64,
    /// ...or after this long, whichever comes first.
    pub max_time: Duration,
    /// Keys in order from 0 (to load a key space) instead of at random.
    pub sequential: bool,
    pub seed: u64,
}

/// How long one batch may wait for its replies before the connection is given up.
const BATCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The raw outcome of one or more runs of the same workload.
pub struct Tally {
    lat: Latencies,
    ok: u64,
    misses: u64,
    errors: u64,
    seconds: f64,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            lat: Latencies::new(),
            ok: 0,
            misses: 0,
            errors: 0,
            seconds: 0.0,
        }
    }

    /// Adds another run's requests, latencies and time (runs one after the other).
    pub fn merge(&mut self, other: &Tally) {
        self.lat.merge(&other.lat);
        self.ok += other.ok;
        self.misses += other.misses;
        self.errors += other.errors;
        self.seconds += other.seconds;
    }

    pub fn summary(&self) -> Summary {
        self.lat
            .summary(self.ok, self.errors, self.misses, self.seconds)
    }
}

/// Runs `spec` against `target`.
pub async fn run(target: &Target, spec: &Spec) -> Result<Summary> {
    Ok(run_raw(target, spec).await?.summary())
}

/// Runs `spec` against `target`, keeping the histogram so runs can be merged.
pub async fn run_raw(target: &Target, spec: &Spec) -> Result<Tally> {
    let w = spec.workload;
    let mut conns = Vec::with_capacity(w.clients);
    for _ in 0..w.clients {
        conns.push(Conn::open(target).await?);
    }
    let issued = Arc::new(AtomicU64::new(0));
    let value: Arc<[u8]> = redraft_bench::value(w.value_size).into();
    let start = Instant::now();
    let deadline = start + spec.max_time;
    let mut tasks = Vec::with_capacity(w.clients);
    for (i, conn) in conns.into_iter().enumerate() {
        let issued = issued.clone();
        let value = value.clone();
        let spec = spec.clone();
        tasks.push(tokio::spawn(async move {
            worker(conn, &spec, i as u64, &issued, &value, deadline).await
        }));
    }
    let mut total = Tally::new();
    for t in tasks {
        total.merge(&t.await?);
    }
    total.seconds = start.elapsed().as_secs_f64();
    Ok(total)
}

async fn worker(
    mut conn: Conn,
    spec: &Spec,
    index: u64,
    issued: &AtomicU64,
    value: &[u8],
    deadline: Instant,
) -> Tally {
    let w = spec.workload;
    let mut rng = Rng::new(spec.seed ^ (index.wrapping_mul(0x2545_f491_4f6c_dd1d)) ^ 1);
    let mut t = Tally::new();
    let mut reqs = Vec::with_capacity(w.pipeline);
    while Instant::now() < deadline {
        let first = issued.fetch_add(w.pipeline as u64, Ordering::Relaxed);
        if first >= spec.requests {
            break;
        }
        let n = (spec.requests - first).min(w.pipeline as u64);
        reqs.clear();
        for i in 0..n {
            let key = if spec.sequential {
                (first + i) % spec.keys.max(1)
            } else {
                rng.below(spec.keys)
            };
            reqs.push(Req {
                set: choose(w.op, &mut rng),
                key,
            });
        }
        let mut answered = 0u64;
        let result = tokio::time::timeout(
            BATCH_TIMEOUT,
            conn.batch(&reqs, value, |outcome, latency| {
                answered += 1;
                match outcome {
                    Outcome::Ok => {
                        t.ok += 1;
                        t.lat.record_ns(latency.as_nanos() as u64);
                    }
                    Outcome::Miss => {
                        t.misses += 1;
                        t.ok += 1;
                        t.lat.record_ns(latency.as_nanos() as u64);
                    }
                    Outcome::Error => t.errors += 1,
                }
            }),
        )
        .await;
        if !matches!(result, Ok(Ok(()))) {
            t.errors += n - answered;
            break;
        }
    }
    t
}
