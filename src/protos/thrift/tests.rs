//! The Thrift analyzer: the parser and its rendering on hand-made messages of both protocols,
//! split at every byte, broken and random input, each option, and the pairing through the real
//! TCP layer.

use super::*;
use crate::decoder::TcpHeader;
use crate::protos::app::{Module, TCP_MAX_DATA_IN_STREAM};
use crate::protos::testing::TcpSession;
use crate::protos::ProtocolModule;
use parser::{Field, Header, CALL, EXCEPTION, ONEWAY, REPLY};
use serde_json::Value;
use std::sync::atomic::Ordering;
use std::sync::Arc;

// Binary protocol building blocks.

fn strict(kind: u8, method: &str, seq: u32, body: &[u8]) -> Vec<u8> {
    let mut v = vec![0x80, 0x01, 0x00, kind];
    v.extend((method.len() as u32).to_be_bytes());
    v.extend(method.as_bytes());
    v.extend(seq.to_be_bytes());
    v.extend(body);
    v
}

fn old_style(kind: u8, method: &str, seq: u32, body: &[u8]) -> Vec<u8> {
    let mut v = (method.len() as u32).to_be_bytes().to_vec();
    v.extend(method.as_bytes());
    v.push(kind);
    v.extend(seq.to_be_bytes());
    v.extend(body);
    v
}

fn framed(msg: &[u8]) -> Vec<u8> {
    let mut v = (msg.len() as u32).to_be_bytes().to_vec();
    v.extend(msg);
    v
}

fn field(t: u8, id: u16, value: &[u8]) -> Vec<u8> {
    let mut v = vec![t];
    v.extend(id.to_be_bytes());
    v.extend(value);
    v
}

fn i32f(id: u16, x: i32) -> Vec<u8> {
    field(8, id, &x.to_be_bytes())
}

fn string(s: &[u8]) -> Vec<u8> {
    let mut v = (s.len() as u32).to_be_bytes().to_vec();
    v.extend(s);
    v
}

fn strf(id: u16, s: &[u8]) -> Vec<u8> {
    field(11, id, &string(s))
}

/// A struct body: the fields, then STOP.
fn body(fields: &[Vec<u8>]) -> Vec<u8> {
    let mut v: Vec<u8> = fields.concat();
    v.push(0);
    v
}

fn opts() -> Options {
    Options::default()
}

fn parse_all(o: &Options, data: &[u8]) -> Parsed<Message> {
    parser::parse(o, &mut Partial::default(), data)
}

fn message(o: &Options, data: &[u8]) -> Message {
    match parse_all(o, data) {
        Parsed::Message { msg, consumed } => {
            assert_eq!(consumed, data.len(), "the whole message is used");
            msg
        }
        other => panic!("not a message: {other:?}"),
    }
}

/// The rendered arguments of a call with these fields.
fn render(o: &Options, fields: &[Vec<u8>]) -> String {
    let msg = message(o, &strict(CALL, "m", 1, &body(fields)));
    let mut s = String::new();
    parser::format_struct(&msg.fields, &[], o.collection_max_size, &mut s);
    s
}

#[test]
fn strict_and_old_style_headers() {
    let call = strict(CALL, "add", 7, &body(&[i32f(1, 1), i32f(2, 2)]));
    let msg = message(&opts(), &call);
    assert_eq!(
        msg.header,
        Header {
            kind: CALL,
            method: "add".into(),
            seq_id: 7
        }
    );
    assert_eq!(msg.size, call.len() as u64);
    assert_eq!(
        msg.fields,
        vec![
            Field {
                id: 1,
                value: "1".into()
            },
            Field {
                id: 2,
                value: "2".into()
            }
        ]
    );
    let old = old_style(ONEWAY, "zip", 3, &body(&[]));
    let msg = message(&opts(), &old);
    assert_eq!(msg.header.kind, ONEWAY);
    assert!(msg.header.is_request());
    assert_eq!(msg.header.method, "zip");
    assert!(msg.fields.is_empty());
}

