//! A processor's options, read from YAML with go-ucfg's leniency (a scalar where a list is
//! expected is a list of one, numbers and booleans given as strings are converted) and its
//! messages (`missing required field accessing '<path>'`, `type mismatch accessing '<path>'`),
//! plus libbeat's `checks.AllowedFields` / `checks.RequireFields` wording.

use serde_json::Value;
use serde_yaml::{Mapping, Value as Yaml};
use std::time::Duration;

pub struct Opts<'a> {
    name: &'a str,
    path: String,
    map: Option<&'a Mapping>,
}

pub fn key_text(k: &Yaml) -> String {
    match k {
        Yaml::String(s) => s.clone(),
        other => serde_yaml::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

pub fn yaml_kind(v: &Yaml) -> &'static str {
    match v {
        Yaml::Null => "null",
        Yaml::Bool(_) => "bool",
        Yaml::Number(n) if n.is_f64() => "float",
        Yaml::Number(_) => "int",
        Yaml::String(_) => "string",
        Yaml::Sequence(_) => "array",
        Yaml::Mapping(_) => "object",
        Yaml::Tagged(_) => "tagged",
    }
}

/// YAML to JSON (mapping keys as text).
pub fn to_json(v: &Yaml) -> Value {
    match v {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => Value::Bool(*b),
        Yaml::Number(n) => {
            if let Some(u) = n.as_u64() {
                Value::from(u)
            } else if let Some(i) = n.as_i64() {
                Value::from(i)
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map_or(Value::Null, Value::Number)
            }
        }
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Sequence(s) => Value::Array(s.iter().map(to_json).collect()),
        Yaml::Mapping(m) => {
            Value::Object(m.iter().map(|(k, v)| (key_text(k), to_json(v))).collect())
        }
        Yaml::Tagged(t) => to_json(&t.value),
    }
}

/// A scalar as text (ucfg converts scalars to strings on request).
fn scalar_text(v: &Yaml) -> Option<String> {
    match v {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl<'a> Opts<'a> {
    /// `cfg` is the processor's value (`~` is no options).
    pub fn new(name: &'a str, path: &'a str, cfg: &'a Yaml) -> Result<Opts<'a>, String> {
        let map = match cfg {
            Yaml::Null => None,
            Yaml::Mapping(m) => Some(m),
            other => {
                return Err(format!(
                    "required 'object', but found '{}' in field '{path}'",
                    yaml_kind(other)
                ))
            }
        };
        Ok(Opts {
            name,
            path: path.to_string(),
            map,
        })
    }

    pub fn name(&self) -> &str {
        self.name
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// The option `key`; dotted keys are looked up as written and as nested maps.
    pub fn raw(&self, key: &str) -> Option<&'a Yaml> {
        let map = self.map?;
        lookup(map, key)
    }

    fn at(&self, key: &str) -> String {
        format!("{}.{key}", self.path)
    }

    /// libbeat's wording for a constructor's failed `Unpack`.
    pub fn fail(&self, msg: impl std::fmt::Display) -> String {
        format!("failed to unpack the {} configuration: {msg}", self.name)
    }

    pub fn missing(&self, key: &str) -> String {
        self.fail(format!(
            "missing required field accessing '{}'",
            self.at(key)
        ))
    }

    pub fn mismatch(&self, key: &str, expected: &str) -> String {
        self.fail(format!(
            "type mismatch accessing '{}' (expected {expected})",
            self.at(key)
        ))
    }

    /// `checks.AllowedFields`: options other than `allowed` (and `when`) are an error.
    pub fn allowed(&self, allowed: &[&str]) -> Result<(), String> {
        for k in self.map.into_iter().flat_map(|m| m.keys()) {
            let k = key_text(k);
            let top = k.split('.').next().unwrap_or("");
            if k != "when" && !allowed.contains(&k.as_str()) && !allowed.contains(&top) {
                return Err(format!("unexpected {k} option in {}", self.path));
            }
        }
        Ok(())
    }

    /// `checks.RequireFields`.
    pub fn require(&self, keys: &[&str]) -> Result<(), String> {
        for k in keys {
            if self.raw(k).is_none() {
                return Err(format!("missing {k} option"));
            }
        }
        Ok(())
    }

    pub fn str_opt(&self, key: &str) -> Result<Option<String>, String> {
        match self.raw(key) {
            None | Some(Yaml::Null) => Ok(None),
            Some(v) => scalar_text(v)
                .map(Some)
                .ok_or_else(|| self.mismatch(key, "string")),
        }
    }

    pub fn string(&self, key: &str) -> Result<String, String> {
        self.str_opt(key)?.ok_or_else(|| self.missing(key))
    }

    pub fn string_or(&self, key: &str, default: &str) -> Result<String, String> {
        Ok(self.str_opt(key)?.unwrap_or_else(|| default.to_string()))
    }

    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool, String> {
        match self.raw(key) {
            None | Some(Yaml::Null) => Ok(default),
            Some(Yaml::Bool(b)) => Ok(*b),
            Some(Yaml::String(s)) => match s.as_str() {
                "true" | "on" | "yes" => Ok(true),
                "false" | "off" | "no" => Ok(false),
                _ => Err(self.mismatch(key, "bool")),
            },
            Some(_) => Err(self.mismatch(key, "bool")),
        }
    }

    pub fn i64_or(&self, key: &str, default: i64) -> Result<i64, String> {
        match self.raw(key) {
            None | Some(Yaml::Null) => Ok(default),
            Some(Yaml::Number(n)) => n.as_i64().ok_or_else(|| self.mismatch(key, "integer")),
            Some(Yaml::String(s)) => s.parse().map_err(|_| self.mismatch(key, "integer")),
            Some(_) => Err(self.mismatch(key, "integer")),
        }
    }

    pub fn f64_or(&self, key: &str, default: f64) -> Result<f64, String> {
        match self.raw(key) {
            None | Some(Yaml::Null) => Ok(default),
            Some(Yaml::Number(n)) => n.as_f64().ok_or_else(|| self.mismatch(key, "number")),
            Some(Yaml::String(s)) => s.parse().map_err(|_| self.mismatch(key, "number")),
            Some(_) => Err(self.mismatch(key, "number")),
        }
    }

    /// A list of strings; a single scalar is a list of one.
    pub fn strs_opt(&self, key: &str) -> Result<Option<Vec<String>>, String> {
        match self.raw(key) {
            None | Some(Yaml::Null) => Ok(None),
            Some(Yaml::Sequence(s)) => s
                .iter()
                .map(|v| scalar_text(v).ok_or_else(|| self.mismatch(key, "[]string")))
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(v) => scalar_text(v)
                .map(|s| Some(vec![s]))
                .ok_or_else(|| self.mismatch(key, "[]string")),
        }
    }

    pub fn strs(&self, key: &str) -> Result<Vec<String>, String> {
        self.strs_opt(key)?.ok_or_else(|| self.missing(key))
    }

    /// A Go duration (`30s`, `1h30m`); a bare number is seconds, as ucfg reads it.
    pub fn duration_or(&self, key: &str, default: Duration) -> Result<Duration, String> {
        match self.raw(key) {
            None | Some(Yaml::Null) => Ok(default),
            Some(Yaml::Number(n)) => n
                .as_f64()
                .filter(|f| *f >= 0.0)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| self.mismatch(key, "duration")),
            Some(Yaml::String(s)) => crate::config::types::parse_duration(s)
                .ok()
                .filter(|(neg, _)| !neg)
                .map(|(_, d)| d)
                .ok_or_else(|| self.mismatch(key, "duration")),
            Some(_) => Err(self.mismatch(key, "duration")),
        }
    }

    /// An object option as JSON.
    pub fn object_opt(&self, key: &str) -> Result<Option<serde_json::Map<String, Value>>, String> {
        match self.raw(key) {
            None | Some(Yaml::Null) => Ok(None),
            Some(v @ Yaml::Mapping(_)) => match to_json(v) {
                Value::Object(m) => Ok(Some(m)),
                _ => unreachable!("a mapping is an object"),
            },
            Some(_) => Err(self.mismatch(key, "object")),
        }
    }

    /// A list of objects (`fields: [{from: a, to: b}]`).
    pub fn objects(&self, key: &str) -> Result<Vec<Opts<'a>>, String> {
        match self.raw(key) {
            None | Some(Yaml::Null) => Err(self.missing(key)),
            Some(Yaml::Sequence(s)) => Ok(s
                .iter()
                .enumerate()
                .map(|(i, v)| Opts {
                    name: self.name,
                    path: format!("{}.{key}.{i}", self.path),
                    map: v.as_mapping(),
                })
                .collect()),
            Some(_) => Err(self.mismatch(key, "array")),
        }
    }
}

fn lookup<'a>(map: &'a Mapping, key: &str) -> Option<&'a Yaml> {
    if let Some(v) = map.get(key) {
        return Some(v);
    }
    let (head, rest) = key.split_once('.')?;
    match map.get(head) {
        Some(Yaml::Mapping(inner)) => lookup(inner, rest),
        _ => None,
    }
}
