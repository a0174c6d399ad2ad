//! The AMQP 0-9-1 analyzer (Packetbeat's `protos/amqp`).
//!
//! Each direction is read frame by frame ([`parser`]) into messages: a method with its
//! arguments, and for basic.publish, basic.deliver, basic.get-ok and basic.return the content
//! header and the body frames that follow. The frame's channel is not looked at: a connection
//! has one open transaction, as in Packetbeat.
//!
//! - A request (a method the protocol answers: queue.declare, basic.get, channel.close, …)
//!   opens the connection's transaction, from its sender to the other end; a request while
//!   another waits replaces it (counted as unmatched). A request with `no-wait` set, and
//!   basic.ack, basic.nack and basic.reject, are published at once.
//! - The next response completes it: its fields are merged into the request's, the status is
//!   `OK` (`Error` for a connection.close or channel.close with a reply code of 300 or more,
//!   a basic.return, a basic.reject), basic.get-empty names the transaction. A response with
//!   no request waiting is counted and dropped.
//! - A published message is one event from the client to the server; a delivered, got or
//!   returned message one event on the connection's own orientation, with only the body's
//!   size as bytes (`max_body_length` of it in `request`/`response` with `send_request`,
//!   `send_response`: as text for text and JSON content types, else as numbers).
//! - With `hide_connection_information` (the default) the connection and channel set-up
//!   methods are not read and the closes without an error are not reported.
//! - A close with an error that no close-ok answers is published when its
//!   `transaction_timeout` passes, with `Close-ok method not received by sender`; other
//!   requests that expire are dropped.
//!
//! Bytes that do not parse drop the direction's stream; the next segment starts afresh. A
//! read past the end of a frame, where Packetbeat's Go code panics and recovers, drops the
//! parser state of both directions, as its recovery does.

pub mod config;
pub mod event;
pub mod fields;
pub mod parser;

#[cfg(test)]
mod tests;

use crate::common::{TcpTuple, Ts};
use crate::protos::app::TCP_MAX_DATA_IN_STREAM;
use crate::protos::app::{AppCounters, Protocol, SectionError, Transports};
use crate::protos::{CommonOptions, TcpConnectionParser, TcpDirection, TcpPacket};
use crate::publish::EventSink;
use config::AmqpConfig;
use event::{reply_code, transaction_event, Transaction};
use parser::{Fail, Message, ParserConfig, Step, Stream};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// The resolved settings.
#[derive(Debug, Clone)]
pub struct Amqp {
    pub parser: ParserConfig,
    pub send_request: bool,
    pub send_response: bool,
    pub max_body_length: usize,
    pub transaction_timeout: Duration,
}

impl Protocol for Amqp {
    const NAME: &'static str = "amqp";
    const DEFAULT_PORTS: &'static [u16] = &[5672];
    const TRANSPORTS: Transports<Self> = Transports {
        tcp: Some(|a, _| Box::new(AmqpConnection::new(a.proto.clone(), a.counters.clone()))),
        ..Transports::NONE
    };
    type Config = AmqpConfig;

    fn configure(common: &CommonOptions, cfg: AmqpConfig) -> Result<Self, SectionError> {
        Ok(Amqp {
            parser: ParserConfig {
                parse_headers: cfg.parse_headers,
                parse_arguments: cfg.parse_arguments,
                hide_connection_information: cfg.hide_connection_information,
            },
            send_request: common.send_request,
            send_response: common.send_response,
            max_body_length: cfg.max_body_length.max(0) as usize,
            transaction_timeout: common.transaction_timeout,
        })
    }
}

/// One connection: the two directions' streams and the open transaction.
pub struct AmqpConnection {
    cfg: Arc<Amqp>,
    counters: Arc<AppCounters>,
    streams: [Option<Stream>; 2],
    trans: Option<Transaction>,
}

impl AmqpConnection {
    pub fn new(cfg: Arc<Amqp>, counters: Arc<AppCounters>) -> AmqpConnection {
        AmqpConnection {
            cfg,
            counters,
            streams: [None, None],
            trans: None,
        }
    }

