//! openraft's network over gRPC: [`GrpcNetworkFactory`] makes one [`GrpcNetwork`] per
//! (group, target node); all of them share the [`PeerPool`]'s one channel per peer.
//!
//! Generic over the type config `C` (node ids are `u64`, nodes say their gRPC address
//! through [`GrpcAddr`]) and over the snapshot data `SD` (anything `Read`: a file, a cursor).
//!
//! Invariants: every call has a deadline; a transport failure, a refusal by the peer
//! (unknown group, wrong node, undecodable) or an undecodable reply is `Unreachable` (openraft
//! backs off) and an expired deadline is `Timeout`, so a bad peer never spins openraft in a
//! tight retry loop. Only a snapshot read to its end gets the chunk marked `last`, without
//! which the receiver installs nothing: a read error or a cancel can never leave a
//! truncated snapshot installed, even if the transport ends the stream cleanly.

use std::future::Future;
use std::io::Read;
use std::marker::PhantomData;
use std::time::Duration;

use bytes::Bytes;
use openraft::entry::RaftEntry;
use openraft::error::{
    NetworkError, RPCError, ReplicationClosed, StreamingError, Timeout, Unreachable,
};
use openraft::network::{RPCOption, RPCTypes};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::type_config::alias::{SnapshotOf, VoteOf};
use openraft::{RaftNetworkFactory, RaftNetworkV2, RaftTypeConfig};
use tokio::sync::{mpsc, oneshot};
use tonic::Status;
use types::GroupId;

use crate::message::{Envelope, Reply, SnapshotHeader, VoteCall};
use crate::pb::raft as rpb;
use crate::pb::raft::raft_client::RaftClient;
use crate::pool::{deadline, timed, PeerPool};
use crate::secret::PeerChannel;
use crate::MAX_CHUNK;

/// A node record that knows its gRPC `host:port`.
pub trait GrpcAddr {
    /// Where the node's gRPC server listens.
    fn grpc_addr(&self) -> &str;
}

impl GrpcAddr for types::NodeInfo {
    fn grpc_addr(&self) -> &str {
        &self.grpc_addr
    }
}

impl GrpcAddr for openraft::BasicNode {
    fn grpc_addr(&self) -> &str {
        &self.addr
    }
}

/// Makes the network clients of one group on one node.
pub struct GrpcNetworkFactory<C, SD> {
    pool: PeerPool,
    group_id: GroupId,
    local_id: u64,
    _types: PhantomData<fn() -> (C, SD)>,
}

impl<C, SD> Clone for GrpcNetworkFactory<C, SD> {
    fn clone(&self) -> Self {
        GrpcNetworkFactory {
            pool: self.pool.clone(),
            group_id: self.group_id,
            local_id: self.local_id,
            _types: PhantomData,
        }
    }
}

impl<C, SD> GrpcNetworkFactory<C, SD> {
    /// The factory for group `group_id` on node `local_id`, sending through `pool`.
    pub fn new(pool: PeerPool, group_id: GroupId, local_id: u64) -> Self {
        GrpcNetworkFactory {
            pool,
            group_id,
            local_id,
            _types: PhantomData,
        }
    }
}

impl<C, SD> RaftNetworkFactory<C> for GrpcNetworkFactory<C, SD>
where
    C: RaftTypeConfig<NodeId = u64>,
    C::Node: GrpcAddr,
    SD: Read + Send + 'static,
{
    type Network = GrpcNetwork<C, SD>;

    async fn new_client(&mut self, target: u64, node: &C::Node) -> Self::Network {
        let addr = node.grpc_addr().to_owned();
        let client = self.pool.raft_client(&addr).map_err(|e| e.to_string());
        GrpcNetwork {
            pool: self.pool.clone(),
            client,
            group_id: self.group_id,
            local_id: self.local_id,
            target,
            _types: PhantomData,
        }
    }
}

/// Sends one group's Raft RPCs to one target node.
pub struct GrpcNetwork<C, SD> {
    pool: PeerPool,
    /// The peer's client, or why its address is unusable.
    client: Result<RaftClient<PeerChannel>, String>,
    group_id: GroupId,
    local_id: u64,
    target: u64,
    _types: PhantomData<fn() -> (C, SD)>,
}

