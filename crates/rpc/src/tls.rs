//! Mutual TLS between nodes: every node serves gRPC over TLS and asks each caller for a
//! certificate chained to the peers' CA, dials its peers over TLS presenting its own, and
//! checks theirs against the host of the address it dials. Then the [`Identities`] layer
//! checks who the caller is, against the cluster as this node knows it (etcd's
//! `--peer-cert-allowed-cn`, with the names taken from the cluster instead of a flag):
//! the caller's certificate must name the host of some member's address or hostname.
//!
//! One exception: a `Join` from a node that is not a member yet, whose certificate must
//! name the host of the address it asks to join with (checked by `NodeService::join`,
//! which the layer tells through [`Joiner`]).
//!
//! Certificates, keys and the CA are re-read from disk when they change (see the `tls`
//! crate): new connections, in and out, use the new ones; open ones keep theirs until they
//! close (a peer's HTTP/2 connection lives long; its keep-alive ends it when it breaks).
//!
//! Invariants: a call reaches a handler only over a handshake that verified the caller's
//! chain (rustls) and, unless it is a `Join`, only from a certificate naming a member;
//! a node knows no members only while it is still joining (see [`Members`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tonic::codegen::http;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tonic::Status;
use tracing::{debug, warn};

pub use tls::{Error, Files};

/// The gRPC path of `Join`, the one call a node that is not a member yet may make.
pub const JOIN_PATH: &str = "/redraft.node.v1.Node/Join";

/// Longest a peer may take over its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the list of members' hosts is kept before it is asked for again.
const MEMBERS_TTL: Duration = Duration::from_secs(1);

/// This node's peer TLS: its identity, served and presented, and the CA it checks peers
/// with; each re-read when its files change. Cloning shares them.
#[derive(Clone)]
pub struct PeerTls {
    server: Arc<tls::ServerTls>,
    client: Arc<tls::ClientTls>,
}

impl std::fmt::Debug for PeerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PeerTls({:?})", self.server.files())
    }
}

impl PeerTls {
    /// Peer TLS with the certificate, key and CA in `files` (the CA is required). Fails
    /// if they do not load.
    pub fn load(files: Files) -> Result<PeerTls, Error> {
        if files.ca.is_none() {
            return Err(Error::Rustls("peer TLS needs a CA file".into()));
        }
        const H2: &[&[u8]] = &[b"h2"];
        Ok(PeerTls {
            server: Arc::new(tls::ServerTls::server(
                files.clone(),
                "peer-tls",
                tls::ClientCerts::Required,
                H2,
            )?),
            client: Arc::new(tls::ClientTls::client(files, "peer-tls", H2)?),
        })
    }

    /// The TLS server connections from peers go through, their handshakes run side by
    /// side (a slow peer delays no other): the established ones, in the order they finish.
    pub fn incoming<S>(
        &self,
        mut tcp: S,
    ) -> impl tokio_stream::Stream<Item = std::io::Result<tokio_rustls::server::TlsStream<TcpStream>>>
           + Send
           + 'static
    where
        S: tokio_stream::Stream<Item = std::io::Result<TcpStream>> + Send + Unpin + 'static,
    {
        use tokio_stream::StreamExt as _;
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let server = self.server.clone();
        tokio::spawn(async move {
            loop {
                let stream = tokio::select! {
                    next = tcp.next() => match next {
                        Some(Ok(stream)) => stream,
                        Some(Err(e)) => {
                            warn!(error = %e, "accepting a peer connection failed");
                            continue;
                        }
                        None => return,
                    },
                    _ = tx.closed() => return,
                };
                let acceptor = server.acceptor();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let from = stream.peer_addr().ok();
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send(Ok(tls)).await;
                        }
                        Ok(Err(e)) => {
                            warn!(peer = ?from, cause = %e, "refused a peer's TLS handshake")
                        }
                        Err(_) => warn!(peer = ?from, "a peer's TLS handshake took too long"),
                    }
                });
            }
        });
        tokio_stream::wrappers::ReceiverStream::new(rx)
    }

    /// What dials peers: TCP through `http` (its local address, no-delay and DNS lookups
    /// at every connect), then TLS, checking the peer's certificate against the host
    /// dialed and presenting this node's.
    pub(crate) fn connector(&self, http: HttpConnector) -> Connector {
        Connector {
            http,
            client: self.client.clone(),
        }
    }
}

