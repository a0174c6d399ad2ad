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
    let output = Command::new(env!("CARGO_BIN_EXE_packetbeat"))
        .args(if fast {
            &["-e", "-t", "-I"][..]
        } else {
            &["-e", "-I"][..]
        })
        .arg(pcap)
        .arg("-c")
        .arg(&cfg_path)
        .arg("--strict.perms=false")
        .args(extra_args)
        .output()
        .expect("run packetbeat");
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

/// Runs a MongoDB capture (ports 27017 and 9991) with `output` (a YAML output section) from
/// `home`; exit code and stderr. `fast`: read the file as fast as possible (`-t`), else at the
/// capture's own pace. For the network outputs' tests.
pub fn run_mongodb(home: &Path, pcap: &Path, output: &str, fast: bool) -> (i32, String) {
    let cfg = home.join("packetbeat.yml");
    std::fs::write(
        &cfg,
        format!(
            "packetbeat.protocols:\n- type: mongodb\n  ports: [27017, 9991]\n{output}\npath.data: {}\n",
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
    let o = c
        .arg(pcap)
        .arg("-c")
        .arg(&cfg)
        .arg("--strict.perms=false")
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
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
