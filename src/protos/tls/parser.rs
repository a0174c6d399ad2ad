//! TLS record and handshake parsing for one direction of a connection (Packetbeat's
//! `parse.go`, `extensions.go`, `alerts.go`). Pure functions over byte slices: the stream
//! buffer is passed in, nothing here allocates beyond what a message needs, and malformed
//! input ends in [`ParseResult::Failed`], never a panic.

use super::algos::{self, is_grease};
use super::x509::{self, Certificate};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

pub const MAX_TLS_RECORD_LENGTH: usize = (1 << 14) + 2048;
pub const MAX_HANDSHAKE_SIZE: usize = 1 << 16;
const RECORD_HEADER_SIZE: usize = 5;
const HANDSHAKE_HEADER_SIZE: usize = 4;
const RANDOM_DATA_LENGTH: usize = 28;

pub const EXT_SUPPORTED_GROUPS: u16 = 10;
pub const EXT_EC_POINTS_FORMATS: u16 = 11;
pub const EXT_SUPPORTED_VERSIONS: u16 = 43;
pub const EXT_PRE_SHARED_KEY: u16 = 41;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseResult {
    Ok,
    Failed,
    More,
    Encrypted,
}

/// Which end a stream was found to be, from the messages it sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    #[default]
    Unknown,
    Client,
    Server,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alert {
    pub severity: u8,
    pub code: u8,
}

impl Alert {
    pub fn to_map(&self, source: &str) -> Value {
        json!({
            "severity": algos::alert_severity(self.severity),
            "code": self.code,
            "type": algos::alert_code(self.code),
            "source": source,
        })
    }
}

/// TLS protocol version (major, minor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Version {
    pub major: u8,
    pub minor: u8,
}

impl Version {
    pub fn is_zero(&self) -> bool {
        self.major == 0 && self.minor == 0
    }

    /// `tlsVersion.String()`.
    pub fn name(&self) -> String {
        if self.major == 3 {
            if self.minor > 0 {
                return format!("TLS 1.{}", self.minor - 1);
            }
            return "SSL 3.0".into();
        }
        format!("(raw {}.{})", self.major, self.minor)
    }

    /// `GetProtocolVersion`: (protocol, version).
    pub fn protocol_version(&self) -> (String, String) {
        if self.major == 3 {
            if self.minor == 0 {
                return ("ssl".into(), "3.0".into());
            }
            return ("tls".into(), format!("1.{}", self.minor - 1));
        }
        ("unknown".into(), format!("{}.{}", self.major, self.minor))
    }
}

/// Parsed hello extensions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extensions {
    /// `None` when the hello has no extension block.
    pub parsed: Option<Map<String, Value>>,
    pub raw: HashMap<u16, Vec<u8>>,
    /// Extension ids in order, GREASE left out (for JA3).
    pub in_order: Vec<u16>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hello {
    pub version: Version,
    pub random: Vec<u8>,
    /// Hex.
    pub session_id: String,
    pub ticket_present: bool,
    pub ticket_value: String,
    pub cipher_suites: Vec<u16>,
    pub compression: Vec<u8>,
    pub selected_cipher: u16,
    pub selected_compression: u8,
    pub extensions: Extensions,
}

impl Hello {
    /// `helloMessage.toMap` as JSON, written straight (keys in order, the parsed extensions
    /// borrowed rather than copied).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        let mut w = crate::publish::json::ObjectWriter::new(out);
        if let Some(p) = &self.extensions.parsed {
            crate::publish::json::write_map(w.key("extensions"), p);
        }
        if !self.random.is_empty() {
            w.str("random", &x509::hex(&self.random));
        }
        if self.compression.is_empty() {
            w.str(
                "selected_compression_method",
                &algos::compression_method(self.selected_compression),
            );
        }
        if !self.session_id.is_empty() {
            w.str("session_id", &self.session_id);
        }
        if !self.compression.is_empty() {
            w.strs(
                "supported_compression_methods",
                self.compression
                    .iter()
                    .map(|&c| algos::compression_method(c)),
            );
        }
        w.str(
            "version",
            &format!("{}.{}", self.version.major, self.version.minor),
        );
        w.end();
    }

    pub fn supported_ciphers(&self) -> Vec<String> {
        self.cipher_suites
            .iter()
            .map(|&c| algos::cipher_suite(c))
            .collect()
    }
}

