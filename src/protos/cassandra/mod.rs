//! The Cassandra analyzer (Packetbeat's `protos/cassandra`): CQL native protocol v1 to v4 over
//! TCP, default port 9042.
//!
//! - [`parser`]: frames and their bodies; [`codes`]: Packetbeat's names for the numbers;
//! - [`event`]: the published event;
//! - this file: the options, the connection and its pairing.
//!
//! Each direction is a stream of frames; the version byte's high bit says whether a frame is a
//! request or a response. One event per request and its response, with the frames' headers
//! (`send_request_header`, `send_response_header`) and what Packetbeat decodes of their bodies:
//! a QUERY's text, a RESULT's kind and metadata, an ERROR's code, message and details,
//! SUPPORTED's options, authentication, EVENT pushes. `send_request`/`send_response` (true
//! unless set) leave out a side's fields. EVENT frames answer no request: each is published
//! alone, with `cassandra.no_request`. The opcodes of `ignored_ops` are not decoded, and a
//! transaction with an ignored frame on either side is not published. `compressor: snappy`
//! decompresses compressed frames (the raw snappy block format, as gocql's `SnappyCompressor`);
//! without it a compressed frame is a parse error, as in Packetbeat. Packetbeat has no LZ4
//! decompressor and fails on LZ4 frames; this analyzer reads the connection's STARTUP and, when
//! it chose LZ4, publishes those transactions with their headers only (the header is never
//! compressed), rather than none at all.
//!
//! Where Packetbeat is wrong, this analyzer is right (tests/golden/deliberate.json):
//! - A response answers the request with its stream id, as the protocol guarantees; Packetbeat
//!   pairs them in arrival order, so concurrent queries answered out of order get each other's
//!   results.
//! - `num_rows` is the frame's row count (see [`parser`] for what Packetbeat reads instead).
//! - `status` is `Error` for an ERROR response (Packetbeat's `failed` flag is never set).
//! - v1/v2 responses are responses (Packetbeat compares the version byte with `0x80` and takes
//!   `0x81`/`0x82` for requests); stream ids are signed (an EVENT's is -1).
//!
//! Requests are paired only with responses: one that gets none is counted as unmatched when
//! its transaction times out or the connection ends, never published, as in Packetbeat. A
//! response without its request is dropped and counted. A frame that does not decode, a gap,
//! or a stream past the 10 MiB cap drops the connection's state (both directions and what is
//! pending), as Packetbeat drops it; parsing starts again with the next segment.

pub mod codes;
pub mod config;
pub mod event;
pub mod parser;

#[cfg(test)]
mod tests;

use crate::common::{TcpTuple, Ts};
use crate::protos::app::{
    AppCounters, Found, Parsed, Protocol, SectionError, StreamBuffer, TransactionTable, Transports,
};
use crate::protos::{CommonOptions, TcpConnectionParser, TcpDirection, TcpPacket};
use crate::publish::EventSink;
use config::CassandraConfig;
use event::{transaction_event, Seen};
use parser::{Body, ParserConfig};
use std::sync::Arc;
use std::time::Duration;

/// The resolved settings.
#[derive(Debug, Clone)]
pub struct Cassandra {
    pub parser: ParserConfig,
    pub send_request: bool,
    pub send_response: bool,
    pub send_request_header: bool,
    pub send_response_header: bool,
    pub transaction_timeout: Duration,
}

impl Protocol for Cassandra {
    const NAME: &'static str = "cassandra";
    const DEFAULT_PORTS: &'static [u16] = &[9042];
    const TRANSPORTS: Transports<Self> = Transports {
        tcp: Some(|a, _| {
            Box::new(CassandraConnection::new(
                a.proto.clone(),
                a.counters.clone(),
            ))
        }),
        ..Transports::NONE
    };
    type Config = CassandraConfig;

    fn configure(common: &CommonOptions, cfg: CassandraConfig) -> Result<Self, SectionError> {
        // `cassandraConfig.Validate`.
        if !cfg.compressor.is_empty() && cfg.compressor != "snappy" {
            return Err(SectionError {
                key: "compressor",
                message: format!(
                    "invalid compressor config: {}, only snappy supported",
                    cfg.compressor
                ),
            });
        }
        let mut ignored_ops = 0u32;
        for name in &cfg.ignored_ops {
            let Some(op) = codes::op_from_name(name) else {
                return Err(SectionError {
                    key: "ignored_ops",
                    message: format!("unknown frame op: {}", name.trim().to_ascii_uppercase()),
                });
            };
            ignored_ops |= 1 << op;
        }
        Ok(Cassandra {
            parser: ParserConfig {
                snappy: cfg.compressor == "snappy",
                ignored_ops,
            },
            send_request: cfg.send_request,
            send_response: cfg.send_response,
            send_request_header: cfg.send_request_header,
            send_response_header: cfg.send_response_header,
            transaction_timeout: common.transaction_timeout,
        })
    }
}

