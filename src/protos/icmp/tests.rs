use super::parser::{self, human_readable, IcmpInfo};
use super::*;
use crate::protos::testing::{published_with, unhex};
use crate::publish::event::{Map, MapExt};
use serde_json::Value;
use std::net::IpAddr;

// ICMP parts of icmp/icmp4_ping.pcap and icmp/icmp6_ping.pcap (type, code, checksum, body).
const V4_REQUEST: &str = "080010200005000174657374";
const V4_REPLY: &str = "000018200005000174657374";
const V6_REQUEST: &str = "800097d60005000174657374";
const V6_REPLY: &str = "810096d60005000174657374";

fn info(version: u8, hex: &str) -> IcmpInfo {
    let b = unhex(hex);
    parser::parse(version, b[0], b[1], &b[4..]).unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The event as the pipeline would publish it.
fn published(t: &Transaction) -> Map {
    published_with(transaction_event(t), &[])
}

fn get<'a>(m: &'a Map, path: &str) -> Option<&'a Value> {
    m.get_path(path)
}

#[test]
fn parse_extracts_id_seq_and_length_from_captured_echo() {
    let req = info(4, V4_REQUEST);
    assert_eq!(
        (req.icmp_type, req.code, req.id, req.seq, req.length),
        (8, 0, 5, 1, 4)
    );
    let rep = info(6, V6_REPLY);
    assert_eq!((rep.icmp_type, rep.id, rep.seq, rep.length), (129, 5, 1, 4));
    // Types that do not pair carry no tracking data.
    let unreach = parser::parse(4, 3, 3, &[0xaa, 0xbb, 0xcc, 0xdd, 1, 2]).unwrap();
    assert_eq!((unreach.id, unreach.seq, unreach.length), (0, 0, 2));
}

#[test]
fn parse_rejects_what_packetbeat_does_not_process() {
    for n in 0..4 {
        assert!(parser::parse(4, 8, 0, &vec![0; n]).is_none());
        assert!(parser::parse(6, 128, 0, &vec![0; n]).is_none());
    }
    assert!(parser::parse(5, 8, 0, &[0; 8]).is_none());
    assert!(parser::parse(4, 8, 0, &[0; 4]).is_some());
}

#[test]
fn classification_follows_message_go() {
    assert!(parser::is_request(4, 8) && !parser::is_request(4, 0));
    assert!(!parser::is_request(4, 14) && !parser::is_request(4, 16) && !parser::is_request(4, 18));
    assert!(parser::is_request(4, 3) && parser::is_error(4, 3));
    assert!(parser::is_request(6, 128) && !parser::is_request(6, 129));
    assert!(parser::is_request(6, 135) && !parser::requires_counterpart(6, 135));
    assert!(parser::is_error(6, 2) && !parser::is_error(6, 128));
    assert!(parser::requires_counterpart(4, 17) && !parser::requires_counterpart(4, 5));
}

#[test]
fn human_readable_names() {
    // Packetbeat's system tests.
    assert_eq!(human_readable(4, 8, 0), "EchoRequest");
    assert_eq!(human_readable(4, 0, 0), "EchoReply");
    assert_eq!(human_readable(6, 128, 0), "EchoRequest");
    assert_eq!(human_readable(6, 129, 0), "EchoReply");
    // Packetbeat's message_test.go.
    assert_eq!(human_readable(4, 3, 3), "DestinationUnreachable(Port)");
    assert_eq!(
        human_readable(6, 1, 3),
        "DestinationUnreachable(AddressUnreachable)"
    );
    assert_eq!(human_readable(4, 3, 99), "DestinationUnreachable(Code: 99)");
    assert_eq!(human_readable(4, 8, 7), "EchoRequest");
    assert_eq!(human_readable(4, 200, 1), "200(1)");
    assert_eq!(human_readable(6, 3, 0), "TimeExceeded(HopLimitExceeded)");
}

