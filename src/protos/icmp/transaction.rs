//! Pairing ICMP requests with replies by (version, addresses, id, seq), with expiry on packet
//! time (`icmp.go`'s `processRequest`, `processResponse`, `expireTransaction`), on the
//! framework's [`TransactionTable`].

use super::parser::{self, IcmpInfo};
use crate::common::Ts;
use crate::protos::app::TransactionTable;
use std::net::IpAddr;
use std::time::Duration;

/// Notes Packetbeat adds to `error.message`.
pub const DUPLICATE_REQUEST_MSG: &str = "Another request with the same Id and Seq was received so this request was closed without receiving a response.";
pub const ORPHANED_REQUEST_MSG: &str = "Request was received without an associated response.";
pub const ORPHANED_RESPONSE_MSG: &str = "Response was received without an associated request.";

/// `icmpTuple`: the request's direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IcmpTuple {
    pub version: u8,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub id: u16,
    pub seq: u16,
}

impl IcmpTuple {
    fn reverse(&self) -> IcmpTuple {
        IcmpTuple {
            src: self.dst,
            dst: self.src,
            ..*self
        }
    }
}

/// One message of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message {
    pub ts: Ts,
    pub icmp_type: u8,
    pub code: u8,
    pub length: usize,
}

/// `icmpTransaction`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    pub ts: Ts,
    pub tuple: IcmpTuple,
    pub notes: Vec<&'static str>,
    pub request: Option<Message>,
    pub response: Option<Message>,
}

impl Transaction {
    /// `HasError`.
    pub fn has_error(&self) -> bool {
        let v = self.tuple.version;
        match (&self.request, &self.response) {
            (None, _) => true,
            (Some(req), resp) => {
                parser::is_error(v, req.icmp_type)
                    || resp.is_some_and(|r| parser::is_error(v, r.icmp_type))
                    || (resp.is_none() && parser::requires_counterpart(v, req.icmp_type))
            }
        }
    }
}

/// One worker's ICMP analyzer.
pub struct Icmp {
    pending: TransactionTable<IcmpTuple, Transaction>,
}

impl Icmp {
    pub fn new(timeout: Duration) -> Icmp {
        Icmp {
            pending: TransactionTable::new(timeout),
        }
    }

    /// Whether no request waits for its reply.
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty()
    }

    /// Processes one decoded message; returns the transactions it completes (in order).
    pub fn handle(
        &mut self,
        ts: Ts,
        src: IpAddr,
        dst: IpAddr,
        info: &IcmpInfo,
    ) -> Vec<Transaction> {
        let tuple = IcmpTuple {
            version: info.version,
            src,
            dst,
            id: info.id,
            seq: info.seq,
        };
        let msg = Message {
            ts,
            icmp_type: info.icmp_type,
            code: info.code,
            length: info.length,
        };
        let mut done = Vec::new();
        if parser::is_request(info.version, info.icmp_type) {
            if let Some(mut old) = self.pending.take(&tuple) {
                old.notes.push(DUPLICATE_REQUEST_MSG);
                done.push(old);
            }
            let t = Transaction {
                ts,
                tuple,
                notes: Vec::new(),
                request: Some(msg),
                response: None,
            };
            if parser::requires_counterpart(info.version, info.icmp_type) {
                self.pending.insert(tuple, ts, t);
            } else {
                done.push(t);
            }
        } else {
            let rev = tuple.reverse();
            let mut t = self.pending.take(&rev).unwrap_or_else(|| Transaction {
                ts,
                tuple: rev,
                notes: vec![ORPHANED_RESPONSE_MSG],
                request: None,
                response: None,
            });
            t.response = Some(msg);
            done.push(t);
        }
        done
    }

    /// Requests older than the timeout at `now` (or all of them), oldest first, each with
    /// Packetbeat's expiry note.
    pub fn expire(&mut self, now: Option<Ts>) -> Vec<Transaction> {
        let mut out = match now {
            Some(now) => self.pending.expire(now),
            None => self.pending.drain(),
        };
        for t in &mut out {
            t.notes.push(ORPHANED_REQUEST_MSG);
        }
        out
    }
}
