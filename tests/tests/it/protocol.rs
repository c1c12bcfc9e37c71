//! Protocol tests with raw bytes: pipelining, frames split at every byte, inline commands,
//! malformed input (which must get Redis's `-ERR Protocol error: ...` and a closed
//! connection), clients that vanish mid-frame, and RESP3. Where the bytes mean something to
//! Redis too, the same bytes go to a real `redis-server` and the replies are compared
//! byte for byte.

use std::io::{Read, Write};
use std::thread;
use std::time::Duration;

use redis::Value;

use crate::harness::{encode, Conn, RedisServer, Target};

/// How long to wait for more bytes before deciding a server has said all it will.
const IDLE: Duration = Duration::from_millis(300);

fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .replace('\r', "\\r")
        .replace('\n', "\\n")
}

/// Writes `input` on a fresh connection and reads everything until EOF or silence.
fn exchange(addr: std::net::SocketAddr, input: &[u8], want: usize) -> (Vec<u8>, bool) {
    let mut c = Conn::connect(addr);
    c.send_raw(input).expect("write");
    c.read_raw_at_least(want, IDLE)
}

/// The same raw input to redis-server and redraft: same bytes back, same closed-or-not.
fn assert_same_exchange(cases: &[(&str, Vec<u8>)]) {
    let redis = RedisServer::start();
    let target = Target::start();
    // One case at a time (cases may share keys), Redis first: its reply length tells how
    // much to wait for from the server under test.
    let results: Vec<_> = cases
        .iter()
        .map(|(name, input)| {
            let reference = exchange(redis.addr(), input, 0);
            let tested = exchange(target.addr(), input, reference.0.len());
            (*name, input.clone(), reference, tested)
        })
        .collect();
    let mut failures = Vec::new();
    for (name, input, (out_a, eof_a), (out_b, eof_b)) in results {
        if out_a != out_b || eof_a != eof_b {
            failures.push(format!(
                "{name}: sent {:?}\n   redis:   {:?} (closed: {eof_a})\n   {}: {:?} (closed: {eof_b})",
                show(&input),
                show(&out_a),
                target.name(),
                show(&out_b)
            ));
        }
    }
    // Whatever came before, both servers still serve new clients.
    for addr in [redis.addr(), target.addr()] {
        let mut c = Conn::connect(addr);
        assert_eq!(
            c.call(&["PING"]).expect("PING after the cases"),
            Value::SimpleString("PONG".into())
        );
    }
    assert!(
        failures.is_empty(),
        "raw exchanges differ from redis-server:\n{}",
        failures.join("\n")
    );
}

#[test]
fn pipeline_of_10000_commands_in_one_write() {
    let target = Target::start();
    let mut c = Conn::connect(target.addr());
    const N: usize = 10_000;
    let mut bytes = Vec::new();
    for i in 0..N {
        if i % 2 == 0 {
            bytes.extend_from_slice(&encode(&["INCR", "pipeline:counter"]));
        } else {
            bytes.extend_from_slice(&encode(&["ECHO".to_string(), format!("m{i}")]));
        }
    }
    // Written from another thread: the replies must be read while the write is going on.
    let mut w = c.writer().try_clone().expect("clone socket");
    let writer = thread::spawn(move || w.write_all(&bytes));
    for i in 0..N {
        let v = c.recv().unwrap_or_else(|e| panic!("reply {i} of {N}: {e}"));
        let want = if i % 2 == 0 {
            Value::Int((i / 2 + 1) as i64)
        } else {
            Value::BulkString(format!("m{i}").into_bytes())
        };
        assert_eq!(
            v, want,
            "reply {i} of the pipeline is out of order or wrong"
        );
    }
    writer
        .join()
        .expect("writer thread")
        .expect("write the pipeline");
    assert_eq!(
        c.call(&["GET", "pipeline:counter"]).unwrap(),
        Value::BulkString(b"5000".to_vec())
    );
}

