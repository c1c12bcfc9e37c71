//! Who belongs to a group: adding a node (learner, then voter once caught up), removing
//! one (`CLUSTER FORGET`), and handing leadership over (`CLUSTER TRANSFER-LEADER`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use openraft::errors::{ChangeMembershipError, ClientWriteError};
use openraft::ChangeMembers;
use tracing::{info, warn};
use types::{GroupId, NodeId, NodeInfo};

use crate::error::Error;
use crate::group::Group;
use crate::route::{Attempt, Target};
use crate::Node;

/// Longest a membership change waits for the previous one to be committed.
const MEMBERSHIP_WAIT: Duration = Duration::from_secs(10);
/// Longest a join request waits for the new learner to catch up before it answers that it
/// has not yet (the joiner asks again).
const CATCH_UP_WAIT: Duration = Duration::from_secs(3);
/// Longest a leadership transfer waits for the new leader to take over.
const TRANSFER_WAIT: Duration = Duration::from_secs(2);

impl Node {
    /// `CLUSTER FORGET <node-id>`: removes a node from every data group, then from the
    /// meta group (on each group's leader, or forwarded to it).
    /// A group that no longer has the node (a forget interrupted halfway) counts as done;
    /// a node no group has is unknown.
    pub async fn forget(&self, node_id: NodeId) -> Result<(), Error> {
        let mut removed = 0;
        for group in self.replicas() {
            let outcome = self
                .on_leader(group, |to| async move {
                    match to {
                        Target::Here => match self.remove_member(group, node_id).await {
                            // It handed the group over first: ask the new leader.
                            Err(Error::NotLeader { .. }) => Attempt::Again,
                            done => Attempt::Done(done),
                        },
                        Target::Leader { mut peer, .. } => {
                            let leave = rpc::Leave {
                                node_id,
                                group: Some(group.id),
                            };
                            match peer.leave(leave).await {
                                Ok(()) => Attempt::Done(Ok(())),
                                Err(s) => Attempt::after_call(&s, |s| Err(Error::from_status(s))),
                            }
                        }
                    }
                })
                .await?;
            match outcome {
                Ok(()) => removed += 1,
                Err(Error::UnknownNode(_)) => {}
                // The same refusal from a peer leader (`UnknownNode` travels as NotFound).
                Err(Error::Peer(tonic::Code::NotFound, _)) => {}
                Err(e) => return Err(e),
            }
        }
        if removed == 0 {
            return Err(Error::UnknownNode(node_id));
        }
        Ok(())
    }

    /// A joining node's request (it may reach any member): adds it to every data group and
    /// then the meta group, each on its leader or forwarded to it once (a forwarded one
    /// names its group and is served only by that group's leader).
    pub(crate) async fn admit(&self, join: rpc::Join) -> Result<(), Error> {
        if join.forwarded {
            let group = join
                .group
                .and_then(|g| self.replica(g))
                .ok_or_else(|| Error::Failed(format!("no group {:?} here", join.group)))?;
            if !group.is_leader() {
                return Err(Error::NotLeader {
                    leader: group.leader_id(),
                });
            }
            return self.add_member(group, join).await;
        }
        for group in self.replicas() {
            self.on_leader(group, |to| {
                let join = rpc::Join {
                    forwarded: true,
                    group: Some(group.id),
                    ..join.clone()
                };
                async move {
                    match to {
                        Target::Here => match self.add_member(group, join).await {
                            // The leadership moved while it was being added: ask again.
                            Err(Error::NotLeader { .. }) => Attempt::Again,
                            done => Attempt::Done(done),
                        },
                        Target::Leader { mut peer, .. } => match peer.join(join).await {
                            Ok(()) => Attempt::Done(Ok(())),
                            Err(s) => Attempt::after_call(&s, |s| Err(Error::from_status(s))),
                        },
                    }
                }
            })
            .await??;
        }
        Ok(())
    }

    /// `CLUSTER TRANSFER-LEADER <node-id>`: hands every group this node leads to voter
    /// `to` (each asked to campaign at once) and waits a little for it to take over. A
    /// node that leads no group refuses, saying which node leads the first one, so the
    /// caller can ask it instead.
    pub async fn transfer_leader(&self, to: NodeId) -> Result<(), Error> {
        let led: Vec<&Group> = self.replicas().filter(|g| g.is_leader()).collect();
        if led.is_empty() {
            return Err(Error::NotLeader {
                leader: self.groups[0].leader_id(),
            });
        }
        for group in led {
            info!(group = %group.id, to, "transferring leadership on request");
            self.transfer_group(group, to, TRANSFER_WAIT).await?;
        }
        Ok(())
    }

    /// `CLUSTER TRANSFER-LEADER <node-id> <group-id>`: hands group `group` (led here) to
    /// voter `to` and waits a little for it to take over. Refused, naming the leader, when
    /// another node leads it.
    pub async fn transfer_group_leader(&self, group: GroupId, to: NodeId) -> Result<(), Error> {
        let group = self.hosted(group)?;
        info!(group = %group.id, to, "transferring one group's leadership on request");
        self.transfer_group(group, to, TRANSFER_WAIT).await
    }

