//! The Raft log of one group in sled, with group commit.
//!
//! A node has one sled database ([`LogDb`]); each group has two trees in it:
//! `group-<id>/log` (big-endian `u64` index → entry) and `group-<id>/meta` (the vote, the
//! last committed log id, the last purged log id). Values are postcard-encoded openraft
//! types.
//!
//! **Durability and group commit.** An append writes its entries to sled (readable at
//! once) and hands the IO callback to the node's flusher. The flusher takes every
//! callback waiting at that moment, runs one `flush` of the whole database (which covers
//! every tree, so every group), and only then reports them all persisted. Appends that
//! arrive during a flush wait for the next one: under load one fsync serves many
//! appends, of one group or of many. A vote is saved the same way, and `save_vote` returns
//! only after a flush that covers it.
//!
//! Invariants:
//! - A callback is completed only after a flush that started after its entries were
//!   written; callbacks complete in the order their appends were made.
//! - The log has no holes: entries are written in one atomic batch per append, a
//!   truncation removes a suffix in one batch, a purge removes a prefix in one batch after
//!   recording the purged log id. Entries at or below the purged id that survive a crash
//!   between the two are ignored by every read and removed at open.
//! - Nothing here panics on bytes read from disk: an entry that does not decode is an
//!   `InvalidData` error.

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use openraft::storage::{RaftLogReader, RaftLogStorage};
use openraft::OptionalSend;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::oneshot;

use crate::ids::{GroupId, LogIndex};
use crate::typ::{Entry, IOFlushed, LogId, LogState, TypeConfig, Vote};

const VOTE: &[u8] = b"vote";
const COMMITTED: &[u8] = b"committed";
const LAST_PURGED: &[u8] = b"last_purged";

/// The node's sled database and its flusher, shared by the log stores of every group.
/// Cheap to clone. Dropping the last clone (and every [`LogStore`] made from it) finishes
/// the pending flushes and stops the flusher thread.
#[derive(Clone)]
pub struct LogDb {
    db: sled::Db,
    flusher: Arc<Flusher>,
}

impl LogDb {
    /// Opens (or creates) the node's database at `path`. sled locks the directory; after
    /// the last handle of a database is dropped its background threads release the lock a
    /// moment later, so reopening within the same process may need a short retry.
    pub fn open(path: &std::path::Path) -> Result<LogDb, sled::Error> {
        Ok(LogDb::new(sled::open(path)?))
    }

    /// Uses an already open database.
    pub fn new(db: sled::Db) -> LogDb {
        let flusher = Arc::new(Flusher::start(db.clone()));
        LogDb { db, flusher }
    }

    /// The sled database.
    pub fn sled(&self) -> &sled::Db {
        &self.db
    }

    /// How many flushes the flusher has run so far (for tests and metrics).
    pub fn flush_count(&self) -> u64 {
        self.flusher.flushes.load(Ordering::Relaxed)
    }
}

/// What waits for the next flush.
enum Job {
    /// An append's callback, for openraft.
    Appended(IOFlushed),
    /// Someone awaiting durability (a vote).
    Wait(oneshot::Sender<io::Result<()>>),
}

/// The group-commit thread: one `flush` for every job that is waiting when it starts.
struct Flusher {
    tx: Mutex<Option<Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    flushes: Arc<AtomicU64>,
}

impl Flusher {
    fn start(db: sled::Db) -> Flusher {
        let (tx, rx) = mpsc::channel();
        let flushes = Arc::new(AtomicU64::new(0));
        let counter = flushes.clone();
        let thread = std::thread::Builder::new()
            .name("sled-flusher".into())
            .spawn(move || flush_loop(db, rx, counter));
        let (tx, thread) = match thread {
            Ok(handle) => (Some(tx), Some(handle)),
            Err(e) => {
                // Without a thread no job can be accepted: every append reports an error.
                tracing::error!(cause = %e, "cannot start the log flusher thread");
                (None, None)
            }
        };
        Flusher {
            tx: Mutex::new(tx),
            thread: Mutex::new(thread),
            flushes,
        }
    }

    /// Queues a job for the next flush; if the flusher is gone, fails it at once.
    fn submit(&self, job: Job) {
        let sent = match &*self.tx.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(tx) => tx.send(job).map_err(|e| e.0),
            None => Err(job),
        };
        if let Err(job) = sent {
            job.complete(Err(io::Error::other("the log flusher has stopped")));
        }
    }

    /// Returns once a flush that started after this call has finished.
    async fn wait(&self) -> io::Result<()> {
        let (tx, rx) = oneshot::channel();
        self.submit(Job::Wait(tx));
        rx.await
            .unwrap_or_else(|_| Err(io::Error::other("the log flusher has stopped")))
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        // Closing the channel ends the loop after the jobs already queued.
        self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(handle) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            if handle.join().is_err() {
                tracing::error!("the log flusher thread panicked");
            }
        }
    }
}

