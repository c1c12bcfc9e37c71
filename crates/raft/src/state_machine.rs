//! The state machine of one group: the `kv` database behind a mutex, the last applied log
//! id and membership, and the group's snapshot files.
//!
//! **Apply.** A normal entry carries a [`Request`]: its [`kv::Proposal`] is decoded and
//! applied with `now_ms = max(entry's now_ms, last applied now_ms)`, so every replica runs
//! every write at the same, never decreasing, time. The reply goes to the waiting client
//! (on the leader) as a [`Response`]. A proposal that does not decode, or a command that
//! panics, becomes an error reply: the same on every replica, so the entry still counts as
//! applied. A large write arrives as parts and is applied when its `Assemble` entry is
//! ([`crate::uploads`]); the parts in progress are replicated state. Blank and membership
//! entries only advance the applied state (and end the uploads of older terms).
//!
//! **Resource errors do not stop the group.** Building, reading or installing a snapshot
//! that fails because the disk is full or the process is out of file descriptors is
//! retried with growing pauses (and logged) instead of being reported to openraft, which
//! would stop the group for good; no snapshot is started while the log itself cannot
//! write. Corrupt data is still an error.
//!
//! **Snapshots without stopping applies.** Openraft asks for a builder between two
//! applies; the builder takes a clone of the database under the lock (the only pause
//! applies and readers see), and writes it to a file on a blocking thread while applies go
//! on. Installing a snapshot loads the file on a blocking thread and swaps the database in
//! under the lock; the old one is dropped outside it.
//!
//! **Restart.** [`open`] loads the newest snapshot file into the database, so
//! `applied_state()` starts at it; openraft then replays the log from there to the saved
//! committed index.
//!
//! Invariants:
//! - `applied`, `membership` and `now_ms` always describe the database's contents: they
//!   change together with it, by apply or by install.
//! - `apply` never reads a clock, never draws randomness, never does I/O.

use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_util::{Stream, StreamExt};
use openraft::entry::RaftEntry;
use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine};
use openraft::OptionalSend;
use resp::Frame;

use crate::log_store::{Health, LogDb, LogStore};
use crate::snapshot_files::{self, Header, SnapshotFiles};
use crate::typ::{
    Entry, EntryPayload, EntryResponder, LogId, Payload, Request, Response, Snapshot, SnapshotMeta,
    StoredMembership, TypeConfig,
};
use crate::uploads::{self, Uploads};
use crate::Error;
use types::GroupId;

/// `now_ms` before anything was applied: any entry's time is later.
const NO_TIME: i64 = i64::MIN;
/// A large write of more bytes than this is applied off the runtime's task scheduling
/// (`block_in_place`).
const BIG_APPLY: u64 = 8 << 20;

/// Opens the storage of one group: its log in the node's sled database, and its state
/// machine over `kv`, restored from the group's newest snapshot file under
/// `<data_dir>/snapshots/group-<id>/` (or empty when there is none). Whatever `kv` held
/// is replaced. Blocking (it reads the snapshot): call it at startup or on a blocking
/// thread, then hand both halves to `openraft::Raft::new`, which replays the log.
///
/// The log is checked against its checksums and the watermark ([`LogStore::verify`]): a
/// damaged record in the acknowledged part of the log is an error, and a log that holds
/// less than the node had flushed is reported in [`Opened::behind`].
pub fn open(
    db: &LogDb,
    group: GroupId,
    data_dir: &Path,
    kv: Arc<Mutex<kv::Db>>,
) -> Result<Opened, Error> {
    let log = LogStore::open(db, group)?;
    let mut sm = StateMachine::open(group, data_dir, kv)?;
    sm.health = Some(db.health());
    let behind = log
        .verify(sm.applied.map(|l| l.index))
        .map_err(Error::Verify)?;
    Ok(Opened { log, sm, behind })
}

/// One group's storage, opened.
pub struct Opened {
    pub log: LogStore,
    pub sm: StateMachine,
    /// Set when the log holds less than this node had flushed before (see
    /// [`crate::log_store::Behind`]).
    pub behind: Option<crate::log_store::Behind>,
}

/// One group's state machine (see the module header).
pub struct StateMachine {
    group: GroupId,
    kv: Arc<Mutex<kv::Db>>,
    applied: Option<LogId>,
    membership: StoredMembership,
    now_ms: i64,
    files: SnapshotFiles,
    uploads: Uploads,
    /// The log's health: no snapshot is started while it cannot write.
    health: Option<tokio::sync::watch::Receiver<Health>>,
    /// UNSAFE (a self-test's broken setting): apply with this machine's clock instead of
    /// the entry's time.
    local_clock: bool,
}

