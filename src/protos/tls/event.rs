//! The published event (`createEvent` in `tls.go`).

use super::config::TlsSettings;
use super::parser::{ja3, ocsp_status_name, Direction, Hello, Parser, Version};
use super::x509::{format_time, to_pem, Certificate};
use crate::common::{IpPortTuple, Ts};
use crate::publish::{Endpoint, Event, Map, MapExt};
use serde_json::{json, Value};

/// One direction of a connection as the event needs it.
pub struct Side<'a> {
    pub parser: &'a Parser,
    /// The connection's tuple (its first packet's addresses) when this direction started.
    pub tuple: Option<IpPortTuple>,
}

/// `getCerts`: the first certificate's map and the rest of the chain.
fn cert_maps(certs: &[Certificate]) -> Option<(Value, Option<Value>)> {
    let first = certs.first()?.to_map();
    if certs.len() == 1 {
        return Some((first, None));
    }
    Some((
        first,
        Some(Value::Array(
            certs[1..].iter().map(|c| c.to_map()).collect(),
        )),
    ))
}

/// ECS certificate fields of one end (`tls.client.*` / `tls.server.*`).
fn put_leaf_cert(tls: &mut Map, prefix: &str, certs: &[Certificate], s: &TlsSettings) {
    let Some(cert) = certs.first() else { return };
    for fp in &s.fingerprints {
        tls.put(
            &format!("{prefix}.hash.{}", fp.name()),
            json!(fp.hash(&cert.raw)),
        );
    }
    let subject = cert.subject.to_go_string();
    if !subject.is_empty() {
        tls.put(&format!("{prefix}.subject"), json!(subject));
    }
    let issuer = cert.issuer.to_go_string();
    if !issuer.is_empty() {
        tls.put(&format!("{prefix}.issuer"), json!(issuer));
    }
    tls.put(
        &format!("{prefix}.not_after"),
        json!(format_time(&cert.not_after)),
    );
    tls.put(
        &format!("{prefix}.not_before"),
        json!(format_time(&cert.not_before)),
    );
}

