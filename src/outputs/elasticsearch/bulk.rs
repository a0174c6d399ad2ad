//! The `_bulk` wire format, as libbeat's Elasticsearch client writes and reads it: one action
//! line and one document line per event (NDJSON), and the per-item results of the response.
//!
//! The document is the event as the JSON codec wrote it without its `@metadata` (libbeat's
//! encoder writes `@timestamp` and the fields only); the metadata's `index`/`raw_index`,
//! `pipeline`, `_id` and `op_type` steer the action line instead.

use crate::publish::json::write_str;
use serde_json::Value;

/// The byte range of the `"@metadata":{…}` member (with its leading comma) in an event the
/// compact JSON codec wrote (`{"@timestamp":"…","@metadata":{…},…}`).
pub fn metadata_span(event: &[u8]) -> Option<std::ops::Range<usize>> {
    const KEY: &[u8] = b",\"@metadata\":{";
    let head = &event[..event.len().min(64)];
    let start = head.windows(KEY.len()).position(|w| w == KEY)?;
    let obj = start + KEY.len() - 1;
    let end = skip_object(event, obj)?;
    Some(start..end)
}

/// The end (exclusive) of the JSON object starting at `at`.
fn skip_object(b: &[u8], at: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = at;
    let mut in_str = false;
    while i < b.len() {
        let c = b[i];
        if in_str {
            match c {
                b'\\' => i += 1,
                b'"' => in_str = false,
                _ => {}
            }
        } else {
            match c {
                b'"' => in_str = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth = depth.checked_sub(1)?;
                    if depth == 0 {
                        return Some(i + 1);
                    }
                }
                _ => {}
            }
        }
        i += 1;
    }
    None
}

/// How an event is written: `create` (the default, and what data streams require) or `index`
/// (`@metadata.op_type: index`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpType {
    Create,
    Index,
}

/// Appends one bulk item: the action line and the document line (`doc` without `@metadata`,
/// given as the encoded event and the metadata span to leave out).
pub fn write_item(
    out: &mut Vec<u8>,
    op: OpType,
    index: &str,
    pipeline: Option<&str>,
    id: Option<&str>,
    event: &[u8],
    meta: Option<std::ops::Range<usize>>,
) {
    out.extend_from_slice(match op {
        OpType::Create => b"{\"create\":{\"_index\":",
        OpType::Index => b"{\"index\":{\"_index\":",
    });
    write_str(out, index);
    if let Some(p) = pipeline {
        out.extend_from_slice(b",\"pipeline\":");
        write_str(out, p);
    }
    if let Some(id) = id {
        out.extend_from_slice(b",\"_id\":");
        write_str(out, id);
    }
    out.extend_from_slice(b"}}\n");
    match meta {
        Some(r) => {
            out.extend_from_slice(&event[..r.start]);
            out.extend_from_slice(&event[r.end..]);
        }
        None => out.extend_from_slice(event),
    }
    out.push(b'\n');
}

/// The document line of an item written by [`write_item`] (the line after the action).
pub fn item_document(item: &[u8]) -> &[u8] {
    let start = item.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1);
    let end = if item.ends_with(b"\n") {
        item.len() - 1
    } else {
        item.len()
    };
    &item[start.min(end)..end]
}

/// libbeat's dead letter document: the original document as a string in `message`, with the
/// status and reason of the rejection.
pub fn dead_letter_item(out: &mut Vec<u8>, index: &str, doc: &[u8], status: u16, reason: &str) {
    let ts = serde_json::from_slice::<Value>(doc)
        .ok()
        .and_then(|v| v.get("@timestamp").cloned())
        .unwrap_or(Value::Null);
    let body = serde_json::json!({
        "@timestamp": ts,
        "message": String::from_utf8_lossy(doc),
        "error": {"type": status, "message": reason},
    });
    out.extend_from_slice(b"{\"create\":{\"_index\":");
    write_str(out, index);
    out.extend_from_slice(b"}}\n");
    serde_json::to_writer(&mut *out, &body).expect("JSON values serialise");
    out.push(b'\n');
}

/// One item of a bulk response.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemResult {
    pub status: u16,
    /// `type: reason` of the item's error.
    pub error: Option<String>,
}

/// What is done with one item, as libbeat's `applyItemStatus` decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Indexed,
    /// 409 on `create`: the document exists already.
    Duplicate,
    /// 429 or 5xx: send again.
    Retry,
    /// Any other 4xx: the event cannot be indexed (the non-indexable policy applies).
    Rejected,
}

impl ItemResult {
    pub fn outcome(&self) -> Outcome {
        match self.status {
            s if s < 300 => Outcome::Indexed,
            409 => Outcome::Duplicate,
            429 => Outcome::Retry,
            s if s < 500 => Outcome::Rejected,
            _ => Outcome::Retry,
        }
    }
}

