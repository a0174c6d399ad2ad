//! The Cassandra analyzer against the reference Packetbeat's events, re-paired.
//!
//! Packetbeat pairs a connection's responses with its requests in arrival order; a response
//! answers the request of its stream id, and this analyzer pairs them so
//! (tests/golden/deliberate.json). Its reference events are therefore made of the right request
//! halves and response halves, joined wrongly where the server answered out of order. This
//! test joins them again by stream id (the request half of one reference event with the
//! response half whose stream id matches) and expects our events to equal those exactly, but
//! for what follows from the pairing or is deliberate:
//! - `event.duration`: the reference has the response's time only to the millisecond;
//! - `cassandra.response.result.rows.num_rows`: ours is the frame's row count;
//! - `status`: `Error` for an ERROR response.

mod common;
use common::*;
use serde_json::{Map, Value};

type Event = Map<String, Value>;

const CAPTURES: &[&str] = &[
    "compressed",
    "create_index",
    "create_keyspace",
    "create_table",
    "insert",
    "mixed_frame",
    "select",
    "select_via_index",
    "trace_err",
];

fn is_response_side(k: &str) -> bool {
    k.starts_with("cassandra.response.") || k == "destination.bytes" || k == "server.bytes"
}

/// Milliseconds since the epoch of a golden `@timestamp` (`2016-06-28T09:33:33.324Z`).
fn millis(ts: &str) -> i64 {
    let d = |r: std::ops::Range<usize>| ts[r].parse::<i64>().unwrap();
    let (y, m, day) = (d(0..4), d(5..7), d(8..10));
    // Days from the civil date (Howard Hinnant's algorithm).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    let secs = days * 86400 + d(11..13) * 3600 + d(14..16) * 60 + d(17..19);
    secs * 1000 + d(20..23)
}

fn int(e: &Event, k: &str) -> Option<i64> {
    e.get(k).and_then(Value::as_i64)
}

/// The reference's cassandra events joined again by stream id, with the response's time in
/// milliseconds.
fn repaired(reference: &[Event]) -> Vec<(Event, Option<i64>)> {
    let conn = |e: &Event| (e.get("client.ip").cloned(), e.get("client.port").cloned());
    let mut halves: Vec<(Event, i64, bool)> = reference
        .iter()
        .map(|e| {
            let resp: Event = e
                .iter()
                .filter(|(k, _)| is_response_side(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let at = millis(e["@timestamp"].as_str().unwrap())
                + int(e, "event.duration").unwrap_or(0) / 1_000_000;
            (resp, at, false)
        })
        .collect();
    let mut out = Vec::new();
    for e in reference {
        let Some(stream) = int(e, "cassandra.request.headers.stream") else {
            out.push((e.clone(), None));
            continue;
        };
        let found = halves.iter_mut().enumerate().find(|(j, (h, _, used))| {
            !used
                && conn(&reference[*j]) == conn(e)
                && int(h, "cassandra.response.headers.stream") == Some(stream)
        });
        let (_, (resp, at, used)) = found.expect("a response with the request's stream id");
        *used = true;
        let mut x: Event = e
            .iter()
            .filter(|(k, _)| !is_response_side(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        x.extend(resp.clone());
        let bytes =
            int(&x, "source.bytes").unwrap_or(0) + int(&x, "destination.bytes").unwrap_or(0);
        x.insert("network.bytes".into(), bytes.into());
        out.push((x, Some(*at)));
    }
    out
}

#[test]
fn events_equal_the_reference_joined_by_stream_id() {
    let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let Some(pcaps) = shared_or_skip("pcaps/cassandra/v4") else {
        return;
    };
    let matrix: Value =
        serde_json::from_str(&std::fs::read_to_string(golden.join("matrix.json")).unwrap())
            .unwrap();
    let common_yaml = matrix["common_yaml"].as_str().unwrap();
    let mut checked = 0;
    for config in ["default", "cassandra_options"] {
        let yaml = format!(
            "{}\n{common_yaml}\n",
            matrix["configs"][config]["yaml"].as_str().unwrap()
        );
        for capture in CAPTURES {
            let file = golden.join(format!(
                "events/{config}/cassandra__v4__cassandra_{capture}.ndjson"
            ));
            let reference: Vec<Event> = std::fs::read_to_string(&file)
                .unwrap()
                .lines()
                .map(|l| flatten(&serde_json::from_str(l).unwrap()))
                .filter(|e| e.get("type") == Some(&Value::from("cassandra")))
                .collect();
            let run = run_capture(&pcaps.join(format!("cassandra_{capture}.pcap")), &yaml, &[]);
            assert_eq!(run.status, 0, "{}", run.stderr);
            let ours: Vec<Event> = run
                .events
                .iter()
                .map(flatten)
                .filter(|e| e.get("type") == Some(&Value::from("cassandra")))
                .collect();
            let label = format!("{config}/{capture}");
            assert_eq!(ours.len(), reference.len(), "{label}: event count");
            for (mut want, resp_at) in repaired(&reference) {
                let key = |e: &Event| {
                    (
                        e.get("client.port").cloned(),
                        e.get("cassandra.request.headers.stream").cloned(),
                        e.get("@timestamp").cloned(),
                    )
                };
                let got = ours
                    .iter()
                    .find(|o| key(o) == key(&want))
                    .unwrap_or_else(|| panic!("{label}: no event for {:?}", key(&want)));
                let mut got = got.clone();
                for k in [
                    "agent.ephemeral_id",
                    "agent.id",
                    "agent.name",
                    "agent.version",
                ] {
                    got.remove(k);
                    want.remove(k);
                }
                got.retain(|k, _| !k.starts_with("host.") && !k.starts_with("ecs."));
                want.retain(|k, _| !k.starts_with("host.") && !k.starts_with("ecs."));
                for k in [
                    "@metadata.version",
                    "event.start",
                    "event.end",
                    "network.direction",
                ] {
                    got.remove(k);
                    want.remove(k);
                }
                // The response's time is known to the millisecond.
                if let (Some(at), Some(d)) = (resp_at, int(&got, "event.duration")) {
                    let start = millis(got["@timestamp"].as_str().unwrap());
                    let end = start + d / 1_000_000;
                    assert!(
                        (end - at).abs() <= 1,
                        "{label}: duration {d} vs response at {at}"
                    );
                    got.remove("event.duration");
                    want.remove("event.duration");
                }
                if let Some(n) = want.remove("cassandra.response.result.rows.num_rows") {
                    let ours = got.remove("cassandra.response.result.rows.num_rows");
                    let ours = ours.and_then(|v| v.as_i64()).expect("num_rows");
                    // The reference's are bytes of a column name; ours a real count.
                    assert!(
                        (0..10_000).contains(&ours),
                        "{label}: num_rows {ours} (ref {n})"
                    );
                }
                if want.get("cassandra.response.headers.op") == Some(&Value::from("ERROR")) {
                    assert_eq!(got.remove("status"), Some(Value::from("Error")), "{label}");
                    want.remove("status");
                }
                assert_eq!(got, want, "{label}");
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 98, "reference cassandra events checked");
}
