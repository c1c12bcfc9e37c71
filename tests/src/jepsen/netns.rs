//! The run's network namespace, and the signals that end a run early.
//!
//! The harness creates one namespace, `redraft-jepsen-<pid of the harness>`, holding only
//! `lo` (brought up), and runs every node and client inside it by re-executing itself
//! with `ip netns exec` (no `setns` by hand: the workspace forbids unsafe code). Nothing
//! inside can reach any other interface, and `iptables` rules there touch nothing outside.
//!
//! Invariants:
//! - Dropping a [`Namespace`] kills (SIGKILL, by PID, from `ip netns pids`) every process
//!   still inside it, then deletes it.
//! - [`clean_stale`] does the same for namespaces of earlier runs whose owner is gone (a
//!   harness killed with SIGKILL), so they never pile up.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};

/// Name prefix of the namespaces this harness creates.
pub const PREFIX: &str = "redraft-jepsen-";

/// True when this process runs as root (it owns `/proc/self`).
pub fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Runs a command; its stdout, or an error with its stderr.
pub fn run(program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("run `{program} {}` (is it installed?)", args.join(" ")))?;
    if !out.status.success() {
        bail!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A network namespace this process created.
pub struct Namespace {
    pub name: String,
}

impl Namespace {
    /// Creates `redraft-jepsen-<pid>` with `lo` up, after removing stale ones.
    pub fn create() -> Result<Namespace> {
        clean_stale();
        let name = format!("{PREFIX}{}", std::process::id());
        if list()?.contains(&name) {
            remove(&name);
        }
        run("ip", &["netns", "add", &name])?;
        let ns = Namespace { name };
        run("ip", &["-n", &ns.name, "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Kills every process left inside (between runs and at the end).
    pub fn kill_all(&self) {
        kill_inside(&self.name);
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        remove(&self.name);
    }
}

/// The namespaces that exist now.
pub fn list() -> Result<Vec<String>> {
    Ok(run("ip", &["netns", "list"])?
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect())
}

/// The owner PID in a name this harness made, if it is one.
pub fn owner(name: &str) -> Option<u32> {
    name.strip_prefix(PREFIX)?.parse().ok()
}

/// Kills what runs inside namespace `name`, then deletes it.
fn remove(name: &str) {
    kill_inside(name);
    if let Err(e) = run("ip", &["netns", "delete", name]) {
        eprintln!("jepsen: could not delete namespace {name}: {e:#}");
    }
}

fn kill_inside(name: &str) {
    let Ok(pids) = run("ip", &["netns", "pids", name]) else {
        return;
    };
    let me = std::process::id().to_string();
    for pid in pids.split_whitespace().filter(|p| *p != me) {
        let _ = Command::new("kill").args(["-s", "KILL", pid]).output();
    }
}

/// Removes namespaces of earlier harness runs whose owner process is gone.
pub fn clean_stale() {
    let Ok(names) = list() else {
        return;
    };
    for name in names {
        let Some(pid) = owner(&name) else {
            continue;
        };
        let alive = std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .is_ok_and(|comm| comm.trim() == "jepsen");
        if !alive && Path::new("/proc").is_dir() {
            eprintln!("jepsen: removing stale namespace {name} (its owner {pid} is gone)");
            remove(&name);
        }
    }
}

/// A flag raised by SIGINT or SIGTERM (from then on those signals no longer kill this
/// process: the harness cleans up and exits on its own).
pub fn stop_on_signals() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let raised = flag.clone();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(r) => r,
            Err(e) => {
                eprintln!("jepsen: cannot watch for signals: {e}");
                let _ = ready_tx.send(());
                return;
            }
        };
        runtime.block_on(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut int), Ok(mut term)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                eprintln!("jepsen: cannot watch for SIGINT/SIGTERM");
                let _ = ready_tx.send(());
                return;
            };
            let _ = ready_tx.send(());
            tokio::select! {
                _ = int.recv() => eprintln!("jepsen: SIGINT: stopping and cleaning up"),
                _ = term.recv() => eprintln!("jepsen: SIGTERM: stopping and cleaning up"),
            }
            raised.store(true, Ordering::SeqCst);
        });
    });
    // The handlers are in place before anything is started.
    let _ = ready_rx.recv();
    flag
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_of_this_harness_have_an_owner() {
        assert_eq!(owner("redraft-jepsen-4242"), Some(4242));
        assert_eq!(owner("redraft-jepsen-x"), None);
        assert_eq!(owner("other-4242"), None);
    }
}
