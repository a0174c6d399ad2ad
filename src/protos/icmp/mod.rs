//! ICMPv4 and ICMPv6 analyzer (Packetbeat's `protos/icmp`).
//!
//! - [`parser`]: pure classification (request / response / error / paired types), the
//!   identifier and sequence number of paired types, and the human-readable type/code text.
//! - [`transaction`]: request/response pairing by (version, addresses, id, seq) with expiry on
//!   packet time.
//! - [`event`]: the event exactly as `publishTransaction` builds it.
//! - [`config`]: the section (no options beyond the common ones).
//! - [`layer`]: the worker's ICMP layer, which hands every ICMP message to the analyzer.
//! - this file: the protocol's declaration and its ICMP-layer side.
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

pub mod config;
pub mod event;
pub mod layer;
pub mod parser;
pub mod transaction;

#[cfg(test)]
mod tests;

use crate::common::Ts;
use crate::protos::app::{Protocol, SectionError, Transports};
use crate::protos::{CommonOptions, IcmpAnalyzer, IcmpPacket};
use crate::publish::EventSink;
use config::IcmpConfig;
pub use event::transaction_event;
use std::time::Duration;
pub use transaction::*;

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
    type Config = IcmpConfig;

    fn configure(common: &CommonOptions, _cfg: IcmpConfig) -> Result<Self, SectionError> {
        Ok(IcmpSettings {
            timeout: common.transaction_timeout,
        })
    }
}

impl IcmpAnalyzer for Icmp {
    fn name(&self) -> &'static str {
        "icmp"
    }

    fn process(&mut self, out: &mut EventSink, pkt: &IcmpPacket) {
        self.tick(out, pkt.ts);
        let Some(info) = parser::parse(pkt.version, pkt.icmp_type, pkt.code, pkt.body) else {
            return;
        };
        for t in self.handle(pkt.ts, pkt.src, pkt.dst, &info) {
            out.publish(transaction_event(&t));
        }
    }

    fn tick(&mut self, out: &mut EventSink, now: Ts) {
        if self.is_idle() {
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
