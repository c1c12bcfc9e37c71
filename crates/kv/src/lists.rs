//! List commands: LPUSH RPUSH LPUSHX RPUSHX LPOP RPOP LLEN LRANGE LINDEX LSET LINSERT
//! LREM LTRIM LPOS LMOVE RPOPLPUSH.
//!
//! A list is a deque ([`List`]). Redis deletes a list when its last element goes, and so
//! does every command here (through [`Db::remove_if_empty`]). Arguments that Redis
//! parses only after looking the key up (the index of `LINDEX` and `LSET`) are parsed up
//! front and carried as a [`Deferred`], so a missing key or `WRONGTYPE` still wins.

use bytes::Bytes;
use resp::Frame;

use crate::args;
use crate::bytes::CompactBytes;
use crate::command::{Cmd, Ctx, KeySpec, Spec, DENYOOM, FAST, READONLY, WRITE};
use crate::db::Db;
use crate::error::{Error, Result};
use crate::value::{List, Value};

const G: &str = "list";
#[rustfmt::skip]
pub const SPECS: &[Spec] = &[
    Spec::new("lpush", -3, WRITE | DENYOOM | FAST, KeySpec::one(), G, "Prepend one or multiple elements to a list", parse_push),
    Spec::new("rpush", -3, WRITE | DENYOOM | FAST, KeySpec::one(), G, "Append one or multiple elements to a list", parse_push),
    Spec::new("lpushx", -3, WRITE | DENYOOM | FAST, KeySpec::one(), G, "Prepend an element to a list, only if the list exists", parse_push),
    Spec::new("rpushx", -3, WRITE | DENYOOM | FAST, KeySpec::one(), G, "Append an element to a list, only if the list exists", parse_push),
    Spec::new("lpop", -2, WRITE | FAST, KeySpec::one(), G, "Remove and get the first elements in a list", parse_pop),
    Spec::new("rpop", -2, WRITE | FAST, KeySpec::one(), G, "Remove and get the last elements in a list", parse_pop),
    Spec::new("llen", 2, READONLY | FAST, KeySpec::one(), G, "Get the length of a list", parse_llen),
    Spec::new("lrange", 4, READONLY, KeySpec::one(), G, "Get a range of elements from a list", parse_lrange),
    Spec::new("lindex", 3, READONLY, KeySpec::one(), G, "Get an element from a list by its index", parse_lindex),
    Spec::new("lset", 4, WRITE | DENYOOM, KeySpec::one(), G, "Set the value of an element in a list by its index", parse_lset),
    Spec::new("linsert", 5, WRITE | DENYOOM, KeySpec::one(), G, "Insert an element before or after another element in a list", parse_linsert),
    Spec::new("lrem", 4, WRITE, KeySpec::one(), G, "Remove elements from a list", parse_lrem),
    Spec::new("ltrim", 4, WRITE, KeySpec::one(), G, "Trim a list to the specified range", parse_ltrim),
    Spec::new("lpos", -3, READONLY, KeySpec::one(), G, "Return the index of matching elements on a list", parse_lpos),
    Spec::new("lmove", 5, WRITE | DENYOOM, KeySpec::range(1, 2, 1), G, "Pop an element from a list, push it to another list and return it", parse_lmove),
    Spec::new("rpoplpush", 3, WRITE | DENYOOM, KeySpec::range(1, 2, 1), G, "Remove the last element in a list, prepend it to another list and return it", parse_rpoplpush),
];

/// An argument that parsed badly, reported only after the key checks, as Redis does.
pub type Deferred<T> = std::result::Result<T, Error>;

/// An end of a list: `LEFT` is the head (index 0), `RIGHT` the tail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    Left,
    Right,
}

