//! What a signed-in user may run: the users and rules the meta group replicates
//! (`meta::acl`) compiled, on each node, into an [`Access`] per user against Redis's
//! command table ([`table`]: every command and subcommand with its categories and what
//! its keys need), and the checks Redis makes before running a command: the command (or
//! `container|subcommand`) allowed, every key it touches matched by a pattern with the
//! rights it needs. A refusal is `-NOPERM` with Redis's text and an entry in the node's
//! `ACL LOG` ([`Log`]).
//!
//! Compiled access is cached per node ([`Cache`]) and rebuilt when the users' version
//! changes; a session looks at the version once per batch of requests.

mod table;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use meta::acl::{KeyPerm, User, Users};
use resp::Frame;

/// One bit per category, in [`meta::acl::CATEGORIES`]' order.
pub mod categories {
    pub const KEYSPACE: u32 = 1 << 0;
    pub const READ: u32 = 1 << 1;
    pub const WRITE: u32 = 1 << 2;
    pub const SET: u32 = 1 << 3;
    pub const SORTEDSET: u32 = 1 << 4;
    pub const LIST: u32 = 1 << 5;
    pub const HASH: u32 = 1 << 6;
    pub const STRING: u32 = 1 << 7;
    pub const BITMAP: u32 = 1 << 8;
    pub const HYPERLOGLOG: u32 = 1 << 9;
    pub const GEO: u32 = 1 << 10;
    pub const STREAM: u32 = 1 << 11;
    pub const PUBSUB: u32 = 1 << 12;
    pub const ADMIN: u32 = 1 << 13;
    pub const FAST: u32 = 1 << 14;
    pub const SLOW: u32 = 1 << 15;
    pub const BLOCKING: u32 = 1 << 16;
    pub const DANGEROUS: u32 = 1 << 17;
    pub const CONNECTION: u32 = 1 << 18;
    pub const TRANSACTION: u32 = 1 << 19;
    pub const SCRIPTING: u32 = 1 << 20;
}

/// Redis's reply to a refused key.
pub const NOPERM_KEY: &str =
    "NOPERM this user has no permissions to access one of the keys used as arguments";

/// A row of [`table::COMMANDS`].
struct Row {
    name: &'static str,
    categories: u32,
}

/// redraft's own subcommands, after Redis's rows: cluster administration, in the
/// categories of Redis's (`cluster|forget`).
const OWN: &[(&str, u32, bool, bool)] = &[
    (
        "cluster|cancelslotmigrations",
        categories::ADMIN | categories::SLOW | categories::DANGEROUS,
        false,
        false,
    ),
    (
        "cluster|getslotmigrations",
        categories::ADMIN | categories::SLOW | categories::DANGEROUS,
        false,
        false,
    ),
    (
        "cluster|migrateslots",
        categories::ADMIN | categories::SLOW | categories::DANGEROUS,
        false,
        false,
    ),
    (
        "cluster|rebalance",
        categories::ADMIN | categories::SLOW | categories::DANGEROUS,
        false,
        false,
    ),
    (
        "cluster|rebalance-leaders",
        categories::ADMIN | categories::SLOW | categories::DANGEROUS,
        false,
        false,
    ),
    (
        "cluster|transfer-leader",
        categories::ADMIN | categories::SLOW | categories::DANGEROUS,
        false,
        false,
    ),
];

/// Every row: Redis's table, then redraft's own.
fn table_rows() -> impl Iterator<Item = &'static (&'static str, u32, bool, bool)> {
    table::COMMANDS.iter().chain(OWN)
}

fn rows() -> impl Iterator<Item = Row> {
    table_rows().map(|&(name, categories, _, _)| Row { name, categories })
}

/// The row number of a command or `container|sub` name (lower case).
fn row_of(name: &str) -> Option<usize> {
    match table::COMMANDS.binary_search_by(|row| row.0.cmp(name)) {
        Ok(row) => Some(row),
        Err(_) => OWN
            .iter()
            .position(|row| row.0 == name)
            .map(|i| table::COMMANDS.len() + i),
    }
}

/// The row `row_of` numbered.
fn row(row: usize) -> &'static (&'static str, u32, bool, bool) {
    table_rows().nth(row).expect("a row number from row_of")
}

/// True if Redis has a command or subcommand by this lower-case name (what an ACL rule
/// may name: a rule for a command redraft does not serve yet is kept, so an ACL file
/// written for Redis loads).
pub fn known(name: &str) -> bool {
    row_of(name).is_some()
}

