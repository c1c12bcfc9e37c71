//! What a node answers to bytes it cannot use: statuses, never a panic; and requests from a
//! stale term get Raft's rejection, not an error or a state change.

use std::collections::BTreeMap;

use bytes::Bytes;
use openraft::async_runtime::WatchReceiver;
use openraft::impls::leader_id_adv::LeaderId;
use openraft::raft::{AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse};
use openraft::vote::RaftLeaderIdExt;
use openraft::{EntryPayload, LogId};
use rpc::message::{Envelope, Reply, SnapshotHeader, VoteCall};
use rpc::pb::raft as rpb;
use rpc::pb::raft::raft_client::RaftClient;
use tonic::transport::Channel;
use tonic::Code;

use crate::store::{Entry, Tc};
use crate::{lo, start_node, TestNode, GROUP, WAIT};

type Vote = openraft::type_config::alias::VoteOf<Tc>;

fn vote(term: u64, node: u64) -> Vote {
    Vote::new(term, node)
}

fn log_id(term: u64, node: u64, index: u64) -> LogId<LeaderId<u64, u64>> {
    LogId::new(LeaderId::<u64, u64>::new_committed(term, node), index)
}

/// A single-node cluster (node 1 leads at term >= 1) and a raw client to it.
async fn single() -> anyhow::Result<(TestNode, RaftClient<Channel>)> {
    let n = start_node(1, lo(1)).await?;
    n.raft.initialize(BTreeMap::from([(1, n.node())])).await?;
    n.raft
        .wait(WAIT)
        .leader_with_quorum_acked(None, "n1 leads")
        .await?;
    let client = RaftClient::connect(format!("http://{}", n.addr)).await?;
    Ok((n, client))
}

fn append(group_id: u64, target: u64, payload: Bytes) -> rpb::AppendEntriesRequest {
    rpb::AppendEntriesRequest {
        group_id,
        target,
        term: 0,
        entries: 0,
        payload,
    }
}

fn valid_append(term: u64) -> Bytes {
    let req = openraft::raft::AppendEntriesRequest::<Tc> {
        vote: vote(term, 9),
        prev_log_id: None,
        entries: vec![],
        leader_commit: None,
    };
    rpb::AppendEntriesRequest::try_from(Envelope {
        group_id: types::GroupId(GROUP),
        target: 1,
        body: req,
    })
    .expect("encodes")
    .payload
}

