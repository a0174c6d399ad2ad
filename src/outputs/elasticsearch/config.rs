//! `output.elasticsearch` options, with Packetbeat 8.17's names and defaults, and the
//! performance presets (`preset`) with libbeat's values.

use crate::config::types::GoDuration;
use crate::outputs::net::backoff::BackoffConfig;
use crate::outputs::net::tls::SslConfig;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Elasticsearch's HTTP port.
pub const DEFAULT_PORT: u16 = 9200;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct EsConfig {
    pub enabled: bool,
    /// A string or a list of strings, as Beats accepts it.
    #[serde(deserialize_with = "crate::config::types::strings")]
    pub hosts: Vec<String>,
    pub protocol: String,
    pub path: String,
    pub username: String,
    pub password: String,
    pub api_key: String,
    pub headers: BTreeMap<String, String>,
    pub parameters: BTreeMap<String, String>,
    pub worker: usize,
    pub workers: Option<usize>,
    pub loadbalance: bool,
    pub bulk_max_size: i64,
    pub compression_level: u32,
    pub escape_html: bool,
    pub timeout: GoDuration,
    /// Accepted; this output never drops an event that failed for a temporary reason (429, 5xx,
    /// transport errors): it retries until indexed, holding the capture back through the queue,
    /// as the Logstash output of this build does.
    pub max_retries: i64,
    pub backoff: BackoffConfig,
    pub idle_connection_timeout: GoDuration,
    pub index: Option<String>,
    /// Rules choosing the index per event (see [`crate::outputs::select`]).
    pub indices: Option<serde_yaml::Value>,
    pub pipeline: Option<String>,
    /// Rules choosing the ingest pipeline per event.
    pub pipelines: Option<serde_yaml::Value>,
    pub ssl: Option<SslConfig>,
    pub proxy_url: Option<String>,
    pub proxy_disable: bool,
    pub allow_older_versions: bool,
    pub non_indexable_policy: Option<serde_yaml::Value>,
    pub preset: String,
    /// Accepted for compatibility (the queue in front of the output is the beater's).
    pub queue: Option<serde_yaml::Value>,
    pub kerberos: Option<serde_yaml::Value>,
}

impl Default for EsConfig {
    fn default() -> Self {
        EsConfig {
            enabled: true,
            hosts: Vec::new(),
            protocol: String::new(),
            path: String::new(),
            username: String::new(),
            password: String::new(),
            api_key: String::new(),
            headers: BTreeMap::new(),
            parameters: BTreeMap::new(),
            worker: 1,
            workers: None,
            loadbalance: true,
            bulk_max_size: 1600,
            compression_level: 1,
            escape_html: false,
            timeout: GoDuration(Duration::from_secs(90)),
            max_retries: 3,
            backoff: BackoffConfig::default(),
            idle_connection_timeout: GoDuration(Duration::from_secs(3)),
            index: None,
            indices: None,
            pipeline: None,
            pipelines: None,
            ssl: None,
            proxy_url: None,
            proxy_disable: false,
            allow_older_versions: true,
            non_indexable_policy: None,
            preset: "custom".into(),
            queue: None,
            kerberos: None,
        }
    }
}

/// What is done with an event Elasticsearch refuses for good (a mapping error, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NonIndexable {
    Drop,
    /// Index it, wrapped, into this index.
    DeadLetter(String),
}

/// One preset's values (libbeat's `config_presets.go`).
pub struct Preset {
    pub bulk_max_size: i64,
    pub worker: usize,
    pub compression_level: u32,
    pub idle_connection_timeout: Duration,
}

/// The values of a named preset; `None` for `custom` (and an error for an unknown name).
pub fn preset(name: &str) -> Result<Option<Preset>, String> {
    let p = |bulk, worker, idle| {
        Some(Preset {
            bulk_max_size: bulk,
            worker,
            compression_level: 1,
            idle_connection_timeout: Duration::from_secs(idle),
        })
    };
    Ok(match name {
        "" | "custom" => None,
        "balanced" => p(1600, 1, 3),
        "throughput" => p(1600, 4, 15),
        "scale" => p(1600, 1, 1),
        "latency" => p(50, 1, 60),
        other => return Err(format!("unknown preset value {other}")),
    })
}

/// Keys a preset sets.
const PRESET_KEYS: &[&str] = &[
    "bulk_max_size",
    "worker",
    "compression_level",
    "idle_connection_timeout",
];

