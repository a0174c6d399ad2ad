//! Pairing requests with responses on packet time.
//!
//! - [`TransactionTable`]: open transactions by key (DNS id, ICMP id/seq, a stream id, an RPC
//!   xid), each expiring `transaction_timeout` after it opened. Expiry is lazy: a lookup checks
//!   the entry it finds ([`TransactionTable::take_at`]), and the periodic tick publishes the rest
//!   ([`TransactionTable::expire`]); a watermark lets that tick return at once while nothing can
//!   have expired, so neither costs a scan per packet.
//! - [`RequestQueue`]: requests answered in the order they were sent (one per connection:
//!   MySQL, PostgreSQL, Redis, the template analyzer).
//!
//! Both run on the capture's timestamps, so a replay gives the same events whatever its speed.
//!
//! Both are bounded. A table holds at most `packetbeat.limits.transactions` entries (this
//! build's option, default [`DEFAULT_MAX_TRANSACTIONS`]; a flood of queries that are never
//! answered, each with its own id, would otherwise grow it until the timeout): past it the oldest
//! leaves early, returned by the next [`TransactionTable::expire`] as if it had expired, and
//! counted ([`evicted`]).

use crate::common::Ts;
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// Default `packetbeat.limits.transactions`: open transactions per table.
pub const DEFAULT_MAX_TRANSACTIONS: usize = 65_536;

static MAX_TRANSACTIONS: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_TRANSACTIONS);
static EVICTED: AtomicU64 = AtomicU64::new(0);

/// Sets `packetbeat.limits.transactions` for the tables made from now on (at start).
pub fn set_max_transactions(n: usize) {
    MAX_TRANSACTIONS.store(n.max(1), Ordering::Relaxed);
}

/// Transactions that left a full table early, in this process.
pub fn evicted() -> u64 {
    EVICTED.load(Ordering::Relaxed)
}

struct Entry<V> {
    value: V,
    /// When the transaction opened: expired ones come out oldest first.
    ts: Ts,
    expires: Ts,
    /// Insertion order, to order transactions opened at the same instant.
    seq: u64,
}

/// What a lookup found.
#[derive(Debug, PartialEq, Eq)]
pub enum Found<V> {
    /// Open, within its timeout.
    Live(V),
    /// Still in the table but past its timeout at the lookup's time (the tick had not run yet):
    /// it is reported as expired, and the message that looked it up finds nothing.
    Expired(V),
    Missing,
}

/// Open transactions of one analyzer instance, by key.
pub struct TransactionTable<K, V> {
    map: FxHashMap<K, Entry<V>>,
    timeout: Duration,
    seq: u64,
    /// No entry expires before this.
    next_expiry: Option<Ts>,
    max_len: usize,
    /// Keys in insertion order with their `seq`, to find the oldest when the table is full;
    /// entries of transactions gone since are skipped.
    order: VecDeque<(K, u64)>,
    /// Transactions that left the full table early, for the next `expire`.
    evicted: Vec<V>,
}

impl<K: Hash + Eq + Copy, V> TransactionTable<K, V> {
    pub fn new(timeout: Duration) -> Self {
        TransactionTable {
            map: FxHashMap::default(),
            timeout,
            seq: 0,
            next_expiry: None,
            max_len: MAX_TRANSACTIONS.load(Ordering::Relaxed),
            order: VecDeque::new(),
            evicted: Vec::new(),
        }
    }

