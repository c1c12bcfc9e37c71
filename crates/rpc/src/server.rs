//! The gRPC services a node serves: [`RaftService`] (Raft RPCs of every hosted group) and
//! [`NodeService`] (forwarding, read index, membership, status, delegated to a
//! [`NodeHandler`]).
//!
//! Both are thin: decode (through `convert`), find the group, call, encode.
//!
//! Invariants: no input makes a handler panic. An unknown group is `NOT_FOUND`, bytes that do
//! not decode are `INVALID_ARGUMENT`, and so is a term beyond [`crate::MAX_TERM`] or a log index
//! beyond [`crate::MAX_INDEX`] (checked before openraft sees the request, which would save such
//! a vote and then panic incrementing it, at every restart), a request meant for another node id is
//! `FAILED_PRECONDITION`, a stopped group is `UNAVAILABLE`. A snapshot is only handed to
//! openraft after the chunk marked `last` arrived, within the size limit, and after the
//! checks openraft would otherwise assert (and panic on) passed.

use std::future::Future;
use std::io::{Read, Seek, SeekFrom, Write};
use std::marker::PhantomData;

use openraft::async_runtime::WatchReceiver;
use openraft::entry::RaftEntry;
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::type_config::alias::{LogIdOf, VoteOf};
use openraft::vote::{RaftLeaderId, RaftTerm, RaftVote};
use openraft::{Raft, RaftTypeConfig};
use tonic::{Request, Response, Status, Streaming};
use types::GroupId;

use crate::message::{
    Envelope, Forward, Join, Leave, NodeStatus, ReadIndex, Reply, SnapshotHeader, VoteCall,
};
use crate::pb::node as npb;
use crate::pb::raft as rpb;
use crate::registry::GroupRegistry;
use crate::MAX_CHUNK;

/// Largest gRPC message a server accepts: a 64 MiB AppendEntries payload plus its envelope.
pub const MAX_MESSAGE: usize = (crate::codec::MAX_PAYLOAD as usize) + 4096;

/// Largest snapshot accepted unless configured otherwise: 64 GiB.
pub const DEFAULT_MAX_SNAPSHOT: u64 = 64 << 30;

/// Serves the `Raft` service for every group in a [`GroupRegistry`].
pub struct RaftService<C, SM, R> {
    registry: R,
    max_snapshot: u64,
    _types: PhantomData<fn() -> (C, SM)>,
}

impl<C, SM, R> RaftService<C, SM, R>
where
    C: RaftTypeConfig<NodeId = u64>,
    SM: RaftStateMachine<C>,
    SM::SnapshotData: Read + Write + Seek,
    R: GroupRegistry<C, SM>,
{
    /// A service over `registry`.
    pub fn new(registry: R) -> Self {
        RaftService {
            registry,
            max_snapshot: DEFAULT_MAX_SNAPSHOT,
            _types: PhantomData,
        }
    }

    /// Refuse snapshot transfers larger than `bytes` (default [`DEFAULT_MAX_SNAPSHOT`]).
    pub fn with_max_snapshot(mut self, bytes: u64) -> Self {
        self.max_snapshot = bytes;
        self
    }

    /// The tonic server to add to a `tonic::transport::Server`, with message limits set.
    pub fn into_server(self) -> rpb::raft_server::RaftServer<Self> {
        rpb::raft_server::RaftServer::new(self)
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
    }

    /// The group's `Raft`, if hosted here and if this node is the one the sender meant.
    fn group(&self, group: GroupId, target: u64) -> Result<Raft<C, SM>, Status> {
        let raft = self
            .registry
            .raft(group)
            .ok_or_else(|| Status::not_found(format!("no raft group {group} on this node")))?;
        let me = *raft.node_id();
        if me != target {
            return Err(Status::failed_precondition(format!(
                "request for node {target} reached node {me} (group {group})"
            )));
        }
        Ok(raft)
    }
}

impl<C, SM, R> RaftService<C, SM, R>
where
    C: RaftTypeConfig<NodeId = u64>,
    SM: RaftStateMachine<C>,
    R: GroupRegistry<C, SM>,
{
    /// `UNAVAILABLE` while the registry says this replica must not vote or take over (a
    /// candidate counts that as no vote).
    fn check_votes_allowed(&self, group: GroupId) -> Result<(), Status> {
        match self.registry.vote_refusal(group) {
            Some(why) => Err(Status::unavailable(format!(
                "group {group}: this replica does not vote or take leadership now: {why}"
            ))),
            None => Ok(()),
        }
    }
}

