//! What a benchmark run measured, as data (serialized to JSON as is) and as Markdown
//! tables with ratios to the reference systems.
//!
//! Invariants: a ratio is always "this system's figure / the reference's figure for the same
//! workload or figure" measured in the same run; Redis-protocol systems are compared with
//! `redis-server` with `appendfsync always` ([`REF_RESP`]), consensus systems (etcd and
//! redraft) with the three-member etcd ([`REF_CONSENSUS`]), so redraft rows carry both; a
//! missing reference prints `—`, never a made-up number.

use crate::stats::Summary;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// The reference for Redis-protocol rows.
pub const REF_RESP: &str = "redis-always";
/// The reference for consensus rows.
pub const REF_CONSENSUS: &str = "etcd-3";
/// How far the load generator and redis-benchmark may disagree on the same workload.
pub const CROSS_CHECK_TOLERANCE: f64 = 0.15;

/// A system under test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct System {
    /// Short id, e.g. `redraft-3`.
    pub id: String,
    /// What it is, e.g. `redraft, three nodes`.
    pub label: String,
    /// Speaks RESP (compared with [`REF_RESP`], cross-checked with redis-benchmark).
    pub resp: bool,
    /// Replicates through consensus (compared with [`REF_CONSENSUS`]).
    pub consensus: bool,
}

/// The requests of a workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Op {
    Set,
    Get,
    /// 90 % GET, 10 % SET.
    Mix,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Set => "SET",
            Op::Get => "GET",
            Op::Mix => "90/10 GET/SET",
        }
    }
}

/// One load point: random keys `key:%012d` below the key space, values of `value_size`
/// bytes, `clients` connections with `pipeline` requests in flight each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Workload {
    pub op: Op,
    pub value_size: usize,
    pub clients: usize,
    pub pipeline: usize,
}

impl Workload {
    pub fn label(&self) -> String {
        format!(
            "{} {} B c{} P{}",
            self.op.name(),
            self.value_size,
            self.clients,
            self.pipeline
        )
    }
}

/// redis-benchmark's own figures for a point (its CSV output has no p99.9).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Crosscheck {
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// How many cores redis-benchmark kept busy (its CPU time over its wall time). It runs
    /// one thread: near 1.0 it was the bottleneck and measured itself, not the server.
    #[serde(default)]
    pub cpu: Option<f64>,
}

/// redis-benchmark at or above this many cores was the bottleneck of its run.
pub const CLIENT_BOUND_CPU: f64 = 0.9;

impl Crosscheck {
    /// Whether redis-benchmark's one thread was saturated.
    pub fn client_bound(&self) -> bool {
        self.cpu.is_some_and(|c| c >= CLIENT_BOUND_CPU)
    }
}

/// One system under one workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub system: String,
    pub workload: Workload,
    /// The workspace's load generator.
    pub ours: Summary,
    /// How many cores the load generator's process kept busy over its runs, where it was
    /// cross-checked (with [`Crosscheck::cpu`], CPU per request of the two clients).
    #[serde(default)]
    pub ours_cpu: Option<f64>,
    /// redis-benchmark with the same clients, pipeline, value size, key space and request
    /// count, where it applies.
    pub redis_benchmark: Option<Crosscheck>,
}

/// A figure that is not a load point: memory, failover, restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    pub system: String,
    /// Stable id, e.g. `rss_1m_mib`; ratios pair figures with the same id.
    pub id: String,
    /// What it is, for the table.
    pub label: String,
    pub value: f64,
    pub unit: String,
    /// How it was measured (tries, members summed...).
    pub detail: String,
}

/// Where a run happened.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub memory_gib: f64,
    pub kernel: String,
    /// Median and p99 of fsync of a 4 KiB write in the data directory, in milliseconds.
    pub fsync_p50_ms: f64,
    pub fsync_p99_ms: f64,
    pub fsync_samples: usize,
    pub versions: Vec<(String, String)>,
}

/// A whole run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub command: String,
    pub started: String,
    pub machine: Machine,
    pub systems: Vec<System>,
    pub points: Vec<Point>,
    pub figures: Vec<Figure>,
    /// Systems that could not be run, and why.
    pub skipped: Vec<String>,
    pub notes: Vec<String>,
}

/// `a / b`, or `None` when `b` is not a positive number.
pub fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0 && a.is_finite()).then(|| a / b)
}

fn fmt_ratio(r: Option<f64>) -> String {
    r.map_or_else(|| "—".to_string(), |r| format!("{r:.2}"))
}

/// Three significant digits, without scientific notation.
pub fn fmt_sig(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let digits = (2 - v.abs().log10().floor() as i32).max(0) as usize;
    format!("{v:.digits$}")
}

