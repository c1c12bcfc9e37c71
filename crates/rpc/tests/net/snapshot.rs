//! Snapshot transfer through `GrpcNetwork::full_snapshot` directly: a file-backed snapshot of
//! several chunks is reassembled and installed; a cancelled or failing transfer installs
//! nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use openraft::error::{ReplicationClosed, StreamingError};
use openraft::impls::leader_id_adv::LeaderId;
use openraft::network::RPCOption;
use openraft::vote::RaftLeaderIdExt;
use openraft::{
    BasicNode, LogId, Membership, RaftNetworkFactory, RaftNetworkV2, SnapshotMeta, StoredMembership,
};
use rpc::{GrpcNetworkFactory, PeerPool, PoolConfig};

use crate::store::Tc;
use crate::{lo, start_node, TestNode, GROUP, WAIT};

type Vote = openraft::type_config::alias::VoteOf<Tc>;

/// A snapshot from leader 9 at term 5, index 100, with members {9, 1}.
fn meta(n: &TestNode) -> SnapshotMeta<LeaderId<u64, u64>, u64, BasicNode> {
    let last = LogId::new(LeaderId::<u64, u64>::new_committed(5, 9), 100);
    let nodes = BTreeMap::from([
        (
            9,
            BasicNode {
                addr: "127.0.0.9:1".into(),
            },
        ),
        (1, n.node()),
    ]);
    SnapshotMeta {
        last_log_id: Some(last),
        last_membership: StoredMembership::new(
            Some(last),
            Membership::new(vec![BTreeSet::from([9, 1])], nodes).expect("valid membership"),
        ),
    }
}

/// A big key-value map (about 3.5 MB of JSON: four chunks).
fn big_state() -> BTreeMap<String, String> {
    (0..35)
        .map(|i| {
            (
                format!("key{i}"),
                format!("{i}").repeat(100_000 / format!("{i}").len()),
            )
        })
        .collect()
}

fn option() -> RPCOption {
    RPCOption::new(Duration::from_secs(30))
}

async fn network<SD: Read + Send + 'static>(to: &TestNode) -> rpc::GrpcNetwork<Tc, SD> {
    let pool = PeerPool::new(PoolConfig {
        local_address: Some(lo(9)),
        ..PoolConfig::default()
    });
    let mut factory = GrpcNetworkFactory::<Tc, SD>::new(pool, types::GroupId(GROUP), 9);
    factory.new_client(to.id, &to.node()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_snapshot_in_chunks_is_installed() -> anyhow::Result<()> {
    let n = start_node(1, lo(1)).await?;
    let state = big_state();
    let path = std::env::temp_dir().join(format!("rpc-snapshot-{}.json", std::process::id()));
    std::fs::File::create(&path)?.write_all(&serde_json::to_vec(&state)?)?;
    assert!(std::fs::metadata(&path)?.len() > 3 * rpc::MAX_CHUNK as u64);

    let mut net = network::<std::fs::File>(&n).await;
    let snapshot = openraft::Snapshot {
        meta: meta(&n),
        snapshot: std::fs::File::open(&path)?,
    };
    let resp = net
        .full_snapshot(
            Vote::new_committed(5, 9),
            snapshot,
            std::future::pending(),
            option(),
        )
        .await?;
    let _ = std::fs::remove_file(&path);
    assert_eq!(resp.vote, Vote::new_committed(5, 9));

    n.raft
        .wait(WAIT)
        .applied_index_at_least(Some(100), "snapshot applied")
        .await?;
    assert_eq!(n.sm.installed(), 1);
    assert_eq!(n.sm.kv(), state);
    n.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_transfer_installs_nothing() -> anyhow::Result<()> {
    let n = start_node(1, lo(1)).await?;
    let mut net = network::<io::Cursor<Vec<u8>>>(&n).await;
    let snapshot = openraft::Snapshot {
        meta: meta(&n),
        snapshot: io::Cursor::new(serde_json::to_vec(&big_state())?),
    };
    let r = net
        .full_snapshot(
            Vote::new_committed(5, 9),
            snapshot,
            std::future::ready(ReplicationClosed::new("test cancels")),
            option(),
        )
        .await;
    assert!(matches!(r, Err(StreamingError::Closed(_))), "{r:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(n.sm.installed(), 0);
    // Had the server been handed the partial data, installing it (not JSON) would have
    // stopped its Raft with a storage error.
    let m = n.raft.metrics().borrow_watched().clone();
    assert!(m.running_state.is_ok(), "{:?}", m.running_state);
    assert_eq!(m.snapshot, None);
    n.stop().await;
    Ok(())
}

/// Yields `ok` good bytes, then fails.
struct Failing {
    ok: usize,
}

impl Read for Failing {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.ok == 0 {
            return Err(io::Error::other("disk on fire"));
        }
        let k = buf.len().min(self.ok);
        buf[..k].fill(b' ');
        self.ok -= k;
        Ok(k)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_error_mid_transfer_installs_nothing() -> anyhow::Result<()> {
    let n = start_node(1, lo(1)).await?;
    let mut net = network::<Failing>(&n).await;
    let snapshot = openraft::Snapshot {
        meta: meta(&n),
        snapshot: Failing {
            ok: 2 * rpc::MAX_CHUNK + 10,
        },
    };
    let r = net
        .full_snapshot(
            Vote::new_committed(5, 9),
            snapshot,
            std::future::pending(),
            option(),
        )
        .await;
    assert!(matches!(r, Err(StreamingError::Network(_))), "{r:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(n.sm.installed(), 0);
    // Had the server been handed the partial data, installing it (not JSON) would have
    // stopped its Raft with a storage error.
    let m = n.raft.metrics().borrow_watched().clone();
    assert!(m.running_state.is_ok(), "{:?}", m.running_state);
    assert_eq!(m.snapshot, None);
    n.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_snapshot_is_refused() -> anyhow::Result<()> {
    let n = start_node(1, lo(1)).await?;
    // A second server for the same group with a 1 MiB snapshot limit.
    let listener = tokio::net::TcpListener::bind((lo(1), 0)).await?;
    let addr = listener.local_addr()?;
    let groups = rpc::Groups::<Tc, crate::store::MemSm>::in_memory();
    groups.insert(types::GroupId(GROUP), n.raft.clone());
    let server = tokio::spawn(async move {
        let svc = rpc::RaftService::new(groups).with_max_snapshot(rpc::MAX_CHUNK as u64);
        let _ = tonic::transport::Server::builder()
            .add_service(svc.into_server())
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await;
    });
    let pool = PeerPool::new(PoolConfig::default());
    let mut factory =
        GrpcNetworkFactory::<Tc, io::Cursor<Vec<u8>>>::new(pool, types::GroupId(GROUP), 9);
    let mut net = factory
        .new_client(
            1,
            &BasicNode {
                addr: addr.to_string(),
            },
        )
        .await;
    let snapshot = openraft::Snapshot {
        meta: meta(&n),
        snapshot: io::Cursor::new(serde_json::to_vec(&big_state())?),
    };
    let r = net
        .full_snapshot(
            Vote::new_committed(5, 9),
            snapshot,
            std::future::pending(),
            option(),
        )
        .await;
    assert!(matches!(r, Err(StreamingError::Unreachable(_))), "{r:?}");
    assert!(format!("{r:?}").contains("larger than"), "{r:?}");
    assert_eq!(n.sm.installed(), 0);
    server.abort();
    n.stop().await;
    Ok(())
}
