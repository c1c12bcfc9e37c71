//! Cluster stories: real `redraft` processes on loopback (see [`crate::nodes`]), killed,
//! paused, restarted, added and removed while writers record what was acknowledged (see
//! [`crate::history`]). Each story is one test whose phases open with a line saying what
//! the phase shows.
//!
//! What every story ends on: each acknowledged write is read back from every live node
//! (reads are linearizable by default, so no waiting for replication), and the nodes'
//! `DEBUG DIGEST`s converge.
//!
//! The stories: writes and reads on every node; kill -9 of the leader, of every node at
//! once, of the leader three times over; a lagging node that can only catch up from a
//! snapshot; a follower cut off (its peers SIGSTOPped) that refuses reads; a deposed leader
//! (SIGSTOPped, replaced, resumed) that serves no stale read, linearizable or lease; writes
//! pending on a deposed leader applied once; a node joining and another leaving, the
//! leader itself leaving, a forgotten node left running; a rolling restart with SIGTERM; expired keys reclaimed on every
//! replica; and a single-register check that no read misses an acknowledged write across a
//! failover. A failing story keeps its cluster's files and prints each node's last log
//! lines; `REDRAFT_KEEP_CLUSTER=1` keeps them for a passing one too.

use std::time::{Duration, Instant};

use redis::Value;

use crate::harness::{error_text, show_value};
use crate::history::{read_state, History, Workload};
use crate::nodes::{poll, Cluster, Options, RaftInfo, CALL_TIMEOUT};

/// How long an election may take (a debug build on two shared cores).
pub(crate) const ELECTION: Duration = Duration::from_secs(30);
/// How long replicas may take to converge after the writes stop.
const CONVERGE: Duration = Duration::from_secs(30);
/// How long a phase may take to see a given number of writes acknowledged.
pub(crate) const PROGRESS: Duration = Duration::from_secs(30);

pub(crate) fn info(cluster: &Cluster, id: u64) -> RaftInfo {
    cluster
        .raft_info(id)
        .unwrap_or_else(|e| panic!("INFO replication on node {id}: {e}"))
}

fn get(cluster: &Cluster, id: u64, key: &str) -> Value {
    cluster.call(id, &["GET", key])
}

fn bulk(s: &str) -> Value {
    Value::BulkString(s.as_bytes().to_vec())
}

/// Reads every key of `history` from each node in `ids` and fails on any acknowledged write
/// that is missing. A node may refuse reads for a moment after an election, so a failed read
/// is retried until [`PROGRESS`] has passed; a wrong value fails at once.
pub(crate) fn assert_no_acknowledged_write_lost(cluster: &Cluster, history: &History, ids: &[u64]) {
    assert!(
        history.acked() > 0,
        "nothing was acknowledged: {}",
        history.summary()
    );
    let keys = history.keys();
    for &id in ids {
        let mut last = String::new();
        let state = poll(PROGRESS, || {
            let read = cluster
                .conn_with_timeout(id, CALL_TIMEOUT)
                .and_then(|mut c| read_state(&mut c, &keys));
            read.map_err(|e| last = e).ok()
        })
        .unwrap_or_else(|| panic!("node {id} did not serve reads within {PROGRESS:?}: {last}"));
        let bad = history.check(&state);
        assert!(
            bad.is_empty(),
            "node {id}: {} problems with the writers' history ({}):\n{}",
            bad.len(),
            history.summary(),
            bad.iter().take(20).cloned().collect::<Vec<_>>().join("\n")
        );
    }
    eprintln!("checked on nodes {ids:?}: {}", history.summary());
}

