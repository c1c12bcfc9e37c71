//! A [`Db`] as bytes: [`Db::write_snapshot`] and [`Db::read_snapshot`].
//!
//! A snapshot is what a Raft replica loads instead of replaying the log from the start,
//! so a restored database must behave exactly like the one that was written: the same
//! replies to every later command and the same state after every later write. That means
//! more than the data:
//!
//! - keys in iteration order (`SCAN`, `KEYS`, `RANDOMKEY` and seeded picks depend on it),
//!   each with its raw expiry, including keys that have expired but were not yet removed
//!   (`DBSIZE` counts them, and a later write removes them and counts `expired_keys`);
//! - collections with their members in order and their encoding flag (`big`: a hash that
//!   became a `hashtable` never goes back, and it deletes with `swap_remove` from then on);
//! - the volatile set in its own order (active expiry samples positions in it);
//! - the `WATCH` journal: the touch counter `seq` and the fingerprints ring, so a
//!   transaction watched before the snapshot gets the same `EXEC` verdict after it;
//! - the `INFO` counters in [`crate::db::Stats`].
//!
//! A sorted set's `order` index is rebuilt from its scores. Hash table capacities are not
//! kept (they show only in the approximate `INFO memory` figure).
//!
//! Format (integers little-endian): the magic `REDRAFTKV`, a `u32` version, then
//! `stats.expired_keys: u64`, `seq: u64`, `u32 n` journal fingerprints (`u64` each),
//! `u64 n` keys, each `key`, `expire_at: i64`, value; `u64 n` volatile keys; the slot
//! claim (`u8` 0 for none, or 1 then `u64 epoch`, `u32 n` ranges of two `u16`s; since
//! version 2); the cluster map (`u8` 0 for none, or 1 then the map's bytes as a byte
//! string, [`meta::MetaState::encode`]; since version 3); the users (the same way,
//! [`meta::acl::Users::encode`]; since version 4); the slot moves (a byte string,
//! `moves::encode_moves`; since version 5); finally a 64-bit FNV-1a checksum of every byte before it. A byte string is `u32 len` + bytes. A
//! value is a tag, then for `0` string: bytes; `1` list: `u32 n` items; `2` hash: `u8 big`,
//! `u32 n` field/value pairs; `3` set: `u8 big`, `u32 n` members; `4` sorted set: `u8 big`,
//! `u32 n` member and `f64` score bits.
//!
//! Invariants: reading never panics and allocates only as bytes actually arrive (a length
//! prefix alone cannot make it reserve gigabytes). A snapshot that is truncated, has
//! trailing bytes, fails its checksum, or breaks an invariant of [`Db`] (a key twice, a
//! volatile key without an expiry or the reverse, a NaN score, a journal longer than
//! [`JOURNAL_LEN`]) is a [`SnapshotError`], never a database that misbehaves later.
//! Whoever adds state to [`Db`] that can change a reply adds it here, and a version.

use std::collections::{BTreeSet, VecDeque};
use std::io::{self, Read, Write};
use std::sync::Arc;

use crate::bytes::CompactBytes;
use crate::db::{Db, Entry, JOURNAL_LEN};
use crate::value::{BuildHasher, Hash, List, Map, Score, Set, SetValue, Value, ZSet};

const MAGIC: &[u8; 9] = b"REDRAFTKV";
/// Version 2 added the slot claim, version 3 the cluster map, version 4 the users,
/// version 5 the slot moves; earlier versions are still read.
const VERSION: u32 = 5;

const STR: u8 = 0;
const LIST: u8 = 1;
const HASH: u8 = 2;
const SET: u8 = 3;
const ZSET: u8 = 4;
/// A string built by `APPEND`/`SETRANGE` (`raw` encoding).
const STR_RAW: u8 = 5;
/// `INCRBYFLOAT`'s result (`embstr` even when it looks like an integer).
const STR_TEXT: u8 = 6;
/// A short string that is not a shared object (`COPY` of a small integer).
const STR_UNSHARED: u8 = 7;

