//! Arbitrary bytes into the DHCPv4 decoder and the event builder (options mapping included).
#![no_main]

use libfuzzer_sys::fuzz_target;
use packetbeat::common::{IpPortTuple, Ts};
use packetbeat::protos::dhcpv4::{dhcp_event, parser};

fuzz_target!(|data: &[u8]| {
    // Raw bytes, and the same bytes as options behind a valid header and magic cookie.
    let mut framed = vec![0u8; parser::HEADER_SIZE];
    framed[0] = 1;
    framed.extend_from_slice(&parser::MAGIC_COOKIE);
    framed.extend_from_slice(data);
    for payload in [data, &framed[..]] {
        if let Ok(msg) = parser::parse(payload) {
            let tuple = IpPortTuple::new(
                "0.0.0.0".parse().unwrap(),
                68,
                "255.255.255.255".parse().unwrap(),
                67,
            );
            let _ = dhcp_event(Ts(0), &tuple, payload.len(), &msg);
        }
    }
});
