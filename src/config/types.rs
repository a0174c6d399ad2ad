//! The typed configuration every layer reads. `config::load` (see `mod.rs`) builds it from
//! `packetbeat.yml`, `${VAR}` expansion and `-E` overrides with Beats semantics; the protocol
//! registry and the outputs decode their own sections from the raw YAML values kept here with
//! [`decode`], so errors name the full key and the file.

use serde::de::{DeserializeOwned, Deserializer};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// A configuration error: one line naming what is wrong, where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl ConfigError {
    /// go-ucfg style: `<what> accessing '<key>' (source:'<file>')`.
    pub fn at(msg: impl std::fmt::Display, key: &str, source: &str) -> ConfigError {
        if key.is_empty() {
            ConfigError(format!("{msg} (source:'{source}')"))
        } else {
            ConfigError(format!("{msg} accessing '{key}' (source:'{source}')"))
        }
    }
}

/// Decodes a section of the config into `T`. `key` is the section's dotted path
/// (`packetbeat.protocols.http`) and `source` the file it came from; both go into errors.
/// Keys present with an empty value (`max_docs:`) are removed first, so they take defaults.
pub fn decode<T: DeserializeOwned>(
    value: &serde_yaml::Value,
    key: &str,
    source: &str,
) -> Result<T, ConfigError> {
    let cleaned = strip_nulls(value.clone());
    let de = cleaned.into_deserializer_value();
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let full = match (key.is_empty(), path == "." || path.is_empty()) {
            (true, _) => path.clone(),
            (false, true) => key.to_string(),
            (false, false) => format!("{key}.{path}"),
        };
        ConfigError::at(e.inner().to_string(), &full, source)
    })
}

trait IntoDe {
    fn into_deserializer_value(self) -> serde_yaml::Value;
}
impl IntoDe for serde_yaml::Value {
    fn into_deserializer_value(self) -> serde_yaml::Value {
        match self {
            serde_yaml::Value::Null => serde_yaml::Value::Mapping(Default::default()),
            v => v,
        }
    }
}

/// Removes mapping entries whose value is null, recursively (Beats: "present but empty" means
/// "use the default").
pub fn strip_nulls(v: serde_yaml::Value) -> serde_yaml::Value {
    match v {
        serde_yaml::Value::Mapping(m) => serde_yaml::Value::Mapping(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        serde_yaml::Value::Sequence(s) => {
            serde_yaml::Value::Sequence(s.into_iter().map(strip_nulls).collect())
        }
        other => other,
    }
}

/// Parses a Go duration (`300ms`, `10s`, `1m30s`, `-1s`, `1.5h`); a bare number means seconds,
/// as go-ucfg reads it.
pub fn parse_duration(s: &str) -> Result<(bool, Duration), String> {
    let s = s.trim();
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if let Ok(secs) = body.parse::<f64>() {
        return Ok((neg, Duration::from_secs_f64(secs)));
    }
    let mut total = 0f64;
    let mut rest = body;
    if rest.is_empty() {
        return Err(format!("invalid duration '{s}'"));
    }
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_end == 0 {
            return Err(format!("invalid duration '{s}'"));
        }
        let num: f64 = rest[..num_end]
            .parse()
            .map_err(|_| format!("invalid duration '{s}'"))?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        let nanos_per = match unit {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(format!("invalid duration '{s}': unknown unit '{unit}'")),
        };
        total += num * nanos_per;
    }
    Ok((neg, Duration::from_nanos(total as u64)))
}

/// One value or a list of them, as go-ucfg accepts a single value where a list is expected
/// (`ports: 80`, `send_headers: Host`); absent or null is the empty list. For
/// `#[serde(deserialize_with = "crate::config::types::one_or_many")]` on a `Vec<T>` field.
///
/// Hand-written rather than `serde_with::OneOrMany`: when neither form fits, that adapter
/// reports `OneOrMany could not deserialize any variant: One: … Many: …`, where this names
/// only what is wrong with the value as written (a list's bad element, `expected a port
/// number (0-65535), got 70000`), and it rejects null, which go-ucfg reads as "unset".
pub fn one_or_many<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    use serde::de::Error;
    match serde_yaml::Value::deserialize(d)? {
        serde_yaml::Value::Null => Ok(Vec::new()),
        list @ serde_yaml::Value::Sequence(_) => {
            Vec::<T>::deserialize(list).map_err(D::Error::custom)
        }
        one => T::deserialize(one)
            .map(|v| vec![v])
            .map_err(D::Error::custom),
    }
}

/// A list of strings that may be written as one string (`send_headers: Host`): [`one_or_many`].
pub fn strings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    one_or_many(d)
}

