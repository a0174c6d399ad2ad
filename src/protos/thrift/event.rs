//! The Thrift transaction event (`publishTransactions` in Packetbeat's `thrift.go`): the only
//! place its fields are written.

use super::Thrift;
use crate::common::{IpPortTuple, Transport, Ts};
use crate::protos::app;
use crate::publish::Event;

/// Packetbeat's note on a reply whose end a gap in the capture lost.
pub const PACKET_LOSS: &str = "Packet loss while capturing the response";

/// A request as it is kept until its reply.
#[derive(Debug, Clone)]
pub struct Request {
    pub ts: Ts,
    /// The packet's addresses (source = the client).
    pub tuple: IpPortTuple,
    pub size: u64,
    pub method: String,
    /// The arguments, `(1: "a", 2: 3)`.
    pub params: String,
    /// The service the IDL files declare the method in, or empty.
    pub service: String,
}

/// A reply.
#[derive(Debug, Clone)]
pub struct Reply {
    pub ts: Ts,
    pub size: u64,
    pub method: String,
    pub return_value: String,
    pub exceptions: String,
    pub has_exception: bool,
    pub notes: Vec<String>,
}

/// A request with its reply, if one came (oneway calls, and calls whose reply the connection's
/// next call or its end overtook, have none).
pub fn transaction_event(cfg: &Thrift, req: &Request, reply: Option<&Reply>) -> Event {
    let t = &req.tuple;
    let no_notes = Vec::new();
    let mut ev = app::event::transaction_event(&app::event::Transaction {
        protocol: "thrift",
        transport: Transport::Tcp,
        ts: req.ts,
        client: (t.src_ip, t.src_port),
        server: (t.dst_ip, t.dst_port),
        request_bytes: req.size,
        response_bytes: reply.map_or(0, |r| r.size),
        start: Some(req.ts),
        end: reply.map(|r| r.ts),
        notes: reply.map_or(&no_notes, |r| &r.notes),
    });
    let f = &mut ev.fields;
    f.put_str("type", "thrift");
    let failed = reply.is_some_and(|r| r.has_exception);
    f.put_str("status", if failed { "Error" } else { "OK" });
    f.put_str("method", &req.method);
    f.put_str("path", &req.service);
    let query = format!("{}{}", req.method, req.params);
    f.put_str("query", &query);
    f.put_str("thrift.params", &req.params);
    if !req.service.is_empty() {
        f.put_str("thrift.service", &req.service);
    }
    if cfg.send_request {
        f.put_str("request", &query);
    }
    if let Some(r) = reply {
        f.put_str("thrift.return_value", &r.return_value);
        if !r.exceptions.is_empty() {
            f.put_str("thrift.exceptions", &r.exceptions);
        }
        if cfg.send_response {
            if r.has_exception {
                f.put_str("response", &format!("Exceptions: {}", r.exceptions));
            } else {
                f.put_str("response", &r.return_value);
            }
        }
    }
    ev
}
