//! Arbitrary bytes into the MySQL parser, message after message, as a connection feeds one
//! direction in two segments; every complete message's kept bytes also go through the
//! `response` text and the execute-parameter readers. The first byte picks the side, whether a
//! prepare answer is due, the split point and the row limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use packetbeat::protos::mysql::params::{parse_execute, Statement};
use packetbeat::protos::mysql::parser::{Parser, Step};
use packetbeat::protos::app::csv::dump as dump_csv;
use packetbeat::protos::mysql::rows::parse_response;

fuzz_target!(|data: &[u8]| {
    let Some((&opts, data)) = data.split_first() else {
        return;
    };
    let is_client = opts & 1 != 0;
    let expect_prepare_ok = opts & 2 != 0;
    let split = usize::from(opts >> 2) * data.len() / 64;
    let mut at = 0;
    let mut parser = Parser::default();
    // The first segment, then the whole: what a connection sees when it buffers.
    let mut avail = split.max(1).min(data.len());
    while at < data.len() {
        let buf = &data[at..avail.max(at)];
        match parser.step(buf, is_client, expect_prepare_ok) {
            Step::Complete => {
                let p = std::mem::take(&mut parser);
                assert!(p.offset > 0 && p.offset <= buf.len());
                assert!(p.msg.end <= p.offset && p.msg.size <= p.offset);
                let raw = &buf[..p.msg.end];
                let (fields, rows) = parse_response(raw, i64::from(opts & 7) - 1, 64);
                assert!(rows.iter().all(|r| r.iter().map(Vec::len).sum::<usize>() <= 64));
                let _ = dump_csv(&fields, &rows);
                let mut st = Statement {
                    num_params: usize::from(opts >> 4),
                    ..Default::default()
                };
                let _ = parse_execute(raw, &mut st);
                at += p.offset;
            }
            Step::Incomplete if avail < data.len() => avail = data.len(),
            Step::Incomplete => {
                let _ = parser.gap();
                break;
            }
            Step::Error(_) => break,
        }
    }
});
