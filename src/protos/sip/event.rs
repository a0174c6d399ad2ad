//! The SIP event (`buildEvent` and the `populate*` functions of Packetbeat's `plugin.go`): the
//! only place its fields are written. One event per message; empty values are left out, as
//! Packetbeat's ECS marshalling leaves them out.

use super::parser::{atoi, go_lower, go_upper, trim_space, Message};
use super::Sip;
use crate::common::{IpPortTuple, Ts};
use crate::protos::app;
use crate::publish::{Event, PbFields};
use std::collections::HashMap;

/// The parts of a URI as Packetbeat's `parseURI` cuts them.
#[derive(Debug, Default, PartialEq)]
pub struct Uri<'a> {
    pub scheme: &'a [u8],
    pub username: &'a [u8],
    pub host: &'a [u8],
    pub port: i64,
    pub params: HashMap<String, &'a [u8]>,
}

/// `parseURI`, its character walk kept as it is.
pub fn parse_uri(uri: &[u8]) -> Uri<'_> {
    let uri = trim_space(uri);
    let mut u = Uri::default();
    let mut prev = b' ';
    let mut in_v6 = false;
    let mut has_params = false;
    let mut pos: isize = -1;
    let mut ppos: isize = -1;
    let mut epos = uri.len();
    let mut host_set = false;
    let mut idx = 0usize;
    while idx < uri.len() {
        let c = uri[idx];
        if idx == 0 {
            let Some(colon) = uri.iter().position(|b| *b == b':') else {
                break;
            };
            u.scheme = &uri[..colon];
            idx += colon;
            pos = idx as isize + 1;
        } else if c == b'[' && prev != b'\\' {
            in_v6 = true;
        } else if c == b']' && prev != b'\\' {
            in_v6 = false;
        } else if c == b';' && prev != b'\\' {
            has_params = true;
            epos = idx;
            break;
        } else if c == b'@' {
            if host_set && !u.host.is_empty() {
                pos = ppos;
                u.host = &[];
                host_set = false;
            }
            u.username = uri.get(pos.max(0) as usize..idx).unwrap_or_default();
            ppos = pos;
            pos = idx as isize + 1;
        } else if c == b':' && !in_v6 {
            u.host = uri.get(pos.max(0) as usize..idx).unwrap_or_default();
            host_set = true;
            ppos = pos;
            pos = idx as isize + 1;
        }
        prev = c;
        idx += 1;
    }
    if pos > 0 && (pos as usize) <= epos {
        let rest = trim_space(&uri[pos as usize..epos]);
        if u.host.is_empty() {
            u.host = rest;
        } else {
            u.port = atoi(rest);
        }
    }
    if has_params {
        for p in uri[epos + 1..].split(|b| *b == b';') {
            let kv: Vec<&[u8]> = p.split(|b| *b == b'=').collect();
            if kv.len() == 2 {
                u.params.insert(go_lower(trim_space(kv[0])), kv[1]);
            }
        }
    }
    u
}

/// Display name, URI and header parameters of a From, To or Contact value.
pub type FromTo<'a> = (&'a [u8], &'a [u8], HashMap<String, &'a [u8]>);

/// `parseFromToContact`: display name, URI and header parameters. `None` where Packetbeat's
/// slicing panics (a `>` before the `<`), which loses the message.
pub fn parse_from_to(v: &[u8]) -> Option<FromTo<'_>> {
    let mut params = HashMap::new();
    let v = trim_space(v);
    let lt = v.iter().position(|b| *b == b'<');
    let mut pos = lt.unwrap_or(0);
    let display = trim_set(&v[..pos], b"'\"\t ");
    let end = match lt {
        Some(_) => v.iter().position(|b| *b == b'>'),
        None => v.iter().position(|b| *b == b';'),
    };
    let Some(end) = end else {
        return Some((display, &v[pos..], params));
    };
    if lt.is_some() {
        pos += 1;
    }
    let uri = v.get(pos..end)?;
    for p in v[end + 1..].split(|b| *b == b';') {
        let mut kv = p.splitn(2, |b| *b == b'=');
        if let (Some(k), Some(val)) = (kv.next(), kv.next()) {
            params.insert(go_lower(trim_space(k)), val);
        }
    }
    Some((display, uri, params))
}

