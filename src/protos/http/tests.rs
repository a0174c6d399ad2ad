//! Tests of the HTTP analyzer on hand-made byte sequences and on the payloads of
//! `http_basicauth.pcap` (checked against Packetbeat's golden event).

use super::config::{HttpConfig, HttpSettings};
use super::*;
use crate::common::{TcpTuple, Ts};
use crate::protos::testing::{flat, tcp_tuple};
use crate::protos::{CommonOptions, TcpDirection::*};
use crate::publish::Map;
use serde_json::json;

const REQ: &[u8] = include_bytes!("../../../tests/http_basicauth_request.bin");
const RESP: &[u8] = include_bytes!("../../../tests/http_basicauth_response.bin");
const GOLDEN: &str = include_str!("../../../tests/http_basicauth_expected.json");

/// Capture times of the basic-auth transaction (request, response, FINs).
const T_REQ: Ts = Ts(1_424_218_389_041_940_000);
const T_RESP: Ts = Ts(1_424_218_389_060_281_000);
const T_RESP2: Ts = Ts(1_424_218_389_060_286_000);

fn settings_with(f: impl FnOnce(&mut HttpConfig, &mut CommonOptions)) -> Arc<HttpSettings> {
    let mut cfg = HttpConfig::default();
    let mut common = CommonOptions {
        ports: vec![80],
        send_request: false,
        send_response: false,
        transaction_timeout: crate::protos::DEFAULT_TRANSACTION_TIMEOUT,
    };
    f(&mut cfg, &mut common);
    Arc::new(HttpSettings::new(&common, &cfg))
}

/// The basic-auth capture's connection.
fn tuple() -> TcpTuple {
    tcp_tuple("172.31.98.49", 55874, "93.184.216.34", 80)
}

/// Drives one connection like the TCP layer does.
struct Conn {
    c: HttpConnection,
    t: TcpTuple,
    out: EventSink,
}

impl Conn {
    fn new(s: Arc<HttpSettings>) -> Conn {
        Conn {
            c: HttpConnection::new(s),
            t: tuple(),
            out: EventSink::new(),
        }
    }

    fn seg(&mut self, dir: TcpDirection, ts: Ts, payload: &[u8]) {
        let tuple = if dir == Original {
            self.t.tuple
        } else {
            self.t.tuple.reversed()
        };
        let pkt = TcpPacket { ts, tuple, payload };
        self.c.parse(&mut self.out, &self.t, dir, &pkt);
    }

    fn fin(&mut self, dir: TcpDirection, ts: Ts) {
        self.c.received_fin(&mut self.out, &self.t, dir, ts);
    }

    fn gap(&mut self, dir: TcpDirection, n: usize) -> bool {
        self.c.gap_in_stream(&mut self.out, &self.t, dir, n, Ts(0))
    }

    fn expire(&mut self) {
        self.c.expired(&mut self.out, &self.t, Ts(0));
    }

    fn events(&mut self) -> Vec<Map> {
        self.out.take().into_iter().map(flat).collect()
    }
}

fn basic_auth_events(s: Arc<HttpSettings>) -> Vec<Map> {
    let mut c = Conn::new(s);
    c.seg(Original, T_REQ, REQ);
    c.seg(Reverse, T_RESP, &RESP[..1448]);
    c.seg(Reverse, T_RESP2, &RESP[1448..]);
    c.fin(Original, Ts(T_RESP2.0 + 341_000));
    c.fin(Reverse, Ts(T_RESP2.0 + 19_341_000));
    c.expire();
    c.events()
}

#[test]
fn basic_auth_matches_packetbeat_golden_event() {
    let events = basic_auth_events(settings_with(|c, _| c.send_all_headers = true));
    assert_eq!(events.len(), 1);
    let mut got = events[0].clone();
    let golden: Map = serde_json::from_str(GOLDEN).unwrap();
    // Keys the golden comparison drops, plus what the publisher adds (@metadata).
    for k in [
        "@timestamp",
        "event.start",
        "event.end",
        "network.direction",
    ] {
        got.remove(k);
    }
    let want: Map = golden
        .into_iter()
        .filter(|(k, _)| !k.starts_with("@metadata."))
        .collect();
    for (k, v) in &want {
        assert_eq!(got.get(k), Some(v), "field {k}");
    }
    for k in got.keys() {
        assert!(want.contains_key(k), "unexpected field {k} = {}", got[k]);
    }
    let e = &events[0];
    assert_eq!(e["@timestamp"], json!("2015-02-18T00:13:09.041Z"));
    assert_eq!(e["event.start"], json!("2015-02-18T00:13:09.041Z"));
    assert_eq!(e["event.end"], json!("2015-02-18T00:13:09.060Z"));
    assert_eq!(e["network.direction"], json!("outbound"));
}

#[test]
fn user_name_is_a_dotted_key_as_in_packetbeat() {
    let mut c = Conn::new(settings_with(|c, _| c.send_all_headers = true));
    c.seg(Original, T_REQ, REQ);
    c.seg(Reverse, T_RESP, RESP);
    let e = c.out.take().pop().unwrap();
    assert_eq!(e.fields.get("user.name"), Some(json!("simplesimon")));
}

