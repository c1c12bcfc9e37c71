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

use crate::commands::{self, ServerCmd};
use crate::engine::Engine;
use crate::Shared;

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
    multi: Option<Vec<Vec<Bytes>>>,
    /// A queued command was refused: `EXEC` must abort.
    multi_dirty: bool,
    watches: Vec<Watch>,
    /// The clock for the requests being handled: read once per batch of pipelined
    /// requests ([`Session::begin_batch`]), as Redis reads it once per event-loop pass.
    now_ms: i64,
    /// This session's random generator, seeded from the node's randomness.
    rng: kv::rng::Rng,
    /// Commands handled since the last batch was counted.
    handled: u64,
}

const EXECABORT: &str = "EXECABORT Transaction discarded because of previous errors.";

impl Session {
    pub fn new(shared: Arc<Shared>, info: Arc<crate::clients::ClientInfo>) -> Self {
        let rng = kv::rng::Rng::new(shared.store.seed());
        let now_ms = shared.store.clock.now_ms();
        Session {
            shared,
            info,
            proto: Protocol::Resp2,
            multi: None,
            multi_dirty: false,
            watches: Vec::new(),
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
    fn ctx(&mut self) -> kv::Ctx {
        kv::Ctx {
            now_ms: self.now_ms,
            seed: self.rng.next_u64(),
        }
    }

    /// Handles one request. An empty request gets no reply (`None`).
    pub async fn handle(&mut self, args: Vec<Bytes>) -> (Option<Frame>, After) {
        self.handle_batch(vec![args])
            .await
            .pop()
            .unwrap_or((None, After::Continue))
    }

    /// Handles requests that arrived together on one connection, in order, and returns
    /// their replies in order (stopping after `QUIT`).
    ///
    /// Consecutive data writes are proposed together ([`Engine::write_many`]: with Raft,
    /// one batch to the log, replies in order) and consecutive data reads share one read
    /// barrier. A barrier serves the reads after it until this connection's next write:
    /// every one of them was received before the barrier started, so each still sees every
    /// write acknowledged before it was sent.
    pub async fn handle_batch(&mut self, requests: Vec<Vec<Bytes>>) -> Vec<(Option<Frame>, After)> {
        let shared = self.shared.clone();
        let engine = &shared.engine;
        let mut out: Vec<(Option<Frame>, After)> = Vec::with_capacity(requests.len());
        let mut pending: Vec<(usize, kv::Proposal)> = Vec::new();
        let mut barrier: Option<ReadAt> = None;
        for args in requests {
            let Some(name) = args.first() else {
                out.push((None, After::Continue));
                continue;
            };
            let plain = self.multi.is_none() && commands::lookup(name).is_none();
            if plain {
                self.note_command(name);
                let mut ctx = self.ctx();
                let seed = ctx.seed;
                match kv::parse(&args, &mut ctx) {
                    Err(e) => out.push((Some(e.to_frame()), After::Continue)),
                    Ok(Cmd::Write(_)) => {
                        pending.push((out.len(), kv::Proposal::Command { args, seed }));
                        out.push((None, After::Continue));
                        barrier = None;
                    }
                    Ok(Cmd::Read(read)) if reads_no_state(&args[0]) => {
                        out.push((Some(read.run(&engine.db(), ctx.now_ms)), After::Continue));
                    }
                    Ok(Cmd::Read(read)) => {
                        flush_writes(engine, &mut pending, &mut out, self.now_ms).await;
                        let at = match barrier {
                            Some(at) => at,
                            None => match engine.read_barrier().await {
                                Ok(at) => *barrier.insert(at),
                                Err(e) => {
                                    out.push((Some(e), After::Continue));
                                    continue;
                                }
                            },
                        };
                        let frame = match at {
                            ReadAt::Here => read.run(&engine.db(), ctx.now_ms),
                            ReadAt::Leader => engine.read_at_leader(&args, seed).await,
                        };
                        out.push((Some(frame), After::Continue));
                    }
                }
                continue;
            }
            flush_writes(engine, &mut pending, &mut out, self.now_ms).await;
            barrier = None;
            let reply = self.connection_command(args).await;
            let close = reply.1 == After::Close;
            out.push(reply);
            if close {
                break;
            }
        }
        flush_writes(engine, &mut pending, &mut out, self.now_ms).await;
        out
    }

    /// A request that is not a plain data command: a connection-level command, or any
    /// command inside `MULTI` (queued).
    async fn connection_command(&mut self, args: Vec<Bytes>) -> (Option<Frame>, After) {
        self.note_command(&args[0]);
        // Inside MULTI only the commands that end or shape the transaction run now.
        let spec = match commands::lookup(&args[0]) {
            Some(spec) if self.multi.is_none() || runs_inside_multi(spec.cmd) => spec,
            _ => return (Some(self.queue(args)), After::Continue),
        };
        if !spec.arity_ok(args.len()) {
            return (
                Some(kv::Error::Arity(spec.name.to_string()).to_frame()),
                After::Continue,
            );
        }
        self.server_command(spec.cmd, &args).await
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

    fn queue(&mut self, args: Vec<Bytes>) -> Frame {
        let arity_ok = match commands::lookup(&args[0]) {
            Some(spec) => spec.arity_ok(args.len()).then_some(()).ok_or(spec.name),
            None => match kv::command::lookup(&args[0]) {
                Some(spec) => spec.arity_ok(args.len()).then_some(()).ok_or(spec.name),
                None => {
                    self.multi_dirty = true;
                    return kv::command::unknown_command(&args).to_frame();
                }
            },
        };
        if let Err(name) = arity_ok {
            self.multi_dirty = true;
            return kv::Error::Arity(name.to_string()).to_frame();
        }
        if let Some(error) = commands::subcommand_error(&args) {
            self.multi_dirty = true;
            return error;
        }
        let queue = self.multi.get_or_insert_with(Vec::new);
        queue.push(args);
        self.info.multi.store(queue.len() as i64, Ordering::Relaxed);
        Frame::Simple("QUEUED")
    }

    fn end_multi(&mut self) -> Vec<Vec<Bytes>> {
        self.multi_dirty = false;
        self.info.multi.store(-1, Ordering::Relaxed);
        self.multi.take().unwrap_or_default()
    }

    async fn exec(&mut self) -> Frame {
        if self.multi.is_none() {
            return Frame::error("ERR EXEC without MULTI");
        }
        let dirty = self.multi_dirty;
        let queued = self.end_multi();
        let watches = std::mem::take(&mut self.watches);
        if dirty {
            return Frame::error(EXECABORT);
        }
        // The data commands, each with its own seed, go into one EXEC proposal, parsed (on
        // every replica) with the time of EXEC; connection commands are answered here and
        // put back in their places afterwards.
        let mut cmds = Vec::new();
        for args in &queued {
            if commands::lookup(&args[0]).is_none() {
                cmds.push((args.clone(), self.ctx().seed));
            }
        }
        let reply = self
            .shared
            .engine
            .write(&kv::Proposal::Exec { watches, cmds }, self.now_ms)
            .await;
        let Frame::Array(replies) = reply else {
            return reply;
        };
        let mut replies = replies.into_iter();
        let mut out = Vec::with_capacity(queued.len());
        for args in &queued {
            let reply = match commands::lookup(&args[0]) {
                Some(spec) => Box::pin(self.server_command(spec.cmd, args))
                    .await
                    .0
                    .unwrap_or(Frame::OK),
                None => replies.next().unwrap_or(Frame::Null),
            };
            out.push(reply);
        }
        Frame::Array(out)
    }

    async fn server_command(&mut self, cmd: ServerCmd, args: &[Bytes]) -> (Option<Frame>, After) {
        let reply = match cmd {
            ServerCmd::Multi => {
                if self.multi.is_some() {
                    Frame::error("ERR MULTI calls can not be nested")
                } else {
                    self.multi = Some(Vec::new());
                    self.info.multi.store(0, Ordering::Relaxed);
                    Frame::OK
                }
            }
            ServerCmd::Exec => self.exec().await,
            ServerCmd::Debug => self.debug(args).await,
            ServerCmd::Cluster => self.cluster(args).await,
            ServerCmd::Discard => {
                if self.multi.is_none() {
                    Frame::error("ERR DISCARD without MULTI")
                } else {
                    self.end_multi();
                    self.watches.clear();
                    Frame::OK
                }
            }
            ServerCmd::Watch => {
                if self.multi.is_some() {
                    Frame::error("ERR WATCH inside MULTI is not allowed")
                } else {
                    let now = self.now_ms;
                    let db = self.shared.engine.db();
                    for key in &args[1..] {
                        if !self.watches.iter().any(|w| w.key.as_slice() == &key[..]) {
                            self.watches.push(db.watch(key, now));
                        }
                    }
                    Frame::OK
                }
            }
            ServerCmd::Unwatch => {
                self.watches.clear();
                Frame::OK
            }
            ServerCmd::Quit => return (Some(Frame::OK), After::Close),
            ServerCmd::Reset => {
                self.end_multi();
                self.watches.clear();
                self.set_proto(Protocol::Resp2);
                *self.info.name.lock().unwrap_or_else(|p| p.into_inner()) = None;
                Frame::Simple("RESET")
            }
            ServerCmd::Hello => self.hello(args),
            other => commands::run(self, other, args),
        };
        (Some(reply), After::Continue)
    }

    /// `DEBUG DIGEST`: the digest of this node's data after the read barrier, so it is
    /// the same on every replica that has applied the same log.
    async fn debug(&mut self, args: &[Bytes]) -> Frame {
        if !kv::args::is(&args[1], "digest") || args.len() != 2 {
            return Frame::error(format!(
                "ERR unknown subcommand '{}'. Try DEBUG HELP.",
                String::from_utf8_lossy(&args[1])
            ));
        }
        let now = self.now_ms;
        match self.shared.engine.read(|db| db.digest(now)).await {
            Ok(digest) => Frame::Status(digest),
            Err(e) => e,
        }
    }

    /// `CLUSTER FORGET <node-id>`: removes a node from the cluster.
    /// `CLUSTER TRANSFER-LEADER <node-id>` (redraft's own; sent to the leader): hands
    /// leadership to that voter.
    async fn cluster(&mut self, args: &[Bytes]) -> Frame {
        if kv::args::is(&args[1], "transfer-leader") {
            if args.len() != 3 {
                return kv::Error::Arity("cluster|transfer-leader".into()).to_frame();
            }
            let Some(id) = resp::request::parse_int(&args[2]).filter(|&id| id > 0) else {
                return Frame::error(format!(
                    "ERR Unknown node {}",
                    String::from_utf8_lossy(&args[2])
                ));
            };
            return self.shared.engine.transfer_leader(id as u64).await;
        }
        if kv::args::is(&args[1], "forget") {
            if args.len() != 3 {
                return kv::Error::Arity("cluster|forget".into()).to_frame();
            }
            let Some(id) = resp::request::parse_int(&args[2]).filter(|&id| id > 0) else {
                return Frame::error(format!(
                    "ERR Unknown node {}",
                    String::from_utf8_lossy(&args[2])
                ));
            };
            return self.shared.engine.forget(id as u64).await;
        }
        Frame::error(format!(
            "ERR unknown subcommand '{}'. Try CLUSTER HELP.",
            String::from_utf8_lossy(&args[1])
        ))
    }

    pub fn set_proto(&mut self, proto: Protocol) {
        self.proto = proto;
        self.info.resp.store(
            if proto == Protocol::Resp3 { 3 } else { 2 },
            Ordering::Relaxed,
        );
    }

    /// `HELLO [protover [AUTH username password] [SETNAME clientname]]`
    fn hello(&mut self, args: &[Bytes]) -> Frame {
        let mut proto = self.proto;
        let mut setname = None;
        if let Some(v) = args.get(1) {
            let Some(v) = resp::request::parse_int(v) else {
                return Frame::error("ERR Protocol version is not an integer or out of range");
            };
            proto = match v {
                2 => Protocol::Resp2,
                3 => Protocol::Resp3,
                _ => return Frame::error("NOPROTO unsupported protocol version"),
            };
            let mut i = 2;
            while i < args.len() {
                let more = args.len() - i - 1;
                if kv::args::is(&args[i], "auth") && more >= 2 {
                    i += 3;
                } else if kv::args::is(&args[i], "setname") && more >= 1 {
                    setname = Some(args[i + 1].clone());
                    i += 2;
                } else {
                    return Frame::error(format!(
                        "ERR Syntax error in HELLO option '{}'",
                        String::from_utf8_lossy(&args[i])
                    ));
                }
            }
        }
        if let Some(name) = setname {
            if let Err(e) = commands::set_client_name(self, &name) {
                return e;
            }
        }
        self.set_proto(proto);
        Frame::Map(vec![
            (Frame::bulk("server"), Frame::bulk("redis")),
            (Frame::bulk("version"), Frame::bulk(crate::REDIS_VERSION)),
            (
                Frame::bulk("proto"),
                Frame::Integer(if proto == Protocol::Resp3 { 3 } else { 2 }),
            ),
            (Frame::bulk("id"), Frame::Integer(self.info.id as i64)),
            (Frame::bulk("mode"), Frame::bulk("standalone")),
            (Frame::bulk("role"), Frame::bulk("master")),
            (Frame::bulk("modules"), Frame::Array(vec![])),
        ])
    }
}

/// True for the commands that run at once inside `MULTI` instead of being queued.
fn runs_inside_multi(cmd: ServerCmd) -> bool {
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

/// `PING` and `ECHO` answer without reading the data, so they need no read barrier: a
/// node answers them even when it cannot reach a quorum (as a Redis node does), and a
/// health check sees the process, not the cluster.
fn reads_no_state(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"ping") || name.eq_ignore_ascii_case(b"echo")
}

/// Proposes the writes waiting in `pending` (read at `now_ms`) together and puts each
/// reply in its place.
async fn flush_writes(
    engine: &Engine,
    pending: &mut Vec<(usize, kv::Proposal)>,
    out: &mut [(Option<Frame>, After)],
    now_ms: i64,
) {
    if pending.is_empty() {
        return;
    }
    let (places, proposals): (Vec<usize>, Vec<kv::Proposal>) = pending.drain(..).unzip();
    let replies = engine.write_many(&proposals, now_ms).await;
    for (place, reply) in places.into_iter().zip(replies) {
        out[place].0 = Some(reply);
    }
}
