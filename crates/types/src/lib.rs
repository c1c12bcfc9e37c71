//! The names of redraft's domain, once, for every crate: which node, which group, which
//! log position, which hash slot and which version of its ownership, how to reach a node,
//! and how a key maps to its slot.
//!
//! This crate sits below every other one and depends on nothing but `serde`, so storage,
//! network and routing code can share these types without depending on each other.
//! `NodeId` and `LogIndex` are plain aliases because openraft works with `u64` directly;
//! `GroupId`, `Slot` and `Epoch` are newtypes, so one can never be passed for another.

mod slot;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use slot::{key_slot, Slot};

/// A node of the cluster (openraft's `NodeId`).
pub type NodeId = u64;

/// Node `id`'s name in the Redis Cluster protocol (`CLUSTER NODES`, `MYID`, `SLOTS`): 40
/// hex digits, as Redis's node ids are, derived from the numeric id so that every node
/// names every other the same way and a name never changes: node 1 is
/// `0000000000000000000000000000000000000001`.
pub fn node_name(id: NodeId) -> String {
    format!("{id:040x}")
}

/// A position in a group's Raft log.
pub type LogIndex = u64;

/// A Raft group: group 0 is the meta group, the others own slot ranges.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct GroupId(pub u64);

impl GroupId {
    /// The meta group, which holds the cluster map.
    pub const META: GroupId = GroupId(0);
}

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl From<u64> for GroupId {
    fn from(id: u64) -> Self {
        GroupId(id)
    }
}

/// The version of a slot's ownership: it grows by one each time the slot changes group.
/// A write routed with an older epoch than the owning group's is refused.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Epoch(pub u64);

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// How to reach a node, as a group's Raft membership records it: its RESP address for
/// clients (`MOVED`) and its gRPC address for peers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub resp_addr: String,
    pub grpc_addr: String,
}

impl fmt::Display for NodeInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "resp={} grpc={}", self.resp_addr, self.grpc_addr)
    }
}
