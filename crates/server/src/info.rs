//! `INFO`: sections in Redis's format (`# Section` headers, `field:value` lines, CRLF).

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use crate::session::Session;

const DEFAULT: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "cluster",
    "keyspace",
];

/// Renders the sections named in `args` (none means the default set).
pub fn render(session: &Session, args: &[Bytes]) -> String {
    let mut wanted: Vec<String> = args
        .iter()
        .map(|a| String::from_utf8_lossy(a).to_ascii_lowercase())
        .collect();
    if wanted.is_empty() || wanted.iter().any(|w| w == "default") {
        wanted.extend(DEFAULT.iter().map(|s| s.to_string()));
    }
    if wanted.iter().any(|w| w == "all" || w == "everything") {
        wanted.extend(DEFAULT.iter().map(|s| s.to_string()));
    }
    let mut out = String::new();
    for section in DEFAULT {
        if !wanted.iter().any(|w| w == section) {
            continue;
        }
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        section_text(session, section, &mut out);
    }
    out
}

fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b < 1024.0 {
        format!("{bytes}B")
    } else if b < 1024.0 * 1024.0 {
        format!("{:.2}K", b / 1024.0)
    } else if b < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2}M", b / 1024.0 / 1024.0)
    } else {
        format!("{:.2}G", b / 1024.0 / 1024.0 / 1024.0)
    }
}

/// Resident set size of this process in bytes, from `/proc/self/statm` (0 elsewhere).
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}

fn line(out: &mut String, key: &str, value: impl std::fmt::Display) {
    let _ = write!(out, "{key}:{value}\r\n");
}

fn section_text(session: &Session, section: &str, out: &mut String) {
    let shared = &session.shared;
    let stats = &shared.store.stats;
    match section {
        "server" => {
            out.push_str("# Server\r\n");
            let uptime = shared.started.elapsed().as_secs();
            line(out, "redis_version", crate::REDIS_VERSION);
            line(out, "redraft_version", env!("CARGO_PKG_VERSION"));
            line(out, "redis_mode", "standalone");
            line(out, "os", std::env::consts::OS);
            line(out, "arch_bits", 64);
            line(out, "multiplexing_api", "epoll");
            line(out, "process_id", std::process::id());
            line(out, "tcp_port", shared.local_port);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            line(out, "server_time_usec", now.as_micros());
            line(out, "uptime_in_seconds", uptime);
            line(out, "uptime_in_days", uptime / 86400);
            line(out, "hz", shared.config.hz);
            line(
                out,
                "executable",
                std::env::current_exe()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            );
        }
        "clients" => {
            out.push_str("# Clients\r\n");
            line(out, "connected_clients", shared.clients.len());
            line(out, "maxclients", shared.config.maxclients);
            line(out, "blocked_clients", 0);
            line(out, "tracking_clients", 0);
        }
        "memory" => {
            out.push_str("# Memory\r\n");
            let rss = rss_bytes();
            let used: u64 = shared
                .engine
                .each_db(|db| db.approx_memory() as u64)
                .into_iter()
                .sum();
            line(out, "used_memory", used);
            line(out, "used_memory_human", human(used));
            line(out, "used_memory_rss", rss);
            line(out, "used_memory_rss_human", human(rss));
            line(out, "maxmemory", 0);
            line(out, "maxmemory_human", "0B");
            line(out, "maxmemory_policy", "noeviction");
            line(out, "mem_allocator", "libc");
        }
        "persistence" => {
            out.push_str("# Persistence\r\n");
            line(out, "loading", 0);
            line(out, "rdb_changes_since_last_save", 0);
            line(out, "aof_enabled", 0);
        }
        "stats" => {
            out.push_str("# Stats\r\n");
            let expired: u64 = shared
                .engine
                .each_db(|db| db.stats.expired_keys)
                .into_iter()
                .sum();
            line(
                out,
                "total_connections_received",
                stats.connections.load(Ordering::Relaxed),
            );
            line(
                out,
                "total_commands_processed",
                stats.commands.load(Ordering::Relaxed),
            );
            line(
                out,
                "rejected_connections",
                stats.rejected_connections.load(Ordering::Relaxed),
            );
            line(out, "expired_keys", expired);
            line(out, "evicted_keys", 0);
        }
        "replication" => {
            out.push_str("# Replication\r\n");
            match shared.engine.node() {
                // A Raft node: its role in the data group, term, leader, indexes, log
                // and snapshot (see `cluster::Node::status`).
                Some(node) => {
                    for (key, value) in node.status() {
                        line(out, &key, value);
                    }
                }
                None => {
                    line(out, "role", "master");
                    line(out, "connected_slaves", 0);
                }
            }
        }
        "cpu" => {
            out.push_str("# CPU\r\n");
        }
        "cluster" => {
            out.push_str("# Cluster\r\n");
            // A Raft node speaks the Redis Cluster protocol (`CLUSTER SLOTS`, ...).
            line(
                out,
                "cluster_enabled",
                u8::from(shared.engine.node().is_some()),
            );
        }
        "keyspace" => {
            out.push_str("# Keyspace\r\n");
            let (keys, expires) = shared
                .keyspace_groups()
                .into_iter()
                .map(|g| {
                    let db = shared.engine.db(g);
                    (db.len(), db.volatile_len())
                })
                .fold((0, 0), |(k, e), (dk, de)| (k + dk, e + de));
            if keys > 0 {
                let _ = write!(out, "db0:keys={keys},expires={expires},avg_ttl=0\r\n");
            }
        }
        _ => {}
    }
}
