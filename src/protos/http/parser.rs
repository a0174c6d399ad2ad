//! Incremental HTTP/1.x message parser (Packetbeat's `http_parser.go`).
//!
//! One [`Stream`] per TCP direction keeps the bytes not yet consumed and the message being
//! parsed. Parsing resumes where it stopped when more bytes arrive, so a message may come in any
//! number of segments and several messages may share one segment.
//!
//! This follows Packetbeat's parser rule for rule, quirks included, because its results end up
//! in the events: header values are trimmed with its trim (which drops a one-byte value that has
//! no leading blank), a header line runs to the next `:` even across lines, folded headers are
//! not joined, chunk extensions and trailers make the message unparseable, a response without
//! Content-Length on a keep-alive connection ends at its headers, and so on.

use crate::protos::app::StreamBuffer;
use std::collections::HashSet;

/// What the parser needs from the configuration (`parserConfig`).
#[derive(Debug, Clone, Default)]
pub struct ParserConfig {
    /// Lower-cased name of the header holding the client's real address (`real_ip_header`).
    pub real_ip_header: String,
    pub send_headers: bool,
    pub send_all_headers: bool,
    /// Lower-cased names of the headers to keep when not all are sent.
    pub headers_whitelist: HashSet<String>,
    pub include_request_body_for: Vec<String>,
    pub include_response_body_for: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Version {
    pub major: u8,
    pub minor: u8,
}

impl Version {
    pub fn is(self, major: u8, minor: u8) -> bool {
        self.major == major && self.minor == minor
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// One HTTP message (Packetbeat's `message`).
#[derive(Debug, Clone, Default)]
pub struct Message {
    /// Time of the segment the message started in.
    pub ts: crate::common::Ts,
    pub has_content_length: bool,
    /// Offset of the first header line within `raw_headers`; 0 until the first line is parsed.
    pub header_offset: usize,
    pub version: Version,
    pub connection: Vec<u8>,
    pub chunked_length: i64,

    pub is_request: bool,

    pub request_uri: Vec<u8>,
    pub method: Vec<u8>,
    pub status_code: u16,
    pub status_phrase: Vec<u8>,
    pub real_ip: Vec<u8>,

    /// Content-Length, or for chunked and connection-delimited bodies the body bytes seen.
    pub content_length: i64,
    pub content_type: Vec<u8>,
    pub host: Vec<u8>,
    pub referer: Vec<u8>,
    pub user_agent: Vec<u8>,
    /// Content codings to undo, in the order they were applied.
    pub encodings: Vec<String>,
    pub is_chunked: bool,
    /// Headers kept for the event (lower-cased names; repeated headers joined with ", ").
    pub headers: Vec<(String, Vec<u8>)>,
    /// Bytes of the message on the wire as Packetbeat counts them.
    pub size: u64,

    pub raw_headers: Vec<u8>,

    /// The body goes into the event (its content type is in `include_*body_for`).
    pub send_body: bool,
    /// The body is kept: `send_body`, or a url-encoded form whose parameters are extracted.
    pub save_body: bool,
    pub body: Vec<u8>,

    pub notes: Vec<String>,
    pub packet_loss_req: bool,
    pub packet_loss_resp: bool,

    /// A request that carries `Expect: 100-continue`: its body may never be sent.
    pub expect_continue: bool,
    /// If this message is a response, it answers a `HEAD` request, so it has no body whatever
    /// its headers say (RFC 9112 §6.3). Set by the connection, which knows the requests.
    pub answers_head: bool,
    /// If this message is a response, it answers a `CONNECT`: a 2xx opens a tunnel and has
    /// no body.
    pub answers_connect: bool,
}

impl Message {
    pub fn new(ts: crate::common::Ts) -> Message {
        Message {
            ts,
            ..Message::default()
        }
    }

    pub fn headers_received(&self) -> bool {
        self.header_offset > 0
    }

    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    pub fn set_header(&mut self, name: &str, value: Vec<u8>) {
        match self.headers.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = value,
            None => self.headers.push((name.to_string(), value)),
        }
    }

    /// The body runs until the connection closes: no Content-Length, and `Connection: close`
    /// or HTTP/1.0 without `Connection: keep-alive` (compared case-sensitively, as Packetbeat).
    pub fn is_close_delimited(&self) -> bool {
        !self.has_content_length
            && (self.connection == b"close"
                || (self.version.is(1, 0) && self.connection != b"keep-alive"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum State {
    #[default]
    Start,
    Headers,
    Body,
    BodyChunkedStart,
    BodyChunked,
    BodyChunkedWaitFinalCrlf,
}

/// Result of feeding a stream: Packetbeat's `(ok, complete)` pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Not HTTP, or broken beyond repair: the stream is dropped.
    Failed,
    /// Need more bytes.
    Incomplete,
    /// `Stream::message` is complete.
    Complete,
}

/// The parse position within one direction of a connection: its unconsumed bytes (the
/// framework's [`StreamBuffer`]) and where the parser stands in them.
#[derive(Debug, Default)]
pub struct Cursor {
    buf: StreamBuffer,
    pub parse_offset: usize,
    pub state: State,
    pub body_received: i64,
    /// For each kind of search ([`SEARCH_CRLF`], [`SEARCH_COLON`]): where the last one that
    /// failed started and how far it looked, so a line that arrives segment by segment is
    /// scanned once, not once per segment (a 10 MiB line would otherwise cost gigabytes of
    /// scanning).
    searched: [(usize, usize); 2],
}

const SEARCH_CRLF: usize = 0;
const SEARCH_COLON: usize = 1;

impl Cursor {
    pub fn data(&self) -> &[u8] {
        self.buf.data()
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn consume(&mut self, n: usize) {
        self.buf.consume(n);
        self.searched = Default::default();
    }

    pub fn clear(&mut self) {
        self.buf.clear();
        self.searched = Default::default();
    }

    /// The first `needle` at or after `from` (an index into [`data`](Self::data)). A search of
    /// the same kind from the same place that failed before resumes where it stopped.
    fn find_from(&mut self, kind: usize, from: usize, needle: &[u8]) -> Option<usize> {
        let data = self.buf.data();
        let (start_before, upto) = self.searched[kind];
        let start = if start_before == from && upto > from {
            upto.min(data.len())
        } else {
            from.min(data.len())
        };
        match memchr::memmem::find(&data[start..], needle) {
            Some(i) => Some(start + i),
            None => {
                // A needle split by the end of the data is found next time.
                let upto = data.len().saturating_sub(needle.len() - 1).max(from);
                self.searched[kind] = (from, upto);
                None
            }
        }
    }

    pub fn append(&mut self, bytes: &[u8]) {
        self.buf.append(bytes);
    }
}

/// One direction of a connection: unconsumed bytes and the message in progress.
#[derive(Debug, Default)]
pub struct Stream {
    pub cur: Cursor,
    pub message: Option<Message>,
}

impl Stream {
    pub fn new() -> Stream {
        Stream::default()
    }

    /// A segment that lies wholly inside a body that is not kept is counted without being
    /// buffered (the common case for large responses): the same accounting `parse_body` does,
    /// without the copy. Returns false when the segment has to go through the parser.
    pub fn skip_body_segment(&mut self, n: usize) -> bool {
        let Stream { cur, message } = self;
        let Some(m) = message.as_mut() else {
            return false;
        };
        if !cur.is_empty() || cur.state != State::Body || m.save_body {
            return false;
        }
        let n = n as i64;
        if m.is_close_delimited() {
            m.size += n as u64;
            cur.body_received += n;
            m.content_length += n;
            return true;
        }
        if n < m.content_length - cur.body_received {
            cur.body_received += n;
            m.size += n as u64;
            return true;
        }
        false
    }

    /// Whether a request's headers are complete and its body is still arriving.
    pub fn request_in_body(&self) -> bool {
        self.message
            .as_ref()
            .is_some_and(|m| m.is_request && m.headers_received())
            && matches!(
                self.cur.state,
                State::Body | State::BodyChunkedStart | State::BodyChunked
            )
    }

    /// The request in progress, if it is one whose client was waiting for `100 Continue` and
    /// has sent none or part of its body: a final response came first, so the client will
    /// not send the rest. The request is complete with the body bytes seen.
    pub fn take_unsent_body_request(&mut self) -> Option<Message> {
        let m = self.message.as_ref()?;
        let in_body = matches!(
            self.cur.state,
            State::Body | State::BodyChunkedStart | State::BodyChunked
        );
        if !(m.is_request && m.expect_continue && m.headers_received() && in_body) {
            return None;
        }
        let mut m = self.message.take()?;
        if !m.is_chunked {
            m.content_length = self.cur.body_received;
        }
        self.cur.clear();
        self.prepare_for_new_message();
        Some(m)
    }

    pub fn prepare_for_new_message(&mut self) {
        self.cur.state = State::Start;
        self.cur.parse_offset = 0;
        self.cur.body_received = 0;
        self.message = None;
    }

    /// Parses what is buffered into `self.message` (which must be set). `extra` is the size of
    /// a segment that was seen but not buffered because of `max_message_size`; it can only be
    /// body and is counted without its bytes.
    pub fn parse(&mut self, cfg: &ParserConfig, extra: usize) -> Outcome {
        let Stream { cur, message } = self;
        let Some(m) = message.as_mut() else {
            return Outcome::Failed;
        };
        if extra > 0 {
            if cur.state != State::Body {
                return Outcome::Failed;
            }
            return eat_body(cur, m, extra as i64);
        }
        while cur.parse_offset < cur.len() {
            let step = match cur.state {
                State::Start => parse_http_line(cur, m),
                State::Headers => parse_headers(cfg, cur, m),
                State::Body => return parse_body(cur, m),
                State::BodyChunkedStart => parse_body_chunked_start(cur, m),
                State::BodyChunked => parse_body_chunked(cur, m),
                State::BodyChunkedWaitFinalCrlf => {
                    return parse_body_chunked_wait_final_crlf(cur, m)
                }
            };
            if let Some(done) = step {
                return done;
            }
        }
        Outcome::Incomplete
    }
}

/// `None`: go on with the next state; `Some`: stop with this outcome.
type Step = Option<Outcome>;

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    if needle.len() > hay.len() {
        return None;
    }
    if needle.len() == 1 {
        return hay.iter().position(|&b| b == needle[0]);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Byte index of the first / last Unicode white-space character (Go's `unicode.IsSpace`, which
/// has the same set as Rust's `char::is_whitespace`); invalid UTF-8 counts as non-space.
fn index_space(b: &[u8], last: bool) -> Option<usize> {
    let mut found = None;
    let mut pos = 0;
    for chunk in b.utf8_chunks() {
        for (i, c) in chunk.valid().char_indices() {
            if c.is_whitespace() {
                if !last {
                    return Some(pos + i);
                }
                found = Some(pos + i);
            }
        }
        pos += chunk.valid().len() + chunk.invalid().len();
    }
    found
}

fn parse_http_line(cur: &mut Cursor, m: &mut Message) -> Step {
    // Packetbeat searches from the start of the buffer: parse_offset is 0 in this state, so the
    // index is the same either way.
    let Some(i) = cur.find_from(SEARCH_CRLF, cur.parse_offset, b"\r\n") else {
        return Some(Outcome::Incomplete);
    };
    let data = cur.data();
    // Packetbeat slices the line from the start of the buffer (parse_offset is 0 here anyway).
    let fline = &data[cur.parse_offset..i.max(cur.parse_offset)];
    if fline.len() < 9 {
        return Some(Outcome::Failed);
    }
    let version: &[u8];
    if &fline[..5] == b"HTTP/" {
        m.is_request = false;
        version = &fline[5..8];
        match parse_response_status(&fline[9..]) {
            Some((code, phrase)) => {
                m.status_code = code;
                m.status_phrase = phrase.to_vec();
            }
            None => return Some(Outcome::Failed),
        }
    } else {
        let (Some(after_method), Some(after_uri)) =
            (index_space(fline, false), index_space(fline, true))
        else {
            return Some(Outcome::Failed);
        };
        if after_method == after_uri {
            return Some(Outcome::Failed);
        }
        m.method = fline[..after_method].to_vec();
        m.request_uri = fline[(after_method + 1).min(after_uri)..after_uri].to_vec();
        let version_idx = after_uri + 5 + 1;
        if fline.len() > version_idx && &fline[after_uri + 1..version_idx] == b"HTTP/" {
            m.is_request = true;
            version = &fline[version_idx..];
        } else {
            return Some(Outcome::Failed);
        }
    }
    m.version = parse_version(version).unwrap_or(Version { major: 1, minor: 0 });
    cur.parse_offset = i + 2;
    m.header_offset = cur.parse_offset;
    cur.state = State::Headers;
    None
}

fn parse_response_status(s: &[u8]) -> Option<(u16, &[u8])> {
    let (code, phrase): (&[u8], &[u8]) = match s.iter().position(|&b| b == b' ') {
        Some(p) => (&s[..p], &s[p + 1..]),
        None => (s, &[]),
    };
    parse_int(code).map(|c| (c as u16, phrase))
}

fn parse_version(s: &[u8]) -> Option<Version> {
    if s.len() < 3 {
        return None;
    }
    // Byte arithmetic wraps as in Go, so anything below '0' is rejected too.
    let major = s[0].wrapping_sub(b'0');
    let minor = s[2].wrapping_sub(b'0');
    if major > 1 || minor > 2 {
        return None;
    }
    Some(Version { major, minor })
}

/// libbeat's `streambuf.IntASCII`: optional sign, then the leading digits; none is an error.
pub fn parse_int(line: &[u8]) -> Option<i64> {
    let (neg, rest) = match line.first() {
        Some(b'-') => (true, &line[1..]),
        Some(b'+') => (false, &line[1..]),
        Some(_) => (false, line),
        None => return None,
    };
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in &rest[..digits] {
        v = v.wrapping_mul(10).wrapping_add((b - b'0') as u64);
    }
    let v = v as i64;
    Some(if neg { v.wrapping_neg() } else { v })
}

fn parse_headers(cfg: &ParserConfig, cur: &mut Cursor, m: &mut Message) -> Step {
    let data = cur.data();
    if data.len() - cur.parse_offset >= 2
        && &data[cur.parse_offset..cur.parse_offset + 2] == b"\r\n"
    {
        // End of headers.
        let size = cur.parse_offset + 2;
        m.size = size as u64;
        m.raw_headers = data[..size].to_vec();
        cur.consume(size);
        cur.parse_offset = 0;

        if !m.is_request
            && (m.answers_head
                || (m.answers_connect && (200..300).contains(&m.status_code))
                || (100..200).contains(&m.status_code)
                || m.status_code == 204
                || m.status_code == 304)
        {
            // Responses to HEAD, 2xx responses to CONNECT, and 1xx, 204 and 304 responses end
            // at the empty line after the headers (RFC 9112 §6.3).
            return Some(Outcome::Complete);
        }
        let include = if m.is_request {
            &cfg.include_request_body_for
        } else {
            &cfg.include_response_body_for
        };
        m.send_body = include
            .iter()
            .any(|t| find(&m.content_type, t.as_bytes()).is_some());
        m.save_body =
            m.send_body || (m.content_length > 0 && find(&m.content_type, b"urlencoded").is_some());

        if m.is_chunked {
            // Transfer-Encoding overrides Content-Length.
            cur.state = State::BodyChunkedStart;
            return None;
        }
        if m.content_length == 0 && (m.is_request || m.has_content_length) {
            return Some(Outcome::Complete);
        }
        cur.state = State::Body;
        return None;
    }
    // Packetbeat looks for the colon anywhere ahead, not just on this line.
    let start = cur.parse_offset;
    let Some(colon) = cur.find_from(SEARCH_COLON, start, b":") else {
        return Some(Outcome::Incomplete);
    };
    let Some(crlf) = cur.find_from(SEARCH_CRLF, colon + 1, b"\r\n") else {
        return Some(Outcome::Incomplete);
    };
    let data = cur.data();
    let n = parse_header(cfg, m, &data[start..], colon - start, crlf - colon - 1);
    cur.parse_offset += n;
    None
}

/// One header line of `data`, whose first colon is at `i` and whose CRLF is `q` bytes after the
/// colon; returns the bytes it took.
fn parse_header(cfg: &ParserConfig, m: &mut Message, data: &[u8], i: usize, q: usize) -> usize {
    // Packetbeat's folding check looks at the byte after '\r', which is always '\n', so a
    // continuation line is never joined: it becomes a header line of its own.
    let p = i + 1 + q;
    // Header names are lowercased on the stack: only the headers that are kept need a String.
    let mut stack = [0u8; 64];
    let raw_name = &data[..i];
    let name: std::borrow::Cow<str> = if raw_name.len() <= stack.len() && raw_name.is_ascii() {
        let lowered = &mut stack[..raw_name.len()];
        lowered.copy_from_slice(raw_name);
        lowered.make_ascii_lowercase();
        std::borrow::Cow::Borrowed(std::str::from_utf8(lowered).expect("ASCII"))
    } else {
        std::borrow::Cow::Owned(to_lower(raw_name))
    };
    let value = trim(&data[i + 1..p]);

    match name.as_ref() {
        "content-length" => {
            m.content_length = parse_int(value).unwrap_or(0);
            m.has_content_length = true;
        }
        "content-type" => m.content_type = value.to_vec(),
        "transfer-encoding" => {
            let mut encodings = parse_comma_separated_list(value);
            if encodings.last().map(|e| e == "chunked").unwrap_or(false) {
                m.is_chunked = true;
                encodings.pop();
            }
            // Applied by the sender after any Content-Encoding.
            m.encodings.extend(encodings);
        }
        "content-encoding" => {
            // Applied before any Transfer-Encoding, so it goes first.
            let mut encodings = parse_comma_separated_list(value);
            encodings.append(&mut m.encodings);
            m.encodings = encodings;
        }
        "connection" => m.connection = value.to_vec(),
        "expect" => m.expect_continue = trim(value).eq_ignore_ascii_case(b"100-continue"),
        n if !cfg.real_ip_header.is_empty() && n == cfg.real_ip_header => {
            let first = value.split(|&b| b == b',').next().unwrap_or(&[]);
            m.real_ip = trim(first).to_vec();
        }
        "host" => m.host = value.to_vec(),
        "referer" => m.referer = value.to_vec(),
        "user-agent" => m.user_agent = value.to_vec(),
        _ => {}
    }

    if cfg.send_headers
        && (cfg.send_all_headers || cfg.headers_whitelist.iter().any(|h| *h == name))
    {
        match m.headers.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => {
                v.extend_from_slice(b", ");
                v.extend_from_slice(value);
            }
            None => m.headers.push((name.into_owned(), value.to_vec())),
        }
    }
    p + 2
}

fn parse_comma_separated_list(s: &[u8]) -> Vec<String> {
    s.split(|&b| b == b',')
        .map(|v| {
            let start = v.iter().position(|&b| b != b' ').unwrap_or(v.len());
            let end = v
                .iter()
                .rposition(|&b| b != b' ')
                .map(|e| e + 1)
                .unwrap_or(start)
                .max(start);
            String::from_utf8_lossy(&v[start..end]).to_lowercase()
        })
        .collect()
}

fn to_lower(b: &[u8]) -> String {
    if b.is_ascii() {
        let mut v = b.to_vec();
        v.make_ascii_lowercase();
        String::from_utf8(v).expect("ASCII")
    } else {
        String::from_utf8_lossy(b).to_lowercase()
    }
}

/// Packetbeat's `trim`: `trimRight` never looks at index 0, so a value whose only non-blank
/// byte is its first one comes out empty.
pub fn trim(buf: &[u8]) -> &[u8] {
    trim_left(trim_right(buf))
}

fn trim_left(buf: &[u8]) -> &[u8] {
    match buf.iter().position(|&b| b != b' ' && b != b'\t') {
        Some(i) => &buf[i..],
        None => &[],
    }
}

fn trim_right(buf: &[u8]) -> &[u8] {
    let mut i = buf.len();
    while i > 1 {
        i -= 1;
        let b = buf[i];
        if b != b' ' && b != b'\t' {
            return &buf[..i + 1];
        }
    }
    &[]
}

fn parse_body(cur: &mut Cursor, m: &mut Message) -> Outcome {
    let nbytes = cur.len() as i64;
    if m.is_close_delimited() {
        // No length: everything up to the end of the connection is body.
        m.size += nbytes as u64;
        cur.body_received += nbytes;
        m.content_length += nbytes;
        if m.save_body {
            m.body.extend_from_slice(cur.data());
        }
        cur.clear();
        Outcome::Incomplete
    } else if nbytes >= m.content_length - cur.body_received {
        // A negative Content-Length would make Packetbeat panic; we take nothing instead.
        let wanted = (m.content_length - cur.body_received).max(0) as usize;
        if m.save_body {
            m.body.extend_from_slice(&cur.data()[..wanted]);
        }
        cur.body_received = m.content_length;
        m.size += wanted as u64;
        cur.consume(wanted);
        Outcome::Complete
    } else {
        if m.save_body {
            m.body.extend_from_slice(cur.data());
        }
        cur.clear();
        cur.body_received += nbytes;
        m.size += nbytes as u64;
        Outcome::Incomplete
    }
}

/// Counts `size` body bytes that were seen but not kept (`eatBody`).
fn eat_body(cur: &mut Cursor, m: &mut Message, size: i64) -> Outcome {
    if m.is_close_delimited() {
        m.size += size as u64;
        cur.body_received += size;
        m.content_length += size;
        Outcome::Incomplete
    } else if size >= m.content_length - cur.body_received {
        let wanted = m.content_length - cur.body_received;
        cur.body_received += wanted;
        m.size = (m.raw_headers.len() as i64 + m.content_length).max(0) as u64;
        Outcome::Complete
    } else {
        cur.body_received += size;
        m.size += size as u64;
        Outcome::Incomplete
    }
}

fn parse_body_chunked_start(cur: &mut Cursor, m: &mut Message) -> Step {
    let Some(i) = cur.find_from(SEARCH_CRLF, 0, b"\r\n") else {
        return Some(Outcome::Incomplete);
    };
    let data = cur.data();
    // strconv.ParseInt(line, 16, 32): no chunk extensions, no blanks. A negative length would
    // make Packetbeat panic later; it is a parse error here.
    let Some(len) = parse_go_hex_i32(&data[..i]) else {
        return Some(Outcome::Failed);
    };
    if len < 0 {
        return Some(Outcome::Failed);
    }
    m.chunked_length = len;
    cur.consume(i + 2);
    m.size += (i + 2) as u64;

    if m.chunked_length == 0 {
        let data = cur.data();
        if data.len() < 2 {
            cur.state = State::BodyChunkedWaitFinalCrlf;
            return Some(Outcome::Incomplete);
        }
        m.size += 2;
        if &data[..2] != b"\r\n" {
            // Trailers are not supported.
            return Some(Outcome::Failed);
        }
        cur.consume(2);
        return Some(Outcome::Complete);
    }
    cur.body_received = 0;
    cur.state = State::BodyChunked;
    None
}

fn parse_go_hex_i32(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() {
        return None;
    }
    let mut v: i64 = 0;
    for &b in digits {
        let d = (b as char).to_digit(16)? as i64;
        v = v * 16 + d;
        if v > (1i64 << 31) {
            return None;
        }
    }
    let v = if neg { -v } else { v };
    if v > i32::MAX as i64 || v < i32::MIN as i64 {
        return None;
    }
    Some(v)
}

fn parse_body_chunked(cur: &mut Cursor, m: &mut Message) -> Step {
    let wanted = (m.chunked_length - cur.body_received).max(0) as usize;
    let len = cur.len();
    if len >= wanted + 2 {
        // The chunk and its CRLF (which Packetbeat does not check) are here.
        if m.save_body {
            m.body.extend_from_slice(&cur.data()[..wanted]);
        }
        m.size += (wanted + 2) as u64;
        cur.consume(wanted + 2);
        m.content_length += m.chunked_length;
        cur.state = State::BodyChunkedStart;
        return None;
    }
    if len >= wanted {
        // Wait for the CRLF before taking the chunk.
        return Some(Outcome::Incomplete);
    }
    if m.save_body {
        m.body.extend_from_slice(cur.data());
    }
    cur.body_received += len as i64;
    m.size += len as u64;
    cur.clear();
    Some(Outcome::Incomplete)
}

fn parse_body_chunked_wait_final_crlf(cur: &mut Cursor, m: &mut Message) -> Outcome {
    let data = cur.data();
    if data.len() < 2 {
        return Outcome::Incomplete;
    }
    m.size += 2;
    if &data[..2] != b"\r\n" {
        return Outcome::Failed;
    }
    cur.consume(2);
    Outcome::Complete
}

/// Packetbeat's `messageGap`: what a gap of `nbytes` in this direction means for the message
/// in progress. `None`: cannot recover (drop the stream); `Some(complete)`: the gap was
/// absorbed into the body, and `complete` says whether it ended the message.
pub fn message_gap(s: &mut Stream, nbytes: usize) -> Option<bool> {
    let Stream { cur, message } = s;
    let m = message.as_mut()?;
    if cur.state != State::Body {
        // A gap in the first line, the headers or a chunked body cannot be skipped.
        return None;
    }
    let nbytes = nbytes as i64;
    if m.is_request {
        if !m.packet_loss_req {
            m.packet_loss_req = true;
            m.notes
                .push("Packet loss while capturing the request".to_string());
        }
    } else if !m.packet_loss_resp {
        m.packet_loss_resp = true;
        m.notes
            .push("Packet loss while capturing the response".to_string());
    }
    if m.is_close_delimited() {
        cur.body_received += nbytes;
        m.content_length += nbytes;
        Some(false)
    } else if cur.len() as i64 + nbytes >= m.content_length - cur.body_received {
        // The end of the body is in the gap.
        Some(true)
    } else {
        cur.body_received += nbytes;
        Some(false)
    }
}
