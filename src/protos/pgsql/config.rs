//! The `pgsql` section's own keys (Packetbeat's `protos/pgsql/config.go`); the common ones
//! (`ports`, `send_request`, `send_response`, `transaction_timeout`, …) are the framework's.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct PgsqlConfig {
    /// Rows of a result kept for the `response` field; 0 or less: none.
    pub max_rows: i64,
    /// Bytes of a row kept (its columns in order, the last one cut); 0 or less: none.
    pub max_row_length: i64,
}

impl Default for PgsqlConfig {
    fn default() -> Self {
        PgsqlConfig {
            max_rows: 10,
            max_row_length: 1024,
        }
    }
}
