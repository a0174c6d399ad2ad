//! Logging set-up as libbeat's (elastic-agent-libs `logp`): `-e`, `-v`, `-d SELECTORS`,
//! `--environment`, `logging.level`, `logging.selectors`, `logging.to_stderr`,
//! `logging.to_files` and `logging.files.*`. Lines are ECS JSON like libbeat 8 writes them
//! (`{"log.level":"info","@timestamp":...,"log.logger":"http","message":...}`).
//!
//! Where they go, in libbeat's order: stderr with `-e` or `logging.to_stderr` (and by default
//! under `--environment systemd|container`); otherwise files under `logging.files.path`
//! (`path.logs`), `packetbeat-YYYYMMDD.ndjson`, rotated as [`Rotator`] rotates (every
//! `rotateeverybytes`, 10 MiB; `keepfiles` 7; `permissions` 0600; `rotateonstartup`), unless
//! `logging.to_files: false`, which leaves nowhere and logs nothing; warnings and errors then
//! still reach stderr, since a process that cannot say why it failed helps nobody.
//! A selector maps to a module (`http` → `packetbeat::protos::http`, `tcp` →
//! `packetbeat::protos::tcp`, `publisher` → `packetbeat::publish`, ...); `*` means all.

use crate::common::rotator::{Rotator, RotatorConfig};
use std::path::PathBuf;
use std::sync::Mutex;

use std::fmt;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// What decides the log level and destination.
#[derive(Debug, Clone, Default)]
pub struct LogSettings {
    /// `-e`, or `logging.to_stderr: true`.
    pub to_stderr: bool,
    /// `-v`.
    pub verbose: bool,
    /// `-d` (comma-separated lists, repeatable).
    pub debug_selectors: Vec<String>,
    /// `logging.level` (`info` when unset).
    pub level: String,
    /// `logging.selectors`.
    pub selectors: Vec<String>,
    /// Log files, when they are where the log goes.
    pub files: Option<FileLogSettings>,
}

/// `logging.files.*`, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct FileLogSettings {
    pub path: PathBuf,
    pub name: String,
    pub rotate_every_bytes: u64,
    pub keep_files: usize,
    pub permissions: u32,
    pub rotate_on_startup: bool,
}

/// Reads `logging.to_files` and `logging.files.*` from the config tree; `None` when the log
/// does not go to files (stderr chosen, or `to_files: false`). `stderr` says whether `-e`,
/// `logging.to_stderr` or the environment already send it to stderr.
pub fn file_settings(
    raw: &serde_yaml::Value,
    logs_dir: &std::path::Path,
    stderr: bool,
) -> Result<Option<FileLogSettings>, String> {
    use crate::config::lookup;
    let get = |k: &str| lookup(raw, &format!("logging.{k}")).filter(|v| !v.is_null());
    let to_files = match get("to_files") {
        None => true,
        Some(v) => v
            .as_bool()
            .ok_or_else(|| format!("logging.to_files: expected a boolean, got {v:?}"))?,
    };
    if stderr || !to_files {
        return Ok(None);
    }
    let uint = |k: &str, default: u64| -> Result<u64, String> {
        match get(k) {
            None => Ok(default),
            Some(v) => v
                .as_u64()
                .ok_or_else(|| format!("logging.{k}: expected a positive integer, got {v:?}")),
        }
    };
    let rotate_every_bytes = uint("files.rotateeverybytes", 10 * 1024 * 1024)?;
    if rotate_every_bytes == 0 {
        return Err("logging.files.rotateeverybytes: requires value >= 1".into());
    }
    let keep_files = uint("files.keepfiles", 7)?;
    if keep_files > 1024 {
        return Err("logging.files.keepfiles: requires value <= 1024".into());
    }
    let permissions = crate::outputs::file::parse_permissions(
        &get("files.permissions").cloned(),
        "logging.files.permissions",
    )
    .map_err(|e| e.to_string())?;
    let rotate_on_startup = match get("files.rotateonstartup") {
        None => true,
        Some(v) => v.as_bool().ok_or_else(|| {
            format!("logging.files.rotateonstartup: expected a boolean, got {v:?}")
        })?,
    };
    let text = |k: &str| get(k).and_then(|v| v.as_str()).filter(|s| !s.is_empty());
    Ok(Some(FileLogSettings {
        path: text("files.path")
            .map(PathBuf::from)
            .unwrap_or_else(|| logs_dir.to_path_buf()),
        name: text("files.name").unwrap_or("packetbeat").to_string(),
        rotate_every_bytes,
        // libbeat keeps `keepfiles` backups besides the file being written.
        keep_files: keep_files as usize + 1,
        permissions,
        rotate_on_startup,
    }))
}

