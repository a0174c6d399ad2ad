//! The AMQP transaction event (`publishTransaction` in Packetbeat's `amqp.go`): the only place
//! its fields are written.

use super::Amqp;
use crate::common::{Transport, Ts};
use crate::protos::app;
use crate::publish::Event;
use serde_json::{Map, Value};
use std::net::IpAddr;

/// A transaction as Packetbeat keeps it (`amqpTransaction`). Its fields carry over when a
/// message reuses the transaction still open on the connection, as in Packetbeat.
#[derive(Debug, Clone, Default)]
pub struct Transaction {
    pub ts: Ts,
    pub src: Option<(IpAddr, u16)>,
    pub dst: Option<(IpAddr, u16)>,
    pub method: &'static str,
    pub request: String,
    /// `OK` once a response answered the request.
    pub response: &'static str,
    /// A published or delivered body, cut at `max_body_length`.
    pub body: Vec<u8>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// The body reads as text (a text or JSON content type, no content encoding).
    pub to_string: bool,
    pub notes: Vec<String>,
    /// The `amqp.*` fields; `None` until a request or a content message set them.
    pub amqp: Option<Map<String, Value>>,
    pub end: Option<Ts>,
    /// When a request still waiting for its answer expires.
    pub expires: Option<Ts>,
}

impl Transaction {
    /// Packetbeat's `getReplyCode`: a close's or a return's reply code, else 0.
    pub fn reply_code(&self) -> u64 {
        reply_code(self.amqp.as_ref())
    }

    /// A connection or channel closed with an error code.
    pub fn is_close_error(&self) -> bool {
        matches!(self.method, "connection.close" | "channel.close") && self.reply_code() >= 300
    }

    fn is_error(&self) -> bool {
        matches!(self.method, "basic.return" | "basic.reject") || self.is_close_error()
    }
}

pub fn reply_code(fields: Option<&Map<String, Value>>) -> u64 {
    fields
        .and_then(|f| f.get("reply-code"))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

/// Packetbeat's `bodyToString`: the bytes in decimal, separated by spaces.
fn body_to_string(body: &[u8]) -> String {
    let mut s = String::with_capacity(body.len() * 4);
    for (i, b) in body.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(itoa::Buffer::new().format(*b));
    }
    s
}

/// A body as `request` or `response` shows it: as text or as numbers, `[...]` after a body
/// cut short.
fn body_text(t: &Transaction, size: u64) -> String {
    let mut s = if t.to_string {
        String::from_utf8_lossy(&t.body).into_owned()
    } else {
        body_to_string(&t.body)
    };
    if (t.body.len() as u64) < size {
        s.push_str(" [...]");
    }
    s
}

pub fn transaction_event(cfg: &Amqp, t: &Transaction) -> Event {
    let unspecified = (IpAddr::from([0, 0, 0, 0]), 0);
    let mut ev = app::event::transaction_event(&app::event::Transaction {
        protocol: "amqp",
        transport: Transport::Tcp,
        ts: t.ts,
        client: t.src.unwrap_or(unspecified),
        server: t.dst.unwrap_or(unspecified),
        request_bytes: t.bytes_in,
        response_bytes: t.bytes_out,
        start: Some(t.ts),
        end: t.end,
        notes: &t.notes,
    });
    let mut action = String::with_capacity(5 + t.method.len());
    action.push_str("amqp.");
    action.push_str(t.method);
    ev.set_action(action);
    let f = &mut ev.fields;
    f.put_str("type", "amqp");
    f.put_str("method", t.method);
    f.put_str("status", if t.is_error() { "Error" } else { "OK" });
    match &t.amqp {
        Some(m) if !m.is_empty() => f.put_map("amqp", m),
        Some(_) => f.put_value("amqp", &Value::Object(Map::new())),
        None => f.put_value("amqp", &Value::Null),
    }
    if let Some(user) = t.amqp.as_ref().and_then(|m| m.get("user-id")) {
        f.put_literal("user.id", user);
    }
    if cfg.send_request {
        if t.method == "basic.publish" {
            f.put_str("request", &body_text(t, t.bytes_in));
        } else {
            f.put_str("request", &t.request);
        }
    }
    if cfg.send_response {
        if matches!(t.method, "basic.deliver" | "basic.return" | "basic.get") {
            f.put_str("response", &body_text(t, t.bytes_out));
        } else {
            f.put_str("response", t.response);
        }
    }
    ev
}
