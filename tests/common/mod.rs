//! Helpers for the end-to-end tests: run the binary on a capture, read its events back.
#![allow(dead_code)]

pub mod certs;

use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

/// `../shared/<rel>` when it exists. Tests that need it go through [`shared_or_skip`].
pub fn shared(rel: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared")
        .join(rel);
    p.exists().then_some(p)
}

/// Under CI (`CI=true`, as `.ci/run` runs) nothing a test needs may be missing.
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The one place that decides what a test does without something it needs: `found` is passed
/// through when present. When it is `None`, with `CI=true` the test fails, naming `what` is
/// missing and `how` to get it; otherwise it prints `<what> is missing (<how>): skipped` and returns
/// `None`, and the test returns.
///
/// `let Some(x) = require_or_skip(find(), "tcpreplay", HOW_DEPS) else { return };`
#[track_caller]
pub fn require_or_skip<T>(found: Option<T>, what: &str, how: &str) -> Option<T> {
    if found.is_none() {
        if ci() {
            panic!("{what} is missing, which fails the test under CI=true: {how}");
        }
        eprintln!("{what} is missing ({how}): skipped");
    }
    found
}

/// How to get a system package the tests use.
pub const HOW_DEPS: &str = "install it with `bash scripts/install-deps`";

/// How to get `../shared`.
pub const HOW_SHARED: &str = "the project's shared/ folder (captures under pcaps/, expected \
     events under golden/) must sit beside the repository as ../shared";

/// `../shared/<rel>`, through [`require_or_skip`].
#[track_caller]
pub fn shared_or_skip(rel: &str) -> Option<PathBuf> {
    require_or_skip(shared(rel), &format!("../shared/{rel}"), HOW_SHARED)
}

/// Every capture under `../shared/pcaps` ([`all_captures`]), through [`require_or_skip`].
#[track_caller]
pub fn captures_or_skip() -> Option<Vec<PathBuf>> {
    let found = Some(all_captures()).filter(|c| !c.is_empty());
    require_or_skip(found, "../shared/pcaps", HOW_SHARED)
}

pub struct Run {
    pub status: i32,
    pub stderr: String,
    pub events: Vec<Value>,
}

/// Runs `packetbeat -e -t -I <pcap>` with `config` (YAML; an `output.file` section pointing into a
/// temp dir is added) and returns the events written.
pub fn run_capture(pcap: &Path, config: &str, extra_args: &[&str]) -> Run {
    replay(pcap, config, true, extra_args)
}

/// Like [`run_capture`]; without `-t` when `fast` is false (the capture is replayed at its own
/// pace).
pub fn replay(pcap: &Path, config: &str, fast: bool, extra_args: &[&str]) -> Run {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("out");
    let cfg_path = tmp.path().join("packetbeat.yml");
    let full = format!(
        "{config}\noutput.file:\n  path: {}\n  filename: packetbeat\npath.data: {}\n",
        out_dir.display(),
        tmp.path().join("data").display()
    );
    std::fs::write(&cfg_path, full).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_packetbeat"));
    cmd.args(if fast {
        &["-e", "-t", "-I"][..]
    } else {
        &["-e", "-I"][..]
    })
    .arg(pcap)
    .arg("-c")
    .arg(&cfg_path)
    .arg("--strict.perms=false")
    .args(extra_args);
    let output = output_within(&mut cmd, PROGRAM_LIMIT);
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    let mut events = Vec::new();
    if let Ok(rd) = std::fs::read_dir(&out_dir) {
        let mut files: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
        files.sort();
        for f in files {
            for line in std::fs::read_to_string(&f).unwrap().lines() {
                let v: Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("bad JSON line {line:?}: {e}"));
                events.push(v);
            }
        }
    }
    Run {
        status: output.status.code().unwrap_or(-1),
        stderr,
        events,
    }
}

/// Every capture under ../shared/pcaps (empty when ../shared is not there), sorted.
pub fn all_captures() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "pcap" || x == "pcapng") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    if let Some(dir) = shared("pcaps") {
        walk(&dir, &mut out);
    }
    out.sort();
    out
}

/// `{"a":{"b":1}}` → `{"a.b": 1}` (arrays stay values), as the golden files are written.
pub fn flatten(v: &Value) -> Map<String, Value> {
    fn walk(prefix: &str, v: &Value, out: &mut Map<String, Value>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, v, out);
                }
            }
            other => {
                out.insert(prefix.to_string(), other.clone());
            }
        }
    }
    let mut out = Map::new();
    walk("", v, &mut out);
    out
}

