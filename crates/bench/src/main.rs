//! `redraft-bench`: the load generator (`load`) and the side-by-side suite (`suite`) that
//! runs redis-server, etcd and redraft in turn and reports each figure as a ratio to a
//! reference system. See BENCHMARKS.md.

mod client;
mod load;
mod machine;
mod procs;
mod suite;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use redraft_bench::report::{Op, Workload};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "redraft-bench",
    about = "Side-by-side benchmarks of redraft, redis-server and etcd"
)]
struct Cli {
    /// Worker threads of the load generator (1 = one event loop, like redis-benchmark).
    #[arg(long, default_value_t = 1, global = true)]
    threads: usize,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the suite: every system in turn, then the report (Markdown, JSON, SVG).
    Suite {
        /// full (everything, ~30 min), quick (headline rows, a few minutes) or smoke (seconds;
        /// fails unless the table comes out with a ratio).
        #[arg(long, value_enum, default_value_t = PlanName::Full)]
        plan: PlanName,
        /// Only these systems (comma-separated ids: redis-none, redis-everysec,
        /// redis-always, etcd-3, redraft-1, redraft-3).
        #[arg(long, value_delimiter = ',')]
        systems: Vec<String>,
        /// Seconds per load point (an upper bound; a point also stops at --requests).
        #[arg(long)]
        seconds: Option<f64>,
        /// Requests per load point, at most.
        #[arg(long)]
        requests: Option<u64>,
        /// Failover tries (kill -9 of the leader) per cluster.
        #[arg(long)]
        tries: Option<usize>,
        /// Run directory [default: target/bench/<UTC time>-<plan>].
        #[arg(long)]
        out: Option<PathBuf>,
        /// The redraft binary.
        #[arg(long, default_value = "target/release/redraft")]
        redraft: PathBuf,
    },
    /// Drive one server with one workload and print the figures as JSON.
    Load {
        /// A RESP server, host:port.
        #[arg(long, conflicts_with = "etcd")]
        resp: Option<String>,
        /// An etcd member's client URL, e.g. http://127.0.0.51:20379.
        #[arg(long)]
        etcd: Option<String>,
        #[arg(long, value_enum, default_value_t = OpArg::Set)]
        op: OpArg,
        #[arg(long, default_value_t = 16)]
        value_size: usize,
        #[arg(long, default_value_t = 50)]
        clients: usize,
        /// Requests in flight per connection (RESP pipeline; concurrent calls for etcd).
        #[arg(long, default_value_t = 1)]
        pipeline: usize,
        /// Key space: keys key:000000000000 up to this.
        #[arg(long, default_value_t = 100_000)]
        keys: u64,
        #[arg(long, default_value_t = 100_000)]
        requests: u64,
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Write every key of the key space in order (load it) instead of random keys.
        #[arg(long)]
        fill: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum PlanName {
    Full,
    Quick,
    Smoke,
}

#[derive(Clone, Copy, ValueEnum)]
enum OpArg {
    Set,
    Get,
    Mix,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let runtime = if cli.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cli.threads)
            .enable_all()
            .build()?
    };
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    runtime.block_on(async move {
        match cli.command {
            Command::Suite {
                plan,
                systems,
                seconds,
                requests,
                tries,
                out,
                redraft,
            } => {
                let (mut p, name) = match plan {
                    PlanName::Full => (suite::Plan::full(), "full"),
                    PlanName::Quick => (suite::Plan::quick(), "quick"),
                    PlanName::Smoke => (suite::Plan::smoke(), "smoke"),
                };
                if !systems.is_empty() {
                    p.systems = systems
                        .iter()
                        .map(|s| suite::Kind::parse(s))
                        .collect::<Result<_>>()?;
                }
                if let Some(s) = seconds {
                    if !(s.is_finite() && s > 0.0 && s <= 600.0) {
                        bail!("--seconds must be in (0, 600], got {s}");
                    }
                    p.seconds = s;
                }
                if let Some(r) = requests {
                    p.max_requests = r.max(1);
                }
                if let Some(t) = tries {
                    p.failover_tries = t.clamp(1, 50);
                }
                let out = out.unwrap_or_else(|| {
                    PathBuf::from("target/bench").join(format!("{}-{name}", machine::stamp()))
                });
                let env = suite::Env {
                    out: out.clone(),
                    redraft,
                };
                let report = suite::run(&p, &env, command).await?;
                println!("{}", report.markdown());
                eprintln!("report: {}", out.join("report.md").display());
                if matches!(plan, PlanName::Smoke) {
                    suite::check_smoke(&report, &p).context("smoke run")?;
                    eprintln!("smoke: ok");
                }
                Ok(())
            }
            Command::Load {
                resp,
                etcd,
                op,
                value_size,
                clients,
                pipeline,
                keys,
                requests,
                seconds,
                fill,
            } => {
                let target = match (resp, etcd) {
                    (Some(a), None) => client::Target::Resp(
                        tokio::net::lookup_host(&a)
                            .await?
                            .next()
                            .with_context(|| format!("no address for {a}"))?,
                    ),
                    (None, Some(u)) => client::Target::Etcd(u),
                    _ => bail!("give one of --resp host:port or --etcd URL"),
                };
                if clients == 0
                    || pipeline == 0
                    || keys == 0
                    || !seconds.is_finite()
                    || seconds <= 0.0
                {
                    bail!("--clients, --pipeline, --keys and --seconds must be positive");
                }
                let op = match op {
                    OpArg::Set => Op::Set,
                    OpArg::Get => Op::Get,
                    OpArg::Mix => Op::Mix,
                };
                let spec = load::Spec {
                    workload: Workload {
                        op,
                        value_size,
                        clients,
                        pipeline,
                    },
                    keys,
                    requests: if fill { keys } else { requests },
                    max_time: Duration::from_secs_f64(seconds),
                    sequential: fill,
                    seed: 7,
                };
                let s = load::run(&target, &spec).await?;
                println!("{}", serde_json::to_string(&s)?);
                Ok(())
            }
        }
    })
}
