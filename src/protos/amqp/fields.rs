//! AMQP field tables and arrays (`amqp_fields.go`): the `arguments` of declare, bind and
//! consume methods, the server and client properties of connection.start(-ok), and the
//! `headers` property of a content header, decoded into the JSON values Packetbeat writes.
//!
//! The reads follow Packetbeat's offsets: where its Go code would index past the end of the
//! frame (a panic that Packetbeat recovers from by dropping the connection's parser state)
//! the result is [`TableError::Panic`]; where it reports an error, [`TableError::Invalid`].

use serde_json::{Map, Value};

/// Why a table did not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableError {
    /// Packetbeat's `err`: a size past the end, an unknown field type.
    Invalid,
    /// Packetbeat would index past the end of the frame (a recovered panic).
    Panic,
}

/// Nesting deeper than this is refused as invalid (Packetbeat recurses without a limit; a
/// 10 MiB frame of nested tables must not exhaust this thread's stack).
const MAX_DEPTH: usize = 64;

/// The layout of timestamps (Go's `January _2 15:04:05 2006`, in UTC).
pub fn format_timestamp(secs: i64) -> String {
    use crate::common::time::MONTH_NAMES as MONTHS;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Days to a civil date (H. Hinnant's algorithm), in i64 throughout.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let year = if year < 0 {
        format!("-{:04}", year.unsigned_abs())
    } else {
        format!("{year:04}")
    };
    format!(
        "{} {:>2} {:02}:{:02}:{:02} {}",
        MONTHS[(month - 1) as usize],
        day,
        sod / 3600,
        sod % 3600 / 60,
        sod % 60,
        year
    )
}

/// Bytes as Packetbeat's `bodyToByteArray` writes them: `[1, 2, 3]`.
fn byte_array(data: &[u8]) -> String {
    let mut s = String::with_capacity(data.len() * 4 + 2);
    s.push('[');
    for (i, b) in data.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(itoa::Buffer::new().format(*b));
    }
    s.push(']');
    s
}

