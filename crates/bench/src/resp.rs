//! The load generator's own RESP client codec: it encodes `SET`/`GET` requests the way
//! `redis-benchmark` sends them (arrays of bulk strings) and parses replies just far enough to
//! count them and tell a hit, a miss and an error apart.
//!
//! Invariants: `parse_reply` never reads past the reply it reports (so replies to a
//! pipeline are taken one by one from one buffer), says `None` for a reply that is not
//! complete yet, and refuses a malformed reply with an error instead of guessing (a
//! benchmark that miscounts replies would report nonsense).

use thiserror::Error;

/// One reply, reduced to what the benchmark counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+...` (e.g. `+OK` to `SET`).
    Simple,
    /// `-...`, with the text (e.g. `CLUSTERDOWN ...`).
    Error(String),
    /// `:n`.
    Integer(i64),
    /// `$n` with its length, or `None` for the nil bulk (`$-1`) and RESP3's null (`_`).
    Bulk(Option<usize>),
    /// `*n` (or a RESP3 aggregate) with its element count; the elements are consumed.
    Aggregate(usize),
}

/// A reply that breaks the protocol.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ReplyError {
    #[error("unexpected reply type byte {0:#04x}")]
    UnknownType(u8),
    #[error("bad length or integer in reply: {0:?}")]
    BadNumber(String),
    #[error("bulk reply not terminated by CRLF")]
    BadTerminator,
    #[error("reply nested deeper than {MAX_DEPTH}")]
    TooDeep,
}

const MAX_DEPTH: usize = 32;

/// Appends `SET key value` to `out`.
pub fn encode_set(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    encode(out, &[b"SET", key, value]);
}

/// Appends `GET key` to `out`.
pub fn encode_get(out: &mut Vec<u8>, key: &[u8]) {
    encode(out, &[b"GET", key]);
}