#[test]
fn writes_on_every_node_are_read_on_every_node() {
    let cluster = Cluster::start("every-node", 3, Options::default());
    let ids = cluster.ids();

    // One leader and two followers agree on the leader and the term.
    let leader = cluster.wait_leader(&ids, ELECTION);
    let infos: Vec<RaftInfo> = ids.iter().map(|&id| info(&cluster, id)).collect();
    for (id, i) in ids.iter().zip(&infos) {
        let want = if *id == leader { "leader" } else { "follower" };
        assert_eq!(i.role, want, "node {id}: {i:?}");
        assert_eq!(
            i.term, infos[0].term,
            "node {id} is in another term: {infos:?}"
        );
    }

    // A write sent to any node, leader or follower, is acknowledged, and the nodes' INCRs
    // count up in the order they were sent.
    for &id in &ids {
        let (key, value) = (format!("from:{id}"), format!("written on node {id}"));
        assert_eq!(cluster.call(id, &["SET", &key, &value]), Value::Okay);
    }
    for (n, &id) in ids.iter().enumerate() {
        assert_eq!(
            cluster.call(id, &["INCR", "counter"]),
            Value::Int(n as i64 + 1)
        );
    }
    let follower = *ids.iter().find(|&&id| id != leader).expect("a follower");
    assert_eq!(
        cluster.call(follower, &["MSET", "{t}a", "1", "{t}b", "2"]),
        Value::Okay
    );

    // Every node reads every write at once: reads are linearizable, not eventually so.
    for &reader in &ids {
        for &writer in &ids {
            let want = bulk(&format!("written on node {writer}"));
            let got = get(&cluster, reader, &format!("from:{writer}"));
            assert_eq!(got, want, "node {reader} reading node {writer}'s write");
        }
        assert_eq!(get(&cluster, reader, "counter"), bulk("3"), "node {reader}");
        assert_eq!(
            cluster.call(reader, &["MGET", "{t}a", "{t}b"]),
            Value::Array(vec![bulk("1"), bulk("2")]),
            "node {reader}"
        );
    }

    // The replicas hold the same data, and every node has applied what was committed.
    cluster.wait_converged(&ids, CONVERGE);
    for &id in &ids {
        let i = info(&cluster, id);
        assert!(
            i.applied >= 4,
            "node {id} applied only {} entries: {i:?}",
            i.applied
        );
    }
}

#[test]
fn acknowledged_writes_survive_killing_the_leader() {
    let mut cluster = Cluster::start("kill-leader", 3, Options::default());
    let ids = cluster.ids();
    let old_leader = cluster.wait_leader(&ids, ELECTION);
    let old_term = info(&cluster, old_leader).term;

    // Six writers, two per node, get writes acknowledged.
    let workload = Workload::start(cluster.addrs(&ids), 6);
    workload.wait_acked(200, PROGRESS, "before the kill");

    // kill -9 of the leader mid-stream: the two others elect a new leader in a later term.
    cluster.kill9(old_leader);
    let before_kill = workload.acked();
    let survivors = cluster.running();
    let new_leader = cluster.wait_leader(&survivors, ELECTION);
    assert_ne!(new_leader, old_leader);
    let new_term = info(&cluster, new_leader).term;
    assert!(new_term > old_term, "term {new_term} after term {old_term}");

    // Writes are acknowledged again under the new leader.
    workload.wait_acked(
        before_kill + 200,
        PROGRESS,
        "after the new leader took over",
    );
    let history = workload.finish();

    // Every acknowledged write is on both survivors.
    assert_no_acknowledged_write_lost(&cluster, &history, &survivors);

    // The old leader comes back and catches up: the digests converge, all three agree on a
    // leader, and it too serves every acknowledged write.
    cluster.restart(old_leader);
    cluster.wait_converged(&ids, CONVERGE);
    cluster.wait_leader(&ids, ELECTION);
    assert_no_acknowledged_write_lost(&cluster, &history, &[old_leader]);
}

#[test]
fn acknowledged_writes_survive_killing_every_node_at_once() {
    // Snapshots every 50 entries: each node restarts from its last snapshot plus the log
    // after it, and may be killed while it writes one.
    let options = Options {
        snapshot_logs: Some(50),
        ..Options::default()
    };
    let mut cluster = Cluster::start("kill-all", 3, options);
    let ids = cluster.ids();

    // Six writers, two per node, get writes acknowledged.
    let workload = Workload::start(cluster.addrs(&ids), 6);
    workload.wait_acked(300, PROGRESS, "before the crash");

    // kill -9 of all three nodes at once, mid-stream; the writers see only errors after.
    cluster.kill9_all();
    let history = workload.finish();
    assert!(cluster.running().is_empty());

    // All three restart from their disks (snapshot and log) and elect a leader.
    cluster.restart_all(&ids);
    cluster.wait_leader(&ids, ELECTION);
    for &id in &ids {
        let i = info(&cluster, id);
        assert!(
            i.last_snapshot > 0,
            "node {id} restarted without a snapshot: {i:?}"
        );
    }

    // Nothing acknowledged before the crash is lost, on any node, and the replicas converge.
    assert_no_acknowledged_write_lost(&cluster, &history, &ids);
    cluster.wait_converged(&ids, CONVERGE);

    // The cluster takes new writes after the crash.
    assert_eq!(
        cluster.call(ids[0], &["SET", "after", "crash"]),
        Value::Okay
    );
    assert_eq!(get(&cluster, ids[2], "after"), bulk("crash"));
}