#[test]
fn framed_messages_report_the_frame_length() {
    let o = Options {
        framed: true,
        ..opts()
    };
    let wire = framed(&strict(REPLY, "add", 7, &body(&[i32f(0, 3)])));
    let msg = message(&o, &wire);
    assert_eq!(msg.size, wire.len() as u64 - 4);
    assert_eq!(msg.fields[0].value, "3");
    // A frame length of 0 reports the bytes parsed, header included.
    let mut zero = wire.clone();
    zero[..4].copy_from_slice(&[0; 4]);
    assert_eq!(message(&o, &zero).size, wire.len() as u64);
}

/// The compact protocol's call `add(1: 1, 2: -2)` and its reply `0: true`.
fn compact_call() -> Vec<u8> {
    vec![
        0x82, 0x21, 0x05, 0x03, b'a', b'd', b'd', // header: call, seqid 5, "add"
        0x15, 0x02, // field 1 (delta 1), i32 zigzag 1
        0x15, 0x03, // field 2, i32 zigzag -2
        0x00,
    ]
}

#[test]
fn compact_protocol_messages() {
    let o = Options {
        compact: true,
        ..opts()
    };
    let msg = message(&o, &compact_call());
    assert_eq!(msg.header.method, "add");
    assert_eq!(msg.header.seq_id, 5);
    let vals: Vec<_> = msg
        .fields
        .iter()
        .map(|f| (f.id, f.value.as_str()))
        .collect();
    assert_eq!(vals, vec![(1, "1"), (2, "4294967294")]);
    // Reply: bool true as field 0 (long form id), then a struct, list, set, map, string,
    // double, i64, byte and i16 in a second reply.
    let reply = [0x82, 0x41, 0x05, 0x03, b'a', b'd', b'd', 0x01, 0x00, 0x00];
    let msg = message(&o, &reply);
    assert_eq!(msg.header.kind, REPLY);
    assert_eq!(msg.fields[0].id, 0);
    assert_eq!(msg.fields[0].value, "true");
    let mut all = vec![0x82, 0x21, 0x01, 0x01, b'x'];
    all.extend([0x1c, 0x15, 0x0e, 0x12, 0x00]); // 1: struct (1: 7, 2: false)
    all.extend([0x19, 0x35, 0x02, 0x04, 0x06]); // 2: list<i32> [1, 2, 3]
    all.extend([0x1a, 0x08]); // 3: empty set of strings
    all.extend([0x1b, 0x01, 0x85, 0x01, b'k', 0x26]); // 4: map {"k": 19}
    all.extend([0x18, 0x02, b'h', b'i']); // 5: "hi"
    all.extend([0x17]);
    all.extend(2.5f64.to_le_bytes()); // 6: 2.5
    all.extend([0x16, 0x01]); // 7: i64 -1
    all.extend([0x13, 0xff]); // 8: byte 255
    all.extend([0x14, 0x01]); // 9: i16 -1
    all.push(0);
    let msg = message(&o, &all);
    let vals: Vec<_> = msg.fields.iter().map(|f| f.value.as_str()).collect();
    assert_eq!(
        vals,
        vec![
            "(1: 7, 2: false)",
            "[1, 2, 3]",
            "",
            "{\"k\": 19}",
            "\"hi\"",
            "2.5",
            "-1",
            "255",
            "65535"
        ]
    );
    assert_eq!(
        parse_all(&o, &strict(CALL, "add", 1, &body(&[]))),
        Parsed::Error(parser::ERR_BAD_COMPACT)
    );
}

