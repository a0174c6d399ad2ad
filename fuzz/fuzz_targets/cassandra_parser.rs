//! Arbitrary bytes into the Cassandra frame parser, frame after frame, as a connection feeds
//! it; the first byte picks the options (snappy, LZ4 chosen by STARTUP, ignored opcodes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use packetbeat::protos::app::Parsed;
use packetbeat::protos::cassandra::parser::{parse, ParserConfig};

fuzz_target!(|data: &[u8]| {
    let Some((&opts, data)) = data.split_first() else {
        return;
    };
    let cfg = ParserConfig {
        snappy: opts & 1 != 0,
        ignored_ops: if opts & 4 != 0 { 1 << (opts >> 3) } else { 0 },
    };
    let lz4 = opts & 2 != 0;
    let mut at = 0;
    while at < data.len() {
        match parse(&cfg, lz4, &data[at..]) {
            Parsed::Message { consumed, msg } => {
                assert!(consumed >= 8 && consumed <= data.len() - at);
                assert_eq!(consumed - msg.header.length as usize, if msg.header.proto() > 2 { 9 } else { 8 });
                at += consumed;
            }
            Parsed::Skip(n) => at += n.max(1),
            Parsed::Incomplete | Parsed::Error(_) => break,
        }
    }
});
