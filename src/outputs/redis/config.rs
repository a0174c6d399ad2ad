//! `output.redis` options, with Packetbeat's names and defaults (libbeat `outputs/redis`).

use crate::config::types::{CodecConfig, GoDuration};
use crate::outputs::net::backoff::BackoffConfig;
use crate::outputs::net::tls::SslConfig;
use crate::outputs::net::DialOptions;
use crate::outputs::select::{Case, Selector, Settings};
use serde::Deserialize;
use std::time::Duration;

pub const DEFAULT_PORT: u16 = 6379;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RedisConfig {
    pub enabled: bool,
    pub hosts: Vec<String>,
    pub password: String,
    /// The list or channel (and `@metadata.beat`) when `key` is not set; default `packetbeat`.
    pub index: Option<String>,
    pub key: Option<String>,
    /// Rules choosing the key per event (see [`crate::outputs::select`]).
    pub keys: Option<serde_yaml::Value>,
    pub loadbalance: bool,
    pub worker: usize,
    pub workers: Option<usize>,
    pub timeout: GoDuration,
    pub bulk_max_size: usize,
    /// How often events Redis refuses with an error reply are sent again before they are
    /// dropped; connection errors are retried without limit (backpressure).
    pub max_retries: i64,
    pub db: i64,
    pub datatype: String,
    pub backoff: BackoffConfig,
    pub ssl: Option<SslConfig>,
    pub proxy_url: Option<String>,
    pub proxy_use_local_resolver: bool,
    /// `codec.json` (`pretty`, `escape_html`) or `codec.format`: the list values and channel
    /// messages.
    pub codec: CodecConfig,
    /// Removed in 7.0 (libbeat refuses it: the port goes in `hosts`).
    pub port: Option<serde_yaml::Value>,
    /// Accepted for compatibility (the queue in front of the output is the beater's).
    pub queue: Option<serde_yaml::Value>,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            enabled: true,
            hosts: Vec::new(),
            password: String::new(),
            index: None,
            key: None,
            keys: None,
            loadbalance: true,
            worker: 1,
            workers: None,
            timeout: GoDuration(Duration::from_secs(5)),
            bulk_max_size: 2048,
            max_retries: 3,
            db: 0,
            datatype: "list".into(),
            backoff: BackoffConfig::default(),
            ssl: None,
            proxy_url: None,
            proxy_use_local_resolver: false,
            codec: CodecConfig::default(),
            port: None,
            queue: None,
        }
    }
}

/// Where events go: appended to a list (`RPUSH`) or published on a channel (`PUBLISH`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataType {
    List,
    Channel,
}

/// One `hosts` entry: `host[:port]`, or a `redis://` / `rediss://` URL whose password (if any)
/// replaces `password` and whose `rediss` scheme turns TLS on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostUrl {
    pub host: String,
    pub password: Option<String>,
    /// `Some(true)` for `rediss://`, `Some(false)` for an explicit `redis://` (TLS off even
    /// when `ssl` is configured), `None` without a scheme.
    pub tls: Option<bool>,
}

pub fn parse_host(h: &str) -> Result<HostUrl, String> {
    let (scheme, rest) = match h.split_once("://") {
        Some((s, r)) => (Some(s), r),
        None => (None, h),
    };
    let tls = match scheme {
        None => None,
        Some("redis") => Some(false),
        Some("rediss") => Some(true),
        Some(s) => return Err(format!("invalid redis url scheme {s}")),
    };
    let rest = rest.split(['/', '?']).next().unwrap_or("");
    let (userinfo, host) = match rest.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, rest),
    };
    if host.is_empty() {
        return Err(format!("invalid redis url host {host}"));
    }
    let password = userinfo.and_then(|u| u.split_once(':')).map(|(_, p)| {
        percent_encoding::percent_decode_str(p)
            .decode_utf8_lossy()
            .into_owned()
    });
    Ok(HostUrl {
        host: host.to_string(),
        password,
        tls,
    })
}

