//! Builds the configured protocol modules from `packetbeat.protocols`.

use super::app::{self, Protocol};
use super::ProtocolModule;
use crate::config::types::{decode, ConfigError, GoDuration, ProtocolSection};
use serde::{Deserialize, Deserializer};
use std::collections::HashMap;
use std::sync::Arc;

/// One line per protocol Packetbeat 8 knows, in name order, with its factory (an entry without
/// one, `build: None`, would be accepted and skipped with a warning, so an existing
/// `packetbeat.yml` keeps working). A config naming another type is an error.
pub const ANALYZERS: [Entry; 15] = [
    analyzer::<super::amqp::Amqp>(),
    analyzer::<super::cassandra::Cassandra>(),
    analyzer::<super::dhcpv4::Dhcpv4>(),
    analyzer::<super::dns::Dns>(),
    analyzer::<super::http::config::HttpSettings>(),
    analyzer::<super::icmp::IcmpSettings>(),
    analyzer::<super::memcache::Memcache>(),
    analyzer::<super::mongodb::Mongodb>(),
    analyzer::<super::mysql::Mysql>(),
    analyzer::<super::nfs::Nfs>(),
    analyzer::<super::pgsql::Pgsql>(),
    analyzer::<super::redis::Redis>(),
    analyzer::<super::sip::Sip>(),
    analyzer::<super::thrift::Thrift>(),
    analyzer::<super::tls::config::TlsSettings>(),
];

/// Every protocol type Packetbeat 8 knows.
pub const KNOWN_PROTOCOLS: [&str; ANALYZERS.len()] = names(&ANALYZERS);

/// Builds a protocol's module from its section.
pub type Builder = fn(
    &ProtocolCommonConfig,
    &ProtocolSection,
    &str,
) -> Result<Arc<dyn ProtocolModule>, ConfigError>;

/// A line of [`ANALYZERS`].
pub struct Entry {
    pub name: &'static str,
    pub build: Option<Builder>,
}

const fn analyzer<P: Protocol>() -> Entry {
    Entry {
        name: P::NAME,
        build: Some(app::build::<P>),
    }
}

const fn names<const N: usize>(entries: &[Entry; N]) -> [&'static str; N] {
    let mut out = [""; N];
    let mut i = 0;
    while i < N {
        out[i] = entries[i].name;
        i += 1;
    }
    out
}

fn entry(kind: &str) -> Option<&'static Entry> {
    ANALYZERS.iter().find(|e| e.name == kind)
}

/// Whether this build analyses protocol `kind`.
pub fn is_implemented(kind: &str) -> bool {
    entry(kind).is_some_and(|e| e.build.is_some())
}

/// A port in a protocol's `ports`: a number or a numeric string, as go-ucfg accepts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Port(pub u16);

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Port, D::Error> {
        let v = serde_yaml::Value::deserialize(d)?;
        v.as_u64()
            .and_then(|n| u16::try_from(n).ok())
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            .map(Port)
            .ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "expected a port number (0-65535), got {}",
                    describe(&v)
                ))
            })
    }
}

/// `ports: 80` as well as `ports: [80, 8080]`.
fn ports<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u16>, D::Error> {
    let ports: Vec<Port> = crate::config::types::one_or_many(d)?;
    Ok(ports.into_iter().map(|p| p.0).collect())
}