/// `bytes.Trim` with a set of ASCII bytes.
fn trim_set<'a>(s: &'a [u8], set: &[u8]) -> &'a [u8] {
    let a = s.iter().position(|b| !set.contains(b)).unwrap_or(s.len());
    let e = s
        .iter()
        .rposition(|b| !set.contains(b))
        .map_or(a, |e| e + 1);
    &s[a..e.max(a)]
}

fn is_user(u: &[u8]) -> bool {
    u != b" " && u != b"-"
}

/// Writes a URI's fields under `prefix` (`sip.uri`, `sip.from.uri`, …) and notes its user and
/// host in `related.*`.
fn put_uri(ev: &mut Event, prefix: &str, original: &[u8], u: &Uri, with_user: bool) {
    let f = &mut ev.fields;
    put_nonempty(f, format!("{prefix}.original"), original);
    put_nonempty(f, format!("{prefix}.scheme"), u.scheme);
    put_nonempty(f, format!("{prefix}.host"), u.host);
    if u.port != 0 {
        f.put_i64(format!("{prefix}.port"), u.port);
    }
    if with_user && is_user(u.username) {
        put_nonempty(f, format!("{prefix}.username"), u.username);
        ev.pb().add_user(&String::from_utf8_lossy(u.username));
    }
}

fn put_nonempty(f: &mut crate::publish::fields::Fields, key: String, v: &[u8]) {
    if !v.is_empty() {
        f.put_bytes(key, v);
    }
}

fn add_host(pb: &mut PbFields, h: &[u8]) {
    pb.add_host(&String::from_utf8_lossy(h));
}

