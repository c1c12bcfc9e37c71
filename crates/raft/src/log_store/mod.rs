//! The Raft log of every group on a node, in one sled database, with group commit,
//! checksummed records, a watermark, and recovery from write errors.
//!
//! A node has one sled database ([`LogDb`]); each group has two trees in it:
//! `group-<id>/log` and `group-<id>/meta` (the vote, the last committed log id, the last
//! purged log id). Every value is a *record*: a CRC-32 of its bytes, then the bytes
//! (postcard-encoded openraft types), checked on every read.
//!
//! **Runs.** The log tree maps the big-endian index of a run's first entry to the run: the
//! consecutive entries of one append (at most [`RUN_MAX_ENTRIES`] entries or
//! [`RUN_MAX_BYTES`] bytes; a longer append is cut into several runs). Under load openraft
//! appends tens to hundreds of entries at a time, and every sled insert or removal costs a
//! copy-on-write update of a tree node, so one key per run rather than per entry is what
//! keeps the log's CPU cost per write small (measured: 21.5 µs of CPU per pipelined SET
//! with one key per entry, most of it in sled inserts and the purge's removals). A run
//! covers the indexes from its key to the next run's key minus one.
//!
//! **Durability and group commit.** An append puts its entries in the group's in-memory
//! tail (readable at once) and queues their index range, with the IO callback, for the
//! node's flusher thread (the `flusher` module). The flusher takes every job waiting at that moment, encodes the
//! new entries of each group's log as runs and writes them in one sled batch, runs one
//! `flush` of the whole database (which covers every tree, so every group), and only then
//! reports the appends persisted. Appends that arrive during a flush wait for the next
//! one: under load one fsync serves many appends, of one group or of many. The committed
//! log id goes the same way (durable with the next flush); a vote is reported saved only
//! after a flush that covers it. Only the flusher writes to sled: sled writes its log
//! buffer out on its own thread pool, waking all of the pool's idle threads at each
//! hand-off, and a `flush` racing a batch written on another thread made sled write two
//! or three buffers instead of one (one writer thread took a one-node `SET -P 1` from 52
//! to 40 µs of CPU per write).
//!
//! **The watermark** ([`crate::watermark`]): after every successful flush the flusher
//! records, in a small file beside the database, each group's flushed vote and last
//! flushed index. sled drops everything after damage it finds in its own log without a
//! word; [`LogStore::verify`] compares what sled holds with the watermark at start, so a
//! node never silently starts with less than it acknowledged.
//!
//! **Write errors are a state, not a death.** sled refuses every write after one failed
//! (a full disk, a quota, an I/O error), until the database is opened again, and its
//! flush can hang for good when the disk fills up in the middle of a write. So the flusher
//! checks the free space before each round and, below [`LOW_WATER`], hands sled nothing.
//! Then, or when a write or a flush fails anyway, the flusher *stalls*: nothing is reported to openraft (its callbacks
//! simply wait, so it never sees a storage error that would stop the group), the node's
//! [`Health`] says why (the server refuses writes with `-MISCONF` meanwhile), and every
//! job that arrives is recorded without being written. Every so often the flusher checks
//! the free space, drops its handles, opens the database again, rewrites what was not
//! flushed (entries from the in-memory tail, votes, committed and purged ids) and flushes;
//! once that succeeds the waiting callbacks complete and writes resume. Reads keep
//! working throughout: sled serves reads after a failed write, and the tail holds
//! everything not yet flushed.
//!
//! Invariants:
//! - A callback is completed only after a flush that started after its entries were
//!   written to sled; callbacks complete in the order their appends were made.
//! - Every entry not yet flushed is in the group's in-memory tail, and the tail is a
//!   contiguous suffix of the log: appends extend it, the flusher trims from its front only
//!   entries that are flushed, and truncation and purging cut it as they cut sled. Reads
//!   take the tail's part of a range from memory and the rest from sled.
//! - Truncation and purging run on the flusher thread, after every write queued before
//!   them. A truncation lowers the watermark (synced) before it cuts the log.
//! - The log has no holes: runs are written in one atomic batch per flush, a truncation
//!   removes a suffix in one batch (rewriting the run it cuts), a purge removes the runs
//!   wholly at or below the purged id in one batch after recording the purged log id.
//!   Entries at or below the purged id (in a run that straddles it, or left by a crash
//!   between the two steps) are ignored by every read; whole runs of them go at open.
//! - A run's entries are consecutive and the first one's index is the run's key; a record
//!   that fails its checksum or breaks this is an `InvalidData` error naming the group and
//!   the index, never a panic and never skipped.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use openraft::storage::{RaftLogReader, RaftLogStorage};
use openraft::OptionalSend;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::watch;

use crate::typ::{Entry, IOFlushed, LogId, LogState, TypeConfig, Vote};
use crate::watermark::{Found, GroupMarks, Marks, Watermark};
use types::{GroupId, LogIndex};

mod flusher;

use flusher::{watch_for_hung_flushes, Flusher, Job};

const VOTE: &[u8] = b"vote";
/// Key, in the database's default tree, of the log's on-disk format.
const FORMAT_KEY: &[u8] = b"redraft-log-format";
/// The format this code writes and reads: runs of entries under big-endian index keys,
/// each value a CRC-32 then postcard-encoded openraft types. A change to either needs a
/// new number.
pub const LOG_FORMAT: u32 = 3;
const COMMITTED: &[u8] = b"committed";
const LAST_PURGED: &[u8] = b"last_purged";
/// The watermark's file name, inside the database's directory.
pub const WATERMARK_FILE: &str = "redraft-watermark";

