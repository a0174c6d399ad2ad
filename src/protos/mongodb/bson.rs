//! A small BSON reader that yields what Packetbeat's `bson.Unmarshal` into a `bson.M` yields,
//! and a writer of the JSON Go's `encoding/json` makes of it (`doc2str`).
//!
//! Why not the `bson` crate: Packetbeat's output is Go's JSON of mongo-driver's Go types, not
//! MongoDB Extended JSON. Documents are Go maps (keys sorted bytewise, a repeated key keeps its
//! last value), binary data is `{"Subtype":0,"Data":"<base64>"}`, a timestamp `{"T":…,"I":…}`,
//! an ObjectId its hex string, a date Go's RFC 3339 time, a regex `{"Pattern":…,"Options":…}`,
//! doubles are formatted as Go formats floats, strings escaped as Go escapes them (`<` as
//! `\u003c`…). Mapping the crate's types to that would be as long as this reader, which also
//! borrows nothing and never panics.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// A document as Packetbeat holds it: a Go map.
pub type Doc = BTreeMap<Vec<u8>, Value>;

/// Documents deeper than this are refused (Go recurses without a limit; a reader that must not
/// overflow its stack cannot).
pub const MAX_DEPTH: usize = 256;

/// A BSON value, as mongo-driver decodes it into an `interface{}`.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Double(f64),
    Str(Vec<u8>),
    Doc(Doc),
    Array(Vec<Value>),
    Binary {
        subtype: u8,
        data: Vec<u8>,
    },
    Undefined,
    ObjectId([u8; 12]),
    Bool(bool),
    DateTime(i64),
    Null,
    Regex {
        pattern: Vec<u8>,
        options: Vec<u8>,
    },
    DbPointer {
        db: Vec<u8>,
        id: [u8; 12],
    },
    JavaScript(Vec<u8>),
    Symbol(Vec<u8>),
    /// The scope is a `primitive.D` in mongo-driver (an ordered list), whatever the
    /// document type around it: its elements in wire order.
    CodeWithScope {
        code: Vec<u8>,
        scope: Vec<(Vec<u8>, Value)>,
    },
    Int32(i32),
    Timestamp {
        t: u32,
        i: u32,
    },
    Int64(i64),
    Decimal128([u8; 16]),
    MinKey,
    MaxKey,
}

/// Why a document did not decode.
pub type Error = &'static str;

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let end = self.pos.checked_add(n).ok_or("length overflow")?;
        let s = self.data.get(self.pos..end).ok_or("truncated document")?;
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.take(1)?[0])
    }

    fn i32(&mut self) -> Result<i32, Error> {
        let b = self.take(4)?;
        Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn i64(&mut self) -> Result<i64, Error> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_le_bytes(a))
    }

    fn cstr(&mut self) -> Result<Vec<u8>, Error> {
        let rest = self.data.get(self.pos..).unwrap_or(&[]);
        let n = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or("unterminated cstring")?;
        let s = rest[..n].to_vec();
        self.pos += n + 1;
        Ok(s)
    }

    /// A BSON string: int32 length (with the NUL), bytes, NUL.
    fn string(&mut self) -> Result<Vec<u8>, Error> {
        let n = self.i32()?;
        if n < 1 {
            return Err("invalid string length");
        }
        let s = self.take(n as usize)?;
        let (last, body) = s.split_last().ok_or("invalid string length")?;
        if *last != 0 {
            return Err("string not NUL-terminated");
        }
        Ok(body.to_vec())
    }

    fn oid(&mut self) -> Result<[u8; 12], Error> {
        let mut id = [0u8; 12];
        id.copy_from_slice(self.take(12)?);
        Ok(id)
    }
}

/// Decodes one whole document: `data` is exactly the document's bytes.
pub fn parse_document(data: &[u8]) -> Result<Doc, Error> {
    let mut r = Reader { data, pos: 0 };
    let doc = read_doc(&mut r, 0)?;
    if r.pos != data.len() {
        return Err("document length mismatch");
    }
    Ok(doc)
}

