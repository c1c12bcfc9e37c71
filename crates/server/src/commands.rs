//! Connection and server commands: the ones that need the session or the node rather
//! than the data (`HELLO`, `SELECT`, `CLIENT`, `COMMAND`, `INFO`, `CONFIG`, `TIME`,
//! `AUTH`, transactions, `QUIT`, `RESET`). Data commands live in `kv`.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use kv::args;
use resp::Frame;

use crate::session::Session;

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
    ServerSpec { name: "cluster", arity: -2, flags: &[], group: "cluster", summary: "A container for Redis Cluster commands (FORGET, TRANSFER-LEADER)", cmd: ServerCmd::Cluster, keys: NO_KEYS },
];

/// Finds a connection-level command by name, case-insensitively.
pub fn lookup(name: &[u8]) -> Option<&'static ServerSpec> {
    SPECS
        .iter()
        .find(|s| s.name.as_bytes().eq_ignore_ascii_case(name))
}

/// Subcommands of the connection-level container commands, with Redis's arities.
const SUBCOMMANDS: &[(&str, &[(&str, i32)])] = &[
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
            Err(e) if e.to_string().starts_with("ERR unknown subcommand") => Some(e.to_frame()),
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

fn subcommand_arity(cmd: &str, sub: &[u8]) -> Frame {
    kv::Error::Arity(format!(
        "{cmd}|{}",
        String::from_utf8_lossy(sub).to_ascii_lowercase()
    ))
    .to_frame()
}

fn unknown_subcommand(cmd: &str, sub: &[u8]) -> Frame {
    Frame::error(format!(
        "ERR unknown subcommand '{}'. Try {} HELP.",
        String::from_utf8_lossy(sub),
        cmd.to_ascii_uppercase()
    ))
}

pub fn run(session: &mut Session, cmd: ServerCmd, args: &[Bytes]) -> Frame {
    match cmd {
        ServerCmd::Select => match resp::request::parse_int(&args[1]) {
            None => kv::Error::NotInteger.to_frame(),
            Some(0) => Frame::OK,
            Some(_) => Frame::error("ERR SELECT is not allowed in cluster mode"),
        },
        ServerCmd::Client => client(session, args),
        ServerCmd::Command => command(args),
        ServerCmd::Info => {
            let text = crate::info::render(session, &args[1..]);
            Frame::Verbatim("txt", Bytes::from(text))
        }
        ServerCmd::Config => config(session, args),
        ServerCmd::Time => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            Frame::Array(vec![
                Frame::bulk(now.as_secs().to_string()),
                Frame::bulk(now.subsec_micros().to_string()),
            ])
        }
        ServerCmd::Auth => {
            if args.len() > 3 {
                return Frame::error("ERR syntax error");
            }
            Frame::error("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
        }
        // Handled by the session itself.
        ServerCmd::Hello
        | ServerCmd::Quit
        | ServerCmd::Reset
        | ServerCmd::Multi
        | ServerCmd::Exec
        | ServerCmd::Discard
        | ServerCmd::Watch
        | ServerCmd::Unwatch
        | ServerCmd::Debug
        | ServerCmd::Cluster => {
            Frame::error("ERR internal: session command reached the server table")
        }
    }
}

/// Validates and sets a client name (`CLIENT SETNAME`, `HELLO ... SETNAME`).
pub fn set_client_name(session: &mut Session, name: &[u8]) -> Result<(), Frame> {
    if name.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Err(Frame::error(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    let name = (!name.is_empty()).then(|| String::from_utf8_lossy(name).into_owned());
    *session.info.name.lock().unwrap_or_else(|p| p.into_inner()) = name;
    Ok(())
}

fn client(session: &mut Session, args: &[Bytes]) -> Frame {
    let sub = &args[1];
    let argc = args.len();
    let lower = String::from_utf8_lossy(sub).to_ascii_lowercase();
    match lower.as_str() {
        "id" if argc == 2 => Frame::Integer(session.info.id as i64),
        "setname" if argc == 3 => match set_client_name(session, &args[2]) {
            Ok(()) => Frame::OK,
            Err(e) => e,
        },
        "getname" if argc == 2 => {
            match session
                .info
                .name
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
            {
                Some(n) => Frame::bulk(n),
                None => Frame::Null,
            }
        }
        "info" if argc == 2 => {
            Frame::Verbatim("txt", Bytes::from(format!("{}\n", session.info.line())))
        }
        "list" => {
            if argc == 4 && args::is(&args[2], "type") {
                let t = String::from_utf8_lossy(&args[3]).to_ascii_lowercase();
                if !["normal", "master", "replica", "pubsub"].contains(&t.as_str()) {
                    return Frame::error(format!(
                        "ERR Unknown client type '{}'",
                        String::from_utf8_lossy(&args[3])
                    ));
                }
                if t != "normal" {
                    return Frame::Verbatim("txt", Bytes::new());
                }
            } else if argc != 2 {
                return Frame::error("ERR syntax error");
            }
            let mut text = String::new();
            for c in session.shared.clients.all() {
                text.push_str(&c.line());
                text.push('\n');
            }
            Frame::Verbatim("txt", Bytes::from(text))
        }
        "help" => Frame::Array(
            [
                "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "GETNAME",
                "    Return the name of the current connection.",
                "ID",
                "    Return the ID of the current connection.",
                "INFO",
                "    Return information about the current client connection.",
                "LIST [TYPE <normal|master|replica|pubsub>]",
                "    Return information about client connections.",
                "SETNAME <name>",
                "    Assign the name <name> to the current connection.",
                "HELP",
                "    Print this help.",
            ]
            .iter()
            .map(|l| Frame::Status(l.to_string()))
            .collect(),
        ),
        "id" | "setname" | "getname" | "info" => subcommand_arity("client", sub),
        _ => unknown_subcommand("client", sub),
    }
}

/// The ACL category Redis files a command group under.
fn category(group: &str) -> &'static str {
    match group {
        "string" => "@string",
        "hash" => "@hash",
        "list" => "@list",
        "set" => "@set",
        "sorted-set" => "@sortedset",
        "generic" => "@keyspace",
        "transactions" => "@transaction",
        "server" => "@admin",
        _ => "@connection",
    }
}

fn bulk_pairs(pairs: Vec<(&str, Frame)>) -> Frame {
    Frame::Map(
        pairs
            .into_iter()
            .map(|(k, v)| (Frame::bulk(k), v))
            .collect(),
    )
}

/// Redis 7 key specifications derived from a command's key positions. The flags are
/// coarse (`RO access` for reads, `RW update` for writes); positions are exact.
fn key_specs(spec: &kv::Spec) -> Frame {
    let flags = if spec.is_write() {
        ["RW", "update"]
    } else {
        ["RO", "access"]
    };
    let flags = Frame::Set(flags.iter().map(|f| Frame::Status(f.to_string())).collect());
    let index = |i: i64| {
        bulk_pairs(vec![
            ("type", Frame::bulk("index")),
            ("spec", bulk_pairs(vec![("index", Frame::Integer(i))])),
        ])
    };
    let mut out = Vec::new();
    let ks = spec.keys;
    if ks.first > 0 {
        let lastkey = if ks.last < 0 {
            ks.last as i64
        } else {
            (ks.last - ks.first) as i64
        };
        out.push(bulk_pairs(vec![
            ("flags", flags.clone()),
            ("begin_search", index(ks.first as i64)),
            (
                "find_keys",
                bulk_pairs(vec![
                    ("type", Frame::bulk("range")),
                    (
                        "spec",
                        bulk_pairs(vec![
                            ("lastkey", Frame::Integer(lastkey)),
                            ("keystep", Frame::Integer(ks.step as i64)),
                            ("limit", Frame::Integer(0)),
                        ]),
                    ),
                ]),
            ),
        ]));
    }
    if let Some(at) = ks.numkeys_at {
        out.push(bulk_pairs(vec![
            ("flags", flags),
            ("begin_search", index(at as i64)),
            (
                "find_keys",
                bulk_pairs(vec![
                    ("type", Frame::bulk("keynum")),
                    (
                        "spec",
                        bulk_pairs(vec![
                            ("keynumidx", Frame::Integer(0)),
                            ("firstkey", Frame::Integer(1)),
                            ("keystep", Frame::Integer(1)),
                        ]),
                    ),
                ]),
            ),
        ]));
    }
    Frame::Array(out)
}

/// The `COMMAND INFO` entry of one command.
fn command_entry(name: &str) -> Option<Frame> {
    let flag_set = |flags: Vec<&str>| {
        Frame::Set(
            flags
                .into_iter()
                .map(|f| Frame::Status(f.to_string()))
                .collect(),
        )
    };
    if let Some(s) = kv::command::lookup(name.as_bytes()) {
        let mut flags = s.flag_names();
        if s.keys.numkeys_at.is_some() {
            flags.push("movablekeys");
        }
        let rw = if s.is_write() { "@write" } else { "@read" };
        let speed = if s.flags & kv::command::FAST != 0 {
            "@fast"
        } else {
            "@slow"
        };
        let cats = [rw, category(s.group), speed];
        let (first, last, step) = match (s.keys.first, s.keys.numkeys_at) {
            (0, Some(at)) => (at as i64 + 1, at as i64 + 1, 1),
            _ => (s.keys.first as i64, s.keys.last as i64, s.keys.step as i64),
        };
        return Some(Frame::Array(vec![
            Frame::bulk(s.name),
            Frame::Integer(s.arity as i64),
            flag_set(flags),
            Frame::Integer(first),
            Frame::Integer(last),
            Frame::Integer(step),
            Frame::Set(cats.iter().map(|c| Frame::Status(c.to_string())).collect()),
            Frame::Array(vec![]),
            key_specs(s),
            Frame::Array(vec![]),
        ]));
    }
    let s = lookup(name.as_bytes())?;
    Some(Frame::Array(vec![
        Frame::bulk(s.name),
        Frame::Integer(s.arity as i64),
        flag_set(s.flags.to_vec()),
        Frame::Integer(s.keys.0 as i64),
        Frame::Integer(s.keys.1 as i64),
        Frame::Integer(s.keys.2 as i64),
        Frame::Set(vec![Frame::Status(category(s.group).to_string())]),
        Frame::Array(vec![]),
        Frame::Array(vec![]),
        Frame::Array(vec![]),
    ]))
}

/// The command names after `COMMAND INFO|DOCS`, lower case; every command when none.
fn requested_names(args: &[Bytes]) -> Vec<String> {
    if args.len() == 2 {
        return all_names().into_iter().map(String::from).collect();
    }
    args[2..]
        .iter()
        .map(|a| String::from_utf8_lossy(a).to_ascii_lowercase())
        .collect()
}

/// Every command name, `kv`'s and the connection's.
pub fn all_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = kv::command::specs().map(|s| s.name).collect();
    names.extend(SPECS.iter().map(|s| s.name));
    names
}

fn command(args: &[Bytes]) -> Frame {
    let Some(sub) = args.get(1) else {
        return Frame::Array(all_names().into_iter().filter_map(command_entry).collect());
    };
    let lower = String::from_utf8_lossy(sub).to_ascii_lowercase();
    match lower.as_str() {
        "count" if args.len() == 2 => Frame::Integer(all_names().len() as i64),
        "list" => {
            let pattern = match args.len() {
                2 => None,
                5 if args::is(&args[2], "filterby") && args::is(&args[3], "pattern") => {
                    Some(args[4].clone())
                }
                5 if args::is(&args[2], "filterby") => return Frame::error("ERR syntax error"),
                _ => return Frame::error("ERR syntax error"),
            };
            Frame::Array(
                all_names()
                    .into_iter()
                    .filter(|n| {
                        pattern
                            .as_ref()
                            .is_none_or(|p| args::glob_match(p, n.as_bytes(), true))
                    })
                    .map(Frame::bulk)
                    .collect(),
            )
        }
        "info" => {
            let names = requested_names(args);
            Frame::Array(
                names
                    .iter()
                    .map(|n| command_entry(n).unwrap_or(Frame::NullArray))
                    .collect(),
            )
        }
        "docs" => {
            let names = requested_names(args);
            let mut pairs = Vec::new();
            for n in names {
                let (summary, group) = if let Some(s) = kv::command::lookup(n.as_bytes()) {
                    (s.summary, s.group)
                } else if let Some(s) = lookup(n.as_bytes()) {
                    (s.summary, s.group)
                } else {
                    continue;
                };
                pairs.push((
                    Frame::bulk(&n),
                    Frame::Map(vec![
                        (Frame::bulk("summary"), Frame::bulk(summary)),
                        (Frame::bulk("group"), Frame::bulk(group)),
                    ]),
                ));
            }
            Frame::Map(pairs)
        }
        "getkeys" if args.len() >= 3 => {
            let cmd_args = &args[2..];
            let Some(spec) = kv::command::lookup(&cmd_args[0]) else {
                if lookup(&cmd_args[0]).is_some() {
                    return Frame::error("ERR The command has no key arguments");
                }
                return Frame::error("ERR Invalid command specified");
            };
            if !spec.arity_ok(cmd_args.len()) {
                return Frame::error("ERR Invalid number of arguments specified for command");
            }
            let keys = spec.key_positions(cmd_args);
            if keys.is_empty() {
                return Frame::error("ERR The command has no key arguments");
            }
            Frame::Array(
                keys.into_iter()
                    .map(|i| Frame::Bulk(cmd_args[i].clone()))
                    .collect(),
            )
        }
        "count" | "getkeys" => subcommand_arity("command", sub),
        _ => unknown_subcommand("command", sub),
    }
}

/// Settings `CONFIG GET` reports: the ones clients and tools ask for.
fn config_params(session: &Session) -> Vec<(&'static str, String)> {
    let c = &session.shared.config;
    vec![
        ("appendonly", "no".into()),
        ("bind", c.bind.clone()),
        ("client-query-buffer-limit", "1073741824".into()),
        ("cluster-enabled", "no".into()),
        ("databases", "1".into()),
        ("dir", c.data_dir.display().to_string()),
        ("hash-max-listpack-entries", "128".into()),
        ("hash-max-listpack-value", "64".into()),
        ("hash-max-ziplist-entries", "128".into()),
        ("hash-max-ziplist-value", "64".into()),
        ("hz", c.hz.to_string()),
        ("list-max-listpack-size", "-2".into()),
        ("list-max-ziplist-size", "-2".into()),
        ("maxclients", c.maxclients.to_string()),
        ("maxmemory", "0".into()),
        ("maxmemory-policy", "noeviction".into()),
        ("notify-keyspace-events", "".into()),
        ("port", c.port.to_string()),
        ("proto-max-bulk-len", "536870912".into()),
        ("save", "".into()),
        ("set-max-intset-entries", "512".into()),
        ("slowlog-log-slower-than", "10000".into()),
        ("slowlog-max-len", "128".into()),
        ("timeout", "0".into()),
        ("zset-max-listpack-entries", "128".into()),
        ("zset-max-listpack-value", "64".into()),
        ("zset-max-ziplist-entries", "128".into()),
        ("zset-max-ziplist-value", "64".into()),
    ]
}

fn config(session: &mut Session, args: &[Bytes]) -> Frame {
    let sub = &args[1];
    let lower = String::from_utf8_lossy(sub).to_ascii_lowercase();
    match lower.as_str() {
        "get" if args.len() >= 3 => {
            let params = config_params(session);
            let mut out = Vec::new();
            for (name, value) in &params {
                if args[2..]
                    .iter()
                    .any(|p| args::glob_match(p, name.as_bytes(), true))
                {
                    out.push((Frame::bulk(name), Frame::bulk(value)));
                }
            }
            Frame::Map(out)
        }
        "set" if args.len() >= 4 && args.len().is_multiple_of(2) => Frame::error(format!(
            "ERR Unknown option or number of arguments for CONFIG SET - '{}'",
            String::from_utf8_lossy(&args[2])
        )),
        "resetstat" if args.len() == 2 => {
            let stats = &session.shared.store.stats;
            stats.commands.store(0, Ordering::Relaxed);
            stats.rejected_connections.store(0, Ordering::Relaxed);
            stats.expired_by_sampling.store(0, Ordering::Relaxed);
            Frame::OK
        }
        "get" | "set" | "resetstat" => subcommand_arity("config", sub),
        _ => unknown_subcommand("config", sub),
    }
}
