//! A real memcached driven over TCP (text and binary protocol) and UDP (text protocol) by a
//! raw-socket Python client (tests/memcache/client.py), captured with tcpdump and replayed:
//! every command is reported once with the outcome the client saw (errors, a 200 KB value, a
//! pipelined burst of 50 sets, quiet binary gets closed by a noop, a reply in 4 UDP datagrams).

mod common;

use serde_json::{json, Value};
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

extern "C" {
    fn geteuid() -> u32;
}

#[test]
fn memcached_session() {
    for t in ["memcached", "python3", "tcpdump"] {
        if common::on_path(t).is_none() {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{t} is missing: run scripts/install-deps");
            }
            eprintln!("skipping: {t} not installed");
            return;
        }
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let uport = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("memcache.pcap");
    let dump =
        common::LoopbackCapture::start(&pcap, &format!("tcp port {port} or udp port {uport}"));
    let mut server = Command::new("memcached");
    // memcached refuses to run as root unless told which user to be.
    if unsafe { geteuid() } == 0 {
        server.args(["-u", "root"]);
    }
    let _server = Killed(
        server
            .args([
                "-l",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                &uport.to_string(),
            ])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/memcache/client.py");
    let client = common::output_within(
        &mut Command::new("python3")
            .args([script, "127.0.0.1", &port.to_string(), &uport.to_string()]),
        common::PROGRAM_LIMIT,
    );
    let stdout = String::from_utf8_lossy(&client.stdout).into_owned();
    assert!(
        client.status.success(),
        "client failed: {stdout}\n{}",
        String::from_utf8_lossy(&client.stderr)
    );
    let seen: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(seen.len(), 3, "{stdout}");
    std::thread::sleep(Duration::from_millis(1000));
    dump.stop();

    let cfg = format!("packetbeat.protocols:\n  - type: memcache\n    ports: [{port}, {uport}]\n");
    let run = common::run_capture(&pcap, &cfg, &[]);
    let ev = &run.events;
    let summary: Vec<String> = ev
        .iter()
        .map(|e| {
            format!(
                "{} {} {} {}",
                common::field(e, "network.transport"),
                common::field(e, "memcache.request.command"),
                common::field(e, "memcache.request.keys"),
                common::field(e, "memcache.response.command"),
            )
        })
        .collect();
    // The events of one command: transport, protocol, command and keys.
    let find = |transport: &str, proto: &str, command: &str, keys: Value| -> Vec<&Value> {
        ev.iter()
            .filter(|e| {
                common::field(e, "network.transport") == transport
                    && common::field(e, "memcache.protocol_type") == proto
                    && common::field(e, "memcache.request.command") == command
                    && (keys.is_null() || *common::field(e, "memcache.request.keys") == keys)
            })
            .collect()
    };
    let one = |transport: &str, proto: &str, command: &str, keys: Value| -> &Value {
        let found = find(transport, proto, command, keys.clone());
        assert_eq!(
            found.len(),
            1,
            "{transport} {proto} {command} {keys}: {summary:#?}\n{}",
            run.stderr
        );
        found[0]
    };
    let text = |command: &str, keys: Value| one("tcp", "text", command, keys);
    let binary = |command: &str, keys: Value| one("tcp", "binary", command, keys);

    // Text protocol.
    let e = text("set", json!(["k1"]));
    assert_eq!(common::field(e, "memcache.response.command"), "STORED");
    assert_eq!(common::field(e, "status"), "OK");
    let e = text("get", json!(["k1"]));
    assert_eq!(common::field(e, "memcache.response.count_values"), 1);
    assert_eq!(common::field(e, "memcache.response.bytes"), 5);
    let e = text("incr", json!(["k1"]));
    assert_eq!(
        common::field(e, "memcache.response.command"),
        "CLIENT_ERROR"
    );
    assert_eq!(common::field(e, "status"), "Client Error");
    let e = text("set", json!(["big"]));
    assert_eq!(common::field(e, "memcache.request.bytes"), 200_000);
    let e = text("get", json!(["big"]));
    assert_eq!(common::field(e, "memcache.response.bytes"), 200_000);
    assert_eq!(common::field(e, "source.bytes"), 200_000 + 22 + 5);
    for i in 0..50 {
        let e = text("set", json!([format!("p{i}")]));
        assert_eq!(
            common::field(e, "memcache.response.command"),
            "STORED",
            "p{i}"
        );
    }
    let e = text("get", json!(["p1", "p2", "nokey", "p3"]));
    assert_eq!(
        common::field(e, "memcache.response.keys"),
        &json!(["p1", "p2", "p3"])
    );
    assert_eq!(common::field(e, "memcache.response.count_values"), 3);
    let deletes = find("tcp", "text", "delete", json!(["p0"]));
    let outcomes: Vec<_> = deletes
        .iter()
        .map(|e| {
            (
                common::field(e, "memcache.response.command"),
                common::field(e, "status"),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            (&json!("DELETED"), &json!("OK")),
            (&json!("NOT_FOUND"), &json!("Error"))
        ]
    );
    // Packetbeat's name for TOUCHED.
    assert_eq!(
        common::field(text("touch", json!(["p1"])), "memcache.response.command"),
        "TOCHED"
    );
    assert_eq!(
        common::field(text("incr", json!(["n"])), "memcache.response.value"),
        8
    );
    assert_eq!(
        common::field(text("decr", json!(["n"])), "memcache.response.value"),
        6
    );
    let e = text("add", json!(["n"]));
    assert_eq!(common::field(e, "memcache.response.command"), "NOT_STORED");
    assert_eq!(common::field(e, "status"), "Error");
    for c in ["replace", "append", "prepend", "cas"] {
        let e = text(c, json!(["n"]));
        assert_eq!(
            common::field(e, "memcache.response.command"),
            "STORED",
            "{c}"
        );
    }
    let e = text("gets", json!(["n"]));
    assert_eq!(
        common::field(e, "memcache.response.cas_unique"),
        &seen[0]["cas"]
    );
    assert_eq!(
        common::field(text("version", Value::Null), "memcache.response.command"),
        "VERSION"
    );
    let e = text("verbosity", Value::Null);
    assert_eq!(common::field(e, "memcache.request.verbosity"), 1);
    assert_eq!(common::field(e, "memcache.response.command"), "OK");
    let e = text("stats", Value::Null);
    assert_eq!(
        common::field(e, "memcache.response.stats")
            .as_array()
            .unwrap()
            .len() as u64,
        seen[0]["stats"].as_u64().unwrap()
    );
    let e = text("quit", Value::Null);
    assert!(common::field(e, "memcache.response").is_null());

    // Binary protocol.
    let e = binary("set", json!(["bk"]));
    assert_eq!(common::field(e, "memcache.request.flags"), 3);
    assert_eq!(common::field(e, "memcache.response.status"), "Success");
    let gets = find("tcp", "binary", "get", json!(["bk"]));
    assert_eq!(gets.len(), 2, "GetK and GetKQ: {summary:#?}");
    for e in gets {
        assert_eq!(common::field(e, "memcache.response.count_values"), 1);
        assert_eq!(common::field(e, "memcache.response.bytes"), 5);
    }
    let e = binary("incr", json!(["bk"]));
    assert_eq!(common::field(e, "memcache.response.status_code"), 6);
    assert_eq!(common::field(e, "status"), "Error");
    let e = binary("get", json!(["bmissing"]));
    assert_eq!(common::field(e, "memcache.request.quiet"), true);
    assert!(common::field(e, "memcache.response").is_null());
    assert_eq!(common::field(e, "status"), "OK");
    assert_eq!(
        common::field(binary("noop", Value::Null), "memcache.response.opaque"),
        6
    );
    assert!(common::field(binary("version", Value::Null), "memcache.response.version").is_string());
    assert_eq!(common::field(binary("quit", Value::Null), "status"), "OK");

    // UDP: the reply in several datagrams is joined.
    assert_eq!(seen[2]["datagrams"], 4);
    let e = one("udp", "text", "get", json!(["ubig"]));
    assert_eq!(common::field(e, "memcache.response.bytes"), 5000);
    let e = one("udp", "text", "incr", json!(["k1"]));
    assert_eq!(
        common::field(e, "memcache.response.command"),
        "CLIENT_ERROR"
    );

    // Nothing else: 73 text commands (k1 x3, big x2, ubig, 50 sets, the multi-get, 2 deletes,
    // touch, 9 on n, version, verbosity, stats, quit), 8 binary, 2 over UDP.
    let text_count = ev
        .iter()
        .filter(|e| {
            common::field(e, "network.transport") == "tcp"
                && common::field(e, "memcache.protocol_type") == "text"
        })
        .count();
    assert_eq!(text_count, 73, "{summary:#?}");
    assert_eq!(ev.len(), 73 + 8 + 2, "{summary:#?}");
}
