//! "On the leader, or forwarded to it": the one loop by which every request that only a
//! group's leader may serve reaches it (writes, read indexes, membership changes).
//!
//! [`Node::on_leader`] looks up the leader, runs the request's attempt here or with a
//! connection to the leader, and tries again (at whoever leads then) while the attempt
//! says it certainly was not served, until no leader has been found for
//! [`NO_LEADER_WAIT`]: then `-CLUSTERDOWN`. A peer serves such a request only while it
//! leads ([`Node::must_lead`]) and refuses it otherwise with `FAILED_PRECONDITION`, which
//! the caller takes as "try again": a forwarded request is never forwarded again, so two
//! nodes that disagree about the leader cannot pass a request back and forth.

use std::future::Future;
use std::time::{Duration, Instant};

use tonic::Status;

use crate::error::Error;
use crate::group::Group;
use crate::{Node, NO_LEADER_WAIT};

/// Where an attempt runs.
pub(crate) enum Target {
    /// This node leads the group.
    Here,
    /// Another node leads it; `peer` is a connection to it.
    Leader { peer: Box<rpc::NodePeer> },
}

/// How an attempt ended.
pub(crate) enum Attempt<T> {
    /// Served (successfully or not): the answer.
    Done(T),
    /// Certainly not served (the leader changed, or could not be reached): try again.
    Again,
    /// As `Again`, with a fresh wait for a leader and longer pauses from now on: a large
    /// write lost to a change of leader starts over, and a new leader needs a moment.
    Restart,
}

/// Pause between attempts.
const PAUSE: Duration = Duration::from_millis(20);
/// Pause between attempts once one has restarted.
const RESTART_PAUSE: Duration = Duration::from_millis(500);

impl<T> Attempt<T> {
    /// The attempt's end after a call to the leader failed: again if the call certainly
    /// never reached it, or if the peer no longer leads; else `failed(status)`.
    pub(crate) fn after_call(status: &Status, failed: impl FnOnce(&Status) -> T) -> Attempt<T> {
        if rpc::never_sent(status) || status.code() == tonic::Code::FailedPrecondition {
            tracing::debug!(code = ?status.code(), error = %status.message(),
                "a call to the leader was not served; trying again");
            Attempt::Again
        } else {
            Attempt::Done(failed(status))
        }
    }
}

impl Node {
    /// Runs `attempt` on `group`'s leader (see the module header).
    pub(crate) async fn on_leader<T, F, Fut>(
        &self,
        group: &Group,
        mut attempt: F,
    ) -> Result<T, Error>
    where
        F: FnMut(Target) -> Fut,
        Fut: Future<Output = Attempt<T>>,
    {
        let mut deadline = Instant::now() + NO_LEADER_WAIT;
        let mut pause = PAUSE;
        loop {
            let ended = match group.leader() {
                Some((id, _)) if id == self.id => Some(attempt(Target::Here).await),
                Some((id, addr)) => match self.pool.node(&addr) {
                    Ok(peer) => Some(
                        attempt(Target::Leader {
                            peer: Box::new(peer),
                        })
                        .await,
                    ),
                    Err(e) => {
                        tracing::debug!(leader = id, error = %e, "no connection to the leader");
                        None
                    }
                },
                None => None,
            };
            match ended {
                Some(Attempt::Done(answer)) => return Ok(answer),
                Some(Attempt::Restart) => {
                    deadline = deadline.max(Instant::now() + NO_LEADER_WAIT);
                    pause = RESTART_PAUSE;
                }
                Some(Attempt::Again) | None => {}
            }
            if Instant::now() >= deadline {
                return Err(Error::ClusterDown);
            }
            tokio::time::sleep(pause).await;
        }
    }

    /// For a peer's request that only the leader serves: refused (as the caller's
    /// [`Attempt::after_call`] expects) unless this node leads `group`.
    pub(crate) fn must_lead(&self, group: &Group) -> Result<(), Status> {
        match group.leader_id() {
            Some(l) if l == self.id => Ok(()),
            leader => Err(Error::NotLeader { leader }.to_status()),
        }
    }
}