impl StateMachine {
    /// The state machine of `group`, restored from its newest snapshot file. Blocking.
    pub fn open(group: GroupId, data_dir: &Path, kv: Arc<Mutex<kv::Db>>) -> Result<Self, Error> {
        let files = SnapshotFiles::open(data_dir, group).map_err(|e| Error::Snapshot {
            path: data_dir.to_path_buf(),
            source: e,
        })?;
        let mut sm = StateMachine {
            group,
            kv,
            applied: None,
            membership: StoredMembership::default(),
            now_ms: NO_TIME,
            files,
            uploads: Uploads::default(),
            health: None,
            local_clock: false,
        };
        let latest = sm.files.latest().map_err(|e| Error::Snapshot {
            path: sm.files.dir().to_path_buf(),
            source: e,
        })?;
        let db = match latest {
            Some((_, _, path)) => {
                let loaded = snapshot_files::load(&path)
                    .map_err(|source| Error::Snapshot { path, source })?;
                sm.applied = loaded.header.meta.last_log_id;
                sm.membership = loaded.header.meta.last_membership;
                sm.now_ms = loaded.header.now_ms;
                sm.uploads = loaded.uploads;
                loaded.db
            }
            None => kv::Db::new(),
        };
        let old = std::mem::replace(&mut *sm.lock(), db);
        drop(old);
        tracing::info!(group = %group, applied = ?sm.applied, "state machine opened");
        Ok(sm)
    }

    /// The group.
    pub fn group(&self) -> GroupId {
        self.group
    }

    /// The database this state machine applies to (the server reads it).
    pub fn kv(&self) -> &Arc<Mutex<kv::Db>> {
        &self.kv
    }

    /// UNSAFE, for the fault-injection suite's self-test only: from now on every write is
    /// applied with this machine's wall clock instead of the time its entry carries, so
    /// replicas compute different expiry times for the same write and diverge.
    pub fn unsafe_use_local_clock(&mut self) {
        self.local_clock = true;
    }

    /// The `now_ms` the last applied write ran with (`i64::MIN` before any).
    pub fn last_now_ms(&self) -> i64 {
        self.now_ms
    }

