//! PostgreSQL wire protocol (version 3) messages, parsed incrementally by pure functions.
//!
//! Every message but the first ones a client sends is a type byte, a big-endian length that
//! counts itself and the body, and the body. The client opens with untyped messages: a
//! length, a 32-bit code and a body (StartupMessage, SSLRequest, GSSENCRequest,
//! CancelRequest); their first byte is always 0, which no typed message starts with, so they
//! are told apart by their first byte wherever they appear. A server answers an SSLRequest or
//! a GSSENCRequest with a single byte (`S`/`G` accepted, `N` refused), which only the
//! connection knows to expect, so it is an argument of [`parse_backend`].
//!
//! [`parse_frontend`] and [`parse_backend`] decode the message at the start of the bytes they
//! are given and borrow from them. A message longer than `limit` is not buffered: it is
//! reported as [`Frontend::Oversized`] / [`Backend::Oversized`] as soon as its header is in,
//! and the caller skips the rest of its bytes as they arrive.

use crate::protos::app::Parsed;

/// The longest length field PostgreSQL itself accepts (`PQ_LARGE_MESSAGE_LIMIT`, 1 GiB - 1):
/// anything longer is not this protocol.
pub const MAX_MESSAGE_LEN: usize = 0x3FFF_FFFF;
/// The longest startup packet a server accepts (`MAX_STARTUP_PACKET_LENGTH`).
pub const MAX_STARTUP_LEN: usize = 10_000;

const SSL_REQUEST_CODE: u32 = 80_877_103;
const GSSENC_REQUEST_CODE: u32 = 80_877_104;
const CANCEL_REQUEST_CODE: u32 = 80_877_102;

pub const ERR_BAD_TYPE: &str = "invalid pgsql message type";
pub const ERR_BAD_LENGTH: &str = "invalid pgsql message length";
pub const ERR_BAD_STARTUP: &str = "invalid pgsql startup packet";
pub const ERR_BAD_STRING: &str = "invalid pgsql string";
pub const ERR_BAD_FIELDS: &str = "invalid pgsql row description";
pub const ERR_BAD_ROW: &str = "invalid pgsql data row";

/// Which negotiation a client asked for with its untyped request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Negotiation {
    Ssl,
    GssEnc,
}

/// A message from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frontend<'a> {
    /// StartupMessage (protocol 3.x).
    Startup,
    /// SSLRequest or GSSENCRequest: the server answers with one byte.
    Negotiate(Negotiation),
    CancelRequest,
    /// A TLS record where a message should start: a client negotiating TLS directly
    /// (PostgreSQL 17 `sslnegotiation=direct`). Nothing after it can be read.
    Tls,
    /// Query: the text without its terminating NUL.
    Query(&'a [u8]),
    /// Parse: the prepared statement's name ("" is the unnamed one) and text.
    Parse {
        name: &'a [u8],
        query: &'a [u8],
    },
    /// Bind: the portal created, the statement it binds, and the result-column format codes
    /// (2 bytes each, as sent).
    Bind {
        portal: &'a [u8],
        statement: &'a [u8],
        result_formats: &'a [u8],
    },
    Execute {
        portal: &'a [u8],
    },
    Sync,
    /// Close of a prepared statement (`statement`) or a portal.
    Close {
        statement: bool,
        name: &'a [u8],
    },
    /// FunctionCall: answered by FunctionCallResponse and ReadyForQuery.
    FunctionCall,
    /// CopyData, CopyDone or CopyFail: rows of a COPY FROM STDIN.
    Copy,
    /// Any other valid message (Describe, Flush, Terminate, password and SASL messages).
    Other(u8),
    /// A message longer than the limit: its type, length on the wire, and the start of its
    /// body (at least [`OVERSIZED_HEAD`] bytes of it, when it has that many).
    Oversized {
        typ: u8,
        total: usize,
        head: &'a [u8],
    },
}

/// A message from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend<'a> {
    /// The one-byte answer to an SSLRequest or GSSENCRequest: `S`, `G` or `N`.
    NegotiationReply(u8),
    RowDescription(Vec<Field>),
    DataRow(DataRow<'a>),
    /// CommandComplete: the command tag without its NUL (`SELECT 4`).
    CommandComplete(&'a [u8]),
    EmptyQueryResponse,
    ErrorResponse(ErrorFields<'a>),
    ReadyForQuery,
    /// ParseComplete, BindComplete, CloseComplete, NoData, ParameterDescription: steps of an
    /// extended-protocol response.
    Step(u8),
    /// PortalSuspended: an Execute's row limit was reached; it ends that Execute's response.
    PortalSuspended,
    /// CopyInResponse (`G`), CopyOutResponse (`H`), CopyBothResponse (`W`).
    CopyResponse(u8),
    /// CopyData or CopyDone of a COPY TO STDOUT.
    CopyData,
    /// NoticeResponse, ParameterStatus, NotificationResponse: may come at any time.
    Async(u8),
    /// Any other valid message (authentication, BackendKeyData, FunctionCallResponse, …).
    Other(u8),
    Oversized {
        typ: u8,
        total: usize,
    },
}

/// A column of a RowDescription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: Vec<u8>,
    pub type_oid: u32,
    /// 0 text, 1 binary.
    pub format: u16,
}

/// A DataRow, checked: its column count and the bytes of the columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataRow<'a> {
    pub count: usize,
    body: &'a [u8],
}

