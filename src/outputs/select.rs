//! libbeat's output selectors (`libbeat/outputs/outil`): how an output names the target of one
//! event from a single format string (`index`, `pipeline`, `topic`, `key`) and a list of rules
//! (`indices`, `pipelines`, `topics`, `keys`).
//!
//! A rule is `{<key>: <format string>, default: …, mappings: {…}, when: <condition>}`. Rules are
//! tried in order, then the single format string; the first non-empty name wins. A rule whose
//! `when` does not hold gives nothing; a format string whose field is missing gives the rule's
//! `default` (or nothing); with `mappings`, the formatted text is looked up in the table (or the
//! `default`). Index and pipeline names are lower-cased, topics and keys kept as written, as
//! libbeat's `SelectorLowerCase`/`SelectorKeepCase`.
//!
//! Selectors that depend on the event read it as processors do ([`ProcEvent`]), built from the
//! encoded event only for such selectors: a fixed name costs nothing per event.

use crate::common::fmtstr::{version_field, FieldSource, FormatString};
use crate::common::Ts;
use crate::publish::event::Map;
use crate::publish::processors::conditions::Condition;
use crate::publish::processors::ProcEvent;
use serde_json::Value;
use serde_yaml::Value as Yaml;
use std::collections::HashMap;

/// How names are cased.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    Keep,
    Lower,
}

impl Case {
    fn apply(self, s: String) -> String {
        match self {
            Case::Keep => s,
            Case::Lower if s.bytes().any(|b| b.is_ascii_uppercase()) || !s.is_ascii() => {
                s.to_lowercase()
            }
            Case::Lower => s,
        }
    }
}

/// libbeat's `outil.Settings`.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// The single format string's option, and each rule's (`index`).
    pub key: &'static str,
    /// The rules' option (`indices`).
    pub multi_key: &'static str,
    /// Neither option set is an error.
    pub fail_empty: bool,
    pub case: Case,
}

enum Expr {
    Const(String),
    Fmt {
        f: FormatString,
        otherwise: String,
    },
    Map {
        from: FormatString,
        table: HashMap<String, String>,
        otherwise: String,
    },
    Cond {
        cond: Condition,
        inner: Box<Expr>,
    },
}

/// A compiled selector; [`Selector::select`] names one event's target.
pub struct Selector {
    exprs: Vec<Expr>,
    case: Case,
}

impl std::fmt::Debug for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Selector({} rules, {:?})", self.exprs.len(), self.case)
    }
}

fn yaml_str(v: &Yaml, path: &str) -> Result<String, String> {
    match v {
        Yaml::String(s) => Ok(s.clone()),
        Yaml::Number(n) => Ok(n.to_string()),
        Yaml::Bool(b) => Ok(b.to_string()),
        Yaml::Null => Ok(String::new()),
        _ => Err(format!("expected a string accessing '{path}'")),
    }
}

impl Selector {
    /// libbeat's `BuildSelectorFromConfig`: `single` is the `key` option's value when set,
    /// `rules` the `multi_key` option's; `path` names the section in errors
    /// (`output.elasticsearch`).
    pub fn build(
        single: Option<&str>,
        rules: Option<&Yaml>,
        s: &Settings,
        path: &str,
    ) -> Result<Selector, String> {
        let mut exprs = Vec::new();
        let rules = rules.filter(|r| !r.is_null());
        if let Some(rules) = rules {
            let rpath = format!("{path}.{}", s.multi_key);
            let Yaml::Sequence(list) = rules else {
                return Err(format!("expected a list of rules accessing '{rpath}'"));
            };
            for (i, rule) in list.iter().enumerate() {
                if let Some(e) = build_rule(rule, s.key, &format!("{rpath}.{i}"))? {
                    exprs.push(e);
                }
            }
        }
        if let Some(single) = single {
            let f = compile(single, &format!("{path}.{}", s.key))?;
            match f.constant() {
                Some(c) if c.is_empty() => {}
                Some(c) => exprs.push(Expr::Const(c)),
                None => exprs.push(Expr::Fmt {
                    f,
                    otherwise: String::new(),
                }),
            }
        } else if s.fail_empty && rules.is_none() {
            return Err(format!(
                "missing required '{}' or '{}' in {path}",
                s.key, s.multi_key
            ));
        }
        Ok(Selector {
            exprs,
            case: s.case,
        })
    }

    /// Names nothing for any event (no option set).
    pub fn is_empty(&self) -> bool {
        self.exprs.is_empty()
    }

    /// The name when it is the same for every event.
    pub fn constant(&self) -> Option<String> {
        match self.exprs.as_slice() {
            [Expr::Const(c)] => Some(self.case.apply(c.clone())),
            _ => None,
        }
    }

