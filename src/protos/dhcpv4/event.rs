//! The published event, as `parseDHCPv4` and `optionsToMap` in `dhcpv4.go` build it, written
//! straight in key order with [`ObjectWriter`].
//!
//! `optionsToMap` fills a map, so an option given twice leaves the last one's value, and one
//! conversion failure drops the whole `dhcpv4.option` object: [`OptionFields`] makes the same
//! choices before anything is written.

use super::names;
use super::parser::{self, DhcpOption, Dhcpv4Message};
use crate::common::{IpPortTuple, Transport, Ts};
use crate::publish::event::{write_ip, Endpoint, Event};
use crate::publish::json::{write_str, ObjectWriter};
use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr};

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

/// [`go_ip_string`] as a JSON string.
fn write_go_ip(out: &mut Vec<u8>, b: &[u8]) {
    if let Ok(v4) = <[u8; 4]>::try_from(b) {
        out.push(b'"');
        write_ip(out, &IpAddr::from(v4));
        out.push(b'"');
    } else {
        write_str(out, &go_ip_string(b));
    }
}

/// Go's `string(bytes)` as encoding/json writes it: each invalid UTF-8 byte becomes U+FFFD.
pub fn go_string(b: &[u8]) -> Cow<'_, str> {
    if let Ok(s) = std::str::from_utf8(b) {
        return Cow::Borrowed(s);
    }
    let mut s = String::with_capacity(b.len() + 2);
    for chunk in b.utf8_chunks() {
        s.push_str(chunk.valid());
        for _ in chunk.invalid() {
            s.push('\u{FFFD}');
        }
    }
    Cow::Owned(s)
}

/// `strings.TrimRight(string(field), "\x00")`.
fn trim_nuls(b: &[u8]) -> Cow<'_, str> {
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
pub fn flags_string(flags: u16) -> &'static str {
    // The library tests 0xfe (not 0x7fff) for "reserved bits".
    match (flags & 0x8000 != 0, flags & 0xfe != 0) {
        (true, false) => "broadcast",
        (true, true) => "broadcast (reserved bits not zeroed)",
        (false, false) => "unicast",
        (false, true) => "unicast (reserved bits not zeroed)",
    }
}

