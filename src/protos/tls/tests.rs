//! Tests of the TLS analyzer on hand-made handshakes (split at every byte, fragmented across
//! records, packed several to a record), truncated and corrupted input, each option, and the
//! certificate formatting checked against Packetbeat's golden values.

use super::config::{Fingerprint, TlsConfig, TlsSettings};
use super::parser::{self, ParseResult, Parser};
use super::x509;
use super::*;
use crate::common::{IpPortTuple, TcpTuple, Ts};
use crate::protos::testing::{flat, unhex};
use crate::protos::TcpDirection::*;
use crate::publish::Event;
use serde_json::{json, Value};

const ROOT_PEM: &str = include_str!("testdata/digicert_root.pem");
const LEAF_PEM: &str = include_str!("testdata/example_org.pem");

fn der(pem: &str) -> Vec<u8> {
    use base64::Engine;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

// ---------------------------------------------------------------- message builders

fn u16b(v: usize) -> [u8; 2] {
    (v as u16).to_be_bytes()
}

fn u24b(v: usize) -> [u8; 3] {
    [(v >> 16) as u8, (v >> 8) as u8, v as u8]
}

fn record(typ: u8, body: &[u8]) -> Vec<u8> {
    let mut r = vec![typ, 3, 3];
    r.extend(u16b(body.len()));
    r.extend(body);
    r
}

fn handshake(typ: u8, body: &[u8]) -> Vec<u8> {
    let mut h = vec![typ];
    h.extend(u24b(body.len()));
    h.extend(body);
    h
}

fn ext(code: u16, data: &[u8]) -> Vec<u8> {
    let mut e = code.to_be_bytes().to_vec();
    e.extend(u16b(data.len()));
    e.extend(data);
    e
}

fn with_len16(data: &[u8]) -> Vec<u8> {
    let mut v = u16b(data.len()).to_vec();
    v.extend(data);
    v
}

fn sni(host: &str) -> Vec<u8> {
    let mut entry = vec![0u8];
    entry.extend(u16b(host.len()));
    entry.extend(host.as_bytes());
    ext(0, &with_len16(&entry))
}

fn alpn(protos: &[&str]) -> Vec<u8> {
    let mut l = Vec::new();
    for p in protos {
        l.push(p.len() as u8);
        l.extend(p.as_bytes());
    }
    ext(16, &with_len16(&l))
}

fn u16_list(vals: &[u16]) -> Vec<u8> {
    vals.iter().flat_map(|v| v.to_be_bytes()).collect()
}

struct Hello {
    version: [u8; 2],
    session_id: Vec<u8>,
    ciphers: Vec<u16>,
    exts: Vec<Vec<u8>>,
}

fn client_hello_body(h: &Hello) -> Vec<u8> {
    let mut b = h.version.to_vec();
    b.extend((0u8..32).map(|i| i.wrapping_mul(7)));
    b.push(h.session_id.len() as u8);
    b.extend(&h.session_id);
    b.extend(with_len16(&u16_list(&h.ciphers)));
    b.extend([1, 0]); // one compression method: NULL
    if !h.exts.is_empty() {
        b.extend(with_len16(&h.exts.concat()));
    }
    b
}

fn server_hello_body(h: &Hello) -> Vec<u8> {
    let mut b = h.version.to_vec();
    b.extend((0u8..32).map(|i| 255 - i));
    b.push(h.session_id.len() as u8);
    b.extend(&h.session_id);
    b.extend(h.ciphers[0].to_be_bytes());
    b.push(0);
    if !h.exts.is_empty() {
        b.extend(with_len16(&h.exts.concat()));
    }
    b
}

fn certificate_body(certs: &[Vec<u8>]) -> Vec<u8> {
    let mut list = Vec::new();
    for c in certs {
        list.extend(u24b(c.len()));
        list.extend(c);
    }
    let mut b = u24b(list.len()).to_vec();
    b.extend(list);
    b
}

fn default_client_hello() -> Hello {
    Hello {
        version: [3, 3],
        session_id: vec![],
        ciphers: vec![0x0a0a, 0xc02f, 0x1301, 0xff85, 0x00ff],
        exts: vec![
            ext(0x1a1a, &[]), // GREASE
            sni("example.com"),
            alpn(&["h2", "http/1.1"]),
            ext(10, &with_len16(&u16_list(&[0x2a2a, 29, 23, 24]))),
            ext(11, &[1, 0]),
            ext(13, &with_len16(&u16_list(&[0x0401, 0x0804, 0xeeee]))),
            ext(43, &[6, 0x3a, 0x3a, 3, 4, 3, 3]),
            ext(35, &[]),
            ext(5, &[1, 0, 0, 0, 0]),
            ext(0xff01, &[0]),
            ext(17513, &[0, 0]),
        ],
    }
}

/// Client stream: ClientHello; ClientKeyExchange + ChangeCipherSpec; then encrypted data.
fn client_flight() -> (Vec<u8>, Vec<u8>) {
    let first = record(
        1 + 21,
        &handshake(1, &client_hello_body(&default_client_hello())),
    );
    let mut second = record(22, &handshake(16, &[0, 2, 9, 9]));
    second.extend(record(20, &[1]));
    second.extend(record(23, &[0xde, 0xad, 0xbe, 0xef]));
    (first, second)
}

/// Server stream: ServerHello, Certificate, ServerKeyExchange, ServerHelloDone in one record;
/// then ChangeCipherSpec.
fn server_messages() -> Vec<u8> {
    let sh = Hello {
        version: [3, 3],
        session_id: vec![0xab; 32],
        ciphers: vec![0xc02f],
        exts: vec![ext(0xff01, &[0]), alpn(&["h2"]), ext(11, &[1, 0])],
    };
    let mut m = handshake(2, &server_hello_body(&sh));
    m.extend(handshake(
        11,
        &certificate_body(&[der(LEAF_PEM), der(ROOT_PEM)]),
    ));
    m.extend(handshake(12, &[3, 0, 23, 0]));
    m.extend(handshake(14, &[]));
    m
}

fn server_flight() -> (Vec<u8>, Vec<u8>) {
    (record(22, &server_messages()), record(20, &[1]))
}

// ---------------------------------------------------------------- connection driver

const T0: Ts = Ts(1_600_000_000_000_000_000);

fn client_tuple() -> IpPortTuple {
    IpPortTuple::new(
        "192.168.1.35".parse().unwrap(),
        59455,
        "93.184.216.34".parse().unwrap(),
        443,
    )
}

fn tcp_tuple() -> TcpTuple {
    TcpTuple {
        tuple: client_tuple(),
        stream_id: 1,
    }
}

struct Conn {
    c: TlsConnection,
    out: EventSink,
    t: i64,
    conn: TcpTuple,
}

impl Conn {
    fn new(s: TlsSettings) -> Conn {
        Conn {
            c: TlsConnection::new(Arc::new(s)),
            out: EventSink::new(),
            t: 0,
            conn: tcp_tuple(),
        }
    }

    fn send(&mut self, dir: TcpDirection, payload: &[u8]) {
        let tuple = match dir {
            Original => client_tuple(),
            Reverse => client_tuple().reversed(),
        };
        self.send_as(dir, tuple, payload);
    }

    fn send_as(&mut self, dir: TcpDirection, tuple: IpPortTuple, payload: &[u8]) {
        self.t += 1_000_000;
        let pkt = TcpPacket {
            ts: Ts(T0.0 + self.t),
            tuple,
            payload,
        };
        self.c.parse(&mut self.out, &self.conn.clone(), dir, &pkt);
    }

    fn fin(&mut self) {
        self.c
            .received_fin(&mut self.out, &tcp_tuple(), Original, Ts(T0.0 + self.t));
    }

    fn events(&mut self) -> Vec<Event> {
        self.out.take()
    }
}

fn defaults() -> TlsSettings {
    TlsSettings::defaults()
}

fn settings(yaml: &str) -> TlsSettings {
    let cfg: TlsConfig = serde_yaml::from_str(yaml).unwrap();
    TlsSettings::new(&cfg).unwrap()
}

/// The full handshake, each flight in the given segments.
fn run_full(s: TlsSettings, split: impl Fn(&[u8]) -> Vec<Vec<u8>>) -> Vec<Event> {
    let mut c = Conn::new(s);
    let (c1, c2) = client_flight();
    let (s1, s2) = server_flight();
    for seg in split(&c1) {
        c.send(Original, &seg);
    }
    for seg in split(&s1) {
        c.send(Reverse, &seg);
    }
    for seg in split(&c2) {
        c.send(Original, &seg);
    }
    for seg in split(&s2) {
        c.send(Reverse, &seg);
    }
    c.fin();
    c.events()
}

fn whole(b: &[u8]) -> Vec<Vec<u8>> {
    vec![b.to_vec()]
}

fn get(e: &Event, path: &str) -> Option<Value> {
    e.fields.get(path)
}

/// The event without times (which depend on how many segments were sent).
fn content(e: &Event) -> Value {
    Value::Object(e.fields.to_map())
}

// ---------------------------------------------------------------- tests

#[test]
fn full_handshake_event() {
    let evs = run_full(defaults(), whole);
    assert_eq!(
        evs.len(),
        1,
        "one event, on the second ChangeCipherSpec only"
    );
    let e = &evs[0];
    assert_eq!(get(e, "type"), Some(json!("tls")));
    assert_eq!(get(e, "status"), Some(json!("OK")));
    assert_eq!(get(e, "tls.established"), Some(json!(true)));
    assert_eq!(get(e, "tls.resumed"), Some(json!(false)));
    assert_eq!(get(e, "tls.version"), Some(json!("1.2")));
    assert_eq!(get(e, "tls.version_protocol"), Some(json!("tls")));
    assert_eq!(
        get(e, "tls.cipher"),
        Some(json!("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"))
    );
    assert_eq!(get(e, "tls.next_protocol"), Some(json!("h2")));
    assert_eq!(get(e, "tls.client.server_name"), Some(json!("example.com")));
    assert_eq!(
        get(e, "tls.client.supported_ciphers"),
        Some(json!([
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            "TLS_AES_128_GCM_SHA256",
            "(unknown:0xff85)",
            "TLS_EMPTY_RENEGOTIATION_INFO_SCSV"
        ]))
    );
    let ch = get(e, "tls.detailed.client_hello.extensions").unwrap();
    assert_eq!(
        ch["_unparsed_"],
        json!(["renegotiation_info", "17513"]),
        "GREASE left out, unknown ids as numbers"
    );
    assert_eq!(
        ch["supported_groups"],
        json!(["x25519", "secp256r1", "secp384r1"])
    );
    assert_eq!(
        ch["signature_algorithms"],
        json!(["rsa_pkcs1_sha256", "rsa_pss_sha256", "(unknown:0xeeee)"])
    );
    assert_eq!(ch["supported_versions"], json!(["TLS 1.3", "TLS 1.2"]));
    assert_eq!(ch["session_ticket"], json!(""));
    assert_eq!(ch["ec_points_formats"], json!(["uncompressed"]));
    assert_eq!(
        ch["status_request"],
        json!({"type": "ocsp", "responder_id_list_length": 0, "request_extensions": 0})
    );
    assert_eq!(
        get(e, "tls.detailed.server_hello.extensions.ec_points_formats"),
        Some(json!(["uncompressed"]))
    );
    assert_eq!(
        get(e, "tls.detailed.server_hello.selected_compression_method"),
        Some(json!("NULL"))
    );
    assert_eq!(get(e, "tls.detailed.version"), Some(json!("TLS 1.2")));
    assert_eq!(
        get(e, "tls.detailed.client_certificate_requested"),
        Some(json!(false))
    );
    // JA3: version, ciphers and extensions without GREASE, groups, point formats.
    let ja3 = "771,49199-4865-65413-255,0-16-10-11-13-43-35-5-65281-17513,29-23-24,0";
    let expect = x509::hex(&{
        use md5::Digest;
        md5::Md5::digest(ja3.as_bytes())
    });
    assert_eq!(get(e, "tls.client.ja3"), Some(json!(expect)));
    // Server certificate, as in Packetbeat's golden event for example.org.
    assert_eq!(
        get(e, "tls.server.subject"),
        Some(json!("CN=www.example.org,OU=Technology,O=Internet Corporation for Assigned Names and Numbers,L=Los Angeles,ST=California,C=US"))
    );
    assert_eq!(
        get(e, "tls.server.hash.sha1"),
        Some(json!("7BB698386970363D2919CC5772846984FFD4A889"))
    );
    assert_eq!(
        get(e, "tls.server.x509.serial_number"),
        Some(json!("21020869104500376438182461249190639870"))
    );
    assert_eq!(
        get(e, "tls.detailed.server_certificate_chain").and_then(|v| v.as_array().map(|a| a.len())),
        Some(1)
    );
    assert!(get(e, "tls.server.certificate_chain").is_none());
    let pb = e.pb.as_ref().unwrap();
    assert_eq!(pb.source.as_ref().unwrap().port, 59455);
    assert_eq!(
        pb.destination.as_ref().unwrap().domain.as_deref(),
        Some("example.com")
    );
    assert!(pb.event.end.is_some());
}

#[test]
fn split_at_every_byte_gives_the_same_event() {
    let base = content(&run_full(defaults(), whole)[0]);
    let (c1, _) = client_flight();
    let (s1, _) = server_flight();
    for at in 1..c1.len().max(s1.len()) {
        let evs = run_full(defaults(), |b: &[u8]| {
            let k = at.min(b.len());
            vec![b[..k].to_vec(), b[k..].to_vec()]
        });
        assert_eq!(evs.len(), 1, "split at {at}");
        assert_eq!(content(&evs[0]), base, "split at {at}");
    }
    // One byte per segment.
    let evs = run_full(defaults(), |b: &[u8]| b.iter().map(|&x| vec![x]).collect());
    assert_eq!(content(&evs[0]), base);
}

#[test]
fn handshake_fragmented_across_records_and_records_packed_in_one_segment() {
    let base = content(&run_full(defaults(), whole)[0]);
    // Server handshake messages cut into 7-byte records, all in one segment.
    let msgs = server_messages();
    let fragmented: Vec<u8> = msgs.chunks(7).flat_map(|c| record(22, c)).collect();
    let mut c = Conn::new(defaults());
    let (c1, c2) = client_flight();
    c.send(Original, &c1);
    c.send(Reverse, &fragmented);
    c.send(Original, &c2);
    c.send(Reverse, &record(20, &[1]));
    let evs = c.events();
    assert_eq!(evs.len(), 1);
    assert_eq!(content(&evs[0]), base);
}

#[test]
fn resumption_by_session_id_and_by_ticket() {
    let sid = vec![0x5d; 32];
    // `server_exts` besides the ticket acknowledgement: none for TLS 1.2, supported_versions
    // (and pre_shared_key when the server accepts a PSK) for TLS 1.3.
    let run = |client_ticket: Option<&[u8]>, server_ticket: bool, server_exts: Vec<Vec<u8>>| {
        let mut ch = default_client_hello();
        ch.session_id = sid.clone();
        ch.exts.retain(|e| e[..2] != [0, 35]);
        if let Some(t) = client_ticket {
            ch.exts.push(ext(35, t));
        }
        let mut sh = Hello {
            version: [3, 3],
            session_id: sid.clone(),
            ciphers: vec![0x1301],
            exts: server_exts,
        };
        if server_ticket {
            sh.exts.push(ext(35, &[]));
        }
        let mut c = Conn::new(defaults());
        c.send(
            Original,
            &record(22, &handshake(1, &client_hello_body(&ch))),
        );
        let mut s = record(22, &handshake(2, &server_hello_body(&sh)));
        s.extend(record(20, &[1]));
        c.send(Reverse, &s);
        c.send(Original, &record(20, &[1]));
        c.events().remove(0)
    };
    // TLS 1.2: the session id echoed without a key exchange.
    let e = run(None, false, vec![]);
    assert_eq!(get(&e, "tls.resumed"), Some(json!(true)));
    assert_eq!(get(&e, "tls.detailed.resumption_method"), Some(json!("id")));
    assert_eq!(get(&e, "tls.version"), Some(json!("1.2")));
    let e = run(Some(&[1, 2, 3]), true, vec![]);
    assert_eq!(
        get(&e, "tls.detailed.resumption_method"),
        Some(json!("ticket"))
    );
    assert_eq!(
        get(&e, "tls.detailed.client_hello.extensions.session_ticket"),
        Some(json!("(3 bytes)"))
    );
    // TLS 1.3 echoes the legacy session id in every handshake (middlebox compatibility
    // mode): that is not a resumption (Packetbeat reports one).
    let e = run(None, false, vec![ext(43, &[3, 4])]);
    assert_eq!(get(&e, "tls.version"), Some(json!("1.3")));
    assert_eq!(
        get(
            &e,
            "tls.detailed.server_hello.extensions.supported_versions"
        ),
        Some(json!("TLS 1.3"))
    );
    assert_eq!(get(&e, "tls.resumed"), Some(json!(false)));
    assert!(get(&e, "tls.detailed.resumption_method").is_none());
    // The server accepting a pre-shared key (its selected identity) is one.
    let e = run(None, false, vec![ext(43, &[3, 4]), ext(41, &[0, 0])]);
    assert_eq!(get(&e, "tls.resumed"), Some(json!(true)));
    assert_eq!(
        get(&e, "tls.detailed.resumption_method"),
        Some(json!("ticket"))
    );
}

#[test]
fn key_exchange_means_not_resumed() {
    // Same session id echoed, but a ServerKeyExchange was sent: a full handshake.
    let evs = run_full(defaults(), whole);
    assert_eq!(get(&evs[0], "tls.resumed"), Some(json!(false)));
    assert!(get(&evs[0], "tls.detailed.resumption_method").is_none());
}

#[test]
fn alerts_and_unfinished_handshake() {
    let mut c = Conn::new(defaults());
    let (c1, _) = client_flight();
    c.send(Original, &c1);
    c.send(Reverse, &record(21, &[2, 40]));
    // An encrypted (longer) alert is ignored.
    c.send(Reverse, &record(21, &[1, 2, 3, 4, 5, 6]));
    assert!(c.events().is_empty());
    c.fin();
    c.fin();
    let evs = c.events();
    assert_eq!(evs.len(), 1, "published once");
    let e = &evs[0];
    assert_eq!(get(e, "status"), Some(json!("Error")));
    assert_eq!(get(e, "tls.established"), Some(json!(false)));
    assert_eq!(
        get(e, "tls.detailed.alert_types"),
        Some(json!(["handshake_failure"]))
    );
    assert_eq!(
        get(e, "tls.detailed.alerts"),
        Some(
            json!([{"severity": "fatal", "code": 40, "type": "handshake_failure", "source": "server"}])
        )
    );
    // No server hello: the client's version is used.
    assert_eq!(get(e, "tls.version"), Some(json!("1.2")));
    assert!(
        e.pb.as_ref().unwrap().event.end.is_none(),
        "no end without both CCS"
    );
}

#[test]
fn non_tls_is_dropped_and_retried_with_the_next_segment() {
    let mut c = Conn::new(defaults());
    c.send(Original, b"GET / HTTP/1.1\r\n\r\n");
    c.fin();
    assert!(c.events().is_empty(), "nothing learnt, nothing published");

    let mut c = Conn::new(defaults());
    c.send(Original, b"\x16\x02\x00\x00\x01x");
    let (c1, _) = client_flight();
    c.send(Original, &c1);
    c.fin();
    let evs = c.events();
    assert_eq!(evs.len(), 1);
    assert_eq!(
        get(&evs[0], "tls.client.server_name"),
        Some(json!("example.com"))
    );
}

#[test]
fn server_first_direction_is_swapped() {
    // The first packet seen is the server's: sides are told apart by message types.
    let mut c = Conn::new(defaults());
    let (s1, s2) = server_flight();
    let (c1, c2) = client_flight();
    let (cli, srv) = (client_tuple(), client_tuple().reversed());
    c.conn = TcpTuple {
        tuple: srv,
        stream_id: 1,
    };
    c.send_as(Original, srv, &s1);
    c.send_as(Reverse, cli, &c1);
    c.send_as(Reverse, cli, &c2);
    c.send_as(Original, srv, &s2);
    let e = c.events().remove(0);
    assert_eq!(
        get(&e, "tls.client.server_name"),
        Some(json!("example.com"))
    );
    // Source and destination come from the connection's tuple (its first packet), as in
    // Packetbeat, whichever side is the client.
    let pb = e.pb.as_ref().unwrap();
    assert_eq!(pb.source.as_ref().unwrap().port, 443);
    assert_eq!(pb.destination.as_ref().unwrap().port, 59455);
    assert_eq!(
        pb.destination.as_ref().unwrap().domain.as_deref(),
        Some("example.com")
    );
    assert!(get(&e, "tls.server.x509").is_some());
}

#[test]
fn gap_publishes_and_drops_expiry_publishes_nothing() {
    let (c1, _) = client_flight();
    let mut c = Conn::new(defaults());
    c.send(Original, &c1);
    c.c.expired(&mut c.out, &tcp_tuple(), T0);
    assert!(c.events().is_empty());
    let drop = c.c.gap_in_stream(&mut c.out, &tcp_tuple(), Reverse, 10, T0);
    assert!(drop);
    assert_eq!(c.events().len(), 1);
}

#[test]
fn options_certificates_raw_detailed_fingerprints() {
    let e = &run_full(settings("send_certificates: false"), whole)[0];
    assert!(get(e, "tls.server.x509").is_none());
    assert!(get(e, "tls.detailed.server_certificate_chain").is_none());
    assert!(get(e, "tls.server.subject").is_some(), "ECS fields stay");

    let e = &run_full(settings("include_raw_certificates: true"), whole)[0];
    let chain = get(e, "tls.server.certificate_chain").unwrap();
    assert_eq!(chain[1], json!(ROOT_PEM));
    assert_eq!(chain[0], json!(LEAF_PEM));

    let e = &run_full(settings("include_detailed_fields: false"), whole)[0];
    assert!(get(e, "tls.detailed").is_none());
    assert!(get(e, "tls.server.x509").is_none());
    assert!(get(e, "tls.client.ja3").is_some());

    let e = &run_full(settings("fingerprints: [MD5, sha-256]"), whole)[0];
    assert_eq!(
        get(e, "tls.server.hash.md5"),
        Some(json!("3510C21C66BD62010FC547D3CD3F0CE6"))
    );
    assert_eq!(
        get(e, "tls.server.hash.sha256"),
        Some(json!(
            "9250711C54DE546F4370E0C3D3A3EC45BC96092A25A4A71A1AFA396AF7047EB8"
        ))
    );
    assert!(get(e, "tls.server.hash.sha1").is_none());

    assert_eq!(Fingerprint::by_name("SHA-1"), Ok(Fingerprint::Sha1));
    assert!(Fingerprint::by_name("sha512").is_err());
}

#[test]
fn bad_fingerprint_is_a_config_error() {
    let section = crate::config::types::ProtocolSection {
        kind: "tls".into(),
        options: serde_yaml::from_str("ports: [443]\nfingerprints: [crc32]").unwrap(),
        key: "packetbeat.protocols.tls".into(),
    };
    let common: crate::protos::registry::ProtocolCommonConfig =
        crate::config::types::decode(&section.options, &section.key, "pb.yml").unwrap();
    let err = crate::protos::app::build::<TlsSettings>(&common, &section, "pb.yml")
        .err()
        .unwrap();
    assert!(
        err.0.contains("fingerprint algorithm 'crc32' not found"),
        "{err}"
    );
}

#[test]
fn truncated_and_corrupted_input_never_panics() {
    let (c1, c2) = client_flight();
    let (s1, s2) = server_flight();
    let streams = [c1, c2, s1, s2].concat();
    // Every truncation.
    for n in 0..streams.len() {
        let mut p = Parser::new();
        let mut buf = streams[..n].to_vec();
        let _ = p.parse(&mut buf);
    }
    // Every single-byte corruption of the server flight, and of the certificate alone.
    let (s1, _) = server_flight();
    for i in 0..s1.len() {
        for x in [0xff, 0x80, 0x01] {
            let mut buf = s1.clone();
            buf[i] ^= x;
            let mut p = Parser::new();
            let _ = p.parse(&mut buf);
        }
    }
    let cert = der(LEAF_PEM);
    for i in 0..cert.len() {
        let mut c = cert.clone();
        c[i] ^= 0xff;
        let _ = x509::parse_certificate(&c);
        let _ = x509::parse_certificate(&cert[..i]);
    }
    // Pseudo-random mutations through the whole connection.
    let mut seed: u64 = 0x9e3779b97f4a7c15;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..300 {
        let mut c = Conn::new(settings("include_raw_certificates: true"));
        for (dir, data) in [
            (Original, client_flight().0),
            (Reverse, server_flight().0),
            (Original, client_flight().1),
            (Reverse, server_flight().1),
        ] {
            let mut d = data;
            for _ in 0..(rnd() % 4) {
                let i = (rnd() as usize) % d.len();
                d[i] = rnd() as u8;
            }
            let cut = (rnd() as usize) % (d.len() + 1);
            c.send(dir, &d[..cut]);
            c.send(dir, &d[cut..]);
        }
        c.fin();
        for e in c.events() {
            serde_json::to_string(&e.fields.to_map()).unwrap();
        }
    }
}

#[test]
fn corrupted_handshake_drops_the_stream() {
    // An extension whose length runs past the message: Packetbeat's buffer view error.
    let mut ch = default_client_hello();
    ch.exts = vec![vec![0, 0, 0x40, 0]];
    let mut p = Parser::new();
    let mut buf = record(22, &handshake(1, &client_hello_body(&ch)));
    assert_eq!(p.parse(&mut buf), ParseResult::Failed);
    // A record with a bad version.
    let mut buf = vec![22, 2, 0, 0, 1, 0];
    assert_eq!(Parser::new().parse(&mut buf), ParseResult::Failed);
    // A record too long.
    let mut buf = vec![22, 3, 3, 0xff, 0xff];
    assert_eq!(Parser::new().parse(&mut buf), ParseResult::Failed);
    // Incomplete record: more.
    let mut buf = vec![22, 3, 3, 0, 9, 1];
    assert_eq!(Parser::new().parse(&mut buf), ParseResult::More);
    // A handshake message over 64 KiB.
    let mut buf = record(22, &[1, 2, 0, 0]);
    assert_eq!(Parser::new().parse(&mut buf), ParseResult::Failed);
    // A bad certificate list drops the certificates, not the stream.
    let mut p = Parser::new();
    let mut buf = record(22, &handshake(11, &[0, 0, 5, 0, 0, 2, 1, 2]));
    assert_eq!(p.parse(&mut buf), ParseResult::Ok);
    assert!(p.certificates.is_empty());
}

#[test]
fn other_extensions() {
    let exts = parser::parse_extensions(&with_len16(
        &[
            ext(1, &[2]),
            ext(1, &[9]),
            ext(2, &[]),
            ext(4, &[1]),
            ext(9, &[2, 0, 7]),
            ext(12, &[3, b'b', b'o', b'b']),
            ext(5, &[]),
            ext(43, &[2, 0x2a, 0x2a]),
        ]
        .concat(),
    ))
    .unwrap();
    let p = exts.parsed.unwrap();
    assert_eq!(p["max_fragment_length"], json!("(unknown:9)"));
    assert_eq!(p["client_certificate_url"], json!(""));
    assert_eq!(
        p["truncated_hmac"],
        json!("(expected empty: found 1 bytes)")
    );
    assert_eq!(p["cert_type"], json!(["X.509", "(unknown:7)"]));
    assert_eq!(p["srp"], json!("bob"));
    assert_eq!(p["status_request"], json!({"response": true}));
    assert_eq!(p["supported_versions"], json!([]));
    assert_eq!(exts.in_order, vec![1, 1, 2, 4, 9, 12, 5, 43]);
    // No extension block at all.
    assert_eq!(parser::parse_extensions(&[]).unwrap().parsed, None);
}

#[test]
fn ocsp_status_and_certificate_request() {
    let mut p = Parser::new();
    let mut buf = record(
        22,
        &[
            handshake(22, &[1, 0, 0, 9, 0x30, 0, 0, 0, 0, 0, 3]),
            handshake(13, &[0]),
        ]
        .concat(),
    );
    assert_eq!(p.parse(&mut buf), ParseResult::Ok);
    assert_eq!(p.ocsp_response, Some(3));
    assert!(p.cert_requested);
    assert_eq!(parser::ocsp_status_name(3), "tryLater");
    // The start of the CertificateStatus message of Packetbeat's OCSP test vector.
    let mut p = Parser::new();
    let mut buf = record(
        22,
        &handshake(22, &[1, 0, 6, 0xf2, 0x30, 0x82, 6, 0xee, 0x0a, 1, 0]),
    );
    assert_eq!(p.parse(&mut buf), ParseResult::Ok);
    assert_eq!(
        p.ocsp_response.map(parser::ocsp_status_name).as_deref(),
        Some("successful")
    );
    // In the event, as the server's.
    let mut c = Conn::new(defaults());
    let (c1, _) = client_flight();
    c.send(Original, &c1);
    let sh = Hello {
        version: [3, 3],
        session_id: vec![],
        ciphers: vec![0xc02b],
        exts: vec![ext(5, &[])],
    };
    let mut m = handshake(2, &server_hello_body(&sh));
    m.extend(handshake(22, &[1, 0, 0, 7, 0x30, 0x82, 0, 3, 0x0a, 1, 6]));
    c.send(Reverse, &record(22, &m));
    c.fin();
    let e = c.events().remove(0);
    assert_eq!(
        get(&e, "tls.detailed.ocsp_response"),
        Some(json!("unauthorized"))
    );
    assert_eq!(
        get(&e, "tls.detailed.server_hello.extensions.status_request"),
        Some(json!({"response": true}))
    );
    assert_eq!(parser::ocsp_status_name(4), "4");
}

#[test]
fn versions() {
    use parser::Version;
    let v = |major, minor| Version { major, minor };
    assert_eq!(v(3, 0).name(), "SSL 3.0");
    assert_eq!(v(3, 0).protocol_version(), ("ssl".into(), "3.0".into()));
    assert_eq!(v(3, 1).name(), "TLS 1.0");
    assert_eq!(v(3, 4).protocol_version(), ("tls".into(), "1.3".into()));
    assert_eq!(v(2, 0).name(), "(raw 2.0)");
    assert_eq!(v(0, 0).protocol_version(), ("unknown".into(), "0.0".into()));
}

#[test]
fn certificate_fields_as_go_formats_them() {
    let root = x509::parse_certificate(&der(ROOT_PEM)).unwrap();
    let m = root.to_map();
    assert_eq!(
        m,
        json!({
            "issuer": {
                "common_name": "DigiCert Global Root CA",
                "country": "US",
                "distinguished_name": "CN=DigiCert Global Root CA,OU=www.digicert.com,O=DigiCert Inc,C=US",
                "organization": "DigiCert Inc",
                "organizational_unit": "www.digicert.com"
            },
            "not_after": "2031-11-10T00:00:00.000Z",
            "not_before": "2006-11-10T00:00:00.000Z",
            "public_key_algorithm": "RSA",
            "public_key_size": 2048,
            "serial_number": "10944719598952040374951832963794454346",
            "signature_algorithm": "SHA1-RSA",
            "subject": {
                "common_name": "DigiCert Global Root CA",
                "country": "US",
                "distinguished_name": "CN=DigiCert Global Root CA,OU=www.digicert.com,O=DigiCert Inc,C=US",
                "organization": "DigiCert Inc",
                "organizational_unit": "www.digicert.com"
            },
            "version_number": 3
        })
    );
    let leaf = x509::parse_certificate(&der(LEAF_PEM)).unwrap();
    assert_eq!(
        leaf.to_map()["alternative_names"],
        json!([
            "www.example.org",
            "example.com",
            "example.edu",
            "example.net",
            "example.org",
            "www.example.com",
            "www.example.edu",
            "www.example.net"
        ])
    );
    assert_eq!(x509::to_pem(&leaf.raw), LEAF_PEM);
}

#[test]
fn distinguished_names_like_pkix_name_string() {
    fn atv(oid: &[u8], tag: u8, v: &str) -> Vec<u8> {
        tlv(0x30, &[tlv(0x06, oid), tlv(tag, v.as_bytes())].concat())
    }
    let (c, o, cn) = ([0x55, 4, 6], [0x55, 4, 10], [0x55, 4, 3]);
    let email = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01];
    let rdns = [
        tlv(0x31, &atv(&c, 0x13, "US")),
        tlv(0x31, &atv(&email, 0x16, "a@b.c")),
        tlv(0x31, &[atv(&o, 0x0c, "A"), atv(&o, 0x0c, "B")].concat()),
        tlv(0x31, &atv(&cn, 0x0c, " lead,+\"\\<>;#x ")),
    ]
    .concat();
    let name = x509::parse_name(&rdns).unwrap();
    // Known attributes in Go's order, printed reversed; others last, as `#` + DER of the
    // value re-marshalled (a string with `@` becomes a UTF8String).
    assert_eq!(
        name.to_go_string(),
        "CN=\\ lead\\,\\+\\\"\\\\\\<\\>\\;#x\\ ,O=A+O=B,C=US,1.2.840.113549.1.9.1=#0c056140622e63"
    );
    assert_eq!(name.to_map()["organization"], json!("A B"));
    assert_eq!(name.to_map()["common_name"], json!(" lead,+\"\\<>;#x "));
    // A value type Go does not read as a string makes the certificate unreadable.
    let bad = tlv(0x31, &tlv(0x30, &[tlv(0x06, &c), tlv(0x02, &[1])].concat()));
    assert!(x509::parse_name(&bad).is_err());
    let bad = tlv(0x31, &atv(&c, 0x13, "a@b"));
    assert!(x509::parse_name(&bad).is_err(), "@ is not printable");
}

