//! Every field the binary writes is defined in fields/ with a type its value fits.
//!
//! Runs every capture of ../shared/pcaps through the real binary with every analyzer and flows
//! enabled, with the options that add fields (send_request/response, include_*, parse_*, headers,
//! certificates, custom `fields` and `tags`), in two configurations (the HTTP header options
//! exclude each other). Each event is walked field by field against the embedded definitions
//! (`packetbeat::setup::fields::bundled`): a field that is not defined (exactly, or under an
//! `object`/`flattened` field), a scalar where a group is defined, a write to an alias, or a
//! value Elasticsearch would reject for the defined type fails the test. `@metadata` is not
//! indexed and not checked.

mod common;

use common::{captures_or_skip, run_capture};
use packetbeat::setup::fields::{bundled, Field};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Mutex;

const SHUTDOWN: &str =
    "packetbeat.shutdown_timeout: 1s\nqueue.mem.flush.timeout: 0s\nqueue.mem.flush.min_events: 0\n";

const ALL: &str = r#"
packetbeat.interfaces.internal_networks: [private]
packetbeat.flows:
  timeout: 30s
  period: -1s
fields: {team: net, rank: 3}
tags: [coverage]
packetbeat.protocols:
  - type: icmp
    send_request: true
    send_response: true
  - type: dhcpv4
    ports: [67, 68]
    send_request: true
    send_response: true
  - type: dns
    ports: [53]
    include_authorities: true
    include_additionals: true
    send_request: true
    send_response: true
  - type: http
    ports: [80, 8080, 8000, 8002, 8888, 9200]
    send_request: true
    send_response: true
    send_all_headers: true
    split_cookie: true
    include_body_for: ["text/html", "application/json", "application/x-www-form-urlencoded", "text/plain"]
    real_ip_header: "X-Forwarded-For"
  - type: amqp
    ports: [5672]
    send_request: true
    send_response: true
    parse_headers: true
    parse_arguments: true
  - type: cassandra
    ports: [9042]
    send_request: true
    send_response: true
    send_request_header: true
    send_response_header: true
  - type: memcache
    ports: [11211]
    parseunknown: true
    send_request: true
    send_response: true
  - type: mysql
    ports: [3306, 3307, 13001]
    send_request: true
    send_response: true
  - type: pgsql
    ports: [5432]
    send_request: true
    send_response: true
  - type: redis
    ports: [6379, 6380]
    send_request: true
    send_response: true
  - type: mongodb
    ports: [27017, 9991]
    send_request: true
    send_response: true
  - type: nfs
    ports: [2049]
    send_request: true
    send_response: true
  - type: tls
    ports: [443]
    send_certificates: true
    include_raw_certificates: true
    include_detailed_fields: true
    fingerprints: [md5, sha1, sha256]
  - type: thrift
    ports: [9090]
    send_request: true
    send_response: true
  - type: sip
    ports: [5060]
    parse_authorization: true
    parse_body: true
    keep_original: true
    send_request: true
    send_response: true
"#;

const HEADERS: &str = r#"
packetbeat.interfaces.internal_networks: [private]
packetbeat.protocols:
  - type: http
    ports: [80, 8080, 8000, 8002, 8888, 9200]
    send_headers: ["Content-Type", "User-Agent", "Host", "Cookie", "Set-Cookie"]
    split_cookie: true
    include_request_body_for: ["application/x-www-form-urlencoded"]
    include_response_body_for: ["text/html"]
    real_ip_header: "X-Real-IP"
  - type: cassandra
    ports: [9042]
    compressor: snappy
  - type: thrift
    ports: [9090]
    transport_type: framed
    capture_reply: false
    obfuscate_strings: true
"#;

/// The definitions by full dotted path (groups included, as "group").
fn definitions() -> HashMap<String, Field> {
    fn walk(list: &[Field], prefix: &str, out: &mut HashMap<String, Field>) {
        for f in list {
            let path = if prefix.is_empty() {
                f.name.clone()
            } else {
                format!("{prefix}.{}", f.name)
            };
            // The first definition of a path is the one the template maps (a later duplicate
            // in another file replaces its mapping only when both have the same type).
            out.entry(path.clone()).or_insert_with(|| f.clone());
            if !f.fields.is_empty() {
                walk(&f.fields, &path, out);
            }
        }
    }
    let mut out = HashMap::new();
    walk(&bundled().expect("fields/ parses"), "", &mut out);
    out
}

fn is_rfc3339(s: &str) -> bool {
    chrono::DateTime::parse_from_rfc3339(s).is_ok()
}

