//! The memcache message parser (Packetbeat's `parse.go`, `text.go`, `binary.go`): a pure function
//! from the unconsumed bytes of one direction to the next message.
//!
//! The first byte decides the protocol: 0x80/0x81 is a binary header, anything else a text line.
//! Text commands and their arguments follow Packetbeat's tables (an unknown command is an error
//! unless `parseunknown` is set); a storage command or a `VALUE` line is followed by its data
//! block and CRLF. A binary message is its 24-byte header, extras, key and value.

use super::codes::{self, Code, Type};
use crate::protos::app::Parsed;

/// What the parser needs from the configuration (`parserConfig`).
#[derive(Debug, Clone, Copy)]
pub struct ParserConfig {
    /// Values kept per message: 0 none, negative all.
    pub max_values: i64,
    /// Bytes kept per value.
    pub max_bytes_per_value: usize,
    pub parse_unknown: bool,
}

/// A text command argument (`argDef`), parsed from the argument list and written to the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg {
    Key,
    MultiKeys,
    Flags,
    ExpTime,
    Bytes,
    CasUnique,
    Automove,
    Raw,
    Stat,
    /// A u64 in `value` under this event name.
    Value(&'static str),
    /// An i64 in `ivalue` / `ivalue2` under this name.
    IValue(&'static str),
    IValue2(&'static str),
    NoReply,
    ErrorMessage,
}

/// How a text command's message is shaped and written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    /// A command line only.
    Message,
    /// A command line followed by a data block (storage requests; `VALUE` responses).
    DataRequest,
    DataResponse,
    /// `slabs` / `lru_crawler`: the second word selects the command.
    Sub(&'static [TextDef]),
    Unknown,
    CounterResponse,
}

/// A text command (`textCommandType`). An argument in `optional` may be missing.
#[derive(Debug, PartialEq, Eq)]
pub struct TextDef {
    pub name: &'static [u8],
    pub typ: Type,
    pub code: Code,
    pub kind: TextKind,
    pub args: &'static [(Arg, bool)],
}

const fn def(
    name: &'static [u8],
    typ: Type,
    code: Code,
    kind: TextKind,
    args: &'static [(Arg, bool)],
) -> TextDef {
    TextDef {
        name,
        typ,
        code,
        kind,
        args,
    }
}

use Arg::*;
const REQ: bool = false;
const OPT: bool = true;
const STORE_ARGS: &[(Arg, bool)] = &[
    (Key, REQ),
    (Flags, REQ),
    (ExpTime, REQ),
    (Bytes, REQ),
    (NoReply, OPT),
];
const CAS_ARGS: &[(Arg, bool)] = &[
    (Key, REQ),
    (Flags, REQ),
    (ExpTime, REQ),
    (Bytes, REQ),
    (CasUnique, REQ),
    (NoReply, OPT),
];
const COUNTER_ARGS: &[(Arg, bool)] = &[(Key, REQ), (Value("delta"), REQ), (NoReply, OPT)];
const ERR_ARGS: &[(Arg, bool)] = &[(ErrorMessage, REQ)];

static SLABS_COMMANDS: [TextDef; 2] = [
    def(
        b"reassign",
        Type::SlabCtrl,
        Code::SlabsReassign,
        TextKind::Message,
        &[(IValue("source_class"), REQ), (IValue2("dest_class"), REQ)],
    ),
    def(
        b"automove",
        Type::SlabCtrl,
        Code::SlabsAutomove,
        TextKind::Message,
        &[(Automove, REQ)],
    ),
];

static LRU_CRAWLER_COMMANDS: [TextDef; 5] = [
    def(
        b"enable",
        Type::LruCrawler,
        Code::LruEnable,
        TextKind::Message,
        &[],
    ),
    def(
        b"disable",
        Type::LruCrawler,
        Code::LruDisable,
        TextKind::Message,
        &[],
    ),
    def(
        b"sleep",
        Type::LruCrawler,
        Code::LruSleep,
        TextKind::Message,
        &[(Value("sleep_us"), REQ)],
    ),
    def(
        b"tocrawl",
        Type::LruCrawler,
        Code::LruToCrawl,
        TextKind::Message,
        &[(Value("value"), REQ)],
    ),
    // Packetbeat gives `crawl` the code of `tocrawl`.
    def(
        b"crawl",
        Type::LruCrawler,
        Code::LruToCrawl,
        TextKind::Message,
        &[(Raw, REQ)],
    ),
];

static REQUEST_COMMANDS: [TextDef; 20] = [
    def(
        b"get",
        Type::Load,
        Code::Get,
        TextKind::Message,
        &[(MultiKeys, REQ)],
    ),
    def(
        b"gets",
        Type::Load,
        Code::Gets,
        TextKind::Message,
        &[(MultiKeys, REQ)],
    ),
    def(
        b"set",
        Type::Store,
        Code::Set,
        TextKind::DataRequest,
        STORE_ARGS,
    ),
    def(
        b"add",
        Type::Store,
        Code::Add,
        TextKind::DataRequest,
        STORE_ARGS,
    ),
    def(
        b"replace",
        Type::Store,
        Code::Replace,
        TextKind::DataRequest,
        STORE_ARGS,
    ),
    def(
        b"append",
        Type::Store,
        Code::Append,
        TextKind::DataRequest,
        STORE_ARGS,
    ),
    def(
        b"prepend",
        Type::Store,
        Code::Prepend,
        TextKind::DataRequest,
        STORE_ARGS,
    ),
    def(
        b"cas",
        Type::Store,
        Code::Cas,
        TextKind::DataRequest,
        CAS_ARGS,
    ),
    def(
        b"incr",
        Type::Counter,
        Code::Incr,
        TextKind::Message,
        COUNTER_ARGS,
    ),
    def(
        b"decr",
        Type::Counter,
        Code::Decr,
        TextKind::Message,
        COUNTER_ARGS,
    ),
    def(
        b"touch",
        Type::Store,
        Code::Touch,
        TextKind::Message,
        &[(Key, REQ), (ExpTime, REQ), (NoReply, OPT)],
    ),
    def(
        b"delete",
        Type::Delete,
        Code::Delete,
        TextKind::Message,
        &[(Key, REQ), (NoReply, OPT)],
    ),
    def(
        b"flush_all",
        Type::Delete,
        Code::FlushAll,
        TextKind::Message,
        &[(ExpTime, OPT)],
    ),
    def(
        b"slabs",
        Type::SlabCtrl,
        Code::Unknown,
        TextKind::Sub(&SLABS_COMMANDS),
        &[],
    ),
    def(
        b"lru_crawler",
        Type::LruCrawler,
        Code::Unknown,
        TextKind::Sub(&LRU_CRAWLER_COMMANDS),
        &[],
    ),
    def(
        b"stats",
        Type::Stats,
        Code::Stats,
        TextKind::Message,
        &[(Raw, REQ)],
    ),
    def(
        b"verbosity",
        Type::Info,
        Code::Verbosity,
        TextKind::Message,
        &[(Value("verbosity"), REQ)],
    ),
    def(
        b"version",
        Type::Info,
        Code::Version,
        TextKind::Message,
        &[],
    ),
    def(
        b"quit",
        Type::Info,
        Code::Quit,
        TextKind::Message,
        &[(NoReply, OPT)],
    ),
    // Never matched (a request word is lower case); keeps the table's length honest.
    def(b"", Type::Unknown, Code::Unknown, TextKind::Unknown, &[]),
];

static RESPONSE_COMMANDS: [TextDef; 20] = [
    def(
        b"VALUE",
        Type::Load,
        Code::ResValue,
        TextKind::DataResponse,
        &[(Key, REQ), (Flags, REQ), (Bytes, REQ), (CasUnique, OPT)],
    ),
    def(b"END", Type::Load, Code::ResEnd, TextKind::Message, &[]),
    def(
        b"STORED",
        Type::Success,
        Code::ResStored,
        TextKind::Message,
        &[],
    ),
    def(
        b"NOT_STORED",
        Type::Fail,
        Code::ResNotStored,
        TextKind::Message,
        &[],
    ),
    def(
        b"EXISTS",
        Type::Success,
        Code::ResExists,
        TextKind::Message,
        &[],
    ),
    def(
        b"NOT_FOUND",
        Type::Fail,
        Code::ResNotFound,
        TextKind::Message,
        &[],
    ),
    def(
        b"TOUCHED",
        Type::Success,
        Code::ResTouched,
        TextKind::Message,
        &[],
    ),
    def(
        b"DELETED",
        Type::Success,
        Code::ResDeleted,
        TextKind::Message,
        &[],
    ),
    def(b"OK", Type::Success, Code::ResOk, TextKind::Message, &[]),
    def(b"ERROR", Type::Fail, Code::ErrError, TextKind::Message, &[]),
    def(
        b"CLIENT_ERROR",
        Type::Fail,
        Code::ErrClientError,
        TextKind::Message,
        ERR_ARGS,
    ),
    def(
        b"SERVER_ERROR",
        Type::Fail,
        Code::ErrServerError,
        TextKind::Message,
        ERR_ARGS,
    ),
    def(
        b"BUSY",
        Type::Fail,
        Code::ErrBusy,
        TextKind::Message,
        ERR_ARGS,
    ),
    def(
        b"BADCLASS",
        Type::Fail,
        Code::ErrBadClass,
        TextKind::Message,
        ERR_ARGS,
    ),
    def(
        b"NOSPARE",
        Type::Fail,
        Code::ErrNoSpare,
        TextKind::Message,
        ERR_ARGS,
    ),
    def(
        b"NOTFULL",
        Type::Fail,
        Code::ErrNotFull,
        TextKind::Message,
        ERR_ARGS,
    ),
    def(
        b"UNSAFE",
        Type::Fail,
        Code::ErrUnsafe,
        TextKind::Message,
        ERR_ARGS,
    ),
    def(
        b"SAME",
        Type::Fail,
        Code::ErrSame,
        TextKind::Message,
        ERR_ARGS,
    ),
    def(
        b"STAT",
        Type::Stats,
        Code::Stat,
        TextKind::Message,
        &[(Stat, REQ)],
    ),
    // The version string is not kept (Packetbeat declares no argument for it).
    def(
        b"VERSION",
        Type::Info,
        Code::ResVersion,
        TextKind::Message,
        &[],
    ),
];

static COUNTER_RESPONSE: TextDef = def(
    b"",
    Type::Counter,
    Code::CounterOpRes,
    TextKind::CounterResponse,
    &[],
);
static UNKNOWN_COMMAND: TextDef = def(
    b"UNKNOWN",
    Type::Unknown,
    Code::Unknown,
    TextKind::Unknown,
    &[],
);

/// A binary extras field (`extraFlags`, `extraExpTime`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extra {
    Flags,
    ExpTime,
    /// A u64 into `value` / `value2` under this name.
    Value(&'static str),
    Value2(&'static str),
    /// A u32 into `value`.
    Value32(&'static str),
    /// No extras; the response's stats are written.
    Stats,
}

/// What a binary command does with its value (`valueParser`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Data,
    Counter,
    Version,
    Stat,
}

/// A binary command (`defBinaryCommand`).
#[derive(Debug, PartialEq, Eq)]
pub struct BinDef {
    pub typ: Type,
    pub code: Code,
    pub request: &'static [Extra],
    pub response: &'static [Extra],
    pub value: ValueKind,
}

const fn bin(
    typ: Type,
    code: Code,
    request: &'static [Extra],
    response: &'static [Extra],
    value: ValueKind,
) -> BinDef {
    BinDef {
        typ,
        code,
        request,
        response,
        value,
    }
}

static BIN_UNKNOWN: BinDef = bin(Type::Unknown, Code::Unknown, &[], &[], ValueKind::Data);
static BIN_GET: BinDef = bin(Type::Load, Code::Get, &[], &[Extra::Flags], ValueKind::Data);
static BIN_DELETE: BinDef = bin(Type::Delete, Code::Delete, &[], &[], ValueKind::Data);
static BIN_FLUSH: BinDef = bin(
    Type::Delete,
    Code::Delete,
    &[Extra::ExpTime],
    &[],
    ValueKind::Data,
);
const STORE_EXTRAS: &[Extra] = &[Extra::Flags, Extra::ExpTime];
static BIN_SET: BinDef = bin(Type::Store, Code::Set, STORE_EXTRAS, &[], ValueKind::Data);
static BIN_ADD: BinDef = bin(Type::Store, Code::Add, STORE_EXTRAS, &[], ValueKind::Data);
static BIN_REPLACE: BinDef = bin(
    Type::Store,
    Code::Replace,
    STORE_EXTRAS,
    &[],
    ValueKind::Data,
);
static BIN_APPEND: BinDef = bin(Type::Store, Code::Append, &[], &[], ValueKind::Data);
static BIN_PREPEND: BinDef = bin(Type::Store, Code::Prepend, &[], &[], ValueKind::Data);
static BIN_NOOP: BinDef = bin(Type::Info, Code::NoOp, &[], &[], ValueKind::Data);
const COUNTER_EXTRAS: &[Extra] = &[
    Extra::Value("delta"),
    Extra::Value2("initial"),
    Extra::ExpTime,
];
static BIN_INCR: BinDef = bin(
    Type::Counter,
    Code::Incr,
    COUNTER_EXTRAS,
    &[],
    ValueKind::Counter,
);
static BIN_DECR: BinDef = bin(
    Type::Counter,
    Code::Decr,
    COUNTER_EXTRAS,
    &[],
    ValueKind::Counter,
);
static BIN_QUIT: BinDef = bin(Type::Info, Code::Quit, &[], &[], ValueKind::Data);
static BIN_VERSION: BinDef = bin(Type::Info, Code::Version, &[], &[], ValueKind::Version);
static BIN_TOUCH: BinDef = bin(
    Type::Store,
    Code::Touch,
    &[Extra::ExpTime],
    &[],
    ValueKind::Data,
);
static BIN_VERBOSITY: BinDef = bin(
    Type::Info,
    Code::Verbosity,
    &[Extra::Value32("verbosity")],
    &[],
    ValueKind::Data,
);
static BIN_SASL_LIST: BinDef = bin(Type::Auth, Code::SaslList, &[], &[], ValueKind::Data);
static BIN_SASL_AUTH: BinDef = bin(Type::Auth, Code::SaslAuth, &[], &[], ValueKind::Data);
static BIN_SASL_STEP: BinDef = bin(Type::Auth, Code::SaslStep, &[], &[], ValueKind::Data);
static BIN_STAT: BinDef = bin(
    Type::Stats,
    Code::Stats,
    &[],
    &[Extra::Stats],
    ValueKind::Stat,
);

/// The command of a binary opcode (`memcacheBinaryCommandTable`, unknown opcodes included).
pub fn binary_command(op: u8) -> &'static BinDef {
    use codes::*;
    match op {
        OP_GET | OP_GETK | OP_GETKQ | OP_GETQ => &BIN_GET,
        OP_DELETE | OP_DELETEQ => &BIN_DELETE,
        OP_FLUSH | OP_FLUSHQ => &BIN_FLUSH,
        OP_SET | OP_SETQ => &BIN_SET,
        OP_ADD | OP_ADDQ => &BIN_ADD,
        OP_REPLACE | OP_REPLACEQ => &BIN_REPLACE,
        OP_APPEND | OP_APPENDQ => &BIN_APPEND,
        OP_PREPEND | OP_PREPENDQ => &BIN_PREPEND,
        OP_NOOP => &BIN_NOOP,
        OP_INCREMENT | OP_INCREMENTQ => &BIN_INCR,
        OP_DECREMENT | OP_DECREMENTQ => &BIN_DECR,
        OP_QUIT | OP_QUITQ => &BIN_QUIT,
        OP_VERSION => &BIN_VERSION,
        OP_TOUCH => &BIN_TOUCH,
        OP_VERBOSITY => &BIN_VERBOSITY,
        OP_SASL_LIST_MECHS => &BIN_SASL_LIST,
        OP_SASL_AUTH => &BIN_SASL_AUTH,
        OP_SASL_STEP => &BIN_SASL_STEP,
        OP_STAT => &BIN_STAT,
        _ => &BIN_UNKNOWN,
    }
}

/// The command a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Text(&'static TextDef),
    Binary(&'static BinDef),
}

impl Command {
    pub fn typ(self) -> Type {
        match self {
            Command::Text(d) => d.typ,
            Command::Binary(d) => d.typ,
        }
    }

    pub fn code(self) -> Code {
        match self {
            Command::Text(d) => d.code,
            Command::Binary(d) => d.code,
        }
    }
}

/// One memcache message (Packetbeat's `message`), as parsed; pairing adds to it
/// (merged multi-line responses, notes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub command: Command,
    pub is_request: bool,
    pub is_binary: bool,
    /// Bytes on the wire (merged responses: their sum).
    pub size: usize,
    pub notes: Vec<String>,
    /// A multi-line response (`VALUE`, `STAT`, binary stat) waits for its end.
    pub is_complete: bool,

    // Text.
    /// The whole command line (written for unknown commands).
    pub command_line: Vec<u8>,
    pub raw_args: Vec<u8>,
    pub noreply: bool,
    pub error_msg: Vec<u8>,

    // Binary.
    pub opcode: u8,
    pub status: u16,
    pub vbucket: u16,
    pub opaque: u32,
    pub is_quiet: bool,

    // Values.
    pub cas_unique: Option<u64>,
    pub keys: Option<Vec<Vec<u8>>>,
    pub flags: u32,
    pub exptime: u32,
    pub value: u64,
    pub value2: u64,
    pub ivalue: i64,
    pub ivalue2: i64,
    /// A binary version response's text.
    pub version: Option<Vec<u8>>,
    /// A text request's data block (kept when `maxvalues` is not 0).
    pub data: Option<Vec<u8>>,
    pub values: Vec<Vec<u8>>,
    /// Length of the data block(s).
    pub bytes: u64,
    /// Bytes of the data block lost in a gap of the capture (the rest was still parsed).
    pub bytes_lost: u64,
    pub count_values: u32,
    pub stats: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Message {
    fn new(command: Command, is_request: bool, is_binary: bool) -> Message {
        Message {
            command,
            is_request,
            is_binary,
            size: 0,
            notes: Vec::new(),
            is_complete: false,
            command_line: Vec::new(),
            raw_args: Vec::new(),
            noreply: false,
            error_msg: Vec::new(),
            opcode: 0,
            status: 0,
            vbucket: 0,
            opaque: 0,
            is_quiet: false,
            cas_unique: None,
            keys: None,
            flags: 0,
            exptime: 0,
            value: 0,
            value2: 0,
            ivalue: 0,
            ivalue2: 0,
            version: None,
            data: None,
            values: Vec::new(),
            bytes: 0,
            bytes_lost: 0,
            count_values: 0,
            stats: Vec::new(),
        }
    }

    /// `appendMessageData`: one data block, kept within `maxvalues` / `maxbytespervalue`.
    fn append_data(&mut self, cfg: &ParserConfig, data: &[u8]) {
        if cfg.max_values != 0 {
            let kept = data[..data.len().min(cfg.max_bytes_per_value)].to_vec();
            self.data = Some(kept.clone());
            self.values.push(kept);
        }
        self.count_values += 1;
    }
}

/// Parser errors (`errors.go`); they are logged, never published.
pub const ERR_UNKNOWN_COMMAND: &str = "unknown memcache command found";
pub const ERR_NO_MORE_ARGUMENT: &str = "no more command arguments";
pub const ERR_EXPECTED_NUMBER: &str = "expected number value";
pub const ERR_EXPECTED_NO_REPLY: &str = "expected noreply in argument list";
pub const ERR_EXPECTED_CRLF: &str = "expected CRLF";
pub const ERR_EXPECTED_KEYS: &str = "message has no keys";
pub const ERR_INVALID_MAGIC: &str = "invalid memcache magic number";
pub const ERR_LEN: &str = "length field error";
/// The note of an extras field shorter than its value (streambuf's end-of-buffer error).
pub const NOTE_EXTRAS_EOB: &str = "unexpected end of buffer";

/// The next message at the start of `data` (`doParseCommand`).
pub fn parse(cfg: &ParserConfig, data: &[u8]) -> Parsed<Message> {
    parse_lossy(cfg, data, 0)
}

/// [`parse`] for a message whose data block lost `lost` bytes in a gap of the capture (see
/// [`pending_data`]): the block is that much shorter in `data`, counted but not kept.
pub fn parse_lossy(cfg: &ParserConfig, data: &[u8], lost: usize) -> Parsed<Message> {
    match step(cfg, data) {
        Step::Done(p) => p,
        Step::AtData {
            msg,
            header_len,
            data_len,
        } => finish_data(cfg, data, lost, msg, header_len, data_len),
    }
}

/// Where a message waiting for its data block stands: whether it is a request, its data
/// length, and the bytes before the block. `None` when `data` does not start with the complete
/// header of such a message.
pub fn pending_data(cfg: &ParserConfig, data: &[u8]) -> Option<(bool, usize, usize)> {
    match step(cfg, data) {
        Step::AtData {
            msg,
            header_len,
            data_len,
        } => Some((msg.is_request, data_len, header_len)),
        Step::Done(_) => None,
    }
}

/// A message parsed up to its data block, or the parse's end.
enum Step {
    Done(Parsed<Message>),
    AtData {
        msg: Message,
        header_len: usize,
        data_len: usize,
    },
}

fn step(cfg: &ParserConfig, data: &[u8]) -> Step {
    if data.len() < 2 {
        return Step::Done(Parsed::Incomplete);
    }
    if data[0] == codes::MAGIC_REQUEST || data[0] == codes::MAGIC_RESPONSE {
        parse_binary(cfg, data)
    } else {
        parse_text(cfg, data)
    }
}

/// `parseData` / `parseDataBinary`: the data block (and, in the text protocol, its CRLF).
fn finish_data(
    cfg: &ParserConfig,
    data: &[u8],
    lost: usize,
    mut msg: Message,
    header_len: usize,
    data_len: usize,
) -> Parsed<Message> {
    let text = !msg.is_binary;
    let need = data_len.saturating_sub(lost);
    let Some(end) = header_len
        .checked_add(need)
        .and_then(|e| e.checked_add(if text { 2 } else { 0 }))
    else {
        return Parsed::Error(ERR_LEN);
    };
    if data.len() < end {
        return Parsed::Incomplete;
    }
    if text && &data[end - 2..end] != b"\r\n" {
        return Parsed::Error(ERR_EXPECTED_CRLF);
    }
    if lost > 0 {
        msg.count_values += 1;
        msg.bytes_lost = lost as u64;
    } else {
        msg.append_data(cfg, &data[header_len..header_len + need]);
    }
    msg.size = end;
    Parsed::Message { msg, consumed: end }
}

/// A cursor over a text argument list, with streambuf's rules: arguments are separated by
/// spaces, a missing argument is [`ERR_NO_MORE_ARGUMENT`].
struct Args<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Args<'a> {
    fn rest(&self) -> &'a [u8] {
        &self.b[self.pos..]
    }

    /// `parseNextArg`: skips the separating spaces.
    fn next_arg(&mut self) -> Result<(), &'static str> {
        while self.pos < self.b.len() && self.b[self.pos] == b' ' {
            self.pos += 1;
        }
        if self.pos >= self.b.len() {
            return Err(ERR_NO_MORE_ARGUMENT);
        }
        Ok(())
    }

    /// `parseStringArg`: the next word.
    fn string(&mut self) -> Result<&'a [u8], &'static str> {
        self.next_arg()?;
        let start = self.pos;
        while self.pos < self.b.len() && self.b[self.pos] != b' ' {
            self.pos += 1;
        }
        Ok(&self.b[start..self.pos])
    }

    /// `UintASCII` after `parseNextArg` (whose error is ignored, as Packetbeat does).
    fn uint(&mut self) -> Result<u64, &'static str> {
        let _ = self.next_arg();
        self.digits()
    }

    fn digits(&mut self) -> Result<u64, &'static str> {
        if self.pos >= self.b.len() {
            return Err(ERR_NO_MORE_ARGUMENT);
        }
        if !self.b[self.pos].is_ascii_digit() {
            return Err(ERR_EXPECTED_NUMBER);
        }
        let mut v: u64 = 0;
        while self.pos < self.b.len() && self.b[self.pos].is_ascii_digit() {
            v = v
                .wrapping_mul(10)
                .wrapping_add(u64::from(self.b[self.pos] - b'0'));
            self.pos += 1;
        }
        Ok(v)
    }

    /// `IntASCII`: an optional sign, then digits.
    fn int(&mut self) -> Result<i64, &'static str> {
        let _ = self.next_arg();
        let neg = self.pos < self.b.len() && self.b[self.pos] == b'-';
        if neg || (self.pos < self.b.len() && self.b[self.pos] == b'+') {
            self.pos += 1;
        }
        let v = self.digits()? as i64;
        Ok(if neg { v.wrapping_neg() } else { v })
    }
}

