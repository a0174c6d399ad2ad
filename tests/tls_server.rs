//! TLS handshakes against a real server: `openssl s_server` answering Python's `ssl` client
//! over TLS 1.2 and TLS 1.3, each a full handshake then a resumption of its session, and a
//! TLS 1.2 handshake the client aborts with a fatal alert after the server's certificate
//! (it does not trust it). Captured with tcpdump on loopback and replayed: every handshake is
//! reported once, `tls.resumed` and `tls.established` as the client saw them.

mod common;

use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Per handshake, one line: "version resumed" as the client saw it, or "aborted".
const CLIENT: &str = r#"
import os, select, socket, ssl, sys
port = int(sys.argv[1])

def get(ctx, session=None):
    with socket.create_connection(("127.0.0.1", port)) as raw:
        with ctx.wrap_socket(raw, server_hostname="bench.test", session=session) as s:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            while s.recv(65536):
                pass
            print(s.version(), s.session_reused, flush=True)
            return s.session

for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ctx.maximum_version = version
    session = get(ctx)
    get(ctx, session)

# Verifying against the system store: the self-signed certificate is refused with an alert.
ctx = ssl.create_default_context()
ctx.maximum_version = ssl.TLSVersion.TLSv1_2
with socket.create_connection(("127.0.0.1", port)) as raw:
    s = ctx.wrap_socket(raw, server_hostname="bench.test", do_handshake_on_connect=False)
    try:
        s.do_handshake()
        print("not aborted")
    except ssl.SSLCertVerificationError:
        # Wait for the server to close after the alert, so that the connection always ends
        # with its FIN: Packetbeat reports a TLS connection at a FIN (or a gap), and closing
        # first would leave the server's close to race the client's RST.
        while select.select([s], [], [], 5)[0] and os.read(s.fileno(), 65536):
            pass
        print("aborted", flush=True)
    s.close()
"#;

#[test]
fn tls_server_handshakes() {
    for t in ["openssl", "python3", "tcpdump"] {
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
    let (key, cert) = (dir.path().join("key.pem"), dir.path().join("cert.pem"));
    let st = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=bench.test", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "openssl req");
    let pcap = dir.path().join("tls.pcap");
    let dump = common::LoopbackCapture::start(&pcap, &format!("tcp port {port}"));
    let _server = Killed(
        Command::new("openssl")
            .args(["s_server", "-quiet", "-www", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(&cert)
            .arg("-key")
            .arg(&key)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = common::output_within(
        &mut Command::new("python3")
            .args(["-c", CLIENT, &port.to_string()]),
        common::PROGRAM_LIMIT,
    );
    let seen = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        seen.lines().collect::<Vec<_>>(),
        [
            "TLSv1.2 False",
            "TLSv1.2 True",
            "TLSv1.3 False",
            "TLSv1.3 True",
            "aborted"
        ],
        "what the client saw: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::thread::sleep(Duration::from_millis(300));
    dump.stop();

    let cfg = format!("packetbeat.protocols:\n  - type: tls\n    ports: [{port}]\n");
    let run = common::run_capture(&pcap, &cfg, &[]);
    let get = |e: &Value, k: &str| common::get(e, k).cloned().unwrap_or(Value::Null);
    let mut evs = run.events.clone();
    evs.sort_by_key(|e| get(e, "client.port").as_u64());
    let got: Vec<String> = evs
        .iter()
        .map(|e| {
            format!(
                "{} resumed={} established={}",
                get(e, "tls.version").as_str().unwrap_or("-"),
                get(e, "tls.resumed"),
                get(e, "tls.established"),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            "1.2 resumed=false established=true",
            "1.2 resumed=true established=true",
            "1.3 resumed=false established=true",
            "1.3 resumed=true established=true",
            "1.2 resumed=false established=false",
        ],
        "{}",
        run.stderr
    );
    // The aborted handshake: both hellos, the server's certificate and the client's alert.
    let aborted = &evs[4];
    assert_eq!(get(aborted, "status"), "Error");
    assert_eq!(
        get(aborted, "tls.server.x509.subject.common_name"),
        "bench.test"
    );
    assert_eq!(get(aborted, "tls.client.server_name"), "bench.test");
    assert!(get(aborted, "tls.cipher").is_string(), "{aborted}");
    let alerts = get(aborted, "tls.detailed.alerts");
    assert_eq!(alerts[0]["source"], "client", "{aborted}");
    assert_eq!(alerts[0]["severity"], "fatal", "{aborted}");
    assert_eq!(alerts[0]["type"], "unknown_ca", "{aborted}");
}
