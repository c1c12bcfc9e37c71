//! The cluster family: the Redis Cluster protocol as Redis 7.0 defines it (`CLUSTER SLOTS |
//! SHARDS | NODES | MYID | INFO | KEYSLOT | COUNTKEYSINSLOT | GETKEYSINSLOT | HELP`, and
//! `READONLY`, `READWRITE`, `ASKING`), plus redraft's own `CLUSTER FORGET` and `CLUSTER
//! TRANSFER-LEADER`, and the slot moves of `commands::moves`.
//!
//! What clients are told comes from [`cluster::Topology`]: each data group is a shard
//! whose master is the group's leader and whose replicas are its other members. Node
//! names are [`types::node_name`]s. A group whose leader is unknown still covers its
//! slots (redis-py refuses a map with holes): its lowest member stands in as master, and a
//! command sent there is forwarded or answered `-CLUSTERDOWN` as usual.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use cluster::{Shard, Topology};
use resp::Frame;
use types::{key_slot, node_name, NodeId, Slot};

use super::{subcommand_arity, unknown_subcommand};
use crate::session::Session;
use crate::EndpointType;

/// `CLUSTER <subcommand> ...`.
pub(super) async fn cluster(session: &mut Session, args: &[Bytes]) -> Frame {
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    let argc = args.len();
    let arity = |n: usize| argc == n;
    let known = matches!(
        (sub.as_str(), argc),
        (
            "help" | "slots" | "shards" | "nodes" | "myid" | "info" | "rebalance-leaders",
            2
        ) | (
            "keyslot" | "countkeysinslot" | "forget" | "transfer-leader",
            3
        ) | ("getkeysinslot" | "transfer-leader", 4)
            | ("getslotmigrations", 2)
            | ("cancelslotmigrations" | "rebalance", 2 | 3)
    ) || (sub == "migrateslots" && argc >= 6);
    // A memory-only server is a standalone Redis: after the subcommand's own checks, it
    // has no cluster (Redis's reply).
    if known && session.shared.engine.node().is_none() {
        return Frame::error(NO_CLUSTER);
    }
    match sub.as_str() {
        "help" if arity(2) => help(),
        "keyslot" if arity(3) => Frame::Integer(i64::from(key_slot(&args[2]).0)),
        "countkeysinslot" if arity(3) => {
            let slot = match slot_arg(&args[2]) {
                Ok(slot) => slot,
                Err(e) => return e,
            };
            let engine = &session.shared.engine;
            match engine
                .read(engine.group_of(Some(slot)), |db| db.count_in_slot(slot))
                .await
            {
                Ok(n) => Frame::Integer(n as i64),
                Err(e) => e,
            }
        }
        "getkeysinslot" if arity(4) => {
            let (slot, count) = match (
                resp::request::parse_int(&args[2]),
                resp::request::parse_int(&args[3]),
            ) {
                (Some(slot), Some(count)) => match (Slot::new(slot), usize::try_from(count)) {
                    (Some(slot), Ok(count)) => (slot, count),
                    _ => return Frame::error("ERR Invalid slot or number of keys"),
                },
                _ => return kv::Error::NotInteger.to_frame(),
            };
            let now = session.now_ms;
            let engine = &session.shared.engine;
            let keys = engine
                .read(engine.group_of(Some(slot)), |db| {
                    db.keys_in_slot(slot, count, now)
                        .into_iter()
                        .map(|k| Frame::Bulk(Bytes::copy_from_slice(k)))
                        .collect()
                })
                .await;
            match keys {
                Ok(keys) => Frame::Array(keys),
                Err(e) => e,
            }
        }
        "transfer-leader" if arity(4) => {
            let to = resp::request::parse_int(&args[2]).filter(|&id| id > 0);
            let group = resp::request::parse_int(&args[3])
                .and_then(|g| u64::try_from(g).ok())
                .map(types::GroupId);
            match (to, group) {
                (Some(to), Some(group)) => {
                    session
                        .shared
                        .engine
                        .transfer_group_leader(group, to as u64)
                        .await
                }
                (None, _) => Frame::error(format!(
                    "ERR Unknown node {}",
                    String::from_utf8_lossy(&args[2])
                )),
                (_, None) => Frame::error(format!(
                    "ERR Unknown group {}",
                    String::from_utf8_lossy(&args[3])
                )),
            }
        }
        "forget" | "transfer-leader" if arity(3) => {
            let Some(id) = resp::request::parse_int(&args[2]).filter(|&id| id > 0) else {
                return Frame::error(format!(
                    "ERR Unknown node {}",
                    String::from_utf8_lossy(&args[2])
                ));
            };
            let engine = &session.shared.engine;
            if sub == "forget" {
                engine.forget(id as u64).await
            } else {
                engine.transfer_leader(id as u64).await
            }
        }
        "rebalance-leaders" if arity(2) => session.shared.engine.rebalance_leaders().await,
        "migrateslots" if argc >= 6 => super::moves::migrateslots(session, args).await,
        "getslotmigrations" if arity(2) => super::moves::getslotmigrations(session).await,
        "cancelslotmigrations" if argc <= 3 => {
            super::moves::cancelslotmigrations(session, args).await
        }
        "rebalance" if argc <= 3 => super::moves::rebalance(session, args).await,
        "setslot" => Frame::error(super::moves::NO_SETSLOT),
        "slots" | "shards" | "nodes" | "myid" | "info" if arity(2) => {
            let Some(node) = session.shared.engine.node() else {
                return Frame::error(NO_CLUSTER);
            };
            let topology = node.topology();
            let kind = session.shared.config.preferred_endpoint_type;
            match sub.as_str() {
                "slots" => slots(&topology, kind),
                "shards" => shards(&topology, kind),
                "nodes" => Frame::Verbatim("txt", Bytes::from(nodes(&topology))),
                "myid" => Frame::bulk(node_name(topology.me)),
                _ => Frame::Verbatim("txt", Bytes::from(info(&topology))),
            }
        }
        "slots"
        | "shards"
        | "nodes"
        | "myid"
        | "info"
        | "help"
        | "keyslot"
        | "countkeysinslot"
        | "getkeysinslot"
        | "forget"
        | "transfer-leader"
        | "rebalance-leaders"
        | "migrateslots"
        | "getslotmigrations"
        | "cancelslotmigrations" => subcommand_arity("cluster", &args[1]),
        _ => unknown_subcommand("cluster", &args[1]),
    }
}

