//! The server family: `COMMAND`, `INFO`, `CONFIG`, `TIME`, `DEBUG`.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use kv::args;
use resp::Frame;

use super::{lookup, subcommand_arity, unknown_subcommand, Command, ServerSpec, SPECS};
use crate::session::Session;

/// `INFO [section ...]`.
pub(super) fn info(session: &Session, args: &[Bytes]) -> Frame {
    let text = crate::info::render(session, &args[1..]);
    Frame::Verbatim("txt", Bytes::from(text))
}

/// `TIME`.
pub(super) fn time() -> Frame {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Frame::Array(vec![
        Frame::bulk(now.as_secs().to_string()),
        Frame::bulk(now.subsec_micros().to_string()),
    ])
}

/// `DEBUG DIGEST`: the digest of this node's data after each group's read barrier, so
/// it is the same on every node that has applied the same logs: the XOR of the groups'
/// digests, which is what one database holding every key would digest to.
/// `DEBUG DIGEST-GROUP <id>`: one data group's digest; group 0 is the meta group, whose
/// digest is its cluster map's as this replica has applied it.
pub(super) async fn debug(session: &mut Session, args: &[Bytes]) -> Frame {
    let engine = &session.shared.engine;
    let now = session.now_ms;
    if kv::args::is(&args[1], "slotmove-fault") && args.len() == 4 {
        return slotmove_fault(&args[2], &args[3]);
    }
    if kv::args::is(&args[1], "group-slot-keys") && args.len() == 4 {
        return group_slot_keys(session, &args[2], &args[3]);
    }
    let groups = if kv::args::is(&args[1], "digest") && args.len() == 2 {
        engine.groups()
    } else if kv::args::is(&args[1], "digest-group") && args.len() == 3 {
        let wanted = std::str::from_utf8(&args[2])
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .map(types::GroupId);
        if wanted == Some(types::GroupId::META) {
            if let Some(digest) = engine.meta_digest(now) {
                return Frame::Status(digest);
            }
        }
        match wanted.filter(|g| engine.groups().contains(g)) {
            Some(g) => vec![g],
            None => return Frame::error("ERR no such data group"),
        }
    } else {
        return unknown_subcommand("debug", &args[1]);
    };
    let mut acc = [0u8; 20];
    for group in groups {
        match engine.read(group, |db| db.digest(now)).await {
            Ok(digest) => {
                for (i, byte) in acc.iter_mut().enumerate() {
                    *byte ^= u8::from_str_radix(&digest[2 * i..2 * i + 2], 16).unwrap_or(0);
                }
            }
            Err(e) => return e,
        }
    }
    Frame::Status(acc.iter().map(|b| format!("{b:02x}")).collect())
}

/// `DEBUG SLOTMOVE-FAULT <point> CRASH|PAUSE|OFF`: for the fault tests, what this node's
/// slot mover does when it passes `point` (see `cluster::migrate`).
fn slotmove_fault(point: &[u8], what: &[u8]) -> Frame {
    let fault = if kv::args::is(what, "crash") {
        Some(cluster::MoveFault::Crash)
    } else if kv::args::is(what, "pause") {
        Some(cluster::MoveFault::Pause)
    } else if kv::args::is(what, "off") {
        None
    } else {
        return Frame::error("ERR the fault is CRASH, PAUSE or OFF");
    };
    if cluster::set_move_fault(&String::from_utf8_lossy(point), fault) {
        Frame::OK
    } else {
        Frame::error(format!(
            "ERR the fault points are {}",
            cluster::FAULT_POINTS.join(", ")
        ))
    }
}

/// `DEBUG GROUP-SLOT-KEYS <group> <slot>`: the keys of `slot` this node's replica of data
/// group `group` holds (expired ones not yet removed included), whether or not the group
/// serves the slot: what the fault tests check a group that gave a slot away for.
fn group_slot_keys(session: &Session, group: &[u8], slot: &[u8]) -> Frame {
    let engine = &session.shared.engine;
    let group = std::str::from_utf8(group)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map(types::GroupId)
        .filter(|g| engine.groups().contains(g));
    let Some(group) = group else {
        return Frame::error("ERR no such data group");
    };
    let Some(slot) = resp::request::parse_int(slot).and_then(types::Slot::new) else {
        return Frame::error("ERR Invalid slot");
    };
    Frame::Integer(engine.db(group).count_in_slot(slot) as i64)
}

