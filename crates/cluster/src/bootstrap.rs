//! The first start of a node: initialize the cluster from `initial-cluster` (every founding
//! member proposes the same membership, which openraft allows), or ask a member to admit
//! it (`--join`). A node that finds its group initialized resumes from its data directory.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use openraft::errors::InitializeError;
use tracing::{info, warn};
use types::NodeInfo;

use crate::error::StartError;
use crate::group::raft_error;
use crate::Node;

/// How many times a joining node asks to be admitted (every `JOIN_PAUSE`) before it gives
/// up: five minutes.
const JOIN_ATTEMPTS: u32 = 600;
const JOIN_PAUSE: Duration = Duration::from_millis(500);
/// How many times a member asks the leader to record its addresses (every
/// `ANNOUNCE_PAUSE`) before it gives up: ten minutes.
const ANNOUNCE_ATTEMPTS: u32 = 600;
const ANNOUNCE_PAUSE: Duration = Duration::from_secs(1);

impl Node {
    pub(crate) async fn bootstrap(self: &Arc<Self>) -> Result<(), StartError> {
        let first = &self.groups[0].raft;
        if first.is_initialized().await.map_err(raft_error)? {
            info!(node = self.id, "resuming from the data directory");
            self.spawn(announce(self.clone()));
            if !self.meta.raft.is_initialized().await.map_err(raft_error)? {
                // A data directory written before the meta group existed.
                self.spawn(crate::meta_map::adopt(self.clone()));
            }
            return Ok(());
        }
        if let Some(addr) = self.config.join.clone() {
            self.spawn(join(self.clone(), addr));
            return Ok(());
        }
        let mut members = BTreeMap::new();
        if self.config.members.is_empty() {
            members.insert(self.id, self.info());
        } else {
            // Every founding member must propose exactly the same membership: each one's
            // entry becomes the log's first (the same log id on every node), so entries
            // that differed would leave the members disagreeing about each other for
            // good. RESP addresses are not known yet: each member announces its own.
            for (&id, addr) in &self.config.members {
                members.insert(
                    id,
                    NodeInfo {
                        resp_addr: String::new(),
                        grpc_addr: addr.clone(),
                        hostname: String::new(),
                    },
                );
            }
        }
        info!(
            node = self.id,
            members = members.len(),
            groups = self.groups.len(),
            "initializing the cluster"
        );
        // Every data group, and the meta group, starts with the same members (with three
        // nodes and three replicas, every node holds every group).
        for group in self.replicas() {
            match group.raft.initialize(members.clone()).await {
                Ok(()) => {}
                // Another founding member's identical proposal got here first.
                Err(e) if matches!(e.api_error(), Some(InitializeError::NotAllowed(_))) => {}
                Err(e) => return Err(raft_error(e)),
            }
        }
        self.spawn(announce(self.clone()));
        Ok(())
    }
}

/// Asks the member at `addr` to admit this node until it has (it forwards the request to
/// the leader), the node stops, or `JOIN_ATTEMPTS` run out.
async fn join(node: Arc<Node>, addr: String) {
    let mut stop = node.stop.subscribe();
    let request = node.join_request();
    for attempt in 0..JOIN_ATTEMPTS {
        if *stop.borrow() {
            return;
        }
        match node.pool.node(&addr) {
            Ok(mut peer) => match peer.join(request.clone()).await {
                Ok(()) => {
                    info!(node = node.id, via = %addr, "joined the cluster");
                    return;
                }
                Err(e) => warn!(attempt, error = %e.message(), "join refused; retrying"),
            },
            Err(e) => warn!(attempt, error = %e, "join failed; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(JOIN_PAUSE) => {}
            _ = stop.changed() => return,
        }
    }
    warn!(node = node.id, via = %addr, "gave up asking to join the cluster");
}

/// Makes the group's record of this member hold its addresses as they are now: the
/// founding members know each other's gRPC addresses only (clients need the RESP address
/// for `CLUSTER SLOTS` and `-MOVED`), and a node restarted with other addresses must be
/// found at them. Asks the leader (here, or forwarded), which records them if its own view
/// differs, until one request succeeds, the node stops, or `ANNOUNCE_ATTEMPTS` run out.
/// The leader's view decides, not this node's: a data directory written before the
/// founding entries were made identical may show this node a record the others lack. A
/// node that is not a member yet is recorded by its join.
async fn announce(node: Arc<Node>) {
    let mut stop = node.stop.subscribe();
    for attempt in 0..ANNOUNCE_ATTEMPTS {
        let member = node.groups.iter().all(|g| {
            g.metrics()
                .membership_config
                .membership()
                .voter_ids()
                .any(|id| id == node.id)
        });
        if member {
            match node.admit(node.join_request()).await {
                Ok(()) => return,
                Err(e) => tracing::debug!(attempt, error = %e,
                    "announcing this node's addresses failed; retrying"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(ANNOUNCE_PAUSE) => {}
            _ = stop.changed() => return,
        }
    }
    warn!(
        node = node.id,
        "gave up recording this node's addresses in the groups"
    );
}