/// The program `name` as the shell finds it on the PATH.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .ok()?;
    let p = String::from_utf8_lossy(&o.stdout).trim().to_string();
    (o.status.success() && !p.is_empty()).then(|| PathBuf::from(p))
}

/// A TCP port free on loopback when asked.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The value at a dotted path of an event, `null` when absent.
pub fn field<'a>(e: &'a Value, path: &str) -> &'a Value {
    get(e, path).unwrap_or(&Value::Null)
}

pub fn get<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = v;
    for p in path.split('.') {
        cur = cur.get(p)?;
    }
    Some(cur)
}

/// The count at a dotted path of a metrics document; panics when it is missing or not a count.
pub fn count_at(v: &Value, path: &str) -> u64 {
    get(v, path)
        .unwrap_or_else(|| panic!("no {path} in {v}"))
        .as_u64()
        .unwrap_or_else(|| panic!("{path} is not a count in {v}"))
}

/// The metrics of the "Total metrics" line a run with `logging.json` logs at exit.
pub fn total_metrics(stderr: &str) -> Value {
    let line = stderr
        .lines()
        .find(|l| l.contains("\"Total metrics\""))
        .unwrap_or_else(|| panic!("no Total metrics line:\n{stderr}"));
    let v: Value = serde_json::from_str(line).unwrap();
    v["monitoring"]["metrics"].clone()
}

/// Config enabling the analyzers on the ports Packetbeat's own system tests use.
pub const ALL_PROTOCOLS: &str = r#"
packetbeat.interfaces.internal_networks: [private]
packetbeat.protocols:
  - type: icmp
  - type: dhcpv4
    ports: [67, 68]
  - type: dns
    ports: [53]
  - type: http
    ports: [80, 8080, 8000, 8002, 8888, 9200]
  - type: amqp
    ports: [5672]
  - type: cassandra
    ports: [9042]
  - type: memcache
    ports: [11211]
  - type: mysql
    ports: [3306, 3307]
  - type: pgsql
    ports: [5432]
  - type: redis
    ports: [6379, 6380]
  - type: thrift
    ports: [9090]
  - type: mongodb
    ports: [27017]
  - type: nfs
    ports: [2049]
  - type: tls
    ports: [443]
  - type: sip
    ports: [5060]
"#;

/// tcpdump writing the loopback packets `filter` matches to `pcap`: started and listening when
/// `start` returns, flushed and closed by `stop` (killed if dropped before that).
pub struct LoopbackCapture(std::process::Child);