    /// A table of at most `max_len` transactions.
    pub fn with_max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len.max(1);
        self
    }

    /// Makes the oldest transaction leave early.
    fn evict_oldest(&mut self) {
        while let Some((k, seq)) = self.order.pop_front() {
            if self.map.get(&k).is_some_and(|e| e.seq == seq) {
                if let Some(e) = self.map.remove(&k) {
                    self.evicted.push(e.value);
                    EVICTED.fetch_add(1, Ordering::Relaxed);
                }
                return;
            }
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Opens a transaction at `ts`. A transaction already open under `key` is returned, as
    /// `Live` (a duplicate) or `Expired` (its timeout passed before `ts`).
    pub fn insert(&mut self, key: K, ts: Ts, value: V) -> Found<V> {
        let old = self.take_at(&key, ts);
        let expires = ts.add(self.timeout);
        self.seq += 1;
        self.next_expiry = Some(self.next_expiry.map_or(expires, |e| e.min(expires)));
        self.map.insert(
            key,
            Entry {
                value,
                ts,
                expires,
                seq: self.seq,
            },
        );
        self.order.push_back((key, self.seq));
        if self.map.len() > self.max_len {
            self.evict_oldest();
        }
        if self.order.len() > 2 * self.map.len() + 1024 {
            let map = &self.map;
            self.order
                .retain(|(k, seq)| map.get(k).is_some_and(|e| e.seq == *seq));
        }
        old
    }

    /// Removes the transaction of `key`, whatever its age.
    pub fn take(&mut self, key: &K) -> Option<V> {
        self.map.remove(key).map(|e| e.value)
    }

    /// Removes the transaction of `key`, telling whether it had expired by `now`.
    pub fn take_at(&mut self, key: &K, now: Ts) -> Found<V> {
        match self.map.remove(key) {
            Some(e) if now > e.expires => Found::Expired(e.value),
            Some(e) => Found::Live(e.value),
            None => Found::Missing,
        }
    }

    /// Removes the transactions whose timeout passed by `now`, oldest first.
    /// Transactions that left the full table early come first.
    pub fn expire(&mut self, now: Ts) -> Vec<V> {
        let mut out = std::mem::take(&mut self.evicted);
        match self.next_expiry {
            Some(next) if now > next => {}
            _ => return out,
        }
        let keys: Vec<K> = self
            .map
            .iter()
            .filter(|(_, e)| now > e.expires)
            .map(|(k, _)| *k)
            .collect();
        out.extend(self.remove_ordered(keys));
        self.next_expiry = self.map.values().map(|e| e.expires).min();
        out
    }

    /// Removes every transaction, oldest first (the end of a capture or of a connection).
    pub fn drain(&mut self) -> Vec<V> {
        let keys: Vec<K> = self.map.keys().copied().collect();
        self.next_expiry = None;
        self.order.clear();
        let mut out = std::mem::take(&mut self.evicted);
        out.extend(self.remove_ordered(keys));
        out
    }

    fn remove_ordered(&mut self, keys: Vec<K>) -> Vec<V> {
        let mut entries: Vec<Entry<V>> = keys.iter().filter_map(|k| self.map.remove(k)).collect();
        entries.sort_unstable_by_key(|e| (e.ts, e.seq));
        entries.into_iter().map(|e| e.value).collect()
    }
}

/// Requests of one connection waiting for their responses, which come in request order.
pub struct RequestQueue<R> {
    pending: VecDeque<(Ts, R)>,
    max_len: usize,
}

impl<R> RequestQueue<R> {
    /// At most `max_len` requests wait; more evict the oldest.
    pub fn new(max_len: usize) -> Self {
        RequestQueue {
            pending: VecDeque::new(),
            max_len: max_len.max(1),
        }
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Queues a request sent at `ts`; returns the request evicted to make room, if any.
    pub fn push(&mut self, ts: Ts, req: R) -> Option<R> {
        let evicted = if self.pending.len() >= self.max_len {
            self.pending.pop_front().map(|(_, r)| r)
        } else {
            None
        };
        self.pending.push_back((ts, req));
        evicted
    }

    /// The oldest waiting request: the one a response answers.
    pub fn pop(&mut self) -> Option<R> {
        self.pending.pop_front().map(|(_, r)| r)
    }

    /// Requests sent more than `timeout` before `now`, oldest first.
    pub fn expire(&mut self, now: Ts, timeout: Duration) -> Vec<R> {
        let mut out = Vec::new();
        while let Some((ts, _)) = self.pending.front() {
            if now <= ts.add(timeout) {
                break;
            }
            out.extend(self.pending.pop_front().map(|(_, r)| r));
        }
        out
    }

    /// Every waiting request, oldest first.
    pub fn drain(&mut self) -> Vec<R> {
        self.pending.drain(..).map(|(_, r)| r).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(ms: i64) -> Ts {
        Ts(ms * 1_000_000)
    }

    #[test]
    fn a_full_table_lets_its_oldest_go_early() {
        let mut t: TransactionTable<u32, u32> =
            TransactionTable::new(Duration::from_secs(10)).with_max_len(3);
        let ts = |s: i64| Ts(s * 1_000_000_000);
        for k in 0..3 {
            t.insert(k, ts(0), k);
        }
        assert_eq!(t.take(&1), Some(1));
        t.insert(3, ts(1), 3);
        assert_eq!(t.len(), 3);
        let before = evicted();
        // A fourth while full: the oldest still open (0) leaves.
        t.insert(4, ts(1), 4);
        assert_eq!(t.len(), 3);
        assert!(evicted() > before);
        assert_eq!(t.expire(ts(1)), vec![0]);
        assert_eq!(t.take(&0), None);
        // A flood of new keys keeps the table at its bound and the queue short.
        for k in 10..10_000 {
            t.insert(k, ts(2), k);
        }
        assert_eq!(t.len(), 3);
        assert!(t.order.len() <= 2 * 3 + 1024 + 1);
        assert_eq!(t.expire(ts(2)).len(), 10_000 - 10 + 2 - 3 + 1);
    }

    #[test]
    fn table_expires_lazily_and_in_order() {
        let mut t: TransactionTable<u16, &str> = TransactionTable::new(Duration::from_secs(1));
        assert_eq!(t.insert(2, ts(10), "b"), Found::Missing);
        assert_eq!(t.insert(1, ts(10), "a"), Found::Missing);
        assert_eq!(t.insert(3, ts(500), "c"), Found::Missing);
        // Nothing can have expired yet: no scan, nothing out.
        assert!(t.expire(ts(1000)).is_empty());
        // Same instant: insertion order.
        assert_eq!(t.expire(ts(1011)), vec!["b", "a"]);
        assert_eq!(t.len(), 1);
        assert_eq!(t.take_at(&3, ts(1501)), Found::Expired("c"));
        assert_eq!(t.insert(4, ts(0), "d"), Found::Missing);
        assert_eq!(t.insert(4, ts(10), "e"), Found::Live("d"));
        assert_eq!(t.insert(4, ts(2000), "f"), Found::Expired("e"));
        assert_eq!(t.take(&4), Some("f"));
        assert!(t.is_empty());
    }

    #[test]
    fn table_drains_oldest_first() {
        let mut t: TransactionTable<u16, u16> = TransactionTable::new(Duration::from_secs(1));
        for (k, at) in [(1, 30), (2, 10), (3, 20)] {
            t.insert(k, ts(at), k);
        }
        assert_eq!(t.drain(), vec![2, 3, 1]);
        assert!(t.expire(ts(10_000)).is_empty());
    }

    #[test]
    fn queue_pairs_in_order_and_is_bounded() {
        let mut q = RequestQueue::new(2);
        assert_eq!(q.push(ts(0), "a"), None);
        assert_eq!(q.push(ts(5), "b"), None);
        assert_eq!(q.push(ts(6), "c"), Some("a"));
        assert_eq!(q.pop(), Some("b"));
        q.push(ts(2000), "d");
        assert_eq!(q.expire(ts(1007), Duration::from_secs(1)), vec!["c"]);
        assert_eq!(q.drain(), vec!["d"]);
        assert!(q.is_empty());
    }
}