/// A command's ACL categories, as Redis 7.0.15 lists them (see `crate::acl`).
fn acl_categories(name: &str) -> Frame {
    Frame::Set(
        crate::acl::categories_of(name)
            .into_iter()
            .map(|c| Frame::Status(format!("@{c}")))
            .collect(),
    )
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
    let s = match lookup(name.as_bytes())? {
        Command::Data(s) => s,
        Command::Connection(s) => return Some(connection_entry(s)),
    };
    let mut flags = s.flag_names();
    if s.keys.numkeys_at.is_some() {
        flags.push("movablekeys");
    }
    let cats = acl_categories(s.name);
    let (first, last, step) = match (s.keys.first, s.keys.numkeys_at) {
        (0, Some(at)) => (at as i64 + 1, at as i64 + 1, 1),
        _ => (s.keys.first as i64, s.keys.last as i64, s.keys.step as i64),
    };
    Some(Frame::Array(vec![
        Frame::bulk(s.name),
        Frame::Integer(s.arity as i64),
        flag_set(flags),
        Frame::Integer(first),
        Frame::Integer(last),
        Frame::Integer(step),
        cats,
        Frame::Array(vec![]),
        key_specs(s),
        Frame::Array(vec![]),
    ]))
}

/// The `COMMAND INFO` entry of a connection-level command.
fn connection_entry(s: &ServerSpec) -> Frame {
    Frame::Array(vec![
        Frame::bulk(s.name),
        Frame::Integer(s.arity as i64),
        Frame::Set(
            s.flags
                .iter()
                .map(|f| Frame::Status(f.to_string()))
                .collect(),
        ),
        Frame::Integer(s.keys.0 as i64),
        Frame::Integer(s.keys.1 as i64),
        Frame::Integer(s.keys.2 as i64),
        acl_categories(s.name),
        Frame::Array(vec![]),
        Frame::Array(vec![]),
        Frame::Array(vec![]),
    ])
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

pub(super) fn command(args: &[Bytes]) -> Frame {
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
                            .is_none_or(|p| kv::glob::glob_match(p, n.as_bytes(), true))
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
                let (summary, group) = match lookup(n.as_bytes()) {
                    Some(Command::Data(s)) => (s.summary, s.group),
                    Some(Command::Connection(s)) => (s.summary, s.group),
                    None => continue,
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
            let spec = match lookup(&cmd_args[0]) {
                Some(Command::Data(spec)) => spec,
                Some(Command::Connection(_)) => {
                    return Frame::error("ERR The command has no key arguments")
                }
                None => return Frame::error("ERR Invalid command specified"),
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
        (
            "cluster-enabled",
            if session.shared.engine.node().is_some() {
                "yes"
            } else {
                "no"
            }
            .into(),
        ),
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
        (
            "protected-mode",
            match c.protected_mode {
                crate::YesNo::Yes => "yes",
                crate::YesNo::No => "no",
            }
            .into(),
        ),
        ("proto-max-bulk-len", "536870912".into()),
        ("aclfile", c.aclfile.display().to_string()),
        ("requirepass", c.requirepass.clone()),
        ("save", "".into()),
        ("set-max-intset-entries", "512".into()),
        ("slowlog-log-slower-than", "10000".into()),
        ("slowlog-max-len", "128".into()),
        ("timeout", c.timeout.to_string()),
        ("zset-max-listpack-entries", "128".into()),
        ("zset-max-listpack-value", "64".into()),
        ("zset-max-ziplist-entries", "128".into()),
        ("zset-max-ziplist-value", "64".into()),
    ]
    .into_iter()
    .chain(c.tls_params())
    .collect()
}

pub(super) fn config(session: &mut Session, args: &[Bytes]) -> Frame {
    let sub = &args[1];
    let lower = String::from_utf8_lossy(sub).to_ascii_lowercase();
    match lower.as_str() {
        "get" if args.len() >= 3 => {
            let params = config_params(session);
            let mut out = Vec::new();
            for (name, value) in &params {
                if args[2..]
                    .iter()
                    .any(|p| kv::glob::glob_match(p, name.as_bytes(), true))
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
