//! Thrift messages, parsed incrementally by a pure function, and their values formatted as
//! Packetbeat formats them (`thrift.go`: `readMessageBegin`, `readField`, the `read*` value
//! readers and `formatStruct`).
//!
//! A message is an optional 4-byte frame length (framed transport), the message header (binary
//! protocol: strict `0x8001 00TT` + name + seqid, or non-strict name + type byte + seqid;
//! compact protocol: `0x82`, version and type, varint seqid, name), then the arguments or result
//! struct up to its STOP byte. The parse ends at that STOP, as Packetbeat's does: the frame
//! length is reported as the message's size, not used to cut the stream.
//!
//! Values are rendered as Packetbeat renders them: structs `(1: v, 2: v)` with at most
//! `collection_max_size` fields, lists `[a, b]`, sets `{a, b}`, maps `{k: v}` (an empty list or
//! set is the empty string, an empty map `{}`), strings Go-quoted (`strconv.Quote`), cut at
//! `string_max_size` bytes with `...`, and written in hex when not UTF-8; `byte`, `i16` and
//! `i32` are printed as unsigned numbers (Packetbeat reads them with `BytesNtohs`/`BytesNtohl`
//! and prints the unsigned result: `testI32(1: 4294967295)` is a -1), `i64` signed, doubles in
//! Go's shortest `'f'` form. The compact protocol, which Packetbeat does not decode, is
//! rendered the same way, so a call reads the same whichever protocol carried it.
//!
//! Parsing resumes where it stopped ([`Partial`]): a large message arriving over many segments
//! is read once, top-level field by top-level field, as Packetbeat's parser does.

use crate::protos::app::Parsed;
use std::fmt::Write;

/// Message types.
pub const CALL: u8 = 1;
pub const REPLY: u8 = 2;
pub const EXCEPTION: u8 = 3;
pub const ONEWAY: u8 = 4;

/// Nesting deeper than this is taken for garbage: Go's growable stacks let Packetbeat follow
/// any depth, a fixed stack cannot.
pub const MAX_DEPTH: usize = 64;

pub const ERR_BAD_STRING: &str = "negative string length";
pub const ERR_BAD_TYPE: &str = "unknown field type";
pub const ERR_TOO_MANY_FIELDS: &str = "too many fields in struct";
pub const ERR_TOO_DEEP: &str = "values nested too deep";
pub const ERR_BAD_COMPACT: &str = "not a compact protocol message";

/// How messages are read and rendered (the section's options).
#[derive(Debug, Clone)]
pub struct Options {
    pub framed: bool,
    pub compact: bool,
    pub string_max_size: usize,
    pub collection_max_size: usize,
    pub drop_after_n_struct_fields: usize,
    pub capture_reply: bool,
    pub obfuscate_strings: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            framed: false,
            compact: false,
            string_max_size: 200,
            collection_max_size: 15,
            drop_after_n_struct_fields: 500,
            capture_reply: true,
            obfuscate_strings: false,
        }
    }
}

/// A message header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub kind: u8,
    pub method: String,
    pub seq_id: u32,
}

impl Header {
    /// Calls and oneway calls are requests; replies and exceptions are not.
    pub fn is_request(&self) -> bool {
        self.kind == CALL || self.kind == ONEWAY
    }
}

/// A top-level field of the message's struct, its value rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub id: u16,
    pub value: String,
}

/// A complete message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub header: Header,
    pub fields: Vec<Field>,
    /// The bytes reported for it: the frame length when framed and not 0, else the bytes parsed.
    pub size: u64,
    /// A reply read only up to its header (`capture_reply: false`).
    pub header_only: bool,
}

/// Where the parse of a direction's next message stands.
#[derive(Debug, Default)]
pub struct Partial {
    /// The header, the frame length, and the offset of the next top-level field.
    started: Option<(Header, Option<u32>, usize)>,
    fields: Vec<Field>,
    /// The compact protocol's last field id (field ids are sent as deltas).
    last_id: i16,
}

impl Partial {
    /// The header and top-level fields of a message begun but not complete.
    pub fn begun(&self) -> Option<(&Header, &[Field])> {
        self.started.as_ref().map(|(h, _, _)| (h, &self.fields[..]))
    }

