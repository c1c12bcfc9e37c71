//! The read path: a read is served from this node's state once a read index says every
//! write acknowledged before it began is applied here (see the crate header for the read
//! modes), or by the leader when this node's log cannot write.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use openraft::ReadPolicy;
use resp::Frame;
use tokio::sync::watch;
use tonic::Status;
use types::GroupId;

use crate::error::Error;
use crate::group::Group;
use crate::route::{Attempt, Target};
use crate::{Node, Raft, ReadMode, NO_LEADER_WAIT};

/// Where a read is served (see [`Node::read_barrier`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadAt {
    /// From this node's state.
    Here,
    /// By the leader ([`Node::read_at_leader`]).
    Leader,
}

impl Node {
    /// Waits until a read may be served here at the configured consistency, then runs
    /// `read` against the state.
    pub async fn read<T>(
        &self,
        group: GroupId,
        read: impl FnOnce(&kv::Db) -> T,
    ) -> Result<T, Error> {
        match self.read_barrier(group).await? {
            ReadAt::Here => Ok(read(&self.hosted(group)?.db())),
            ReadAt::Leader => Err(Error::Failed(
                "this node's Raft log cannot write, so it cannot catch up: ask another node".into(),
            )),
        }
    }

    /// Where a read can be served linearizably (at the configured consistency) now:
    /// here once every write acknowledged before the call is applied here (one barrier
    /// serves every read received before it started), or at the leader when this
    /// follower's log cannot write (it cannot append, so it cannot apply, what was written
    /// since): see [`Node::read_at_leader`].
    pub async fn read_barrier(&self, group: GroupId) -> Result<ReadAt, Error> {
        let group = self.hosted(group)?;
        if self.config.read_mode == ReadMode::Stale || self.config.unsafe_local_reads {
            return Ok(ReadAt::Here);
        }
        if self.log_health().cause().is_some()
            && group.leader_id().is_some_and(|leader| leader != self.id)
        {
            return Ok(ReadAt::Leader);
        }
        self.wait_read_index(group).await.map(|()| ReadAt::Here)
    }

    /// Waits (until `deadline`) for this node's replica of the meta group to apply again
    /// what its own log held as committed when it started: the users and rules as they
    /// were before a restart, so a removed user or right never comes back for a moment
    /// while the log replays. True when it has.
    pub async fn users_replayed(&self, deadline: Instant) -> bool {
        self.meta.replayed(deadline).await
    }

    /// Waits until this node's replica of the meta group has applied every change of the
    /// users acknowledged before the call (a read barrier of the meta group).
    pub async fn acl_barrier(&self) -> Result<(), Error> {
        if self.config.read_mode == ReadMode::Stale {
            return Ok(());
        }
        self.wait_read_index(&self.meta).await
    }

    /// Runs a read command (its arguments, and the seed of a command that picks at random)
    /// on the leader, which serves it linearizably; its reply.
    pub async fn read_at_leader(
        &self,
        group: GroupId,
        args: &[Bytes],
        seed: u64,
    ) -> Result<Frame, Error> {
        let group = self.hosted(group)?;
        let reply = self
            .on_leader(group, |to| async move {
                match to {
                    Target::Here => match self.serve_read(group, args, Some(seed)).await {
                        Ok(wire) => Attempt::Done(Ok(wire)),
                        Err(_) => Attempt::Again,
                    },
                    Target::Leader { mut peer, .. } => {
                        let forward = rpc::Forward {
                            group_id: group.id,
                            args: args.to_vec(),
                            proto_version: 3,
                            seed: Some(seed),
                            proposal: None,
                        };
                        match peer.forward(forward).await {
                            Ok(wire) => Attempt::Done(Ok(wire.to_vec())),
                            Err(s) => Attempt::after_call(&s, |s| {
                                Err(Error::Failed(format!(
                                    "the leader could not serve the read: {}",
                                    s.message()
                                )))
                            }),
                        }
                    }
                }
            })
            .await??;
        Frame::from_wire(&reply)
            .map_err(|e| Error::Failed(format!("bad reply from the leader: {e}")))
    }

