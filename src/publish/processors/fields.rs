//! Processors that edit fields: `drop_event`, `drop_fields`, `include_fields`, `add_fields`,
//! `add_tags`, `add_labels`, `rename`, `copy_fields`, `move_fields`, `convert`,
//! `truncate_fields`, `replace`, `urldecode`, `uppercase`, `lowercase`, `extract_array`
//! (libbeat `processors/actions`, `processors/convert`, `processors/extract_array`).

use super::{Opts, Outcome, ProcEvent, Processor};
use crate::publish::event::{Map, MapExt};
use regex::Regex;
use serde_json::Value;

/// `fail_on_error`: on an error, the event is put back as it was and `error.message` set;
/// without it the error is ignored and the event keeps what was done.
pub(super) fn with_backup(
    e: &mut ProcEvent,
    fail_on_error: bool,
    prefix: &str,
    f: impl FnOnce(&mut ProcEvent) -> Result<(), String>,
) -> Outcome {
    let backup = fail_on_error.then(|| e.clone());
    match f(e) {
        Ok(()) => Ok(true),
        Err(err) => match backup {
            Some(b) => {
                *e = b;
                let msg = format!("{prefix}{err}");
                let _ = e.put("error.message", Value::from(msg.clone()));
                Err(msg)
            }
            None => Ok(true),
        },
    }
}

const KEY_NOT_FOUND: &str = "key not found";

// ---------------------------------------------------------------- drop_event

struct DropEvent;

impl Processor for DropEvent {
    fn run(&self, _e: &mut ProcEvent) -> Outcome {
        Ok(false)
    }
    fn describe(&self) -> String {
        "drop_event".into()
    }
}

pub fn drop_event(o: &Opts) -> Result<Box<dyn Processor>, String> {
    o.allowed(&[])?;
    Ok(Box::new(DropEvent))
}

// ---------------------------------------------------------------- drop_fields

struct DropFields {
    fields: Vec<String>,
    regexps: Vec<Regex>,
    ignore_missing: bool,
}

/// Every key of a tree, parents and leaves, as dotted paths (`mapstr.M.FlattenKeys`).
fn flatten_keys(prefix: &str, m: &Map, out: &mut Vec<String>) {
    for (k, v) in m {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        out.push(key.clone());
        if let Value::Object(inner) = v {
            flatten_keys(&key, inner, out);
        }
    }
}

impl Processor for DropFields {
    fn run(&self, e: &mut ProcEvent) -> Outcome {
        let mut errs = Vec::new();
        let mut delete = |e: &mut ProcEvent, field: &str| {
            if e.delete(field).is_none() && !self.ignore_missing {
                errs.push(format!(
                    "failed to drop field [{field}], error: {KEY_NOT_FOUND}"
                ));
            }
        };
        for f in &self.fields {
            delete(e, f);
        }
        for re in &self.regexps {
            let mut keys = Vec::new();
            flatten_keys("", &e.fields, &mut keys);
            for k in keys.iter().filter(|k| re.is_match(k)) {
                // A parent matched earlier may have taken this key with it.
                if e.get(k).is_some() {
                    delete(e, k);
                }
            }
        }
        if errs.is_empty() {
            Ok(true)
        } else {
            Err(errs.join("; "))
        }
    }
    fn describe(&self) -> String {
        format!("drop_fields={{\"Fields\":{:?}}}", self.fields)
    }
}

/// Fields a processor never removes (`processors.MandatoryExportedFields`).
const MANDATORY: &[&str] = &["type"];

/// A `/…/` entry of a fields list is a regular expression.
fn field_regex(f: &str) -> Option<&str> {
    (f.len() >= 2 && f.starts_with('/') && f.ends_with('/')).then(|| &f[1..f.len() - 1])
}

pub fn drop_fields(o: &Opts) -> Result<Box<dyn Processor>, String> {
    o.allowed(&["fields", "ignore_missing"])?;
    let list = o.strs("fields")?;
    let mut fields = Vec::new();
    let mut regexps = Vec::new();
    for f in list {
        if MANDATORY.contains(&f.as_str()) || f == "@timestamp" {
            continue;
        }
        match field_regex(&f) {
            Some(re) => regexps
                .push(Regex::new(re).map_err(|e| {
                    o.fail(format!("wrong configuration in drop_fields[{f}]: {e}"))
                })?),
            None => fields.push(f),
        }
    }
    Ok(Box::new(DropFields {
        fields,
        regexps,
        ignore_missing: o.bool_or("ignore_missing", false)?,
    }))
}

// ---------------------------------------------------------------- include_fields

struct IncludeFields {
    fields: Vec<String>,
}

impl Processor for IncludeFields {
    fn run(&self, e: &mut ProcEvent) -> Outcome {
        let mut kept = Map::new();
        for f in &self.fields {
            if let Some(v) = e.fields.get_path(f) {
                kept.put(f, v.clone());
            }
        }
        e.fields = kept;
        Ok(true)
    }
    fn describe(&self) -> String {
        format!("include_fields={{\"Fields\":{:?}}}", self.fields)
    }
}

pub fn include_fields(o: &Opts) -> Result<Box<dyn Processor>, String> {
    o.allowed(&["fields"])?;
    let mut fields = o.strs("fields")?;
    for m in MANDATORY {
        if !fields.iter().any(|f| f == m) {
            fields.push(m.to_string());
        }
    }
    Ok(Box::new(IncludeFields { fields }))
}

// ---------------------------------------------------------------- add_fields, add_labels, add_tags