impl LoopbackCapture {
    pub fn start(pcap: &Path, filter: &str) -> LoopbackCapture {
        use std::io::{BufRead, BufReader};
        let mut child = Command::new("tcpdump")
            // A 16 MiB buffer, so a burst is not dropped before it is written.
            .args([
                "-i",
                "lo",
                "--immediate-mode",
                "-U",
                "-B",
                "16384",
                "-s",
                "0",
                "-w",
            ])
            .arg(pcap)
            .arg(filter)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("tcpdump");
        // tcpdump says "listening on" once it captures.
        let mut line = String::new();
        BufReader::new(child.stderr.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        LoopbackCapture(child)
    }

    /// Interrupts tcpdump (SIGINT: it writes what it holds) and waits for it to exit.
    pub fn stop(mut self) {
        extern "C" {
            fn kill(pid: i32, sig: i32) -> i32;
        }
        unsafe { kill(self.0.id() as i32, 2) };
        let _ = self.0.wait();
    }
}

impl Drop for LoopbackCapture {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The MongoDB analyzer on the ports of the shared MongoDB captures.
pub const MONGODB: &str = "packetbeat.protocols:\n- type: mongodb\n  ports: [27017, 9991]\n";

/// The packetbeat command that reads `pcap` with `protocols` and `rest` (YAML: the output and
/// anything else) written to `home/packetbeat.yml`, data under `home/data`, logging to stderr.
/// `fast`: read the file as fast as possible (`-t`), else at the capture's own pace.
pub fn packetbeat_on(home: &Path, pcap: &Path, protocols: &str, rest: &str, fast: bool) -> Command {
    let cfg = home.join("packetbeat.yml");
    std::fs::write(
        &cfg,
        format!(
            "{protocols}{rest}\npath.data: {}\n",
            home.join("data").display()
        ),
    )
    .unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_packetbeat"));
    c.args(if fast {
        &["-e", "-t", "-I"][..]
    } else {
        &["-e", "-I"][..]
    });
    c.arg(pcap)
        .arg("-c")
        .arg(&cfg)
        .arg("--strict.perms=false");
    c
}

/// How long a program a test starts may run before the test kills it and fails: a client that
/// a broken server leaves waiting (a broker that blocks publishers when its disk is nearly full,
/// say) must fail its test, not hold up the whole run.
pub const PROGRAM_LIMIT: std::time::Duration = std::time::Duration::from_secs(300);

/// `c.output()`, but the program is killed after `limit` and the test fails, naming the program
/// and showing what it printed so far.
#[track_caller]
pub fn output_within(c: &mut Command, limit: std::time::Duration) -> std::process::Output {
    use std::io::Read;
    use std::process::Stdio;
    let what = format!("{:?}", c);
    let mut child = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let (out, err) = (out.join().unwrap(), err.join().unwrap());
            panic!(
                "{what} still ran after {} s and was killed\nstdout: {}\nstderr: {}",
                limit.as_secs(),
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&err)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    std::process::Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// Runs `c` to its end ([`output_within`] [`PROGRAM_LIMIT`]): exit code, stdout and stderr.
pub fn run_to_end(mut c: Command) -> (i32, String, String) {
    let o = output_within(&mut c, PROGRAM_LIMIT);
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Runs a MongoDB capture (ports 27017 and 9991) with `output` (a YAML output section) from
/// `home`; exit code and stderr. For the network outputs' tests.
pub fn run_mongodb(home: &Path, pcap: &Path, output: &str, fast: bool) -> (i32, String) {
    let (rc, _, err) = run_to_end(packetbeat_on(home, pcap, MONGODB, output, fast));
    (rc, err)
}

/// The lines `output.file` writes for a MongoDB capture (as [`run_mongodb`] runs it).
pub fn mongodb_file_lines(home: &Path, pcap: &Path) -> Vec<String> {
    let out = home.join("file-out");
    let _ = std::fs::remove_dir_all(&out);
    let (rc, err) = run_mongodb(
        home,
        pcap,
        &format!("output.file: {{path: {}}}", out.display()),
        true,
    );
    assert_eq!(rc, 0, "{err}");
    let mut v = Vec::new();
    for f in std::fs::read_dir(&out).unwrap().flatten() {
        for l in std::fs::read_to_string(f.path()).unwrap().lines() {
            v.push(l.to_string());
        }
    }
    v
}

/// `copies` copies of a DLT_NULL capture of TCP on IPv4, one after the other: copy k's client
/// ports moved by k (so each is a connection of its own), its timestamps squeezed by `scale`
/// and shifted by k × `every`. The packet workers hand events to the output 256 at a time,
/// so a capture of a few hundred events replayed at its own pace reaches the output in steps.
pub fn stretched_copies(src: &Path, dst: &Path, copies: u32, every: f64, scale: f64) {
    let d = std::fs::read(src).unwrap();
    let u32le = |b: &[u8]| u32::from_le_bytes(b[..4].try_into().unwrap());
    assert_eq!(u32le(&d[20..24]), 0, "DLT_NULL capture expected");
    let mut packets = Vec::new();
    let mut off = 24;
    while off + 16 <= d.len() {
        let t = u32le(&d[off..]) as f64 + u32le(&d[off + 4..]) as f64 / 1e6;
        let len = u32le(&d[off + 8..]) as usize;
        packets.push((t, d[off + 16..off + 16 + len].to_vec()));
        off += 16 + len;
    }
    let t0 = packets[0].0;
    let mut out = d[..24].to_vec();
    for k in 0..copies {
        for (t, p) in &packets {
            let mut p = p.clone();
            let ihl = (p[4] & 15) as usize * 4;
            let tcp = 4 + ihl;
            for at in [tcp, tcp + 2] {
                let port = u16::from_be_bytes([p[at], p[at + 1]]);
                if port != 9991 {
                    p[at..at + 2].copy_from_slice(&(port + k as u16).to_be_bytes());
                }
            }
            let nt = t0 + k as f64 * every + (t - t0) * scale;
            out.extend_from_slice(&(nt.floor() as u32).to_le_bytes());
            out.extend_from_slice(&(((nt.fract()) * 1e6) as u32).to_le_bytes());
            out.extend_from_slice(&(p.len() as u32).to_le_bytes());
            out.extend_from_slice(&(p.len() as u32).to_le_bytes());
            out.extend_from_slice(&p);
        }
    }
    std::fs::write(dst, out).unwrap();
}

/// One HTTP/1.1 GET over `stream` (`Connection: close`); the status and the body (chunked
/// bodies joined).
pub fn http_get(mut stream: impl std::io::Read + std::io::Write, path: &str) -> (u16, String) {
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = String::new();
        let mut rest = body;
        while let Some((size, after)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            out.push_str(&after[..n]);
            rest = &after[n + 2..];
        }
        out
    } else {
        body.to_string()
    };
    (status, body)
}

/// [`http_get`] on `127.0.0.1:port`; `None` while nothing listens.
pub fn http_get_tcp(port: u16, path: &str) -> Option<(u16, String)> {
    let s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    Some(http_get(s, path))
}

/// An output's peer dies mid-run and comes back: packetbeat reads `pcap` at its own pace with
/// `output` (a MongoDB capture, see [`run_mongodb`]); once `arrived` says the first events are
/// in the peer, `kill` stops it; packetbeat must still be waiting 3 s later; `restart` brings the
/// peer back, and the run must end with exit 0. Returns packetbeat's stderr.
pub fn outage_mid_run(
    home: &Path,
    pcap: &Path,
    output: String,
    arrived: impl Fn() -> bool,
    kill: impl FnOnce(),
    restart: impl FnOnce(),
) -> String {
    let runner = {
        let (h, pcap) = (home.to_path_buf(), pcap.to_path_buf());
        std::thread::spawn(move || run_mongodb(&h, &pcap, &output, false))
    };
    let t0 = std::time::Instant::now();
    while !arrived() {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(60),
            "no event reached the peer"
        );
        assert!(!runner.is_finished(), "packetbeat ended before the outage");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    kill();
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert!(!runner.is_finished(), "packetbeat did not wait for the peer");
    restart();
    let (rc, err) = runner.join().unwrap();
    assert_eq!(rc, 0, "{err}");
    err
}

/// At least once: every expected event arrived, and the duplicates are at most the events the
/// output said it sent again.
pub fn assert_at_least_once(mut got: Vec<String>, mut expected: Vec<String>, resent: usize) {
    got.sort();
    expected.sort();
    assert!(
        got.len() >= expected.len(),
        "{} of {}",
        got.len(),
        expected.len()
    );
    let dups = got.len() - expected.len();
    assert!(dups <= resent, "{dups} duplicates, {resent} resent");
    got.dedup();
    expected.dedup();
    assert_eq!(got, expected);
}

/// [`ALL_PROTOCOLS`] with flows: for tests that run every capture through an output.
pub fn all_protocols_and_flows() -> String {
    format!("{ALL_PROTOCOLS}packetbeat.flows: {{timeout: 30s, period: 10s}}\n")
}

/// The events `output.file` writes for `pcap` with [`all_protocols_and_flows`], run from `home`, each
/// without its per-run field (`agent.ephemeral_id`), as JSON text, sorted.
pub fn all_protocols_file_events(home: &Path, pcap: &Path) -> Vec<String> {
    let out = home.join("file-out");
    let _ = std::fs::remove_dir_all(&out);
    let (rc, _, err) = run_to_end(packetbeat_on(
        home,
        pcap,
        &all_protocols_and_flows(),
        &format!("output.file: {{path: {}}}", out.display()),
        true,
    ));
    assert_eq!(rc, 0, "{}: {err}", pcap.display());
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir(&out) {
        for f in rd.flatten() {
            for l in std::fs::read_to_string(f.path()).unwrap().lines() {
                v.push(without_ephemeral_id(l));
            }
        }
    }
    v.sort();
    v
}

/// An event's JSON text without `agent.ephemeral_id`, canonical (for multiset comparisons).
pub fn without_ephemeral_id(line: &str) -> String {
    let mut e: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
    if let Some(a) = e["agent"].as_object_mut() {
        a.remove("ephemeral_id");
    }
    e.to_string()
}
