//! The memcache analyzer over TCP and UDP (Packetbeat's `protos/memcache`).
//!
//! - [`parser`]: text and binary messages; [`codes`]: Packetbeat's names for them;
//! - [`event`]: the published event;
//! - this file: pairing, as `plugin_tcp.go` and `plugin_udp.go` do it.
//!
//! TCP: requests wait in order; a response answers the oldest text request, or the binary
//! request with its opaque and opcode (binary requests skipped on the way are published alone:
//! quiet ones as answered, others with "Missing response for non-quiet request"). Multi-line
//! responses (`VALUE`…`END`, `STAT`…`END`, binary stats up to the empty key) are merged into one.
//! A text `quit` and a binary QuitQ expect no response and are published at once. A message that
//! does not parse, a stream past the 10 MiB cap, a gap, or the connection's expiry publish the
//! pending requests ("Unfinished transaction" unless quiet or noreply) and drop both directions,
//! since the connection state is built from both. This needs both streams at once, so the
//! connection implements [`TcpConnectionParser`] itself.
//!
//! UDP: each datagram starts with the 8-byte memcache frame header (request id, sequence number,
//! datagram count). The datagrams of one message are joined by sequence number, per address
//! pair and request id, and the message they make is parsed (only the first one it holds). A
//! transaction is published when its request and response are both in, or when the request
//! expects none; otherwise `udptransactiontimeout` after its last datagram (on packet time).
//! Packetbeat's timers never fire before it exits at the end of a capture, so what is still
//! pending then is counted as unmatched, not published (its reference events for request-only
//! UDP captures are empty).

pub mod codes;
pub mod config;
pub mod event;
pub mod parser;

#[cfg(test)]
mod tests;

use crate::common::{IpPortTuple, TcpTuple, Transport, Ts};
use crate::protos::app::{
    AppCounters, Found, Parsed, Protocol, SectionError, StreamBuffer, TransactionTable, Transports,
};
use crate::protos::{
    CommonOptions, TcpConnectionParser, TcpDirection, TcpPacket, UdpAnalyzer, UdpPacket,
};
use crate::publish::EventSink;
use codes::Code;
use config::MemcacheConfig;
use event::{transaction_event, Seen};
use parser::{Message, ParserConfig};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

/// Notes published with a transaction (`errors.go`), word for word.
pub const NOTE_TRANSACTION_NO_REQUEST: &str = "Invalid transaction. Request missing";
pub const NOTE_NON_QUIET_RESPONSE_ONLY: &str = "Missing response for non-quiet request";
pub const NOTE_TRANSACTION_UNFINISHED: &str = "Unfinished transaction";
pub const NOTE_REQUEST_PACKET_LOSS: &str = "Packet loss while capturing the request";
pub const NOTE_RESPONSE_PACKET_LOSS: &str = "Packet loss while capturing the response";

/// The resolved settings.
#[derive(Debug, Clone)]
pub struct Memcache {
    pub parser: ParserConfig,
    pub udp_transaction_timeout: Duration,
}

impl Protocol for Memcache {
    const NAME: &'static str = "memcache";
    const DEFAULT_PORTS: &'static [u16] = &[11211];
    const TRANSPORTS: Transports<Self> = Transports {
        tcp: Some(|a, _| Box::new(MemcacheConnection::new(a.proto.parser, a.counters.clone()))),
        udp: Some(|a| {
            Box::new(MemcacheUdp::new(
                a.proto.parser,
                a.proto.udp_transaction_timeout,
                a.counters.clone(),
            ))
        }),
        icmp: None,
    };
    type Config = MemcacheConfig;

    fn configure(_common: &CommonOptions, cfg: MemcacheConfig) -> Result<Self, SectionError> {
        Ok(Memcache {
            parser: ParserConfig {
                max_values: cfg.maxvalues,
                max_bytes_per_value: if cfg.maxbytespervalue <= 0 {
                    i32::MAX as usize
                } else {
                    cfg.maxbytespervalue as usize
                },
                parse_unknown: cfg.parseunknown,
            },
            udp_transaction_timeout: cfg.udptransactiontimeout.0,
        })
    }
}

/// Whether a request expects a response (`waitResponse`).
fn waits_for_response(m: &Message) -> bool {
    m.noreply
        || (!m.is_binary && m.command.code() != Code::Quit)
        || (m.is_binary && m.opcode != codes::OP_QUITQ)
}

/// `checkResponseComplete`.
fn response_complete(m: &Message) -> bool {
    if m.is_binary {
        return m.opcode != codes::OP_STAT || m.keys.is_none();
    }
    !matches!(m.command.code(), Code::ResValue | Code::Stat)
}

