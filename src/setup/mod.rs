//! Index management and Kibana assets, generated from the embedded `fields/` as libbeat generates
//! them: the composable index template (`template`), the lifecycle policy (`ilm`) and the Kibana
//! index pattern (`index_pattern`). The `export template|ilm-policy|index-pattern` commands print
//! them; the Elasticsearch output installs the template and policy with the same functions.
//!
//! [`SetupConfig`] reads `setup.template.*`, `setup.ilm.*`, `setup.dsl.*` and
//! `migration.6_to_7.*` from the raw configuration tree with libbeat's defaults.

pub mod fields;
pub mod ilm;
pub mod index_pattern;
pub mod kibana;
pub mod template;

use crate::common::fmtstr::{FormatString, NoFields};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// The beat name, index prefix and version the assets are generated for.
#[derive(Debug, Clone)]
pub struct BeatInfo {
    pub beat: String,
    pub index_prefix: String,
    pub version: String,
}

impl Default for BeatInfo {
    fn default() -> Self {
        BeatInfo {
            beat: "packetbeat".into(),
            index_prefix: "packetbeat".into(),
            version: crate::BEAT_VERSION.into(),
        }
    }
}

/// An Elasticsearch (or beat) version as libbeat's `version.V` reads it:
/// `MAJOR.MINOR.BUGFIX[-META]`, compared with libbeat's `LessThan`.
#[derive(Debug, Clone, PartialEq)]
pub struct Version {
    raw: String,
    pub major: i64,
    pub minor: i64,
    pub bugfix: i64,
    pub meta: String,
}

impl Version {
    pub fn parse(s: &str) -> Result<Version, String> {
        let (nums, meta) = match s.split_once('-') {
            Some((n, m)) => (n, m.split('-').next().unwrap_or("").to_string()),
            None => (s, String::new()),
        };
        let parts: Vec<&str> = nums.split('.').collect();
        if parts.len() != 3 {
            return Err(format!("passed version is not semver: {nums}"));
        }
        let num = |i: usize, what: &str| {
            parts[i]
                .parse::<i64>()
                .map_err(|_| format!("could not convert {what} to integer: {}", parts[i]))
        };
        Ok(Version {
            raw: s.to_string(),
            major: num(0, "major")?,
            minor: num(1, "minor")?,
            bugfix: num(2, "bugfix")?,
            meta,
        })
    }

    /// libbeat's `LessThan`, including its quirk: with a smaller bugfix and the same minor it
    /// answers `true` whatever the majors (`8.0.0 < 7.0.5`); no threshold libbeat compares with
    /// meets it with a real Elasticsearch version.
    pub fn less_than(&self, o: &Version) -> bool {
        if self.major < o.major || (self.major == o.major && self.minor < o.minor) {
            return true;
        }
        self.minor == o.minor && self.bugfix < o.bugfix
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }
}

/// `setup.template.*`.
#[derive(Debug, Clone)]
pub struct TemplateConfig {
    pub enabled: bool,
    pub name: String,
    pub pattern: String,
    pub fields: String,
    pub json_enabled: bool,
    pub json_path: String,
    pub json_name: String,
    pub json_data_stream: bool,
    pub append_fields: Vec<fields::Field>,
    pub overwrite: bool,
    pub settings_index: Map<String, Value>,
    pub settings_source: Map<String, Value>,
    pub settings_lifecycle: Map<String, Value>,
    pub priority: i64,
}

impl TemplateConfig {
    /// libbeat's `template.DefaultConfig`: name and pattern `packetbeat-<version>`, priority 150.
    pub fn defaults(info: &BeatInfo) -> TemplateConfig {
        TemplateConfig {
            enabled: true,
            name: format!("{}-{}", info.beat, info.version),
            pattern: format!("{}-{}", info.beat, info.version),
            fields: String::new(),
            json_enabled: false,
            json_path: String::new(),
            json_name: String::new(),
            json_data_stream: false,
            append_fields: Vec::new(),
            overwrite: false,
            settings_index: Map::new(),
            settings_source: Map::new(),
            settings_lifecycle: Map::new(),
            priority: 150,
        }
    }
}

