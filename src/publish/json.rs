//! Event JSON, written directly: the writer analyzers and the pipeline render fields with
//! ([`ObjectWriter`], [`write_str`], [`write_value`], …), and libbeat's JSON codec
//! ([`JsonCodec`]): `@timestamp` first, then `@metadata` (`beat`, `type`, `version` and the
//! event's own metadata), then the event's fields.

use crate::publish::Event;
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Copy, Default)]
pub struct JsonCodec {
    pub pretty: bool,
    pub escape_html: bool,
}

impl JsonCodec {
    /// Serialises `event` into `out` (no trailing newline).
    pub fn encode_into(&self, event: &Event, out: &mut Vec<u8>) {
        if let Some(bytes) = &event.encoded {
            out.extend_from_slice(bytes);
            return;
        }
        let start = out.len();
        if self.pretty {
            // Pretty printing goes through the whole tree.
            let doc = Ordered {
                meta: metadata(event),
                timestamp: event.timestamp.to_rfc3339(),
                fields: full_tree(event),
            };
            let mut ser = serde_json::Serializer::with_formatter(
                &mut *out,
                serde_json::ser::PrettyFormatter::with_indent(b"  "),
            );
            doc.serialize(&mut ser)
                .expect("serialising JSON values cannot fail");
        } else {
            self.write_compact(event, out);
        }
        if self.escape_html {
            escape_html(out, start);
        }
    }

    pub fn encode(&self, event: &Event) -> Vec<u8> {
        let mut v = Vec::with_capacity(1024);
        self.encode_into(event, &mut v);
        v
    }

    /// The compact encoding: the fields straight from their rendered form, merged in key order
    /// with the common fields and builtins written from their structs, so the bytes are those
    /// of the tree without building it (the tree is the fallback when paths overlap).
    fn write_compact(&self, event: &Event, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"@timestamp\":\"");
        event.timestamp.write_rfc3339(out);
        out.extend_from_slice(b"\",\"@metadata\":");
        if event.meta.is_empty() {
            out.extend_from_slice(b"{\"beat\":\"packetbeat\",\"type\":\"_doc\",\"version\":");
            write_str(out, crate::BEAT_VERSION);
            out.push(b'}');
        } else {
            // Built as the tree path builds it, so key order and overrides are the same.
            write_value(out, &Value::Object(metadata(event)));
        }
        // Top-level keys written from typed structs: at most 8 common ones and 3 builtins, each
        // list in key order, merged.
        let mut keys: [&str; 12] = [""; 12];
        let mut n = 0;
        let builtins = event.builtin.as_ref().map(|b| b.entries()).unwrap_or(&[]);
        let mut b = builtins.iter().map(|(k, _)| *k).peekable();
        for k in event.pb.iter().flat_map(|pb| pb.json_keys()) {
            while let Some(bk) = b.next_if(|bk| *bk < k) {
                keys[n] = bk;
                n += 1;
            }
            keys[n] = k;
            n += 1;
        }
        for bk in b {
            keys[n] = bk;
            n += 1;
        }
        debug_assert!(keys[..n].windows(2).all(|w| w[0] < w[1]));
        let keys = &keys[..n];
        let written = event.fields.write_members(out, keys, |i, o| {
            let key = keys[i];
            match builtins.iter().find(|(k, _)| *k == key) {
                Some((_, json)) => o.extend_from_slice(json.as_bytes()),
                None => event
                    .pb
                    .as_ref()
                    .expect("the other keys come from pb")
                    .write_json(key, o),
            }
        });
        if written.is_err() {
            for (k, v) in full_tree(event).iter() {
                if k == "@timestamp" || k == "@metadata" {
                    continue;
                }
                out.push(b',');
                write_str(out, k);
                out.push(b':');
                write_value(out, v);
            }
        }
        out.push(b'}');
    }
}

/// The event's fields with the common fields and builtins merged in, as a tree (what the
/// encoding writes after `@timestamp` and `@metadata`).
pub fn full_tree(event: &Event) -> serde_json::Map<String, Value> {
    let mut m = event.fields.to_map();
    if let Some(pb) = &event.pb {
        pb.marshal(&mut m);
    }
    if let Some(b) = &event.builtin {
        b.put_into(&mut m);
    }
    m
}

