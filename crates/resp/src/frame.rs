//! Reply frames and their encoding for RESP2 and RESP3.
//!
//! A [`Frame`] says what a reply means (a map, a double, a null); [`Frame::encode`]
//! decides how it looks on the wire for the connection's protocol. In RESP2 a map is a
//! flat array, a set an array, a double a bulk string, a boolean an integer, and the two
//! nulls keep their distinct RESP2 shapes (`$-1` and `*-1`).

use bytes::{BufMut, Bytes, BytesMut};

/// The protocol version a connection speaks (`HELLO 2` / `HELLO 3`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Protocol {
    #[default]
    Resp2,
    Resp3,
}

/// One reply.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    /// `+OK`
    Simple(&'static str),
    /// A status line that is built at run time (`+PONG` is static, `TYPE` is not).
    Status(String),
    /// `-ERR ...`: the full text after the dash, prefix included.
    Error(String),
    Integer(i64),
    Bulk(Bytes),
    /// The null bulk string: `$-1` in RESP2, `_` in RESP3.
    Null,
    /// The null array: `*-1` in RESP2, `_` in RESP3.
    NullArray,
    Array(Vec<Frame>),
    /// RESP3 map; a flat array in RESP2.
    Map(Vec<(Frame, Frame)>),
    /// Pairs that may repeat (`HRANDFIELD ... WITHVALUES`, `ZRANGE ... WITHSCORES`): an
    /// array of two-element arrays in RESP3, a flat array in RESP2.
    Pairs(Vec<(Frame, Frame)>),
    /// RESP3 set; an array in RESP2.
    Set(Vec<Frame>),
    /// RESP3 double; a bulk string (`%.17g`) in RESP2.
    Double(f64),
    /// RESP3 boolean; the integer 1 or 0 in RESP2.
    Boolean(bool),
    /// RESP3 verbatim string (`=`), a bulk string in RESP2.
    Verbatim(&'static str, Bytes),
    /// RESP3 push frame; an array in RESP2.
    Push(Vec<Frame>),
}

impl Frame {
    pub const OK: Frame = Frame::Simple("OK");

    /// About how many bytes the reply holds (its strings' lengths plus a few bytes of
    /// framing each): what it will cost to buffer it, encoded, until it is written.
    pub fn approx_len(&self) -> usize {
        const FRAMING: usize = 8;
        FRAMING
            + match self {
                Frame::Simple(s) => s.len(),
                Frame::Status(s) | Frame::Error(s) => s.len(),
                Frame::Bulk(b) | Frame::Verbatim(_, b) => b.len(),
                Frame::Integer(_)
                | Frame::Null
                | Frame::NullArray
                | Frame::Double(_)
                | Frame::Boolean(_) => 16,
                Frame::Array(items) | Frame::Set(items) | Frame::Push(items) => {
                    items.iter().map(Frame::approx_len).sum()
                }
                Frame::Map(pairs) | Frame::Pairs(pairs) => pairs
                    .iter()
                    .map(|(k, v)| k.approx_len() + v.approx_len())
                    .sum(),
            }
    }

    /// A bulk string copied from a byte slice.
    pub fn bulk(bytes: impl AsRef<[u8]>) -> Frame {
        Frame::Bulk(Bytes::copy_from_slice(bytes.as_ref()))
    }

    /// A bulk string holding the decimal form of an integer.
    pub fn bulk_int(n: i64) -> Frame {
        let mut buf = [0u8; 20];
        Frame::bulk(format_i64(n, &mut buf))
    }

    /// An error reply; `text` starts with its prefix (`ERR`, `WRONGTYPE`, ...).
    pub fn error(text: impl Into<String>) -> Frame {
        Frame::Error(text.into())
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Frame::Error(_))
    }

    /// Appends the encoding of this frame to `out`.
    pub fn encode(&self, proto: Protocol, out: &mut BytesMut) {
        match self {
            Frame::Simple(s) => line(out, b'+', s.as_bytes()),
            Frame::Status(s) => single_line(out, b'+', s.as_bytes()),
            Frame::Error(s) => single_line(out, b'-', s.as_bytes()),
            Frame::Integer(n) => int_line(out, b':', *n),
            Frame::Bulk(b) => bulk(out, b),
            Frame::Null => match proto {
                Protocol::Resp2 => out.put_slice(b"$-1\r\n"),
                Protocol::Resp3 => out.put_slice(b"_\r\n"),
            },
            Frame::NullArray => match proto {
                Protocol::Resp2 => out.put_slice(b"*-1\r\n"),
                Protocol::Resp3 => out.put_slice(b"_\r\n"),
            },
            Frame::Array(items) => {
                int_line(out, b'*', items.len() as i64);
                for item in items {
                    item.encode(proto, out);
                }
            }
            Frame::Map(pairs) => {
                match proto {
                    Protocol::Resp2 => int_line(out, b'*', 2 * pairs.len() as i64),
                    Protocol::Resp3 => int_line(out, b'%', pairs.len() as i64),
                }
                for (k, v) in pairs {
                    k.encode(proto, out);
                    v.encode(proto, out);
                }
            }
            Frame::Pairs(pairs) => {
                match proto {
                    Protocol::Resp2 => int_line(out, b'*', 2 * pairs.len() as i64),
                    Protocol::Resp3 => int_line(out, b'*', pairs.len() as i64),
                }
                for (k, v) in pairs {
                    if proto == Protocol::Resp3 {
                        out.put_slice(b"*2\r\n");
                    }
                    k.encode(proto, out);
                    v.encode(proto, out);
                }
            }
            Frame::Set(items) => {
                let tag = if proto == Protocol::Resp3 { b'~' } else { b'*' };
                int_line(out, tag, items.len() as i64);
                for item in items {
                    item.encode(proto, out);
                }
            }
            Frame::Push(items) => {
                let tag = if proto == Protocol::Resp3 { b'>' } else { b'*' };
                int_line(out, tag, items.len() as i64);
                for item in items {
                    item.encode(proto, out);
                }
            }
            Frame::Double(d) => {
                let text = crate::double::format_g17(*d);
                match proto {
                    Protocol::Resp2 => bulk(out, text.as_bytes()),
                    Protocol::Resp3 => line(out, b',', text.as_bytes()),
                }
            }
            Frame::Boolean(b) => match proto {
                Protocol::Resp2 => int_line(out, b':', *b as i64),
                Protocol::Resp3 => out.put_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
            },
            Frame::Verbatim(format, text) => match proto {
                Protocol::Resp2 => bulk(out, text),
                Protocol::Resp3 => {
                    int_line(out, b'=', (text.len() + 4) as i64);
                    out.put_slice(format.as_bytes());
                    out.put_u8(b':');
                    out.put_slice(text);
                    out.put_slice(b"\r\n");
                }
            },
        }
    }

    /// The encoding of this frame as a fresh buffer (tests, small replies).
    pub fn to_bytes(&self, proto: Protocol) -> Bytes {
        let mut out = BytesMut::new();
        self.encode(proto, &mut out);
        out.freeze()
    }
}

