//! `queue.disk` across a crash: run 1 reads a capture while `output.redis` is down and is
//! SIGKILLed once every event is in the queue; run 2, with Redis up and an empty capture,
//! delivers every event of run 1 (the events `output.file` writes for the capture); run 3 has
//! nothing left to deliver. Then the same with a flipped byte in one frame and a torn last
//! write: those two events are lost, counted and logged, the rest delivered. Redis runs on
//! loopback only, and every process started here is killed and reaped.

mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills and reaps a child however the test ends.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tools() -> bool {
    ["redis-server", "redis-cli"].iter().all(|t| {
        require_or_skip(
            on_path(t),
            t,
            "bash scripts/install-deps (redis-server, redis-tools)",
        )
        .is_some()
    })
}

fn redis_cli(port: u16, args: &[&str]) -> String {
    let o = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn start_redis(port: u16, dir: &Path) -> Reaped {
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--dir"])
        .arg(dir)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let r = Reaped(child);
    for _ in 0..200 {
        if redis_cli(port, &["PING"]).trim() == "PONG" {
            return r;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("redis-server did not start on port {port}");
}

fn redis_list(port: u16) -> Vec<Value> {
    redis_cli(port, &["LRANGE", "packetbeat", "0", "-1"])
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

/// Events as comparable strings, without the per-run field, sorted (workers may interleave).
fn normalised(events: Vec<Value>) -> Vec<String> {
    let mut v: Vec<String> = events
        .into_iter()
        .map(|mut e| {
            e["agent"].as_object_mut().unwrap().remove("ephemeral_id");
            e.to_string()
        })
        .collect();
    v.sort();
    v
}

/// A capture file with no packets.
fn empty_pcap(dir: &Path) -> PathBuf {
    let p = dir.join("empty.pcap");
    let mut b = Vec::new();
    b.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&4u16.to_le_bytes());
    b.extend_from_slice(&[0; 8]);
    b.extend_from_slice(&65535u32.to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes());
    std::fs::write(&p, b).unwrap();
    p
}

/// Starts packetbeat on `pcap` with the disk queue and `output.redis` on `port`; stderr goes
/// to `<home>/<name>.log`.
fn start(home: &Path, name: &str, pcap: &Path, port: u16) -> (Reaped, PathBuf) {
    let cfg = home.join("packetbeat.yml");
    std::fs::write(
        &cfg,
        format!(
            "packetbeat.protocols:\n- type: mongodb\n  ports: [27017, 9991]\n\
             output.redis: {{hosts: ['127.0.0.1:{port}'], bulk_max_size: 7, backoff.init: 100ms, backoff.max: 200ms}}\n\
             queue.disk: {{max_size: 100MB, path: {}}}\npath.data: {}\n",
            home.join("dq").display(),
            home.join("data").display()
        ),
    )
    .unwrap();
    let log = home.join(format!("{name}.log"));
    let child = Command::new(env!("CARGO_BIN_EXE_packetbeat"))
        .args(["-e", "-t", "-I"])
        .arg(pcap)
        .arg("-c")
        .arg(&cfg)
        .arg("--strict.perms=false")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    (Reaped(child), log)
}

fn wait_for_log(log: &Path, needle: &str, secs: u64) -> String {
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(Instant::now() < until, "no {needle:?} in:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_exit(p: &mut Reaped, secs: u64) -> i32 {
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(s) = p.0.try_wait().unwrap() {
            return s.code().unwrap_or(-1);
        }
        assert!(Instant::now() < until, "packetbeat did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Run 1: the output is down; once the queue holds every event, SIGKILL.
fn crash_with_output_down(home: &Path, pcap: &Path, port: u16) -> String {
    let (mut p, log) = start(home, "run1", pcap, port);
    let text = wait_for_log(&log, "closed for new events", 60);
    // Still trying to reach Redis: nothing was acknowledged.
    assert!(p.0.try_wait().unwrap().is_none(), "{text}");
    p.0.kill().unwrap();
    p.0.wait().unwrap();
    text
}

fn setup() -> Option<(PathBuf, tempfile::TempDir, Vec<String>, u16)> {
    let pcap = shared_or_skip("pcaps/mongo_3.0_session.pcap")?;
    if !tools() {
        return None;
    }
    let home = tempfile::tempdir().unwrap();
    let expected = normalised(
        mongodb_file_lines(home.path(), &pcap)
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect(),
    );
    assert!(expected.len() >= 20, "{}", expected.len());
    Some((pcap, home, expected, free_port()))
}

#[test]
fn events_queued_while_the_output_is_down_survive_a_crash() {
    let Some((pcap, home, expected, port)) = setup() else {
        return;
    };
    let h = home.path();
    let text = crash_with_output_down(h, &pcap, port);
    // Every event is in the queue: waiting, or taken by the output that cannot send them.
    let line = text
        .lines()
        .find(|l| l.contains("closed for new events"))
        .unwrap();
    let numbers: Vec<usize> = line
        .split("closed for new events")
        .nth(1)
        .unwrap()
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(numbers[0] + numbers[1], expected.len(), "{line}");

    let _redis = start_redis(port, h);
    let empty = empty_pcap(h);
    let (mut p, log) = start(h, "run2", &empty, port);
    assert_eq!(wait_exit(&mut p, 60), 0);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains(&format!("{} event(s) from a previous run", expected.len())),
        "{text}"
    );
    assert!(!text.contains("damaged"), "{text}");
    let got = normalised(redis_list(port));
    // Nothing was acknowledged before the crash, so nothing is delivered twice.
    assert_eq!(got, expected);

    // Everything was acknowledged: a third run delivers nothing again.
    let (mut p, log) = start(h, "run3", &empty, port);
    assert_eq!(wait_exit(&mut p, 60), 0);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("from a previous run"), "{text}");
    assert_eq!(redis_list(port).len(), expected.len());
}

#[test]
fn a_flipped_byte_and_a_torn_write_cost_their_events_only() {
    let Some((pcap, home, expected, port)) = setup() else {
        return;
    };
    let h = home.path();
    crash_with_output_down(h, &pcap, port);

    // All events are in one segment (segment_size is 10MB). Flip a byte inside the JSON of the
    // third event and cut the last frame short, as a crash during the write would.
    let seg = std::fs::read_dir(h.join("dq"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "seg"))
        .unwrap();
    let mut b = std::fs::read(&seg).unwrap();
    let needle = b"{\"@timestamp\":";
    let third = b
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .nth(2)
        .unwrap()
        .0;
    b[third + 30] ^= 0x20;
    b.truncate(b.len() - 10);
    std::fs::write(&seg, b).unwrap();

    let _redis = start_redis(port, h);
    let empty = empty_pcap(h);
    let (mut p, log) = start(h, "run2", &empty, port);
    assert_eq!(wait_exit(&mut p, 60), 0);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("skipped 2 damaged place(s) (a torn last write): 2 event(s) lost"),
        "{text}"
    );
    let got = normalised(redis_list(port));
    assert_eq!(got.len(), expected.len() - 2, "{text}");
    // Every event delivered is one of the capture's, once.
    let mut rest = expected.clone();
    for e in &got {
        let i = rest
            .iter()
            .position(|x| x == e)
            .expect("an event of the capture");
        rest.remove(i);
    }
}
