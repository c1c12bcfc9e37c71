//! The suite: starts each system under test in turn on loopback, loads its key space, drives
//! it with the load generator (and redis-benchmark for the Redis-protocol systems), measures
//! memory, restart and failover, stops it and removes its data, then writes the report
//! (Markdown, JSON, SVG plots) into a run directory.
//!
//! Invariants: one system runs at a time, so systems never compete with each other for the
//! two cores; every system's data lives under the run directory and is removed when the
//! system stops; every wait is bounded by a deadline; addresses are 127.0.0.1 and
//! 127.0.0.5x/6x, ports 20000-20999 only.

use crate::client::{self, Target};
use crate::load::{self, Spec};
use crate::procs::{self, MemberSpec, Proc};
use anyhow::{bail, Context, Result};
use redraft_bench::cpu::{self, Whose};
use redraft_bench::redis_benchmark;
use redraft_bench::report::{Crosscheck, Figure, Op, Point, Report, System, Workload};
use redraft_bench::stats::median;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The systems the suite knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    RedisNone,
    RedisEverysec,
    RedisAlways,
    Etcd3,
    Redraft1,
    Redraft3,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::RedisNone,
        Kind::RedisEverysec,
        Kind::RedisAlways,
        Kind::Etcd3,
        Kind::Redraft1,
        Kind::Redraft3,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Kind::RedisNone => "redis-none",
            Kind::RedisEverysec => "redis-everysec",
            Kind::RedisAlways => "redis-always",
            Kind::Etcd3 => "etcd-3",
            Kind::Redraft1 => "redraft-1",
            Kind::Redraft3 => "redraft-3",
        }
    }

    pub fn parse(id: &str) -> Result<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.id() == id)
            .with_context(|| {
                let ids: Vec<_> = Kind::ALL.iter().map(|k| k.id()).collect();
                format!("unknown system {id:?}; known: {}", ids.join(", "))
            })
    }

    fn system(self) -> System {
        let (label, resp, consensus) = match self {
            Kind::RedisNone => ("redis-server, no persistence", true, false),
            Kind::RedisEverysec => ("redis-server, appendfsync everysec", true, false),
            Kind::RedisAlways => ("redis-server, appendfsync always", true, false),
            Kind::Etcd3 => ("etcd, three members", false, true),
            Kind::Redraft1 => ("redraft, one node", true, true),
            Kind::Redraft3 => ("redraft, three nodes", true, true),
        };
        System {
            id: self.id().into(),
            label: label.into(),
            resp,
            consensus,
        }
    }

    fn members(self) -> usize {
        match self {
            Kind::Etcd3 | Kind::Redraft3 => 3,
            _ => 1,
        }
    }

    /// Has its data on disk, so a restart has something to load.
    fn restartable(self) -> bool {
        !matches!(self, Kind::RedisNone)
    }
}

/// What one run measures.
#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    pub systems: Vec<Kind>,
    /// Per value size, the workloads run after loading the key space with values of that
    /// size.
    pub phases: Vec<(usize, Vec<Workload>)>,
    /// Key space of the load points.
    pub keys: u64,
    /// Each point stops after this many requests or `seconds`, whichever comes first.
    pub max_requests: u64,
    pub seconds: f64,
    pub crosscheck: bool,
    /// Memory, restart and failover figures.
    pub figures: bool,
    /// Keys loaded for the memory and the second restart figure.
    pub big_keys: u64,
    pub failover_tries: usize,
}

fn w(op: Op, value_size: usize, clients: usize, pipeline: usize) -> Workload {
    Workload {
        op,
        value_size,
        clients,
        pipeline,
    }
}

impl Plan {
    /// Everything the issue asks for.
    pub fn full() -> Plan {
        let mut small = Vec::new();
        for clients in [1, 10, 50, 200] {
            small.push(w(Op::Set, 16, clients, 1));
            small.push(w(Op::Get, 16, clients, 1));
        }
        small.push(w(Op::Set, 16, 50, 16));
        small.push(w(Op::Get, 16, 50, 16));
        small.push(w(Op::Mix, 16, 50, 1));
        let sized = |size| vec![w(Op::Set, size, 50, 1), w(Op::Get, size, 50, 1)];
        Plan {
            name: "full".into(),
            systems: Kind::ALL.to_vec(),
            phases: vec![(16, small), (256, sized(256)), (4096, sized(4096))],
            keys: 100_000,
            max_requests: 2_000_000,
            seconds: 2.0,
            crosscheck: true,
            figures: true,
            big_keys: 1_000_000,
            failover_tries: 10,
        }
    }