#[test]
fn default_options_send_only_length_and_type_headers_and_no_user() {
    let events = basic_auth_events(settings_with(|_, _| {}));
    let e = &events[0];
    assert_eq!(e["http.request.headers.content-length"], json!(0));
    assert_eq!(e["http.response.headers.content-type"], json!("text/html"));
    assert!(!e.contains_key("http.request.headers.authorization"));
    assert!(!e.contains_key("http.response.headers.server"));
    // The user comes from the kept Authorization header only.
    assert!(!e.contains_key("user.name"));
    assert!(!e.contains_key("related.user"));
    assert_eq!(e["user_agent.original"], json!("curl/7.37.1"));
}

#[test]
fn send_headers_whitelist_is_case_insensitive() {
    let events = basic_auth_events(settings_with(|c, _| {
        c.send_headers = vec!["Authorization".into(), "SERVER".into()]
    }));
    let e = &events[0];
    assert_eq!(
        e["http.request.headers.authorization"],
        json!("Basic c2ltcGxlc2ltb246YWJjZDEyMys=")
    );
    assert_eq!(e["http.response.headers.server"], json!("ECS (pae/3796)"));
    assert!(!e.contains_key("http.request.headers.host"));
    assert_eq!(e["user.name"], json!("simplesimon"));
}

#[test]
fn every_split_point_gives_the_same_event() {
    let s = settings_with(|c, _| c.send_all_headers = true);
    let reference = basic_auth_events(s.clone());
    for i in 1..REQ.len() {
        let mut c = Conn::new(s.clone());
        c.seg(Original, T_REQ, &REQ[..i]);
        c.seg(Original, T_REQ, &REQ[i..]);
        c.seg(Reverse, T_RESP, &RESP[..1448]);
        c.seg(Reverse, T_RESP2, &RESP[1448..]);
        c.expire();
        assert_eq!(c.events(), reference, "request split at {i}");
    }
    for i in 1..RESP.len() {
        let mut c = Conn::new(s.clone());
        c.seg(Original, T_REQ, REQ);
        c.seg(Reverse, T_RESP, &RESP[..i]);
        c.seg(Reverse, T_RESP2, &RESP[i..]);
        c.expire();
        let ev = c.events();
        assert_eq!(ev.len(), 1, "response split at {i}");
        // event.end is the time of the segment the response started in.
        assert_eq!(ev[0]["event.duration"], json!(18_341_000), "split {i}");
        assert_eq!(ev[0]["http.response.bytes"], json!(1591), "split {i}");
        assert_eq!(
            ev[0]["http.response.headers.etag"],
            json!("\"359670651\""),
            "split {i}"
        );
    }
}

#[test]
fn byte_by_byte_delivery() {
    let s = settings_with(|c, _| c.send_all_headers = true);
    let reference = basic_auth_events(s.clone());
    let mut c = Conn::new(s);
    for b in REQ.chunks(1) {
        c.seg(Original, T_REQ, b);
    }
    c.seg(Reverse, T_RESP, &RESP[..1]);
    for b in RESP[1..].chunks(1) {
        c.seg(Reverse, T_RESP2, b);
    }
    assert_eq!(c.events(), reference);
}

#[test]
fn response_first_seen_connection_still_has_client_as_source() {
    // The TCP layer saw the server's packet first: the response travels "Original".
    let s = settings_with(|_, _| {});
    let mut c = Conn::new(s);
    c.t = TcpTuple {
        tuple: tuple().tuple.reversed(),
        stream_id: 7,
    };
    c.seg(Reverse, T_REQ, REQ);
    c.seg(Original, T_RESP, RESP);
    let e = &c.events()[0];
    assert_eq!(e["source.ip"], json!("172.31.98.49"));
    assert_eq!(e["source.port"], json!(55874));
    assert_eq!(e["destination.port"], json!(80));
    assert_eq!(e["client.ip"], json!("172.31.98.49"));
    assert_eq!(e["status"], json!("OK"));
}

#[test]
fn pipelined_requests_and_responses_pair_in_order() {
    let mut c = Conn::new(settings_with(|_, _| {}));
    c.seg(
        Original,
        Ts(1_000),
        b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b.txt?x=1 HTTP/1.1\r\nHost: h\r\n\r\n",
    );
    assert!(c.events().is_empty());
    c.seg(
        Reverse,
        Ts(2_000),
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
    );
    let ev = c.events();
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[0]["query"], json!("GET /a"));
    assert_eq!(ev[0]["http.response.status_code"], json!(200));
    assert_eq!(ev[0]["http.response.body.bytes"], json!(3));
    assert_eq!(ev[0]["status"], json!("OK"));
    assert_eq!(ev[1]["query"], json!("GET /b.txt"));
    assert_eq!(ev[1]["url.query"], json!("x=1"));
    assert_eq!(ev[1]["url.extension"], json!("txt"));
    assert!(!ev[1].contains_key("url.port"));
    assert_eq!(ev[1]["url.full"], json!("http://h/b.txt?x=1"));
    assert_eq!(ev[1]["http.response.status_phrase"], json!("not found"));
    assert_eq!(ev[1]["status"], json!("Error"));
    assert!(!ev[1].contains_key("http.response.body.bytes"));
}