/// Whether Elasticsearch indexes `v` into a field of type `t` (with its default `coerce`:
/// keyword takes numbers and booleans as text, numeric types take numeric strings).
fn fits(t: &str, v: &Value) -> bool {
    let numeric_str = |v: &Value| v.as_str().is_some_and(|s| s.trim().parse::<f64>().is_ok());
    match t {
        "keyword" | "wildcard" | "constant_keyword" | "text" | "match_only_text" | "" => {
            v.is_string() || v.is_number() || v.is_boolean()
        }
        "long" | "integer" | "short" | "byte" | "float" | "double" | "half_float"
        | "scaled_float" => v.is_number() || numeric_str(v),
        "boolean" => {
            v.is_boolean() || matches!(v.as_str(), Some("true") | Some("false") | Some(""))
        }
        "date" => v.as_str().is_some_and(is_rfc3339) || v.is_i64() || v.is_u64(),
        "ip" => v.as_str().is_some_and(|s| s.parse::<IpAddr>().is_ok()),
        "geo_point" => v.is_object() || v.is_string(),
        "binary" => v.is_string(),
        "object" | "flattened" | "nested" => true,
        _ => false,
    }
}

struct Checker<'a> {
    defs: &'a HashMap<String, Field>,
    /// problem → (count, first capture)
    problems: BTreeMap<String, (usize, String)>,
    fields_seen: std::collections::BTreeSet<String>,
}

impl Checker<'_> {
    fn problem(&mut self, what: String, capture: &str) {
        let e = self
            .problems
            .entry(what)
            .or_insert((0, capture.to_string()));
        e.0 += 1;
    }

    /// The `object`/`flattened` definition covering `path` from above, if any.
    fn covering_object(&self, path: &str) -> Option<&Field> {
        let mut p = path;
        while let Some(i) = p.rfind('.') {
            p = &p[..i];
            if let Some(f) = self.defs.get(p) {
                // `array` without object_type has no mapping: what is under it is mapped
                // dynamically (strings as keyword).
                if matches!(
                    f.type_.as_str(),
                    "object" | "flattened" | "nested" | "array"
                ) {
                    return Some(f);
                }
                if f.type_ != "group" {
                    return None;
                }
            }
        }
        None
    }

    fn check(&mut self, path: &str, v: &Value, capture: &str) {
        if path == "@metadata" || path.starts_with("@metadata.") {
            return;
        }
        match v {
            Value::Null => {}
            Value::Array(items) => {
                for it in items {
                    self.check(path, it, capture);
                }
            }
            Value::Object(m) => {
                if let Some(f) = self.defs.get(path) {
                    if f.type_ == "flattened" || (f.type_ == "array" && f.object_type.is_empty()) {
                        self.fields_seen.insert(path.to_string());
                        return;
                    }
                    if f.type_ == "alias" {
                        self.problem(format!("{path}: an object written to an alias"), capture);
                        return;
                    }
                }
                for (k, child) in m {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    self.check(&p, child, capture);
                }
            }
            scalar => {
                self.fields_seen.insert(path.to_string());
                match self.defs.get(path) {
                    Some(f) if f.type_ == "group" => {
                        self.problem(format!("{path}: a value where a group is defined"), capture)
                    }
                    Some(f) if f.type_ == "alias" => self.problem(
                        format!("{path}: written to an alias of {}", f.alias_path),
                        capture,
                    ),
                    Some(f) => {
                        let t = if f.type_ == "array" {
                            f.object_type.as_str()
                        } else {
                            f.type_.as_str()
                        };
                        if !fits(t, scalar) {
                            self.problem(
                                format!("{path}: {} does not fit type '{t}'", short(scalar)),
                                capture,
                            );
                        }
                    }
                    None => match self.covering_object(path).cloned() {
                        Some(o) => {
                            let t = o.object_type.as_str();
                            if !t.is_empty() && !fits(t, scalar) {
                                self.problem(
                                    format!(
                                        "{path}: {} does not fit '{}' object_type '{t}'",
                                        short(scalar),
                                        o.name
                                    ),
                                    capture,
                                );
                            }
                        }
                        None => self.problem(format!("{path}: not defined in fields/"), capture),
                    },
                }
            }
        }
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 60 {
        format!(
            "{}…",
            &s[..s.char_indices().nth(60).map(|(i, _)| i).unwrap_or(s.len())]
        )
    } else {
        s
    }
}

/// (capture, its events, exit status, stderr)
type CaptureRun = (String, Vec<Value>, i32, String);

