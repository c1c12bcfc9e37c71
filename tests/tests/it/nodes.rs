//! Real `redraft` processes on loopback, for the cluster tests.
//!
//! A [`Cluster`] runs nodes of the `redraft` binary that `cargo build -p redraft` left in the
//! workspace's `target/debug/` (the Makefile builds it before the tests; `REDRAFT_BIN`
//! overrides the path). Each node listens on its own loopback address, `127.P.C.1N` for node
//! `N` of cluster `C` of a test process whose PID gives `P`, on ports the OS hands out, and keeps its data directory and its log
//! (stdout and stderr of every start, appended) under one temporary directory per cluster.
//!
//! Invariants the tests rely on:
//! - Every process is ended by its PID: `SIGKILL` through [`std::process::Child::kill`],
//!   `SIGTERM`/`SIGSTOP`/`SIGCONT` through `kill -s SIG PID`. Never by name.
//! - Dropping a [`Cluster`] kills and reaps every node it started. A [`Paused`] guard sends
//!   `SIGCONT` to the nodes it stopped when dropped, on success and on panic alike.
//! - Every wait polls with a deadline and fails with what it last saw; none sleeps to
//!   synchronize.
//! - When a test fails, the cluster's directory is kept and the end of every node's log is
//!   printed; when it passes, the directory is removed (kept with `REDRAFT_KEEP_CLUSTER=1`).
//! - Only one cluster runs at a time in this test binary ([`Cluster::start`] takes a lock):
//!   elections on two shared cores are timing-sensitive enough without a second cluster.

use redraft_tests::jepsen::db::tail;
use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use redis::Value;

use crate::harness::{error_text, show_cmd, show_value, Conn};
pub use redraft_tests::info::RaftInfo;

/// How long a control command (INFO, DEBUG DIGEST, a test's own SET or GET) may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a started process may take to answer PING.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// The pause between two polls of a condition.
const POLL: Duration = Duration::from_millis(50);

static ONE_CLUSTER_AT_A_TIME: Mutex<()> = Mutex::new(());
static NEXT_NET: AtomicU8 = AtomicU8::new(0);

/// The `redraft` binary: `$REDRAFT_BIN`, else `target/debug/redraft` beside this test binary
/// (which runs from `target/debug/deps/`). Panics with the command to build it if missing.
pub fn redraft_bin() -> PathBuf {
    if let Ok(p) = std::env::var("REDRAFT_BIN") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "REDRAFT_BIN={} is not a file", p.display());
        return p;
    }
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        if let Some(debug) = exe.parent().and_then(Path::parent) {
            candidates.push(debug.join("redraft"));
        }
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    if let Some(root) = manifest.parent() {
        candidates.push(root.join("target/debug/redraft"));
    }
    for c in &candidates {
        if c.is_file() {
            return c.clone();
        }
    }
    panic!(
        "the redraft binary is missing (looked at {}); build it first with \
         `cargo build -p redraft` (`make test` does), or point REDRAFT_BIN at it",
        candidates
            .iter()
            .map(|c| c.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
}

/// What every node of a cluster is started with, beyond its addresses.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// `--snapshot-logs N`: build a snapshot after every N applied entries.
    pub snapshot_logs: Option<u64>,
    /// `--read-consistency`: `linearizable` (the binary's default), `lease` or `stale`.
    pub read_consistency: Option<&'static str>,
    /// More flags for every node (`--unsafe skip-log-checks`, `--shutdown-timeout 5`);
    /// `{ip}` in one stands for the node's own IP address.
    pub extra: Vec<String>,
    /// `--raft-groups N`. `None` means one group: the stories of leaders, failover, faults
    /// and membership written for one group's leader (the binary's default, 16 groups,
    /// has its own stories in `cluster_protocol`).
    pub raft_groups: Option<u32>,
    /// How particular nodes are started, by id.
    pub wrap: BTreeMap<u64, Wrap>,
    /// The default user's password (an ACL file or `--requirepass` among `extra`):
    /// [`Cluster::conn_with_timeout`] signs in with it.
    pub password: Option<&'static str>,
}

