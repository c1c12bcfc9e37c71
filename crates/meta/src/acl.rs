//! Users and their rules, as the meta group replicates them (Redis's ACL, kept in the log
//! instead of per node): [`Users`] is the state, [`Change`] what an entry asks for, and
//! [`parse_op`] reads one of Redis's `ACL SETUSER` rules into an [`Op`].
//!
//! Like the rest of this crate it is pure: a clear-text password never reaches the log
//! (`>password` becomes its SHA-256 before it is proposed, as Redis stores it), and
//! [`Users::apply`] is a function of the state and the change. What a rule *means* for a
//! command (which commands a category holds, which keys a command reads) is the server's
//! business; here rules are kept as Redis 7.2 keeps them: in order, with a rule for the
//! same command or category replacing the earlier one, so `ACL GETUSER` and `ACL LIST`
//! describe a user with the rules it was given.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Redis's categories, in the order `ACL CAT` lists them.
pub const CATEGORIES: [&str; 21] = [
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// The user every connection starts as.
pub const DEFAULT_USER: &str = "default";

/// What a key pattern allows: `~` both, `%R~` reading, `%W~` writing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyPerm {
    pub read: bool,
    pub write: bool,
}

/// One user (see [`User::describe`] for how Redis writes it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub enabled: bool,
    /// Any password signs in (`nopass`).
    pub nopass: bool,
    /// SHA-256 of each password, 64 lower-case hex digits, in the order added.
    pub passwords: Vec<String>,
    /// Key patterns, in the order added; `[(both, "*")]` for `allkeys`.
    pub keys: Vec<(KeyPerm, Vec<u8>)>,
    /// Channel patterns; `["*"]` for `allchannels`.
    pub channels: Vec<Vec<u8>>,
    /// True after `+@all`: the rules below are exceptions to "every command".
    pub all_commands: bool,
    /// `(allowed, name)`: `name` is a command (`get`), a subcommand (`config|get`) or a
    /// category (`@read`), lower case; later rules win.
    pub commands: Vec<(bool, String)>,
    /// `sanitize-payload` (`Some(true)`) or `skip-sanitize-payload`, if given.
    pub sanitize_payload: Option<bool>,
}

impl Default for User {
    /// A new user: off, no password, no keys, no channels, no commands.
    fn default() -> User {
        User {
            enabled: false,
            nopass: false,
            passwords: Vec::new(),
            keys: Vec::new(),
            channels: Vec::new(),
            all_commands: false,
            commands: Vec::new(),
            sanitize_payload: None,
        }
    }
}

/// One `ACL SETUSER` rule, parsed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    On,
    Off,
    NoPass,
    ResetPass,
    /// `>password` (hashed) or `#hash`.
    AddPassword(String),
    /// `<password` (hashed) or `!hash`.
    RemovePassword(String),
    AllKeys,
    ResetKeys,
    KeyPattern(KeyPerm, Vec<u8>),
    AllChannels,
    ResetChannels,
    ChannelPattern(Vec<u8>),
    AllCommands,
    NoCommands,
    /// `+name` or `-name` (a command, `command|sub` or `@category`).
    Command(bool, String),
    Sanitize(bool),
    /// `reset`: `resetpass resetkeys resetchannels off sanitize-payload -@all`.
    Reset,
}

/// Why a rule is refused: the text after `ACL SETUSER modifier '<rule>': `.
pub type Refusal = String;

