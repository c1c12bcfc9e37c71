//! One node's Raft groups and the paths a command takes through them.
//!
//! # Where things are
//!
//! - `node`: a running node ([`Node`]): start, the tasks it runs, shutdown.
//! - `group`: one replica of one group ([`Group`]): opening it, its leader, read floor.
//! - `bootstrap`: the first start (initialize the cluster, or join it).
//! - `routes`: which data group serves each slot, as this node sees it.
//! - `migrate`: slot moves between groups (`CLUSTER MIGRATESLOTS`) and the mover.
//! - `route`: "on the leader, or forwarded to it", the one loop every leader-only request
//!   goes through, and the rule that a forwarded request is never forwarded again.
//! - `write`, `read`, `membership`: the paths below.
//! - `meta_map`: the meta group (group 0) and the cluster map it keeps.
//! - `health`: what a log that cannot write changes (`MISCONF`, no votes).
//! - `status`: `INFO` fields, role names, leader-change logging, and the [`Topology`]
//!   the Redis Cluster protocol is rendered from.
//! - `service`: the gRPC server (the Raft service and the `Node` service's handlers).
//! - `error`: [`Error`], what a client is told instead of a reply, and its one
//!   [`Error::to_frame`]; [`StartError`].
//!
//! # Routing
//!
//! The 16384 slots are spread over `--raft-groups` data groups; each group's state
//! machine holds which slots it serves (its claim, changed only by slot moves: `migrate`),
//! and [`Node::group_of`] routes by what this node's replicas have applied (`routes`); a
//! group refuses, at apply and on every replica alike, a write for a slot it does not
//! serve, and the write path routes such a refusal again. Clients see each group as a
//! Redis Cluster shard ([`Node::topology`]): its leader is the master, its other voters
//! the replicas, each reached at the RESP address its member announced (`bootstrap`: the
//! leader records it in the group's membership). In redirect mode the server answers
//! `-MOVED` to the address [`Node::redirect`] gives; otherwise commands take the paths
//! below, forwarded to the leader when this node does not lead.
//!
//! # Writes
//!
//! The server parses a write (so syntax errors reply at once) and hands [`Node::write`] a
//! [`kv::Proposal`]: the raw arguments and the seed, or a whole `EXEC`. On the leader the
//! proposal is stamped with the leader's clock (never behind a time it stamped before)
//! and submitted with `client_write`; the reply comes back once a majority has the entry
//! on disk and the leader has applied it. On a follower the proposal is forwarded to the
//! leader over gRPC (`Forward` with the encoded proposal) and the leader's reply comes
//! back in the lossless wire form of a frame. A write is retried only when it certainly
//! never entered a log: no leader yet, a leader that refused it before appending it
//! (openraft's `ForwardToLeader`, also given by a new leader not yet acknowledged by a
//! quorum), or a leader that could not be connected to; with no leader for
//! [`NO_LEADER_WAIT`] it gets `-CLUSTERDOWN` ([`Error::ClusterDown`]). A write appended
//! and then discarded on a change of leader (`LogEntryDiscarded`), or lost with a
//! connection mid-call, may still be committed by the next leader, so it is never proposed
//! twice: the client gets [`Error::UnknownOutcome`], as a Redis client gets a timeout.
//! So does a write the leader appended and could not commit within [`COMMIT_WAIT`] (a
//! leader cut off from its quorum), instead of waiting for the partition to heal.
//! (Exactly-once retries would need request ids deduplicated by the state machine: not
//! done yet.)
//!
//! # Reads
//!
//! - `linearizable` (default): the leader confirms it still leads with a ReadIndex round
//!   (openraft's `ensure_linearizable`, which also waits for the apply); a follower asks the
//!   leader for its read index over gRPC, waits until it has applied that far, and reads
//!   its own state. Either way the read reflects every write acknowledged before it began.
//! - `lease`: the leader skips the round while its lease holds (stale only if clocks drift
//!   beyond the lease); followers still ask the leader.
//! - `stale`: any node reads its own state at once; it may be behind.
//!
//! A restarted leader never resumes its old term: it must win a new election
//! (`enable_leader_restore` off, see `group`). Should it ever lead the term it started in,
//! it serves reads only after applying its whole startup log: its saved commit index can
//! lag what it acknowledged before the crash.
//! - UNSAFE `local-reads` ([`ClusterConfig::unsafe_local_reads`], for the fault-injection
//!   suite's self-test only): every node, leader or follower, answers every read from its
//!   own state at once, whatever the read mode says. Reads may be stale; the suite must
//!   catch that.
//!
//! # Failover
//!
//! A node that loses its leader stops serving linearizable reads (no read index) and
//! writes (no leader) within the election timeout; after an election the same paths go
//! to the new leader. The first start initializes the group from `initial-cluster` (every
//! founding member proposes the same membership, which openraft allows); a node started
//! with `--join` asks a member to add it as a learner and then a voter. `CLUSTER FORGET`
//! removes a voter. At shutdown a leader hands leadership to another voter first;
//! `CLUSTER TRANSFER-LEADER <id>`, sent to the leader, does the same on demand.
//!
//! # Large writes
//!
//! A write whose encoded proposal is over 64 KiB (`raft::uploads::PART_BYTES`) is proposed
//! by the leader as parts of an upload, in windows of `PART_WINDOW` parts with
//! `WINDOWS_IN_FLIGHT` windows in flight, then one entry that
//! assembles and applies them (see `raft::uploads`); other clients' writes interleave with
//! the parts. Until that last entry is appended nothing is applied, so a part refused or
//! lost to a change of leader means the write was certainly not applied: it is sent again
//! as a new upload (a few times, each with a fresh wait for a leader). A follower forwards
//! a large write whole (the Node service takes messages up to `max-request-bytes`, with a
//! deadline that grows with the bytes). A write over `max-request-bytes` is refused before
//! anything is proposed.
//!
//! # When the log cannot write, or lost its end
//!
//! - A full disk or a failed write stalls the node's log (see `raft::log_store`): writes
//!   sent to this node get `-MISCONF` (`Node::refuse_write`); the node refuses votes and
//!   stops standing for election and, as a leader, stops sending heartbeats so the others
//!   elect a leader among themselves (a transfer would need it to persist a vote for the
//!   new leader, which it cannot); as a follower it acknowledges the new leader's vote
//!   without waiting for the disk (a learnt term, not a grant) and sends its reads to the
//!   leader, since it cannot append what it would need to apply ([`ReadAt::Leader`]). It all
//!   resumes once the log writes again (`guard_votes`).
//! - A log found at start to hold less than the node had flushed (`raft::Behind`): a lone
//!   node refuses to start; a member of a larger group neither votes nor stands for
//!   election until its log reaches what it had flushed (the floor), and proposes empty
//!   writes to move an idle cluster along. The leader replicates to it again from where its
//!   log ends (openraft's `allow_log_reversion`), where it would otherwise panic.
//!
//! # Membership
//!
//! A joining node becomes a voter only once its log has caught up with the leader's last
//! index at the time it asked (`CATCH_UP_WAIT` per request; the joiner asks again until
//! it has), so a joiner that never answers stays a learner and never costs the group its
//! quorum. A membership change that meets one still being committed waits for it
//! (`MEMBERSHIP_WAIT`) instead of failing.