#[test]
fn serial_numbers_in_decimal() {
    assert_eq!(x509::integer_text(&[0]), "0");
    assert_eq!(x509::integer_text(&[0x01, 0x00]), "256");
    assert_eq!(x509::integer_text(&[0xff]), "-1");
    assert_eq!(x509::integer_text(&[0xff, 0x00]), "-256");
    assert_eq!(
        x509::integer_text(&[0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
        "18446744073709551615"
    );
}

#[test]
fn certificate_times() {
    let t = |tag: u8, s: &str| {
        x509::parse_time_for_test(tag, s.as_bytes()).map(|t| x509::format_time(&t))
    };
    assert_eq!(
        t(0x17, "491231235959Z").unwrap(),
        "2049-12-31T23:59:59.000Z"
    );
    assert_eq!(
        t(0x17, "500101000000Z").unwrap(),
        "1950-01-01T00:00:00.000Z"
    );
    assert_eq!(t(0x17, "5001010000Z").unwrap(), "1950-01-01T00:00:00.000Z");
    assert_eq!(
        t(0x17, "200101000000+0130").unwrap(),
        "2019-12-31T22:30:00.000Z"
    );
    assert!(t(0x17, "200101000000+0000").is_err());
    assert_eq!(
        t(0x18, "99991231235959Z").unwrap(),
        "9999-12-31T23:59:59.000Z"
    );
    assert!(t(0x18, "20200101000000.5Z").is_err());
    assert!(t(0x18, "2020010100Z").is_err());
}

fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    if body.len() < 0x80 {
        v.push(body.len() as u8);
    } else {
        v.extend([0x82, (body.len() >> 8) as u8, body.len() as u8]);
    }
    v.extend(body);
    v
}

fn spki(alg_oid: &[u8], params: &[u8], key: &[u8]) -> Vec<u8> {
    let alg = tlv(0x30, &[tlv(0x06, alg_oid), params.to_vec()].concat());
    let bits = tlv(0x03, &[&[0u8][..], key].concat());
    [alg, bits].concat()
}

#[test]
fn public_keys_as_go_reads_them() {
    let rsa_oid = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    let mut n = vec![0x00, 0xc0];
    n.extend([0u8; 127]);
    let rsa_key = tlv(0x30, &[tlv(0x02, &n), tlv(0x02, &[1, 0, 1])].concat());
    assert_eq!(
        x509::public_key(&spki(&rsa_oid, &[5, 0], &rsa_key)),
        Ok(("RSA".to_string(), 1024))
    );
    assert!(
        x509::public_key(&spki(&rsa_oid, &[], &rsa_key)).is_err(),
        "Go wants NULL parameters"
    );
    let ec_oid = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    let p256 = tlv(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]);
    let mut point = vec![4u8];
    point.extend([7u8; 64]);
    assert_eq!(
        x509::public_key(&spki(&ec_oid, &p256, &point)),
        Ok(("ECDSA".to_string(), 256))
    );
    assert!(x509::public_key(&spki(&ec_oid, &p256, &point[..33])).is_err());
    let secp256k1 = tlv(0x06, &[0x2b, 0x81, 0x04, 0x00, 0x0a]);
    assert!(
        x509::public_key(&spki(&ec_oid, &secp256k1, &point)).is_err(),
        "unsupported curve"
    );
    assert_eq!(
        x509::public_key(&spki(&[0x2b, 0x65, 0x70], &[], &[9u8; 32])),
        Ok(("(unknown:4)".to_string(), 0))
    );
    assert_eq!(
        x509::public_key(&spki(&[0x2b, 0x65, 0x6e], &[], &[9u8; 32])),
        Ok(("(unknown:0)".to_string(), 0))
    );
}

