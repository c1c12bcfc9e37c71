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
use types::{GroupId, NodeId, NodeInfo, Slot};

use crate::error::StartError;
use crate::group::{raft_error, Group};
use crate::{health, meta_map, placement, read, service, status, wall_ms, Clock, ClusterConfig};

/// A running node: its replicas of the data groups and of the meta group, and its gRPC
/// server.
pub struct Node {
    pub id: NodeId,
    pub(crate) config: ClusterConfig,
    /// The data groups, in id order: `groups[i]` is group `i + 1`.
    pub(crate) groups: Vec<Group>,
    /// This node's replica of the meta group (group 0), which keeps the cluster map (see
    /// `meta_map`). Never on the data path.
    pub(crate) meta: Group,
    /// Which group owns which slots: `(first, last, group)`, ascending, covering every
    /// slot (fixed when the cluster was founded; see `placement`).
    pub(crate) layout: Vec<(Slot, Slot, GroupId)>,
    /// Which group serves each slot now, as this node sees it (see `routes`).
    pub(crate) routes: crate::routes::Routes,
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
        let local_address = local_ip(&config.advertise);
        let max_forward = config.max_request_bytes + (1 << 20);
        let pool = rpc::PeerPool::new(rpc::PoolConfig {
            local_address,
            max_forward_bytes: max_forward,
            secret: config.peer_secret.clone(),
            tls: config.peer_tls.clone(),
            ..rpc::PoolConfig::default()
        });
        let layout = placement::check_layout(&config, &log_db).await?;
        let mut groups = Vec::with_capacity(config.raft_groups as usize);
        for g in 1..=config.raft_groups {
            groups.push(Group::open(GroupId(g as u64), &config, &log_db, pool.clone()).await?);
        }
        let meta = Group::open(GroupId::META, &config, &log_db, pool.clone()).await?;

        let snapshot_dir = config.data_dir.join("snapshots");
        std::fs::create_dir_all(&snapshot_dir)?;
        let registry = rpc::Groups::<TypeConfig, raft::StateMachine>::new(move |_| {
            tempfile::tempfile_in(&snapshot_dir)
        });
        for group in groups.iter().chain([&meta]) {
            registry.insert(group.id, group.raft.clone());
            if let Some(b) = &group.behind {
                registry.set_vote_refusal(group.id, Some(format!("catching up after damage: {b}")));
            }
        }
        let listener = tokio::net::TcpListener::bind(&config.grpc_listen).await?;
        let (stop, stop_rx) = watch::channel(false);
        let node = Arc::new(Node {
            id: config.node_id,
            config,
            groups,
            meta,
            routes: crate::routes::Routes::new(&layout),
            layout,
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
        for group in node.replicas() {
            node.spawn(read::run_read_rounds(
                group.raft.clone(),
                group.rounds.clone(),
                stop_rx.clone(),
            ));
        }
        node.bootstrap().await?;
        for group in node.replicas() {
            let floor = group.behind.as_ref().map(|b| b.floor);
            node.spawn(health::guard_votes(
                node.clone(),
                group.id,
                floor,
                stop_rx.clone(),
            ));
            node.spawn(status::log_leader_changes(
                group.raft.clone(),
                group.id,
                node.id,
                stop_rx.clone(),
            ));
        }
        node.spawn(placement::claim_slots(node.clone(), stop_rx.clone()));
        node.spawn(crate::routes::refresh_routes(node.clone(), stop_rx.clone()));
        node.spawn(crate::migrate::run_moves(node.clone(), stop_rx.clone()));
        node.spawn(placement::balance_leaders(node.clone(), stop_rx.clone()));
        node.spawn(meta_map::keep_map(node.clone(), stop_rx));
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
            hostname: self.config.hostname.clone(),
        }
    }

    /// This node asking to be recorded as it is reached now (a join, or a member's
    /// announcement of its addresses).
    pub(crate) fn join_request(&self) -> rpc::Join {
        let info = self.info();
        rpc::Join {
            node_id: self.id,
            resp_addr: info.resp_addr,
            grpc_addr: info.grpc_addr,
            hostname: info.hostname,
            forwarded: false,
            group: None,
        }
    }

    /// The data groups, in id order.
    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// This node's replica of the meta group.
    pub fn meta(&self) -> &Group {
        &self.meta
    }

    /// Every group this node holds a replica of: the data groups, then the meta group.
    pub(crate) fn replicas(&self) -> impl Iterator<Item = &Group> {
        self.groups.iter().chain([&self.meta])
    }

    /// Group `id` among every group here, the meta group included.
    pub(crate) fn replica(&self, id: GroupId) -> Option<&Group> {
        if id == GroupId::META {
            Some(&self.meta)
        } else {
            self.group(id)
        }
    }

    /// Data group `id`, if this node hosts it.
    pub fn group(&self, id: GroupId) -> Option<&Group> {
        let i = usize::try_from(id.0).ok()?.checked_sub(1)?;
        self.groups.get(i).filter(|g| g.id == id)
    }

    /// A time to stamp a proposal with: the clock, never behind an earlier stamp.
    pub(crate) fn stamp(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Hands the leadership of every group this node leads to another voter, then stops
    /// Raft and the gRPC server.
    pub async fn shutdown(&self) {
        let handovers = self.replicas().map(|group| self.hand_away(group));
        futures_util::future::join_all(handovers).await;
        let _ = self.stop.send(true);
        for group in self.replicas() {
            if let Err(e) = group.raft.shutdown().await {
                warn!(group = %group.id, error = %e, "raft shutdown");
            }
        }
        let tasks: Vec<_> = self.tasks().drain(..).collect();
        for t in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
    }

    /// If this node leads `group`, asks another voter to take over and waits a little.
    async fn hand_away(&self, group: &Group) {
        let m = group.metrics();
        if m.current_leader != Some(self.id) {
            return;
        }
        // Spread over the other voters, so that no one node takes every group at once.
        let others: Vec<NodeId> = m
            .membership_config
            .membership()
            .voter_ids()
            .filter(|&id| id != self.id)
            .collect();
        let Some(&target) = others.get(group.id.0 as usize % others.len().max(1)) else {
            return;
        };
        info!(group = %group.id, to = target, "handing leadership away before shutdown");
        if group.raft.trigger().transfer_leader(target).await.is_ok() {
            let _ = group
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

/// The IP address of an advertised `host:port`, when its host is one: peers' calls are
/// sent from it, so that a peer sees which node calls.
pub(crate) fn local_ip(advertise: &str) -> Option<IpAddr> {
    advertise
        .rsplit_once(':')
        .and_then(|(host, _)| host.trim_matches(['[', ']']).parse::<IpAddr>().ok())
}
