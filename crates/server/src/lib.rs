//! The RESP server: listener, connections, sessions, dispatch, `INFO`, configuration
//! and graceful shutdown.
//!
//! [`run`] takes a bound listener and a shutdown future, so tests start a server on port
//! 0 and stop it when they like, and the binary passes Ctrl-C/SIGTERM. On shutdown the
//! server stops accepting, lets every connection finish the requests it has read and send
//! their replies, waits for them (at most [`DRAIN_TIMEOUT`]) and returns.
//!
//! [`serve`] takes a plain listener, a TLS one (`tls-port`), or both ([`Listeners`]); both
//! feed the same connections, counted against one `maxclients`, and a TLS client runs
//! the same connection loop once its handshake is done (see [`connection`]).

pub mod acl;
pub mod auth;
pub mod clients;
pub mod commands;
pub mod config;
pub mod connection;
pub mod engine;
pub mod info;
pub mod limits;
pub mod session;
pub mod store;
pub mod tls;

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{info, warn};

pub use cluster::ReadMode;
pub use config::{
    Cli, Config, EndpointType, LogFormat, Routing, TlsAuthClients, UnsafeMode, YesNo,
};
pub use engine::Engine;
pub use store::Store;

/// The Redis version whose behaviour redraft follows (reported by `HELLO` and `INFO`).
pub const REDIS_VERSION: &str = "7.0.15";
/// Longest wait for open connections to finish at shutdown.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("configuration: {0}")]
    Config(String),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("cluster: {0}")]
    Cluster(String),
}

/// What every connection of a node shares.
pub struct Shared {
    /// The clock, counters and seeds of the connections.
    pub store: Arc<Store>,
    /// What data commands run against: the cluster, or memory ([`Config::in_memory`]).
    pub engine: Engine,
    pub config: Config,
    pub clients: clients::Clients,
    /// Who may run commands (`requirepass`, protected mode).
    pub auth: auth::Auth,
    /// The users as last read, and each one's compiled access.
    pub acl: acl::Cache,
    /// This node's `ACL LOG`.
    pub acl_log: acl::Log,
    pub started: Instant,
    pub local_port: u16,
}

impl Shared {
    /// The groups whole-keyspace commands (`DBSIZE`, `KEYS`, `SCAN`, `RANDOMKEY`,
    /// `FLUSHALL`, `INFO keyspace`) cover on this node: in redirect mode the groups it
    /// leads, the slots a Redis Cluster master holds, so a cluster client (or
    /// `redis-cli --cluster info`) that sums over the masters counts every key once; in
    /// proxy mode, and in memory, the whole keyspace, as one Redis would.
    pub fn keyspace_groups(&self) -> Vec<types::GroupId> {
        if self.config.cluster_routing == Routing::Redirect && self.engine.is_split() {
            self.engine.led_groups()
        } else {
            self.engine.groups()
        }
    }

    /// The users and their rules as this node has applied them (cached per version).
    pub fn users(&self) -> Arc<meta::acl::Users> {
        self.acl
            .users(self.engine.acl_version(), || self.engine.acl_users())
    }

    /// Memory-only state (no Raft): tests of the command layer.
    pub fn new(config: Config, local_port: u16) -> Shared {
        Shared::with_engine(config, local_port, Engine::memory())
    }

    pub fn with_engine(config: Config, local_port: u16, engine: Engine) -> Shared {
        Shared {
            store: Arc::new(Store::new()),
            engine,
            auth: auth::Auth::new(&config.requirepass, config.protected_mode == YesNo::Yes),
            // Until the first change of the users applies, a node with an ACL file
            // enforces that file's users (its seed, proposed at start), never the open
            // default.
            acl: acl::Cache::new(match config.acl_seed() {
                Ok(Some(seed)) => {
                    let mut users = meta::acl::Users::default();
                    users.apply(&meta::acl::Change::Seed(seed));
                    users.version = 0;
                    users
                }
                _ => meta::acl::Users::default(),
            }),
            acl_log: acl::Log::default(),
            config,
            clients: clients::Clients::default(),
            started: Instant::now(),
            local_port,
        }
    }
}