    /// Hands the leadership of `group` (led here) to voter `to`, and waits up to `wait`
    /// for it to take over.
    pub(crate) async fn transfer_group(
        &self,
        group: &Group,
        to: NodeId,
        wait: Duration,
    ) -> Result<(), Error> {
        let m = group.metrics();
        if m.current_leader != Some(self.id) {
            return Err(Error::NotLeader {
                leader: m.current_leader,
            });
        }
        if to == self.id {
            return Ok(());
        }
        if !m
            .membership_config
            .membership()
            .voter_ids()
            .any(|v| v == to)
        {
            return Err(Error::Failed(format!("node {to} is not a voter")));
        }
        group
            .raft
            .trigger()
            .transfer_leader(to)
            .await
            .map_err(|e| Error::Failed(format!("transfer failed: {e}")))?;
        group
            .raft
            .wait(Some(wait))
            .metrics(|m| m.current_leader == Some(to), "leadership transferred")
            .await
            .map_err(|_| {
                Error::Failed(format!(
                    "node {to} did not take over group {} within {} ms",
                    group.id,
                    wait.as_millis()
                ))
            })?;
        Ok(())
    }

    /// Removes `node_id` from `group`: first as a voter, then as a node.
    pub(crate) async fn remove_member(&self, group: &Group, node_id: NodeId) -> Result<(), Error> {
        let m = group.metrics();
        let membership = m.membership_config.membership();
        if membership.get_node(&node_id).is_none() {
            return Err(Error::UnknownNode(node_id));
        }
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        if voters.contains(&node_id) {
            if voters.len() == 1 {
                return Err(Error::Failed("cannot remove the last voter".into()));
            }
            // A leader leaving hands the group over first, so that its clients are
            // redirected to a leader that stays instead of waiting for an election; the
            // caller asks the new leader (`NotLeader` means "ask again there").
            if node_id == self.id {
                let others: Vec<NodeId> =
                    voters.iter().copied().filter(|&v| v != node_id).collect();
                let to = others
                    .iter()
                    .copied()
                    .find(|&v| crate::placement::caught_up(group, v))
                    .unwrap_or(others[0]);
                info!(group = %group.id, to, "handing the group over before leaving it");
                match self.transfer_group(group, to, TRANSFER_WAIT).await {
                    Ok(()) => return Err(Error::NotLeader { leader: Some(to) }),
                    Err(e) => warn!(group = %group.id, error = %e,
                        "the hand-over before leaving failed; leaving as the leader"),
                }
            }
            change_membership(
                group,
                ChangeMembers::RemoveVoters(BTreeSet::from([node_id])),
            )
            .await?;
        }
        if group
            .metrics()
            .membership_config
            .membership()
            .get_node(&node_id)
            .is_some()
        {
            change_membership(group, ChangeMembers::RemoveNodes(BTreeSet::from([node_id]))).await?;
        }
        info!(group = %group.id, node = node_id, "removed from the group");
        Ok(())
    }

    /// Adds a node: first as a learner, then, once it has caught up (its log matches the
    /// leader's up to the leader's last index when the learner was added), as a voter. A
    /// node that never answers, or is still copying, stays a learner and the call fails
    /// after `CATCH_UP_WAIT`; the joiner asks again, and each ask checks again. So a joiner
    /// that dies before it caught up never becomes a voter, and never costs the group its
    /// quorum.
    async fn add_member(&self, group: &Group, join: rpc::Join) -> Result<(), Error> {
        let node = NodeInfo {
            resp_addr: join.resp_addr,
            grpc_addr: join.grpc_addr,
            hostname: join.hostname,
        };
        let m = group.metrics();
        let membership = m.membership_config.membership();
        if membership.voter_ids().any(|id| id == join.node_id) {
            // A voter announcing its addresses (see `bootstrap::announce`): record them if
            // they changed.
            if membership.get_node(&join.node_id) != Some(&node) {
                change_membership(
                    group,
                    ChangeMembers::SetNodes(BTreeMap::from([(join.node_id, node.clone())])),
                )
                .await?;
                info!(group = %group.id, node = join.node_id, addresses = %node,
                    "recorded a member's new addresses");
            }
            return Ok(());
        }
        if membership.get_node(&join.node_id) != Some(&node) {
            group
                .raft
                .add_learner(join.node_id, node, false)
                .await
                .map_err(|e| Error::Failed(e.to_string()))?;
            info!(group = %group.id, node = join.node_id, "added as a learner");
        }
        let target = group.metrics().last_log_index.unwrap_or(0);
        let caught_up = group
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
            let matched = group
                .metrics()
                .replication
                .as_ref()
                .and_then(|r| r.get(&join.node_id).cloned())
                .flatten()
                .map(|l| l.index());
            return Err(Error::NotCaughtUp {
                node: join.node_id,
                matched,
                target,
            });
        }
        change_membership(
            group,
            ChangeMembers::AddVoterIds(BTreeSet::from([join.node_id])),
        )
        .await?;
        info!(group = %group.id, node = join.node_id, "promoted to voter");
        Ok(())
    }
}

/// Proposes a membership change. While another change is still being committed
/// (openraft's `InProgress`: a join half done, a removal in its joint phase), it waits
/// for that one and tries again, for up to `MEMBERSHIP_WAIT`.
async fn change_membership(
    group: &Group,
    change: ChangeMembers<NodeId, NodeInfo>,
) -> Result<(), Error> {
    let deadline = Instant::now() + MEMBERSHIP_WAIT;
    loop {
        match group.raft.change_membership(change.clone(), false).await {
            Ok(_) => return Ok(()),
            Err(e)
                if matches!(
                    e.api_error(),
                    Some(ClientWriteError::ChangeMembershipError(
                        ChangeMembershipError::InProgress(_)
                    ))
                ) && Instant::now() < deadline =>
            {
                tracing::debug!("another membership change is in progress; waiting");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            // Not appended: this replica no longer leads (a hand-over by the leader
            // balancer, an election); the caller asks the new leader.
            Err(e) => {
                if let Some(ClientWriteError::ForwardToLeader(f)) = e.api_error() {
                    return Err(Error::NotLeader {
                        leader: f.leader_id,
                    });
                }
                return Err(Error::Failed(e.to_string()));
            }
        }
    }
}
