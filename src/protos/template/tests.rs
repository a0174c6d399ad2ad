//! The template analyzer through the real TCP layer: segments in, events out.

use super::*;
use crate::protos::app::{Module, TCP_MAX_DATA_IN_STREAM};
use crate::protos::testing::TcpSession;
use crate::protos::ProtocolModule;
use std::sync::atomic::Ordering;
use std::sync::Arc;

fn settings() -> Template {
    Template::configure(&common(true), TemplateConfig::default()).unwrap()
}

fn common(send_request: bool) -> CommonOptions {
    CommonOptions {
        ports: vec![7777],
        send_request,
        send_response: false,
        transaction_timeout: Duration::from_secs(10),
    }
}

/// A session analysed by `settings`, and the module (for its counters).
fn session_with(settings: Template, send_request: bool) -> (TcpSession, Arc<Module<Template>>) {
    let module = Arc::new(Module::new(settings, &common(send_request)));
    (TcpSession::new(module.clone(), 7777), module)
}

fn session() -> (TcpSession, Arc<Module<Template>>) {
    session_with(settings(), true)
}

#[test]
fn pairs_in_order_across_segment_splits_and_pipelining() {
    let (mut c, _) = session();
    // Pipelined requests, the second split over two segments.
    c.send(true, b"GET a\r\nSET b", 0);
    c.send(true, b" 1\r\n", 1);
    c.send(false, b"+1\r\n-", 2);
    c.send(false, b"read only\r\n", 3);
    let evs = c.events();
    assert_eq!(evs.len(), 2, "{evs:?}");
    assert_eq!(evs[0]["method"], "GET");
    assert_eq!(evs[0]["query"], "GET a");
    assert_eq!(evs[0]["request"], "GET a");
    assert_eq!(evs[0]["status"], "OK");
    assert_eq!(evs[0]["template"]["result"], "1");
    assert!(evs[0].get("response").is_none(), "send_response is off");
    assert_eq!(evs[0]["source"]["bytes"], 7);
    assert_eq!(evs[0]["destination"]["bytes"], 4);
    assert_eq!(evs[1]["query"], "SET b 1");
    assert_eq!(evs[1]["status"], "Error");
    assert_eq!(evs[1]["template"]["result"], "read only");
    assert_eq!(evs[1]["type"], "template");
}

#[test]
fn unmatched_and_unparseable_traffic_is_reported_and_counted() {
    let (mut c, module) = session();
    c.send(false, b"+stray\r\n", 0);
    c.send(true, b"PING\r\n", 1);
    // Not this protocol: the server's stream is dropped, the error counted.
    c.send(false, b"*garbage\r\n", 2);
    let evs = c.events();
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0]["error"]["message"], "Unmatched response");
    assert_eq!(
        module
            .counters()
            .unwrap()
            .parse_errors
            .load(Ordering::Relaxed),
        1
    );
    // The capture ends: the waiting request is published unmatched.
    c.tcp.flush(&mut c.out);
    let evs = c.events();
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0]["query"], "PING");
    assert_eq!(evs[0]["error"]["message"], "Unmatched request");
}

#[test]
fn a_stream_past_the_cap_is_dropped_and_counted() {
    let mut s = settings();
    s.max_line_length = usize::MAX;
    let (mut c, module) = session_with(s, false);
    let chunk = vec![b'x'; 1 << 20];
    for i in 0..=(TCP_MAX_DATA_IN_STREAM >> 20) as i64 {
        c.send(true, &chunk, i);
    }
    let counters = module.counters().unwrap();
    assert_eq!(counters.streams_too_large.load(Ordering::Relaxed), 1);
    // The next request starts a fresh stream and pairs normally.
    c.send(true, b"PING\r\n", 20);
    c.send(false, b"+PONG\r\n", 21);
    let evs = c.events();
    assert_eq!(evs.last().unwrap()["query"], "PING");
    assert_eq!(evs.last().unwrap()["status"], "OK");
}

#[test]
fn requests_expire_on_packet_time() {
    let (mut c, _) = session();
    c.send(true, b"GET slow\r\n", 0);
    c.send(true, b"GET fast\r\n", 20_000);
    let evs = c.events();
    assert_eq!(evs.len(), 1, "the first request timed out");
    assert_eq!(evs[0]["query"], "GET slow");
    assert_eq!(evs[0]["error"]["message"], "Unmatched request");
}

#[test]
fn a_bad_option_names_its_key() {
    let err = crate::protos::app::build::<Template>(
        &Default::default(),
        &crate::config::types::ProtocolSection {
            kind: "template".into(),
            options: serde_yaml::from_str("max_line_length: 0").unwrap(),
            key: "packetbeat.protocols.0".into(),
        },
        "pb.yml",
    )
    .err()
    .unwrap();
    assert_eq!(
        err.0,
        "max_line_length must be at least 1 accessing 'packetbeat.protocols.0.max_line_length' (source:'pb.yml')"
    );
}
