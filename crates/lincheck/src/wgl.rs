//! Wing–Gong–Lowe linearizability search with memoization, as Knossos and porcupine do it.
//!
//! Input: the operations on one object, sorted by invocation, each with a call position, a
//! return position (`None`: never returned, an `info` operation) and an output (`None`:
//! unknown). The question: is there a total order of the operations that respects real
//! time (an operation that returned before another was invoked comes first) and that the
//! sequential [`Model`] accepts? Operations that never returned may also be left out
//! entirely: they may never have taken effect.
//!
//! The search (G. Lowe, "Testing for linearizability", 2017): put every call and return in
//! one list ordered by time. Walk it from the front; at a call, try to linearize that
//! operation now (the model accepts it from the current state): if the pair
//! `(set of linearized operations, state)` was never seen, push it, lift the operation's
//! call and return out of the list and restart from the front. At a return, the operation
//! it closes was not linearized in time: pop the last choice, put its entries back, and go
//! on after its call. Success when every operation that returned is linearized (the ones
//! left never returned and are dropped); failure when a return is met with nothing to pop.
//! The memo makes the search visit each `(set, state)` pair once.
//!
//! Quiescent points: where every operation invoked so far has returned, and before the next
//! invocation, nothing can be reordered across the point. The operations are split there
//! into segments searched one after another. A segment is searched exhaustively from every
//! state the previous segments can end in, collecting the states it can end in (the last
//! one stops at the first success). Each segment has its own small bitset and memo, which
//! keeps a long history with little concurrency linear in its length. An operation that
//! never returns spans every later point, so callers should bound such operations first
//! (see [`crate::workloads::register`]).
//!
//! A [`Budget`] bounds the states visited and the time taken: the search gives up with
//! [`Outcome::GaveUp`] rather than hang.
//!
//! [`shrink`] turns a failing history into a small one that still fails, and [`explain`]
//! finds the longest partial linearization of it and the operation that could not follow.

use std::collections::HashSet;
use std::hash::BuildHasher;
use std::time::{Duration, Instant};

use crate::model::Model;

/// One operation to linearize.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation<I, O> {
    pub input: I,
    /// `None`: unknown (the operation may have returned anything).
    pub output: Option<O>,
    /// When it was invoked (any totally ordered clock; here: a position in the history).
    pub call: usize,
    /// When it returned, after `call`; `None`: never (it may also be left out).
    pub ret: Option<usize>,
}

/// Limits on one search (shared by every key of a check).
#[derive(Debug, Clone)]
pub struct Budget {
    /// The most `(linearized set, state)` pairs to visit in all.
    pub max_states: u64,
    /// When to give up.
    pub deadline: Option<Instant>,
    /// Pairs visited so far.
    pub states: u64,
}

impl Budget {
    /// The default budget: ten million states, one minute.
    pub fn new() -> Budget {
        Budget::with_limits(10_000_000, Some(Duration::from_secs(60)))
    }

    pub fn with_limits(max_states: u64, time: Option<Duration>) -> Budget {
        Budget {
            max_states,
            deadline: time.map(|t| Instant::now() + t),
            states: 0,
        }
    }

    fn tick(&mut self) -> Result<(), GaveUp> {
        self.states += 1;
        if self.states > self.max_states {
            return Err(GaveUp(format!(
                "gave up after {} states (the limit)",
                self.max_states
            )));
        }
        if self.states & 4095 == 0 {
            if let Some(deadline) = self.deadline {
                if Instant::now() >= deadline {
                    return Err(GaveUp(format!(
                        "gave up after {} states (out of time)",
                        self.states
                    )));
                }
            }
        }
        Ok(())
    }
}

impl Default for Budget {
    fn default() -> Self {
        Budget::new()
    }
}

#[derive(Debug)]
struct GaveUp(String);

