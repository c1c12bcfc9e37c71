//! redraft's side-by-side benchmark: the pure parts of the load generator and the suite
//! (RESP codec, latency statistics, report tables with ratios, plots), kept in a library so
//! they are unit-tested without a server. The binary (`redraft-bench`) adds the network
//! clients, the processes under test and the suite that drives them.

pub mod cpu;
pub mod plot;
pub mod redis_benchmark;
pub mod report;
pub mod resp;
pub mod stats;

/// The key of index `i`, as `redis-benchmark -r` writes it: `key:` and 12 digits (16 bytes).
pub fn key(i: u64) -> String {
    format!("key:{i:012}")
}

/// A value of `size` bytes, as `redis-benchmark -d` sends it (all `x`).
pub fn value(size: usize) -> Vec<u8> {
    vec![b'x'; size]
}

/// The seedable generator for key choice: `kv`'s SplitMix64 (the benchmark's keys need
/// spread, not cryptographic quality).
pub use kv::rng::Rng;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_redis_benchmark() {
        assert_eq!(key(12345), "key:000000012345");
        assert_eq!(key(12345).len(), 16);
        assert_eq!(value(3), b"xxx");
    }

    #[test]
    fn rng_spreads_over_the_key_space() {
        let mut r = Rng::new(1);
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            seen[r.below(10) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| (800..1200).contains(&n)), "{seen:?}");
    }
}
