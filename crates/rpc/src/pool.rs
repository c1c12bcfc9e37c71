//! [`PeerPool`]: one lazily connected gRPC channel per peer address, shared by every group
//! (HTTP/2 multiplexes all their calls on one connection), and [`NodePeer`], a typed client
//! of a peer's `Node` service.
//!
//! Reconnects re-resolve DNS. A channel made with `connect_lazy` wraps tonic's `Reconnect`
//! service: whenever the connection is gone (never made, refused, reset), the next call finds
//! it idle and calls the connector again with the peer's URI, and the connector (hyper-util's
//! `HttpConnector` with its `getaddrinfo` resolver) resolves the host name on every connect,
//! with no cache. So a peer that comes back under a new IP behind the same name (a Kubernetes
//! pod behind a headless Service) is found by the next call after the old connection breaks.
//! (tonic 0.14.9: `transport/channel/service/reconnect.rs`, `Reconnect::poll_ready`.)
//!
//! Outgoing connections are bound to the configured local address (the node's advertised
//! IP), so a peer sees where a call comes from, and a test can cut two nodes apart by address.
//!
//! With peer TLS ([`PoolConfig::tls`]) a channel dials through [`crate::tls`]'s connector:
//! the same TCP connector (local address, no-delay, a DNS lookup at every connect), then
//! a TLS handshake with the configuration current at that moment, so a reconnect picks up
//! rotated certificates.
//!
//! Invariants: at most one channel per address string; every call has a deadline (the
//! configured timeout, enforced locally and sent as `grpc-timeout`).

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};
use types::GroupId;

use crate::error::PoolError;
use crate::message::{Forward, Join, Leave, NodeStatus, ReadIndex};
use crate::pb::node as npb;
use crate::pb::node::node_client::NodeClient;
use crate::pb::raft::raft_client::RaftClient;
use crate::secret::{PeerChannel, PeerSecret, Present};
use crate::server::MAX_MESSAGE;
use crate::tls::PeerTls;
use hyper_util::client::legacy::connect::HttpConnector;

/// How to connect to peers, and how long each kind of call may take.
#[derive(Clone, Debug)]
pub struct PoolConfig {
    /// Source IP of outgoing connections (this node's advertised IP); `None` lets the OS pick.
    pub local_address: Option<IpAddr>,
    /// Time to set up a TCP connection.
    pub connect_timeout: Duration,
    /// AppendEntries carrying entries (at least this, plus time for their bytes); a
    /// heartbeat gets the lesser of this and what openraft allows per call.
    pub append_timeout: Duration,
    /// Vote and Pre-Vote; capped by what openraft allows per call.
    pub vote_timeout: Duration,
    /// TransferLeader.
    pub transfer_timeout: Duration,
    /// A whole snapshot transfer.
    pub snapshot_timeout: Duration,
    /// Node service calls (forward, read index, join, leave, status).
    pub node_timeout: Duration,
    /// HTTP/2 keep-alive ping interval, which finds dead connections between calls.
    pub keepalive: Duration,
    /// Most bytes of entries one AppendEntries carries: a longer batch is cut, its first
    /// part sent, and openraft told how far it got (`PartialSuccess`), so it sends the rest
    /// next. A single entry is always sent whole, up to [`crate::codec::MAX_PAYLOAD`].
    pub max_append_bytes: usize,
    /// The slowest transfer rate a peer is allowed, bytes per second: a call carrying `n`
    /// bytes gets `n / min_bytes_per_sec` on top of its deadline, so a large message is not
    /// cut off (and resent for ever) by a deadline sized for heartbeats.
    pub min_bytes_per_sec: u64,
    /// Largest Node service message (a forwarded write) sent or accepted.
    pub max_forward_bytes: usize,
    /// The cluster secret every call carries (see [`crate::secret`]); `None`: none.
    pub secret: Option<PeerSecret>,
    /// Mutual TLS with peers (see [`crate::tls`]); `None`: plain TCP.
    pub tls: Option<PeerTls>,
}

