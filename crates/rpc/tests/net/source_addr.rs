//! The Node service through a fake handler, seen from a `PeerPool`: outgoing calls leave
//! from the configured local address over one shared connection, every call has a deadline,
//! bad requests are refused before the handler, and a restarted peer is reconnected.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use rpc::{
    Forward, GroupStatus, Join, Leave, NodeHandler, NodeService, NodeStatus, PeerPool, PoolConfig,
    ReadIndex, Role,
};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Code, Status};

use crate::lo;

/// Remembers where calls came from.
type Seen = Arc<Mutex<Vec<SocketAddr>>>;

struct Fake;

impl NodeHandler for Fake {
    async fn forward(&self, req: Forward) -> Result<Vec<u8>, Status> {
        if req.args[0].as_ref() == b"SLOW" {
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        let mut out = format!("g{} v{} ", req.group_id, req.proto_version).into_bytes();
        for a in &req.args {
            out.extend_from_slice(a);
            out.push(b' ');
        }
        Ok(out)
    }

    async fn read_index(&self, group: types::GroupId) -> Result<ReadIndex, Status> {
        if group.0 > 100 {
            return Err(Status::not_found(format!("no group {group}")));
        }
        Ok(ReadIndex {
            read_index: 40 + group.0,
            leader: 1,
            term: 3,
        })
    }

    async fn join(&self, req: Join) -> Result<(), Status> {
        if req.node_id == 0 {
            return Err(Status::invalid_argument("node id 0"));
        }
        Ok(())
    }

    async fn leave(&self, _req: Leave) -> Result<(), Status> {
        Ok(())
    }

    async fn status(&self) -> Result<NodeStatus, Status> {
        Ok(NodeStatus {
            node_id: 1,
            groups: vec![GroupStatus {
                group_id: types::GroupId(0),
                role: Role::Leader,
                term: 3,
                leader: Some(1),
                commit: Some(9),
                applied: Some(9),
            }],
        })
    }
}

/// Serves the fake Node service on `listener`, recording each call's remote address.
fn serve(listener: TcpListener, seen: Seen) -> tokio::task::JoinHandle<()> {
    let svc = tonic::service::interceptor::InterceptedService::new(
        NodeService::new(Fake).into_server(),
        move |req: tonic::Request<()>| {
            if let Some(a) = req.remote_addr() {
                seen.lock().unwrap_or_else(|e| e.into_inner()).push(a);
            }
            Ok(req)
        },
    );
    tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(TcpListenerStream::new(listener))
            .await;
    })
}

async fn start(ip: IpAddr) -> anyhow::Result<(SocketAddr, Seen, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind((ip, 0)).await?;
    let addr = listener.local_addr()?;
    let seen = Seen::default();
    let task = serve(listener, seen.clone());
    Ok((addr, seen, task))
}