fn stopped(e: impl std::fmt::Display) -> Status {
    Status::unavailable(format!("raft group stopped: {e}"))
}

fn reply<T: serde::Serialize>(value: T) -> Result<Response<rpb::RaftReply>, Status> {
    Ok(Response::new(Reply(value).try_into()?))
}

/// Runs blocking snapshot I/O off the async runtime.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, Status> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(Status::internal(format!("snapshot buffer: {e}"))),
        Err(e) => Err(Status::internal(format!("snapshot buffer task: {e}"))),
    }
}

#[tonic::async_trait]
impl<C, SM, R> rpb::raft_server::Raft for RaftService<C, SM, R>
where
    C: RaftTypeConfig<NodeId = u64>,
    SM: RaftStateMachine<C>,
    SM::SnapshotData: Read + Write + Seek,
    R: GroupRegistry<C, SM>,
{
    async fn vote(
        &self,
        request: Request<rpb::VoteRequest>,
    ) -> Result<Response<rpb::RaftReply>, Status> {
        let m: Envelope<VoteCall<C>> = request.into_inner().try_into()?;
        let raft = self.group(m.group_id, m.target)?;
        check_vote::<C>(&m.body.req.vote)?;
        self.check_votes_allowed(m.group_id)?;
        check_index::<C>("last_log_id", m.body.req.last_log_id.as_ref())?;
        let resp = if m.body.pre_vote {
            raft.pre_vote(m.body.req).await
        } else {
            raft.vote(m.body.req).await
        };
        reply(resp.map_err(stopped)?)
    }

    async fn append_entries(
        &self,
        request: Request<rpb::AppendEntriesRequest>,
    ) -> Result<Response<rpb::RaftReply>, Status> {
        let m: Envelope<openraft::raft::AppendEntriesRequest<C>> =
            request.into_inner().try_into()?;
        let raft = self.group(m.group_id, m.target)?;
        check_vote::<C>(&m.body.vote)?;
        check_index::<C>("prev_log_id", m.body.prev_log_id.as_ref())?;
        check_index::<C>("leader_commit", m.body.leader_commit.as_ref())?;
        check_append(&m.body)?;
        reply(raft.append_entries(m.body).await.map_err(stopped)?)
    }

    async fn install_snapshot(
        &self,
        request: Request<Streaming<rpb::SnapshotChunk>>,
    ) -> Result<Response<rpb::RaftReply>, Status> {
        let mut stream = request.into_inner();
        let first = stream
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("empty snapshot stream"))?;
        let head: Envelope<SnapshotHeader<C>> = (&first).try_into()?;
        let (group_id, target) = (head.group_id, head.target);
        let raft = self.group(group_id, target)?;
        check_vote::<C>(&head.body.vote)?;
        check_index::<C>("snapshot last_log_id", head.body.meta.last_log_id.as_ref())?;
        check_index::<C>(
            "snapshot membership log id",
            head.body.meta.last_membership.log_id().as_ref(),
        )?;
        check_snapshot(&raft, &head.body)?;

        let buffer = self.registry.snapshot_buffer(group_id);
        let mut buffer = buffer.map_err(|e| Status::internal(format!("snapshot buffer: {e}")))?;
        let mut chunk = Some(first);
        let mut total: u64 = 0;
        let mut last = false;
        while let Some(c) = chunk {
            if last {
                return Err(Status::invalid_argument(
                    "snapshot chunk after the last one",
                ));
            }
            last = c.last;
            if c.group_id != group_id.0 || c.target != target {
                return Err(Status::invalid_argument(
                    "snapshot chunks disagree on group or target",
                ));
            }
            if c.data.len() > MAX_CHUNK {
                return Err(Status::invalid_argument(format!(
                    "snapshot chunk of {} bytes, more than {MAX_CHUNK}",
                    c.data.len()
                )));
            }
            total = total.saturating_add(c.data.len() as u64);
            if total > self.max_snapshot {
                return Err(Status::resource_exhausted(format!(
                    "snapshot larger than {} bytes",
                    self.max_snapshot
                )));
            }
            if !c.data.is_empty() {
                buffer = blocking(move || buffer.write_all(&c.data).map(|()| buffer)).await?;
            }
            chunk = stream.message().await?;
            if chunk.as_ref().is_some_and(|c| !c.header.is_empty()) {
                return Err(Status::invalid_argument(
                    "snapshot header repeated after the first chunk",
                ));
            }
        }
        if !last {
            return Err(Status::invalid_argument(
                "snapshot stream ended before its last chunk (truncated)",
            ));
        }
        let buffer = blocking(move || {
            buffer.flush()?;
            buffer.seek(SeekFrom::Start(0)).map(|_| buffer)
        })
        .await?;
        let snapshot = Snapshot {
            meta: head.body.meta,
            snapshot: buffer,
        };
        reply(
            raft.install_full_snapshot(head.body.vote, snapshot)
                .await
                .map_err(stopped)?,
        )
    }

    async fn transfer_leader(
        &self,
        request: Request<rpb::TransferLeaderRequest>,
    ) -> Result<Response<rpb::RaftReply>, Status> {
        let m: Envelope<openraft::raft::TransferLeaderRequest<C>> =
            request.into_inner().try_into()?;
        let raft = self.group(m.group_id, m.target)?;
        check_vote::<C>(m.body.from_leader())?;
        self.check_votes_allowed(m.group_id)?;
        check_index::<C>("last_log_id", m.body.last_log_id())?;
        reply(raft.handle_transfer_leader(m.body).await.map_err(stopped)?)
    }
}