/// The SHA-256 of `password` as Redis stores it.
pub fn hash_password(password: &[u8]) -> String {
    Sha256::digest(password)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Reads one rule. `known` says whether a command or `command|subcommand` name (lower
/// case) exists; categories are [`CATEGORIES`].
pub fn parse_op(rule: &[u8], known: &dyn Fn(&str) -> bool) -> Result<Op, Refusal> {
    const SYNTAX: &str = "Syntax error";
    let lower = rule.to_ascii_lowercase();
    let word = |w: &str| lower == w.as_bytes();
    let op =
        if word("on") {
            Op::On
        } else if word("off") {
            Op::Off
        } else if word("nopass") {
            Op::NoPass
        } else if word("resetpass") {
            Op::ResetPass
        } else if word("allkeys") {
            Op::AllKeys
        } else if word("resetkeys") {
            Op::ResetKeys
        } else if word("allchannels") {
            Op::AllChannels
        } else if word("resetchannels") {
            Op::ResetChannels
        } else if word("allcommands") || word("+@all") {
            Op::AllCommands
        } else if word("nocommands") || word("-@all") {
            Op::NoCommands
        } else if word("sanitize-payload") {
            Op::Sanitize(true)
        } else if word("skip-sanitize-payload") {
            Op::Sanitize(false)
        } else if word("reset") {
            Op::Reset
        } else {
            match rule.first() {
                Some(b'>') => Op::AddPassword(hash_password(&rule[1..])),
                Some(b'<') => Op::RemovePassword(hash_password(&rule[1..])),
                Some(b'#') => Op::AddPassword(check_hash(&rule[1..])?),
                Some(b'!') => Op::RemovePassword(check_hash(&rule[1..])?),
                Some(b'~') => Op::KeyPattern(
                    KeyPerm {
                        read: true,
                        write: true,
                    },
                    rule[1..].to_vec(),
                ),
                Some(b'%') => {
                    let tilde = rule.iter().position(|&b| b == b'~').ok_or(SYNTAX)?;
                    let (mut read, mut write) = (false, false);
                    for &c in &rule[1..tilde] {
                        match c.to_ascii_uppercase() {
                            b'R' => read = true,
                            b'W' => write = true,
                            _ => return Err(SYNTAX.into()),
                        }
                    }
                    if !read && !write {
                        return Err(SYNTAX.into());
                    }
                    Op::KeyPattern(KeyPerm { read, write }, rule[tilde + 1..].to_vec())
                }
                Some(b'&') => Op::ChannelPattern(rule[1..].to_vec()),
                Some(&sign @ (b'+' | b'-')) => {
                    let name = String::from_utf8_lossy(&lower[1..]).into_owned();
                    let exists = match name.strip_prefix('@') {
                        Some(category) => CATEGORIES.contains(&category),
                        None => known(&name),
                    };
                    if !exists {
                        return Err("Unknown command or category name in ACL".into());
                    }
                    Op::Command(sign == b'+', name)
                }
                Some(b'(') => return Err(
                    "Selectors are not supported by redraft; give the rules to a user of their own"
                        .into(),
                ),
                _ => return Err(SYNTAX.into()),
            }
        };
    Ok(op)
}

/// A password hash given with `#` or `!`: exactly 64 lower-case hex digits.
fn check_hash(hash: &[u8]) -> Result<String, Refusal> {
    if hash.len() == 64 && hash.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(String::from_utf8_lossy(hash).into_owned())
    } else {
        Err(
            "The password hash must be exactly 64 characters and contain only lowercase \
             hexadecimal characters"
                .into(),
        )
    }
}

impl User {
    /// The default user of a new cluster: `on nopass ~* &* +@all`.
    pub fn superuser() -> User {
        User {
            enabled: true,
            nopass: true,
            keys: vec![(
                KeyPerm {
                    read: true,
                    write: true,
                },
                b"*".to_vec(),
            )],
            channels: vec![b"*".to_vec()],
            all_commands: true,
            ..User::default()
        }
    }

    /// Applies one rule; the user is unchanged when it is refused.
    pub fn apply(&mut self, op: &Op) -> Result<(), Refusal> {
        const AFTER_STAR: &str = "Adding a pattern after the * pattern (or the 'allkeys' flag) \
             is not valid and does not have any effect. Try 'resetkeys' to start with an empty \
             list of patterns";
        const AFTER_STAR_CHANNELS: &str = "Adding a pattern after the * pattern (or the \
             'allchannels' flag) is not valid and does not have any effect. Try \
             'resetchannels' to start with an empty list of channels";
        match op {
            Op::On => self.enabled = true,
            Op::Off => self.enabled = false,
            Op::NoPass => {
                self.nopass = true;
                self.passwords.clear();
            }
            Op::ResetPass => {
                self.nopass = false;
                self.passwords.clear();
            }
            Op::AddPassword(hash) => {
                self.nopass = false;
                if !self.passwords.contains(hash) {
                    self.passwords.push(hash.clone());
                }
            }
            Op::RemovePassword(hash) => {
                let at =
                    self.passwords.iter().position(|p| p == hash).ok_or(
                        "The password you are trying to remove from the user does not exist",
                    )?;
                self.passwords.remove(at);
            }
            Op::AllKeys => {
                self.keys = vec![(
                    KeyPerm {
                        read: true,
                        write: true,
                    },
                    b"*".to_vec(),
                )]
            }
            Op::ResetKeys => self.keys.clear(),
            Op::KeyPattern(perm, pattern) => {
                if self.all_keys() {
                    return Err(AFTER_STAR.into());
                }
                if pattern == b"*" && perm.read && perm.write {
                    return self.apply(&Op::AllKeys);
                }
                match self.keys.iter_mut().find(|(_, p)| p == pattern) {
                    Some((held, _)) => {
                        held.read |= perm.read;
                        held.write |= perm.write;
                        // `%R~*` and then `%W~*` is every key: say so (`allkeys`), or the
                        // description (`~* ~other`) would not read back.
                        if pattern == b"*" && held.read && held.write {
                            return self.apply(&Op::AllKeys);
                        }
                    }
                    None => self.keys.push((*perm, pattern.clone())),
                }
            }
            Op::AllChannels => self.channels = vec![b"*".to_vec()],
            Op::ResetChannels => self.channels.clear(),
            Op::ChannelPattern(pattern) => {
                if self.all_channels() {
                    return Err(AFTER_STAR_CHANNELS.into());
                }
                if pattern == b"*" {
                    return self.apply(&Op::AllChannels);
                }
                if !self.channels.contains(pattern) {
                    self.channels.push(pattern.clone());
                }
            }
            Op::AllCommands => {
                self.all_commands = true;
                self.commands.clear();
            }
            Op::NoCommands => {
                self.all_commands = false;
                self.commands.clear();
            }
            Op::Command(allow, name) => {
                self.commands.retain(|(_, held)| held != name);
                self.commands.push((*allow, name.clone()));
            }
            Op::Sanitize(on) => self.sanitize_payload = Some(*on),
            Op::Reset => {
                for op in [
                    Op::ResetPass,
                    Op::ResetKeys,
                    Op::ResetChannels,
                    Op::Off,
                    Op::NoCommands,
                ] {
                    self.apply(&op)?;
                }
                self.sanitize_payload = Some(true);
            }
        }
        Ok(())
    }

    /// `allkeys`: every key, read and written.
    pub fn all_keys(&self) -> bool {
        matches!(&self.keys[..], [(KeyPerm { read: true, write: true }, p)] if p == b"*")
    }

    /// `allchannels`.
    pub fn all_channels(&self) -> bool {
        matches!(&self.channels[..], [p] if p == b"*")
    }

    /// The flags `ACL GETUSER` lists.
    pub fn flags(&self) -> Vec<&'static str> {
        let mut flags = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            flags.push("nopass");
        }
        match self.sanitize_payload {
            Some(true) => flags.push("sanitize-payload"),
            Some(false) => flags.push("skip-sanitize-payload"),
            None => {}
        }
        flags
    }

    /// The key patterns as Redis writes them (`~a* %R~b*`); empty for none.
    pub fn describe_keys(&self) -> String {
        let mut out = Vec::new();
        for (perm, pattern) in &self.keys {
            let prefix = match (perm.read, perm.write) {
                (true, true) => "~",
                (true, false) => "%R~",
                _ => "%W~",
            };
            out.push(format!("{prefix}{}", String::from_utf8_lossy(pattern)));
        }
        out.join(" ")
    }

    /// The channel patterns as `ACL GETUSER` lists them (`&a* &b`); empty for none.
    pub fn describe_channels(&self) -> String {
        self.channels
            .iter()
            .map(|p| format!("&{}", String::from_utf8_lossy(p)))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The command rules (`-@all +@read +set`).
    pub fn describe_commands(&self) -> String {
        let mut out = String::from(if self.all_commands { "+@all" } else { "-@all" });
        for (allow, name) in &self.commands {
            out.push(' ');
            out.push(if *allow { '+' } else { '-' });
            out.push_str(name);
        }
        out
    }

    /// The user as one line of `ACL LIST` (and of an ACL file): `user <name> on nopass
    /// #<hash>... ~keys resetchannels &channels -@all +rules`.
    pub fn describe(&self, name: &str) -> String {
        let mut parts = vec![format!("user {name}")];
        parts.extend(self.flags().iter().map(|f| f.to_string()));
        parts.extend(self.passwords.iter().map(|h| format!("#{h}")));
        let keys = self.describe_keys();
        if !keys.is_empty() {
            parts.push(keys);
        }
        if !self.all_channels() {
            parts.push("resetchannels".into());
        }
        let channels = self.describe_channels();
        if !channels.is_empty() {
            parts.push(channels);
        }
        parts.push(self.describe_commands());
        parts.join(" ")
    }

    /// True if `password` signs this user in (it must be enabled).
    pub fn accepts(&self, password: &[u8]) -> bool {
        if !self.enabled {
            return false;
        }
        if self.nopass {
            return true;
        }
        let hash = hash_password(password);
        // Compared hash by hash, every byte of each, so the time says nothing of which.
        self.passwords.iter().fold(false, |found, held| {
            same(held.as_bytes(), hash.as_bytes()) | found
        })
    }
}

