//! One client's session: protocol version, name, `MULTI` queue and `WATCH`ed keys, and
//! the dispatch of each request to the connection-level commands here or to `kv`.
//!
//! A session has no socket: [`Session::handle`] takes a request's arguments and returns
//! the reply, so the connection loop and the data-driven tests drive it the same way.
//!
//! Transactions follow Redis: inside `MULTI`, unknown commands and arity errors are
//! replied at once and doom the transaction (`EXECABORT`); everything else is queued as
//! raw arguments and parsed at `EXEC` time (so `EX 10` counts from `EXEC`), and the
//! whole batch, with the watched keys, is one [`kv::Write::Exec`]: atomic, and on the
//! Raft path one log entry.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use kv::db::Watch;
use kv::Cmd;
use resp::{Frame, Protocol};

use cluster::ReadAt;

use crate::commands::{self, Command};
use crate::engine::Engine;
use crate::{Routing, Shared};
use types::GroupId;

/// Bytes of replies one batch makes before it stops (see [`Session::handle_batch`]).
pub const REPLY_BUDGET: usize = 8 << 20;

/// What the connection does after sending a reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum After {
    Continue,
    Close,
}

pub struct Session {
    pub shared: Arc<Shared>,
    pub info: Arc<crate::clients::ClientInfo>,
    pub proto: Protocol,
    /// Queued requests while in `MULTI`.
    pub(crate) multi: Option<Vec<Vec<Bytes>>>,
    /// A queued command was refused: `EXEC` must abort.
    pub(crate) multi_dirty: bool,
    pub(crate) watches: Vec<Watch>,
    /// The group the watches were taken in (see `commands::multi::exec`).
    pub(crate) watch_group: GroupId,
    /// Signed in (or no password is asked for): commands other than `AUTH`, `HELLO`,
    /// `QUIT` and `RESET` run.
    pub(crate) authenticated: bool,
    /// The user this connection runs as (`default` until it signs in as another).
    pub(crate) user: String,
    /// That user's rules, compiled (`None` when it no longer exists).
    pub(crate) access: Option<Arc<crate::acl::Access>>,
    /// The version of the users `access` was compiled from.
    acl_version: u64,
    /// `READONLY`: reads of slots this node does not lead may be served here (through a
    /// read index) instead of redirected.
    pub(crate) readonly: bool,
    /// The slot of the keys queued in `MULTI` so far, and whether they span several
    /// (then `EXEC` answers `-CROSSSLOT`), when slots are checked ([`Session::checks_slots`]).
    pub(crate) multi_slot: Option<types::Slot>,
    pub(crate) multi_crossslot: bool,
    /// The clock for the requests being handled: read once per batch of pipelined
    /// requests ([`Session::begin_batch`]), as Redis reads it once per event-loop pass.
    pub(crate) now_ms: i64,
    /// This session's random generator, seeded from the node's randomness.
    rng: kv::rng::Rng,
    /// Commands handled since the last batch was counted.
    handled: u64,
}

impl Session {
    pub fn new(shared: Arc<Shared>, info: Arc<crate::clients::ClientInfo>) -> Self {
        let rng = kv::rng::Rng::new(shared.store.seed());
        let now_ms = shared.store.clock.now_ms();
        let users = shared.users();
        let authenticated = !shared.auth.required(&users);
        let user = meta::acl::DEFAULT_USER.to_string();
        Session {
            authenticated,
            access: shared.acl.access(&users, &user),
            user,
            acl_version: users.version,
            shared,
            info,
            proto: Protocol::Resp2,
            multi: None,
            multi_dirty: false,
            watches: Vec::new(),
            watch_group: GroupId(0),
            readonly: false,
            multi_slot: None,
            multi_crossslot: false,
            now_ms,
            rng,
            handled: 0,
        }
    }

    /// A session with no connection behind it (data-driven tests, tools), registered as
    /// a client at 127.0.0.1:0.
    pub fn detached(shared: Arc<Shared>) -> Self {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let info = shared.clients.register(addr, addr);
        Session::new(shared, info)
    }

    /// Starts a batch of requests read together: reads the clock once, and counts the
    /// previous batch's commands and its time for `INFO` and `CLIENT LIST`.
    pub fn begin_batch(&mut self) {
        self.now_ms = self.shared.store.clock.now_ms();
        if self.handled > 0 {
            self.shared
                .store
                .stats
                .commands
                .fetch_add(self.handled, Ordering::Relaxed);
            self.handled = 0;
            let ms = self.info.created.elapsed().as_millis() as u64;
            self.info.last_ms.store(ms, Ordering::Relaxed);
        }
    }

