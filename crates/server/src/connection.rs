//! The connection loop: read, answer every complete request in the buffer, write once.
//!
//! Pipelining is real: all complete requests in the read buffer are handled before one
//! write, so 10,000 pipelined commands get 10,000 replies in order. A protocol error
//! gets Redis's `-ERR Protocol error: ...` reply and the connection closes; any other
//! error is a reply and the connection stays open. A request still incomplete after
//! 1 GB (Redis's `client-query-buffer-limit`) closes the connection, and so does silence
//! longer than `timeout` seconds (when set). On shutdown the loop finishes the requests it
//! has read, sends their replies and closes.
//!
//! A client of the TLS port ([`serve_tls`]) runs the same loop over its TLS stream once
//! the handshake is done: the loop is generic over the stream, so a plain client's is
//! compiled for `TcpStream` alone and pays nothing for TLS.

use std::sync::Arc;

use bytes::BytesMut;
use resp::request::{self, Check, Limits, Progress, MAX_QUERY_BUFFER};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tracing::debug;

use crate::session::{After, Session};
use crate::Shared;

const READ_CHUNK: usize = 16 * 1024;
/// Most bytes reserved ahead for one large argument.
const MAX_RESERVE: usize = 16 * 1024 * 1024;
/// Most requests handled as one batch before replies are written.
const MAX_BATCH: usize = 1024;

/// Longest a client of the TLS port may take over its handshake.
pub const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves one client of the TLS port, registered as `info`: the handshake (at most
/// [`HANDSHAKE_TIMEOUT`]), then protected mode, which a client whose certificate was
/// checked passes, then [`serve`] over the TLS stream.
pub async fn serve_tls(
    stream: TcpStream,
    acceptor: tokio_rustls::TlsAcceptor,
    shared: Arc<Shared>,
    info: Arc<crate::clients::ClientInfo>,
    shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let (id, addr) = (info.id, info.addr);
    let mut stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            debug!(client = id, %addr, cause = %e, "TLS handshake failed");
            shared.clients.unregister(id);
            return;
        }
        Err(_) => {
            debug!(client = id, %addr, "TLS handshake took too long");
            shared.clients.unregister(id);
            return;
        }
    };
    let certified = stream
        .get_ref()
        .1
        .peer_certificates()
        .is_some_and(|c| !c.is_empty());
    if let Some(denied) = shared.auth.refuses(addr.ip(), &shared.users(), certified) {
        shared
            .store
            .stats
            .rejected_connections
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::warn!(%addr, "refusing a remote client: protected mode, no requirepass and no client certificate");
        let _ = stream.write_all(denied.as_bytes()).await;
        let _ = stream.shutdown().await;
        shared.clients.unregister(id);
        return;
    }
    serve(stream, shared, info, shutdown).await
}

/// Serves one client, registered as `info` (the accept loop registers it, so the count
/// `maxclients` is checked against includes every connection accepted so far).
pub async fn serve<S>(
    mut stream: S,
    shared: Arc<Shared>,
    info: Arc<crate::clients::ClientInfo>,
    mut shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let addr = info.addr;
    let id = info.id;
    let mut session = Session::new(shared.clone(), info);
    let limits = Limits::default();
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut out = BytesMut::with_capacity(READ_CHUNK);
    let mut progress = Progress::default();
    // Redis's `timeout`: a client silent this long is disconnected.
    let idle_limit =
        (shared.config.timeout > 0).then(|| std::time::Duration::from_secs(shared.config.timeout));
    debug!(client = id, %addr, "connection opened");
    // Requests read and not handled yet (a batch stops once its replies are large: see
    // `Session::handle_batch`), and a protocol error met after them.
    let mut requests = std::collections::VecDeque::new();
    let mut broken = None;
    'conn: loop {
        let mut close = false;
        session.begin_batch();
        // Every complete request in the buffer (at most MAX_BATCH) is handled as one batch.
        while broken.is_none() && requests.len() < MAX_BATCH {
            match request::check_resuming(&buf, &limits, &mut progress) {
                Ok(Check::Complete(len)) => {
                    requests.push_back(request::parse(buf.split_to(len).freeze()))
                }
                Ok(Check::Incomplete(need)) => {
                    if buf.len() > MAX_QUERY_BUFFER {
                        // Redis's client-query-buffer-limit: the client is dropped.
                        tracing::warn!(
                            client = id,
                            bytes = buf.len(),
                            "closing client that reached max query buffer length"
                        );
                        close = true;
                    } else if let Some(need) = need {
                        let more = need.saturating_sub(buf.len()).min(MAX_RESERVE);
                        buf.reserve(more);
                    }
                    break;
                }
                Err(e) => {
                    broken = Some(e);
                    break;
                }
            }
        }
        let full = requests.len() == MAX_BATCH;
        for (reply, after) in session.handle_batch(&mut requests).await {
            if let Some(reply) = reply {
                reply.encode(session.proto, &mut out);
            }
            if after == After::Close {
                close = true;
                broken = None;
                requests.clear();
                break;
            }
        }
        // More to answer before reading again: requests left for the next batch, or a
        // full batch (the buffer may hold more).
        let more_ready = full || !requests.is_empty();
        if requests.is_empty() {
            if let Some(e) = broken.take() {
                debug!(client = id, error = %e, "protocol error");
                resp::Frame::Error(e.reply_text()).encode(session.proto, &mut out);
                close = true;
            }
        }
        if !out.is_empty() {
            if stream.write_all(&out).await.is_err() {
                break 'conn;
            }
            out.clear();
        }
        if close {
            break;
        }
        // Requests already read are answered even when shutting down.
        if more_ready {
            continue;
        }
        if *shutdown.borrow() {
            break;
        }
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(READ_CHUNK);
        }
        let idle = async {
            match idle_limit {
                Some(limit) => tokio::time::sleep(limit).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = idle => {
                debug!(client = id, "closing a client idle for longer than timeout");
                break 'conn;
            }
            read = stream.read_buf(&mut buf) => {
                match read {
                    Ok(0) | Err(_) => break 'conn,
                    Ok(_) => {}
                }
            }
            changed = shutdown.changed() => {
                if changed.is_err() {
                    break 'conn;
                }
            }
        }
    }
    let _ = stream.shutdown().await;
    shared.clients.unregister(id);
    debug!(client = id, "connection closed");
}