/// True if `a` and `b` are equal; takes the same time wherever they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What an ACL log entry asks for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    /// `ACL SETUSER name rules...`: every rule applies, in order, or none does.
    SetUser { name: String, ops: Vec<Op> },
    /// `ACL DELUSER`: the users that exist are removed (never `default`).
    DelUsers(Vec<String>),
    /// `ACL LOAD`: the users of an ACL file replace every user.
    Replace(BTreeMap<String, User>),
    /// The ACL file of a node's first start: replaces the users only if no change has
    /// applied yet (the first node to propose it wins; the others' are no-ops).
    Seed(BTreeMap<String, User>),
}

/// What a change answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    Ok,
    /// Users removed.
    Removed(usize),
    /// The change was refused (the text follows `ERR `).
    Refused(String),
    /// Rule number `at` of a `SetUser` was refused, for this reason: the reply names the
    /// rule as the client wrote it (the log holds only its hash when it is a password).
    RefusedRule {
        at: usize,
        why: String,
    },
}

/// Every user, and how many changes applied (0: none yet, so a seed may apply).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Users {
    pub version: u64,
    pub users: BTreeMap<String, User>,
}

impl Default for Users {
    /// A new cluster's users: `default` alone, with every right and no password.
    fn default() -> Users {
        Users {
            version: 0,
            users: BTreeMap::from([(DEFAULT_USER.to_string(), User::superuser())]),
        }
    }
}

