//! The command table and the split between "before the log" and "apply".
//!
//! Every command has a [`Spec`]: its name, arity (Redis's convention: `n` exactly, `-n`
//! at least), flags, key positions (for slot routing and `COMMAND INFO`) and a parse
//! function. Parsing is everything that happens before the log: arity and syntax checks,
//! reading the clock (through [`Ctx::now_ms`]), turning relative expiries into absolute
//! Unix milliseconds and drawing randomness ([`Ctx::seed`]). What comes out is a [`Cmd`]:
//!
//! - [`Read`]: runs against `&Db` with the reading node's clock; never changes state.
//! - [`Write`]: what a log entry carries; [`Write::apply`] is a pure function of the
//!   state, the command and the `now_ms` stamped with it.

use std::collections::HashMap;
use std::sync::OnceLock;

use bytes::Bytes;
use resp::Frame;

use crate::db::{Db, Watch};
use crate::error::{Error, Result};
use crate::{hashes, keys, lists, sets, strings, zsets};

/// The command changes data and goes through the log.
pub const WRITE: u32 = 1;
/// The command only reads data.
pub const READONLY: u32 = 1 << 1;
/// The command may grow memory use (`denyoom` in Redis).
pub const DENYOOM: u32 = 1 << 2;
/// O(1) or O(log n) (`fast` in Redis).
pub const FAST: u32 = 1 << 3;
/// Picks at random (`RANDOMKEY`, `SPOP`, ...).
pub const RANDOM: u32 = 1 << 4;
/// Handled by the connection, not by `kv` (`MULTI`, `HELLO`, ...).
pub const CONNECTION: u32 = 1 << 5;
/// Allowed before authentication / while loading, and never queued (`loading`, `stale`).
pub const ADMIN: u32 = 1 << 6;
/// Not allowed inside `MULTI` (`no-multi`).
pub const NO_MULTI: u32 = 1 << 7;

/// What the node knows before the log: the time and a random seed.
#[derive(Clone, Debug)]
pub struct Ctx {
    /// The leader's clock, Unix milliseconds, never behind a time it stamped before.
    pub now_ms: i64,
    /// Randomness for commands that pick at random.
    pub seed: u64,
}

impl Ctx {
    /// Takes a seed for one command and moves the context on, so that several random
    /// commands parsed with one context (a `MULTI` block) do not repeat each other's picks.
    pub fn draw_seed(&mut self) -> u64 {
        let seed = self.seed;
        self.seed = crate::rng::Rng::new(seed).next_u64();
        seed
    }
}

/// Parses the arguments of one command (`args[0]` is the command name).
pub type ParseFn = fn(&[Bytes], &mut Ctx) -> Result<Cmd>;

/// Where the keys are among the arguments, as in `COMMAND INFO`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeySpec {
    pub first: i32,
    /// Negative counts from the end (`-1` is the last argument).
    pub last: i32,
    pub step: i32,
    /// Key positions depend on a numkeys argument (`ZUNIONSTORE`, `SINTERCARD`, ...):
    /// `numkeys_at` is its position and keys follow it.
    pub numkeys_at: Option<usize>,
}

impl KeySpec {
    pub const NONE: KeySpec = KeySpec {
        first: 0,
        last: 0,
        step: 0,
        numkeys_at: None,
    };
    pub const fn range(first: i32, last: i32, step: i32) -> KeySpec {
        KeySpec {
            first,
            last,
            step,
            numkeys_at: None,
        }
    }
    pub const fn one() -> KeySpec {
        KeySpec::range(1, 1, 1)
    }
    /// `numkeys` at `at`, keys after it; `dest` is a key before it (e.g. `ZUNIONSTORE dst`).
    pub const fn numkeys(at: usize, dest: bool) -> KeySpec {
        KeySpec {
            first: if dest { 1 } else { 0 },
            last: if dest { 1 } else { 0 },
            step: 1,
            numkeys_at: Some(at),
        }
    }
}

/// One command's entry in the table.
#[derive(Clone, Copy)]
pub struct Spec {
    /// Lower case.
    pub name: &'static str,
    pub arity: i32,
    pub flags: u32,
    pub keys: KeySpec,
    pub group: &'static str,
    pub summary: &'static str,
    pub parse: ParseFn,
}

impl Spec {
    pub const fn new(
        name: &'static str,
        arity: i32,
        flags: u32,
        keys: KeySpec,
        group: &'static str,
        summary: &'static str,
        parse: ParseFn,
    ) -> Spec {
        Spec {
            name,
            arity,
            flags,
            keys,
            group,
            summary,
            parse,
        }
    }