/// A non-negative Go-style duration in a config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GoDuration(pub Duration);

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_yaml::Value::deserialize(d)?;
        let s = match &v {
            serde_yaml::Value::String(s) => s.clone(),
            serde_yaml::Value::Number(n) => n.to_string(),
            other => {
                return Err(serde::de::Error::custom(format!(
                    "expected a duration, got {other:?}"
                )))
            }
        };
        match parse_duration(&s).map_err(serde::de::Error::custom)? {
            (false, d) => Ok(GoDuration(d)),
            (true, _) => Err(serde::de::Error::custom(format!(
                "negative duration '{s}' not allowed here"
            ))),
        }
    }
}

/// A Go-style duration that may be negative (`packetbeat.flows.period: -1s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SignedDuration {
    pub negative: bool,
    pub value: Duration,
}

impl<'de> Deserialize<'de> for SignedDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_yaml::Value::deserialize(d)?;
        let s = match &v {
            serde_yaml::Value::String(s) => s.clone(),
            serde_yaml::Value::Number(n) => n.to_string(),
            other => {
                return Err(serde::de::Error::custom(format!(
                    "expected a duration, got {other:?}"
                )))
            }
        };
        let (negative, value) = parse_duration(&s).map_err(serde::de::Error::custom)?;
        Ok(SignedDuration { negative, value })
    }
}

/// One protocol section, normalised from the list form (`- type: http`) or the map form
/// (`packetbeat.protocols.http: {...}`).
#[derive(Debug, Clone)]
pub struct ProtocolSection {
    /// Protocol type (`http`).
    pub kind: String,
    /// The section's options without `type`.
    pub options: serde_yaml::Value,
    /// Dotted key of the section, for error messages (`packetbeat.protocols.0` or `packetbeat.protocols.http`).
    pub key: String,
}

/// `packetbeat.interfaces` (one entry per interface).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct InterfaceConfig {
    pub device: Option<String>,
    #[serde(rename = "type")]
    pub kind: String,
    pub snaplen: u32,
    pub buffer_size_mb: i64,
    pub bpf_filter: Option<String>,
    pub with_vlans: bool,
    #[serde(deserialize_with = "one_or_many")]
    pub internal_networks: Vec<String>,
    pub auto_promisc_mode: bool,
    pub fanout_group: Option<u16>,
    pub metrics_interval: GoDuration,
    pub poll_default_route: Option<GoDuration>,
    pub ignore_outgoing: bool,
    /// Our extension: packet workers (0 = automatic).
    pub workers: usize,
    /// Fork option, accepted and ignored as in Packetbeat's DPDK fork.
    pub dpdk_options: Option<serde_yaml::Value>,
    /// `packetbeat.interfaces.dpdk`: settings of the DPDK sniffer (`type: dpdk`).
    pub dpdk: DpdkConfig,
    // Set from the command line, never from the file:
    #[serde(skip)]
    pub file: Option<PathBuf>,
    #[serde(skip)]
    pub top_speed: bool,
    #[serde(skip)]
    pub loop_count: i64,
    #[serde(skip)]
    pub dumpfile: Option<PathBuf>,
    /// `-O`: read one packet at a time, waiting for Enter (Packetbeat's `OneAtATime`).
    #[serde(skip)]
    pub one_at_a_time: bool,
    /// The fork's `--dpdk_status`/`--dpdk_port`/`--dpdk_args` flags, kept for the DPDK sniffer.
    #[serde(skip)]
    pub dpdk_cli: DpdkCliOptions,
}

/// `packetbeat.interfaces.dpdk` (our extension). The mempool size is `buffer_size_mb`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DpdkConfig {
    /// RX queues (RSS with a symmetric key when the port has it); `--dpdk_queues` overrides it;
    /// 0 means 1.
    pub queues: u16,
    /// RX descriptors per queue (the ring size).
    pub rx_descriptors: u16,
    /// Packets asked of `rte_eth_rx_burst` at a time.
    pub burst: u16,
    /// Longest sleep between polls of an idle port (the backoff grows to it).
    pub idle_sleep: GoDuration,
    /// Stop the capture (and exit) after this long without a packet, e.g. when the pcap PMD has
    /// replayed its file. Unset = never.
    pub exit_when_idle: Option<GoDuration>,
    /// Put the port in promiscuous mode.
    pub promiscuous: bool,
    /// One receive loop per RX queue, straight into its worker: unset = when the port spreads
    /// flows symmetrically (symmetric RSS, `net_af_packet`); `true` = the queues are known to
    /// hold whole connections (a NIC hashing symmetrically by its own setup, one capture file
    /// per queue split by flow); `false` = always one loop and the software dispatch.
    pub per_queue: Option<bool>,
    /// A receive loop that feeds one packet worker runs that worker on its own thread (run to
    /// completion: no hand-over between threads, mbufs freed where they were received);
    /// `false` = a worker thread of its own behind a channel.
    pub run_to_completion: bool,
}

