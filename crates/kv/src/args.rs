//! Argument parsing shared by the command families, with Redis's rules and errors.

use bytes::Bytes;

use crate::error::{Error, Result};

/// An integer argument (`string2ll` rules), else `value is not an integer or out of range`.
pub fn int(arg: &[u8]) -> Result<i64> {
    resp::request::parse_int(arg).ok_or(Error::NotInteger)
}

/// A float argument as Redis's `getDoubleFromObject`/`strtod` takes it: no leading
/// space, `inf`/`-inf`/`+inf` allowed, NaN refused; else `value is not a valid float`.
pub fn float(arg: &[u8]) -> Result<f64> {
    parse_float(arg).ok_or(Error::NotFloat)
}

/// Parses a float the way Redis does, or `None`.
pub fn parse_float(arg: &[u8]) -> Option<f64> {
    if arg.is_empty() || arg.len() > 5120 {
        return None;
    }
    if arg[0].is_ascii_whitespace() || arg.last().is_some_and(|c| c.is_ascii_whitespace()) {
        return None;
    }
    let s = std::str::from_utf8(arg).ok()?;
    let lower = s.to_ascii_lowercase();
    let v = match lower.as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        _ => {
            if lower.contains("inf")
                || lower.contains("nan")
                || lower.starts_with("0x")
                || lower.starts_with("-0x")
                || lower.starts_with("+0x")
            {
                return None;
            }
            s.parse::<f64>().ok()?
        }
    };
    if v.is_nan() {
        None
    } else {
        Some(v)
    }
}

/// True if `arg` equals `word`, ignoring ASCII case.
pub fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// The command name in lower case, for error texts.
pub fn name(args: &[Bytes]) -> String {
    String::from_utf8_lossy(&args[0]).to_ascii_lowercase()
}

/// Resolves Redis's `start`/`stop` index pair (negative from the end) against `len`;
/// `None` when the range is empty.
pub fn range(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let mut start = if start < 0 { len + start } else { start };
    let mut stop = if stop < 0 { len + stop } else { stop };
    if start < 0 {
        start = 0;
    }
    if start > stop || start >= len {
        return None;
    }
    if stop >= len {
        stop = len - 1;
    }
    Some((start as usize, stop as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats() {
        assert_eq!(parse_float(b"1.5"), Some(1.5));
        assert_eq!(parse_float(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_float(b"nan"), None);
        assert_eq!(parse_float(b" 1"), None);
        assert_eq!(parse_float(b""), None);
        assert_eq!(parse_float(b"1e3"), Some(1000.0));
    }

    #[test]
    fn ranges() {
        assert_eq!(range(0, -1, 3), Some((0, 2)));
        assert_eq!(range(-100, 100, 3), Some((0, 2)));
        assert_eq!(range(2, 1, 3), None);
        assert_eq!(range(5, 10, 3), None);
        assert_eq!(range(0, -1, 0), None);
    }
}
