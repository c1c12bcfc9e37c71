//! The raft crate's storage, end to end: openraft's own storage suite against the sled
//! log store and the state machine, group commit, snapshots across restarts and installs,
//! and (ignored by default, it builds a million keys) the apply stall while a snapshot is
//! built.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use openraft::entry::RaftEntry;
use openraft::storage::{RaftLogReader, RaftLogStorage, RaftSnapshotBuilder, RaftStateMachine};
use openraft::testing::log::{StoreBuilder, Suite};
use openraft::type_config::TypeConfigExt;
use openraft::vote::RaftLeaderIdExt;
use openraft::StorageHelper;
use raft::typ::{Entry, IOFlushed, LogId, Membership, StorageError};
use raft::{LogDb, LogStore, Request, StateMachine, TypeConfig};
use resp::Frame;
use tempfile::TempDir;
use types::GroupId;

/// A fresh temporary directory per build: a sled database and a snapshot directory.
struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError> {
        let dir = TempDir::new().expect("temp dir");
        let (log, sm) = open_group(dir.path(), GroupId(1), new_kv());
        Ok((dir, log, sm))
    }
}

fn new_kv() -> Arc<Mutex<kv::Db>> {
    Arc::new(Mutex::new(kv::Db::new()))
}

fn open_group(dir: &Path, group: GroupId, kv: Arc<Mutex<kv::Db>>) -> (LogStore, StateMachine) {
    let opened = raft::open(&open_sled(dir), group, dir, kv).expect("open group");
    assert_eq!(opened.behind, None, "a fresh or intact log is not behind");
    (opened.log, opened.sm)
}