#[test]
fn every_split_is_incomplete_until_the_message_ends() {
    let binary = strict(
        CALL,
        "echo",
        1,
        &body(&[
            strf(1, b"hello"),
            field(15, 2, &[8, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2]),
            field(12, 3, &body(&[i32f(1, 5), strf(2, b"x")])),
            field(13, 4, &[11, 8, 0, 0, 0, 1, 0, 0, 0, 1, b'a', 0, 0, 0, 9]),
        ]),
    );
    let cases = [
        (opts(), binary.clone()),
        (
            opts(),
            old_style(REPLY, "echo", 1, &body(&[strf(0, b"hello")])),
        ),
        (
            Options {
                framed: true,
                ..opts()
            },
            framed(&binary),
        ),
        (
            Options {
                compact: true,
                ..opts()
            },
            compact_call(),
        ),
    ];
    for (o, wire) in cases {
        let whole = message(&o, &wire);
        for cut in 0..wire.len() {
            assert_eq!(
                parse_all(&o, &wire[..cut]),
                Parsed::Incomplete,
                "cut at {cut}"
            );
            // Resumed from where the first part left it, the message is the same.
            let mut partial = Partial::default();
            assert_eq!(
                parser::parse(&o, &mut partial, &wire[..cut]),
                Parsed::Incomplete
            );
            assert_eq!(
                parser::parse(&o, &mut partial, &wire),
                Parsed::Message {
                    msg: whole.clone(),
                    consumed: wire.len()
                },
                "resumed after {cut} bytes"
            );
        }
    }
}

#[test]
fn values_render_as_packetbeat_renders_them() {
    let o = opts();
    let list = |et: u8, n: u32, items: &[u8]| {
        let mut v = vec![et];
        v.extend(n.to_be_bytes());
        v.extend(items);
        v
    };
    assert_eq!(
        render(
            &o,
            &[
                field(2, 1, &[1]),
                field(3, 2, &[0x81]),
                field(6, 3, &(-2i16).to_be_bytes()),
                i32f(4, -1),
                field(10, 5, &(-34359738368i64).to_be_bytes()),
                field(4, 6, &(-5.235098235f64).to_be_bytes()),
                field(4, 7, &1e21f64.to_be_bytes()),
                field(4, 8, &f64::NEG_INFINITY.to_be_bytes()),
            ]
        ),
        "(1: true, 2: 129, 3: 65534, 4: 4294967295, 5: -34359738368, 6: -5.235098235, \
         7: 1000000000000000000000, 8: -Inf)"
    );
    // Lists, sets (empty ones render as nothing), maps, nested structs.
    assert_eq!(
        render(
            &o,
            &[
                field(15, 1, &list(8, 2, &[0, 0, 0, 1, 0, 0, 0, 2])),
                field(14, 2, &list(11, 0, &[])),
                field(13, 3, &[11, 2, 0, 0, 0, 0]),
                field(12, 4, &body(&[field(12, 1, &body(&[]))])),
            ]
        ),
        "(1: [1, 2], 2: , 3: {}, 4: (1: ()))"
    );
    // Strings: Go quoting, cut at string_max_size, hex when not UTF-8.
    assert_eq!(
        render(
            &o,
            &[
                strf(1, b""),
                strf(2, "tab\t\"q\" \\ \x01 \x7f é \u{a0}".as_bytes()),
                strf(3, &[0xab, 0x0c, 0x1d]),
            ]
        ),
        "(1: \"\", 2: \"tab\\t\\\"q\\\" \\\\ \\x01 \\x7f é \\u00a0\", 3: ab0c1d)"
    );
    let short = Options {
        string_max_size: 3,
        ..opts()
    };
    assert_eq!(render(&short, &[strf(1, b"abcdef")]), "(1: \"abc...\")");
    // A cut inside a UTF-8 sequence leaves bytes that are not UTF-8: hex, the dots included.
    let shorter = Options {
        string_max_size: 2,
        ..opts()
    };
    assert_eq!(
        render(&shorter, &[strf(1, "aéb".as_bytes())]),
        "(1: 61c32e2e2e)"
    );
    let hidden = Options {
        obfuscate_strings: true,
        ..opts()
    };
    assert_eq!(
        render(&hidden, &[strf(1, b"secret"), strf(2, b"")]),
        "(1: \"*\", 2: \"\")"
    );
}

#[test]
fn collections_and_structs_stop_at_collection_max_size() {
    let o = Options {
        collection_max_size: 2,
        ..opts()
    };
    let mut items = vec![8];
    items.extend(4u32.to_be_bytes());
    for i in 0..4u32 {
        items.extend(i.to_be_bytes());
    }
    assert_eq!(
        render(&o, &[field(15, 1, &items), i32f(2, 2), i32f(3, 3)]),
        "(1: [0, 1, ...], 2: 2, ...)"
    );
    let mut map = vec![8, 8];
    map.extend(3u32.to_be_bytes());
    for i in 0..6u32 {
        map.extend(i.to_be_bytes());
    }
    assert_eq!(render(&o, &[field(13, 1, &map)]), "(1: {0: 1, 2: 3, ...})");
}

