//! What a node says about itself: the fields of `INFO replication`, the role names, and
//! the log of leader and membership changes.

use openraft::async_runtime::watch::WatchReceiver;
use openraft::ServerState;
use tokio::sync::watch;
use tracing::info;
use types::NodeId;

use crate::{Node, Raft};

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

impl Node {
    /// Fields for `INFO replication`.
    pub fn status(&self) -> Vec<(&'static str, String)> {
        let group = &self.data;
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
pub(crate) async fn log_leader_changes(raft: Raft, id: NodeId, mut stop: watch::Receiver<bool>) {
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
