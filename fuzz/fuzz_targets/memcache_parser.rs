//! Arbitrary bytes into the memcache parser (text and binary), message after message, as a
//! connection feeds it; the first byte picks the options (maxvalues, parseunknown).
#![no_main]

use libfuzzer_sys::fuzz_target;
use packetbeat::protos::app::Parsed;
use packetbeat::protos::memcache::parser::{parse, ParserConfig};

fuzz_target!(|data: &[u8]| {
    let Some((&opts, data)) = data.split_first() else {
        return;
    };
    let cfg = ParserConfig {
        max_values: i64::from(opts & 3) - 1,
        max_bytes_per_value: usize::from(opts >> 4) + 1,
        parse_unknown: opts & 4 != 0,
    };
    let mut at = 0;
    while at < data.len() {
        match parse(&cfg, &data[at..]) {
            Parsed::Message { consumed, msg } => {
                assert!(consumed > 0 && consumed <= data.len() - at);
                assert!(msg.values.iter().all(|v| v.len() <= cfg.max_bytes_per_value));
                at += consumed;
            }
            Parsed::Skip(n) => at += n.max(1),
            Parsed::Incomplete | Parsed::Error(_) => break,
        }
    }
});
