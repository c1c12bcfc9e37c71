//! A lossless, tagged binary encoding of [`Frame`], for carrying replies between nodes
//! (the apply result of a Raft log entry travels back to a forwarding node this way).
//!
//! RESP itself is not lossless: in RESP2 a map, a set and an array look alike, and a
//! double is a bulk string. This encoding keeps the variant, so
//! `Frame::from_wire(&f.to_wire()) == Ok(f)` for every frame (a `Double` holding a NaN
//! comes back with the same bits, although NaN never compares equal).
//!
//! Layout: one tag byte per frame, then its body. Integers are little-endian; a length or
//! count is a `u32`; text and byte strings are a length and that many bytes.
//!
//! | tag | variant | body |
//! | --- | --- | --- |
//! | 0 | `Simple` | text |
//! | 1 | `Status` | text |
//! | 2 | `Error` | text |
//! | 3 | `Integer` | `i64` |
//! | 4 | `Bulk` | bytes |
//! | 5 | `Null` | |
//! | 6 | `NullArray` | |
//! | 7 | `Array` | count, frames |
//! | 8 | `Map` | count, key/value frames |
//! | 9 | `Pairs` | count, key/value frames |
//! | 10 | `Set` | count, frames |
//! | 11 | `Double` | `u64` bits |
//! | 12 | `Boolean` | `0` or `1` |
//! | 13 | `Verbatim` | format text, bytes |
//! | 14 | `Push` | count, frames |
//!
//! Invariants:
//! - Decoding never panics and never allocates more than the input could describe: a
//!   count larger than the bytes left is an error before anything is reserved, and
//!   nesting deeper than [`MAX_DEPTH`] is an error (no stack overflow on hostile input).
//! - Truncated input, trailing bytes, unknown tags and invalid UTF-8 in text are errors.
//! - `Simple` and `Verbatim` hold `&'static str`. Decoding maps their text back to a static
//!   string: the common ones from a fixed table, others through a bounded interner (each
//!   distinct text is allocated once, for the life of the process, up to
//!   [`MAX_INTERNED`] texts of at most [`MAX_INTERNED_LEN`] bytes). Past those bounds a
//!   `Simple` decodes as a `Status` with the same text, which every protocol encodes to the
//!   same bytes, and a `Verbatim` format is an error (RESP3 formats are three bytes).

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

use bytes::Bytes;

use crate::Frame;

/// Deepest nesting [`Frame::from_wire`] accepts. Replies nest a few levels (an `EXEC`
/// array of `WITHSCORES` pairs); this leaves room and keeps recursion shallow.
pub const MAX_DEPTH: usize = 128;
/// Most distinct `Simple`/`Verbatim` texts interned for the life of the process.
pub const MAX_INTERNED: usize = 1024;
/// Longest text the interner keeps.
pub const MAX_INTERNED_LEN: usize = 1024;

/// Why bytes are not a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("truncated frame")]
    Truncated,
    #[error("{0} trailing bytes after the frame")]
    Trailing(usize),
    #[error("unknown frame tag {0}")]
    UnknownTag(u8),
    #[error("count {0} larger than the bytes left")]
    BadCount(u32),
    #[error("frame nested deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("text is not UTF-8")]
    NotUtf8,
    #[error("boolean byte {0} is neither 0 nor 1")]
    BadBoolean(u8),
    #[error("verbatim format cannot be interned")]
    BadVerbatimFormat,
}

const SIMPLE: u8 = 0;
const STATUS: u8 = 1;
const ERROR: u8 = 2;
const INTEGER: u8 = 3;
const BULK: u8 = 4;
const NULL: u8 = 5;
const NULL_ARRAY: u8 = 6;
const ARRAY: u8 = 7;
const MAP: u8 = 8;
const PAIRS: u8 = 9;
const SET: u8 = 10;
const DOUBLE: u8 = 11;
const BOOLEAN: u8 = 12;
const VERBATIM: u8 = 13;
const PUSH: u8 = 14;