/// The module path a libbeat/Packetbeat logger name (selector) stands for.
pub fn selector_target(sel: &str) -> String {
    let sel = sel.trim();
    if crate::protos::KNOWN_PROTOCOLS.contains(&sel) || matches!(sel, "tcp" | "udp") {
        return format!("packetbeat::protos::{sel}");
    }
    match sel {
        "icmp" => "packetbeat::protos::icmp".into(),
        "publish" | "publisher" | "processors" => "packetbeat::publish".into(),
        "sniffer" | "pcapread" | "afpacket" | "dpdk" => "packetbeat::sniffer".into(),
        "decoder" => "packetbeat::decoder".into(),
        "flows" => "packetbeat::flows".into(),
        "beat" | "packetbeat" | "service" => "packetbeat::beater".into(),
        "config" | "cfgfile" => "packetbeat::config".into(),
        "output" | "outputs" | "console" | "file" | "elasticsearch" | "logstash" | "kafka"
        | "redis_output" => "packetbeat::outputs".into(),
        other => format!("packetbeat::{other}"),
    }
}

fn level_directive(level: &str) -> &'static str {
    match level {
        "debug" => "debug",
        "info" => "info",
        "warning" | "warn" => "warn",
        _ => "error",
    }
}

/// The `EnvFilter` directives for these settings.
pub fn filter_directives(s: &LogSettings) -> String {
    let shown = s.to_stderr || s.verbose || s.files.is_some();
    let configured = level_directive(if s.level.is_empty() { "info" } else { &s.level });
    let mut base = if shown {
        configured
    } else {
        if configured == "error" {
            "error"
        } else {
            "warn"
        }
    };
    if s.verbose && base != "debug" {
        base = "info";
    }
    let mut selectors: Vec<String> = Vec::new();
    let mut debug = false;
    if !s.debug_selectors.is_empty() {
        debug = true;
        selectors.extend(
            s.debug_selectors
                .iter()
                .flat_map(|d| d.split(','))
                .map(|x| x.trim().to_string()),
        );
    } else if shown && configured == "debug" {
        debug = true;
        selectors.extend(s.selectors.iter().cloned());
        // Debug level with no selectors means all of them, as in libbeat.
        if selectors.is_empty() {
            selectors.push("*".into());
        }
        base = "info";
    }
    selectors.retain(|x| !x.is_empty());
    let mut parts = vec![base.to_string()];
    if debug {
        if selectors.iter().any(|x| x == "*") {
            parts.push("packetbeat=debug".into());
        } else {
            for sel in &selectors {
                parts.push(format!("{}=debug", selector_target(sel)));
            }
        }
    }
    parts.join(",")
}

