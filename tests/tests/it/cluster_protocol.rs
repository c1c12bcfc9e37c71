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

#[test]
fn announced_hostnames_reach_clients_and_follow_restarts() {
    // As in Kubernetes, each node announces a name clients resolve, and cluster replies
    // name nodes by it. The harness gives each node an address of its own on loopback,
    // which no DNS name resolves to here, so each announces its address written as a
    // name (Redis's rule lets it); what is shown where is compared byte for byte with
    // Redis in the golden tests of the server crate.
    let options = Options {
        extra: [
            "--cluster-routing",
            "redirect",
            "--announce-hostname",
            "{ip}",
            "--preferred-endpoint-type",
            "hostname",
        ]
        .map(String::from)
        .to_vec(),
        ..Options::default()
    };
    let mut cluster = Cluster::start("hostnames", 3, options);
    let ids = cluster.ids();
    let leader = cluster.wait_leader(&ids, ELECTION);
    let follower = a_follower(&ids, leader);
    // `CLUSTER NODES` on node `id` once it shows `want` as the hostname of each member
    // (by RESP port).
    let with_hostnames = |cluster: &Cluster, id: u64, want: &dyn Fn(u16) -> String| {
        let mut last = String::new();
        poll(ELECTION, || {
            last = text(cluster.call(id, &["CLUSTER", "NODES"]));
            let named = last
                .lines()
                .filter_map(|l| {
                    let (addr, hostname) = l.split(' ').nth(1)?.split_once(',')?;
                    let port: u16 = addr.split_once('@')?.0.rsplit_once(':')?.1.parse().ok()?;
                    (hostname == want(port)).then_some(())
                })
                .count();
            (named == 3).then_some(())
        })
        .unwrap_or_else(|| panic!("node {id} never listed the hostnames: {last}"));
    };
    let ip_of_port = |cluster: &Cluster, port: u16| {
        let id = cluster
            .ids()
            .into_iter()
            .find(|&id| cluster.addr(id).port() == port);
        id.map_or(String::new(), |id| cluster.addr(id).ip().to_string())
    };
    for &id in &ids {
        with_hostnames(&cluster, id, &|port| ip_of_port(&cluster, port));
    }

    // MOVED and CLUSTER SLOTS name the leader by its hostname, its ip beside it.
    let leader_addr = cluster.addr(leader);
    let leader_port = leader_addr.port();
    let mut raw = Raw::connect(cluster.addr(follower));
    assert_eq!(
        raw.call(&["GET".to_string(), "foo".to_string()]),
        format!("-MOVED 12182 {leader_addr}\r\n").into_bytes()
    );
    let ranges = slots_with_every_node(&cluster, follower);
    let Value::Array(entry) = &ranges[0] else {
        unreachable!()
    };
    let Value::Array(master) = &entry[2] else {
        panic!("{}", show_value(&entry[2]))
    };
    assert_eq!(
        master[0],
        Value::BulkString(leader_addr.ip().to_string().into_bytes())
    );
    assert_eq!(master[1], Value::Int(i64::from(leader_port)));
    assert_eq!(
        show_value(&master[3]),
        format!("[\"ip\", \"{}\"]", leader_addr.ip()),
        "the ip in the map beside the endpoint"
    );

    // Real cluster clients follow the hostnames.
    let follower_addr = cluster.addr(follower);
    let (host, port) = (
        follower_addr.ip().to_string(),
        follower_addr.port().to_string(),
    );
    let cli = |args: &[&str]| {
        run(Command::new("redis-cli")
            .args(["-c", "-h", &host, "-p", &port])
            .args(args))
    };
    assert_eq!(cli(&["SET", "foo", "bar"]).trim(), "OK");
    assert_eq!(cli(&["GET", "foo"]).trim(), "bar");
    let py = redis_py(cluster.addr(follower), "py", 30);
    assert!(py.contains("ok=30"), "{py}");

    // A node restarted with another hostname is recorded with it.
    cluster.terminate(follower, Duration::from_secs(20));
    cluster.set_arg(follower, "--announce-hostname", "renamed.redraft.test");
    cluster.restart(follower);
    let follower_port = cluster.addr(follower).port();
    with_hostnames(&cluster, leader, &|port| {
        if port == follower_port {
            "renamed.redraft.test".to_string()
        } else {
            ip_of_port(&cluster, port)
        }
    });
}

