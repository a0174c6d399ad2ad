//! The monitoring endpoint (libbeat's `api` package): `GET /`, `/stats`, `/state`, each as JSON,
//! indented with `?pretty`; anything else is 404. Served by `tiny_http` (a small blocking HTTP/1.1
//! server, TCP or Unix socket) on a thread of its own: requests are rare and answered from
//! counters, so an async stack would add nothing.

use super::{stats, Live};
use serde_json::{json, Value};
use std::sync::Arc;

/// Binds `host:port` (or the Unix socket of `unix:///path`) and serves on a thread of its own.
pub fn start(host: &str, port: u16, live: Arc<Live>) -> anyhow::Result<()> {
    let (server, label) = match host.strip_prefix("unix://") {
        Some(path) => {
            let path = std::path::Path::new(path);
            // A socket file left by an earlier run would make the bind fail.
            if path.exists() {
                let _ = std::fs::remove_file(path);
            }
            let s = tiny_http::Server::http_unix(path).map_err(|e| {
                anyhow::anyhow!(
                    "monitoring endpoint: cannot listen on unix:{}: {e}",
                    path.display()
                )
            })?;
            (s, format!("unix:{}", path.display()))
        }
        None => {
            let addr = if host.contains(':') && !host.starts_with('[') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            };
            let s = tiny_http::Server::http(&addr).map_err(|e| {
                anyhow::anyhow!("monitoring endpoint: cannot listen on {addr}: {e}")
            })?;
            (s, format!("http://{addr}"))
        }
    };
    tracing::info!(target: "packetbeat::api", "Starting stats endpoint");
    tracing::info!(target: "packetbeat::api", "Metrics endpoint listening on: {label} (configured: {host})");
    std::thread::Builder::new()
        .name("monitoring-http".into())
        .spawn(move || {
            for req in server.incoming_requests() {
                let (status, body) = answer(req.method(), req.url(), &live);
                let mut resp = tiny_http::Response::from_string(body).with_status_code(status);
                if status == 200 {
                    resp = resp.with_header(
                        tiny_http::Header::from_bytes(
                            "Content-Type",
                            "application/json; charset=utf-8",
                        )
                        .expect("a valid header"),
                    );
                }
                let _ = req.respond(resp);
            }
        })?;
    Ok(())
}

/// Status and body for one request.
fn answer(method: &tiny_http::Method, url: &str, live: &Live) -> (u16, String) {
    if *method != tiny_http::Method::Get {
        return (405, "Method Not Allowed".into());
    }
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let pretty = query
        .split('&')
        .any(|q| q == "pretty" || q.starts_with("pretty="));
    let doc = match path.trim_end_matches('/') {
        "" => info(live),
        "/stats" => stats::snapshot(live),
        "/inputs" => stats::inputs(),
        "/state" => state(live),
        _ => return (404, "404 page not found\n".into()),
    };
    let body = if pretty {
        serde_json::to_string_pretty(&doc)
    } else {
        serde_json::to_string(&doc)
    };
    (200, body.expect("JSON values serialise"))
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default()
}

fn user() -> (String, String, String) {
    let uid = nix::unistd::getuid();
    let gid = nix::unistd::getgid();
    let name = nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_default();
    (uid.to_string(), gid.to_string(), name)
}

/// `GET /`: the Beat's identity, as libbeat's `/` answers.
fn info(live: &Live) -> Value {
    let (uid, gid, username) = user();
    json!({
        "beat": "packetbeat",
        "binary_arch": std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64"),
        "elastic_licensed": false,
        "ephemeral_id": live.info.ephemeral_id,
        "gid": gid,
        "hostname": hostname(),
        "name": live.info.name,
        "uid": uid,
        "username": username,
        "uuid": live.info.id,
        "version": crate::BEAT_VERSION,
    })
}

/// `GET /state`: what runs (beat, host, output, queue, service), as libbeat's `/state`.
fn state(live: &Live) -> Value {
    json!({
        "beat": {"name": live.info.name},
        "host": {
            "architecture": std::env::consts::ARCH,
            "hostname": hostname(),
            "os": {"family": std::env::consts::FAMILY, "kernel": kernel(), "platform": std::env::consts::OS},
        },
        "management": {"enabled": false},
        "module": {"count": 0, "names": []},
        "output": {"name": live.output_type},
        "queue": {"name": "mem"},
        "service": {"id": live.info.id, "name": "packetbeat", "version": crate::BEAT_VERSION},
    })
}

fn kernel() -> String {
    nix::sys::utsname::uname()
        .ok()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}
