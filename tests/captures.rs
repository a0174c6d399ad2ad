//! End to end: the binary on every capture in ../shared/pcaps, and event contents checked
//! against what the captures hold (read independently of the analyzers under test).

mod common;
use common::*;
use packetbeat::decoder::{Decoder, L4};
use packetbeat::sniffer::file::FileSource;
use serde_json::Value;
use std::path::Path;

#[test]
fn every_capture_runs_to_completion() {
    let Some(captures) = captures_or_skip() else {
        return;
    };
    let mut total_events = 0;
    for pcap in &captures {
        let run = run_capture(pcap, ALL_PROTOCOLS, &[]);
        assert_eq!(
            run.status,
            0,
            "{}: exit {}\n{}",
            pcap.display(),
            run.status,
            run.stderr
        );
        assert!(
            !run.stderr.contains("panicked"),
            "{}: {}",
            pcap.display(),
            run.stderr
        );
        for e in &run.events {
            assert!(
                e.get("@timestamp").and_then(Value::as_str).is_some(),
                "{}: {e}",
                pcap.display()
            );
            assert!(
                e.get("type").and_then(Value::as_str).is_some(),
                "{}: {e}",
                pcap.display()
            );
            assert_eq!(get(e, "agent.type"), Some(&Value::from("packetbeat")));
        }
        total_events += run.events.len();
    }
    eprintln!("{} captures, {} events", captures.len(), total_events);
    assert!(total_events > 0);
}

/// Request lines (method, path) sent to `port`, read straight from the capture: the first bytes of
/// client→server TCP payloads that start a request line.
fn request_lines(pcap: &Path, port: u16) -> Vec<(String, String)> {
    let mut src = FileSource::open(pcap, true, 1).unwrap();
    let mut dec = Decoder::new();
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    while let Some(f) = src.next_frame().unwrap() {
        let Ok(p) = dec.decode(f.link, f.ts, f.data) else {
            continue;
        };
        let L4::Tcp(h, payload) = p.l4 else { continue };
        if h.dst_port != port || payload.is_empty() {
            continue;
        }
        let text = String::from_utf8_lossy(payload);
        let mut parts = text.split(' ');
        let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
            continue;
        };
        if !["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"].contains(&method) {
            continue;
        }
        // Skip retransmissions of the same segment.
        if seen.insert((p.src, h.src_port, h.seq)) {
            out.push((method.to_string(), path.to_string()));
        }
    }
    out
}