/// The bit of category `name` (without `@`).
pub fn category_bit(name: &str) -> Option<u32> {
    meta::acl::CATEGORIES
        .iter()
        .position(|c| *c == name)
        .map(|i| 1 << i)
}

/// The commands of a category, as `ACL CAT <category>` lists them.
pub fn commands_in(bit: u32) -> Vec<&'static str> {
    rows()
        .filter(|r| r.categories & bit != 0)
        .map(|r| r.name)
        .collect()
}

/// The categories of a command or subcommand, as `COMMAND INFO` lists them.
pub fn categories_of(name: &str) -> Vec<&'static str> {
    let Some(row) = row_of(name) else {
        return Vec::new();
    };
    let bits = self::row(row).1;
    meta::acl::CATEGORIES
        .iter()
        .enumerate()
        .filter(|(i, _)| bits & (1 << i) != 0)
        .map(|(_, c)| *c)
        .collect()
}

/// A user's rules compiled for checking.
#[derive(Debug)]
pub struct Access {
    /// Every command on every key: nothing to check.
    everything: bool,
    /// Allowed or not, by row of [`table::COMMANDS`].
    commands: Vec<bool>,
    /// Every key, read and written (`allkeys`).
    all_keys: bool,
    keys: Vec<(KeyPerm, Vec<u8>)>,
}

/// Why a command is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Denied {
    /// The command (its full name, `config|get` for a subcommand).
    Command(String),
    /// One of its keys.
    Key(Vec<u8>),
}

impl Denied {
    /// The client's reply.
    pub fn reply(&self) -> Frame {
        Frame::error(self.text())
    }

    /// The reply's text.
    pub fn text(&self) -> String {
        match self {
            Denied::Command(name) => {
                format!("NOPERM this user has no permissions to run the '{name}' command")
            }
            Denied::Key(_) => NOPERM_KEY.to_string(),
        }
    }

    /// `ACL DRYRUN`'s words for it.
    pub fn dry_run(&self) -> String {
        match self {
            Denied::Command(name) => {
                format!("This user has no permissions to run the '{name}' command")
            }
            Denied::Key(key) => format!(
                "This user has no permissions to access the '{}' key",
                String::from_utf8_lossy(key)
            ),
        }
    }
}

impl Access {
    /// Compiles `user`'s rules: each command starts allowed after `+@all`, refused
    /// otherwise, and each rule in order sets the commands it names (a category its
    /// commands and subcommands, a command itself and its subcommands, `a|b` one
    /// subcommand), as Redis's bitmap does.
    pub fn compile(user: &User) -> Access {
        let mut commands = vec![user.all_commands; table::COMMANDS.len() + OWN.len()];
        for (allow, rule) in &user.commands {
            let category = rule.strip_prefix('@').and_then(category_bit);
            for (row, allowed) in rows().zip(commands.iter_mut()) {
                let hit = match category {
                    Some(bit) => row.categories & bit != 0,
                    None => {
                        row.name == rule
                            || (!rule.contains('|')
                                && row
                                    .name
                                    .strip_prefix(rule.as_str())
                                    .is_some_and(|rest| rest.starts_with('|')))
                    }
                };
                if hit {
                    *allowed = *allow;
                }
            }
        }
        Access {
            everything: user.all_keys() && commands.iter().all(|&a| a),
            commands,
            all_keys: user.all_keys(),
            keys: user.keys.clone(),
        }
    }

    /// True if the user may run every command on every key.
    pub fn allows_everything(&self) -> bool {
        self.everything
    }

    /// Checks a command named `name` (lower case, as in the table) with arguments `args`
    /// (the name first) whose keys are at `keys`: `Ok`, or why it is refused.
    pub fn check(&self, name: &str, args: &[Bytes], keys: &[usize]) -> Result<(), Denied> {
        let (full, row) = full_name(name, args);
        let Some(row) = row else {
            // Not in Redis's table (redraft's own, e.g. `cluster` subcommands it adds):
            // allowed with the container, as its other subcommands are.
            return match row_of(name) {
                Some(r) if self.commands[r] => Ok(()),
                Some(_) => Err(Denied::Command(full)),
                None => Ok(()),
            };
        };
        if !self.commands[row] {
            return Err(Denied::Command(full));
        }
        if self.all_keys || keys.is_empty() {
            return Ok(());
        }
        let &(_, _, mut read, write) = self::row(row);
        if name == "set" && !args[3..].iter().any(|a| kv::args::is(a, "get")) {
            // SET reads its key only with GET (Redis's variable key flags).
            read = false;
        }
        for &i in keys {
            let key = &args[i];
            let allowed = self.keys.iter().any(|(perm, pattern)| {
                (perm.read || !read)
                    && (perm.write || !write)
                    && kv::glob::glob_match(pattern, key, false)
            });
            if !allowed {
                return Err(Denied::Key(key.to_vec()));
            }
        }
        Ok(())
    }
}