impl Frame {
    /// The lossless binary encoding of this frame (see the module header).
    pub fn to_wire(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.put_wire(&mut out);
        out
    }

    /// Appends the lossless binary encoding of this frame to `out`.
    pub fn put_wire(&self, out: &mut Vec<u8>) {
        match self {
            Frame::Simple(s) => put_text(out, SIMPLE, s.as_bytes()),
            Frame::Status(s) => put_text(out, STATUS, s.as_bytes()),
            Frame::Error(s) => put_text(out, ERROR, s.as_bytes()),
            Frame::Integer(n) => {
                out.push(INTEGER);
                out.extend_from_slice(&n.to_le_bytes());
            }
            Frame::Bulk(b) => put_text(out, BULK, b),
            Frame::Null => out.push(NULL),
            Frame::NullArray => out.push(NULL_ARRAY),
            Frame::Array(items) => put_items(out, ARRAY, items),
            Frame::Set(items) => put_items(out, SET, items),
            Frame::Push(items) => put_items(out, PUSH, items),
            Frame::Map(pairs) => put_pairs(out, MAP, pairs),
            Frame::Pairs(pairs) => put_pairs(out, PAIRS, pairs),
            Frame::Double(d) => {
                out.push(DOUBLE);
                out.extend_from_slice(&d.to_bits().to_le_bytes());
            }
            Frame::Boolean(b) => {
                out.push(BOOLEAN);
                out.push(*b as u8);
            }
            Frame::Verbatim(format, text) => {
                put_text(out, VERBATIM, format.as_bytes());
                put_len(out, text.len());
                out.extend_from_slice(text);
            }
        }
    }

    /// Decodes exactly one frame from `bytes` (the whole slice).
    pub fn from_wire(bytes: &[u8]) -> Result<Frame, WireError> {
        let mut r = Reader { buf: bytes, pos: 0 };
        let frame = r.frame(0)?;
        match bytes.len() - r.pos {
            0 => Ok(frame),
            n => Err(WireError::Trailing(n)),
        }
    }
}

fn put_len(out: &mut Vec<u8>, n: usize) {
    // Frames are built in memory from replies far below 4 GiB; a longer string would not
    // be a valid RESP bulk either (512 MB cap). Saturate rather than wrap.
    let n = u32::try_from(n).unwrap_or(u32::MAX);
    out.extend_from_slice(&n.to_le_bytes());
}

fn put_text(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
    out.push(tag);
    put_len(out, body.len());
    out.extend_from_slice(body);
}

fn put_items(out: &mut Vec<u8>, tag: u8, items: &[Frame]) {
    out.push(tag);
    put_len(out, items.len());
    for item in items {
        item.put_wire(out);
    }
}

