//! The MySQL analyzer (Packetbeat's `protos/mysql`).
//!
//! - [`parser`]: each direction's messages, as Packetbeat's state machine reads them;
//! - [`transaction`]: the connection's transaction and prepared statements, and what a
//!   request or a response does to them;
//! - [`rows`]: the `response` text (column names and rows as CSV); [`params`]: the parameters
//!   of `COM_STMT_EXECUTE`;
//! - [`event`]: the event.
//!
//! The side that sends to an analysed port is the client. Its `COM_QUERY`,
//! `COM_STMT_PREPARE`, `COM_STMT_EXECUTE` and `COM_STMT_CLOSE` packets (sequence id 0) are
//! requests; everything else it sends (the login, `COM_INIT_DB`, `COM_QUIT`, …) is read and
//! ignored. The server's OK and ERR packets and result sets are responses. One event per
//! answered request: `method` (the query's first word), `query`, `path` (the result set's
//! `schema.table`s), `status`, `mysql.*` (affected rows, insert id, rows, columns, error code
//! and `SQLSTATE: message`), `params` of an execute, `request` (the query text) and `response`
//! (the first `max_rows` rows, `max_row_length` bytes each, as CSV) with
//! `send_request`/`send_response`. Requests that get no answer are not published.
//!
//! A gap in a direction while a result set is being read completes it with what was read, the
//! note "Packet loss while capturing the response" and no response byte count; then, as after
//! any gap inside a message, the connection's state (its transaction and statements) is
//! dropped. A gap between messages is skipped. A message that does not parse, or 10 MiB of a
//! direction without a complete message, drops that direction's bytes; parsing starts again
//! with its next segment.
//!
//! Where this differs from Packetbeat, on purpose (it panics, or reports what is not so):
//! - a packet header split across segments is waited for (Packetbeat drops the stream);
//! - a 12-byte OK packet is the answer to `COM_STMT_PREPARE` only when that is the request
//!   waiting (Packetbeat takes any, e.g. an OK with a 3-byte affected-rows count and a 4-byte
//!   insert id, for a prepare and then reads the next responses as its definitions); a prepare
//!   answer with columns but no parameters ends after the columns, one with neither at once
//!   (Packetbeat reads the next response into both);
//! - execute parameters flagged unsigned are read, and integers are signed unless so flagged
//!   (Packetbeat drops the whole list at an unsigned one, which clients send for any
//!   non-negative number, and prints TINY, SHORT and LONG unsigned);
//! - an ERR message ends with its packet (Packetbeat takes the rest of the buffer); fields of an
//!   OK or ERR packet and a statement id are read within their packet, not from the next one;
//! - a `DOUBLE` parameter is 8 bytes (Packetbeat skips 4 and misreads the parameters after it);
//! - reads Packetbeat would make past the end of the bytes (a panic, recovered by dropping the
//!   connection's state) end the read instead.
//!
//! Packetbeat's transaction and statement caches expire on the wall clock; here they expire on
//! packet time, when looked at, so a replay gives the same events at any speed.

pub mod config;
pub mod event;
pub mod params;
pub mod parser;
pub mod rows;
pub mod transaction;

#[cfg(test)]
mod tests;

use crate::common::{IpPortTuple, TcpTuple, Ts};
use crate::protos::app::{Protocol, SectionError, StreamBuffer, Transports};
use crate::protos::{CommonOptions, TcpConnectionParser, TcpDirection, TcpPacket};
use crate::publish::EventSink;
use config::MysqlConfig;
use parser::{Parser, Step};
use std::time::Duration;
use transaction::Pairing;

/// Notes of a result set cut short by a gap (`messageGap`), word for word.
pub const NOTE_REQUEST_PACKET_LOSS: &str = "Packet loss while capturing the request";
pub const NOTE_RESPONSE_PACKET_LOSS: &str = "Packet loss while capturing the response";

/// The resolved settings.
#[derive(Debug, Clone)]
pub struct Mysql {
    pub ports: Vec<u16>,
    pub send_request: bool,
    pub send_response: bool,
    pub transaction_timeout: Duration,
    pub max_rows: i64,
    pub max_row_length: i64,
    pub statement_timeout: Duration,
}

impl Protocol for Mysql {
    const NAME: &'static str = "mysql";
    const DEFAULT_PORTS: &'static [u16] = &[3306, 3307];
    const TRANSPORTS: Transports<Self> = Transports {
        tcp: Some(|a, _| {
            Box::new(MysqlConnection {
                streams: [None, None],
                pairing: Pairing::new(a.proto.clone(), a.counters.clone()),
            })
        }),
        ..Transports::NONE
    };
    type Config = MysqlConfig;

