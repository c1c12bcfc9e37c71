//! Histories of concurrent operations against a store, and the checkers that judge them.
//!
//! The Jepsen-style harness (`tests/`, the `jepsen` binary) records what its clients did as a
//! [`history::History`]; this crate says whether that history is allowed. It knows nothing
//! of redraft, Redis or the network: a history is data, a checker is a pure function of it.

pub mod history;
