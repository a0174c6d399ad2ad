//! The NFS analyzer (Packetbeat's `protos/nfs`): NFS calls over ONC RPC on TCP.
//!
//! - [`parser`]: record marking and the RPC call and reply; [`xdr`]: the XDR reader;
//! - [`names`]: Packetbeat's names of procedures, operations and status codes;
//! - [`event`]: the published event;
//! - this file: pairing.
//!
//! What Packetbeat does, and so this analyzer does: each RPC call to the NFS program (100003)
//! is paired with the accepted reply of the same xid from the server, and published as one
//! event: `rpc.xid`, `rpc.auth_flavor` and AUTH_UNIX credentials (`rpc.cred.*`, `user.id`,
//! `group.id`, the machine name as `source.domain`), `rpc.status`, `nfs.version`, the NFSv3
//! procedure or the NFSv4 COMPOUND's tag, minor version and main operation as `nfs.opcode`
//! (and `event.action` `nfs.<opcode>`), and the reply's `nfs.status`. The byte counts are the
//! RPC messages' (record marks excluded). Calls to other programs and denied replies are not
//! reported. A call still unanswered `transaction_timeout` (1 minute) after it was sent is
//! published with `status` `NO_REPLY`; replies with no call are counted and dropped.
//!
//! Where Packetbeat goes wrong, this analyzer does not (no shared capture shows either):
//! - A record of several fragments (RFC 5531 §11) is reassembled; Packetbeat stops parsing the
//!   direction at the first one ("multifragment rpc message") until its 10 MiB cap drops it.
//! - A message too short for what is read from it, or a reply with an accept status RFC 5531
//!   does not define, is counted as a parse error and skipped on its own (its record marks
//!   frame it); Packetbeat's reader panics, and the recovery drops the rest of the segment.
//! - Timeouts run on packet time, per connection, so a replay gives the same events whatever
//!   its speed; calls still within their timeout when the capture ends are counted as
//!   unmatched and not published (Packetbeat's wall-clock expiry never fires for them either).

pub mod config;
pub mod event;
pub mod names;
pub mod parser;
pub mod xdr;

#[cfg(test)]
mod tests;

use crate::common::{TcpTuple, Ts};
use crate::protos::app::{
    AppCounters, Found, MessageAt, MessageConnection, MessageProtocol, Parsed, Protocol,
    SectionError, TransactionTable, Transports,
};
use crate::protos::{CommonOptions, TcpDirection};
use crate::publish::EventSink;
use config::NfsConfig;
use event::{nfs_event, Answer, Pending};
use parser::Message;
use std::time::Duration;

/// The resolved settings.
#[derive(Debug, Clone)]
pub struct Nfs {
    pub ports: Vec<u16>,
    pub transaction_timeout: Duration,
}

impl Protocol for Nfs {
    const NAME: &'static str = "nfs";
    const DEFAULT_PORTS: &'static [u16] = &[2049];
    const DEFAULT_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(60);
    const TRANSPORTS: Transports<Self> = Transports {
        tcp: Some(MessageConnection::<Self>::boxed),
        ..Transports::NONE
    };
    type Config = NfsConfig;

    fn configure(common: &CommonOptions, _cfg: NfsConfig) -> Result<Self, SectionError> {
        Ok(Nfs {
            ports: common.ports.clone(),
            transaction_timeout: common.transaction_timeout,
        })
    }
}

/// A framed message as the parser hands it over: what it says, or why it could not be read,
/// and how many bytes it had.
#[derive(Debug, PartialEq, Eq)]
pub struct Rpc {
    pub msg: Result<Message, parser::Error>,
    /// Bytes of the RPC message, without its record marks.
    pub size: usize,
}

/// The calls of one connection waiting for their replies, by xid.
pub struct Calls {
    open: TransactionTable<u32, Pending>,
}

impl Nfs {
    /// Publishes the calls whose timeout passed by `now`.
    fn expire(&self, conn: &mut Calls, out: &mut EventSink, now: Ts, counters: &AppCounters) {
        for req in conn.open.expire(now) {
            self.publish_unanswered(req, out, counters);
        }
    }

    fn publish_unanswered(&self, req: Pending, out: &mut EventSink, counters: &AppCounters) {
        counters.unmatched_request();
        out.publish(nfs_event(&req, None));
    }
}

impl MessageProtocol for Nfs {
    type Message = Rpc;
    type Stream = ();
    type Conn = Calls;

    fn new_conn(&self, _conn: &TcpTuple) -> Calls {
        Calls {
            open: TransactionTable::new(self.transaction_timeout),
        }
    }

    fn parse(&self, _st: &mut (), _dir: TcpDirection, data: &[u8]) -> Parsed<Rpc> {
        let Some(rec) = parser::record(data) else {
            return Parsed::Incomplete;
        };
        // A message that does not read is still framed: it is counted on its own.
        Parsed::Message {
            msg: Rpc {
                msg: parser::message(&rec.body),
                size: rec.body.len(),
            },
            consumed: rec.consumed,
        }
    }

    fn on_message(&self, conn: &mut Calls, out: &mut EventSink, at: &MessageAt, rpc: Rpc) {
        self.expire(conn, out, at.ts, at.counters);
        let msg = match rpc.msg {
            Ok(msg) => msg,
            Err(e) => {
                // The record marks frame the next message: only this one is lost.
                tracing::debug!("nfs: {}, skipping the record", e.as_str());
                at.counters.parse_error();
                return;
            }
        };
        match msg {
            Message::Ignored => {}
            Message::Call(call) => {
                let req = Pending {
                    ts: at.ts,
                    tuple: at.tuple,
                    size: rpc.size,
                    call,
                };
                match conn.open.insert(req.call.xid, at.ts, req) {
                    // A retransmitted call replaces the first; that one is not reported.
                    Found::Live(_) => tracing::debug!("nfs: call retransmitted"),
                    Found::Expired(old) => self.publish_unanswered(old, out, at.counters),
                    Found::Missing => {}
                }
            }
            Message::Reply(reply) => {
                if names::accept_status(reply.accept_status).is_none() {
                    tracing::debug!(
                        "nfs: reply with unknown accept status {}",
                        reply.accept_status
                    );
                    at.counters.parse_error();
                    return;
                }
                match conn.open.take_at(&reply.xid, at.ts) {
                    Found::Live(req) => {
                        let answer = Answer {
                            ts: at.ts,
                            size: rpc.size,
                            reply: &reply,
                        };
                        out.publish(nfs_event(&req, Some(&answer)));
                    }
                    Found::Expired(req) => {
                        self.publish_unanswered(req, out, at.counters);
                        at.counters.unmatched_response();
                    }
                    Found::Missing => {
                        tracing::debug!("nfs: reply to an unknown call, ignoring");
                        at.counters.unmatched_response();
                    }
                }
            }
        }
    }

    fn on_gap(
        &self,
        _conn: &mut Calls,
        _out: &mut EventSink,
        _dir: TcpDirection,
        _nbytes: usize,
        _ts: Ts,
    ) -> bool {
        // Packetbeat keeps its calls across a gap (they are not tied to the stream); only the
        // direction's buffered bytes are lost.
        false
    }

    fn on_end(&self, conn: &mut Calls, out: &mut EventSink, now: Ts, counters: &AppCounters) {
        self.expire(conn, out, now, counters);
        for _ in conn.open.drain() {
            counters.unmatched_request();
        }
    }
}