impl Job {
    fn complete(self, result: io::Result<()>) {
        match self {
            Job::Appended(callback) => callback.io_completed(result),
            Job::Wait(tx) => {
                let _ = tx.send(result);
            }
        }
    }
}

fn flush_loop(db: sled::Db, rx: Receiver<Job>, flushes: Arc<AtomicU64>) {
    let mut jobs = Vec::new();
    while let Ok(first) = rx.recv() {
        jobs.push(first);
        jobs.extend(rx.try_iter());
        let result = db.flush();
        flushes.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = &result {
            tracing::error!(cause = %e, "log flush failed");
        }
        for job in jobs.drain(..) {
            job.complete(match &result {
                Ok(_) => Ok(()),
                Err(e) => Err(io::Error::other(format!("log flush failed: {e}"))),
            });
        }
    }
}

/// One group's log: the [`RaftLogStorage`] and, cloned, its [`RaftLogReader`].
#[derive(Clone)]
pub struct LogStore {
    group: GroupId,
    log: sled::Tree,
    meta: sled::Tree,
    flusher: Arc<Flusher>,
    /// The most recent entries, shared by the store and its readers, so the state
    /// machine and the replication streams read what was just appended without going
    /// back to sled and decoding it again. Always a suffix of the log: appends add at
    /// the end, truncation and purging remove from it as from sled.
    recent: Arc<std::sync::Mutex<std::collections::BTreeMap<LogIndex, Entry>>>,
}

/// Most entries kept in memory per group for readers.
const RECENT_ENTRIES: usize = 4096;

impl LogStore {
    /// Opens the trees of `group` in the node's database, removing any entries a crash
    /// left below the purged log id.
    pub fn open(db: &LogDb, group: GroupId) -> io::Result<LogStore> {
        let log = db
            .db
            .open_tree(format!("group-{group}/log"))
            .map_err(sled_err)?;
        let meta = db
            .db
            .open_tree(format!("group-{group}/meta"))
            .map_err(sled_err)?;
        let store = LogStore {
            group,
            log,
            meta,
            flusher: db.flusher.clone(),
            recent: Arc::default(),
        };
        if let Some(purged) = store.last_purged()? {
            store.remove_range(..=purged.index)?;
        }
        Ok(store)
    }

    /// The group this log belongs to.
    pub fn group(&self) -> GroupId {
        self.group
    }