/// The event of one message; `original` is what `event.original` shows. `None` where
/// Packetbeat panics on the message (it publishes nothing for it).
pub fn message_event(
    cfg: &Sip,
    m: &Message,
    ts: Ts,
    tuple: &IpPortTuple,
    original: &[u8],
) -> Option<Event> {
    let mut ev = app::event::transaction_event(&app::event::Transaction {
        protocol: "sip",
        transport: cfg.transport,
        ts,
        client: (tuple.src_ip, tuple.src_port),
        server: (tuple.dst_ip, tuple.dst_port),
        request_bytes: 0,
        response_bytes: 0,
        start: Some(ts),
        end: Some(ts),
        notes: &[],
    });
    ev.fields.put_str("type", "sip");
    ev.fields
        .put_str("status", if m.status_code >= 400 { "Error" } else { "OK" });
    ev.fields.put_str("network.iana_number", "17");
    ev.fields.put_str("network.application", "sip");

    let version = format!("{}.{}", m.version.0, m.version.1);
    if m.is_request {
        ev.fields.put_str("sip.type", "request");
        put_nonempty(
            &mut ev.fields,
            "sip.method".into(),
            go_upper(m.get(&m.method)).as_bytes(),
        );
        let orig = m.get(&m.request_uri);
        let u = parse_uri(orig);
        put_uri(&mut ev, "sip.uri", orig, &u, true);
        add_host(ev.pb(), u.host);
    } else {
        ev.fields.put_str("sip.type", "response");
        if m.status_code != 0 {
            ev.fields.put_u64("sip.code", m.status_code as u64);
        }
        put_nonempty(&mut ev.fields, "sip.status".into(), m.get(&m.status_phrase));
    }
    ev.fields.put_str("sip.version", &version);

    // populateHeadersFields
    if let Some(a) = &m.allow {
        ev.fields.put_strs("sip.allow", a);
    }
    put_nonempty(&mut ev.fields, "sip.call_id".into(), m.get(&m.call_id));
    if m.content_length != 0 {
        ev.fields.put_i64("sip.content_length", m.content_length);
    }
    put_nonempty(
        &mut ev.fields,
        "sip.content_type".into(),
        go_lower(m.get(&m.content_type)).as_bytes(),
    );
    if m.max_forwards != 0 {
        ev.fields.put_i64("sip.max_forwards", m.max_forwards);
    }
    if let Some(s) = &m.supported {
        ev.fields.put_strs("sip.supported", s);
    }
    put_nonempty(
        &mut ev.fields,
        "sip.user_agent.original".into(),
        m.get(&m.user_agent),
    );
    if !m.via.is_empty() {
        let vias: Vec<String> = m
            .via
            .iter()
            .map(|r| String::from_utf8_lossy(m.get(r)).into_owned())
            .collect();
        ev.fields.put_strs("sip.via.original", vias);
    }
    if let Some(p) = m.header(b"p-associated-uri") {
        let u = parse_uri(p);
        put_uri(&mut ev, "sip.private.uri", p, &u, true);
        add_host(ev.pb(), u.host);
    }
    if let Some(a) = m.header(b"accept") {
        put_nonempty(&mut ev.fields, "sip.accept".into(), go_lower(a).as_bytes());
    }
    let cseq = m.get(&m.cseq);
    let parts: Vec<&[u8]> = cseq.split(|b| *b == b' ').collect();
    let mut cseq_code = 0;
    let mut cseq_method = String::new();
    if parts.len() == 2 {
        cseq_code = atoi(parts[0]);
        cseq_method = go_upper(parts[1]);
        if cseq_code != 0 {
            ev.fields.put_i64("sip.cseq.code", cseq_code);
        }
        put_nonempty(
            &mut ev.fields,
            "sip.cseq.method".into(),
            cseq_method.as_bytes(),
        );
    }

    for (name, r) in [("from", &m.from), ("to", &m.to)] {
        let v = m.get(r);
        if v.is_empty() {
            continue;
        }
        let (display, uri, params) = parse_from_to(v)?;
        put_nonempty(&mut ev.fields, format!("sip.{name}.display_info"), display);
        if let Some(tag) = params.get("tag") {
            put_nonempty(&mut ev.fields, format!("sip.{name}.tag"), tag);
        }
        let u = parse_uri(uri);
        put_uri(&mut ev, &format!("sip.{name}.uri"), uri, &u, true);
        add_host(ev.pb(), u.host);
    }

    if m.header(b"contact").is_some() {
        // Packetbeat reads the contact fields from the To header.
        let (display, uri, params) = parse_from_to(m.get(&m.to))?;
        put_nonempty(&mut ev.fields, "sip.contact.display_info".into(), display);
        let expires = params.get("expires").map_or(0, |v| atoi(v));
        if expires != 0 {
            ev.fields.put_i64("sip.contact.expires", expires);
        }
        let q = params
            .get("q")
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        if q != 0.0 && q.is_finite() {
            ev.fields.put_with("sip.contact.q", |o| {
                o.extend_from_slice(q.to_string().as_bytes())
            });
        }
        let u = parse_uri(uri);
        put_uri(&mut ev, "sip.contact.uri", uri, &u, true);
        if let Some(l) = u.params.get("line") {
            put_nonempty(&mut ev.fields, "sip.contact.line".into(), l);
        }
        if let Some(t) = u.params.get("transport") {
            put_nonempty(
                &mut ev.fields,
                "sip.contact.transport".into(),
                go_lower(t).as_bytes(),
            );
        }
        add_host(ev.pb(), u.host);
    }

    if cfg.parse_authorization {
        auth_fields(&mut ev, m);
    }
    if cfg.parse_body {
        body_fields(&mut ev, m)?;
    }

    // populateEventFields
    let pb = ev.pb();
    pb.event.kind = "event";
    pb.event.kind_type = &["info", "protocol"];
    pb.event.category = if m.header(b"authorization").is_some() {
        &["network", "authentication"]
    } else {
        &["network"]
    };
    if cseq_code != 0 {
        ev.fields.put_i64("event.sequence", cseq_code);
    }
    if cfg.keep_original && !original.is_empty() {
        ev.fields.put_bytes("event.original", original);
    }
    let action = if m.is_request {
        format!("sip-{}", go_lower(m.get(&m.method)))
    } else {
        format!("sip-{}", go_lower(cseq_method.as_bytes()))
    };
    ev.set_action(action);
    if m.status_code >= 200 {
        ev.set_outcome(if m.status_code > 299 {
            "failure"
        } else {
            "success"
        });
    }
    if !m.is_request {
        put_nonempty(
            &mut ev.fields,
            "event.reason".into(),
            m.get(&m.status_phrase),
        );
    }
    Some(ev)
}