impl<'a> DataRow<'a> {
    /// Each column's value (`None` for SQL NULL).
    pub fn columns(&self) -> impl Iterator<Item = Option<&'a [u8]>> + 'a {
        let mut rest = self.body;
        (0..self.count).map(move |_| {
            let (len, tail) = split_i32(rest)?;
            if len < 0 {
                rest = tail;
                return None;
            }
            // The row was checked when it was parsed; a short one reads as NULLs.
            let value = tail.get(..len as usize)?;
            rest = &tail[value.len()..];
            Some(value)
        })
    }
}

/// The fields of an ErrorResponse Packetbeat reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ErrorFields<'a> {
    /// `S`: the severity (localized, as Packetbeat reports it).
    pub severity: &'a [u8],
    /// `C`: the SQLSTATE code.
    pub code: &'a [u8],
    /// `M`: the primary message.
    pub message: &'a [u8],
}

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn split_u16(b: &[u8]) -> Option<(u16, &[u8])> {
    let (head, tail) = b.split_first_chunk::<2>()?;
    Some((u16::from_be_bytes(*head), tail))
}

fn split_u32(b: &[u8]) -> Option<(u32, &[u8])> {
    let (head, tail) = b.split_first_chunk::<4>()?;
    Some((u32::from_be_bytes(*head), tail))
}

fn split_i32(b: &[u8]) -> Option<(i32, &[u8])> {
    split_u32(b).map(|(v, t)| (v as i32, t))
}

/// A NUL-terminated string at the start of `b`, and what follows it.
fn cstring(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let nul = b.iter().position(|&c| c == 0)?;
    Some((&b[..nul], &b[nul + 1..]))
}

/// A body that is one NUL-terminated string (Query, CommandComplete): Packetbeat's
/// `pgsqlString` (an empty body is the empty string).
fn whole_string(body: &[u8]) -> Option<&[u8]> {
    match body.split_last() {
        None => Some(body),
        Some((0, text)) => Some(text),
        Some(_) => None,
    }
}

/// Types a client sends.
fn frontend_type(t: u8) -> bool {
    matches!(
        t,
        b'B' | b'C'
            | b'D'
            | b'E'
            | b'F'
            | b'H'
            | b'P'
            | b'Q'
            | b'S'
            | b'X'
            | b'c'
            | b'd'
            | b'f'
            | b'p'
    )
}

/// Types a server sends.
fn backend_type(t: u8) -> bool {
    matches!(
        t,
        b'1' | b'2'
            | b'3'
            | b'A'
            | b'C'
            | b'D'
            | b'E'
            | b'G'
            | b'H'
            | b'I'
            | b'K'
            | b'N'
            | b'R'
            | b'S'
            | b'T'
            | b'V'
            | b'W'
            | b'Z'
            | b'c'
            | b'd'
            | b'n'
            | b's'
            | b't'
            | b'v'
    )
}

/// Bytes of an oversized message's body read before it is reported (its names are there).
pub const OVERSIZED_HEAD: usize = 4096;

/// What the header of a typed message says.
enum Frame<'a> {
    Incomplete,
    Oversized {
        typ: u8,
        total: usize,
        head: &'a [u8],
    },
    Whole {
        typ: u8,
        body: &'a [u8],
        total: usize,
    },
}

/// The typed message at the start of `data`.
fn frame(data: &[u8], valid: fn(u8) -> bool, limit: usize) -> Result<Frame<'_>, &'static str> {
    let Some(&typ) = data.first() else {
        return Ok(Frame::Incomplete);
    };
    if !valid(typ) {
        return Err(ERR_BAD_TYPE);
    }
    if data.len() < 5 {
        return Ok(Frame::Incomplete);
    }
    let len = be_u32(&data[1..5]) as usize;
    if !(4..=MAX_MESSAGE_LEN).contains(&len) {
        return Err(ERR_BAD_LENGTH);
    }
    let total = len + 1;
    if total > limit {
        let end = total.min(5 + OVERSIZED_HEAD);
        if data.len() < end {
            return Ok(Frame::Incomplete);
        }
        let head = &data[5..data.len().min(total)];
        return Ok(Frame::Oversized { typ, total, head });
    }
    match data.get(5..total) {
        Some(body) => Ok(Frame::Whole { typ, body, total }),
        None => Ok(Frame::Incomplete),
    }
}