/// Where the search found no linearization.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure<S> {
    /// Operations `0..prefix_end` (sorted by call) have no linearization; this is the end of
    /// the segment where the search failed.
    pub prefix_end: usize,
    /// The index of the first operation of every segment up to the failing one.
    pub segments: Vec<usize>,
    /// The longest partial linearization found in the failing segment (operation indices in
    /// linearization order), the state it left, and the operation whose return came before
    /// it could be linearized after that.
    pub longest: Vec<usize>,
    pub state: S,
    pub stuck: Option<usize>,
}

/// What a search found.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome<S> {
    Linearizable,
    NotLinearizable(Failure<S>),
    /// The budget ran out; the reason says how far it got.
    GaveUp(String),
}

type Cache<S> = HashSet<(Box<[u64]>, S), ahash::RandomState>;

/// Checks one object's operations (sorted by `call`), splitting at quiescent points.
pub fn check<M: Model>(
    model: &M,
    ops: &[Operation<M::Input, M::Output>],
    budget: &mut Budget,
) -> Outcome<M::State> {
    search(model, ops, budget, true)
}

/// Like [`check`] but as one segment, so that a failure's `longest` linearization starts
/// at the initial state: for explaining small histories.
pub fn explain<M: Model>(
    model: &M,
    ops: &[Operation<M::Input, M::Output>],
    budget: &mut Budget,
) -> Outcome<M::State> {
    search(model, ops, budget, false)
}

fn search<M: Model>(
    model: &M,
    ops: &[Operation<M::Input, M::Output>],
    budget: &mut Budget,
    split: bool,
) -> Outcome<M::State> {
    debug_assert!(ops.windows(2).all(|w| w[0].call <= w[1].call));
    let bounds = if split {
        quiescent_points(ops)
    } else {
        vec![0]
    };
    let mut states = vec![model.init()];
    for (k, &start) in bounds.iter().enumerate() {
        let end = bounds.get(k + 1).copied().unwrap_or(ops.len());
        let last = end == ops.len();
        let segment = match search_segment(model, &ops[start..end], &states, !last, budget) {
            Ok(segment) => segment,
            Err(GaveUp(reason)) => return Outcome::GaveUp(reason),
        };
        if segment.ends.is_empty() {
            return Outcome::NotLinearizable(Failure {
                prefix_end: end,
                segments: bounds[..=k].to_vec(),
                longest: segment.longest.iter().map(|i| start + i).collect(),
                state: segment.longest_state.unwrap_or_else(|| model.init()),
                stuck: segment.stuck.map(|i| start + i),
            });
        }
        states = segment.ends;
    }
    Outcome::Linearizable
}

/// The indices where a new segment starts: 0, and every operation invoked after all
/// operations before it returned.
fn quiescent_points<I, O>(ops: &[Operation<I, O>]) -> Vec<usize> {
    let mut bounds = vec![0];
    let mut horizon = Some(0); // the latest return so far; None = never
    for (i, op) in ops.iter().enumerate() {
        if i > 0 && horizon.is_some_and(|h| h < op.call) {
            bounds.push(i);
        }
        horizon = match (horizon, op.ret) {
            (Some(h), Some(r)) => Some(h.max(r)),
            _ => None,
        };
    }
    bounds
}

struct SegmentResult<S> {
    /// Distinct states the segment can end in (one, when not exhaustive).
    ends: Vec<S>,
    longest: Vec<usize>,
    longest_state: Option<S>,
    stuck: Option<usize>,
}

const HEAD: usize = usize::MAX - 1;
const TAIL: usize = usize::MAX;

/// The entries of a segment: a doubly linked list of calls and returns in time order from
/// which linearized operations are lifted (dancing links).
struct Entries {
    next: Vec<usize>,
    prev: Vec<usize>,
    head_next: usize,
    tail_prev: usize,
    /// Node → (operation, is it the call).
    node: Vec<(usize, bool)>,
    call_node: Vec<usize>,
    ret_node: Vec<usize>,
}

