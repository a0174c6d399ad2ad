//! The memcache transaction event (`newTransaction`, `transaction.Event` and the per-command
//! serializers of Packetbeat's `memcache.go`, `text.go`, `binary.go`): the only place its fields
//! are written.

use super::codes::{self, Type};
use super::parser::{Arg, Command, Extra, Message, TextKind};
use crate::common::{IpPortTuple, Transport, Ts};
use crate::protos::app;
use crate::publish::fields::{FieldKey, Fields};
use crate::publish::json::{write_str, ObjectWriter};
use crate::publish::Event;
use base64::Engine as _;

/// A message with when and on which packet tuple (source = sender) it was seen.
#[derive(Debug, Clone)]
pub struct Seen {
    pub ts: Ts,
    pub tuple: IpPortTuple,
    pub msg: Message,
}

const OK: &str = "OK";
const ERROR: &str = "Error";
const CLIENT_ERROR: &str = "Client Error";
const SERVER_ERROR: &str = "Server Error";

/// `computeTransactionStatus`.
fn status(req: Option<&Message>, resp: Option<&Message>) -> &'static str {
    match (req, resp) {
        (None, _) => CLIENT_ERROR,
        (Some(r), None) => {
            if r.is_quiet || r.noreply || r.command.code() == codes::Code::Quit {
                OK
            } else {
                SERVER_ERROR
            }
        }
        (Some(r), Some(p)) if r.is_binary => match p.status {
            0 => OK,
            s if s > 0x80 => SERVER_ERROR,
            _ => ERROR,
        },
        (Some(_), Some(p)) => {
            if p.command.typ() != Type::Fail {
                return OK;
            }
            use codes::Code::*;
            match p.command.code() {
                ErrClientError | ErrSame => CLIENT_ERROR,
                ErrServerError | ErrBusy | ErrBadClass | ErrNoSpare | ErrNotFull | ErrUnsafe => {
                    SERVER_ERROR
                }
                _ => ERROR,
            }
        }
    }
}

/// The event of a request and/or its response (at least one of them).
pub fn transaction_event(transport: Transport, req: Option<&Seen>, resp: Option<&Seen>) -> Event {
    let first = req.or(resp).expect("a transaction has a message");
    // The requester is the client: the sender of the request, the receiver of a response.
    let (client, server) = match req {
        Some(r) => (
            (r.tuple.src_ip, r.tuple.src_port),
            (r.tuple.dst_ip, r.tuple.dst_port),
        ),
        None => (
            (first.tuple.dst_ip, first.tuple.dst_port),
            (first.tuple.src_ip, first.tuple.src_port),
        ),
    };
    let mut notes: Vec<String> = Vec::new();
    if let Some(r) = req {
        notes.extend(r.msg.notes.iter().cloned());
    }
    if let Some(r) = resp {
        notes.extend(r.msg.notes.iter().cloned());
    }
    let mut ev = app::event::transaction_event(&app::event::Transaction {
        protocol: "memcache",
        transport,
        ts: first.ts,
        client,
        server,
        // Packetbeat's memcache sets `source.bytes` from the response size and
        // `destination.bytes` from the request size (its BytesIn / BytesOut).
        request_bytes: resp.map_or(0, |r| r.msg.size as u64),
        response_bytes: req.map_or(0, |r| r.msg.size as u64),
        start: Some(first.ts),
        end: resp.map(|r| r.ts),
        notes: &notes,
    });
    if let Some(r) = req {
        ev.set_action(r.msg.command.typ().action().to_string());
    }
    // `normalizeEventOutcome` of the status name: only "Success" has an outcome (a text
    // response's status is always 0).
    if resp.is_some_and(|r| codes::status_name(r.msg.status) == "Success") {
        ev.set_outcome("success");
    }
    let f = &mut ev.fields;
    f.put_str("type", "memcache");
    f.put_str("status", status(req.map(|r| &r.msg), resp.map(|r| &r.msg)));
    if let Some(r) = req {
        write_message(f, true, &r.msg);
    }
    if let Some(r) = resp {
        write_message(f, false, &r.msg);
    }
    f.put_str(
        "memcache.protocol_type",
        if first.msg.is_binary {
            "binary"
        } else {
            "text"
        },
    );
    ev
}

