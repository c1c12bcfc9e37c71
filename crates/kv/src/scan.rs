//! Cursors for `SCAN`, `HSCAN`, `SSCAN` and `ZSCAN`.
//!
//! Collections are position-indexed (insertion order, `swap_remove`/`shift_remove` on
//! delete). A cursor is the number of positions not yet visited, and a scan walks
//! positions from the end toward 0. Removal only ever moves an element from a higher
//! position to a lower one, so an element present for the whole scan is never moved from
//! the unvisited part into the visited part: Redis's guarantee (every element present
//! from start to end is returned at least once) holds. Elements added meanwhile may or may
//! not be returned; an element may be returned twice. Cursor 0 starts and ends a scan.

use bytes::Bytes;

use crate::args;
use crate::error::{Error, Result};

/// Parsed `cursor [MATCH pattern] [COUNT count] [TYPE type]`.
#[derive(Clone, Debug, PartialEq)]
pub struct ScanArgs {
    pub cursor: u64,
    pub pattern: Option<Bytes>,
    pub count: usize,
    pub type_name: Option<Bytes>,
}

impl ScanArgs {
    /// Parses the cursor at `args[at]` and the options after it. `TYPE` only for `SCAN`.
    pub fn parse(args: &[Bytes], at: usize, allow_type: bool) -> Result<ScanArgs> {
        let cursor = parse_cursor(&args[at])?;
        let mut out = ScanArgs {
            cursor,
            pattern: None,
            count: 10,
            type_name: None,
        };
        let mut i = at + 1;
        while i < args.len() {
            let rest = args.len() - i - 1;
            if args::is(&args[i], "count") && rest >= 1 {
                let n = args::int(&args[i + 1])?;
                if n < 1 {
                    return Err(Error::Syntax);
                }
                out.count = n.min(1 << 20) as usize;
                i += 2;
            } else if args::is(&args[i], "match") && rest >= 1 {
                let p = args[i + 1].clone();
                // "*" matches everything: skip matching, as Redis does.
                out.pattern = if &p[..] == b"*" { None } else { Some(p) };
                i += 2;
            } else if allow_type && args::is(&args[i], "type") && rest >= 1 {
                out.type_name = Some(args[i + 1].clone());
                i += 2;
            } else {
                return Err(Error::Syntax);
            }
        }
        Ok(out)
    }

    pub fn matches(&self, item: &[u8]) -> bool {
        self.pattern
            .as_ref()
            .is_none_or(|p| crate::glob::glob_match(p, item, false))
    }
}

/// Parses a cursor as Redis does (`strtoul`: an unsigned decimal with an optional sign,
/// a negative one wrapping around; the empty string is 0), else `invalid cursor`.
pub fn parse_cursor(arg: &[u8]) -> Result<u64> {
    let invalid = || Error::err("invalid cursor");
    if arg.is_empty() {
        return Ok(0);
    }
    let (negative, digits) = match arg[0] {
        b'-' => (true, &arg[1..]),
        b'+' => (false, &arg[1..]),
        _ => (false, arg),
    };
    if digits.is_empty() || !digits.iter().all(|c| c.is_ascii_digit()) {
        return Err(invalid());
    }
    let mut v: u64 = 0;
    for &d in digits {
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add((d - b'0') as u64))
            .ok_or_else(invalid)?;
    }
    Ok(if negative { v.wrapping_neg() } else { v })
}

/// One step of a scan over `len` positions: the positions to visit now (descending)
/// and the cursor to return.
pub fn step(cursor: u64, len: usize, count: usize) -> (impl Iterator<Item = usize>, u64) {
    let start = if cursor == 0 {
        len
    } else {
        (cursor as usize).min(len)
    };
    let end = start.saturating_sub(count);
    ((end..start).rev(), end as u64)
}

/// The reply `[cursor, [items...]]`.
pub fn reply(cursor: u64, items: Vec<resp::Frame>) -> resp::Frame {
    resp::Frame::Array(vec![
        resp::Frame::bulk(cursor.to_string()),
        resp::Frame::Array(items),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_every_position_once() {
        let mut cursor = 0;
        let mut seen = Vec::new();
        loop {
            let (positions, next) = step(cursor, 25, 10);
            seen.extend(positions);
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        seen.sort();
        assert_eq!(seen, (0..25).collect::<Vec<_>>());
    }

    #[test]
    fn options() {
        let a: Vec<Bytes> = ["SCAN", "0", "MATCH", "k*", "COUNT", "5", "TYPE", "string"]
            .iter()
            .map(|s| Bytes::from(s.to_string()))
            .collect();
        let s = ScanArgs::parse(&a, 1, true).unwrap();
        assert_eq!(s.count, 5);
        assert!(s.matches(b"key"));
        assert_eq!(ScanArgs::parse(&a, 1, false), Err(Error::Syntax));
        assert_eq!(parse_cursor(b"x"), Err(Error::err("invalid cursor")));
        assert_eq!(parse_cursor(b""), Ok(0));
        assert_eq!(parse_cursor(b"+7"), Ok(7));
        assert_eq!(parse_cursor(b"-1"), Ok(u64::MAX));
        assert_eq!(parse_cursor(b"18446744073709551615"), Ok(u64::MAX));
        assert!(parse_cursor(b"18446744073709551616").is_err());
        assert!(parse_cursor(b"-").is_err());
        assert!(parse_cursor(b" 1").is_err());
    }
}
