//! End to end: the Logstash output against Elastic's own Lumberjack v2 server (go-lumber's
//! `server/v2`, built from `tests/lumber-sink` with `go build`). Events received by the sink must
//! equal, as JSON values, what `output.file` writes for the same capture and config; fault tests
//! kill the sink, delay ACKs past `timeout`, send partial ACKs and drop connections, and check
//! that nothing is lost (duplicates are counted and reported).
//! Go (to build the sink) and `../shared/pcaps` are needed: without them the tests fail under
//! `CI=true` and are skipped otherwise (`common::require_or_skip`).

mod common;

use common::certs::Certs;
use common::{require_or_skip, shared, shared_or_skip, ALL_PROTOCOLS};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The sink, built once per test binary; through `require_or_skip` when it cannot be built.
fn sink_binary() -> Option<PathBuf> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let built = BIN.get_or_init(|| {
        let out = root().join("target/lumber-sink/lumber-sink");
        let go = if Path::new("/usr/local/go/bin/go").exists() {
            "/usr/local/go/bin/go"
        } else {
            "go"
        };
        let st = Command::new(go)
            .args(["build", "-o"])
            .arg(&out)
            .arg(".")
            .current_dir(root().join("tests/lumber-sink"))
            .status();
        match st {
            Ok(s) if s.success() => Ok(out),
            Ok(s) => Err(format!(
                "a built tests/lumber-sink (`go build` ended with {s})"
            )),
            Err(e) => Err(format!("Go ({go}: {e})")),
        }
    });
    match built {
        Ok(bin) => Some(bin.clone()),
        Err(what) => require_or_skip(
            None,
            what,
            "the Logstash tests' sink is built with Go >= 1.19: `bash scripts/install-deps` \
             installs golang-go; its modules come from the Go module proxy",
        ),
    }
}

struct Sink {
    child: Child,
    addr: String,
    lines: Arc<Mutex<Vec<String>>>,
    log: Arc<Mutex<String>>,
}

impl Sink {
    fn start(args: &[&str]) -> Sink {
        let bin = sink_binary().unwrap();
        let mut child = Command::new(bin)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start lumber-sink");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::new(Mutex::new(String::new()));
        let out = child.stdout.take().unwrap();
        let l2 = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                l2.lock().unwrap().push(line);
            }
        });
        let err = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let log2 = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                if let Some(a) = line.strip_prefix("LISTENING ") {
                    let _ = tx.send(a.to_string());
                }
                let mut l = log2.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("sink did not start");
        Sink {
            child,
            addr,
            lines,
            log,
        }
    }

    fn port(&self) -> u16 {
        self.addr.rsplit(':').next().unwrap().parse().unwrap()
    }

    fn count(&self) -> usize {
        self.lines.lock().unwrap().len()
    }

    /// Waits (briefly) until at least `n` lines were read, then returns lines[from..].
    fn events_since(&self, from: usize, n: usize) -> Vec<Value> {
        let t0 = Instant::now();
        while self.count() < from + n && t0.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(20));
        self.lines.lock().unwrap()[from..]
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("sink line {l:?}: {e}")))
            .collect()
    }
}

