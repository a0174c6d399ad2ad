//! libbeat's event format strings (`libbeat/common/fmtstr`): literal text with `%{[a.b]}` (an
//! event field), `%{[a.b]:default}` (with a fallback) and `%{+yyyy.MM.dd}` (the event's
//! `@timestamp` in UTC, Joda-style letters). The outputs' selectors (`index`, `pipeline`,
//! `topic`, `key`) and setup's names (`setup.ilm.policy_name`, `setup.template.name`) use them.
//!
//! Values are rendered as libbeat's `tryConvString` renders them: strings as they are, integers
//! in decimal, floats as Go's `strconv.FormatFloat(f, 'g', -1, 64)`, booleans as `true`/`false`,
//! `%{[@timestamp]}` as the event time in the JSON codec's form (RFC 3339 in UTC with the
//! `timestamp.precision` digits: `common.Time.String()`), objects as their JSON (`mapstr.M` is a
//! `Stringer` that marshals itself; Go's `json.Marshal` sorts keys and escapes `<`, `>`, `&`).
//! Arrays and nulls cannot be converted: like a missing field, they take the default or fail.
//! A field whose text is empty takes the default too (libbeat's `defaultEventFieldEvaler`).
//!
//! Hand-written: the syntax and the value rendering are libbeat's own, no crate implements them.

use crate::common::Ts;
use serde_json::Value;

/// A source of field values for [`FormatString::run`] (an event, or nothing).
pub trait FieldSource {
    fn field(&self, key: &str) -> Option<&Value>;
}

/// No event: every field is missing.
pub struct NoFields;

impl FieldSource for NoFields {
    fn field(&self, _key: &str) -> Option<&Value> {
        None
    }
}

impl FieldSource for Value {
    fn field(&self, key: &str) -> Option<&Value> {
        lookup(self, key)
    }
}

/// A dotted key in a document: nested objects, or a key with dots at any level.
pub fn lookup<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    let o = v.as_object()?;
    if let Some(x) = o.get(key) {
        return Some(x);
    }
    let mut at = 0;
    while let Some(i) = key[at..].find('.') {
        let (head, tail) = (&key[..at + i], &key[at + i + 1..]);
        if let Some(x) = o.get(head).and_then(|x| lookup(x, tail)) {
            return Some(x);
        }
        at += i + 1;
    }
    None
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Lit(String),
    /// `%{[a.b]}` / `%{[a.b]:default}`.
    Field {
        key: String,
        default: Option<String>,
    },
    /// `%{+yyyy.MM.dd}`: the event time in UTC.
    Time(Vec<TimeTok>),
}

#[derive(Debug, Clone, PartialEq)]
enum TimeTok {
    Lit(String),
    /// A run of one pattern letter (`yyyy`, `MM`, `dd`, `HH`, `mm`, `ss`, `SSS`).
    Run(char, usize),
}

/// A compiled format string.
#[derive(Debug, Clone, PartialEq)]
pub struct FormatString {
    parts: Vec<Part>,
}

/// The beat's version fields, the same in every event of this build: resolved when an output's
/// format string is compiled (`agent.version` in `packetbeat-%{[agent.version]}`).
pub fn version_field(key: &str) -> Option<String> {
    match key {
        "beat.version" | "agent.version" | "observer.version" => {
            Some(crate::BEAT_VERSION.to_string())
        }
        _ => None,
    }
}

impl FormatString {
    pub fn compile(fmt: &str) -> Result<FormatString, String> {
        let mut parts = Vec::new();
        let mut rest = fmt;
        while let Some(i) = rest.find("%{") {
            if i > 0 {
                parts.push(Part::Lit(rest[..i].to_string()));
            }
            let after = &rest[i + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| format!("missing closing '}}' in format string '{fmt}'"))?;
            let expr = &after[..end];
            rest = &after[end + 1..];
            if let Some(ts) = expr.strip_prefix('+') {
                parts.push(Part::Time(compile_time(ts)?));
                continue;
            }
            let (key, default) = match expr.split_once(':') {
                Some((k, d)) => (k, Some(d.to_string())),
                None => (expr, None),
            };
            let key = key.trim();
            let key = key
                .strip_prefix('[')
                .and_then(|k| k.strip_suffix(']'))
                .unwrap_or(key)
                .to_string();
            if key.is_empty() {
                return Err(format!("empty field reference in format string '{fmt}'"));
            }
            parts.push(Part::Field { key, default });
        }
        if !rest.is_empty() {
            parts.push(Part::Lit(rest.to_string()));
        }
        Ok(FormatString { parts })
    }

    /// `compile`, with the fields `known` answers for put in as text.
    pub fn compile_resolving(
        fmt: &str,
        known: impl Fn(&str) -> Option<String>,
    ) -> Result<FormatString, String> {
        let mut f = FormatString::compile(fmt)?;
        for p in &mut f.parts {
            if let Part::Field { key, .. } = p {
                if let Some(v) = known(key) {
                    *p = Part::Lit(v);
                }
            }
        }
        Ok(f)
    }