/// The elements of the document at the reader, as (key, value) in wire order.
fn read_elements(r: &mut Reader, depth: usize) -> Result<Vec<(Vec<u8>, Value)>, Error> {
    if depth > MAX_DEPTH {
        return Err("document nested too deeply");
    }
    let start = r.pos;
    let len = r.i32()?;
    if len < 5 {
        return Err("invalid document length");
    }
    let end = start
        .checked_add(len as usize)
        .filter(|&e| e <= r.data.len())
        .ok_or("document out of bounds")?;
    // The elements are read within the document's own bytes.
    let mut inner = Reader {
        data: &r.data[..end],
        pos: r.pos,
    };
    let mut out = Vec::new();
    loop {
        let tag = inner.u8()?;
        if tag == 0 {
            break;
        }
        let key = inner.cstr()?;
        let v = read_value(&mut inner, tag, depth)?;
        out.push((key, v));
    }
    if inner.pos != end {
        return Err("document length mismatch");
    }
    r.pos = end;
    Ok(out)
}

fn read_doc(r: &mut Reader, depth: usize) -> Result<Doc, Error> {
    Ok(read_elements(r, depth)?.into_iter().collect())
}

fn read_value(r: &mut Reader, tag: u8, depth: usize) -> Result<Value, Error> {
    Ok(match tag {
        0x01 => Value::Double(f64::from_bits(r.i64()? as u64)),
        0x02 => Value::Str(r.string()?),
        0x03 => Value::Doc(read_doc(r, depth + 1)?),
        0x04 => Value::Array(
            read_elements(r, depth + 1)?
                .into_iter()
                .map(|(_, v)| v)
                .collect(),
        ),
        0x05 => {
            let n = r.i32()?;
            if n < 0 {
                return Err("invalid binary length");
            }
            let subtype = r.u8()?;
            let mut data = r.take(n as usize)?;
            if subtype == 0x02 {
                // The old binary subtype repeats the length inside the data.
                let inner = data.get(..4).ok_or("invalid binary subtype 2")?;
                let m = i32::from_le_bytes([inner[0], inner[1], inner[2], inner[3]]);
                if m < 0 || m as usize != data.len() - 4 {
                    return Err("invalid binary subtype 2");
                }
                data = &data[4..];
            }
            Value::Binary {
                subtype,
                data: data.to_vec(),
            }
        }
        0x06 => Value::Undefined,
        0x07 => Value::ObjectId(r.oid()?),
        0x08 => match r.u8()? {
            0 => Value::Bool(false),
            1 => Value::Bool(true),
            _ => return Err("invalid boolean"),
        },
        0x09 => Value::DateTime(r.i64()?),
        0x0A => Value::Null,
        0x0B => Value::Regex {
            pattern: r.cstr()?,
            options: r.cstr()?,
        },
        0x0C => Value::DbPointer {
            db: r.string()?,
            id: r.oid()?,
        },
        0x0D => Value::JavaScript(r.string()?),
        0x0E => Value::Symbol(r.string()?),
        0x0F => {
            let start = r.pos;
            let total = r.i32()?;
            let code = r.string()?;
            let scope = read_elements(r, depth + 1)?;
            if total < 0 || r.pos - start != total as usize {
                return Err("invalid code with scope length");
            }
            Value::CodeWithScope { code, scope }
        }
        0x10 => Value::Int32(r.i32()?),
        0x11 => {
            let i = r.i32()? as u32;
            let t = r.i32()? as u32;
            Value::Timestamp { t, i }
        }
        0x12 => Value::Int64(r.i64()?),
        0x13 => {
            let mut d = [0u8; 16];
            d.copy_from_slice(r.take(16)?);
            Value::Decimal128(d)
        }
        0xFF => Value::MinKey,
        0x7F => Value::MaxKey,
        _ => return Err("unknown element type"),
    })
}

