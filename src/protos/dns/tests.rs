//! Tests of the DNS analyzer: hand-made messages for every record type and malformation, and
//! the messages of the shared captures (see `testdata.rs`), including the golden event.

#[path = "testdata.rs"]
mod testdata;

use super::event::{effective_tld_plus_one, go_ip_string, EventOptions};
use super::parser::{parse_message, RData};
use super::*;
use crate::common::{IpPortTuple, TcpTuple};
use crate::protos::testing::{flat, published_with, tuple, unhex};
use crate::publish::{Event, Map};
use serde_json::{json, Value};
use testdata::Pkt;

fn opts() -> EventOptions {
    EventOptions::default()
}

const TIMEOUT: Duration = Duration::from_secs(10);

/// Feeds the UDP packets of a capture to one analyzer, then ends the capture.
fn run_udp(pkts: &[Pkt], o: EventOptions) -> Vec<Event> {
    let mut a = DnsUdp::new(TIMEOUT, o);
    let mut out = EventSink::new();
    let mut last = Ts(0);
    for p in pkts.iter().filter(|p| !p.tcp) {
        let payload = unhex(p.payload);
        last = Ts(p.ts_us * 1000);
        a.parse_udp(
            &mut out,
            &UdpPacket {
                ts: last,
                tuple: tuple(p.src, p.sport, p.dst, p.dport),
                payload: &payload,
            },
        );
    }
    a.flush(&mut out, last);
    out.take()
}

fn dns_of(e: &Event) -> Map {
    e.fields.get("dns").unwrap().as_object().unwrap().clone()
}

// ---------------------------------------------------------------------------------------------
// Golden file

#[test]
fn golden_http_basic_auth_dns_event() {
    let events = run_udp(testdata::HTTP_BASICAUTH, opts());
    assert_eq!(events.len(), 1);
    let got = flat(events.into_iter().next().unwrap());
    let golden: Value = serde_json::from_str(include_str!("testdata_golden_dns.json")).unwrap();
    let golden = golden.as_object().unwrap();
    let skip = |k: &str| {
        k.starts_with("@metadata.")
            || k.starts_with("agent.")
            || k.starts_with("ecs.")
            || k.starts_with("host.")
    };
    for (k, v) in golden {
        if skip(k) {
            continue;
        }
        assert_eq!(got.get(k), Some(v), "field {k}");
    }
    // Nothing more than the golden's keys, apart from those the golden comparison drops.
    for k in got.keys() {
        let dropped = [
            "event.start",
            "event.end",
            "@timestamp",
            "network.direction",
        ]
        .contains(&k.as_str());
        assert!(dropped || golden.contains_key(k), "unexpected field {k}");
    }
    assert_eq!(got["@timestamp"], json!("2015-02-18T00:13:09.003Z"));
    assert_eq!(got["event.start"], json!("2015-02-18T00:13:09.003Z"));
    assert_eq!(got["event.end"], json!("2015-02-18T00:13:09.023Z"));
}

// ---------------------------------------------------------------------------------------------
// Captures

#[test]
fn google_com_a_records() {
    let events = run_udp(testdata::DNS_GOOGLE_COM, opts());
    assert_eq!(events.len(), 1);
    let f = flat(events.into_iter().next().unwrap());
    assert_eq!(f["status"], json!("OK"));
    assert_eq!(f["query"], json!("class IN, type A, google.com"));
    assert_eq!(f["dns.question.registered_domain"], json!("google.com"));
    assert_eq!(f["dns.question.top_level_domain"], json!("com"));
    assert!(!f.contains_key("dns.question.subdomain"));
    assert_eq!(f["dns.answers_count"], json!(16));
    assert_eq!(f["dns.answers"].as_array().unwrap().len(), 16);
    assert_eq!(
        f["dns.answers"][0],
        json!({"name": "google.com", "type": "A", "class": "IN", "ttl": "126", "data": "62.214.62.249"})
    );
    assert_eq!(f["dns.resolved_ip"].as_array().unwrap().len(), 16);
    assert_eq!(f["related.ip"].as_array().unwrap().len(), 18);
    assert_eq!(f["source.bytes"], json!(28));
    assert_eq!(f["destination.bytes"], json!(284));
}

#[test]
fn mx_records_and_authorities() {
    let o = EventOptions {
        include_authorities: true,
        ..opts()
    };
    let events = run_udp(testdata::DNS_MX, o);
    assert_eq!(events.len(), 1);
    let f = flat(events.into_iter().next().unwrap());
    assert_eq!(
        f["dns.answers"][0],
        json!({"name": "elastic.co", "type": "MX", "class": "IN", "ttl": "276", "preference": 1, "data": "aspmx.l.google.com"})
    );
    assert_eq!(
        f["dns.answers"][1]["data"],
        json!("alt3.aspmx.l.google.com")
    );
    assert_eq!(f["dns.authorities_count"], json!(4));
    assert_eq!(f["dns.authorities"].as_array().unwrap().len(), 4);
    assert_eq!(f["dns.authorities"][0]["type"], json!("NS"));
    assert!(!f.contains_key("dns.resolved_ip"));
    // Without the option only the count is there.
    let f = flat(run_udp(testdata::DNS_MX, opts()).remove(0));
    assert!(!f.contains_key("dns.authorities"));
    assert_eq!(f["dns.authorities_count"], json!(4));
}

#[test]
fn nxdomain_with_soa_authority() {
    let o = EventOptions {
        include_authorities: true,
        ..opts()
    };
    let f = flat(run_udp(testdata::DNS_NOT_FOUND, o).remove(0));
    assert_eq!(f["status"], json!("Error"));
    assert_eq!(f["dns.response_code"], json!("NXDOMAIN"));
    assert_eq!(f["dns.answers_count"], json!(0));
    assert!(!f.contains_key("dns.answers"));
    assert!(!f.contains_key("error.message"));
    assert_eq!(
        f["dns.authorities"][0],
        json!({"name": "elastic.co", "type": "SOA", "class": "IN", "ttl": "838", "data": "ns-1183.awsdns-19.org",
               "rname": "awsdns-hostmaster.amazon.com", "serial": 1, "refresh": 7200, "retry": 900,
               "expire": 1209600, "minimum": 86400})
    );
    assert_eq!(f["dns.question.subdomain"], json!("nothing"));
    assert_eq!(f["dns.question.registered_domain"], json!("elastic.co"));
    assert_eq!(f["dns.question.top_level_domain"], json!("co"));
}