fn be32(d: &[u8]) -> u32 {
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// Why Packetbeat's option conversion failed (the option's code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionsError(pub u8);

/// The members of `dhcpv4.option`, in key order (the index into [`OPTION_KEYS`]).
#[derive(Debug, Clone, Copy)]
enum OptionKey {
    BootFileName,
    BroadcastAddress,
    ClassIdentifier,
    DnsServers,
    DomainName,
    Hostname,
    IpAddressLeaseTimeSec,
    MaxDhcpMessageSize,
    Message,
    MessageType,
    NtpServers,
    ParameterRequestList,
    RebindingTimeSec,
    RenewalTimeSec,
    RequestedIpAddress,
    Router,
    ServerIdentifier,
    SubnetMask,
    TimeServers,
    UtcTimeOffsetSec,
    VendorIdentifyingOptions,
}

/// The JSON keys of [`OptionKey`], in the same order.
const OPTION_KEYS: [&str; 21] = [
    "boot_file_name",
    "broadcast_address",
    "class_identifier",
    "dns_servers",
    "domain_name",
    "hostname",
    "ip_address_lease_time_sec",
    "max_dhcp_message_size",
    "message",
    "message_type",
    "ntp_servers",
    "parameter_request_list",
    "rebinding_time_sec",
    "renewal_time_sec",
    "requested_ip_address",
    "router",
    "server_identifier",
    "subnet_mask",
    "time_servers",
    "utc_time_offset_sec",
    "vendor_identifying_options",
];

/// Which member an option sets in `optionsToMap`, if any; `Err` when the conversion fails.
fn option_key(opt: &DhcpOption) -> Result<Option<OptionKey>, OptionsError> {
    use OptionKey::*;
    let key = match opt {
        DhcpOption::MessageType(_) => MessageType,
        // An empty list is a nil slice in Packetbeat, which the publisher drops (keep_null is
        // off by default): it does not replace an earlier one either.
        DhcpOption::ParameterRequestList(codes) if codes.is_empty() => return Ok(None),
        DhcpOption::ParameterRequestList(_) => ParameterRequestList,
        DhcpOption::RequestedIpAddress(_) => RequestedIpAddress,
        DhcpOption::ServerIdentifier(_) => ServerIdentifier,
        DhcpOption::BroadcastAddress(_) => BroadcastAddress,
        DhcpOption::MaximumMessageSize(_) => MaxDhcpMessageSize,
        DhcpOption::ClassIdentifier(_) => ClassIdentifier,
        DhcpOption::DomainName(_) => DomainName,
        DhcpOption::DomainNameServer(_) => DnsServers,
        DhcpOption::Vivc(ids) if ids.is_empty() => return Ok(None),
        DhcpOption::Vivc(_) => VendorIdentifyingOptions,
        DhcpOption::Generic { code, data } => match *code {
            1 if data.len() >= 4 => SubnetMask,
            2 if data.len() >= 4 => UtcTimeOffsetSec,
            3 if data.len() == 4 => Router,
            3 => return Err(OptionsError(3)),
            // `ParseIPAddressesOption`: a non-empty multiple of four bytes.
            4 | 42 if data.is_empty() || !data.len().is_multiple_of(4) => {
                return Err(OptionsError(*code))
            }
            4 => TimeServers,
            42 => NtpServers,
            12 => Hostname,
            51 if data.len() >= 4 => IpAddressLeaseTimeSec,
            56 => Message,
            58 if data.len() >= 4 => RenewalTimeSec,
            59 if data.len() >= 4 => RebindingTimeSec,
            67 => BootFileName,
            _ => return Ok(None),
        },
    };
    Ok(Some(key))
}

/// The options `optionsToMap(v4.StrippedOptions())` turns into `dhcpv4.option`: for each
/// member the last option that sets it.
struct OptionFields<'a>([Option<&'a DhcpOption>; OPTION_KEYS.len()]);

impl<'a> OptionFields<'a> {
    fn collect(options: &'a [DhcpOption]) -> Result<OptionFields<'a>, OptionsError> {
        let mut fields = OptionFields([None; OPTION_KEYS.len()]);
        for opt in options {
            if opt.code() == parser::OPTION_END {
                break;
            }
            if let Some(key) = option_key(opt)? {
                fields.0[key as usize] = Some(opt);
            }
        }
        Ok(fields)
    }

    fn is_empty(&self) -> bool {
        self.0.iter().all(Option::is_none)
    }

    fn write_json(&self, out: &mut Vec<u8>) {
        let mut w = ObjectWriter::new(out);
        for (key, opt) in OPTION_KEYS.iter().zip(self.0) {
            if let Some(opt) = opt {
                write_option_value(w.key(*key), opt);
            }
        }
        w.end();
    }
}

/// The value `optionsToMap` gives an option [`option_key`] maps to a member.
fn write_option_value(out: &mut Vec<u8>, opt: &DhcpOption) {
    let ips = |out: &mut Vec<u8>, ips: &mut dyn Iterator<Item = &[u8]>| {
        out.push(b'[');
        for (i, ip) in ips.enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_go_ip(out, ip);
        }
        out.push(b']');
    };
    let number = |out: &mut Vec<u8>, n: i64| {
        out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    };
    match opt {
        DhcpOption::MessageType(t) => match names::message_type_name(*t) {
            Some(n) => write_str(out, &n.to_lowercase()),
            None => write_str(out, &format!("unknown ({t})")),
        },
        DhcpOption::ParameterRequestList(codes) => {
            out.push(b'[');
            for (i, c) in codes.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                match names::option_name(*c) {
                    Some(n) => write_str(out, n),
                    None => write_str(out, &format!("Unknown ({c})")),
                }
            }
            out.push(b']');
        }
        DhcpOption::RequestedIpAddress(ip)
        | DhcpOption::ServerIdentifier(ip)
        | DhcpOption::BroadcastAddress(ip) => write_go_ip(out, ip),
        DhcpOption::MaximumMessageSize(n) => number(out, *n as i64),
        DhcpOption::ClassIdentifier(s) | DhcpOption::DomainName(s) => write_str(out, &go_string(s)),
        DhcpOption::DomainNameServer(list) => ips(out, &mut list.iter().map(|ip| &ip[..])),
        DhcpOption::Vivc(ids) => {
            out.push(b'[');
            for (i, (id, data)) in ids.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                let mut w = ObjectWriter::new(out);
                w.str("data", &hex::encode(data));
                w.u64("id", *id as u64);
                w.end();
            }
            out.push(b']');
        }
        DhcpOption::Generic { code, data } => match *code {
            1 | 3 => write_go_ip(out, data),
            2 => number(out, be32(data) as i32 as i64),
            4 | 42 => ips(out, &mut data.chunks_exact(4)),
            51 | 58 | 59 => number(out, be32(data) as i64),
            _ => write_str(out, &go_string(data)),
        },
    }
}

