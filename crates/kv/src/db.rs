//! The keyspace: key → [`Entry`] (value and absolute expiry), with the bookkeeping that
//! expiry and `WATCH` need.
//!
//! Invariants:
//! - Time comes in as an argument (`now_ms`); a key whose `expire_at <= now_ms` is absent
//!   to every method. Read methods (`&self`) never delete; write methods (`&mut self`)
//!   remove an expired key they meet, which is deterministic because writes are applied
//!   with the `now_ms` stamped into their log entry.
//! - Iteration order is insertion order with `swap_remove` on delete: a function of the
//!   commands applied only, never of a hash seed.
//! - Every change to a key goes through [`Db::insert`], [`Db::remove`] or, for in-place
//!   changes through [`Db::get_mut`], an explicit [`Db::touch`] (Redis's
//!   `signalModifiedKey`). The touch journal is what `WATCH` compares against.

use std::collections::VecDeque;

use crate::bytes::CompactBytes;
use crate::claim::Claim;
use crate::error::Result;
use crate::slots::SlotIndex;
use crate::value::{BuildHasher, Map, Set, Value};

/// No expiry. Never a real expiry: a key with an expiry in the past is deleted at once.
const NO_EXPIRE: i64 = i64::MIN;
/// How many recent touches `WATCH` can see. A `WATCH` older than this aborts its `EXEC`.
pub const JOURNAL_LEN: usize = 1 << 16;

/// A value and its expiry.
#[derive(Clone, Debug)]
pub struct Entry {
    pub value: Value,
    expire_at: i64,
}

impl Entry {
    pub fn new(value: Value) -> Self {
        Entry {
            value,
            expire_at: NO_EXPIRE,
        }
    }

    /// Absolute expiry in Unix milliseconds, if any.
    pub fn expire_at(&self) -> Option<i64> {
        (self.expire_at != NO_EXPIRE).then_some(self.expire_at)
    }

    fn is_live(&self, now_ms: i64) -> bool {
        self.expire_at == NO_EXPIRE || self.expire_at > now_ms
    }

    /// The stored expiry, `i64::MIN` for none (snapshots write it as is).
    pub(crate) fn raw_expire_at(&self) -> i64 {
        self.expire_at
    }

    /// An entry with a stored expiry as [`Entry::raw_expire_at`] returns it.
    pub(crate) fn with_raw_expire_at(value: Value, expire_at: i64) -> Self {
        Entry { value, expire_at }
    }
}

/// A key `WATCH`ed by a connection: where the journal stood and what the key was then.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watch {
    pub key: CompactBytes,
    pub seq: u64,
    /// The key existed and had an expiry when watched: if it has expired by `EXEC`,
    /// the transaction aborts (Redis 7's rule).
    pub volatile_live: bool,
    pub existed: bool,
}

/// Counters for `INFO`.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub expired_keys: u64,
}

/// One database (Redis's db 0). A clone behaves exactly as the original (snapshots clone
/// under the lock and serialize the copy elsewhere); [`crate::snapshot`] writes every
/// field, so a field added here is added there too.
#[derive(Clone)]
pub struct Db {
    pub(crate) keys: Map<CompactBytes, Entry>,
    /// Keys that have an expiry, for active expiry sampling.
    pub(crate) volatile: Set<CompactBytes>,
    /// Keys by hash slot (derived from `keys`; rebuilt when a snapshot is loaded).
    slots: SlotIndex,
    /// Number of touches so far.
    pub(crate) seq: u64,
    /// Fingerprints of the last [`JOURNAL_LEN`] touched keys; `FLUSH_MARK` for a flush.
    pub(crate) journal: VecDeque<u64>,
    pub stats: Stats,
    /// The slots this database serves (see [`crate::claim`]); `None`: every slot.
    pub(crate) claim: Option<Claim>,
    /// The cluster map, in the meta group's database only (see
    /// [`crate::Proposal::Meta`]).
    pub(crate) meta: Option<meta::MetaState>,
    /// The users and their rules, in the meta group's database only (see
    /// [`crate::Proposal::Acl`]); `None` until the first change.
    pub(crate) acl: Option<meta::acl::Users>,
    /// Slot moves this group takes part in (see [`crate::moves`]).
    pub(crate) moves: crate::moves::Moves,
}

