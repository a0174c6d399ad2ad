//! Processors that decode or derive values: `decode_base64_field`, `decode_json_fields`,
//! `decompress_gzip_field`, `detect_mime_type`, `dissect`, `timestamp`, `registered_domain`,
//! `fingerprint`, `community_id`, `add_network_direction`, `add_id`, `add_locale`.
//!
//! Hand-written where libbeat's behaviour is Go's own and no crate reproduces it: Go time
//! layouts (`timestamp`), `net/http`'s content sniffing after `infer`'s magic numbers
//! (`detect_mime_type`, as libbeat's `mime.DetectBytes` falls back from h2non/filetype to
//! `http.DetectContentType`), the dissect tokenizer, and Elasticsearch's time-based ids.

use super::fields::{append_tags, deep_update, expand_dots, with_backup};
use super::{Opts, Outcome, ProcEvent, Processor};
use crate::common::Ts;
use base64::Engine;
use serde_json::Value;
use std::io::Read;
use std::net::IpAddr;
use std::sync::Mutex;

const KEY_NOT_FOUND: &str = "key not found";

/// `field: {from, to}` of the single-field decoders.
fn from_to(o: &Opts) -> Result<(String, String), String> {
    let from = o
        .str_opt("field.from")?
        .ok_or_else(|| o.missing("field.from"))?;
    Ok((from, o.string_or("field.to", "")?))
}

// ---------------------------------------------------------------- decode_base64_field, decompress_gzip_field

#[derive(Clone, Copy, PartialEq)]
enum Decoder {
    Base64,
    Gzip,
}

struct DecodeField {
    kind: Decoder,
    from: String,
    to: String,
    ignore_missing: bool,
    fail_on_error: bool,
}

impl Processor for DecodeField {
    fn run(&self, e: &mut ProcEvent) -> Outcome {
        let prefix = match self.kind {
            Decoder::Base64 => "failed to decode base64 fields in processor: ",
            Decoder::Gzip => "failed to decompress field in decompress_gzip_field processor: ",
        };
        with_backup(e, self.fail_on_error, prefix, |e| {
            let Some(v) = e.get(&self.from) else {
                if self.ignore_missing {
                    return Ok(());
                }
                return Err(format!(
                    "could not fetch value for key: {}, Error: {KEY_NOT_FOUND}",
                    self.from
                ));
            };
            let Value::String(s) = v else {
                return Err(format!(
                    "invalid type for `from`, expecting a string received {}",
                    super::type_name(v)
                ));
            };
            let out = match self.kind {
                Decoder::Base64 => {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(s.as_bytes())
                        .map_err(|err| format!("error trying to decode {s}: {err}"))?;
                    String::from_utf8_lossy(&bytes).into_owned()
                }
                Decoder::Gzip => {
                    let mut d = flate2::read::GzDecoder::new(s.as_bytes());
                    let mut out = Vec::new();
                    d.read_to_end(&mut out)
                        .map_err(|err| format!("error decompressing field {}: {err}", self.from))?;
                    String::from_utf8_lossy(&out).into_owned()
                }
            };
            let target = if self.to.is_empty() {
                &self.from
            } else {
                &self.to
            };
            e.put(target, Value::from(out))
        })
    }
    fn describe(&self) -> String {
        let name = match self.kind {
            Decoder::Base64 => "decode_base64_field",
            Decoder::Gzip => "decompress_gzip_field",
        };
        format!("{name}={{from:{}, to:{}}}", self.from, self.to)
    }
}

fn decode_field(o: &Opts, kind: Decoder) -> Result<Box<dyn Processor>, String> {
    o.allowed(&["field", "ignore_missing", "fail_on_error"])?;
    let (from, to) = from_to(o)?;
    Ok(Box::new(DecodeField {
        kind,
        from,
        to,
        ignore_missing: o.bool_or("ignore_missing", false)?,
        fail_on_error: o.bool_or("fail_on_error", true)?,
    }))
}

pub fn decode_base64_field(o: &Opts) -> Result<Box<dyn Processor>, String> {
    decode_field(o, Decoder::Base64)
}

pub fn decompress_gzip_field(o: &Opts) -> Result<Box<dyn Processor>, String> {
    decode_field(o, Decoder::Gzip)
}

// ---------------------------------------------------------------- decode_json_fields

struct DecodeJson {
    fields: Vec<String>,
    max_depth: i64,
    process_array: bool,
    target: Option<String>,
    overwrite_keys: bool,
    add_error_key: bool,
    document_id: Option<String>,
    expand_keys: bool,
}

/// Decodes nested JSON strings below the top level, `depth` levels deep.
fn decode_nested(v: Value, depth: i64, arrays: bool) -> Value {
    if depth <= 0 {
        return v;
    }
    let try_str = |v: Value| match &v {
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(m)) => decode_nested(Value::Object(m), depth - 1, arrays),
            Ok(Value::Array(a)) if arrays => decode_nested(Value::Array(a), depth - 1, arrays),
            _ => v,
        },
        _ => v,
    };
    match v {
        Value::Object(m) => Value::Object(m.into_iter().map(|(k, v)| (k, try_str(v))).collect()),
        Value::Array(a) if arrays => Value::Array(a.into_iter().map(try_str).collect()),
        other => other,
    }
}

