//! Where the Raft server finds a group's `Raft` and a place to receive its snapshot.
//!
//! Invariants: lookups never panic (a poisoned lock is read through: the map itself is
//! never left half-updated, every write is a single insert or remove).

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, RwLock};

use openraft::storage::RaftStateMachine;
use openraft::{Raft, RaftTypeConfig};

/// The groups this node hosts, as the Raft gRPC service sees them.
pub trait GroupRegistry<C, SM>: Send + Sync + 'static
where
    C: RaftTypeConfig,
    SM: RaftStateMachine<C>,
{
    /// The local replica of `group_id`, if this node hosts it.
    fn raft(&self, group_id: u64) -> Option<Raft<C, SM>>;

    /// A new, empty, writable snapshot for `group_id`. The Raft service writes the received
    /// chunks into it, seeks it back to the start, and hands it to
    /// [`Raft::install_full_snapshot`]. For file-backed snapshots this is a fresh temporary
    /// file opened for reading and writing.
    fn snapshot_buffer(&self, group_id: u64) -> io::Result<SM::SnapshotData>;

    /// Why the local replica of `group_id` must not grant votes or take over leadership
    /// now (its log is catching up after damage, or cannot write), if it must not.
    fn vote_refusal(&self, group_id: u64) -> Option<String> {
        let _ = group_id;
        None
    }
}

type BufferFn<D> = dyn Fn(u64) -> io::Result<D> + Send + Sync;

/// A ready-made [`GroupRegistry`]: a shared map from group id to `Raft`, and a function that
/// makes snapshot buffers. Cloning shares the map.
pub struct Groups<C, SM>
where
    C: RaftTypeConfig,
    SM: RaftStateMachine<C>,
{
    map: Arc<RwLock<HashMap<u64, Raft<C, SM>>>>,
    buffer: Arc<BufferFn<SM::SnapshotData>>,
    refusals: Arc<RwLock<HashMap<u64, String>>>,
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
    /// An empty registry whose snapshot buffers come from `buffer(group_id)`.
    pub fn new(
        buffer: impl Fn(u64) -> io::Result<SM::SnapshotData> + Send + Sync + 'static,
    ) -> Self {
        Groups {
            map: Arc::default(),
            buffer: Arc::new(buffer),
            refusals: Arc::default(),
        }
    }

    /// Makes the local replica of `group_id` refuse votes and leadership transfers (with
    /// `Some(why)`), or accept them again (`None`).
    pub fn set_vote_refusal(&self, group_id: u64, why: Option<String>) {
        let mut r = self.refusals.write().unwrap_or_else(|e| e.into_inner());
        match why {
            Some(why) => r.insert(group_id, why),
            None => r.remove(&group_id),
        };
    }

    /// Adds (or replaces) a group.
    pub fn insert(&self, group_id: u64, raft: Raft<C, SM>) {
        self.map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(group_id, raft);
    }

    /// Removes a group; its `Raft` is returned so the caller can shut it down.
    pub fn remove(&self, group_id: u64) -> Option<Raft<C, SM>> {
        self.map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&group_id)
    }

    /// The ids of the hosted groups, ascending.
    pub fn ids(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self
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
    fn raft(&self, group_id: u64) -> Option<Raft<C, SM>> {
        self.map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&group_id)
            .cloned()
    }

    fn snapshot_buffer(&self, group_id: u64) -> io::Result<SM::SnapshotData> {
        (self.buffer)(group_id)
    }

    fn vote_refusal(&self, group_id: u64) -> Option<String> {
        self.refusals
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&group_id)
            .cloned()
    }
}