impl Entries {
    fn new<I, O>(ops: &[Operation<I, O>]) -> Entries {
        let mut order: Vec<(usize, usize, bool)> = Vec::with_capacity(ops.len() * 2);
        for (i, op) in ops.iter().enumerate() {
            order.push((op.call, i, true));
            order.push((op.ret.unwrap_or(usize::MAX), i, false));
        }
        // Calls sort before returns at the same time (only possible at "never").
        order.sort_by_key(|&(time, op, is_call)| (time, !is_call, op));
        let n = order.len();
        let mut entries = Entries {
            next: (1..=n).map(|k| if k == n { TAIL } else { k }).collect(),
            prev: (0..n).map(|k| if k == 0 { HEAD } else { k - 1 }).collect(),
            head_next: if n == 0 { TAIL } else { 0 },
            tail_prev: if n == 0 { HEAD } else { n - 1 },
            node: Vec::with_capacity(n),
            call_node: vec![0; ops.len()],
            ret_node: vec![0; ops.len()],
        };
        for (k, &(_, op, is_call)) in order.iter().enumerate() {
            entries.node.push((op, is_call));
            if is_call {
                entries.call_node[op] = k;
            } else {
                entries.ret_node[op] = k;
            }
        }
        entries
    }

    fn first(&self) -> usize {
        self.head_next
    }

    fn set_next(&mut self, at: usize, to: usize) {
        if at == HEAD {
            self.head_next = to;
        } else {
            self.next[at] = to;
        }
    }

    fn set_prev(&mut self, at: usize, to: usize) {
        if at == TAIL {
            self.tail_prev = to;
        } else {
            self.prev[at] = to;
        }
    }

    fn unlink(&mut self, k: usize) {
        let (p, n) = (self.prev[k], self.next[k]);
        self.set_next(p, n);
        self.set_prev(n, p);
    }

    /// Puts back a node unlinked last (its own links still point at its old neighbours).
    fn relink(&mut self, k: usize) {
        let (p, n) = (self.prev[k], self.next[k]);
        self.set_next(p, k);
        self.set_prev(n, k);
    }

    fn lift(&mut self, op: usize) {
        self.unlink(self.call_node[op]);
        self.unlink(self.ret_node[op]);
    }

    fn unlift(&mut self, op: usize) {
        self.relink(self.ret_node[op]);
        self.relink(self.call_node[op]);
    }
}