impl Processor for DecodeJson {
    fn run(&self, e: &mut ProcEvent) -> Outcome {
        let mut errs = Vec::new();
        for f in &self.fields {
            let Some(Value::String(text)) = e.get(f) else {
                continue;
            };
            let decoded = match serde_json::from_str::<Value>(text) {
                Ok(v) => v,
                Err(err) => {
                    let msg = format!("parsing input as JSON: {err}");
                    if self.add_error_key {
                        let _ = e.put("error.message", Value::from(msg.clone()));
                        let _ = e.put("error.type", Value::from("json"));
                    }
                    errs.push(msg);
                    continue;
                }
            };
            if matches!(decoded, Value::Array(_))
                && !self.process_array
                && self.target.as_deref() == Some("")
            {
                continue;
            }
            let mut decoded = decode_nested(decoded, self.max_depth - 1, self.process_array);
            if self.expand_keys {
                if let Value::Object(m) = decoded {
                    decoded = Value::Object(expand_dots(m));
                }
            }
            if let (Some(id_key), Value::Object(m)) = (&self.document_id, &mut decoded) {
                if let Some(Value::String(id)) = m.remove(id_key) {
                    let _ = e.put("@metadata._id", Value::from(id));
                }
            }
            match self.target.as_deref() {
                Some("") => match decoded {
                    Value::Object(m) => e.deep_update(&m, self.overwrite_keys),
                    _ => {
                        errs.push("failed to add target to root, event is not a dictionary".into())
                    }
                },
                Some(t) => {
                    if let (Some(Value::Object(existing)), Value::Object(new)) =
                        (e.get(t).cloned(), &decoded)
                    {
                        let mut merged = existing;
                        deep_update(&mut merged, new, true);
                        let _ = e.put(t, Value::Object(merged));
                    } else {
                        let _ = e.put(t, decoded);
                    }
                }
                None => {
                    let _ = e.put(f, decoded);
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
        format!(
            "decode_json_fields=fields={:?}, max_depth={}, process_array={}, target={:?}",
            self.fields, self.max_depth, self.process_array, self.target
        )
    }
}

pub fn decode_json_fields(o: &Opts) -> Result<Box<dyn Processor>, String> {
    o.allowed(&[
        "fields",
        "max_depth",
        "overwrite_keys",
        "add_error_key",
        "process_array",
        "target",
        "document_id",
        "expand_keys",
    ])?;
    Ok(Box::new(DecodeJson {
        fields: o.strs("fields")?,
        max_depth: o.i64_or("max_depth", 1)?,
        process_array: o.bool_or("process_array", false)?,
        target: o.str_opt("target")?,
        overwrite_keys: o.bool_or("overwrite_keys", false)?,
        add_error_key: o.bool_or("add_error_key", false)?,
        document_id: o.str_opt("document_id")?.filter(|s| !s.is_empty()),
        expand_keys: o.bool_or("expand_keys", false)?,
    }))
}

// ---------------------------------------------------------------- detect_mime_type

struct DetectMime {
    field: String,
    target: String,
}

/// libbeat's `mime.DetectBytes`.
pub fn detect_mime(data: &[u8]) -> Option<String> {
    if data.is_empty() {
        return None;
    }
    let header = &data[..data.len().min(8192)];
    // h2non/filetype has no text types; those are left to the HTTP sniffing below.
    if let Some(t) = infer::get(header).filter(|t| t.matcher_type() != infer::MatcherType::Text) {
        return Some(t.mime_type().to_string());
    }
    let net = http_sniff(header);
    if net.starts_with("text/plain") {
        if serde_json::from_slice::<serde::de::IgnoredAny>(data).is_ok() {
            return Some("application/json".into());
        }
        if looks_like_xml(data) {
            return Some("text/xml".into());
        }
    }
    (net != "application/octet-stream").then(|| net.to_string())
}

/// Go's `encoding/xml` accepts a document of balanced elements; this checks the element
/// structure (names of opening and closing tags), which is what separates XML from text here.
fn looks_like_xml(data: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(data) else {
        return false;
    };
    let s = s.trim();
    if !s.starts_with('<') {
        return false;
    }
    let mut stack: Vec<&str> = Vec::new();
    let mut rest = s;
    let mut seen_element = false;
    while let Some(i) = rest.find('<') {
        if !rest[..i].trim().is_empty() && stack.is_empty() {
            return false;
        }
        rest = &rest[i + 1..];
        let Some(end) = rest.find('>') else {
            return false;
        };
        let tag = &rest[..end];
        rest = &rest[end + 1..];
        if tag.starts_with('?') || tag.starts_with('!') {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            if stack.pop() != Some(name.trim()) {
                return false;
            }
        } else {
            seen_element = true;
            let name = tag
                .split_whitespace()
                .next()
                .unwrap_or("")
                .trim_end_matches('/');
            if name.is_empty() {
                return false;
            }
            if !tag.ends_with('/') {
                stack.push(name);
            }
        }
    }
    seen_element && stack.is_empty() && rest.trim().is_empty()
}

/// `net/http.DetectContentType` (WHATWG MIME sniffing, the signatures Go checks that `infer`
/// has not matched already).
fn http_sniff(data: &[u8]) -> &'static str {
    let data = &data[..data.len().min(512)];
    let ws = |b: u8| matches!(b, b'\t' | b'\n' | 0x0c | b'\r' | b' ');
    let first_non_ws = data.iter().position(|b| !ws(*b)).unwrap_or(data.len());
    let trimmed = &data[first_non_ws..];
    const HTML: &[&str] = &[
        "<!DOCTYPE HTML",
        "<HTML",
        "<HEAD",
        "<SCRIPT",
        "<IFRAME",
        "<H1",
        "<DIV",
        "<FONT",
        "<TABLE",
        "<A",
        "<STYLE",
        "<TITLE",
        "<B",
        "<BODY",
        "<BR",
        "<P",
        "<!--",
    ];
    for sig in HTML {
        let n = sig.len();
        if trimmed.len() > n
            && trimmed[..n].eq_ignore_ascii_case(sig.as_bytes())
            && (trimmed[n] == b' ' || trimmed[n] == b'>')
        {
            return "text/html; charset=utf-8";
        }
    }
    if trimmed.starts_with(b"<?xml") {
        return "text/xml; charset=utf-8";
    }
    let exact: &[(&[u8], &str)] = &[
        (b"%PDF-", "application/pdf"),
        (b"%!PS-Adobe-", "application/postscript"),
        (b"\xFE\xFF", "text/plain; charset=utf-16be"),
        (b"\xFF\xFE", "text/plain; charset=utf-16le"),
        (b"\xEF\xBB\xBF", "text/plain; charset=utf-8"),
        (b"\x00\x00\x01\x00", "image/x-icon"),
        (b"\x00\x00\x02\x00", "image/x-icon"),
        (b"BM", "image/bmp"),
        (b"GIF87a", "image/gif"),
        (b"GIF89a", "image/gif"),
        (b"\x89PNG\x0D\x0A\x1A\x0A", "image/png"),
        (b"\xFF\xD8\xFF", "image/jpeg"),
        (b".snd", "audio/basic"),
        (b"OggS\x00", "application/ogg"),
        (b"MThd\x00\x00\x00\x06", "audio/midi"),
        (b"ID3", "audio/mpeg"),
        (b"\x1A\x45\xDF\xA3", "video/webm"),
        (
            b"\x52\x61\x72\x20\x1A\x07\x00",
            "application/x-rar-compressed",
        ),
        (
            b"\x52\x61\x72\x21\x1A\x07\x00",
            "application/x-rar-compressed",
        ),
        (b"\x50\x4B\x03\x04", "application/zip"),
        (b"\x1F\x8B\x08", "application/x-gzip"),
        (b"\x00\x61\x73\x6D", "application/wasm"),
        (b"wOFF", "font/woff"),
        (b"wOF2", "font/woff2"),
    ];
    for (sig, mime) in exact {
        if data.starts_with(sig) {
            return mime;
        }
    }
    // Text: no byte that is binary in the WHATWG sense.
    let binary = data.iter().any(|&b| {
        b <= 0x08 || b == 0x0B || (0x0E..=0x1A).contains(&b) || (0x1C..=0x1F).contains(&b)
    });
    if !binary {
        return "text/plain; charset=utf-8";
    }
    "application/octet-stream"
}

impl Processor for DetectMime {
    fn run(&self, e: &mut ProcEvent) -> Outcome {
        if e.has(&self.target) {
            return Err(format!("target field {} already exists", self.target));
        }
        let Some(v) = e.get(&self.field) else {
            return Ok(true);
        };
        // libbeat reads the field as a string and skips any other type silently.
        let mime = match v {
            Value::String(s) => detect_mime(s.as_bytes()),
            _ => return Ok(true),
        };
        if let Some(m) = mime {
            e.put(&self.target, Value::from(m))?;
        }
        Ok(true)
    }
    fn describe(&self) -> String {
        format!("detect_mime_type={}->{}", self.field, self.target)
    }
}

pub fn detect_mime_type(o: &Opts) -> Result<Box<dyn Processor>, String> {
    o.allowed(&["field", "target"])?;
    Ok(Box::new(DetectMime {
        field: o.string("field")?,
        target: o.string("target")?,
    }))
}

// ---------------------------------------------------------------- dissect

#[derive(Debug, Clone)]
struct DKey {
    name: String,
    skip: bool,
    append: bool,
    ordinal: usize,
    indirect_name: bool,
    indirect_value: bool,
    greedy: bool,
    conv: Option<String>,
}

#[derive(Debug)]
struct Tokenizer {
    prefix: String,
    /// Each key and the delimiter after it ("" for the last).
    keys: Vec<(DKey, String)>,
}

fn parse_tokenizer(t: &str) -> Result<Tokenizer, String> {
    if t.is_empty() {
        return Err("empty string provided".into());
    }
    let mut keys: Vec<(DKey, String)> = Vec::new();
    let mut rest = t;
    let prefix_end = rest.find("%{").ok_or("invalid dissect tokenizer")?;
    let prefix = rest[..prefix_end].to_string();
    rest = &rest[prefix_end..];
    while let Some(body) = rest.strip_prefix("%{") {
        let close = body.find('}').ok_or("invalid dissect tokenizer")?;
        let mut spec = &body[..close];
        rest = &body[close + 1..];
        let delim_end = rest.find("%{").unwrap_or(rest.len());
        let delim = rest[..delim_end].to_string();
        rest = &rest[delim_end..];
        let mut k = DKey {
            name: String::new(),
            skip: false,
            append: false,
            ordinal: 0,
            indirect_name: false,
            indirect_value: false,
            greedy: false,
            conv: None,
        };
        if let Some(s) = spec.strip_suffix("->") {
            k.greedy = true;
            spec = s;
        }
        if let Some((s, conv)) = spec.split_once('|') {
            let conv = conv.to_string();
            if ![
                "integer", "long", "float", "double", "boolean", "ip", "string",
            ]
            .contains(&conv.as_str())
            {
                return Err(format!("invalid data type: {conv}"));
            }
            k.conv = Some(conv);
            spec = s;
        }
        match spec.as_bytes().first() {
            Some(b'?') => {
                k.skip = true;
                spec = &spec[1..];
            }
            Some(b'+') => {
                k.append = true;
                spec = &spec[1..];
            }
            Some(b'*') => {
                k.indirect_name = true;
                spec = &spec[1..];
            }
            Some(b'&') => {
                k.indirect_value = true;
                spec = &spec[1..];
            }
            _ => {}
        }
        if let Some((s, ord)) = spec.split_once('/') {
            k.ordinal = ord.parse().map_err(|_| "invalid dissect tokenizer")?;
            spec = s;
        }
        if spec.is_empty() {
            k.skip = true;
        }
        k.name = spec.to_string();
        if delim.is_empty() && rest.starts_with("%{") {
            return Err("invalid dissect tokenizer".into());
        }
        keys.push((k, delim));
    }
    if keys.is_empty() || !rest.is_empty() {
        return Err("invalid dissect tokenizer".into());
    }
    Ok(Tokenizer { prefix, keys })
}

impl Tokenizer {
    /// Splits `s` into the keys' values (libbeat's `Dissector.extract`).
    fn dissect<'a>(&self, s: &'a str) -> Result<Vec<&'a str>, String> {
        let mut rest = s.strip_prefix(self.prefix.as_str()).ok_or_else(|| {
            format!(
                "could not find beginning delimiter: `{}` in remaining: `{s}`, (offset: 0)",
                self.prefix
            )
        })?;
        let mut out = Vec::with_capacity(self.keys.len());
        for (i, (k, delim)) in self.keys.iter().enumerate() {
            if delim.is_empty() {
                if i + 1 == self.keys.len() {
                    out.push(rest);
                    rest = "";
                }
                continue;
            }
            let pos = rest.find(delim.as_str()).ok_or_else(|| {
                format!(
                    "could not find delimiter: `{delim}` in remaining: `{rest}`, (offset: {})",
                    s.len() - rest.len()
                )
            })?;
            out.push(&rest[..pos]);
            rest = &rest[pos + delim.len()..];
            if k.greedy {
                while let Some(r) = rest.strip_prefix(delim.as_str()) {
                    rest = r;
                }
            }
        }
        Ok(out)
    }
}

