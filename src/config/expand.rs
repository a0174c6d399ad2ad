//! `${name}` and `${name:default}` variables, resolved as go-ucfg resolves them: first against the
//! configuration itself (`${path.home}`), then against the environment, then the default. A string
//! that is exactly one variable takes the variable's type (`ports: ${PORTS}` with `PORTS=[80,8080]`
//! is a list); a variable inside a longer string is spliced in as text. `$${` is a literal `${`.

use super::overrides::{parse_value, ENV};
use super::tree::key_string;
use super::types::lookup;
use serde_yaml::Value;

/// A variable that could not be resolved, or a malformed reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpandError {
    pub msg: String,
    /// Dotted key of the value that holds the reference.
    pub key: String,
}

const MAX_DEPTH: usize = 32;

/// Source of environment values (the process environment, or a map in tests).
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Resolves every variable in `root`.
pub fn expand_tree(root: &Value, env: EnvLookup) -> Result<Value, ExpandError> {
    let ctx = Ctx { root, env };
    ctx.walk(root, "", 0)
}

/// The value at dotted `key` with its variables resolved, or `None` when the key is absent.
pub fn expand_at(root: &Value, key: &str, env: EnvLookup) -> Result<Option<Value>, ExpandError> {
    let ctx = Ctx { root, env };
    lookup(root, key).map(|v| ctx.walk(v, key, 0)).transpose()
}

struct Ctx<'a> {
    root: &'a Value,
    env: EnvLookup<'a>,
}

enum Piece {
    Text(String),
    Var(String),
}

impl Ctx<'_> {
    fn walk(&self, v: &Value, key: &str, depth: usize) -> Result<Value, ExpandError> {
        Ok(match v {
            Value::Mapping(m) => {
                let mut out = serde_yaml::Mapping::new();
                for (k, child) in m {
                    let ks = key_string(k);
                    let sub = if key.is_empty() {
                        ks
                    } else {
                        format!("{key}.{ks}")
                    };
                    out.insert(k.clone(), self.walk(child, &sub, depth)?);
                }
                Value::Mapping(out)
            }
            Value::Sequence(s) => {
                let mut out = Vec::with_capacity(s.len());
                for (i, child) in s.iter().enumerate() {
                    let sub = if key.is_empty() {
                        i.to_string()
                    } else {
                        format!("{key}.{i}")
                    };
                    out.push(self.walk(child, &sub, depth)?);
                }
                Value::Sequence(out)
            }
            Value::String(s) if s.contains('$') => self.expand_str(s, key, depth)?,
            other => other.clone(),
        })
    }

    fn expand_str(&self, s: &str, key: &str, depth: usize) -> Result<Value, ExpandError> {
        if depth > MAX_DEPTH {
            return Err(ExpandError {
                msg: "cyclic reference detected".into(),
                key: key.into(),
            });
        }
        let pieces = split(s).map_err(|msg| ExpandError {
            msg,
            key: key.into(),
        })?;
        if pieces.len() == 1 {
            if let Piece::Var(body) = &pieces[0] {
                return self.resolve(body, key, depth);
            }
        }
        let mut out = String::new();
        for p in pieces {
            match p {
                Piece::Text(t) => out.push_str(&t),
                Piece::Var(body) => out.push_str(&to_text(&self.resolve(&body, key, depth)?)),
            }
        }
        Ok(Value::String(out))
    }

    /// Resolves the inside of one `${...}`.
    fn resolve(&self, body: &str, key: &str, depth: usize) -> Result<Value, ExpandError> {
        let (name, default) = split_default(body);
        let name = name.trim();
        if name.is_empty() {
            return Err(ExpandError {
                msg: format!("empty variable name in '${{{body}}}'"),
                key: key.into(),
            });
        }
        if let Some(v) = lookup(self.root, name) {
            if !v.is_null() {
                return self.walk(v, name, depth + 1);
            }
        }
        if let Some(v) = (self.env)(name) {
            return Ok(parse_value(&v, ENV).unwrap_or(Value::String(v)));
        }
        if let Some(d) = default {
            let expanded = self.expand_str(d, key, depth + 1)?;
            return Ok(match expanded {
                Value::String(s) => parse_value(&s, ENV).unwrap_or(Value::String(s)),
                other => other,
            });
        }
        Err(ExpandError {
            msg: format!("missing field: variable '{name}' is neither set in the environment nor in the config, and has no default"),
            key: key.into(),
        })
    }
}

