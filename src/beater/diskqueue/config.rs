//! `queue.*`: which queue the beater runs with, and `queue.disk`'s options as libbeat reads them
//! (`libbeat/publisher/queue/diskqueue/config.go`).

use crate::config::types::{lookup, parse_duration, ConfigError};
use crate::config::Config;
use serde_yaml::Value;
use std::path::PathBuf;
use std::time::Duration;

/// `queue.disk`, with libbeat's defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct DiskQueueSettings {
    /// `path`: the directory of `state.dat` and the `<id>.seg` files (default
    /// `${path.data}/diskqueue`).
    pub path: PathBuf,
    /// `max_size` (required): bytes the segments may take; 0 = no limit.
    pub max_size: u64,
    /// `segment_size` (default `max_size / 10`; 100 MiB when `max_size` is 0).
    pub segment_size: u64,
    /// `read_ahead` (512): events taken per read when the output asks for no particular number.
    pub read_ahead: usize,
    /// `write_ahead` (2048): accepted; writes are synchronous here, nothing waits in memory.
    pub write_ahead: usize,
    /// `retry_interval` (1s) and `max_retry_interval` (30s): the back-off between attempts at a
    /// write that failed (disk full, I/O error).
    pub retry_interval: Duration,
    pub max_retry_interval: Duration,
}

impl DiskQueueSettings {
    /// Settings for tests and tools: no size limit checks beyond the ones given.
    pub fn new(path: PathBuf, max_size: u64, segment_size: u64) -> DiskQueueSettings {
        DiskQueueSettings {
            path,
            max_size,
            segment_size,
            read_ahead: 512,
            write_ahead: 2048,
            retry_interval: Duration::from_secs(1),
            max_retry_interval: Duration::from_secs(30),
        }
    }
}

/// The queue in front of the output, from `queue.*`.
#[derive(Debug, Clone, PartialEq)]
pub enum QueueChoice {
    /// `queue.mem` (or nothing): `events` when set, and `flush.min_events` / `flush.timeout`.
    Mem {
        events: Option<usize>,
        flush: crate::beater::queue::Flush,
    },
    Disk(DiskQueueSettings),
}

/// Reads `queue`: at most one of its sub-sections may be an enabled mapping (go-ucfg's
/// `Namespace`, whose error this repeats).
pub fn queue_choice(cfg: &Config) -> Result<QueueChoice, ConfigError> {
    let src = cfg.source.as_str();
    let Some(queue) = lookup(&cfg.raw, "queue").and_then(Value::as_mapping) else {
        return Ok(QueueChoice::Mem {
            events: None,
            flush: Default::default(),
        });
    };
    let mut chosen: Option<(&str, &Value)> = None;
    for (k, v) in queue {
        let (Some(name), Some(m)) = (k.as_str(), v.as_mapping()) else {
            continue;
        };
        if m.get("enabled").and_then(Value::as_bool) == Some(false) {
            continue;
        }
        if chosen.is_some() {
            return Err(ConfigError::at(
                "more than one namespace configured",
                "queue",
                src,
            ));
        }
        chosen = Some((name, v));
    }
    match chosen {
        Some(("disk", v)) => disk_settings(v, &cfg.paths.data, src).map(QueueChoice::Disk),
        Some(("mem", v)) => {
            let events =
                match v.get("events") {
                    None | Some(Value::Null) => None,
                    Some(e) => Some(e.as_u64().filter(|n| *n > 0).ok_or_else(|| {
                        ConfigError::at("requires value > 0", "queue.mem.events", src)
                    })? as usize),
                };
            Ok(QueueChoice::Mem {
                events,
                flush: mem_flush(v, src)?,
            })
        }
        // Other queue types (libbeat has none for Packetbeat 8) are left to the memory queue.
        _ => Ok(QueueChoice::Mem {
            events: None,
            flush: Default::default(),
        }),
    }
}

/// `queue.mem.flush.min_events` (>= 0) and `queue.mem.flush.timeout`, both 0 when unset.
fn mem_flush(v: &Value, src: &str) -> Result<crate::beater::queue::Flush, ConfigError> {
    let min_events = match lookup(v, "flush.min_events") {
        None | Some(Value::Null) => 0,
        Some(n) => n.as_u64().ok_or_else(|| {
            ConfigError::at(
                "requires value >= 0",
                "queue.mem.flush.min_events",
                src,
            )
        })? as usize,
    };
    let timeout = match lookup(v, "flush.timeout") {
        None | Some(Value::Null) => std::time::Duration::ZERO,
        Some(t) => {
            serde_yaml::from_value::<crate::config::types::GoDuration>(t.clone())
                .map_err(|e| ConfigError::at(&e.to_string(), "queue.mem.flush.timeout", src))?
                .0
        }
    };
    Ok(crate::beater::queue::Flush {
        min_events,
        timeout,
    })
}

