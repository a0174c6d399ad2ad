//! Builds the typed [`Config`] from the resolved tree, with Packetbeat's and libbeat's checks and
//! their messages.

use super::tree::key_string;
use super::types::*;
use serde::Deserialize;
use serde_yaml::{Mapping, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Output types libbeat 8 ships. The last four are carried raw (`OutputConfig::Other`).
pub const KNOWN_OUTPUTS: &[&str] = &[
    "console",
    "file",
    "discard",
    "elasticsearch",
    "logstash",
    "kafka",
    "redis",
];

/// Sniffer types (`autodetect` and empty mean `pcap`).
pub const SNIFFER_TYPES: &[&str] = &["pcap", "af_packet", "dpdk"];

/// Logging levels libbeat accepts.
pub const LOG_LEVELS: &[&str] = &["debug", "info", "warning", "warn", "error", "critical"];

/// Builds and validates the typed configuration from a resolved tree.
pub fn build(tree: &Value, source: &str) -> Result<Config, ConfigError> {
    let unpack = |e: ConfigError| ConfigError(format!("error unpacking config data: {}", e.0));

    // ---- libbeat-level settings ----
    let name = match lookup(tree, "name") {
        None | Some(Value::Null) => hostname(),
        Some(Value::String(s)) if s.is_empty() => hostname(),
        Some(v @ (Value::String(_) | Value::Number(_) | Value::Bool(_))) => scalar_text(v),
        Some(v) => return Err(unpack(type_error("string", v, "name", source))),
    };
    // `tags: a` is `tags: [a]`.
    let tags: Vec<String> = match lookup(tree, "tags") {
        None => Vec::new(),
        Some(v) => one_or_many(v.clone()).map_err(|e: serde_yaml::Error| {
            unpack(ConfigError::at(e.to_string(), "tags", source))
        })?,
    };
    let fields = match lookup(tree, "fields") {
        None | Some(Value::Null) => None,
        Some(v @ Value::Mapping(_)) => Some(serde_json::to_value(v).map_err(|e| {
            unpack(ConfigError::at(
                format!("invalid fields: {e}"),
                "fields",
                source,
            ))
        })?),
        Some(v) => return Err(unpack(type_error("object", v, "fields", source))),
    };
    let fields_under_root: bool = decode_opt(tree, "fields_under_root", source)
        .map_err(unpack)?
        .unwrap_or(false);
    let processors: Vec<Value> = match lookup(tree, "processors") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Sequence(s)) => s.clone(),
        Some(v) => return Err(unpack(type_error("array", v, "processors", source))),
    };

    let paths = Paths {
        home: path_at(tree, "path.home", source).map_err(unpack)?,
        config: path_at(tree, "path.config", source).map_err(unpack)?,
        data: path_at(tree, "path.data", source).map_err(unpack)?,
        logs: path_at(tree, "path.logs", source).map_err(unpack)?,
    };

    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Logging {
        level: Option<String>,
        #[serde(deserialize_with = "one_or_many")]
        selectors: Vec<String>,
    }
    let logging: Logging = decode_opt(tree, "logging", source)
        .map_err(unpack)?
        .unwrap_or_default();
    let logging_level = logging
        .level
        .unwrap_or_else(|| "info".into())
        .to_lowercase();
    if !LOG_LEVELS.contains(&logging_level.as_str()) {
        return Err(unpack(ConfigError::at(
            format!(
                "unknown level '{logging_level}' (known: {})",
                LOG_LEVELS.join(", ")
            ),
            "logging.level",
            source,
        )));
    }

    // `timestamp.precision`: libbeat takes millisecond, microsecond or nanosecond, and falls
    // back to millisecond for anything else.
    let timestamp_precision: String = decode_opt(tree, "timestamp.precision", source)
        .map_err(unpack)?
        .unwrap_or_default();

    // ---- output ----
    let output = build_output(tree, source)?;

    // ---- packetbeat ----
    let interfaces = build_interfaces(tree, source)?;
    let protocols = build_protocols(tree, source)?;
    let flows = match lookup(tree, "packetbeat.flows") {
        None => None,
        Some(v) => {
            let f: FlowsConfig = decode(v, "packetbeat.flows", source)?;
            f.enabled.then_some(f)
        }
    };
    let ignore_outgoing: bool =
        decode_opt(tree, "packetbeat.ignore_outgoing", source)?.unwrap_or(false);
    let shutdown_timeout: GoDuration =
        decode_opt(tree, "packetbeat.shutdown_timeout", source)?.unwrap_or_default();

    Ok(Config {
        source: source.to_string(),
        raw: tree.clone(),
        name,
        tags,
        fields,
        fields_under_root,
        processors,
        interfaces,
        protocols,
        flows,
        ignore_outgoing,
        shutdown_timeout: shutdown_timeout.0,
        output,
        paths,
        logging_level,
        logging_selectors: logging.selectors,
        timestamp_precision,
    })
}

fn hostname() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