impl Default for DpdkConfig {
    fn default() -> Self {
        DpdkConfig {
            queues: 0,
            rx_descriptors: 1024,
            burst: 32,
            idle_sleep: GoDuration(Duration::from_millis(1)),
            exit_when_idle: None,
            promiscuous: true,
            per_queue: None,
            run_to_completion: true,
        }
    }
}

/// DPDK options given on the command line (`--dpdk_*`). `sniffer::dpdk::early_init` reads
/// them from argv before anything else; this copy gives the interface its queue count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DpdkCliOptions {
    /// `--dpdk_status enable|disable`.
    pub status: Option<String>,
    /// `--dpdk_port N`.
    pub port: Option<u16>,
    /// `--dpdk_args "..."` (EAL arguments, split as a shell would).
    pub args: Option<String>,
    /// `--dpdk_queues Q`.
    pub queues: Option<u16>,
}

impl InterfaceConfig {
    /// RX queues asked for the DPDK port: `--dpdk_queues`, else the config's, else 1.
    pub fn dpdk_queues(&self) -> u16 {
        self.dpdk_cli.queues.unwrap_or(self.dpdk.queues).max(1)
    }
}

impl Default for InterfaceConfig {
    fn default() -> Self {
        InterfaceConfig {
            device: None,
            kind: String::new(),
            snaplen: 65535,
            buffer_size_mb: 30,
            bpf_filter: None,
            with_vlans: false,
            internal_networks: Vec::new(),
            auto_promisc_mode: false,
            fanout_group: None,
            metrics_interval: GoDuration(Duration::from_secs(5)),
            poll_default_route: None,
            ignore_outgoing: false,
            workers: 0,
            dpdk_options: None,
            dpdk: DpdkConfig::default(),
            file: None,
            top_speed: false,
            loop_count: 1,
            dumpfile: None,
            one_at_a_time: false,
            dpdk_cli: DpdkCliOptions::default(),
        }
    }
}

/// `packetbeat.flows`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct FlowsConfig {
    pub enabled: bool,
    pub timeout: GoDuration,
    pub period: SignedDuration,
    pub fields: Option<serde_yaml::Value>,
    pub fields_under_root: bool,
    #[serde(deserialize_with = "one_or_many")]
    pub tags: Vec<String>,
    pub processors: Vec<serde_yaml::Value>,
    pub index: Option<String>,
    pub keep_null: bool,
    /// Report `network.bytes`/`packets` as deltas per period (8.13+).
    pub enable_delta_flow_reports: bool,
    /// Our option, not Packetbeat's: the most flows a packet worker's table holds; when it is
    /// full, the least recently seen are reported as final and dropped (counted).
    pub max_flows: usize,
}

impl Default for FlowsConfig {
    fn default() -> Self {
        FlowsConfig {
            enabled: true,
            timeout: GoDuration(Duration::from_secs(30)),
            period: SignedDuration {
                negative: false,
                value: Duration::from_secs(10),
            },
            fields: None,
            fields_under_root: false,
            tags: Vec::new(),
            processors: Vec::new(),
            index: None,
            keep_null: false,
            enable_delta_flow_reports: false,
            max_flows: crate::flows::DEFAULT_MAX_FLOWS,
        }
    }
}

/// `output.console`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ConsoleOutputConfig {
    pub enabled: Option<bool>,
    pub pretty: bool,
    pub codec: CodecConfig,
    pub bulk_max_size: Option<i64>,
}

/// `output.*.codec`: one of `json` and `format` (libbeat's codec namespace; see
/// `crate::outputs::codec`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CodecConfig {
    pub json: Option<JsonCodecConfig>,
    pub format: Option<FormatCodecConfig>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct JsonCodecConfig {
    /// A namespace with `enabled: false` is not the codec (go-ucfg's `Namespace`).
    pub enabled: Option<bool>,
    pub pretty: bool,
    pub escape_html: bool,
}

/// `codec.format`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct FormatCodecConfig {
    pub enabled: Option<bool>,
    /// The format string; a YAML scalar (libbeat converts numbers and booleans to text).
    pub string: Option<serde_yaml::Value>,
}

/// `output.file`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct FileOutputConfig {
    pub enabled: Option<bool>,
    pub path: Option<PathBuf>,
    pub filename: String,
    pub rotate_every_kb: u64,
    pub number_of_files: u32,
    /// Octal permission bits (`0600`), read as a YAML integer or string.
    pub permissions: Option<serde_yaml::Value>,
    pub rotate_on_startup: bool,
    pub codec: CodecConfig,
}

