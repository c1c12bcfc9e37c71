//! Real clients against redraft: the `redis` crate (typed commands, pipelines, transactions,
//! the async multiplexed connection) and Debian's `redis-cli` (arguments, stdin, RESP3), whose
//! output is compared with the same invocation against a real `redis-server`.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::process::{Command, Stdio};

use redis::{AsyncCommands, Commands, RedisResult};

use crate::harness::{redis_error_text, require_binary, RedisServer, Target};

fn client(target: &Target) -> redis::Client {
    redis::Client::open(format!("redis://{}/", target.addr())).expect("client")
}

#[test]
fn typed_commands_through_the_redis_crate() {
    let target = Target::start();
    let mut con = client(&target).get_connection().expect("connect");

    let _: () = con.set("name", "redraft").unwrap();
    let name: String = con.get("name").unwrap();
    assert_eq!(name, "redraft");
    let missing: Option<String> = con.get("nosuch").unwrap();
    assert_eq!(missing, None);

    assert_eq!(con.incr::<_, _, i64>("n", 5).unwrap(), 5);
    assert_eq!(con.decr::<_, _, i64>("n", 2).unwrap(), 3);
    let err = con.incr::<_, _, i64>("name", 1).unwrap_err();
    assert_eq!(
        redis_error_text(&err),
        "ERR value is not an integer or out of range"
    );
    let err = con.lpush::<_, _, i64>("name", "x").unwrap_err();
    assert_eq!(
        redis_error_text(&err),
        "WRONGTYPE Operation against a key holding the wrong kind of value"
    );

    let _: () = con.mset(&[("a", "1"), ("b", "2")]).unwrap();
    let got: Vec<Option<String>> = con.mget(&["a", "nosuch", "b"]).unwrap();
    assert_eq!(got, vec![Some("1".into()), None, Some("2".into())]);

    let _: () = con
        .hset_multiple("h", &[("f1", "v1"), ("f2", "v2")])
        .unwrap();
    let h: HashMap<String, String> = con.hgetall("h").unwrap();
    assert_eq!(
        h,
        HashMap::from([("f1".into(), "v1".into()), ("f2".into(), "v2".into())])
    );

    let _: () = con.rpush("l", &["x", "y", "z"]).unwrap();
    let l: Vec<String> = con.lrange("l", 0, -1).unwrap();
    assert_eq!(l, vec!["x", "y", "z"]);

    let _: () = con.sadd("s", &["p", "q", "p"]).unwrap();
    let s: HashSet<String> = con.smembers("s").unwrap();
    assert_eq!(s, HashSet::from(["p".to_string(), "q".to_string()]));

    let _: () = con
        .zadd_multiple("z", &[(1.5, "one"), (2.0, "two")])
        .unwrap();
    let z: Vec<(String, f64)> = con.zrange_withscores("z", 0, -1).unwrap();
    assert_eq!(z, vec![("one".into(), 1.5), ("two".into(), 2.0)]);
    let score: Option<f64> = con.zscore("z", "two").unwrap();
    assert_eq!(score, Some(2.0));

    let _: () = con.expire("name", 1000).unwrap();
    let ttl: i64 = con.ttl("name").unwrap();
    assert!((999..=1000).contains(&ttl), "ttl {ttl}");
    let exists: bool = con.exists("name").unwrap();
    assert!(exists);
    let deleted: i64 = con.del(&["name", "nosuch"]).unwrap();
    assert_eq!(deleted, 1);
}

#[test]
fn pipelines_and_transactions_through_the_redis_crate() {
    let target = Target::start();
    let mut con = client(&target).get_connection().expect("connect");

    let (a, b, n): (String, Option<String>, i64) = redis::pipe()
        .set("pa", "1")
        .ignore()
        .get("pa")
        .get("pb")
        .incr("pn", 10)
        .query(&mut con)
        .unwrap();
    assert_eq!((a.as_str(), b, n), ("1", None, 10));

    // A long pipeline: one write, many replies in order.
    let mut pipe = redis::pipe();
    for i in 0..1000 {
        pipe.incr("counter", 1);
        pipe.set(format!("key{i}"), i).ignore();
    }
    let counts: Vec<i64> = pipe.query(&mut con).unwrap();
    assert_eq!(counts, (1..=1000).collect::<Vec<i64>>());

    // MULTI/EXEC through an atomic pipeline.
    let (x, y): (i64, i64) = redis::pipe()
        .atomic()
        .incr("tx", 1)
        .incr("tx", 2)
        .query(&mut con)
        .unwrap();
    assert_eq!((x, y), (1, 3));

    // WATCH: a write from another client aborts the transaction (EXEC replies nil).
    let mut other = client(&target).get_connection().expect("connect");
    let _: () = redis::cmd("WATCH").arg("tx").query(&mut con).unwrap();
    let _: () = other.set("tx", 100).unwrap();
    let aborted: Option<(i64,)> = redis::pipe()
        .atomic()
        .incr("tx", 1)
        .query(&mut con)
        .unwrap();
    assert_eq!(aborted, None);
    let tx: i64 = con.get("tx").unwrap();
    assert_eq!(tx, 100);

    // redis::transaction retries until its WATCH holds.
    let key = "retry";
    let _: () = con.set(key, 1).unwrap();
    let (v,): (i64,) = redis::transaction(&mut con, &[key], |con, pipe| {
        let old: i64 = con.get(key)?;
        pipe.set(key, old * 10).ignore().get(key).query(con)
    })
    .unwrap();
    assert_eq!(v, 10);
}