/// `splitCommandAndArgs`: the first word and what follows the space after it.
fn split_command(line: &[u8]) -> Result<(&[u8], &[u8]), &'static str> {
    let mut a = Args { b: line, pos: 0 };
    let command = a.string()?;
    let rest = a.rest();
    Ok((command, if rest.is_empty() { rest } else { &rest[1..] }))
}

fn find(table: &'static [TextDef], name: &[u8]) -> Option<&'static TextDef> {
    table.iter().find(|d| !d.name.is_empty() && d.name == name)
}

fn parse_text(cfg: &ParserConfig, data: &[u8]) -> Step {
    match parse_text_header(cfg, data) {
        Ok(step) => step,
        Err(e) => Step::Done(Parsed::Error(e)),
    }
}

fn parse_text_header(cfg: &ParserConfig, data: &[u8]) -> Result<Step, &'static str> {
    let Some(eol) = data.windows(2).position(|w| w == b"\r\n") else {
        return Ok(Step::Done(Parsed::Incomplete));
    };
    let line = &data[..eol];
    let line_len = eol + 2;
    let (command, args) = split_command(line)?;
    let is_request = command[0].is_ascii_lowercase();
    let mut def = if is_request {
        find(&REQUEST_COMMANDS, command)
    } else {
        find(&RESPONSE_COMMANDS, command)
            .or_else(|| command[0].is_ascii_digit().then_some(&COUNTER_RESPONSE))
    };
    if def.is_none() && cfg.parse_unknown {
        def = Some(&UNKNOWN_COMMAND);
    }
    let Some(mut def) = def else {
        return Err(ERR_UNKNOWN_COMMAND);
    };
    let mut raw_args = args;
    if let TextKind::Sub(table) = def.kind {
        let (sub, sub_args) = split_command(args)?;
        def = match find(table, sub) {
            Some(d) => d,
            None if cfg.parse_unknown => &UNKNOWN_COMMAND,
            None => return Err(ERR_UNKNOWN_COMMAND),
        };
        raw_args = sub_args;
    }
    let mut msg = Message::new(Command::Text(def), is_request, false);
    // Kept only where the event writes them.
    if def.args.iter().any(|&(a, _)| a == Arg::Raw) {
        msg.raw_args = raw_args.to_vec();
    }
    if def.kind == TextKind::Unknown {
        msg.command_line = line.to_vec();
    }
    match def.kind {
        TextKind::Unknown | TextKind::Sub(_) => {}
        TextKind::CounterResponse => {
            let mut a = Args { b: command, pos: 0 };
            msg.value = a.digits()?;
        }
        TextKind::Message | TextKind::DataRequest | TextKind::DataResponse => {
            parse_text_args(&mut msg, def.args, raw_args)?;
        }
    }
    if matches!(def.kind, TextKind::DataRequest | TextKind::DataResponse) {
        let data_len = msg.bytes as usize;
        return Ok(Step::AtData {
            msg,
            header_len: line_len,
            data_len,
        });
    }
    msg.size = line_len;
    Ok(Step::Done(Parsed::Message {
        msg,
        consumed: line_len,
    }))
}

