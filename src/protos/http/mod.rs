//! HTTP analyzer (Packetbeat's `protos/http`).
//!
//! - [`config`]: options and the settings derived from them;
//! - [`parser`]: incremental HTTP/1.x parser, one stream per direction;
//! - [`transaction`]: pairing requests with responses in order;
//! - [`event`]: the published event; [`url`]: the Go `net/url` behaviour it depends on;
//! - [`decode`]: gzip/deflate for kept bodies.
//!
//! This file is the glue with the TCP layer (`doParse`, `ReceivedFin`, `GapInStream`,
//! `Expired`). Which side is the client is decided by content: a message whose first line is a
//! request line is a request, whichever direction it travels.
//!
//! Message framing follows RFC 9112 §6.3 where Packetbeat does not: a response to `HEAD` has no
//! body whatever its `Content-Length` says (Packetbeat waits for that body and then pairs every
//! later response with the wrong request); after `101 Switching Protocols`, or a `2xx` answer to
//! `CONNECT`, the connection carries another protocol and is no longer parsed; a final response
//! to a request still waiting for `100 Continue` completes that request with the body bytes
//! seen, as the client will not send the rest.

pub mod config;
pub mod decode;
pub mod event;
pub mod parser;
pub mod transaction;
pub mod url;

use crate::common::{TcpTuple, Ts};
use crate::protos::app::{AppCounters, Protocol, SectionError, Transports};
use crate::protos::{CommonOptions, TcpConnectionParser, TcpDirection, TcpPacket};
use crate::publish::EventSink;
use config::{HttpConfig, HttpSettings};
use parser::{Message, Outcome, Stream};
use std::collections::VecDeque;
use std::sync::Arc;
use transaction::Pairing;

impl Protocol for HttpSettings {
    const NAME: &'static str = "http";
    const TRANSPORTS: Transports<Self> = Transports {
        tcp: Some(|a, _| {
            Box::new(HttpConnection::with_counters(
                a.proto.clone(),
                a.counters.clone(),
            ))
        }),
        ..Transports::NONE
    };
    type Config = HttpConfig;

    fn configure(common: &CommonOptions, cfg: HttpConfig) -> Result<Self, SectionError> {
        Ok(HttpSettings::new(common, &cfg))
    }
}

/// What the framing of a request's response depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RequestKind {
    Head,
    Connect,
    Other,
}

/// Requests remembered for framing their responses; beyond this many unanswered ones the
/// oldest are forgotten (their responses are then framed by their headers alone).
const MAX_AWAITING: usize = 1024;

/// Per-connection state (`httpConnectionData`).
pub struct HttpConnection {
    settings: Arc<HttpSettings>,
    counters: Arc<AppCounters>,
    streams: [Option<Stream>; 2],
    pairing: Pairing,
    /// The kinds of the requests not answered yet by a final response, oldest first.
    awaiting: VecDeque<RequestKind>,
    /// The connection switched to another protocol (`101`, or a tunnel opened by `CONNECT`).
    switched: bool,
    /// A final response that came while its request's body was still arriving (a server may
    /// answer before reading the whole request: RFC 9110 §15, e.g. nginx's `return 201`, a
    /// `413`): it waits for that request to complete and pairs with it. Packetbeat publishes
    /// both halves unmatched.
    early_response: Option<(TcpDirection, Message)>,
}

impl HttpConnection {
    pub fn new(settings: Arc<HttpSettings>) -> HttpConnection {
        HttpConnection::with_counters(settings, Arc::default())
    }

    pub fn with_counters(
        settings: Arc<HttpSettings>,
        counters: Arc<AppCounters>,
    ) -> HttpConnection {
        HttpConnection {
            settings,
            counters,
            streams: [None, None],
            pairing: Pairing::default(),
            awaiting: VecDeque::new(),
            switched: false,
            early_response: None,
        }
    }

    /// A message starting at `ts`; should it be a response, it answers the oldest request
    /// still waiting.
    fn new_message(&self, ts: Ts) -> Message {
        let mut m = Message::new(ts);
        self.frame_as_answer(&mut m);
        m
    }

    fn frame_as_answer(&self, m: &mut Message) {
        let kind = self.awaiting.front();
        m.answers_head = kind == Some(&RequestKind::Head);
        m.answers_connect = kind == Some(&RequestKind::Connect);
    }

    fn handle(&mut self, out: &mut EventSink, conn: &TcpTuple, dir: TcpDirection, m: Message) {
        if m.is_request {
            let kind = match m.method.as_slice() {
                b"HEAD" => RequestKind::Head,
                b"CONNECT" => RequestKind::Connect,
                _ => RequestKind::Other,
            };
            if self.awaiting.len() == MAX_AWAITING {
                self.awaiting.pop_front();
            }
            self.awaiting.push_back(kind);
            self.pairing
                .handle(&self.settings, &self.counters, out, conn, dir, m);
            if let Some((rdir, resp)) = self.early_response.take() {
                self.handle(out, conn, rdir, resp);
            }
            return;
        } else if m.status_code >= 200 || m.status_code == 101 {
            // A final response: a request still waiting for `100 Continue` is complete as
            // it is, and goes first.
            let other = dir.other().index();
            if let Some(req) = self.streams[other]
                .as_mut()
                .and_then(Stream::take_unsent_body_request)
            {
                self.pairing
                    .handle(&self.settings, &self.counters, out, conn, dir.other(), req);
            }
            let answers_request_in_progress = self.pairing.no_request_waits()
                && self.early_response.is_none()
                && self.streams[other]
                    .as_ref()
                    .is_some_and(Stream::request_in_body);
            if answers_request_in_progress {
                self.early_response = Some((dir, m));
                return;
            }
            let kind = self.awaiting.pop_front();
            let tunnel = kind == Some(RequestKind::Connect) && (200..300).contains(&m.status_code);
            if m.status_code == 101 || tunnel {
                self.switched = true;
            }
        }
        self.pairing
            .handle(&self.settings, &self.counters, out, conn, dir, m);
        if self.switched {
            self.streams = [None, None];
        }
    }
}

