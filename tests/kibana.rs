//! The built-in Kibana dashboards: kibana/8 is what scripts/gen-kibana makes of kibana/spec.yml,
//! and `export dashboard` prints or saves a dashboard's saved objects. (The fields the
//! dashboards use are checked against fields/ and the captures' events in fields_coverage.rs.)

mod common;

use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_packetbeat"))
}

#[test]
fn generated_dashboards_match_the_spec() {
    let python = common::on_path("python3").filter(|_| {
        Command::new("python3")
            .args(["-c", "import yaml"])
            .status()
            .is_ok_and(|s| s.success())
    });
    let Some(python) = common::require_or_skip(python, "python3 with PyYAML", common::HOW_DEPS)
    else {
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(python)
        .arg(root.join("scripts/gen-kibana"))
        .arg("--check")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn export_dashboard_prints_and_saves_saved_objects() {
    let out = bin()
        .args(["export", "dashboard", "--id", "packetbeat-http"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let objs: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objs.last().unwrap()["type"], "dashboard");
    assert_eq!(
        objs.last().unwrap()["attributes"]["title"],
        "[Packetbeat] HTTP"
    );
    assert!(objs[..objs.len() - 1]
        .iter()
        .all(|o| o["type"] == "visualization"));

    let tmp = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["export", "dashboard", "--id", "packetbeat-dns", "--folder"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let saved = std::fs::read_to_string(tmp.path().join("packetbeat-dns.ndjson")).unwrap();
    assert!(saved.contains("\"[Packetbeat] DNS\""));

    let out = bin()
        .args(["export", "dashboard", "--id", "nosuch"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no dashboard with id 'nosuch'"));
}

/// One HTTP request as the loopback Kibana received it.
#[derive(Debug, Clone)]
struct Recorded {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Recorded {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A loopback HTTP server standing in for Kibana: answers `/api/status` with `version` and
/// every other request with `{"success":true}`, and records each request.
fn fake_kibana(version: &'static str) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<Recorded>>>) {
    fake_kibana_on(0, version)
}

/// [`fake_kibana`] over TLS, with the test CA's `localhost`/127.0.0.1 certificate.
fn fake_kibana_tls(
    version: &'static str,
    certs: &common::certs::Certs,
) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<Recorded>>>) {
    let config = certs.server_config();
    serve_kibana(0, version, move |tcp| {
        let conn = rustls::ServerConnection::new(config.clone()).unwrap();
        Box::new(rustls::StreamOwned::new(conn, tcp))
    })
}

/// [`fake_kibana`] on a given port (0: any).
fn fake_kibana_on(
    port: u16,
    version: &'static str,
) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<Recorded>>>) {
    serve_kibana(port, version, |tcp| Box::new(tcp))
}

trait Stream: std::io::Read + std::io::Write + Send {}
impl<T: std::io::Read + std::io::Write + Send> Stream for T {}

/// A recording Kibana on `port` whose connections `wrap` turns into streams (plain or TLS).
fn serve_kibana(
    port: u16,
    version: &'static str,
    wrap: impl Fn(std::net::TcpStream) -> Box<dyn Stream> + Send + 'static,
) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<Recorded>>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let rec = log.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let rec = rec.clone();
            let conn = wrap(conn);
            std::thread::spawn(move || {
                let mut r = BufReader::new(conn);
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut parts = line.split_whitespace();
                    let (method, target) = (
                        parts.next().unwrap_or("").to_string(),
                        parts.next().unwrap_or("").to_string(),
                    );
                    let mut headers = Vec::new();
                    loop {
                        let mut h = String::new();
                        if r.read_line(&mut h).unwrap_or(0) == 0 {
                            return;
                        }
                        let h = h.trim_end();
                        if h.is_empty() {
                            break;
                        }
                        let (k, v) = h.split_once(':').unwrap();
                        headers.push((k.trim().to_string(), v.trim().to_string()));
                    }
                    let len = headers
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                        .map(|(_, v)| v.parse().unwrap())
                        .unwrap_or(0);
                    let mut body = vec![0; len];
                    if r.read_exact(&mut body).is_err() {
                        return;
                    }
                    let reply = if target.ends_with("/api/status") {
                        format!(
                            r#"{{"name":"kibana","version":{{"number":"{version}","build_snapshot":false}}}}"#
                        )
                    } else {
                        r#"{"success":true,"successCount":1}"#.to_string()
                    };
                    rec.lock().unwrap().push(Recorded {
                        method,
                        target,
                        headers,
                        body,
                    });
                    let w = r.get_mut();
                    let _ = write!(
                        w,
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{reply}",
                        reply.len()
                    );
                    let _ = w.flush();
                }
            });
        }
    });
    (port, log)
}

fn setup_dashboards(config: &str) -> std::process::Output {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("packetbeat.yml");
    std::fs::write(&cfg, config).unwrap();
    bin()
        .args(["setup", "--dashboards", "-c"])
        .arg(&cfg)
        .arg("--strict.perms=false")
        .output()
        .unwrap()
}

/// The one part of a multipart/form-data body: (part headers, contents).
fn single_part(content_type: &str, body: &[u8]) -> (String, String) {
    let boundary = content_type
        .strip_prefix("multipart/form-data; boundary=")
        .unwrap_or_else(|| panic!("content type {content_type}"));
    let body = std::str::from_utf8(body).unwrap();
    let rest = body
        .strip_prefix(&format!("--{boundary}\r\n"))
        .expect("body starts with the boundary");
    let rest = rest
        .strip_suffix(&format!("\r\n--{boundary}--\r\n"))
        .expect("body ends with the closing boundary");
    let (headers, contents) = rest.split_once("\r\n\r\n").unwrap();
    (headers.to_string(), contents.to_string())
}

#[test]
fn setup_dashboards_imports_through_the_saved_objects_api() {
    let (port, log) = fake_kibana("8.17.2");
    let out = setup_dashboards(&format!(
        "output.console.enabled: true\nsetup.kibana:\n  host: 127.0.0.1:{port}\n  path: /kbn\n  username: elastic\n  password: changeme\n  space.id: ops\n"
    ));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Loading dashboards (Kibana must be running and reachable)\nLoaded dashboards\n"
    );
    let reqs = log.lock().unwrap().clone();
    let dashboards = packetbeat::setup::kibana::DASHBOARDS;
    assert_eq!(reqs.len(), 2 + dashboards.len(), "{reqs:#?}");
    assert_eq!(
        (reqs[0].method.as_str(), reqs[0].target.as_str()),
        ("GET", "/kbn/s/ops/api/status")
    );
    use base64::Engine as _;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("elastic:changeme")
    );
    let mut files = Vec::new();
    for r in &reqs {
        assert_eq!(r.header("kbn-xsrf"), Some("1"));
        assert_eq!(r.header("authorization"), Some(basic.as_str()));
    }
    for r in &reqs[1..] {
        assert_eq!(r.method, "POST");
        assert_eq!(
            r.target,
            "/kbn/s/ops/api/saved_objects/_import?overwrite=true"
        );
        let (headers, contents) = single_part(r.header("content-type").unwrap(), &r.body);
        let filename = headers
            .split("filename=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap()
            .to_string();
        assert!(
            headers.starts_with("Content-Disposition: form-data; name=\"file\"; filename=")
                && headers.ends_with("\r\nContent-Type: application/ndjson"),
            "{headers}"
        );
        files.push((filename, contents));
    }
    // The index pattern first, then each dashboard's saved objects as kibana/8 holds them.
    assert_eq!(files[0].0, "index-template.ndjson");
    let pattern: Value = serde_json::from_str(&files[0].1).unwrap();
    assert_eq!(pattern["id"], "packetbeat-*");
    assert_eq!(pattern["type"], "index-pattern");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for ((id, _), (name, contents)) in dashboards.iter().zip(&files[1..]) {
        assert_eq!(name, &format!("{id}.ndjson"));
        let want = std::fs::read_to_string(root.join(format!("kibana/8/{id}.ndjson"))).unwrap();
        assert_eq!(contents, &want, "{id}");
    }
}