/// `populateAuthFields`: the first Authorization header.
fn auth_fields(ev: &mut Event, m: &Message) {
    let Some(auth) = m.header(b"authorization") else {
        return;
    };
    let auth = trim_space(auth);
    let Some(sp) = auth.iter().position(|b| *b == b' ') else {
        return;
    };
    put_nonempty(&mut ev.fields, "sip.auth.scheme".into(), &auth[..sp]);
    for p in auth[sp + 1..].split(|b| *b == b',') {
        let mut kv = p.splitn(2, |b| *b == b'=');
        let (Some(k), Some(v)) = (kv.next(), kv.next()) else {
            continue;
        };
        let v = trim_set(v, b"'\" \t");
        match go_lower(trim_space(k)).as_str() {
            "realm" => put_nonempty(&mut ev.fields, "sip.auth.realm".into(), v),
            "username" if !v.is_empty() && v != b"-" => {
                ev.fields.put_bytes("user.name", v);
                ev.pb().add_user(&String::from_utf8_lossy(v));
            }
            "uri" => {
                let u = parse_uri(v);
                put_uri(ev, "sip.auth.uri", v, &u, false);
            }
            _ => {}
        }
    }
}

/// `populateBodyFields`: an SDP body. `None` where Packetbeat's slicing panics.
fn body_fields(ev: &mut Event, m: &Message) -> Option<()> {
    if !m.has_content_length
        || m.get(&m.content_type) != b"application/sdp"
        || m.header(b"content-encoding").is_some()
    {
        return Some(());
    }
    let body = m.get(&m.body);
    put_nonempty(&mut ev.fields, "sip.sdp.body.original".into(), body);
    let mut in_media = false;
    let mut version: &[u8] = &[];
    let mut owner: Option<(&[u8], &[u8], &[u8])> = None;
    let mut owner_user: &[u8] = &[];
    let mut session: &[u8] = &[];
    let mut conn: Option<(&[u8], &[u8])> = None;
    for line in split_crlf(body) {
        let mut kv = line.splitn(2, |b| *b == b'=');
        let (Some(k), Some(v)) = (kv.next(), kv.next()) else {
            continue;
        };
        let v = trim_space(v);
        match go_lower(trim_space(k)).as_str() {
            "v" => version = v,
            "o" => {
                let mut pos = 0usize;
                if *v.first()? == b'"' {
                    // Packetbeat's offsets: the end quote's index in v[1..] is used as an
                    // index of v, so the user name loses its last character.
                    let end = v[1..].iter().position(|b| *b == b'"')?;
                    let user = v.get(1..end)?;
                    if user != b"-" {
                        owner_user = user;
                    }
                    pos = end + 1;
                }
                let n = if pos == 0 { 4 } else { 3 };
                let mut parts: Vec<&[u8]> = v.get(pos..)?.splitn(n, |b| *b == b' ').collect();
                if parts.len() != n {
                    continue;
                }
                if n == 4 {
                    if parts[0] != b"-" {
                        owner_user = parts[0];
                    }
                    parts.remove(0);
                }
                let ip = parts[2]
                    .split(|b| *b == b' ')
                    .next_back()
                    .unwrap_or_default();
                owner = Some((parts[0], parts[1], ip));
                let pb = ev.pb();
                pb.add_user(&String::from_utf8_lossy(owner_user));
                pb.add_ip(&String::from_utf8_lossy(ip));
            }
            "s" if v != b"-" => session = v,
            "c" => {
                if in_media {
                    continue;
                }
                let addr = v.split(|b| *b == b' ').next_back().unwrap_or_default();
                conn = Some((v, addr));
                add_host(ev.pb(), addr);
            }
            "m" => in_media = true,
            _ => {}
        }
    }
    let f = &mut ev.fields;
    put_nonempty(f, "sip.sdp.version".into(), version);
    put_nonempty(f, "sip.sdp.owner.username".into(), owner_user);
    if let Some((id, ver, ip)) = owner {
        put_nonempty(f, "sip.sdp.owner.session_id".into(), id);
        put_nonempty(f, "sip.sdp.owner.version".into(), ver);
        put_nonempty(f, "sip.sdp.owner.ip".into(), ip);
    }
    put_nonempty(f, "sip.sdp.session.name".into(), session);
    if let Some((info, addr)) = conn {
        put_nonempty(f, "sip.sdp.connection.info".into(), info);
        put_nonempty(f, "sip.sdp.connection.address".into(), addr);
    }
    Some(())
}

/// `bytes.Split(body, "\r\n")`.
fn split_crlf(s: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(s);
    std::iter::from_fn(move || {
        let r = rest?;
        match r.windows(2).position(|w| w == b"\r\n") {
            Some(i) => {
                rest = Some(&r[i + 2..]);
                Some(&r[..i])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}
