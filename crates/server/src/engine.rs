//! What the server runs data commands against: memory, for tests of the command layer
//! (`--in-memory`), or the cluster. Sessions, `INFO` and active expiry talk to an
//! [`Engine`] and never ask which one it is, except for what only a cluster has (its
//! `INFO replication` fields, its log's health).
//!
//! `Engine` is an enum rather than a trait object: its methods are async, which a `dyn`
//! trait cannot offer without boxing every call's future, and a generic parameter would
//! reach every type of the server for two cases.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use cluster::{Clock, ReadAt};
use kv::Db;
use resp::Frame;
use types::{GroupId, Slot};

/// Memory's one group.
const ONLY: GroupId = cluster::FIRST_DATA_GROUP;

/// The reply when a cluster-only command reaches a memory-only server.
const NO_CLUSTER: &str = "ERR This instance has cluster support disabled";

pub enum Engine {
    /// One node's data in memory; a write applies at once under the lock.
    Memory(Box<Memory>),
    /// A cluster node: writes go through Raft, reads through a read barrier.
    Cluster(Arc<cluster::Node>),
}

/// Memory-only data, and the clock that keeps its writes' times from going back.
#[derive(Default)]
pub struct Memory {
    db: Mutex<Db>,
    clock: Clock,
}

impl Memory {
    /// Applies a proposal at `now_ms` (the time its request was read at, or the latest
    /// time a write was applied at if that is later), as a replica applies a log entry. A
    /// panic inside a command becomes an error reply.
    fn apply(&self, proposal: &kv::Proposal, now_ms: i64) -> Frame {
        let now = self.clock.stamp(now_ms);
        let mut db = self.db.lock().unwrap_or_else(|p| p.into_inner());
        catch_unwind(AssertUnwindSafe(|| proposal.apply(&mut db, now))).unwrap_or_else(|_| {
            tracing::error!("a command panicked; replying with an error");
            Frame::error("ERR internal error while executing the command")
        })
    }
}

impl Engine {
    /// A memory-only engine.
    pub fn memory() -> Engine {
        Engine::Memory(Box::default())
    }

    /// The cluster node, if this is one.
    pub fn node(&self) -> Option<&Arc<cluster::Node>> {
        match self {
            Engine::Memory(_) => None,
            Engine::Cluster(node) => Some(node),
        }
    }

    /// The data group a command on `slot` runs in (`None`, a command with no key: the
    /// first group). Memory has one "group", [`ONLY`].
    pub fn group_of(&self, slot: Option<Slot>) -> GroupId {
        match (self, slot) {
            (Engine::Cluster(node), Some(slot)) => node.group_of(slot).id,
            (Engine::Cluster(_), None) | (Engine::Memory(_), _) => ONLY,
        }
    }

    /// Every data group, in id order.
    pub fn groups(&self) -> Vec<GroupId> {
        match self {
            Engine::Memory(_) => vec![ONLY],
            Engine::Cluster(node) => node.groups().iter().map(|g| g.id).collect(),
        }
    }

    /// The digest of the cluster map as this node's replica of the meta group has applied
    /// it (no read barrier: the map is not on any command's path); `None` without one.
    pub fn meta_digest(&self, now_ms: i64) -> Option<String> {
        match self {
            Engine::Memory(_) => None,
            Engine::Cluster(node) => Some(node.meta().db().digest(now_ms)),
        }
    }

    /// True when the keyspace is split over several groups: keyless commands (`DBSIZE`,
    /// `KEYS`, `SCAN`, `RANDOMKEY`, `FLUSHALL`) run in each and their replies are merged.
    pub fn is_split(&self) -> bool {
        matches!(self, Engine::Cluster(node) if node.groups().len() > 1)
    }