impl TcpConnectionParser for HttpConnection {
    /// `doParse`.
    fn parse(&mut self, out: &mut EventSink, conn: &TcpTuple, dir: TcpDirection, pkt: &TcpPacket) {
        if pkt.payload.is_empty() || self.switched {
            return;
        }
        let d = dir.index();
        // Size of a segment seen but not buffered because the message grew past
        // max_message_size; it still counts as body.
        let mut extra = 0usize;
        match &mut self.streams[d] {
            None => {
                // A new stream takes its first segment whatever its size, as Packetbeat's does.
                let mut st = Stream::new();
                st.cur.append(pkt.payload);
                st.message = Some(self.new_message(pkt.ts));
                self.streams[d] = Some(st);
            }
            Some(st) => {
                if st.skip_body_segment(pkt.payload.len()) {
                    return;
                }
                let mut total = st.cur.len() + pkt.payload.len();
                if let Some(m) = &st.message {
                    total += m.body.len();
                }
                if total as i64 > self.settings.max_message_size {
                    tracing::debug!("http: stream data too large, ignoring message");
                    self.counters.stream_too_large();
                    extra = pkt.payload.len();
                } else {
                    st.cur.append(pkt.payload);
                }
            }
        }

        loop {
            let settings = self.settings.clone();
            let mut fresh = None;
            if self.streams[d]
                .as_ref()
                .is_some_and(|st| st.message.is_none())
            {
                let mut m = Message::new(pkt.ts);
                self.frame_as_answer(&mut m);
                fresh = Some(m);
            }
            let Some(st) = self.streams[d].as_mut() else {
                return;
            };
            if st.cur.is_empty() && extra == 0 {
                break;
            }
            if st.message.is_none() {
                st.message = fresh;
            }
            let outcome = st.parse(&settings.parser, extra);
            extra = 0;
            match outcome {
                Outcome::Failed => {
                    // Not HTTP (or broken): forget this direction; the next segment starts over.
                    tracing::debug!("http: parse error, dropping stream");
                    self.counters.parse_error();
                    self.streams[d] = None;
                    if let Some((rdir, resp)) = self.early_response.take() {
                        // The request it waited for will not complete.
                        self.pairing
                            .handle(&self.settings, &self.counters, out, conn, rdir, resp);
                    }
                    return;
                }
                Outcome::Incomplete => break,
                Outcome::Complete => {
                    let m = st.message.take().expect("complete message");
                    st.prepare_for_new_message();
                    self.handle(out, conn, dir, m);
                }
            }
        }
    }

    /// `ReceivedFin`: whatever the closing side was sending is complete now (HTTP/1.0 bodies
    /// delimited by the end of the connection).
    fn received_fin(&mut self, out: &mut EventSink, conn: &TcpTuple, dir: TcpDirection, _ts: Ts) {
        let Some(st) = self.streams[dir.index()].as_mut() else {
            return;
        };
        if let Some(m) = st.message.take() {
            st.prepare_for_new_message();
            self.handle(out, conn, dir, m);
        }
    }

    /// `GapInStream`: a gap inside a body is skipped (the message is noted as having lost
    /// packets, and completed if the gap reaches its end); anywhere else the connection state
    /// is dropped, with nothing published, as Packetbeat does.
    fn gap_in_stream(
        &mut self,
        out: &mut EventSink,
        conn: &TcpTuple,
        dir: TcpDirection,
        nbytes: usize,
        _ts: Ts,
    ) -> bool {
        let d = dir.index();
        let Some(st) = self.streams[d].as_mut() else {
            return false;
        };
        if st.message.is_none() {
            return false;
        }
        match parser::message_gap(st, nbytes) {
            None => {
                self.streams = [None, None];
                self.pairing.clear();
                self.awaiting.clear();
                self.early_response = None;
                true
            }
            Some(true) => {
                // Packetbeat publishes the message here but leaves it in the stream (it does
                // not reset the stream), so later bytes or a FIN complete it a second time.
                let m = st.message.clone().expect("message checked above");
                self.handle(out, conn, dir, m);
                false
            }
            Some(false) => false,
        }
    }

    /// `Expired`: messages whose headers are complete are taken as they are, paired, and
    /// whatever is left is published unmatched.
    fn expired(&mut self, out: &mut EventSink, conn: &TcpTuple, _now: Ts) {
        for dir in [TcpDirection::Original, TcpDirection::Reverse] {
            let Some(st) = self.streams[dir.index()].as_mut() else {
                continue;
            };
            if st
                .message
                .as_ref()
                .map(|m| m.headers_received())
                .unwrap_or(false)
            {
                let m = st.message.take().expect("checked");
                st.prepare_for_new_message();
                self.handle(out, conn, dir, m);
            }
        }
        if let Some((rdir, resp)) = self.early_response.take() {
            // Its request never got as far as its headers' end again (the stream was dropped).
            self.pairing
                .handle(&self.settings, &self.counters, out, conn, rdir, resp);
        }
        let (settings, counters) = (&self.settings, &self.counters);
        self.pairing.correlate(settings, counters, out);
        self.pairing.flush_requests(settings, counters, out);
        self.pairing.flush_responses(settings, counters, out);
    }
}

#[cfg(test)]
mod tests;
