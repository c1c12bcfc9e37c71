//! Fault stories: what a cluster must survive when the world misbehaves. Real `redraft`
//! processes on loopback (see [`crate::nodes`]), writers recording what was acknowledged
//! (see [`crate::history`]), each story ending on the same check as the cluster stories:
//! every acknowledged write is read back from every live node.
//!
//! - Values of 100 MB and 500 MB are written while twenty clients write small values:
//!   both replicate, and no small write stalls beyond [`STALL_BOUND`].
//! - A full disk (a tmpfs the node mounts in a namespace of its own): the node answers
//!   writes with `-MISCONF`, keeps serving reads, hands leadership away, and resumes by
//!   itself once space is freed; SIGTERM ends it within its shutdown budget even then.
//! - A file limit below `maxclients`: `maxclients` is lowered to fit and said so in Redis's
//!   words, and descriptors running out (a flood of connections to the peer port) never stop
//!   Raft: snapshots and accepts are retried until they work again.
//! - Damaged logs (4 KB cut off the end, 64 garbled bytes near it, one flipped bit, an
//!   emptied file): a lone node refuses to start and says why; a follower of three neither
//!   votes nor leads until it has caught up. Nothing acknowledged is ever silently lost, and
//!   the self-test proves the story would see it: with `--unsafe skip-log-checks` it must
//!   find lost writes.
//! - Forged peer messages with extreme fields are refused, and nodes stay up, across
//!   restarts too.
//! - Joining: a joiner that never answers stays a learner (the group keeps its quorum) and
//!   `CLUSTER FORGET` removes it.

use std::path::Path;
use std::time::{Duration, Instant};

use redis::Value;

use crate::cluster::{assert_no_acknowledged_write_lost, info, ELECTION, PROGRESS};
use crate::harness::{error_text, show_value};
use crate::history::Workload;
use crate::nodes::{poll, Cluster, Options, RaftInfo, Wrap, CALL_TIMEOUT};

/// How long replicas may take to converge after the writes stop (longer than the cluster
/// stories': digests over hundreds of megabytes in a debug build).
const CONVERGE: Duration = Duration::from_secs(60);
/// The longest a small write may wait while a large one replicates (a debug build on two
/// shared cores, three nodes, twenty writers and the large value's client; the release
/// figure is in the closing notes and BENCHMARKS.md).
const STALL_BOUND: Duration = Duration::from_secs(10);

/// One field of node `id`'s `INFO replication`.
fn info_field(cluster: &Cluster, id: u64, field: &str) -> Option<String> {
    let text = match cluster.try_call(id, &["INFO", "replication"]).ok()? {
        Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
        Value::VerbatimString { text, .. } => text,
        _ => return None,
    };
    redraft_tests::info::field(&text, field).map(str::to_string)
}

/// Polls (at most `timeout`, each time calling `nudge`) until node `id`'s log reports
/// `ok` (`ok` true) or anything else (`ok` false).
fn wait_log_status(
    cluster: &Cluster,
    id: u64,
    ok: bool,
    timeout: Duration,
    mut nudge: impl FnMut(),
) -> bool {
    poll(timeout, || {
        nudge();
        let status = info_field(cluster, id, "raft_log_status");
        ((status.as_deref() == Some("ok")) == ok).then_some(())
    })
    .is_some()
}

/// True when this process may mount file systems (root); otherwise a story that needs it
/// fails, unless `REDRAFT_JEPSEN_SKIP=1` (which skips everything that needs root).
/// A network namespace of its own with an address besides loopback, 10.77.0.1 (on one end
/// of a veth pair whose both ends stay inside): a client in it connecting to 10.77.0.1
/// comes from 10.77.0.1, not from a loopback address. Nothing in it reaches any other
/// interface; it goes away when dropped.
pub(crate) fn namespace_with_address() -> redraft_tests::jepsen::netns::Namespace {
    use redraft_tests::jepsen::netns::{run, Namespace};
    let ns = Namespace::create().expect("a network namespace");
    for args in [
        vec!["link", "add", "v0", "type", "veth", "peer", "name", "v1"],
        vec!["addr", "add", "10.77.0.1/24", "dev", "v0"],
        vec!["link", "set", "v0", "up"],
        vec!["link", "set", "v1", "up"],
    ] {
        let mut all = vec!["-n", ns.name.as_str()];
        all.extend(args);
        run("ip", &all).expect("set up the namespace's address");
    }
    ns
}

pub(crate) fn may_mount(story: &str) -> bool {
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if root {
        return true;
    }
    if std::env::var_os("REDRAFT_JEPSEN_SKIP").is_some() {
        eprintln!("SKIPPED {story}: it needs root (a tmpfs) and REDRAFT_JEPSEN_SKIP is set");
        return false;
    }
    panic!("{story} needs root to mount a tmpfs; set REDRAFT_JEPSEN_SKIP=1 to skip it");
}

/// A value of `len` bytes that differs at every offset from its neighbours (so a
/// misplaced part would show).
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3] ^ seed)
        .collect()
}

