//! Arbitrary bytes into the MongoDB parser, message after message, as a connection feeds it;
//! every decoded message is also rendered (its query strings and documents as Go's JSON), since
//! that is where the BSON values are walked.
#![no_main]

use libfuzzer_sys::fuzz_target;
use packetbeat::protos::app::Parsed;
use packetbeat::protos::mongodb::bson::doc_to_json;
use packetbeat::protos::mongodb::event::reconstruct_query;
use packetbeat::protos::mongodb::parser::parse;

fuzz_target!(|data: &[u8]| {
    let mut at = 0;
    while at < data.len() {
        match parse(&data[at..]) {
            Parsed::Message { consumed, msg } => {
                assert!(consumed >= 16 && consumed <= data.len() - at);
                assert_eq!(consumed, msg.length);
                let _ = reconstruct_query(&msg, false);
                let _ = reconstruct_query(&msg, true);
                for d in &msg.documents {
                    let _ = doc_to_json(d);
                }
                at += consumed;
            }
            Parsed::Skip(n) => at += n.max(1),
            Parsed::Incomplete | Parsed::Error(_) => break,
        }
    }
});