/// The lifecycle sections as given (`setup.ilm`, `setup.dsl`), kept raw because libbeat decides
/// from their presence and their `enabled` key which defaults apply.
#[derive(Debug, Clone, Default)]
pub struct LifecycleRaw {
    pub ilm: Option<serde_yaml::Value>,
    pub dsl: Option<serde_yaml::Value>,
}

/// go-ucfg's `(*C).Enabled()`: absent is false; present is true unless `enabled: false`.
pub fn section_enabled(v: Option<&serde_yaml::Value>) -> bool {
    match v {
        None => false,
        Some(v) => match v.get("enabled") {
            None => true,
            Some(e) => e.as_bool().unwrap_or_else(|| e.as_str() == Some("true")),
        },
    }
}

fn has_enabled(v: Option<&serde_yaml::Value>) -> bool {
    v.is_some_and(|v| v.get("enabled").is_some())
}

/// Everything index management reads from the configuration.
#[derive(Debug, Clone)]
pub struct SetupConfig {
    pub info: BeatInfo,
    pub template: TemplateConfig,
    pub lifecycle: LifecycleRaw,
    /// `migration.6_to_7.enabled`.
    pub migration: bool,
    /// libbeat's index support "lifecycles enabled": a lifecycle section is enabled, or neither
    /// says `enabled` at all.
    pub lifecycles_enabled: bool,
    /// `path.config`: relative `setup.template.fields` and `json.path` resolve against it.
    pub config_dir: PathBuf,
    /// `output.elasticsearch.index`, when the Elasticsearch output is the configured one.
    pub es_index: Option<String>,
}

fn to_json(v: &serde_yaml::Value) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// A scalar at `key` of a config section, as go-ucfg reads a string (`at` names the section).
pub(crate) fn get_str(
    v: &serde_yaml::Value,
    key: &str,
    at: &str,
) -> Result<Option<String>, String> {
    match v.get(key) {
        None | Some(serde_yaml::Value::Null) => Ok(None),
        Some(x) => fields::as_string(x, &format!("{at}.{key}")).map(Some),
    }
}

/// A boolean at `key` of a config section.
pub(crate) fn get_bool(v: &serde_yaml::Value, key: &str, at: &str) -> Result<Option<bool>, String> {
    match v.get(key) {
        None | Some(serde_yaml::Value::Null) => Ok(None),
        Some(x) => fields::as_bool(x, &format!("{at}.{key}")).map(Some),
    }
}

fn get_map(v: &serde_yaml::Value, key: &str, at: &str) -> Result<Map<String, Value>, String> {
    match v.get(key) {
        None | Some(serde_yaml::Value::Null) => Ok(Map::new()),
        Some(m @ serde_yaml::Value::Mapping(_)) => match to_json(m) {
            Value::Object(o) => Ok(o),
            _ => Ok(Map::new()),
        },
        Some(_) => Err(format!(
            "required 'object', but found a scalar in field '{at}.{key}'"
        )),
    }
}