#[test]
fn ns_and_txt_and_additionals() {
    let f = flat(run_udp(testdata::DNS_NS, opts()).remove(0));
    assert_eq!(f["dns.answers"][0]["data"], json!("ns-1183.awsdns-19.org"));
    assert_eq!(f["dns.answers_count"], json!(4));

    let f = flat(run_udp(testdata::DNS_TXT, opts()).remove(0));
    assert_eq!(f["dns.answers_count"], json!(2));
    assert_eq!(
        f["dns.answers"][0]["data"],
        json!("globalsign-domain-verification=l2wl8KOddZFyKJFy_NG1ZUFdWDEIR3dT3Gk2O0_9wS")
    );
    assert!(f["dns.answers"][1]["data"]
        .as_str()
        .unwrap()
        .starts_with("v=spf1 include:_spf.google.com"));

    let o = EventOptions {
        include_authorities: true,
        include_additionals: true,
        ..opts()
    };
    let f = flat(run_udp(testdata::DNS_ADDITIONAL, o).remove(0));
    assert_eq!(f["dns.authorities_count"], json!(5));
    assert_eq!(f["dns.additionals_count"], json!(1));
    assert_eq!(f["dns.additionals"].as_array().unwrap().len(), 1);
    assert_eq!(f["dns.additionals"][0]["type"], json!("A"));
    // IPs of the additional section are not resolved IPs.
    assert_eq!(f["dns.resolved_ip"], json!(["193.99.144.80"]));
}

#[test]
fn edns_ds_rrsig() {
    let o = EventOptions {
        include_additionals: true,
        send_request: true,
        send_response: true,
        ..opts()
    };
    let f = flat(run_udp(testdata::DNS_UDP_EDNS_DS, o).remove(0));
    assert_eq!(f["dns.question.type"], json!("DS"));
    assert_eq!(f["dns.opt.do"], json!(true));
    assert_eq!(f["dns.opt.version"], json!("0"));
    assert_eq!(f["dns.opt.udp_size"], json!(4000));
    assert_eq!(f["dns.opt.ext_rcode"], json!("NOERROR"));
    assert_eq!(f["dns.header_flags"], json!(["RD", "RA", "AD", "DO"]));
    assert_eq!(f["dns.additionals_count"], json!(0));
    assert!(!f.contains_key("dns.additionals"));
    let answers = f["dns.answers"].as_array().unwrap();
    assert_eq!(answers.len(), 3);
    assert_eq!(answers[0]["type"], json!("DS"));
    assert_eq!(answers[0]["key_tag"], json!("45586"));
    assert_eq!(answers[0]["algorithm"], json!("RSASHA1"));
    assert_eq!(answers[0]["digest_type"], json!("SHA256"));
    assert_eq!(
        answers[0]["data"],
        json!("67FCD7E0B9E0366309F3B6F7476DFF931D5226EDC5348CD80FD82A081DFCF6EE")
    );
    assert_eq!(answers[1]["digest_type"], json!("SHA1"));
    assert_eq!(answers[2]["type"], json!("RRSIG"));
    assert_eq!(answers[2]["type_covered"], json!("DS"));
    assert_eq!(answers[2]["labels"], json!("2"));
    assert_eq!(answers[2]["original_ttl"], json!("86400"));
    assert_eq!(answers[2]["expiration"], json!("20130207154924"));
    assert_eq!(answers[2]["signer_name"], json!("org"));
    assert!(!f.contains_key("error.message"));
    assert_eq!(
        f["request"],
        json!("ID 2957; QR query; OPCODE QUERY; FLAGS rd; RCODE NOERROR; QUESTION class IN, type DS, ietf.org; ADDITIONAL ")
    );
    let resp = f["response"].as_str().unwrap();
    assert!(resp.starts_with("ID 2957; QR response; OPCODE QUERY; FLAGS rd ra ad; RCODE NOERROR; QUESTION class IN, type DS, ietf.org; ANSWER algorithm RSASHA1, digest_type SHA256, key_tag 45586, 67FCD7E0"), "{resp}");
}

#[test]
fn large_edns_response_without_query_is_orphaned() {
    let pkts = testdata::UDP_EDNS0_RESP;
    assert_eq!(unhex(pkts[0].payload).len(), 3398);
    let events = run_udp(pkts, opts());
    assert_eq!(events.len(), 1);
    let f = flat(events.into_iter().next().unwrap());
    assert_eq!(
        f["error.message"],
        json!("Response: received without an associated Query")
    );
    assert_eq!(f["status"], json!("Error"));
    assert_eq!(f["dns.type"], json!("answer"));
    assert_eq!(f["destination.bytes"], json!(3398));
    assert!(!f.contains_key("source.bytes"));
    assert!(!f.contains_key("event.start"));
    // Source is the querier (the response's destination).
    assert_eq!(f["source.ip"], json!("192.168.178.24"));
    assert_eq!(f["destination.port"], json!(53));
    assert_eq!(f["dns.answers_count"], json!(33));
    assert_eq!(f["dns.question.type"], json!("ANY"));
}

#[test]
fn flowhash_udp_capture() {
    let f = flat(run_udp(testdata::FLOWHASH_UDP, opts()).remove(0));
    assert_eq!(f["dns.answers_count"], json!(11));
    assert_eq!(f["status"], json!("OK"));
}