    /// Some rule reads the event's fields or a condition (the time alone is not).
    pub fn reads_event(&self) -> bool {
        fn reads(e: &Expr) -> bool {
            match e {
                Expr::Const(_) => false,
                Expr::Fmt { f, .. } | Expr::Map { from: f, .. } => f.reads_fields(),
                Expr::Cond { .. } => true,
            }
        }
        self.exprs.iter().any(reads)
    }

    /// The target of one event; empty when no rule names one.
    pub fn select(&self, ts: Ts, event: &ProcEvent) -> String {
        for e in &self.exprs {
            let n = eval(e, ts, event);
            if !n.is_empty() {
                return self.case.apply(n);
            }
        }
        String::new()
    }

    /// [`Selector::select`] for an event the output holds encoded (`doc` is its JSON, with or
    /// without `@metadata`; `meta` its metadata): the event is only read when a rule needs it.
    pub fn select_encoded(&self, ts: Ts, meta: &Map, doc: &[u8]) -> String {
        if let Some(c) = self.constant() {
            return c;
        }
        if !self.reads_event() {
            return self.select(ts, &ProcEvent::new(ts, Map::new(), Map::new()));
        }
        self.select(ts, &event_of(ts, meta, doc))
    }
}

/// The event as processors see it, from its encoded JSON (`@timestamp` and `@metadata` left out
/// of the fields; the metadata is the event's own).
pub fn event_of(ts: Ts, meta: &Map, doc: &[u8]) -> ProcEvent {
    let mut fields: Map = serde_json::from_slice(doc).unwrap_or_default();
    fields.remove("@timestamp");
    fields.remove("@metadata");
    ProcEvent::new(ts, meta.clone(), fields)
}

impl FieldSource for ProcEvent {
    fn field(&self, key: &str) -> Option<&Value> {
        self.get(key)
    }
}

fn compile(fmt: &str, path: &str) -> Result<FormatString, String> {
    FormatString::compile_resolving(fmt, version_field).map_err(|e| format!("{e} in {path}"))
}

fn eval(e: &Expr, ts: Ts, ev: &ProcEvent) -> String {
    match e {
        Expr::Const(c) => c.clone(),
        Expr::Fmt { f, otherwise } => match f.run(ts, ev) {
            Ok(n) if !n.is_empty() => n,
            _ => otherwise.clone(),
        },
        Expr::Map {
            from,
            table,
            otherwise,
        } => match f_run(from, ts, ev).and_then(|n| table.get(&n)) {
            Some(to) if !to.is_empty() => to.clone(),
            _ => otherwise.clone(),
        },
        Expr::Cond { cond, inner } => {
            if cond.check(ev) {
                eval(inner, ts, ev)
            } else {
                String::new()
            }
        }
    }
}

fn f_run(f: &FormatString, ts: Ts, ev: &ProcEvent) -> Option<String> {
    f.run(ts, ev).ok().filter(|n| !n.is_empty())
}

