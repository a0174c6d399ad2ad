//! From a transaction to Packetbeat's event (`publishTransaction`, `addDNSToMapStr`,
//! `rrToMapStr`, `optToMapStr`, `dnsToString` in `dns.go`).
//!
//! Value types matter for a drop-in replacement: `ttl`, DNSKEY `flags`, RRSIG `labels` … are
//! strings because Packetbeat formats them with `strconv`, while MX `preference`, SOA `serial`
//! and SRV `port` stay numbers. Where Packetbeat puts a nil slice in the event (no header flag
//! set, every answer skipped) the output has an empty array: libbeat's event normalisation
//! turns a nil `[]mapstr.M` into an empty one and its JSON encoder writes a nil `[]string` as
//! `[]`.
//!
//! Encodings come from crates where they are the same bytes (`hex`, `base64`, and
//! `data-encoding`'s `BASE32HEX` for NSEC3's padded base32hex). What only Go or miekg write
//! that way stays here: `net.IP.String()` ([`go_ip_string`]: IPv4-mapped addresses dotted, which
//! Rust's `Ipv6Addr` display does not do), the RFC 3597 escaping of unknown RDATA
//! (`escape_rdata`) and miekg's RRSIG time window (`dns_time`).

use super::names::{
    algorithm_name, class_name, hash_name, opcode_name, rcode_name, type_bits, type_name,
};
use super::parser::{EdnsOption, Message, Opt, Question, RData, Record, TYPE_OPT};
use super::transaction::Transaction;
use crate::common::Transport;
use crate::publish::json::{write_str, write_value, ObjectWriter};
use crate::publish::{Endpoint, Event, Fields, Map, PbFields};
use base64::Engine;
use serde_json::Value;

/// Options that shape the event.
#[derive(Debug, Clone, Copy, Default)]
pub struct EventOptions {
    pub send_request: bool,
    pub send_response: bool,
    pub include_authorities: bool,
    pub include_additionals: bool,
}

/// Packetbeat's `publishTransaction`. The fields are put in key order (see
/// [`crate::publish::Fields`]): `dns.*`, `method`, `query`, `request`, `resource`, `response`,
/// `status`, `type`.
pub fn transaction_event(t: &Transaction, transport: Transport, opts: &EventOptions) -> Event {
    let mut evt = Event::new(t.ts);
    let mut src = Endpoint::new(t.src.0, t.src.1);
    let mut dst = Endpoint::new(t.dst.0, t.dst.1);
    let (mut start, mut end) = (None, None);
    let mut pb = PbFields::new();

    let (main, dns_type) = match (&t.request, &t.response) {
        (Some(req), Some(resp)) => {
            src.bytes = req.length as u64;
            dst.bytes = resp.length as u64;
            start = Some(req.ts);
            end = Some(resp.ts);
            (Some((req, resp, true)), "answer")
        }
        (Some(req), None) => {
            src.bytes = req.length as u64;
            start = Some(req.ts);
            (Some((req, req, false)), "query")
        }
        (None, Some(resp)) => {
            dst.bytes = resp.length as u64;
            end = Some(resp.ts);
            (Some((resp, resp, false)), "answer")
        }
        (None, None) => (None, ""),
    };
    pb.set_source(src);
    pb.set_destination(dst);
    let f = &mut evt.fields;
    let mut status = "Error";
    if let Some((head, body, complete)) = main {
        add_dns_fields(
            f,
            &mut pb,
            &body.data,
            opts.include_authorities,
            opts.include_additionals,
            dns_type,
        );
        f.put_str("method", &opcode_name(head.data.opcode));
        let question = head.data.questions.first();
        if let Some(q) = question {
            f.put_str("query", &question_to_string(q));
        }
        let req = t.request.as_ref().filter(|_| opts.send_request);
        if let Some(r) = req {
            f.put_str("request", &message_to_string(&r.data));
        }
        if let Some(q) = question {
            f.put_str("resource", &q.name);
        }
        let resp = t.response.as_ref().filter(|_| opts.send_response);
        if let Some(r) = resp {
            f.put_str("response", &message_to_string(&r.data));
        }
        if complete && body.data.rcode == 0 {
            status = "OK";
        }
    } else {
        f.put_with("dns", |o| o.extend_from_slice(b"{}"));
    }
    f.put_str("status", status);
    f.put_str("type", "dns");

    pb.network.transport = Some(transport);
    pb.network.protocol = "dns";
    pb.error_messages = t.notes.clone();
    pb.event.start = start;
    pb.event.end = end;
    evt.pb = Some(Box::new(pb));
    evt
}

