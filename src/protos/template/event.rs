//! The template protocol's event: the only place its fields are written.

use super::parser::Message;
use super::Template;
use crate::common::{IpPortTuple, Transport, Ts};
use crate::publish::event::ip_string;
use crate::publish::json::ObjectWriter;
use crate::publish::{Endpoint, Event};

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
    let first = req.or(resp).expect("a transaction has a request or a response");
    // The client is the request's sender (or the response's receiver).
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
    let mut ev = Event::new(first.ts);
    let ok = matches!(resp.map(|r| &r.msg), Some(Message::Response { ok: true, .. }));
    let f = &mut ev.fields;
    if let Some(Seen { msg: Message::Request { verb, args }, .. }) = req {
        f.put_str("method", verb);
        f.put_str("query", format!("{verb} {args}").trim_end());
        if cfg.send_request {
            f.put_str("request", &format!("{verb} {args}"));
        }
    }
    if let Some(Seen { msg: Message::Response { text, .. }, .. }) = resp {
        if cfg.send_response {
            f.put_str("response", text);
        }
    }
    f.put_str("status", if ok { "OK" } else { "Error" });
    f.put_with("template", |o| {
        let mut w = ObjectWriter::new(o);
        if let Some(Seen { msg: Message::Response { text, .. }, .. }) = resp {
            w.str("result", text);
        }
        w.end();
    });
    f.put_str("type", "template");

    let pb = ev.pb();
    let mut source = Endpoint::new(client.0, client.1);
    let mut destination = Endpoint::new(server.0, server.1);
    source.bytes = req.map_or(0, |r| r.size as u64);
    destination.bytes = resp.map_or(0, |r| r.size as u64);
    pb.add_ip(&ip_string(&source.ip));
    pb.add_ip(&ip_string(&destination.ip));
    pb.set_source(source);
    pb.set_destination(destination);
    pb.network.transport = Some(Transport::Tcp);
    pb.network.protocol = "template";
    pb.event.start = req.map(|r| r.ts);
    pb.event.end = resp.map(|r| r.ts);
    match (req, resp) {
        (Some(_), None) => pb.error_messages.push(NO_RESPONSE.to_string()),
        (None, Some(_)) => pb.error_messages.push(NO_REQUEST.to_string()),
        _ => {}
    }
    ev
}
