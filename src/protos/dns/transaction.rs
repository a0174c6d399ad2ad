//! Pairing queries with responses (`receivedDNSRequest`, `receivedDNSResponse`,
//! `expireTransaction` in `dns.go`).
//!
//! A transaction is keyed by the query's addresses, ports and DNS id (the transport is implied:
//! UDP and TCP analyzers keep separate tables), on the framework's [`TransactionTable`].
//! Packetbeat keeps them in a cache whose entries expire `transaction_timeout` after the query;
//! here expiry runs on packet time, so a replayed capture always gives the same events. Expired queries are published with the note
//! "No response to this query was received".

use super::errors;
use super::parser::Message;
use crate::common::{IpPortTuple, Ts};
use crate::protos::app::{Found, TransactionTable};
use std::net::IpAddr;
use std::time::Duration;

/// Packetbeat's `maxDNSPacketSize`: only EDNS messages may be larger over UDP.
pub const MAX_DNS_PACKET_SIZE: usize = 512;

/// One decoded message and where and when it was seen.
#[derive(Debug, Clone)]
pub struct DnsMessage {
    pub ts: Ts,
    pub tuple: IpPortTuple,
    pub data: Message,
    /// Message size as Packetbeat counts it: the UDP payload, or the TCP length prefix + 2.
    pub length: usize,
}

#[derive(Debug, Clone)]
pub struct Transaction {
    /// `@timestamp`: the first message's time.
    pub ts: Ts,
    /// Client (querier) and server.
    pub src: (IpAddr, u16),
    pub dst: (IpAddr, u16),
    pub notes: Vec<String>,
    pub request: Option<DnsMessage>,
    pub response: Option<DnsMessage>,
}

impl Transaction {
    fn new(ts: Ts, tuple: &IpPortTuple) -> Transaction {
        Transaction {
            ts,
            src: (tuple.src_ip, tuple.src_port),
            dst: (tuple.dst_ip, tuple.dst_port),
            notes: Vec::new(),
            request: None,
            response: None,
        }
    }
}

/// Key of a transaction: the query's tuple (querier first) and the DNS id.
pub type Key = (IpPortTuple, u16);

/// Open transactions of one analyzer (one worker's UDP side, or one TCP connection).
pub struct Transactions {
    table: TransactionTable<Key, Transaction>,
    /// UDP: apply the EDNS size checks.
    udp: bool,
}

impl Transactions {
    pub fn new(timeout: Duration, udp: bool) -> Transactions {
        Transactions {
            table: TransactionTable::new(timeout),
            udp,
        }
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// A query. Returns the transactions to publish now (a previous query with the same key).
    pub fn request(&mut self, msg: DnsMessage) -> Vec<Transaction> {
        let key = (msg.tuple, msg.data.id);
        let mut t = Transaction::new(msg.ts, &msg.tuple);
        if self.udp && msg.data.edns().is_some() && msg.length > MAX_DNS_PACKET_SIZE {
            // Packetbeat's check, kept as it is (it flags large EDNS queries).
            t.notes.push(errors::udp_packet_too_large());
        }
        let ts = msg.ts;
        t.request = Some(msg);
        match self.table.insert(key, ts, t) {
            // Expired before this query came (lazily: the periodic tick had not run yet).
            Found::Expired(mut old) => {
                old.notes.push(errors::NO_RESPONSE.to_string());
                vec![old]
            }
            // A client put several queries with the same id in flight.
            Found::Live(mut old) => {
                old.notes.push(errors::DUPLICATE_QUERY.to_string());
                vec![old]
            }
            Found::Missing => Vec::new(),
        }
    }

    /// A response: its transaction, preceded by the query it would have answered when that query
    /// had already timed out, in which case the response is an orphan, as in Packetbeat. The
    /// result is always published.
    pub fn response(&mut self, msg: DnsMessage) -> Vec<Transaction> {
        let key = (msg.tuple.reversed(), msg.data.id);
        let mut out = Vec::new();
        let found = match self.table.take_at(&key, msg.ts) {
            Found::Expired(mut t) => {
                t.notes.push(errors::NO_RESPONSE.to_string());
                out.push(t);
                None
            }
            Found::Live(t) => Some(t),
            Found::Missing => None,
        };
        let mut t = found.unwrap_or_else(|| {
            let mut t = Transaction::new(msg.ts, &msg.tuple.reversed());
            t.notes.push(errors::ORPHANED_RESPONSE.to_string());
            t
        });
        if self.udp {
            udp_size_notes(&mut t, &msg);
        }
        t.response = Some(msg);
        out.push(t);
        out
    }

    /// Removes the transaction of `key` (TCP: a response that failed to decode).
    pub fn take(&mut self, key: &Key) -> Option<Transaction> {
        self.table.take(key)
    }

    /// Queries whose timeout passed by `now`, oldest first, with the no-response note.
    pub fn expire(&mut self, now: Ts) -> Vec<Transaction> {
        unanswered(self.table.expire(now))
    }

    /// Every open query, as on expiry (end of capture, connection gone).
    pub fn expire_all(&mut self) -> Vec<Transaction> {
        unanswered(self.table.drain())
    }
}

/// The EDNS and size checks Packetbeat applies to a UDP response.
fn udp_size_notes(t: &mut Transaction, resp: &DnsMessage) {
    let resp_edns = resp.data.edns().is_some();
    if !resp_edns && resp.length > MAX_DNS_PACKET_SIZE {
        t.notes
            .push(errors::response(&errors::udp_packet_too_large()));
    }
    if let Some(req) = &t.request {
        let req_edns = req.data.edns().is_some();
        if req_edns && !resp_edns {
            t.notes.push(errors::RESP_EDNS_NO_SUPPORT.to_string());
        } else if !req_edns && resp_edns {
            t.notes.push(errors::RESP_EDNS_UNEXPECTED.to_string());
        }
    }
}

fn unanswered(mut ts: Vec<Transaction>) -> Vec<Transaction> {
    for t in &mut ts {
        t.notes.push(errors::NO_RESPONSE.to_string());
    }
    ts
}