/// `raft_groups_led` and `raft_groups_without_leader` of node `id`.
fn leadership(cluster: &Cluster, id: u64) -> Option<(usize, usize)> {
    let text = match cluster.try_call(id, &["INFO", "replication"]).ok()? {
        Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
        Value::VerbatimString { text, .. } => text,
        _ => return None,
    };
    let field = |f: &str| redraft_tests::info::field(&text, f)?.parse().ok();
    Some((
        field("raft_groups_led")?,
        field("raft_groups_without_leader")?,
    ))
}

/// Waits until every group has a leader and the leaderships are spread evenly over
/// `ids` (each leads 5 or 6 of 16); the counts by node.
fn balanced(cluster: &Cluster, ids: &[u64]) -> Vec<usize> {
    let mut last = Vec::new();
    poll(ELECTION, || {
        last = ids.iter().map(|&id| leadership(cluster, id)).collect();
        let counts: Vec<usize> = last.iter().map(|l| l.map_or(0, |l| l.0)).collect();
        let all_led = last.iter().all(|l| l.is_some_and(|l| l.1 == 0));
        (all_led && counts.iter().sum::<usize>() == 16 && counts.iter().all(|&c| c == 5 || c == 6))
            .then_some(counts)
    })
    .unwrap_or_else(|| panic!("leaders never spread evenly over the nodes: {last:?}"))
}

/// Every key a full `SCAN` (COUNT 7) of node `id` returns, and how many calls it took.
fn scan_all(cluster: &Cluster, id: u64) -> (Vec<String>, usize) {
    let mut keys = Vec::new();
    let mut cursor = "0".to_string();
    for calls in 1..=10_000 {
        let Value::Array(parts) = cluster.call(id, &["SCAN", &cursor, "COUNT", "7"]) else {
            panic!("SCAN reply")
        };
        let (Value::BulkString(next), Value::Array(items)) = (&parts[0], &parts[1]) else {
            panic!("SCAN reply shape")
        };
        for item in items {
            if let Value::BulkString(k) = item {
                keys.push(String::from_utf8_lossy(k).into_owned());
            }
        }
        cursor = String::from_utf8_lossy(next).into_owned();
        if cursor == "0" {
            return (keys, calls);
        }
    }
    panic!("SCAN never ended")
}

fn int(v: Value) -> i64 {
    match v {
        Value::Int(n) => n,
        other => panic!("expected an integer, got {}", show_value(&other)),
    }
}