/// Builds the event for a connection. `original`/`reverse` are the two directions as the TCP
/// layer numbers them; `completed` is Packetbeat's `handshakeCompleted` bit set.
pub fn create_event(
    s: &TlsSettings,
    original: Side,
    reverse: Side,
    completed: u8,
    start: Ts,
    end: Option<Ts>,
) -> Event {
    let (mut client, mut server) = (original, reverse);
    if client.parser.direction == Direction::Server || server.parser.direction == Direction::Client
    {
        std::mem::swap(&mut client, &mut server);
    }
    let (cp, sp) = (client.parser, server.parser);

    let status = if completed < 2 { "Error" } else { "OK" };
    let established = completed > 1;

    let mut tls = Map::new();
    let mut detailed = Map::new();
    let empty_hello = Hello::default();

    let client_hello = match &cp.hello {
        Some(h) => {
            detailed.insert("client_hello".into(), h.to_map());
            tls.put("client.ja3", json!(ja3(h).0));
            h
        }
        None => &empty_hello,
    };
    let server_hello = match &sp.hello {
        Some(h) => {
            detailed.insert("server_hello".into(), h.to_map());
            tls.put(
                "cipher",
                json!(super::algos::cipher_suite(h.selected_cipher)),
            );
            h
        }
        None => &empty_hello,
    };
    if let Some(status) = sp.ocsp_response {
        detailed.insert("ocsp_response".into(), json!(ocsp_status_name(status)));
    }
    let mut client_x509 = None;
    let mut server_x509 = None;
    if s.send_certificates {
        if let Some((cert, chain)) = cert_maps(&cp.certificates) {
            client_x509 = Some(cert);
            if let Some(chain) = chain {
                detailed.insert("client_certificate_chain".into(), chain);
            }
        }
        if let Some((cert, chain)) = cert_maps(&sp.certificates) {
            server_x509 = Some(cert);
            if let Some(chain) = chain {
                detailed.insert("server_certificate_chain".into(), chain);
            }
        }
    }
    put_leaf_cert(&mut tls, "client", &cp.certificates, s);
    put_leaf_cert(&mut tls, "server", &sp.certificates, s);
    detailed.insert(
        "client_certificate_requested".into(),
        json!(sp.cert_requested),
    );

    // Resumption: a session id echoed by the server, or a ticket offered by the client and
    // acknowledged by the server, without any key exchange.
    let session_id_match =
        !client_hello.session_id.is_empty() && client_hello.session_id == server_hello.session_id;
    let ticket_offered = !client_hello.ticket_value.is_empty() && server_hello.ticket_present;
    let resumed = !cp.key_exchanged && !sp.key_exchanged && (session_id_match || ticket_offered);
    if resumed {
        detailed.insert(
            "resumption_method".into(),
            json!(if ticket_offered { "ticket" } else { "id" }),
        );
    }

    let mut alerts = Vec::new();
    let mut alert_types = Vec::new();
    for a in &cp.alerts {
        alerts.push(a.to_map("client"));
        alert_types.push(super::algos::alert_code(a.code));
    }
    for a in &sp.alerts {
        alerts.push(a.to_map("server"));
        alert_types.push(super::algos::alert_code(a.code));
    }
    if !alerts.is_empty() {
        detailed.insert("alerts".into(), json!(alerts));
        detailed.insert("alert_types".into(), json!(alert_types));
    }

    // Version in use: the server's supported_versions, else its hello version, else the
    // client's.
    let mut version = Version::default();
    if !server_hello.version.is_zero() {
        version = match server_hello
            .extensions
            .raw
            .get(&super::parser::EXT_SUPPORTED_VERSIONS)
        {
            Some(raw) => Version {
                major: raw.first().copied().unwrap_or(0),
                minor: raw.get(1).copied().unwrap_or(0),
            },
            None => server_hello.version,
        };
    } else if !client_hello.version.is_zero() {
        version = client_hello.version;
    }
    detailed.insert("version".into(), json!(version.name()));
    let (vp, v) = version.protocol_version();
    tls.put("version_protocol", json!(vp));
    tls.put("version", json!(v));

    let mut evt = Event::new(start);
    let tuple = client.tuple.or(server.tuple);
    let sni = client_hello
        .extensions
        .parsed
        .as_ref()
        .and_then(|p| p.get("server_name_indication"))
        .and_then(|v| v.as_array())
        .and_then(|l| l.first())
        .and_then(|v| v.as_str())
        .map(str::to_string);
    {
        let pb = evt.pb();
        if let Some(t) = tuple {
            pb.set_source(Endpoint::new(t.src_ip, t.src_port));
            let mut dst = Endpoint::new(t.dst_ip, t.dst_port);
            dst.domain = sni.clone();
            pb.set_destination(dst);
        }
        pb.event.start = Some(start);
        pb.event.end = end;
        pb.network.transport = Some(crate::common::Transport::Tcp);
        pb.network.protocol = "tls";
    }
    evt.put("type", "tls");
    evt.put("status", status);
    if let Some(sni) = sni {
        tls.put("client.server_name", json!(sni));
    }
    if let Some(alpn) = server_hello
        .extensions
        .parsed
        .as_ref()
        .and_then(|p| p.get("application_layer_protocol_negotiation"))
        .and_then(|v| v.as_array())
        .and_then(|l| l.first())
        .and_then(|v| v.as_str())
    {
        tls.put("next_protocol", json!(alpn));
    }
    if established {
        tls.put("established", json!(true));
    }
    if resumed {
        tls.put("resumed", json!(true));
    }
    // Flattened, so the puts below `tls.client` and `tls.server` that follow do not overlap it.
    evt.fields.put_map("tls", &tls);

    if s.include_detailed_fields {
        if let Some(c) = client_x509 {
            evt.put("tls.client.x509", c);
        }
        if let Some(c) = server_x509 {
            evt.put("tls.server.x509", c);
        }
        evt.put("tls.detailed", Value::Object(detailed));
    }
    if s.include_raw_certificates {
        if !sp.certificates.is_empty() {
            let chain: Vec<String> = sp.certificates.iter().map(|c| to_pem(&c.raw)).collect();
            evt.put("tls.server.certificate_chain", json!(chain));
        }
        if !cp.certificates.is_empty() {
            let chain: Vec<String> = cp.certificates.iter().map(|c| to_pem(&c.raw)).collect();
            evt.put("tls.client.certificate_chain", json!(chain));
        }
    }
    if cp.hello.is_some() && !client_hello.cipher_suites.is_empty() {
        evt.put(
            "tls.client.supported_ciphers",
            json!(client_hello.supported_ciphers()),
        );
    }
    if !established {
        evt.put("tls.established", false);
    }
    if !resumed {
        evt.put("tls.resumed", false);
    }
    evt
}
