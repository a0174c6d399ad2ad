//! One HTTP connection to one Elasticsearch host: requests with the configured credentials,
//! headers and parameters, gzip request bodies, `GET /` for the version.
//!
//! HTTP is `ureq` 2 (blocking, rustls 0.23 with the TLS configuration built by
//! [`crate::outputs::net::tls`], HTTP and SOCKS5 proxies): the output's workers are threads that
//! block on their request, like the Logstash output's, so a blocking client fits without an
//! async runtime. Each worker owns one client (one agent, so one keep-alive connection); a
//! connection idle longer than `idle_connection_timeout` is dropped before the next request.

use super::config::EsConfig;
use crate::outputs::net::tls::{self, SslConfig};
use crate::setup::Version;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A failed request: no HTTP status (connection refused, reset, timeout, TLS, …).
#[derive(Debug)]
pub struct TransportError(pub String);

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What every client of an output shares: TLS, proxy, credentials, headers.
#[derive(Clone)]
pub struct Shared {
    tls: Option<Arc<rustls::ClientConfig>>,
    proxy: Option<ureq::Proxy>,
    auth: Option<String>,
    /// Basic credentials given in a host's URL, by that host's URL (without them).
    host_auth: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    params: String,
    timeout: Duration,
    idle: Duration,
    compression: u32,
}

impl Shared {
    pub fn new(c: &EsConfig) -> anyhow::Result<Shared> {
        let ssl = SslConfig::enabled(&c.ssl);
        let https = c.protocol == "https"
            || c.hosts.iter().any(|h| h.trim().starts_with("https://"))
            || ssl.is_some();
        let tls = if https {
            let def = SslConfig::default();
            Some(tls::client_config(
                ssl.unwrap_or(&def),
                "output.elasticsearch.ssl",
            )?)
        } else {
            None
        };
        let proxy = match c.proxy_url.as_deref().filter(|u| !u.is_empty()) {
            Some(u) if !c.proxy_disable => Some(
                ureq::Proxy::new(u)
                    .map_err(|e| anyhow::anyhow!("output.elasticsearch.proxy_url '{u}': {e}"))?,
            ),
            _ => None,
        };
        use base64::Engine;
        let auth = if !c.api_key.is_empty() {
            Some(format!("ApiKey {}", c.api_key))
        } else if !c.username.is_empty() || !c.password.is_empty() {
            let raw = format!("{}:{}", c.username, c.password);
            Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(raw)
            ))
        } else {
            None
        };
        let mut host_auth = Vec::new();
        for h in &c.hosts {
            if let (Some((user, pass)), Ok(url)) = (
                super::config::url_credentials(h),
                super::config::make_url(&c.protocol, &c.path, h),
            ) {
                let raw = format!("{user}:{pass}");
                host_auth.push((
                    url,
                    format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode(raw)
                    ),
                ));
            }
        }
        let params = c
            .parameters
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        Ok(Shared {
            tls,
            proxy,
            auth,
            host_auth,
            headers: c
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            params,
            timeout: c.timeout.0,
            idle: c.idle_connection_timeout.0,
            compression: c.compression_level,
        })
    }

    fn agent(&self) -> ureq::Agent {
        let mut b = ureq::AgentBuilder::new()
            .timeout_connect(self.timeout)
            .timeout(self.timeout)
            .redirects(0)
            .max_idle_connections_per_host(1)
            .user_agent(&format!("Packetbeat/{}", crate::BEAT_VERSION));
        if let Some(t) = &self.tls {
            b = b.tls_config(t.clone());
        }
        if let Some(p) = &self.proxy {
            b = b.proxy(p.clone());
        }
        b.build()
    }
}

fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A client of one host.
pub struct Client {
    pub url: String,
    shared: Shared,
    agent: ureq::Agent,
    last_used: Instant,
    gzip_buf: Vec<u8>,
}

