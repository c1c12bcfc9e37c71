//! Connection-level commands, the ones that need the session or the node rather than
//! the data, one module per family: `connection` (`HELLO`, `SELECT`, `CLIENT`, `AUTH`,
//! `QUIT`, `RESET`), `server` (`COMMAND`, `INFO`, `CONFIG`, `TIME`, `DEBUG`), `multi`
//! (`MULTI`, `EXEC`, `DISCARD`, `WATCH`, `UNWATCH`) and `cluster` (`CLUSTER`). Data
//! commands live in `kv`.
//!
//! Every request is looked up once, in one table of both kinds ([`lookup`]), and a
//! connection command is run by one function ([`run`]).

mod acl;
pub(crate) mod cluster;
mod connection;
pub(crate) mod keyspace;
mod moves;
pub(crate) mod multi;
pub(crate) mod server;

use std::collections::HashMap;
use std::sync::OnceLock;

use bytes::Bytes;
use resp::Frame;

use crate::session::{After, Session};

pub use acl::read_aclfile;
pub(crate) use multi::runs_inside_multi;

/// What a command name names.
#[derive(Clone, Copy)]
pub enum Command {
    /// A data command: parsed by `kv`, proposed or read through the engine.
    Data(&'static kv::Spec),
    /// A connection-level command, run here.
    Connection(&'static ServerSpec),
}

/// Finds a command of either kind by name, case-insensitively, in one table.
pub fn lookup(name: &[u8]) -> Option<Command> {
    static TABLE: OnceLock<HashMap<&'static [u8], Command, ahash::RandomState>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut table: HashMap<&'static [u8], Command, ahash::RandomState> = kv::command::specs()
            .map(|s| (s.name.as_bytes(), Command::Data(s)))
            .collect();
        for s in SPECS {
            let clash = table.insert(s.name.as_bytes(), Command::Connection(s));
            assert!(
                clash.is_none(),
                "{} is both a data and a connection command",
                s.name
            );
        }
        table
    });
    let mut buf = [0u8; 32];
    table.get(kv::command::fold_name(name, &mut buf)?).copied()
}

/// Runs connection-level command `spec` (its arity already checked).
pub(crate) async fn run(
    session: &mut Session,
    spec: &ServerSpec,
    args: &[Bytes],
) -> (Option<Frame>, After) {
    let reply = match spec.cmd {
        ServerCmd::Hello => connection::hello(session, args).await,
        ServerCmd::Select => connection::select(args),
        ServerCmd::Client => connection::client(session, args),
        ServerCmd::Auth => connection::auth(session, args).await,
        ServerCmd::Quit => return (Some(Frame::OK), After::Close),
        ServerCmd::Reset => connection::reset(session),
        ServerCmd::Command => server::command(args),
        ServerCmd::Info => server::info(session, args),
        ServerCmd::Config => server::config(session, args),
        ServerCmd::Time => server::time(),
        ServerCmd::Debug => server::debug(session, args).await,
        ServerCmd::Multi => multi::multi(session),
        ServerCmd::Exec => multi::exec(session).await,
        ServerCmd::Discard => multi::discard(session),
        ServerCmd::Watch => multi::watch(session, args),
        ServerCmd::Unwatch => multi::unwatch(session),
        ServerCmd::Cluster => cluster::cluster(session, args).await,
        ServerCmd::Readonly => cluster::readonly(session),
        ServerCmd::Readwrite => cluster::readwrite(session),
        ServerCmd::Asking => cluster::asking(session),
        ServerCmd::Acl => acl::acl(session, args).await,
    };
    (Some(reply), After::Continue)
}

/// A connection command's reply inside `EXEC`, where it runs in its place.
pub(crate) async fn run_queued(session: &mut Session, spec: &ServerSpec, args: &[Bytes]) -> Frame {
    Box::pin(run(session, spec, args))
        .await
        .0
        .unwrap_or(Frame::OK)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerCmd {
    Hello,
    Select,
    Client,
    Command,
    Info,
    Config,
    Time,
    Auth,
    Quit,
    Reset,
    Multi,
    Exec,
    Discard,
    Watch,
    Unwatch,
    Debug,
    Cluster,
    Readonly,
    Readwrite,
    Asking,
    Acl,
}

/// A connection-level command's entry in the table.
pub struct ServerSpec {
    pub name: &'static str,
    pub arity: i32,
    pub flags: &'static [&'static str],
    pub group: &'static str,
    pub summary: &'static str,
    pub cmd: ServerCmd,
    /// Key positions (first, last, step), for `WATCH`.
    pub keys: (i32, i32, i32),
}