/// Splits a string into text and `${...}` references (nested references stay inside).
fn split(s: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' && s[i..].starts_with("$${") {
            text.push_str("${");
            i += 3;
            continue;
        }
        if b[i] == b'$' && i + 1 < b.len() && b[i + 1] == b'{' {
            let mut level = 1;
            let mut j = i + 2;
            while j < b.len() && level > 0 {
                if b[j] == b'$' && j + 1 < b.len() && b[j + 1] == b'{' {
                    level += 1;
                    j += 2;
                    continue;
                }
                if b[j] == b'}' {
                    level -= 1;
                }
                j += 1;
            }
            if level > 0 {
                return Err(format!("unterminated variable reference in '{s}'"));
            }
            if !text.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut text)));
            }
            pieces.push(Piece::Var(s[i + 2..j - 1].to_string()));
            i = j;
            continue;
        }
        let ch = s[i..].chars().next().unwrap();
        text.push(ch);
        i += ch.len_utf8();
    }
    if !text.is_empty() || pieces.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

/// `name:default` → (`name`, Some(`default`)), splitting at the first `:` outside nested references.
fn split_default(body: &str) -> (&str, Option<&str>) {
    let b = body.as_bytes();
    let mut level = 0;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'$' if i + 1 < b.len() && b[i + 1] == b'{' => {
                level += 1;
                i += 2;
                continue;
            }
            b'}' if level > 0 => level -= 1,
            b':' if level == 0 => return (&body[..i], Some(&body[i + 1..])),
            _ => {}
        }
        i += 1;
    }
    (body, None)
}

fn to_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn y(s: &str) -> Value {
        serde_yaml::from_str(s).unwrap()
    }

    fn run(tree: &str, env: &[(&str, &str)]) -> Result<Value, ExpandError> {
        let map: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let f = move |k: &str| map.get(k).cloned();
        expand_tree(&y(tree), &f)
    }

    #[test]
    fn env_and_defaults() {
        let v = run(
            "a: ${A}\nb: ${B:fallback}\nc: pre-${A}-post\nd: ${NOPE:}",
            &[("A", "x")],
        )
        .unwrap();
        assert_eq!(v, y("a: x\nb: fallback\nc: pre-x-post\nd: null"));
    }

    #[test]
    fn whole_references_are_typed() {
        let v = run(
            "p: ${PORTS}\nn: ${N}\nq: ${Q:[1,2]}\nb: ${B:true}",
            &[("PORTS", "[80,8080]"), ("N", "5")],
        )
        .unwrap();
        assert_eq!(v, y("p: [80, 8080]\nn: 5\nq: [1, 2]\nb: true"));
    }

    #[test]
    fn config_references_resolve_first() {
        let v = run(
            "path: {home: /opt/pb, data: '${path.home}/data'}\nx: ${path.data}",
            &[("path.home", "/env")],
        )
        .unwrap();
        assert_eq!(
            v,
            y("path: {home: /opt/pb, data: /opt/pb/data}\nx: /opt/pb/data")
        );
    }

    #[test]
    fn nested_default_and_escape() {
        let v = run("a: ${X:${Y:deep}}\nb: $${literal}", &[]).unwrap();
        assert_eq!(v, y("a: deep\nb: '${literal}'"));
    }

    #[test]
    fn missing_variable_names_variable_and_key() {
        let e = run("output.file.path: ${MISSING_VAR}", &[]).unwrap_err();
        assert_eq!(e.key, "output.file.path");
        assert!(e.msg.contains("MISSING_VAR"), "{}", e.msg);
    }

    #[test]
    fn cycles_are_errors() {
        let e = run("a: ${b}\nb: ${a}", &[]).unwrap_err();
        assert!(e.msg.contains("cyclic"), "{}", e.msg);
    }
}
