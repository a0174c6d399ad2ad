//! `packetbeat.limits` (this build's options): what one packet worker may hold, so hostile
//! traffic cannot grow memory without bound. Packetbeat has no such limits.
//! - `tcp_connections` (default 262,144 per worker): open and recently closed TCP connections
//!   ([`crate::protos::tcp`]); a new one past it evicts one, counted as `tcp.evicted`.
//! - `stream_bytes` (default 256 MiB per worker, a size like `512MiB`): bytes buffered for TCP
//!   streams, by the analyzers and ahead of holes ([`crate::protos::app::stream::budget`]);
//!   past it a stream that needs more is dropped, counted as `tcp.stream_bytes_refused`.
//! - `transactions` (default 65,536 per table): open transactions an analyzer pairs by key (DNS
//!   queries, ICMP echoes, memcache UDP, NFS calls, Cassandra and MongoDB requests); past it the
//!   oldest is reported as unanswered at once ([`crate::protos::app::transactions`]), counted as
//!   `packetbeat.transactions.evicted`.
//!
//! - `ip_datagrams` (default 1,024 per worker, and as many for the capture thread's dispatcher):
//!   IPv4 datagrams in reassembly, each at most 64 KiB ([`crate::decoder::defrag`]); past it
//!   the oldest is given up, counted (with those that timed out) as
//!   `packetbeat.decoder.ipv4_datagrams_dropped`.
//!
//! What else is bounded, and by what: flows (`packetbeat.flows.max_flows`), each stream
//! (Packetbeat's 10 MiB), each connection's held segments (64 / 256 KiB per direction).

use crate::config::types::lookup;
use crate::config::Config;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub tcp_connections: usize,
    pub stream_bytes: usize,
    pub transactions: usize,
    pub ip_datagrams: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            tcp_connections: crate::protos::tcp::DEFAULT_MAX_CONNECTIONS,
            stream_bytes: crate::protos::app::stream::budget::DEFAULT_LIMIT,
            transactions: crate::protos::app::transactions::DEFAULT_MAX_TRANSACTIONS,
            ip_datagrams: crate::decoder::defrag::DEFAULT_MAX_DATAGRAMS,
        }
    }
}

impl Limits {
    pub fn from_config(cfg: &Config) -> Result<Limits, String> {
        let d = Limits::default();
        let count = |v: &serde_yaml::Value| v.as_u64();
        let size = |v: &serde_yaml::Value| crate::beater::diskqueue::config::byte_size(v).ok();
        Ok(Limits {
            tcp_connections: positive(cfg, "tcp_connections", "a count", count)?
                .unwrap_or(d.tcp_connections),
            stream_bytes: positive(cfg, "stream_bytes", "a size", size)?
                .unwrap_or(d.stream_bytes),
            transactions: positive(cfg, "transactions", "a count", count)?
                .unwrap_or(d.transactions),
            ip_datagrams: positive(cfg, "ip_datagrams", "a count", count)?
                .unwrap_or(d.ip_datagrams),
        })
    }
}

/// `packetbeat.limits.<key>` read by `parse`, which must give more than 0; `None` when unset.
fn positive(
    cfg: &Config,
    key: &str,
    what: &str,
    parse: impl Fn(&serde_yaml::Value) -> Option<u64>,
) -> Result<Option<usize>, String> {
    let path = format!("packetbeat.limits.{key}");
    match lookup(&cfg.raw, &path) {
        None | Some(serde_yaml::Value::Null) => Ok(None),
        Some(v) => parse(v)
            .filter(|n| *n > 0)
            .map(|n| Some(n as usize))
            .ok_or_else(|| format!("requires {what} > 0 accessing '{path}' (got {v:?})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_and_defaults() {
        let load = |y: &str| {
            let text = format!("output.console.enabled: true\n{y}\n");
            Limits::from_config(&crate::config::load_from_str(&text, "t.yml", &[]).unwrap())
        };
        assert_eq!(load(""), Ok(Limits::default()));
        assert_eq!(
            load("packetbeat.limits: {tcp_connections: 1000, stream_bytes: 64MiB, transactions: 99, ip_datagrams: 7}"),
            Ok(Limits {
                tcp_connections: 1000,
                stream_bytes: 64 << 20,
                transactions: 99,
                ip_datagrams: 7,
            })
        );
        assert!(load("packetbeat.limits.tcp_connections: 0")
            .unwrap_err()
            .contains("packetbeat.limits.tcp_connections"));
        assert!(load("packetbeat.limits.stream_bytes: lots")
            .unwrap_err()
            .contains("packetbeat.limits.stream_bytes"));
        assert!(load("packetbeat.limits.ip_datagrams: -1")
            .unwrap_err()
            .contains("packetbeat.limits.ip_datagrams"));
    }
}
