//! The raw configuration tree with go-ucfg semantics: dotted keys mean nesting, and trees are
//! merged the way libbeat merges its defaults, the config files and the `-E` overrides.

use serde_yaml::value::{Tag, TaggedValue};
use serde_yaml::{Mapping, Value};

/// The tag of a list element that a path only passed over: `-E packetbeat.protocols.4.ports=[5353]`
/// builds `[_, _, _, _, {ports: [5353]}]`, and merging that onto the config must leave elements
/// 0 to 3 as they are (go-ucfg creates no value for them), so the padding is marked rather than
/// null. Where nothing is under it after merging, the mark becomes null.
const UNSET_TAG: &str = "packetbeat-rs-unset";

fn unset() -> Value {
    Value::Tagged(Box::new(TaggedValue {
        tag: Tag::new(UNSET_TAG),
        value: Value::Null,
    }))
}

fn is_unset(v: &Value) -> bool {
    matches!(v, Value::Tagged(t) if t.tag == UNSET_TAG)
}

/// Replaces every padding mark left in `v` by null.
fn resolve_unset(v: &mut Value) {
    match v {
        _ if is_unset(v) => *v = Value::Null,
        Value::Mapping(m) => m.values_mut().for_each(resolve_unset),
        Value::Sequence(s) => s.iter_mut().for_each(resolve_unset),
        _ => {}
    }
}

/// The string form of a mapping key (YAML allows numbers and booleans as keys; go-ucfg reads
/// every key as a string).
pub fn key_string(k: &Value) -> String {
    match k {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        other => serde_yaml::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

/// Rewrites every mapping so dotted keys become nested mappings
/// (`packetbeat.interfaces.device: any` == `packetbeat: {interfaces: {device: any}}`), merging
/// entries that share a prefix. Later entries win over earlier ones, as in go-ucfg.
pub fn normalize(v: Value) -> Value {
    match v {
        Value::Mapping(m) => {
            let mut out = Value::Mapping(Mapping::new());
            for (k, v) in m {
                let key = key_string(&k);
                let v = normalize(v);
                let parts: Vec<&str> = key.split('.').collect();
                set_path(&mut out, &parts, v, false);
            }
            out
        }
        Value::Sequence(s) => Value::Sequence(s.into_iter().map(normalize).collect()),
        Value::Tagged(t) => normalize(t.value),
        other => other,
    }
}

/// Merges `overlay` into `base` as go-ucfg does by default: mappings merge key by key, sequences
/// merge element by element (extra elements of either side are kept), anything else is replaced.
/// A list element a path only passed over ([`set_path`]) leaves the base's element unchanged.
pub fn merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (b, o) if is_unset(&o) => {
            resolve_unset(b);
        }
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, mut v) in o {
                match b.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        resolve_unset(&mut v);
                        b.insert(k, v);
                    }
                }
            }
        }
        (Value::Sequence(b), Value::Sequence(o)) => {
            for (i, mut v) in o.into_iter().enumerate() {
                if i < b.len() {
                    merge(&mut b[i], v);
                } else {
                    resolve_unset(&mut v);
                    b.push(v);
                }
            }
        }
        (b, mut o) => {
            resolve_unset(&mut o);
            *b = o;
        }
    }
}

/// Sets (merging) `value` at a dotted path. A numeric component indexes a sequence when the
/// current value there is a sequence or absent (`packetbeat.protocols.0.enabled`), as go-ucfg
/// paths do; otherwise it is a mapping key. With `replace`, the value replaces what was there
/// instead of being merged into it.
pub fn set_path(root: &mut Value, parts: &[&str], value: Value, replace: bool) {
    if is_unset(root) {
        *root = Value::Null;
    }
    let Some((first, rest)) = parts.split_first() else {
        if replace {
            *root = value;
        } else {
            merge(root, value);
        }
        return;
    };
    let index = first.parse::<usize>().ok();
    if let (Some(i), true) = (index, matches!(root, Value::Sequence(_) | Value::Null)) {
        if root.is_null() {
            *root = Value::Sequence(Vec::new());
        }
        let Value::Sequence(seq) = root else {
            unreachable!()
        };
        while seq.len() <= i {
            seq.push(unset());
        }
        return set_path(&mut seq[i], rest, value, replace);
    }
    if !root.is_mapping() {
        *root = Value::Mapping(Mapping::new());
    }
    let Value::Mapping(m) = root else {
        unreachable!()
    };
    let key = Value::String(first.to_string());
    if rest.is_empty() && !m.contains_key(&key) {
        m.insert(key, value);
        return;
    }
    let child = m.entry(key).or_insert(Value::Null);
    set_path(child, rest, value, replace);
}

