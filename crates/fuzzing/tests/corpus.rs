//! Replays the committed corpus of every fuzz target (`fuzz/corpus/<target>/`) through the
//! target's checks, on stable Rust, in `make test`: an input that once found a bug, or
//! that reaches code others do not, is tried again by every run.

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("the corpus of {target} in {}: {e}", dir.display()));
    let mut n = 0;
    for entry in entries {
        let path = entry.expect("a corpus entry").path();
        let data = std::fs::read(&path).expect("a corpus file");
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(outcome.is_ok(), "{target}: {} fails", path.display());
        n += 1;
    }
    assert!(n > 0, "the corpus of {target} is empty");
    eprintln!("{target}: {n} inputs replayed");
}

#[test]
fn resp_request() {
    replay("resp_request", fuzzing::resp_request);
}

#[test]
fn kv_command() {
    replay("kv_command", fuzzing::kv_command);
}

#[test]
fn proposal() {
    replay("proposal", fuzzing::proposal);
}

#[test]
fn snapshot() {
    replay("snapshot", fuzzing::snapshot);
}

#[test]
fn glob() {
    replay("glob", fuzzing::glob);
}

/// The reference the glob target compares with agrees with hand-checked cases, so that
/// agreement with it means something.
#[test]
fn the_glob_reference_knows_redis_rules() {
    let cases: &[(&str, &str, bool, bool)] = &[
        ("*", "", false, false),
        ("", "", false, true),
        ("a*b*c", "axxbyyc", false, true),
        ("a*b*c", "axxbyy", false, false),
        ("h[^e]llo", "hello", false, false),
        ("h[a-b]llo", "hbllo", false, true),
        ("a[bc", "ab", false, true),
        ("a\\", "a\\", false, true),
        ("[\\A]", "a", true, false),
        ("[A-C]", "b", true, true),
        ("HELLO", "hello", true, true),
        ("a\\*b", "axb", false, false),
    ];
    for &(pattern, string, nocase, want) in cases {
        assert_eq!(
            fuzzing::reference_glob(pattern.as_bytes(), string.as_bytes(), nocase),
            want,
            "{pattern:?} {string:?} nocase {nocase}"
        );
    }
    assert!(fuzzing::reference_glob(b"[a-\xe9]", b"A", false));
    assert!(!fuzzing::reference_glob(b"[a-\xe9]", b"b", false));
}

#[test]
fn acl_rules() {
    replay("acl_rules", fuzzing::acl_rules);
}

#[test]
fn grpc_message() {
    replay("grpc_message", fuzzing::grpc_message);
}
