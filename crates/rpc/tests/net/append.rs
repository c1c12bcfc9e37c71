//! AppendEntries through `GrpcNetwork::append_entries` directly: a batch over the byte
//! budget is cut, only its first part is sent, and openraft is told how far it got.

use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use openraft::impls::leader_id_adv::LeaderId;
use openraft::network::RPCOption;
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse};
use openraft::type_config::alias::VoteOf;
use openraft::vote::RaftLeaderIdExt;
use openraft::{EntryPayload, LogId, RaftNetworkFactory, RaftNetworkV2};
use rpc::{GrpcNetworkFactory, PeerPool, PoolConfig};

use crate::store::{Entry, Tc};
use crate::{lo, start_node};

fn log_id(index: u64) -> LogId<LeaderId<u64, u64>> {
    LogId::new(LeaderId::<u64, u64>::new_committed(1, 9), index)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_over_the_byte_budget_is_sent_in_parts() -> anyhow::Result<()> {
    let target = start_node(2, lo(2)).await?;
    let pool = PeerPool::new(PoolConfig {
        local_address: Some(lo(9)),
        max_append_bytes: 32 << 10,
        ..PoolConfig::default()
    });
    let mut factory = GrpcNetworkFactory::<Tc, std::io::Cursor<Vec<u8>>>::new(
        pool,
        types::GroupId(crate::GROUP),
        9,
    );
    let mut network = factory.new_client(target.id, &target.node()).await;
    // Ten entries of 10 KB (indexes 0 to 9) from leader 9 at term 1: at most three fit
    // in 32 KiB.
    let entries: Vec<Entry> = (0..10)
        .map(|i| Entry {
            log_id: log_id(i),
            payload: EntryPayload::Normal(format!("k{i}={}", "v".repeat(10_000))),
        })
        .collect();
    let mut prev = None;
    let mut calls = 0;
    while prev.is_none_or(|l: LogId<_>| l.index < 9) {
        calls += 1;
        anyhow::ensure!(calls <= 10, "no progress after {calls} calls");
        let rest: Vec<Entry> = entries
            .iter()
            .filter(|e| prev.is_none_or(|p| e.log_id.index > p.index))
            .cloned()
            .collect();
        let request = AppendEntriesRequest::<Tc> {
            vote: VoteOf::<Tc>::new_committed(1, 9),
            prev_log_id: prev,
            entries: rest,
            leader_commit: None,
        };
        let option = RPCOption::new(Duration::from_secs(10));
        prev = match network.append_entries(request, option).await? {
            AppendEntriesResponse::Success => Some(log_id(9)),
            AppendEntriesResponse::PartialSuccess(Some(upto)) => {
                let sent = upto.index + 1 - prev.map_or(0, |p| p.index + 1);
                anyhow::ensure!(
                    (1..=3).contains(&sent),
                    "sent {sent} entries of 10 KB in one call"
                );
                Some(upto)
            }
            other => anyhow::bail!("unexpected reply {other:?}"),
        };
    }
    anyhow::ensure!(
        calls >= 4,
        "ten 10 KB entries in {calls} calls of at most 32 KiB"
    );
    let last = target.raft.metrics().borrow_watched().last_log_index;
    anyhow::ensure!(last == Some(9), "the target's log ends at {last:?}");
    target.stop().await;
    Ok(())
}