/// Default [`PoolConfig::max_append_bytes`]: 4 MiB (a large write's parts are 64 KiB
/// each, at most 4 MiB of them in flight, so other writes wait behind no more).
pub const DEFAULT_MAX_APPEND_BYTES: usize = 4 << 20;
/// Default [`PoolConfig::min_bytes_per_sec`]: 8 MiB/s.
pub const DEFAULT_MIN_BYTES_PER_SEC: u64 = 8 << 20;

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            local_address: None,
            connect_timeout: Duration::from_secs(1),
            append_timeout: Duration::from_millis(1000),
            vote_timeout: Duration::from_millis(1000),
            transfer_timeout: Duration::from_secs(2),
            snapshot_timeout: Duration::from_secs(600),
            node_timeout: Duration::from_secs(5),
            keepalive: Duration::from_secs(10),
            max_append_bytes: DEFAULT_MAX_APPEND_BYTES,
            min_bytes_per_sec: DEFAULT_MIN_BYTES_PER_SEC,
            max_forward_bytes: MAX_MESSAGE,
            secret: None,
            tls: None,
        }
    }
}

impl PoolConfig {
    /// The deadline of a call that carries `bytes`: `base` plus the time to move them at
    /// [`PoolConfig::min_bytes_per_sec`].
    pub fn deadline_for(&self, base: Duration, bytes: usize) -> Duration {
        let rate = self.min_bytes_per_sec.max(1) as f64;
        base + Duration::from_secs_f64(bytes as f64 / rate)
    }
}

struct Inner {
    config: PoolConfig,
    channels: Mutex<HashMap<String, Channel>>,
}

/// The node's connections to its peers. Cloning shares them.
#[derive(Clone)]
pub struct PeerPool {
    inner: Arc<Inner>,
}

impl PeerPool {
    /// An empty pool; channels are made on first use.
    pub fn new(config: PoolConfig) -> Self {
        PeerPool {
            inner: Arc::new(Inner {
                config,
                channels: Mutex::default(),
            }),
        }
    }

    /// The pool's settings.
    pub fn config(&self) -> &PoolConfig {
        &self.inner.config
    }

    /// The channel to `addr` (`host:port`), made lazily: nothing connects until the first
    /// call. Must run inside a tokio runtime.
    pub fn channel(&self, addr: &str) -> Result<Channel, PoolError> {
        let mut channels = self
            .inner
            .channels
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(c) = channels.get(addr) {
            return Ok(c.clone());
        }
        let endpoint = self.endpoint(addr)?;
        let c = match &self.inner.config.tls {
            None => endpoint.connect_lazy(),
            Some(tls) => endpoint.connect_with_connector_lazy(tls.connector(self.tcp())),
        };
        channels.insert(addr.to_owned(), c.clone());
        Ok(c)
    }

    /// Drops the channel to `addr` (a peer that left); the next use makes a new one.
    pub fn forget(&self, addr: &str) {
        self.inner
            .channels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(addr);
    }

    fn endpoint(&self, addr: &str) -> Result<Endpoint, PoolError> {
        let bad = |reason: String| PoolError::BadAddress {
            addr: addr.to_owned(),
            reason,
        };
        if addr.is_empty() || addr.contains('/') {
            return Err(bad("expected host:port".into()));
        }
        let c = &self.inner.config;
        let ep = Endpoint::from_shared(format!("http://{addr}")).map_err(|e| bad(e.to_string()))?;
        Ok(ep
            .connect_timeout(c.connect_timeout)
            .tcp_nodelay(true)
            .local_address(c.local_address)
            .http2_keep_alive_interval(c.keepalive)
            .keep_alive_timeout(c.keepalive)
            .keep_alive_while_idle(true))
    }

    /// The TCP connector under TLS: what `connect_lazy` sets up for plain channels.
    fn tcp(&self) -> HttpConnector {
        let c = &self.inner.config;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_local_address(c.local_address);
        http.set_connect_timeout(Some(c.connect_timeout));
        http
    }

    /// `channel(addr)`, its calls carrying the cluster secret.
    fn peer_channel(&self, addr: &str) -> Result<PeerChannel, PoolError> {
        let present = Present(self.inner.config.secret.clone());
        Ok(PeerChannel::new(self.channel(addr)?, present))
    }

    /// A client of the peer's `Raft` service.
    pub fn raft_client(&self, addr: &str) -> Result<RaftClient<PeerChannel>, PoolError> {
        Ok(RaftClient::new(self.peer_channel(addr)?)
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE))
    }

    /// A client of the peer's `Node` service.
    pub fn node(&self, addr: &str) -> Result<NodePeer, PoolError> {
        let c = &self.inner.config;
        let max = c.max_forward_bytes.max(MAX_MESSAGE);
        Ok(NodePeer {
            client: NodeClient::new(self.peer_channel(addr)?)
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
            timeout: c.node_timeout,
            config: c.clone(),
        })
    }
}