/// Dotted keys of config maps become nested maps, as go-ucfg reads them.
pub fn expand_dots(m: Map) -> Map {
    let mut out = Map::new();
    for (k, v) in m {
        let v = match v {
            Value::Object(inner) => Value::Object(expand_dots(inner)),
            other => other,
        };
        match (out.get_path(&k), &v) {
            (Some(Value::Object(_)), Value::Object(new)) => {
                // Two spellings of one map: merge.
                for (ik, iv) in new.clone() {
                    out.put(&format!("{k}.{ik}"), iv);
                }
            }
            _ => out.put(&k, v),
        }
    }
    out
}

/// `mapstr.M.DeepUpdate` (maps merge, other values replace; `overwrite: false` keeps what is
/// there).
pub fn deep_update(target: &mut Map, from: &Map, overwrite: bool) {
    for (k, v) in from {
        match (target.get_mut(k), v) {
            (Some(Value::Object(existing)), Value::Object(new)) => {
                deep_update(existing, new, overwrite)
            }
            (Some(_), _) if !overwrite => {}
            _ => {
                target.insert(k.clone(), v.clone());
            }
        }
    }
}

impl ProcEvent {
    /// `beat.Event.DeepUpdate`: `@metadata` goes to the metadata, `@timestamp` sets the time.
    pub fn deep_update(&mut self, from: &Map, overwrite: bool) {
        for (k, v) in from {
            match k.as_str() {
                "@metadata" => {
                    if let (Value::Object(new), Some(meta)) = (v, self.meta.as_object_mut()) {
                        deep_update(meta, new, overwrite);
                    }
                }
                "@timestamp" => {
                    let _ = self.put(k, v.clone());
                }
                _ => {
                    let mut one = Map::new();
                    one.insert(k.clone(), v.clone());
                    deep_update(&mut self.fields, &one, overwrite);
                }
            }
        }
    }
}

pub struct AddFields {
    fields: Map,
    overwrite: bool,
    name: &'static str,
}

impl Processor for AddFields {
    fn run(&self, e: &mut ProcEvent) -> Outcome {
        e.deep_update(&self.fields, self.overwrite);
        Ok(true)
    }
    fn describe(&self) -> String {
        format!("{}={}", self.name, Value::Object(self.fields.clone()))
    }
}

/// `fields` under `target` (`fields` by default, the root when empty).
fn under_target(o: &Opts, fields: Map) -> Result<Map, String> {
    let target = o.string_or("target", "fields")?;
    if target.is_empty() {
        return Ok(fields);
    }
    let mut m = Map::new();
    m.put(&target, Value::Object(fields));
    Ok(m)
}

pub fn add_fields(o: &Opts) -> Result<Box<dyn Processor>, String> {
    o.allowed(&["fields", "target"])?;
    let fields = o.object_opt("fields")?.ok_or_else(|| o.missing("fields"))?;
    Ok(Box::new(AddFields {
        fields: under_target(o, expand_dots(fields))?,
        overwrite: true,
        name: "add_fields",
    }))
}

fn flatten_labels(prefix: &str, m: &Map, out: &mut Map) {
    for (k, v) in m {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Value::Object(inner) => flatten_labels(&key, inner, out),
            other => {
                out.insert(key, other.clone());
            }
        }
    }
}

pub fn add_labels(o: &Opts) -> Result<Box<dyn Processor>, String> {
    o.allowed(&["labels"])?;
    let labels = o.object_opt("labels")?.ok_or_else(|| o.missing("labels"))?;
    let mut flat = Map::new();
    flatten_labels("", &labels, &mut flat);
    let mut fields = Map::new();
    fields.insert("labels".into(), Value::Object(flat));
    Ok(Box::new(AddFields {
        fields,
        overwrite: true,
        name: "add_labels",
    }))
}

struct AddTags {
    tags: Vec<String>,
    target: String,
}

/// `mapstr.AddTagsWithKey`: appends (no deduplication); a non-list value is an error.
pub fn append_tags(e: &mut ProcEvent, key: &str, tags: &[String]) -> Result<(), String> {
    if tags.is_empty() {
        return Ok(());
    }
    match e.get(key) {
        None => e.put(key, Value::from(tags.to_vec())),
        Some(Value::Array(_)) => {
            let mut list = match e.delete(key) {
                Some(Value::Array(l)) => l,
                _ => Vec::new(),
            };
            list.extend(tags.iter().map(|t| Value::from(t.as_str())));
            e.put(key, Value::Array(list))
        }
        Some(other) => Err(format!(
            "expected string array by type is {}",
            super::type_name(other)
        )),
    }
}

impl Processor for AddTags {
    fn run(&self, e: &mut ProcEvent) -> Outcome {
        append_tags(e, &self.target, &self.tags).map(|_| true)
    }
    fn describe(&self) -> String {
        format!("add_tags={:?}", self.tags)
    }
}

pub fn add_tags(o: &Opts) -> Result<Box<dyn Processor>, String> {
    o.allowed(&["tags", "target"])?;
    let target = o.string_or("target", "tags")?;
    Ok(Box::new(AddTags {
        tags: o.strs("tags")?,
        target: if target.is_empty() {
            "tags".into()
        } else {
            target
        },
    }))
}

// ---------------------------------------------------------------- rename, copy_fields

#[derive(Clone, Copy, PartialEq)]
enum FromTo {
    Rename,
    Copy,
}

struct FromToFields {
    kind: FromTo,
    fields: Vec<(String, String)>,
    ignore_missing: bool,
    fail_on_error: bool,
}

fn from_to_list(o: &Opts, from: &str, to: &str) -> Result<Vec<(String, String)>, String> {
    o.objects("fields")?
        .iter()
        .map(|f| Ok((f.string(from)?, f.string_or(to, "")?)))
        .collect()
}

