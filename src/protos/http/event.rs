//! Turning a request/response pair into Packetbeat's event (`newTransaction` in `http.go`,
//! `event.go`).
//!
//! Zero values are left out as `pb.MarshalStruct` leaves them out; the headers map always has
//! `content-length` (the parsed length, 0 without the header) because Packetbeat always puts it.

use super::config::HttpSettings;
use super::parser::Message;
use super::url;
use crate::common::{Transport, Ts};
use crate::publish::json::{write_str, write_value, ObjectWriter};
use crate::publish::{Endpoint, Event, Fields, Map};
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
    requ: Option<Completed>,
    resp: Option<Completed>,
) -> Event {
    let mut requ = requ;
    let mut resp = resp;
    let mut status = "OK";
    match (&mut requ, &mut resp) {
        (Some(r), None) => {
            status = "Error";
            r.msg.notes.push("Unmatched request".to_string());
        }
        (None, Some(r)) => {
            status = "Error";
            r.msg.notes.push("Unmatched response".to_string());
        }
        (_, Some(r)) if r.msg.status_code >= 400 => status = "Error",
        _ => {}
    }

    let first = requ
        .as_ref()
        .or(resp.as_ref())
        .expect("a transaction has a request or a response");
    let (ts, src, dst) = (first.msg.ts, first.src, first.dst);

    let mut evt = Event::new(ts);
    let mut source = Endpoint::new(src.0, src.1);
    let mut destination = Endpoint::new(dst.0, dst.1);
    let mut related_ips: Vec<String> = Vec::new();
    let mut related_hosts: Vec<String> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    let mut forwarded_ip = None;
    let mut start: Option<Ts> = None;
    let mut end: Option<Ts> = None;

    if let Some(r) = requ.as_mut() {
        decode_body(cfg, &mut r.msg);
    }
    if let Some(r) = resp.as_mut() {
        decode_body(cfg, &mut r.msg);
    }
    // What the request says about the URL, computed before anything is put: the fields go
    // in key order.
    let mut url_parts = None;
    if let Some(r) = requ.as_ref() {
        let m = &r.msg;
        let (path, params) = extract_parameters(cfg, m);
        source.bytes = m.size;
        let host_header = s(&m.host);
        let (host, mut port) = extract_host_header(&host_header);
        if host.parse::<IpAddr>().is_err() {
            destination.domain = Some(host.clone()).filter(|h| !h.is_empty());
            related_hosts.push(host.clone());
        } else {
            related_ips.push(host.clone());
        }
        let mut notes = m.notes.clone();
        if port == 0 {
            port = dst.1 as i64;
        } else if port != dst.1 as i64 {
            notes.push("Host header port number mismatch".to_string());
        }
        start = Some(m.ts);
        if !m.real_ip.is_empty() {
            forwarded_ip = Some(s(&m.real_ip));
        }
        related_ips.push(s(&m.real_ip));
        errors = notes;
        related_hosts.push(s(&m.referer));
        url_parts = Some((host, port, path, params));
    }
    if let Some(r) = resp.as_ref() {
        let m = &r.msg;
        destination.bytes = m.size;
        end = Some(m.ts);
        errors.extend(m.notes.iter().cloned());
    }

    let req = requ.as_ref().map(|r| &r.msg);
    let res = resp.as_ref().map(|r| &r.msg);
    let f = &mut evt.fields;
    f.put_with("http", |o| {
        let mut w = ObjectWriter::new(o);
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
    });
    if let Some(m) = req {
        f.put_bytes("method", &m.method);
        let (_, _, path, _) = url_parts.as_ref().expect("set with the request");
        let mut query = s(&m.method);
        query.push(' ');
        query.push_str(&String::from_utf8_lossy(path));
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
    if let Some((host, port, path, params)) = &url_parts {
        put_url(f, host, *port, path, params);
    }
    let user = requ.as_ref().map(|r| r.username.as_str()).filter(|u| !u.is_empty());
    if let Some(u) = user {
        // Packetbeat sets the key "user.name" as is (a dotted key, not a nested map).
        f.put_literal("user.name", &Value::from(u));
    }
    if let Some(m) = req.filter(|m| !m.user_agent.is_empty()) {
        f.put_bytes("user_agent.original", &m.user_agent);
    }
    if let Some(u) = user {
        evt.pb().add_user(u);
    }

    let pb = evt.pb();
    let (sip, dip) = (
        crate::publish::event::ip_string(&source.ip),
        crate::publish::event::ip_string(&destination.ip),
    );
    pb.set_source(source);
    pb.set_destination(destination);
    pb.add_ip(&sip);
    pb.add_ip(&dip);
    for ip in &related_ips {
        pb.add_ip(ip);
    }
    for h in &related_hosts {
        pb.add_host(h);
    }
    pb.network.transport = Some(Transport::Tcp);
    pb.network.protocol = "http";
    pb.network.forwarded_ip = forwarded_ip;
    pb.event.start = start;
    pb.event.end = end;
    pb.error_messages = errors;
    evt
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