    /// The open transaction (for tests).
    pub fn transaction(&self) -> Option<&Transaction> {
        self.trans.as_ref()
    }

    /// Publishes or drops the open transaction when its timeout passed by `now`
    /// (`expireTransaction`).
    fn expire(&mut self, out: &mut EventSink, now: Ts, force: bool) {
        let due = self
            .trans
            .as_ref()
            .is_some_and(|t| force || t.expires.is_some_and(|e| now > e));
        if !due {
            return;
        }
        let Some(mut t) = self.trans.take() else {
            return;
        };
        if t.is_close_error() {
            t.notes
                .push("Close-ok method not received by sender".into());
            out.publish(transaction_event(&self.cfg, &t));
        }
    }

    /// A complete message (`handleAmqp`).
    fn handle(&mut self, out: &mut EventSink, conn: &TcpTuple, dir: TcpDirection, mut m: Message) {
        let close = matches!(m.method, "connection.close" | "channel.close");
        if self.cfg.parser.hide_connection_information
            && close
            && reply_code(m.fields.as_ref()) < 300
        {
            return;
        }
        let t = &conn.tuple;
        let (client, server) = ((t.src_ip, t.src_port), (t.dst_ip, t.dst_port));
        match m.method {
            "basic.publish" => {
                let mut tr = self.trans.take().unwrap_or_default();
                tr.ts = m.ts;
                (tr.src, tr.dst) = (Some(client), Some(server));
                tr.method = m.method;
                tr.bytes_in = m.body_size;
                self.set_body(&mut tr, &mut m);
                tr.amqp = m.fields;
                out.publish(transaction_event(&self.cfg, &tr));
            }
            "basic.deliver" | "basic.return" | "basic.get-ok" => {
                let mut tr = self.trans.take().unwrap_or_default();
                tr.ts = m.ts;
                (tr.src, tr.dst) = (Some(client), Some(server));
                tr.bytes_out = m.body_size;
                self.set_body(&mut tr, &mut m);
                tr.method = if m.method == "basic.get-ok" {
                    "basic.get"
                } else {
                    m.method
                };
                tr.amqp = m.fields;
                out.publish(transaction_event(&self.cfg, &tr));
            }
            _ if m.is_request => self.request(out, dir, client, server, m),
            _ => self.response(out, m),
        }
    }

    /// The body kept for `request`/`response`: cut at `max_body_length` when the message is
    /// longer.
    fn set_body(&self, tr: &mut Transaction, m: &mut Message) {
        let max = self.cfg.max_body_length;
        let mut body = std::mem::take(&mut m.body);
        if m.body_size > max as u64 {
            body.truncate(max);
        }
        tr.body = body;
        tr.to_string = is_stringable(m);
    }

    fn request(
        &mut self,
        out: &mut EventSink,
        dir: TcpDirection,
        client: (std::net::IpAddr, u16),
        server: (std::net::IpAddr, u16),
        m: Message,
    ) {
        let tr = match self.trans.as_mut() {
            Some(tr) => {
                if tr.amqp.is_some() {
                    tracing::debug!("amqp: two requests without a response, dropping the old one");
                    self.counters.unmatched_request();
                }
                tr
            }
            None => self.trans.insert(Transaction::default()),
        };
        tr.ts = m.ts;
        (tr.src, tr.dst) = match dir {
            TcpDirection::Original => (Some(client), Some(server)),
            TcpDirection::Reverse => (Some(server), Some(client)),
        };
        tr.method = m.method;
        tr.request = if m.request.is_empty() {
            m.method.to_string()
        } else {
            format!("{} {}", m.method, m.request)
        };
        // The arguments, the class and method ids, the frame header and its end.
        tr.bytes_in = m.body_size + 12;
        tr.amqp = Some(m.fields.unwrap_or_default());
        if is_asynchronous(tr) {
            let tr = self.trans.take().unwrap_or_default();
            out.publish(transaction_event(&self.cfg, &tr));
            return;
        }
        tr.expires = Some(m.ts.add(self.cfg.transaction_timeout));
    }