#[test]
fn signature_algorithm_names() {
    let name = |oid: &[u8], params: &[u8]| {
        x509::signature_algorithm(&[tlv(0x06, oid), params.to_vec()].concat()).unwrap()
    };
    let rsa = |last: u8| [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, last];
    assert_eq!(name(&rsa(11), &[5, 0]), "SHA256-RSA");
    assert_eq!(name(&rsa(5), &[5, 0]), "SHA1-RSA");
    assert_eq!(name(&rsa(4), &[5, 0]), "MD5-RSA");
    assert_eq!(
        name(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03], &[]),
        "ECDSA-SHA384"
    );
    assert_eq!(name(&[0x2b, 0x65, 0x70], &[]), "Ed25519");
    assert_eq!(name(&[0x2b, 0x65, 0x71], &[]), "0");
    let sha384 = tlv(
        0x06,
        &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02],
    );
    let pss = tlv(0x30, &tlv(0xa0, &tlv(0x30, &sha384)));
    assert_eq!(name(&rsa(10), &pss), "SHA384-RSAPSS");
}

// ------------------------------------------------ Packetbeat's own unit-test vectors (tls_test.go)

const RAW_CLIENT_HELLO: &str = concat!(
    "16030100c2010000be03033367dfae0d46ec0651e49cca2ae47317e8989df710",
    "ee7570a88b9a7d5d56b3af00001c3a3ac02bc02fc02cc030cca9cca8c013c014",
    "009c009d002f0035000a01000079dada0000ff0100010000000010000e00000b",
    "6578616d706c652e6f72670017000000230000000d0014001204030804040105",
    "0308050501080606010201000500050100000000001200000010000e000c0268",
    "3208687474702f312e3175500000000b00020100000a000a00086a6a001d0017",
    "0018aaaa000100"
);

