//! `jepsen`: redraft's Jepsen-style fault-injection suite.
//!
//! - `jepsen run [--nemesis all|mixed|none|partition,kill,...] [--workload all|register|...]
//!   [--seconds 60] [--unsafe local-reads|local-clock]`: the matrix (or one run), one line
//!   per run; exits non-zero when any run's history is invalid or cannot be judged.
//! - `jepsen short`: the suite `make test` runs: every nemesis, then the UNSAFE
//!   self-tests, each of which must be caught (stale reads by the checker, a replica's own
//!   clock by the replica checks).
//! - `jepsen check DIR`: judges a recorded run again (no root needed).
//!
//! `run` and `short` need root (network namespaces, iptables). Without root they fail
//! loudly, unless `REDRAFT_JEPSEN_SKIP=1` says to skip them (for developers without root;
//! the skip is printed just as loudly).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use redraft_tests::jepsen::{netns, report, run, suite};

#[derive(Parser)]
#[command(
    name = "jepsen",
    about = "redraft's Jepsen-style fault-injection suite"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs the matrix (each nemesis and mixed, x each workload) or one combination.
    Run {
        /// `all` (each nemesis alone, then mixed), `mixed`, `none`, or a comma-separated
        /// list of partition, kill, pause, shuffle-leaders, membership, disk-full applied
        /// together.
        #[arg(long, default_value = "all")]
        nemesis: String,
        /// `all`, register, counter, set or list-append.
        #[arg(long, default_value = "all")]
        workload: String,
        /// Start the nodes with `--unsafe MODE` (the self-tests: `local-reads`, `local-clock`).
        #[arg(long = "unsafe")]
        unsafe_mode: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// The short suite of `make test`: every nemesis once, then the UNSAFE self-test.
    Short {
        #[command(flatten)]
        common: Common,
    },
    /// Judges a recorded run directory again.
    Check { dir: PathBuf },
    /// One run inside the namespace (started by `run` and `short`).
    #[command(hide = true)]
    Inner {
        #[arg(long)]
        spec: PathBuf,
    },
}

#[derive(Args)]
struct Common {
    /// Seconds per run [default: 60 for run, 20 for short]
    #[arg(long)]
    seconds: Option<u64>,
    /// Nodes per cluster (3 or 5).
    #[arg(long, default_value_t = 3)]
    nodes: u64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 8)]
    workers: usize,
    /// Base seed (run i uses seed + i); random and printed when absent.
    #[arg(long)]
    seed: Option<u64>,
    /// Raft heartbeat of the nodes, ms.
    #[arg(long, default_value_t = 50)]
    heartbeat_ms: u64,
    /// Applied entries between snapshots (small, so catch-up by snapshot happens).
    #[arg(long, default_value_t = 1000)]
    snapshot_logs: u64,
    /// Raft groups the nodes spread the slots over (the binary's default: keys of every
    /// workload land in several groups, each with its own leader).
    #[arg(long, default_value_t = 16)]
    raft_groups: u32,
    /// Client timeout, ms: past it an operation's outcome is unknown.
    #[arg(long, default_value_t = 4000)]
    op_timeout_ms: u64,
    /// Mean pause of a client between operations, ms.
    #[arg(long, default_value_t = 5)]
    think_ms: u64,
    /// Where run directories go [default: target/jepsen beside this binary].
    #[arg(long)]
    out: Option<PathBuf>,
}

impl Common {
    fn settings(&self, default_seconds: u64) -> Result<suite::Settings> {
        if !(3..=9).contains(&self.nodes) {
            bail!("--nodes must be between 3 and 9, got {}", self.nodes);
        }
        if self.workers == 0 || self.workers > 64 {
            bail!("--workers must be between 1 and 64, got {}", self.workers);
        }
        let seconds = self.seconds.unwrap_or(default_seconds);
        if !(5..=3600).contains(&seconds) {
            bail!("--seconds must be between 5 and 3600, got {seconds}");
        }
        let exe = std::env::current_exe().context("find this binary")?;
        let out = match &self.out {
            Some(o) => o.clone(),
            None => exe
                .parent()
                .and_then(|d| d.parent())
                .map_or_else(|| PathBuf::from("target"), PathBuf::from)
                .join("jepsen"),
        };
        Ok(suite::Settings {
            seconds,
            nodes: self.nodes,
            workers: self.workers,
            seed: self.seed.unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64 % 1_000_000_000)
            }),
            heartbeat_ms: self.heartbeat_ms,
            snapshot_logs: self.snapshot_logs,
            raft_groups: self.raft_groups,
            op_timeout_ms: self.op_timeout_ms,
            think_ms: self.think_ms,
            out,
            bin: redraft_bin()?,
        })
    }
}

/// `$REDRAFT_BIN`, else `redraft` beside this binary (both land in `target/debug/`).
fn redraft_bin() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("REDRAFT_BIN") {
        let p = PathBuf::from(p);
        if !p.is_file() {
            bail!("REDRAFT_BIN={} is not a file", p.display());
        }
        return Ok(p.canonicalize()?);
    }
    let exe = std::env::current_exe()?;
    let p = exe.with_file_name("redraft");
    if !p.is_file() {
        bail!(
            "{} is missing: build it with `cargo build -p redraft` or set REDRAFT_BIN",
            p.display()
        );
    }
    Ok(p)
}

