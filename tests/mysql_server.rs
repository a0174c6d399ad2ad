//! A real MariaDB server (Debian's mariadb-server: a fresh data directory made by
//! mariadb-install-db, started on loopback with grant checks off) driven by
//! mysql-connector-python (tests/mysql/client.py: text queries and prepared statements),
//! captured with tcpdump and replayed: every statement is reported once with what the client
//! saw (rows and columns, affected rows and insert ids, an unknown table's error, prepared
//! statements with their parameters), and nothing else but the connector's own settings.

mod common;

use serde_json::Value;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn python_has_connector() -> bool {
    Command::new("python3")
        .args(["-c", "import mysql.connector"])
        .output()
        .is_ok_and(|o| o.status.success())
}

extern "C" {
    fn geteuid() -> u32;
}

/// Go's `encoding/csv` line for these cells (Packetbeat's `response` text).
fn csv_line(cells: &[String]) -> String {
    let quote = |c: &String| {
        let needs = c.contains([',', '"', '\r', '\n'])
            || c.chars().next().is_some_and(char::is_whitespace)
            || c == "\\.";
        if needs {
            format!("\"{}\"", c.replace('"', "\"\""))
        } else {
            c.clone()
        }
    };
    let mut s = cells.iter().map(quote).collect::<Vec<_>>().join(",");
    s.push('\n');
    s
}

