//! DHCPv4 analyzer (Packetbeat's `protos/dhcpv4`): every DHCP datagram on the configured UDP
//! ports (default 67 and 68) is one event; there is no request/response pairing.
//!
//! - [`parser`]: pure decoder with the accept/reject behaviour of the DHCP library Packetbeat
//!   links.
//! - [`names`]: that library's name tables.
//! - this file: the module and the event as `parseDHCPv4` and `optionsToMap` build it.

pub mod names;
pub mod parser;

#[cfg(test)]
mod tests;

use crate::common::{IpPortTuple, Transport, Ts};
use crate::protos::app::{AppCounters, Protocol, SectionError, Transports};
use crate::protos::{CommonOptions, UdpAnalyzer, UdpPacket};
use crate::publish::event::{Endpoint, Event, Map, MapExt};
use crate::publish::EventSink;
use parser::{DhcpOption, Dhcpv4Message};
use serde_json::{json, Value};
use serde::de::IgnoredAny;
use std::net::Ipv4Addr;
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
    type Config = IgnoredAny;

    fn configure(_common: &CommonOptions, _cfg: IgnoredAny) -> Result<Self, SectionError> {
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

/// Go's `net.IP.String()` for a byte slice of any length.
pub fn go_ip_string(b: &[u8]) -> String {
    match b.len() {
        0 => "<nil>".to_string(),
        4 => Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string(),
        16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(b);
            let v6 = std::net::Ipv6Addr::from(a);
            match v6.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => v6.to_string(),
            }
        }
        _ => {
            let mut s = String::from("?");
            for x in b {
                s.push_str(&format!("{x:02x}"));
            }
            s
        }
    }
}

/// Go's `string(bytes)` as encoding/json writes it: each invalid UTF-8 byte becomes U+FFFD.
pub fn go_string(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len());
    for chunk in b.utf8_chunks() {
        s.push_str(chunk.valid());
        for _ in chunk.invalid() {
            s.push('\u{FFFD}');
        }
    }
    s
}

/// `strings.TrimRight(string(field), "\x00")`.
fn trim_nuls(b: &[u8]) -> String {
    let end = b.iter().rposition(|&c| c != 0).map_or(0, |i| i + 1);
    go_string(&b[..end])
}

/// `formatHardwareAddr(chaddr[:hlen])`: upper-case hex pairs joined by `-` (ECS form).
/// Packetbeat panics on a zero or >16 length; here the address is empty or cut at 16.
pub fn format_hw_addr(chaddr: &[u8; 16], hlen: u8) -> String {
    let n = (hlen as usize).min(16);
    chaddr[..n]
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join("-")
}

/// `FlagsToString`, lower-cased.
pub fn flags_string(flags: u16) -> String {
    let mut s = String::from(if flags & 0x8000 != 0 {
        "broadcast"
    } else {
        "unicast"
    });
    // The library tests 0xfe (not 0x7fff) for "reserved bits".
    if flags & 0xfe != 0 {
        s.push_str(" (reserved bits not zeroed)");
    }
    s
}

