//! libbeat's processors and conditions (`processors:` lists, `when`, `if`/`then`/`else`).
//!
//! Processors are built once at start from the config (global `processors`, each protocol's
//! `packetbeat.protocols[].processors`, `packetbeat.flows.processors`) and shared by the packet
//! workers. They work on a tree ([`ProcEvent`]: `@timestamp`, `@metadata` and the fields as
//! `serde_json` maps), which the pipeline builds only for events that reach a processor: with
//! no processors configured, events keep their direct-written form (see `pipeline.rs`).
//!
//! Names, options, defaults, error wording and semantics follow libbeat 8
//! (`libbeat/processors/**`, `libbeat/conditions/*`). One file per processor family:
//! `fields.rs` (editing fields), `decode.rs` (decoding and deriving values), `metadata.rs`
//! (host, cloud, container, process and DNS enrichment, rate limiting).

pub mod conditions;
pub mod decode;
pub mod fields;
pub mod metadata;
pub mod opts;

use crate::common::Ts;
use crate::publish::event::{Map, MapExt};
use conditions::Condition;
pub use opts::Opts;
use serde_json::Value;
use serde_yaml::Value as Yaml;
use std::sync::Arc;

/// An event as processors see it: libbeat's `beat.Event` (`Timestamp`, `Meta`, `Fields`).
#[derive(Debug, Clone)]
pub struct ProcEvent {
    pub timestamp: Ts,
    /// `@metadata` (always an object).
    pub meta: Value,
    pub fields: Map,
}

impl ProcEvent {
    pub fn new(timestamp: Ts, meta: Map, fields: Map) -> ProcEvent {
        ProcEvent {
            timestamp,
            meta: Value::Object(meta),
            fields,
        }
    }

    /// `beat.Event.GetValue`: `@metadata` and `@metadata.*` read the metadata. `@timestamp` is
    /// not a field of the tree: see [`ProcEvent::get_owned`].
    pub fn get(&self, key: &str) -> Option<&Value> {
        if let Some(rest) = key.strip_prefix("@metadata") {
            if rest.is_empty() {
                return Some(&self.meta);
            }
            let sub = rest.strip_prefix('.')?;
            return self.meta.as_object()?.get_path(sub);
        }
        self.fields.get_path(key)
    }

    /// `get`, with `@timestamp` as its RFC 3339 text.
    pub fn get_owned(&self, key: &str) -> Option<Value> {
        if key == "@timestamp" {
            return Some(Value::from(crate::common::time::format_rfc3339_nanos(
                self.timestamp,
            )));
        }
        self.get(key).cloned()
    }

    pub fn has(&self, key: &str) -> bool {
        key == "@timestamp" || self.get(key).is_some()
    }

    /// `beat.Event.PutValue`: `@timestamp` takes a time (RFC 3339 text), `@metadata.*` goes to
    /// the metadata. Returns an error only for a `@timestamp` that is not a time.
    pub fn put(&mut self, key: &str, v: Value) -> Result<(), String> {
        if key == "@timestamp" {
            let ts = match &v {
                Value::String(s) => crate::common::time::parse_rfc3339(s),
                _ => None,
            };
            return match ts {
                Some(t) => {
                    self.timestamp = t;
                    Ok(())
                }
                None => Err(format!(
                    "failed to set @timestamp: value of type {} is not a time",
                    type_name(&v)
                )),
            };
        }
        if let Some(rest) = key.strip_prefix("@metadata") {
            if rest.is_empty() {
                if let Value::Object(_) = v {
                    self.meta = v;
                    return Ok(());
                }
                return Err("@metadata must be an object".into());
            }
            if let (Some(sub), Some(m)) = (rest.strip_prefix('.'), self.meta.as_object_mut()) {
                m.put(sub, v);
                return Ok(());
            }
        }
        self.fields.put(key, v);
        Ok(())
    }

    /// `beat.Event.Delete`.
    pub fn delete(&mut self, key: &str) -> Option<Value> {
        if let Some(rest) = key.strip_prefix("@metadata") {
            if rest.is_empty() {
                return Some(std::mem::replace(&mut self.meta, Value::Object(Map::new())));
            }
            if let Some(sub) = rest.strip_prefix('.') {
                return self.meta.as_object_mut()?.delete_path(sub);
            }
        }
        self.fields.delete_path(key)
    }
}