#[test]
fn keep_alive_requests_over_many_segments() {
    let mut c = Conn::new(settings_with(|_, _| {}));
    for i in 0..50u32 {
        let t = Ts(i as i64 * 10_000);
        c.seg(
            Original,
            t,
            format!("GET /{i} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes(),
        );
        c.seg(
            Reverse,
            Ts(t.0 + 5),
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel",
        );
        c.seg(Reverse, Ts(t.0 + 6), b"lo");
    }
    let ev = c.events();
    assert_eq!(ev.len(), 50);
    assert_eq!(ev[49]["query"], json!("GET /49"));
    assert_eq!(ev[49]["event.duration"], json!(5));
}

#[test]
fn chunked_body_counts_wire_bytes_and_decoded_length() {
    let resp: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n4\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n\r\n";
    let headers_len = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    for step in [1usize, 2, 3, 7, resp.len()] {
        let mut c = Conn::new(settings_with(|c, common| {
            c.include_body_for = vec!["text/plain".into()];
            common.send_response = true;
        }));
        c.seg(Original, Ts(1), b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
        for part in resp.chunks(step) {
            c.seg(Reverse, Ts(2), part);
        }
        let ev = c.events();
        assert_eq!(ev.len(), 1, "step {step}");
        let e = &ev[0];
        assert_eq!(e["http.response.bytes"], json!(resp.len()));
        assert_eq!(e["destination.bytes"], json!(resp.len()));
        assert_eq!(e["http.response.headers.content-length"], json!(23));
        assert_eq!(e["http.response.body.bytes"], json!(23));
        assert_eq!(
            e["http.response.body.content"],
            json!("Wikipedia in\r\n\r\nchunks.")
        );
        let raw = format!(
            "{}Wikipedia in\r\n\r\nchunks.",
            std::str::from_utf8(&resp[..headers_len]).unwrap()
        );
        assert_eq!(e["response"], json!(raw));
    }
}

#[test]
fn chunk_extension_and_trailers_are_not_parsed_like_packetbeat() {
    let mut c = Conn::new(settings_with(|_, _| {}));
    c.seg(Original, Ts(1), b"GET / HTTP/1.1\r\n\r\n");
    c.seg(
        Reverse,
        Ts(2),
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\nWiki\r\n0\r\n\r\n",
    );
    assert!(c.events().is_empty());
    // The request is published unmatched when the connection expires.
    c.expire();
    let ev = c.events();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["error.message"], json!("Unmatched request"));
    assert_eq!(ev[0]["status"], json!("Error"));
    // Unmatched events carry `event.end` too (when the request was seen), but no duration.
    assert_eq!(ev[0]["event.end"], ev[0]["event.start"]);
    assert!(!ev[0].contains_key("event.duration"));
}

#[test]
fn an_unmatched_response_has_an_end_and_no_start() {
    let mut c = Conn::new(settings_with(|_, _| {}));
    c.seg(
        Reverse,
        Ts(5_000_000),
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
    );
    let ev = c.events();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["error.message"], json!("Unmatched response"));
    assert_eq!(ev[0]["event.end"], json!("1970-01-01T00:00:00.005Z"));
    assert!(!ev[0].contains_key("event.start"));
}

#[test]
fn close_delimited_body_completes_on_fin() {
    let mut c = Conn::new(settings_with(|_, _| {}));
    c.seg(Original, Ts(1), b"GET /f HTTP/1.0\r\n\r\n");
    c.seg(
        Reverse,
        Ts(2),
        b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n<html>",
    );
    c.seg(Reverse, Ts(3), b"</html>");
    assert!(c.events().is_empty());
    c.fin(Reverse, Ts(4));
    let ev = c.events();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["http.response.body.bytes"], json!(13));
    assert_eq!(ev[0]["http.response.headers.content-length"], json!(13));
    assert_eq!(ev[0]["http.response.bytes"], json!(19 + 25 + 13));
    assert_eq!(ev[0]["http.version"], json!("1.0"));
    // Nothing left for expiry.
    c.expire();
    assert!(c.events().is_empty());
}

#[test]
fn keep_alive_response_without_length_ends_at_headers_once_more_data_comes() {
    // HTTP/1.1 without Content-Length and without "Connection: close": Packetbeat takes the
    // body as empty, but only when the next bytes of that direction arrive.
    let mut c = Conn::new(settings_with(|_, _| {}));
    c.seg(
        Original,
        Ts(1),
        b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n",
    );
    c.seg(Reverse, Ts(2), b"HTTP/1.1 200 OK\r\n\r\n");
    assert!(c.events().is_empty());
    c.seg(Reverse, Ts(3), b"HTTP/1.1 204 No Content\r\n\r\n");
    let ev = c.events();
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[1]["http.response.status_code"], json!(204));
}