impl Sink {
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct RunOut {
    status: i32,
    stderr: String,
    events: Vec<Value>,
}

/// Runs packetbeat on `pcap` with `config` + `output` (YAML), data in `data` (so `agent.id` is
/// the same across runs); returns the file output's events when `output` is a file output.
fn run(pcap: &Path, config: &str, output: &str, data: &Path, extra: &[&str]) -> RunOut {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("out");
    let cfg_path = tmp.path().join("packetbeat.yml");
    let output = output.replace("@OUT@", &out_dir.display().to_string());
    std::fs::write(
        &cfg_path,
        format!("{config}\n{output}\npath.data: {}\n", data.display()),
    )
    .unwrap();
    let o = common::output_within(
        &mut Command::new(env!("CARGO_BIN_EXE_packetbeat"))
            .args(["-e", "-t", "-I"])
            .arg(pcap)
            .arg("-c")
            .arg(&cfg_path)
            .arg("--strict.perms=false")
            .args(extra),
        common::PROGRAM_LIMIT,
    );
    let mut events = Vec::new();
    if let Ok(rd) = std::fs::read_dir(&out_dir) {
        let mut files: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
        files.sort();
        for f in files {
            for line in std::fs::read_to_string(&f).unwrap().lines() {
                events.push(serde_json::from_str(line).unwrap());
            }
        }
    }
    RunOut {
        status: o.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        events,
    }
}

const FILE_OUT: &str = "output.file:\n  path: @OUT@\n  filename: packetbeat\n";

/// The one per-run field: `agent.ephemeral_id`.
fn strip(mut v: Value) -> Value {
    if let Some(a) = v.get_mut("agent").and_then(|a| a.as_object_mut()) {
        a.remove("ephemeral_id");
    }
    v
}

fn multiset(evs: &[Value]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for e in evs {
        *m.entry(strip(e.clone()).to_string()).or_default() += 1;
    }
    m
}

/// Every expected event arrived at least as often as expected; returns the duplicates.
fn check_delivered(expected: &[Value], got: &[Value], what: &str) -> usize {
    let want = multiset(expected);
    let have = multiset(got);
    let mut missing = 0;
    for (k, n) in &want {
        let h = have.get(k).copied().unwrap_or(0);
        if h < *n {
            missing += n - h;
            if missing < 3 {
                eprintln!("{what}: missing {}x {}", n - h, &k[..k.len().min(300)]);
            }
        }
    }
    let extra_unknown = have.keys().filter(|k| !want.contains_key(*k)).count();
    assert_eq!(missing, 0, "{what}: {missing} events lost");
    assert_eq!(
        extra_unknown, 0,
        "{what}: events that output.file did not write"
    );
    got.len() - expected.len()
}

fn pcaps() -> Vec<PathBuf> {
    let Some(dir) = shared("pcaps") else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .collect();
    v.sort();
    v
}

fn ready() -> bool {
    shared_or_skip("pcaps").is_some() && sink_binary().is_some()
}

/// Every capture through `output` (with `@HOSTS@` replaced by the sinks' addresses) equals the
/// file output as a multiset of JSON values (the order of events flushed at the end of a capture
/// differs between runs of the same binary, whatever the output).
fn every_capture(sinks: &[Sink], output: &str) {
    let hosts: Vec<String> = sinks.iter().map(|s| format!("\"{}\"", s.addr)).collect();
    let output = output.replace("@HOSTS@", &format!("[{}]", hosts.join(", ")));
    let mut total = 0;
    for pcap in pcaps() {
        let data = tempfile::tempdir().unwrap();
        let want = run(&pcap, ALL_PROTOCOLS, FILE_OUT, data.path(), &[]);
        let before: Vec<usize> = sinks.iter().map(|s| s.count()).collect();
        let r = run(&pcap, ALL_PROTOCOLS, &output, data.path(), &[]);
        assert_eq!(r.status, want.status, "{}: {}", pcap.display(), r.stderr);
        let mut got = Vec::new();
        let mut seen = 0;
        for (s, b) in sinks.iter().zip(&before) {
            let n = want.events.len().saturating_sub(seen);
            let evs = s.events_since(*b, if sinks.len() == 1 { n } else { 0 });
            seen += evs.len();
            got.extend(evs);
        }
        let name = pcap.file_name().unwrap().to_string_lossy().to_string();
        assert_eq!(
            got.len(),
            want.events.len(),
            "{name}: event count; {}",
            r.stderr
        );
        assert_eq!(check_delivered(&want.events, &got, &name), 0);
        total += got.len();
    }
    let per_sink: Vec<usize> = sinks.iter().map(|s| s.count()).collect();
    eprintln!("{total} events compared; per sink: {per_sink:?}");
    assert!(total > 0);
    assert!(
        per_sink.iter().all(|&n| n > 0),
        "a sink got nothing: {per_sink:?}"
    );
}

#[test]
fn every_capture_plain_uncompressed() {
    if !ready() {
        return;
    }
    let sink = Sink::start(&[]);
    every_capture(
        &[sink],
        "output.logstash:\n  hosts: @HOSTS@\n  compression_level: 0\n",
    );
}

#[test]
fn every_capture_compressed_default_level() {
    if !ready() {
        return;
    }
    let sink = Sink::start(&[]);
    every_capture(&[sink], "output.logstash:\n  hosts: @HOSTS@\n");
}

#[test]
fn every_capture_loadbalance_over_two_sinks() {
    if !ready() {
        return;
    }
    let a = Sink::start(&[]);
    let b = Sink::start(&[]);
    every_capture(
        &[a, b],
        "output.logstash:\n  hosts: @HOSTS@\n  loadbalance: true\n  bulk_max_size: 3\n  slow_start: true\n"
    );
}

#[test]
fn every_capture_tls_with_client_certificate() {
    if !ready() {
        return;
    }
    let c = Certs::new();
    let sink = Sink::start(&[
        "-tls-cert",
        &c.p("server.pem"),
        "-tls-key",
        &c.p("server.key"),
        "-tls-ca",
        &c.p("ca.pem"),
    ]);
    let port = sink.port();
    let out = format!(
        "output.logstash:\n  hosts: [\"localhost:{port}\"]\n  ssl:\n    certificate_authorities: [{}]\n    certificate: {}\n    key: {}\n",
        c.p("ca.pem"),
        c.p("client.pem"),
        c.p("client.key")
    );
    every_capture(&[sink], &out);
}

fn write_cfg(dir: &Path, body: &str) -> PathBuf {
    let p = dir.join("pb.yml");
    std::fs::write(&p, body).unwrap();
    p
}

fn test_output(cfg: &Path) -> (i32, String) {
    let o = common::output_within(
        &mut Command::new(env!("CARGO_BIN_EXE_packetbeat"))
            .args(["test", "output", "-c"])
            .arg(cfg)
            .arg("--strict.perms=false"),
        common::PROGRAM_LIMIT,
    );
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

#[test]
fn test_output_reports_each_step() {
    if sink_binary().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let sink = Sink::start(&[]);
    let cfg = write_cfg(
        tmp.path(),
        &format!("output.logstash:\n  hosts: [\"{}\"]\n", sink.addr),
    );
    let (code, out) = test_output(&cfg);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out,
        format!(
            "logstash: {}...\n  connection...\n    parse host... OK\n    dns lookup... OK\n    addresses: 127.0.0.1\n    dial up... OK\n  TLS... WARN secure connection disabled\n  talk to server... OK\n",
            sink.addr
        )
    );
    drop(sink);

    let c = Certs::new();
    let sink = Sink::start(&[
        "-tls-cert",
        &c.p("server.pem"),
        "-tls-key",
        &c.p("server.key"),
    ]);
    let cfg = write_cfg(
        tmp.path(),
        &format!(
            "output.logstash:\n  hosts: [\"localhost:{}\"]\n  ssl.certificate_authorities: [{}]\n",
            sink.port(),
            c.p("ca.pem")
        ),
    );
    let (code, out) = test_output(&cfg);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("  TLS...\n    security: server's certificate chain verification is enabled\n    handshake... OK\n    TLS version: TLSv1.3\n    dial up... OK\n  talk to server... OK\n"), "{out}");

