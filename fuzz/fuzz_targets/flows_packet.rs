//! Arbitrary frames into the flow path as a packet worker drives it: link layers, the decoder,
//! the IP and transport layers of the flow id, the table (small, so evictions happen), ticks,
//! and the final reports. The first byte picks the link type and the settings; frames follow,
//! each after a one-byte length.
#![no_main]

use libfuzzer_sys::fuzz_target;
use packetbeat::common::Ts;
use packetbeat::decoder::{Decoder, LinkType, L4};
use packetbeat::flows::flowid::FlowId;
use packetbeat::flows::{self, Flows, IcmpTypeCode, Settings};
use packetbeat::publish::EventSink;

fuzz_target!(|data: &[u8]| {
    let Some((&opts, mut data)) = data.split_first() else {
        return;
    };
    let link = [
        LinkType::Ethernet,
        LinkType::LinuxSll,
        LinkType::Null,
        LinkType::Raw,
    ][usize::from(opts & 3)];
    let mut table = Flows::new(Settings {
        timeout_ns: 1_000_000_000,
        period_ns: (opts & 4 != 0).then_some(1_000_000_000),
        delta: opts & 8 != 0,
        max_flows: usize::from(opts >> 4) + 1,
    });
    let mut decoder = Decoder::new();
    let mut out = EventSink::new();
    let mut ts = Ts(1_700_000_000_000_000_000);
    while let Some((&len, rest)) = data.split_first() {
        let n = usize::from(len).min(rest.len());
        let (frame, next) = rest.split_at(n);
        data = next;
        ts = Ts(ts.0 + i64::from(len) * 10_000_000);
        let mut id = FlowId::new();
        let to_ip = flows::add_link_layers(&mut id, link, frame);
        let mut icmp = IcmpTypeCode::None;
        if let Ok(pkt) = decoder.decode(link, ts, frame) {
            if to_ip && flows::add_ip_layer(&mut id, &pkt, flows::ip_bytes(link, frame)) {
                match pkt.l4 {
                    L4::Tcp(h, _) => {
                        id.add_tcp(h.src_port, h.dst_port);
                        id.add_connection_id(u64::from(h.seq));
                    }
                    L4::Udp { src_port, dst_port, .. } => id.add_udp(src_port, dst_port),
                    L4::Icmp4 { icmp_type, code, .. } => {
                        icmp = IcmpTypeCode::V4(u16::from(icmp_type) << 8 | u16::from(code))
                    }
                    L4::Icmp6 { icmp_type, code, .. } => {
                        icmp = IcmpTypeCode::V6(u16::from(icmp_type) << 8 | u16::from(code))
                    }
                    L4::Other { .. } => {}
                }
            }
        }
        table.record(&mut out, &mut id, ts, frame.len() as u64, icmp);
        assert!(table.len() <= usize::from(opts >> 4) + 1);
        table.tick(&mut out, ts, 0);
        out.take();
    }
    table.flush(&mut out);
    assert!(table.is_empty());
});
