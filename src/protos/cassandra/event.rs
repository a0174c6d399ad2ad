//! The Cassandra transaction event (`pub.go`'s `createEvent`): the only place its fields are
//! written.

use super::codes;
use super::parser::{
    Body, Detail, ErrorBody, EventBody, Frame, Metadata, ResultBody, SchemaChange,
};
use super::Cassandra;
use crate::common::{IpPortTuple, Transport, Ts};
use crate::protos::app;
use crate::publish::json::write_str_list;
use crate::publish::{Event, Map};
use base64::Engine as _;
use serde_json::Value;

/// A frame as the analyzer keeps it: when and how it was seen.
#[derive(Debug, Clone)]
pub struct Seen {
    pub ts: Ts,
    /// The packet's addresses (source = sender).
    pub tuple: IpPortTuple,
    /// Header and body on the wire.
    pub size: usize,
    pub frame: Frame,
}

/// A response with its request, or an EVENT push (`req` is `None`).
pub fn transaction_event(cfg: &Cassandra, req: Option<&Seen>, resp: &Seen) -> Event {
    // The first message gives the time and the endpoints: for a push, the server is `source`.
    let first = req.unwrap_or(resp);
    let t = &first.tuple;
    let mut ev = app::event::transaction_event(&app::event::Transaction {
        protocol: "cassandra",
        transport: Transport::Tcp,
        ts: first.ts,
        client: (t.src_ip, t.src_port),
        server: (t.dst_ip, t.dst_port),
        request_bytes: req.map_or(0, |r| r.size as u64),
        response_bytes: resp.size as u64,
        start: req.map(|r| r.ts),
        end: Some(resp.ts),
        notes: &[],
    });
    let f = &mut ev.fields;
    f.put_str("type", "cassandra");
    let failed = resp.frame.header.op == codes::OP_ERROR;
    f.put_str("status", if failed { "Error" } else { "OK" });
    match req {
        Some(req) if cfg.send_request => {
            let mut o = Side {
                f,
                prefix: "cassandra.request",
            };
            if cfg.send_request_header {
                o.header(&req.frame);
            }
            o.body(&req.frame);
        }
        Some(_) => {}
        None => f.put_bool("cassandra.no_request", true),
    }
    if cfg.send_response {
        let mut o = Side {
            f,
            prefix: "cassandra.response",
        };
        if cfg.send_response_header {
            o.header(&resp.frame);
        }
        o.body(&resp.frame);
    }
    ev
}

/// Writes one side's fields below its prefix.
struct Side<'a> {
    f: &'a mut crate::publish::fields::Fields,
    prefix: &'static str,
}