/// How [`run`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// The shutdown future completed and the node shut down gracefully.
    Shutdown,
    /// The Raft log is stuck for good ([`cluster::LogHealth::Wedged`]) and the disk has room
    /// again: only a new process can open the log, so the caller should start one (the
    /// binary executes itself again). Nothing was drained: the log could not flush anyway,
    /// and everything acknowledged is already on disk.
    Restart,
}

/// Where a node takes RESP clients: plain TCP (`port`), TLS (`tls-port`), or both.
#[derive(Debug, Default)]
pub struct Listeners {
    pub plain: Option<TcpListener>,
    /// Needs `tls-port` and its files in the configuration.
    pub tls: Option<TcpListener>,
}

/// Serves RESP clients on `listener` (plain TCP) until `shutdown` completes.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Exit, Error> {
    let listeners = Listeners {
        plain: Some(listener),
        tls: None,
    };
    serve(listeners, config, shutdown).await
}

/// Serves RESP clients on `listeners` until `shutdown` completes.
pub async fn serve(
    listeners: Listeners,
    mut config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Exit, Error> {
    config.validate()?;
    config.maxclients = limits::fit_maxclients(config.maxclients).map_err(Error::Config)?;
    let tls = match (&listeners.tls, config.client_tls()?) {
        (Some(_), None) => {
            return Err(Error::Config(
                "a TLS listener needs tls-port, tls-cert-file and tls-key-file".into(),
            ))
        }
        (Some(_), tls) => tls,
        (None, _) => None,
    };
    if listeners.plain.is_none() && listeners.tls.is_none() {
        return Err(Error::Config("no port to listen on".into()));
    }
    let local_port = match &listeners.plain {
        Some(l) => l.local_addr()?.port(),
        None => 0,
    };
    if let Some(mode) = config.unsafe_mode {
        warn!(
            unsafe_mode = mode.name(),
            "UNSAFE MODE `{}`: {}. For the fault-injection suites' self-tests only; never \
             run this in production",
            mode.name(),
            mode.danger()
        );
    }
    let engine = if config.in_memory {
        Engine::memory()
    } else {
        let cluster = config.cluster()?;
        Engine::Cluster(
            cluster::Node::start(cluster)
                .await
                .map_err(|e| Error::Cluster(e.to_string()))?,
        )
    };
    if let Engine::Cluster(node) = &engine {
        // A restarted node serves no client with the users of before its last changes.
        let deadline = Instant::now() + Duration::from_secs(60);
        if !node.users_replayed(deadline).await {
            warn!("the users' log did not replay within a minute; serving clients anyway");
        }
        // The committed index saved on disk may lag the last changes a little (it is
        // flushed with the next append): confirm with the cluster, when it answers.
        if let Err(e) = node.acl_barrier().await {
            warn!(error = %e, "could not confirm the users with the cluster; serving \
                   clients with those of this node's log until it answers");
        }
    }
    let shared = Arc::new(Shared::with_engine(config, local_port, engine));
    let (stop_tx, stop_rx) = watch::channel(false);
    let expiry = tokio::spawn(active_expiry(shared.clone(), stop_rx.clone()));
    if let Some(seed) = shared.config.acl_seed()? {
        tokio::spawn(seed_users(shared.clone(), seed, stop_rx.clone()));
    }
    let addr_of = |l: &Option<TcpListener>| l.as_ref().and_then(|l| l.local_addr().ok());
    info!(
        addr = ?addr_of(&listeners.plain),
        tls_addr = ?addr_of(&listeners.tls),
        "ready to accept connections"
    );
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    // After a failed accept (out of descriptors, most often), the next waits a little
    // longer, up to a second; failures are logged at most every 10 seconds.
    let mut accept_pause = Duration::from_millis(10);
    let mut accept_reported: Option<Instant> = None;
    let restart = wait_for_restart(shared.engine.node().cloned());
    tokio::pin!(restart);
    loop {
        tokio::select! {
            _ = &mut restart => {
                warn!("the Raft log is stuck and the disk has room again: restarting the \
                       process to open the log afresh");
                return Ok(Exit::Restart);
            }
            (secure, accepted) = accept(&listeners) => {
                let (mut stream, addr) = match accepted {
                    Ok(a) => {
                        accept_pause = Duration::from_millis(10);
                        a
                    }
                    Err(e) => {
                        if accept_reported.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                            warn!(error = %e, "accept failed; retrying");
                            accept_reported = Some(Instant::now());
                        }
                        tokio::select! {
                            _ = tokio::time::sleep(accept_pause) => {}
                            _ = &mut shutdown => break,
                        }
                        accept_pause = (accept_pause * 2).min(Duration::from_secs(1));
                        continue;
                    }
                };
                while connections.try_join_next().is_some() {}
                shared.store.stats.connections.fetch_add(1, Ordering::Relaxed);
                if shared.clients.len() >= shared.config.maxclients {
                    shared.store.stats.rejected_connections.fetch_add(1, Ordering::Relaxed);
                    warn!(%addr, "refusing connection: maxclients reached");
                    // A TLS client could not read the reply before a handshake: closed.
                    if !secure {
                        let _ = stream.write_all(b"-ERR max number of clients reached\r\n").await;
                    }
                    continue;
                }
                // A TLS client is looked at after its handshake (see `serve_tls`).
                let refused = if secure {
                    None
                } else {
                    shared.auth.refuses(addr.ip(), &shared.users(), false)
                };
                if let Some(denied) = refused {
                    shared.store.stats.rejected_connections.fetch_add(1, Ordering::Relaxed);
                    warn!(%addr, "refusing a remote client: protected mode, and no requirepass");
                    let _ = stream.write_all(denied.as_bytes()).await;
                    continue;
                }
                let laddr = match stream.local_addr() {
                    Ok(l) => l,
                    Err(_) => continue,
                };
                let info = shared.clients.register(addr, laddr);
                match &tls {
                    Some(tls) if secure => {
                        let acceptor = tls.acceptor();
                        connections.spawn(connection::serve_tls(stream, acceptor, shared.clone(), info, stop_rx.clone()));
                    }
                    _ => {
                        let _ = stream.set_nodelay(true);
                        connections.spawn(connection::serve(stream, shared.clone(), info, stop_rx.clone()));
                    }
                }
            }
            _ = &mut shutdown => break,
        }
    }
    info!(
        open = connections.len(),
        "shutting down: draining connections"
    );
    drop(listeners);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!(
            open = connections.len(),
            "connections still open after the drain timeout; closing them"
        );
        connections.shutdown().await;
    }
    let _ = expiry.await;
    shared.engine.shutdown().await;
    info!("shut down");
    Ok(Exit::Shutdown)
}

