//! Arbitrary bytes through the TLS record/handshake parser (as one direction of a stream, cut
//! into segments at positions taken from the input), the hello and extension parsers, JA3,
//! and the X.509 reader. None of them may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use packetbeat::protos::tls::parser::{
    ja3, parse_certificates, parse_client_hello, parse_extensions, parse_server_hello, Parser,
};
use packetbeat::protos::tls::x509::parse_certificate;

fuzz_target!(|data: &[u8]| {
    let (cut, rest) = match data.split_first() {
        Some((c, r)) => (*c as usize, r),
        None => return,
    };
    // The stream parser, fed in two segments.
    let mut p = Parser::new();
    let mut buf = Vec::new();
    let k = if rest.is_empty() { 0 } else { cut % (rest.len() + 1) };
    for seg in [&rest[..k], &rest[k..]] {
        buf.extend_from_slice(seg);
        let _ = p.parse(&mut buf);
    }
    if let Some(h) = &p.hello {
        let _ = ja3(h);
        h.write_json(&mut Vec::new());
    }
    for c in &p.certificates {
        let _ = c.to_map();
    }
    // The message parsers directly.
    if let Ok(Some(h)) = parse_client_hello(rest) {
        let _ = ja3(&h);
    }
    let _ = parse_server_hello(rest);
    let _ = parse_extensions(rest);
    let _ = parse_certificates(rest);
    if let Some(c) = parse_certificate(rest) {
        let _ = c.to_map();
        let _ = c.subject.to_go_string();
    }
});