/// The state of one direction (`parser` in `parse.go`).
#[derive(Debug, Clone, Default)]
pub struct Parser {
    handshake_buf: Vec<u8>,
    pub direction: Direction,
    pub alerts: Vec<Alert>,
    pub certificates: Vec<Certificate>,
    pub hello: Option<Hello>,
    /// This end (the server) asked the other for a certificate.
    pub cert_requested: bool,
    /// Top-level OCSP response status from a CertificateStatus message.
    pub ocsp_response: Option<u8>,
    /// A key exchange message was sent (no session resumption).
    pub key_exchanged: bool,
}

fn u8_at(b: &[u8], i: usize) -> Option<u8> {
    b.get(i).copied()
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(i)?, *b.get(i.checked_add(1)?)?]))
}

fn u24_at(b: &[u8], i: usize) -> Option<usize> {
    Some(((*b.get(i)? as usize) << 16) | u16_at(b, i + 1)? as usize)
}

fn bytes_at(b: &[u8], i: usize, n: usize) -> Option<&[u8]> {
    b.get(i..i.checked_add(n)?)
}

/// An extension's declared length runs past its message (Packetbeat's `bufferViewError`).
#[derive(Debug)]
pub struct ViewError;

impl Parser {
    pub fn new() -> Parser {
        Parser::default()
    }

    /// `parser.hasInfo`.
    pub fn has_info(&self) -> bool {
        self.hello.is_some() || !self.alerts.is_empty() || !self.certificates.is_empty()
    }

    /// Parses the complete records at the front of `buf`, removing what it consumed.
    pub fn parse(&mut self, buf: &mut Vec<u8>) -> ParseResult {
        let (result, used) = self.parse_records(buf);
        buf.drain(..used);
        result
    }

    /// Parses the complete records at the front of `data`; returns the outcome and how many
    /// bytes were consumed (all of them once the stream turns encrypted).
    pub fn parse_records(&mut self, data: &[u8]) -> (ParseResult, usize) {
        let mut off = 0;
        while data.len() - off >= RECORD_HEADER_SIZE {
            let rec = &data[off..];
            let typ = rec[0];
            let major = rec[1];
            let length = u16::from_be_bytes([rec[3], rec[4]]) as usize;
            if major != 3 || length > MAX_TLS_RECORD_LENGTH {
                return (ParseResult::Failed, 0);
            }
            let limit = RECORD_HEADER_SIZE + length;
            if rec.len() < limit {
                return (ParseResult::More, off);
            }
            let body = &rec[RECORD_HEADER_SIZE..limit];
            match typ {
                // ChangeCipherSpec: what follows is encrypted.
                20 => return (ParseResult::Encrypted, data.len()),
                22 if self.buffer_handshake(body).is_err() => return (ParseResult::Failed, 0),
                // A 2-byte alert is in the clear; longer ones are encrypted.
                21 if body.len() == 2 => self.alerts.push(Alert {
                    severity: body[0],
                    code: body[1],
                }),
                _ => {} // application data and unknown types are skipped
            }
            off += limit;
        }
        let result = if off == data.len() {
            ParseResult::Ok
        } else {
            ParseResult::More
        };
        (result, off)
    }

    /// `bufferHandshake`: handshake messages may span records and records may hold several.
    fn buffer_handshake(&mut self, data: &[u8]) -> Result<(), ()> {
        self.handshake_buf.extend_from_slice(data);
        let mut off = 0;
        let result = loop {
            let hb = &self.handshake_buf[off..];
            if hb.len() < HANDSHAKE_HEADER_SIZE {
                break Ok(());
            }
            let typ = hb[0];
            let length = u24_at(hb, 1).unwrap_or(0);
            if length > MAX_HANDSHAKE_SIZE {
                self.handshake_buf.clear();
                return Err(());
            }
            let limit = HANDSHAKE_HEADER_SIZE + length;
            if limit > hb.len() {
                break Ok(());
            }
            let msg = hb[HANDSHAKE_HEADER_SIZE..limit].to_vec();
            off += limit;
            match self.parse_handshake(typ, &msg) {
                Ok(true) => {}
                Ok(false) | Err(ViewError) => break Err(()),
            }
        };
        self.handshake_buf.drain(..off);
        result
    }

