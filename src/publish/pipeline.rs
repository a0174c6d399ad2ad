//! Finalises events the way Packetbeat's publisher and libbeat's processing pipeline do:
//! drops invalid events, merges the common fields (`pb.Fields`), applies `ignore_outgoing`,
//! the protocol's own `fields`/`tags`/`index`, the global `fields`/`tags`, and the builtin
//! `agent.*`, `ecs.version` and `host.name`.
//!
//! With processors configured (globally or for the event's protocol), an event goes through
//! libbeat's order on a tree: the protocol's `fields`/`tags`, its processors, the builtins,
//! the global `fields`/`tags`, the global processors. Without them, nothing here builds a tree
//! unless the fields overlap (the fast path below).

use super::direction::Networks;
use super::event::{Builtin, Event, Map, MapExt};
use super::fields::Fields;
use super::processors::{List, ProcEvent};
use crate::config::Config;
use crate::protos::registry::ReporterMeta;
use serde_json::Value;
use std::collections::HashMap;
use std::net::IpAddr;

/// Identity of this Beat, written into every event.
#[derive(Debug, Clone)]
pub struct BeatInfo {
    pub name: String,
    pub id: String,
    pub ephemeral_id: String,
}

/// Counters of what the pipeline did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PipelineStats {
    pub published: u64,
    pub invalid: u64,
    pub ignored_outgoing: u64,
    pub dropped_by_processors: u64,
}

pub struct Pipeline {
    local_ips: Vec<IpAddr>,
    internal_networks: Networks,
    ignore_outgoing: bool,
    /// Each protocol's own metadata, with its tags and the global ones merged in advance.
    reporters: Vec<(&'static str, ReporterMeta, Vec<String>)>,
    /// The global tags, for events of no protocol section.
    global_only_tags: Vec<String>,
    global_fields: Option<Value>,
    global_fields_under_root: bool,
    global_tags: Vec<String>,
    /// The global `processors`, built once and shared by every worker's pipeline.
    processors: Option<std::sync::Arc<List>>,
    /// `agent.*`, `ecs.version`, `host.name`: the same for every event.
    builtin: std::sync::Arc<Builtin>,
    /// `packetbeat.procs`, when enabled (live capture only).
    procs: Option<crate::publish::procs::ProcWatcher>,
    pub stats: PipelineStats,
}

/// Top-level keys the common fields and the builtins write.
fn is_reserved(key: &str) -> bool {
    matches!(
        key,
        "agent"
            | "client"
            | "destination"
            | "ecs"
            | "error"
            | "event"
            | "host"
            | "network"
            | "related"
            | "server"
            | "source"
    )
}

/// Top-level keys the builtins write.
fn is_builtin(key: &str) -> bool {
    matches!(key, "agent" | "ecs" | "host")
}

fn value_has_reserved(v: Option<&Value>) -> bool {
    matches!(v, Some(Value::Object(m)) if m.keys().any(|k| is_reserved(k)))
}

impl Pipeline {
    pub fn new(
        cfg: &Config,
        reporters: HashMap<&'static str, ReporterMeta>,
        info: BeatInfo,
        processors: Option<std::sync::Arc<List>>,
    ) -> anyhow::Result<Pipeline> {
        let nets: Vec<String> = cfg
            .interfaces
            .iter()
            .flat_map(|i| i.internal_networks.iter().cloned())
            .collect();
        let internal_networks = Networks::parse(&nets)
            .map_err(|e| anyhow::anyhow!("packetbeat.interfaces.internal_networks: {e}"))?;
        let builtin = std::sync::Arc::new(Builtin::new(&info.name, &info.id, &info.ephemeral_id));
        let procs = procs_config(cfg)?;
        let reading_file = cfg.interfaces.first().is_some_and(|i| i.file.is_some());
        let procs = match reading_file {
            true => None,
            false => crate::publish::procs::ProcWatcher::new(&procs, local_ips()),
        };
        Ok(Pipeline {
            builtin,
            procs,
            local_ips: local_ips(),
            internal_networks,
            ignore_outgoing: cfg.ignore_outgoing
                || cfg.interfaces.iter().any(|i| i.ignore_outgoing),
            global_only_tags: merged_tags(&[], &cfg.tags),
            reporters: reporters
                .into_iter()
                .map(|(name, meta)| {
                    let tags = merged_tags(&meta.tags, &cfg.tags);
                    (name, meta, tags)
                })
                .collect(),
            global_fields: cfg.fields.clone(),
            global_fields_under_root: cfg.fields_under_root,
            global_tags: cfg.tags.clone(),
            processors,
            stats: PipelineStats::default(),
        })
    }

