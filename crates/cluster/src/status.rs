//! What a node says about itself: the fields of `INFO replication`, the role names, and
//! the log of leader and membership changes.

use openraft::async_runtime::watch::WatchReceiver;
use openraft::ServerState;
use tokio::sync::watch;
use tracing::info;
use types::{GroupId, NodeId, NodeInfo, Slot};

use crate::group::known_leader;
use crate::{Node, Raft};

/// A leader's id as `INFO` shows it, `none` when there is none.
fn leader_name(leader: Option<NodeId>) -> String {
    leader.map_or_else(|| "none".to_string(), |l| l.to_string())
}

/// Node ids as `INFO` lists them: separated by spaces.
fn id_list(ids: impl Iterator<Item = NodeId>) -> String {
    ids.map(|id| id.to_string()).collect::<Vec<_>>().join(" ")
}

/// A replica's role in its group, named once for `INFO` and for the `Node` service.
pub(crate) fn role(state: ServerState) -> rpc::Role {
    match state {
        ServerState::Leader => rpc::Role::Leader,
        ServerState::Learner => rpc::Role::Learner,
        ServerState::Candidate => rpc::Role::Candidate,
        ServerState::Follower => rpc::Role::Follower,
        ServerState::Shutdown => rpc::Role::Shutdown,
    }
}

/// Who serves which slots, as the Redis Cluster protocol tells clients (`CLUSTER SLOTS`,
/// `SHARDS`, `NODES`, `INFO`, and `-MOVED`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topology {
    /// This node.
    pub me: NodeId,
    /// Every member of the cluster, by id.
    pub members: Vec<Member>,
    /// One per data group, in slot order; together their ranges cover every slot.
    pub shards: Vec<Shard>,
}

/// A member of the cluster and how clients reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub id: NodeId,
    /// `host:port` of its RESP listener (empty until the node has announced it).
    pub resp_addr: String,
    /// `host:port` of its gRPC listener.
    pub grpc_addr: String,
    /// The hostname it announces to clients; empty: none.
    pub hostname: String,
}

/// A data group as clients see it: its slots, its leader (the shard's master) and its
/// other replicas.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shard {
    pub group: GroupId,
    /// Inclusive slot ranges, ascending.
    pub slots: Vec<(Slot, Slot)>,
    /// The leader this node knows of, if any.
    pub leader: Option<NodeId>,
    /// Every voting replica, the leader included, ascending by id (learners, still
    /// catching up, are members but not replicas).
    pub replicas: Vec<NodeId>,
    /// The group's current term (Redis's config epoch of its master).
    pub term: u64,
    /// This node's last applied index in the group (a replica's replication offset).
    pub applied: u64,
}

impl Topology {
    /// The member `id`, if the cluster has it.
    pub fn member(&self, id: NodeId) -> Option<&Member> {
        self.members.iter().find(|m| m.id == id)
    }

    /// The shard that serves `slot`.
    pub fn shard_of(&self, slot: Slot) -> Option<&Shard> {
        self.shards
            .iter()
            .find(|s| s.slots.iter().any(|&(a, b)| a <= slot && slot <= b))
    }
}

impl Node {
    /// Where a cluster client should send a command for `slot` instead of here: the
    /// leader of the slot's group, when another node leads it and its RESP address is
    /// known (else `None`: the command is served, or forwarded, here). Asked for every
    /// command in redirect mode, so it reads the metrics in place.
    pub fn redirect(&self, slot: Slot) -> Option<NodeInfo> {
        let metrics = self.group_of(slot).raft.metrics();
        let m = metrics.borrow_watched();
        let leader = known_leader(&m).filter(|&l| l != self.id)?;
        let info = m.membership_config.membership().get_node(&leader)?;
        (!info.resp_addr.is_empty()).then(|| info.clone())
    }

    /// Who serves which slots now, as this node knows it.
    pub fn topology(&self) -> Topology {
        // Every group has the same members; the first one's records are the addresses.
        let first = self.groups[0].metrics();
        let members: Vec<Member> = first
            .membership_config
            .membership()
            .nodes()
            .map(|(&id, info)| Member {
                id,
                resp_addr: info.resp_addr.clone(),
                grpc_addr: info.grpc_addr.clone(),
                hostname: info.hostname.clone(),
            })
            .collect();
        let shards = self
            .groups
            .iter()
            .map(|group| {
                let m = group.metrics();
                // Voters only: a learner may still be copying the log (or never answer),
                // and a client told of it as a replica could send it reads.
                let mut replicas: Vec<NodeId> =
                    m.membership_config.membership().voter_ids().collect();
                replicas.sort_unstable();
                Shard {
                    group: group.id,
                    slots: self.ranges_of(group.id),
                    leader: known_leader(&m),
                    replicas,
                    term: m.current_term,
                    applied: m.last_applied.as_ref().map_or(0, |l| l.index()),
                }
            })
            .collect();
        Topology {
            me: self.id,
            members,
            shards,
        }
    }