    fn set_direction(&mut self, dir: Direction) {
        if self.direction != dir && self.direction != Direction::Unknown {
            tracing::debug!("tls: client/server identification mismatch");
        }
        self.direction = dir;
    }

    fn parse_handshake(&mut self, typ: u8, msg: &[u8]) -> Result<bool, ViewError> {
        match typ {
            0 => self.set_direction(Direction::Server),
            1 => {
                self.set_direction(Direction::Client);
                self.hello = parse_client_hello(msg)?;
                return Ok(self.hello.is_some());
            }
            2 => {
                self.set_direction(Direction::Server);
                self.hello = parse_server_hello(msg)?;
                return Ok(self.hello.is_some());
            }
            11 => self.certificates.extend(parse_certificates(msg)),
            13 => {
                self.set_direction(Direction::Server);
                self.cert_requested = true;
            }
            16 => {
                self.set_direction(Direction::Client);
                self.key_exchanged = true;
            }
            12 => {
                self.set_direction(Direction::Server);
                self.key_exchanged = true;
            }
            22 => {
                // CertificateStatus: type 1 (OCSP), then the response's status byte.
                self.ocsp_response = match (u8_at(msg, 0), u8_at(msg, 10)) {
                    (Some(1), Some(status)) => Some(status),
                    _ => None,
                };
            }
            _ => {}
        }
        Ok(true)
    }
}

/// `ocspResponseStatus.String()`.
pub fn ocsp_status_name(s: u8) -> String {
    match s {
        0 => "successful".into(),
        1 => "malformedRequest".into(),
        2 => "internalError".into(),
        3 => "tryLater".into(),
        5 => "sigRequired".into(),
        6 => "unauthorized".into(),
        _ => s.to_string(),
    }
}

/// Version, random and session id; returns the offset after them.
fn parse_common_hello(b: &[u8], h: &mut Hello) -> Option<usize> {
    h.version.major = u8_at(b, 0)?;
    h.version.minor = u8_at(b, 1)?;
    let _timestamp = bytes_at(b, 2, 4)?;
    let sid_len = u8_at(b, 6 + RANDOM_DATA_LENGTH)? as usize;
    if h.version.major != 3 || sid_len > 32 {
        return None;
    }
    let sid = bytes_at(b, 7 + RANDOM_DATA_LENGTH, sid_len)?;
    h.session_id = x509::hex(sid);
    h.random = bytes_at(b, 2, 4 + RANDOM_DATA_LENGTH)?.to_vec();
    Some(7 + RANDOM_DATA_LENGTH + sid_len)
}

fn with_extensions(mut h: Hello, ext: &[u8]) -> Result<Option<Hello>, ViewError> {
    h.extensions = parse_extensions(ext)?;
    if let Some(Value::String(t)) = h
        .extensions
        .parsed
        .as_ref()
        .and_then(|p| p.get("session_ticket"))
    {
        h.ticket_present = true;
        h.ticket_value = t.clone();
    }
    Ok(Some(h))
}

pub fn parse_client_hello(b: &[u8]) -> Result<Option<Hello>, ViewError> {
    let mut h = Hello::default();
    let Some(pos) = parse_common_hello(b, &mut h) else {
        return Ok(None);
    };
    let Some(cs_len) = u16_at(b, pos) else {
        return Ok(None);
    };
    let cs_len = cs_len as usize;
    let mut base = pos + 2;
    while base < pos + 2 + cs_len {
        let Some(c) = u16_at(b, base) else {
            return Ok(None);
        };
        if !is_grease(c) {
            h.cipher_suites.push(c);
        }
        base += 2;
    }
    let pos = pos + 2 + cs_len;
    let Some(cm_len) = u8_at(b, pos) else {
        return Ok(None);
    };
    let limit = pos + 1 + cm_len as usize;
    for i in pos + 1..limit {
        let Some(m) = u8_at(b, i) else {
            return Ok(None);
        };
        h.compression.push(m);
    }
    with_extensions(h, b.get(limit..).unwrap_or(&[]))
}