/// The client message at the start of `data`; a message longer than `limit` bytes is reported
/// as [`Frontend::Oversized`] once its header is in.
pub fn parse_frontend(data: &[u8], limit: usize) -> Parsed<Frontend<'_>> {
    match data.first() {
        None => return Parsed::Incomplete,
        Some(0) => return parse_untyped(data),
        // A TLS handshake record (content type 22, version 3.x).
        Some(0x16) => {
            return match data.get(1) {
                None => Parsed::Incomplete,
                Some(3) => Parsed::Message {
                    msg: Frontend::Tls,
                    consumed: data.len(),
                },
                Some(_) => Parsed::Error(ERR_BAD_TYPE),
            }
        }
        Some(_) => {}
    }
    let (typ, body, total) = match frame(data, frontend_type, limit) {
        Err(e) => return Parsed::Error(e),
        Ok(Frame::Incomplete) => return Parsed::Incomplete,
        Ok(Frame::Oversized { typ, total, head }) => {
            return Parsed::Message {
                msg: Frontend::Oversized { typ, total, head },
                consumed: total.min(data.len()),
            }
        }
        Ok(Frame::Whole { typ, body, total }) => (typ, body, total),
    };
    let msg = match typ {
        b'Q' => match whole_string(body) {
            Some(q) => Frontend::Query(q),
            None => return Parsed::Error(ERR_BAD_STRING),
        },
        b'P' => match cstring(body).and_then(|(name, rest)| Some((name, cstring(rest)?.0))) {
            Some((name, query)) => Frontend::Parse { name, query },
            None => return Parsed::Error(ERR_BAD_STRING),
        },
        b'B' => match parse_bind(body) {
            Some(b) => b,
            None => return Parsed::Error(ERR_BAD_STRING),
        },
        b'E' => match cstring(body) {
            Some((portal, _)) => Frontend::Execute { portal },
            None => return Parsed::Error(ERR_BAD_STRING),
        },
        b'S' => Frontend::Sync,
        b'C' => match body
            .split_first()
            .and_then(|(&k, rest)| Some((k, cstring(rest)?.0)))
        {
            Some((kind, name)) => Frontend::Close {
                statement: kind == b'S',
                name,
            },
            None => return Parsed::Error(ERR_BAD_STRING),
        },
        b'F' => Frontend::FunctionCall,
        b'd' | b'c' | b'f' => Frontend::Copy,
        t => Frontend::Other(t),
    };
    Parsed::Message {
        msg,
        consumed: total,
    }
}

/// Bind: portal, statement, parameter formats, parameters, result formats.
fn parse_bind(body: &[u8]) -> Option<Frontend<'_>> {
    let (portal, rest) = cstring(body)?;
    let (statement, rest) = cstring(rest)?;
    let (nformats, rest) = split_u16(rest)?;
    let mut rest = rest.get(usize::from(nformats) * 2..)?;
    let (nparams, tail) = split_u16(rest)?;
    rest = tail;
    for _ in 0..nparams {
        let (len, tail) = split_i32(rest)?;
        rest = if len > 0 {
            tail.get(len as usize..)?
        } else {
            tail
        };
    }
    let (nresults, rest) = split_u16(rest)?;
    let result_formats = rest.get(..usize::from(nresults) * 2)?;
    Some(Frontend::Bind {
        portal,
        statement,
        result_formats,
    })
}

/// StartupMessage, SSLRequest, GSSENCRequest, CancelRequest: length, code, body.
fn parse_untyped(data: &[u8]) -> Parsed<Frontend<'_>> {
    if data.len() < 8 {
        return Parsed::Incomplete;
    }
    let len = be_u32(&data[0..4]) as usize;
    let code = be_u32(&data[4..8]);
    let msg = match code {
        SSL_REQUEST_CODE if len == 8 => Frontend::Negotiate(Negotiation::Ssl),
        GSSENC_REQUEST_CODE if len == 8 => Frontend::Negotiate(Negotiation::GssEnc),
        CANCEL_REQUEST_CODE if len == 16 => Frontend::CancelRequest,
        c if c >> 16 == 3 && (8..=MAX_STARTUP_LEN).contains(&len) => Frontend::Startup,
        _ => return Parsed::Error(ERR_BAD_STARTUP),
    };
    if data.len() < len {
        return Parsed::Incomplete;
    }
    Parsed::Message { msg, consumed: len }
}

