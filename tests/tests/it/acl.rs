//! ACL users and rules: the same sessions against a real `redis-server` 7.0.15 and an
//! in-process redraft, every reply compared byte for byte (except where said: `ACL LOG`'s
//! ages and client lines, `ACL GENPASS`'s random digits); then a 3-node cluster, where
//! users made on one node hold on every node, through a follower that forwards, and
//! after every node is killed with SIGKILL and restarted; and an ACL file that seeds a
//! new cluster.
//!
//! Where redraft words a user's command rules as Redis 7.2 does (the rules given, a later
//! rule for the same name replacing the earlier) rather than as 7.0 rebuilds them from
//! its command bitmap, the sessions use rules both describe alike.

use std::time::Duration;

use redis::Value;

use crate::harness::{show_cmd, Conn, RedisServer, Redraft};
use crate::nodes::{poll, Cluster, Options};

/// How a reply is compared.
#[derive(Clone, Copy, PartialEq)]
pub enum Check {
    Exact,
    /// Same kind of reply, and for an array the same length (`ACL LOG`, whose ages and
    /// client lines differ; a successful `HELLO`, which names the server); an error
    /// reply must be the same error.
    Shape,
    /// A bulk string of the same length (`ACL GENPASS`).
    Length,
}

pub type Step = (Vec<&'static str>, Check);

pub fn exact(cmd: &[&'static str]) -> Step {
    (cmd.to_vec(), Check::Exact)
}

pub fn shape(cmd: &[&'static str]) -> Step {
    (cmd.to_vec(), Check::Shape)
}

fn length(cmd: &[&'static str]) -> Step {
    (cmd.to_vec(), Check::Length)
}

fn same_shape(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => x.len() == y.len(),
        _ => std::mem::discriminant(a) == std::mem::discriminant(b),
    }
}

/// Runs each session on fresh connections to both and lists every difference (the
/// differential tests of `auth` use it too).
pub fn compare(redis: &RedisServer, redraft: &Redraft, sessions: &[Vec<Step>]) {
    let mut differ = Vec::new();
    for (n, session) in sessions.iter().enumerate() {
        let mut conns = [Conn::connect(redis.addr()), Conn::connect(redraft.addr())];
        for (cmd, check) in session {
            let [(want_v, want), (got_v, got)] = conns.each_mut().map(|c| c.call_raw(cmd));
            let same = match check {
                Check::Exact => want == got,
                // An error is compared whole, whatever the check.
                Check::Shape if want.starts_with(b"-") || got.starts_with(b"-") => want == got,
                Check::Shape => match (&want_v, &got_v) {
                    (Ok(a), Ok(b)) => same_shape(a, b),
                    _ => want == got,
                },
                Check::Length => want.len() == got.len() && want.first() == got.first(),
            };
            if !same {
                differ.push(format!(
                    "session {n}, {}: redis {:?}, redraft {:?}",
                    show_cmd(cmd),
                    String::from_utf8_lossy(&want),
                    String::from_utf8_lossy(&got)
                ));
            }
        }
    }
    assert!(differ.is_empty(), "replies differ:\n{}", differ.join("\n"));
}

#[test]
fn acl_commands_answer_as_redis_does() {
    let redis = RedisServer::start();
    let redraft = Redraft::start();
    let sessions = vec![
        vec![
            exact(&["ACL", "LIST"]),
            exact(&["ACL", "USERS"]),
            exact(&["ACL", "WHOAMI"]),
            exact(&["ACL", "GETUSER", "default"]),
            exact(&["ACL", "GETUSER", "nobody"]),
            exact(&[
                "ACL", "SETUSER", "alice", "on", ">p1", "~foo*", "%R~bar*", "+@read", "+set",
                "&ch*",
            ]),
            exact(&["ACL", "SETUSER", "bob"]),
            exact(&["ACL", "LIST"]),
            exact(&["ACL", "GETUSER", "alice"]),
            exact(&["ACL", "GETUSER", "bob"]),
            exact(&["ACL", "USERS"]),
            exact(&["ACL", "SETUSER", "bob", "#aaa"]),
            exact(&["ACL", "SETUSER", "bob", "+nosuch"]),
            exact(&["ACL", "SETUSER", "bob", "+@nosuch"]),
            exact(&["ACL", "SETUSER", "bob", "foo"]),
            exact(&["ACL", "SETUSER", "bob", "+config|nosuch"]),
            exact(&["ACL", "SETUSER", "bob", "on", "<never-set"]),
            exact(&["ACL", "SETUSER", "bob", "allkeys", "~more"]),
            exact(&["ACL", "SETUSER", "bob", "allchannels", "&more"]),
            exact(&["ACL", "SETUSER", "a b"]),
            exact(&["ACL", "GETUSER", "bob"]),
            exact(&[
                "ACL",
                "SETUSER",
                "bob",
                "on",
                "nopass",
                "allkeys",
                "+@all",
                "-@dangerous",
            ]),
            exact(&["ACL", "GETUSER", "bob"]),
            exact(&["ACL", "SETUSER", "bob", "reset"]),
            exact(&["ACL", "LIST"]),
            exact(&[
                "ACL",
                "SETUSER",
                "bob",
                "#0123456789012345678901234567890123456789012345678901234567890123",
                "%W~w*",
                "%RW~rw*",
            ]),
            exact(&["ACL", "GETUSER", "bob"]),
            exact(&[
                "ACL",
                "SETUSER",
                "bob",
                "!0123456789012345678901234567890123456789012345678901234567890123",
            ]),
            exact(&["ACL", "DELUSER", "default"]),
            exact(&["ACL", "DELUSER", "bob", "nobody", "bob"]),
            exact(&["ACL", "DELUSER", "bob"]),
            exact(&["ACL", "CAT"]),
            exact(&["ACL", "CAT", "nosuch"]),
            exact(&["ACL", "GENPASS", "0"]),
            exact(&["ACL", "GENPASS", "4097"]),
            exact(&["ACL", "GENPASS", "x"]),
            length(&["ACL", "GENPASS"]),
            length(&["ACL", "GENPASS", "5"]),
            length(&["ACL", "GENPASS", "4096"]),
            exact(&["ACL", "SAVE"]),
            exact(&["ACL", "LOAD"]),
            exact(&["ACL"]),
            exact(&["ACL", "NOSUCH"]),
            exact(&["ACL", "SETUSER"]),
            exact(&["ACL", "GETUSER"]),
            exact(&["ACL", "DRYRUN", "alice"]),
            exact(&["ACL", "DRYRUN", "alice", "get", "foo1"]),
            exact(&["ACL", "DRYRUN", "alice", "set", "foo1", "v"]),
            exact(&["ACL", "DRYRUN", "alice", "set", "bar1", "v"]),
            exact(&["ACL", "DRYRUN", "alice", "set", "x", "v"]),
            exact(&["ACL", "DRYRUN", "alice", "del", "foo1"]),
            exact(&["ACL", "DRYRUN", "alice", "get"]),
            exact(&["ACL", "DRYRUN", "alice", "nosuch"]),
            exact(&["ACL", "DRYRUN", "nobody", "get", "k"]),
            exact(&["ACL", "LOG", "RESET"]),
        ],
        // Alice's rights, command by command.
        vec![
            exact(&["AUTH", "alice", "wrong"]),
            exact(&["AUTH", "alice", "p1"]),
            exact(&["ACL", "WHOAMI"]),
            exact(&["SET", "foo1", "v"]),
            exact(&["GET", "foo1"]),
            exact(&["GET", "bar1"]),
            exact(&["SET", "bar1", "v"]),
            exact(&["SET", "x", "v"]),
            exact(&["MGET", "foo1", "x"]),
            exact(&["MGET", "foo1", "bar1"]),
            exact(&["DEL", "foo1"]),
            exact(&["INCR", "foo2"]),
            exact(&["FLUSHALL"]),
            exact(&["CONFIG", "GET", "timeout"]),
            exact(&["PING"]),
            exact(&["MULTI"]),
            exact(&["SET", "x", "1"]),
            exact(&["SET", "foo3", "1"]),
            exact(&["EXEC"]),
            exact(&["GET", "foo3"]),
            exact(&["ACL", "LIST"]),
            exact(&["AUTH", "nobody", "x"]),
            exact(&["RESET"]),
            exact(&["ACL", "WHOAMI"]),
        ],
        // What the refusals left in the log, newest first: counts, reasons, contexts,
        // objects and users (ages and client lines differ by nature).
        vec![
            shape(&["ACL", "LOG"]),
            shape(&["ACL", "LOG", "2"]),
            exact(&["ACL", "LOG", "-1"]),
            exact(&["ACL", "LOG", "RESET"]),
            exact(&["ACL", "LOG"]),
        ],
        // A default user with a password of its own (not requirepass) signs everyone out.
        vec![
            exact(&["ACL", "SETUSER", "default", ">pw"]),
            exact(&["ACL", "SETUSER", "default", "nopass"]),
        ],
        vec![
            exact(&["ACL", "SETUSER", "default", "resetpass", ">pw"]),
            exact(&["ACL", "WHOAMI"]),
        ],
        vec![
            exact(&["PING"]),
            exact(&["AUTH", "pw"]),
            exact(&["PING"]),
            exact(&["ACL", "SETUSER", "default", "nopass"]),
        ],
    ];
    compare(&redis, &redraft, &sessions);
    // The log's entries, field by field but for age and client line.
    let mut conns = [Conn::connect(redis.addr()), Conn::connect(redraft.addr())];
    for c in conns.iter_mut() {
        c.call(&["ACL", "LOG", "RESET"]).unwrap();
        let mut alice = Conn::connect(c.peer());
        alice.call(&["AUTH", "alice", "p1"]).unwrap();
        let _ = alice.call(&["SET", "x", "1"]);
        let _ = alice.call(&["SET", "x", "1"]);
        let _ = alice.call(&["FLUSHALL"]);
        let _ = alice.call(&["AUTH", "alice", "bad"]);
    }
    let [want, got] = conns.each_mut().map(log_fields);
    assert_eq!(got, want, "ACL LOG differs");
}

/// `ACL LOG`'s entries without their age and client line.
fn log_fields(conn: &mut Conn) -> Vec<Vec<String>> {
    let Value::Array(entries) = conn.call(&["ACL", "LOG"]).unwrap() else {
        panic!("ACL LOG is not an array");
    };
    entries
        .iter()
        .map(|e| {
            let Value::Array(fields) = e else {
                panic!("an ACL LOG entry is not an array");
            };
            fields
                .chunks(2)
                .filter(|kv| !matches!(&kv[0], Value::BulkString(k) if k == b"age-seconds" || k == b"client-info"))
                .flat_map(|kv| kv.iter().map(crate::harness::show_value))
                .collect()
        })
        .collect()
}

fn call(c: &Cluster, id: u64, args: &[&str]) -> Result<Value, String> {
    c.try_call(id, args)
}

/// A client of node `id` signed in as `user`.
fn signed_in(c: &Cluster, id: u64, user: &str, password: &str) -> Result<Conn, String> {
    let mut conn = c.conn_with_timeout(id, Duration::from_secs(10))?;
    match refusal(conn.call(&["AUTH", user, password])) {
        e if e.is_empty() => Ok(conn),
        e => Err(e),
    }
}

/// The error text of a reply (empty for a reply that is not an error).
fn refusal(reply: redis::RedisResult<Value>) -> String {
    match reply {
        Ok(v) => crate::harness::error_text(&v).unwrap_or_default(),
        Err(e) => crate::harness::redis_error_text(&e),
    }
}

#[test]
fn users_made_on_one_node_hold_on_every_node_and_after_kill_9() {
    let mut c = Cluster::start("acl", 3, Options::default());
    let ok = Value::Okay;
    assert_eq!(
        call(
            &c,
            1,
            &[
                "ACL",
                "SETUSER",
                "reader",
                "on",
                ">r-pass",
                "~*",
                "+@read",
                "+@connection"
            ]
        ),
        Ok(ok.clone())
    );
    assert_eq!(
        call(
            &c,
            2,
            &[
                "ACL",
                "SETUSER",
                "writer",
                "on",
                ">w-pass",
                "~w:*",
                "+@all",
                "-@dangerous"
            ]
        ),
        Ok(ok.clone())
    );
    call(&c, 3, &["SET", "k", "v"]).unwrap();
    let leader = c.wait_leader(&c.ids(), Duration::from_secs(30));
    let followers: Vec<u64> = c.ids().into_iter().filter(|&id| id != leader).collect();
    // Every node takes both users once its replica of the meta group applied them.
    for id in c.ids() {
        let reader = poll(Duration::from_secs(10), || {
            signed_in(&c, id, "reader", "r-pass").ok()
        })
        .unwrap_or_else(|| panic!("node {id} never took the reader"));
        let mut reader = reader;
        assert_eq!(
            reader.call(&["GET", "k"]).unwrap(),
            Value::BulkString(b"v".to_vec())
        );
        let refused = refusal(reader.call(&["SET", "k", "w"]));
        assert_eq!(
            refused, "NOPERM this user has no permissions to run the 'set' command",
            "node {id}"
        );
        let mut writer = poll(Duration::from_secs(10), || {
            signed_in(&c, id, "writer", "w-pass").ok()
        })
        .unwrap_or_else(|| panic!("node {id} never took the writer"));
        assert_eq!(
            writer
                .call(&["SET", format!("w:{id}").as_str(), "1"])
                .unwrap(),
            Value::Okay
        );
        let other_key = refusal(writer.call(&["SET", "k", "x"]));
        assert!(other_key.starts_with("NOPERM"), "node {id}");
        let flush = refusal(writer.call(&["FLUSHALL"]));
        assert!(flush.starts_with("NOPERM"), "node {id}");
    }
    // The key the readers were refused is untouched, on every node: the refusal came
    // before anything was forwarded.
    for &id in &followers {
        assert_eq!(
            call(&c, id, &["GET", "k"]),
            Ok(Value::BulkString(b"v".to_vec()))
        );
    }
    // A change made on one node is enforced on the others: the reader loses +@read.
    call(&c, followers[0], &["ACL", "SETUSER", "reader", "-get"]).unwrap();
    for id in c.ids() {
        let refused = poll(Duration::from_secs(10), || {
            let mut r = signed_in(&c, id, "reader", "r-pass").ok()?;
            Some(refusal(r.call(&["GET", "k"]))).filter(|e| !e.is_empty())
        })
        .unwrap_or_else(|| panic!("node {id} still lets the reader GET"));
        assert!(refused.starts_with("NOPERM"));
    }
    // A deleted user's connections are closed and it signs in nowhere.
    let mut held = signed_in(&c, 2, "writer", "w-pass").unwrap();
    assert_eq!(
        call(&c, 3, &["ACL", "DELUSER", "writer"]),
        Ok(Value::Int(1))
    );
    assert!(
        poll(Duration::from_secs(10), || held
            .call(&["PING"])
            .is_err()
            .then_some(()))
        .is_some(),
        "a connection of a deleted user stays open"
    );
    for id in c.ids() {
        assert!(poll(Duration::from_secs(10), || signed_in(
            &c, id, "writer", "w-pass"
        )
        .is_err()
        .then_some(()))
        .is_some());
    }
    // Every node killed at once, and restarted: the users are in the log.
    c.kill9_all();
    let ids = c.ids();
    c.restart_all(&ids);
    for id in c.ids() {
        let mut reader = poll(Duration::from_secs(30), || {
            signed_in(&c, id, "reader", "r-pass").ok()
        })
        .unwrap_or_else(|| panic!("node {id} lost the reader after kill -9"));
        assert!(
            !refusal(reader.call(&["GET", "k"])).is_empty(),
            "node {id} forgot -get"
        );
        assert_eq!(reader.call(&["STRLEN", "k"]).unwrap(), Value::Int(1));
        assert!(signed_in(&c, id, "writer", "w-pass").is_err());
    }
}

#[test]
fn an_acl_file_seeds_a_new_cluster_and_acl_load_and_save_use_it() {
    let dir = std::env::temp_dir().join(format!("redraft-aclfile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("users.acl");
    std::fs::write(
        &file,
        "# the first users\nuser default on >admin-pass ~* &* +@all\nuser app on >app-pass ~app:* +@all -@dangerous\n",
    )
    .unwrap();
    let options = Options {
        extra: vec!["--aclfile".into(), file.display().to_string()],
        password: Some("admin-pass"),
        ..Options::default()
    };
    let c = Cluster::start("aclfile", 3, options);
    for id in c.ids() {
        // No client runs anything without signing in, from the first command on.
        let mut anonymous = Conn::connect(c.addr(id));
        let refused = refusal(anonymous.call(&["GET", "app:1"]));
        assert_eq!(refused, "NOAUTH Authentication required.");
        let mut app = signed_in(&c, id, "app", "app-pass").unwrap();
        assert_eq!(
            app.call(&["SET", format!("app:{id}").as_str(), "1"])
                .unwrap(),
            Value::Okay
        );
        assert!(refusal(app.call(&["SET", "other", "1"])).starts_with("NOPERM"));
    }
    // ACL SAVE writes the cluster's users to the file; ACL LOAD puts the file's users
    // back, on every node.
    let mut admin = signed_in(&c, 1, "default", "admin-pass").unwrap();
    assert_eq!(
        admin
            .call(&["ACL", "SETUSER", "temp", "on", ">t", "+@all", "~*"])
            .unwrap(),
        Value::Okay
    );
    assert_eq!(admin.call(&["ACL", "SAVE"]).unwrap(), Value::Okay);
    let saved = std::fs::read_to_string(&file).unwrap();
    assert!(saved.contains("user temp on #"), "{saved}");
    assert!(!saved.contains(">t"), "a password is saved hashed: {saved}");
    std::fs::write(&file, saved.replace("user temp on", "user temp off")).unwrap();
    assert_eq!(admin.call(&["ACL", "LOAD"]).unwrap(), Value::Okay);
    for id in c.ids() {
        assert!(
            poll(Duration::from_secs(10), || signed_in(&c, id, "temp", "t")
                .is_err()
                .then_some(()))
            .is_some(),
            "node {id} still signs temp in after ACL LOAD turned it off"
        );
    }
    std::fs::write(&file, "user broken +nosuchcommand\n").unwrap();
    let bad = refusal(admin.call(&["ACL", "LOAD"]));
    assert!(bad.contains("Unknown command"), "{bad:?}");
    assert!(
        signed_in(&c, 2, "app", "app-pass").is_ok(),
        "a bad file changed nothing"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