/// Why a snapshot could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("reading snapshot: {0}")]
    Io(#[from] io::Error),
    #[error("not a redraft kv snapshot (bad magic)")]
    BadMagic,
    #[error("unsupported snapshot version {0}")]
    Version(u32),
    #[error("snapshot checksum mismatch")]
    Checksum,
    #[error("corrupt snapshot: {0}")]
    Corrupt(&'static str),
}

impl Db {
    /// Writes everything that affects later replies and state (see the module header).
    /// Buffer `w` if it is a file: this makes many small writes.
    pub fn write_snapshot(&self, w: &mut impl Write) -> io::Result<()> {
        let mut w = Hashing::new(w);
        w.put(MAGIC)?;
        w.put(&VERSION.to_le_bytes())?;
        w.put(&self.stats.expired_keys.to_le_bytes())?;
        w.put(&self.seq.to_le_bytes())?;
        w.len(self.journal.len())?;
        for print in &self.journal {
            w.put(&print.to_le_bytes())?;
        }
        w.put(&(self.keys.len() as u64).to_le_bytes())?;
        for (key, entry) in &self.keys {
            w.bytes(key)?;
            w.put(&entry.raw_expire_at().to_le_bytes())?;
            write_value(&mut w, &entry.value)?;
        }
        w.put(&(self.volatile.len() as u64).to_le_bytes())?;
        for key in &self.volatile {
            w.bytes(key)?;
        }
        match &self.claim {
            None => w.put(&[0])?,
            Some(claim) => {
                w.put(&[1])?;
                w.put(&claim.epoch.to_le_bytes())?;
                w.len(claim.ranges.len())?;
                for (a, b) in &claim.ranges {
                    w.put(&a.0.to_le_bytes())?;
                    w.put(&b.0.to_le_bytes())?;
                }
            }
        }
        match &self.meta {
            None => w.put(&[0])?,
            Some(map) => {
                w.put(&[1])?;
                w.bytes(&map.encode())?;
            }
        }
        match &self.acl {
            None => w.put(&[0])?,
            Some(users) => {
                w.put(&[1])?;
                w.bytes(&users.encode())?;
            }
        }
        let mut moves = Vec::new();
        crate::moves::encode_moves(&mut moves, &self.moves);
        w.bytes(&moves)?;
        let sum = w.hash;
        w.inner.write_all(&sum.to_le_bytes())
    }

    /// Reads a snapshot written by [`Db::write_snapshot`]; the result behaves exactly as
    /// the database that wrote it. Reads `r` to its end (trailing bytes are an error).
    /// Buffer `r` if it is a file.
    pub fn read_snapshot(r: &mut impl Read) -> Result<Db, SnapshotError> {
        let db = Db::read_snapshot_prefix(r)?;
        let mut rest = [0u8; 1];
        if r.read(&mut rest)? != 0 {
            return Err(SnapshotError::Corrupt("trailing bytes"));
        }
        Ok(db)
    }

    /// Reads a snapshot written by [`Db::write_snapshot`] and stops after its checksum,
    /// leaving whatever follows in `r` (a file may hold more sections after it).
    pub fn read_snapshot_prefix(r: &mut impl Read) -> Result<Db, SnapshotError> {
        let mut r = Hashing::new(r);
        if &r.array::<9>()? != MAGIC {
            return Err(SnapshotError::BadMagic);
        }
        let version = r.u32()?;
        if !(1..=VERSION).contains(&version) {
            return Err(SnapshotError::Version(version));
        }
        let mut db = Db::new();
        db.stats.expired_keys = r.u64()?;
        db.seq = r.u64()?;
        let n = r.u32()? as usize;
        if n > JOURNAL_LEN || n as u64 > db.seq {
            return Err(SnapshotError::Corrupt("journal longer than allowed"));
        }
        let mut journal = VecDeque::with_capacity(n);
        for _ in 0..n {
            journal.push_back(r.u64()?);
        }
        db.journal = journal;

        let n = r.u64()?;
        let mut keys = Map::with_capacity_and_hasher(cautious(n), BuildHasher::new());
        let mut expiring = 0u64;
        for _ in 0..n {
            let key = r.compact()?;
            let expire_at = r.i64()?;
            let value = read_value(&mut r)?;
            let entry = Entry::with_raw_expire_at(value, expire_at);
            expiring += entry.expire_at().is_some() as u64;
            if keys.insert(key, entry).is_some() {
                return Err(SnapshotError::Corrupt("key twice"));
            }
        }
        let n = r.u64()?;
        if n != expiring {
            return Err(SnapshotError::Corrupt(
                "volatile set does not match expiries",
            ));
        }
        let mut volatile = Set::with_capacity_and_hasher(cautious(n), BuildHasher::new());
        for _ in 0..n {
            let key = r.compact()?;
            let has_expiry = keys.get(&*key).is_some_and(|e| e.expire_at().is_some());
            if !has_expiry || !volatile.insert(key) {
                return Err(SnapshotError::Corrupt("volatile key without an expiry"));
            }
        }
        db.keys = keys;
        db.volatile = volatile;
        db.rebuild_slots();
        if version >= 2 && r.array::<1>()?[0] == 1 {
            let epoch = r.u64()?;
            let n = r.u32()? as usize;
            if n > types::Slot::COUNT as usize {
                return Err(SnapshotError::Corrupt("more slot ranges than slots"));
            }
            let mut ranges = Vec::with_capacity(n);
            for _ in 0..n {
                let [a0, a1, b0, b1] = r.array::<4>()?;
                ranges.push((
                    types::Slot(u16::from_le_bytes([a0, a1])),
                    types::Slot(u16::from_le_bytes([b0, b1])),
                ));
            }
            let claim = crate::Claim { epoch, ranges };
            if !claim.is_well_formed() {
                return Err(SnapshotError::Corrupt("slot claim not well formed"));
            }
            db.claim = Some(claim);
        }
        if version >= 3 && r.array::<1>()?[0] == 1 {
            let bytes = r.compact()?;
            let map = meta::MetaState::decode(&bytes)
                .map_err(|_| SnapshotError::Corrupt("cluster map"))?;
            db.meta = Some(map);
        }
        if version >= 4 && r.array::<1>()?[0] == 1 {
            let bytes = r.compact()?;
            let users =
                meta::acl::Users::decode(&bytes).map_err(|_| SnapshotError::Corrupt("users"))?;
            db.acl = Some(users);
        }
        if version >= 5 {
            let bytes = r.compact()?;
            db.moves = crate::moves::decode_moves(&bytes)
                .map_err(|_| SnapshotError::Corrupt("slot moves"))?;
        }

        let sum = r.hash;
        if u64::from_le_bytes(r.array_unhashed()?) != sum {
            return Err(SnapshotError::Checksum);
        }
        Ok(db)
    }
}

/// One key as a snapshot holds it (name, raw expiry, value), appended to `out`: the
/// form a slot move copies keys in.
pub(crate) fn encode_entry(out: &mut Vec<u8>, key: &[u8], entry: &Entry) {
    let mut w = Hashing::new(out);
    let written = w
        .bytes(key)
        .and_then(|()| w.put(&entry.raw_expire_at().to_le_bytes()))
        .and_then(|()| write_value(&mut w, &entry.value));
    written.expect("writing to memory does not fail");
}

/// Keys as `moves::encode_entries` wrote them: `u32 n`, then [`encode_entry`]'s form.
pub(crate) fn decode_entries(bytes: &[u8]) -> Result<Vec<(CompactBytes, Entry)>, SnapshotError> {
    let mut input = bytes;
    let mut r = Hashing::new(&mut input);
    let n = r.u32()?;
    let mut out = Vec::with_capacity(cautious(n as u64));
    for _ in 0..n {
        let key = r.compact()?;
        let expire_at = r.i64()?;
        let value = read_value(&mut r)?;
        out.push((key, Entry::with_raw_expire_at(value, expire_at)));
    }
    if !input.is_empty() {
        return Err(SnapshotError::Corrupt("trailing bytes"));
    }
    Ok(out)
}

fn write_value<W: Write>(w: &mut Hashing<W>, value: &Value) -> io::Result<()> {
    match value {
        Value::Str(s) => {
            // The flavour keeps what `OBJECT ENCODING`/`REFCOUNT` report after a restore.
            let tag = if s.is_raw() {
                STR_RAW
            } else if s.is_text() {
                STR_TEXT
            } else if s.len() <= 22 && !s.is_inline() {
                STR_UNSHARED
            } else {
                STR
            };
            w.put(&[tag])?;
            w.bytes(s)
        }
        Value::List(l) => {
            w.put(&[LIST])?;
            w.len(l.items.len())?;
            l.items.iter().try_for_each(|item| w.bytes(item))
        }
        Value::Hash(h) => {
            w.put(&[HASH, h.big as u8])?;
            w.len(h.map.len())?;
            for (field, value) in &h.map {
                w.bytes(field)?;
                w.bytes(value)?;
            }
            Ok(())
        }
        Value::Set(s) => {
            w.put(&[SET, s.big as u8])?;
            w.len(s.members.len())?;
            s.members.iter().try_for_each(|m| w.bytes(m))
        }
        Value::ZSet(z) => {
            w.put(&[ZSET, z.big as u8])?;
            w.len(z.scores.len())?;
            for (member, score) in &z.scores {
                w.bytes(member)?;
                w.put(&score.to_bits().to_le_bytes())?;
            }
            Ok(())
        }
    }
}

fn read_value<R: Read>(r: &mut Hashing<R>) -> Result<Value, SnapshotError> {
    let value = match r.u8()? {
        STR => Value::Str(r.compact()?),
        STR_RAW => Value::Str(CompactBytes::raw(r.compact()?.to_vec())),
        STR_TEXT => Value::Str(CompactBytes::text(&r.compact()?)),
        STR_UNSHARED => Value::Str(r.compact()?.unshared()),
        LIST => {
            let n = r.u32()?;
            let mut items = VecDeque::with_capacity(cautious(n as u64));
            for _ in 0..n {
                items.push_back(r.compact()?);
            }
            Value::List(Arc::new(List { items }))
        }
        HASH => {
            let big = r.flag()?;
            let n = r.u32()?;
            let mut map = Map::with_capacity_and_hasher(cautious(n as u64), BuildHasher::new());
            for _ in 0..n {
                let field = r.compact()?;
                let value = r.compact()?;
                if map.insert(field, value).is_some() {
                    return Err(SnapshotError::Corrupt("hash field twice"));
                }
            }
            Value::Hash(Arc::new(Hash { map, big }))
        }
        SET => {
            let big = r.flag()?;
            let n = r.u32()?;
            let mut members = Set::with_capacity_and_hasher(cautious(n as u64), BuildHasher::new());
            for _ in 0..n {
                if !members.insert(r.compact()?) {
                    return Err(SnapshotError::Corrupt("set member twice"));
                }
            }
            Value::Set(Arc::new(SetValue { members, big }))
        }
        ZSET => {
            let big = r.flag()?;
            let n = r.u32()?;
            let mut scores = Map::with_capacity_and_hasher(cautious(n as u64), BuildHasher::new());
            let mut order = BTreeSet::new();
            for _ in 0..n {
                let member = r.compact()?;
                let score = f64::from_bits(r.u64()?);
                if score.is_nan() {
                    return Err(SnapshotError::Corrupt("NaN score"));
                }
                if scores.insert(member.clone(), score).is_some() {
                    return Err(SnapshotError::Corrupt("sorted set member twice"));
                }
                order.insert((Score(score), member));
            }
            Value::ZSet(Arc::new(ZSet { scores, order, big }))
        }
        _ => return Err(SnapshotError::Corrupt("unknown value type")),
    };
    Ok(value)
}

/// A capacity to reserve for `n` items announced by the input: never more than a few
/// thousand up front, so a corrupt count cannot reserve memory the data does not back.
fn cautious(n: u64) -> usize {
    n.min(4096) as usize
}

/// 64-bit FNV-1a, the snapshot's checksum.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash ^= b as u64;
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// A reader or writer that keeps the checksum of every byte through it.
struct Hashing<T> {
    inner: T,
    hash: u64,
}

impl<T> Hashing<T> {
    fn new(inner: T) -> Self {
        Hashing {
            inner,
            hash: FNV_OFFSET,
        }
    }
}

impl<W: Write> Hashing<W> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.hash = fnv(self.hash, bytes);
        self.inner.write_all(bytes)
    }

    fn len(&mut self, n: usize) -> io::Result<()> {
        let n = u32::try_from(n)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "collection too large"))?;
        self.put(&n.to_le_bytes())
    }

    fn bytes(&mut self, b: &[u8]) -> io::Result<()> {
        self.len(b.len())?;
        self.put(b)
    }
}