    /// The headline rows: redraft (three nodes) against Redis `appendfsync always` and the
    /// three-member etcd, SET and GET at 50 clients, pipeline 1 and 16.
    pub fn quick() -> Plan {
        Plan {
            name: "quick".into(),
            systems: vec![Kind::RedisAlways, Kind::Etcd3, Kind::Redraft3],
            phases: vec![(
                16,
                vec![
                    w(Op::Set, 16, 50, 1),
                    w(Op::Get, 16, 50, 1),
                    w(Op::Set, 16, 50, 16),
                    w(Op::Get, 16, 50, 16),
                ],
            )],
            figures: false,
            ..Plan::full()
        }
    }

    /// A few seconds: proves the load generator, the cross-check and the table end to end.
    pub fn smoke() -> Plan {
        Plan {
            name: "smoke".into(),
            systems: vec![Kind::RedisAlways, Kind::Redraft1],
            phases: vec![(16, vec![w(Op::Set, 16, 4, 1), w(Op::Get, 16, 4, 4)])],
            keys: 1000,
            max_requests: 2000,
            seconds: 1.0,
            figures: false,
            ..Plan::full()
        }
    }
}

/// Programs and places.
#[derive(Debug, Clone)]
pub struct Env {
    pub out: PathBuf,
    pub redraft: PathBuf,
}

struct Programs {
    redis_server: Option<PathBuf>,
    redis_benchmark: Option<PathBuf>,
    etcd: Option<PathBuf>,
    redraft: Option<PathBuf>,
}

/// One system, running.
struct Sys {
    kind: Kind,
    dir: PathBuf,
    specs: Vec<MemberSpec>,
    procs: Vec<Option<Proc>>,
    targets: Vec<Target>,
}

const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
const POLL: Duration = Duration::from_millis(10);

impl Sys {
    fn start(kind: Kind, programs: &Programs, root: &Path) -> Result<Sys> {
        let dir = root.join(kind.id());
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let missing = |what: &str| anyhow::anyhow!("{what} is missing");
        let mut specs = Vec::new();
        let mut targets = Vec::new();
        match kind {
            Kind::RedisNone | Kind::RedisEverysec | Kind::RedisAlways => {
                let (port, aof): (u16, &[&str]) = match kind {
                    Kind::RedisNone => (20001, &["--appendonly", "no"]),
                    Kind::RedisEverysec => {
                        (20002, &["--appendonly", "yes", "--appendfsync", "everysec"])
                    }
                    _ => (20003, &["--appendonly", "yes", "--appendfsync", "always"]),
                };
                let mut args: Vec<String> = [
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    &port.to_string(),
                    "--save",
                    "",
                    "--dir",
                    &dir.display().to_string(),
                    "--daemonize",
                    "no",
                ]
                .iter()
                .map(|s| s.to_string())
                .collect();
                args.extend(aof.iter().map(|s| s.to_string()));
                specs.push(MemberSpec {
                    program: programs
                        .redis_server
                        .clone()
                        .ok_or_else(|| missing("redis-server"))?,
                    args,
                    env: vec![],
                    log: dir.join("redis.log"),
                });
                targets.push(Target::Resp(SocketAddr::from(([127, 0, 0, 1], port))));
            }
            Kind::Etcd3 => {
                let etcd = programs.etcd.clone().ok_or_else(|| missing("etcd"))?;
                let peers: Vec<String> = (1..=3)
                    .map(|i| format!("m{i}=http://127.0.0.5{i}:20380"))
                    .collect();
                for i in 1..=3 {
                    let client = format!("http://127.0.0.5{i}:20379");
                    let peer = format!("http://127.0.0.5{i}:20380");
                    let args = [
                        "--name",
                        &format!("m{i}"),
                        "--data-dir",
                        &dir.join(format!("m{i}")).display().to_string(),
                        "--listen-client-urls",
                        &client,
                        "--advertise-client-urls",
                        &client,
                        "--listen-peer-urls",
                        &peer,
                        "--initial-advertise-peer-urls",
                        &peer,
                        "--initial-cluster",
                        &peers.join(","),
                        "--initial-cluster-state",
                        "new",
                        "--initial-cluster-token",
                        "redraft-bench",
                        // 8 GiB, etcd's largest recommended quota: the 4 KiB-value phase
                        // writes a few GiB of revisions.
                        "--quota-backend-bytes",
                        "8589934592",
                        "--logger",
                        "zap",
                        "--log-level",
                        "warn",
                    ];
                    specs.push(MemberSpec {
                        program: etcd.clone(),
                        args: args.iter().map(|s| s.to_string()).collect(),
                        env: vec![],
                        log: dir.join(format!("m{i}.log")),
                    });
                    targets.push(Target::Etcd(client));
                }
            }
            Kind::Redraft1 | Kind::Redraft3 => {
                let redraft = programs.redraft.clone().ok_or_else(|| missing("redraft"))?;
                let n = kind.members();
                let base = if n == 1 { 20630 } else { 20610 };
                let initial: Vec<String> = (1..=n)
                    .map(|i| format!("{i}=127.0.0.6{i}:{}", base + 10 + i))
                    .collect();
                for i in 1..=n {
                    let host = format!("127.0.0.6{i}");
                    let port = (base + i) as u16;
                    let mut args: Vec<String> = [
                        "--node-id",
                        &i.to_string(),
                        "--bind",
                        &host,
                        "--grpc-bind",
                        &host,
                        "--port",
                        &port.to_string(),
                        "--grpc-port",
                        &(base + 10 + i).to_string(),
                        "--data-dir",
                        &dir.join(format!("n{i}")).display().to_string(),
                    ]
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
                    if n > 1 {
                        args.push("--initial-cluster".into());
                        args.push(initial.join(","));
                    }
                    specs.push(MemberSpec {
                        program: redraft.clone(),
                        args,
                        env: vec![("RUST_LOG".into(), "warn".into())],
                        log: dir.join(format!("n{i}.log")),
                    });
                    targets.push(Target::Resp(format!("{host}:{port}").parse()?));
                }
            }
        }
        let mut procs = Vec::new();
        for s in &specs {
            procs.push(Some(Proc::spawn(s)?));
        }
        Ok(Sys {
            kind,
            dir,
            specs,
            procs,
            targets,
        })
    }

