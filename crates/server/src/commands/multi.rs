//! The transaction family: `MULTI`, `EXEC`, `DISCARD`, `WATCH`, `UNWATCH`, and the queue
//! a session keeps between `MULTI` and `EXEC`.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use resp::Frame;

use super::{Command, ServerCmd};
use crate::session::{one_slot, Session, CROSSSLOT};
use crate::Routing;

const EXECABORT: &str = "EXECABORT Transaction discarded because of previous errors.";

/// True for the commands that run at once inside `MULTI` instead of being queued.
pub(crate) fn runs_inside_multi(cmd: ServerCmd) -> bool {
    matches!(
        cmd,
        ServerCmd::Exec
            | ServerCmd::Discard
            | ServerCmd::Multi
            | ServerCmd::Watch
            | ServerCmd::Quit
            | ServerCmd::Reset
    )
}

/// `MULTI`.
pub(super) fn multi(session: &mut Session) -> Frame {
    if session.multi.is_some() {
        Frame::error("ERR MULTI calls can not be nested")
    } else {
        session.multi = Some(Vec::new());
        session.info.multi.store(0, Ordering::Relaxed);
        Frame::OK
    }
}

/// `DISCARD`.
pub(super) fn discard(session: &mut Session) -> Frame {
    if session.multi.is_none() {
        Frame::error("ERR DISCARD without MULTI")
    } else {
        session.end_multi();
        session.watches.clear();
        Frame::OK
    }
}

/// `WATCH key [key ...]`.
pub(super) fn watch(session: &mut Session, args: &[Bytes]) -> Frame {
    if session.multi.is_some() {
        return Frame::error("ERR WATCH inside MULTI is not allowed");
    }
    if session.checks_slots() {
        if let Err(crossslot) = one_slot(args[1..].iter().map(|k| &k[..])) {
            return crossslot;
        }
    }
    if session.shared.config.cluster_routing == Routing::Redirect {
        let moved = args[1..]
            .iter()
            .find_map(|key| session.moved(types::key_slot(key)));
        if let Some(moved) = moved {
            return moved;
        }
    }
    let now = session.now_ms;
    let shared = session.shared.clone();
    let group = shared.engine.group_of(Some(types::key_slot(&args[1])));
    if session.watches.is_empty() {
        session.watch_group = group;
    }
    let db = shared.engine.db(group);
    for key in &args[1..] {
        if !session.watches.iter().any(|w| w.key.as_slice() == &key[..]) {
            session.watches.push(db.watch(key, now));
        }
    }
    Frame::OK
}

/// `UNWATCH`.
pub(super) fn unwatch(session: &mut Session) -> Frame {
    session.watches.clear();
    Frame::OK
}

