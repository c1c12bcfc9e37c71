//! One node's Raft group and the paths a command takes through it.
//!
//! # Routing
//!
//! Today one data group ([`DATA_GROUP`]) owns all 16384 slots; every log key, RPC and
//! metric already carries the group id, so more groups only add a slot table here.
//!
//! # Writes
//!
//! The server parses a write (so syntax errors reply at once) and hands [`Node::write`] a
//! [`kv::Proposal`]: the raw arguments and the seed, or a whole `EXEC`. On the leader the
//! proposal is stamped with the leader's clock (never behind a time it stamped before)
//! and submitted with `client_write`; the reply comes back once a majority has the entry
//! on disk and the leader has applied it. On a follower the proposal is forwarded to the
//! leader over gRPC (`Forward` with the encoded proposal) and the leader's reply comes
//! back in the lossless wire form of a frame. A write is retried only when it certainly
//! never entered a log: no leader yet, a leader that refused it before appending it
//! (openraft's `ForwardToLeader`, also given by a new leader not yet acknowledged by a
//! quorum), or a leader that could not be connected to; with no leader for
//! [`NO_LEADER_WAIT`] it gets `-CLUSTERDOWN`. A write appended and then discarded on a
//! change of leader (`LogEntryDiscarded`), or lost with a connection mid-call, may still be
//! committed by the next leader, so it is never proposed twice: the client gets
//! [`UNKNOWN_OUTCOME`], as a Redis client gets a timeout. (Exactly-once retries would need
//! request ids deduplicated by the state machine: not done yet.)
//!
//! # Reads
//!
//! - `linearizable` (default): the leader confirms it still leads with a ReadIndex round
//!   (openraft's `ensure_linearizable`, which also waits for the apply); a follower asks the
//!   leader for its read index over gRPC, waits until it has applied that far, and reads
//!   its own state. Either way the read reflects every write acknowledged before it began.
//! - `lease`: the leader skips the round while its lease holds (stale only if clocks drift
//!   beyond the lease); followers still ask the leader.
//! - `stale`: any node reads its own state at once; it may be behind.
//!
//! A node restarted as the leader of the term it had before (openraft restores a committed
//! vote without an election) serves reads only after applying its whole startup log: its
//! saved commit index can lag what it acknowledged before the crash.
//! - UNSAFE `local-reads` ([`ClusterConfig::unsafe_local_reads`], for the fault-injection
//!   suite's self-test only): every node, leader or follower, answers every read from its
//!   own state at once, whatever the read mode says. Reads may be stale; the suite must
//!   catch that.
//!
//! # Failover and membership
//!
//! A node that loses its leader stops serving linearizable reads (no read index) and
//! writes (no leader) within the election timeout; after an election the same paths go
//! to the new leader. The first start initializes the group from `initial-cluster` (every
//! founding member proposes the same membership, which openraft allows); a node started
//! with `--join` asks a member to add it as a learner and then a voter. `CLUSTER FORGET`
//! removes a voter. At shutdown a leader hands leadership to another voter first;
//! `CLUSTER TRANSFER-LEADER <id>`, sent to the leader, does the same on demand.
//!
//! # Caveats
//!
//! - A very large write (measured: a 100 MB `SET` on three nodes) cannot reach the
//!   followers within the AppendEntries deadline, which openraft derives from the election
//!   timeout; the followers elect another leader, the entry is discarded and the client
//!   gets [`UNKNOWN_OUTCOME`]. Nothing acknowledged is lost, but such writes never succeed.
//!   Batches of many smaller entries are cut to 16 MiB per message by `rpc`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use openraft::async_runtime::watch::WatchReceiver;
use openraft::errors::ClientWriteError;
use openraft::{ChangeMembers, ReadPolicy, ServerState, SnapshotPolicy};
use raft::{NodeInfo, Request, TypeConfig};
use resp::Frame;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::Status;
use tracing::{info, warn};

/// The data group that owns every slot.
pub const DATA_GROUP: u64 = 1;
/// Longest a command waits for a leader before `-CLUSTERDOWN`.
pub const NO_LEADER_WAIT: Duration = Duration::from_secs(3);
/// The reply when no leader can be found in time.
pub const CLUSTERDOWN: &str = "CLUSTERDOWN The cluster is down";
/// Default number of applied entries between snapshots.
pub const DEFAULT_SNAPSHOT_LOGS: u64 = 20_000;

type Raft = raft::typ::Raft;

/// How reads are served (see the module header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadMode {
    Linearizable,
    Lease,
    Stale,
}

