//! The outer process: which runs to make (one, the full matrix, or the short suite of
//! `make test`), each in a fresh child inside the namespace, then judged and reported.
//!
//! Invariants:
//! - Each run is a child `ip netns exec <ns> <this binary> inner --spec <dir>/run.json` in
//!   its own process group, so a Ctrl-C reaches only this process, which then stops the
//!   child with SIGTERM (SIGKILL after a grace period), kills whatever is left in the
//!   namespace, deletes it and exits non-zero.
//! - A run that overruns its budget (its length plus [`OVERHEAD`]) is stopped the same way.
//! - A run's seed is printed with it; `--seed` replays the schedule and the clients'
//!   choices (not the timing of processes, which no seed controls).

use std::fs;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};

use super::db;
use super::nemesis::{Kind, Kinds};
use super::netns::Namespace;
use super::report::{judge, Summary};
use super::run::RunSpec;
use super::workload::Workload;

/// Time a run may take beyond its length: starting the nodes, healing, final reads.
pub const OVERHEAD: Duration = Duration::from_secs(150);
/// Grace period between SIGTERM and SIGKILL for an inner process.
const GRACE: Duration = Duration::from_secs(20);

/// Settings shared by every run of an invocation.
#[derive(Clone, Debug)]
pub struct Settings {
    pub seconds: u64,
    pub nodes: u64,
    pub workers: usize,
    pub seed: u64,
    pub heartbeat_ms: u64,
    pub snapshot_logs: u64,
    pub raft_groups: u32,
    pub op_timeout_ms: u64,
    pub think_ms: u64,
    /// Where run directories go.
    pub out: PathBuf,
    /// The `redraft` binary.
    pub bin: PathBuf,
}

/// One run to make.
#[derive(Clone, Debug, PartialEq)]
pub struct Combo {
    pub kinds: Kinds,
    pub workload: Workload,
    pub unsafe_mode: Option<String>,
    /// Length in seconds (the settings' unless the suite says otherwise).
    pub seconds: Option<u64>,
}

/// The runs for `--nemesis` and `--workload`: `all` expands to each nemesis alone plus
/// `mixed`, and to every workload.
pub fn matrix(nemesis: &str, workload: &str, unsafe_mode: Option<&str>) -> Result<Vec<Combo>> {
    let kinds: Vec<Kinds> = if nemesis == "all" {
        Kind::ALL
            .iter()
            .map(|&k| Kinds(vec![k]))
            .chain([Kinds(Kind::ALL.to_vec())])
            .collect()
    } else {
        vec![nemesis.parse().map_err(|e: String| anyhow::anyhow!(e))?]
    };
    let workloads: Vec<Workload> = if workload == "all" {
        Workload::ALL.to_vec()
    } else {
        vec![workload.parse().map_err(|e| anyhow::anyhow!("{e}"))?]
    };
    let mut out = Vec::new();
    for k in &kinds {
        for &w in &workloads {
            out.push(Combo {
                kinds: k.clone(),
                workload: w,
                unsafe_mode: unsafe_mode.map(str::to_string),
                seconds: None,
            });
        }
    }
    Ok(out)
}

/// The short suite of `make test`: every nemesis once, each workload at least once, and
/// the UNSAFE self-tests last: stale reads, which must be found invalid; replicas
/// applying with their own clocks, which the replica checks must find diverged; and slot
/// moves that do not freeze the source, whose lost appends must be found invalid.
pub fn short() -> Vec<Combo> {
    let combo = |nemesis: &str, workload: Workload| Combo {
        kinds: nemesis.parse().expect("known nemesis"),
        workload,
        unsafe_mode: None,
        seconds: None,
    };
    vec![
        combo("partition", Workload::Register),
        combo("kill", Workload::Counter),
        combo("pause", Workload::ListAppend),
        combo("shuffle-leaders", Workload::Set),
        combo("membership", Workload::Register),
        combo("disk-full", Workload::Register),
        combo("kill", Workload::BigValues),
        combo("move-slots", Workload::ListAppend),
        combo("move-slots,kill", Workload::Register),
        combo("mixed", Workload::ListAppend),
        Combo {
            kinds: "partition".parse().expect("known nemesis"),
            workload: Workload::Register,
            unsafe_mode: Some("local-reads".into()),
            seconds: None,
        },
        Combo {
            kinds: "none".parse().expect("known nemesis"),
            workload: Workload::Register,
            unsafe_mode: Some("local-clock".into()),
            seconds: None,
        },
        Combo {
            kinds: "move-slots".parse().expect("known nemesis"),
            workload: Workload::ListAppend,
            unsafe_mode: Some("move-without-freeze".into()),
            seconds: None,
        },
    ]
}