#[test]
fn sixteen_groups_spread_slots_and_leaders_over_every_node() {
    // The binary's default: 16 data groups, every node a replica of each, leaders spread.
    let options = Options {
        raft_groups: Some(16),
        extra: vec!["--cluster-routing".into(), "redirect".into()],
        ..Options::default()
    };
    let mut cluster = Cluster::start("groups", 3, options);
    let ids = cluster.ids();
    balanced(&cluster, &ids);

    // Cluster clients see three masters sharing the 16 groups' ranges, every slot once,
    // once every node has announced its address in every group.
    let mut last = String::new();
    let ranges = poll(ELECTION, || {
        let v = cluster.call(1, &["CLUSTER", "SLOTS"]);
        last = show_value(&v);
        match v {
            Value::Array(ranges)
                if ranges
                    .iter()
                    .all(|r| matches!(r, Value::Array(e) if e.len() == 5)) =>
            {
                Some(ranges)
            }
            _ => None,
        }
    })
    .unwrap_or_else(|| panic!("CLUSTER SLOTS never listed every node in every range: {last}"));
    assert_eq!(ranges.len(), 16, "one range per group");
    let mut covered = 0;
    let mut masters = std::collections::BTreeSet::new();
    for range in &ranges {
        let Value::Array(entry) = range else { panic!() };
        let (Value::Int(a), Value::Int(b)) = (&entry[0], &entry[1]) else {
            panic!()
        };
        covered += b - a + 1;
        let Value::Array(master) = &entry[2] else {
            panic!()
        };
        masters.insert(show_value(&master[1]));
        assert_eq!(
            entry.len(),
            5,
            "a master and two replicas: {}",
            show_value(range)
        );
    }
    assert_eq!(covered, 16384);
    assert_eq!(masters.len(), 3, "every node is the master of some ranges");
    let addr = cluster.addr(2);
    let check = run(Command::new("redis-cli").args(["--cluster", "check", &addr.to_string()]));
    assert!(check.contains("[OK] All 16384 slots covered."), "{check}");
    assert!(
        check.contains("[OK] All nodes agree about slots configuration."),
        "{check}"
    );

    // Real clients spread keys over every group.
    assert_eq!(redis_rs(&[addr], "rs", 300).expect("the redis crate"), 300);
    let py = redis_py(addr, "py", 300);
    assert!(py.contains("ok=300 nodes=3"), "{py}");
    let bench = run(Command::new("redis-benchmark").args([
        "--cluster",
        "-h",
        &addr.ip().to_string(),
        "-p",
        &addr.port().to_string(),
        "-c",
        "6",
        "-n",
        "3000",
        "-r",
        "1000",
        "-t",
        "set",
        "-q",
    ]));
    assert!(bench.contains("SET: "), "{bench}");

    // Ownership is checked where writes are applied: a write for slot 0's key handed,
    // over gRPC, to the leader of the last group (slots 15360-16383) is refused there,
    // by every replica alike, and changes nothing.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let pool = rpc::PeerPool::new(rpc::PoolConfig::default());
    let key = "{3560}x"; // slot 0 (CLUSTER KEYSLOT says so below)
    assert_eq!(int(cluster.call(1, &["CLUSTER", "KEYSLOT", key])), 0);
    let proposal = kv::Proposal::Command {
        args: vec!["SET".into(), key.into(), "wrong".into()],
        seed: 1,
    };
    let mut answers = Vec::new();
    for &id in &ids {
        let forward = rpc::Forward {
            group_id: types::GroupId(16),
            args: Vec::new(),
            proto_version: 3,
            seed: None,
            proposal: Some(proposal.encode().into()),
        };
        let grpc = cluster.node(id).grpc_addr();
        let answer = rt.block_on(async {
            let mut peer = pool.node(&grpc).expect("a peer client");
            peer.forward(forward).await
        });
        if let Ok(wire) = answer {
            answers.push(String::from_utf8_lossy(&wire).into_owned());
        }
    }
    assert_eq!(
        answers.len(),
        1,
        "one leader of group 16 served it: {answers:?}"
    );
    assert!(
        answers[0].contains("TRYAGAIN slot 0 is not served by this group"),
        "{answers:?}"
    );
    // Redirect mode: whichever node leads slot 0's group answers (nil: nothing was
    // written); every other node sends the client there.
    let replies: Vec<Vec<u8>> = ids
        .iter()
        .map(|&id| Raw::connect(cluster.addr(id)).call(&["GET".to_string(), key.to_string()]))
        .collect();
    let served = replies
        .iter()
        .filter(|r| r.as_slice() == b"$-1\r\n")
        .count();
    let moved = replies
        .iter()
        .filter(|r| r.starts_with(b"-MOVED 0 "))
        .count();
    assert_eq!(
        (served, moved),
        (1, ids.len() - 1),
        "one node serves slot 0, the others redirect: {:?}",
        replies
            .iter()
            .map(|r| String::from_utf8_lossy(r))
            .collect::<Vec<_>>()
    );

    // Redirect mode: a node's whole-keyspace commands cover the groups it leads, as a
    // Redis Cluster master's do, so summing over the masters counts every key once.
    let total: i64 = ids
        .iter()
        .map(|&id| int(cluster.call(id, &["DBSIZE"])))
        .sum();
    assert!(total >= 600, "{total}");
    let info = run(Command::new("redis-cli").args(["--cluster", "info", &addr.to_string()]));
    assert!(
        info.contains(&format!("[OK] {total} keys in 3 masters.")),
        "keys counted once: {info}"
    );
    let mut scanned: Vec<String> = ids
        .iter()
        .flat_map(|&id| scan_all(&cluster, id).0)
        .collect();
    scanned.sort();
    let n = scanned.len();
    scanned.dedup();
    assert_eq!(
        (n, scanned.len() as i64),
        (scanned.len(), total),
        "each key once"
    );
    let digests: Vec<Value> = ids
        .iter()
        .map(|&id| cluster.call(id, &["DEBUG", "DIGEST"]))
        .collect();
    assert!(
        digests.windows(2).all(|w| w[0] == w[1]),
        "replicas agree: {digests:?}"
    );

    // One group's leadership moves on request (`CLUSTER TRANSFER-LEADER <node> <group>`,
    // what the shuffle-leaders nemesis does); a node that does not lead it refuses.
    let group_leader = |id: u64, group: u64| -> Option<u64> {
        let info = text(cluster.call(id, &["INFO", "replication"]));
        let line = info
            .lines()
            .find_map(|l| l.strip_prefix(&format!("raft_group_{group}:")))?;
        line.split(',')
            .find_map(|f| f.strip_prefix("leader="))?
            .parse()
            .ok()
    };
    let from = poll(ELECTION, || group_leader(1, 16)).expect("group 16 has a leader");
    let to = ids
        .iter()
        .copied()
        .find(|&i| i != from)
        .expect("another node");
    let refused = cluster
        .try_call(to, &["CLUSTER", "TRANSFER-LEADER", &from.to_string(), "16"])
        .expect("an answer");
    assert!(
        show_value(&refused).contains(&format!("not the leader; node {from} leads")),
        "a non-leader refuses: {}",
        show_value(&refused)
    );
    assert_eq!(
        cluster.call(from, &["CLUSTER", "TRANSFER-LEADER", &to.to_string(), "16"]),
        Value::Okay
    );
    assert_eq!(
        group_leader(to, 16),
        Some(to),
        "node {to} leads group 16 now"
    );

    // Kill -9 the node that leads a share of the groups: the others take over its groups,
    // the clients follow, nothing acknowledged is lost, and once it is back the
    // leaderships spread over it again.
    cluster.kill9(3);
    let survivors = [1, 2];
    // Cluster clients learn the new masters from CLUSTER SLOTS once the survivors have
    // elected them (a client that meets the dead master first gives up, as with Redis).
    poll(ELECTION, || {
        let led: Vec<Option<(usize, usize)>> = survivors
            .iter()
            .map(|&id| leadership(&cluster, id))
            .collect();
        (led.iter().flatten().map(|l| l.0).sum::<usize>() == 16).then_some(())
    })
    .expect("the survivors lead every group");
    let addrs = cluster.addrs(&survivors);
    assert_eq!(
        redis_rs(&addrs, "after", 200).expect("writes after the kill"),
        200
    );
    for prefix in ["rs", "py"] {
        let mut con = redis::cluster::ClusterClient::new(
            addrs
                .iter()
                .map(|a| format!("redis://{a}"))
                .collect::<Vec<_>>(),
        )
        .and_then(|c| c.get_connection())
        .expect("a cluster connection");
        for i in 0..300 {
            let v: Option<usize> = redis::cmd("GET")
                .arg(format!("{prefix}:{i}"))
                .query(&mut con)
                .expect("GET");
            assert_eq!(v, Some(i), "{prefix}:{i} survived the kill");
        }
    }
    cluster.restart(3);
    let counts = balanced(&cluster, &ids);
    assert!(counts[2] >= 5, "the restarted node leads again: {counts:?}");
}

