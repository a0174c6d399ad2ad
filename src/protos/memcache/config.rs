//! The `memcache` section's own keys (Packetbeat's `config.go`; go-ucfg spells the Go field
//! names in lower case).

use crate::config::types::GoDuration;
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct MemcacheConfig {
    /// Accept text commands Packetbeat does not know (they must carry no data block).
    pub parseunknown: bool,
    /// Values kept per message: 0 none, negative all, N at most N.
    pub maxvalues: i64,
    /// Bytes kept per value; 0 or less: unlimited.
    pub maxbytespervalue: i64,
    /// How long a UDP transaction waits for its response.
    pub udptransactiontimeout: GoDuration,
}

impl Default for MemcacheConfig {
    fn default() -> Self {
        MemcacheConfig {
            parseunknown: false,
            maxvalues: 0,
            maxbytespervalue: 0,
            udptransactiontimeout: GoDuration(Duration::from_secs(10)),
        }
    }
}
