//! The monitoring endpoint and the metrics log lines, on the built binary:
//! - `/stats` read during a replay (looped with `-l`): libbeat's sections and keys, Packetbeat's
//!   counters, and their relations (what the output acknowledged never exceeds what the pipeline
//!   published; packets decoded never exceed packets received; counters only grow); `/`,
//!   `/state`, `?pretty`, 404; the same over a Unix socket;
//! - the "Non-zero metrics" lines every `logging.metrics.period`, and the "Total metrics" line at
//!   exit, whose counters equal the capture's packets and the events `output.file` wrote.

mod common;

use common::{count_at, free_port, http_get, http_get_tcp, shared_or_skip, total_metrics};
use serde_json::Value;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn start(cfg: &str, dir: &Path, args: &[&str]) -> Child {
    let path = dir.join("packetbeat.yml");
    std::fs::write(&path, cfg).unwrap();
    Command::new(env!("CARGO_BIN_EXE_packetbeat"))
        .args(args)
        .arg("-c")
        .arg(&path)
        .arg("--strict.perms=false")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn at<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(v, |v, k| {
        v.get(k).unwrap_or_else(|| panic!("no {path} in {v}"))
    })
}

fn stop(mut child: Child) -> String {
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let st = child.wait().unwrap();
    assert!(st.success(), "{st}: {err}");
    err
}

/// Checks one `/stats` document's shape and relations.
fn check_stats(s: &Value) {
    for key in [
        "beat.cpu.total.ticks",
        "beat.cpu.user.time.ms",
        "beat.handles.open",
        "beat.info.uptime.ms",
        "beat.memstats.rss",
        "beat.runtime.goroutines",
        "libbeat.output.events.acked",
        "libbeat.output.events.total",
        "libbeat.output.events.batches",
        "libbeat.pipeline.events.published",
        "libbeat.pipeline.events.dropped",
        "libbeat.pipeline.events.filtered",
        "libbeat.pipeline.queue.max_events",
        "libbeat.pipeline.clients",
        "system.cpu.cores",
        "tcp.dropped_because_of_gaps",
        "http.unmatched_requests",
        "http.unmatched_responses",
        "dns.unmatched_requests",
        "packetbeat.packets.received",
        "packetbeat.decoder.packets",
        "packetbeat.tcp.segments",
    ] {
        count_at(s, key);
    }
    assert_eq!(at(s, "beat.info.version"), packetbeat::BEAT_VERSION);
    assert_eq!(at(s, "libbeat.output.type"), "file");
    assert!(at(s, "system.load.1").is_number());
    let acked = count_at(s, "libbeat.output.events.acked");
    let total = count_at(s, "libbeat.output.events.total");
    let published = count_at(s, "libbeat.pipeline.events.published");
    assert!(acked <= total && total <= published, "{s}");
    assert!(count_at(s, "packetbeat.decoder.packets") <= count_at(s, "packetbeat.packets.received"));
    assert!(count_at(s, "beat.info.uptime.ms") > 0);
}