#[test]
fn values_of_100_and_500_mb_replicate_while_small_writes_go_on() {
    let cluster = Cluster::start("big-values", 3, Options::default());
    let ids = cluster.ids();
    let leader = cluster.wait_leader(&ids, ELECTION);
    let follower = *ids.iter().find(|&&id| id != leader).expect("a follower");

    // Twenty writers write small values on every node.
    let workload = Workload::start(cluster.addrs(&ids), 20);
    workload.wait_acked(300, PROGRESS, "before the large values");

    // A 100 MB SET sent to a follower (forwarded to the leader), then a 500 MB one sent
    // to the leader: both acknowledged, while the small writes go on.
    let mut windows = Vec::new();
    for (key, node, mb, seed) in [
        ("big:100", follower, 100, 1u8),
        ("big:500", leader, 500, 2u8),
    ] {
        let value = pattern(mb << 20, seed);
        let mut c = cluster
            .conn_with_timeout(node, Duration::from_secs(600))
            .expect("connect for the large SET");
        let acked_before = workload.acked();
        let started = Instant::now();
        let reply = c.call(&[b"SET".as_slice(), key.as_bytes(), &value]);
        let ended = Instant::now();
        let reply = reply.unwrap_or_else(|e| panic!("SET {key} ({mb} MB) on node {node}: {e}"));
        assert_eq!(reply, Value::Okay, "SET {key}: {}", show_value(&reply));
        eprintln!(
            "SET {key} ({mb} MB) on node {node}: {:.1} s; {} small writes acknowledged meanwhile",
            (ended - started).as_secs_f64(),
            workload.acked() - acked_before
        );
        windows.push((key, started, ended));
    }
    workload.wait_acked(workload.acked() + 200, PROGRESS, "after the large values");
    let history = workload.finish();

    // No small write waited long, and none was lost.
    for (key, from, to) in &windows {
        let worst = history.worst_latency_between(*from, *to);
        eprintln!("longest small write while {key} was written: {worst:?}");
        assert!(
            worst <= STALL_BOUND,
            "a small write took {worst:?} while {key} was written (bound {STALL_BOUND:?})"
        );
    }
    assert_no_acknowledged_write_lost(&cluster, &history, &ids);

    // Both values are on every node: their length and sampled ranges everywhere, the
    // whole of the 100 MB one read back from a node that did not receive it, and the
    // replicas' digests equal.
    for &id in &ids {
        for (key, mb, seed) in [("big:100", 100usize, 1u8), ("big:500", 500, 2)] {
            let len = mb << 20;
            let mut c = cluster
                .conn_with_timeout(id, Duration::from_secs(120))
                .expect("connect");
            assert_eq!(
                c.call(&["STRLEN", key]).expect("STRLEN"),
                Value::Int(len as i64),
                "node {id}: STRLEN {key}"
            );
            let full = pattern(len, seed);
            for at in [0, len / 3, len / 2 + 12_345, len - 100] {
                let end = (at + 99).to_string();
                let got = c
                    .call(&["GETRANGE", key, &at.to_string(), &end])
                    .expect("GETRANGE");
                assert_eq!(
                    got,
                    Value::BulkString(full[at..at + 100].to_vec()),
                    "node {id}: GETRANGE {key} {at} {end}"
                );
            }
        }
    }
    let reader = *ids
        .iter()
        .find(|&&id| id != follower)
        .expect("another node");
    let mut c = cluster
        .conn_with_timeout(reader, Duration::from_secs(120))
        .expect("connect");
    assert!(
        c.call(&["GET", "big:100"]).expect("GET big:100")
            == Value::BulkString(pattern(100 << 20, 1)),
        "node {reader}: GET big:100 differs from what was written"
    );
    cluster.wait_converged(&ids, CONVERGE);
}

#[test]
fn a_write_over_max_request_bytes_is_refused_before_it_is_proposed() {
    let options = Options {
        extra: vec!["--max-request-bytes".into(), "1048576".into()],
        ..Options::default()
    };
    let cluster = Cluster::start("max-request", 3, options);
    let ids = cluster.ids();
    let leader = cluster.wait_leader(&ids, ELECTION);
    let follower = *ids.iter().find(|&&id| id != leader).expect("a follower");
    // A first write waits for the group's claim of its slots, which its leader proposes
    // after the election: from then on nothing else is appended unasked.
    assert_eq!(cluster.call(leader, &["SET", "first", "1"]), Value::Okay);
    let before = info(&cluster, leader)
        .last_log
        .expect("raft_last_log_index");
    let big = vec![b'b'; 2 << 20];
    for node in [leader, follower] {
        let mut c = cluster
            .conn_with_timeout(node, CALL_TIMEOUT)
            .expect("connect");
        let reply = c.call(&[b"SET".as_slice(), b"too-big", &big]).expect("SET");
        let text = error_text(&reply).unwrap_or_else(|| panic!("accepted: {}", show_value(&reply)));
        assert_eq!(
            text,
            format!(
                "ERR write of {} bytes exceeds max-request-bytes (1048576)",
                // As proposed: with the slot and epoch it is routed with.
                kv::Proposal::Command {
                    args: vec!["SET".into(), "too-big".into(), big.clone().into()],
                    seed: 0,
                }
                .encode_routed(types::Epoch(1))
                .len()
            ),
            "node {node}"
        );
    }
    assert_eq!(cluster.call(leader, &["EXISTS", "too-big"]), Value::Int(0));
    let after = info(&cluster, leader)
        .last_log
        .expect("raft_last_log_index");
    assert!(
        after <= before + 1,
        "something was proposed: log {before} -> {after}"
    );
    // Just under the limit is fine (sent in parts).
    let fits = vec![b'f'; 1_000_000];
    let mut c = cluster
        .conn_with_timeout(follower, CALL_TIMEOUT)
        .expect("connect");
    assert_eq!(
        c.call(&[b"SET".as_slice(), b"fits", &fits])
            .expect("SET fits"),
        Value::Okay
    );
    assert_eq!(
        cluster.call(leader, &["STRLEN", "fits"]),
        Value::Int(1_000_000)
    );
}

/// Fills node `id`'s data directory (a tmpfs of its own) until at most `leave` bytes are
/// free; the ballast file's path.
fn fill_disk(cluster: &Cluster, id: u64, leave: u64) -> std::path::PathBuf {
    let dir = cluster
        .node(id)
        .data_in_namespace()
        .expect("the node is running");
    redraft_tests::jepsen::db::fill(&dir, leave)
        .unwrap_or_else(|e| panic!("fill {}: {e:#}", dir.display()))
}

