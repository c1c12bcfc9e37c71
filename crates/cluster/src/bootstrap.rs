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

impl Node {
    pub(crate) async fn bootstrap(self: &Arc<Self>) -> Result<(), StartError> {
        let raft = &self.data.raft;
        if raft.is_initialized().await.map_err(raft_error)? {
            info!(node = self.id, "resuming from the data directory");
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
        match raft.initialize(members).await {
            Ok(()) => Ok(()),
            // Another founding member's identical proposal got here first.
            Err(e) if matches!(e.api_error(), Some(InitializeError::NotAllowed(_))) => Ok(()),
            Err(e) => Err(raft_error(e)),
        }
    }
}

/// Asks the member at `addr` to admit this node until it has (it forwards the request to
/// the leader), the node stops, or `JOIN_ATTEMPTS` run out.
async fn join(node: Arc<Node>, addr: String) {
    let mut stop = node.stop.subscribe();
    let request = rpc::Join {
        node_id: node.id,
        resp_addr: node.config.resp_addr.clone(),
        grpc_addr: node.config.advertise.clone(),
        forwarded: false,
    };
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
