//! Pairing calls with replies as Packetbeat's `receivedRequest`, `receivedReply` and
//! `ReceivedFin` do: a connection has at most one call waiting. A reply answers it when it
//! names the same method (else it is ignored); a second call publishes the first without a
//! reply ("assuming the old one is oneway"), and so does the end of the connection by FIN.
//! A call that waits longer than `transaction_timeout`, or whose connection expires or loses
//! bytes, is dropped and counted: Packetbeat's transaction cache drops it silently.

use super::event::{transaction_event, Reply, Request};
use super::Thrift;
use crate::common::Ts;
use crate::protos::app::AppCounters;
use crate::publish::EventSink;

/// The call of a connection waiting for its reply.
#[derive(Debug, Default)]
pub struct Pairing {
    pending: Option<Request>,
}

impl Pairing {
    pub fn pending(&self) -> Option<&Request> {
        self.pending.as_ref()
    }

    /// The waiting call, unless its timeout passed by `now` (then it is dropped and counted).
    fn take_live(&mut self, cfg: &Thrift, now: Ts, counters: &AppCounters) -> Option<Request> {
        let req = self.pending.take()?;
        if now > req.ts.add(cfg.transaction_timeout) {
            counters.unmatched_request();
            return None;
        }
        Some(req)
    }

    pub fn request(&mut self, cfg: &Thrift, out: &mut EventSink, req: Request, c: &AppCounters) {
        if let Some(old) = self.take_live(cfg, req.ts, c) {
            tracing::debug!("thrift: two requests without reply, assuming the old one is oneway");
            c.unmatched_request();
            out.publish(transaction_event(cfg, &old, None));
        }
        self.pending = Some(req);
    }

    pub fn reply(&mut self, cfg: &Thrift, out: &mut EventSink, reply: Reply, c: &AppCounters) {
        match self.take_live(cfg, reply.ts, c) {
            None => {
                tracing::debug!("thrift: response from unknown transaction, ignoring");
                c.unmatched_response();
            }
            Some(req) if req.method != reply.method => {
                tracing::debug!(
                    "thrift: response to '{}' while '{}' waits, ignoring",
                    reply.method,
                    req.method
                );
                c.unmatched_response();
                self.pending = Some(req);
            }
            Some(req) => out.publish(transaction_event(cfg, &req, Some(&reply))),
        }
    }

    /// A FIN: the waiting call is published without a reply.
    pub fn fin(&mut self, cfg: &Thrift, out: &mut EventSink, now: Ts, c: &AppCounters) {
        if let Some(req) = self.take_live(cfg, now, c) {
            c.unmatched_request();
            out.publish(transaction_event(cfg, &req, None));
        }
    }

    /// The connection's state is gone: the waiting call is counted, not published.
    pub fn end(&mut self, c: &AppCounters) {
        if self.pending.take().is_some() {
            c.unmatched_request();
        }
    }
}