#[derive(Clone, Debug)]
pub enum Read {
    /// `LLEN key`
    Len(Bytes),
    /// `LRANGE key start stop`
    Range(Bytes, i64, i64),
    /// `LINDEX key index`
    Index(Bytes, Deferred<i64>),
    /// `LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]`: `count` is
    /// `None` without `COUNT` (one index or null), `maxlen` 0 means the whole list.
    Pos {
        key: Bytes,
        element: Bytes,
        rank: i64,
        count: Option<i64>,
        maxlen: i64,
    },
}

#[derive(Clone, Debug)]
pub enum Write {
    /// `LPUSH key element [element ...]`, `RPUSH`; `LPUSHX`/`RPUSHX` when `only_if_exists`.
    Push {
        key: Bytes,
        end: End,
        elements: Vec<Bytes>,
        only_if_exists: bool,
    },
    /// `LPOP key [count]`, `RPOP key [count]`
    Pop {
        key: Bytes,
        end: End,
        count: Option<u64>,
    },
    /// `LSET key index element`
    Set {
        key: Bytes,
        index: Deferred<i64>,
        element: Bytes,
    },
    /// `LINSERT key BEFORE|AFTER pivot element`
    Insert {
        key: Bytes,
        before: bool,
        pivot: Bytes,
        element: Bytes,
    },
    /// `LREM key count element`
    Rem {
        key: Bytes,
        count: i64,
        element: Bytes,
    },
    /// `LTRIM key start stop`
    Trim { key: Bytes, start: i64, stop: i64 },
    /// `LMOVE source destination LEFT|RIGHT LEFT|RIGHT`; `RPOPLPUSH source destination`
    /// is `RIGHT LEFT`.
    Move {
        source: Bytes,
        destination: Bytes,
        from: End,
        to: End,
    },
}

fn read(r: Read) -> Result<Cmd> {
    Ok(Cmd::Read(crate::command::Read::Lists(r)))
}

fn write(w: Write) -> Result<Cmd> {
    Ok(Cmd::Write(crate::command::Write::Lists(w)))
}

fn parse_push(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    let name = args::name(args);
    let end = if name.starts_with('l') {
        End::Left
    } else {
        End::Right
    };
    write(Write::Push {
        key: args[1].clone(),
        end,
        elements: args[2..].to_vec(),
        only_if_exists: name.ends_with('x'),
    })
}

fn parse_pop(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    if args.len() > 3 {
        return Err(Error::Arity(args::name(args)));
    }
    let end = if args::is(&args[0], "lpop") {
        End::Left
    } else {
        End::Right
    };
    let count = match args.get(2) {
        Some(arg) => {
            let n = args::int(arg).map_err(|_| Error::OutOfRangePositive)?;
            Some(u64::try_from(n).map_err(|_| Error::OutOfRangePositive)?)
        }
        None => None,
    };
    write(Write::Pop {
        key: args[1].clone(),
        end,
        count,
    })
}

fn parse_llen(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    read(Read::Len(args[1].clone()))
}

fn parse_lrange(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    read(Read::Range(
        args[1].clone(),
        args::int(&args[2])?,
        args::int(&args[3])?,
    ))
}

fn parse_lindex(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    read(Read::Index(args[1].clone(), args::int(&args[2])))
}

fn parse_lset(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    write(Write::Set {
        key: args[1].clone(),
        index: args::int(&args[2]),
        element: args[3].clone(),
    })
}

fn parse_linsert(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    let before = if args::is(&args[2], "after") {
        false
    } else if args::is(&args[2], "before") {
        true
    } else {
        return Err(Error::Syntax);
    };
    write(Write::Insert {
        key: args[1].clone(),
        before,
        pivot: args[3].clone(),
        element: args[4].clone(),
    })
}

fn parse_lrem(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    write(Write::Rem {
        key: args[1].clone(),
        count: args::int(&args[2])?,
        element: args[3].clone(),
    })
}

fn parse_ltrim(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    write(Write::Trim {
        key: args[1].clone(),
        start: args::int(&args[2])?,
        stop: args::int(&args[3])?,
    })
}

