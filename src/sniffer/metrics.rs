//! Each live capture's own counters, for the monitoring endpoint's `/inputs/` (one entry per
//! device, as Packetbeat registers its af_packet sniffers with libbeat's `inputmon`) and for
//! the kernel drops summed in `/stats`.
//!
//! A source registers its [`InputStats`] when it opens and keeps the only strong reference:
//! when the source is dropped (the capture ends, or `poll_default_route` moves to another
//! device) its entry disappears, as Packetbeat unregisters a closed sniffer's metrics. The
//! registry is process-wide because sources are opened in several places (the beater, the
//! several-interfaces reader, the default-route watcher) and read on their own threads; it is
//! touched only at open and when the monitoring asks, never per packet.
//!
//! Names per input type:
//! - `af_packet` (Packetbeat's): `socket_packets`, `socket_drops`, `socket_queue_freezes` (the
//!   kernel's `PACKET_STATISTICS`, read every `metrics_interval`), `packets` (read off the ring),
//!   `polls` (waits for the ring).
//! - `pcap` (Packetbeat has none for libpcap): `packets` (read), and `pcap_stats`'
//!   `kernel_packets`, `kernel_drops` and `interface_drops`, read every second.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// One capture's counters; every field is set by its source only.
#[derive(Debug)]
pub struct InputStats {
    /// `af_packet` or `pcap`.
    pub input: &'static str,
    pub device: String,
    /// `input::device`, and `#k` after it for the k-th other socket open on the same device
    /// (af_packet with several workers has one socket per worker).
    pub id: String,
    /// Frames read by this process.
    pub packets: AtomicU64,
    /// Packets the kernel saw (af_packet `tp_packets`, pcap `ps_recv`).
    pub kernel_packets: AtomicU64,
    /// Packets the kernel dropped because the buffer was full (`tp_drops`, `ps_drop`).
    pub kernel_drops: AtomicU64,
    /// Packets the interface dropped (`ps_ifdrop`).
    pub interface_drops: AtomicU64,
    /// Ring freezes (`tp_freeze_q_cnt`).
    pub queue_freezes: AtomicU64,
    /// Waits for packets (`poll`).
    pub polls: AtomicU64,
}

static REGISTRY: Mutex<Vec<Weak<InputStats>>> = Mutex::new(Vec::new());

impl InputStats {
    /// Registers a capture's counters; they are listed while the returned `Arc` lives.
    pub fn register(input: &'static str, device: &str) -> Arc<InputStats> {
        let mut r = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
        r.retain(|w| w.strong_count() > 0);
        let base = format!("{input}::{device}");
        let same = r
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|s| s.input == input && s.device == device)
            .count();
        let s = Arc::new(InputStats {
            input,
            device: device.to_string(),
            id: if same == 0 { base } else { format!("{base}#{same}") },
            packets: AtomicU64::new(0),
            kernel_packets: AtomicU64::new(0),
            kernel_drops: AtomicU64::new(0),
            interface_drops: AtomicU64::new(0),
            queue_freezes: AtomicU64::new(0),
            polls: AtomicU64::new(0),
        });
        r.push(Arc::downgrade(&s));
        s
    }

    /// Packets lost before this process saw them.
    pub fn dropped(&self) -> u64 {
        self.kernel_drops.load(Ordering::Relaxed) + self.interface_drops.load(Ordering::Relaxed)
    }

    /// The `/inputs/` entry, with the counters of its input type.
    pub fn to_json(&self) -> serde_json::Value {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut m = serde_json::Map::new();
        m.insert("id".into(), self.id.clone().into());
        m.insert("input".into(), self.input.into());
        m.insert("device".into(), self.device.clone().into());
        m.insert("packets".into(), g(&self.packets).into());
        let named: &[(&str, &AtomicU64)] = match self.input {
            "af_packet" => &[
                ("socket_packets", &self.kernel_packets),
                ("socket_drops", &self.kernel_drops),
                ("socket_queue_freezes", &self.queue_freezes),
                ("polls", &self.polls),
            ],
            _ => &[
                ("kernel_packets", &self.kernel_packets),
                ("kernel_drops", &self.kernel_drops),
                ("interface_drops", &self.interface_drops),
            ],
        };
        for (k, v) in named {
            m.insert((*k).into(), g(v).into());
        }
        serde_json::Value::Object(m)
    }
}

/// The captures open now, in the order they opened.
pub fn live_inputs() -> Vec<Arc<InputStats>> {
    REGISTRY
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter_map(Weak::upgrade)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_lives_as_long_as_its_source_holds_it() {
        let a = InputStats::register("af_packet", "test-veth-a");
        a.kernel_drops.store(3, Ordering::Relaxed);
        a.packets.store(10, Ordering::Relaxed);
        let listed = |d: &str| live_inputs().iter().any(|s| s.device == d);
        assert!(listed("test-veth-a"));
        let j = a.to_json();
        assert_eq!(j["id"], "af_packet::test-veth-a");
        assert_eq!(j["socket_drops"], 3);
        assert_eq!(j["packets"], 10);
        assert!(j.get("kernel_drops").is_none());
        let p = InputStats::register("pcap", "test-veth-b");
        p.interface_drops.store(2, Ordering::Relaxed);
        p.kernel_drops.store(1, Ordering::Relaxed);
        assert_eq!(p.dropped(), 3);
        assert_eq!(p.to_json()["interface_drops"], 2);
        let second = InputStats::register("af_packet", "test-veth-a");
        assert_eq!(second.id, "af_packet::test-veth-a#1");
        drop(a);
        drop(second);
        assert!(!listed("test-veth-a"));
        assert!(listed("test-veth-b"));
    }
}