struct Dissect {
    tok: Tokenizer,
    field: String,
    prefix: String,
    ignore_failure: bool,
    overwrite_keys: bool,
    trim: (bool, bool),
    trim_chars: Vec<char>,
}

impl Dissect {
    fn values(&self, s: &str) -> Result<Vec<(String, Value)>, String> {
        let parts = self.tok.dissect(s)?;
        let trim = |v: &str| -> String {
            let mut v = v;
            if self.trim.0 {
                v = v.trim_start_matches(&self.trim_chars[..]);
            }
            if self.trim.1 {
                v = v.trim_end_matches(&self.trim_chars[..]);
            }
            v.to_string()
        };
        let mut out: Vec<(String, Value)> = Vec::new();
        // Per appended key: (ordinal, position, value) of each part.
        type Parts = Vec<(usize, usize, String)>;
        let mut appends: Vec<(String, Parts)> = Vec::new();
        let mut names: Vec<(String, String)> = Vec::new();
        let mut refs: Vec<(String, String)> = Vec::new();
        for (i, ((k, _), v)) in self.tok.keys.iter().zip(parts.iter()).enumerate() {
            let v = trim(v);
            if k.indirect_name {
                names.push((k.name.clone(), v));
                continue;
            }
            if k.indirect_value {
                refs.push((k.name.clone(), v));
                continue;
            }
            if k.skip {
                continue;
            }
            if k.append {
                match appends.iter_mut().find(|(n, _)| *n == k.name) {
                    Some((_, list)) => list.push((k.ordinal, i, v)),
                    None => appends.push((k.name.clone(), vec![(k.ordinal, i, v)])),
                }
                continue;
            }
            // A plain key followed by appends to the same name starts the list.
            if self
                .tok
                .keys
                .iter()
                .any(|(o, _)| o.append && o.name == k.name)
            {
                match appends.iter_mut().find(|(n, _)| *n == k.name) {
                    Some((_, list)) => list.push((k.ordinal, i, v)),
                    None => appends.push((k.name.clone(), vec![(k.ordinal, i, v)])),
                }
                continue;
            }
            out.push((k.name.clone(), convert(&v, k.conv.as_deref())?));
        }
        for (name, mut list) in appends {
            list.sort_by_key(|(ord, i, _)| (*ord, *i));
            let joined = list
                .into_iter()
                .map(|(_, _, v)| v)
                .collect::<Vec<_>>()
                .join(" ");
            out.push((name, Value::from(joined)));
        }
        for (key, value) in refs {
            if let Some((_, name)) = names.iter().find(|(n, _)| *n == key) {
                out.push((name.clone(), Value::from(value)));
            }
        }
        Ok(out)
    }
}

fn convert(v: &str, conv: Option<&str>) -> Result<Value, String> {
    let bad = |t: &str| format!("unable to convert value '{v}' to {t}");
    Ok(match conv {
        None | Some("string") => Value::from(v),
        Some("integer") => Value::from(v.parse::<i32>().map_err(|_| bad("integer"))?),
        Some("long") => Value::from(v.parse::<i64>().map_err(|_| bad("long"))?),
        Some("float") | Some("double") => {
            serde_json::Number::from_f64(v.parse::<f64>().map_err(|_| bad("float"))?)
                .map(Value::Number)
                .ok_or_else(|| bad("float"))?
        }
        Some("boolean") => Value::from(v.parse::<bool>().map_err(|_| bad("boolean"))?),
        Some("ip") => {
            v.parse::<IpAddr>().map_err(|_| bad("ip"))?;
            Value::from(v)
        }
        Some(other) => return Err(format!("invalid data type: {other}")),
    })
}

impl Processor for Dissect {
    fn run(&self, e: &mut ProcEvent) -> Outcome {
        let Some(v) = e.get(&self.field) else {
            return Err(format!(
                "could not fetch value for key: {}, Error: {KEY_NOT_FOUND}",
                self.field
            ));
        };
        let Value::String(s) = v else {
            return Err(format!(
                "field is not a string, value: `{v}`, field: `{}`",
                self.field
            ));
        };
        let values = match self.values(s) {
            Ok(v) => v,
            Err(err) => {
                if self.ignore_failure {
                    return Ok(true);
                }
                let _ = append_tags(e, "log.flags", &["dissect_parsing_error".to_string()]);
                return Err(err);
            }
        };
        if !self.overwrite_keys {
            for (k, _) in &values {
                let key = self.key(k);
                if e.has(&key) {
                    let _ = append_tags(e, "log.flags", &["dissect_parsing_error".to_string()]);
                    return Err(format!("cannot override existing key with `{key}`"));
                }
            }
        }
        for (k, v) in values {
            e.put(&self.key(&k), v)?;
        }
        Ok(true)
    }
    fn describe(&self) -> String {
        format!(
            "dissect=%{{field={}, target_prefix={}}}",
            self.field, self.prefix
        )
    }
}

impl Dissect {
    fn key(&self, k: &str) -> String {
        if self.prefix.is_empty() {
            k.to_string()
        } else {
            format!("{}.{k}", self.prefix)
        }
    }
}

pub fn dissect(o: &Opts) -> Result<Box<dyn Processor>, String> {
    let tokenizer = o.string("tokenizer")?;
    let tok = parse_tokenizer(&tokenizer)
        .map_err(|e| o.fail(format!("{e} accessing '{}.tokenizer'", o.path())))?;
    let trim = match o.string_or("trim_values", "none")?.as_str() {
        "none" => (false, false),
        "left" => (true, false),
        "right" => (false, true),
        "all" => (true, true),
        other => {
            return Err(o.fail(format!(
                "unknown trim_values '{other}' (none, left, right, all)"
            )))
        }
    };
    Ok(Box::new(Dissect {
        tok,
        field: o.string_or("field", "message")?,
        prefix: o.string_or("target_prefix", "dissect")?,
        ignore_failure: o.bool_or("ignore_failure", false)?,
        overwrite_keys: o.bool_or("overwrite_keys", false)?,
        trim,
        trim_chars: o.string_or("trim_chars", " ")?.chars().collect(),
    }))
}