/// The server message at the start of `data`. `expect` is the negotiation the client asked
/// for and the server has not answered yet.
pub fn parse_backend(
    data: &[u8],
    expect: Option<Negotiation>,
    limit: usize,
) -> Parsed<Backend<'_>> {
    if let (Some(n), Some(&b)) = (expect, data.first()) {
        let accepted = match n {
            Negotiation::Ssl => b'S',
            Negotiation::GssEnc => b'G',
        };
        if b == accepted || b == b'N' {
            return Parsed::Message {
                msg: Backend::NegotiationReply(b),
                consumed: 1,
            };
        }
    }
    let (typ, body, total) = match frame(data, backend_type, limit) {
        Err(e) => return Parsed::Error(e),
        Ok(Frame::Incomplete) => return Parsed::Incomplete,
        Ok(Frame::Oversized { typ, total, .. }) => {
            return Parsed::Message {
                msg: Backend::Oversized { typ, total },
                consumed: total.min(data.len()),
            }
        }
        Ok(Frame::Whole { typ, body, total }) => (typ, body, total),
    };
    let msg = match typ {
        b'T' => match parse_fields(body) {
            Some(f) => Backend::RowDescription(f),
            None => return Parsed::Error(ERR_BAD_FIELDS),
        },
        b'D' => match check_row(body) {
            Some(r) => Backend::DataRow(r),
            None => return Parsed::Error(ERR_BAD_ROW),
        },
        b'C' => match whole_string(body) {
            Some(tag) => Backend::CommandComplete(tag),
            None => return Parsed::Error(ERR_BAD_STRING),
        },
        b'I' => Backend::EmptyQueryResponse,
        b'E' => Backend::ErrorResponse(parse_error(body)),
        b'Z' => Backend::ReadyForQuery,
        b'1' | b'2' | b'3' | b'n' | b't' => Backend::Step(typ),
        b's' => Backend::PortalSuspended,
        b'G' | b'H' | b'W' => Backend::CopyResponse(typ),
        b'd' | b'c' => Backend::CopyData,
        b'N' | b'S' | b'A' => Backend::Async(typ),
        t => Backend::Other(t),
    };
    Parsed::Message {
        msg,
        consumed: total,
    }
}

/// RowDescription: count, then per field its name, table OID, column number, type OID, type
/// size, type modifier and format code; nothing may follow (Packetbeat's `parseFields`).
fn parse_fields(body: &[u8]) -> Option<Vec<Field>> {
    let (count, mut rest) = split_u16(body)?;
    // Each field takes at least 19 bytes: a count past what the body can hold is broken.
    if usize::from(count) > rest.len() / 19 {
        return None;
    }
    let mut fields = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let (name, tail) = cstring(rest)?;
        let fixed = tail.get(..18)?;
        fields.push(Field {
            name: name.to_vec(),
            type_oid: be_u32(&fixed[6..10]),
            format: u16::from_be_bytes([fixed[16], fixed[17]]),
        });
        rest = &tail[18..];
    }
    rest.is_empty().then_some(fields)
}

/// DataRow: count, then per column a length (-1: NULL) and the value; nothing may follow
/// (Packetbeat's `parseDataRow`).
fn check_row(body: &[u8]) -> Option<DataRow<'_>> {
    let (count, cols) = split_u16(body)?;
    let mut rest = cols;
    for _ in 0..count {
        let (len, tail) = split_i32(rest)?;
        rest = match len {
            -1 => tail,
            l if l < 0 => return None,
            l => tail.get(l as usize..)?,
        };
    }
    rest.is_empty().then_some(DataRow {
        count: usize::from(count),
        body: cols,
    })
}

/// ErrorResponse: typed NUL-terminated fields up to a 0 (Packetbeat's `parseError`: a field
/// that is not terminated ends the list).
fn parse_error(body: &[u8]) -> ErrorFields<'_> {
    let mut e = ErrorFields::default();
    let mut rest = body;
    while let Some((&typ, tail)) = rest.split_first() {
        if typ == 0 {
            break;
        }
        let Some((value, tail)) = cstring(tail) else {
            break;
        };
        match typ {
            b'S' => e.severity = value,
            b'C' => e.code = value,
            b'M' => e.message = value,
            _ => {}
        }
        rest = tail;
    }
    e
}

/// The format code of result column `i` given a Bind's codes: none means text for all, one
/// applies to all, otherwise one per column.
pub fn result_format(codes: &[u8], i: usize) -> u16 {
    let at = |k: usize| {
        codes
            .get(k * 2..k * 2 + 2)
            .map_or(0, |c| u16::from_be_bytes([c[0], c[1]]))
    };
    match codes.len() / 2 {
        0 => 0,
        1 => at(0),
        _ => at(i),
    }
}