impl ServerSpec {
    pub fn arity_ok(&self, argc: usize) -> bool {
        if self.arity >= 0 {
            argc == self.arity as usize
        } else {
            argc >= (-self.arity) as usize
        }
    }
}

const NO_KEYS: (i32, i32, i32) = (0, 0, 0);

#[rustfmt::skip]
pub const SPECS: &[ServerSpec] = &[
    ServerSpec { name: "hello", arity: -1, flags: &["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"], group: "connection", summary: "Handshake with Redis", cmd: ServerCmd::Hello, keys: NO_KEYS },
    ServerSpec { name: "select", arity: 2, flags: &["loading", "stale", "fast"], group: "connection", summary: "Change the selected database for the current connection", cmd: ServerCmd::Select, keys: NO_KEYS },
    ServerSpec { name: "client", arity: -2, flags: &[], group: "connection", summary: "A container for client connection commands", cmd: ServerCmd::Client, keys: NO_KEYS },
    ServerSpec { name: "command", arity: -1, flags: &["loading", "stale"], group: "server", summary: "Get array of Redis command details", cmd: ServerCmd::Command, keys: NO_KEYS },
    ServerSpec { name: "info", arity: -1, flags: &["loading", "stale"], group: "server", summary: "Get information and statistics about the server", cmd: ServerCmd::Info, keys: NO_KEYS },
    ServerSpec { name: "config", arity: -2, flags: &[], group: "server", summary: "A container for server configuration commands", cmd: ServerCmd::Config, keys: NO_KEYS },
    ServerSpec { name: "time", arity: 1, flags: &["loading", "stale", "fast"], group: "server", summary: "Return the current server time", cmd: ServerCmd::Time, keys: NO_KEYS },
    ServerSpec { name: "auth", arity: -2, flags: &["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"], group: "connection", summary: "Authenticate to the server", cmd: ServerCmd::Auth, keys: NO_KEYS },
    ServerSpec { name: "quit", arity: -1, flags: &["allow_busy", "noscript", "loading", "stale", "fast", "no_auth"], group: "connection", summary: "Close the connection", cmd: ServerCmd::Quit, keys: NO_KEYS },
    ServerSpec { name: "reset", arity: 1, flags: &["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"], group: "connection", summary: "Reset the connection", cmd: ServerCmd::Reset, keys: NO_KEYS },
    ServerSpec { name: "multi", arity: 1, flags: &["noscript", "loading", "stale", "fast", "allow_busy"], group: "transactions", summary: "Mark the start of a transaction block", cmd: ServerCmd::Multi, keys: NO_KEYS },
    ServerSpec { name: "exec", arity: 1, flags: &["noscript", "loading", "stale", "skip_slowlog"], group: "transactions", summary: "Execute all commands issued after MULTI", cmd: ServerCmd::Exec, keys: NO_KEYS },
    ServerSpec { name: "discard", arity: 1, flags: &["noscript", "loading", "stale", "fast", "allow_busy"], group: "transactions", summary: "Discard all commands issued after MULTI", cmd: ServerCmd::Discard, keys: NO_KEYS },
    ServerSpec { name: "watch", arity: -2, flags: &["noscript", "loading", "stale", "fast", "allow_busy"], group: "transactions", summary: "Watch the given keys to determine execution of the MULTI/EXEC block", cmd: ServerCmd::Watch, keys: (1, -1, 1) },
    ServerSpec { name: "unwatch", arity: 1, flags: &["noscript", "loading", "stale", "fast", "allow_busy"], group: "transactions", summary: "Forget about all watched keys", cmd: ServerCmd::Unwatch, keys: NO_KEYS },
    ServerSpec { name: "debug", arity: -2, flags: &["admin", "noscript", "loading", "stale"], group: "server", summary: "A container for debugging commands (DIGEST)", cmd: ServerCmd::Debug, keys: NO_KEYS },
    ServerSpec { name: "cluster", arity: -2, flags: &[], group: "cluster", summary: "A container for Redis Cluster commands", cmd: ServerCmd::Cluster, keys: NO_KEYS },
    ServerSpec { name: "readonly", arity: 1, flags: &["loading", "stale", "fast"], group: "cluster", summary: "Enables read queries for a connection to a Redis Cluster replica node", cmd: ServerCmd::Readonly, keys: NO_KEYS },
    ServerSpec { name: "readwrite", arity: 1, flags: &["loading", "stale", "fast"], group: "cluster", summary: "Disables read queries for a connection to a Redis Cluster replica node", cmd: ServerCmd::Readwrite, keys: NO_KEYS },
    ServerSpec { name: "asking", arity: 1, flags: &["fast"], group: "cluster", summary: "Sent by cluster clients after an -ASK redirect", cmd: ServerCmd::Asking, keys: NO_KEYS },
    ServerSpec { name: "acl", arity: -2, flags: &[], group: "server", summary: "A container for Access List Control commands", cmd: ServerCmd::Acl, keys: NO_KEYS },
];

