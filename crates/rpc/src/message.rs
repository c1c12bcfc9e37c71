//! Domain-side messages: openraft's structs with the routing fields that travel beside
//! them, and the Node service's requests and replies.
//!
//! These are what the rest of redraft handles; `convert` is the one place they become
//! proto messages and back.
//!
//! Invariants: a `Forward::proto_version` is 2 or 3, a `Join`'s addresses are non-empty
//! (checked by the conversions from proto, so a handler never sees anything else).

use bytes::Bytes;
use openraft::type_config::alias::{SnapshotMetaOf, VoteOf};
use openraft::RaftTypeConfig;
use serde::{Deserialize, Serialize};
use types::GroupId;

/// A Raft message for one group, addressed to one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope<T> {
    /// The Raft group.
    pub group_id: GroupId,
    /// The node id the sender means to reach.
    pub target: u64,
    /// The openraft message.
    pub body: T,
}

/// A RequestVote or Pre-Vote.
#[derive(Clone, Debug)]
pub struct VoteCall<C: RaftTypeConfig> {
    /// A Pre-Vote (asks whether the vote would be granted, changes nothing).
    pub pre_vote: bool,
    /// openraft's request.
    pub req: openraft::raft::VoteRequest<C>,
}

/// The first chunk of a snapshot transfer: who sends it and what it covers.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct SnapshotHeader<C: RaftTypeConfig> {
    /// The sending leader's vote.
    pub vote: VoteOf<C>,
    /// The snapshot's last log id and membership.
    pub meta: SnapshotMetaOf<C>,
}

/// A Raft response (`VoteResponse`, `AppendEntriesResponse`, ...), as `RaftReply` carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply<T>(pub T);

/// A client command forwarded to the leader of its group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Forward {
    /// The group that owns the command's keys.
    pub group_id: GroupId,
    /// The command's arguments, name first.
    pub args: Vec<Bytes>,
    /// RESP version of the client connection (2 or 3).
    pub proto_version: u32,
    /// Seed for commands that pick at random, if already chosen.
    pub seed: Option<u64>,
    /// An encoded `kv::Proposal` prepared by the forwarding node; `args` is then ignored.
    pub proposal: Option<Bytes>,
}

/// A leader's answer to a read-index request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadIndex {
    /// Apply up to this index, then read.
    pub read_index: u64,
    /// The leader that answered.
    pub leader: u64,
    /// Its term.
    pub term: u64,
}

/// A node asking to join the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Join {
    /// The joining node's id.
    pub node_id: u64,
    /// Its RESP `host:port`.
    pub resp_addr: String,
    /// Its gRPC `host:port`.
    pub grpc_addr: String,
    /// The hostname it announces to clients; empty: none.
    pub hostname: String,
    /// Sent by a member on the joiner's behalf to the member it believes leads: served
    /// only by a leader, never passed on again.
    pub forwarded: bool,
    /// With `forwarded`, the one group to add the node to (the meta group included);
    /// `None`: every group.
    pub group: Option<GroupId>,
}

/// A node to remove from the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leave {
    /// The leaving node's id.
    pub node_id: u64,
    /// The group to remove it from (the receiver leads it; the meta group included);
    /// `None`: every data group.
    pub group: Option<GroupId>,
}

/// A node's role in one group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Leads the group.
    Leader,
    /// Voter following a leader.
    Follower,
    /// Voter campaigning.
    Candidate,
    /// Non-voting member.
    Learner,
    /// The group's Raft has stopped on this node.
    Shutdown,
}

impl Role {
    /// The role's name as `INFO` shows it.
    pub fn name(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Follower => "follower",
            Role::Candidate => "candidate",
            Role::Learner => "learner",
            Role::Shutdown => "shutdown",
        }
    }
}

/// One group as seen by one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupStatus {
    /// The group.
    pub group_id: GroupId,
    /// This node's role in it.
    pub role: Role,
    /// Current term.
    pub term: u64,
    /// Known leader.
    pub leader: Option<u64>,
    /// Highest committed index.
    pub commit: Option<u64>,
    /// Highest applied index.
    pub applied: Option<u64>,
}

/// A node's view of itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeStatus {
    /// The node's id.
    pub node_id: u64,
    /// Every group it hosts.
    pub groups: Vec<GroupStatus>,
}
