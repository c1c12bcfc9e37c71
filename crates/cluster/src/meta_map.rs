//! The cluster map in the meta group (group 0): who the members are and how they are
//! reached, which data groups exist with which replicas, and which group owns which slots
//! at which epoch (`meta::MetaState`, applied by every replica of group 0 through
//! `kv::Proposal::Meta`). The meta group runs on every founding member and on every node
//! that joins, beside the data groups; no command a client sends touches it.
//!
//! Today the map follows the data groups: the meta group's leader compares the map with
//! the data groups' memberships as it sees them ([`keep_map`]) and proposes what
//! differs: `Bootstrap` once (the founding members, the layout's groups and slots), then
//! `SetMember` when a member joins or announces new addresses, `SetReplicas` when a
//! group's voters change, and `RemoveMember` once no group holds a forgotten node. It is
//! the record later steps build on (slot moves journaled in it, placement with fewer
//! replicas than nodes), not yet the source that drives them.
//!
//! A data directory written before the meta group existed holds no group 0: the node that
//! leads data group 1 initializes it with that group's members ([`adopt`]), and the
//! others receive it from there as from any leader.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use meta::{Member, MetaCommand, MetaState};
use openraft::errors::InitializeError;
use tokio::sync::watch;
use tracing::{debug, info, warn};
use types::{GroupId, NodeId, NodeInfo};

use crate::group::raft_error;
use crate::write::Retry;
use crate::Node;

/// How often the meta group's leader compares the map with the data groups.
const MAP_PAUSE: Duration = Duration::from_millis(500);
/// How often a node of an old data directory checks whether group 0 exists yet.
const ADOPT_PAUSE: Duration = Duration::from_secs(1);

impl Node {
    /// The cluster map as this node's replica of the meta group has applied it (`None`
    /// before the first change).
    pub fn cluster_map(&self) -> Option<MetaState> {
        self.meta.db().meta().cloned()
    }

    /// The map changes that would make `map` say what the data groups' memberships say,
    /// as this node sees them, in the order they must apply: the bootstrap alone while
    /// there is none; else new or changed members, then replica sets, then members no
    /// group holds any more.
    fn map_changes(&self, map: &MetaState) -> Vec<MetaCommand> {
        let mut seen: BTreeMap<NodeId, Member> = BTreeMap::new();
        let mut replicas: BTreeMap<GroupId, BTreeSet<NodeId>> = BTreeMap::new();
        for group in &self.groups {
            let m = group.metrics();
            let membership = m.membership_config.membership();
            for (&id, info) in membership.nodes() {
                // A record with the RESP address wins over one still without it (a
                // member's announcement reaches the groups one by one).
                let member = as_member(info);
                match seen.get(&id) {
                    Some(held) if !held.resp_addr.is_empty() || member.resp_addr.is_empty() => {}
                    _ => {
                        seen.insert(id, member);
                    }
                }
            }
            replicas.insert(group.id, membership.voter_ids().collect());
        }
        // A group this node has not loaded a membership of yet (it is still joining)
        // says nothing about the cluster: look again later.
        if replicas.values().any(BTreeSet::is_empty) {
            return Vec::new();
        }
        if !map.is_bootstrapped() {
            let first = replicas.values().next().cloned().unwrap_or_default();
            return vec![MetaCommand::Bootstrap {
                members: seen,
                groups: self.groups.len() as u32,
                replication: first.len() as u32,
            }];
        }
        let mut changes = Vec::new();
        for (id, member) in &seen {
            if map.members.get(id) != Some(member) {
                changes.push(MetaCommand::SetMember {
                    id: *id,
                    member: member.clone(),
                });
            }
        }
        for (group, voters) in &replicas {
            if map.groups.get(group) != Some(voters) {
                changes.push(MetaCommand::SetReplicas {
                    group: *group,
                    replicas: voters.clone(),
                });
            }
        }
        let held: BTreeSet<NodeId> = replicas.values().flatten().copied().collect();
        for id in map.members.keys() {
            if !seen.contains_key(id) && !held.contains(id) {
                changes.push(MetaCommand::RemoveMember { id: *id });
            }
        }
        changes
    }

