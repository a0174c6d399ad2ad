//! Fragment sequences into the IPv4 defragmenter: overlapping and conflicting fragments,
//! duplicates, fragments past 64 KiB, last fragments that shrink or grow the datagram,
//! interleaved datagrams, and datagrams never completed while time moves on (so expiry and the
//! table's bound both run). A completed datagram is no longer than an IP datagram can be, and
//! all of it is there.
//!
//! Input: fragments of `[datagram+more, offset (2 bytes, in 8-byte units), length, time step,
//! payload...]`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use packetbeat::common::Ts;
use packetbeat::decoder::defrag::{FragKey, Ipv4Defrag};

fuzz_target!(|data: &[u8]| {
    let mut data = data;
    let mut defrag = Ipv4Defrag::new();
    let mut ts = Ts(1_700_000_000_000_000_000);
    while data.len() >= 5 {
        let (head, rest) = data.split_at(5);
        let more = head[0] & 0x80 != 0;
        let key = FragKey {
            src: "10.0.0.1".parse().unwrap(),
            dst: "10.0.0.2".parse().unwrap(),
            id: u16::from(head[0] & 0x7F),
            proto: 17,
        };
        let offset = usize::from(u16::from_be_bytes([head[1], head[2]]) & 0x1FFF) * 8;
        let len = usize::from(head[3]).min(rest.len());
        // Up to 25.5 s per step: a few steps pass the 30 s fragment timeout.
        ts = Ts(ts.0 + i64::from(head[4]) * 100_000_000);
        let (payload, rest) = rest.split_at(len);
        data = rest;
        if let Some(total) = defrag.add(ts, key, offset, more, payload) {
            assert!(total <= 65535);
            assert_eq!(defrag.completed(total).len(), total);
        }
    }
});