fn line(out: &mut BytesMut, tag: u8, body: &[u8]) {
    out.reserve(body.len() + 3);
    out.put_u8(tag);
    out.put_slice(body);
    out.put_slice(b"\r\n");
}

/// A status or error line: a CR or LF inside would end the line early and corrupt the
/// stream, so each becomes a space, as Redis does.
fn single_line(out: &mut BytesMut, tag: u8, body: &[u8]) {
    if !body.iter().any(|&c| c == b'\r' || c == b'\n') {
        return line(out, tag, body);
    }
    out.reserve(body.len() + 3);
    out.put_u8(tag);
    out.extend(
        body.iter()
            .map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c }),
    );
    out.put_slice(b"\r\n");
}

fn bulk(out: &mut BytesMut, body: &[u8]) {
    int_line(out, b'$', body.len() as i64);
    out.reserve(body.len() + 2);
    out.put_slice(body);
    out.put_slice(b"\r\n");
}

fn int_line(out: &mut BytesMut, tag: u8, n: i64) {
    let mut buf = [0u8; 20];
    line(out, tag, format_i64(n, &mut buf));
}

/// Writes the decimal form of `n` into `buf` and returns the used tail.
pub fn format_i64(n: i64, buf: &mut [u8; 20]) -> &[u8] {
    let mut pos = buf.len();
    let mut v = n.unsigned_abs();
    loop {
        pos -= 1;
        buf[pos] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if n < 0 {
        pos -= 1;
        buf[pos] = b'-';
    }
    &buf[pos..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(f: &Frame, p: Protocol) -> String {
        String::from_utf8(f.to_bytes(p).to_vec()).unwrap()
    }

    #[test]
    fn line_breaks_in_errors_become_spaces() {
        let e = Frame::error("ERR unknown command 'FOO', with args beginning with: 'a\r\nb' ");
        assert_eq!(
            enc(&e, Protocol::Resp2),
            "-ERR unknown command 'FOO', with args beginning with: 'a  b' \r\n"
        );
    }

    #[test]
    fn resp2_and_resp3_shapes() {
        let map = Frame::Map(vec![(Frame::bulk("a"), Frame::Integer(1))]);
        assert_eq!(enc(&map, Protocol::Resp2), "*2\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(enc(&map, Protocol::Resp3), "%1\r\n$1\r\na\r\n:1\r\n");
        let pairs = Frame::Pairs(vec![(Frame::bulk("a"), Frame::Integer(1))]);
        assert_eq!(enc(&pairs, Protocol::Resp2), "*2\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(
            enc(&pairs, Protocol::Resp3),
            "*1\r\n*2\r\n$1\r\na\r\n:1\r\n"
        );
        assert_eq!(enc(&Frame::Null, Protocol::Resp2), "$-1\r\n");
        assert_eq!(enc(&Frame::NullArray, Protocol::Resp2), "*-1\r\n");
        assert_eq!(enc(&Frame::NullArray, Protocol::Resp3), "_\r\n");
        assert_eq!(enc(&Frame::Double(1.5), Protocol::Resp2), "$3\r\n1.5\r\n");
        assert_eq!(enc(&Frame::Double(1.5), Protocol::Resp3), ",1.5\r\n");
        assert_eq!(enc(&Frame::Set(vec![]), Protocol::Resp3), "~0\r\n");
        assert_eq!(
            enc(&Frame::Integer(i64::MIN), Protocol::Resp2),
            ":-9223372036854775808\r\n"
        );
        assert_eq!(
            enc(
                &Frame::Verbatim("txt", Bytes::from_static(b"hi")),
                Protocol::Resp3
            ),
            "=6\r\ntxt:hi\r\n"
        );
    }
}
