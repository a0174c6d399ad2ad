//! The AMQP analyzer: frames and methods split at every byte, field tables of every type,
//! content header properties, broken input, and sessions through the real TCP layer
//! (pairing, publish and deliver, get-empty, closes with errors, expiry, options).

use super::fields::{format_timestamp, get_table, TableError};
use super::parser::{Fail, Message, ParserConfig, Step, Stream, FRAME_END};
use super::*;
use crate::common::Ts;
use crate::protos::app::Module;
use crate::protos::testing::{flat, TcpSession};
use crate::protos::ProtocolModule;
use crate::publish::Map;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;

// ---- building frames ----

fn frame(kind: u8, channel: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![kind];
    v.extend(channel.to_be_bytes());
    v.extend((payload.len() as u32).to_be_bytes());
    v.extend(payload);
    v.push(FRAME_END);
    v
}

fn method(class: u16, id: u16, args: &[u8]) -> Vec<u8> {
    let mut p = class.to_be_bytes().to_vec();
    p.extend(id.to_be_bytes());
    p.extend(args);
    frame(1, 1, &p)
}

fn header(size: u64, props: &[u8]) -> Vec<u8> {
    let mut p = 60u16.to_be_bytes().to_vec();
    p.extend([0, 0]);
    p.extend(size.to_be_bytes());
    p.extend(props);
    frame(2, 1, &p)
}

fn body(b: &[u8]) -> Vec<u8> {
    frame(3, 1, b)
}

fn sh(v: &str) -> Vec<u8> {
    let mut o = vec![v.len() as u8];
    o.extend(v.as_bytes());
    o
}