#[test]
fn http_minitwit_one_event_per_transaction() {
    let Some(pcap) = shared_or_skip("pcaps/http_minitwit.pcap") else {
        return;
    };
    let cfg = "packetbeat.protocols:\n  - type: http\n    ports: [80]\n";
    let run = run_capture(&pcap, cfg, &[]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    let expected = request_lines(&pcap, 80);
    assert!(!expected.is_empty());
    let got: Vec<(String, String)> = run
        .events
        .iter()
        .filter(|e| get(e, "type") == Some(&Value::from("http")))
        .map(|e| {
            let method = get(e, "http.request.method")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_uppercase();
            let url = get(e, "url.path")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let query = get(e, "url.query")
                .and_then(Value::as_str)
                .map(|q| format!("?{q}"))
                .unwrap_or_default();
            (method, format!("{url}{query}"))
        })
        .collect();
    let mut exp_sorted = expected.clone();
    exp_sorted.sort();
    let mut got_sorted = got.clone();
    got_sorted.sort();
    assert_eq!(
        got_sorted, exp_sorted,
        "events vs request lines in the capture"
    );
    for e in &run.events {
        assert_eq!(get(e, "network.transport"), Some(&Value::from("tcp")));
        assert_eq!(get(e, "server.port"), Some(&Value::from(80)));
        assert!(get(e, "http.response.status_code").is_some(), "{e}");
        assert!(
            get(e, "event.duration")
                .and_then(Value::as_i64)
                .is_some_and(|d| d >= 0),
            "{e}"
        );
        let sb = get(e, "source.bytes").and_then(Value::as_u64).unwrap();
        let db = get(e, "destination.bytes").and_then(Value::as_u64).unwrap();
        assert_eq!(
            get(e, "network.bytes").and_then(Value::as_u64),
            Some(sb + db)
        );
    }
}

/// DNS queries and responses in a capture, read directly: (id, is_response, first question name).
fn dns_messages(pcap: &Path) -> Vec<(u16, bool, String)> {
    let mut src = FileSource::open(pcap, true, 1).unwrap();
    let mut dec = Decoder::new();
    let mut out = Vec::new();
    while let Some(f) = src.next_frame().unwrap() {
        let Ok(p) = dec.decode(f.link, f.ts, f.data) else {
            continue;
        };
        let L4::Udp {
            src_port,
            dst_port,
            payload,
        } = p.l4
        else {
            continue;
        };
        if (src_port != 53 && dst_port != 53) || payload.len() < 12 {
            continue;
        }
        let id = u16::from_be_bytes([payload[0], payload[1]]);
        let qr = payload[2] & 0x80 != 0;
        // First question name (no compression in a question's first name).
        let mut name = Vec::new();
        let mut i = 12;
        while i < payload.len() && payload[i] != 0 && payload[i] < 64 {
            let l = payload[i] as usize;
            name.push(
                String::from_utf8_lossy(&payload[i + 1..(i + 1 + l).min(payload.len())])
                    .to_string(),
            );
            i += 1 + l;
        }
        out.push((id, qr, name.join(".")));
    }
    out
}

#[test]
fn dns_captures_one_event_per_query_response() {
    let Some(dir) = shared_or_skip("pcaps") else {
        return;
    };
    let cfg = "packetbeat.protocols:\n  - type: dns\n    ports: [53]\n";
    let mut checked = 0;
    for name in [
        "dns_google_com",
        "dns_mx",
        "dns_not_found",
        "dns_ns",
        "dns_txt",
        "dns_additional",
        "dns_udp_edns_ds",
    ] {
        let pcap = dir.join(format!("{name}.pcap"));
        let msgs = dns_messages(&pcap);
        let queries: Vec<&(u16, bool, String)> = msgs.iter().filter(|m| !m.1).collect();
        let run = run_capture(&pcap, cfg, &[]);
        assert_eq!(run.status, 0, "{name}: {}", run.stderr);
        let events: Vec<&Value> = run
            .events
            .iter()
            .filter(|e| get(e, "type") == Some(&Value::from("dns")))
            .collect();
        assert_eq!(events.len(), queries.len(), "{name}: one event per query");
        for (q, e) in queries.iter().zip(&events) {
            assert_eq!(
                get(e, "dns.id").and_then(Value::as_u64),
                Some(q.0 as u64),
                "{name}"
            );
            assert_eq!(
                get(e, "dns.question.name").and_then(Value::as_str),
                Some(q.2.as_str()),
                "{name}"
            );
            assert_eq!(
                get(e, "network.transport"),
                Some(&Value::from("udp")),
                "{name}"
            );
            let answered = msgs.iter().any(|m| m.1 && m.0 == q.0);
            if answered {
                assert!(get(e, "dns.response_code").is_some(), "{name}: {e}");
            }
        }
        checked += 1;
    }
    assert_eq!(checked, 7);
}

/// Several workers give the same events as one (as multisets: the order may differ).
#[test]
fn workers_give_the_same_events_as_one_worker() {
    let Some(captures) = captures_or_skip() else {
        return;
    };
    let key = |e: &Value| {
        let mut m = flatten(e);
        for k in ["agent.ephemeral_id", "agent.id"] {
            m.remove(k);
        }
        serde_json::to_string(&m).unwrap()
    };
    let mut total = 0;
    for pcap in &captures {
        let one = run_capture(
            pcap,
            ALL_PROTOCOLS,
            &["-E", "packetbeat.interfaces.workers=1"],
        );
        let three = run_capture(
            pcap,
            ALL_PROTOCOLS,
            &["-E", "packetbeat.interfaces.workers=3"],
        );
        assert_eq!(three.status, 0, "{}: {}", pcap.display(), three.stderr);
        let mut a: Vec<String> = one.events.iter().map(key).collect();
        let mut b: Vec<String> = three.events.iter().map(key).collect();
        a.sort();
        b.sort();
        if a != b {
            let only = |x: &[String], y: &[String]| -> Vec<String> {
                let mut y = y.to_vec();
                x.iter()
                    .filter(|e| match y.iter().position(|f| f == *e) {
                        Some(i) => {
                            y.remove(i);
                            false
                        }
                        None => true,
                    })
                    .map(|e| e.chars().take(400).collect())
                    .collect()
            };
            panic!(
                "{}: 1 worker gave {} events, 3 workers {}\nonly with 1 worker: {:#?}\nonly with 3 workers: {:#?}",
                pcap.display(),
                a.len(),
                b.len(),
                only(&a, &b),
                only(&b, &a)
            );
        }
        total += a.len();
    }
    assert!(total > 0);
}