// ---------------------------------------------------------------- timestamp

/// A time zone for layouts without one: UTC, the local zone, or a fixed offset.
#[derive(Clone, Copy, Debug)]
enum Zone {
    Utc,
    Local,
    Fixed(i32),
}

fn parse_zone(s: &str) -> Option<Zone> {
    match s {
        "" | "UTC" | "Z" | "Etc/UTC" | "GMT" => Some(Zone::Utc),
        "Local" => Some(Zone::Local),
        _ => parse_offset(s).map(Zone::Fixed),
    }
}

/// `+03:00`, `-0700`, `+05` in seconds.
fn parse_offset(s: &str) -> Option<i32> {
    let sign = match s.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits: String = s[1..].chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m, sec) = match digits.len() {
        2 => (digits[..2].parse::<i32>().ok()?, 0, 0),
        4 => (digits[..2].parse().ok()?, digits[2..4].parse().ok()?, 0),
        6 => (
            digits[..2].parse().ok()?,
            digits[2..4].parse().ok()?,
            digits[4..6].parse().ok()?,
        ),
        _ => return None,
    };
    Some(sign * (h * 3600 + m * 60 + sec))
}

/// Go layout tokens, longest first where they share a prefix.
const LAYOUT_TOKENS: &[&str] = &[
    "January",
    "Jan",
    "Monday",
    "Mon",
    "MST",
    "2006",
    "002",
    "01",
    "02",
    "03",
    "04",
    "05",
    "06",
    "_2",
    "15",
    "1",
    "2",
    "3",
    "4",
    "5",
    "PM",
    "pm",
    "Z07:00:00",
    "Z070000",
    "Z07:00",
    "Z0700",
    "Z07",
    "-07:00:00",
    "-070000",
    "-07:00",
    "-0700",
    "-07",
];

use crate::common::time::MONTH_NAMES as MONTHS;
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

#[derive(Default)]
struct Parts {
    year: Option<i32>,
    month: u32,
    day: u32,
    yday: Option<u32>,
    hour: u32,
    min: u32,
    sec: u32,
    nanos: u32,
    pm: Option<bool>,
    offset: Option<i32>,
}

fn take_digits(s: &str, min: usize, max: usize) -> Option<(u32, &str)> {
    let n = s.bytes().take(max).take_while(u8::is_ascii_digit).count();
    if n < min {
        return None;
    }
    Some((s[..n].parse().ok()?, &s[n..]))
}

fn take_name<'a>(s: &'a str, names: &[&str], abbrev: bool) -> Option<(usize, &'a str)> {
    for (i, n) in names.iter().enumerate() {
        let n = if abbrev { &n[..3] } else { n };
        // Byte-wise: the input need not be ASCII; a match ends on a character boundary.
        if s.as_bytes()
            .get(..n.len())
            .is_some_and(|b| b.eq_ignore_ascii_case(n.as_bytes()))
        {
            return Some((i, &s[n.len()..]));
        }
    }
    None
}

/// Fraction digits after a `.` or `,` (returns nanoseconds).
fn take_fraction(s: &str) -> Option<(u32, &str)> {
    let n = s.bytes().take_while(u8::is_ascii_digit).count();
    if n == 0 {
        return None;
    }
    let digits = &s[..n.min(9)];
    let mut v: u32 = digits.parse().ok()?;
    for _ in digits.len()..9 {
        v *= 10;
    }
    Some((v, &s[n..]))
}

/// Parses `value` with a Go layout (`time.Parse`); `zone` applies when the layout has none.
fn go_parse(layout: &str, value: &str, zone: Zone) -> Option<Ts> {
    let mut p = Parts {
        month: 1,
        day: 1,
        ..Default::default()
    };
    let mut l = layout;
    let mut v = value;
    while !l.is_empty() {
        // Fractional seconds in the layout: `.000` (exact) or `.999` (optional).
        if (l.starts_with(".0")
            || l.starts_with(",0")
            || l.starts_with(".9")
            || l.starts_with(",9"))
            && l[1..]
                .bytes()
                .take_while(|b| *b == b'0' || *b == b'9')
                .count()
                > 0
        {
            let n = l[1..].bytes().take_while(|b| *b == l.as_bytes()[1]).count();
            let optional = l.as_bytes()[1] == b'9';
            l = &l[1 + n..];
            if let Some(rest) = v.strip_prefix('.').or_else(|| v.strip_prefix(',')) {
                let (ns, r) = take_fraction(rest)?;
                p.nanos = ns;
                v = r;
            } else if !optional {
                return None;
            }
            continue;
        }
        let tok = LAYOUT_TOKENS.iter().find(|t| l.starts_with(**t));
        let Some(tok) = tok else {
            let c = l.chars().next()?;
            v = v.strip_prefix(c)?;
            l = &l[c.len_utf8()..];
            continue;
        };
        l = &l[tok.len()..];
        match *tok {
            "2006" => {
                let (y, r) = take_digits(v, 4, 4)?;
                p.year = Some(y as i32);
                v = r;
            }
            "06" => {
                let (y, r) = take_digits(v, 2, 2)?;
                p.year = Some(if y >= 69 {
                    1900 + y as i32
                } else {
                    2000 + y as i32
                });
                v = r;
            }
            "01" | "1" => {
                let (m, r) = take_digits(v, if *tok == "01" { 2 } else { 1 }, 2)?;
                p.month = m;
                v = r;
            }
            "January" | "Jan" => {
                let (m, r) = take_name(v, &MONTHS, *tok == "Jan")?;
                p.month = m as u32 + 1;
                v = r;
            }
            "Monday" | "Mon" => {
                let (_, r) = take_name(v, &DAYS, *tok == "Mon")?;
                v = r;
            }
            "02" | "2" | "_2" => {
                let s = if *tok == "_2" {
                    v.strip_prefix(' ').unwrap_or(v)
                } else {
                    v
                };
                let (d, r) = take_digits(s, if *tok == "02" { 2 } else { 1 }, 2)?;
                p.day = d;
                v = r;
            }
            "002" => {
                let (d, r) = take_digits(v, 3, 3)?;
                p.yday = Some(d);
                v = r;
            }
            "15" => {
                let (h, r) = take_digits(v, 1, 2)?;
                p.hour = h;
                v = r;
            }
            "03" | "3" => {
                let (h, r) = take_digits(v, if *tok == "03" { 2 } else { 1 }, 2)?;
                p.hour = h % 12;
                v = r;
            }
            "04" | "4" => {
                let (m, r) = take_digits(v, if *tok == "04" { 2 } else { 1 }, 2)?;
                p.min = m;
                v = r;
            }
            "05" | "5" => {
                let (s, r) = take_digits(v, if *tok == "05" { 2 } else { 1 }, 2)?;
                p.sec = s;
                v = r;
                // Go accepts a fraction after the seconds even when the layout has none.
                if !(l.starts_with('.') || l.starts_with(',')) {
                    if let Some(rest) = v.strip_prefix('.') {
                        if let Some((ns, r)) = take_fraction(rest) {
                            p.nanos = ns;
                            v = r;
                        }
                    }
                }
            }
            "PM" | "pm" => {
                let (s, r) = (v.get(..2)?, v.get(2..)?);
                p.pm = Some(match s.to_ascii_uppercase().as_str() {
                    "PM" => true,
                    "AM" => false,
                    _ => return None,
                });
                v = r;
            }
            "MST" => {
                let n = v.bytes().take_while(u8::is_ascii_uppercase).count();
                if n < 3 {
                    return None;
                }
                if matches!(&v[..n], "UTC" | "GMT") {
                    p.offset = Some(0);
                }
                v = &v[n..];
            }
            t => {
                // Offsets; `Z…` layouts accept a literal Z for UTC.
                if t.starts_with('Z') {
                    if let Some(r) = v.strip_prefix('Z') {
                        p.offset = Some(0);
                        v = r;
                        continue;
                    }
                }
                let len = t.trim_start_matches(['Z', '-']).len() + 1;
                p.offset = Some(parse_offset(v.get(..len)?)?);
                v = v.get(len..)?;
            }
        }
    }
    if !v.is_empty() {
        return None;
    }
    if let Some(pm) = p.pm {
        if pm {
            p.hour += 12;
        }
    }
    let year = p.year.unwrap_or_else(|| {
        use chrono::Datelike;
        chrono::Utc::now().year()
    });
    let date = match p.yday {
        Some(d) => chrono::NaiveDate::from_yo_opt(year, d)?,
        None => chrono::NaiveDate::from_ymd_opt(year, p.month, p.day)?,
    };
    let dt = date.and_hms_nano_opt(p.hour, p.min, p.sec, p.nanos)?;
    let offset = match (p.offset, zone) {
        (Some(o), _) => o,
        (None, Zone::Utc) => 0,
        (None, Zone::Fixed(o)) => o,
        (None, Zone::Local) => {
            use chrono::TimeZone;
            chrono::Local
                .offset_from_local_datetime(&dt)
                .single()
                .map(|o| chrono::Offset::fix(&o).local_minus_utc())
                .unwrap_or(0)
        }
    };
    let utc = dt.and_utc().timestamp_nanos_opt()? - offset as i64 * 1_000_000_000;
    Some(Ts(utc))
}