fn disk_settings(
    v: &Value,
    data: &std::path::Path,
    src: &str,
) -> Result<DiskQueueSettings, ConfigError> {
    let key = |k: &str| format!("queue.disk.{k}");
    let err = |msg: String, k: &str| ConfigError::at(msg, &key(k), src);
    let get = |k: &str| v.get(k).filter(|x| !x.is_null());
    let size = |k: &str| -> Result<Option<u64>, ConfigError> {
        get(k)
            .map(|x| byte_size(x).map_err(|e| err(e, k)))
            .transpose()
    };
    let int = |k: &str, default: usize| -> Result<usize, ConfigError> {
        match get(k) {
            None => Ok(default),
            Some(x) => x
                .as_u64()
                .map(|n| n as usize)
                .ok_or_else(|| err(format!("can not convert '{}' into 'int'", show(x)), k)),
        }
    };
    let duration = |k: &str| -> Result<Option<Duration>, ConfigError> {
        let Some(x) = get(k) else {
            return Ok(None);
        };
        let text = match x {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            other => {
                return Err(err(
                    format!("can not parse '{}' as duration", show(other)),
                    k,
                ))
            }
        };
        match parse_duration(&text) {
            Ok((false, d)) if !d.is_zero() => Ok(Some(d)),
            Ok(_) => Err(err("requires value > 0".into(), k)),
            Err(e) => Err(err(e, k)),
        }
    };

    let max_size =
        size("max_size")?.ok_or_else(|| err("missing required field".into(), "max_size"))?;
    let explicit_segment = size("segment_size")?;
    let retry = duration("retry_interval")?;
    let max_retry = duration("max_retry_interval")?;
    let s = DiskQueueSettings {
        path: match get("path").and_then(Value::as_str) {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => data.join("diskqueue"),
        },
        max_size,
        segment_size: explicit_segment.unwrap_or(match max_size {
            0 => 100 << 20,
            m => m / 10,
        }),
        read_ahead: int("read_ahead", 512)?,
        write_ahead: int("write_ahead", 2048)?,
        retry_interval: retry.unwrap_or(Duration::from_secs(1)),
        max_retry_interval: max_retry.unwrap_or(Duration::from_secs(30)),
    };
    // libbeat's `userConfig.Validate`, with its messages.
    let invalid = |msg: String| ConfigError::at(msg, "queue.disk", src);
    if let Some(seg) = explicit_segment {
        if max_size != 0 && max_size < seg * 2 {
            return Err(invalid(
                "disk queue max_size must be at least twice as big as segment_size".into(),
            ));
        }
    }
    if max_size != 0 && max_size < 10_000_000 {
        return Err(invalid(format!(
            "disk queue max_size ({max_size}) cannot be less than 10MB"
        )));
    }
    if let Some(seg) = explicit_segment.filter(|s| *s < 1_000_000) {
        return Err(invalid(format!(
            "disk queue segment_size ({seg}) cannot be less than 1MB"
        )));
    }
    if let (Some(r), Some(m)) = (retry, max_retry) {
        if m < r {
            return Err(invalid(format!(
                "disk queue max_retry_interval ({m:?}) can't be less than retry_interval ({r:?})"
            )));
        }
    }
    Ok(s)
}

fn show(v: &Value) -> String {
    serde_yaml::to_string(v)
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// A byte size as libbeat's `cfgtype.ByteSize` reads it: a number is bytes, a string goes
/// through go-humanize's `ParseBytes` (`10GB` = 10·1000³, `100MiB` = 100·1024², `1.5 gb`,
/// `64k`, `1,000` — decimal SI for `k`/`KB`…, binary for `Ki`/`KiB`…, case-insensitive).
pub fn byte_size(v: &Value) -> Result<u64, String> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
            .ok_or_else(|| format!("negative value {n} for a size")),
        Value::String(s) => parse_bytes(s),
        other => Err(format!("can not convert '{}' into a size", show(other))),
    }
}