/// Packetbeat's `addDNSToMapStr`, plus `dns.type` when `dns_type` is not empty: the `dns`
/// object, written straight in key order.
pub fn add_dns_fields(
    f: &mut Fields,
    pb: &mut PbFields,
    msg: &Message,
    authorities: bool,
    additionals: bool,
    dns_type: &str,
) {
    let mut ips = Vec::new();
    f.put_with("dns", |o| {
        let mut w = ObjectWriter::new(o);
        write_dns(&mut w, msg, authorities, additionals, dns_type, &mut ips);
        w.end();
    });
    for ip in &ips {
        pb.add_ip(ip);
    }
}

fn write_dns(
    w: &mut ObjectWriter,
    msg: &Message,
    authorities: bool,
    additionals: bool,
    dns_type: &str,
    ips: &mut Vec<String>,
) {
    let opt = msg.edns();
    let extra = msg.additionals.len();
    if additionals && extra > 0 {
        // Unlike the other sections, an all-skipped list (only the OPT record) is left out.
        let mut list = Vec::new();
        if write_rrs(&mut list, &msg.additionals, None) {
            w.key("additionals").extend_from_slice(&list);
        }
    }
    w.u64(
        "additionals_count",
        (if opt.is_some() { extra - 1 } else { extra }) as u64,
    );
    if !msg.answers.is_empty() {
        write_rrs(w.key("answers"), &msg.answers, Some(ips));
    }
    w.u64("answers_count", msg.answers.len() as u64);
    if authorities && !msg.authorities.is_empty() {
        write_rrs(w.key("authorities"), &msg.authorities, None);
    }
    w.u64("authorities_count", msg.authorities.len() as u64);
    w.object("flags", |f| {
        f.bool("authentic_data", msg.authenticated_data);
        f.bool("authoritative", msg.authoritative);
        f.bool("checking_disabled", msg.checking_disabled);
        f.bool("recursion_available", msg.recursion_available);
        f.bool("recursion_desired", msg.recursion_desired);
        f.bool("truncated_response", msg.truncated);
    });
    // Possibly a nil []string in Go, which libbeat writes as [].
    w.strs(
        "header_flags",
        [
            (msg.authoritative, "AA"),
            (msg.truncated, "TC"),
            (msg.recursion_desired, "RD"),
            (msg.recursion_available, "RA"),
            (msg.authenticated_data, "AD"),
            (msg.checking_disabled, "CD"),
            (opt.is_some_and(|o| o.do_bit()), "DO"),
        ]
        .into_iter()
        .filter_map(|(set, name)| set.then_some(name)),
    );
    w.u64("id", msg.id as u64);
    w.str("op_code", &opcode_name(msg.opcode));
    if let Some(o) = opt {
        write_opt(w.key("opt"), o);
    }
    if let Some(q) = msg.questions.first() {
        w.object("question", |w| write_question(w, q));
    }
    if !ips.is_empty() {
        w.strs("resolved_ip", ips.iter());
    }
    w.str("response_code", &rcode_name(msg.rcode));
    if !dns_type.is_empty() {
        w.str("type", dns_type);
    }
}

/// `dns.question.*`, with the Public Suffix List fields.
fn write_question(w: &mut ObjectWriter, q: &Question) {
    w.str("class", &class_name(q.qclass));
    let name = q.name.as_str();
    let (mut etld_plus_one, mut registered, mut subdomain, mut tld) = (None, None, None, None);
    if let Some(etld1) = effective_tld_plus_one(name) {
        let etld1 = etld1.trim_end_matches('.');
        if let Some(idx) = etld1.find('.') {
            tld = Some(&etld1[idx + 1..]);
        }
        let sub = name
            .strip_suffix(etld1)
            .unwrap_or(name)
            .trim_end_matches('.');
        if !sub.is_empty() {
            subdomain = Some(sub);
        }
        etld_plus_one = Some(etld1);
        registered = Some(etld1);
    } else if name.matches('.').count() == 1 {
        // Packetbeat's fallback for names the PSL cannot split (e.g. a bare public suffix).
        let mut parts = name.split('.');
        let _ = parts.next();
        tld = parts.next().filter(|s| !s.is_empty());
        registered = Some(name);
    }
    if let Some(e) = etld_plus_one {
        w.str("etld_plus_one", e);
    }
    w.str("name", name);
    if let Some(r) = registered {
        w.str("registered_domain", r);
    }
    if let Some(s) = subdomain {
        w.str("subdomain", s);
    }
    if let Some(t) = tld {
        w.str("top_level_domain", t);
    }
    w.str("type", &type_name(q.qtype));
}