const RAW_SERVER_HELLO: &str = concat!(
    "160303004a0200004603037806e1be0c363bcc1fe14a906d1ff1b11dc5369d91",
    "c631ed660d6c0f156f420700c02f00001eff01000100000b0004030001020023",
    "000000050000001000050003026832"
);

const RAW_CCS: &str = "1403030000";

/// The `tls` object (and a few others) of Packetbeat's expected event for RAW_CLIENT_HELLO.
fn expected_client_hello_tls() -> Value {
    json!({
        "client": {
            "ja3": "94c485bca29d5392be53f2b8cf7f4304",
            "server_name": "example.org",
            "supported_ciphers": [
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
                "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
                "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
                "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
                "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
                "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
                "TLS_RSA_WITH_AES_128_GCM_SHA256",
                "TLS_RSA_WITH_AES_256_GCM_SHA384",
                "TLS_RSA_WITH_AES_128_CBC_SHA",
                "TLS_RSA_WITH_AES_256_CBC_SHA",
                "TLS_RSA_WITH_3DES_EDE_CBC_SHA"
            ]
        },
        "detailed": {
            "client_certificate_requested": false,
            "client_hello": {
                "extensions": {
                    "_unparsed_": ["renegotiation_info", "23", "18", "30032"],
                    "application_layer_protocol_negotiation": ["h2", "http/1.1"],
                    "ec_points_formats": ["uncompressed"],
                    "server_name_indication": ["example.org"],
                    "session_ticket": "",
                    "signature_algorithms": [
                        "ecdsa_secp256r1_sha256", "rsa_pss_sha256", "rsa_pkcs1_sha256",
                        "ecdsa_secp384r1_sha384", "rsa_pss_sha384", "rsa_pkcs1_sha384",
                        "rsa_pss_sha512", "rsa_pkcs1_sha512", "rsa_pkcs1_sha1"
                    ],
                    "status_request": {
                        "request_extensions": 0,
                        "responder_id_list_length": 0,
                        "type": "ocsp"
                    },
                    "supported_groups": ["x25519", "secp256r1", "secp384r1"]
                },
                "random": "3367dfae0d46ec0651e49cca2ae47317e8989df710ee7570a88b9a7d5d56b3af",
                "supported_compression_methods": ["NULL"],
                "version": "3.3"
            },
            "version": "TLS 1.2"
        },
        "established": false,
        "resumed": false,
        "version": "1.2",
        "version_protocol": "tls"
    })
}

