//! The `amqp` section's own keys (`config.go` in Packetbeat's `protos/amqp`), with its names
//! and defaults.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct AmqpConfig {
    /// Read the content header's properties (content-type, headers, delivery-mode, …).
    pub parse_headers: bool,
    /// Read the `arguments` table of declare, bind and consume methods.
    pub parse_arguments: bool,
    /// Bytes of a published or delivered body kept for `request`/`response`.
    pub max_body_length: i64,
    /// Leave out the connection and channel set-up methods (connection.start, tune, open,
    /// channel.open, flow, basic.qos) and the closes without an error.
    pub hide_connection_information: bool,
}

impl Default for AmqpConfig {
    fn default() -> Self {
        AmqpConfig {
            parse_headers: true,
            parse_arguments: true,
            max_body_length: 1000,
            hide_connection_information: true,
        }
    }
}
