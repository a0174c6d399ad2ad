//! The MongoDB wire protocol as Packetbeat reads it (`mongodb_parser.go`): a pure function
//! from a direction's unconsumed bytes to the next message.
//!
//! Every message starts with the standard header (length, requestID, responseTo, opCode). A
//! message is complete once `length` bytes are there; its body is then decoded within those
//! bytes only. An opcode Packetbeat does not know, or a body that does not decode, is an error:
//! the direction's stream is dropped and parsing restarts with the next segment, as Packetbeat
//! does.

use super::bson::{self, Doc, Value};
use crate::protos::app::Parsed;

/// Opcodes (the wire protocol's numbers).
pub const OP_REPLY: i32 = 1;
pub const OP_MSG_LEGACY: i32 = 1000;
pub const OP_UPDATE: i32 = 2001;
pub const OP_INSERT: i32 = 2002;
pub const OP_RESERVED: i32 = 2003;
pub const OP_QUERY: i32 = 2004;
pub const OP_GET_MORE: i32 = 2005;
pub const OP_DELETE: i32 = 2006;
pub const OP_KILL_CURSORS: i32 = 2007;
pub const OP_MSG: i32 = 2013;

/// The standard header's size.
const HEADER_LEN: usize = 16;

/// The `mongodb.*` fields a message contributes (Packetbeat's `event` map); a response's
/// replace the request's of the same name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fields {
    pub full_collection_name: Option<Vec<u8>>,
    pub number_to_skip: Option<i32>,
    pub number_to_return: Option<i32>,
    pub cursor_id: Option<i64>,
    pub starting_from: Option<i32>,
    pub number_returned: Option<i32>,
    pub selector: Option<String>,
    pub update: Option<String>,
    pub return_fields_selector: Option<String>,
    pub message: Option<Vec<u8>>,
}

impl Fields {
    /// `other`'s fields over these.
    pub fn merge(&mut self, other: &Fields) {
        macro_rules! over {
            ($($f:ident),*) => { $( if other.$f.is_some() { self.$f.clone_from(&other.$f); } )* };
        }
        over!(
            full_collection_name,
            number_to_skip,
            number_to_return,
            cursor_id,
            starting_from,
            number_returned,
            selector,
            update,
            return_fields_selector,
            message
        );
    }
}

/// A decoded message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub length: usize,
    pub request_id: i32,
    pub response_to: i32,
    pub op_code: i32,
    pub is_response: bool,
    /// The operation, or the command a query carries (`find`, `insert`, `isMaster`, `msg`…).
    pub method: String,
    /// The collection (`db.collection`), or `db.$cmd` for a command naming none.
    pub resource: Vec<u8>,
    /// An OP_QUERY's query document (the command's key removed), Packetbeat's `params`;
    /// `None` for other opcodes and for a query that did not decode.
    pub params: Option<Doc>,
    /// The documents a reply or an OP_MSG carries (an OP_MSG request's first one stands for
    /// its parameters in `query`).
    pub documents: Vec<Doc>,
    /// `$err` or `writeErrors` of a reply's first document, as Go's JSON.
    pub error: Option<String>,
    pub fields: Fields,
}

/// Whether Packetbeat waits for a reply to this request (`awaitsReply`); other requests are
/// published at once, alone.
pub fn awaits_reply(msg: &Message) -> bool {
    matches!(msg.op_code, OP_QUERY | OP_GET_MORE | OP_MSG)
}