fn check_client_hello_event(e: &Event) {
    assert_eq!(get(e, "tls"), Some(expected_client_hello_tls()));
    assert_eq!(get(e, "status"), Some(json!("Error")));
    assert_eq!(get(e, "type"), Some(json!("tls")));
    let pb = e.pb.as_ref().unwrap();
    assert_eq!(
        pb.destination.as_ref().unwrap().domain.as_deref(),
        Some("example.org")
    );
}

#[test]
fn packetbeat_client_hello_vector() {
    let mut c = Conn::new(defaults());
    c.send(Original, &unhex(RAW_CLIENT_HELLO));
    let drop =
        c.c.gap_in_stream(&mut c.out, &tcp_tuple(), Original, 1024, T0);
    assert!(drop);
    let evs = c.events();
    assert_eq!(evs.len(), 1);
    check_client_hello_event(&evs[0]);
}

#[test]
fn packetbeat_server_hello_vector() {
    let mut c = Conn::new(defaults());
    c.send(Original, &unhex(RAW_SERVER_HELLO));
    c.fin();
    let evs = c.events();
    assert_eq!(evs.len(), 1);
    assert_eq!(
        get(&evs[0], "tls.detailed.server_hello"),
        Some(json!({
            "extensions": {
                "_unparsed_": ["renegotiation_info"],
                "application_layer_protocol_negotiation": ["h2"],
                "ec_points_formats": ["uncompressed", "ansiX962_compressed_prime", "ansiX962_compressed_char2"],
                "session_ticket": "",
                "status_request": {"response": true}
            },
            "random": "7806e1be0c363bcc1fe14a906d1ff1b11dc5369d91c631ed660d6c0f156f4207",
            "selected_compression_method": "NULL",
            "version": "3.3"
        }))
    );
}

