//! redraft's integration tests live in one test binary, `tests/it/main.rs`:
//!
//! - `harness`: a real `redis-server` child per test (Debian's 7.0; `apt-get install
//!   redis-server redis-tools`, which the Makefile does) and redraft run in-process.
//! - `diff`: random command sequences, and the hand-written ones in `tests/it/sequences/`,
//!   sent to both; every reply must match, error texts included.
//! - `protocol`: raw bytes (pipelining, split frames, inline commands, malformed frames,
//!   RESP3), compared with `redis-server` where the bytes mean the same to both.
//! - `clients`: the `redis` crate and `redis-cli` against redraft.
//!
//! Run them with `cargo test -p redraft-tests`; `REDRAFT_TEST_TARGET=redis` points every
//! "redraft" side at a second `redis-server`, which must pass and so proves the tests.
//! The differential test's knobs (`REDRAFT_DIFF_SEED`, `REDRAFT_DIFF_SEQUENCES`, ...) are
//! described at the top of `tests/it/diff.rs`.
//!
//! This library also holds the Jepsen-style fault-injection harness, [`jepsen`], run by
//! the `jepsen` binary (`make jepsen`, `make jepsen-short`; see the README).

pub mod info;
pub mod jepsen;