#[test]
fn async_multiplexed_connection() {
    let target = Target::start();
    let client = client(&target);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let con = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect");
        let mut tasks = Vec::new();
        for t in 0..8 {
            let mut con = con.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..100 {
                    let _: i64 = con.incr("async:counter", 1).await?;
                    let _: () = con.set(format!("async:{t}:{i}"), i).await?;
                }
                RedisResult::Ok(())
            }));
        }
        for t in tasks {
            t.await.expect("task").expect("commands");
        }
        let mut con = con;
        let n: i64 = con.get("async:counter").await.unwrap();
        assert_eq!(n, 800);
        let v: i64 = con.get("async:7:99").await.unwrap();
        assert_eq!(v, 99);
        let r: Vec<redis::Value> = redis::pipe()
            .set("async:p", "v")
            .get("async:p")
            .query_async(&mut con)
            .await
            .unwrap();
        assert_eq!(
            r,
            vec![redis::Value::Okay, redis::Value::BulkString(b"v".to_vec())]
        );
    });
}

/// Runs `redis-cli -p PORT args...` with `stdin`, returning stdout and stderr.
fn redis_cli(port: u16, args: &[&str], stdin: Option<&str>) -> (String, String) {
    let mut child = Command::new("redis-cli")
        .arg("-p")
        .arg(port.to_string())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn redis-cli (apt-get install redis-tools)");
    {
        let mut input = child.stdin.take().expect("stdin");
        if let Some(s) = stdin {
            input
                .write_all(s.as_bytes())
                .expect("write redis-cli stdin");
        }
    }
    let out = child.wait_with_output().expect("redis-cli output");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn redis_cli_against_redraft() {
    require_binary("redis-cli");
    let target = Target::start();
    let port = target.port();
    assert_eq!(redis_cli(port, &["SET", "k", "v"], None).0, "OK\n");
    assert_eq!(redis_cli(port, &["GET", "k"], None).0, "v\n");
    assert_eq!(redis_cli(port, &["PING"], None).0, "PONG\n");
    let (out, _) = redis_cli(port, &[], Some("SET a 1\nINCR a\nGET a\nGET nosuch\n"));
    assert_eq!(out, "OK\n2\n2\n\n");
}

/// The same redis-cli invocations against redis-server and redraft print the same.
#[test]
fn redis_cli_output_matches_redis() {
    require_binary("redis-cli");
    let redis = RedisServer::start();
    let target = Target::start();
    let stdin_script = "SET a 1\nINCR a\nGET a\nGET nosuch\nINCR nosuch2\nHSET h f \"v w\"\nHGETALL h\n\
                        RPUSH l x y z\nLRANGE l 0 -1\nLPOP l 5\nZADD z 1.5 m 2 n\nZRANGE z 0 -1 WITHSCORES\n\
                        ZSCORE z m\nSADD s 3 1 2\nSMEMBERS s\nINCR h\nNOSUCHCOMMAND x\nGET\nTYPE h\nEXISTS a h nosuch\n\
                        SET t v EX 1000\nTTL t\nMULTI\nINCR a\nGET a\nEXEC\nDEL a h l z s t\nDBSIZE\n";
    let invocations: Vec<(Vec<&str>, Option<&str>)> = vec![
        (vec!["SET", "k", "v"], None),
        (vec!["GET", "k"], None),
        (vec!["--no-raw", "GET", "k"], None),
        (vec!["GET", "nosuch"], None),
        (vec!["--no-raw", "GET", "nosuch"], None),
        (vec!["INCR", "k"], None),
        (vec!["--no-raw", "INCR", "k"], None),
        (vec![], Some(stdin_script)),
        (vec!["--no-raw"], Some(stdin_script)),
        (
            vec!["-3", "--no-raw"],
            Some("HSET h f v\nHGETALL h\nZADD z 1.5 m\nZSCORE z m\nGET nosuch\nSMEMBERS nosuch\n"),
        ),
        (vec!["-x", "SET", "fromstdin"], Some("line one\nline two\n")),
        (vec!["GET", "fromstdin"], None),
        (vec!["--no-raw", "DEL", "k", "h", "z", "fromstdin"], None),
    ];
    let mut diffs = Vec::new();
    for (args, stdin) in &invocations {
        let a = redis_cli(redis.port(), args, *stdin);
        let b = redis_cli(target.port(), args, *stdin);
        if a != b {
            diffs.push(format!(
                "redis-cli {} (stdin {:?})\n   redis:   {:?}\n   {}: {:?}",
                args.join(" "),
                stdin,
                a,
                target.name(),
                b
            ));
        }
    }
    assert!(
        diffs.is_empty(),
        "redis-cli prints differently:\n{}",
        diffs.join("\n")
    );
}