pub fn parse_server_hello(b: &[u8]) -> Result<Option<Hello>, ViewError> {
    let mut h = Hello::default();
    let Some(pos) = parse_common_hello(b, &mut h) else {
        return Ok(None);
    };
    let (Some(cipher), Some(comp)) = (u16_at(b, pos), u8_at(b, pos + 2)) else {
        return Ok(None);
    };
    h.selected_cipher = cipher;
    h.selected_compression = comp;
    with_extensions(h, b.get(pos + 3..).unwrap_or(&[]))
}

/// A Certificate message: every certificate, or none if any of them is malformed.
pub fn parse_certificates(b: &[u8]) -> Vec<Certificate> {
    let Some(total) = u24_at(b, 0) else {
        return Vec::new();
    };
    if total + 3 != b.len() {
        return Vec::new();
    }
    let mut certs = Vec::new();
    let (mut pos, limit) = (3usize, total + 3);
    while pos + 3 <= limit {
        let Some(len) = u24_at(b, pos) else {
            return Vec::new();
        };
        if pos + 3 + len > limit {
            return Vec::new();
        }
        let Some(c) = x509::parse_certificate(&b[pos + 3..pos + 3 + len]) else {
            return Vec::new();
        };
        certs.push(c);
        pos += 3 + len;
    }
    certs
}

/// `ParseExtensions`.
pub fn parse_extensions(b: &[u8]) -> Result<Extensions, ViewError> {
    let ext_len = match u16_at(b, 0) {
        Some(0) | None => return Ok(Extensions::default()),
        Some(n) => n as usize,
    };
    let limit = 2 + ext_len;
    let mut result = Extensions {
        parsed: Some(Map::new()),
        ..Default::default()
    };
    let mut unknown: Vec<String> = Vec::new();
    let mut base = 2;
    while base < limit {
        let (Some(code), Some(length)) = (u16_at(b, base), u16_at(b, base + 2)) else {
            return Ok(Extensions::default());
        };
        let Some(ext) = bytes_at(b, base + 4, length as usize) else {
            return Err(ViewError);
        };
        base += 4 + length as usize;
        if is_grease(code) {
            continue;
        }
        result.in_order.push(code);
        let (label, parsed, save_raw) = parse_extension(code, ext);
        match parsed {
            Ext::Value(v) => {
                if let Some(p) = result.parsed.as_mut() {
                    p.insert(label, v);
                }
            }
            Ext::Nil => {}
            Ext::Unparsed => unknown.push(label),
        }
        if save_raw {
            result.raw.insert(code, ext.to_vec());
        }
    }
    if !unknown.is_empty() {
        if let Some(p) = result.parsed.as_mut() {
            p.insert("_unparsed_".into(), json!(unknown));
        }
    }
    Ok(result)
}

/// What an extension parser returns: a value, an empty (typed nil) list that serialises to
/// null and is dropped, or nothing (the extension goes to `_unparsed_`).
enum Ext {
    Value(Value),
    Nil,
    Unparsed,
}

fn list(v: Vec<String>) -> Ext {
    if v.is_empty() {
        Ext::Nil
    } else {
        Ext::Value(json!(v))
    }
}

