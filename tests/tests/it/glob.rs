//! Glob patterns against a real `redis-server`: the same keys on both, then `KEYS` with
//! random patterns over the bytes that mean something in a pattern (and a few that do
//! not), which must return the same keys. The patterns include the one that took Redis
//! before 7.0.9 exponential time (CVE-2022-36021), which redraft answers at once
//! (`kv::glob` bounds the work; its unit tests count it).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redis::Value;

use crate::harness::{show_value, Conn, RedisServer, Target};

const ALPHABET: &[u8] = b"ab*?[]^-\\A\xe9";

fn word(rng: &mut StdRng, max: usize) -> Vec<u8> {
    let len = rng.gen_range(0..=max);
    (0..len)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())])
        .collect()
}

/// A pattern made of tokens: literals, `?`, `*` runs, escapes and classes (negated or
/// not, with ranges either way round, escapes inside, sometimes unterminated).
fn pattern(rng: &mut StdRng) -> Vec<u8> {
    let mut out = Vec::new();
    let any = |rng: &mut StdRng| ALPHABET[rng.gen_range(0..ALPHABET.len())];
    for _ in 0..rng.gen_range(1..=5) {
        match rng.gen_range(0..6) {
            0 => out.push(any(rng)),
            1 => out.push(b'?'),
            2 => out.extend(std::iter::repeat_n(b'*', rng.gen_range(1..=2))),
            3 => out.extend([b'\\', any(rng)]),
            _ => {
                out.push(b'[');
                if rng.gen_bool(0.3) {
                    out.push(b'^');
                }
                for _ in 0..rng.gen_range(1..=3) {
                    match rng.gen_range(0..3) {
                        0 => out.push(any(rng)),
                        1 => out.extend([b'\\', any(rng)]),
                        _ => out.extend([any(rng), b'-', any(rng)]),
                    }
                }
                if rng.gen_bool(0.9) {
                    out.push(b']');
                }
            }
        }
    }
    out
}

/// `KEYS pattern`'s keys, sorted.
fn keys(conn: &mut Conn, pattern: &[u8]) -> Vec<Vec<u8>> {
    let reply = conn
        .call(&[&b"KEYS"[..], pattern])
        .expect("a reply to KEYS");
    let Value::Array(items) = reply else {
        panic!("KEYS answered {}", show_value(&reply));
    };
    let mut keys: Vec<Vec<u8>> = items
        .into_iter()
        .map(|v| match v {
            Value::BulkString(k) => k,
            other => panic!("a key: {}", show_value(&other)),
        })
        .collect();
    keys.sort();
    keys
}

#[test]
fn keys_matches_what_redis_matches() {
    let redis = RedisServer::start();
    let target = Target::start();
    let mut servers = [Conn::connect(redis.addr()), Conn::connect(target.addr())];
    let mut rng = StdRng::seed_from_u64(0x6c0b);
    let mut words: Vec<Vec<u8>> = (0..300).map(|_| word(&mut rng, 7)).collect();
    words.push(vec![b'a'; 40]);
    for conn in &mut servers {
        let sets: Vec<Vec<&[u8]>> = words.iter().map(|k| vec![&b"SET"[..], k, b"1"]).collect();
        conn.send(&sets).expect("send the keys");
        for _ in &sets {
            conn.recv().expect("SET's reply");
        }
    }
    let mut patterns: Vec<Vec<u8>> = (0..2000).map(|_| word(&mut rng, 9)).collect();
    patterns.extend((0..4000).map(|_| pattern(&mut rng)));
    patterns.push(("a*".repeat(20) + "b").into_bytes());
    patterns.push(("*a".repeat(25) + "*").into_bytes());
    let mut differ = Vec::new();
    for pattern in &patterns {
        let [redis_keys, redraft_keys] = servers.each_mut().map(|conn| keys(conn, pattern));
        if redis_keys != redraft_keys {
            differ.push(format!(
                "{:?}: redis {:?}, redraft {:?}",
                String::from_utf8_lossy(pattern),
                redis_keys
                    .iter()
                    .map(|k| String::from_utf8_lossy(k))
                    .collect::<Vec<_>>(),
                redraft_keys
                    .iter()
                    .map(|k| String::from_utf8_lossy(k))
                    .collect::<Vec<_>>()
            ));
        }
    }
    assert!(
        differ.is_empty(),
        "{} of {} patterns matched other keys:\n{}",
        differ.len(),
        patterns.len(),
        differ[..differ.len().min(10)].join("\n")
    );
}