    /// Waits until a read served from this node's state now would be linearizable.
    pub(crate) async fn wait_read_index(&self, group: &Group) -> Result<(), Error> {
        let deadline = Instant::now() + NO_LEADER_WAIT;
        self.on_leader(group, |to| async move {
            let applied = match to {
                Target::Here => {
                    let confirmed = match self.config.read_mode {
                        ReadMode::Lease => group
                            .raft
                            .ensure_linearizable(ReadPolicy::LeaseRead)
                            .await
                            .is_ok(),
                        _ => group.rounds.wait().await.is_some(),
                    };
                    confirmed && group.wait_applied(group.read_floor(), deadline).await
                }
                Target::Leader { mut peer, .. } => match peer.read_index(group.id).await {
                    Ok(index) => group.wait_applied(index.read_index, deadline).await,
                    Err(s) => {
                        tracing::debug!(error = %s.message(), "leader refused a read index");
                        false
                    }
                },
            };
            if applied {
                Attempt::Done(())
            } else {
                Attempt::Again
            }
        })
        .await
    }

    /// A read command forwarded by a follower that cannot serve it ([`ReadAt::Leader`]):
    /// served here, on the leader, linearizably; its reply in the wire form. Writes are
    /// forwarded as prepared proposals, never as commands, so anything but a read is
    /// refused.
    pub(crate) async fn serve_read(
        &self,
        group: &Group,
        args: &[Bytes],
        seed: Option<u64>,
    ) -> Result<Vec<u8>, Status> {
        self.must_lead(group)?;
        let mut ctx = kv::Ctx {
            now_ms: self.stamp(),
            seed: seed.unwrap_or(0),
        };
        let now = ctx.now_ms;
        match kv::parse(args, &mut ctx) {
            Ok(kv::Cmd::Read(read)) => {
                let frame = self
                    .read(group.id, |db| match kv::claim::unserved_read(db, args) {
                        // The slot moved, or is moving: the caller routes it again.
                        Some(slot) => kv::claim::not_served(db, slot),
                        None => run_read(&read, db, now),
                    })
                    .await
                    .unwrap_or_else(|e| e.to_frame());
                Ok(frame.to_wire())
            }
            Ok(kv::Cmd::Write(_)) => Err(Status::invalid_argument(
                "only reads and prepared proposals are forwarded",
            )),
            Err(e) => Ok(e.to_frame().to_wire()),
        }
    }
}

/// ReadIndex rounds shared by concurrent reads (the leader's side of "one round serves
/// every read waiting at that moment"). A reader registers, then waits for the first
/// round that *started* after it registered: that round confirmed leadership and applied
/// the log at a moment after the reader arrived, which is what linearizability needs.
#[derive(Clone)]
pub(crate) struct ReadRounds {
    /// (rounds started, readers waiting for the next round).
    state: Arc<Mutex<(u64, usize)>>,
    /// Wakes the round runner when a reader registers.
    wake: Arc<tokio::sync::Notify>,
    /// (last round finished, the read index it confirmed, or `None` if it failed).
    done: watch::Sender<(u64, Option<u64>)>,
}

impl ReadRounds {
    pub(crate) fn new() -> Self {
        ReadRounds {
            state: Arc::default(),
            wake: Arc::default(),
            done: watch::channel((0, None)).0,
        }
    }

    /// Waits for a round that started after this call; its read index if it confirmed
    /// leadership (the log is then applied at least that far on this node).
    pub(crate) async fn wait(&self) -> Option<u64> {
        let mut done = self.done.subscribe();
        let target = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            state.1 += 1;
            state.0 + 1
        };
        self.wake.notify_one();
        let confirmed = done
            .wait_for(|(round, _)| *round >= target)
            .await
            .map(|r| r.1);
        confirmed.ok().flatten()
    }
}

/// Runs ReadIndex rounds back to back while readers wait.
pub(crate) async fn run_read_rounds(
    raft: Raft,
    rounds: ReadRounds,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let round = {
            let mut state = rounds.state.lock().unwrap_or_else(|p| p.into_inner());
            if state.1 == 0 {
                None
            } else {
                state.0 += 1;
                state.1 = 0;
                Some(state.0)
            }
        };
        let Some(round) = round else {
            tokio::select! {
                _ = rounds.wake.notified() => continue,
                _ = stop.changed() => return,
            }
        };
        let index = tokio::select! {
            r = raft.ensure_linearizable(ReadPolicy::ReadIndex) => r.ok().map(|read| read.log_id().index()),
            _ = stop.changed() => return,
        };
        rounds.done.send_replace((round, index));
    }
}

/// Runs `read` on `db`; one that walks the key space, with the runtime told that it may
/// take long ([`raft::patient`]).
pub fn run_read(read: &kv::Read, db: &kv::Db, now_ms: i64) -> resp::Frame {
    if read.walks_keyspace() {
        raft::patient::blocking(|| read.run(db, now_ms))
    } else {
        read.run(db, now_ms)
    }
}
