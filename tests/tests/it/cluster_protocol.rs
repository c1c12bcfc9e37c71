//! The Redis Cluster protocol, as cluster-aware clients meet it: a three-node redraft
//! cluster in redirect mode (`--cluster-routing redirect`) against the replies a real
//! Redis 7.0.15 cluster gave (`golden/cluster/`, recorded by `tools/record-cluster-golden`)
//! and against real cluster clients: `redis-cli -c`, `redis-cli --cluster check|info`, the
//! `redis` crate's cluster client and redis-py's `RedisCluster` (Debian's `python3-redis`,
//! which `tools/ensure-deps` installs).
//!
//! With one data group every slot is served by the group's leader (the shard's master);
//! the other members are its replicas. Golden cases whose replies depend on how the Redis
//! cluster split its slots over three masters are compared by shape; the others byte for
//! byte.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use redis::Value;

use crate::cluster::ELECTION;
use crate::harness::show_value;
use crate::nodes::{poll, Cluster, Options};

/// The golden files' directory.
fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it/golden/cluster")
}

/// One line of `cases.tsv`.
struct Case {
    name: String,
    files: Vec<String>,
    setup: Vec<Vec<String>>,
    commands: Vec<Vec<String>>,
}

fn split_commands(field: &str) -> Vec<Vec<String>> {
    if field == "-" {
        return Vec::new();
    }
    field
        .split(" ; ")
        .map(|c| c.split(' ').map(str::to_string).collect())
        .collect()
}

fn cases() -> Vec<Case> {
    let text = std::fs::read_to_string(golden_dir().join("cases.tsv")).expect("cases.tsv");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 6, "cases.tsv line {l:?}");
            Case {
                name: f[0].to_string(),
                files: f[3].split(',').map(str::to_string).collect(),
                setup: split_commands(f[4]),
                commands: split_commands(f[5]),
            }
        })
        .collect()
}

/// The cases whose replies do not depend on how slots are split over masters: sent to
/// the node that serves every slot, they must come back byte for byte.
const EXACT: &[&str] = &[
    "keyslot",
    "keyslot-arity",
    "countkeysinslot",
    "countkeysinslot-16384",
    "countkeysinslot-minus1",
    "countkeysinslot-abc",
    "countkeysinslot-arity",
    "getkeysinslot",
    "getkeysinslot-count-minus1",
    "getkeysinslot-count-abc",
    "getkeysinslot-slot-16384",
    "getkeysinslot-slot-minus1",
    "getkeysinslot-slot-abc",
    "getkeysinslot-arity",
    "cluster-unknown-subcommand",
    "cluster-unknown-subcommand-args",
    "cluster-no-subcommand",
    "myid-arity",
    "readonly",
    "readwrite",
    "asking",
    "readonly-arity",
    "info-cluster",
    "owner-get",
    "hashtag-mget",
    "hashtag-mset",
    "hashtag-del",
    "hashtag-rename",
    "hashtag-sunionstore",
    "multi-same-slot",
    "watch-same-slot",
    "crossslot-mset",
    "crossslot-mset-same-node",
    "crossslot-mget-same-node",
    "crossslot-del",
    "crossslot-rename",
    "crossslot-sunionstore",
    "multi-crossslot-same-node",
    "multi-crossslot-command",
    "watch-crossslot-same-node",
    "watch-crossslot",
];

fn encode(args: &[String]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Where the RESP2/RESP3 reply starting at `at` ends, if `buf` holds all of it.
fn reply_end(buf: &[u8], at: usize) -> Option<usize> {
    let line_end = at + buf.get(at..)?.windows(2).position(|w| w == b"\r\n")? + 2;
    let head = std::str::from_utf8(&buf[at + 1..line_end - 2]).ok()?;
    match buf[at] {
        b'+' | b'-' | b':' | b',' | b'_' | b'#' | b'(' => Some(line_end),
        b'$' | b'=' | b'!' => {
            let n: i64 = head.parse().ok()?;
            if n < 0 {
                return Some(line_end);
            }
            let end = line_end + n as usize + 2;
            (buf.len() >= end).then_some(end)
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let n: i64 = head.parse().ok()?;
            let items = if matches!(buf[at], b'%' | b'|') {
                n * 2
            } else {
                n
            };
            let mut pos = line_end;
            for _ in 0..items.max(0) {
                pos = reply_end(buf, pos)?;
            }
            Some(pos)
        }
        _ => None,
    }
}

/// A raw connection: sends commands, returns each reply's exact bytes.
struct Raw {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    fn connect(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        Raw {
            stream,
            buf: Vec::new(),
        }
    }

    fn call(&mut self, args: &[String]) -> Vec<u8> {
        self.stream.write_all(&encode(args)).expect("write");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(end) = reply_end(&self.buf, 0).filter(|_| !self.buf.is_empty()) {
                return self.buf.drain(..end).collect();
            }
            assert!(
                Instant::now() < deadline,
                "no whole reply to {args:?}; got {:?}",
                String::from_utf8_lossy(&self.buf)
            );
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => panic!("connection closed after {args:?}"),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("read: {e}"),
            }
        }
    }
}