impl SetupConfig {
    /// Reads the settings from the configuration tree (after `-E` overrides and variable
    /// expansion); `config_dir` is `path.config`.
    pub fn from_tree(root: &serde_yaml::Value, config_dir: &Path) -> Result<SetupConfig, String> {
        let info = BeatInfo::default();
        let mut t = TemplateConfig::defaults(&info);
        if let Some(s) = crate::config::types::lookup(root, "setup.template") {
            let at = "setup.template";
            if let Some(b) = get_bool(s, "enabled", at)? {
                t.enabled = b;
            }
            if let Some(v) = get_str(s, "name", at)? {
                t.name = v;
            }
            if let Some(v) = get_str(s, "pattern", at)? {
                t.pattern = v;
            }
            if let Some(v) = get_str(s, "fields", at)? {
                t.fields = v;
            }
            if let Some(j) = s.get("json") {
                let at = "setup.template.json";
                t.json_enabled = get_bool(j, "enabled", at)?.unwrap_or(false);
                t.json_path = get_str(j, "path", at)?.unwrap_or_default();
                t.json_name = get_str(j, "name", at)?.unwrap_or_default();
                t.json_data_stream = get_bool(j, "data_stream", at)?.unwrap_or(false);
            }
            if let Some(a) = s.get("append_fields") {
                t.append_fields = fields::from_config_list(a, "setup.template.append_fields")
                    .map_err(|e| format!("error unpacking template config: {e}"))?;
            }
            if let Some(b) = get_bool(s, "overwrite", at)? {
                t.overwrite = b;
            }
            if let Some(st) = s.get("settings") {
                let at = "setup.template.settings";
                t.settings_index = get_map(st, "index", at)?;
                t.settings_source = get_map(st, "_source", at)?;
                t.settings_lifecycle = get_map(st, "lifecycle", at)?;
            }
            if let Some(p) = s.get("priority") {
                t.priority = p
                    .as_i64()
                    .or_else(|| p.as_str().and_then(|s| s.parse().ok()))
                    .ok_or("type mismatch accessing 'setup.template.priority'")?;
            }
        }
        let lifecycle = LifecycleRaw {
            ilm: crate::config::types::lookup(root, "setup.ilm").cloned(),
            dsl: crate::config::types::lookup(root, "setup.dsl").cloned(),
        };
        let lifecycles_enabled = section_enabled(lifecycle.dsl.as_ref())
            || section_enabled(lifecycle.ilm.as_ref())
            || (!has_enabled(lifecycle.dsl.as_ref()) && !has_enabled(lifecycle.ilm.as_ref()));
        let migration = section_enabled(crate::config::types::lookup(root, "migration.6_to_7"));
        let es_index = crate::config::types::lookup(root, "output.elasticsearch")
            .filter(|es| section_enabled(Some(es)))
            .map(|es| get_str(es, "index", "output.elasticsearch"))
            .transpose()?
            .flatten();
        Ok(SetupConfig {
            info,
            template: t,
            lifecycle,
            migration,
            lifecycles_enabled,
            config_dir: config_dir.to_path_buf(),
            es_index,
        })
    }

    /// The defaults alone (no configuration).
    pub fn defaults() -> SetupConfig {
        SetupConfig::from_tree(
            &serde_yaml::Value::Mapping(Default::default()),
            Path::new("."),
        )
        .expect("defaults are valid")
    }

    /// libbeat's `checkTemplateESSettings`: a custom `output.elasticsearch.index` needs the
    /// template's name and pattern.
    pub fn check_es_settings(
        &self,
        raw_template: Option<&serde_yaml::Value>,
    ) -> Result<(), String> {
        let Some(index) = &self.es_index else {
            return Ok(());
        };
        if index.is_empty() || !self.template.enabled {
            return Ok(());
        }
        let set = |k: &str| {
            raw_template
                .and_then(|t| t.get(k))
                .and_then(|v| v.as_str())
                .is_some_and(|s| !s.is_empty())
        };
        if !(set("name") && set("pattern")) {
            return Err(
                "setup.template.name and setup.template.pattern have to be set if index name is modified"
                    .into(),
            );
        }
        Ok(())
    }

    /// A path of the configuration, resolved against `path.config` when relative.
    pub fn resolve(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.config_dir.join(p)
        }
    }
}

/// libbeat's event format strings (`fmtstr`) over the static beat fields (`beat.*`, `agent.*`,
/// `observer.*`, each with `name` and `version`): `%{[agent.version]}`, with an optional
/// `:default`. Timestamp formats (`%{+yyyy.MM.dd}`) depend on the event time and are refused
/// here, where no event exists.
pub fn format_static(fmt: &str, info: &BeatInfo) -> Result<String, String> {
    let f = FormatString::compile_resolving(fmt, |key| match key {
        "beat.name" | "agent.name" | "observer.name" => Some(info.beat.clone()),
        "beat.version" | "agent.version" | "observer.version" => Some(info.version.clone()),
        _ => None,
    })?;
    if f.reads_time() {
        return Err(format!(
            "the timestamp format in '{fmt}' needs an event; use a fixed name"
        ));
    }
    f.run(crate::common::Ts(0), &NoFields)
}

/// Go's `json.MarshalIndent(v, "", "  ")` layout (what libbeat's `StringToPrint` prints), with
/// Go's escaping of `<`, `>` and `&`.
pub fn to_go_json_pretty(v: &Value) -> String {
    go_escape(serde_json::to_string_pretty(v).expect("JSON value serialises"))
}

