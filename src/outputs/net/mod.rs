//! What network outputs share: reaching a host ([`conn`] over [`proxy`] and [`tls`]), retrying
//! ([`backoff`]), spreading work over hosts with failover or load balancing ([`balance`]), the
//! `connection...`/`TLS...` steps of `packetbeat test output` ([`testing`]), their counters
//! ([`Metrics`]) and their events serialised once ([`Encoded`]).
//!
//! An output built on these keeps only its wire protocol: it serialises batches into
//! [`Encoded`], queues them on a [`balance::WorkQueue`], and runs one worker loop per
//! [`balance::HostSet`] that dials with [`conn::Dialer`] and acknowledges ranges of events.

pub mod backoff;
pub mod balance;
pub mod conn;
pub mod proxy;
pub mod testing;
pub mod tls;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A network output's counters (logged when it closes, read by `/stats` as libbeat's
/// `libbeat.output.*`).
#[derive(Debug, Default)]
pub struct Metrics {
    /// Events acknowledged by a server.
    pub acked: AtomicU64,
    /// Events whose window failed and that were queued again (each resend counts).
    pub failed: AtomicU64,
    /// Events given up for good (refused by the server, too large, no target).
    pub dropped: AtomicU64,
    /// Events the server already had (Elasticsearch's 409 on a create).
    pub duplicates: AtomicU64,
    /// Events the server asked to send again later (Elasticsearch's 429).
    pub too_many: AtomicU64,
    /// Events given up when the shutdown deadline passed.
    pub not_delivered: AtomicU64,
    /// Windows (requests) written.
    pub batches: AtomicU64,
    /// Bytes written (after compression).
    pub write_bytes: AtomicU64,
    /// Connection, write, acknowledgement and protocol errors.
    pub errors: AtomicU64,
    /// Bytes of the server's answers read.
    pub read_bytes: AtomicU64,
    /// Answers that could not be read (connection lost, malformed).
    pub read_errors: AtomicU64,
    /// The last error, said again while the output is stalled.
    pub last_error: std::sync::Mutex<String>,
}

impl Metrics {
    /// Counts an error (`write.errors`) and keeps its text as the last error.
    pub fn error(&self, why: impl std::fmt::Display) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        self.remember(why);
    }

    /// Keeps `why` as the last error without counting it.
    pub fn remember(&self, why: impl std::fmt::Display) {
        if let Ok(mut l) = self.last_error.lock() {
            *l = why.to_string();
        }
    }

    /// Their values now, under libbeat's names.
    pub fn counters(&self) -> super::OutputCounters {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        super::OutputCounters {
            acked: g(&self.acked),
            failed: g(&self.failed),
            dropped: g(&self.dropped),
            duplicates: g(&self.duplicates),
            too_many: g(&self.too_many),
            write_bytes: g(&self.write_bytes),
            write_errors: g(&self.errors),
            read_bytes: g(&self.read_bytes),
            read_errors: g(&self.read_errors),
            last_error: self.last_error.lock().map(|l| l.clone()).unwrap_or_default(),
        }
    }

    pub fn summary(&self) -> String {
        format!(
            "events acked {}, resent {}, not delivered {}; windows {}; write bytes {}; errors {}",
            self.acked.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            self.not_delivered.load(Ordering::Relaxed),
            self.batches.load(Ordering::Relaxed),
            self.write_bytes.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed),
        )
    }
}

/// Events already serialised, back to back in one buffer.
#[derive(Default, Debug, Clone)]
pub struct Encoded {
    pub data: Vec<u8>,
    /// End offset of each event in `data`.
    pub ends: Vec<usize>,
    /// Each event's own target (a redis key chosen per event by `keys` or a format string);
    /// empty when every event goes to the output's one target.
    pub targets: Vec<String>,
}

impl Encoded {
    pub fn len(&self) -> usize {
        self.ends.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
    pub fn event(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.data[start..self.ends[i]]
    }
}

/// `host[:port]` with `default_port` when none is given; IPv6 literals as `[::1]:5044`.
pub fn host_port(host: &str, default_port: u16) -> Result<(String, u16), String> {
    let h = host.trim();
    if let Some(rest) = h.strip_prefix('[') {
        let (ip, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("invalid host '{host}'"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| format!("invalid port in '{host}'"))?,
            None => default_port,
        };
        return Ok((ip.to_string(), port));
    }
    match h.rsplit_once(':') {
        Some((name, p)) if !name.contains(':') => Ok((
            name.to_string(),
            p.parse().map_err(|_| format!("invalid port in '{host}'"))?,
        )),
        _ if h.is_empty() => Err("empty host".into()),
        _ => Ok((h.to_string(), default_port)),
    }
}

/// The connection options libbeat's network outputs have in common, as named under `output.X`.
pub struct DialOptions<'a> {
    /// `output.X`, for messages.
    pub key: &'a str,
    pub hosts: &'a [String],
    pub default_port: u16,
    pub timeout: Duration,
    /// `ssl`, when enabled.
    pub ssl: Option<&'a tls::SslConfig>,
    pub proxy_url: Option<&'a str>,
    pub proxy_use_local_resolver: bool,
}

/// One dialer per configured host, sharing one TLS configuration and proxy.
pub fn dialers(o: &DialOptions) -> anyhow::Result<Vec<conn::Dialer>> {
    let tls = match o.ssl {
        Some(ssl) => Some(tls::client_config(ssl, &format!("{}.ssl", o.key))?),
        None => None,
    };
    let proxy = match o.proxy_url.filter(|s| !s.is_empty()) {
        Some(u) => Some(proxy::parse(u)?),
        None => None,
    };
    o.hosts
        .iter()
        .map(|h| {
            let (host, port) = host_port(h, o.default_port)
                .map_err(|e| anyhow::anyhow!("{}.hosts: {e}", o.key))?;
            Ok(conn::Dialer {
                host,
                port,
                timeout: o.timeout,
                tls: tls.clone(),
                proxy: proxy.clone(),
                proxy_local_resolve: o.proxy_use_local_resolver,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_default_port() {
        assert_eq!(
            host_port("localhost", 5044).unwrap(),
            ("localhost".into(), 5044)
        );
        assert_eq!(host_port("a:5045", 5044).unwrap(), ("a".into(), 5045));
        assert_eq!(host_port("[::1]", 9200).unwrap(), ("::1".into(), 9200));
        assert_eq!(host_port("[::1]:1", 5044).unwrap(), ("::1".into(), 1));
        assert_eq!(host_port("::1", 5044).unwrap(), ("::1".into(), 5044));
        assert!(host_port("a:x", 5044).is_err());
    }

    #[test]
    fn encoded_events() {
        let e = Encoded {
            data: b"abcde".to_vec(),
            ends: vec![2, 2, 5],
            targets: Vec::new(),
        };
        assert_eq!(
            (e.len(), e.event(0), e.event(1), e.event(2)),
            (3, &b"ab"[..], &b""[..], &b"cde"[..])
        );
    }
}
