//! `output.redis` against Debian's redis-server on loopback: the events in the list (or on the
//! channel) are the events `output.file` writes for the same capture; passwords and `db`; `keys`
//! rules and a format string in `key` spreading the events over several lists; `codec.format`
//! putting each event's formatted line in the list; an outage at start; a key Redis refuses;
//! the server killed mid-run and restarted; `/stats` during an outage with a disk queue.

mod common;
use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Server {
    child: Child,
    port: u16,
    password: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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

/// What a test here needs: the capture `rel` under ../shared, redis-server and redis-cli, and a
/// home directory; `None` (a skip, a failure under CI=true) when one is missing.
fn redis_test(rel: &str) -> Option<(std::path::PathBuf, tempfile::TempDir)> {
    let pcap = shared_or_skip(rel)?;
    if !tools() {
        return None;
    }
    Some((pcap, tempfile::tempdir().unwrap()))
}

fn start_server(port: u16, password: Option<&str>) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spawn_server(dir.path(), port, password, false);
    s._dir = Some(dir);
    s
}

/// A server whose data survives a SIGKILL: every write is in its append-only file, fsynced,
/// before it answers; restarted in the same `dir`, it has everything it acknowledged.
fn start_durable_server(dir: &Path, port: u16) -> Server {
    spawn_server(dir, port, None, true)
}