/// Queues a request inside `MULTI`, or refuses it (and dooms the transaction) when Redis
/// would: an unknown command, a wrong number of arguments, a bad subcommand.
pub(crate) fn queue(session: &mut Session, args: Vec<Bytes>, command: Option<Command>) -> Frame {
    let arity_ok = match command {
        Some(Command::Connection(spec)) => spec.arity_ok(args.len()).then_some(()).ok_or(spec.name),
        Some(Command::Data(spec)) => spec.arity_ok(args.len()).then_some(()).ok_or(spec.name),
        None => {
            session.multi_dirty = true;
            return kv::command::unknown_command(&args).to_frame();
        }
    };
    if let Err(name) = arity_ok {
        session.multi_dirty = true;
        return kv::Error::Arity(name.to_string()).to_frame();
    }
    if let Some(error) = super::subcommand_error(&args) {
        session.multi_dirty = true;
        return error;
    }
    if let Some(Command::Data(spec)) = command {
        // Redis Cluster's order: a command's own keys across slots, then its redirection;
        // commands of different slots are each queued, and EXEC refuses them together.
        let slot = match session.command_slot(spec, &args) {
            Ok(slot) => slot,
            Err(crossslot) => {
                session.multi_dirty = true;
                return crossslot;
            }
        };
        if let Some(moved) = session.redirect(spec, slot) {
            session.multi_dirty = true;
            return moved;
        }
        // A transaction runs in one group's log; a whole-keyspace command (FLUSHALL,
        // DBSIZE, KEYS, SCAN, RANDOMKEY) there would see or change that group's part only.
        if slot.is_none()
            && session.shared.engine.is_split()
            && spec.key_positions(&args).is_empty()
            && !matches!(spec.name, "ping" | "echo")
        {
            session.multi_dirty = true;
            return Frame::error(format!(
                "ERR {} inside MULTI would cover one of the {} groups the keyspace is split \
                 over; send it outside the transaction",
                spec.name.to_ascii_uppercase(),
                session.shared.engine.groups().len()
            ));
        }
        if let Some(slot) = slot {
            if session.checks_slots() && session.multi_slot.is_some_and(|s| s != slot) {
                session.multi_crossslot = true;
            }
            session.multi_slot.get_or_insert(slot);
        }
    }
    let queue = session.multi.get_or_insert_with(Vec::new);
    queue.push(args);
    session
        .info
        .multi
        .store(queue.len() as i64, Ordering::Relaxed);
    Frame::Simple("QUEUED")
}

/// `EXEC`: the queued data commands, with the watched keys, as one proposal (atomic, and
/// with Raft one log entry); connection commands answered here, in their places.
pub(super) async fn exec(session: &mut Session) -> Frame {
    if session.multi.is_none() {
        return Frame::error("ERR EXEC without MULTI");
    }
    let dirty = session.multi_dirty;
    let crossslot = session.multi_crossslot;
    let multi_slot = session.multi_slot;
    let queued = session.end_multi();
    let watches = std::mem::take(&mut session.watches);
    if dirty {
        return Frame::error(EXECABORT);
    }
    if crossslot {
        return Frame::error(CROSSSLOT);
    }
    // Each queued request's kind, looked up once (every one was found when queued).
    // The transaction runs in one group's log: the group of its keys' slot, or of the
    // watched keys' when it has none. Watched keys in another slot than the queued ones
    // cannot be checked in that log.
    let watched = watches.first().map(|w| types::key_slot(&w.key));
    let slot = multi_slot.or(watched);
    if session.checks_slots() {
        let keys = watches.iter().map(|w| &w.key[..]);
        if one_slot(keys).is_err() || watched.is_some_and(|w| Some(w) != slot) {
            return Frame::error(CROSSSLOT);
        }
    }
    let group = session.shared.engine.group_of(slot);
    // The watches' positions are in the journal of the group they were taken in: if the
    // slot has moved to another group since, the transaction aborts (a key may have
    // changed on the way).
    if !watches.is_empty() && session.watch_group != group {
        return Frame::NullArray;
    }
    let kinds: Vec<Option<Command>> = queued.iter().map(|args| super::lookup(&args[0])).collect();
    // The data commands, each with its own seed, go into one EXEC proposal, parsed (on
    // every replica) with the time of EXEC; connection commands are answered here and
    // put back in their places afterwards.
    let mut cmds = Vec::new();
    for (args, kind) in queued.iter().zip(&kinds) {
        if !matches!(kind, Some(Command::Connection(_))) {
            cmds.push((args.clone(), session.ctx().seed));
        }
    }
    let reply = session
        .shared
        .engine
        .write(group, &kv::Proposal::Exec { watches, cmds }, session.now_ms)
        .await;
    let Frame::Array(replies) = reply else {
        return reply;
    };
    let mut replies = replies.into_iter();
    let mut out = Vec::with_capacity(queued.len());
    for (args, kind) in queued.iter().zip(kinds) {
        let reply = match kind {
            Some(Command::Connection(spec)) => super::run_queued(session, spec, args).await,
            _ => replies.next().unwrap_or(Frame::Null),
        };
        out.push(reply);
    }
    Frame::Array(out)
}
