//! Segment sequences into the TCP layer as a packet worker drives it: handshakes or none,
//! retransmitted and overlapping segments with conflicting data, out-of-order and far-ahead
//! segments, FIN and RST in either direction, sequence wrap-around, many connections in a small
//! table (so evictions happen), and ticks that expire idle ones. The HTTP and Redis analyzers
//! sit on top, so whatever the reassembly hands on is parsed as well.
//!
//! Input: one settings byte (table size, tick spacing), then segments of
//! `[flags, conn+dir, seq offset (2 bytes, signed, relative to the direction's next byte),
//! length, payload...]`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use packetbeat::common::{IpPortTuple, Ts};
use packetbeat::config::types::ProtocolSection;
use packetbeat::decoder::TcpHeader;
use packetbeat::protos::build_modules;
use packetbeat::protos::tcp::Tcp;
use packetbeat::publish::EventSink;

fuzz_target!(|data: &[u8]| {
    let Some((&opts, mut data)) = data.split_first() else {
        return;
    };
    let section = |kind: &str, ports: &str| ProtocolSection {
        kind: kind.into(),
        options: serde_yaml::from_str(&format!("ports: [{ports}]")).unwrap(),
        key: "fuzz".into(),
    };
    let modules = build_modules(&[section("http", "80"), section("redis", "6379")], "fuzz").unwrap();
    let mut tcp = Tcp::new(&modules);
    let max = usize::from(opts & 7) + 1;
    tcp.set_max_connections(max);
    let mut out = EventSink::new();
    let mut ts = Ts(1_700_000_000_000_000_000);
    // The next sequence number per connection and direction, as the sender would use it.
    let mut next = [[0u32; 2]; 16];
    for (i, n) in next.iter_mut().enumerate() {
        n[0] = (i as u32).wrapping_mul(0x9E37_79B9);
        n[1] = n[0] ^ 0xFFFF_0000;
    }
    let mut i = 0u32;
    while data.len() >= 5 {
        let (head, rest) = data.split_at(5);
        let flags = head[0];
        let conn = usize::from(head[1] & 0x0F);
        let reverse = head[1] & 0x10 != 0;
        let offset = i16::from_be_bytes([head[2], head[3]]);
        let len = usize::from(head[4]).min(rest.len());
        let (payload, rest) = rest.split_at(len);
        data = rest;
        let client = IpPortTuple::new(
            format!("10.0.0.{}", conn + 1).parse().unwrap(),
            40000 + conn as u16,
            "10.0.1.1".parse().unwrap(),
            if conn & 1 == 0 { 80 } else { 6379 },
        );
        let tuple = if reverse { client.reversed() } else { client };
        let n = &mut next[conn][usize::from(reverse)];
        let seq = n.wrapping_add(offset as i32 as u32);
        if offset >= 0 {
            *n = seq.wrapping_add(len as u32 + u32::from(flags & (TcpHeader::SYN | TcpHeader::FIN) != 0));
        }
        let hdr = TcpHeader {
            src_port: tuple.src_port,
            dst_port: tuple.dst_port,
            seq,
            ack: 0,
            flags,
        };
        i += 1;
        // Ticks a tenth of a second to a minute apart, so some connections go idle.
        ts = Ts(ts.0 + i64::from(opts >> 3) * 100_000_000 * i64::from(i % 3));
        tcp.process(&mut out, ts, tuple, &hdr, payload);
        assert!(tcp.connections() <= max);
        tcp.tick(&mut out, ts, 0);
        out.take();
    }
    tcp.flush(&mut out);
    assert_eq!(tcp.connections(), 0);
});