    /// Proposes `command` to the meta group, which this node leads: the map's version
    /// after it, or why it was not applied.
    async fn propose_map_change(&self, command: MetaCommand) -> Result<u64, String> {
        let encoded = kv::Proposal::Meta(command).encode().into();
        match self.propose_local(&self.meta, encoded).await {
            Ok(resp::Frame::Integer(version)) => Ok(version as u64),
            Ok(other) => Err(format!("{other:?}")),
            Err(Retry::Yes) => Err("no longer leading the meta group".into()),
            Err(Retry::No(e)) => Err(e.to_string()),
        }
    }
}

/// A member's record in the map, from its record in a group's membership.
fn as_member(info: &NodeInfo) -> Member {
    Member {
        resp_addr: info.resp_addr.clone(),
        grpc_addr: info.grpc_addr.clone(),
        hostname: (!info.hostname.is_empty()).then(|| info.hostname.clone()),
    }
}

/// On every node, until it stops: while this node leads the meta group, brings the map
/// in line with the data groups (see the module header). Each change is proposed once per
/// look; one that is refused is logged and looked at again next time.
pub(crate) async fn keep_map(node: Arc<Node>, mut stop: watch::Receiver<bool>) {
    loop {
        if node.meta.is_leader() {
            let map = node.cluster_map().unwrap_or_default();
            for change in node.map_changes(&map) {
                let what = format!("{change:?}");
                match node.propose_map_change(change).await {
                    Ok(version) => info!(version, change = %what, "cluster map changed"),
                    Err(why) => {
                        debug!(change = %what, why = %why, "a cluster map change was not applied");
                        break;
                    }
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(MAP_PAUSE) => {}
            _ = stop.changed() => return,
        }
    }
}

/// A member among `members` (other than this node) that says it holds a replica of the
/// meta group, if any answers so.
async fn holder_of_meta(node: &Node, members: &BTreeMap<NodeId, NodeInfo>) -> Option<NodeId> {
    for (&id, info) in members.iter().filter(|(&id, _)| id != node.id) {
        let Ok(mut peer) = node.pool.node(&info.grpc_addr) else {
            continue;
        };
        if let Ok(status) = peer.status().await {
            if status.groups.iter().any(|g| g.group_id == GroupId::META) {
                return Some(id);
            }
        }
    }
    None
}

/// For a data directory written before the meta group existed: once this node leads data
/// group 1, initializes the meta group with that group's members, unless it already
/// exists here (initialized by another node and replicated here) or another member says
/// it holds one (this node joined a cluster that has it, and restarted before it was added
/// to it). Ends then, or when the node stops.
pub(crate) async fn adopt(node: Arc<Node>) {
    let mut stop = node.stop.subscribe();
    loop {
        match node.meta.raft.is_initialized().await {
            Ok(true) => return,
            Ok(false) => {}
            Err(e) => {
                warn!(error = %raft_error(e), "cannot tell whether the meta group exists");
                return;
            }
        }
        let first = &node.groups[0];
        if first.is_leader() {
            let m = first.metrics();
            let membership = m.membership_config.membership();
            let members: BTreeMap<NodeId, NodeInfo> = membership
                .voter_ids()
                .filter_map(|id| membership.get_node(&id).map(|info| (id, info.clone())))
                .collect();
            if let Some(holder) = holder_of_meta(&node, &members).await {
                // This node joined a cluster that has one, and restarted before it was
                // added to it: its announcement adds it.
                info!(
                    node = node.id,
                    holder, "another member holds the meta group; not creating one"
                );
                return;
            }
            match node.meta.raft.initialize(members.clone()).await {
                Ok(()) => {
                    info!(
                        node = node.id,
                        members = members.len(),
                        "created the meta group for a data directory written before it"
                    );
                    return;
                }
                Err(e) if matches!(e.api_error(), Some(InitializeError::NotAllowed(_))) => return,
                Err(e) => warn!(error = %raft_error(e), "creating the meta group failed; retrying"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(ADOPT_PAUSE) => {}
            _ = stop.changed() => return,
        }
    }
}