/// Refuses a vote whose term is beyond [`crate::MAX_TERM`]: openraft increments terms without
/// checking for overflow, and saves a vote before acting on it.
fn check_vote<C: RaftTypeConfig>(vote: &VoteOf<C>) -> Result<(), Status> {
    match vote.leader_id().term().as_u64() {
        Some(term) if term <= crate::MAX_TERM => Ok(()),
        Some(term) => Err(Status::invalid_argument(format!(
            "term {term} is beyond the largest term a peer may send ({})",
            crate::MAX_TERM
        ))),
        None => Err(Status::invalid_argument("a term that is not a number")),
    }
}

/// Refuses a log id whose index is beyond [`crate::MAX_INDEX`] (openraft adds to indexes
/// without checking for overflow).
fn check_index<C: RaftTypeConfig>(field: &str, log_id: Option<&LogIdOf<C>>) -> Result<(), Status> {
    match log_id.map(|l| l.index()) {
        Some(index) if index > crate::MAX_INDEX => Err(Status::invalid_argument(format!(
            "{field}: index {index} is beyond the largest index a peer may send ({})",
            crate::MAX_INDEX
        ))),
        _ => Ok(()),
    }
}

/// Refuses an AppendEntries no correct leader sends and that openraft only checks with
/// debug assertions: entries must follow `prev_log_id` index by index, their leaders must not
/// go back, and none may be beyond the sender's vote.
fn check_append<C: RaftTypeConfig>(
    req: &openraft::raft::AppendEntriesRequest<C>,
) -> Result<(), Status> {
    let bad = |why: &str| {
        Err(Status::invalid_argument(format!(
            "malformed AppendEntries: {why}"
        )))
    };
    let vote_leader = req.vote.leader_id().to_committed();
    let mut prev_leader = match &req.prev_log_id {
        Some(p) if p.leader_id > vote_leader => return bad("prev_log_id beyond the vote"),
        Some(p) => Some(&p.leader_id),
        None => None,
    };
    let mut want = req
        .prev_log_id
        .as_ref()
        .map_or(Some(0), |p| p.index.checked_add(1));
    for e in &req.entries {
        let (leader, index) = e.log_id_parts();
        if Some(index) != want {
            return bad("entries do not follow prev_log_id index by index");
        }
        if *leader > vote_leader || prev_leader.is_some_and(|p| leader < p) {
            return bad("entry leader out of order");
        }
        prev_leader = Some(leader);
        want = index.checked_add(1);
    }
    Ok(())
}