impl Default for FileOutputConfig {
    fn default() -> Self {
        FileOutputConfig {
            enabled: None,
            path: None,
            filename: "packetbeat".into(),
            rotate_every_kb: 10 * 1024,
            number_of_files: 7,
            permissions: None,
            rotate_on_startup: true,
            codec: CodecConfig::default(),
        }
    }
}

/// The single enabled output.
#[derive(Debug, Clone)]
pub enum OutputConfig {
    Console(ConsoleOutputConfig),
    File(FileOutputConfig),
    /// `output.discard` (benchmarks).
    Discard,
    /// The other libbeat outputs keep their raw section: (type, options). `outputs::build`
    /// decodes `logstash` from it; the rest are not in this build.
    Other(String, serde_yaml::Value),
}

/// `path.*`.
#[derive(Debug, Clone, Default)]
pub struct Paths {
    pub home: PathBuf,
    pub config: PathBuf,
    pub data: PathBuf,
    pub logs: PathBuf,
}

/// The whole configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file the config came from (for messages).
    pub source: String,
    /// Effective config tree after expansion and overrides (`export config` prints it).
    pub raw: serde_yaml::Value,
    /// `name` (default: the host name): `agent.name`, `host.name`.
    pub name: String,
    pub tags: Vec<String>,
    /// `fields` as JSON, and `fields_under_root`.
    pub fields: Option<serde_json::Value>,
    pub fields_under_root: bool,
    /// Global `processors` (raw: read and kept, not applied in this build).
    pub processors: Vec<serde_yaml::Value>,
    pub interfaces: Vec<InterfaceConfig>,
    pub protocols: Vec<ProtocolSection>,
    pub flows: Option<FlowsConfig>,
    pub ignore_outgoing: bool,
    pub shutdown_timeout: Duration,
    pub output: OutputConfig,
    pub paths: Paths,
    /// `logging.level` (default `info`) and `logging.selectors`.
    pub logging_level: String,
    pub logging_selectors: Vec<String>,
    /// `timestamp.precision` as written (empty: millisecond).
    pub timestamp_precision: String,
}

/// Reads one typed value at a dotted path of a raw tree (used by `-E`-aware lookups).
pub fn lookup<'a>(root: &'a serde_yaml::Value, path: &str) -> Option<&'a serde_yaml::Value> {
    let mut cur = root;
    for part in path.split('.') {
        cur = cur
            .as_mapping()?
            .get(serde_yaml::Value::String(part.to_string()))?;
    }
    Some(cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Debug, Default)]
    #[serde(default)]
    struct Lists {
        #[serde(deserialize_with = "one_or_many")]
        ports: Vec<u16>,
        #[serde(deserialize_with = "strings")]
        names: Vec<String>,
    }

    fn lists(yaml: &str) -> Result<Lists, ConfigError> {
        decode(&serde_yaml::from_str(yaml).unwrap(), "k", "f.yml")
    }

    #[test]
    fn one_or_many_forms() {
        let l = lists("{ports: 80, names: Host}").unwrap();
        assert_eq!((l.ports, l.names), (vec![80], vec!["Host".to_string()]));
        let l = lists("{ports: [80, 8080], names: [a, b]}").unwrap();
        assert_eq!(
            (l.ports, l.names),
            (vec![80, 8080], vec!["a".into(), "b".into()])
        );
        let l = lists("{ports: [], names: }").unwrap();
        assert!(l.ports.is_empty() && l.names.is_empty());
        // The bad value's own message, not one per form tried.
        assert_eq!(
            lists("{ports: [80, 70000]}").unwrap_err().0,
            "invalid value: integer `70000`, expected u16 accessing 'k.ports' (source:'f.yml')"
        );
    }

    #[test]
    fn go_durations() {
        assert_eq!(
            parse_duration("10s").unwrap(),
            (false, Duration::from_secs(10))
        );
        assert_eq!(
            parse_duration("400ms").unwrap(),
            (false, Duration::from_millis(400))
        );
        assert_eq!(
            parse_duration("1m30s").unwrap(),
            (false, Duration::from_secs(90))
        );
        assert_eq!(
            parse_duration("-1s").unwrap(),
            (true, Duration::from_secs(1))
        );
        assert_eq!(
            parse_duration("90").unwrap(),
            (false, Duration::from_secs(90))
        );
        assert!(parse_duration("10 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct T {
        #[allow(dead_code)]
        ports: Vec<u16>,
    }

    #[test]
    fn decode_names_key_and_file() {
        let v: serde_yaml::Value = serde_yaml::from_str("ports: [80, notaport]").unwrap();
        let err = decode::<T>(&v, "packetbeat.protocols.http", "packetbeat.yml").unwrap_err();
        assert!(err.0.contains("packetbeat.protocols.http.ports"), "{err}");
        assert!(err.0.contains("packetbeat.yml"), "{err}");
    }
}
