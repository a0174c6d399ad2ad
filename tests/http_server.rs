//! HTTP framing against a real server and real clients: Python's `http.server` answering curl
//! (keep-alive connections mixing GET, HEAD, 204 and 304, uploads with `Expect: 100-continue`
//! answered with `100 Continue` or refused before the body) and a raw-socket client switching
//! protocols with `101`. Captured with tcpdump on loopback and replayed; every transaction is
//! reported once, with the method, status and uploaded bytes curl saw.

mod common;

use serde_json::Value;
use std::process::{Child, Command};
use std::time::Duration;

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const SERVER: &str = r#"
import http.server, socketserver, sys

class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def body(self, code, data, extra=()):
        self.send_response(code)
        for k, v in extra:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD" and code not in (204, 304):
            self.wfile.write(data)
    def do_GET(self):
        if self.path == "/empty":
            self.send_response(204)
            self.end_headers()
        elif self.path == "/cached":
            # A 304 repeats the entity's Content-Length; it still has no body.
            self.body(304, b"x" * 4000, [("ETag", '"v1"')])
        elif self.path == "/ws":
            self.send_response(101)
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.end_headers()
            self.wfile.flush()
            self.wfile.write(b"\x81\x05HTTP/1.1 200 OK\r\n\r\n")
            self.wfile.flush()
            self.rfile.read(24)
            self.close_connection = True
        else:
            self.body(200, b"hello world\n" * 100)
    do_HEAD = do_GET
    def handle_expect_100(self):
        if self.path == "/refuse":
            self.body(401, b"")
            self.close_connection = True
            return False
        return super().handle_expect_100()
    def do_PUT(self):
        n = int(self.headers["Content-Length"])
        self.rfile.read(n)
        self.body(201, b"stored %d\n" % n)

class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
S(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"#;

const WS_CLIENT: &str = r#"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
got = b""
while b"200 OK\r\n\r\n" not in got:
    got += s.recv(4096)
# Frames after the switch that look like HTTP must not be read as HTTP.
s.sendall(b"GET /not-http HTTP/1.1\r\n\r\n")
s.close()
print(got.split(b"\r\n")[0].decode())
"#;

/// Uploads that wait for `100 Continue`: sends the body only when the server asks for it.
/// Prints "status PUT bytes-sent" per upload.
const EXPECT_CLIENT: &str = r#"
import socket, sys
for path in ("/accept", "/refuse"):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    body = b"u" * 50000
    s.sendall(b"PUT %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n"
              % (path.encode(), len(body)))
    f = s.makefile("rb")
    status = int(f.readline().split()[1])
    while f.readline() not in (b"\r\n", b""):
        pass
    sent = 0
    if status == 100:
        s.sendall(body)
        sent = len(body)
        status = int(f.readline().split()[1])
        n = 0
        while True:
            h = f.readline()
            if h.lower().startswith(b"content-length:"):
                n = int(h.split(b":")[1])
            if h in (b"\r\n", b""):
                break
        f.read(n)
    print(status, "PUT", sent)
    s.close()
"#;

/// Runs curl; returns one line per transfer: "code method size_upload".
fn curl(args: &[&str]) -> Vec<String> {
    let out = common::output_within(
        Command::new("curl").arg("-s").args(args),
        common::PROGRAM_LIMIT,
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn http_server_framing_session() {
    for t in ["python3", "curl", "tcpdump"] {
        if common::on_path(t).is_none() {
            if common::ci() {
                panic!("{t} is missing: run scripts/install-deps");
            }
            eprintln!("skipping: {t} not installed");
            return;
        }
    }
    let port = common::free_port();
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("http.pcap");
    let dump = common::LoopbackCapture::start(&pcap, &format!("tcp port {port}"));
    let _server = Killed(
        Command::new("python3")
            .args(["-c", SERVER, &port.to_string()])
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let w = "%{http_code} %{method} %{size_upload}\\n";
    let o = "/dev/null";
    // One keep-alive connection: GET, HEAD (its response announces 1200 bytes it never
    // sends), 204, 304 (with a Content-Length of 4000), GET.
    let (a, empty, cached) = (
        format!("{base}/a"),
        format!("{base}/empty"),
        format!("{base}/cached"),
    );
    let mut seen = curl(&[
        "-w", w, "-o", o, &a, "--next", "-w", w, "-o", o, "-I", &a, "--next", "-w", w, "-o", o,
        &empty, "--next", "-w", w, "-o", o, &cached, "--next", "-w", w, "-o", o, &a,
    ]);
    // Uploads waiting for 100 Continue: accepted, then refused before the body.
    let up = common::output_within(
        &mut Command::new("python3")
            .args(["-c", EXPECT_CLIENT, &port.to_string()]),
        common::PROGRAM_LIMIT,
    );
    seen.extend(
        String::from_utf8_lossy(&up.stdout)
            .lines()
            .map(str::to_string),
    );
    let ws = common::output_within(
        &mut Command::new("python3")
            .args(["-c", WS_CLIENT, &port.to_string()]),
        common::PROGRAM_LIMIT,
    );
    assert_eq!(
        String::from_utf8_lossy(&ws.stdout).trim(),
        "HTTP/1.1 101 Switching Protocols"
    );
    assert_eq!(
        seen,
        [
            "200 GET 0",
            "200 HEAD 0",
            "204 GET 0",
            "304 GET 0",
            "200 GET 0",
            "201 PUT 50000",
            "401 PUT 0"
        ],
        "what curl saw"
    );
    std::thread::sleep(Duration::from_millis(500));
    dump.stop();

    let cfg = format!("packetbeat.protocols:\n  - type: http\n    ports: [{port}]\n");
    let run = common::run_capture(&pcap, &cfg, &[]);
    let get = |e: &Value, k: &str| common::get(e, k).cloned().unwrap_or(Value::Null);
    let mut got: Vec<String> = run
        .events
        .iter()
        .map(|e| {
            let up = match get(e, "http.request.method").as_str() {
                Some("PUT") => get(e, "http.request.body.bytes").as_i64().unwrap_or(0),
                _ => 0,
            };
            format!(
                "{} {} {} {}",
                get(e, "http.response.status_code"),
                get(e, "http.request.method").as_str().unwrap_or("-"),
                up,
                get(e, "url.path").as_str().unwrap_or("-"),
            )
        })
        .collect();
    got.sort();
    let mut want = vec![
        "200 GET 0 /a",
        "200 HEAD 0 /a",
        "204 GET 0 /empty",
        "304 GET 0 /cached",
        "200 GET 0 /a",
        "201 PUT 50000 /accept",
        "401 PUT 0 /refuse",
        "101 GET 0 /ws",
    ];
    want.sort();
    assert_eq!(got, want, "{}", run.stderr);
    for e in &run.events {
        assert!(
            common::get(e, "error.message").is_none(),
            "no notes expected: {e}"
        );
    }
}