    // the wrong CA: the handshake fails, exit 1
    let other = Certs::new();
    let cfg = write_cfg(
        tmp.path(),
        &format!(
            "output.logstash:\n  hosts: [\"localhost:{}\"]\n  ssl.certificate_authorities: [{}]\n",
            sink.port(),
            other.p("ca.pem")
        ),
    );
    let (code, out) = test_output(&cfg);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("    handshake... ERROR"), "{out}");
    // verification_mode: none accepts it
    let cfg = write_cfg(
        tmp.path(),
        &format!(
            "output.logstash:\n  hosts: [\"localhost:{}\"]\n  ssl.verification_mode: none\n",
            sink.port()
        ),
    );
    let (code, out) = test_output(&cfg);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("security... WARN server's certificate chain verification is disabled"),
        "{out}"
    );
    drop(sink);

    // nothing listening
    let cfg = write_cfg(
        tmp.path(),
        "output.logstash:\n  hosts: [\"127.0.0.1:1\"]\n  timeout: 1s\n",
    );
    let (code, out) = test_output(&cfg);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("    dial up... ERROR"), "{out}");

    let cfg = write_cfg(tmp.path(), "output.file:\n  path: /tmp\n");
    let (code, out) = test_output(&cfg);
    assert_eq!(
        (code, out.as_str()),
        (1, "file output doesn't support testing\n")
    );
}