#[test]
fn expect_100_continue_gives_one_transaction() {
    let mut c = Conn::new(settings_with(|c, _| c.send_all_headers = true));
    c.seg(
        Original,
        Ts(1),
        b"POST /filebeat/_doc/mydoc HTTP/1.1\r\nHost: localhost:9200\r\nContent-Type: application/json\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n",
    );
    c.seg(Reverse, Ts(2), b"HTTP/1.1 100 Continue\r\n\r\n");
    c.seg(Original, Ts(3), b"{}");
    c.seg(Reverse, Ts(4), b"HTTP/1.1 200 OK\r\ncontent-type: application/json; charset=UTF-8\r\ncontent-length: 5\r\n\r\n{\"a\"}");
    c.fin(Original, Ts(5));
    c.fin(Reverse, Ts(6));
    c.expire();
    let ev = c.events();
    assert_eq!(ev.len(), 1);
    let e = &ev[0];
    assert_eq!(e["http.request.headers.expect"], json!("100-continue"));
    assert_eq!(e["http.response.status_code"], json!(200));
    // No "Unmatched" note; only the port note, as the test connection runs on port 80.
    assert_eq!(
        e["error.message"],
        json!("Host header port number mismatch")
    );
    // Host header port differs from the connection's port (80 here).
    let mut c2 = Conn::new(settings_with(|_, _| {}));
    c2.seg(
        Original,
        Ts(1),
        b"GET / HTTP/1.1\r\nHost: localhost:9200\r\n\r\n",
    );
    c2.seg(
        Reverse,
        Ts(2),
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    );
    let e = &c2.events()[0];
    assert_eq!(
        e["error.message"],
        json!("Host header port number mismatch")
    );
    assert_eq!(e["url.port"], json!(9200));
    assert_eq!(e["url.full"], json!("http://localhost:9200/"));
    assert_eq!(e["destination.domain"], json!("localhost"));
}

#[test]
fn response_without_request_is_published_unmatched() {
    let mut c = Conn::new(settings_with(|_, _| {}));
    c.seg(
        Reverse,
        Ts(2),
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nnop",
    );
    let ev = c.events();
    assert_eq!(ev.len(), 1);
    let e = &ev[0];
    assert_eq!(e["status"], json!("Error"));
    assert_eq!(e["error.message"], json!("Unmatched response"));
    // The responder is the source of a response-only event, and its bytes are the destination's.
    assert_eq!(e["source.ip"], json!("93.184.216.34"));
    assert_eq!(e["destination.bytes"], json!(48));
    assert!(!e.contains_key("source.bytes"));
    assert!(!e.contains_key("http.version"));
    assert!(!e.contains_key("query"));
    assert!(!e.contains_key("url.scheme"));
    // A lone 100 Continue is dropped.
    let mut c = Conn::new(settings_with(|_, _| {}));
    c.seg(Reverse, Ts(2), b"HTTP/1.1 100 Continue\r\n\r\n");
    assert!(c.events().is_empty());
}

#[test]
fn pending_requests_are_published_unmatched_on_expiry() {
    let mut c = Conn::new(settings_with(|_, _| {}));
    c.seg(Original, Ts(1), b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n");
    c.fin(Original, Ts(2));
    assert!(c.events().is_empty());
    c.expire();
    let ev = c.events();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["error.message"], json!("Unmatched request"));
    assert_eq!(ev[0]["status"], json!("Error"));
    assert_eq!(ev[0]["event.end"], ev[0]["event.start"]);
    assert!(!ev[0].contains_key("http.response.headers.content-length"));

    // A message whose headers are complete is taken as it is on expiry.
    let mut c = Conn::new(settings_with(|_, _| {}));
    c.seg(
        Original,
        Ts(1),
        b"POST /up HTTP/1.1\r\nContent-Length: 100\r\n\r\n0123456789",
    );
    c.expire();
    let ev = c.events();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["http.request.bytes"], json!(42 + 10));
    // Packetbeat's "headers received" means the first line is: a request cut inside its
    // headers is published, a response cut inside its status line is not.
    let mut c = Conn::new(settings_with(|_, _| {}));
    c.seg(Original, Ts(1), b"GET /x HTTP/1.1\r\nHo");
    c.seg(Reverse, Ts(1), b"HTTP/1.1 200");
    c.expire();
    let ev = c.events();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["query"], json!("GET /x"));
    assert_eq!(ev[0]["error.message"], json!("Unmatched request"));
}

#[test]
fn gap_inside_body_is_noted_and_counted() {
    let mut c = Conn::new(settings_with(|_, _| {}));
    c.seg(Original, Ts(1), b"GET /jszip.min.js HTTP/1.1\r\n\r\n");
    let head = b"HTTP/1.0 200 OK\r\nContent-Length: 100\r\n\r\n";
    c.seg(Reverse, Ts(2), head);
    assert!(!c.gap(Reverse, 60));
    c.seg(Reverse, Ts(3), &[b'x'; 40]);
    let ev = c.events();
    assert_eq!(ev.len(), 1);
    assert_eq!(
        ev[0]["error.message"],
        json!("Packet loss while capturing the response")
    );
    assert_eq!(ev[0]["status"], json!("OK"));
    assert_eq!(ev[0]["http.response.body.bytes"], json!(100));
    assert_eq!(ev[0]["http.response.bytes"], json!(head.len() + 40));
}

