//! CQL native protocol frames (v1 to v4), parsed by a pure function of the direction's
//! unconsumed bytes.
//!
//! A frame is a header (9 bytes; 8 in v1/v2, whose stream id is one byte) and a body of the
//! header's length. The header's version byte tells the direction: its high bit is set on
//! responses. The body is decoded as Packetbeat's `internal/gocql/frame.go` decodes it, into
//! the fields its events carry, with these corrections where its decoder reads the wrong bytes:
//!
//! - Result metadata: the column specifications that follow the table spec are skipped (their
//!   types parsed recursively), so `num_rows` is the row count the frame carries. Packetbeat
//!   does not skip them and reads the first four bytes of the first column's name as the count
//!   (`488819` is `00 07 'u' 's'`, the start of the column `user_id`). A paging state is
//!   followed by the table spec, which is read too (Packetbeat stops after the paging state).
//! - A response with the tracing flag starts with the tracing id (16 bytes), which is skipped;
//!   Packetbeat does not skip it and decodes the body 16 bytes off.
//! - A compressed body is decompressed first and the warnings and custom payload read from the
//!   decompressed bytes (Packetbeat reads them from the compressed ones).
//! - A v4 Read_failure error carries the number of failed replicas before `data_present`; it is
//!   read (Packetbeat takes `data_present` from its first byte).
//! - `[int]` values are signed, as the spec has them (`[bytes]` of length -1 is null).
//!
//! Bytes that do not decode (a version other than 1 to 4, a frame over 256 MiB, a body shorter
//! than what it says it holds, a compressed body without a decompressor) are a parse error:
//! Packetbeat then drops the connection's state.

use super::codes::*;
use crate::protos::app::Parsed;
use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const ERR_VERSION: &str = "unsupported version";
pub const ERR_TOO_BIG: &str = "frame length is bigger than the maximum allowed";
pub const ERR_TRUNCATED: &str = "frame body shorter than its contents";
pub const ERR_NO_COMPRESSOR: &str = "hit compress flag, but compressor was not set";
pub const ERR_DECOMPRESS: &str = "snappy: corrupt input";
pub const ERR_INET: &str = "invalid IP size";
pub const ERR_TYPE_DEPTH: &str = "column type nested too deeply";

/// `maxFrameSize`: the protocol's limit on a body.
pub const MAX_FRAME_SIZE: u32 = 256 * 1024 * 1024;
/// Deepest nesting of column types accepted (collections of UDTs of tuples …).
const MAX_TYPE_DEPTH: usize = 32;
/// Snappy never expands more than about 21 times; a header claiming more is corrupt (and is
/// not allocated).
const MAX_SNAPPY_RATIO: usize = 32;

/// What the parser needs besides the bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct ParserConfig {
    /// `compressor: snappy`.
    pub snappy: bool,
    /// Opcodes whose bodies are not decoded and whose transactions are not published, as a
    /// bit set of opcode numbers.
    pub ignored_ops: u32,
}

impl ParserConfig {
    pub fn is_ignored(&self, op: u8) -> bool {
        op < 32 && self.ignored_ops & (1 << op) != 0
    }
}

/// The frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The version byte as sent: the protocol version, and the direction in the high bit.
    pub version: u8,
    pub flags: u8,
    pub stream: i16,
    pub op: u8,
    /// The body's length (on the wire, compressed or not).
    pub length: u32,
}

impl Header {
    pub fn proto(&self) -> u8 {
        self.version & 0x7F
    }

    pub fn is_response(&self) -> bool {
        self.version & 0x80 != 0
    }
}

/// A decoded frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub header: Header,
    pub body: Body,
    /// The warnings of a response with the warning flag.
    pub warnings: Option<Vec<String>>,
}

