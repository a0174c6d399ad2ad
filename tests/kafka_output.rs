//! `output.kafka` against a real Kafka 4 broker (KRaft, on 127.0.0.1), read back with Kafka's
//! own console consumer: the records are the events `output.file` writes for the same capture,
//! for every compression codec and partitioner, and as `codec.format` lines; headers; a record
//! over `max_message_bytes` is
//! dropped, said and counted; the broker killed mid-run and restarted loses nothing (duplicates
//! at most what was resent); SASL/SCRAM-SHA-512; TLS; no broker until `shutdown_timeout`; the
//! DPDK reference configuration with `-E` overrides only; `topics` rules and format strings in
//! `topic` and `key` sending one run's DNS, HTTP and flow events to their own topics, each
//! record keyed by its event's `source.ip`.

mod common;
mod kafka;
use common::certs::Certs;
use common::*;
use kafka::{libs, Broker};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// One broker JVM at a time: the machine is small.
static BROKERS: Mutex<()> = Mutex::new(());

/// An event without its per-run field, as canonical JSON text (for multiset comparisons).
fn canon(line: &str) -> String {
    without_ephemeral_id(line)
}

fn canon_all<'a>(lines: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    lines.into_iter().map(|l| canon(l)).collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// A record read back: partition, key, value.
struct Rec {
    partition: u32,
    /// `k:v,…`, or `NO_HEADERS`.
    headers: String,
    key: String,
    value: String,
}

fn parse_records(raw: Vec<String>) -> Vec<Rec> {
    raw.into_iter()
        .filter_map(|l| {
            let mut it = l.splitn(4, '\t');
            let p = it.next()?.strip_prefix("Partition:")?.parse().ok()?;
            Some(Rec {
                partition: p,
                headers: it.next()?.to_string(),
                key: it.next()?.to_string(),
                value: it.next()?.to_string(),
            })
        })
        .collect()
}

