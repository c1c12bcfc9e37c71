//! Every command in the table, fed random arguments against keys of every type, replies
//! (often with an error) and never panics: bad input must not take a node down.

use bytes::Bytes;
use kv::rng::Rng;
use kv::{Ctx, Db};

const WORDS: &[&str] = &[
    "k",
    "s",
    "h",
    "l",
    "z",
    "str",
    "0",
    "1",
    "-1",
    "2",
    "10",
    "-10",
    "100",
    "1.5",
    "-inf",
    "+inf",
    "inf",
    "nan",
    "(1",
    "[a",
    "(a",
    "-",
    "+",
    "9223372036854775807",
    "-9223372036854775808",
    "99999999999999999999",
    "",
    "NX",
    "XX",
    "GT",
    "LT",
    "CH",
    "INCR",
    "EX",
    "PX",
    "EXAT",
    "PXAT",
    "KEEPTTL",
    "GET",
    "PERSIST",
    "WITHSCORES",
    "BYSCORE",
    "BYLEX",
    "REV",
    "LIMIT",
    "MATCH",
    "COUNT",
    "TYPE",
    "WEIGHTS",
    "AGGREGATE",
    "SUM",
    "MIN",
    "MAX",
    "LEFT",
    "RIGHT",
    "BEFORE",
    "AFTER",
    "RANK",
    "MAXLEN",
    "WITHVALUES",
    "REPLACE",
    "DB",
    "ENCODING",
    "ASYNC",
    "*",
    "a*",
    "[",
    "\\",
    "0x10",
    "1e400",
    "string",
    "hash",
    "list",
    "set",
    "zset",
];

fn random_arg(rng: &mut Rng) -> Bytes {
    match rng.below(10) {
        0 => {
            let len = rng.below(12) as usize;
            Bytes::from((0..len).map(|_| rng.below(256) as u8).collect::<Vec<u8>>())
        }
        1 => Bytes::from(rng.next_u64().to_string()),
        2 => Bytes::from((rng.next_u64() as i64).to_string()),
        _ => Bytes::from(WORDS[rng.below(WORDS.len() as u64) as usize]),
    }
}

fn seed_db(db: &mut Db, now: i64) {
    for line in [
        "SET str hello",
        "HSET h f1 v1 f2 2",
        "RPUSH l a b c 1 2",
        "SADD s a b 1 2",
        "ZADD z 1 a 2 b 3 c",
        "SET k 10",
    ] {
        let args: Vec<Bytes> = line
            .split(' ')
            .map(|s| Bytes::from(s.to_string()))
            .collect();
        let mut ctx = Ctx {
            now_ms: now,
            seed: 0,
        };
        let cmd = kv::parse(&args, &mut ctx).expect("seed command");
        cmd.execute(db, now);
    }
}

#[test]
fn random_arguments_never_panic() {
    let specs: Vec<&kv::Spec> = kv::command::specs().collect();
    let mut rng = Rng::new(0x5eed);
    let now = 1_700_000_000_000;
    let mut db = Db::new();
    seed_db(&mut db, now);
    let mut executed = 0;
    for round in 0..40_000u64 {
        if round % 500 == 0 {
            db = Db::new();
            seed_db(&mut db, now);
        }
        let spec = specs[rng.below(specs.len() as u64) as usize];
        let argc = rng.below(8) as usize;
        let mut args = vec![Bytes::from(spec.name.to_uppercase())];
        args.extend((0..argc).map(|_| random_arg(&mut rng)));
        let mut ctx = Ctx {
            now_ms: now,
            seed: rng.next_u64(),
        };
        let shown: Vec<String> = args
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            match kv::parse(&args, &mut ctx) {
                Ok(cmd) => {
                    cmd.execute(&mut db, now);
                    true
                }
                Err(e) => {
                    assert!(!e.to_string().is_empty());
                    false
                }
            }
        }));
        match result {
            Ok(ran) => executed += ran as usize,
            Err(_) => panic!("panicked on {shown:?}"),
        }
    }
    assert!(
        executed > 5_000,
        "only {executed} commands got past parsing: the generator is too weak"
    );
}
