//! Data-driven tests: one script per command family in `tests/scripts/`, commands in,
//! replies out, rendered exactly as `redis-cli --no-raw` prints them (so the same
//! script can be checked against a real `redis-server`; see `tests/golden_vs_redis.rs`
//! in the workspace `tests` crate).
//!
//! Script format:
//! ```text
//! # a comment
//! @now 1000000       (sets the clock in Unix ms for the following commands)
//! > SET k v
//! OK
//! > GET k
//! "v"
//! ```

use kv::{Ctx, Db};
use resp::cli::render;

const DEFAULT_NOW: i64 = 1_700_000_000_000;

/// Runs one script; panics with every mismatch listed.
fn run_script(name: &str) {
    let path = format!("{}/tests/scripts/{name}.txt", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut db = Db::new();
    let mut now = DEFAULT_NOW;
    let mut failures = Vec::new();
    let mut commands = 0;
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        i += 1;
        if let Some(rest) = line.strip_prefix("@now ") {
            now = rest.trim().parse().expect("@now takes milliseconds");
            continue;
        }
        let Some(command) = line.strip_prefix("> ") else {
            assert!(
                line.trim().is_empty() || line.starts_with('#'),
                "{path}:{i}: expected a command, a comment or a directive, got {line:?}"
            );
            continue;
        };
        let mut expected = Vec::new();
        while i < lines.len() && !lines[i].starts_with("> ") && !lines[i].starts_with('@') {
            if !lines[i].starts_with('#') && !lines[i].trim().is_empty() {
                expected.push(lines[i]);
            }
            i += 1;
        }
        let args = resp::request::split_inline(command.as_bytes()).expect("balanced quotes");
        let mut ctx = Ctx {
            now_ms: now,
            seed: 42,
        };
        let reply = match kv::parse(&args, &mut ctx) {
            Ok(cmd) => cmd.execute(&mut db, now),
            Err(e) => e.to_frame(),
        };
        commands += 1;
        let got = render(&reply);
        let want = expected.join("\n");
        if got != want {
            failures.push(format!(
                "{path}: > {command}\n--- want\n{want}\n--- got\n{got}\n"
            ));
        }
    }
    assert!(commands > 0, "{path} has no commands");
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

macro_rules! scripts {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            run_script(stringify!($name));
        }
    )*};
}

scripts!(strings, keys, hashes, lists, sets, zsets);
