//! An event's own fields, kept flat and already rendered as JSON.
//!
//! Why not a tree: building `serde_json` maps for every transaction (a `String` and a B-tree node
//! per key, a heap `Value` per string, all freed again after serialising) costs about half of
//! a packet worker's time on DNS-heavy traffic. Here an analyzer's `put` renders the value's JSON
//! into one buffer at once and records `(dotted path, byte range)`; the codec then writes the
//! nested objects by walking the paths in key order. Analyzers that put their fields in key
//! order (the hot ones do) cost one comparison per field to verify it; any other order is
//! sorted, and the rare event whose paths overlap (a value put at `a` and another at `a.b`) is
//! written through the tree ([`Fields::to_map`]), which gives `mapstr.Put`'s result exactly.
//!
//! Paths split on dots as libbeat's `mapstr.M.Put` does; a *literal* key (Packetbeat's
//! `"user.name"`, set with `event.Fields["user.name"] = …`) is one key with a dot in it.

use super::event::{Map, MapExt};
use crate::publish::json::{write_str, write_str_list, write_value};
use serde_json::Value;
use std::cmp::Ordering;

/// A field's path: usually a string literal, sometimes built at run time.
#[derive(Debug, Clone)]
pub enum FieldKey {
    Static(&'static str),
    Owned(Box<str>),
}

impl FieldKey {
    pub fn as_str(&self) -> &str {
        match self {
            FieldKey::Static(s) => s,
            FieldKey::Owned(s) => s,
        }
    }
}

impl From<&'static str> for FieldKey {
    fn from(s: &'static str) -> Self {
        FieldKey::Static(s)
    }
}

impl From<String> for FieldKey {
    fn from(s: String) -> Self {
        FieldKey::Owned(s.into_boxed_str())
    }
}

#[derive(Debug, Clone)]
struct Entry {
    key: FieldKey,
    /// Where the key's literal tail starts: the dots before it separate path segments, the
    /// tail is one key, dots and all. `key.len()` for a plain path, 0 for a literal key.
    literal_from: u32,
    start: u32,
    end: u32,
}

impl Entry {
    fn segments(&self) -> impl Iterator<Item = &str> {
        let k = self.key.as_str();
        let lit = self.literal_from as usize;
        let (path, tail) = if lit >= k.len() {
            (Some(k), None)
        } else if lit == 0 {
            (None, Some(k))
        } else {
            (Some(&k[..lit - 1]), Some(&k[lit..]))
        };
        path.into_iter().flat_map(|p| p.split('.')).chain(tail)
    }

    fn is_plain(&self) -> bool {
        self.literal_from as usize >= self.key.as_str().len()
    }

    /// Whether the byte at `i` (a dot) separates segments.
    fn separates(&self, i: usize) -> bool {
        i < self.literal_from as usize
    }

    /// The top-level key: the path up to its first separating dot.
    fn top(&self) -> &str {
        let k = self.key.as_str();
        let end = k
            .bytes()
            .enumerate()
            .find(|&(i, b)| b == b'.' && self.separates(i))
            .map_or(k.len(), |(i, _)| i);
        &k[..end]
    }
}

/// The fields of one event (see the module documentation).
#[derive(Debug, Clone, Default)]
pub struct Fields {
    json: Vec<u8>,
    entries: Vec<Entry>,
}

/// Why the fields could not be written straight (the caller goes through the tree instead).
#[derive(Debug, PartialEq, Eq)]
pub struct Overlap;

impl Fields {
    pub fn new() -> Fields {
        Fields::default()
    }