impl Processor for FromToFields {
    fn run(&self, e: &mut ProcEvent) -> Outcome {
        let prefix = match self.kind {
            FromTo::Rename => "Failed to rename fields in processor: ",
            FromTo::Copy => "Failed to copy fields in copy_fields processor: ",
        };
        with_backup(e, self.fail_on_error, prefix, |e| {
            for (from, to) in &self.fields {
                if e.has(to) {
                    return Err(format!(
                        "target field {to} already exists, drop or rename this field first"
                    ));
                }
                let Some(v) = e.get_owned(from) else {
                    if self.ignore_missing {
                        continue;
                    }
                    return Err(format!(
                        "could not fetch value for key: {from}, Error: {KEY_NOT_FOUND}"
                    ));
                };
                if self.kind == FromTo::Rename {
                    e.delete(from);
                }
                e.put(to, v)?;
            }
            Ok(())
        })
    }
    fn describe(&self) -> String {
        let name = match self.kind {
            FromTo::Rename => "rename",
            FromTo::Copy => "copy_fields",
        };
        format!("{name}={:?}", self.fields)
    }
}

pub fn rename(o: &Opts) -> Result<Box<dyn Processor>, String> {
    o.allowed(&["fields", "ignore_missing", "fail_on_error"])?;
    o.require(&["fields"])?;
    Ok(Box::new(FromToFields {
        kind: FromTo::Rename,
        fields: from_to_list(o, "from", "to")?,
        ignore_missing: o.bool_or("ignore_missing", false)?,
        fail_on_error: o.bool_or("fail_on_error", true)?,
    }))
}

pub fn copy_fields(o: &Opts) -> Result<Box<dyn Processor>, String> {
    o.allowed(&["fields", "ignore_missing", "fail_on_error"])?;
    o.require(&["fields"])?;
    Ok(Box::new(FromToFields {
        kind: FromTo::Copy,
        fields: from_to_list(o, "from", "to")?,
        ignore_missing: o.bool_or("ignore_missing", false)?,
        fail_on_error: o.bool_or("fail_on_error", true)?,
    }))
}

// ---------------------------------------------------------------- move_fields

struct MoveFields {
    parent: String,
    from: Vec<String>,
    exclude: Vec<String>,
    to: String,
    ignore_missing: bool,
    fail_on_error: bool,
}

impl Processor for MoveFields {
    fn run(&self, e: &mut ProcEvent) -> Outcome {
        with_backup(e, self.fail_on_error, "move field failed: ", |e| {
            let keys: Vec<String> = if self.from.is_empty() {
                let parent = if self.parent.is_empty() {
                    Some(&e.fields)
                } else {
                    e.fields.get_path(&self.parent).and_then(Value::as_object)
                };
                match parent {
                    Some(m) => m.keys().cloned().collect(),
                    None if self.ignore_missing => return Ok(()),
                    None => {
                        return Err(format!(
                            "could not fetch value for key: {}, Error: {KEY_NOT_FOUND}",
                            self.parent
                        ))
                    }
                }
            } else {
                self.from.clone()
            };
            let mut moved = Vec::new();
            for k in keys.iter().filter(|k| !self.exclude.contains(k)) {
                let path = if self.parent.is_empty() {
                    k.clone()
                } else {
                    format!("{}.{k}", self.parent)
                };
                match e.delete(&path) {
                    Some(v) => moved.push((format!("{}{k}", self.to), v)),
                    None if self.ignore_missing => {}
                    None => {
                        return Err(format!(
                            "could not fetch value for key: {path}, Error: {KEY_NOT_FOUND}"
                        ))
                    }
                }
            }
            for (k, v) in moved {
                e.put(&k, v)?;
            }
            Ok(())
        })
    }
    fn describe(&self) -> String {
        format!(
            "move_fields={{parent_path: {}, to: {}}}",
            self.parent, self.to
        )
    }
}

pub fn move_fields(o: &Opts) -> Result<Box<dyn Processor>, String> {
    Ok(Box::new(MoveFields {
        parent: o.string_or("parent_path", "")?,
        from: o.strs_opt("from")?.unwrap_or_default(),
        exclude: o.strs_opt("exclude")?.unwrap_or_default(),
        to: o.string("to")?,
        ignore_missing: o.bool_or("ignore_missing", false)?,
        fail_on_error: o.bool_or("fail_on_error", true)?,
    }))
}

// ---------------------------------------------------------------- convert

#[derive(Clone, Copy, Debug, PartialEq)]
enum ConvType {
    Integer,
    Long,
    Float,
    Double,
    Str,
    Boolean,
    Ip,
}

struct Convert {
    fields: Vec<(String, String, ConvType)>,
    ignore_missing: bool,
    fail_on_error: bool,
    tag: Option<String>,
    rename: bool,
}

/// Go's `strconv.ParseInt(s, 0, bits)`: decimal, `0x`, `0o`/`0`, `0b` prefixes, `_` separators.
fn parse_go_int(s: &str, bits: u32) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    let digits = if radix != 10 {
        digits.replace('_', "")
    } else {
        digits.to_string()
    };
    if digits.is_empty() {
        return None;
    }
    let v = i128::from_str_radix(&digits, radix).ok()?;
    let v = if neg { -v } else { v };
    let (min, max) = (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1);
    (min..=max).contains(&v).then_some(v as i64)
}