#[test]
fn frames_split_at_every_byte() {
    let redis = RedisServer::start();
    let target = Target::start();
    let mut input = Vec::new();
    input.extend_from_slice(&encode(&["SET", "split", "a b\r\nc"]));
    input.extend_from_slice(&encode(&["GET", "split"]));
    input.extend_from_slice(b"ECHO inline\r\n");
    input.extend_from_slice(&encode(&["APPEND", "split", "xyz"]));
    input.extend_from_slice(b"GET split\n");
    input.extend_from_slice(&encode(&["DEL", "split"]));
    let mut outputs = Vec::new();
    for addr in [redis.addr(), target.addr()] {
        let mut c = Conn::connect(addr);
        for &b in &input {
            c.writer().write_all(&[b]).expect("write one byte");
            c.writer().flush().expect("flush");
            thread::sleep(Duration::from_micros(200));
        }
        let mut got = Vec::new();
        for i in 0..6 {
            got.push(
                c.recv()
                    .unwrap_or_else(|e| panic!("reply {i} after byte-by-byte writes: {e}")),
            );
        }
        outputs.push(got);
    }
    let want = vec![
        Value::Okay,
        Value::BulkString(b"a b\r\nc".to_vec()),
        Value::BulkString(b"inline".to_vec()),
        Value::Int(9),
        Value::BulkString(b"a b\r\ncxyz".to_vec()),
        Value::Int(1),
    ];
    assert_eq!(outputs[0], want, "redis-server itself (the test is wrong)");
    assert_eq!(
        outputs[1],
        want,
        "{} after frames split at every byte",
        target.name()
    );
}

#[test]
fn inline_commands_match_redis() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("ping", b"PING\r\n".to_vec()),
        ("ping lf only", b"PING\n".to_vec()),
        ("quoted value", b"SET a \"b c\"\r\nGET a\r\n".to_vec()),
        (
            "single quotes",
            b"SET a 'it''s'\r\nSET b 'x y'\r\nGET b\r\n".to_vec(),
        ),
        (
            "escapes",
            b"SET a \"\\x41\\n\\t\\\\\"\r\nGET a\r\nSTRLEN a\r\n".to_vec(),
        ),
        (
            "blank lines",
            b"\r\n\r\nPING\r\n  \r\nECHO  x   \r\n".to_vec(),
        ),
        (
            "mixed with resp",
            [
                b"PING\r\n".as_slice(),
                &encode(&["ECHO", "r"]),
                b"ECHO i\r\n",
            ]
            .concat(),
        ),
        ("unknown inline", b"NOPE a b\r\n".to_vec()),
        ("empty quotes", b"ECHO \"\"\r\n".to_vec()),
        ("unbalanced double quote", b"SET a \"b\r\nPING\r\n".to_vec()),
        ("unbalanced single quote", b"SET a 'b\r\nPING\r\n".to_vec()),
        ("quote then letter", b"SET a \"b\"c\r\nPING\r\n".to_vec()),
    ];
    assert_same_exchange(&cases);
}

#[test]
fn malformed_frames_get_protocol_errors_like_redis() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("multibulk too long", b"*1048577\r\n".to_vec()),
        ("multibulk max is fine", b"*1048576\r\n".to_vec()),
        ("multibulk over INT_MAX", b"*2147483648\r\n".to_vec()),
        ("multibulk over i64", b"*99999999999999999999\r\n".to_vec()),
        ("bulk too long", b"*1\r\n$536870913\r\n".to_vec()),
        ("bulk negative", b"*1\r\n$-1\r\n".to_vec()),
        ("bulk junk length", b"*1\r\n$abc\r\n".to_vec()),
        ("multibulk junk length", b"*abc\r\n".to_vec()),
        ("multibulk negative is skipped", b"*-1\r\nPING\r\n".to_vec()),
        ("multibulk zero is skipped", b"*0\r\nPING\r\n".to_vec()),
        ("integer instead of bulk", b"*1\r\n:1\r\n".to_vec()),
        ("simple string instead of bulk", b"*2\r\n+PING\r\n".to_vec()),
        ("bulk without crlf", b"*1\r\n$4\r\nPINGxx\r\n".to_vec()),
        (
            "error after good command",
            [encode(&["SET", "k", "v"]).as_slice(), b"*1\r\n:1\r\n"].concat(),
        ),
        ("inline too big", vec![b'a'; 70 * 1024]),
    ];
    assert_same_exchange(&cases);
}