/// Packetbeat's list of commands a query on `db.$cmd` may carry (`databaseCommands`),
/// compared without case.
pub const DATABASE_COMMANDS: &[&str] = &[
    "getLastError",
    "connPoolSync",
    "top",
    "dropIndexes",
    "explain",
    "grantRolesToRole",
    "dropRole",
    "dropAllRolesFromDatabase",
    "listCommands",
    "replSetReconfig",
    "replSetFresh",
    "writebacklisten",
    "setParameter",
    "update",
    "replSetGetStatus",
    "find",
    "resync",
    "appendOplogNote",
    "revokeRolesFromRole",
    "compact",
    "createUser",
    "replSetElect",
    "getPrevError",
    "serverStatus",
    "getShardVersion",
    "updateRole",
    "replSetFreeze",
    "getCmdLineOpts",
    "applyOps",
    "count",
    "aggregate",
    "copydbsaslstart",
    "distinct",
    "repairDatabase",
    "profile",
    "replSetStepDown",
    "findAndModify",
    "_transferMods",
    "filemd5",
    "forceerror",
    "getnonce",
    "saslContinue",
    "clone",
    "saslStart",
    "_getUserCacheGeneration",
    "_recvChunkCommit",
    "whatsmyuri",
    "repairCursor",
    "validate",
    "dbHash",
    "planCacheListFilters",
    "touch",
    "mergeChunks",
    "cursorInfo",
    "_recvChunkStart",
    "unsetSharding",
    "revokePrivilegesFromRole",
    "logout",
    "group",
    "shardConnPoolStats",
    "listDatabases",
    "buildInfo",
    "availableQueryOptions",
    "_isSelf",
    "splitVector",
    "geoSearch",
    "dbStats",
    "connectionStatus",
    "currentOpCtx",
    "copydb",
    "insert",
    "reIndex",
    "moveChunk",
    "cleanupOrphaned",
    "driverOIDTest",
    "isMaster",
    "getParameter",
    "replSetHeartbeat",
    "ping",
    "listIndexes",
    "dropUser",
    "dropDatabase",
    "dataSize",
    "convertToCapped",
    "planCacheSetFilter",
    "usersInfo",
    "grantPrivilegesToRole",
    "handshake",
    "_mergeAuthzCollections",
    "mapreduce.shardedfinish",
    "_recvChunkAbort",
    "authSchemaUpgrade",
    "replSetGetConfig",
    "replSetSyncFrom",
    "collStats",
    "replSetMaintenance",
    "createRole",
    "copydbgetnonce",
    "cloneCollectionAsCapped",
    "_migrateClone",
    "parallelCollectionScan",
    "connPoolStats",
    "revokeRolesFromUser",
    "authenticate",
    "create",
    "shutdown",
    "invalidateUserCache",
    "shardingState",
    "renameCollection",
    "replSetGetRBID",
    "splitChunk",
    "createIndexes",
    "updateUser",
    "cloneCollection",
    "logRotate",
    "planCacheListPlans",
    "medianKey",
    "hostInfo",
    "geoNear",
    "fsync",
    "checkShardingIndex",
    "getShardMap",
    "planCacheClear",
    "listCollections",
    "collMod",
    "_recvChunkStatus",
    "planCacheListQueryShapes",
    "delete",
    "planCacheClearFilters",
    "mapReduce",
    "rolesInfo",
    "eval",
    "drop",
    "grantRolesToUser",
    "resetError",
    "getLog",
    "dropAllUsersFromDatabase",
    "diagLogging",
    "replSetUpdatePosition",
    "setShardVersion",
    "replSetInitiate",
];

/// `isDatabaseCommand`: a known command name whose value is a string or the double 1 (an
/// int32 1 does not count, as in Packetbeat).
fn is_database_command(key: &[u8], val: &Value) -> bool {
    DATABASE_COMMANDS
        .iter()
        .any(|c| c.as_bytes().eq_ignore_ascii_case(key))
        && match val {
            Value::Str(_) => true,
            Value::Double(f) => *f == 1.0,
            _ => false,
        }
}

/// Reads within one message's bytes (Packetbeat's `decoder`).
struct Decoder<'a> {
    data: &'a [u8],
    pos: usize,
}

type R<T> = Result<T, &'static str>;

