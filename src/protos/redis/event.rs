//! The Redis transaction event (`newTransaction` in Packetbeat's `redis.go`): the only place
//! its fields are written.

use super::Redis;
use crate::common::{IpPortTuple, Transport, Ts};
use crate::protos::app;
use crate::publish::Event;

/// A message as the analyzer keeps it: when and how it was seen, and its text.
#[derive(Debug, Clone)]
pub struct Seen {
    pub ts: Ts,
    pub tuple: IpPortTuple,
    pub size: usize,
    pub is_error: bool,
    /// The request's command line (`set key3 me`) or the reply's text.
    pub text: Vec<u8>,
    /// A request's command, as sent (upper-cased in the event), and its first argument.
    pub method: Vec<u8>,
    pub resource: Vec<u8>,
}

/// A request with its response: Packetbeat publishes only complete pairs.
pub fn transaction_event(cfg: &Redis, req: &Seen, resp: &Seen) -> Event {
    let t = &req.tuple;
    let mut ev = app::event::transaction_event(&app::event::Transaction {
        protocol: "redis",
        transport: Transport::Tcp,
        ts: req.ts,
        client: (t.src_ip, t.src_port),
        server: (t.dst_ip, t.dst_port),
        request_bytes: req.size as u64,
        response_bytes: resp.size as u64,
        start: Some(req.ts),
        end: Some(resp.ts),
        notes: &[],
    });
    // Packetbeat sets `event.action` to the command and `event.outcome` on an error reply.
    let mut action = b"redis.".to_vec();
    action.extend(req.method.to_ascii_lowercase());
    ev.set_action(String::from_utf8_lossy(&action).into_owned());
    if resp.is_error {
        ev.set_outcome("failure");
    }
    // Put in key order, so the codec writes them without sorting.
    let f = &mut ev.fields;
    f.put_bytes("method", &req.method.to_ascii_uppercase());
    f.put_bytes("query", &req.text);
    if resp.is_error {
        f.put_bytes("redis.error", &resp.text);
    } else {
        f.put_bytes("redis.return_value", &resp.text);
    }
    if cfg.send_request {
        f.put_bytes("request", &req.text);
    }
    f.put_bytes("resource", &req.resource);
    if cfg.send_response {
        f.put_bytes("response", &resp.text);
    }
    f.put_str("status", if resp.is_error { "Error" } else { "OK" });
    f.put_str("type", "redis");
    ev
}