fn put_pairs(out: &mut Vec<u8>, tag: u8, pairs: &[(Frame, Frame)]) {
    out.push(tag);
    put_len(out, pairs.len());
    for (k, v) in pairs {
        k.put_wire(out);
        v.put_wire(out);
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], WireError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(WireError::Truncated)?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn len(&mut self) -> Result<usize, WireError> {
        Ok(u32::from_le_bytes(self.array()?) as usize)
    }

    /// A count of items, each at least `min_item` bytes: no larger than the bytes left.
    fn count(&mut self, min_item: usize) -> Result<usize, WireError> {
        let n = self.len()?;
        if n.saturating_mul(min_item) > self.buf.len() - self.pos {
            return Err(WireError::BadCount(n as u32));
        }
        Ok(n)
    }

    fn bytes(&mut self) -> Result<&[u8], WireError> {
        let n = self.len()?;
        self.take(n)
    }

    fn text(&mut self) -> Result<&str, WireError> {
        std::str::from_utf8(self.bytes()?).map_err(|_| WireError::NotUtf8)
    }

    fn frames(&mut self, depth: usize) -> Result<Vec<Frame>, WireError> {
        let n = self.count(1)?;
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(self.frame(depth + 1)?);
        }
        Ok(items)
    }

    fn pairs(&mut self, depth: usize) -> Result<Vec<(Frame, Frame)>, WireError> {
        let n = self.count(2)?;
        let mut pairs = Vec::with_capacity(n);
        for _ in 0..n {
            let k = self.frame(depth + 1)?;
            let v = self.frame(depth + 1)?;
            pairs.push((k, v));
        }
        Ok(pairs)
    }

    fn frame(&mut self, depth: usize) -> Result<Frame, WireError> {
        if depth > MAX_DEPTH {
            return Err(WireError::TooDeep);
        }
        let frame = match self.u8()? {
            SIMPLE => {
                let text = self.text()?;
                match intern(text) {
                    Some(s) => Frame::Simple(s),
                    None => Frame::Status(text.to_string()),
                }
            }
            STATUS => Frame::Status(self.text()?.to_string()),
            ERROR => Frame::Error(self.text()?.to_string()),
            INTEGER => Frame::Integer(i64::from_le_bytes(self.array()?)),
            BULK => Frame::Bulk(Bytes::copy_from_slice(self.bytes()?)),
            NULL => Frame::Null,
            NULL_ARRAY => Frame::NullArray,
            ARRAY => Frame::Array(self.frames(depth)?),
            SET => Frame::Set(self.frames(depth)?),
            PUSH => Frame::Push(self.frames(depth)?),
            MAP => Frame::Map(self.pairs(depth)?),
            PAIRS => Frame::Pairs(self.pairs(depth)?),
            DOUBLE => Frame::Double(f64::from_bits(u64::from_le_bytes(self.array()?))),
            BOOLEAN => match self.u8()? {
                0 => Frame::Boolean(false),
                1 => Frame::Boolean(true),
                b => return Err(WireError::BadBoolean(b)),
            },
            VERBATIM => {
                let format = intern(self.text()?).ok_or(WireError::BadVerbatimFormat)?;
                Frame::Verbatim(format, Bytes::copy_from_slice(self.bytes()?))
            }
            tag => return Err(WireError::UnknownTag(tag)),
        };
        Ok(frame)
    }
}

/// Texts that `Simple` and `Verbatim` commonly hold, returned without locking.
const KNOWN: &[&str] = &[
    "OK", "PONG", "QUEUED", "RESET", "string", "list", "hash", "set", "zset", "none", "txt", "mkd",
];

