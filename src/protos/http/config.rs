//! HTTP options (`protos/http/config.go` in Packetbeat) and the settings derived from them.
//!
//! Names and defaults are Packetbeat's. Unknown keys are ignored, as go-ucfg does.

use super::parser::ParserConfig;
use crate::protos::CommonOptions;
use serde::Deserialize;
use std::collections::HashSet;

/// Packetbeat's default `max_message_size`: the TCP stream cap.
pub const DEFAULT_MAX_MESSAGE_SIZE: i64 = crate::protos::app::TCP_MAX_DATA_IN_STREAM as i64;

/// The protocol-specific keys of an `http` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct HttpConfig {
    pub send_all_headers: bool,
    #[serde(deserialize_with = "crate::config::types::strings")]
    pub send_headers: Vec<String>,
    pub split_cookie: bool,
    pub real_ip_header: String,
    #[serde(deserialize_with = "crate::config::types::strings")]
    pub include_body_for: Vec<String>,
    #[serde(deserialize_with = "crate::config::types::strings")]
    pub include_request_body_for: Vec<String>,
    #[serde(deserialize_with = "crate::config::types::strings")]
    pub include_response_body_for: Vec<String>,
    #[serde(deserialize_with = "crate::config::types::strings")]
    pub hide_keywords: Vec<String>,
    pub redact_authorization: bool,
    pub max_message_size: i64,
    pub decode_body: bool,
    #[serde(deserialize_with = "crate::config::types::strings")]
    pub redact_headers: Vec<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            send_all_headers: false,
            send_headers: Vec::new(),
            split_cookie: false,
            real_ip_header: String::new(),
            include_body_for: Vec::new(),
            include_request_body_for: Vec::new(),
            include_response_body_for: Vec::new(),
            hide_keywords: Vec::new(),
            redact_authorization: false,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            decode_body: true,
            redact_headers: Vec::new(),
        }
    }
}

/// Everything the analyzer needs, resolved once (`httpPlugin.setFromConfig`).
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub send_request: bool,
    pub send_response: bool,
    pub split_cookie: bool,
    /// Compared with the lower-cased parameter name as given (Packetbeat does not lower-case
    /// the keywords themselves).
    pub hide_keywords: Vec<String>,
    pub redact_authorization: bool,
    /// Lower-cased.
    pub redact_headers: Vec<String>,
    pub max_message_size: i64,
    pub decode_body: bool,
    pub parser: ParserConfig,
}

impl HttpSettings {
    pub fn new(common: &CommonOptions, cfg: &HttpConfig) -> HttpSettings {
        let mut parser = ParserConfig {
            real_ip_header: cfg.real_ip_header.to_lowercase(),
            ..ParserConfig::default()
        };
        parser.include_request_body_for = cfg
            .include_body_for
            .iter()
            .chain(cfg.include_request_body_for.iter())
            .cloned()
            .collect();
        parser.include_response_body_for = cfg
            .include_body_for
            .iter()
            .chain(cfg.include_response_body_for.iter())
            .cloned()
            .collect();
        if cfg.send_all_headers {
            parser.send_headers = true;
            parser.send_all_headers = true;
        } else if !cfg.send_headers.is_empty() {
            parser.send_headers = true;
            parser.headers_whitelist = cfg
                .send_headers
                .iter()
                .map(|h| h.to_lowercase())
                .collect::<HashSet<_>>();
        }
        HttpSettings {
            send_request: common.send_request,
            send_response: common.send_response,
            split_cookie: cfg.split_cookie,
            hide_keywords: cfg.hide_keywords.clone(),
            redact_authorization: cfg.redact_authorization,
            redact_headers: cfg
                .redact_headers
                .iter()
                .map(|h| h.to_lowercase())
                .collect(),
            max_message_size: cfg.max_message_size,
            decode_body: cfg.decode_body,
            parser,
        }
    }
}
