//! Packetbeat's golden files (../shared/golden) for the analyzers this build has.

mod common;
use common::*;
use serde_json::{Map, Value};

/// Keys dropped before comparing, as Packetbeat's golden test harness does.
const DROPPED: &[&str] = &[
    "@metadata.version",
    "agent.ephemeral_id",
    "agent.id",
    "agent.name",
    "agent.type",
    "agent.version",
    "ecs.version",
    "event.end",
    "event.start",
    "host.name",
    "@timestamp",
    "network.direction",
    "sip.timestamp",
];

fn normalise(v: &Value) -> Map<String, Value> {
    let mut m = flatten(v);
    for k in DROPPED {
        m.remove(*k);
    }
    m
}

/// Golden harness config: every protocol on Packetbeat's test ports, internal_networks private.
fn golden_config(extra_http: &str) -> String {
    golden_config_tls(extra_http, "")
}

/// The golden config with extra options for the tls section (as golden-tests.yml sets them).
fn golden_config_tls(extra_http: &str, extra_tls: &str) -> String {
    golden_config_all(extra_http, extra_tls, "")
}

/// The golden config with extra options for the http, tls and sip sections.
fn golden_config_all(extra_http: &str, extra_tls: &str, extra_sip: &str) -> String {
    format!(
        r#"
packetbeat.interfaces.internal_networks: [private]
packetbeat.shutdown_timeout: 400ms
tags: []
packetbeat.protocols:
  - type: icmp
    enabled: true
  - type: dhcpv4
    ports: [67, 68]
  - type: dns
    ports: [53]
  - type: http
    ports: [80]
{extra_http}
  - type: tls
    ports: [443]
{extra_tls}
  - type: sip
    ports: [5060]
{extra_sip}
"#
    )
}

/// The deliberate differences (tests/golden/deliberate.json) that apply to a capture: the
/// field and the value this project gives there instead of the golden file's.
fn deliberate_for(pcap: &str) -> Vec<(String, Value)> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/deliberate.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["differences"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| {
            pcap.contains(d["pairs"].as_str().unwrap())
                || d["pairs"].as_str().unwrap().contains(pcap)
        })
        .filter_map(|d| Some((d["field"].as_str()?.to_string(), d.get("ours")?.clone())))
        .collect()
}

fn compare(golden: &str, pcap: &str, cfg: &str) {
    let (Some(golden_path), Some(pcap_path)) = (
        shared_or_skip(&format!("golden/{golden}")),
        shared_or_skip(&format!("pcaps/{pcap}")),
    ) else {
        return;
    };
    let expected: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(golden_path).unwrap()).unwrap();
    let run = run_capture(&pcap_path, cfg, &[]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    let got: Vec<Map<String, Value>> = run.events.iter().map(normalise).collect();
    assert_eq!(
        got.len(),
        expected.len(),
        "event count for {pcap}: got {got:#?}"
    );
    let deliberate = deliberate_for(pcap);
    for exp in &expected {
        let mut exp = normalise(exp);
        for (field, ours) in &deliberate {
            if exp.contains_key(field) {
                exp.insert(field.clone(), ours.clone());
            }
        }
        if !got.iter().any(|g| *g == exp) {
            // Show the closest event's differences.
            let best = got
                .iter()
                .min_by_key(|g| {
                    exp.iter().filter(|(k, v)| g.get(*k) != Some(*v)).count()
                        + g.keys().filter(|k| !exp.contains_key(*k)).count()
                })
                .unwrap();
            let mut diff = Vec::new();
            for (k, v) in &exp {
                if best.get(k) != Some(v) {
                    diff.push(format!("  {k}: expected {v}, got {:?}", best.get(k)));
                }
            }
            for (k, v) in best {
                if !exp.contains_key(k) {
                    diff.push(format!("  {k}: unexpected {v}"));
                }
            }
            panic!(
                "{golden}: no event matches; closest differs in:\n{}",
                diff.join("\n")
            );
        }
    }
}

#[test]
fn http_basic_auth() {
    compare(
        "http_basic_auth-expected.json",
        "http_basicauth.pcap",
        &golden_config("    send_all_headers: true"),
    );
}

#[test]
fn non_established_tls() {
    compare(
        "non_established_tls-expected.json",
        "tls-sample1.pcap",
        &golden_config(""),
    );
}

#[test]
fn established_tls() {
    compare(
        "established_tls-expected.json",
        "tls-sample2.pcap",
        &golden_config(""),
    );
}

#[test]
fn tls_all_options() {
    compare(
        "tls_all_options-expected.json",
        "tls-sample2.pcap",
        &golden_config_tls(
            "",
            "    include_raw_certificates: true\n    fingerprints: [md5, sha1, sha256]",
        ),
    );
}

#[test]
fn tls_not_detailed() {
    compare(
        "tls_not_detailed-expected.json",
        "tls-sample2.pcap",
        &golden_config_tls("", "    include_detailed_fields: false"),
    );
}

#[test]
fn tls_no_certs() {
    compare(
        "tls_no_certs-expected.json",
        "tls-sample2.pcap",
        &golden_config_tls(
            "",
            "    send_certificates: false\n    include_raw_certificates: true",
        ),
    );
}

#[test]
fn tls_1_3() {
    compare(
        "tls_1_3-expected.json",
        "tls-version-13.pcap",
        &golden_config(""),
    );
}

#[test]
fn sip() {
    compare("sip-expected.json", "sip.pcap", &golden_config(""));
}

#[test]
fn sip_authenticated_register() {
    compare(
        "sip_authenticated_register-expected.json",
        "sip_authenticated_register.pcap",
        &golden_config(""),
    );
}

#[test]
fn sip_through_tcp() {
    compare(
        "sip_through_tcp-expected.json",
        "sip_tcp.pcap",
        &golden_config_all("", "", "    transport_protocol: tcp"),
    );
}
