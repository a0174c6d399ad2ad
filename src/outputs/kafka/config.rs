//! `output.kafka` options, with Packetbeat's names and defaults (libbeat `outputs/kafka`).

use crate::common::fmtstr::{version_field, FormatString};
use crate::config::types::{CodecConfig, GoDuration};
use crate::outputs::net::backoff::BackoffConfig;
use crate::outputs::net::tls::SslConfig;
use crate::outputs::select::{Case, Selector, Settings};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

pub const DEFAULT_PORT: u16 = 9092;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct KafkaConfig {
    pub enabled: bool,
    pub hosts: Vec<String>,
    /// The topic: a format string (`pb-%{[network.protocol]}`), tried after `topics`.
    pub topic: Option<String>,
    /// Rules choosing the topic per event (`{topic, when, mappings, default}`), as libbeat's
    /// `outil` selectors.
    pub topics: Option<serde_yaml::Value>,
    /// The record key: a format string (`%{[source.ip]}`), evaluated per event.
    pub key: Option<String>,
    /// `random`, `round_robin` or `hash`, each a map of its settings.
    pub partition: BTreeMap<String, PartitionSettings>,
    pub required_acks: i64,
    pub compression: String,
    pub compression_level: i64,
    pub max_message_bytes: usize,
    pub bulk_max_size: usize,
    pub bulk_flush_frequency: GoDuration,
    pub channel_buffer_size: usize,
    pub client_id: String,
    pub version: serde_yaml::Value,
    pub metadata: MetadataConfig,
    pub timeout: GoDuration,
    pub broker_timeout: GoDuration,
    pub keep_alive: GoDuration,
    pub backoff: BackoffConfig,
    /// How often a batch the broker refuses (other than with a retriable error) is sent again
    /// before its events are dropped; -1: without limit. Unreachable brokers are retried without
    /// limit (backpressure).
    pub max_retries: i64,
    pub username: String,
    pub password: String,
    pub sasl: SaslSettings,
    pub ssl: Option<SslConfig>,
    /// Record headers: `[{key: k, value: v}, …]`.
    pub headers: Vec<Header>,
    pub codec: CodecConfig,
    /// Kerberos (GSSAPI): refused, this build has no GSSAPI.
    pub kerberos: Option<serde_yaml::Value>,
    /// Accepted for compatibility (the queue in front of the output is the beater's).
    pub queue: Option<serde_yaml::Value>,
    pub worker: Option<usize>,
    pub workers: Option<usize>,
    pub loadbalance: Option<bool>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            enabled: true,
            hosts: Vec::new(),
            topic: None,
            topics: None,
            key: None,
            partition: BTreeMap::new(),
            required_acks: 1,
            compression: "gzip".into(),
            compression_level: 4,
            max_message_bytes: 1_000_000,
            bulk_max_size: 2048,
            bulk_flush_frequency: GoDuration(Duration::ZERO),
            channel_buffer_size: 256,
            client_id: "beats".into(),
            version: serde_yaml::Value::String("2.1.0".into()),
            metadata: MetadataConfig::default(),
            timeout: GoDuration(Duration::from_secs(30)),
            broker_timeout: GoDuration(Duration::from_secs(10)),
            keep_alive: GoDuration(Duration::ZERO),
            backoff: BackoffConfig::default(),
            max_retries: 3,
            username: String::new(),
            password: String::new(),
            sasl: SaslSettings::default(),
            ssl: None,
            headers: Vec::new(),
            codec: CodecConfig::default(),
            kerberos: None,
            queue: None,
            worker: None,
            workers: None,
            loadbalance: None,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PartitionSettings {
    pub reachable_only: bool,
    /// `random` and `round_robin`: events sent to one partition before moving on (default 1).
    pub group_events: Option<usize>,
    /// `hash`: fields whose values are hashed instead of the key.
    pub hash: Vec<String>,
    /// `hash`: a random partition when a hash field is missing (default true), else the event
    /// is dropped.
    pub random: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct MetadataConfig {
    pub refresh_frequency: GoDuration,
    pub full: bool,
    pub retry: MetadataRetry,
}

impl Default for MetadataConfig {
    fn default() -> Self {
        MetadataConfig {
            refresh_frequency: GoDuration(Duration::from_secs(600)),
            full: false,
            retry: MetadataRetry::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct MetadataRetry {
    pub max: i64,
    pub backoff: GoDuration,
}

impl Default for MetadataRetry {
    fn default() -> Self {
        MetadataRetry {
            max: 3,
            backoff: GoDuration(Duration::from_millis(250)),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SaslSettings {
    pub mechanism: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Header {
    pub key: String,
    pub value: String,
}

/// How events are spread over the topic's partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Partitioner {
    Random {
        group_events: usize,
    },
    RoundRobin {
        group_events: usize,
    },
    /// FNV-1a of the key (or of the `fields`' values); a random partition without a key.
    Hash {
        fields: Vec<String>,
        random: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    Plain,
    ScramSha256,
    ScramSha512,
}

impl KafkaConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.hosts.is_empty() {
            return Err("no hosts configured accessing 'output.kafka.hosts'".into());
        }
        for h in &self.hosts {
            crate::outputs::net::host_port(h, DEFAULT_PORT)
                .map_err(|e| format!("output.kafka.hosts: {e}"))?;
        }
        if self.topics.is_none() && self.topic().is_empty() {
            return Err("missing required field accessing 'output.kafka.topic'".into());
        }
        self.topic_selector()?;
        self.key_format()?;
        self.partitioner()?;
        self.compression()?;
        if self.compression.eq_ignore_ascii_case("gzip")
            && self.compression_level != -1000
            && !(0..=9).contains(&self.compression_level)
        {
            return Err("compression_level must be between 0 and 9".into());
        }
        if self.required_acks < -1 {
            return Err("requires value >= -1 accessing 'output.kafka.required_acks'".into());
        }
        // libbeat: `min=-1,nonzero`.
        if self.max_retries < -1 || self.max_retries == 0 {
            return Err(
                "requires value >= -1 and non-zero accessing 'output.kafka.max_retries'".into(),
            );
        }
        if self.max_message_bytes == 0 {
            return Err("requires value >= 1 accessing 'output.kafka.max_message_bytes'".into());
        }
        if self.bulk_max_size == 0 {
            return Err("requires value >= 1 accessing 'output.kafka.bulk_max_size'".into());
        }
        if self.timeout.0.is_zero() {
            return Err("requires duration >= 1 accessing 'output.kafka.timeout'".into());
        }
        self.version()?;
        if !self.username.is_empty() && self.password.is_empty() {
            return Err("password must be set when username is configured".into());
        }
        self.sasl_mechanism()?;
        if self.kerberos.is_some() {
            return Err("output.kafka.kerberos is not supported by this build".into());
        }
        self.codec()?;
        for h in &self.headers {
            if h.key.is_empty() {
                return Err("output.kafka.headers: a header needs a key".into());
            }
        }
        Ok(())
    }

    pub fn topic(&self) -> &str {
        self.topic.as_deref().unwrap_or("")
    }

    /// libbeat's `buildTopicSelector`: `topics` rules, then `topic`, names kept as written.
    pub fn topic_selector(&self) -> Result<Selector, String> {
        Selector::build(
            self.topic.as_deref(),
            self.topics.as_ref(),
            &Settings {
                key: "topic",
                multi_key: "topics",
                fail_empty: true,
                case: Case::Keep,
            },
            "output.kafka",
        )
    }

    /// `codec.json` (`pretty`, `escape_html`) or `codec.format`: the record values.
    pub fn codec(&self) -> Result<crate::outputs::codec::Codec, String> {
        crate::outputs::codec::Codec::from_config(&self.codec, "output.kafka", false)
    }

    /// `key` compiled (`None` without one), the beat's version fields put in as text.
    pub fn key_format(&self) -> Result<Option<FormatString>, String> {
        self.key
            .as_deref()
            .map(|k| {
                FormatString::compile_resolving(k, version_field)
                    .map_err(|e| format!("{e} accessing 'output.kafka.key'"))
            })
            .transpose()
    }

    pub fn compression(&self) -> Result<Compression, String> {
        Ok(match self.compression.to_ascii_lowercase().as_str() {
            "none" | "no" | "off" => Compression::None,
            "gzip" => Compression::Gzip,
            "snappy" => Compression::Snappy,
            "lz4" => Compression::Lz4,
            "zstd" => Compression::Zstd,
            _ => return Err(format!("compression mode '{}' unknown", self.compression)),
        })
    }

    /// libbeat's default is `hash` over the key (random without one), over all partitions.
    pub fn partitioner(&self) -> Result<Partitioner, String> {
        if self.partition.len() > 1 {
            return Err("Too many partitioners".into());
        }
        let Some((name, s)) = self.partition.iter().next() else {
            return Ok(Partitioner::Hash {
                fields: Vec::new(),
                random: true,
            });
        };
        let group = s.group_events.unwrap_or(1);
        if group == 0 {
            return Err(format!(
                "requires value >= 1 accessing 'output.kafka.partition.{name}.group_events'"
            ));
        }
        match name.as_str() {
            "random" => Ok(Partitioner::Random {
                group_events: group,
            }),
            "round_robin" => Ok(Partitioner::RoundRobin {
                group_events: group,
            }),
            "hash" => Ok(Partitioner::Hash {
                fields: s.hash.clone(),
                random: s.random.unwrap_or(true),
            }),
            other => Err(format!("unknown kafka partition mode {other}")),
        }
    }

    pub fn reachable_only(&self) -> bool {
        self.partition.values().any(|s| s.reachable_only)
    }

    pub fn sasl_mechanism(&self) -> Result<Option<SaslMechanism>, String> {
        if self.username.is_empty() {
            return Ok(None);
        }
        match self.sasl.mechanism.to_ascii_uppercase().as_str() {
            // libbeat: PLAIN unless a mechanism is set.
            "" | "PLAIN" => Ok(Some(SaslMechanism::Plain)),
            "SCRAM-SHA-256" => Ok(Some(SaslMechanism::ScramSha256)),
            "SCRAM-SHA-512" => Ok(Some(SaslMechanism::ScramSha512)),
            _ => Err(format!(
                "not valid mechanism '{}', only supported with PLAIN|SCRAM-SHA-512|SCRAM-SHA-256",
                self.sasl.mechanism
            )),
        }
    }

    /// `version`: the Kafka protocol version to assume. The client negotiates API versions with
    /// the broker (ApiVersions, Kafka ≥ 0.10), so the value is checked, not used; older
    /// brokers are refused.
    pub fn version(&self) -> Result<String, String> {
        let v = match &self.version {
            serde_yaml::Value::String(s) => s.clone(),
            serde_yaml::Value::Number(n) => n.to_string(),
            other => return Err(format!("unknown/unsupported kafka version: {other:?}")),
        };
        let parts: Vec<u32> = v
            .split('.')
            .map(|p| p.parse::<u32>())
            .collect::<Result<_, _>>()
            .map_err(|_| format!("unknown/unsupported kafka version: {v}"))?;
        let ok = match parts.as_slice() {
            [0, minor, ..] => *minor >= 10 && *minor <= 11,
            [maj, ..] => (1..=4).contains(maj),
            [] => false,
        };
        if !ok {
            return Err(format!(
                "unknown/unsupported kafka version: {v} (this build needs Kafka 0.10 or later)"
            ));
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(y: &str) -> KafkaConfig {
        // As the loader hands the section over: dotted keys (`when.equals`) expanded.
        let raw = crate::config::tree::normalize(serde_yaml::from_str(y).unwrap());
        crate::config::types::decode(&raw, "output.kafka", "t").unwrap()
    }

    #[test]
    fn defaults() {
        let c = decode("hosts: [localhost]\ntopic: pb");
        c.validate().unwrap();
        assert_eq!(c.required_acks, 1);
        assert_eq!(c.compression().unwrap(), Compression::Gzip);
        assert_eq!(c.compression_level, 4);
        assert_eq!(c.max_message_bytes, 1_000_000);
        assert_eq!(c.bulk_max_size, 2048);
        assert_eq!(c.client_id, "beats");
        assert_eq!(c.timeout.0, Duration::from_secs(30));
        assert_eq!(c.broker_timeout.0, Duration::from_secs(10));
        assert_eq!(c.max_retries, 3);
        assert_eq!(c.channel_buffer_size, 256);
        assert_eq!(c.metadata.refresh_frequency.0, Duration::from_secs(600));
        assert_eq!(
            c.partitioner().unwrap(),
            Partitioner::Hash {
                fields: vec![],
                random: true
            }
        );
        assert_eq!(c.sasl_mechanism().unwrap(), None);
    }

    #[test]
    fn partitioners_and_sasl() {
        let c = decode("hosts: [h]\ntopic: t\npartition: {round_robin: {reachable_only: true, group_events: 3}}");
        assert_eq!(
            c.partitioner().unwrap(),
            Partitioner::RoundRobin { group_events: 3 }
        );
        assert!(c.reachable_only());
        let c =
            decode("hosts: [h]\ntopic: t\npartition: {hash: {hash: [source.ip], random: false}}");
        assert_eq!(
            c.partitioner().unwrap(),
            Partitioner::Hash {
                fields: vec!["source.ip".into()],
                random: false
            }
        );
        let c = decode(
            "hosts: [h]\ntopic: t\nusername: u\npassword: p\nsasl: {mechanism: scram-sha-512}",
        );
        assert_eq!(
            c.sasl_mechanism().unwrap(),
            Some(SaslMechanism::ScramSha512)
        );
        let c = decode("hosts: [h]\ntopic: t\nusername: u\npassword: p");
        assert_eq!(c.sasl_mechanism().unwrap(), Some(SaslMechanism::Plain));
    }

    #[test]
    fn refused_settings_say_why() {
        for (y, msg) in [
            ("hosts: []\ntopic: t", "no hosts configured"),
            ("hosts: [h]", "output.kafka.topic"),
            ("hosts: [h]\ntopic: ''", "output.kafka.topic"),
            (
                "hosts: [h]\ntopic: t\ncompression: brotli",
                "compression mode 'brotli' unknown",
            ),
            (
                "hosts: [h]\ntopic: t\ncompression_level: 12",
                "between 0 and 9",
            ),
            (
                "hosts: [h]\ntopic: t\npartition: {sticky: {}}",
                "unknown kafka partition mode sticky",
            ),
            (
                "hosts: [h]\ntopic: t\npartition: {random: {}, hash: {}}",
                "Too many partitioners",
            ),
            ("hosts: [h]\ntopic: t\nusername: u", "password must be set"),
            (
                "hosts: [h]\ntopic: t\nusername: u\npassword: p\nsasl: {mechanism: GSSAPI}",
                "not valid mechanism",
            ),
            (
                "hosts: [h]\ntopic: t\nversion: '0.8.2'",
                "unsupported kafka version",
            ),
            ("hosts: [h]\ntopic: t\nrequired_acks: -2", "required_acks"),
            (
                "hosts: [h]\ntopic: t\ncodec: {format: {string: '%{[message]}'}, json: {}}",
                "more than one namespace configured accessing 'output.kafka.codec'",
            ),
            (
                "hosts: [h]\ntopic: t\ncodec.format: {}",
                "missing required field accessing 'output.kafka.codec.format.string'",
            ),
            (
                "hosts: [h]\ntopic: t\ncodec.format.string: '%{[message'",
                "accessing 'output.kafka.codec.format.string'",
            ),
        ] {
            let e = decode(y).validate().unwrap_err();
            assert!(e.contains(msg), "{y}: {e}");
        }
        decode("hosts: [h]\ntopic: t\nversion: 3.6.0")
            .validate()
            .unwrap();
        decode("hosts: [h]\ntopic: t\ncompression: zstd")
            .validate()
            .unwrap();
    }

    #[test]
    fn topic_and_key_format_strings_and_topic_rules() {
        use crate::common::Ts;
        use crate::outputs::select::event_of;
        use crate::publish::event::Map;
        let c = decode(
            r#"
hosts: [h]
topic: "pb-%{[agent.version]}"
key: "%{[source.ip]}"
topics:
  - topic: "dns-%{[dns.question.type]}"
    when.equals:
      type: dns
  - topic: "%{[type]}"
    mappings: {http: Web, tls: ""}
    default: other
    when.not.equals:
      type: flow
"#,
        );
        c.validate().unwrap();
        let topic = c.topic_selector().unwrap();
        let key = c.key_format().unwrap().unwrap();
        assert!(topic.constant().is_none() && topic.reads_event());
        let ts = Ts(0);
        let pick = |doc: &str| topic.select_encoded(ts, &Map::new(), doc.as_bytes());
        assert_eq!(
            pick(r#"{"type":"dns","dns":{"question":{"type":"AAAA"}}}"#),
            "dns-AAAA"
        );
        // topics keep their case (libbeat's SelectorKeepCase)
        assert_eq!(pick(r#"{"type":"http"}"#), "Web");
        assert_eq!(pick(r#"{"type":"tls"}"#), "other");
        assert_eq!(
            pick(r#"{"type":"flow"}"#),
            format!("pb-{}", crate::BEAT_VERSION)
        );
        let ev = event_of(ts, &Map::new(), br#"{"source":{"ip":"10.0.0.1"}}"#);
        assert_eq!(key.run(ts, &ev).unwrap(), "10.0.0.1");
        assert!(key.run(ts, &event_of(ts, &Map::new(), b"{}")).is_err());

        // A fixed topic and key stay constants: nothing is read per event.
        let c = decode("hosts: [h]\ntopic: 'pb-%{[agent.version]}'\nkey: k");
        assert_eq!(
            c.topic_selector().unwrap().constant(),
            Some(format!("pb-{}", crate::BEAT_VERSION))
        );
        assert_eq!(
            c.key_format().unwrap().unwrap().constant().as_deref(),
            Some("k")
        );
        // Rules alone are enough (the `topic` is then optional).
        decode("hosts: [h]\ntopics: [{topic: a, when.equals: {type: dns}}]")
            .validate()
            .unwrap();
        decode("hosts: [h]\ntopic: '%{[fields.t]}'\nkey: '%{+yyyy.MM.dd}'")
            .validate()
            .unwrap();
    }

    #[test]
    fn bad_topic_rules_and_format_strings_say_where() {
        for (y, msg) in [
            (
                "hosts: [h]\ntopics: [{default: x}]",
                "missing output.kafka.topics.0.topic",
            ),
            (
                "hosts: [h]\ntopic: t\ntopics: [{topic: a}, {when.equals: {type: dns}}]",
                "missing output.kafka.topics.1.topic",
            ),
            (
                "hosts: [h]\ntopics: {topic: a}",
                "expected a list of rules accessing 'output.kafka.topics'",
            ),
            ("hosts: [h]\ntopic: 'pb-%{[x'", "in output.kafka.topic"),
            (
                "hosts: [h]\ntopic: t\nkey: '%{[x'",
                "accessing 'output.kafka.key'",
            ),
        ] {
            let e = decode(y).validate().unwrap_err();
            assert!(e.contains(msg), "{y}: {e}");
        }
        assert!(decode("hosts: [h]\ntopics: [{topic: a, when: {nope: {}}}]")
            .validate()
            .is_err());
    }
}
