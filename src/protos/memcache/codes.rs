//! Packetbeat's memcache codes and their names (`codes.go`): command classes, the command codes
//! shared by the text and binary protocols, binary opcodes and binary status codes. The names are
//! Packetbeat's, typos included (`TOCHED`), because they are what the events carry.

/// A command's class (`commandTypeCode`): `memcache.*.type`, and `event.action` in lower case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    Unknown,
    Load,
    Store,
    Delete,
    Counter,
    Info,
    SlabCtrl,
    LruCrawler,
    Stats,
    Success,
    Fail,
    Auth,
}

impl Type {
    pub fn name(self) -> &'static str {
        match self {
            Type::Unknown => "UNKNOWN",
            Type::Load => "Load",
            Type::Store => "Store",
            Type::Delete => "Delete",
            Type::Counter => "Counter",
            Type::Info => "Info",
            Type::SlabCtrl => "SlabCtrl",
            Type::LruCrawler => "LRUCrawler",
            Type::Stats => "Stats",
            Type::Success => "Success",
            Type::Fail => "Fail",
            Type::Auth => "Auth",
        }
    }

    /// `event.action`'s suffix: the class name in lower case.
    pub fn action(self) -> &'static str {
        match self {
            Type::Unknown => "memcache.unknown",
            Type::Load => "memcache.load",
            Type::Store => "memcache.store",
            Type::Delete => "memcache.delete",
            Type::Counter => "memcache.counter",
            Type::Info => "memcache.info",
            Type::SlabCtrl => "memcache.slabctrl",
            Type::LruCrawler => "memcache.lrucrawler",
            Type::Stats => "memcache.stats",
            Type::Success => "memcache.success",
            Type::Fail => "memcache.fail",
            Type::Auth => "memcache.auth",
        }
    }
}

/// A command or response code (`commandCode`): `memcache.*.command`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Unknown,
    NoOp,
    Set,
    Add,
    Replace,
    Append,
    Prepend,
    Cas,
    Get,
    Gets,
    Incr,
    Decr,
    CounterOpRes,
    Touch,
    Delete,
    SlabsReassign,
    SlabsAutomove,
    LruEnable,
    LruDisable,
    LruSleep,
    LruToCrawl,
    Stats,
    Stat,
    FlushAll,
    Verbosity,
    Quit,
    Version,
    SaslList,
    SaslAuth,
    SaslStep,
    ResOk,
    ResValue,
    ResEnd,
    ResStored,
    ResNotStored,
    ResExists,
    ResNotFound,
    ResTouched,
    ResDeleted,
    ErrError,
    ErrClientError,
    ErrServerError,
    ErrBusy,
    ErrBadClass,
    ErrNoSpare,
    ErrNotFull,
    ErrUnsafe,
    ErrSame,
    ResVersion,
}

impl Code {
    pub fn name(self) -> &'static str {
        match self {
            Code::Unknown => "UNKNOWN",
            Code::NoOp => "noop",
            Code::Set => "set",
            Code::Add => "add",
            Code::Replace => "replace",
            Code::Append => "append",
            Code::Prepend => "prepend",
            Code::Cas => "cas",
            Code::Get => "get",
            Code::Gets => "gets",
            Code::Incr => "incr",
            Code::Decr => "decr",
            Code::CounterOpRes => "<counter_op_res>",
            Code::Touch => "touch",
            Code::Delete => "delete",
            Code::SlabsReassign => "slabs reassign",
            Code::SlabsAutomove => "slabs automove",
            Code::LruEnable => "lru_crawler enable",
            Code::LruDisable => "lru_crawler disable",
            Code::LruSleep => "lru_crawler sleep",
            Code::LruToCrawl => "lru_crawler tocrawl",
            Code::Stats => "stats",
            Code::Stat => "STAT",
            Code::FlushAll => "flush_all",
            Code::Verbosity => "verbosity",
            Code::Quit => "quit",
            Code::Version => "version",
            Code::SaslList => "sasl_list",
            Code::SaslAuth => "sasl_auth",
            Code::SaslStep => "sasl_step",
            Code::ResOk => "OK",
            Code::ResValue => "VALUE",
            Code::ResEnd => "END",
            Code::ResStored => "STORED",
            Code::ResNotStored => "NOT_STORED",
            Code::ResExists => "EXISTS",
            Code::ResNotFound => "NOT_FOUND",
            Code::ResTouched => "TOCHED",
            Code::ResDeleted => "DELETED",
            Code::ErrError => "ERROR",
            Code::ErrClientError => "CLIENT_ERROR",
            Code::ErrServerError => "SERVER_ERROR",
            Code::ErrBusy => "BUSY",
            Code::ErrBadClass => "BADCLASS",
            Code::ErrNoSpare => "NOSPARE",
            Code::ErrNotFull => "NOTFULL",
            Code::ErrUnsafe => "UNSAFE",
            Code::ErrSame => "SAME",
            Code::ResVersion => "VERSION",
        }
    }
}

pub const MAGIC_REQUEST: u8 = 0x80;
pub const MAGIC_RESPONSE: u8 = 0x81;