#[test]
fn a_full_disk_refuses_writes_keeps_reads_and_resumes_by_itself() {
    if !may_mount("the full-disk story") {
        return;
    }
    // Node 1's data directory is a 64 MB tmpfs.
    let options = Options {
        extra: vec!["--shutdown-timeout".into(), "5".into()],
        wrap: [(1, Wrap::Tmpfs("64m"))].into(),
        ..Options::default()
    };
    let mut cluster = Cluster::start("disk-full", 3, options);
    let ids = cluster.ids();
    let mut leader = cluster.wait_leader(&ids, ELECTION);
    if leader != 1 {
        assert_eq!(
            cluster.call(leader, &["CLUSTER", "TRANSFER-LEADER", "1"]),
            Value::Okay
        );
        leader = cluster.wait_leader(&ids, ELECTION);
    }
    assert_eq!(leader, 1, "node 1 leads before its disk fills");
    for i in 0..50 {
        let k = format!("before:{i}");
        assert_eq!(cluster.call(1, &["SET", &k, "v"]), Value::Okay);
    }
    let workload = Workload::start(cluster.addrs(&ids), 8);
    workload.wait_acked(200, PROGRESS, "before the disk fills");

    // The leader's disk fills up: it says so, refuses writes with -MISCONF, and hands
    // leadership to another node, through which writes go on.
    let ballast = fill_disk(&cluster, 1, 1 << 20);
    let stalled = wait_log_status(&cluster, 1, false, Duration::from_secs(20), || {});
    assert!(stalled, "node 1 never reported its full disk");
    let reply = cluster
        .try_call(1, &["SET", "during", "full"])
        .expect("SET on node 1");
    let text = error_text(&reply).unwrap_or_else(|| panic!("accepted: {}", show_value(&reply)));
    assert!(
        text.starts_with("MISCONF Errors writing to the Raft log: No space left on device"),
        "{text}"
    );
    // Nodes 2 and 3 agree on a leader among themselves.
    let new_leader = cluster.wait_leader(&[2, 3], ELECTION);
    let acked = workload.acked();
    workload.wait_acked(acked + 200, PROGRESS, "while node 1's disk is full");
    assert_eq!(
        cluster.call(new_leader, &["SET", "during", "full"]),
        Value::Okay
    );

    // Reads on the full node still work, and see what was written through the others.
    let mut last = String::new();
    let read = poll(PROGRESS, || match cluster.try_call(1, &["GET", "during"]) {
        Ok(Value::BulkString(b)) if b == b"full" => Some(()),
        other => {
            last = format!("{other:?}");
            None
        }
    });
    assert!(read.is_some(), "node 1 stopped serving reads: {last}");
    assert_eq!(
        cluster.call(1, &["GET", "before:7"]),
        Value::BulkString(b"v".to_vec())
    );

    // Space is freed: the node writes again by itself, and takes writes again.
    std::fs::remove_file(&ballast).expect("remove the ballast");
    let resumed = poll(Duration::from_secs(60), || {
        (info_field(&cluster, 1, "raft_log_status").as_deref() == Some("ok")).then_some(())
    });
    assert!(
        resumed.is_some(),
        "node 1 did not resume after space was freed"
    );
    let mut last = String::new();
    let wrote = poll(PROGRESS, || {
        match cluster.try_call(1, &["SET", "after", "freed"]) {
            Ok(Value::Okay) => Some(()),
            other => {
                last = format!("{other:?}");
                None
            }
        }
    });
    assert!(
        wrote.is_some(),
        "node 1 refuses writes after space was freed: {last}"
    );
    let acked = workload.acked();
    workload.wait_acked(acked + 200, PROGRESS, "after space was freed");
    let history = workload.finish();
    assert_no_acknowledged_write_lost(&cluster, &history, &ids);
    cluster.wait_converged(&ids, CONVERGE);

    // A full disk again (found at the next write the node must log), then SIGTERM: the
    // node ends within its budget (5 s) all the same.
    let _ballast = fill_disk(&cluster, 1, 1 << 20);
    let stalled = poll(Duration::from_secs(20), || {
        let _ = cluster.try_call(new_leader, &["INCR", "nudge"]);
        (info_field(&cluster, 1, "raft_log_status").as_deref() != Some("ok")).then_some(())
    });
    assert!(
        stalled.is_some(),
        "node 1 never reported its full disk again"
    );
    let started = Instant::now();
    let status = cluster.terminate(1, Duration::from_secs(15));
    eprintln!(
        "SIGTERM with a full disk: exited {status} after {:?}",
        started.elapsed()
    );
}

#[test]
fn a_lone_node_with_a_full_disk_answers_misconf_and_resumes() {
    if !may_mount("the lone full-disk story") {
        return;
    }
    let options = Options {
        wrap: [(1, Wrap::Tmpfs("48m"))].into(),
        ..Options::default()
    };
    let cluster = Cluster::start("disk-full-lone", 1, options);
    for i in 0..100 {
        let k = format!("k:{i}");
        assert_eq!(cluster.call(1, &["SET", &k, &k]), Value::Okay);
    }
    let ballast = fill_disk(&cluster, 1, 0);
    // Every write now gets -MISCONF (or, for a write already on its way when the disk
    // filled, a wait until it is freed); reads go on.
    let mut last = String::new();
    let refused = poll(Duration::from_secs(20), || {
        match cluster.try_call(1, &["SET", "x", "y"]) {
            Ok(v) if error_text(&v).is_some_and(|e| e.starts_with("MISCONF")) => Some(()),
            other => {
                last = format!("{other:?}");
                None
            }
        }
    });
    assert!(
        refused.is_some(),
        "writes were not refused on a full disk: {last}"
    );
    assert_eq!(
        cluster.call(1, &["GET", "k:42"]),
        Value::BulkString(b"k:42".to_vec())
    );
    assert_eq!(cluster.call(1, &["DBSIZE"]), Value::Int(100));
    std::fs::remove_file(&ballast).expect("remove the ballast");
    let mut last = String::new();
    let wrote = poll(Duration::from_secs(60), || {
        match cluster.try_call(1, &["SET", "after", "freed"]) {
            Ok(Value::Okay) => Some(()),
            other => {
                last = format!("{other:?}");
                None
            }
        }
    });
    assert!(wrote.is_some(), "writes did not resume: {last}");
    assert_eq!(
        cluster.call(1, &["GET", "k:99"]),
        Value::BulkString(b"k:99".to_vec())
    );
}