fn describe(v: &serde_yaml::Value) -> String {
    match v {
        serde_yaml::Value::String(s) => format!("'{s}'"),
        other => serde_yaml::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

/// Options shared by every protocol section (`protos.ProtocolCommon` plus event metadata).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ProtocolCommonConfig {
    pub enabled: bool,
    #[serde(deserialize_with = "ports")]
    pub ports: Vec<u16>,
    pub send_request: bool,
    pub send_response: bool,
    /// `None`: the protocol's default (`Protocol::DEFAULT_TRANSACTION_TIMEOUT`).
    pub transaction_timeout: Option<GoDuration>,
    pub fields: Option<serde_yaml::Value>,
    pub fields_under_root: bool,
    pub tags: Vec<String>,
    pub processors: Vec<serde_yaml::Value>,
    pub index: Option<String>,
    pub keep_null: bool,
}

impl Default for ProtocolCommonConfig {
    fn default() -> Self {
        ProtocolCommonConfig {
            enabled: true,
            ports: Vec::new(),
            send_request: false,
            send_response: false,
            transaction_timeout: None,
            fields: None,
            fields_under_root: false,
            tags: Vec::new(),
            processors: Vec::new(),
            index: None,
            keep_null: false,
        }
    }
}

/// Event metadata a protocol's own section adds to its events (`fields`, `tags`, `index`).
#[derive(Debug, Clone, Default)]
pub struct ReporterMeta {
    pub fields: Option<serde_json::Value>,
    pub fields_under_root: bool,
    pub tags: Vec<String>,
    pub index: Option<String>,
    /// The section's own `processors`, built once.
    pub processors: Option<std::sync::Arc<crate::publish::processors::List>>,
}

/// The configured protocols.
#[derive(Default, Clone)]
pub struct ProtocolModules {
    pub modules: Vec<Arc<dyn ProtocolModule>>,
    pub reporters: HashMap<&'static str, ReporterMeta>,
}

/// Builds every enabled protocol section. Unknown types, bad values and a port claimed by two
/// protocols of the same transport are errors.
pub fn build_modules(
    sections: &[ProtocolSection],
    source: &str,
) -> Result<ProtocolModules, ConfigError> {
    let mut out = ProtocolModules::default();
    let mut tcp_ports: HashMap<u16, &'static str> = HashMap::new();
    let mut udp_ports: HashMap<u16, &'static str> = HashMap::new();
    for section in sections {
        let Some(known) = entry(&section.kind) else {
            return Err(ConfigError::at(
                format!(
                    "unknown protocol type '{}' (known: {})",
                    section.kind,
                    KNOWN_PROTOCOLS.join(", ")
                ),
                &section.key,
                source,
            ));
        };
        let common: ProtocolCommonConfig = decode(&section.options, &section.key, source)?;
        if !common.enabled {
            continue;
        }
        let Some(build) = known.build else {
            tracing::warn!(
                "protocol '{}' is not implemented by this build yet; its section is ignored",
                section.kind
            );
            continue;
        };
        let module = build(&common, section, source)?;
        let name = module.name();
        for (ports, map) in [
            (module.tcp_ports(), &mut tcp_ports),
            (module.udp_ports(), &mut udp_ports),
        ] {
            for &p in ports {
                if let Some(other) = map.insert(p, name) {
                    if other != name {
                        return Err(ConfigError::at(
                            format!("duplicate port ({p}) exists in {other} and {name} protocols"),
                            &format!("{}.ports", section.key),
                            source,
                        ));
                    }
                }
            }
        }
        let fields = match &common.fields {
            Some(v) => Some(serde_json::to_value(v).map_err(|e| {
                ConfigError::at(
                    format!("invalid fields: {e}"),
                    &format!("{}.fields", section.key),
                    source,
                )
            })?),
            None => None,
        };
        let processors =
            crate::publish::processors::build_section(&common.processors, &section.key)
                .map_err(ConfigError)?;
        out.reporters.insert(
            name,
            ReporterMeta {
                fields,
                fields_under_root: common.fields_under_root,
                tags: common.tags.clone(),
                index: common.index.clone(),
                processors,
            },
        );
        out.modules.push(module);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(yaml: &str) -> ProtocolSection {
        ProtocolSection {
            kind: "http".into(),
            options: serde_yaml::from_str(yaml).unwrap(),
            key: "packetbeat.protocols.http".into(),
        }
    }

    #[test]
    fn ports_accept_one_or_many_and_name_bad_values() {
        let c: ProtocolCommonConfig = decode(&section("ports: 80").options, "k", "f").unwrap();
        assert_eq!(c.ports, vec![80]);
        let c: ProtocolCommonConfig =
            decode(&section("ports: [80, '8080']").options, "k", "f").unwrap();
        assert_eq!(c.ports, vec![80, 8080]);
        let err = decode::<ProtocolCommonConfig>(
            &section("ports: [80, 70000]").options,
            "packetbeat.protocols.http",
            "pb.yml",
        )
        .unwrap_err();
        assert_eq!(
            err.0,
            "expected a port number (0-65535), got 70000 accessing 'packetbeat.protocols.http.ports' (source:'pb.yml')"
        );
    }

    #[test]
    fn unknown_type_and_duplicate_ports_are_errors() {
        let mut s = section("ports: [80]");
        s.kind = "gopher".into();
        let err = build_modules(&[s], "pb.yml").err().unwrap();
        assert!(err.0.starts_with("unknown protocol type 'gopher'"), "{err}");
        let mut dns = section("ports: [80]");
        dns.kind = "dns".into();
        dns.key = "packetbeat.protocols.dns".into();
        let err = build_modules(&[section("ports: [80]"), dns], "pb.yml")
            .err()
            .unwrap();
        assert!(
            err.0
                .contains("duplicate port (80) exists in http and dns protocols"),
            "{err}"
        );
    }
}
