//! libbeat's conditions (`libbeat/conditions`): `equals`, `contains`, `regexp`, `range`,
//! `has_fields`, `network`, `or`, `and`, `not`, with its type rules: `equals` compares integers
//! with integers, strings with strings and booleans with booleans (any other pairing is false);
//! `contains`/`regexp` match strings and any string of a list; `range` compares numbers (and
//! numeric strings); `network` reads IP address strings (or lists of them).

use super::opts::{key_text, to_json, yaml_kind};
use super::ProcEvent;
use crate::publish::direction::{named_contains, NAMED};
use ipnet::IpNet;
use regex::Regex;
use serde_json::Value;
use serde_yaml::Value as Yaml;
use std::fmt;
use std::net::IpAddr;

pub enum Condition {
    Equals(Vec<(String, EqValue)>),
    Contains(Vec<(String, String)>),
    Regexp(Vec<(String, Regex)>),
    Range(Vec<(String, RangeOp, f64)>),
    HasFields(Vec<String>),
    Network(Vec<(String, Vec<NetMatcher>)>),
    Or(Vec<Condition>),
    And(Vec<Condition>),
    Not(Box<Condition>),
}

pub enum EqValue {
    Int(u64),
    Str(String),
    Bool(bool),
}

#[derive(Clone, Copy, Debug)]
pub enum RangeOp {
    Lt,
    Lte,
    Gt,
    Gte,
}