/// The positions of a connection command's keys (`WATCH`'s) among `argc` arguments.
pub(crate) fn key_positions(spec: &ServerSpec, argc: usize) -> Vec<usize> {
    let (first, last, step) = spec.keys;
    if first <= 0 || step <= 0 {
        return Vec::new();
    }
    let last = if last < 0 { argc as i32 + last } else { last };
    (first..=last)
        .step_by(step as usize)
        .map(|i| i as usize)
        .collect()
}

/// Subcommands of the connection-level container commands, with Redis's arities.
const SUBCOMMANDS: &[(&str, &[(&str, i32)])] = &[
    (
        "acl",
        &[
            ("cat", -2),
            ("deluser", -3),
            ("dryrun", -4),
            ("genpass", -2),
            ("getuser", 3),
            ("list", 2),
            ("load", 2),
            ("log", -2),
            ("save", 2),
            ("setuser", -3),
            ("users", 2),
            ("whoami", 2),
            ("help", 2),
        ],
    ),
    (
        "client",
        &[
            ("id", 2),
            ("setname", 3),
            ("getname", 2),
            ("info", 2),
            ("list", -2),
            ("help", 2),
        ],
    ),
    (
        "config",
        &[
            ("get", -3),
            ("set", -4),
            ("resetstat", 2),
            ("rewrite", 2),
            ("help", 2),
        ],
    ),
    (
        "command",
        &[
            ("count", 2),
            ("info", -2),
            ("docs", -2),
            ("list", -2),
            ("getkeys", -3),
            ("help", 2),
        ],
    ),
];

/// The error Redis gives when a container command (`OBJECT`, `CLIENT`, `CONFIG`,
/// `COMMAND`) is queued in `MULTI` with an unknown subcommand or the wrong number of
/// arguments: Redis 7 checks subcommands like commands, before queuing.
pub fn subcommand_error(args: &[Bytes]) -> Option<Frame> {
    let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
    if name == "object" {
        let mut ctx = kv::Ctx { now_ms: 0, seed: 0 };
        return match kv::parse(args, &mut ctx) {
            Err(e @ kv::Error::Arity(_)) => Some(e.to_frame()),
            Err(e @ kv::Error::UnknownSubcommand { .. }) => Some(e.to_frame()),
            _ => None,
        };
    }
    let (_, subs) = SUBCOMMANDS.iter().find(|(n, _)| *n == name)?;
    let sub = args.get(1)?;
    let Some((sub_name, arity)) = subs
        .iter()
        .find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(sub))
    else {
        return Some(unknown_subcommand(&name, sub));
    };
    let ok = if *arity >= 0 {
        args.len() == *arity as usize
    } else {
        args.len() >= (-arity) as usize
    };
    (!ok).then(|| kv::Error::Arity(format!("{name}|{sub_name}")).to_frame())
}

pub(crate) fn subcommand_arity(cmd: &str, sub: &[u8]) -> Frame {
    kv::Error::Arity(format!(
        "{cmd}|{}",
        String::from_utf8_lossy(sub).to_ascii_lowercase()
    ))
    .to_frame()
}

pub(crate) fn unknown_subcommand(cmd: &str, sub: &[u8]) -> Frame {
    kv::Error::UnknownSubcommand {
        sub: String::from_utf8_lossy(sub).into_owned(),
        command: cmd.to_ascii_uppercase(),
    }
    .to_frame()
}