    /// For tests: a pipeline with fixed identity and no host addresses.
    pub fn for_tests(internal_networks: &[&str]) -> Pipeline {
        let nets: Vec<String> = internal_networks.iter().map(|s| s.to_string()).collect();
        Pipeline {
            builtin: std::sync::Arc::new(Builtin::new("test", "id", "eid")),
            procs: None,
            local_ips: Vec::new(),
            internal_networks: Networks::parse(&nets).expect("test networks"),
            ignore_outgoing: false,
            reporters: Vec::new(),
            global_only_tags: Vec::new(),
            global_fields: None,
            global_fields_under_root: false,
            global_tags: Vec::new(),
            processors: None,
            stats: PipelineStats::default(),
        }
    }

    /// Finalises one event; `None` when it is dropped (and counted).
    pub fn process(&mut self, mut event: Event) -> Option<Event> {
        // Packetbeat's validateEvent.
        if event.timestamp.is_zero()
            || !event
                .fields
                .get_raw("type")
                .is_some_and(|t| t.first() == Some(&b'"'))
        {
            tracing::warn!("Dropping invalid event: missing '@timestamp' or 'type'");
            self.stats.invalid += 1;
            return None;
        }
        let mut pb = event.pb.take();
        if let Some(pb) = pb.as_mut() {
            pb.compute_values(&self.local_ips, &self.internal_networks);
            if self.ignore_outgoing && pb.network.direction == Some("egress") {
                self.stats.ignored_outgoing += 1;
                return None;
            }
            if let Some(w) = self.procs.as_mut() {
                crate::publish::procs::enrich(w, pb, &mut event.fields);
            }
        }
        // Every protocol's events carry its name in `type` (ICMP events have no
        // `network.protocol`), so that finds the protocol section's own metadata.
        let (reporter, tags) = match event
            .fields
            .get_plain_str("type")
            .and_then(|t| self.reporters.iter().find(|(name, _, _)| *name == t))
        {
            Some((_, meta, tags)) => (Some(meta), tags),
            None => (None, &self.global_only_tags),
        };
        if self.processors.is_some() || reporter.is_some_and(|m| m.processors.is_some()) {
            let mut tree = event.fields.to_map();
            if let Some(pb) = pb.take() {
                pb.marshal(&mut tree);
            }
            let mut meta = std::mem::take(&mut event.meta);
            if let Some(m) = reporter {
                apply_fields(&mut tree, m.fields.as_ref(), m.fields_under_root);
                add_tags(&mut tree, &m.tags);
                if let Some(index) = &m.index {
                    meta.insert("raw_index".into(), Value::from(index.as_str()));
                }
            }
            let mut pe = ProcEvent::new(event.timestamp, meta, tree);
            if let Some(own) = reporter.and_then(|m| m.processors.as_ref()) {
                if !own.run(&mut pe) {
                    self.stats.dropped_by_processors += 1;
                    return None;
                }
            }
            self.builtin.put_into(&mut pe.fields);
            apply_fields(
                &mut pe.fields,
                self.global_fields.as_ref(),
                self.global_fields_under_root,
            );
            add_tags(&mut pe.fields, &self.global_tags);
            if let Some(global) = &self.processors {
                if !global.run(&mut pe) {
                    self.stats.dropped_by_processors += 1;
                    return None;
                }
            }
            event.timestamp = pe.timestamp;
            event.meta = match pe.meta {
                Value::Object(m) => m,
                _ => Map::new(),
            };
            event.fields = Fields::from_map(&pe.fields);
            event.builtin = None;
            self.stats.published += 1;
            return Some(event);
        }
        // Fast path: the common fields and the builtins go straight from their typed form into
        // the JSON (see `JsonCodec`), unless something else writes under the same top-level
        // keys.
        // An event without common fields (flows) only has to leave the builtins' keys free.
        let direct = !event.fields.any_top(if pb.is_some() {
            is_reserved
        } else {
            is_builtin
        }) && !(reporter
            .as_ref()
            .is_some_and(|m| m.fields_under_root && value_has_reserved(m.fields.as_ref())))
            && !(self.global_fields_under_root && value_has_reserved(self.global_fields.as_ref()));
        // `fields_under_root` merges maps deeply, and tags append to tags an analyzer set:
        // both are done on the tree.
        let on_tree = !direct
            || reporter.is_some_and(|m| m.fields_under_root && m.fields.is_some())
            || (self.global_fields_under_root && self.global_fields.is_some())
            || (!tags.is_empty() && event.fields.has_top("tags"));
        if on_tree {
            let mut tree = event.fields.to_map();
            if !direct {
                if let Some(pb) = pb.take() {
                    pb.marshal(&mut tree);
                }
            }
            if let Some(meta) = reporter {
                apply_fields(&mut tree, meta.fields.as_ref(), meta.fields_under_root);
                add_tags(&mut tree, &meta.tags);
            }
            apply_fields(
                &mut tree,
                self.global_fields.as_ref(),
                self.global_fields_under_root,
            );
            add_tags(&mut tree, &self.global_tags);
            event.fields = Fields::from_map(&tree);
        } else {
            // `fields.<key>` for the protocol's own fields, then the global ones (the later put
            // wins, as `apply_fields` does on the tree).
            let own = reporter.and_then(|m| m.fields.as_ref());
            for fields in [own, self.global_fields.as_ref()]
                .into_iter()
                .flatten()
                .filter_map(Value::as_object)
            {
                for (k, v) in fields {
                    event.fields.put_value(format!("fields.{k}"), v);
                }
            }
            if !tags.is_empty() {
                event.fields.put_strs("tags", tags);
            }
        }
        if let Some(index) = reporter.and_then(|m| m.index.as_ref()) {
            event
                .meta
                .insert("raw_index".into(), Value::from(index.as_str()));
        }
        if direct {
            event.pb = pb;
            event.builtin = Some(self.builtin.clone());
        } else {
            let mut tree = event.fields.to_map();
            self.builtin.put_into(&mut tree);
            event.fields = Fields::from_map(&tree);
        }
        self.stats.published += 1;
        Some(event)
    }
}

/// A protocol's tags then the global ones, each once (what `add_tags` gives on an event
/// without tags).
fn merged_tags(own: &[String], global: &[String]) -> Vec<String> {
    let mut t: Vec<String> = Vec::new();
    for tag in own.iter().chain(global) {
        if !t.contains(tag) {
            t.push(tag.clone());
        }
    }
    t
}

fn apply_fields(target: &mut Map, fields: Option<&Value>, under_root: bool) {
    let Some(Value::Object(fields)) = fields else {
        return;
    };
    if under_root {
        for (k, v) in fields {
            deep_update(target, k, v.clone());
        }
    } else {
        for (k, v) in fields {
            target.put(&format!("fields.{k}"), v.clone());
        }
    }
}

/// `mapstr.DeepUpdate`: maps merge, other values replace.
fn deep_update(target: &mut Map, key: &str, value: Value) {
    match (target.get_mut(key), value) {
        (Some(Value::Object(existing)), Value::Object(new)) => {
            for (k, v) in new {
                deep_update(existing, &k, v);
            }
        }
        (_, v) => {
            target.insert(key.to_string(), v);
        }
    }
}

fn add_tags(target: &mut Map, tags: &[String]) {
    if tags.is_empty() {
        return;
    }
    let entry = target
        .entry("tags")
        .or_insert_with(|| Value::Array(Vec::new()));
    if !entry.is_array() {
        *entry = Value::Array(Vec::new());
    }
    if let Value::Array(list) = entry {
        for t in tags {
            if !list.iter().any(|x| x.as_str() == Some(t)) {
                list.push(Value::from(t.as_str()));
            }
        }
    }
}

/// The host's own addresses, loopback excluded (for `network.direction`), in `getifaddrs` order.
pub fn local_ips() -> Vec<IpAddr> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    addrs
        .filter_map(|ifa| {
            ifa.address
                .as_ref()
                .and_then(crate::sniffer::devices::sockaddr_ip)
        })
        .filter(|ip| !ip.is_loopback())
        .collect()
}