struct Timestamp {
    field: String,
    target: String,
    layouts: Vec<String>,
    zone: Zone,
    ignore_missing: bool,
    ignore_failure: bool,
}

impl Timestamp {
    fn parse(&self, v: &Value) -> Option<Ts> {
        for layout in &self.layouts {
            let t = match (layout.as_str(), v) {
                ("UNIX" | "UNIX_MS", Value::Number(_) | Value::String(_)) => {
                    let scale: i64 = if layout == "UNIX" {
                        1_000_000_000
                    } else {
                        1_000_000
                    };
                    let text = match v {
                        Value::String(s) => s.trim().to_string(),
                        other => other.to_string(),
                    };
                    match text.parse::<i64>() {
                        Ok(i) => i.checked_mul(scale).map(Ts),
                        Err(_) => text
                            .parse::<f64>()
                            .ok()
                            .map(|f| Ts((f * scale as f64).round() as i64)),
                    }
                }
                (_, Value::String(s)) => go_parse(layout, s, self.zone),
                _ => None,
            };
            if t.is_some() {
                return t;
            }
        }
        None
    }
}

impl Processor for Timestamp {
    fn run(&self, e: &mut ProcEvent) -> Outcome {
        let Some(v) = e.get(&self.field) else {
            if self.ignore_missing {
                return Ok(true);
            }
            return Err(format!(
                "failed to get time field {}: {KEY_NOT_FOUND}",
                self.field
            ));
        };
        match self.parse(v) {
            Some(t) => {
                e.put(
                    &self.target,
                    Value::from(crate::common::time::format_rfc3339_nanos(t)),
                )?;
                Ok(true)
            }
            None if self.ignore_failure => Ok(true),
            None => Err(format!(
                "failed parsing time field {}='{}'",
                self.field,
                match v {
                    Value::String(s) => s.clone(),
                    o => o.to_string(),
                }
            )),
        }
    }
    fn describe(&self) -> String {
        format!(
            "timestamp=[field={}, target_field={}, timezone={:?}]",
            self.field, self.target, self.zone
        )
    }
}

pub fn timestamp(o: &Opts) -> Result<Box<dyn Processor>, String> {
    let zone_text = o.string_or("timezone", "UTC")?;
    let zone = parse_zone(&zone_text).ok_or_else(|| {
        o.fail(format!(
            "unknown time zone {zone_text} accessing '{}.timezone' (UTC, Local and fixed offsets such as +03:00 are supported)",
            o.path()
        ))
    })?;
    let layouts = o.strs("layouts")?;
    if layouts.is_empty() {
        return Err(o.missing("layouts"));
    }
    let p = Timestamp {
        field: o.string("field")?,
        target: o.string_or("target_field", "@timestamp")?,
        layouts,
        zone,
        ignore_missing: o.bool_or("ignore_missing", false)?,
        ignore_failure: o.bool_or("ignore_failure", false)?,
    };
    for t in o.strs_opt("test")?.unwrap_or_default() {
        if p.parse(&Value::from(t.as_str())).is_none() {
            return Err(format!(
                "failed to parse test timestamp: failed parsing time field {}='{t}'",
                p.field
            ));
        }
    }
    Ok(Box::new(p))
}

// ---------------------------------------------------------------- registered_domain

struct RegisteredDomain {
    field: String,
    target: String,
    etld: Option<String>,
    subdomain: Option<String>,
    ignore_missing: bool,
    ignore_failure: bool,
}

impl Processor for RegisteredDomain {
    fn run(&self, e: &mut ProcEvent) -> Outcome {
        let Some(v) = e.get(&self.field) else {
            if self.ignore_missing {
                return Ok(true);
            }
            return Err(format!(
                "registered_domain field [{}] not present on event: {KEY_NOT_FOUND}",
                self.field
            ));
        };
        let Value::String(domain) = v else {
            if self.ignore_failure {
                return Ok(true);
            }
            return Err(format!(
                "registered_domain field [{}] is not a string (type={})",
                self.field,
                super::type_name(v)
            ));
        };
        let domain = domain.trim_end_matches('.').to_string();
        let lower = domain.to_ascii_lowercase();
        let Some(rd) = psl::domain_str(&lower) else {
            if self.ignore_failure {
                return Ok(true);
            }
            return Err(format!(
                "failed to determine the registered domain for {domain}"
            ));
        };
        let rd = rd.to_string();
        e.put(&self.target, Value::from(rd.as_str()))?;
        if let Some(t) = &self.etld {
            if let Some(sfx) = psl::suffix_str(&lower) {
                e.put(t, Value::from(sfx))?;
            }
        }
        if let Some(t) = &self.subdomain {
            let sub = lower
                .strip_suffix(rd.as_str())
                .unwrap_or("")
                .trim_end_matches('.');
            if !sub.is_empty() {
                e.put(t, Value::from(sub))?;
            }
        }
        Ok(true)
    }
    fn describe(&self) -> String {
        format!(
            "registered_domain=[field={}, target_field={}]",
            self.field, self.target
        )
    }
}

pub fn registered_domain(o: &Opts) -> Result<Box<dyn Processor>, String> {
    Ok(Box::new(RegisteredDomain {
        field: o.string("field")?,
        target: o.string("target_field")?,
        etld: o.str_opt("target_etld_field")?.filter(|s| !s.is_empty()),
        subdomain: o
            .str_opt("target_subdomain_field")?
            .filter(|s| !s.is_empty()),
        ignore_missing: o.bool_or("ignore_missing", false)?,
        ignore_failure: o.bool_or("ignore_failure", false)?,
    }))
}

// ---------------------------------------------------------------- fingerprint

#[derive(Clone, Copy)]
enum Hash {
    Md5,
    Sha1,
    Sha256,
    Sha384,
    Sha512,
    Xxhash,
}

#[derive(Clone, Copy)]
enum Encoding {
    Hex,
    Base32,
    Base64,
}

struct Fingerprint {
    fields: Vec<String>,
    target: String,
    hash: Hash,
    encoding: Encoding,
    ignore_missing: bool,
}

impl Processor for Fingerprint {
    fn run(&self, e: &mut ProcEvent) -> Outcome {
        let mut text = String::new();
        for f in &self.fields {
            let Some(v) = e.get_owned(f) else {
                if self.ignore_missing {
                    continue;
                }
                return Err(format!("failed to compute fingerprint: failed to find field [{f}] in event: {KEY_NOT_FOUND}"));
            };
            let s = match &v {
                Value::Object(_) | Value::Array(_) => {
                    return Err(format!("failed to compute fingerprint: cannot compute fingerprint using non-scalar field [{f}]"))
                }
                Value::String(s) => s.clone(),
                Value::Null => "<nil>".into(),
                other => other.to_string(),
            };
            text.push('|');
            text.push_str(f);
            text.push('|');
            text.push_str(&s);
        }
        text.push('|');
        let digest: Vec<u8> = {
            use sha2::Digest;
            match self.hash {
                Hash::Md5 => md5::Md5::digest(text.as_bytes()).to_vec(),
                Hash::Sha1 => sha1::Sha1::digest(text.as_bytes()).to_vec(),
                Hash::Sha256 => sha2::Sha256::digest(text.as_bytes()).to_vec(),
                Hash::Sha384 => sha2::Sha384::digest(text.as_bytes()).to_vec(),
                Hash::Sha512 => sha2::Sha512::digest(text.as_bytes()).to_vec(),
                Hash::Xxhash => xxhash_rust::xxh64::xxh64(text.as_bytes(), 0)
                    .to_be_bytes()
                    .to_vec(),
            }
        };
        let out = match self.encoding {
            Encoding::Hex => hex::encode(&digest),
            Encoding::Base32 => data_encoding::BASE32.encode(&digest),
            Encoding::Base64 => base64::engine::general_purpose::STANDARD.encode(&digest),
        };
        e.put(&self.target, Value::from(out))?;
        Ok(true)
    }
    fn describe(&self) -> String {
        format!(
            "fingerprint={{fields={:?}, target_field={}}}",
            self.fields, self.target
        )
    }
}