/// Most entries kept in memory per group for readers once they are flushed.
const RECENT_ENTRIES: usize = 4096;
/// Most bytes of flushed entries kept in memory per group.
const RECENT_BYTES: usize = 64 << 20;
/// Most entries in one run (one sled value).
pub const RUN_MAX_ENTRIES: usize = 1024;
/// A run is closed once its encoded entries reach this many bytes (so a run is at most
/// this plus one entry, and an entry is at most a large write's part plus a little).
pub const RUN_MAX_BYTES: usize = 32 << 10;
/// sled's segment size. sled stores any page larger than a quarter of a segment as a
/// "blob": a file of its own, which sled 0.34 never fsyncs (so a crash of the machine could
/// lose it after it was reported flushed), and which costs a file per value (a 500 MB
/// write in 1 MiB parts took 20 s of blob files). A leaf page holds at most 16 values, so
/// with runs of at most 32 KiB plus one 64 KiB part a page stays under 2 MiB, a quarter of
/// 8 MiB: the log never makes a blob. (Measured: 8 MiB segments and 64 KiB values, no
/// blob; the default 512 KiB segments, 266 blobs for the same writes.)
pub const SEGMENT_BYTES: usize = 8 << 20;

/// Opens sled the way the log does (its segment size is fixed when the database is made).
pub fn open_sled(path: &Path) -> sled::Result<sled::Db> {
    sled::Config::new()
        .path(path)
        .segment_size(SEGMENT_BYTES)
        .open()
}
/// Free space below which the log stops writing (it stalls, as on a write error, before
/// it hands sled anything): sled does not always survive running out of space in the
/// middle of a write (its flush can wait for ever), so the log stops short of that.
pub const LOW_WATER: u64 = 16 << 20;
/// A flush that has not returned after this long is taken to be stuck for good.
const FLUSH_HANG: Duration = Duration::from_secs(20);
/// First and longest pause between two recovery attempts.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);

/// Whether the log can write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    /// Writes and flushes succeed.
    Ok,
    /// A write or flush failed, or the disk is nearly full; the flusher retries until it
    /// succeeds. Appends, votes and flushes wait meanwhile.
    Stalled {
        /// The error, as the OS or sled gave it (`No space left on device (os error 28)`).
        cause: String,
    },
    /// A flush has not returned for 20 s (`FLUSH_HANG`): sled is stuck (seen when a disk filled
    /// up in the middle of its write) and only a new process can open the log again. The
    /// binary restarts itself once the disk has room.
    Wedged { cause: String },
}

impl Health {
    /// Why the log cannot write, if it cannot.
    pub fn cause(&self) -> Option<&str> {
        match self {
            Health::Ok => None,
            Health::Stalled { cause } | Health::Wedged { cause } => Some(cause),
        }
    }
}

/// How a [`LogDb`] checks what it reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogOptions {
    /// Verify each record's checksum on read, and compare the log with the watermark at
    /// start. Off only in the unsafe self-test mode that proves the damaged-log tests
    /// catch what these checks prevent.
    pub verify: bool,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions { verify: true }
    }
}

/// What [`LogStore::verify`] found: the node's log holds less than it had flushed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Behind {
    pub group: GroupId,
    /// The index this node had flushed (and perhaps acknowledged) before.
    pub floor: LogIndex,
    /// The last index its log (or snapshot) covers now.
    pub has: Option<LogIndex>,
    /// The saved vote was lost too and was restored from the watermark.
    pub vote_restored: bool,
}

impl std::fmt::Display for Behind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "group {}: the log ends at index {} but this node had flushed up to index {}{}",
            self.group,
            self.has.map_or("none".to_string(), |i| i.to_string()),
            self.floor,
            if self.vote_restored {
                "; its saved vote was lost too and is restored from the watermark"
            } else {
                ""
            }
        )
    }
}

/// The node's sled database and its flusher, shared by the log stores of every group.
/// Cheap to clone. Dropping the last clone (and every [`LogStore`] made from it) finishes
/// the pending flushes and stops the flusher thread.
#[derive(Clone)]
pub struct LogDb {
    core: Arc<Core>,
    flusher: Arc<Flusher>,
}

/// What the flusher thread and the stores share.
struct Core {
    path: PathBuf,
    handles: RwLock<Handles>,
    options: LogOptions,
    flushes: AtomicU64,
    appends: AtomicU64,
    entries: AtomicU64,
    health: watch::Sender<Health>,
    marks: Mutex<MarkState>,
    /// When the flush in progress started (milliseconds since `epoch`), 0 when none is.
    flushing_since: AtomicU64,
    epoch: Instant,
    /// Each group's in-memory tail, shared by every store opened for the group.
    tails: Mutex<HashMap<GroupId, Arc<Mutex<Tail>>>>,
}

/// The open database and the trees of every group opened so far. Replaced as a whole
/// when the flusher reopens the database after a write error; `None` only if that failed
/// (reads then fail until a later attempt succeeds).
struct Handles {
    db: Option<sled::Db>,
    trees: BTreeMap<GroupId, Trees>,
}