/// One direction's unconsumed bytes and when the first of them arrived.
#[derive(Default)]
struct Stream {
    buf: StreamBuffer,
    started: Option<Ts>,
}

/// A connection: both directions, and the requests waiting for their responses by stream id.
/// Both directions are dropped together (Packetbeat drops the connection), so this implements
/// [`TcpConnectionParser`] itself.
pub struct CassandraConnection {
    cfg: Arc<Cassandra>,
    counters: Arc<AppCounters>,
    streams: [Option<Stream>; 2],
    pending: TransactionTable<i16, Seen>,
    /// The connection's STARTUP chose LZ4.
    lz4: bool,
}

impl CassandraConnection {
    pub fn new(cfg: Arc<Cassandra>, counters: Arc<AppCounters>) -> CassandraConnection {
        let timeout = cfg.transaction_timeout;
        CassandraConnection {
            cfg,
            counters,
            streams: [None, None],
            pending: TransactionTable::new(timeout),
            lz4: false,
        }
    }

    /// Forgets both directions and the pending requests (counted as unmatched).
    fn drop_state(&mut self) {
        self.streams = [None, None];
        for _ in self.pending.drain() {
            self.counters.unmatched_request();
        }
        self.lz4 = false;
    }

    fn on_frame(&mut self, out: &mut EventSink, seen: Seen) {
        for _ in self.pending.expire(seen.ts) {
            self.counters.unmatched_request();
        }
        let h = seen.frame.header;
        if !h.is_response() {
            if h.op == codes::OP_STARTUP {
                if let Body::Startup { compression } = &seen.frame.body {
                    self.lz4 = compression
                        .as_deref()
                        .is_some_and(|c| c.eq_ignore_ascii_case("lz4"));
                }
            }
            match self.pending.insert(h.stream, seen.ts, seen) {
                Found::Live(_) | Found::Expired(_) => self.counters.unmatched_request(),
                Found::Missing => {}
            }
            return;
        }
        if h.op == codes::OP_EVENT {
            // A push from the server: it answers no request.
            if !matches!(seen.frame.body, Body::Ignored) {
                out.publish(transaction_event(&self.cfg, None, &seen));
            }
            return;
        }
        match self.pending.take_at(&h.stream, seen.ts) {
            Found::Live(req) => {
                let ignored = |s: &Seen| matches!(s.frame.body, Body::Ignored);
                if !ignored(&req) && !ignored(&seen) {
                    out.publish(transaction_event(&self.cfg, Some(&req), &seen));
                }
            }
            Found::Expired(_) => {
                self.counters.unmatched_request();
                self.counters.unmatched_response();
            }
            Found::Missing => {
                tracing::debug!("cassandra: response from unknown transaction, ignoring");
                self.counters.unmatched_response();
            }
        }
    }
}

impl TcpConnectionParser for CassandraConnection {
    fn parse(&mut self, out: &mut EventSink, _conn: &TcpTuple, dir: TcpDirection, pkt: &TcpPacket) {
        if pkt.payload.is_empty() {
            return;
        }
        let d = dir.index();
        let st = self.streams[d].get_or_insert_with(Stream::default);
        if st.buf.append_capped(pkt.payload).is_err() {
            tracing::debug!("cassandra: stream data too large, dropping the connection");
            self.counters.stream_too_large();
            self.drop_state();
            return;
        }
        loop {
            let Some(st) = self.streams[d].as_mut() else {
                return;
            };
            if st.buf.is_empty() {
                return;
            }
            let started = *st.started.get_or_insert(pkt.ts);
            match parser::parse(&self.cfg.parser, self.lz4, st.buf.data()) {
                Parsed::Incomplete => return,
                Parsed::Skip(n) => st.buf.consume(n),
                Parsed::Error(why) => {
                    tracing::debug!("cassandra: {why}, dropping the connection");
                    self.counters.parse_error();
                    self.drop_state();
                    return;
                }
                Parsed::Message { msg, consumed } => {
                    st.buf.consume(consumed);
                    st.started = None;
                    let seen = Seen {
                        ts: started,
                        tuple: pkt.tuple,
                        size: consumed,
                        frame: msg,
                    };
                    self.on_frame(out, seen);
                }
            }
        }
    }

    fn received_fin(
        &mut self,
        _out: &mut EventSink,
        _conn: &TcpTuple,
        _dir: TcpDirection,
        _ts: Ts,
    ) {
        // Packetbeat leaves the connection to its expiry.
    }

    fn gap_in_stream(
        &mut self,
        _out: &mut EventSink,
        _conn: &TcpTuple,
        _dir: TcpDirection,
        _nbytes: usize,
        _ts: Ts,
    ) -> bool {
        // `GapInStream`: the connection's state is dropped.
        self.drop_state();
        true
    }

    fn expired(&mut self, _out: &mut EventSink, _conn: &TcpTuple, _now: Ts) {
        self.drop_state();
    }
}