/// What a node needs to take part in the cluster.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    pub node_id: u64,
    /// `ip:port` the gRPC server listens on.
    pub grpc_listen: String,
    /// `host:port` peers reach this node's gRPC server at.
    pub advertise: String,
    /// `host:port` clients reach this node's RESP server at.
    pub resp_addr: String,
    /// Founding members (id → gRPC `host:port`); empty for a one-member cluster.
    pub members: BTreeMap<u64, String>,
    /// A member's gRPC address to ask for admission (a node added to a running cluster).
    pub join: Option<String>,
    pub data_dir: PathBuf,
    pub read_mode: ReadMode,
    /// Applied entries between snapshots.
    pub snapshot_logs: u64,
    /// Leader heartbeat, milliseconds; elections start after 3-6 heartbeats of silence.
    pub heartbeat_ms: u64,
    /// UNSAFE: serve every read from this node's own state, with no ReadIndex and no
    /// lease, whatever `read_mode` says. Only for proving that the fault-injection suite
    /// catches stale reads; never in production.
    pub unsafe_local_reads: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("storage: {0}")]
    Storage(#[from] raft::Error),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("raft: {0}")]
    Raft(String),
}

/// A running node: its replica of the data group and its gRPC server.
pub struct Node {
    pub id: u64,
    config: ClusterConfig,
    raft: Raft,
    /// The node's log database (for its counters; the log stores hold their own handles).
    log_db: raft::LogDb,
    kv: Arc<Mutex<kv::Db>>,
    pool: rpc::PeerPool,
    /// Latest time stamped into a proposal (Unix ms).
    last_stamp: AtomicI64,
    /// Leader-side ReadIndex rounds shared by every read waiting when one starts.
    rounds: ReadRounds,
    /// (term, last log index) when this node started. A node restarted as the leader of
    /// the term it had (openraft restores a committed vote without an election) has no
    /// new entry of its own to commit first, and its committed index on disk may lag what
    /// it acknowledged before the crash; reads it serves in that term wait until it has
    /// applied its whole startup log (see [`Node::read_floor`]).
    started_with: (u64, u64),
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn raft_error(e: impl std::fmt::Display) -> Error {
    Error::Raft(e.to_string())
}

impl Node {
    /// Opens the node's storage, starts its Raft group and gRPC server, and on the first
    /// start initializes or joins the cluster.
    pub async fn start(config: ClusterConfig) -> Result<Arc<Node>, Error> {
        std::fs::create_dir_all(&config.data_dir)?;
        let kv = Arc::new(Mutex::new(kv::Db::new()));
        let (log_db, log, sm) = {
            let dir = config.data_dir.clone();
            let kv = kv.clone();
            tokio::task::spawn_blocking(move || -> Result<_, Error> {
                let log_db = raft::LogDb::open(&dir.join("raft"))
                    .map_err(|e| Error::Raft(format!("opening the log: {e}")))?;
                let (log, sm) = raft::open(&log_db, raft::GroupId(DATA_GROUP), &dir, kv)?;
                Ok((log_db, log, sm))
            })
            .await
            .map_err(raft_error)??
        };
        let local_address = config
            .advertise
            .rsplit_once(':')
            .and_then(|(host, _)| host.trim_matches(['[', ']']).parse::<IpAddr>().ok());
        let pool = rpc::PeerPool::new(rpc::PoolConfig {
            local_address,
            ..rpc::PoolConfig::default()
        });
        let network = rpc::GrpcNetworkFactory::<TypeConfig, std::fs::File>::new(
            pool.clone(),
            DATA_GROUP,
            config.node_id,
        );
        let hb = config.heartbeat_ms.max(10);
        let raft_config = openraft::Config {
            cluster_name: "redraft".into(),
            heartbeat_interval: hb,
            election_timeout_min: hb * 3,
            election_timeout_max: hb * 6,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_logs.max(1)),
            max_in_snapshot_log_to_keep: 1_000,
            ..openraft::Config::default()
        }
        .validate()
        .map_err(raft_error)?;
        // What the node starts with: the term of its saved vote and its last log index.
        let started_with = {
            use openraft::storage::{RaftLogReader, RaftLogStorage};
            use openraft::vote::RaftLeaderId;
            let mut log = log.clone();
            let state = log.get_log_state().await?;
            let vote = log.read_vote().await?;
            (
                vote.map_or(0, |v| v.leader_id().term()),
                state.last_log_id.map_or(0, |l| l.index()),
            )
        };
        let raft = Raft::new(config.node_id, Arc::new(raft_config), network, log, sm)
            .await
            .map_err(raft_error)?;