#[derive(Clone)]
struct Trees {
    log: sled::Tree,
    meta: sled::Tree,
}

/// The watermark: the file, what it says now, and what it said when the node started.
struct MarkState {
    file: Option<Watermark>,
    current: Marks,
    at_open: Option<Marks>,
}

impl LogDb {
    /// Opens (or creates) the node's database at `path`, checking records and the
    /// watermark. See [`LogDb::open_with`].
    pub fn open(path: &Path) -> io::Result<LogDb> {
        LogDb::open_with(path, LogOptions::default())
    }

    /// Opens (or creates) the node's database at `path`. sled locks the directory; after
    /// the last handle of a database is dropped its background threads release the lock a
    /// moment later, so reopening within the same process may need a short retry.
    ///
    /// A new database is marked with [`LOG_FORMAT`]; one marked with another format, or
    /// holding logs but no mark (written before the mark existed), is refused with an
    /// `InvalidData` error that says so, instead of failing later on entries that do not
    /// decode.
    pub fn open_with(path: &Path, options: LogOptions) -> io::Result<LogDb> {
        let db = open_sled(path).map_err(|e| {
            if let sled::Error::Unsupported(why) = &e {
                if why.contains("io buffer size") {
                    return io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "the Raft log in {} was written by a redraft older than format \
                             {LOG_FORMAT} ({why}); move the data directory away to start this \
                             node afresh (it rejoins from the others)",
                            path.display()
                        ),
                    );
                }
            }
            io::Error::new(
                sled_err_kind(&e),
                format!(
                    "opening the Raft log in {}: {e} (if it is damaged: remove this node from \
                     the cluster with CLUSTER FORGET on another node, move its data directory \
                     aside, and add it back with --join)",
                    path.display()
                ),
            )
        })?;
        check_format(&db, path)?;
        let (file, found) = Watermark::open(&path.join(WATERMARK_FILE))?;
        let at_open = match found {
            Found::New => None,
            Found::Marks(m) => Some(m),
            Found::Damaged(why) => {
                tracing::warn!(path = %path.join(WATERMARK_FILE).display(), %why,
                    "the log's watermark is damaged; the log cannot be cross-checked this time");
                None
            }
        };
        let core = Arc::new(Core {
            path: path.to_path_buf(),
            handles: RwLock::new(Handles {
                db: Some(db),
                trees: BTreeMap::new(),
            }),
            options,
            flushes: AtomicU64::new(0),
            appends: AtomicU64::new(0),
            entries: AtomicU64::new(0),
            health: watch::channel(Health::Ok).0,
            marks: Mutex::new(MarkState {
                file: Some(file),
                current: at_open.clone().unwrap_or_default(),
                at_open,
            }),
            flushing_since: AtomicU64::new(0),
            epoch: Instant::now(),
            tails: Mutex::default(),
        });
        let flusher = Arc::new(Flusher::start(core.clone()));
        watch_for_hung_flushes(Arc::downgrade(&core));
        Ok(LogDb { core, flusher })
    }

    /// The sled database (a handle: it changes if the flusher reopens the database).
    pub fn sled(&self) -> io::Result<sled::Db> {
        self.core.db()
    }

    /// The database's directory.
    pub fn path(&self) -> &Path {
        &self.core.path
    }

    /// How many flushes the flusher has run so far (for tests and metrics).
    pub fn flush_count(&self) -> u64 {
        self.core.flushes.load(Ordering::Relaxed)
    }

    /// Counters of the log's work since the database was opened, over every group.
    pub fn stats(&self) -> LogStats {
        LogStats {
            flushes: self.flush_count(),
            appends: self.core.appends.load(Ordering::Relaxed),
            entries: self.core.entries.load(Ordering::Relaxed),
        }
    }

    /// Whether the log can write now, and a way to watch it change.
    pub fn health(&self) -> watch::Receiver<Health> {
        self.core.health.subscribe()
    }

    /// The log's health now (no subscription: cheap enough for every command).
    pub fn health_now(&self) -> Health {
        self.core.health.borrow().clone()
    }

    /// True when the disk holding the log has room enough for the log to write again
    /// (twice the low-water mark free): what a process whose log is wedged waits for
    /// before it restarts.
    pub fn has_room(&self) -> bool {
        free_space(&self.core.path).is_ok_and(|free| free >= 2 * LOW_WATER)
    }

    /// The current floor of `group` (see [`crate::watermark::GroupMarks::floor`]): set while
    /// the node is catching up after its log was found behind its watermark.
    pub fn floor(&self, group: GroupId) -> Option<LogIndex> {
        self.core
            .marks()
            .current
            .groups
            .get(&group)
            .and_then(|g| g.floor)
    }
}

