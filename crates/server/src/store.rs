//! What every connection of a node shares besides the data: the clock requests are read
//! with, the counters `INFO stats` shows, and the source of the sessions' random seeds.
//! The data itself is behind the [`crate::Engine`].

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use cluster::Clock;
use kv::Ctx;

/// Counters shown by `INFO stats`.
#[derive(Default)]
pub struct Stats {
    pub commands: AtomicU64,
    pub connections: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub expired_by_sampling: AtomicU64,
}

pub struct Store {
    pub clock: Clock,
    pub stats: Stats,
    seeds: RandomState,
    seed_counter: AtomicU64,
}

impl Default for Store {
    fn default() -> Self {
        Store::new()
    }
}

impl Store {
    pub fn new() -> Self {
        Store {
            clock: Clock::default(),
            stats: Stats::default(),
            seeds: RandomState::new(),
            seed_counter: AtomicU64::new(0),
        }
    }

    /// What a command is parsed with: the time and a fresh random seed.
    pub fn ctx(&self) -> Ctx {
        Ctx {
            now_ms: self.clock.now_ms(),
            seed: self.seed(),
        }
    }

    /// A fresh random seed (for a session's own generator, or one command).
    pub fn seed(&self) -> u64 {
        let mut h = self.seeds.build_hasher();
        h.write_u64(self.seed_counter.fetch_add(1, Ordering::Relaxed));
        h.finish()
    }
}