const FLUSH_MARK: u64 = 0;

impl Default for Db {
    fn default() -> Self {
        Db::new()
    }
}

impl Db {
    pub fn new() -> Self {
        Db {
            keys: Map::with_hasher(BuildHasher::new()),
            volatile: Set::with_hasher(BuildHasher::new()),
            slots: SlotIndex::default(),
            seq: 0,
            journal: VecDeque::new(),
            stats: Stats::default(),
            claim: None,
            meta: None,
            acl: None,
            moves: crate::moves::Moves::default(),
        }
    }

    /// Number of keys in hash slot `slot`, including expired ones not yet removed (as
    /// `DBSIZE` counts, and Redis's `CLUSTER COUNTKEYSINSLOT`). O(1).
    pub fn count_in_slot(&self, slot: types::Slot) -> usize {
        self.slots.positions(slot.0).len()
    }

    /// Up to `count` live keys of hash slot `slot` (`CLUSTER GETKEYSINSLOT`), newest place
    /// first. O(keys in the slot).
    pub fn keys_in_slot(&self, slot: types::Slot, count: usize, now_ms: i64) -> Vec<&CompactBytes> {
        self.slots
            .positions(slot.0)
            .iter()
            .rev()
            .filter_map(|&i| self.keys.get_index(i as usize))
            .filter(|(_, e)| e.is_live(now_ms))
            .map(|(k, _)| k)
            .take(count)
            .collect()
    }

    /// Number of keys, including expired ones not yet removed (as Redis's `DBSIZE`).
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Number of keys with an expiry.
    pub fn volatile_len(&self) -> usize {
        self.volatile.len()
    }

    /// The live entry of `key`.
    pub fn entry(&self, key: &[u8], now_ms: i64) -> Option<&Entry> {
        self.keys.get(key).filter(|e| e.is_live(now_ms))
    }

    /// The live value of `key`.
    pub fn get(&self, key: &[u8], now_ms: i64) -> Option<&Value> {
        self.entry(key, now_ms).map(|e| &e.value)
    }

    /// True if `key` holds a live value.
    pub fn contains(&self, key: &[u8], now_ms: i64) -> bool {
        self.entry(key, now_ms).is_some()
    }

    /// The live value of `key`, for changing in place. Removes the key first if it has
    /// expired. The caller must [`Db::touch`] the key if it changes it, and remove it if
    /// it leaves an empty collection ([`Db::remove_if_empty`]).
    pub fn get_mut(&mut self, key: &[u8], now_ms: i64) -> Option<&mut Value> {
        self.purge_if_expired(key, now_ms);
        self.keys.get_mut(key).map(|e| &mut e.value)
    }

    /// The value of `key`, created with `make` if absent (or expired). Not touched: the
    /// caller touches after changing it.
    pub fn get_or_insert_with(
        &mut self,
        key: &[u8],
        now_ms: i64,
        make: impl FnOnce() -> Value,
    ) -> &mut Value {
        self.purge_if_expired(key, now_ms);
        let index = match self.keys.get_index_of(key) {
            Some(i) => i,
            None => {
                let index = self
                    .keys
                    .insert_full(CompactBytes::new(key), Entry::new(make()))
                    .0;
                self.index_new(index);
                index
            }
        };
        &mut self.keys[index].value
    }

    /// Like [`Db::get_or_insert_with`], checking the type with `check` first: an existing
    /// value of another type is a `WRONGTYPE` error and nothing is created.
    pub fn get_or_create<T: ?Sized>(
        &mut self,
        key: &[u8],
        now_ms: i64,
        make: impl FnOnce() -> Value,
        check: impl Fn(&mut Value) -> Result<&mut T>,
    ) -> Result<&mut T> {
        if let Some(v) = self.get_mut(key, now_ms) {
            check(v)?;
        }
        check(self.get_or_insert_with(key, now_ms, make))
    }