/// Go's `%T`-like name of a JSON value's type, for messages.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "mapstr.M",
    }
}

/// What a processor did with an event.
pub type Outcome = Result<bool, String>;

/// One processor. `run` returns `Ok(false)` to drop the event, `Err` when it failed (the event
/// goes on, as libbeat's pipeline does; processors with `fail_on_error` restore what they
/// changed before failing).
pub trait Processor: Send + Sync {
    fn run(&self, event: &mut ProcEvent) -> Outcome;
    fn describe(&self) -> String;
}

/// A processor with a `when` condition (libbeat's `WhenProcessor`).
struct When {
    cond: Condition,
    inner: Box<dyn Processor>,
}

impl Processor for When {
    fn run(&self, event: &mut ProcEvent) -> Outcome {
        if self.cond.check(event) {
            self.inner.run(event)
        } else {
            Ok(true)
        }
    }
    fn describe(&self) -> String {
        format!("{}, condition={}", self.inner.describe(), self.cond)
    }
}

/// `if` / `then` / `else`.
struct IfThenElse {
    cond: Condition,
    then: List,
    els: Option<List>,
}

impl Processor for IfThenElse {
    fn run(&self, event: &mut ProcEvent) -> Outcome {
        if self.cond.check(event) {
            self.then.run_strict(event)
        } else if let Some(e) = &self.els {
            e.run_strict(event)
        } else {
            Ok(true)
        }
    }
    fn describe(&self) -> String {
        let e = self.els.as_ref().map(|e| e.describe()).unwrap_or_default();
        format!("if {} then {} else {}", self.cond, self.then.describe(), e)
    }
}

/// A list of processors, run in order.
#[derive(Clone, Default)]
pub struct List {
    list: Vec<Arc<dyn Processor>>,
}

impl std::fmt::Debug for List {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "processors=[{}]", self.describe())
    }
}

impl List {
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// The pipeline's way (`processing.group`): an error is logged and the event goes on.
    /// Returns false when the event was dropped.
    pub fn run(&self, event: &mut ProcEvent) -> bool {
        for p in &self.list {
            match p.run(event) {
                Ok(true) => {}
                Ok(false) => return false,
                Err(e) => {
                    tracing::debug!(target: "processors", "Hit an error in processor {}: {e}", p.describe());
                }
            }
        }
        true
    }

    /// `processors.Processors.Run` (the lists inside `then`/`else`): the first error ends the
    /// list.
    fn run_strict(&self, event: &mut ProcEvent) -> Outcome {
        for p in &self.list {
            match p.run(event) {
                Ok(true) => {}
                Ok(false) => return Ok(false),
                Err(e) => return Err(format!("failed applying processor {}: {e}", p.describe())),
            }
        }
        Ok(true)
    }

    pub fn describe(&self) -> String {
        self.list
            .iter()
            .map(|p| p.describe())
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn push(&mut self, p: Arc<dyn Processor>) {
        self.list.push(p);
    }
}

type Constructor = fn(&Opts) -> Result<Box<dyn Processor>, String>;

/// Every processor this build knows, by its libbeat name.
const REGISTRY: &[(&str, Constructor)] = &[
    ("add_cloud_metadata", metadata::add_cloud_metadata),
    ("add_docker_metadata", metadata::add_docker_metadata),
    ("add_fields", fields::add_fields),
    ("add_host_metadata", metadata::add_host_metadata),
    ("add_id", decode::add_id),
    ("add_kubernetes_metadata", metadata::add_kubernetes_metadata),
    ("add_labels", fields::add_labels),
    ("add_locale", decode::add_locale),
    ("add_network_direction", decode::add_network_direction),
    ("add_observer_metadata", metadata::add_observer_metadata),
    ("add_process_metadata", metadata::add_process_metadata),
    ("add_tags", fields::add_tags),
    ("community_id", decode::community_id),
    ("convert", fields::convert),
    ("copy_fields", fields::copy_fields),
    ("decode_base64_field", decode::decode_base64_field),
    ("decode_json_fields", decode::decode_json_fields),
    ("decompress_gzip_field", decode::decompress_gzip_field),
    ("detect_mime_type", decode::detect_mime_type),
    ("dissect", decode::dissect),
    ("dns", metadata::dns),
    ("drop_event", fields::drop_event),
    ("drop_fields", fields::drop_fields),
    ("extract_array", fields::extract_array),
    ("fingerprint", decode::fingerprint),
    ("include_fields", fields::include_fields),
    ("lowercase", fields::lowercase),
    ("move_fields", fields::move_fields),
    ("rate_limit", metadata::rate_limit),
    ("registered_domain", decode::registered_domain),
    ("rename", fields::rename),
    ("replace", fields::replace),
    ("script", script),
    ("timestamp", decode::timestamp),
    ("truncate_fields", fields::truncate_fields),
    ("uppercase", fields::uppercase),
    ("urldecode", fields::urldecode),
];

/// libbeat processors this build does not provide; named in the error.
fn script(o: &Opts) -> Result<Box<dyn Processor>, String> {
    Err(format!(
        "the processor action script (at '{}') is not supported by packetbeat-rs: it has no embedded JavaScript engine",
        o.path()
    ))
}

/// The names of every processor this build knows.
pub fn known() -> impl Iterator<Item = &'static str> {
    REGISTRY.iter().map(|(n, _)| *n)
}