fn table(members: &[u8]) -> Vec<u8> {
    let mut o = (members.len() as u32).to_be_bytes().to_vec();
    o.extend(members);
    o
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// A content-type-only property list.
fn text_plain() -> Vec<u8> {
    cat(&[&[0x80, 0x00], &sh("text/plain")])
}

fn publish(exchange: &str, key: &str) -> Vec<u8> {
    method(60, 40, &cat(&[&[0, 0], &sh(exchange), &sh(key), &[0]]))
}

fn queue_declare(name: &str, flags: u8, args: &[u8]) -> Vec<u8> {
    method(50, 10, &cat(&[&[0, 0], &sh(name), &[flags], &table(args)]))
}

fn declare_ok(name: &str, messages: u32, consumers: u32) -> Vec<u8> {
    method(
        50,
        11,
        &cat(&[&sh(name), &messages.to_be_bytes(), &consumers.to_be_bytes()]),
    )
}

fn close(class: u16, code: u16, text: &str, c: u16, m: u16) -> Vec<u8> {
    let id = if class == 10 { 50 } else { 40 };
    method(
        class,
        id,
        &cat(&[
            &code.to_be_bytes(),
            &sh(text),
            &c.to_be_bytes(),
            &m.to_be_bytes(),
        ]),
    )
}

fn close_ok(class: u16) -> Vec<u8> {
    method(class, if class == 10 { 51 } else { 41 }, &[])
}

fn deliver(tag: &str, dtag: u64, exchange: &str, key: &str) -> Vec<u8> {
    method(
        60,
        60,
        &cat(&[&sh(tag), &dtag.to_be_bytes(), &[0], &sh(exchange), &sh(key)]),
    )
}

// ---- the parser alone ----

/// Feeds `chunks` as segments, as the connection does: a stream that resets or fails is
/// started afresh by the next segment.
fn run(cfg: &ParserConfig, chunks: &[&[u8]]) -> (Vec<Message>, Vec<Step>) {
    let mut st: Option<Stream> = None;
    let (mut msgs, mut ends) = (Vec::new(), Vec::new());
    for (i, c) in chunks.iter().enumerate() {
        let stream = st.get_or_insert_with(|| Stream::new(Ts(i as i64)));
        stream.append(c);
        loop {
            let step = stream.step(cfg);
            match step {
                Step::Complete => msgs.push(stream.msg.clone()),
                Step::Wait => break,
                _ => {
                    ends.push(step);
                    st = None;
                    break;
                }
            }
        }
    }
    (msgs, ends)
}

/// What a message means, without when it was seen.
fn meaning(m: &Message) -> Message {
    Message {
        ts: Ts(0),
        ..m.clone()
    }
}

fn split_everywhere(cfg: &ParserConfig, whole: &[u8]) {
    let (want, _) = run(cfg, &[whole]);
    assert!(!want.is_empty(), "the whole input gives messages");
    let want: Vec<_> = want.iter().map(meaning).collect();
    for i in 1..whole.len() {
        let (got, ends) = run(cfg, &[&whole[..i], &whole[i..]]);
        let got: Vec<_> = got.iter().map(meaning).collect();
        assert_eq!(got, want, "split at {i}");
        assert!(
            ends.iter().all(|e| *e == Step::Reset),
            "split at {i}: {ends:?}"
        );
    }
}

/// The capture's queue.declare (amqp_channel_error.pcap): `my_queue`, exclusive.
fn captured_queue_declare() -> Vec<u8> {
    queue_declare("my_queue", 0x04, &[])
}

#[test]
fn captured_methods_split_at_every_byte() {
    let cfg = ParserConfig::default();
    let qd = captured_queue_declare();
    assert_eq!(qd.len(), 28, "as on the wire");
    split_everywhere(&cfg, &qd);
    split_everywhere(&cfg, &declare_ok("my_queue", 0, 0));
    let nf = close(
        20,
        404,
        "NOT_FOUND - no exchange 'plop' in vhost '/'",
        50,
        20,
    );
    assert_eq!(nf.len(), 62);
    split_everywhere(&cfg, &nf);
    // The delivery of amqp_emit_receive.pcap: method, header and body in one segment.
    let d = cat(&[
        &deliver("ctag-1", 1, "logs", ""),
        &header(5, &text_plain()),
        &body(b"hello"),
    ]);
    split_everywhere(&cfg, &d);
    // A body over three frames.
    let p = cat(&[
        &publish("", "hello"),
        &header(11, &text_plain()),
        &body(b"hel"),
        &body(b"lo wo"),
        &body(b"rld"),
    ]);
    split_everywhere(&cfg, &p);
    // Two messages in one segment, the protocol header first.
    let two = cat(&[
        b"AMQP\x00\x00\x09\x01",
        &qd,
        &method(60, 70, &cat(&[&[0, 0], &sh("q"), &[1]])),
    ]);
    split_everywhere(&cfg, &two);
}

#[test]
fn methods_read_as_packetbeat_reads_them() {
    let cfg = ParserConfig::default();
    let (m, _) = run(&cfg, &[&captured_queue_declare()]);
    assert_eq!(m[0].method, "queue.declare");
    assert!(m[0].is_request);
    assert_eq!(m[0].request, "my_queue");
    assert_eq!(m[0].body_size, 16);
    assert_eq!(
        Value::Object(m[0].fields.clone().unwrap()),
        json!({"queue": "my_queue", "passive": false, "durable": false, "exclusive": true,
               "auto-delete": false, "no-wait": false})
    );
    let nf = close(
        20,
        404,
        "NOT_FOUND - no exchange 'plop' in vhost '/'",
        50,
        20,
    );
    let (m, _) = run(&cfg, &[&nf]);
    assert_eq!(m[0].method, "channel.close");
    assert_eq!(
        Value::Object(m[0].fields.clone().unwrap()),
        json!({"reply-code": 404, "reply-text": "NOT_FOUND - no exchange 'plop' in vhost '/'",
               "class-id": 50, "method-id": 20})
    );
    // exchange.declare with an empty type is a direct exchange.
    let ed = method(
        40,
        10,
        &cat(&[&[0, 0], &sh("x"), &sh(""), &[0x12], &table(&[])]),
    );
    let (m, _) = run(&cfg, &[&ed]);
    let f = m[0].fields.clone().unwrap();
    assert_eq!(f["exchange-type"], "direct");
    assert_eq!(f["no-wait"], true);
    assert_eq!(f["durable"], true);
    // basic.get-ok carries its message: complete with its body.
    let g = cat(&[
        &method(
            60,
            71,
            &cat(&[
                &7u64.to_be_bytes(),
                &[1],
                &sh("ex"),
                &sh("rk"),
                &3u32.to_be_bytes(),
            ]),
        ),
        &header(2, &text_plain()),
        &body(b"hi"),
    ]);
    let (m, _) = run(&cfg, &[&g]);
    let f = m[0].fields.clone().unwrap();
    assert_eq!(m[0].method, "basic.get-ok");
    assert_eq!(
        (f["delivery-tag"].clone(), f["redelivered"].clone()),
        (json!(7), json!(true))
    );
    assert_eq!(
        (f["exchange"].clone(), f["message-count"].clone()),
        (json!("ex"), json!(3))
    );
    assert_eq!(m[0].body, b"hi");
    // A method that says nothing new keeps the message's fields, as Packetbeat's does.
    let (m, _) = run(
        &cfg,
        &[&cat(&[&captured_queue_declare(), &method(50, 21, &[])])],
    );
    assert_eq!(m.len(), 2);
    assert_eq!(m[1].method, "queue.declare");
    assert_eq!(m[1].body_size, 0);
}

#[test]
fn a_body_restarts_with_each_method() {
    let cfg = ParserConfig::default();
    let two = cat(&[
        &deliver("t", 1, "", "q"),
        &header(5, &text_plain()),
        &body(b"hello"),
        &deliver("t", 2, "", "q"),
        &header(5, &text_plain()),
        &body(b"world"),
    ]);
    let (m, _) = run(&cfg, &[&two]);
    assert_eq!(m.len(), 2);
    assert_eq!(m[0].body, b"hello");
    assert_eq!(m[1].body, b"world");
}

#[test]
fn hidden_connection_methods_end_the_stream() {
    let start_ok = method(
        10,
        11,
        &cat(&[
            &table(&[]),
            &sh("PLAIN"),
            &5u32.to_be_bytes(),
            b"\0a\0b\0",
            &sh("en_US"),
        ]),
    );
    let (m, ends) = run(
        &ParserConfig::default(),
        &[&cat(&[&start_ok, &captured_queue_declare()])],
    );
    assert!(
        m.is_empty(),
        "what follows in the segment is lost, as in Packetbeat"
    );
    assert_eq!(ends, vec![Step::Reset]);
    let shown = ParserConfig {
        hide_connection_information: false,
        ..ParserConfig::default()
    };
    let (m, _) = run(&shown, &[&cat(&[&start_ok, &captured_queue_declare()])]);
    assert_eq!(m.len(), 2);
    assert_eq!(m[0].fields.as_ref().unwrap()["mechanism"], "PLAIN");
    assert_eq!(m[0].fields.as_ref().unwrap()["locale"], "en_US");
    assert!(!m[0].is_request);
}

#[test]
fn heartbeats_and_broken_frames() {
    let cfg = ParserConfig::default();
    // A heartbeat read first ends the stream quietly.
    let (m, ends) = run(&cfg, &[&frame(8, 0, &[])]);
    assert!(m.is_empty());
    assert_eq!(ends, vec![Step::Reset]);
    // One between a method and its content is read over.
    let p = cat(&[
        &publish("", "q"),
        &frame(8, 0, &[]),
        &header(1, &text_plain()),
        &body(b"x"),
    ]);
    assert_eq!(run(&cfg, &[&p]).0.len(), 1);
    // No frame end.
    let mut bad = captured_queue_declare();
    *bad.last_mut().unwrap() = 0;
    assert_eq!(
        run(&cfg, &[&bad]).1,
        vec![Step::Fail(Fail::Drop("missing frame end octet"))]
    );
    assert_eq!(
        run(&cfg, &[&frame(5, 0, &[1])]).1,
        vec![Step::Fail(Fail::Drop("unknown frame type"))]
    );
    assert_eq!(
        run(&cfg, &[&method(60, 99, &[])]).1,
        vec![Step::Fail(Fail::Drop("unknown or not supported method"))]
    );
    // Arguments shorter than the method's: Packetbeat's recovered panic.
    assert_eq!(
        run(&cfg, &[&method(50, 10, &[0, 0, 1, b'a'])]).1,
        vec![Step::Fail(Fail::Panic)]
    );
    assert_eq!(
        run(&cfg, &[&method(60, 80, &[0; 4])]).1,
        vec![Step::Fail(Fail::Panic)]
    );
    // A short string longer than its frame: Packetbeat's error, the stream is dropped.
    let long_name = method(50, 10, &[0, 0, 200, b'a', b'b', 0]);
    assert!(matches!(
        run(&cfg, &[&long_name]).1[..],
        [Step::Fail(Fail::Drop(_))]
    ));
    // A header frame before any method: properties have nowhere to go (Packetbeat's panic).
    assert_eq!(
        run(&cfg, &[&header(1, &text_plain())]).1,
        vec![Step::Fail(Fail::Panic)]
    );
    // A frame declaring more than arrives waits.
    let mut big = frame(1, 0, &[]);
    big[3..7].copy_from_slice(&1_000_000u32.to_be_bytes());
    let (m, ends) = run(&cfg, &[&big]);
    assert!(m.is_empty() && ends.is_empty());
}

#[test]
fn no_input_panics() {
    // Deterministic pseudo-random input and every prefix of real frames with bytes flipped.
    let cfg = ParserConfig {
        hide_connection_information: false,
        ..ParserConfig::default()
    };
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..2000 {
        let mut buf = Vec::new();
        for _ in 0..(x % 64) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf.push(x as u8);
        }
        run(&cfg, &[&buf]);
    }
    let real = cat(&[
        &captured_queue_declare(),
        &publish("ex", "k"),
        &header(3, &cat(&[&[0xff, 0xf8], &sh("a")])),
        &body(b"abc"),
    ]);
    for i in 0..real.len() {
        for v in [0u8, 1, 0x7f, 0xff] {
            let mut b = real.clone();
            b[i] = v;
            run(&cfg, &[&b]);
        }
    }
}

