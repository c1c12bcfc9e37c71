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
//! # Failover
//!
//! A node that loses its leader stops serving linearizable reads (no read index) and
//! writes (no leader) within the election timeout; after an election the same paths go
//! to the new leader. The first start initializes the group from `initial-cluster` (every
//! founding member proposes the same membership, which openraft allows); a node started
//! with `--join` asks a member to add it as a learner and then a voter. `CLUSTER FORGET`
//! removes a voter. At shutdown a leader hands leadership to another voter first;
//! `CLUSTER TRANSFER-LEADER <id>`, sent to the leader, does the same on demand.
//!
//! # Large writes
//!
//! A write whose encoded proposal is over 64 KiB (`raft::uploads::PART_BYTES`) is proposed
//! by the leader as parts of an upload, in windows of `PART_WINDOW` parts with
//! `WINDOWS_IN_FLIGHT` windows in flight, then one entry that
//! assembles and applies them (see `raft::uploads`); other clients' writes interleave with
//! the parts. Until that last entry is appended nothing is applied, so a part refused or
//! lost to a change of leader means the write was certainly not applied: it is sent again
//! as a new upload (a few times, each with a fresh wait for a leader). A follower forwards
//! a large write whole (the Node service takes messages up to `max-request-bytes`, with a
//! deadline that grows with the bytes). A write over `max-request-bytes` is refused before
//! anything is proposed.
//!
//! # When the log cannot write, or lost its end
//!
//! - A full disk or a failed write stalls the node's log (see `raft::log_store`): writes
//!   sent to this node get `-MISCONF` (`Node::refuse_write`); the node refuses votes and
//!   stops standing for election and, as a leader, stops sending heartbeats so the others
//!   elect a leader among themselves (a transfer would need it to persist a vote for the
//!   new leader, which it cannot); as a follower it acknowledges the new leader's vote
//!   without waiting for the disk (a learnt term, not a grant) and sends its reads to the
//!   leader, since it cannot append what it would need to apply ([`ReadAt::Leader`]). It all
//!   resumes once the log writes again (`guard_votes`).
//! - A log found at start to hold less than the node had flushed (`raft::Behind`): a lone
//!   node refuses to start; a member of a larger group neither votes nor stands for
//!   election until its log reaches what it had flushed (the floor), and proposes empty
//!   writes to move an idle cluster along. The leader replicates to it again from where its
//!   log ends (openraft's `allow_log_reversion`), where it would otherwise panic.
//!
//! # Membership
//!
//! A joining node becomes a voter only once its log has caught up with the leader's last
//! index at the time it asked (`CATCH_UP_WAIT` per request; the joiner asks again until
//! it has), so a joiner that never answers stays a learner and never costs the group its
//! quorum. A membership change that meets one still being committed waits for it
//! (`MEMBERSHIP_WAIT`) instead of failing.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use openraft::async_runtime::watch::WatchReceiver;
use openraft::errors::ClientWriteError;
use openraft::{ChangeMembers, ReadPolicy, ServerState, SnapshotPolicy};
use raft::{Request, TypeConfig};
use resp::Frame;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::Status;
use tracing::{info, warn};
use types::{GroupId, NodeInfo};

pub use raft::Health as LogHealth;

/// The data group that owns every slot.
pub const DATA_GROUP: GroupId = GroupId(1);
/// Longest a command waits for a leader before `-CLUSTERDOWN`.
pub const NO_LEADER_WAIT: Duration = Duration::from_secs(3);
/// The reply when no leader can be found in time.
pub const CLUSTERDOWN: &str = "CLUSTERDOWN The cluster is down";
/// Default number of applied entries between snapshots.
pub const DEFAULT_SNAPSHOT_LOGS: u64 = 20_000;

type Raft = raft::typ::Raft;

/// Where a read is served (see [`Node::read_barrier`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadAt {
    /// From this node's state.
    Here,
    /// By the leader ([`Node::read_at_leader`]).
    Leader,
}

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
    /// UNSAFE: skip the log's checksums and its comparison with the watermark at start, so
    /// a damaged log loses acknowledged writes silently. Only for proving that the
    /// damaged-log tests catch that; never in production.
    pub unsafe_skip_log_checks: bool,
    /// Largest write (its encoded proposal) accepted; larger ones are refused before
    /// anything is proposed.
    pub max_request_bytes: usize,
}