/// Go's `json.Marshal` layout (compact), with Go's escaping.
pub fn to_go_json(v: &Value) -> String {
    go_escape(serde_json::to_string(v).expect("JSON value serialises"))
}

fn go_escape(s: String) -> String {
    // These characters only occur inside JSON strings, where Go writes them as \u escapes.
    if !s.contains(['<', '>', '&', '\u{2028}', '\u{2029}']) {
        return s;
    }
    s.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// mapstr's `Put` of a dotted key: intermediate objects are created; a non-object on the way
/// makes it fail (libbeat ignores that failure, and so do the callers).
pub(crate) fn put_path(m: &mut Map<String, Value>, key: &str, value: Value) -> bool {
    let mut parts = key.split('.').peekable();
    let mut cur = m;
    while let Some(p) = parts.next() {
        if parts.peek().is_none() {
            cur.insert(p.to_string(), value);
            return true;
        }
        let next = cur
            .entry(p.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        match next {
            Value::Object(o) => cur = o,
            _ => return false,
        }
    }
    false
}

/// mapstr's `GetValue` of a dotted key.
pub(crate) fn get_path<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    let mut parts = key.split('.');
    let first = parts.next()?;
    let mut cur = m.get(first)?;
    for p in parts {
        cur = cur.as_object()?.get(p)?;
    }
    Some(cur)
}

/// mapstr's `DeepUpdate`: objects merge recursively, anything else is replaced.
pub(crate) fn deep_update(base: &mut Map<String, Value>, overlay: &Map<String, Value>) {
    for (k, v) in overlay {
        match (base.get_mut(k), v) {
            (Some(Value::Object(b)), Value::Object(o)) => deep_update(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_as_libbeat() {
        let v = |s| Version::parse(s).unwrap();
        assert!(v("7.5.0").less_than(&v("7.6.0")));
        assert!(!v("7.6.0").less_than(&v("7.6.0")));
        assert!(v("6.8.0").less_than(&v("7.0.0")));
        assert!(!v("8.17.2").less_than(&v("7.14.0")));
        assert_eq!(v("8.0.0-SNAPSHOT").meta, "SNAPSHOT");
        assert_eq!(v("8.0.0-SNAPSHOT").as_str(), "8.0.0-SNAPSHOT");
        assert_eq!(
            Version::parse("8.0").unwrap_err(),
            "passed version is not semver: 8.0"
        );
        assert!(Version::parse("8.x.0").is_err());
    }

    #[test]
    fn format_strings() {
        let i = BeatInfo::default();
        assert_eq!(
            format_static("pb-%{[agent.version]}-x", &i).unwrap(),
            format!("pb-{}-x", crate::BEAT_VERSION)
        );
        assert_eq!(format_static("%{[beat.name]}", &i).unwrap(), "packetbeat");
        assert_eq!(format_static("%{[nope]:dflt}", &i).unwrap(), "dflt");
        assert!(format_static("%{[nope]}", &i).is_err());
        assert!(format_static("x-%{+yyyy.MM.dd}", &i).is_err());
    }

    #[test]
    fn config_sections() {
        let tree = crate::config::parse_yaml(
            "setup.template.name: n\nsetup.template.settings.index.number_of_shards: 2\nsetup.ilm.enabled: false\n",
        )
        .unwrap();
        let c = SetupConfig::from_tree(&tree, Path::new("/etc/pb")).unwrap();
        assert_eq!(c.template.name, "n");
        assert_eq!(
            c.template.pattern,
            format!("packetbeat-{}", crate::BEAT_VERSION)
        );
        assert_eq!(c.template.settings_index["number_of_shards"], 2);
        assert!(!c.lifecycles_enabled);
        assert!(!c.migration);
        let d = SetupConfig::defaults();
        assert!(d.lifecycles_enabled && d.template.enabled && d.template.priority == 150);
    }

    #[test]
    fn go_json_escapes() {
        let v = serde_json::json!({"a": "<&>"});
        assert_eq!(to_go_json(&v), r#"{"a":"\u003c\u0026\u003e"}"#);
    }
}