#[test]
fn broken_messages_are_errors() {
    let o = opts();
    let mut neg = strict(CALL, "m", 1, &[]);
    neg.extend(field(11, 1, &0x8000_0000u32.to_be_bytes()));
    assert_eq!(parse_all(&o, &neg), Parsed::Error(parser::ERR_BAD_STRING));
    let unknown = strict(CALL, "m", 1, &field(9, 1, &[0; 8]));
    assert_eq!(parse_all(&o, &unknown), Parsed::Error(parser::ERR_BAD_TYPE));
    // drop_after_n_struct_fields: a nested struct with that many fields is garbage.
    let few = Options {
        drop_after_n_struct_fields: 3,
        ..opts()
    };
    let nested = |n: u16| {
        let fields: Vec<_> = (1..=n).map(|i| i32f(i, 0)).collect();
        strict(CALL, "m", 1, &body(&[field(12, 1, &body(&fields))]))
    };
    assert!(matches!(
        parse_all(&few, &nested(2)),
        Parsed::Message { .. }
    ));
    assert_eq!(
        parse_all(&few, &nested(3)),
        Parsed::Error(parser::ERR_TOO_MANY_FIELDS)
    );
    // Top-level fields are not limited, as in Packetbeat.
    let top: Vec<_> = (1..=5).map(|i| i32f(i, 0)).collect();
    assert!(matches!(
        parse_all(&few, &strict(CALL, "m", 1, &body(&top))),
        Parsed::Message { .. }
    ));
    // Lists nested past MAX_DEPTH.
    let mut deep = strict(CALL, "m", 1, &[15, 0, 1]);
    for _ in 0..=parser::MAX_DEPTH {
        deep.extend([15, 0, 0, 0, 1]);
    }
    assert_eq!(parse_all(&o, &deep), Parsed::Error(parser::ERR_TOO_DEEP));
}

#[test]
fn random_bytes_never_panic() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for compact in [false, true] {
        for framed in [false, true] {
            let o = Options {
                compact,
                framed,
                drop_after_n_struct_fields: 8,
                ..opts()
            };
            for _ in 0..3000 {
                let len = (next() % 64) as usize;
                let mut data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
                // Half the inputs start as a real message would.
                if next() % 2 == 0 && !compact {
                    data.splice(0..0, strict(CALL, "m", 1, &[]));
                }
                let mut partial = Partial::default();
                let mut at = 0;
                while at < data.len() {
                    match parser::parse(&o, &mut partial, &data[at..]) {
                        Parsed::Message { consumed, .. } => {
                            assert!(consumed > 0 && consumed <= data.len() - at);
                            at += consumed;
                        }
                        Parsed::Skip(n) => at += n,
                        Parsed::Incomplete | Parsed::Error(_) => break,
                    }
                }
            }
        }
    }
}

// The analyzer through the TCP layer.

fn settings_with(edit: impl FnOnce(&mut ThriftConfig), send: bool) -> Thrift {
    let mut cfg = ThriftConfig::default();
    edit(&mut cfg);
    Thrift::configure(&common(send), cfg).unwrap()
}

fn common(send: bool) -> CommonOptions {
    CommonOptions {
        ports: vec![9090],
        send_request: send,
        send_response: send,
        transaction_timeout: Duration::from_secs(10),
    }
}

fn session(settings: Thrift) -> (TcpSession, Arc<Module<Thrift>>) {
    let send = settings.send_request;
    let module = Arc::new(Module::new(settings, &common(send)));
    (TcpSession::new(module.clone(), 9090), module)
}

fn counter(m: &Module<Thrift>, name: &str) -> u64 {
    let c = m.counters().unwrap();
    let a = match name {
        "parse_errors" => &c.parse_errors,
        "streams_too_large" => &c.streams_too_large,
        "unmatched_requests" => &c.unmatched_requests,
        _ => &c.unmatched_responses,
    };
    a.load(Ordering::Relaxed)
}