    /// Room for about `n` fields of typical size.
    pub fn with_capacity(n: usize) -> Fields {
        Fields {
            json: Vec::with_capacity(n * 64),
            entries: Vec::with_capacity(n),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Renders a value with `write` and records it under `key`.
    pub fn put_with(&mut self, key: impl Into<FieldKey>, write: impl FnOnce(&mut Vec<u8>)) {
        let key = key.into();
        let plain = key.as_str().len();
        self.push(key, plain, write);
    }

    fn push(&mut self, key: FieldKey, literal_from: usize, write: impl FnOnce(&mut Vec<u8>)) {
        // A literal tail without a dot is a plain segment.
        let k = key.as_str();
        let literal_from = if k[literal_from.min(k.len())..].contains('.') {
            literal_from
        } else {
            k.len()
        };
        let start = self.json.len() as u32;
        write(&mut self.json);
        let end = self.json.len() as u32;
        self.entries.push(Entry {
            key,
            literal_from: literal_from as u32,
            start,
            end,
        });
    }

    pub fn put_str(&mut self, key: impl Into<FieldKey>, v: &str) {
        self.put_with(key, |o| write_str(o, v));
    }

    /// A string from bytes, invalid UTF-8 replaced as Go's JSON encoder does.
    pub fn put_bytes(&mut self, key: impl Into<FieldKey>, v: &[u8]) {
        self.put_with(key, |o| write_str(o, &String::from_utf8_lossy(v)));
    }

    pub fn put_u64(&mut self, key: impl Into<FieldKey>, v: u64) {
        self.put_with(key, |o| {
            o.extend_from_slice(itoa::Buffer::new().format(v).as_bytes())
        });
    }

    pub fn put_i64(&mut self, key: impl Into<FieldKey>, v: i64) {
        self.put_with(key, |o| {
            o.extend_from_slice(itoa::Buffer::new().format(v).as_bytes())
        });
    }

    pub fn put_bool(&mut self, key: impl Into<FieldKey>, v: bool) {
        self.put_with(key, |o| {
            o.extend_from_slice(if v { b"true" } else { b"false" })
        });
    }

    /// A list of strings.
    pub fn put_strs<S: AsRef<str>>(
        &mut self,
        key: impl Into<FieldKey>,
        items: impl IntoIterator<Item = S>,
    ) {
        self.put_with(key, |o| write_str_list(o, items));
    }

    /// Any JSON value (nested objects are written in key order, as the tree would).
    pub fn put_value(&mut self, key: impl Into<FieldKey>, v: &Value) {
        self.put_with(key, |o| write_value(o, v));
    }

    /// `mapstr.Put`-style convenience for values that are not on a hot path.
    pub fn put(&mut self, key: impl Into<FieldKey>, v: impl Into<Value>) {
        self.put_value(key, &v.into());
    }

    /// The members of `map` under the path `prefix`, one field per leaf: nested maps are
    /// flattened, so later puts below `prefix` do not overlap them. A key with dots in it stays
    /// one key.
    pub fn put_map(&mut self, prefix: &str, map: &Map) {
        for (k, v) in map {
            let path = format!("{prefix}.{k}");
            match v {
                _ if k.contains('.') => {
                    self.push(FieldKey::Owned(path.into()), prefix.len() + 1, |o| {
                        write_value(o, v)
                    })
                }
                Value::Object(inner) if !inner.is_empty() => self.put_map(&path, inner),
                _ => self.put_value(path, v),
            }
        }
    }

    /// A top-level key with dots in it, set as one key (`event.Fields["user.name"] = …`).
    pub fn put_literal(&mut self, key: impl Into<FieldKey>, v: &Value) {
        self.push(key.into(), 0, |o| write_value(o, v));
    }

    /// The JSON text put at exactly `path` (the last one, if put twice).
    pub fn get_raw(&self, path: &str) -> Option<&[u8]> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.is_plain() && e.key.as_str() == path)
            .map(|e| &self.json[e.start as usize..e.end as usize])
    }

    /// The string put at exactly `path`, when it needed no escaping (e.g. `type`).
    pub fn get_plain_str(&self, path: &str) -> Option<&str> {
        let raw = self.get_raw(path)?;
        let inner = raw.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
        if inner.contains(&b'\\') {
            return None;
        }
        std::str::from_utf8(inner).ok()
    }

    /// The value at `path` as the tree holds it (slow: for tests and the rare path).
    pub fn get(&self, path: &str) -> Option<Value> {
        self.to_map().get_path(path).cloned()
    }

    /// Whether any field is at or below the top-level key `key`.
    pub fn has_top(&self, key: &str) -> bool {
        self.any_top(|k| k == key)
    }

    /// The fields as a tree, built as `mapstr.Put` would build it from the same puts in the
    /// same order.
    pub fn to_map(&self) -> Map {
        let mut m = Map::new();
        for e in &self.entries {
            let raw = &self.json[e.start as usize..e.end as usize];
            let v: Value = serde_json::from_slice(raw).expect("fields hold valid JSON");
            if e.is_plain() {
                m.put(e.key.as_str(), v);
            } else {
                let segs: Vec<&str> = e.segments().collect();
                put_segments(&mut m, &segs, v);
            }
        }
        m
    }