// ---- field tables ----

#[test]
fn tables_of_every_type() {
    let mut t = Vec::new();
    let mut put = |name: &str, v: &[u8]| {
        t.extend(sh(name));
        t.extend(v);
    };
    put("t", &[b't', 1]);
    put("b", &[b'b', 0xff]);
    put("B", &[b'B', 0xff]);
    put("U", &cat(&[b"U", &(-2i16).to_be_bytes()]));
    put("u", &cat(&[b"u", &65535u16.to_be_bytes()]));
    put("I", &cat(&[b"I", &(-3i32).to_be_bytes()]));
    put("i", &cat(&[b"i", &u32::MAX.to_be_bytes()]));
    put("L", &cat(&[b"L", &(-4i64).to_be_bytes()]));
    put("l", &cat(&[b"l", &u64::MAX.to_be_bytes()]));
    put("f", &cat(&[b"f", &1.1f32.to_be_bytes()]));
    put("d", &cat(&[b"d", &2.5f64.to_be_bytes()]));
    put("D", &cat(&[b"D", &[2], &12345u32.to_be_bytes()]));
    put("s", &cat(&[b"s", &sh("short")]));
    put("S", &cat(&[b"S", &4u32.to_be_bytes(), b"long"]));
    put(
        "A",
        &cat(&[b"A", &table(&cat(&[b"s", &sh("x"), b"t", &[0]]))]),
    );
    put("T", &cat(&[b"T", &1_453_753_189u64.to_be_bytes()]));
    put("F", &cat(&[b"F", &table(&cat(&[&sh("in"), b"V"]))]));
    put("V", b"V");
    put("x", &cat(&[b"x", &3u32.to_be_bytes(), &[1, 2, 3]]));
    let data = table(&t);
    let (next, m) = get_table(&data, 0).unwrap();
    assert_eq!(next, data.len());
    assert_eq!(
        Value::Object(m.unwrap()),
        json!({"t": true, "b": -1, "B": 255, "U": -2, "u": 65535, "I": -3, "i": 4294967295u32,
               "L": -4, "l": u64::MAX, "f": 1.1, "d": 2.5, "D": "123.45", "s": "short",
               "S": "long", "A": {"0": "x", "1": false}, "T": "January 25 20:19:49 2016",
               "F": {"in": null}, "V": null, "x": "[1, 2, 3]"})
    );
    // An empty table is absent.
    assert_eq!(get_table(&table(&[]), 0).unwrap(), (4, None));
    // A size past the end, an unknown type, a value cut short.
    assert_eq!(get_table(&[0, 0, 0, 9, 1], 0), Err(TableError::Invalid));
    assert_eq!(
        get_table(&table(&cat(&[&sh("k"), b"?"])), 0),
        Err(TableError::Invalid)
    );
    assert_eq!(
        get_table(&table(&cat(&[&sh("k"), b"I", &[1]])), 0),
        Err(TableError::Panic)
    );
    assert_eq!(get_table(&[0, 0], 0), Err(TableError::Panic));
    // Nesting is bounded.
    let mut deep = table(&cat(&[&sh("k"), b"V"]));
    for _ in 0..100 {
        deep = table(&cat(&[&sh("k"), b"F", &deep]));
    }
    assert_eq!(get_table(&deep, 0), Err(TableError::Invalid));
}