/// `@metadata`: `beat`, `type`, `version`, then the event's own (which may replace them).
fn metadata(event: &Event) -> serde_json::Map<String, Value> {
    let mut meta = serde_json::Map::new();
    meta.insert("beat".into(), Value::from("packetbeat"));
    meta.insert("type".into(), Value::from("_doc"));
    meta.insert("version".into(), Value::from(crate::BEAT_VERSION));
    for (k, v) in &event.meta {
        meta.insert(k.clone(), v.clone());
    }
    meta
}

struct Ordered {
    timestamp: String,
    meta: serde_json::Map<String, Value>,
    fields: serde_json::Map<String, Value>,
}

impl Serialize for Ordered {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.fields.len() + 2))?;
        m.serialize_entry("@timestamp", &self.timestamp)?;
        m.serialize_entry("@metadata", &self.meta)?;
        for (k, v) in &self.fields {
            if k == "@timestamp" || k == "@metadata" {
                continue;
            }
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// Go's `json.Encoder.SetEscapeHTML(true)`: `<`, `>`, `&` become `\u003c`, `\u003e`, `\u0026`.
/// Those bytes can only appear inside JSON strings, so a byte-level rewrite is exact.
fn escape_html(out: &mut Vec<u8>, start: usize) {
    if !out[start..].iter().any(|b| matches!(b, b'<' | b'>' | b'&')) {
        return;
    }
    let tail: Vec<u8> = out.split_off(start);
    for b in tail {
        match b {
            b'<' => out.extend_from_slice(b"\\u003c"),
            b'>' => out.extend_from_slice(b"\\u003e"),
            b'&' => out.extend_from_slice(b"\\u0026"),
            _ => out.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::Ts;

    #[test]
    fn timestamp_and_metadata_come_first() {
        let mut e = Event::bare(Ts(1_424_218_386_123_000_000), Default::default());
        e.put("type", "http");
        e.put("a.b", "<x>");
        let s = String::from_utf8(JsonCodec::default().encode(&e)).unwrap();
        assert_eq!(
            s,
            r#"{"@timestamp":"2015-02-18T00:13:06.123Z","@metadata":{"beat":"packetbeat","type":"_doc","version":"8.17.2"},"a":{"b":"<x>"},"type":"http"}"#
        );
        let esc = String::from_utf8(
            JsonCodec {
                pretty: false,
                escape_html: true,
            }
            .encode(&e),
        )
        .unwrap();
        assert!(esc.contains(r#""\u003cx\u003e""#), "{esc}");
    }
}

/// Writes a JSON value as serde_json's compact serializer does, without its generic machinery:
/// strings that need no escaping (nearly all) are copied in one go.
pub fn write_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                out.extend_from_slice(itoa::Buffer::new().format(u).as_bytes());
            } else if let Some(i) = n.as_i64() {
                out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
            } else {
                serde_json::to_writer(&mut *out, n).expect("Vec write");
            }
        }
        Value::String(s) => write_str(out, s),
        Value::Array(items) => write_array(out, items, write_value),
        Value::Object(map) => write_map(out, map),
    }
}

/// A JSON array of strings.
pub fn write_str_list<S: AsRef<str>>(out: &mut Vec<u8>, items: impl IntoIterator<Item = S>) {
    write_array(out, items, |o, s| write_str(o, s.as_ref()));
}

/// A JSON array of `items`, each written by `write`.
pub fn write_array<T>(
    out: &mut Vec<u8>,
    items: impl IntoIterator<Item = T>,
    mut write: impl FnMut(&mut Vec<u8>, T),
) {
    out.push(b'[');
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write(out, item);
    }
    out.push(b']');
}

/// A JSON object from a map, as `write_value` writes it.
pub fn write_map(out: &mut Vec<u8>, map: &serde_json::Map<String, Value>) {
    out.push(b'{');
    for (i, (k, item)) in map.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, k);
        out.push(b':');
        write_value(out, item);
    }
    out.push(b'}');
}

/// A JSON string; escaped by serde_json when it has a quote, a backslash or a control byte.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    if needs_escape(s.as_bytes()) {
        serde_json::to_writer(&mut *out, s).expect("Vec write");
    } else {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    }
}

/// Writes a JSON object member by member. Keys are string literals of the code, plain ASCII
/// that needs no escaping, given in key order (both checked in debug builds): this is how the
/// analyzers and the common fields write objects straight into an event's JSON.
pub struct ObjectWriter<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
    #[cfg(debug_assertions)]
    last: &'static str,
}