/// `ASKING`: accepted (slots do not move yet, so no `-ASK` is ever sent).
pub(super) fn asking(session: &Session) -> Frame {
    if session.shared.engine.node().is_none() {
        return Frame::error(NO_CLUSTER);
    }
    Frame::OK
}

/// The reply to the cluster commands of a node that runs no cluster (memory only).
pub(super) const NO_CLUSTER: &str = "ERR This instance has cluster support disabled";

/// `READONLY`: this connection may read from replicas (they still read linearizably,
/// through a read index).
pub(super) fn readonly(session: &mut Session) -> Frame {
    if session.shared.engine.node().is_none() {
        return Frame::error(NO_CLUSTER);
    }
    session.readonly = true;
    session.info.readonly.store(true, Ordering::Relaxed);
    Frame::OK
}

/// `READWRITE`: back to reading from masters only.
pub(super) fn readwrite(session: &mut Session) -> Frame {
    if session.shared.engine.node().is_none() {
        return Frame::error(NO_CLUSTER);
    }
    session.readonly = false;
    session.info.readonly.store(false, Ordering::Relaxed);
    Frame::OK
}

/// A slot number argument: Redis's errors for a non-number and for one out of range.
fn slot_arg(arg: &[u8]) -> Result<Slot, Frame> {
    let n = resp::request::parse_int(arg).ok_or_else(|| kv::Error::NotInteger.to_frame())?;
    Slot::new(n).ok_or_else(|| Frame::error("ERR Invalid slot"))
}