pub fn fingerprint(o: &Opts) -> Result<Box<dyn Processor>, String> {
    let mut fields = o.strs("fields")?;
    fields.sort();
    fields.dedup();
    let hash = match o.string_or("method", "sha256")?.as_str() {
        "md5" => Hash::Md5,
        "sha1" => Hash::Sha1,
        "sha256" => Hash::Sha256,
        "sha384" => Hash::Sha384,
        "sha512" => Hash::Sha512,
        "xxhash" => Hash::Xxhash,
        other => {
            return Err(o.fail(format!(
                "invalid fingerprinting method [{other}] accessing '{}.method'",
                o.path()
            )))
        }
    };
    let encoding = match o.string_or("encoding", "hex")?.as_str() {
        "hex" => Encoding::Hex,
        "base32" => Encoding::Base32,
        "base64" => Encoding::Base64,
        other => {
            return Err(o.fail(format!(
                "invalid encoding [{other}] accessing '{}.encoding'",
                o.path()
            )))
        }
    };
    Ok(Box::new(Fingerprint {
        fields,
        target: o.string_or("target_field", "fingerprint")?,
        hash,
        encoding,
        ignore_missing: o.bool_or("ignore_missing", false)?,
    }))
}

// ---------------------------------------------------------------- community_id

struct CommunityId {
    src_ip: String,
    src_port: String,
    dst_ip: String,
    dst_port: String,
    iana: String,
    transport: String,
    icmp_type: String,
    icmp_code: String,
    target: String,
    seed: u16,
}

fn proto_number(name: &str) -> Option<u8> {
    Some(match name.to_ascii_lowercase().as_str() {
        "icmp" => 1,
        "igmp" => 2,
        "tcp" => 6,
        "udp" => 17,
        "gre" => 47,
        "ipv6-icmp" | "icmpv6" => 58,
        "eigrp" => 88,
        "ospf" => 89,
        "pim" => 103,
        "sctp" => 132,
        _ => return None,
    })
}

fn as_u64(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

impl Processor for CommunityId {
    fn run(&self, e: &mut ProcEvent) -> Outcome {
        if e.get(&self.target).is_some() {
            return Ok(true);
        }
        let ip = |k: &str| {
            e.get(k)
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<IpAddr>().ok())
        };
        let (Some(src), Some(dst)) = (ip(&self.src_ip), ip(&self.dst_ip)) else {
            return Ok(true);
        };
        let proto = match as_u64(e.get(&self.iana)) {
            Some(n) => n as u8,
            None => match e
                .get(&self.transport)
                .and_then(Value::as_str)
                .and_then(proto_number)
            {
                Some(p) => p,
                None => return Ok(true),
            },
        };
        let (sp, dp) = match proto {
            1 | 58 => {
                let (Some(t), c) = (
                    as_u64(e.get(&self.icmp_type)),
                    as_u64(e.get(&self.icmp_code)),
                ) else {
                    return Ok(true);
                };
                (t as u16, c.unwrap_or(0) as u16)
            }
            6 | 17 | 132 => {
                let (Some(s), Some(d)) =
                    (as_u64(e.get(&self.src_port)), as_u64(e.get(&self.dst_port)))
                else {
                    return Ok(true);
                };
                (s as u16, d as u16)
            }
            _ => (0, 0),
        };
        let id =
            crate::publish::community_id::community_id_seeded(src, sp, dst, dp, proto, self.seed);
        e.put(&self.target, Value::from(id))?;
        Ok(true)
    }
    fn describe(&self) -> String {
        format!("community_id=[target={}, seed={}]", self.target, self.seed)
    }
}

pub fn community_id(o: &Opts) -> Result<Box<dyn Processor>, String> {
    let f = |k: &str, d: &str| o.string_or(&format!("fields.{k}"), d);
    let seed = o.i64_or("seed", 0)?;
    if !(0..=65535).contains(&seed) {
        return Err(o.fail(format!("value out of range accessing '{}.seed'", o.path())));
    }
    Ok(Box::new(CommunityId {
        src_ip: f("source_ip", "source.ip")?,
        src_port: f("source_port", "source.port")?,
        dst_ip: f("destination_ip", "destination.ip")?,
        dst_port: f("destination_port", "destination.port")?,
        iana: f("iana_number", "network.iana_number")?,
        transport: f("transport", "network.transport")?,
        icmp_type: f("icmp_type", "icmp.type")?,
        icmp_code: f("icmp_code", "icmp.code")?,
        target: o.string_or("target", "network.community_id")?,
        seed: seed as u16,
    }))
}

// ---------------------------------------------------------------- add_network_direction

struct NetworkDirection {
    source: String,
    destination: String,
    target: String,
    nets: crate::publish::direction::Networks,
}

impl Processor for NetworkDirection {
    fn run(&self, e: &mut ProcEvent) -> Outcome {
        let ip = |k: &str| {
            e.get(k)
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<IpAddr>().ok())
        };
        let (Some(s), Some(d)) = (ip(&self.source), ip(&self.destination)) else {
            return Ok(true);
        };
        let dir = crate::publish::direction::perimeter_based(Some(s), Some(d), &self.nets);
        e.put(&self.target, Value::from(dir))?;
        Ok(true)
    }
    fn describe(&self) -> String {
        format!(
            "add_network_direction=[source={}, destination={}, target={}]",
            self.source, self.destination, self.target
        )
    }
}

pub fn add_network_direction(o: &Opts) -> Result<Box<dyn Processor>, String> {
    let nets = o.strs("internal_networks")?;
    let nets = crate::publish::direction::Networks::parse(&nets).map_err(|e| o.fail(e))?;
    Ok(Box::new(NetworkDirection {
        source: o.string("source")?,
        destination: o.string("destination")?,
        target: o.string("target")?,
        nets,
    }))
}

// ---------------------------------------------------------------- add_id

struct AddId {
    target: String,
    state: Mutex<(u32, i64)>,
    mac: [u8; 6],
}

impl AddId {
    /// Elasticsearch's `TimeBasedUUIDGenerator`: 15 bytes of sequence, milliseconds and a host
    /// id, base64url without padding (20 characters), ordered for index locality.
    fn next(&self) -> String {
        let now = chrono::Utc::now().timestamp_millis();
        let (seq, ts) = {
            let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            st.0 = (st.0 + 1) & 0xff_ffff;
            let mut ts = now.max(st.1);
            if st.0 == 0 {
                ts += 1;
            }
            st.1 = ts;
            (st.0, ts)
        };
        let mut b = Vec::with_capacity(15);
        b.push(seq as u8);
        b.push((seq >> 16) as u8);
        b.push((ts >> 16) as u8);
        b.push((ts >> 24) as u8);
        b.push((ts >> 32) as u8);
        b.push((ts >> 40) as u8);
        b.extend_from_slice(&self.mac);
        b.push((ts >> 8) as u8);
        b.push((seq >> 8) as u8);
        b.push(ts as u8);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    }
}

impl Processor for AddId {
    fn run(&self, e: &mut ProcEvent) -> Outcome {
        let id = self.next();
        e.put(&self.target, Value::from(id))?;
        Ok(true)
    }
    fn describe(&self) -> String {
        format!("add_id=[target_field={}]", self.target)
    }
}