    /// Sets `key` to `value`, dropping any expiry. Returns the old live entry.
    pub fn insert(&mut self, key: &[u8], value: Value, now_ms: i64) -> Option<Entry> {
        self.purge_if_expired(key, now_ms);
        self.touch(key);
        let old = self.put(key, Entry::new(value));
        if old.as_ref().is_some_and(|e| e.expire_at().is_some()) {
            self.volatile.swap_remove(key);
        }
        old
    }

    /// Sets `key` to `value`, keeping its expiry if it has one (`SET ... KEEPTTL`).
    pub fn insert_keep_ttl(&mut self, key: &[u8], value: Value, now_ms: i64) {
        self.purge_if_expired(key, now_ms);
        self.touch(key);
        match self.keys.get_mut(key) {
            Some(e) => e.value = value,
            None => {
                self.put(key, Entry::new(value));
            }
        }
    }

    /// Inserts a whole entry, expiry included (`RENAME`, `COPY`, snapshot load).
    pub fn insert_entry(&mut self, key: &[u8], entry: Entry, now_ms: i64) {
        let expire_at = entry.expire_at();
        self.insert(key, entry.value, now_ms);
        self.set_expire(key, expire_at, now_ms);
    }

    /// Removes `key` if it is live; returns its entry.
    pub fn remove(&mut self, key: &[u8], now_ms: i64) -> Option<Entry> {
        self.purge_if_expired(key, now_ms);
        let entry = self.take(key)?;
        if entry.expire_at().is_some() {
            self.volatile.swap_remove(key);
        }
        self.touch(key);
        Some(entry)
    }

    /// Removes `key` if it holds an empty collection (after a pop or a delete of members).
    pub fn remove_if_empty(&mut self, key: &[u8]) {
        if self
            .keys
            .get(key)
            .is_some_and(|e| e.value.is_empty_collection())
        {
            if let Some(entry) = self.take(key) {
                if entry.expire_at().is_some() {
                    self.volatile.swap_remove(key);
                }
            }
            self.touch(key);
        }
    }

    /// The expiry of a live key: `None` if the key is absent, `Some(None)` if it has none.
    pub fn expire_at(&self, key: &[u8], now_ms: i64) -> Option<Option<i64>> {
        self.entry(key, now_ms).map(|e| e.expire_at())
    }

    /// Sets or clears the expiry of a live key. An expiry at or before `now_ms` deletes the
    /// key. Returns false if the key is absent. Touches the key.
    pub fn set_expire(&mut self, key: &[u8], at: Option<i64>, now_ms: i64) -> bool {
        self.purge_if_expired(key, now_ms);
        let Some(entry) = self.keys.get_mut(key) else {
            return false;
        };
        match at {
            Some(at) if at <= now_ms => {
                self.remove(key, now_ms);
                return true;
            }
            Some(at) => {
                entry.expire_at = at;
                if !self.volatile.contains(key) {
                    self.volatile.insert(CompactBytes::new(key));
                }
            }
            None => {
                entry.expire_at = NO_EXPIRE;
                self.volatile.swap_remove(key);
            }
        }
        self.touch(key);
        true
    }

    /// The cluster map, if this is the meta group's database and it has one.
    pub fn meta(&self) -> Option<&meta::MetaState> {
        self.meta.as_ref()
    }

    /// The users, if this is the meta group's database and one was ever changed.
    pub fn acl(&self) -> Option<&meta::acl::Users> {
        self.acl.as_ref()
    }

    /// The slots this database serves, if it has been given a claim.
    pub fn claim(&self) -> Option<&Claim> {
        self.claim.as_ref()
    }

    /// True if a write for `slot` is served here.
    pub fn serves(&self, slot: types::Slot) -> bool {
        self.claim.as_ref().is_none_or(|c| c.covers(slot))
    }