    /// The message begun, as far as it goes (the whole of it at its STOP, which ends at `end`;
    /// or a reply cut short by a gap, whose end is where its parse stands).
    pub fn take_begun(&mut self, end: usize) -> Option<Message> {
        let (header, frame, _) = self.started.take()?;
        self.last_id = 0;
        Some(Message {
            header,
            fields: std::mem::take(&mut self.fields),
            size: frame.filter(|&f| f != 0).map_or(end as u64, u64::from),
            header_only: false,
        })
    }

    /// Where the parse of the message begun stands.
    pub fn offset(&self) -> usize {
        self.started.as_ref().map_or(0, |s| s.2)
    }
}

/// Why a value could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Incomplete,
    Bad(&'static str),
}

type R<T> = Result<T, Stop>;

/// Parses the message at the start of `data`, resuming from `partial`.
pub fn parse(opts: &Options, partial: &mut Partial, data: &[u8]) -> Parsed<Message> {
    match parse_inner(opts, partial, data) {
        Ok(p) => p,
        Err(Stop::Incomplete) => Parsed::Incomplete,
        Err(Stop::Bad(why)) => {
            *partial = Partial::default();
            Parsed::Error(why)
        }
    }
}

fn parse_inner(opts: &Options, partial: &mut Partial, data: &[u8]) -> R<Parsed<Message>> {
    if partial.started.is_none() {
        let (frame, at) = if opts.framed {
            (Some(be32(data, 0)?), 4)
        } else {
            (None, 0)
        };
        let (header, used) = if opts.compact {
            compact_header(opts, &data[at..])?
        } else {
            binary_header(opts, &data[at..])?
        };
        let offset = at + used;
        partial.fields.clear();
        partial.last_id = 0;
        if !header.is_request() && !opts.capture_reply {
            return Ok(Parsed::Message {
                msg: Message {
                    header,
                    fields: Vec::new(),
                    size: frame.filter(|&f| f != 0).map_or(offset as u64, u64::from),
                    header_only: true,
                },
                consumed: offset,
            });
        }
        partial.started = Some((header, frame, offset));
    }
    loop {
        let offset = partial.started.as_ref().map_or(0, |s| s.2);
        let rest = data.get(offset..).unwrap_or_default();
        if rest.is_empty() {
            return Err(Stop::Incomplete);
        }
        let field = if opts.compact {
            let r = Reader {
                opts,
                wire: Compact,
            };
            r.field(rest, &mut partial.last_id, 0)?
        } else {
            let r = Reader { opts, wire: Binary };
            r.field(rest, &mut partial.last_id, 0)?
        };
        match field {
            None => {
                let msg = partial.take_begun(offset + 1).expect("a message was begun");
                return Ok(Parsed::Message {
                    msg,
                    consumed: offset + 1,
                });
            }
            Some((f, used)) => {
                partial.fields.push(f);
                if let Some(s) = partial.started.as_mut() {
                    s.2 += used;
                }
            }
        }
    }
}

