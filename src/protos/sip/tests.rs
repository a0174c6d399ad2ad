//! SIP: the parser on real messages split at every byte and on broken input, the event's
//! fields and quirks, and both transports end to end.

use super::event::{parse_from_to, parse_uri};
use super::parser::{atoi, parse, parse_int, Message};
use super::*;
use crate::protos::app::Module;
use crate::protos::testing::{tuple, TcpSession};
use crate::protos::UdpPacket;
use serde_json::Value;
use std::time::Duration;

/// The INVITE of sip.pcap (sipp against FreeSWITCH).
const INVITE: &[u8] = b"INVITE sip:test@10.0.2.15:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.2.20:5060;branch=z9hG4bK-2187-1-0\r\n\
From: \"DVI4/8000\" <sip:sipp@10.0.2.20:5060>;tag=1\r\n\
To: test <sip:test@10.0.2.15:5060>\r\n\
Call-ID: 1-2187@10.0.2.20\r\n\
CSeq: 1 INVITE\r\n\
Contact: sip:sipp@10.0.2.20:5060\r\n\
Max-Forwards: 70\r\n\
Content-Type: application/sdp\r\n\
Content-Length:   123\r\n\
\r\n\
v=0\r\n\
o=- 42 42 IN IP4 10.0.2.20\r\n\
s=-\r\n\
c=IN IP4 10.0.2.20\r\n\
t=0 0\r\n\
m=audio 6000 RTP/AVP 5\r\n\
a=rtpmap:5 DVI4/8000\r\n\
a=recvonly\r\n";

const TRYING: &[u8] = b"SIP/2.0 100 Trying\r\n\
Via: SIP/2.0/UDP 10.0.2.20:5060;branch=z9hG4bK-2187-1-0\r\n\
From: \"DVI4/8000\" <sip:sipp@10.0.2.20:5060>;tag=1\r\n\
To: test <sip:test@10.0.2.15:5060>\r\n\
Call-ID: 1-2187@10.0.2.20\r\n\
CSeq: 1 INVITE\r\n\
User-Agent: FreeSWITCH-mod_sofia/1.6.12-20-b91a0a6~64bit\r\n\
Content-Length: 0\r\n\
\r\n";

const REGISTER: &[u8] = b"REGISTER sip:sip.cybercity.dk SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.168.1.2;branch=z9hG4bKnp112903503-43a64480192.168.1.2;rport\r\n\
From: <sip:voi18062@sip.cybercity.dk>;tag=6bac55c\r\n\
To: <sip:voi18062@sip.cybercity.dk>\r\n\
Call-ID: 578222729-4665d775@578222732-4665d772\r\n\
Contact:  <sip:voi18062@192.168.1.2:5060;line=aca6b97ca3f5e51a>;expires=1200;q=0.500\r\n\
CSeq: 75 REGISTER\r\n\
Content-Length: 0\r\n\
Authorization: Digest username=\"voi18062\",realm=\"sip.cybercity.dk\",uri=\"sip:192.168.1.2\",nonce=\"1701b\",response=\"79a0\"\r\n\
Max-Forwards: 70\r\n\
\r\n";

fn sip(cfg: SipConfig) -> Sip {
    let common = CommonOptions {
        ports: vec![5060],
        send_request: false,
        send_response: false,
        transaction_timeout: Duration::from_secs(10),
    };
    Sip::configure(&common, cfg).unwrap()
}

fn msg(data: &[u8]) -> Message {
    match parse(data) {
        Parsed::Message { msg, consumed } => {
            assert_eq!(consumed, data.len());
            msg
        }
        other => panic!("{other:?}"),
    }
}

/// The events of one datagram, flattened.
fn udp_events(cfg: &Sip, payload: &[u8]) -> Vec<serde_json::Map<String, Value>> {
    let counters = AppCounters::default();
    let mut out = EventSink::new();
    let pkt = UdpPacket {
        ts: Ts(1_000_000_000),
        tuple: tuple("10.0.2.20", 5060, "10.0.2.15", 5060),
        payload,
    };
    parse_datagram(cfg, &counters, &mut out, &pkt);
    out.take()
        .into_iter()
        .map(crate::protos::testing::flat)
        .collect()
}

#[test]
fn request_and_response_lines() {
    let m = msg(INVITE);
    assert!(m.is_request);
    assert_eq!(m.get(&m.method), b"INVITE");
    assert_eq!(m.get(&m.request_uri), b"sip:test@10.0.2.15:5060");
    assert_eq!(m.version, (2, 0));
    assert_eq!(m.content_length, 123);
    assert_eq!(m.get(&m.body).len(), 123);
    assert_eq!(m.max_forwards, 70);
    let r = msg(TRYING);
    assert!(!r.is_request);
    assert_eq!(r.status_code, 100);
    assert_eq!(r.get(&r.status_phrase), b"Trying");
}

#[test]
fn every_split_gives_the_same_message() {
    for whole in [INVITE, TRYING, REGISTER] {
        let expected = msg(whole);
        for cut in 0..whole.len() {
            assert_eq!(parse(&whole[..cut]), Parsed::Incomplete, "cut at {cut}");
        }
        assert_eq!(msg(whole), expected);
    }
}