impl Core {
    fn handles(&self) -> std::sync::RwLockReadGuard<'_, Handles> {
        self.handles.read().unwrap_or_else(|p| p.into_inner())
    }

    fn marks(&self) -> MutexGuard<'_, MarkState> {
        self.marks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The trees of `group`, opened on first use.
    fn trees(&self, group: GroupId) -> io::Result<Trees> {
        if let Some(t) = self.handles().trees.get(&group) {
            return Ok(t.clone());
        }
        let mut h = self.handles.write().unwrap_or_else(|p| p.into_inner());
        let db = h.db.clone().ok_or_else(closed)?;
        let trees = open_trees(&db, group)?;
        h.trees.insert(group, trees.clone());
        Ok(trees)
    }

    fn db(&self) -> io::Result<sled::Db> {
        self.handles().db.clone().ok_or_else(closed)
    }

    /// Runs `update` on the watermark and, if it says it changed something, writes it
    /// (`sync`: and waits for the disk). A failure is logged: the watermark may lag, which
    /// only weakens the check at start.
    fn update_marks(&self, sync: bool, update: impl FnOnce(&mut Marks) -> bool) {
        let mut m = self.marks();
        if !update(&mut m.current) {
            return;
        }
        let MarkState { file, current, .. } = &mut *m;
        if let Some(file) = file {
            if let Err(e) = file.write(current, sync) {
                tracing::warn!(path = %file.path().display(), cause = %e,
                    "cannot write the log's watermark");
            }
        }
    }
}

fn closed() -> io::Error {
    io::Error::other("the Raft log could not be reopened after a write error")
}

fn open_trees(db: &sled::Db, group: GroupId) -> io::Result<Trees> {
    Ok(Trees {
        log: db
            .open_tree(format!("group-{group}/log"))
            .map_err(sled_err)?,
        meta: db
            .open_tree(format!("group-{group}/meta"))
            .map_err(sled_err)?,
    })
}

/// Checks the database's format mark, writing it (durably) into a database with no logs.
fn check_format(db: &sled::Db, path: &Path) -> io::Result<()> {
    match db.get(FORMAT_KEY).map_err(sled_err)? {
        Some(mark) => {
            let found = <[u8; 4]>::try_from(mark.as_ref()).map(u32::from_be_bytes);
            match found {
                Ok(LOG_FORMAT) => Ok(()),
                Ok(other) => Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "the Raft log in {} is in format {other}; this redraft reads format \
                         {LOG_FORMAT}",
                        path.display()
                    ),
                )),
                Err(_) => Err(invalid("the Raft log's format mark is not 4 bytes".into())),
            }
        }
        None => {
            let has_logs = db
                .tree_names()
                .iter()
                .any(|name| name.starts_with(b"group-"));
            if has_logs {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "the Raft log in {} has no format mark: it was written by a redraft \
                         older than format {LOG_FORMAT}; move the data directory away to \
                         start this node afresh (it rejoins from the others)",
                        path.display()
                    ),
                ));
            }
            db.insert(FORMAT_KEY, &LOG_FORMAT.to_be_bytes())
                .map_err(sled_err)?;
            db.flush().map_err(sled_err)?;
            Ok(())
        }
    }
}

/// What the log has done since the database was opened (every group together).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogStats {
    /// Flushes (fsyncs) run by the group-commit thread.
    pub flushes: u64,
    /// Calls to append (the flusher writes all those of one flush in one sled batch
    /// per group).
    pub appends: u64,
    /// Entries appended.
    pub entries: u64,
}

/// A group's in-memory tail of the log: every entry not yet flushed, and the most recent
/// flushed ones (at most [`RECENT_ENTRIES`] and [`RECENT_BYTES`] of those).
#[derive(Default)]
struct Tail {
    entries: BTreeMap<LogIndex, Entry>,
    /// Bytes of the entries held (as [`entry_size`] counts them).
    bytes: usize,
}

impl Tail {
    fn insert(&mut self, entry: Entry) {
        self.bytes += entry_size(&entry);
        if let Some(old) = self.entries.insert(entry.log_id.index, entry) {
            self.bytes -= entry_size(&old);
        }
    }

    fn pop_first(&mut self) {
        if let Some((_, e)) = self.entries.pop_first() {
            self.bytes -= entry_size(&e);
        }
    }

    /// Removes the entries in `range`.
    fn forget(&mut self, range: impl RangeBounds<LogIndex>) {
        let doomed: Vec<LogIndex> = self
            .entries
            .range((range.start_bound().cloned(), range.end_bound().cloned()))
            .map(|(&i, _)| i)
            .collect();
        for i in doomed {
            if let Some(e) = self.entries.remove(&i) {
                self.bytes -= entry_size(&e);
            }
        }
    }

    /// Drops flushed entries (at or below `durable`) beyond the size the tail keeps.
    fn trim(&mut self, durable: LogIndex) {
        while self.entries.len() > RECENT_ENTRIES || self.bytes > RECENT_BYTES {
            match self.entries.first_key_value() {
                Some((&first, _)) if first <= durable => self.pop_first(),
                _ => break,
            }
        }
    }
}

/// Bytes available to this process on the file system holding `path`.
fn free_space(path: &Path) -> io::Result<u64> {
    let s = rustix::fs::statvfs(path).map_err(io::Error::from)?;
    Ok(s.f_bavail.saturating_mul(s.f_frsize))
}

