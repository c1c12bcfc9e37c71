//! How fast the register checker is on long linearizable histories with concurrency and
//! `info` operations. The debug-build test checks a few thousand operations; the big one
//! ones (20,000 operations, 8 processes, on 5 keys and on 1) are for release builds:
//! `cargo test --release -p lincheck --test it -- --ignored --nocapture perf`.

use std::time::{Duration, Instant};

use lincheck::history::Type;
use lincheck::{check, Verdict, Workload};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::json;

use crate::gen::{self, Shape};

fn run(ops: usize, keys: usize, limit: Duration) {
    let mut rng = StdRng::seed_from_u64(7);
    let shape = Shape {
        processes: 8,
        ops,
        keys,
        info: 0.01,
        fail: 0.01,
        small_values: None,
    };
    let history = gen::linearizable(&mut rng, &shape);
    let started = Instant::now();
    let report = check(Workload::Register, &history);
    let took = started.elapsed();
    println!("{ops} ops on {keys} keys checked in {took:?}: {report}");
    assert_eq!(report.valid(), Some(true), "{report}");
    assert!(report.counts.info > 0, "the history has info operations");
    assert!(took < limit, "took {took:?}");
}

#[test]
fn perf_a_few_thousand_operations_check_fast_in_debug() {
    run(3_000, 5, Duration::from_secs(2));
}

#[test]
#[ignore = "for release builds"]
fn perf_twenty_thousand_operations_check_in_seconds() {
    run(20_000, 5, Duration::from_secs(5));
}

#[test]
#[ignore = "for release builds"]
fn perf_eight_processes_on_one_key_check_in_seconds() {
    run(20_000, 1, Duration::from_secs(5));
}

/// One read in the middle of a long history returns a value never written (or, `stale`,
/// the first value written to its key): found, and shrunk to that read alone (or to it,
/// the old write and a newer one), quickly.
fn run_invalid(ops: usize, stale: bool, limit: Duration) {
    let mut rng = StdRng::seed_from_u64(11);
    let shape = Shape {
        processes: 8,
        ops,
        keys: 5,
        info: 0.01,
        fail: 0.01,
        small_values: None,
    };
    let mut history = gen::linearizable(&mut rng, &shape);
    let middle = history.events.len() / 2;
    let read = (middle..history.events.len())
        .find(|&i| history.events[i].kind == Type::Ok && history.events[i].f == "read")
        .expect("a read");
    let bad = if stale {
        let key = history.events[read].key.clone();
        let first = history
            .events
            .iter()
            .find(|e| e.key == key && e.kind == Type::Ok && e.f == "write");
        first.expect("a write").value.clone()
    } else {
        json!(-1)
    };
    history.events[read].value = bad;
    let started = Instant::now();
    let report = check(Workload::Register, &history);
    let took = started.elapsed();
    println!("{ops} ops with a bad read checked in {took:?}: {report}");
    let Verdict::Invalid { anomalies } = &report.verdict else {
        panic!("not found: {report}");
    };
    assert_eq!(anomalies.len(), 1, "{report}");
    let ops = &anomalies[0].ops;
    assert_eq!(ops.len(), if stale { 3 } else { 1 }, "{report}");
    assert_eq!(ops[ops.len() - 1].complete_index, Some(read as u64));
    assert!(took < limit, "took {took:?}");
}

#[test]
fn perf_a_bad_read_in_a_few_thousand_operations_is_found_and_shrunk() {
    run_invalid(3_000, false, Duration::from_secs(3));
    run_invalid(3_000, true, Duration::from_secs(3));
}

#[test]
#[ignore = "for release builds"]
fn perf_a_bad_read_in_twenty_thousand_operations_is_found_and_shrunk() {
    run_invalid(20_000, false, Duration::from_secs(5));
    run_invalid(20_000, true, Duration::from_secs(5));
}