/// The query `_bulk` is sent with: only what the item results need (libbeat's
/// `filter_path`).
pub const FILTER_PATH: &str = "filter_path=errors,items.*.error,items.*.status";

/// Reads the per-item results of a `_bulk` response for `n` items. With `errors: false` every
/// item is taken as indexed.
pub fn parse_response(body: &[u8], n: usize) -> Result<Vec<ItemResult>, String> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("failed to parse bulk response: {e}"))?;
    if v.get("errors").and_then(Value::as_bool) == Some(false) {
        return Ok(vec![
            ItemResult {
                status: 201,
                error: None
            };
            n
        ]);
    }
    let items = v
        .get("items")
        .and_then(Value::as_array)
        .ok_or("failed to parse bulk response: no items")?;
    if items.len() != n {
        return Err(format!(
            "bulk response has {} items for {n} requests",
            items.len()
        ));
    }
    items
        .iter()
        .map(|it| {
            let inner = it
                .as_object()
                .and_then(|o| o.values().next())
                .ok_or("failed to parse bulk response: item without an action")?;
            let status = inner
                .get("status")
                .and_then(Value::as_u64)
                .ok_or("failed to parse bulk response: item without a status")?
                as u16;
            let error = inner.get("error").map(|e| match e {
                Value::Object(o) => {
                    let ty = o.get("type").and_then(Value::as_str).unwrap_or("error");
                    let reason = o.get("reason").and_then(Value::as_str).unwrap_or("");
                    let mut s = format!("{ty}: {reason}");
                    if let Some(c) = o.get("caused_by") {
                        let cty = c.get("type").and_then(Value::as_str).unwrap_or("");
                        let cr = c.get("reason").and_then(Value::as_str).unwrap_or("");
                        s.push_str(&format!(" (caused by {cty}: {cr})"));
                    }
                    s
                }
                other => other.to_string(),
            });
            Ok(ItemResult { status, error })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_leave_metadata_out() {
        let ev = br#"{"@timestamp":"2015-02-18T00:13:06.123Z","@metadata":{"beat":"packetbeat","x":{"s":"}{\""}},"a":{"b":1}}"#;
        let span = metadata_span(ev).unwrap();
        let mut out = Vec::new();
        write_item(
            &mut out,
            OpType::Create,
            "pb-1",
            Some("p"),
            None,
            ev,
            Some(span),
        );
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "{\"create\":{\"_index\":\"pb-1\",\"pipeline\":\"p\"}}\n{\"@timestamp\":\"2015-02-18T00:13:06.123Z\",\"a\":{\"b\":1}}\n"
        );
        assert_eq!(
            item_document(&out),
            br#"{"@timestamp":"2015-02-18T00:13:06.123Z","a":{"b":1}}"#
        );
        assert!(metadata_span(br#"{"a":1}"#).is_none());
        let mut dl = Vec::new();
        dead_letter_item(&mut dl, "dl", item_document(&out), 400, "bad");
        let s = String::from_utf8(dl).unwrap();
        assert!(s.starts_with("{\"create\":{\"_index\":\"dl\"}}\n"), "{s}");
        let doc: Value = serde_json::from_str(s.lines().nth(1).unwrap()).unwrap();
        assert_eq!(doc["@timestamp"], "2015-02-18T00:13:06.123Z");
        assert_eq!(doc["error"]["type"], 400);
        assert!(doc["message"].as_str().unwrap().contains("\"b\":1"));
    }

    #[test]
    fn responses() {
        let r = parse_response(br#"{"errors":false,"items":[]}"#, 3).unwrap();
        assert_eq!(r.len(), 3);
        assert!(r.iter().all(|i| i.outcome() == Outcome::Indexed));
        let body = br#"{"errors":true,"items":[{"create":{"status":201}},{"create":{"status":429,"error":{"type":"es_rejected_execution_exception","reason":"busy"}}},{"create":{"status":400,"error":{"type":"document_parsing_exception","reason":"bad","caused_by":{"type":"illegal_argument_exception","reason":"x"}}}},{"create":{"status":409}},{"create":{"status":503}}]}"#;
        let r = parse_response(body, 5).unwrap();
        let o: Vec<_> = r.iter().map(|i| i.outcome()).collect();
        assert_eq!(
            o,
            [
                Outcome::Indexed,
                Outcome::Retry,
                Outcome::Rejected,
                Outcome::Duplicate,
                Outcome::Retry
            ]
        );
        assert_eq!(
            r[2].error.as_deref(),
            Some("document_parsing_exception: bad (caused by illegal_argument_exception: x)")
        );
        assert!(parse_response(body, 4).is_err());
        assert!(parse_response(b"<html>", 1).is_err());
    }
}