/// A response: status and body.
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Response {
    /// The body as text, for messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Client {
    pub fn new(url: String, shared: Shared) -> Client {
        Client {
            url,
            agent: shared.agent(),
            shared,
            last_used: Instant::now(),
            gzip_buf: Vec::new(),
        }
    }

    /// `path` (starting with `/`) and `query` joined to the base URL, with `parameters` when
    /// `with_params` (libbeat adds them to index operations).
    fn full_url(&self, path: &str, query: &str, with_params: bool) -> String {
        let mut u = format!("{}{}", self.url, path);
        let mut q: Vec<&str> = Vec::new();
        if with_params && !self.shared.params.is_empty() {
            q.push(&self.shared.params);
        }
        if !query.is_empty() {
            q.push(query);
        }
        if !q.is_empty() {
            u.push('?');
            u.push_str(&q.join("&"));
        }
        u
    }

    /// Sends one request; `body` is JSON (gzip-compressed with `compression_level` > 0 when
    /// `compress`).
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        query: &str,
        body: Option<&[u8]>,
        compress: bool,
    ) -> Result<Response, TransportError> {
        if !self.shared.idle.is_zero() && self.last_used.elapsed() > self.shared.idle {
            // Drop the pooled connection rather than reuse one the server may have closed.
            self.agent = self.shared.agent();
        }
        let url = self.full_url(path, query, compress);
        let mut req = self
            .agent
            .request(method, &url)
            .set("Accept", "application/json");
        let host_auth = self.shared.host_auth.iter().find(|(u, _)| *u == self.url);
        if let Some(a) = host_auth.map(|(_, a)| a).or(self.shared.auth.as_ref()) {
            req = req.set("Authorization", a);
        }
        for (k, v) in &self.shared.headers {
            req = req.set(k, v);
        }
        let result = match body {
            None => req.call(),
            Some(b) => {
                req = req.set("Content-Type", "application/json; charset=UTF-8");
                if compress && self.shared.compression > 0 {
                    self.gzip_buf.clear();
                    let mut enc = flate2::write::GzEncoder::new(
                        std::mem::take(&mut self.gzip_buf),
                        flate2::Compression::new(self.shared.compression),
                    );
                    let _ = enc.write_all(b);
                    self.gzip_buf = enc.finish().unwrap_or_default();
                    req.set("Content-Encoding", "gzip")
                        .send_bytes(&self.gzip_buf)
                } else {
                    req.send_bytes(b)
                }
            }
        };
        self.last_used = Instant::now();
        let resp = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(ureq::Error::Transport(t)) => {
                // A failed connection is not reused.
                self.agent = self.shared.agent();
                return Err(TransportError(transport_message(&method, &url, &t)));
            }
        };
        let status = resp.status();
        let mut body = Vec::new();
        resp.into_reader()
            .read_to_end(&mut body)
            .map_err(|e| TransportError(format!("{method} {url}: reading the response: {e}")))?;
        Ok(Response { status, body })
    }

    /// Bytes sent by the last compressed request.
    pub fn last_compressed_len(&self) -> usize {
        self.gzip_buf.len()
    }

    /// `GET /`: the node's version (libbeat's `Ping`).
    pub fn ping(&mut self) -> Result<Version, String> {
        let r = self.request("GET", "/", "", None, false).map_err(|e| e.0)?;
        if r.status >= 300 {
            return Err(format!("Non 2xx response code: {}", r.status));
        }
        let v: serde_json::Value = serde_json::from_slice(&r.body)
            .map_err(|e| format!("Failed to parse JSON response: {e}"))?;
        let number = v
            .pointer("/version/number")
            .and_then(|n| n.as_str())
            .ok_or("Failed to parse JSON response: no version.number")?;
        Version::parse(number)
            .map_err(|e| format!("Invalid version from Elasticsearch: {number}: {e}"))
    }
}

fn transport_message(method: &str, url: &str, t: &ureq::Transport) -> String {
    let mut s = format!("{method} {url}: {}", t.kind());
    if let Some(m) = t.message() {
        s.push_str(": ");
        s.push_str(m);
    }
    if let Some(src) = std::error::Error::source(t) {
        s.push_str(": ");
        s.push_str(&src.to_string());
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_carry_parameters_on_index_requests() {
        let raw: serde_yaml::Value =
            serde_yaml::from_str("hosts: [a]\nparameters: {a: 'x y', b: '1'}\napi_key: id:k\n")
                .unwrap();
        let c: EsConfig = crate::config::types::decode(&raw, "o", "t").unwrap();
        let s = Shared::new(&c).unwrap();
        assert_eq!(s.auth.as_deref(), Some("ApiKey id:k"));
        let cl = Client::new("http://a:9200".into(), s);
        assert_eq!(
            cl.full_url("/_bulk", "filter_path=x", true),
            "http://a:9200/_bulk?a=x%20y&b=1&filter_path=x"
        );
        assert_eq!(cl.full_url("/", "", false), "http://a:9200/");
    }
}
