//! Turning a request/response pair into Packetbeat's event (`newTransaction` in `http.go`,
//! `event.go`).
//!
//! Zero values are left out as `pb.MarshalStruct` leaves them out; the headers map always has
//! `content-length` (the parsed length, 0 without the header) because Packetbeat always puts it.

use super::config::HttpSettings;
use super::parser::Message;
use super::url;
use crate::common::{Transport, Ts};
use crate::publish::{Endpoint, Event, Map, MapExt};
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
    let mut user = None;
    let mut http = Map::new();

    evt.put("type", "http");
    evt.put("status", status);

    if let Some(r) = requ.as_mut() {
        decode_body(cfg, &mut r.msg);
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

        http.put("version", Value::from(m.version.to_string()));
        put_nonzero(&mut http, "request.bytes", m.size as i64);
        let mut body_bytes = m.content_length;
        if !m.method.is_empty() {
            http.put("request.method", Value::from(s(&m.method)));
        }
        if !m.referer.is_empty() {
            http.put("request.referrer", Value::from(s(&m.referer)));
        }
        related_hosts.push(s(&m.referer));
        if m.send_body && !m.body.is_empty() {
            body_bytes = m.body.len() as i64;
            http.put("request.body.content", Value::from(s(&m.body)));
        }
        put_nonzero(&mut http, "request.body.bytes", body_bytes);
        http.put("request.headers", Value::Object(collect_headers(cfg, m)));

        put_url(&mut evt, &host, port, &path, &params);
        if !m.user_agent.is_empty() {
            evt.put("user_agent.original", s(&m.user_agent));
        }
        if cfg.send_request {
            evt.put("request", raw_message(m));
        }
        evt.put("method", s(&m.method));
        let mut query = s(&m.method);
        query.push(' ');
        query.push_str(&String::from_utf8_lossy(&path));
        evt.put("query", query);
        if !r.username.is_empty() {
            user = Some(r.username.clone());
        }
    }

    if let Some(r) = resp.as_mut() {
        decode_body(cfg, &mut r.msg);
        let m = &r.msg;
        destination.bytes = m.size;
        end = Some(m.ts);
        errors.extend(m.notes.iter().cloned());

        put_nonzero(&mut http, "response.status_code", m.status_code as i64);
        if !m.status_phrase.is_empty() {
            http.put(
                "response.status_phrase",
                Value::from(s(&m.status_phrase).to_lowercase()),
            );
        }
        put_nonzero(&mut http, "response.bytes", m.size as i64);
        let mut body_bytes = m.content_length;
        if m.send_body && !m.body.is_empty() {
            body_bytes = m.body.len() as i64;
            http.put("response.body.content", Value::from(s(&m.body)));
        }
        put_nonzero(&mut http, "response.body.bytes", body_bytes);
        http.put("response.headers", Value::Object(collect_headers(cfg, m)));
        if cfg.send_response {
            evt.put("response", raw_message(m));
        }
    }

    if !http.is_empty() {
        evt.put("http", Value::Object(http));
    }
    if let Some(u) = user {
        // Packetbeat sets the key "user.name" as is (a dotted key, not a nested map).
        evt.fields.put_literal("user.name", &Value::from(u.as_str()));
        evt.pb().add_user(&u);
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

fn put_nonzero(m: &mut Map, key: &str, v: i64) {
    if v != 0 {
        m.put(key, Value::from(v));
    }
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

/// `url.*` as `newURL` fills an `ecs.Url` (empty values left out).
fn put_url(evt: &mut Event, host: &str, port: i64, path: &[u8], query: &str) {
    let mut u = Map::new();
    u.insert("scheme".into(), Value::from("http"));
    if !host.is_empty() {
        u.insert("domain".into(), Value::from(host));
    }
    if !path.is_empty() {
        u.insert("path".into(), Value::from(s(path)));
        if let Some(i) = path.iter().rposition(|&b| b == b'.') {
            if i + 1 < path.len() {
                u.insert("extension".into(), Value::from(s(&path[i + 1..])));
            }
        }
    }
    if !query.is_empty() {
        u.insert("query".into(), Value::from(query));
    }
    if port != 80 && port != 0 {
        u.insert("port".into(), Value::from(port));
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
        u.insert(
            "full".into(),
            Value::from(url::build("http", &h, path, query)),
        );
    }
    evt.put("url", Value::Object(u));
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
