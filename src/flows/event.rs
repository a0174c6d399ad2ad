//! A flow report as Packetbeat writes it (`createEvent` in `flows/worker.go`).

use super::flowid::FlowKey;
use super::{DirStats, Flow};
use crate::common::Ts;
use crate::publish::community_id::community_id;
use crate::publish::event::write_ip;
use crate::publish::json::write_array;
use crate::publish::{Event, Map};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// ECS MAC address format: upper-case hex pairs joined by dashes (`formatHardwareAddr`), as a
/// JSON string.
fn write_mac(o: &mut Vec<u8>, m: &[u8; 6]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    o.push(b'"');
    for (i, b) in m.iter().enumerate() {
        if i > 0 {
            o.push(b'-');
        }
        o.push(HEX[(b >> 4) as usize]);
        o.push(HEX[(b & 0xf) as usize]);
    }
    o.push(b'"');
}

/// Go's `net.IP.String()` of a 16-byte address: IPv4-mapped ones print as IPv4.
fn v6(b: [u8; 16]) -> IpAddr {
    let a = Ipv6Addr::from(b);
    match a.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(a),
    }
}

/// `source.ip` / `destination.ip`: one address, or a list when tunnels stack several (at most
/// the four IP layers of a flow id).
#[derive(Default)]
struct Ips {
    list: [Option<IpAddr>; 4],
    n: usize,
}

impl Ips {
    fn push(&mut self, ip: IpAddr) {
        if let Some(slot) = self.list.get_mut(self.n) {
            *slot = Some(ip);
            self.n += 1;
        }
    }

    fn put(&self, ev: &mut Event, key: &'static str) {
        let ips = &self.list[..self.n];
        let write = |o: &mut Vec<u8>, ip: &Option<IpAddr>| {
            if let Some(ip) = ip {
                o.push(b'"');
                write_ip(o, ip);
                o.push(b'"');
            }
        };
        match ips {
            [] => {}
            [one] => ev.fields.put_with(key, |o| write(o, one)),
            many => ev.fields.put_with(key, |o| write_array(o, many, write)),
        }
    }
}

