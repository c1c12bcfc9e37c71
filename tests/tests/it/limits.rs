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

#[test]
fn connections_past_maxclients_get_redis_error_and_the_others_are_served() {
    use std::io::{Read, Write};

    let redraft = Redraft::start_with(|c| c.maxclients = 100);
    let addr = redraft.addr();
    let mut held: Vec<Conn> = (0..100).map(|_| Conn::connect(addr)).collect();
    for c in &mut held {
        assert_eq!(
            c.call(&["PING"]).expect("PING"),
            Value::SimpleString("PONG".into())
        );
    }
    // 20,000 more, 200 at a time (so the test stays within a small descriptor limit):
    // each gets Redis's error, then the end of the connection.
    let mut refused = 0;
    for batch in 0..100 {
        let conns: Vec<std::net::TcpStream> = (0..200)
            .map(|_| std::net::TcpStream::connect(addr).expect("connect"))
            .collect();
        for mut s in conns {
            s.set_read_timeout(Some(Duration::from_secs(10)))
                .expect("a read timeout");
            let mut got = Vec::new();
            s.read_to_end(&mut got).expect("read to the end");
            assert_eq!(
                got, b"-ERR max number of clients reached\r\n",
                "batch {batch}"
            );
            refused += 1;
        }
        // The clients already in are served all along.
        let c = &mut held[batch % 100];
        assert_eq!(
            c.call(&["PING"]).expect("PING"),
            Value::SimpleString("PONG".into())
        );
    }
    assert_eq!(refused, 20_000);
    let stats = match held[0].call(&["INFO", "stats"]).expect("INFO") {
        Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
        other => panic!("INFO stats: {other:?}"),
    };
    assert!(
        stats.contains("rejected_connections:20000\r\n"),
        "INFO stats: {stats}"
    );
    // Once clients leave, new ones are taken again.
    held.truncate(10);
    let mut newcomer = poll_connect(addr);
    newcomer.writer().write_all(b"PING\r\n").expect("write");
    assert_eq!(
        newcomer.recv().expect("PONG"),
        Value::SimpleString("PONG".into())
    );
}

/// A connection that is served (the server counts a closed client out a moment after
/// the close).
fn poll_connect(addr: SocketAddr) -> Conn {
    crate::nodes::poll(Duration::from_secs(10), || {
        let mut c = Conn::connect(addr);
        match c.call(&["PING"]) {
            Ok(Value::SimpleString(s)) if s == "PONG" => Some(c),
            _ => None,
        }
    })
    .expect("a client is taken again once others leave")
}