    /// The text when it depends on no event (libbeat's `IsConst`).
    pub fn constant(&self) -> Option<String> {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Lit(s) => Some(s.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Empty text (libbeat's `IsEmpty`).
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// Some event field is referenced (the time alone, `%{+…}` or `%{[@timestamp]}`, needs only
    /// the event's timestamp).
    pub fn reads_fields(&self) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::Field { key, .. } if key != TIMESTAMP))
    }

    /// The event time is part of the text.
    pub fn reads_time(&self) -> bool {
        self.parts.iter().any(|p| match p {
            Part::Time(_) => true,
            Part::Field { key, .. } => key == TIMESTAMP,
            Part::Lit(_) => false,
        })
    }

    /// The text for one event. An error names the first referenced field that is missing and
    /// has no default.
    pub fn run(&self, ts: Ts, fields: &dyn FieldSource) -> Result<String, String> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Time(toks) => format_time(ts, toks, &mut out),
                Part::Field { key, default } => {
                    let text = if key == TIMESTAMP {
                        // `beat.Event.GetValue("@timestamp")` is the event time, whatever the
                        // fields hold.
                        Ok(ts.to_rfc3339())
                    } else {
                        match fields.field(key) {
                            Some(v) => value_text(v).ok_or("can not convert to string"),
                            None => Err("key not found"),
                        }
                    };
                    match (text, default) {
                        (Ok(t), Some(d)) if t.is_empty() => out.push_str(d),
                        (Ok(t), _) => out.push_str(&t),
                        (Err(_), Some(d)) => out.push_str(d),
                        (Err(e), None) => return Err(format!("{e}: {key}")),
                    }
                }
            }
        }
        Ok(out)
    }
}

/// The key libbeat's events answer with their time.
const TIMESTAMP: &str = "@timestamp";