#[test]
fn a_lagging_node_catches_up_from_a_snapshot() {
    const SNAPSHOT_LOGS: u64 = 50;
    // Past the 1,000 entries redraft keeps behind a snapshot; then more in rounds.
    const ENTRIES: usize = 1_200;
    const MORE: usize = 300;
    const MORE_ROUNDS: usize = 8;
    let options = Options {
        snapshot_logs: Some(SNAPSHOT_LOGS),
        ..Options::default()
    };
    let mut cluster = Cluster::start("snapshot", 3, options);
    let ids = cluster.ids();
    let leader = cluster.wait_leader(&ids, ELECTION);
    let lagging = *ids.iter().find(|&&id| id != leader).expect("a follower");

    // A follower goes down (kill -9) before any snapshot exists.
    assert_eq!(
        cluster.call(leader, &["SET", "before", "down"]),
        Value::Okay
    );
    let at_kill = info(&cluster, lagging);
    assert_eq!(
        at_kill.last_snapshot, 0,
        "node {lagging} before the writes: {at_kill:?}"
    );
    let log_end = info(&cluster, leader).commit;
    cluster.kill9(lagging);

    // Many writes later, the leader has purged from its log the entries the lagging node
    // lacks. It keeps 1,000 entries behind its snapshot and purges only between attempts to
    // replicate to the dead node, so the writes go on in rounds until it has.
    let mut conn = cluster
        .conn_with_timeout(leader, CALL_TIMEOUT)
        .expect("connect to the leader");
    let mut keys: Vec<String> = Vec::new();
    let mut last = String::new();
    let mut purged = false;
    for round in 0..MORE_ROUNDS {
        let n = if round == 0 { ENTRIES } else { MORE };
        let batch: Vec<String> = (keys.len()..keys.len() + n)
            .map(|i| format!("bulk:{i}"))
            .collect();
        for chunk in batch.chunks(100) {
            let cmds: Vec<Vec<&str>> = chunk.iter().map(|k| vec!["SET", k, k]).collect();
            conn.send(&cmds).expect("send a batch of SETs");
            for k in chunk {
                let reply = conn.recv().unwrap_or_else(|e| panic!("SET {k}: {e}"));
                assert_eq!(reply, Value::Okay, "SET {k} -> {}", show_value(&reply));
            }
        }
        keys.extend(batch);
        let seen = poll(Duration::from_secs(3), || {
            let i = info(&cluster, leader);
            last = format!("{i:?}");
            let p = i.purged().unwrap_or_else(|| {
                panic!("INFO replication lacks raft_last_log_index or raft_log_size: {i:?}")
            });
            (p > log_end).then_some(())
        });
        if seen.is_some() {
            purged = true;
            break;
        }
    }
    assert!(
        purged,
        "after {} writes the leader (node {leader}) still keeps its log from index {log_end}: {last}",
        keys.len()
    );
    eprintln!(
        "{} writes; the leader purged past {log_end}: {last}",
        keys.len()
    );

    // The lagging node restarts, catches up by snapshot and holds the same data.
    cluster.restart(lagging);
    cluster.wait_converged(&ids, CONVERGE);
    let caught_up = info(&cluster, lagging);
    eprintln!("node {lagging} caught up from log end {log_end}: {caught_up:?}");
    let log = cluster.log_since_start(lagging);
    assert!(
        log.contains("snapshot installed"),
        "node {lagging} logged no `snapshot installed` (raft::state_machine) since its restart:\n{log}"
    );
    assert!(
        caught_up.last_snapshot > log_end,
        "node {lagging} caught up but has no snapshot past its old log end {log_end}: {caught_up:?}"
    );
    let state = read_state(
        &mut cluster
            .conn_with_timeout(lagging, CALL_TIMEOUT)
            .expect("connect to the lagging node"),
        &keys,
    )
    .expect("read the bulk keys back");
    for (k, v) in &state {
        assert_eq!(v.as_deref(), Some(k.as_str()), "node {lagging}: {k}");
    }
    assert_eq!(get(&cluster, lagging, "before"), bulk("down"));
}