fn go_value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn convert_value(v: &Value, t: ConvType) -> Result<Value, String> {
    let bad = || {
        format!(
            "invalid conversion of [{}] to {}",
            super::type_name(v),
            match t {
                ConvType::Integer => "integer",
                ConvType::Long => "long",
                ConvType::Float => "float",
                ConvType::Double => "double",
                ConvType::Str => "string",
                ConvType::Boolean => "boolean",
                ConvType::Ip => "IP",
            }
        )
    };
    match t {
        ConvType::Integer | ConvType::Long => {
            let bits = if t == ConvType::Integer { 32 } else { 64 };
            let i = match v {
                Value::String(s) => parse_go_int(s.trim(), bits).ok_or_else(|| {
                    format!(
                        "failed to convert value [{s}] to {}",
                        if bits == 32 { "integer" } else { "long" }
                    )
                })?,
                Value::Number(n) => match n.as_i64() {
                    Some(i) => i,
                    None => n.as_f64().map(|f| f as i64).ok_or_else(bad)?,
                },
                Value::Bool(b) => *b as i64,
                _ => return Err(bad()),
            };
            Ok(Value::from(if bits == 32 { i as i32 as i64 } else { i }))
        }
        ConvType::Float | ConvType::Double => {
            let f = match v {
                Value::String(s) => s
                    .trim()
                    .parse::<f64>()
                    .map_err(|_| format!("failed to convert value [{s}] to float"))?,
                Value::Number(n) => n.as_f64().ok_or_else(bad)?,
                _ => return Err(bad()),
            };
            let f = if t == ConvType::Float {
                f as f32 as f64
            } else {
                f
            };
            serde_json::Number::from_f64(f)
                .map(Value::Number)
                .ok_or_else(bad)
        }
        ConvType::Str => Ok(Value::from(go_value_text(v))),
        ConvType::Boolean => match v {
            Value::Bool(b) => Ok(Value::Bool(*b)),
            Value::String(s) => match s.as_str() {
                "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(Value::Bool(true)),
                "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(Value::Bool(false)),
                _ => Err(format!("failed to convert value [{s}] to boolean")),
            },
            _ => Err(bad()),
        },
        ConvType::Ip => match v {
            Value::String(s) if s.parse::<std::net::IpAddr>().is_ok() => Ok(v.clone()),
            Value::String(s) => Err(format!("value [{s}] is not a valid IP address")),
            _ => Err(bad()),
        },
    }
}

impl Processor for Convert {
    fn run(&self, e: &mut ProcEvent) -> Outcome {
        let backup = self.fail_on_error.then(|| e.clone());
        let mut failed: Option<String> = None;
        for (from, to, t) in &self.fields {
            let Some(v) = e.get_owned(from) else {
                if self.ignore_missing {
                    continue;
                }
                failed = Some(
                    format!("field [{from}] is missing, cannot be converted to type [{t:?}]")
                        .to_lowercase()
                        .replace("[str]", "[string]"),
                );
                break;
            };
            match convert_value(&v, *t) {
                Ok(nv) => {
                    let target = if to.is_empty() { from } else { to };
                    if self.rename && !to.is_empty() {
                        e.delete(from);
                    }
                    let _ = e.put(target, nv);
                }
                Err(err) => {
                    failed = Some(format!("unable to convert field [{from}]: {err}"));
                    break;
                }
            }
        }
        let Some(err) = failed else {
            return Ok(true);
        };
        if let Some(tag) = &self.tag {
            let _ = append_tags(e, "tags", std::slice::from_ref(tag));
        }
        match backup {
            Some(mut b) => {
                if let Some(tag) = &self.tag {
                    let _ = append_tags(&mut b, "tags", std::slice::from_ref(tag));
                }
                *e = b;
                let _ = e.put("error.message", Value::from(err.clone()));
                Err(err)
            }
            None => Ok(true),
        }
    }
    fn describe(&self) -> String {
        format!("convert={:?}", self.fields)
    }
}

pub fn convert(o: &Opts) -> Result<Box<dyn Processor>, String> {
    let mut fields = Vec::new();
    for f in o.objects("fields")? {
        let from = f.string("from")?;
        let to = f.string_or("to", "")?;
        let t = match f.string_or("type", "")?.to_lowercase().as_str() {
            "integer" => ConvType::Integer,
            "long" => ConvType::Long,
            "float" => ConvType::Float,
            "double" => ConvType::Double,
            "string" => ConvType::Str,
            "boolean" => ConvType::Boolean,
            "ip" => ConvType::Ip,
            "" => {
                return Err(o.fail(format!(
                    "field '{from}' has no type (one of integer, long, float, double, string, boolean, ip)"
                )))
            }
            other => {
                return Err(o.fail(format!(
                    "invalid type '{other}' for field '{from}' (one of integer, long, float, double, string, boolean, ip)"
                )))
            }
        };
        fields.push((from, to, t));
    }
    let mode = o.string_or("mode", "copy")?;
    if mode != "copy" && mode != "rename" {
        return Err(o.fail(format!("invalid mode '{mode}' (copy or rename)")));
    }
    Ok(Box::new(Convert {
        fields,
        ignore_missing: o.bool_or("ignore_missing", false)?,
        fail_on_error: o.bool_or("fail_on_error", true)?,
        tag: o.str_opt("tag")?,
        rename: mode == "rename",
    }))
}

// ---------------------------------------------------------------- truncate_fields

struct Truncate {
    fields: Vec<String>,
    max_bytes: Option<usize>,
    max_chars: Option<usize>,
    ignore_missing: bool,
    fail_on_error: bool,
}