    /// Waits until a write through the first member succeeds and every member answers a read.
    async fn wait_ready(&mut self, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        for i in 0..self.targets.len() {
            self.wait_serves(i, deadline, i == 0).await?;
        }
        Ok(())
    }

    /// Polls member `i` until it answers (a write if `write`, else a read of the probe key).
    async fn wait_serves(&mut self, i: usize, deadline: Instant, write: bool) -> Result<()> {
        let target = self.targets[i].clone();
        loop {
            let ok = if write {
                client::write_once(&target, "bench:probe", b"1", PROBE_TIMEOUT)
                    .await
                    .is_ok()
            } else {
                client::read_once(&target, "bench:probe", 1, PROBE_TIMEOUT)
                    .await
                    .unwrap_or(false)
            };
            if ok {
                return Ok(());
            }
            self.check_alive(i)?;
            if Instant::now() > deadline {
                bail!(
                    "{} member {} did not serve in time; see {}",
                    self.kind.id(),
                    i + 1,
                    self.specs[i].log.display()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// For a redraft cluster with several groups: waits until every group has a leader
    /// and no member leads more than one group more than another (the balancer's goal).
    /// Other systems, and one group, return at once.
    async fn wait_leaders_even(&mut self, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            let mut counts = Vec::new();
            for target in &self.targets {
                let Target::Resp(addr) = target else {
                    return Ok(());
                };
                match client::redraft_leadership(*addr, PROBE_TIMEOUT).await {
                    Ok((groups, _, _)) if groups <= 1 => return Ok(()),
                    Ok((groups, led, without)) => counts.push((groups, led, without)),
                    Err(_) => break,
                }
            }
            if counts.len() == self.targets.len() {
                let groups = counts[0].0;
                let led: Vec<usize> = counts.iter().map(|c| c.1).collect();
                let (min, max) = (led.iter().min(), led.iter().max());
                if led.iter().sum::<usize>() == groups
                    && counts.iter().all(|c| c.2 == 0)
                    && max.zip(min).is_some_and(|(max, min)| max - min <= 1)
                {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "{}: the leaders were not even within {limit:?}: {counts:?}",
                    self.kind.id()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    fn check_alive(&mut self, i: usize) -> Result<()> {
        if let Some(p) = self.procs[i].as_mut() {
            if let Some(status) = p.exited() {
                bail!(
                    "{} member {} exited ({status}); see {}",
                    self.kind.id(),
                    i + 1,
                    self.specs[i].log.display()
                );
            }
        }
        Ok(())
    }

    /// The index of the current leader (0 for a single process), waiting for one.
    async fn leader(&self, limit: Duration) -> Result<usize> {
        if self.targets.len() == 1 {
            return Ok(0);
        }
        let deadline = Instant::now() + limit;
        loop {
            for (i, t) in self.targets.iter().enumerate() {
                if self.procs[i].is_none() {
                    continue;
                }
                match (self.kind, t) {
                    (Kind::Etcd3, Target::Etcd(url)) => {
                        let Ok((_, leader)) = client::etcd_status(url, PROBE_TIMEOUT).await else {
                            continue;
                        };
                        if leader == 0 {
                            continue;
                        }
                        for (j, tj) in self.targets.iter().enumerate() {
                            if let (Some(_), Target::Etcd(u)) = (&self.procs[j], tj) {
                                if let Ok((me, _)) = client::etcd_status(u, PROBE_TIMEOUT).await {
                                    if me == leader {
                                        return Ok(j);
                                    }
                                }
                            }
                        }
                    }
                    (_, Target::Resp(addr)) => {
                        if let Ok(Some(id)) = client::redraft_leader(*addr, PROBE_TIMEOUT).await {
                            let j = (id as usize).wrapping_sub(1);
                            if j < self.targets.len() && self.procs[j].is_some() {
                                return Ok(j);
                            }
                        }
                    }
                    _ => {}
                }
            }
            if Instant::now() > deadline {
                bail!("{}: no leader in {limit:?}", self.kind.id());
            }
            tokio::time::sleep(POLL).await;
        }
    }

    fn kill9(&mut self, i: usize) {
        if let Some(p) = self.procs[i].take() {
            p.kill9();
        }
    }

    fn respawn(&mut self, i: usize) -> Result<()> {
        self.procs[i] = Some(Proc::spawn(&self.specs[i])?);
        Ok(())
    }

    fn rss_mib(&self) -> Result<f64> {
        let mut kib = 0;
        for p in self.procs.iter().flatten() {
            kib += p.rss_kib()?;
        }
        Ok(kib as f64 / 1024.0)
    }

    fn stop(mut self) {
        for p in &mut self.procs {
            if let Some(p) = p.take() {
                p.kill9();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Loads keys `0..count` with values of `size` bytes (deep pipelines, many connections).
async fn fill(target: &Target, count: u64, size: usize) -> Result<()> {
    let spec = Spec {
        workload: w(Op::Set, size, 16, 64),
        keys: count,
        requests: count,
        max_time: Duration::from_secs(900),
        sequential: true,
        seed: 0,
    };
    let s = load::run(target, &spec).await?;
    if s.errors > 0 || s.requests < count {
        bail!(
            "loading {count} keys into {target}: {} errors, {} loaded",
            s.errors,
            s.requests
        );
    }
    Ok(())
}

fn run_redis_benchmark(
    program: &Path,
    target: &Target,
    wl: &Workload,
    keys: u64,
    requests: u64,
) -> Result<Option<redraft_bench::report::Crosscheck>> {
    let Target::Resp(addr) = target else {
        return Ok(None);
    };
    let Some(args) = redis_benchmark::args(&addr.ip().to_string(), addr.port(), wl, keys, requests)
    else {
        return Ok(None);
    };
    // A hung server must not hang the suite: coreutils' timeout bounds it.
    let cpu_before = cpu::seconds(Whose::Children);
    let started = Instant::now();
    let out = std::process::Command::new("timeout")
        .arg("300")
        .arg(program)
        .args(&args)
        .output()
        .context("running redis-benchmark")?;
    let wall = started.elapsed().as_secs_f64();
    let test = redis_benchmark::test_name(wl.op).unwrap_or("set");
    let mut check = redis_benchmark::parse_csv(&String::from_utf8_lossy(&out.stdout), test)?;
    check.cpu = match (cpu_before, cpu::seconds(Whose::Children)) {
        (Some(before), Some(after)) if wall > 0.0 => Some((after - before) / wall),
        _ => None,
    };
    Ok(Some(check))
}

/// Awaits `run` and returns its output with this process's CPU seconds and the wall
/// seconds it took (`None` if `/proc` cannot tell).
async fn measure_cpu<T>(run: impl std::future::Future<Output = T>) -> (T, Option<(f64, f64)>) {
    let before = cpu::seconds(Whose::Own);
    let started = Instant::now();
    let out = run.await;
    let wall = started.elapsed().as_secs_f64();
    let spent = before
        .zip(cpu::seconds(Whose::Own))
        .map(|(b, a)| (a - b, wall));
    (out, spent)
}

/// Runs the plan; returns the report (also written into `env.out`).
pub async fn run(plan: &Plan, env: &Env, command: String) -> Result<Report> {
    std::fs::create_dir_all(&env.out).with_context(|| format!("creating {}", env.out.display()))?;
    let out = env.out.canonicalize()?;
    let data_root = out.join("data");
    std::fs::create_dir_all(&data_root)?;
    let mut report = Report {
        command,
        started: crate::machine::now_utc(),
        ..Report::default()
    };
    let find = |p: &str, pkg: &str, report: &mut Report| match procs::find_program(p, pkg) {
        Ok(p) => Some(p),
        Err(e) => {
            report.skipped.push(format!("{e:#}"));
            None
        }
    };
    let programs = Programs {
        redis_server: find("redis-server", "redis-server", &mut report),
        redis_benchmark: if plan.crosscheck {
            find("redis-benchmark", "redis-tools", &mut report)
        } else {
            None
        },
        etcd: if plan.systems.contains(&Kind::Etcd3) {
            find("etcd", "etcd-server", &mut report)
        } else {
            None
        },
        redraft: find(&env.redraft.display().to_string(), "", &mut report),
    };
    report.machine = crate::machine::describe(&data_root, &programs.versions())?;
    report.notes = notes(plan);
    for &kind in &plan.systems {
        eprintln!("== {} ==", kind.id());
        let sys = report.systems.len();
        report.systems.push(kind.system());
        match measure(kind, plan, &programs, &data_root, &mut report).await {
            Ok(()) => {}
            Err(e) => {
                eprintln!("{}: {e:#}", kind.id());
                report.skipped.push(format!("{}: {e:#}", kind.id()));
                if !report.points.iter().any(|p| p.system == kind.id()) {
                    report.systems.remove(sys);
                }
            }
        }
        // Partial results survive a later failure.
        write_outputs(&report, &out)?;
    }
    let _ = std::fs::remove_dir_all(&data_root);
    write_outputs(&report, &out)?;
    let plots = redraft_bench::plot::write_all(&report, &out)?;
    eprintln!("wrote {} plots into {}", plots.len(), out.display());
    Ok(report)
}

impl Programs {
    fn versions(&self) -> Vec<(String, String)> {
        let mut v = Vec::new();
        if let Some(p) = &self.redis_server {
            v.push(("redis-server".into(), procs::first_line(p, &["--version"])));
        }
        if let Some(p) = &self.etcd {
            let line = procs::first_line(p, &["--version"]);
            let version = line.strip_prefix("etcd Version:").unwrap_or(&line).trim();
            v.push(("etcd".into(), version.to_string()));
        }
        if let Some(p) = &self.redraft {
            v.push((
                "redraft".into(),
                format!("{} ({})", crate::machine::git_head(), p.display()),
            ));
        }
        v
    }
}

fn notes(plan: &Plan) -> Vec<String> {
    vec![
        format!(
            "Method ({} plan): systems run one at a time on loopback. Each point runs twice, up to {} requests or {} s each, whichever comes first, after half a second of warm-up (for Redis-protocol systems interleaved with two redis-benchmark runs: ours, redis-benchmark, redis-benchmark, ours; each redis-benchmark run as many requests as the first run of ours completed), over {} random keys `key:%012d` loaded beforehand with values of the point's size; redis-benchmark runs the same workload (`-c -P -d -r 100000`). Latency is from sending a batch to its reply (HDR histogram, 3 significant digits). Clients talk to the leader. etcd has no pipelining: its `P16` rows run 16 concurrent unary gRPC calls per connection (HTTP/2 streams), its reads are linearizable Range calls (`serializable=false`), as redraft's default reads are.",
            plan.name, plan.max_requests, plan.seconds, plan.keys
        ),
        "Memory is VmRSS summed over a system's processes after loading the keys (three processes for etcd-3 and redraft-3). Restart: kill -9 of one member (a follower in a cluster), then the time from starting it again until it answers a GET of a loaded key. Failover: kill -9 of the leader, then the time until a write through a surviving member succeeds (each system with its default timing: etcd heartbeat 100 ms / election 1000 ms, redraft heartbeat 50 ms, election after 3-6 missed heartbeats).".into(),
    ]
}

fn write_outputs(report: &Report, out: &Path) -> Result<()> {
    std::fs::write(out.join("report.md"), report.markdown())?;
    std::fs::write(
        out.join("report.json"),
        serde_json::to_string_pretty(report)?,
    )?;
    Ok(())
}

async fn measure(
    kind: Kind,
    plan: &Plan,
    programs: &Programs,
    data_root: &Path,
    report: &mut Report,
) -> Result<()> {
    let mut sys = Sys::start(kind, programs, data_root)?;
    let result = load_points(&mut sys, plan, programs, report).await;
    sys.stop();
    result?;
    if plan.figures {
        let mut sys = Sys::start(kind, programs, data_root)?;
        let result = figures(&mut sys, plan, report).await;
        sys.stop();
        result?;
    }
    Ok(())
}

async fn load_points(
    sys: &mut Sys,
    plan: &Plan,
    programs: &Programs,
    report: &mut Report,
) -> Result<()> {
    sys.wait_ready(Duration::from_secs(60)).await?;
    let leader = sys.leader(Duration::from_secs(30)).await?;
    let target = sys.targets[leader].clone();
    for (size, workloads) in &plan.phases {
        eprintln!("{}: loading {} keys of {size} B", sys.kind.id(), plan.keys);
        fill(&target, plan.keys, *size).await?;
        for wl in workloads {
            let spec = Spec {
                workload: *wl,
                keys: plan.keys,
                requests: plan.max_requests,
                max_time: Duration::from_secs_f64(plan.seconds),
                sequential: false,
                seed: 7,
            };
            // Half a second of the same workload first, not counted: connections, caches and
            // the disk settle after the load.
            let warm = Spec {
                max_time: Duration::from_millis(500),
                ..spec.clone()
            };
            load::run(&target, &warm).await?;
            let rb_program = programs
                .redis_benchmark
                .as_ref()
                .filter(|_| sys.kind.system().resp && redis_benchmark::test_name(wl.op).is_some());
            // Cores the load generator kept busy over its runs (when cross-checked).
            let mut ours_cpu = None;
            let (ours, crosscheck) = match rb_program {
                // Interleaved A B B A: the load generator, redis-benchmark for as many
                // requests, redis-benchmark again, the load generator again; drift on a
                // shared machine then hits both alike.
                Some(rb) => {
                    let (ours, cpu_a) = measure_cpu(load::run_raw(&target, &spec)).await;
                    let mut ours = ours?;
                    let n = (ours.summary().requests + ours.summary().errors).max(1000);
                    let first = run_redis_benchmark(rb, &target, wl, plan.keys, n);
                    let second = run_redis_benchmark(rb, &target, wl, plan.keys, n);
                    let (again, cpu_b) = measure_cpu(load::run_raw(&target, &spec)).await;
                    ours.merge(&again?);
                    ours_cpu = cpu_a
                        .zip(cpu_b)
                        .map(|((c1, w1), (c2, w2))| (c1 + c2) / (w1 + w2));
                    let crosscheck = match (first, second) {
                        (Ok(Some(a)), Ok(Some(b))) => Some(Crosscheck {
                            rps: (a.rps + b.rps) / 2.0,
                            p50_ms: (a.p50_ms + b.p50_ms) / 2.0,
                            p99_ms: (a.p99_ms + b.p99_ms) / 2.0,
                            cpu: a.cpu.zip(b.cpu).map(|(a, b)| (a + b) / 2.0),
                        }),
                        (Err(e), _) | (_, Err(e)) => {
                            report.notes.push(format!(
                                "redis-benchmark failed on {} {}: {e:#}",
                                sys.kind.id(),
                                wl.label()
                            ));
                            None
                        }
                        _ => None,
                    };
                    (ours.summary(), crosscheck)
                }
                None => {
                    let mut ours = load::run_raw(&target, &spec).await?;
                    ours.merge(&load::run_raw(&target, &spec).await?);
                    (ours.summary(), None)
                }
            };
            let point = Point {
                system: sys.kind.id().into(),
                workload: *wl,
                ours,
                ours_cpu,
                redis_benchmark: crosscheck,
            };
            eprintln!(
                "{}: {}: {:.0} req/s (p50 {:.3} ms, p99 {:.3} ms, {} errors){}",
                sys.kind.id(),
                wl.label(),
                point.ours.rps,
                point.ours.p50_ms,
                point.ours.p99_ms,
                point.ours.errors,
                point
                    .redis_benchmark
                    .as_ref()
                    .map(|c| format!("; redis-benchmark {:.0} req/s", c.rps))
                    .unwrap_or_default()
            );
            report.points.push(point);
        }
    }
    Ok(())
}

async fn figures(sys: &mut Sys, plan: &Plan, report: &mut Report) -> Result<()> {
    let id = sys.kind.id().to_string();
    let members = sys.kind.members();
    let how_many = if members > 1 {
        format!("sum over {members} processes")
    } else {
        "one process".into()
    };
    let mut figure = |fid: String, label: String, value: f64, unit: &str, detail: String| {
        eprintln!("{id}: {label}: {value:.3} {unit}");
        report.figures.push(Figure {
            system: id.clone(),
            id: fid,
            label,
            value,
            unit: unit.into(),
            detail,
        });
    };
    sys.wait_ready(Duration::from_secs(60)).await?;
    let mut leader = sys.leader(Duration::from_secs(30)).await?;
    // Restart time at the small key space, then memory and restart at the big one.
    for (count, step) in [(plan.keys, 0), (plan.big_keys, 1)] {
        eprintln!("{}: loading {count} keys of 16 B", sys.kind.id());
        fill(&sys.targets[leader].clone(), count, 16).await?;
        if step == 1 {
            let rss = sys.rss_mib()?;
            figure(
                format!("rss_{count}"),
                format!("RSS after {count} keys (16 B values)"),
                rss,
                "MiB",
                how_many.clone(),
            );
        }
        if sys.kind.restartable() {
            let victim = if members > 1 {
                (leader + 1) % members
            } else {
                0
            };
            let secs = restart(sys, victim).await?;
            let who = if members > 1 {
                "a follower"
            } else {
                "the process"
            };
            figure(
                format!("restart_{count}"),
                format!("restart with {count} keys"),
                secs,
                "s",
                format!("kill -9 of {who}, until it answers a GET"),
            );
            leader = sys.leader(Duration::from_secs(30)).await?;
        }
    }
    if members > 1 {
        let mut tries = Vec::new();
        let mut others = Vec::new();
        for t in 0..plan.failover_tries {
            let f = failover(sys, t).await?;
            tries.push(f.ms);
            others.extend(f.others_ms);
        }
        let shown: Vec<String> = tries.iter().map(|ms| format!("{ms:.0}")).collect();
        figure(
            "failover_ms".into(),
            "writes stalled after kill -9 of the leader (median)".into(),
            median(&tries).unwrap_or(0.0),
            "ms",
            format!(
                "{} tries: {} ms; with several groups, writes to a group the killed node \
                 led",
                tries.len(),
                shown.join(", ")
            ),
        );
        if !others.is_empty() {
            let shown: Vec<String> = others.iter().map(|ms| format!("{ms:.0}")).collect();
            figure(
                "failover_others_ms".into(),
                "longest write to a survivor's group meanwhile (largest)".into(),
                others.iter().copied().fold(0.0, f64::max),
                "ms",
                format!("{} tries: {} ms", others.len(), shown.join(", ")),
            );
        }
    }
    Ok(())
}

/// Kill -9 member `i`, start it again; seconds until it answers a GET of a loaded key.
async fn restart(sys: &mut Sys, i: usize) -> Result<f64> {
    sys.kill9(i);
    let t0 = Instant::now();
    sys.respawn(i)?;
    let deadline = t0 + Duration::from_secs(600);
    let target = sys.targets[i].clone();
    loop {
        if client::read_once(&target, &redraft_bench::key(1), 16, PROBE_TIMEOUT)
            .await
            .unwrap_or(false)
        {
            return Ok(t0.elapsed().as_secs_f64());
        }
        sys.check_alive(i)?;
        if Instant::now() > deadline {
            bail!(
                "{} member {} did not serve within 600 s of a restart",
                sys.kind.id(),
                i + 1
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// What one failover try measured.
struct Failover {
    /// Until a write to a slot of the killed node's groups succeeded through a survivor.
    ms: f64,
    /// The longest write to a group a survivor led, meanwhile (`None` with one group).
    others_ms: Option<f64>,
}

/// Kill -9 the node leading the first group (with several groups, it leads about a third
/// of them); milliseconds until a write through a survivor to a key of a group the
/// killed node led succeeds, while another client keeps writing a key of a group a
/// survivor leads. Then the killed member is started again and caught up before the next
/// try.
async fn failover(sys: &mut Sys, try_no: usize) -> Result<Failover> {
    let leader = sys.leader(Duration::from_secs(30)).await?;
    let survivor = (leader + 1) % sys.targets.len();
    let target = sys.targets[survivor].clone();
    let groups = match &target {
        Target::Resp(addr) => client::redraft_groups(*addr, PROBE_TIMEOUT)
            .await
            .unwrap_or_default(),
        Target::Etcd(_) => Vec::new(),
    };
    let led_by = |node: usize| {
        groups
            .iter()
            .find(|(l, _, _)| *l == Some(node as u64 + 1))
            .map(|&(_, a, b)| (a, b))
    };
    let key_in = |range: Option<(u16, u16)>, name: &str| -> String {
        let plain = format!("bench:{name}:{try_no}");
        let Some((a, b)) = range else { return plain };
        (0..100_000)
            .map(|i| format!("{plain}:{i}"))
            .find(|k| (a..=b).contains(&types::key_slot(k.as_bytes()).0))
            .unwrap_or(plain)
    };
    let key = key_in(led_by(leader), "failover");
    let steady = led_by(survivor).map(|r| key_in(Some(r), "steady"));
    client::write_once(&target, &key, b"before", Duration::from_secs(5)).await?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let others = steady.map(|steady| {
        let (target, stop) = (target.clone(), stop.clone());
        tokio::spawn(async move {
            let mut longest: f64 = 0.0;
            let deadline = Instant::now() + Duration::from_secs(70);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline {
                let t = Instant::now();
                let _ = client::write_once(&target, &steady, b"x", Duration::from_secs(10)).await;
                longest = longest.max(t.elapsed().as_secs_f64() * 1000.0);
                tokio::time::sleep(POLL).await;
            }
            longest
        })
    });
    // The clock starts at the kill; the process is reaped after the measurement (this
    // runtime has one thread, and a blocking wait for the reaping would stall the writes
    // being timed, the survivor's included).
    let mut dying = sys.procs[leader].take().context("the leader is running")?;
    dying.kill9_now();
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(60);
    let ms = loop {
        if client::write_once(&target, &key, b"after", PROBE_TIMEOUT)
            .await
            .is_ok()
        {
            break t0.elapsed().as_secs_f64() * 1000.0;
        }
        if Instant::now() > deadline {
            bail!(
                "{}: writes did not come back within 60 s of killing the leader",
                sys.kind.id()
            );
        }
        tokio::time::sleep(POLL).await;
    };
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let others_ms = match others {
        Some(task) => Some(task.await?),
        None => None,
    };
    eprintln!(
        "{}: failover try {}: {ms:.0} ms (other groups' longest write {})",
        sys.kind.id(),
        try_no + 1,
        others_ms.map_or_else(|| "-".to_string(), |o| format!("{o:.0} ms"))
    );
    tokio::task::spawn_blocking(move || drop(dying)).await?;
    sys.respawn(leader)?;
    let deadline = Instant::now() + Duration::from_secs(600);
    sys.wait_serves(leader, deadline, false).await?;
    // The next try must not begin while this one's restarted node is still catching up
    // (a kill then would be a second fault during the first): wait until the leaders are
    // even again, which the balancer makes them only once the restarted node has caught
    // up in the groups it takes over.
    sys.wait_leaders_even(Duration::from_secs(120)).await?;
    Ok(Failover { ms, others_ms })
}

/// Checks a smoke run: every system measured every point, without errors or misses, and the
/// table carries a ratio for redraft.
pub fn check_smoke(report: &Report, plan: &Plan) -> Result<()> {
    if !report.skipped.is_empty() {
        bail!("skipped: {}", report.skipped.join("; "));
    }
    let expected = plan.systems.len() * plan.phases.iter().map(|(_, w)| w.len()).sum::<usize>();
    if report.points.len() != expected {
        bail!(
            "{} points measured, {expected} expected",
            report.points.len()
        );
    }
    for p in &report.points {
        if p.ours.requests == 0 || p.ours.errors > 0 || p.ours.misses > 0 {
            bail!("{} {}: {:?}", p.system, p.workload.label(), p.ours);
        }
        if p.redis_benchmark.is_none() {
            bail!(
                "{} {}: no redis-benchmark figure",
                p.system,
                p.workload.label()
            );
        }
    }
    let table = report.points_table(|_| true);
    let redraft_row = table
        .lines()
        .find(|l| l.contains("| redraft-1 |"))
        .context("no redraft row in the table")?;
    let cells: Vec<&str> = redraft_row.split('|').map(str::trim).collect();
    // | workload | system | req/s | ... | ratio vs Redis always | ratio vs etcd |
    let vs_redis = cells
        .get(cells.len().saturating_sub(3))
        .copied()
        .unwrap_or("");
    if vs_redis.parse::<f64>().map_or(true, |r| r <= 0.0) {
        bail!("no ratio vs Redis in the redraft row: {redraft_row}");
    }
    Ok(())
}