/// `publicsuffix.EffectiveTLDPlusOne` of golang.org/x/net, on top of the `psl` crate's suffix
/// lookup (the same list, ICANN and private sections, with the implicit `*` rule).
pub fn effective_tld_plus_one(domain: &str) -> Option<&str> {
    if domain.starts_with('.') || domain.ends_with('.') || domain.contains("..") {
        return None;
    }
    let suffix_len = public_suffix(domain).len();
    if domain.len() <= suffix_len {
        return None;
    }
    let i = domain.len() - suffix_len - 1;
    if domain.as_bytes()[i] != b'.' {
        return None;
    }
    let start = domain[..i].rfind('.').map_or(0, |p| p + 1);
    Some(&domain[start..])
}

/// `publicsuffix.PublicSuffix`: the matching rule's suffix, else the last label.
fn public_suffix(domain: &str) -> &str {
    let last_label = || &domain[domain.rfind('.').map_or(0, |p| p + 1)..];
    match psl::suffix(domain.as_bytes()) {
        Some(s) => {
            let n = s.as_bytes().len();
            // `psl` may strip a trailing dot or fail on odd input; only trust a true suffix.
            if n <= domain.len() && domain.as_bytes().ends_with(s.as_bytes()) {
                &domain[domain.len() - n..]
            } else {
                last_label()
            }
        }
        None => last_label(),
    }
}

/// `optToMapStr` as JSON: written straight when there are no options (the usual case).
fn write_opt(out: &mut Vec<u8>, o: &Opt) {
    if o.options
        .iter()
        .all(|x| matches!(x, EdnsOption::Ignored(_)))
    {
        out.extend_from_slice(if o.do_bit() {
            b"{\"do\":true,\"ext_rcode\":"
        } else {
            b"{\"do\":false,\"ext_rcode\":"
        });
        write_str(out, &rcode_name(o.extended_rcode()));
        out.extend_from_slice(b",\"udp_size\":");
        out.extend_from_slice(itoa::Buffer::new().format(o.udp_size).as_bytes());
        out.extend_from_slice(b",\"version\":\"");
        out.extend_from_slice(itoa::Buffer::new().format(o.version()).as_bytes());
        out.extend_from_slice(b"\"}");
    } else {
        write_value(out, &Value::Object(opt_map(o)));
    }
}

/// `optToMapStr`.
fn opt_map(o: &Opt) -> Map {
    let mut m = Map::new();
    m.insert("do".into(), o.do_bit().into());
    m.insert("version".into(), o.version().to_string().into());
    m.insert("udp_size".into(), o.udp_size.into());
    m.insert("ext_rcode".into(), rcode_name(o.extended_rcode()).into());
    for opt in &o.options {
        let (key, val) = match opt {
            EdnsOption::Dau(algs) => ("dau", alg_list(algs, algorithm_name)),
            EdnsOption::Dhu(algs) => ("dhu", alg_list(algs, hash_name)),
            EdnsOption::N3u(algs) => ("n3u", alg_list(algs, hash_name)),
            // Packetbeat files EXPIRE under "local".
            EdnsOption::Expire(e) => ("local", e.map(|v| v.to_string()).unwrap_or_default()),
            EdnsOption::Llq {
                version,
                opcode,
                error,
                id,
                lease_life,
            } => (
                "llq",
                format!("{version} {opcode} {error} {id} {lease_life}"),
            ),
            EdnsOption::Local { code, data } => ("local", format!("{code}:0x{}", hex(data))),
            EdnsOption::Nsid(d) => ("nsid", hex(d)),
            EdnsOption::Subnet {
                source_netmask,
                source_scope,
                address,
                ..
            } => {
                let ip = go_ip_string(address);
                let is_v4 = address.len() == 4 || is_v4_mapped(address);
                let a = if is_v4 { ip } else { format!("[{ip}]") };
                ("subnet", format!("{a}/{source_netmask}/{source_scope}"))
            }
            EdnsOption::Cookie(d) => ("cookie", hex(d)),
            EdnsOption::Ul { lease, key_lease } => ("ul", format!("{lease} {key_lease}")),
            EdnsOption::Ignored(_) => continue,
        };
        m.insert(key.into(), val.into());
    }
    m
}