#[test]
fn a_call_and_its_reply_split_at_every_byte() {
    let call = strict(CALL, "add", 1, &body(&[i32f(1, 1), i32f(2, 1)]));
    let reply = strict(REPLY, "add", 1, &body(&[i32f(0, 2)]));
    for cut in 1..call.len() {
        let (mut c, _) = session(settings_with(|_| {}, true));
        c.send(true, &call[..cut], 0);
        c.send(true, &call[cut..], 1);
        let rcut = cut.min(reply.len() - 1);
        c.send(false, &reply[..rcut], 2);
        c.send(false, &reply[rcut..], 3);
        let evs = c.events();
        assert_eq!(evs.len(), 1, "cut at {cut}");
        let e = &evs[0];
        assert_eq!(e["type"], "thrift");
        assert_eq!(e["method"], "add");
        assert_eq!(e["query"], "add(1: 1, 2: 1)");
        assert_eq!(e["request"], "add(1: 1, 2: 1)");
        assert_eq!(e["response"], "2");
        assert_eq!(e["path"], "");
        assert_eq!(e["status"], "OK");
        assert_eq!(e["thrift"]["params"], "(1: 1, 2: 1)");
        assert_eq!(e["thrift"]["return_value"], "2");
        assert!(e["thrift"].get("service").is_none());
        assert_eq!(e["source"]["bytes"], call.len());
        assert_eq!(e["destination"]["bytes"], reply.len());
    }
    // The call's time is its first segment's, the reply's its first segment's.
    let (mut c, _) = session(settings_with(|_| {}, false));
    c.send(true, &call[..5], 1000);
    c.send(true, &call[5..], 1001);
    c.send(false, &reply[..5], 1002);
    c.send(false, &reply[5..], 1003);
    let ev = c.out.take().into_iter().next().unwrap();
    let e = crate::protos::testing::flat(ev);
    assert_eq!(e["event.duration"], Value::from(2_000_000));
}

#[test]
fn pipelined_messages_in_one_segment_and_oneway_calls() {
    let (mut c, m) = session(settings_with(|_| {}, false));
    let mut calls = old_style(ONEWAY, "zip", 0, &body(&[]));
    calls.extend(strict(CALL, "ping", 1, &body(&[])));
    c.send(true, &calls, 0);
    // The oneway call is published when the next call arrives, without a reply.
    let evs = c.events();
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0]["query"], "zip()");
    assert!(evs[0]["thrift"].get("return_value").is_none());
    assert!(evs[0]["destination"].get("bytes").is_none());
    assert!(evs[0].get("request").is_none(), "send_request is off");
    c.send(false, &strict(REPLY, "ping", 1, &body(&[])), 5);
    let evs = c.events();
    assert_eq!(evs[0]["query"], "ping()");
    assert_eq!(evs[0]["thrift"]["return_value"], "");
    assert!(evs[0].get("response").is_none(), "send_response is off");
    assert_eq!(counter(&m, "unmatched_requests"), 1);
}

#[test]
fn exceptions_declared_and_application() {
    let (mut c, _) = session(settings_with(|_| {}, true));
    c.send(true, &strict(CALL, "calculate", 1, &body(&[i32f(1, 1)])), 0);
    let ouch = field(12, 1, &body(&[i32f(1, 4), strf(2, b"Cannot divide by 0")]));
    c.send(false, &strict(REPLY, "calculate", 1, &body(&[ouch])), 1);
    c.send(true, &strict(CALL, "nope", 2, &body(&[])), 2);
    let app = body(&[strf(1, b"Invalid method name: 'nope'"), i32f(2, 1)]);
    c.send(false, &strict(EXCEPTION, "nope", 2, &app), 3);
    let evs = c.events();
    assert_eq!(evs.len(), 2);
    assert_eq!(evs[0]["status"], "Error");
    assert_eq!(
        evs[0]["thrift"]["exceptions"],
        "(1: (1: 4, 2: \"Cannot divide by 0\"))"
    );
    assert_eq!(evs[0]["thrift"]["return_value"], "");
    assert_eq!(
        evs[0]["response"],
        "Exceptions: (1: (1: 4, 2: \"Cannot divide by 0\"))"
    );
    assert_eq!(evs[1]["status"], "Error");
    assert_eq!(
        evs[1]["thrift"]["exceptions"],
        "(1: \"Invalid method name: 'nope'\", 2: 1)"
    );
}

