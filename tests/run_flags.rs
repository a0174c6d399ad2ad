//! End to end: event metadata from the config (`fields`, `tags`, `index`), and the run flags
//! `--dump`, `-l`, `-N` and replay pace.

mod common;
use common::*;
use serde_json::Value;
use std::time::Instant;

const HTTP: &str = "packetbeat.protocols:\n  - type: http\n    ports: [80]\n";

#[test]
fn global_and_protocol_fields_tags_and_index() {
    let Some(pcap) = shared_or_skip("pcaps/http_post.pcap") else {
        return;
    };
    let cfg = r#"
tags: [edge, "dc-1"]
fields: {env: prod, team: {name: net}}
packetbeat.protocols:
  - type: http
    ports: [80]
    tags: [web]
    fields: {service: shop}
    fields_under_root: true
    index: "http-custom"
"#;
    let run = run_capture(&pcap, cfg, &[]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(run.events.len(), 1, "{:?}", run.events);
    let e = &run.events[0];
    assert_eq!(
        get(e, "service"),
        Some(&Value::from("shop")),
        "protocol fields under root"
    );
    assert_eq!(get(e, "fields.env"), Some(&Value::from("prod")));
    assert_eq!(get(e, "fields.team.name"), Some(&Value::from("net")));
    assert_eq!(
        get(e, "tags"),
        Some(&serde_json::json!(["web", "edge", "dc-1"]))
    );
    assert_eq!(
        get(e, "@metadata.raw_index"),
        Some(&Value::from("http-custom"))
    );
}

#[test]
fn no_publish_analyses_and_writes_nothing() {
    let Some(pcap) = shared_or_skip("pcaps/http_post.pcap") else {
        return;
    };
    let run = run_capture(&pcap, HTTP, &["-N"]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(run.events.is_empty(), "-N wrote events: {:?}", run.events);
    assert!(
        run.stderr.contains("1 published"),
        "the transaction is still analysed and published to the pipeline: {}",
        run.stderr
    );
}

#[test]
fn dump_writes_every_packet_seen() {
    let Some(pcap) = shared_or_skip("pcaps/http_post.pcap") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let prefix = tmp.path().join("dump");
    let run = run_capture(&pcap, HTTP, &["--dump", prefix.to_str().unwrap()]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    // Packetbeat's name: the prefix, the local time at start, `.pcap`.
    let files: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let stamp = files[0]
        .strip_prefix("dump-")
        .and_then(|s| s.strip_suffix(".pcap"))
        .unwrap_or_else(|| panic!("{files:?}"));
    assert!(stamp.len() == 14 && stamp.bytes().all(|b| b.is_ascii_digit()), "{stamp}");
    let dump = tmp.path().join(&files[0]);
    // Same packets, same bytes: replaying the dump gives the same event.
    let again = run_capture(&dump, HTTP, &[]);
    assert_eq!(again.events.len(), 1);
    let strip = |v: &Value| {
        let mut m = flatten(v);
        for k in ["agent.ephemeral_id", "agent.id"] {
            m.remove(k);
        }
        m
    };
    assert_eq!(strip(&again.events[0]), strip(&run.events[0]));
}

#[test]
fn loop_replays_the_file_n_times_with_time_moving_forward() {
    let Some(pcap) = shared_or_skip("pcaps/http_post.pcap") else {
        return;
    };
    let run = run_capture(&pcap, HTTP, &["-l", "3"]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(run.events.len(), 3, "one transaction per pass");
    let ts: Vec<&str> = run
        .events
        .iter()
        .map(|e| e["@timestamp"].as_str().unwrap())
        .collect();
    assert!(
        ts[0] < ts[1] && ts[1] < ts[2],
        "each pass later than the previous: {ts:?}"
    );
}

#[test]
fn without_top_speed_the_capture_pace_is_kept() {
    let Some(pcap) = shared_or_skip("pcaps/dns_txt.pcap") else {
        return;
    };
    // dns_txt.pcap spans 2.7 s of capture time; without -t the replay cannot be faster.
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("pb.yml");
    std::fs::write(
        &cfg,
        format!(
            "packetbeat.protocols:\n  - type: dns\n    ports: [53]\noutput.file.path: {}\n",
            tmp.path().display()
        ),
    )
    .unwrap();
    let start = Instant::now();
    let st = std::process::Command::new(env!("CARGO_BIN_EXE_packetbeat"))
        .args([
            "-I",
            pcap.to_str().unwrap(),
            "-c",
            cfg.to_str().unwrap(),
            "--strict.perms=false",
        ])
        .arg(format!("--path.data={}", tmp.path().display()))
        .status()
        .unwrap();
    assert!(st.success());
    assert!(
        start.elapsed().as_secs_f64() >= 2.7,
        "replayed in {:?}",
        start.elapsed()
    );
}

#[test]
fn unreadable_capture_is_one_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.pcap");
    std::fs::write(&bad, b"this is not a capture file at all").unwrap();
    let run = run_capture(&bad, HTTP, &[]);
    assert_eq!(run.status, 1);
    assert!(
        run.stderr.contains("is not a readable pcap or pcapng file"),
        "{}",
        run.stderr
    );
}

#[test]
fn truncated_capture_ends_cleanly() {
    let Some(pcap) = shared_or_skip("pcaps/http_post.pcap") else {
        return;
    };
    let bytes = std::fs::read(&pcap).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let cut = tmp.path().join("cut.pcap");
    // Cut in the middle of the last packet record.
    std::fs::write(&cut, &bytes[..bytes.len() - 10]).unwrap();
    let run = run_capture(&cut, HTTP, &[]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(run.stderr.contains("truncated"), "{}", run.stderr);
}

#[test]
fn protocol_metadata_applies_to_icmp_events_too() {
    let Some(pcap) = shared_or_skip("pcaps/icmp/icmp4_ping.pcap") else {
        return;
    };
    let cfg = "packetbeat.protocols:\n  - type: icmp\n    tags: [ping]\n    fields: {probe: a}\n";
    let run = run_capture(&pcap, cfg, &[]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(run.events.len(), 1);
    assert_eq!(
        get(&run.events[0], "tags"),
        Some(&serde_json::json!(["ping"]))
    );
    assert_eq!(get(&run.events[0], "fields.probe"), Some(&Value::from("a")));
}

/// `-O`: one packet per Enter. After three lines on stdin the fourth prompt waits; once stdin
/// ends the rest goes through, and the events are those of a run without `-O`.
#[test]
fn one_at_a_time_waits_for_enter_before_each_packet() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};
    let Some(pcap) = shared_or_skip("pcaps/http_post.pcap") else {
        return;
    };
    let want = run_capture(&pcap, HTTP, &[]);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let cfg = tmp.path().join("packetbeat.yml");
    std::fs::write(
        &cfg,
        format!(
            "{HTTP}output.file:\n  path: {}\n  filename: packetbeat\npath.data: {}\n",
            out.display(),
            tmp.path().join("data").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_packetbeat"))
        .args(["-e", "-t", "-O", "-I"])
        .arg(&pcap)
        .arg("-c")
        .arg(&cfg)
        .arg("--strict.perms=false")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"\n\n\n").unwrap();
    stdin.flush().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let _ = tx.send(line.unwrap());
        }
    });
    let prompt = |l: &str| l == "Press enter to read packet";
    for i in 0..4 {
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("prompt {i} never came"));
        assert!(prompt(&line), "{line}");
    }
    // The fourth packet waits for its Enter.
    assert!(rx
        .recv_timeout(std::time::Duration::from_millis(500))
        .is_err());
    drop(stdin);
    let status = child.wait().unwrap();
    assert!(status.success());
    let rest: Vec<String> = rx.iter().collect();
    let packets = pcap_packets(&pcap);
    assert_eq!(4 + rest.iter().filter(|l| prompt(l)).count(), packets);
    let got: Vec<Value> = std::fs::read_dir(&out)
        .unwrap()
        .flat_map(|f| {
            std::fs::read_to_string(f.unwrap().path())
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(got.len(), want.events.len());
    assert_eq!(got[0]["http"], want.events[0]["http"]);
}

/// Records in a classic pcap file.
fn pcap_packets(path: &std::path::Path) -> usize {
    let b = std::fs::read(path).unwrap();
    let le = b[..4] == [0xd4, 0xc3, 0xb2, 0xa1] || b[..4] == [0x4d, 0x3c, 0xb2, 0xa1];
    let (mut at, mut n) = (24, 0);
    while at + 16 <= b.len() {
        let f: [u8; 4] = b[at + 8..at + 12].try_into().unwrap();
        let incl = if le {
            u32::from_le_bytes(f)
        } else {
            u32::from_be_bytes(f)
        };
        at += 16 + incl as usize;
        n += 1;
    }
    n
}