impl Report {
    fn system(&self, id: &str) -> Option<&System> {
        self.systems.iter().find(|s| s.id == id)
    }

    fn point(&self, system: &str, w: &Workload) -> Option<&Point> {
        self.points
            .iter()
            .find(|p| p.system == system && &p.workload == w)
    }

    fn figure(&self, system: &str, id: &str) -> Option<&Figure> {
        self.figures
            .iter()
            .find(|f| f.system == system && f.id == id)
    }

    /// The two reference ratios of `system`'s value, given how to find the reference value.
    fn ratios(
        &self,
        system: &str,
        value: f64,
        reference: impl Fn(&str) -> Option<f64>,
    ) -> [String; 2] {
        let sys = self.system(system);
        let resp = sys.is_some_and(|s| s.resp);
        let consensus = sys.is_some_and(|s| s.consensus);
        let r = |on: bool, id: &str| {
            if on {
                fmt_ratio(reference(id).and_then(|b| ratio(value, b)))
            } else {
                String::new()
            }
        };
        [r(resp, REF_RESP), r(consensus, REF_CONSENSUS)]
    }

    /// The load points as a Markdown table, grouped by workload, in the order the workloads
    /// were first measured; `filter` picks the workloads.
    pub fn points_table(&self, filter: impl Fn(&Workload) -> bool) -> String {
        let mut workloads: Vec<Workload> = Vec::new();
        for p in &self.points {
            if filter(&p.workload) && !workloads.contains(&p.workload) {
                workloads.push(p.workload);
            }
        }
        let mut out = String::new();
        out.push_str(
            "| workload | system | req/s | p50 ms | p99 ms | p99.9 ms | errors | \
             redis-benchmark req/s | ours / r-b | ratio vs Redis always | ratio vs etcd |\n",
        );
        out.push_str(
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
        );
        for w in &workloads {
            for s in &self.systems {
                let Some(p) = self.point(&s.id, w) else {
                    continue;
                };
                let (rb, agree) = match &p.redis_benchmark {
                    Some(c) => {
                        let r = ratio(p.ours.rps, c.rps);
                        let mark = match r {
                            Some(r) if (r - 1.0).abs() > CROSS_CHECK_TOLERANCE => {
                                if c.client_bound() {
                                    " (>15 %, r-b CPU-bound)"
                                } else {
                                    " (>15 %)"
                                }
                            }
                            _ => "",
                        };
                        (format!("{:.0}", c.rps), format!("{}{mark}", fmt_ratio(r)))
                    }
                    None => (String::new(), String::new()),
                };
                let [vs_redis, vs_etcd] =
                    self.ratios(&s.id, p.ours.rps, |r| self.point(r, w).map(|p| p.ours.rps));
                let errors = if p.ours.misses > 0 {
                    format!("{} ({} misses)", p.ours.errors, p.ours.misses)
                } else {
                    p.ours.errors.to_string()
                };
                let _ = writeln!(
                    out,
                    "| {} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    w.label(),
                    s.id,
                    p.ours.rps,
                    fmt_sig(p.ours.p50_ms),
                    fmt_sig(p.ours.p99_ms),
                    fmt_sig(p.ours.p999_ms),
                    errors,
                    rb,
                    agree,
                    vs_redis,
                    vs_etcd
                );
            }
        }
        out
    }

    /// The other figures (memory, failover, restart) as a Markdown table.
    pub fn figures_table(&self) -> String {
        let mut ids: Vec<&str> = Vec::new();
        for f in &self.figures {
            if !ids.contains(&f.id.as_str()) {
                ids.push(&f.id);
            }
        }
        let mut out = String::new();
        out.push_str("| figure | system | value | ratio vs Redis always | ratio vs etcd | how |\n");
        out.push_str("| --- | --- | ---: | ---: | ---: | --- |\n");
        for id in ids {
            for s in &self.systems {
                let Some(f) = self.figure(&s.id, id) else {
                    continue;
                };
                let [vs_redis, vs_etcd] =
                    self.ratios(&s.id, f.value, |r| self.figure(r, id).map(|f| f.value));
                let _ = writeln!(
                    out,
                    "| {} | {} | {} {} | {} | {} | {} |",
                    f.label,
                    s.id,
                    fmt_sig(f.value),
                    f.unit,
                    vs_redis,
                    vs_etcd,
                    f.detail
                );
            }
        }
        out
    }

