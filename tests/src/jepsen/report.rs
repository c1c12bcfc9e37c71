//! Judging a recorded run: the checker's verdict, the picture, and the one-line summary.
//!
//! [`judge`] needs only the run directory (`run.json`, `history.jsonl`, `faults.json`),
//! so a kept run can be judged again later (`jepsen check DIR`) without root.

use std::fs;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use lincheck::History;

use super::plot;
use super::run::{Faults, RunSpec};

/// The outcome of one run.
#[derive(Clone, Debug)]
pub struct Summary {
    pub nemesis: String,
    pub workload: String,
    pub unsafe_mode: Option<String>,
    pub seed: u64,
    pub ops: u64,
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
    /// The checker's answer: valid, invalid, or unknown (`None`).
    pub valid: Option<bool>,
    /// Nodes that exited on their own.
    pub crashes: Vec<String>,
    /// What the replica checks after the run found wrong.
    pub diverged: Vec<String>,
    pub interrupted: bool,
    pub dir: PathBuf,
}

impl Summary {
    pub fn verdict_word(&self) -> &'static str {
        match self.valid {
            Some(true) => "valid",
            Some(false) => "INVALID",
            None => "UNKNOWN",
        }
    }

    /// For a self-test (a run of nodes in an UNSAFE mode): whether the suite caught what
    /// the mode breaks. Stale reads (`local-reads`) and writes lost by slot moves that do
    /// not freeze the source (`move-without-freeze`) must make the history invalid; a
    /// clock of each replica's own (`local-clock`) must make the replicas diverge. `None`
    /// for an ordinary run.
    pub fn self_test_caught(&self) -> Option<bool> {
        self.unsafe_mode.as_deref().map(|mode| match mode {
            "local-clock" => !self.diverged.is_empty(),
            _ => self.valid == Some(false),
        })
    }

    /// What a self-test must be caught by, in words.
    pub fn self_test_expects(&self) -> &'static str {
        match self.unsafe_mode.as_deref() {
            Some("local-clock") => "diverging replicas",
            Some("move-without-freeze") => "lost writes",
            _ => "stale reads",
        }
    }

    /// One line: nemesis, workload, ops, ok/fail/info, verdict, run directory.
    pub fn line(&self) -> String {
        let name = match &self.unsafe_mode {
            Some(u) => format!("{} [UNSAFE {u}]", self.nemesis),
            None => self.nemesis.clone(),
        };
        let mut extra = String::new();
        if !self.crashes.is_empty() {
            extra.push_str(&format!(" {} NODE CRASH(ES)", self.crashes.len()));
        }
        if !self.diverged.is_empty() {
            extra.push_str(" REPLICAS DIVERGED");
        }
        if self.interrupted {
            extra.push_str(" interrupted");
        }
        format!(
            "{name:<32} {:<12} {:>6} ops {:>6} ok {:>5} fail {:>5} info  {:<8}{extra}  {}",
            self.workload,
            self.ops,
            self.ok,
            self.fail,
            self.info,
            self.verdict_word(),
            self.dir.display()
        )
    }
}

/// Checks the run in `dir`, writes `verdict.json`, `verdict.txt` and `plot.svg` there.
pub fn judge(dir: &Path) -> Result<Summary> {
    let spec: RunSpec = serde_json::from_slice(
        &fs::read(dir.join("run.json"))
            .with_context(|| format!("read {}/run.json", dir.display()))?,
    )
    .context("parse run.json")?;
    let workload = spec.workload()?;
    let kinds = spec.kinds()?;
    let file = fs::File::open(dir.join("history.jsonl"))
        .with_context(|| format!("open {}/history.jsonl", dir.display()))?;
    let history = History::read_jsonl(BufReader::new(file)).context("read history.jsonl")?;
    let faults: Faults = match fs::read(dir.join("faults.json")) {
        Ok(bytes) => serde_json::from_slice(&bytes).context("parse faults.json")?,
        Err(_) => Faults {
            interrupted: true,
            ..Faults::default()
        },
    };
    let report = lincheck::check(workload, &history);
    fs::write(
        dir.join("verdict.json"),
        serde_json::to_vec_pretty(&report)?,
    )?;
    let mut text = format!("{report}\n\n{}\n", spec.describe(&kinds));
    text.push_str(&format!(
        "replay: make jepsen NEMESIS={} WORKLOAD={workload} SECONDS={} SEED={}{}\n",
        spec.nemesis,
        spec.seconds,
        spec.seed,
        spec.unsafe_mode
            .as_deref()
            .map(|u| format!(" UNSAFE={u}"))
            .unwrap_or_default()
    ));
    for c in &faults.crashes {
        text.push_str(&format!("{c}\n"));
    }
    for d in &faults.diverged {
        text.push_str(&format!("replicas diverged: {d}\n"));
    }
    fs::write(dir.join("verdict.txt"), text)?;
    let title = format!(
        "{workload} under {}{} (seed {})",
        kinds.name(),
        spec.unsafe_mode
            .as_deref()
            .map(|u| format!(", UNSAFE {u}"))
            .unwrap_or_default(),
        spec.seed
    );
    if let Err(e) = plot::draw(&dir.join("plot.svg"), &title, &history, &faults.windows) {
        eprintln!("jepsen: no picture: {e:#}");
    }
    let c = report.counts;
    Ok(Summary {
        nemesis: kinds.name(),
        workload: workload.to_string(),
        unsafe_mode: spec.unsafe_mode.clone(),
        seed: spec.seed,
        ops: c.ops,
        ok: c.ok,
        fail: c.fail,
        info: c.info,
        valid: report.valid(),
        crashes: faults.crashes,
        diverged: faults.diverged,
        interrupted: faults.interrupted,
        dir: dir.to_path_buf(),
    })
}