impl Processor for Truncate {
    fn run(&self, e: &mut ProcEvent) -> Outcome {
        with_backup(e, self.fail_on_error, "", |e| {
            let mut truncated = false;
            for f in &self.fields {
                let Some(v) = e.get(f) else {
                    if self.ignore_missing {
                        continue;
                    }
                    return Err(format!(
                        "could not fetch value for key: {f}, Error: {KEY_NOT_FOUND}"
                    ));
                };
                let Value::String(s) = v else {
                    return Err(format!("value cannot be truncated: {}", go_value_text(v)));
                };
                let cut = match (self.max_bytes, self.max_chars) {
                    (Some(n), _) if s.len() > n => {
                        // Go cuts the bytes; a split character becomes U+FFFD in JSON.
                        Some(String::from_utf8_lossy(&s.as_bytes()[..n]).into_owned())
                    }
                    (_, Some(n)) if s.chars().count() > n => Some(s.chars().take(n).collect()),
                    _ => None,
                };
                if let Some(c) = cut {
                    e.put(f, Value::from(c))?;
                    truncated = true;
                }
            }
            if truncated {
                let has = matches!(e.get("log.flags"), Some(Value::Array(a)) if a.iter().any(|x| x == "truncated"));
                if !has {
                    append_tags(e, "log.flags", &["truncated".to_string()])?;
                }
            }
            Ok(())
        })
    }
    fn describe(&self) -> String {
        format!("truncate_fields={:?}", self.fields)
    }
}

pub fn truncate_fields(o: &Opts) -> Result<Box<dyn Processor>, String> {
    let positive = |k: &str| -> Result<Option<usize>, String> {
        match o.raw(k) {
            None => Ok(None),
            Some(_) => {
                let n = o.i64_or(k, 0)?;
                if n <= 0 {
                    return Err(o.fail(format!("requires value > 0 accessing '{}.{k}'", o.path())));
                }
                Ok(Some(n as usize))
            }
        }
    };
    let max_bytes = positive("max_bytes")?;
    let max_chars = positive("max_characters")?;
    match (max_bytes, max_chars) {
        (None, None) => return Err(o.fail("either max_bytes or max_characters must be set")),
        (Some(_), Some(_)) => {
            return Err(o.fail("only one of max_bytes and max_characters can be set"))
        }
        _ => {}
    }
    Ok(Box::new(Truncate {
        fields: o.strs("fields")?,
        max_bytes,
        max_chars,
        ignore_missing: o.bool_or("ignore_missing", false)?,
        fail_on_error: o.bool_or("fail_on_error", true)?,
    }))
}

// ---------------------------------------------------------------- replace

struct Replace {
    fields: Vec<(String, Regex, String)>,
    ignore_missing: bool,
    fail_on_error: bool,
}

impl Processor for Replace {
    fn run(&self, e: &mut ProcEvent) -> Outcome {
        with_backup(
            e,
            self.fail_on_error,
            "Failed to replace fields in processor: ",
            |e| {
                for (f, re, rep) in &self.fields {
                    let Some(v) = e.get(f) else {
                        if self.ignore_missing {
                            continue;
                        }
                        return Err(format!(
                            "could not fetch value for key: {f}, Error: {KEY_NOT_FOUND}"
                        ));
                    };
                    let s = go_value_text(v);
                    let out = re.replace_all(&s, rep.as_str()).into_owned();
                    e.put(f, Value::from(out))?;
                }
                Ok(())
            },
        )
    }
    fn describe(&self) -> String {
        format!(
            "replace={:?}",
            self.fields
                .iter()
                .map(|(f, r, t)| (f, r.as_str(), t))
                .collect::<Vec<_>>()
        )
    }
}

pub fn replace(o: &Opts) -> Result<Box<dyn Processor>, String> {
    let mut fields = Vec::new();
    for f in o.objects("fields")? {
        let field = f.string("field")?;
        let pattern = f.string("pattern")?;
        let re = Regex::new(&pattern).map_err(|e| o.fail(format!("error parsing regexp: {e}")))?;
        fields.push((field, re, f.string_or("replacement", "")?));
    }
    Ok(Box::new(Replace {
        fields,
        ignore_missing: o.bool_or("ignore_missing", false)?,
        fail_on_error: o.bool_or("fail_on_error", true)?,
    }))
}

// ---------------------------------------------------------------- urldecode

struct UrlDecode {
    fields: Vec<(String, String)>,
    ignore_missing: bool,
    fail_on_error: bool,
}