/// Runs a call with a deadline: sent to the server as `grpc-timeout` and enforced here, so a
/// peer that never answers costs at most `timeout`. An expired deadline is always
/// `DEADLINE_EXCEEDED` (tonic's channel reports its own expiry of the same deadline as
/// `CANCELLED`; that is mapped too).
pub(crate) async fn deadline<T, F>(timeout: Duration, call: F) -> Result<T, Status>
where
    F: Future<Output = Result<T, Status>>,
{
    let started = tokio::time::Instant::now();
    let expired = || Status::deadline_exceeded(format!("no answer within {timeout:?}"));
    match tokio::time::timeout(timeout, call).await {
        Ok(Err(s)) if s.code() == tonic::Code::Cancelled && started.elapsed() >= timeout => {
            Err(expired())
        }
        Ok(r) => r,
        Err(_) => Err(expired()),
    }
}

/// A request with its `grpc-timeout` header set.
pub(crate) fn timed<T>(msg: T, timeout: Duration) -> Request<T> {
    let mut r = Request::new(msg);
    r.set_timeout(timeout);
    r
}

/// True when a call failed before anything was sent to the peer: the connection could
/// not be opened (refused, unreachable). Anything else (a timeout, a connection lost
/// mid-call, the peer's own refusal) leaves open whether the peer acted on the call.
/// Decided by the error's type, found in the status's source chain, not by its text.
pub fn never_sent(status: &Status) -> bool {
    use std::io::ErrorKind;
    if status.code() != tonic::Code::Unavailable {
        return false;
    }
    let mut source = std::error::Error::source(status);
    while let Some(e) = source {
        if let Some(e) = e.downcast_ref::<hyper_util::client::legacy::Error>() {
            if e.is_connect() {
                return true;
            }
        }
        if let Some(e) = e.downcast_ref::<std::io::Error>() {
            if matches!(
                e.kind(),
                ErrorKind::ConnectionRefused
                    | ErrorKind::HostUnreachable
                    | ErrorKind::NetworkUnreachable
                    | ErrorKind::AddrNotAvailable
            ) {
                return true;
            }
        }
        source = e.source();
    }
    false
}

/// A typed client of one peer's `Node` service.
#[derive(Clone)]
pub struct NodePeer {
    client: NodeClient<PeerChannel>,
    timeout: Duration,
    config: PoolConfig,
}

impl NodePeer {
    /// Runs `req` on the peer (its group's leader); the encoded reply frame. The deadline
    /// grows with the size of the write (see [`PoolConfig::deadline_for`]): the leader
    /// replies once the write is replicated.
    pub async fn forward(&mut self, req: Forward) -> Result<Bytes, Status> {
        let size = req.proposal.as_ref().map_or(0, |p| p.len())
            + req.args.iter().map(|a| a.len()).sum::<usize>();
        let t = self.config.deadline_for(self.timeout, size * 2);
        let r = deadline(
            t,
            self.client
                .forward(timed(npb::ForwardRequest::from(req), t)),
        )
        .await?;
        Ok(r.into_inner().reply)
    }

    /// The peer's (the leader's) read index for `group`.
    pub async fn read_index(&mut self, group: GroupId) -> Result<ReadIndex, Status> {
        let t = self.timeout;
        let r = deadline(
            t,
            self.client
                .read_index(timed(npb::ReadIndexRequest { group_id: group.0 }, t)),
        )
        .await?;
        Ok(r.into_inner().into())
    }

    /// Asks the peer to add a node to the cluster.
    pub async fn join(&mut self, req: Join) -> Result<(), Status> {
        let t = self.timeout;
        deadline(t, self.client.join(timed(npb::JoinRequest::from(req), t))).await?;
        Ok(())
    }

    /// Asks the peer to remove a node from the cluster.
    pub async fn leave(&mut self, req: Leave) -> Result<(), Status> {
        let t = self.timeout;
        deadline(t, self.client.leave(timed(npb::LeaveRequest::from(req), t))).await?;
        Ok(())
    }

    /// The peer's view of its groups.
    pub async fn status(&mut self) -> Result<NodeStatus, Status> {
        let t = self.timeout;
        let r = deadline(t, self.client.status(timed(npb::StatusRequest {}, t))).await?;
        Ok(r.into_inner().try_into()?)
    }
}
