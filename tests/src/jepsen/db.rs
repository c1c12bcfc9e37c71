//! The redraft processes of a run, inside the run's network namespace.
//!
//! Node `N` listens on `127.0.0.(10+N)`, RESP port [`RESP_PORT`], gRPC port [`GRPC_PORT`]
//! (the namespace is the run's own, so fixed ports never clash). Its data directory is
//! `nodes/nN/` and its log (every start appended, with a header line) `nodes/nN.log`,
//! under the run directory.
//!
//! Invariants:
//! - Processes are signalled by PID only (`kill -s SIG PID`, or `Child::kill`).
//! - Dropping a [`Db`] kills and reaps every node it started (a stopped process dies of
//!   SIGKILL too), on success, error and panic alike.
//! - Every wait polls with a deadline and reports what it last saw.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::info::RaftInfo;

/// RESP port of every node (each on its own address).
pub const RESP_PORT: u16 = 6379;
/// gRPC port of every node.
pub const GRPC_PORT: u16 = 7379;
/// How long a control command (INFO, CLUSTER ...) may take.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(2);
/// The pause between two polls.
const POLL: Duration = Duration::from_millis(100);

/// Fills the file system holding `dir` with a ballast file in it until at most `leave`
/// bytes are free (a few rounds, whatever else writes there meanwhile); the file's path.
pub fn fill(dir: &Path, leave: u64) -> Result<PathBuf> {
    let path = dir.join("ballast");
    let mut f = fs::File::create(&path).with_context(|| format!("create {}", path.display()))?;
    let chunk = vec![0x5au8; 4 << 20];
    for _ in 0..8 {
        let free = free_bytes(dir)?;
        if free <= leave {
            break;
        }
        let mut left = free - leave;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            if f.write_all(&chunk[..n]).is_err() {
                return Ok(path);
            }
            left -= n as u64;
        }
    }
    Ok(path)
}

/// Bytes available on the file system holding `dir`.
fn free_bytes(dir: &Path) -> Result<u64> {
    let out = Command::new("stat")
        .args(["-f", "-c", "%a %S"])
        .arg(dir)
        .output()
        .context("run stat")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text
        .split_whitespace()
        .map(|n| n.parse::<u64>().unwrap_or(0));
    Ok(it.next().unwrap_or(0) * it.next().unwrap_or(0))
}

/// Node `id`'s address.
pub fn ip_of(id: u64) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, 10 + id.min(200) as u8)
}

/// What every node is started with.
#[derive(Clone, Debug)]
pub struct DbOptions {
    /// The `redraft` binary.
    pub bin: PathBuf,
    /// Nodes 1..=nodes.
    pub nodes: u64,
    pub heartbeat_ms: u64,
    pub snapshot_logs: u64,
    /// `--raft-groups`.
    pub raft_groups: u32,
    /// `--unsafe` value, for the self-test.
    pub unsafe_mode: Option<String>,
    /// Where `nodes/` goes.
    pub dir: PathBuf,
    /// When set (the disk-full nemesis), every node's data directory is a tmpfs of this
    /// size (`"256m"`), mounted in the run's own mount namespace (`ip netns exec` gives the
    /// run one): it goes away with the run.
    pub tmpfs: Option<String>,
}

struct Proc {
    id: u64,
    args: Vec<String>,
    data: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    paused: bool,
    starts: u32,
}

/// The nodes of one run.
pub struct Db {
    opts: DbOptions,
    procs: BTreeMap<u64, Proc>,
}

impl Db {
    /// Starts nodes `1..=nodes` as one cluster and waits until they agree on a leader.
    pub fn start(opts: DbOptions) -> Result<Db> {
        let nodes_dir = opts.dir.join("nodes");
        fs::create_dir_all(&nodes_dir)
            .with_context(|| format!("create {}", nodes_dir.display()))?;
        let initial = (1..=opts.nodes)
            .map(|id| format!("{id}={}:{GRPC_PORT}", ip_of(id)))
            .collect::<Vec<_>>()
            .join(",");
        let mut db = Db {
            opts,
            procs: BTreeMap::new(),
        };
        for id in 1..=db.opts.nodes {
            let args = db.args(id, &["--initial-cluster", &initial]);
            db.procs.insert(
                id,
                Proc {
                    id,
                    args,
                    data: nodes_dir.join(format!("n{id}")),
                    log: nodes_dir.join(format!("n{id}.log")),
                    child: None,
                    paused: false,
                    starts: 0,
                },
            );
        }
        for id in db.ids() {
            db.mount(id)?;
            db.spawn(id)?;
        }
        for id in db.ids() {
            db.wait_ready(id, Duration::from_secs(30))?;
        }
        db.wait_leader(Duration::from_secs(30))?;
        Ok(db)
    }