impl<C, SD> GrpcNetwork<C, SD>
where
    C: RaftTypeConfig<NodeId = u64>,
{
    fn client(&self) -> Result<RaftClient<PeerChannel>, Unreachable<C>> {
        self.client.clone().map_err(Unreachable::from_string)
    }

    fn envelope<T>(&self, body: T) -> Envelope<T> {
        Envelope {
            group_id: self.group_id,
            target: self.target,
            body,
        }
    }

    /// What a failed call means to openraft.
    fn status_error(&self, s: &Status, action: RPCTypes, timeout: Duration) -> RPCError<C> {
        tracing::debug!(group = %self.group_id, target = self.target, %action, code = %s.code(), message = s.message(), "raft rpc failed");
        if s.code() == tonic::Code::DeadlineExceeded {
            return RPCError::Timeout(Timeout {
                action,
                id: self.local_id,
                target: self.target,
                timeout,
            });
        }
        RPCError::Unreachable(Unreachable::from_string(format!(
            "group {} node {}: {}: {}",
            self.group_id,
            self.target,
            s.code(),
            s.message()
        )))
    }

    /// Runs one unary call with a deadline and decodes its reply.
    async fn unary<Req, Resp, F, Fut>(
        &self,
        action: RPCTypes,
        timeout: Duration,
        msg: Req,
        call: F,
    ) -> Result<Resp, RPCError<C>>
    where
        Resp: serde::de::DeserializeOwned,
        F: FnOnce(RaftClient<PeerChannel>, tonic::Request<Req>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<rpb::RaftReply>, Status>>,
    {
        let client = self.client()?;
        let reply = deadline(timeout, call(client, timed(msg, timeout)))
            .await
            .map_err(|s| self.status_error(&s, action, timeout))?;
        let Reply(resp) = Reply::try_from(reply.into_inner()).map_err(|e| {
            RPCError::Unreachable(Unreachable::from_string(format!(
                "bad reply from node {}: {e}",
                self.target
            )))
        })?;
        Ok(resp)
    }

    async fn vote_call(
        &self,
        pre_vote: bool,
        req: VoteRequest<C>,
        option: RPCOption,
    ) -> Result<VoteResponse<C>, RPCError<C>> {
        let timeout = self.pool.config().vote_timeout.min(option.soft_ttl());
        let msg = rpb::VoteRequest::try_from(self.envelope(VoteCall { pre_vote, req }))
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        self.unary(RPCTypes::Vote, timeout, msg, |mut c, r| async move {
            c.vote(r).await
        })
        .await
    }
}

impl<C, SD> RaftNetworkV2<C> for GrpcNetwork<C, SD>
where
    C: RaftTypeConfig<NodeId = u64>,
    SD: Read + Send + 'static,
{
    type SnapshotData = SD;

    async fn append_entries(
        &mut self,
        mut rpc: AppendEntriesRequest<C>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<C>, RPCError<C>> {
        // A heartbeat (no entries) gets openraft's deadline, a fraction of the heartbeat
        // interval; entries get at least `append_timeout`: the follower answers only once
        // they are on its disk, behind whatever it is writing already, and a deadline that
        // expires first only makes the leader send them again.
        let base = if rpc.entries.is_empty() {
            self.pool.config().append_timeout.min(option.soft_ttl())
        } else {
            self.pool.config().append_timeout.max(option.soft_ttl())
        };
        // A batch over the byte budget is halved until it fits (or is one entry); openraft
        // then learns that only its first part arrived.
        let budget = self.pool.config().max_append_bytes;
        let wanted = rpc.entries.len();
        let msg = loop {
            let msg = rpb::AppendEntriesRequest::try_from(self.envelope(&rpc))
                .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
            if msg.payload.len() <= budget || rpc.entries.len() <= 1 {
                break msg;
            }
            rpc.entries.truncate(rpc.entries.len() / 2);
        };
        let sent_up_to = rpc.entries.last().map(|e| e.log_id());
        // The deadline grows with the bytes: openraft's (a fraction of the heartbeat) is
        // sized for heartbeats, and a message that can never arrive within it would be
        // resent for ever while every later entry waits behind it.
        let timeout = self.pool.config().deadline_for(base, msg.payload.len());
        let resp = self
            .unary(
                RPCTypes::AppendEntries,
                timeout,
                msg,
                |mut c, r| async move { c.append_entries(r).await },
            )
            .await?;
        Ok(match resp {
            AppendEntriesResponse::Success if rpc.entries.len() < wanted => {
                AppendEntriesResponse::PartialSuccess(sent_up_to)
            }
            other => other,
        })
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<C>,
        option: RPCOption,
    ) -> Result<VoteResponse<C>, RPCError<C>> {
        self.vote_call(false, rpc, option).await
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<C>,
        option: RPCOption,
    ) -> Result<VoteResponse<C>, RPCError<C>> {
        self.vote_call(true, rpc, option).await
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<C>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<C>, RPCError<C>> {
        let timeout = self.pool.config().transfer_timeout.min(option.hard_ttl());
        let msg = rpb::TransferLeaderRequest::try_from(self.envelope(req))
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        self.unary(
            RPCTypes::TransferLeader,
            timeout,
            msg,
            |mut c, r| async move { c.transfer_leader(r).await },
        )
        .await
    }

    async fn full_snapshot(
        &mut self,
        vote: VoteOf<C>,
        snapshot: SnapshotOf<C, SD>,
        cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<C>, StreamingError<C>> {
        let timeout = self.pool.config().snapshot_timeout;
        let mut client = self.client()?;
        let header = rpb::SnapshotChunk::try_from(self.envelope(SnapshotHeader::<C> {
            vote,
            meta: snapshot.meta,
        }))
        .map_err(|e| StreamingError::Network(NetworkError::new(&e)))?;

        let (tx, rx) = mpsc::channel::<rpb::SnapshotChunk>(2);
        let (failed_tx, failed_rx) = oneshot::channel::<std::io::Error>();
        let (group_id, target) = (self.group_id, self.target);
        let producer = tokio::spawn(send_chunks(
            snapshot.snapshot,
            header,
            group_id,
            target,
            tx,
            failed_tx,
        ));
        let _abort = AbortOnDrop(producer);

        let call = deadline(
            timeout,
            client.install_snapshot(timed(
                tokio_stream::wrappers::ReceiverStream::new(rx),
                timeout,
            )),
        );
        let reply = tokio::select! {
            r = call => r.map_err(|s| match self.status_error(&s, RPCTypes::InstallSnapshot, timeout) {
                RPCError::Timeout(t) => StreamingError::Timeout(t),
                other => StreamingError::Unreachable(Unreachable::from_string(other.to_string())),
            })?,
            Ok(e) = failed_rx => {
                return Err(StreamingError::Network(NetworkError::from_string(format!("reading snapshot: {e}"))));
            }
            closed = cancel => return Err(StreamingError::Closed(closed)),
        };
        let Reply(resp) =
            Reply::<SnapshotResponse<C>>::try_from(reply.into_inner()).map_err(|e| {
                StreamingError::Unreachable(Unreachable::from_string(format!(
                    "bad reply from node {target}: {e}"
                )))
            })?;
        Ok(resp)
    }
}

/// Aborts the snapshot reader when the call is over, however it ended.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Feeds the snapshot stream: the header, then the data in chunks of at most [`MAX_CHUNK`],
/// then an empty chunk marked `last`. On a read error it reports the error and never sends
/// `last`, so the receiver refuses the transfer however the stream ends.
async fn send_chunks<SD: Read + Send + 'static>(
    mut data: SD,
    header: rpb::SnapshotChunk,
    group_id: GroupId,
    target: u64,
    tx: mpsc::Sender<rpb::SnapshotChunk>,
    failed: oneshot::Sender<std::io::Error>,
) {
    if tx.send(header).await.is_err() {
        return;
    }
    loop {
        let read = tokio::task::spawn_blocking(move || {
            let mut buf = Vec::with_capacity(MAX_CHUNK);
            let r = (&mut data).take(MAX_CHUNK as u64).read_to_end(&mut buf);
            (data, buf, r)
        })
        .await;
        let (d, buf) = match read {
            Ok((d, buf, Ok(_))) => (d, buf),
            Ok((_, _, Err(e))) => {
                let _ = failed.send(e);
                tx.closed().await;
                return;
            }
            Err(e) => {
                let _ = failed.send(std::io::Error::other(e.to_string()));
                tx.closed().await;
                return;
            }
        };
        data = d;
        // Only a read that found the end marks the chunk `last`; any other way the stream
        // ends is a truncation to the receiver.
        let last = buf.is_empty();
        let chunk = rpb::SnapshotChunk {
            group_id: group_id.0,
            target,
            header: Bytes::new(),
            data: buf.into(),
            last,
        };
        if tx.send(chunk).await.is_err() || last {
            return;
        }
    }
}
