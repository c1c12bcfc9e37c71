//! Slot moves between Raft groups (see `cluster::migrate`): `CLUSTER MIGRATESLOTS`,
//! `CLUSTER GETSLOTMIGRATIONS`, `CLUSTER CANCELSLOTMIGRATIONS`, in Valkey 9's words, and
//! the refusal of the key-by-key resharding (`CLUSTER SETSLOT`) that redraft replaces.

use bytes::Bytes;
use resp::Frame;
use types::{GroupId, NodeId, Slot};

use crate::session::Session;

/// The reply to `CLUSTER SETSLOT` (what `redis-cli --cluster reshard` sends first).
pub(super) const NO_SETSLOT: &str = "ERR redraft moves slots between its Raft groups as one \
    atomic step: use CLUSTER MIGRATESLOTS SLOTSRANGE <first> <last> GROUP <group-id> (or NODE \
    <node-id>); CLUSTER SETSLOT and key-by-key MIGRATE resharding (redis-cli --cluster \
    reshard) are not supported";

/// `CLUSTER MIGRATESLOTS SLOTSRANGE <first> <last> [<first> <last> ...] GROUP <group-id> |
/// NODE <node-id> [SLOTSRANGE ...]`: journals the moves; `+OK` once they are planned (they
/// run in the background: `CLUSTER GETSLOTMIGRATIONS` follows them). `NODE` names the
/// group the node leads that has the fewest slots.
pub(super) async fn migrateslots(session: &Session, args: &[Bytes]) -> Frame {
    let Some(node) = session.shared.engine.node() else {
        return Frame::error(super::cluster::NO_CLUSTER);
    };
    let mut i = 2;
    let mut plans: Vec<(Vec<(Slot, Slot)>, GroupId)> = Vec::new();
    while i < args.len() {
        if !args[i].eq_ignore_ascii_case(b"slotsrange") {
            return syntax();
        }
        i += 1;
        let mut ranges = Vec::new();
        while i + 1 < args.len()
            && !args[i].eq_ignore_ascii_case(b"group")
            && !args[i].eq_ignore_ascii_case(b"node")
        {
            let (Some(a), Some(b)) = (slot(&args[i]), slot(&args[i + 1])) else {
                return Frame::error(format!(
                    "ERR Invalid or out of range slot: {} {}",
                    String::from_utf8_lossy(&args[i]),
                    String::from_utf8_lossy(&args[i + 1])
                ));
            };
            if a > b {
                return Frame::error(format!(
                    "ERR start slot number {} is greater than end slot number {}",
                    a.0, b.0
                ));
            }
            ranges.push((a, b));
            i += 2;
        }
        if ranges.is_empty() || i + 1 >= args.len() {
            return syntax();
        }
        let to = if args[i].eq_ignore_ascii_case(b"group") {
            match resp::request::parse_int(&args[i + 1]).and_then(|g| u64::try_from(g).ok()) {
                Some(g) if node.group(GroupId(g)).is_some() => GroupId(g),
                _ => {
                    return Frame::error(format!(
                        "ERR Unknown group {}",
                        String::from_utf8_lossy(&args[i + 1])
                    ))
                }
            }
        } else {
            match led_group(node, &args[i + 1]) {
                Ok(g) => g,
                Err(e) => return e,
            }
        };
        i += 2;
        ranges.sort();
        if ranges.windows(2).any(|w| w[0].1 >= w[1].0) {
            return Frame::error("ERR Slot ranges overlap");
        }
        plans.push((ranges, to));
    }
    if plans.is_empty() {
        return syntax();
    }
    for (ranges, to) in plans {
        if let Err(e) = node.migrate_slots(&ranges, to).await {
            return e.to_frame();
        }
    }
    Frame::OK
}

fn syntax() -> Frame {
    Frame::error("ERR syntax error")
}

fn slot(arg: &[u8]) -> Option<Slot> {
    resp::request::parse_int(arg).and_then(Slot::new)
}

