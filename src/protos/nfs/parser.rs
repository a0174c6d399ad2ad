//! ONC RPC over TCP (RFC 5531 §11: record marking) and the parts of NFS calls and replies
//! Packetbeat reports.
//!
//! [`record`] frames one RPC message from the unconsumed bytes of a direction; [`message`]
//! reads it. Both are pure functions over byte slices.

use super::names::{self, *};
use super::xdr::{Truncated, Xdr};
use std::borrow::Cow;

/// The last-fragment bit of a record mark, and the fragment length under it.
const LAST_FRAGMENT: u32 = 0x8000_0000;
const LENGTH_MASK: u32 = 0x7fff_ffff;

/// ONC RPC program number of NFS.
pub const NFS_PROGRAM: u32 = 100_003;

/// A framed record: the message's bytes and how many bytes of the stream it used.
#[derive(Debug, PartialEq, Eq)]
pub struct Record<'a> {
    pub body: Cow<'a, [u8]>,
    pub consumed: usize,
}

/// Frames the record at the start of `data`: its fragments up to the one marked last, or
/// `None` while they are not all in. A single-fragment record is not copied.
pub fn record(data: &[u8]) -> Option<Record<'_>> {
    let mut pos = 0usize;
    let mut parts: Vec<(usize, usize)> = Vec::new();
    loop {
        let mark = data.get(pos..pos + 4)?;
        let mark = u32::from_be_bytes([mark[0], mark[1], mark[2], mark[3]]);
        let len = (mark & LENGTH_MASK) as usize;
        let start = pos + 4;
        let end = start.checked_add(len)?;
        if data.len() < end {
            return None;
        }
        pos = end;
        if mark & LAST_FRAGMENT != 0 {
            let body = if parts.is_empty() {
                Cow::Borrowed(&data[start..end])
            } else {
                parts.push((start, end));
                Cow::Owned(
                    parts
                        .iter()
                        .flat_map(|&(s, e)| &data[s..e])
                        .copied()
                        .collect(),
                )
            };
            return Some(Record {
                body,
                consumed: pos,
            });
        }
        parts.push((start, end));
    }
}

/// AUTH_UNIX credentials (RFC 5531 appendix A).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnixCred {
    pub stamp: u32,
    pub machine_name: String,
    pub uid: u32,
    pub gid: u32,
    pub gids: Vec<u32>,
}

/// The call's credential flavor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    None,
    Unix(UnixCred),
    RpcsecGss,
    Other(u32),
}

/// What Packetbeat reports of an NFS call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub xid: u32,
    pub version: u32,
    pub procedure: u32,
    pub auth: Auth,
    /// NFSv4 COMPOUND: its tag, minor version and main operation.
    pub tag: Option<String>,
    pub minor_version: Option<u32>,
    /// The procedure's name (v3), or the COMPOUND's main operation (v4); `None` for other
    /// versions and v4 procedures other than NULL and COMPOUND.
    pub opcode: Option<&'static str>,
}

/// What Packetbeat reads of an accepted reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub xid: u32,
    pub accept_status: u32,
    /// The first word of the result: the NFS status of every procedure but NULL.
    pub first_word: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A call to the NFS program.
    Call(Call),
    /// An accepted reply.
    Reply(Reply),
    /// A call to another program, or a denied reply: nothing to report.
    Ignored,
}

/// Why a message cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The message ends before an item Packetbeat reads.
    Truncated,
    /// Neither a call nor a reply.
    BadType,
}

impl From<Truncated> for Error {
    fn from(_: Truncated) -> Error {
        Error::Truncated
    }
}

impl Error {
    pub fn as_str(self) -> &'static str {
        match self {
            Error::Truncated => "truncated RPC message",
            Error::BadType => "bad RPC message type",
        }
    }
}

/// Reads one RPC message.
pub fn message(body: &[u8]) -> Result<Message, Error> {
    let mut x = Xdr::new(body);
    let xid = x.uint()?;
    match x.uint()? {
        0 => call(xid, &mut x),
        1 => reply(xid, &mut x),
        _ => Err(Error::BadType),
    }
}

fn call(xid: u32, x: &mut Xdr) -> Result<Message, Error> {
    let _rpc_version = x.uint()?;
    if x.uint()? != NFS_PROGRAM {
        return Ok(Message::Ignored);
    }
    let version = x.uint()?;
    let procedure = x.uint()?;
    let flavor = x.uint()?;
    let body = x.dynamic_opaque()?;
    let auth = match flavor {
        0 => Auth::None,
        1 => {
            let mut c = Xdr::new(body);
            Auth::Unix(UnixCred {
                stamp: c.uint()?,
                machine_name: String::from_utf8_lossy(c.dynamic_opaque()?).into_owned(),
                uid: c.uint()?,
                gid: c.uint()?,
                gids: c.uint_vector()?,
            })
        }
        6 => Auth::RpcsecGss,
        n => Auth::Other(n),
    };
    // The verifier.
    x.uint()?;
    x.dynamic_opaque()?;
    let mut c = Call {
        xid,
        version,
        procedure,
        auth,
        tag: None,
        minor_version: None,
        opcode: None,
    };
    match (version, procedure) {
        (3, p) => c.opcode = Some(names::v3_procedure(p)),
        (4, 0) => c.opcode = Some("NULL"),
        (4, 1) => {
            c.tag = Some(String::from_utf8_lossy(x.dynamic_opaque()?).into_owned());
            c.minor_version = Some(x.uint()?);
            c.opcode = Some(main_operation(x)?);
        }
        _ => {}
    }
    Ok(Message::Call(c))
}

/// The COMPOUND's main operation (Packetbeat's `findV4MainOpcode`): the first operation that
/// does something of its own (READ, OPEN, CLOSE, …), skipping the ones that set up or inspect
/// the current file (PUTFH, LOOKUP, GETATTR, SEQUENCE, …); if there is none, the last one. An
/// operation number no RFC assigns makes it `ILLEGAL`, as does an empty COMPOUND.
fn main_operation(x: &mut Xdr) -> Result<&'static str, Error> {
    let count = x.uint()?;
    let mut current = "ILLEGAL";
    for _ in 0..count {
        let op = x.uint()?;
        let Some(name) = v4_operation(op) else {
            return Ok("ILLEGAL");
        };
        current = name;
        match op {
            OP_GETATTR => {
                x.uint_vector()?;
            }
            OP_LOOKUP | OP_PUTFH | OP_SECINFO => {
                x.dynamic_opaque()?;
            }
            OP_NVERIFY | OP_VERIFY => {
                x.uint_vector()?;
                x.dynamic_opaque()?;
            }
            OP_RENEW => {
                x.uhyper()?;
            }
            OP_SEQUENCE => {
                x.opaque(16)?;
                for _ in 0..4 {
                    x.uint()?;
                }
            }
            OP_GETFH | OP_LOOKUPP | OP_PUTPUBFH | OP_PUTROOTFH | OP_RESTOREFH | OP_SAVEFH
            | OP_ILLEGAL => {}
            // READLINK has no arguments, and is a main operation.
            _ => return Ok(name),
        }
    }
    Ok(current)
}

fn reply(xid: u32, x: &mut Xdr) -> Result<Message, Error> {
    // MSG_DENIED: Packetbeat reports only accepted replies.
    if x.uint()? != 0 {
        return Ok(Message::Ignored);
    }
    // The verifier.
    x.uint()?;
    x.dynamic_opaque()?;
    let accept_status = x.uint()?;
    Ok(Message::Reply(Reply {
        xid,
        accept_status,
        first_word: x.uint().ok(),
    }))
}