/// The next connection on either listener, and whether it came to the TLS one.
async fn accept(
    listeners: &Listeners,
) -> (
    bool,
    std::io::Result<(tokio::net::TcpStream, std::net::SocketAddr)>,
) {
    async fn on(
        l: Option<&TcpListener>,
    ) -> std::io::Result<(tokio::net::TcpStream, std::net::SocketAddr)> {
        match l {
            Some(l) => l.accept().await,
            None => std::future::pending().await,
        }
    }
    tokio::select! {
        a = on(listeners.plain.as_ref()) => (false, a),
        a = on(listeners.tls.as_ref()) => (true, a),
    }
}

/// Proposes the ACL file's users as the cluster's first users (applied only if the users
/// were never changed; see `meta::acl::Change::Seed`), again every half second while the
/// meta group cannot take it, for at most ten minutes or until the node stops.
async fn seed_users(
    shared: Arc<Shared>,
    seed: std::collections::BTreeMap<String, meta::acl::User>,
    mut stop: watch::Receiver<bool>,
) {
    let deadline = Instant::now() + Duration::from_secs(600);
    while Instant::now() < deadline {
        let reply = shared
            .engine
            .change_acl(meta::acl::Change::Seed(seed.clone()))
            .await;
        if reply == resp::Frame::OK {
            info!(
                users = seed.len(),
                "the ACL file's users are proposed as the first users"
            );
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = stop.changed() => return,
        }
    }
    warn!(
        "the ACL file's users could not be proposed: the meta group took no write for ten minutes"
    );
}