fn be16(d: &[u8], at: usize) -> R<u16> {
    d.get(at..at + 2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .ok_or(Stop::Incomplete)
}

fn be32(d: &[u8], at: usize) -> R<u32> {
    d.get(at..at + 4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or(Stop::Incomplete)
}

fn be64(d: &[u8], at: usize) -> R<u64> {
    d.get(at..at + 8)
        .map(|b| u64::from_be_bytes(b.try_into().expect("8 bytes")))
        .ok_or(Stop::Incomplete)
}

/// A binary-protocol string: its bytes and the bytes used.
fn binary_bytes(d: &[u8]) -> R<(&[u8], usize)> {
    let n = be32(d, 0)?;
    if (n as i32) < 0 {
        return Err(Stop::Bad(ERR_BAD_STRING));
    }
    let body = d.get(4..4 + n as usize).ok_or(Stop::Incomplete)?;
    Ok((body, 4 + body.len()))
}

/// Packetbeat's `readString` cut: at most `string_max_size` bytes, then `...`.
fn cut(opts: &Options, body: &[u8]) -> Vec<u8> {
    if body.len() > opts.string_max_size {
        let mut v = body[..opts.string_max_size].to_vec();
        v.extend_from_slice(b"...");
        v
    } else {
        body.to_vec()
    }
}

/// `readMessageBegin` of the binary protocol.
fn binary_header(opts: &Options, d: &[u8]) -> R<(Header, usize)> {
    if d.len() < 9 {
        return Err(Stop::Incomplete);
    }
    let word = be32(d, 0)?;
    if (word as i32) < 0 {
        // Strict: version and type, name, seqid. The version is not checked, as Packetbeat
        // only logs a version other than 1.
        let (name, used) = binary_bytes(&d[4..])?;
        let at = 4 + used;
        let seq_id = be32(d, at)?;
        Ok((
            Header {
                kind: (word & 0xff) as u8,
                method: String::from_utf8_lossy(&cut(opts, name)).into_owned(),
                seq_id,
            },
            at + 4,
        ))
    } else {
        // Old style: name, type byte, seqid.
        let (name, used) = binary_bytes(d)?;
        if d.len() < used + 5 {
            return Err(Stop::Incomplete);
        }
        let kind = d[used];
        let seq_id = be32(d, used + 1)?;
        Ok((
            Header {
                kind,
                method: String::from_utf8_lossy(&cut(opts, name)).into_owned(),
                seq_id,
            },
            used + 5,
        ))
    }
}

/// An unsigned LEB128 varint of at most `max_bytes` bytes, and the bytes it used.
fn varint(d: &[u8], max_bytes: usize) -> R<(u64, usize)> {
    let mut v = 0u64;
    for i in 0..max_bytes {
        let b = *d.get(i).ok_or(Stop::Incomplete)?;
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((v, i + 1));
        }
    }
    Err(Stop::Bad(ERR_BAD_COMPACT))
}

fn zigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// A compact-protocol length: a varint that must fit a non-negative i32.
fn compact_len(d: &[u8]) -> R<(usize, usize)> {
    let (n, used) = varint(d, 5)?;
    if n > i32::MAX as u64 {
        return Err(Stop::Bad(ERR_BAD_STRING));
    }
    Ok((n as usize, used))
}

/// A compact-protocol string: its bytes and the bytes used.
fn compact_bytes(d: &[u8]) -> R<(&[u8], usize)> {
    let (n, used) = compact_len(d)?;
    let body = d.get(used..used + n).ok_or(Stop::Incomplete)?;
    Ok((body, used + n))
}

/// The compact protocol's message header: `0x82`, version 1 and type, seqid, name.
fn compact_header(opts: &Options, d: &[u8]) -> R<(Header, usize)> {
    if d.len() < 2 {
        return Err(Stop::Incomplete);
    }
    if d[0] != 0x82 || d[1] & 0x1f != 1 {
        return Err(Stop::Bad(ERR_BAD_COMPACT));
    }
    let kind = (d[1] >> 5) & 0x07;
    let (seq, used) = varint(&d[2..], 5)?;
    let at = 2 + used;
    let (name, used) = compact_bytes(&d[at..])?;
    Ok((
        Header {
            kind,
            method: String::from_utf8_lossy(&cut(opts, name)).into_owned(),
            seq_id: seq as u32,
        },
        at + used,
    ))
}

// The binary protocol's type ids.
const T_STOP: u8 = 0;
const T_BOOL: u8 = 2;
const T_BYTE: u8 = 3;
const T_DOUBLE: u8 = 4;
const T_I16: u8 = 6;
const T_I32: u8 = 8;
const T_I64: u8 = 10;
const T_STRING: u8 = 11;
const T_STRUCT: u8 = 12;
const T_MAP: u8 = 13;
const T_SET: u8 = 14;
const T_LIST: u8 = 15;

/// The compact protocol's type ids, as the binary type they stand for (`BOOLEAN_TRUE` and
/// `BOOLEAN_FALSE` are both bool; 13 is UUID, which the binary protocol Packetbeat reads
/// lacks).
fn compact_type(t: u8) -> Option<u8> {
    Some(match t {
        1 | 2 => T_BOOL,
        3 => T_BYTE,
        4 => T_I16,
        5 => T_I32,
        6 => T_I64,
        7 => T_DOUBLE,
        8 => T_STRING,
        9 => T_LIST,
        10 => T_SET,
        11 => T_MAP,
        12 => T_STRUCT,
        _ => return None,
    })
}

/// What differs between the binary and the compact protocol: how field headers, collection
/// headers and scalars are encoded. Types are the binary protocol's ids on both.
trait Wire {
    /// A field header: `None` at STOP. `last_id` is the struct's previous field id (the compact
    /// protocol sends deltas).
    fn field(&self, d: &[u8], last_id: i16) -> R<Option<FieldHead>>;
    /// A list or set header: element type, count, bytes used.
    fn collection(&self, d: &[u8]) -> R<(u8, usize, usize)>;
    /// A map header: key type, value type, count, bytes used.
    fn map(&self, d: &[u8]) -> R<(u8, u8, usize, usize)>;
    /// A scalar of type `t` (bool as a collection element), rendered; the bytes it used, and
    /// its bytes when it is a string.
    fn scalar<'d>(&self, t: u8, d: &'d [u8], out: &mut String) -> R<(usize, Option<&'d [u8]>)>;
}

struct FieldHead {
    t: u8,
    id: u16,
    used: usize,
    /// A compact bool field's value, carried in its type.
    inline: Option<bool>,
}

struct Binary;
struct Compact;

impl Wire for Binary {
    fn field(&self, d: &[u8], _: i16) -> R<Option<FieldHead>> {
        let t = *d.first().ok_or(Stop::Incomplete)?;
        if t == T_STOP {
            return Ok(None);
        }
        let id = be16(d, 1)?;
        if !known(t) {
            return Err(Stop::Bad(ERR_BAD_TYPE));
        }
        Ok(Some(FieldHead {
            t,
            id,
            used: 3,
            inline: None,
        }))
    }

    fn collection(&self, d: &[u8]) -> R<(u8, usize, usize)> {
        if d.len() < 5 {
            return Err(Stop::Incomplete);
        }
        if !known(d[0]) {
            return Err(Stop::Bad(ERR_BAD_TYPE));
        }
        Ok((d[0], be32(d, 1)? as usize, 5))
    }

    fn map(&self, d: &[u8]) -> R<(u8, u8, usize, usize)> {
        if d.len() < 6 {
            return Err(Stop::Incomplete);
        }
        if !known(d[0]) || !known(d[1]) {
            return Err(Stop::Bad(ERR_BAD_TYPE));
        }
        Ok((d[0], d[1], be32(d, 2)? as usize, 6))
    }

    fn scalar<'d>(&self, t: u8, d: &'d [u8], out: &mut String) -> R<(usize, Option<&'d [u8]>)> {
        let used = match t {
            T_BOOL => {
                let b = *d.first().ok_or(Stop::Incomplete)?;
                out.push_str(if b == 0 { "false" } else { "true" });
                1
            }
            T_BYTE => {
                let _ = write!(out, "{}", *d.first().ok_or(Stop::Incomplete)?);
                1
            }
            T_DOUBLE => {
                push_double(out, f64::from_bits(be64(d, 0)?));
                8
            }
            T_I16 => {
                let _ = write!(out, "{}", be16(d, 0)?);
                2
            }
            T_I32 => {
                let _ = write!(out, "{}", be32(d, 0)?);
                4
            }
            T_I64 => {
                let _ = write!(out, "{}", be64(d, 0)? as i64);
                8
            }
            T_STRING => {
                let (body, used) = binary_bytes(d)?;
                return Ok((used, Some(body)));
            }
            _ => return Err(Stop::Bad(ERR_BAD_TYPE)),
        };
        Ok((used, None))
    }
}

