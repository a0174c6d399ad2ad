//! DHCPv4 analyzer (Packetbeat's `protos/dhcpv4`): every DHCP datagram on the configured UDP
//! ports (default 67 and 68) is one event; there is no request/response pairing.
//!
//! - [`parser`]: pure decoder with the accept/reject behaviour of the DHCP library Packetbeat
//!   links.
//! - [`names`]: that library's name tables.
//! - [`event`]: the event as `parseDHCPv4` and `optionsToMap` build it.
//! - [`config`]: the section (no options beyond the common ones).
//! - this file: the protocol's declaration and its UDP side.

pub mod config;
pub mod event;
pub mod names;
pub mod parser;

#[cfg(test)]
mod tests;

use crate::protos::app::{AppCounters, Protocol, SectionError, Transports};
use crate::protos::{CommonOptions, UdpAnalyzer, UdpPacket};
use crate::publish::EventSink;
use config::Dhcpv4Config;
pub use event::{dhcp_event, flags_string, format_hw_addr, go_ip_string, go_string, OptionsError};
use std::sync::Arc;

/// The DHCPv4 protocol (no options of its own).
pub struct Dhcpv4;

impl Protocol for Dhcpv4 {
    const NAME: &'static str = "dhcpv4";
    const DEFAULT_PORTS: &'static [u16] = &[67, 68];
    const TRANSPORTS: Transports<Self> = Transports {
        udp: Some(|a| Box::new(Dhcpv4Udp::with_counters(a.counters.clone()))),
        ..Transports::NONE
    };
    type Config = Dhcpv4Config;

    fn configure(_common: &CommonOptions, _cfg: Dhcpv4Config) -> Result<Self, SectionError> {
        Ok(Dhcpv4)
    }
}

/// One worker's DHCPv4 analyzer: one event per datagram.
#[derive(Default)]
pub struct Dhcpv4Udp {
    counters: Arc<AppCounters>,
}

impl Dhcpv4Udp {
    pub fn with_counters(counters: Arc<AppCounters>) -> Dhcpv4Udp {
        Dhcpv4Udp { counters }
    }

    /// Datagrams that did not parse (Packetbeat's `dhcpv4.parse_failures`).
    pub fn parse_failures(&self) -> u64 {
        self.counters
            .parse_errors
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl UdpAnalyzer for Dhcpv4Udp {
    fn name(&self) -> &'static str {
        "dhcpv4"
    }

    fn parse_udp(&mut self, out: &mut EventSink, pkt: &UdpPacket) {
        match parser::parse(pkt.payload) {
            Ok(msg) => out.publish(dhcp_event(pkt.ts, &pkt.tuple, pkt.payload.len(), &msg)),
            Err(e) => {
                self.counters.parse_error();
                tracing::warn!("Dropping packet: failed parsing DHCP data: {e}");
            }
        }
    }
}