/// Every field name below `memcache.request` / `memcache.response`, so that writing one
/// allocates no key.
const KEYS: &[(&str, &str, &str)] = &[
    (
        "automove",
        "memcache.request.automove",
        "memcache.response.automove",
    ),
    ("bytes", "memcache.request.bytes", "memcache.response.bytes"),
    (
        "cas_unique",
        "memcache.request.cas_unique",
        "memcache.response.cas_unique",
    ),
    (
        "command",
        "memcache.request.command",
        "memcache.response.command",
    ),
    (
        "count_values",
        "memcache.request.count_values",
        "memcache.response.count_values",
    ),
    ("delta", "memcache.request.delta", "memcache.response.delta"),
    (
        "dest_class",
        "memcache.request.dest_class",
        "memcache.response.dest_class",
    ),
    (
        "error_msg",
        "memcache.request.error_msg",
        "memcache.response.error_msg",
    ),
    (
        "exptime",
        "memcache.request.exptime",
        "memcache.response.exptime",
    ),
    ("flags", "memcache.request.flags", "memcache.response.flags"),
    (
        "initial",
        "memcache.request.initial",
        "memcache.response.initial",
    ),
    ("keys", "memcache.request.keys", "memcache.response.keys"),
    ("line", "memcache.request.line", "memcache.response.line"),
    (
        "noreply",
        "memcache.request.noreply",
        "memcache.response.noreply",
    ),
    (
        "opaque",
        "memcache.request.opaque",
        "memcache.response.opaque",
    ),
    (
        "opcode",
        "memcache.request.opcode",
        "memcache.response.opcode",
    ),
    (
        "opcode_value",
        "memcache.request.opcode_value",
        "memcache.response.opcode_value",
    ),
    ("quiet", "memcache.request.quiet", "memcache.response.quiet"),
    (
        "raw_args",
        "memcache.request.raw_args",
        "memcache.response.raw_args",
    ),
    (
        "sleep_us",
        "memcache.request.sleep_us",
        "memcache.response.sleep_us",
    ),
    (
        "source_class",
        "memcache.request.source_class",
        "memcache.response.source_class",
    ),
    ("stats", "memcache.request.stats", "memcache.response.stats"),
    (
        "status",
        "memcache.request.status",
        "memcache.response.status",
    ),
    (
        "status_code",
        "memcache.request.status_code",
        "memcache.response.status_code",
    ),
    ("type", "memcache.request.type", "memcache.response.type"),
    ("value", "memcache.request.value", "memcache.response.value"),
    (
        "values",
        "memcache.request.values",
        "memcache.response.values",
    ),
    (
        "vbucket",
        "memcache.request.vbucket",
        "memcache.response.vbucket",
    ),
    (
        "verbosity",
        "memcache.request.verbosity",
        "memcache.response.verbosity",
    ),
    (
        "version",
        "memcache.request.version",
        "memcache.response.version",
    ),
];

/// Fields below `memcache.request` or `memcache.response`.
struct Sub<'a> {
    f: &'a mut Fields,
    request: bool,
}

impl Sub<'_> {
    fn key(&self, k: &str) -> FieldKey {
        match KEYS.iter().find(|(name, ..)| *name == k) {
            Some((_, req, resp)) => FieldKey::Static(if self.request { req } else { resp }),
            None => {
                let prefix = if self.request {
                    "memcache.request"
                } else {
                    "memcache.response"
                };
                FieldKey::Owned(format!("{prefix}.{k}").into_boxed_str())
            }
        }
    }
    fn str(&mut self, k: &str, v: &str) {
        let key = self.key(k);
        self.f.put_str(key, v);
    }
    fn bytes(&mut self, k: &str, v: &[u8]) {
        let key = self.key(k);
        self.f.put_bytes(key, v);
    }
    fn u64(&mut self, k: &str, v: u64) {
        let key = self.key(k);
        self.f.put_u64(key, v);
    }
    fn i64(&mut self, k: &str, v: i64) {
        let key = self.key(k);
        self.f.put_i64(key, v);
    }
    fn bool(&mut self, k: &str, v: bool) {
        let key = self.key(k);
        self.f.put_bool(key, v);
    }
    fn keys(&mut self, keys: &Option<Vec<Vec<u8>>>) {
        let key = self.key("keys");
        match keys {
            Some(ks) => self
                .f
                .put_strs(key, ks.iter().map(|k| String::from_utf8_lossy(k))),
            None => self.f.put_with(key, |o| o.extend_from_slice(b"null")),
        }
    }
    /// Values are published base64-encoded (Go's JSON encoding of `[]byte`).
    fn values(&mut self, values: &[Vec<u8>]) {
        let key = self.key("values");
        let b64 = base64::engine::general_purpose::STANDARD;
        self.f.put_strs(key, values.iter().map(|v| b64.encode(v)));
    }
    fn stats(&mut self, stats: &[(Vec<u8>, Vec<u8>)]) {
        let key = self.key("stats");
        self.f.put_with(key, |o| {
            o.push(b'[');
            for (i, (name, value)) in stats.iter().enumerate() {
                if i > 0 {
                    o.push(b',');
                }
                let mut w = ObjectWriter::new(o);
                w.bytes("name", name);
                w.bytes("value", value);
                w.end();
            }
            o.push(b']');
        });
    }
}

