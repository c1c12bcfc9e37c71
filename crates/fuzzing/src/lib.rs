//! What the fuzz targets in `fuzz/` check on arbitrary bytes, in one place so that the
//! test that replays their corpus (`tests/corpus.rs`, in `make test`) runs the very same
//! checks on stable Rust. Each function returns normally for any input, or panics on a
//! finding: a panic inside the code under test, or a disagreement with what it promises
//! (a round trip that changes a value, a glob that disagrees with the reference).
//!
//! Targets (`fuzz/fuzz_targets/<name>.rs` calls the function of the same name):
//! - [`resp_request`]: the request framing of every client byte (`resp::request`), whole
//!   or fed in two pieces;
//! - [`kv_command`]: command parsing and execution (`kv::parse`, then each command run
//!   against a small database);
//! - [`proposal`]: a log entry's payload as read back from disk (`kv::Proposal::decode`),
//!   re-encoded and applied;
//! - [`snapshot`]: a snapshot file as read back from disk (`kv::Db::read_snapshot`);
//! - [`glob`]: `kv::glob` against an independent reference matcher.

use bytes::Bytes;

/// The fuzz targets, each a function of this crate and a binary of `fuzz/`.
pub const TARGETS: [&str; 5] = ["resp_request", "kv_command", "proposal", "snapshot", "glob"];

/// Starting inputs for `target`'s corpus: well-formed inputs of every kind, so fuzzing
/// begins inside the code rather than at its first check. `cargo run -p fuzzing
/// --example seeds` writes them (see the Makefile's `fuzz`); the replay test runs them too.
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    let line = |l: &str| -> Vec<Bytes> {
        l.split(' ')
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect()
    };
    match target {
        "resp_request" => {
            let mut out: Vec<Vec<u8>> = [
                "*1\r\n$4\r\nPING\r\n",
                "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n",
                "PING\r\n",
                "SET k \"a b\" 'c'\r\n",
                "*2\r\n$3\r\nGET\r\n$-1\r\n",
                "*1\r\n$536870913\r\n",
                "*-1\r\n",
                "*1\r\n$3\r\nGE",
                "\r\n\r\nPING\r\n",
            ]
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect();
            out.push(b"*2\r\n$4\r\nECHO\r\n$5\r\n\x00\xff\r\n\x01\r\n".to_vec());
            out
        }
        "kv_command" => kv::command::specs()
            .map(|spec| {
                let mut v = spec.name.as_bytes().to_vec();
                for arg in ["s", "l", "1", "z", "h", "0", "-1"] {
                    v.push(0);
                    v.extend_from_slice(arg.as_bytes());
                }
                v
            })
            .collect(),
        "proposal" => {
            let command = kv::Proposal::Command {
                args: line("SET k v EX 10"),
                seed: 3,
            };
            let exec = kv::Proposal::Exec {
                watches: vec![],
                cmds: vec![(line("INCR n"), 1), (line("LPUSH l a"), 2)],
            };
            let claim = kv::Proposal::Claim(kv::Claim {
                epoch: 1,
                ranges: vec![(types::Slot(0), types::Slot(8191))],
            });
            vec![
                command.encode(),
                command.encode_routed(types::Epoch(1)),
                exec.encode(),
                exec.encode_routed(types::Epoch(2)),
                kv::Proposal::ExpireKeys(line("a b")).encode(),
                claim.encode(),
            ]
        }
        "snapshot" => {
            let mut out = Vec::new();
            for db in [kv::Db::new(), small_db()] {
                let mut bytes = Vec::new();
                db.write_snapshot(&mut bytes).expect("write to memory");
                out.push(bytes);
            }
            out
        }
        "glob" => [
            &b"*\0abc"[..],
            b"a*b*c\0axxbyyc",
            b"h[^e]llo\0hallo",
            b"[a-\xe9]\0A",
            b"a\\*b\0a*b",
            b"a*a*a*a*a*a*a*b\0aaaaaaaaaaaaaaaaaaaaaaaa",
            b"[\0",
            b"?\0",
        ]
        .iter()
        .map(|s| s.to_vec())
        .collect(),
        _ => Vec::new(),
    }
}