impl Wire for Compact {
    fn field(&self, d: &[u8], last_id: i16) -> R<Option<FieldHead>> {
        let b = *d.first().ok_or(Stop::Incomplete)?;
        if b == 0 {
            return Ok(None);
        }
        let (id, used) = match b >> 4 {
            0 => {
                let (v, n) = varint(&d[1..], 3)?;
                (zigzag(v) as i16, 1 + n)
            }
            delta => (last_id.wrapping_add(i16::from(delta)), 1),
        };
        let ct = b & 0x0f;
        let t = compact_type(ct).ok_or(Stop::Bad(ERR_BAD_TYPE))?;
        Ok(Some(FieldHead {
            t,
            // Printed as the binary protocol's unsigned id.
            id: id as u16,
            used,
            inline: (t == T_BOOL).then_some(ct == 1),
        }))
    }

    fn collection(&self, d: &[u8]) -> R<(u8, usize, usize)> {
        let b = *d.first().ok_or(Stop::Incomplete)?;
        let et = compact_type(b & 0x0f).ok_or(Stop::Bad(ERR_BAD_TYPE))?;
        if b >> 4 == 0x0f {
            let (n, used) = compact_len(&d[1..])?;
            Ok((et, n, 1 + used))
        } else {
            Ok((et, usize::from(b >> 4), 1))
        }
    }