    /// Load points whose two measurements disagree by more than the tolerance.
    pub fn crosscheck_failures(&self) -> Vec<String> {
        self.points
            .iter()
            .filter_map(|p| {
                let c = p.redis_benchmark.as_ref()?;
                let r = ratio(p.ours.rps, c.rps)?;
                ((r - 1.0).abs() > CROSS_CHECK_TOLERANCE).then(|| {
                    let per_request = |cores: Option<f64>, rps: f64| {
                        cores
                            .filter(|_| rps > 0.0)
                            .map_or("?".to_string(), |c| format!("{:.1} µs", c / rps * 1e6))
                    };
                    let cpu = match c.cpu {
                        Some(cpu) => format!(
                            "; CPU per request: load generator {}, redis-benchmark {} ({cpu:.2} \
                             of a core{})",
                            per_request(p.ours_cpu, p.ours.rps),
                            per_request(c.cpu, c.rps),
                            if c.client_bound() { ": the bottleneck" } else { "" }
                        ),
                        None => String::new(),
                    };
                    format!(
                        "{} {}: load generator {:.0} req/s, redis-benchmark {:.0} req/s (ratio {r:.2}){cpu}",
                        p.system,
                        p.workload.label(),
                        p.ours.rps,
                        c.rps
                    )
                })
            })
            .collect()
    }

    /// One line on the cross-check: how many points agree, and how many of the others had
    /// redis-benchmark saturating its one thread. `None` without cross-checked points.
    pub fn crosscheck_summary(&self) -> Option<String> {
        let checked: Vec<(f64, &Crosscheck)> = self
            .points
            .iter()
            .filter_map(|p| {
                let c = p.redis_benchmark.as_ref()?;
                Some((ratio(p.ours.rps, c.rps)?, c))
            })
            .collect();
        if checked.is_empty() {
            return None;
        }
        let off: Vec<&Crosscheck> = checked
            .iter()
            .filter(|(r, _)| (r - 1.0).abs() > CROSS_CHECK_TOLERANCE)
            .map(|(_, c)| *c)
            .collect();
        let bound = off.iter().filter(|c| c.client_bound()).count();
        let fair = checked.iter().filter(|(_, c)| !c.client_bound()).count();
        Some(format!(
            "The load generator and redis-benchmark agree within 15 % on {} of {} points. \
             Of the {} that do not, {bound} had redis-benchmark at {CLIENT_BOUND_CPU} of a core \
             or more (its one thread was the bottleneck); where it was not ({fair} points), \
             they agree on {}.",
            checked.len() - off.len(),
            checked.len(),
            off.len(),
            fair - (off.len() - bound),
        ))
    }