/// Refuses a snapshot openraft would panic on (see `Raft::install_full_snapshot`): one whose
/// last log id is beyond the sending leader's vote, or one newer than this node's committed
/// log id but not at a greater index. Either means a corrupt or forged snapshot.
fn check_snapshot<C, SM>(raft: &Raft<C, SM>, head: &SnapshotHeader<C>) -> Result<(), Status>
where
    C: RaftTypeConfig,
    SM: RaftStateMachine<C>,
{
    let Some(last) = head.meta.last_log_id.as_ref() else {
        return Ok(());
    };
    if last.leader_id > head.vote.leader_id().to_committed() {
        return Err(Status::invalid_argument(
            "snapshot last log id is beyond the sending leader's vote",
        ));
    }
    let committed = raft.metrics().borrow_watched().local_committed.clone();
    if let Some(committed) = committed {
        if *last > committed && last.index <= committed.index {
            return Err(Status::invalid_argument(
                "snapshot contradicts this node's committed log",
            ));
        }
    }
    Ok(())
}

/// What the Node service does; the server crate implements it, tests use fakes.
///
/// Every method's error is the gRPC status the caller receives.
pub trait NodeHandler: Send + Sync + 'static {
    /// Runs a forwarded client command; returns the encoded reply frame.
    fn forward(&self, req: Forward) -> impl Future<Output = Result<Vec<u8>, Status>> + Send;
    /// The leader's read index for `group`.
    fn read_index(&self, group: GroupId) -> impl Future<Output = Result<ReadIndex, Status>> + Send;
    /// Adds a node to the cluster.
    fn join(&self, req: Join) -> impl Future<Output = Result<(), Status>> + Send;
    /// Removes a node from the cluster.
    fn leave(&self, req: Leave) -> impl Future<Output = Result<(), Status>> + Send;
    /// This node's view of its groups.
    fn status(&self) -> impl Future<Output = Result<NodeStatus, Status>> + Send;
}

/// Serves the `Node` service through a [`NodeHandler`].
pub struct NodeService<H> {
    handler: H,
    max_message: usize,
}

impl<H: NodeHandler> NodeService<H> {
    /// A service over `handler`.
    pub fn new(handler: H) -> Self {
        NodeService {
            handler,
            max_message: MAX_MESSAGE,
        }
    }

    /// Accept messages (forwarded writes) of up to `bytes` (at least [`MAX_MESSAGE`]).
    pub fn with_max_message(mut self, bytes: usize) -> Self {
        self.max_message = bytes.max(MAX_MESSAGE);
        self
    }

    /// The tonic server to add to a `tonic::transport::Server`, with message limits set.
    pub fn into_server(self) -> npb::node_server::NodeServer<Self> {
        let max = self.max_message;
        npb::node_server::NodeServer::new(self)
            .max_decoding_message_size(max)
            .max_encoding_message_size(max)
    }
}

#[tonic::async_trait]
impl<H: NodeHandler> npb::node_server::Node for NodeService<H> {
    async fn forward(
        &self,
        request: Request<npb::ForwardRequest>,
    ) -> Result<Response<npb::ForwardReply>, Status> {
        let req: Forward = request.into_inner().try_into()?;
        let reply = self.handler.forward(req).await?;
        Ok(Response::new(npb::ForwardReply {
            reply: reply.into(),
        }))
    }

    async fn read_index(
        &self,
        request: Request<npb::ReadIndexRequest>,
    ) -> Result<Response<npb::ReadIndexReply>, Status> {
        let r = self
            .handler
            .read_index(GroupId(request.into_inner().group_id))
            .await?;
        Ok(Response::new(r.into()))
    }

    async fn join(
        &self,
        request: Request<npb::JoinRequest>,
    ) -> Result<Response<npb::JoinReply>, Status> {
        // A caller that is no member yet may join with its own address only.
        let joiner = request.extensions().get::<crate::tls::Joiner>().cloned();
        let join: Join = request.into_inner().try_into()?;
        if let Some(joiner) = joiner {
            joiner.check(&join.grpc_addr)?;
        }
        self.handler.join(join).await?;
        Ok(Response::new(npb::JoinReply {}))
    }

    async fn leave(
        &self,
        request: Request<npb::LeaveRequest>,
    ) -> Result<Response<npb::LeaveReply>, Status> {
        self.handler.leave(request.into_inner().into()).await?;
        Ok(Response::new(npb::LeaveReply {}))
    }

    async fn status(
        &self,
        _request: Request<npb::StatusRequest>,
    ) -> Result<Response<npb::StatusReply>, Status> {
        Ok(Response::new(self.handler.status().await?.into()))
    }
}