#[test]
fn sixteen_groups_behind_the_proxy_look_like_one_redis() {
    // Proxy mode (the default routing): any node answers for the whole keyspace; keys of
    // one command must share a slot (a hash tag), as in Redis Cluster, since the slots
    // of a split keyspace are in different logs.
    let options = Options {
        raft_groups: Some(16),
        ..Options::default()
    };
    let cluster = Cluster::start("groups-proxy", 3, options);
    let ids = cluster.ids();
    balanced(&cluster, &ids);
    for i in 0..200 {
        assert_eq!(
            cluster.call(1 + i % 3, &["SET", &format!("k{i}"), &i.to_string()]),
            Value::Okay
        );
    }
    assert_eq!(
        cluster.call(2, &["SET", "ttl", "x", "PX", "100"]),
        Value::Okay
    );
    for &id in &ids {
        assert!(
            matches!(int(cluster.call(id, &["DBSIZE"])), 200 | 201),
            "node {id}"
        );
        let (mut keys, calls) = scan_all(&cluster, id);
        keys.retain(|k| k != "ttl");
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), 200, "node {id}: a SCAN sees every key");
        assert!(calls > 16, "one group at a time: {calls} calls");
        let Value::Array(all) = cluster.call(id, &["KEYS", "k1*"]) else {
            panic!("KEYS")
        };
        assert_eq!(all.len(), 111, "k1, k10-k19, k100-k199");
        assert!(matches!(
            cluster.call(id, &["RANDOMKEY"]),
            Value::BulkString(_)
        ));
    }
    // A pipeline of reads over many groups (their read barriers taken together) answers
    // each in order, interleaved with a write it must see.
    let mut c = cluster
        .conn_with_timeout(2, crate::nodes::CALL_TIMEOUT)
        .expect("connect");
    let names: Vec<String> = (0..60).map(|i| format!("k{i}")).collect();
    let mut cmds: Vec<Vec<&str>> = names.iter().map(|k| vec!["GET", k.as_str()]).collect();
    cmds.insert(30, vec!["SET", "k45", "changed"]);
    c.send(&cmds).expect("send the pipeline");
    for (i, cmd) in cmds.iter().enumerate() {
        let want = match (cmd[0], cmd[1]) {
            ("SET", _) => Value::Okay,
            (_, "k45") if i > 30 => Value::BulkString(b"changed".to_vec()),
            (_, k) => Value::BulkString(k.as_bytes()[1..].to_vec()),
        };
        assert_eq!(c.recv().expect("a reply"), want, "{cmd:?}");
    }
    drop(c);
    assert_eq!(cluster.call(1, &["SET", "k45", "45"]), Value::Okay);

    // Active expiry runs on every group's leader: the volatile key goes by itself.
    poll(ELECTION, || {
        (int(cluster.call(3, &["DBSIZE"])) == 200).then_some(())
    })
    .expect("the expired key was reclaimed");
    let mut raw = Raw::connect(cluster.addr(1));
    let s = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    assert_eq!(
        raw.call(&s(&["MSET", "a", "1", "b", "2"])),
        b"-CROSSSLOT Keys in request don't hash to the same slot\r\n"
    );
    assert_eq!(
        raw.call(&s(&["MSET", "{u}a", "1", "{u}b", "2"])),
        b"+OK\r\n"
    );
    assert_eq!(raw.call(&s(&["MULTI"])), b"+OK\r\n");
    assert_eq!(raw.call(&s(&["INCR", "{u}n"])), b"+QUEUED\r\n");
    assert_eq!(raw.call(&s(&["INCR", "other"])), b"+QUEUED\r\n");
    assert_eq!(
        raw.call(&s(&["EXEC"])),
        b"-CROSSSLOT Keys in request don't hash to the same slot\r\n"
    );
    // A whole-keyspace command cannot run inside a transaction, which is one group's.
    assert_eq!(raw.call(&s(&["MULTI"])), b"+OK\r\n");
    let refused = raw.call(&s(&["FLUSHALL"]));
    assert!(
        String::from_utf8_lossy(&refused).starts_with("-ERR FLUSHALL inside MULTI"),
        "{}",
        String::from_utf8_lossy(&refused)
    );
    assert_eq!(
        raw.call(&s(&["EXEC"])),
        b"-EXECABORT Transaction discarded because of previous errors.\r\n"
    );
    assert_eq!(int(cluster.call(1, &["DBSIZE"])), 202, "nothing flushed");
    assert_eq!(raw.call(&s(&["FLUSHALL"])), b"+OK\r\n");
    for &id in &ids {
        assert_eq!(
            int(cluster.call(id, &["DBSIZE"])),
            0,
            "node {id} after FLUSHALL"
        );
    }
}