/// libbeat's `buildSingle`: one rule, or `None` when it can never name anything.
fn build_rule(rule: &Yaml, key: &str, path: &str) -> Result<Option<Expr>, String> {
    let Yaml::Mapping(m) = rule else {
        return Err(format!("expected a rule (a mapping) accessing '{path}'"));
    };
    let get = |k: &str| m.get(k).filter(|v| !v.is_null());
    let fmt = get(key).ok_or_else(|| format!("missing {path}.{key}"))?;
    let f = compile(
        &yaml_str(fmt, &format!("{path}.{key}"))?,
        &format!("{path}.{key}"),
    )?;
    let otherwise = match get("default") {
        Some(d) => yaml_str(d, &format!("{path}.default"))?,
        None => String::new(),
    };
    let mut table = HashMap::new();
    if let Some(mappings) = get("mappings") {
        let Yaml::Mapping(t) = mappings else {
            return Err(format!("expected a mapping accessing '{path}.mappings'"));
        };
        for (k, v) in t {
            let k = yaml_str(k, &format!("{path}.mappings"))?;
            let v = yaml_str(v, &format!("{path}.mappings.{k}"))?;
            table.insert(k, v);
        }
    }
    let cond = match get("when") {
        Some(w) => Some(Condition::from_yaml(w, &format!("{path}.when"))?),
        None => None,
    };
    let expr = if !table.is_empty() {
        match f.constant() {
            Some(c) => {
                let to = table
                    .get(&c)
                    .filter(|t| !t.is_empty())
                    .unwrap_or(&otherwise);
                if to.is_empty() {
                    return Ok(None);
                }
                Expr::Const(to.clone())
            }
            None => Expr::Map {
                from: f,
                table,
                otherwise,
            },
        }
    } else {
        match f.constant() {
            Some(c) if c.is_empty() => return Ok(None),
            Some(c) => Expr::Const(c),
            None => Expr::Fmt { f, otherwise },
        }
    };
    Ok(Some(match cond {
        Some(cond) => Expr::Cond {
            cond,
            inner: Box::new(expr),
        },
        None => expr,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const INDEX: Settings = Settings {
        key: "index",
        multi_key: "indices",
        fail_empty: true,
        case: Case::Lower,
    };

    fn ev(v: Value) -> ProcEvent {
        let Value::Object(m) = v else { panic!() };
        ProcEvent::new(Ts(1_424_218_386_123_000_000), Map::new(), m)
    }

    fn sel(single: Option<&str>, rules: &str) -> Result<Selector, String> {
        let y = crate::config::tree::normalize(serde_yaml::from_str(rules).unwrap());
        Selector::build(single, Some(&y), &INDEX, "output.elasticsearch")
    }

    #[test]
    fn rules_in_order_then_the_single_string() {
        let s = sel(
            Some("packetbeat-%{[agent.version]}"),
            r#"
- index: "critical-%{[agent.version]}"
  when.contains:
    message: "ERR"
- index: "pb-%{[network.protocol]}"
  when.equals:
    type: http
- index: "%{[type]}"
  mappings: {dns: DNS-Index, icmp: ""}
  default: other
- index: "%{[missing]}"
"#,
        )
        .unwrap();
        let ts = Ts(0);
        let v = crate::BEAT_VERSION;
        assert!(s.constant().is_none() && s.reads_event());
        assert_eq!(
            s.select(ts, &ev(json!({"message": "an ERR here", "type": "http"}))),
            format!("critical-{v}")
        );
        assert_eq!(
            s.select(
                ts,
                &ev(json!({"type": "http", "network": {"protocol": "HTTP"}}))
            ),
            "pb-http"
        );
        // a mapped value is lower-cased; an empty mapping falls to the default
        assert_eq!(s.select(ts, &ev(json!({"type": "dns"}))), "dns-index");
        assert_eq!(s.select(ts, &ev(json!({"type": "icmp"}))), "other");
        assert_eq!(s.select(ts, &ev(json!({"type": "tls"}))), "other");
        // no type: the map rule gives its default too (the formatted field is missing)
        assert_eq!(s.select(ts, &ev(json!({}))), "other");
    }

    #[test]
    fn single_string_and_settings() {
        let s = Selector::build(Some("PB-%{[agent.version]}"), None, &INDEX, "o").unwrap();
        assert_eq!(s.constant(), Some(format!("pb-{}", crate::BEAT_VERSION)));
        let s = Selector::build(Some("pb-%{+yyyy.MM.dd}"), None, &INDEX, "o").unwrap();
        assert!(!s.reads_event());
        assert_eq!(
            s.select_encoded(Ts(1_424_218_386_123_000_000), &Map::new(), b"{}"),
            "pb-2015.02.18"
        );
        let e = Selector::build(None, None, &INDEX, "output.x").unwrap_err();
        assert_eq!(e, "missing required 'index' or 'indices' in output.x");
        let keep = Settings {
            key: "topic",
            multi_key: "topics",
            fail_empty: true,
            case: Case::Keep,
        };
        let s = Selector::build(Some("%{[fields.Topic]}"), None, &keep, "o").unwrap();
        let doc =
            br#"{"@timestamp":"x","@metadata":{"beat":"packetbeat"},"fields":{"Topic":"Mixed"}}"#;
        assert_eq!(s.select_encoded(Ts(0), &Map::new(), doc), "Mixed");
        assert_eq!(s.select_encoded(Ts(0), &Map::new(), b"{}"), "");
        let pipeline = Settings {
            key: "pipeline",
            multi_key: "pipelines",
            fail_empty: false,
            case: Case::Lower,
        };
        assert!(Selector::build(None, None, &pipeline, "o")
            .unwrap()
            .is_empty());
    }

    #[test]
    fn bad_rules_are_errors() {
        assert_eq!(
            sel(None, "[{default: x}]").unwrap_err(),
            "missing output.elasticsearch.indices.0.index"
        );
        assert!(sel(None, "{index: x}")
            .unwrap_err()
            .contains("list of rules"));
        assert!(sel(None, "[{index: 'a-%{[x]'}]")
            .unwrap_err()
            .contains("output.elasticsearch.indices.0.index"));
        assert!(sel(None, "[{index: a, when: {nope: {}}}]").is_err());
        // a rule that can never name anything is left out
        let s = sel(None, "[{index: ''}, {index: k, mappings: {a: b}}]").unwrap();
        assert!(s.is_empty());
    }

    #[test]
    fn metadata_is_visible_to_rules() {
        let s = sel(None, "[{index: '%{[@metadata.target]}'}]").unwrap();
        let mut meta = Map::new();
        meta.insert("target".into(), json!("From-Meta"));
        assert_eq!(s.select_encoded(Ts(0), &meta, b"{}"), "from-meta");
    }
}
