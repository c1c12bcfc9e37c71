//! The five Redis value types and the encoding names `OBJECT ENCODING` reports.
//!
//! Collections keep their members in insertion order ([`indexmap`]) so that iteration
//! order is a function of the commands applied, the same on every replica and after a
//! snapshot is loaded. Small hashes and sorted sets delete with `shift_remove`, keeping
//! Redis's listpack order for replies such as `HGETALL`; large ones use `swap_remove`.
//! Both keep the `SCAN` guarantee because scans walk positions from the end (see
//! [`crate::scan`]).
//!
//! Collections sit behind an `Arc` and are changed only through the `as_*_mut` methods,
//! which copy a collection that is shared (`Arc::make_mut`). Cloning a `Db` (as a snapshot
//! does, under the lock) therefore copies no collection; the first write to one afterwards
//! copies that one.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

use indexmap::{IndexMap, IndexSet};

use crate::bytes::CompactBytes;
use crate::error::{Error, Result};

pub type BuildHasher = ahash::RandomState;
pub type Map<K, V> = IndexMap<K, V, BuildHasher>;
pub type Set<K> = IndexSet<K, BuildHasher>;

/// Redis's `hash-max-listpack-entries` and `zset-max-listpack-entries` defaults.
pub const LISTPACK_MAX_ENTRIES: usize = 128;
/// Redis's `hash-max-listpack-value` and `zset-max-listpack-value` defaults.
pub const LISTPACK_MAX_VALUE: usize = 64;
/// Redis's `set-max-intset-entries` default.
pub const INTSET_MAX_ENTRIES: usize = 512;

/// One value.
#[derive(Clone, Debug)]
pub enum Value {
    Str(CompactBytes),
    List(Arc<List>),
    Hash(Arc<Hash>),
    Set(Arc<SetValue>),
    ZSet(Arc<ZSet>),
}

impl Value {
    pub fn str(bytes: &[u8]) -> Value {
        Value::Str(CompactBytes::new(bytes))
    }

    /// The name `TYPE` replies with.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::List(_) => "list",
            Value::Hash(_) => "hash",
            Value::Set(_) => "set",
            Value::ZSet(_) => "zset",
        }
    }

    /// The name `OBJECT ENCODING` replies with (Redis 7.0's names).
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Str(s) => {
                if s.is_raw() {
                    "raw"
                } else if s.is_text() {
                    "embstr"
                } else if s.len() <= 20 && resp::request::parse_int(s).is_some() {
                    "int"
                } else if s.len() <= 44 {
                    "embstr"
                } else {
                    "raw"
                }
            }
            Value::List(_) => "quicklist",
            Value::Hash(h) => {
                if h.big {
                    "hashtable"
                } else {
                    "listpack"
                }
            }
            Value::Set(s) => {
                if s.big {
                    "hashtable"
                } else {
                    "intset"
                }
            }
            Value::ZSet(z) => {
                if z.big {
                    "skiplist"
                } else {
                    "listpack"
                }
            }
        }
    }

    pub fn as_str(&self) -> Result<&CompactBytes> {
        match self {
            Value::Str(s) => Ok(s),
            _ => Err(Error::WrongType),
        }
    }
    pub fn as_list(&self) -> Result<&List> {
        match self {
            Value::List(l) => Ok(l),
            _ => Err(Error::WrongType),
        }
    }
    pub fn as_list_mut(&mut self) -> Result<&mut List> {
        match self {
            Value::List(l) => Ok(Arc::make_mut(l)),
            _ => Err(Error::WrongType),
        }
    }
    pub fn as_hash(&self) -> Result<&Hash> {
        match self {
            Value::Hash(h) => Ok(h),
            _ => Err(Error::WrongType),
        }
    }
    pub fn as_hash_mut(&mut self) -> Result<&mut Hash> {
        match self {
            Value::Hash(h) => Ok(Arc::make_mut(h)),
            _ => Err(Error::WrongType),
        }
    }
    pub fn as_set(&self) -> Result<&SetValue> {
        match self {
            Value::Set(s) => Ok(s),
            _ => Err(Error::WrongType),
        }
    }
    pub fn as_set_mut(&mut self) -> Result<&mut SetValue> {
        match self {
            Value::Set(s) => Ok(Arc::make_mut(s)),
            _ => Err(Error::WrongType),
        }
    }
    pub fn as_zset(&self) -> Result<&ZSet> {
        match self {
            Value::ZSet(z) => Ok(z),
            _ => Err(Error::WrongType),
        }
    }
    pub fn as_zset_mut(&mut self) -> Result<&mut ZSet> {
        match self {
            Value::ZSet(z) => Ok(Arc::make_mut(z)),
            _ => Err(Error::WrongType),
        }
    }

    /// True for a collection with no members (it must then be deleted, as Redis does).
    pub fn is_empty_collection(&self) -> bool {
        match self {
            Value::Str(_) => false,
            Value::List(l) => l.items.is_empty(),
            Value::Hash(h) => h.map.is_empty(),
            Value::Set(s) => s.members.is_empty(),
            Value::ZSet(z) => z.scores.is_empty(),
        }
    }
}