impl<'a> Decoder<'a> {
    fn take(&mut self, n: usize) -> R<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or("No byte to read")?;
        let s = self.data.get(self.pos..end).ok_or("No byte to read")?;
        self.pos = end;
        Ok(s)
    }

    fn byte(&mut self) -> R<u8> {
        Ok(self.take(1).map_err(|_| "Read byte failed")?[0])
    }

    fn i32(&mut self) -> R<i32> {
        let b = self.take(4)?;
        Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn i64(&mut self) -> R<i64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_le_bytes(a))
    }

    fn cstr(&mut self) -> R<Vec<u8>> {
        let rest = self.data.get(self.pos..).unwrap_or(&[]);
        let n = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or("cstring not finished")?;
        self.pos += n + 1;
        Ok(rest[..n].to_vec())
    }

    fn remaining(&self) -> bool {
        self.pos < self.data.len()
    }

    /// One document: its int32 length, then that many bytes in all (`readDocument`). The
    /// position moves past the document even when its contents do not decode.
    fn document(&mut self) -> R<Doc> {
        let start = self.pos;
        let len = self.i32()?;
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| start.checked_add(l))
            .filter(|&e| e <= self.data.len())
            .ok_or("document out of bounds")?;
        self.pos = end;
        bson::parse_document(&self.data[start..end])
    }

    /// A document as Go's JSON (`readDocumentStr`).
    fn document_str(&mut self) -> R<String> {
        bson::doc_to_json(&self.document()?).ok_or("json: unsupported value")
    }
}

/// Parses the next message from the start of `data`.
pub fn parse(data: &[u8]) -> Parsed<Message> {
    let Some(head) = data.get(..4) else {
        return Parsed::Incomplete;
    };
    let length = i32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    // A length that cannot even hold the header is no MongoDB message.
    let Some(length) = usize::try_from(length).ok().filter(|&l| l >= HEADER_LEN) else {
        return Parsed::Error("invalid message length");
    };
    let Some(body) = data.get(..length) else {
        return Parsed::Incomplete;
    };
    match parse_message(body) {
        Ok(msg) => Parsed::Message {
            msg,
            consumed: length,
        },
        Err(e) => Parsed::Error(e),
    }
}

/// Decodes one whole message (`data` is exactly its bytes).
pub fn parse_message(data: &[u8]) -> R<Message> {
    let mut d = Decoder { data, pos: 4 };
    let request_id = d.i32()?;
    let response_to = d.i32()?;
    let op_code = d.i32()?;
    let mut m = Message {
        length: data.len(),
        request_id,
        response_to,
        op_code,
        is_response: false,
        method: String::new(),
        resource: Vec::new(),
        params: None,
        documents: Vec::new(),
        error: None,
        fields: Fields::default(),
    };
    match op_code {
        OP_REPLY => {
            m.is_response = true;
            op_reply(&mut d, &mut m)
                .map_err(|_| "An error occurred while parsing OP_REPLY message")?;
        }
        OP_MSG_LEGACY => {
            m.method = "msg".into();
            m.fields.message = Some(
                d.cstr()
                    .map_err(|_| "An error occurred while parsing OP_MSG message")?,
            );
        }
        OP_UPDATE => {
            m.method = "update".into();
            op_update(&mut d, &mut m)
                .map_err(|_| "An error occurred while parsing OP_UPDATE message")?;
        }
        OP_INSERT => {
            m.method = "insert".into();
            d.i32()
                .and_then(|_| d.cstr())
                .map(|c| m.fields.full_collection_name = Some(c))
                .map_err(|_| "An error occurred while parsing OP_INSERT message")?;
        }
        OP_QUERY => {
            op_query(&mut d, &mut m)
                .map_err(|_| "An error occurred while parsing OP_QUERY message")?;
        }
        OP_GET_MORE => {
            m.method = "getMore".into();
            op_get_more(&mut d, &mut m)
                .map_err(|_| "An error occurred while parsing OP_GET_MORE message")?;
        }
        OP_DELETE => {
            m.method = "delete".into();
            op_delete(&mut d, &mut m)
                .map_err(|_| "An error occurred while parsing OP_DELETE message")?;
        }
        OP_KILL_CURSORS => {
            // Packetbeat reads nothing of it.
            m.method = "killCursors".into();
        }
        OP_MSG => {
            m.method = "msg".into();
            // OP_MSG has no reply opcode: a message answering another is a response.
            m.is_response = response_to > 0;
            op_msg(&mut d, &mut m).map_err(|_| "An error occurred while parsing OP_MSG message")?;
        }
        // RESERVED is a known opcode with no parser: Packetbeat drops the stream.
        OP_RESERVED => return Err("Unknown operation code"),
        _ => return Err("Unknown operation code"),
    }
    Ok(m)
}