/// The entries `first..=last` of a tail as runs in one batch: at most
/// [`RUN_MAX_ENTRIES`] entries or about [`RUN_MAX_BYTES`] bytes each.
fn encode_runs(tail: &Tail, first: LogIndex, last: LogIndex) -> io::Result<sled::Batch> {
    let entries: Vec<&Entry> = tail.entries.range(first..=last).map(|(_, e)| e).collect();
    if entries.len() as u64 != last - first + 1 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("log entries {first}..={last} left memory before they were written"),
        ));
    }
    let mut batch = sled::Batch::default();
    let mut run_start = 0;
    let mut run_bytes = 0;
    for (i, entry) in entries.iter().enumerate() {
        run_bytes += entry_size(entry);
        let full = i + 1 - run_start >= RUN_MAX_ENTRIES || run_bytes >= RUN_MAX_BYTES;
        if full || i + 1 == entries.len() {
            let run = &entries[run_start..=i];
            batch.insert(&run[0].log_id.index.to_be_bytes(), record(&run)?);
            run_start = i + 1;
            run_bytes = 0;
        }
    }
    Ok(batch)
}

/// Removes every entry from `from` on: the runs starting there or later, and the tail of
/// the run that holds `from`, in one batch.
fn truncate_from(log: &sled::Tree, from: LogIndex) -> io::Result<()> {
    let mut batch = sled::Batch::default();
    for key in log.range(from.to_be_bytes()..).keys() {
        batch.remove(key.map_err(sled_err)?);
    }
    if let Some(key) = run_key_at(log, from)?.filter(|&k| k < from) {
        if let Some(value) = log.get(key.to_be_bytes()).map_err(sled_err)? {
            // A run being rewritten is verified whatever the options say: a damaged
            // run must not be written back under a fresh checksum.
            let mut run = decode_run(key, &value, LogOptions::default())?;
            run.truncate((from - key) as usize);
            batch.insert(&key.to_be_bytes(), record(&run)?);
        }
    }
    log.apply_batch(batch).map_err(sled_err)
}

/// Removes, in one batch, every run whose entries are all at or below `upto`. A run that
/// straddles `upto` stays; reads skip its purged entries.
fn purge_through(log: &sled::Tree, upto: LogIndex, options: LogOptions) -> io::Result<()> {
    // The runs starting at or below upto + 1: all but the last end at or below `upto`
    // (each ends where the next begins); the last ends there only if its own last entry
    // does.
    let keys: Vec<LogIndex> = match upto.checked_add(1) {
        Some(bound) => log.range(..=bound.to_be_bytes()).keys(),
        None => log.iter().keys(),
    }
    .map(|k| index_of(&k.map_err(sled_err)?))
    .collect::<io::Result<_>>()?;
    let Some((&last, whole)) = keys.split_last() else {
        return Ok(());
    };
    let mut batch = sled::Batch::default();
    for key in whole {
        batch.remove(&key.to_be_bytes());
    }
    if last <= upto {
        if let Some(value) = log.get(last.to_be_bytes()).map_err(sled_err)? {
            let run = decode_run(last, &value, options)?;
            if run.last().is_none_or(|e| e.log_id.index <= upto) {
                batch.remove(&last.to_be_bytes());
            }
        }
    }
    log.apply_batch(batch).map_err(sled_err)
}

/// The key of the run holding `index`, if the log has a run starting at or before it.
fn run_key_at(log: &sled::Tree, index: LogIndex) -> io::Result<Option<LogIndex>> {
    match log.range(..=index.to_be_bytes()).next_back() {
        Some(item) => Ok(Some(index_of(&item.map_err(sled_err)?.0)?)),
        None => Ok(None),
    }
}

/// One group's log: the [`RaftLogStorage`] and, cloned, its [`RaftLogReader`].
#[derive(Clone)]
pub struct LogStore {
    group: GroupId,
    core: Arc<Core>,
    flusher: Arc<Flusher>,
    /// The log's tail in memory, shared by the store, its readers and the flusher: every
    /// entry not yet flushed, and the most recent ones after that, so the state machine
    /// and the replication streams read what was just appended without going back to
    /// sled and decoding it again. Always a contiguous suffix of the log.
    tail: Arc<Mutex<Tail>>,
}

impl LogStore {
    /// Opens the trees of `group` in the node's database, removing any entries a crash
    /// left below the purged log id, and checks every record's checksum (unless the
    /// database was opened without checks):
    ///
    /// - a damaged record at or below the last flushed index the watermark knows of is an
    ///   error ([`VerifyError::Damaged`]): it holds acknowledged writes;
    /// - one beyond it (written, never reported flushed) is cut with the rest of the log
    ///   after it, and the cut is logged.
    ///
    /// Blocking (it reads the whole log).
    pub fn open(db: &LogDb, group: GroupId) -> Result<LogStore, VerifyError> {
        let tail = db
            .core
            .tails
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(group)
            .or_default()
            .clone();
        let store = LogStore {
            group,
            core: db.core.clone(),
            flusher: db.flusher.clone(),
            tail,
        };
        let trees = store.trees().map_err(VerifyError::Io)?;
        if let Some(purged) = store.last_purged().map_err(VerifyError::Io)? {
            purge_through(&trees.log, purged.index, store.core.options).map_err(VerifyError::Io)?;
        }
        if store.core.options.verify {
            store.check_records(&trees)?;
        }
        let last = store
            .last_in_sled()
            .map_err(VerifyError::Io)?
            .map(|l| l.index);
        store.flusher.submit(Job::Open {
            group,
            tail: store.tail.clone(),
            last,
        });
        Ok(store)
    }

