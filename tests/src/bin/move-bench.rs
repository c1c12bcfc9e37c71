//! `move-bench`: what a slot move costs, on a real 3-node redraft (`tools/bench-moves`).
//!
//! For each size in `--keys`: one slot is filled with that many keys, 50 clients write
//! (`--clients`: all but two on keys spread over every other slot, two on new keys in the
//! moving slot), and the slot is moved to another group. Reported: how long the move
//! took (from `CLUSTER MIGRATESLOTS` to the job `done`), the latency of the moving slot's
//! writes that overlapped the move (p50, p99, max: the stall a client saw), the other
//! clients' throughput during the move relative to the 3 s before it, and that nothing was
//! lost (the slot holds its keys plus every acknowledged write). Then, with `--scale-keys`
//! keys (default 1,000,000): two nodes join (3 → 5, each a voter of every group) and
//! leave again (5 → 3), each timed, with the key count and the digest checked after each.
//!
//! Every process listens on 127.0.0.1 (RESP 24001-24005, gRPC 25001-25005, below the
//! ephemeral range), writes under a temp dir removed at the end, and is stopped by its
//! PID; every loop is bounded in count and time.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;

#[derive(Parser)]
struct Args {
    /// The redraft binary.
    #[arg(long, default_value = "target/release/redraft")]
    redraft: PathBuf,
    /// Keys in the moving slot, one move per size.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
    keys: Vec<u64>,
    /// Writing clients during a move.
    #[arg(long, default_value_t = 50)]
    clients: usize,
    /// Keys for the 3 → 5 → 3 scaling (0: skip it).
    #[arg(long, default_value_t = 1_000_000)]
    scale_keys: u64,
    /// Also write the report here.
    #[arg(long)]
    out: Option<PathBuf>,
}

const RESP_BASE: u16 = 24000;
const GRPC_BASE: u16 = 25000;

struct Node {
    child: Option<Child>,
}

struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    nodes: BTreeMap<u64, Node>,
}

impl Cluster {
    fn addr(id: u64) -> String {
        format!("127.0.0.1:{}", RESP_BASE + id as u16)
    }

    fn spawn(&mut self, id: u64, how: &[String]) -> Result<()> {
        let log = std::fs::File::create(self.dir.join(format!("n{id}.log")))?;
        let mut cmd = Command::new(&self.bin);
        cmd.args([
            "--node-id",
            &id.to_string(),
            "--bind",
            "127.0.0.1",
            "--grpc-bind",
            "127.0.0.1",
            "--port",
            &(RESP_BASE + id as u16).to_string(),
            "--grpc-port",
            &(GRPC_BASE + id as u16).to_string(),
            "--data-dir",
            &self.dir.join(format!("n{id}")).display().to_string(),
        ])
        .args(how)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
        let child = cmd
            .spawn()
            .with_context(|| format!("start {}", self.bin.display()))?;
        self.nodes.insert(id, Node { child: Some(child) });
        wait_for(Duration::from_secs(60), || {
            call(id, &["PING"]).ok().map(|_| ())
        })
        .ok_or_else(|| {
            anyhow!(
                "node {id} never answered; see {}/n{id}.log",
                self.dir.display()
            )
        })
    }