/// What replies name a node by, as `--preferred-endpoint-type` says (Redis's
/// `getPreferredEndpoint`): the host of its address, its hostname (`?` if it announces
/// none), or nothing.
pub(crate) fn endpoint<'a>(kind: EndpointType, ip: &'a str, hostname: &'a str) -> &'a str {
    match kind {
        EndpointType::Ip => ip,
        EndpointType::Hostname if hostname.is_empty() => "?",
        EndpointType::Hostname => hostname,
        EndpointType::UnknownEndpoint => "",
    }
}

/// The `-MOVED` reply sending a command for `slot` to `to`.
pub(crate) fn moved(slot: Slot, to: &types::NodeInfo, kind: EndpointType) -> Frame {
    let (ip, port) = host_port(&to.resp_addr);
    Frame::error(format!(
        "MOVED {} {}:{port}",
        slot.0,
        endpoint(kind, ip, &to.hostname)
    ))
}

/// `host:port` split for the protocol; a missing or bad port is 0.
fn host_port(addr: &str) -> (&str, u16) {
    match addr.rsplit_once(':') {
        Some((host, port)) => (host.trim_matches(['[', ']']), port.parse().unwrap_or(0)),
        None => (addr, 0),
    }
}

/// The shard's master (its leader, or its lowest member while no leader is known) and
/// its other replicas, in order.
fn master_first(shard: &Shard) -> Vec<NodeId> {
    let master = shard.leader.or_else(|| shard.replicas.first().copied());
    let mut out: Vec<NodeId> = master.into_iter().collect();
    out.extend(
        shard
            .replicas
            .iter()
            .copied()
            .filter(|&id| Some(id) != master),
    );
    out
}

/// `CLUSTER SLOTS`: per slot range, `[start, end, master, replica...]`, each node as
/// `[endpoint, port, name, {what else is known}]` (the endpoint null for
/// `unknown-endpoint`; the map holds `ip` unless the endpoint is the ip, and `hostname`
/// when one is announced and the endpoint is not it). Nodes whose RESP address is not
/// known yet are left out.
fn slots(topology: &Topology, kind: EndpointType) -> Frame {
    let mut ranges: Vec<(Slot, Slot, &Shard)> = topology
        .shards
        .iter()
        .flat_map(|s| s.slots.iter().map(move |&(a, b)| (a, b, s)))
        .collect();
    ranges.sort_by_key(|&(a, _, _)| a);
    let entries = ranges
        .into_iter()
        .map(|(start, end, shard)| {
            let mut entry = vec![
                Frame::Integer(i64::from(start.0)),
                Frame::Integer(i64::from(end.0)),
            ];
            for id in master_first(shard) {
                let Some(m) = topology.member(id).filter(|m| !m.resp_addr.is_empty()) else {
                    continue;
                };
                let (ip, port) = host_port(&m.resp_addr);
                let mut more = Vec::new();
                if kind != EndpointType::Ip {
                    more.push((Frame::bulk("ip"), Frame::bulk(ip)));
                }
                if kind != EndpointType::Hostname && !m.hostname.is_empty() {
                    more.push((Frame::bulk("hostname"), Frame::bulk(m.hostname.as_str())));
                }
                entry.push(Frame::Array(vec![
                    match kind {
                        EndpointType::UnknownEndpoint => Frame::Null,
                        _ => Frame::bulk(endpoint(kind, ip, &m.hostname)),
                    },
                    Frame::Integer(i64::from(port)),
                    Frame::bulk(node_name(id)),
                    Frame::Map(more),
                ]));
            }
            Frame::Array(entry)
        })
        .collect();
    Frame::Array(entries)
}