    /// What the next command is parsed with: the batch's time and a fresh seed.
    pub(crate) fn ctx(&mut self) -> kv::Ctx {
        kv::Ctx {
            now_ms: self.now_ms,
            seed: self.rng.next_u64(),
        }
    }

    /// Handles one request. An empty request gets no reply (`None`).
    pub async fn handle(&mut self, args: Vec<Bytes>) -> (Option<Frame>, After) {
        self.handle_batch(&mut vec![args].into())
            .await
            .pop()
            .unwrap_or((None, After::Continue))
    }

    /// Handles requests that arrived together on one connection, in order, taking them
    /// from the front of `ahead`, and returns their replies in order (stopping after
    /// `QUIT`). It stops early, leaving the rest in `ahead`, once the replies hold
    /// [`REPLY_BUDGET`] bytes: a client that pipelines a thousand `GET`s of a large value
    /// has them answered a budget at a time, each written before the next is made, so
    /// the node never holds more than a budget of its replies.
    ///
    /// Consecutive data writes are proposed together ([`Engine::write_many`]: with Raft,
    /// one batch to the log, replies in order) and consecutive data reads share one read
    /// barrier. A barrier serves the reads after it until this connection's next write:
    /// every one of them was received before the barrier started, so each still sees every
    /// write acknowledged before it was sent.
    pub async fn handle_batch(
        &mut self,
        ahead: &mut std::collections::VecDeque<Vec<Bytes>>,
    ) -> Vec<(Option<Frame>, After)> {
        let shared = self.shared.clone();
        let engine = &shared.engine;
        if self.refresh_access() == After::Close {
            return vec![(None, After::Close)];
        }
        let mut out: Vec<(Option<Frame>, After)> = Vec::with_capacity(ahead.len());
        let mut pending: Vec<(usize, GroupId, kv::Proposal)> = Vec::new();
        // The read barriers taken since this connection's last write, by group.
        let mut barriers: Vec<(GroupId, ReadAt)> = Vec::new();
        // Bytes of the replies so far (pending writes' replies, made at the flush, are
        // small); the rest waits for the next batch once the budget is spent.
        let mut reply_bytes = 0;
        let mut counted = 0;
        while let Some(args) = ahead.pop_front() {
            reply_bytes += out[counted..]
                .iter()
                .filter_map(|(f, _)| f.as_ref().map(Frame::approx_len))
                .sum::<usize>();
            counted = out.len();
            if reply_bytes >= REPLY_BUDGET {
                ahead.push_front(args);
                break;
            }
            let Some(name) = args.first() else {
                out.push((None, After::Continue));
                continue;
            };
            let command = commands::lookup(name);
            if !self.authenticated && must_sign_in(command, args.len()) {
                self.note_command(name);
                out.push((Some(Frame::error(crate::auth::NOAUTH)), After::Continue));
                continue;
            }
            if let Some(refused) = command.and_then(|c| self.refused_by_acl(c, &args)) {
                self.note_command(name);
                out.push((Some(refused), After::Continue));
                continue;
            }
            let data = match command {
                Some(Command::Data(spec)) if self.multi.is_none() => spec,
                _ => {
                    flush_writes(engine, &mut pending, &mut out, self.now_ms).await;
                    barriers.clear();
                    let reply = self.connection_command(args, command).await;
                    let close = reply.1 == After::Close;
                    out.push(reply);
                    if close {
                        break;
                    }
                    continue;
                }
            };
            self.note_command(name);
            let slot = match self.command_slot(data, &args) {
                Ok(slot) => slot,
                Err(crossslot) => {
                    out.push((Some(crossslot), After::Continue));
                    continue;
                }
            };
            if let Some(moved) = self.redirect(data, slot) {
                out.push((Some(moved), After::Continue));
                continue;
            }
            let group = engine.group_of(slot);
            let mut ctx = self.ctx();
            let seed = ctx.seed;
            let keyless = slot.is_none() && engine.is_split() && !reads_no_state(&args[0]);
            match kv::command::parse_spec(data, &args, &mut ctx) {
                Err(e) => out.push((Some(e.to_frame()), After::Continue)),
                Ok(cmd) if keyless => {
                    // A whole-keyspace command: every group's part, merged.
                    flush_writes(engine, &mut pending, &mut out, self.now_ms).await;
                    barriers.clear();
                    let reply = match cmd {
                        Cmd::Write(_) => {
                            let proposal = kv::Proposal::Command { args, seed };
                            let groups = shared.keyspace_groups();
                            commands::keyspace::write_everywhere(
                                engine,
                                &groups,
                                &proposal,
                                self.now_ms,
                            )
                            .await
                        }
                        Cmd::Read(_) => {
                            let groups = shared.keyspace_groups();
                            commands::keyspace::read_everywhere(
                                engine, &groups, &args, seed, ctx.now_ms,
                            )
                            .await
                        }
                    };
                    out.push((Some(reply), After::Continue));
                }
                Ok(Cmd::Write(_)) => {
                    pending.push((out.len(), group, kv::Proposal::Command { args, seed }));
                    out.push((None, After::Continue));
                    barriers.clear();
                }
                Ok(Cmd::Read(read)) if reads_no_state(&args[0]) => {
                    out.push((
                        Some(cluster::run_read(&read, &engine.db(group), ctx.now_ms)),
                        After::Continue,
                    ));
                }
                Ok(Cmd::Read(read)) => {
                    flush_writes(engine, &mut pending, &mut out, self.now_ms).await;
                    if !barriers.iter().any(|(g, _)| *g == group) {
                        barriers_ahead(engine, group, ahead, &mut barriers).await;
                    }
                    let at = match barriers.iter().find(|(g, _)| *g == group) {
                        Some(&(_, at)) => at,
                        None => match engine.read_barrier(group).await {
                            Ok(at) => {
                                barriers.push((group, at));
                                at
                            }
                            Err(e) => {
                                out.push((Some(e), After::Continue));
                                continue;
                            }
                        },
                    };
                    let frame = match at {
                        ReadAt::Here => engine.run_read(group, &read, slot, ctx.now_ms),
                        ReadAt::Leader => engine.read_at_leader(group, &args, seed).await,
                    };
                    // Its slot moved or is moving: routed again (this read only).
                    let frame = engine
                        .read_after_refusal(frame, &read, &args, slot, seed, ctx.now_ms)
                        .await;
                    out.push((Some(frame), After::Continue));
                }
            }
        }
        flush_writes(engine, &mut pending, &mut out, self.now_ms).await;
        out
    }

