//! The flusher: the one thread that writes the node's log to sled, in rounds (group
//! commit), and that stalls and recovers when a write fails or the disk fills up (see the
//! parent module's header). A watchdog thread turns a flush that never returns into
//! [`Health::Wedged`].

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::oneshot;

use super::{
    encode_runs, entry_size, free_space, get_meta, open_sled, open_trees, purge_through, record,
    sled_err, truncate_from, Core, Health, Tail, COMMITTED, FLUSH_HANG, LAST_PURGED, LOW_WATER,
    RETRY_FIRST, RETRY_MAX, VOTE,
};
use crate::typ::{IOFlushed, LogId, Vote};
use types::{GroupId, LogIndex};

/// Watches the flusher from a thread of its own: a flush stuck for [`FLUSH_HANG`] turns
/// the health to [`Health::Wedged`]. Ends when the database is gone.
pub(super) fn watch_for_hung_flushes(core: std::sync::Weak<Core>) {
    let spawned = std::thread::Builder::new()
        .name("log-watchdog".into())
        .spawn(move || loop {
            std::thread::sleep(Duration::from_millis(500));
            let Some(core) = core.upgrade() else {
                return;
            };
            let since = core.flushing_since.load(Ordering::Relaxed);
            if since == 0 {
                continue;
            }
            let now = core.epoch.elapsed().as_millis() as u64;
            let stuck = Duration::from_millis(now.saturating_sub(since));
            if stuck >= FLUSH_HANG && !matches!(*core.health.borrow(), Health::Wedged { .. }) {
                let cause = format!(
                    "a flush of the Raft log in {} has not returned for {} s (the disk filled \
                     up during a write?); the process must restart to open the log again",
                    core.path.display(),
                    stuck.as_secs()
                );
                tracing::error!(%cause, "the Raft log is stuck");
                core.health.send_replace(Health::Wedged { cause });
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(cause = %e, "cannot start the log watchdog thread");
    }
}

/// The work queued for the flusher thread, done in the order it was queued.
pub(super) enum Job {
    /// A store was opened: the flusher learns its tail and what sled holds.
    Open {
        group: GroupId,
        tail: Arc<Mutex<Tail>>,
        last: Option<LogIndex>,
    },
    /// Entries `first..=last` of a group's log, in its tail, to write; the callback
    /// (openraft's) once they are flushed.
    Append {
        group: GroupId,
        first: LogIndex,
        last: LogIndex,
        callback: IOFlushed,
    },
    /// The committed log id, durable with the next flush.
    Committed {
        group: GroupId,
        value: Option<LogId>,
    },
    /// A vote, reported saved after the next flush.
    Vote {
        group: GroupId,
        vote: Vote,
        done: oneshot::Sender<io::Result<()>>,
    },
    /// Removes every entry from `from` on.
    Truncate {
        group: GroupId,
        from: LogIndex,
        done: oneshot::Sender<io::Result<()>>,
    },
    /// Removes the entries at or below `upto`.
    Purge {
        group: GroupId,
        upto: LogId,
        done: oneshot::Sender<io::Result<()>>,
    },
    /// Someone awaiting the next flush (an empty append).
    Wait(IOFlushed),
}

/// The group-commit thread: one `flush` for every job that is waiting when it starts.
pub(super) struct Flusher {
    tx: Mutex<Option<Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Closed when the thread ends.
    ended: Mutex<Option<Receiver<()>>>,
}

impl Flusher {
    pub(super) fn start(core: Arc<Core>) -> Flusher {
        let (tx, rx) = mpsc::channel();
        let (ending, ended) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("sled-flusher".into())
            .spawn(move || {
                let _ending = ending;
                Io::new(core).run(rx)
            });
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
            ended: Mutex::new(Some(ended)),
        }
    }

    /// Queues a job; if the flusher is gone, fails it at once.
    pub(super) fn submit(&self, job: Job) {
        let sent = match &*self.tx.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(tx) => tx.send(job).map_err(|e| e.0),
            None => Err(job),
        };
        if let Err(job) = sent {
            job.fail(io::Error::other("the log flusher has stopped"));
        }
    }

    /// Queues a job that answers on a oneshot, and awaits the answer.
    pub(super) async fn call(
        &self,
        make: impl FnOnce(oneshot::Sender<io::Result<()>>) -> Job,
    ) -> io::Result<()> {
        let (done, rx) = oneshot::channel();
        self.submit(make(done));
        rx.await
            .unwrap_or_else(|_| Err(io::Error::other("the log flusher has stopped")))
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        // Closing the channel ends the loop after the jobs already queued.
        self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
        // A flusher stuck in sled (see Health::Wedged) would never end: wait a while, then
        // leave it behind rather than hang whoever drops the last store.
        let ended = self.ended.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(ended) = ended {
            if ended.recv_timeout(Duration::from_secs(10)) == Err(RecvTimeoutError::Timeout) {
                tracing::error!("the log flusher did not stop within 10 s; leaving it");
                return;
            }
        }
        if let Some(handle) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            if handle.join().is_err() {
                tracing::error!("the log flusher thread panicked");
            }
        }
    }
}

