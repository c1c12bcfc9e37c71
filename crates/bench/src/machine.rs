//! The machine a run happens on: CPU, cores, memory, kernel, and the fsync latency of the
//! disk that holds the systems' data, measured by the run itself (the figure every system
//! that fsyncs per write is bounded by).

use anyhow::{Context, Result};
use redraft_bench::report::Machine;
use redraft_bench::stats::Latencies;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Instant;

/// How many fsyncs the latency figure is measured over.
const FSYNC_SAMPLES: usize = 200;

pub fn describe(data_dir: &Path, versions: &[(String, String)]) -> Result<Machine> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let fsync = fsync_latency(data_dir)?;
    Ok(Machine {
        cpu,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        memory_gib: mem_kib / 1024.0 / 1024.0,
        kernel,
        fsync_p50_ms: fsync.quantile_ms(0.5),
        fsync_p99_ms: fsync.quantile_ms(0.99),
        fsync_samples: FSYNC_SAMPLES,
        versions: versions.to_vec(),
    })
}

/// Times `FSYNC_SAMPLES` rounds of "overwrite 4 KiB, fdatasync" of a file in `dir`.
fn fsync_latency(dir: &Path) -> Result<Latencies> {
    let path = dir.join("fsync-probe");
    let mut f =
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let block = [0x5au8; 4096];
    let mut lat = Latencies::new();
    for _ in 0..FSYNC_SAMPLES {
        f.seek(SeekFrom::Start(0))?;
        f.write_all(&block)?;
        let t0 = Instant::now();
        f.sync_data()?;
        lat.record_ns(t0.elapsed().as_nanos() as u64);
    }
    drop(f);
    std::fs::remove_file(&path)?;
    Ok(lat)
}

/// `date -u` as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn now_utc() -> String {
    command_line("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"])
}

/// A name for a run directory: `YYYYMMDD-HHMMSS` (UTC).
pub fn stamp() -> String {
    command_line("date", &["-u", "+%Y%m%d-%H%M%S"])
}

/// The commit the working tree is at (`git rev-parse --short HEAD`), or "unknown".
pub fn git_head() -> String {
    command_line("git", &["rev-parse", "--short", "HEAD"])
}

fn command_line(program: &str, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}