#[test]
fn decimals_and_timestamps_as_packetbeat_writes_them() {
    let dec = |scale: u8, v: u32| {
        let t = table(&cat(&[&sh("k"), b"D", &[scale], &v.to_be_bytes()]));
        get_table(&t, 0).unwrap().1.unwrap()["k"].clone()
    };
    assert_eq!(dec(0, 42), "42");
    assert_eq!(
        dec(3, 42),
        "42",
        "more scale than digits: no point, as in Packetbeat"
    );
    assert_eq!(dec(2, 42), ".42");
    assert_eq!(format_timestamp(1_451_606_400), "January  1 00:00:00 2016");
    assert_eq!(format_timestamp(0), "January  1 00:00:00 1970");
    assert_eq!(format_timestamp(-1), "December 31 23:59:59 1969");
    format_timestamp(i64::MAX);
    format_timestamp(i64::MIN);
}

#[test]
fn content_header_properties() {
    let cfg = ParserConfig::default();
    let props = cat(&[
        &[0xff, 0xf8],
        &sh("application/json"),
        &sh("gzip"),
        &table(&cat(&[&sh("h"), b"s", &sh("v")])),
        &[2, 7],
        &sh("corr"),
        &sh("reply"),
        &sh("60000"),
        &sh("mid"),
        &1_453_753_189u64.to_be_bytes(),
        &sh("kind"),
        &sh("guest"),
        &sh("app"),
    ]);
    let p = cat(&[&publish("", "q"), &header(1, &props), &body(b"x")]);
    let (m, _) = run(&cfg, &[&p]);
    let f = Value::Object(m[0].fields.clone().unwrap());
    assert_eq!(
        f,
        json!({"routing-key": "q", "mandatory": false, "immediate": false,
               "content-type": "application/json", "content-encoding": "gzip",
               "headers": {"h": "v"}, "delivery-mode": "persistent", "priority": 7,
               "correlation-id": "corr", "reply-to": "reply", "expiration": "60000",
               "message-id": "mid", "timestamp": "January 25 20:19:49 2016", "type": "kind",
               "user-id": "guest", "app-id": "app"})
    );
    // parse_headers off: only the size is read.
    let off = ParserConfig {
        parse_headers: false,
        ..cfg
    };
    let (m, _) = run(&off, &[&p]);
    assert!(!m[0].fields.as_ref().unwrap().contains_key("content-type"));
    // A property cut short drops the stream.
    let cut = cat(&[&publish("", "q"), &header(1, &[0x80, 0, 9, b'a'])]);
    assert!(matches!(
        run(&cfg, &[&cut]).1[..],
        [Step::Fail(Fail::Drop(_))]
    ));
}

// ---- sessions ----

