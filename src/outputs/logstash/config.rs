//! `output.logstash` options, with Packetbeat's names and defaults.

use crate::config::types::GoDuration;
use crate::outputs::net::backoff::BackoffConfig;
use crate::outputs::net::tls::SslConfig;
use crate::outputs::net::DialOptions;
use serde::Deserialize;
use std::time::Duration;

/// Logstash's `beats` input port.
pub const DEFAULT_PORT: u16 = 5044;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LogstashConfig {
    pub enabled: bool,
    pub hosts: Vec<String>,
    pub loadbalance: bool,
    pub worker: usize,
    pub workers: Option<usize>,
    pub pipelining: usize,
    pub bulk_max_size: usize,
    pub slow_start: bool,
    pub compression_level: u32,
    pub timeout: GoDuration,
    pub ttl: GoDuration,
    /// Accepted; this output never drops a batch (it retries until ACKed, which backpressures
    /// the capture instead), so the retry budget is not used.
    pub max_retries: i64,
    pub backoff: BackoffConfig,
    pub index: Option<String>,
    pub escape_html: bool,
    pub proxy_url: Option<String>,
    pub proxy_use_local_resolver: bool,
    pub ssl: Option<SslConfig>,
    /// Accepted for compatibility (the queue in front of the output is the beater's).
    pub queue: Option<serde_yaml::Value>,
}

impl Default for LogstashConfig {
    fn default() -> Self {
        LogstashConfig {
            enabled: true,
            hosts: Vec::new(),
            loadbalance: false,
            worker: 1,
            workers: None,
            pipelining: 2,
            bulk_max_size: 2048,
            slow_start: false,
            compression_level: 3,
            timeout: GoDuration(Duration::from_secs(30)),
            ttl: GoDuration(Duration::ZERO),
            max_retries: 3,
            backoff: BackoffConfig::default(),
            index: None,
            escape_html: false,
            proxy_url: None,
            proxy_use_local_resolver: false,
            ssl: None,
            queue: None,
        }
    }
}

impl LogstashConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.hosts.is_empty() {
            return Err("missing required field accessing 'output.logstash.hosts'".into());
        }
        if self.compression_level > 9 {
            return Err(format!(
                "requires value <= 9 accessing 'output.logstash.compression_level' (got {})",
                self.compression_level
            ));
        }
        Ok(())
    }

    pub fn workers_per_host(&self) -> usize {
        self.workers.unwrap_or(self.worker).max(1)
    }

    pub fn ssl_enabled(&self) -> bool {
        SslConfig::enabled(&self.ssl).is_some()
    }

    /// How to reach the hosts (port 5044 unless given).
    pub fn dial_options(&self) -> DialOptions<'_> {
        DialOptions {
            key: "output.logstash",
            hosts: &self.hosts,
            default_port: DEFAULT_PORT,
            timeout: self.timeout.0,
            ssl: SslConfig::enabled(&self.ssl),
            proxy_url: self.proxy_url.as_deref(),
            proxy_use_local_resolver: self.proxy_use_local_resolver,
        }
    }

    /// `@metadata.beat`: the `index` option lower-cased, else `packetbeat`.
    pub fn beat_name(&self) -> Option<String> {
        self.index
            .as_ref()
            .filter(|s| !s.is_empty())
            .map(|s| s.to_lowercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_decode() {
        let raw: serde_yaml::Value = serde_yaml::from_str(
            "hosts: [a]\nbackoff: {init: 10ms}\nssl:\n  certificate_authorities: /x.pem\n",
        )
        .unwrap();
        let c: LogstashConfig = crate::config::types::decode(&raw, "output.logstash", "t").unwrap();
        assert_eq!(c.pipelining, 2);
        assert_eq!(c.bulk_max_size, 2048);
        assert_eq!(c.compression_level, 3);
        assert_eq!(c.timeout.0, Duration::from_secs(30));
        assert!(c.ssl_enabled());
        assert_eq!(c.ssl.unwrap().certificate_authorities, ["/x.pem"]);
    }
}