        let snapshot_dir = config.data_dir.join("snapshots");
        std::fs::create_dir_all(&snapshot_dir)?;
        let groups = rpc::Groups::<TypeConfig, raft::StateMachine>::new(move |_| {
            tempfile::tempfile_in(&snapshot_dir)
        });
        groups.insert(DATA_GROUP, raft.clone());
        let listener = tokio::net::TcpListener::bind(&config.grpc_listen).await?;
        let (stop, stop_rx) = watch::channel(false);
        let node = Arc::new(Node {
            id: config.node_id,
            config,
            started_with,
            raft,
            log_db,
            kv,
            pool,
            last_stamp: AtomicI64::new(0),
            rounds: ReadRounds::new(),
            stop,
            tasks: Mutex::new(Vec::new()),
        });
        let server = {
            let handler = Handler(node.clone());
            let mut stop = stop_rx.clone();
            // Peers' calls are small request/reply exchanges: without TCP_NODELAY a
            // reply written while the previous one is unacknowledged waits for the ACK.
            // (tonic sets it only on listeners it binds itself.)
            let incoming = tokio_stream::StreamExt::map(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                |accepted| {
                    accepted.inspect(|stream| {
                        if let Err(e) = stream.set_nodelay(true) {
                            warn!(error = %e, "cannot set TCP_NODELAY on a peer connection");
                        }
                    })
                },
            );
            tokio::spawn(async move {
                let result = tonic::transport::Server::builder()
                    .add_service(rpc::RaftService::new(groups).into_server())
                    .add_service(rpc::NodeService::new(handler).into_server())
                    .serve_with_incoming_shutdown(incoming, async move {
                        let _ = stop.wait_for(|s| *s).await;
                    })
                    .await;
                if let Err(e) = result {
                    warn!(error = %e, "gRPC server stopped");
                }
            })
        };
        node.tasks().push(server);
        node.tasks().push(tokio::spawn(run_read_rounds(
            node.raft.clone(),
            node.rounds.clone(),
            stop_rx.clone(),
        )));
        node.bootstrap().await?;
        node.tasks().push(tokio::spawn(log_leader_changes(
            node.raft.clone(),
            node.id,
            stop_rx,
        )));
        Ok(node)
    }