/// Installs the global subscriber (once; later calls are ignored). A log directory that
/// cannot be written is an error, as in libbeat.
pub fn init(s: &LogSettings) -> Result<(), String> {
    // The Kafka client logs every connection and leader lookup at info; the kafka output
    // logs what matters in libbeat's words.
    let mut directives = filter_directives(s);
    if !directives.starts_with("error") {
        directives.push_str(",rskafka=warn");
    }
    let filter = EnvFilter::try_new(directives).unwrap_or_else(|_| EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .event_format(EcsJson);
    match &s.files {
        Some(f) => {
            let files = Rotator::open(RotatorConfig {
                dir: f.path.clone(),
                prefix: f.name.clone(),
                max_size: f.rotate_every_bytes,
                keep: f.keep_files,
                permissions: f.permissions,
                rotate_on_startup: f.rotate_on_startup,
            })
            .map_err(|e| {
                format!(
                    "failed to create the log directory or file in '{}': {e}",
                    f.path.display()
                )
            })?;
            let _ = builder.with_writer(Mutex::new(files)).try_init();
        }
        None => {
            let _ = builder.with_writer(std::io::stderr).try_init();
        }
    }
    Ok(())
}

/// libbeat-style ECS JSON lines.
pub struct EcsJson;

struct Fields(serde_json::Map<String, serde_json::Value>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // The metrics logger hands its `monitoring` object over as JSON text (`%` = Display).
        if field.name() == "monitoring" {
            if let Ok(v) = serde_json::from_str(&format!("{value:?}")) {
                self.0.insert("monitoring".into(), v);
                return;
            }
        }
        self.0.insert(
            field.name().to_string(),
            serde_json::Value::String(format!("{value:?}")),
        );
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        // The metrics logger hands its `monitoring` object over as JSON text.
        if field.name() == "monitoring" {
            if let Ok(v) = serde_json::from_str(value) {
                self.0.insert("monitoring".into(), v);
                return;
            }
        }
        self.0.insert(
            field.name().to_string(),
            serde_json::Value::String(value.to_string()),
        );
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_string(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_string(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_string(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_string(), value.into());
    }
}

/// The logger name libbeat would print for a module path (`packetbeat::protos::http` → `http`).
pub fn logger_name(target: &str) -> &str {
    match target.rsplit("::").next() {
        Some("beater") => "beat",
        Some("publish") => "publisher",
        Some(last) => last,
        None => target,
    }
}

impl<S, N> FormatEvent<S, N> for EcsJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut fields = Fields(serde_json::Map::new());
        event.record(&mut fields);
        let level = match *meta.level() {
            tracing::Level::ERROR => "error",
            tracing::Level::WARN => "warn",
            tracing::Level::INFO => "info",
            _ => "debug",
        };
        // Written field by field to keep libbeat's order (level, time, logger, origin, message).
        let js = |v: &serde_json::Value| v.to_string();
        let mut line = String::from("{");
        line.push_str(&format!("\"log.level\":{}", js(&level.into())));
        let ts = chrono::Utc::now()
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string();
        line.push_str(&format!(",\"@timestamp\":{}", js(&ts.into())));
        line.push_str(&format!(
            ",\"log.logger\":{}",
            js(&logger_name(meta.target()).into())
        ));
        if let (Some(file), Some(l)) = (meta.file(), meta.line()) {
            line.push_str(&format!(
                ",\"log.origin\":{}",
                serde_json::json!({"file.name": file, "file.line": l})
            ));
        }
        let message = fields
            .0
            .remove("message")
            .unwrap_or(serde_json::Value::String(String::new()));
        line.push_str(&format!(",\"message\":{}", js(&message)));
        for (k, v) in &fields.0 {
            line.push_str(&format!(",{}:{}", js(&k.as_str().into()), js(v)));
        }
        line.push_str(",\"service.name\":\"packetbeat\",\"ecs.version\":\"1.6.0\"}");
        writeln!(writer, "{line}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(e: bool, v: bool, d: &[&str], level: &str, sel: &[&str]) -> String {
        filter_directives(&LogSettings {
            to_stderr: e,
            verbose: v,
            debug_selectors: d.iter().map(|x| x.to_string()).collect(),
            level: level.into(),
            selectors: sel.iter().map(|x| x.to_string()).collect(),
            files: None,
        })
    }

    fn y(s: &str) -> serde_yaml::Value {
        serde_yaml::from_str(s).unwrap()
    }

    #[test]
    fn files_by_default_with_libbeats_defaults() {
        let logs = std::path::Path::new("/var/log/pb");
        let f = file_settings(&y("{}"), logs, false).unwrap().unwrap();
        assert_eq!(
            f,
            FileLogSettings {
                path: logs.into(),
                name: "packetbeat".into(),
                rotate_every_bytes: 10 * 1024 * 1024,
                keep_files: 8,
                permissions: 0o600,
                rotate_on_startup: true,
            }
        );
        assert_eq!(file_settings(&y("{}"), logs, true).unwrap(), None);
        assert_eq!(
            file_settings(&y("logging: {to_files: false}"), logs, false).unwrap(),
            None
        );
        let f = file_settings(
            &y("logging: {files: {path: /tmp/l, name: pb, keepfiles: 2, rotateeverybytes: 100, permissions: '0640', rotateonstartup: false}}"),
            logs,
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!(f.path, PathBuf::from("/tmp/l"));
        assert_eq!(
            (f.name.as_str(), f.keep_files, f.rotate_every_bytes),
            ("pb", 3, 100)
        );
        assert_eq!((f.permissions, f.rotate_on_startup), (0o640, false));
        assert!(
            file_settings(&y("logging: {files: {keepfiles: 2000}}"), logs, false)
                .unwrap_err()
                .contains("<= 1024")
        );
        assert!(file_settings(&y("logging: {to_files: maybe}"), logs, false).is_err());
    }

    #[test]
    fn quiet_by_default_info_with_e_or_v() {
        assert_eq!(s(false, false, &[], "", &[]), "warn");
        assert_eq!(s(true, false, &[], "", &[]), "info");
        assert_eq!(s(false, true, &[], "", &[]), "info");
        assert_eq!(s(true, false, &[], "error", &[]), "error");
    }

    #[test]
    fn debug_selectors() {
        assert_eq!(
            s(true, false, &["http,tcp"], "", &[]),
            "info,packetbeat::protos::http=debug,packetbeat::protos::tcp=debug"
        );
        assert_eq!(s(true, false, &["*"], "", &[]), "info,packetbeat=debug");
        assert_eq!(
            s(true, false, &[], "debug", &["publisher"]),
            "info,packetbeat::publish=debug"
        );
        assert_eq!(s(true, false, &[], "debug", &[]), "info,packetbeat=debug");
    }

    #[test]
    fn logger_names() {
        assert_eq!(logger_name("packetbeat::protos::http"), "http");
        assert_eq!(logger_name("packetbeat::beater"), "beat");
    }
}
