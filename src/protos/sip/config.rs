//! The sip section's own options (`protos/sip/config.go`): names and defaults as Packetbeat's.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SipConfig {
    /// `sip.auth.*` and `user.name` from the first Authorization header.
    pub parse_authorization: bool,
    /// `sip.sdp.*` from an `application/sdp` body.
    pub parse_body: bool,
    /// The message as seen in `event.original`.
    pub keep_original: bool,
    /// `udp` or `tcp`: what `network.transport` says (Packetbeat analyses both transports
    /// whatever this is).
    pub transport_protocol: String,
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            parse_authorization: true,
            parse_body: true,
            keep_original: true,
            transport_protocol: "udp".into(),
        }
    }
}
