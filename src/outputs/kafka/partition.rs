//! Which partition an event goes to: libbeat's `random`, `round_robin` and `hash` partitioners
//! (`libbeat/outputs/kafka/partition.go`).

use super::config::Partitioner;
use crate::publish::event::MapExt;
use rand::Rng;

/// A partitioner's running state (the round-robin position, the current group).
pub struct Partitioning {
    kind: Partitioner,
    /// Events sent to `current` in the current group.
    count: usize,
    current: u32,
}

/// FNV-1a, 32 bits (Go's `hash/fnv` `New32a`), as libbeat hashes keys and fields.
pub fn fnv1a(parts: &[&[u8]]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for p in parts {
        for &b in *p {
            h ^= b as u32;
            h = h.wrapping_mul(0x0100_0193);
        }
    }
    h
}

/// libbeat's `hash2Partition`: the hash made positive, modulo the partitions.
pub fn hash_to_partition(hash: u32, partitions: u32) -> u32 {
    ((hash as i32) & 0x7fff_ffff) as u32 % partitions
}

impl Partitioning {
    pub fn new(kind: Partitioner) -> Partitioning {
        let group = match &kind {
            Partitioner::Random { group_events } | Partitioner::RoundRobin { group_events } => {
                *group_events
            }
            Partitioner::Hash { .. } => 1,
        };
        Partitioning {
            kind,
            count: group,
            current: rand::random::<u32>() & 0x7fff_ffff,
        }
    }

    /// True when the partitioner reads event fields (the event is then parsed to find them).
    pub fn needs_fields(&self) -> bool {
        matches!(&self.kind, Partitioner::Hash { fields, .. } if !fields.is_empty())
    }

    /// The partition (index into `0..partitions`) for an event with `key` whose JSON is
    /// `event` (parsed only when [`needs_fields`](Self::needs_fields)). `None`: the event is
    /// dropped (a hash field is missing and `random: false`).
    pub fn pick(&mut self, key: Option<&[u8]>, event: &[u8], partitions: u32) -> Option<u32> {
        let partitions = partitions.max(1);
        match &self.kind {
            Partitioner::Random { group_events } => {
                if self.count >= *group_events {
                    self.count = 0;
                    self.current = rand::thread_rng().gen_range(0..partitions);
                }
                self.count += 1;
                Some(self.current % partitions)
            }
            Partitioner::RoundRobin { group_events } => {
                if self.count >= *group_events {
                    self.count = 0;
                    self.current = self.current.wrapping_add(1);
                    if self.current >= partitions {
                        self.current = 0;
                    }
                }
                self.count += 1;
                Some(self.current % partitions)
            }
            Partitioner::Hash { fields, random } if !fields.is_empty() => {
                match hash_fields(event, fields) {
                    Some(h) => Some(hash_to_partition(h, partitions)),
                    None if *random => Some(rand::thread_rng().gen_range(0..partitions)),
                    None => None,
                }
            }
            Partitioner::Hash { .. } => Some(match key {
                Some(k) => hash_to_partition(fnv1a(&[k]), partitions),
                None => rand::thread_rng().gen_range(0..partitions),
            }),
        }
    }
}

/// FNV-1a over the values of `fields` in the event: strings as their bytes, integers as 8
/// little-endian bytes, other numbers and booleans as their JSON text. `None` when a field is
/// missing (or the event is not JSON).
fn hash_fields(event: &[u8], fields: &[String]) -> Option<u32> {
    let v: serde_json::Value = serde_json::from_slice(event).ok()?;
    let map = v.as_object()?;
    let mut h: u32 = 0x811c_9dc5;
    let mut feed = |bytes: &[u8]| {
        for &b in bytes {
            h ^= b as u32;
            h = h.wrapping_mul(0x0100_0193);
        }
    };
    for f in fields {
        match map.get_path(f)? {
            serde_json::Value::String(s) => feed(s.as_bytes()),
            serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => feed(&i.to_le_bytes()),
                (None, Some(u)) => feed(&u.to_le_bytes()),
                _ => feed(n.to_string().as_bytes()),
            },
            other => feed(other.to_string().as_bytes()),
        }
    }
    Some(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_go() {
        // Go: fnv.New32a().Write([]byte("hello")).Sum32() == 0x4f9f2cab
        assert_eq!(fnv1a(&[b"hello"]), 0x4f9f_2cab);
        assert_eq!(fnv1a(&[b""]), 0x811c_9dc5);
        assert_eq!(hash_to_partition(0x8000_0005, 3), 2);
    }

    #[test]
    fn round_robin_groups_and_wraps() {
        let mut p = Partitioning::new(Partitioner::RoundRobin { group_events: 2 });
        let got: Vec<u32> = (0..8).map(|_| p.pick(None, b"{}", 3).unwrap()).collect();
        for pair in got.chunks(2) {
            assert_eq!(pair[0], pair[1], "{got:?}");
        }
        for w in got.chunks(2).collect::<Vec<_>>().windows(2) {
            assert_eq!((w[0][0] + 1) % 3, w[1][0], "{got:?}");
        }
    }

    #[test]
    fn hash_by_key_and_fields() {
        let mut p = Partitioning::new(Partitioner::Hash {
            fields: vec![],
            random: true,
        });
        let a = p.pick(Some(b"k1"), b"{}", 7).unwrap();
        assert_eq!(a, hash_to_partition(fnv1a(&[b"k1"]), 7));
        let mut p = Partitioning::new(Partitioner::Hash {
            fields: vec!["source.ip".into()],
            random: false,
        });
        let e1 = br#"{"source":{"ip":"10.0.0.1"},"x":1}"#;
        let e2 = br#"{"source":{"ip":"10.0.0.1"},"x":2}"#;
        assert_eq!(p.pick(None, e1, 5), p.pick(None, e2, 5));
        assert_eq!(
            p.pick(None, e1, 5).unwrap(),
            hash_to_partition(fnv1a(&[b"10.0.0.1"]), 5)
        );
        assert_eq!(p.pick(None, br#"{"y":1}"#, 5), None);
    }
}