/// `packetbeat.procs`, decoded with its key in errors.
pub fn procs_config(cfg: &Config) -> anyhow::Result<crate::publish::procs::ProcsConfig> {
    match crate::config::types::lookup(&cfg.raw, "packetbeat.procs") {
        None | Some(serde_yaml::Value::Null) => Ok(Default::default()),
        Some(v) => Ok(crate::config::types::decode(
            v,
            "packetbeat.procs",
            &cfg.source,
        )?),
    }
}

/// Loads or creates the persistent `agent.id` in `${path.data}/meta.json`, as libbeat does.
pub fn beat_info(cfg: &Config) -> BeatInfo {
    let ephemeral_id = uuid::Uuid::new_v4().to_string();
    let meta_path = cfg.paths.data.join("meta.json");
    let id = std::fs::read_to_string(&meta_path)
        .ok()
        .and_then(|s| serde_json::from_str::<Value>(&s).ok())
        .and_then(|v| v.get("uuid").and_then(|u| u.as_str()).map(str::to_string))
        .unwrap_or_else(|| {
            let id = uuid::Uuid::new_v4().to_string();
            let body = serde_json::json!({"uuid": id, "first_start": crate::common::Ts::now().to_rfc3339_millis()});
            let written = std::fs::create_dir_all(&cfg.paths.data)
                .and_then(|_| std::fs::write(&meta_path, body.to_string()));
            if let Err(e) = written {
                tracing::warn!("cannot persist agent.id in {}: {e}; using a new id for this run", meta_path.display());
            }
            id
        });
    BeatInfo {
        name: cfg.name.clone(),
        id,
        ephemeral_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::{Transport, Ts};
    use crate::publish::event::Endpoint;
    use crate::publish::json::JsonCodec;

    fn pipeline(yaml: &str) -> Pipeline {
        let yaml = format!("{yaml}\noutput.console.enabled: true\n");
        let cfg = crate::config::load_from_str(&yaml, "packetbeat.yml", &[]).unwrap();
        let modules = crate::protos::build_modules(&cfg.protocols, "packetbeat.yml").unwrap();
        let global = crate::publish::processors::build_global(&cfg).unwrap();
        let info = BeatInfo {
            name: "beat".into(),
            id: "id".into(),
            ephemeral_id: "eid".into(),
        };
        Pipeline::new(&cfg, modules.reporters, info, global).unwrap()
    }

    fn http_event(code: u64) -> Event {
        let mut e = Event::new(Ts(1_700_000_000_000_000_000));
        e.put("type", "http");
        e.put("http.response.status_code", code);
        let pb = e.pb();
        pb.set_source(Endpoint::new("10.0.0.1".parse().unwrap(), 40000));
        pb.set_destination(Endpoint::new("10.0.0.2".parse().unwrap(), 80));
        pb.network.transport = Some(Transport::Tcp);
        pb.network.protocol = "http";
        e
    }

    fn json(e: &Event) -> Value {
        serde_json::from_slice(&JsonCodec::default().encode(e)).unwrap()
    }

    #[test]
    fn no_processors_keeps_the_direct_form() {
        let mut p = pipeline("packetbeat.protocols: [{type: http, ports: [80]}]");
        let e = p.process(http_event(200)).unwrap();
        assert!(e.pb.is_some() && e.builtin.is_some());
    }

    #[test]
    fn libbeat_order_and_drops() {
        let mut p = pipeline(
            "tags: [g]\n\
             fields: {site: x}\n\
             packetbeat.protocols:\n\
             - type: http\n  ports: [80]\n  tags: [web]\n  index: idx\n  processors:\n\
             \x20 - add_fields: {target: '', fields: {saw_agent: false}, when: {has_fields: [agent.type]}}\n\
             \x20 - add_fields: {target: '', fields: {saw_own_tag: true}, when: {contains: {tags: web}}}\n\
             \x20 - add_fields: {target: '', fields: {saw_index: true}, when: {equals: {'@metadata.raw_index': idx}}}\n\
             \x20 - drop_event: {when: {equals: {http.response.status_code: 404}}}\n\
             processors:\n\
             - drop_fields: {fields: [agent.ephemeral_id, host]}\n\
             - add_fields: {target: '', fields: {saw_global: true}, when: {and: [{has_fields: [agent.type, fields.site]}, {contains: {tags: g}}]}}\n\
             - drop_event: {when: {range: {http.response.status_code.gte: 500}}}",
        );
        let e = p.process(http_event(200)).unwrap();
        assert!(e.pb.is_none());
        let j = json(&e);
        assert_eq!(j["saw_own_tag"], true);
        assert_eq!(j["saw_index"], true);
        assert!(
            j.get("saw_agent").is_none(),
            "protocol processors run before the builtins"
        );
        assert_eq!(j["saw_global"], true);
        assert!(j["agent"].get("ephemeral_id").is_none());
        assert_eq!(j["agent"]["type"], "packetbeat");
        assert!(j.get("host").is_none());
        assert_eq!(j["tags"], serde_json::json!(["web", "g"]));
        assert_eq!(j["@metadata"]["raw_index"], "idx");
        assert_eq!(j["client"]["ip"], "10.0.0.1");
        assert!(p.process(http_event(404)).is_none());
        assert!(p.process(http_event(503)).is_none());
        assert_eq!(p.stats.dropped_by_processors, 2);
        assert_eq!(p.stats.published, 1);
    }
}
