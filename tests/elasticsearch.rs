//! End to end: `output.elasticsearch` against a real Elasticsearch 8.17.2 node, the runnable
//! test distribution from Maven Central (`org.elasticsearch.distribution.integ-test-zip`,
//! fetched into ~/.m2 by `scripts/install-deps`), started by `tests/elasticsearch/start-node.sh`
//! (single node on 127.0.0.1 on a free port, security off, 512 MB heap, data and logs in a temp
//! dir, as a non-root user when run as root) and stopped at the end.
//!
//! That distribution lacks some modules, and the tests bridge exactly these gaps:
//! - `rest-root` (`GET /` answers 405, and Beats read the version there): the output talks to the
//!   node through [`Proxy`], a loopback HTTP proxy in this file that answers `GET /` with the
//!   node's real version (read from `GET /_nodes/_local`) and passes every other request through
//!   unchanged;
//! - ILM: the output's own fallback is exercised (the node has no `_ilm` endpoint: logged, the
//!   template goes without a lifecycle);
//! - the `scaled_float` and `constant_keyword` mapping types: the template installed is
//!   Packetbeat's own (`packetbeat export template`) with those two types mapped to `float` and
//!   `keyword` ([`bridged_template`]), given to the output as `setup.template.json`.
//!
//! Cases: every event of every capture indexed (the output's acknowledged count per capture and
//! the final `_count` equal the events `output.file` writes for the same capture and config);
//! for several captures, term/range queries on `http.response.status_code`,
//! `dns.question.name`, `source.ip` (mapped `ip`: a CIDR query) and `event.duration`; a 429
//! storm (the proxy answers 429 for a share of the bulk items) retried to completion with no
//! duplicate; a mapping error dropping only that document with a log line; `test output` and
//! `setup --index-management`; the node stopped mid-run and started again (nothing lost,
//! duplicates bounded by the counted resends); the stock `packetbeat.yml` with only its endpoints
//! overridden; `indices` and `pipelines` rules; a node with security on (HTTPS and basic
//! authentication, the password set through the node's keystore), reached through
//! [`start_tls_proxy`], which ends the output's TLS and bridges `GET /` the same way.
//!
//! Java 17 and the distribution's zip are needed: without them the tests fail under `CI=true`
//! and are skipped otherwise (`common::require_or_skip`).

mod common;

use common::{require_or_skip, run_capture, shared_or_skip, ALL_PROTOCOLS, HOW_DEPS};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ES_VERSION: &str = "8.17.2";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// What the node needs, through `require_or_skip`.
fn node_prerequisites() -> Option<()> {
    let home = std::env::var("HOME").unwrap_or_default();
    let zip = PathBuf::from(home).join(format!(
        ".m2/repository/org/elasticsearch/distribution/integ-test-zip/elasticsearch/{ES_VERSION}/elasticsearch-{ES_VERSION}.zip"
    ));
    require_or_skip(
        zip.exists().then_some(()),
        &format!(
            "the Elasticsearch {ES_VERSION} test distribution ({})",
            zip.display()
        ),
        "`bash scripts/install-deps` fetches it from Maven Central",
    )?;
    let java = std::env::var_os("ES_JAVA_HOME")
        .map(|j| PathBuf::from(j).join("bin/java"))
        .filter(|p| p.exists())
        .or_else(|| common::on_path("java"));
    require_or_skip(java, "Java 17 (java)", HOW_DEPS)?;
    require_or_skip(common::on_path("unzip"), "unzip", HOW_DEPS)?;
    Some(())
}

/// One Elasticsearch node.
struct Node {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
    /// Security on: HTTPS with the test CA's certificate, and the `elastic` user's password.
    secure: Option<Secure>,
}

struct Secure {
    certs: common::certs::Certs,
    password: String,
}

/// A client trusting the test CA (for a node with security on).
fn https(certs: &common::certs::Certs) -> ureq::Agent {
    let pem = std::fs::read(certs.p("ca.pem")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut &pem[..]) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(60))
        .tls_config(Arc::new(tls))
        .build()
}

fn basic_auth(user: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

fn http() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(60))
        .build()
}

/// A request to `url`; any status is returned with its body.
fn call(method: &str, url: &str, body: Option<&Value>) -> (u16, Value) {
    send(http().request(method, url), body)
}