/// A field's text as libbeat's `tryConvString` makes it; `None` when it has none (arrays, null).
fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(match n.as_f64() {
            Some(f) if !n.is_i64() && !n.is_u64() => go_float(f),
            _ => n.to_string(),
        }),
        Value::Object(_) => Some(crate::setup::to_go_json(v)),
        Value::Array(_) | Value::Null => None,
    }
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 64)`: the shortest digits that read back as `f`, in
/// exponent form when the decimal exponent is below -4 or at least 6 (`1e+06`, `1.5e-07`),
/// else plain (`0.0001`, `123456`).
fn go_float(f: f64) -> String {
    // Rust's `{:e}` gives the same shortest digits: `d[.ddd]e<exp>`.
    let e = format!("{f:e}");
    let (mantissa, exp) = e.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("{:e} exponent is an integer");
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if !(-4..6).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let dot = if rest.is_empty() { "" } else { "." };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{dot}{rest}e{esign}{:02}", exp.abs());
    }
    let point = exp + 1; // digits before the decimal point
    if point <= 0 {
        format!("{sign}0.{}{digits}", "0".repeat((-point) as usize))
    } else if point as usize >= digits.len() {
        format!(
            "{sign}{digits}{}",
            "0".repeat(point as usize - digits.len())
        )
    } else {
        let (int, frac) = digits.split_at(point as usize);
        format!("{sign}{int}.{frac}")
    }
}

fn compile_time(fmt: &str) -> Result<Vec<TimeTok>, String> {
    let mut toks = Vec::new();
    let mut chars = fmt.chars().peekable();
    let mut lit = String::new();
    while let Some(c) = chars.next() {
        if c.is_ascii_alphabetic() {
            if !matches!(c, 'y' | 'Y' | 'M' | 'd' | 'H' | 'm' | 's' | 'S') {
                return Err(format!(
                    "unsupported timestamp pattern letter '{c}' in '%{{+{fmt}}}'"
                ));
            }
            if !lit.is_empty() {
                toks.push(TimeTok::Lit(std::mem::take(&mut lit)));
            }
            let mut n = 1;
            while chars.peek() == Some(&c) {
                chars.next();
                n += 1;
            }
            toks.push(TimeTok::Run(c, n));
        } else if c == '\'' {
            for q in chars.by_ref() {
                if q == '\'' {
                    break;
                }
                lit.push(q);
            }
        } else {
            lit.push(c);
        }
    }
    if !lit.is_empty() {
        toks.push(TimeTok::Lit(lit));
    }
    Ok(toks)
}

fn format_time(ts: Ts, toks: &[TimeTok], out: &mut String) {
    use chrono::{Datelike, Timelike};
    use std::fmt::Write;
    let t = chrono::DateTime::from_timestamp(
        ts.nanos().div_euclid(1_000_000_000),
        ts.nanos().rem_euclid(1_000_000_000) as u32,
    )
    .unwrap_or_default();
    for tok in toks {
        match tok {
            TimeTok::Lit(s) => out.push_str(s),
            TimeTok::Run(c, n) => {
                let n = *n;
                let _ = match c {
                    'y' | 'Y' if n == 2 => write!(out, "{:02}", t.year().rem_euclid(100)),
                    'y' | 'Y' => write!(out, "{:0n$}", t.year()),
                    'M' => write!(out, "{:0n$}", t.month()),
                    'd' => write!(out, "{:0n$}", t.day()),
                    'H' => write!(out, "{:0n$}", t.hour()),
                    'm' => write!(out, "{:0n$}", t.minute()),
                    's' => write!(out, "{:0n$}", t.second()),
                    _ => {
                        let ms = t.nanosecond() / 1_000_000;
                        let digits = format!("{ms:03}");
                        write!(out, "{}", &digits[..n.min(3)])
                    }
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn format_strings() {
        let v = crate::BEAT_VERSION;
        let f = FormatString::compile_resolving("packetbeat-%{[agent.version]}", version_field)
            .unwrap();
        assert_eq!(f.constant(), Some(format!("packetbeat-{v}")));
        let ts = Ts(1_424_218_386_123_000_000); // 2015-02-18T00:13:06.123Z
        let f = FormatString::compile("pb-%{+yyyy.MM.dd}").unwrap();
        assert!(f.constant().is_none() && !f.reads_fields());
        assert_eq!(f.run(ts, &NoFields).unwrap(), "pb-2015.02.18");
        let f = FormatString::compile("pb-%{[network.protocol]}-%{[x.y]:none}-%{+HH.SSS}").unwrap();
        let doc = json!({"network": {"protocol": "HTTP"}});
        assert_eq!(f.run(ts, &doc).unwrap(), "pb-HTTP-none-00.123");
        let f = FormatString::compile("pb-%{[missing]}").unwrap();
        assert_eq!(f.run(ts, &json!({})).unwrap_err(), "key not found: missing");
        assert!(FormatString::compile("pb-%{+yyyy.QQ}").is_err());
        assert!(FormatString::compile("pb-%{[a]").is_err());
        assert!(FormatString::compile("pb-%{[]}").is_err());
        let f = FormatString::compile("x-%{[a.b]}").unwrap();
        assert_eq!(f.run(ts, &json!({"a.b": 7})).unwrap(), "x-7");
        assert_eq!(f.run(ts, &json!({"a": {"b": true}})).unwrap(), "x-true");
        assert!(FormatString::compile("").unwrap().is_empty());
        assert_eq!(
            FormatString::compile("%{+yy'T'}")
                .unwrap()
                .run(ts, &NoFields)
                .unwrap(),
            "15T"
        );
    }

    #[test]
    fn values_render_as_libbeat_renders_them() {
        let ts = Ts(1_424_218_386_123_456_789);
        let run = |f: &str, doc: Value| FormatString::compile(f).unwrap().run(ts, &doc);
        // `@timestamp` is the event time (JSON codec precision), whatever the fields hold.
        let f = FormatString::compile("%{[@timestamp]}").unwrap();
        assert!(f.reads_time() && !f.reads_fields());
        assert_eq!(
            run("%{[@timestamp]}", json!({"@timestamp": "x"})).unwrap(),
            "2015-02-18T00:13:06.123Z"
        );
        // Objects as Go's json.Marshal writes them: sorted keys, HTML characters escaped.
        assert_eq!(
            run("%{[o]}", json!({"o": {"z": 1, "a": "<&>"}})).unwrap(),
            r#"{"a":"\u003c\u0026\u003e","z":1}"#
        );
        // Arrays and nulls have no text: the default, else an error naming the key.
        assert_eq!(
            run("%{[a]}", json!({"a": [1]})).unwrap_err(),
            "can not convert to string: a"
        );
        assert_eq!(run("%{[a]:d}", json!({"a": null})).unwrap(), "d");
        // An empty text takes the default.
        assert_eq!(run("%{[a]:d}", json!({"a": ""})).unwrap(), "d");
        assert_eq!(run("%{[a]}", json!({"a": ""})).unwrap(), "");
        assert_eq!(
            run("%{[n]} %{[b]}", json!({"n": -3, "b": false})).unwrap(),
            "-3 false"
        );
    }

    #[test]
    fn floats_as_go_formats_them() {
        for (f, want) in [
            (1.5, "1.5"),
            (3.0, "3"),
            (0.0, "0"),
            (-0.25, "-0.25"),
            (123456.0, "123456"),
            (1e6, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001234, "1.234e-05"),
            (1e21, "1e+21"),
            (-2.5e-300, "-2.5e-300"),
        ] {
            assert_eq!(go_float(f), want, "{f}");
        }
    }
}