#[test]
fn gap_reaching_the_end_of_the_body_completes_the_message() {
    let mut c = Conn::new(settings_with(|_, _| {}));
    c.seg(Original, Ts(1), b"GET / HTTP/1.1\r\n\r\n");
    c.seg(
        Reverse,
        Ts(2),
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123",
    );
    assert!(!c.gap(Reverse, 6));
    let ev = c.events();
    assert_eq!(ev.len(), 1);
    assert_eq!(
        ev[0]["error.message"],
        json!("Packet loss while capturing the response")
    );
}

#[test]
fn gap_outside_a_body_drops_the_connection_state_silently() {
    let mut c = Conn::new(settings_with(|_, _| {}));
    c.seg(Original, Ts(1), b"GET / HTTP/1.1\r\n\r\n");
    c.seg(Reverse, Ts(2), b"HTTP/1.1 200 OK\r\nConte");
    assert!(c.gap(Reverse, 10));
    c.expire();
    assert!(c.events().is_empty());
    // No message in progress: nothing to do.
    let mut c = Conn::new(settings_with(|_, _| {}));
    assert!(!c.gap(Original, 10));
}

#[test]
fn garbage_is_dropped_and_parsing_recovers_on_the_next_segment() {
    let mut c = Conn::new(settings_with(|_, _| {}));
    c.seg(
        Original,
        Ts(1),
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 hello\r\n",
    );
    c.seg(Original, Ts(2), b"GET /ok HTTP/1.1\r\n\r\n");
    c.seg(Reverse, Ts(3), b"short\r\n");
    c.seg(
        Reverse,
        Ts(4),
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    );
    let ev = c.events();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["query"], json!("GET /ok"));
}

#[test]
fn random_input_never_panics() {
    let s = settings_with(|c, common| {
        c.send_all_headers = true;
        c.split_cookie = true;
        c.include_body_for = vec!["".into()];
        c.real_ip_header = "x-forwarded-for".into();
        c.hide_keywords = vec!["pass".into()];
        c.redact_authorization = true;
        c.max_message_size = 300;
        common.send_request = true;
        common.send_response = true;
    });
    let pieces: &[&[u8]] = &[
        b"GET ",
        b"/a?b=%zz&pass=1 ",
        b"HTTP/1.1\r\n",
        b"HTTP/1.0 200 OK\r\n",
        b"HTTP/9.9 -1 X\r\n",
        b"Content-Length: ",
        b"-5",
        b"12",
        b"\r\n",
        b"Transfer-Encoding: chunked\r\n",
        b"\r\n",
        b"ffffffff\r\n",
        b"-1\r\n",
        b"0\r\n",
        b"Host: [::1]:99999\r\n",
        b"Authorization: Basic ????\r\n",
        b"Cookie: a=\"b\"; c\r\n",
        b"\xff\xfe",
        b":",
        b" ",
        b"Connection: close\r\n",
        b"Content-Encoding: gzip\r\n",
        b"Content-Type: application/x-www-form-urlencoded\r\n",
        b"x=1&y=%",
        b"\xc2\xa0",
        b"\t",
    ];
    let mut seed: u64 = 0x1234_5678;
    let mut next = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as usize
    };
    for _ in 0..3000 {
        let mut c = Conn::new(s.clone());
        for _ in 0..(next() % 12) {
            let mut seg = Vec::new();
            for _ in 0..(1 + next() % 8) {
                seg.extend_from_slice(pieces[next() % pieces.len()]);
            }
            let dir = if next() % 2 == 0 { Original } else { Reverse };
            match next() % 10 {
                0 => c.fin(dir, Ts(5)),
                1 => {
                    c.gap(dir, next() % 50);
                }
                _ => c.seg(dir, Ts(next() as i64), &seg),
            }
        }
        c.expire();
        let _ = c.events();
    }
}

#[test]
fn redact_authorization_masks_raw_and_header() {
    let events = basic_auth_events(settings_with(|c, common| {
        c.send_all_headers = true;
        c.redact_authorization = true;
        common.send_request = true;
    }));
    let e = &events[0];
    assert_eq!(e["http.request.headers.authorization"], json!("*"));
    assert!(!e.contains_key("user.name"));
    let raw = e["request"].as_str().unwrap();
    let masked = format!(
        "GET / HTTP/1.1\r\nAuthorization:{}\r\nUser-Agent",
        "*".repeat(" Basic c2ltcGxlc2ltb246YWJjZDEyMys=".len())
    );
    assert!(raw.starts_with(&masked), "{raw}");
    assert_eq!(raw.len(), REQ.len());
}

