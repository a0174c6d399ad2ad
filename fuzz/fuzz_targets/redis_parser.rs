//! Arbitrary bytes into the RESP parser, message after message, as the stream adapter feeds it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use packetbeat::protos::app::Parsed;
use packetbeat::protos::redis::parser::{parse, StreamState};

fuzz_target!(|data: &[u8]| {
    let mut st = StreamState::default();
    let mut at = 0;
    while at < data.len() {
        match parse(&mut st, &data[at..]) {
            Parsed::Message { consumed, .. } => {
                assert!(consumed > 0 && consumed <= data.len() - at);
                at += consumed;
            }
            Parsed::Skip(n) => at += n.max(1),
            Parsed::Incomplete | Parsed::Error(_) => break,
        }
    }
});