/// A node started in a particular way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wrap {
    /// Its data directory is a tmpfs of this size (`"48m"`), mounted in a mount namespace of
    /// the node's own (`unshare --mount`), so it goes away with the process. Needs root.
    /// The test reaches it through `/proc/<pid>/root` ([`Node::data_in_namespace`]).
    Tmpfs(&'static str),
    /// It runs with this limit of open files (`ulimit -n`).
    NoFile(u64),
}

/// One `redraft` process (or the place for one, while it is down).
pub struct Node {
    pub id: u64,
    ip: Ipv4Addr,
    port: u16,
    grpc_port: u16,
    /// The command line, the same at every start (as a StatefulSet would run it).
    args: Vec<String>,
    log: PathBuf,
    data: PathBuf,
    wrap: Option<Wrap>,
    child: Option<Child>,
    starts: u32,
}

impl Node {
    /// The RESP address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((self.ip, self.port))
    }

    /// The gRPC address peers use (`host:port`).
    pub fn grpc_addr(&self) -> String {
        format!("{}:{}", self.ip, self.grpc_port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The node's data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// The data directory as the running process sees it: through `/proc/<pid>/root`, so
    /// a tmpfs mounted in the node's own mount namespace ([`Wrap::Tmpfs`]) is reachable.
    pub fn data_in_namespace(&self) -> Option<PathBuf> {
        let pid = self.pid()?;
        let relative = self.data.strip_prefix("/").unwrap_or(&self.data);
        Some(PathBuf::from(format!("/proc/{pid}/root")).join(relative))
    }

    /// Waits (at most `timeout`) for the process to exit by itself; its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut()?;
        let status = poll(timeout, || child.try_wait().ok().flatten());
        if status.is_some() {
            self.child = None;
        }
        status
    }

    /// Starts the process with its command line; its output goes to the end of its log.
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "node {} is already running", self.id);
        self.starts += 1;
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap_or_else(|e| panic!("open {}: {e}", self.log.display()));
        let _ = writeln!(
            log,
            "===== test harness: start #{} of node {}: {} {}",
            self.starts,
            self.id,
            redraft_bin().display(),
            self.args.join(" ")
        );
        let err = log.try_clone().expect("clone a log file handle");
        let bin = redraft_bin();
        let mut command = match &self.wrap {
            None => Command::new(&bin),
            Some(Wrap::Tmpfs(size)) => {
                let mut c = Command::new("unshare");
                c.args(["--mount", "--propagation", "private", "sh", "-c"])
                    .arg(format!(
                        "mkdir -p \"$1\" && mount -t tmpfs -o size={size} tmpfs \"$1\" && shift \
                         && exec \"$@\""
                    ))
                    .arg("sh")
                    .arg(&self.data)
                    .arg(&bin);
                c
            }
            Some(Wrap::NoFile(n)) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!("ulimit -n {n} && exec \"$@\""))
                    .arg("sh")
                    .arg(&bin);
                c
            }
        };
        let child = command
            .args(&self.args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", redraft_bin().display()));
        self.child = Some(child);
    }

    /// Polls PING until the node answers anything (a reply, even an error, means it is up).
    pub fn wait_ready(&mut self) {
        let mut last = String::from("nothing yet");
        let (id, addr, log) = (self.id, self.addr(), self.log.clone());
        let child = self.child.as_mut().expect("spawned");
        let mut exited = None;
        let ready = poll(START_TIMEOUT, || {
            if let Ok(Some(status)) = child.try_wait() {
                exited = Some(status);
                return Some(());
            }
            match Conn::try_connect(addr) {
                Ok(mut c) => {
                    let _ = c.writer().set_read_timeout(Some(Duration::from_secs(2)));
                    match c.call(&["PING"]) {
                        Ok(_) => return Some(()),
                        Err(e) => last = format!("PING: {e}"),
                    }
                }
                Err(e) => last = format!("connect: {e}"),
            }
            None
        });
        if let Some(status) = exited {
            self.child = None;
            panic!(
                "node {id} exited during start ({status}); its log ends:\n{}",
                tail(&log, 30)
            );
        }
        assert!(
            ready.is_some(),
            "node {id} on {addr} did not answer PING within {START_TIMEOUT:?} (last: {last})"
        );
    }

    /// SIGKILL by PID, then reap. Nothing happens if the node is down.
    fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends a signal (`sig` is `STOP`, `CONT` or `TERM`) to a node's PID.
    fn signal(pid: u32, sig: &str) -> Result<(), String> {
        let out = Command::new("kill")
            .args(["-s", sig, &pid.to_string()])
            .output()
            .map_err(|e| format!("run `kill -s {sig} {pid}`: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "`kill -s {sig} {pid}` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }
}

/// Nodes stopped with `SIGSTOP`; they get `SIGCONT` when this is dropped (or [`Paused::resume`]d).
pub struct Paused {
    pids: Vec<(u64, u32)>,
}

impl Paused {
    pub fn resume(mut self) {
        self.resume_all();
    }

    fn resume_all(&mut self) {
        for (id, pid) in self.pids.drain(..) {
            if let Err(e) = Node::signal(pid, "CONT") {
                eprintln!("could not resume node {id}: {e}");
            }
        }
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        self.resume_all();
    }
}

/// A set of `redraft` processes forming one cluster, killed when dropped.
pub struct Cluster {
    name: String,
    root: PathBuf,
    net: u8,
    options: Options,
    nodes: BTreeMap<u64, Node>,
    _one_at_a_time: MutexGuard<'static, ()>,
}

impl Cluster {
    /// Starts nodes `1..=n` with `--initial-cluster` naming all of them, waits until each
    /// answers PING and until they agree on a leader.
    pub fn start(name: &str, n: u64, options: Options) -> Cluster {
        Cluster::start_with(name, n, options, |_, _| Vec::new())
    }

    /// [`Cluster::start`], with more flags for each node from `flags(id, ip)`, called
    /// once its address is known (a certificate naming its IP, say).
    pub fn start_with(
        name: &str,
        n: u64,
        options: Options,
        mut flags: impl FnMut(u64, Ipv4Addr) -> Vec<String>,
    ) -> Cluster {
        let bin = redraft_bin();
        let guard = ONE_CLUSTER_AT_A_TIME
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let net = NEXT_NET.fetch_add(1, Ordering::Relaxed);
        let root = std::env::temp_dir().join(format!(
            "redraft-cluster-{}-{}-{name}",
            std::process::id(),
            net
        ));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).unwrap_or_else(|e| panic!("create {}: {e}", root.display()));
        eprintln!(
            "cluster `{name}`: {n} nodes of {} on 127.{}.{net}.x, files in {}",
            bin.display(),
            process_octet(),
            root.display()
        );
        let mut cluster = Cluster {
            name: name.to_string(),
            root,
            net,
            options,
            nodes: BTreeMap::new(),
            _one_at_a_time: guard,
        };
        let addrs: Vec<(u64, Ipv4Addr, u16, u16)> = (1..=n)
            .map(|id| {
                let ip = cluster.ip_of(id);
                let (port, grpc_port) = free_ports(ip);
                (id, ip, port, grpc_port)
            })
            .collect();
        let initial = addrs
            .iter()
            .map(|(id, ip, _, grpc)| format!("{id}={ip}:{grpc}"))
            .collect::<Vec<_>>()
            .join(",");
        for &(id, ip, port, grpc_port) in &addrs {
            let mut extra = vec!["--initial-cluster".to_string(), initial.clone()];
            extra.extend(flags(id, ip));
            cluster.add_node(id, ip, port, grpc_port, extra);
        }
        for node in cluster.nodes.values_mut() {
            node.spawn();
        }
        for node in cluster.nodes.values_mut() {
            node.wait_ready();
        }
        let ids = cluster.ids();
        cluster.wait_leader(&ids, Duration::from_secs(30));
        cluster
    }

    fn ip_of(&self, id: u64) -> Ipv4Addr {
        assert!(id < 140, "node ids up to 139 fit the address plan");
        Ipv4Addr::new(127, process_octet(), self.net, 10 + id as u8)
    }

    fn add_node(&mut self, id: u64, ip: Ipv4Addr, port: u16, grpc_port: u16, extra: Vec<String>) {
        let data = self.root.join(format!("node{id}"));
        let mut args: Vec<String> = vec![
            "--node-id".into(),
            id.to_string(),
            "--bind".into(),
            ip.to_string(),
            "--grpc-bind".into(),
            ip.to_string(),
            "--port".into(),
            port.to_string(),
            "--grpc-port".into(),
            grpc_port.to_string(),
            "--data-dir".into(),
            data.display().to_string(),
        ];
        args.extend(extra);
        if let Some(n) = self.options.snapshot_logs {
            args.extend(["--snapshot-logs".into(), n.to_string()]);
        }
        if let Some(rc) = self.options.read_consistency {
            args.extend(["--read-consistency".into(), rc.to_string()]);
        }
        let groups = self.options.raft_groups.unwrap_or(1);
        args.extend(["--raft-groups".into(), groups.to_string()]);
        args.extend(
            self.options
                .extra
                .iter()
                .map(|a| a.replace("{ip}", &ip.to_string())),
        );
        let node = Node {
            id,
            ip,
            port,
            grpc_port,
            args,
            log: self.root.join(format!("node{id}.log")),
            data,
            wrap: self.options.wrap.get(&id).cloned(),
            child: None,
            starts: 0,
        };
        self.nodes.insert(id, node);
    }

    pub fn node_mut(&mut self, id: u64) -> &mut Node {
        let name = self.name.clone();
        self.nodes
            .get_mut(&id)
            .unwrap_or_else(|| panic!("cluster `{name}` has no node {id}"))
    }

    pub fn node(&self, id: u64) -> &Node {
        self.nodes
            .get(&id)
            .unwrap_or_else(|| panic!("cluster `{}` has no node {id}", self.name))
    }

    /// Every node id this cluster knows, running or not.
    pub fn ids(&self) -> Vec<u64> {
        self.nodes.keys().copied().collect()
    }

    /// The ids of the nodes whose process is running.
    pub fn running(&self) -> Vec<u64> {
        self.nodes
            .values()
            .filter(|n| n.is_running())
            .map(|n| n.id)
            .collect()
    }

    pub fn addr(&self, id: u64) -> SocketAddr {
        self.node(id).addr()
    }

    pub fn addrs(&self, ids: &[u64]) -> Vec<SocketAddr> {
        ids.iter().map(|&id| self.addr(id)).collect()
    }

    /// What node `id` logged since its latest start.
    pub fn log_since_start(&self, id: u64) -> String {
        let node = self.node(id);
        let text = fs::read(&node.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_else(|e| panic!("read {}: {e}", node.log.display()));
        let marker = format!("===== test harness: start #{} ", node.starts);
        match text.rfind(&marker) {
            Some(at) => text[at..].to_string(),
            None => text,
        }
    }

    /// SIGKILL node `id` by PID.
    pub fn kill9(&mut self, id: u64) {
        let name = self.name.clone();
        let node = self
            .nodes
            .get_mut(&id)
            .unwrap_or_else(|| panic!("cluster `{name}` has no node {id}"));
        assert!(node.is_running(), "node {id} is not running");
        node.kill9();
    }

    /// Sends `sig` (`TERM`, `STOP`, `CONT`) to node `id` by PID.
    pub fn signal(&self, id: u64, sig: &str) {
        let pid = self
            .node(id)
            .pid()
            .unwrap_or_else(|| panic!("node {id} is not running"));
        if let Err(e) = Node::signal(pid, sig) {
            panic!("signal node {id}: {e}");
        }
    }

    /// SIGTERM node `id` by PID and waits (at most `timeout`) for it to exit; its status.
    /// Past the timeout the node is killed and the test fails.
    pub fn terminate(&mut self, id: u64, timeout: Duration) -> std::process::ExitStatus {
        let name = self.name.clone();
        let node = self
            .nodes
            .get_mut(&id)
            .unwrap_or_else(|| panic!("cluster `{name}` has no node {id}"));
        let pid = node
            .pid()
            .unwrap_or_else(|| panic!("node {id} is not running"));
        if let Err(e) = Node::signal(pid, "TERM") {
            panic!("terminate node {id}: {e}");
        }
        let child = node.child.as_mut().expect("running");
        let status = poll(timeout, || child.try_wait().ok().flatten());
        match status {
            Some(status) => {
                node.child = None;
                status
            }
            None => {
                node.kill9();
                panic!("node {id} did not exit within {timeout:?} of SIGTERM");
            }
        }
    }

    /// SIGKILL every running node before reaping any, so they die within microseconds of
    /// each other.
    pub fn kill9_all(&mut self) {
        let mut children: Vec<Child> = self
            .nodes
            .values_mut()
            .filter_map(|n| n.child.take())
            .collect();
        for c in &mut children {
            let _ = c.kill();
        }
        for c in &mut children {
            let _ = c.wait();
        }
    }

    /// Starts node `id` again with its original command line and waits until it answers.
    pub fn restart(&mut self, id: u64) {
        let name = self.name.clone();
        let node = self
            .nodes
            .get_mut(&id)
            .unwrap_or_else(|| panic!("cluster `{name}` has no node {id}"));
        node.spawn();
        node.wait_ready();
    }

    /// Starts stopped node `id` again on another RESP port, as a pod restarted with a new
    /// address (same data, same gRPC address), and waits until it answers.
    pub fn restart_on_new_port(&mut self, id: u64) {
        let node = self.nodes.get_mut(&id).expect("known node");
        let (port, _) = free_ports(node.ip);
        let at = node
            .args
            .iter()
            .position(|a| a == "--port")
            .expect("a --port argument");
        node.args[at + 1] = port.to_string();
        node.port = port;
        node.spawn();
        node.wait_ready();
    }

    /// Changes the `--raft-groups` node `id` starts with from now on.
    pub fn set_raft_groups(&mut self, id: u64, groups: u32) {
        self.set_arg(id, "--raft-groups", &groups.to_string());
    }

    /// Makes node `id` start with `flag value` from now on (replacing the flag's value if
    /// its command line has the flag, else adding it).
    pub fn set_arg(&mut self, id: u64, flag: &str, value: &str) {
        let node = self.nodes.get_mut(&id).expect("known node");
        match node.args.iter().position(|a| a == flag) {
            Some(at) => node.args[at + 1] = value.to_string(),
            None => node.args.extend([flag.to_string(), value.to_string()]),
        }
    }

    /// Starts several stopped nodes at once, then waits until each answers.
    pub fn restart_all(&mut self, ids: &[u64]) {
        for id in ids {
            self.nodes.get_mut(id).expect("known node").spawn();
        }
        for id in ids {
            self.nodes.get_mut(id).expect("known node").wait_ready();
        }
    }

    /// Starts a new node `id` with `--join` pointing at node `via`'s gRPC address, and waits
    /// until it answers PING (not until it is a member: poll [`Cluster::raft_info`] for that).
    pub fn join(&mut self, id: u64, via: u64) {
        assert!(!self.nodes.contains_key(&id), "node {id} exists already");
        let ip = self.ip_of(id);
        let (port, grpc_port) = free_ports(ip);
        let extra = vec!["--join".to_string(), self.node(via).grpc_addr()];
        self.add_node(id, ip, port, grpc_port, extra);
        self.restart(id);
    }

    /// Starts node `id` (down, and forgotten by the cluster) again with an empty data
    /// directory and `--join` through node `via`, and waits until it answers.
    pub fn rejoin_empty(&mut self, id: u64, via: u64) {
        let join = self.node(via).grpc_addr();
        let node = self.node_mut(id);
        assert!(!node.is_running(), "node {id} is running");
        let _ = fs::remove_dir_all(&node.data);
        let mut args = Vec::new();
        let mut it = node.args.iter();
        while let Some(a) = it.next() {
            if a == "--initial-cluster" || a == "--join" {
                it.next();
            } else {
                args.push(a.clone());
            }
        }
        args.extend(["--join".to_string(), join]);
        node.args = args;
        self.restart(id);
    }

    /// Kills node `id` and forgets it (after `CLUSTER FORGET`); its log stays on disk.
    pub fn discard(&mut self, id: u64) {
        if let Some(mut node) = self.nodes.remove(&id) {
            node.kill9();
        }
    }

    /// SIGSTOPs the nodes; they get SIGCONT when the returned guard is dropped.
    pub fn pause(&self, ids: &[u64]) -> Paused {
        let mut paused = Paused { pids: Vec::new() };
        for &id in ids {
            let pid = self
                .node(id)
                .pid()
                .unwrap_or_else(|| panic!("node {id} is not running"));
            // Recorded before the signal: a resume of a running process is harmless.
            paused.pids.push((id, pid));
            if let Err(e) = Node::signal(pid, "STOP") {
                panic!("pause node {id}: {e}");
            }
        }
        paused
    }

    /// A connection to node `id` whose replies may take up to `timeout`.
    pub fn conn_with_timeout(&self, id: u64, timeout: Duration) -> Result<Conn, String> {
        let addr = self.addr(id);
        let mut c =
            Conn::try_connect(addr).map_err(|e| format!("connect to node {id} ({addr}): {e}"))?;
        c.writer()
            .set_read_timeout(Some(timeout))
            .map_err(|e| format!("set a read timeout: {e}"))?;
        if let Some(password) = self.options.password {
            c.call(&["AUTH", password])
                .map_err(|e| format!("sign in to node {id}: {e}"))?;
        }
        Ok(c)
    }

    /// One command on a fresh connection to node `id`: its reply, or what went wrong on the way.
    pub fn try_call(&self, id: u64, args: &[&str]) -> Result<Value, String> {
        let mut c = self.conn_with_timeout(id, CALL_TIMEOUT)?;
        c.call(args)
            .map_err(|e| format!("node {id}: `{}`: {e}", show_cmd(args)))
    }

    /// One command on node `id` that must get a non-error reply.
    pub fn call(&self, id: u64, args: &[&str]) -> Value {
        match self.try_call(id, args) {
            Ok(v) if error_text(&v).is_none() => v,
            Ok(v) => panic!("node {id}: `{}` -> {}", show_cmd(args), show_value(&v)),
            Err(e) => panic!("{e}"),
        }
    }

    /// `INFO replication` of node `id`, parsed. An error when the node does not answer;
    /// a panic when its answer lacks the Raft fields (a binary without Raft).
    pub fn raft_info(&self, id: u64) -> Result<RaftInfo, String> {
        let text = match self.try_call(id, &["INFO", "replication"])? {
            Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
            Value::VerbatimString { text, .. } => text,
            other => {
                return Err(format!(
                    "node {id}: INFO replication -> {}",
                    show_value(&other)
                ))
            }
        };
        Ok(RaftInfo::parse(&text).unwrap_or_else(|e| {
            panic!(
                "node {id}: {e} (is {} built with Raft?)",
                redraft_bin().display()
            )
        }))
    }

    /// Polls until every node in `ids` names the same leader, one of `ids`, and that node
    /// says it is the leader; returns its id.
    pub fn wait_leader(&self, ids: &[u64], timeout: Duration) -> u64 {
        let mut last = String::new();
        match poll(timeout, || {
            let infos: Vec<(u64, Result<RaftInfo, String>)> =
                ids.iter().map(|&id| (id, self.raft_info(id))).collect();
            last = infos
                .iter()
                .map(|(id, i)| match i {
                    Ok(i) => format!(
                        "node {id}: {} term {} leader {:?}",
                        i.role, i.term, i.leader
                    ),
                    Err(e) => format!("node {id}: {e}"),
                })
                .collect::<Vec<_>>()
                .join("; ");
            let mut leader = None;
            for (id, info) in &infos {
                let info = info.as_ref().ok()?;
                let l = info.leader?;
                if leader.is_some_and(|x| x != l) {
                    return None;
                }
                leader = Some(l);
                if l == *id && info.role != "leader" {
                    return None;
                }
            }
            leader.filter(|l| ids.contains(l))
        }) {
            Some(l) => l,
            None => {
                panic!("no leader agreed on by nodes {ids:?} within {timeout:?}; last seen: {last}")
            }
        }
    }

    /// `DEBUG DIGEST` of node `id`: 40 hex characters.
    pub fn digest(&self, id: u64) -> Result<String, String> {
        let v = self.try_call(id, &["DEBUG", "DIGEST"])?;
        let s = match &v {
            Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
            Value::SimpleString(s) => s.clone(),
            other => return Err(format!("node {id}: DEBUG DIGEST -> {}", show_value(other))),
        };
        if s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(s)
        } else {
            Err(format!(
                "node {id}: DEBUG DIGEST -> {s:?}, not 40 hex characters"
            ))
        }
    }

    /// Polls until every node in `ids` has the same `DEBUG DIGEST`; returns it.
    pub fn wait_converged(&self, ids: &[u64], timeout: Duration) -> String {
        let mut last = String::new();
        let got = poll(timeout, || {
            let digests: Vec<(u64, Result<String, String>)> =
                ids.iter().map(|&id| (id, self.digest(id))).collect();
            last = digests
                .iter()
                .map(|(id, d)| match (d, self.raft_info(*id)) {
                    (Ok(d), Ok(i)) => format!(
                        "node {id}: {d} (applied {}, commit {}, snapshot {})",
                        i.applied, i.commit, i.last_snapshot
                    ),
                    (Ok(d), Err(_)) => format!("node {id}: {d}"),
                    (Err(e), _) => e.clone(),
                })
                .collect::<Vec<_>>()
                .join("; ");
            let first = digests.first()?.1.as_ref().ok()?.clone();
            digests
                .iter()
                .all(|(_, d)| d.as_ref().ok() == Some(&first))
                .then_some(first)
        });
        got.unwrap_or_else(|| {
            panic!("nodes {ids:?} did not converge within {timeout:?}; last digests: {last}")
        })
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in self.nodes.values_mut() {
            node.kill9();
        }
        if thread::panicking() {
            eprintln!(
                "cluster `{}` failed; its files stay in {}",
                self.name,
                self.root.display()
            );
            let mut logs: Vec<PathBuf> = fs::read_dir(&self.root)
                .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
                .unwrap_or_default();
            logs.retain(|p| p.extension().is_some_and(|e| e == "log"));
            logs.sort();
            for log in logs {
                eprintln!("----- end of {} -----\n{}", log.display(), tail(&log, 40));
            }
        } else if std::env::var_os("REDRAFT_KEEP_CLUSTER").is_some() {
            eprintln!(
                "cluster `{}`: files kept in {}",
                self.name,
                self.root.display()
            );
        } else {
            let _ = fs::remove_dir_all(&self.root);
        }
    }
}

/// The second octet of this test process's node addresses, from its PID (1 to 250), so two
/// test processes on one machine use different addresses.
fn process_octet() -> u8 {
    1 + (std::process::id() % 250) as u8
}

/// Calls `f` until it returns `Some`, at most until `timeout` has passed; `None` then.
pub fn poll<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    // Bounded in count too: a poll never runs more than once per POLL.
    let max_rounds = (timeout.as_millis() / POLL.as_millis()).max(1) + 1;
    for _ in 0..max_rounds {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(POLL);
    }
    None
}

/// Two distinct ports nobody listens on right now at `ip` (both held until both are chosen).
pub fn free_ports(ip: Ipv4Addr) -> (u16, u16) {
    let bind = || TcpListener::bind((ip, 0)).unwrap_or_else(|e| panic!("bind {ip}:0: {e}"));
    let (a, b) = (bind(), bind());
    let port = |l: &TcpListener| l.local_addr().expect("local addr").port();
    (port(&a), port(&b))
}