#[test]
fn redact_headers_and_send_request_response() {
    let events = basic_auth_events(settings_with(|c, common| {
        c.send_all_headers = true;
        c.redact_headers = vec!["User-Agent".into(), "Server".into()];
        common.send_request = true;
        common.send_response = true;
    }));
    let e = &events[0];
    assert_eq!(e["http.request.headers.user-agent"], json!("REDACTED"));
    assert_eq!(e["http.response.headers.server"], json!("REDACTED"));
    // user_agent.original comes from the parsed value, not the map.
    assert_eq!(e["user_agent.original"], json!("curl/7.37.1"));
    assert_eq!(e["request"], json!(std::str::from_utf8(REQ).unwrap()));
    // Without include_body_for only the response headers are in `response`.
    let head_len = RESP.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(
        e["response"],
        json!(std::str::from_utf8(&RESP[..head_len]).unwrap())
    );
}

#[test]
fn real_ip_header_sets_forwarded_ip() {
    let mut c = Conn::new(settings_with(|c, _| {
        c.real_ip_header = "X-Forwarded-For".into()
    }));
    c.seg(
        Original,
        Ts(1),
        b"GET / HTTP/1.1\r\nHost: 10.0.0.1\r\nX-Forwarded-For: 89.0.0.1, 10.1.1.1\r\n\r\n",
    );
    c.seg(
        Reverse,
        Ts(2),
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    );
    let e = &c.events()[0];
    assert_eq!(e["network.forwarded_ip"], json!("89.0.0.1"));
    assert_eq!(
        e["related.ip"],
        json!(["172.31.98.49", "93.184.216.34", "10.0.0.1", "89.0.0.1"])
    );
    assert!(!e.contains_key("destination.domain"));
    assert!(!e.contains_key("related.hosts"));
    assert_eq!(e["url.domain"], json!("10.0.0.1"));
}

#[test]
fn hide_keywords_in_query_and_form_body() {
    let s = settings_with(|c, _| c.hide_keywords = vec!["pass".into(), "password".into()]);
    let mut c = Conn::new(s.clone());
    c.seg(
        Original,
        Ts(1),
        b"GET /login?user=monica&Pass=secret HTTP/1.1\r\nHost: h\r\n\r\n",
    );
    c.seg(
        Reverse,
        Ts(2),
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    );
    let e = &c.events()[0];
    assert_eq!(e["url.query"], json!("Pass=xxxxx&user=monica"));
    assert_eq!(e["url.path"], json!("/login"));
    assert_eq!(e["query"], json!("GET /login"));

    let mut c = Conn::new(s);
    let body = b"user=monica&pass=secret";
    let req = format!(
        "POST /login HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    c.seg(Original, Ts(1), req.as_bytes());
    c.seg(Original, Ts(1), body);
    c.seg(
        Reverse,
        Ts(2),
        b"HTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n",
    );
    let e = &c.events()[0];
    assert_eq!(e["url.query"], json!("pass=xxxxx&user=monica"));
    assert_eq!(e["http.request.body.bytes"], json!(body.len()));
    // The body is kept for the parameters, not sent.
    assert!(!e.contains_key("http.request.body.content"));
}

#[test]
fn split_cookie_and_referer() {
    let mut c = Conn::new(settings_with(|c, _| {
        c.send_all_headers = true;
        c.split_cookie = true;
    }));
    c.seg(
        Original,
        Ts(1),
        b"GET / HTTP/1.1\r\nHost: www.example.com:8080\r\nReferer: http://other/\r\nCookie: A=1; b=\"two\"; c\r\n\r\n",
    );
    c.seg(
        Reverse,
        Ts(2),
        b"HTTP/1.1 200 OK\r\nSet-Cookie: id=9\r\nContent-Length: 0\r\n\r\n",
    );
    let e = &c.events()[0];
    assert_eq!(e["http.request.headers.cookie.a"], json!("1"));
    assert_eq!(e["http.request.headers.cookie.b"], json!("two"));
    assert_eq!(e["http.response.headers.set-cookie.id"], json!("9"));
    assert_eq!(e["http.request.referrer"], json!("http://other/"));
    assert_eq!(
        e["related.hosts"],
        json!(["www.example.com", "http://other/"])
    );
    assert_eq!(e["url.full"], json!("http://www.example.com:8080/"));
}

#[test]
fn max_message_size_counts_unbuffered_body() {
    let mut c = Conn::new(settings_with(|c, _| c.max_message_size = 100));
    c.seg(Original, Ts(1), b"GET / HTTP/1.1\r\n\r\n");
    c.seg(
        Reverse,
        Ts(2),
        b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n",
    );
    for _ in 0..5 {
        c.seg(Reverse, Ts(3), &[b'z'; 100]);
    }
    let ev = c.events();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["http.response.body.bytes"], json!(500));
    assert_eq!(ev[0]["http.response.bytes"], json!(40 + 500));
}

