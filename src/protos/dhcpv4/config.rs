//! The `dhcpv4` section. Packetbeat's DHCPv4 analyzer has no options beyond the common ones
//! (`ports`, default 67 and 68, `fields`, `tags`, …), so every other key is ignored as go-ucfg
//! ignores it.

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Dhcpv4Config {}
