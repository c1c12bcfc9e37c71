//! A running node: its replicas, its gRPC server, and the tasks that watch them; start
//! and shutdown.

use std::net::IpAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use raft::TypeConfig;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};
use types::{NodeId, NodeInfo};

use crate::error::StartError;
use crate::group::{raft_error, Group};
use crate::{health, read, service, status, wall_ms, Clock, ClusterConfig, DATA_GROUP};

/// A running node: its replica of the data group and its gRPC server.
pub struct Node {
    pub id: NodeId,
    pub(crate) config: ClusterConfig,
    /// The data group (the only group yet).
    pub(crate) data: Group,
    /// The node's log database (for its counters and health; the log stores hold their own
    /// handles).
    pub(crate) log_db: raft::LogDb,
    /// The Raft service's view of the groups (and of which replicas may vote).
    pub(crate) registry: rpc::Groups<TypeConfig, raft::StateMachine>,
    /// Makes upload ids unique across restarts of the node.
    pub(crate) upload_ids: AtomicU64,
    pub(crate) pool: rpc::PeerPool,
    /// What proposals are stamped with.
    clock: Clock,
    pub(crate) stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Node {
    /// Opens the node's storage, starts its Raft group and gRPC server, and on the first
    /// start initializes or joins the cluster.
    pub async fn start(config: ClusterConfig) -> Result<Arc<Node>, StartError> {
        std::fs::create_dir_all(&config.data_dir)?;
        let options = raft::LogOptions {
            verify: !config.unsafe_skip_log_checks,
        };
        let log_db = {
            let dir = config.data_dir.join("raft");
            tokio::task::spawn_blocking(move || {
                raft::LogDb::open_with(&dir, options)
                    .map_err(|e| StartError::Raft(format!("opening the log: {e}")))
            })
            .await
            .map_err(raft_error)??
        };
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
        let data = Group::open(DATA_GROUP, &config, &log_db, pool.clone()).await?;

        let snapshot_dir = config.data_dir.join("snapshots");
        std::fs::create_dir_all(&snapshot_dir)?;
        let registry = rpc::Groups::<TypeConfig, raft::StateMachine>::new(move |_| {
            tempfile::tempfile_in(&snapshot_dir)
        });
        registry.insert(data.id, data.raft.clone());
        if let Some(b) = &data.behind {
            registry.set_vote_refusal(data.id, Some(format!("catching up after damage: {b}")));
        }
        let listener = tokio::net::TcpListener::bind(&config.grpc_listen).await?;
        let (stop, stop_rx) = watch::channel(false);
        let node = Arc::new(Node {
            id: config.node_id,
            config,
            data,
            log_db,
            registry: registry.clone(),
            upload_ids: AtomicU64::new(wall_ms() as u64 ^ (std::process::id() as u64) << 40),
            pool,
            clock: Clock::default(),
            stop,
            tasks: Mutex::new(Vec::new()),
        });
        node.spawn(service::serve(
            node.clone(),
            registry,
            listener,
            max_forward,
            stop_rx.clone(),
        ));
        node.spawn(read::run_read_rounds(
            node.data.raft.clone(),
            node.data.rounds.clone(),
            stop_rx.clone(),
        ));
        node.bootstrap().await?;
        let floor = node.data.behind.as_ref().map(|b| b.floor);
        node.spawn(health::guard_votes(node.clone(), floor, stop_rx.clone()));
        node.spawn(status::log_leader_changes(
            node.data.raft.clone(),
            node.id,
            stop_rx,
        ));
        Ok(node)
    }

    /// Runs `task` until the node shuts down (it must end when the stop signal comes).
    pub(crate) fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(task);
        self.tasks().push(handle);
    }

    fn tasks(&self) -> MutexGuard<'_, Vec<JoinHandle<()>>> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How this node is reached, as group memberships record it.
    pub(crate) fn info(&self) -> NodeInfo {
        NodeInfo {
            resp_addr: self.config.resp_addr.clone(),
            grpc_addr: self.config.advertise.clone(),
        }
    }

    /// The data the server reads (the data group's state machine).
    pub fn db(&self) -> MutexGuard<'_, kv::Db> {
        self.data.db()
    }

    /// True if this node believes it leads the data group.
    pub fn is_leader(&self) -> bool {
        self.data.is_leader()
    }

    /// A time to stamp a proposal with: the clock, never behind an earlier stamp.
    pub(crate) fn stamp(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Hands leadership to another voter if this node leads, then stops Raft and the gRPC
    /// server.
    pub async fn shutdown(&self) {
        let m = self.data.metrics();
        if m.current_leader == Some(self.id) {
            let target = m
                .membership_config
                .membership()
                .voter_ids()
                .find(|&id| id != self.id);
            if let Some(target) = target {
                info!(to = target, "handing leadership away before shutdown");
                if self
                    .data
                    .raft
                    .trigger()
                    .transfer_leader(target)
                    .await
                    .is_ok()
                {
                    let _ = self
                        .data
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
        if let Err(e) = self.data.raft.shutdown().await {
            warn!(error = %e, "raft shutdown");
        }
        let tasks: Vec<_> = self.tasks().drain(..).collect();
        for t in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
    }
}