#[test]
fn client_vanishing_mid_frame_leaves_server_healthy() {
    let target = Target::start();
    let mut first = Conn::connect(target.addr());
    assert_eq!(first.call(&["SET", "survivor", "1"]).unwrap(), Value::Okay);
    for partial in [
        &b"*3\r\n$3\r\nSET\r\n$8\r\nsurvivor\r\n$"[..],
        b"*3\r\n$3\r\nSET\r\n$8\r\nsurvi",
        b"*2",
        b"SET survivor \"unfinished",
        &[
            b"*3\r\n$3\r\nSET\r\n$8\r\nsurvivor\r\n$100000\r\n".as_slice(),
            &[b'x'; 50_000],
        ]
        .concat(),
    ] {
        let mut s = std::net::TcpStream::connect(target.addr()).expect("connect");
        s.write_all(partial).expect("write part of a frame");
        drop(s);
    }
    // A client that sent a command and left before reading the reply.
    let mut s = std::net::TcpStream::connect(target.addr()).expect("connect");
    s.write_all(&encode(&["INCR", "counter"])).expect("write");
    drop(s);
    thread::sleep(Duration::from_millis(100));
    let mut next = Conn::connect(target.addr());
    assert_eq!(
        next.call(&["GET", "survivor"]).unwrap(),
        Value::BulkString(b"1".to_vec())
    );
    assert_eq!(first.call(&["INCR", "survivor"]).unwrap(), Value::Int(2));
    assert_eq!(
        next.call(&["PING"]).unwrap(),
        Value::SimpleString("PONG".into())
    );
}

/// RESP3 after `HELLO 3`: a map reply to HELLO, maps, doubles, nulls, sets; compared byte for
/// byte with redis-server where the reply does not name the server.
#[test]
fn resp3_after_hello_3() {
    let redis = RedisServer::start();
    let target = Target::start();
    let mut transcripts = Vec::new();
    for addr in [redis.addr(), target.addr()] {
        let mut c = Conn::connect(addr);
        let (hello, raw) = c.call_raw(&["HELLO", "3"]);
        let hello = hello.expect("HELLO 3");
        assert!(
            raw.starts_with(b"%"),
            "HELLO 3 must answer with a RESP3 map, got {:?}",
            show(&raw)
        );
        let Value::Map(fields) = hello else {
            panic!("HELLO 3 reply is not a map")
        };
        let get = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| *k == Value::BulkString(name.as_bytes().to_vec()))
                .map(|(_, v)| v.clone())
        };
        assert_eq!(get("proto"), Some(Value::Int(3)), "HELLO 3 says proto 3");
        for field in ["server", "version", "id", "mode", "role", "modules"] {
            assert!(get(field).is_some(), "HELLO 3 reply lacks {field}");
        }
        let script: &[&[&str]] = &[
            &["HSET", "h", "f1", "v1", "f2", "v2"],
            &["HGETALL", "h"],
            &["HGETALL", "nosuch"],
            &["ZADD", "z", "1.5", "m", "2", "n", "-inf", "o"],
            &["ZSCORE", "z", "m"],
            &["ZSCORE", "z", "n"],
            &["ZSCORE", "z", "o"],
            &["ZINCRBY", "z", "0.25", "m"],
            &["ZRANGE", "z", "0", "-1", "WITHSCORES"],
            &["ZPOPMIN", "z"],
            &["ZMSCORE", "z", "m", "nosuch"],
            &["GET", "nosuch"],
            &["HGET", "h", "nosuch"],
            &["LPOP", "nosuch"],
            &["SADD", "s", "1"],
            &["SMEMBERS", "s"],
            &["SISMEMBER", "s", "1"],
            &["INCRBYFLOAT", "f", "1.5"],
            &["HSET", "h1", "f", "v"],
            &["HRANDFIELD", "h1", "-2", "WITHVALUES"],
            &["ZADD", "z1", "2.5", "only"],
            &["ZRANDMEMBER", "z1", "-2", "WITHSCORES"],
            &["EXISTS", "h"],
            &["GET", "h"],
            &["MULTI"],
            &["GET", "nosuch"],
            &["ZSCORE", "z", "m"],
            &["EXEC"],
            &["HELLO", "2"],
            &["HGETALL", "h"],
            &["ZSCORE", "z", "m"],
            &["GET", "nosuch"],
        ];
        let mut t = Vec::new();
        for args in script {
            let (v, raw) = c.call_raw(args);
            if args[0] == "HELLO" {
                // Names the server; only the protocol switch matters here.
                assert!(v.is_ok(), "HELLO 2 failed: {v:?}");
                continue;
            }
            t.push((args.join(" "), show(&raw)));
        }
        transcripts.push(t);
    }
    let mut diffs = Vec::new();
    for ((cmd, a), (_, b)) in transcripts[0].iter().zip(&transcripts[1]) {
        if a != b {
            diffs.push(format!("{cmd}\n   redis:   {a}\n   {}: {b}", target.name()));
        }
    }
    assert!(
        diffs.is_empty(),
        "RESP3 replies differ from redis-server:\n{}",
        diffs.join("\n")
    );
}

