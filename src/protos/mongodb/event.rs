//! The MongoDB transaction event (`publishTransaction` in Packetbeat's `mongodb.go`): the only
//! place its fields are written.

use super::bson::{self, Doc};
use super::parser::{Fields, Message, OP_MSG};
use super::Mongodb;
use crate::common::{IpPortTuple, Transport, Ts};
use crate::protos::app;
use crate::publish::Event;
use std::borrow::Cow;

/// A message as the analyzer keeps it until it is paired.
#[derive(Debug, Clone)]
pub struct Seen {
    pub ts: Ts,
    /// The packet's addresses (source = sender).
    pub tuple: IpPortTuple,
    pub msg: Message,
}

/// `copyMapWithoutKey`.
fn without<'a>(params: &Doc, key: &[u8]) -> Cow<'a, Doc> {
    let mut d = params.clone();
    d.remove(key);
    Cow::Owned(d)
}

/// `reconstructQuery`: `resource.method(params)`. With a query's parameters, the short form
/// (`query`) writes those of an insert, update or findandmodify only, without the data they
/// carry, and the full form (`request`) writes them all; an OP_MSG request has none, and both
/// forms write its first document instead. Where nothing is written Go marshals a nil map:
/// `null`, as the reference events show. Packetbeat 8 writes no `.skip()`/`.limit()`: its
/// numbers are int32s, which its `int` type assertion never matches.
pub fn reconstruct_query(req: &Message, full: bool) -> Vec<u8> {
    let mut q = req.resource.clone();
    q.push(b'.');
    q.extend_from_slice(req.method.as_bytes());
    q.push(b'(');
    let shown: Option<Cow<Doc>> = match req.params.as_ref().filter(|p| !p.is_empty()) {
        Some(p) if full => Some(Cow::Borrowed(p)),
        Some(p) => match req.method.as_str() {
            "insert" => Some(without(p, b"documents")),
            "update" => Some(without(p, b"updates")),
            "findandmodify" => Some(without(p, b"update")),
            _ => None,
        },
        None if req.op_code == OP_MSG => req.documents.first().map(Cow::Borrowed),
        None => None,
    };
    match shown {
        None => q.extend_from_slice(b"null"),
        // A value Go cannot marshal (NaN): Packetbeat leaves the parameters out.
        Some(d) => {
            if let Some(s) = bson::doc_to_json(&d) {
                q.extend_from_slice(s.as_bytes());
            }
        }
    }
    q.push(b')');
    q
}

/// The reply's documents as `response`: one JSON line each, at most `max_docs` (then
/// `[...]`), each cut to `max_doc_length` bytes (then ` ...`).
pub fn response_text(cfg: &Mongodb, docs: &[Doc]) -> Vec<u8> {
    let mut lines: Vec<Vec<u8>> = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        if cfg.max_docs > 0 && i >= cfg.max_docs {
            lines.push(b"[...]".to_vec());
            break;
        }
        // A document Go cannot marshal is logged and left out.
        let Some(s) = bson::doc_to_json(doc) else {
            tracing::warn!("mongodb: failed to JSON marshal document from Mongo");
            continue;
        };
        let mut s = s.into_bytes();
        if cfg.max_doc_length > 0 && s.len() > cfg.max_doc_length {
            s.truncate(cfg.max_doc_length);
            s.extend_from_slice(b" ...");
        }
        lines.push(s);
    }
    lines.join(&b'\n')
}

fn put_fields(f: &mut crate::publish::Fields, m: &Fields) {
    if let Some(v) = &m.full_collection_name {
        f.put_bytes("mongodb.fullCollectionName", v);
    }
    let ints = [
        ("mongodb.numberToSkip", m.number_to_skip.map(i64::from)),
        ("mongodb.numberToReturn", m.number_to_return.map(i64::from)),
        ("mongodb.cursorId", m.cursor_id),
        ("mongodb.startingFrom", m.starting_from.map(i64::from)),
        ("mongodb.numberReturned", m.number_returned.map(i64::from)),
    ];
    for (k, v) in ints {
        if let Some(v) = v {
            f.put_i64(k, v);
        }
    }
    for (k, v) in [
        ("mongodb.selector", &m.selector),
        ("mongodb.update", &m.update),
        ("mongodb.returnFieldsSelector", &m.return_fields_selector),
    ] {
        if let Some(v) = v {
            f.put_str(k, v);
        }
    }
    if let Some(v) = &m.message {
        f.put_bytes("mongodb.message", v);
    }
}

/// A request with its response (`None` for the operations that get none).
pub fn transaction_event(cfg: &Mongodb, req: &Seen, resp: Option<&Seen>) -> Event {
    let t = &req.tuple;
    let mut ev = app::event::transaction_event(&app::event::Transaction {
        protocol: "mongodb",
        transport: Transport::Tcp,
        ts: req.ts,
        client: (t.src_ip, t.src_port),
        server: (t.dst_ip, t.dst_port),
        request_bytes: req.msg.length as u64,
        response_bytes: resp.map_or(0, |r| r.msg.length as u64),
        start: Some(req.ts),
        end: resp.map(|r| r.ts),
        notes: &[],
    });
    let mut fields = req.msg.fields.clone();
    if let Some(r) = resp {
        fields.merge(&r.msg.fields);
    }
    let error = resp.and_then(|r| r.msg.error.as_deref());
    let f = &mut ev.fields;
    f.put_str("type", "mongodb");
    put_fields(f, &fields);
    match error {
        None => f.put_str("status", "OK"),
        Some(e) => {
            f.put_str("mongodb.error", e);
            f.put_str("status", "Error");
        }
    }
    f.put_str("method", &req.msg.method);
    f.put_bytes("resource", &req.msg.resource);
    f.put_bytes("query", &reconstruct_query(&req.msg, false));
    if cfg.send_request {
        f.put_bytes("request", &reconstruct_query(&req.msg, true));
    }
    if cfg.send_response {
        if let Some(r) = resp.filter(|r| !r.msg.documents.is_empty()) {
            f.put_bytes("response", &response_text(cfg, &r.msg.documents));
        }
    }
    ev
}
