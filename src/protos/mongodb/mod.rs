//! The MongoDB analyzer (Packetbeat's `protos/mongodb`).
//!
//! Each direction is a stream of wire-protocol messages ([`parser`]): OP_REPLY answers;
//! OP_QUERY, OP_GET_MORE and OP_MSG wait for their answer; OP_UPDATE, OP_INSERT, OP_DELETE,
//! OP_KILL_CURSORS and the legacy OP_MSG (1000) get none and are published at once, alone. An
//! OP_MSG with a positive `responseTo` answers the message it names (OP_MSG has no reply
//! opcode); its `query` and `request` show the request's first document. Answers pair with
//! requests by `responseTo` = `requestID` within the connection, whichever comes first: a reply
//! seen before its request waits for it, as a request waits for its reply, each for
//! `transaction_timeout`; what is still unpaired then, or when the connection ends, is counted
//! and not published, as Packetbeat drops it. A second request with the same id replaces the
//! first (counted).
//!
//! Documents are decoded as Go's BSON library decodes them into maps and written as Go's JSON
//! encoder writes those ([`bson`]): `query` (`resource.method(params)`), `request`
//! (`send_request`), `response` (`send_response`, at most `max_docs` documents of at most
//! `max_doc_length` bytes each) and `mongodb.error` (a reply's `$err` or `writeErrors`) are
//! byte for byte Packetbeat's. A message with an unknown opcode, or one that does not decode,
//! drops that direction's stream (counted); parsing restarts with the next segment.

pub mod bson;
pub mod config;
pub mod event;
pub mod parser;

#[cfg(test)]
mod tests;

use crate::common::{TcpTuple, Ts};
use crate::protos::app::{
    AppCounters, Found, MessageAt, MessageConnection, MessageProtocol, Parsed, Protocol,
    SectionError, TransactionTable, Transports,
};
use crate::protos::{CommonOptions, TcpDirection};
use crate::publish::EventSink;
use config::MongodbConfig;
use event::{transaction_event, Seen};
use parser::Message;
use std::time::Duration;

/// The resolved settings.
#[derive(Debug, Clone)]
pub struct Mongodb {
    pub send_request: bool,
    pub send_response: bool,
    pub transaction_timeout: Duration,
    /// 0: no limit (Packetbeat's "0 or less").
    pub max_docs: usize,
    pub max_doc_length: usize,
}

impl Protocol for Mongodb {
    const NAME: &'static str = "mongodb";
    const DEFAULT_PORTS: &'static [u16] = &[27017];
    const TRANSPORTS: Transports<Self> = Transports {
        tcp: Some(MessageConnection::<Self>::boxed),
        ..Transports::NONE
    };
    type Config = MongodbConfig;

    fn configure(common: &CommonOptions, cfg: MongodbConfig) -> Result<Self, SectionError> {
        let limit = |v: i64| usize::try_from(v).unwrap_or(0);
        Ok(Mongodb {
            send_request: common.send_request,
            send_response: common.send_response,
            transaction_timeout: common.transaction_timeout,
            max_docs: limit(cfg.max_docs),
            max_doc_length: limit(cfg.max_doc_length),
        })
    }
}

/// A connection's messages waiting for their other half, by id (Packetbeat's `requests` and
/// `responses` caches, keyed by the connection and the id).
pub struct Pairing {
    requests: TransactionTable<i32, Seen>,
    responses: TransactionTable<i32, Seen>,
}

impl MessageProtocol for Mongodb {
    type Message = Message;
    type Stream = ();
    type Conn = Pairing;

    fn new_conn(&self, _conn: &TcpTuple) -> Pairing {
        Pairing {
            requests: TransactionTable::new(self.transaction_timeout),
            responses: TransactionTable::new(self.transaction_timeout),
        }
    }

    fn parse(&self, _stream: &mut (), _dir: TcpDirection, data: &[u8]) -> Parsed<Message> {
        parser::parse(data)
    }

    fn on_message(&self, conn: &mut Pairing, out: &mut EventSink, at: &MessageAt, msg: Message) {
        // Packetbeat's caches forget what waited longer than the timeout.
        for _ in conn.requests.expire(at.ts) {
            at.counters.unmatched_request();
        }
        for _ in conn.responses.expire(at.ts) {
            at.counters.unmatched_response();
        }
        let seen = Seen {
            ts: at.ts,
            tuple: at.tuple,
            msg,
        };
        if seen.msg.is_response {
            let id = seen.msg.response_to;
            match conn.requests.take_at(&id, at.ts) {
                Found::Live(req) => out.publish(transaction_event(self, &req, Some(&seen))),
                found => {
                    if let Found::Expired(_) = found {
                        at.counters.unmatched_request();
                    }
                    if let Found::Live(_) | Found::Expired(_) =
                        conn.responses.insert(id, at.ts, seen)
                    {
                        at.counters.unmatched_response();
                    }
                }
            }
            return;
        }
        if !parser::awaits_reply(&seen.msg) {
            out.publish(transaction_event(self, &seen, None));
            return;
        }
        let id = seen.msg.request_id;
        match conn.responses.take_at(&id, at.ts) {
            Found::Live(resp) => out.publish(transaction_event(self, &seen, Some(&resp))),
            found => {
                if let Found::Expired(_) = found {
                    at.counters.unmatched_response();
                }
                if let Found::Live(_) | Found::Expired(_) = conn.requests.insert(id, at.ts, seen) {
                    tracing::debug!("mongodb: two requests without a response, dropping the old");
                    at.counters.unmatched_request();
                }
            }
        }
    }

    fn on_end(&self, conn: &mut Pairing, _out: &mut EventSink, _now: Ts, counters: &AppCounters) {
        // Packetbeat drops what is still unpaired; it is counted, not published.
        for _ in conn.requests.drain() {
            counters.unmatched_request();
        }
        for _ in conn.responses.drain() {
            counters.unmatched_response();
        }
    }
}