/// A float32 as Go's JSON encoder writes it (its shortest decimal form, not the f64 widening).
fn f32_value(v: f32) -> Value {
    v.to_string()
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

fn f64_value(v: f64) -> Value {
    serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
}

fn slice(data: &[u8], from: usize, len: usize) -> Result<&[u8], TableError> {
    data.get(from..from.checked_add(len).ok_or(TableError::Panic)?)
        .ok_or(TableError::Panic)
}

fn byte(data: &[u8], at: usize) -> Result<u8, TableError> {
    data.get(at).copied().ok_or(TableError::Panic)
}

fn be<const N: usize>(data: &[u8], at: usize) -> Result<[u8; N], TableError> {
    let s = slice(data, at, N)?;
    let mut a = [0u8; N];
    a.copy_from_slice(s);
    Ok(a)
}

/// Packetbeat's `getShortString`: `len` bytes from `start`; a zero length is an empty string
/// wherever `start` is. `None`: not that many bytes (its `err`).
pub fn short_string(data: &[u8], start: usize, len: usize) -> Option<(String, usize)> {
    if len == 0 {
        return Some((String::new(), start));
    }
    let s = data.get(start..)?.get(..len)?;
    Some((String::from_utf8_lossy(s).into_owned(), start + len))
}

/// Packetbeat's `getTable`: the table whose 4-byte size is at `offset`. Returns where the
/// next value starts and the table's members (`None` for an empty table: Packetbeat then
/// leaves the field out).
pub fn get_table(
    data: &[u8],
    offset: usize,
) -> Result<(usize, Option<Map<String, Value>>), TableError> {
    table_at(data, offset, 0, true)
}

fn table_at(
    data: &[u8],
    offset: usize,
    depth: usize,
    named: bool,
) -> Result<(usize, Option<Map<String, Value>>), TableError> {
    let length = u32::from_be_bytes(be::<4>(data, offset)?) as usize;
    let rest = &data[offset + 4..];
    if length > rest.len() {
        return Err(TableError::Invalid);
    }
    let mut members = None;
    if length > 0 {
        if depth >= MAX_DEPTH {
            return Err(TableError::Invalid);
        }
        let mut m = Map::new();
        unmarshal(&mut m, &rest[..length], named, depth)?;
        members = Some(m);
    }
    Ok((offset + 4 + length, members))
}

/// Packetbeat's `fieldUnmarshal`: the members of a table (`named`: each has a short-string
/// name) or of an array (named by their index).
fn unmarshal(
    table: &mut Map<String, Value>,
    data: &[u8],
    named: bool,
    depth: usize,
) -> Result<(), TableError> {
    let mut offset = 0usize;
    let mut index = 0usize;
    while offset < data.len() {
        let name = if named {
            let len = data[offset] as usize;
            let (name, next) = short_string(data, offset + 1, len).ok_or(TableError::Invalid)?;
            offset = next;
            name
        } else {
            index += 1;
            (index - 1).to_string()
        };
        let at = offset + 1;
        let (value, next) = match byte(data, offset)? {
            b't' => (Value::Bool(byte(data, at)? == 1), at + 1),
            b'b' => (Value::from(byte(data, at)? as i8), at + 1),
            b'B' => (Value::from(byte(data, at)?), at + 1),
            b'U' => (Value::from(i16::from_be_bytes(be(data, at)?)), at + 2),
            b'u' => (Value::from(u16::from_be_bytes(be(data, at)?)), at + 2),
            // A signed long (Packetbeat reads it unsigned: -1 would be 4294967295).
            b'I' => (Value::from(i32::from_be_bytes(be(data, at)?)), at + 4),
            b'i' => (Value::from(u32::from_be_bytes(be(data, at)?)), at + 4),
            b'L' => (Value::from(i64::from_be_bytes(be(data, at)?)), at + 8),
            b'l' => (Value::from(u64::from_be_bytes(be(data, at)?)), at + 8),
            b'f' => (f32_value(f32::from_be_bytes(be(data, at)?)), at + 4),
            b'd' => (f64_value(f64::from_be_bytes(be(data, at)?)), at + 8),
            b'D' => {
                let scale = byte(data, at)? as usize;
                let digits = u32::from_be_bytes(be(data, at + 1)?).to_string();
                let mut s = String::with_capacity(digits.len() + 1);
                for (i, c) in digits.chars().enumerate() {
                    if digits.len().checked_sub(scale) == Some(i) {
                        s.push('.');
                    }
                    s.push(c);
                }
                (Value::String(s), at + 5)
            }
            b's' => {
                let len = byte(data, at)? as usize;
                let (s, next) = short_string(data, at + 1, len).ok_or(TableError::Invalid)?;
                (Value::String(s), next)
            }
            b'S' => {
                let len = u32::from_be_bytes(be(data, at)?) as usize;
                let (s, next) = short_string(data, at + 4, len).ok_or(TableError::Invalid)?;
                (Value::String(s), next)
            }
            b'A' | b'F' => {
                let (next, members) = table_at(data, at, depth + 1, data[offset] == b'F')?;
                (Value::Object(members.unwrap_or_default()), next)
            }
            b'T' => {
                let secs = i64::from_be_bytes(be(data, at)?);
                (Value::String(format_timestamp(secs)), at + 8)
            }
            b'V' => (Value::Null, at),
            // RabbitMQ's byte array: its bytes (Packetbeat prints the 4 bytes that follow the
            // size's offset moved by the size instead, a slip that shows no real content).
            b'x' => {
                let size = u32::from_be_bytes(be(data, at)?) as usize;
                let bytes = slice(data, at + 4, size)?;
                (Value::String(byte_array(bytes)), at + 4 + size)
            }
            _ => return Err(TableError::Invalid),
        };
        table.insert(name, value);
        offset = next;
    }
    Ok(())
}