/// UTC `YYYYMMDDTHHMMSS` for run directory names.
pub fn timestamp(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil from days (Howard Hinnant's algorithm), for 1970 onwards.
    let z = days as i64 + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Runs every combo in one namespace, printing a line for each as it ends; the summaries
/// of those that ran (fewer when stopped by a signal).
pub fn run_all(combos: &[Combo], settings: &Settings, stop: &AtomicBool) -> Result<Vec<Summary>> {
    let exe = std::env::current_exe().context("find this binary")?;
    let ns = Namespace::create().context("create the network namespace")?;
    println!(
        "jepsen: {} run(s) in network namespace {}, nodes {} of {}, base seed {}",
        combos.len(),
        ns.name,
        settings.nodes,
        settings.bin.display(),
        settings.seed
    );
    fs::create_dir_all(&settings.out)
        .with_context(|| format!("create {}", settings.out.display()))?;
    let mut summaries = Vec::new();
    for (i, combo) in combos.iter().enumerate() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let seconds = combo.seconds.unwrap_or(settings.seconds);
        let seed = settings.seed.wrapping_add(i as u64);
        let mut name = format!(
            "{}-{}-{}",
            timestamp(SystemTime::now()),
            combo.kinds.name(),
            combo.workload
        );
        if let Some(u) = &combo.unsafe_mode {
            name.push_str(&format!("-unsafe-{u}"));
        }
        let dir = settings.out.join(name);
        fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        let dir = dir.canonicalize()?;
        let spec = RunSpec {
            workload: combo.workload.to_string(),
            nemesis: nemesis_arg(&combo.kinds),
            seconds,
            nodes: settings.nodes,
            workers: settings.workers,
            seed,
            heartbeat_ms: settings.heartbeat_ms,
            snapshot_logs: settings.snapshot_logs,
            raft_groups: settings.raft_groups,
            unsafe_mode: combo.unsafe_mode.clone(),
            op_timeout_ms: settings.op_timeout_ms,
            think_ms: settings.think_ms,
            bin: settings.bin.clone(),
            dir: dir.clone(),
        };
        fs::write(dir.join("run.json"), serde_json::to_vec_pretty(&spec)?)?;
        println!(
            "jepsen: running {} x {} for {seconds} s (seed {seed}) in {}",
            combo.kinds.name(),
            combo.workload,
            dir.display()
        );
        let started = Instant::now();
        let status = run_inner(
            &ns,
            &exe,
            &dir,
            Duration::from_secs(seconds) + OVERHEAD,
            stop,
        )?;
        ns.kill_all();
        if !status {
            eprintln!(
                "jepsen: the run failed; the end of {}/harness.log:\n{}",
                dir.display(),
                db::tail(&dir.join("harness.log"), 30)
            );
        }
        let summary = match judge(&dir) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("jepsen: could not judge {}: {e:#}", dir.display());
                Summary {
                    nemesis: combo.kinds.name(),
                    workload: combo.workload.to_string(),
                    unsafe_mode: combo.unsafe_mode.clone(),
                    seed,
                    ops: 0,
                    ok: 0,
                    fail: 0,
                    info: 0,
                    valid: None,
                    crashes: Vec::new(),
                    diverged: Vec::new(),
                    interrupted: true,
                    dir: dir.clone(),
                }
            }
        };
        println!(
            "{}   ({:.0} s)",
            summary.line(),
            started.elapsed().as_secs_f64()
        );
        summaries.push(summary);
    }
    Ok(summaries)
}

