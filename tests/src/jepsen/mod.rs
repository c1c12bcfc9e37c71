//! The Jepsen-style fault-injection harness (the `jepsen` binary).
//!
//! Concurrent clients record a history of operations against a real redraft cluster while
//! a nemesis injects faults; `lincheck` then says whether the history is allowed.
//!
//! - [`netns`]: the run's network namespace (only `lo`), and SIGINT/SIGTERM handling.
//! - [`suite`]: the outer process: which runs (one, the matrix, the short suite), each a
//!   child re-executed inside the namespace, judged and reported one line per run.
//! - [`run`]: the inner process: nodes, workers and nemesis for one run.
//! - [`db`]: the redraft processes (127.0.0.11, .12, ...), kill/pause/restart/rejoin.
//! - [`nemesis`]: fault kinds, the seeded schedule, partition shapes and `iptables` rules.
//! - [`workload`]: operations per workload, how they run, ok/fail/info.
//! - [`record`]: the history recorder (JSON lines, as it happens).
//! - [`report`] and [`plot`]: the verdict files and the SVG picture of a run.
//!
//! A run directory holds `run.json` (the spec), `history.jsonl`, `nemesis.log`,
//! `faults.json`, `harness.log`, `nodes/nN.log`, `verdict.json`, `verdict.txt` and
//! `plot.svg`.

pub mod db;
pub mod nemesis;
pub mod netns;
pub mod plot;
pub mod record;
pub mod report;
pub mod run;
pub mod suite;
pub mod workload;