/// Go's `json.Marshal` of a document; `None` where Go fails (a NaN or infinite double, a date
/// outside years 0–9999).
pub fn doc_to_json(doc: &Doc) -> Option<String> {
    let mut out = String::new();
    write_doc(&mut out, doc.iter().map(|(k, v)| (k.as_slice(), v)))?;
    Some(out)
}

/// Go's JSON of a single value (`doc2str` of `$err` or `writeErrors`).
pub fn value_to_json(v: &Value) -> Option<String> {
    let mut out = String::new();
    write_value(&mut out, v)?;
    Some(out)
}

/// A Go map of the given (sorted, unique) entries.
pub fn write_doc<'a>(
    out: &mut String,
    entries: impl Iterator<Item = (&'a [u8], &'a Value)>,
) -> Option<()> {
    out.push('{');
    for (i, (k, v)) in entries.enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_go_str(out, k);
        out.push(':');
        write_value(out, v)?;
    }
    out.push('}');
    Some(())
}

fn write_value(out: &mut String, v: &Value) -> Option<()> {
    match v {
        Value::Double(f) => write_go_float(out, *f)?,
        Value::Str(s) | Value::JavaScript(s) | Value::Symbol(s) => write_go_str(out, s),
        Value::Doc(d) => write_doc(out, d.iter().map(|(k, v)| (k.as_slice(), v)))?,
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item)?;
            }
            out.push(']');
        }
        Value::Binary { subtype, data } => {
            use base64::Engine as _;
            let _ = write!(out, "{{\"Subtype\":{subtype},\"Data\":\"");
            out.push_str(&base64::engine::general_purpose::STANDARD.encode(data));
            out.push_str("\"}");
        }
        Value::Undefined | Value::MinKey | Value::MaxKey => out.push_str("{}"),
        Value::ObjectId(id) => {
            out.push('"');
            out.push_str(&hex::encode(id));
            out.push('"');
        }
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::DateTime(ms) => {
            out.push('"');
            write_go_time(out, *ms)?;
            out.push('"');
        }
        Value::Null => out.push_str("null"),
        Value::Regex { pattern, options } => {
            out.push_str("{\"Pattern\":");
            write_go_str(out, pattern);
            out.push_str(",\"Options\":");
            write_go_str(out, options);
            out.push('}');
        }
        Value::DbPointer { db, id } => {
            out.push_str("{\"DB\":");
            write_go_str(out, db);
            let _ = write!(out, ",\"Pointer\":\"{}\"}}", hex::encode(id));
        }
        Value::CodeWithScope { code, scope } => {
            out.push_str("{\"Code\":");
            write_go_str(out, code);
            out.push_str(",\"Scope\":");
            // Go's JSON of a `primitive.D`: `[{"Key":…,"Value":…},…]`.
            out.push('[');
            for (i, (k, v)) in scope.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"Key\":");
                write_go_str(out, k);
                out.push_str(",\"Value\":");
                write_value(out, v)?;
                out.push('}');
            }
            out.push(']');
            out.push('}');
        }
        Value::Int32(n) => {
            let _ = write!(out, "{n}");
        }
        Value::Int64(n) => {
            let _ = write!(out, "{n}");
        }
        Value::Timestamp { t, i } => {
            let _ = write!(out, "{{\"T\":{t},\"I\":{i}}}");
        }
        Value::Decimal128(d) => {
            out.push('"');
            write_decimal128(out, d);
            out.push('"');
        }
    }
    Some(())
}

/// A string as Go's JSON encoder writes it: HTML characters and U+2028/U+2029 escaped, each
/// byte of invalid UTF-8 as the six characters `\ufffd` (Go writes the escape, not the rune).
pub fn write_go_str(out: &mut String, s: &[u8]) {
    out.push('"');
    for chunk in s.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c if (c as u32) < 0x20 => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c => out.push(c),
            }
        }
        for _ in chunk.invalid() {
            out.push_str("\\ufffd");
        }
    }
    out.push('"');
}