    /// Fields for `INFO replication`: the first data group's role, term, leader and
    /// indexes (with one group, the whole story), the node's log, then a summary of every
    /// group and one line per group
    /// (`raft_group_<id>:role=...,term=...,leader=...,commit=...,applied=...,slots=a-b`),
    /// and last the meta group's line (`raft_meta:role=...,map_version=...,map_members=...`).
    pub fn status(&self) -> Vec<(String, String)> {
        let mut fields: Vec<(String, String)> = self
            .first_group_status()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let leaders: Vec<Option<NodeId>> = self.groups.iter().map(|g| g.leader_id()).collect();
        fields.push(("raft_groups".into(), self.groups.len().to_string()));
        fields.push((
            "raft_groups_led".into(),
            leaders
                .iter()
                .filter(|&&l| l == Some(self.id))
                .count()
                .to_string(),
        ));
        fields.push((
            "raft_groups_without_leader".into(),
            leaders.iter().filter(|l| l.is_none()).count().to_string(),
        ));
        for group in &self.groups {
            let m = group.metrics();
            let index = |l: &Option<raft::typ::LogId>| l.as_ref().map_or(0, |l| l.index());
            let slots: Vec<String> = self
                .ranges_of(group.id)
                .iter()
                .map(|(a, b)| format!("{}-{}", a.0, b.0))
                .collect();
            fields.push((
                format!("raft_group_{}", group.id),
                format!(
                    "role={},term={},leader={},commit={},applied={},last_log={},voters={},\
                     slots={}",
                    role(m.state).name(),
                    m.current_term,
                    leader_name(m.current_leader),
                    index(&m.local_committed),
                    index(&m.last_applied),
                    m.last_log_index.unwrap_or(0),
                    id_list(m.membership_config.membership().voter_ids()),
                    slots.join(" "),
                ),
            ));
        }
        let m = self.meta.metrics();
        let map = self.cluster_map().unwrap_or_default();
        fields.push((
            "raft_meta".into(),
            format!(
                "role={},term={},leader={},voters={},map_version={},map_members={}",
                role(m.state).name(),
                m.current_term,
                leader_name(known_leader(&m)),
                id_list(m.membership_config.membership().voter_ids()),
                map.version,
                id_list(map.members.keys().copied()),
            ),
        ));
        fields
    }

    fn first_group_status(&self) -> Vec<(&'static str, String)> {
        let group = &self.groups[0];
        let m = group.metrics();
        let role = role(m.state).name();
        let index = |l: &Option<raft::typ::LogId>| l.as_ref().map_or(0, |l| l.index());
        let membership = m.membership_config.membership();
        let log = self.log_db.stats();
        let voters: Vec<String> = membership.voter_ids().map(|id| id.to_string()).collect();
        let learners: Vec<String> = membership.learner_ids().map(|id| id.to_string()).collect();
        vec![
            ("role", role.to_string()),
            ("raft_node_id", self.id.to_string()),
            ("raft_group", group.id.to_string()),
            ("raft_term", m.current_term.to_string()),
            ("raft_leader_id", leader_name(m.current_leader)),
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
            ("read_consistency", self.config.read_mode.name().to_string()),
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
                    .floor(group.id)
                    .map_or_else(|| "none".to_string(), |f| f.to_string()),
            ),
        ]
    }
}

/// Logs leader changes and membership changes as they happen.
pub(crate) async fn log_leader_changes(
    raft: Raft,
    group: GroupId,
    id: NodeId,
    mut stop: watch::Receiver<bool>,
) {
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
                Some(l) if l == id => info!(node = id, %group, term, "elected leader"),
                Some(l) => info!(node = id, %group, term, leader = l, "following a new leader"),
                None => info!(node = id, %group, term, "no leader"),
            }
        }
        if voters != last.2 {
            info!(node = id, %group, voters = %voters, "membership changed");
        }
        last = (leader, term, voters);
        tokio::select! {
            changed = metrics.changed() => if changed.is_err() { return },
            _ = stop.changed() => return,
        }
    }
}
