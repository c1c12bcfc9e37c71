//! Whole-keyspace commands on a keyspace split over several data groups: `DBSIZE`,
//! `KEYS`, `SCAN`, `RANDOMKEY`, `FLUSHALL` and `FLUSHDB` run in every group of the node's
//! view (each after its own read barrier, or through its leader), and their replies merge
//! into one. The view ([`crate::Shared::keyspace_groups`]) is the whole keyspace in proxy
//! mode, as a client of one Redis expects, and the groups the node leads in redirect mode,
//! as a cluster client summing over the masters expects.
//!
//! - `DBSIZE`: the sum; `KEYS`: every group's keys, group after group.
//! - `SCAN`: one group at a time. The cursor a client sees is `inner * groups + index`:
//!   the index of the group being scanned among all the node's groups, and that group's
//!   own cursor, so the client's cursor alone says where to go on. A group's scan that
//!   ends moves the cursor to the next group of the view (`inner` 0); the last one's end
//!   is cursor 0. Like Redis's, it returns every key that exists for the whole scan at
//!   least once (in redirect mode: while the node keeps leading the same groups).
//! - `RANDOMKEY`: the groups in an order drawn from the command's seed, the first key
//!   found (not weighted by group sizes: slots spread keys evenly over groups).
//! - `FLUSHALL` / `FLUSHDB`: every group flushes; each group's flush is atomic, the whole
//!   is not (as in Redis Cluster, where each master flushes its own).

use bytes::Bytes;
use cluster::ReadAt;
use resp::Frame;
use types::GroupId;

use crate::engine::Engine;

/// Runs a keyless write in every group of `groups`; the first error, else the first
/// reply (`OK` for none).
pub(crate) async fn write_everywhere(
    engine: &Engine,
    groups: &[GroupId],
    proposal: &kv::Proposal,
    now_ms: i64,
) -> Frame {
    let replies =
        futures_util::future::join_all(groups.iter().map(|&g| engine.write(g, proposal, now_ms)))
            .await;
    merge_first_error(replies).unwrap_or(Frame::OK)
}

/// Runs a keyless read in every group it concerns and merges the replies (see the module
/// header).
pub(crate) async fn read_everywhere(
    engine: &Engine,
    groups: &[GroupId],
    args: &[Bytes],
    seed: u64,
    now_ms: i64,
) -> Frame {
    let name = args[0].to_ascii_lowercase();
    match &name[..] {
        b"scan" => scan(engine, groups, args, seed, now_ms).await,
        b"randomkey" => {
            let n = groups.len();
            if n == 0 {
                return Frame::Null;
            }
            let start = (seed % n as u64) as usize;
            for i in 0..n {
                let reply = read_in(engine, groups[(start + i) % n], args, seed, now_ms).await;
                if reply.is_error() || reply != Frame::Null {
                    return reply;
                }
            }
            Frame::Null
        }
        _ => {
            let replies = futures_util::future::join_all(
                groups
                    .iter()
                    .map(|&g| read_in(engine, g, args, seed, now_ms)),
            )
            .await;
            if let Some(error) = replies.iter().find(|r| r.is_error()) {
                return error.clone();
            }
            match &name[..] {
                b"dbsize" => Frame::Integer(
                    replies
                        .iter()
                        .map(|r| match r {
                            Frame::Integer(n) => *n,
                            _ => 0,
                        })
                        .sum(),
                ),
                _ => Frame::Array(
                    replies
                        .into_iter()
                        .flat_map(|r| match r {
                            Frame::Array(items) => items,
                            _ => Vec::new(),
                        })
                        .collect(),
                ),
            }
        }
    }
}

/// `SCAN` over the groups of `view` (see the module header).
async fn scan(engine: &Engine, view: &[GroupId], args: &[Bytes], seed: u64, now_ms: i64) -> Frame {
    let cursor = match kv::scan::parse_cursor(&args[1]) {
        Ok(c) => c,
        Err(e) => return e.to_frame(),
    };
    let all = engine.groups();
    let n = all.len() as u64;
    let (mut at, mut inner) = ((cursor % n) as usize, cursor / n);
    // The first group of the view at or after `at` (a cursor may name a group this node
    // no longer leads: its scan starts over at the next one).
    while !view.contains(&all[at]) {
        at += 1;
        inner = 0;
        if at == all.len() {
            return kv::scan::reply(0, Vec::new());
        }
    }
    let mut args = args.to_vec();
    args[1] = Bytes::from(inner.to_string());
    let reply = read_in(engine, all[at], &args, seed, now_ms).await;
    let Frame::Array(mut parts) = reply else {
        return reply;
    };
    let next_inner = match parts.first() {
        Some(Frame::Bulk(b)) => kv::scan::parse_cursor(b).ok(),
        _ => None,
    };
    let Some(next_inner) = next_inner else {
        return Frame::Array(parts);
    };
    let next = if next_inner != 0 {
        match next_inner.checked_mul(n).map(|c| c + at as u64) {
            Some(c) => c,
            None => return Frame::error("ERR scan cursor out of range for this many groups"),
        }
    } else {
        // The next group of the view, from its start; none left ends the scan.
        all.iter()
            .enumerate()
            .skip(at + 1)
            .find(|(_, g)| view.contains(g))
            .map_or(0, |(i, _)| i as u64)
    };
    parts[0] = Frame::bulk(next.to_string());
    Frame::Array(parts)
}

/// A read of one group: after its read barrier here, or on its leader.
async fn read_in(engine: &Engine, group: GroupId, args: &[Bytes], seed: u64, now_ms: i64) -> Frame {
    match engine.read_barrier(group).await {
        Err(e) => e,
        Ok(ReadAt::Leader) => engine.read_at_leader(group, args, seed).await,
        Ok(ReadAt::Here) => {
            let mut ctx = kv::Ctx { now_ms, seed };
            match kv::parse(args, &mut ctx) {
                Ok(kv::Cmd::Read(read)) => cluster::run_read(&read, &engine.db(group), now_ms),
                Ok(kv::Cmd::Write(_)) => Frame::error("ERR not a read"),
                Err(e) => e.to_frame(),
            }
        }
    }
}

fn merge_first_error(replies: Vec<Frame>) -> Option<Frame> {
    let first_error = replies.iter().position(Frame::is_error);
    match first_error {
        Some(i) => replies.into_iter().nth(i),
        None => replies.into_iter().next(),
    }
}