#[test]
fn packetbeat_alert_vectors() {
    let mut c = Conn::new(defaults());
    c.send(Original, &unhex("1503010002022d"));
    c.fin();
    let evs = c.events();
    assert_eq!(evs.len(), 1);
    assert_eq!(
        get(&evs[0], "tls.detailed.alerts"),
        Some(
            json!([{"severity": "fatal", "code": 45, "type": "certificate_expired", "source": "client"}])
        )
    );
    // An alert of 3 bytes is taken as encrypted: nothing learnt, no event.
    let mut c = Conn::new(defaults());
    c.send(Original, &unhex("1503010003010203"));
    c.fin();
    assert!(c.events().is_empty());
}

#[test]
fn packetbeat_fragmented_and_interleaved_vectors() {
    let first = concat!(
        "160301003f010000be03033367dfae0d46ec0651e49cca2ae47317e8989df710",
        "ee7570a88b9a7d5d56b3af00001c3a3ac02bc02fc02cc030cca9cca8c013c014",
        "009c009d"
    );
    let second = concat!(
        "1603010083002f0035000a01000079dada0000ff0100010000000010000e00000b",
        "6578616d706c652e6f72670017000000230000000d0014001204030804040105",
        "0308050501080606010201000500050100000000001200000010000e000c0268"
    );
    let third = "3208687474702f312e3175500000000b00020100000a000a00086a6a001d00170018aaaa000100";
    let mut c = Conn::new(defaults());
    for part in [first, second, third] {
        c.send(Original, &unhex(part));
    }
    c.fin();
    let evs = c.events();
    assert_eq!(evs.len(), 1);
    check_client_hello_event(&evs[0]);

    // Alerts and application data between the two halves of the hello.
    let mut c = Conn::new(defaults());
    c.send(Original, &unhex(first));
    c.send(Original, &unhex("1503010002FFFF15030100020101"));
    c.send(Original, &unhex("17030100080123456789abcdef"));
    c.send(Original, &unhex(&format!("{second}{third}")));
    c.fin();
    let e = c.events().remove(0);
    assert!(get(&e, "tls.detailed.client_hello").is_some());
    assert_eq!(
        get(&e, "tls.detailed.alerts"),
        Some(json!([
            {"severity": "(unknown:0xff)", "code": 255, "type": "(unknown:0xff)", "source": "client"},
            {"severity": "warning", "code": 1, "type": "(unknown:0x01)", "source": "client"}
        ]))
    );
    assert_eq!(
        get(&e, "tls.detailed.alert_types"),
        Some(json!(["(unknown:0xff)", "(unknown:0x01)"]))
    );
}