impl Job {
    /// Fails a job that no flusher will run.
    fn fail(self, e: io::Error) {
        match self {
            Job::Append { callback, .. } | Job::Wait(callback) => callback.io_completed(Err(e)),
            Job::Vote { done, .. } | Job::Truncate { done, .. } | Job::Purge { done, .. } => {
                let _ = done.send(Err(e));
            }
            Job::Open { .. } | Job::Committed { .. } => {}
        }
    }
}

/// Who hears how the next flush went.
enum Waiter {
    Append(IOFlushed),
    Done(oneshot::Sender<io::Result<()>>),
}

impl Waiter {
    fn complete(self, result: io::Result<()>) {
        match self {
            Waiter::Append(callback) => callback.io_completed(result),
            Waiter::Done(tx) => {
                let _ = tx.send(result);
            }
        }
    }
}

/// What the flusher knows of one group: enough to rewrite everything not yet flushed
/// after the database is reopened.
struct GroupIo {
    tail: Arc<Mutex<Tail>>,
    /// Highest index written to sled (or recorded, while stalled).
    written: Option<LogIndex>,
    /// Highest index flushed.
    durable: Option<LogIndex>,
    /// Appended but not yet written to sled, this round.
    pending: Option<(LogIndex, LogIndex)>,
    vote: Option<Vote>,
    vote_durable: Option<Vote>,
    committed: Option<Option<LogId>>,
    /// `committed` is not written to sled yet.
    committed_dirty: bool,
    purged: Option<LogId>,
}

/// The flusher thread's state.
struct Io {
    core: Arc<Core>,
    groups: HashMap<GroupId, GroupIo>,
    /// Completed after the next successful flush.
    waiting: Vec<Waiter>,
    /// Set while stalled: the first error, and when it happened.
    stalled: Option<(io::Error, Instant)>,
}

impl Io {
    fn new(core: Arc<Core>) -> Io {
        Io {
            core,
            groups: HashMap::new(),
            waiting: Vec::new(),
            stalled: None,
        }
    }

    fn run(mut self, rx: Receiver<Job>) {
        while let Ok(first) = rx.recv() {
            let mut jobs = vec![first];
            jobs.extend(rx.try_iter());
            if self.stalled.is_none() {
                let needed = self.bytes_to_write(&jobs);
                if let Err(e) = self.check_space(needed) {
                    self.stall(e);
                }
            }
            for job in jobs {
                self.take(job);
            }
            if self.stalled.is_none() {
                if let Err(e) = self.write_pending() {
                    self.stall(e);
                }
            }
            if self.stalled.is_none() && !self.waiting.is_empty() {
                let result = self.flush();
                match result {
                    Ok(()) => self.flushed(),
                    Err(e) => self.stall(e),
                }
            }
            if self.stalled.is_some() && !self.recover_until_written(&rx) {
                break;
            }
        }
        // The channel is closed (the last store is gone) or recovery gave up.
        let e = match &self.stalled {
            Some((e, _)) => format!("the log flusher stopped while stalled: {e}"),
            None => "the log flusher has stopped".into(),
        };
        for w in self.waiting.drain(..) {
            w.complete(Err(io::Error::other(e.clone())));
        }
    }

