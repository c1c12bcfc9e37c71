//! One replica of one Raft group on this node: its openraft handle, the data its state
//! machine applies to, the leader's shared ReadIndex rounds, and what it started with.
//! Opening a group ([`Group::open`]) loads its log and snapshot and starts its Raft; a
//! node hosts one data group today and will host several (and the meta group) alike.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use openraft::async_runtime::watch::WatchReceiver;
use openraft::SnapshotPolicy;
use raft::TypeConfig;
use tracing::warn;
use types::{Epoch, GroupId, NodeId};

use crate::error::StartError;
use crate::read::ReadRounds;
use crate::{ClusterConfig, Raft};

/// This node's replica of one group.
pub struct Group {
    pub id: GroupId,
    /// This node's id (the group's view of "here").
    node_id: NodeId,
    pub(crate) raft: Raft,
    kv: Arc<Mutex<kv::Db>>,
    /// Leader-side ReadIndex rounds shared by every read waiting when one starts.
    pub(crate) rounds: ReadRounds,
    /// (term, last log index) when this replica started. A replica leading the term it
    /// started in (which leader restore, now off, used to allow) has no new entry of its
    /// own to commit first, and its committed index on disk may lag what it acknowledged
    /// before the crash; reads it serves in that term wait until it has applied its whole
    /// startup log (see [`Group::read_floor`]). Kept as a guard.
    started_with: (u64, u64),
    /// The committed index saved in the log when this replica started: what it applies
    /// again, from its own log, before it is current ([`Group::replayed`]).
    committed_at_start: u64,
    /// Set when the log was found at start to hold less than this node had flushed.
    pub(crate) behind: Option<raft::Behind>,
    /// The epoch of the group's claim as this replica last saw it, 0 before it saw one
    /// (see [`Group::claim_epoch`]).
    claim_epoch: AtomicU64,
}

