//! The `redis` section's own keys (`config.go` and `MessageQueueConfig` in Packetbeat).

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RedisConfig {
    /// Bytes of request text a connection may hold waiting for responses; 0 or less: no limit.
    pub queue_max_bytes: i64,
    /// Requests a connection may hold waiting for responses; 0 or less: no limit.
    pub queue_max_messages: i64,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            queue_max_bytes: 1_048_576,
            queue_max_messages: 20_000,
        }
    }
}
