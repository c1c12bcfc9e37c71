//! `lincheck <workload> <history.jsonl> [--json]`: checks a recorded history and prints
//! the verdict (or, with `--json`, the report as JSON, as the harness writes
//! `verdict.json`). Exit status: 0 valid, 1 invalid, 2 unknown or a usage / input error.

use std::fs::File;
use std::io::BufReader;
use std::process::ExitCode;

use anyhow::{bail, Context};
use lincheck::{check, History, Workload};

const USAGE: &str = "usage: lincheck <register|counter|set|list-append> <history.jsonl> [--json]";

fn main() -> ExitCode {
    match run() {
        Ok(Some(true)) => ExitCode::SUCCESS,
        Ok(Some(false)) => ExitCode::from(1),
        Ok(None) => ExitCode::from(2),
        Err(err) => {
            eprintln!("lincheck: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn run() -> anyhow::Result<Option<bool>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|a| a == "--json");
    let positional: Vec<&String> = args.iter().filter(|a| *a != "--json").collect();
    let [workload, path] = positional[..] else {
        bail!("{USAGE}");
    };
    let workload: Workload = workload.parse()?;
    let file = File::open(path).with_context(|| format!("opening {path}"))?;
    let history =
        History::read_jsonl(BufReader::new(file)).with_context(|| format!("reading {path}"))?;
    let report = check(workload, &history);
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    Ok(report.valid())
}
