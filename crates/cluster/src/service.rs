//! The node's gRPC server: the Raft service of every group it hosts, and the `Node`
//! service, what other nodes ask of this one (forwarded writes and reads, read indexes,
//! joins and removals, status). The handlers stay thin: decode, call the node, encode.

use std::sync::Arc;
use std::time::{Duration, Instant};

use raft::TypeConfig;
use tokio::sync::watch;
use tonic::Status;
use tracing::warn;
use types::GroupId;

use crate::node::local_ip;
use crate::status::role;
use crate::write::Retry;
use crate::Node;

/// Serves peers on `listener` until the stop signal.
pub(crate) async fn serve(
    node: Arc<Node>,
    registry: rpc::Groups<TypeConfig, raft::StateMachine>,
    listener: tokio::net::TcpListener,
    max_message: usize,
    mut stop: watch::Receiver<bool>,
) {
    let raft = rpc::RaftService::new(registry).into_server();
    let peer = rpc::NodeService::new(Handler(node.clone()))
        .with_max_message(max_message)
        .into_server();
    let shutdown = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    // The cluster secret and, in tests, the cut links are checked before any handler.
    let gate = rpc::Gate {
        secret: node.config.peer_secret.clone(),
        links: node
            .config
            .links
            .clone()
            .zip(local_ip(&node.config.advertise)),
    };
    // With peer TLS, who the caller is too: its certificate must name a member.
    let identities = match &node.config.peer_tls {
        None => rpc::tls::Identities::off(),
        Some(_) => {
            let node = Arc::downgrade(&node);
            rpc::tls::Identities::new(move || node.upgrade().and_then(|n| n.peer_hosts()))
        }
    };
    let router = tonic::transport::Server::builder()
        .layer(tonic::service::InterceptorLayer::new(move |request| {
            gate.check(request)
        }))
        .layer(identities)
        .add_service(raft)
        .add_service(peer);
    let result = match &node.config.peer_tls {
        None => {
            router
                .serve_with_incoming_shutdown(accept_peers(listener), shutdown)
                .await
        }
        Some(tls) => {
            router
                .serve_with_incoming_shutdown(
                    tls.incoming(Box::pin(accept_peers(listener))),
                    shutdown,
                )
                .await
        }
    };
    if let Err(e) = result {
        warn!(error = %e, "gRPC server stopped");
    }
}

/// The peers' connections to this node's gRPC server. An accept that fails (out of file
/// descriptors, most often) is retried after a pause that grows to a second, and logged
/// at most every 10 seconds: never fatal, never a tight loop. Every connection gets
/// TCP_NODELAY: peers' calls are small request/reply exchanges, and without it a reply
/// written while the previous one is unacknowledged waits for the ACK (tonic sets it only
/// on listeners it binds itself).
fn accept_peers(
    listener: tokio::net::TcpListener,
) -> impl futures_util::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures_util::stream::unfold(
        (listener, None::<Instant>),
        |(listener, mut reported)| async move {
            let mut pause = Duration::from_millis(10);
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        if let Err(e) = stream.set_nodelay(true) {
                            warn!(error = %e, "cannot set TCP_NODELAY on a peer connection");
                        }
                        return Some((Ok(stream), (listener, reported)));
                    }
                    Err(e) => {
                        if reported.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                            warn!(error = %e, "accepting a peer connection failed; retrying");
                            reported = Some(Instant::now());
                        }
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(Duration::from_secs(1));
                    }
                }
            }
        },
    )
}

/// The `Node` gRPC service.
struct Handler(Arc<Node>);

impl Handler {
    /// The local replica of `group` (a data group, or the meta group), if this node
    /// hosts it.
    fn group(&self, group: GroupId) -> Result<&crate::group::Group, Status> {
        let meta = (group == GroupId::META).then(|| self.0.meta());
        meta.or_else(|| self.0.group(group))
            .ok_or_else(|| Status::not_found(format!("no group {group}")))
    }
}

impl rpc::NodeHandler for Handler {
    async fn forward(&self, req: rpc::Forward) -> Result<Vec<u8>, Status> {
        let node = &self.0;
        let group = self.group(req.group_id)?;
        let Some(encoded) = req.proposal else {
            return node.serve_read(group, &req.args, req.seed).await;
        };
        kv::Proposal::decode_shared(&encoded)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        node.must_lead(group)?;
        if !group.claimed() {
            // Not serving its slots yet (see `placement`): the sender tries again.
            return Err(crate::Error::NotLeader { leader: None }.to_status());
        }
        if let Some(refused) = node.refuse_write(encoded.len()) {
            return Ok(refused.to_frame().to_wire());
        }
        // The reply travels in the lossless wire form, so the forwarding node can still
        // merge it (an EXEC's array) and encode it for its client's protocol.
        match node.propose_local(group, encoded).await {
            Ok(frame) => Ok(frame.to_wire()),
            Err(Retry::No(e)) => Ok(e.to_frame().to_wire()),
            // Not appended: the forwarding node may send it again.
            Err(Retry::Yes) => Err(crate::Error::NotLeader { leader: None }.to_status()),
        }
    }

    async fn read_index(&self, group_id: GroupId) -> Result<rpc::ReadIndex, Status> {
        let node = &self.0;
        let group = self.group(group_id)?;
        // One round serves every follower read (and local read) waiting when it starts.
        let read_index = group.rounds.wait().await.ok_or_else(|| {
            crate::Error::NotLeader {
                leader: group.leader_id(),
            }
            .to_status()
        })?;
        Ok(rpc::ReadIndex {
            read_index: read_index.max(group.read_floor()),
            leader: node.id,
            term: group.metrics().current_term,
        })
    }

    async fn join(&self, req: rpc::Join) -> Result<(), Status> {
        self.0.admit(req).await.map_err(|e| e.to_status())
    }

    async fn leave(&self, req: rpc::Leave) -> Result<(), Status> {
        let node = &self.0;
        let groups: Vec<&crate::group::Group> = match req.group {
            Some(g) => vec![node
                .replica(g)
                .ok_or_else(|| Status::not_found(format!("no group {g}")))?],
            None => node.groups().iter().collect(),
        };
        for group in groups {
            node.must_lead(group)?;
            node.remove_member(group, req.node_id)
                .await
                .map_err(|e| e.to_status())?;
        }
        Ok(())
    }

    async fn status(&self) -> Result<rpc::NodeStatus, Status> {
        let node = &self.0;
        let index = |l: &Option<raft::typ::LogId>| l.as_ref().map(|l| l.index());
        // The meta group is listed once this replica holds it (a data directory written
        // before it has none until it is created: see `meta_map::adopt`).
        let meta = node
            .meta()
            .metrics()
            .membership_config
            .membership()
            .voter_ids()
            .next()
            .is_some()
            .then(|| node.meta());
        let groups = node
            .groups()
            .iter()
            .chain(meta)
            .map(|group| {
                let m = group.metrics();
                rpc::GroupStatus {
                    group_id: group.id,
                    role: role(m.state),
                    term: m.current_term,
                    leader: m.current_leader,
                    commit: index(&m.local_committed),
                    applied: index(&m.last_applied),
                }
            })
            .collect();
        Ok(rpc::NodeStatus {
            node_id: node.id,
            groups,
        })
    }
}
