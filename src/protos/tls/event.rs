//! The published event (`createEvent` in `tls.go`).

use super::config::TlsSettings;
use super::parser::{ja3, ocsp_status_name, Direction, Hello, Parser, Version};
use super::x509::{format_time, to_pem, Certificate};
use crate::common::{IpPortTuple, Ts};
use crate::publish::json::{write_value, ObjectWriter};
use crate::publish::{Endpoint, Event, PbFields};
use serde_json::Value;

/// One direction of a connection as the event needs it.
pub struct Side<'a> {
    pub parser: &'a Parser,
    /// The connection's tuple (its first packet's addresses) when this direction started.
    pub tuple: Option<IpPortTuple>,
}

/// `getCerts`: the first certificate's map and the rest of the chain, when they are
/// published (`send_certificates`, in the detailed fields).
fn certificate_maps(certs: &[Certificate], s: &TlsSettings) -> (Option<Value>, Option<Value>) {
    let Some(first) = certs.first() else {
        return (None, None);
    };
    if !(s.send_certificates && s.include_detailed_fields) {
        return (None, None);
    }
    let chain =
        (certs.len() > 1).then(|| Value::Array(certs[1..].iter().map(|c| c.to_map()).collect()));
    (Some(first.to_map()), chain)
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
    /// What either end contributes from its certificates: the leaf's ECS fields, its `x509`
    /// map (see [`certificate_maps`]) and, as configured, the raw chain.
    fn of(certs: &[Certificate], x509: Option<Value>, s: &TlsSettings) -> End {
        let mut e = End {
            x509,
            ..End::default()
        };
        e.set_leaf_cert(certs, s);
        if s.include_raw_certificates && !certs.is_empty() {
            e.certificate_chain = Some(certs.iter().map(|c| to_pem(&c.raw)).collect());
        }
        e
    }

    /// The client's end: also its hello's JA3 and cipher suites, and the SNI.
    fn client(cp: &Parser, x509: Option<Value>, sni: Option<&str>, s: &TlsSettings) -> End {
        let mut e = End::of(&cp.certificates, x509, s);
        if let Some(h) = &cp.hello {
            e.ja3 = Some(ja3(h).0);
            if !h.cipher_suites.is_empty() {
                e.supported_ciphers = Some(h.supported_ciphers());
            }
        }
        e.server_name = sni.map(str::to_string);
        e
    }

    /// The ECS certificate fields of this end's leaf certificate.
    fn set_leaf_cert(&mut self, certs: &[Certificate], s: &TlsSettings) {
        let Some(cert) = certs.first() else { return };
        for fp in &s.fingerprints {
            // A fingerprint configured twice: the last one wins, as in Packetbeat's map.
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

impl<'a> Detailed<'a> {
    /// What the two parsers give directly: hellos, alerts, the OCSP status, whether the server
    /// asked for a certificate.
    fn of(cp: &'a Parser, sp: &'a Parser) -> Detailed<'a> {
        let (alerts, alert_types) = alerts(cp, sp);
        Detailed {
            alerts,
            alert_types,
            client_certificate_requested: sp.cert_requested,
            client_hello: cp.hello.as_ref(),
            ocsp_response: sp.ocsp_response.map(ocsp_status_name),
            server_hello: sp.hello.as_ref(),
            ..Detailed::default()
        }
    }

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

/// The whole `tls` object, written in key order.
struct Tls<'a> {
    cipher: Option<String>,
    client: End,
    /// `tls.detailed`, when `include_detailed_fields` is set.
    detailed: Option<Detailed<'a>>,
    established: bool,
    next_protocol: Option<&'a str>,
    resumed: bool,
    server: End,
    version: String,
    version_protocol: String,
}

impl Tls<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut w = ObjectWriter::new(out);
        if let Some(c) = &self.cipher {
            w.str("cipher", c);
        }
        if !self.client.is_empty() {
            w.object("client", |w| self.client.write_json(w));
        }
        if let Some(d) = &self.detailed {
            d.write_json(w.key("detailed"));
        }
        w.bool("established", self.established);
        if let Some(p) = self.next_protocol {
            w.str("next_protocol", p);
        }
        w.bool("resumed", self.resumed);
        if !self.server.is_empty() {
            w.object("server", |w| self.server.write_json(w));
        }
        w.str("version", &self.version);
        w.str("version_protocol", &self.version_protocol);
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
    let (client, server) = client_and_server(original, reverse);
    let (cp, sp) = (client.parser, server.parser);
    let empty_hello = Hello::default();
    let client_hello = cp.hello.as_ref().unwrap_or(&empty_hello);
    let server_hello = sp.hello.as_ref().unwrap_or(&empty_hello);
    let sni = first_extension_value(client_hello, "server_name_indication");
    let version = negotiated_version(client_hello, server_hello);
    let (version_protocol, version_number) = version.protocol_version();
    let resumption_method = resumption_method(cp, sp, client_hello, server_hello, version);

    let (client_x509, client_chain) = certificate_maps(&cp.certificates, s);
    let (server_x509, server_chain) = certificate_maps(&sp.certificates, s);
    let detailed = s.include_detailed_fields.then(|| Detailed {
        client_certificate_chain: client_chain,
        resumption_method,
        server_certificate_chain: server_chain,
        version: version.name(),
        ..Detailed::of(cp, sp)
    });
    let tls = Tls {
        cipher: sp
            .hello
            .as_ref()
            .map(|h| super::algos::cipher_suite(h.selected_cipher)),
        client: End::client(cp, client_x509, sni, s),
        detailed,
        established: completed > 1,
        next_protocol: first_extension_value(
            server_hello,
            "application_layer_protocol_negotiation",
        ),
        resumed: resumption_method.is_some(),
        server: End::of(&sp.certificates, server_x509, s),
        version: version_number,
        version_protocol,
    };

    let mut evt = Event::new(start);
    set_common_fields(evt.pb(), client.tuple.or(server.tuple), sni, start, end);
    evt.fields
        .put_str("status", if completed < 2 { "Error" } else { "OK" });
    evt.fields.put_with("tls", |o| tls.write_json(o));
    evt.fields.put_str("type", "tls");
    evt
}

/// The two directions as client and server: swapped when the parsers found them the other
/// way round.
fn client_and_server<'a>(original: Side<'a>, reverse: Side<'a>) -> (Side<'a>, Side<'a>) {
    if original.parser.direction == Direction::Server
        || reverse.parser.direction == Direction::Client
    {
        (reverse, original)
    } else {
        (original, reverse)
    }
}

