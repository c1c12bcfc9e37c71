//! Slot moves between Raft groups on real processes: a move under writes that every node
//! agrees on afterwards, a crash of the mover at every step boundary (the move resumes on
//! the next meta leader and nothing is lost or kept twice), a cancelled move, and two
//! moves of one slot at once (the second is refused).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::Value;

use crate::harness::{error_text, show_value};
use crate::nodes::{poll, Cluster, Options};

/// Longest a move of a few thousand keys may take in a debug build on two shared cores.
const MOVE_WAIT: Duration = Duration::from_secs(60);

/// Four data groups over three nodes: group 1 holds slots 0-4095, group 3 8192-12287.
fn options() -> Options {
    Options {
        raft_groups: Some(4),
        ..Options::default()
    }
}

/// A hash tag whose keys hash to `slot`.
fn tag(slot: u16) -> String {
    (0u64..)
        .map(|i| format!("m{i}"))
        .find(|t| types::key_slot(t.as_bytes()).0 == slot)
        .expect("every slot has a tag")
}

fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::VerbatimString { text, .. } => text.clone(),
        Value::Int(n) => n.to_string(),
        Value::Nil => String::new(),
        Value::Okay => "OK".into(),
        other => show_value(other),
    }
}

/// `CLUSTER MIGRATESLOTS SLOTSRANGE first last GROUP group` through node `via`: its reply
/// (an error reply fails the test).
fn migrate(cluster: &Cluster, via: u64, first: &str, last: &str, group: &str) -> Value {
    cluster.call(
        via,
        &[
            "CLUSTER",
            "MIGRATESLOTS",
            "SLOTSRANGE",
            first,
            last,
            "GROUP",
            group,
        ],
    )
}

/// `CLUSTER GETSLOTMIGRATIONS` on node `id`: each job's fields by name.
fn jobs(cluster: &Cluster, id: u64) -> Vec<BTreeMap<String, String>> {
    let Value::Array(jobs) = cluster.call(id, &["CLUSTER", "GETSLOTMIGRATIONS"]) else {
        panic!("GETSLOTMIGRATIONS is an array");
    };
    jobs.iter()
        .map(|job| {
            let pairs: Vec<(String, String)> = match job {
                Value::Array(items) => items
                    .chunks(2)
                    .map(|kv| (text(&kv[0]), text(&kv[1])))
                    .collect(),
                Value::Map(pairs) => pairs.iter().map(|(k, v)| (text(k), text(v))).collect(),
                other => panic!("a job is {}", show_value(other)),
            };
            pairs.into_iter().collect()
        })
        .collect()
}

/// Waits until job `name` has finished (asking node `id`); its state.
fn wait_job(cluster: &Cluster, id: u64, name: &str) -> BTreeMap<String, String> {
    let mut last = BTreeMap::new();
    poll(MOVE_WAIT, || {
        let found = jobs(cluster, id).into_iter().find(|j| j["name"] == name)?;
        last = found.clone();
        matches!(found["state"].as_str(), "done" | "aborted").then_some(found)
    })
    .unwrap_or_else(|| panic!("job {name} never finished: {last:?}"))
}

/// The id of the meta group's leader, as node `id` sees it.
fn meta_leader(cluster: &Cluster, id: u64) -> Option<u64> {
    let text = text(&cluster.try_call(id, &["INFO", "replication"]).ok()?);
    let line = redraft_tests::info::field(&text, "raft_meta")?;
    line.split(',')
        .find_map(|kv| kv.strip_prefix("leader="))
        .and_then(|l| l.parse().ok())
}

/// `CLUSTER SLOTS` as (first, last, master port) triples, on node `id`.
fn slot_map(cluster: &Cluster, id: u64) -> Vec<(i64, i64, String)> {
    let Value::Array(ranges) = cluster.call(id, &["CLUSTER", "SLOTS"]) else {
        panic!("CLUSTER SLOTS is an array");
    };
    let mut out: Vec<(i64, i64, String)> = ranges
        .iter()
        .map(|r| match r {
            Value::Array(e) => {
                let (Value::Int(a), Value::Int(b)) = (&e[0], &e[1]) else {
                    panic!("a range is {}", show_value(r));
                };
                // A group whose leader has not announced its address yet lists none.
                (*a, *b, e.get(2).map(show_value).unwrap_or_default())
            }
            other => panic!("a range is {}", show_value(other)),
        })
        .collect();
    out.sort();
    out
}