/// `parseTextArgs`: each argument in turn; an optional one may be missing.
fn parse_text_args(
    msg: &mut Message,
    args: &[(Arg, bool)],
    raw: &[u8],
) -> Result<(), &'static str> {
    let mut a = Args { b: raw, pos: 0 };
    for &(arg, optional) in args {
        match parse_text_arg(msg, arg, &mut a) {
            Err(ERR_NO_MORE_ARGUMENT) if optional => {}
            Err(e) => return Err(e),
            Ok(()) => {}
        }
    }
    Ok(())
}

fn parse_text_arg(msg: &mut Message, arg: Arg, a: &mut Args) -> Result<(), &'static str> {
    match arg {
        Arg::Key => msg.keys = Some(vec![a.string()?.to_vec()]),
        Arg::MultiKeys => {
            let rest = a.rest();
            a.pos = a.b.len();
            let keys: Vec<Vec<u8>> = rest
                .split(|&b| b == b' ')
                .filter(|k| !k.is_empty())
                .map(<[u8]>::to_vec)
                .collect();
            if keys.is_empty() {
                return Err(ERR_EXPECTED_KEYS);
            }
            msg.keys = Some(keys);
        }
        Arg::Flags => msg.flags = a.uint()? as u32,
        Arg::ExpTime => msg.exptime = a.uint()? as u32,
        Arg::Bytes => msg.bytes = u64::from(a.uint()? as u32),
        Arg::CasUnique => msg.cas_unique = Some(a.uint()?),
        Arg::Automove | Arg::Value(_) => msg.value = a.uint()?,
        Arg::IValue(_) => msg.ivalue = a.int()?,
        Arg::IValue2(_) => msg.ivalue2 = a.int()?,
        Arg::Raw => {}
        Arg::Stat => {
            let name = a.string().unwrap_or_default().to_vec();
            let value = a.string().unwrap_or_default().to_vec();
            msg.stats.push((name, value));
        }
        Arg::NoReply => {
            a.next_arg()?;
            if !a.rest().starts_with(b"noreply") {
                return Err(ERR_EXPECTED_NO_REPLY);
            }
            msg.noreply = true;
        }
        Arg::ErrorMessage => msg.error_msg = a.rest().to_vec(),
    }
    Ok(())
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn be64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