pub enum NetMatcher {
    Named(&'static str),
    Cidr(IpNet),
}

/// Nested maps flattened to dotted keys (`mapstr.M.Flatten`), in config order.
fn flatten(prefix: &str, v: &Yaml, out: &mut Vec<(String, Yaml)>) {
    match v {
        Yaml::Mapping(m) => {
            for (k, v) in m {
                let k = key_text(k);
                let key = if prefix.is_empty() {
                    k
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        other => out.push((prefix.to_string(), other.clone())),
    }
}

fn fields_of(v: &Yaml, what: &str, path: &str) -> Result<Vec<(String, Yaml)>, String> {
    match v {
        Yaml::Mapping(_) => {
            let mut out = Vec::new();
            flatten("", v, &mut out);
            Ok(out)
        }
        Yaml::Null => Ok(Vec::new()),
        other => Err(format!(
            "required 'object', but found '{}' in field '{path}.{what}'",
            yaml_kind(other)
        )),
    }
}

/// Go's `%v` of a config value, for messages.
fn go_text(v: &Yaml) -> String {
    match v {
        Yaml::String(s) => s.clone(),
        other => to_json(other).to_string(),
    }
}

fn go_type(v: &Yaml) -> &'static str {
    match v {
        Yaml::String(_) => "string",
        Yaml::Bool(_) => "bool",
        Yaml::Number(n) if n.is_f64() => "float64",
        Yaml::Number(n) if n.is_u64() => "uint64",
        Yaml::Number(_) => "int64",
        Yaml::Sequence(_) => "[]interface {}",
        Yaml::Mapping(_) => "map[string]interface {}",
        Yaml::Null => "<nil>",
        Yaml::Tagged(_) => "tagged",
    }
}

fn parse_cidr(s: &str) -> Result<IpNet, String> {
    s.parse::<IpNet>().map_err(|_| {
        format!(
            "failed to parse CIDR, values must be an IP address and prefix length, like '192.0.2.0/24' or '2001:db8::/32', as defined in RFC 4632 and RFC 4291: invalid CIDR address: {s}"
        )
    })
}

fn net_matcher(s: &str) -> Result<NetMatcher, String> {
    match NAMED.iter().find(|n| **n == s) {
        Some(n) => Ok(NetMatcher::Named(n)),
        None => parse_cidr(s).map(NetMatcher::Cidr),
    }
}

impl Condition {
    /// A condition from its config (`{equals: {...}}`, `{or: [...]}`, …). libbeat takes the
    /// first of equals, contains, regexp, range, has_fields, network, or, and, not that is set.
    pub fn from_yaml(v: &Yaml, path: &str) -> Result<Condition, String> {
        let Yaml::Mapping(m) = v else {
            return Err("missing or invalid condition".into());
        };
        let get = |k: &str| m.get(k).filter(|v| !v.is_null());
        if let Some(v) = get("equals") {
            let mut out = Vec::new();
            for (field, value) in fields_of(v, "equals", path)? {
                let eq = match &value {
                    Yaml::Number(n) if n.is_u64() || n.is_i64() => {
                        EqValue::Int(n.as_u64().unwrap_or_else(|| n.as_i64().unwrap_or(0) as u64))
                    }
                    Yaml::String(s) => EqValue::Str(s.clone()),
                    Yaml::Bool(b) => EqValue::Bool(*b),
                    other => {
                        return Err(format!(
                            "condition attempted to set '{field}' -> '{}' and encountered unexpected type '{}', only strings, ints, and bools are allowed",
                            go_text(other),
                            go_type(other)
                        ))
                    }
                };
                out.push((field, eq));
            }
            return Ok(Condition::Equals(out));
        }
        for name in ["contains", "regexp"] {
            if let Some(v) = get(name) {
                let mut strs = Vec::new();
                for (field, value) in fields_of(v, name, path)? {
                    match value {
                        Yaml::String(s) => strs.push((field, s)),
                        other => {
                            return Err(format!(
                                "unexpected type {} of {}",
                                go_type(&other),
                                go_text(&other)
                            ))
                        }
                    }
                }
                return if name == "contains" {
                    Ok(Condition::Contains(strs))
                } else {
                    let mut out = Vec::new();
                    for (f, s) in strs {
                        let re = Regex::new(&s)
                            .map_err(|e| format!("error parsing regexp: {}", regex_error(&e)))?;
                        out.push((f, re));
                    }
                    Ok(Condition::Regexp(out))
                };
            }
        }
        if let Some(v) = get("range") {
            let mut out = Vec::new();
            for (field, value) in fields_of(v, "range", path)? {
                let f = match &value {
                    Yaml::Number(n) => n.as_f64().unwrap_or(0.0),
                    Yaml::String(s) => s.parse::<f64>().map_err(|_| {
                        format!("unexpected type {} of {}", go_type(&value), go_text(&value))
                    })?,
                    other => {
                        return Err(format!(
                            "unexpected type {} of {}",
                            go_type(other),
                            go_text(other)
                        ))
                    }
                };
                let (key, op) = field.rsplit_once('.').unwrap_or(("", field.as_str()));
                let op = match op {
                    "lt" => RangeOp::Lt,
                    "lte" => RangeOp::Lte,
                    "gt" => RangeOp::Gt,
                    "gte" => RangeOp::Gte,
                    other => return Err(format!("unexpected field {other}")),
                };
                out.push((key.to_string(), op, f));
            }
            return Ok(Condition::Range(out));
        }
        if let Some(v) = get("has_fields") {
            let list = match v {
                Yaml::Sequence(s) => s
                    .iter()
                    .map(|x| match x {
                        Yaml::String(s) => Ok(s.clone()),
                        other => Ok(go_text(other)),
                    })
                    .collect::<Result<Vec<String>, String>>()?,
                Yaml::String(s) => vec![s.clone()],
                other => {
                    return Err(format!(
                        "required 'array', but found '{}' in field '{path}.has_fields'",
                        yaml_kind(other)
                    ))
                }
            };
            return Ok(Condition::HasFields(list));
        }
        if let Some(v) = get("network") {
            let flat = fields_of(v, "network", path)?;
            if !flat.is_empty() {
                let bad = |field: &str, value: &Yaml| {
                    format!(
                        "network condition attempted to set '{field}' -> '{}' and encountered unexpected type '{}', only strings or []strings are allowed",
                        go_text(value),
                        go_type(value)
                    )
                };
                let mut out = Vec::new();
                for (field, value) in flat {
                    let ms = match &value {
                        Yaml::String(s) => vec![net_matcher(s)?],
                        Yaml::Sequence(list) => list
                            .iter()
                            .map(|x| match x {
                                Yaml::String(s) => net_matcher(s),
                                other => Err(bad(&field, other)),
                            })
                            .collect::<Result<Vec<_>, _>>()?,
                        other => return Err(bad(&field, other)),
                    };
                    out.push((field, ms));
                }
                return Ok(Condition::Network(out));
            }
        }
        for (name, ctor) in [
            ("or", Condition::Or as fn(Vec<Condition>) -> Condition),
            ("and", Condition::And),
        ] {
            if let Some(Yaml::Sequence(list)) = get(name) {
                if !list.is_empty() {
                    let conds = list
                        .iter()
                        .enumerate()
                        .map(|(i, c)| Condition::from_yaml(c, &format!("{path}.{name}.{i}")))
                        .collect::<Result<Vec<_>, _>>()?;
                    return Ok(ctor(conds));
                }
            }
        }
        if let Some(v) = get("not") {
            let inner = Condition::from_yaml(v, &format!("{path}.not"))?;
            return Ok(Condition::Not(Box::new(inner)));
        }
        Err("missing or invalid condition".into())
    }

    pub fn check(&self, e: &ProcEvent) -> bool {
        match self {
            Condition::Equals(list) => list.iter().all(|(field, want)| {
                let Some(v) = e.get_owned(field) else {
                    return false;
                };
                match want {
                    EqValue::Int(i) => extract_int(&v) == Some(*i),
                    EqValue::Str(s) => v.as_str() == Some(s.as_str()),
                    EqValue::Bool(b) => v.as_bool() == Some(*b),
                }
            }),
            Condition::Contains(list) => list
                .iter()
                .all(|(field, needle)| match_strings(e, field, |s| s.contains(needle.as_str()), "contains")),
            Condition::Regexp(list) => list
                .iter()
                .all(|(field, re)| match_strings(e, field, |s| re.is_match(s), "regexp")),
            Condition::Range(list) => list.iter().all(|(field, op, bound)| {
                let Some(v) = e.get_owned(field) else {
                    return false;
                };
                let Some(x) = extract_float(&v) else {
                    tracing::warn!(target: "conditions", "unexpected type {} in range condition", super::type_name(&v));
                    return false;
                };
                match op {
                    RangeOp::Lt => x < *bound,
                    RangeOp::Lte => x <= *bound,
                    RangeOp::Gt => x > *bound,
                    RangeOp::Gte => x >= *bound,
                }
            }),
            Condition::HasFields(list) => list.iter().all(|f| e.has(f)),
            Condition::Network(list) => list.iter().all(|(field, nets)| {
                let Some(v) = e.get(field) else {
                    return false;
                };
                let ips: Vec<Option<IpAddr>> = match v {
                    Value::String(s) => vec![s.parse().ok()],
                    Value::Array(a) if a.iter().all(Value::is_string) => a
                        .iter()
                        .map(|x| x.as_str().and_then(|s| s.parse().ok()))
                        .collect(),
                    _ => Vec::new(),
                };
                ips.iter()
                    .flatten()
                    .any(|ip| nets.iter().any(|n| n.contains(*ip)))
            }),
            Condition::Or(list) => list.iter().any(|c| c.check(e)),
            Condition::And(list) => list.iter().all(|c| c.check(e)),
            Condition::Not(c) => !c.check(e),
        }
    }
}

impl NetMatcher {
    fn contains(&self, ip: IpAddr) -> bool {
        match self {
            NetMatcher::Named(n) => named_contains(n, ip),
            NetMatcher::Cidr(net) => {
                let ip = match ip {
                    IpAddr::V6(v6) if net.addr().is_ipv4() => {
                        v6.to_ipv4_mapped().map_or(ip, IpAddr::V4)
                    }
                    other => other,
                };
                net.contains(&ip)
            }
        }
    }
}

/// Go's regexp error text is `error parsing regexp: <what>: `<where>``; the regex crate
/// words it its own way, kept after the same prefix.
fn regex_error(e: &regex::Error) -> String {
    e.to_string()
        .lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or("invalid")
        .trim()
        .to_string()
}

/// `ExtractInt`: Go's integer types only (a float field never equals an integer).
fn extract_int(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| n.as_i64().map(|i| i as u64)),
        _ => None,
    }
}

/// `ExtractFloat`: numbers, and strings that parse as numbers.
fn extract_float(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// libbeat's `Matcher.Check` for one field: a string, or any string of a list.
fn match_strings(e: &ProcEvent, field: &str, f: impl Fn(&str) -> bool, name: &str) -> bool {
    let Some(v) = e.get_owned(field) else {
        return false;
    };
    match &v {
        Value::String(s) => f(s),
        Value::Array(a) => a.iter().any(|x| x.as_str().is_some_and(&f)),
        other => {
            tracing::warn!(target: "conditions", "unexpected type {} in {name} condition as it accepts only strings.", super::type_name(other));
            false
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::Equals(l) => write!(
                f,
                "equals: {}",
                l.iter()
                    .map(|(k, v)| format!(
                        "{k}:{}",
                        match v {
                            EqValue::Int(i) => i.to_string(),
                            EqValue::Str(s) => s.clone(),
                            EqValue::Bool(b) => b.to_string(),
                        }
                    ))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            Condition::Contains(l) => write!(f, "contains: {l:?}"),
            Condition::Regexp(l) => write!(
                f,
                "regexp: {:?}",
                l.iter().map(|(k, r)| (k, r.as_str())).collect::<Vec<_>>()
            ),
            Condition::Range(l) => write!(f, "range: {l:?}"),
            Condition::HasFields(l) => write!(f, "has_fields: {l:?}"),
            Condition::Network(l) => write!(
                f,
                "network:({})",
                l.iter()
                    .map(|(k, n)| format!(
                        "{k}:{}",
                        n.iter()
                            .map(|m| match m {
                                NetMatcher::Named(s) => s.to_string(),
                                NetMatcher::Cidr(c) => c.to_string(),
                            })
                            .collect::<Vec<_>>()
                            .join(" OR ")
                    ))
                    .collect::<Vec<_>>()
                    .join(" AND ")
            ),
            Condition::Or(l) => write!(
                f,
                "{}",
                l.iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
            Condition::And(l) => write!(
                f,
                "{}",
                l.iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
            Condition::Not(c) => write!(f, "not {c}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::processors::testutil::ev;

    fn cond(yaml: &str) -> Condition {
        Condition::from_yaml(&serde_yaml::from_str(yaml).unwrap(), "when").unwrap()
    }

    fn cond_err(yaml: &str) -> String {
        match Condition::from_yaml(&serde_yaml::from_str(yaml).unwrap(), "when") {
            Ok(_) => panic!("expected an error for {yaml}"),
            Err(e) => e,
        }
    }

    /// The event libbeat's conditions tests use (`conditions_test.go`, `secdTestEvent`).
    fn secd() -> ProcEvent {
        ev(r#"{
            "proc": {"cmdline": "/usr/libexec/secd", "cpu": {"start_time": "Apr10", "system": 1988, "total": 6029, "total_p": 0.08, "user": 4041},
                     "name": "secd", "pid": 305, "ppid": 1, "state": "running", "username": "monica"},
            "type": "process", "final": true, "tags": ["a", "b", "c"]
        }"#)
    }

    /// The HTTP event of libbeat's conditions tests (`httpResponseTestEvent`).
    fn http() -> ProcEvent {
        ev(r#"{
            "@timestamp": "2015-06-11T09:51:23.642Z",
            "bytes_in": 126, "bytes_out": 28033,
            "client_ip": "127.0.0.1", "client_port": 42840, "client_proc": "", "client_server": "mar.local",
            "http": {"code": 200, "content_length": 76985, "phrase": "OK"},
            "ip": "127.0.0.1", "method": "GET", "params": "", "path": "/jarred/", "port": 8000,
            "proc": "", "query": "GET /jarred/", "responsetime": 17, "server": "mar.local",
            "status": "OK", "type": "http"
        }"#)
    }

    #[test]
    fn equals() {
        assert!(cond("equals: {type: process}").check(&secd()));
        assert!(cond("equals: {proc.pid: 305}").check(&secd()));
        assert!(cond("equals: {final: true}").check(&secd()));
        assert!(!cond("equals: {final: false}").check(&secd()));
        // An int against a string field, a string against an int field: false.
        assert!(!cond("equals: {type: 1}").check(&secd()));
        assert!(!cond("equals: {proc.pid: '305'}").check(&secd()));
        assert!(!cond("equals: {missing: x}").check(&secd()));
        assert!(cond("equals: {http.code: 200, status: OK}").check(&http()));
        assert_eq!(
            cond_err("equals: {a: 1.5}"),
            "condition attempted to set 'a' -> '1.5' and encountered unexpected type 'float64', only strings, ints, and bools are allowed"
        );
    }

    #[test]
    fn contains_and_regexp() {
        assert!(cond("contains: {proc.username: moni}").check(&secd()));
        assert!(cond("contains: {tags: b}").check(&secd()));
        assert!(!cond("contains: {tags: d}").check(&secd()));
        assert!(!cond("contains: {proc.pid: '30'}").check(&secd()));
        assert!(cond("regexp: {proc.name: '^s[e]cd$'}").check(&secd()));
        assert!(cond("regexp: {status: 'K'}").check(&http()));
        assert!(cond("regexp: {tags: '^c'}").check(&secd()));
        assert!(!cond("regexp: {proc.name: '^x'}").check(&secd()));
        assert_eq!(cond_err("contains: {a: 1}"), "unexpected type uint64 of 1");
        assert!(cond_err("regexp: {a: '('}").starts_with("error parsing regexp: "));
    }

    #[test]
    fn range() {
        assert!(cond("range: {http.code.gte: 200, http.code.lt: 300}").check(&http()));
        assert!(!cond("range: {http.code.lt: 200}").check(&http()));
        assert!(cond("range: {proc.cpu.total_p.gt: 0.05}").check(&secd()));
        assert!(cond("range: {proc.cpu.total_p.lte: 0.08}").check(&secd()));
        assert!(!cond("range: {proc.name.gt: 1}").check(&secd()));
        assert_eq!(
            cond_err("range: {http.code.eq: 200}"),
            "unexpected field eq"
        );
    }

    #[test]
    fn has_fields() {
        assert!(cond("has_fields: [proc.cmdline, type]").check(&secd()));
        assert!(!cond("has_fields: [proc.cmdline, nope]").check(&secd()));
        assert!(cond("has_fields: ['@timestamp']").check(&secd()));
    }

    #[test]
    fn network() {
        let e = ev(
            r#"{"ip": "192.168.1.1", "v6": "fd00::1", "lo": "127.0.0.1", "pub": "8.8.8.8",
                       "list": ["10.1.1.1", "8.8.4.4"], "mc": "239.1.1.1", "ll": "169.254.1.1", "bad": "x"}"#,
        );
        assert!(cond("network: {ip: private}").check(&e));
        assert!(cond("network: {ip: 192.168.1.0/24}").check(&e));
        assert!(!cond("network: {ip: 192.168.2.0/24}").check(&e));
        assert!(cond("network: {ip: [loopback, 192.168.0.0/16]}").check(&e));
        assert!(cond("network: {v6: private}").check(&e));
        assert!(cond("network: {lo: loopback}").check(&e));
        assert!(cond("network: {pub: public}").check(&e));
        assert!(cond("network: {pub: unicast}").check(&e));
        assert!(cond("network: {mc: multicast}").check(&e));
        assert!(cond("network: {mc: public}").check(&e));
        assert!(cond("network: {ll: link_local_unicast}").check(&e));
        assert!(!cond("network: {ll: public}").check(&e));
        assert!(cond("network: {list: public}").check(&e));
        assert!(!cond("network: {bad: private}").check(&e));
        assert!(cond("network: {ip: private, pub: public}").check(&e));
        assert!(!cond("network: {ip: private, pub: private}").check(&e));
        assert!(cond_err("network: {ip: nonsense}").starts_with("failed to parse CIDR"));
        assert_eq!(
            cond_err("network: {ip: 5}"),
            "network condition attempted to set 'ip' -> '5' and encountered unexpected type 'uint64', only strings or []strings are allowed"
        );
    }

    #[test]
    fn or_and_not() {
        let e = http();
        assert!(cond("or: [{equals: {http.code: 404}}, {equals: {http.code: 200}}]").check(&e));
        assert!(!cond("or: [{equals: {http.code: 404}}, {equals: {http.code: 500}}]").check(&e));
        assert!(cond("and: [{equals: {http.code: 200}}, {equals: {status: OK}}]").check(&e));
        assert!(!cond("and: [{equals: {http.code: 200}}, {equals: {status: Err}}]").check(&e));
        assert!(cond("not: {equals: {status: Err}}").check(&e));
        assert!(!cond("not: {equals: {status: OK}}").check(&e));
        assert!(
            cond("not: {or: [{equals: {http.code: 404}}, {range: {http.code.gte: 500}}]}")
                .check(&e)
        );
        assert_eq!(cond_err("foo: {a: 1}"), "missing or invalid condition");
        assert_eq!(cond_err("or: []"), "missing or invalid condition");
    }
}