    /// Flushes the database, letting the watchdog see how long it takes.
    fn flush(&self) -> io::Result<()> {
        let now = self.core.epoch.elapsed().as_millis() as u64;
        self.core
            .flushing_since
            .store(now.max(1), Ordering::Relaxed);
        let result = self
            .core
            .db()
            .and_then(|db| db.flush().map(|_| ()).map_err(sled_err));
        self.core.flushing_since.store(0, Ordering::Relaxed);
        self.core.flushes.fetch_add(1, Ordering::Relaxed);
        result
    }

    /// About the bytes the appends among `jobs` will write.
    fn bytes_to_write(&self, jobs: &[Job]) -> u64 {
        let mut bytes = 0u64;
        for job in jobs {
            if let Job::Append {
                group, first, last, ..
            } = job
            {
                if let Some(g) = self.groups.get(group) {
                    let tail = g.tail.lock().unwrap_or_else(|p| p.into_inner());
                    bytes += tail
                        .entries
                        .range(*first..=*last)
                        .map(|(_, e)| entry_size(e) as u64)
                        .sum::<u64>();
                }
            }
        }
        bytes
    }

    /// An error unless the disk has [`LOW_WATER`] bytes free beyond twice `bytes`.
    fn check_space(&self, bytes: u64) -> io::Result<()> {
        let needed = LOW_WATER.saturating_add(bytes.saturating_mul(2));
        let free = free_space(&self.core.path)?;
        if free >= needed {
            return Ok(());
        }
        Err(io::Error::new(
            io::ErrorKind::StorageFull,
            format!(
                "No space left on device: {free} bytes free in {}, the log needs {needed} to \
                 write",
                self.core.path.display()
            ),
        ))
    }

    fn group(&mut self, group: GroupId) -> &mut GroupIo {
        self.groups.entry(group).or_insert_with(|| GroupIo {
            tail: Arc::default(),
            written: None,
            durable: None,
            pending: None,
            vote: None,
            vote_durable: None,
            committed: None,
            committed_dirty: false,
            purged: None,
        })
    }

    /// Takes one job: records its effect (so a rewrite after an error reproduces it) and,
    /// unless stalled, writes it to sled.
    fn take(&mut self, job: Job) {
        let writing = self.stalled.is_none();
        let result = match job {
            Job::Open { group, tail, last } => {
                if !self.groups.contains_key(&group) {
                    let g = self.group(group);
                    g.tail = tail;
                    g.written = last;
                    g.durable = last;
                }
                Ok(())
            }
            Job::Append {
                group,
                first,
                last,
                callback,
            } => {
                let g = self.group(group);
                g.pending = match g.pending {
                    Some((start, end)) if end.checked_add(1) == Some(first) => Some((start, last)),
                    Some(_) => {
                        // Not a continuation (a truncation in between writes what is
                        // pending first, so this cannot happen): keep the earliest start.
                        g.pending.map(|(start, _)| (start.min(first), last))
                    }
                    None => Some((first, last)),
                };
                g.written = Some(last);
                self.waiting.push(Waiter::Append(callback));
                Ok(())
            }
            Job::Committed { group, value } => {
                // Written after the round's entries (see `write_pending`): sled recovers a
                // prefix of what it was given, and a committed id durable before the
                // entries it covers would name entries the log does not have.
                let g = self.group(group);
                g.committed = Some(value);
                g.committed_dirty = true;
                Ok(())
            }
            Job::Vote { group, vote, done } => {
                self.group(group).vote = Some(vote);
                if !writing {
                    tracing::info!(group = %group, vote = %vote, "a vote while the log cannot write");
                }
                if writing {
                    self.waiting.push(Waiter::Done(done));
                    self.write_meta(group, VOTE, Some(&vote))
                } else if vote.is_committed() {
                    // While the log cannot write, a leader's vote (a higher term learnt
                    // from its AppendEntries) is acknowledged at once and written once the
                    // log can write again, so the node steps down and follows the new
                    // leader meanwhile. Raft's safety needs persisted grants, not learnt
                    // terms: a vote this node grants (uncommitted) still waits, and its
                    // replica refuses vote requests while stalled anyway.
                    let _ = done.send(Ok(()));
                    Ok(())
                } else {
                    self.waiting.push(Waiter::Done(done));
                    Ok(())
                }
            }
            Job::Truncate { group, from, done } => self.truncate(group, from, done, writing),
            Job::Purge { group, upto, done } => {
                let g = self.group(group);
                if g.purged.is_some_and(|p| p >= upto) {
                    let _ = done.send(Ok(()));
                    return;
                }
                g.purged = Some(upto);
                g.tail
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .forget(..=upto.index);
                let result = if writing {
                    self.write_pending()
                        .and_then(|()| self.write_purge(group, upto))
                } else {
                    Ok(())
                };
                // A purge only drops what openraft no longer reads: while stalled it is
                // recorded now and written with the rest once the log can write again.
                let _ = done.send(Ok(()));
                result
            }
            Job::Wait(callback) => {
                self.waiting.push(Waiter::Append(callback));
                Ok(())
            }
        };
        if let Err(e) = result {
            self.stall(e);
        }
    }

