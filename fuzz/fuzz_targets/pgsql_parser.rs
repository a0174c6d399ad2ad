//! Arbitrary bytes into the PostgreSQL parsers (client and server messages), message after
//! message, then through the analyzer as a TCP connection delivers them. The first byte picks
//! the size limit, the negotiation the server parser expects, the segment size and gaps.
#![no_main]

use libfuzzer_sys::fuzz_target;
use packetbeat::common::{IpPortTuple, TcpTuple, Ts};
use packetbeat::config::types::ProtocolSection;
use packetbeat::protos::app::Parsed;
use packetbeat::protos::pgsql::parser::{parse_backend, parse_frontend, Negotiation};
use packetbeat::protos::{build_modules, TcpDirection, TcpPacket};
use packetbeat::publish::EventSink;

fuzz_target!(|data: &[u8]| {
    let Some((&opts, data)) = data.split_first() else {
        return;
    };
    let limit = 16 + usize::from(opts & 0x0f) * 64;
    let expect = match opts >> 4 & 3 {
        1 => Some(Negotiation::Ssl),
        2 => Some(Negotiation::GssEnc),
        _ => None,
    };
    for client in [true, false] {
        let mut at = 0;
        while at < data.len() {
            let step = if client {
                match parse_frontend(&data[at..], limit) {
                    Parsed::Message { consumed, .. } => Some(consumed),
                    _ => None,
                }
            } else {
                match parse_backend(&data[at..], expect, limit) {
                    Parsed::Message { consumed, .. } => Some(consumed),
                    _ => None,
                }
            };
            let Some(consumed) = step else { break };
            assert!(consumed > 0 && consumed <= data.len() - at);
            at += consumed;
        }
    }

    let options = serde_yaml::from_str(
        "ports: [5432]\nsend_request: true\nsend_response: true\nmax_rows: 3\nmax_row_length: 20",
    )
    .unwrap();
    let section = ProtocolSection {
        kind: "pgsql".into(),
        options,
        key: "fuzz".into(),
    };
    let modules = build_modules(&[section], "fuzz").unwrap();
    let mut analyzer = modules.modules[0].new_tcp().unwrap();
    let client = IpPortTuple::new(
        "10.0.0.1".parse().unwrap(),
        40000,
        "10.0.0.2".parse().unwrap(),
        5432,
    );
    let conn = TcpTuple {
        tuple: client,
        stream_id: 1,
    };
    let mut parser = analyzer.new_connection(&conn);
    let mut out = EventSink::new();
    let size = usize::from(opts & 0x3f) + 1;
    for (i, chunk) in data.chunks(size).enumerate() {
        let (dir, tuple) = if (i / 2) % 2 == 0 {
            (TcpDirection::Original, client)
        } else {
            (TcpDirection::Reverse, client.reversed())
        };
        let ts = Ts(i as i64 * 1_000_000_000);
        parser.parse(&mut out, &conn, dir, &TcpPacket { ts, tuple, payload: chunk });
        if opts & 0x80 != 0 && i % 7 == 6 && parser.gap_in_stream(&mut out, &conn, dir, 10, ts) {
            parser = analyzer.new_connection(&conn);
        }
    }
    parser.received_fin(&mut out, &conn, TcpDirection::Reverse, Ts(1_000));
    parser.expired(&mut out, &conn, Ts(1_000_000));
});