/// The event of one report of `f` at packet time `ts`.
pub fn flow_event(k: &FlowKey, f: &Flow, ts: Ts, final_: bool) -> Event {
    let mut ev = Event::bare(ts, Map::new());
    let dir = f.dir;

    // Addresses in the order of the flow's first packet; the first IP layer found (outer
    // first, IPv4 before IPv6) is the one the community id and network.type describe.
    let (mut src_ips, mut dst_ips) = (Ips::default(), Ips::default());
    let mut first: Option<(IpAddr, IpAddr, &'static str)> = None;
    let mut add = |s: IpAddr, d: IpAddr, ty: &'static str| {
        src_ips.push(s);
        dst_ips.push(d);
        if first.is_none() {
            first = Some((s, d, ty));
        }
    };
    if let Some((s, d)) = k.outer_ipv4(dir) {
        add(Ipv4Addr::from(s).into(), Ipv4Addr::from(d).into(), "ipv4");
    }
    if let Some((s, d)) = k.ipv4(dir) {
        add(Ipv4Addr::from(s).into(), Ipv4Addr::from(d).into(), "ipv4");
    }
    if let Some((s, d)) = k.outer_ipv6(dir) {
        add(v6(s), v6(d), "ipv6");
    }
    if let Some((s, d)) = k.ipv6(dir) {
        add(v6(s), v6(d), "ipv6");
    }

    let mut ports: Option<(u16, u16)> = None;
    let mut transport: Option<&'static str> = None;
    let mut proto = 0u8;
    if let Some(p) = k.udp(dir) {
        ports = Some(p);
        transport = Some("udp");
        proto = 17;
    }
    if let Some(p) = k.tcp(dir) {
        ports = Some(p);
        transport = Some("tcp");
        proto = 6;
    }
    // ICMP: the type and code last seen from the source, when not zero.
    let mut icmp = (0u8, 0u8);
    if let Some(s) = &f.stats[0] {
        if let Some(tc) = s.icmp4.filter(|&tc| tc > 0) {
            transport = Some("icmp");
            proto = 1;
            icmp = ((tc >> 8) as u8, tc as u8);
        }
        if let Some(tc) = s.icmp6.filter(|&tc| tc > 0) {
            transport = Some("ipv6-icmp");
            proto = 58;
            icmp = ((tc >> 8) as u8, tc as u8);
        }
    }

    // Put in key order, so the codec writes them without sorting.
    let eth = k.eth(dir);
    let dst_stats = f.stats[1].as_ref();
    if let Some(st) = dst_stats {
        ev.fields.put_u64("destination.bytes", st.bytes);
    }
    dst_ips.put(&mut ev, "destination.ip");
    if let Some((_, d)) = eth {
        ev.fields.put_with("destination.mac", |o| write_mac(o, &d));
    }
    if let Some(st) = dst_stats {
        ev.fields.put_u64("destination.packets", st.packets);
    }
    if let Some((_, d)) = ports {
        ev.fields.put_u64("destination.port", d as u64);
    }

    ev.fields.put_str("event.action", "network_flow");
    ev.fields.put_strs("event.category", ["network"]);
    ev.fields.put_str("event.dataset", "flow");
    ev.fields.put_i64("event.duration", f.last.since(f.created));
    ev.fields.put_with("event.end", |o| write_time(o, f.last));
    ev.fields.put_str("event.kind", "event");
    ev.fields
        .put_with("event.start", |o| write_time(o, f.created));
    if final_ {
        ev.fields.put_strs("event.type", ["connection", "end"]);
    } else {
        ev.fields.put_strs("event.type", ["connection"]);
    }

    ev.fields.put_bool("flow.final", final_);
    ev.fields.put_str("flow.id", &k.serialize());
    match (k.outer_vlan(), k.vlan()) {
        (Some(o), Some(i)) => ev.fields.put_with("flow.vlan", |b| {
            b.extend_from_slice(format!("[{o},{i}]").as_bytes())
        }),
        (None, Some(v)) | (Some(v), None) => ev.fields.put_u64("flow.vlan", v as u64),
        (None, None) => {}
    }

    let total = |g: fn(&DirStats) -> u64| f.stats.iter().flatten().map(g).sum::<u64>();
    ev.fields.put_u64("network.bytes", total(|s| s.bytes));
    if let (Some((s, d, _)), true) = (first, proto > 0) {
        let (sp, dp) = match proto {
            1 | 58 => (icmp.0 as u16, icmp.1 as u16),
            _ => ports.unwrap_or((0, 0)),
        };
        ev.fields
            .put_str("network.community_id", &community_id(s, sp, d, dp, proto));
    }
    ev.fields.put_u64("network.packets", total(|s| s.packets));
    if let Some(t) = transport {
        ev.fields.put_str("network.transport", t);
    }
    if let Some((_, _, ty)) = first {
        ev.fields.put_str("network.type", ty);
    }

    let src_stats = f.stats[0].as_ref();
    if let Some(st) = src_stats {
        ev.fields.put_u64("source.bytes", st.bytes);
    }
    src_ips.put(&mut ev, "source.ip");
    if let Some((s, _)) = eth {
        ev.fields.put_with("source.mac", |o| write_mac(o, &s));
    }
    if let Some(st) = src_stats {
        ev.fields.put_u64("source.packets", st.packets);
    }
    if let Some((s, _)) = ports {
        ev.fields.put_u64("source.port", s as u64);
    }

    ev.fields.put_str("type", "flow");
    ev
}

/// `common.Time` in JSON: RFC 3339, UTC, milliseconds.
fn write_time(o: &mut Vec<u8>, t: Ts) {
    o.push(b'"');
    t.write_rfc3339(o);
    o.push(b'"');
}
