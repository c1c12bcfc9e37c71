//! Sequential specifications: what one object does when operations reach it one at a time.
//!
//! A [`Model`] is a pure state machine. [`Model::step`] says whether an operation with a
//! given input may return a given output in a state, and which state follows. The
//! linearizability search ([`crate::wgl`]) memoizes on `(operations linearized, state)`, so
//! states must be small, cheap to clone, and hashable.
//!
//! Unknown outputs (`info` operations): `step` gets `None` for the output and returns the
//! state after the operation *takes effect*, or `None` when it cannot take effect. The
//! search covers "it never took effect" on its own by leaving the operation out, so a model
//! need not return the unchanged state for that case. (A model whose operation could take
//! effect in several different ways with an unknown output would need a set of successor
//! states; none of the models here does.)

use std::fmt::Debug;
use std::hash::Hash;

/// A sequential specification.
pub trait Model {
    type State: Clone + Eq + Hash + Debug;
    type Input: Clone + Debug;
    type Output: Clone + Debug + PartialEq;

    /// The state before any operation.
    fn init(&self) -> Self::State;

    /// The state after `input` returned `output` in `state` (`None` output: unknown), or
    /// `None` when that is impossible.
    fn step(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: Option<&Self::Output>,
    ) -> Option<Self::State>;
}

/// An operation on a register: read it, or write an integer or null (delete).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegisterOp {
    Read,
    Write(Option<i64>),
}

/// A register of an integer or null, initially null: reads return the last value written.
/// Outputs are the value a read returned (`None` for null); a write's output is ignored.
#[derive(Debug, Clone, Copy, Default)]
pub struct Register;

impl Model for Register {
    type State = Option<i64>;
    type Input = RegisterOp;
    type Output = Option<i64>;

    fn init(&self) -> Option<i64> {
        None
    }

    fn step(
        &self,
        state: &Option<i64>,
        input: &RegisterOp,
        output: Option<&Option<i64>>,
    ) -> Option<Option<i64>> {
        match input {
            RegisterOp::Write(value) => Some(*value),
            RegisterOp::Read => match output {
                Some(read) if read != state => None,
                _ => Some(*state),
            },
        }
    }
}

/// An operation on a compare-and-set register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CasOp {
    Read,
    Write(Option<i64>),
    /// Set to `to` if the value is `from`; the output says whether it did.
    Cas {
        from: Option<i64>,
        to: Option<i64>,
    },
}

/// What a [`CasOp`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CasRet {
    Read(Option<i64>),
    Written,
    Cas(bool),
}

/// A register with compare-and-set, initially null.
#[derive(Debug, Clone, Copy, Default)]
pub struct CasRegister;

impl Model for CasRegister {
    type State = Option<i64>;
    type Input = CasOp;
    type Output = CasRet;

    fn init(&self) -> Option<i64> {
        None
    }

    fn step(
        &self,
        state: &Option<i64>,
        input: &CasOp,
        output: Option<&CasRet>,
    ) -> Option<Option<i64>> {
        match (input, output) {
            (CasOp::Read, None) => Some(*state),
            (CasOp::Read, Some(CasRet::Read(v))) => (v == state).then_some(*state),
            (CasOp::Write(v), None | Some(CasRet::Written)) => Some(*v),
            // Unknown outcome: the effect, if any, is the swap (a failed CAS changes nothing,
            // which the search covers by leaving the operation out).
            (CasOp::Cas { from, to }, None | Some(CasRet::Cas(true))) => {
                (from == state).then_some(*to)
            }
            (CasOp::Cas { from, .. }, Some(CasRet::Cas(false))) => {
                (from != state).then_some(*state)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_register_reads_what_was_last_written() {
        let r = Register;
        let s = r
            .step(&r.init(), &RegisterOp::Write(Some(3)), None)
            .unwrap();
        assert_eq!(s, Some(3));
        assert_eq!(r.step(&s, &RegisterOp::Read, Some(&Some(3))), Some(Some(3)));
        assert_eq!(r.step(&s, &RegisterOp::Read, Some(&None)), None);
        assert_eq!(r.step(&s, &RegisterOp::Read, None), Some(Some(3)));
        assert_eq!(r.step(&s, &RegisterOp::Write(None), None), Some(None));
    }

    #[test]
    fn a_cas_register_swaps_only_from_the_expected_value() {
        let r = CasRegister;
        let cas = CasOp::Cas {
            from: Some(1),
            to: Some(2),
        };
        assert_eq!(
            r.step(&Some(1), &cas, Some(&CasRet::Cas(true))),
            Some(Some(2))
        );
        assert_eq!(r.step(&Some(5), &cas, Some(&CasRet::Cas(true))), None);
        assert_eq!(
            r.step(&Some(5), &cas, Some(&CasRet::Cas(false))),
            Some(Some(5))
        );
        assert_eq!(r.step(&Some(1), &cas, Some(&CasRet::Cas(false))), None);
        assert_eq!(r.step(&Some(1), &cas, None), Some(Some(2)));
        assert_eq!(r.step(&None, &CasOp::Read, Some(&CasRet::Written)), None);
    }
}
