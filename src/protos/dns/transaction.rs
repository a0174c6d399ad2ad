//! Pairing queries with responses (`receivedDNSRequest`, `receivedDNSResponse`,
//! `expireTransaction` in `dns.go`).
//!
//! A transaction is keyed by the query's addresses, ports and DNS id (the transport is implied:
//! UDP and TCP analyzers keep separate tables). Packetbeat keeps them in a cache whose entries
//! expire `transaction_timeout` after the query; here expiry runs on packet time, so a replayed
//! capture always gives the same events. Expired queries are published with the note
//! "No response to this query was received".

use super::errors;
use super::parser::Message;
use crate::common::{IpPortTuple, Ts};
use rustc_hash::FxHashMap;
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

struct Entry {
    trans: Transaction,
    expires: Ts,
    seq: u64,
}

/// Open transactions of one analyzer (one worker's UDP side, or one TCP connection).
pub struct Transactions {
    map: FxHashMap<Key, Entry>,
    timeout: Duration,
    seq: u64,
    /// UDP: apply the EDNS size checks.
    udp: bool,
}

impl Transactions {
    pub fn new(timeout: Duration, udp: bool) -> Transactions {
        Transactions {
            map: FxHashMap::default(),
            timeout,
            seq: 0,
            udp,
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// A query. Returns the transactions to publish now (a previous query with the same key).
    pub fn request(&mut self, msg: DnsMessage) -> Vec<Transaction> {
        let key = (msg.tuple, msg.data.id);
        let mut out = Vec::new();
        if let Some(old) = self.map.remove(&key) {
            let mut t = old.trans;
            if msg.ts > old.expires {
                // Expired before this query came (lazily: the periodic tick had not run yet).
                t.notes.push(errors::NO_RESPONSE.to_string());
            } else {
                // A client put several queries with the same id in flight.
                t.notes.push(errors::DUPLICATE_QUERY.to_string());
            }
            out.push(t);
        }
        let mut t = Transaction::new(msg.ts, &msg.tuple);
        if self.udp && msg.data.edns().is_some() && msg.length > MAX_DNS_PACKET_SIZE {
            // Packetbeat's check, kept as it is (it flags large EDNS queries).
            t.notes.push(errors::udp_packet_too_large());
        }
        let expires = msg.ts.add(self.timeout);
        t.request = Some(msg);
        self.seq += 1;
        self.map.insert(
            key,
            Entry {
                trans: t,
                expires,
                seq: self.seq,
            },
        );
        out
    }

    /// A response: completes its query's transaction, or makes an orphan one. The result is
    /// always published.
    /// A response: its transaction, preceded by the query it would have answered when that query
    /// had already timed out (expiry is lazy: a lookup checks the entry it finds, the periodic
    /// tick publishes the rest), in which case the response is an orphan, as in Packetbeat.
    pub fn response(&mut self, msg: DnsMessage) -> Vec<Transaction> {
        let key = (msg.tuple.reversed(), msg.data.id);
        let mut out = Vec::new();
        let found = match self.map.remove(&key) {
            Some(e) if msg.ts > e.expires => {
                let mut t = e.trans;
                t.notes.push(errors::NO_RESPONSE.to_string());
                out.push(t);
                None
            }
            Some(e) => Some(e.trans),
            None => None,
        };
        let mut t = found.unwrap_or_else(|| {
            let mut t = Transaction::new(msg.ts, &msg.tuple.reversed());
            t.notes.push(errors::ORPHANED_RESPONSE.to_string());
            t
        });
        if self.udp {
            let resp_edns = msg.data.edns().is_some();
            if !resp_edns && msg.length > MAX_DNS_PACKET_SIZE {
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
        t.response = Some(msg);
        out.push(t);
        out
    }

    /// Removes the transaction of `key` (TCP: a response that failed to decode).
    pub fn take(&mut self, key: &Key) -> Option<Transaction> {
        self.map.remove(key).map(|e| e.trans)
    }

    /// Queries whose timeout passed by `now`, oldest first, with the no-response note.
    pub fn expire(&mut self, now: Ts) -> Vec<Transaction> {
        let keys: Vec<Key> = self
            .map
            .iter()
            .filter(|(_, e)| now > e.expires)
            .map(|(k, _)| *k)
            .collect();
        self.drain_keys(keys)
    }

    /// Every open query, as on expiry (end of capture, connection gone).
    pub fn expire_all(&mut self) -> Vec<Transaction> {
        let keys: Vec<Key> = self.map.keys().copied().collect();
        self.drain_keys(keys)
    }

    fn drain_keys(&mut self, keys: Vec<Key>) -> Vec<Transaction> {
        let mut entries: Vec<Entry> = keys.iter().filter_map(|k| self.map.remove(k)).collect();
        entries.sort_by_key(|e| (e.trans.ts, e.seq));
        entries
            .into_iter()
            .map(|e| {
                let mut t = e.trans;
                t.notes.push(errors::NO_RESPONSE.to_string());
                t
            })
            .collect()
    }
}