#[test]
fn a_data_directory_of_one_group_is_kept_or_refused_with_a_way_out() {
    // A data directory written before there were several groups holds group 1 and no
    // record of the layout (what a one-group node leaves once that record is removed).
    let mut cluster = Cluster::start("upgrade", 1, Options::default());
    for i in 0..50 {
        assert_eq!(
            cluster.call(1, &["SET", &format!("k{i}"), "v"]),
            Value::Okay
        );
    }
    cluster.terminate(1, Duration::from_secs(20));
    let layout = cluster.node(1).data_dir().join("raft-groups");
    assert_eq!(
        std::fs::read_to_string(&layout).expect("the layout file"),
        "1\n"
    );
    std::fs::remove_file(&layout).expect("remove the layout file");

    // Started with the default (16 groups), it refuses, and says what to do.
    cluster.set_raft_groups(1, 16);
    cluster.node_mut(1).spawn();
    let status = cluster
        .node_mut(1)
        .wait_exit(Duration::from_secs(20))
        .expect("a node given an old data directory and 16 groups must not start");
    assert!(!status.success());
    let log = cluster.log_since_start(1);
    assert!(
        log.contains("written by a redraft with one data group") && log.contains("--raft-groups 1"),
        "{log}"
    );

    // With one group it starts, keeps every key, and records the layout; a later start
    // with another number is refused.
    cluster.set_raft_groups(1, 1);
    cluster.restart(1);
    poll(ELECTION, || {
        (int(cluster.call(1, &["DBSIZE"])) == 50).then_some(())
    })
    .expect("every key kept");
    assert_eq!(cluster.call(1, &["SET", "after", "1"]), Value::Okay);
    cluster.terminate(1, Duration::from_secs(20));
    assert_eq!(
        std::fs::read_to_string(&layout).expect("recorded again"),
        "1\n"
    );
    cluster.set_raft_groups(1, 4);
    cluster.node_mut(1).spawn();
    assert!(cluster
        .node_mut(1)
        .wait_exit(Duration::from_secs(20))
        .is_some_and(|s| !s.success()));
    assert!(cluster
        .log_since_start(1)
        .contains("holds 1 data groups, and this node was started with --raft-groups 4"));
}