    pub fn is_write(&self) -> bool {
        self.flags & WRITE != 0
    }

    /// True if `argc` (arguments including the name) fits the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        if self.arity >= 0 {
            argc == self.arity as usize
        } else {
            argc >= (-self.arity) as usize
        }
    }

    /// The position of the first key in `args` (already arity-checked): the first of
    /// [`Spec::key_positions`], without building the list (asked for every write).
    pub fn first_key(&self, args: &[Bytes]) -> Option<usize> {
        let ks = self.keys;
        if ks.first > 0 {
            let last = if ks.last < 0 {
                args.len() as i32 + ks.last
            } else {
                ks.last
            };
            if ks.first <= last && (ks.first as usize) < args.len() {
                return Some(ks.first as usize);
            }
        }
        let at = ks.numkeys_at?;
        let n = args.get(at).and_then(|a| resp::request::parse_int(a))?;
        (n > 0 && at + 1 < args.len()).then_some(at + 1)
    }

    /// Positions of the keys in `args` (already arity-checked).
    pub fn key_positions(&self, args: &[Bytes]) -> Vec<usize> {
        let mut out = Vec::new();
        let ks = self.keys;
        if ks.first > 0 {
            let last = if ks.last < 0 {
                args.len() as i32 + ks.last
            } else {
                ks.last
            };
            let mut i = ks.first;
            while i <= last && (i as usize) < args.len() {
                out.push(i as usize);
                i += ks.step.max(1);
            }
        }
        if let Some(at) = ks.numkeys_at {
            if let Some(n) = args.get(at).and_then(|a| resp::request::parse_int(a)) {
                for i in 0..n.max(0) as usize {
                    if at + 1 + i < args.len() {
                        out.push(at + 1 + i);
                    }
                }
            }
        }
        out
    }

    /// Names of the flags, as `COMMAND INFO` lists them.
    pub fn flag_names(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        for (bit, name) in [
            (WRITE, "write"),
            (READONLY, "readonly"),
            (DENYOOM, "denyoom"),
            (ADMIN, "loading"),
            (ADMIN, "stale"),
            (NO_MULTI, "no-multi"),
            (FAST, "fast"),
        ] {
            if self.flags & bit != 0 {
                out.push(name);
            }
        }
        if self.flags & CONNECTION != 0 && !out.contains(&"fast") {
            out.push("fast");
        }
        out
    }
}

/// A parsed command.
#[derive(Clone, Debug)]
pub enum Cmd {
    Read(Read),
    Write(Write),
}

/// Commands that read.
#[derive(Clone, Debug)]
pub enum Read {
    Strings(strings::Read),
    Keys(keys::Read),
    Hashes(hashes::Read),
    Lists(lists::Read),
    Sets(sets::Read),
    ZSets(zsets::Read),
}

/// Commands that write: the payload of a log entry.
#[derive(Clone, Debug)]
pub enum Write {
    Strings(strings::Write),
    Keys(keys::Write),
    Hashes(hashes::Write),
    Lists(lists::Write),
    Sets(sets::Write),
    ZSets(zsets::Write),
    /// `EXEC`: aborts (null reply) if a watched key changed, else runs every command.
    Exec {
        watches: Vec<Watch>,
        cmds: Vec<Cmd>,
    },
    /// Active expiry: removes each key that has expired by the entry's time.
    ExpireKeys(Vec<crate::bytes::CompactBytes>),
}

impl Read {
    /// True for a read that walks the key space (`KEYS`, `SCAN`): its time grows with
    /// the keys a group holds, not with its own arguments, so the server runs it where a
    /// long run holds up no other task (see `raft::patient`).
    pub fn walks_keyspace(&self) -> bool {
        matches!(
            self,
            Read::Keys(crate::keys::Read::Keys(_) | crate::keys::Read::Scan(_))
        )
    }

    pub fn run(&self, db: &Db, now_ms: i64) -> Frame {
        let result = match self {
            Read::Strings(c) => c.run(db, now_ms),
            Read::Keys(c) => c.run(db, now_ms),
            Read::Hashes(c) => c.run(db, now_ms),
            Read::Lists(c) => c.run(db, now_ms),
            Read::Sets(c) => c.run(db, now_ms),
            Read::ZSets(c) => c.run(db, now_ms),
        };
        result.unwrap_or_else(|e| e.to_frame())
    }
}