/// Redis's refusal of a user name with a space or a NUL.
pub const BAD_NAME: &str = "Usernames can't contain spaces or null characters";

/// True if `name` may name a user.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains([' ', '\0'])
}

impl Users {
    /// Applies `change`; deterministic. A refused change changes nothing (and the version
    /// stays).
    pub fn apply(&mut self, change: &Change) -> Answer {
        let answer = match change {
            Change::SetUser { name, ops } => {
                if !valid_name(name) {
                    return Answer::Refused(BAD_NAME.into());
                }
                let mut user = self.users.get(name).cloned().unwrap_or_default();
                for (at, op) in ops.iter().enumerate() {
                    if let Err(why) = user.apply(op) {
                        return Answer::RefusedRule { at, why };
                    }
                }
                self.users.insert(name.clone(), user);
                Answer::Ok
            }
            Change::DelUsers(names) => {
                if names.iter().any(|n| n == DEFAULT_USER) {
                    return Answer::Refused("The 'default' user cannot be removed".into());
                }
                let before = self.users.len();
                self.users.retain(|name, _| !names.contains(name));
                Answer::Removed(before - self.users.len())
            }
            Change::Replace(users) => {
                self.users = with_default(users);
                Answer::Ok
            }
            Change::Seed(users) => {
                if self.version != 0 {
                    return Answer::Ok;
                }
                self.users = with_default(users);
                Answer::Ok
            }
        };
        self.version += 1;
        answer
    }

