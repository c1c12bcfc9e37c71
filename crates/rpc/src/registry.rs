//! Where the Raft server finds a group's `Raft` and a place to receive its snapshot.
//!
//! Invariants: lookups never panic (a poisoned lock is read through: the map itself is
//! never left half-updated, every write is a single insert or remove).

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, RwLock};

use openraft::storage::RaftStateMachine;
use openraft::{Raft, RaftTypeConfig};
use types::GroupId;

/// The groups this node hosts, as the Raft gRPC service sees them.
pub trait GroupRegistry<C, SM>: Send + Sync + 'static
where
    C: RaftTypeConfig,
    SM: RaftStateMachine<C>,
{
    /// The local replica of `group`, if this node hosts it.
    fn raft(&self, group: GroupId) -> Option<Raft<C, SM>>;

    /// A new, empty, writable snapshot for `group`. The Raft service writes the received
    /// chunks into it, seeks it back to the start, and hands it to
    /// [`Raft::install_full_snapshot`]. For file-backed snapshots this is a fresh temporary
    /// file opened for reading and writing.
    fn snapshot_buffer(&self, group: GroupId) -> io::Result<SM::SnapshotData>;

    /// Why the local replica of `group` must not grant votes or take over leadership
    /// now (its log is catching up after damage, or cannot write), if it must not.
    fn vote_refusal(&self, group: GroupId) -> Option<String> {
        let _ = group;
        None
    }
}

type BufferFn<D> = dyn Fn(GroupId) -> io::Result<D> + Send + Sync;

/// A ready-made [`GroupRegistry`]: a shared map from group id to `Raft`, and a function that
/// makes snapshot buffers. Cloning shares the map.
pub struct Groups<C, SM>
where
    C: RaftTypeConfig,
    SM: RaftStateMachine<C>,
{
    map: Arc<RwLock<HashMap<GroupId, Raft<C, SM>>>>,
    buffer: Arc<BufferFn<SM::SnapshotData>>,
    refusals: Arc<RwLock<HashMap<GroupId, String>>>,
}

impl<C, SM> Clone for Groups<C, SM>
where
    C: RaftTypeConfig,
    SM: RaftStateMachine<C>,
{
    fn clone(&self) -> Self {
        Groups {
            map: self.map.clone(),
            buffer: self.buffer.clone(),
            refusals: self.refusals.clone(),
        }
    }
}

impl<C, SM> Groups<C, SM>
where
    C: RaftTypeConfig,
    SM: RaftStateMachine<C>,
{
    /// An empty registry whose snapshot buffers come from `buffer(group)`.
    pub fn new(
        buffer: impl Fn(GroupId) -> io::Result<SM::SnapshotData> + Send + Sync + 'static,
    ) -> Self {
        Groups {
            map: Arc::default(),
            buffer: Arc::new(buffer),
            refusals: Arc::default(),
        }
    }

    /// Makes the local replica of `group` refuse votes and leadership transfers (with
    /// `Some(why)`), or accept them again (`None`).
    pub fn set_vote_refusal(&self, group: GroupId, why: Option<String>) {
        let mut r = self.refusals.write().unwrap_or_else(|e| e.into_inner());
        match why {
            Some(why) => r.insert(group, why),
            None => r.remove(&group),
        };
    }

    /// Adds (or replaces) a group.
    pub fn insert(&self, group: GroupId, raft: Raft<C, SM>) {
        self.map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(group, raft);
    }

    /// Removes a group; its `Raft` is returned so the caller can shut it down.
    pub fn remove(&self, group: GroupId) -> Option<Raft<C, SM>> {
        self.map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&group)
    }

    /// The ids of the hosted groups, ascending.
    pub fn ids(&self) -> Vec<GroupId> {
        let mut ids: Vec<GroupId> = self
            .map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .copied()
            .collect();
        ids.sort_unstable();
        ids
    }
}

impl<C, SM> Groups<C, SM>
where
    C: RaftTypeConfig,
    SM: RaftStateMachine<C, SnapshotData = io::Cursor<Vec<u8>>>,
{
    /// A registry for state machines whose snapshots are in memory.
    pub fn in_memory() -> Self {
        Self::new(|_| Ok(io::Cursor::new(Vec::new())))
    }
}

impl<C, SM> GroupRegistry<C, SM> for Groups<C, SM>
where
    C: RaftTypeConfig,
    SM: RaftStateMachine<C>,
{
    fn raft(&self, group: GroupId) -> Option<Raft<C, SM>> {
        self.map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&group)
            .cloned()
    }

    fn snapshot_buffer(&self, group: GroupId) -> io::Result<SM::SnapshotData> {
        (self.buffer)(group)
    }

    fn vote_refusal(&self, group: GroupId) -> Option<String> {
        self.refusals
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&group)
            .cloned()
    }
}
