//! RESP (Redis serialization protocol) messages, parsed incrementally by a pure function.
//!
//! A message is one top-level value. Its text is what Packetbeat reports: simple strings,
//! errors and integers as their line, bulk strings as their content (`nil` for a null one),
//! arrays as `[a, b, c]` (`[]` empty, `nil` null), nested arrays rendered the same way inside.
//! A top-level array keeps its elements so the analyzer can tell a command (`SET k v`) from
//! an array reply. RESP3 types are read too: null `_` as `nil`, booleans, doubles and big
//! numbers as their line, blob errors as errors, verbatim strings without their format
//! prefix, maps, sets and pushes as arrays of their elements; attributes are skipped.

use crate::protos::app::Parsed;

pub const ERR_BAD_TYPE: &str = "unexpected RESP type byte";
pub const ERR_BAD_LENGTH: &str = "bad RESP length";
pub const ERR_BAD_TERMINATOR: &str = "bulk string not terminated by CRLF";
pub const ERR_TOO_DEEP: &str = "RESP value nested too deeply";

/// Deepest nesting accepted (real replies stay far below it).
const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// Any value but a top-level array: its text.
    Text(Vec<u8>),
    /// A top-level array with at least one element: each element's text.
    Array(Vec<Vec<u8>>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// A top-level error reply (`-ERR …`, RESP3 `!`).
    pub is_error: bool,
    /// A RESP3 push (`>`): out-of-band data from the server (pub/sub messages, client-side
    /// caching invalidations), not the reply to a command.
    pub is_push: bool,
    pub body: Body,
}

/// What the parser keeps between calls on one direction: the least number of bytes the
/// message at the head of the buffer needs, so a large bulk reply arriving in many segments
/// is not re-parsed from its start on every segment.
#[derive(Debug, Default)]
pub struct StreamState {
    need: usize,
}

