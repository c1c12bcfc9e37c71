//! Replies rendered as `redis-cli --no-raw` prints them for RESP2, so data-driven test
//! scripts can be recorded from a real `redis-server` and replayed against redraft.

use crate::double::format_g17;
use crate::Frame;

/// Renders a reply the way `redis-cli --no-raw` does for RESP2.
pub fn render(frame: &Frame) -> String {
    let mut out = String::new();
    render_into(frame, "", &mut out);
    if out.ends_with('\n') {
        out.pop();
    }
    out
}

fn repr(bytes: &[u8]) -> String {
    let mut s = String::from("\"");
    for &b in bytes {
        match b {
            b'\\' => s.push_str("\\\\"),
            b'"' => s.push_str("\\\""),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\t' => s.push_str("\\t"),
            7 => s.push_str("\\a"),
            8 => s.push_str("\\b"),
            0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s.push('"');
    s
}

fn render_into(frame: &Frame, prefix: &str, out: &mut String) {
    match frame {
        Frame::Simple(s) => {
            out.push_str(s);
            out.push('\n');
        }
        Frame::Status(s) => {
            out.push_str(s);
            out.push('\n');
        }
        Frame::Error(e) => {
            out.push_str("(error) ");
            out.push_str(e);
            out.push('\n');
        }
        Frame::Integer(n) => out.push_str(&format!("(integer) {n}\n")),
        Frame::Bulk(b) | Frame::Verbatim(_, b) => {
            out.push_str(&repr(b));
            out.push('\n');
        }
        Frame::Null | Frame::NullArray => out.push_str("(nil)\n"),
        Frame::Double(d) => {
            out.push_str(&repr(format_g17(*d).as_bytes()));
            out.push('\n');
        }
        Frame::Boolean(b) => out.push_str(&format!("(integer) {}\n", *b as i64)),
        Frame::Map(pairs) | Frame::Pairs(pairs) => {
            let flat: Vec<Frame> = pairs
                .iter()
                .flat_map(|(k, v)| [k.clone(), v.clone()])
                .collect();
            render_into(&Frame::Array(flat), prefix, out)
        }
        Frame::Array(items) | Frame::Set(items) | Frame::Push(items) => {
            if items.is_empty() {
                out.push_str("(empty array)\n");
                return;
            }
            let width = items.len().to_string().len();
            let child_prefix = format!("{prefix}{}", " ".repeat(width + 2));
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(prefix);
                }
                out.push_str(&format!("{:>width$}) ", i + 1));
                render_into(item, &child_prefix, out);
            }
        }
    }
}