/// Builds a `processors` list from its config; `path` is where it is in the config (for
/// messages, e.g. `processors` or `packetbeat.protocols.http.processors`).
pub fn build(list: &[Yaml], path: &str) -> Result<List, String> {
    let mut out = List::default();
    for (i, item) in list.iter().enumerate() {
        let at = format!("{path}.{i}");
        out.push(Arc::from(build_one(item, &at)?));
    }
    Ok(out)
}

/// A `then`/`else` value: a list of processors or a single one.
fn build_nested(v: &Yaml, path: &str) -> Result<List, String> {
    match v {
        Yaml::Sequence(s) => build(s, path),
        other => {
            let mut l = List::default();
            l.push(Arc::from(build_one(other, path)?));
            Ok(l)
        }
    }
}

fn build_one(item: &Yaml, at: &str) -> Result<Box<dyn Processor>, String> {
    let Yaml::Mapping(m) = item else {
        return Err(format!(
            "required 'object', but found '{}' in field '{at}'",
            opts::yaml_kind(item)
        ));
    };
    if let Some(cond) = m.get("if") {
        let wrap = |e: String| format!("failed to make if/then/else processor: {e}");
        let then = m
            .get("then")
            .ok_or_else(|| wrap(format!("missing required field accessing '{at}.then'")))?;
        let cond = Condition::from_yaml(cond, &format!("{at}.if")).map_err(wrap)?;
        let then = build_nested(then, &format!("{at}.then")).map_err(wrap)?;
        let els = match m.get("else") {
            None | Some(Yaml::Null) => None,
            Some(e) => Some(build_nested(e, &format!("{at}.else")).map_err(wrap)?),
        };
        return Ok(Box::new(IfThenElse { cond, then, els }));
    }
    if m.len() != 1 {
        let names: Vec<String> = m.keys().map(opts::key_text).collect();
        return Err(format!(
            "each processor must have exactly one action, but found {} actions ({})",
            m.len(),
            names.join(",")
        ));
    }
    let (name, cfg) = m.iter().next().expect("one entry");
    let name = opts::key_text(name);
    let Some((_, ctor)) = REGISTRY.iter().find(|(n, _)| *n == name) else {
        return Err(format!(
            "the processor action {name} does not exist. Valid actions: {} (at '{at}')",
            known().collect::<Vec<_>>().join(", ")
        ));
    };
    let path = format!("{at}.{name}");
    let o = Opts::new(&name, &path, cfg)?;
    let p = ctor(&o)?;
    match o.raw("when") {
        None => Ok(p),
        Some(w) => {
            let cond = Condition::from_yaml(w, &format!("{path}.when"))?;
            Ok(Box::new(When { cond, inner: p }))
        }
    }
}

/// Builds the global `processors` (the start-up and `test config` check).
pub fn build_global(cfg: &crate::config::Config) -> Result<Option<Arc<List>>, String> {
    if cfg.processors.is_empty() {
        return Ok(None);
    }
    let list = build(&cfg.processors, "processors")
        .map_err(|e| format!("error initializing processors: {e}"))?;
    Ok(Some(Arc::new(list)))
}

