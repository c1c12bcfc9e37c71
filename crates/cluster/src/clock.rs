//! The clock writes are stamped with: wall-clock Unix milliseconds that never go back.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Wall-clock milliseconds, never behind a value it returned before.
#[derive(Debug, Default)]
pub struct Clock {
    last: AtomicI64,
}

impl Clock {
    /// The time now, or the latest time this clock handed out if that is later.
    pub fn now_ms(&self) -> i64 {
        self.stamp(wall_ms())
    }

    /// The time to stamp a write with: `at`, or the latest time this clock handed out if
    /// that is later, so that writes applied in order carry times that never go back.
    pub fn stamp(&self, at: i64) -> i64 {
        self.last.fetch_max(at, Ordering::AcqRel).max(at)
    }
}

/// The wall clock, Unix milliseconds (0 before 1970).
pub(crate) fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_never_go_back() {
        let clock = Clock::default();
        let now = clock.now_ms();
        assert!(clock.stamp(now - 10_000) >= now);
        assert_eq!(clock.stamp(now + 5_000), now + 5_000);
        assert!(clock.stamp(now) >= now + 5_000);
        assert!(clock.now_ms() >= now + 5_000);
    }
}