impl Write {
    /// Applies the command: a pure function of `db`, `self` and `now_ms`.
    pub fn apply(&self, db: &mut Db, now_ms: i64) -> Frame {
        let result = match self {
            Write::Strings(c) => c.apply(db, now_ms),
            Write::Keys(c) => c.apply(db, now_ms),
            Write::Hashes(c) => c.apply(db, now_ms),
            Write::Lists(c) => c.apply(db, now_ms),
            Write::Sets(c) => c.apply(db, now_ms),
            Write::ZSets(c) => c.apply(db, now_ms),
            Write::Exec { watches, cmds } => {
                if watches.iter().any(|w| db.watch_is_dirty(w, now_ms)) {
                    return Frame::NullArray;
                }
                Ok(Frame::Array(
                    cmds.iter().map(|c| c.execute(db, now_ms)).collect(),
                ))
            }
            Write::ExpireKeys(keys) => {
                for key in keys {
                    db.expire_if_due(key, now_ms);
                }
                Ok(Frame::OK)
            }
        };
        result.unwrap_or_else(|e| e.to_frame())
    }
}

impl Cmd {
    pub fn is_write(&self) -> bool {
        matches!(self, Cmd::Write(_))
    }

    /// Runs a read or applies a write (single node, tests, and inside `EXEC`).
    pub fn execute(&self, db: &mut Db, now_ms: i64) -> Frame {
        match self {
            Cmd::Read(r) => r.run(db, now_ms),
            Cmd::Write(w) => w.apply(db, now_ms),
        }
    }
}

/// Every command `kv` knows.
pub fn specs() -> impl Iterator<Item = &'static Spec> {
    [
        strings::SPECS,
        keys::SPECS,
        hashes::SPECS,
        lists::SPECS,
        sets::SPECS,
        zsets::SPECS,
    ]
    .into_iter()
    .flatten()
}

/// Finds a command by name, case-insensitively.
pub fn lookup(name: &[u8]) -> Option<&'static Spec> {
    static TABLE: OnceLock<HashMap<&'static [u8], &'static Spec, ahash::RandomState>> =
        OnceLock::new();
    let table = TABLE.get_or_init(|| specs().map(|s| (s.name.as_bytes(), s)).collect());
    let mut buf = [0u8; 32];
    table.get(fold_name(name, &mut buf)?).copied()
}

/// `name` in lower case, in `buf` (no allocation): how command tables are keyed. `None`
/// for a name longer than any command's.
pub fn fold_name<'a>(name: &[u8], buf: &'a mut [u8; 32]) -> Option<&'a [u8]> {
    let lower = buf.get_mut(..name.len())?;
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    Some(lower)
}

/// Looks up, checks arity and parses one command from its arguments.
pub fn parse(args: &[Bytes], ctx: &mut Ctx) -> Result<Cmd> {
    let Some(name) = args.first() else {
        return Err(Error::err("empty command"));
    };
    let spec = lookup(name).ok_or_else(|| unknown_command(args))?;
    parse_spec(spec, args, ctx)
}

/// Parses `args` as the command `spec` (found by the caller's own lookup of `args[0]`).
pub fn parse_spec(spec: &Spec, args: &[Bytes], ctx: &mut Ctx) -> Result<Cmd> {
    if !spec.arity_ok(args.len()) {
        return Err(Error::Arity(spec.name.to_string()));
    }
    (spec.parse)(args, ctx)
}

/// Redis's unknown-command error: the name and the first arguments, quoted.
pub fn unknown_command(args: &[Bytes]) -> Error {
    let name = String::from_utf8_lossy(&args[0]);
    let name: String = name.chars().take(128).collect();
    let mut rest = String::new();
    for a in args.iter().skip(1) {
        if rest.len() >= 128 {
            break;
        }
        let text = String::from_utf8_lossy(a);
        let remaining = 128 - rest.len();
        let cut: String = text.chars().take(remaining).collect();
        rest.push('\'');
        rest.push_str(&cut);
        rest.push_str("' ");
    }
    Error::UnknownCommand { name, args: rest }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_lower_case() {
        let mut seen = std::collections::HashSet::new();
        for s in specs() {
            assert_eq!(s.name, s.name.to_ascii_lowercase());
            assert!(seen.insert(s.name), "{} twice", s.name);
            assert!(s.arity != 0);
        }
    }
}