const HEADER: usize = 24;

/// `parseBinaryCommand` and `makeParseBinary`.
fn parse_binary(_cfg: &ParserConfig, data: &[u8]) -> Step {
    use Step::Done;
    if data.len() < HEADER {
        return Done(Parsed::Incomplete);
    }
    let is_request = data[0] == codes::MAGIC_REQUEST;
    let opcode = data[1];
    let key_len = usize::from(be16(data, 2));
    let extra_len = usize::from(data[4]);
    if data.len() < HEADER + extra_len + key_len {
        return Done(Parsed::Incomplete);
    }
    let def = binary_command(opcode);
    let mut msg = Message::new(Command::Binary(def), is_request, true);
    msg.opcode = opcode;
    msg.is_quiet = codes::is_quiet(opcode);
    if is_request {
        msg.vbucket = be16(data, 6);
    } else {
        msg.status = be16(data, 6);
    }
    let cas = be64(data, 16);
    if cas != 0 {
        msg.cas_unique = Some(cas);
    }
    msg.opaque = be32(data, 12);
    let total_len = be32(data, 8) as usize;
    if total_len == 0 {
        // No extras, key or value (whatever the other length fields say).
        msg.size = HEADER;
        return Done(Parsed::Message {
            msg,
            consumed: HEADER,
        });
    }
    let Some(value_len) = total_len.checked_sub(extra_len + key_len) else {
        return Done(Parsed::Error(ERR_LEN));
    };
    let special = def.value != ValueKind::Data;
    let is_special_value = special && value_len > 0;
    if is_special_value && data.len() < HEADER + total_len {
        return Done(Parsed::Incomplete);
    }
    let mut pos = HEADER;
    if extra_len > 0 {
        let extras = &data[pos..pos + extra_len];
        pos += extra_len;
        let args = if is_request && !def.request.is_empty() {
            def.request
        } else {
            def.response
        };
        if let Err(e) = parse_extras(&mut msg, args, extras) {
            msg.notes.push(e.to_string());
        }
    }
    if key_len > 0 {
        msg.keys = Some(vec![data[pos..pos + key_len].to_vec()]);
        pos += key_len;
    }
    if value_len == 0 {
        msg.size = pos;
        return Done(Parsed::Message { msg, consumed: pos });
    }
    msg.bytes = value_len as u64;
    let value_kind = if is_request {
        // Requests of the counter, version and stat commands carry plain data.
        ValueKind::Data
    } else {
        def.value
    };
    match value_kind {
        ValueKind::Data => {
            return Step::AtData {
                msg,
                header_len: pos,
                data_len: value_len,
            };
        }
        ValueKind::Counter => {
            if value_len < 8 {
                return Done(Parsed::Error(NOTE_EXTRAS_EOB));
            }
            msg.value = be64(data, pos);
            pos += value_len;
            // Packetbeat advances 8 more bytes after the counter value when the buffer holds
            // them (its `buf.Advance(8)` after collecting the value): they count as this
            // message's and are skipped.
            if data.len() >= pos + 8 {
                pos += 8;
            }
        }
        ValueKind::Version => {
            msg.version = Some(data[pos..pos + value_len].to_vec());
            pos += value_len;
        }
        ValueKind::Stat => {
            let value = data[pos..pos + value_len].to_vec();
            pos += value_len;
            let Some(name) = msg.keys.as_ref().and_then(|k| k.first()).cloned() else {
                return Done(Parsed::Error(ERR_EXPECTED_KEYS));
            };
            msg.stats.push((name, value));
        }
    }
    msg.size = pos;
    Done(Parsed::Message { msg, consumed: pos })
}

/// `parseBinaryArgs`: the extras in declaration order; the first that does not fit stops.
fn parse_extras(msg: &mut Message, args: &[Extra], extras: &[u8]) -> Result<(), &'static str> {
    let mut pos = 0;
    let mut take = |n: usize| -> Result<&[u8], &'static str> {
        let b = extras.get(pos..pos + n).ok_or(NOTE_EXTRAS_EOB)?;
        pos += n;
        Ok(b)
    };
    for &arg in args {
        match arg {
            Extra::Flags => msg.flags = be32(take(4)?, 0),
            Extra::ExpTime => msg.exptime = be32(take(4)?, 0),
            Extra::Value(_) => msg.value = be64(take(8)?, 0),
            Extra::Value2(_) => msg.value2 = be64(take(8)?, 0),
            Extra::Value32(_) => msg.value = u64::from(be32(take(4)?, 0)),
            Extra::Stats => {}
        }
    }
    Ok(())
}
