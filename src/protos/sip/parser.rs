//! The SIP message parser (`protos/sip/parser.go`): a pure function from the unconsumed bytes
//! of one direction (or one datagram) to a complete message, with Packetbeat's reading of the
//! start line and headers kept byte for byte, its quirks included (a header ends at the first
//! CRLF after its colon: folded lines are not joined; numbers are read as `streambuf.IntASCII`
//! reads them).

use crate::protos::app::Parsed;
use std::ops::Range;

/// A complete message. Ranges index [`Message::data`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    /// The message's bytes, start line to the end of the body.
    pub data: Vec<u8>,
    pub is_request: bool,
    pub method: Range<usize>,
    pub request_uri: Range<usize>,
    pub status_code: u16,
    pub status_phrase: Range<usize>,
    pub version: (u8, u8),
    pub content_length: i64,
    pub has_content_length: bool,
    pub content_type: Range<usize>,
    pub user_agent: Range<usize>,
    pub to: Range<usize>,
    pub from: Range<usize>,
    pub cseq: Range<usize>,
    pub call_id: Range<usize>,
    pub max_forwards: i64,
    /// Via values, each once, in order.
    pub via: Vec<Range<usize>>,
    pub allow: Option<Vec<String>>,
    pub supported: Option<Vec<String>>,
    /// Every header: lower-cased (compact forms expanded) name and value.
    pub headers: Vec<(Vec<u8>, Range<usize>)>,
    pub body: Range<usize>,
}

impl Message {
    pub fn get(&self, r: &Range<usize>) -> &[u8] {
        self.data.get(r.clone()).unwrap_or_default()
    }

    /// The first value of header `name` (lower case), if the header is there.
    pub fn header(&self, name: &[u8]) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| self.get(v))
    }
}

const MIN_STATUS_LINE: usize = "SIP/2.0 XXX OK".len();

/// Parses the message at the start of `data`. Leading CR and LF bytes (RFC 3261 7.5) are
/// skipped first.
pub fn parse(data: &[u8]) -> Parsed<Message> {
    parse_from(data, &mut Scan::default())
}

/// What a stream remembers between calls on the same pending message, so that a message
/// arriving in many segments is searched once, not once per segment.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Scan {
    /// The start line is complete and valid.
    line_checked: bool,
    /// How far the data is known to hold no end of line (before `line_checked`) or no blank
    /// line (after).
    scanned: usize,
}

/// [`parse`] for a stream that feeds the same message again with more bytes (`scan` is kept
/// between the calls). A start line that is not SIP is an error as soon as it is complete, as
/// in Packetbeat.
pub fn parse_from(data: &[u8], scan: &mut Scan) -> Parsed<Message> {
    let lead = data
        .iter()
        .take_while(|b| **b == b'\r' || **b == b'\n')
        .count();
    if lead > 0 {
        *scan = Scan::default();
        return Parsed::Skip(lead);
    }
    if !scan.line_checked {
        let from = scan.scanned.min(data.len());
        let Some(i) = find(&data[from..], b"\r\n") else {
            scan.scanned = data.len().saturating_sub(1);
            return Parsed::Incomplete;
        };
        let eol = from + i;
        if let Err(why) = start_line(&data[..eol]) {
            *scan = Scan::default();
            return Parsed::Error(why);
        }
        scan.line_checked = true;
        scan.scanned = eol;
    }
    // The header block ends where a header's CRLF is followed by another: without a CRLFCRLF
    // the message cannot be complete.
    let from = scan.scanned.min(data.len());
    if find(&data[from..], b"\r\n\r\n").is_none() {
        scan.scanned = data.len().saturating_sub(3).max(from);
        return Parsed::Incomplete;
    }
    let r = parse_message(data);
    if !matches!(r, Parsed::Incomplete) {
        *scan = Scan::default();
    }
    r
}

fn parse_message(data: &[u8]) -> Parsed<Message> {
    let Some(eol) = find(data, b"\r\n") else {
        return Parsed::Incomplete;
    };
    let mut m = match start_line(&data[..eol]) {
        Ok(m) => m,
        Err(why) => return Parsed::Error(why),
    };
    headers_and_body(data, eol, &mut m)
}