/// A non-negative `LPOS` option; anything else is the option's own error.
fn non_negative(arg: &[u8], what: &str) -> Result<i64> {
    match args::int(arg) {
        Ok(n) if n >= 0 => Ok(n),
        _ => Err(Error::err(format!("{what} can't be negative"))),
    }
}

fn parse_lpos(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    let (mut rank, mut count, mut maxlen) = (1, None, 0);
    let mut i = 3;
    while i < args.len() {
        let has_value = i + 1 < args.len();
        let opt = &args[i];
        if args::is(opt, "rank") && has_value {
            rank = args::int(&args[i + 1])?;
            if rank == 0 {
                return Err(Error::err(
                    "RANK can't be zero: use 1 to start from the first match, 2 from the second ... \
                     or use negative to start from the end of the list",
                ));
            }
        } else if args::is(opt, "count") && has_value {
            count = Some(non_negative(&args[i + 1], "COUNT")?);
        } else if args::is(opt, "maxlen") && has_value {
            maxlen = non_negative(&args[i + 1], "MAXLEN")?;
        } else {
            return Err(Error::Syntax);
        }
        i += 2;
    }
    read(Read::Pos {
        key: args[1].clone(),
        element: args[2].clone(),
        rank,
        count,
        maxlen,
    })
}

/// `LEFT` or `RIGHT`, else a syntax error.
fn end_arg(arg: &[u8]) -> Result<End> {
    if args::is(arg, "left") {
        Ok(End::Left)
    } else if args::is(arg, "right") {
        Ok(End::Right)
    } else {
        Err(Error::Syntax)
    }
}

fn parse_lmove(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    let from = end_arg(&args[3])?;
    let to = end_arg(&args[4])?;
    write(Write::Move {
        source: args[1].clone(),
        destination: args[2].clone(),
        from,
        to,
    })
}

fn parse_rpoplpush(args: &[Bytes], _: &mut Ctx) -> Result<Cmd> {
    write(Write::Move {
        source: args[1].clone(),
        destination: args[2].clone(),
        from: End::Right,
        to: End::Left,
    })
}

/// The list at `key`, `None` if absent, `WRONGTYPE` for another type.
fn get_list<'a>(db: &'a Db, key: &[u8], now_ms: i64) -> Result<Option<&'a List>> {
    db.get(key, now_ms).map(Value::as_list).transpose()
}

/// The list at `key` for changing in place, `None` if absent.
fn list_mut<'a>(db: &'a mut Db, key: &[u8], now_ms: i64) -> Result<Option<&'a mut List>> {
    db.get_mut(key, now_ms).map(Value::as_list_mut).transpose()
}

/// Position of Redis index `index` (negative from the tail) in a list of `len`.
fn position(index: i64, len: usize) -> Option<usize> {
    let len = len as i64;
    let i = if index < 0 { len + index } else { index };
    (0..len).contains(&i).then_some(i as usize)
}

fn bulk(b: &CompactBytes) -> Frame {
    Frame::bulk(&**b)
}

fn pop(list: &mut List, end: End) -> Option<CompactBytes> {
    match end {
        End::Left => list.items.pop_front(),
        End::Right => list.items.pop_back(),
    }
}

fn push(list: &mut List, end: End, element: CompactBytes) {
    match end {
        End::Left => list.items.push_front(element),
        End::Right => list.items.push_back(element),
    }
}