    fn last_purged(&self) -> io::Result<Option<LogId>> {
        get_meta(&self.meta, LAST_PURGED)
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<LogIndex, Entry>> {
        self.recent.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The entries of `range` from memory, if the cache holds all of them.
    fn cached(&self, range: &impl RangeBounds<LogIndex>) -> Option<Vec<Entry>> {
        let recent = self.recent();
        let (&first, _) = recent.first_key_value()?;
        let (&last, _) = recent.last_key_value()?;
        let start = match range.start_bound() {
            Bound::Included(&i) => i,
            Bound::Excluded(&i) => i.checked_add(1)?,
            Bound::Unbounded => return None,
        };
        let end = match range.end_bound() {
            Bound::Included(&i) => i,
            Bound::Excluded(&i) => i.checked_sub(1)?,
            Bound::Unbounded => last,
        };
        if start < first || end > last || start > end {
            return None;
        }
        Some(recent.range(start..=end).map(|(_, e)| e.clone()).collect())
    }

    fn remove_range(&self, range: impl RangeBounds<LogIndex>) -> io::Result<()> {
        {
            let mut recent = self.recent();
            let doomed: Vec<LogIndex> = recent
                .range((range.start_bound().cloned(), range.end_bound().cloned()))
                .map(|(&i, _)| i)
                .collect();
            for i in doomed {
                recent.remove(&i);
            }
        }
        let mut batch = sled::Batch::default();
        for key in self.log.range(key_range(range)).keys() {
            batch.remove(key.map_err(sled_err)?);
        }
        self.log.apply_batch(batch).map_err(sled_err)
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> io::Result<Vec<Entry>> {
        if let Some(entries) = self.cached(&range) {
            return Ok(entries);
        }
        let purged = self.last_purged()?.map(|l| l.index);
        let mut entries = Vec::new();
        for item in self.log.range(key_range(range)) {
            let (key, value) = item.map_err(sled_err)?;
            let entry: Entry = decode(&value)?;
            if Some(index_of(&key)?) != Some(entry.log_id.index) {
                return Err(invalid("log entry stored under another index"));
            }
            if purged.is_some_and(|p| entry.log_id.index <= p) {
                continue;
            }
            entries.push(entry);
        }
        Ok(entries)
    }

    async fn read_vote(&mut self) -> io::Result<Option<Vote>> {
        get_meta(&self.meta, VOTE)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> io::Result<LogState> {
        let last_purged_log_id = self.last_purged()?;
        let last = match self.log.last().map_err(sled_err)? {
            Some((_, value)) => Some(decode::<Entry>(&value)?.log_id),
            None => None,
        };
        let last_log_id = match (last, &last_purged_log_id) {
            (Some(last), Some(purged)) if last.index > purged.index => Some(last),
            (Some(last), None) => Some(last),
            _ => last_purged_log_id,
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> LogStore {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> io::Result<()> {
        self.meta.insert(VOTE, encode(vote)?).map_err(sled_err)?;
        self.flusher.wait().await
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> io::Result<()> {
        // Durable with the next flush; losing it in a crash only delays the replay to
        // the committed index until the cluster confirms it again.
        match committed {
            Some(c) => self.meta.insert(COMMITTED, encode(&c)?),
            None => self.meta.remove(COMMITTED),
        }
        .map(|_| ())
        .map_err(sled_err)
    }

    async fn read_committed(&mut self) -> io::Result<Option<LogId>> {
        get_meta(&self.meta, COMMITTED)
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed) -> io::Result<()>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = sled::Batch::default();
        let mut appended = Vec::new();
        for entry in entries {
            batch.insert(&entry.log_id.index.to_be_bytes(), encode(&entry)?);
            appended.push(entry);
        }
        self.log.apply_batch(batch).map_err(sled_err)?;
        {
            let mut recent = self.recent();
            // Keep the cache a suffix of the log: an append that does not follow it
            // (after a truncation or at startup) starts it anew.
            let follows = match (recent.last_key_value(), appended.first()) {
                (Some((&last, _)), Some(e)) => e.log_id.index == last + 1,
                _ => true,
            };
            if !follows {
                recent.clear();
            }
            for entry in appended {
                recent.insert(entry.log_id.index, entry);
            }
            while recent.len() > RECENT_ENTRIES {
                recent.pop_first();
            }
        }
        self.flusher.submit(Job::Appended(callback));
        Ok(())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> io::Result<()> {
        match last_log_id {
            Some(last) => match last.index.checked_add(1) {
                Some(from) => self.remove_range(from..),
                None => Ok(()),
            },
            None => self.remove_range(..),
        }
    }

    async fn purge(&mut self, log_id: LogId) -> io::Result<()> {
        if self.last_purged()?.is_some_and(|p| p >= log_id) {
            return Ok(());
        }
        self.meta
            .insert(LAST_PURGED, encode(&log_id)?)
            .map_err(sled_err)?;
        self.remove_range(..=log_id.index)
    }
}

/// The sled key range of a range of log indexes (big-endian keys sort as the numbers).
fn key_range(range: impl RangeBounds<LogIndex>) -> (Bound<[u8; 8]>, Bound<[u8; 8]>) {
    let key = |b: Bound<&u64>| match b {
        Bound::Included(i) => Bound::Included(i.to_be_bytes()),
        Bound::Excluded(i) => Bound::Excluded(i.to_be_bytes()),
        Bound::Unbounded => Bound::Unbounded,
    };
    let (start, end) = (key(range.start_bound()), key(range.end_bound()));
    // sled panics on a range whose start is after its end; an empty range is asked as
    // one that contains nothing instead.
    let empty = match (range.start_bound(), range.end_bound()) {
        (Bound::Included(s), Bound::Included(e)) => s > e,
        (Bound::Included(s), Bound::Excluded(e)) | (Bound::Excluded(s), Bound::Included(e)) => {
            s >= e
        }
        (Bound::Excluded(s), Bound::Excluded(e)) => s.saturating_add(1) >= *e,
        _ => false,
    };
    if empty {
        let zero = 0u64.to_be_bytes();
        return (Bound::Included(zero), Bound::Excluded(zero));
    }
    (start, end)
}

fn index_of(key: &[u8]) -> io::Result<LogIndex> {
    let bytes: [u8; 8] = key
        .try_into()
        .map_err(|_| invalid("log key is not 8 bytes"))?;
    Ok(u64::from_be_bytes(bytes))
}

fn get_meta<T: DeserializeOwned>(meta: &sled::Tree, key: &[u8]) -> io::Result<Option<T>> {
    match meta.get(key).map_err(sled_err)? {
        Some(bytes) => decode(&bytes).map(Some),
        None => Ok(None),
    }
}

pub(crate) fn encode<T: Serialize>(value: &T) -> io::Result<Vec<u8>> {
    postcard::to_stdvec(value).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> io::Result<T> {
    postcard::from_bytes(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

fn invalid(what: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

fn sled_err(e: sled::Error) -> io::Error {
    match e {
        sled::Error::Io(e) => e,
        other => io::Error::other(other),
    }
}
