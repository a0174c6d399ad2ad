//! Turning a request/response pair into Packetbeat's event (`newTransaction` in `http.go`,
//! `event.go`).
//!
//! Zero values are left out as `pb.MarshalStruct` leaves them out; the headers map always has
//! `content-length` (the parsed length, 0 without the header) because Packetbeat always puts it.

use super::config::HttpSettings;
use super::parser::Message;
use super::url;
use crate::common::Transport;
use crate::publish::json::{write_str, write_value, ObjectWriter};
use crate::publish::{Endpoint, Event, Fields, Map, PbFields};
use serde_json::Value;
use std::net::IpAddr;

/// A complete message with what `handleHTTP` attached to it.
#[derive(Debug, Clone)]
pub struct Completed {
    pub msg: Message,
    /// Sender of the message.
    pub src: (IpAddr, u16),
    /// Receiver of the message.
    pub dst: (IpAddr, u16),
    /// User of a Basic Authorization header (empty when redacted or absent).
    pub username: String,
}

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Builds the event for a transaction; either side may be missing (unmatched message).
pub fn new_transaction(
    cfg: &HttpSettings,
    mut requ: Option<Completed>,
    mut resp: Option<Completed>,
) -> Event {
    let status = note_unmatched(&mut requ, &mut resp);
    for r in [requ.as_mut(), resp.as_mut()].into_iter().flatten() {
        decode_body(cfg, &mut r.msg);
    }
    let first = requ
        .as_ref()
        .or(resp.as_ref())
        .expect("a transaction has a request or a response");
    let (ts, src, dst) = (first.msg.ts, first.src, first.dst);
    let req = requ.as_ref().map(|r| &r.msg);
    let res = resp.as_ref().map(|r| &r.msg);
    let user = requ
        .as_ref()
        .map(|r| r.username.as_str())
        .filter(|u| !u.is_empty());
    // What the request says about the URL, computed before anything is put: the fields go
    // in key order.
    let info = req.map(|m| RequestInfo::of(cfg, m, dst.1));

    let mut evt = Event::new(ts);
    put_fields(
        &mut evt.fields,
        cfg,
        req.zip(info.as_ref()),
        res,
        status,
        user,
    );

    set_common_fields(evt.pb(), src, dst, req, res, info.unwrap_or_default(), user);
    evt
}

/// The transaction's status; a missing side is noted on the other.
fn note_unmatched(requ: &mut Option<Completed>, resp: &mut Option<Completed>) -> &'static str {
    match (requ, resp) {
        (Some(r), None) => {
            r.msg.notes.push("Unmatched request".to_string());
            "Error"
        }
        (None, Some(r)) => {
            r.msg.notes.push("Unmatched response".to_string());
            "Error"
        }
        (_, Some(r)) if r.msg.status_code >= 400 => "Error",
        _ => "OK",
    }
}

/// What the request says beyond its own fields: the URL's parts (host and port from the Host
/// header), its notes (with a Host port mismatch), the forwarded address, related hosts and
/// addresses. Empty without a request.
#[derive(Default)]
struct RequestInfo {
    host: String,
    port: i64,
    path: Vec<u8>,
    params: String,
    /// `destination.domain`: the host when it is a name.
    domain: Option<String>,
    notes: Vec<String>,
    forwarded_ip: Option<String>,
    related_ips: Vec<String>,
    related_hosts: Vec<String>,
}

impl RequestInfo {
    fn of(cfg: &HttpSettings, m: &Message, dst_port: u16) -> RequestInfo {
        let (path, params) = extract_parameters(cfg, m);
        let (host, mut port) = extract_host_header(&s(&m.host));
        let mut notes = m.notes.clone();
        if port == 0 {
            port = dst_port as i64;
        } else if port != dst_port as i64 {
            notes.push("Host header port number mismatch".to_string());
        }
        let (mut related_ips, mut related_hosts, mut domain) = (Vec::new(), Vec::new(), None);
        if host.parse::<IpAddr>().is_err() {
            domain = Some(host.clone()).filter(|h| !h.is_empty());
            related_hosts.push(host.clone());
        } else {
            related_ips.push(host.clone());
        }
        related_ips.push(s(&m.real_ip));
        related_hosts.push(s(&m.referer));
        RequestInfo {
            host,
            port,
            path,
            params,
            domain,
            notes,
            forwarded_ip: (!m.real_ip.is_empty()).then(|| s(&m.real_ip)),
            related_ips,
            related_hosts,
        }
    }
}