/// Runs `case` against `addr` in `proto` (`resp2`/`resp3`) as the recorder did, and
/// returns the replies' bytes.
fn run_case(addr: SocketAddr, case: &Case, proto: &str) -> Vec<u8> {
    let mut raw = Raw::connect(addr);
    raw.call(&["FLUSHALL".to_string()]);
    if proto == "resp3" {
        raw.call(&["HELLO".to_string(), "3".to_string()]);
    }
    for c in &case.setup {
        raw.call(c);
    }
    case.commands.iter().flat_map(|c| raw.call(c)).collect()
}

/// `CLUSTER SLOTS` from node `id`, once every member is listed in it.
fn slots_with_every_node(cluster: &Cluster, id: u64) -> Vec<Value> {
    let mut last = String::new();
    poll(ELECTION, || {
        let v = cluster.call(id, &["CLUSTER", "SLOTS"]);
        last = show_value(&v);
        match v {
            Value::Array(ranges) => match ranges.first() {
                Some(Value::Array(entry)) if entry.len() == 2 + 3 => Some(ranges),
                _ => None,
            },
            _ => None,
        }
    })
    .unwrap_or_else(|| panic!("CLUSTER SLOTS on node {id} never listed all three nodes: {last}"))
}

/// A node of `ids` other than `leader`.
fn a_follower(ids: &[u64], leader: u64) -> u64 {
    ids.iter()
        .copied()
        .find(|&i| i != leader)
        .expect("a follower")
}

fn text(v: Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
        Value::VerbatimString { text, .. } => text,
        other => panic!("expected text, got {}", show_value(&other)),
    }
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed: {all}");
    all
}

/// redis-py's `RedisCluster`: writes `n` keys through the node at `addr`, reads them back,
/// and prints how many it read right.
const REDIS_PY: &str = r#"
import sys
from redis.cluster import RedisCluster
host, port, prefix, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
rc = RedisCluster(host=host, port=port, socket_timeout=10)
for i in range(n):
    assert rc.set(f"{prefix}:{i}", str(i)) is True
ok = sum(1 for i in range(n) if rc.get(f"{prefix}:{i}") == str(i).encode())
print(f"ok={ok} nodes={len(rc.get_nodes())}")
"#;

fn redis_py(addr: SocketAddr, prefix: &str, n: usize) -> String {
    run(Command::new("/usr/bin/python3").args([
        "-c",
        REDIS_PY,
        &addr.ip().to_string(),
        &addr.port().to_string(),
        prefix,
        &n.to_string(),
    ]))
}

/// The `redis` crate's cluster client: writes and reads back `n` keys.
fn redis_rs(addrs: &[SocketAddr], prefix: &str, n: usize) -> redis::RedisResult<usize> {
    let nodes: Vec<String> = addrs.iter().map(|a| format!("redis://{a}")).collect();
    let client = redis::cluster::ClusterClient::new(nodes)?;
    let mut con = client.get_connection()?;
    for i in 0..n {
        redis::cmd("SET")
            .arg(format!("{prefix}:{i}"))
            .arg(i)
            .query::<()>(&mut con)?;
    }
    let mut ok = 0;
    for i in 0..n {
        let v: Option<usize> = redis::cmd("GET")
            .arg(format!("{prefix}:{i}"))
            .query(&mut con)?;
        ok += usize::from(v == Some(i));
    }
    Ok(ok)
}