    /// Decodes every record of the group (see [`LogStore::open`]).
    fn check_records(&self, trees: &Trees) -> Result<(), VerifyError> {
        let flushed = self
            .core
            .marks()
            .at_open
            .as_ref()
            .and_then(|m| m.groups.get(&self.group))
            .and_then(|m| m.flushed);
        let mut damaged = None;
        for item in trees.log.iter() {
            let (key, value) = item.map_err(|e| VerifyError::Io(sled_err(e)))?;
            let key = index_of(&key).map_err(VerifyError::Io)?;
            if let Err(e) = decode_run(key, &value, self.core.options) {
                damaged = Some((key, e));
                break;
            }
        }
        if let Some((key, e)) = damaged {
            if flushed.is_none_or(|f| key <= f) {
                return Err(VerifyError::Damaged {
                    path: self.core.path.clone(),
                    group: self.group,
                    index: key,
                    cause: e.to_string(),
                });
            }
            tracing::warn!(group = %self.group, index = key, cause = %e,
                "cutting a damaged record written after the last flush, and the log after it");
            truncate_from(&trees.log, key).map_err(VerifyError::Io)?;
            self.flush_now().map_err(VerifyError::Io)?;
        }
        for (key, what) in [
            (VOTE, "vote"),
            (COMMITTED, "committed id"),
            (LAST_PURGED, "purged id"),
        ] {
            if let Some(v) = trees
                .meta
                .get(key)
                .map_err(|e| VerifyError::Io(sled_err(e)))?
            {
                if let Err(e) = open_record(&v, self.core.options) {
                    return Err(VerifyError::Damaged {
                        path: self.core.path.clone(),
                        group: self.group,
                        index: 0,
                        cause: format!("the saved {what}: {e}"),
                    });
                }
            }
        }
        Ok(())
    }

    /// The group this log belongs to.
    pub fn group(&self) -> GroupId {
        self.group
    }

    fn trees(&self) -> io::Result<Trees> {
        self.core.trees(self.group)
    }

    /// A flush from this thread (only at start, before the group runs).
    fn flush_now(&self) -> io::Result<()> {
        self.core.db()?.flush().map(|_| ()).map_err(sled_err)
    }

    fn last_purged(&self) -> io::Result<Option<LogId>> {
        get_meta(&self.trees()?.meta, LAST_PURGED, self.core.options)
    }

    fn tail(&self) -> MutexGuard<'_, Tail> {
        self.tail.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The last entry's log id in sled.
    fn last_in_sled(&self) -> io::Result<Option<LogId>> {
        match self.trees()?.log.last().map_err(sled_err)? {
            Some((key, value)) => Ok(self
                .decode_run(index_of(&key)?, &value)?
                .pop()
                .map(|e| e.log_id)),
            None => Ok(None),
        }
    }

    fn decode_run(&self, key: LogIndex, value: &[u8]) -> io::Result<Vec<Entry>> {
        decode_run(key, value, self.core.options).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "the Raft log in {} is damaged: group {}, the run at index {key}: {e}",
                    self.core.path.display(),
                    self.group
                ),
            )
        })
    }

    /// The entries of `range` from memory, if the tail holds all of them.
    fn cached(&self, range: &impl RangeBounds<LogIndex>) -> Option<Vec<Entry>> {
        let tail = self.tail();
        let (&first, _) = tail.entries.first_key_value()?;
        let (&last, _) = tail.entries.last_key_value()?;
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
        Some(
            tail.entries
                .range(start..=end)
                .map(|(_, e)| e.clone())
                .collect(),
        )
    }

    /// Compares what this group's log holds with the watermark, when the node starts
    /// (`snapshot_last` is the last index the group's snapshot covers):
    ///
    /// - a saved vote older than the watermark's is restored from it (a node must never
    ///   vote twice in a term);
    /// - a log (with the snapshot) that ends before the last flushed index is reported as
    ///   [`Behind`]: the caller must keep this member from voting or leading until it has
    ///   caught up (the floor is kept in the watermark until then), or refuse to start it
    ///   when it is alone.
    pub fn verify(&self, snapshot_last: Option<LogIndex>) -> Result<Option<Behind>, VerifyError> {
        if !self.core.options.verify {
            return Ok(None);
        }
        let marks: Option<GroupMarks> = self
            .core
            .marks()
            .at_open
            .as_ref()
            .and_then(|m| m.groups.get(&self.group).cloned());
        let trees = self.trees().map_err(VerifyError::Io)?;
        let Some(marks) = marks else {
            return Ok(None);
        };
        // The vote.
        let saved: Option<Vote> =
            get_meta(&trees.meta, VOTE, self.core.options).map_err(VerifyError::Io)?;
        let mut vote_restored = false;
        if let Some(wanted) = marks.vote {
            if !saved.is_some_and(|s| s >= wanted) {
                tracing::warn!(group = %self.group, saved = ?saved, watermark = ?wanted,
                    "the saved vote is older than the watermark's; restoring it");
                trees
                    .meta
                    .insert(VOTE, record(&wanted).map_err(VerifyError::Io)?)
                    .map_err(|e| VerifyError::Io(sled_err(e)))?;
                self.flush_now().map_err(VerifyError::Io)?;
                vote_restored = true;
            }
        }
        // The entries.
        let purged = self
            .last_purged()
            .map_err(VerifyError::Io)?
            .map(|p| p.index);
        let last = self
            .last_in_sled()
            .map_err(VerifyError::Io)?
            .map(|l| l.index);
        let has = last.max(purged).max(snapshot_last);
        let floor = marks.flushed.max(marks.floor);
        let Some(floor) = floor.filter(|&f| has.is_none_or(|h| h < f)) else {
            if marks.floor.is_some() {
                self.core.update_marks(true, |m| {
                    m.groups
                        .entry(self.group)
                        .or_default()
                        .floor
                        .take()
                        .is_some()
                });
            }
            return Ok(None);
        };
        let behind = Behind {
            group: self.group,
            floor,
            has,
            vote_restored,
        };
        self.core.update_marks(true, |m| {
            let e = m.groups.entry(self.group).or_default();
            e.floor.replace(floor) != Some(floor)
        });
        Ok(Some(behind))
    }
}

