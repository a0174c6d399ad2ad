//! A real PostgreSQL server (Debian's, started here by initdb and postgres as a non-root user in
//! a temp dir, trust authentication, on a free loopback port) driven by psycopg 3
//! (tests/pgsql/client.py), captured with tcpdump and replayed: every statement the client ran
//! is reported once, in order, with what the client saw (rows, command, error code, severity
//! and message), over the simple protocol (several statements in one Query, one with a `;` in
//! a literal), the extended protocol (server-side binding, a prepared statement run by Bind
//! alone, a pipeline, binary results) and after libpq's refused SSLRequest.

mod common;

use serde_json::Value;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
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

/// A server program: on the PATH, else in Debian's newest /usr/lib/postgresql/<version>/bin.
fn pg_program(name: &str) -> Option<PathBuf> {
    if let Some(p) = common::on_path(name) {
        return Some(p);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            let p = e.path().join("bin").join(name);
            p.exists().then_some((v, p))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, p)| p)
}

/// A Python that imports psycopg (3).
fn python_with_psycopg() -> Option<String> {
    ["python3", "/usr/bin/python3"].into_iter().find_map(|py| {
        Command::new(py)
            .args(["-c", "import psycopg"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
            .then(|| py.to_string())
    })
}

/// The uid and gid of `user`.
fn ids(user: &str) -> Option<(u32, u32)> {
    let id = |flag: &str| -> Option<u32> {
        let o = Command::new("id").args([flag, user]).output().ok()?;
        String::from_utf8_lossy(&o.stdout).trim().parse().ok()
    };
    Some((id("-u")?, id("-g")?))
}

/// A command run as `user` (the server refuses to run as root).
fn command_as(program: &Path, user: Option<(u32, u32)>) -> Command {
    use std::os::unix::process::CommandExt;
    let mut c = Command::new(program);
    if let Some((uid, gid)) = user {
        c.uid(uid).gid(gid);
    }
    c
}

#[test]
fn postgresql_session() {
    const HOW: &str = "install postgresql, tcpdump and psycopg with `bash scripts/install-deps`";
    let Some(initdb) = common::require_or_skip(pg_program("initdb"), "initdb (postgresql)", HOW)
    else {
        return;
    };
    let Some(postgres) = common::require_or_skip(pg_program("postgres"), "postgres", HOW) else {
        return;
    };
    let Some(_) = common::require_or_skip(common::on_path("tcpdump"), "tcpdump", HOW) else {
        return;
    };
    let Some(python) = common::require_or_skip(python_with_psycopg(), "python3 with psycopg", HOW)
    else {
        return;
    };
    let root = unsafe { geteuid() } == 0;
    let user = if root {
        // Debian's package creates `postgres`; `nobody` does as well when it is missing.
        let found = ids("postgres").or_else(|| ids("nobody"));
        let Some(ids) = common::require_or_skip(found, "a non-root user (postgres)", HOW) else {
            return;
        };
        Some(ids)
    } else {
        None
    };

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    if let Some((uid, gid)) = user {
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
    }
    let init = command_as(&initdb, user)
        .arg("-D")
        .arg(&data)
        .args(["-U", "postgres", "-A", "trust", "--no-locale", "-E", "UTF8"])
        .arg("--no-sync")
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "initdb failed: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
    if let Some((uid, gid)) = user {
        std::os::unix::fs::chown(dir.path().join("server.log"), Some(uid), Some(gid)).unwrap();
    }
    let _server = Killed(
        command_as(&postgres, user)
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-k"])
            .arg(dir.path())
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            // Messages and severities in English, as the assertions spell them.
            .args(["-c", "lc_messages=C"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let up = (0..200).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert!(
        up,
        "postgres did not start: {}",
        std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default()
    );

    let pcap = dir.path().join("pgsql.pcap");
    let dump = common::LoopbackCapture::start(&pcap, &format!("tcp port {port}"));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pgsql/client.py");
    let client = common::output_within(
        &mut Command::new(&python)
            .args([script, "127.0.0.1", &port.to_string()]),
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
    assert_eq!(seen.len(), 16, "{stdout}");
    std::thread::sleep(Duration::from_millis(1000));
    dump.stop();

    let cfg = format!(
        "packetbeat.protocols:\n  - type: pgsql\n    ports: [{port}]\n    send_request: true\n    send_response: true\n"
    );
    let run = common::run_capture(&pcap, &cfg, &[]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    // Nothing failed to parse, nothing went unpaired.
    // (The counters line reads `pgsql.<counter>=<n>`; the capture's own name has "pgsql." too.)
    assert!(
        !run.stderr
            .lines()
            .any(|l| l.contains("\"message\":\"pgsql.")),
        "pgsql counters: {}",
        run.stderr
    );
    let ev = &run.events;
    let summary: Vec<String> = ev
        .iter()
        .map(|e| {
            format!(
                "{} | {}",
                common::field(e, "status"),
                common::field(e, "query")
            )
        })
        .collect();
    assert_eq!(ev.len(), seen.len(), "{summary:#?}");

    // Every statement, in the order the client ran them.
    for (e, s) in ev.iter().zip(&seen) {
        let query = s["query"].as_str().unwrap();
        let ctx = format!("{query}: {e:#}");
        assert_eq!(common::field(e, "type"), "pgsql", "{ctx}");
        assert_eq!(common::field(e, "query"), query, "{ctx}");
        assert_eq!(common::field(e, "request"), query, "{ctx}");
        let method = query.split(' ').next().unwrap().to_uppercase();
        assert_eq!(common::field(e, "method"), method.as_str(), "{ctx}");
        assert_eq!(common::field(e, "status"), &s["status"], "{ctx}");
        assert_eq!(common::field(e, "destination.port"), port, "{ctx}");
        assert_eq!(common::field(e, "source.ip"), "127.0.0.1", "{ctx}");
        assert!(
            common::field(e, "source.bytes").as_u64().unwrap() > 0,
            "{ctx}"
        );
        assert!(
            common::field(e, "destination.bytes").as_u64().unwrap() > 0,
            "{ctx}"
        );
        assert!(
            common::field(e, "event.duration").as_u64().is_some(),
            "{ctx}"
        );
        if s["status"] == "Error" {
            assert_eq!(common::field(e, "pgsql.error_code"), &s["code"], "{ctx}");
            assert_eq!(
                common::field(e, "pgsql.error_severity"),
                &s["severity"],
                "{ctx}"
            );
            assert_eq!(
                common::field(e, "pgsql.error_message"),
                &s["message"],
                "{ctx}"
            );
            assert_eq!(common::field(e, "response"), "", "{ctx}");
            continue;
        }
        assert!(common::field(e, "pgsql.error_code").is_null(), "{ctx}");
        let columns: Vec<&str> = s["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        assert_eq!(common::field(e, "pgsql.num_fields"), columns.len(), "{ctx}");
        let rows = s["rows"].as_array().map_or(&[][..], |r| &r[..]);
        assert_eq!(common::field(e, "pgsql.num_rows"), rows.len(), "{ctx}");
        // The response as CSV (no value here needs quoting).
        let mut csv = String::new();
        if !columns.is_empty() {
            csv += &columns.join(",");
            csv.push('\n');
        }
        for r in rows {
            let vals: Vec<&str> = r
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            assert!(vals.iter().all(|v| !v.contains([',', '"', '\n'])));
            csv += &vals.join(",");
            csv.push('\n');
        }
        assert_eq!(common::field(e, "response"), csv.as_str(), "{ctx}");
    }
    let find = |q: &str| -> Vec<&Value> {
        ev.iter()
            .filter(|e| common::field(e, "query") == q)
            .collect()
    };
    // The ';' inside a literal did not split its statement.
    assert_eq!(
        find("INSERT INTO items VALUES (2, 'ink; blue', 2.25, NULL)").len(),
        1
    );
    // The prepared statement: both runs, though the second Bind came without a Parse.
    assert_eq!(find("SELECT price FROM items WHERE id = $1").len(), 2);
    // Binary results decoded as the text the server would send.
    let e = find("SELECT id, name, price, added FROM items WHERE id = $1")[0];
    assert_eq!(
        common::field(e, "response"),
        "id,name,price,added\n1,pencil,1.50,2024-01-31\n"
    );
}