/// `CLUSTER SHARDS`: one shard per group, its slots as flat start/end pairs and its nodes
/// (`hostname` among a node's fields only when it announces one).
fn shards(topology: &Topology, kind: EndpointType) -> Frame {
    let entries = topology
        .shards
        .iter()
        .map(|shard| {
            let slots = shard
                .slots
                .iter()
                .flat_map(|&(a, b)| {
                    [
                        Frame::Integer(i64::from(a.0)),
                        Frame::Integer(i64::from(b.0)),
                    ]
                })
                .collect();
            let master = master_first(shard).first().copied();
            let nodes = master_first(shard)
                .into_iter()
                .filter_map(|id| topology.member(id).map(|m| (id, m)))
                .filter(|(_, m)| !m.resp_addr.is_empty())
                .map(|(id, m)| {
                    let (ip, port) = host_port(&m.resp_addr);
                    let role = if Some(id) == master {
                        "master"
                    } else {
                        "replica"
                    };
                    let offset = if id == topology.me { shard.applied } else { 0 };
                    let health = if shard.leader.is_some() {
                        "online"
                    } else {
                        "loading"
                    };
                    let mut fields = vec![
                        (Frame::bulk("id"), Frame::bulk(node_name(id))),
                        (Frame::bulk("port"), Frame::Integer(i64::from(port))),
                        (Frame::bulk("ip"), Frame::bulk(ip)),
                        (
                            Frame::bulk("endpoint"),
                            Frame::bulk(endpoint(kind, ip, &m.hostname)),
                        ),
                    ];
                    if !m.hostname.is_empty() {
                        fields.push((Frame::bulk("hostname"), Frame::bulk(m.hostname.as_str())));
                    }
                    fields.extend([
                        (Frame::bulk("role"), Frame::bulk(role)),
                        (
                            Frame::bulk("replication-offset"),
                            Frame::Integer(offset as i64),
                        ),
                        (Frame::bulk("health"), Frame::bulk(health)),
                    ]);
                    Frame::Map(fields)
                })
                .collect();
            Frame::Map(vec![
                (Frame::bulk("slots"), Frame::Array(slots)),
                (Frame::bulk("nodes"), Frame::Array(nodes)),
            ])
        })
        .collect();
    Frame::Array(entries)
}

/// The members clients are told of: replicas of some group whose RESP address is known (a
/// learner still copying the log, or a node that has not announced its address, is left
/// out: a client could send it reads).
fn known(topology: &Topology) -> impl Iterator<Item = &cluster::Member> {
    topology.members.iter().filter(|m| {
        !m.resp_addr.is_empty() && topology.shards.iter().any(|s| s.replicas.contains(&m.id))
    })
}