    fn truncate(
        &mut self,
        group: GroupId,
        from: LogIndex,
        done: oneshot::Sender<io::Result<()>>,
        writing: bool,
    ) -> io::Result<()> {
        let below = from.checked_sub(1);
        {
            let g = self.group(group);
            g.tail
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .forget(from..);
            g.written = g.written.min(below);
            g.durable = g.durable.min(below);
            g.pending = match g.pending {
                Some((start, end)) if start < from => Some((start, end.min(from - 1))),
                _ => None,
            };
        }
        // The watermark must never claim more than the log holds: lower it (synced)
        // before the log is cut.
        self.core.update_marks(true, |m| {
            let e = m.groups.entry(group).or_default();
            let lowered = e.flushed.min(below);
            std::mem::replace(&mut e.flushed, lowered) != lowered
        });
        if !writing {
            // Answered once the log can write again (openraft waits for it).
            self.waiting.push(Waiter::Done(done));
            return Ok(());
        }
        let result = self.write_pending().and_then(|()| {
            let trees = self.core.trees(group)?;
            truncate_from(&trees.log, from)
        });
        match result {
            Ok(()) => {
                let _ = done.send(Ok(()));
                Ok(())
            }
            Err(e) => {
                self.waiting.push(Waiter::Done(done));
                Err(e)
            }
        }
    }

    fn write_meta<T: Serialize>(
        &mut self,
        group: GroupId,
        key: &'static [u8],
        value: Option<&T>,
    ) -> io::Result<()> {
        let trees = self.core.trees(group)?;
        match value {
            Some(v) => trees.meta.insert(key, record(v)?).map(|_| ()),
            None => trees.meta.remove(key).map(|_| ()),
        }
        .map_err(sled_err)
    }

    fn write_purge(&mut self, group: GroupId, upto: LogId) -> io::Result<()> {
        let trees = self.core.trees(group)?;
        let purged: Option<LogId> = get_meta(&trees.meta, LAST_PURGED, self.core.options)?;
        if purged.is_some_and(|p| p >= upto) {
            return Ok(());
        }
        trees
            .meta
            .insert(LAST_PURGED, record(&upto)?)
            .map_err(sled_err)?;
        purge_through(&trees.log, upto.index, self.core.options)
    }