mod bootstrap;
mod clock;
mod config;
mod error;
mod group;
mod health;
mod membership;
mod meta_map;
mod migrate;
mod node;
mod peers;
mod placement;
mod read;
mod route;
mod routes;
mod service;
mod status;
mod write;

use std::time::Duration;

use types::GroupId;

use clock::wall_ms;
pub use clock::Clock;
pub use config::{
    check_raft_groups, max_raft_groups, ClusterConfig, ReadMode, DEFAULT_MAX_REQUEST_BYTES,
    DEFAULT_RAFT_GROUPS, DEFAULT_SLOT_MOVE_WAIT, DEFAULT_SNAPSHOT_LOGS,
};
pub use error::{Error, StartError};
pub use group::Group;
pub use migrate::{set_move_fault, MoveFault, FAULT_POINTS};
pub use node::Node;
pub use raft::patient;
pub use raft::Health as LogHealth;
pub use read::{run_read, ReadAt};
pub use rpc::PeerSecret;
pub use rpc::PeerTls;
pub use status::{Member, Shard, Topology};

/// The first data group (the only one with `--raft-groups 1`).
pub const FIRST_DATA_GROUP: GroupId = GroupId(1);
/// Longest a command waits for a leader before `-CLUSTERDOWN`.
pub const NO_LEADER_WAIT: Duration = Duration::from_secs(3);
/// Longest a leader waits for a write it appended to be committed and applied before the
/// client gets [`Error::UnknownOutcome`] (a leader cut off from its quorum would keep it
/// waiting until the partition heals; etcd answers "request timed out"). Not applied to a
/// large write's parts, whose wait grows with their bytes.
pub const COMMIT_WAIT: Duration = Duration::from_secs(10);

type Raft = raft::typ::Raft;