fn search_segment<M: Model>(
    model: &M,
    ops: &[Operation<M::Input, M::Output>],
    starts: &[M::State],
    exhaustive: bool,
    budget: &mut Budget,
) -> Result<SegmentResult<M::State>, GaveUp> {
    let required = ops.iter().filter(|op| op.ret.is_some()).count();
    let words = ops.len().div_ceil(64);
    let mut cache: Cache<M::State> = HashSet::with_hasher(ahash::RandomState::new());
    let mut ends: HashSet<M::State, ahash::RandomState> =
        HashSet::with_hasher(ahash::RandomState::new());
    let mut result = SegmentResult {
        ends: Vec::new(),
        longest: Vec::new(),
        longest_state: None,
        stuck: None,
    };
    let mut entries = Entries::new(ops);
    for start in starts {
        let mut linearized = vec![0u64; words];
        let mut stack: Vec<(usize, M::State)> = Vec::new();
        let mut state = start.clone();
        let mut remaining = required;
        let mut entry = entries.first();
        loop {
            // All linearized: record this ending and (exhaustive) look for others. Or only
            // operations that never return are left, none linearizable here: unreachable
            // while `remaining > 0` (a return would come first), but backtracking is the
            // safe answer. Either way: undo the last choice.
            if remaining == 0 || entry == TAIL {
                if remaining == 0 {
                    ends.insert(state.clone());
                    if !exhaustive {
                        break;
                    }
                }
                match stack.pop() {
                    None => break,
                    Some((op, before)) => {
                        entry = undo(&mut entries, &mut linearized, op, ops, &mut remaining);
                        state = before;
                    }
                }
                continue;
            }
            let (op, is_call) = entries.node[entry];
            if is_call {
                let operation = &ops[op];
                if let Some(next) = model.step(&state, &operation.input, operation.output.as_ref())
                {
                    linearized[op / 64] |= 1 << (op % 64);
                    if cache.insert((linearized.clone().into_boxed_slice(), next.clone())) {
                        budget.tick()?;
                        stack.push((op, std::mem::replace(&mut state, next)));
                        entries.lift(op);
                        if operation.ret.is_some() {
                            remaining -= 1;
                        }
                        entry = entries.first();
                        continue;
                    }
                    linearized[op / 64] &= !(1 << (op % 64));
                }
                entry = entries.next[entry];
            } else {
                // `op` returned without being linearized: this branch is dead.
                if stack.len() > result.longest.len() || result.longest_state.is_none() {
                    result.longest = stack.iter().map(|(o, _)| *o).collect();
                    result.longest_state = Some(state.clone());
                    result.stuck = Some(op);
                }
                match stack.pop() {
                    None => break,
                    Some((last, before)) => {
                        entry = undo(&mut entries, &mut linearized, last, ops, &mut remaining);
                        state = before;
                    }
                }
            }
        }
        // Leave the list whole for the next start state.
        while let Some((op, _)) = stack.pop() {
            undo(&mut entries, &mut linearized, op, ops, &mut remaining);
        }
        if !exhaustive && !ends.is_empty() {
            break;
        }
    }
    result.ends = ends.into_iter().collect();
    Ok(result)
}

/// Takes back the linearization of `op`; returns the entry to continue from (after its call).
fn undo<I, O>(
    entries: &mut Entries,
    linearized: &mut [u64],
    op: usize,
    ops: &[Operation<I, O>],
    remaining: &mut usize,
) -> usize {
    linearized[op / 64] &= !(1 << (op % 64));
    entries.unlift(op);
    if ops[op].ret.is_some() {
        *remaining += 1;
    }
    entries.next[entries.call_node[op]]
}

/// Shrinks a failing history: returns a subset of `ops` (indices, sorted) that still has
/// no linearization, as small as the search finds before `deadline`.
///
/// `needs(i)` lists the operations that `i` must not lose (for a register: the writes of
/// the value a read returned), so that shrinking never turns one anomaly into another (a
/// stale read into a read of a value never written): removing an operation removes those
/// that need it too. Steps: keep the failing prefix; drop whole segments from its front
/// while it still fails (keeping what the rest needs); then remove chunks of halving size
/// (ddmin-like) while it still fails. Each candidate is checked with a small budget; a
/// candidate whose check gives up counts as not failing.
pub fn shrink<M: Model>(
    model: &M,
    ops: &[Operation<M::Input, M::Output>],
    failure: &Failure<M::State>,
    needs: &dyn Fn(usize) -> Vec<usize>,
    deadline: Instant,
) -> Vec<usize> {
    let fails = |subset: &[usize]| -> bool {
        let sub: Vec<_> = subset.iter().map(|&i| ops[i].clone()).collect();
        let mut budget = Budget {
            max_states: 200_000,
            deadline: Some(deadline),
            states: 0,
        };
        matches!(check(model, &sub, &mut budget), Outcome::NotLinearizable(_))
    };
    let with_needs = |mut subset: Vec<usize>| -> Vec<usize> {
        let mut members: HashSet<usize> = subset.iter().copied().collect();
        let mut k = 0;
        while k < subset.len() {
            for need in needs(subset[k]) {
                if members.insert(need) {
                    subset.push(need);
                }
            }
            k += 1;
        }
        subset.sort_unstable();
        subset
    };
    let mut current: Vec<usize> = (0..failure.prefix_end).collect();

    // Drop leading segments: try starting at the failing segment, then 1, 2, 4, ... earlier.
    let segments = &failure.segments;
    let mut back = 0;
    while back < segments.len() && Instant::now() < deadline {
        let from = segments[segments.len() - 1 - back];
        if from == 0 {
            break;
        }
        let candidate = with_needs((from..failure.prefix_end).collect());
        if candidate.len() < current.len() && fails(&candidate) {
            current = candidate;
            break;
        }
        back = if back == 0 { 1 } else { back * 2 };
    }

    // Remove chunks of halving size.
    let mut chunk = current.len().div_ceil(2).max(1);
    loop {
        let mut at = 0;
        while at < current.len() && Instant::now() < deadline {
            let end = (at + chunk).min(current.len());
            let removed: HashSet<usize> = current[at..end].iter().copied().collect();
            let candidate = remove_closed(&current, removed, needs);
            if candidate.len() < current.len() && fails(&candidate) {
                current = candidate;
            } else {
                at = end;
            }
        }
        if chunk == 1 || Instant::now() >= deadline {
            break;
        }
        chunk = chunk.div_ceil(2);
    }
    current
}