#[test]
fn a_file_limit_below_maxclients_lowers_it_and_running_out_never_stops_raft() {
    // Node 2 runs with 256 open files; snapshots every 50 entries.
    let options = Options {
        snapshot_logs: Some(50),
        wrap: [(2, Wrap::NoFile(256))].into(),
        ..Options::default()
    };
    let cluster = Cluster::start("file-limit", 3, options);
    let ids = cluster.ids();
    cluster.wait_leader(&ids, ELECTION);

    // maxclients (10000 by default) is lowered to what 256 descriptors allow, and the
    // node says so as Redis does.
    let fit = 256 - server::limits::RESERVED_FDS;
    let log = cluster.log_since_start(2);
    assert!(
        log.contains(&format!(
            "maxclients has been reduced to {fit} to compensate for low ulimit"
        )),
        "node 2 did not say it lowered maxclients:\n{log}"
    );
    assert_eq!(
        cluster.call(2, &["CONFIG", "GET", "maxclients"]),
        Value::Array(vec![
            Value::BulkString(b"maxclients".to_vec()),
            Value::BulkString(fit.to_string().into_bytes())
        ])
    );
    // One connection more than that is refused, as Redis refuses it.
    let mut held = Vec::new();
    for _ in 0..fit {
        held.push(cluster.conn_with_timeout(2, CALL_TIMEOUT).expect("connect"));
    }
    let mut extra = cluster.conn_with_timeout(2, CALL_TIMEOUT).expect("connect");
    let reply = extra.call(&["PING"]);
    let refused = match &reply {
        Ok(v) => error_text(v).is_some_and(|e| e.contains("max number of clients reached")),
        Err(e) => e.to_string().contains("max number of clients reached"),
    };
    assert!(refused, "connection {} past maxclients: {reply:?}", fit + 1);
    drop(held);
    drop(extra);

    // A flood of connections to node 2's peer port takes every descriptor it has left
    // while writes go on and snapshots fall due: accepts and snapshots fail with "Too
    // many open files" and are retried; Raft goes on.
    let workload = Workload::start(cluster.addrs(&ids), 6);
    workload.wait_acked(100, PROGRESS, "before the flood");
    // A connection opened before the flood, to watch node 2 through it.
    let mut watch = cluster.conn_with_timeout(2, CALL_TIMEOUT).expect("connect");
    let mut snapshot_of_2 = move || -> u64 {
        match watch.call(&["INFO", "replication"]) {
            Ok(Value::BulkString(b)) => {
                RaftInfo::parse(&String::from_utf8_lossy(&b))
                    .expect("INFO replication")
                    .last_snapshot
            }
            other => panic!("INFO replication on node 2 during the flood: {other:?}"),
        }
    };
    let grpc: std::net::SocketAddr = cluster.node(2).grpc_addr().parse().expect("an address");
    let mut flood = Vec::new();
    let mut refused = 0;
    for _ in 0..600 {
        // Once node 2 accepts no more, its listen queue fills and connects hang.
        match std::net::TcpStream::connect_timeout(&grpc, Duration::from_millis(300)) {
            Ok(s) => flood.push(s),
            Err(_) => refused += 1,
        }
        if refused == 3 {
            break;
        }
    }
    let acked = workload.acked();
    workload.wait_acked(acked + 600, PROGRESS, "during the flood");
    let snapshot_before = snapshot_of_2();
    eprintln!(
        "{} connections flood node 2's peer port; its last snapshot: {snapshot_before}",
        flood.len()
    );
    drop(flood);

    // The flood over, node 2 snapshots again and keeps up with the others.
    let acked = workload.acked();
    workload.wait_acked(acked + 300, PROGRESS, "after the flood");
    let history = workload.finish();
    assert_no_acknowledged_write_lost(&cluster, &history, &ids);
    cluster.wait_converged(&ids, CONVERGE);
    let mut last = String::new();
    let snapshotted = poll(PROGRESS, || {
        let i = info(&cluster, 2);
        last = format!("{i:?}");
        (i.last_snapshot > snapshot_before).then_some(())
    });
    assert!(
        snapshotted.is_some(),
        "node 2 took no snapshot after the flood: {last}"
    );
    let log = cluster.log_since_start(2);
    assert!(
        log.contains("Too many open files"),
        "the flood never exhausted node 2's descriptors:\n{}",
        &log[log.len().saturating_sub(3000)..]
    );
    assert!(
        !log.contains("panicked") && !log.contains("Fatal"),
        "node 2 failed:\n{log}"
    );
}

/// How a test damages a log file.
#[derive(Clone, Copy, Debug)]
enum Damage {
    /// 4 KB cut off the end.
    Truncate,
    /// 64 bytes of garbage 4 KB before the end.
    Garble,
    /// One bit flipped in the last copy of a value the test wrote.
    FlipBit,
    /// The file emptied.
    Empty,
}

