//! `redraft`: one node. Reads the command line, sets up logging, serves until Ctrl-C or
//! SIGTERM, then shuts down gracefully and exits 0.
//!
//! Shutting down always ends: the signals are taken by a thread of their own, not by the
//! runtime, so they are seen even when every runtime worker is busy or stuck; that thread
//! exits the process (status 1) once the shutdown budget (`--shutdown-timeout`) has
//! passed, whatever is stuck (a full disk, a wedged flush, a long command), and at once
//! (status 130) on a second Ctrl-C or SIGTERM. When the Raft log is stuck for good and the disk has room again, the process
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
        let bind = |port: u16| {
            let addr = Config {
                port,
                ..config.clone()
            }
            .listen_addr();
            async move {
                tokio::net::TcpListener::bind(&addr)
                    .await
                    .with_context(|| format!("listening on {addr}"))
            }
        };
        // `--port 0` with a `--tls-port` is TLS only, as in Redis; alone it picks a free
        // port (tests).
        let listeners = server::Listeners {
            plain: match config.serves_plain() {
                true => Some(bind(config.port).await?),
                false => None,
            },
            tls: match config.tls_port {
                0 => None,
                port => Some(bind(port).await?),
            },
        };
        let shutdown = watch_signals(budget)?;
        let exit = server::serve(listeners, config, async move {
            let _ = shutdown.await;
        })
        .await?;
        anyhow::Ok(exit)
    })?;
    if exit == server::Exit::Restart {
        restart();
    }
    // The runtime's blocking threads (a wedged flush among them) are not waited for.
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}

/// Starts the threads that take Ctrl-C (SIGINT) and SIGTERM: the first signal asks for a
/// graceful shutdown (the receiver completes), then the process ends within `budget`, or
/// at once on a second signal. They need nothing from the runtime.
fn watch_signals(budget: Duration) -> anyhow::Result<tokio::sync::oneshot::Receiver<()>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .context("listening for SIGINT and SIGTERM")?;
    let (seen, received) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                let name = if signal == SIGINT {
                    "Ctrl-C"
                } else {
                    "SIGTERM"
                };
                if seen.send(name).is_err() {
                    return;
                }
            }
        })
        .context("starting the signal thread")?;
    let (shutdown, requested) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("shutdown-watchdog".into())
        .spawn(move || {
            let Ok(first) = received.recv() else { return };
            tracing::info!(
                budget_s = budget.as_secs(),
                "received {first}: shutting down"
            );
            let _ = shutdown.send(());
            match received.recv_timeout(budget) {
                Ok(second) => {
                    tracing::warn!("received {second} again: exiting at once");
                    std::process::exit(130);
                }
                Err(_) => {
                    tracing::error!(
                        budget_s = budget.as_secs(),
                        "shutdown did not finish within its budget; exiting now"
                    );
                    std::process::exit(1);
                }
            }
        })
        .context("starting the shutdown watchdog")?;
    Ok(requested)
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