#[test]
fn tcp_stream_split_at_every_byte() {
    let mut stream = INVITE.to_vec();
    stream.extend_from_slice(b"\r\n");
    stream.extend_from_slice(INVITE);
    for cut in 1..stream.len() {
        let module = Arc::new(Module::new(sip(SipConfig::default()), &{
            CommonOptions {
                ports: vec![5060],
                send_request: false,
                send_response: false,
                transaction_timeout: Duration::from_secs(10),
            }
        }));
        let mut s = TcpSession::new(module, 5060);
        s.send(true, &stream[..cut], 0);
        s.send(true, &stream[cut..], 1);
        let evs = s.events();
        assert_eq!(evs.len(), 2, "cut at {cut}");
        for e in &evs {
            assert_eq!(
                e["event"]["original"].as_str().unwrap().as_bytes(),
                INVITE,
                "cut at {cut}"
            );
            assert_eq!(e["sip"]["method"], "INVITE");
            assert_eq!(e["network"]["transport"], "udp");
        }
    }
}

#[test]
fn broken_input_is_an_error_not_a_panic() {
    for bad in [
        &b"SIP/2.0 1\r\n"[..],
        b"SIP/2.0 abc Trying\r\n",
        b"INVITEsip:xSIP/2.0xx\r\n",
        b"INVITE sip:x HTTP/1.1\r\n",
        b"INVITE sip:x SIP/2\r\n",
    ] {
        assert!(matches!(parse(bad), Parsed::Error(_)), "{bad:?}");
    }
    // Negative Content-Length: Packetbeat panics on it, the message is lost.
    let neg = b"SIP/2.0 200 OK\r\nContent-Length: -5\r\n\r\nabcdef";
    assert!(matches!(parse(neg), Parsed::Error(_)));
    // Body shorter than announced: no event.
    let cfg = sip(SipConfig::default());
    assert!(udp_events(&cfg, &INVITE[..INVITE.len() - 1]).is_empty());
    // Arbitrary bytes never panic.
    let mut x: u32 = 1;
    for len in 0..400 {
        let data: Vec<u8> = (0..len)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                b"SIP/2.0 :\r\n<>;=@[]\" o=v=c=\x00\xc2\xa0"[(x >> 16) as usize % 27]
            })
            .collect();
        let _ = parse(&data);
        let _ = udp_events(&cfg, &data);
    }
}

#[test]
fn numbers_as_packetbeat_reads_them() {
    assert_eq!(parse_int(b"123abc"), Some(123));
    assert_eq!(parse_int(b"+7"), Some(7));
    assert_eq!(parse_int(b"-7"), Some(-7));
    assert_eq!(parse_int(b"x"), None);
    assert_eq!(parse_int(b""), None);
    assert_eq!(atoi(b"12a"), 0);
    assert_eq!(atoi(b"99999999999999999999"), i64::MAX);
    assert_eq!(atoi(b"-5"), -5);
}

#[test]
fn uris_and_name_addr() {
    let u = parse_uri(b"sip:test@10.0.2.15:5060;transport=tcp;user=phone");
    assert_eq!(u.scheme, b"sip");
    assert_eq!(u.username, b"test");
    assert_eq!(u.host, b"10.0.2.15");
    assert_eq!(u.port, 5060);
    assert_eq!(u.params["transport"], b"tcp");
    let u = parse_uri(b"sip:[2001:db8::1]:5070");
    assert_eq!(u.host, b"[2001:db8::1]");
    assert_eq!(u.port, 5070);
    let u = parse_uri(b"sip.cybercity.dk");
    assert_eq!(u.scheme, b"");
    assert_eq!(u.host, b"");
    let (d, uri, p) = parse_from_to(b"\"DVI4/8000\" <sip:sipp@10.0.2.20:5060>;tag=1").unwrap();
    assert_eq!(d, b"DVI4/8000");
    assert_eq!(uri, b"sip:sipp@10.0.2.20:5060");
    assert_eq!(p["tag"], b"1");
    // Packetbeat's slicing panics on a '>' before the '<': nothing.
    assert!(parse_from_to(b"a>b<c").is_none());
}

#[test]
fn event_fields_of_a_request() {
    let cfg = sip(SipConfig::default());
    let evs = udp_events(&cfg, INVITE);
    assert_eq!(evs.len(), 1);
    let e = &evs[0];
    assert_eq!(e["sip.method"], "INVITE");
    assert_eq!(e["event.action"], "sip-invite");
    assert_eq!(e["sip.sdp.owner.session_id"], "42");
    assert_eq!(e["sip.sdp.connection.address"], "10.0.2.20");
    // Packetbeat's contact fields come from the To header.
    assert_eq!(e["sip.contact.uri.original"], "sip:test@10.0.2.15:5060");
    assert!(!e.contains_key("event.outcome"));
    assert_eq!(e["event.original"].as_str().unwrap().as_bytes(), INVITE);
}

