//! Arbitrary bytes into the AMQP stream parser, as a connection feeds it: the first byte picks
//! the options (parse_headers, parse_arguments, hide_connection_information) and the segment
//! size; a stream that ends or fails is started afresh by the next segment. The rest is also
//! read as a field table.
#![no_main]

use libfuzzer_sys::fuzz_target;
use packetbeat::common::Ts;
use packetbeat::protos::amqp::fields::get_table;
use packetbeat::protos::amqp::parser::{ParserConfig, Step, Stream};

fuzz_target!(|data: &[u8]| {
    let Some((&opts, data)) = data.split_first() else {
        return;
    };
    let cfg = ParserConfig {
        parse_headers: opts & 1 != 0,
        parse_arguments: opts & 2 != 0,
        hide_connection_information: opts & 4 != 0,
    };
    let segment = usize::from(opts >> 3) + 1;
    let mut stream: Option<Stream> = None;
    for (i, chunk) in data.chunks(segment).enumerate() {
        let st = stream.get_or_insert_with(|| Stream::new(Ts(i as i64)));
        st.append(chunk);
        loop {
            match st.step(&cfg) {
                // A message ends at a frame: the stream has bytes left or ends on the next step.
                Step::Complete => assert!(st.total_len() <= data.len()),
                Step::Wait => break,
                Step::Reset | Step::Fail(_) => {
                    stream = None;
                    break;
                }
            }
        }
    }
    let _ = get_table(data, 0);
});