/// "resent N" from the output's summary line.
fn resent(stderr: &str) -> usize {
    let i = stderr
        .find("kafka output: events acked")
        .unwrap_or_else(|| panic!("no summary line:\n{stderr}"));
    let rest = &stderr[i..];
    let j = rest.find("resent ").unwrap() + "resent ".len();
    rest[j..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// What a broker test needs: the capture `rel` under ../shared, the Kafka jars and the turn to
/// run a broker (one at a time); `None` (a skip, a failure under CI=true) when one is missing.
fn broker_test(rel: &str) -> Option<(PathBuf, PathBuf, MutexGuard<'static, ()>)> {
    let pcap = shared_or_skip(rel)?;
    let libs = libs()?;
    Some((
        pcap,
        libs,
        BROKERS.lock().unwrap_or_else(|e| e.into_inner()),
    ))
}

#[test]
fn every_codec_and_partitioner_delivers_the_file_output_events_and_too_large_ones_are_dropped() {
    let Some((pcap, libs, _one)) = broker_test("pcaps/mongo_3.0_session.pcap") else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let lines = mongodb_file_lines(h, &pcap);
    let expected = canon_all(&lines);
    assert!(expected.len() >= 20, "{}", expected.len());
    let broker = Broker::start(&libs, "");
    let host = format!("127.0.0.1:{}", broker.port);

    let codecs = ["none", "gzip", "snappy", "lz4", "zstd"];
    for codec in codecs {
        let (rc, err) = run_mongodb(
            h,
            &pcap,
            &format!("output.kafka: {{hosts: ['{host}'], topic: pb-codecs, key: {codec}, compression: {codec}, bulk_max_size: 7}}"),
            true,
        );
        assert_eq!(rc, 0, "{codec}: {err}");
        assert!(err.contains("events acked"), "{err}");
    }
    let partitioners = [
        ("random", "{random: {}}"),
        ("round_robin", "{round_robin: {}}"),
        ("hash", "{hash: {hash: [source.port]}}"),
    ];
    for (name, p) in partitioners {
        let (rc, err) = run_mongodb(
            h,
            &pcap,
            &format!("output.kafka: {{hosts: ['{host}'], topic: pb-parts, key: {name}, partition: {p}, bulk_max_size: 5}}"),
            true,
        );
        assert_eq!(rc, 0, "{name}: {err}");
    }
    // Records over the median size (as sarama counts them: the event, the key, 36 bytes) are
    // dropped; the others arrive.
    let mut lens: Vec<usize> = lines.iter().map(|l| l.len()).collect();
    lens.sort_unstable();
    // A header adds its key, its value and 10 bytes.
    let extra = "big".len() + 36 + "h1".len() + "v1".len() + 10;
    let limit = lens[lens.len() / 2] + extra;
    let kept: Vec<String> = lines
        .iter()
        .filter(|l| l.len() + extra <= limit)
        .map(|l| canon(l))
        .collect();
    let too_large = lines.len() - kept.len();
    assert!(
        too_large > 0 && !kept.is_empty(),
        "{too_large} of {}",
        lines.len()
    );
    let (rc, err) = run_mongodb(
        h,
        &pcap,
        &format!("output.kafka: {{hosts: ['{host}'], topic: pb-big, key: big, headers: [{{key: h1, value: v1}}], max_message_bytes: {limit}}}"),
        true,
    );
    assert_eq!(rc, 0, "{err}");
    assert_eq!(
        err.matches("dropping too large message of size").count(),
        too_large,
        "{err}"
    );
    assert!(err.contains(&format!("dropped {too_large};")), "{err}");
    // codec.format: each record's value is the event's formatted line, with the key of its
    // own format string (the event read once for both).
    let (rc, err) = run_mongodb(
        h,
        &pcap,
        &format!("output.kafka: {{hosts: ['{host}'], topic: pb-format, key: 'format-%{{[type]}}', codec.format.string: '%{{[@timestamp]}} %{{[type]}} %{{[source.ip]}}:%{{[source.port]}}'}}"),
        true,
    );
    assert_eq!(rc, 0, "{err}");
    let formatted: Vec<String> = lines
        .iter()
        .map(|l| {
            let e: Value = serde_json::from_str(l).unwrap();
            let s = |v: &Value| v.as_str().unwrap().to_string();
            format!(
                "{} {} {}:{}",
                s(&e["@timestamp"]),
                s(&e["type"]),
                s(&e["source"]["ip"]),
                e["source"]["port"]
            )
        })
        .collect();

    let n = expected.len() * (codecs.len() + partitioners.len() + 1) + kept.len();
    let recs = parse_records(broker.consume("pb-.*", n, ""));
    assert_eq!(recs.len(), n, "records read back");
    let mut by_key: BTreeMap<&str, Vec<&Rec>> = BTreeMap::new();
    for r in &recs {
        by_key.entry(r.key.as_str()).or_default().push(r);
    }
    for codec in codecs {
        // A fixed key hashes to one partition: the events arrive in order.
        let got: Vec<String> = by_key[codec].iter().map(|r| canon(&r.value)).collect();
        assert_eq!(got, expected, "compression {codec}");
    }
    for (name, _) in partitioners {
        let rs = &by_key[name];
        let got = sorted(rs.iter().map(|r| canon(&r.value)).collect());
        assert_eq!(got, sorted(expected.clone()), "partitioner {name}");
        let used: BTreeSet<u32> = rs.iter().map(|r| r.partition).collect();
        match name {
            "round_robin" => assert_eq!(used.len(), 3, "round_robin used {used:?}"),
            "random" => assert!(used.len() >= 2, "random used {used:?}"),
            _ => {
                // One partition per source.port.
                let mut by_port: BTreeMap<String, BTreeSet<u32>> = BTreeMap::new();
                for r in rs.iter() {
                    let v: Value = serde_json::from_str(&r.value).unwrap();
                    by_port
                        .entry(v["source"]["port"].to_string())
                        .or_default()
                        .insert(r.partition);
                }
                assert!(by_port.values().all(|s| s.len() == 1), "{by_port:?}");
            }
        }
    }
    let got: Vec<String> = by_key["big"].iter().map(|r| canon(&r.value)).collect();
    assert!(by_key["big"].iter().all(|r| r.headers == "h1:v1"));
    assert!(by_key["gzip"].iter().all(|r| r.headers == "NO_HEADERS"));
    assert_eq!(got, kept, "events under max_message_bytes");
    let got: Vec<&str> = by_key["format-mongodb"]
        .iter()
        .map(|r| r.value.as_str())
        .collect();
    assert_eq!(got, formatted, "codec.format");
}

/// The Ethernet captures `srcs` under ../shared/pcaps one after the other in `dst`, each moved
/// in time to start a second after the previous one ends (so no connection spans two).
fn concat_captures(srcs: &[&Path], dst: &Path) {
    let u32le = |b: &[u8]| u32::from_le_bytes(b[..4].try_into().unwrap());
    let mut out = Vec::new();
    let mut next_start: Option<u64> = None;
    for src in srcs {
        let d = std::fs::read(src).unwrap();
        assert_eq!(
            u32le(&d[20..24]),
            1,
            "{}: Ethernet capture expected",
            src.display()
        );
        if out.is_empty() {
            out.extend_from_slice(&d[..24]);
        }
        let mut off = 24;
        let mut shift: Option<i64> = None;
        let mut last = 0u64;
        while off + 16 <= d.len() {
            let us = u32le(&d[off..]) as u64 * 1_000_000 + u32le(&d[off + 4..]) as u64;
            let len = u32le(&d[off + 8..]) as usize;
            let shift = *shift.get_or_insert(next_start.map_or(0, |n| n as i64 - us as i64));
            let t = (us as i64 + shift) as u64;
            out.extend_from_slice(&((t / 1_000_000) as u32).to_le_bytes());
            out.extend_from_slice(&((t % 1_000_000) as u32).to_le_bytes());
            out.extend_from_slice(&d[off + 8..off + 16 + len]);
            last = t;
            off += 16 + len;
        }
        next_start = Some(last + 1_000_000);
    }
    std::fs::write(dst, out).unwrap();
}

/// One run of `pcap` with the DNS and HTTP analyzers and flows, and `output`.
fn run_mixed(home: &Path, pcap: &Path, output: &str) -> (i32, String) {
    let protocols = "packetbeat.protocols:\n- type: dns\n  ports: [53]\n- type: http\n  ports: [80]\n\
                     packetbeat.flows: {timeout: 30s, period: 10s}\n";
    let (rc, _, err) = run_to_end(packetbeat_on(home, pcap, protocols, output, true));
    (rc, err)
}

#[test]
fn topic_rules_and_format_strings_route_each_event_to_its_topic_with_its_key() {
    let Some((first, libs, _one)) = broker_test("pcaps/http_basicauth.pcap") else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    // DNS and HTTP transactions from several captures, and the flows of all of them.
    let shared = first.parent().unwrap();
    let pcap = h.join("mixed.pcap");
    let srcs: Vec<PathBuf> = [
        "http_basicauth.pcap",
        "dns_google_com.pcap",
        "dns_mx.pcap",
        "dns_not_found.pcap",
        "http_post.pcap",
        "http_url_params.pcap",
    ]
    .iter()
    .map(|f| shared.join(f))
    .collect();
    concat_captures(
        &srcs.iter().map(PathBuf::as_path).collect::<Vec<_>>(),
        &pcap,
    );
    let out = h.join("file-out");
    let (rc, err) = run_mixed(
        h,
        &pcap,
        &format!("output.file: {{path: {}}}", out.display()),
    );
    assert_eq!(rc, 0, "{err}");
    let mut lines = Vec::new();
    for f in std::fs::read_dir(&out).unwrap().flatten() {
        lines.extend(
            std::fs::read_to_string(f.path())
                .unwrap()
                .lines()
                .map(str::to_string),
        );
    }
    let type_of = |l: &str| -> String {
        let v: Value = serde_json::from_str(l).unwrap();
        v["type"].as_str().unwrap_or_default().to_string()
    };
    // The events each topic should hold, canonical.
    let mut want: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for l in &lines {
        let topic = match type_of(l).as_str() {
            "dns" => "pb-dns",
            "http" => "pb-http",
            _ => "pb-rest",
        };
        want.entry(topic).or_default().push(canon(l));
    }
    for t in ["pb-dns", "pb-http", "pb-rest"] {
        assert!(
            want.get(t).is_some_and(|v| v.len() >= 3),
            "{t}: {:?}",
            want.get(t).map(Vec::len)
        );
    }
    let broker = Broker::start(&libs, "");
    let host = format!("127.0.0.1:{}", broker.port);

    // Rules first (DNS to a fixed topic, HTTP to one named from the event), then `topic` for
    // the rest; every record keyed by its event's source address.
    let (rc, err) = run_mixed(
        h,
        &pcap,
        &format!(
            "output.kafka:\n  hosts: ['{host}']\n  topic: pb-rest\n  key: '%{{[source.ip]}}'\n  \
             bulk_max_size: 4\n  topics:\n  - topic: pb-dns\n    when.equals:\n      type: dns\n  \
             - topic: 'pb-%{{[network.protocol]}}'\n    when.equals.type: http\n"
        ),
    );
    assert_eq!(rc, 0, "{err}");
    assert!(
        err.contains(&format!("events acked {},", lines.len())),
        "{err}"
    );
    assert!(!err.contains("Dropping event"), "{err}");
    for (topic, events) in &want {
        let recs = parse_records(broker.consume(topic, events.len(), ""));
        let got = sorted(recs.iter().map(|r| canon(&r.value)).collect());
        assert_eq!(got, sorted(events.clone()), "topic {topic}");
        // The key is the event's source.ip; the hash partitioner puts one key in one partition.
        let mut parts: BTreeMap<&str, BTreeSet<u32>> = BTreeMap::new();
        for r in &recs {
            let v: Value = serde_json::from_str(&r.value).unwrap();
            let ip = v["source"]["ip"].as_str().unwrap_or("null");
            assert_eq!(r.key, ip, "topic {topic}: {}", r.value);
            parts.entry(&r.key).or_default().insert(r.partition);
        }
        assert!(parts.values().all(|p| p.len() == 1), "{topic}: {parts:?}");
    }

    // Rules only: events no rule names a topic for are dropped, said and counted, as libbeat.
    let dns = want["pb-dns"].len();
    let others = lines.len() - dns;
    let (rc, err) = run_mixed(
        h,
        &pcap,
        &format!(
            "output.kafka:\n  hosts: ['{host}']\n  topics:\n  - topic: pb-only-dns\n    \
             when.equals.type: dns\n"
        ),
    );
    assert_eq!(rc, 0, "{err}");
    assert_eq!(
        err.matches("Dropping event: no topic could be selected")
            .count(),
        others,
        "{err}"
    );
    assert!(err.contains(&format!("dropped {others};")), "{err}");
    let recs = parse_records(broker.consume("pb-only-dns", dns, ""));
    let got = sorted(recs.iter().map(|r| canon(&r.value)).collect());
    assert_eq!(got, sorted(want["pb-dns"].clone()));
    assert!(recs.iter().all(|r| r.key == "null"), "no key configured");
}

#[test]
fn the_broker_killed_mid_run_and_restarted_loses_nothing() {
    let Some((src, libs, _one)) = broker_test("pcaps/mongodb_op_msg_opcode.pcap") else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let h = home.path().to_path_buf();
    // 4 × 101 events over about 16 s: 256 reach the output about 11 s in, the rest at the end.
    let pcap = h.join("four-sessions.pcap");
    stretched_copies(&src, &pcap, 4, 4.0, 0.3);
    let expected = canon_all(&mongodb_file_lines(&h, &pcap));
    assert!(expected.len() >= 300, "{}", expected.len());
    let broker = std::cell::RefCell::new(Broker::start(&libs, ""));
    let host = format!("127.0.0.1:{}", broker.borrow().port);
    // The broker dies as soon as the first events are in the topic.
    let err = outage_mid_run(
        &h,
        &pcap,
        format!("output.kafka: {{hosts: ['{host}'], topic: pb-outage, bulk_max_size: 16, timeout: 5s, backoff: {{init: 200ms, max: 1s}}}}"),
        || broker.borrow().stored_bytes("pb-outage") > 0,
        || broker.borrow_mut().kill(),
        || broker.borrow_mut().run(),
    );
    assert!(
        err.contains("will be resent") || err.contains("Kafka connect fails"),
        "the outage was not seen:\n{err}"
    );
    let resent = resent(&err);
    let recs = parse_records(broker.borrow().consume("pb-outage", expected.len() + resent, ""));
    assert_at_least_once(recs.iter().map(|r| canon(&r.value)).collect(), expected, resent);
}

/// One run of the MongoDB capture to a broker with `listener` (`SASL_PLAINTEXT`, `SSL`) and
/// `props`, with `output` added to the output's options; the records, read back by a consumer
/// with `consumer_props`, are the events `output.file` writes, in order.
fn secured_run(listener: &str, props: &str, output: &str, consumer_props: &str) {
    let Some((pcap, libs, _one)) = broker_test("pcaps/mongo_3.0_session.pcap") else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let expected = canon_all(&mongodb_file_lines(h, &pcap));
    let broker = Broker::start(
        &libs,
        &format!(
            "listeners={listener}://127.0.0.1:{{port}},CONTROLLER://127.0.0.1:{{cport}}\n\
             advertised.listeners={listener}://127.0.0.1:{{port}}\n\
             listener.security.protocol.map=CONTROLLER:PLAINTEXT,{listener}:{listener}\n\
             inter.broker.listener.name={listener}\n{props}"
        ),
    );
    let (rc, err) = run_mongodb(
        h,
        &pcap,
        &format!(
            "output.kafka: {{hosts: ['127.0.0.1:{}'], topic: pb-secured, key: k, {output}}}",
            broker.port
        ),
        true,
    );
    assert_eq!(rc, 0, "{err}");
    let recs = parse_records(broker.consume("pb-secured", expected.len(), consumer_props));
    let got: Vec<String> = recs.iter().map(|r| canon(&r.value)).collect();
    assert_eq!(got, expected);
}

#[test]
fn sasl_scram_sha_512() {
    let jaas = r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="admin-secret";"#;
    secured_run(
        "SASL_PLAINTEXT",
        &format!(
            "sasl.enabled.mechanisms=SCRAM-SHA-512\n\
             sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512\n\
             listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config={jaas}\n\
             # scram=admin:admin-secret\n"
        ),
        "username: admin, password: admin-secret, sasl: {mechanism: SCRAM-SHA-512}",
        &format!("security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-512\nsasl.jaas.config={jaas}\n"),
    );
}

#[test]
fn tls_with_the_ca_checked() {
    let certs = Certs::new();
    // Kafka's PEM key store: the (PKCS#8, unencrypted) key, then the certificate chain.
    let keystore = certs.p("keystore.pem");
    std::fs::write(
        &keystore,
        std::fs::read_to_string(certs.p("server.key")).unwrap()
            + &std::fs::read_to_string(certs.p("server.pem")).unwrap(),
    )
    .unwrap();
    let ca = certs.p("ca.pem");
    secured_run(
        "SSL",
        &format!(
            "ssl.keystore.type=PEM\nssl.keystore.location={keystore}\n\
             ssl.truststore.type=PEM\nssl.truststore.location={ca}\n"
        ),
        &format!("compression: lz4, ssl: {{certificate_authorities: ['{ca}']}}"),
        &format!("security.protocol=SSL\nssl.truststore.type=PEM\nssl.truststore.location={ca}\n"),
    );
}

#[test]
fn no_broker_holds_the_run_until_shutdown_timeout_then_counts_what_is_left() {
    let Some(pcap) = shared_or_skip("pcaps/mongo_3.0_session.pcap") else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let n = mongodb_file_lines(h, &pcap).len();
    let t0 = std::time::Instant::now();
    let (rc, err) = run_mongodb(
        h,
        &pcap,
        "packetbeat.shutdown_timeout: 2s\noutput.kafka: {hosts: ['127.0.0.1:1'], topic: t, timeout: 1s, backoff: {init: 100ms, max: 200ms}}",
        true,
    );
    assert_eq!(rc, 0, "{err}");
    assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());
    assert!(err.contains("Kafka connect fails"), "{err}");
    assert!(
        err.contains(&format!(
            "{n} events were not delivered before shutdown_timeout"
        )),
        "{err}"
    );
}

/// The DPDK reference configuration (which ships to Kafka) runs unchanged but for `-E`
/// overrides: the broker, the DPDK port ending when idle, the data path, and the metadata
/// processors' endpoints (kept off the network).
#[cfg(feature = "dpdk")]
#[test]
fn the_dpdk_reference_config_ships_its_events_to_the_broker() {
    let Some(cfg) = shared_or_skip("reference/packetbeat/packetbeat.dpdk.yml") else {
        return;
    };
    let Some((pcap, libs, _one)) = broker_test("pcaps/http_post.pcap") else {
        return;
    };
    // The HTTP events `-I` gives for the capture with the reference config's HTTP ports.
    let want: Vec<String> = run_capture(
        &pcap,
        "packetbeat.protocols:\n- type: http\n  ports: [80, 5601, 9200, 8080, 8081, 5000, 8002]",
        &[],
    )
    .events
    .iter()
    .map(|e| without_agent_id(&canon(&e.to_string())))
    .collect();
    assert!(!want.is_empty());
    let broker = Broker::start(&libs, "");
    let data = tempfile::tempdir().unwrap();
    let prefix = format!("pbkafka{}", std::process::id());
    let o = common::output_within(
        &mut std::process::Command::new(env!("CARGO_BIN_EXE_packetbeat"))
            .arg("-e")
            .arg("-c")
            .arg(&cfg)
            .arg("--strict.perms=false")
            .arg("-E")
            .arg(format!("output.kafka.hosts=[\"127.0.0.1:{}\"]", broker.port))
            .args(["-E", "packetbeat.interfaces.dpdk.exit_when_idle=1s"])
            .arg("-E")
            .arg(format!("path.data={}", data.path().display()))
            .args(["-E", "processors.0.add_cloud_metadata.host=127.0.0.1:1"])
            .args([
                "-E",
                "processors.1.add_docker_metadata.host=unix:///nonexistent.sock",
            ])
            .args(["--dpdk_status", "enable", "--dpdk_port", "0", "--dpdk_args"])
            .arg(format!(
                "--no-huge --no-pci -m 256 --log-level=lib.eal:warning --file-prefix {prefix} --vdev net_pcap0,rx_pcap={}",
                pcap.display()
            )),
        common::PROGRAM_LIMIT,
    );
    let _ = std::fs::remove_dir_all(Path::new("/var/run/dpdk").join(&prefix));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("output: kafka"), "{err}");
    let acked = err
        .split("kafka output: events acked ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or_else(|| panic!("no summary:\n{err}"));
    // The topic (`beats`) holds every event: the HTTP transactions and the flows.
    let recs = parse_records(broker.consume("beats", acked, ""));
    assert_eq!(recs.len(), acked);
    let http: Vec<String> = recs
        .iter()
        .filter(|r| r.value.contains(r#""type":"http""#))
        .map(|r| without_agent_id(&canon(&r.value)))
        .collect();
    assert_eq!(http, want);
}

/// `agent.id` lives in `path.data`, which differs between the two runs.
#[cfg(feature = "dpdk")]
fn without_agent_id(json: &str) -> String {
    let mut e: Value = serde_json::from_str(json).unwrap();
    e["agent"].as_object_mut().unwrap().remove("id");
    e.to_string()
}

/// Not a test: `scripts/bench-outputs` runs it (`--ignored`) for a broker to measure
/// output.kafka against. It writes the broker's `host:port` to `$PB_KAFKA_BENCH_DIR/endpoint`
/// and serves until `$PB_KAFKA_BENCH_DIR/stop` exists.
#[test]
#[ignore]
fn broker_for_the_outputs_benchmark() {
    let Ok(dir) = std::env::var("PB_KAFKA_BENCH_DIR") else {
        return;
    };
    let dir = PathBuf::from(dir);
    let libs = libs().expect("the Kafka jars (scripts/install-deps)");
    let broker = Broker::start(&libs, "");
    std::fs::write(
        dir.join("endpoint.tmp"),
        format!("127.0.0.1:{}\n", broker.port),
    )
    .unwrap();
    std::fs::rename(dir.join("endpoint.tmp"), dir.join("endpoint")).unwrap();
    while !dir.join("stop").exists() {
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(broker);
}

/// Every capture of ../shared/pcaps, with every analyzer and flows, each with the next
/// compression codec and partitioner in turn and keyed by its index: the records of each key
/// are exactly the events `output.file` writes for that capture.
#[test]
fn every_shared_capture_arrives_as_output_file_writes_it() {
    let Some((_, libs, _one)) = broker_test("pcaps/mongo_3.0_session.pcap") else {
        return;
    };
    let codecs = ["none", "gzip", "snappy", "lz4", "zstd"];
    let partitioners = ["{random: {}}", "{round_robin: {}}", "{hash: {}}"];
    // The captures' own times become the records' timestamps: from 2006 to 2073. The broker
    // keeps them whatever their age (no retention) and takes those ahead of its clock (Kafka 4
    // refuses records more than an hour in the future by default).
    let broker = Broker::start(
        &libs,
        "log.retention.ms=-1\nlog.message.timestamp.after.max.ms=9223372036854775807",
    );
    let host = format!("127.0.0.1:{}", broker.port);
    let home = tempfile::tempdir().unwrap();
    let mut want: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut total = 0;
    let captures = all_captures();
    assert!(captures.len() > 100, "{}", captures.len());
    for (i, pcap) in captures.iter().enumerate() {
        let key = format!("c{i}");
        let h = home.path().join(&key);
        std::fs::create_dir_all(&h).unwrap();
        let events = all_protocols_file_events(&h, pcap);
        let (codec, part) = (codecs[i % codecs.len()], partitioners[i % partitioners.len()]);
        let (rc, _, err) = run_to_end(packetbeat_on(
            &h,
            pcap,
            &all_protocols_and_flows(),
            &format!("output.kafka: {{hosts: ['{host}'], topic: pb-all, key: {key}, compression: {codec}, partition: {part}}}"),
            true,
        ));
        assert_eq!(rc, 0, "{}: {err}", pcap.display());
        assert!(
            events.is_empty() || err.contains(&format!("kafka output: events acked {},", events.len())),
            "{} ({codec}, {part}): {} events: {err}",
            pcap.display(),
            events.len()
        );
        total += events.len();
        if !events.is_empty() {
            want.insert(key, events);
        }
    }
    assert!(total > 500, "{total}");
    let mut got: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in parse_records(broker.consume("pb-all", total, "")) {
        got.entry(r.key).or_default().push(canon(&r.value));
    }
    for v in got.values_mut() {
        v.sort();
    }
    let n: usize = got.values().map(Vec::len).sum();
    assert_eq!(n, total, "records read back");
    for (key, events) in &want {
        assert_eq!(got.get(key), Some(events), "capture {key}");
    }
    assert_eq!(got.len(), want.len());
}