/// The RESP request framing: `check` never panics and always makes progress or asks for
/// more; a complete request parses; the verdict does not depend on how the bytes
/// arrived (whole, or in two pieces with the resumable check).
pub fn resp_request(data: &[u8]) {
    use resp::request::{check, check_resuming, parse, Check, Limits, Progress};
    let limits = Limits::default();
    let whole = check(data, &limits);
    if let Ok(Check::Complete(len)) = &whole {
        assert!(
            *len > 0 && *len <= data.len(),
            "a complete request of {len} bytes"
        );
        let _ = parse(Bytes::copy_from_slice(&data[..*len]));
    }
    // The same bytes in two pieces: the first half checked, then all of it, resuming.
    let cut = data.first().map_or(0, |&b| b as usize % (data.len() + 1));
    let mut progress = Progress::default();
    let _ = check_resuming(&data[..cut], &limits, &mut progress);
    let resumed = check_resuming(data, &limits, &mut progress);
    match (&whole, &resumed) {
        (Ok(a), Ok(b)) => assert_eq!(
            format!("{a:?}"),
            format!("{b:?}"),
            "framing depends on the pieces"
        ),
        (Err(_), Err(_)) => {}
        (a, b) => panic!("framing depends on the pieces: {a:?} whole, {b:?} resumed"),
    }
}

/// Splits fuzz bytes into a command's arguments at each zero byte.
fn args(data: &[u8]) -> Vec<Bytes> {
    data.split(|&b| b == 0)
        .map(Bytes::copy_from_slice)
        .collect()
}

/// A database with a key of each type, for commands to find something to work on: a
/// copy of one built once (copies behave as the original; building it for every input
/// took most of a run).
fn small_db() -> kv::Db {
    static TEMPLATE: std::sync::OnceLock<kv::Db> = std::sync::OnceLock::new();
    TEMPLATE.get_or_init(build_small_db).clone()
}

fn build_small_db() -> kv::Db {
    let mut db = kv::Db::new();
    let setup = [
        "SET s 10",
        "RPUSH l a b c 1 2 3",
        "HSET h f 1 g 2.5 k v",
        "SADD t a b 1 2",
        "ZADD z 1 a 2 b 3 c",
        "SET e v PX 5",
    ];
    for line in setup {
        let args: Vec<Bytes> = line
            .split(' ')
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect();
        let mut ctx = kv::Ctx { now_ms: 1, seed: 1 };
        let cmd = kv::parse(&args, &mut ctx).expect("the set-up parses");
        cmd.execute(&mut db, 1);
    }
    db
}

/// Command parsing and execution: any arguments parse to a command or an error reply,
/// and a command runs against a database holding each type without panicking.
pub fn kv_command(data: &[u8]) {
    let args = args(data);
    let mut ctx = kv::Ctx {
        now_ms: 1_000,
        seed: 7,
    };
    if let Ok(cmd) = kv::parse(&args, &mut ctx) {
        let mut db = small_db();
        cmd.execute(&mut db, 1_000);
        // The database it left behind is still whole.
        let _ = db.digest(1_000);
    }
}

/// A proposal as read back from disk: decoding never panics; what decodes re-encodes to
/// the same bytes, and applies to a database without panicking.
pub fn proposal(data: &[u8]) {
    let Ok(proposal) = kv::Proposal::decode(data) else {
        return;
    };
    assert_eq!(
        kv::Proposal::decode(&proposal.encode()).ok().as_ref(),
        Some(&proposal),
        "a proposal that does not survive its own encoding"
    );
    let shared = kv::Proposal::decode_shared(&Bytes::copy_from_slice(data));
    assert_eq!(
        shared.ok().as_ref(),
        Some(&proposal),
        "shared decoding differs"
    );
    let mut db = small_db();
    let _ = proposal.apply(&mut db, 2_000);
}

/// A snapshot as read back from disk: reading never panics, and a snapshot that reads
/// writes back to one that reads to the same data.
pub fn snapshot(data: &[u8]) {
    let Ok(db) = kv::Db::read_snapshot(&mut &data[..]) else {
        return;
    };
    let mut again = Vec::new();
    db.write_snapshot(&mut again).expect("write to memory");
    let reread = kv::Db::read_snapshot(&mut &again[..]).expect("its own snapshot reads");
    assert_eq!(
        reread.digest(0),
        db.digest(0),
        "a snapshot round trip changed the data"
    );
}

