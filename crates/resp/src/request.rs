//! Client requests: multibulk (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`) and inline (`GET k\r\n`).
//!
//! [`check`] walks the headers of the first request in a buffer without allocating and
//! answers with its length, [`Check::Incomplete`], or a [`ProtocolError`] whose text is
//! Redis's own. [`parse`] then cuts the checked bytes into arguments. Bulk payloads are
//! skipped by length, so re-checking a buffer that grows costs one step per argument, not
//! one per byte.

use bytes::{Buf, Bytes, BytesMut};

/// Redis's `proto-max-bulk-len` default: 512 MB.
pub const MAX_BULK_LEN: i64 = 512 * 1024 * 1024;
/// Most arguments in one multibulk request: Redis 7.0 refuses counts above `INT_MAX`.
pub const MAX_MULTIBULK_LEN: i64 = i32::MAX as i64;
/// Most bytes a connection may buffer for requests not yet complete (Redis's
/// `client-query-buffer-limit` default, 1 GB).
pub const MAX_QUERY_BUFFER: usize = 1024 * 1024 * 1024;
/// Longest inline request, and longest `*`/`$` header line (Redis's `PROTO_INLINE_MAX_SIZE`).
pub const MAX_INLINE_LEN: usize = 64 * 1024;

/// Size caps, with Redis's defaults.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_bulk_len: i64,
    pub max_multibulk_len: i64,
    pub max_inline_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk_len: MAX_BULK_LEN,
            max_multibulk_len: MAX_MULTIBULK_LEN,
            max_inline_len: MAX_INLINE_LEN,
        }
    }
}

/// A broken request: the connection replies `-ERR Protocol error: ...` and closes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProtocolError {
    InvalidMultibulkLength,
    InvalidBulkLength,
    ExpectedDollar(u8),
    TooBigInline,
    TooBigMultibulkCount,
    TooBigBulkCount,
    UnbalancedQuotes,
}

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProtocolError::InvalidMultibulkLength => f.write_str("invalid multibulk length"),
            ProtocolError::InvalidBulkLength => f.write_str("invalid bulk length"),
            ProtocolError::ExpectedDollar(c) => write!(f, "expected '$', got '{}'", *c as char),
            ProtocolError::TooBigInline => f.write_str("too big inline request"),
            ProtocolError::TooBigMultibulkCount => f.write_str("too big mbulk count string"),
            ProtocolError::TooBigBulkCount => f.write_str("too big bulk count string"),
            ProtocolError::UnbalancedQuotes => f.write_str("unbalanced quotes in request"),
        }
    }
}

impl std::error::Error for ProtocolError {}

impl ProtocolError {
    /// The error reply Redis sends before it closes the connection.
    pub fn reply_text(&self) -> String {
        format!("ERR Protocol error: {self}")
    }
}

/// What [`check`] found at the start of the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// A whole request of this many bytes.
    Complete(usize),
    /// More bytes are needed; at least this many in all, when known.
    Incomplete(Option<usize>),
}

/// Parses a decimal integer exactly as Redis's `string2ll` does: an optional `-`, no
/// `+`, no leading zeros, no spaces, no overflow.
pub fn parse_int(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (negative, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    if negative {
        if v > i64::MAX as u64 + 1 {
            None
        } else {
            Some((v as i64).wrapping_neg())
        }
    } else {
        i64::try_from(v).ok()
    }
}

fn find_cr(buf: &[u8], from: usize) -> Option<usize> {
    buf[from..]
        .iter()
        .position(|&b| b == b'\r')
        .map(|p| p + from)
}

/// Where checking of an incomplete multibulk request stopped, so that the next check of
/// the same (grown) buffer resumes there instead of walking every argument again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Offset of the next argument header; 0 when nothing is cached.
    pos: usize,
    /// Arguments still to check.
    left: u64,
}

/// Checks the first request in `buf`.
pub fn check(buf: &[u8], limits: &Limits) -> Result<Check, ProtocolError> {
    check_resuming(buf, limits, &mut Progress::default())
}

/// Checks the first request in `buf`, resuming from `progress` (which must come from
/// checking the same buffer, possibly shorter, since its last `Complete`). `progress` is
/// reset when the request is complete or broken.
pub fn check_resuming(
    buf: &[u8],
    limits: &Limits,
    progress: &mut Progress,
) -> Result<Check, ProtocolError> {
    let result = check_multibulk(buf, limits, progress);
    if !matches!(result, Ok(Check::Incomplete(_))) {
        *progress = Progress::default();
    }
    result
}