    fn map(&self, d: &[u8]) -> R<(u8, u8, usize, usize)> {
        let (n, used) = compact_len(d)?;
        if n == 0 {
            // An empty map has no types byte.
            return Ok((T_BOOL, T_BOOL, 0, used));
        }
        let b = *d.get(used).ok_or(Stop::Incomplete)?;
        let kt = compact_type(b >> 4).ok_or(Stop::Bad(ERR_BAD_TYPE))?;
        let vt = compact_type(b & 0x0f).ok_or(Stop::Bad(ERR_BAD_TYPE))?;
        Ok((kt, vt, n, used + 1))
    }

    fn scalar<'d>(&self, t: u8, d: &'d [u8], out: &mut String) -> R<(usize, Option<&'d [u8]>)> {
        let int = |max: usize| varint(d, max).map(|(v, n)| (zigzag(v), n));
        let used = match t {
            T_BOOL => {
                // In a collection: 1 is true.
                let b = *d.first().ok_or(Stop::Incomplete)?;
                out.push_str(if b == 1 { "true" } else { "false" });
                1
            }
            T_BYTE => {
                let _ = write!(out, "{}", *d.first().ok_or(Stop::Incomplete)?);
                1
            }
            T_DOUBLE => {
                let b = d.get(..8).ok_or(Stop::Incomplete)?;
                push_double(out, f64::from_le_bytes(b.try_into().expect("8 bytes")));
                8
            }
            // As the binary protocol's are printed: i16 and i32 unsigned.
            T_I16 => {
                let (v, n) = int(3)?;
                let _ = write!(out, "{}", v as i16 as u16);
                n
            }
            T_I32 => {
                let (v, n) = int(5)?;
                let _ = write!(out, "{}", v as i32 as u32);
                n
            }
            T_I64 => {
                let (v, n) = int(10)?;
                let _ = write!(out, "{v}");
                n
            }
            T_STRING => {
                let (body, used) = compact_bytes(d)?;
                return Ok((used, Some(body)));
            }
            _ => return Err(Stop::Bad(ERR_BAD_TYPE)),
        };
        Ok((used, None))
    }
}

/// The value renderer, one for both protocols.
struct Reader<'a, W> {
    opts: &'a Options,
    wire: W,
}