    /// Removes every key.
    pub fn flush(&mut self) {
        self.keys = Map::with_hasher(BuildHasher::new());
        self.volatile = Set::with_hasher(BuildHasher::new());
        self.slots.clear();
        self.journal_push(FLUSH_MARK);
    }

    /// Records that `key` changed, for `WATCH`.
    pub fn touch(&mut self, key: &[u8]) {
        self.journal_push(fingerprint(key));
    }

    fn journal_push(&mut self, print: u64) {
        self.seq += 1;
        if self.journal.len() == JOURNAL_LEN {
            self.journal.pop_front();
        }
        self.journal.push_back(print);
    }

    /// Starts watching `key`.
    pub fn watch(&self, key: &[u8], now_ms: i64) -> Watch {
        let entry = self.entry(key, now_ms);
        Watch {
            key: CompactBytes::new(key),
            seq: self.seq,
            volatile_live: entry.is_some_and(|e| e.expire_at().is_some()),
            existed: entry.is_some(),
        }
    }

    /// True if a watched key may have changed since it was watched (so `EXEC` aborts).
    /// Conservative: a fingerprint collision or a watch older than the journal also say
    /// "changed", which a client handles like any other aborted transaction.
    pub fn watch_is_dirty(&self, watch: &Watch, now_ms: i64) -> bool {
        let since = self.seq.saturating_sub(watch.seq);
        if since as usize > self.journal.len() {
            return true;
        }
        let print = fingerprint(&watch.key);
        let recent = self.journal.iter().rev().take(since as usize);
        for &p in recent {
            if p == print || (p == FLUSH_MARK && watch.existed) {
                return true;
            }
        }
        watch.volatile_live
            && !self.contains(&watch.key, now_ms)
            && self.keys.contains_key(&*watch.key)
    }

    /// Sets `key`'s entry, keeping the slot index: a new key joins its slot's list, a
    /// replaced one keeps its place. Returns the entry replaced.
    fn put(&mut self, key: &[u8], entry: Entry) -> Option<Entry> {
        let (index, old) = self.keys.insert_full(CompactBytes::new(key), entry);
        if old.is_none() {
            self.index_new(index);
        }
        old
    }

    /// Enters the new key at map position `index` in its slot's list.
    fn index_new(&mut self, index: usize) {
        let Some((key, _)) = self.keys.get_index(index) else {
            return;
        };
        self.slots.add(types::key_slot(key).0, index);
    }

    /// Removes `key` from the map (which moves its last key into the hole) and from its
    /// slot's list (which moves that list's last place into the hole), keeping every
    /// entry's recorded place and every list's positions right.
    fn take(&mut self, key: &[u8]) -> Option<Entry> {
        let last = self.keys.len().checked_sub(1)?;
        let (index, key, entry) = self.keys.swap_remove_full(key)?;
        let pos = self.slots.places.swap_remove(index);
        if let Some(filled) = self.slots.remove(types::key_slot(&key).0, pos) {
            // The key whose place moved may be the map's last, which now sits at `index`.
            let at = if filled as usize == last {
                index
            } else {
                filled as usize
            };
            self.slots.places[at] = pos;
        }
        if let Some((moved, _)) = self.keys.get_index(index) {
            let slot = types::key_slot(moved).0;
            self.slots.moved(slot, self.slots.places[index], index);
        }
        Some(entry)
    }

    /// Every key of hash slot `slot`, expired ones not yet removed included.
    pub(crate) fn raw_keys_in_slot(&self, slot: types::Slot) -> Vec<&CompactBytes> {
        self.slots
            .positions(slot.0)
            .iter()
            .filter_map(|&i| self.keys.get_index(i as usize).map(|(k, _)| k))
            .collect()
    }

    /// Puts a key a slot move brought in, expiry as it is (even if past: the next write
    /// or active expiry removes it, as it would have at the source).
    pub(crate) fn put_moved(&mut self, key: &[u8], entry: Entry) {
        let volatile = entry.expire_at().is_some();
        if let Some(old) = self.put(key, entry) {
            if old.expire_at().is_some() && !volatile {
                self.volatile.swap_remove(key);
            }
        }
        if volatile {
            self.volatile.insert(CompactBytes::new(key));
        }
        self.touch(key);
    }