fn check_multibulk(
    buf: &[u8],
    limits: &Limits,
    progress: &mut Progress,
) -> Result<Check, ProtocolError> {
    if buf.is_empty() {
        return Ok(Check::Incomplete(None));
    }
    if buf[0] != b'*' {
        return check_inline(buf, limits);
    }
    let (mut pos, count) = if progress.pos > 0 {
        (progress.pos, progress.left)
    } else {
        let Some(cr) = find_cr(buf, 0) else {
            if buf.len() > limits.max_inline_len {
                return Err(ProtocolError::TooBigMultibulkCount);
            }
            return Ok(Check::Incomplete(None));
        };
        if cr + 1 >= buf.len() {
            return Ok(Check::Incomplete(None));
        }
        let count = parse_int(&buf[1..cr]).ok_or(ProtocolError::InvalidMultibulkLength)?;
        if count > limits.max_multibulk_len {
            return Err(ProtocolError::InvalidMultibulkLength);
        }
        (cr + 2, count.max(0) as u64)
    };
    for done in 0..count {
        progress.pos = pos;
        progress.left = count - done;
        if pos >= buf.len() {
            return Ok(Check::Incomplete(None));
        }
        let Some(cr) = find_cr(buf, pos) else {
            if buf.len() - pos > limits.max_inline_len {
                return Err(ProtocolError::TooBigBulkCount);
            }
            return Ok(Check::Incomplete(None));
        };
        if cr + 1 >= buf.len() {
            return Ok(Check::Incomplete(None));
        }
        if buf[pos] != b'$' {
            return Err(ProtocolError::ExpectedDollar(buf[pos]));
        }
        let len = parse_int(&buf[pos + 1..cr]).ok_or(ProtocolError::InvalidBulkLength)?;
        if len < 0 || len > limits.max_bulk_len {
            return Err(ProtocolError::InvalidBulkLength);
        }
        let next = cr + 2 + len as usize + 2;
        if next > buf.len() {
            return Ok(Check::Incomplete(Some(next)));
        }
        pos = next;
    }
    Ok(Check::Complete(pos))
}

fn check_inline(buf: &[u8], limits: &Limits) -> Result<Check, ProtocolError> {
    match buf.iter().position(|&b| b == b'\n') {
        Some(nl) if nl > limits.max_inline_len => Err(ProtocolError::TooBigInline),
        Some(nl) => {
            let line = &buf[..nl];
            split_inline(line).ok_or(ProtocolError::UnbalancedQuotes)?;
            Ok(Check::Complete(nl + 1))
        }
        None if buf.len() > limits.max_inline_len => Err(ProtocolError::TooBigInline),
        None => Ok(Check::Incomplete(None)),
    }
}

/// Cuts one checked request (exactly the bytes [`check`] accepted) into arguments.
/// An empty result is a request to ignore (`*0`, `*-1`, a blank inline line).
pub fn parse(mut frame: Bytes) -> Vec<Bytes> {
    if frame.first() != Some(&b'*') {
        let mut line = &frame[..frame.len().saturating_sub(1)];
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        return split_inline(line).unwrap_or_default();
    }
    let cr = find_cr(&frame, 0).expect("checked frame");
    let count = parse_int(&frame[1..cr]).expect("checked frame").max(0) as usize;
    frame.advance(cr + 2);
    let mut args = Vec::with_capacity(count);
    for _ in 0..count {
        let cr = find_cr(&frame, 0).expect("checked frame");
        let len = parse_int(&frame[1..cr]).expect("checked frame") as usize;
        frame.advance(cr + 2);
        args.push(frame.split_to(len));
        frame.advance(2);
    }
    args
}

/// Takes the next whole request off the front of `buf`, if there is one.
pub fn next_request(
    buf: &mut BytesMut,
    limits: &Limits,
) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    match check(buf, limits)? {
        Check::Complete(len) => Ok(Some(parse(buf.split_to(len).freeze()))),
        Check::Incomplete(_) => Ok(None),
    }
}