#[test]
fn through_a_socks5_proxy_with_credentials() {
    if !ready() {
        return;
    }
    let sink = Sink::start(&["-socks5", "-socks5-user", "u", "-socks5-pass", "p@ss"]);
    let log = sink.log.lock().unwrap().clone();
    let proxy = log
        .lines()
        .find_map(|l| l.strip_prefix("SOCKS5 "))
        .expect("proxy address")
        .to_string();
    let pcap = shared("pcaps/wsgi_drum.pcap").unwrap();
    let data = tempfile::tempdir().unwrap();
    let want = run(&pcap, ALL_PROTOCOLS, FILE_OUT, data.path(), &[]);
    let out = format!(
        "output.logstash:\n  hosts: [\"localhost:{}\"]\n  proxy_url: socks5://u:p%40ss@{proxy}\n",
        sink.port()
    );
    let r = run(&pcap, ALL_PROTOCOLS, &out, data.path(), &[]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    let got = sink.events_since(0, want.events.len());
    assert_eq!(check_delivered(&want.events, &got, "socks5"), 0);
    let log = sink.log.lock().unwrap().clone();
    assert!(log.contains("SOCKS5 CONNECT"), "{log}");
}

#[test]
fn failover_to_the_next_host() {
    if !ready() {
        return;
    }
    let sink = Sink::start(&[]);
    let pcap = shared(FAULT_PCAP).unwrap();
    let data = tempfile::tempdir().unwrap();
    let want = run(&pcap, ALL_PROTOCOLS, FILE_OUT, data.path(), &[]);
    // whichever host is tried first, everything ends up at the live one
    let out = format!(
        "output.logstash:\n  hosts: [\"127.0.0.1:1\", \"{}\", \"127.0.0.1:1\"]\n{FAST}",
        sink.addr
    );
    let r = run(&pcap, ALL_PROTOCOLS, &out, data.path(), &[]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    let got = sink.events_since(0, want.events.len());
    assert_eq!(check_delivered(&want.events, &got, "failover"), 0);
}

#[test]
fn ttl_reconnects_with_pipelining_off() {
    if !ready() {
        return;
    }
    let (n, dups, stderr, log) = fault_run(&[], "  pipelining: 0\n  ttl: 1ms\n");
    let conns = log.matches("New connection").count();
    eprintln!("ttl: {n} events, {dups} duplicates, {conns} connections");
    assert!(conns > 3, "{log}");
    assert_eq!(dups, 0, "{stderr}");
}

#[test]
fn sigint_ends_the_wait_for_a_dead_output() {
    if shared_or_skip(FAULT_PCAP).is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // shutdown_timeout 0: with -I, wait for every ACK... until a signal says stop
    let cfg = write_cfg(
        tmp.path(),
        &format!(
            "{ALL_PROTOCOLS}\noutput.logstash:\n  hosts: [\"127.0.0.1:1\"]\n{FAST}path.data: {}\n",
            tmp.path().join("data").display()
        ),
    );
    let child = Command::new(env!("CARGO_BIN_EXE_packetbeat"))
        .args(["-e", "-t", "-I"])
        .arg(shared(FAULT_PCAP).unwrap())
        .arg("-c")
        .arg(&cfg)
        .arg("--strict.perms=false")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: signalling our own child by its id.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let t0 = Instant::now();
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    let expected = run(
        &shared(FAULT_PCAP).unwrap(),
        ALL_PROTOCOLS,
        FILE_OUT,
        tempfile::tempdir().unwrap().path(),
        &[],
    )
    .events
    .len();
    assert!(expected > 0);
    assert!(
        stderr.contains(&format!("{expected} events were not delivered")),
        "{stderr}"
    );
}

/// `index` names the events' `@metadata.beat`; `escape_html` escapes `<`, `>` and `&` in
/// strings. Without `index`, the packet workers encode the events ahead (with `escape_html`);
/// with it, the output encodes them after setting `@metadata.beat`.
fn metadata_beat_and_escape_html(index: Option<&str>, beat: &str) {
    if !ready() {
        return;
    }
    let sink = Sink::start(&[]);
    let pcap = shared(FAULT_PCAP).unwrap();
    let data = tempfile::tempdir().unwrap();
    let index = index.map(|i| format!("  index: {i}\n")).unwrap_or_default();
    let out = format!(
        "fields:\n  html: \"<b>&</b>\"\noutput.logstash:\n  hosts: [\"{}\"]\n{index}  escape_html: true\n  compression_level: 9\n",
        sink.addr
    );
    let expected = run(
        &pcap,
        ALL_PROTOCOLS,
        FILE_OUT,
        tempfile::tempdir().unwrap().path(),
        &[],
    )
    .events
    .len();
    assert!(expected > 0);
    let r = run(&pcap, ALL_PROTOCOLS, &out, data.path(), &[]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    let got = sink.events_since(0, expected);
    assert_eq!(got.len(), expected);
    for e in &got {
        assert_eq!(e["@metadata"]["beat"], beat);
        assert_eq!(e["@metadata"]["type"], "_doc");
    }
    let raw = sink.lines.lock().unwrap().join("\n");
    assert!(!raw.contains('<') && !raw.contains('>'), "HTML not escaped");
    assert!(
        raw.contains(r#""html":"\u003cb\u003e\u0026\u003c/b\u003e""#),
        "{raw:.300}"
    );
}

#[test]
fn index_sets_metadata_beat_and_escape_html() {
    metadata_beat_and_escape_html(Some("MyIndex"), "myindex");
}

#[test]
fn escape_html_without_index_in_the_events_the_workers_encode() {
    metadata_beat_and_escape_html(None, "packetbeat");
}

// ---- faults ----

/// A capture with many events, looped: the expected events come from output.file.
const FAULT_PCAP: &str = "pcaps/wsgi_drum.pcap";
const LOOPS: &str = "20";
const FAST: &str =
    "  timeout: 500ms\n  backoff.init: 20ms\n  backoff.max: 200ms\n  bulk_max_size: 50\n";

fn expected_fault_events(pcap: &Path, data: &Path) -> Vec<Value> {
    let r = run(pcap, ALL_PROTOCOLS, FILE_OUT, data, &["-l", LOOPS]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert!(r.events.len() > 200, "{} events", r.events.len());
    r.events
}

fn fault_run(sink_args: &[&str], extra_output: &str) -> (usize, usize, String, String) {
    let pcap = shared(FAULT_PCAP).unwrap();
    let data = tempfile::tempdir().unwrap();
    let want = expected_fault_events(&pcap, data.path());
    let sink = Sink::start(sink_args);
    let out = format!(
        "output.logstash:\n  hosts: [\"{}\"]\n{FAST}{extra_output}",
        sink.addr
    );
    let r = run(&pcap, ALL_PROTOCOLS, &out, data.path(), &["-l", LOOPS]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    let got = sink.events_since(0, want.len());
    let dups = check_delivered(&want, &got, "fault run");
    let log = sink.log.lock().unwrap().clone();
    (want.len(), dups, r.stderr, log)
}

#[test]
fn ack_delayed_past_timeout_is_resent() {
    if !ready() {
        return;
    }
    let (n, dups, stderr, log) = fault_run(
        &[
            "-ack-delay",
            "1500ms",
            "-ack-delay-batches",
            "2",
            "-keepalive",
            "0",
        ],
        "",
    );
    eprintln!("delayed ACK: {n} events, {dups} duplicates");
    assert!(log.contains("DELAY"), "{log}");
    assert!(stderr.contains("timed out waiting for an ACK"), "{stderr}");
    assert!(dups > 0);
}

#[test]
fn keepalive_acks_hold_the_connection_while_the_server_is_busy() {
    if !ready() {
        return;
    }
    let (n, dups, stderr, _) = fault_run(
        &[
            "-ack-delay",
            "1500ms",
            "-ack-delay-batches",
            "2",
            "-keepalive",
            "100ms",
        ],
        "",
    );
    eprintln!("keep-alive: {n} events, {dups} duplicates");
    assert!(!stderr.contains("Failed to publish"), "{stderr}");
    assert_eq!(dups, 0);
}

#[test]
fn partial_acks_release_prefixes() {
    if !ready() {
        return;
    }
    for extra in [
        "",
        "  pipelining: 0\n",
        "  pipelining: 4\n  compression_level: 0\n",
    ] {
        let (n, dups, stderr, _) = fault_run(&["-partial"], extra);
        eprintln!("partial ACKs ({extra:?}): {n} events, {dups} duplicates");
        assert!(!stderr.contains("Failed to publish"), "{stderr}");
        assert_eq!(dups, 0);
    }
}

#[test]
fn dropped_connection_is_resent() {
    if !ready() {
        return;
    }
    let (n, dups, stderr, log) = fault_run(&["-drop-after", "120"], "  slow_start: true\n");
    eprintln!("dropped connection: {n} events, {dups} duplicates");
    assert!(log.contains("DROP"), "{log}");
    assert!(stderr.contains("Failed to publish"), "{stderr}");
}

#[test]
fn sink_killed_and_restarted_mid_stream() {
    if !ready() {
        return;
    }
    let pcap = shared(FAULT_PCAP).unwrap();
    let data = tempfile::tempdir().unwrap();
    let want = expected_fault_events(&pcap, data.path());
    // ACKs held a little so the kill lands mid-stream
    let sink = Sink::start(&["-ack-delay", "30ms", "-ack-delay-batches", "1000000"]);
    let addr = sink.addr.clone();
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_cfg(
        tmp.path(),
        &format!(
            "{ALL_PROTOCOLS}\noutput.logstash:\n  hosts: [\"{addr}\"]\n{FAST}path.data: {}\n",
            data.path().display()
        ),
    );
    let child = Command::new(env!("CARGO_BIN_EXE_packetbeat"))
        .args(["-e", "-t", "-l", LOOPS, "-I"])
        .arg(&pcap)
        .arg("-c")
        .arg(&cfg)
        .arg("--strict.perms=false")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while sink.count() < 100 && t0.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut sink = sink;
    sink.kill(); // what it printed before dying (everything it ACKed) is still read
    std::thread::sleep(Duration::from_millis(300));
    let first: Vec<Value> = sink.events_since(0, 0);
    let sink2 = Sink::start(&["-addr", &addr]);
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    let mut got = first.clone();
    got.extend(sink2.events_since(0, want.len().saturating_sub(first.len())));
    let dups = check_delivered(&want, &got, "kill/restart");
    eprintln!(
        "kill/restart: {} events expected, {} before the kill, {} after, {dups} duplicates",
        want.len(),
        first.len(),
        got.len() - first.len()
    );
    assert!(first.len() < want.len(), "the kill did not land mid-stream");
    assert!(stderr.contains("Failed to"), "{stderr}");
}

#[test]
fn shutdown_timeout_reports_undelivered_events() {
    if sink_binary().is_none() || shared_or_skip(FAULT_PCAP).is_none() {
        return;
    }
    let pcap = shared(FAULT_PCAP).unwrap();
    let data = tempfile::tempdir().unwrap();
    let out = format!(
        "packetbeat.shutdown_timeout: 1s\noutput.logstash:\n  hosts: [\"127.0.0.1:1\"]\n{FAST}"
    );
    let t0 = Instant::now();
    let r = run(&pcap, ALL_PROTOCOLS, &out, data.path(), &[]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert!(t0.elapsed() < Duration::from_secs(15));
    assert!(
        r.stderr
            .contains("events were not delivered before shutdown_timeout"),
        "{}",
        r.stderr
    );
}
