//! The processes under test: how each system's members are started (on loopback, with data
//! directories under the run directory), killed with SIGKILL, restarted, and measured (RSS).
//!
//! Invariants: every process is a child of this one, started from a [`MemberSpec`] so it can
//! be started again the same way, and killed by its own PID (never by name) when it is
//! dropped; logs go to files beside the data, never to this process's output.

use anyhow::{bail, Context, Result};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// How to start one member.
#[derive(Debug, Clone)]
pub struct MemberSpec {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub log: PathBuf,
}

/// A running member.
pub struct Proc {
    child: Child,
}

impl Proc {
    pub fn spawn(spec: &MemberSpec) -> Result<Proc> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&spec.log)
            .with_context(|| format!("opening {}", spec.log.display()))?;
        let child = Command::new(&spec.program)
            .args(&spec.args)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", spec.program.display()))?;
        Ok(Proc { child })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, then reap.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGKILL, without waiting for the kernel to reap the process: the kernel frees a
    /// large process's memory before it closes its sockets, which takes a while, and a
    /// measurement that starts at the kill must not wait for it. Dropping the `Proc` (or
    /// [`Proc::kill9`]) reaps it later.
    pub fn kill9_now(&mut self) {
        let _ = self.child.kill();
    }

    /// Resident memory in KiB (VmRSS), if the process is alive.
    pub fn rss_kib(&self) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmRSS in /proc status")
    }

    /// Whether it has exited (and so failed to start or crashed).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `program` on the PATH (or as given, if it has a slash); a clear error naming the package
/// that provides it otherwise.
pub fn find_program(program: &str, package: &str) -> Result<PathBuf> {
    if program.contains('/') {
        let p = PathBuf::from(program);
        if p.is_file() {
            return Ok(p);
        }
        bail!("{program} not found (build it first: make build)");
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let p = dir.join(program);
        if p.is_file() {
            return Ok(p);
        }
    }
    bail!("{program} is not installed (Debian package {package}; `tools/ensure-deps bench` installs it as root)")
}

/// The first line a program prints for `args` (e.g. its version), or "unknown".
pub fn first_line(program: &Path, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_string)
        })
        .unwrap_or_else(|| "unknown".into())
}