/// What Packetbeat reports of a body.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// Nothing (an empty body, READY, OPTIONS, PREPARE, EXECUTE, BATCH, REGISTER, AUTH_RESPONSE,
    /// an unknown opcode).
    None,
    /// An opcode of `ignored_ops`: the body is skipped.
    Ignored,
    /// Compressed with LZ4 (the connection's STARTUP chose it), which is not decompressed.
    Undecoded,
    /// STARTUP: only its compression option is kept (for the connection, not the event).
    Startup {
        compression: Option<String>,
    },
    Query {
        query: String,
    },
    Error(ErrorBody),
    Result(ResultBody),
    Supported(Vec<(String, Vec<String>)>),
    Authenticate {
        class: String,
    },
    /// AUTH_CHALLENGE and AUTH_SUCCESS: the token as Go's `%q` writes it.
    AuthData {
        data: String,
    },
    Event(EventBody),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ErrorBody {
    pub code: i32,
    pub msg: String,
    /// The code's further fields (`details`), in the order Packetbeat reads them.
    pub details: Vec<(&'static str, Detail)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Detail {
    Str(String),
    Int(i64),
    Bool(bool),
    Strs(Vec<String>),
    /// Raw bytes (an unprepared statement's id).
    Bytes(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum ResultBody {
    Void,
    Rows {
        meta: Metadata,
        num_rows: i32,
    },
    SetKeyspace(String),
    Prepared {
        id: String,
        req_meta: Metadata,
        resp_meta: Option<Metadata>,
    },
    SchemaChange(SchemaChange),
    /// A kind the protocol does not define: Packetbeat reports an empty `result`.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Metadata {
    pub flags: i32,
    pub col_count: i32,
    /// A prepared statement's partition key columns (v4).
    pub pkey_columns: Option<Vec<u16>>,
    /// Upper-case hex, as Go's `%X`.
    pub paging_state: Option<String>,
    pub keyspace: Option<String>,
    pub table: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct SchemaChange {
    pub change: String,
    pub target: Option<String>,
    pub keyspace: Option<String>,
    /// v1/v2 only.
    pub table: Option<String>,
    pub object: Option<String>,
    pub name: Option<String>,
    pub args: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct EventBody {
    pub kind: String,
    pub change: Option<String>,
    pub host: Option<String>,
    pub port: Option<i32>,
    pub schema_change: Option<SchemaChange>,
}

/// Big-endian reads over a body; reading past its end is [`ERR_TRUNCATED`].
struct Reader<'a> {
    b: &'a [u8],
}

type R<T> = Result<T, &'static str>;

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> R<&'a [u8]> {
        if n > self.b.len() {
            return Err(ERR_TRUNCATED);
        }
        let (head, tail) = self.b.split_at(n);
        self.b = tail;
        Ok(head)
    }

    fn byte(&mut self) -> R<u8> {
        Ok(self.take(1)?[0])
    }

    fn short(&mut self) -> R<u16> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn int(&mut self) -> R<i32> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn string(&mut self) -> R<String> {
        let n = self.short()?;
        Ok(lossy(self.take(n as usize)?))
    }

    fn long_string(&mut self) -> R<String> {
        let n = self.int()?;
        let n = usize::try_from(n).map_err(|_| ERR_TRUNCATED)?;
        Ok(lossy(self.take(n)?))
    }

    fn string_list(&mut self) -> R<Vec<String>> {
        let n = self.short()?;
        // Each string takes at least its two length bytes: no allocation past what the body
        // can hold.
        let mut v = Vec::with_capacity((n as usize).min(self.b.len() / 2));
        for _ in 0..n {
            v.push(self.string()?);
        }
        Ok(v)
    }

    /// `[bytes]`: `None` for a negative length (null).
    fn bytes(&mut self) -> R<Option<&'a [u8]>> {
        let n = self.int()?;
        match usize::try_from(n) {
            Ok(n) => Ok(Some(self.take(n)?)),
            Err(_) => Ok(None),
        }
    }

    fn short_bytes(&mut self) -> R<&'a [u8]> {
        let n = self.short()?;
        self.take(n as usize)
    }

    fn string_multimap(&mut self) -> R<Vec<(String, Vec<String>)>> {
        let n = self.short()?;
        let mut v = Vec::with_capacity((n as usize).min(self.b.len() / 4));
        for _ in 0..n {
            let k = self.string()?;
            let l = self.string_list()?;
            v.push((k, l));
        }
        Ok(v)
    }

    fn string_map(&mut self) -> R<Vec<(String, String)>> {
        let n = self.short()?;
        let mut v = Vec::with_capacity((n as usize).min(self.b.len() / 4));
        for _ in 0..n {
            let k = self.string()?;
            let s = self.string()?;
            v.push((k, s));
        }
        Ok(v)
    }

    fn skip_bytes_map(&mut self) -> R<()> {
        let n = self.short()?;
        for _ in 0..n {
            self.short_bytes()?;
            self.bytes()?;
        }
        Ok(())
    }

    fn inet(&mut self) -> R<(IpAddr, i32)> {
        let n = self.byte()?;
        let ip = match n {
            4 => {
                let b = self.take(4)?;
                IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
            }
            16 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(self.take(16)?);
                IpAddr::V6(Ipv6Addr::from(a))
            }
            _ => return Err(ERR_INET),
        };
        Ok((ip, self.int()?))
    }

    /// Skips an `[option]` column type.
    fn skip_type(&mut self, depth: usize) -> R<()> {
        if depth > MAX_TYPE_DEPTH {
            return Err(ERR_TYPE_DEPTH);
        }
        match self.short()? {
            // custom: its class name
            0x0000 => {
                self.short_bytes()?;
            }
            // list, set
            0x0020 | 0x0022 => self.skip_type(depth + 1)?,
            // map
            0x0021 => {
                self.skip_type(depth + 1)?;
                self.skip_type(depth + 1)?;
            }
            // UDT: keyspace, name, then the fields' names and types
            0x0030 => {
                self.short_bytes()?;
                self.short_bytes()?;
                for _ in 0..self.short()? {
                    self.short_bytes()?;
                    self.skip_type(depth + 1)?;
                }
            }
            // tuple
            0x0031 => {
                for _ in 0..self.short()? {
                    self.skip_type(depth + 1)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Parses the frame at the start of `data`. `lz4`: the connection's STARTUP chose LZ4.
pub fn parse(cfg: &ParserConfig, lz4: bool, data: &[u8]) -> Parsed<Frame> {
    let Some(&v) = data.first() else {
        return Parsed::Incomplete;
    };
    let proto = v & 0x7F;
    if !(1..=4).contains(&proto) {
        return Parsed::Error(ERR_VERSION);
    }
    let head_len = if proto > 2 { 9 } else { 8 };
    let Some(h) = data.get(..head_len) else {
        return Parsed::Incomplete;
    };
    let (stream, rest) = if proto > 2 {
        (i16::from_be_bytes([h[2], h[3]]), &h[4..])
    } else {
        (i16::from(h[2] as i8), &h[3..])
    };
    let header = Header {
        version: v,
        flags: h[1],
        stream,
        op: rest[0],
        length: u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]),
    };
    if header.length > MAX_FRAME_SIZE {
        return Parsed::Error(ERR_TOO_BIG);
    }
    let consumed = head_len + header.length as usize;
    let Some(body) = data.get(head_len..consumed) else {
        return Parsed::Incomplete;
    };
    // An ignored opcode is marked whatever its body (`CheckFrameOpsIgnored`); an empty body
    // is not decoded at all, flags or not.
    let (body, warnings) = if cfg.is_ignored(header.op) {
        (Body::Ignored, None)
    } else if body.is_empty() {
        (Body::None, None)
    } else {
        match decode(cfg, lz4, &header, body) {
            Ok(b) => b,
            Err(e) => return Parsed::Error(e),
        }
    };
    Parsed::Message {
        msg: Frame {
            header,
            body,
            warnings,
        },
        consumed,
    }
}

/// Decodes a non-empty body (`ReadFrame`).
fn decode(
    cfg: &ParserConfig,
    lz4: bool,
    h: &Header,
    body: &[u8],
) -> R<(Body, Option<Vec<String>>)> {
    let plain: Cow<[u8]> = if h.flags & FLAG_COMPRESS != 0 {
        if lz4 {
            return Ok((Body::Undecoded, None));
        }
        if !cfg.snappy {
            return Err(ERR_NO_COMPRESSOR);
        }
        let n = snap::raw::decompress_len(body).map_err(|_| ERR_DECOMPRESS)?;
        if n > body.len().saturating_mul(MAX_SNAPPY_RATIO) {
            return Err(ERR_DECOMPRESS);
        }
        let out = snap::raw::Decoder::new()
            .decompress_vec(body)
            .map_err(|_| ERR_DECOMPRESS)?;
        Cow::Owned(out)
    } else {
        Cow::Borrowed(body)
    };
    let mut r = Reader { b: &plain };
    if h.is_response() && h.flags & FLAG_TRACING != 0 {
        r.take(16)?;
    }
    let warnings = if h.flags & FLAG_WARNING != 0 {
        Some(r.string_list()?)
    } else {
        None
    };
    if h.flags & FLAG_CUSTOM_PAYLOAD != 0 {
        r.skip_bytes_map()?;
    }
    let body = match h.op {
        OP_QUERY => Body::Query {
            query: r.long_string()?,
        },
        // Packetbeat does not decode STARTUP; its options are read leniently, never an error.
        OP_STARTUP => Body::Startup {
            compression: r.string_map().ok().and_then(|m| {
                m.into_iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("COMPRESSION"))
                    .map(|(_, v)| v)
            }),
        },
        OP_ERROR => Body::Error(error_body(&mut r)?),
        OP_RESULT => Body::Result(result_body(&mut r, h.proto())?),
        OP_SUPPORTED => Body::Supported(r.string_multimap()?),
        OP_AUTHENTICATE => Body::Authenticate { class: r.string()? },
        OP_AUTH_CHALLENGE | OP_AUTH_SUCCESS => Body::AuthData {
            data: go_quote(r.bytes()?.unwrap_or_default()),
        },
        OP_EVENT => Body::Event(event_body(&mut r, h.proto())?),
        _ => Body::None,
    };
    Ok((body, warnings))
}

fn error_body(r: &mut Reader) -> R<ErrorBody> {
    let code = r.int()?;
    let msg = r.string()?;
    let mut d: Vec<(&'static str, Detail)> = Vec::new();
    let consistency = |r: &mut Reader| -> R<Detail> {
        Ok(Detail::Str(consistency_name(r.short()?).into_owned()))
    };
    let int = |r: &mut Reader| -> R<Detail> { Ok(Detail::Int(r.int()?.into())) };
    let string = |r: &mut Reader| -> R<Detail> { Ok(Detail::Str(r.string()?)) };
    match code {
        ERR_UNAVAILABLE => {
            d.push(("read_consistency", consistency(r)?));
            d.push(("required", int(r)?));
            d.push(("alive", int(r)?));
        }
        ERR_WRITE_TIMEOUT => {
            d.push(("read_consistency", consistency(r)?));
            d.push(("received", int(r)?));
            d.push(("blockfor", int(r)?));
            d.push(("write_type", string(r)?));
        }
        ERR_READ_TIMEOUT | ERR_READ_FAILURE => {
            d.push(("read_consistency", consistency(r)?));
            d.push(("received", int(r)?));
            d.push(("blockfor", int(r)?));
            if code == ERR_READ_FAILURE {
                // v4: the number of failed replicas comes before data_present; Packetbeat
                // misses it and reads data_present from its first byte.
                d.push(("num_failures", int(r)?));
            }
            d.push(("data_present", Detail::Bool(r.byte()? != 0)));
        }
        ERR_ALREADY_EXISTS => {
            d.push(("keyspace", string(r)?));
            d.push(("table", string(r)?));
        }
        ERR_UNPREPARED => {
            d.push(("stmt_id", Detail::Bytes(r.short_bytes()?.to_vec())));
        }
        ERR_WRITE_FAILURE => {
            d.push(("read_consistency", consistency(r)?));
            d.push(("received", int(r)?));
            d.push(("blockfor", int(r)?));
            d.push(("num_failures", int(r)?));
            d.push(("write_type", string(r)?));
        }
        ERR_FUNCTION_FAILURE => {
            d.push(("keyspace", string(r)?));
            d.push(("function", string(r)?));
            d.push(("arg_types", Detail::Strs(r.string_list()?)));
        }
        _ => {}
    }
    Ok(ErrorBody {
        code,
        msg,
        details: d,
    })
}

fn result_body(r: &mut Reader, proto: u8) -> R<ResultBody> {
    Ok(match r.int()? {
        RESULT_VOID => ResultBody::Void,
        RESULT_ROWS => {
            let meta = metadata(r, proto, false)?;
            ResultBody::Rows {
                meta,
                num_rows: r.int()?,
            }
        }
        RESULT_SET_KEYSPACE => ResultBody::SetKeyspace(r.string()?),
        RESULT_PREPARED => {
            // `UUIDFromBytes`: an id of another length is reported as the zero UUID.
            let id = r.short_bytes()?;
            let id = uuid_string(id.try_into().unwrap_or([0; 16]));
            let req_meta = metadata(r, proto, true)?;
            let resp_meta = if proto >= 2 {
                Some(metadata(r, proto, false)?)
            } else {
                None
            };
            ResultBody::Prepared {
                id,
                req_meta,
                resp_meta,
            }
        }
        RESULT_SCHEMA_CHANGE => ResultBody::SchemaChange(schema_change(r, proto)?),
        _ => ResultBody::Unknown,
    })
}

/// Result or prepared-statement metadata, its column specifications skipped.
fn metadata(r: &mut Reader, proto: u8, prepared: bool) -> R<Metadata> {
    let flags = r.int()?;
    let col_count = r.int()?;
    let mut m = Metadata {
        flags,
        col_count,
        ..Default::default()
    };
    if prepared && proto >= 4 {
        let n = r.int()?;
        let n = usize::try_from(n).unwrap_or(0);
        let mut pk = Vec::with_capacity(n.min(r.b.len() / 2));
        for _ in 0..n {
            pk.push(r.short()?);
        }
        m.pkey_columns = Some(pk);
    }
    if !prepared && flags & ROWS_HAS_MORE_PAGES != 0 {
        let state = r.bytes()?.unwrap_or_default();
        m.paging_state = Some(hex::encode_upper(state));
    }
    if flags & ROWS_NO_METADATA != 0 {
        return Ok(m);
    }
    let global = flags & ROWS_GLOBAL_TABLE_SPEC != 0;
    if global {
        m.keyspace = Some(r.string()?);
        m.table = Some(r.string()?);
    }
    for _ in 0..col_count.max(0) {
        if !global {
            r.short_bytes()?;
            r.short_bytes()?;
        }
        r.short_bytes()?;
        r.skip_type(0)?;
    }
    Ok(m)
}

fn schema_change(r: &mut Reader, proto: u8) -> R<SchemaChange> {
    let mut s = SchemaChange {
        change: r.string()?,
        ..Default::default()
    };
    if proto <= 2 {
        s.keyspace = Some(r.string()?);
        s.table = Some(r.string()?);
        return Ok(s);
    }
    let target = r.string()?;
    match target.as_str() {
        "KEYSPACE" => s.keyspace = Some(r.string()?),
        "TABLE" | "TYPE" => {
            s.keyspace = Some(r.string()?);
            s.object = Some(r.string()?);
        }
        "FUNCTION" | "AGGREGATE" => {
            s.keyspace = Some(r.string()?);
            s.name = Some(r.string()?);
            s.args = Some(r.string_list()?);
        }
        _ => tracing::debug!("cassandra: unknown SCHEMA_CHANGE target {target:?}"),
    }
    s.target = Some(target);
    Ok(s)
}

fn event_body(r: &mut Reader, proto: u8) -> R<EventBody> {
    let mut e = EventBody {
        kind: r.string()?,
        ..Default::default()
    };
    match e.kind.as_str() {
        "TOPOLOGY_CHANGE" | "STATUS_CHANGE" => {
            e.change = Some(r.string()?);
            let (ip, port) = r.inet()?;
            e.host = Some(go_ip_string(ip));
            e.port = Some(port);
        }
        "SCHEMA_CHANGE" => e.schema_change = Some(schema_change(r, proto)?),
        _ => tracing::debug!("cassandra: unknown event type {:?}", e.kind),
    }
    Ok(e)
}

/// `net.IP.String()`: an IPv4-mapped IPv6 address is written as IPv4.
fn go_ip_string(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        },
        v4 => v4.to_string(),
    }
}