fn be32(d: &[u8]) -> u32 {
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// `ParseIPAddressesOption` on a generic option's data.
fn ip_list(d: &[u8]) -> Option<Vec<String>> {
    if d.is_empty() || !d.len().is_multiple_of(4) {
        return None;
    }
    Some(d.chunks_exact(4).map(go_ip_string).collect())
}

/// Why Packetbeat's option conversion failed (the option's code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionsError(pub u8);

/// `optionsToMap(v4.StrippedOptions())`: `Ok(None)` when no option maps to a field, `Err` when
/// Packetbeat's conversion fails (it then publishes the event without `dhcpv4.option`).
pub fn options_to_map(options: &[DhcpOption]) -> Result<Option<Map>, OptionsError> {
    let mut m = Map::new();
    for opt in options {
        if opt.code() == parser::OPTION_END {
            break;
        }
        match opt {
            DhcpOption::MessageType(t) => {
                let s = match names::message_type_name(*t) {
                    Some(n) => n.to_lowercase(),
                    None => format!("unknown ({t})"),
                };
                m.put("message_type", Value::from(s));
            }
            // An empty list is a nil slice in Packetbeat, which the publisher drops
            // (keep_null is off by default).
            DhcpOption::ParameterRequestList(codes) if codes.is_empty() => {}
            DhcpOption::ParameterRequestList(codes) => {
                let v: Vec<String> = codes
                    .iter()
                    .map(|c| match names::option_name(*c) {
                        Some(n) => n.to_string(),
                        None => format!("Unknown ({c})"),
                    })
                    .collect();
                m.put("parameter_request_list", Value::from(v));
            }
            DhcpOption::RequestedIpAddress(ip) => {
                m.put("requested_ip_address", Value::from(go_ip_string(ip)))
            }
            DhcpOption::ServerIdentifier(ip) => {
                m.put("server_identifier", Value::from(go_ip_string(ip)))
            }
            DhcpOption::BroadcastAddress(ip) => {
                m.put("broadcast_address", Value::from(go_ip_string(ip)))
            }
            DhcpOption::MaximumMessageSize(n) => m.put("max_dhcp_message_size", Value::from(*n)),
            DhcpOption::ClassIdentifier(s) => m.put("class_identifier", Value::from(go_string(s))),
            DhcpOption::DomainName(s) => m.put("domain_name", Value::from(go_string(s))),
            DhcpOption::DomainNameServer(ips) => {
                let v: Vec<String> = ips.iter().map(|ip| go_ip_string(ip)).collect();
                m.put("dns_servers", Value::from(v));
            }
            DhcpOption::Vivc(ids) if ids.is_empty() => {}
            DhcpOption::Vivc(ids) => {
                let v: Vec<Value> = ids
                    .iter()
                    .map(|(id, data)| {
                        let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
                        json!({ "id": id, "data": hex })
                    })
                    .collect();
                m.put("vendor_identifying_options", Value::from(v));
            }
            DhcpOption::Generic { code, data } => match *code {
                1 if data.len() >= 4 => m.put("subnet_mask", Value::from(go_ip_string(data))),
                2 if data.len() >= 4 => {
                    m.put("utc_time_offset_sec", Value::from(be32(data) as i32))
                }
                3 => {
                    if data.len() != 4 {
                        return Err(OptionsError(3));
                    }
                    m.put("router", Value::from(go_ip_string(data)));
                }
                4 => m.put(
                    "time_servers",
                    Value::from(ip_list(data).ok_or(OptionsError(4))?),
                ),
                42 => m.put(
                    "ntp_servers",
                    Value::from(ip_list(data).ok_or(OptionsError(42))?),
                ),
                12 => m.put("hostname", Value::from(go_string(data))),
                51 if data.len() >= 4 => {
                    m.put("ip_address_lease_time_sec", Value::from(be32(data)))
                }
                56 => m.put("message", Value::from(go_string(data))),
                58 if data.len() >= 4 => m.put("renewal_time_sec", Value::from(be32(data))),
                59 if data.len() >= 4 => m.put("rebinding_time_sec", Value::from(be32(data))),
                67 => m.put("boot_file_name", Value::from(go_string(data))),
                _ => {}
            },
        }
    }
    Ok((!m.is_empty()).then_some(m))
}

/// `parseDHCPv4`: the event for one DHCP datagram.
pub fn dhcp_event(ts: Ts, tuple: &IpPortTuple, payload_len: usize, msg: &Dhcpv4Message) -> Event {
    let mut ev = Event::new(ts);
    {
        let pb = ev.pb();
        let mut src = Endpoint::new(tuple.src_ip, tuple.src_port);
        src.bytes = payload_len as u64;
        let dst = Endpoint::new(tuple.dst_ip, tuple.dst_port);
        pb.set_source(src.clone());
        pb.set_destination(dst.clone());
        if msg.op == 2 {
            pb.client = Some(dst);
            pb.server = Some(src);
        } else {
            pb.client = Some(src);
            pb.server = Some(dst);
        }
        pb.event.start = Some(ts);
        pb.event.dataset = Some("dhcpv4");
        pb.network.transport = Some(Transport::Udp);
        pb.network.protocol = "dhcpv4";
        for ip in [msg.ciaddr, msg.yiaddr, msg.giaddr] {
            if ip != [0; 4] {
                pb.add_ip(&go_ip_string(&ip));
            }
        }
    }
    ev.put("type", "dhcpv4");
    ev.put("status", "OK");
    let mut d = Map::new();
    d.put(
        "op_code",
        Value::from(names::opcode_name(msg.op).to_lowercase()),
    );
    d.put("hardware_type", Value::from(names::hw_type_name(msg.htype)));
    d.put("hops", Value::from(msg.hops));
    d.put("transaction_id", Value::from(format!("0x{:08x}", msg.xid)));
    d.put("seconds", Value::from(msg.secs));
    d.put("flags", Value::from(flags_string(msg.flags)));
    d.put(
        "client_mac",
        Value::from(format_hw_addr(&msg.chaddr, msg.hlen)),
    );
    for (key, ip) in [
        ("client_ip", msg.ciaddr),
        ("assigned_ip", msg.yiaddr),
        ("relay_ip", msg.giaddr),
    ] {
        if ip != [0; 4] {
            d.put(key, Value::from(go_ip_string(&ip)));
        }
    }
    let server_name = trim_nuls(&msg.sname);
    if !server_name.is_empty() {
        d.put("server_name", Value::from(server_name));
    }
    let file = trim_nuls(&msg.file);
    if !file.is_empty() {
        d.put("boot_file_name", Value::from(file));
    }
    match options_to_map(&msg.options) {
        Ok(Some(opts)) => d.put("option", Value::Object(opts)),
        Ok(None) => {}
        Err(OptionsError(code)) => {
            tracing::warn!("Failed converting DHCP options to map (option {code})")
        }
    }
    ev.fields.put_value("dhcpv4", &Value::Object(d));
    ev
}
