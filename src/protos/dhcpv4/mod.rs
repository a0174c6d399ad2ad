//! DHCPv4 analyzer (Packetbeat's `protos/dhcpv4`): every DHCP datagram on the configured UDP
//! ports (default 67 and 68) is one event; there is no request/response pairing.
//!
//! - [`parser`]: pure decoder with the accept/reject behaviour of the DHCP library Packetbeat
//!   links.
//! - [`names`]: that library's name tables.
//! - [`event`]: the event as `parseDHCPv4` and `optionsToMap` build it.
//! - this file: the module.

pub mod event;
pub mod names;
pub mod parser;

#[cfg(test)]
mod tests;

use crate::config::types::{ConfigError, ProtocolSection};
use crate::protos::registry::ProtocolCommonConfig;
use crate::protos::{ProtocolModule, UdpAnalyzer, UdpPacket};
use crate::publish::EventSink;
pub use event::{dhcp_event, flags_string, format_hw_addr, go_ip_string, go_string, OptionsError};
use std::sync::Arc;

/// Packetbeat's default `ports` for dhcpv4.
pub const DEFAULT_PORTS: &[u16] = &[67, 68];

pub struct Dhcpv4Module {
    ports: Vec<u16>,
}

pub fn build(
    common: &ProtocolCommonConfig,
    _section: &ProtocolSection,
    _source: &str,
) -> Result<Arc<dyn ProtocolModule>, ConfigError> {
    let ports = if common.ports.is_empty() {
        DEFAULT_PORTS.to_vec()
    } else {
        common.ports.clone()
    };
    Ok(Arc::new(Dhcpv4Module { ports }))
}

impl ProtocolModule for Dhcpv4Module {
    fn name(&self) -> &'static str {
        "dhcpv4"
    }
    fn udp_ports(&self) -> &[u16] {
        &self.ports
    }
    fn new_udp(&self) -> Option<Box<dyn UdpAnalyzer>> {
        Some(Box::new(Dhcpv4Udp::default()))
    }
}

/// Counters Packetbeat keeps (`dhcpv4.total_packets`, `dhcpv4.parse_failures`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Dhcpv4Stats {
    pub total_packets: u64,
    pub parse_failures: u64,
}

#[derive(Default)]
pub struct Dhcpv4Udp {
    pub stats: Dhcpv4Stats,
}

impl UdpAnalyzer for Dhcpv4Udp {
    fn name(&self) -> &'static str {
        "dhcpv4"
    }

    fn parse_udp(&mut self, out: &mut EventSink, pkt: &UdpPacket) {
        self.stats.total_packets += 1;
        match parser::parse(pkt.payload) {
            Ok(msg) => out.publish(dhcp_event(pkt.ts, &pkt.tuple, pkt.payload.len(), &msg)),
            Err(e) => {
                self.stats.parse_failures += 1;
                tracing::warn!("Dropping packet: failed parsing DHCP data: {e}");
            }
        }
    }
}