/// Every slot covered once, and the same map on every node (waits for the nodes to
/// settle on it); the map.
fn same_slots_everywhere(cluster: &Cluster) -> Vec<(i64, i64, String)> {
    let ids = cluster.running();
    let mut last = String::new();
    poll(Duration::from_secs(10), || {
        let maps: Vec<_> = ids.iter().map(|&id| slot_map(cluster, id)).collect();
        last = format!("{maps:?}");
        let first = &maps[0];
        let mut next = 0;
        for (a, b, master) in first {
            if *a != next || master.is_empty() {
                return None;
            }
            next = b + 1;
        }
        (next == 16384 && maps.iter().all(|m| m == first)).then(|| first.clone())
    })
    .unwrap_or_else(|| panic!("the nodes never agreed on a full slot map: {last}"))
}

/// Writes `n` keys `{tag}:i` = `v{i}` into `slot` through node `id`.
fn fill(cluster: &Cluster, id: u64, slot: u16, n: usize) -> String {
    let tag = tag(slot);
    for part in (0..n).collect::<Vec<_>>().chunks(500) {
        let mut args: Vec<String> = vec!["MSET".into()];
        for i in part {
            args.push(format!("{{{tag}}}:{i}"));
            args.push(format!("v{i}"));
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        cluster.call(id, &refs);
    }
    tag
}

/// Every key of [`fill`] reads back from node `id`, and the slot holds exactly them.
fn check_filled(cluster: &Cluster, id: u64, slot: u16, tag: &str, n: usize, more: usize) {
    let keys: Vec<String> = (0..n).map(|i| format!("{{{tag}}}:{i}")).collect();
    for part in keys.chunks(500) {
        let mut args = vec!["MGET"];
        args.extend(part.iter().map(String::as_str));
        let Value::Array(values) = cluster.call(id, &args) else {
            panic!("MGET is an array");
        };
        for (key, v) in part.iter().zip(values) {
            let i = key.rsplit(':').next().unwrap();
            assert_eq!(text(&v), format!("v{i}"), "node {id}: {key}");
        }
    }
    let count = cluster.call(id, &["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()]);
    assert_eq!(
        count,
        Value::Int((n + more) as i64),
        "node {id}: keys in slot {slot}"
    );
}

/// The keys of `slot` node `id`'s replica of `group` holds.
fn group_slot_keys(cluster: &Cluster, id: u64, group: u64, slot: u16) -> i64 {
    match cluster.call(
        id,
        &[
            "DEBUG",
            "GROUP-SLOT-KEYS",
            &group.to_string(),
            &slot.to_string(),
        ],
    ) {
        Value::Int(n) => n,
        other => panic!("GROUP-SLOT-KEYS: {}", show_value(&other)),
    }
}

/// After a move of `slot` from group `from` to `to`: on every node the target's replica
/// holds the slot's `n` keys and the source's none (waiting for the replicas to apply).
fn moved_everywhere(cluster: &Cluster, slot: u16, from: u64, to: u64, n: i64) {
    for id in cluster.running() {
        let settled = poll(Duration::from_secs(10), || {
            (group_slot_keys(cluster, id, to, slot) == n
                && group_slot_keys(cluster, id, from, slot) == 0)
                .then_some(())
        });
        assert!(
            settled.is_some(),
            "node {id}: group {to} holds {} keys of slot {slot} (want {n}), group {from} {}",
            group_slot_keys(cluster, id, to, slot),
            group_slot_keys(cluster, id, from, slot)
        );
    }
}

#[test]
fn a_slot_moves_under_writes_and_every_node_agrees() {
    let cluster = Cluster::start("moves", 3, options());
    let before = same_slots_everywhere(&cluster);
    assert_eq!(before.len(), 4);
    let (slot, other) = (100u16, 101u16);
    let keys = 3_000;
    let tag = fill(&cluster, 1, slot, keys);
    let other_tag = fill(&cluster, 2, other, 200);

    // Writers on every node append to a list in the moving slot and count in another
    // group's slot, until the move is over (bounded: 20 s or 4,000 appends).
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (1..=3u64)
        .map(|id| {
            let (stop, list) = (stop.clone(), format!("{{{tag}}}:list"));
            let mut conn = cluster
                .conn_with_timeout(id, Duration::from_secs(20))
                .unwrap();
            std::thread::spawn(move || {
                let (mut acked, mut tryagain, mut other) = (Vec::new(), 0, Vec::new());
                let started = Instant::now();
                for i in 0..4_000u64 {
                    if stop.load(Ordering::Relaxed) || started.elapsed() > Duration::from_secs(20) {
                        break;
                    }
                    let item = format!("{id}-{i}");
                    match conn.call(&["RPUSH", &list, &item]) {
                        Ok(Value::Int(_)) => acked.push(item),
                        Ok(v) if error_text(&v).is_some_and(|e| e.starts_with("TRYAGAIN")) => {
                            tryagain += 1
                        }
                        Ok(v) => other.push(show_value(&v)),
                        Err(e) => other.push(e.to_string()),
                    }
                }
                (acked, tryagain, other)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let reply = migrate(&cluster, 2, "100", "100", "3");
    assert_eq!(text(&reply), "OK");
    let job = jobs(&cluster, 3)
        .into_iter()
        .find(|j| j["slot_ranges"] == "100")
        .expect("the job is listed on every node");
    assert_eq!(
        (job["source_group"].as_str(), job["target_group"].as_str()),
        ("1", "3")
    );
    let done = wait_job(&cluster, 1, &job["name"]);
    assert_eq!(done["state"], "done", "{done:?}");
    assert_eq!(
        done["keys"],
        (keys + 1).to_string(),
        "the list counts too: {done:?}"
    );
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    let mut tryagains = 0;
    for w in writers {
        let (a, t, other) = w.join().unwrap();
        assert!(other.is_empty(), "only TRYAGAIN may come back: {other:?}");
        acked.extend(a);
        tryagains += t;
    }
    eprintln!("{} appends acknowledged, {tryagains} TRYAGAIN", acked.len());

    // The slot is group 3's on every node, and nowhere else.
    let after = same_slots_everywhere(&cluster);
    assert_ne!(after, before);
    let serving: Vec<_> = after
        .iter()
        .filter(|(a, b, _)| *a <= 100 && 100 <= *b)
        .collect();
    assert_eq!(serving.len(), 1);
    assert_eq!((serving[0].0, serving[0].1), (100, 100), "{after:?}");
    moved_everywhere(&cluster, slot, 1, 3, keys as i64 + 1);
    for id in cluster.ids() {
        check_filled(&cluster, id, slot, &tag, keys, 1);
        check_filled(&cluster, id, other, &other_tag, 200, 0);
        // Every acknowledged append is there once, in each writer's order.
        let Value::Array(items) =
            cluster.call(id, &["LRANGE", &format!("{{{tag}}}:list"), "0", "-1"])
        else {
            panic!("LRANGE is an array");
        };
        let items: Vec<String> = items.iter().map(text).collect();
        assert_eq!(
            items.len(),
            acked.len(),
            "node {id}: no append lost or doubled"
        );
        for w in 1..=3 {
            let mine: Vec<&String> = items
                .iter()
                .filter(|i| i.starts_with(&format!("{w}-")))
                .collect();
            let expected: Vec<&String> = acked
                .iter()
                .filter(|i| i.starts_with(&format!("{w}-")))
                .collect();
            assert_eq!(mine, expected, "node {id}: writer {w}'s appends in order");
        }
    }
    let total: i64 = match cluster.call(1, &["DBSIZE"]) {
        Value::Int(n) => n,
        other => panic!("DBSIZE {}", show_value(&other)),
    };
    assert_eq!(total, keys as i64 + 1 + 200, "no key kept twice");
    // redis-cli's cluster tools see a healthy cluster; its key-by-key resharding is
    // refused with a clear error.
    let addr = cluster.addr(1).to_string();
    let check = std::process::Command::new("redis-cli")
        .args(["--cluster", "check", &addr])
        .output()
        .expect("redis-cli");
    let text_out = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success()
            && text_out.contains("All nodes agree about slots configuration")
            && text_out.contains("All 16384 slots covered"),
        "{text_out}"
    );
    // Two masters (the leaders spread over the nodes within seconds of the start).
    let masters: Vec<String> = poll(Duration::from_secs(20), || {
        let nodes = text(&cluster.call(1, &["CLUSTER", "NODES"]));
        let masters: Vec<String> = nodes
            .lines()
            .filter(|l| l.contains("master"))
            .filter_map(|l| l.split(' ').next().map(str::to_string))
            .collect();
        (masters.len() >= 2).then_some(masters)
    })
    .expect("the leaders never spread over two nodes");
    let reshard = std::process::Command::new("redis-cli")
        .args(["--cluster", "reshard", &addr, "--cluster-from", &masters[0]])
        .args([
            "--cluster-to",
            &masters[1],
            "--cluster-slots",
            "5",
            "--cluster-yes",
        ])
        .output()
        .expect("redis-cli");
    let text_out = String::from_utf8_lossy(&reshard.stdout);
    assert!(
        !reshard.status.success() && text_out.contains("use CLUSTER MIGRATESLOTS"),
        "{text_out}"
    );
    let refused = cluster
        .try_call(1, &["CLUSTER", "SETSLOT", "100", "IMPORTING", "x"])
        .unwrap();
    assert!(
        error_text(&refused).is_some_and(|e| e.contains("MIGRATESLOTS")),
        "{}",
        show_value(&refused)
    );
}

#[test]
fn a_move_resumes_after_the_mover_crashes_at_every_step() {
    let mut cluster = Cluster::start("move-crashes", 3, options());
    let points = ["after-freeze", "mid-copy", "after-commit", "after-release"];
    for (i, point) in points.iter().enumerate() {
        let slot = 200 + i as u16;
        let keys = 2_500;
        let tag = fill(&cluster, 1, slot, keys);
        let leader =
            poll(Duration::from_secs(10), || meta_leader(&cluster, 1)).expect("a meta leader");
        cluster.call(leader, &["DEBUG", "SLOTMOVE-FAULT", point, "CRASH"]);
        let asked = if leader == 1 { 2 } else { 1 };
        let s = slot.to_string();
        migrate(&cluster, asked, &s, &s, "3");
        let exited = cluster.node_mut(leader).wait_exit(Duration::from_secs(30));
        assert!(
            exited.is_some(),
            "{point}: the mover on node {leader} never crashed"
        );
        let job = jobs(&cluster, asked)
            .into_iter()
            .find(|j| j["slot_ranges"] == s)
            .expect("the job is journaled");
        // The next meta leader finishes the move while node `leader` is down.
        let done = wait_job(&cluster, asked, &job["name"]);
        assert_eq!(done["state"], "done", "{point}: {done:?}");
        cluster.restart(leader);
        same_slots_everywhere(&cluster);
        moved_everywhere(&cluster, slot, 1, 3, keys as i64);
        for id in cluster.ids() {
            check_filled(&cluster, id, slot, &tag, keys, 0);
        }
        eprintln!("{point}: the move resumed and finished");
    }
}

#[test]
fn a_cancelled_move_leaves_everything_as_it_was_and_one_slot_moves_once() {
    let cluster = Cluster::start("move-cancel", 3, options());
    let slot = 300u16;
    let keys = 2_000;
    let tag = fill(&cluster, 1, slot, keys);
    let before = same_slots_everywhere(&cluster);
    let leader = poll(Duration::from_secs(10), || meta_leader(&cluster, 1)).expect("a meta leader");
    cluster.call(
        leader,
        &["DEBUG", "SLOTMOVE-FAULT", "after-freeze", "PAUSE"],
    );
    let s = slot.to_string();
    migrate(&cluster, 1, &s, &s, "2");
    // A second move of the slot, while the first is in progress, is refused.
    let second = cluster
        .try_call(
            2,
            &[
                "CLUSTER",
                "MIGRATESLOTS",
                "SLOTSRANGE",
                "299",
                "301",
                "GROUP",
                "4",
            ],
        )
        .unwrap();
    let why = error_text(&second).unwrap_or_else(|| panic!("accepted: {}", show_value(&second)));
    assert!(why.contains("already moving"), "{why}");
    // Once frozen, a write to the slot is held and then answered TRYAGAIN, not applied
    // (until then it goes through: the probe writes the value the key holds).
    let probe = format!("{{{tag}}}:0");
    let held = poll(Duration::from_secs(20), || {
        let started = Instant::now();
        let reply = cluster.try_call(3, &["SET", &probe, "v0"]).unwrap();
        match error_text(&reply) {
            Some(e) if e.starts_with("TRYAGAIN") => Some(started.elapsed()),
            Some(e) => panic!("the write got {e}"),
            None => None,
        }
    })
    .expect("the slot was never frozen");
    assert!(held >= Duration::from_millis(400), "held only {held:?}");
    let name = jobs(&cluster, 1)
        .into_iter()
        .find(|j| j["slot_ranges"] == s)
        .unwrap()["name"]
        .clone();
    assert_eq!(
        text(&cluster.call(2, &["CLUSTER", "CANCELSLOTMIGRATIONS"])),
        "OK"
    );
    cluster.call(leader, &["DEBUG", "SLOTMOVE-FAULT", "after-freeze", "OFF"]);
    let ended = wait_job(&cluster, 1, &name);
    assert_eq!(ended["state"], "aborted", "{ended:?}");
    // The same ranges (their masters may have changed: leaders keep balancing).
    let ranges = |m: Vec<(i64, i64, String)>| -> Vec<(i64, i64)> {
        m.into_iter().map(|(a, b, _)| (a, b)).collect()
    };
    assert_eq!(ranges(same_slots_everywhere(&cluster)), ranges(before));
    for id in cluster.ids() {
        check_filled(&cluster, id, slot, &tag, keys, 0);
        assert_eq!(
            group_slot_keys(&cluster, id, 2, slot),
            0,
            "node {id}: nothing staged shows"
        );
    }
    // The slot serves writes again, and can move now.
    cluster.call(3, &["SET", &format!("{{{tag}}}:0"), "v0"]);
    migrate(&cluster, 1, &s, &s, "2");
    let moved = jobs(&cluster, 1)
        .into_iter()
        .filter(|j| j["slot_ranges"] == s)
        .map(|j| j["name"].clone())
        .max_by_key(|n| n.parse::<u64>().unwrap())
        .unwrap();
    assert_ne!(moved, name);
    assert_eq!(wait_job(&cluster, 1, &moved)["state"], "done");
    moved_everywhere(&cluster, slot, 1, 2, keys as i64);
}

/// redis-py's `RedisCluster`: sets and reads back keys in a loop until `stop` exists (at
/// most 120 s); prints its counts and the first errors.
const REDIS_PY_LOOP: &str = r#"
import os, sys, time
from redis.cluster import RedisCluster
from redis.exceptions import RedisError, TryAgainError
host, port, stop = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rc = RedisCluster(host=host, port=port, socket_timeout=10)
ok = tryagain = 0
errors = []
end = time.time() + 120
i = 0
while not os.path.exists(stop) and time.time() < end:
    k = f"py:{i % 300}"
    try:
        rc.set(k, str(i))
        v = rc.get(k)
        if v != str(i).encode():
            errors.append(f"{k}: read {v!r} after writing {i}")
        ok += 1
    except TryAgainError:
        tryagain += 1
    except RedisError as e:
        errors.append(repr(e))
    i += 1
print(f"ok={ok} tryagain={tryagain} nerrors={len(errors)} errors={errors[:5]}")
"#;

/// What a client loop saw.
#[derive(Debug, Default)]
struct Seen {
    ok: u64,
    tryagain: u64,
    errors: Vec<String>,
}

#[test]
fn cluster_clients_keep_working_through_a_rebalance_and_a_node_joining_and_leaving() {
    let options = Options {
        raft_groups: Some(4),
        extra: vec!["--cluster-routing".into(), "redirect".into()],
        ..Options::default()
    };
    let mut cluster = Cluster::start("move-clients", 3, options);
    same_slots_everywhere(&cluster);
    // Every key in group 1 (slots 0-4095): 8 slots of 500 keys.
    // (Through a cluster client: in redirect mode a node answers only for the groups it
    // leads.)
    let hot: Vec<u16> = (0..8).map(|i| 100 + i * 400).collect();
    let addrs = cluster.addrs(&cluster.ids());
    let cluster_con = || {
        let nodes: Vec<String> = addrs.iter().map(|a| format!("redis://{a}")).collect();
        redis::cluster::ClusterClient::new(nodes)
            .unwrap()
            .get_connection()
            .unwrap()
    };
    let mut con = cluster_con();
    for &slot in &hot {
        let tag = tag(slot);
        let mut mset = redis::cmd("MSET");
        for i in 0..500 {
            mset.arg(format!("{{{tag}}}:{i}")).arg(format!("v{i}"));
        }
        mset.query::<()>(&mut con).unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));

    // The redis crate's cluster client: SET then GET of 300 keys in turn.
    let rs = {
        let (stop, nodes) = (stop.clone(), addrs.clone());
        std::thread::spawn(move || {
            let nodes: Vec<String> = nodes.iter().map(|a| format!("redis://{a}")).collect();
            let client = redis::cluster::ClusterClient::new(nodes).unwrap();
            let mut con = client.get_connection().unwrap();
            let mut seen = Seen::default();
            let started = Instant::now();
            for i in 0..200_000u64 {
                if stop.load(Ordering::Relaxed) || started.elapsed() > Duration::from_secs(120) {
                    break;
                }
                let key = format!("rs:{}", i % 300);
                let wrote = redis::cmd("SET").arg(&key).arg(i).query::<()>(&mut con);
                let read =
                    wrote.and_then(|()| redis::cmd("GET").arg(&key).query::<Option<u64>>(&mut con));
                match read {
                    Ok(Some(v)) if v == i => seen.ok += 1,
                    Ok(v) => seen
                        .errors
                        .push(format!("{key}: read {v:?} after writing {i}")),
                    Err(e) if e.code() == Some("TRYAGAIN") => seen.tryagain += 1,
                    Err(e) => seen.errors.push(e.to_string()),
                }
            }
            seen
        })
    };
    // redis-py's RedisCluster, in its own process.
    let stop_file = std::env::temp_dir().join(format!("redraft-py-stop-{}", std::process::id()));
    let _ = std::fs::remove_file(&stop_file);
    let py = std::process::Command::new("/usr/bin/python3")
        .args([
            "-c",
            REDIS_PY_LOOP,
            &addrs[0].ip().to_string(),
            &addrs[0].port().to_string(),
            &stop_file.display().to_string(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 with redis-py");
    // redis-cli -c, one command per process, through node 1 (which stays).
    let cli = {
        let (stop, addr) = (stop.clone(), addrs[0]);
        std::thread::spawn(move || {
            let mut seen = Seen::default();
            for i in 0..2_000u64 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let out = std::process::Command::new("redis-cli")
                    .args([
                        "-c",
                        "-h",
                        &addr.ip().to_string(),
                        "-p",
                        &addr.port().to_string(),
                    ])
                    .args(["SET", &format!("cli:{{{}}}", i % 50), &i.to_string()])
                    .output()
                    .expect("redis-cli");
                let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
                match text.as_str() {
                    "OK" => seen.ok += 1,
                    t if t.contains("TRYAGAIN") => seen.tryagain += 1,
                    t => seen
                        .errors
                        .push(format!("{t} {}", String::from_utf8_lossy(&out.stderr))),
                }
            }
            seen
        })
    };

    // A full rebalance: group 1's keys spread over the four groups.
    std::thread::sleep(Duration::from_millis(500));
    let Value::Array(planned) = cluster.call(2, &["CLUSTER", "REBALANCE"]) else {
        panic!("REBALANCE is an array");
    };
    assert!(
        planned.len() >= 3,
        "{}",
        show_value(&Value::Array(planned.clone()))
    );
    let done = poll(MOVE_WAIT, || {
        let all = jobs(&cluster, 1);
        all.iter()
            .all(|j| j["state"] == "done")
            .then_some(all.len())
    })
    .unwrap_or_else(|| panic!("the rebalance never finished: {:?}", jobs(&cluster, 1)));
    assert_eq!(done, planned.len());
    let Value::Array(more) = cluster.call(3, &["CLUSTER", "REBALANCE", "DRYRUN"]) else {
        panic!("REBALANCE DRYRUN is an array");
    };
    // The clients' own keys keep coming: what is left to move is a few of them.
    let left: u64 = more
        .iter()
        .filter_map(|m| {
            text(m)
                .rsplit_once("keys=")
                .and_then(|(_, n)| n.parse::<u64>().ok())
        })
        .sum();
    assert!(left <= 400, "balanced: {}", show_value(&Value::Array(more)));

    // A node joins (a voter of every group, and it takes its share of leaders), then
    // leaves again, handing its leaderships over first.
    cluster.join(4, 1);
    poll(Duration::from_secs(30), || {
        cluster
            .ids()
            .iter()
            .all(|&id| {
                cluster
                    .raft_info(id)
                    .is_ok_and(|i| i.groups.values().all(|g| g.voters.contains(&4)))
            })
            .then_some(())
    })
    .expect("node 4 never became a voter of every group");
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(cluster.call(1, &["CLUSTER", "FORGET", "4"]), Value::Okay);
    // Node 4 runs on for a moment, answering -MOVED to the clients that still send it
    // commands (as a drained node does before it stops), then stops.
    std::thread::sleep(Duration::from_secs(3));
    cluster.terminate(4, Duration::from_secs(20));
    cluster.discard(4);
    poll(Duration::from_secs(30), || {
        (1..=3u64)
            .all(|id| {
                cluster.raft_info(id).is_ok_and(|i| {
                    i.groups
                        .values()
                        .all(|g| !g.voters.contains(&4) && g.leader.is_some())
                })
            })
            .then_some(())
    })
    .expect("the groups never settled without node 4");
    std::thread::sleep(Duration::from_secs(1));

    stop.store(true, Ordering::Relaxed);
    std::fs::write(&stop_file, b"").unwrap();
    let rs = rs.join().unwrap();
    let cli = cli.join().unwrap();
    let py = py.wait_with_output().unwrap();
    let _ = std::fs::remove_file(&stop_file);
    let py_out = String::from_utf8_lossy(&py.stdout).trim().to_string();
    eprintln!("redis crate: {rs:?}\nredis-cli: {cli:?}\nredis-py: {py_out}");
    assert!(
        py.status.success(),
        "redis-py: {py_out} {}",
        String::from_utf8_lossy(&py.stderr)
    );
    for (name, seen) in [("redis crate", &rs), ("redis-cli", &cli)] {
        assert!(seen.errors.is_empty(), "{name}: {:?}", seen.errors);
        assert!(seen.ok > 50, "{name} made progress: {seen:?}");
        assert!(seen.tryagain <= 20, "{name}: too many TRYAGAIN: {seen:?}");
    }
    assert!(py_out.contains("nerrors=0"), "redis-py: {py_out}");
    let py_tryagain: u64 = py_out
        .split_whitespace()
        .find_map(|w| w.strip_prefix("tryagain="))
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX);
    assert!(py_tryagain <= 20, "redis-py: {py_out}");

    // Nothing lost (read through a cluster client: in redirect mode a node answers only
    // for the groups it leads).
    same_slots_everywhere(&cluster);
    let mut con = cluster_con();
    for &slot in &hot {
        let tag = tag(slot);
        let keys: Vec<String> = (0..500).map(|i| format!("{{{tag}}}:{i}")).collect();
        let values: Vec<Option<String>> = redis::cmd("MGET").arg(&keys).query(&mut con).unwrap();
        for (i, v) in values.iter().enumerate() {
            assert_eq!(v.as_deref(), Some(format!("v{i}").as_str()), "{}", keys[i]);
        }
    }
}