/// A list (`quicklist` in Redis 7.0).
#[derive(Clone, Debug, Default)]
pub struct List {
    pub items: VecDeque<CompactBytes>,
}

/// A hash: field → value, in insertion order.
#[derive(Clone, Debug, Default)]
pub struct Hash {
    pub map: Map<CompactBytes, CompactBytes>,
    /// Converted to `hashtable` (never goes back, as in Redis).
    pub big: bool,
}

impl Hash {
    /// Updates the encoding after an insert of `field`/`value`.
    pub fn note_insert(&mut self, field: &[u8], value: &[u8]) {
        if !self.big
            && (self.map.len() > LISTPACK_MAX_ENTRIES
                || field.len() > LISTPACK_MAX_VALUE
                || value.len() > LISTPACK_MAX_VALUE)
        {
            self.big = true;
        }
    }

    /// Removes a field, keeping listpack order while small.
    pub fn remove(&mut self, field: &[u8]) -> Option<CompactBytes> {
        if self.big {
            self.map.swap_remove(field)
        } else {
            self.map.shift_remove(field)
        }
    }
}

/// A set: members in insertion order.
#[derive(Clone, Debug, Default)]
pub struct SetValue {
    pub members: Set<CompactBytes>,
    /// Converted from `intset` to `hashtable` (never goes back, as in Redis).
    pub big: bool,
}

impl SetValue {
    /// Updates the encoding after `member` was added.
    pub fn note_insert(&mut self, member: &[u8]) {
        if !self.big
            && (self.members.len() > INTSET_MAX_ENTRIES
                || resp::request::parse_int(member).is_none())
        {
            self.big = true;
        }
    }

    pub fn remove(&mut self, member: &[u8]) -> bool {
        self.members.swap_remove(member)
    }
}

/// A score with a total order (NaN never gets in: commands reject it).
#[derive(Clone, Copy, Debug)]
pub struct Score(pub f64);

impl PartialEq for Score {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    /// IEEE order, in which `-0` equals `0` (Redis orders such ties by member); NaN never
    /// gets in, so this is total.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        if self.0 == other.0 {
            std::cmp::Ordering::Equal
        } else {
            self.0.total_cmp(&other.0)
        }
    }
}

/// A sorted set: member → score, and (score, member) in order.
#[derive(Clone, Debug, Default)]
pub struct ZSet {
    pub scores: Map<CompactBytes, f64>,
    pub order: BTreeSet<(Score, CompactBytes)>,
    /// Converted from `listpack` to `skiplist` (never goes back, as in Redis).
    pub big: bool,
}

impl ZSet {
    /// Sets `member`'s score; returns the old score if it was there.
    pub fn insert(&mut self, member: &[u8], score: f64) -> Option<f64> {
        // A listpack stores scores as text and -0 comes back as 0; a skiplist keeps -0
        // (ZSCORE shows it). Either way -0 sorts as 0: see `Score`'s order.
        let stays_small = !self.big
            && member.len() <= LISTPACK_MAX_VALUE
            && self.scores.len() + usize::from(!self.scores.contains_key(member))
                <= LISTPACK_MAX_ENTRIES;
        let score = if stays_small && score == 0.0 {
            0.0
        } else {
            score
        };
        let key = CompactBytes::new(member);
        let old = self.scores.insert(key.clone(), score);
        if let Some(old) = old {
            self.order.remove(&(Score(old), key.clone()));
        }
        self.order.insert((Score(score), key));
        if !self.big
            && (self.scores.len() > LISTPACK_MAX_ENTRIES || member.len() > LISTPACK_MAX_VALUE)
        {
            self.big = true;
        }
        old
    }

    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let (key, score) = self.scores.swap_remove_entry(member)?;
        self.order.remove(&(Score(score), key));
        Some(score)
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.scores.get(member).copied()
    }

    pub fn len(&self) -> usize {
        self.scores.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }

    /// 0-based rank of `member` in ascending order.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let score = self.score(member)?;
        let key = CompactBytes::new(member);
        Some(self.order.range(..(Score(score), key)).count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_stays_small() {
        assert_eq!(std::mem::size_of::<Value>(), 24);
        assert_eq!(std::mem::size_of::<crate::db::Entry>(), 32);
    }
}