#[test]
fn many_clients_at_once() {
    let target = Target::start();
    let addr = target.addr();
    thread::scope(|s| {
        for t in 0..16 {
            s.spawn(move || {
                let mut c = Conn::connect(addr);
                for i in 0..200 {
                    assert_eq!(
                        c.call(&["INCR", "shared"])
                            .map(|v| matches!(v, Value::Int(_)))
                            .ok(),
                        Some(true)
                    );
                    let key = format!("t{t}:{i}");
                    assert_eq!(c.call(&["SET", key.as_str(), "x"]).unwrap(), Value::Okay);
                }
            });
        }
    });
    let mut c = Conn::connect(addr);
    assert_eq!(
        c.call(&["GET", "shared"]).unwrap(),
        Value::BulkString(b"3200".to_vec())
    );
    assert_eq!(c.call(&["DBSIZE"]).unwrap(), Value::Int(3201));
}

#[test]
fn large_values_round_trip() {
    let target = Target::start();
    let mut c = Conn::connect(target.addr());
    let big: Vec<u8> = (0..4 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    assert_eq!(
        c.call(&[b"SET".as_slice(), b"big", &big]).unwrap(),
        Value::Okay
    );
    assert_eq!(
        c.call(&["GET", "big"]).unwrap(),
        Value::BulkString(big.clone())
    );
    assert_eq!(
        c.call(&["STRLEN", "big"]).unwrap(),
        Value::Int(big.len() as i64)
    );
    // A server that closes the socket on read leaves a short read here.
    let mut s = std::net::TcpStream::connect(target.addr()).unwrap();
    s.write_all(&encode(&[b"GET".as_slice(), b"big"])).unwrap();
    let mut head = [0u8; 16];
    s.read_exact(&mut head).unwrap();
    assert!(
        head.starts_with(b"$4194304\r\n"),
        "bulk header {:?}",
        show(&head)
    );
}

/// A client that pipelines many requests for large values and reads nothing for a while still
/// gets every reply, in order (the server must apply back-pressure, not drop or stall).
#[test]
fn slow_reader_gets_every_reply() {
    let target = Target::start();
    let mut c = Conn::connect(target.addr());
    let value = vec![b'v'; 10 * 1024];
    assert_eq!(
        c.call(&[b"SET".as_slice(), b"big", &value]).unwrap(),
        Value::Okay
    );
    const N: usize = 3000;
    let mut w = c.writer().try_clone().expect("clone socket");
    let writer = thread::spawn(move || {
        let one = encode(&["GET", "big"]);
        for _ in 0..N {
            w.write_all(&one)?;
        }
        w.write_all(&encode(&["ECHO", "done"]))
    });
    thread::sleep(Duration::from_millis(500));
    for i in 0..N {
        let v = c.recv().unwrap_or_else(|e| panic!("reply {i} of {N}: {e}"));
        assert_eq!(v, Value::BulkString(value.clone()), "reply {i}");
    }
    assert_eq!(c.recv().unwrap(), Value::BulkString(b"done".to_vec()));
    writer.join().expect("writer thread").expect("write");
}

/// Shutting redraft down closes idle connections (and one inside MULTI) promptly.
#[test]
fn shutdown_closes_open_connections() {
    if std::env::var("REDRAFT_TEST_TARGET").as_deref() == Ok("redis") {
        eprintln!("shutdown_closes_open_connections: redraft only");
        return;
    }
    let redraft = crate::harness::Redraft::start();
    let mut idle = Conn::connect(redraft.addr());
    assert_eq!(
        idle.call(&["PING"]).unwrap(),
        Value::SimpleString("PONG".into())
    );
    let mut in_multi = Conn::connect(redraft.addr());
    assert_eq!(in_multi.call(&["MULTI"]).unwrap(), Value::Okay);
    assert_eq!(
        in_multi.call(&["SET", "a", "1"]).unwrap(),
        Value::SimpleString("QUEUED".into())
    );
    let started = std::time::Instant::now();
    drop(redraft);
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "shutdown took {took:?} with idle clients connected"
    );
    for c in [&mut idle, &mut in_multi] {
        let (bytes, eof) = c.read_raw_until_idle(Duration::from_secs(2));
        assert!(
            eof,
            "connection still open after shutdown (got {:?})",
            show(&bytes)
        );
    }
}