    /// Fields holding a tree: one field per top-level key.
    pub fn from_map(m: &Map) -> Fields {
        let mut f = Fields::with_capacity(m.len());
        for (k, v) in m {
            // A top-level key is one key, dots and all.
            f.push(FieldKey::Owned(k.as_str().into()), 0, |o| write_value(o, v));
        }
        f
    }

    /// Writes the fields as members of the enclosing JSON object (each preceded by a comma),
    /// merged in key order with the `typed` top-level keys (sorted, disjoint from the fields'),
    /// whose values `write_typed(i, out)` writes. `@`-keys are left to the tree path. On
    /// [`Overlap`] nothing is written.
    pub fn write_members(
        &self,
        out: &mut Vec<u8>,
        typed: &[&str],
        write_typed: impl FnMut(usize, &mut Vec<u8>),
    ) -> Result<(), Overlap> {
        let start = out.len();
        let sorted = self
            .entries
            .windows(2)
            .all(|w| cmp_entries(&w[0], &w[1]) == Ordering::Less);
        let written = if sorted {
            self.write_in_order(out, self.entries.iter(), typed, write_typed)
        } else {
            let order = self.sorted_order();
            let entries = order.iter().map(|i| &self.entries[*i as usize]);
            self.write_in_order(out, entries, typed, write_typed)
        };
        if written.is_err() {
            out.truncate(start);
        }
        written
    }

    /// Entry indices in key order, the last of equal paths only (the sort is stable).
    fn sorted_order(&self) -> Vec<u32> {
        let mut order: Vec<u32> = (0..self.entries.len() as u32).collect();
        order.sort_by(|a, b| cmp_entries(&self.entries[*a as usize], &self.entries[*b as usize]));
        let mut dedup: Vec<u32> = Vec::with_capacity(order.len());
        for i in order {
            if let Some(last) = dedup.last_mut() {
                if cmp_entries(&self.entries[*last as usize], &self.entries[i as usize])
                    == Ordering::Equal
                {
                    *last = i;
                    continue;
                }
            }
            dedup.push(i);
        }
        dedup
    }

    /// Writes entries given in strictly increasing key order. The objects open at any time are
    /// the parents of the previous key: each is known by the position of the dot that ends it
    /// in that key, so moving to the next key compares bytes once and never splits strings.
    fn write_in_order<'a>(
        &'a self,
        out: &mut Vec<u8>,
        entries: impl Iterator<Item = &'a Entry>,
        typed: &[&str],
        mut write_typed: impl FnMut(usize, &mut Vec<u8>),
    ) -> Result<(), Overlap> {
        let mut next_typed = 0;
        // Dot positions (in the previous key) ending the open objects' paths, and whether
        // each open object has a member yet.
        let mut open: Vec<(usize, bool)> = Vec::with_capacity(6);
        let mut prev: Option<&Entry> = None;
        for e in entries {
            let k = e.key.as_str().as_bytes();
            if k.first() == Some(&b'@') {
                return Err(Overlap);
            }
            if let Some(p) = prev {
                let pk = p.key.as_str().as_bytes();
                let common = pk.iter().zip(k).take_while(|(a, b)| a == b).count();
                // The previous field is a parent of this one: `a` then `a.b`.
                if common == pk.len()
                    && k.len() > common
                    && e.separates(common)
                    && k[common] == b'.'
                {
                    return Err(Overlap);
                }
                while let Some(&(dot, _)) = open.last() {
                    if dot < common && e.separates(dot) && p.separates(dot) {
                        break;
                    }
                    open.pop();
                    out.push(b'}');
                }
            }
            let mut seg_start = open.last().map_or(0, |(dot, _)| dot + 1);
            if open.is_empty() {
                let top = e.top();
                while next_typed < typed.len() && typed[next_typed] < top {
                    out.push(b',');
                    write_plain_key(out, typed[next_typed]);
                    out.push(b':');
                    write_typed(next_typed, out);
                    next_typed += 1;
                }
                if typed.get(next_typed) == Some(&top) {
                    return Err(Overlap);
                }
            }
            let key = e.key.as_str();
            let mut i = seg_start;
            while i < k.len() {
                if k[i] == b'.' && e.separates(i) {
                    member_sep(out, &mut open);
                    write_key(out, &key[seg_start..i], &e.key);
                    out.extend_from_slice(b":{");
                    open.push((i, false));
                    seg_start = i + 1;
                }
                i += 1;
            }
            member_sep(out, &mut open);
            write_key(out, &key[seg_start..], &e.key);
            out.push(b':');
            out.extend_from_slice(&self.json[e.start as usize..e.end as usize]);
            prev = Some(e);
        }
        for _ in open {
            out.push(b'}');
        }
        for (i, key) in typed.iter().enumerate().skip(next_typed) {
            out.push(b',');
            write_plain_key(out, key);
            out.push(b':');
            write_typed(i, out);
        }
        Ok(())
    }

    /// Whether any field's top-level key satisfies `pred`.
    pub fn any_top(&self, mut pred: impl FnMut(&str) -> bool) -> bool {
        self.entries.iter().any(|e| pred(e.top()))
    }
}

