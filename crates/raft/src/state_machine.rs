//! The state machine of one group: the `kv` database behind a mutex, the last applied log
//! id and membership, and the group's snapshot files.
//!
//! **Apply.** A normal entry carries a [`Request`]: its [`kv::Proposal`] is decoded and
//! applied with `now_ms = max(entry's now_ms, last applied now_ms)`, so every replica runs
//! every write at the same, never decreasing, time. The reply goes to the waiting client
//! (on the leader) as a [`Response`]. A proposal that does not decode, or a command that
//! panics, becomes an error reply: the same on every replica, so the entry still counts as
//! applied. Blank and membership entries only advance the applied state.
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
use std::time::Instant;

use futures_util::{Stream, StreamExt};
use openraft::entry::RaftEntry;
use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine};
use openraft::OptionalSend;
use resp::Frame;

use crate::ids::GroupId;
use crate::log_store::{LogDb, LogStore};
use crate::snapshot_files::{self, Header, SnapshotFiles};
use crate::typ::{
    Entry, EntryPayload, EntryResponder, LogId, Request, Response, Snapshot, SnapshotMeta,
    StoredMembership, TypeConfig,
};
use crate::Error;

/// `now_ms` before anything was applied: any entry's time is later.
const NO_TIME: i64 = i64::MIN;

/// Opens the storage of one group: its log in the node's sled database, and its state
/// machine over `kv`, restored from the group's newest snapshot file under
/// `<data_dir>/snapshots/group-<id>/` (or empty when there is none). Whatever `kv` held
/// is replaced. Blocking (it reads the snapshot): call it at startup or on a blocking
/// thread, then hand both halves to `openraft::Raft::new`, which replays the log.
pub fn open(
    db: &LogDb,
    group: GroupId,
    data_dir: &Path,
    kv: Arc<Mutex<kv::Db>>,
) -> Result<(LogStore, StateMachine), Error> {
    let log = LogStore::open(db, group).map_err(Error::Log)?;
    let sm = StateMachine::open(group, data_dir, kv)?;
    Ok((log, sm))
}

/// One group's state machine (see the module header).
pub struct StateMachine {
    group: GroupId,
    kv: Arc<Mutex<kv::Db>>,
    applied: Option<LogId>,
    membership: StoredMembership,
    now_ms: i64,
    files: SnapshotFiles,
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
        };
        let latest = sm.files.latest().map_err(|e| Error::Snapshot {
            path: sm.files.dir().to_path_buf(),
            source: e,
        })?;
        let db = match latest {
            Some((_, _, path)) => {
                let (header, db) = snapshot_files::load(&path)
                    .map_err(|source| Error::Snapshot { path, source })?;
                sm.applied = header.meta.last_log_id;
                sm.membership = header.meta.last_membership;
                sm.now_ms = header.now_ms;
                db
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

    /// The `now_ms` the last applied write ran with (`i64::MIN` before any).
    pub fn last_now_ms(&self) -> i64 {
        self.now_ms
    }

    fn lock(&self) -> MutexGuard<'_, kv::Db> {
        self.kv.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies one write: a pure function of the database, the request and the time.
    fn apply_request(&mut self, request: &Request) -> Frame {
        self.now_ms = self.now_ms.max(request.now_ms);
        let proposal = match kv::Proposal::decode(&request.proposal) {
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
        let reply = match entry.payload {
            EntryPayload::Blank => Frame::OK,
            EntryPayload::Normal(request) => self.apply_request(&request),
            EntryPayload::Membership(membership) => {
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

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        let started = Instant::now();
        let db = self.lock().clone();
        let paused = started.elapsed();
        tracing::info!(group = %self.group, keys = db.len(), paused_us = paused.as_micros() as u64,
            "snapshot: database cloned");
        SnapshotBuilder {
            db: Some(db),
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
        let files = self.files.clone();
        let wanted = meta.clone();
        let (header, db) = blocking(move || files.install(&wanted, snapshot)).await?;
        let old = std::mem::replace(&mut *self.lock(), db);
        self.applied = header.meta.last_log_id;
        self.membership = header.meta.last_membership;
        self.now_ms = header.now_ms;
        // Dropping a large database takes a while: not under the lock, not on the runtime.
        tokio::task::spawn_blocking(move || drop(old));
        tracing::info!(group = %self.group, applied = ?self.applied, "snapshot installed");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> io::Result<Option<Snapshot>> {
        let files = self.files.clone();
        blocking(move || {
            let Some((header, file, _)) = files.latest()? else {
                return Ok(None);
            };
            Ok(Some(Snapshot {
                meta: header.meta,
                snapshot: file,
            }))
        })
        .await
    }
}

/// Builds one snapshot from a clone of the database taken between two applies.
pub struct SnapshotBuilder {
    db: Option<kv::Db>,
    header: Header,
    files: SnapshotFiles,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    type SnapshotData = std::fs::File;

    async fn build_snapshot(&mut self) -> io::Result<Snapshot> {
        let db = self
            .db
            .take()
            .ok_or_else(|| io::Error::other("snapshot builder used twice"))?;
        let files = self.files.clone();
        let header = self.header.clone();
        let started = Instant::now();
        let path = blocking(move || {
            let path = files.write(&header, &db)?;
            drop(db);
            Ok(path)
        })
        .await?;
        tracing::info!(path = %path.display(), took_ms = started.elapsed().as_millis() as u64,
            "snapshot: written");
        Ok(Snapshot {
            meta: self.header.meta.clone(),
            snapshot: std::fs::File::open(path)?,
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