impl<W: Wire> Reader<'_, W> {
    /// A top-level or struct field: `None` at STOP, else the field and the bytes it used.
    fn field(&self, d: &[u8], last_id: &mut i16, depth: usize) -> R<Option<(Field, usize)>> {
        let Some(h) = self.wire.field(d, *last_id)? else {
            return Ok(None);
        };
        let mut value = String::new();
        let used = match h.inline {
            Some(b) => {
                value.push_str(if b { "true" } else { "false" });
                0
            }
            None => self.value(h.t, &d[h.used..], depth, &mut value)?,
        };
        // Committed only once the whole field is read: an incomplete one is read again.
        *last_id = h.id as i16;
        Ok(Some((Field { id: h.id, value }, h.used + used)))
    }

    /// One value of type `t`, rendered into `out`; the bytes it used.
    fn value(&self, t: u8, d: &[u8], depth: usize, out: &mut String) -> R<usize> {
        if depth > MAX_DEPTH {
            return Err(Stop::Bad(ERR_TOO_DEEP));
        }
        let rest = |at: usize| d.get(at..).unwrap_or_default();
        match t {
            T_LIST | T_SET => {
                let (et, n, mut at) = self.wire.collection(d)?;
                let mut items = String::new();
                for i in 0..n {
                    let mut v = String::new();
                    at += self.value(et, rest(at), depth + 1, &mut v)?;
                    self.collect(&mut items, i, &v);
                }
                // An empty list or set renders as nothing at all, as in Packetbeat.
                if !items.is_empty() {
                    let (open, close) = if t == T_LIST { ('[', ']') } else { ('{', '}') };
                    out.push(open);
                    out.push_str(&items);
                    out.push(close);
                }
                Ok(at)
            }
            T_MAP => {
                let (kt, vt, n, mut at) = self.wire.map(d)?;
                let mut items = String::new();
                for i in 0..n {
                    let mut kv = String::new();
                    at += self.value(kt, rest(at), depth + 1, &mut kv)?;
                    kv.push_str(": ");
                    at += self.value(vt, rest(at), depth + 1, &mut kv)?;
                    self.collect(&mut items, i, &kv);
                }
                out.push('{');
                out.push_str(&items);
                out.push('}');
                Ok(at)
            }
            T_STRUCT => {
                let mut fields = Vec::new();
                let mut at = 0;
                let mut last_id = 0;
                for i in 0.. {
                    if i >= self.opts.drop_after_n_struct_fields {
                        return Err(Stop::Bad(ERR_TOO_MANY_FIELDS));
                    }
                    match self.field(rest(at), &mut last_id, depth + 1)? {
                        None => break,
                        Some((f, used)) => {
                            fields.push(f);
                            at += used;
                        }
                    }
                }
                format_struct(&fields, &[], self.opts.collection_max_size, out);
                Ok(at + 1)
            }
            _ => {
                let (used, string) = self.wire.scalar(t, d, out)?;
                if let Some(s) = string {
                    self.quote(&cut(self.opts, s), out);
                }
                Ok(used)
            }
        }
    }

    /// Adds the `i`-th item of a collection: the first `collection_max_size`, then `...` once.
    fn collect(&self, items: &mut String, i: usize, v: &str) {
        let max = self.opts.collection_max_size;
        if i > max {
            return;
        }
        if i > 0 {
            items.push_str(", ");
        }
        items.push_str(if i < max { v } else { "..." });
    }

    /// Packetbeat's `readAndQuoteString`.
    fn quote(&self, s: &[u8], out: &mut String) {
        if s.is_empty() {
            out.push_str("\"\"");
        } else if self.opts.obfuscate_strings {
            out.push_str("\"*\"");
        } else {
            match std::str::from_utf8(s) {
                Ok(s) => go_quote(s, out),
                Err(_) => {
                    for b in s {
                        let _ = write!(out, "{b:02x}");
                    }
                }
            }
        }
    }
}

fn known(t: u8) -> bool {
    matches!(
        t,
        T_BOOL
            | T_BYTE
            | T_DOUBLE
            | T_I16
            | T_I32
            | T_I64
            | T_STRING
            | T_STRUCT
            | T_MAP
            | T_SET
            | T_LIST
    )
}

/// Packetbeat's `formatStruct`: `(id: value, ...)`, at most `max` fields then `...`, a field
/// named from `names` (indexed by id) when it has a name there.
pub fn format_struct(fields: &[Field], names: &[Option<String>], max: usize, out: &mut String) {
    out.push('(');
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        if i == max {
            out.push_str("...");
            break;
        }
        match names.get(usize::from(f.id)).and_then(Option::as_ref) {
            Some(name) => out.push_str(name),
            None => {
                let _ = write!(out, "{}", f.id);
            }
        }
        out.push_str(": ");
        out.push_str(&f.value);
    }
    out.push(')');
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`: the shortest digits that read back as `v`,
/// never an exponent.
fn push_double(out: &mut String, v: f64) {
    if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        // Rust's `Display` for f64 is the shortest round-trip form without an exponent.
        let _ = write!(out, "{v}");
    }
}

/// Go's `strconv.Quote` for valid UTF-8.
pub fn go_quote(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if is_go_print(c) => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
}

/// Go's `unicode.IsPrint`: letters, marks, numbers, punctuation, symbols and the ASCII space.
/// Beyond ASCII this approximates the Unicode tables: control, space, format, private-use and
/// noncharacter code points are not printable.
fn is_go_print(c: char) -> bool {
    let u = c as u32;
    if u < 0x80 {
        return (0x20..0x7f).contains(&u);
    }
    !(c.is_control()
        || c.is_whitespace()
        || matches!(u, 0xad | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x180e | 0x200b..=0x200f
            | 0x202a..=0x202e | 0x2060..=0x206f | 0xfeff | 0xfff9..=0xfffb | 0xe000..=0xf8ff
            | 0xfdd0..=0xfdef | 0xf0000..=0x10ffff | 0xe0000..=0xe007f)
        || u & 0xfffe == 0xfffe)
}