/// Splits an inline line the way Redis's `sdssplitargs` does: whitespace separates
/// arguments; `"..."` understands `\n \r \t \b \a \\ \" \xHH`; `'...'` understands `\'`;
/// a closing quote must be followed by whitespace or the end. `None` means unbalanced.
pub fn split_inline(line: &[u8]) -> Option<Vec<Bytes>> {
    let mut args = Vec::new();
    let mut i = 0;
    let n = line.len();
    loop {
        while i < n && is_space(line[i]) {
            i += 1;
        }
        if i >= n {
            return Some(args);
        }
        let mut cur = Vec::new();
        let mut in_dq = false;
        let mut in_sq = false;
        loop {
            if in_dq {
                if i >= n {
                    return None;
                }
                let c = line[i];
                if c == b'\\'
                    && i + 3 < n
                    && line[i + 1] == b'x'
                    && line[i + 2].is_ascii_hexdigit()
                    && line[i + 3].is_ascii_hexdigit()
                {
                    cur.push(hex(line[i + 2]) * 16 + hex(line[i + 3]));
                    i += 3;
                } else if c == b'\\' && i + 1 < n {
                    i += 1;
                    cur.push(match line[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        other => other,
                    });
                } else if c == b'"' {
                    if i + 1 < n && !is_space(line[i + 1]) {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(c);
                }
            } else if in_sq {
                if i >= n {
                    return None;
                }
                let c = line[i];
                if c == b'\\' && i + 1 < n && line[i + 1] == b'\'' {
                    i += 1;
                    cur.push(b'\'');
                } else if c == b'\'' {
                    if i + 1 < n && !is_space(line[i + 1]) {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(c);
                }
            } else {
                if i >= n {
                    break;
                }
                match line[i] {
                    c if is_space(c) => break,
                    b'"' => in_dq = true,
                    b'\'' => in_sq = true,
                    c => cur.push(c),
                }
            }
            i += 1;
        }
        args.push(Bytes::from(cur));
    }
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\n' | b'\r' | b'\t' | 0x0b | 0x0c)
}

fn hex(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => c - b'A' + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8]) -> Result<Vec<Vec<Bytes>>, ProtocolError> {
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(args) = next_request(&mut buf, &Limits::default())? {
            out.push(args);
        }
        Ok(out)
    }

    #[test]
    fn string2ll_rules() {
        assert_eq!(parse_int(b"0"), Some(0));
        assert_eq!(parse_int(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_int(b"9223372036854775807"), Some(i64::MAX));
        for bad in [
            &b"9223372036854775808"[..],
            b"-0",
            b"01",
            b"+1",
            b" 1",
            b"1 ",
            b"",
            b"-",
            b"1a",
        ] {
            assert_eq!(parse_int(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn multibulk_and_inline() {
        let got = all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n  set a \"b c\"\n").unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], vec![Bytes::from("GET"), Bytes::from("k")]);
        assert_eq!(got[1], vec![Bytes::from("PING")]);
        assert_eq!(
            got[2],
            vec![Bytes::from("set"), Bytes::from("a"), Bytes::from("b c")]
        );
    }

    #[test]
    fn every_split_point_is_incomplete_until_whole() {
        let frame = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n";
        for cut in 0..frame.len() {
            assert!(matches!(
                check(&frame[..cut], &Limits::default()),
                Ok(Check::Incomplete(_))
            ));
        }
        assert_eq!(
            check(frame, &Limits::default()),
            Ok(Check::Complete(frame.len()))
        );
    }

    #[test]
    fn resuming_gives_the_same_answers() {
        let mut frame = Vec::new();
        frame.extend_from_slice(b"*300\r\n");
        for i in 0..300 {
            let arg = format!("arg{i}");
            frame.extend_from_slice(format!("${}\r\n{arg}\r\n", arg.len()).as_bytes());
        }
        frame.extend_from_slice(b"PING\r\n");
        let limits = Limits::default();
        let mut progress = Progress::default();
        for cut in 0..frame.len() {
            let resumed = check_resuming(&frame[..cut], &limits, &mut progress);
            assert_eq!(resumed, check(&frame[..cut], &limits), "at {cut}");
            if let Ok(Check::Complete(_)) = resumed {
                progress = Progress::default();
            }
        }
        assert_eq!(progress, Progress::default());
    }

    #[test]
    fn redis_protocol_errors() {
        assert_eq!(all(b"*abc\r\n"), Err(ProtocolError::InvalidMultibulkLength));
        assert_eq!(
            all(b"*2147483648\r\n"),
            Err(ProtocolError::InvalidMultibulkLength)
        );
        assert_eq!(
            all(b"*1048577\r\n"),
            Ok(vec![]),
            "Redis 7.0 waits for the arguments"
        );
        assert_eq!(all(b"*1\r\n$-1\r\n"), Err(ProtocolError::InvalidBulkLength));
        assert_eq!(
            all(b"*1\r\n$536870913\r\n"),
            Err(ProtocolError::InvalidBulkLength)
        );
        assert_eq!(
            all(b"*1\r\n:1\r\n"),
            Err(ProtocolError::ExpectedDollar(b':'))
        );
        assert_eq!(all(b"set \"a\"b\r\n"), Err(ProtocolError::UnbalancedQuotes));
        assert_eq!(all(&vec![b'a'; 70_000]), Err(ProtocolError::TooBigInline));
        assert_eq!(
            ProtocolError::ExpectedDollar(b'x').reply_text(),
            "ERR Protocol error: expected '$', got 'x'"
        );
    }

    #[test]
    fn empty_requests_are_skipped() {
        let got = all(b"*0\r\n*-1\r\n\r\n").unwrap();
        assert!(got.iter().all(|a| a.is_empty()));
    }

    #[test]
    fn inline_escapes() {
        let args = split_inline(br#"set "a\x41\n" 'it\'s'"#).unwrap();
        assert_eq!(args[1], Bytes::from_static(b"aA\n"));
        assert_eq!(args[2], Bytes::from_static(b"it's"));
        assert!(split_inline(b"\"abc").is_none());
    }
}