#[test]
fn packetbeat_version_negotiation_vectors() {
    let ch13 = concat!(
        "16030102310100022d03039b9e3d533312e698bdc35c8d86902204c0f2505682",
        "2e0ae66b5f7bff999a7c6220944f9b7806d887e27500dc6a05cfed8becf3d65a",
        "9a75ab618828f1b9e418d16800222a2a130113021303c02bc02fc02cc030cca9",
        "cca8c013c014009c009d002f0035000a010001c2baba0000ff01000100000000",
        "1d001b000018746c7331332e63727970746f2e6d6f7a696c6c612e6f72670017",
        "000000230000000d001400120403080404010503080505010806060102010005",
        "00050100000000001200000010000e000c02683208687474702f312e31755000",
        "00000b000201000033002b00292a2a000100001d00208c80626064298b32ef53",
        "5d9305355e992b98baaa5db28e22a718741eab108d48002d00020101002b000b",
        "0a9a9a0304030303020301000a000a00082a2a001d00170018001b0003020002",
        "6a6a000100002900ed00c800c21f81d2ec6041f6cecd60949000000000784b0a",
        "740ce3334a066d552e3d94af270080b67e1a29ea0e6dbccdbe6ea8699cda3e28",
        "94f98dbea2fa3b1040acdf8dd3f7edefed8f768a6076a034b63c9464e9a22301",
        "1d6ef9ff0f8ce74e7a5701da7f957116b5a3c0600541f86fb00ca54dc9f4eaec",
        "6a657331881c1fcd23c59cca16d27af51a71301c38870de721382175d3de8423",
        "d809edfcd417861a3ca83e40cf631616e0791efbcc79a0fdfe0d57c6ede4dd4f",
        "8dc54cdb7904a8924f10c55f97e5fcc1f813e6002120720c822a09c99a10b09e",
        "de25dded2e4c62eff486bf7827f89613f3038d5a200a"
    );
    let sh13 = concat!(
        "160303007a020000760303225084578024a693566bc71ba223826eeffc875b20",
        "27eec7337bf5fdf0eb1de720944f9b7806d887e27500dc6a05cfed8becf3d65a",
        "9a75ab618828f1b9e418d168130100002e00330024001d002070b27700b360aa",
        "3941a22da86901c00e174dc3d83e13cf4159b34b3de6809372002b0002030414",
        "0303000101"
    );
    let versions = |ch: &str, sh: &str| {
        let mut c = Conn::new(defaults());
        c.send(Original, &unhex(ch));
        c.send(Reverse, &unhex(sh));
        assert!(c.events().is_empty());
        c.send(Original, &unhex(RAW_CCS));
        let e = c.events().remove(0);
        (
            get(&e, "tls.version"),
            get(&e, "tls.version_protocol"),
            get(&e, "tls.detailed.version"),
        )
    };
    assert_eq!(
        versions(ch13, sh13),
        (
            Some(json!("1.3")),
            Some(json!("tls")),
            Some(json!("TLS 1.3"))
        )
    );
    assert_eq!(
        versions(RAW_CLIENT_HELLO, &format!("{RAW_SERVER_HELLO}{RAW_CCS}")),
        (
            Some(json!("1.2")),
            Some(json!("tls")),
            Some(json!("TLS 1.2"))
        )
    );
}

#[test]
fn packetbeat_ja3_vectors() {
    let cases = [
        (
            RAW_CLIENT_HELLO.to_string(),
            "94c485bca29d5392be53f2b8cf7f4304",
        ),
        (
            concat!(
                "16030100db010000d703035a1de562860f7943063eaeafa6bffdcfb30b9b",
                "54e275391ee70a720f05c5a80a00002600ffc02cc02bc024c023c00ac009c030",
                "c02fc028c027c014c013009d009c003d003c0035002f01000088000000130011",
                "00000e7777772e656c61737469632e636f000a00080006001700180019000b00",
                "020100000d001200100401020105010601040302030503060333740000001000",
                "30002e0268320568322d31360568322d31350568322d313408737064792f332e",
                "3106737064792f3308687474702f312e31000500050100000000001200000017",
                "0000"
            )
            .to_string(),
            "c07cb55f88702033a8f52c046d23e0b2",
        ),
        (
            concat!(
                "160301003d010000390301ffffffffffffffffffffffffffffffffffffff",
                "ffffffffffffffffffffffffff0000080035002f000a00ff0100000800230000",
                "000f0000"
            )
            .to_string(),
            "7a75198d3e18354a6763860d331ff46a",
        ),
    ];
    for (packet, want) in cases {
        let mut c = Conn::new(defaults());
        c.send(Original, &unhex(&packet));
        c.fin();
        let e = c.events().remove(0);
        assert_eq!(get(&e, "tls.client.ja3"), Some(json!(want)));
    }
}

/// One extension through `parse_extensions`: its parsed value, or `None` when it lands in
/// `_unparsed_` (Packetbeat's parser returned nil).
fn ext_value(code: u16, hex: &str) -> Option<Value> {
    let e = parser::parse_extensions(&with_len16(&ext(code, &unhex(hex)))).unwrap();
    let p = e.parsed.unwrap();
    p.iter()
        .find(|(k, _)| k.as_str() != "_unparsed_")
        .map(|(_, v)| v.clone())
}