impl<R: Read> Hashing<R> {
    fn array_unhashed<const N: usize>(&mut self) -> Result<[u8; N], SnapshotError> {
        let mut a = [0u8; N];
        self.inner.read_exact(&mut a).map_err(truncated)?;
        Ok(a)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], SnapshotError> {
        let a = self.array_unhashed::<N>()?;
        self.hash = fnv(self.hash, &a);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, SnapshotError> {
        Ok(self.array::<1>()?[0])
    }

    fn flag(&mut self) -> Result<bool, SnapshotError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(SnapshotError::Corrupt("flag neither 0 nor 1")),
        }
    }

    fn u32(&mut self) -> Result<u32, SnapshotError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, SnapshotError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn i64(&mut self) -> Result<i64, SnapshotError> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    /// A byte string, read without trusting its length for an allocation.
    fn compact(&mut self) -> Result<CompactBytes, SnapshotError> {
        let n = self.u32()? as usize;
        let mut inline = [0u8; 22];
        if n <= inline.len() {
            let buf = &mut inline[..n];
            self.inner.read_exact(buf).map_err(truncated)?;
            self.hash = fnv(self.hash, buf);
            return Ok(CompactBytes::new(buf));
        }
        let mut buf = Vec::new();
        (&mut self.inner).take(n as u64).read_to_end(&mut buf)?;
        if buf.len() != n {
            return Err(SnapshotError::Corrupt("truncated"));
        }
        self.hash = fnv(self.hash, &buf);
        Ok(CompactBytes::from(buf))
    }
}