#[test]
fn echo_pair_is_one_ok_transaction() {
    let mut icmp = Icmp::new(Duration::from_secs(10));
    let (a, b) = (ip("10.0.0.1"), ip("10.0.0.2"));
    assert!(icmp
        .handle(Ts(1_000), a, b, &info(4, V4_REQUEST))
        .is_empty());
    let done = icmp.handle(Ts(20_131_000), b, a, &info(4, V4_REPLY));
    assert_eq!(done.len(), 1);
    let t = &done[0];
    assert!(t.notes.is_empty() && !t.has_error());
    let m = published(t);
    assert_eq!(get(&m, "type"), Some(&Value::from("icmp")));
    assert_eq!(get(&m, "status"), Some(&Value::from("OK")));
    assert_eq!(get(&m, "path"), Some(&Value::from("10.0.0.2")));
    assert_eq!(get(&m, "icmp.version"), Some(&Value::from(4)));
    assert_eq!(
        get(&m, "icmp.request.message"),
        Some(&Value::from("EchoRequest"))
    );
    assert_eq!(get(&m, "icmp.response.type"), Some(&Value::from(0)));
    assert_eq!(get(&m, "source.bytes"), Some(&Value::from(4)));
    assert_eq!(get(&m, "destination.bytes"), Some(&Value::from(4)));
    assert_eq!(get(&m, "client.ip"), Some(&Value::from("10.0.0.1")));
    assert_eq!(get(&m, "server.ip"), Some(&Value::from("10.0.0.2")));
    assert_eq!(get(&m, "server.port"), None);
    assert_eq!(get(&m, "network.transport"), Some(&Value::from("icmp")));
    assert_eq!(get(&m, "network.protocol"), None);
    assert_eq!(get(&m, "event.dataset"), Some(&Value::from("icmp")));
    assert_eq!(
        get(&m, "event.type"),
        Some(&serde_json::json!(["connection"]))
    );
    assert_eq!(get(&m, "event.duration"), Some(&Value::from(20_130_000)));
    assert_eq!(get(&m, "network.bytes"), Some(&Value::from(8)));
    // Community ID of 10.0.0.1 -> 10.0.0.2 echo (libbeat flowhash).
    assert_eq!(
        get(&m, "network.community_id"),
        Some(&Value::from("1:YcMyyWJfhc95EW1GfXt6jlZ3DiQ="))
    );
    assert_eq!(get(&m, "error.message"), None);
}

#[test]
fn icmpv6_echo_uses_ipv6_icmp_transport() {
    let mut icmp = Icmp::new(Duration::from_secs(10));
    let (a, b) = (ip("::1"), ip("::2"));
    icmp.handle(Ts(0), a, b, &info(6, V6_REQUEST));
    let t = icmp.handle(Ts(5), b, a, &info(6, V6_REPLY)).remove(0);
    let m = published(&t);
    assert_eq!(
        get(&m, "network.transport"),
        Some(&Value::from("ipv6-icmp"))
    );
    assert_eq!(get(&m, "icmp.version"), Some(&Value::from(6)));
    assert_eq!(get(&m, "path"), Some(&Value::from("::2")));
    assert_eq!(
        get(&m, "icmp.response.message"),
        Some(&Value::from("EchoReply"))
    );
}

#[test]
fn orphan_response_duplicate_request_and_expiry() {
    let mut icmp = Icmp::new(Duration::from_secs(10));
    let (a, b) = (ip("10.0.0.1"), ip("10.0.0.2"));
    // A reply alone: published with the request side as source.
    let t = icmp.handle(Ts(0), b, a, &info(4, V4_REPLY)).remove(0);
    assert_eq!(t.notes, vec![ORPHANED_RESPONSE_MSG]);
    assert!(t.has_error());
    let m = published(&t);
    assert_eq!(get(&m, "source.ip"), Some(&Value::from("10.0.0.1")));
    assert_eq!(get(&m, "status"), Some(&Value::from("Error")));
    assert_eq!(get(&m, "source.bytes"), None);
    assert_eq!(get(&m, "destination.bytes"), Some(&Value::from(4)));
    assert_eq!(get(&m, "icmp.request"), None);
    assert_eq!(
        get(&m, "error.message"),
        Some(&Value::from(ORPHANED_RESPONSE_MSG))
    );
    assert_eq!(get(&m, "event.start"), None);

    // Same id/seq twice: the first request is closed with a note.
    assert!(icmp.handle(Ts(1), a, b, &info(4, V4_REQUEST)).is_empty());
    let dup = icmp.handle(Ts(2), a, b, &info(4, V4_REQUEST));
    assert_eq!(dup.len(), 1);
    assert_eq!(dup[0].notes, vec![DUPLICATE_REQUEST_MSG]);
    assert_eq!(
        published(&dup[0]).get_path("status"),
        Some(&Value::from("Error"))
    );

    // Not expired at exactly the timeout; expired after it.
    let ten = 10_000_000_000;
    assert!(icmp.expire(Some(Ts(2 + ten))).is_empty());
    let exp = icmp.expire(Some(Ts(3 + ten)));
    assert_eq!(exp.len(), 1);
    assert_eq!(exp[0].notes, vec![ORPHANED_REQUEST_MSG]);
    assert!(icmp.expire(None).is_empty());
}