/// `tryMergeResponses` after the protocol check: folds `msg` into `prev` when it continues it.
fn try_merge(cfg: &ParserConfig, prev: &mut Message, msg: &Message) -> bool {
    if !msg.is_binary {
        match prev.command.code() {
            Code::ResValue => merge_values(cfg, prev, msg),
            Code::Stat => merge_stats(prev, msg),
            _ => false,
        }
    } else if prev.opcode == codes::OP_STAT
        && msg.opcode == codes::OP_STAT
        && prev.opaque == msg.opaque
    {
        merge_stats(prev, msg)
    } else {
        false
    }
}

fn merge_values(cfg: &ParserConfig, prev: &mut Message, msg: &Message) -> bool {
    if !matches!(msg.command.code(), Code::ResValue | Code::ResEnd) {
        return false;
    }
    prev.size += msg.size;
    prev.bytes += msg.bytes;
    if let Some(k) = &msg.keys {
        prev.keys
            .get_or_insert_with(Vec::new)
            .extend(k.iter().cloned());
    }
    prev.notes.extend(msg.notes.iter().cloned());
    prev.count_values += msg.count_values;
    if msg.command.code() == Code::ResValue {
        let room = if cfg.max_values < 0 {
            msg.values.len()
        } else {
            (cfg.max_values as usize)
                .saturating_sub(prev.values.len())
                .min(msg.values.len())
        };
        prev.values.extend(msg.values[..room].iter().cloned());
    }
    prev.is_complete |= msg.is_complete;
    true
}

fn merge_stats(prev: &mut Message, msg: &Message) -> bool {
    let continues = msg.command.typ() == codes::Type::Stats || msg.command.code() == Code::ResEnd;
    if prev.command.typ() != codes::Type::Stats || !continues {
        return false;
    }
    prev.notes.extend(msg.notes.iter().cloned());
    prev.stats.extend(msg.stats.iter().cloned());
    prev.size += msg.size;
    prev.is_complete |= msg.is_complete;
    true
}

/// One direction of a connection: unconsumed bytes, when the message they start began, and
/// the bytes of its data block lost in gaps.
#[derive(Default)]
struct Stream {
    buf: StreamBuffer,
    started: Option<Ts>,
    lost: usize,
    loss_note: Option<&'static str>,
}

/// A TCP connection's pairing state (`connection`).
struct Pairing {
    cfg: ParserConfig,
    counters: Arc<AppCounters>,
    requests: VecDeque<Seen>,
    responses: VecDeque<Seen>,
}

impl Pairing {
    fn publish(&self, out: &mut EventSink, req: Option<&Seen>, resp: Option<&Seen>) {
        out.publish(transaction_event(Transport::Tcp, req, resp));
    }

    fn on_message(&mut self, out: &mut EventSink, mut seen: Seen) {
        if seen.msg.is_request {
            seen.msg.is_complete = true;
            if waits_for_response(&seen.msg) {
                self.requests.push_back(seen);
            } else {
                self.publish(out, Some(&seen), None);
            }
            return;
        }
        seen.msg.is_complete = response_complete(&seen.msg);
        let merged = match self.responses.back_mut() {
            Some(prev) if prev.msg.is_binary != seen.msg.is_binary => {
                tracing::debug!("memcache: mix of binary and text in one connection");
                return;
            }
            Some(prev) => {
                try_merge(&self.cfg, &mut prev.msg, &seen.msg).then_some(prev.msg.is_complete)
            }
            None => None,
        };
        let complete = match merged {
            Some(c) => c,
            None => {
                let c = seen.msg.is_complete;
                self.responses.push_back(seen);
                c
            }
        };
        if complete {
            self.correlate(out);
        }
    }

    /// `correlateTCP`: pairs every response held with its request.
    fn correlate(&mut self, out: &mut EventSink) {
        while let Some(mut resp) = self.responses.pop_front() {
            let mut found = None;
            while let Some(mut req) = self.requests.pop_front() {
                if req.msg.is_binary != resp.msg.is_binary {
                    tracing::debug!("memcache: mix of binary and text in one connection");
                    return;
                }
                if !req.msg.is_binary
                    || (req.msg.opaque == resp.msg.opaque && req.msg.opcode == resp.msg.opcode)
                {
                    found = Some(req);
                    break;
                }
                // A quiet request may go unanswered; another one lost its response.
                if req.msg.is_binary && !req.msg.is_quiet {
                    req.msg.notes.push(NOTE_NON_QUIET_RESPONSE_ONLY.to_string());
                    self.counters.unmatched_request();
                }
                self.publish(out, Some(&req), None);
            }
            if found.is_none() {
                resp.msg.notes.push(NOTE_TRANSACTION_NO_REQUEST.to_string());
                self.counters.unmatched_response();
            }
            self.publish(out, found.as_ref(), Some(&resp));
        }
    }

