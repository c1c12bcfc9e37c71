//! The register checker against stateright's `LinearizabilityTester` (a plain exhaustive
//! search, independent of ours) on many small random histories: half from linearizable
//! executions, half with one read's value changed. Both must agree on every one.
//!
//! stateright models an operation that never returns as "in flight": it may be linearized
//! or not, as our `info` operations may. So `info` and pending operations are given to it
//! as invocations without a return; `fail`ed operations are left out (they never happened).
//! Values repeat (0..4) so that several writes of one value make the search ambiguous.
//!
//! `LINCHECK_SEED` picks the base seed (history `i` uses `seed + i`); a failure prints the
//! seed and the history.

use std::collections::HashSet;

use lincheck::history::{History, Type};
use lincheck::ops::{pair, Status};
use lincheck::{check, Workload};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use stateright::semantics::register::{Register, RegisterOp, RegisterRet};
use stateright::semantics::{ConsistencyTester, LinearizabilityTester};

use crate::gen::{self, Shape};

const HISTORIES: u64 = 2_000;

fn stateright_says(history: &History) -> bool {
    let ops = pair(history).expect("generated histories are well formed");
    let failed: HashSet<usize> = ops
        .iter()
        .filter(|op| op.status == Status::Fail)
        .map(|op| op.call)
        .collect();
    let mut tester = LinearizabilityTester::<u64, Register<Option<i64>>>::new(Register(None));
    for (pos, event) in history.events.iter().enumerate() {
        let op = || match event.f.as_str() {
            "write" => RegisterOp::Write(event.value.as_i64()),
            _ => RegisterOp::Read,
        };
        match event.kind {
            Type::Invoke if !failed.contains(&pos) => {
                tester.on_invoke(event.process, op()).expect("well formed");
            }
            Type::Ok => {
                let ret = match event.f.as_str() {
                    "write" => RegisterRet::WriteOk,
                    _ => RegisterRet::ReadOk(event.value.as_i64()),
                };
                tester.on_return(event.process, ret).expect("well formed");
            }
            _ => {}
        }
    }
    tester.is_consistent()
}

#[test]
fn the_register_checker_agrees_with_stateright() {
    let seed: u64 = std::env::var("LINCHECK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_260_401);
    let (mut valid, mut invalid) = (0, 0);
    for i in 0..HISTORIES {
        let mut rng = StdRng::seed_from_u64(seed + i);
        let shape = Shape {
            processes: rng.gen_range(2..=4),
            ops: rng.gen_range(1..=8),
            keys: 1,
            info: 0.15,
            fail: 0.1,
            small_values: Some(4),
        };
        let mut history = gen::linearizable(&mut rng, &shape);
        if i % 2 == 1 {
            gen::mutate(&mut rng, &mut history);
        }
        let ours = check(Workload::Register, &history);
        let theirs = stateright_says(&history);
        if ours.valid() != Some(theirs) {
            let mut text = Vec::new();
            history.write_jsonl(&mut text).unwrap();
            panic!(
                "disagreement at seed {} (LINCHECK_SEED={seed}, history {i}): stateright says {theirs}, we say {ours}\n{}",
                seed + i,
                String::from_utf8_lossy(&text)
            );
        }
        if theirs {
            valid += 1;
        } else {
            invalid += 1;
        }
    }
    println!("stateright and lincheck agree on {HISTORIES} histories: {valid} linearizable, {invalid} not");
    // The mix must exercise both answers.
    assert!(
        valid > HISTORIES / 3 && invalid > HISTORIES / 10,
        "{valid} valid, {invalid} invalid"
    );
}
