//! A small in-memory log store and state machine for the network tests: the log is a
//! `BTreeMap`, the state a `BTreeMap<String, String>` fed by `key=value` entries, snapshots
//! are that map in JSON.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io::{self, Cursor};
use std::ops::RangeBounds;
use std::sync::{Arc, Mutex, MutexGuard};

use futures_util::{Stream, StreamExt};
use openraft::storage::{EntryResponder, IOFlushed, LogState, RaftLogStorage, RaftStateMachine};
use openraft::type_config::alias::{LogIdOf, SnapshotMetaOf, StoredMembershipOf, VoteOf};
use openraft::{EntryPayload, RaftLogReader, RaftSnapshotBuilder};

openraft::declare_raft_types!(
    /// Test config: `key=value` strings in, strings out, BasicNode addresses are gRPC
    /// `host:port`.
    pub Tc:
        D = String,
        R = String,
);

pub type Entry = openraft::type_config::alias::EntryOf<Tc>;
type LogId = LogIdOf<Tc>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Default)]
struct LogData {
    vote: Option<VoteOf<Tc>>,
    committed: Option<LogId>,
    purged: Option<LogId>,
    log: BTreeMap<u64, Entry>,
}

/// The log, shared between the store and its readers.
#[derive(Clone, Default)]
pub struct MemLog(Arc<Mutex<LogData>>);

impl RaftLogReader<Tc> for MemLog {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        Ok(lock(&self.0)
            .log
            .range(range)
            .map(|(_, e)| e.clone())
            .collect())
    }

    async fn read_vote(&mut self) -> Result<Option<VoteOf<Tc>>, io::Error> {
        Ok(lock(&self.0).vote)
    }
}

impl RaftLogStorage<Tc> for MemLog {
    type LogReader = MemLog;

    async fn get_log_state(&mut self) -> Result<LogState<Tc>, io::Error> {
        let d = lock(&self.0);
        let last = d.log.values().next_back().map(|e| e.log_id).or(d.purged);
        Ok(LogState {
            last_purged_log_id: d.purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &VoteOf<Tc>) -> Result<(), io::Error> {
        lock(&self.0).vote = Some(*vote);
        Ok(())
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        lock(&self.0).committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        Ok(lock(&self.0).committed)
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<Tc>) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        {
            let mut d = lock(&self.0);
            for e in entries {
                d.log.insert(e.log_id.index, e);
            }
        }
        callback.io_completed(Ok(()));
        Ok(())
    }

    async fn truncate_after(&mut self, last: Option<LogId>) -> Result<(), io::Error> {
        let mut d = lock(&self.0);
        let from = last.map_or(0, |l| l.index + 1);
        d.log.split_off(&from);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        let mut d = lock(&self.0);
        let keep = d.log.split_off(&(log_id.index + 1));
        d.log = keep;
        d.purged = Some(log_id);
        Ok(())
    }
}

#[derive(Default)]
struct SmData {
    applied: Option<LogId>,
    membership: StoredMembershipOf<Tc>,
    kv: BTreeMap<String, String>,
    snapshot: Option<(SnapshotMetaOf<Tc>, Vec<u8>)>,
    installed: usize,
}

/// The state machine; clones share it, so a test can look inside.
#[derive(Clone, Default)]
pub struct MemSm(Arc<Mutex<SmData>>);

impl MemSm {
    /// The current key-value map.
    pub fn kv(&self) -> BTreeMap<String, String> {
        lock(&self.0).kv.clone()
    }

    /// How many snapshots were installed from a leader.
    pub fn installed(&self) -> usize {
        lock(&self.0).installed
    }
}

impl RaftSnapshotBuilder<Tc> for MemSm {
    type SnapshotData = Cursor<Vec<u8>>;

    async fn build_snapshot(&mut self) -> Result<MemSnapshot, io::Error> {
        let mut d = lock(&self.0);
        let data = serde_json::to_vec(&d.kv).map_err(io::Error::other)?;
        let meta = SnapshotMetaOf::<Tc> {
            last_log_id: d.applied,
            last_membership: d.membership.clone(),
        };
        d.snapshot = Some((meta.clone(), data.clone()));
        Ok(MemSnapshot {
            meta,
            snapshot: Cursor::new(data),
        })
    }
}

type MemSnapshot = openraft::type_config::alias::SnapshotOf<Tc, Cursor<Vec<u8>>>;

impl RaftStateMachine<Tc> for MemSm {
    type SnapshotData = Cursor<Vec<u8>>;
    type SnapshotBuilder = MemSm;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId>, StoredMembershipOf<Tc>), io::Error> {
        let d = lock(&self.0);
        Ok((d.applied, d.membership.clone()))
    }

    async fn apply<S>(&mut self, mut entries: S) -> Result<(), io::Error>
    where
        S: Stream<Item = Result<EntryResponder<Tc>, io::Error>> + Unpin + Send,
    {
        while let Some(item) = entries.next().await {
            let (entry, responder) = item?;
            let reply = {
                let mut d = lock(&self.0);
                d.applied = Some(entry.log_id);
                match entry.payload {
                    EntryPayload::Blank => String::new(),
                    EntryPayload::Normal(s) => {
                        let (k, v) = s.split_once('=').unwrap_or((s.as_str(), ""));
                        d.kv.insert(k.to_owned(), v.to_owned());
                        "OK".to_owned()
                    }
                    EntryPayload::Membership(m) => {
                        d.membership = openraft::StoredMembership::new(Some(entry.log_id), m);
                        String::new()
                    }
                }
            };
            if let Some(r) = responder {
                r.send(reply);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMetaOf<Tc>,
        data: Cursor<Vec<u8>>,
    ) -> Result<(), io::Error> {
        let bytes = data.into_inner();
        let kv: BTreeMap<String, String> =
            serde_json::from_slice(&bytes).map_err(io::Error::other)?;
        let mut d = lock(&self.0);
        d.kv = kv;
        d.applied = meta.last_log_id;
        d.membership = meta.last_membership.clone();
        d.snapshot = Some((meta.clone(), bytes));
        d.installed += 1;
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<MemSnapshot>, io::Error> {
        Ok(lock(&self.0)
            .snapshot
            .clone()
            .map(|(meta, data)| MemSnapshot {
                meta,
                snapshot: Cursor::new(data),
            }))
    }
}