    /// `pushAllTCPTrans`: what is complete, then every request still waiting.
    fn push_all(&mut self, out: &mut EventSink) {
        self.correlate(out);
        while let Some(mut req) = self.requests.pop_front() {
            if !req.msg.is_quiet && !req.msg.noreply {
                req.msg.notes.push(NOTE_TRANSACTION_UNFINISHED.to_string());
            }
            self.publish(out, Some(&req), None);
        }
        self.responses.clear();
    }
}

/// One memcache TCP connection (`tcpConnectionData`).
pub struct MemcacheConnection {
    streams: [Option<Stream>; 2],
    pairing: Pairing,
}

impl MemcacheConnection {
    pub fn new(cfg: ParserConfig, counters: Arc<AppCounters>) -> MemcacheConnection {
        MemcacheConnection {
            streams: [None, None],
            pairing: Pairing {
                cfg,
                counters,
                requests: VecDeque::new(),
                responses: VecDeque::new(),
            },
        }
    }

    /// Publishes what is pending and forgets both directions.
    fn drop_streams(&mut self, out: &mut EventSink) {
        self.pairing.push_all(out);
        self.streams = [None, None];
    }
}

impl TcpConnectionParser for MemcacheConnection {
    fn parse(&mut self, out: &mut EventSink, _conn: &TcpTuple, dir: TcpDirection, pkt: &TcpPacket) {
        let st = self.streams[dir.index()].get_or_insert_with(Stream::default);
        if st.buf.append_capped(pkt.payload).is_err() {
            tracing::debug!("memcache: stream data too large, dropping TCP streams");
            self.pairing.counters.stream_too_large();
            self.drop_streams(out);
            return;
        }
        while !st.buf.is_empty() {
            let started = *st.started.get_or_insert(pkt.ts);
            match parser::parse_lossy(&self.pairing.cfg, st.buf.data(), st.lost) {
                Parsed::Incomplete => break,
                Parsed::Skip(n) => st.buf.consume(n),
                Parsed::Error(why) => {
                    tracing::debug!("memcache: {why}, dropping TCP streams");
                    self.pairing.counters.parse_error();
                    self.drop_streams(out);
                    return;
                }
                Parsed::Message { mut msg, consumed } => {
                    st.buf.consume(consumed);
                    st.started = None;
                    st.lost = 0;
                    if let Some(note) = st.loss_note.take() {
                        msg.notes.push(note.to_string());
                    }
                    let seen = Seen {
                        ts: started,
                        tuple: pkt.tuple,
                        msg,
                    };
                    self.pairing.on_message(out, seen);
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
        // Packetbeat leaves what is pending to the connection's expiry.
    }

    fn gap_in_stream(
        &mut self,
        out: &mut EventSink,
        _conn: &TcpTuple,
        dir: TcpDirection,
        nbytes: usize,
        _ts: Ts,
    ) -> bool {
        // A gap inside a data block that the block still covers is skipped: the message is
        // completed without those bytes (noted), and parsing goes on (`GapInStream`).
        if let Some(st) = self.streams[dir.index()].as_mut() {
            let pending = parser::pending_data(&self.pairing.cfg, st.buf.data());
            if let Some((is_request, data_len, header_len)) = pending {
                let already_read = (st.buf.len() - header_len) as i64 - st.lost as i64;
                if nbytes as i64 <= data_len as i64 - already_read {
                    st.lost += nbytes;
                    st.loss_note = Some(if is_request {
                        NOTE_REQUEST_PACKET_LOSS
                    } else {
                        NOTE_RESPONSE_PACKET_LOSS
                    });
                    return false;
                }
            }
        }
        // Otherwise the connection state is dropped; its pending requests are published now,
        // as the connection's expiry would publish them.
        self.drop_streams(out);
        true
    }

    fn expired(&mut self, out: &mut EventSink, _conn: &TcpTuple, _now: Ts) {
        self.pairing.push_all(out);
    }
}

/// The datagrams of one message of a UDP transaction (`udpMessage`). They are kept by sequence
/// number as they arrive: what the header announces (up to 65,535 datagrams) costs nothing until
/// it comes, so random bytes on the port cannot make each flow allocate for a full message.
struct UdpMessage {
    num_datagrams: u16,
    count: u16,
    complete: bool,
    datagrams: std::collections::BTreeMap<u16, Vec<u8>>,
}

impl UdpMessage {
    fn new(num_datagrams: u16) -> UdpMessage {
        UdpMessage {
            num_datagrams,
            count: 0,
            complete: false,
            datagrams: Default::default(),
        }
    }

    /// `addDatagram`: the message's bytes once its last datagram is in.
    fn add(&mut self, seq: u16, data: &[u8]) -> Option<Vec<u8>> {
        if self.complete {
            return None;
        }
        if self.num_datagrams == 1 {
            self.complete = true;
            return Some(data.to_vec());
        }
        if self.count < self.num_datagrams {
            if seq >= self.num_datagrams || self.datagrams.contains_key(&seq) {
                return None;
            }
            self.datagrams.insert(seq, data.to_vec());
            self.count += 1;
        }
        if self.count < self.num_datagrams {
            return None;
        }
        self.complete = true;
        Some(
            std::mem::take(&mut self.datagrams)
                .into_values()
                .flatten()
                .collect(),
        )
    }
}

/// A UDP transaction: one request id between two endpoints (`udpTransaction`).
#[derive(Default)]
struct UdpTransaction {
    messages: [Option<UdpMessage>; 2],
    request: Option<Seen>,
    response: Option<Seen>,
}

/// One worker's UDP side (`plugin_udp.go`).
pub struct MemcacheUdp {
    cfg: ParserConfig,
    counters: Arc<AppCounters>,
    /// By the tuple of the transaction's first datagram and the request id.
    txs: TransactionTable<(IpPortTuple, u16), UdpTransaction>,
}

/// The memcache UDP frame header's size.
const UDP_HEADER: usize = 8;

impl MemcacheUdp {
    pub fn new(cfg: ParserConfig, timeout: Duration, counters: Arc<AppCounters>) -> MemcacheUdp {
        MemcacheUdp {
            cfg,
            counters,
            txs: TransactionTable::new(timeout),
        }
    }

    fn publish(&self, out: &mut EventSink, t: &UdpTransaction) {
        if t.request.is_none() && t.response.is_none() {
            return;
        }
        out.publish(transaction_event(
            Transport::Udp,
            t.request.as_ref(),
            t.response.as_ref(),
        ));
    }

    /// The open transaction of `key` (published first if its timeout passed).
    fn take_live(
        &mut self,
        out: &mut EventSink,
        key: (IpPortTuple, u16),
        ts: Ts,
    ) -> Option<UdpTransaction> {
        match self.txs.take_at(&key, ts) {
            Found::Live(t) => Some(t),
            Found::Expired(t) => {
                self.publish(out, &t);
                None
            }
            Found::Missing => None,
        }
    }
}

impl UdpAnalyzer for MemcacheUdp {
    fn name(&self) -> &'static str {
        "memcache"
    }

    fn parse_udp(&mut self, out: &mut EventSink, pkt: &UdpPacket) {
        let p = pkt.payload;
        if p.len() < UDP_HEADER {
            return;
        }
        let request_id = u16::from_be_bytes([p[0], p[1]]);
        let seq = u16::from_be_bytes([p[2], p[3]]);
        let num_datagrams = u16::from_be_bytes([p[4], p[5]]);
        let body = &p[UDP_HEADER..];

        let forward = (pkt.tuple, request_id);
        let reverse = (pkt.tuple.reversed(), request_id);
        let (key, dir, mut t) = match self.take_live(out, forward, pkt.ts) {
            Some(t) => (forward, 0, t),
            None => match self.take_live(out, reverse, pkt.ts) {
                Some(t) => (reverse, 1, t),
                None => (forward, 0, UdpTransaction::default()),
            },
        };
        let m = t.messages[dir].get_or_insert_with(|| UdpMessage::new(num_datagrams));
        if m.num_datagrams != num_datagrams {
            tracing::debug!("memcache: number of datagrams mismatches in stream");
            return;
        }
        let mut done = false;
        if let Some(data) = m.add(seq, body) {
            let msg = match parser::parse(&self.cfg, &data) {
                Parsed::Message { msg, .. } => msg,
                _ => {
                    tracing::debug!("memcache: failed to parse memcached(UDP) message");
                    self.counters.parse_error();
                    return;
                }
            };
            let mut seen = Seen {
                ts: pkt.ts,
                tuple: pkt.tuple,
                msg,
            };
            seen.msg.is_complete = true;
            if seen.msg.is_request {
                done = !waits_for_response(&seen.msg);
                t.request = Some(seen);
            } else {
                t.response = Some(seen);
            }
            done |= t.request.is_some() && t.response.is_some();
        }
        if done {
            self.publish(out, &t);
        } else {
            self.txs.insert(key, pkt.ts, t);
        }
    }

    fn tick(&mut self, out: &mut EventSink, now: Ts) {
        for t in self.txs.expire(now) {
            self.publish(out, &t);
        }
    }

    fn flush(&mut self, _out: &mut EventSink, _now: Ts) {
        // Packetbeat's transaction timers cannot fire before it exits at the end of a capture.
        for t in self.txs.drain() {
            if t.request.is_some() {
                self.counters.unmatched_request();
            }
        }
    }
}