/// `current` without `removed` and without every operation that needs a removed one.
fn remove_closed<S: BuildHasher>(
    current: &[usize],
    mut removed: HashSet<usize, S>,
    needs: &dyn Fn(usize) -> Vec<usize>,
) -> Vec<usize> {
    loop {
        let before = removed.len();
        for &op in current {
            if !removed.contains(&op) && needs(op).iter().any(|n| removed.contains(n)) {
                removed.insert(op);
            }
        }
        if removed.len() == before {
            break;
        }
    }
    current
        .iter()
        .copied()
        .filter(|op| !removed.contains(op))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Register, RegisterOp};

    type Op = Operation<RegisterOp, Option<i64>>;

    fn w(v: i64, call: usize, ret: Option<usize>) -> Op {
        Operation {
            input: RegisterOp::Write(Some(v)),
            output: None,
            call,
            ret,
        }
    }

    fn r(v: Option<i64>, call: usize, ret: usize) -> Op {
        Operation {
            input: RegisterOp::Read,
            output: Some(v),
            call,
            ret: Some(ret),
        }
    }

    fn run(ops: &[Op]) -> Outcome<Option<i64>> {
        check(&Register, ops, &mut Budget::new())
    }

    #[test]
    fn sequential_and_concurrent_histories() {
        assert_eq!(run(&[]), Outcome::Linearizable);
        assert_eq!(
            run(&[w(1, 0, Some(1)), r(Some(1), 2, 3)]),
            Outcome::Linearizable
        );
        // The read overlaps the write of 2 and may come before it.
        assert_eq!(
            run(&[w(1, 0, Some(1)), w(2, 2, Some(5)), r(Some(1), 3, 4)]),
            Outcome::Linearizable
        );
        // Read after the write of 2 returned: stale.
        let Outcome::NotLinearizable(failure) =
            run(&[w(1, 0, Some(1)), w(2, 2, Some(3)), r(Some(1), 4, 5)])
        else {
            panic!("a stale read passed");
        };
        assert_eq!(failure.prefix_end, 3);
        assert_eq!(failure.segments, vec![0, 1, 2]);
        assert_eq!(failure.stuck, Some(2));
    }

    #[test]
    fn an_operation_that_never_returned_may_take_effect_or_not() {
        // Took effect, late: a read long after sees it.
        assert_eq!(
            run(&[
                w(1, 0, None),
                r(None, 1, 2),
                r(Some(1), 3, 4),
                r(Some(1), 5, 6)
            ]),
            Outcome::Linearizable
        );
        // Never took effect.
        assert_eq!(run(&[w(1, 0, None), r(None, 1, 2)]), Outcome::Linearizable);
        // Once seen, it cannot be unseen.
        assert!(matches!(
            run(&[w(1, 0, None), r(Some(1), 1, 2), r(None, 3, 4)]),
            Outcome::NotLinearizable(_)
        ));
    }

    #[test]
    fn segments_carry_every_possible_state() {
        // Two concurrent writes, then a quiescent point: either may have won.
        let first = [w(1, 0, Some(2)), w(2, 1, Some(3))];
        for v in [1, 2] {
            let mut ops = first.to_vec();
            ops.push(r(Some(v), 4, 5));
            assert_eq!(run(&ops), Outcome::Linearizable, "read {v}");
        }
        let mut ops = first.to_vec();
        ops.extend([r(Some(1), 4, 5), r(Some(2), 6, 7)]);
        assert!(matches!(run(&ops), Outcome::NotLinearizable(_)));
    }

    #[test]
    fn another_model_searches_the_same_way() {
        use crate::model::{CasOp, CasRegister, CasRet};
        let op = |input, output, call, ret| Operation {
            input,
            output,
            call,
            ret,
        };
        let cas = |from, to| CasOp::Cas {
            from: Some(from),
            to: Some(to),
        };
        // Two concurrent CAS 0→1 after a write of 0: only one may succeed.
        let mut ops = vec![
            op(CasOp::Write(Some(0)), Some(CasRet::Written), 0, Some(1)),
            op(cas(0, 1), Some(CasRet::Cas(true)), 2, Some(5)),
            op(cas(0, 1), Some(CasRet::Cas(false)), 3, Some(6)),
            op(CasOp::Read, Some(CasRet::Read(Some(1))), 7, Some(8)),
        ];
        let mut budget = Budget::new();
        assert_eq!(
            check(&CasRegister, &ops, &mut budget),
            Outcome::Linearizable
        );
        ops[2].output = Some(CasRet::Cas(true));
        assert!(matches!(
            check(&CasRegister, &ops, &mut budget),
            Outcome::NotLinearizable(_)
        ));
        // Unknown outcome: it may have swapped, or not.
        ops[2].output = None;
        ops[2].ret = None;
        assert_eq!(
            check(&CasRegister, &ops, &mut budget),
            Outcome::Linearizable
        );
    }

    #[test]
    fn the_budget_gives_up_instead_of_hanging() {
        let ops: Vec<Op> = (0..20)
            .map(|i| w(i, i as usize, Some(100 + i as usize)))
            .collect();
        let mut budget = Budget::with_limits(5, None);
        let Outcome::GaveUp(reason) = check(&Register, &ops, &mut budget) else {
            panic!("did not give up");
        };
        assert_eq!(reason, "gave up after 5 states (the limit)");
    }

    #[test]
    fn shrinking_keeps_what_the_failure_needs() {
        // Noise, then a stale read: w1 w2 r→1, with unrelated reads around.
        let mut ops = vec![w(7, 0, Some(1)), r(Some(7), 2, 3)];
        ops.extend([w(1, 4, Some(5)), r(Some(1), 6, 7), w(2, 8, Some(9))]);
        ops.extend([r(Some(2), 10, 11), r(Some(1), 12, 13), r(Some(1), 14, 15)]);
        let Outcome::NotLinearizable(failure) = run(&ops) else {
            panic!("passed");
        };
        let needs = |i: usize| -> Vec<usize> {
            match ops[i].output {
                Some(v) => (0..ops.len())
                    .filter(|&j| ops[j].input == RegisterOp::Write(v))
                    .collect(),
                None => Vec::new(),
            }
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        let small = shrink(&Register, &ops, &failure, &needs, deadline);
        assert_eq!(small, vec![2, 4, 6]);
        let sub: Vec<_> = small.iter().map(|&i| ops[i].clone()).collect();
        let Outcome::NotLinearizable(why) = explain(&Register, &sub, &mut Budget::new()) else {
            panic!("shrunk history passes");
        };
        assert_eq!(
            (why.longest, why.state, why.stuck),
            (vec![0, 1], Some(2), Some(2))
        );
    }
}
