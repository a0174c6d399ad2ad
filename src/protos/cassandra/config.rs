//! The `cassandra` section's own keys (Packetbeat's `protos/cassandra/config.go`). Unlike the
//! other protocols, `send_request` and `send_response` default to true here.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct CassandraConfig {
    /// Publish the request's fields; true unless set (the common options default to false).
    pub send_request: bool,
    /// Publish the response's fields; true unless set.
    pub send_response: bool,
    /// Publish the request frame's header (`cassandra.request.headers`).
    pub send_request_header: bool,
    /// Publish the response frame's header (`cassandra.response.headers`).
    pub send_response_header: bool,
    /// How compressed frames are decompressed: only `snappy` (anything else is a config error).
    pub compressor: String,
    /// Opcodes (by name, any case) whose frames are not decoded and whose transactions are
    /// not published.
    pub ignored_ops: Vec<String>,
}

impl Default for CassandraConfig {
    fn default() -> Self {
        CassandraConfig {
            send_request: true,
            send_response: true,
            send_request_header: true,
            send_response_header: true,
            compressor: String::new(),
            ignored_ops: Vec::new(),
        }
    }
}
