//! Data-driven tests of the connection layer: transactions, `WATCH`, `HELLO`, `SELECT`,
//! `CLIENT`, `COMMAND`, `CONFIG`, driven through [`server::session::Session`] with no
//! socket. Same format as `crates/kv/tests/scripts`: `> CMD` lines and the replies as
//! `redis-cli --no-raw` prints them; `c2> CMD` sends the command from a second client
//! (to show one client's write aborting another's `WATCH`).

use std::sync::Arc;

use server::session::Session;
use server::{Config, Shared};

fn run_script(name: &str) {
    let path = format!("{}/tests/scripts/{name}.txt", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let shared = Arc::new(Shared::new(Config::default(), 6379));
    let mut clients = [Session::detached(shared.clone()), Session::detached(shared)];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut failures = Vec::new();
    let mut commands = 0;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        i += 1;
        let (client, command) = if let Some(c) = line.strip_prefix("> ") {
            (0, c)
        } else if let Some(c) = line.strip_prefix("c2> ") {
            (1, c)
        } else {
            assert!(
                line.trim().is_empty() || line.starts_with('#'),
                "{path}:{i}: unexpected {line:?}"
            );
            continue;
        };
        let mut expected = Vec::new();
        while i < lines.len() && !lines[i].starts_with("> ") && !lines[i].starts_with("c2> ") {
            if !lines[i].starts_with('#') && !lines[i].trim().is_empty() {
                expected.push(lines[i]);
            }
            i += 1;
        }
        let args = resp::request::split_inline(command.as_bytes()).expect("balanced quotes");
        let session = &mut clients[client];
        session.begin_batch();
        let (reply, _) = runtime.block_on(session.handle(args));
        commands += 1;
        let got = reply.map(|r| resp::cli::render(&r)).unwrap_or_default();
        let want = expected.join("\n");
        if got != want {
            failures.push(format!(
                "{path}: {line}\n--- want\n{want}\n--- got\n{got}\n"
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

scripts!(transactions, connection, cluster);