fn op_reply(d: &mut Decoder, m: &mut Message) -> R<()> {
    d.i32()?; // flags
    m.fields.cursor_id = Some(d.i64()?);
    m.fields.starting_from = Some(d.i32()?);
    let n = d.i32()?;
    m.fields.number_returned = Some(n);
    let n = usize::try_from(n).map_err(|_| "negative numberReturned")?;
    for i in 0..n {
        let doc = d.document()?;
        if i == 0 {
            // A reply whose first document is an error.
            for key in [&b"$err"[..], b"writeErrors"] {
                if let Some(v) = doc.get(key) {
                    m.error = Some(bson::value_to_json(v).ok_or("json: unsupported value")?);
                }
            }
        }
        m.documents.push(doc);
    }
    Ok(())
}

fn op_update(d: &mut Decoder, m: &mut Message) -> R<()> {
    d.i32()?; // ZERO
    m.fields.full_collection_name = Some(d.cstr()?);
    d.i32()?; // flags
    m.fields.selector = Some(d.document_str()?);
    m.fields.update = Some(d.document_str()?);
    Ok(())
}

fn op_get_more(d: &mut Decoder, m: &mut Message) -> R<()> {
    d.i32()?; // ZERO
    m.fields.full_collection_name = Some(d.cstr()?);
    m.fields.number_to_return = Some(d.i32()?);
    m.fields.cursor_id = Some(d.i64()?);
    Ok(())
}

fn op_delete(d: &mut Decoder, m: &mut Message) -> R<()> {
    d.i32()?; // ZERO
    m.fields.full_collection_name = Some(d.cstr()?);
    d.i32()?; // flags
    m.fields.selector = Some(d.document_str()?);
    Ok(())
}

fn op_query(d: &mut Decoder, m: &mut Message) -> R<()> {
    d.i32()?; // flags
    let full_collection_name = d.cstr()?;
    m.fields.full_collection_name = Some(full_collection_name.clone());
    m.fields.number_to_skip = Some(d.i32()?);
    m.fields.number_to_return = Some(d.i32()?);
    let query = d.document();
    // Packetbeat's error is the selector's when one follows, else the query's: a query
    // that does not decode followed by a selector that does leaves no query.
    let err = if d.remaining() {
        match d.document_str() {
            Ok(s) => {
                m.fields.return_fields_selector = Some(s);
                None
            }
            Err(e) => Some(e),
        }
    } else {
        query.as_ref().err().copied()
    };
    let mut query = query.ok();
    if full_collection_name.ends_with(b".$cmd") {
        m.method = "otherCommand".into();
        m.resource = full_collection_name.clone();
        if let Some(q) = query.as_mut() {
            // Go visits the map in random order; here the keys come sorted.
            let keys: Vec<Vec<u8>> = q
                .iter()
                .filter(|(k, v)| is_database_command(k, v))
                .map(|(k, _)| k.clone())
                .collect();
            for key in keys {
                if let Some(Value::Str(col)) = q.get(&key) {
                    // `db.$cmd` becomes `db.<collection>`.
                    let mut r = full_collection_name[..full_collection_name.len() - 4].to_vec();
                    r.extend_from_slice(col);
                    m.resource = r;
                }
                q.remove(&key);
                m.method = String::from_utf8_lossy(&key).into_owned();
            }
        }
    } else {
        m.method = "find".into();
        m.resource = full_collection_name;
    }
    m.params = query;
    match err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn op_msg(d: &mut Decoder, m: &mut Message) -> R<()> {
    d.i32()?; // flagBits
              // Packetbeat reads the first section only.
    match d.byte()? {
        0 => {
            m.documents = vec![d.document()?];
        }
        1 => {
            let start = d.pos;
            let size = d.i32()?;
            m.fields.message = Some(d.cstr()?);
            let end = usize::try_from(size)
                .ok()
                .and_then(|s| start.checked_add(s))
                .ok_or("invalid section size")?;
            while d.pos < end {
                let doc = d.document()?;
                m.documents.push(doc);
            }
        }
        _ => return Err("Unknown message kind"),
    }
    Ok(())
}