impl EsConfig {
    /// Applies `preset` over the options (a preset wins over the user's values, as in libbeat)
    /// and returns the user's keys it overrode.
    pub fn apply_preset(&mut self, raw: &serde_yaml::Value) -> Result<Vec<String>, String> {
        let Some(p) = preset(&self.preset)? else {
            return Ok(Vec::new());
        };
        let mut overridden: Vec<String> = PRESET_KEYS
            .iter()
            .filter(|k| raw.get(**k).is_some())
            .map(|k| k.to_string())
            .collect();
        if raw.get("queue").is_some() {
            overridden.push("queue".into());
        }
        self.bulk_max_size = p.bulk_max_size;
        self.worker = p.worker;
        self.workers = None;
        self.compression_level = p.compression_level;
        self.idle_connection_timeout = GoDuration(p.idle_connection_timeout);
        Ok(overridden)
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.hosts.is_empty() {
            return Err("missing required field accessing 'output.elasticsearch.hosts'".into());
        }
        if self.compression_level > 9 {
            return Err(format!(
                "requires value <= 9 accessing 'output.elasticsearch.compression_level' (got {})",
                self.compression_level
            ));
        }
        if !self.api_key.is_empty() && (!self.username.is_empty() || !self.password.is_empty()) {
            return Err("cannot set both api_key and username/password".into());
        }
        if !matches!(self.protocol.as_str(), "" | "http" | "https") {
            return Err(format!(
                "unknown protocol '{}' accessing 'output.elasticsearch.protocol' (http or https)",
                self.protocol
            ));
        }
        super::selectors(self)?;
        if self
            .kerberos
            .as_ref()
            .is_some_and(|k| k.as_mapping().is_some_and(|m| !m.is_empty()))
        {
            return Err("output.elasticsearch.kerberos is not implemented by this build".into());
        }
        self.non_indexable()?;
        Ok(())
    }

    pub fn workers_per_host(&self) -> usize {
        self.workers.unwrap_or(self.worker).max(1)
    }

    /// Events per `_bulk` request (`bulk_max_size` ≤ 0 sends a batch as it comes, bounded here
    /// so a request stays reasonable).
    pub fn bulk_size(&self) -> usize {
        if self.bulk_max_size <= 0 {
            4096
        } else {
            self.bulk_max_size as usize
        }
    }

    pub fn non_indexable(&self) -> Result<NonIndexable, String> {
        let Some(v) = self.non_indexable_policy.as_ref().filter(|v| !v.is_null()) else {
            return Ok(NonIndexable::Drop);
        };
        let m = v.as_mapping().ok_or(
            "output.elasticsearch.non_indexable_policy: expected 'drop' or 'dead_letter_index'",
        )?;
        if m.len() != 1 {
            return Err("output.elasticsearch.non_indexable_policy: exactly one of 'drop' or 'dead_letter_index' is allowed".into());
        }
        if v.get("drop").is_some() {
            return Ok(NonIndexable::Drop);
        }
        if let Some(d) = v.get("dead_letter_index") {
            let index = d
                .get("index")
                .and_then(|i| i.as_str())
                .filter(|s| !s.is_empty())
                .ok_or("missing required field accessing 'output.elasticsearch.non_indexable_policy.dead_letter_index.index'")?;
            return Ok(NonIndexable::DeadLetter(index.to_string()));
        }
        Err(
            "output.elasticsearch.non_indexable_policy: expected 'drop' or 'dead_letter_index'"
                .into(),
        )
    }
}