    /// The data of `group` that reads run against (after [`Engine::read_barrier`]),
    /// locked.
    pub fn db(&self, group: GroupId) -> MutexGuard<'_, Db> {
        match self {
            Engine::Memory(m) => cluster::patient::lock(&m.db),
            Engine::Cluster(node) => node.group(group).unwrap_or(&node.groups()[0]).db(),
        }
    }

    /// Runs `f` over the data of every group, one lock at a time; the results in group
    /// order.
    pub fn each_db<T>(&self, mut f: impl FnMut(&Db) -> T) -> Vec<T> {
        self.groups().into_iter().map(|g| f(&self.db(g))).collect()
    }

    /// Where reads of `group` received so far can be served: here once every write
    /// acknowledged before the call is visible here, or by the group's leader.
    pub async fn read_barrier(&self, group: GroupId) -> Result<ReadAt, Frame> {
        match self {
            Engine::Memory(_) => Ok(ReadAt::Here),
            Engine::Cluster(node) => node.read_barrier(group).await.map_err(|e| e.to_frame()),
        }
    }

    /// Runs `read` against the data of `group`, unless the group does not serve `slot`
    /// (the slot of the read's keys, which the session routed it by) now: moved, or
    /// moving. Then the refusal, `-TRYAGAIN`, which [`Engine::read_after_refusal`] takes
    /// up.
    pub fn run_read(
        &self,
        group: GroupId,
        read: &kv::Read,
        slot: Option<Slot>,
        now_ms: i64,
    ) -> Frame {
        let db = self.db(group);
        match slot.filter(|&s| !db.serves_now(s)) {
            Some(slot) => kv::claim::not_served(&db, slot),
            None => cluster::run_read(read, &db, now_ms),
        }
    }

    /// `refused` unless it is a refusal by a group's claim: then the read is routed again
    /// as the slots stand now, with a fresh barrier, until it is served or
    /// `slot-move-wait` has passed (then the last refusal, `-TRYAGAIN`).
    pub async fn read_after_refusal(
        &self,
        refused: Frame,
        read: &kv::Read,
        args: &[Bytes],
        slot: Option<Slot>,
        seed: u64,
        now_ms: i64,
    ) -> Frame {
        let Engine::Cluster(node) = self else {
            return refused;
        };
        if !kv::claim::is_refusal(&refused) {
            return refused;
        }
        let Some(slot) = slot else { return refused };
        let deadline = std::time::Instant::now() + node.slot_move_wait();
        let mut pause = std::time::Duration::from_millis(2);
        let mut reply = refused;
        while std::time::Instant::now() < deadline {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(std::time::Duration::from_millis(50));
            node.refresh_routes();
            let group = node.group_of(slot).id;
            reply = match node.read_barrier(group).await {
                Ok(ReadAt::Here) => self.run_read(group, read, Some(slot), now_ms),
                Ok(ReadAt::Leader) => self.read_at_leader(group, args, seed).await,
                Err(e) => return e.to_frame(),
            };
            if !kv::claim::is_refusal(&reply) {
                break;
            }
        }
        reply
    }

    /// Runs a read on the leader of `group` (when [`Engine::read_barrier`] says so).
    pub async fn read_at_leader(&self, group: GroupId, args: &[Bytes], seed: u64) -> Frame {
        match self {
            Engine::Memory(_) => Frame::error(NO_CLUSTER),
            Engine::Cluster(node) => reply(node.read_at_leader(group, args, seed).await),
        }
    }

    /// Runs `read` against the data of `group` once a read barrier allows it.
    pub async fn read<T>(&self, group: GroupId, read: impl FnOnce(&Db) -> T) -> Result<T, Frame> {
        match self {
            Engine::Memory(_) => Ok(read(&self.db(group))),
            Engine::Cluster(node) => node.read(group, read).await.map_err(|e| e.to_frame()),
        }
    }

    /// Applies one write to `group`, received at `now_ms` (in a cluster the leader stamps
    /// its own time instead); its reply.
    pub async fn write(&self, group: GroupId, proposal: &kv::Proposal, now_ms: i64) -> Frame {
        match self {
            Engine::Memory(m) => m.apply(proposal, now_ms),
            Engine::Cluster(node) => reply(node.write(group, proposal).await),
        }
    }

    /// Applies writes to `group` received together at `now_ms`, in order; their replies
    /// in order.
    pub async fn write_many(
        &self,
        group: GroupId,
        proposals: &[kv::Proposal],
        now_ms: i64,
    ) -> Vec<Frame> {
        match self {
            Engine::Memory(m) => proposals.iter().map(|p| m.apply(p, now_ms)).collect(),
            Engine::Cluster(node) => node
                .write_many(group, proposals)
                .await
                .into_iter()
                .map(reply)
                .collect(),
        }
    }

    /// The node a command on `slot` belongs on when another node serves it (the target
    /// of `-MOVED` in redirect mode); `None` when it is served (or forwarded) here.
    pub fn moved_to(&self, slot: types::Slot) -> Option<types::NodeInfo> {
        match self {
            Engine::Memory(_) => None,
            Engine::Cluster(node) => node.redirect(slot),
        }
    }

    /// The groups this node leads (memory's one group).
    pub fn led_groups(&self) -> Vec<GroupId> {
        match self {
            Engine::Memory(_) => vec![ONLY],
            Engine::Cluster(node) => node
                .groups()
                .iter()
                .filter(|g| g.is_leader())
                .map(|g| g.id)
                .collect(),
        }
    }

    /// `CLUSTER FORGET <node-id>`.
    pub async fn forget(&self, id: types::NodeId) -> Frame {
        match self {
            Engine::Memory(_) => Frame::error(NO_CLUSTER),
            Engine::Cluster(node) => reply(node.forget(id).await.map(|()| Frame::OK)),
        }
    }

    /// `CLUSTER REBALANCE-LEADERS`: how many leaderships this node handed over.
    pub async fn rebalance_leaders(&self) -> Frame {
        match self {
            Engine::Memory(_) => Frame::error(NO_CLUSTER),
            Engine::Cluster(node) => reply(
                node.rebalance_leaders()
                    .await
                    .map(|n| Frame::Integer(n as i64)),
            ),
        }
    }

    /// `CLUSTER TRANSFER-LEADER <node-id>`.
    pub async fn transfer_leader(&self, id: types::NodeId) -> Frame {
        match self {
            Engine::Memory(_) => Frame::error(NO_CLUSTER),
            Engine::Cluster(node) => reply(node.transfer_leader(id).await.map(|()| Frame::OK)),
        }
    }

    /// `CLUSTER TRANSFER-LEADER <node-id> <group-id>`.
    pub async fn transfer_group_leader(&self, group: GroupId, to: types::NodeId) -> Frame {
        match self {
            Engine::Memory(_) => Frame::error(NO_CLUSTER),
            Engine::Cluster(node) => reply(
                node.transfer_group_leader(group, to)
                    .await
                    .map(|()| Frame::OK),
            ),
        }
    }

    /// The version of the users and their rules this node has applied (0: never
    /// changed); a session compares it once per batch of requests.
    pub fn acl_version(&self) -> u64 {
        match self {
            Engine::Memory(m) => cluster::patient::lock(&m.db).acl().map_or(0, |u| u.version),
            Engine::Cluster(node) => node.acl_version(),
        }
    }

    /// The users and their rules as this node has applied them.
    pub fn acl_users(&self) -> meta::acl::Users {
        match self {
            Engine::Memory(m) => cluster::patient::lock(&m.db)
                .acl()
                .cloned()
                .unwrap_or_default(),
            Engine::Cluster(node) => node.acl_users(),
        }
    }

    /// Waits until every change of the users acknowledged before the call holds here (a
    /// read barrier of the meta group); the error reply if the meta group cannot say.
    pub async fn acl_barrier(&self) -> Result<(), Frame> {
        match self {
            Engine::Memory(_) => Ok(()),
            Engine::Cluster(node) => node.acl_barrier().await.map_err(|e| e.to_frame()),
        }
    }

    /// Applies a change of the users: in a cluster through the meta group's log, so it
    /// holds on every node. `+OK`, the number of users removed, or the refusal.
    pub async fn change_acl(&self, change: meta::acl::Change) -> Frame {
        match self {
            Engine::Memory(m) => m.apply(&kv::Proposal::Acl(change), 0),
            Engine::Cluster(node) => reply(node.change_acl(change).await),
        }
    }

    /// Stops the node's groups (after leadership is handed away); nothing in memory.
    pub async fn shutdown(&self) {
        if let Engine::Cluster(node) = self {
            node.shutdown().await;
        }
    }
}

/// A cluster answer as the client's reply.
fn reply(answer: Result<Frame, cluster::Error>) -> Frame {
    answer.unwrap_or_else(|e| e.to_frame())
}
