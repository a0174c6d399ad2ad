//! The SIP analyzer (Packetbeat's `protos/sip`, beta in Packetbeat 8).
//!
//! Packetbeat publishes one event per SIP message, request or response: there is no pairing,
//! so provisional responses, an ACK (which has no response) and the several transactions of a
//! dialog are each an event of their own, tied together by `sip.call_id` and `sip.cseq.*`.
//! The event carries the start line, the main headers (From, To, Contact, Via, CSeq, …), the
//! first Authorization header (`parse_authorization`), an SDP body (`parse_body`) and the
//! message itself in `event.original` (`keep_original`). `network.transport` is the
//! `transport_protocol` option, whatever transport carried the message, and
//! `network.iana_number` is always "17", as Packetbeat writes them.
//!
//! - [`parser`]: the start line, headers and body;
//! - [`event`]: the event, with Packetbeat's field quirks (the contact fields come from the To
//!   header; an SDP owner quoted user name loses its last character);
//! - this file: the options and the two transports.
//!
//! UDP: each datagram is parsed from its start; every complete message in it is published,
//! with `event.original` from the message's start to the end of the datagram, as Packetbeat
//! copies it. A message cut short (a body shorter than Content-Length) gives nothing.
//!
//! TCP: Packetbeat parses every segment on its own (its connection state is never kept), so a
//! message split over segments is lost. Here the stream is reassembled: a message is published
//! when its last byte arrives, `event.original` is exactly its bytes, and a stream that does
//! not parse is dropped and the next segment starts afresh (as Packetbeat retries with the next
//! segment). Where the two differ (split messages, several messages in one segment) this
//! analyzer gives the messages as sent.
//!
//! Also on purpose: a message without Content-Length ends with its headers (Packetbeat, on UDP,
//! waits for a body for a response without one and so never publishes it).

pub mod config;
pub mod event;
pub mod parser;

#[cfg(test)]
mod tests;

use crate::common::{TcpTuple, Transport, Ts};
use crate::protos::app::{
    AppCounters, MessageAt, MessageConnection, MessageProtocol, Parsed, Protocol, SectionError,
    Transports,
};
use crate::protos::{CommonOptions, TcpDirection, UdpAnalyzer, UdpPacket};
use crate::publish::EventSink;
use config::SipConfig;
use parser::Message;
use std::sync::Arc;

/// The resolved settings.
#[derive(Debug, Clone)]
pub struct Sip {
    pub parse_authorization: bool,
    pub parse_body: bool,
    pub keep_original: bool,
    /// `network.transport` of every event.
    pub transport: Transport,
}

impl Protocol for Sip {
    const NAME: &'static str = "sip";
    const DEFAULT_PORTS: &'static [u16] = &[5060];
    const TRANSPORTS: Transports<Self> = Transports {
        tcp: Some(MessageConnection::<Self>::boxed),
        udp: Some(|a| {
            Box::new(SipUdp {
                proto: a.proto.clone(),
                counters: a.counters.clone(),
            })
        }),
        icmp: None,
    };
    type Config = SipConfig;

    fn configure(_common: &CommonOptions, cfg: SipConfig) -> Result<Self, SectionError> {
        let transport = match cfg.transport_protocol.to_ascii_lowercase().as_str() {
            "udp" => Transport::Udp,
            "tcp" => Transport::Tcp,
            other => {
                return Err(SectionError {
                    key: "transport_protocol",
                    message: format!("unsupported transport_protocol: {other}"),
                })
            }
        };
        Ok(Sip {
            parse_authorization: cfg.parse_authorization,
            parse_body: cfg.parse_body,
            keep_original: cfg.keep_original,
            transport,
        })
    }
}

impl MessageProtocol for Sip {
    type Message = Message;
    /// What is known of the pending bytes ([`parser::parse_from`]).
    type Stream = parser::Scan;
    type Conn = ();

    fn new_conn(&self, _conn: &TcpTuple) {}

    fn parse(&self, scan: &mut parser::Scan, _dir: TcpDirection, data: &[u8]) -> Parsed<Message> {
        parser::parse_from(data, scan)
    }

    fn on_message(&self, _conn: &mut (), out: &mut EventSink, at: &MessageAt, msg: Message) {
        match event::message_event(self, &msg, at.ts, &at.tuple, &msg.data) {
            Some(ev) => out.publish(ev),
            None => at.counters.parse_error(),
        }
    }

    fn on_end(&self, _conn: &mut (), _out: &mut EventSink, _now: Ts, _counters: &AppCounters) {}
}

/// The UDP side: every datagram on its own.
struct SipUdp {
    proto: Arc<Sip>,
    counters: Arc<AppCounters>,
}

impl UdpAnalyzer for SipUdp {
    fn name(&self) -> &'static str {
        "sip"
    }

    fn parse_udp(&mut self, out: &mut EventSink, pkt: &UdpPacket) {
        parse_datagram(&self.proto, &self.counters, out, pkt);
    }
}

/// Publishes the messages of one datagram (`doParse`).
pub fn parse_datagram(cfg: &Sip, counters: &AppCounters, out: &mut EventSink, pkt: &UdpPacket) {
    let data = pkt.payload;
    let mut pos = 0;
    // Where the message being parsed began, leading CRLFs included (`rawData`).
    let mut start = 0;
    while pos < data.len() {
        match parser::parse(&data[pos..]) {
            Parsed::Skip(n) => pos += n.max(1),
            Parsed::Message { msg, consumed } => {
                match event::message_event(cfg, &msg, pkt.ts, &pkt.tuple, &data[start..]) {
                    Some(ev) => out.publish(ev),
                    None => {
                        counters.parse_error();
                        return;
                    }
                }
                pos += consumed.max(1);
                start = pos;
            }
            Parsed::Incomplete => return,
            Parsed::Error(why) => {
                tracing::debug!("sip: {why}");
                counters.parse_error();
                return;
            }
        }
    }
}