/// Fails loudly without root, unless the developer opted out.
fn need_root() -> Result<bool> {
    if netns::is_root() {
        return Ok(true);
    }
    let banner = "#".repeat(78);
    if std::env::var("REDRAFT_JEPSEN_SKIP").is_ok_and(|v| v == "1") {
        eprintln!(
            "{banner}\n# JEPSEN SUITE SKIPPED: not root and REDRAFT_JEPSEN_SKIP=1.\n\
             # Nothing was tested for faults. CI runs it as root.\n{banner}"
        );
        return Ok(false);
    }
    eprintln!(
        "{banner}\n# THE JEPSEN SUITE NEEDS ROOT (network namespaces and iptables), and this\n\
         # process is not root: NOTHING WAS TESTED. Run it as root (CI does), or set\n\
         # REDRAFT_JEPSEN_SKIP=1 to skip it on purpose.\n{banner}"
    );
    bail!("not root")
}

/// Runs `combos` and prints the table of runs: the summaries, and false if a run is
/// missing or the suite was interrupted. `None` when not root (`need_root` said why).
fn run_suite(
    combos: &[suite::Combo],
    settings: &suite::Settings,
) -> Result<Option<(Vec<report::Summary>, bool)>> {
    if !need_root()? {
        return Ok(None);
    }
    let stop = netns::stop_on_signals();
    let summaries = suite::run_all(combos, settings, &stop)?;
    let ok = report_all(
        &summaries,
        combos.len(),
        stop.load(std::sync::atomic::Ordering::SeqCst),
    );
    Ok(Some((summaries, ok)))
}

fn report_all(summaries: &[report::Summary], expected: usize, interrupted: bool) -> bool {
    let mut ok = true;
    println!("\njepsen: {} run(s):", summaries.len());
    for s in summaries {
        println!("  {}", s.line());
    }
    let ops: u64 = summaries.iter().map(|s| s.ops).sum();
    println!("jepsen: {ops} operations checked");
    for s in summaries {
        if !s.crashes.is_empty() {
            ok = false;
            println!(
                "jepsen: NODE CRASH in {}: {}",
                s.dir.display(),
                s.crashes.join("; ")
            );
        }
        // A self-test's replicas may diverge (one self-test exists to make them); each
        // is judged by what it must be caught by, below.
        if !s.diverged.is_empty() && s.unsafe_mode.is_none() {
            ok = false;
            println!(
                "jepsen: REPLICAS DIVERGED in {}: {}",
                s.dir.display(),
                s.diverged.join("; ")
            );
        }
        if s.interrupted {
            ok = false;
        }
    }
    if interrupted || summaries.len() < expected {
        println!(
            "jepsen: INTERRUPTED after {} of {expected} run(s)",
            summaries.len()
        );
        ok = false;
    }
    ok
}

fn main() -> ExitCode {
    match real_main() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("jepsen: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn real_main() -> Result<bool> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Inner { spec } => run::inner(&spec),
        Cmd::Check { dir } => {
            let s = report::judge(&dir)?;
            println!("{}", s.line());
            print!("{}", std::fs::read_to_string(dir.join("verdict.txt"))?);
            Ok(s.valid == Some(true))
        }
        Cmd::Run {
            nemesis,
            workload,
            unsafe_mode,
            common,
        } => {
            let combos = suite::matrix(&nemesis, &workload, unsafe_mode.as_deref())?;
            let Some((summaries, mut ok)) = run_suite(&combos, &common.settings(60)?)? else {
                return Ok(true);
            };
            for s in &summaries {
                match s.valid {
                    Some(true) => {}
                    Some(false) => {
                        ok = false;
                        println!(
                            "jepsen: ANOMALY in {} x {}{}: see {}/verdict.txt",
                            s.nemesis,
                            s.workload,
                            if s.unsafe_mode.is_some() {
                                " (expected: the nodes ran an UNSAFE mode, and the suite caught it)"
                            } else {
                                ""
                            },
                            s.dir.display()
                        );
                    }
                    None => {
                        ok = false;
                        println!(
                            "jepsen: UNKNOWN verdict for {} x {} (the checker could not decide; counted as a failure): see {}/verdict.txt",
                            s.nemesis,
                            s.workload,
                            s.dir.display()
                        );
                    }
                }
            }
            Ok(ok)
        }
        Cmd::Short { common } => {
            let combos = suite::short();
            let Some((summaries, mut ok)) = run_suite(&combos, &common.settings(20)?)? else {
                return Ok(true);
            };
            for s in &summaries {
                match (s.self_test_caught(), s.valid) {
                    (None, Some(true)) => {}
                    (None, _) => {
                        ok = false;
                        println!(
                            "jepsen: FAILED: {} x {} is {}: see {}/verdict.txt",
                            s.nemesis,
                            s.workload,
                            s.verdict_word(),
                            s.dir.display()
                        );
                    }
                    (Some(true), _) => println!(
                        "jepsen: self-test passed: the UNSAFE {} nodes' {} were caught ({}/verdict.txt)",
                        s.unsafe_mode.as_deref().unwrap_or_default(),
                        s.self_test_expects(),
                        s.dir.display()
                    ),
                    (Some(false), _) => {
                        ok = false;
                        println!(
                            "jepsen: SELF-TEST FAILED: nodes running UNSAFE {} were judged {}{}: \
                             the suite cannot catch {}; see {}",
                            s.unsafe_mode.as_deref().unwrap_or_default(),
                            s.verdict_word(),
                            if s.diverged.is_empty() { "" } else { ", replicas diverged" },
                            s.self_test_expects(),
                            s.dir.display()
                        );
                    }
                }
            }
            println!(
                "jepsen: short suite {}",
                if ok { "PASSED" } else { "FAILED" }
            );
            Ok(ok)
        }
    }
}
