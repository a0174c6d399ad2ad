//! The part of an event every request/response analyzer writes the same way: Packetbeat's
//! `pb.NewBeatEvent` with `SetSource`/`SetDestination`, the byte counts of each side, the
//! transport and protocol, the transaction's start and end, and its notes as `error.message`.
//! The analyzer's `event.rs` adds its own fields to the returned event.

use crate::common::{Transport, Ts};
use crate::publish::{Endpoint, Event};
use std::net::IpAddr;

/// Who talked to whom in a transaction, how much, and when.
#[derive(Debug, Clone)]
pub struct Transaction<'a> {
    /// `network.protocol` and `event.dataset`.
    pub protocol: &'static str,
    pub transport: Transport,
    /// `@timestamp`: the first message's time.
    pub ts: Ts,
    /// The requester (`source`) and the responder (`destination`).
    pub client: (IpAddr, u16),
    pub server: (IpAddr, u16),
    pub request_bytes: u64,
    pub response_bytes: u64,
    /// `event.start` (the request) and `event.end` (the response); `event.duration` follows.
    pub start: Option<Ts>,
    pub end: Option<Ts>,
    /// `error.message`.
    pub notes: &'a [String],
}

/// The event with those fields set.
pub fn transaction_event(t: &Transaction) -> Event {
    let mut ev = Event::new(t.ts);
    let pb = ev.pb();
    let mut source = Endpoint::new(t.client.0, t.client.1);
    source.bytes = t.request_bytes;
    let mut destination = Endpoint::new(t.server.0, t.server.1);
    destination.bytes = t.response_bytes;
    pb.set_source(source);
    pb.set_destination(destination);
    pb.network.transport = Some(t.transport);
    pb.network.protocol = t.protocol;
    pb.event.start = t.start;
    pb.event.end = t.end;
    pb.error_messages = t.notes.to_vec();
    ev
}