impl Read {
    pub fn run(&self, db: &Db, now_ms: i64) -> Result<Frame> {
        match self {
            Read::Len(key) => Ok(Frame::Integer(
                get_list(db, key, now_ms)?.map_or(0, |l| l.items.len() as i64),
            )),
            Read::Range(key, start, stop) => {
                let Some(list) = get_list(db, key, now_ms)? else {
                    return Ok(Frame::Array(Vec::new()));
                };
                let items = match args::range(*start, *stop, list.items.len()) {
                    Some((a, b)) => list.items.range(a..=b).map(bulk).collect(),
                    None => Vec::new(),
                };
                Ok(Frame::Array(items))
            }
            Read::Index(key, index) => {
                let Some(list) = get_list(db, key, now_ms)? else {
                    return Ok(Frame::Null);
                };
                let at = position(index.clone()?, list.items.len());
                Ok(at.and_then(|i| list.items.get(i)).map_or(Frame::Null, bulk))
            }
            Read::Pos {
                key,
                element,
                rank,
                count,
                maxlen,
            } => {
                let Some(list) = get_list(db, key, now_ms)? else {
                    return Ok(if count.is_some() {
                        Frame::Array(Vec::new())
                    } else {
                        Frame::Null
                    });
                };
                let found = lpos(list, element, *rank, *count, *maxlen);
                Ok(match count {
                    Some(_) => Frame::Array(
                        found
                            .into_iter()
                            .map(|i| Frame::Integer(i as i64))
                            .collect(),
                    ),
                    None => found
                        .first()
                        .map_or(Frame::Null, |&i| Frame::Integer(i as i64)),
                })
            }
        }
    }
}

/// The positions `LPOS` reports, in the order it reports them. Without `COUNT` only the
/// first is wanted. Arithmetic on `rank` wraps as Redis's does, so `RANK` of `i64::MIN`
/// behaves as it does there (first match from the tail, `COUNT` never reached).
fn lpos(list: &List, element: &[u8], rank: i64, count: Option<i64>, maxlen: i64) -> Vec<usize> {
    let len = list.items.len();
    let from_tail = rank < 0;
    let rank = if from_tail { rank.wrapping_neg() } else { rank };
    let mut matches: i64 = 0;
    let mut found = Vec::new();
    for i in 0..len {
        if maxlen != 0 && i as i64 >= maxlen {
            break;
        }
        let pos = if from_tail { len - 1 - i } else { i };
        if list.items.get(pos).is_none_or(|e| &e[..] != element) {
            continue;
        }
        matches += 1;
        if matches < rank {
            continue;
        }
        found.push(pos);
        match count {
            None => break,
            Some(c) if c != 0 && matches.wrapping_sub(rank).wrapping_add(1) >= c => break,
            Some(_) => {}
        }
    }
    found
}