impl RedisConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.hosts.is_empty() {
            return Err("missing required field accessing 'output.redis.hosts'".into());
        }
        if self.port.is_some() {
            return Err("setting 'output.redis.port' has been removed".into());
        }
        self.datatype()?;
        self.key_selector()?;
        self.codec()?;
        for h in &self.hosts {
            parse_host(h)?;
        }
        if self.bulk_max_size == 0 {
            return Err("requires value >= 1 accessing 'output.redis.bulk_max_size'".into());
        }
        Ok(())
    }

    pub fn codec(&self) -> Result<crate::outputs::codec::Codec, String> {
        crate::outputs::codec::Codec::from_config(&self.codec, "output.redis", false)
    }

    pub fn datatype(&self) -> Result<DataType, String> {
        match self.datatype.as_str() {
            "" | "list" => Ok(DataType::List),
            "channel" => Ok(DataType::Channel),
            other => Err(format!("redis data type {other} not supported")),
        }
    }

    /// The list or channel of each event: the `keys` rules, then `key` (a format string;
    /// default `index`, else `packetbeat`), as libbeat's redis output builds its key selector.
    pub fn key_selector(&self) -> Result<Selector, String> {
        Selector::build(
            Some(self.key()),
            self.keys.as_ref(),
            &Settings {
                key: "key",
                multi_key: "keys",
                fail_empty: true,
                case: Case::Keep,
            },
            "output.redis",
        )
    }

    /// The `key` option: `key`, else `index`, else `packetbeat`.
    pub fn key(&self) -> &str {
        self.key
            .as_deref()
            .or(self.index.as_deref())
            .filter(|k| !k.is_empty())
            .unwrap_or("packetbeat")
    }

    /// `@metadata.beat`: `index` lower-cased (libbeat's redis client), default `packetbeat`.
    pub fn beat_name(&self) -> String {
        self.index
            .as_deref()
            .filter(|s| !s.is_empty())
            .unwrap_or("packetbeat")
            .to_lowercase()
    }

    pub fn workers_per_host(&self) -> usize {
        self.workers.unwrap_or(self.worker).max(1)
    }

    /// How to reach one host (port 6379 unless given); `host` is its `host:port` part.
    pub fn dial_options<'a>(&'a self, host: &'a [String], tls: Option<bool>) -> DialOptions<'a> {
        let ssl = match tls {
            Some(false) => None,
            _ => SslConfig::enabled(&self.ssl),
        };
        DialOptions {
            key: "output.redis",
            hosts: host,
            default_port: DEFAULT_PORT,
            timeout: self.timeout.0,
            ssl,
            proxy_url: self.proxy_url.as_deref(),
            proxy_use_local_resolver: self.proxy_use_local_resolver,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(y: &str) -> RedisConfig {
        let raw: serde_yaml::Value = serde_yaml::from_str(y).unwrap();
        crate::config::types::decode(&raw, "output.redis", "t").unwrap()
    }

    #[test]
    fn defaults_and_keys() {
        let c = decode("hosts: [localhost]");
        c.validate().unwrap();
        assert!(c.loadbalance);
        assert_eq!(c.timeout.0, Duration::from_secs(5));
        assert_eq!(c.bulk_max_size, 2048);
        assert_eq!(c.datatype().unwrap(), DataType::List);
        assert_eq!(
            (c.key(), c.beat_name().as_str()),
            ("packetbeat", "packetbeat")
        );
        let c = decode("hosts: [h]\nindex: PB-Events");
        assert_eq!(
            (c.key(), c.beat_name().as_str()),
            ("PB-Events", "pb-events")
        );
        let c = decode("hosts: [h]\nindex: a\nkey: b\ndatatype: channel");
        assert_eq!(c.key(), "b");
        assert_eq!(c.key_selector().unwrap().constant().as_deref(), Some("b"));
        assert_eq!(c.datatype().unwrap(), DataType::Channel);
        let c = decode("hosts: [h]\nkey: 'pb-%{[type]}'\nkeys: [{key: errors, when: {has_fields: [error.message]}}]");
        c.validate().unwrap();
        let s = c.key_selector().unwrap();
        assert!(s.constant().is_none());
        let ts = crate::common::Ts(0);
        let meta = crate::publish::event::Map::new();
        assert_eq!(s.select_encoded(ts, &meta, br#"{"type":"dns"}"#), "pb-dns");
        assert_eq!(
            s.select_encoded(ts, &meta, br#"{"type":"dns","error":{"message":"x"}}"#),
            "errors"
        );
    }

    #[test]
    fn refused_settings_say_why() {
        for (y, msg) in [
            ("hosts: []", "missing required field"),
            (
                "hosts: [h]\ndatatype: set",
                "redis data type set not supported",
            ),
            (
                "hosts: [h]\nport: 6379",
                "'output.redis.port' has been removed",
            ),
            ("hosts: [h]\nkey: '%{[fields.list]'", "output.redis.key"),
            (
                "hosts: [h]\nkeys: [{default: a}]",
                "missing output.redis.keys.0.key",
            ),
            ("hosts: ['http://h']", "invalid redis url scheme http"),
            (
                "hosts: [h]\ncodec: {json: {}, format: {string: x}}",
                "more than one namespace configured accessing 'output.redis.codec'",
            ),
            (
                "hosts: [h]\ncodec: {format: {}}",
                "missing required field accessing 'output.redis.codec.format.string'",
            ),
        ] {
            let e = decode(y).validate().unwrap_err();
            assert!(e.contains(msg), "{y}: {e}");
        }
    }

    #[test]
    fn host_urls() {
        assert_eq!(
            parse_host("localhost:6380").unwrap(),
            HostUrl {
                host: "localhost:6380".into(),
                password: None,
                tls: None
            }
        );
        assert_eq!(
            parse_host("rediss://:s%40cret@cache:6390/0").unwrap(),
            HostUrl {
                host: "cache:6390".into(),
                password: Some("s@cret".into()),
                tls: Some(true)
            }
        );
        assert_eq!(parse_host("redis://h").unwrap().tls, Some(false));
        assert!(parse_host("redis://").is_err());
    }
}