fn alg_list(algs: &[u8], name: fn(u8) -> String) -> String {
    algs.iter().map(|&a| format!(" {}", name(a))).collect()
}

/// `rrsToMapStrs` as a JSON array: records Packetbeat cannot render (OPT, A/AAAA without
/// address) are left out; an all-skipped list is Go's nil slice, published as `[]`. Returns
/// whether any record was written.
fn write_rrs(out: &mut Vec<u8>, records: &[Record], mut ips: Option<&mut Vec<String>>) -> bool {
    out.push(b'[');
    let mut any = false;
    for rr in records {
        let mark = out.len();
        if any {
            out.push(b',');
        }
        if write_rr(out, rr, ips.as_deref_mut()) {
            any = true;
        } else {
            out.truncate(mark);
        }
    }
    out.push(b']');
    any
}

/// One record as `rrToMapStr` plus name, type, class and TTL. The address and name records
/// are written straight (keys in order); the others through a map.
fn write_rr(out: &mut Vec<u8>, rr: &Record, ips: Option<&mut Vec<String>>) -> bool {
    let data = match &rr.data {
        RData::A(_) | RData::Aaaa(_) => {
            let ip = match &rr.data {
                RData::A(a) => go_ip_string(a),
                RData::Aaaa(a) => go_ip_string(a),
                _ => unreachable!("matched above"),
            };
            if let Some(ips) = ips {
                ips.push(ip.clone());
            }
            std::borrow::Cow::Owned(ip)
        }
        RData::Name(n) => std::borrow::Cow::Borrowed(trim_right_dot(n)),
        _ => {
            let Some(mut m) = rr_to_map(rr, ips) else {
                return false;
            };
            m.insert("name".into(), trim_right_dot(&rr.name).into());
            m.insert("type".into(), type_name(rr.rtype).into());
            m.insert("class".into(), class_name(rr.class).into());
            m.insert("ttl".into(), rr.ttl.to_string().into());
            write_value(out, &Value::Object(m));
            return true;
        }
    };
    out.extend_from_slice(b"{\"class\":");
    write_str(out, &class_name(rr.class));
    out.extend_from_slice(b",\"data\":");
    write_str(out, &data);
    out.extend_from_slice(b",\"name\":");
    write_str(out, trim_right_dot(&rr.name));
    out.extend_from_slice(b",\"ttl\":\"");
    out.extend_from_slice(itoa::Buffer::new().format(rr.ttl).as_bytes());
    out.extend_from_slice(b"\",\"type\":");
    write_str(out, &type_name(rr.rtype));
    out.push(b'}');
    true
}

