//! The template protocol's event: the only place its fields are written.

use super::parser::Message;
use super::Template;
use crate::common::{IpPortTuple, Transport, Ts};
use crate::protos::app;
use crate::publish::json::ObjectWriter;
use crate::publish::Event;

/// One side of a transaction as it was seen.
#[derive(Debug, Clone)]
pub struct Seen {
    pub ts: Ts,
    /// The packet's addresses (source = sender).
    pub tuple: IpPortTuple,
    pub size: usize,
    pub msg: Message,
}

/// Packetbeat's note for a request that got no response.
pub const NO_RESPONSE: &str = "Unmatched request";
/// Packetbeat's note for a response that answers no request.
pub const NO_REQUEST: &str = "Unmatched response";

/// A request with its response; either may be missing.
pub fn transaction_event(cfg: &Template, req: Option<&Seen>, resp: Option<&Seen>) -> Event {
    let first = req
        .or(resp)
        .expect("a transaction has a request or a response");
    // The client is the request's sender (or the response's receiver).
    let t = &first.tuple;
    let (sender, receiver) = ((t.src_ip, t.src_port), (t.dst_ip, t.dst_port));
    let (client, server) = if req.is_some() {
        (sender, receiver)
    } else {
        (receiver, sender)
    };
    let notes = match (req, resp) {
        (Some(_), None) => vec![NO_RESPONSE.to_string()],
        (None, Some(_)) => vec![NO_REQUEST.to_string()],
        _ => Vec::new(),
    };
    let mut ev = app::event::transaction_event(&app::event::Transaction {
        protocol: "template",
        transport: Transport::Tcp,
        ts: first.ts,
        client,
        server,
        request_bytes: req.map_or(0, |r| r.size as u64),
        response_bytes: resp.map_or(0, |r| r.size as u64),
        start: req.map(|r| r.ts),
        end: resp.map(|r| r.ts),
        notes: &notes,
    });
    let ok = matches!(
        resp.map(|r| &r.msg),
        Some(Message::Response { ok: true, .. })
    );
    let f = &mut ev.fields;
    if let Some(Seen {
        msg: Message::Request { verb, args },
        ..
    }) = req
    {
        f.put_str("method", verb);
        f.put_str("query", format!("{verb} {args}").trim_end());
        if cfg.send_request {
            f.put_str("request", &format!("{verb} {args}"));
        }
    }
    let result = match resp.map(|r| &r.msg) {
        Some(Message::Response { text, .. }) => Some(text),
        _ => None,
    };
    if let Some(text) = result.filter(|_| cfg.send_response) {
        f.put_str("response", text);
    }
    f.put_str("status", if ok { "OK" } else { "Error" });
    f.put_with("template", |o| {
        let mut w = ObjectWriter::new(o);
        if let Some(text) = result {
            w.str("result", text);
        }
        w.end();
    });
    f.put_str("type", "template");
    ev
}