fn pool(local: IpAddr) -> PeerPool {
    PeerPool::new(PoolConfig {
        local_address: Some(local),
        node_timeout: Duration::from_millis(500),
        ..PoolConfig::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outgoing_calls_leave_from_the_local_address_on_one_connection() -> anyhow::Result<()> {
    let (addr, seen, server) = start(lo(1)).await?;

    let a = pool(lo(5));
    let b = pool(lo(6));
    let target = addr.to_string();
    a.node(&target)?.status().await?;
    a.node(&target)?.read_index(types::GroupId(3)).await?;
    let mut peer = a.node(&target)?;
    peer.leave(Leave {
        node_id: 4,
        group: None,
    })
    .await?;
    b.node(&target)?.status().await?;

    let seen = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert_eq!(seen.len(), 4, "{seen:?}");
    // Pool a: three calls, source 127.0.0.5, one connection (one source port).
    assert!(seen[..3].iter().all(|s| s.ip() == lo(5)), "{seen:?}");
    assert!(
        seen[..3].iter().all(|s| s.port() == seen[0].port()),
        "{seen:?}"
    );
    // Pool b: source 127.0.0.6.
    assert_eq!(seen[3].ip(), lo(6));
    server.abort();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_service_round_trips_and_refusals() -> anyhow::Result<()> {
    let (addr, _seen, server) = start(lo(1)).await?;
    let p = pool(lo(1));
    let mut peer = p.node(&addr.to_string())?;

    let reply = peer
        .forward(Forward {
            group_id: types::GroupId(4),
            args: vec![Bytes::from_static(b"GET"), Bytes::from_static(b"k")],
            proto_version: 3,
            seed: None,
            proposal: None,
        })
        .await?;
    assert_eq!(&reply[..], b"g4 v3 GET k ");

    assert_eq!(
        peer.read_index(types::GroupId(2)).await?,
        ReadIndex {
            read_index: 42,
            leader: 1,
            term: 3
        }
    );
    // The handler's own error reaches the caller as it was.
    let e = peer.read_index(types::GroupId(500)).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    let status = peer.status().await?;
    assert_eq!(status.groups[0].role, Role::Leader);

    peer.join(Join {
        node_id: 2,
        resp_addr: "127.0.0.2:6379".into(),
        grpc_addr: "127.0.0.2:7379".into(),
        hostname: String::new(),
        forwarded: false,
        group: Some(types::GroupId(2)),
    })
    .await?;
    // Refused by the conversion, before the handler.
    let e = peer
        .join(Join {
            node_id: 2,
            resp_addr: String::new(),
            grpc_addr: "x:1".into(),
            hostname: String::new(),
            forwarded: false,
            group: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = peer
        .forward(Forward {
            group_id: types::GroupId(4),
            args: vec![Bytes::from_static(b"GET")],
            proto_version: 9,
            seed: None,
            proposal: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);

    // A call the peer does not answer in time ends at the deadline.
    let started = std::time::Instant::now();
    let e = peer
        .forward(Forward {
            group_id: types::GroupId(4),
            args: vec![Bytes::from_static(b"SLOW")],
            proto_version: 2,
            seed: Some(1),
            proposal: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::DeadlineExceeded, "{e}");
    assert!(started.elapsed() < Duration::from_secs(3));
    // Neither a timeout nor the handler's refusal says the call was never sent.
    assert!(!rpc::never_sent(&e));
    assert!(!rpc::never_sent(&Status::not_found("no group")));

    // A port nobody listens on: the call certainly never reached a peer.
    let closed = {
        let l = std::net::TcpListener::bind((lo(1), 0))?;
        l.local_addr()?
    };
    let e = pool(lo(1))
        .node(&closed.to_string())?
        .read_index(types::GroupId(1))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    assert!(rpc::never_sent(&e), "{e:?}");

    server.abort();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_addresses_and_dead_peers_are_errors() -> anyhow::Result<()> {
    let p = pool(lo(1));
    assert!(p.node("").is_err());
    assert!(p.node("http://x/y").is_err());
    assert!(p.node("no spaces:1").is_err());

    // Nobody listens there: the call fails fast with UNAVAILABLE, no panic, no hang.
    let listener = TcpListener::bind((lo(1), 0)).await?;
    let addr = listener.local_addr()?;
    drop(listener);
    let e = p.node(&addr.to_string())?.status().await.unwrap_err();
    assert!(matches!(e.code(), Code::Unavailable | Code::Unknown), "{e}");

    // A peer that comes up there later is reached through the same channel.
    let listener = TcpListener::bind(addr).await?;
    let seen = Seen::default();
    let server = serve(listener, seen.clone());
    let mut ok = false;
    for _ in 0..50 {
        if p.node(&addr.to_string())?.status().await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "reconnected to the restarted peer");
    server.abort();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_can_be_named_by_dns() -> anyhow::Result<()> {
    // `localhost` is resolved by the connector at connect time (and again on every
    // reconnect), like a headless Service's pod names.
    let (addr, seen, server) = start(lo(1)).await?;
    let p = pool(lo(1));
    p.node(&format!("localhost:{}", addr.port()))?
        .status()
        .await?;
    assert_eq!(seen.lock().unwrap_or_else(|e| e.into_inner()).len(), 1);
    server.abort();
    Ok(())
}