fn kind_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "nil",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Sequence(_) => "array",
        Value::Mapping(_) => "object",
        Value::Tagged(_) => "value",
    }
}

/// go-ucfg's type mismatch message.
fn type_error(expected: &str, found: &Value, key: &str, source: &str) -> ConfigError {
    ConfigError::at(
        format!(
            "required '{expected}', but found '{}' in field '{key}'",
            kind_name(found)
        ),
        key,
        source,
    )
}

/// Decodes the value at `key` if present (and not empty).
fn decode_opt<T: serde::de::DeserializeOwned>(
    tree: &Value,
    key: &str,
    source: &str,
) -> Result<Option<T>, ConfigError> {
    match lookup(tree, key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => decode_scalar_aware(v, key, source).map(Some),
    }
}

/// `decode` for values that may be scalars (`decode` treats null as an empty mapping).
fn decode_scalar_aware<T: serde::de::DeserializeOwned>(
    v: &Value,
    key: &str,
    source: &str,
) -> Result<T, ConfigError> {
    match v {
        Value::Mapping(_) => decode(v, key, source),
        other => serde_yaml::from_value(other.clone())
            .map_err(|e| ConfigError::at(e.to_string(), key, source)),
    }
}

fn path_at(tree: &Value, key: &str, source: &str) -> Result<PathBuf, ConfigError> {
    match lookup(tree, key) {
        None | Some(Value::Null) => Ok(PathBuf::new()),
        Some(Value::String(s)) => Ok(PathBuf::from(s)),
        Some(v) => Err(type_error("string", v, key, source)),
    }
}

fn build_output(tree: &Value, source: &str) -> Result<OutputConfig, ConfigError> {
    const NONE: &str = "no outputs are defined, please define one under the output section";
    let section = match lookup(tree, "output") {
        None | Some(Value::Null) => return Err(ConfigError(NONE.into())),
        Some(Value::Mapping(m)) => m,
        Some(v) => {
            return Err(ConfigError(format!(
                "error unpacking config data: {}",
                type_error("object", v, "output", source).0
            )))
        }
    };
    let mut enabled: Vec<(String, Value)> = Vec::new();
    for (k, v) in section {
        let name = key_string(k);
        let opts = match v {
            Value::Mapping(m) => Value::Mapping(m.clone()),
            Value::Null => Value::Mapping(Mapping::new()),
            _ => continue, // not a namespace (go-ucfg skips non-objects)
        };
        if let Some(e) = lookup(&opts, "enabled") {
            match e {
                Value::Bool(false) => continue,
                Value::Bool(true) | Value::Null => {}
                other => {
                    return Err(ConfigError(format!(
                        "error unpacking config data: {}",
                        type_error("bool", other, &format!("output.{name}.enabled"), source).0
                    )))
                }
            }
        }
        enabled.push((name, opts));
    }
    if enabled.len() > 1 {
        return Err(ConfigError(format!(
            "error unpacking config data: {}",
            ConfigError::at("more than one namespace configured", "output", source).0
        )));
    }
    let Some((name, opts)) = enabled.pop() else {
        return Err(ConfigError(NONE.into()));
    };
    let key = format!("output.{name}");
    // `codec` (json or format), checked here so that `test config` reports it too.
    let codec_error = |e: String| ConfigError(format!("{e} (source:'{source}')"));
    match name.as_str() {
        "console" => {
            let c: ConsoleOutputConfig = decode(&opts, &key, source)?;
            crate::outputs::codec::check_namespace(&opts, &key).map_err(codec_error)?;
            crate::outputs::console::codec(&c).map_err(codec_error)?;
            Ok(OutputConfig::Console(c))
        }
        "file" => {
            let f: FileOutputConfig = decode(&opts, &key, source)?;
            crate::outputs::codec::check_namespace(&opts, &key).map_err(codec_error)?;
            crate::outputs::file::codec(&f).map_err(codec_error)?;
            if !(2..=1024).contains(&f.number_of_files) {
                return Err(ConfigError::at(
                    "the number_of_files to keep should be between 2 and 1024",
                    &key,
                    source,
                ));
            }
            if f.rotate_every_kb < 1 {
                return Err(ConfigError::at(
                    "requires value >= 1",
                    &format!("{key}.rotate_every_kb"),
                    source,
                ));
            }
            Ok(OutputConfig::File(f))
        }
        "discard" => Ok(OutputConfig::Discard),
        n if KNOWN_OUTPUTS.contains(&n) => Ok(OutputConfig::Other(name.clone(), opts)),
        _ => Err(ConfigError::at(
            format!(
                "error initializing publisher: output type {name} undefined (known: {})",
                KNOWN_OUTPUTS.join(", ")
            ),
            &key,
            source,
        )),
    }
}