/// `CLUSTER NODES`: one line per member, `id ip:port@cport[,hostname] flags master ping
/// pong epoch link slots...`; a node is the master of the slots whose groups it leads and a replica
/// (`slave <master>`) otherwise. The bus port is the node's gRPC port.
fn nodes(topology: &Topology) -> String {
    let mut out = String::new();
    for m in known(topology) {
        let (host, port) = host_port(&m.resp_addr);
        let (_, cport) = host_port(&m.grpc_addr);
        let hostname = if m.hostname.is_empty() {
            String::new()
        } else {
            format!(",{}", m.hostname)
        };
        let led: Vec<&Shard> = topology
            .shards
            .iter()
            .filter(|s| master_first(s).first() == Some(&m.id))
            .collect();
        let myself = if m.id == topology.me { "myself," } else { "" };
        let (role, master) = match (led.is_empty(), topology.shards.first()) {
            (false, _) | (true, None) => ("master", "-".to_string()),
            (true, Some(shard)) => (
                "slave",
                master_first(shard)
                    .first()
                    .map_or("-".to_string(), |&id| node_name(id)),
            ),
        };
        let epoch = topology.shards.iter().map(|s| s.term).max().unwrap_or(0);
        let mut line = format!(
            "{} {host}:{port}@{cport}{hostname} {myself}{role} {master} 0 0 {epoch} connected",
            node_name(m.id)
        );
        for shard in led {
            for &(a, b) in &shard.slots {
                if a == b {
                    line.push_str(&format!(" {}", a.0));
                } else {
                    line.push_str(&format!(" {}-{}", a.0, b.0));
                }
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// `CLUSTER INFO`, with Redis 7.0's fields. A slot is ok when its group has a leader.
fn info(topology: &Topology) -> String {
    let slots_in = |s: &Shard| -> usize {
        s.slots
            .iter()
            .map(|&(a, b)| usize::from(b.0 - a.0) + 1)
            .sum()
    };
    let assigned: usize = topology.shards.iter().map(slots_in).sum();
    let ok: usize = topology
        .shards
        .iter()
        .filter(|s| s.leader.is_some())
        .map(slots_in)
        .sum();
    let state = if ok == usize::from(Slot::COUNT) {
        "ok"
    } else {
        "fail"
    };
    let size = topology
        .shards
        .iter()
        .filter(|s| s.leader.is_some())
        .count();
    let epoch = topology.shards.iter().map(|s| s.term).max().unwrap_or(0);
    let my_epoch = topology
        .shards
        .iter()
        .filter(|s| s.leader == Some(topology.me))
        .map(|s| s.term)
        .max()
        .unwrap_or(0);
    let fields = [
        ("cluster_state", state.to_string()),
        ("cluster_slots_assigned", assigned.to_string()),
        ("cluster_slots_ok", ok.to_string()),
        ("cluster_slots_pfail", "0".into()),
        ("cluster_slots_fail", (assigned - ok).to_string()),
        ("cluster_known_nodes", known(topology).count().to_string()),
        ("cluster_size", size.to_string()),
        ("cluster_current_epoch", epoch.to_string()),
        ("cluster_my_epoch", my_epoch.to_string()),
        ("cluster_stats_messages_ping_sent", "0".into()),
        ("cluster_stats_messages_pong_sent", "0".into()),
        ("cluster_stats_messages_sent", "0".into()),
        ("cluster_stats_messages_ping_received", "0".into()),
        ("cluster_stats_messages_pong_received", "0".into()),
        ("cluster_stats_messages_meet_received", "0".into()),
        ("cluster_stats_messages_received", "0".into()),
        ("total_cluster_links_buffer_limit_exceeded", "0".into()),
    ];
    let mut out = String::new();
    for (k, v) in fields {
        out.push_str(&format!("{k}:{v}\r\n"));
    }
    out
}

/// `CLUSTER HELP`: the subcommands redraft has.
fn help() -> Frame {
    let lines = [
        "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CANCELSLOTMIGRATIONS [<job>]",
        "    Cancel every slot move (or that one) that has not reached its commit point.",
        "COUNTKEYSINSLOT <slot>",
        "    Return the number of keys in <slot>.",
        "FORGET <node-id>",
        "    Remove a node from the cluster (its numeric id).",
        "GETKEYSINSLOT <slot> <count>",
        "    Return key names stored by current node in a slot.",
        "GETSLOTMIGRATIONS",
        "    Return the slot moves in progress and the recently finished ones.",
        "INFO",
        "    Return information about the cluster.",
        "KEYSLOT <key>",
        "    Return the hash slot for <key>.",
        "MIGRATESLOTS SLOTSRANGE <first> <last> [<first> <last> ...] GROUP <group-id>|NODE <node-id>",
        "    Move the slots to that Raft group (or to the group that node leads with the fewest",
        "    slots), online; the move runs in the background.",
        "MYID",
        "    Return the node id.",
        "NODES",
        "    Return cluster configuration seen by node. Output format:",
        "    <id> <ip:port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
        "REBALANCE [DRYRUN]",
        "    Move slots between groups so that each holds about as many keys (DRYRUN: only say how).",
        "REBALANCE-LEADERS",
        "    Hand groups this node leads beyond its share to voters that lead fewer; how many.",
        "SLOTS",
        "    Return information about slots range mappings. Each range is made of:",
        "    start, end, master and replicas IP addresses, ports and ids",
        "SHARDS",
        "    Return information about slot range mappings and the nodes associated with them.",
        "TRANSFER-LEADER <node-id> [<group-id>]",
        "    Hand the leadership of every group this node leads (or of that one group) to that",
        "    voter.",
        "HELP",
        "    Prints this help.",
    ];
    Frame::Array(lines.iter().map(|l| Frame::Status(l.to_string())).collect())
}

#[cfg(test)]
mod tests {
    //! The rendering of a topology shaped like the real Redis cluster the golden files
    //! were recorded from (three masters on 127.0.0.1:3000N, bus 4000N, slots split by
    //! `redis-cli --cluster create`), compared with its replies: with three groups led by
    //! three nodes, redraft must say what Redis said.
    use super::*;
    use cluster::Member;
    use resp::Protocol;
    use types::GroupId;

    fn golden(file: &str) -> String {
        golden_in("cluster", file)
    }

    /// A file of `golden/<dir>/`.
    fn golden_in(dir: &str, file: &str) -> String {
        let path = format!(
            "{}/../../tests/tests/it/golden/{dir}/{file}",
            env!("CARGO_MANIFEST_DIR")
        );
        String::from_utf8(std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
            .expect("text")
    }

    /// Three single-replica groups, node `n` leading group `n`, seen from node `me`.
    fn three_masters(me: NodeId) -> Topology {
        three_masters_named(me, false)
    }

    /// The same, each node announcing the hostname `node-N.redraft.test` if `named`.
    fn three_masters_named(me: NodeId, named: bool) -> Topology {
        let ranges = [(0, 5460), (5461, 10922), (10923, 16383)];
        Topology {
            me,
            members: (1..=3)
                .map(|n| Member {
                    id: n,
                    resp_addr: format!("127.0.0.1:3000{n}"),
                    grpc_addr: format!("127.0.0.1:4000{n}"),
                    hostname: if named {
                        format!("node-{n}.redraft.test")
                    } else {
                        String::new()
                    },
                })
                .collect(),
            shards: ranges
                .iter()
                .zip(1u64..)
                .map(|(&(a, b), n)| Shard {
                    group: GroupId(n),
                    slots: vec![(Slot(a), Slot(b))],
                    leader: Some(n),
                    replicas: vec![n],
                    term: n,
                    applied: 0,
                })
                .collect(),
        }
    }

    /// Our names as the golden files write them (`<id:N>`).
    fn normalize(text: &str) -> String {
        (1..=3).fold(text.to_string(), |t, n| {
            t.replace(&node_name(n), &format!("<id:{n}>"))
        })
    }

    /// RESP bytes of `frame`, node names normalized, lengths recomputed as the recorder did.
    fn bytes(frame: Frame, proto: Protocol) -> String {
        let frame = renamed(frame);
        String::from_utf8(frame.to_bytes(proto).to_vec()).expect("text")
    }

    fn renamed(frame: Frame) -> Frame {
        match frame {
            Frame::Bulk(b) => Frame::Bulk(Bytes::from(normalize(&String::from_utf8_lossy(&b)))),
            Frame::Array(items) => Frame::Array(items.into_iter().map(renamed).collect()),
            Frame::Map(pairs) => Frame::Map(
                pairs
                    .into_iter()
                    .map(|(k, v)| (renamed(k), renamed(v)))
                    .collect(),
            ),
            other => other,
        }
    }

    #[test]
    fn cluster_slots_of_three_masters_are_redis_s_bytes() {
        let t = three_masters(1);
        assert_eq!(
            bytes(slots(&t, EndpointType::Ip), Protocol::Resp2),
            golden("slots.resp2")
        );
        assert_eq!(
            bytes(slots(&t, EndpointType::Ip), Protocol::Resp3),
            golden("slots.resp3")
        );
    }

    #[test]
    fn cluster_shards_of_three_masters_are_redis_s_bytes() {
        let t = three_masters(1);
        assert_eq!(
            bytes(shards(&t, EndpointType::Ip), Protocol::Resp2),
            golden("shards.resp2")
        );
        assert_eq!(
            bytes(shards(&t, EndpointType::Ip), Protocol::Resp3),
            golden("shards.resp3")
        );
    }

    #[test]
    fn cluster_nodes_of_three_masters_are_redis_s_lines() {
        for (me, file) in [
            (1, "nodes.resp2"),
            (2, "nodes-node2.resp2"),
            (3, "nodes-node3.resp2"),
        ] {
            let ours = nodes_lines(&nodes(&three_masters(me)));
            let want = golden(file);
            let body = want
                .split_once("\r\n")
                .map(|(_, b)| b)
                .expect("a bulk string");
            assert_eq!(format!("{ours}\r\n"), body, "{file}");
        }
    }

    #[test]
    fn cluster_info_of_three_masters_says_what_redis_says() {
        let ours = info(&three_masters(1));
        let want = golden("info.resp2");
        for line in want
            .lines()
            .skip(1)
            .filter(|l| !l.contains('<') && !l.is_empty())
        {
            assert!(ours.contains(&format!("{line}\r\n")), "{line} in {ours}");
        }
    }

    /// The body of a golden CLUSTER NODES reply, with our times and epochs replaced by the
    /// recorder's placeholders.
    fn nodes_lines(text: &str) -> String {
        normalize(text)
            .lines()
            .map(|l| {
                let mut f: Vec<&str> = l.split(' ').collect();
                f[4] = "<ping_sent>";
                f[5] = "<pong_recv>";
                f[6] = "<config_epoch>";
                f.join(" ") + "\n"
            })
            .collect()
    }

    #[test]
    fn announced_hostnames_are_shown_as_redis_shows_them_for_each_endpoint_type() {
        let t = three_masters_named(1, true);
        let node3 = types::NodeInfo {
            resp_addr: "127.0.0.1:30003".into(),
            grpc_addr: "127.0.0.1:40003".into(),
            hostname: "node-3.redraft.test".into(),
        };
        for (kind, name) in [
            (EndpointType::Ip, "ip"),
            (EndpointType::Hostname, "hostname"),
            (EndpointType::UnknownEndpoint, "unknown-endpoint"),
        ] {
            let golden = |case: &str| golden_in("cluster-hostname", &format!("{name}-{case}"));
            for proto in [Protocol::Resp2, Protocol::Resp3] {
                let ext = if proto == Protocol::Resp2 {
                    "resp2"
                } else {
                    "resp3"
                };
                assert_eq!(
                    bytes(slots(&t, kind), proto),
                    golden(&format!("slots.{ext}")),
                    "{name} slots {ext}"
                );
                assert_eq!(
                    bytes(shards(&t, kind), proto),
                    golden(&format!("shards.{ext}")),
                    "{name} shards {ext}"
                );
            }
            let want = golden("nodes.resp2");
            let body = want.split_once("\r\n").map(|(_, b)| b).expect("a bulk");
            assert_eq!(
                format!("{}\r\n", nodes_lines(&nodes(&t))),
                body,
                "{name} nodes"
            );
            assert_eq!(
                String::from_utf8(
                    moved(Slot(12182), &node3, kind)
                        .to_bytes(Protocol::Resp2)
                        .to_vec()
                )
                .expect("text"),
                golden("moved-get.resp2"),
                "{name} MOVED"
            );
        }
        // Without a hostname, `hostname` says `?`, as Redis does.
        let plain = types::NodeInfo {
            hostname: String::new(),
            ..node3
        };
        assert_eq!(
            moved(Slot(1), &plain, EndpointType::Hostname),
            Frame::error("MOVED 1 ?:30003")
        );
    }
}