/// Why [`LogStore::verify`] refuses a log.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(
        "the Raft log in {path} is damaged at index {index} of group {group} ({cause}). \
             It holds writes this node acknowledged, so the node will not start with it. \
             Remove this node from the cluster (CLUSTER FORGET on another member), move its \
             data directory aside, and add it back with --join: it copies everything from \
             the others. A one-member cluster needs its data restored from a backup."
    )]
    Damaged {
        path: PathBuf,
        group: GroupId,
        index: LogIndex,
        cause: String,
    },
    #[error("reading the Raft log: {0}")]
    Io(io::Error),
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> io::Result<Vec<Entry>> {
        if let Some(entries) = self.cached(&range) {
            return Ok(entries);
        }
        let Some((start, end)) = index_range(&range) else {
            return Ok(Vec::new());
        };
        // The tail's part of the range comes from memory (it may not be in sled yet),
        // the part below the tail from sled, where everything below the tail is.
        let (tail_first, from_tail) = {
            let tail = self.tail();
            let first = tail.entries.first_key_value().map(|(&i, _)| i);
            let part: Vec<Entry> = match first {
                Some(first) if first <= end => tail
                    .entries
                    .range(start.max(first)..=end)
                    .map(|(_, e)| e.clone())
                    .collect(),
                _ => Vec::new(),
            };
            (first, part)
        };
        let sled_end = match tail_first {
            Some(first) => end.min(first.saturating_sub(1)),
            None => end,
        };
        let mut entries = Vec::new();
        if tail_first.is_none_or(|first| first > start) {
            let log = self.trees()?.log;
            let purged = self.last_purged()?.map(|l| l.index);
            let first_key = run_key_at(&log, start)?.unwrap_or(start);
            for item in log.range(first_key.to_be_bytes()..) {
                let (key, value) = item.map_err(sled_err)?;
                let key = index_of(&key)?;
                if key > sled_end {
                    break;
                }
                entries.extend(self.decode_run(key, &value)?.into_iter().filter(|e| {
                    let i = e.log_id.index;
                    i >= start && i <= sled_end && purged.is_none_or(|p| i > p)
                }));
            }
        }
        entries.extend(from_tail);
        Ok(entries)
    }

    async fn read_vote(&mut self) -> io::Result<Option<Vote>> {
        get_meta(&self.trees()?.meta, VOTE, self.core.options)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> io::Result<LogState> {
        let last_purged_log_id = self.last_purged()?;
        let in_memory = self.tail().entries.last_key_value().map(|(_, e)| e.log_id);
        let last = match in_memory {
            Some(last) => Some(last),
            None => self.last_in_sled()?,
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
        let (group, vote) = (self.group, *vote);
        self.flusher
            .call(|done| Job::Vote { group, vote, done })
            .await
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> io::Result<()> {
        // Durable with the next flush; losing it in a crash only delays the replay to
        // the committed index until the cluster confirms it again.
        self.flusher.submit(Job::Committed {
            group: self.group,
            value: committed,
        });
        Ok(())
    }

    /// The saved committed id, or the log's last id when that is below it: a committed
    /// id is written after the entries it names, but one that names more than the log
    /// holds (written by an older redraft, or left by damage the watermark did not catch)
    /// must not make openraft replay entries that are not there; openraft learns the real
    /// one from the leader again.
    async fn read_committed(&mut self) -> io::Result<Option<LogId>> {
        let saved: Option<LogId> = get_meta(&self.trees()?.meta, COMMITTED, self.core.options)?;
        let Some(saved) = saved else {
            return Ok(None);
        };
        let last = self.get_log_state().await?.last_log_id;
        Ok(match last {
            Some(last) if last.index < saved.index => {
                tracing::warn!(group = %self.group, committed = %saved, last = %last,
                    "the saved committed id is past the log's end; starting from the end");
                Some(last)
            }
            None => None,
            _ => Some(saved),
        })
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed) -> io::Result<()>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let appended: Vec<Entry> = entries.into_iter().collect();
        let (Some(first), Some(last)) = (appended.first(), appended.last()) else {
            // Nothing to write, but the callback still waits its turn.
            self.flusher.submit(Job::Wait(callback));
            return Ok(());
        };
        let (first, last) = (first.log_id.index, last.log_id.index);
        self.core.appends.fetch_add(1, Ordering::Relaxed);
        self.core
            .entries
            .fetch_add(appended.len() as u64, Ordering::Relaxed);
        {
            let mut tail = self.tail();
            // The tail stays a suffix of the log. openraft truncates before it appends
            // over existing entries, so an append always follows the tail (or the tail is
            // empty); anything else would drop entries not yet flushed.
            if let Some((&end, _)) = tail.entries.last_key_value() {
                if end.checked_add(1) != Some(first) {
                    return Err(io::Error::other(format!(
                        "group {}: append of {first}..={last} does not follow the log's \
                         last entry {end}",
                        self.group
                    )));
                }
            }
            for entry in appended {
                tail.insert(entry);
            }
        }
        self.flusher.submit(Job::Append {
            group: self.group,
            first,
            last,
            callback,
        });
        Ok(())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> io::Result<()> {
        let from = match last_log_id {
            Some(last) => match last.index.checked_add(1) {
                Some(from) => from,
                None => return Ok(()),
            },
            None => 0,
        };
        let group = self.group;
        self.flusher
            .call(|done| Job::Truncate { group, from, done })
            .await
    }

    async fn purge(&mut self, log_id: LogId) -> io::Result<()> {
        let group = self.group;
        self.flusher
            .call(|done| Job::Purge {
                group,
                upto: log_id,
                done,
            })
            .await
    }
}

/// The inclusive bounds of a range of log indexes, or `None` when it holds none.
fn index_range(range: &impl RangeBounds<LogIndex>) -> Option<(LogIndex, LogIndex)> {
    let start = match range.start_bound() {
        Bound::Included(&i) => i,
        Bound::Excluded(&i) => i.checked_add(1)?,
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&i) => i,
        Bound::Excluded(&i) => i.checked_sub(1)?,
        Bound::Unbounded => LogIndex::MAX,
    };
    (start <= end).then_some((start, end))
}

/// Decodes the run stored under `key`, checking its checksum (unless `options` say not
/// to) and that its entries are consecutive from `key`.
fn decode_run(key: LogIndex, value: &[u8], options: LogOptions) -> io::Result<Vec<Entry>> {
    let run: Vec<Entry> = decode(open_record(value, options)?)?;
    if run.is_empty() {
        return Err(invalid("empty log run".into()));
    }
    for (offset, entry) in run.iter().enumerate() {
        if key.checked_add(offset as u64) != Some(entry.log_id.index) {
            return Err(invalid(format!(
                "entry {} stored under index {}",
                entry.log_id.index,
                key.saturating_add(offset as u64)
            )));
        }
    }
    Ok(run)
}

/// Roughly the bytes an entry takes encoded (its payload dominates).
fn entry_size(entry: &Entry) -> usize {
    use openraft::EntryPayload;
    32 + match &entry.payload {
        EntryPayload::Normal(request) => request.size(),
        _ => 64,
    }
}

fn index_of(key: &[u8]) -> io::Result<LogIndex> {
    let bytes: [u8; 8] = key
        .try_into()
        .map_err(|_| invalid("log key is not 8 bytes".into()))?;
    Ok(u64::from_be_bytes(bytes))
}

fn get_meta<T: DeserializeOwned>(
    meta: &sled::Tree,
    key: &[u8],
    options: LogOptions,
) -> io::Result<Option<T>> {
    match meta.get(key).map_err(sled_err)? {
        Some(bytes) => decode(open_record(&bytes, options)?).map(Some),
        None => Ok(None),
    }
}

/// A record: the CRC-32 of the encoded value (little-endian), then the value.
fn record<T: Serialize + ?Sized>(value: &T) -> io::Result<Vec<u8>> {
    let mut out = vec![0u8; 4];
    postcard::to_io(value, &mut out).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let sum = crc32fast::hash(&out[4..]);
    out[..4].copy_from_slice(&sum.to_le_bytes());
    Ok(out)
}

/// The value of a record, after checking its checksum.
fn open_record(bytes: &[u8], options: LogOptions) -> io::Result<&[u8]> {
    let (sum, body) = bytes
        .split_first_chunk::<4>()
        .ok_or_else(|| invalid("record shorter than its checksum".into()))?;
    if options.verify && crc32fast::hash(body) != u32::from_le_bytes(*sum) {
        return Err(invalid("record fails its checksum".into()));
    }
    Ok(body)
}

pub(crate) fn encode<T: Serialize>(value: &T) -> io::Result<Vec<u8>> {
    postcard::to_stdvec(value).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> io::Result<T> {
    postcard::from_bytes(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

fn sled_err(e: sled::Error) -> io::Error {
    match e {
        sled::Error::Io(e) => e,
        other => io::Error::new(sled_err_kind(&other), other.to_string()),
    }
}

fn sled_err_kind(e: &sled::Error) -> io::ErrorKind {
    match e {
        sled::Error::Io(e) => e.kind(),
        sled::Error::Corruption { .. } => io::ErrorKind::InvalidData,
        _ => io::ErrorKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_catch_a_flipped_bit() {
        let r = record(&(7u64, "value".to_string())).unwrap();
        let on = LogOptions { verify: true };
        let off = LogOptions { verify: false };
        assert!(open_record(&r, on).is_ok());
        for i in 0..r.len() {
            for bit in 0..8 {
                let mut bad = r.clone();
                bad[i] ^= 1 << bit;
                assert!(open_record(&bad, on).is_err(), "byte {i} bit {bit}");
                // Without checks, a flip in the value is read as another value.
                if i >= 4 {
                    assert!(open_record(&bad, off).is_ok());
                }
            }
        }
        assert!(open_record(&r[..3], on).is_err());
    }
}