    fn stop(&mut self, id: u64) {
        if let Some(node) = self.nodes.get_mut(&id) {
            if let Some(mut child) = node.child.take() {
                let _ = Command::new("kill")
                    .args(["-TERM", &child.id().to_string()])
                    .status();
                let deadline = Instant::now() + Duration::from_secs(20);
                while Instant::now() < deadline {
                    if child.try_wait().ok().flatten().is_some() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let ids: Vec<u64> = self.nodes.keys().copied().collect();
        for id in ids {
            self.stop(id);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn connect(id: u64) -> Result<redis::Connection> {
    let client = redis::Client::open(format!("redis://{}/", Cluster::addr(id)))?;
    let con = client.get_connection_with_timeout(Duration::from_secs(5))?;
    con.set_read_timeout(Some(Duration::from_secs(30)))?;
    Ok(con)
}

fn call(id: u64, args: &[&str]) -> Result<redis::Value> {
    let mut con = connect(id)?;
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    Ok(cmd.query(&mut con)?)
}

fn text(v: &redis::Value) -> String {
    match v {
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        redis::Value::SimpleString(s) => s.clone(),
        redis::Value::VerbatimString { text, .. } => text.clone(),
        redis::Value::Int(n) => n.to_string(),
        redis::Value::Okay => "OK".into(),
        other => format!("{other:?}"),
    }
}

fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A hash tag whose keys hash to `slot`.
fn tag(slot: u16) -> String {
    (0u64..)
        .map(|i| format!("b{i}"))
        .find(|t| types::key_slot(t.as_bytes()).0 == slot)
        .expect("a tag for every slot")
}

/// `INFO replication`'s groups as node `id` sees them.
fn groups(id: u64) -> Result<redraft_tests::info::RaftInfo> {
    let info = text(&call(id, &["INFO", "replication"])?);
    redraft_tests::info::RaftInfo::parse(&info).map_err(|e| anyhow!(e))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

/// One writer's record: (start, latency, ok) of each write.
type Ops = Vec<(Instant, Duration, bool)>;

fn writer(id: u64, keys: impl Fn(u64) -> String, stop: Arc<AtomicBool>) -> (Ops, u64) {
    let mut ops = Vec::new();
    let mut acked = 0;
    let Ok(mut con) = connect(id) else {
        return (ops, 0);
    };
    let started = Instant::now();
    for i in 0..2_000_000u64 {
        if stop.load(Ordering::Relaxed) || started.elapsed() > Duration::from_secs(600) {
            break;
        }
        let t = Instant::now();
        let ok = redis::cmd("SET")
            .arg(keys(i))
            .arg(i)
            .query::<()>(&mut con)
            .is_ok();
        acked += u64::from(ok);
        ops.push((t, t.elapsed(), ok));
    }
    (ops, acked)
}

fn main() -> Result<()> {
    let args = Args::parse();
    if !args.redraft.exists() {
        bail!(
            "{} is missing (cargo build --release -p redraft)",
            args.redraft.display()
        );
    }
    let dir = std::env::temp_dir().join(format!("move-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut cluster = Cluster {
        bin: args.redraft.clone(),
        dir: dir.clone(),
        nodes: BTreeMap::new(),
    };
    let initial = (1..=3)
        .map(|id| format!("{id}=127.0.0.1:{}", GRPC_BASE + id as u16))
        .collect::<Vec<_>>()
        .join(",");
    for id in 1..=3 {
        cluster.spawn(id, &["--initial-cluster".into(), initial.clone()])?;
    }
    wait_for(Duration::from_secs(60), || {
        (1..=3)
            .all(|id| groups(id).is_ok_and(|g| g.groups.values().all(|l| l.leader.is_some())))
            .then_some(())
    })
    .ok_or_else(|| anyhow!("the groups never elected leaders"))?;

    let mut report = String::from(
        "| keys in the slot | move took (s) | stall p50 (ms) | stall p99 (ms) | stall max (ms) | \
         other clients' throughput during / before | nothing lost |\n|---|---|---|---|---|---|---|\n",
    );
    for (n, &keys) in args.keys.iter().enumerate() {
        let slot = 1_000 + n as u16 * 977;
        report.push_str(&move_one(slot, keys, args.clients)?);
        eprintln!("move-bench: moved a slot of {keys} keys");
    }
    if args.scale_keys > 0 {
        report.push('\n');
        report.push_str(&scale(&mut cluster, args.scale_keys)?);
    }
    println!("{report}");
    if let Some(out) = &args.out {
        std::fs::write(out, &report)?;
    }
    drop(cluster);
    if report.contains("| NO") {
        bail!("a move or a scaling step lost keys or left replicas unequal (see the table)");
    }
    Ok(())
}

/// Fills `slot` with `keys` keys, moves it under the clients' writes; one table row.
fn move_one(slot: u16, keys: u64, clients: usize) -> Result<String> {
    let tag = tag(slot);
    let mut con = connect(1)?;
    let mut i = 0;
    while i < keys {
        let mut mset = redis::cmd("MSET");
        for k in i..(i + 1_000).min(keys) {
            mset.arg(format!("{{{tag}}}:{k}")).arg(k);
        }
        mset.query::<()>(&mut con)?;
        i += 1_000;
    }
    let info = groups(1)?;
    let from = info
        .groups
        .iter()
        .find(|(_, g)| g.serves(slot))
        .map(|(&g, _)| g)
        .ok_or_else(|| anyhow!("no group serves slot {slot}"))?;
    let to = from % info.groups.len() as u64 + 1;

    let stop = Arc::new(AtomicBool::new(false));
    let moving_clients = 2.min(clients);
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let stop = stop.clone();
            let node = 1 + c as u64 % 3;
            let tag = tag.clone();
            let moving = c < moving_clients;
            std::thread::spawn(move || {
                let r = if moving {
                    writer(node, move |i| format!("{{{tag}}}:w{c}:{i}"), stop)
                } else {
                    writer(node, move |i| format!("load:{c}:{}", i % 10_000), stop)
                };
                (moving, r)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(3));
    let began = Instant::now();
    let s = slot.to_string();
    let reply = call(
        2,
        &[
            "CLUSTER",
            "MIGRATESLOTS",
            "SLOTSRANGE",
            &s,
            &s,
            "GROUP",
            &to.to_string(),
        ],
    )?;
    if text(&reply) != "OK" {
        bail!("MIGRATESLOTS: {}", text(&reply));
    }
    let done = wait_for(Duration::from_secs(600), || {
        let redis::Value::Array(jobs) = call(1, &["CLUSTER", "GETSLOTMIGRATIONS"]).ok()? else {
            return None;
        };
        let finished = jobs.iter().any(|j| {
            let t = format!("{j:?}");
            t.contains(&format!("\"{s}\"")) && (t.contains("\"done\"") || t.contains("aborted"))
        });
        finished.then(Instant::now)
    })
    .ok_or_else(|| anyhow!("the move of {keys} keys never finished"))?;
    let took = done - began;
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    let mut stalls = Vec::new();
    let (mut before, mut during) = (0u64, 0u64);
    let mut acked_moving = 0;
    for t in threads {
        let (moving, (ops, acked)) = t.join().map_err(|_| anyhow!("a writer panicked"))?;
        if moving {
            acked_moving += acked;
            stalls.extend(
                ops.iter()
                    .filter(|(at, lat, _)| *at <= done && *at + *lat >= began)
                    .map(|&(_, lat, _)| lat),
            );
        } else {
            before += ops
                .iter()
                .filter(|(at, _, ok)| *ok && *at < began && *at >= began - Duration::from_secs(3))
                .count() as u64;
            during += ops
                .iter()
                .filter(|(at, _, ok)| *ok && *at >= began && *at < done)
                .count() as u64;
        }
    }
    stalls.sort();
    let rate_before = before as f64 / 3.0;
    let rate_during = during as f64 / took.as_secs_f64().max(0.001);
    let held: i64 = match call(1, &["CLUSTER", "COUNTKEYSINSLOT", &s])? {
        redis::Value::Int(n) => n,
        other => bail!("COUNTKEYSINSLOT: {other:?}"),
    };
    let expected = keys + acked_moving;
    Ok(format!(
        "| {keys} | {:.2} | {} | {} | {} | {:.2} ({:.0} / {:.0} writes/s) | {} |\n",
        took.as_secs_f64(),
        ms(percentile(&stalls, 0.5)),
        ms(percentile(&stalls, 0.99)),
        ms(stalls.last().copied().unwrap_or_default()),
        rate_during / rate_before.max(1.0),
        rate_during,
        rate_before,
        if held as u64 == expected {
            format!("yes ({held} keys)")
        } else {
            format!("NO: {held} keys, {expected} expected")
        }
    ))
}

/// 3 → 5 → 3 nodes with `keys` keys: each step timed, the keys and digest checked.
fn scale(cluster: &mut Cluster, keys: u64) -> Result<String> {
    // 1,000 keys per MSET, each batch in a slot of its own (spread over the groups).
    let mut con = connect(1)?;
    let started = Instant::now();
    let mut i = 0;
    let mut batch = 0u64;
    while i < keys {
        let slot = ((batch * 16_411) % 16_384) as u16;
        let tag = tag(slot);
        let mut mset = redis::cmd("MSET");
        for k in i..(i + 1_000).min(keys) {
            mset.arg(format!("{{{tag}}}:s{k}")).arg(k);
        }
        mset.query::<()>(&mut con)?;
        i += 1_000;
        batch += 1;
    }
    let loaded = started.elapsed();
    let dbsize = |id: u64| -> Result<i64> {
        match call(id, &["DBSIZE"])? {
            redis::Value::Int(n) => Ok(n),
            other => bail!("DBSIZE: {other:?}"),
        }
    };
    let total = dbsize(1)?;
    let digest = text(&call(1, &["DEBUG", "DIGEST"])?);
    let voters_are = |want: &[u64]| {
        want.iter().all(|&id| {
            groups(id).is_ok_and(|g| {
                g.groups.values().all(|l| {
                    let mut v = l.voters.clone();
                    v.sort_unstable();
                    v == want
                })
            })
        })
    };
    let up = Instant::now();
    for id in [4, 5] {
        cluster.spawn(
            id,
            &["--join".into(), format!("127.0.0.1:{}", GRPC_BASE + 1)],
        )?;
    }
    wait_for(Duration::from_secs(1_200), || {
        voters_are(&[1, 2, 3, 4, 5]).then_some(())
    })
    .ok_or_else(|| anyhow!("nodes 4 and 5 never became voters of every group"))?;
    let grew = up.elapsed();
    let same_at = |id: u64| {
        wait_for(Duration::from_secs(120), || {
            (text(&call(id, &["DEBUG", "DIGEST"]).ok()?) == digest).then_some(())
        })
        .is_some()
    };
    let five_ok = same_at(5) && dbsize(5)? == total;
    let down = Instant::now();
    for id in [5, 4] {
        let reply = call(1, &["CLUSTER", "FORGET", &id.to_string()])?;
        if text(&reply) != "OK" {
            bail!("CLUSTER FORGET {id}: {}", text(&reply));
        }
        cluster.stop(id);
    }
    wait_for(Duration::from_secs(120), || {
        voters_are(&[1, 2, 3]).then_some(())
    })
    .ok_or_else(|| anyhow!("the groups never settled on nodes 1-3"))?;
    let shrank = down.elapsed();
    let three_ok = (1..=3).all(same_at) && dbsize(2)? == total;
    Ok(format!(
        "| scaling with {total} keys | took (s) | keys and digest equal after |\n|---|---|---|\n\
         | load (MSET, 1,000 keys each) | {:.1} | - |\n| 3 → 5 (join, learner then voter of every group) | {:.1} | {} |\n\
         | 5 → 3 (CLUSTER FORGET, leaders handed over first) | {:.1} | {} |\n",
        loaded.as_secs_f64(),
        grew.as_secs_f64(),
        if five_ok { "yes" } else { "NO" },
        shrank.as_secs_f64(),
        if three_ok { "yes" } else { "NO" },
    ))
}
