//! Arbitrary bytes into the SIP parser, message after message as a stream feeds it, and each
//! message through the event builder (URIs, From/To, Authorization, SDP); the first byte picks
//! the options.
#![no_main]

use libfuzzer_sys::fuzz_target;
use packetbeat::common::{IpPortTuple, Transport, Ts};
use packetbeat::protos::app::Parsed;
use packetbeat::protos::sip::event::message_event;
use packetbeat::protos::sip::parser::parse;
use packetbeat::protos::sip::Sip;

fuzz_target!(|data: &[u8]| {
    let Some((&opts, data)) = data.split_first() else {
        return;
    };
    let cfg = Sip {
        parse_authorization: opts & 1 != 0,
        parse_body: opts & 2 != 0,
        keep_original: opts & 4 != 0,
        transport: if opts & 8 != 0 { Transport::Tcp } else { Transport::Udp },
    };
    let tuple = IpPortTuple::new(
        "10.0.0.1".parse().unwrap(),
        5060,
        "10.0.0.2".parse().unwrap(),
        5060,
    );
    let mut at = 0;
    while at < data.len() {
        match parse(&data[at..]) {
            Parsed::Message { consumed, msg } => {
                assert!(consumed > 0 && consumed <= data.len() - at);
                let _ = message_event(&cfg, &msg, Ts(1), &tuple, &msg.data);
                at += consumed;
            }
            Parsed::Skip(n) => at += n.max(1),
            Parsed::Incomplete | Parsed::Error(_) => break,
        }
    }
});
