//! Latency and throughput of one measured run: an HDR histogram of per-request latencies in
//! nanoseconds (one per connection, merged at the end) and the summary the reports print.
//!
//! Invariants: latencies are recorded in nanoseconds between 1 ns and one minute with three
//! significant digits (a recorded value is off by at most 0.1 %); a value outside that range
//! is clamped, never dropped, so the request count always matches the histogram's count.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Highest latency the histogram tracks: one minute, in nanoseconds.
pub const MAX_LATENCY_NS: u64 = 60_000_000_000;

/// Per-request latencies of one run.
#[derive(Clone)]
pub struct Latencies {
    hist: Histogram<u64>,
}

impl Default for Latencies {
    fn default() -> Self {
        Self::new()
    }
}

impl Latencies {
    pub fn new() -> Self {
        Self {
            hist: Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3)
                .expect("constant histogram bounds are valid"),
        }
    }

    /// Records one request's latency.
    pub fn record_ns(&mut self, ns: u64) {
        self.hist.saturating_record(ns.clamp(1, MAX_LATENCY_NS));
    }

    /// Adds another connection's latencies.
    pub fn merge(&mut self, other: &Latencies) {
        // Both histograms have the same bounds, so adding cannot fail.
        let _ = self.hist.add(&other.hist);
    }

    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    /// The latency at `q` (0.0-1.0), in milliseconds; 0 with no sample.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.hist.is_empty() {
            return 0.0;
        }
        self.hist.value_at_quantile(q) as f64 / 1e6
    }

    /// The summary of a run that completed `ok` requests (and `errors` failed ones) in
    /// `seconds`.
    pub fn summary(&self, ok: u64, errors: u64, misses: u64, seconds: f64) -> Summary {
        Summary {
            requests: ok,
            errors,
            misses,
            seconds,
            rps: if seconds > 0.0 {
                ok as f64 / seconds
            } else {
                0.0
            },
            p50_ms: self.quantile_ms(0.50),
            p99_ms: self.quantile_ms(0.99),
            p999_ms: self.quantile_ms(0.999),
        }
    }
}

/// What one run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Requests that got a non-error reply.
    pub requests: u64,
    /// Requests that got an error reply or no reply in time.
    pub errors: u64,
    /// GETs answered with nil or a value of the wrong size (the keys were loaded first, so
    /// this should be 0).
    pub misses: u64,
    pub seconds: f64,
    /// Completed requests per second.
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
}

/// The median of `values` (the mean of the middle two for an even count); `None` if empty.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut l = Latencies::new();
        // 1..=1000 microseconds, one each.
        for us in 1..=1000u64 {
            l.record_ns(us * 1000);
        }
        let close = |got: f64, want: f64| (got - want).abs() <= want * 0.001 + 1e-9;
        assert!(close(l.quantile_ms(0.5), 0.5), "{}", l.quantile_ms(0.5));
        assert!(close(l.quantile_ms(0.99), 0.99), "{}", l.quantile_ms(0.99));
        assert!(
            close(l.quantile_ms(0.999), 0.999),
            "{}",
            l.quantile_ms(0.999)
        );
        assert_eq!(l.count(), 1000);
    }

    #[test]
    fn merging_adds_counts_and_out_of_range_values_are_clamped() {
        let mut a = Latencies::new();
        let mut b = Latencies::new();
        a.record_ns(0);
        b.record_ns(u64::MAX);
        a.merge(&b);
        assert_eq!(a.count(), 2);
        assert!(a.quantile_ms(1.0) >= 59_000.0);
    }

    #[test]
    fn summary_throughput_and_empty_runs() {
        let l = Latencies::new();
        let s = l.summary(0, 3, 0, 0.0);
        assert_eq!((s.rps, s.p99_ms, s.errors), (0.0, 0.0, 3));
        let s = l.summary(500, 0, 0, 2.0);
        assert_eq!(s.rps, 250.0);
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }
}