fn common(send: bool) -> CommonOptions {
    CommonOptions {
        ports: vec![5672],
        send_request: send,
        send_response: send,
        transaction_timeout: Duration::from_secs(10),
    }
}

fn session_with(cfg: AmqpConfig, send: bool) -> (TcpSession, Arc<Module<Amqp>>) {
    let module = Arc::new(Module::new(
        Amqp::configure(&common(send), cfg).unwrap(),
        &common(send),
    ));
    (TcpSession::new(module.clone(), 5672), module)
}

fn session() -> (TcpSession, Arc<Module<Amqp>>) {
    session_with(AmqpConfig::default(), false)
}

fn events(s: &mut TcpSession) -> Vec<Map> {
    s.out.take().into_iter().map(flat).collect()
}

fn counter(m: &Module<Amqp>, name: &str) -> u64 {
    m.counters()
        .unwrap()
        .snapshot()
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap()
        .1
}

#[test]
fn request_and_response_pair() {
    let (mut s, _) = session();
    // The stream the protocol header opened goes on: the declare's time is the header's, as
    // in Packetbeat.
    s.send(true, b"AMQP\x00\x00\x09\x01", 1);
    s.send(true, &captured_queue_declare(), 2);
    s.send(false, &declare_ok("my_queue", 0, 0), 3);
    let ev = events(&mut s);
    assert_eq!(ev.len(), 1);
    let e = &ev[0];
    assert_eq!(e["method"], "queue.declare");
    assert_eq!(e["event.action"], "amqp.queue.declare");
    assert_eq!(e["status"], "OK");
    assert_eq!(e["type"], "amqp");
    assert_eq!(e["source.port"], 40000);
    assert_eq!(e["source.bytes"], 28);
    assert_eq!(e["destination.bytes"], 29);
    assert_eq!(e["event.duration"], 2_000_000);
    assert_eq!(e["amqp.exclusive"], true);
    assert_eq!(e["amqp.consumer-count"], 0);
    assert!(!e.contains_key("request"));
}

#[test]
fn server_close_with_an_error() {
    let (mut s, _) = session();
    s.send(true, &captured_queue_declare(), 0);
    s.send(false, &declare_ok("my_queue", 0, 0), 1);
    // queue.bind to a missing exchange: the server closes the channel.
    let bind = method(
        50,
        20,
        &cat(&[
            &[0, 0],
            &sh("my_queue"),
            &sh("plop"),
            &sh(""),
            &[0],
            &table(&[]),
        ]),
    );
    s.send(true, &bind, 2);
    s.send(
        false,
        &close(
            20,
            404,
            "NOT_FOUND - no exchange 'plop' in vhost '/'",
            50,
            20,
        ),
        3,
    );
    s.send(true, &close_ok(20), 4);
    let ev = events(&mut s);
    assert_eq!(ev.len(), 2);
    let e = &ev[1];
    assert_eq!(e["method"], "channel.close");
    assert_eq!(e["status"], "Error");
    assert_eq!(e["source.port"], 5672, "the server sent the close");
    assert_eq!(e["amqp.reply-code"], 404);
    assert_eq!(
        e["amqp.reply-text"],
        "NOT_FOUND - no exchange 'plop' in vhost '/'"
    );
    assert_eq!(e["destination.bytes"], 12);
}

#[test]
fn a_close_error_never_answered_expires_with_a_note() {
    let (mut s, _) = session();
    s.send(false, &close(10, 320, "CONNECTION_FORCED", 0, 0), 0);
    s.send(true, &captured_queue_declare(), 5_000);
    // The declare replaced the close (counted), so a fresh close must be left waiting.
    let ev = events(&mut s);
    assert!(ev.is_empty());
    s.send(false, &close(20, 406, "PRECONDITION_FAILED", 50, 10), 6_000);
    s.send(true, &captured_queue_declare(), 17_000);
    let ev = events(&mut s);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["method"], "channel.close");
    assert_eq!(ev[0]["status"], "Error");
    assert_eq!(
        ev[0]["error.message"],
        "Close-ok method not received by sender"
    );
    // At the capture's end the last one is reported too.
    s.send(false, &close(20, 404, "NOT_FOUND", 50, 10), 18_000);
    s.tcp.flush(&mut s.out);
    let ev = events(&mut s);
    assert_eq!(ev.len(), 1);
    assert_eq!(
        ev[0]["error.message"],
        "Close-ok method not received by sender"
    );
}

#[test]
fn closes_without_an_error_are_hidden() {
    let (mut s, m) = session();
    s.send(true, &close(20, 200, "", 0, 0), 0);
    s.send(false, &close_ok(20), 1);
    assert!(events(&mut s).is_empty());
    assert_eq!(counter(&m, "unmatched_responses"), 1);
    let (mut s, _) = session_with(
        AmqpConfig {
            hide_connection_information: false,
            ..AmqpConfig::default()
        },
        false,
    );
    s.send(true, &close(10, 200, "kthxbai", 0, 0), 0);
    s.send(false, &close_ok(10), 1);
    let ev = events(&mut s);
    assert_eq!(ev[0]["method"], "connection.close");
    assert_eq!(ev[0]["status"], "OK");
}

