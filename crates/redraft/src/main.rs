//! `redraft`: one node. Reads the command line, sets up logging, serves until Ctrl-C or
//! SIGTERM, then shuts down gracefully and exits 0.
//!
//! Shutting down always ends: a watchdog thread exits the process (status 1) once the
//! shutdown budget (`--shutdown-timeout`) has passed, whatever is stuck (a full disk, a
//! wedged flush, a long command), and a second Ctrl-C or SIGTERM exits at once (status
//! 130). When the Raft log is stuck for good and the disk has room again, the process
//! executes itself again with the same command line (same PID) to open the log afresh.

use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use server::{Cli, Config, LogFormat};
use tracing_subscriber::EnvFilter;

/// jemalloc instead of glibc's malloc: glibc keeps freed memory in its per-thread arenas
/// (a snapshot's copy of the key table, once dropped, for one), so a one-node redraft held
/// 194 MiB after 1,000,000 keys with glibc and 142 MiB with jemalloc (redis-server: 119-135
/// MiB). mimalloc was tried too: 322 MiB.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::load(&cli)?;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,openraft=warn"));
    match config.log_format {
        LogFormat::Text => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init(),
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let budget = Duration::from_secs(config.shutdown_timeout);
    let exit = runtime.block_on(async move {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
        let addr = config.listen_addr();
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .with_context(|| format!("listening on {addr}"))?;
        let signals = Signals::new()?;
        let exit = server::run(listener, config, shutdown_signal(signals, budget)).await?;
        anyhow::Ok(exit)
    })?;
    if exit == server::Exit::Restart {
        restart();
    }
    // The runtime's blocking threads (a wedged flush among them) are not waited for.
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}

/// Ctrl-C and SIGTERM.
struct Signals {
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Signals> {
        let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("listening for SIGTERM")?;
        Ok(Signals { term })
    }

    /// Completes on the next Ctrl-C or SIGTERM; says which.
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => "Ctrl-C",
            _ = self.term.recv() => "SIGTERM",
        }
    }
}

/// Completes on Ctrl-C or SIGTERM, and makes sure the process then ends: within `budget`
/// (a watchdog thread, which needs nothing from the runtime), or at once on a second
/// signal.
async fn shutdown_signal(mut signals: Signals, budget: Duration) {
    let first = signals.next().await;
    tracing::info!(
        budget_s = budget.as_secs(),
        "received {first}: shutting down"
    );
    let watchdog = std::thread::Builder::new()
        .name("shutdown-watchdog".into())
        .spawn(move || {
            std::thread::sleep(budget);
            tracing::error!(
                budget_s = budget.as_secs(),
                "shutdown did not finish within its budget; exiting now"
            );
            std::process::exit(1);
        });
    if let Err(e) = watchdog {
        tracing::warn!(error = %e, "cannot start the shutdown watchdog");
    }
    tokio::spawn(async move {
        let second = signals.next().await;
        tracing::warn!("received {second} again: exiting at once");
        std::process::exit(130);
    });
}

/// Executes this program again with the same arguments (same PID), replacing the process.
/// Returns only if that failed (and then exits with an error).
fn restart() -> ! {
    use std::os::unix::process::CommandExt;
    let err = match std::env::current_exe() {
        Ok(exe) => std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .exec(),
        Err(e) => e,
    };
    tracing::error!(error = %err, "cannot execute redraft again; exiting");
    std::process::exit(1);
}