/// Sends `req` (with a JSON `body`); any status is returned with its body (JSON, or the text).
fn send(req: ureq::Request, body: Option<&Value>) -> (u16, Value) {
    let what = format!("{} {}", req.method(), req.url());
    let r = match body {
        Some(b) => req
            .set("Content-Type", "application/json")
            .send_string(&b.to_string()),
        None => req.call(),
    };
    let resp = match r {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{what}: {e}"),
    };
    let status = resp.status();
    let text = resp.into_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

impl Node {
    fn start() -> Node {
        Node::start_with(None)
    }

    /// A node with security on: HTTPS (the test CA's `localhost` certificate) and basic
    /// authentication, `elastic`'s password set through the node's keystore.
    fn start_secure(certs: common::certs::Certs, password: &str) -> Node {
        Node::start_with(Some(Secure {
            certs,
            password: password.into(),
        }))
    }

    fn start_with(secure: Option<Secure>) -> Node {
        let dir = tempfile::Builder::new().prefix("pb-es-").tempdir().unwrap();
        // The node's user (not root) reaches its work dir below this one.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut n = Node {
            child: None,
            dir,
            port: common::free_port(),
            secure,
        };
        n.launch();
        n
    }

    fn launch(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("node.out")).unwrap();
        let mut cmd = Command::new("bash");
        if let Some(s) = &self.secure {
            cmd.env("ES_HTTP_CERT", s.certs.p("server.pem"))
                .env("ES_HTTP_KEY", s.certs.p("server.key"))
                .env("ES_BOOTSTRAP_PASSWORD", &s.password);
        }
        let child = cmd
            .arg(root().join("tests/elasticsearch/start-node.sh"))
            .arg(self.dir.path().join("node"))
            .arg(self.port.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start-node.sh");
        self.child = Some(child);
        self.wait_ready();
    }

    fn url(&self) -> String {
        match self.secure {
            None => format!("http://127.0.0.1:{}", self.port),
            Some(_) => format!("https://localhost:{}", self.port),
        }
    }

    /// A request to the node (as `elastic` when security is on).
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let Some(s) = &self.secure else {
            return call(method, &format!("{}{path}", self.url()), body);
        };
        let req = https(&s.certs)
            .request(method, &format!("{}{path}", self.url()))
            .set("Authorization", &basic_auth("elastic", &s.password));
        send(req, body)
    }

    /// Polls `GET /_cluster/health` until the node answers (180 s: the machine is shared).
    fn wait_ready(&mut self) {
        let until = Instant::now() + Duration::from_secs(180);
        let agent = match &self.secure {
            None => ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(5))
                .build(),
            Some(s) => https(&s.certs),
        };
        loop {
            let mut req = agent.get(&format!(
                "{}/_cluster/health?wait_for_status=yellow&timeout=5s",
                self.url()
            ));
            if let Some(s) = &self.secure {
                req = req.set("Authorization", &basic_auth("elastic", &s.password));
            }
            if let Ok(r) = req.call() {
                if r.status() == 200 {
                    return;
                }
            }
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "the node ended ({st}) before answering:\n{}",
                    self.log_tail()
                );
            }
            assert!(
                Instant::now() < until,
                "the node did not answer within 180 s:\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn log_tail(&self) -> String {
        let s = std::fs::read_to_string(self.dir.path().join("node.out")).unwrap_or_default();
        let lines: Vec<&str> = s
            .lines()
            .filter(|l| !l.trim_start().starts_with("at "))
            .collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// The node's version from `GET /_nodes/_local` (what `GET /` would say).
    fn version(&self) -> String {
        let (_, v) = self.call("GET", "/_nodes/_local", None);
        let nodes = v["nodes"].as_object().expect("nodes");
        nodes.values().next().unwrap()["version"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Stops the node (SIGTERM to the launcher, which stops the server) and waits for it.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        let until = Instant::now() + Duration::from_secs(60);
        while child.try_wait().unwrap().is_none() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = child.kill();
        let _ = child.wait();
        // The server JVM, should it outlive its launcher.
        if let Ok(pid) = std::fs::read_to_string(self.dir.path().join("node/es.pid")) {
            if let Ok(pid) = pid.trim().parse::<i32>() {
                unsafe {
                    if libc::kill(pid, 0) == 0 {
                        libc::kill(pid, libc::SIGKILL);
                    }
                }
            }
        }
        // Until the port is free again.
        let until = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn count(&self, target: &str, query: Option<Value>) -> u64 {
        self.call("POST", &format!("/{target}/_refresh"), None);
        let body = query.map(|q| json!({ "query": q }));
        let (st, v) = self.call("POST", &format!("/{target}/_count"), body.as_ref());
        assert_eq!(st, 200, "count on {target}: {v}");
        v["count"].as_u64().unwrap()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What the proxy does with bulk requests.
#[derive(Default)]
struct ProxyState {
    /// Items of bulk requests answered 429 by the proxy, per mille (0: none).
    reject_per_mille: AtomicU64,
    rejected: AtomicU64,
    bulk_requests: AtomicU64,
}

/// A loopback HTTP proxy in front of the node: answers `GET /` with the node's version (the
/// test distribution has no `rest-root` module), passes everything else through, and in a 429
/// storm answers 429 for a share of the items of each bulk request itself (forwarding only the
/// others).
struct Proxy {
    port: u16,
    state: Arc<ProxyState>,
}

impl Proxy {
    fn start(node_port: u16, version: &str) -> Proxy {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let state = Arc::new(ProxyState::default());
        let st = state.clone();
        let root_body = json!({
            "name": "test-node",
            "cluster_name": "elasticsearch",
            "version": {"number": version, "build_flavor": "default", "lucene_version": "9.12.0"},
            "tagline": "You Know, for Search"
        })
        .to_string();
        std::thread::spawn(move || {
            for c in l.incoming().flatten() {
                let st = st.clone();
                let root_body = root_body.clone();
                std::thread::spawn(move || {
                    let _ = serve(c, node_port, &root_body, &st);
                });
            }
        });
        Proxy { port, state }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// A loopback HTTPS proxy in front of a node with security on (the output's TLS ends here, with
/// the test CA's `localhost` certificate): `GET /` is answered with the node's version once the
/// node has accepted the request's credentials (on `GET /_nodes/_local`), and every other
/// request goes to the node over HTTPS with its headers (credentials included) unchanged, the
/// node's answer coming back as it was.
fn start_tls_proxy(node: &Node) -> u16 {
    let s = node.secure.as_ref().expect("a node with security on");
    let config = s.certs.server_config();
    let agent = https(&s.certs);
    let base = node.url();
    let root_body = json!({
        "name": "test-node",
        "cluster_name": "elasticsearch",
        "version": {"number": node.version(), "build_flavor": "default", "lucene_version": "9.12.0"},
        "tagline": "You Know, for Search"
    })
    .to_string();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for tcp in l.incoming().flatten() {
            let (config, agent, base, root_body) = (
                config.clone(),
                agent.clone(),
                base.clone(),
                root_body.clone(),
            );
            std::thread::spawn(move || {
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut r = BufReader::new(rustls::StreamOwned::new(conn, tcp));
                while let Ok(Some(req)) = read_request(&mut r) {
                    let is_root =
                        req.method == "GET" && (req.path == "/" || req.path.starts_with("/?"));
                    let path = if is_root { "/_nodes/_local" } else { &req.path };
                    let mut out = agent.request(
                        if is_root { "GET" } else { &req.method },
                        &format!("{base}{path}"),
                    );
                    for (k, v) in &req.headers {
                        let lk = k.to_ascii_lowercase();
                        if !["host", "content-length", "connection", "accept-encoding"]
                            .contains(&lk.as_str())
                        {
                            out = out.set(k, v);
                        }
                    }
                    let resp = match out.send_bytes(&req.body) {
                        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
                        Err(_) => return,
                    };
                    let status = resp.status();
                    let ctype = resp.content_type().to_string();
                    let mut body = Vec::new();
                    if resp.into_reader().read_to_end(&mut body).is_err() {
                        return;
                    }
                    if is_root && status == 200 {
                        body = root_body.clone().into_bytes();
                    }
                    let head = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\n\r\n",
                        body.len()
                    );
                    let w = r.get_mut();
                    if w.write_all(head.as_bytes())
                        .and_then(|_| w.write_all(&body))
                        .and_then(|_| w.flush())
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    port
}

struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn read_request(r: &mut impl BufRead) -> std::io::Result<Option<Request>> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut headers = Vec::new();
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        r.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            let (k, v) = (k.trim().to_string(), v.trim().to_string());
            if k.eq_ignore_ascii_case("content-length") {
                len = v.parse().unwrap_or(0);
            }
            headers.push((k, v));
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body)?;
    Ok(Some(Request {
        method,
        path,
        headers,
        body,
    }))
}

/// Sends `req` to the node (one connection, closed after the response) and returns the raw
/// response bytes.
/// With `drop_encoding` (a storm's rewritten bulk request) the body is sent uncompressed.
fn forward(
    node_port: u16,
    req: &Request,
    body: &[u8],
    drop_encoding: bool,
) -> std::io::Result<Vec<u8>> {
    let mut s = TcpStream::connect(("127.0.0.1", node_port))?;
    let mut head = format!("{} {} HTTP/1.1\r\n", req.method, req.path);
    for (k, v) in &req.headers {
        let lk = k.to_ascii_lowercase();
        if lk == "connection"
            || lk == "content-length"
            || (drop_encoding && lk == "content-encoding")
        {
            continue;
        }
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    Ok(out)
}

/// The JSON body of a raw HTTP response (the node answers bulk requests chunked).
fn response_json(raw: &[u8]) -> Value {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("HTTP response")
        + 4;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let mut body = raw[split..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let eol = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .expect("chunk size line");
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap().trim(), 16)
                .unwrap();
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[eol + 2..eol + 2 + size]);
            rest = &rest[eol + 2 + size + 2..];
        }
        body = out;
    }
    serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("bulk response: {e}: {}", String::from_utf8_lossy(raw)))
}

fn response(status: u16, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn serve(c: TcpStream, node_port: u16, root_body: &str, st: &ProxyState) -> std::io::Result<()> {
    let mut w = c.try_clone()?;
    let mut r = BufReader::new(c);
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    while let Some(req) = read_request(&mut r)? {
        let out = if req.method == "GET" && (req.path == "/" || req.path.starts_with("/?")) {
            response(200, root_body)
        } else if req.method == "POST" && req.path.starts_with("/_bulk") {
            st.bulk_requests.fetch_add(1, Ordering::Relaxed);
            let share = st.reject_per_mille.load(Ordering::Relaxed);
            if share == 0 {
                forward(node_port, &req, &req.body, false)?
            } else {
                storm(node_port, &req, share, &mut seed, st)?
            }
        } else {
            forward(node_port, &req, &req.body, false)?
        };
        w.write_all(&out)?;
    }
    Ok(())
}

/// A bulk request in a 429 storm: a share of the items is answered 429 here, the others go to
/// the node; the answer merges both in the request's order.
fn storm(
    node_port: u16,
    req: &Request,
    per_mille: u64,
    seed: &mut u64,
    st: &ProxyState,
) -> std::io::Result<Vec<u8>> {
    let gz = req
        .headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("content-encoding") && v.contains("gzip"));
    let body = if gz {
        let mut d = flate2::read::GzDecoder::new(&req.body[..]);
        let mut v = Vec::new();
        d.read_to_end(&mut v)?;
        v
    } else {
        req.body.clone()
    };
    let text = String::from_utf8_lossy(&body).to_string();
    let lines: Vec<&str> = text.lines().collect();
    let mut keep = String::new();
    let mut rejected = Vec::new();
    for (i, pair) in lines.chunks(2).enumerate() {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        if (*seed >> 33) % 1000 < per_mille {
            rejected.push(i);
        } else {
            keep.push_str(pair[0]);
            keep.push('\n');
            keep.push_str(pair[1]);
            keep.push('\n');
        }
    }
    let n = lines.len() / 2;
    st.rejected
        .fetch_add(rejected.len() as u64, Ordering::Relaxed);
    let mut forwarded_items: Vec<Value> = Vec::new();
    if rejected.len() < n {
        let raw = forward(node_port, req, keep.as_bytes(), true)?;
        let v = response_json(&raw);
        forwarded_items = v["items"].as_array().cloned().unwrap_or_default();
        assert_eq!(forwarded_items.len(), n - rejected.len(), "{v}");
    }
    let mut fi = forwarded_items.into_iter();
    let items: Vec<Value> = (0..n)
        .map(|i| {
            if rejected.contains(&i) {
                json!({"create": {"status": 429, "error": {"type": "es_rejected_execution_exception", "reason": "rejected by the test proxy"}}})
            } else {
                fi.next().unwrap()
            }
        })
        .collect();
    Ok(response(
        200,
        &json!({"errors": true, "items": items}).to_string(),
    ))
}

/// Packetbeat's template (`export template`) with `scaled_float` → `float` and
/// `constant_keyword` → `keyword`, which the test distribution lacks.
fn bridged_template(dir: &Path) -> PathBuf {
    let o = Command::new(env!("CARGO_BIN_EXE_packetbeat"))
        .args(["export", "template"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut t: Value = serde_json::from_slice(&o.stdout).unwrap();
    fn walk(v: &mut Value, mapped: &mut usize) {
        match v {
            Value::Object(m) => {
                let to = match m.get("type").and_then(Value::as_str) {
                    Some("scaled_float") => Some("float"),
                    Some("constant_keyword") => Some("keyword"),
                    _ => None,
                };
                if let Some(to) = to {
                    m.insert("type".into(), json!(to));
                    m.remove("scaling_factor");
                    *mapped += 1;
                }
                m.values_mut().for_each(|x| walk(x, mapped));
            }
            Value::Array(a) => a.iter_mut().for_each(|x| walk(x, mapped)),
            _ => {}
        }
    }
    let mut mapped = 0;
    walk(&mut t, &mut mapped);
    assert!(
        mapped > 0,
        "the template has scaled_float/constant_keyword fields"
    );
    // The lifecycle setting names an ILM policy, which this node cannot have.
    if let Some(s) = t.pointer_mut("/template/settings/index") {
        s.as_object_mut().unwrap().remove("lifecycle");
    }
    let p = dir.join("template.json");
    std::fs::write(&p, t.to_string()).unwrap();
    p
}

/// The output's options for the tests: quick backoff, the bridged template.
fn es_config(hosts: &str, template: &Path, extra: &str) -> String {
    format!(
        "{ALL_PROTOCOLS}
output.elasticsearch:
  hosts: [{hosts}]
  backoff.init: 100ms
  backoff.max: 1s
{extra}
setup.template.json.enabled: true
setup.template.json.path: {}
setup.template.json.name: packetbeat-{ES_VERSION}
",
        template.display()
    )
}

struct PbRun {
    status: i32,
    stderr: String,
}

fn packetbeat(cfg: &str, dir: &Path, args: &[&str]) -> PbRun {
    let path = dir.join(format!("pb-{}.yml", rand_suffix()));
    std::fs::write(&path, cfg).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_packetbeat"))
        .args(args)
        .arg("-c")
        .arg(&path)
        .arg("--strict.perms=false")
        .arg("-E")
        .arg(format!("path.data={}", dir.join("data").display()))
        .output()
        .expect("run packetbeat");
    PbRun {
        status: o.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&o.stderr).to_string()
            + &String::from_utf8_lossy(&o.stdout),
    }
}

fn rand_suffix() -> u64 {
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A number from the output's closing summary (`… retried 12 (429: 3) …`).
fn summary_number(stderr: &str, key: &str) -> u64 {
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.contains("elasticsearch output: events acked"))
        .unwrap_or_else(|| panic!("no output summary in:\n{stderr}"));
    let at = line
        .find(key)
        .unwrap_or_else(|| panic!("{key} not in {line}"))
        + key.len();
    line[at..]
        .trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

const CAPTURES: &[&str] = &[
    "http_basicauth.pcap",
    "http_post.pcap",
    "http_minitwit.pcap",
    "http_x_forwarded_for.pcap",
    "dns_google_com.pcap",
    "dns_mx.pcap",
    "dns_not_found.pcap",
    "mysql_long.pcap",
    "redis_session.pcap",
    "tls-version-13.pcap",
    "icmp/icmp4_ping.pcap",
];

#[test]
fn real_node_indexing_storm_mapping_and_commands() {
    let Some(()) = node_prerequisites() else {
        return;
    };
    let Some(pcaps) = shared_or_skip("pcaps") else {
        return;
    };
    let node = Node::start();
    let version = node.version();
    assert_eq!(version, ES_VERSION);
    let proxy = Proxy::start(node.port, &version);
    let tmp = tempfile::tempdir().unwrap();
    let template = bridged_template(tmp.path());
    let ds = format!("packetbeat-{ES_VERSION}");

    // --- test output: libbeat's checklist, through the proxy (the node itself has no `GET /`).
    let r = packetbeat(
        &es_config(&proxy.url(), &template, ""),
        tmp.path(),
        &["test", "output"],
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
    let want = format!(
        "elasticsearch: http://127.0.0.1:{}...\n  parse url... OK\n  connection...\n    parse host... OK\n    dns lookup... OK\n    addresses: 127.0.0.1\n    dial up... OK\n  TLS... WARN secure connection disabled\n  talk to server... OK\n  version: {ES_VERSION}\n",
        proxy.port
    );
    assert!(r.stderr.contains(&want), "{}", r.stderr);
    let direct = es_config(&node.url(), &template, "");
    let r = packetbeat(&direct, tmp.path(), &["test", "output"]);
    assert_eq!(r.status, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("  talk to server... ERROR Non 2xx response code: 405"),
        "{}",
        r.stderr
    );

    // --- every event of several captures indexed; queries find the right documents.
    let mut expected: Vec<Value> = Vec::new();
    let cfg = es_config(&proxy.url(), &template, "");
    for (i, name) in CAPTURES.iter().enumerate() {
        let pcap = pcaps.join(name);
        assert!(pcap.exists(), "{}", pcap.display());
        let file_run = run_capture(&pcap, ALL_PROTOCOLS, &[]);
        assert_eq!(file_run.status, 0, "{}", file_run.stderr);
        let r = packetbeat(
            &cfg,
            tmp.path(),
            &["-e", "-t", "-I", pcap.to_str().unwrap()],
        );
        assert_eq!(r.status, 0, "{name}: {}", r.stderr);
        let acked = summary_number(&r.stderr, "events acked");
        assert_eq!(
            acked as usize,
            file_run.events.len(),
            "{name}: {}",
            r.stderr
        );
        assert_eq!(
            summary_number(&r.stderr, "dropped"),
            0,
            "{name}: {}",
            r.stderr
        );
        if i == 0 {
            assert!(
                r.stderr
                    .contains("ILM is not available on this Elasticsearch node"),
                "{}",
                r.stderr
            );
            assert!(
                r.stderr.contains("Template with name") && r.stderr.contains(&ds),
                "{}",
                r.stderr
            );
        } else {
            assert!(
                r.stderr
                    .contains("already exists and will not be overwritten"),
                "{}",
                r.stderr
            );
        }
        expected.extend(file_run.events);
    }
    assert_eq!(
        node.count(&ds, None),
        expected.len() as u64,
        "every event indexed"
    );
    let (_, ds_info) = call("GET", &format!("{}/_resolve/index/{ds}", node.url()), None);
    assert_eq!(
        ds_info["data_streams"][0]["name"],
        ds.as_str(),
        "a data stream: {ds_info}"
    );
    let (_, mapping) = call(
        "GET",
        &format!(
            "{}/{ds}/_mapping/field/source.ip,event.duration,http.response.status_code",
            node.url()
        ),
        None,
    );
    let m = mapping.to_string();
    assert!(
        m.contains(r#""source.ip":{"full_name":"source.ip","mapping":{"ip":{"type":"ip"}}}"#),
        "{m}"
    );
    assert!(
        m.contains(r#""mapping":{"duration":{"type":"long"}}"#),
        "{m}"
    );
    let count_where = |f: &dyn Fn(&Value) -> bool| expected.iter().filter(|e| f(e)).count() as u64;
    let n200 = count_where(&|e| common::field(e, "http.response.status_code") == &json!(200));
    assert!(n200 > 0);
    assert_eq!(
        node.count(
            &ds,
            Some(json!({"term": {"http.response.status_code": 200}}))
        ),
        n200
    );
    let n404 = count_where(&|e| common::field(e, "http.response.status_code") == &json!(404));
    assert_eq!(
        node.count(
            &ds,
            Some(json!({"term": {"http.response.status_code": 404}}))
        ),
        n404
    );
    let ng = count_where(&|e| common::field(e, "dns.question.name") == &json!("google.com"));
    assert!(ng > 0);
    assert_eq!(
        node.count(
            &ds,
            Some(json!({"term": {"dns.question.name": "google.com"}}))
        ),
        ng
    );
    // source.ip is an `ip`: a CIDR term matches every address in it.
    let in_net = |e: &Value, prefix: &str| {
        common::field(e, "source.ip")
            .as_str()
            .is_some_and(|s| s.starts_with(prefix))
    };
    let n10 = count_where(&|e| in_net(e, "10."));
    let n192 = count_where(&|e| in_net(e, "192.168."));
    assert!(n10 + n192 > 0);
    assert_eq!(
        node.count(&ds, Some(json!({"term": {"source.ip": "10.0.0.0/8"}}))),
        n10
    );
    assert_eq!(
        node.count(&ds, Some(json!({"term": {"source.ip": "192.168.0.0/16"}}))),
        n192
    );
    let durations: Vec<i64> = expected
        .iter()
        .filter_map(|e| common::field(e, "event.duration").as_i64())
        .collect();
    let mut sorted = durations.clone();
    sorted.sort();
    let median = sorted[sorted.len() / 2];
    let n_slow = durations.iter().filter(|d| **d >= median).count() as u64;
    assert_eq!(
        node.count(
            &ds,
            Some(json!({"range": {"event.duration": {"gte": median}}}))
        ),
        n_slow
    );

    // --- a 429 storm: 30 % of the items of every bulk request answered 429 by the proxy.
    let storm_ds = "pbstorm-sip";
    let mut t: Value = serde_json::from_str(&std::fs::read_to_string(&template).unwrap()).unwrap();
    t["index_patterns"] = json!(["pbstorm-*", "pbmap-*"]);
    t["priority"] = json!(300);
    let (st, v) = call(
        "PUT",
        &format!("{}/_index_template/pbtest", node.url()),
        Some(&t),
    );
    assert_eq!(st, 200, "{v}");
    let pcap = pcaps.join("http_minitwit.pcap");
    let file_run = run_capture(&pcap, ALL_PROTOCOLS, &["-l", "20"]);
    proxy.state.reject_per_mille.store(300, Ordering::Relaxed);
    let storm_cfg = format!(
        "{ALL_PROTOCOLS}\noutput.elasticsearch:\n  hosts: ['{}']\n  index: {storm_ds}\n  bulk_max_size: 50\n  backoff.init: 10ms\n  backoff.max: 50ms\nsetup.template.enabled: false\nsetup.ilm.enabled: false\n",
        proxy.url()
    );
    let r = packetbeat(
        &storm_cfg,
        tmp.path(),
        &["-e", "-t", "-I", pcap.to_str().unwrap(), "-l", "20"],
    );
    proxy.state.reject_per_mille.store(0, Ordering::Relaxed);
    assert_eq!(r.status, 0, "{}", r.stderr);
    let rejected = proxy.state.rejected.load(Ordering::Relaxed);
    assert!(rejected > 0, "the proxy rejected items");
    assert_eq!(
        summary_number(&r.stderr, "(429:"),
        rejected,
        "every 429 counted: {}",
        r.stderr
    );
    assert_eq!(
        summary_number(&r.stderr, "retried"),
        rejected,
        "only the rejected items resent"
    );
    assert_eq!(
        node.count(storm_ds, None),
        file_run.events.len() as u64,
        "every event indexed exactly once after the storm"
    );

    // --- a mapping error drops only that document, with a log line.
    let sip = pcaps.join("sip_authenticated_register.pcap");
    let sip_cfg = |index: &str| {
        format!(
            "{ALL_PROTOCOLS}\noutput.elasticsearch:\n  hosts: ['{}']\n  index: {index}\nsetup.template.enabled: false\nsetup.ilm.enabled: false\n",
            proxy.url()
        )
    };
    let file_run = run_capture(&sip, ALL_PROTOCOLS, &[]);
    let with_method = file_run
        .events
        .iter()
        .filter(|e| !common::field(e, "sip.method").is_null())
        .count();
    assert!(
        with_method >= 1 && with_method < file_run.events.len(),
        "{with_method}"
    );
    let mut t2 = t.clone();
    t2["index_patterns"] = json!(["pbmap-*"]);
    t2["priority"] = json!(400);
    t2["template"]["mappings"]["properties"]["sip"]["properties"]["method"] =
        json!({"type": "long"});
    let (st, v) = call(
        "PUT",
        &format!("{}/_index_template/pbmap", node.url()),
        Some(&t2),
    );
    assert_eq!(st, 200, "{v}");
    let r = packetbeat(
        &sip_cfg("pbmap-sip"),
        tmp.path(),
        &["-e", "-t", "-I", sip.to_str().unwrap()],
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(
        summary_number(&r.stderr, "dropped"),
        with_method as u64,
        "{}",
        r.stderr
    );
    let logged = r
        .stderr
        .lines()
        .filter(|l| {
            l.contains("Cannot index event (status=400)")
                && l.contains("dropping event!")
                && l.contains("sip.method")
        })
        .count();
    assert_eq!(
        logged, with_method,
        "one log line per dropped event, naming the field:\n{}",
        r.stderr
    );
    assert_eq!(
        node.count("pbmap-sip", None),
        (file_run.events.len() - with_method) as u64
    );
    assert_eq!(
        node.count(
            "pbmap-sip",
            Some(json!({"exists": {"field": "sip.method"}}))
        ),
        0
    );

    // ... or sends it to the dead letter index.
    let dl_cfg = sip_cfg("pbmap-dl")
        + "output.elasticsearch.non_indexable_policy.dead_letter_index.index: pbdead\n";
    let r = packetbeat(
        &dl_cfg,
        tmp.path(),
        &["-e", "-t", "-I", sip.to_str().unwrap()],
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(
        summary_number(&r.stderr, "dead letter"),
        with_method as u64,
        "{}",
        r.stderr
    );
    assert_eq!(node.count("pbdead", None), with_method as u64);
    let (_, hits) = call(
        "POST",
        &format!("{}/pbdead/_search", node.url()),
        Some(&json!({})),
    );
    let doc = &hits["hits"]["hits"][0]["_source"];
    assert_eq!(doc["error"]["type"], 400, "{doc}");
    assert!(
        doc["message"]
            .as_str()
            .unwrap()
            .contains("\"method\":\"REGISTER\""),
        "{doc}"
    );

    // --- setup --index-management installs the template (overwriting it).
    let (st, _) = call(
        "DELETE",
        &format!("{}/_index_template/pbsetup-x", node.url()),
        None,
    );
    assert!(st == 200 || st == 404);
    let mut t3 = t.clone();
    t3["index_patterns"] = json!(["pbsetup-x-*"]);
    let setup_template = tmp.path().join("setup-template.json");
    std::fs::write(&setup_template, t3.to_string()).unwrap();
    let setup_cfg = es_config(&proxy.url(), &setup_template, "").replace(
        &format!("setup.template.json.name: packetbeat-{ES_VERSION}"),
        "setup.template.json.name: pbsetup-x",
    );
    let r = packetbeat(
        &setup_cfg,
        tmp.path(),
        &["setup", "--index-management", "-e"],
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert!(r.stderr.contains("Index setup finished."), "{}", r.stderr);
    let (st, v) = call(
        "GET",
        &format!("{}/_index_template/pbsetup-x", node.url()),
        None,
    );
    assert_eq!(st, 200, "{v}");
}

#[test]
fn node_stopped_mid_run_and_restarted() {
    let Some(()) = node_prerequisites() else {
        return;
    };
    let Some(pcaps) = shared_or_skip("pcaps") else {
        return;
    };
    let mut node = Node::start();
    let version = node.version();
    let proxy = Proxy::start(node.port, &version);
    let tmp = tempfile::tempdir().unwrap();
    let index = "pbrestart-http";
    let pcap = pcaps.join("http_minitwit.pcap");
    let loops = "400";
    let expected = run_capture(&pcap, ALL_PROTOCOLS, &["-l", loops])
        .events
        .len() as u64;
    let cfg = format!(
        "{ALL_PROTOCOLS}\noutput.elasticsearch:\n  hosts: ['{}']\n  index: {index}\n  bulk_max_size: 100\n  backoff.init: 100ms\n  backoff.max: 1s\nsetup.template.enabled: false\nsetup.ilm.enabled: false\n",
        proxy.url()
    );
    let path = tmp.path().join("pb.yml");
    std::fs::write(&path, &cfg).unwrap();
    let log = std::fs::File::create(tmp.path().join("pb.log")).unwrap();
    let mut pb = Command::new(env!("CARGO_BIN_EXE_packetbeat"))
        .args(["-e", "-t", "-I", pcap.to_str().unwrap(), "-l", loops, "-c"])
        .arg(&path)
        .arg("--strict.perms=false")
        .arg("-E")
        .arg(format!("path.data={}", tmp.path().join("data").display()))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    // Some events in, then the node goes away mid-run.
    let until = Instant::now() + Duration::from_secs(120);
    loop {
        let (st, v) = call("GET", &format!("{}/{index}/_count", node.url()), None);
        if st == 200 && v["count"].as_u64().unwrap_or(0) > 0 {
            break;
        }
        assert!(Instant::now() < until, "nothing indexed: {v}");
        assert!(
            pb.try_wait().unwrap().is_none(),
            "packetbeat ended before the node was stopped"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    node.stop();
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        pb.try_wait().unwrap().is_none(),
        "packetbeat waits for the node"
    );
    node.launch();
    let until = Instant::now() + Duration::from_secs(240);
    let status = loop {
        if let Some(st) = pb.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > until {
            let _ = pb.kill();
            panic!("packetbeat did not finish after the restart");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let stderr = std::fs::read_to_string(tmp.path().join("pb.log")).unwrap();
    assert!(status.success(), "{stderr}");
    let got = node.count(index, None);
    let acked = summary_number(&stderr, "events acked");
    let retried = summary_number(&stderr, "retried");
    assert_eq!(acked, expected, "every event acknowledged: {stderr}");
    assert!(retried > 0, "the stop failed some requests: {stderr}");
    assert!(got >= expected, "nothing lost: {got} indexed of {expected}");
    assert!(
        got - expected <= retried,
        "duplicates ({}) bounded by the counted resends ({retried})",
        got - expected
    );
    eprintln!("restart: {expected} events, {got} documents, {retried} resent");
}

#[test]
fn every_capture_indexed() {
    let Some(()) = node_prerequisites() else {
        return;
    };
    let Some(captures) = common::captures_or_skip() else {
        return;
    };
    let node = Node::start();
    let proxy = Proxy::start(node.port, &node.version());
    let tmp = tempfile::tempdir().unwrap();
    let template = bridged_template(tmp.path());
    let cfg = es_config(&proxy.url(), &template, "");
    let mut total = 0u64;
    let mut failures = Vec::new();
    for pcap in &captures {
        let file_run = run_capture(pcap, ALL_PROTOCOLS, &[]);
        let r = packetbeat(
            &cfg,
            tmp.path(),
            &["-e", "-t", "-I", pcap.to_str().unwrap()],
        );
        let name = pcap.display().to_string();
        if r.status != 0 {
            failures.push(format!("{name}: exit {}", r.status));
            continue;
        }
        let acked = summary_number(&r.stderr, "events acked");
        let dropped = summary_number(&r.stderr, "dropped");
        if acked as usize != file_run.events.len() || dropped != 0 {
            let why: Vec<&str> = r
                .stderr
                .lines()
                .filter(|l| l.contains("Cannot index"))
                .take(3)
                .collect();
            failures.push(format!(
                "{name}: {acked} indexed, {dropped} dropped of {}: {why:?}",
                file_run.events.len()
            ));
        }
        total += file_run.events.len() as u64;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(node.count(&format!("packetbeat-{ES_VERSION}"), None), total);
    eprintln!("{} captures, {total} events indexed", captures.len());
}

/// The stock `packetbeat.yml` (Packetbeat 8.17's, from `../shared/reference`) run against the
/// node with only the endpoints overridden: the Elasticsearch host (the bridging proxy), the
/// cloud and docker metadata processors' endpoints (a closed loopback port, a missing socket),
/// and the template (the node's missing mapping types, see the module doc). Every event is
/// indexed into the data stream. Then `indices` and `pipelines` rules on the same node: HTTP
/// events go to an index of their own by a `when` rule, DNS events to a pipeline that does not
/// exist (the node refuses exactly those items, each dropped with a log line naming it), the
/// rest to the default data stream.
#[test]
fn stock_config_and_index_and_pipeline_rules() {
    let Some(()) = node_prerequisites() else {
        return;
    };
    let Some(stock) = shared_or_skip("reference/packetbeat/packetbeat.yml") else {
        return;
    };
    let Some(http_pcap) = shared_or_skip("pcaps/http_minitwit.pcap") else {
        return;
    };
    let Some(dns_pcap) = shared_or_skip("pcaps/dns_google_com.pcap") else {
        return;
    };
    let node = Node::start();
    let proxy = Proxy::start(node.port, &node.version());
    let tmp = tempfile::tempdir().unwrap();
    let template = bridged_template(tmp.path());
    let stock_cfg = tmp.path().join("packetbeat.yml");
    std::fs::copy(&stock, &stock_cfg).unwrap();
    let endpoints = |out: &mut Command| {
        out.arg("-c")
            .arg(&stock_cfg)
            .arg("--strict.perms=false")
            .args(["--path.data", tmp.path().join("data").to_str().unwrap()])
            .args(["-E", "processors.1.add_cloud_metadata.host=127.0.0.1:1"])
            .args([
                "-E",
                "processors.2.add_docker_metadata.host=unix:///nonexistent.sock",
            ]);
    };
    // What the stock config writes for the capture, through output.file.
    let out_dir = tmp.path().join("file-out");
    let mut c = Command::new(env!("CARGO_BIN_EXE_packetbeat"));
    c.args(["-e", "-t", "-I", http_pcap.to_str().unwrap()]);
    endpoints(&mut c);
    let o = c
        .args(["-E", "output.elasticsearch.enabled=false"])
        .args(["-E", &format!("output.file.path={}", out_dir.display())])
        .args(["-E", "output.file.filename=pb"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{err}");
    let file_events: Vec<Value> = std::fs::read_dir(&out_dir)
        .unwrap()
        .flat_map(|f| {
            std::fs::read_to_string(f.unwrap().path())
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    let http_events = file_events.iter().filter(|e| e["type"] == "http").count() as u64;
    assert!(http_events >= 5, "{http_events} HTTP events");
    assert!(file_events.iter().any(|e| e["type"] == "flow"));

    let mut c = Command::new(env!("CARGO_BIN_EXE_packetbeat"));
    c.args(["-e", "-t", "-I", http_pcap.to_str().unwrap()]);
    endpoints(&mut c);
    let o = c
        .args([
            "-E",
            &format!("output.elasticsearch.hosts=['{}']", proxy.url()),
        ])
        .args(["-E", "setup.template.json.enabled=true"])
        .args([
            "-E",
            &format!("setup.template.json.path={}", template.display()),
        ])
        .args([
            "-E",
            &format!("setup.template.json.name=packetbeat-{ES_VERSION}"),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{err}");
    assert_eq!(summary_number(&err, "dropped"), 0, "{err}");
    let stream = format!("packetbeat-{ES_VERSION}");
    assert_eq!(node.count(&stream, None), file_events.len() as u64, "{err}");
    assert_eq!(
        node.count(&stream, Some(json!({"term": {"type": "http"}}))),
        http_events
    );
    // The stock processors ran: host metadata on every document.
    assert_eq!(
        node.count(
            &stream,
            Some(json!({"exists": {"field": "host.os.family"}}))
        ),
        file_events.len() as u64
    );

    // Rules: HTTP to an index of its own named from the event, DNS to a missing pipeline.
    let rules = "
  indices:
    - index: 'pb-web-%{[network.protocol]}-%{+yyyy}'
      when.equals:
        type: http
  pipelines:
    - pipeline: 'no-such-pipeline'
      when.equals:
        type: dns
";
    let cfg = es_config(&proxy.url(), &template, rules);
    for pcap in [&http_pcap, &dns_pcap] {
        let r = packetbeat(
            &cfg,
            tmp.path(),
            &["-e", "-t", "-I", pcap.to_str().unwrap()],
        );
        assert_eq!(r.status, 0, "{}", r.stderr);
        if pcap == &dns_pcap {
            let dns = run_capture(pcap, ALL_PROTOCOLS, &[]).events.len() as u64;
            assert!(dns > 0);
            assert_eq!(summary_number(&r.stderr, "dropped"), dns, "{}", r.stderr);
            assert!(
                r.stderr.contains("no-such-pipeline"),
                "the refusal names the pipeline:\n{}",
                r.stderr
            );
        } else {
            assert_eq!(summary_number(&r.stderr, "dropped"), 0, "{}", r.stderr);
        }
    }
    // The capture's packets are from 2014-2016: the year comes from each event's time.
    let (_, idx) = call(
        "GET",
        &format!("{}/_cat/indices/pb-web-*?format=json", node.url()),
        None,
    );
    let names: Vec<&str> = idx
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["index"].as_str().unwrap())
        .collect();
    assert!(
        !names.is_empty() && names.iter().all(|n| n.starts_with("pb-web-http-20")),
        "{names:?}"
    );
    let http_by_rules = run_capture(&http_pcap, ALL_PROTOCOLS, &[])
        .events
        .iter()
        .filter(|e| e["type"] == "http")
        .count() as u64;
    assert!(http_by_rules > 0);
    assert_eq!(node.count("pb-web-*", None), http_by_rules);
}

/// A node with security on (HTTPS, basic authentication with the password set through the
/// node's keystore): the output ships a capture over TLS with the test CA and `elastic`'s
/// credentials, every event indexed; `test output` passes; a wrong password and a missing CA
/// fail `test output` at the step libbeat names.
#[test]
fn tls_and_basic_auth() {
    let Some(()) = node_prerequisites() else {
        return;
    };
    let Some(pcap) = shared_or_skip("pcaps/http_minitwit.pcap") else {
        return;
    };
    let password = "pb-Test-s3cret";
    let node = Node::start_secure(common::certs::Certs::new(), password);
    let ca = node.secure.as_ref().unwrap().certs.p("ca.pem");
    // Security is on: no credentials, no answer.
    let anonymous = https(&node.secure.as_ref().unwrap().certs)
        .get(&format!("{}/_cluster/health", node.url()))
        .call();
    assert!(
        matches!(anonymous, Err(ureq::Error::Status(401, _))),
        "{anonymous:?}"
    );
    let port = start_tls_proxy(&node);
    let tmp = tempfile::tempdir().unwrap();
    let template = bridged_template(tmp.path());
    let hosts = format!("'https://localhost:{port}'");
    let auth = |pw: &str, with_ca: bool| {
        let mut extra = format!("  username: elastic\n  password: '{pw}'\n");
        if with_ca {
            extra.push_str(&format!("  ssl.certificate_authorities: ['{ca}']\n"));
        }
        es_config(&hosts, &template, &extra)
    };
    let expected = run_capture(&pcap, ALL_PROTOCOLS, &[]).events.len() as u64;
    assert!(expected > 0);
    let r = packetbeat(
        &auth(password, true),
        tmp.path(),
        &["-e", "-t", "-I", pcap.to_str().unwrap()],
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(
        summary_number(&r.stderr, "events acked"),
        expected,
        "{}",
        r.stderr
    );
    assert_eq!(
        node.count(&format!("packetbeat-{ES_VERSION}"), None),
        expected
    );

    let r = packetbeat(&auth(password, true), tmp.path(), &["test", "output"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert!(r.stderr.contains("TLS version"), "{}", r.stderr);
    let r = packetbeat(&auth("wrong", true), tmp.path(), &["test", "output"]);
    assert_ne!(r.status, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("401"),
        "a wrong password is refused by the node:\n{}",
        r.stderr
    );
    let r = packetbeat(&auth(password, false), tmp.path(), &["test", "output"]);
    assert_ne!(r.status, 0, "{}", r.stderr);
    assert!(
        r.stderr.to_lowercase().contains("certificate"),
        "without the CA the certificate is not trusted:\n{}",
        r.stderr
    );
}

/// Not a test: `scripts/bench-outputs` runs it (`--ignored`) to have a node and its bridging
/// proxy for the Elasticsearch figures. It writes the proxy's URL and the template path to
/// `$PB_ES_BENCH_DIR/endpoint`, then serves until `$PB_ES_BENCH_DIR/stop` exists, and prints
/// the data stream's document count when it stops.
#[test]
#[ignore]
fn node_for_the_outputs_benchmark() {
    let Ok(dir) = std::env::var("PB_ES_BENCH_DIR") else {
        return;
    };
    let dir = PathBuf::from(dir);
    node_prerequisites().expect("the Elasticsearch test distribution and Java 17");
    let node = Node::start();
    let proxy = Proxy::start(node.port, &node.version());
    let template = bridged_template(&dir);
    std::fs::write(
        dir.join("endpoint.tmp"),
        format!("{}\n{}\n", proxy.url(), template.display()),
    )
    .unwrap();
    std::fs::rename(dir.join("endpoint.tmp"), dir.join("endpoint")).unwrap();
    while !dir.join("stop").exists() {
        std::thread::sleep(Duration::from_millis(200));
    }
    let n = node.count(&format!("packetbeat-{ES_VERSION}"), None);
    std::fs::write(dir.join("count"), n.to_string()).unwrap();
}
