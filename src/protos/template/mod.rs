//! The template analyzer: the smallest complete analyzer on the app-layer framework, to copy
//! when adding one (see "Adding an analyzer" in [`crate::protos::app`]). It is compiled and
//! tested with the rest but is not in the registry: no configuration can enable it.
//!
//! The protocol it analyses is a line protocol: requests `VERB [ARGS]`, each answered in order
//! by `+TEXT` or `-TEXT` (see [`parser`]). One event per request/response pair, with
//! `send_request`/`send_response`, `transaction_timeout`, and unmatched requests and responses
//! reported as Packetbeat reports them.
//!
//! - [`config`]: the protocol's own options;
//! - [`parser`]: the pure incremental parser;
//! - [`event`]: the event;
//! - this file: the protocol's declaration and its pairing (in order, on a
//!   [`RequestQueue`]; a protocol with keyed pairing adds a `transaction.rs`).

pub mod config;
pub mod event;
pub mod parser;

#[cfg(test)]
mod tests;

use crate::common::{TcpTuple, Ts};
use crate::protos::app::{
    AppCounters, MessageAt, MessageConnection, MessageProtocol, Parsed, Protocol, RequestQueue,
    SectionError, Transports,
};
use crate::protos::{CommonOptions, TcpDirection};
use crate::publish::EventSink;
use config::TemplateConfig;
use event::{transaction_event, Seen};
use parser::Message;
use std::time::Duration;

/// The resolved settings.
#[derive(Debug, Clone)]
pub struct Template {
    pub send_request: bool,
    pub send_response: bool,
    pub transaction_timeout: Duration,
    pub max_line_length: usize,
    pub max_pending_requests: usize,
}

impl Protocol for Template {
    const NAME: &'static str = "template";
    const DEFAULT_PORTS: &'static [u16] = &[7777];
    const TRANSPORTS: Transports<Self> = Transports {
        tcp: Some(MessageConnection::<Self>::boxed),
        ..Transports::NONE
    };
    type Config = TemplateConfig;

    fn configure(common: &CommonOptions, cfg: TemplateConfig) -> Result<Self, SectionError> {
        if cfg.max_line_length == 0 {
            return Err(SectionError {
                key: "max_line_length",
                message: "max_line_length must be at least 1".into(),
            });
        }
        Ok(Template {
            send_request: common.send_request,
            send_response: common.send_response,
            transaction_timeout: common.transaction_timeout,
            max_line_length: cfg.max_line_length,
            max_pending_requests: cfg.max_pending_requests,
        })
    }
}

/// A connection's pairing: requests wait for their responses in order.
pub struct Pairing {
    requests: RequestQueue<Seen>,
}

impl Template {
    fn publish(&self, out: &mut EventSink, req: Option<&Seen>, resp: Option<&Seen>) {
        out.publish(transaction_event(self, req, resp));
    }
}

impl MessageProtocol for Template {
    type Message = Message;
    type Stream = ();
    type Conn = Pairing;

    fn new_conn(&self, _conn: &TcpTuple) -> Pairing {
        Pairing {
            requests: RequestQueue::new(self.max_pending_requests),
        }
    }

    fn parse(&self, _stream: &mut (), _dir: TcpDirection, data: &[u8]) -> Parsed<Message> {
        parser::parse(data, self.max_line_length)
    }

    fn on_message(&self, conn: &mut Pairing, out: &mut EventSink, at: &MessageAt, msg: Message) {
        let seen = Seen {
            ts: at.ts,
            tuple: at.tuple,
            size: at.size,
            msg,
        };
        for req in conn.requests.expire(at.ts, self.transaction_timeout) {
            at.counters.unmatched_request();
            self.publish(out, Some(&req), None);
        }
        match seen.msg {
            Message::Request { .. } => {
                if let Some(evicted) = conn.requests.push(at.ts, seen) {
                    at.counters.unmatched_request();
                    self.publish(out, Some(&evicted), None);
                }
            }
            Message::Response { .. } => {
                let req = conn.requests.pop();
                if req.is_none() {
                    at.counters.unmatched_response();
                }
                self.publish(out, req.as_ref(), Some(&seen));
            }
        }
    }

    fn on_end(&self, conn: &mut Pairing, out: &mut EventSink, _now: Ts, counters: &AppCounters) {
        for req in conn.requests.drain() {
            counters.unmatched_request();
            self.publish(out, Some(&req), None);
        }
    }
}