#[test]
fn connection_information_when_asked_for() {
    let (mut s, _) = session_with(
        AmqpConfig {
            hide_connection_information: false,
            ..AmqpConfig::default()
        },
        true,
    );
    let props = table(&cat(&[
        &sh("product"),
        b"S",
        &8u32.to_be_bytes(),
        b"RabbitMQ",
    ]));
    let start = method(
        10,
        10,
        &cat(&[
            &[0, 9],
            &props,
            &5u32.to_be_bytes(),
            b"PLAIN",
            &5u32.to_be_bytes(),
            b"en_US",
        ]),
    );
    s.send(true, b"AMQP\x00\x00\x09\x01", 0);
    s.send(false, &start, 1);
    let start_ok = method(
        10,
        11,
        &cat(&[
            &table(&[]),
            &sh("PLAIN"),
            &5u32.to_be_bytes(),
            b"\0a\0b\0",
            &sh("en_US"),
        ]),
    );
    s.send(true, &start_ok, 2);
    s.send(false, &method(10, 30, &[0, 0, 0, 2, 0, 0, 2, 0x44]), 3);
    s.send(true, &method(10, 31, &[0xff, 0xff, 0, 2, 0, 0, 0, 10]), 4);
    s.send(true, &method(10, 40, &cat(&[&sh("/"), &[0, 0]])), 5);
    s.send(false, &method(10, 41, &[0]), 6);
    let ev = events(&mut s);
    assert_eq!(ev.len(), 3);
    assert_eq!(ev[0]["method"], "connection.start");
    assert_eq!(ev[0]["source.port"], 5672);
    assert_eq!(ev[0]["amqp.server-properties.product"], "RabbitMQ");
    assert_eq!(ev[0]["amqp.mechanism"], "PLAIN");
    assert_eq!(ev[0]["amqp.version-minor"], 9);
    assert_eq!(ev[0]["request"], "connection.start");
    assert_eq!(ev[0]["response"], "OK");
    assert_eq!(ev[1]["method"], "connection.tune");
    assert_eq!(ev[1]["amqp.frame-max"], 131072);
    assert_eq!(ev[1]["amqp.heartbeat"], 10);
    assert_eq!(ev[2]["amqp.virtual-host"], "/");
}

#[test]
fn publish_over_several_body_frames() {
    let (mut s, _) = session_with(AmqpConfig::default(), true);
    s.send(true, &publish("logs", ""), 0);
    s.send(true, &header(10, &text_plain()), 1);
    s.send(true, &body(b"hello"), 2);
    s.send(true, &body(b"world"), 3);
    let ev = events(&mut s);
    assert_eq!(ev.len(), 1);
    let e = &ev[0];
    assert_eq!(e["method"], "basic.publish");
    assert_eq!(e["source.bytes"], 10);
    assert!(!e.contains_key("destination.bytes"));
    assert!(!e.contains_key("event.duration"));
    assert_eq!(e["request"], "helloworld");
    assert_eq!(e["response"], "");
    assert_eq!(e["amqp.exchange"], "logs");
    assert_eq!(e["amqp.content-type"], "text/plain");
}

#[test]
fn bodies_cut_at_max_body_length_and_binary_bodies() {
    let (mut s, _) = session_with(
        AmqpConfig {
            max_body_length: 4,
            ..AmqpConfig::default()
        },
        true,
    );
    s.send(
        true,
        &cat(&[
            &publish("", "q"),
            &header(10, &text_plain()),
            &body(b"helloworld"),
        ]),
        0,
    );
    let bin = cat(&[&[0x80, 0], &sh("application/octet-stream")]);
    s.send(
        true,
        &cat(&[&publish("", "q"), &header(2, &bin), &body(&[1, 200])]),
        1,
    );
    let ev = events(&mut s);
    assert_eq!(ev[0]["request"], "hell [...]");
    assert_eq!(ev[1]["request"], "1 200");
}

#[test]
fn deliveries_and_gets() {
    let (mut s, _) = session_with(AmqpConfig::default(), true);
    s.send(true, b"AMQP\x00\x00\x09\x01", 0);
    // A consumer's delivery: on the connection's orientation, the body's size as bytes.
    s.send(
        false,
        &cat(&[
            &deliver("ctag-1", 1, "logs", ""),
            &header(5, &text_plain()),
            &body(b"hello"),
        ]),
        0,
    );
    let ev = events(&mut s);
    assert_eq!(ev.len(), 1);
    let e = &ev[0];
    assert_eq!(e["method"], "basic.deliver");
    assert_eq!(e["source.port"], 40000);
    assert_eq!(e["destination.bytes"], 5);
    assert!(!e.contains_key("source.bytes"));
    assert_eq!(e["response"], "hello");
    assert_eq!(e["amqp.delivery-tag"], 1);
    // basic.get answered with a message: the get's transaction carries it.
    let get = method(60, 70, &cat(&[&[0, 0], &sh("q"), &[1]]));
    s.send(true, &get, 10);
    let ok = method(
        60,
        71,
        &cat(&[
            &1u64.to_be_bytes(),
            &[0],
            &sh(""),
            &sh("q"),
            &0u32.to_be_bytes(),
        ]),
    );
    s.send(
        false,
        &cat(&[&ok, &header(2, &text_plain()), &body(b"hi")]),
        11,
    );
    // ... and with nothing.
    s.send(true, &get, 20);
    s.send(false, &method(60, 72, &sh("")), 21);
    let ev = events(&mut s);
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[0]["method"], "basic.get");
    assert_eq!(ev[0]["response"], "hi");
    assert_eq!(ev[0]["source.bytes"], 17, "the get request's size stays");
    assert_eq!(ev[0]["destination.bytes"], 2);
    assert_eq!(ev[0]["amqp.message-count"], 0);
    assert_eq!(ev[1]["method"], "basic.get-empty");
    assert_eq!(ev[1]["event.action"], "amqp.basic.get-empty");
    assert_eq!(ev[1]["status"], "OK");
    assert_eq!(ev[1]["request"], "basic.get q");
    assert_eq!(ev[1]["response"], "OK");
    assert_eq!(ev[1]["amqp.queue"], "q");
}