/// `parseSIPLine`: the request or status line (without its CRLF).
fn start_line(fline: &[u8]) -> Result<Message, &'static str> {
    let mut m = Message::default();
    if fline.len() < MIN_STATUS_LINE {
        return Err("first line too small");
    }
    let version: Range<usize>;
    if &fline[..4] == b"SIP/" {
        m.is_request = false;
        version = 4..7;
        let s = &fline[8..];
        let (code_end, phrase) = match s.iter().position(|b| *b == b' ') {
            None => (s.len(), 0..0),
            Some(p) => (p, 8 + p + 1..fline.len()),
        };
        let Some(code) = parse_int(&s[..code_end]) else {
            return Err("unable to parse status code");
        };
        m.status_code = code as u16;
        m.status_phrase = phrase;
    } else {
        let (Some(after_method), Some(after_uri)) = (first_space(fline), last_space(fline)) else {
            return Err("not a SIP request line");
        };
        if after_method == after_uri {
            return Err("not a SIP request line");
        }
        m.method = 0..after_method;
        m.request_uri = after_method + 1..after_uri;
        let version_idx = after_uri + 5;
        if fline.len() > version_idx && &fline[after_uri + 1..version_idx] == b"SIP/" {
            m.is_request = true;
            version = version_idx..fline.len();
        } else {
            return Err("not a SIP version");
        }
    }
    let v = &fline[version];
    if v.len() < 3 {
        return Err("invalid version");
    }
    m.version = (v[0].wrapping_sub(b'0'), v[2].wrapping_sub(b'0'));
    Ok(m)
}

