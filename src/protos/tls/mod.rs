//! TLS analyzer (Packetbeat's `protos/tls`).
//!
//! - [`config`]: options and fingerprint algorithms;
//! - [`parser`]: records, handshake messages, hello extensions, alerts, JA3 (pure functions);
//! - [`x509`]: certificates as Go's `crypto/x509` reads them and Packetbeat prints them;
//! - [`algos`]: names of cipher suites, groups, signature schemes, alerts;
//! - [`event`]: the published event.
//!
//! This file is the glue with the TCP layer (`doParse`, `ReceivedFin`, `GapInStream`). One
//! event per connection, published once: when both directions have sent ChangeCipherSpec, or on
//! the first FIN or gap. Like Packetbeat, nothing is published when a connection only expires.

pub mod algos;
pub mod config;
pub mod event;
pub mod parser;
pub mod x509;

use crate::common::{IpPortTuple, TcpTuple, Ts};
use crate::protos::app::{AppCounters, Protocol, SectionError, StreamBuffer, Transports};
use crate::protos::{CommonOptions, TcpConnectionParser, TcpDirection, TcpPacket};
use crate::publish::EventSink;
use config::{TlsConfig, TlsSettings};
use parser::{ParseResult, Parser};
use std::sync::Arc;

impl Protocol for TlsSettings {
    const NAME: &'static str = "tls";
    const TRANSPORTS: Transports<Self> = Transports {
        tcp: Some(|a, _| {
            Box::new(TlsConnection::with_counters(
                a.proto.clone(),
                a.counters.clone(),
            ))
        }),
        ..Transports::NONE
    };
    type Config = TlsConfig;

    fn configure(_common: &CommonOptions, cfg: TlsConfig) -> Result<Self, SectionError> {
        TlsSettings::new(&cfg).map_err(|message| SectionError {
            key: "fingerprints",
            message,
        })
    }
}

/// One direction: its buffer, its parser and the connection's tuple when it started (Packetbeat
/// hands the connection's tuple, that of its first packet, to every stream).
struct Stream {
    buf: StreamBuffer,
    parser: Parser,
    tuple: IpPortTuple,
}

/// Per-connection state (`tlsConnectionData`).
pub struct TlsConnection {
    settings: Arc<TlsSettings>,
    counters: Arc<AppCounters>,
    streams: [Option<Stream>; 2],
    /// Bit per direction (original = 1, reverse = 2) that sent ChangeCipherSpec.
    handshake_completed: u8,
    event_sent: bool,
    start: Option<Ts>,
    end: Option<Ts>,
}

impl TlsConnection {
    pub fn new(settings: Arc<TlsSettings>) -> TlsConnection {
        TlsConnection::with_counters(settings, Arc::default())
    }

    pub fn with_counters(settings: Arc<TlsSettings>, counters: Arc<AppCounters>) -> TlsConnection {
        TlsConnection {
            settings,
            counters,
            streams: [None, None],
            handshake_completed: 0,
            event_sent: false,
            start: None,
            end: None,
        }
    }

    fn has_info(&self) -> bool {
        self.streams.iter().flatten().any(|s| s.parser.has_info())
    }

    /// `sendEvent`: at most once per connection, and only if something was learnt.
    fn send_event(&mut self, out: &mut EventSink) {
        if self.event_sent {
            return;
        }
        self.event_sent = true;
        if !self.has_info() {
            return;
        }
        let empty = Parser::new();
        fn side<'a>(s: &'a Option<Stream>, empty: &'a Parser) -> event::Side<'a> {
            match s {
                Some(st) => event::Side {
                    parser: &st.parser,
                    tuple: Some(st.tuple),
                },
                None => event::Side {
                    parser: empty,
                    tuple: None,
                },
            }
        }
        let evt = event::create_event(
            &self.settings,
            side(&self.streams[0], &empty),
            side(&self.streams[1], &empty),
            self.handshake_completed,
            self.start.unwrap_or(Ts::ZERO),
            self.end,
        );
        out.publish(evt);
    }
}

impl TcpConnectionParser for TlsConnection {
    /// `doParse`.
    fn parse(&mut self, out: &mut EventSink, conn: &TcpTuple, dir: TcpDirection, pkt: &TcpPacket) {
        if pkt.payload.is_empty() {
            return;
        }
        if self.start.is_none() {
            self.start = Some(pkt.ts);
        }
        let d = dir.index();
        // Traffic after this direction's ChangeCipherSpec is encrypted.
        if self.handshake_completed & (1 << d) != 0 {
            return;
        }
        let st = self.streams[d].get_or_insert_with(|| Stream {
            buf: StreamBuffer::default(),
            parser: Parser::new(),
            tuple: conn.tuple,
        });
        if st.buf.append_capped(pkt.payload).is_err() {
            // Packetbeat drops the connection's state; the next segment starts afresh.
            tracing::debug!("tls: stream data too large, dropping TCP stream");
            self.counters.stream_too_large();
            *self = TlsConnection::with_counters(self.settings.clone(), self.counters.clone());
            return;
        }
        let mut state = ParseResult::Ok;
        while state == ParseResult::Ok {
            let Some(st) = self.streams[d].as_mut() else {
                break;
            };
            if st.buf.is_empty() {
                break;
            }
            let used;
            (state, used) = st.parser.parse_records(st.buf.data());
            st.buf.consume(used);
            match state {
                ParseResult::Ok | ParseResult::More => {}
                ParseResult::Failed => {
                    // Not TLS (or broken): forget this direction; the next segment starts over.
                    tracing::debug!("tls: non-TLS message, dropping stream");
                    self.counters.parse_error();
                    self.streams[d] = None;
                }
                ParseResult::Encrypted => {
                    self.handshake_completed |= 1 << d;
                    if self.handshake_completed == 3 {
                        self.end = Some(pkt.ts);
                        self.send_event(out);
                    }
                }
            }
        }
    }

    fn received_fin(&mut self, out: &mut EventSink, _conn: &TcpTuple, _dir: TcpDirection, _ts: Ts) {
        self.send_event(out);
    }

    fn gap_in_stream(
        &mut self,
        out: &mut EventSink,
        _conn: &TcpTuple,
        _dir: TcpDirection,
        _nbytes: usize,
        _ts: Ts,
    ) -> bool {
        self.send_event(out);
        true
    }

    /// Packetbeat's TLS plugin has no expiry hook: nothing is published here.
    fn expired(&mut self, _out: &mut EventSink, _conn: &TcpTuple, _now: Ts) {}
}

#[cfg(test)]
mod tests;