#[test]
fn an_isolated_follower_refuses_stale_reads() {
    let cluster = Cluster::start("isolated", 3, Options::default());
    let ids = cluster.ids();
    let leader = cluster.wait_leader(&ids, ELECTION);
    let isolated = *ids.iter().find(|&&id| id != leader).expect("a follower");
    let others: Vec<u64> = ids.iter().copied().filter(|&id| id != isolated).collect();

    // A value is written and every replica, the future isolated follower included, has it.
    assert_eq!(cluster.call(leader, &["SET", "k", "old"]), Value::Okay);
    cluster.wait_converged(&ids, CONVERGE);

    // With the other two paused (SIGSTOP), the follower answers a read with an error in
    // bounded time rather than the value it holds, which it cannot know is current.
    let paused = cluster.pause(&others);
    let mut conn = cluster
        .conn_with_timeout(isolated, Duration::from_secs(30))
        .expect("connect to the isolated follower");
    let started = Instant::now();
    let reply = conn.call(&["GET", "k"]).unwrap_or_else(|e| {
        panic!(
            "GET on the isolated node: no reply after {:?}: {e}",
            started.elapsed()
        )
    });
    let waited = started.elapsed();
    assert!(
        error_text(&reply).is_some(),
        "the isolated follower answered GET with {} after {waited:?}",
        show_value(&reply)
    );
    eprintln!("isolated read: {} after {waited:?}", show_value(&reply));
    assert!(
        waited < Duration::from_secs(20),
        "the refusal took {waited:?}"
    );

    // PING needs no data, so the isolated node still answers it at once, as Redis does
    // (a health check sees the process alive even while the cluster is unreachable).
    let pong = conn.call(&["PING"]).expect("PING on the isolated node");
    assert_eq!(
        pong,
        Value::SimpleString("PONG".into()),
        "PING on the isolated node"
    );

    // A write there fails too, in bounded time.
    let started = Instant::now();
    let reply = conn.call(&["SET", "k2", "during"]).unwrap_or_else(|e| {
        panic!(
            "SET on the isolated node: no reply after {:?}: {e}",
            started.elapsed()
        )
    });
    assert!(
        error_text(&reply).is_some(),
        "the isolated follower acknowledged a write: {}",
        show_value(&reply)
    );

    // Once the others resume (SIGCONT), the follower serves the value again.
    paused.resume();
    let mut last = String::new();
    poll(ELECTION, || {
        match cluster.try_call(isolated, &["GET", "k"]) {
            Ok(v) if v == bulk("old") => Some(()),
            Ok(v) => {
                last = show_value(&v);
                None
            }
            Err(e) => {
                last = e;
                None
            }
        }
    })
    .unwrap_or_else(|| panic!("node {isolated} did not serve `k` after the resume: {last}"));

    // And it takes writes that every node then reads.
    assert_eq!(cluster.call(isolated, &["SET", "k", "new"]), Value::Okay);
    for &id in &ids {
        assert_eq!(get(&cluster, id, "k"), bulk("new"), "node {id}");
    }
    let k2 = get(&cluster, isolated, "k2");
    assert!(
        k2 == Value::Nil || k2 == bulk("during"),
        "k2 holds {}",
        show_value(&k2)
    );
    cluster.wait_converged(&ids, CONVERGE);
}