#[test]
fn gzip_body_is_decoded_when_included() {
    use flate2::write::GzEncoder;
    use std::io::Write;
    let mut g = GzEncoder::new(Vec::new(), flate2::Compression::default());
    g.write_all(b"{\"hello\":1}").unwrap();
    let gz = g.finish().unwrap();
    let mut resp = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
        gz.len()
    )
    .into_bytes();
    resp.extend_from_slice(&gz);
    let mut c = Conn::new(settings_with(|c, _| {
        c.include_response_body_for = vec!["application/json".into()]
    }));
    c.seg(Original, Ts(1), b"GET / HTTP/1.1\r\n\r\n");
    c.seg(Reverse, Ts(2), &resp);
    let e = &c.events()[0];
    assert_eq!(e["http.response.body.content"], json!("{\"hello\":1}"));
    assert_eq!(e["http.response.body.bytes"], json!(11));
    assert_eq!(e["http.response.headers.content-length"], json!(gz.len()));
}

#[test]
fn header_quirks_follow_packetbeat() {
    let mut c = Conn::new(settings_with(|c, _| c.send_all_headers = true));
    // "X:1" has its only non-blank byte first: Packetbeat's trim empties it. Repeated headers
    // are joined.
    c.seg(
        Original,
        Ts(1),
        b"GET /p HTTP/1.1\r\nX:1\r\nA: one\r\na: two\r\n\r\n",
    );
    c.seg(
        Reverse,
        Ts(2),
        b"HTTP/1.1 200 OK\r\nContent-Length:5\r\n\r\n",
    );
    let e = &c.events()[0];
    assert_eq!(e["http.request.headers.x"], json!(""));
    assert_eq!(e["http.request.headers.a"], json!("one, two"));
    // "Content-Length:5" parses as 0: the response ends at its headers.
    assert_eq!(e["http.response.headers.content-length"], json!(0));
}

#[test]
fn config_is_decoded_with_packetbeat_names_and_defaults() {
    let yaml: serde_yaml::Value = serde_yaml::from_str(
        "ports: [80, 8080]\nsend_headers: Host\nreal_ip_header: X-Real-IP\nunknown_key: 1\nsend_request: true\n",
    )
    .unwrap();
    let section = crate::config::types::ProtocolSection {
        kind: "http".into(),
        options: yaml,
        key: "packetbeat.protocols.0".into(),
    };
    let common: crate::protos::registry::ProtocolCommonConfig =
        crate::config::types::decode(&section.options, &section.key, "test").unwrap();
    let module = crate::protos::app::build::<HttpSettings>(&common, &section, "test").unwrap();
    assert_eq!(module.name(), "http");
    assert_eq!(module.tcp_ports(), &[80, 8080]);
    let cfg: HttpConfig =
        crate::config::types::decode(&section.options, &section.key, "test").unwrap();
    assert_eq!(cfg.send_headers, vec!["Host".to_string()]);
    assert_eq!(cfg.max_message_size, 10 * 1024 * 1024);
    assert!(cfg.decode_body);
    let mut an = module.new_tcp().unwrap();
    assert_eq!(
        an.connection_timeout(),
        crate::protos::DEFAULT_TRANSACTION_TIMEOUT
    );
    let _ = an.new_connection(&tuple());
}

#[test]
fn host_header_split_follows_go() {
    use super::event::extract_host_header as h;
    assert_eq!(h("www.example.com"), ("www.example.com".into(), 0));
    assert_eq!(h("localhost:9200"), ("localhost".into(), 9200));
    assert_eq!(h("[::1]:8080"), ("::1".into(), 8080));
    assert_eq!(h("[::1]"), ("::1".into(), 0));
    assert_eq!(h("::1"), ("::1".into(), 0));
    // strconv.ParseInt(port, 10, 16): ports above 32767 leave the header as it is.
    assert_eq!(h("example.com:40000"), ("example.com:40000".into(), 0));
    assert_eq!(h("example.com:0"), ("example.com:0".into(), 0));
}

#[test]
fn unparseable_target_gives_empty_path() {
    let mut c = Conn::new(settings_with(|_, _| {}));
    c.seg(
        Original,
        Ts(1),
        b"GET /bad%zz?a=1 HTTP/1.1\r\nHost: h\r\n\r\n",
    );
    c.seg(
        Reverse,
        Ts(2),
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    );
    let e = &c.events()[0];
    assert_eq!(e["query"], json!("GET "));
    assert!(!e.contains_key("url.path"));
    assert!(!e.contains_key("url.query"));
    assert_eq!(e["url.full"], json!("http://h"));
}