    fn response(&mut self, out: &mut EventSink, m: Message) {
        let Some(mut tr) = self.trans.take().filter(|t| t.amqp.is_some()) else {
            tracing::debug!("amqp: response from unknown transaction, ignoring");
            self.counters.unmatched_response();
            return;
        };
        tr.bytes_out = m.body_size + 12;
        if let (Some(a), Some(f)) = (tr.amqp.as_mut(), m.fields) {
            a.extend(f);
        }
        tr.response = "OK";
        if m.method == "basic.get-empty" {
            tr.method = "basic.get-empty";
        }
        tr.end = Some(m.ts);
        tr.notes = m.notes;
        out.publish(transaction_event(&self.cfg, &tr));
    }
}

/// Published at once: nothing answers it (`isAsynchronous`).
fn is_asynchronous(t: &Transaction) -> bool {
    t.amqp
        .as_ref()
        .is_some_and(|a| a.get("no-wait") == Some(&Value::Bool(true)))
        || matches!(t.method, "basic.reject" | "basic.ack" | "basic.nack")
}

/// Packetbeat's `isStringable`: a text or JSON content type and no content encoding.
fn is_stringable(m: &Message) -> bool {
    let get = |k: &str| {
        m.fields
            .as_ref()
            .and_then(|f| f.get(k))
            .and_then(Value::as_str)
    };
    if get("content-encoding").is_some_and(|e| !e.is_empty()) {
        return false;
    }
    get("content-type").is_some_and(|t| t.contains("text") || t.contains("json"))
}

impl TcpConnectionParser for AmqpConnection {
    fn parse(&mut self, out: &mut EventSink, conn: &TcpTuple, dir: TcpDirection, pkt: &TcpPacket) {
        if pkt.payload.is_empty() {
            return;
        }
        self.expire(out, pkt.ts, false);
        let d = dir.index();
        match self.streams[d].as_mut() {
            None => {
                let mut st = Stream::new(pkt.ts);
                st.append(pkt.payload);
                self.streams[d] = Some(st);
            }
            Some(st) => {
                st.append(pkt.payload);
                if st.total_len() > TCP_MAX_DATA_IN_STREAM {
                    tracing::debug!("amqp: stream data too large, dropping TCP stream");
                    self.counters.stream_too_large();
                    self.streams[d] = None;
                    return;
                }
            }
        }
        loop {
            let Some(st) = self.streams[d].as_mut() else {
                return;
            };
            match st.step(&self.cfg.parser) {
                Step::Wait => return,
                Step::Complete => {
                    // The body is the message's own: handed over, not copied.
                    let body = std::mem::take(&mut st.msg.body);
                    let m = Message {
                        body,
                        ..st.msg.clone()
                    };
                    self.handle(out, conn, dir, m);
                }
                Step::Reset => {
                    self.streams[d] = None;
                    return;
                }
                Step::Fail(Fail::Drop(why)) => {
                    tracing::debug!("amqp: {why}, dropping stream");
                    self.counters.parse_error();
                    self.streams[d] = None;
                    return;
                }
                Step::Fail(Fail::Panic) => {
                    tracing::debug!("amqp: frame shorter than its arguments, dropping streams");
                    self.counters.parse_error();
                    self.streams = [None, None];
                    return;
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
    }

    fn gap_in_stream(
        &mut self,
        out: &mut EventSink,
        _conn: &TcpTuple,
        _dir: TcpDirection,
        _nbytes: usize,
        ts: Ts,
    ) -> bool {
        // Packetbeat drops the connection's state; the open transaction is reported as its
        // expiry would report it.
        self.expire(out, ts, true);
        true
    }

    fn expired(&mut self, out: &mut EventSink, _conn: &TcpTuple, now: Ts) {
        self.expire(out, now, true);
    }
}