/// Completes once the node's log is wedged and its disk has room again; never without a
/// node.
async fn wait_for_restart(node: Option<Arc<cluster::Node>>) {
    let Some(node) = node else {
        return std::future::pending().await;
    };
    let mut health = node.watch_log_health();
    loop {
        let wedged = matches!(*health.borrow(), cluster::LogHealth::Wedged { .. });
        if wedged && node.log_has_room() {
            return;
        }
        let pause = if wedged {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(3600)
        };
        tokio::select! {
            changed = health.changed() => if changed.is_err() { return std::future::pending().await },
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

/// Active expiry: `hz` times a second, sample keys with an expiry and remove the expired
/// ones through the write path (Redis's `activeExpireCycle`, slow cycle).
async fn active_expiry(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let period = Duration::from_millis(1000 / shared.config.hz.max(1) as u64);
    // Redis gives the slow cycle 25% of the period.
    let budget = period / 4;
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        expire_cycle(&shared, budget).await;
    }
}

/// One round of active expiry: samples keys with an expiry and removes the expired ones
/// through the write path, repeating while more than a quarter of a sample was expired
/// (Redis's rule) and the round is under its time budget. With Raft only the leader
/// samples, and it proposes `ExpireKeys`, so every replica reclaims the same keys at the
/// same log index.
pub async fn expire_cycle(shared: &Shared, budget: Duration) {
    let groups = shared.engine.led_groups();
    let share = budget / (groups.len().max(1) as u32);
    for group in groups {
        expire_group(shared, group, share).await;
    }
}

/// [`expire_cycle`] in one group (this node leads it, or it is memory's).
async fn expire_group(shared: &Shared, group: types::GroupId, budget: Duration) {
    const SAMPLE: usize = 20;
    let engine = &shared.engine;
    let start = std::time::Instant::now();
    loop {
        let ctx = shared.store.ctx();
        let (sampled, expired) = engine
            .db(group)
            .sample_expired(ctx.now_ms, ctx.seed, SAMPLE);
        if expired.is_empty() {
            return;
        }
        let n = expired.len();
        let keys = expired
            .iter()
            .map(|k| bytes::Bytes::copy_from_slice(k))
            .collect();
        let reply = engine
            .write(group, &kv::Proposal::ExpireKeys(keys), ctx.now_ms)
            .await;
        if reply.is_error() {
            // No longer the leader, or no quorum: the next leader samples again.
            tracing::debug!(%group, ?reply, "active expiry stopped");
            return;
        }
        shared
            .store
            .stats
            .expired_by_sampling
            .fetch_add(n as u64, Ordering::Relaxed);
        if n * 4 <= sampled || start.elapsed() >= budget {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn write(shared: &Shared, line: &str) -> resp::Frame {
        let args: Vec<Bytes> = line
            .split(' ')
            .map(|s| Bytes::from(s.to_string()))
            .collect();
        let proposal = kv::Proposal::Command { args, seed: 1 };
        block_on(shared.engine.write(
            cluster::FIRST_DATA_GROUP,
            &proposal,
            shared.store.clock.now_ms(),
        ))
    }

    /// Runs a future on a fresh current-thread runtime.
    fn block_on<T>(f: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(f)
    }

    #[test]
    fn active_expiry_reclaims_expired_keys_without_access() {
        let shared = Shared::new(Config::default(), 6379);
        for i in 0..500 {
            write(&shared, &format!("SET gone:{i} v PX 50"));
        }
        for i in 0..100 {
            write(&shared, &format!("SET kept:{i} v EX 3600"));
            write(&shared, &format!("SET plain:{i} v"));
        }
        // Expired keys stay in memory (DBSIZE counts them, as Redis's does) until a write
        // meets them or active expiry removes them.
        std::thread::sleep(Duration::from_millis(100));
        let len = || shared.engine.db(cluster::FIRST_DATA_GROUP).len();
        assert_eq!(len(), 700, "nothing is removed until expiry runs");
        let mut rounds = 0;
        while len() > 200 && rounds < 1000 {
            block_on(expire_cycle(&shared, Duration::from_millis(25)));
            rounds += 1;
        }
        assert_eq!(len(), 200, "every expired key is reclaimed, no live key is");
        assert_eq!(
            shared.engine.db(cluster::FIRST_DATA_GROUP).volatile_len(),
            100
        );
        assert_eq!(
            shared
                .engine
                .db(cluster::FIRST_DATA_GROUP)
                .stats
                .expired_keys,
            500
        );
        assert_eq!(
            shared
                .store
                .stats
                .expired_by_sampling
                .load(Ordering::Relaxed),
            500
        );
    }
}
