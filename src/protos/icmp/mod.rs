//! ICMPv4 and ICMPv6 analyzer (Packetbeat's `protos/icmp`).
//!
//! - [`message`]: pure classification (request / response / error / paired types), the
//!   identifier and sequence number of paired types, and the human-readable type/code text.
//! - [`event`]: the event exactly as `publishTransaction` builds it.
//! - this file: the module, request/response pairing by (version, addresses, id, seq) with
//!   expiry on packet time.
//!
//! What Packetbeat does, and so this analyzer does:
//! - a request of a paired type (echo, timestamp, info, address mask; ICMPv6 echo) waits for
//!   its reply; a second request with the same id/seq closes the first one with a note;
//! - a reply pairs with the request going the other way; a reply without a request is
//!   published alone with a note;
//! - every other type (errors, router and neighbour discovery, redirects, …) is a request
//!   without counterpart: published at once, status `Error` for the error types;
//! - a request unanswered after `transaction_timeout` (packet time) is published with a note;
//!   at the end of the capture pending requests are published the same way.

pub mod event;
pub mod layer;
pub mod message;

#[cfg(test)]
mod tests;

use crate::common::Ts;
use crate::protos::app::{Protocol, SectionError, TransactionTable, Transports};
use crate::protos::{CommonOptions, IcmpAnalyzer, IcmpPacket};
use crate::publish::EventSink;
pub use event::transaction_event;
use message::IcmpInfo;
use serde::de::IgnoredAny;
use std::net::IpAddr;
use std::time::Duration;

/// Notes Packetbeat adds to `error.message`.
pub const DUPLICATE_REQUEST_MSG: &str = "Another request with the same Id and Seq was received so this request was closed without receiving a response.";
pub const ORPHANED_REQUEST_MSG: &str = "Request was received without an associated response.";
pub const ORPHANED_RESPONSE_MSG: &str = "Response was received without an associated request.";

/// The ICMP protocol's settings. Packetbeat's `icmp` section takes `enabled`,
/// `transaction_timeout` and the event metadata options (`send_request` / `send_response` are
/// accepted but Packetbeat's ICMP events never carry request/response text).
pub struct IcmpSettings {
    timeout: Duration,
}

impl Protocol for IcmpSettings {
    const NAME: &'static str = "icmp";
    const TRANSPORTS: Transports<Self> = Transports {
        icmp: Some(|a| Box::new(Icmp::new(a.proto.timeout))),
        ..Transports::NONE
    };
    type Config = IgnoredAny;

    fn configure(common: &CommonOptions, _cfg: IgnoredAny) -> Result<Self, SectionError> {
        Ok(IcmpSettings {
            timeout: common.transaction_timeout,
        })
    }
}

/// `icmpTuple`: the request's direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IcmpTuple {
    pub version: u8,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub id: u16,
    pub seq: u16,
}

impl IcmpTuple {
    fn reverse(&self) -> IcmpTuple {
        IcmpTuple {
            src: self.dst,
            dst: self.src,
            ..*self
        }
    }
}

/// One message of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message {
    pub ts: Ts,
    pub icmp_type: u8,
    pub code: u8,
    pub length: usize,
}

/// `icmpTransaction`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    pub ts: Ts,
    pub tuple: IcmpTuple,
    pub notes: Vec<&'static str>,
    pub request: Option<Message>,
    pub response: Option<Message>,
}

impl Transaction {
    /// `HasError`.
    pub fn has_error(&self) -> bool {
        let v = self.tuple.version;
        match (&self.request, &self.response) {
            (None, _) => true,
            (Some(req), resp) => {
                message::is_error(v, req.icmp_type)
                    || resp.is_some_and(|r| message::is_error(v, r.icmp_type))
                    || (resp.is_none() && message::requires_counterpart(v, req.icmp_type))
            }
        }
    }
}

/// One worker's ICMP analyzer.
pub struct Icmp {
    pending: TransactionTable<IcmpTuple, Transaction>,
}

impl Icmp {
    pub fn new(timeout: Duration) -> Icmp {
        Icmp {
            pending: TransactionTable::new(timeout),
        }
    }

    /// Processes one decoded message; returns the transactions it completes (in order).
    pub fn handle(
        &mut self,
        ts: Ts,
        src: IpAddr,
        dst: IpAddr,
        info: &IcmpInfo,
    ) -> Vec<Transaction> {
        let tuple = IcmpTuple {
            version: info.version,
            src,
            dst,
            id: info.id,
            seq: info.seq,
        };
        let msg = Message {
            ts,
            icmp_type: info.icmp_type,
            code: info.code,
            length: info.length,
        };
        let mut done = Vec::new();
        if message::is_request(info.version, info.icmp_type) {
            if let Some(mut old) = self.pending.take(&tuple) {
                old.notes.push(DUPLICATE_REQUEST_MSG);
                done.push(old);
            }
            let t = Transaction {
                ts,
                tuple,
                notes: Vec::new(),
                request: Some(msg),
                response: None,
            };
            if message::requires_counterpart(info.version, info.icmp_type) {
                self.pending.insert(tuple, ts, t);
            } else {
                done.push(t);
            }
        } else {
            let rev = tuple.reverse();
            let mut t = self.pending.take(&rev).unwrap_or_else(|| Transaction {
                ts,
                tuple: rev,
                notes: vec![ORPHANED_RESPONSE_MSG],
                request: None,
                response: None,
            });
            t.response = Some(msg);
            done.push(t);
        }
        done
    }

    /// Requests older than the timeout at `now` (or all of them), oldest first, each with
    /// Packetbeat's expiry note.
    pub fn expire(&mut self, now: Option<Ts>) -> Vec<Transaction> {
        let mut out = match now {
            Some(now) => self.pending.expire(now),
            None => self.pending.drain(),
        };
        for t in &mut out {
            t.notes.push(ORPHANED_REQUEST_MSG);
        }
        out
    }
}

impl IcmpAnalyzer for Icmp {
    fn name(&self) -> &'static str {
        "icmp"
    }

    fn process(&mut self, out: &mut EventSink, pkt: &IcmpPacket) {
        self.tick(out, pkt.ts);
        let Some(info) = message::parse(pkt.version, pkt.icmp_type, pkt.code, pkt.body) else {
            return;
        };
        for t in self.handle(pkt.ts, pkt.src, pkt.dst, &info) {
            out.publish(transaction_event(&t));
        }
    }

    fn tick(&mut self, out: &mut EventSink, now: Ts) {
        if self.pending.is_empty() {
            return;
        }
        for t in self.expire(Some(now)) {
            out.publish(transaction_event(&t));
        }
    }

    fn flush(&mut self, out: &mut EventSink, _now: Ts) {
        for t in self.expire(None) {
            out.publish(transaction_event(&t));
        }
    }
}