/// Default [`ClusterConfig::max_request_bytes`]: 600 MiB, room for one value of Redis's
/// largest bulk string (`proto-max-bulk-len`, 512 MB) with its command around it.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 600 << 20;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("storage: {0}")]
    Storage(#[from] raft::Error),
    /// The log holds less than this node had flushed, and no other member can bring it
    /// back.
    #[error("{0}")]
    Behind(String),
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
    /// The node's log database (for its counters and health; the log stores hold their own
    /// handles).
    log_db: raft::LogDb,
    /// The Raft service's view of the groups (and of which replicas may vote).
    groups: rpc::Groups<TypeConfig, raft::StateMachine>,
    /// Makes upload ids unique across restarts of the node.
    upload_ids: AtomicU64,
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
        let options = raft::LogOptions {
            verify: !config.unsafe_skip_log_checks,
        };
        let (log_db, opened) = {
            let dir = config.data_dir.clone();
            let kv = kv.clone();
            tokio::task::spawn_blocking(move || -> Result<_, Error> {
                let log_db = raft::LogDb::open_with(&dir.join("raft"), options)
                    .map_err(|e| Error::Raft(format!("opening the log: {e}")))?;
                let opened = raft::open(&log_db, DATA_GROUP, &dir, kv)?;
                Ok((log_db, opened))
            })
            .await
            .map_err(raft_error)??
        };
        let raft::Opened { log, sm, behind } = opened;
        if let Some(b) = &behind {
            warn!(group = %DATA_GROUP, behind = %b,
                "the Raft log holds less than this node had flushed (damaged?); it will not \
                 vote or lead until it has caught up from the others");
        }
        let local_address = config
            .advertise
            .rsplit_once(':')
            .and_then(|(host, _)| host.trim_matches(['[', ']']).parse::<IpAddr>().ok());
        let max_forward = config.max_request_bytes + (1 << 20);
        let pool = rpc::PeerPool::new(rpc::PoolConfig {
            local_address,
            max_forward_bytes: max_forward,
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
            // A follower whose log lost its end (damage found at its start, see
            // `raft::LogStore::verify`) answers below what the leader knew it had: the
            // leader must replicate again from there, not panic (openraft's default). That
            // follower neither votes nor leads until it has caught up.
            allow_log_reversion: Some(true),
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
        if let Some(b) = &behind {
            // The membership the log and snapshot hold, once openraft has loaded it.
            let _ = raft
                .wait(Some(Duration::from_secs(5)))
                .metrics(
                    |m| {
                        m.membership_config
                            .membership()
                            .voter_ids()
                            .next()
                            .is_some()
                    },
                    "membership loaded",
                )
                .await;
            let voters: BTreeSet<u64> = raft
                .metrics()
                .borrow_watched()
                .membership_config
                .membership()
                .voter_ids()
                .collect();
            if voters.iter().all(|&v| v == config.node_id) {
                let _ = raft.shutdown().await;
                return Err(Error::Behind(format!(
                    "the Raft log in {} holds less than this node acknowledged ({b}), and \
                     no other member can bring it back: it will not start. Restore the data \
                     directory from a backup, or move it aside to start an empty node.",
                    config.data_dir.join("raft").display()
                )));
            }
            // Not a voter, nor a candidate, until the log is whole again.
            raft.runtime_config().elect(false);
        }

        let snapshot_dir = config.data_dir.join("snapshots");
        std::fs::create_dir_all(&snapshot_dir)?;
        let groups = rpc::Groups::<TypeConfig, raft::StateMachine>::new(move |_| {
            tempfile::tempfile_in(&snapshot_dir)
        });
        groups.insert(DATA_GROUP, raft.clone());
        if let Some(b) = &behind {
            groups.set_vote_refusal(DATA_GROUP, Some(format!("catching up after damage: {b}")));
        }
        let listener = tokio::net::TcpListener::bind(&config.grpc_listen).await?;
        let (stop, stop_rx) = watch::channel(false);
        let node = Arc::new(Node {
            id: config.node_id,
            config,
            started_with,
            raft,
            log_db,
            groups: groups.clone(),
            upload_ids: AtomicU64::new(wall_ms() as u64 ^ (std::process::id() as u64) << 40),
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
            let incoming = accept_peers(listener);
            tokio::spawn(async move {
                let result = tonic::transport::Server::builder()
                    .add_service(rpc::RaftService::new(groups).into_server())
                    .add_service(
                        rpc::NodeService::new(handler)
                            .with_max_message(max_forward)
                            .into_server(),
                    )
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
        node.tasks().push(tokio::spawn(guard_votes(
            node.clone(),
            behind.map(|b| b.floor),
            stop_rx.clone(),
        )));
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

    /// Why this node refuses writes now, as the reply to give: a write larger than
    /// `max-request-bytes`, or a log that cannot write (`-MISCONF`, as Redis answers when it
    /// cannot write its AOF).
    fn refuse_write(&self, size: usize) -> Option<Frame> {
        if size > self.config.max_request_bytes {
            return Some(Frame::error(format!(
                "ERR write of {size} bytes exceeds max-request-bytes ({})",
                self.config.max_request_bytes
            )));
        }
        self.log_health().cause().map(|cause| {
            Frame::error(format!(
                "MISCONF Errors writing to the Raft log: {}",
                cause.replace(['\r', '\n'], " ")
            ))
        })
    }

    /// Whether this node's log can write now, and why not.
    pub fn log_health(&self) -> raft::Health {
        self.log_db.health_now()
    }

    /// A way to watch the log's health change.
    pub fn watch_log_health(&self) -> watch::Receiver<raft::Health> {
        self.log_db.health()
    }

    /// True when the disk holding the log has room for it to write again.
    pub fn log_has_room(&self) -> bool {
        self.log_db.has_room()
    }

    /// Proposes a write; returns the reply (see the module header for forwarding and
    /// retries).
    pub async fn write(&self, proposal: &kv::Proposal) -> Frame {
        self.write_encoded(proposal.encode().into()).await
    }

    /// [`Node::write`], for a proposal already encoded.
    async fn write_encoded(&self, encoded: Bytes) -> Frame {
        if let Some(refused) = self.refuse_write(encoded.len()) {
            return refused;
        }
        let mut deadline = Instant::now() + NO_LEADER_WAIT;
        // A large write takes longer than the wait for a leader; one lost to a change of
        // leader (certainly not applied) gets a fresh wait, a few times.
        let large = encoded.len() > raft::uploads::PART_BYTES;
        let mut large_attempts = 0;
        let retry_large = |deadline: &mut Instant, attempts: &mut u32| {
            if large && *attempts < LARGE_ATTEMPTS {
                *attempts += 1;
                *deadline = (*deadline).max(Instant::now() + NO_LEADER_WAIT);
            }
        };
        loop {
            match self.leader() {
                Some((leader, _)) if leader == self.id => {
                    match self.propose_local(encoded.clone()).await {
                        Ok(frame) | Err(Retry::No(frame)) => return frame,
                        Err(Retry::Yes) => retry_large(&mut deadline, &mut large_attempts),
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
                                retry_large(&mut deadline, &mut large_attempts);
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
            // A large write starts over from its first part: let a change of leader
            // settle first.
            let pause = if large && large_attempts > 0 { 500 } else { 20 };
            tokio::time::sleep(Duration::from_millis(pause)).await;
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
        let encoded: Vec<Bytes> = proposals.iter().map(|p| p.encode().into()).collect();
        let small = encoded.iter().all(|e| e.len() <= raft::uploads::PART_BYTES);
        let refused = encoded
            .iter()
            .map(|e| e.len())
            .max()
            .and_then(|n| self.refuse_write(n));
        if proposals.len() > 1 && small && refused.is_none() && self.is_leader() {
            let requests: Vec<Request> = encoded
                .iter()
                .map(|p| Request::encoded(self.stamp(), p.clone()))
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
                        None => self.write_encoded(encoded[i].clone()).await,
                    });
                }
            }
        }
        for e in &encoded[out.len()..] {
            out.push(self.write_encoded(e.clone()).await);
        }
        out
    }

    /// Proposes on this node, which believes it leads.
    async fn propose_local(&self, encoded: Bytes) -> Result<Frame, Retry> {
        if encoded.len() > raft::uploads::PART_BYTES {
            return self.propose_large(encoded).await;
        }
        let request = Request::encoded(self.stamp(), encoded);
        Self::outcome(self.raft.client_write(request).await)
    }

    /// Proposes a write larger than a part (see `raft::uploads`): its parts, at most
    /// `PART_WINDOW` in flight, then the entry that applies them. Other clients' writes
    /// interleave with the parts. Until the final entry is appended nothing can apply, so
    /// a part refused or lost to a change of leader means the write was certainly not
    /// applied, and it is sent again (as a new upload) to whoever leads.
    async fn propose_large(&self, encoded: Bytes) -> Result<Frame, Retry> {
        use futures_util::StreamExt;
        let upload = self.upload_ids.fetch_add(1, Ordering::Relaxed);
        let parts = raft::uploads::split(&encoded);
        let started = Instant::now();
        // Windows of parts, a few in flight at once: each is submitted when the stream
        // admits it, in order, so the parts keep their order in the log.
        let windows: Vec<(usize, Vec<Bytes>)> = parts
            .chunks(PART_WINDOW)
            .enumerate()
            .map(|(w, window)| (w * PART_WINDOW, window.to_vec()))
            .collect();
        let mut results = futures_util::stream::iter(windows)
            .map(|(first, window)| async move { self.propose_parts(upload, first, &window).await })
            .buffered(WINDOWS_IN_FLIGHT);
        while let Some(result) = results.next().await {
            result?;
        }
        let assemble = Request {
            now_ms: self.stamp(),
            payload: raft::Payload::Assemble {
                upload,
                parts: parts.len() as u32,
                len: encoded.len() as u64,
                crc: crc32fast::hash(&encoded),
            },
        };
        let outcome = Self::outcome(self.raft.client_write(assemble).await);
        tracing::debug!(
            bytes = encoded.len(),
            parts = parts.len(),
            took_ms = started.elapsed().as_millis() as u64,
            "large write proposed"
        );
        match outcome {
            // Every replica refused to assemble it (a change of term came first): not
            // applied anywhere, so it may be sent again.
            Ok(frame) if frame == Frame::error(raft::uploads::LOST) => Err(Retry::Yes),
            other => other,
        }
    }

    /// Proposes one window of a large write's parts (the first is part `first`) and waits
    /// until all are applied; `Retry::Yes` if any was refused, discarded or lost (the upload
    /// cannot complete then).
    async fn propose_parts(
        &self,
        upload: u64,
        first: usize,
        window: &[Bytes],
    ) -> Result<(), Retry> {
        use futures_util::StreamExt;
        let requests: Vec<Request> = window
            .iter()
            .enumerate()
            .map(|(i, bytes)| Request {
                now_ms: self.stamp(),
                payload: raft::Payload::Part {
                    upload,
                    seq: (first + i) as u32,
                    bytes: raft::Blob(bytes.clone()),
                },
            })
            .collect();
        let mut stream = self.raft.client_write_many(requests).await.map_err(|e| {
            info!(upload = format!("{upload:x}"), error = %e, "a large write's parts were refused");
            Retry::Yes
        })?;
        let mut answered = 0;
        while let Some(result) = stream.next().await {
            let refused = match result {
                Ok(Ok(written)) if !written.response.0.is_error() => None,
                Ok(Ok(written)) => Some(format!("{:?}", written.response.0)),
                Ok(Err(e)) => Some(e.to_string()),
                Err(e) => Some(e.to_string()),
            };
            if let Some(why) = refused {
                info!(upload = format!("{upload:x}"), part = first + answered, why = %why,
                    "a large write's part was not applied; the write is retried");
                return Err(Retry::Yes);
            }
            answered += 1;
            if answered == window.len() {
                return Ok(());
            }
        }
        info!(
            upload = format!("{upload:x}"),
            "a large write's parts went unanswered"
        );
        Err(Retry::Yes)
    }

    /// What the result of a `client_write` means for the client.
    fn outcome(
        result: Result<
            openraft::raft::ClientWriteResponse<TypeConfig>,
            openraft::errors::RaftError<TypeConfig, ClientWriteError<TypeConfig>>,
        >,
    ) -> Result<Frame, Retry> {
        match result {
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
        match self.read_barrier().await? {
            ReadAt::Here => Ok(read(&self.db())),
            ReadAt::Leader => Err(Frame::error(
                "ERR this node's Raft log cannot write, so it cannot catch up: ask another node",
            )),
        }
    }

    /// Where a read can be served linearizably (at the configured consistency) now:
    /// here once every write acknowledged before the call is applied here (one barrier
    /// serves every read received before it started), or at the leader when this
    /// follower's log cannot write (it cannot append, so it cannot apply, what was written
    /// since): see [`Node::read_at_leader`].
    pub async fn read_barrier(&self) -> Result<ReadAt, Frame> {
        if self.config.read_mode == ReadMode::Stale || self.config.unsafe_local_reads {
            return Ok(ReadAt::Here);
        }
        if self.log_health().cause().is_some() {
            if let Some((leader, _)) = self.leader() {
                if leader != self.id {
                    return Ok(ReadAt::Leader);
                }
            }
        }
        self.wait_read_index().await.map(|()| ReadAt::Here)
    }

    /// Runs a read command (its arguments, and the seed of a command that picks at random)
    /// on the leader, which serves it linearizably; its reply.
    pub async fn read_at_leader(&self, args: &[Bytes], seed: u64) -> Frame {
        let Some((_, addr)) = self.leader() else {
            return Frame::error(CLUSTERDOWN);
        };
        let forward = rpc::Forward {
            group_id: DATA_GROUP,
            args: args.to_vec(),
            proto_version: 3,
            seed: Some(seed),
            proposal: None,
        };
        let reply = match self.pool.node(&addr) {
            Ok(mut peer) => peer.forward(forward).await,
            Err(e) => return Frame::error(format!("ERR no connection to the leader: {e}")),
        };
        match reply {
            Ok(wire) => Frame::from_wire(&wire)
                .unwrap_or_else(|e| Frame::error(format!("ERR bad reply from the leader: {e}"))),
            Err(s) => Frame::error(format!(
                "ERR the leader could not serve the read: {}",
                s.message().replace(['\r', '\n'], " ")
            )),
        }
    }

    /// Waits until a read served from this node's state now would be linearizable.
    async fn wait_read_index(&self) -> Result<(), Frame> {
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
            self.change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([node_id])))
                .await?;
        }
        let m = self.metrics();
        if m.membership_config
            .membership()
            .get_node(&node_id)
            .is_some()
        {
            self.change_membership(ChangeMembers::RemoveNodes(BTreeSet::from([node_id])))
                .await?;
        }
        info!(node = node_id, "removed from the cluster");
        Ok(())
    }

    /// Proposes a membership change. While another change is still being committed
    /// (openraft's `InProgress`: a join half done, a removal in its joint phase), it waits
    /// for that one and tries again, for up to `MEMBERSHIP_WAIT`.
    async fn change_membership(&self, change: ChangeMembers<u64, NodeInfo>) -> Result<(), Status> {
        let deadline = Instant::now() + MEMBERSHIP_WAIT;
        loop {
            match self.raft.change_membership(change.clone(), false).await {
                Ok(_) => return Ok(()),
                Err(e)
                    if matches!(
                        e.api_error(),
                        Some(ClientWriteError::ChangeMembershipError(
                            openraft::errors::ChangeMembershipError::InProgress(_)
                        ))
                    ) && Instant::now() < deadline =>
                {
                    tracing::debug!("another membership change is in progress; waiting");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(Status::internal(e.to_string().replace(['\r', '\n'], " "))),
            }
        }
    }

    /// Adds a node: first as a learner, then, once it has caught up (its log matches the
    /// leader's up to the leader's last index when the learner was added), as a voter. A
    /// node that never answers, or is still copying, stays a learner and the call fails
    /// with `UNAVAILABLE` after `CATCH_UP_WAIT`; the joiner asks again, and each ask
    /// checks again. So a joiner that dies before it caught up never becomes a voter, and
    /// never costs the group its quorum.
    async fn add_member(&self, join: rpc::Join) -> Result<(), Status> {
        let node = NodeInfo {
            resp_addr: join.resp_addr,
            grpc_addr: join.grpc_addr,
        };
        let m = self.metrics();
        let membership = m.membership_config.membership();
        if membership.voter_ids().any(|id| id == join.node_id) {
            return Ok(());
        }
        if membership.get_node(&join.node_id) != Some(&node) {
            self.raft
                .add_learner(join.node_id, node, false)
                .await
                .map_err(|e| Status::internal(e.to_string().replace(['\r', '\n'], " ")))?;
            info!(node = join.node_id, "added as a learner");
        }
        let target = self.metrics().last_log_index.unwrap_or(0);
        let caught_up = self
            .raft
            .wait(Some(CATCH_UP_WAIT))
            .metrics(
                |m| {
                    m.replication
                        .as_ref()
                        .and_then(|r| r.get(&join.node_id))
                        .and_then(|matched| matched.as_ref())
                        .is_some_and(|matched| matched.index() >= target)
                },
                "learner caught up",
            )
            .await;
        if caught_up.is_err() {
            let matched = self
                .metrics()
                .replication
                .as_ref()
                .and_then(|r| r.get(&join.node_id).cloned())
                .flatten()
                .map(|l| l.index());
            return Err(Status::unavailable(format!(
                "node {} is still catching up (it has the log up to {}, the leader {target}); \
                 it stays a learner until it has",
                join.node_id,
                matched.map_or("nothing".to_string(), |i| i.to_string())
            )));
        }
        self.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([join.node_id])))
            .await?;
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
                } else if self.config.unsafe_skip_log_checks {
                    "skip-log-checks"
                } else {
                    "none"
                }
                .to_string(),
            ),
            (
                "raft_log_status",
                match self.log_health() {
                    raft::Health::Ok => "ok",
                    raft::Health::Stalled { .. } => "stalled",
                    raft::Health::Wedged { .. } => "wedged",
                }
                .to_string(),
            ),
            (
                "raft_log_error",
                self.log_health()
                    .cause()
                    .unwrap_or("")
                    .replace(['\r', '\n'], " "),
            ),
            (
                "raft_catch_up_floor",
                self.log_db
                    .floor(DATA_GROUP)
                    .map_or_else(|| "none".to_string(), |f| f.to_string()),
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

/// The peers' connections to this node's gRPC server. An accept that fails (out of file
/// descriptors, most often) is retried after a pause that grows to a second, and logged
/// at most every 10 seconds: never fatal, never a tight loop. Every connection gets
/// TCP_NODELAY: peers' calls are small request/reply exchanges, and without it a reply
/// written while the previous one is unacknowledged waits for the ACK (tonic sets it only
/// on listeners it binds itself).
fn accept_peers(
    listener: tokio::net::TcpListener,
) -> impl futures_util::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures_util::stream::unfold(
        (listener, None::<Instant>),
        |(listener, mut reported)| async move {
            let mut pause = Duration::from_millis(10);
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        if let Err(e) = stream.set_nodelay(true) {
                            warn!(error = %e, "cannot set TCP_NODELAY on a peer connection");
                        }
                        return Some((Ok(stream), (listener, reported)));
                    }
                    Err(e) => {
                        if reported.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                            warn!(error = %e, "accepting a peer connection failed; retrying");
                            reported = Some(Instant::now());
                        }
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(Duration::from_secs(1));
                    }
                }
            }
        },
    )
}