    /// A request that is not a data command outside `MULTI`: a connection-level
    /// command, a command to queue inside `MULTI`, or an unknown one.
    async fn connection_command(
        &mut self,
        args: Vec<Bytes>,
        command: Option<Command>,
    ) -> (Option<Frame>, After) {
        self.note_command(&args[0]);
        let spec = match command {
            Some(Command::Connection(spec))
                if self.multi.is_none() || commands::runs_inside_multi(spec.cmd) =>
            {
                spec
            }
            _ if self.multi.is_some() => {
                return (
                    Some(commands::multi::queue(self, args, command)),
                    After::Continue,
                )
            }
            _ => {
                let unknown = kv::command::unknown_command(&args).to_frame();
                return (Some(unknown), After::Continue);
            }
        };
        if !spec.arity_ok(args.len()) {
            return (
                Some(kv::Error::Arity(spec.name.to_string()).to_frame()),
                After::Continue,
            );
        }
        commands::run(self, spec, &args).await
    }

    /// True when keys are held to Redis Cluster's one-slot rule: multi-key commands,
    /// transactions and `WATCH` whose keys span slots get `-CROSSSLOT`. A cluster node in
    /// redirect mode speaks Redis Cluster exactly, and so does one whose keyspace is split
    /// over several groups (a command's keys must be in one group's log to be atomic, and
    /// which slots share a group is not the client's business). With one group and
    /// proxying, every multi-key command is atomic in one log anyway, so standalone
    /// Redis's semantics stay.
    pub(crate) fn checks_slots(&self) -> bool {
        let engine = &self.shared.engine;
        engine.node().is_some()
            && (self.shared.config.cluster_routing == Routing::Redirect || engine.is_split())
    }

    /// The slot of a data command's first key (`None` for a command with none, or a
    /// malformed one), which routes it; `-CROSSSLOT` when its keys span several slots and
    /// slots are checked.
    pub(crate) fn command_slot(
        &self,
        spec: &kv::Spec,
        args: &[Bytes],
    ) -> Result<Option<types::Slot>, Frame> {
        if !spec.arity_ok(args.len()) {
            return Ok(None);
        }
        let keys = spec.key_positions(args);
        if self.checks_slots() {
            one_slot(keys.into_iter().map(|i| &args[i][..]))
        } else {
            Ok(keys.first().map(|&i| types::key_slot(&args[i])))
        }
    }