#[test]
fn a_response_to_head_has_no_body_and_later_pairings_hold() {
    let mut c = Conn::new(settings_with(|_, _| {}));
    c.seg(
        Original,
        Ts(1),
        b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nHEAD /b HTTP/1.1\r\nHost: h\r\n\r\nGET /c HTTP/1.1\r\nHost: h\r\n\r\n",
    );
    c.seg(
        Reverse,
        Ts(2),
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    );
    // The HEAD response announces the length of the body a GET would have had.
    c.seg(
        Reverse,
        Ts(3),
        b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n",
    );
    c.seg(
        Reverse,
        Ts(4),
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nno!",
    );
    let ev = c.events();
    assert_eq!(ev.len(), 3, "{ev:?}");
    let got: Vec<_> = ev
        .iter()
        .map(|e| {
            (
                e["http.request.method"].clone(),
                e["url.path"].clone(),
                e["http.response.status_code"].clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (json!("GET"), json!("/a"), json!(200)),
            (json!("HEAD"), json!("/b"), json!(200)),
            (json!("GET"), json!("/c"), json!(404)),
        ]
    );
    assert_eq!(ev[1]["http.response.bytes"], json!(41));
    assert_eq!(ev[2]["http.response.body.bytes"], json!(3));
}

#[test]
fn after_101_or_a_connect_tunnel_the_connection_is_not_parsed() {
    for (req, resp) in [
        (
            &b"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"[..],
            &b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"[..],
        ),
        (
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
            b"HTTP/1.1 200 Connection established\r\n\r\n",
        ),
    ] {
        let mut c = Conn::new(settings_with(|_, _| {}));
        c.seg(Original, Ts(1), req);
        c.seg(Reverse, Ts(2), resp);
        // What follows is the other protocol: websocket frames, or a TLS handshake.
        c.seg(Original, Ts(3), b"\x16\x03\x01\x00\x05hello GET / HTTP/1.1\r\n\r\n");
        c.seg(Reverse, Ts(4), b"\x81\x05hello HTTP/1.1 200 OK\r\n\r\n");
        c.expire();
        let ev = c.events();
        assert_eq!(ev.len(), 1, "{ev:?}");
        assert_eq!(ev[0]["status"], json!("OK"), "{:?}", ev[0]);
        assert_eq!(c.c.counters.snapshot()[0].1, 0, "no parse error");
    }
}

#[test]
fn a_final_status_before_the_continue_completes_the_request_without_its_body() {
    let mut c = Conn::new(settings_with(|_, _| {}));
    c.seg(
        Original,
        Ts(1),
        b"PUT /up HTTP/1.1\r\nHost: h\r\nContent-Length: 100000\r\nExpect: 100-continue\r\n\r\n",
    );
    c.seg(
        Reverse,
        Ts(2),
        b"HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\n\r\n",
    );
    // The client goes on with the next request on the same connection.
    c.seg(Original, Ts(3), b"GET /next HTTP/1.1\r\nHost: h\r\n\r\n");
    c.seg(
        Reverse,
        Ts(4),
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    );
    let ev = c.events();
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert_eq!(ev[0]["http.request.method"], json!("PUT"));
    assert_eq!(ev[0]["http.response.status_code"], json!(417));
    // Only the headers were sent: 75 bytes, no body.
    assert_eq!(ev[0]["http.request.bytes"], json!(75));
    assert!(!ev[0].contains_key("http.request.body.bytes"));
    assert_eq!(ev[1]["url.path"], json!("/next"));
    assert_eq!(ev[1]["http.response.status_code"], json!(200));
}

#[test]
fn a_response_sent_before_the_request_body_ended_pairs_with_that_request() {
    let mut c = Conn::new(settings_with(|_, _| {}));
    c.seg(Original, Ts(1), b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n");
    c.seg(
        Reverse,
        Ts(2),
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    );
    // nginx answers `return 201` as soon as it has the headers; the body follows.
    c.seg(
        Original,
        Ts(3),
        b"POST /api/echo HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\n\r\n",
    );
    c.seg(
        Reverse,
        Ts(4),
        b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
    );
    c.seg(Original, Ts(5), b"abcdef");
    // The connection goes on with a HEAD whose response has no body.
    c.seg(Original, Ts(6), b"HEAD /h HTTP/1.1\r\nHost: h\r\n\r\n");
    c.seg(
        Reverse,
        Ts(7),
        b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n",
    );
    c.seg(Original, Ts(8), b"GET /z HTTP/1.1\r\nHost: h\r\n\r\n");
    c.seg(
        Reverse,
        Ts(9),
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
    );
    c.expire();
    let ev = c.events();
    assert_eq!(ev.len(), 4, "{ev:?}");
    assert_eq!(ev[1]["http.request.method"], json!("POST"));
    assert_eq!(ev[1]["http.response.status_code"], json!(201));
    assert_eq!(ev[1]["http.request.body.bytes"], json!(6));
    assert!(!ev[1].contains_key("error.message"), "{:?}", ev[1]);
    assert_eq!(ev[2]["http.request.method"], json!("HEAD"));
    assert_eq!(ev[3]["url.path"], json!("/z"));
    assert_eq!(ev[3]["http.response.status_code"], json!(404));
}

#[test]
fn an_early_response_whose_request_never_ends_is_paired_at_expiry() {
    let mut c = Conn::new(settings_with(|_, _| {}));
    c.seg(
        Original,
        Ts(1),
        b"PUT /big HTTP/1.1\r\nHost: h\r\nContent-Length: 1000000\r\n\r\npartial",
    );
    c.seg(
        Reverse,
        Ts(2),
        b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    c.fin(Original, Ts(3));
    c.expire();
    let ev = c.events();
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0]["http.request.method"], json!("PUT"));
    assert_eq!(ev[0]["http.response.status_code"], json!(413));
}
