//! Pairing requests with responses on one connection (`handleHTTP`, `correlate`,
//! `flushRequests`, `flushResponses` in Packetbeat's `http.go`).
//!
//! Complete messages are queued per kind. Each response pairs with the oldest queued request,
//! in order. A response that finds no request is published at once as "Unmatched response",
//! except a `100 Continue`, which is dropped (the request is usually still waiting for its
//! body). Requests that never get a response stay queued until the connection expires and are
//! then published as "Unmatched request". Two bounds this build adds against endless
//! pipelining: at most [`MAX_PENDING_REQUESTS`] wait per connection, and each waiting request
//! takes [`PENDING_REQUEST_COST`] from the worker's stream budget
//! ([`crate::protos::app::stream::budget`]); when either is reached the oldest is published as
//! "Unmatched request" then, as on expiry.

use super::config::HttpSettings;
use super::event::{new_transaction, Completed};
use super::parser::Message;
use crate::common::TcpTuple;
use crate::protos::app::stream::budget;
use crate::protos::app::AppCounters;
use crate::protos::TcpDirection;
use crate::publish::EventSink;
use base64::Engine;
use std::collections::VecDeque;

/// Requests that may wait for their responses on one connection; past it the oldest is published
/// as "Unmatched request", as on expiry. Real clients pipeline a handful.
pub const MAX_PENDING_REQUESTS: usize = 32;

/// What a waiting request is counted as in the worker's stream budget: the message, its fields'
/// allocations and the queue's slack, measured at about 4 KiB.
pub const PENDING_REQUEST_COST: usize = 4096;

#[derive(Debug, Default)]
pub struct Pairing {
    requests: VecDeque<Completed>,
    pub responses: VecDeque<Completed>,
}

impl Drop for Pairing {
    fn drop(&mut self) {
        budget::release(self.requests.len() * PENDING_REQUEST_COST);
    }
}

impl Pairing {
    pub fn clear(&mut self) {
        budget::release(self.requests.len() * PENDING_REQUEST_COST);
        self.requests.clear();
        self.responses.clear();
    }

    /// No request waits for its response.
    pub fn no_request_waits(&self) -> bool {
        self.requests.is_empty()
    }

    fn pop_request(&mut self) -> Option<Completed> {
        let r = self.requests.pop_front();
        if r.is_some() {
            budget::release(PENDING_REQUEST_COST);
        }
        r
    }

    /// Queues a request within the bounds, publishing the oldest ones as unmatched to make room
    /// (or this one, when the budget has no room even for it).
    fn push_request(
        &mut self,
        cfg: &HttpSettings,
        counters: &AppCounters,
        out: &mut EventSink,
        c: Completed,
    ) {
        while self.requests.len() >= MAX_PENDING_REQUESTS
            || !budget::try_reserve(PENDING_REQUEST_COST)
        {
            let Some(oldest) = self.pop_request() else {
                counters.unmatched_request();
                out.publish(new_transaction(cfg, Some(c), None));
                return;
            };
            counters.unmatched_request();
            out.publish(new_transaction(cfg, Some(oldest), None));
        }
        self.requests.push_back(c);
    }

    /// `handleHTTP`: attach endpoints and user, apply redaction, queue, and pair on responses.
    pub fn handle(
        &mut self,
        cfg: &HttpSettings,
        counters: &AppCounters,
        out: &mut EventSink,
        conn: &TcpTuple,
        dir: TcpDirection,
        mut m: Message,
    ) {
        let t = &conn.tuple;
        let (mut src, mut dst) = ((t.src_ip, t.src_port), (t.dst_ip, t.dst_port));
        if dir == TcpDirection::Reverse {
            std::mem::swap(&mut src, &mut dst);
        }
        let username = if cfg.redact_authorization {
            String::new()
        } else {
            extract_basic_auth_user(&m)
        };
        hide_headers(cfg, &mut m);
        let is_request = m.is_request;
        let c = Completed {
            msg: m,
            src,
            dst,
            username,
        };
        if is_request {
            self.push_request(cfg, counters, out, c);
        } else {
            self.responses.push_back(c);
            self.correlate(cfg, counters, out);
        }
    }

