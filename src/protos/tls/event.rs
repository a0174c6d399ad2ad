//! The published event (`createEvent` in `tls.go`).

use super::config::TlsSettings;
use super::parser::{ja3, ocsp_status_name, Direction, Hello, Parser, Version};
use super::x509::{format_time, to_pem, Certificate};
use crate::common::{IpPortTuple, Ts};
use crate::publish::json::{write_value, ObjectWriter};
use crate::publish::{Endpoint, Event};
use serde_json::Value;

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

/// `tls.client.*` / `tls.server.*`: what one end contributes, written in key order.
#[derive(Default)]
struct End {
    certificate_chain: Option<Vec<String>>,
    /// Fingerprints by algorithm name, in key order.
    hash: Vec<(&'static str, String)>,
    issuer: Option<String>,
    ja3: Option<String>,
    not_after: Option<String>,
    not_before: Option<String>,
    server_name: Option<String>,
    subject: Option<String>,
    supported_ciphers: Option<Vec<String>>,
    x509: Option<Value>,
}

impl End {
    /// The ECS certificate fields of this end's leaf certificate.
    fn set_leaf_cert(&mut self, certs: &[Certificate], s: &TlsSettings) {
        let Some(cert) = certs.first() else { return };
        for fp in &s.fingerprints {
            // Put twice, the last one wins, as in the map it replaces.
            self.hash.retain(|(name, _)| *name != fp.name());
            self.hash.push((fp.name(), fp.hash(&cert.raw)));
        }
        self.hash.sort_by(|a, b| a.0.cmp(b.0));
        self.subject = Some(cert.subject.to_go_string()).filter(|s| !s.is_empty());
        self.issuer = Some(cert.issuer.to_go_string()).filter(|s| !s.is_empty());
        self.not_after = Some(format_time(&cert.not_after));
        self.not_before = Some(format_time(&cert.not_before));
    }

    fn is_empty(&self) -> bool {
        self.certificate_chain.is_none()
            && self.hash.is_empty()
            && self.issuer.is_none()
            && self.ja3.is_none()
            && self.not_after.is_none()
            && self.not_before.is_none()
            && self.server_name.is_none()
            && self.subject.is_none()
            && self.supported_ciphers.is_none()
            && self.x509.is_none()
    }

    fn write_json(&self, w: &mut ObjectWriter) {
        if let Some(c) = &self.certificate_chain {
            w.strs("certificate_chain", c);
        }
        if !self.hash.is_empty() {
            w.object("hash", |w| {
                for (name, h) in &self.hash {
                    w.str(name, h);
                }
            });
        }
        for (key, v) in [
            ("issuer", &self.issuer),
            ("ja3", &self.ja3),
            ("not_after", &self.not_after),
            ("not_before", &self.not_before),
            ("server_name", &self.server_name),
            ("subject", &self.subject),
        ] {
            if let Some(v) = v {
                w.str(key, v);
            }
        }
        if let Some(c) = &self.supported_ciphers {
            w.strs("supported_ciphers", c);
        }
        if let Some(x) = &self.x509 {
            write_value(w.key("x509"), x);
        }
    }
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

    let (mut client_end, mut server_end) = (End::default(), End::default());
    let mut cipher = None;
    let mut detailed = Detailed {
        client_hello: cp.hello.as_ref(),
        server_hello: sp.hello.as_ref(),
        ..Default::default()
    };
    let empty_hello = Hello::default();

    let client_hello = match &cp.hello {
        Some(h) => {
            client_end.ja3 = Some(ja3(h).0);
            h
        }
        None => &empty_hello,
    };
    let server_hello = match &sp.hello {
        Some(h) => {
            cipher = Some(super::algos::cipher_suite(h.selected_cipher));
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
    client_end.set_leaf_cert(&cp.certificates, s);
    server_end.set_leaf_cert(&sp.certificates, s);
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
    let (version_protocol, version_number) = version.protocol_version();

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
    evt.fields.put_str("status", status);
    client_end.server_name = sni;
    let next_protocol = server_hello
        .extensions
        .parsed
        .as_ref()
        .and_then(|p| p.get("application_layer_protocol_negotiation"))
        .and_then(|v| v.as_array())
        .and_then(|l| l.first())
        .and_then(|v| v.as_str());
    if s.include_detailed_fields {
        client_end.x509 = client_x509;
        server_end.x509 = server_x509;
    }
    if s.include_raw_certificates {
        for (end, certs) in [
            (&mut server_end, &sp.certificates),
            (&mut client_end, &cp.certificates),
        ] {
            if !certs.is_empty() {
                end.certificate_chain = Some(certs.iter().map(|c| to_pem(&c.raw)).collect());
            }
        }
    }
    if cp.hello.is_some() && !client_hello.cipher_suites.is_empty() {
        client_end.supported_ciphers = Some(client_hello.supported_ciphers());
    }
    // The whole `tls` object in key order.
    evt.fields.put_with("tls", |o| {
        let mut w = ObjectWriter::new(o);
        if let Some(c) = &cipher {
            w.str("cipher", c);
        }
        if !client_end.is_empty() {
            w.object("client", |w| client_end.write_json(w));
        }
        if s.include_detailed_fields {
            detailed.write_json(w.key("detailed"));
        }
        w.bool("established", established);
        if let Some(p) = next_protocol {
            w.str("next_protocol", p);
        }
        w.bool("resumed", resumed);
        if !server_end.is_empty() {
            w.object("server", |w| server_end.write_json(w));
        }
        w.str("version", &version_number);
        w.str("version_protocol", &version_protocol);
        w.end();
    });
    evt.fields.put_str("type", "tls");
    evt
}