#[test]
fn asynchronous_requests_publish_at_once() {
    let (mut s, _) = session();
    let ed = method(
        40,
        10,
        &cat(&[&[0, 0], &sh("titres"), &sh("fanout"), &[0x12], &table(&[])]),
    );
    s.send(true, &ed, 0);
    s.send(true, &method(60, 80, &cat(&[&5u64.to_be_bytes(), &[1]])), 1);
    s.send(true, &method(60, 90, &cat(&[&6u64.to_be_bytes(), &[0]])), 2);
    let ev = events(&mut s);
    assert_eq!(ev.len(), 3);
    assert_eq!(ev[0]["method"], "exchange.declare");
    assert_eq!(ev[0]["source.bytes"], 33);
    assert!(!ev[0].contains_key("destination.bytes"));
    assert_eq!(ev[1]["method"], "basic.ack");
    assert_eq!(ev[1]["amqp.multiple"], true);
    assert_eq!(ev[2]["method"], "basic.reject");
    assert_eq!(ev[2]["status"], "Error");
}

#[test]
fn unmatched_requests_and_responses_are_counted() {
    let (mut s, m) = session();
    s.send(true, &captured_queue_declare(), 0);
    s.send(true, &method(90, 10, &[]), 1);
    s.send(false, &method(90, 11, &[]), 2);
    s.send(false, &method(90, 11, &[]), 3);
    let ev = events(&mut s);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["method"], "tx.select");
    assert_eq!(ev[0]["amqp"], json!({}));
    assert_eq!(counter(&m, "unmatched_requests"), 1);
    assert_eq!(counter(&m, "unmatched_responses"), 1);
}

#[test]
fn arguments_and_user_id() {
    let args = cat(&[&sh("x-message-ttl"), b"I", &60000i32.to_be_bytes()]);
    let (mut s, _) = session();
    s.send(true, &queue_declare("q", 0, &args), 0);
    s.send(false, &declare_ok("q", 1, 2), 1);
    let props = cat(&[&[0x80, 0x10], &sh("text/plain"), &sh("guest")]);
    s.send(
        true,
        &cat(&[&publish("", "q"), &header(1, &props), &body(b"x")]),
        2,
    );
    let ev = events(&mut s);
    assert_eq!(ev[0]["amqp.arguments.x-message-ttl"], 60000);
    assert_eq!(ev[0]["amqp.message-count"], 1);
    assert_eq!(ev[0]["amqp.consumer-count"], 2);
    assert_eq!(ev[1]["user.id"], "guest");
    assert_eq!(ev[1]["amqp.user-id"], "guest");
    let (mut s, _) = session_with(
        AmqpConfig {
            parse_arguments: false,
            ..AmqpConfig::default()
        },
        false,
    );
    s.send(true, &queue_declare("q", 0, &args), 0);
    s.send(false, &declare_ok("q", 1, 2), 1);
    let ev = events(&mut s);
    assert!(!ev[0].keys().any(|k| k.starts_with("amqp.arguments")));
    // Arguments that do not parse are a note, not a drop.
    let (mut s, _) = session();
    s.send(true, &queue_declare("q", 0, &cat(&[&sh("k"), b"?"])), 0);
    s.send(false, &declare_ok("q", 1, 2), 1);
    let ev = events(&mut s);
    assert_eq!(ev.len(), 1);
    assert!(
        !ev[0].contains_key("error.message"),
        "the response's notes replace the request's"
    );
}

#[test]
fn broken_input_drops_the_stream_and_is_counted() {
    let (mut s, m) = session();
    let mut bad = captured_queue_declare();
    *bad.last_mut().unwrap() = 0;
    s.send(true, &bad, 0);
    assert_eq!(counter(&m, "parse_errors"), 1);
    // The next segment starts afresh.
    s.send(true, &captured_queue_declare(), 1);
    s.send(false, &declare_ok("my_queue", 0, 0), 2);
    assert_eq!(events(&mut s).len(), 1);
    // An unknown frame type.
    s.send(true, &frame(7, 0, b"?"), 3);
    assert_eq!(counter(&m, "parse_errors"), 2);
    let _ = m.counters().unwrap().parse_errors.load(Ordering::Relaxed);
}

