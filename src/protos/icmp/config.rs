//! The `icmp` section. Packetbeat's ICMP analyzer has no options beyond the common ones
//! (`enabled`, `transaction_timeout`, `fields`, `tags`, …; `send_request`/`send_response` are
//! accepted, but its events never carry request or response text), so every other key is ignored
//! as go-ucfg ignores it.

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct IcmpConfig {}