/// A key that is a literal of the code (typed top-level keys such as `client`, segments of
/// static paths): plain, no escaping.
fn write_plain_key(out: &mut Vec<u8>, key: &str) {
    debug_assert!(!key.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\'));
    out.push(b'"');
    out.extend_from_slice(key.as_bytes());
    out.push(b'"');
}

/// A key segment: those of string literals are plain (the code's own field names), the
/// others are escaped as needed.
fn write_key(out: &mut Vec<u8>, seg: &str, key: &FieldKey) {
    match key {
        FieldKey::Static(_) => write_plain_key(out, seg),
        FieldKey::Owned(_) => write_str(out, seg),
    }
}

fn member_sep(out: &mut Vec<u8>, open: &mut [(usize, bool)]) {
    match open.last_mut() {
        // The top level always follows `@timestamp` and `@metadata`.
        None => out.push(b','),
        Some((_, has_member)) => {
            if std::mem::replace(has_member, true) {
                out.push(b',');
            }
        }
    }
}

/// `mapstr.Put` along explicit segments: intermediate non-maps are replaced by maps.
fn put_segments(m: &mut Map, segs: &[&str], v: Value) {
    match segs {
        [] => {}
        [leaf] => {
            m.insert(leaf.to_string(), v);
        }
        [head, rest @ ..] => {
            let entry = m
                .entry(head.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            if let Value::Object(inner) = entry {
                put_segments(inner, rest, v);
            }
        }
    }
}

/// Key order of two paths, segment by segment (a dot ends a segment, so it sorts before any
/// other byte), in one pass over the bytes.
fn cmp_entries(a: &Entry, b: &Entry) -> Ordering {
    let (x, y) = (a.key.as_str().as_bytes(), b.key.as_str().as_bytes());
    let n = x.len().min(y.len());
    let mut i = 0;
    while i < n {
        let (p, q) = (x[i], y[i]);
        if p != q {
            let p = if p == b'.' && a.separates(i) { 0 } else { p };
            let q = if q == b'.' && b.separates(i) { 0 } else { q };
            return p.cmp(&q);
        }
        if p == b'.' && a.separates(i) != b.separates(i) {
            // One segment ends here, the other goes on.
            return if a.separates(i) {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        i += 1;
    }
    x.len().cmp(&y.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The members as the tree path writes them.
    fn via_tree(f: &Fields) -> String {
        let m = f.to_map();
        let mut out = Vec::new();
        for (k, v) in &m {
            out.push(b',');
            write_str(&mut out, k);
            out.push(b':');
            write_value(&mut out, v);
        }
        String::from_utf8(out).unwrap()
    }

    fn direct(f: &Fields) -> Result<String, Overlap> {
        let mut out = Vec::new();
        f.write_members(&mut out, &[], |_, _| {})?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn sorted_and_unsorted_puts_write_the_tree() {
        let mut f = Fields::new();
        f.put_str("type", "dns");
        f.put_u64("dns.id", 7);
        f.put_bool("dns.flags.authoritative", true);
        f.put_strs("dns.header_flags", ["RD", "RA"]);
        f.put_str("dns-x", "dash sorts after the dns object");
        f.put_str("dns.flags.aa", "x");
        f.put_literal("user.name", &json!("bob"));
        f.put_str("user_agent.original", "curl");
        f.put_str("user.id", "1");
        f.put_str("status", "Error");
        f.put_str("status", "OK");
        let d = direct(&f).unwrap();
        assert_eq!(d, via_tree(&f));
        assert!(d.contains(r#""status":"OK""#), "{d}");
        assert!(
            d.contains(r#""user":{"id":"1"},"user.name":"bob","user_agent""#),
            "{d}"
        );
    }

    #[test]
    fn overlapping_paths_go_through_the_tree() {
        let mut f = Fields::new();
        f.put_str("a", "scalar");
        f.put_str("a.b", "nested");
        assert_eq!(direct(&f), Err(Overlap));
        assert_eq!(via_tree(&f), r#","a":{"b":"nested"}"#);
        let mut g = Fields::new();
        g.put_value("tls", &json!({"client": {"ja3": "x"}}));
        g.put_str("tls.client.x509.version", "3");
        assert_eq!(direct(&g), Err(Overlap));
        let mut h = Fields::new();
        h.put_map(
            "tls",
            json!({"client": {"ja3": "x"}, "a.b": 1})
                .as_object()
                .unwrap(),
        );
        h.put_str("tls.client.x509.version", "3");
        assert_eq!(direct(&h).unwrap(), via_tree(&h));
    }

    #[test]
    fn typed_keys_merge_in_order() {
        let mut f = Fields::new();
        f.put_str("dns.id", "1");
        f.put_str("type", "dns");
        let mut out = Vec::new();
        f.write_members(&mut out, &["agent", "event", "zz"], |i, o| {
            o.extend_from_slice(format!("{i}").as_bytes())
        })
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#","agent":0,"dns":{"id":"1"},"event":1,"type":"dns","zz":2"#
        );
        let mut out = Vec::new();
        assert_eq!(
            f.write_members(&mut out, &["type"], |_, _| {}),
            Err(Overlap)
        );
        assert!(out.is_empty());
    }

    /// Random puts (sorted or not, overlapping or not, plain paths, literal keys and literal
    /// tails, with typed top-level keys to merge): whenever the direct writer accepts them, it
    /// writes exactly what the tree gives.
    #[test]
    fn direct_writer_agrees_with_the_tree_on_random_fields() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        const SEGS: &[&str] = &["a", "b", "a_b", "a-b", "ab", "b0", "z"];
        const TYPED: &[&str] = &["aa", "c", "y"];
        let (mut accepted, mut overlaps) = (0, 0);
        for _ in 0..5000 {
            let mut f = Fields::new();
            let n = 1 + next(8);
            let mut paths: Vec<String> = Vec::new();
            for _ in 0..n {
                let depth = 1 + next(3);
                let segs: Vec<&str> = (0..depth)
                    .map(|_| SEGS[next(SEGS.len() as u64) as usize])
                    .collect();
                paths.push(segs.join("."));
            }
            if next(2) == 0 {
                paths.sort();
            }
            for (i, path) in paths.iter().enumerate() {
                let v = Value::from(i as u64);
                match next(10) {
                    0 => f.put_literal(path.clone(), &v),
                    1 => {
                        let mut m = Map::new();
                        m.insert("k.l".into(), v);
                        m.insert("m".into(), json!({"n": 1}));
                        f.put_map(path, &m);
                    }
                    _ => f.put_value(path.clone(), &v),
                }
            }
            let typed: Vec<&str> = TYPED.iter().copied().filter(|_| next(2) == 0).collect();
            let mut out = Vec::new();
            let direct = f.write_members(&mut out, &typed, |i, o| {
                o.extend_from_slice(format!("\"{}\"", typed[i]).as_bytes())
            });
            match direct {
                Ok(()) => {
                    accepted += 1;
                    let mut tree = f.to_map();
                    for t in &typed {
                        tree.insert(t.to_string(), Value::from(*t));
                    }
                    let mut want = Vec::new();
                    for (k, v) in &tree {
                        want.push(b',');
                        write_str(&mut want, k);
                        want.push(b':');
                        write_value(&mut want, v);
                    }
                    assert_eq!(
                        String::from_utf8(out).unwrap(),
                        String::from_utf8(want).unwrap(),
                        "paths {paths:?}"
                    );
                }
                Err(Overlap) => {
                    overlaps += 1;
                    assert!(out.is_empty());
                }
            }
        }
        assert!(
            accepted > 1000 && overlaps > 100,
            "{accepted} accepted, {overlaps} overlaps"
        );
    }

    #[test]
    fn tree_round_trip_and_lookups() {
        let m = json!({"a": {"b": 1}, "c.d": "x", "t": "http"});
        let f = Fields::from_map(m.as_object().unwrap());
        assert_eq!(Value::Object(f.to_map()), m);
        assert_eq!(f.get_plain_str("t"), Some("http"));
        assert!(f.has_top("a") && f.has_top("c.d") && !f.has_top("c"));
        assert_eq!(f.get("a.b"), Some(json!(1)));
    }
}