    /// The state as bytes (for snapshots).
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("users always serialize")
    }

    /// Users from [`Users::encode`]'s bytes.
    pub fn decode(bytes: &[u8]) -> Result<Users, postcard::Error> {
        postcard::from_bytes(bytes)
    }

    /// Every user as `ACL LIST` (and an ACL file) writes them, by name.
    pub fn describe(&self) -> Vec<String> {
        self.users
            .iter()
            .map(|(name, user)| user.describe(name))
            .collect()
    }
}

impl Change {
    /// The change as the bytes of a log entry.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("a change always serializes")
    }

    /// A change from [`Change::encode`]'s bytes.
    pub fn decode(bytes: &[u8]) -> Result<Change, postcard::Error> {
        postcard::from_bytes(bytes)
    }
}

/// `users` with the default user added (as a new cluster has it) if they lack one.
fn with_default(users: &BTreeMap<String, User>) -> BTreeMap<String, User> {
    let mut users = users.clone();
    users
        .entry(DEFAULT_USER.to_string())
        .or_insert_with(User::superuser);
    users
}

/// Reads an ACL file: one `user <name> <rules...>` per line; blank lines and lines
/// starting with `#` are skipped. The error names the line.
pub fn parse_file(
    text: &str,
    known: &dyn Fn(&str) -> bool,
) -> Result<BTreeMap<String, User>, String> {
    let mut users = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_ascii_whitespace();
        if words.next() != Some("user") {
            return Err(format!("line {}: should start with user keyword", n + 1));
        }
        let name = words
            .next()
            .ok_or_else(|| format!("line {}: a user needs a name", n + 1))?;
        if users.contains_key(name) {
            return Err(format!("line {}: duplicate user '{name}' found", n + 1));
        }
        let mut user = User::default();
        for word in words {
            let op = parse_op(word.as_bytes(), known).map_err(|why| {
                format!("line {}: error in user declaration '{word}': {why}", n + 1)
            })?;
            user.apply(&op).map_err(|why| {
                format!("line {}: error in user declaration '{word}': {why}", n + 1)
            })?;
        }
        users.insert(name.to_string(), user);
    }
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(name: &str) -> bool {
        [
            "get",
            "set",
            "config",
            "config|get",
            "client",
            "client|kill",
        ]
        .contains(&name)
    }

    fn set(users: &mut Users, name: &str, rules: &[&str]) -> Answer {
        let ops = rules
            .iter()
            .map(|r| parse_op(r.as_bytes(), &known))
            .collect::<Result<Vec<_>, _>>();
        match ops {
            Ok(ops) => users.apply(&Change::SetUser {
                name: name.into(),
                ops,
            }),
            Err(why) => Answer::Refused(why),
        }
    }

    #[test]
    fn users_are_described_as_redis_lists_them() {
        let mut users = Users::default();
        assert_eq!(users.describe(), ["user default on nopass ~* &* +@all"]);
        let rules = ["on", ">p1", "~foo*", "%R~bar*", "+@read", "+set", "&ch*"];
        assert_eq!(set(&mut users, "alice", &rules), Answer::Ok);
        assert_eq!(set(&mut users, "bob", &[]), Answer::Ok);
        assert_eq!(
            users.describe(),
            [
                "user alice on #f64551fcd6f07823cb87971cfb91446425da18286b3ab1ef935e0cbd7a69f68a \
                 ~foo* %R~bar* resetchannels &ch* -@all +@read +set",
                "user bob off resetchannels -@all",
                "user default on nopass ~* &* +@all",
            ]
        );
    }

    #[test]
    fn a_later_rule_for_the_same_name_replaces_the_earlier() {
        let mut users = Users::default();
        set(
            &mut users,
            "t",
            &["+get", "+@read", "-get", "allcommands", "-set", "-@read"],
        );
        assert_eq!(users.users["t"].describe_commands(), "+@all -set -@read");
        set(&mut users, "t", &["-@all", "+config", "-config|get"]);
        assert_eq!(
            users.users["t"].describe_commands(),
            "-@all +config -config|get"
        );
    }

    #[test]
    fn a_refused_rule_changes_nothing_and_says_which() {
        let mut users = Users::default();
        set(&mut users, "t", &["on", ">a"]);
        let before = users.clone();
        assert_eq!(
            set(&mut users, "t", &[">b", "<c"]),
            Answer::RefusedRule {
                at: 1,
                why: "The password you are trying to remove from the user does not exist".into()
            }
        );
        assert_eq!(users, before);
        assert_eq!(
            parse_op(b"+nosuch", &known),
            Err("Unknown command or category name in ACL".to_string())
        );
        assert!(parse_op(b"+@nosuch", &known).is_err());
        assert_eq!(parse_op(b"foo", &known), Err("Syntax error".to_string()));
        assert!(parse_op(b"#aaa", &known).is_err());
        assert!(parse_op(b"%X~a", &known).is_err());
        set(&mut users, "m", &["%R~*", "~p", "%W~*"]);
        assert!(
            users.users["m"].all_keys(),
            "read and write of * is every key"
        );
        set(&mut users, "k", &["allkeys"]);
        assert!(matches!(
            set(&mut users, "k", &["~a"]),
            Answer::RefusedRule { at: 0, .. }
        ));
        assert_eq!(
            users.apply(&Change::DelUsers(vec!["default".into()])),
            Answer::Refused("The 'default' user cannot be removed".into())
        );
        assert_eq!(
            set(&mut users, "a b", &[]),
            Answer::Refused(BAD_NAME.into())
        );
    }

    #[test]
    fn passwords_sign_in_hashed() {
        let mut users = Users::default();
        set(&mut users, "t", &[">secret"]);
        assert!(!users.users["t"].accepts(b"secret"), "off");
        set(&mut users, "t", &["on"]);
        assert!(users.users["t"].accepts(b"secret"));
        assert!(!users.users["t"].accepts(b"Secret"));
        set(&mut users, "t", &["nopass"]);
        assert!(users.users["t"].accepts(b"anything"));
        set(&mut users, "t", &["resetpass"]);
        assert!(!users.users["t"].accepts(b"anything"));
    }

    #[test]
    fn a_seed_applies_only_to_users_never_changed() {
        let file = "user alice on >pw ~* +@all\n# comment\n\nuser bob off\n";
        let seed = parse_file(file, &known).unwrap();
        let mut fresh = Users::default();
        fresh.apply(&Change::Seed(seed.clone()));
        assert_eq!(fresh.users.len(), 3, "alice, bob and default");
        let mut changed = Users::default();
        set(&mut changed, "carol", &[]);
        changed.apply(&Change::Seed(seed));
        assert!(!changed.users.contains_key("alice"));
        assert!(parse_file("usr x", &known).is_err());
        assert!(parse_file("user x +nosuch", &known).is_err());
    }

    #[test]
    fn a_user_reads_back_from_its_description() {
        let mut users = Users::default();
        let rules = [
            "on",
            ">p",
            "%W~w*",
            "~k",
            "&c",
            "+@all",
            "-config|get",
            "sanitize-payload",
        ];
        set(&mut users, "t", &rules);
        let line = users.users["t"].describe("t");
        let back = parse_file(&line, &known).unwrap();
        assert_eq!(back["t"], users.users["t"]);
    }
}