#[test]
fn a_node_joins_and_another_leaves_while_writes_continue() {
    let mut cluster = Cluster::start("membership", 3, Options::default());
    let ids = cluster.ids();
    let first_leader = cluster.wait_leader(&ids, ELECTION);

    // Writers on the three first nodes get writes acknowledged.
    let workload = Workload::start(cluster.addrs(&ids), 4);
    workload.wait_acked(100, PROGRESS, "before the membership changes");

    // Node 4 joins through node 1 and becomes a voter (a follower, no longer a learner).
    cluster.join(4, 1);
    let mut last = String::new();
    poll(ELECTION, || match cluster.raft_info(4) {
        Ok(i) if i.role == "follower" && i.leader.is_some() => Some(()),
        Ok(i) => {
            last = format!("{i:?}");
            None
        }
        Err(e) => {
            last = e;
            None
        }
    })
    .unwrap_or_else(|| panic!("node 4 did not become a voter: {last}"));
    let joined = workload.acked();
    workload.wait_acked(joined + 100, PROGRESS, "after node 4 joined");

    // CLUSTER FORGET removes node 3 (a follower if node 3 does not lead, else the leader);
    // the removed process is then killed.
    let gone = 3;
    let asked = if first_leader == gone {
        1
    } else {
        first_leader
    };
    assert_eq!(
        cluster.call(asked, &["CLUSTER", "FORGET", &gone.to_string()]),
        Value::Okay
    );
    cluster.discard(gone);
    let members: Vec<u64> = vec![1, 2, 4];
    cluster.wait_leader(&members, ELECTION);
    let mut last = String::new();
    poll(ELECTION, || {
        let infos: Vec<(u64, RaftInfo)> =
            members.iter().map(|&id| (id, info(&cluster, id))).collect();
        last = format!("{infos:?}");
        // `raft_voters` is optional in INFO; where it is shown it must say {1, 2, 4}.
        infos
            .iter()
            .all(|(_, i)| i.voters.as_ref().is_none_or(|v| *v == members))
            .then_some(())
    })
    .unwrap_or_else(|| panic!("the members do not all show voters {members:?}: {last}"));
    let removed = workload.acked();
    workload.wait_acked(removed + 100, PROGRESS, "after node 3 left");

    // With node 2 down too, nodes 1 and 4 still commit writes: they are a majority of
    // {1, 2, 4}, which they would not be if node 3 were still a member or node 4 a learner.
    cluster.kill9(2);
    cluster.wait_leader(&[1, 4], ELECTION);
    let two_left = workload.acked();
    workload.wait_acked(two_left + 100, PROGRESS, "with only nodes 1 and 4 up");
    let history = workload.finish();

    // Node 2 returns; every acknowledged write is on 1, 2 and 4, and they converge.
    cluster.restart(2);
    cluster.wait_leader(&members, ELECTION);
    assert_no_acknowledged_write_lost(&cluster, &history, &members);
    cluster.wait_converged(&members, CONVERGE);
    assert_eq!(cluster.call(4, &["SET", "from:4", "joined"]), Value::Okay);
    assert_eq!(get(&cluster, 2, "from:4"), bulk("joined"));
}

/// A leader paused (SIGSTOP) long enough to be replaced, then resumed, still believes it
/// leads for a moment. A read that reaches it then must not be answered from its old state.
fn deposed_leader_story(name: &str, read_consistency: &'static str) {
    let options = Options {
        read_consistency: Some(read_consistency),
        ..Options::default()
    };
    let cluster = Cluster::start(name, 3, options);
    let ids = cluster.ids();
    let old_leader = cluster.wait_leader(&ids, ELECTION);
    let others: Vec<u64> = ids.iter().copied().filter(|&id| id != old_leader).collect();

    // Every replica holds `k = old`.
    assert_eq!(cluster.call(old_leader, &["SET", "k", "old"]), Value::Okay);
    cluster.wait_converged(&ids, CONVERGE);

    // The leader is paused; the two others elect a new leader and acknowledge `k = new`.
    let paused = cluster.pause(&[old_leader]);
    let new_leader = cluster.wait_leader(&others, ELECTION);
    assert_eq!(cluster.call(new_leader, &["SET", "k", "new"]), Value::Okay);

    // A GET sent to the old leader while it is paused waits in its socket; on SIGCONT it is
    // the first thing the old leader serves, and the answer is `new` or an error, not `old`.
    let mut conn = cluster
        .conn_with_timeout(old_leader, Duration::from_secs(30))
        .expect("connect to the paused leader");
    conn.send(&[vec!["GET", "k"]])
        .expect("send GET to the paused leader");
    paused.resume();
    let reply = conn
        .recv()
        .unwrap_or_else(|e| panic!("GET on the resumed old leader: {e}"));
    eprintln!(
        "{read_consistency} read on the resumed old leader: {}",
        show_value(&reply)
    );
    assert!(
        reply == bulk("new") || error_text(&reply).is_some(),
        "the resumed old leader (node {old_leader}) answered a {read_consistency} GET with {} \
         after node {new_leader} acknowledged `k = new`",
        show_value(&reply)
    );

    // It then rejoins as a follower and serves the new value.
    cluster.wait_leader(&ids, ELECTION);
    assert_eq!(get(&cluster, old_leader, "k"), bulk("new"));
    cluster.wait_converged(&ids, CONVERGE);
}

#[test]
fn a_deposed_leader_serves_no_stale_read() {
    deposed_leader_story("deposed", "linearizable");
}

#[test]
fn a_deposed_leader_serves_no_stale_lease_read() {
    deposed_leader_story("deposed-lease", "lease");
}

