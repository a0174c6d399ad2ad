//! The template protocol's own options. Names and defaults are the protocol's as Packetbeat
//! spells them (for a real analyzer: its `config.go`); unknown keys are ignored, as go-ucfg does.

use serde::Deserialize;

/// The protocol-specific keys of a `template` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct TemplateConfig {
    /// Longest line a message may have; a longer one is not this protocol.
    pub max_line_length: usize,
    /// Requests a connection may have waiting for their responses (pipelining).
    pub max_pending_requests: usize,
}

impl Default for TemplateConfig {
    fn default() -> Self {
        TemplateConfig {
            max_line_length: 1024,
            max_pending_requests: 64,
        }
    }
}