    /// Mounts node `id`'s tmpfs data directory, when the run has them.
    fn mount(&mut self, id: u64) -> Result<()> {
        let Some(size) = self.opts.tmpfs.clone() else {
            return Ok(());
        };
        let data = self.proc(id)?.data.clone();
        fs::create_dir_all(&data).with_context(|| format!("create {}", data.display()))?;
        let data_arg = data.display().to_string();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "tmpfs",
                &data_arg,
            ])
            .output()
            .context("run mount")?;
        if !out.status.success() {
            bail!(
                "mount a tmpfs on {}: {}",
                data.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    /// Fills node `id`'s disk (its tmpfs) until at most `leave` bytes are free: the path
    /// of the ballast file, to remove to free it again.
    pub fn fill_disk(&mut self, id: u64, leave: u64) -> Result<PathBuf> {
        if self.opts.tmpfs.is_none() {
            bail!("this run's nodes have no tmpfs to fill");
        }
        fill(&self.proc(id)?.data.clone(), leave)
    }

    fn args(&self, id: u64, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = [
            "--node-id".to_string(),
            id.to_string(),
            "--bind".into(),
            ip_of(id).to_string(),
            "--grpc-bind".into(),
            ip_of(id).to_string(),
            "--port".into(),
            RESP_PORT.to_string(),
            "--grpc-port".into(),
            GRPC_PORT.to_string(),
            "--data-dir".into(),
            self.opts
                .dir
                .join("nodes")
                .join(format!("n{id}"))
                .display()
                .to_string(),
            "--heartbeat-ms".into(),
            self.opts.heartbeat_ms.to_string(),
            "--snapshot-logs".into(),
            self.opts.snapshot_logs.to_string(),
            "--raft-groups".into(),
            self.opts.raft_groups.to_string(),
        ]
        .into();
        if let Some(u) = &self.opts.unsafe_mode {
            args.extend(["--unsafe".to_string(), u.clone()]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    /// Every node id.
    pub fn ids(&self) -> Vec<u64> {
        self.procs.keys().copied().collect()
    }

    /// Nodes whose process runs (paused or not).
    pub fn running(&self) -> Vec<u64> {
        self.procs
            .values()
            .filter(|p| p.child.is_some())
            .map(|p| p.id)
            .collect()
    }

    /// Nodes that run and are not paused: those that can answer.
    pub fn awake(&self) -> Vec<u64> {
        self.procs
            .values()
            .filter(|p| p.child.is_some() && !p.paused)
            .map(|p| p.id)
            .collect()
    }

    pub fn paused(&self) -> Vec<u64> {
        self.procs
            .values()
            .filter(|p| p.paused)
            .map(|p| p.id)
            .collect()
    }

    fn proc(&mut self, id: u64) -> Result<&mut Proc> {
        self.procs
            .get_mut(&id)
            .ok_or_else(|| anyhow!("there is no node {id}"))
    }

    /// Starts node `id` with its command line; output goes to the end of its log.
    pub fn spawn(&mut self, id: u64) -> Result<()> {
        let bin = self.opts.bin.clone();
        let p = self.proc(id)?;
        if p.child.is_some() {
            bail!("node {id} is already running");
        }
        p.starts += 1;
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p.log)
            .with_context(|| format!("open {}", p.log.display()))?;
        writeln!(
            log,
            "===== jepsen: start #{} of node {id}: {} {}",
            p.starts,
            bin.display(),
            p.args.join(" ")
        )?;
        let err = log.try_clone()?;
        let child = Command::new(&bin)
            .args(&p.args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .with_context(|| format!("spawn {}", bin.display()))?;
        p.child = Some(child);
        p.paused = false;
        Ok(())
    }

    /// Polls node `id` until it answers `INFO replication`.
    pub fn wait_ready(&mut self, id: u64, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let p = self.proc(id)?;
            let child = p
                .child
                .as_mut()
                .ok_or_else(|| anyhow!("node {id} is not running"))?;
            if let Ok(Some(status)) = child.try_wait() {
                p.child = None;
                bail!(
                    "node {id} exited during start ({status}); its log ends:\n{}",
                    tail(&p.log, 20)
                );
            }
            // Not PING: redraft serves PING as a data read, behind the read barrier, so a
            // node cut off from a quorum answers it only with -CLUSTERDOWN after 3 s.
            let last = match call(id, &["INFO", "replication"], CONTROL_TIMEOUT) {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            if Instant::now() >= deadline {
                bail!("node {id} did not answer INFO within {timeout:?} (last: {last})");
            }
            std::thread::sleep(POLL);
        }
    }

    /// SIGKILL node `id` and reap it; nothing if it is down.
    pub fn kill(&mut self, id: u64) -> Result<()> {
        let p = self.proc(id)?;
        if let Some(mut child) = p.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        p.paused = false;
        Ok(())
    }

    /// SIGSTOP node `id`.
    pub fn pause(&mut self, id: u64) -> Result<()> {
        let p = self.proc(id)?;
        let pid = p
            .child
            .as_ref()
            .map(Child::id)
            .ok_or_else(|| anyhow!("node {id} is not running"))?;
        // Marked first: resuming a running process is harmless, forgetting a stopped one is not.
        p.paused = true;
        signal(pid, "STOP")
    }

    /// SIGCONT node `id` if it is paused.
    pub fn resume(&mut self, id: u64) -> Result<()> {
        let p = self.proc(id)?;
        if !p.paused {
            return Ok(());
        }
        if let Some(pid) = p.child.as_ref().map(Child::id) {
            signal(pid, "CONT")?;
        }
        p.paused = false;
        Ok(())
    }

    /// Nodes that exited on their own since the last look (a crash is a finding), with
    /// their status; they count as down afterwards.
    pub fn reap_exited(&mut self) -> Vec<(u64, ExitStatus)> {
        let mut out = Vec::new();
        for p in self.procs.values_mut() {
            if let Some(child) = p.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    out.push((p.id, status));
                    p.child = None;
                    p.paused = false;
                }
            }
        }
        out
    }

    /// Node `id`'s Raft view.
    pub fn info(&self, id: u64) -> Result<RaftInfo> {
        let text =
            match call(id, &["INFO", "replication"], CONTROL_TIMEOUT).map_err(|e| anyhow!(e))? {
                redis::Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
                redis::Value::VerbatimString { text, .. } => text,
                other => bail!("node {id}: INFO replication -> {other:?}"),
            };
        RaftInfo::parse(&text).map_err(|e| anyhow!("node {id}: {e}"))
    }

    /// The node that says it leads with the highest term, among the awake nodes.
    pub fn leader(&self) -> Option<u64> {
        self.awake()
            .into_iter()
            .filter_map(|id| self.info(id).ok().map(|i| (id, i)))
            .filter(|(id, i)| i.role == "leader" && i.leader == Some(*id))
            .max_by_key(|(_, i)| i.term)
            .map(|(id, _)| id)
    }

    /// Polls until every awake node names the same leader, which says it leads.
    pub fn wait_leader(&self, timeout: Duration) -> Result<u64> {
        let deadline = Instant::now() + timeout;
        loop {
            let infos: Vec<(u64, Result<RaftInfo>)> = self
                .awake()
                .into_iter()
                .map(|id| (id, self.info(id)))
                .collect();
            let last = infos
                .iter()
                .map(|(id, i)| match i {
                    Ok(i) => format!("n{id}: {} term {} leader {:?}", i.role, i.term, i.leader),
                    Err(e) => format!("n{id}: {e}"),
                })
                .collect::<Vec<_>>()
                .join("; ");
            let leaders: Vec<Option<u64>> = infos
                .iter()
                .map(|(_, i)| i.as_ref().ok().and_then(|i| i.leader))
                .collect();
            if let Some(Some(l)) = leaders.first() {
                let agreed = leaders.iter().all(|x| *x == Some(*l));
                let says = infos
                    .iter()
                    .find(|(id, _)| id == l)
                    .and_then(|(_, i)| i.as_ref().ok())
                    .is_some_and(|i| i.role == "leader");
                if agreed && says {
                    return Ok(*l);
                }
            }
            if Instant::now() >= deadline {
                bail!("no leader agreed on within {timeout:?}; last seen: {last}");
            }
            std::thread::sleep(POLL);
        }
    }

    /// `CLUSTER FORGET victim`, sent to an awake node other than the victim (the leader if
    /// known).
    pub fn forget(&self, victim: u64) -> Result<()> {
        let via = self
            .leader()
            .filter(|&l| l != victim)
            .or_else(|| self.awake().into_iter().find(|&i| i != victim))
            .ok_or_else(|| anyhow!("no node to send CLUSTER FORGET {victim} to"))?;
        let v = call(
            via,
            &["CLUSTER", "FORGET", &victim.to_string()],
            Duration::from_secs(10),
        )
        .map_err(|e| anyhow!(e))?;
        match v {
            redis::Value::Okay => Ok(()),
            other => bail!("n{via}: CLUSTER FORGET {victim} -> {other:?}"),
        }
    }

    /// Kills node `id`, wipes its data directory and starts it again with an empty disk
    /// and `--join` through `via`.
    pub fn rejoin(&mut self, id: u64, via: u64) -> Result<()> {
        self.kill(id)?;
        let data = self.proc(id)?.data.clone();
        if data.exists() {
            // The directory's contents: it may be a mount point (a tmpfs).
            for entry in fs::read_dir(&data).with_context(|| format!("list {}", data.display()))? {
                let path = entry?.path();
                if path.is_dir() {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                }
                .with_context(|| format!("wipe {}", path.display()))?;
            }
        }
        let join = format!("{}:{GRPC_PORT}", ip_of(via));
        let args = self.args(id, &["--join", &join]);
        self.proc(id)?.args = args;
        self.spawn(id)?;
        self.wait_ready(id, Duration::from_secs(30))
    }

    /// Asks leader `from` of `group` to hand it to `to`.
    pub fn transfer_group(&self, from: u64, to: u64, group: u64) -> Result<()> {
        let (to_arg, group_arg) = (to.to_string(), group.to_string());
        match call(
            from,
            &["CLUSTER", "TRANSFER-LEADER", &to_arg, &group_arg],
            Duration::from_secs(5),
        )
        .map_err(|e| anyhow!(e))?
        {
            redis::Value::Okay => Ok(()),
            other => bail!("n{from}: CLUSTER TRANSFER-LEADER {to} {group} -> {other:?}"),
        }
    }

    /// Kills every node.
    pub fn stop_all(&mut self) {
        for p in self.procs.values_mut() {
            if let Some(mut child) = p.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
            p.paused = false;
        }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// One command on a fresh connection to node `id`; an error reply is an `Err` too.
pub fn call(id: u64, args: &[&str], timeout: Duration) -> Result<redis::Value, String> {
    let mut con = connect(id, timeout).map_err(|e| format!("n{id}: connect: {e}"))?;
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query::<redis::Value>(&mut con)
        .map_err(|e| format!("n{id}: {}: {e}", args.join(" ")))
}

/// A client connection to node `id` whose calls give up after `timeout`.
pub fn connect(id: u64, timeout: Duration) -> redis::RedisResult<redis::Connection> {
    let client = redis::Client::open(format!("redis://{}:{RESP_PORT}/", ip_of(id)))?;
    let con = client.get_connection_with_timeout(timeout)?;
    con.set_read_timeout(Some(timeout))?;
    con.set_write_timeout(Some(timeout))?;
    Ok(con)
}

/// Sends `kill -s SIG PID`.
pub fn signal(pid: u32, sig: &str) -> Result<()> {
    let out = Command::new("kill")
        .args(["-s", sig, &pid.to_string()])
        .output()
        .with_context(|| format!("run kill -s {sig} {pid}"))?;
    if !out.status.success() {
        bail!(
            "kill -s {sig} {pid}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The last `n` lines of a file.
pub fn tail(path: &Path, n: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_addresses_are_distinct_loopback_addresses() {
        assert_eq!(ip_of(1), Ipv4Addr::new(127, 0, 0, 11));
        assert!(ip_of(5).is_loopback());
    }
}