#[test]
fn acknowledged_writes_survive_repeated_leader_failovers() {
    const ROUNDS: usize = 3;
    let options = Options {
        snapshot_logs: Some(50),
        ..Options::default()
    };
    let mut cluster = Cluster::start("failovers", 3, options);
    let ids = cluster.ids();
    let mut leader = cluster.wait_leader(&ids, ELECTION);

    // Six writers, two per node, get writes acknowledged.
    let workload = Workload::start(cluster.addrs(&ids), 6);
    workload.wait_acked(100, PROGRESS, "before the first kill");

    // Round after round, the leader is killed mid-stream, the two others elect another,
    // writes are acknowledged again, and the killed node restarts and rejoins.
    for round in 1..=ROUNDS {
        cluster.kill9(leader);
        let killed = leader;
        let survivors = cluster.running();
        leader = cluster.wait_leader(&survivors, ELECTION);
        assert_ne!(leader, killed, "round {round}");
        let acked = workload.acked();
        workload.wait_acked(
            acked + 100,
            PROGRESS,
            &format!("round {round}, new leader {leader}"),
        );
        cluster.restart(killed);
        leader = cluster.wait_leader(&ids, ELECTION);
    }
    let history = workload.finish();

    // Every acknowledged write is on every node, no INCR counted twice, and they converge.
    assert_no_acknowledged_write_lost(&cluster, &history, &ids);
    cluster.wait_converged(&ids, CONVERGE);
}

#[test]
fn writes_pending_on_a_deposed_leader_are_applied_once() {
    const ROUNDS: usize = 3;
    let options = Options {
        snapshot_logs: Some(50),
        ..Options::default()
    };
    let cluster = Cluster::start("applied-once", 3, options);
    let ids = cluster.ids();
    let mut leader = cluster.wait_leader(&ids, ELECTION);

    // Six writers, two per node: every write is in flight on the leader (directly or
    // forwarded by a follower).
    let workload = Workload::start(cluster.addrs(&ids), 6);

    // Round after round: the leader is paused mid-stream, the two others elect a leader
    // (which commits whatever of the old leader's entries reached them) and take writes
    // until it has purged its log past anything the old leader holds; the old leader
    // resumes, steps down and can only catch up by installing a snapshot. Every write
    // pending on it then must be applied at most once.
    for round in 1..=ROUNDS {
        let acked = workload.acked();
        workload.wait_acked(
            acked + 100,
            PROGRESS,
            &format!("round {round}, before the pause"),
        );
        let old_leader = leader;
        let others: Vec<u64> = ids.iter().copied().filter(|&id| id != old_leader).collect();
        let paused = cluster.pause(&[old_leader]);
        let t0 = Instant::now();
        let new_leader = cluster.wait_leader(&others, ELECTION);
        eprintln!("round {round}: new leader after {:?}", t0.elapsed());
        let old_log_end = info(&cluster, new_leader).last_log.unwrap_or(0) + 100;
        let mut conn = cluster
            .conn_with_timeout(new_leader, CALL_TIMEOUT)
            .expect("connect to the new leader");
        let mut purged = false;
        let mut batches = 0;
        // Bounded by time, not by count: the purge waits for a moment with no replication
        // to the paused node in flight, and openraft spaces its retries to that node
        // further and further apart (seen once: 60 quick batches, ~3.5 s, without one).
        let until = Instant::now() + Duration::from_secs(20);
        for batch in 0.. {
            if Instant::now() > until {
                break;
            }
            let cmds: Vec<Vec<String>> = (0..100)
                .map(|i| {
                    vec![
                        "SET".into(),
                        format!("bulk:{round}:{batch}:{i}"),
                        "x".into(),
                    ]
                })
                .collect();
            conn.send(&cmds).expect("send a batch of SETs");
            for _ in &cmds {
                let reply = conn.recv().expect("a SET reply");
                assert_eq!(reply, Value::Okay, "{}", show_value(&reply));
            }
            // A purge is tried after each snapshot and put off while a replication to the
            // paused node is in flight: small batches give it many tries.
            if info(&cluster, new_leader)
                .purged()
                .is_some_and(|p| p > old_log_end)
            {
                purged = true;
                batches = batch + 1;
                break;
            }
        }
        assert!(
            purged,
            "round {round}: node {new_leader} did not purge past {old_log_end}"
        );
        eprintln!(
            "round {round}: purged after {:?} and {batches} batches",
            t0.elapsed()
        );
        paused.resume();
        leader = cluster.wait_leader(&ids, ELECTION);
        eprintln!("round {round}: all agree after {:?}", t0.elapsed());
    }
    let history = workload.finish();

    // No acknowledged write is lost and none was applied twice, on any node.
    assert_no_acknowledged_write_lost(&cluster, &history, &ids);
    cluster.wait_converged(&ids, CONVERGE);
}