#[test]
fn packetbeat_extension_vectors() {
    let hosts = "00000a656c61737469632e636f00000b6578616d706c652e6e65740000096c6f63616c686f7374";
    let sni = |len: &str, body: &str| ext_value(0, &format!("{len}{body}"));
    assert_eq!(
        sni("000d", "00000a656c61737469632e636f"),
        Some(json!(["elastic.co"]))
    );
    assert_eq!(
        sni("0027", hosts),
        Some(json!(["elastic.co", "example.net", "localhost"]))
    );
    assert_eq!(
        sni("0027", &hosts.replacen("00000b", "01000b", 1)),
        Some(json!(["elastic.co", "localhost"]))
    );
    assert_eq!(
        sni("0400", hosts),
        Some(json!(["elastic.co", "example.net", "localhost"]))
    );
    assert_eq!(
        sni("0026", hosts),
        Some(json!(["elastic.co", "example.net"]))
    );
    assert_eq!(
        sni("001c", hosts),
        Some(json!(["elastic.co", "example.net"]))
    );

    assert_eq!(ext_value(1, "01"), Some(json!("2^9")));
    assert_eq!(ext_value(1, "04"), Some(json!("2^12")));
    assert_eq!(ext_value(1, "00"), Some(json!("(unknown:0)")));
    assert_eq!(ext_value(1, "FF"), Some(json!("(unknown:255)")));
    assert_eq!(ext_value(1, "FF00"), None);

    assert_eq!(ext_value(9, "00"), Some(json!(["X.509"])));
    assert_eq!(ext_value(9, "01"), Some(json!(["OpenPGP"])));
    assert_eq!(ext_value(9, "02"), Some(json!(["RawPubKey"])));
    assert_eq!(ext_value(9, "3c"), Some(json!(["(unknown:60)"])));
    assert_eq!(
        ext_value(9, "03020100"),
        Some(json!(["RawPubKey", "OpenPGP", "X.509"]))
    );

    assert_eq!(ext_value(12, "04726f6f74"), Some(json!("root")));
    assert_eq!(ext_value(12, "FF726f6f74"), None);

    let all = json!(["TLS 1.3", "TLS 1.2", "TLS 1.1", "TLS 1.0"]);
    assert_eq!(ext_value(43, "080304030303020301"), Some(all.clone()));
    assert_eq!(ext_value(43, "0c7a7a0304030303020301fafa"), Some(all));
    assert_eq!(ext_value(43, "0304"), Some(json!("TLS 1.3")));
    assert_eq!(ext_value(43, "0305"), Some(json!("TLS 1.4")));
    for bad in ["00", "0b7a7a0304030303020301FF", "FF", "805a5a03040302"] {
        assert_eq!(ext_value(43, bad), None, "{bad}");
    }
    assert_eq!(
        ext_value(43, "0403030304FFFFFFFFFFFFFF"),
        Some(json!(["TLS 1.2", "TLS 1.3"]))
    );
}

const CERTS_MSG: &str = include_str!("testdata/certs_msg.hex");

fn parse_hex(p: &mut Parser, hex: &str) -> ParseResult {
    let clean: String = hex.split_whitespace().collect();
    let mut buf = unhex(&clean);
    p.parse(&mut buf)
}

#[test]
fn packetbeat_parser_vectors() {
    let mut p = Parser::new();
    assert_eq!(parse_hex(&mut p, "14"), ParseResult::More);
    assert_eq!(parse_hex(&mut p, "1403030001"), ParseResult::More);
    assert_eq!(parse_hex(&mut p, "1403030001FF"), ParseResult::Encrypted);
    assert_eq!(parse_hex(&mut p, "FF0303000155"), ParseResult::Ok);
    assert_eq!(parse_hex(&mut p, "160303000400000000"), ParseResult::Ok);
    assert_eq!(parse_hex(&mut p, "16030300040d000000"), ParseResult::Ok);
    assert!(p.cert_requested);

    let mut p = Parser::new();
    // An incomplete handshake message waits for the next record; a bogus one fails.
    assert_eq!(parse_hex(&mut p, "160301000502000002FF"), ParseResult::Ok);
    assert_eq!(parse_hex(&mut p, "1603010001AA"), ParseResult::Failed);
    assert_eq!(
        parse_hex(&mut p, "160301000502040000FF"),
        ParseResult::Failed
    );
    let random = "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF";
    for tail in ["C00A01", "C00A010000"] {
        let body = format!("030312345678{random}03abcdef{tail}");
        let msg = format!(
            "1603010{:03x}020000{:02x}{body}",
            body.len() / 2 + 4,
            body.len() / 2
        );
        let mut p = Parser::new();
        assert_eq!(parse_hex(&mut p, &msg), ParseResult::Ok, "{msg}");
        let h = p.hello.as_ref().unwrap();
        assert_eq!(h.session_id, "abcdef");
        assert_eq!(h.selected_cipher, 0xc00a);
        assert!(h.extensions.parsed.is_none());
        let mut c = Conn::new(defaults());
        c.send(Original, &unhex(&msg));
        c.fin();
        let e = flat(c.events().remove(0));
        assert_eq!(
            e["tls.detailed.server_hello.selected_compression_method"],
            json!("DEFLATE")
        );
        assert_eq!(e["tls.detailed.server_hello.version"], json!("3.3"));
    }
    let mut p = Parser::new();
    let bad_version = format!("160301002f0200002bF30312345678{random}03abcdefC00A010000");
    assert_eq!(parse_hex(&mut p, &bad_version), ParseResult::Failed);
    assert!(p.hello.is_none());
    let long_sid = format!(
        "160301004d02000049030312345678{random}21{}C00A010000",
        "ee".repeat(33)
    );
    assert_eq!(parse_hex(&mut p, &long_sid), ParseResult::Failed);
    assert!(p.hello.is_none());
}

#[test]
fn packetbeat_certificate_vectors() {
    let mut p = Parser::new();
    assert_eq!(parse_hex(&mut p, CERTS_MSG), ParseResult::Ok);
    assert_eq!(p.certificates.len(), 2);
    let c = &p.certificates;
    assert_eq!(c[0].subject.common_name, "www.example.org");
    assert_eq!(
        c[1].subject.common_name,
        "DigiCert SHA2 High Assurance Server CA"
    );
    let m = c[0].to_map();
    let flat = |path: &str| {
        path.split('.')
            .fold(Some(&m), |v, k| v.and_then(|v| v.get(k)))
            .cloned()
    };
    for (k, v) in [
        ("not_after", json!("2018-11-28T12:00:00.000Z")),
        ("not_before", json!("2015-11-03T00:00:00.000Z")),
        ("public_key_algorithm", json!("RSA")),
        ("public_key_size", json!(2048)),
        (
            "serial_number",
            json!("19132437207909210467858529073412672688"),
        ),
        ("signature_algorithm", json!("SHA256-RSA")),
        (
            "issuer.common_name",
            json!("DigiCert SHA2 High Assurance Server CA"),
        ),
        ("issuer.country", json!("US")),
        ("issuer.organization", json!("DigiCert Inc")),
        ("issuer.organizational_unit", json!("www.digicert.com")),
        ("subject.common_name", json!("www.example.org")),
        ("subject.country", json!("US")),
        ("subject.locality", json!("Los Angeles")),
        (
            "subject.organization",
            json!("Internet Corporation for Assigned Names and Numbers"),
        ),
        ("subject.organizational_unit", json!("Technology")),
    ] {
        assert_eq!(flat(k), Some(v), "{k}");
    }
    assert_eq!(
        m["alternative_names"],
        json!([
            "www.example.org",
            "example.com",
            "example.edu",
            "example.net",
            "example.org",
            "www.example.com",
            "www.example.edu",
            "www.example.net"
        ])
    );
    assert_eq!(
        Fingerprint::Md5.hash(&c[0].raw),
        "68423D55EA27D0B4FDA1878FCAB7A1EB"
    );
    assert_eq!(
        Fingerprint::Sha1.hash(&c[0].raw),
        "2509FB22F7671AEA2D0A28AE80516F390DE0CA21"
    );
    assert_eq!(
        Fingerprint::Sha256.hash(&c[0].raw),
        "642DE54D84C30494157F53F657BF9F89B4EA6C8B16351FD7EC258D556F821040"
    );

    // Bad Certificate messages: the records parse, no certificate is kept.
    for msg in [
        "16030300040b000000",
        "16030300070b000003000000",
        "16030300070b000003000fff",
        "160303000a0b000006000003000000",
        "160303000b0b000007000004000fff33",
        "160303000b0b00000700000400000133",
    ] {
        let mut p = Parser::new();
        assert_eq!(parse_hex(&mut p, msg), ParseResult::Ok, "{msg}");
        assert!(p.certificates.is_empty(), "{msg}");
    }
}