/// `parseHeaders` and `parseBody`, after the start line (which ends at `eol`).
fn headers_and_body(data: &[u8], eol: usize, m: &mut Message) -> Parsed<Message> {
    // Headers.
    let mut off = eol + 2;
    loop {
        let rest = &data[off..];
        if rest.starts_with(b"\r\n") {
            off += 2;
            break;
        }
        let Some(colon) = rest.iter().position(|b| *b == b':') else {
            return Parsed::Incomplete;
        };
        let Some(q) = find(&rest[colon + 1..], b"\r\n") else {
            return Parsed::Incomplete;
        };
        let end = colon + 1 + q;
        let name = expand_name(rest[..colon].to_ascii_lowercase());
        let (vs, ve) = trim_space_range(rest, colon + 1, end);
        let value = off + vs..off + ve;
        let val = &data[value.clone()];
        match name.as_slice() {
            b"max-forwards" => m.max_forwards = parse_int(val).unwrap_or(0),
            b"content-length" => {
                m.content_length = parse_int(val).unwrap_or(0);
                m.has_content_length = true;
            }
            b"content-type" => m.content_type = value.clone(),
            b"user-agent" => m.user_agent = value.clone(),
            b"to" => m.to = value.clone(),
            b"from" => m.from = value.clone(),
            b"cseq" => m.cseq = value.clone(),
            b"call-id" => m.call_id = value.clone(),
            b"allow" => m.allow = Some(comma_list(val)),
            b"supported" => m.supported = Some(comma_list(val)),
            b"via" if !m.via.iter().any(|r| data[r.clone()] == *val) => {
                m.via.push(value.clone());
            }
            _ => {}
        }
        m.headers.push((name, value));
        off += end + 2;
    }

    // Body.
    if m.content_length < 0 {
        // Packetbeat slices with the negative length and panics: the message is lost.
        return Parsed::Error("negative Content-Length");
    }
    let cl = m.content_length as u64;
    let avail = (data.len() - off) as u64;
    if cl > avail {
        return Parsed::Incomplete;
    }
    let end = off + cl as usize;
    m.body = off..end;
    m.data = data[..end].to_vec();
    Parsed::Message {
        msg: std::mem::take(m),
        consumed: end,
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `parseInt`: `streambuf.IntASCII(false)`: an optional sign, then the leading digits (at
/// least one), wrapping as Go's uint64 arithmetic does.
pub fn parse_int(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let n = digits.iter().take_while(|b| b.is_ascii_digit()).count();
    if n == 0 {
        return None;
    }
    let v = digits[..n].iter().fold(0u64, |v, b| {
        v.wrapping_mul(10).wrapping_add((b - b'0') as u64)
    });
    Some(if neg {
        (v as i64).wrapping_neg()
    } else {
        v as i64
    })
}

/// Go's `strconv.Atoi` (0 on a syntax error, clamped on overflow).
pub fn atoi(s: &[u8]) -> i64 {
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.iter().all(|b| b.is_ascii_digit()) {
        return 0;
    }
    let mut v: i128 = 0;
    for b in digits {
        v = v * 10 + (b - b'0') as i128;
        if v > i64::MAX as i128 + 1 {
            break;
        }
    }
    if neg {
        v = -v;
    }
    v.clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

/// Length of the Unicode white-space rune starting at `s[i]` (as `unicode.IsSpace` sees it).
/// Byte-wise matching finds the same runes as Go's rune-wise scan: every multi-byte white
/// space starts with a lead byte, which is never inside another rune.
fn space_at(s: &[u8], i: usize) -> usize {
    let t = &s[i.min(s.len())..];
    match t {
        [b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ', ..] => 1,
        [0xc2, 0x85 | 0xa0, ..] => 2,
        [0xe1, 0x9a, 0x80, ..] => 3,
        [0xe2, 0x80, 0x80..=0x8a | 0xa8 | 0xa9 | 0xaf, ..] => 3,
        [0xe2, 0x81, 0x9f, ..] => 3,
        [0xe3, 0x80, 0x80, ..] => 3,
        _ => 0,
    }
}

/// Length of the white-space rune ending at `s[..end]`, 0 if none.
fn space_ending(s: &[u8], end: usize) -> usize {
    for k in 1..=3 {
        if end >= k && space_at(s, end - k) == k {
            return k;
        }
    }
    0
}

fn first_space(s: &[u8]) -> Option<usize> {
    (0..s.len()).find(|i| space_at(s, *i) > 0)
}

fn last_space(s: &[u8]) -> Option<usize> {
    (0..s.len()).rev().find(|i| {
        let k = space_at(s, *i);
        k > 0 && i + k <= s.len()
    })
}

/// `bytes.TrimSpace` of `s[start..end]`, as a range of `s`.
pub fn trim_space_range(s: &[u8], mut start: usize, mut end: usize) -> (usize, usize) {
    while start < end {
        let k = space_at(&s[..end], start);
        if k == 0 {
            break;
        }
        start += k;
    }
    while end > start {
        let k = space_ending(&s[start..end], end - start);
        if k == 0 {
            break;
        }
        end -= k;
    }
    (start, end)
}

pub fn trim_space(s: &[u8]) -> &[u8] {
    let (a, b) = trim_space_range(s, 0, s.len());
    &s[a..b]
}

/// `parseCommaSeparatedList`: split at commas, spaces trimmed, lower-cased.
fn comma_list(s: &[u8]) -> Vec<String> {
    s.split(|b| *b == b',')
        .map(|v| {
            let a = v.iter().position(|b| *b != b' ').unwrap_or(v.len());
            let e = v.iter().rposition(|b| *b != b' ').map_or(a, |e| e + 1);
            go_lower(&v[a..e.max(a)])
        })
        .collect()
}

/// `bytes.ToLower` as text (invalid UTF-8 becomes U+FFFD, as Go's `bytes.Map` makes it).
pub fn go_lower(s: &[u8]) -> String {
    if s.is_ascii() {
        return String::from_utf8(s.to_ascii_lowercase()).unwrap_or_default();
    }
    String::from_utf8_lossy(s)
        .chars()
        .map(|c| {
            if c == '\u{130}' {
                return 'i';
            }
            let mut l = c.to_lowercase();
            match (l.next(), l.next()) {
                (Some(x), None) => x,
                _ => c,
            }
        })
        .collect()
}

/// `bytes.ToUpper` as text (Go's simple case mapping: a rune whose upper case is several
/// runes stays as it is).
pub fn go_upper(s: &[u8]) -> String {
    if s.is_ascii() {
        return String::from_utf8(s.to_ascii_uppercase()).unwrap_or_default();
    }
    String::from_utf8_lossy(s)
        .chars()
        .map(|c| {
            let mut u = c.to_uppercase();
            match (u.next(), u.next()) {
                (Some(x), None) => x,
                _ => c,
            }
        })
        .collect()
}

/// `getExpandedHeaderName`: compact header forms (IANA sip-parameters).
fn expand_name(n: Vec<u8>) -> Vec<u8> {
    if n.len() != 1 {
        return n;
    }
    let full: &[u8] = match n[0] {
        b'a' => b"accept-contact",
        b'b' => b"referred-by",
        b'c' => b"content-type",
        b'd' => b"request-disposition",
        b'e' => b"content-encoding",
        b'f' => b"from",
        b'i' => b"call-id",
        b'j' => b"reject-contact",
        b'k' => b"supported",
        b'l' => b"content-length",
        b'm' => b"contact",
        b'o' => b"event",
        b'r' => b"refer-to",
        b's' => b"subject",
        b't' => b"to",
        b'u' => b"allow-events",
        b'v' => b"via",
        b'x' => b"session-expires",
        b'y' => b"identity",
        _ => return n,
    };
    full.to_vec()
}