/// `kv::glob` agrees with [`reference_glob`] on a pattern and a string split from the
/// bytes at the first zero byte (both short, for the reference's sake), with and without
/// case folding.
pub fn glob(data: &[u8]) {
    let (pattern, string) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    if pattern.len() > 48 || string.len() > 48 {
        return;
    }
    for nocase in [false, true] {
        assert_eq!(
            kv::glob::glob_match(pattern, string, nocase),
            reference_glob(pattern, string, nocase),
            "pattern {:?}, string {:?}, nocase {nocase}",
            String::from_utf8_lossy(pattern),
            String::from_utf8_lossy(string)
        );
    }
}

/// Redis 7.0's glob semantics written the plain way, for comparison: a table of which
/// pattern suffix matches which string suffix, filled from the ends. Redis's quirks are
/// spelled out: an empty string matches only the empty pattern; a class runs to `]` or
/// to the end of the pattern; `\x` in a class compares exactly; ranges swap reversed ends
/// and compare as signed chars; a trailing lone `\` is a literal; past 1000 `*` runs a
/// match fails.
pub fn reference_glob(pattern: &[u8], string: &[u8], nocase: bool) -> bool {
    if string.is_empty() {
        return pattern.is_empty();
    }
    // The pattern as tokens: `None` for a `*` run, else the set of bytes it matches.
    let mut tokens: Vec<Option<[bool; 256]>> = Vec::new();
    let mut p = 0;
    let fold = |b: u8| if nocase { b.to_ascii_lowercase() } else { b };
    while p < pattern.len() {
        let mut set = [false; 256];
        match pattern[p] {
            b'*' => {
                while p < pattern.len() && pattern[p] == b'*' {
                    p += 1;
                }
                tokens.push(None);
                continue;
            }
            b'?' => {
                set = [true; 256];
                p += 1;
            }
            b'[' => {
                p += 1;
                let negated = pattern.get(p) == Some(&b'^');
                if negated {
                    p += 1;
                }
                while p < pattern.len() && pattern[p] != b']' {
                    if pattern[p] == b'\\' && p + 1 < pattern.len() {
                        set[pattern[p + 1] as usize] = true;
                        p += 2;
                    } else if p + 2 < pattern.len() && pattern[p + 1] == b'-' {
                        let (a, b) = (pattern[p] as i8, pattern[p + 2] as i8);
                        let (lo, hi) = (a.min(b), a.max(b));
                        let f = |x: i8| fold(x as u8) as i8;
                        for c in 0..=255u8 {
                            if (f(lo)..=f(hi)).contains(&f(c as i8)) {
                                set[c as usize] = true;
                            }
                        }
                        p += 3;
                    } else {
                        for c in 0..=255u8 {
                            if fold(c) == fold(pattern[p]) {
                                set[c as usize] = true;
                            }
                        }
                        p += 1;
                    }
                }
                p += 1; // the `]`, or past the end
                if negated {
                    set.iter_mut().for_each(|b| *b = !*b);
                }
            }
            literal => {
                let literal = if literal == b'\\' && p + 1 < pattern.len() {
                    p += 1;
                    pattern[p]
                } else {
                    literal
                };
                for c in 0..=255u8 {
                    if fold(c) == fold(literal) {
                        set[c as usize] = true;
                    }
                }
                p += 1;
            }
        }
        tokens.push(Some(set));
    }
    // A match that passes more than 1000 `*` runs before the pattern's end fails.
    let stars_before: Vec<usize> = tokens
        .iter()
        .scan(0, |n, t| {
            if t.is_none() {
                *n += 1;
            }
            Some(*n)
        })
        .collect();
    // matches[i][j]: tokens[i..] match string[j..].
    let (n, m) = (tokens.len(), string.len());
    let mut matches = vec![vec![false; m + 1]; n + 1];
    matches[n][m] = true;
    for i in (0..n).rev() {
        for j in (0..=m).rev() {
            matches[i][j] = match &tokens[i] {
                // A trailing run matches any rest; an inner one passing the limit fails.
                None if i + 1 == n => true,
                None if stars_before[i] > 1000 => false,
                None => (j..m).any(|k| matches[i + 1][k]) || (j == m && matches[i + 1][m]),
                Some(set) => j < m && set[string[j] as usize] && matches[i + 1][j + 1],
            };
        }
    }
    matches[0][0]
}