    fn configure(common: &CommonOptions, cfg: MysqlConfig) -> Result<Self, SectionError> {
        Ok(Mysql {
            ports: common.ports.clone(),
            send_request: common.send_request,
            send_response: common.send_response,
            transaction_timeout: common.transaction_timeout,
            max_rows: cfg.max_rows,
            max_row_length: cfg.max_row_length,
            statement_timeout: cfg.statement_timeout.0,
        })
    }
}

/// One direction: its unconsumed bytes (from the current message's first byte on), the
/// parser's state, and when and how the current message began.
struct Stream {
    buf: StreamBuffer,
    parser: Parser,
    is_client: bool,
    started: Option<(Ts, IpPortTuple)>,
}

/// A MySQL connection. The two directions share the transaction, and the server's parser
/// asks it whether a prepare answer is due, so the connection implements
/// [`TcpConnectionParser`] itself.
pub struct MysqlConnection {
    streams: [Option<Stream>; 2],
    pairing: Pairing,
}

impl MysqlConnection {
    /// Hands a complete message on; `raw` is what is kept of it.
    fn complete(
        pairing: &mut Pairing,
        out: &mut EventSink,
        st: &mut Stream,
        now: Ts,
        fallback: IpPortTuple,
    ) {
        let parser = std::mem::take(&mut st.parser);
        let (ts, tuple) = st.started.take().unwrap_or((now, fallback));
        let data = st.buf.data();
        let raw = &data[..parser.msg.end.min(data.len())];
        let msg = parser.msg;
        if !msg.ignore {
            if msg.is_request {
                pairing.request(msg, raw, ts, tuple, now);
            } else {
                pairing.response(out, msg, raw, ts, now);
            }
        }
        st.buf.consume(parser.offset);
    }
}

impl TcpConnectionParser for MysqlConnection {
    fn parse(&mut self, out: &mut EventSink, _conn: &TcpTuple, dir: TcpDirection, pkt: &TcpPacket) {
        if pkt.payload.is_empty() {
            return;
        }
        let d = dir.index();
        let MysqlConnection { streams, pairing } = self;
        let st = streams[d].get_or_insert_with(|| Stream {
            buf: StreamBuffer::default(),
            parser: Parser::default(),
            // Decided when the direction's stream starts, from the port it is sent to.
            is_client: pairing.cfg.ports.contains(&pkt.tuple.dst_port),
            started: None,
        });
        if st.buf.append_capped(pkt.payload).is_err() {
            tracing::debug!("mysql: stream data too large, dropping TCP stream");
            pairing.counters.stream_too_large();
            streams[d] = None;
            return;
        }
        while !st.buf.is_empty() {
            st.started.get_or_insert((pkt.ts, pkt.tuple));
            let expect_prepare_ok = !st.is_client && pairing.expects_prepare_ok();
            match st
                .parser
                .step(st.buf.data(), st.is_client, expect_prepare_ok)
            {
                Step::Incomplete => break,
                Step::Error(why) => {
                    tracing::debug!("mysql: {why}, dropping TCP stream");
                    pairing.counters.parse_error();
                    streams[d] = None;
                    return;
                }
                Step::Complete => Self::complete(pairing, out, st, pkt.ts, pkt.tuple),
            }
        }
    }

    fn received_fin(&mut self, _: &mut EventSink, _: &TcpTuple, _: TcpDirection, _: Ts) {
        // Packetbeat leaves what is pending to the transaction's expiry.
    }

    fn gap_in_stream(
        &mut self,
        out: &mut EventSink,
        conn: &TcpTuple,
        dir: TcpDirection,
        _nbytes: usize,
        ts: Ts,
    ) -> bool {
        let MysqlConnection { streams, pairing } = self;
        let Some(st) = streams[dir.index()].as_mut() else {
            return false;
        };
        if st.buf.is_empty() {
            // Between messages: the next one starts with the next segment.
            return false;
        }
        if st.parser.gap() {
            Self::complete(pairing, out, st, ts, conn.tuple);
        }
        // The protocol is length-based: the rest of the message cannot be found again.
        true
    }

    fn expired(&mut self, _: &mut EventSink, _: &TcpTuple, _: Ts) {
        // Requests never answered are dropped, as Packetbeat's cache expiry drops them.
    }
}