pub const OP_GET: u8 = 0x00;
pub const OP_SET: u8 = 0x01;
pub const OP_ADD: u8 = 0x02;
pub const OP_REPLACE: u8 = 0x03;
pub const OP_DELETE: u8 = 0x04;
pub const OP_INCREMENT: u8 = 0x05;
pub const OP_DECREMENT: u8 = 0x06;
pub const OP_QUIT: u8 = 0x07;
pub const OP_FLUSH: u8 = 0x08;
pub const OP_GETQ: u8 = 0x09;
pub const OP_NOOP: u8 = 0x0a;
pub const OP_VERSION: u8 = 0x0b;
pub const OP_GETK: u8 = 0x0c;
pub const OP_GETKQ: u8 = 0x0d;
pub const OP_APPEND: u8 = 0x0e;
pub const OP_PREPEND: u8 = 0x0f;
pub const OP_STAT: u8 = 0x10;
pub const OP_SETQ: u8 = 0x11;
pub const OP_ADDQ: u8 = 0x12;
pub const OP_REPLACEQ: u8 = 0x13;
pub const OP_DELETEQ: u8 = 0x14;
pub const OP_INCREMENTQ: u8 = 0x15;
pub const OP_DECREMENTQ: u8 = 0x16;
pub const OP_QUITQ: u8 = 0x17;
pub const OP_FLUSHQ: u8 = 0x18;
pub const OP_APPENDQ: u8 = 0x19;
pub const OP_PREPENDQ: u8 = 0x1a;
pub const OP_VERBOSITY: u8 = 0x1b;
pub const OP_TOUCH: u8 = 0x1c;
pub const OP_SASL_LIST_MECHS: u8 = 0x20;
pub const OP_SASL_AUTH: u8 = 0x21;
pub const OP_SASL_STEP: u8 = 0x22;

/// `memcache.*.opcode`: the opcode's name, empty for one Packetbeat does not name (Go's map
/// lookup of a missing key).
pub fn opcode_name(op: u8) -> &'static str {
    match op {
        0x00 => "Get",
        0x01 => "Set",
        0x02 => "Add",
        0x03 => "Replace",
        0x04 => "Delete",
        0x05 => "Increment",
        0x06 => "Decrement",
        0x07 => "Quit",
        0x08 => "Flush",
        0x09 => "GetQ",
        0x0a => "No-op",
        0x0b => "Version",
        0x0c => "GetK",
        0x0d => "GetKQ",
        0x0e => "Append",
        0x0f => "Prepend",
        0x10 => "Stat",
        0x11 => "SetQ",
        0x12 => "AddQ",
        0x13 => "ReplaceQ",
        0x14 => "DeleteQ",
        0x15 => "IncrementQ",
        0x16 => "DecrementQ",
        0x17 => "QuitQ",
        0x18 => "FlushQ",
        0x19 => "AppendQ",
        0x1a => "PrependQ",
        0x1b => "Verbosity",
        0x1c => "Touch",
        0x1d => "GAT",
        0x1e => "GATQ",
        0x20 => "SASL list mechs",
        0x21 => "SASL Auth",
        0x22 => "SASL Step",
        0x23 => "GatK",
        0x24 => "GatKQ",
        0x30 => "RGet",
        0x31 => "RSet",
        0x32 => "RSetQ",
        0x33 => "RAppend",
        0x34 => "RAppendQ",
        0x35 => "RPrepend",
        0x36 => "RPrependQ",
        0x37 => "RDelete",
        0x38 => "RDeleteQ",
        0x39 => "RIncr",
        0x3a => "RIncrQ",
        0x3b => "RDecr",
        0x3c => "RDecrQ",
        0x3d => "Set VBucket",
        0x3e => "Get VBucket",
        0x3f => "Del VBucket",
        0x40 => "TAP Connect",
        0x41 => "TAP Mutation",
        0x42 => "TAP Delete",
        0x43 => "TAP Flush",
        0x44 => "TAP Opaque",
        0x45 => "TAP VBucket Set",
        0x46 => "TAP Checkpoint Start",
        0x47 => "TAP Checkpoint End",
        _ => "",
    }
}

/// Quiet opcodes: the server answers them only on error (`isQuietOpcode`).
pub fn is_quiet(op: u8) -> bool {
    matches!(
        op,
        0x09 | 0x0d
            | 0x11
            | 0x12
            | 0x13
            | 0x14
            | 0x15
            | 0x16
            | 0x17
            | 0x18
            | 0x19
            | 0x1a
            | 0x1e
            | 0x24
            | 0x32
            | 0x34
            | 0x36
            | 0x38
            | 0x3a
            | 0x3c
    )
}

/// `memcache.response.status`: a binary status code's name, empty for an unknown code.
pub fn status_name(code: u16) -> &'static str {
    match code {
        0x00 => "Success",
        0x01 => "Key not found",
        0x02 => "Key exists",
        0x03 => "Value too large",
        0x04 => "Invalid arguments",
        0x05 => "Item not stored",
        0x06 => "Incr/Decr on non-numeric value.",
        0x07 => "The vbucket belongs to another server",
        0x20 => "Authentication error",
        0x21 => "Authentication continue",
        0x81 => "Unknown command",
        0x82 => "Out of memory",
        0x83 => "Not supported",
        0x84 => "Internal error",
        0x85 => "Busy",
        0x86 => "Temporary failure",
        _ => "",
    }
}
