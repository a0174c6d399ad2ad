//! RESP (Redis serialization protocol) messages, parsed incrementally by a pure function.
//!
//! A message is one top-level value. Its text is what Packetbeat reports: simple strings,
//! errors and integers as their line, bulk strings as their content (`nil` for a null one),
//! arrays as `[a, b, c]` (`[]` empty, `nil` null), nested arrays rendered the same way inside.
//! A top-level array keeps its elements so the analyzer can tell a command (`SET k v`) from
//! an array reply. RESP3 types are read too: null `_` as `nil`, booleans, doubles and big
//! numbers as their line, blob errors as errors, verbatim strings without their format
//! prefix, maps, sets and pushes as arrays of their elements; attributes are skipped.
//!
//! A line that does not start with a RESP type byte is an inline command, as Redis reads it
//! (`processInlineBuffer`): arguments split as `sdssplitargs` splits them (quotes, escapes), an
//! empty line skipped. Clients send them (`redis-cli --pipe` ends its batch with an empty line
//! and an inline-free `ECHO`, telnet users type `PING`); Packetbeat drops such a stream.

use crate::protos::app::Parsed;

pub const ERR_BAD_TYPE: &str = "unexpected RESP type byte";
pub const ERR_BAD_LENGTH: &str = "bad RESP length";
pub const ERR_BAD_TERMINATOR: &str = "bulk string not terminated by CRLF";
pub const ERR_TOO_DEEP: &str = "RESP value nested too deeply";

pub const ERR_INLINE_TOO_BIG: &str = "inline command line longer than 64 KiB";
pub const ERR_INLINE_QUOTES: &str = "unbalanced quotes in inline command";

/// Deepest nesting accepted (real replies stay far below it).
const MAX_DEPTH: usize = 64;

/// Redis's limit on an inline command line (`PROTO_INLINE_MAX_SIZE`).
const MAX_INLINE: usize = 64 * 1024;

fn is_resp_type(b: u8) -> bool {
    matches!(
        b,
        b'+' | b'-'
            | b':'
            | b'$'
            | b'*'
            | b'_'
            | b'#'
            | b','
            | b'('
            | b'!'
            | b'='
            | b'%'
            | b'~'
            | b'>'
            | b'|'
    )
}

/// An inline command at the start of `data`: its arguments (none for an empty line) and the
/// bytes used, `Need` while the line is not complete.
fn inline(data: &[u8]) -> Step<Vec<Vec<u8>>> {
    let Some(nl) = data.iter().position(|&c| c == b'\n') else {
        return if data.len() > MAX_INLINE {
            Step::Bad(ERR_INLINE_TOO_BIG)
        } else {
            Step::Need(data.len() + 1)
        };
    };
    if nl > MAX_INLINE {
        return Step::Bad(ERR_INLINE_TOO_BIG);
    }
    let line = &data[..nl];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    match split_args(line) {
        Some(args) => Step::Done(args, nl + 1),
        None => Step::Bad(ERR_INLINE_QUOTES),
    }
}

/// Redis's `sdssplitargs`: words separated by white space; `"…"` with `\n \r \t \b \a \xHH`
/// escapes and `'…'` with `\'`, each closed quote followed by white space or the end. `None`
/// for unbalanced quotes.
fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut args = Vec::new();
    let mut i = 0;
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    loop {
        while i < line.len() && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == line.len() {
            return Some(args);
        }
        let mut cur = Vec::new();
        match line[i] {
            b'"' => {
                i += 1;
                loop {
                    match *line.get(i)? {
                        b'\\'
                            if i + 3 < line.len()
                                && line[i + 1] == b'x'
                                && hex(line[i + 2]).is_some()
                                && hex(line[i + 3]).is_some() =>
                        {
                            cur.push(hex(line[i + 2])? * 16 + hex(line[i + 3])?);
                            i += 4;
                        }
                        b'\\' if i + 1 < line.len() => {
                            cur.push(match line[i + 1] {
                                b'n' => b'\n',
                                b'r' => b'\r',
                                b't' => b'\t',
                                b'b' => 8,
                                b'a' => 7,
                                c => c,
                            });
                            i += 2;
                        }
                        b'"' => {
                            i += 1;
                            break;
                        }
                        c => {
                            cur.push(c);
                            i += 1;
                        }
                    }
                }
            }
            b'\'' => {
                i += 1;
                loop {
                    match *line.get(i)? {
                        b'\\' if line.get(i + 1) == Some(&b'\'') => {
                            cur.push(b'\'');
                            i += 2;
                        }
                        b'\'' => {
                            i += 1;
                            break;
                        }
                        c => {
                            cur.push(c);
                            i += 1;
                        }
                    }
                }
            }
            _ => {
                while i < line.len() && !line[i].is_ascii_whitespace() {
                    cur.push(line[i]);
                    i += 1;
                }
                args.push(cur);
                continue;
            }
        }
        if i < line.len() && !line[i].is_ascii_whitespace() {
            return None;
        }
        args.push(cur);
    }
}

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
    if data.first().is_some_and(|&b| !is_resp_type(b)) {
        return match inline(data) {
            Step::Done(args, consumed) => {
                state.need = 0;
                if args.is_empty() {
                    Parsed::Skip(consumed)
                } else {
                    Parsed::Message {
                        msg: Message {
                            is_error: false,
                            is_push: false,
                            body: Body::Array(args),
                        },
                        consumed,
                    }
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
        };
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
    fn inline_commands_are_split_as_redis_splits_them() {
        let args = |wire: &[u8]| match one(wire) {
            Parsed::Message {
                msg:
                    Message {
                        body: Body::Array(a),
                        is_error: false,
                        ..
                    },
                consumed,
            } => {
                assert_eq!(consumed, wire.len());
                a
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(args(b"PING\r\n"), [b"PING".to_vec()]);
        assert_eq!(args(b"  set  k   v\n"), [&b"set"[..], b"k", b"v"]);
        assert_eq!(
            args(b"SET \"a b\\x41\\n\" 'it\\'s'\r\n"),
            [&b"SET"[..], b"a bA\n", b"it's"]
        );
        assert_eq!(one(b"\r\n"), Parsed::Skip(2));
        assert_eq!(one(b" \t \n*1\r\n"), Parsed::Skip(4));
        assert_eq!(one(b"PING"), Parsed::Incomplete);
    }

    #[test]
    fn bad_input_is_an_error() {
        assert_eq!(one(b"*1\r\nPING\r\n"), Parsed::Error(ERR_BAD_TYPE));
        assert_eq!(one(b"\"unclosed\r\n"), Parsed::Error(ERR_INLINE_QUOTES));
        assert_eq!(one(b"'a'b\r\n"), Parsed::Error(ERR_INLINE_QUOTES));
        assert_eq!(
            one(&b"x".repeat(MAX_INLINE + 1)),
            Parsed::Error(ERR_INLINE_TOO_BIG)
        );
        assert_eq!(one(&b"x".repeat(MAX_INLINE)), Parsed::Incomplete);
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