/// `parseDHCPv4`: the event for one DHCP datagram. The fields are put in key order (see
/// [`crate::publish::Fields`]): `dhcpv4`, `status`, `type`.
pub fn dhcp_event(ts: Ts, tuple: &IpPortTuple, payload_len: usize, msg: &Dhcpv4Message) -> Event {
    let mut ev = Event::new(ts);
    set_common_fields(ev.pb(), ts, tuple, payload_len, msg);
    let options = OptionFields::collect(&msg.options);
    if let Err(OptionsError(code)) = options {
        tracing::warn!("Failed converting DHCP options to map (option {code})")
    }
    let options = options.ok().filter(|o| !o.is_empty());
    ev.fields
        .put_with("dhcpv4", |o| write_dhcpv4(o, msg, options.as_ref()));
    ev.fields.put_str("status", "OK");
    ev.fields.put_str("type", "dhcpv4");
    ev
}

/// The endpoints (client and server by the message's op code), times, protocol and the
/// message's addresses in `related.ip`.
fn set_common_fields(
    pb: &mut crate::publish::PbFields,
    ts: Ts,
    tuple: &IpPortTuple,
    payload_len: usize,
    msg: &Dhcpv4Message,
) {
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

/// The `dhcpv4` object: the header fields, and the options when any maps to a member.
fn write_dhcpv4(out: &mut Vec<u8>, msg: &Dhcpv4Message, options: Option<&OptionFields>) {
    let mut w = ObjectWriter::new(out);
    let ip = |w: &mut ObjectWriter, key: &'static str, ip: [u8; 4]| {
        if ip != [0; 4] {
            write_go_ip(w.key(key), &ip);
        }
    };
    ip(&mut w, "assigned_ip", msg.yiaddr);
    let file = trim_nuls(&msg.file);
    if !file.is_empty() {
        w.str("boot_file_name", &file);
    }
    ip(&mut w, "client_ip", msg.ciaddr);
    w.str("client_mac", &format_hw_addr(&msg.chaddr, msg.hlen));
    w.str("flags", flags_string(msg.flags));
    w.str("hardware_type", names::hw_type_name(msg.htype));
    w.u64("hops", msg.hops as u64);
    w.str("op_code", &names::opcode_name(msg.op).to_lowercase());
    if let Some(o) = options {
        o.write_json(w.key("option"));
    }
    ip(&mut w, "relay_ip", msg.giaddr);
    w.u64("seconds", msg.secs as u64);
    let server_name = trim_nuls(&msg.sname);
    if !server_name.is_empty() {
        w.str("server_name", &server_name);
    }
    w.str("transaction_id", &format!("0x{:08x}", msg.xid));
    w.end();
}
