//! When the log cannot write, or lost its end (see the crate header): what the node
//! reports, and the task that keeps a replica from voting or leading meanwhile.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::{info, warn};
use types::GroupId;

use crate::Node;

impl Node {
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
}

/// Keeps this replica from voting or leading while it must not: while its log is behind
/// what it had flushed (after damage: until it has caught up from the others), and while
/// its log cannot write. A leader whose log cannot write stops sending heartbeats, so the
/// others elect a leader among themselves (it cannot hand leadership over: a transfer
/// makes it vote for the new leader, and it cannot persist a vote); it takes part again
/// once it can write. Also nudges an idle cluster along while the log is behind: the floor
/// is reached only by appending entries, so it proposes empty writes.
pub(crate) async fn guard_votes(
    node: Arc<Node>,
    group: GroupId,
    floor: Option<u64>,
    mut stop: watch::Receiver<bool>,
) {
    let Some(group) = node.replica(group) else {
        return;
    };
    let mut health = node.log_db.health();
    let mut refusing = floor.is_some();
    let mut silent = false;
    // What the vote registry was last told (`None`: not yet, by this task).
    let mut told: Option<Option<String>> = None;
    let mut last_progress = (group.metrics().last_log_index, Instant::now());
    loop {
        let behind = node.log_db.floor(group.id);
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
            group.raft.runtime_config().elect(!refusing);
            match &why {
                Some(w) => {
                    warn!(node = node.id, group = %group.id, why = %w, "not voting nor leading")
                }
                None => {
                    info!(node = node.id, group = %group.id, "voting and standing for election again")
                }
            }
        }
        if cause.is_some() != silent {
            silent = cause.is_some();
            group.raft.runtime_config().heartbeat(!silent);
            if silent && group.is_leader() {
                warn!(
                    node = node.id,
                    "the log cannot write: no more heartbeats, so the \
                    others elect another leader"
                );
            }
        }
        if told.as_ref() != Some(&why) {
            node.registry.set_vote_refusal(group.id, why.clone());
            told = Some(why);
        }
        if let Some(floor) = behind {
            let last = group.metrics().last_log_index;
            if last != last_progress.0 {
                last_progress = (last, Instant::now());
            } else if last_progress.1.elapsed() >= Duration::from_secs(2)
                && group.leader_id().is_some_and(|l| l != node.id)
            {
                // An idle cluster: its last index may be below what this node had flushed
                // (entries of an old leader that never committed). Empty writes move it on.
                let n = floor.saturating_sub(last.unwrap_or(0)).clamp(1, 64);
                let noops = vec![kv::Proposal::ExpireKeys(Vec::new()); n as usize];
                node.write_many(group.id, &noops).await;
                last_progress = (group.metrics().last_log_index, Instant::now());
            }
        }
        tokio::select! {
            _ = health.changed() => {}
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = stop.changed() => return,
        }
    }
}
