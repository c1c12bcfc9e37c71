//! `requirepass`, `AUTH`, `HELLO ... AUTH`, `-NOAUTH` and `RESET` against a real
//! `redis-server` started with the same password: each session's commands go to both on
//! fresh connections, and every reply must be byte for byte the same (a successful
//! `HELLO`, whose map names the server, only of the same kind). Then the same without a
//! password, where `AUTH <password>` is a mistake and `HELLO ... AUTH` names users.

use crate::harness::{RedisServer, Redraft};

const PASSWORD: &str = "a-password-for-the-tests";

use crate::acl::{compare, exact, shape};

/// A `HELLO` that succeeds: the map it answers names the server and its version, so only
/// its shape is compared.
fn hello(cmd: &[&'static str]) -> crate::acl::Step {
    shape(cmd)
}

#[test]
fn with_a_password_clients_sign_in_as_redis_clients_do() {
    let redis = RedisServer::start_with(&["--requirepass", PASSWORD]);
    let redraft = Redraft::start_with(|c| c.requirepass = PASSWORD.into());
    let sessions = vec![
        vec![
            exact(&["PING"]),
            exact(&["GET", "k"]),
            exact(&["GET"]),
            exact(&["NOSUCHCOMMAND", "x"]),
            exact(&["SET", "k", "v"]),
            exact(&["MULTI"]),
            exact(&["CLIENT", "SETNAME", "x"]),
            exact(&["SELECT", "0"]),
            exact(&["HELLO"]),
            exact(&["HELLO", "3"]),
            exact(&["HELLO", "3", "AUTH", "default", "wrong"]),
            exact(&["HELLO", "2", "AUTH", "alice", PASSWORD]),
            exact(&["AUTH"]),
            exact(&["AUTH", "a", "b", "c"]),
            exact(&["AUTH", "wrong"]),
            exact(&["AUTH", "alice", PASSWORD]),
            exact(&["AUTH", PASSWORD]),
            exact(&["PING"]),
            exact(&["AUTH", "wrong"]),
            exact(&["PING"]),
            exact(&["SET", "k", "v"]),
            exact(&["RESET"]),
            exact(&["GET", "k"]),
            exact(&["AUTH", "default", PASSWORD]),
            exact(&["GET", "k"]),
            exact(&["QUIT"]),
        ],
        vec![
            hello(&["HELLO", "3", "AUTH", "default", PASSWORD]),
            exact(&["PING"]),
            exact(&["GET", "k"]),
            hello(&["HELLO", "2"]),
        ],
        vec![exact(&["QUIT"])],
        vec![
            exact(&["AUTH", PASSWORD]),
            exact(&["MULTI"]),
            exact(&["SET", "k", "w"]),
            exact(&["AUTH", "wrong"]),
            exact(&["EXEC"]),
            exact(&["GET", "k"]),
        ],
    ];
    compare(&redis, &redraft, &sessions);
}

#[test]
fn without_a_password_auth_names_the_default_user_only() {
    let redis = RedisServer::start();
    let redraft = Redraft::start();
    let sessions = vec![vec![
        exact(&["AUTH", "anything"]),
        exact(&["AUTH", "default", "anything"]),
        exact(&["AUTH", "alice", "secret"]),
        exact(&["HELLO", "2", "AUTH", "alice", "secret"]),
        hello(&["HELLO", "2", "AUTH", "default", "whatever"]),
        exact(&["PING"]),
        exact(&["RESET"]),
        exact(&["PING"]),
    ]];
    compare(&redis, &redraft, &sessions);
}