#[test]
fn replies_pair_only_with_their_method() {
    let (mut c, m) = session(settings_with(|_| {}, false));
    c.send(false, &strict(REPLY, "add", 1, &body(&[i32f(0, 2)])), 0);
    c.send(true, &strict(CALL, "add", 2, &body(&[])), 1);
    c.send(false, &strict(REPLY, "sub", 2, &body(&[i32f(0, 2)])), 2);
    assert!(c.events().is_empty());
    assert_eq!(counter(&m, "unmatched_responses"), 2);
    c.send(false, &strict(REPLY, "add", 2, &body(&[i32f(0, 3)])), 3);
    let evs = c.events();
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0]["thrift"]["return_value"], "3");
}

#[test]
fn a_call_past_its_timeout_is_dropped_and_counted() {
    let (mut c, m) = session(settings_with(|_| {}, false));
    c.send(true, &strict(CALL, "slow", 1, &body(&[])), 0);
    c.send(false, &strict(REPLY, "slow", 1, &body(&[])), 10_001);
    assert!(c.events().is_empty());
    assert_eq!(counter(&m, "unmatched_requests"), 1);
    assert_eq!(counter(&m, "unmatched_responses"), 1);
    // A call waiting at the end of the capture is counted, not published.
    c.send(true, &strict(CALL, "last", 2, &body(&[])), 10_002);
    c.tcp.flush(&mut c.out);
    assert!(c.events().is_empty());
    assert_eq!(counter(&m, "unmatched_requests"), 2);
}

#[test]
fn a_fin_publishes_the_waiting_call() {
    let (mut c, _) = session(settings_with(|_| {}, false));
    c.send(true, &strict(ONEWAY, "zip", 1, &body(&[])), 0);
    let hdr = TcpHeader {
        src_port: 40000,
        dst_port: 9090,
        seq: 1000 + 17,
        ack: 0,
        flags: TcpHeader::ACK | TcpHeader::FIN,
    };
    let tuple = crate::protos::testing::tuple("10.0.0.1", 40000, "10.0.0.2", 9090);
    c.tcp.process(&mut c.out, Ts(2_000_000), tuple, &hdr, &[]);
    let evs = c.events();
    assert_eq!(evs.len(), 1, "{evs:?}");
    assert_eq!(evs[0]["query"], "zip()");
}

#[test]
fn capture_reply_off_reads_replies_to_their_header() {
    let (mut c, _) = session(settings_with(|cfg| cfg.capture_reply = false, true));
    let reply = strict(REPLY, "get", 1, &body(&[strf(0, &[b'x'; 3000])]));
    c.send(true, &strict(CALL, "get", 1, &body(&[])), 0);
    // The reply's first segment, then the rest: ignored until the next call.
    c.send(false, &reply[..1000], 1);
    c.send(false, &reply[1000..], 2);
    c.send(true, &strict(CALL, "get", 2, &body(&[])), 3);
    c.send(false, &strict(REPLY, "get", 2, &body(&[strf(0, b"y")])), 4);
    let evs = c.events();
    assert_eq!(evs.len(), 2, "{evs:?}");
    for e in &evs {
        assert_eq!(e["thrift"]["return_value"], "");
        assert_eq!(e["response"], "");
        // The bytes reported are the header's.
        assert_eq!(e["destination"]["bytes"], 4 + 4 + 3 + 4);
    }
}