#[test]
fn every_capture_message_decodes_and_prefixes_never_panic() {
    let all: &[&[Pkt]] = &[
        testdata::DNS_ADDITIONAL,
        testdata::DNS_GOOGLE_COM,
        testdata::DNS_MX,
        testdata::DNS_NOT_FOUND,
        testdata::DNS_NS,
        testdata::DNS_TXT,
        testdata::DNS_UDP_EDNS_DS,
        testdata::UDP_EDNS0_RESP,
        testdata::FLOWHASH_UDP,
        testdata::HTTP_BASICAUTH,
    ];
    let mut seed = 0x1234_5678u64;
    for pkts in all {
        for p in pkts.iter().filter(|p| !p.tcp) {
            let b = unhex(p.payload);
            assert!(decode_dns_data(&b).is_some(), "{}", p.payload);
            for n in 0..b.len() {
                let _ = parse_message(&b[..n]);
            }
            // Random corruption: never a panic.
            for _ in 0..200 {
                let mut c = b.clone();
                for _ in 0..3 {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let i = (seed >> 33) as usize % c.len();
                    c[i] = (seed >> 17) as u8;
                }
                let _ = parse_message(&c);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Hand-made messages

/// Builds DNS messages.
struct B(Vec<u8>);

impl B {
    fn new(id: u16, bits: u16, counts: [u16; 4]) -> B {
        let mut v = id.to_be_bytes().to_vec();
        v.extend(bits.to_be_bytes());
        for c in counts {
            v.extend(c.to_be_bytes());
        }
        B(v)
    }
    fn name(mut self, n: &str) -> B {
        for l in n.split('.').filter(|l| !l.is_empty()) {
            self.0.push(l.len() as u8);
            self.0.extend(l.as_bytes());
        }
        self.0.push(0);
        self
    }
    fn raw(mut self, b: &[u8]) -> B {
        self.0.extend(b);
        self
    }
    fn question(self, n: &str, t: u16, c: u16) -> B {
        let mut s = self.name(n);
        s.0.extend(t.to_be_bytes());
        s.0.extend(c.to_be_bytes());
        s
    }
    /// An RR owned by the first question's name (pointer to offset 12).
    fn rr(mut self, t: u16, ttl: u32, rdata: &[u8]) -> B {
        self.0.extend([0xC0, 12]);
        self.0.extend(t.to_be_bytes());
        self.0.extend(1u16.to_be_bytes());
        self.0.extend(ttl.to_be_bytes());
        self.0.extend((rdata.len() as u16).to_be_bytes());
        self.0.extend(rdata);
        self
    }
}

fn wire_name(n: &str) -> Vec<u8> {
    B(Vec::new()).name(n).0
}

/// The `dns` object of the event published for one message alone (a query, or a response
/// without its query), with or without authorities and additionals.
fn published_dns(wire: &[u8], authorities: bool, additionals: bool) -> Map {
    let o = EventOptions {
        include_authorities: authorities,
        include_additionals: additionals,
        ..opts()
    };
    let mut a = DnsUdp::new(TIMEOUT, o);
    let mut out = EventSink::new();
    udp(&mut a, &mut out, 1, client_tuple(), wire);
    a.flush(&mut out, Ts(1));
    let mut events = out.take();
    assert_eq!(events.len(), 1);
    match published_with(events.remove(0), &[]).remove("dns") {
        Some(Value::Object(dns)) => dns,
        other => panic!("dns: {other:?}"),
    }
}

/// The answers of a response holding one record of type `t` with `rdata`.
fn answer_of(t: u16, rdata: &[u8]) -> Map {
    let m = B::new(1, 0x8180, [1, 1, 0, 0])
        .question("example.com", t, 1)
        .rr(t, 300, rdata);
    let map = published_dns(&m.0, true, true);
    match &map["answers"] {
        Value::Array(a) => a[0].as_object().unwrap().clone(),
        other => panic!("answers: {other}"),
    }
}

#[test]
fn nsec3_next_hashed_owner_is_padded_base32hex() {
    // Hash 1, flags 1, 12 iterations, salt AABBCCDD, the next hashed owner, type bitmap {A}.
    let nsec3 = |next: &[u8]| {
        let mut rdata = vec![1, 1, 0, 12, 4, 0xaa, 0xbb, 0xcc, 0xdd, next.len() as u8];
        rdata.extend(next);
        rdata.extend([0, 1, 0x40]);
        answer_of(50, &rdata)
    };
    let sha1: Vec<u8> = (0..20).collect();
    let m = nsec3(&sha1);
    // Go: base32.HexEncoding.EncodeToString.
    assert_eq!(m["data"], json!("000G40O40K30E209185GO38E1S8124GJ"));
    assert_eq!(m["salt"], json!("AABBCCDD"));
    assert_eq!(m["iterations"], json!("12"));
    assert_eq!(m["flags"], json!("1"));
    assert_eq!(m["type_bits"], json!("A"));
    let m = nsec3(&[0x00, 0x11, 0x22, 0x33, 0x44, 0x55]);
    assert_eq!(m["data"], json!("008I4CQ4AK======"));
}

#[test]
fn record_type_formatting() {
    let a = answer_of(1, &[10, 0, 0, 1]);
    assert_eq!(
        Value::Object(a),
        json!({"name": "example.com", "type": "A", "class": "IN", "ttl": "300", "data": "10.0.0.1"})
    );

    let mut v6 = [0u8; 16];
    v6[0] = 0x20;
    v6[1] = 0x01;
    v6[2] = 0x0d;
    v6[3] = 0xb8;
    v6[15] = 1;
    assert_eq!(answer_of(28, &v6)["data"], json!("2001:db8::1"));
    let mut mapped = [0u8; 16];
    mapped[10] = 0xff;
    mapped[11] = 0xff;
    mapped[12..].copy_from_slice(&[1, 2, 3, 4]);
    assert_eq!(answer_of(28, &mapped)["data"], json!("1.2.3.4"));

    assert_eq!(
        answer_of(5, &wire_name("alias.example.net"))["data"],
        json!("alias.example.net")
    );
    assert_eq!(
        answer_of(2, &wire_name("ns1.example.net"))["data"],
        json!("ns1.example.net")
    );
    assert_eq!(
        answer_of(12, &wire_name("host.example.net"))["data"],
        json!("host.example.net")
    );

    let mut mx = 10u16.to_be_bytes().to_vec();
    mx.extend([0xC0, 12]); // compressed exchange
    let m = answer_of(15, &mx);
    assert_eq!(m["preference"], json!(10));
    assert_eq!(m["data"], json!("example.com"));

    let mut soa = wire_name("ns.example.com");
    soa.extend(wire_name("admin.example.com"));
    for v in [2024010101u32, 3600, 600, 86400, 300] {
        soa.extend(v.to_be_bytes());
    }
    let m = answer_of(6, &soa);
    assert_eq!(m["data"], json!("ns.example.com"));
    assert_eq!(m["rname"], json!("admin.example.com"));
    assert_eq!(m["serial"], json!(2024010101u32));
    assert_eq!(m["minimum"], json!(300));

    let mut srv = Vec::new();
    for v in [1u16, 5, 5060] {
        srv.extend(v.to_be_bytes());
    }
    srv.extend(wire_name("sip.example.com"));
    let m = answer_of(33, &srv);
    assert_eq!(
        (
            m["priority"].clone(),
            m["weight"].clone(),
            m["port"].clone()
        ),
        (json!(1), json!(5), json!(5060))
    );
    assert_eq!(m["data"], json!("sip.example.com"));

    let txt = [&[5u8][..], b"hello", &[6], b"w\"o\\r\x01"].concat();
    assert_eq!(answer_of(16, &txt)["data"], json!("hello w\\\"o\\\\r\\001"));

    let mut dnskey = 257u16.to_be_bytes().to_vec();
    dnskey.extend([3, 8, 1, 2, 3, 4]);
    let m = answer_of(48, &dnskey);
    assert_eq!(m["flags"], json!("257"));
    assert_eq!(m["protocol"], json!("3"));
    assert_eq!(m["algorithm"], json!("RSASHA256"));
    assert_eq!(m["data"], json!("AQIDBA=="));

    let mut nsec = wire_name("next.example.com");
    nsec.extend([0, 6, 0x40, 0x01, 0, 0, 0, 0x03]); // A, MX, TXT? bits: 1, 15, 46, 47
    let m = answer_of(47, &nsec);
    assert_eq!(m["data"], json!("next.example.com."));
    assert_eq!(m["type_bits"], json!("A MX RRSIG NSEC"));

    let mut nsec3 = vec![1, 1, 0, 10, 2, 0xab, 0xcd, 5, 1, 2, 3, 4, 5];
    nsec3.extend([0, 1, 0x40]);
    let m = answer_of(50, &nsec3);
    assert_eq!(m["hash"], json!("SHA1"));
    assert_eq!(m["flags"], json!("1"));
    assert_eq!(m["iterations"], json!("10"));
    assert_eq!(m["salt"], json!("ABCD"));
    assert_eq!(m["data"], json!("04106105"));
    assert_eq!(m["type_bits"], json!("A"));

    // Padding for lengths that are not multiples of 5 bytes.
    nsec3[7] = 2;
    nsec3.truncate(10);
    nsec3.extend([0, 1, 0x40]);
    assert_eq!(answer_of(50, &nsec3)["data"], json!("0410===="));
    let m = answer_of(51, &[1, 0, 0, 0, 0]);
    assert_eq!(m["data"], json!("-"));
    assert_eq!(m["iterations"], json!("0"));

    // Known to miekg but not formatted by Packetbeat (CAA, HINFO): escaped RDATA.
    let caa = [&[0u8, 5][..], b"issue", b"ca.example.net"].concat();
    assert_eq!(
        answer_of(257, &caa)["data"],
        json!("\\000\\005issueca.example.net")
    );
    let hinfo = [&[3u8][..], b"CPU", &[2], b"OS"].concat();
    assert_eq!(answer_of(13, &hinfo)["data"], json!("\\003CPU\\002OS"));
    // Unknown type: the number as type, escaped RDATA with \t \r \n \" \\.
    let m = answer_of(4242, b"a\tb\r\n\"\\\x7f");
    assert_eq!(m["type"], json!("4242"));
    assert_eq!(m["data"], json!("a\\tb\\r\\n\\\"\\\\\\127"));
    // DNAME: the name is re-packed uncompressed.
    assert_eq!(
        answer_of(39, &[0xC0, 12])["data"],
        json!("\\007example\\003com\\000")
    );
}

#[test]
fn rrsig_fields() {
    let mut r = 1u16.to_be_bytes().to_vec(); // covers A
    r.extend([13, 2]);
    r.extend(3600u32.to_be_bytes());
    r.extend(1700000000u32.to_be_bytes());
    r.extend(1690000000u32.to_be_bytes());
    r.extend(12345u16.to_be_bytes());
    r.extend(wire_name("example.com"));
    r.extend([0xde, 0xad, 0xbe, 0xef]);
    let m = answer_of(46, &r);
    assert_eq!(
        Value::Object(m),
        json!({"name": "example.com", "type": "RRSIG", "class": "IN", "ttl": "300", "type_covered": "A",
               "algorithm": "ECDSAP256SHA256", "labels": "2", "original_ttl": "3600",
               "expiration": "20231114221320", "inception": "20230722042640", "key_tag": "12345",
               "signer_name": "example.com", "data": "3q2+7w=="})
    );
}

#[test]
fn names_are_escaped_like_miekg() {
    let m =
        B::new(1, 0x0100, [1, 0, 0, 0]).raw(&[3, b'a', b'.', b'b', 2, b'x', 0x01, 0, 0, 1, 0, 1]);
    let msg = decode_dns_data(&m.0).unwrap();
    assert_eq!(msg.questions[0].name, "a\\.b.x\\001");
    // The root.
    let m = B::new(1, 0x0100, [1, 0, 0, 0]).raw(&[0, 0, 2, 0, 1]);
    let msg = decode_dns_data(&m.0).unwrap();
    assert_eq!(msg.questions[0].name, ".");
    assert_eq!(
        event::question_to_string(&msg.questions[0]),
        "class IN, type NS, ."
    );
}

#[test]
fn compression_pointer_loops_and_bad_labels_are_errors() {
    // Pointer to itself.
    let m = B::new(1, 0x0100, [1, 0, 0, 0]).raw(&[0xC0, 12, 0, 1, 0, 1]);
    assert!(parse_message(&m.0).is_err());
    assert!(decode_dns_data(&m.0).is_none());
    // Two pointers pointing at each other.
    let m = B::new(1, 0x0100, [1, 0, 0, 0]).raw(&[0xC0, 14, 0xC0, 12]);
    assert!(parse_message(&m.0).is_err());
    // Reserved label types 0x40 / 0x80.
    let m = B::new(1, 0x0100, [1, 0, 0, 0]).raw(&[0x41, 0, 0, 1, 0, 1]);
    assert!(parse_message(&m.0).is_err());
    // Pointer past the end.
    let m = B::new(1, 0x0100, [1, 0, 0, 0]).raw(&[0xC0, 200, 0, 1, 0, 1]);
    assert!(parse_message(&m.0).is_err());
    // A name longer than 255 octets.
    let mut long = Vec::new();
    for _ in 0..5 {
        long.push(63);
        long.extend([b'a'; 63]);
    }
    long.push(0);
    let m = B::new(1, 0x0100, [1, 0, 0, 0])
        .raw(&long)
        .raw(&[0, 1, 0, 1]);
    assert!(parse_message(&m.0).is_err());
    // Chains of 126 pointers are accepted, 127 are not (miekg's maxCompressionPointers).
    for (n, ok) in [(126usize, true), (127, false)] {
        let mut b = vec![0u8]; // the root at offset 0
        for i in 0..n {
            let target = if i == 0 { 0 } else { 1 + 2 * (i - 1) };
            b.extend([0xC0 | (target >> 8) as u8, target as u8]);
        }
        let last = b.len() - 2;
        let r = parser::unpack_domain_name(&b, last);
        assert_eq!(r.is_ok(), ok, "{n} pointers");
        if ok {
            assert_eq!(r.unwrap(), (".".to_string(), last + 2));
        }
    }
}

#[test]
fn truncated_and_corrupted_messages() {
    let good = B::new(7, 0x8180, [1, 1, 0, 0])
        .question("example.com", 1, 1)
        .rr(1, 60, &[1, 2, 3, 4])
        .0;
    assert!(decode_dns_data(&good).is_some());
    // Header only, or shorter: rejected (Packetbeat's Len() <= 12 check / ErrBuf).
    assert!(decode_dns_data(&good[..12]).is_none());
    assert!(decode_dns_data(&good[..5]).is_none());
    assert!(decode_dns_data(&[]).is_none());
    // Cut inside the answer: error.
    for n in 30..good.len() {
        assert!(decode_dns_data(&good[..n]).is_none(), "cut at {n}");
    }
    // Cut exactly after the question: the answer count was a lie, accepted.
    let q_end = 12 + wire_name("example.com").len() + 4;
    let m = decode_dns_data(&good[..q_end]).unwrap();
    assert!(m.answers.is_empty());
    // Question without type/class: accepted with zero type and class.
    let m = decode_dns_data(&good[..12 + wire_name("example.com").len()]).unwrap();
    assert_eq!((m.questions[0].qtype, m.questions[0].qclass), (0, 0));
    // RDLENGTH beyond the message.
    let mut bad = good.clone();
    let l = bad.len();
    bad[l - 5] = 9;
    assert!(decode_dns_data(&bad).is_none());
    // RDATA longer than the type's fields (A with 5 bytes): bad rdlength.
    let m = B::new(7, 0x8180, [1, 1, 0, 0])
        .question("example.com", 1, 1)
        .rr(1, 60, &[1, 2, 3, 4, 5])
        .0;
    assert!(decode_dns_data(&m).is_none());
    // A with no RDATA: decoded, counted, but not listed.
    let m = B::new(7, 0x8180, [1, 1, 0, 0])
        .question("example.com", 1, 1)
        .rr(1, 60, &[])
        .0;
    assert!(decode_dns_data(&m).is_some());
    let map = published_dns(&m, false, false);
    assert_eq!(map["answers_count"], json!(1));
    assert_eq!(map["answers"], json!([]));
    assert!(!map.contains_key("resolved_ip"));
    // MX cut after the preference: the exchange stays empty.
    let m = answer_of(15, &[0, 5]);
    assert_eq!(
        (m["preference"].clone(), m["data"].clone()),
        (json!(5), json!(""))
    );
    // Broken NSEC bitmap: the whole message is rejected.
    let mut nsec = wire_name("n.example.com");
    nsec.extend([0, 0]);
    let m = B::new(7, 0x8180, [1, 1, 0, 0])
        .question("example.com", 47, 1)
        .rr(47, 60, &nsec)
        .0;
    assert!(decode_dns_data(&m).is_none());
    // Bad EDNS client subnet family: rejected.
    let opt = [
        &[0u8][..],
        &41u16.to_be_bytes(),
        &4096u16.to_be_bytes(),
        &[0, 0, 0, 0],
        &8u16.to_be_bytes(),
        &[0, 8, 0, 9, 0, 0, 0, 0, 0, 0],
    ]
    .concat();
    let m = B::new(7, 0x0100, [1, 0, 0, 1])
        .question("example.com", 1, 1)
        .raw(&opt)
        .0;
    assert!(decode_dns_data(&m).is_none());
}

#[test]
fn edns_options_and_extended_rcode() {
    let mut rdata = Vec::new();
    let mut opt = |code: u16, data: &[u8]| {
        rdata.extend(code.to_be_bytes());
        rdata.extend((data.len() as u16).to_be_bytes());
        rdata.extend(data);
    };
    opt(8, &[0, 1, 24, 0, 192, 168, 1]);
    opt(10, &[1, 2, 3, 4, 5, 6, 7, 8]);
    opt(3, b"ns1");
    opt(5, &[8, 13, 99]);
    opt(65001, &[0xab]);
    opt(12, &[0, 0]);
    // Extended RCODE 1 (<< 4 = 16, BADSIG/BADVERS), version 0, DO.
    let ttl = 0x0100_8000u32;
    let add = [
        &[0u8][..],
        &41u16.to_be_bytes(),
        &1232u16.to_be_bytes(),
        &ttl.to_be_bytes(),
        &(rdata.len() as u16).to_be_bytes(),
        &rdata,
    ]
    .concat();
    let m = B::new(9, 0x8180, [1, 0, 0, 1])
        .question("example.com", 1, 1)
        .raw(&add)
        .0;
    let msg = decode_dns_data(&m).unwrap();
    assert_eq!(msg.rcode, 16);
    let map = published_dns(&m, false, true);
    assert_eq!(
        map["opt"],
        json!({"do": true, "version": "0", "udp_size": 1232, "ext_rcode": "BADSIG",
               "subnet": "192.168.1.0/24/0", "cookie": "0102030405060708", "nsid": "6e7331",
               "dau": " RSASHA256 ECDSAP256SHA256 99", "local": "65001:0xab"})
    );
    assert_eq!(map["response_code"], json!("BADSIG"));
    assert_eq!(map["header_flags"], json!(["RD", "RA", "DO"]));
    assert_eq!(map["additionals_count"], json!(0));
    assert!(!map.contains_key("additionals"));
}

#[test]
fn go_ip_formatting() {
    let p = |s: &str| match s.parse::<std::net::IpAddr>().unwrap() {
        std::net::IpAddr::V4(a) => a.octets().to_vec(),
        std::net::IpAddr::V6(a) => a.octets().to_vec(),
    };
    assert_eq!(
        go_ip_string(&p("2606:2800:220:1:248:1893:25c8:1946")),
        "2606:2800:220:1:248:1893:25c8:1946"
    );
    assert_eq!(go_ip_string(&p("::")), "::");
    assert_eq!(go_ip_string(&p("::1")), "::1");
    assert_eq!(go_ip_string(&p("1::")), "1::");
    assert_eq!(go_ip_string(&p("1:0:0:2:0:0:0:3")), "1:0:0:2::3");
    assert_eq!(go_ip_string(&p("1:0:0:2:0:0:3:4")), "1::2:0:0:3:4");
    assert_eq!(go_ip_string(&p("1:0:2:3:4:5:6:7")), "1:0:2:3:4:5:6:7");
    assert_eq!(go_ip_string(&p("::ffff:10.1.2.3")), "10.1.2.3");
    assert_eq!(go_ip_string(&p("::10.1.2.3")), "::a01:203");
}

#[test]
fn public_suffix_fields() {
    assert_eq!(
        effective_tld_plus_one("www.example.com").as_deref(),
        Some("example.com")
    );
    assert_eq!(
        effective_tld_plus_one("a.b.example.co.uk").as_deref(),
        Some("example.co.uk")
    );
    assert_eq!(
        effective_tld_plus_one("foo.bar.unknowntld").as_deref(),
        Some("bar.unknowntld")
    );
    assert_eq!(effective_tld_plus_one("co.uk"), None);
    assert_eq!(effective_tld_plus_one("com"), None);
    assert_eq!(effective_tld_plus_one(""), None);
    assert_eq!(effective_tld_plus_one("a..b"), None);
    // Private section of the list, as golang.org/x/net/publicsuffix uses it.
    assert_eq!(
        effective_tld_plus_one("foo.bar.github.io").as_deref(),
        Some("bar.github.io")
    );

    let q = |name: &str| {
        let m = B::new(1, 0x0100, [1, 0, 0, 0]).question(name, 1, 1).0;
        let map = published_dns(&m, false, false);
        map["question"].clone()
    };
    // A bare public suffix with one dot: Packetbeat's fallback.
    assert_eq!(
        q("co.uk"),
        json!({"name": "co.uk", "type": "A", "class": "IN", "registered_domain": "co.uk", "top_level_domain": "uk"})
    );
    // No dot: no PSL fields.
    assert_eq!(
        q("localhost"),
        json!({"name": "localhost", "type": "A", "class": "IN"})
    );
    assert_eq!(
        q("a.b.example.co.uk"),
        json!({"name": "a.b.example.co.uk", "type": "A", "class": "IN", "registered_domain": "example.co.uk",
               "etld_plus_one": "example.co.uk", "top_level_domain": "co.uk", "subdomain": "a.b"})
    );
}

// ---------------------------------------------------------------------------------------------
// Pairing and timeouts

fn udp(a: &mut DnsUdp, out: &mut EventSink, ts_ns: i64, t: IpPortTuple, b: &[u8]) {
    a.parse_udp(
        out,
        &UdpPacket {
            ts: Ts(ts_ns),
            tuple: t,
            payload: b,
        },
    );
}

fn client_tuple() -> IpPortTuple {
    IpPortTuple::new(
        "10.0.0.1".parse().unwrap(),
        40000,
        "10.0.0.53".parse().unwrap(),
        53,
    )
}

fn query(id: u16) -> Vec<u8> {
    B::new(id, 0x0100, [1, 0, 0, 0])
        .question("example.com", 1, 1)
        .0
}

fn reply(id: u16) -> Vec<u8> {
    B::new(id, 0x8180, [1, 1, 0, 0])
        .question("example.com", 1, 1)
        .rr(1, 60, &[1, 2, 3, 4])
        .0
}

#[test]
fn pairing_by_id_and_tuple() {
    let mut a = DnsUdp::new(TIMEOUT, opts());
    let mut out = EventSink::new();
    let t = client_tuple();
    udp(&mut a, &mut out, 1_000, t, &query(1));
    udp(&mut a, &mut out, 2_000, t, &query(2));
    // Response to 2 first, then to 1.
    udp(&mut a, &mut out, 3_000, t.reversed(), &reply(2));
    udp(&mut a, &mut out, 4_000, t.reversed(), &reply(1));
    let ev = out.take();
    assert_eq!(ev.len(), 2);
    assert_eq!(dns_of(&ev[0])["id"], json!(2));
    assert_eq!(ev[0].timestamp, Ts(2_000));
    assert_eq!(dns_of(&ev[1])["id"], json!(1));
    assert_eq!(ev[1].pb.as_ref().unwrap().event.end, Some(Ts(4_000)));
    // A response from another server does not match.
    udp(&mut a, &mut out, 5_000, t, &query(3));
    let other = IpPortTuple::new(
        "10.0.0.54".parse().unwrap(),
        53,
        "10.0.0.1".parse().unwrap(),
        40000,
    );
    udp(&mut a, &mut out, 6_000, other, &reply(3));
    let ev = out.take();
    assert_eq!(ev.len(), 1);
    let f = flat(ev.into_iter().next().unwrap());
    assert_eq!(
        f["error.message"],
        json!("Response: received without an associated Query")
    );
    assert_eq!(f["source.ip"], json!("10.0.0.1"));
    assert_eq!(f["destination.ip"], json!("10.0.0.54"));
    assert_eq!(f["method"], json!("QUERY"));
    assert_eq!(f["dns.resolved_ip"], json!(["1.2.3.4"]));
    assert!(!f.contains_key("event.start"));
    assert_eq!(a.txs.len(), 1);
}

#[test]
fn duplicate_query_closes_the_first() {
    let mut a = DnsUdp::new(TIMEOUT, opts());
    let mut out = EventSink::new();
    let t = client_tuple();
    udp(&mut a, &mut out, 1_000, t, &query(5));
    udp(&mut a, &mut out, 2_000, t, &query(5));
    let ev = out.take();
    assert_eq!(ev.len(), 1);
    let f = flat(ev.into_iter().next().unwrap());
    assert_eq!(
        f["error.message"],
        json!("Another query with the same DNS ID from this client was received so this query was closed without receiving a response")
    );
    assert_eq!(f["dns.type"], json!("query"));
    assert_eq!(f["status"], json!("Error"));
    assert_eq!(f["source.bytes"], json!(29));
    assert!(!f.contains_key("destination.bytes"));
    assert_eq!(f["@timestamp"], json!("1970-01-01T00:00:00.000Z"));
}

#[test]
fn timeout_runs_on_packet_time() {
    let mut a = DnsUdp::new(Duration::from_secs(2), opts());
    let mut out = EventSink::new();
    let t = client_tuple();
    let base = 1_700_000_000_000_000_000i64;
    udp(&mut a, &mut out, base, t, &query(7));
    a.tick(&mut out, Ts(base + 2_000_000_000));
    assert!(out.is_empty(), "not expired at exactly the timeout");
    a.tick(&mut out, Ts(base + 2_000_000_001));
    let ev = out.take();
    assert_eq!(ev.len(), 1);
    let f = flat(ev.into_iter().next().unwrap());
    assert_eq!(
        f["error.message"],
        json!("No response to this query was received")
    );
    assert_eq!(f["dns.type"], json!("query"));
    assert_eq!(f["query"], json!("class IN, type A, example.com"));
    assert_eq!(f["dns.answers_count"], json!(0));
    assert_eq!(f["dns.header_flags"], json!(["RD"]));
    // The late response is an orphan.
    udp(
        &mut a,
        &mut out,
        base + 3_000_000_000,
        t.reversed(),
        &reply(7),
    );
    let ev = out.take();
    assert_eq!(
        flat(ev.into_iter().next().unwrap())["error.message"],
        json!("Response: received without an associated Query")
    );
    // A response arriving after the timeout but before any tick: the query expires first.
    udp(&mut a, &mut out, base + 10_000_000_000, t, &query(8));
    udp(
        &mut a,
        &mut out,
        base + 13_000_000_000,
        t.reversed(),
        &reply(8),
    );
    let ev: Vec<Map> = out.take().into_iter().map(flat).collect();
    assert_eq!(ev.len(), 2);
    assert_eq!(
        ev[0]["error.message"],
        json!("No response to this query was received")
    );
    assert_eq!(
        ev[1]["error.message"],
        json!("Response: received without an associated Query")
    );
    // End of capture publishes what is pending.
    udp(&mut a, &mut out, base + 20_000_000_000, t, &query(9));
    a.flush(&mut out, Ts(base + 20_000_000_000));
    assert_eq!(out.take().len(), 1);
}

#[test]
fn edns_mismatch_and_size_notes() {
    let t = client_tuple();
    let opt_rr = [
        &[0u8][..],
        &41u16.to_be_bytes(),
        &4096u16.to_be_bytes(),
        &[0, 0, 0, 0],
        &[0, 0],
    ]
    .concat();
    let q_edns = B::new(3, 0x0100, [1, 0, 0, 1])
        .question("example.com", 1, 1)
        .raw(&opt_rr)
        .0;
    let r_plain = reply(3);
    let mut a = DnsUdp::new(TIMEOUT, opts());
    let mut out = EventSink::new();
    udp(&mut a, &mut out, 1, t, &q_edns);
    udp(&mut a, &mut out, 2, t.reversed(), &r_plain);
    let f = flat(out.take().remove(0));
    assert_eq!(f["error.message"], json!("Responder does not support EDNS"));
    assert_eq!(f["status"], json!("OK"));

    let r_edns = B::new(4, 0x8180, [1, 0, 0, 1])
        .question("example.com", 1, 1)
        .raw(&opt_rr)
        .0;
    udp(&mut a, &mut out, 3, t, &query(4));
    udp(&mut a, &mut out, 4, t.reversed(), &r_edns);
    let f = flat(out.take().remove(0));
    assert_eq!(f["error.message"], json!("Unexpected EDNS answer"));
    assert_eq!(f["dns.opt.udp_size"], json!(4096));

    // A non-EDNS response over 512 bytes.
    let mut big = B::new(6, 0x8180, [1, 40, 0, 0]).question("example.com", 16, 1);
    for _ in 0..40 {
        big = big.rr(16, 60, &[&[10u8][..], b"0123456789"].concat());
    }
    udp(&mut a, &mut out, 5, t, &query(6));
    udp(&mut a, &mut out, 6, t.reversed(), &big.0);
    let f = flat(out.take().remove(0));
    assert_eq!(
        f["error.message"],
        json!("Response: Non-EDNS packet has size greater than 512")
    );
}

#[test]
fn malformed_udp_is_ignored() {
    let mut a = DnsUdp::new(TIMEOUT, opts());
    let mut out = EventSink::new();
    udp(
        &mut a,
        &mut out,
        1,
        client_tuple(),
        b"\x00\x01 definitely not dns",
    );
    udp(&mut a, &mut out, 2, client_tuple(), &[0u8; 12]);
    a.flush(&mut out, Ts(3));
    assert!(out.is_empty());
}

#[test]
fn send_request_and_response_text() {
    let o = EventOptions {
        send_request: true,
        send_response: true,
        ..opts()
    };
    let f = flat(run_udp(testdata::DNS_MX, o).remove(0));
    assert_eq!(f["request"], json!("ID 55804; QR query; OPCODE QUERY; FLAGS rd; RCODE NOERROR; QUESTION class IN, type MX, elastic.co"));
    let resp = f["response"].as_str().unwrap();
    assert!(
        resp.starts_with("ID 55804; QR response; OPCODE QUERY; FLAGS rd ra; RCODE NOERROR; QUESTION class IN, type MX, elastic.co; ANSWER aspmx.l.google.com; alt3.aspmx.l.google.com;"),
        "{resp}"
    );
    assert!(resp.contains("; AUTHORITY ns-"), "{resp}");
}

// ---------------------------------------------------------------------------------------------
// TCP

fn tcp_tuple() -> TcpTuple {
    TcpTuple {
        tuple: IpPortTuple::new(
            "1.1.1.2".parse().unwrap(),
            1042,
            "1.1.1.1".parse().unwrap(),
            53,
        ),
        stream_id: 1,
    }
}

fn seg(c: &mut DnsTcpConnection, out: &mut EventSink, dir: TcpDirection, ts: i64, payload: &[u8]) {
    let conn = tcp_tuple();
    let t = if dir == TcpDirection::Original {
        conn.tuple
    } else {
        conn.tuple.reversed()
    };
    c.parse(
        out,
        &conn,
        dir,
        &TcpPacket {
            ts: Ts(ts),
            tuple: t,
            payload,
        },
    );
}

fn axfr() -> (Vec<u8>, Vec<u8>) {
    let p: Vec<&Pkt> = testdata::DNS_TCP_AXFR
        .iter()
        .filter(|p| !p.payload.is_empty())
        .collect();
    (unhex(p[0].payload), unhex(p[1].payload))
}

#[test]
fn tcp_axfr_capture() {
    let mut c = DnsTcpConnection::new(TIMEOUT, opts());
    let mut out = EventSink::new();
    let (q, r) = axfr();
    seg(&mut c, &mut out, TcpDirection::Original, 1_000, &q);
    seg(&mut c, &mut out, TcpDirection::Reverse, 2_000, &r);
    c.received_fin(&mut out, &tcp_tuple(), TcpDirection::Original, Ts(3_000));
    c.received_fin(&mut out, &tcp_tuple(), TcpDirection::Reverse, Ts(3_000));
    c.expired(&mut out, &tcp_tuple(), Ts(4_000));
    let ev = out.take();
    assert_eq!(ev.len(), 1);
    let f = flat(ev.into_iter().next().unwrap());
    assert_eq!(f["network.transport"], json!("tcp"));
    assert_eq!(f["query"], json!("class IN, type AXFR, etas.com"));
    assert_eq!(f["status"], json!("OK"));
    assert_eq!(f["source.bytes"], json!(30));
    assert_eq!(f["destination.bytes"], json!(197));
    assert_eq!(f["dns.answers_count"], json!(4));
    assert_eq!(f["dns.answers"][0]["type"], json!("SOA"));
    assert_eq!(f["dns.answers"][0]["data"], json!("training2003p"));
    assert_eq!(f["dns.answers"][2]["data"], json!("1.1.1.1"));
    assert!(!f.contains_key("error.message"));
}

#[test]
fn tcp_framing_split_at_every_byte() {
    let (q, r) = axfr();
    for split_q in 0..=q.len() {
        for split_r in [0, 1, 2, 3, 50, r.len() - 1, r.len()] {
            let mut c = DnsTcpConnection::new(TIMEOUT, opts());
            let mut out = EventSink::new();
            for (dir, data, split, ts) in [
                (TcpDirection::Original, &q, split_q, 1_000),
                (TcpDirection::Reverse, &r, split_r, 2_000),
            ] {
                for (i, part) in [&data[..split], &data[split..]].into_iter().enumerate() {
                    if !part.is_empty() {
                        seg(&mut c, &mut out, dir, ts + i as i64, part);
                    }
                }
            }
            let ev = out.take();
            assert_eq!(ev.len(), 1, "split {split_q}/{split_r}");
            assert_eq!(
                ev[0].fields.get("status").unwrap(),
                json!("OK"),
                "split {split_q}/{split_r}"
            );
            // The message time is that of its first segment.
            assert_eq!(
                ev[0].timestamp,
                Ts(if split_q == 0 { 1_001 } else { 1_000 })
            );
        }
    }
}

fn framed(m: &[u8]) -> Vec<u8> {
    let mut v = (m.len() as u16).to_be_bytes().to_vec();
    v.extend(m);
    v
}

#[test]
fn tcp_two_messages_in_one_segment_like_packetbeat() {
    // Packetbeat decodes one message per segment: the second query waits for the next segment
    // of its direction and takes that segment's time.
    let mut c = DnsTcpConnection::new(TIMEOUT, opts());
    let mut out = EventSink::new();
    let both = [framed(&query(1)), framed(&query(2))].concat();
    seg(&mut c, &mut out, TcpDirection::Original, 1_000, &both);
    assert_eq!(c.txs.len(), 1);
    seg(
        &mut c,
        &mut out,
        TcpDirection::Original,
        5_000,
        &framed(&query(3)),
    );
    assert_eq!(c.txs.len(), 2);
    let replies = [framed(&reply(1)), framed(&reply(2))].concat();
    seg(&mut c, &mut out, TcpDirection::Reverse, 6_000, &replies);
    seg(
        &mut c,
        &mut out,
        TcpDirection::Reverse,
        7_000,
        &framed(&reply(3)),
    );
    let ev = out.take();
    assert_eq!(ev.len(), 2);
    assert_eq!(dns_of(&ev[0])["id"], json!(1));
    assert_eq!(dns_of(&ev[1])["id"], json!(2));
    assert_eq!(ev[1].timestamp, Ts(5_000));
    // Query 3 is still buffered; the connection ending reports nothing for it, and reply 3 is
    // still buffered too.
    c.expired(&mut out, &tcp_tuple(), Ts(8_000));
    assert!(out.is_empty());
}

#[test]
fn tcp_undecodable_response_closes_the_query() {
    let mut c = DnsTcpConnection::new(TIMEOUT, opts());
    let mut out = EventSink::new();
    seg(
        &mut c,
        &mut out,
        TcpDirection::Original,
        1_000,
        &framed(&query(1)),
    );
    seg(
        &mut c,
        &mut out,
        TcpDirection::Reverse,
        2_000,
        &framed(b"garbage garbage garbage"),
    );
    let ev = out.take();
    assert_eq!(ev.len(), 1);
    let f = flat(ev.into_iter().next().unwrap());
    assert_eq!(
        f["error.message"],
        json!("Response: Message's data could not be decoded as DNS")
    );
    assert_eq!(f["dns.type"], json!("query"));
    assert_eq!(f["source.bytes"], json!(31));

    // Zero length prefix.
    let mut c = DnsTcpConnection::new(TIMEOUT, opts());
    seg(
        &mut c,
        &mut out,
        TcpDirection::Original,
        1_000,
        &framed(&query(1)),
    );
    seg(&mut c, &mut out, TcpDirection::Reverse, 2_000, &[0, 0, 1]);
    let f = flat(out.take().remove(0));
    assert_eq!(
        f["error.message"],
        json!("Response: Message's length was set to zero")
    );

    // Incomplete response at FIN.
    let mut c = DnsTcpConnection::new(TIMEOUT, opts());
    seg(
        &mut c,
        &mut out,
        TcpDirection::Original,
        1_000,
        &framed(&query(1)),
    );
    seg(
        &mut c,
        &mut out,
        TcpDirection::Reverse,
        2_000,
        &framed(&reply(1))[..10],
    );
    assert!(out.is_empty());
    c.received_fin(&mut out, &tcp_tuple(), TcpDirection::Reverse, Ts(3_000));
    let f = flat(out.take().remove(0));
    assert_eq!(
        f["error.message"],
        json!("Response: Message's data is incomplete")
    );

    // Garbage query: dropped silently, no event.
    let mut c = DnsTcpConnection::new(TIMEOUT, opts());
    seg(
        &mut c,
        &mut out,
        TcpDirection::Original,
        1_000,
        &framed(b"not a dns message at all"),
    );
    c.expired(&mut out, &tcp_tuple(), Ts(2_000));
    assert!(out.is_empty());
}

#[test]
fn tcp_unanswered_query_is_reported_when_the_connection_ends() {
    let mut c = DnsTcpConnection::new(TIMEOUT, opts());
    let mut out = EventSink::new();
    seg(
        &mut c,
        &mut out,
        TcpDirection::Original,
        1_000,
        &framed(&query(1)),
    );
    c.expired(&mut out, &tcp_tuple(), Ts(2_000));
    let f = flat(out.take().remove(0));
    assert_eq!(
        f["error.message"],
        json!("No response to this query was received")
    );
    assert_eq!(f["network.transport"], json!("tcp"));
}

#[test]
fn tcp_gap_decodes_what_is_complete_and_drops() {
    let mut c = DnsTcpConnection::new(TIMEOUT, opts());
    let mut out = EventSink::new();
    assert!(c.gap_in_stream(&mut out, &tcp_tuple(), TcpDirection::Original, 10, Ts(1)));
    let mut c = DnsTcpConnection::new(TIMEOUT, opts());
    seg(
        &mut c,
        &mut out,
        TcpDirection::Original,
        1_000,
        &framed(&query(1)),
    );
    // Nothing buffered on the reverse side: keep the connection.
    assert!(!c.gap_in_stream(&mut out, &tcp_tuple(), TcpDirection::Reverse, 10, Ts(2_000)));
    seg(
        &mut c,
        &mut out,
        TcpDirection::Reverse,
        3_000,
        &framed(&reply(1))[..20],
    );
    assert!(c.gap_in_stream(&mut out, &tcp_tuple(), TcpDirection::Reverse, 10, Ts(4_000)));
    let f = flat(out.take().remove(0));
    assert_eq!(
        f["error.message"],
        json!("Response: Message's data is incomplete")
    );
}

#[test]
fn config_and_module() {
    let yaml: serde_yaml::Value =
        serde_yaml::from_str("ports: [53, 5353]\ninclude_authorities: true\nsend_request: true")
            .unwrap();
    let section = crate::config::types::ProtocolSection {
        kind: "dns".into(),
        options: yaml.clone(),
        key: "packetbeat.protocols.0".into(),
    };
    let common: crate::protos::registry::ProtocolCommonConfig =
        crate::config::types::decode(&yaml, "k", "test").unwrap();
    let m = crate::protos::app::build::<Dns>(&common, &section, "test").unwrap();
    assert_eq!(m.name(), "dns");
    assert_eq!(m.udp_ports(), &[53, 5353]);
    assert_eq!(m.tcp_ports(), &[53, 5353]);
    assert!(m.new_udp().is_some());
    assert!(m.new_tcp().is_some());
    let bad: serde_yaml::Value = serde_yaml::from_str("include_authorities: maybe").unwrap();
    let section = crate::config::types::ProtocolSection {
        kind: "dns".into(),
        options: bad,
        key: "packetbeat.protocols.0".into(),
    };
    assert!(crate::protos::app::build::<Dns>(&common, &section, "test").is_err());
}

#[test]
fn rdata_variants_of_capture_messages() {
    let r = unhex(testdata::DNS_UDP_EDNS_DS[1].payload);
    let m = parse_message(&r).unwrap();
    assert!(matches!(
        m.answers[0].data,
        RData::Ds { key_tag: 45586, .. }
    ));
    assert!(matches!(m.additionals[0].data, RData::Opt(_)));
}

#[test]
fn public_suffix_matching_is_case_sensitive_like_go() {
    // golang.org/x/net/publicsuffix compares labels as they are; so does `psl`.
    assert_eq!(
        effective_tld_plus_one("WWW.EXAMPLE.CO.UK").as_deref(),
        Some("CO.UK")
    );
    assert_eq!(
        effective_tld_plus_one("www.example.CO.uk").as_deref(),
        Some("CO.uk")
    );
    // Wildcard and exception rules.
    assert_eq!(
        effective_tld_plus_one("foo.bar.ck").as_deref(),
        Some("foo.bar.ck")
    );
    assert_eq!(effective_tld_plus_one("www.ck").as_deref(), Some("www.ck"));
    assert_eq!(
        effective_tld_plus_one("a.b.c.kawasaki.jp").as_deref(),
        Some("b.c.kawasaki.jp")
    );
    assert_eq!(
        effective_tld_plus_one("city.kawasaki.jp").as_deref(),
        Some("city.kawasaki.jp")
    );
}

#[test]
fn no_header_flags_is_an_empty_list() {
    let m = B::new(1, 0x0000, [1, 0, 0, 0])
        .question("example.com", 1, 1)
        .0;
    assert!(decode_dns_data(&m).is_some());
    let map = published_dns(&m, false, false);
    assert_eq!(map["header_flags"], json!([]));
    assert_eq!(map["flags"]["recursion_desired"], json!(false));
}
