//! IPv4 fragment reassembly (Packetbeat 8 reassembles IPv4 too, since beats PR #33296).
//!
//! Memory is bounded: at most `packetbeat.limits.ip_datagrams` ([`DEFAULT_MAX_DATAGRAMS`])
//! datagrams in progress, each at most 64 KiB; a datagram whose fragments stop arriving is
//! dropped after [`FRAGMENT_TIMEOUT_NS`] of packet time. Every datagram given up (timed out, past
//! 64 KiB, or the oldest when the table is full) is counted in [`Ipv4Defrag::dropped`].
//! Overlapping fragments keep the first copy of each byte.

use crate::common::Ts;
use std::collections::HashMap;
use std::net::IpAddr;

pub const DEFAULT_MAX_DATAGRAMS: usize = 1024;
pub const FRAGMENT_TIMEOUT_NS: i64 = 30_000_000_000;
const MAX_DATAGRAM: usize = 65535;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub id: u16,
    pub proto: u8,
}

#[derive(Default)]
struct Partial {
    first_seen: Ts,
    data: Vec<u8>,
    /// Received byte ranges, sorted and merged.
    ranges: Vec<(usize, usize)>,
    /// Total length, known once the last fragment (MF = 0) arrived.
    total: Option<usize>,
}

impl Partial {
    fn add_range(&mut self, start: usize, end: usize) {
        self.ranges.push((start, end));
        self.ranges.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(self.ranges.len());
        for &(s, e) in &self.ranges {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        self.ranges = merged;
    }

    fn complete(&self) -> bool {
        matches!(self.total, Some(t) if self.ranges.len() == 1 && self.ranges[0] == (0, t))
    }
}

pub struct Ipv4Defrag {
    pending: HashMap<FragKey, Partial>,
    /// The last reassembled datagram's payload.
    done: Vec<u8>,
    max_datagrams: usize,
    pub dropped: u64,
}

impl Default for Ipv4Defrag {
    fn default() -> Self {
        Ipv4Defrag::new()
    }
}

impl Ipv4Defrag {
    pub fn new() -> Ipv4Defrag {
        Ipv4Defrag {
            pending: HashMap::new(),
            done: Vec::new(),
            max_datagrams: DEFAULT_MAX_DATAGRAMS,
            dropped: 0,
        }
    }

    /// Sets `packetbeat.limits.ip_datagrams` (at least 1).
    pub fn set_max_datagrams(&mut self, n: usize) {
        self.max_datagrams = n.max(1);
    }

    /// Adds one fragment's payload. Returns the datagram's payload length when this fragment
    /// completed it; the payload is then in [`Ipv4Defrag::completed`].
    pub fn add(
        &mut self,
        ts: Ts,
        key: FragKey,
        offset: usize,
        more: bool,
        payload: &[u8],
    ) -> Option<usize> {
        let end = offset + payload.len();
        if end > MAX_DATAGRAM {
            self.dropped += 1;
            self.pending.remove(&key);
            return None;
        }
        if !self.pending.contains_key(&key) {
            self.expire(ts);
            if self.pending.len() >= self.max_datagrams {
                // Drop the oldest datagram in progress to make room.
                if let Some(oldest) = self
                    .pending
                    .iter()
                    .min_by_key(|(_, p)| p.first_seen)
                    .map(|(k, _)| *k)
                {
                    self.pending.remove(&oldest);
                    self.dropped += 1;
                }
            }
        }
        let p = self.pending.entry(key).or_insert_with(|| Partial {
            first_seen: ts,
            ..Default::default()
        });
        if p.data.len() < end {
            p.data.resize(end, 0);
        }
        // Keep the first copy of overlapping bytes: write only into gaps.
        let mut cursor = offset;
        let ranges = p.ranges.clone();
        for &(s, e) in ranges
            .iter()
            .chain(std::iter::once(&(usize::MAX, usize::MAX)))
        {
            if cursor >= end {
                break;
            }
            if e <= cursor {
                continue;
            }
            let gap_end = s.min(end);
            if gap_end > cursor {
                p.data[cursor..gap_end]
                    .copy_from_slice(&payload[cursor - offset..gap_end - offset]);
            }
            cursor = cursor.max(e);
        }
        p.add_range(offset, end);
        if !more {
            p.total = Some(end);
        }
        if p.complete() {
            let p = self.pending.remove(&key)?;
            let total = p.total?;
            self.done = p.data;
            self.done.truncate(total);
            return Some(total);
        }
        None
    }

    pub fn completed(&self, len: usize) -> &[u8] {
        &self.done[..len.min(self.done.len())]
    }

    fn expire(&mut self, now: Ts) {
        let before = self.pending.len();
        self.pending
            .retain(|_, p| now.since(p.first_seen) <= FRAGMENT_TIMEOUT_NS);
        self.dropped += (before - self.pending.len()) as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: u16) -> FragKey {
        FragKey {
            src: "10.0.0.1".parse().unwrap(),
            dst: "10.0.0.2".parse().unwrap(),
            id,
            proto: 17,
        }
    }

    #[test]
    fn a_full_table_gives_up_the_oldest_datagram_and_counts_it() {
        let mut d = Ipv4Defrag::new();
        d.set_max_datagrams(2);
        for (i, id) in [1u16, 2, 3].into_iter().enumerate() {
            assert_eq!(d.add(Ts(i as i64), key(id), 0, true, &[0; 8]), None);
        }
        assert_eq!(d.dropped, 1);
        // The oldest (1) is gone: its last fragment alone completes nothing.
        assert_eq!(d.add(Ts(3), key(1), 8, false, &[1; 8]), None);
        // 3 is still there.
        assert_eq!(d.add(Ts(4), key(3), 8, false, &[1; 8]), Some(16));
        assert_eq!(d.completed(16), [[0; 8], [1; 8]].concat());
    }

    #[test]
    fn stalled_and_oversized_datagrams_are_counted() {
        let mut d = Ipv4Defrag::new();
        d.add(Ts(0), key(1), 0, true, &[0; 8]);
        // Past the timeout, a new datagram's arrival sweeps the stalled one.
        d.add(Ts(FRAGMENT_TIMEOUT_NS + 1), key(2), 0, true, &[0; 8]);
        assert_eq!(d.dropped, 1);
        assert_eq!(d.add(Ts(FRAGMENT_TIMEOUT_NS + 2), key(2), 65_528, false, &[0; 16]), None);
        assert_eq!(d.dropped, 2);
    }
}