#[test]
fn framed_transport_and_options() {
    let (mut c, _) = session(settings_with(
        |cfg| {
            cfg.transport_type = "framed".into();
            cfg.string_max_size = 4;
            cfg.obfuscate_strings = false;
        },
        true,
    ));
    let call = framed(&strict(CALL, "echo", 1, &body(&[strf(1, b"hello world")])));
    let reply = framed(&strict(REPLY, "echo", 1, &body(&[strf(0, b"hello world")])));
    c.send(true, &call, 0);
    c.send(false, &reply, 1);
    let evs = c.events();
    assert_eq!(evs[0]["query"], "echo(1: \"hell...\")");
    assert_eq!(evs[0]["response"], "\"hell...\"");
    assert_eq!(evs[0]["source"]["bytes"], call.len() - 4);
    // Unframed traffic on a framed analyzer makes no transaction (nor the reverse).
    let (mut c, _) = session(settings_with(
        |cfg| cfg.transport_type = "framed".into(),
        true,
    ));
    c.send(true, &strict(CALL, "add", 1, &body(&[i32f(1, 1)])), 0);
    c.send(false, &strict(REPLY, "add", 1, &body(&[i32f(0, 1)])), 1);
    assert!(c.events().is_empty());
    let (mut c, m) = session(settings_with(|_| {}, true));
    c.send(true, &call, 0);
    c.send(false, &reply, 1);
    assert!(c.events().is_empty());
    let _ = m;
}

#[test]
fn compact_protocol_through_the_analyzer() {
    let (mut c, _) = session(settings_with(
        |cfg| cfg.protocol_type = "compact".into(),
        false,
    ));
    c.send(true, &compact_call(), 0);
    c.send(
        false,
        &[
            0x82, 0x41, 0x05, 0x03, b'a', b'd', b'd', 0x05, 0x00, 0x03, 0x00,
        ],
        1,
    );
    let evs = c.events();
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0]["query"], "add(1: 1, 2: 4294967294)");
    assert_eq!(evs[0]["thrift"]["return_value"], "4294967294");
}

#[test]
fn idl_files_name_arguments_exceptions_and_the_service() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/thrift");
    let calc = dir.join("calc.thrift").display().to_string();
    let (mut c, _) = session(settings_with(|cfg| cfg.idl_files = vec![calc], false));
    c.send(
        true,
        &strict(CALL, "add", 1, &body(&[i32f(1, 1), i32f(2, 2), i32f(3, 3)])),
        0,
    );
    let overflow = field(12, 1, &body(&[i32f(1, 7), strf(2, b"big")]));
    c.send(false, &strict(REPLY, "add", 1, &body(&[overflow])), 1);
    c.send(true, &strict(CALL, "info", 2, &body(&[i32f(1, 9)])), 2);
    c.send(false, &strict(REPLY, "info", 2, &body(&[i32f(0, 9)])), 3);
    let evs = c.events();
    assert_eq!(evs[0]["query"], "add(left: 1, right: 2, 3: 3)");
    assert_eq!(evs[0]["path"], "Calc");
    assert_eq!(evs[0]["thrift"]["service"], "Calc");
    assert_eq!(
        evs[0]["thrift"]["exceptions"],
        "(overflow: (1: 7, 2: \"big\"))"
    );
    assert_eq!(evs[1]["query"], "info(key: 9)");
    assert_eq!(evs[1]["thrift"]["service"], "Base");
}

#[test]
fn a_gap_in_a_reply_publishes_it_with_a_note() {
    let (mut c, m) = session(settings_with(|_| {}, false));
    let reply = strict(REPLY, "get", 1, &body(&[i32f(1, 5), strf(0, &[b'x'; 100])]));
    c.send(true, &strict(CALL, "get", 1, &body(&[])), 0);
    c.send(false, &reply[..30], 1);
    c.skip(false, 20);
    c.send(false, &reply[50..], 2);
    c.acknowledge(false, 3);
    let evs = c.events();
    assert_eq!(evs.len(), 1, "{evs:?}");
    assert_eq!(evs[0]["error"]["message"], event::PACKET_LOSS);
    assert_eq!(evs[0]["thrift"]["return_value"], "");
    assert_eq!(evs[0]["status"], "OK");
    // A gap in a call drops the connection's state: the call is counted, not published.
    let (mut c, m2) = session(settings_with(|_| {}, false));
    let call = strict(CALL, "put", 1, &body(&[strf(1, &[b'x'; 100])]));
    c.send(true, &call[..30], 0);
    c.skip(true, 20);
    c.send(true, &call[50..], 1);
    c.acknowledge(true, 2);
    assert!(c.events().is_empty());
    let _ = (m, m2);
}