#[test]
fn setup_dashboards_api_key_and_old_kibana() {
    let (port, log) = fake_kibana("8.17.2");
    let out = setup_dashboards(&format!(
        "output.console.enabled: true\nsetup.kibana.host: http://127.0.0.1:{port}\nsetup.kibana.api_key: id1:secret\n"
    ));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    use base64::Engine as _;
    let want = format!(
        "ApiKey {}",
        base64::engine::general_purpose::STANDARD.encode("id1:secret")
    );
    let reqs = log.lock().unwrap().clone();
    assert_eq!(reqs[0].target, "/api/status");
    assert!(reqs
        .iter()
        .all(|r| r.header("authorization") == Some(want.as_str())));

    let (port, log) = fake_kibana("7.10.2");
    let out = setup_dashboards(&format!(
        "output.console.enabled: true\nsetup.kibana.host: 127.0.0.1:{port}\n"
    ));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Kibana version must be at least 7.14.0"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        log.lock().unwrap().len(),
        1,
        "nothing imported into Kibana 7.10"
    );
}

/// Kibana over HTTPS: `setup.kibana.ssl` as an output's; the server's certificate is checked.
#[test]
fn setup_dashboards_over_https() {
    let certs = common::certs::Certs::new();
    let (port, log) = fake_kibana_tls("8.17.2", &certs);
    let out = setup_dashboards(&format!(
        "output.console.enabled: true\nsetup.kibana:\n  host: https://127.0.0.1:{port}\n  ssl.certificate_authorities: ['{}']\n",
        certs.p("ca.pem")
    ));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reqs = log.lock().unwrap();
    assert_eq!(reqs[0].target, "/api/status");
    assert!(
        reqs.len() > 1
            && reqs[1..]
                .iter()
                .all(|r| r.target == "/api/saved_objects/_import?overwrite=true")
    );
    drop(reqs);
    // Without the CA the certificate is not trusted: nothing is imported.
    let before = log.lock().unwrap().len();
    let out = setup_dashboards(&format!(
        "output.console.enabled: true\nsetup.kibana.host: 127.0.0.1:{port}\nsetup.kibana.protocol: https\n"
    ));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("error importing Kibana dashboards"));
    assert_eq!(log.lock().unwrap().len(), before);
    let out = setup_dashboards("output.console.enabled: true\nsetup.kibana.protocol: gopher\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported protocol 'gopher'"));
}

