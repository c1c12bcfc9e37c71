//! Network tests on loopback: a three-node openraft cluster talking through the gRPC
//! network, bad input sent straight at a node, and the source address of outgoing calls.
//!
//! Nodes listen on distinct loopback addresses (127.0.0.1, .2, .3) on ephemeral ports and
//! bind their outgoing connections to their own address.

mod append;
mod bad_input;
mod cluster;
mod snapshot;
mod source_addr;
mod store;
mod tls;

use std::collections::BTreeMap;
use std::io::Cursor;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use openraft::{BasicNode, Config, Raft, SnapshotPolicy};
use rpc::{Groups, GrpcNetworkFactory, PeerPool, PoolConfig, RaftService};
use store::{MemLog, MemSm, Tc};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

/// The Raft group every test node hosts.
pub const GROUP: u64 = 7;

/// One in-process node serving its group over gRPC.
pub struct TestNode {
    pub id: u64,
    pub addr: SocketAddr,
    pub raft: Raft<Tc, MemSm>,
    pub sm: MemSm,
    /// The node's registry (to make it refuse votes).
    pub groups: Groups<Tc, MemSm>,
    server: tokio::task::JoinHandle<()>,
}

impl TestNode {
    /// The membership record of this node.
    pub fn node(&self) -> BasicNode {
        BasicNode {
            addr: self.addr.to_string(),
        }
    }

    pub async fn stop(self) {
        let _ = self.raft.shutdown().await;
        self.server.abort();
    }
}

/// Short timeouts so a test that goes wrong fails fast; a tiny snapshot policy.
pub fn raft_config() -> Arc<Config> {
    let c = Config {
        cluster_name: "rpc-test".into(),
        heartbeat_interval: 100,
        election_timeout_min: 500,
        election_timeout_max: 1000,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(5),
        max_in_snapshot_log_to_keep: 0,
        purge_batch_size: 1,
        ..Default::default()
    };
    Arc::new(c.validate().expect("valid config"))
}

/// Starts node `id` listening on `ip` (ephemeral port), its outgoing calls bound to `ip`.
pub async fn start_node(id: u64, ip: IpAddr) -> anyhow::Result<TestNode> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let listener = TcpListener::bind((ip, 0)).await?;
    let addr = listener.local_addr()?;
    let pool = PeerPool::new(PoolConfig {
        local_address: Some(ip),
        ..PoolConfig::default()
    });
    let sm = MemSm::default();
    let network = GrpcNetworkFactory::<Tc, Cursor<Vec<u8>>>::new(pool, types::GroupId(GROUP), id);
    let raft = Raft::new(id, raft_config(), network, MemLog::default(), sm.clone()).await?;
    let groups = Groups::<Tc, MemSm>::in_memory();
    groups.insert(types::GroupId(GROUP), raft.clone());
    let registry = groups.clone();
    let server = tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(RaftService::new(groups).into_server())
            .serve_with_incoming(TcpListenerStream::new(listener))
            .await;
    });
    Ok(TestNode {
        id,
        addr,
        raft,
        sm,
        groups: registry,
        server,
    })
}

/// `127.0.0.n`.
pub fn lo(n: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, n])
}

/// The membership map of `nodes`.
pub fn members(nodes: &[&TestNode]) -> BTreeMap<u64, BasicNode> {
    nodes.iter().map(|n| (n.id, n.node())).collect()
}

/// Generous bound for anything a cluster on loopback should manage.
pub const WAIT: Option<Duration> = Some(Duration::from_secs(15));