fn write_message(f: &mut Fields, request: bool, m: &Message) {
    let mut s = Sub { f, request };
    match m.command {
        Command::Text(def) => write_text(&mut s, def, m),
        Command::Binary(def) => {
            s.str("command", def.code.name());
            s.str("type", def.typ.name());
            s.str("opcode", codes::opcode_name(m.opcode));
            s.u64("opcode_value", u64::from(m.opcode));
            s.u64("opaque", u64::from(m.opaque));
            if m.keys.is_some() {
                s.keys(&m.keys);
            }
            if let Some(cas) = m.cas_unique {
                s.u64("cas_unique", cas);
            }
            if m.count_values > 0 {
                s.u64("count_values", u64::from(m.count_values));
                if !m.values.is_empty() {
                    s.values(&m.values);
                }
                s.u64("bytes", m.bytes + m.bytes_lost);
            }
            if let Some(v) = &m.version {
                s.bytes("version", v);
            }
            let extras = if m.is_request {
                s.bool("quiet", m.is_quiet);
                s.u64("vbucket", u64::from(m.vbucket));
                def.request
            } else {
                s.str("status", codes::status_name(m.status));
                s.u64("status_code", u64::from(m.status));
                if def.typ == Type::Counter {
                    s.u64("value", m.value);
                }
                def.response
            };
            for e in extras {
                match *e {
                    Extra::Flags => s.u64("flags", u64::from(m.flags)),
                    Extra::ExpTime => s.u64("exptime", u64::from(m.exptime)),
                    Extra::Value(n) | Extra::Value32(n) => s.u64(n, m.value),
                    Extra::Value2(n) => s.u64(n, m.value2),
                    Extra::Stats => s.stats(&m.stats),
                }
            }
        }
    }
}

fn write_text(s: &mut Sub, def: &super::parser::TextDef, m: &Message) {
    match def.kind {
        TextKind::Unknown => {
            s.bytes("line", &m.command_line);
            s.str("command", codes::Code::Unknown.name());
            s.str("type", Type::Unknown.name());
            return;
        }
        TextKind::CounterResponse => {
            s.str("command", def.code.name());
            s.str("type", def.typ.name());
            s.u64("value", m.value);
            return;
        }
        _ => {}
    }
    s.str("command", def.code.name());
    s.str("type", def.typ.name());
    match def.kind {
        TextKind::DataRequest => {
            s.u64("count_values", u64::from(m.count_values));
            if m.count_values != 0 {
                if let Some(d) = &m.data {
                    let key = s.key("values");
                    let b64 = base64::engine::general_purpose::STANDARD.encode(d);
                    s.f.put_with(key, |o| write_str(o, &b64));
                }
            }
        }
        TextKind::DataResponse => {
            s.u64("count_values", u64::from(m.count_values));
            if m.count_values != 0 && !m.values.is_empty() {
                s.values(&m.values);
            }
        }
        _ => {}
    }
    for &(arg, _) in def.args {
        match arg {
            Arg::Key | Arg::MultiKeys => s.keys(&m.keys),
            Arg::Flags => s.u64("flags", u64::from(m.flags)),
            Arg::ExpTime => s.u64("exptime", u64::from(m.exptime)),
            Arg::Bytes => s.u64("bytes", m.bytes),
            Arg::CasUnique => s.u64("cas_unique", m.cas_unique.unwrap_or(0)),
            Arg::Automove => {
                let v = match m.value {
                    0 => "standby".to_string(),
                    1 => "slow".to_string(),
                    2 => "aggressive".to_string(),
                    v => v.to_string(),
                };
                s.str("automove", &v);
            }
            Arg::Raw => s.bytes("raw_args", &m.raw_args),
            Arg::Stat => s.stats(&m.stats),
            Arg::Value(n) => s.u64(n, m.value),
            Arg::IValue(n) => s.i64(n, m.ivalue),
            Arg::IValue2(n) => s.i64(n, m.ivalue2),
            Arg::NoReply => s.bool("noreply", m.noreply),
            Arg::ErrorMessage => s.bytes("error_msg", &m.error_msg),
        }
    }
}
