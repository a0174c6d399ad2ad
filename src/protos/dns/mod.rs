//! DNS analyzer over UDP and TCP (Packetbeat's `protos/dns`).
//!
//! - [`parser`]: pure wire decoder reproducing miekg/dns's `Msg.Unpack` (we decode ourselves
//!   rather than with a DNS crate because Packetbeat's output is miekg's output: its tolerance
//!   of lying counts, its name escaping and its per-type fields; see the parser's doc).
//! - [`transaction`]: pairing by tuple + DNS id, expiry on packet time.
//! - [`event`]: the event exactly as Packetbeat's `publishTransaction` builds it.
//! - this file: the module, its configuration, and the UDP and TCP glue (`dns_udp.go`,
//!   `dns_tcp.go`), including Packetbeat's TCP quirks (see [`DnsTcpConnection`]).

pub mod config;
pub mod errors;
pub mod event;
pub mod names;
pub mod parser;
pub mod transaction;

#[cfg(test)]
mod tests;

use crate::common::{TcpTuple, Transport, Ts};
use crate::protos::app::{Protocol, SectionError, StreamBuffer, Transports};
use crate::protos::{
    CommonOptions, TcpConnectionParser, TcpDirection, TcpPacket, UdpAnalyzer, UdpPacket,
};
use crate::publish::EventSink;
use config::DnsConfig;
use event::{transaction_event, EventOptions};
use parser::Message;
use std::time::Duration;
use transaction::{DnsMessage, Transaction, Transactions};

/// `decodeDNSData`: decode, reject header-only messages (miekg accepts them, Packetbeat's
/// `msg.Len() <= 12` check does not), and strip the trailing dot of question names.
pub fn decode_dns_data(raw: &[u8]) -> Option<Message> {
    let mut msg = parser::parse_message(raw).ok()?;
    if !msg.has_body() {
        return None;
    }
    for q in &mut msg.questions {
        q.name = event::trim_right_dot(&q.name).to_string();
    }
    Some(msg)
}

/// The DNS protocol's settings.
pub struct Dns {
    timeout: Duration,
    opts: EventOptions,
}

impl Protocol for Dns {
    const NAME: &'static str = "dns";
    const TRANSPORTS: Transports<Self> = Transports {
        tcp: Some(|a, _| Box::new(DnsTcpConnection::new(a.proto.timeout, a.proto.opts))),
        udp: Some(|a| Box::new(DnsUdp::new(a.proto.timeout, a.proto.opts))),
        icmp: None,
    };
    type Config = DnsConfig;

    fn configure(common: &CommonOptions, cfg: DnsConfig) -> Result<Self, SectionError> {
        Ok(Dns {
            timeout: common.transaction_timeout,
            opts: EventOptions {
                send_request: common.send_request,
                send_response: common.send_response,
                include_authorities: cfg.include_authorities,
                include_additionals: cfg.include_additionals,
            },
        })
    }
}

fn publish_all(
    out: &mut EventSink,
    ts: Vec<Transaction>,
    transport: Transport,
    opts: &EventOptions,
) {
    for t in ts {
        out.publish(transaction_event(&t, transport, opts));
    }
}

/// One worker's UDP side (`dns_udp.go`).
pub struct DnsUdp {
    txs: Transactions,
    opts: EventOptions,
}

impl DnsUdp {
    pub fn new(timeout: Duration, opts: EventOptions) -> DnsUdp {
        DnsUdp {
            txs: Transactions::new(timeout, true),
            opts,
        }
    }
}

impl UdpAnalyzer for DnsUdp {
    fn name(&self) -> &'static str {
        "dns"
    }

    fn parse_udp(&mut self, out: &mut EventSink, pkt: &UdpPacket) {
        // Expiry is lazy (see `Transactions::response`): the layer's periodic tick publishes
        // timed-out queries; a lookup checks the entry it finds. A scan per datagram would cost
        // O(open queries) per packet.
        // Undecodable datagrams are dropped (Packetbeat only logs them).
        let Some(data) = decode_dns_data(pkt.payload) else {
            return;
        };
        let msg = DnsMessage {
            ts: pkt.ts,
            tuple: pkt.tuple,
            length: pkt.payload.len(),
            data,
        };
        if msg.data.response {
            let ts = self.txs.response(msg);
            publish_all(out, ts, Transport::Udp, &self.opts);
        } else {
            let dup = self.txs.request(msg);
            publish_all(out, dup, Transport::Udp, &self.opts);
        }
    }

    fn tick(&mut self, out: &mut EventSink, now: Ts) {
        if !self.txs.is_empty() {
            let expired = self.txs.expire(now);
            publish_all(out, expired, Transport::Udp, &self.opts);
        }
    }

    fn flush(&mut self, out: &mut EventSink, _now: Ts) {
        let pending = self.txs.expire_all();
        publish_all(out, pending, Transport::Udp, &self.opts);
    }
}

