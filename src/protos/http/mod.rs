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

/// Per-connection state (`httpConnectionData`).
pub struct HttpConnection {
    settings: Arc<HttpSettings>,
    counters: Arc<AppCounters>,
    streams: [Option<Stream>; 2],
    pairing: Pairing,
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
        }
    }

    fn handle(&mut self, out: &mut EventSink, conn: &TcpTuple, dir: TcpDirection, m: Message) {
        self.pairing
            .handle(&self.settings, &self.counters, out, conn, dir, m);
    }
}

impl TcpConnectionParser for HttpConnection {
    /// `doParse`.
    fn parse(&mut self, out: &mut EventSink, conn: &TcpTuple, dir: TcpDirection, pkt: &TcpPacket) {
        if pkt.payload.is_empty() {
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
                st.message = Some(Message::new(pkt.ts));
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
            let Some(st) = self.streams[d].as_mut() else {
                return;
            };
            if st.cur.is_empty() && extra == 0 {
                break;
            }
            if st.message.is_none() {
                st.message = Some(Message::new(pkt.ts));
            }
            let outcome = st.parse(&settings.parser, extra);
            extra = 0;
            match outcome {
                Outcome::Failed => {
                    // Not HTTP (or broken): forget this direction; the next segment starts over.
                    tracing::debug!("http: parse error, dropping stream");
                    self.counters.parse_error();
                    self.streams[d] = None;
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
        let (settings, counters) = (&self.settings, &self.counters);
        self.pairing.correlate(settings, counters, out);
        self.pairing.flush_requests(settings, counters, out);
        self.pairing.flush_responses(settings, counters, out);
    }
}

#[cfg(test)]
mod tests;