fn truncated(e: io::Error) -> SnapshotError {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        SnapshotError::Corrupt("truncated")
    } else {
        SnapshotError::Io(e)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use resp::Frame;

    use super::*;
    use crate::command::{parse, Ctx};
    use crate::rng::Rng;

    fn run(db: &mut Db, now: i64, seed: u64, line: &[Vec<u8>]) -> Frame {
        let args: Vec<Bytes> = line.iter().map(|a| Bytes::copy_from_slice(a)).collect();
        let mut ctx = Ctx { now_ms: now, seed };
        match parse(&args, &mut ctx) {
            Ok(cmd) => cmd.execute(db, now),
            Err(e) => e.to_frame(),
        }
    }

    fn snapshot(db: &Db) -> Vec<u8> {
        let mut out = Vec::new();
        db.write_snapshot(&mut out).unwrap();
        out
    }

    /// A random command over a small key and member space, so keys collide, change type,
    /// expire, grow past the listpack/intset thresholds and get watched.
    fn random_command(rng: &mut Rng) -> Vec<Vec<u8>> {
        let key = |rng: &mut Rng| format!("k{}", rng.below(12)).into_bytes();
        let member = |rng: &mut Rng| {
            if rng.below(4) == 0 {
                format!("{}", rng.below(600)).into_bytes()
            } else {
                format!("m{}", rng.below(200)).into_bytes()
            }
        };
        let num = |rng: &mut Rng, n: u64| format!("{}", rng.below(n)).into_bytes();
        let s = |t: &str| t.as_bytes().to_vec();
        let k = key(rng);
        match rng.below(34) {
            0 => vec![s("SET"), k, member(rng)],
            1 => vec![s("SET"), k, member(rng), s("PX"), num(rng, 50)],
            2 => vec![s("GET"), k],
            3 => vec![s("DEL"), k, key(rng)],
            4 => vec![s("INCR"), k],
            5 => vec![s("APPEND"), k, member(rng)],
            6 => vec![s("PEXPIRE"), k, num(rng, 80)],
            7 => vec![s("PERSIST"), k],
            8 => vec![s("PTTL"), k],
            9 => vec![s("HSET"), k, member(rng), member(rng)],
            10 => vec![s("HDEL"), k, member(rng)],
            11 => vec![s("HGETALL"), k],
            12 => vec![s("SADD"), k, member(rng), member(rng), member(rng)],
            13 => vec![s("SREM"), k, member(rng)],
            14 => vec![s("SMEMBERS"), k],
            15 => vec![s("SPOP"), k],
            16 => vec![s("ZADD"), k, num(rng, 100), member(rng)],
            17 => vec![s("ZREM"), k, member(rng)],
            18 => vec![s("ZRANGE"), k, s("0"), s("-1"), s("WITHSCORES")],
            19 => vec![s("RPUSH"), k, member(rng), member(rng)],
            20 => vec![s("LPOP"), k],
            21 => vec![s("LRANGE"), k, s("0"), s("-1")],
            22 => vec![s("OBJECT"), s("ENCODING"), k],
            23 => vec![s("SCAN"), num(rng, 12), s("COUNT"), s("3")],
            24 => vec![s("KEYS"), s("*")],
            25 => vec![s("RANDOMKEY")],
            26 => vec![s("DBSIZE")],
            27 => vec![s("HRANDFIELD"), k, s("-3")],
            28 => vec![s("SRANDMEMBER"), k, s("2")],
            29 => vec![s("RENAME"), k, key(rng)],
            30 => vec![s("TYPE"), k],
            31 => vec![s("HSCAN"), k, s("0")],
            32 => {
                if rng.below(20) == 0 {
                    vec![s("FLUSHALL")]
                } else {
                    vec![s("EXISTS"), k]
                }
            }
            _ => vec![s("SSCAN"), k, s("0"), s("COUNT"), s("5")],
        }
    }

    /// Replays `n` random commands on `a` and `b` (and active expiry and WATCH/EXEC),
    /// asserting every reply matches.
    fn same_future(a: &mut Db, b: &mut Db, rng: &mut Rng, mut now: i64, n: usize) {
        let watches: Vec<_> = (0..4)
            .map(|i| a.watch(format!("k{i}").as_bytes(), now))
            .collect();
        for i in 0..n {
            now += rng.below(5) as i64;
            let seed = rng.next_u64();
            let line = random_command(rng);
            let ra = run(a, now, seed, &line);
            let rb = run(b, now, seed, &line);
            assert_eq!(ra, rb, "step {i}: {:?}", String::from_utf8_lossy(&line[0]));
            if i % 50 == 0 {
                let verdicts = |db: &Db| {
                    watches
                        .iter()
                        .map(|w| db.watch_is_dirty(w, now))
                        .collect::<Vec<_>>()
                };
                assert_eq!(verdicts(a), verdicts(b), "EXEC verdicts at step {i}");
                let sa = a.sample_expired(now, seed, 20);
                assert_eq!(sa, b.sample_expired(now, seed, 20));
                for key in sa.1 {
                    a.expire_if_due(&key, now);
                    b.expire_if_due(&key, now);
                }
            }
        }
        assert_eq!(snapshot(a), snapshot(b), "same state at the end");
        assert_eq!(a.stats.expired_keys, b.stats.expired_keys);
    }

    #[test]
    fn a_restored_db_behaves_like_the_original() {
        for seed in 0..20 {
            let mut rng = Rng::new(seed);
            let mut db = Db::new();
            let mut now = 1_000;
            for _ in 0..3_000 {
                now += rng.below(5) as i64;
                let line = random_command(&mut rng);
                run(&mut db, now, rng.next_u64(), &line);
            }
            let bytes = snapshot(&db);
            let mut restored = Db::read_snapshot(&mut bytes.as_slice()).unwrap();
            assert_eq!(
                snapshot(&restored),
                bytes,
                "seed {seed}: writes back the same"
            );
            same_future(&mut db, &mut restored, &mut rng, now, 3_000);
        }
    }

    #[test]
    fn a_snapshot_keeps_the_slot_claim() {
        let mut db = Db::new();
        run(
            &mut db,
            1,
            0,
            &[b"SET".to_vec(), b"a".to_vec(), b"1".to_vec()],
        );
        let claim = crate::Claim {
            epoch: 3,
            ranges: vec![
                (types::Slot(0), types::Slot(99)),
                (types::Slot(15000), types::Slot(16383)),
            ],
        };
        crate::Proposal::Claim(claim.clone()).apply(&mut db, 2);
        let restored = Db::read_snapshot(&mut snapshot(&db).as_slice()).unwrap();
        assert_eq!(restored.claim(), Some(&claim));
        assert_eq!(restored.get(b"a", 3).map(|v| v.type_name()), Some("string"));
        let unclaimed = Db::read_snapshot(&mut snapshot(&Db::new()).as_slice()).unwrap();
        assert_eq!(unclaimed.claim(), None);
    }

    #[test]
    fn a_snapshot_keeps_the_cluster_map() {
        let mut db = Db::new();
        let member = |n: u16| meta::Member {
            resp_addr: format!("127.0.0.1:{n}"),
            grpc_addr: format!("127.0.0.1:{}", n + 1000),
            hostname: (n == 7001).then(|| "redraft-1.redraft".to_string()),
        };
        let bootstrap = meta::MetaCommand::Bootstrap {
            members: [(1, member(7001)), (2, member(7002))].into(),
            groups: 4,
            replication: 2,
        };
        assert_eq!(
            crate::Proposal::Meta(bootstrap).apply(&mut db, 1),
            Frame::Integer(1)
        );
        let restored = Db::read_snapshot(&mut snapshot(&db).as_slice()).unwrap();
        assert_eq!(restored.meta(), db.meta());
        assert_eq!(restored.digest(2), db.digest(2));
        assert_eq!(
            Db::read_snapshot(&mut snapshot(&Db::new()).as_slice())
                .unwrap()
                .meta(),
            None
        );
    }

    #[test]
    fn versions_2_to_4_snapshots_still_read() {
        // What versions 2 to 4 wrote for a database with one key, no claim and no map:
        // the same bytes as version 5 without what came later (the map in 3, the users in
        // 4, the slot moves in 5: 20 bytes when there are none), under their own version
        // and checksum.
        let mut db = Db::new();
        run(
            &mut db,
            1,
            0,
            &[b"SET".to_vec(), b"a".to_vec(), b"1".to_vec()],
        );
        let v5 = snapshot(&db);
        assert_eq!(&v5[9..13], &5u32.to_le_bytes());
        for (version, later) in [(2u32, 22), (3, 21), (4, 20)] {
            let mut old = v5[..v5.len() - 8 - later].to_vec();
            old[9..13].copy_from_slice(&version.to_le_bytes());
            let sum = fnv(FNV_OFFSET, &old);
            old.extend_from_slice(&sum.to_le_bytes());
            let restored = Db::read_snapshot(&mut old.as_slice()).unwrap();
            assert_eq!(restored.digest(2), db.digest(2), "version {version}");
            assert_eq!(restored.meta(), None);
            assert_eq!(restored.acl(), None);
        }
    }

    #[test]
    fn the_users_are_in_the_meta_groups_snapshot() {
        let mut db = Db::new();
        let change = meta::acl::Change::SetUser {
            name: "alice".into(),
            ops: vec![
                meta::acl::Op::On,
                meta::acl::Op::AddPassword(meta::acl::hash_password(b"pw")),
            ],
        };
        crate::Proposal::Acl(change).apply(&mut db, 1);
        let restored = Db::read_snapshot(&mut snapshot(&db).as_slice()).unwrap();
        assert_eq!(restored.acl(), db.acl());
        assert!(restored.acl().unwrap().users["alice"].accepts(b"pw"));
        assert_eq!(restored.digest(2), db.digest(2));
    }

    #[test]
    fn a_clone_behaves_like_the_original() {
        let mut rng = Rng::new(99);
        let mut db = Db::new();
        for i in 0..2_000 {
            let line = random_command(&mut rng);
            run(&mut db, 1_000 + i, rng.next_u64(), &line);
        }
        let mut copy = db.clone();
        same_future(&mut db, &mut copy, &mut rng, 3_000, 2_000);
    }

    #[test]
    fn a_clone_is_independent_of_later_writes() {
        // Collections and long strings are shared between a Db and its clone until one
        // of them writes: the writer must copy, never change what the other sees.
        let mut rng = Rng::new(7);
        let mut db = Db::new();
        for i in 0..3_000 {
            let line = random_command(&mut rng);
            run(&mut db, 1_000 + i, rng.next_u64(), &line);
        }
        let copy = db.clone();
        let before = snapshot(&copy);
        for i in 0..3_000 {
            let line = random_command(&mut rng);
            run(&mut db, 4_000 + i, rng.next_u64(), &line);
        }
        assert_ne!(snapshot(&db), before, "the original changed");
        assert_eq!(snapshot(&copy), before, "the clone did not");
    }

    #[test]
    fn string_encodings_survive_a_restore() {
        let mut db = Db::new();
        let w = |s: &str| {
            s.split(' ')
                .map(|a| a.as_bytes().to_vec())
                .collect::<Vec<_>>()
        };
        for line in [
            "SET a hello",
            "APPEND a x",
            "SET f 1.5",
            "INCRBYFLOAT f 1.5",
            "SET n 5",
            "COPY n m",
        ] {
            run(&mut db, 0, 0, &w(line));
        }
        let mut restored = Db::read_snapshot(&mut snapshot(&db).as_slice()).unwrap();
        for line in [
            "OBJECT ENCODING a",
            "OBJECT ENCODING f",
            "OBJECT REFCOUNT n",
            "OBJECT REFCOUNT m",
        ] {
            assert_eq!(
                run(&mut db, 0, 0, &w(line)),
                run(&mut restored, 0, 0, &w(line)),
                "{line}"
            );
        }
        assert_eq!(
            run(&mut restored, 0, 0, &w("OBJECT ENCODING a")),
            Frame::bulk("raw")
        );
        assert_eq!(
            run(&mut restored, 0, 0, &w("OBJECT ENCODING f")),
            Frame::bulk("embstr")
        );
        assert_eq!(
            run(&mut restored, 0, 0, &w("OBJECT REFCOUNT m")),
            Frame::Integer(1)
        );
    }

    #[test]
    fn empty_db_round_trips() {
        let bytes = snapshot(&Db::new());
        let db = Db::read_snapshot(&mut bytes.as_slice()).unwrap();
        assert!(db.is_empty());
        assert_eq!(snapshot(&db), bytes);
    }

    #[test]
    fn corruption_is_an_error_not_a_panic() {
        let mut rng = Rng::new(5);
        let mut db = Db::new();
        for i in 0..300 {
            let line = random_command(&mut rng);
            run(&mut db, 1_000 + i, rng.next_u64(), &line);
        }
        let good = snapshot(&db);
        assert!(Db::read_snapshot(&mut good.as_slice()).is_ok());
        for cut in (0..good.len()).step_by(7) {
            assert!(
                Db::read_snapshot(&mut &good[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let mut long = good.clone();
        long.push(0);
        assert!(Db::read_snapshot(&mut long.as_slice()).is_err());
        for _ in 0..2_000 {
            let mut bad = good.clone();
            let at = rng.below(bad.len() as u64) as usize;
            bad[at] ^= 1 << rng.below(8);
            assert!(
                Db::read_snapshot(&mut bad.as_slice()).is_err(),
                "flip at {at}"
            );
        }
        let mut huge = good[..MAGIC.len() + 4 + 16].to_vec();
        huge.extend_from_slice(&0u32.to_le_bytes());
        huge.extend_from_slice(&u64::MAX.to_le_bytes());
        huge.extend_from_slice(&[1, 0xff, 0xff, 0xff, 0xff]);
        assert!(Db::read_snapshot(&mut huge.as_slice()).is_err());
    }
}