fn parse_extension(code: u16, b: &[u8]) -> (String, Ext, bool) {
    let (label, parsed, raw) = match code {
        0 => ("server_name_indication", parse_sni(b), false),
        1 => ("max_fragment_length", parse_max_fragment_len(b), false),
        2 => ("client_certificate_url", expect_empty(b), false),
        3 => ("trusted_ca_keys", Ext::Unparsed, false),
        4 => ("truncated_hmac", expect_empty(b), false),
        5 => ("status_request", parse_status_req(b), false),
        6 => ("user_mapping", Ext::Unparsed, false),
        7 => ("client_authz", Ext::Unparsed, false),
        8 => ("server_authz", Ext::Unparsed, false),
        9 => ("cert_type", parse_cert_type(b), false),
        10 => ("supported_groups", parse_supported_groups(b), true),
        11 => ("ec_points_formats", parse_ec_points(b), true),
        12 => ("srp", parse_srp(b), false),
        13 => ("signature_algorithms", parse_signature_schemes(b), false),
        16 => (
            "application_layer_protocol_negotiation",
            parse_alpn(b),
            false,
        ),
        35 => ("session_ticket", parse_ticket(b), false),
        43 => ("supported_versions", parse_supported_versions(b), true),
        0xff01 => ("renegotiation_info", Ext::Unparsed, false),
        _ => return (code.to_string(), Ext::Unparsed, false),
    };
    (label.to_string(), parsed, raw)
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn parse_sni(b: &[u8]) -> Ext {
    let Some(list_len) = u16_at(b, 0) else {
        return Ext::Unparsed;
    };
    let mut hosts = Vec::new();
    let (mut pos, limit) = (2usize, 2 + list_len as usize);
    while pos + 3 <= limit {
        let (Some(typ), Some(n)) = (u8_at(b, pos), u16_at(b, pos + 1)) else {
            break;
        };
        let n = n as usize;
        if limit < pos + 3 + n {
            break;
        }
        let Some(host) = bytes_at(b, pos + 3, n) else {
            break;
        };
        if typ == 0 {
            hosts.push(lossy(host));
        }
        pos += 3 + n;
    }
    list(hosts)
}

fn parse_max_fragment_len(b: &[u8]) -> Ext {
    if b.len() == 1 {
        let v = b[0];
        return Ext::Value(json!(if v > 0 && v < 5 {
            format!("2^{}", 8 + v as u32)
        } else {
            format!("(unknown:{v})")
        }));
    }
    Ext::Unparsed
}

fn expect_empty(b: &[u8]) -> Ext {
    if !b.is_empty() {
        return Ext::Value(json!(format!("(expected empty: found {} bytes)", b.len())));
    }
    Ext::Value(json!(""))
}

fn parse_status_req(b: &[u8]) -> Ext {
    if b.is_empty() {
        return Ext::Value(json!({"response": true}));
    }
    // Packetbeat reads both lengths at offset 1.
    let (Some(code), Some(list), Some(exts)) = (u8_at(b, 0), u16_at(b, 1), u16_at(b, 1)) else {
        return Ext::Unparsed;
    };
    let typ = if code == 1 {
        "ocsp".to_string()
    } else {
        code.to_string()
    };
    Ext::Value(json!({
        "type": typ,
        "responder_id_list_length": list,
        "request_extensions": exts,
    }))
}

fn parse_cert_type(b: &[u8]) -> Ext {
    let (mut pos, mut limit) = (0usize, b.len());
    if limit > 1 {
        let v = b[0] as usize;
        pos = 1;
        if v + 1 < limit {
            limit = 1 + v;
        }
    }
    let mut types = Vec::new();
    while pos < limit {
        let Some(v) = u8_at(b, pos) else { break };
        types.push(match v {
            0 => "X.509".to_string(),
            1 => "OpenPGP".to_string(),
            2 => "RawPubKey".to_string(),
            _ => format!("(unknown:{v})"),
        });
        pos += 1;
    }
    list(types)
}

fn parse_supported_groups(b: &[u8]) -> Ext {
    match u16_at(b, 0) {
        Some(n) if n as usize + 2 == b.len() => {}
        _ => return Ext::Unparsed,
    }
    let mut groups = Vec::new();
    let mut pos = 2;
    while let Some(v) = u16_at(b, pos) {
        if !is_grease(v) {
            groups.push(algos::supported_group(v));
        }
        pos += 2;
    }
    list(groups)
}

fn parse_ec_points(b: &[u8]) -> Ext {
    let n = match u8_at(b, 0) {
        Some(n) if n as usize + 1 == b.len() => n as usize,
        _ => return Ext::Unparsed,
    };
    list(
        b[1..1 + n]
            .iter()
            .map(|&v| algos::ec_points_format(v))
            .collect(),
    )
}

fn parse_srp(b: &[u8]) -> Ext {
    match u8_at(b, 0) {
        Some(n) if (n as usize) < b.len() => Ext::Value(json!(lossy(&b[1..1 + n as usize]))),
        _ => Ext::Unparsed,
    }
}

fn parse_signature_schemes(b: &[u8]) -> Ext {
    match u16_at(b, 0) {
        Some(n) if n as usize + 2 == b.len() => {}
        _ => return Ext::Unparsed,
    }
    let mut out = Vec::new();
    let mut pos = 2;
    while let Some(v) = u16_at(b, pos) {
        out.push(algos::signature_scheme(v));
        pos += 2;
    }
    list(out)
}

fn parse_ticket(b: &[u8]) -> Ext {
    if !b.is_empty() {
        return Ext::Value(json!(format!("({} bytes)", b.len())));
    }
    Ext::Value(json!(""))
}

fn parse_alpn(b: &[u8]) -> Ext {
    match u16_at(b, 0) {
        Some(n) if n as usize + 2 == b.len() => {}
        _ => return Ext::Unparsed,
    }
    let mut protos = Vec::new();
    let mut pos = 2;
    while let Some(n) = u8_at(b, pos) {
        let Some(p) = bytes_at(b, pos + 1, n as usize) else {
            return Ext::Unparsed;
        };
        protos.push(lossy(p));
        pos += 1 + n as usize;
    }
    list(protos)
}

fn parse_supported_versions(b: &[u8]) -> Ext {
    if b.len() == 2 {
        return Ext::Value(json!(Version {
            major: b[0],
            minor: b[1]
        }
        .name()));
    }
    if b.len() >= 3 {
        let n = b[0] as usize;
        if 1 + n > b.len() || n & 1 != 0 || n / 2 == 0 {
            return Ext::Unparsed;
        }
        let mut out = Vec::new();
        for i in 0..n / 2 {
            let Some(v) = u16_at(b, 1 + 2 * i) else {
                return Ext::Unparsed;
            };
            if !is_grease(v) {
                out.push(
                    Version {
                        major: (v >> 8) as u8,
                        minor: v as u8,
                    }
                    .name(),
                );
            }
        }
        // An all-GREASE list is an empty (not nil) list in Packetbeat.
        return Ext::Value(json!(out));
    }
    Ext::Unparsed
}

/// JA3 fingerprint of a client hello: (md5 hex, the JA3 string).
pub fn ja3(h: &Hello) -> (String, String) {
    use md5::{Digest, Md5};
    // Numbers joined with '-' (itoa: this runs for every client hello).
    let join = |v: &[u16]| {
        let mut out = String::with_capacity(v.len() * 6);
        let mut buf = itoa::Buffer::new();
        for (i, n) in v.iter().enumerate() {
            if i > 0 {
                out.push('-');
            }
            out.push_str(buf.format(*n));
        }
        out
    };
    let version = (h.version.major as u16) * 256 + h.version.minor as u16;
    let ciphers: Vec<u16> = h
        .cipher_suites
        .iter()
        .copied()
        .filter(|&c| !is_grease(c))
        .collect();
    let empty = Vec::new();
    let groups = ja3_array(
        h.extensions
            .raw
            .get(&EXT_SUPPORTED_GROUPS)
            .unwrap_or(&empty),
        2,
    );
    let points = ja3_array(
        h.extensions
            .raw
            .get(&EXT_EC_POINTS_FORMATS)
            .unwrap_or(&empty),
        1,
    );
    let s = [
        version.to_string(),
        join(&ciphers),
        join(&h.extensions.in_order),
        join(&groups),
        join(&points),
    ]
    .join(",");
    let sum = Md5::digest(s.as_bytes());
    (x509::hex(&sum), s)
}

/// `extractJa3Array`: values after a 1- or 2-byte length, GREASE left out. Stops at the end of
/// the data where Packetbeat would index past it.
fn ja3_array(raw: &[u8], size: usize) -> Vec<u16> {
    if raw.len() < size {
        return Vec::new();
    }
    let mut limit = raw[0] as usize;
    if size == 2 {
        limit = limit * 256 + raw[1] as usize;
    }
    limit = limit.min(raw.len());
    let mut out = Vec::new();
    let mut pos = size;
    while pos <= limit {
        let v = if size == 2 {
            match u16_at(raw, pos) {
                Some(v) => v,
                None => break,
            }
        } else {
            match raw.get(pos) {
                Some(&v) => v as u16,
                None => break,
            }
        };
        if !is_grease(v) {
            out.push(v);
        }
        pos += size;
    }
    out
}
