//! Arbitrary bytes into the NFS parser (ONC RPC record marking, then the RPC call or reply),
//! record after record, as a connection feeds it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use packetbeat::protos::nfs::parser::{message, record};

fuzz_target!(|data: &[u8]| {
    let mut at = 0;
    while let Some(rec) = record(&data[at..]) {
        assert!(rec.consumed >= 4 && rec.consumed <= data.len() - at);
        assert!(rec.body.len() < rec.consumed);
        let _ = message(&rec.body);
        at += rec.consumed;
    }
});