/// Keeps this replica from voting or leading while it must not: while its log is behind
/// what it had flushed (after damage: until it has caught up from the others), and while
/// its log cannot write. A leader whose log cannot write stops sending heartbeats, so the
/// others elect a leader among themselves (it cannot hand leadership over: a transfer
/// makes it vote for the new leader, and it cannot persist a vote); it takes part again
/// once it can write. Also nudges an idle cluster along while the log is behind: the floor
/// is reached only by appending entries, so it proposes empty writes.
async fn guard_votes(node: Arc<Node>, floor: Option<u64>, mut stop: watch::Receiver<bool>) {
    let mut health = node.log_db.health();
    let mut refusing = floor.is_some();
    let mut silent = false;
    // What the vote registry was last told (`None`: not yet, by this task).
    let mut told: Option<Option<String>> = None;
    let mut last_progress = (node.metrics().last_log_index, Instant::now());
    loop {
        let behind = node.log_db.floor(DATA_GROUP);
        let cause = health.borrow().cause().map(str::to_string);
        let why = match (&behind, &cause) {
            (_, Some(cause)) => Some(format!("the Raft log cannot write: {cause}")),
            (Some(floor), None) => Some(format!(
                "catching up after damage: the log must reach index {floor} again"
            )),
            (None, None) => None,
        };
        if why.is_some() != refusing {
            refusing = why.is_some();
            node.raft.runtime_config().elect(!refusing);
            match &why {
                Some(w) => warn!(node = node.id, why = %w, "not voting nor leading"),
                None => info!(node = node.id, "voting and standing for election again"),
            }
        }
        if cause.is_some() != silent {
            silent = cause.is_some();
            node.raft.runtime_config().heartbeat(!silent);
            if silent && node.is_leader() {
                warn!(
                    node = node.id,
                    "the log cannot write: no more heartbeats, so the \
                    others elect another leader"
                );
            }
        }
        if told.as_ref() != Some(&why) {
            node.groups.set_vote_refusal(DATA_GROUP, why.clone());
            told = Some(why);
        }
        if let Some(floor) = behind {
            let last = node.metrics().last_log_index;
            if last != last_progress.0 {
                last_progress = (last, Instant::now());
            } else if last_progress.1.elapsed() >= Duration::from_secs(2)
                && node.leader().is_some_and(|(l, _)| l != node.id)
            {
                // An idle cluster: its last index may be below what this node had flushed
                // (entries of an old leader that never committed). Empty writes move it on.
                let n = floor.saturating_sub(last.unwrap_or(0)).clamp(1, 64);
                let noops = vec![kv::Proposal::ExpireKeys(Vec::new()); n as usize];
                node.write_many(&noops).await;
                last_progress = (node.metrics().last_log_index, Instant::now());
            }
        }
        tokio::select! {
            _ = health.changed() => {}
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Why a proposal got no reply of its own.
enum Retry {
    /// Certainly not appended: send it again, to whoever leads now.
    Yes,
    /// Final: reply with this (an error).
    No(Frame),
}

/// Longest a membership change waits for the previous one to be committed.
const MEMBERSHIP_WAIT: Duration = Duration::from_secs(10);
/// Longest a join request waits for the new learner to catch up before it answers that it
/// has not yet (the joiner asks again).
const CATCH_UP_WAIT: Duration = Duration::from_secs(3);

/// How many times a large write lost to a change of leader is sent again.
const LARGE_ATTEMPTS: u32 = 3;

/// Parts of a large write proposed together (1 MiB).
const PART_WINDOW: usize = 16;
/// Windows of a large write in flight at once (4 MiB): other writes wait behind at most
/// these.
const WINDOWS_IN_FLIGHT: usize = 4;

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

impl Node {
    /// A read command forwarded by a follower that cannot serve it ([`ReadAt::Leader`]):
    /// served here, on the leader, linearizably. Writes are forwarded as prepared
    /// proposals, never as commands, so anything but a read is refused.
    async fn serve_forwarded_read(
        &self,
        args: &[Bytes],
        seed: Option<u64>,
    ) -> Result<Vec<u8>, Status> {
        if self.leader().map(|(l, _)| l) != Some(self.id) {
            return Err(Status::failed_precondition("not the leader"));
        }
        let mut ctx = kv::Ctx {
            now_ms: wall_ms(),
            seed: seed.unwrap_or(0),
        };
        let now = ctx.now_ms;
        match kv::parse(args, &mut ctx) {
            Ok(kv::Cmd::Read(read)) => {
                let frame = self
                    .read(|db| read.run(db, now))
                    .await
                    .unwrap_or_else(|e| e);
                Ok(frame.to_wire())
            }
            Ok(kv::Cmd::Write(_)) => Err(Status::invalid_argument(
                "only reads and prepared proposals are forwarded",
            )),
            Err(e) => Ok(e.to_frame().to_wire()),
        }
    }
}

/// The `Node` gRPC service: what other nodes ask of this one.
struct Handler(Arc<Node>);

impl rpc::NodeHandler for Handler {
    async fn forward(&self, req: rpc::Forward) -> Result<Vec<u8>, Status> {
        let node = &self.0;
        let Some(encoded) = req.proposal else {
            return node.serve_forwarded_read(&req.args, req.seed).await;
        };
        kv::Proposal::decode_shared(&encoded)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        if node.leader().map(|(l, _)| l) != Some(node.id) {
            return Err(Status::failed_precondition("not the leader"));
        }
        if let Some(refused) = node.refuse_write(encoded.len()) {
            return Ok(refused.to_wire());
        }
        // The reply travels in the lossless wire form, so the forwarding node can still
        // merge it (an EXEC's array) and encode it for its client's protocol.
        match node.propose_local(encoded).await {
            Ok(frame) | Err(Retry::No(frame)) => Ok(frame.to_wire()),
            // Not appended: the forwarding node may send it again.
            Err(Retry::Yes) => Err(Status::failed_precondition("not the leader")),
        }
    }

    async fn read_index(&self, group_id: GroupId) -> Result<rpc::ReadIndex, Status> {
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