/// The `&'static str` for `text`: from [`KNOWN`], or from the process-wide interner, which
/// leaks each distinct text once. `None` when the interner is full or the text too long.
fn intern(text: &str) -> Option<&'static str> {
    if let Some(s) = KNOWN.iter().copied().find(|&s| s == text) {
        return Some(s);
    }
    static INTERNED: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut set = INTERNED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(&s) = set.get(text) {
        return Some(s);
    }
    if set.len() >= MAX_INTERNED || text.len() > MAX_INTERNED_LEN {
        return None;
    }
    let s: &'static str = Box::leak(text.to_string().into_boxed_str());
    set.insert(s);
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_variant() -> Vec<Frame> {
        let leaves = vec![
            Frame::OK,
            Frame::Simple("PONG"),
            Frame::Simple("an uncommon status line"),
            Frame::Status("hash".into()),
            Frame::Error("ERR wrong number of arguments".into()),
            Frame::Error(String::new()),
            Frame::Integer(0),
            Frame::Integer(i64::MIN),
            Frame::Integer(i64::MAX),
            Frame::bulk(""),
            Frame::bulk(b"\x00\xff\r\n"),
            Frame::Null,
            Frame::NullArray,
            Frame::Double(1.5),
            Frame::Double(-0.0),
            Frame::Double(f64::INFINITY),
            Frame::Double(f64::NEG_INFINITY),
            Frame::Boolean(true),
            Frame::Boolean(false),
            Frame::Verbatim("txt", Bytes::from_static(b"hi\n")),
            Frame::Verbatim("abc", Bytes::new()),
        ];
        let mut all = leaves.clone();
        all.push(Frame::Array(leaves.clone()));
        all.push(Frame::Array(vec![]));
        all.push(Frame::Set(leaves.clone()));
        all.push(Frame::Push(leaves.clone()));
        let pairs: Vec<_> = leaves
            .iter()
            .cloned()
            .zip(leaves.iter().rev().cloned())
            .collect();
        all.push(Frame::Map(pairs.clone()));
        all.push(Frame::Pairs(pairs));
        all.push(Frame::Array(vec![
            Frame::Array(all.clone()),
            Frame::Map(vec![(Frame::Set(vec![]), Frame::Array(all.clone()))]),
        ]));
        all
    }

    #[test]
    fn every_variant_round_trips() {
        for f in every_variant() {
            let wire = f.to_wire();
            assert_eq!(Frame::from_wire(&wire), Ok(f.clone()), "{f:?}");
        }
    }

    #[test]
    fn nan_keeps_its_bits() {
        let nan = f64::from_bits(0x7ff8_0000_dead_beef);
        match Frame::from_wire(&Frame::Double(nan).to_wire()) {
            Ok(Frame::Double(d)) => assert_eq!(d.to_bits(), nan.to_bits()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn truncation_trailing_and_bad_tags_are_errors() {
        for f in every_variant() {
            let wire = f.to_wire();
            for cut in 0..wire.len() {
                assert!(
                    Frame::from_wire(&wire[..cut]).is_err(),
                    "{f:?} cut at {cut}"
                );
            }
            let mut long = wire.clone();
            long.push(0);
            assert_eq!(Frame::from_wire(&long), Err(WireError::Trailing(1)));
        }
        assert_eq!(Frame::from_wire(&[99]), Err(WireError::UnknownTag(99)));
        assert_eq!(
            Frame::from_wire(&[BOOLEAN, 2]),
            Err(WireError::BadBoolean(2))
        );
        assert_eq!(
            Frame::from_wire(&[STATUS, 1, 0, 0, 0, 0xff]),
            Err(WireError::NotUtf8)
        );
        assert_eq!(
            Frame::from_wire(&[ARRAY, 0xff, 0xff, 0xff, 0xff]),
            Err(WireError::BadCount(u32::MAX))
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let mut deep = Vec::new();
        for _ in 0..100_000 {
            deep.extend_from_slice(&[ARRAY, 1, 0, 0, 0]);
        }
        deep.push(NULL);
        assert_eq!(Frame::from_wire(&deep), Err(WireError::TooDeep));
        let mut ok = Frame::Null;
        for _ in 0..MAX_DEPTH {
            ok = Frame::Array(vec![ok]);
        }
        assert_eq!(Frame::from_wire(&ok.to_wire()), Ok(ok));
    }

    #[test]
    fn random_bytes_never_panic() {
        // SplitMix64, as in kv's rng: no dependency needed for a test.
        let mut state = 0x1234_5678_u64;
        let mut next = move || {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        let seeds: Vec<Vec<u8>> = every_variant().iter().map(Frame::to_wire).collect();
        for i in 0..20_000 {
            let mut bytes = if i % 2 == 0 {
                seeds[i / 2 % seeds.len()].clone()
            } else {
                (0..next() % 48).map(|_| next() as u8).collect()
            };
            // Flip a few bytes of a valid encoding, or use pure noise.
            for _ in 0..3 {
                if !bytes.is_empty() {
                    let at = (next() % bytes.len() as u64) as usize;
                    bytes[at] = next() as u8;
                }
            }
            let _ = Frame::from_wire(&bytes);
        }
    }
}