#[test]
fn every_emitted_field_is_defined_with_a_fitting_type() {
    let Some(captures) = captures_or_skip() else {
        return;
    };
    let defs = definitions();
    let jobs: Vec<(PathBuf, &str)> = captures
        .iter()
        .flat_map(|c| [(c.clone(), ALL), (c.clone(), HEADERS)])
        .collect();
    let next = Mutex::new(0usize);
    let results: Mutex<Vec<CaptureRun>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let i = {
                    let mut n = next.lock().unwrap();
                    *n += 1;
                    *n - 1
                };
                let Some((pcap, cfg)) = jobs.get(i) else {
                    break;
                };
                let run = run_capture(pcap, &format!("{cfg}\n{SHUTDOWN}"), &[]);
                let name = pcap
                    .strip_prefix(common::shared("pcaps").unwrap())
                    .unwrap_or(pcap)
                    .display()
                    .to_string();
                results
                    .lock()
                    .unwrap()
                    .push((name, run.events, run.status, run.stderr));
            });
        }
    });
    let results = results.into_inner().unwrap();
    let mut checker = Checker {
        defs: &defs,
        problems: BTreeMap::new(),
        fields_seen: Default::default(),
    };
    let mut events = 0usize;
    let mut failed_runs = Vec::new();
    for (name, evs, status, stderr) in &results {
        if *status != 0 {
            failed_runs.push(format!(
                "{name}: exit {status}: {}",
                stderr.lines().last().unwrap_or("")
            ));
        }
        for e in evs {
            events += 1;
            checker.check("", e, name);
        }
    }
    eprintln!(
        "{} runs, {events} events, {} distinct fields",
        results.len(),
        checker.fields_seen.len()
    );
    assert!(
        failed_runs.is_empty(),
        "runs failed:\n{}",
        failed_runs.join("\n")
    );
    assert!(
        events > 500,
        "only {events} events: the captures did not run"
    );
    // Every field a dashboard aggregates or filters on is defined with an aggregatable type and
    // appears in these events (else its panel is empty on the shared captures).
    let mut dash_problems = Vec::new();
    for (id, text) in packetbeat::setup::kibana::DASHBOARDS {
        for obj in packetbeat::setup::kibana::objects(text).unwrap() {
            for f in packetbeat::setup::kibana::fields_used(&obj) {
                let def = defs.get(&f);
                let aggregatable = def.is_some_and(|d| {
                    !matches!(
                        d.type_.as_str(),
                        "text" | "match_only_text" | "group" | "object" | "alias" | "flattened"
                    )
                });
                if !aggregatable {
                    dash_problems
                        .push(format!("{id}: {f} is not an aggregatable field of fields/"));
                } else if !checker.fields_seen.contains(&f) {
                    dash_problems.push(format!("{id}: {f} appears in no event of the captures"));
                }
            }
        }
    }
    dash_problems.sort();
    dash_problems.dedup();
    assert!(
        dash_problems.is_empty(),
        "dashboard fields:\n{}",
        dash_problems.join("\n")
    );
    let report: Vec<String> = checker
        .problems
        .iter()
        .map(|(p, (n, c))| format!("{p}  ({n}×, first in {c})"))
        .collect();
    assert!(
        report.is_empty(),
        "{} field problem(s):\n{}",
        report.len(),
        report.join("\n")
    );
}

/// The checker itself: what it must flag and what it must accept.
#[test]
fn checker_flags_undefined_and_misfit_fields() {
    let defs = definitions();
    let mut c = Checker {
        defs: &defs,
        problems: BTreeMap::new(),
        fields_seen: Default::default(),
    };
    let ok = serde_json::json!({
        "@timestamp": "2024-01-02T03:04:05.678Z",
        "@metadata": {"anything": 1},
        "source": {"ip": "10.0.0.1", "port": 80},
        "http": {"request": {"headers": {"host": "x"}}, "response": {"status_code": 200}},
        "fields": {"team": "a"},
        "tls": {"detailed": {"server_certificate_chain": [{"subject": {"common_name": "c"}}]}},
        "sip": {"code": 200},
    });
    c.check("", &ok, "ok");
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    let bad = serde_json::json!({
        "source": {"ip": "not-an-ip", "port": "eighty"},
        "nosuch": {"field": 1},
        "http": 3,
        "event": {"duration": true},
        "dns": {"flags": {"authoritative": "maybe"}},
    });
    c.check("", &bad, "bad");
    let got: Vec<&str> = c
        .problems
        .keys()
        .map(|k| k.split(':').next().unwrap())
        .collect();
    assert_eq!(
        got,
        [
            "dns.flags.authoritative",
            "event.duration",
            "http",
            "nosuch.field",
            "source.ip",
            "source.port"
        ],
        "{:?}",
        c.problems
    );
}
