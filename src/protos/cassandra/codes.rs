//! The names Packetbeat gives the protocol's numbers (`internal/gocql/marshal.go`), word for
//! word: they are what the events carry.

/// Opcodes (`FrameOp`).
pub const OP_ERROR: u8 = 0x00;
pub const OP_STARTUP: u8 = 0x01;
pub const OP_READY: u8 = 0x02;
pub const OP_AUTHENTICATE: u8 = 0x03;
pub const OP_OPTIONS: u8 = 0x05;
pub const OP_SUPPORTED: u8 = 0x06;
pub const OP_QUERY: u8 = 0x07;
pub const OP_RESULT: u8 = 0x08;
pub const OP_PREPARE: u8 = 0x09;
pub const OP_EXECUTE: u8 = 0x0A;
pub const OP_REGISTER: u8 = 0x0B;
pub const OP_EVENT: u8 = 0x0C;
pub const OP_BATCH: u8 = 0x0D;
pub const OP_AUTH_CHALLENGE: u8 = 0x0E;
pub const OP_AUTH_RESPONSE: u8 = 0x0F;
pub const OP_AUTH_SUCCESS: u8 = 0x10;

/// The opcodes by name, as `ignored_ops` spells them (`frameOps`).
pub const OPS: [(&str, u8); 16] = [
    ("ERROR", OP_ERROR),
    ("STARTUP", OP_STARTUP),
    ("READY", OP_READY),
    ("AUTHENTICATE", OP_AUTHENTICATE),
    ("OPTIONS", OP_OPTIONS),
    ("SUPPORTED", OP_SUPPORTED),
    ("QUERY", OP_QUERY),
    ("RESULT", OP_RESULT),
    ("PREPARE", OP_PREPARE),
    ("EXECUTE", OP_EXECUTE),
    ("REGISTER", OP_REGISTER),
    ("EVENT", OP_EVENT),
    ("BATCH", OP_BATCH),
    ("AUTH_CHALLENGE", OP_AUTH_CHALLENGE),
    ("AUTH_RESPONSE", OP_AUTH_RESPONSE),
    ("AUTH_SUCCESS", OP_AUTH_SUCCESS),
];

/// `FrameOp.String()`.
pub fn op_name(op: u8) -> std::borrow::Cow<'static, str> {
    match OPS.iter().find(|(_, o)| *o == op) {
        Some((name, _)) => (*name).into(),
        None => format!("UNKNOWN_OP_{op}").into(),
    }
}

/// `FrameOpFromString`: trimmed, any case.
pub fn op_from_name(s: &str) -> Option<u8> {
    let s = s.trim();
    OPS.iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(s))
        .map(|(_, op)| *op)
}

/// Header flags.
pub const FLAG_COMPRESS: u8 = 0x01;
pub const FLAG_TRACING: u8 = 0x02;
pub const FLAG_CUSTOM_PAYLOAD: u8 = 0x04;
pub const FLAG_WARNING: u8 = 0x08;

/// `getHeadFlagString`: a name for one flag alone; any combination is `UnknownFlag_<n>`.
pub fn head_flags_name(f: u8) -> std::borrow::Cow<'static, str> {
    match f {
        0x00 => "Default".into(),
        FLAG_COMPRESS => "Compress".into(),
        FLAG_TRACING => "Tracing".into(),
        FLAG_CUSTOM_PAYLOAD => "CustomPayload".into(),
        FLAG_WARNING => "Warning".into(),
        _ => format!("UnknownFlag_{f}").into(),
    }
}

/// Result metadata flags.
pub const ROWS_GLOBAL_TABLE_SPEC: i32 = 0x01;
pub const ROWS_HAS_MORE_PAGES: i32 = 0x02;
pub const ROWS_NO_METADATA: i32 = 0x04;

/// `getRowFlagString`: one flag alone by name, any other value `FLAG_<n>`.
pub fn row_flags_name(f: i32) -> std::borrow::Cow<'static, str> {
    match f {
        ROWS_GLOBAL_TABLE_SPEC => "GlobalTableSpec".into(),
        ROWS_HAS_MORE_PAGES => "HasMorePages".into(),
        ROWS_NO_METADATA => "NoMetaData".into(),
        _ => format!("FLAG_{f}").into(),
    }
}