/// Go's `url.QueryUnescape`: `+` is a space, `%XX` must be two hex digits.
pub fn query_unescape(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = b
                    .get(i + 1..i + 3)
                    .filter(|h| h.iter().all(u8::is_ascii_hexdigit));
                let Some(h) = hex else {
                    let end = (i + 3).min(b.len());
                    return Err(format!(
                        "invalid URL escape {:?}",
                        String::from_utf8_lossy(&b[i..end])
                    ));
                };
                out.push(
                    u8::from_str_radix(std::str::from_utf8(h).unwrap_or("0"), 16).unwrap_or(0),
                );
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

impl Processor for UrlDecode {
    fn run(&self, e: &mut ProcEvent) -> Outcome {
        with_backup(e, self.fail_on_error, "", |e| {
            for (from, to) in &self.fields {
                let Some(v) = e.get(from) else {
                    if self.ignore_missing {
                        continue;
                    }
                    return Err(format!(
                        "could not fetch value for key: {from}, Error: {KEY_NOT_FOUND}"
                    ));
                };
                let Value::String(s) = v else {
                    return Err(format!(
                        "invalid type for `from`, expecting a string received {}",
                        super::type_name(v)
                    ));
                };
                let decoded = query_unescape(s)
                    .map_err(|err| format!("error trying to URL-decode {s}: {err}"))?;
                let target = if to.is_empty() { from } else { to };
                e.put(target, Value::from(decoded))?;
            }
            Ok(())
        })
    }
    fn describe(&self) -> String {
        format!("urldecode={:?}", self.fields)
    }
}

pub fn urldecode(o: &Opts) -> Result<Box<dyn Processor>, String> {
    Ok(Box::new(UrlDecode {
        fields: from_to_list(o, "from", "to")?,
        ignore_missing: o.bool_or("ignore_missing", false)?,
        fail_on_error: o.bool_or("fail_on_error", true)?,
    }))
}

// ---------------------------------------------------------------- uppercase, lowercase

struct AlterCase {
    upper: bool,
    fields: Vec<String>,
    values: Vec<String>,
    ignore_missing: bool,
    fail_on_error: bool,
    full_path: bool,
}

impl AlterCase {
    fn alter(&self, s: &str) -> String {
        if self.upper {
            s.to_uppercase()
        } else {
            s.to_lowercase()
        }
    }

    /// `mapstr.M.AlterPath`: walks `path` matching keys case-insensitively and renames the
    /// keys on the way (all of them, or the last only without `alter_full_field`) in place.
    /// Returns false when the path is not there.
    fn alter_path(&self, m: &mut Map, segs: &[&str], full: bool) -> Result<bool, String> {
        let Some((seg, rest)) = segs.split_first() else {
            return Ok(true);
        };
        let Some(key) = m.keys().find(|k| k.eq_ignore_ascii_case(seg)).cloned() else {
            return Ok(false);
        };
        let rename = full || rest.is_empty();
        let new_key = if rename {
            self.alter(&key)
        } else {
            key.clone()
        };
        if new_key != key {
            if m.contains_key(&new_key) {
                return Err(format!(
                    "could not alter key {key}: {new_key} already exists"
                ));
            }
            let v = m.remove(&key).expect("found above");
            m.insert(new_key.clone(), v);
        }
        if rest.is_empty() {
            return Ok(true);
        }
        match m.get_mut(&new_key) {
            Some(Value::Object(inner)) => self.alter_path(inner, rest, full),
            _ => Ok(false),
        }
    }
}

impl Processor for AlterCase {
    fn run(&self, e: &mut ProcEvent) -> Outcome {
        let name = if self.upper { "uppercase" } else { "lowercase" };
        with_backup(
            e,
            self.fail_on_error,
            &format!("{name} processor failed: "),
            |e| {
                for f in &self.fields {
                    let segs: Vec<&str> = f.split('.').collect();
                    if !self.alter_path(&mut e.fields, &segs, self.full_path)?
                        && !self.ignore_missing
                    {
                        return Err(format!(
                            "could not fetch value for key: {f}, Error: {KEY_NOT_FOUND}"
                        ));
                    }
                }
                for f in &self.values {
                    match e.get(f) {
                        None if self.ignore_missing => {}
                        None => {
                            return Err(format!(
                                "could not fetch value for key: {f}, Error: {KEY_NOT_FOUND}"
                            ))
                        }
                        Some(Value::String(s)) => {
                            let v = self.alter(s);
                            e.put(f, Value::from(v))?;
                        }
                        Some(other) => {
                            return Err(format!(
                                "value of key {f} is not a string: {}",
                                super::type_name(other)
                            ))
                        }
                    }
                }
                Ok(())
            },
        )
    }
    fn describe(&self) -> String {
        format!(
            "{}={:?}",
            if self.upper { "uppercase" } else { "lowercase" },
            self.fields
        )
    }
}

fn alter_case(o: &Opts, upper: bool) -> Result<Box<dyn Processor>, String> {
    let fields = o.strs_opt("fields")?.unwrap_or_default();
    let values = o.strs_opt("values")?.unwrap_or_default();
    if fields.is_empty() && values.is_empty() {
        return Err(o.fail("either fields or values must be set"));
    }
    Ok(Box::new(AlterCase {
        upper,
        fields,
        values,
        ignore_missing: o.bool_or("ignore_missing", false)?,
        fail_on_error: o.bool_or("fail_on_error", true)?,
        full_path: o.bool_or("alter_full_field", true)?,
    }))
}

pub fn uppercase(o: &Opts) -> Result<Box<dyn Processor>, String> {
    alter_case(o, true)
}

pub fn lowercase(o: &Opts) -> Result<Box<dyn Processor>, String> {
    alter_case(o, false)
}

// ---------------------------------------------------------------- extract_array

struct ExtractArray {
    field: String,
    mappings: Vec<(String, usize)>,
    ignore_missing: bool,
    overwrite_keys: bool,
    fail_on_error: bool,
    omit_empty: bool,
}

impl Processor for ExtractArray {
    fn run(&self, e: &mut ProcEvent) -> Outcome {
        with_backup(e, self.fail_on_error, "", |e| {
            let Some(v) = e.get(&self.field) else {
                if self.ignore_missing {
                    return Ok(());
                }
                return Err(format!(
                    "could not fetch value for key: {}, Error: {KEY_NOT_FOUND}",
                    self.field
                ));
            };
            let Value::Array(arr) = v else {
                return Err(format!(
                    "unsupported type for field {}: got: {}",
                    self.field,
                    super::type_name(v)
                ));
            };
            let arr = arr.clone();
            for (key, idx) in &self.mappings {
                let Some(item) = arr.get(*idx) else {
                    return Err(format!("index {idx} exceeds length of {}", arr.len()));
                };
                let empty = match item {
                    Value::Null => true,
                    Value::String(s) => s.is_empty(),
                    Value::Array(a) => a.is_empty(),
                    Value::Object(m) => m.is_empty(),
                    _ => false,
                };
                if self.omit_empty && empty {
                    continue;
                }
                if !self.overwrite_keys && e.has(key) {
                    return Err(format!("target field {key} already has a value"));
                }
                e.put(key, item.clone())?;
            }
            Ok(())
        })
    }
    fn describe(&self) -> String {
        format!(
            "extract_array={{field={}, mappings={:?}}}",
            self.field, self.mappings
        )
    }
}

pub fn extract_array(o: &Opts) -> Result<Box<dyn Processor>, String> {
    let field = o.string("field")?;
    let m = o
        .object_opt("mappings")?
        .ok_or_else(|| o.missing("mappings"))?;
    let mut flat = Map::new();
    flatten_labels("", &m, &mut flat);
    let mut mappings = Vec::new();
    for (k, v) in flat {
        let idx = v.as_u64().ok_or_else(|| {
            o.fail(format!(
                "mapping for field '{k}' must be a non-negative index"
            ))
        })?;
        mappings.push((k, idx as usize));
    }
    Ok(Box::new(ExtractArray {
        field,
        mappings,
        ignore_missing: o.bool_or("ignore_missing", false)?,
        overwrite_keys: o.bool_or("overwrite_keys", false)?,
        fail_on_error: o.bool_or("fail_on_error", true)?,
        omit_empty: o.bool_or("omit_empty", false)?,
    }))
}

#[cfg(test)]
mod tests {
    use crate::publish::processors::testutil::*;
    use serde_json::json;

    #[test]
    fn drop_event() {
        assert_eq!(
            run("drop_event: {when: {equals: {a: 1}}}", r#"{"a":1}"#),
            None
        );
        assert!(run("drop_event: {when: {equals: {a: 1}}}", r#"{"a":2}"#).is_some());
        assert_eq!(run("drop_event: ~", r#"{"a":1}"#), None);
        assert_eq!(
            err("drop_event: {foo: 1}"),
            "unexpected foo option in processors.0.drop_event"
        );
    }

    #[test]
    fn drop_fields() {
        let e =
            r#"{"a":{"b":1,"c":2},"d":"x","type":"http","proc":{"cpu":{"total":1},"mem":{"x":2}}}"#;
        assert_eq!(
            run("drop_fields: {fields: [a.b, d, type]}", e),
            Some(json!({"a":{"c":2},"type":"http","proc":{"cpu":{"total":1},"mem":{"x":2}}}))
        );
        // Regular expressions on the dotted names (the docs' `/^proc.cpu.*/`-style example).
        assert_eq!(
            run(
                r#"drop_fields: {fields: ['/^proc\.cpu/', a], ignore_missing: true}"#,
                e
            ),
            Some(json!({"d":"x","type":"http","proc":{"mem":{"x":2}}}))
        );
        // A missing field is an error (logged; the event goes on) unless ignore_missing.
        let l = proc("drop_fields: {fields: [nope]}").unwrap();
        let mut ev1 = ev(e);
        assert!(l.run(&mut ev1));
        assert_eq!(err("drop_fields: {}"), "failed to unpack the drop_fields configuration: missing required field accessing 'processors.0.drop_fields.fields'");
        assert_eq!(err("drop_fields: {fields: [a], ignore_missing: maybe}"), "failed to unpack the drop_fields configuration: type mismatch accessing 'processors.0.drop_fields.ignore_missing' (expected bool)");
        assert_eq!(
            err("drop_fields: {fields: [a], nope: 1}"),
            "unexpected nope option in processors.0.drop_fields"
        );
    }

    #[test]
    fn include_fields() {
        assert_eq!(
            run(
                "include_fields: {fields: [a.b, d]}",
                r#"{"a":{"b":1,"c":2},"d":"x","e":3,"type":"http"}"#
            ),
            Some(json!({"a":{"b":1},"d":"x","type":"http"}))
        );
    }

    #[test]
    fn add_fields_tags_labels() {
        // The docs' example: fields under `project`.
        assert_eq!(
            run("add_fields: {target: project, fields: {name: myproject, id: '574734885120952459'}}", r#"{"a":1}"#),
            Some(json!({"a":1,"project":{"name":"myproject","id":"574734885120952459"}}))
        );
        assert_eq!(
            run("add_fields: {fields: {x.y: 1}}", r#"{"fields":{"z":2}}"#),
            Some(json!({"fields":{"z":2,"x":{"y":1}}}))
        );
        assert_eq!(
            run("add_fields: {target: '', fields: {a: 2}}", r#"{"a":1}"#),
            Some(json!({"a":2}))
        );
        assert_eq!(
            run(
                "add_tags: {tags: [web, production], target: environment}",
                r#"{}"#
            ),
            Some(json!({"environment":["web","production"]}))
        );
        assert_eq!(
            run("add_tags: {tags: web}", r#"{"tags":["a","web"]}"#),
            Some(json!({"tags":["a","web","web"]}))
        );
        assert_eq!(
            run("add_labels: {labels: {number: 1, with.dots: test, nested: {with.dots: nested}, bool: true}}", r#"{}"#),
            Some(json!({"labels":{"number":1,"with.dots":"test","nested.with.dots":"nested","bool":true}}))
        );
        assert_eq!(err("add_fields: {target: x}"), "failed to unpack the add_fields configuration: missing required field accessing 'processors.0.add_fields.fields'");
    }

    #[test]
    fn rename_and_copy() {
        assert_eq!(
            run(
                "rename: {fields: [{from: a.g, to: e.d}, {from: test, to: hello}]}",
                r#"{"a":{"g":1},"test":"x"}"#
            ),
            Some(json!({"a":{},"e":{"d":1},"hello":"x"}))
        );
        // Target exists: the event is restored and error.message set.
        assert_eq!(
            run("rename: {fields: [{from: a, to: b}]}", r#"{"a":1,"b":2}"#),
            Some(
                json!({"a":1,"b":2,"error":{"message":"Failed to rename fields in processor: target field b already exists, drop or rename this field first"}})
            )
        );
        assert_eq!(
            run(
                "rename: {fields: [{from: x, to: b}], ignore_missing: true}",
                r#"{"a":1}"#
            ),
            Some(json!({"a":1}))
        );
        assert_eq!(
            run(
                "rename: {fields: [{from: x, to: b}], fail_on_error: false}",
                r#"{"a":1}"#
            ),
            Some(json!({"a":1}))
        );
        assert_eq!(
            run(
                "copy_fields: {fields: [{from: message, to: event.original}]}",
                r#"{"message":"hi"}"#
            ),
            Some(json!({"message":"hi","event":{"original":"hi"}}))
        );
        assert_eq!(err("rename: {}"), "missing fields option");
    }

    #[test]
    fn move_fields() {
        assert_eq!(
            run(
                "move_fields: {parent_path: app, from: [method, elapsed_time], to: 'rpc.'}",
                r#"{"app":{"method":"a","elapsed_time":3,"other":1}}"#
            ),
            Some(json!({"app":{"other":1},"rpc":{"method":"a","elapsed_time":3}}))
        );
        assert_eq!(
            run(
                "move_fields: {to: 'my_prefix_', exclude: [keep]}",
                r#"{"a":1,"keep":2}"#
            ),
            Some(json!({"my_prefix_a":1,"keep":2}))
        );
    }

    #[test]
    fn convert() {
        let cfg = "convert: {fields: [{from: src_ip, to: source.ip, type: ip}, {from: src_port, to: source.port, type: integer}, {from: f, type: double}, {from: b, type: boolean}, {from: n, type: string}], ignore_missing: true}";
        assert_eq!(
            run(
                cfg,
                r#"{"src_ip":"192.168.1.1","src_port":"0x10","f":"1.5","b":"true","n":12}"#
            ),
            Some(
                json!({"src_ip":"192.168.1.1","source":{"ip":"192.168.1.1","port":16},"src_port":"0x10","f":1.5,"b":true,"n":"12"})
            )
        );
        assert_eq!(
            run(
                "convert: {fields: [{from: a, type: long}], tag: conv_err}",
                r#"{"a":"x"}"#
            ),
            Some(
                json!({"a":"x","tags":["conv_err"],"error":{"message":"unable to convert field [a]: failed to convert value [x] to long"}})
            )
        );
        assert_eq!(
            run(
                "convert: {fields: [{from: a, to: b, type: long}], mode: rename}",
                r#"{"a":"7"}"#
            ),
            Some(json!({"b":7}))
        );
        assert!(err("convert: {fields: [{from: a, type: nope}]}").contains("invalid type 'nope'"));
    }

    #[test]
    fn truncate() {
        assert_eq!(
            run(
                "truncate_fields: {fields: [message], max_bytes: 5}",
                r#"{"message":"hello world"}"#
            ),
            Some(json!({"message":"hello","log":{"flags":["truncated"]}}))
        );
        assert_eq!(
            run(
                "truncate_fields: {fields: [message], max_characters: 2}",
                r#"{"message":"héllo"}"#
            ),
            Some(json!({"message":"hé","log":{"flags":["truncated"]}}))
        );
        assert_eq!(
            run(
                "truncate_fields: {fields: [message], max_bytes: 50}",
                r#"{"message":"short"}"#
            ),
            Some(json!({"message":"short"}))
        );
        assert!(
            err("truncate_fields: {fields: [a]}").contains("either max_bytes or max_characters")
        );
        assert!(
            err("truncate_fields: {fields: [a], max_bytes: 1, max_characters: 1}")
                .contains("only one of")
        );
    }

    #[test]
    fn replace_urldecode_case() {
        assert_eq!(
            run("replace: {fields: [{field: file.path, pattern: '\\\\', replacement: '/'}, {field: text, pattern: 'ab(c)', replacement: 'x$1'}]}", r#"{"file":{"path":"C:\\a\\b"},"text":"abcabc"}"#),
            Some(json!({"file":{"path":"C:/a/b"},"text":"xcxc"}))
        );
        assert_eq!(
            run(
                "urldecode: {fields: [{from: url.original, to: url.decoded}]}",
                r#"{"url":{"original":"correct%20data+x%3F"}}"#
            ),
            Some(json!({"url":{"original":"correct%20data+x%3F","decoded":"correct data x?"}}))
        );
        let r = run("urldecode: {fields: [{from: u}]}", r#"{"u":"bad%zz"}"#).unwrap();
        assert!(
            r["error"]["message"]
                .as_str()
                .unwrap()
                .contains("invalid URL escape"),
            "{r}"
        );
        assert_eq!(
            run(
                "uppercase: {fields: [a.B], values: [c]}",
                r#"{"a":{"b":1},"c":"xY"}"#
            ),
            Some(json!({"A":{"B":1},"c":"XY"}))
        );
        assert_eq!(
            run(
                "lowercase: {fields: [A.B], alter_full_field: false}",
                r#"{"A":{"B":1}}"#
            ),
            Some(json!({"A":{"b":1}}))
        );
    }

    #[test]
    fn extract_array() {
        let cfg = "extract_array: {field: my_array, mappings: {source.ip: 0, destination.ip: 1, network.transport: 2}}";
        assert_eq!(
            run(cfg, r#"{"my_array":["10.1.1.1","10.2.2.2","tcp"]}"#),
            Some(
                json!({"my_array":["10.1.1.1","10.2.2.2","tcp"],"source":{"ip":"10.1.1.1"},"destination":{"ip":"10.2.2.2"},"network":{"transport":"tcp"}})
            )
        );
        let r = run(cfg, r#"{"my_array":"x"}"#).unwrap();
        assert_eq!(
            r["error"]["message"],
            "unsupported type for field my_array: got: string"
        );
    }
}
