//! The template protocol's wire format, parsed incrementally by a pure function.
//!
//! A request is one line `VERB [ARGS]\r\n` (the verb alphanumeric); a response is one line,
//! `+TEXT\r\n` (success) or `-TEXT\r\n` (failure). Lines may end with a bare `\n`. Which side
//! is the client is decided by content, so a capture that starts mid-connection still pairs.

use crate::protos::app::Parsed;

/// Why bytes are not this protocol (the analyzer's `error.message`-free parse errors).
pub const ERR_LINE_TOO_LONG: &str = "line too long";
pub const ERR_BAD_VERB: &str = "request verb is not alphanumeric";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Request { verb: String, args: String },
    Response { ok: bool, text: String },
}

/// The next line of `data`, without its terminator, and the bytes it used.
fn line(data: &[u8], max_len: usize) -> Result<Option<(&[u8], usize)>, &'static str> {
    match data.iter().position(|&c| c == b'\n') {
        Some(i) if i > max_len => Err(ERR_LINE_TOO_LONG),
        Some(i) => {
            let body = &data[..i];
            let body = body.strip_suffix(b"\r").unwrap_or(body);
            Ok(Some((body, i + 1)))
        }
        None if data.len() > max_len => Err(ERR_LINE_TOO_LONG),
        None => Ok(None),
    }
}

/// Parses the message at the start of `data`.
pub fn parse(data: &[u8], max_len: usize) -> Parsed<Message> {
    let (body, consumed) = match line(data, max_len) {
        Ok(Some(l)) => l,
        Ok(None) => return Parsed::Incomplete,
        Err(e) => return Parsed::Error(e),
    };
    let msg = match body.first() {
        Some(&c @ (b'+' | b'-')) => Message::Response {
            ok: c == b'+',
            text: String::from_utf8_lossy(&body[1..]).into_owned(),
        },
        _ => {
            let (verb, args) = match body.iter().position(|&c| c == b' ') {
                Some(i) => (&body[..i], &body[i + 1..]),
                None => (body, &[][..]),
            };
            if verb.is_empty() || !verb.iter().all(u8::is_ascii_alphanumeric) {
                return Parsed::Error(ERR_BAD_VERB);
            }
            Message::Request {
                verb: String::from_utf8_lossy(verb).to_ascii_uppercase(),
                args: String::from_utf8_lossy(args).into_owned(),
            }
        }
    };
    Parsed::Message { msg, consumed }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(verb: &str, args: &str) -> Message {
        Message::Request {
            verb: verb.into(),
            args: args.into(),
        }
    }

    #[test]
    fn requests_and_responses() {
        assert_eq!(
            parse(b"get key1\r\nset", 64),
            Parsed::Message {
                msg: request("GET", "key1"),
                consumed: 10
            }
        );
        assert_eq!(
            parse(b"PING\n", 64),
            Parsed::Message {
                msg: request("PING", ""),
                consumed: 5
            }
        );
        assert_eq!(
            parse(b"-no such key\r\n", 64),
            Parsed::Message {
                msg: Message::Response {
                    ok: false,
                    text: "no such key".into()
                },
                consumed: 14
            }
        );
        assert_eq!(parse(b"*3\r\n", 64), Parsed::Error(ERR_BAD_VERB));
        assert_eq!(parse(b"\r\n", 64), Parsed::Error(ERR_BAD_VERB));
        assert_eq!(parse(&[b'A'; 65], 64), Parsed::Error(ERR_LINE_TOO_LONG));
    }

    #[test]
    fn every_split_is_incomplete_until_the_line_ends() {
        for wire in [&b"SET key value\r\n"[..], b"+OK\r\n"] {
            for cut in 0..wire.len() {
                assert_eq!(parse(&wire[..cut], 64), Parsed::Incomplete, "cut at {cut}");
            }
            assert!(
                matches!(parse(wire, 64), Parsed::Message { consumed, .. } if consumed == wire.len())
            );
        }
    }
}