    /// The data, waiting for a long read to end without holding up the runtime's other
    /// tasks ([`crate::patient`]).
    fn lock(&self) -> MutexGuard<'_, kv::Db> {
        crate::patient::lock(&self.kv)
    }

    /// Bytes held by large writes still arriving in parts.
    pub fn upload_bytes(&self) -> u64 {
        self.uploads.bytes()
    }

    /// Applies one write proposed in `term`: a pure function of the database, the uploads
    /// in progress, the request and the time.
    fn apply_request(&mut self, request: Request, term: u64) -> Frame {
        let stamped = if self.local_clock {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64)
        } else {
            request.now_ms
        };
        self.now_ms = self.now_ms.max(stamped);
        self.uploads.before_entry(term, self.now_ms);
        match request.payload {
            Payload::Proposal(bytes) => self.apply_proposal(&bytes.0),
            Payload::Part { upload, seq, bytes } => {
                match self.uploads.part(term, self.now_ms, upload, seq, bytes.0) {
                    Ok(()) => Frame::OK,
                    Err(why) => {
                        tracing::info!(group = %self.group, upload = format!("{upload:x}"), seq,
                            why, "a part of a large write was refused");
                        Frame::error(uploads::LOST)
                    }
                }
            }
            Payload::Assemble {
                upload,
                parts,
                len,
                crc,
            } => {
                // Joining, decoding and applying hundreds of megabytes keeps a thread busy
                // for a while: on a multi-threaded runtime, let the runtime move its other
                // tasks (heartbeats among them) to another thread meanwhile.
                let multi_thread = tokio::runtime::Handle::try_current().is_ok_and(|h| {
                    h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
                });
                if multi_thread && len > BIG_APPLY {
                    tokio::task::block_in_place(|| self.assemble(term, upload, parts, len, crc))
                } else {
                    self.assemble(term, upload, parts, len, crc)
                }
            }
        }
    }

    /// Applies large write `upload` if all its parts are here (see [`crate::uploads`]).
    fn assemble(&mut self, term: u64, upload: u64, parts: u32, len: u64, crc: u32) -> Frame {
        let started = Instant::now();
        match self.uploads.assemble(term, upload, parts, len, crc) {
            Ok(joined) => {
                let joined_ms = started.elapsed().as_millis() as u64;
                let reply = self.apply_proposal(&bytes::Bytes::from(joined));
                tracing::info!(group = %self.group, upload = format!("{upload:x}"), parts,
                    bytes = len, joined_ms, took_ms = started.elapsed().as_millis() as u64,
                    "large write applied");
                reply
            }
            Err(why) => {
                tracing::info!(group = %self.group, upload = format!("{upload:x}"), %why,
                    "a large write could not be assembled; it is not applied");
                Frame::error(uploads::LOST)
            }
        }
    }

    /// Applies an encoded [`kv::Proposal`] at the current time.
    fn apply_proposal(&mut self, encoded: &bytes::Bytes) -> Frame {
        let proposal = match kv::Proposal::decode_shared(encoded) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(group = %self.group, cause = %e, "log entry is not a proposal");
                return e.to_frame();
            }
        };
        let now = self.now_ms;
        let mut db = self.lock();
        match catch_unwind(AssertUnwindSafe(|| proposal.apply(&mut db, now))) {
            Ok(frame) => frame,
            Err(_) => {
                tracing::error!(group = %self.group, "a command panicked while applied");
                Frame::error("ERR internal error while executing the command")
            }
        }
    }

    /// Applies one committed entry and returns its reply: what openraft's `apply` does for
    /// each entry (blank and membership entries reply `OK`).
    pub fn apply_entry(&mut self, entry: Entry) -> Response {
        let log_id = entry.log_id();
        let term = log_id.leader_id.term;
        let reply = match entry.payload {
            EntryPayload::Blank => {
                self.uploads.before_entry(term, self.now_ms);
                Frame::OK
            }
            EntryPayload::Normal(request) => self.apply_request(request, term),
            EntryPayload::Membership(membership) => {
                self.uploads.before_entry(term, self.now_ms);
                self.membership = StoredMembership::new(Some(log_id), membership);
                Frame::OK
            }
        };
        self.applied = Some(log_id);
        Response(reply)
    }

    fn meta(&self) -> SnapshotMeta {
        SnapshotMeta {
            last_log_id: self.applied,
            last_membership: self.membership.clone(),
        }
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotData = std::fs::File;
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> io::Result<(Option<LogId>, StoredMembership)> {
        Ok((self.applied, self.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> io::Result<()>
    where
        Strm: Stream<Item = io::Result<EntryResponder>> + Unpin + OptionalSend,
    {
        while let Some(item) = entries.next().await {
            let (entry, responder) = item?;
            let reply = self.apply_entry(entry);
            if let Some(responder) = responder {
                responder.send(reply);
            }
        }
        Ok(())
    }

    async fn try_create_snapshot_builder(&mut self, _force: bool) -> Option<SnapshotBuilder> {
        let health = self.health.as_ref().map(|h| h.borrow().clone());
        if let Some(cause) = health.as_ref().and_then(Health::cause) {
            tracing::info!(group = %self.group, %cause,
                "snapshot deferred: the log cannot write");
            return None;
        }
        Some(self.get_snapshot_builder().await)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        let started = Instant::now();
        let db = self.lock().clone();
        let paused = started.elapsed();
        tracing::info!(group = %self.group, keys = db.len(), paused_us = paused.as_micros() as u64,
            "snapshot: database cloned");
        SnapshotBuilder {
            group: self.group,
            db: Some(Arc::new(db)),
            uploads: Arc::new(self.uploads.clone()),
            header: Header {
                meta: self.meta(),
                now_ms: self.now_ms,
            },
            files: self.files.clone(),
        }
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: std::fs::File,
    ) -> io::Result<()> {
        let files = &self.files;
        let loaded = retrying(
            self.group,
            "installing a snapshot",
            Some(snapshot),
            |mut file| {
                let files = files.clone();
                let wanted = meta.clone();
                blocking_with(move || {
                    let r = match &mut file {
                        Some(f) => files.install(&wanted, f),
                        None => Err(io::Error::other("snapshot file lost")),
                    };
                    (file, r)
                })
            },
        )
        .await?;
        let (header, db) = (loaded.header, loaded.db);
        let old = std::mem::replace(&mut *self.lock(), db);
        self.uploads = loaded.uploads;
        self.applied = header.meta.last_log_id;
        self.membership = header.meta.last_membership;
        self.now_ms = header.now_ms;
        // Dropping a large database takes a while: not under the lock, not on the runtime.
        tokio::task::spawn_blocking(move || drop(old));
        tracing::info!(group = %self.group, applied = ?self.applied, "snapshot installed");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> io::Result<Option<Snapshot>> {
        let files = &self.files;
        retrying(self.group, "opening the current snapshot", (), |()| {
            let files = files.clone();
            async move {
                let r = blocking(move || {
                    let Some((header, file, _)) = files.latest()? else {
                        return Ok(None);
                    };
                    Ok(Some(Snapshot {
                        meta: header.meta,
                        snapshot: file,
                    }))
                })
                .await;
                ((), r)
            }
        })
        .await
    }
}

/// True for an error that waiting can cure: a full disk or quota, no file descriptors or
/// memory left, an interrupted or would-block call. (Linux numbers: ENOSPC 28, EDQUOT 122,
/// EMFILE 24, ENFILE 23, ENOMEM 12, EAGAIN 11, EINTR 4.)
pub fn is_transient(e: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(
        e.kind(),
        StorageFull | QuotaExceeded | OutOfMemory | Interrupted | WouldBlock | TimedOut
    ) || matches!(e.raw_os_error(), Some(28 | 122 | 24 | 23 | 12 | 11 | 4))
        || e.to_string().contains("Too many open files")
}

/// First and longest pause between two attempts at a snapshot operation.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// Runs `attempt` until it succeeds or fails with an error that is not transient
/// ([`is_transient`]), pausing longer after each failure and logging (at most every 10
/// seconds) why it waits. Each attempt takes the state the previous one handed back.
async fn retrying<S, T, F, Fut>(
    group: GroupId,
    what: &str,
    mut state: S,
    mut attempt: F,
) -> io::Result<T>
where
    F: FnMut(S) -> Fut,
    Fut: std::future::Future<Output = (S, io::Result<T>)>,
{
    let mut pause = RETRY_FIRST;
    let mut reported: Option<Instant> = None;
    loop {
        let (back, result) = attempt(state).await;
        state = back;
        match result {
            Ok(v) => {
                if reported.is_some() {
                    tracing::info!(group = %group, "{what}: succeeded after retries");
                }
                return Ok(v);
            }
            Err(e) if is_transient(&e) => {
                if reported.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                    tracing::warn!(group = %group, cause = %e, "{what} failed; retrying");
                    reported = Some(Instant::now());
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(RETRY_MAX);
            }
            Err(e) => return Err(e),
        }
    }
}

/// Builds one snapshot from a clone of the database taken between two applies.
pub struct SnapshotBuilder {
    group: GroupId,
    db: Option<Arc<kv::Db>>,
    uploads: Arc<Uploads>,
    header: Header,
    files: SnapshotFiles,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    type SnapshotData = std::fs::File;

    /// Writes the snapshot file. A failure that waiting can cure (a full disk, no file
    /// descriptors) is retried until it succeeds: openraft would stop the group on an
    /// error, and this runs in a task of its own, so waiting holds up nothing else.
    async fn build_snapshot(&mut self) -> io::Result<Snapshot> {
        let db = self
            .db
            .take()
            .ok_or_else(|| io::Error::other("snapshot builder used twice"))?;
        let started = Instant::now();
        let (path, file) = retrying(self.group, "writing a snapshot", (), |()| {
            let (files, header, db, uploads) = (
                self.files.clone(),
                self.header.clone(),
                db.clone(),
                self.uploads.clone(),
            );
            async move {
                let r = blocking(move || {
                    let path = files.write(&header, &db, &uploads)?;
                    let file = std::fs::File::open(&path)?;
                    Ok((path, file))
                })
                .await;
                ((), r)
            }
        })
        .await?;
        // Dropping a large database takes a while: not on the runtime.
        tokio::task::spawn_blocking(move || drop(db));
        tracing::info!(path = %path.display(), took_ms = started.elapsed().as_millis() as u64,
            "snapshot: written");
        Ok(Snapshot {
            meta: self.header.meta.clone(),
            snapshot: file,
        })
    }
}

/// Runs blocking file work off the runtime's worker threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(io::Error::other(format!("blocking task failed: {e}"))))
}

/// [`blocking`] for work that hands back a state with its result.
async fn blocking_with<S: Send + Default + 'static, T: Send + 'static>(
    f: impl FnOnce() -> (S, io::Result<T>) + Send + 'static,
) -> (S, io::Result<T>) {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        (
            S::default(),
            Err(io::Error::other(format!("blocking task failed: {e}"))),
        )
    })
}