/// The event's own fields, put in key order (see [`Fields`]).
fn put_fields(
    f: &mut Fields,
    cfg: &HttpSettings,
    request: Option<(&Message, &RequestInfo)>,
    res: Option<&Message>,
    status: &str,
    user: Option<&str>,
) {
    let req = request.map(|(m, _)| m);
    f.put_with("http", |o| write_http(o, cfg, req, res));
    if let Some((m, info)) = request {
        f.put_bytes("method", &m.method);
        let mut query = s(&m.method);
        query.push(' ');
        query.push_str(&String::from_utf8_lossy(&info.path));
        f.put_str("query", &query);
        if cfg.send_request {
            f.put_str("request", &raw_message(m));
        }
    }
    if let Some(m) = res.filter(|_| cfg.send_response) {
        f.put_str("response", &raw_message(m));
    }
    f.put_str("status", status);
    f.put_str("type", "http");
    if let Some((_, info)) = request {
        put_url(f, &info.host, info.port, &info.path, &info.params);
    }
    if let Some(u) = user {
        // Packetbeat sets the key "user.name" as is (a dotted key, not a nested map).
        f.put_literal("user.name", &Value::from(u));
    }
    if let Some(m) = req.filter(|m| !m.user_agent.is_empty()) {
        f.put_bytes("user_agent.original", &m.user_agent);
    }
}

/// The `http` object.
fn write_http(out: &mut Vec<u8>, cfg: &HttpSettings, req: Option<&Message>, res: Option<&Message>) {
    let mut w = ObjectWriter::new(out);
    if let Some(m) = req {
        w.object("request", |w| {
            write_sizes(w, m);
            write_headers(w.key("headers"), cfg, m);
            if !m.method.is_empty() {
                w.bytes("method", &m.method);
            }
            if !m.referer.is_empty() {
                w.bytes("referrer", &m.referer);
            }
        });
    }
    if let Some(m) = res {
        w.object("response", |w| {
            write_sizes(w, m);
            write_headers(w.key("headers"), cfg, m);
            if m.status_code != 0 {
                w.i64("status_code", m.status_code as i64);
            }
            if !m.status_phrase.is_empty() {
                w.str(
                    "status_phrase",
                    &String::from_utf8_lossy(&m.status_phrase).to_lowercase(),
                );
            }
        });
    }
    if let Some(m) = req {
        w.str("version", &m.version.to_string());
    }
    w.end();
}

/// The common fields: the endpoints (the destination named by the Host header), times and
/// notes, the forwarded address, and in `related` the user, hosts and addresses.
fn set_common_fields(
    pb: &mut PbFields,
    src: (IpAddr, u16),
    dst: (IpAddr, u16),
    req: Option<&Message>,
    res: Option<&Message>,
    info: RequestInfo,
    user: Option<&str>,
) {
    let mut source = Endpoint::new(src.0, src.1);
    source.bytes = req.map_or(0, |m| m.size);
    let mut destination = Endpoint::new(dst.0, dst.1);
    destination.bytes = res.map_or(0, |m| m.size);
    destination.domain = info.domain;
    if let Some(u) = user {
        pb.add_user(u);
    }
    // Each also records its address in `related.ip`.
    pb.set_source(source);
    pb.set_destination(destination);
    for ip in &info.related_ips {
        pb.add_ip(ip);
    }
    for h in &info.related_hosts {
        pb.add_host(h);
    }
    pb.network.transport = Some(Transport::Tcp);
    pb.network.protocol = "http";
    pb.network.forwarded_ip = info.forwarded_ip;
    pb.event.start = req.map(|m| m.ts);
    pb.event.end = res.map(|m| m.ts);
    if res.is_none() {
        // Every event carries `event.end`; an unanswered request's is when it was seen.
        pb.event.end = pb.event.start;
        pb.event.end_is_last_seen = true;
    }
    pb.error_messages = info.notes;
    if let Some(m) = res {
        pb.error_messages.extend(m.notes.iter().cloned());
    }
}