/// Damages sled's main file in `data_dir` (the node must be down).
fn damage(data_dir: &Path, how: Damage, marker: &[u8]) {
    let path = data_dir.join("raft").join("db");
    let mut bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let len = bytes.len();
    match how {
        Damage::Truncate => bytes.truncate(len.saturating_sub(4096)),
        Damage::Garble => {
            let at = len.saturating_sub(4096);
            let mut x: u32 = 0x9e37_79b9;
            for b in &mut bytes[at..(at + 64).min(len)] {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *b = x as u8;
            }
        }
        Damage::FlipBit => {
            let at = bytes
                .windows(marker.len())
                .rposition(|w| w == marker)
                .unwrap_or_else(|| panic!("the marker is not in {}", path.display()));
            bytes[at + marker.len() / 2] ^= 0x04;
        }
        Damage::Empty => bytes.clear(),
    }
    std::fs::write(&path, &bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// A one-node cluster: acknowledged writes, kill -9, the log damaged, a restart. `Ok`
/// with what happened when the node refused to start (saying why) or started with every
/// acknowledged write; `Err` when it started and lost some, silently.
fn lone_node_damage_story(how: Damage, extra: &[&str]) -> Result<String, String> {
    let options = Options {
        extra: extra.iter().map(|s| s.to_string()).collect(),
        ..Options::default()
    };
    let mut cluster = Cluster::start(&format!("damage-{how:?}"), 1, options);
    let marker = b"MARKER-VALUE-0123456789-ABCDEFGHIJ";
    let mut c = cluster.conn_with_timeout(1, CALL_TIMEOUT).expect("connect");
    let keys: Vec<String> = (0..3_000).map(|i| format!("k:{i}")).collect();
    for chunk in keys.chunks(100) {
        let cmds: Vec<Vec<&str>> = chunk.iter().map(|k| vec!["SET", k, k]).collect();
        c.send(&cmds).expect("send SETs");
        for k in chunk {
            assert_eq!(c.recv().expect("a reply"), Value::Okay, "SET {k}");
        }
    }
    assert_eq!(
        c.call(&[b"SET".as_slice(), b"marked", marker])
            .expect("SET marked"),
        Value::Okay
    );
    drop(c);
    cluster.kill9(1);
    damage(cluster.node(1).data_dir(), how, marker);

    cluster.node_mut(1).spawn();
    if let Some(status) = cluster.node_mut(1).wait_exit(Duration::from_secs(10)) {
        let log = cluster.log_since_start(1);
        return Ok(format!(
            "refused to start ({status}): {}",
            last_error_line(&log)
        ));
    }
    cluster.node_mut(1).wait_ready();
    let mut c = cluster.conn_with_timeout(1, CALL_TIMEOUT).expect("connect");
    let mut missing = Vec::new();
    for k in &keys {
        match c.call(&["GET", k]) {
            Ok(Value::BulkString(v)) if v == k.as_bytes() => {}
            other => missing.push(format!("{k}: {other:?}")),
        }
    }
    match c.call(&["GET", "marked"]) {
        Ok(Value::BulkString(v)) if v == marker => {}
        other => missing.push(format!("marked: {other:?}")),
    }
    if missing.is_empty() {
        Ok("started with every acknowledged write".into())
    } else {
        Err(format!(
            "started and lost {} acknowledged writes silently, e.g. {}",
            missing.len(),
            missing
                .iter()
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
                .join("; ")
        ))
    }
}

fn last_error_line(log: &str) -> String {
    log.lines()
        .rev()
        .find(|l| l.contains("ERROR") || l.contains("Error:"))
        .unwrap_or("(no error line)")
        .to_string()
}

#[test]
fn a_damaged_log_on_a_lone_node_is_refused_never_silently_short() {
    for how in [
        Damage::Truncate,
        Damage::Garble,
        Damage::FlipBit,
        Damage::Empty,
    ] {
        match lone_node_damage_story(how, &[]) {
            Ok(what) => {
                eprintln!("{how:?}: {what}");
                if what.starts_with("refused") {
                    assert!(
                        what.contains("--join") || what.contains("backup"),
                        "{how:?}: the refusal does not say what to do: {what}"
                    );
                }
            }
            Err(loss) => panic!("{how:?}: {loss}"),
        }
    }
}

/// The self-test: with the log's checks skipped, the damaged-log story must find lost
/// writes. If it did not, it could not catch a log store that loses them.
#[test]
fn the_damaged_log_story_catches_a_node_that_skips_its_checks() {
    let outcome = lone_node_damage_story(Damage::Truncate, &["--unsafe", "skip-log-checks"]);
    match outcome {
        Err(loss) => eprintln!("as required, without checks: {loss}"),
        Ok(what) => panic!(
            "with --unsafe skip-log-checks the damaged-log story saw nothing wrong ({what}): \
             it cannot catch a node that loses acknowledged writes"
        ),
    }
}

#[test]
fn a_follower_with_a_damaged_log_catches_up_before_it_votes() {
    let mut cluster = Cluster::start("damage-follower", 3, Options::default());
    let ids = cluster.ids();
    let marker = b"FOLLOWER-MARKER-0123456789-ABCDEFGH";
    let workload = Workload::start(cluster.addrs(&ids), 6);
    workload.wait_acked(300, PROGRESS, "before the damage");
    for how in [
        Damage::Truncate,
        Damage::Garble,
        Damage::FlipBit,
        Damage::Empty,
    ] {
        let leader = cluster.wait_leader(&ids, ELECTION);
        let follower = *ids.iter().find(|&&id| id != leader).expect("a follower");
        let key = format!("marked:{how:?}");
        assert_eq!(
            cluster.call(
                leader,
                &["SET", &key, std::str::from_utf8(marker).expect("ascii")]
            ),
            Value::Okay
        );
        // The marked value is on the follower's disk (a linearizable read there has applied
        // it, and applied entries were flushed) before the follower goes down.
        assert_eq!(
            cluster.call(follower, &["GET", &key]),
            Value::BulkString(marker.to_vec())
        );

        // The follower goes down; its log is damaged.
        cluster.kill9(follower);
        damage(cluster.node(follower).data_dir(), how, marker);
        let acked = workload.acked();
        workload.wait_acked(acked + 100, PROGRESS, "while the follower is down");

        // It starts again and either refuses, saying why, or reports itself behind,
        // neither votes nor leads meanwhile, and catches up from the others.
        cluster.node_mut(follower).spawn();
        if let Some(status) = cluster.node_mut(follower).wait_exit(Duration::from_secs(5)) {
            let log = cluster.log_since_start(follower);
            let why = last_error_line(&log);
            eprintln!("{how:?}: node {follower} refused to start ({status}): {why}");
            assert!(
                why.contains("--join") || why.contains("move"),
                "{how:?}: {why}"
            );
            // What the refusal says to do: forget it, wipe it, add it back.
            assert_eq!(
                cluster.call(leader, &["CLUSTER", "FORGET", &follower.to_string()]),
                Value::Okay
            );
            cluster.rejoin_empty(follower, leader);
        } else {
            cluster.node_mut(follower).wait_ready();
            let log = cluster.log_since_start(follower);
            if log.contains("holds less than this node had flushed") {
                assert!(
                    log.contains("it will not vote or lead until it has caught up"),
                    "{how:?}: node {follower} behind its watermark did not stop voting:\n{log}"
                );
                eprintln!("{how:?}: node {follower} started behind its watermark");
            } else {
                eprintln!("{how:?}: node {follower} started with everything it had flushed");
            }
        }
        let caught_up = poll(CONVERGE, || {
            (info_field(&cluster, follower, "raft_catch_up_floor").as_deref() == Some("none"))
                .then_some(())
        });
        assert!(
            caught_up.is_some(),
            "{how:?}: node {follower} never caught up"
        );
        assert_eq!(
            cluster.call(follower, &["GET", &key]),
            Value::BulkString(marker.to_vec()),
            "{how:?}"
        );
    }
    let acked = workload.acked();
    workload.wait_acked(acked + 100, PROGRESS, "after the damage");
    let history = workload.finish();
    assert_no_acknowledged_write_lost(&cluster, &history, &ids);
    cluster.wait_converged(&ids, CONVERGE);
}

#[test]
fn a_dead_member_is_forgotten_while_a_join_is_under_way() {
    let mut cluster = Cluster::start("forget-during-join", 3, Options::default());
    let ids = cluster.ids();
    let leader = cluster.wait_leader(&ids, ELECTION);
    let dead = *ids.iter().find(|&&id| id != leader).expect("a follower");
    let workload = Workload::start(cluster.addrs(&ids), 4);
    workload.wait_acked(200, PROGRESS, "before the changes");

    // A member dies; a new node joins; the dead one is forgotten while the join goes on
    // (the removal waits for the join's change if it meets it).
    cluster.kill9(dead);
    cluster.join(4, leader);
    let mut c = cluster
        .conn_with_timeout(leader, Duration::from_secs(30))
        .expect("connect");
    let reply = c
        .call(&["CLUSTER", "FORGET", &dead.to_string()])
        .expect("CLUSTER FORGET");
    assert_eq!(reply, Value::Okay, "{}", show_value(&reply));

    // The group ends with the two survivors and the new node as voters, and writes go on.
    let alive: Vec<u64> = ids
        .iter()
        .copied()
        .filter(|&id| id != dead)
        .chain([4])
        .collect();
    let mut last = String::new();
    let settled = poll(PROGRESS, || {
        let i = info(&cluster, leader);
        last = format!("{i:?}");
        let mut voters = i.voters.clone().unwrap_or_default();
        voters.sort_unstable();
        let mut want = alive.clone();
        want.sort_unstable();
        (voters == want).then_some(())
    });
    assert!(settled.is_some(), "voters never became {alive:?}: {last}");
    let acked = workload.acked();
    workload.wait_acked(acked + 200, PROGRESS, "after the changes");
    let history = workload.finish();
    cluster.discard(dead);
    assert_no_acknowledged_write_lost(&cluster, &history, &alive);
    cluster.wait_converged(&alive, CONVERGE);
}

/// What a forged request gets from a real node: a status, never a crash.
fn forged(
    addr: &str,
    what: &str,
    call: impl std::future::Future<
        Output = Result<tonic::Response<rpc::pb::raft::RaftReply>, tonic::Status>,
    >,
) {
    let _ = addr;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    match rt.block_on(call) {
        Err(s) => {
            assert_eq!(s.code(), tonic::Code::InvalidArgument, "{what}: {s}");
            eprintln!("{what}: refused ({})", s.message());
        }
        Ok(r) => panic!("{what}: accepted: {r:?}"),
    }
}

#[test]
fn forged_peer_messages_with_extreme_fields_never_crash_a_node() {
    use openraft::raft::{AppendEntriesRequest, TransferLeaderRequest, VoteRequest};
    use openraft::vote::RaftLeaderIdExt;
    use raft::typ::{LogId, SnapshotMeta, Vote};
    use raft::TypeConfig;
    use rpc::message::{Envelope, SnapshotHeader, VoteCall};
    use rpc::pb::raft as rpb;

    let mut cluster = Cluster::start("forged", 3, Options::default());
    let ids = cluster.ids();
    let leader = cluster.wait_leader(&ids, ELECTION);
    let target = *ids.iter().find(|&&id| id != leader).expect("a follower");
    let addr = cluster.node(target).grpc_addr();
    let leader_id = |term: u64, node: u64| {
        <TypeConfig as openraft::RaftTypeConfig>::LeaderId::new_committed(term, node)
    };
    let log_id = |term: u64, index: u64| LogId::new(leader_id(term, leader), index);
    fn to<T>(target: u64, body: T) -> Envelope<T> {
        Envelope {
            group_id: cluster::FIRST_DATA_GROUP,
            target,
            body,
        }
    }
    let envelope = |body| to(target, body);
    let client = || {
        let addr = addr.clone();
        async move {
            rpb::raft_client::RaftClient::connect(format!("http://{addr}"))
                .await
                .expect("connect to the peer port")
        }
    };

    for round in 0..2 {
        // A vote and a pre-vote with the largest term there is.
        for pre_vote in [false, true] {
            let msg = rpb::VoteRequest::try_from(envelope(VoteCall::<TypeConfig> {
                pre_vote,
                req: VoteRequest::new(Vote::new(u64::MAX, 9), None),
            }))
            .expect("encode");
            forged(
                &addr,
                &format!("round {round}: vote term u64::MAX (pre_vote {pre_vote})"),
                async { client().await.vote(msg).await },
            );
        }
        // AppendEntries from such a leader, and one naming an absurd index.
        for (what, vote, prev) in [
            (
                "append term u64::MAX",
                Vote::new_committed(u64::MAX, 9),
                None,
            ),
            (
                "append index u64::MAX",
                Vote::new_committed(3, 9),
                Some(log_id(3, u64::MAX)),
            ),
        ] {
            let msg = rpb::AppendEntriesRequest::try_from(to(
                target,
                AppendEntriesRequest::<TypeConfig> {
                    vote,
                    prev_log_id: prev,
                    entries: vec![],
                    leader_commit: None,
                },
            ))
            .expect("encode");
            forged(&addr, what, async {
                client().await.append_entries(msg).await
            });
        }
        // TransferLeader from a leader with the largest term.
        let msg = rpb::TransferLeaderRequest::try_from(to(
            target,
            TransferLeaderRequest::<TypeConfig>::new(
                Vote::new_committed(u64::MAX, 9),
                target,
                None,
            ),
        ))
        .expect("encode");
        forged(&addr, "transfer term u64::MAX", async {
            client().await.transfer_leader(msg).await
        });
        // A snapshot covering the largest index.
        let header = rpb::SnapshotChunk::try_from(to(
            target,
            SnapshotHeader::<TypeConfig> {
                vote: Vote::new_committed(3, 9),
                meta: SnapshotMeta {
                    last_log_id: Some(log_id(3, u64::MAX - 1)),
                    last_membership: Default::default(),
                },
            },
        ))
        .expect("encode");
        forged(&addr, "snapshot index u64::MAX-1", async {
            client()
                .await
                .install_snapshot(tokio_stream::iter(vec![header]))
                .await
        });

        // The node is up, in a sane term, and the cluster writes through it.
        let i = info(&cluster, target);
        assert!(i.term < 1_000, "node {target} is in term {}", i.term);
        let key = format!("after-forged:{round}");
        assert_eq!(cluster.call(target, &["SET", &key, "ok"]), Value::Okay);
        // And it stays so across a restart (nothing extreme was saved).
        cluster.kill9(target);
        cluster.restart(target);
        cluster.wait_leader(&ids, ELECTION);
        assert_eq!(
            cluster.call(target, &["GET", &key]),
            Value::BulkString(b"ok".to_vec())
        );
    }
}

#[test]
fn a_joiner_that_never_answers_stays_a_learner_and_can_be_forgotten() {
    let cluster = Cluster::start("join-dead", 1, Options::default());
    cluster.wait_leader(&[1], ELECTION);
    assert_eq!(cluster.call(1, &["SET", "a", "1"]), Value::Okay);

    // Node 9 asks to join with an address where nothing listens.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let pool = rpc::PeerPool::new(rpc::PoolConfig::default());
    let grpc = cluster.node(1).grpc_addr();
    let join = rpc::Join {
        node_id: 9,
        resp_addr: "127.0.0.1:1".into(),
        grpc_addr: dead.to_string(),
        hostname: String::new(),
        forwarded: false,
        group: None,
    };
    let answer = rt.block_on(async {
        let mut peer = pool.node(&grpc).expect("a peer client");
        peer.join(join).await
    });
    let status = answer.expect_err("a joiner that never answered was admitted");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status}");
    assert!(status.message().contains("still catching up"), "{status}");

    // It is a learner, not a voter: the group keeps its quorum and writes go on.
    let i = info(&cluster, 1);
    assert_eq!(i.voters, Some(vec![1]), "{i:?}");
    assert_eq!(
        info_field(&cluster, 1, "raft_learners").as_deref(),
        Some("9")
    );
    assert_eq!(cluster.call(1, &["SET", "b", "2"]), Value::Okay);
    // Cluster clients are not told of it: a learner still copying the log (here, never
    // answering) is no replica to send reads to.
    let nodes = match cluster.call(1, &["CLUSTER", "NODES"]) {
        Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
        Value::VerbatimString { text, .. } => text,
        other => panic!("CLUSTER NODES: {other:?}"),
    };
    assert_eq!(nodes.lines().count(), 1, "{nodes}");
    assert!(!nodes.contains(&types::node_name(9)), "{nodes}");

    // CLUSTER FORGET removes it.
    assert_eq!(cluster.call(1, &["CLUSTER", "FORGET", "9"]), Value::Okay);
    assert_eq!(
        info_field(&cluster, 1, "raft_learners").as_deref(),
        Some("")
    );
    assert_eq!(cluster.call(1, &["SET", "c", "3"]), Value::Okay);
}

#[test]
fn sigterm_ends_a_stuck_node_within_its_budget_and_a_second_signal_at_once() {
    let options = Options {
        extra: vec!["--shutdown-timeout".into(), "3".into()],
        ..Options::default()
    };
    let mut cluster = Cluster::start("sigterm", 3, options);
    let ids = cluster.ids();
    for round in ["budget", "second signal"] {
        let leader = cluster.wait_leader(&ids, ELECTION);
        let others: Vec<u64> = ids.iter().copied().filter(|&i| i != leader).collect();
        // The leader loses its quorum (the others are stopped) with a client's write in
        // flight: the write cannot commit, and the connection will not drain.
        let paused = cluster.pause(&others);
        let addr = cluster.addr(leader);
        let writer = std::thread::spawn(move || {
            let mut c = crate::harness::Conn::connect(addr);
            let _ = c.writer().set_read_timeout(Some(Duration::from_secs(30)));
            let _ = c.call(&["SET", "stuck", "write"]);
        });
        std::thread::sleep(Duration::from_millis(300));
        let started = Instant::now();
        cluster.signal(leader, "TERM");
        if round == "second signal" {
            std::thread::sleep(Duration::from_millis(300));
            cluster.signal(leader, "TERM");
        }
        let status = cluster
            .node_mut(leader)
            .wait_exit(Duration::from_secs(10))
            .unwrap_or_else(|| panic!("{round}: node {leader} still runs 10 s after SIGTERM"));
        let took = started.elapsed();
        eprintln!("{round}: node {leader} exited ({status}) after {took:?}");
        match round {
            "budget" => {
                assert_eq!(status.code(), Some(1), "{round}: {status}");
                assert!(took < Duration::from_secs(5), "{round}: {took:?}");
                let log = cluster.log_since_start(leader);
                assert!(
                    log.contains("shutdown did not finish within its budget"),
                    "{log}"
                );
            }
            _ => {
                assert_eq!(status.code(), Some(130), "{round}: {status}");
                assert!(took < Duration::from_millis(1500), "{round}: {took:?}");
            }
        }
        paused.resume();
        let _ = writer.join();
        cluster.restart(leader);
    }
    cluster.wait_leader(&ids, ELECTION);
}

#[test]
fn sigterm_ends_a_node_with_a_long_read_on_every_worker() {
    // Six clients loop KEYS * over 200,000 keys on a node with two runtime workers: every
    // worker is running a long read when the signal comes. The node still stops taking
    // requests, lets each read end, and exits within its budget (measured: 0.5 s, exit 0).
    let options = Options {
        extra: vec!["--shutdown-timeout".into(), "2".into()],
        ..Options::default()
    };
    let mut cluster = Cluster::start("busy-workers", 1, options);
    let addr = cluster.addr(1);
    let mut loader = crate::harness::Conn::connect(addr);
    for batch in 0..200 {
        let mut mset = vec!["MSET".to_string()];
        for i in 0..1000 {
            mset.push(format!("key:{batch}:{i}"));
            mset.push("v".into());
        }
        assert_eq!(loader.call(&mset).unwrap(), Value::Okay);
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let looping: Vec<_> = (0..6)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let Ok(mut c) = crate::harness::Conn::try_connect(addr) else {
                    return 0;
                };
                let _ = c.writer().set_read_timeout(Some(Duration::from_secs(10)));
                let mut rounds = 0;
                // Bounded: at most 200 rounds, and it stops with the node.
                while rounds < 200 && !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if c.call(&["KEYS", "*"]).is_err() {
                        break;
                    }
                    rounds += 1;
                }
                rounds
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let started = Instant::now();
    cluster.signal(1, "TERM");
    let status = cluster
        .node_mut(1)
        .wait_exit(Duration::from_secs(10))
        .expect("the busy node still runs 10 s after SIGTERM");
    let took = started.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let rounds: Vec<u32> = looping.into_iter().map(|t| t.join().unwrap()).collect();
    eprintln!("busy node exited ({status}) after {took:?}; KEYS rounds per client {rounds:?}");
    assert!(
        rounds.iter().all(|&r| r > 0),
        "every client was served before: {rounds:?}"
    );
    assert!(took < Duration::from_secs(4), "{took:?}");
}

#[test]
fn the_cluster_secret_keeps_out_every_call_without_it() {
    use rpc::{Forward, Join, Leave, PeerPool, PeerSecret, PoolConfig};

    let dir = std::env::temp_dir().join(format!("redraft-secret-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a directory for the secret");
    let file = dir.join("secret");
    let right = "a-cluster-secret-of-32-bytes-0001";
    std::fs::write(&file, format!("{right}\n")).expect("write the secret");
    let options = Options {
        extra: vec!["--cluster-secret-file".into(), file.display().to_string()],
        ..Options::default()
    };
    let mut cluster = Cluster::start("secret", 3, options);
    let ids = cluster.ids();
    let leader = cluster.wait_leader(&ids, ELECTION);
    for i in 0..100 {
        let key = format!("kept:{i}");
        assert_eq!(cluster.call(leader, &["SET", &key, "v"]), Value::Okay);
    }

    // Calls from processes that reach the gRPC port without the secret, or with another.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let addr = cluster.node(leader).grpc_addr();
    let peer = |secret: Option<&str>| {
        let secret = secret.map(|s| PeerSecret::new(s.as_bytes()).expect("long enough"));
        let pool = PeerPool::new(PoolConfig {
            secret,
            ..PoolConfig::default()
        });
        pool.node(&addr).expect("a client")
    };
    let flushall = kv::Proposal::Command {
        args: vec!["FLUSHALL".into()],
        seed: 0,
    };
    for secret in [None, Some("another-secret-also-32-bytes-0002")] {
        let mut p = rt.block_on(async { peer(secret) });
        let refused = |what: &str, status: tonic::Status| {
            assert_eq!(
                status.code(),
                tonic::Code::Unauthenticated,
                "{what} with secret {secret:?}: {status}"
            );
        };
        let forward = Forward {
            group_id: cluster::FIRST_DATA_GROUP,
            args: Vec::new(),
            proto_version: 3,
            seed: None,
            proposal: Some(flushall.encode().into()),
        };
        match rt.block_on(p.forward(forward)) {
            Err(s) => refused("a forwarded FLUSHALL", s),
            Ok(reply) => panic!("a forwarded FLUSHALL was taken: {reply:?}"),
        }
        let join = Join {
            node_id: 9,
            resp_addr: "127.0.0.1:1".into(),
            grpc_addr: "127.0.0.1:2".into(),
            hostname: String::new(),
            forwarded: false,
            group: None,
        };
        match rt.block_on(p.join(join)) {
            Err(s) => refused("a join", s),
            Ok(()) => panic!("a fake node joined"),
        }
        let leave = Leave {
            node_id: *ids.iter().find(|&&i| i != leader).expect("a follower"),
            group: None,
        };
        match rt.block_on(p.leave(leave)) {
            Err(s) => refused("a leave", s),
            Ok(()) => panic!("a member was removed"),
        }
        match rt.block_on(p.read_index(cluster::FIRST_DATA_GROUP)) {
            Err(s) => refused("a read index", s),
            Ok(r) => panic!("a read index was served: {r:?}"),
        }
        match rt.block_on(p.status()) {
            Err(s) => refused("a status", s),
            Ok(s) => panic!("the status was served: {s:?}"),
        }
    }
    // The Raft service too: a vote for a candidate that does not exist, without it.
    {
        use openraft::raft::VoteRequest;
        use raft::typ::Vote;
        use rpc::message::{Envelope, VoteCall};
        use rpc::pb::raft as rpb;
        let msg = rpb::VoteRequest::try_from(Envelope {
            group_id: cluster::FIRST_DATA_GROUP,
            target: leader,
            body: VoteCall::<raft::TypeConfig> {
                pre_vote: false,
                req: VoteRequest::new(Vote::new(1_000, 9), None),
            },
        })
        .expect("encode");
        let vote = rt.block_on(async {
            let mut client = rpb::raft_client::RaftClient::connect(format!("http://{addr}"))
                .await
                .expect("connect to the peer port");
            client.vote(msg).await
        });
        match vote {
            Err(s) => assert_eq!(s.code(), tonic::Code::Unauthenticated, "a vote: {s}"),
            Ok(r) => panic!("a vote was taken: {r:?}"),
        }
    }
    // The same client with the secret is served: the refusals were the secret's.
    let mut p = rt.block_on(async { peer(Some(right)) });
    rt.block_on(p.status()).expect("status with the secret");
    for &id in &ids {
        assert_eq!(
            cluster.call(id, &["DBSIZE"]),
            Value::Int(100),
            "node {id} lost nothing"
        );
        let info = cluster.raft_info(id).expect("INFO");
        assert_eq!(info.voters, Some(ids.clone()), "node {id}'s voters");
        assert!(
            info.term < 1_000,
            "node {id} took the vote's term: {}",
            info.term
        );
    }

    // A node started with another secret cannot join: every node refuses it.
    std::fs::write(&file, "another-secret-also-32-bytes-0002").expect("write");
    cluster.join(4, leader);
    let refused = poll(CONVERGE, || {
        let log = cluster.log_since_start(4);
        log.contains("cluster secret is another").then_some(log)
    });
    assert!(refused.is_some(), "node 4 was not told its secret is wrong");
    let info = cluster.raft_info(leader).expect("INFO");
    assert_eq!(info.voters, Some(ids.clone()), "node 4 is no member");
    let nodes = cluster.call(leader, &["CLUSTER", "NODES"]);
    assert!(
        !show_value(&nodes).contains(&types::node_name(4)),
        "{}",
        show_value(&nodes)
    );
    cluster.discard(4);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn protected_mode_takes_remote_clients_only_with_a_password() {
    use std::process::{Command, Stdio};

    if !may_mount("protected mode (a network namespace)") {
        return;
    }
    let ns = namespace_with_address();
    let dir = std::env::temp_dir().join(format!("redraft-protected-{}", std::process::id()));
    let cli = |host: &str, extra: &[&str]| -> String {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns.name,
                "redis-cli",
                "-h",
                host,
                "-p",
                "6390",
            ])
            .args(extra)
            .arg("PING")
            .output()
            .expect("run redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let cases: [(&str, &[&str], &str); 3] = [
        (
            "protected",
            &[],
            "DENIED Redis is running in protected mode",
        ),
        ("unprotected", &["--protected-mode", "no"], "PONG"),
        (
            "password",
            &["--requirepass", "a-password-for-the-tests"],
            "NOAUTH",
        ),
    ];
    for (case, flags, remote) in cases {
        let data = dir.join(case);
        let mut node = Command::new("ip")
            .args(["netns", "exec", &ns.name])
            .arg(crate::nodes::redraft_bin())
            .args(["--bind", "0.0.0.0", "--port", "6390", "--grpc-port", "7390"])
            .arg("--data-dir")
            .arg(&data)
            .args(flags)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redraft in the namespace");
        let password = ["-a", "a-password-for-the-tests", "--no-auth-warning"];
        let local = poll(CONVERGE, || {
            let reply = cli("127.0.0.1", &password);
            (reply == "PONG").then_some(reply)
        });
        assert!(local.is_some(), "{case}: a loopback client was not served");
        let got = cli("10.77.0.1", &[]);
        assert!(got.contains(remote), "{case}: a remote client got {got:?}");
        if case == "password" {
            assert_eq!(
                cli("10.77.0.1", &password),
                "PONG",
                "{case}: with the password"
            );
        }
        // `ip netns exec` runs redraft in its own place: this PID is the node's.
        let _ = Command::new("kill")
            .args(["-TERM", &node.id().to_string()])
            .status();
        let _ = node.wait();
    }
    drop(ns);
    let _ = std::fs::remove_dir_all(&dir);
}
