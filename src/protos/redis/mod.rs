//! The Redis analyzer (Packetbeat's `protos/redis`).
//!
//! Each direction is a stream of RESP values ([`parser`]). A top-level array is a request when
//! it travels to the server port, or (when both ends use analysed ports) when its first word is
//! a command Packetbeat knows ([`commands`]); every other value is a reply. Replies answer the
//! requests in order; a reply with no request waiting is dropped and counted. Only complete
//! pairs are published, as Packetbeat does: requests still waiting when the connection ends,
//! is dropped on a gap, or is pushed out of the queue (`queue_max_bytes`,
//! `queue_max_messages`) are counted as unmatched and not reported. A value that does not
//! parse drops that direction's stream; parsing restarts with the next segment.

pub mod commands;
pub mod config;
pub mod event;
pub mod parser;

#[cfg(test)]
mod tests;

use crate::common::{TcpTuple, Ts};
use crate::protos::app::{
    AppCounters, MessageAt, MessageConnection, MessageProtocol, Parsed, Protocol, SectionError,
    Transports,
};
use crate::protos::{CommonOptions, TcpDirection};
use crate::publish::EventSink;
use config::RedisConfig;
use event::{transaction_event, Seen};
use parser::{Body, Message, StreamState};
use std::collections::VecDeque;

/// The resolved settings.
#[derive(Debug, Clone)]
pub struct Redis {
    pub ports: Vec<u16>,
    pub send_request: bool,
    pub send_response: bool,
    /// Limits of the per-connection request queue; `None`: unlimited.
    pub queue_max_bytes: Option<usize>,
    pub queue_max_messages: Option<usize>,
}

impl Protocol for Redis {
    const NAME: &'static str = "redis";
    const DEFAULT_PORTS: &'static [u16] = &[6379];
    const TRANSPORTS: Transports<Self> = Transports {
        tcp: Some(MessageConnection::<Self>::boxed),
        ..Transports::NONE
    };
    type Config = RedisConfig;

    fn configure(common: &CommonOptions, cfg: RedisConfig) -> Result<Self, SectionError> {
        let limit = |v: i64| (v > 0).then_some(v as usize);
        Ok(Redis {
            ports: common.ports.clone(),
            send_request: common.send_request,
            send_response: common.send_response,
            queue_max_bytes: limit(cfg.queue_max_bytes),
            queue_max_messages: limit(cfg.queue_max_messages),
        })
    }
}

/// Requests of one connection waiting for their replies (Packetbeat's `MessageQueue`: it
/// evicts the oldest to stay within its message count and its bytes of request text).
pub struct Pairing {
    requests: VecDeque<Seen>,
    bytes: usize,
}

impl Redis {
    /// Whether a top-level array is a request.
    fn is_request(&self, at: &MessageAt, items: &[Vec<u8>]) -> bool {
        let to_server = self.ports.contains(&at.tuple.dst_port);
        let from_server = self.ports.contains(&at.tuple.src_port);
        if to_server != from_server {
            return to_server;
        }
        commands::is_command(&items[0])
            || (items.len() > 1
                && commands::is_command(&[&items[0][..], &items[1][..]].join(&b' ')))
    }

    fn push_request(&self, conn: &mut Pairing, req: Seen, counters: &AppCounters) {
        let size = req.text.len();
        let mut evicted = 0;
        if self
            .queue_max_messages
            .is_some_and(|m| conn.requests.len() >= m)
        {
            evicted += conn.pop().is_some() as usize;
        }
        if let Some(max) = self.queue_max_bytes {
            while conn.bytes + size > max && conn.pop().is_some() {
                evicted += 1;
            }
        }
        if evicted > 0 {
            tracing::debug!("redis: {evicted} requests evicted from the queue");
            for _ in 0..evicted {
                counters.unmatched_request();
            }
        }
        conn.bytes += size;
        conn.requests.push_back(req);
    }
}

impl Pairing {
    fn pop(&mut self) -> Option<Seen> {
        let r = self.requests.pop_front()?;
        self.bytes -= r.text.len();
        Some(r)
    }
}

/// A request's method, resource and command line (Packetbeat's two-word commands such as
/// `CONFIG GET` count both words as the method).
fn request_parts(items: Vec<Vec<u8>>) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let two = items.len() > 1
        && !commands::is_command(&items[0])
        && commands::is_command(&[&items[0][..], &items[1][..]].join(&b' '));
    let (method, resource) = if two {
        (
            [&items[0][..], &items[1][..]].join(&b' '),
            items.get(2).cloned(),
        )
    } else {
        (items[0].clone(), items.get(1).cloned())
    };
    let total: usize = items.iter().map(Vec::len).sum();
    let text = if total > 1 {
        items.join(&b' ')
    } else {
        items[0].clone()
    };
    (method, resource.unwrap_or_default(), text)
}

impl MessageProtocol for Redis {
    type Message = Message;
    type Stream = StreamState;
    type Conn = Pairing;

    fn new_conn(&self, _conn: &TcpTuple) -> Pairing {
        Pairing {
            requests: VecDeque::new(),
            bytes: 0,
        }
    }

    fn parse(&self, st: &mut StreamState, _dir: TcpDirection, data: &[u8]) -> Parsed<Message> {
        parser::parse(st, data)
    }

    fn on_message(&self, conn: &mut Pairing, out: &mut EventSink, at: &MessageAt, msg: Message) {
        let mut seen = Seen {
            ts: at.ts,
            tuple: at.tuple,
            size: at.size,
            is_error: msg.is_error,
            text: Vec::new(),
            method: Vec::new(),
            resource: Vec::new(),
        };
        match msg.body {
            _ if msg.is_push => {
                // A push answers no command: pairing it would shift every later reply.
                tracing::debug!("redis: RESP3 push, not a reply");
            }
            Body::Array(items) if self.is_request(at, &items) => {
                (seen.method, seen.resource, seen.text) = request_parts(items);
                self.push_request(conn, seen, at.counters);
            }
            body => {
                seen.text = match body {
                    Body::Text(t) => t,
                    Body::Array(items) => parser::bracketed(&items),
                };
                match conn.pop() {
                    Some(req) => out.publish(transaction_event(self, &req, &seen)),
                    None => {
                        tracing::debug!("redis: response from unknown transaction, ignoring");
                        at.counters.unmatched_response();
                    }
                }
            }
        }
    }

    fn on_end(&self, conn: &mut Pairing, _out: &mut EventSink, _now: Ts, counters: &AppCounters) {
        // Packetbeat drops requests that end unanswered; they are counted, not published.
        for _ in 0..conn.requests.len() {
            counters.unmatched_request();
        }
        conn.requests.clear();
        conn.bytes = 0;
    }
}