/// `UUID.String()`.
pub fn uuid_string(u: [u8; 16]) -> String {
    let h = hex::encode(u);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// Go's `fmt.Sprintf("%q", b)` (`strconv.Quote`): printable characters as they are, the
/// usual escapes, invalid UTF-8 bytes as `\xNN`, other characters as `\uNNNN`/`\UNNNNNNNN`.
/// "Printable" is approximated by "not a control, format or separator character".
pub fn go_quote(b: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(b.len() + 2);
    out.push('"');
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\x07' => out.push_str("\\a"),
                '\x08' => out.push_str("\\b"),
                '\x0C' => out.push_str("\\f"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\x0B' => out.push_str("\\v"),
                c if (c as u32) < 0x20 || c == '\x7F' => {
                    let _ = write!(out, "\\x{:02x}", c as u32);
                }
                c if is_go_printable(c) => out.push(c),
                c if (c as u32) < 0x10000 => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c => {
                    let _ = write!(out, "\\U{:08x}", c as u32);
                }
            }
        }
        for &byte in chunk.invalid() {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    out.push('"');
    out
}

fn is_go_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    !(c.is_control()
        || c.is_whitespace()
        || matches!(c as u32, 0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x180E
            | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F
            | 0xFEFF | 0xFFF9..=0xFFFB | 0xE000..=0xF8FF | 0xF0000..)
        || (0xD800..=0xDFFF).contains(&(c as u32)))
}
