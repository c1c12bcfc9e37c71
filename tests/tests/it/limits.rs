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
