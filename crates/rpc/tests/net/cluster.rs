//! A three-node cluster through the gRPC network: election, replication, snapshot install on
//! a node that joins after the log was purged, leadership transfer.

use std::collections::BTreeSet;

use openraft::async_runtime::WatchReceiver;

use crate::{lo, members, start_node, TestNode, WAIT};

fn leader_of(n: &TestNode) -> Option<u64> {
    n.raft.metrics().borrow_watched().current_leader
}

/// Writes `k{i}={value}` for `i` in `from..to`; `value` is `v{i}` repeated `size` times.
async fn write_all(leader: &TestNode, from: usize, to: usize, size: usize) -> anyhow::Result<u64> {
    let mut last = 0;
    for i in from..to {
        let r = leader
            .raft
            .client_write(format!("k{i}={}", format!("v{i}").repeat(size)))
            .await?;
        last = r.log_id.index;
    }
    Ok(last)
}

async fn wait_applied(nodes: &[&TestNode], index: u64) -> anyhow::Result<()> {
    for n in nodes {
        n.raft
            .wait(WAIT)
            .applied_index_at_least(Some(index), format!("node {} applies {index}", n.id))
            .await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elect_replicate_snapshot_transfer() -> anyhow::Result<()> {
    let n1 = start_node(1, lo(1)).await?;
    let n2 = start_node(2, lo(2)).await?;
    let n3 = start_node(3, lo(3)).await?;

    // Two voters first; the third joins after the log it would need is purged.
    n1.raft.initialize(members(&[&n1, &n2])).await?;
    let m = n1
        .raft
        .wait(WAIT)
        .metrics(|m| m.current_leader.is_some(), "a leader is elected")
        .await?;
    let leader_id = m.current_leader.unwrap_or(0);
    let nodes = [&n1, &n2, &n3];
    let leader = nodes
        .iter()
        .find(|n| n.id == leader_id)
        .copied()
        .expect("leader is n1 or n2");
    for n in [&n1, &n2] {
        n.raft
            .wait(WAIT)
            .current_leader(leader_id, "both voters know the leader")
            .await?;
    }

    leader
        .raft
        .wait(WAIT)
        .leader_with_quorum_acked(None, "leader acked")
        .await?;
    // About 3 MB of state, so the snapshot below travels in several chunks.
    let last = write_all(leader, 0, 20, 50_000).await?;
    wait_applied(&[&n1, &n2], last).await?;
    assert_eq!(n1.sm.kv(), n2.sm.kv());
    assert_eq!(n2.sm.kv().len(), 20);

    // A snapshot at `last`, and the log up to it purged.
    leader.raft.trigger().snapshot().await?;
    leader
        .raft
        .wait(WAIT)
        .metrics(
            |m| m.snapshot.is_some_and(|s| s.index >= last),
            "snapshot built",
        )
        .await?;
    leader.raft.trigger().purge_log(last).await?;
    leader
        .raft
        .wait(WAIT)
        .metrics(|m| m.purged.is_some_and(|p| p.index >= last), "log purged")
        .await?;

    // n3 can only catch up from the snapshot, streamed through InstallSnapshot.
    leader.raft.add_learner(3, n3.node(), true).await?;
    wait_applied(&[&n3], last).await?;
    assert!(
        n3.sm.installed() >= 1,
        "n3 installed a snapshot from the leader"
    );
    assert_eq!(n3.sm.kv(), n1.sm.kv());

    leader
        .raft
        .change_membership(BTreeSet::from([1, 2, 3]), false)
        .await?;

    // Hand leadership to n3.
    leader.raft.trigger().transfer_leader(3).await?;
    for n in nodes {
        n.raft
            .wait(WAIT)
            .current_leader(3, format!("node {} follows 3", n.id))
            .await?;
    }
    // A new leader takes writes once a quorum acknowledged it (its lease).
    n3.raft
        .wait(WAIT)
        .leader_with_quorum_acked(None, "n3 leads")
        .await?;
    assert_eq!(leader_of(&n3), Some(3));

    let last = write_all(&n3, 20, 25, 1).await?;
    wait_applied(&nodes, last).await?;
    for n in nodes {
        assert_eq!(n.sm.kv().len(), 25, "node {}", n.id);
    }
    assert_eq!(n1.sm.kv(), n3.sm.kv());

    for n in [n1, n2, n3] {
        n.stop().await;
    }
    Ok(())
}