#[test]
fn cluster_clients_discover_the_cluster_and_follow_moved() {
    let options = Options {
        extra: vec!["--cluster-routing".into(), "redirect".into()],
        ..Options::default()
    };
    let cluster = Cluster::start("protocol", 3, options);
    let ids = cluster.ids();
    let leader = cluster.wait_leader(&ids, ELECTION);
    let follower = a_follower(&ids, leader);
    let leader_addr = cluster.addr(leader).to_string();

    // Every node announces its RESP address; then each lists the leader as the master of
    // every slot and the other two as its replicas, with Redis's entry shape.
    for &id in &ids {
        let ranges = slots_with_every_node(&cluster, id);
        assert_eq!(ranges.len(), 1, "node {id}: one range for one group");
        let Value::Array(entry) = &ranges[0] else {
            unreachable!()
        };
        assert_eq!(entry[0], Value::Int(0));
        assert_eq!(entry[1], Value::Int(16383));
        for (i, node) in entry[2..].iter().enumerate() {
            let Value::Array(fields) = node else {
                panic!("node entry {}", show_value(node))
            };
            assert_eq!(
                fields.len(),
                4,
                "[ip, port, id, {{}}]: {}",
                show_value(node)
            );
            let Value::BulkString(name) = &fields[2] else {
                panic!("{}", show_value(node))
            };
            assert_eq!(name.len(), 40, "a 40-hex node name");
            assert!(
                matches!(fields[3], Value::Map(ref m) if m.is_empty())
                    || fields[3] == Value::Array(vec![])
            );
            if i == 0 {
                let Value::Int(port) = fields[1] else {
                    panic!()
                };
                assert_eq!(
                    port as u16,
                    cluster.addr(leader).port(),
                    "the leader is the master"
                );
            }
        }
    }

    // Byte for byte where Redis's replies do not depend on its slot split.
    let cases = cases();
    for name in EXACT {
        let case = cases
            .iter()
            .find(|c| c.name == *name)
            .unwrap_or_else(|| panic!("no golden case {name}"));
        for proto in ["resp2", "resp3"] {
            let file = if case.files.iter().any(|f| f == proto) {
                proto
            } else {
                "resp2"
            };
            let want = std::fs::read(golden_dir().join(format!("{name}.{file}"))).expect("golden");
            let got = run_case(cluster.addr(leader), case, proto);
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want),
                "golden case {name} in {proto}"
            );
        }
    }

    // By shape: CLUSTER INFO has Redis's fields in Redis's order; NODES lines have its
    // fields; SHARDS entries have its keys.
    let golden_fields = |file: &str| -> Vec<String> {
        let t = std::fs::read_to_string(golden_dir().join(file)).expect("golden");
        t.lines()
            .filter_map(|l| l.split_once(':').map(|(k, _)| k.to_string()))
            .collect()
    };
    let info = text(cluster.call(follower, &["CLUSTER", "INFO"]));
    let fields: Vec<String> = info
        .lines()
        .filter_map(|l| l.split_once(':').map(|(k, _)| k.to_string()))
        .collect();
    assert_eq!(fields, golden_fields("info.resp2"));
    assert!(info.contains("cluster_state:ok\r\n"), "{info}");
    assert!(info.contains("cluster_known_nodes:3\r\n"), "{info}");
    let nodes = text(cluster.call(follower, &["CLUSTER", "NODES"]));
    let lines: Vec<&str> = nodes.lines().collect();
    assert_eq!(lines.len(), 3, "{nodes}");
    for line in &lines {
        let f: Vec<&str> = line.split(' ').collect();
        assert!(f.len() >= 8, "{line}");
        assert!(f[1].contains('@'), "ip:port@cport: {line}");
        let master = f[1].starts_with(&leader_addr);
        assert_eq!(f[2].ends_with("master"), master, "{line}");
        assert_eq!(f.get(8).copied(), master.then_some("0-16383"), "{line}");
    }
    assert_eq!(lines.iter().filter(|l| l.contains("myself")).count(), 1);
    let myid = cluster.call(follower, &["CLUSTER", "MYID"]);
    assert_eq!(
        myid,
        Value::BulkString(format!("{follower:040x}").into_bytes())
    );
    assert_eq!(
        text(cluster.call(follower, &["INFO", "cluster"])),
        "# Cluster\r\ncluster_enabled:1\r\n"
    );

    // A follower redirects: MOVED with Redis's text, inside MULTI too (EXEC then aborts),
    // and on WATCH; a READONLY connection reads there.
    let mut raw = Raw::connect(cluster.addr(follower));
    let s = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    assert_eq!(
        raw.call(&s(&["GET", "foo"])),
        format!("-MOVED 12182 {leader_addr}\r\n").into_bytes()
    );
    assert_eq!(raw.call(&s(&["MULTI"])), b"+OK\r\n");
    assert_eq!(
        raw.call(&s(&["SET", "foo", "1"])),
        format!("-MOVED 12182 {leader_addr}\r\n").into_bytes()
    );
    assert_eq!(
        raw.call(&s(&["EXEC"])),
        b"-EXECABORT Transaction discarded because of previous errors.\r\n"
    );
    assert_eq!(
        raw.call(&s(&["WATCH", "foo"])),
        format!("-MOVED 12182 {leader_addr}\r\n").into_bytes()
    );
    assert_eq!(cluster.call(leader, &["SET", "foo", "bar"]), Value::Okay);
    assert_eq!(raw.call(&s(&["READONLY"])), b"+OK\r\n");
    assert_eq!(raw.call(&s(&["GET", "foo"])), b"$3\r\nbar\r\n");
    assert_eq!(
        raw.call(&s(&["SET", "foo", "2"])),
        format!("-MOVED 12182 {leader_addr}\r\n").into_bytes(),
        "READONLY lets reads stay, never writes"
    );

    // Real clients, through a follower: each discovers the cluster and follows MOVED.
    let follower_addr = cluster.addr(follower);
    let redis_cli = |args: &[&str]| {
        run(Command::new("redis-cli")
            .args([
                "-h",
                &follower_addr.ip().to_string(),
                "-p",
                &follower_addr.port().to_string(),
            ])
            .args(args))
    };
    assert_eq!(redis_cli(&["-c", "SET", "cli", "v"]).trim(), "OK");
    assert_eq!(redis_cli(&["-c", "GET", "cli"]).trim(), "v");
    let check =
        run(Command::new("redis-cli").args(["--cluster", "check", &follower_addr.to_string()]));
    assert!(
        check.contains("[OK] All nodes agree about slots configuration."),
        "{check}"
    );
    assert!(check.contains("[OK] All 16384 slots covered."), "{check}");
    let keys: i64 = match cluster.call(leader, &["DBSIZE"]) {
        Value::Int(n) => n,
        other => panic!("DBSIZE: {}", show_value(&other)),
    };
    let info =
        run(Command::new("redis-cli").args(["--cluster", "info", &follower_addr.to_string()]));
    assert!(
        info.contains(&format!("[OK] {keys} keys in 1 masters.")),
        "keys counted once: {info}"
    );
    assert_eq!(
        redis_rs(&[follower_addr], "rs", 200).expect("the redis crate's cluster client"),
        200
    );
    let py = redis_py(follower_addr, "py", 200);
    assert!(py.contains("ok=200 nodes=3"), "{py}");

    // Leadership moves: the clients follow the MOVED that the old leader now answers, and
    // lose nothing.
    let next = a_follower(&ids, leader);
    assert_eq!(
        cluster.call(leader, &["CLUSTER", "TRANSFER-LEADER", &next.to_string()]),
        Value::Okay
    );
    let new_leader = cluster.wait_leader(&ids, ELECTION);
    assert_eq!(new_leader, next);
    let old = cluster.addr(leader);
    assert_eq!(
        redis_rs(&[old], "rs2", 100).expect("the redis crate after the move"),
        100
    );
    let py = redis_py(old, "py2", 100);
    assert!(py.contains("ok=100 nodes=3"), "{py}");
    for prefix in ["rs", "py"] {
        assert_eq!(
            cluster.call(new_leader, &["GET", &format!("{prefix}:199")]),
            Value::BulkString(b"199".to_vec()),
            "{prefix}'s writes before the move are still there"
        );
    }
}