/// Dials a peer over TLS (see [`PeerTls::connector`]).
#[derive(Clone)]
pub(crate) struct Connector {
    http: HttpConnector,
    client: Arc<tls::ClientTls>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower_service::Service<http::Uri> for Connector {
    type Response = TokioIo<tokio_rustls::client::TlsStream<TcpStream>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let connecting = self.http.call(uri.clone());
        let connector = self.client.connector();
        Box::pin(async move {
            let host = uri.host().ok_or("the peer's address has no host")?;
            let name = tls::server_name(host)?;
            let tcp = connecting.await?.into_inner();
            let stream = connector.connect(name, tcp).await?;
            Ok(TokioIo::new(stream))
        })
    }
}

/// The hosts peers may be named by: those of every member's gRPC address and announced
/// hostname, as this node knows the members; `None` while it knows none but itself,
/// joining a cluster (then any certificate chained to the CA is taken, so that the
/// members can replicate to it before it has heard of them).
pub trait Members: Send + Sync + 'static {
    fn hosts(&self) -> Option<Vec<String>>;
}

impl<F> Members for F
where
    F: Fn() -> Option<Vec<String>> + Send + Sync + 'static,
{
    fn hosts(&self) -> Option<Vec<String>> {
        self()
    }
}

/// Marks a `Join` whose caller's certificate names no member: `NodeService::join` takes
/// it only if the certificate names the host of the address the node joins with.
#[derive(Clone, Debug)]
pub struct Joiner(pub rustls_pki_types::CertificateDer<'static>);

impl Joiner {
    /// `PERMISSION_DENIED` unless the certificate names the host of `grpc_addr`.
    #[allow(clippy::result_large_err)]
    pub fn check(&self, grpc_addr: &str) -> Result<(), Status> {
        let host = grpc_addr
            .rsplit_once(':')
            .map_or(grpc_addr, |(host, _)| host);
        if tls::names_host(&self.0, host) {
            Ok(())
        } else {
            Err(Status::permission_denied(format!(
                "the joining node's certificate does not name {host}, the host of the \
                 address it joins with"
            )))
        }
    }
}

/// The members' hosts (`None`: any peer of the CA), and when they were asked for.
type Cached = (Instant, Option<Arc<[String]>>);

/// The tower layer that checks every call's certificate against the members (see the
/// module's header). Cloning shares the members' hosts it caches.
#[derive(Clone)]
pub struct Identities {
    /// `None`: no peer TLS, every call goes through.
    members: Option<Arc<dyn Members>>,
    cached: Arc<Mutex<Option<Cached>>>,
}

impl Identities {
    pub fn new(members: impl Members) -> Identities {
        Identities {
            members: Some(Arc::new(members)),
            cached: Arc::default(),
        }
    }

    /// The layer of a node without peer TLS: it lets every call through.
    pub fn off() -> Identities {
        Identities {
            members: None,
            cached: Arc::default(),
        }
    }

    /// The members' hosts, asked for at most once every [`MEMBERS_TTL`].
    fn hosts(&self, members: &dyn Members) -> Option<Arc<[String]>> {
        let mut cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        match &*cached {
            Some((at, hosts)) if at.elapsed() < MEMBERS_TTL => hosts.clone(),
            _ => {
                let hosts = members.hosts().map(Arc::from);
                *cached = Some((Instant::now(), hosts.clone()));
                hosts
            }
        }
    }

    /// Lets a call on `path` from a peer whose certificate chain is `certs` through, or
    /// says why not; a `Join` from a stranger goes through marked [`Joiner`].
    #[allow(clippy::result_large_err)]
    pub fn check(
        &self,
        path: &str,
        certs: Option<&[rustls_pki_types::CertificateDer<'static>]>,
    ) -> Result<Option<Joiner>, Status> {
        let Some(members) = &self.members else {
            return Ok(None);
        };
        let Some(leaf) = certs.and_then(<[_]>::first) else {
            return Err(Status::unauthenticated(
                "this node takes calls only over mutual TLS (--peer-tls-cert-file)",
            ));
        };
        let Some(hosts) = self.hosts(members.as_ref()) else {
            return Ok(None);
        };
        if hosts.iter().any(|h| tls::names_host(leaf, h)) {
            return Ok(None);
        }
        if path == JOIN_PATH {
            return Ok(Some(Joiner(leaf.clone())));
        }
        Err(Status::permission_denied(
            "the caller's certificate names no member of this cluster",
        ))
    }
}

impl<S> tower_layer::Layer<S> for Identities {
    type Service = Checked<S>;

    fn layer(&self, inner: S) -> Checked<S> {
        Checked {
            identities: self.clone(),
            inner,
        }
    }
}

/// A service behind [`Identities`].
#[derive(Clone)]
pub struct Checked<S> {
    identities: Identities,
    inner: S,
}

impl<S, B, R> tower_service::Service<http::Request<B>> for Checked<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    R: Default + Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let certs = request
            .extensions()
            .get::<TlsConnectInfo<TcpConnectInfo>>()
            .and_then(|info| info.peer_certs());
        match self
            .identities
            .check(request.uri().path(), certs.as_deref().map(Vec::as_slice))
        {
            Ok(joiner) => {
                if let Some(joiner) = joiner {
                    request.extensions_mut().insert(joiner);
                }
                Box::pin(self.inner.call(request))
            }
            Err(status) => {
                let from = certs_remote(&request);
                debug!(peer = ?from, path = request.uri().path(), %status, "refused a peer's call");
                Box::pin(std::future::ready(Ok(status.into_http())))
            }
        }
    }
}