    /// Removes a key a slot move took away, expired or not.
    pub(crate) fn remove_moved(&mut self, key: &[u8]) {
        if let Some(entry) = self.take(key) {
            if entry.expire_at().is_some() {
                self.volatile.swap_remove(key);
            }
            self.touch(key);
        }
    }

    /// Builds the slot index from the map (after a snapshot is loaded).
    pub(crate) fn rebuild_slots(&mut self) {
        self.slots.clear();
        for index in 0..self.keys.len() {
            self.index_new(index);
        }
    }

    fn purge_if_expired(&mut self, key: &[u8], now_ms: i64) {
        if self.keys.get(key).is_some_and(|e| !e.is_live(now_ms)) {
            self.take(key);
            self.volatile.swap_remove(key);
            self.stats.expired_keys += 1;
            self.touch(key);
        }
    }

    /// Removes `key` if it has expired by `now_ms` (active expiry's log entry applies this).
    pub fn expire_if_due(&mut self, key: &[u8], now_ms: i64) -> bool {
        let due = self.keys.get(key).is_some_and(|e| !e.is_live(now_ms));
        self.purge_if_expired(key, now_ms);
        due
    }

    /// Active expiry, the sampling half: up to `samples` keys with an expiry, picked from
    /// positions derived from `seed`, of which the expired ones are returned. The caller
    /// proposes their removal through the write path (Redis samples 20 per round and
    /// repeats while more than a quarter were expired).
    pub fn sample_expired(
        &self,
        now_ms: i64,
        seed: u64,
        samples: usize,
    ) -> (usize, Vec<CompactBytes>) {
        let n = self.volatile.len();
        if n == 0 {
            return (0, Vec::new());
        }
        let mut rng = crate::rng::Rng::new(seed);
        let mut expired = Vec::new();
        let take = samples.min(n);
        let start = rng.below(n as u64) as usize;
        for i in 0..take {
            let key = &self.volatile[(start + i) % n];
            if self.keys.get(&**key).is_some_and(|e| !e.is_live(now_ms)) {
                expired.push(key.clone());
            }
        }
        (take, expired)
    }

    /// Key at position `i` in iteration order (for `SCAN`, `KEYS`, `RANDOMKEY`).
    pub fn key_at(&self, i: usize) -> Option<(&CompactBytes, &Entry)> {
        self.keys.get_index(i)
    }

    /// Every key with its entry, in iteration order (expired ones included; filter with
    /// [`Db::is_live_entry`]).
    pub fn iter(&self) -> impl Iterator<Item = (&CompactBytes, &Entry)> {
        self.keys.iter()
    }

    pub fn is_live_entry(entry: &Entry, now_ms: i64) -> bool {
        entry.is_live(now_ms)
    }

    /// Number of keys with an expiry, and the approximate heap bytes of the keyspace (for
    /// `INFO memory`; the process's resident size is the real figure).
    pub fn approx_memory(&self) -> usize {
        self.keys.capacity() * (std::mem::size_of::<(CompactBytes, Entry)>() + 16)
    }
}