fn nemesis_arg(kinds: &Kinds) -> String {
    match kinds.name().as_str() {
        "none" | "mixed" => kinds.name(),
        _ => kinds
            .0
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// Runs one inner process to its end; true if it exited 0 (ran to the end).
fn run_inner(
    ns: &Namespace,
    exe: &Path,
    dir: &Path,
    budget: Duration,
    stop: &AtomicBool,
) -> Result<bool> {
    let log = fs::File::create(dir.join("harness.log"))?;
    let mut child = Command::new("ip")
        .args(["netns", "exec", &ns.name])
        .arg(exe)
        .arg("inner")
        .arg("--spec")
        .arg(dir.join("run.json"))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .context("start `ip netns exec ... jepsen inner`")?;
    let deadline = Instant::now() + budget;
    let mut terminated: Option<Instant> = None;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status.success());
        }
        let overran = Instant::now() >= deadline;
        if (stop.load(Ordering::SeqCst) || overran) && terminated.is_none() {
            if overran {
                eprintln!("jepsen: the run overran its {budget:?} budget; stopping it");
            }
            let _ = db::signal(child.id(), "TERM");
            terminated = Some(Instant::now());
        }
        if terminated.is_some_and(|t| t.elapsed() >= GRACE) {
            let _ = child.kill();
            let _ = child.wait();
            bail!("the run did not stop within {GRACE:?} of SIGTERM; killed");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_expands_to_each_nemesis_and_mixed_times_each_workload() {
        let m = matrix("all", "all", None).unwrap();
        assert_eq!(m.len(), (Kind::ALL.len() + 1) * Workload::ALL.len());
        assert_eq!(
            m.iter().filter(|c| c.kinds.name() == "mixed").count(),
            Workload::ALL.len()
        );
        let one = matrix("partition,kill", "register", Some("local-reads")).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].kinds.name(), "partition+kill");
        assert_eq!(one[0].unsafe_mode.as_deref(), Some("local-reads"));
        assert!(matrix("flood", "all", None).is_err());
        assert!(matrix("all", "bank", None).is_err());
    }

    #[test]
    fn the_short_suite_covers_every_nemesis_and_workload_and_ends_with_the_self_tests() {
        let s = short();
        let kinds: std::collections::BTreeSet<Kind> =
            s.iter().flat_map(|c| c.kinds.0.iter().copied()).collect();
        assert_eq!(kinds.len(), Kind::ALL.len());
        for w in Workload::ALL {
            assert!(s.iter().any(|c| c.workload == w), "{w}");
        }
        let unsafe_modes: Vec<&str> = s.iter().filter_map(|c| c.unsafe_mode.as_deref()).collect();
        assert_eq!(
            unsafe_modes,
            ["local-reads", "local-clock", "move-without-freeze"]
        );
        assert!(
            s[s.len() - 3..].iter().all(|c| c.unsafe_mode.is_some()),
            "the self-tests come last"
        );
    }

    #[test]
    fn timestamps_are_utc_calendar_times() {
        let t = UNIX_EPOCH + Duration::from_secs(1_709_210_096); // 2024-02-29 12:34:56 UTC
        assert_eq!(timestamp(t), "20240229T123456");
        assert_eq!(timestamp(UNIX_EPOCH), "19700101T000000");
    }

    #[test]
    fn nemesis_names_round_trip_through_the_spec() {
        for name in ["none", "mixed", "partition", "kill,pause"] {
            let kinds: Kinds = name.parse().unwrap();
            assert_eq!(nemesis_arg(&kinds).parse::<Kinds>().unwrap(), kinds);
        }
    }
}