/// The name a command is checked and refused by (`config|get` for a container's
/// subcommand), and its row.
fn full_name(name: &str, args: &[Bytes]) -> (String, Option<usize>) {
    if let Some(sub) = args.get(1) {
        let container = format!("{name}|");
        let first = row_of(name).map_or(0, |r| r + 1);
        if table::COMMANDS
            .get(first)
            .is_some_and(|r| r.0.starts_with(&container))
        {
            let full = format!(
                "{container}{}",
                String::from_utf8_lossy(sub).to_ascii_lowercase()
            );
            if let Some(row) = row_of(&full) {
                return (full, Some(row));
            }
        }
    }
    (name.to_string(), row_of(name))
}

/// The users as this node last read them, and each one's compiled access, rebuilt when
/// the users' version changes.
pub struct Cache {
    held: Mutex<Held>,
}

struct Held {
    users: Arc<Users>,
    compiled: BTreeMap<String, Arc<Access>>,
}

impl Cache {
    /// A cache holding `users` for version 0 (the users before any change: a new
    /// cluster's, or those of this node's ACL file until its seed applies).
    pub fn new(users: Users) -> Cache {
        Cache {
            held: Mutex::new(Held {
                users: Arc::new(users),
                compiled: BTreeMap::new(),
            }),
        }
    }

    /// The users at `version`, read with `load` if the cache holds another version.
    pub fn users(&self, version: u64, load: impl FnOnce() -> Users) -> Arc<Users> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if held.users.version != version {
            *held = Held {
                users: Arc::new(load()),
                compiled: BTreeMap::new(),
            };
        }
        held.users.clone()
    }

    /// The access of user `name` under `users` (`None`: no such user), compiled once
    /// per version.
    pub fn access(&self, users: &Users, name: &str) -> Option<Arc<Access>> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let cached = held.users.version == users.version;
        if let Some(access) = held.compiled.get(name).filter(|_| cached) {
            return Some(access.clone());
        }
        let access = Arc::new(Access::compile(users.users.get(name)?));
        if cached {
            held.compiled.insert(name.to_string(), access.clone());
        }
        Some(access)
    }
}

/// Most entries `ACL LOG` keeps (Redis's `acllog-max-len` default).
pub const LOG_LEN: usize = 128;

/// One `ACL LOG` entry.
#[derive(Clone, Debug)]
pub struct Entry {
    pub count: u64,
    /// `command`, `key`, `channel` or `auth`.
    pub reason: &'static str,
    /// `toplevel` or `multi`.
    pub context: &'static str,
    pub object: String,
    pub username: String,
    pub client_info: String,
    pub created: Instant,
    pub updated: Instant,
}

/// The node's `ACL LOG`: the latest refusals first; a refusal like one logged less than
/// a minute ago counts there instead of adding an entry, as Redis groups them.
#[derive(Default)]
pub struct Log {
    entries: Mutex<VecDeque<Entry>>,
}

impl Log {
    pub fn add(
        &self,
        reason: &'static str,
        context: &'static str,
        object: String,
        username: String,
        client_info: String,
    ) {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let same = entries.iter().position(|e| {
            e.reason == reason
                && e.context == context
                && e.object == object
                && e.username == username
                && now.duration_since(e.updated).as_secs() < 60
        });
        if let Some(at) = same {
            let mut entry = entries.remove(at).expect("found above");
            entry.count += 1;
            entry.updated = now;
            entry.client_info = client_info;
            entries.push_front(entry);
            return;
        }
        entries.push_front(Entry {
            count: 1,
            reason,
            context,
            object,
            username,
            client_info,
            created: now,
            updated: now,
        });
        entries.truncate(LOG_LEN);
    }