impl Side<'_> {
    fn key(&self, leaf: &str) -> String {
        format!("{}.{leaf}", self.prefix)
    }

    fn str(&mut self, leaf: &str, v: &str) {
        let k = self.key(leaf);
        self.f.put_str(k, v);
    }

    fn int(&mut self, leaf: &str, v: i64) {
        let k = self.key(leaf);
        self.f.put_i64(k, v);
    }

    fn strs(&mut self, leaf: &str, v: &[String]) {
        let k = self.key(leaf);
        self.f.put_with(k, |o| write_str_list(o, v));
    }

    /// `frameHeader.ToMap`.
    fn header(&mut self, fr: &Frame) {
        let h = &fr.header;
        self.str("headers.version", itoa::Buffer::new().format(h.proto()));
        self.str("headers.flags", &codes::head_flags_name(h.flags));
        self.int("headers.stream", h.stream.into());
        self.str("headers.op", &codes::op_name(h.op));
        self.int("headers.length", h.length.into());
    }

    fn body(&mut self, fr: &Frame) {
        if let Some(w) = &fr.warnings {
            self.strs("warnings", w);
        }
        match &fr.body {
            Body::None | Body::Ignored | Body::Undecoded | Body::Startup { .. } => {}
            Body::Query { query } => self.str("query", query),
            Body::Error(e) => self.error(e),
            Body::Result(r) => self.result(r),
            Body::Supported(opts) => {
                if opts.is_empty() {
                    let k = self.key("supported");
                    self.f.put_with(k, |o| o.extend_from_slice(b"{}"));
                } else {
                    let mut m = Map::new();
                    for (k, v) in opts {
                        m.insert(
                            k.clone(),
                            Value::Array(v.iter().cloned().map(Value::String).collect()),
                        );
                    }
                    let prefix = self.key("supported");
                    self.f.put_map(&prefix, &m);
                }
            }
            Body::Authenticate { class } => self.str("authentication.class", class),
            Body::AuthData { data } => self.str("authentication.data", data),
            Body::Event(e) => self.event(e),
        }
    }

    fn error(&mut self, e: &ErrorBody) {
        self.int("error.code", e.code.into());
        self.str("error.msg", &e.msg);
        self.str("error.type", codes::error_type_name(e.code));
        for (name, d) in &e.details {
            let leaf = format!("error.details.{name}");
            match d {
                Detail::Str(s) => self.str(&leaf, s),
                Detail::Int(n) => self.int(&leaf, *n),
                Detail::Bool(b) => {
                    let k = self.key(&leaf);
                    self.f.put_bool(k, *b);
                }
                Detail::Strs(v) => self.strs(&leaf, v),
                // Go's JSON encoding of a byte slice.
                Detail::Bytes(b) => {
                    self.str(&leaf, &base64::engine::general_purpose::STANDARD.encode(b))
                }
            }
        }
    }

    fn result(&mut self, r: &ResultBody) {
        match r {
            ResultBody::Void => self.str("result.type", "void"),
            ResultBody::Rows { meta, num_rows } => {
                self.str("result.type", "rows");
                self.meta("result.rows.meta", meta);
                self.int("result.rows.num_rows", (*num_rows).into());
            }
            ResultBody::SetKeyspace(ks) => {
                self.str("result.type", "set_keyspace");
                self.str("result.keyspace", ks);
            }
            ResultBody::Prepared {
                id,
                req_meta,
                resp_meta,
            } => {
                self.str("result.type", "prepared");
                self.str("result.prepared.prepared_id", id);
                self.meta("result.prepared.req_meta", req_meta);
                if let Some(m) = resp_meta {
                    self.meta("result.prepared.resp_meta", m);
                }
            }
            ResultBody::SchemaChange(s) => {
                self.str("result.type", "schemaChanged");
                self.schema_change("result.schema_change", s);
            }
            ResultBody::Unknown => {
                let k = self.key("result");
                self.f.put_with(k, |o| o.extend_from_slice(b"{}"));
            }
        }
    }

    fn meta(&mut self, at: &str, m: &Metadata) {
        self.str(&format!("{at}.flags"), &codes::row_flags_name(m.flags));
        self.int(&format!("{at}.col_count"), m.col_count.into());
        if let Some(pk) = &m.pkey_columns {
            let k = self.key(&format!("{at}.pkey_columns"));
            self.f.put(k, Value::from(pk.clone()));
        }
        if let Some(p) = &m.paging_state {
            self.str(&format!("{at}.paging_state"), p);
        }
        if let Some(ks) = &m.keyspace {
            self.str(&format!("{at}.keyspace"), ks);
        }
        if let Some(t) = &m.table {
            self.str(&format!("{at}.table"), t);
        }
    }

    fn schema_change(&mut self, at: &str, s: &SchemaChange) {
        self.str(&format!("{at}.change"), &s.change);
        for (leaf, v) in [
            ("target", &s.target),
            ("keyspace", &s.keyspace),
            ("table", &s.table),
            ("object", &s.object),
            ("name", &s.name),
        ] {
            if let Some(v) = v {
                self.str(&format!("{at}.{leaf}"), v);
            }
        }
        if let Some(args) = &s.args {
            self.strs(&format!("{at}.args"), args);
        }
    }

    fn event(&mut self, e: &EventBody) {
        self.str("event.type", &e.kind);
        if let Some(c) = &e.change {
            self.str("event.change", c);
        }
        if let Some(h) = &e.host {
            self.str("event.host", h);
        }
        if let Some(p) = e.port {
            self.int("event.port", p.into());
        }
        if let Some(s) = &e.schema_change {
            self.schema_change("event.schema_change", s);
        }
    }
}