impl<'a> ObjectWriter<'a> {
    pub fn new(out: &'a mut Vec<u8>) -> ObjectWriter<'a> {
        out.push(b'{');
        ObjectWriter {
            out,
            first: true,
            #[cfg(debug_assertions)]
            last: "",
        }
    }

    /// Starts a member: writes its key and returns the buffer for its value.
    pub fn key(&mut self, k: &'static str) -> &mut Vec<u8> {
        #[cfg(debug_assertions)]
        {
            assert!(!needs_escape(k.as_bytes()), "key {k:?} needs escaping");
            assert!(
                self.first || self.last < k,
                "key {k:?} after {:?}",
                self.last
            );
            self.last = k;
        }
        if !std::mem::take(&mut self.first) {
            self.out.push(b',');
        }
        self.out.push(b'"');
        self.out.extend_from_slice(k.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }

    pub fn str(&mut self, k: &'static str, v: &str) {
        write_str(self.key(k), v);
    }

    /// A string from bytes, invalid UTF-8 replaced.
    pub fn bytes(&mut self, k: &'static str, v: &[u8]) {
        write_str(self.key(k), &String::from_utf8_lossy(v));
    }

    pub fn u64(&mut self, k: &'static str, v: u64) {
        let o = self.key(k);
        o.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    }

    pub fn i64(&mut self, k: &'static str, v: i64) {
        let o = self.key(k);
        o.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    }

    pub fn bool(&mut self, k: &'static str, v: bool) {
        let o = self.key(k);
        o.extend_from_slice(if v { b"true" } else { b"false" });
    }

    pub fn strs<S: AsRef<str>>(&mut self, k: &'static str, items: impl IntoIterator<Item = S>) {
        write_str_list(self.key(k), items);
    }

    /// A nested object.
    pub fn object(&mut self, k: &'static str, f: impl FnOnce(&mut ObjectWriter)) {
        let mut inner = ObjectWriter::new(self.key(k));
        f(&mut inner);
        inner.end();
    }

    pub fn end(self) {
        self.out.push(b'}');
    }
}

/// Whether any byte is a control byte, `"` or `\`: eight bytes at a time (this runs over every
/// key and string value of every event). The tail is one more, overlapping, eight-byte word;
/// a string shorter than eight bytes is padded with a byte that needs no escaping.
fn needs_escape(b: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH != 0;
    // Bytes below 0x20 (exact for a bound <= 0x80), then bytes equal to `"` or `\`.
    let special = |v: u64| {
        v.wrapping_sub(ONES * 0x20) & !v & HIGH != 0
            || has_zero(v ^ (ONES * b'"' as u64))
            || has_zero(v ^ (ONES * b'\\' as u64))
    };
    let word = |c: &[u8]| u64::from_le_bytes(c.try_into().expect("8 bytes"));
    if b.len() < 8 {
        let mut padded = [b'a'; 8];
        padded[..b.len()].copy_from_slice(b);
        return special(u64::from_le_bytes(padded));
    }
    if b.chunks_exact(8).any(|c| special(word(c))) {
        return true;
    }
    b.len() % 8 != 0 && special(word(&b[b.len() - 8..]))
}

#[cfg(test)]
mod write_tests {
    use super::*;

    #[test]
    fn escape_check_matches_the_bytewise_one() {
        for len in [0usize, 1, 2, 7, 8, 9, 15, 16, 23] {
            for pos in 0..len {
                for b in 0u8..=255 {
                    let mut v = vec![b'a'; len];
                    v[pos] = b;
                    let want = b < 0x20 || b == b'"' || b == b'\\';
                    assert_eq!(needs_escape(&v), want, "byte {b:#x} at {pos} of {len}");
                }
            }
        }
    }

    #[test]
    fn same_bytes_as_serde_json() {
        let v = serde_json::json!({
            "a": [1, -2, 3.5, 1e300, true, false, null, "x\"y\\z\n\u{1}", "plain", "é ü 日本"],
            "b": {"c": u64::MAX, "d": i64::MIN, "e": {}, "f": []},
            "<html>": "&",
            "long plain string of more than eight bytes": "long string with a \" quote after eight",
            "long string with a \\ backslash": "long string with a \u{1f} control",
            "\u{7f}\u{80}é is not escaped, nor is ~ or DEL": "x"
        });
        let mut ours = Vec::new();
        write_value(&mut ours, &v);
        assert_eq!(
            String::from_utf8(ours).unwrap(),
            serde_json::to_string(&v).unwrap()
        );
    }
}
