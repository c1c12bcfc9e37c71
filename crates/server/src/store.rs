//! The node's data and its clock: where parsed commands are executed.
//!
//! On a single node a write is applied at once under the lock; the Raft issue replaces
//! [`Store::write`] with a proposal whose apply does the same thing on every replica.
//! The clock stamps writes with Unix milliseconds that never go backwards.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use kv::{Cmd, Ctx, Db};
use resp::Frame;

/// Wall-clock milliseconds, never behind a value it returned before.
#[derive(Default)]
pub struct Clock {
    last: AtomicI64,
}

impl Clock {
    pub fn now_ms(&self) -> i64 {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let prev = self.last.fetch_max(wall, Ordering::AcqRel);
        prev.max(wall)
    }

    /// The time to stamp a write with: `at`, or the latest time this clock handed out if
    /// that is later, so that writes applied in order carry times that never go back.
    pub fn stamp(&self, at: i64) -> i64 {
        self.last.fetch_max(at, Ordering::AcqRel).max(at)
    }
}

/// Counters shown by `INFO stats`.
#[derive(Default)]
pub struct Stats {
    pub commands: AtomicU64,
    pub connections: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub expired_by_sampling: AtomicU64,
}

pub struct Store {
    db: Mutex<Db>,
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
            db: Mutex::new(Db::new()),
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

    /// The database, locked. A panic in another thread while it held the lock does not
    /// make the data unreachable (commands run under `catch_unwind`, see [`Store::execute`]).
    pub fn db(&self) -> MutexGuard<'_, Db> {
        self.db
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs one parsed command, a read or a write, with the time in `ctx` (the time the
    /// command was parsed at: for a write the time stamped into it, for a read the node's
    /// clock when the request was read). A panic inside a command becomes an error reply.
    pub fn execute(&self, cmd: &Cmd, ctx: &Ctx) -> Frame {
        let mut db = self.db();
        let now = if cmd.is_write() {
            self.clock.stamp(ctx.now_ms)
        } else {
            ctx.now_ms
        };
        match catch_unwind(AssertUnwindSafe(|| cmd.execute(&mut db, now))) {
            Ok(frame) => frame,
            Err(_) => {
                tracing::error!("a command panicked; replying with an error");
                Frame::error("ERR internal error while executing the command")
            }
        }
    }

    /// One round of active expiry: samples keys with an expiry and removes the expired
    /// ones through the write path, repeating while more than a quarter of a sample was
    /// expired (Redis's rule) and the round is under its time budget.
    pub fn active_expire_cycle(&self, budget: std::time::Duration) -> usize {
        const SAMPLE: usize = 20;
        let start = std::time::Instant::now();
        let mut removed = 0;
        loop {
            let ctx = self.ctx();
            let (sampled, expired) = self.db().sample_expired(ctx.now_ms, ctx.seed, SAMPLE);
            if expired.is_empty() {
                break;
            }
            let n = expired.len();
            let cmd = Cmd::Write(kv::Write::ExpireKeys(expired));
            self.execute(&cmd, &ctx);
            removed += n;
            if n * 4 <= sampled || start.elapsed() >= budget {
                break;
            }
        }
        self.stats
            .expired_by_sampling
            .fetch_add(removed as u64, Ordering::Relaxed);
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn run(store: &Store, now_ms: i64, line: &str) -> Frame {
        let args: Vec<Bytes> = line
            .split(' ')
            .map(|s| Bytes::from(s.to_string()))
            .collect();
        let mut ctx = Ctx { now_ms, seed: 1 };
        let cmd = kv::parse(&args, &mut ctx).expect("valid command");
        store.execute(&cmd, &ctx)
    }

    #[test]
    fn active_expiry_reclaims_expired_keys_without_access() {
        let store = Store::new();
        let now = store.clock.now_ms();
        for i in 0..500 {
            run(&store, now, &format!("SET gone:{i} v PX 50"));
        }
        for i in 0..100 {
            run(&store, now, &format!("SET kept:{i} v EX 3600"));
            run(&store, now, &format!("SET plain:{i} v"));
        }
        // Expired keys stay in memory (DBSIZE counts them, as Redis's does) until a write
        // meets them or active expiry removes them.
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert_eq!(
            store.db().len(),
            700,
            "nothing is removed until expiry runs"
        );
        let mut rounds = 0;
        while store.db().len() > 200 && rounds < 1000 {
            store.active_expire_cycle(std::time::Duration::from_millis(25));
            rounds += 1;
        }
        assert_eq!(
            store.db().len(),
            200,
            "every expired key is reclaimed, no live key is"
        );
        assert_eq!(store.db().volatile_len(), 100);
        assert_eq!(store.db().stats.expired_keys, 500);
    }

    #[test]
    fn write_stamps_never_go_back() {
        let clock = Clock::default();
        let now = clock.now_ms();
        assert!(clock.stamp(now - 10_000) >= now);
        assert_eq!(clock.stamp(now + 5_000), now + 5_000);
        assert!(clock.stamp(now) >= now + 5_000);
    }
}
