//! Arbitrary bytes into the Thrift parser, in each protocol and transport, message after
//! message, the first byte choosing the options and the input split in two to exercise resuming.
#![no_main]

use libfuzzer_sys::fuzz_target;
use packetbeat::protos::app::Parsed;
use packetbeat::protos::thrift::parser::{parse, Options, Partial};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, data)) = data.split_first() else {
        return;
    };
    let opts = Options {
        framed: sel & 1 != 0,
        compact: sel & 2 != 0,
        string_max_size: if sel & 4 != 0 { 3 } else { 200 },
        collection_max_size: if sel & 8 != 0 { 1 } else { 15 },
        drop_after_n_struct_fields: if sel & 16 != 0 { 4 } else { 500 },
        capture_reply: sel & 32 == 0,
        obfuscate_strings: sel & 64 != 0,
    };
    let split = data.len() / 2;
    let mut partial = Partial::default();
    // The first half alone, as a segment that ends mid-message would be parsed.
    let _ = parse(&opts, &mut partial, &data[..split]);
    let mut at = 0;
    while at < data.len() {
        match parse(&opts, &mut partial, &data[at..]) {
            Parsed::Message { consumed, .. } => {
                assert!(consumed > 0 && consumed <= data.len() - at);
                at += consumed;
            }
            Parsed::Skip(n) => at += n.max(1),
            Parsed::Incomplete | Parsed::Error(_) => break,
        }
    }
});