#[test]
fn broken_streams_are_dropped_and_parsing_restarts() {
    let (mut c, m) = session(settings_with(|_| {}, false));
    // An unknown field type: the direction is dropped and counted.
    c.send(true, &strict(CALL, "m", 1, &field(9, 1, &[0; 4])), 0);
    assert_eq!(counter(&m, "parse_errors"), 1);
    c.send(true, &strict(CALL, "m", 2, &body(&[])), 1);
    c.send(false, &strict(REPLY, "m", 2, &body(&[])), 2);
    assert_eq!(c.events().len(), 1);
    // A stream that never completes is dropped at Packetbeat's cap.
    let mut huge = strict(CALL, "m", 3, &[]);
    huge.extend(field(11, 1, &(u32::MAX >> 1).to_be_bytes()));
    c.send(true, &huge, 3);
    let chunk = vec![b'x'; 1 << 20];
    for i in 0..=(TCP_MAX_DATA_IN_STREAM >> 20) as i64 {
        c.send(true, &chunk, 4 + i);
    }
    assert_eq!(counter(&m, "streams_too_large"), 1);
}

#[test]
fn bad_options_name_their_key() {
    let build = |yaml: &str| {
        crate::protos::app::build::<Thrift>(
            &Default::default(),
            &crate::config::types::ProtocolSection {
                kind: "thrift".into(),
                options: serde_yaml::from_str(yaml).unwrap(),
                key: "packetbeat.protocols.0".into(),
            },
            "pb.yml",
        )
        .err()
        .map(|e| e.0)
    };
    assert_eq!(
        build("transport_type: http").unwrap(),
        "Transport type `http` not known accessing 'packetbeat.protocols.0.transport_type' (source:'pb.yml')"
    );
    assert_eq!(
        build("protocol_type: json").unwrap(),
        "Protocol type `json` not known accessing 'packetbeat.protocols.0.protocol_type' (source:'pb.yml')"
    );
    assert!(build("idl_files: [/nonexistent.thrift]")
        .unwrap()
        .starts_with("Error parsing Thrift IDL file /nonexistent.thrift: "));
    assert!(build("string_max_size: -1").is_some());
    assert_eq!(
        build("protocol_type: compact\ntransport_type: framed"),
        None
    );
    let m = crate::protos::app::build::<Thrift>(
        &Default::default(),
        &crate::config::types::ProtocolSection {
            kind: "thrift".into(),
            options: serde_yaml::from_str("{}").unwrap(),
            key: "packetbeat.protocols.0".into(),
        },
        "pb.yml",
    )
    .ok()
    .unwrap();
    assert_eq!(m.tcp_ports(), &[9090]);
}

#[test]
fn ipv6_connections() {
    let module = Arc::new(Module::new(settings_with(|_| {}, false), &common(false)));
    let mut tcp = crate::protos::tcp::Tcp::new(&crate::protos::ProtocolModules {
        modules: vec![module as Arc<dyn ProtocolModule>],
        reporters: Default::default(),
    });
    let mut out = crate::publish::EventSink::new();
    let cli = crate::protos::testing::tuple("::1", 50000, "::1", 9090);
    let srv = crate::protos::testing::tuple("::1", 9090, "::1", 50000);
    let call = strict(CALL, "ping", 1, &body(&[]));
    let hdr = |src, dst, seq| TcpHeader {
        src_port: src,
        dst_port: dst,
        seq,
        ack: 0,
        flags: TcpHeader::ACK,
    };
    tcp.process(&mut out, Ts(0), cli, &hdr(50000, 9090, 1), &call);
    let reply = strict(REPLY, "ping", 1, &body(&[]));
    tcp.process(&mut out, Ts(1_000_000), srv, &hdr(9090, 50000, 1), &reply);
    let evs = out.take();
    assert_eq!(evs.len(), 1);
    let e = crate::protos::testing::flat(evs.into_iter().next().unwrap());
    assert_eq!(e["client.ip"], Value::from("::1"));
    assert_eq!(e["network.type"], Value::from("ipv6"));
    assert_eq!(e["query"], Value::from("ping()"));
}