pub fn add_id(o: &Opts) -> Result<Box<dyn Processor>, String> {
    let kind = o.string_or("type", "elasticsearch")?;
    if kind != "elasticsearch" {
        return Err(o.fail(format!(
            "invalid type [{kind}] accessing '{}.type'",
            o.path()
        )));
    }
    Ok(Box::new(AddId {
        target: o.string_or("target_field", "@metadata._id")?,
        state: Mutex::new((rand::random::<u32>() & 0xff_ffff, 0)),
        mac: rand::random(),
    }))
}

// ---------------------------------------------------------------- add_locale

struct AddLocale {
    zone: String,
}

impl Processor for AddLocale {
    fn run(&self, e: &mut ProcEvent) -> Outcome {
        e.put("event.timezone", Value::from(self.zone.as_str()))?;
        Ok(true)
    }
    fn describe(&self) -> String {
        format!("add_locale=[format={}]", self.zone)
    }
}

/// The local zone's abbreviation (`time.Now().Zone()`).
fn zone_abbreviation() -> String {
    // SAFETY: localtime_r fills the tm we own; tm_zone points at static tzdata strings.
    unsafe {
        let now = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&now, &mut tm).is_null() || tm.tm_zone.is_null() {
            return "UTC".into();
        }
        std::ffi::CStr::from_ptr(tm.tm_zone)
            .to_string_lossy()
            .into_owned()
    }
}