fn build_interfaces(tree: &Value, source: &str) -> Result<Vec<InterfaceConfig>, ConfigError> {
    let entries: Vec<(Value, String)> = match lookup(tree, "packetbeat.interfaces") {
        None => Vec::new(),
        Some(Value::Null) => vec![(
            Value::Mapping(Mapping::new()),
            "packetbeat.interfaces".into(),
        )],
        Some(v @ Value::Mapping(_)) => vec![(v.clone(), "packetbeat.interfaces".into())],
        Some(Value::Sequence(s)) => s
            .iter()
            .enumerate()
            .map(|(i, v)| {
                (
                    if v.is_null() {
                        Value::Mapping(Mapping::new())
                    } else {
                        v.clone()
                    },
                    format!("packetbeat.interfaces.{i}"),
                )
            })
            .collect(),
        Some(v) => return Err(type_error("object", v, "packetbeat.interfaces", source)),
    };
    let mut out = Vec::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for (mut raw, key) in entries {
        if !raw.is_mapping() {
            return Err(type_error("object", &raw, &key, source));
        }
        // `device: 0` (an index into `packetbeat devices`) is a number in YAML.
        if let Some(d @ Value::Number(_)) = raw.get_mut("device") {
            *d = Value::String(scalar_text(d));
        }
        let mut iface: InterfaceConfig = decode(&raw, &key, source)?;
        // `file` is read from the config too (Packetbeat's `InterfaceConfig.File`); `-I` overrides it.
        match lookup(&raw, "file") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s.is_empty() => {}
            Some(Value::String(s)) => iface.file = Some(PathBuf::from(s)),
            Some(v) => return Err(type_error("string", v, &format!("{key}.file"), source)),
        }
        if iface.fanout_group.is_some() && iface.kind != "af_packet" {
            return Err(ConfigError::at(
                "fanout_group is only valid with af_packet type",
                &key,
                source,
            ));
        }
        iface.kind = match iface.kind.as_str() {
            "" | "autodetect" => "pcap".into(),
            k if SNIFFER_TYPES.contains(&k) => k.into(),
            other => {
                return Err(ConfigError::at(
                    format!(
                        "unknown sniffer type for {}: \"{other}\" (known: autodetect, {})",
                        iface.device.as_deref().unwrap_or("any"),
                        SNIFFER_TYPES.join(", ")
                    ),
                    &format!("{key}.type"),
                    source,
                ))
            }
        };
        if iface.device.as_deref().is_none_or(str::is_empty) {
            iface.device = Some(
                if cfg!(target_os = "linux") {
                    "any"
                } else {
                    "default_route"
                }
                .into(),
            );
        }
        if let Some(p) = iface.poll_default_route {
            if !p.0.is_zero() && p.0 < Duration::from_secs(1) {
                iface.poll_default_route = Some(GoDuration(Duration::from_secs(1)));
            }
        }
        *counts
            .entry(iface.device.clone().unwrap_or_default())
            .or_default() += 1;
        out.push(iface);
    }
    let dups: Vec<&str> = counts
        .iter()
        .filter(|(_, &n)| n > 1)
        .map(|(d, _)| d.as_str())
        .collect();
    if !dups.is_empty() {
        return Err(ConfigError(format!(
            "duplicated device configurations: {}",
            dups.join(", ")
        )));
    }
    Ok(out)
}

fn build_protocols(tree: &Value, source: &str) -> Result<Vec<ProtocolSection>, ConfigError> {
    let mut out = Vec::new();
    match lookup(tree, "packetbeat.protocols") {
        None | Some(Value::Null) => {}
        Some(Value::Sequence(s)) => {
            for (i, entry) in s.iter().enumerate() {
                let key = format!("packetbeat.protocols.{i}");
                let Value::Mapping(m) = entry else {
                    if entry.is_null() {
                        return Err(ConfigError::at(
                            "missing required field",
                            &format!("{key}.type"),
                            source,
                        ));
                    }
                    return Err(type_error("object", entry, &key, source));
                };
                let kind = match m.get("type") {
                    None | Some(Value::Null) => {
                        return Err(ConfigError::at(
                            "missing required field",
                            &format!("{key}.type"),
                            source,
                        ))
                    }
                    Some(Value::String(s)) if s.is_empty() => {
                        return Err(ConfigError::at(
                            "string value is not set",
                            &format!("{key}.type"),
                            source,
                        ))
                    }
                    Some(Value::String(s)) => s.clone(),
                    Some(v) => return Err(type_error("string", v, &format!("{key}.type"), source)),
                };
                let mut opts = m.clone();
                opts.remove("type");
                out.push(ProtocolSection {
                    kind,
                    options: Value::Mapping(opts),
                    key,
                });
            }
        }
        Some(Value::Mapping(m)) => {
            for (k, v) in m {
                let kind = key_string(k);
                let key = format!("packetbeat.protocols.{kind}");
                let mut opts = match v {
                    Value::Mapping(o) => o.clone(),
                    Value::Null => Mapping::new(),
                    other => return Err(type_error("object", other, &key, source)),
                };
                opts.remove("type");
                out.push(ProtocolSection {
                    kind,
                    options: Value::Mapping(opts),
                    key,
                });
            }
        }
        Some(v) => return Err(type_error("object", v, "packetbeat.protocols", source)),
    }
    Ok(out)
}
