//! Mutual TLS between nodes, in process: a `PeerPool` with `PoolConfig::tls` against a
//! Node service served through `PeerTls::incoming` and the `Identities` layer. The dialer
//! checks the server's certificate against the host it dials; the server takes a caller
//! whose certificate names a member, and refuses one that names no member.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use rpc::tls::Identities;
use rpc::{
    Forward, Join, Leave, NodeHandler, NodeService, NodeStatus, PeerPool, PeerTls, PoolConfig,
    ReadIndex,
};
use tls::testing::Ca;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Code, Status};

use crate::lo;

/// Answers `Status` only.
struct Fake;

impl NodeHandler for Fake {
    async fn forward(&self, _: Forward) -> Result<Vec<u8>, Status> {
        Err(Status::unimplemented("forward"))
    }
    async fn read_index(&self, _: types::GroupId) -> Result<ReadIndex, Status> {
        Err(Status::unimplemented("read index"))
    }
    async fn join(&self, _: Join) -> Result<(), Status> {
        Ok(())
    }
    async fn leave(&self, _: Leave) -> Result<(), Status> {
        Err(Status::unimplemented("leave"))
    }
    async fn status(&self) -> Result<NodeStatus, Status> {
        Ok(NodeStatus {
            node_id: 1,
            groups: Vec::new(),
        })
    }
}

/// Peer TLS of a certificate of `ca` for `names`, written to `dir` as `<stem>.*`.
fn peer_tls(dir: &Path, ca: &Ca, stem: &str, names: &[&str]) -> PeerTls {
    let w = ca.issue(names).write(dir, stem);
    PeerTls::load(tls::Files {
        cert: w.cert,
        key: w.key,
        ca: Some(dir.join("ca.crt")),
    })
    .expect("peer TLS")
}

/// Serves the fake Node service over peer TLS on `ip`, taking callers whose certificate
/// names one of `members`.
async fn serve(ip: IpAddr, tls: PeerTls, members: Vec<String>) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind((ip, 0)).await?;
    let addr = listener.local_addr()?;
    let tcp = TcpListenerStream::new(listener);
    tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .layer(Identities::new(move || Some(members.clone())))
            .add_service(NodeService::new(Fake).into_server())
            .serve_with_incoming(tls.incoming(tcp))
            .await;
    });
    Ok(addr)
}

fn pool(local: IpAddr, tls: PeerTls) -> PeerPool {
    PeerPool::new(PoolConfig {
        local_address: Some(local),
        node_timeout: Duration::from_secs(2),
        tls: Some(tls),
        ..PoolConfig::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_check_each_other_by_name() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let ca = Ca::new("peers CA");
    ca.write(&dir.path().join("ca.crt"));
    let members = vec![lo(1).to_string(), lo(5).to_string()];

    // A server whose certificate names the host dialed, a caller naming a member: served.
    let server = serve(
        lo(1),
        peer_tls(dir.path(), &ca, "s1", &[&lo(1).to_string()]),
        members.clone(),
    )
    .await?;
    let member = pool(
        lo(5),
        peer_tls(dir.path(), &ca, "c5", &[&lo(5).to_string()]),
    );
    let status = member.node(&server.to_string())?.status().await?;
    assert_eq!(status.node_id, 1);

    // A peer that is down: the call was never sent, as over plain TCP (a closed port,
    // found free a moment ago).
    let closed = std::net::TcpListener::bind((lo(1), 0))?.local_addr()?;
    let down = member
        .node(&closed.to_string())?
        .status()
        .await
        .unwrap_err();
    assert!(rpc::never_sent(&down), "{down:?}");

    // A caller whose certificate names no member: refused, but for a Join with its own
    // address.
    let stranger = pool(
        lo(7),
        peer_tls(dir.path(), &ca, "c7", &[&lo(7).to_string()]),
    );
    let refused = stranger
        .node(&server.to_string())?
        .status()
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused}");
    let join = |grpc_addr: String| Join {
        node_id: 7,
        resp_addr: format!("{}:6379", lo(7)),
        grpc_addr,
        hostname: String::new(),
        forwarded: false,
        group: None,
    };
    stranger
        .node(&server.to_string())?
        .join(join(format!("{}:7379", lo(7))))
        .await?;
    let refused = stranger
        .node(&server.to_string())?
        .join(join(format!("{}:7379", lo(1))))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused}");

    // A server whose certificate names another host than the one dialed: the caller
    // refuses it.
    let impostor = serve(
        lo(1),
        peer_tls(dir.path(), &ca, "s2", &[&lo(2).to_string()]),
        members,
    )
    .await?;
    let refused = member
        .node(&impostor.to_string())?
        .status()
        .await
        .unwrap_err();
    assert_ne!(refused.code(), Code::Ok);
    let mut cause = std::error::Error::source(&refused);
    let mut text = String::new();
    while let Some(e) = cause {
        text.push_str(&format!("{e} / "));
        cause = e.source();
    }
    assert!(text.contains("certificate"), "{refused}: {text}");
    Ok(())
}
