//! Random register histories from a simulated linearizable execution.
//!
//! Processes invoke reads and writes on a few keys; each operation takes effect at a random
//! moment between its invocation and its completion (so the history is linearizable by
//! construction), or, for `info` completions, possibly later or never; `fail`ed operations
//! never take effect. A process whose operation ended `info` is replaced by a new process
//! number, as the history format requires. Operations still open at the end stay pending.

use std::collections::HashMap;

use lincheck::history::{Event, History, Type};
use rand::rngs::StdRng;
use rand::Rng;
use serde_json::{json, Value};

#[derive(Debug, Clone)]
pub struct Shape {
    pub processes: usize,
    pub ops: usize,
    pub keys: usize,
    /// Chance that an operation ends `info` / `fail`.
    pub info: f64,
    pub fail: f64,
    /// Values written: unique (a counter) or drawn from `0..small_values` (repeats).
    pub small_values: Option<i64>,
}

#[derive(Debug, Clone)]
struct Open {
    f: &'static str,
    key: String,
    input: Option<i64>,
    /// What it returned once it took effect (reads: the value; writes: their own value).
    effect: Option<Value>,
    abandoned: bool,
}

/// A linearizable history of `shape` drawn with `rng`.
pub fn linearizable(rng: &mut StdRng, shape: &Shape) -> History {
    let mut events = Vec::new();
    let mut registers: HashMap<String, Option<i64>> = HashMap::new();
    let mut open: HashMap<u64, Open> = HashMap::new();
    let mut idle: Vec<u64> = (0..shape.processes as u64).collect();
    let mut next_process = shape.processes as u64;
    let mut next_value = 1;
    let mut invoked = 0;
    let push = |events: &mut Vec<Event>, process, kind, f: &str, key: &str, value: Value| {
        let index = events.len() as u64;
        events.push(Event {
            index,
            process,
            kind,
            f: f.to_string(),
            key: Some(key.to_string()),
            value,
            time: index,
            error: None,
            node: None,
        });
    };
    loop {
        let live: Vec<u64> = {
            let mut live: Vec<u64> = open
                .iter()
                .filter(|(_, o)| !o.abandoned)
                .map(|(p, _)| *p)
                .collect();
            live.sort_unstable();
            live
        };
        let unapplied: Vec<u64> = {
            let mut u: Vec<u64> = open
                .iter()
                .filter(|(_, o)| o.effect.is_none())
                .map(|(p, _)| *p)
                .collect();
            u.sort_unstable();
            u
        };
        let can_invoke = invoked < shape.ops && !idle.is_empty();
        if !can_invoke && live.is_empty() {
            break;
        }
        match rng.gen_range(0..3) {
            0 if can_invoke => {
                let p = idle.swap_remove(rng.gen_range(0..idle.len()));
                let key = format!("k{}", rng.gen_range(0..shape.keys));
                let (f, input) = if rng.gen_bool(0.5) {
                    let v = match shape.small_values {
                        Some(n) => rng.gen_range(0..n),
                        None => {
                            next_value += 1;
                            next_value
                        }
                    };
                    ("write", Some(v))
                } else {
                    ("read", None)
                };
                push(&mut events, p, Type::Invoke, f, &key, json!(input));
                open.insert(
                    p,
                    Open {
                        f,
                        key,
                        input,
                        effect: None,
                        abandoned: false,
                    },
                );
                invoked += 1;
            }
            1 if !unapplied.is_empty() => {
                // Some operation takes effect now (abandoned ones too: info may land late).
                let p = unapplied[rng.gen_range(0..unapplied.len())];
                let op = open.get_mut(&p).unwrap();
                let register = registers.entry(op.key.clone()).or_default();
                op.effect = Some(match op.f {
                    "write" => {
                        *register = op.input;
                        json!(op.input)
                    }
                    _ => json!(*register),
                });
                if op.abandoned {
                    open.remove(&p);
                }
            }
            _ if !live.is_empty() => {
                let p = live[rng.gen_range(0..live.len())];
                let op = open[&p].clone();
                let roll: f64 = rng.gen();
                if roll < shape.info {
                    push(&mut events, p, Type::Info, op.f, &op.key, json!(op.input));
                    if op.effect.is_none() && rng.gen_bool(0.5) {
                        open.get_mut(&p).unwrap().abandoned = true;
                    } else {
                        open.remove(&p);
                    }
                    idle.push(next_process);
                    next_process += 1;
                } else if op.effect.is_none() && roll < shape.info + shape.fail {
                    push(&mut events, p, Type::Fail, op.f, &op.key, json!(op.input));
                    open.remove(&p);
                    idle.push(p);
                } else if let Some(effect) = op.effect {
                    push(&mut events, p, Type::Ok, op.f, &op.key, effect);
                    open.remove(&p);
                    idle.push(p);
                }
            }
            _ => {}
        }
        // Stop early sometimes with operations still pending.
        if invoked >= shape.ops && rng.gen_bool(0.02) {
            break;
        }
    }
    History { events }
}

/// Changes the value one `ok` read returned, if there is one (the result may or may not
/// still be linearizable).
pub fn mutate(rng: &mut StdRng, history: &mut History) {
    let reads: Vec<usize> = (0..history.events.len())
        .filter(|&i| history.events[i].kind == Type::Ok && history.events[i].f == "read")
        .collect();
    if reads.is_empty() {
        return;
    }
    let i = reads[rng.gen_range(0..reads.len())];
    let old = history.events[i].value.clone();
    loop {
        let new = if rng.gen_bool(0.2) {
            Value::Null
        } else {
            json!(rng.gen_range(0..4))
        };
        if new != old {
            history.events[i].value = new;
            return;
        }
    }
}