/// Result kinds.
pub const RESULT_VOID: i32 = 1;
pub const RESULT_ROWS: i32 = 2;
pub const RESULT_SET_KEYSPACE: i32 = 3;
pub const RESULT_PREPARED: i32 = 4;
pub const RESULT_SCHEMA_CHANGE: i32 = 5;

/// Error codes (`ErrType`).
pub const ERR_SERVER: i32 = 0x0000;
pub const ERR_PROTOCOL: i32 = 0x000A;
pub const ERR_CREDENTIALS: i32 = 0x0100;
pub const ERR_UNAVAILABLE: i32 = 0x1000;
pub const ERR_OVERLOADED: i32 = 0x1001;
pub const ERR_BOOTSTRAPPING: i32 = 0x1002;
pub const ERR_TRUNCATE: i32 = 0x1003;
pub const ERR_WRITE_TIMEOUT: i32 = 0x1100;
pub const ERR_READ_TIMEOUT: i32 = 0x1200;
pub const ERR_READ_FAILURE: i32 = 0x1300;
pub const ERR_FUNCTION_FAILURE: i32 = 0x1400;
pub const ERR_WRITE_FAILURE: i32 = 0x1500;
pub const ERR_SYNTAX: i32 = 0x2000;
pub const ERR_UNAUTHORIZED: i32 = 0x2100;
pub const ERR_INVALID: i32 = 0x2200;
pub const ERR_CONFIG: i32 = 0x2300;
pub const ERR_ALREADY_EXISTS: i32 = 0x2400;
pub const ERR_UNPREPARED: i32 = 0x2500;

/// `ErrType.String()`.
pub fn error_type_name(code: i32) -> &'static str {
    match code {
        ERR_UNAVAILABLE => "errUnavailable",
        ERR_WRITE_TIMEOUT => "errWriteTimeout",
        ERR_READ_TIMEOUT => "errReadTimeout",
        ERR_ALREADY_EXISTS => "errAlreadyExists",
        ERR_UNPREPARED => "errUnprepared",
        ERR_READ_FAILURE => "errReadFailure",
        ERR_WRITE_FAILURE => "errWriteFailure",
        ERR_FUNCTION_FAILURE => "errFunctionFailure",
        ERR_INVALID => "errInvalid",
        ERR_BOOTSTRAPPING => "errBootstrapping",
        ERR_CONFIG => "errConfig",
        ERR_CREDENTIALS => "errCredentials",
        ERR_OVERLOADED => "errOverloaded",
        ERR_PROTOCOL => "errProtocol",
        ERR_SERVER => "errServer",
        ERR_SYNTAX => "errSyntax",
        ERR_TRUNCATE => "errTruncate",
        ERR_UNAUTHORIZED => "errUnauthorized",
        _ => "ErrUnknown",
    }
}

/// `Consistency.String()`.
pub fn consistency_name(c: u16) -> std::borrow::Cow<'static, str> {
    match c {
        0x00 => "ANY".into(),
        0x01 => "ONE".into(),
        0x02 => "TWO".into(),
        0x03 => "THREE".into(),
        0x04 => "QUORUM".into(),
        0x05 => "ALL".into(),
        0x06 => "LOCAL_QUORUM".into(),
        0x07 => "EACH_QUORUM".into(),
        0x0A => "LOCAL_ONE".into(),
        _ => format!("UNKNOWN_CONS_0x{c:x}").into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_packetbeat_writes_them() {
        assert_eq!(op_name(OP_QUERY), "QUERY");
        assert_eq!(op_name(0x11), "UNKNOWN_OP_17");
        assert_eq!(op_from_name(" register "), Some(OP_REGISTER));
        assert_eq!(op_from_name("FOO"), None);
        assert_eq!(head_flags_name(0), "Default");
        assert_eq!(head_flags_name(FLAG_TRACING), "Tracing");
        assert_eq!(head_flags_name(3), "UnknownFlag_3");
        assert_eq!(row_flags_name(1), "GlobalTableSpec");
        assert_eq!(row_flags_name(3), "FLAG_3");
        assert_eq!(error_type_name(0x2300), "errConfig");
        assert_eq!(error_type_name(0x7777), "ErrUnknown");
        assert_eq!(consistency_name(0x0A), "LOCAL_ONE");
        assert_eq!(consistency_name(0x0B), "UNKNOWN_CONS_0xb");
    }
}