/// `body.bytes` (the sent body's length, else Content-Length), `body.content` and `bytes`.
fn write_sizes(w: &mut ObjectWriter, m: &Message) {
    let sent = m.send_body && !m.body.is_empty();
    let body_bytes = if sent {
        m.body.len() as i64
    } else {
        m.content_length
    };
    if body_bytes != 0 || sent {
        w.object("body", |w| {
            if body_bytes != 0 {
                w.i64("bytes", body_bytes);
            }
            if sent {
                w.bytes("content", &m.body);
            }
        });
    }
    if m.size != 0 {
        w.i64("bytes", m.size as i64);
    }
}

/// `collectHeaders` as JSON: written straight unless all headers are sent.
fn write_headers(out: &mut Vec<u8>, cfg: &HttpSettings, m: &Message) {
    if cfg.parser.send_headers {
        write_value(out, &Value::Object(collect_headers(cfg, m)));
        return;
    }
    out.extend_from_slice(b"{\"content-length\":");
    out.extend_from_slice(itoa::Buffer::new().format(m.content_length).as_bytes());
    if !m.content_type.is_empty() {
        out.extend_from_slice(b",\"content-type\":");
        write_str(out, &String::from_utf8_lossy(&m.content_type));
    }
    out.push(b'}');
}

/// `makeRawMessage`: the headers as received (authorization masked when redacted), plus the
/// body when it is sent.
fn raw_message(m: &Message) -> String {
    if m.send_body {
        let mut b = m.raw_headers.clone();
        b.extend_from_slice(&m.body);
        s(&b)
    } else {
        s(&m.raw_headers)
    }
}

/// `collectHeaders`.
fn collect_headers(cfg: &HttpSettings, m: &Message) -> Map {
    let mut hdrs = Map::new();
    hdrs.insert("content-length".to_string(), Value::from(m.content_length));
    if !m.content_type.is_empty() {
        hdrs.insert("content-type".to_string(), Value::from(s(&m.content_type)));
    }
    if cfg.parser.send_headers {
        let cookie = if m.is_request { "cookie" } else { "set-cookie" };
        for (name, value) in &m.headers {
            if name == "content-length" || name == "content-type" {
                continue;
            }
            if cfg.split_cookie && name == cookie {
                hdrs.insert(name.clone(), Value::Object(split_cookies_header(&s(value))));
            } else {
                hdrs.insert(name.clone(), Value::from(s(value)));
            }
        }
    }
    hdrs
}

fn split_cookies_header(v: &str) -> Map {
    let mut cookies = Map::new();
    for c in v.split(';') {
        if let Some((k, val)) = c.split_once('=') {
            let mut val = val.trim();
            if val.len() > 1 && val.starts_with('"') && val.ends_with('"') {
                val = &val[1..val.len() - 1];
            }
            cookies.insert(k.trim().to_lowercase(), Value::from(val));
        }
    }
    cookies
}

/// `url.*` as `newURL` fills an `ecs.Url` (empty values left out), in key order.
fn put_url(f: &mut Fields, host: &str, port: i64, path: &[u8], query: &str) {
    f.put_with("url", |o| {
        let mut w = ObjectWriter::new(o);
        if !host.is_empty() {
            w.str("domain", host);
        }
        if let Some(i) = path.iter().rposition(|&b| b == b'.') {
            if i + 1 < path.len() {
                w.bytes("extension", &path[i + 1..]);
            }
        }
        // synthesizeFullURL
        if !host.is_empty() && port > 0 {
            let h = if port != 80 {
                url::join_host_port(host, &port.to_string())
            } else if host.contains(':') {
                format!("[{host}]")
            } else {
                host.to_string()
            };
            w.str("full", &url::build("http", &h, path, query));
        }
        if !path.is_empty() {
            w.bytes("path", path);
        }
        if port != 80 && port != 0 {
            w.i64("port", port);
        }
        if !query.is_empty() {
            w.str("query", query);
        }
        w.str("scheme", "http");
        w.end();
    });
}