#[test]
fn late_reply_after_timeout_is_an_orphan() {
    let mut icmp = Icmp::new(Duration::from_secs(1));
    let (a, b) = (ip("10.0.0.1"), ip("10.0.0.2"));
    let mut sink = EventSink::new();
    let body = unhex(V4_REQUEST);
    fn pkt(ts: i64, src: IpAddr, dst: IpAddr, bytes: &[u8]) -> IcmpPacket<'_> {
        IcmpPacket {
            ts: Ts(ts),
            src,
            dst,
            version: 4,
            icmp_type: bytes[0],
            code: bytes[1],
            body: &bytes[4..],
            vlans: [0, 0],
            ip_len: 20 + bytes.len(),
        }
    }
    icmp.process(&mut sink, &pkt(0, a, b, &body));
    let reply = unhex(V4_REPLY);
    icmp.process(&mut sink, &pkt(2_000_000_000, b, a, &reply));
    let events = sink.take();
    assert_eq!(events.len(), 2);
    let notes: Vec<_> = events
        .iter()
        .map(|e| e.pb.as_ref().unwrap().error_messages.clone())
        .collect();
    assert_eq!(notes[0], vec![ORPHANED_REQUEST_MSG.to_string()]);
    assert_eq!(notes[1], vec![ORPHANED_RESPONSE_MSG.to_string()]);
}

#[test]
fn non_paired_types_publish_at_once() {
    let mut icmp = Icmp::new(Duration::from_secs(10));
    let (a, b) = (ip("fe80::1"), ip("fe80::2"));
    // Neighbour solicitation: a request without counterpart, not an error.
    let ns = parser::parse(6, 135, 0, &[0; 24]).unwrap();
    let t = icmp.handle(Ts(0), a, b, &ns).remove(0);
    assert!(!t.has_error() && t.notes.is_empty());
    let m = published(&t);
    assert_eq!(
        get(&m, "icmp.request.message"),
        Some(&Value::from("NeighborSolicitation"))
    );
    assert_eq!(get(&m, "status"), Some(&Value::from("OK")));
    // Destination unreachable: an error.
    let du = parser::parse(4, 3, 3, &[0; 32]).unwrap();
    let t = icmp
        .handle(Ts(1), ip("10.0.0.9"), ip("10.0.0.1"), &du)
        .remove(0);
    let m = published(&t);
    assert_eq!(get(&m, "status"), Some(&Value::from("Error")));
    assert_eq!(
        get(&m, "icmp.request.message"),
        Some(&Value::from("DestinationUnreachable(Port)"))
    );
    assert_eq!(get(&m, "source.bytes"), Some(&Value::from(28)));
    assert!(icmp.is_idle());
}

#[test]
fn arbitrary_bytes_never_panic() {
    let mut icmp = Icmp::new(Duration::from_secs(1));
    let mut sink = EventSink::new();
    let mut seed = 0x1234_5678u32;
    for i in 0..3000 {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let len = (seed % 40) as usize;
        let bytes: Vec<u8> = (0..len).map(|j| (seed >> (j % 24)) as u8).collect();
        let version = if i % 2 == 0 { 4 } else { 6 };
        let (t, c) = ((seed >> 8) as u8, (seed >> 16) as u8);
        let t = if i % 3 == 0 {
            [8, 0, 128, 129][i % 4]
        } else {
            t
        };
        icmp.process(
            &mut sink,
            &IcmpPacket {
                ts: Ts(i as i64 * 1_000_000),
                src: ip("10.0.0.1"),
                dst: ip("10.0.0.2"),
                version,
                icmp_type: t,
                code: c,
                body: &bytes,
                vlans: [0, 0],
                ip_len: 0,
            },
        );
    }
    icmp.flush(&mut sink, Ts(0));
    assert!(icmp.is_idle());
}