impl Write {
    pub fn apply(&self, db: &mut Db, now_ms: i64) -> Result<Frame> {
        match self {
            Write::Push {
                key,
                end,
                elements,
                only_if_exists,
            } => {
                let exists = get_list(db, key, now_ms)?.is_some();
                if *only_if_exists && !exists {
                    return Ok(Frame::Integer(0));
                }
                let list = db.get_or_create(
                    key,
                    now_ms,
                    || Value::List(Default::default()),
                    Value::as_list_mut,
                )?;
                for e in elements {
                    push(list, *end, CompactBytes::new(e));
                }
                let len = list.items.len();
                db.touch(key);
                Ok(Frame::Integer(len as i64))
            }
            Write::Pop { key, end, count } => {
                let Some(list) = list_mut(db, key, now_ms)? else {
                    return Ok(if count.is_some() {
                        Frame::NullArray
                    } else {
                        Frame::Null
                    });
                };
                let reply = match count {
                    Some(0) => return Ok(Frame::Array(Vec::new())),
                    Some(n) => {
                        let n = (*n).min(list.items.len() as u64) as usize;
                        let popped: Vec<Frame> = (0..n)
                            .filter_map(|_| pop(list, *end))
                            .map(|e| bulk(&e))
                            .collect();
                        Frame::Array(popped)
                    }
                    None => pop(list, *end).map_or(Frame::Null, |e| bulk(&e)),
                };
                db.touch(key);
                db.remove_if_empty(key);
                Ok(reply)
            }
            Write::Set {
                key,
                index,
                element,
            } => {
                let Some(list) = list_mut(db, key, now_ms)? else {
                    return Err(Error::NoSuchKey);
                };
                let at = position(index.clone()?, list.items.len());
                let slot = at
                    .and_then(|i| list.items.get_mut(i))
                    .ok_or(Error::IndexOutOfRange)?;
                *slot = CompactBytes::new(element);
                db.touch(key);
                Ok(Frame::OK)
            }
            Write::Insert {
                key,
                before,
                pivot,
                element,
            } => {
                let Some(list) = list_mut(db, key, now_ms)? else {
                    return Ok(Frame::Integer(0));
                };
                let Some(at) = list.items.iter().position(|e| e[..] == pivot[..]) else {
                    return Ok(Frame::Integer(-1));
                };
                let at = if *before { at } else { at + 1 };
                list.items.insert(at, CompactBytes::new(element));
                let len = list.items.len();
                db.touch(key);
                Ok(Frame::Integer(len as i64))
            }
            Write::Rem {
                key,
                count,
                element,
            } => {
                let Some(list) = list_mut(db, key, now_ms)? else {
                    return Ok(Frame::Integer(0));
                };
                let removed = remove_matches(list, element, *count);
                if removed > 0 {
                    db.touch(key);
                    db.remove_if_empty(key);
                }
                Ok(Frame::Integer(removed as i64))
            }
            Write::Trim { key, start, stop } => {
                let Some(list) = list_mut(db, key, now_ms)? else {
                    return Ok(Frame::OK);
                };
                match args::range(*start, *stop, list.items.len()) {
                    Some((a, b)) => {
                        list.items.truncate(b + 1);
                        list.items.drain(..a);
                    }
                    None => list.items.clear(),
                }
                // Redis signals the key even when nothing was trimmed.
                db.touch(key);
                db.remove_if_empty(key);
                Ok(Frame::OK)
            }
            Write::Move {
                source,
                destination,
                from,
                to,
            } => {
                if get_list(db, source, now_ms)?.is_none_or(|l| l.items.is_empty()) {
                    return Ok(Frame::Null);
                }
                get_list(db, destination, now_ms)?;
                let Some(element) = list_mut(db, source, now_ms)?.and_then(|l| pop(l, *from))
                else {
                    return Ok(Frame::Null);
                };
                let reply = bulk(&element);
                let dest = db.get_or_create(
                    destination,
                    now_ms,
                    || Value::List(Default::default()),
                    Value::as_list_mut,
                )?;
                push(dest, *to, element);
                db.touch(source);
                db.remove_if_empty(source);
                db.touch(destination);
                Ok(reply)
            }
        }
    }
}