/// The first string of a parsed hello extension's list (the SNI, the selected ALPN protocol).
fn first_extension_value<'h>(h: &'h Hello, name: &str) -> Option<&'h str> {
    h.extensions
        .parsed
        .as_ref()
        .and_then(|p| p.get(name))
        .and_then(|v| v.as_array())
        .and_then(|l| l.first())
        .and_then(|v| v.as_str())
}

/// The version in use: the server's supported_versions, else its hello version, else the
/// client's.
fn negotiated_version(client_hello: &Hello, server_hello: &Hello) -> Version {
    if !server_hello.version.is_zero() {
        match server_hello
            .extensions
            .raw
            .get(&super::parser::EXT_SUPPORTED_VERSIONS)
        {
            Some(raw) => Version {
                major: raw.first().copied().unwrap_or(0),
                minor: raw.get(1).copied().unwrap_or(0),
            },
            None => server_hello.version,
        }
    } else {
        client_hello.version
    }
}

/// How the session was resumed, if it was. Up to TLS 1.2 (Packetbeat's rule): a session id
/// echoed by the server (`id`), or a ticket offered by the client and acknowledged by the
/// server (`ticket`), without any key exchange. In TLS 1.3 the server echoes the legacy
/// session id in every handshake (middlebox compatibility mode, RFC 8446 §D.4) and resumes
/// only by accepting a pre-shared key: its ServerHello then carries `pre_shared_key`
/// (`ticket`). Packetbeat applies the TLS 1.2 rule there and calls every such handshake
/// resumed.
fn resumption_method(
    cp: &Parser,
    sp: &Parser,
    client_hello: &Hello,
    server_hello: &Hello,
    version: Version,
) -> Option<&'static str> {
    if version.major == 3 && version.minor >= 4 {
        let psk = server_hello
            .extensions
            .in_order
            .contains(&super::parser::EXT_PRE_SHARED_KEY);
        return psk.then_some("ticket");
    }
    let session_id_match =
        !client_hello.session_id.is_empty() && client_hello.session_id == server_hello.session_id;
    let ticket_offered = !client_hello.ticket_value.is_empty() && server_hello.ticket_present;
    let resumed = !cp.key_exchanged && !sp.key_exchanged && (session_id_match || ticket_offered);
    resumed.then_some(if ticket_offered { "ticket" } else { "id" })
}

/// `tls.detailed.alerts` and `alert_types`: the client's alerts, then the server's.
fn alerts(cp: &Parser, sp: &Parser) -> (Vec<Value>, Vec<String>) {
    let client = cp.alerts.iter().map(|a| (a, "client"));
    let server = sp.alerts.iter().map(|a| (a, "server"));
    client
        .chain(server)
        .map(|(a, source)| (a.to_map(source), super::algos::alert_code(a.code)))
        .unzip()
}

/// The endpoints (the destination named by the SNI), times and protocol.
fn set_common_fields(
    pb: &mut PbFields,
    tuple: Option<IpPortTuple>,
    sni: Option<&str>,
    start: Ts,
    end: Option<Ts>,
) {
    if let Some(t) = tuple {
        pb.set_source(Endpoint::new(t.src_ip, t.src_port));
        let mut dst = Endpoint::new(t.dst_ip, t.dst_port);
        dst.domain = sni.map(str::to_string);
        pb.set_destination(dst);
    }
    pb.event.start = Some(start);
    pb.event.end = end;
    pb.network.transport = Some(crate::common::Transport::Tcp);
    pb.network.protocol = "tls";
}
