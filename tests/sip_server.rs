//! Real SIP peers: Debian's sipp as UAS and as UAC (its built-in scenarios: INVITE, 180, 200,
//! ACK, BYE, 200) on loopback, over UDP and over TCP, captured with tcpdump and replayed through
//! our binary. Every message the UAC's `-trace_shortmsg` log says it sent or received must be
//! one event, with its Call-ID, CSeq and start line, and nothing else.

mod common;

use std::net::{TcpListener, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port free for both TCP and UDP.
fn free_port() -> u16 {
    loop {
        let p = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if UdpSocket::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

const CALLS: usize = 3;

fn run_calls(transport: &str) {
    for t in ["sipp", "tcpdump"] {
        if common::on_path(t).is_none() {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{t} is missing: run scripts/install-deps (Debian package sip-tester)");
            }
            eprintln!("skipping: {t} not installed");
            return;
        }
    }
    let (sport, cport) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("sip.pcap");
    let dump = common::LoopbackCapture::start(&pcap, &format!("{transport} port {sport}"));
    let t = if transport == "udp" { "u1" } else { "t1" };
    let calls = CALLS.to_string();
    let common_args = [
        "-i",
        "127.0.0.1",
        "-t",
        t,
        "-m",
        &calls,
        "-nostdin",
        "-timeout",
        "20s",
    ];
    let _uas = Killed(
        Command::new("sipp")
            .args(["-sn", "uas", "-p", &sport.to_string()])
            .args(common_args)
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(500));
    let uac = common::output_within(
        &mut Command::new("sipp")
            .args(["-sn", "uac", &format!("127.0.0.1:{sport}")])
            .args(["-p", &cport.to_string(), "-r", "10", "-trace_shortmsg"])
            .args(common_args)
            .current_dir(dir.path()),
        common::PROGRAM_LIMIT,
    );
    assert!(
        uac.status.success(),
        "sipp uac failed: {}",
        String::from_utf8_lossy(&uac.stdout)
    );
    std::thread::sleep(Duration::from_millis(1000));
    dump.stop();

    // The UAC's own record: direction, Call-ID, CSeq, start line (tab-separated).
    let log = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| {
            e.file_name()
                .to_string_lossy()
                .ends_with("shortmessages.log")
        })
        .expect("sipp wrote no -trace_shortmsg log");
    let log = std::fs::read_to_string(log.path()).unwrap();
    let mut truth: Vec<(String, String, String)> = log
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let (call_id, cseq, line) = (f.get(4)?, f.get(5)?, f.get(6)?);
            let cseq = cseq.trim_start_matches("CSeq:").trim().to_string();
            let what = match line.strip_prefix("SIP/2.0 ") {
                Some(status) => status.split(' ').next()?.to_string(),
                None => line.split(' ').next()?.to_string(),
            };
            Some((call_id.to_string(), cseq, what))
        })
        .collect();
    truth.sort();
    assert_eq!(truth.len(), CALLS * 6, "{log}");
    for what in ["INVITE", "180", "ACK", "BYE"] {
        assert_eq!(
            truth.iter().filter(|t| t.2 == what).count(),
            CALLS,
            "{what}"
        );
    }
    assert_eq!(truth.iter().filter(|t| t.2 == "200").count(), 2 * CALLS);

    let cfg = format!(
        "packetbeat.protocols:\n  - type: sip\n    ports: [{sport}]\n    transport_protocol: {transport}\n"
    );
    let run = common::run_capture(&pcap, &cfg, &[]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    let mut got: Vec<(String, String, String)> = run
        .events
        .iter()
        .map(|e| {
            assert_eq!(common::field(e, "network.transport"), transport);
            assert_eq!(common::field(e, "type"), "sip");
            let what = if common::field(e, "sip.type") == "request" {
                common::field(e, "sip.method")
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            } else {
                common::field(e, "sip.code").to_string()
            };
            format!(
                "{}\t{} {}\t{what}",
                common::field(e, "sip.call_id").as_str().unwrap_or(""),
                common::field(e, "sip.cseq.code"),
                common::field(e, "sip.cseq.method").as_str().unwrap_or("")
            )
        })
        .map(|s| {
            let f: Vec<&str> = s.split('\t').collect();
            (f[0].to_string(), f[1].to_string(), f[2].to_string())
        })
        .collect();
    got.sort();
    assert_eq!(got, truth, "{}", run.stderr);
    // Each event is the message as sent: its start line begins event.original.
    for e in &run.events {
        let original = common::field(e, "event.original").as_str().unwrap_or("");
        assert!(
            original.starts_with("SIP/2.0 ") || original.contains(" SIP/2.0\r\n"),
            "{original}"
        );
    }
}

#[test]
fn sipp_calls_over_udp() {
    run_calls("udp");
}

#[test]
fn sipp_calls_over_tcp() {
    run_calls("tcp");
}