#[test]
fn stats_during_a_replay_over_tcp_and_a_unix_socket() {
    let Some(pcap) = shared_or_skip("pcaps/http_minitwit.pcap") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!(
        "packetbeat.protocols:\n- type: http\n  ports: [80, 8080]\n- type: dns\n  ports: [53]\noutput.file:\n  path: {}\npath.data: {}\nlogging.metrics.period: 500ms\nhttp.enabled: true\n",
        dir.path().join("out").display(),
        dir.path().join("data").display()
    );
    let cfg = format!("{base}http.port: {port}\nhttp.host: 127.0.0.1\n");
    // Looped fast for as long as the test reads.
    let child = start(
        &cfg,
        dir.path(),
        &["-e", "-t", "-I", pcap.to_str().unwrap(), "-l", "100000000"],
    );
    let until = Instant::now() + Duration::from_secs(60);
    let mut first: Option<Value> = None;
    let stats = loop {
        assert!(
            Instant::now() < until,
            "no acknowledged events in /stats within 60 s"
        );
        if let Some((200, body)) = http_get_tcp(port, "/stats") {
            let s: Value = serde_json::from_str(&body).unwrap();
            check_stats(&s);
            if count_at(&s, "libbeat.output.events.acked") > 0 {
                if let Some(f) = &first {
                    break (f.clone(), s);
                }
                first = Some(s);
            }
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    // Counters only grow.
    let (a, b) = stats;
    for k in [
        "libbeat.output.events.acked",
        "packetbeat.packets.received",
        "libbeat.pipeline.events.published",
    ] {
        assert!(count_at(&b, k) >= count_at(&a, k), "{k}");
    }
    assert!(count_at(&b, "packetbeat.packets.received") > count_at(&a, "packetbeat.packets.received"));
    assert!(count_at(&b, "http.unmatched_requests") + count_at(&b, "libbeat.output.events.acked") > 0);

    let (st, body) = http_get_tcp(port, "/").unwrap();
    assert_eq!(st, 200);
    let info: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(info["beat"], "packetbeat");
    assert_eq!(info["ephemeral_id"], b["beat"]["info"]["ephemeral_id"]);
    let (st, body) = http_get_tcp(port, "/state?pretty").unwrap();
    assert_eq!(st, 200);
    assert!(body.contains("\n  \"output\": {"), "{body}");
    let state: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(state["output"]["name"], "file");
    assert_eq!(http_get_tcp(port, "/nope").unwrap().0, 404);
    let err = stop(child);
    assert!(err.contains("Non-zero metrics in the last 500ms"), "{err}");
    let line = err
        .lines()
        .find(|l| l.contains("Non-zero metrics"))
        .unwrap();
    let v: Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["log.logger"], "monitoring");
    assert!(
        v["monitoring"]["metrics"]["beat"]["info"]["uptime"]["ms"].is_u64(),
        "{line}"
    );

    // The same endpoint on a Unix socket.
    let sock = dir.path().join("pb.sock");
    let cfg = format!("{base}http.host: unix://{}\n", sock.display());
    let child = start(
        &cfg,
        dir.path(),
        &["-e", "-t", "-I", pcap.to_str().unwrap(), "-l", "100000000"],
    );
    let until = Instant::now() + Duration::from_secs(30);
    let body = loop {
        assert!(Instant::now() < until, "no answer on {}", sock.display());
        if let Ok(s) = std::os::unix::net::UnixStream::connect(&sock) {
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let (st, body) = http_get(s, "/stats");
            assert_eq!(st, 200);
            break body;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    check_stats(&serde_json::from_str(&body).unwrap());
    stop(child);
}

/// The number of packet records in a classic pcap file.
fn pcap_records(path: &Path) -> u64 {
    let b = std::fs::read(path).unwrap();
    let le = b[..4] == [0xd4, 0xc3, 0xb2, 0xa1] || b[..4] == [0x4d, 0x3c, 0xb2, 0xa1];
    let mut at = 24;
    let mut n = 0;
    while at + 16 <= b.len() {
        let f = &b[at + 8..at + 12];
        let incl = if le {
            u32::from_le_bytes(f.try_into().unwrap())
        } else {
            u32::from_be_bytes(f.try_into().unwrap())
        };
        at += 16 + incl as usize;
        n += 1;
    }
    n
}

#[test]
fn total_metrics_at_exit_count_the_capture() {
    let Some(pcap) = shared_or_skip("pcaps/http_minitwit.pcap") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let cfg = format!(
        "packetbeat.protocols:\n- type: http\n  ports: [80, 8080]\noutput.file:\n  path: {}\n  filename: pb\npath.data: {}\n",
        out.display(),
        dir.path().join("data").display()
    );
    let child = start(
        &cfg,
        dir.path(),
        &["-e", "-t", "-I", pcap.to_str().unwrap()],
    );
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{err}");
    let events: u64 = std::fs::read_dir(&out)
        .unwrap()
        .map(|f| {
            std::fs::read_to_string(f.unwrap().path())
                .unwrap()
                .lines()
                .count() as u64
        })
        .sum();
    assert!(events > 0);
    let m = &total_metrics(&err);
    assert_eq!(count_at(m, "packetbeat.packets.received"), pcap_records(&pcap));
    assert_eq!(count_at(m, "libbeat.output.events.acked"), events);
    assert_eq!(count_at(m, "libbeat.output.events.total"), events);
    assert_eq!(count_at(m, "libbeat.pipeline.events.published"), events);
}
