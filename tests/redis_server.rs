//! A real redis-server driven by redis-cli, captured with tcpdump and replayed: every command
//! is reported once with the reply the client saw (an error, a 200 KB value, a pipelined burst).

mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn cli(port: u16, args: &[&str], stdin: Option<&[u8]>) -> String {
    let mut c = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(data) = stdin {
        use std::io::Write;
        c.stdin.take().unwrap().write_all(data).unwrap();
    }
    drop(c.stdin.take());
    String::from_utf8_lossy(&c.wait_with_output().unwrap().stdout).into_owned()
}

#[test]
fn redis_server_session() {
    for t in ["redis-server", "redis-cli", "tcpdump"] {
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
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("redis.pcap");
    let dump = common::LoopbackCapture::start(&pcap, &format!("tcp port {port}"));
    let _server = Killed(
        Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    for _ in 0..100 {
        if cli(port, &["PING"], None).trim() == "PONG" {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(cli(port, &["SET", "k1", "v1"], None).trim(), "OK");
    assert!(cli(port, &["LLEN", "k1"], None).contains("WRONGTYPE"));
    let big = "x".repeat(200_000);
    assert_eq!(
        cli(port, &["-x", "SET", "big"], Some(big.as_bytes())).trim(),
        "OK"
    );
    assert_eq!(cli(port, &["GET", "big"], None).trim().len(), 200_000);
    let mut burst = String::new();
    for i in 0..50 {
        let (k, v) = (format!("p{i}"), i.to_string());
        burst.push_str(&format!(
            "*3\r\n$3\r\nSET\r\n${}\r\n{k}\r\n${}\r\n{v}\r\n",
            k.len(),
            v.len()
        ));
    }
    let piped = cli(port, &["--pipe"], Some(burst.as_bytes()));
    assert!(piped.contains("replies: 50"), "{piped}");
    // One connection: a watched transaction, a discarded one and a command the server does not know.
    let tx = cli(
        port,
        &[],
        Some(b"WATCH k1\nMULTI\nSET k2 v2\nINCR cnt\nEXEC\nMULTI\nSET k3 v3\nDISCARD\nNOSUCHCMD a b\n"),
    );
    assert!(
        tx.contains("QUEUED") && tx.contains("unknown command"),
        "{tx}"
    );
    // RESP3 (HELLO 3 first): HGETALL answers with a map.
    assert_eq!(cli(port, &["HSET", "h", "f", "v"], None).trim(), "1");
    assert!(cli(port, &["-3", "HGETALL", "h"], None).contains('v'));
    std::thread::sleep(Duration::from_millis(1000));
    dump.stop();

    let cfg = format!("packetbeat.protocols:\n  - type: redis\n    ports: [{port}]\n");
    let run = common::run_capture(&pcap, &cfg, &[]);
    let ev = &run.events;
    let count = |q: &str| {
        ev.iter()
            .filter(|e| common::get(e, "query").and_then(|v| v.as_str()) == Some(q))
            .count()
    };
    let queries: Vec<_> = ev.iter().filter_map(|e| common::get(e, "query")).collect();
    assert_eq!(count("SET k1 v1"), 1, "{queries:?} {}", run.stderr);
    let llen: Vec<_> = ev
        .iter()
        .filter(|e| common::get(e, "query").and_then(|v| v.as_str()) == Some("LLEN k1"))
        .collect();
    assert_eq!(llen.len(), 1);
    assert_eq!(common::get(llen[0], "status").unwrap(), "Error");
    assert!(common::get(llen[0], "redis.error")
        .unwrap()
        .as_str()
        .unwrap()
        .starts_with("WRONGTYPE"));
    let get: Vec<_> = ev
        .iter()
        .filter(|e| common::get(e, "query").and_then(|v| v.as_str()) == Some("GET big"))
        .collect();
    assert_eq!(get.len(), 1);
    assert_eq!(
        common::get(get[0], "redis.return_value")
            .unwrap()
            .as_str()
            .unwrap()
            .len(),
        200_000
    );
    for i in 0..50 {
        assert_eq!(count(&format!("SET p{i} {i}")), 1, "pipelined SET p{i}");
    }
    for q in [
        "WATCH k1",
        "SET k2 v2",
        "INCR cnt",
        "EXEC",
        "SET k3 v3",
        "DISCARD",
        "HGETALL h",
    ] {
        assert_eq!(count(q), 1, "{q}: {queries:?}");
    }
    assert_eq!(count("MULTI"), 2, "{queries:?}");
    let by_query = |q: &str| {
        ev.iter()
            .find(|e| common::get(e, "query").and_then(|v| v.as_str()) == Some(q))
            .unwrap()
    };
    // Inside MULTI the server queues; EXEC answers with the queued commands' replies.
    assert_eq!(
        common::get(by_query("SET k2 v2"), "redis.return_value").unwrap(),
        "QUEUED"
    );
    assert_eq!(
        common::get(by_query("EXEC"), "redis.return_value").unwrap(),
        "[OK, 1]"
    );
    assert_eq!(
        common::get(by_query("DISCARD"), "redis.return_value").unwrap(),
        "OK"
    );
    let unknown = by_query("NOSUCHCMD a b");
    assert_eq!(common::get(unknown, "status").unwrap(), "Error");
    let err = common::get(unknown, "redis.error")
        .unwrap()
        .as_str()
        .unwrap();
    assert!(err.starts_with("ERR unknown command"), "{err}");
    let map = common::get(by_query("HGETALL h"), "redis.return_value").unwrap();
    assert_eq!(map, "[f, v]");
}