/// go-humanize `ParseBytes`.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let digits = s
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || *c == '.' || *c == ','))
        .map_or(s.len(), |(i, _)| i);
    let num: f64 = s[..digits]
        .replace(',', "")
        .parse()
        .map_err(|e| format!("strconv.ParseFloat: parsing {:?}: {e}", &s[..digits]))?;
    let unit = s[digits..].trim().to_ascii_lowercase();
    let mult: f64 = match unit.as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "ki" | "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mi" | "mib" => 1024f64.powi(2),
        "g" | "gb" => 1e9,
        "gi" | "gib" => 1024f64.powi(3),
        "t" | "tb" => 1e12,
        "ti" | "tib" => 1024f64.powi(4),
        "p" | "pb" => 1e15,
        "pi" | "pib" => 1024f64.powi(5),
        "e" | "eb" => 1e18,
        "ei" | "eib" => 1024f64.powi(6),
        _ => return Err(format!("unhandled size name: {unit}")),
    };
    let bytes = num * mult;
    if bytes >= u64::MAX as f64 {
        return Err(format!("too large: {s}"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choice(yaml: &str) -> Result<QueueChoice, String> {
        let text = format!("output.console.enabled: true\npath.data: /var/lib/pb\n{yaml}\n");
        let cfg = crate::config::load_from_str(&text, "t.yml", &[]).unwrap();
        queue_choice(&cfg).map_err(|e| e.0)
    }

    #[test]
    fn sizes_parse_as_go_humanize() {
        for (s, n) in [
            ("10GB", 10_000_000_000),
            ("100MiB", 100 << 20),
            ("1.5 gb", 1_500_000_000),
            ("64k", 64_000),
            ("2Ki", 2048),
            ("1,000", 1000),
            ("42", 42),
            ("7 B", 7),
        ] {
            assert_eq!(parse_bytes(s), Ok(n), "{s}");
        }
        assert!(parse_bytes("10 parsecs").is_err());
        assert!(parse_bytes("GB").is_err());
        assert_eq!(byte_size(&Value::from(1234u64)), Ok(1234));
    }

    #[test]
    fn disk_defaults_and_validation() {
        let QueueChoice::Disk(s) = choice("queue.disk: {max_size: 10GB}").unwrap() else {
            panic!()
        };
        assert_eq!(s.path, PathBuf::from("/var/lib/pb/diskqueue"));
        assert_eq!(
            (s.max_size, s.segment_size),
            (10_000_000_000, 1_000_000_000)
        );
        assert_eq!((s.read_ahead, s.write_ahead), (512, 2048));
        assert_eq!(s.retry_interval, Duration::from_secs(1));
        assert_eq!(s.max_retry_interval, Duration::from_secs(30));

        let QueueChoice::Disk(s) = choice(
            "queue.disk: {max_size: 1GiB, segment_size: 100MiB, path: /q, read_ahead: 8, retry_interval: 2s}",
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!((s.segment_size, s.read_ahead), (100 << 20, 8));
        assert_eq!(
            (s.path, s.retry_interval),
            (PathBuf::from("/q"), Duration::from_secs(2))
        );

        let e = choice("queue.disk: {path: /q}").unwrap_err();
        assert!(
            e.contains("missing required field accessing 'queue.disk.max_size'"),
            "{e}"
        );
        let e = choice("queue.disk: {max_size: 1MB}").unwrap_err();
        assert!(e.contains("cannot be less than 10MB"), "{e}");
        let e = choice("queue.disk: {max_size: 100MB, segment_size: 60MB}").unwrap_err();
        assert!(e.contains("at least twice as big as segment_size"), "{e}");
        let e = choice("queue.disk: {max_size: 100MB, retry_interval: 5s, max_retry_interval: 1s}")
            .unwrap_err();
        assert!(e.contains("can't be less than retry_interval"), "{e}");
        let e = choice("queue.disk: {max_size: 100MB, retry_interval: -1s}").unwrap_err();
        assert!(e.contains("queue.disk.retry_interval"), "{e}");
    }

    #[test]
    fn one_queue_only_and_mem_events() {
        let e = choice("queue: {mem: {events: 4096}, disk: {max_size: 10GB}}").unwrap_err();
        assert!(
            e.contains("more than one namespace configured accessing 'queue'"),
            "{e}"
        );
        assert_eq!(
            choice("queue.mem: {events: 64, flush.min_events: 10, flush.timeout: 2s}"),
            Ok(QueueChoice::Mem {
                events: Some(64),
                flush: crate::beater::queue::Flush {
                    min_events: 10,
                    timeout: Duration::from_secs(2)
                }
            })
        );
        assert!(choice("queue.mem.flush.min_events: -1")
            .unwrap_err()
            .contains("queue.mem.flush.min_events"));
        assert!(choice("queue.mem.flush.timeout: soon")
            .unwrap_err()
            .contains("queue.mem.flush.timeout"));
        assert_eq!(
            choice("queue: {mem: {events: 4096}, disk: {enabled: false, max_size: 1}}"),
            Ok(QueueChoice::Mem {
                events: Some(4096),
                flush: Default::default()
            })
        );
        assert_eq!(
            choice("name: x"),
            Ok(QueueChoice::Mem {
                events: None,
                flush: Default::default()
            })
        );
    }
}