fn certs_remote<B>(request: &http::Request<B>) -> Option<std::net::SocketAddr> {
    request
        .extensions()
        .get::<TlsConnectInfo<TcpConnectInfo>>()
        .and_then(|info| info.get_ref().remote_addr())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tls::testing::Ca;

    fn der(id: &tls::testing::Identity) -> rustls_pki_types::CertificateDer<'static> {
        use rustls_pki_types::pem::PemObject;
        rustls_pki_types::CertificateDer::from_pem_slice(id.cert_pem.as_bytes()).unwrap()
    }

    #[test]
    fn only_members_and_joiners_get_through() {
        let ca = Ca::new("peers");
        let member = [der(&ca.issue(&["127.0.0.11"]))];
        let named = [der(&ca.issue(&["node-2.redraft"]))];
        let stranger = [der(&ca.issue(&["127.0.0.99"]))];
        let ids = Identities::new(|| {
            Some(vec![
                "127.0.0.11".to_string(),
                "127.0.0.12".into(),
                "node-2.redraft".into(),
            ])
        });
        let vote = "/redraft.raft.v1.Raft/Vote";
        assert!(matches!(ids.check(vote, Some(&member)), Ok(None)));
        assert!(matches!(ids.check(vote, Some(&named)), Ok(None)));
        let refused = ids.check(vote, Some(&stranger)).unwrap_err();
        assert_eq!(refused.code(), tonic::Code::PermissionDenied);
        assert_eq!(
            ids.check(vote, None).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        // A stranger may ask to join, with its own address only.
        let joiner = ids.check(JOIN_PATH, Some(&stranger)).unwrap().unwrap();
        assert!(joiner.check("127.0.0.99:7379").is_ok());
        assert_eq!(
            joiner.check("127.0.0.11:7379").unwrap_err().code(),
            tonic::Code::PermissionDenied
        );
        // A node that knows no members yet (joining) takes any certificate of the CA.
        let joining = Identities::new(|| None);
        assert!(matches!(joining.check(vote, Some(&stranger)), Ok(None)));
        assert!(joining.check(vote, None).is_err());
    }
}