/// Appends one command as a RESP array of bulk strings.
pub fn encode(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.push(b'*');
    out.extend_from_slice(args.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in args {
        out.push(b'$');
        out.extend_from_slice(a.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// Parses the first reply in `buf`: `Ok(Some((reply, bytes consumed)))`, `Ok(None)` when
/// more bytes are needed.
pub fn parse_reply(buf: &[u8]) -> Result<Option<(Reply, usize)>, ReplyError> {
    parse_at(buf, 0, 0)
}

fn parse_at(buf: &[u8], at: usize, depth: usize) -> Result<Option<(Reply, usize)>, ReplyError> {
    if depth > MAX_DEPTH {
        return Err(ReplyError::TooDeep);
    }
    let Some(&kind) = buf.get(at) else {
        return Ok(None);
    };
    let Some((line, after)) = line(buf, at + 1) else {
        return Ok(None);
    };
    match kind {
        b'+' => Ok(Some((Reply::Simple, after))),
        b'-' | b'!' => Ok(Some((
            Reply::Error(String::from_utf8_lossy(line).into_owned()),
            after,
        ))),
        b':' => Ok(Some((Reply::Integer(number(line)?), after))),
        // RESP3 scalars the benchmark never asks for, but which must not break the count.
        b',' | b'(' | b'#' => Ok(Some((Reply::Simple, after))),
        b'_' => Ok(Some((Reply::Bulk(None), after))),
        b'$' | b'=' => {
            let n = number(line)?;
            if n < 0 {
                return Ok(Some((Reply::Bulk(None), after)));
            }
            let n = n as usize;
            let end = after + n;
            if buf.len() < end + 2 {
                return Ok(None);
            }
            if &buf[end..end + 2] != b"\r\n" {
                return Err(ReplyError::BadTerminator);
            }
            Ok(Some((Reply::Bulk(Some(n)), end + 2)))
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let n = number(line)?;
            if n < 0 {
                return Ok(Some((Reply::Bulk(None), after)));
            }
            // Maps and attributes hold pairs.
            let elements = if kind == b'%' || kind == b'|' {
                n * 2
            } else {
                n
            } as usize;
            let mut pos = after;
            for _ in 0..elements {
                match parse_at(buf, pos, depth + 1)? {
                    Some((_, next)) => pos = next,
                    None => return Ok(None),
                }
            }
            Ok(Some((Reply::Aggregate(n as usize), pos)))
        }
        other => Err(ReplyError::UnknownType(other)),
    }
}

/// The bytes of the line starting at `from` (without CRLF) and the offset after its CRLF.
fn line(buf: &[u8], from: usize) -> Option<(&[u8], usize)> {
    let rest = buf.get(from..)?;
    let pos = rest.windows(2).position(|w| w == b"\r\n")?;
    Some((&rest[..pos], from + pos + 2))
}

fn number(line: &[u8]) -> Result<i64, ReplyError> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ReplyError::BadNumber(String::from_utf8_lossy(line).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_set_and_get_as_redis_benchmark_does() {
        let mut out = Vec::new();
        encode_set(&mut out, b"key:000000000042", b"xxx");
        encode_get(&mut out, b"key:000000000042");
        assert_eq!(
            out,
            b"*3\r\n$3\r\nSET\r\n$16\r\nkey:000000000042\r\n$3\r\nxxx\r\n\
              *2\r\n$3\r\nGET\r\n$16\r\nkey:000000000042\r\n"
                .to_vec()
        );
    }

    #[test]
    fn parses_each_reply_kind_and_its_length() {
        let cases: &[(&[u8], Reply)] = &[
            (b"+OK\r\n", Reply::Simple),
            (
                b"-CLUSTERDOWN no leader\r\n",
                Reply::Error("CLUSTERDOWN no leader".into()),
            ),
            (b":-12\r\n", Reply::Integer(-12)),
            (b"$3\r\nabc\r\n", Reply::Bulk(Some(3))),
            (b"$0\r\n\r\n", Reply::Bulk(Some(0))),
            (b"$-1\r\n", Reply::Bulk(None)),
            (b"_\r\n", Reply::Bulk(None)),
            (b"*2\r\n$1\r\na\r\n:1\r\n", Reply::Aggregate(2)),
            (b"%1\r\n+k\r\n*1\r\n+v\r\n", Reply::Aggregate(1)),
        ];
        for (wire, want) in cases {
            let (got, used) = parse_reply(wire).unwrap().unwrap();
            assert_eq!(&got, want, "{:?}", String::from_utf8_lossy(wire));
            assert_eq!(used, wire.len(), "{:?}", String::from_utf8_lossy(wire));
        }
    }

    #[test]
    fn takes_pipelined_replies_one_by_one() {
        let buf = b"+OK\r\n$2\r\nhi\r\n$-1\r\n";
        let mut at = 0;
        let mut got = Vec::new();
        while let Some((r, used)) = parse_reply(&buf[at..]).unwrap() {
            got.push(r);
            at += used;
        }
        assert_eq!(
            got,
            vec![Reply::Simple, Reply::Bulk(Some(2)), Reply::Bulk(None)]
        );
        assert_eq!(at, buf.len());
    }

    #[test]
    fn waits_for_every_prefix_of_a_reply() {
        let wire = b"*2\r\n$5\r\nhello\r\n:7\r\n";
        for cut in 0..wire.len() {
            assert_eq!(parse_reply(&wire[..cut]).unwrap(), None, "cut at {cut}");
        }
    }

    #[test]
    fn refuses_malformed_replies() {
        assert_eq!(parse_reply(b"?x\r\n"), Err(ReplyError::UnknownType(b'?')));
        assert!(matches!(
            parse_reply(b"$x\r\n"),
            Err(ReplyError::BadNumber(_))
        ));
        assert_eq!(parse_reply(b"$2\r\nabcd"), Err(ReplyError::BadTerminator));
        let deep = "*1\r\n".repeat(40) + ":1\r\n";
        assert_eq!(parse_reply(deep.as_bytes()), Err(ReplyError::TooDeep));
    }
}