/// The `response` Packetbeat writes for a text result set: the names, then the first
/// `max_rows` rows with at most `max_row_length` bytes of cells each (NULL as `NULL`).
fn expected_response(truth: &Value, max_rows: usize, max_row_length: usize) -> String {
    let names: Vec<String> = truth["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    let mut out = csv_line(&names);
    for row in truth["rows"].as_array().unwrap().iter().take(max_rows) {
        let mut left = max_row_length;
        let mut cells = Vec::new();
        for c in row.as_array().unwrap() {
            if left == 0 {
                break;
            }
            let text = c.as_str().unwrap_or("NULL");
            let keep = text.len().min(left);
            cells.push(text[..keep].to_string());
            left -= keep;
        }
        out.push_str(&csv_line(&cells));
    }
    out
}

/// Starts mariadbd on `port` with a new data directory under `dir`, as `nobody` when run as
/// root.
fn start_mariadb(dir: &Path, port: u16) -> Killed {
    let root = unsafe { geteuid() } == 0;
    let data = dir.join("data");
    if root {
        // mariadbd does not run as root: the data directory belongs to `nobody`.
        let st = Command::new("chown")
            .args(["nobody:", dir.to_str().unwrap()])
            .status()
            .unwrap();
        assert!(st.success());
        std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    let user: &[&str] = if root { &["--user=nobody"] } else { &[] };
    let install = Command::new("mariadb-install-db")
        .arg("--no-defaults")
        .args(user)
        .arg(format!("--datadir={}", data.display()))
        .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        install.status.success(),
        "mariadb-install-db failed: {}{}",
        String::from_utf8_lossy(&install.stdout),
        String::from_utf8_lossy(&install.stderr)
    );
    let server = Killed(
        Command::new("mariadbd")
            .arg("--no-defaults")
            .args(user)
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", dir.join("mysqld.sock").display()))
            .arg(format!("--pid-file={}", dir.join("mysqld.pid").display()))
            .arg(format!("--log-error={}", dir.join("mysqld.log").display()))
            .arg(format!("--port={port}"))
            .args([
                "--bind-address=127.0.0.1",
                "--skip-grant-tables",
                "--skip-log-bin",
                "--innodb-buffer-pool-size=16M",
            ])
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    for _ in 0..300 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return server;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "mariadbd did not listen on {port}: {}",
        std::fs::read_to_string(dir.join("mysqld.log")).unwrap_or_default()
    );
}

#[test]
fn mariadb_session() {
    for t in ["mariadbd", "mariadb-install-db", "python3", "tcpdump"] {
        if common::on_path(t).is_none() {
            if common::ci() {
                panic!("{t} is missing: run scripts/install-deps");
            }
            eprintln!("skipping: {t} not installed");
            return;
        }
    }
    if !python_has_connector() {
        if common::ci() {
            panic!("python3 lacks mysql-connector-python: run scripts/install-deps");
        }
        eprintln!("skipping: mysql-connector-python not installed (pip)");
        return;
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let _server = start_mariadb(dir.path(), port);
    let pcap = dir.path().join("mysql.pcap");
    let dump = common::LoopbackCapture::start(&pcap, &format!("tcp port {port}"));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mysql/client.py");
    let client = common::output_within(
        &mut Command::new("python3")
            .args([script, "127.0.0.1", &port.to_string()]),
        common::PROGRAM_LIMIT,
    );
    let stdout = String::from_utf8_lossy(&client.stdout).into_owned();
    assert!(
        client.status.success(),
        "client failed: {stdout}\n{}",
        String::from_utf8_lossy(&client.stderr)
    );
    let truth: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(truth.len(), 11, "{stdout}");
    std::thread::sleep(Duration::from_millis(1000));
    dump.stop();

    let cfg = format!(
        "packetbeat.protocols:\n  - type: mysql\n    ports: [{port}]\n    send_request: true\n    send_response: true\n"
    );
    let run = common::run_capture(&pcap, &cfg, &[]);
    let ev = &run.events;
    let summary: Vec<String> = ev
        .iter()
        .map(|e| {
            format!(
                "{} | {}",
                common::field(e, "query"),
                common::field(e, "status")
            )
        })
        .collect();
    let with_query = |q: &str| -> Vec<&Value> {
        ev.iter()
            .filter(|e| common::field(e, "query") == q)
            .collect()
    };
    let one = |q: &str| -> &Value {
        let found = with_query(q);
        assert_eq!(found.len(), 1, "{q}: {summary:#?}\n{}", run.stderr);
        found[0]
    };
    let mut accounted = 0;
    for t in &truth {
        let q = t["query"].as_str().unwrap();
        let method = q.split_whitespace().next().unwrap().to_uppercase();
        if t["kind"] == "prepared" {
            // The prepare, then the execute with its parameters; the close is not reported.
            let prepares: Vec<&Value> = with_query("Request Prepare Statement")
                .into_iter()
                .filter(|e| common::field(e, "error.message") == q)
                .collect();
            assert_eq!(prepares.len(), 1, "prepare of {q}: {summary:#?}");
            let p = prepares[0];
            assert_eq!(common::field(p, "method"), method.as_str());
            assert_eq!(common::field(p, "request"), q);
            assert_eq!(common::field(p, "status"), "OK");
            let e = one(q);
            assert_eq!(common::field(e, "params"), &t["params"], "{q}");
            assert_eq!(common::field(e, "status"), "OK");
            if let Some(rows) = t["rows"].as_array() {
                assert_eq!(common::field(e, "mysql.num_rows"), rows.len(), "{q}");
                assert_eq!(
                    common::field(e, "mysql.num_fields"),
                    t["fields"].as_array().unwrap().len()
                );
            } else {
                assert_eq!(
                    common::field(e, "mysql.affected_rows"),
                    &t["rowcount"],
                    "{q}"
                );
                assert_eq!(common::field(e, "mysql.insert_id"), &t["lastrowid"], "{q}");
            }
            accounted += 2;
            continue;
        }
        let e = one(q);
        accounted += 1;
        assert_eq!(common::field(e, "method"), method.as_str(), "{q}");
        assert_eq!(common::field(e, "request"), q);
        assert_eq!(common::field(e, "type"), "mysql");
        assert_eq!(common::field(e, "client.ip"), "127.0.0.1");
        assert_eq!(common::field(e, "server.port"), port);
        assert!(common::field(e, "source.bytes").as_u64().unwrap() > q.len() as u64);
        assert!(common::field(e, "destination.bytes").as_u64().unwrap() > 0);
        if let Some(errno) = t.get("errno") {
            assert_eq!(common::field(e, "status"), "Error", "{q}");
            assert_eq!(common::field(e, "mysql.error_code"), errno);
            assert_eq!(
                common::field(e, "mysql.error_message").as_str().unwrap(),
                format!(
                    "{}: {}",
                    t["sqlstate"].as_str().unwrap(),
                    t["msg"].as_str().unwrap()
                )
            );
            continue;
        }
        assert_eq!(common::field(e, "status"), "OK", "{q}");
        match t["rows"].as_array() {
            Some(rows) => {
                assert_eq!(common::field(e, "mysql.num_rows"), rows.len(), "{q}");
                assert_eq!(
                    common::field(e, "mysql.num_fields"),
                    t["fields"].as_array().unwrap().len(),
                    "{q}"
                );
                assert_eq!(
                    common::field(e, "response").as_str().unwrap(),
                    expected_response(t, 10, 1024),
                    "{q}"
                );
            }
            None => {
                assert_eq!(
                    common::field(e, "mysql.affected_rows"),
                    &t["rowcount"],
                    "{q}"
                );
                assert_eq!(common::field(e, "mysql.insert_id"), &t["lastrowid"], "{q}");
                assert_eq!(common::field(e, "mysql.num_rows"), 0);
                assert_eq!(common::field(e, "response"), "");
            }
        }
    }
    // Where the result set's columns come from.
    let e = one("SELECT id, name, qty FROM pbtest.items ORDER BY id");
    assert_eq!(common::field(e, "path"), "pbtest.items");
    // Nothing else but the connector's own session settings (COM_INIT_DB, COM_PING and
    // COM_STMT_CLOSE are not reported).
    let settings = ev
        .iter()
        .filter(|e| {
            common::field(e, "query")
                .as_str()
                .is_some_and(|q| q.starts_with("SET "))
        })
        .count();
    assert_eq!(ev.len(), accounted + settings, "{summary:#?}");
}