enum Step<T> {
    Done(T, usize),
    /// Incomplete; at least this many bytes (from the value's start) are needed.
    Need(usize),
    Bad(&'static str),
}

fn line(data: &[u8]) -> Option<(&[u8], usize)> {
    let mut from = 0;
    while let Some(i) = data[from..].iter().position(|&c| c == b'\n') {
        let at = from + i;
        if at > 0 && data[at - 1] == b'\r' {
            return Some((&data[..at - 1], at + 1));
        }
        from = at + 1;
    }
    None
}

fn int(s: &[u8]) -> Option<i64> {
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// One value at the start of `data`: its text (or elements for a top-level array).
fn value(data: &[u8], depth: usize, top: bool) -> Step<(bool, Body)> {
    if depth > MAX_DEPTH {
        return Step::Bad(ERR_TOO_DEEP);
    }
    let Some(&kind) = data.first() else {
        return Step::Need(1);
    };
    let Some((l, used)) = line(data) else {
        return Step::Need(data.len() + 1);
    };
    let Some(rest) = l.get(1..) else {
        return Step::Bad(ERR_BAD_TYPE);
    };
    let text = |t: &[u8]| Body::Text(t.to_vec());
    match kind {
        b'+' | b':' | b',' | b'(' => Step::Done((false, text(rest)), used),
        b'#' => Step::Done(
            (false, text(if rest == b"t" { b"true" } else { b"false" })),
            used,
        ),
        b'-' => Step::Done((true, text(rest)), used),
        b'_' => Step::Done((false, text(b"nil")), used),
        b'$' | b'!' | b'=' => {
            if rest == b"-1" {
                return Step::Done((false, text(b"nil")), used);
            }
            let n = match int(rest) {
                Some(n) if n >= 0 && n < (1 << 40) => n as usize,
                _ => return Step::Bad(ERR_BAD_LENGTH),
            };
            let end = used + n + 2;
            if data.len() < end {
                return Step::Need(end);
            }
            if &data[end - 2..end] != b"\r\n" {
                return Step::Bad(ERR_BAD_TERMINATOR);
            }
            let mut content = &data[used..end - 2];
            if kind == b'=' && content.len() >= 4 && content[3] == b':' {
                content = &content[4..];
            }
            Step::Done((kind == b'!', text(content)), end)
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let count = match int(rest) {
                Some(n) if n < 0 => return Step::Done((false, text(b"nil")), used),
                Some(n) if n < (1 << 32) => n as usize,
                _ => return Step::Bad(ERR_BAD_LENGTH),
            };
            let count = if matches!(kind, b'%' | b'|') {
                count * 2
            } else {
                count
            };
            let mut off = used;
            let mut items = Vec::with_capacity(count.min(64));
            for _ in 0..count {
                match value(&data[off..], depth + 1, false) {
                    Step::Done((_, Body::Text(t)), n) => {
                        items.push(t);
                        off += n;
                    }
                    Step::Done((_, Body::Array(_)), _) => unreachable!("nested values are text"),
                    Step::Need(n) => return Step::Need(off + n),
                    Step::Bad(e) => return Step::Bad(e),
                }
            }
            if kind == b'|' {
                // An attribute annotates the value that follows it.
                return match value(&data[off..], depth, top) {
                    Step::Done(v, n) => Step::Done(v, off + n),
                    Step::Need(n) => Step::Need(off + n),
                    Step::Bad(e) => Step::Bad(e),
                };
            }
            if items.is_empty() {
                return Step::Done((false, text(b"[]")), off);
            }
            if top {
                return Step::Done((false, Body::Array(items)), off);
            }
            Step::Done((false, Body::Text(bracketed(&items))), off)
        }
        _ => Step::Bad(ERR_BAD_TYPE),
    }
}

/// An array's text: `[a, b, c]`.
pub fn bracketed(items: &[Vec<u8>]) -> Vec<u8> {
    let len: usize = items.iter().map(Vec::len).sum();
    let mut out = Vec::with_capacity(len + 2 * items.len() + 2);
    out.push(b'[');
    for (i, it) in items.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        out.extend_from_slice(it);
    }
    out.push(b']');
    out
}

/// Parses the message at the start of `data`.
pub fn parse(state: &mut StreamState, data: &[u8]) -> Parsed<Message> {
    if data.len() < state.need {
        return Parsed::Incomplete;
    }
    match value(data, 0, true) {
        Step::Done((is_error, body), consumed) => {
            state.need = 0;
            Parsed::Message {
                msg: Message {
                    is_error,
                    is_push: data[0] == b'>',
                    body,
                },
                consumed,
            }
        }
        Step::Need(n) => {
            state.need = n;
            Parsed::Incomplete
        }
        Step::Bad(e) => {
            state.need = 0;
            Parsed::Error(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(data: &[u8]) -> Parsed<Message> {
        parse(&mut StreamState::default(), data)
    }

    fn text(data: &[u8]) -> (bool, Vec<u8>, usize) {
        match one(data) {
            Parsed::Message {
                msg:
                    Message {
                        is_error,
                        body: Body::Text(t),
                        ..
                    },
                consumed,
            } => (is_error, t, consumed),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn scalar_replies() {
        assert_eq!(text(b"+OK\r\n"), (false, b"OK".to_vec(), 5));
        assert_eq!(text(b"-ERR x\r\n+OK"), (true, b"ERR x".to_vec(), 8));
        assert_eq!(text(b":42\r\n"), (false, b"42".to_vec(), 5));
        assert_eq!(text(b"$-1\r\n"), (false, b"nil".to_vec(), 5));
        assert_eq!(text(b"$0\r\n\r\n"), (false, b"".to_vec(), 6));
        assert_eq!(text(b"$4\r\na\r\nb\r\n"), (false, b"a\r\nb".to_vec(), 10));
        assert_eq!(text(b"*0\r\n"), (false, b"[]".to_vec(), 4));
        assert_eq!(text(b"*-1\r\n"), (false, b"nil".to_vec(), 5));
        assert_eq!(text(b"_\r\n"), (false, b"nil".to_vec(), 3));
        assert_eq!(text(b"#t\r\n"), (false, b"true".to_vec(), 4));
        assert_eq!(text(b"!3\r\nERR\r\n"), (true, b"ERR".to_vec(), 9));
        assert_eq!(text(b"=7\r\ntxt:abc\r\n"), (false, b"abc".to_vec(), 13));
    }

    #[test]
    fn arrays_keep_top_level_elements() {
        let wire = b"*3\r\n$3\r\nset\r\n$1\r\nk\r\n*2\r\n:1\r\n*0\r\n";
        match one(wire) {
            Parsed::Message { msg, consumed } => {
                assert_eq!(consumed, wire.len());
                assert_eq!(
                    msg.body,
                    Body::Array(vec![b"set".to_vec(), b"k".to_vec(), b"[1, []]".to_vec()])
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_input_is_an_error() {
        assert_eq!(one(b"PING\r\n"), Parsed::Error(ERR_BAD_TYPE));
        assert_eq!(one(b"\r\n"), Parsed::Error(ERR_BAD_TYPE));
        assert_eq!(one(b"$x\r\n"), Parsed::Error(ERR_BAD_LENGTH));
        assert_eq!(one(b"$-5\r\n"), Parsed::Error(ERR_BAD_LENGTH));
        assert_eq!(one(b"$1\r\nabc\r\n"), Parsed::Error(ERR_BAD_TERMINATOR));
        let deep = b"*1\r\n".repeat(100);
        assert_eq!(one(&deep), Parsed::Error(ERR_TOO_DEEP));
    }

    #[test]
    fn every_split_is_incomplete_until_the_end() {
        for wire in [
            &b"*3\r\n$3\r\nset\r\n$4\r\nkey3\r\n$2\r\nme\r\n"[..],
            b"$6\r\nhello1\r\n",
            b"-ERR Operation against a key holding the wrong kind of value\r\n",
            b"*2\r\n*1\r\n$1\r\na\r\n$-1\r\n",
        ] {
            let mut st = StreamState::default();
            for cut in 0..wire.len() {
                assert_eq!(
                    parse(&mut st, &wire[..cut]),
                    Parsed::Incomplete,
                    "cut at {cut}"
                );
            }
            assert!(
                matches!(parse(&mut st, wire), Parsed::Message { consumed, .. } if consumed == wire.len())
            );
        }
    }
}