    /// Writes each group's pending appends as runs, one sled batch per group.
    fn write_pending(&mut self) -> io::Result<()> {
        let ids: Vec<GroupId> = self
            .groups
            .iter()
            .filter(|(_, g)| g.pending.is_some() || g.committed_dirty)
            .map(|(&id, _)| id)
            .collect();
        for id in ids {
            let trees = self.core.trees(id)?;
            let g = self.groups.get_mut(&id).expect("listed above");
            if let Some((first, last)) = g.pending {
                let batch = {
                    let tail = g.tail.lock().unwrap_or_else(|p| p.into_inner());
                    encode_runs(&tail, first, last)?
                };
                trees.log.apply_batch(batch).map_err(sled_err)?;
                g.pending = None;
            }
            // The committed id, once the log holds what it names (after the entries, in
            // sled's order).
            if g.committed_dirty {
                if let Some(c) = g
                    .committed
                    .filter(|c| c.is_none_or(|c| g.written.is_some_and(|w| c.index <= w)))
                {
                    match c {
                        Some(c) => trees.meta.insert(COMMITTED, record(&c)?).map(|_| ()),
                        None => trees.meta.remove(COMMITTED).map(|_| ()),
                    }
                    .map_err(sled_err)?;
                    g.committed_dirty = false;
                }
            }
        }
        Ok(())
    }

    /// After a successful flush: everything written is durable.
    fn flushed(&mut self) {
        for g in self.groups.values_mut() {
            g.vote_durable = g.vote;
            g.durable = g.written;
            if let Some(d) = g.durable {
                g.tail.lock().unwrap_or_else(|p| p.into_inner()).trim(d);
            }
        }
        let groups = &self.groups;
        self.core.update_marks(false, |m| {
            let mut changed = false;
            for (&id, g) in groups {
                let e = m.groups.entry(id).or_default();
                if g.vote_durable.is_some() && e.vote != g.vote_durable {
                    e.vote = g.vote_durable;
                    changed = true;
                }
                if g.durable.is_some() && e.flushed != g.durable {
                    e.flushed = g.durable;
                    changed = true;
                }
                if e.floor.is_some() && g.durable.is_some_and(|d| Some(d) >= e.floor) {
                    tracing::info!(group = %id, floor = ?e.floor, "the log holds again everything \
                        this node had flushed before its damage; it votes again");
                    e.floor = None;
                    changed = true;
                }
            }
            changed
        });
        for w in self.waiting.drain(..) {
            w.complete(Ok(()));
        }
    }

    fn stall(&mut self, e: io::Error) {
        if e.kind() == io::ErrorKind::InvalidInput {
            // A broken invariant of this module, not the disk: no retry can cure it, so
            // openraft hears of it (and stops the group) instead of waiting for ever.
            tracing::error!(cause = %e, "the Raft log is inconsistent");
            for w in self.waiting.drain(..) {
                w.complete(Err(io::Error::new(e.kind(), e.to_string())));
            }
            for g in self.groups.values_mut() {
                g.pending = None;
            }
            return;
        }
        if self.stalled.is_none() {
            tracing::error!(cause = %e, path = %self.core.path.display(),
                "writing the Raft log failed; writes wait (and clients get -MISCONF) until it \
                 succeeds again");
            let cause = e.to_string();
            self.core.health.send_replace(Health::Stalled {
                cause: cause.clone(),
            });
            self.stalled = Some((e, Instant::now()));
        }
    }

    /// While stalled: records the jobs that arrive and tries, with growing pauses, to
    /// reopen the database and rewrite what is not flushed. True once that succeeded;
    /// false if the channel closed first.
    fn recover_until_written(&mut self, rx: &Receiver<Job>) -> bool {
        let mut pause = RETRY_FIRST;
        let mut last_report = Instant::now();
        loop {
            let until = Instant::now() + pause;
            loop {
                let left = until.saturating_duration_since(Instant::now());
                match rx.recv_timeout(left) {
                    Ok(job) => self.take(job),
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => return false,
                }
            }
            match self.recover() {
                Ok(()) => {
                    let since = self.stalled.take().map(|(_, t)| t.elapsed());
                    tracing::info!(
                        stalled_ms = since.map_or(0, |d| d.as_millis() as u64),
                        "the Raft log writes again; writes resume"
                    );
                    self.core.health.send_replace(Health::Ok);
                    self.flushed();
                    return true;
                }
                Err(e) => {
                    if last_report.elapsed() >= Duration::from_secs(10) {
                        tracing::warn!(cause = %e, "the Raft log still cannot write");
                        last_report = Instant::now();
                    }
                    self.core.health.send_if_modified(|h| match h {
                        Health::Stalled { cause } if *cause != e.to_string() => {
                            *cause = e.to_string();
                            true
                        }
                        _ => false,
                    });
                    pause = (pause * 2).min(RETRY_MAX);
                }
            }
        }
    }