/// `rrToMapStr`: the RDATA fields. `None` for an empty map (skipped by the caller).
fn rr_to_map(rr: &Record, ips: Option<&mut Vec<String>>) -> Option<Map> {
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_string(), v);
    };
    let s = |x: &dyn ToString| Value::from(x.to_string());
    match &rr.data {
        RData::NoIp => return None,
        RData::Opt(_) if rr.rtype == TYPE_OPT => return None,
        RData::A(a) => {
            let ip = go_ip_string(a);
            if let Some(ips) = ips {
                ips.push(ip.clone());
            }
            put("data", ip.into());
        }
        RData::Aaaa(a) => {
            let ip = go_ip_string(a);
            if let Some(ips) = ips {
                ips.push(ip.clone());
            }
            put("data", ip.into());
        }
        RData::Name(n) => put("data", trim_right_dot(n).into()),
        RData::Mx {
            preference,
            exchange,
        } => {
            put("preference", (*preference).into());
            put("data", trim_right_dot(exchange).into());
        }
        RData::Soa {
            mname,
            rname,
            serial,
            refresh,
            retry,
            expire,
            minimum,
        } => {
            put("rname", trim_right_dot(rname).into());
            put("serial", (*serial).into());
            put("refresh", (*refresh).into());
            put("retry", (*retry).into());
            put("expire", (*expire).into());
            put("minimum", (*minimum).into());
            put("data", trim_right_dot(mname).into());
        }
        RData::Srv {
            priority,
            weight,
            port,
            target,
        } => {
            put("priority", (*priority).into());
            put("weight", (*weight).into());
            put("port", (*port).into());
            put("data", trim_right_dot(target).into());
        }
        RData::Txt(parts) => put("data", parts.join(" ").into()),
        RData::Dnskey {
            flags,
            protocol,
            algorithm,
            public_key,
        } => {
            put("flags", s(flags));
            put("protocol", s(protocol));
            put("algorithm", algorithm_name(*algorithm).into());
            put("data", b64(public_key).into());
        }
        RData::Ds {
            key_tag,
            algorithm,
            digest_type,
            digest,
        } => {
            put("key_tag", s(key_tag));
            put("algorithm", algorithm_name(*algorithm).into());
            put("digest_type", hash_name(*digest_type).into());
            put("data", hex(digest).to_uppercase().into());
        }
        RData::Rrsig {
            type_covered,
            algorithm,
            labels,
            original_ttl,
            expiration,
            inception,
            key_tag,
            signer_name,
            signature,
        } => {
            put("type_covered", type_name(*type_covered).into());
            put("algorithm", algorithm_name(*algorithm).into());
            put("labels", s(labels));
            put("original_ttl", s(original_ttl));
            put("expiration", dns_time(*expiration).into());
            put("inception", dns_time(*inception).into());
            put("key_tag", s(key_tag));
            put("signer_name", trim_right_dot(signer_name).into());
            put("data", b64(signature).into());
        }
        RData::Nsec { next_domain, types } => {
            put("type_bits", type_bits(types).into());
            // Packetbeat does not trim this one.
            put("data", next_domain.clone().into());
        }
        RData::Nsec3 {
            hash,
            flags,
            iterations,
            salt,
            next_domain,
            types,
        } => {
            put("hash", hash_name(*hash).into());
            put("flags", s(flags));
            put("iterations", s(iterations));
            put("salt", salt_string(salt).into());
            put("type_bits", type_bits(types).into());
            put("data", base32hex(next_domain).into());
        }
        RData::Nsec3Param {
            hash,
            flags,
            iterations,
            salt,
        } => {
            put("hash", hash_name(*hash).into());
            put("flags", s(flags));
            put("iterations", s(iterations));
            put("data", salt_string(salt).into());
        }
        RData::Opt(_) | RData::Raw(_) => {
            let raw = match &rr.data {
                RData::Raw(r) => r.as_slice(),
                _ => &[],
            };
            put("data", escape_rdata(raw).into());
        }
    }
    if m.is_empty() {
        None
    } else {
        Some(m)
    }
}

/// `rrToString`: the string-valued RDATA fields sorted by key, then `data`.
fn rr_to_string(rr: &Record) -> String {
    let Some(mut m) = rr_to_map(rr, None) else {
        return String::new();
    };
    let data = m.remove("data");
    let mut keys: Vec<&String> = m.keys().collect();
    keys.sort();
    let mut b = String::new();
    for k in keys {
        // Go prints only `int` and `string` values; Packetbeat has no `int` fields here.
        if let Value::String(v) = &m[k] {
            b.push_str(&format!("{k} {v}, "));
        }
    }
    match data {
        Some(Value::String(d)) => {
            b.push_str(&d);
            b
        }
        Some(_) => b,
        None => b.strip_suffix(", ").map(str::to_string).unwrap_or(b),
    }
}

/// `dnsQuestionToString`.
pub fn question_to_string(q: &Question) -> String {
    let (class, qtype) = (class_name(q.qclass), type_name(q.qtype));
    let mut s = String::with_capacity(16 + class.len() + qtype.len() + q.name.len());
    s.push_str("class ");
    s.push_str(&class);
    s.push_str(", type ");
    s.push_str(&qtype);
    s.push_str(", ");
    s.push_str(&q.name);
    s
}

/// `dnsToString`: the `request` / `response` text.
pub fn message_to_string(msg: &Message) -> String {
    let mut flags = Vec::new();
    for (set, name) in [
        (msg.authoritative, "aa"),
        (msg.truncated, "tc"),
        (msg.recursion_desired, "rd"),
        (msg.recursion_available, "ra"),
        (msg.authenticated_data, "ad"),
        (msg.checking_disabled, "cd"),
    ] {
        if set {
            flags.push(name);
        }
    }
    let mut a = vec![format!(
        "ID {}; QR {}; OPCODE {}; FLAGS {}; RCODE {}",
        msg.id,
        if msg.response { "response" } else { "query" },
        opcode_name(msg.opcode),
        flags.join(" "),
        rcode_name(msg.rcode)
    )];
    if !msg.questions.is_empty() {
        let qs: Vec<String> = msg.questions.iter().map(question_to_string).collect();
        a.push(format!("QUESTION {}", qs.join("; ")));
    }
    for (label, rrs) in [
        ("ANSWER", &msg.answers),
        ("AUTHORITY", &msg.authorities),
        ("ADDITIONAL", &msg.additionals),
    ] {
        if !rrs.is_empty() {
            let parts: Vec<String> = rrs.iter().map(rr_to_string).collect();
            a.push(format!("{label} {}", parts.join("; ")));
        }
    }
    a.join("; ")
}