/// `LREM`'s removal: up to `|count|` matches from the head (`count > 0`) or the tail
/// (`count < 0`), or all of them (`0`). Returns how many went.
fn remove_matches(list: &mut List, element: &[u8], count: i64) -> usize {
    let limit = if count == 0 {
        usize::MAX
    } else {
        usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX)
    };
    // From the tail: the lowest position that still goes, found walking backwards.
    let mut first = 0;
    if count < 0 {
        let mut seen = 0;
        for (i, e) in list.items.iter().enumerate().rev() {
            if &e[..] == element {
                seen += 1;
                first = i;
                if seen == limit {
                    break;
                }
            }
        }
    }
    let mut removed = 0;
    let mut i = 0;
    list.items.retain(|e| {
        let at = i;
        i += 1;
        if removed < limit && at >= first && &e[..] == element {
            removed += 1;
            false
        } else {
            true
        }
    });
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> List {
        List {
            items: items
                .iter()
                .map(|s| CompactBytes::new(s.as_bytes()))
                .collect(),
        }
    }

    fn contents(l: &List) -> Vec<String> {
        l.items
            .iter()
            .map(|e| String::from_utf8_lossy(e).into_owned())
            .collect()
    }

    #[test]
    fn lrem_from_either_end() {
        let mut l = list(&["a", "b", "a", "c", "a"]);
        assert_eq!(remove_matches(&mut l, b"a", -2), 2);
        assert_eq!(contents(&l), ["a", "b", "c"]);
        let mut l = list(&["a", "b", "a", "c", "a"]);
        assert_eq!(remove_matches(&mut l, b"a", 2), 2);
        assert_eq!(contents(&l), ["b", "c", "a"]);
        let mut l = list(&["a", "b", "a", "c", "a"]);
        assert_eq!(remove_matches(&mut l, b"a", 0), 3);
        assert_eq!(contents(&l), ["b", "c"]);
        let mut l = list(&["a", "b"]);
        assert_eq!(remove_matches(&mut l, b"a", i64::MIN), 1);
        assert_eq!(remove_matches(&mut l, b"z", -1), 0);
        assert_eq!(contents(&l), ["b"]);
    }

    #[test]
    fn lpos_ranks_counts_and_maxlen() {
        let l = list(&["a", "b", "a", "c", "a"]);
        assert_eq!(lpos(&l, b"a", 1, None, 0), [0]);
        assert_eq!(lpos(&l, b"a", 2, None, 0), [2]);
        assert_eq!(lpos(&l, b"a", -1, None, 0), [4]);
        assert_eq!(lpos(&l, b"a", 1, Some(0), 0), [0, 2, 4]);
        assert_eq!(lpos(&l, b"a", -2, Some(0), 0), [2, 0]);
        assert_eq!(lpos(&l, b"a", 1, Some(2), 0), [0, 2]);
        assert_eq!(lpos(&l, b"a", 1, Some(0), 3), [0, 2]);
        assert_eq!(lpos(&l, b"a", 4, None, 0), Vec::<usize>::new());
        assert_eq!(lpos(&l, b"a", i64::MIN, Some(2), 0), [4, 2, 0]);
        assert_eq!(lpos(&l, b"a", i64::MAX, Some(1), 0), Vec::<usize>::new());
    }

    fn exec(db: &mut Db, line: &str) -> Frame {
        let args: Vec<Bytes> = line
            .split_whitespace()
            .map(|s| Bytes::from(s.to_string()))
            .collect();
        let mut ctx = Ctx { now_ms: 0, seed: 0 };
        match crate::parse(&args, &mut ctx) {
            Ok(cmd) => cmd.execute(db, 0),
            Err(e) => e.to_frame(),
        }
    }

    #[test]
    fn only_changes_touch_watched_keys() {
        let mut db = Db::new();
        exec(&mut db, "RPUSH l a b");
        for (noop, change) in [
            ("LINSERT l BEFORE zz x", "LINSERT l BEFORE a x"),
            ("LREM l 0 zz", "LREM l 1 x"),
            ("LPOP l 0", "LSET l 0 a"),
            ("LPUSHX other a", "RPUSHX l c"),
            ("LMOVE none l LEFT LEFT", "LMOVE l l LEFT RIGHT"),
        ] {
            let w = db.watch(b"l", 0);
            exec(&mut db, noop);
            assert!(!db.watch_is_dirty(&w, 0), "{noop}");
            exec(&mut db, change);
            assert!(db.watch_is_dirty(&w, 0), "{change}");
        }
        // Redis signals LTRIM even when it trims nothing.
        let w = db.watch(b"l", 0);
        exec(&mut db, "LTRIM l 0 -1");
        assert!(db.watch_is_dirty(&w, 0));
    }

    #[test]
    fn emptied_lists_are_deleted() {
        let mut db = Db::new();
        for cmd in [
            "LPOP l",
            "RPOP l 5",
            "LREM l 0 a",
            "LTRIM l 1 0",
            "RPOPLPUSH l other",
        ] {
            exec(&mut db, "RPUSH l a");
            exec(&mut db, cmd);
            assert!(!db.contains(b"l", 0), "{cmd}");
            db.remove(b"other", 0);
        }
    }

    #[test]
    fn positions() {
        assert_eq!(position(0, 3), Some(0));
        assert_eq!(position(-1, 3), Some(2));
        assert_eq!(position(-4, 3), None);
        assert_eq!(position(3, 3), None);
        assert_eq!(position(i64::MIN, 3), None);
        assert_eq!(position(0, 0), None);
    }
}