impl Group {
    /// Opens the group's storage in `config.data_dir` (a blocking task) and starts its
    /// Raft. A replica whose log lost its end neither votes nor stands for election; if it
    /// is the group's only voter nothing can bring the end back, and it refuses to start.
    pub(crate) async fn open(
        id: GroupId,
        config: &ClusterConfig,
        log_db: &raft::LogDb,
        pool: rpc::PeerPool,
    ) -> Result<Group, StartError> {
        let kv = Arc::new(Mutex::new(kv::Db::new()));
        let opened = {
            let (dir, log_db, kv) = (config.data_dir.clone(), log_db.clone(), kv.clone());
            tokio::task::spawn_blocking(move || raft::open(&log_db, id, &dir, kv))
                .await
                .map_err(raft_error)??
        };
        let raft::Opened {
            log,
            mut sm,
            behind,
        } = opened;
        if config.unsafe_local_clock {
            sm.unsafe_use_local_clock();
        }
        if let Some(b) = &behind {
            warn!(group = %id, behind = %b,
                "the Raft log holds less than this node had flushed (damaged?); it will not \
                 vote or lead until it has caught up from the others");
        }
        let network =
            rpc::GrpcNetworkFactory::<TypeConfig, std::fs::File>::new(pool, id, config.node_id);
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
            // A leader restarted after a crash must win a new election, never resume its
            // old term (openraft's default restores it). It may have sent entries it had
            // not yet flushed, which some followers kept; resuming the term, it would
            // append other entries at those indexes under the same log ids, and the
            // followers, seeing ids they already have, would keep theirs: replicas that
            // differ for good. Seen after a kill -9 of every node: one follower kept a
            // write the others never applied, all at the same applied index.
            enable_leader_restore: Some(false),
            ..openraft::Config::default()
        }
        .validate()
        .map_err(raft_error)?;
        // What the replica starts with: the term of its saved vote and its last log index.
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
        let committed_at_start = {
            use openraft::storage::RaftLogStorage;
            let mut log = log.clone();
            log.read_committed().await?.map_or(0, |l| l.index())
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
            let voters: BTreeSet<NodeId> = raft
                .metrics()
                .borrow_watched()
                .membership_config
                .membership()
                .voter_ids()
                .collect();
            if voters.iter().all(|&v| v == config.node_id) {
                let _ = raft.shutdown().await;
                return Err(StartError::Behind(format!(
                    "the Raft log in {} holds less than this node acknowledged ({b}), and \
                     no other member can bring it back: it will not start. Restore the data \
                     directory from a backup, or move it aside to start an empty node.",
                    config.data_dir.join("raft").display()
                )));
            }
            // Not a voter, nor a candidate, until the log is whole again.
            raft.runtime_config().elect(false);
        }
        Ok(Group {
            id,
            node_id: config.node_id,
            raft,
            kv,
            rounds: ReadRounds::new(),
            started_with,
            committed_at_start,
            behind,
            claim_epoch: AtomicU64::new(0),
        })
    }

    /// True once this replica has applied its group's claim of its slots (see
    /// `placement`): from then on the group serves writes.
    /// The meta group claims no slots and serves its writes at once.
    pub(crate) fn claimed(&self) -> bool {
        self.id == GroupId::META || self.claim_epoch().is_some()
    }

    /// The epoch of the group's claim that this replica has applied: what the writes it
    /// routes carry. Asked for every write, so it is remembered once seen instead of
    /// locking the data each time; a claim is never removed (a snapshot installed later
    /// was taken after it, and holds it), and a newer claim is looked for again when the
    /// group refuses a write for its claim ([`Group::refresh_claim_epoch`]).
    pub(crate) fn claim_epoch(&self) -> Option<Epoch> {
        match self.claim_epoch.load(Ordering::Relaxed) {
            0 => self.refresh_claim_epoch(),
            seen => Some(Epoch(seen)),
        }
    }

    /// Reads the applied claim's epoch again (see [`Group::claim_epoch`]).
    pub(crate) fn refresh_claim_epoch(&self) -> Option<Epoch> {
        let epoch = self.db().claim().map(|c| c.epoch).filter(|&e| e != 0);
        self.claim_epoch
            .store(epoch.unwrap_or(0), Ordering::Relaxed);
        epoch.map(Epoch)
    }

    /// The data this replica's state machine applies to.
    pub fn db(&self) -> MutexGuard<'_, kv::Db> {
        raft::patient::lock(&self.kv)
    }

    /// A copy of the metrics, for status and membership changes (not the per-command path:
    /// see [`Group::leader`]).
    pub(crate) fn metrics(&self) -> openraft::RaftMetrics<TypeConfig> {
        self.raft.metrics().borrow_watched().clone()
    }

    /// True if this replica believes it leads the group.
    pub fn is_leader(&self) -> bool {
        self.leader_id() == Some(self.node_id)
    }

    /// The current leader and its gRPC address, if known. Asked for every write and read
    /// barrier, so it reads the metrics in place instead of copying them.
    pub(crate) fn leader(&self) -> Option<(NodeId, String)> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow_watched();
        let id = known_leader(&m)?;
        let addr = m
            .membership_config
            .membership()
            .get_node(&id)
            .map(|n| n.grpc_addr.clone())?;
        Some((id, addr))
    }

    /// The leader's id, if known.
    pub(crate) fn leader_id(&self) -> Option<NodeId> {
        known_leader(&self.raft.metrics().borrow_watched())
    }

    /// The least index a read served by this replica as leader must see applied: its last
    /// log index at startup while it leads the term it started in, else 0.
    pub(crate) fn read_floor(&self) -> u64 {
        let (term, last) = self.started_with;
        if self.raft.metrics().borrow_watched().current_term == term {
            last
        } else {
            0
        }
    }

    /// Waits until this replica has applied again what its own log held as committed when
    /// it started (true), or `deadline` passes (false). Needs no other node.
    pub(crate) async fn replayed(&self, deadline: Instant) -> bool {
        self.wait_applied(self.committed_at_start, deadline).await
    }

    /// Waits until this replica has applied `index` (true), or `deadline` passes (false).
    pub(crate) async fn wait_applied(&self, index: u64, deadline: Instant) -> bool {
        if index == 0
            || self
                .raft
                .metrics()
                .borrow_watched()
                .last_applied
                .is_some_and(|l| l.index() >= index)
        {
            return true;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        self.raft
            .wait(Some(left.max(Duration::from_millis(1))))
            .applied_index_at_least(Some(index), "index applied")
            .await
            .is_ok()
    }
}

pub(crate) fn raft_error(e: impl std::fmt::Display) -> StartError {
    StartError::Raft(e.to_string())
}

/// The leader a replica's metrics name, unless its Raft has stopped (shut down, or a fatal
/// error): the last metrics of a stopped replica still name whoever led when it stopped,
/// often itself, and a write sent there would get "raft stopped" as a final answer instead
/// of waiting for a leader that can take it.
pub(crate) fn known_leader(m: &openraft::RaftMetrics<TypeConfig>) -> Option<NodeId> {
    m.running_state.as_ref().ok()?;
    m.current_leader
}