    /// The latest `count` entries (all for `None`), newest first.
    pub fn latest(&self, count: Option<usize>) -> Vec<Entry> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .iter()
            .take(count.unwrap_or(usize::MAX))
            .cloned()
            .collect()
    }

    pub fn reset(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meta::acl::{parse_op, Change};

    fn user(rules: &[&str]) -> Access {
        let mut users = Users::default();
        let ops = rules
            .iter()
            .map(|r| parse_op(r.as_bytes(), &known).unwrap())
            .collect();
        users.apply(&Change::SetUser {
            name: "u".into(),
            ops,
        });
        Access::compile(&users.users["u"])
    }

    fn args(words: &[&str]) -> Vec<Bytes> {
        words.iter().map(|w| Bytes::from(w.to_string())).collect()
    }

    #[test]
    fn the_table_is_sorted_and_every_command_of_redrafts_is_in_it() {
        assert!(table::COMMANDS.windows(2).all(|w| w[0].0 < w[1].0));
        for name in crate::commands::server::all_names() {
            assert!(known(name), "{name} has no row in the ACL table");
        }
    }

    #[test]
    fn rules_apply_in_order_over_categories_commands_and_subcommands() {
        let a = user(&["+@read", "-get", "+config|get", "~*"]);
        assert_eq!(a.check("mget", &args(&["mget", "k"]), &[1]), Ok(()));
        assert_eq!(
            a.check("get", &args(&["get", "k"]), &[1]),
            Err(Denied::Command("get".into()))
        );
        assert_eq!(
            a.check("config", &args(&["config", "GET", "x"]), &[]),
            Ok(())
        );
        assert_eq!(
            a.check("config", &args(&["config", "set", "x", "y"]), &[]),
            Err(Denied::Command("config|set".into()))
        );
        let admin = user(&["+@all", "-@admin", "allkeys"]);
        for sub in ["forget", "rebalance-leaders", "transfer-leader"] {
            let args = args(&["cluster", sub, "1"]);
            assert!(admin.check("cluster", &args, &[]).is_err(), "{sub}");
        }
        assert_eq!(
            admin.check("cluster", &args(&["cluster", "slots"]), &[]),
            Ok(())
        );
        let b = user(&["+@all", "-config", "allkeys"]);
        assert!(b
            .check("config", &args(&["config", "get", "x"]), &[])
            .is_err());
        assert_eq!(b.check("set", &args(&["set", "k", "v"]), &[1]), Ok(()));
        let c = user(&["+@all", "-@dangerous", "allkeys"]);
        assert!(c.check("flushall", &args(&["flushall"]), &[]).is_err());
        assert!(c.check("keys", &args(&["keys", "*"]), &[]).is_err());
        assert_eq!(c.check("get", &args(&["get", "k"]), &[1]), Ok(()));
    }

    #[test]
    fn keys_need_the_rights_the_command_uses() {
        let a = user(&["+@all", "~k*", "%R~r*", "%W~w*"]);
        let ok = |name: &str, words: &[&str], keys: &[usize]| a.check(name, &args(words), keys);
        assert_eq!(ok("get", &["get", "r1"], &[1]), Ok(()));
        assert_eq!(
            ok("set", &["set", "r1", "v"], &[1]),
            Err(Denied::Key(b"r1".to_vec()))
        );
        assert_eq!(ok("set", &["set", "w1", "v"], &[1]), Ok(()));
        assert_eq!(
            ok("set", &["set", "w1", "v", "GET"], &[1]),
            Err(Denied::Key(b"w1".to_vec()))
        );
        assert_eq!(
            ok("incr", &["incr", "w1"], &[1]),
            Err(Denied::Key(b"w1".to_vec()))
        );
        assert_eq!(ok("incr", &["incr", "k1"], &[1]), Ok(()));
        assert_eq!(
            ok("get", &["get", "x"], &[1]),
            Err(Denied::Key(b"x".to_vec()))
        );
        assert_eq!(
            ok("mget", &["mget", "k1", "x"], &[1, 2]),
            Err(Denied::Key(b"x".to_vec()))
        );
    }

    #[test]
    fn the_log_groups_alike_refusals_newest_first() {
        let log = Log::default();
        log.add("key", "toplevel", "x".into(), "u".into(), "id=1".into());
        log.add(
            "command",
            "toplevel",
            "get".into(),
            "u".into(),
            "id=1".into(),
        );
        log.add("key", "toplevel", "x".into(), "u".into(), "id=2".into());
        let entries = log.latest(None);
        assert_eq!(entries.len(), 2);
        assert_eq!((entries[0].reason, entries[0].count), ("key", 2));
        assert_eq!(entries[0].client_info, "id=2");
        assert_eq!(log.latest(Some(1)).len(), 1);
        log.reset();
        assert!(log.latest(None).is_empty());
    }
}
