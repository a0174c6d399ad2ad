//! The `thrift` section's own keys (Packetbeat's `protos/thrift/config.go`), with its names and
//! defaults.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ThriftConfig {
    /// Longest string value kept, in bytes; longer ones are cut and end with `...`.
    pub string_max_size: i64,
    /// Items of a list, set, map or struct kept; the rest is `...`.
    pub collection_max_size: i64,
    /// A struct with this many fields is taken for garbage and its stream dropped.
    pub drop_after_n_struct_fields: i64,
    /// `socket` (unframed, "buffered") or `framed`.
    pub transport_type: String,
    /// `binary` (Packetbeat's only one) or `compact` (this project's addition).
    pub protocol_type: String,
    /// Whether replies are read past their header.
    pub capture_reply: bool,
    /// Strings are written `"*"`.
    pub obfuscate_strings: bool,
    /// Thrift IDL files naming methods' arguments and exceptions.
    pub idl_files: Vec<String>,
}

impl Default for ThriftConfig {
    fn default() -> Self {
        ThriftConfig {
            string_max_size: 200,
            collection_max_size: 15,
            drop_after_n_struct_fields: 500,
            transport_type: "socket".into(),
            protocol_type: "binary".into(),
            capture_reply: true,
            obfuscate_strings: false,
            idl_files: Vec::new(),
        }
    }
}