    pub fn correlate(&mut self, cfg: &HttpSettings, counters: &AppCounters, out: &mut EventSink) {
        if self.requests.is_empty() {
            self.flush_responses(cfg, counters, out);
            return;
        }
        while !self.requests.is_empty() && !self.responses.is_empty() {
            let requ = self.pop_request();
            let resp = self.responses.pop_front();
            out.publish(new_transaction(cfg, requ, resp));
        }
    }

    pub fn flush_responses(
        &mut self,
        cfg: &HttpSettings,
        counters: &AppCounters,
        out: &mut EventSink,
    ) {
        while let Some(resp) = self.responses.pop_front() {
            counters.unmatched_response();
            if resp.msg.status_code == 100 {
                // Packetbeat drops the 100 Continue and stops flushing here.
                return;
            }
            out.publish(new_transaction(cfg, None, Some(resp)));
        }
    }

    pub fn flush_requests(
        &mut self,
        cfg: &HttpSettings,
        counters: &AppCounters,
        out: &mut EventSink,
    ) {
        while let Some(requ) = self.pop_request() {
            counters.unmatched_request();
            out.publish(new_transaction(cfg, Some(requ), None));
        }
    }
}

/// User name of a `Basic` Authorization header kept in the message's headers (so only when
/// that header is sent). Standard base64, then unpadded; no colon means no user.
pub fn extract_basic_auth_user(m: &Message) -> String {
    const PREFIX: &str = "Basic ";
    let Some(auth) = m.header("authorization") else {
        return String::new();
    };
    if auth.len() < PREFIX.len() || !auth[..PREFIX.len()].eq_ignore_ascii_case(PREFIX.as_bytes()) {
        return String::new();
    }
    let enc = &auth[PREFIX.len()..];
    // Go's StdEncoding / RawStdEncoding: not strict, so non-zero trailing bits are accepted.
    use base64::engine::{
        general_purpose::GeneralPurpose, DecodePaddingMode, GeneralPurposeConfig,
    };
    let lenient = GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true);
    let std = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        lenient.with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
    );
    let raw = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        lenient.with_decode_padding_mode(DecodePaddingMode::RequireNone),
    );
    let decoded = match std.decode(enc) {
        Ok(d) => d,
        Err(_) => match raw.decode(enc) {
            Ok(d) => d,
            Err(_) => return String::new(),
        },
    };
    match decoded.iter().position(|&b| b == b':') {
        Some(i) => String::from_utf8_lossy(&decoded[..i]).into_owned(),
        None => String::new(),
    }
}

/// `hideHeaders`: `redact_headers` values become `REDACTED`; with `redact_authorization` the
/// (Proxy-)Authorization values of a request are masked with `*` in the raw headers (after
/// the case-sensitive text `uthorization:`) and replaced by `*` in the headers map.
pub fn hide_headers(cfg: &HttpSettings, m: &mut Message) {
    for h in &cfg.redact_headers {
        if m.header(h).is_some() {
            m.set_header(h, b"REDACTED".to_vec());
        }
    }
    if !m.is_request || !cfg.redact_authorization {
        return;
    }
    const AUTH: &[u8] = b"uthorization:";
    let limit = m.raw_headers.len();
    let mut start = m.header_offset;
    let mut end = limit;
    while start < limit {
        if let Some(found) = super::parser::find(&m.raw_headers[start..], AUTH) {
            start += found;
            if let Some(eol) = super::parser::find(&m.raw_headers[start..], b"\r\n") {
                end = (start + eol).min(limit);
                for b in &mut m.raw_headers[(start + AUTH.len()).min(end)..end] {
                    *b = b'*';
                }
            }
        }
        start = end + 2;
        end = m.raw_headers.len();
    }
    for h in ["authorization", "proxy-authorization"] {
        if m.header(h).map(|v| !v.is_empty()).unwrap_or(false) {
            m.set_header(h, b"*".to_vec());
        }
    }
}