#[test]
fn expired_keys_are_reclaimed_on_every_replica() {
    let cluster = Cluster::start("expiry", 3, Options::default());
    let ids = cluster.ids();
    let leader = cluster.wait_leader(&ids, ELECTION);
    let follower = *ids.iter().find(|&&id| id != leader).expect("a follower");

    // 200 keys that expire in 300 ms and 100 that do not, written through a follower.
    let mut conn = cluster
        .conn_with_timeout(follower, CALL_TIMEOUT)
        .expect("connect to a follower");
    let mut cmds: Vec<Vec<String>> = (0..200)
        .map(|i| {
            vec![
                "SET".into(),
                format!("tmp:{i}"),
                "x".into(),
                "PX".into(),
                "300".into(),
            ]
        })
        .collect();
    cmds.extend((0..100).map(|i| vec!["SET".into(), format!("keep:{i}"), "y".into()]));
    conn.send(&cmds).expect("send the SETs");
    for c in &cmds {
        let reply = conn.recv().expect("a SET reply");
        assert_eq!(reply, Value::Okay, "{c:?} -> {}", show_value(&reply));
    }

    // The leader's active expiry deletes the expired keys through the log: every replica's
    // key count drops to the 100 persistent keys, and their digests agree.
    let mut last = String::new();
    poll(CONVERGE, || {
        let sizes: Vec<(u64, Value)> = ids
            .iter()
            .map(|&id| (id, cluster.call(id, &["DBSIZE"])))
            .collect();
        last = format!("{sizes:?}");
        sizes
            .iter()
            .all(|(_, v)| *v == Value::Int(100))
            .then_some(())
    })
    .unwrap_or_else(|| panic!("expired keys were not reclaimed everywhere: DBSIZE {last}"));
    cluster.wait_converged(&ids, CONVERGE);
    for &id in &ids {
        assert_eq!(get(&cluster, id, "tmp:7"), Value::Nil, "node {id}");
        assert_eq!(get(&cluster, id, "keep:7"), bulk("y"), "node {id}");
    }
}

#[test]
fn the_leader_can_be_forgotten() {
    let mut cluster = Cluster::start("forget-leader", 3, Options::default());
    let ids = cluster.ids();
    let leader = cluster.wait_leader(&ids, ELECTION);
    let rest: Vec<u64> = ids.iter().copied().filter(|&id| id != leader).collect();

    // Writers on the two other nodes get writes acknowledged.
    let workload = Workload::start(cluster.addrs(&rest), 4);
    workload.wait_acked(100, PROGRESS, "before the removal");

    // CLUSTER FORGET sent to the leader removes the leader itself; the two others elect a
    // leader between them and keep acknowledging writes.
    assert_eq!(
        cluster.call(leader, &["CLUSTER", "FORGET", &leader.to_string()]),
        Value::Okay
    );
    cluster.discard(leader);
    cluster.wait_leader(&rest, ELECTION);
    let acked = workload.acked();
    workload.wait_acked(acked + 100, PROGRESS, "after the leader left");
    let history = workload.finish();

    // Both hold every acknowledged write and converge.
    assert_no_acknowledged_write_lost(&cluster, &history, &rest);
    cluster.wait_converged(&rest, CONVERGE);
}

#[test]
fn a_rolling_restart_with_sigterm_loses_nothing() {
    let mut cluster = Cluster::start("rolling", 3, Options::default());
    let ids = cluster.ids();
    cluster.wait_leader(&ids, ELECTION);

    // Six writers, two per node, get writes acknowledged.
    let workload = Workload::start(cluster.addrs(&ids), 6);
    workload.wait_acked(100, PROGRESS, "before the rolling restart");

    // Node by node: SIGTERM, a clean exit (a leader hands leadership away first), writes
    // acknowledged by the two others, then the node restarts and rejoins.
    for &id in &ids {
        let status = cluster.terminate(id, Duration::from_secs(20));
        assert!(
            status.success(),
            "node {id} exited with {status} after SIGTERM"
        );
        let rest: Vec<u64> = ids.iter().copied().filter(|&x| x != id).collect();
        cluster.wait_leader(&rest, ELECTION);
        let acked = workload.acked();
        workload.wait_acked(acked + 100, PROGRESS, &format!("with node {id} stopped"));
        cluster.restart(id);
        cluster.wait_leader(&ids, ELECTION);
    }
    let history = workload.finish();

    // Every acknowledged write is on every node, and they converge.
    assert_no_acknowledged_write_lost(&cluster, &history, &ids);
    cluster.wait_converged(&ids, CONVERGE);
}

