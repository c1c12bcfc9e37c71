//! Redis's client limits. `timeout`: a client silent for longer is disconnected, one
//! that keeps talking is not; the same story runs against `redis-server --timeout 1` to
//! show the expectation is Redis's.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use redis::Value;

use crate::harness::{Conn, RedisServer, Redraft};

fn idle_client_is_closed_and_a_busy_one_kept(name: &str, addr: SocketAddr) {
    let mut idle = Conn::connect(addr);
    let mut busy = Conn::connect(addr);
    for c in [&mut idle, &mut busy] {
        assert_eq!(
            c.call(&["PING"]).expect("PING"),
            Value::SimpleString("PONG".into())
        );
    }
    // Three seconds of PINGs a fifth of a second apart: never idle for a second.
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        let pong = busy.call(&["PING"]);
        assert!(
            matches!(pong, Ok(Value::SimpleString(ref s)) if s == "PONG"),
            "{name}: the busy client was cut off after {:?}: {pong:?}",
            started.elapsed()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The idle one has been silent for three seconds: its connection is gone.
    let _ = idle.send(&[vec!["PING"]]);
    let reply = idle.recv();
    assert!(
        reply.is_err(),
        "{name}: the idle client was still served: {reply:?}"
    );
}

#[test]
fn timeout_closes_idle_clients_as_redis_does() {
    let redis = RedisServer::start_with(&["--timeout", "1"]);
    idle_client_is_closed_and_a_busy_one_kept("redis", redis.addr());
    let redraft = Redraft::start_with(|c| c.timeout = 1);
    idle_client_is_closed_and_a_busy_one_kept("redraft", redraft.addr());
}

/// This process's resident memory, in MiB (the in-process redraft's included).
fn rss_mib() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: usize = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib / 1024
}

#[test]
fn a_client_that_pipelines_gets_of_a_large_value_and_never_reads_costs_little_memory() {
    let redraft = Redraft::start();
    let mut setter = Conn::connect(redraft.addr());
    let value = vec![b'v'; 1 << 20];
    assert_eq!(
        setter
            .call(&[b"SET".as_slice(), b"big", &value])
            .expect("SET"),
        Value::Okay
    );
    drop(value);
    let before = rss_mib();
    // 2,000 GETs of a 1 MiB value, 2 GiB of replies, written at once and never read.
    let mut greedy = Conn::connect(redraft.addr());
    let gets: Vec<Vec<&str>> = (0..2000).map(|_| vec!["GET", "big"]).collect();
    greedy.send(&gets).expect("send the pipeline");
    // The node answers other clients meanwhile, and holds a batch of replies at most.
    for _ in 0..20 {
        assert_eq!(
            setter.call(&["PING"]).expect("PING"),
            Value::SimpleString("PONG".into())
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let grown = rss_mib().saturating_sub(before);
    assert!(
        grown < 64,
        "memory grew by {grown} MiB for a client that reads nothing"
    );
}