/// The group node `name` (a numeric id or its 40-hex-digit name) leads with the fewest
/// slots.
fn led_group(node: &cluster::Node, name: &[u8]) -> Result<GroupId, Frame> {
    let text = String::from_utf8_lossy(name);
    let topology = node.topology();
    let id: Option<NodeId> = resp::request::parse_int(name)
        .and_then(|n| u64::try_from(n).ok())
        .or_else(|| {
            topology
                .members
                .iter()
                .find(|m| types::node_name(m.id).eq_ignore_ascii_case(&text))
                .map(|m| m.id)
        })
        .filter(|id| topology.members.iter().any(|m| m.id == *id));
    let Some(id) = id else {
        return Err(Frame::error(format!("ERR Unknown node {text}")));
    };
    topology
        .shards
        .iter()
        .filter(|s| s.leader == Some(id))
        .min_by_key(|s| {
            s.slots
                .iter()
                .map(|(a, b)| u32::from(b.0 - a.0) + 1)
                .sum::<u32>()
        })
        .map(|s| s.group)
        .ok_or_else(|| Frame::error(format!("ERR node {text} leads no group now")))
}

/// `CLUSTER GETSLOTMIGRATIONS`: each job in progress and the recently finished ones, as a
/// map of its fields.
pub(super) async fn getslotmigrations(session: &Session) -> Frame {
    let Some(node) = session.shared.engine.node() else {
        return Frame::error(super::cluster::NO_CLUSTER);
    };
    let jobs = match node.slot_migrations().await {
        Ok(jobs) => jobs,
        Err(e) => return e.to_frame(),
    };
    let field = |k: &str, v: Frame| (Frame::bulk(k), v);
    Frame::Array(
        jobs.into_iter()
            .map(|job| {
                Frame::Map(vec![
                    field("name", Frame::bulk(job.id.to_string())),
                    field("operation", Frame::bulk("MOVE")),
                    field(
                        "slot_ranges",
                        Frame::bulk(kv::moves::show_ranges(&job.ranges)),
                    ),
                    field("source_group", Frame::Integer(job.from.0 as i64)),
                    field("target_group", Frame::Integer(job.to.0 as i64)),
                    field("state", Frame::bulk(job.phase.name())),
                    field(
                        "keys",
                        job.keys.map_or(Frame::Null, |n| Frame::Integer(n as i64)),
                    ),
                    field("cancel_requested", Frame::Integer(job.cancel as i64)),
                    field("message", Frame::bulk(job.why.clone().unwrap_or_default())),
                ])
            })
            .collect(),
    )
}

/// `CLUSTER CANCELSLOTMIGRATIONS [<job>]`: cancels every job (or that one) that has not
/// committed; `+OK`. A job past its commit point finishes instead.
pub(super) async fn cancelslotmigrations(session: &Session, args: &[Bytes]) -> Frame {
    let Some(node) = session.shared.engine.node() else {
        return Frame::error(super::cluster::NO_CLUSTER);
    };
    let only = match args.get(2) {
        None => None,
        Some(a) => match resp::request::parse_int(a).and_then(|n| u64::try_from(n).ok()) {
            Some(n) => Some(n),
            None => return kv::Error::NotInteger.to_frame(),
        },
    };
    match node.cancel_slot_migrations(only).await {
        Ok(_) => Frame::OK,
        Err(e) => e.to_frame(),
    }
}

/// `CLUSTER REBALANCE [DRYRUN]`: plans the slot moves that even out the keys the groups
/// hold (see `cluster::Node::rebalance_slots`); each move as `<ranges> <from>-><to> keys=<n>`.
pub(super) async fn rebalance(session: &Session, args: &[Bytes]) -> Frame {
    let Some(node) = session.shared.engine.node() else {
        return Frame::error(super::cluster::NO_CLUSTER);
    };
    let dry_run = match args.get(2) {
        None => false,
        Some(a) if a.eq_ignore_ascii_case(b"dryrun") => true,
        Some(_) => return syntax(),
    };
    match node.rebalance_slots(dry_run).await {
        Ok(moves) => Frame::Array(
            moves
                .iter()
                .map(|m| {
                    Frame::bulk(format!(
                        "{} {}->{} keys={}",
                        kv::moves::show_ranges(&m.ranges),
                        m.from,
                        m.to,
                        m.keys
                    ))
                })
                .collect(),
        ),
        Err(e) => e.to_frame(),
    }
}
