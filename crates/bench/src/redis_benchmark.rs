//! `redis-benchmark` as the cross-check: the arguments that make it run the same workload as
//! the load generator (`-r` key space with `key:%012d` keys, `-d` value size of `x` bytes,
//! `-c` clients, `-P` pipeline, `-n` requests) and the parsing of its `--csv` output.
//!
//! Invariant: only SET and GET are cross-checked (redis-benchmark has no read/write mix), and
//! a CSV without the test's row is an error, never a zero.

use crate::report::{Crosscheck, Op, Workload};
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum CsvError {
    #[error("redis-benchmark printed no {test} row; its output was: {output:?}")]
    NoRow { test: String, output: String },
    #[error("redis-benchmark row has a bad number in column {column}: {row:?}")]
    BadNumber { column: &'static str, row: String },
}

/// The `-t` test name for `op`, if redis-benchmark can run it.
pub fn test_name(op: Op) -> Option<&'static str> {
    match op {
        Op::Set => Some("set"),
        Op::Get => Some("get"),
        Op::Mix => None,
    }
}

/// Arguments (after the program name) for `w` against `host:port` with `requests` requests,
/// over a key space of `keys`; `None` for a workload redis-benchmark cannot run.
pub fn args(host: &str, port: u16, w: &Workload, keys: u64, requests: u64) -> Option<Vec<String>> {
    let test = test_name(w.op)?;
    Some(
        [
            "-h",
            host,
            "-p",
            &port.to_string(),
            "-c",
            &w.clients.to_string(),
            "-n",
            &requests.to_string(),
            "-P",
            &w.pipeline.to_string(),
            "-r",
            &keys.to_string(),
            "-d",
            &w.value_size.to_string(),
            "-t",
            test,
            "--csv",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
    )
}

/// The figures of `test` (e.g. `SET`) in redis-benchmark's `--csv` output.
pub fn parse_csv(output: &str, test: &str) -> Result<Crosscheck, CsvError> {
    let want = format!("\"{}\"", test.to_ascii_uppercase());
    let row = output
        .lines()
        .find(|l| l.split(',').next() == Some(want.as_str()))
        .ok_or_else(|| CsvError::NoRow {
            test: test.to_ascii_uppercase(),
            output: output.chars().take(400).collect(),
        })?;
    let cols: Vec<&str> = row.split(',').map(|c| c.trim_matches('"')).collect();
    let num = |i: usize, column: &'static str| {
        cols.get(i)
            .and_then(|c| c.parse::<f64>().ok())
            .ok_or_else(|| CsvError::BadNumber {
                column,
                row: row.to_string(),
            })
    };
    Ok(Crosscheck {
        rps: num(1, "rps")?,
        p50_ms: num(4, "p50_latency_ms")?,
        p99_ms: num(6, "p99_latency_ms")?,
        cpu: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUT: &str = "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\"p95_latency_ms\",\"p99_latency_ms\",\"max_latency_ms\"\n\
                       \"SET\",\"98039.22\",\"0.034\",\"0.008\",\"0.039\",\"0.055\",\"0.079\",\"0.191\"\n\
                       \"GET\",\"100000.00\",\"0.033\",\"0.008\",\"0.031\",\"0.047\",\"0.071\",\"0.215\"\n";

    #[test]
    fn parses_the_rows_of_redis_benchmark_7_csv() {
        assert_eq!(
            parse_csv(OUT, "set").unwrap(),
            Crosscheck {
                rps: 98039.22,
                p50_ms: 0.039,
                p99_ms: 0.079,
                cpu: None,
            }
        );
        assert_eq!(parse_csv(OUT, "GET").unwrap().rps, 100000.0);
    }

    #[test]
    fn a_missing_row_or_bad_number_is_an_error() {
        assert!(matches!(
            parse_csv("Could not connect", "set"),
            Err(CsvError::NoRow { .. })
        ));
        let bad = "\"SET\",\"fast\",\"0\",\"0\",\"0\",\"0\",\"0\",\"0\"";
        assert!(matches!(
            parse_csv(bad, "set"),
            Err(CsvError::BadNumber { column: "rps", .. })
        ));
    }

    #[test]
    fn arguments_match_the_workload() {
        let w = Workload {
            op: Op::Get,
            value_size: 256,
            clients: 50,
            pipeline: 16,
        };
        let a = args("127.0.0.1", 20003, &w, 100_000, 5000)
            .unwrap()
            .join(" ");
        assert_eq!(
            a,
            "-h 127.0.0.1 -p 20003 -c 50 -n 5000 -P 16 -r 100000 -d 256 -t get --csv"
        );
        let mix = Workload { op: Op::Mix, ..w };
        assert_eq!(args("h", 1, &mix, 10, 10), None);
    }
}
