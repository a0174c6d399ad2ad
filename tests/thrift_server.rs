//! A real Thrift server and client (tests/thrift/peer.py, on the `thrift` package from PyPI)
//! on loopback, binary+framed, binary+buffered and compact+framed, captured with tcpdump and
//! replayed with `-I`: every call is reported once, with the arguments, return value,
//! declared exception or TApplicationException the client saw; a oneway call without a reply;
//! a string past `string_max_size` cut as Packetbeat cuts it; a 100 KB string over many
//! segments; and, with `idl_files`, the argument and exception names and the service.

mod common;

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn peer() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/thrift/peer.py")
}

/// Starts the server and returns once it listens.
fn server(proto: &str, transport: &str, port: u16) -> Killed {
    let mut child = Command::new("python3")
        .arg(peer())
        .args(["server", proto, transport, &port.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(
        line.trim(),
        "ready",
        "the {proto}/{transport} server did not start"
    );
    Killed(child)
}

/// Runs the client's calls; what it saw, one value per call.
fn client(proto: &str, transport: &str, port: u16) -> Vec<Value> {
    let out = common::output_within(
        &mut Command::new("python3")
            .arg(peer())
            .args(["client", proto, transport, &port.to_string()]),
        common::PROGRAM_LIMIT,
    );
    assert!(
        out.status.success(),
        "client {proto}/{transport}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn s<'a>(e: &'a Value, path: &str) -> &'a str {
    common::field(e, path).as_str().unwrap_or("<absent>")
}

/// Go-quoted as Packetbeat writes strings: cut at 200 bytes with `...`.
fn quoted(text: &str) -> String {
    if text.len() > 200 {
        format!("\"{}...\"", &text[..200])
    } else {
        format!("{text:?}")
    }
}

/// The events of the mode on `port`, in call order, checked against what the client saw.
fn check(events: &[Value], seen: &[Value], port: u16, idl: bool) {
    let evs: Vec<&Value> = events
        .iter()
        .filter(|e| common::field(e, "server.port") == port)
        .collect();
    let methods: Vec<_> = evs.iter().map(|e| s(e, "method")).collect();
    let called: Vec<_> = seen.iter().map(|c| c["method"].as_str().unwrap()).collect();
    assert_eq!(methods, called, "each call reported once, port {port}");
    let name = |id: &str, n: &str| if idl { n.to_string() } else { id.to_string() };
    for (e, c) in evs.iter().zip(seen) {
        let method = c["method"].as_str().unwrap();
        assert_eq!(s(e, "type"), "thrift");
        assert_eq!(s(e, "network.transport"), "tcp");
        if c.get("oneway").is_some() {
            assert!(common::get(e, "thrift.return_value").is_none(), "{e}");
            assert_eq!(
                s(e, "query"),
                format!("note({}: \"fire and forget\")", name("1", "text"))
            );
            continue;
        }
        if let Some(r) = c.get("result") {
            assert_eq!(s(e, "status"), "OK", "{e}");
            let rendered = match r {
                Value::String(t) => quoted(t),
                other => other.to_string(),
            };
            assert_eq!(s(e, "thrift.return_value"), rendered);
        } else if let Some(x) = c.get("exception") {
            assert_eq!(s(e, "status"), "Error");
            let inner = &x["1"];
            assert_eq!(
                s(e, "thrift.exceptions"),
                format!(
                    "({}: (1: {}, 2: {:?}))",
                    name("1", "overflow"),
                    inner["1"],
                    inner["2"].as_str().unwrap()
                )
            );
        } else if let Some(x) = c.get("application_exception") {
            assert_eq!(s(e, "status"), "Error");
            assert_eq!(
                s(e, "thrift.exceptions"),
                format!("(1: {:?}, 2: {})", x[0].as_str().unwrap(), x[1])
            );
        } else {
            // A void reply.
            assert_eq!(s(e, "status"), "OK");
            assert_eq!(s(e, "thrift.return_value"), "");
        }
        assert!(common::field(e, "source.bytes").as_u64().unwrap() > 0);
        assert!(common::field(e, "destination.bytes").as_u64().unwrap() > 0);
        if idl {
            let service = if method == "nosuch" { "" } else { "Calc" };
            assert_eq!(s(e, "path"), service);
        } else {
            assert_eq!(s(e, "path"), "");
        }
    }
    let queries: Vec<_> = evs.iter().map(|e| s(e, "query")).collect();
    let (l, r) = (name("1", "left"), name("2", "right"));
    assert_eq!(queries[1], format!("add({l}: 1, {r}: 2)"));
    assert_eq!(queries[2], format!("add({l}: 2147483647, {r}: 1)"));
    assert_eq!(
        queries[3],
        format!(
            "echo({}: \"hello\", {}: [1, 65534, 3], {}: {{\"a\": 1}})",
            name("1", "text"),
            name("2", "numbers"),
            name("3", "tags")
        )
    );
    assert_eq!(
        queries[5],
        format!(
            "echo({}: \"{}...\", {}: , {}: {{}})",
            name("1", "text"),
            "x".repeat(200),
            name("2", "numbers"),
            name("3", "tags")
        )
    );
    assert_eq!(
        queries[6],
        format!("echo({}: \"{}...\")", name("1", "text"), "y".repeat(200))
    );
    // The 100 KB call: its bytes are the whole message, framed or not.
    assert!(common::field(evs[6], "source.bytes").as_u64().unwrap() > 100_000);
}

#[test]
fn thrift_server_session() {
    for t in ["python3", "tcpdump"] {
        if common::require_or_skip(common::on_path(t), t, common::HOW_DEPS).is_none() {
            return;
        }
    }
    let has_thrift = Command::new("python3")
        .args(["-c", "import thrift"])
        .status()
        .is_ok_and(|s| s.success());
    if common::require_or_skip(
        has_thrift.then_some(()),
        "python package thrift",
        common::HOW_DEPS,
    )
    .is_none()
    {
        return;
    }
    let modes = [
        ("binary", "framed", common::free_port()),
        ("binary", "buffered", common::free_port()),
        ("compact", "framed", common::free_port()),
    ];
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("thrift.pcap");
    let filter = modes
        .iter()
        .map(|m| format!("tcp port {}", m.2))
        .collect::<Vec<_>>()
        .join(" or ");
    let dump = common::LoopbackCapture::start(&pcap, &filter);
    let mut seen = Vec::new();
    for (proto, transport, port) in modes {
        let _server = server(proto, transport, port);
        seen.push(client(proto, transport, port));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    dump.stop();

    for (i, (proto, transport, port)) in modes.into_iter().enumerate() {
        let transport_type = if transport == "framed" {
            "framed"
        } else {
            "socket"
        };
        let cfg = format!(
            "packetbeat.protocols:\n  - type: thrift\n    ports: [{port}]\n    \
             transport_type: {transport_type}\n    protocol_type: {proto}\n"
        );
        let run = common::run_capture(&pcap, &cfg, &[]);
        assert_eq!(run.status, 0, "{}", run.stderr);
        check(&run.events, &seen[i], port, false);
    }

    // The binary+framed calls again, named by the IDL.
    let idl = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/thrift/calc.thrift");
    let (_, _, port) = modes[0];
    let cfg = format!(
        "packetbeat.protocols:\n  - type: thrift\n    ports: [{port}]\n    \
         transport_type: framed\n    idl_files: [\"{}\"]\n",
        idl.display()
    );
    let run = common::run_capture(&pcap, &cfg, &[]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    check(&run.events, &seen[0], port, true);
    let services: Vec<_> = run
        .events
        .iter()
        .filter_map(|e| common::get(e, "thrift.service"))
        .collect();
    assert_eq!(services.len(), 8, "every call but nosuch names its service");
}