    /// In redirect mode (`--cluster-routing redirect`), `-MOVED` for a data command whose
    /// slot (from [`Session::command_slot`]) another node serves; a read stays when the
    /// connection sent `READONLY`. Commands with no key, and malformed ones (no slot), are
    /// answered here.
    pub(crate) fn redirect(&self, spec: &kv::Spec, slot: Option<types::Slot>) -> Option<Frame> {
        if self.shared.config.cluster_routing != Routing::Redirect
            || (self.readonly && !spec.is_write())
        {
            return None;
        }
        self.moved(slot?)
    }

    /// `-MOVED` to the node that serves `slot`, if another one does.
    pub(crate) fn moved(&self, slot: types::Slot) -> Option<Frame> {
        let to = self.shared.engine.moved_to(slot)?;
        Some(crate::commands::cluster::moved(
            slot,
            &to,
            self.shared.config.preferred_endpoint_type,
        ))
    }

    /// Signs the connection in as `user`.
    pub(crate) fn sign_in_as(&mut self, user: String) {
        let users = self.shared.users();
        self.access = self.shared.acl.access(&users, &user);
        self.acl_version = users.version;
        *self.info.user.lock().unwrap_or_else(|p| p.into_inner()) = user.clone();
        self.user = user;
        self.authenticated = true;
    }

    /// Back to the default user, signed in only if it needs no password (`RESET`).
    pub(crate) fn sign_out(&mut self) {
        let users = self.shared.users();
        self.sign_in_as(meta::acl::DEFAULT_USER.to_string());
        self.authenticated = !self.shared.auth.required(&users);
    }

    /// Takes up the users' latest rules if they changed since this connection compiled
    /// its own; `Close` when its user was removed (Redis closes such connections).
    fn refresh_access(&mut self) -> After {
        if self.shared.engine.acl_version() == self.acl_version {
            return After::Continue;
        }
        let users = self.shared.users();
        self.acl_version = users.version;
        self.access = self.shared.acl.access(&users, &self.user);
        if self.access.is_none() && self.authenticated {
            return After::Close;
        }
        After::Continue
    }

    /// `-NOPERM` with Redis's text, and an `ACL LOG` entry, when the signed-in user may
    /// not run this command (well-formed, so arity errors come first as in Redis) on
    /// these keys. Refused inside `MULTI`, it dooms the transaction as Redis does.
    fn refused_by_acl(&mut self, command: Command, args: &[Bytes]) -> Option<Frame> {
        let access = self.access.as_ref()?;
        if access.allows_everything() {
            return None;
        }
        let (name, keys) = match command {
            Command::Data(spec) if spec.arity_ok(args.len()) => {
                (spec.name, spec.key_positions(args))
            }
            Command::Connection(spec)
                if spec.arity_ok(args.len()) && !spec.flags.contains(&"no_auth") =>
            {
                (spec.name, commands::key_positions(spec, args.len()))
            }
            _ => return None,
        };
        let denied = access.check(name, args, &keys).err()?;
        let (reason, object) = match &denied {
            crate::acl::Denied::Command(full) => ("command", full.clone()),
            crate::acl::Denied::Key(key) => ("key", String::from_utf8_lossy(key).into_owned()),
        };
        let context = if self.multi.is_some() {
            self.multi_dirty = true;
            "multi"
        } else {
            "toplevel"
        };
        self.shared
            .acl_log
            .add(reason, context, object, self.user.clone(), self.info.line());
        if name == "exec" {
            // A refused EXEC ends the transaction, as any refused EXEC does in Redis.
            self.end_multi();
            self.watches.clear();
            return Some(Frame::error(format!(
                "EXECABORT Transaction discarded because of: {}",
                denied.text()
            )));
        }
        Some(denied.reply())
    }

    fn note_command(&mut self, name: &[u8]) {
        self.handled += 1;
        if let Ok(mut last) = self.info.last_cmd.try_lock() {
            if !last.as_bytes().eq_ignore_ascii_case(name) {
                last.clear();
                last.push_str(&String::from_utf8_lossy(name).to_ascii_lowercase());
            }
        }
    }

    /// Leaves `MULTI`: the queued requests.
    pub(crate) fn end_multi(&mut self) -> Vec<Vec<Bytes>> {
        self.multi_slot = None;
        self.multi_crossslot = false;
        self.multi_dirty = false;
        self.info.multi.store(-1, Ordering::Relaxed);
        self.multi.take().unwrap_or_default()
    }