/// Why a TCP stream's buffered data did not give a message (`handleTCPRawData`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamError {
    Incomplete,
    ZeroLength,
    UnexpectedLength,
    NonDns,
}

impl StreamError {
    fn text(self) -> &'static str {
        match self {
            StreamError::Incomplete => errors::INCOMPLETE_MSG,
            StreamError::ZeroLength => errors::ZERO_LENGTH_MSG,
            StreamError::UnexpectedLength => errors::UNEXPECTED_LENGTH_MSG,
            StreamError::NonDns => errors::NON_DNS_MSG,
        }
    }
}

/// The message being assembled on one stream: when and on which tuple its first byte came.
#[derive(Debug, Clone, Copy)]
struct PendingMessage {
    ts: Ts,
    tuple: crate::common::IpPortTuple,
    /// Value of the length prefix once read (0 before).
    length: usize,
}

/// One direction of a connection (`dnsStream`).
struct Stream {
    raw: StreamBuffer,
    parse_offset: usize,
    message: Option<PendingMessage>,
}

impl Stream {
    /// `handleTCPRawData`: the next length-prefixed message, if complete.
    fn decode(&mut self) -> Result<Message, StreamError> {
        let raw = self.raw.data();
        if raw.len() < 2 {
            return Err(StreamError::Incomplete);
        }
        let Some(m) = self.message.as_mut() else {
            return Err(StreamError::Incomplete);
        };
        if m.length == 0 {
            m.length = u16::from_be_bytes([raw[0], raw[1]]) as usize;
            self.parse_offset = m.length + 2;
            if m.length == 0 {
                return Err(StreamError::ZeroLength);
            }
            if m.length > 65535 {
                return Err(StreamError::UnexpectedLength);
            }
        }
        if raw.len() < self.parse_offset {
            return Err(StreamError::Incomplete);
        }
        decode_dns_data(&raw[2..self.parse_offset]).ok_or(StreamError::NonDns)
    }

    fn prepare_for_new_message(&mut self) {
        self.raw.consume(self.parse_offset);
        self.message = None;
        self.parse_offset = 0;
    }
}

/// One TCP connection (`dnsConnectionData`), reproducing `dns_tcp.go` as it behaves:
/// - each segment decodes at most ONE message; a second message that arrived in the same
///   segment is decoded when the next segment of that direction arrives, and gets that
///   segment's time (Packetbeat's behaviour, kept for identical events);
/// - a response that cannot be decoded closes the last query's transaction with
///   "Response: <why>";
/// - a zone transfer's extra response messages find their transaction already published and
///   come out as orphaned responses.
///
/// Transactions are kept per connection (the key contains the connection's own addresses, so
/// nothing else could match them); when the connection goes away its open queries are published
/// as unanswered, as Packetbeat's cache would do on expiry.
pub struct DnsTcpConnection {
    streams: [Option<Stream>; 2],
    /// Key of the last query seen, for `publishResponseError`.
    prev_request: Option<transaction::Key>,
    txs: Transactions,
    opts: EventOptions,
    /// Whether any payload was seen (Packetbeat's connection data is still nil before).
    seen: bool,
}

impl DnsTcpConnection {
    pub fn new(timeout: Duration, opts: EventOptions) -> DnsTcpConnection {
        DnsTcpConnection {
            streams: [None, None],
            prev_request: None,
            txs: Transactions::new(timeout, false),
            opts,
            seen: false,
        }
    }

    fn publish(&self, out: &mut EventSink, ts: Vec<Transaction>) {
        publish_all(out, ts, Transport::Tcp, &self.opts);
    }