/// One host as a base URL: `http://host:9200[/path]` (libbeat's `common.MakeURL`: a scheme in
/// the host wins over `protocol`, a path in the host over `path`; IPv6 literals in brackets).
pub fn make_url(protocol: &str, path: &str, host: &str) -> Result<String, String> {
    let host = host.trim();
    if host.is_empty() {
        return Err("empty host".into());
    }
    let (scheme, rest) = match host.split_once("://") {
        Some((s, r)) => (s.to_ascii_lowercase(), r),
        None => (
            if protocol.is_empty() {
                "http".to_string()
            } else {
                protocol.to_string()
            },
            host,
        ),
    };
    if scheme != "http" && scheme != "https" {
        return Err(format!("unsupported scheme '{scheme}' in host '{host}'"));
    }
    let (authority, host_path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    // Credentials in the URL are the host's own (see `url_credentials`), never part of the URL
    // the output logs.
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let (h, port) = crate::outputs::net::host_port(authority, DEFAULT_PORT)
        .map_err(|e| format!("invalid host '{host}': {e}"))?;
    let h = if h.contains(':') { format!("[{h}]") } else { h };
    let p = if host_path.is_empty() || host_path == "/" {
        path
    } else {
        host_path
    };
    let p = p.trim_end_matches('/');
    let p = if p.is_empty() || p.starts_with('/') {
        p.to_string()
    } else {
        format!("/{p}")
    };
    Ok(format!("{scheme}://{h}:{port}{p}"))
}

/// `user:password` given in a host URL (`https://elastic:secret@host:9200`), percent-decoded:
/// libbeat's connection takes them as that host's `username`/`password`.
pub fn url_credentials(host: &str) -> Option<(String, String)> {
    let rest = host.trim().split_once("://")?.1;
    let authority = rest.split('/').next().unwrap_or("");
    let (userinfo, _) = authority.rsplit_once('@')?;
    let dec = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    Some(match userinfo.split_once(':') {
        Some((u, p)) => (dec(u), dec(p)),
        None => (dec(userinfo), String::new()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_host_urls_stay_out_of_the_url() {
        assert_eq!(
            make_url("", "", "https://elastic:s%40cret@es1:9201/p").unwrap(),
            "https://es1:9201/p"
        );
        assert_eq!(
            url_credentials("https://elastic:s%40cret@es1:9201/p"),
            Some(("elastic".into(), "s@cret".into()))
        );
        assert_eq!(url_credentials("https://es1:9201"), None);
        assert_eq!(url_credentials("es1:9201"), None);
    }

    fn decode(yaml: &str) -> EsConfig {
        let raw: serde_yaml::Value = serde_yaml::from_str(yaml).unwrap();
        crate::config::types::decode(&raw, "output.elasticsearch", "t").unwrap()
    }

    #[test]
    fn defaults() {
        let c = decode("hosts: [a]");
        assert_eq!(c.bulk_max_size, 1600);
        assert_eq!(c.compression_level, 1);
        assert_eq!(c.timeout.0, Duration::from_secs(90));
        assert!(c.loadbalance && c.allow_older_versions);
        assert_eq!(c.idle_connection_timeout.0, Duration::from_secs(3));
        assert_eq!(c.non_indexable().unwrap(), NonIndexable::Drop);
        assert_eq!(c.preset, "custom");
        c.validate().unwrap();
    }

    #[test]
    fn presets_override_user_values() {
        let raw: serde_yaml::Value =
            serde_yaml::from_str("hosts: [a]\npreset: latency\nbulk_max_size: 10\n").unwrap();
        let mut c: EsConfig = crate::config::types::decode(&raw, "o", "t").unwrap();
        let over = c.apply_preset(&raw).unwrap();
        assert_eq!(over, ["bulk_max_size"]);
        assert_eq!(c.bulk_max_size, 50);
        assert_eq!(c.idle_connection_timeout.0, Duration::from_secs(60));
        let mut c = decode("hosts: [a]\npreset: throughput");
        c.apply_preset(&serde_yaml::Value::Null).unwrap();
        assert_eq!((c.worker, c.bulk_max_size), (4, 1600));
        let mut c = decode("hosts: [a]\npreset: fast");
        assert_eq!(
            c.apply_preset(&serde_yaml::Value::Null).unwrap_err(),
            "unknown preset value fast"
        );
    }

    #[test]
    fn policies_and_validation() {
        let c = decode("hosts: [a]\nnon_indexable_policy: {dead_letter_index: {index: dl}}");
        assert_eq!(
            c.non_indexable().unwrap(),
            NonIndexable::DeadLetter("dl".into())
        );
        assert!(
            decode("hosts: [a]\nnon_indexable_policy: {dead_letter_index: {}}")
                .validate()
                .is_err()
        );
        assert!(decode("hosts: [a]\napi_key: k\nusername: u")
            .validate()
            .is_err());
        decode("hosts: [a]\nindices: [{index: x, when: {equals: {type: http}}}]")
            .validate()
            .unwrap();
        assert!(decode("hosts: [a]\nindices: [{default: x}]")
            .validate()
            .unwrap_err()
            .contains("output.elasticsearch.indices.0.index"));
        assert!(decode("hosts: [a]\npipelines: {pipeline: x}")
            .validate()
            .is_err());
        assert!(decode("{}").validate().is_err());
    }

    #[test]
    fn urls() {
        assert_eq!(
            make_url("", "", "localhost").unwrap(),
            "http://localhost:9200"
        );
        assert_eq!(make_url("https", "/es/", "h:1").unwrap(), "https://h:1/es");
        assert_eq!(
            make_url("https", "/es", "http://h/p").unwrap(),
            "http://h:9200/p"
        );
        assert_eq!(make_url("", "", "[::1]:9201").unwrap(), "http://[::1]:9201");
        assert!(make_url("", "", "ftp://h").is_err());
    }
}