/// Packetbeat's `trimRightDot`: one trailing dot, but "." stays.
pub fn trim_right_dot(name: &str) -> &str {
    if name.is_empty() || name == "." || !name.ends_with('.') {
        name
    } else {
        &name[..name.len() - 1]
    }
}

/// Go's `net.IP.String()` for a 4- or 16-byte address: IPv4 and IPv4-mapped IPv6 in dotted
/// form, other IPv6 per RFC 5952 (longest run of two or more zero groups shortened, the first
/// one on a tie).
pub fn go_ip_string(b: &[u8]) -> String {
    if b.len() == 4 {
        return format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3]);
    }
    if b.len() != 16 {
        return "?".to_string();
    }
    if is_v4_mapped(b) {
        return format!("{}.{}.{}.{}", b[12], b[13], b[14], b[15]);
    }
    let groups: Vec<u16> = (0..8)
        .map(|i| u16::from_be_bytes([b[2 * i], b[2 * i + 1]]))
        .collect();
    let (mut best_start, mut best_len) = (usize::MAX, 0);
    let mut i = 0;
    while i < 8 {
        if groups[i] == 0 {
            let start = i;
            while i < 8 && groups[i] == 0 {
                i += 1;
            }
            if i - start > best_len && i - start >= 2 {
                best_start = start;
                best_len = i - start;
            }
        } else {
            i += 1;
        }
    }
    let mut s = String::new();
    let mut i = 0;
    while i < 8 {
        if i == best_start {
            s.push_str("::");
            i += best_len;
            continue;
        }
        if i > 0 && !s.ends_with(':') {
            s.push(':');
        }
        s.push_str(&format!("{:x}", groups[i]));
        i += 1;
    }
    s
}

fn is_v4_mapped(b: &[u8]) -> bool {
    b.len() == 16 && b[..10].iter().all(|&x| x == 0) && b[10] == 0xff && b[11] == 0xff
}

fn hex(b: &[u8]) -> String {
    hex::encode(b)
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// miekg's NSEC3 next hashed owner (`toBase32`: Go's `base32.HexEncoding`): the RFC 4648
/// extended-hex alphabet, upper case, padded with `=`.
fn base32hex(b: &[u8]) -> String {
    data_encoding::BASE32HEX.encode(b)
}

/// `dnsSaltToString`: upper-case hex, "-" when empty.
fn salt_string(s: &[u8]) -> String {
    if s.is_empty() {
        "-".to_string()
    } else {
        hex(s).to_uppercase()
    }
}

/// miekg's `TimeToString` (RRSIG times, RFC 4034 serial arithmetic: the 32-bit value is taken
/// in the 68-year window around now, which for any current clock means as is).
fn dns_time(t: u32) -> String {
    const YEAR68: i64 = 1 << 31;
    let now = chrono::Utc::now().timestamp();
    let mut m = (t as i64 - now) / YEAR68 - 1;
    if m < 0 {
        m = 0;
    }
    let secs = t as i64 - m * YEAR68;
    chrono::DateTime::from_timestamp(secs, 0)
        .unwrap_or_default()
        .format("%Y%m%d%H%M%S")
        .to_string()
}

/// Packetbeat's `hexStringToString` on the RFC 3597 RDATA: printable ASCII as is, `"` and `\`
/// escaped, tab/CR/LF as `\t` `\r` `\n`, other bytes as `\DDD`.
fn escape_rdata(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len());
    for &v in b {
        match v {
            b'"' | b'\\' => {
                s.push('\\');
                s.push(v as char);
            }
            b'\t' => s.push_str("\\t"),
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            _ if !(32..127).contains(&v) => s.push_str(&format!("\\{v:03}")),
            _ => s.push(v as char),
        }
    }
    s
}