    /// Reopens the database and rewrites everything not flushed, then flushes.
    fn recover(&mut self) -> io::Result<()> {
        let unflushed: u64 = self
            .groups
            .values()
            .map(|g| g.tail.lock().unwrap_or_else(|p| p.into_inner()).bytes as u64)
            .sum();
        self.check_space(unflushed)?;
        self.reopen()?;
        let ids: Vec<GroupId> = self.groups.keys().copied().collect();
        for id in ids {
            self.rewrite(id)?;
        }
        self.flush()
    }

    /// Drops every handle of the database and opens it again (sled refuses every write
    /// after one failed, until it is reopened).
    fn reopen(&mut self) -> io::Result<()> {
        let mut h = self.core.handles.write().unwrap_or_else(|p| p.into_inner());
        let names: Vec<GroupId> = h.trees.keys().copied().collect();
        h.trees.clear();
        // sled releases its file lock once every handle is gone and its threads stop;
        // readers hold handles for a moment only.
        drop(h.db.take());
        let started = Instant::now();
        let db = loop {
            match open_sled(&self.core.path) {
                Ok(db) => break db,
                Err(e) if started.elapsed() < Duration::from_secs(5) => {
                    tracing::debug!(cause = %e, "waiting for sled to release the log");
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(sled_err(e)),
            }
        };
        let mut trees = BTreeMap::new();
        for id in names {
            trees.insert(id, open_trees(&db, id)?);
        }
        h.db = Some(db);
        h.trees = trees;
        Ok(())
    }

    /// Rewrites what sled may have lost of `group`: entries after the last flush (from the
    /// tail), the vote, the committed and purged ids.
    fn rewrite(&mut self, id: GroupId) -> io::Result<()> {
        let trees = self.core.trees(id)?;
        let options = self.core.options;
        let g = self.groups.get_mut(&id).expect("known group");
        truncate_from(&trees.log, g.durable.map_or(0, |d| d + 1))?;
        if let Some(written) = g.written {
            let start = g
                .durable
                .max(g.purged.map(|p| p.index))
                .map_or(0, |i| i + 1);
            if start <= written {
                let tail = g.tail.lock().unwrap_or_else(|p| p.into_inner());
                let first = tail.entries.first_key_value().map(|(&i, _)| i);
                let start = start.max(first.unwrap_or(start));
                let batch = encode_runs(&tail, start, written)?;
                trees.log.apply_batch(batch).map_err(sled_err)?;
            }
        }
        g.pending = None;
        if let Some(v) = &g.vote {
            trees.meta.insert(VOTE, record(v)?).map_err(sled_err)?;
        }
        let written = g.written;
        if let Some(c) = g
            .committed
            .filter(|c| c.is_none_or(|c| written.is_some_and(|w| c.index <= w)))
        {
            match c {
                Some(c) => trees.meta.insert(COMMITTED, record(&c)?).map(|_| ()),
                None => trees.meta.remove(COMMITTED).map(|_| ()),
            }
            .map_err(sled_err)?;
            g.committed_dirty = false;
        }
        if let Some(p) = g.purged {
            trees
                .meta
                .insert(LAST_PURGED, record(&p)?)
                .map_err(sled_err)?;
            purge_through(&trees.log, p.index, options)?;
        }
        Ok(())
    }
}