#[test]
fn no_read_misses_an_acknowledged_write_across_a_failover() {
    let mut cluster = Cluster::start("fresh-reads", 3, Options::default());
    let ids = cluster.ids();
    let leader = cluster.wait_leader(&ids, ELECTION);
    let nodes: Vec<_> = ids.iter().map(|&id| (id, cluster.addr(id))).collect();
    let stop = std::sync::atomic::AtomicBool::new(false);

    let register = std::thread::scope(|scope| {
        let run = scope.spawn(|| crate::history::run_register(&nodes, "reg", &stop));
        let stop_on_panic = StopOnDrop(&stop);
        // One writer INCRs a counter while a reader on each node GETs it.
        let value = |cluster: &Cluster, id| match cluster.try_call(id, &["GET", "reg"]) {
            Ok(Value::BulkString(b)) => String::from_utf8_lossy(&b).parse::<i64>().ok(),
            _ => None,
        };
        poll(PROGRESS, || value(&cluster, leader).filter(|&n| n >= 100))
            .expect("the counter did not reach 100 before the kill");

        // kill -9 of the leader; a new leader is elected and the counter moves on.
        cluster.kill9(leader);
        let survivors = cluster.running();
        let new_leader = cluster.wait_leader(&survivors, ELECTION);
        let at_kill = value(&cluster, new_leader).unwrap_or(0);
        poll(PROGRESS, || {
            value(&cluster, new_leader).filter(|&n| n >= at_kill + 100)
        })
        .expect("the counter did not move on under the new leader");
        drop(stop_on_panic);
        run.join().expect("the register threads panicked")
    });

    // No read, on any node, returned less than a value INCR had answered before it began.
    assert!(
        register.acks.len() >= 200,
        "only {} INCRs acknowledged",
        register.acks.len()
    );
    let stale = register.stale_reads();
    assert!(
        stale.is_empty(),
        "{} stale reads of {}:\n{}",
        stale.len(),
        register.reads.len(),
        stale
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    eprintln!(
        "{} INCRs acknowledged, {} reads, none stale",
        register.acks.len(),
        register.reads.len()
    );
}

/// Sets the flag when dropped: stops the register threads when the test body ends, on
/// success and on panic alike.
struct StopOnDrop<'a>(&'a std::sync::atomic::AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

#[test]
fn a_forgotten_node_left_running_does_not_disturb_the_cluster() {
    let cluster = Cluster::start("forgotten-running", 3, Options::default());
    let ids = cluster.ids();
    let leader = cluster.wait_leader(&ids, ELECTION);
    let gone = *ids
        .iter()
        .rev()
        .find(|&&id| id != leader)
        .expect("a follower");
    let members: Vec<u64> = ids.iter().copied().filter(|&id| id != gone).collect();

    // Writers on the two remaining members get writes acknowledged.
    let workload = Workload::start(cluster.addrs(&members), 4);
    workload.wait_acked(100, PROGRESS, "before the removal");

    // CLUSTER FORGET removes a follower, whose process keeps running (an operator's slip).
    assert_eq!(
        cluster.call(leader, &["CLUSTER", "FORGET", &gone.to_string()]),
        Value::Okay
    );
    let settled = cluster.wait_leader(&members, ELECTION);
    let term = info(&cluster, settled).term;

    // The two members keep their leader and term and keep acknowledging writes, however
    // long the forgotten node goes without hearing from a leader.
    let acked = workload.acked();
    workload.wait_acked(acked + 300, PROGRESS, "with the forgotten node running");
    let history = workload.finish();
    eprintln!("the forgotten node {gone}: {:?}", cluster.raft_info(gone));
    for &id in &members {
        let i = info(&cluster, id);
        assert_eq!(
            (i.leader, i.term),
            (Some(settled), term),
            "node {id} after the forgotten node ran alone: {i:?} (forgotten node: {:?})",
            cluster.raft_info(gone)
        );
    }
    assert_no_acknowledged_write_lost(&cluster, &history, &members);
    cluster.wait_converged(&members, CONVERGE);
}