#[test]
fn cluster_clients_work_through_the_proxy_too() {
    // The default routing: a follower forwards instead of redirecting, so plain clients
    // work on every node and cluster clients still discover the cluster.
    let cluster = Cluster::start("proxy", 3, Options::default());
    let ids = cluster.ids();
    let leader = cluster.wait_leader(&ids, ELECTION);
    let follower = a_follower(&ids, leader);
    slots_with_every_node(&cluster, follower);
    let follower_addr = cluster.addr(follower);
    let mut raw = Raw::connect(follower_addr);
    let s = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    assert_eq!(raw.call(&s(&["SET", "foo", "bar"])), b"+OK\r\n");
    assert_eq!(raw.call(&s(&["GET", "foo"])), b"$3\r\nbar\r\n");
    assert_eq!(
        redis_rs(&[follower_addr], "rs", 50).expect("the redis crate's cluster client"),
        50
    );
    let py = redis_py(follower_addr, "py", 50);
    assert!(py.contains("ok=50 nodes=3"), "{py}");
}

#[test]
fn a_node_restarted_on_a_new_address_is_found_there() {
    // As a pod restarted with a new address: the node announces it, the leader records
    // it, and clients are sent there.
    let options = Options {
        extra: vec!["--cluster-routing".into(), "redirect".into()],
        ..Options::default()
    };
    let mut cluster = Cluster::start("new-address", 3, options);
    let ids = cluster.ids();
    let leader = cluster.wait_leader(&ids, ELECTION);
    let moved = a_follower(&ids, leader);
    slots_with_every_node(&cluster, leader);
    let old = cluster.addr(moved);
    cluster.terminate(moved, Duration::from_secs(20));
    cluster.restart_on_new_port(moved);
    let new = cluster.addr(moved);
    assert_ne!(old, new);
    let mut last = String::new();
    poll(ELECTION, || {
        let v = cluster.call(leader, &["CLUSTER", "SLOTS"]);
        last = show_value(&v);
        last.contains(&format!("(integer) {}", new.port()))
            .then_some(())
    })
    .unwrap_or_else(|| panic!("the leader never listed node {moved} at {new}: {last}"));
    let py = redis_py(new, "py", 20);
    assert!(py.contains("ok=20 nodes=3"), "{py}");
}