    pub fn set_proto(&mut self, proto: Protocol) {
        self.proto = proto;
        self.info.resp.store(
            if proto == Protocol::Resp3 { 3 } else { 2 },
            Ordering::Relaxed,
        );
    }
}

/// Redis Cluster's reply to keys that span slots.
pub(crate) const CROSSSLOT: &str = "CROSSSLOT Keys in request don't hash to the same slot";

/// The one slot of `keys` (`None` for no key), or `-CROSSSLOT`.
pub(crate) fn one_slot<'a>(
    keys: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Option<types::Slot>, Frame> {
    let mut slot = None;
    for key in keys {
        let s = types::key_slot(key);
        if slot.is_some_and(|first| first != s) {
            return Err(Frame::error(CROSSSLOT));
        }
        slot = Some(s);
    }
    Ok(slot)
}

/// `PING` and `ECHO` answer without reading the data, so they need no read barrier: a
/// node answers them even when it cannot reach a quorum (as a Redis node does), and a
/// health check sees the process, not the cluster.
fn reads_no_state(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"ping") || name.eq_ignore_ascii_case(b"echo")
}

/// Takes, at once, the read barriers of `group` and of the groups the data reads right
/// after it (up to the next request that is not one) will need: a pipeline of reads over
/// many groups waits for one round trip, not one per group. Each barrier still serves only
/// requests received before it started. A barrier that fails is not kept; the read that
/// needs it tries again and answers the error.
async fn barriers_ahead(
    engine: &Engine,
    group: GroupId,
    ahead: &std::collections::VecDeque<Vec<Bytes>>,
    barriers: &mut Vec<(GroupId, ReadAt)>,
) {
    let mut wanted = vec![group];
    if engine.is_split() {
        for args in ahead {
            let Some(Command::Data(spec)) = args.first().and_then(|n| commands::lookup(n)) else {
                break;
            };
            if spec.is_write() || !spec.arity_ok(args.len()) {
                break;
            }
            let Some(first) = spec.first_key(args) else {
                break;
            };
            let g = engine.group_of(Some(types::key_slot(&args[first])));
            if !wanted.contains(&g) && !barriers.iter().any(|(b, _)| *b == g) {
                wanted.push(g);
            }
        }
    }
    let taken =
        futures_util::future::join_all(wanted.iter().map(|&g| engine.read_barrier(g))).await;
    for (g, at) in wanted.into_iter().zip(taken) {
        if let Ok(at) = at {
            barriers.push((g, at));
        }
    }
}

/// Proposes the writes waiting in `pending` (read at `now_ms`) and puts each reply in its
/// place: each group's writes together and in order, the groups at once.
async fn flush_writes(
    engine: &Engine,
    pending: &mut Vec<(usize, GroupId, kv::Proposal)>,
    out: &mut [(Option<Frame>, After)],
    now_ms: i64,
) {
    if pending.is_empty() {
        return;
    }
    let mut by_group: Vec<(GroupId, Vec<usize>, Vec<kv::Proposal>)> = Vec::new();
    for (place, group, proposal) in pending.drain(..) {
        match by_group.iter_mut().find(|(g, _, _)| *g == group) {
            Some((_, places, proposals)) => {
                places.push(place);
                proposals.push(proposal);
            }
            None => by_group.push((group, vec![place], vec![proposal])),
        }
    }
    let replies = futures_util::future::join_all(
        by_group
            .iter()
            .map(|(group, _, proposals)| engine.write_many(*group, proposals, now_ms)),
    )
    .await;
    for ((_, places, _), replies) in by_group.iter().zip(replies) {
        for (&place, reply) in places.iter().zip(replies) {
            out[place].0 = Some(reply);
        }
    }
}

/// True if a connection that has not signed in gets `-NOAUTH` for this command: a known
/// command with the right number of arguments (Redis answers unknown commands and arity
/// errors first) that is not one of the few allowed before (`no_auth`: `AUTH`, `HELLO`,
/// `QUIT`, `RESET`).
fn must_sign_in(command: Option<Command>, argc: usize) -> bool {
    match command {
        None => false,
        Some(Command::Data(spec)) => spec.arity_ok(argc),
        Some(Command::Connection(spec)) => spec.arity_ok(argc) && !spec.flags.contains(&"no_auth"),
    }
}