#[test]
fn options_switch_their_fields_off() {
    let cfg = sip(SipConfig {
        parse_authorization: false,
        parse_body: false,
        keep_original: false,
        transport_protocol: "TCP".into(),
    });
    let e = &udp_events(&cfg, INVITE)[0];
    assert!(!e.keys().any(|k| k.starts_with("sip.sdp")));
    assert!(!e.contains_key("event.original"));
    assert_eq!(e["network.transport"], "tcp");
    let e = &udp_events(&cfg, REGISTER)[0];
    assert!(!e.contains_key("sip.auth.scheme"));
    assert!(!e.contains_key("user.name"));
    // The category still says authentication: Packetbeat looks only at the header's presence.
    assert_eq!(
        e["event.category"],
        serde_json::json!(["network", "authentication"])
    );
    let common = CommonOptions {
        ports: vec![],
        send_request: false,
        send_response: false,
        transaction_timeout: Duration::from_secs(1),
    };
    let err = Sip::configure(
        &common,
        SipConfig {
            transport_protocol: "sctp".into(),
            ..SipConfig::default()
        },
    )
    .unwrap_err();
    assert_eq!(err.message, "unsupported transport_protocol: sctp");
}

#[test]
fn digest_authorization() {
    let cfg = sip(SipConfig::default());
    let e = &udp_events(&cfg, REGISTER)[0];
    assert_eq!(e["sip.auth.scheme"], "Digest");
    assert_eq!(e["sip.auth.realm"], "sip.cybercity.dk");
    assert_eq!(e["sip.auth.uri.host"], "192.168.1.2");
    assert_eq!(e["user.name"], "voi18062");
}

#[test]
fn responses_outcome_and_status() {
    let cfg = sip(SipConfig::default());
    let e = &udp_events(&cfg, TRYING)[0];
    assert!(!e.contains_key("event.outcome"));
    assert_eq!(e["event.reason"], "Trying");
    let busy = b"SIP/2.0 486 Busy Here\r\nCSeq: 2 INVITE\r\nContent-Length: 0\r\n\r\n";
    let e = &udp_events(&cfg, busy)[0];
    assert_eq!(e["event.outcome"], "failure");
    assert_eq!(e["status"], "Error");
    assert_eq!(e["event.action"], "sip-invite");
    // No Content-Length: the message ends with its headers (Packetbeat would wait for more).
    let ok = b"SIP/2.0 200 OK\r\nCSeq: 3 BYE\r\n\r\n";
    let e = &udp_events(&cfg, ok)[0];
    assert_eq!(e["event.outcome"], "success");
    assert_eq!(e["event.sequence"], 3);
}

#[test]
fn leading_crlf_and_two_messages_in_a_datagram() {
    let cfg = sip(SipConfig::default());
    let mut d = b"\r\n".to_vec();
    d.extend_from_slice(TRYING);
    d.extend_from_slice(TRYING);
    let evs = udp_events(&cfg, &d);
    assert_eq!(evs.len(), 2);
    // As Packetbeat copies it: from the message's start to the end of the datagram.
    assert_eq!(
        evs[0]["event.original"].as_str().unwrap().as_bytes(),
        &d[..]
    );
    assert_eq!(
        evs[1]["event.original"].as_str().unwrap().as_bytes(),
        TRYING
    );
}

#[test]
fn sdp_owner_quirks() {
    let cfg = sip(SipConfig::default());
    let body = b"v=0\r\no=\"alice\" 1 2 IN IP4 10.1.1.1\r\nc=IN IP4 10.1.1.2\r\nm=audio 1 RTP/AVP 0\r\nc=IN IP4 10.9.9.9\r\n";
    let mut m = format!(
        "INVITE sip:b@h SIP/2.0\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    m.extend_from_slice(body);
    let e = &udp_events(&cfg, &m)[0];
    // Packetbeat's offsets: the user loses its last character, the session id is a quote.
    assert_eq!(e["sip.sdp.owner.username"], "alic");
    assert_eq!(e["sip.sdp.owner.session_id"], "\"");
    assert_eq!(e["sip.sdp.connection.address"], "10.1.1.2");
    // An empty owner line makes Packetbeat panic: no event.
    let body = b"o=\r\n";
    let mut m = format!(
        "INVITE sip:b@h SIP/2.0\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    m.extend_from_slice(body);
    assert!(udp_events(&cfg, &m).is_empty());
}

#[test]
fn stream_scan_state() {
    use super::parser::{parse_from, Scan};
    // Not SIP: an error once the start line is complete, before any blank line.
    let mut scan = Scan::default();
    assert!(matches!(
        parse_from(b"GET / HTTP/1.1\r\nHost: x\r\n", &mut scan),
        Parsed::Error(_)
    ));
    // A message fed again and again with more bytes, as a stream does: the same message.
    let mut scan = Scan::default();
    for cut in 0..INVITE.len() {
        assert_eq!(
            parse_from(&INVITE[..cut], &mut scan),
            Parsed::Incomplete,
            "{cut}"
        );
    }
    assert_eq!(
        parse_from(INVITE, &mut scan),
        Parsed::Message {
            msg: msg(INVITE),
            consumed: INVITE.len()
        }
    );
    assert_eq!(scan, Scan::default());
}