/// Builds every `processors` list outside the protocol sections (those are built with their
/// analyzers): the global one and `packetbeat.flows.processors` (`test config`).
pub fn check(cfg: &crate::config::Config) -> Result<(), String> {
    build_global(cfg)?;
    if let Some(f) = &cfg.flows {
        build_section(&f.processors, "packetbeat.flows")?;
    }
    Ok(())
}

/// Builds a protocol's or the flows' `processors`, `None` when there are none.
pub fn build_section(list: &[Yaml], section: &str) -> Result<Option<Arc<List>>, String> {
    if list.is_empty() {
        return Ok(None);
    }
    let l = build(list, &format!("{section}.processors"))
        .map_err(|e| format!("error initializing processors: {e}"))?;
    Ok(Some(Arc::new(l)))
}

#[cfg(test)]
pub(crate) mod testutil {
    use super::*;

    /// Builds one processor from YAML such as `drop_fields: {fields: [a]}`.
    pub fn proc(yaml: &str) -> Result<List, String> {
        let v: Yaml = serde_yaml::from_str(yaml).expect("test yaml");
        match v {
            Yaml::Sequence(s) => build(&s, "processors"),
            other => build(&[other], "processors"),
        }
    }

    pub fn ev(json: &str) -> ProcEvent {
        let fields: Map = serde_json::from_str(json).expect("test json");
        ProcEvent::new(Ts(1_700_000_000_123_456_789), Map::new(), fields)
    }

    /// Runs `yaml` on `json`; `None` when dropped.
    pub fn run(yaml: &str, json: &str) -> Option<Value> {
        let l = proc(yaml).expect("processor builds");
        let mut e = ev(json);
        l.run(&mut e).then(|| Value::Object(e.fields))
    }

    pub fn err(yaml: &str) -> String {
        match proc(yaml) {
            Ok(_) => panic!("expected an error for {yaml}"),
            Err(e) => e,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use serde_json::json;

    #[test]
    fn unknown_processor_and_two_actions() {
        let e = err("foo: {}");
        assert!(
            e.starts_with("the processor action foo does not exist. Valid actions: "),
            "{e}"
        );
        assert!(e.contains("drop_fields"), "{e}");
        let e = err("{drop_event: {}, drop_fields: {fields: [a]}}");
        assert_eq!(
            e,
            "each processor must have exactly one action, but found 2 actions (drop_event,drop_fields)"
        );
        let e = err("script: {lang: javascript, source: 'function process(e){}'}");
        assert!(e.contains("script") && e.contains("not supported"), "{e}");
    }

    #[test]
    fn if_then_else() {
        let cfg = "if: {contains: {tags: forwarded}}\nthen: [{drop_fields: {fields: [host]}}]\nelse: {add_tags: {tags: [local]}}";
        assert_eq!(
            run(cfg, r#"{"tags":["forwarded"],"host":{"name":"x"}}"#),
            Some(json!({"tags":["forwarded"]}))
        );
        assert_eq!(
            run(cfg, r#"{"host":{"name":"x"}}"#),
            Some(json!({"host":{"name":"x"},"tags":["local"]}))
        );
        let e = err("if: {equals: {a: 1}}");
        assert_eq!(
            e,
            "failed to make if/then/else processor: missing required field accessing 'processors.0.then'"
        );
        let e = err("if: {foo: {a: 1}}\nthen: [{drop_event: {}}]");
        assert_eq!(
            e,
            "failed to make if/then/else processor: missing or invalid condition"
        );
    }

    #[test]
    fn when_and_metadata() {
        let l = proc("drop_event: {when: {equals: {'@metadata.op': delete}}}").unwrap();
        let mut e = ev(r#"{"a":1}"#);
        e.meta = json!({"op": "delete"});
        assert!(!l.run(&mut e));
        let mut e = ev(r#"{"a":1}"#);
        e.meta = json!({"op": "index"});
        assert!(l.run(&mut e));
        // Processors write into @metadata too.
        let l = proc("add_fields: {target: '@metadata', fields: {pipeline: p1}}").unwrap();
        let mut e = ev(r#"{"a":1}"#);
        assert!(l.run(&mut e));
        assert_eq!(e.meta, json!({"pipeline": "p1"}));
    }
}