    fn tasks(&self) -> MutexGuard<'_, Vec<JoinHandle<()>>> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn info(&self) -> NodeInfo {
        NodeInfo {
            resp_addr: self.config.resp_addr.clone(),
            grpc_addr: self.config.advertise.clone(),
        }
    }

    async fn bootstrap(self: &Arc<Self>) -> Result<(), Error> {
        if self.raft.is_initialized().await.map_err(raft_error)? {
            info!(node = self.id, "resuming from the data directory");
            return Ok(());
        }
        if let Some(addr) = self.config.join.clone() {
            let node = self.clone();
            let mut stop = self.stop.subscribe();
            self.tasks().push(tokio::spawn(async move {
                let request = rpc::Join {
                    node_id: node.id,
                    resp_addr: node.config.resp_addr.clone(),
                    grpc_addr: node.config.advertise.clone(),
                };
                for attempt in 0..600u32 {
                    if *stop.borrow() {
                        return;
                    }
                    match node
                        .pool
                        .node(&addr)
                        .map_err(|e| Status::unavailable(e.to_string()))
                    {
                        Ok(mut peer) => match peer.join(request.clone()).await {
                            Ok(()) => {
                                info!(node = node.id, via = %addr, "joined the cluster");
                                return;
                            }
                            Err(e) => {
                                warn!(attempt, error = %e.message(), "join refused; retrying")
                            }
                        },
                        Err(e) => warn!(attempt, error = %e.message(), "join failed; retrying"),
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                        _ = stop.changed() => return,
                    }
                }
            }));
            return Ok(());
        }
        let mut members = BTreeMap::new();
        if self.config.members.is_empty() {
            members.insert(self.id, self.info());
        } else {
            for (&id, addr) in &self.config.members {
                let resp_addr = if id == self.id {
                    self.config.resp_addr.clone()
                } else {
                    String::new()
                };
                members.insert(
                    id,
                    NodeInfo {
                        resp_addr,
                        grpc_addr: addr.clone(),
                    },
                );
            }
        }
        info!(
            node = self.id,
            members = members.len(),
            "initializing the cluster"
        );
        match self.raft.initialize(members).await {
            Ok(()) => Ok(()),
            // Another founding member's identical proposal got here first.
            Err(e)
                if e.to_string().contains("NotAllowed")
                    || e.to_string().contains("not allowed") =>
            {
                Ok(())
            }
            Err(e) => Err(raft_error(e)),
        }
    }

    /// The data the server reads (the group's state machine).
    pub fn db(&self) -> MutexGuard<'_, kv::Db> {
        self.kv.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A copy of the metrics, for status and membership changes (not the per-command path:
    /// see [`Node::leader`]).
    fn metrics(&self) -> openraft::RaftMetrics<TypeConfig> {
        self.raft.metrics().borrow_watched().clone()
    }

    /// True if this node believes it leads the data group.
    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow_watched().current_leader == Some(self.id)
    }

    /// The current leader and its gRPC address, if known. Asked for every write and read
    /// barrier, so it reads the metrics in place instead of copying them.
    fn leader(&self) -> Option<(u64, String)> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow_watched();
        let id = m.current_leader?;
        let addr = m
            .membership_config
            .membership()
            .get_node(&id)
            .map(|n| n.grpc_addr.clone())?;
        Some((id, addr))
    }

    /// A time to stamp a proposal with: the clock, never behind an earlier stamp.
    fn stamp(&self) -> i64 {
        let now = wall_ms();
        self.last_stamp.fetch_max(now, Ordering::AcqRel).max(now)
    }

    /// Proposes a write; returns the reply (see the module header for forwarding and
    /// retries).
    pub async fn write(&self, proposal: &kv::Proposal) -> Frame {
        let encoded = Bytes::from(proposal.encode());
        let deadline = Instant::now() + NO_LEADER_WAIT;
        loop {
            match self.leader() {
                Some((leader, _)) if leader == self.id => {
                    match self.propose_local(encoded.clone()).await {
                        Ok(frame) | Err(Retry::No(frame)) => return frame,
                        Err(Retry::Yes) => {}
                    }
                }
                Some((leader, addr)) => {
                    let forward = rpc::Forward {
                        group_id: DATA_GROUP,
                        args: Vec::new(),
                        proto_version: 3,
                        seed: None,
                        proposal: Some(encoded.clone()),
                    };
                    match self.pool.node(&addr) {
                        Ok(mut peer) => match peer.forward(forward).await {
                            Ok(reply) => {
                                return Frame::from_wire(&reply).unwrap_or_else(|e| {
                                    Frame::error(format!(
                                    "ERR write outcome unknown (bad reply from the leader: {e})"
                                ))
                                })
                            }
                            // Certainly not appended (the leader refused it before proposing,
                            // or no connection could be opened): safe to try again.
                            Err(s) if never_reached_the_log(&s) => {
                                tracing::debug!(leader, error = %s.message(), "forward refused; retrying");
                            }
                            Err(s) => {
                                return Frame::error(format!(
                                "ERR write outcome unknown (forwarding to the leader failed: {})",
                                s.message().replace(['\r', '\n'], " ")
                            ))
                            }
                        },
                        Err(e) => tracing::debug!(error = %e, "no connection to the leader"),
                    }
                }
                None => {}
            }
            if Instant::now() >= deadline {
                return Frame::error(CLUSTERDOWN);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Proposes several writes from one client's pipeline, replying in order. On the
    /// leader they are submitted together (one batch to Raft, so they share appends and
    /// flushes) and keep their order in the log. A write refused before it was appended
    /// goes the one-by-one way; one discarded after it was appended gets the
    /// unknown-outcome error (it may be in the log).
    pub async fn write_many(&self, proposals: &[kv::Proposal]) -> Vec<Frame> {
        use futures_util::StreamExt;
        let mut out = Vec::with_capacity(proposals.len());
        if proposals.len() > 1 && self.is_leader() {
            let requests: Vec<Request> = proposals
                .iter()
                .map(|p| Request {
                    now_ms: self.stamp(),
                    proposal: p.encode(),
                })
                .collect();
            if let Ok(mut stream) = self.raft.client_write_many(requests).await {
                // `None`: refused before it was appended, to be sent again below.
                let mut results: Vec<Option<Frame>> = Vec::with_capacity(proposals.len());
                while let Some(result) = stream.next().await {
                    results.push(match result {
                        Ok(Ok(written)) => Some(written.response.0),
                        Ok(Err(ClientWriteError::ForwardToLeader(_))) => None,
                        Ok(Err(ClientWriteError::LogEntryDiscarded(_))) => {
                            Some(Frame::error(UNKNOWN_OUTCOME))
                        }
                        Ok(Err(e)) => Some(Frame::error(format!(
                            "ERR raft: {}",
                            e.to_string().replace(['\r', '\n'], " ")
                        ))),
                        Err(fatal) => Some(Frame::error(format!(
                            "ERR raft: {}",
                            fatal.to_string().replace(['\r', '\n'], " ")
                        ))),
                    });
                    if results.len() == proposals.len() {
                        break;
                    }
                }
                // Answered in order; the refused ones (a change of leader refuses every
                // write after it too) and any never answered go the one-by-one way.
                for (i, result) in results.into_iter().enumerate() {
                    out.push(match result {
                        Some(frame) => frame,
                        None => self.write(&proposals[i]).await,
                    });
                }
            }
        }
        for proposal in &proposals[out.len()..] {
            out.push(self.write(proposal).await);
        }
        out
    }

    /// Proposes on this node, which believes it leads.
    async fn propose_local(&self, encoded: Bytes) -> Result<Frame, Retry> {
        let request = Request {
            now_ms: self.stamp(),
            proposal: encoded.to_vec(),
        };
        match self.raft.client_write(request).await {
            Ok(response) => Ok(response.data.0),
            // Refused before it was appended (not leading, or a new leader not yet
            // acknowledged by a quorum): safe to send again, to whoever leads.
            Err(e) if matches!(e.api_error(), Some(ClientWriteError::ForwardToLeader(_))) => {
                Err(Retry::Yes)
            }
            // Discarded on a change of leader after it was appended: it may still be
            // committed by the next leader, so it must never be proposed again.
            Err(e) if matches!(e.api_error(), Some(ClientWriteError::LogEntryDiscarded(_))) => {
                Err(Retry::No(Frame::error(UNKNOWN_OUTCOME)))
            }
            Err(e) => Err(Retry::No(Frame::error(format!(
                "ERR raft: {}",
                e.to_string().replace(['\r', '\n'], " ")
            )))),
        }
    }

    /// Waits until a read may be served here at the configured consistency, then runs
    /// `read` against the state. Returns `-CLUSTERDOWN` when that cannot be confirmed.
    pub async fn read<T>(&self, read: impl FnOnce(&kv::Db) -> T) -> Result<T, Frame> {
        self.read_barrier().await?;
        Ok(read(&self.db()))
    }

    /// Returns once a read served from this node's state now would be linearizable (at
    /// the configured consistency): every write acknowledged before the call is applied
    /// here. One barrier serves every read received before it started.
    pub async fn read_barrier(&self) -> Result<(), Frame> {
        if self.config.read_mode == ReadMode::Stale || self.config.unsafe_local_reads {
            return Ok(());
        }
        let deadline = Instant::now() + NO_LEADER_WAIT;
        loop {
            match self.leader() {
                Some((leader, _)) if leader == self.id => {
                    let confirmed = match self.config.read_mode {
                        ReadMode::Lease => self
                            .raft
                            .ensure_linearizable(ReadPolicy::LeaseRead)
                            .await
                            .is_ok(),
                        _ => self.rounds.wait().await.is_some(),
                    };
                    if confirmed && self.wait_applied(self.read_floor(), deadline).await {
                        return Ok(());
                    }
                    tracing::debug!("read index refused; retrying");
                }
                Some((_, addr)) => {
                    if let Ok(mut peer) = self.pool.node(&addr) {
                        match peer.read_index(DATA_GROUP).await {
                            Ok(index) => {
                                let left = deadline.saturating_duration_since(Instant::now());
                                let waited = self
                                    .raft
                                    .wait(Some(left.max(Duration::from_millis(1))))
                                    .applied_index_at_least(Some(index.read_index), "read index")
                                    .await;
                                if waited.is_ok() {
                                    return Ok(());
                                }
                            }
                            Err(s) => {
                                tracing::debug!(error = %s.message(), "leader refused a read index")
                            }
                        }
                    }
                }
                None => {}
            }
            if Instant::now() >= deadline {
                return Err(Frame::error(CLUSTERDOWN));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The least index a read served by this node as leader must see applied: its last
    /// log index at startup while it leads the term it started in, else 0.
    fn read_floor(&self) -> u64 {
        let (term, last) = self.started_with;
        if self.metrics().current_term == term {
            last
        } else {
            0
        }
    }

    /// Waits until this node has applied `index` (true), or `deadline` passes (false).
    async fn wait_applied(&self, index: u64, deadline: Instant) -> bool {
        if index == 0
            || self
                .metrics()
                .last_applied
                .is_some_and(|l| l.index() >= index)
        {
            return true;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        self.raft
            .wait(Some(left.max(Duration::from_millis(1))))
            .applied_index_at_least(Some(index), "the startup log applied")
            .await
            .is_ok()
    }

    /// `CLUSTER FORGET <node-id>`: removes a node from the group (on the leader, or
    /// forwarded to it).
    pub async fn forget(&self, node_id: u64) -> Frame {
        let deadline = Instant::now() + NO_LEADER_WAIT;
        loop {
            match self.leader() {
                Some((leader, _)) if leader == self.id => {
                    return match self.remove_member(node_id).await {
                        Ok(()) => Frame::OK,
                        Err(e) => {
                            Frame::error(format!("ERR {}", e.message().replace(['\r', '\n'], " ")))
                        }
                    };
                }
                Some((_, addr)) => {
                    if let Ok(mut peer) = self.pool.node(&addr) {
                        return match peer.leave(rpc::Leave { node_id }).await {
                            Ok(()) => Frame::OK,
                            Err(e) => Frame::error(format!(
                                "ERR {}",
                                e.message().replace(['\r', '\n'], " ")
                            )),
                        };
                    }
                }
                None => {}
            }
            if Instant::now() >= deadline {
                return Frame::error(CLUSTERDOWN);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Hands leadership to voter `to` (`CLUSTER TRANSFER-LEADER`): only on the leader,
    /// which asks `to` to campaign at once; waits a little for `to` to take over. A
    /// refusal says which node leads, so the caller can ask it instead.
    pub async fn transfer_leader(&self, to: u64) -> Frame {
        let m = self.metrics();
        if m.current_leader != Some(self.id) {
            return Frame::error(match m.current_leader {
                Some(l) => format!("ERR not the leader; node {l} leads"),
                None => "ERR not the leader; no leader is known".to_string(),
            });
        }
        if to == self.id {
            return Frame::OK;
        }
        if !m
            .membership_config
            .membership()
            .voter_ids()
            .any(|v| v == to)
        {
            return Frame::error(format!("ERR node {to} is not a voter"));
        }
        info!(to, "transferring leadership on request");
        if let Err(e) = self.raft.trigger().transfer_leader(to).await {
            return Frame::error(format!(
                "ERR transfer failed: {}",
                e.to_string().replace(['\r', '\n'], " ")
            ));
        }
        let moved = self
            .raft
            .wait(Some(Duration::from_secs(2)))
            .metrics(|m| m.current_leader == Some(to), "leadership transferred")
            .await;
        match moved {
            Ok(_) => Frame::OK,
            Err(_) => Frame::error(format!("ERR node {to} did not take over within 2 seconds")),
        }
    }

    async fn remove_member(&self, node_id: u64) -> Result<(), Status> {
        let m = self.metrics();
        let membership = m.membership_config.membership();
        if membership.get_node(&node_id).is_none() {
            return Err(Status::not_found(format!("Unknown node {node_id}")));
        }
        let voters: BTreeSet<u64> = membership.voter_ids().collect();
        if voters.contains(&node_id) {
            if voters.len() == 1 {
                return Err(Status::failed_precondition("cannot remove the last voter"));
            }
            self.raft
                .change_membership(
                    ChangeMembers::RemoveVoters(BTreeSet::from([node_id])),
                    false,
                )
                .await
                .map_err(|e| Status::internal(e.to_string()))?;
        }
        let m = self.metrics();
        if m.membership_config
            .membership()
            .get_node(&node_id)
            .is_some()
        {
            self.raft
                .change_membership(ChangeMembers::RemoveNodes(BTreeSet::from([node_id])), false)
                .await
                .map_err(|e| Status::internal(e.to_string()))?;
        }
        info!(node = node_id, "removed from the cluster");
        Ok(())
    }

    async fn add_member(&self, join: rpc::Join) -> Result<(), Status> {
        let node = NodeInfo {
            resp_addr: join.resp_addr,
            grpc_addr: join.grpc_addr,
        };
        let m = self.metrics();
        if m.membership_config
            .membership()
            .voter_ids()
            .any(|id| id == join.node_id)
        {
            return Ok(());
        }
        self.raft
            .add_learner(join.node_id, node, true)
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        info!(node = join.node_id, "added as a learner");
        self.raft
            .change_membership(
                ChangeMembers::AddVoterIds(BTreeSet::from([join.node_id])),
                false,
            )
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        info!(node = join.node_id, "promoted to voter");
        Ok(())
    }

    /// Fields for `INFO replication`.
    pub fn status(&self) -> Vec<(&'static str, String)> {
        let m = self.metrics();
        let role = match m.state {
            ServerState::Leader => "leader",
            ServerState::Follower => "follower",
            ServerState::Learner => "learner",
            ServerState::Candidate => "candidate",
            ServerState::Shutdown => "shutdown",
        };
        let index = |l: &Option<raft::typ::LogId>| l.as_ref().map_or(0, |l| l.index());
        let membership = m.membership_config.membership();
        let log = self.log_db.stats();
        let voters: Vec<String> = membership.voter_ids().map(|id| id.to_string()).collect();
        let learners: Vec<String> = membership.learner_ids().map(|id| id.to_string()).collect();
        vec![
            ("role", role.to_string()),
            ("raft_node_id", self.id.to_string()),
            ("raft_group", DATA_GROUP.to_string()),
            ("raft_term", m.current_term.to_string()),
            (
                "raft_leader_id",
                m.current_leader
                    .map_or_else(|| "none".to_string(), |l| l.to_string()),
            ),
            ("raft_commit_index", index(&m.local_committed).to_string()),
            ("raft_applied_index", index(&m.last_applied).to_string()),
            (
                "raft_last_log_index",
                m.last_log_index.unwrap_or(0).to_string(),
            ),
            (
                "raft_log_size",
                (m.last_log_index
                    .unwrap_or(0)
                    .saturating_sub(index(&m.purged)))
                .to_string(),
            ),
            ("raft_last_snapshot_index", index(&m.snapshot).to_string()),
            ("raft_log_appends", log.appends.to_string()),
            ("raft_log_entries_appended", log.entries.to_string()),
            ("raft_log_flushes", log.flushes.to_string()),
            ("raft_voters", voters.join(",")),
            ("raft_learners", learners.join(",")),
            (
                "read_consistency",
                format!("{:?}", self.config.read_mode).to_lowercase(),
            ),
            (
                "unsafe_mode",
                if self.config.unsafe_local_reads {
                    "local-reads"
                } else {
                    "none"
                }
                .to_string(),
            ),
        ]
    }

    /// Hands leadership to another voter if this node leads, then stops Raft and the gRPC
    /// server.
    pub async fn shutdown(&self) {
        let m = self.metrics();
        if m.current_leader == Some(self.id) {
            let target = m
                .membership_config
                .membership()
                .voter_ids()
                .find(|&id| id != self.id);
            if let Some(target) = target {
                info!(to = target, "handing leadership away before shutdown");
                if self.raft.trigger().transfer_leader(target).await.is_ok() {
                    let _ = self
                        .raft
                        .wait(Some(Duration::from_secs(2)))
                        .metrics(
                            |m| m.current_leader != Some(self.id),
                            "leadership handed away",
                        )
                        .await;
                }
            }
        }
        let _ = self.stop.send(true);
        if let Err(e) = self.raft.shutdown().await {
            warn!(error = %e, "raft shutdown");
        }
        let tasks: Vec<_> = self.tasks().drain(..).collect();
        for t in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
    }
}

/// ReadIndex rounds shared by concurrent reads (the leader's side of "one round serves
/// every read waiting at that moment"). A reader registers, then waits for the first
/// round that *started* after it registered: that round confirmed leadership and applied
/// the log at a moment after the reader arrived, which is what linearizability needs.
#[derive(Clone)]
struct ReadRounds {
    /// (rounds started, readers waiting for the next round).
    state: Arc<Mutex<(u64, usize)>>,
    /// Wakes the round runner when a reader registers.
    wake: Arc<tokio::sync::Notify>,
    /// (last round finished, the read index it confirmed, or `None` if it failed).
    done: watch::Sender<(u64, Option<u64>)>,
}

impl ReadRounds {
    fn new() -> Self {
        ReadRounds {
            state: Arc::default(),
            wake: Arc::default(),
            done: watch::channel((0, None)).0,
        }
    }

    /// Waits for a round that started after this call; its read index if it confirmed
    /// leadership (the log is then applied at least that far on this node).
    async fn wait(&self) -> Option<u64> {
        let mut done = self.done.subscribe();
        let target = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            state.1 += 1;
            state.0 + 1
        };
        self.wake.notify_one();
        let confirmed = done
            .wait_for(|(round, _)| *round >= target)
            .await
            .map(|r| r.1);
        confirmed.ok().flatten()
    }
}

/// Runs ReadIndex rounds back to back while readers wait.
async fn run_read_rounds(raft: Raft, rounds: ReadRounds, mut stop: watch::Receiver<bool>) {
    loop {
        let round = {
            let mut state = rounds.state.lock().unwrap_or_else(|p| p.into_inner());
            if state.1 == 0 {
                None
            } else {
                state.0 += 1;
                state.1 = 0;
                Some(state.0)
            }
        };
        let Some(round) = round else {
            tokio::select! {
                _ = rounds.wake.notified() => continue,
                _ = stop.changed() => return,
            }
        };
        let index = tokio::select! {
            r = raft.ensure_linearizable(ReadPolicy::ReadIndex) => r.ok().map(|read| read.log_id().index()),
            _ = stop.changed() => return,
        };
        rounds.done.send_replace((round, index));
    }
}

/// Why a proposal got no reply of its own.
enum Retry {
    /// Certainly not appended: send it again, to whoever leads now.
    Yes,
    /// Final: reply with this (an error).
    No(Frame),
}

/// The reply when a write may or may not have been applied.
pub const UNKNOWN_OUTCOME: &str =
    "ERR write outcome unknown: leadership changed while it was pending (it may or may not have been applied)";

/// True when a forwarded write certainly never reached the leader's log: the leader
/// refused it at its own check (`FAILED_PRECONDITION`), or the connection could not be
/// opened. Anything else (a timeout, a connection lost mid-call) leaves it unknown.
fn never_reached_the_log(status: &Status) -> bool {
    match status.code() {
        tonic::Code::FailedPrecondition => true,
        tonic::Code::Unavailable => {
            let text = format!("{status:?}").to_ascii_lowercase();
            text.contains("connection refused")
                || text.contains("connect error")
                || text.contains("error trying to connect")
        }
        _ => false,
    }
}

/// Logs leader changes and membership changes as they happen.
async fn log_leader_changes(raft: Raft, id: u64, mut stop: watch::Receiver<bool>) {
    // The server metrics change only with the vote, the role, the leader or the
    // membership; the full metrics change with every commit and would wake this task for
    // each write.
    let mut metrics = raft.server_metrics();
    let mut last = (None, 0u64, String::new());
    loop {
        let (leader, term, voters) = {
            let m = metrics.borrow_watched();
            let voters: Vec<String> = m
                .membership_config
                .membership()
                .voter_ids()
                .map(|v| v.to_string())
                .collect();
            (m.current_leader, m.vote.leader_id().term, voters.join(","))
        };
        if (leader, term) != (last.0, last.1) {
            match leader {
                Some(l) if l == id => info!(node = id, term, "elected leader"),
                Some(l) => info!(node = id, term, leader = l, "following a new leader"),
                None => info!(node = id, term, "no leader"),
            }
        }
        if voters != last.2 {
            info!(node = id, voters = %voters, "membership changed");
        }
        last = (leader, term, voters);
        tokio::select! {
            changed = metrics.changed() => if changed.is_err() { return },
            _ = stop.changed() => return,
        }
    }
}

/// The `Node` gRPC service: what other nodes ask of this one.
struct Handler(Arc<Node>);

impl rpc::NodeHandler for Handler {
    async fn forward(&self, req: rpc::Forward) -> Result<Vec<u8>, Status> {
        let node = &self.0;
        let Some(encoded) = req.proposal else {
            return Err(Status::invalid_argument(
                "only prepared proposals are forwarded",
            ));
        };
        kv::Proposal::decode(&encoded).map_err(|e| Status::invalid_argument(e.to_string()))?;
        if node.leader().map(|(l, _)| l) != Some(node.id) {
            return Err(Status::failed_precondition("not the leader"));
        }
        // The reply travels in the lossless wire form, so the forwarding node can still
        // merge it (an EXEC's array) and encode it for its client's protocol.
        match node.propose_local(encoded).await {
            Ok(frame) | Err(Retry::No(frame)) => Ok(frame.to_wire()),
            // Not appended: the forwarding node may send it again.
            Err(Retry::Yes) => Err(Status::failed_precondition("not the leader")),
        }
    }

    async fn read_index(&self, group_id: u64) -> Result<rpc::ReadIndex, Status> {
        let node = &self.0;
        if group_id != DATA_GROUP {
            return Err(Status::not_found(format!("no group {group_id}")));
        }
        // One round serves every follower read (and local read) waiting when it starts.
        let read_index = node
            .rounds
            .wait()
            .await
            .ok_or_else(|| Status::failed_precondition("not the leader"))?;
        let m = node.metrics();
        Ok(rpc::ReadIndex {
            read_index: read_index.max(node.read_floor()),
            leader: node.id,
            term: m.current_term,
        })
    }

    async fn join(&self, req: rpc::Join) -> Result<(), Status> {
        let node = &self.0;
        match node.leader() {
            Some((l, _)) if l == node.id => node.add_member(req).await,
            Some((_, addr)) => {
                let mut peer = node
                    .pool
                    .node(&addr)
                    .map_err(|e| Status::unavailable(e.to_string()))?;
                peer.join(req).await
            }
            None => Err(Status::unavailable("no leader")),
        }
    }

    async fn leave(&self, req: rpc::Leave) -> Result<(), Status> {
        let node = &self.0;
        match node.leader() {
            Some((l, _)) if l == node.id => node.remove_member(req.node_id).await,
            _ => Err(Status::failed_precondition("not the leader")),
        }
    }

    async fn status(&self) -> Result<rpc::NodeStatus, Status> {
        let node = &self.0;
        let m = node.metrics();
        let role = match m.state {
            ServerState::Leader => rpc::Role::Leader,
            ServerState::Learner => rpc::Role::Learner,
            ServerState::Candidate => rpc::Role::Candidate,
            _ => rpc::Role::Follower,
        };
        let index = |l: &Option<raft::typ::LogId>| l.as_ref().map(|l| l.index());
        Ok(rpc::NodeStatus {
            node_id: node.id,
            groups: vec![rpc::GroupStatus {
                group_id: DATA_GROUP,
                role,
                term: m.current_term,
                leader: m.current_leader,
                commit: index(&m.local_committed),
                applied: index(&m.last_applied),
            }],
        })
    }
}