pub fn add_locale(o: &Opts) -> Result<Box<dyn Processor>, String> {
    let zone = match o.string_or("format", "offset")?.to_lowercase().as_str() {
        "offset" => {
            let secs = chrono::Local::now().offset().local_minus_utc();
            let sign = if secs < 0 { '-' } else { '+' };
            let a = secs.abs();
            format!("{sign}{:02}:{:02}", a / 3600, (a / 60) % 60)
        }
        "abbreviation" => zone_abbreviation(),
        other => {
            return Err(o.fail(format!("'{other}' is not a valid format option for the add_locale processor. Valid options are 'abbreviation' and 'offset'")))
        }
    };
    Ok(Box::new(AddLocale { zone }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::processors::testutil::*;
    use serde_json::json;

    #[test]
    fn base64_and_gzip() {
        assert_eq!(
            run(
                "decode_base64_field: {field: {from: a, to: b}}",
                r#"{"a":"Y29ycmVjdCBkYXRh"}"#
            ),
            Some(json!({"a":"Y29ycmVjdCBkYXRh","b":"correct data"}))
        );
        let r = run("decode_base64_field: {field: {from: a}}", r#"{"a":"!!"}"#).unwrap();
        assert!(
            r["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("failed to decode base64 fields in processor: "),
            "{r}"
        );
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, b"decompressed data").unwrap();
        let bytes = gz.finish().unwrap();
        // The field holds the compressed bytes as a (Latin-1-free) string only when they are
        // valid UTF-8, which gzip output rarely is: exercise the decoder directly.
        let mut d = flate2::read::GzDecoder::new(&bytes[..]);
        let mut s = String::new();
        d.read_to_string(&mut s).unwrap();
        assert_eq!(s, "decompressed data");
        let r = run(
            "decompress_gzip_field: {field: {from: a, to: b}}",
            r#"{"a":"not gzip"}"#,
        )
        .unwrap();
        assert!(
            r["error"]["message"]
                .as_str()
                .unwrap()
                .contains("decompress"),
            "{r}"
        );
        assert_eq!(err("decode_base64_field: {}"), "failed to unpack the decode_base64_field configuration: missing required field accessing 'processors.0.decode_base64_field.field.from'");
    }

    #[test]
    fn decode_json() {
        assert_eq!(
            run(
                "decode_json_fields: {fields: [msg], target: ''}",
                r#"{"msg":"{\"a\":1,\"b\":{\"c\":\"x\"}}"}"#
            ),
            Some(json!({"msg":"{\"a\":1,\"b\":{\"c\":\"x\"}}","a":1,"b":{"c":"x"}}))
        );
        assert_eq!(
            run(
                "decode_json_fields: {fields: [msg], target: doc, max_depth: 2}",
                r#"{"msg":"{\"a\":\"{\\\"b\\\":2}\"}"}"#
            ),
            Some(json!({"msg":"{\"a\":\"{\\\"b\\\":2}\"}","doc":{"a":{"b":2}}}))
        );
        assert_eq!(
            run(
                "decode_json_fields: {fields: [msg], target: d, expand_keys: true}",
                r#"{"msg":"{\"a.b\":1}"}"#
            )
            .unwrap()["d"],
            json!({"a":{"b":1}})
        );
        assert_eq!(
            run(
                "decode_json_fields: {fields: [msg], target: d}",
                r#"{"msg":"{\"a.b\":1}"}"#
            )
            .unwrap()["d"],
            json!({"a.b":1})
        );
        assert_eq!(
            run(
                "decode_json_fields: {fields: [msg]}",
                r#"{"msg":"{\"a\":1}"}"#
            ),
            Some(json!({"msg":{"a":1}}))
        );
        assert_eq!(
            run(
                "decode_json_fields: {fields: [msg], add_error_key: true}",
                r#"{"msg":"{bad"}"#
            )
            .unwrap()["error"]["type"],
            "json"
        );
        // Existing keys are kept unless overwrite_keys.
        assert_eq!(
            run(
                "decode_json_fields: {fields: [msg], target: ''}",
                r#"{"a":0,"msg":"{\"a\":1}"}"#
            )
            .unwrap()["a"],
            0
        );
        assert_eq!(
            run(
                "decode_json_fields: {fields: [msg], target: '', overwrite_keys: true}",
                r#"{"a":0,"msg":"{\"a\":1}"}"#
            )
            .unwrap()["a"],
            1
        );
    }

    #[test]
    fn mime() {
        assert_eq!(
            detect_mime(b"\x89PNG\x0D\x0A\x1A\x0A\x00\x00\x00\x0DIHDR").as_deref(),
            Some("image/png")
        );
        assert_eq!(
            detect_mime(b"{\"a\": [1, 2]}").as_deref(),
            Some("application/json")
        );
        assert_eq!(
            detect_mime(b"<html><body>x</body></html>").as_deref(),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(
            detect_mime(b"<root><item a=\"1\">x</item><e/></root>").as_deref(),
            Some("text/xml")
        );
        assert_eq!(
            detect_mime(b"<root><item>x</root>").as_deref(),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(
            detect_mime(b"hello world").as_deref(),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(
            detect_mime(b"%PDF-1.4 ...").as_deref(),
            Some("application/pdf")
        );
        assert_eq!(detect_mime(b"\x01\x02\x03\x04"), None);
        assert_eq!(detect_mime(b""), None);
        assert_eq!(
            run("detect_mime_type: {field: http.request.body.content, target: http.request.mime_type}", r#"{"http":{"request":{"body":{"content":"{\"x\":1}"}}}}"#).unwrap()["http"]["request"]["mime_type"],
            "application/json"
        );
        assert_eq!(
            run("detect_mime_type: {field: a, target: b}", r#"{"c":1}"#),
            Some(json!({"c":1}))
        );
        assert!(
            err("detect_mime_type: {field: a}").contains("'processors.0.detect_mime_type.target'")
        );
    }

    #[test]
    fn dissect() {
        // The docs' example.
        let cfg = r#"dissect: {tokenizer: '"%{key1} - %{key2}"', field: message, target_prefix: dissect}"#;
        assert_eq!(
            run(cfg, r#"{"message":"\"App01 - WebServer is starting\""}"#),
            Some(
                json!({"message":"\"App01 - WebServer is starting\"","dissect":{"key1":"App01","key2":"WebServer is starting"}})
            )
        );
        assert_eq!(
            run(
                "dissect: {tokenizer: '%{a} %{+a} %{?skip} %{*k} %{&k}', target_prefix: ''}",
                r#"{"message":"x y z name value"}"#
            ),
            Some(json!({"message":"x y z name value","a":"x y","name":"value"}))
        );
        assert_eq!(
            run(
                "dissect: {tokenizer: '%{a->} %{b|integer}', target_prefix: ''}",
                r#"{"message":"x     42"}"#
            ),
            Some(json!({"message":"x     42","a":"x","b":42}))
        );
        assert_eq!(
            run(
                "dissect: {tokenizer: '%{a}-%{b}', trim_values: all}",
                r#"{"message":" x - y "}"#
            )
            .unwrap()["dissect"],
            json!({"a":"x","b":"y"})
        );
        let r = run(
            "dissect: {tokenizer: '%{a}|%{b}'}",
            r#"{"message":"no pipe"}"#,
        )
        .unwrap();
        assert_eq!(r["log"]["flags"], json!(["dissect_parsing_error"]));
        assert!(err("dissect: {tokenizer: 'nothing'}").contains("invalid dissect tokenizer"));
        assert!(err("dissect: {}").contains("'processors.0.dissect.tokenizer'"));
    }

    #[test]
    fn timestamp() {
        // The docs' example layouts.
        let cfg = "timestamp: {field: start_time, layouts: ['2006-01-02T15:04:05Z', '2006-01-02T15:04:05.999Z', '2006-01-02T15:04:05.999-07:00'], test: ['2019-06-22T16:33:51Z', '2019-11-18T04:59:51.123Z', '2020-08-03T07:10:20.123456+02:00']}";
        let l = proc(cfg).unwrap();
        let mut e = ev(r#"{"start_time":"2020-08-03T07:10:20.123456+02:00"}"#);
        assert!(l.run(&mut e));
        assert_eq!(
            crate::common::time::format_rfc3339_nanos(e.timestamp),
            "2020-08-03T05:10:20.123456Z"
        );
        let p = Timestamp {
            field: "f".into(),
            target: "t".into(),
            layouts: vec![
                "Jan _2 15:04:05".into(),
                "02/Jan/2006:15:04:05 -0700".into(),
                "UNIX_MS".into(),
                "Mon, 02 Jan 2006 15:04:05 MST".into(),
                "3:04PM".into(),
            ],
            zone: Zone::Fixed(3600),
            ignore_missing: false,
            ignore_failure: false,
        };
        let fmt = |v: Value| crate::common::time::format_rfc3339_nanos(p.parse(&v).unwrap());
        assert_eq!(
            fmt(json!("10/Oct/2000:13:55:36 -0700")),
            "2000-10-10T20:55:36Z"
        );
        assert_eq!(fmt(json!(1_580_000_000_123u64)), "2020-01-26T00:53:20.123Z");
        assert_eq!(
            fmt(json!("Mon, 02 Jan 2006 15:04:05 UTC")),
            "2006-01-02T15:04:05Z"
        );
        assert!(fmt(json!("Feb  3 04:05:06")).ends_with("-02-03T03:05:06Z"));
        assert!(p.parse(&json!("garbage")).is_none());
        // Non-ASCII where names, AM/PM and offsets are read (found by fuzzing).
        assert!(p.parse(&json!("&\u{ff}#")).is_none());
        assert!(p.parse(&json!("3:04\u{e9}")).is_none());
        assert!(p.parse(&json!("10/Oct/2000:13:55:36 -07\u{e9}")).is_none());
        let e = err("timestamp: {field: a, layouts: ['2006-01-02'], test: ['x']}");
        assert!(e.starts_with("failed to parse test timestamp"), "{e}");
        assert!(
            err("timestamp: {field: a, layouts: ['2006'], timezone: Mars/Base}")
                .contains("unknown time zone")
        );
    }

    #[test]
    fn registered_domain() {
        let cfg = "registered_domain: {field: dns.question.name, target_field: dns.question.registered_domain, target_etld_field: dns.question.top_level_domain, target_subdomain_field: dns.question.subdomain}";
        let r = run(cfg, r#"{"dns":{"question":{"name":"www.google.co.uk."}}}"#).unwrap();
        assert_eq!(r["dns"]["question"]["registered_domain"], "google.co.uk");
        assert_eq!(r["dns"]["question"]["top_level_domain"], "co.uk");
        assert_eq!(r["dns"]["question"]["subdomain"], "www");
        let r = run(cfg, r#"{"dns":{"question":{"name":"example.com"}}}"#).unwrap();
        assert_eq!(r["dns"]["question"]["registered_domain"], "example.com");
        assert!(r["dns"]["question"].get("subdomain").is_none());
        assert!(err("registered_domain: {field: a}").contains("target_field"));
    }

    #[test]
    fn fingerprint() {
        use sha2::Digest;
        let r = run(
            "fingerprint: {fields: [field2, field1]}",
            r#"{"field1":"foo","field2":2}"#,
        )
        .unwrap();
        let want = hex::encode(sha2::Sha256::digest(b"|field1|foo|field2|2|"));
        assert_eq!(r["fingerprint"], want.as_str());
        let r = run(
            "fingerprint: {fields: [field1], method: md5, encoding: base64, target_field: fp}",
            r#"{"field1":"foo"}"#,
        )
        .unwrap();
        assert_eq!(
            r["fp"],
            base64::engine::general_purpose::STANDARD
                .encode(md5::Md5::digest(b"|field1|foo|"))
                .as_str()
        );
        let l = proc("fingerprint: {fields: [nope]}").unwrap();
        let mut e = ev(r#"{"a":1}"#);
        assert!(l.run(&mut e));
        assert!(err("fingerprint: {fields: [a], method: crc}")
            .contains("invalid fingerprinting method"));
    }

    #[test]
    fn community_id() {
        let r = run("community_id: ~", r#"{"source":{"ip":"128.232.110.120","port":34855},"destination":{"ip":"66.35.250.204","port":80},"network":{"transport":"tcp"}}"#).unwrap();
        assert_eq!(
            r["network"]["community_id"],
            "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
        );
        let r = run("community_id: {seed: 123}", r#"{"source":{"ip":"128.232.110.120","port":34855},"destination":{"ip":"66.35.250.204","port":80},"network":{"transport":"tcp"}}"#).unwrap();
        assert_ne!(
            r["network"]["community_id"],
            "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
        );
        // An existing value is kept.
        let r = run("community_id: ~", r#"{"source":{"ip":"1.1.1.1","port":1},"destination":{"ip":"2.2.2.2","port":2},"network":{"transport":"tcp","community_id":"x"}}"#).unwrap();
        assert_eq!(r["network"]["community_id"], "x");
    }

    #[test]
    fn network_direction() {
        let cfg = "add_network_direction: {source: source.ip, destination: destination.ip, target: network.direction, internal_networks: [private]}";
        for (s, d, want) in [
            ("10.0.0.1", "10.0.0.2", "internal"),
            ("10.0.0.1", "8.8.8.8", "outbound"),
            ("8.8.8.8", "10.0.0.1", "inbound"),
            ("8.8.8.8", "1.1.1.1", "external"),
        ] {
            let r = run(
                cfg,
                &format!(r#"{{"source":{{"ip":"{s}"}},"destination":{{"ip":"{d}"}}}}"#),
            )
            .unwrap();
            assert_eq!(r["network"]["direction"], want);
        }
        assert!(
            err("add_network_direction: {source: a, destination: b, target: c}")
                .contains("internal_networks")
        );
    }

    #[test]
    fn add_id_and_locale() {
        let l = proc("add_id: ~").unwrap();
        let mut e = ev("{}");
        assert!(l.run(&mut e));
        let id = e.meta["_id"].as_str().unwrap().to_string();
        assert_eq!(id.len(), 20);
        let mut e2 = ev("{}");
        l.run(&mut e2);
        assert_ne!(e2.meta["_id"].as_str().unwrap(), id);
        let r = run("add_id: {target_field: my_id}", "{}").unwrap();
        assert_eq!(r["my_id"].as_str().unwrap().len(), 20);
        let r = run("add_locale: ~", "{}").unwrap();
        let tz = r["event"]["timezone"].as_str().unwrap();
        assert!(
            tz.len() == 6 && (tz.starts_with('+') || tz.starts_with('-')),
            "{tz}"
        );
        let r = run("add_locale: {format: abbreviation}", "{}").unwrap();
        assert!(!r["event"]["timezone"].as_str().unwrap().is_empty());
        assert!(err("add_locale: {format: x}").contains("not a valid format option"));
    }
}