    /// `handleDNS`: a complete message on `dir`.
    fn message_complete(&mut self, out: &mut EventSink, dir: TcpDirection, data: Message) {
        let Some(pending) = self.streams[dir.index()].as_ref().and_then(|s| s.message) else {
            return;
        };
        let msg = DnsMessage {
            ts: pending.ts,
            tuple: pending.tuple,
            length: pending.length + 2,
            data,
        };
        if msg.data.response {
            let ts = self.txs.response(msg);
            self.prev_request = None;
            self.publish(out, ts);
        } else {
            self.prev_request = Some((msg.tuple, msg.data.id));
            let dup = self.txs.request(msg);
            self.publish(out, dup);
        }
    }

    /// `publishResponseError`.
    fn publish_response_error(&mut self, out: &mut EventSink, err: StreamError) {
        if self.streams[TcpDirection::Original.index()].is_none()
            || self.streams[TcpDirection::Reverse.index()].is_none()
        {
            return;
        }
        let Some(key) = self.prev_request else { return };
        let Some(mut t) = self.txs.take(&key) else {
            return;
        };
        t.notes.push(errors::response(err.text()));
        self.publish(out, vec![t]);
    }
}

impl TcpConnectionParser for DnsTcpConnection {
    fn parse(&mut self, out: &mut EventSink, _conn: &TcpTuple, dir: TcpDirection, pkt: &TcpPacket) {
        self.seen = true;
        let expired = self.txs.expire(pkt.ts);
        self.publish(out, expired);

        let d = dir.index();
        match self.streams[d].as_mut() {
            None => {
                let mut raw = StreamBuffer::default();
                raw.append(pkt.payload);
                self.streams[d] = Some(Stream {
                    raw,
                    parse_offset: 0,
                    message: Some(PendingMessage {
                        ts: pkt.ts,
                        tuple: pkt.tuple,
                        length: 0,
                    }),
                });
            }
            Some(stream) => {
                if stream.message.is_none() {
                    stream.message = Some(PendingMessage {
                        ts: pkt.ts,
                        tuple: pkt.tuple,
                        length: 0,
                    });
                }
                if stream.raw.append_capped(pkt.payload).is_err() {
                    self.streams[d] = None;
                    return;
                }
            }
        }
        let stream = self.streams[d].as_mut().expect("stream set above");
        match stream.decode() {
            Err(StreamError::Incomplete) => {}
            Err(e) => {
                if dir == TcpDirection::Reverse {
                    self.publish_response_error(out, e);
                }
                self.streams[d] = None;
            }
            Ok(msg) => {
                self.message_complete(out, dir, msg);
                if let Some(s) = self.streams[d].as_mut() {
                    s.prepare_for_new_message();
                }
            }
        }
    }

    fn received_fin(&mut self, out: &mut EventSink, _conn: &TcpTuple, dir: TcpDirection, _ts: Ts) {
        let d = dir.index();
        let Some(stream) = self.streams[d].as_mut() else {
            return;
        };
        if stream.message.is_none() {
            return;
        }
        match stream.decode() {
            // Packetbeat does not reset the stream here.
            Ok(msg) => self.message_complete(out, dir, msg),
            Err(e) => {
                if dir == TcpDirection::Reverse {
                    self.publish_response_error(out, e);
                }
            }
        }
    }

    fn gap_in_stream(
        &mut self,
        out: &mut EventSink,
        _conn: &TcpTuple,
        dir: TcpDirection,
        _nbytes: usize,
        _ts: Ts,
    ) -> bool {
        if !self.seen {
            return true;
        }
        let d = dir.index();
        let Some(stream) = self.streams[d].as_mut() else {
            return false;
        };
        if stream.message.is_none() {
            return false;
        }
        match stream.decode() {
            Ok(msg) => self.message_complete(out, dir, msg),
            Err(e) => {
                if dir == TcpDirection::Reverse {
                    self.publish_response_error(out, e);
                }
            }
        }
        // The connection state is dropped: report its open queries now, as their expiry would.
        let pending = self.txs.expire_all();
        self.publish(out, pending);
        true
    }

    fn expired(&mut self, out: &mut EventSink, _conn: &TcpTuple, _now: Ts) {
        let pending = self.txs.expire_all();
        self.publish(out, pending);
    }
}
