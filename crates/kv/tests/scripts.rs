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
use resp::Frame;

const DEFAULT_NOW: i64 = 1_700_000_000_000;

/// Renders a reply the way `redis-cli --no-raw` does for RESP2.
pub fn render(frame: &Frame) -> String {
    let mut out = String::new();
    render_into(frame, "", &mut out);
    if out.ends_with('\n') {
        out.pop();
    }
    out
}

fn repr(bytes: &[u8]) -> String {
    let mut s = String::from("\"");
    for &b in bytes {
        match b {
            b'\\' => s.push_str("\\\\"),
            b'"' => s.push_str("\\\""),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\t' => s.push_str("\\t"),
            7 => s.push_str("\\a"),
            8 => s.push_str("\\b"),
            0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s.push('"');
    s
}

fn render_into(frame: &Frame, prefix: &str, out: &mut String) {
    match frame {
        Frame::Simple(s) => {
            out.push_str(s);
            out.push('\n');
        }
        Frame::Status(s) => {
            out.push_str(s);
            out.push('\n');
        }
        Frame::Error(e) => {
            out.push_str("(error) ");
            out.push_str(e);
            out.push('\n');
        }
        Frame::Integer(n) => out.push_str(&format!("(integer) {n}\n")),
        Frame::Bulk(b) | Frame::Verbatim(_, b) => {
            out.push_str(&repr(b));
            out.push('\n');
        }
        Frame::Null | Frame::NullArray => out.push_str("(nil)\n"),
        Frame::Double(d) => {
            out.push_str(&repr(resp::double::format_g17(*d).as_bytes()));
            out.push('\n');
        }
        Frame::Boolean(b) => out.push_str(&format!("(integer) {}\n", *b as i64)),
        Frame::Map(pairs) | Frame::Pairs(pairs) => {
            let flat: Vec<Frame> = pairs.iter().flat_map(|(k, v)| [k.clone(), v.clone()]).collect();
            render_into(&Frame::Array(flat), prefix, out)
        }
        Frame::Array(items) | Frame::Set(items) | Frame::Push(items) => {
            if items.is_empty() {
                out.push_str("(empty array)\n");
                return;
            }
            let width = items.len().to_string().len();
            let child_prefix = format!("{prefix}{}", " ".repeat(width + 2));
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(prefix);
                }
                out.push_str(&format!("{:>width$}) ", i + 1));
                render_into(item, &child_prefix, out);
            }
        }
        Frame::Raw(b) => out.push_str(&String::from_utf8_lossy(b)),
    }
}

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
        let mut ctx = Ctx { now_ms: now, seed: 42 };
        let reply = match kv::parse(&args, &mut ctx) {
            Ok(cmd) => cmd.execute(&mut db, now),
            Err(e) => e.to_frame(),
        };
        commands += 1;
        let got = render(&reply);
        let want = expected.join("\n");
        if got != want {
            failures.push(format!("{path}: > {command}\n--- want\n{want}\n--- got\n{got}\n"));
        }
    }
    assert!(commands > 0, "{path} has no commands");
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
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