    /// The whole report in Markdown: machine, tables, skipped systems, notes.
    pub fn markdown(&self) -> String {
        let m = &self.machine;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Command: `{}` (started {})\n",
            self.command, self.started
        );
        let _ = writeln!(
            out,
            "Machine: {} cores ({}), {:.1} GiB memory, kernel {}; fsync of 4 KiB in the data \
             directory: p50 {} ms, p99 {} ms ({} samples).\n",
            m.cores,
            m.cpu,
            m.memory_gib,
            m.kernel,
            fmt_sig(m.fsync_p50_ms),
            fmt_sig(m.fsync_p99_ms),
            m.fsync_samples
        );
        if !m.versions.is_empty() {
            let v: Vec<String> = m.versions.iter().map(|(k, v)| format!("{k} {v}")).collect();
            let _ = writeln!(out, "Versions: {}.\n", v.join(", "));
        }
        out.push_str(&self.points_table(|_| true));
        if !self.figures.is_empty() {
            out.push('\n');
            out.push_str(&self.figures_table());
        }
        for s in &self.skipped {
            let _ = writeln!(out, "\nSkipped: {s}");
        }
        if let Some(summary) = self.crosscheck_summary() {
            let _ = writeln!(out, "\n{summary}");
        }
        let failures = self.crosscheck_failures();
        if !failures.is_empty() {
            out.push_str("\nCross-check with redis-benchmark off by more than 15 %:\n");
            for f in failures {
                let _ = writeln!(out, "- {f}");
            }
        }
        for n in &self.notes {
            let _ = writeln!(out, "\n{n}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sys(id: &str, resp: bool, consensus: bool) -> System {
        System {
            id: id.into(),
            label: id.into(),
            resp,
            consensus,
        }
    }

    fn summary(rps: f64) -> Summary {
        Summary {
            requests: 1000,
            errors: 0,
            misses: 0,
            seconds: 1.0,
            rps,
            p50_ms: 0.25,
            p99_ms: 1.5,
            p999_ms: 12.3,
        }
    }

    const SET50: Workload = Workload {
        op: Op::Set,
        value_size: 16,
        clients: 50,
        pipeline: 1,
    };

    fn report() -> Report {
        Report {
            systems: vec![
                sys("redis-always", true, false),
                sys("etcd-3", false, true),
                sys("redraft-3", true, true),
            ],
            points: vec![
                Point {
                    system: "redis-always".into(),
                    workload: SET50,
                    ours: summary(10000.0),
                    ours_cpu: Some(0.5),
                    redis_benchmark: Some(Crosscheck {
                        rps: 9800.0,
                        p50_ms: 0.2,
                        p99_ms: 1.0,
                        cpu: Some(0.5),
                    }),
                },
                Point {
                    system: "etcd-3".into(),
                    workload: SET50,
                    ours: summary(4000.0),
                    ours_cpu: None,
                    redis_benchmark: None,
                },
                Point {
                    system: "redraft-3".into(),
                    workload: SET50,
                    ours: summary(5000.0),
                    ours_cpu: Some(0.5),
                    redis_benchmark: Some(Crosscheck {
                        rps: 4000.0,
                        p50_ms: 0.2,
                        p99_ms: 1.0,
                        cpu: None,
                    }),
                },
            ],
            figures: vec![
                Figure {
                    system: "redis-always".into(),
                    id: "rss".into(),
                    label: "RSS".into(),
                    value: 100.0,
                    unit: "MiB".into(),
                    detail: String::new(),
                },
                Figure {
                    system: "redraft-3".into(),
                    id: "rss".into(),
                    label: "RSS".into(),
                    value: 300.0,
                    unit: "MiB".into(),
                    detail: "sum of 3".into(),
                },
            ],
            ..Report::default()
        }
    }

    #[test]
    fn ratios_divide_by_the_reference_and_refuse_zero() {
        assert_eq!(ratio(5.0, 2.0), Some(2.5));
        assert_eq!(ratio(5.0, 0.0), None);
        assert_eq!(ratio(f64::NAN, 1.0), None);
    }

    #[test]
    fn significant_digits() {
        assert_eq!(fmt_sig(0.0), "0");
        assert_eq!(fmt_sig(0.01234), "0.0123");
        assert_eq!(fmt_sig(1.5), "1.50");
        assert_eq!(fmt_sig(12.26), "12.3");
        assert_eq!(fmt_sig(1234.4), "1234");
    }

    #[test]
    fn points_table_carries_both_ratios_for_redraft_and_flags_disagreement() {
        let t = report().points_table(|_| true);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 5, "{t}");
        assert_eq!(
            lines[2],
            "| SET 16 B c50 P1 | redis-always | 10000 | 0.250 | 1.50 | 12.3 | 0 | 9800 | 1.02 | 1.00 |  |"
        );
        assert_eq!(
            lines[3],
            "| SET 16 B c50 P1 | etcd-3 | 4000 | 0.250 | 1.50 | 12.3 | 0 |  |  |  | 1.00 |"
        );
        assert_eq!(
            lines[4],
            "| SET 16 B c50 P1 | redraft-3 | 5000 | 0.250 | 1.50 | 12.3 | 0 | 4000 | 1.25 (>15 %) | 0.50 | 1.25 |"
        );
        assert_eq!(report().crosscheck_failures().len(), 1);
    }

    #[test]
    fn a_saturated_redis_benchmark_is_named_as_the_bottleneck() {
        let mut r = report();
        assert_eq!(
            r.crosscheck_summary().unwrap(),
            "The load generator and redis-benchmark agree within 15 % on 1 of 2 points. Of the 1 \
             that do not, 0 had redis-benchmark at 0.9 of a core or more (its one thread was the \
             bottleneck); where it was not (2 points), they agree on 1."
        );
        r.points[2].redis_benchmark.as_mut().unwrap().cpu = Some(0.97);
        assert!(
            r.crosscheck_failures()[0].ends_with(
                "(ratio 1.25); CPU per request: load generator 100.0 µs, redis-benchmark \
                 242.5 µs (0.97 of a core: the bottleneck)"
            ),
            "{}",
            r.crosscheck_failures()[0]
        );
        assert!(r
            .points_table(|_| true)
            .contains("| 1.25 (>15 %, r-b CPU-bound) |"));
        assert!(r.crosscheck_summary().unwrap().ends_with(
            "Of the 1 that do not, 1 had redis-benchmark at 0.9 of a core or more (its one \
             thread was the bottleneck); where it was not (1 points), they agree on 1."
        ));
    }

    #[test]
    fn figures_table_and_missing_reference() {
        let t = report().figures_table();
        assert!(
            t.contains("| RSS | redraft-3 | 300 MiB | 3.00 | — | sum of 3 |"),
            "{t}"
        );
    }

    #[test]
    fn report_round_trips_through_json() {
        let r = report();
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<Report>(&json).unwrap(), r);
    }
}