/// Opens the node's sled database; after a restart in the same process, sled may still
/// hold its file lock for a moment while its background threads wind down.
fn open_sled(dir: &Path) -> LogDb {
    let started = Instant::now();
    loop {
        match LogDb::open(&dir.join("sled")) {
            Ok(db) => return db,
            Err(e) if started.elapsed() < Duration::from_secs(10) => {
                eprintln!("sled not released yet: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("open sled: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openraft_storage_suite() {
    Suite::test_all(Builder)
        .await
        .expect("openraft's storage suite");
}

fn log_id(term: u64, index: u64) -> LogId {
    LogId::new(
        <TypeConfig as openraft::RaftTypeConfig>::LeaderId::new_committed(term, 1),
        index,
    )
}

fn write(term: u64, index: u64, now_ms: i64, line: &str) -> Entry {
    let args = line
        .split(' ')
        .map(|s| Bytes::from(s.to_string()))
        .collect();
    let proposal = kv::Proposal::Command { args, seed: index };
    Entry::new_normal(log_id(term, index), Request::new(now_ms, &proposal))
}

/// Applies entries one by one, returning the replies.
fn apply_each(sm: &mut StateMachine, entries: Vec<Entry>) -> Vec<Frame> {
    entries.into_iter().map(|e| sm.apply_entry(e).0).collect()
}

/// Applies entries through openraft's `apply` (no client waiting).
async fn apply(sm: &mut StateMachine, entries: Vec<Entry>) {
    let items = entries.into_iter().map(|e| Ok((e, None)));
    sm.apply(futures_util::stream::iter(items))
        .await
        .expect("apply");
}

/// Appends without waiting, and returns the receiver of the flush callback.
async fn append(
    log: &mut LogStore,
    entries: Vec<Entry>,
) -> tokio::sync::oneshot::Receiver<std::io::Result<()>> {
    let (tx, rx) = TypeConfig::oneshot();
    log.append(entries, IOFlushed::signal(tx))
        .await
        .expect("append");
    rx
}

fn get(kv: &Arc<Mutex<kv::Db>>, key: &str, now: i64) -> Option<Vec<u8>> {
    let db = kv.lock().unwrap();
    db.get(key.as_bytes(), now)
        .map(|v| v.as_str().expect("a string").to_vec())
}

fn snapshot_bytes(kv: &Arc<Mutex<kv::Db>>) -> Vec<u8> {
    let mut out = Vec::new();
    kv.lock().unwrap().write_snapshot(&mut out).unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_share_flushes() {
    let dir = TempDir::new().unwrap();
    let db = LogDb::open(&dir.path().join("sled")).unwrap();
    const GROUPS: u64 = 8;
    const PER_GROUP: u64 = 50;
    let before = db.flush_count();
    let mut tasks = Vec::new();
    for g in 0..GROUPS {
        let mut log = LogStore::open(&db, GroupId(g)).unwrap();
        tasks.push(tokio::spawn(async move {
            let mut pending = Vec::new();
            for i in 1..=PER_GROUP {
                pending.push(append(&mut log, vec![write(1, i, 0, "SET k v")]).await);
            }
            for rx in pending {
                rx.await.expect("callback").expect("flushed");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let appends = GROUPS * PER_GROUP;
    let flushes = db.flush_count() - before;
    println!("{appends} concurrent appends needed {flushes} flushes");
    // Every append waits for a flush, so there was at least one (and the count is real).
    assert!(flushes > 0, "no flush counted for {appends} appends");
    assert!(flushes < appends, "{flushes} flushes for {appends} appends");
}

#[tokio::test]
async fn apply_uses_monotonic_entry_time() {
    let dir = TempDir::new().unwrap();
    let kv = new_kv();
    let (_log, mut sm) = open_group(dir.path(), GroupId(3), kv.clone());
    let replies = apply_each(
        &mut sm,
        vec![
            write(1, 1, 1_000, "SET a 1"),
            // Stamped earlier than the entry before: runs at 1_000, so PX 100 ends at 1_100.
            write(1, 2, 900, "SET b 2 PX 100"),
            write(1, 3, 1_050, "INCR a"),
            write(1, 4, 1_060, "NOSUCHCOMMAND"),
        ],
    );
    assert_eq!(replies[0], Frame::OK);
    assert_eq!(replies[1], Frame::OK);
    assert_eq!(replies[2], Frame::Integer(2));
    assert!(replies[3].is_error());
    assert_eq!(sm.last_now_ms(), 1_060);
    assert_eq!(get(&kv, "b", 1_099), Some(b"2".to_vec()));
    assert_eq!(get(&kv, "b", 1_100), None);

    let garbage = Entry::new_normal(
        log_id(1, 5),
        Request::encoded(0, Bytes::from_static(&[0xff, 1, 2])),
    );
    let replies = apply_each(&mut sm, vec![garbage]);
    assert!(
        replies[0].is_error(),
        "a corrupt proposal is an error reply"
    );
    assert_eq!(sm.applied_state().await.unwrap().0, Some(log_id(1, 5)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_is_last_snapshot_plus_log_replay() {
    let dir = TempDir::new().unwrap();
    let kv = new_kv();
    let group = GroupId(7);
    let final_state;
    {
        let (mut log, mut sm) = open_group(dir.path(), group, kv.clone());
        let membership = Entry::new_membership(
            log_id(1, 1),
            Membership::new_with_defaults(vec![[1].into()], []),
        );
        let mut entries = vec![membership];
        for i in 2..=40 {
            entries.push(write(1, i, 1_000 + i as i64, &format!("RPUSH list {i}")));
        }
        append(&mut log, entries.clone())
            .await
            .await
            .unwrap()
            .unwrap();
        log.save_committed(Some(log_id(1, 40))).await.unwrap();
        apply(&mut sm, entries[..25].to_vec()).await;
        let snap = sm
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        assert_eq!(snap.meta.last_log_id, Some(log_id(1, 25)));
        apply(&mut sm, entries[25..].to_vec()).await;
        final_state = snapshot_bytes(&kv);
        // A later snapshot and one more keep only two files.
        sm.get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        log.purge(log_id(1, 20)).await.unwrap();
    }
    // Keep the newest snapshot at 25 only, so the restart needs the log after it.
    let snaps = dir.path().join("snapshots").join("group-7");
    let mut files: Vec<_> = std::fs::read_dir(&snaps)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    std::fs::remove_file(&files[1]).unwrap();

    let kv2 = new_kv();
    let (mut log, mut sm) = open_group(dir.path(), group, kv2.clone());
    assert_eq!(
        sm.applied_state().await.unwrap().0,
        Some(log_id(1, 25)),
        "loaded the snapshot"
    );
    let state = StorageHelper::new(&mut log, &mut sm)
        .with_id(1)
        .get_initial_state()
        .await
        .unwrap();
    assert_eq!(state.local_committed(), Some(&log_id(1, 40)));
    assert_eq!(
        sm.applied_state().await.unwrap().0,
        Some(log_id(1, 40)),
        "replayed the log"
    );
    assert_eq!(
        snapshot_bytes(&kv2),
        final_state,
        "same database after restart"
    );
    assert_eq!(sm.last_now_ms(), 1_040);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_installs_the_leader_snapshot() {
    let (dir_a, dir_b) = (TempDir::new().unwrap(), TempDir::new().unwrap());
    let (kv_a, kv_b) = (new_kv(), new_kv());
    let (_la, mut a) = open_group(dir_a.path(), GroupId(2), kv_a.clone());
    let (_lb, mut b) = open_group(dir_b.path(), GroupId(2), kv_b.clone());
    let mut entries = Vec::new();
    for i in 1..=200u64 {
        entries.push(write(
            3,
            i,
            5_000 + i as i64,
            &format!("HSET h{} f{} v EX 100", i % 7, i),
        ));
        entries.push(write(
            3,
            1000 + i,
            5_000 + i as i64,
            &format!("SET k{i} v PX {}", i * 10),
        ));
    }
    // Re-index: log ids must increase.
    let entries: Vec<Entry> = entries
        .into_iter()
        .enumerate()
        .map(|(i, mut e)| {
            e.set_log_id(log_id(3, i as u64 + 1));
            e
        })
        .collect();
    apply(&mut a, entries).await;
    let snap = a
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    b.install_snapshot(&snap.meta, snap.snapshot).await.unwrap();
    assert_eq!(
        b.applied_state().await.unwrap(),
        a.applied_state().await.unwrap()
    );
    assert_eq!(snapshot_bytes(&kv_a), snapshot_bytes(&kv_b));
    assert_eq!(b.last_now_ms(), a.last_now_ms());
    let current = b
        .get_current_snapshot()
        .await
        .unwrap()
        .expect("installed snapshot is current");
    assert_eq!(current.meta, snap.meta);

    // A snapshot file for other meta is refused and changes nothing.
    let other = a.get_current_snapshot().await.unwrap().unwrap();
    let mut wrong = other.meta.clone();
    wrong.last_log_id = Some(log_id(3, 9_999));
    assert!(b.install_snapshot(&wrong, other.snapshot).await.is_err());
    assert_eq!(
        b.applied_state().await.unwrap(),
        a.applied_state().await.unwrap()
    );
}

#[tokio::test]
async fn a_corrupt_snapshot_file_is_an_error() {
    let dir = TempDir::new().unwrap();
    {
        let (_log, mut sm) = open_group(dir.path(), GroupId(4), new_kv());
        apply(&mut sm, vec![write(1, 1, 10, "SET a b")]).await;
        sm.get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
    }
    let snaps = dir.path().join("snapshots").join("group-4");
    let file = std::fs::read_dir(&snaps)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 20;
    bytes[last] ^= 0x40;
    std::fs::write(&file, &bytes).unwrap();
    let db = LogDb::open(&dir.path().join("sled")).unwrap();
    let err = raft::open(&db, GroupId(4), dir.path(), new_kv())
        .err()
        .expect("refused");
    println!("{err}");
    std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    assert!(raft::open(&db, GroupId(4), dir.path(), new_kv()).is_err());
}

#[tokio::test]
async fn log_reads_respect_purge_and_truncate() {
    let dir = TempDir::new().unwrap();
    let db = LogDb::open(&dir.path().join("sled")).unwrap();
    let mut log = LogStore::open(&db, GroupId(9)).unwrap();
    let entries: Vec<Entry> = (1..=10).map(|i| write(1, i, 0, "SET k v")).collect();
    append(&mut log, entries).await.await.unwrap().unwrap();
    log.purge(log_id(1, 3)).await.unwrap();
    log.truncate_after(Some(log_id(1, 8))).await.unwrap();
    let ids = |es: Vec<Entry>| es.iter().map(|e| e.log_id().index).collect::<Vec<_>>();
    assert_eq!(
        ids(log.try_get_log_entries(0..100).await.unwrap()),
        (4..=8).collect::<Vec<_>>()
    );
    assert_eq!(
        ids(log.try_get_log_entries(6..6).await.unwrap()),
        Vec::<u64>::new()
    );
    assert_eq!(
        ids(log.try_get_log_entries(7..=u64::MAX).await.unwrap()),
        vec![7, 8]
    );
    let state = log.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, Some(log_id(1, 3)));
    assert_eq!(state.last_log_id, Some(log_id(1, 8)));
    // The group's trees are separate from another group's.
    let mut other = LogStore::open(&db, GroupId(10)).unwrap();
    assert!(other.try_get_log_entries(..).await.unwrap().is_empty());
}

/// The log stores each append as one or more runs; reads, truncation and purging cut
/// through runs at any index, and what a fresh store reads back from sled (no cache) is
/// exactly the log.
#[tokio::test]
async fn runs_are_cut_anywhere_by_truncate_and_purge() {
    let dir = TempDir::new().unwrap();
    let db = LogDb::open(&dir.path().join("sled")).unwrap();
    let mut log = LogStore::open(&db, GroupId(3)).unwrap();
    // Appends of 5, 1 and 2,494 entries: the last is cut into runs of at most
    // RUN_MAX_ENTRIES.
    for (from, to) in [(1, 5), (6, 6), (7, 2500)] {
        let entries: Vec<Entry> = (from..=to).map(|i| write(1, i, 0, "SET k v")).collect();
        append(&mut log, entries).await.await.unwrap().unwrap();
    }
    let ids = |es: Vec<Entry>| es.iter().map(|e| e.log_id().index).collect::<Vec<_>>();
    let fresh = |db: &LogDb| LogStore::open(db, GroupId(3)).unwrap();
    assert_eq!(
        ids(fresh(&db).try_get_log_entries(1000..=1030).await.unwrap()),
        (1000..=1030).collect::<Vec<_>>()
    );
    // Purge inside the first run, then truncate inside the run holding 1500.
    log.purge(log_id(1, 3)).await.unwrap();
    log.truncate_after(Some(log_id(1, 1500))).await.unwrap();
    for reader in [&mut log, &mut fresh(&db)] {
        assert_eq!(
            ids(reader.try_get_log_entries(..).await.unwrap()),
            (4..=1500).collect::<Vec<_>>()
        );
        assert_eq!(
            ids(reader.try_get_log_entries(1499..1600).await.unwrap()),
            vec![1499, 1500]
        );
        let state = reader.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(log_id(1, 3)));
        assert_eq!(state.last_log_id, Some(log_id(1, 1500)));
    }
    // Appending after the cut, then purging exactly at a run's end and past the last entry.
    let entries: Vec<Entry> = (1501..=1510).map(|i| write(2, i, 0, "SET k v")).collect();
    append(&mut log, entries).await.await.unwrap().unwrap();
    log.purge(log_id(1, 6)).await.unwrap();
    assert_eq!(
        ids(fresh(&db).try_get_log_entries(..10).await.unwrap()),
        vec![7, 8, 9]
    );
    log.purge(log_id(2, 1510)).await.unwrap();
    let mut reopened = fresh(&db);
    assert!(reopened.try_get_log_entries(..).await.unwrap().is_empty());
    let state = reopened.get_log_state().await.unwrap();
    assert_eq!(state.last_log_id, Some(log_id(2, 1510)));
    assert_eq!(
        db.sled().unwrap().open_tree("group-3/log").unwrap().len(),
        0
    );
}

/// The database carries its log format: a database marked with another format, or with
/// logs but no mark, is refused with an error that names the problem.
#[tokio::test]
async fn a_log_in_another_format_is_refused() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("sled");
    {
        let db = LogDb::open(&path).unwrap();
        let mut log = LogStore::open(&db, GroupId(1)).unwrap();
        append(&mut log, vec![write(1, 1, 0, "SET k v")])
            .await
            .await
            .unwrap()
            .unwrap();
    }
    // Reopening the same format works (after sled lets go of its lock).
    drop(open_sled(dir.path()));
    let marked = |value: Option<&[u8]>| {
        let started = Instant::now();
        let db = loop {
            match raft::log_store::open_sled(&path) {
                Ok(db) => break db,
                Err(e) if started.elapsed() > Duration::from_secs(10) => panic!("{e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        match value {
            Some(v) => db.insert(b"redraft-log-format", v).map(|_| ()),
            None => db.remove(b"redraft-log-format").map(|_| ()),
        }
        .unwrap();
        db.flush().unwrap();
    };
    let refused = || {
        let started = Instant::now();
        loop {
            match LogDb::open(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::InvalidData => break e.to_string(),
                Err(e) if started.elapsed() > Duration::from_secs(10) => panic!("{e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
                Ok(_) => panic!("a log in another format was opened"),
            }
        }
    };
    marked(Some(&1u32.to_be_bytes()));
    let e = refused();
    assert!(
        e.contains("is in format 1; this redraft reads format 3"),
        "{e}"
    );
    marked(None);
    let e = refused();
    assert!(e.contains("has no format mark"), "{e}");
    marked(Some(&raft::LOG_FORMAT.to_be_bytes()));
    drop(open_sled(dir.path()));
}

/// Appended entries are readable at once, before the flusher has written them to sled,
/// even past the in-memory tail's usual size, and reads that straddle sled and memory
/// see one contiguous log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_are_readable_before_they_reach_sled() {
    let dir = TempDir::new().unwrap();
    let db = LogDb::open(&dir.path().join("sled")).unwrap();
    let mut log = LogStore::open(&db, GroupId(4)).unwrap();
    let ids = |es: Vec<Entry>| es.iter().map(|e| e.log_id().index).collect::<Vec<_>>();
    let mut flushed = Vec::new();
    for chunk in 0..10u64 {
        let entries = (chunk * 1000 + 1..=chunk * 1000 + 1000)
            .map(|i| write(1, i, 0, "SET k v"))
            .collect();
        flushed.push(append(&mut log, entries).await);
        assert_eq!(
            ids(log.try_get_log_entries(1..).await.unwrap()),
            (1..=chunk * 1000 + 1000).collect::<Vec<_>>()
        );
        assert_eq!(
            log.get_log_state().await.unwrap().last_log_id,
            Some(log_id(1, chunk * 1000 + 1000))
        );
    }
    for rx in flushed {
        rx.await.unwrap().unwrap();
    }
    // Everything is in sled now: a store opened afresh reads it all from there.
    let mut fresh = LogStore::open(&db, GroupId(4)).unwrap();
    assert_eq!(
        ids(fresh.try_get_log_entries(..).await.unwrap()),
        (1..=10_000).collect::<Vec<_>>()
    );
    // A read across what sled holds and what is only in memory.
    let pending = append(
        &mut log,
        (10_001..=10_010)
            .map(|i| write(1, i, 0, "SET k v"))
            .collect(),
    )
    .await;
    assert_eq!(
        ids(log.try_get_log_entries(2_000..=10_010).await.unwrap()),
        (2_000..=10_010).collect::<Vec<_>>()
    );
    pending.await.unwrap().unwrap();
}

/// The longest pause applies see while a snapshot of a million keys is built: the time
/// to clone the database under the lock. Run with
/// `cargo test -p raft --release --test storage -- --ignored --nocapture snapshot_stall`
/// (`STALL_VALUE_PAD=100` for 116-byte values, `STALL_SHAPE=hashes` for 1,000 hashes of
/// 1,000 fields). Measured on the 2-core dev machine under load from other builds: about
/// 50-100 ms for a million string keys (inline or long values), under 0.1 ms for the
/// hashes (collections are shared copy-on-write, not copied).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn snapshot_stall_with_a_million_keys() {
    const KEYS: u64 = 1_000_000;
    // Values of 22 bytes are stored inline; `STALL_VALUE_PAD=100` makes them heap values.
    let pad: usize = std::env::var("STALL_VALUE_PAD")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    let padding = "v".repeat(pad);
    let dir = TempDir::new().unwrap();
    let kv = new_kv();
    let (_log, mut sm) = open_group(dir.path(), GroupId(5), kv.clone());
    // `STALL_SHAPE=hashes` fills 1,000 hashes of 1,000 fields instead of 1M strings.
    let hashes = std::env::var("STALL_SHAPE").is_ok_and(|s| s == "hashes");
    let fill = Instant::now();
    let mut index = 0;
    let mut batch = Vec::new();
    let commands = if hashes { KEYS / 100 } else { KEYS };
    for i in 0..commands {
        index += 1;
        let line = if hashes {
            let fields: Vec<String> = (0..100)
                .map(|f| format!("field:{:04} {padding}{i:016}", (i / 1000) * 100 + f))
                .collect();
            format!("HSET hash:{:04} {}", i % 1000, fields.join(" "))
        } else {
            format!("SET key:{i:08} {padding}{i:016}")
        };
        batch.push(write(1, index, 1_000, &line));
        if batch.len() == 10_000 {
            apply(&mut sm, std::mem::take(&mut batch)).await;
        }
    }
    apply(&mut sm, std::mem::take(&mut batch)).await;
    assert_eq!(
        kv.lock().unwrap().len() as u64,
        if hashes { 1_000 } else { KEYS }
    );
    println!("filled {KEYS} keys in {:?}", fill.elapsed());

    // A reader thread, like the server's: how long does it wait for the lock?
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (kv, stop) = (kv.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut worst = Duration::ZERO;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let t = Instant::now();
                let db = kv.lock().unwrap();
                let _ = db.get(b"key:00000001", 0);
                drop(db);
                worst = worst.max(t.elapsed());
                std::thread::sleep(Duration::from_micros(200));
            }
            worst
        })
    };

    // Applies one entry at a time, as openraft's worker does, and asks for a snapshot
    // builder (between two applies) part way through; the builder runs on its own task.
    let mut worst_gap = Duration::ZERO;
    let mut builder_task = None;
    let mut last = Instant::now();
    let started = Instant::now();
    let mut applied_during = 0;
    let (mut clone_time, mut worst_before) = (Duration::ZERO, Duration::ZERO);
    for i in 0..200_000u64 {
        if i == 1_000 {
            let t = Instant::now();
            let mut builder = sm.get_snapshot_builder().await;
            clone_time = t.elapsed();
            worst_before = worst_gap;
            builder_task = Some(tokio::spawn(async move {
                let t = Instant::now();
                let snap = builder.build_snapshot().await.unwrap();
                (snap.meta, t.elapsed())
            }));
        }
        index += 1;
        apply(
            &mut sm,
            vec![write(
                1,
                index,
                2_000,
                &format!("INCR counter:{}", i % 1000),
            )],
        )
        .await;
        if builder_task.as_ref().is_some_and(|t| !t.is_finished()) {
            applied_during += 1;
        }
        let now = Instant::now();
        worst_gap = worst_gap.max(now - last);
        last = now;
        if builder_task.as_ref().is_some_and(|t| t.is_finished()) && i > 1_000 {
            break;
        }
    }
    let (meta, build_time) = builder_task.unwrap().await.unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let worst_read = reader.join().unwrap();
    println!(
        "snapshot of {KEYS} {} at {:?}: cloned under the lock in {clone_time:?}, written in {build_time:?}; \
         {applied_during} entries applied meanwhile; longest gap between applies {worst_gap:?} \
         ({worst_before:?} before the snapshot); longest reader lock wait {worst_read:?}; total {:?}",
        if hashes { "hash fields in 1,000 hashes" } else { "string keys" },
        meta.last_log_id,
        started.elapsed()
    );
}

/// A network for a single-node group: there are no peers to reach.
struct NoPeers;

struct NoPeer;

fn unreachable() -> openraft::errors::Unreachable<TypeConfig> {
    openraft::errors::Unreachable::new(&std::io::Error::other("single-node test: no peers"))
}

impl openraft::network::RaftNetworkFactory<TypeConfig> for NoPeers {
    type Network = NoPeer;

    async fn new_client(&mut self, _target: u64, _node: &types::NodeInfo) -> NoPeer {
        NoPeer
    }
}

impl openraft::network::v2::RaftNetworkV2<TypeConfig> for NoPeer {
    type SnapshotData = std::fs::File;

    async fn append_entries(
        &mut self,
        _rpc: openraft::raft::AppendEntriesRequest<TypeConfig>,
        _option: openraft::network::RPCOption,
    ) -> Result<
        openraft::raft::AppendEntriesResponse<TypeConfig>,
        openraft::errors::RPCError<TypeConfig>,
    > {
        Err(unreachable().into())
    }

    async fn vote(
        &mut self,
        _rpc: openraft::raft::VoteRequest<TypeConfig>,
        _option: openraft::network::RPCOption,
    ) -> Result<openraft::raft::VoteResponse<TypeConfig>, openraft::errors::RPCError<TypeConfig>>
    {
        Err(unreachable().into())
    }

    async fn full_snapshot(
        &mut self,
        _vote: raft::typ::Vote,
        _snapshot: raft::typ::Snapshot,
        _cancel: impl std::future::Future<Output = openraft::errors::ReplicationClosed> + Send + 'static,
        _option: openraft::network::RPCOption,
    ) -> Result<
        openraft::raft::SnapshotResponse<TypeConfig>,
        openraft::errors::StreamingError<TypeConfig>,
    > {
        Err(unreachable().into())
    }
}

async fn start(dir: &Path, kv: Arc<Mutex<kv::Db>>) -> raft::typ::Raft {
    let (log, sm) = open_group(dir, GroupId(1), kv);
    let config = openraft::Config {
        heartbeat_interval: 50,
        election_timeout_min: 150,
        election_timeout_max: 300,
        ..Default::default()
    };
    let config = Arc::new(config.validate().expect("valid config"));
    raft::typ::Raft::new(1, config, NoPeers, log, sm)
        .await
        .expect("raft starts")
}

/// A real openraft instance over this storage: writes reply through the state machine,
/// a snapshot lets the log be purged, and a restart (snapshot + openraft's replay of the
/// log after it) rebuilds the same database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_node_group_writes_snapshots_and_restarts() {
    let dir = TempDir::new().unwrap();
    let kv = new_kv();
    let wait = Some(Duration::from_secs(10));
    let expected;
    {
        let raft = start(dir.path(), kv.clone()).await;
        raft.initialize(std::collections::BTreeMap::from([(
            1,
            types::NodeInfo::default(),
        )]))
        .await
        .expect("initialize");
        raft.wait(wait)
            .state(openraft::ServerState::Leader, "leader")
            .await
            .unwrap();
        let propose = |now: i64, line: &str| {
            let args = line
                .split(' ')
                .map(|s| Bytes::from(s.to_string()))
                .collect();
            Request::new(now, &kv::Proposal::Command { args, seed: 1 })
        };
        let reply = raft.client_write(propose(100, "SET a 1")).await.unwrap();
        assert_eq!(reply.data.0, Frame::OK);
        for i in 0..50 {
            let reply = raft.client_write(propose(200 + i, "INCR a")).await.unwrap();
            assert_eq!(reply.data.0, Frame::Integer(i + 2));
        }
        let reply = raft
            .client_write(propose(100, "SET t x PX 1000"))
            .await
            .unwrap();
        assert_eq!(reply.data.0, Frame::OK, "stamped at the latest time, 249");
        let last = reply.log_id;
        raft.trigger().snapshot().await.unwrap();
        raft.wait(wait).snapshot(last, "snapshot").await.unwrap();
        raft.trigger().purge_log(last.index).await.unwrap();
        raft.wait(wait).purged(Some(last), "purged").await.unwrap();
        for i in 0..10 {
            raft.client_write(propose(300 + i, "RPUSH l x"))
                .await
                .unwrap();
        }
        expected = snapshot_bytes(&kv);
        raft.shutdown().await.unwrap();
    }
    assert_eq!(get(&kv, "t", 1_248), Some(b"x".to_vec()));
    assert_eq!(get(&kv, "t", 1_249), None);

    let kv2 = new_kv();
    let raft = start(dir.path(), kv2.clone()).await;
    raft.wait(wait)
        .applied_index_at_least(Some(1 + 52 + 10), "replayed")
        .await
        .unwrap();
    assert_eq!(
        snapshot_bytes(&kv2),
        expected,
        "same database after restart"
    );
    raft.shutdown().await.unwrap();
}

/// Opens the database's sled directly (after the store let go of it) and runs `f` on it,
/// flushing afterwards: how the tests damage or remove what the log wrote.
fn raw_sled(dir: &Path, f: impl FnOnce(&sled::Db)) {
    let path = dir.join("sled");
    let started = Instant::now();
    let db = loop {
        match raft::log_store::open_sled(&path) {
            Ok(db) => break db,
            Err(e) if started.elapsed() > Duration::from_secs(10) => panic!("{e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    f(&db);
    db.flush().unwrap();
}

/// Writes entries 1..=n (runs of 10) to group `group`'s log, with a vote, all flushed.
async fn write_log(dir: &Path, group: GroupId, n: u64) {
    let (mut log, _sm) = open_group(dir, group, new_kv());
    log.save_vote(&raft::typ::Vote::new_committed(3, 1))
        .await
        .unwrap();
    for start in (1..=n).step_by(10) {
        let entries = (start..(start + 10).min(n + 1))
            .map(|i| write(3, i, 0, "SET k v"))
            .collect();
        append(&mut log, entries).await.await.unwrap().unwrap();
    }
}

/// Opens group `group` again, waiting for sled to let go of the directory.
fn reopen(
    dir: &Path,
    group: GroupId,
    options: raft::LogOptions,
) -> Result<raft::Opened, raft::Error> {
    let started = Instant::now();
    let db = loop {
        match LogDb::open_with(&dir.join("sled"), options) {
            Ok(db) => break db,
            Err(e) if started.elapsed() < Duration::from_secs(10) => {
                eprintln!("sled not released yet: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("open sled: {e}"),
        }
    };
    raft::open(&db, group, dir, new_kv())
}

const CHECKED: raft::LogOptions = raft::LogOptions { verify: true };
const UNCHECKED: raft::LogOptions = raft::LogOptions { verify: false };

/// What sled does with damage it finds in its own files: it drops what follows, silently.
/// The watermark notices that the log ends before what the node had flushed, and that the
/// vote went back; the vote is restored and the group reported behind, and stays behind
/// (the floor survives a restart) until the log reaches the floor again. Without checks
/// the loss goes unnoticed, which is what the unsafe self-test relies on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_that_lost_flushed_entries_is_reported_behind() {
    let dir = TempDir::new().unwrap();
    let group = GroupId(6);
    write_log(dir.path(), group, 100).await;
    raw_sled(dir.path(), |db| {
        let log = db.open_tree("group-6/log").unwrap();
        for i in 51..=100u64 {
            log.remove(i.to_be_bytes()).unwrap();
        }
        db.open_tree("group-6/meta")
            .unwrap()
            .remove("vote")
            .unwrap();
    });

    // Unchecked, the node would start as if nothing happened.
    let opened = reopen(dir.path(), group, UNCHECKED).unwrap();
    assert_eq!(opened.behind, None);
    drop(opened);

    let mut opened = reopen(dir.path(), group, CHECKED).unwrap();
    let behind = opened.behind.clone().expect("reported behind");
    assert_eq!((behind.floor, behind.has), (100, Some(50)), "{behind}");
    assert!(behind.vote_restored, "{behind}");
    assert_eq!(
        opened.log.read_vote().await.unwrap(),
        Some(raft::typ::Vote::new_committed(3, 1)),
        "the vote is back"
    );
    drop(opened);

    // Still behind after a restart, until the log holds index 100 again.
    let mut opened = reopen(dir.path(), group, CHECKED).unwrap();
    assert_eq!(opened.behind.as_ref().map(|b| b.floor), Some(100));
    let entries = (51..=100).map(|i| write(4, i, 0, "SET k w")).collect();
    append(&mut opened.log, entries)
        .await
        .await
        .unwrap()
        .unwrap();
    drop(opened);
    let opened = reopen(dir.path(), group, CHECKED).unwrap();
    assert_eq!(opened.behind, None, "caught up: the floor is cleared");
}

/// A record that fails its checksum in the flushed part of the log stops the group from
/// opening, with an error that names the index and says what to do; one written after the
/// last flush the watermark knows of is cut, and the group opens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_record_is_refused_or_cut() {
    let dir = TempDir::new().unwrap();
    let group = GroupId(8);
    write_log(dir.path(), group, 40).await;
    let flip = |key: u64| {
        raw_sled(dir.path(), |db| {
            let log = db.open_tree("group-8/log").unwrap();
            let mut v = log.get(key.to_be_bytes()).unwrap().unwrap().to_vec();
            let at = v.len() - 3;
            v[at] ^= 0x01;
            log.insert(key.to_be_bytes(), v).unwrap();
        })
    };
    flip(21);
    let err = reopen(dir.path(), group, CHECKED).err().expect("refused");
    let text = err.to_string();
    assert!(text.contains("damaged at index 21 of group 8"), "{text}");
    assert!(
        text.contains("CLUSTER FORGET") && text.contains("--join"),
        "{text}"
    );
    // Unchecked, it opens (and would serve whatever the flipped bit says).
    assert!(reopen(dir.path(), group, UNCHECKED).is_ok());
    flip(21);

    // A damaged run past index 40 (the last flush the watermark knows): cut.
    raw_sled(dir.path(), |db| {
        let log = db.open_tree("group-8/log").unwrap();
        let mut v = log.get(31u64.to_be_bytes()).unwrap().unwrap().to_vec();
        v[10] ^= 0x40;
        log.insert(41u64.to_be_bytes(), v).unwrap();
    });
    let mut opened = reopen(dir.path(), group, CHECKED).unwrap();
    assert_eq!(opened.behind, None);
    let state = opened.log.get_log_state().await.unwrap();
    assert_eq!(state.last_log_id.map(|l| l.index), Some(40));
}

/// Large writes arrive as parts: the parts in progress are in snapshots, so a follower
/// that installs a snapshot taken between two parts assembles the same write; a change of
/// term loses an unfinished upload on every replica alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_write_assembles_across_a_snapshot_install() {
    use raft::{Blob, Payload};
    let (dir_a, dir_b) = (TempDir::new().unwrap(), TempDir::new().unwrap());
    let (kv_a, kv_b) = (new_kv(), new_kv());
    let (_la, mut a) = open_group(dir_a.path(), GroupId(2), kv_a.clone());
    let (_lb, mut b) = open_group(dir_b.path(), GroupId(2), kv_b.clone());
    let value = vec![b'x'; raft::uploads::PART_BYTES * 2 + 100];
    let proposal = kv::Proposal::Command {
        args: vec!["SET".into(), "big".into(), Bytes::from(value.clone())],
        seed: 0,
    };
    let encoded = Bytes::from(proposal.encode());
    let parts = raft::uploads::split(&encoded);
    assert_eq!(parts.len(), 3);
    let entry = |index: u64, term: u64, payload: Payload| {
        Entry::new_normal(
            log_id(term, index),
            Request {
                now_ms: 10,
                payload,
            },
        )
    };
    let part = |index: u64, seq: u32, term: u64| {
        entry(
            index,
            term,
            Payload::Part {
                upload: 77,
                seq,
                bytes: Blob(parts[seq as usize].clone()),
            },
        )
    };
    let assemble = |index: u64, term: u64| {
        entry(
            index,
            term,
            Payload::Assemble {
                upload: 77,
                parts: 3,
                len: encoded.len() as u64,
                crc: crc32fast::hash(&encoded),
            },
        )
    };
    assert_eq!(
        apply_each(&mut a, vec![part(1, 0, 2), part(2, 1, 2)]),
        vec![Frame::OK; 2]
    );
    let snap = a
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    b.install_snapshot(&snap.meta, snap.snapshot).await.unwrap();
    for sm in [&mut a, &mut b] {
        let replies = apply_each(sm, vec![part(3, 2, 2), assemble(4, 2)]);
        assert_eq!(replies, vec![Frame::OK, Frame::OK]);
    }
    assert_eq!(get(&kv_a, "big", 10), Some(value.clone()));
    assert_eq!(snapshot_bytes(&kv_a), snapshot_bytes(&kv_b));

    // An upload cut short by a new term is lost everywhere, with the same reply.
    for sm in [&mut a, &mut b] {
        apply_each(sm, vec![part(5, 0, 2), part(6, 1, 2)]);
        let replies = apply_each(
            sm,
            vec![
                Entry::new_blank(log_id(3, 7)),
                part(8, 2, 2),
                assemble(9, 2),
            ],
        );
        assert_eq!(replies[2], Frame::error(raft::uploads::LOST));
        assert_eq!(sm.upload_bytes(), 0);
    }
}

/// A tmpfs mounted for one test, unmounted when dropped. Mounting needs root: without it
/// the test fails and says so, unless `REDRAFT_JEPSEN_SKIP=1` (which skips every test that
/// needs root) is set.
struct Tmpfs {
    dir: TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = TempDir::new().unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("run mount");
        if out.status.success() {
            return Some(Tmpfs { dir });
        }
        let why = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if std::env::var_os("REDRAFT_JEPSEN_SKIP").is_some() {
            eprintln!("SKIPPED: cannot mount a tmpfs ({why}) and REDRAFT_JEPSEN_SKIP is set");
            return None;
        }
        panic!("mounting a tmpfs needs root ({why}); set REDRAFT_JEPSEN_SKIP=1 to skip");
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Fills the file system holding `dir` with a ballast file until `leave` bytes are free.
fn fill(dir: &Path, leave: u64) -> std::fs::File {
    use std::io::Write;
    let s = rustix::fs::statvfs(dir).unwrap();
    let free = s.f_bavail * s.f_frsize;
    let mut f = std::fs::File::create(dir.join("ballast")).unwrap();
    let chunk = vec![7u8; 64 << 10];
    let mut left = free.saturating_sub(leave);
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        f.write_all(&chunk[..n]).unwrap();
        left -= n as u64;
    }
    f.sync_all().unwrap();
    f
}

/// A full disk is a state, not a death: below its low-water mark of free space the log
/// stops handing sled anything, appends wait (openraft never sees an error), the log says
/// why, reads go on, and once space is freed the flusher reopens the database, rewrites
/// what it had not flushed, and every waiting append completes. Nothing written before,
/// during or after is lost, and nothing is reported behind at the next start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stalls_the_log_until_space_is_freed() {
    let Some(fs) = Tmpfs::mount("48m") else {
        return;
    };
    let dir = fs.path().to_path_buf();
    let group = GroupId(1);
    let payload = "x".repeat(2000);
    let line = format!("SET k {payload}");
    let batch =
        |from: u64, to: u64| -> Vec<Entry> { (from..=to).map(|i| write(1, i, 0, &line)).collect() };
    {
        let db = LogDb::open(&dir.join("sled")).unwrap();
        let opened = raft::open(&db, group, &dir, new_kv()).unwrap();
        let (mut log, _sm) = (opened.log, opened.sm);
        let watch = db.health();
        let health = || watch.borrow().clone();
        append(&mut log, batch(1, 100))
            .await
            .await
            .unwrap()
            .unwrap();

        let ballast = fill(&dir, raft::log_store::LOW_WATER / 4);
        // Enough to need new space whatever sled had in hand.
        let mut pending = Vec::new();
        for start in (101..=1100).step_by(100) {
            pending.push(append(&mut log, batch(start, start + 99)).await);
        }
        let started = Instant::now();
        let stalled = loop {
            if matches!(health(), raft::Health::Stalled { .. }) {
                break true;
            }
            if started.elapsed() > Duration::from_secs(10) {
                break false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(stalled, "the log never reported the full disk");
        let raft::Health::Stalled { cause } = health() else {
            unreachable!()
        };
        assert!(cause.contains("No space left on device"), "{cause}");
        // Nothing was reported flushed, and nothing failed.
        for rx in &mut pending {
            assert!(rx.try_recv().is_err(), "an append completed on a full disk");
        }
        // Reads go on, from sled and from memory.
        assert_eq!(log.try_get_log_entries(1..=1100).await.unwrap().len(), 1100);
        assert_eq!(
            log.get_log_state().await.unwrap().last_log_id,
            Some(log_id(1, 1100))
        );

        drop(ballast);
        std::fs::remove_file(dir.join("ballast")).unwrap();
        for rx in pending {
            let done = tokio::time::timeout(Duration::from_secs(20), rx)
                .await
                .expect("appends complete once space is freed");
            done.unwrap().unwrap();
        }
        assert_eq!(health(), raft::Health::Ok);
        append(&mut log, batch(1101, 1200))
            .await
            .await
            .unwrap()
            .unwrap();
    }
    let opened = reopen(&dir, group, CHECKED).unwrap();
    assert_eq!(opened.behind, None);
    let mut log = opened.log;
    let entries = log.try_get_log_entries(1..=1200).await.unwrap();
    assert_eq!(entries.len(), 1200);
    assert!(entries
        .iter()
        .enumerate()
        .all(|(i, e)| e.log_id.index == i as u64 + 1));
}

/// A committed id is written only once the log holds the entries it names; one found
/// past the log's end anyway (left by an older redraft, or by damage) reads as the log's
/// last id, so a restart replays only what is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_id_never_names_entries_the_log_lacks() {
    let dir = TempDir::new().unwrap();
    let group = GroupId(12);
    write_log(dir.path(), group, 10).await;
    // Saves committed id 30 and a vote (which waits for a flush).
    async fn commit_30(log: &mut LogStore) {
        log.save_committed(Some(log_id(3, 30))).await.unwrap();
        log.save_vote(&raft::typ::Vote::new_committed(3, 1))
            .await
            .unwrap();
    }
    {
        let mut opened = reopen(dir.path(), group, UNCHECKED).unwrap();
        // Index 30 is not in the log: the id waits (in memory) instead of being written.
        commit_30(&mut opened.log).await;
    }
    let mut opened = reopen(dir.path(), group, UNCHECKED).unwrap();
    assert_eq!(opened.log.read_committed().await.unwrap(), None);
    let entries = (11..=30).map(|i| write(3, i, 0, "SET k v")).collect();
    append(&mut opened.log, entries)
        .await
        .await
        .unwrap()
        .unwrap();
    commit_30(&mut opened.log).await;
    drop(opened);

    // The end of the log is lost; the committed id survived.
    raw_sled(dir.path(), |db| {
        let log = db.open_tree("group-12/log").unwrap();
        for key in 11..=30u64 {
            log.remove(key.to_be_bytes()).unwrap();
        }
    });
    let mut opened = reopen(dir.path(), group, UNCHECKED).unwrap();
    assert_eq!(
        opened.log.read_committed().await.unwrap(),
        Some(log_id(3, 10)),
        "the committed id is clamped to the log's last entry"
    );
}