/// `setup.dashboards.index` points the index pattern and every data view reference elsewhere;
/// `setup.dashboards.retry` waits for a Kibana that is not up yet.
#[test]
fn setup_dashboards_index_and_retry() {
    let port = common::free_port();
    // Kibana comes up 600 ms after packetbeat starts asking.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(600));
        tx.send(fake_kibana_on(port, "8.17.2")).unwrap();
    });
    let out = setup_dashboards(&format!(
        "output.console.enabled: true\nsetup.kibana.host: 127.0.0.1:{port}\nsetup.dashboards:\n  index: 'netlogs-*'\n  retry: {{enabled: true, interval: 200ms, maximum: 20}}\n"
    ));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, log) = rx.recv().unwrap();
    let reqs = log.lock().unwrap().clone();
    let (_, pattern) = single_part(reqs[1].header("content-type").unwrap(), &reqs[1].body);
    let pattern: Value = serde_json::from_str(&pattern).unwrap();
    assert_eq!(pattern["id"], "netlogs-*");
    assert_eq!(pattern["attributes"]["title"], "netlogs-*");
    for r in &reqs[2..] {
        let (_, contents) = single_part(r.header("content-type").unwrap(), &r.body);
        for line in contents.lines() {
            let o: Value = serde_json::from_str(line).unwrap();
            for rf in o["references"].as_array().unwrap() {
                if rf["type"] == "index-pattern" {
                    assert_eq!(rf["id"], "netlogs-*");
                }
            }
        }
    }

    // Nobody listening, two retries: it gives up with libbeat's error.
    let port = common::free_port();
    let t = std::time::Instant::now();
    let out = setup_dashboards(&format!(
        "output.console.enabled: true\nsetup.kibana.host: 127.0.0.1:{port}\nsetup.dashboards.retry: {{enabled: true, interval: 100ms, maximum: 2}}\n"
    ));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Error creating Kibana client"));
    assert!(t.elapsed() >= std::time::Duration::from_millis(200));
}