/// A fixed 64-bit FNV-1a fingerprint: the same on every node and every run, never 0.
pub fn fingerprint(key: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use types::Slot;

    impl Db {
        /// Fails unless the slot index says exactly what the map holds (see
        /// [`crate::slots`]).
        fn check_slots(&self) {
            let mut listed = 0;
            assert_eq!(
                self.slots.places.len(),
                self.keys.len(),
                "places mirror the map"
            );
            for (index, key) in self.keys.keys().enumerate() {
                let slot = types::key_slot(key);
                let positions = self.slots.positions(slot.0);
                let place = self.slots.places[index];
                assert_eq!(
                    positions.get(place as usize).copied(),
                    Some(index as u32),
                    "key {key:?} at {index} is not at place {place} of slot {slot}"
                );
                if place == 0 {
                    listed += positions.len();
                }
            }
            assert_eq!(listed, self.keys.len(), "every listed position is a key");
            let in_use = self
                .keys
                .keys()
                .map(|k| types::key_slot(k))
                .collect::<std::collections::BTreeSet<_>>();
            assert_eq!(self.slots.slots(), in_use.len(), "no empty slot is kept");
        }
    }

    #[test]
    fn the_slot_index_follows_every_change() {
        // Keys in a handful of slots (hash tags), so lists grow, shrink and reorder.
        let mut rng = crate::rng::Rng::new(7);
        let mut db = Db::new();
        let key = |rng: &mut crate::rng::Rng| {
            format!("{{t{}}}k{}", rng.below(4), rng.below(40)).into_bytes()
        };
        for step in 0..20_000i64 {
            let k = key(&mut rng);
            match rng.below(10) {
                0..=3 => {
                    db.insert(&k, Value::str(b"v"), step);
                }
                4 => {
                    db.insert_keep_ttl(&k, Value::str(b"w"), step);
                }
                5 => {
                    db.get_or_insert_with(&k, step, || Value::str(b"x"));
                }
                6 | 7 => {
                    db.remove(&k, step);
                }
                8 => {
                    db.set_expire(&k, Some(step + rng.below(3) as i64), step);
                }
                _ if rng.below(200) == 0 => db.flush(),
                _ => {
                    db.expire_if_due(&k, step);
                }
            }
            db.check_slots();
        }
        assert!(db.len() > 10, "the run ends with keys in place");
        let mut copy = db.clone();
        copy.rebuild_slots();
        copy.check_slots();
        for slot in 0..Slot::COUNT {
            let slot = Slot(slot);
            assert_eq!(copy.count_in_slot(slot), db.count_in_slot(slot));
        }
        // A slot's count and list agree with a scan of the keyspace.
        let slot = types::key_slot(b"{t1}");
        let scanned = db
            .keys
            .keys()
            .filter(|k| types::key_slot(k) == slot)
            .count();
        assert_eq!(db.count_in_slot(slot), scanned);
        assert_eq!(
            db.keys_in_slot(slot, usize::MAX, i64::MIN + 1).len(),
            scanned
        );
    }

    #[test]
    fn expired_keys_are_absent_and_removed_by_writes() {
        let mut db = Db::new();
        db.insert(b"k", Value::str(b"v"), 0);
        assert!(db.set_expire(b"k", Some(100), 0));
        assert!(db.get(b"k", 99).is_some());
        assert!(db.get(b"k", 100).is_none());
        assert_eq!(db.len(), 1, "a read does not delete");
        assert!(db.get_mut(b"k", 100).is_none());
        assert_eq!(db.len(), 0, "a write does");
        assert_eq!(db.volatile_len(), 0);
    }

    #[test]
    fn watch_sees_touches_and_flushes() {
        let mut db = Db::new();
        let w = db.watch(b"a", 0);
        db.insert(b"b", Value::str(b"1"), 0);
        assert!(!db.watch_is_dirty(&w, 0));
        db.insert(b"a", Value::str(b"1"), 0);
        assert!(db.watch_is_dirty(&w, 0));
        let w = db.watch(b"a", 0);
        db.flush();
        assert!(db.watch_is_dirty(&w, 0));
        let w = db.watch(b"nothing", 0);
        db.flush();
        assert!(
            !db.watch_is_dirty(&w, 0),
            "a flush does not touch a key that was absent"
        );
    }

    #[test]
    fn watch_of_expiring_key() {
        let mut db = Db::new();
        db.insert(b"k", Value::str(b"v"), 0);
        db.set_expire(b"k", Some(50), 0);
        let w = db.watch(b"k", 10);
        assert!(!db.watch_is_dirty(&w, 40));
        assert!(db.watch_is_dirty(&w, 60));
    }
}
