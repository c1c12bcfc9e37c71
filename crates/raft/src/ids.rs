//! The names of the domain, once: which node, which group, which log position.
//!
//! `NodeId` and `LogIndex` are plain aliases because openraft works with `u64` directly;
//! `GroupId` is a newtype so a group can never be passed where a node is meant.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A node of the cluster (openraft's `NodeId`).
pub type NodeId = u64;

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