/// A float64 as Go's JSON encoder writes it (`strconv` shortest form, exponent form below 1e-6
/// and from 1e21 on, `e-07` cleaned to `e-7`). NaN and infinities are errors in Go.
fn write_go_float(out: &mut String, f: f64) -> Option<()> {
    if !f.is_finite() {
        return None;
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = format!("{f:e}");
        // Rust writes `1e21` and `1.5e-7`; Go `1e+21` and `1.5e-7`.
        match s.split_once('e') {
            Some((m, e)) if !e.starts_with('-') => {
                let _ = write!(out, "{m}e+{e}");
            }
            _ => out.push_str(&s),
        }
    } else {
        let _ = write!(out, "{f}");
    }
    Some(())
}

/// A BSON date (ms since the epoch) as Go's `time.Time` JSON in UTC: RFC 3339 with the
/// fraction's trailing zeros trimmed. Go refuses years outside 0–9999.
fn write_go_time(out: &mut String, ms: i64) -> Option<()> {
    let secs = ms.div_euclid(1000);
    let frac = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        return None;
    }
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    );
    if frac != 0 {
        let f = format!("{frac:03}");
        out.push('.');
        out.push_str(f.trim_end_matches('0'));
    }
    out.push('Z');
    Some(())
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A decimal128 as its string: mongo-driver's `Decimal128.MarshalJSON` writes `String()`, whose
/// algorithm (from mgo) is followed here step by step, since it differs from the BSON
/// specification's (`-0`, `1.050E+3`, `0.00123400`, no canonical-range check).
fn write_decimal128(out: &mut String, d: &[u8; 16]) {
    let bits = u128::from_le_bytes(*d);
    let h = (bits >> 64) as u64;
    let pos_sign = usize::from(h >> 63 & 1 == 0);
    match h >> 58 & 0x1F {
        0x1F => return out.push_str("NaN"),
        0x1E => return out.push_str(&"-Infinity"[pos_sign..]),
        _ => {}
    }
    let (mut exp, mut v) = if h >> 61 & 3 == 3 {
        // Out of range by the specification: the significand reads as zero.
        ((h >> 47 & 0x3FFF) as i64, 0u128)
    } else {
        ((h >> 49 & 0x3FFF) as i64, bits & ((1u128 << 113) - 1))
    };
    exp -= 6176;
    if v == 0 && exp == 0 {
        return out.push_str(&"-0"[pos_sign..]);
    }
    // Nine digits at a time, written backwards; at most 45 digits, a dot and a sign.
    const N: i64 = 48;
    let mut repr = [0u8; N as usize];
    let (mut last, mut i, mut dot) = (N, N, N + exp);
    let mut put = |at: i64, c: u8| {
        if let Some(slot) = usize::try_from(at).ok().and_then(|a| repr.get_mut(a)) {
            *slot = c;
        }
    };
    'digits: for _ in 0..5 {
        let mut rem = (v % 1_000_000_000) as u32;
        v /= 1_000_000_000;
        for _ in 0..9 {
            if i < N && (dot == i || v == 0 && rem > 0 && rem < 10 && (dot < i - 6 || exp > 0)) {
                exp += N - i;
                i -= 1;
                put(i, b'.');
                last = i - 1;
                dot = N;
            }
            let c = b'0' + (rem % 10) as u8;
            rem /= 10;
            i -= 1;
            put(i, c);
            if v == 0 && rem == 0 && i == N - 1 && (dot < i - 5 || exp > 0) {
                last = i;
                break 'digits;
            }
            if c != b'0' {
                last = i;
            }
            if dot > i && v == 0 && rem == 0 {
                break 'digits;
            }
        }
    }
    last -= 1;
    put(last, b'-');
    let from = usize::try_from(last).unwrap_or(0) + pos_sign;
    out.push_str(std::str::from_utf8(repr.get(from..).unwrap_or(&[])).unwrap_or(""));
    match exp {
        e if e > 0 => {
            let _ = write!(out, "E+{e}");
        }
        e if e < 0 => {
            let _ = write!(out, "E{e}");
        }
        _ => {}
    }
}