fn spawn_server(dir: &Path, port: u16, password: Option<&str>, durable: bool) -> Server {
    let mut c = Command::new("redis-server");
    c.args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""]);
    if durable {
        c.args(["--appendonly", "yes", "--appendfsync", "always"]);
    } else {
        c.args(["--appendonly", "no"]);
    }
    c.arg("--dir").arg(dir).stdout(Stdio::null());
    if let Some(p) = password {
        c.args(["--requirepass", p]);
    }
    let s = Server {
        child: c.spawn().unwrap(),
        port,
        password: password.map(str::to_string),
        _dir: None,
    };
    for _ in 0..200 {
        if s.cli(&["PING"]).trim() == "PONG" {
            return s;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("redis-server did not start on port {port}");
}

impl Server {
    fn cli_cmd(&self) -> Command {
        let mut c = Command::new("redis-cli");
        c.args(["-h", "127.0.0.1", "-p", &self.port.to_string()]);
        if let Some(p) = &self.password {
            c.args(["--no-auth-warning", "-a", p]);
        }
        c
    }
    fn cli(&self, args: &[&str]) -> String {
        let o = self.cli_cmd().args(args).output().unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
    /// The list's values as they are (not JSON with `codec.format`).
    fn raw_list(&self, key: &str) -> Vec<String> {
        self.cli(&["LRANGE", key, "0", "-1"])
            .lines()
            .map(str::to_string)
            .collect()
    }
    fn list(&self, db: &str, key: &str) -> Vec<Value> {
        self.cli(&["-n", db, "LRANGE", key, "0", "-1"])
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
            .collect()
    }
}

/// Runs a capture with `output` (a YAML output section) from `home`; returns exit code and stderr.
fn run(home: &Path, pcap: &Path, output: &str) -> (i32, String) {
    run_mongodb(home, pcap, output, true)
}

/// The events `output.file` writes for the capture, without the per-run field.
fn file_events(home: &Path, pcap: &Path) -> Vec<Value> {
    let lines = mongodb_file_lines(home, pcap);
    strip(
        lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect(),
    )
}

fn strip(mut events: Vec<Value>) -> Vec<Value> {
    for e in &mut events {
        e["agent"].as_object_mut().unwrap().remove("ephemeral_id");
    }
    events
}

#[test]
fn list_channel_password_and_db() {
    let Some((pcap, home)) = redis_test("pcaps/mongo_3.0_session.pcap") else {
        return;
    };
    let h = home.path();
    let expected = file_events(h, &pcap);
    assert!(expected.len() >= 20, "{}", expected.len());

    let server = start_server(free_port(), None);
    let (rc, err) = run(
        h,
        &pcap,
        &format!(
            "output.redis: {{hosts: ['127.0.0.1:{}'], bulk_max_size: 7}}",
            server.port
        ),
    );
    assert_eq!(rc, 0, "{err}");
    assert_eq!(strip(server.list("0", "packetbeat")), expected, "{err}");

    // A channel: a subscriber sees every event, in order.
    let mut sub = server
        .cli_cmd()
        .args(["SUBSCRIBE", "pb-events"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    for _ in 0..200 {
        if server
            .cli(&["PUBSUB", "NUMSUB", "pb-events"])
            .lines()
            .nth(1)
            == Some("1")
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let (rc, err) = run(
        h,
        &pcap,
        &format!(
            "output.redis: {{hosts: ['127.0.0.1:{}'], key: pb-events, datatype: channel}}",
            server.port
        ),
    );
    assert_eq!(rc, 0, "{err}");
    std::thread::sleep(Duration::from_millis(300));
    let _ = sub.kill();
    let text = String::from_utf8_lossy(&sub.wait_with_output().unwrap().stdout).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    let mut published = Vec::new();
    for w in lines.windows(3) {
        if w[0] == "message" && w[1] == "pb-events" {
            published.push(serde_json::from_str(w[2]).unwrap());
        }
    }
    assert_eq!(strip(published), expected);

    // A password in the URL, a database, and `index` naming the list and @metadata.beat.
    let locked = start_server(free_port(), Some("s3cret"));
    let (rc, err) = run(
        h,
        &pcap,
        &format!(
            "output.redis: {{hosts: ['redis://:s3cret@127.0.0.1:{}'], db: 3, index: PB-Net}}",
            locked.port
        ),
    );
    assert_eq!(rc, 0, "{err}");
    let got = strip(locked.list("3", "PB-Net"));
    assert_eq!(got.len(), expected.len());
    assert_eq!(got[0]["@metadata"]["beat"], "pb-net");
    assert!(locked.list("0", "PB-Net").is_empty());
}

#[test]
fn keys_rules_and_a_format_string_choose_each_events_list() {
    let Some((pcap, home)) = redis_test("pcaps/mongo_3.0_session.pcap") else {
        return;
    };
    let h = home.path();
    let expected = file_events(h, &pcap);
    let server = start_server(free_port(), None);
    let (rc, err) = run(
        h,
        &pcap,
        &format!(
            r#"output.redis:
  hosts: ['127.0.0.1:{}']
  bulk_max_size: 5
  key: 'pb-%{{[network.transport]}}'
  keys:
    - key: inserts
      when.equals: {{method: insert}}
    - key: '%{{[method]}}'
      mappings: {{find: reads, isMaster: handshakes}}
"#,
            server.port
        ),
    );
    assert_eq!(rc, 0, "{err}");
    // The rules in order, then the format string, as libbeat's selector.
    let list_of = |e: &Value| match e["method"].as_str() {
        Some("insert") => "inserts".to_string(),
        Some("find") => "reads".to_string(),
        Some("isMaster") => "handshakes".to_string(),
        _ => format!("pb-{}", e["network"]["transport"].as_str().unwrap()),
    };
    let mut total = 0;
    for key in ["inserts", "reads", "handshakes", "pb-tcp"] {
        let want: Vec<Value> = expected
            .iter()
            .filter(|e| list_of(e) == key)
            .cloned()
            .collect();
        assert!(!want.is_empty(), "no event for {key}");
        assert_eq!(strip(server.list("0", key)), want, "list {key}");
        total += want.len();
    }
    assert_eq!(total, expected.len());
    assert_eq!(server.cli(&["DBSIZE"]).trim(), "4");
}

#[test]
fn codec_format_puts_each_events_formatted_line_in_its_list() {
    let Some((pcap, home)) = redis_test("pcaps/mongo_3.0_session.pcap") else {
        return;
    };
    let h = home.path();
    // The line of each event the file output writes as JSON for the capture.
    let want: Vec<String> = file_events(h, &pcap)
        .iter()
        .map(|e| {
            format!(
                "{} {} {}:{} {}",
                e["@timestamp"].as_str().unwrap(),
                e["type"].as_str().unwrap(),
                e["source"]["ip"].as_str().unwrap(),
                e["source"]["port"],
                e["method"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(want.len() >= 20, "{}", want.len());
    let server = start_server(free_port(), None);
    // A key chosen per event too: the event is read once for both.
    let (rc, err) = run(
        h,
        &pcap,
        &format!(
            "output.redis: {{hosts: ['127.0.0.1:{}'], bulk_max_size: 7, key: 'pb-%{{[network.transport]}}', \
             codec.format.string: '%{{[@timestamp]}} %{{[type]}} %{{[source.ip]}}:%{{[source.port]}} %{{[method]}}'}}",
            server.port
        ),
    );
    assert_eq!(rc, 0, "{err}");
    assert_eq!(server.raw_list("pb-tcp"), want, "{err}");
    assert_eq!(server.cli(&["DBSIZE"]).trim(), "1");
}

#[test]
fn an_outage_at_start_loses_nothing_and_a_refused_key_is_dropped_after_retries() {
    let Some((pcap, home)) = redis_test("pcaps/mongo_3.0_session.pcap") else {
        return;
    };
    let h = home.path().to_path_buf();
    let expected = file_events(&h, &pcap);
    let port = free_port();
    // Nothing listens yet: the output retries with backoff until the server is up.
    let runner = {
        let (h, pcap) = (h.clone(), pcap.clone());
        std::thread::spawn(move || {
            run(
                &h,
                &pcap,
                &format!("output.redis: {{hosts: ['127.0.0.1:{port}'], backoff: {{init: 100ms, max: 200ms}}}}"),
            )
        })
    };
    std::thread::sleep(Duration::from_millis(1500));
    let server = start_server(port, None);
    let (rc, err) = runner.join().unwrap();
    assert_eq!(rc, 0, "{err}");
    assert!(
        err.contains("Failed to connect to redis(127.0.0.1:"),
        "{err}"
    );
    assert_eq!(strip(server.list("0", "packetbeat")), expected, "{err}");

    // A key holding a string: RPUSH is refused (WRONGTYPE); after max_retries the events are
    // dropped, said and counted, and the run ends.
    assert_eq!(server.cli(&["SET", "taken", "x"]).trim(), "OK");
    let (rc, err) = run(
        &h,
        &pcap,
        &format!(
            "output.redis: {{hosts: ['127.0.0.1:{port}'], key: taken, max_retries: 1, backoff: {{init: 10ms, max: 20ms}}}}"
        ),
    );
    assert_eq!(rc, 0, "{err}");
    assert!(err.contains("WRONGTYPE"), "{err}");
    assert!(err.contains("dropping them"), "{err}");
    assert!(
        err.contains(&format!("not delivered {}", expected.len())),
        "{err}"
    );
}

/// "resent N" from the output's closing line: events sent again after a failure.
fn resent(stderr: &str) -> usize {
    stderr
        .lines()
        .filter_map(|l| l.split("redis output: ").nth(1))
        .filter_map(|l| l.split("resent ").nth(1))
        .filter_map(|l| l.split(|c: char| !c.is_ascii_digit()).next())
        .filter_map(|n| n.parse::<usize>().ok())
        .sum()
}

#[test]
fn the_server_killed_mid_run_and_restarted_loses_nothing() {
    let Some((src, home)) = redis_test("pcaps/mongodb_op_msg_opcode.pcap") else {
        return;
    };
    let h = home.path().to_path_buf();
    // 4 × 101 events over about 16 s, reaching the output in steps (see stretched_copies).
    let pcap = h.join("four-sessions.pcap");
    stretched_copies(&src, &pcap, 4, 4.0, 0.3);
    let expected: Vec<String> = file_events(&h, &pcap)
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert!(expected.len() >= 300, "{}", expected.len());
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = std::cell::RefCell::new(Some(start_durable_server(data.path(), port)));
    // The server dies (SIGKILL) as soon as the first events are in the list.
    let err = outage_mid_run(
        &h,
        &pcap,
        format!("output.redis: {{hosts: ['127.0.0.1:{port}'], bulk_max_size: 16, timeout: 2s, backoff: {{init: 100ms, max: 500ms}}}}"),
        || {
            server.borrow().as_ref().unwrap().cli(&["LLEN", "packetbeat"]).trim().parse::<u64>().unwrap_or(0) > 0
        },
        || drop(server.borrow_mut().take()),
        || *server.borrow_mut() = Some(start_durable_server(data.path(), port)),
    );
    assert!(
        err.contains("will be resent") || err.contains("Failed to connect to redis"),
        "the outage was not seen:\n{err}"
    );
    let got = strip(server.borrow().as_ref().unwrap().list("0", "packetbeat"))
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert_at_least_once(got, expected, resent(&err));
}

/// A `/stats` document from the monitoring endpoint on `port`, once `ready` accepts one.
fn stats_when(port: u16, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let t0 = std::time::Instant::now();
    loop {
        assert!(t0.elapsed() < Duration::from_secs(60), "/stats never showed {what}");
        if let Some((200, body)) = http_get_tcp(port, "/stats") {
            let s: Value = serde_json::from_str(&body).unwrap();
            if ready(&s) {
                return s;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn stats_show_the_disk_queue_filling_during_an_outage_and_the_outputs_counters_after() {
    let Some((pcap, home)) = redis_test("pcaps/mongo_3.0_session.pcap") else {
        return;
    };
    let h = home.path();
    let n = file_events(h, &pcap).len() as u64;
    let (port, mon) = (free_port(), free_port());
    let max_size = 10 << 20;
    let mut c = packetbeat_on(
        h,
        &pcap,
        MONGODB,
        &format!(
            "output.redis: {{hosts: ['127.0.0.1:{port}'], backoff: {{init: 100ms, max: 200ms}}}}\n\
             queue.disk: {{path: {}, max_size: {max_size}}}\n\
             http: {{enabled: true, host: 127.0.0.1, port: {mon}}}\nlogging.json: true\n",
            h.join("dq").display()
        ),
        true,
    );
    let started = std::time::Instant::now();
    let child = c.stderr(Stdio::piped()).spawn().unwrap();
    // Nothing listens: every event waits in the disk queue, and the output counts its failures.
    let s = stats_when(mon, "every event queued", |s| {
        s["libbeat"]["pipeline"]["queue"]["filled"]["events"] == n
            && count_at(s, "libbeat.output.write.errors") > 0
    });
    assert_eq!(count_at(&s, "libbeat.pipeline.queue.max_bytes"), max_size);
    let bytes = count_at(&s, "libbeat.pipeline.queue.filled.bytes");
    assert!(bytes > 0 && bytes < max_size, "{s}");
    assert_eq!(count_at(&s, "libbeat.output.events.acked"), 0);
    assert_eq!(count_at(&s, "libbeat.output.write.bytes"), 0);
    assert_eq!(s["libbeat"]["output"]["type"], "redis");
    // Long enough for the stall to be said (every 5 s while nothing is delivered).
    std::thread::sleep(Duration::from_secs(7).saturating_sub(started.elapsed()));
    // The server comes up: everything is delivered, the queue empties, and the run ends.
    let server = start_server(port, None);
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.lines().any(|l| l.contains("output.redis: no event delivered for")
            && l.contains(&format!("{n} events wait"))
            && l.contains("last error: Failed to connect to redis(")),
        "no stall line: {err}"
    );
    assert_eq!(server.list("0", "packetbeat").len() as u64, n);
    // The closing "Total metrics" line has the output's own counts.
    let m = &total_metrics(&err);
    assert_eq!(count_at(m, "libbeat.output.events.acked"), n, "{m}");
    assert!(count_at(m, "libbeat.output.write.bytes") > 0, "{m}");
    assert!(count_at(m, "libbeat.output.write.errors") > 0, "{m}");
}

/// Every capture of ../shared/pcaps, with every analyzer and flows, each to a list of its own:
/// the list holds exactly the events `output.file` writes for that capture.
#[test]
fn every_shared_capture_arrives_as_output_file_writes_it() {
    let Some((_, home)) = redis_test("pcaps/mongo_3.0_session.pcap") else {
        return;
    };
    let server = start_server(free_port(), None);
    let captures = all_captures();
    assert!(captures.len() > 100, "{}", captures.len());
    let mut total = 0;
    for (i, pcap) in captures.iter().enumerate() {
        let key = format!("c{i}");
        let h = home.path().join(&key);
        std::fs::create_dir_all(&h).unwrap();
        let want = all_protocols_file_events(&h, pcap);
        let (rc, _, err) = run_to_end(packetbeat_on(
            &h,
            pcap,
            &all_protocols_and_flows(),
            &format!("output.redis: {{hosts: ['127.0.0.1:{}'], key: {key}, bulk_max_size: 64}}", server.port),
            true,
        ));
        assert_eq!(rc, 0, "{}: {err}", pcap.display());
        let mut got: Vec<String> = server
            .raw_list(&key)
            .iter()
            .filter(|l| !l.is_empty())
            .map(|l| without_ephemeral_id(l))
            .collect();
        got.sort();
        assert_eq!(got, want, "{}", pcap.display());
        total += want.len();
    }
    assert!(total > 500, "{total}");
}