#[test]
fn options_and_their_defaults() {
    let d = AmqpConfig::default();
    assert!(d.parse_headers && d.parse_arguments && d.hide_connection_information);
    assert_eq!(d.max_body_length, 1000);
    let a = Amqp::configure(
        &common(false),
        AmqpConfig {
            max_body_length: -5,
            ..d
        },
    )
    .unwrap();
    assert_eq!(a.max_body_length, 0);
    assert_eq!(a.transaction_timeout, Duration::from_secs(10));
    assert_eq!(Amqp::DEFAULT_PORTS, &[5672]);
}

#[test]
fn returned_messages_are_errors() {
    let (mut ss, _) = session_with(AmqpConfig::default(), true);
    ss.send(true, b"AMQP\x00\x00\x09\x01", 0);
    let ret = method(
        60,
        50,
        &cat(&[
            &312u16.to_be_bytes(),
            &sh("NO_ROUTE"),
            &sh(""),
            &sh("nowhere"),
        ]),
    );
    ss.send(
        false,
        &cat(&[&ret, &header(4, &text_plain()), &body(b"lost")]),
        1,
    );
    let ev = events(&mut ss);
    assert_eq!(ev.len(), 1);
    let e = &ev[0];
    assert_eq!(e["method"], "basic.return");
    assert_eq!(e["status"], "Error");
    assert_eq!(e["amqp.reply-code"], 312);
    assert_eq!(e["amqp.reply-text"], "NO_ROUTE");
    assert_eq!(e["amqp.routing-key"], "nowhere");
    assert_eq!(e["response"], "lost");
    assert_eq!(e["destination.bytes"], 4);
}

#[test]
fn publisher_confirms() {
    // Packetbeat has no confirm class: confirm.select and its answer end their streams; the
    // broker's basic.ack confirming a publish is an acknowledgement like a client's.
    let (mut ss, m) = session();
    ss.send(true, &method(85, 10, &[0]), 0);
    ss.send(false, &method(85, 11, &[]), 1);
    ss.send(
        false,
        &method(60, 80, &cat(&[&1u64.to_be_bytes(), &[0]])),
        2,
    );
    let ev = events(&mut ss);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["method"], "basic.ack");
    assert_eq!(ev[0]["source.port"], 5672);
    assert_eq!(counter(&m, "parse_errors"), 0);
}

#[test]
fn close_errors_are_shown_when_connection_information_is_hidden() {
    let (mut ss, _) = session();
    ss.send(true, &captured_queue_declare(), 0);
    ss.send(false, &declare_ok("my_queue", 0, 0), 1);
    ss.out.take();
    ss.send(
        false,
        &close(10, 320, "CONNECTION_FORCED - shutdown", 0, 0),
        1,
    );
    ss.send(true, &close_ok(10), 2);
    let ev = events(&mut ss);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["method"], "connection.close");
    assert_eq!(ev[0]["status"], "Error");
    assert_eq!(ev[0]["amqp.reply-text"], "CONNECTION_FORCED - shutdown");
    assert_eq!(ev[0]["event.duration"], 1_000_000);
}

#[test]
fn a_method_without_news_in_the_same_segment_reports_the_one_before() {
    // Packetbeat keeps one message per stream: in one segment, a queue.declare and then a
    // tx.select (which sets no fields) make a second request with the declare's fields.
    let (mut ss, m) = session();
    ss.send(
        true,
        &cat(&[&captured_queue_declare(), &method(90, 10, &[])]),
        0,
    );
    ss.send(false, &method(90, 11, &[]), 1);
    let ev = events(&mut ss);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["method"], "tx.select");
    assert_eq!(ev[0]["amqp.queue"], "my_queue");
    assert_eq!(counter(&m, "unmatched_requests"), 1);
}

#[test]
fn a_gap_drops_the_state_and_reports_a_waiting_close_error() {
    let (mut ss, _) = session();
    ss.send(true, b"AMQP\x00\x00\x09\x01", 0);
    ss.send(false, &close(20, 404, "NOT_FOUND", 50, 10), 1);
    ss.skip(false, 100);
    ss.send(false, &declare_ok("q", 0, 0), 2);
    ss.acknowledge(false, 3);
    let ev = events(&mut ss);
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0]["method"], "channel.close");
    assert_eq!(
        ev[0]["error.message"],
        "Close-ok method not received by sender"
    );
}

#[test]
fn a_request_left_waiting_expires_quietly() {
    let (mut ss, m) = session();
    ss.send(true, &captured_queue_declare(), 0);
    ss.send(true, &method(90, 10, &[]), 20_000);
    ss.send(false, &method(90, 11, &[]), 20_001);
    let ev = events(&mut ss);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["method"], "tx.select");
    assert_eq!(
        counter(&m, "unmatched_requests"),
        0,
        "expired, not replaced"
    );
}
