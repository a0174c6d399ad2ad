//! The `mysql` section's own keys (Packetbeat's `protos/mysql/config.go`).

use crate::config::types::GoDuration;
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct MysqlConfig {
    /// Bytes of one row kept in `response` (the row's cells together; the cell that passes the
    /// limit is cut, later cells are left out). 0 or less keeps no cells.
    pub max_row_length: i64,
    /// Rows kept in `response`. Packetbeat checks the count after storing a row, so 0 or less
    /// still keeps the first row.
    pub max_rows: i64,
    /// How long a connection's prepared statements are remembered after their last use.
    pub statement_timeout: GoDuration,
}

impl Default for MysqlConfig {
    fn default() -> Self {
        MysqlConfig {
            max_row_length: 1024,
            max_rows: 10,
            statement_timeout: GoDuration(Duration::from_secs(3600)),
        }
    }
}