fn assert_alive(n: &TestNode) {
    let m = n.raft.metrics().borrow_watched().clone();
    assert!(
        m.running_state.is_ok(),
        "raft still runs: {:?}",
        m.running_state
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_unknown_group_and_wrong_target_are_statuses() -> anyhow::Result<()> {
    let (n, mut c) = single().await?;

    let e = c
        .append_entries(append(GROUP, 1, Bytes::from_static(b"\xff\xfe garbage")))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");

    let e = c
        .vote(rpb::VoteRequest {
            group_id: GROUP,
            target: 1,
            term: 0,
            pre_vote: false,
            payload: Bytes::from_static(b"\x01"),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");

    let e = c
        .transfer_leader(rpb::TransferLeaderRequest {
            group_id: GROUP,
            target: 1,
            term: 0,
            payload: Bytes::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");

    // A valid payload for a group this node does not host.
    let e = c
        .append_entries(append(GROUP + 1, 1, valid_append(0)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e}");
    assert!(e.message().contains("no raft group 8"), "{e}");

    // A valid payload meant for another node (an address that now belongs to someone else).
    let e = c
        .append_entries(append(GROUP, 2, valid_append(0)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e}");

    // Entries that do not follow prev_log_id: refused before openraft sees them.
    let bad = openraft::raft::AppendEntriesRequest::<Tc> {
        vote: vote(5, 9),
        prev_log_id: Some(log_id(1, 1, 3)),
        entries: vec![Entry {
            log_id: log_id(5, 9, 7),
            payload: EntryPayload::Normal("k=v".into()),
        }],
        leader_commit: None,
    };
    let msg = rpb::AppendEntriesRequest::try_from(Envelope {
        group_id: types::GroupId(GROUP),
        target: 1,
        body: bad,
    })?;
    let e = c.append_entries(msg).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");

    assert_alive(&n);
    n.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_bytes_never_panic() -> anyhow::Result<()> {
    let (n, mut c) = single().await?;
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for round in 0..300u64 {
        let len = (next() % 96) as usize;
        let bytes: Bytes = (0..len).map(|_| next() as u8).collect::<Vec<u8>>().into();
        let r = match round % 3 {
            0 => c.append_entries(append(GROUP, 1, bytes)).await.map(drop),
            1 => c
                .vote(rpb::VoteRequest {
                    group_id: GROUP,
                    target: 1,
                    term: next(),
                    pre_vote: round % 2 == 0,
                    payload: bytes,
                })
                .await
                .map(drop),
            _ => c
                .transfer_leader(rpb::TransferLeaderRequest {
                    group_id: GROUP,
                    target: 1,
                    term: next(),
                    payload: bytes,
                })
                .await
                .map(drop),
        };
        if let Err(e) = r {
            assert!(
                matches!(
                    e.code(),
                    Code::InvalidArgument | Code::NotFound | Code::FailedPrecondition
                ),
                "round {round}: {e}"
            );
        }
    }
    assert_alive(&n);
    // Still serving real requests.
    c.append_entries(append(GROUP, 1, valid_append(0))).await?;
    n.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_term_requests_are_rejected_by_raft() -> anyhow::Result<()> {
    let (n, mut c) = single().await?;
    let current = n.raft.metrics().borrow_watched().vote;
    assert!(current.leader_id().term >= 1);

    // AppendEntries from a term-0 "leader": HigherVote, and node 1 keeps leading.
    let r = c.append_entries(append(GROUP, 1, valid_append(0))).await?;
    let Reply(resp) = Reply::<AppendEntriesResponse<Tc>>::try_from(r.into_inner())?;
    assert!(
        matches!(resp, AppendEntriesResponse::HigherVote(_)),
        "{resp:?}"
    );

    // A term-0 vote request: not granted.
    let msg = rpb::VoteRequest::try_from(Envelope {
        group_id: types::GroupId(GROUP),
        target: 1,
        body: VoteCall::<Tc> {
            pre_vote: false,
            req: VoteRequest::new(vote(0, 9), None),
        },
    })?;
    let r = c.vote(msg).await?;
    let Reply(resp) = Reply::<VoteResponse<Tc>>::try_from(r.into_inner())?;
    assert!(!resp.vote_granted);

    // A snapshot from a term-0 sender: answered with the node's own (higher) vote, not installed.
    let header = rpb::SnapshotChunk::try_from(Envelope {
        group_id: types::GroupId(GROUP),
        target: 1,
        body: SnapshotHeader::<Tc> {
            vote: Vote::new_committed(0, 9),
            meta: openraft::SnapshotMeta {
                last_log_id: Some(log_id(0, 9, 100)),
                last_membership: Default::default(),
            },
        },
    })?;
    let data = rpb::SnapshotChunk {
        group_id: GROUP,
        target: 1,
        header: Bytes::new(),
        data: Bytes::from_static(b"not a snapshot"),
        last: true,
    };
    let r = c
        .install_snapshot(tokio_stream::iter(vec![header, data]))
        .await?;
    let Reply(resp) = Reply::<SnapshotResponse<Tc>>::try_from(r.into_inner())?;
    assert!(resp.vote.leader_id().term >= 1, "{resp:?}");
    assert_eq!(n.sm.installed(), 0);

    assert_eq!(n.raft.metrics().borrow_watched().current_leader, Some(1));
    assert_alive(&n);
    n.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_snapshot_streams_are_refused() -> anyhow::Result<()> {
    let (n, mut c) = single().await?;
    let chunk = |header: Bytes, data: Bytes| rpb::SnapshotChunk {
        group_id: GROUP,
        target: 1,
        header,
        data,
        last: false,
    };
    let good_header = |v: Vote, last: LogId<LeaderId<u64, u64>>| {
        rpb::SnapshotChunk::try_from(Envelope {
            group_id: types::GroupId(GROUP),
            target: 1,
            body: SnapshotHeader::<Tc> {
                vote: v,
                meta: openraft::SnapshotMeta {
                    last_log_id: Some(last),
                    last_membership: Default::default(),
                },
            },
        })
    };

    // No chunks at all.
    let e = c
        .install_snapshot(tokio_stream::iter(Vec::new()))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");
    // First chunk without a header.
    let e = c
        .install_snapshot(tokio_stream::iter(vec![chunk(
            Bytes::new(),
            Bytes::from_static(b"x"),
        )]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");
    // A header that does not decode.
    let e = c
        .install_snapshot(tokio_stream::iter(vec![chunk(
            Bytes::from_static(b"\x07junk"),
            Bytes::new(),
        )]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");
    // A chunk over 1 MiB.
    let big = Bytes::from(vec![0u8; rpc::MAX_CHUNK + 1]);
    let e = c
        .install_snapshot(tokio_stream::iter(vec![
            good_header(vote(9, 9), log_id(9, 9, 50))?,
            chunk(Bytes::new(), big),
        ]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");
    // A header repeated in a later chunk.
    let h = good_header(vote(9, 9), log_id(9, 9, 50))?;
    let e = c
        .install_snapshot(tokio_stream::iter(vec![h.clone(), h]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");
    // A snapshot beyond its sender's vote (openraft would panic on it).
    let e = c
        .install_snapshot(tokio_stream::iter(vec![good_header(
            vote(9, 9),
            log_id(12, 9, 50),
        )?]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");
    // Chunks that change group mid-stream.
    let mut other = chunk(Bytes::new(), Bytes::from_static(b"x"));
    other.group_id = GROUP + 1;
    let e = c
        .install_snapshot(tokio_stream::iter(vec![
            good_header(vote(9, 9), log_id(9, 9, 50))?,
            other,
        ]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");

    // A stream that ends without its last chunk is truncated, however cleanly it ended.
    let e = c
        .install_snapshot(tokio_stream::iter(vec![
            good_header(vote(9, 9), log_id(9, 9, 50))?,
            chunk(Bytes::new(), Bytes::from_static(b"{}")),
        ]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");
    assert!(e.message().contains("truncated"), "{e}");
    // Nothing may follow the last chunk.
    let mut last = chunk(Bytes::new(), Bytes::from_static(b"{}"));
    last.last = true;
    let e = c
        .install_snapshot(tokio_stream::iter(vec![
            good_header(vote(9, 9), log_id(9, 9, 50))?,
            last,
            chunk(Bytes::new(), Bytes::from_static(b"x")),
        ]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");

    assert_eq!(n.sm.installed(), 0);
    assert_alive(&n);
    n.stop().await;
    Ok(())
}

/// Every request with a term, an index or a size no correct peer can send: refused at the
/// boundary with `INVALID_ARGUMENT`, and the node keeps leading (openraft itself panics on a
/// vote whose term cannot be incremented, and would save it first).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extreme_terms_indexes_and_sizes_are_refused() -> anyhow::Result<()> {
    let (n, mut c) = single().await?;
    let terms = [u64::MAX, u64::MAX - 1, rpc::MAX_TERM + 1];
    let indexes = [u64::MAX, u64::MAX - 1, rpc::MAX_INDEX + 1];

    for (i, &term) in terms.iter().enumerate() {
        for pre_vote in [false, true] {
            let msg = rpb::VoteRequest::try_from(Envelope {
                group_id: types::GroupId(GROUP),
                target: 1,
                body: VoteCall::<Tc> {
                    pre_vote,
                    req: VoteRequest::new(vote(term, 9), None),
                },
            })?;
            let e = c.vote(msg).await.unwrap_err();
            assert_eq!(e.code(), Code::InvalidArgument, "vote term {term}: {e}");
            assert!(e.message().contains("term"), "{e}");
        }
        // A vote whose last log id names an absurd index.
        let msg = rpb::VoteRequest::try_from(Envelope {
            group_id: types::GroupId(GROUP),
            target: 1,
            body: VoteCall::<Tc> {
                pre_vote: false,
                req: VoteRequest::new(vote(2, 9), Some(log_id(1, 9, indexes[i]))),
            },
        })?;
        let e = c.vote(msg).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "vote index: {e}");

        // AppendEntries: the term, then prev_log_id, then leader_commit.
        let appends = [
            openraft::raft::AppendEntriesRequest::<Tc> {
                vote: Vote::new_committed(term, 9),
                prev_log_id: None,
                entries: vec![],
                leader_commit: None,
            },
            openraft::raft::AppendEntriesRequest::<Tc> {
                vote: Vote::new_committed(3, 9),
                prev_log_id: Some(log_id(3, 9, indexes[i])),
                entries: vec![],
                leader_commit: None,
            },
            openraft::raft::AppendEntriesRequest::<Tc> {
                vote: Vote::new_committed(3, 9),
                prev_log_id: None,
                entries: vec![],
                leader_commit: Some(log_id(3, 9, indexes[i])),
            },
        ];
        for (k, body) in appends.into_iter().enumerate() {
            let msg = rpb::AppendEntriesRequest::try_from(Envelope {
                group_id: types::GroupId(GROUP),
                target: 1,
                body,
            })?;
            let e = c.append_entries(msg).await.unwrap_err();
            assert_eq!(e.code(), Code::InvalidArgument, "append {k}, {term}: {e}");
        }

        // TransferLeader from a leader with an absurd term.
        let msg = rpb::TransferLeaderRequest::try_from(Envelope {
            group_id: types::GroupId(GROUP),
            target: 1,
            body: openraft::raft::TransferLeaderRequest::<Tc>::new(
                Vote::new_committed(term, 9),
                1,
                None,
            ),
        })?;
        let e = c.transfer_leader(msg).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "transfer {term}: {e}");

        // A snapshot from such a leader, or covering such an index.
        for (v, last) in [
            (Vote::new_committed(term, 9), log_id(1, 9, 5)),
            (Vote::new_committed(3, 9), log_id(3, 9, indexes[i])),
        ] {
            let header = rpb::SnapshotChunk::try_from(Envelope {
                group_id: types::GroupId(GROUP),
                target: 1,
                body: SnapshotHeader::<Tc> {
                    vote: v,
                    meta: openraft::SnapshotMeta {
                        last_log_id: Some(last),
                        last_membership: Default::default(),
                    },
                },
            })?;
            let e = c
                .install_snapshot(tokio_stream::iter(vec![header]))
                .await
                .unwrap_err();
            assert_eq!(e.code(), Code::InvalidArgument, "snapshot: {e}");
        }
    }

    // A message claiming far more bytes than any node sends: refused by the transport before
    // anything is allocated for it.
    let huge = rpb::AppendEntriesRequest {
        group_id: GROUP,
        target: 1,
        term: 0,
        entries: 0,
        payload: Bytes::from(vec![0u8; rpc::server::MAX_MESSAGE + 1]),
    };
    let e = c
        .clone()
        .max_encoding_message_size(usize::MAX)
        .append_entries(huge)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e.code(),
            Code::ResourceExhausted | Code::OutOfRange | Code::Internal
        ),
        "{e}"
    );

    // Node 1 still leads, in a sane term, and still takes a real request.
    assert_alive(&n);
    let m = n.raft.metrics().borrow_watched().clone();
    assert_eq!(m.current_leader, Some(1));
    assert!(m.vote.leader_id().term < 100, "{:?}", m.vote);
    c.append_entries(append(GROUP, 1, valid_append(0))).await?;
    n.stop().await;
    Ok(())
}

/// A replica the registry marks as refusing votes (its log is catching up, or cannot write)
/// answers vote, pre-vote and leadership-transfer requests with `UNAVAILABLE`, which a
/// candidate counts as no vote; openraft never sees them, so nothing is saved. Cleared, it
/// votes again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_refusing_votes_grants_none() -> anyhow::Result<()> {
    let (n, mut c) = single().await?;
    let term = n.raft.metrics().borrow_watched().vote.leader_id().term;
    let vote_for = |pre_vote: bool| {
        rpb::VoteRequest::try_from(Envelope {
            group_id: types::GroupId(GROUP),
            target: 1,
            body: VoteCall::<Tc> {
                pre_vote,
                req: VoteRequest::new(vote(term + 5, 9), Some(log_id(term + 4, 9, 1_000))),
            },
        })
    };
    n.groups.set_vote_refusal(
        types::GroupId(GROUP),
        Some("catching up after damage".into()),
    );
    for pre_vote in [false, true] {
        let e = c.vote(vote_for(pre_vote)?).await.unwrap_err();
        assert_eq!(e.code(), Code::Unavailable, "{e}");
        assert!(e.message().contains("catching up after damage"), "{e}");
    }
    let transfer = rpb::TransferLeaderRequest::try_from(Envelope {
        group_id: types::GroupId(GROUP),
        target: 1,
        body: openraft::raft::TransferLeaderRequest::<Tc>::new(
            Vote::new_committed(term + 5, 9),
            1,
            None,
        ),
    })?;
    let e = c.transfer_leader(transfer).await.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e}");
    assert_eq!(
        n.raft.metrics().borrow_watched().vote.leader_id().term,
        term,
        "nothing reached openraft"
    );

    // Cleared: the same request reaches openraft again, which answers it (not granted
    // here: node 1 leads and its lease holds).
    n.groups.set_vote_refusal(types::GroupId(GROUP), None);
    let r = c.vote(vote_for(false)?).await?;
    let Reply(resp) = Reply::<VoteResponse<Tc>>::try_from(r.into_inner())?;
    assert_eq!(resp.vote.leader_id().term, term, "{resp:?}");
    n.stop().await;
    Ok(())
}
