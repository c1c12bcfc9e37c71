//! One checker per workload: pure functions from a history's operations to a [`Verdict`].
//!
//! - [`register`]: linearizability per key ([`crate::wgl`]);
//! - [`counter`]: every read within the bounds the adds around it allow;
//! - [`set`]: adds of unique integers against reads of the whole set;
//! - [`list_append`]: transactions of appends and reads of lists (Elle's list-append, the
//!   checks that need no dependency graph).
//!
//! Checkers other than the register report each violation as it is found; [`Collector`]
//! keeps the first few of each kind per key so that a badly broken run still gives a
//! readable verdict.

pub mod counter;
pub mod list_append;
pub mod register;
pub mod set;

use std::collections::HashMap;

use crate::verdict::{Anomaly, AnomalyKind};

/// How many anomalies of one kind on one key a verdict lists.
pub const MAX_PER_KIND: usize = 10;

/// Gathers anomalies, keeping [`MAX_PER_KIND`] of each kind per key and counting the rest.
#[derive(Debug, Default)]
pub struct Collector {
    anomalies: Vec<Anomaly>,
    seen: HashMap<(AnomalyKind, Option<String>), usize>,
}

impl Collector {
    pub fn push(&mut self, anomaly: Anomaly) {
        let seen = self
            .seen
            .entry((anomaly.kind, anomaly.key.clone()))
            .or_default();
        *seen += 1;
        if *seen <= MAX_PER_KIND {
            self.anomalies.push(anomaly);
        }
    }

    /// The anomalies kept; the last of each kind says how many more were left out.
    pub fn finish(mut self) -> Vec<Anomaly> {
        for ((kind, key), seen) in self.seen {
            if seen > MAX_PER_KIND {
                if let Some(last) = self
                    .anomalies
                    .iter_mut()
                    .rev()
                    .find(|a| a.kind == kind && a.key == key)
                {
                    last.explanation.push_str(&format!(
                        " ({} more like this not listed)",
                        seen - MAX_PER_KIND
                    ));
                }
            }
        }
        self.anomalies
    }
}

/// Sums of values over events at positions, for "sum of everything before position p".
#[derive(Debug, Default)]
pub(crate) struct PrefixSums {
    /// (position, running total up to and including it), sorted by position.
    points: Vec<(usize, i128)>,
}

impl PrefixSums {
    pub(crate) fn new(mut items: Vec<(usize, i128)>) -> PrefixSums {
        items.sort_unstable_by_key(|&(pos, _)| pos);
        let mut total = 0;
        let points = items
            .into_iter()
            .map(|(pos, v)| {
                total += v;
                (pos, total)
            })
            .collect();
        PrefixSums { points }
    }

    /// The sum of the values at positions before `pos`.
    pub(crate) fn before(&self, pos: usize) -> i128 {
        let n = self.points.partition_point(|&(p, _)| p < pos);
        if n == 0 {
            0
        } else {
            self.points[n - 1].1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_sums_count_only_what_came_strictly_before() {
        let sums = PrefixSums::new(vec![(5, 10), (1, 1), (3, -4)]);
        assert_eq!(
            [0, 1, 2, 4, 5, 6].map(|p| sums.before(p)),
            [0, 0, 1, -3, -3, 7]
        );
        assert_eq!(PrefixSums::new(Vec::new()).before(9), 0);
    }

    #[test]
    fn the_collector_keeps_a_few_of_each_kind_and_counts_the_rest() {
        let mut found = Collector::default();
        let anomaly = |n: usize, key: &str| Anomaly {
            kind: AnomalyKind::Duplicate,
            key: Some(key.to_string()),
            explanation: format!("#{n}"),
            ops: Vec::new(),
            sub_history: Vec::new(),
        };
        for n in 0..MAX_PER_KIND + 3 {
            found.push(anomaly(n, "a"));
        }
        found.push(anomaly(0, "b"));
        let kept = found.finish();
        assert_eq!(kept.len(), MAX_PER_KIND + 1);
        assert_eq!(
            kept[MAX_PER_KIND - 1].explanation,
            format!("#{} (3 more like this not listed)", MAX_PER_KIND - 1)
        );
        assert_eq!(kept[MAX_PER_KIND].explanation, "#0");
    }
}