/// Returns a copy of the tree with every mapping's keys sorted (as Go's YAML encoder writes maps).
pub fn sorted(v: &Value) -> Value {
    match v {
        Value::Mapping(m) => {
            let mut entries: Vec<(String, Value)> =
                m.iter().map(|(k, v)| (key_string(k), sorted(v))).collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Mapping(
                entries
                    .into_iter()
                    .map(|(k, v)| (Value::String(k), v))
                    .collect(),
            )
        }
        Value::Sequence(s) => Value::Sequence(s.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// What a redacted secret reads as.
pub const REDACTED: &str = "xxxxx";

/// Keys whose values are secrets (compared case-insensitively), as libbeat's config debug
/// output masks them.
const SECRET_KEYS: &[&str] = &[
    "password",
    "passphrase",
    "key_passphrase",
    "api_key",
    "authorization",
    "proxy-authorization",
];

/// The tree with every secret replaced by [`REDACTED`]: values of the keys above, and the
/// password of any `scheme://user:password@host` URL, so `export config` never prints one
/// (keystore values included, which the tree holds resolved).
pub fn redacted(v: &Value) -> Value {
    match v {
        Value::Mapping(m) => Value::Mapping(
            m.iter()
                .map(|(k, v)| {
                    let secret = SECRET_KEYS
                        .iter()
                        .any(|s| key_string(k).eq_ignore_ascii_case(s));
                    let v = match v {
                        Value::String(_) | Value::Number(_) if secret => {
                            Value::String(REDACTED.into())
                        }
                        other => redacted(other),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Sequence(s) => Value::Sequence(s.iter().map(redacted).collect()),
        Value::String(s) => Value::String(redact_url_password(s)),
        other => other.clone(),
    }
}

/// `scheme://user:password@host…` with the password replaced.
fn redact_url_password(s: &str) -> String {
    let Some((scheme, rest)) = s.split_once("://") else {
        return s.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!(
                "{scheme}://{user}:{REDACTED}@{host}{}",
                &rest[authority_end..]
            )
        }
        _ => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted() {
        let v: Value = serde_yaml::from_str(
            "output.elasticsearch:\n  hosts: ['https://elastic:pw1@es:9200/p', 'es2']\n  password: pw2\n  api_key: 'id:pw3'\n  headers: {Authorization: 'Bearer pw4', X-Other: keep}\n  ssl.key_passphrase: pw5\nname: keep\n",
        )
        .unwrap();
        let text = serde_yaml::to_string(&redacted(&normalize(v))).unwrap();
        for pw in ["pw1", "pw2", "pw3", "pw4", "pw5"] {
            assert!(!text.contains(pw), "{pw} in {text}");
        }
        assert!(text.contains("https://elastic:xxxxx@es:9200/p"), "{text}");
        assert!(
            text.contains("X-Other: keep") && text.contains("name: keep"),
            "{text}"
        );
    }

    fn y(s: &str) -> Value {
        serde_yaml::from_str(s).unwrap()
    }

    #[test]
    fn dotted_keys_nest_and_merge_with_nested_forms() {
        let v = normalize(y("packetbeat.interfaces.device: eth0\npacketbeat:\n  interfaces:\n    snaplen: 1514\n  flows.timeout: 5s\n"));
        assert_eq!(
            v,
            y("packetbeat: {interfaces: {device: eth0, snaplen: 1514}, flows: {timeout: 5s}}")
        );
    }

    #[test]
    fn dotted_keys_inside_lists_are_normalised() {
        let v = normalize(y(
            "packetbeat.protocols:\n- type: http\n  codec.json.pretty: true\n",
        ));
        assert_eq!(
            v,
            y("packetbeat: {protocols: [{type: http, codec: {json: {pretty: true}}}]}")
        );
    }

    #[test]
    fn later_keys_win() {
        let v = normalize(y("a.b: 1\na: {b: 2, c: 3}\n"));
        assert_eq!(v, y("a: {b: 2, c: 3}"));
    }

    #[test]
    fn sequences_merge_by_index() {
        let mut base = y("ports: [80, 8000, 8080]");
        merge(&mut base, y("ports: [81]"));
        assert_eq!(base, y("ports: [81, 8000, 8080]"));
    }

    #[test]
    fn numeric_path_components_index_lists() {
        let mut v = y("p: [{type: http}, {type: dns}]");
        set_path(&mut v, &["p", "1", "enabled"], Value::Bool(false), false);
        assert_eq!(v, y("p: [{type: http}, {type: dns, enabled: false}]"));
    }

    #[test]
    fn an_indexed_override_changes_that_element_only() {
        let mut base = y("p: [{type: icmp}, {type: dns, ports: [53]}, {type: http}]");
        let mut over = Value::Mapping(Mapping::new());
        set_path(&mut over, &["p", "1", "ports"], y("[5353]"), true);
        set_path(&mut over, &["p", "4", "type"], y("tls"), true);
        merge(&mut base, over);
        assert_eq!(
            base,
            y("p: [{type: icmp}, {type: dns, ports: [5353]}, {type: http}, null, {type: tls}]")
        );
    }

    #[test]
    fn indexed_paths_nest_through_passed_over_elements() {
        let mut over = Value::Mapping(Mapping::new());
        set_path(&mut over, &["a", "1", "0", "x"], y("1"), true);
        let mut base = Value::Mapping(Mapping::new());
        merge(&mut base, over);
        assert_eq!(base, y("a: [null, [{x: 1}]]"));
    }
}
