//! The published event (`createEvent` in `tls.go`).

use super::config::TlsSettings;
use super::parser::{ja3, ocsp_status_name, Direction, Hello, Parser, Version};
use super::x509::{format_time, to_pem, Certificate};
use crate::common::{IpPortTuple, Ts};
use crate::outputs::codec::{write_value, ObjectWriter};
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

/// `tls.detailed`, written in key order when the event is built.
#[derive(Default)]
struct Detailed<'a> {
    alerts: Vec<Value>,
    alert_types: Vec<String>,
    client_certificate_chain: Option<Value>,
    client_certificate_requested: bool,
    client_hello: Option<&'a Hello>,
    ocsp_response: Option<String>,
    resumption_method: Option<&'static str>,
    server_certificate_chain: Option<Value>,
    server_hello: Option<&'a Hello>,
    version: String,
}

impl Detailed<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut w = ObjectWriter::new(out);
        if !self.alerts.is_empty() {
            w.strs("alert_types", &self.alert_types);
            let o = w.key("alerts");
            o.push(b'[');
            for (i, a) in self.alerts.iter().enumerate() {
                if i > 0 {
                    o.push(b',');
                }
                write_value(o, a);
            }
            o.push(b']');
        }
        if let Some(c) = &self.client_certificate_chain {
            write_value(w.key("client_certificate_chain"), c);
        }
        w.bool(
            "client_certificate_requested",
            self.client_certificate_requested,
        );
        if let Some(h) = self.client_hello {
            h.write_json(w.key("client_hello"));
        }
        if let Some(s) = &self.ocsp_response {
            w.str("ocsp_response", s);
        }
        if let Some(m) = self.resumption_method {
            w.str("resumption_method", m);
        }
        if let Some(c) = &self.server_certificate_chain {
            write_value(w.key("server_certificate_chain"), c);
        }
        if let Some(h) = self.server_hello {
            h.write_json(w.key("server_hello"));
        }
        w.str("version", &self.version);
        w.end();
    }
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
    let mut detailed = Detailed {
        client_hello: cp.hello.as_ref(),
        server_hello: sp.hello.as_ref(),
        ..Default::default()
    };
    let empty_hello = Hello::default();

    let client_hello = match &cp.hello {
        Some(h) => {
            tls.put("client.ja3", json!(ja3(h).0));
            h
        }
        None => &empty_hello,
    };
    let server_hello = match &sp.hello {
        Some(h) => {
            tls.put(
                "cipher",
                json!(super::algos::cipher_suite(h.selected_cipher)),
            );
            h
        }
        None => &empty_hello,
    };
    if let Some(status) = sp.ocsp_response {
        detailed.ocsp_response = Some(ocsp_status_name(status));
    }
    let mut client_x509 = None;
    let mut server_x509 = None;
    if s.send_certificates {
        if let Some((cert, chain)) = cert_maps(&cp.certificates) {
            client_x509 = Some(cert);
            detailed.client_certificate_chain = chain;
        }
        if let Some((cert, chain)) = cert_maps(&sp.certificates) {
            server_x509 = Some(cert);
            detailed.server_certificate_chain = chain;
        }
    }
    put_leaf_cert(&mut tls, "client", &cp.certificates, s);
    put_leaf_cert(&mut tls, "server", &sp.certificates, s);
    detailed.client_certificate_requested = sp.cert_requested;

    // Resumption: a session id echoed by the server, or a ticket offered by the client and
    // acknowledged by the server, without any key exchange.
    let session_id_match =
        !client_hello.session_id.is_empty() && client_hello.session_id == server_hello.session_id;
    let ticket_offered = !client_hello.ticket_value.is_empty() && server_hello.ticket_present;
    let resumed = !cp.key_exchanged && !sp.key_exchanged && (session_id_match || ticket_offered);
    if resumed {
        detailed.resumption_method = Some(if ticket_offered { "ticket" } else { "id" });
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
    detailed.alerts = alerts;
    detailed.alert_types = alert_types;

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
    detailed.version = version.name();
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
        evt.fields
            .put_with("tls.detailed", |o| detailed.write_json(o));
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