/// `extractHostHeader`: host and port of the Host header; port 0 when absent or unusable.
pub fn extract_host_header(header: &str) -> (String, i64) {
    if header.is_empty() || header.parse::<IpAddr>().is_ok() {
        return (header.to_string(), 0);
    }
    match url::split_host_port(header) {
        Err(true) => (trim_square_bracket(header).to_string(), 0),
        Err(false) => (header.to_string(), 0),
        Ok((host, ps)) => match parse_go_int16(ps) {
            Some(p) if p != 0 => (trim_square_bracket(host).to_string(), p),
            _ => (header.to_string(), 0),
        },
    }
}

/// `strconv.ParseInt(s, 10, 16)`: signed 16 bits, so ports above 32767 are rejected.
fn parse_go_int16(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: i64 = s.trim_start_matches('+').parse().ok()?;
    (i16::MIN as i64..=i16::MAX as i64)
        .contains(&v)
        .then_some(v)
}

fn trim_square_bracket(s: &str) -> &str {
    match s.strip_prefix('[') {
        Some(rest) => rest.strip_suffix(']').unwrap_or(rest),
        None => s,
    }
}

/// `extractParameters`: the unescaped path and the query parameters (plus those of a saved
/// url-encoded body), re-encoded sorted with `hide_keywords` values replaced by `xxxxx`.
pub fn extract_parameters(cfg: &HttpSettings, m: &Message) -> (Vec<u8>, String) {
    let uri = String::from_utf8_lossy(&m.request_uri);
    let Some(u) = url::parse(&uri) else {
        return (Vec::new(), String::new());
    };
    let (values, _) = url::parse_query(&u.raw_query);
    let mut params = hide_secrets(cfg, &values);
    if m.content_length > 0
        && m.save_body
        && super::parser::find(&m.content_type, b"urlencoded").is_some()
    {
        let (body_values, bad) = url::parse_query(&String::from_utf8_lossy(&m.body));
        if bad {
            return (u.path, String::new());
        }
        for (k, vs) in hide_secrets(cfg, &body_values).0 {
            params.set_all(&k, vs);
        }
    }
    (u.path, params.encode())
}

fn hide_secrets(cfg: &HttpSettings, values: &url::Values) -> url::Values {
    let mut out = url::Values::default();
    for (k, vs) in &values.0 {
        let lower = String::from_utf8_lossy(k).to_lowercase();
        let secret = cfg.hide_keywords.iter().any(|kw| *kw == lower);
        for v in vs {
            out.add(k, if secret { b"xxxxx".to_vec() } else { v.clone() });
        }
    }
    out
}

/// `decodeBody`: undo the content codings of a kept body when `decode_body` is on. A failure
/// is noted on the message; the body is kept only if the last decoder failed.
fn decode_body(cfg: &HttpSettings, m: &mut Message) {
    if !(m.save_body && !m.body.is_empty() && cfg.decode_body && !m.encodings.is_empty()) {
        return;
    }
    let mut body = std::mem::take(&mut m.body);
    for idx in (0..m.encodings.len()).rev() {
        let format = m.encodings[idx].clone();
        match super::decode::decode_http_body(&body, &format, cfg.max_message_size) {
            Ok(b) => body = b,
            Err((partial, err)) => {
                body = if idx != 0 { Vec::new() } else { partial };
                m.notes.push(format!(
                    "unable to decode body using {format} encoding: {err}"
                ));
                break;
            }
        }
    }
    m.body = body;
}
