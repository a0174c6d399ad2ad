//! Arbitrary bytes into the ICMP message parser, the pairing state and the event builder.
//! Input: [version selector, type, code, body...] repeated messages split on nothing: the
//! first byte picks v4/v6, the next two are type and code, the rest is the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use packetbeat::common::Ts;
use packetbeat::protos::icmp::{parser, transaction_event, Icmp};
use std::time::Duration;

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let version = if data[0] & 1 == 0 { 4 } else { 6 };
    let (t, c, body) = (data[1], data[2], &data[3..]);
    let _ = parser::human_readable(version, t, c);
    let Some(info) = parser::parse(version, t, c, body) else {
        return;
    };
    let mut icmp = Icmp::new(Duration::from_secs(1));
    let (a, b) = if version == 4 {
        ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap())
    } else {
        ("::1".parse().unwrap(), "::2".parse().unwrap())
    };
    let mut done = icmp.handle(Ts(0), a, b, &info);
    done.extend(icmp.handle(Ts(1), b, a, &info));
    done.extend(icmp.expire(None));
    for t in &done {
        let _ = transaction_event(t);
    }
});
