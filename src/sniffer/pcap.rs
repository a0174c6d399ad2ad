//! Live capture through libpcap (`packetbeat.interfaces.type: pcap`, also `autodetect` or empty),
//! with the `pcap` crate.
//!
//! The handle is opened as Packetbeat opens it (promiscuous, `snaplen`, `buffer_size_mb` as the
//! kernel buffer) and set non-blocking: the loop takes every packet libpcap has ready, copying
//! each into the current batch buffer (libpcap reuses its own buffer on the next read, so frames
//! cannot be handed out in place), and hands the batch out when nothing more is ready or the
//! buffer is full. With nothing ready it waits on the handle's file descriptor for at most
//! [`IDLE_TICK`]; each [`IDLE_TICK`] without packets hands out an empty batch carrying the clock,
//! so timeouts fire and a stop signal is noticed. The read timeout (libpcap's TPACKET_V3 block
//! timeout) is also [`IDLE_TICK`] where Packetbeat uses 500 ms: it is the most a packet waits in
//! the kernel before it is seen.
//!
//! Drops: `pcap_stats` (`ps_drop`: the kernel buffer was full; `ps_ifdrop`: the interface
//! dropped) are read every second for the monitoring's `/inputs/` ([`super::metrics`]) and at
//! the end for [`PacketSource::summary`] and [`PacketSource::kernel_drops`].

use super::{BatchBuf, FrameDesc, PacketBatch, PacketSource, SnifferError};
use crate::common::Ts;
use crate::decoder::LinkType;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long an idle live source waits before handing out an empty batch (clock, signals).
pub const IDLE_TICK: Duration = Duration::from_millis(100);
/// Bytes of frames per batch at most.
const BATCH_BYTES: usize = 1 << 20;
/// Frames per batch at most.
const BATCH_FRAMES: usize = 4096;
/// Batch buffers kept for reuse.
const POOL: usize = 32;
/// How often `pcap_stats` is read for the monitoring.
const STATS_EVERY: Duration = Duration::from_secs(1);

/// Options of a live capture handle.
#[derive(Debug, Clone)]
pub struct PcapOptions {
    pub device: String,
    pub snaplen: u32,
    pub buffer_size_mb: i64,
    pub filter: Option<String>,
}

pub struct PcapSource {
    device: String,
    cap: pcap::Capture<pcap::Active>,
    link: LinkType,
    pool: Vec<Arc<Vec<u8>>>,
    last_batch_at: Instant,
    stats: Option<pcap::Stat>,
    /// The counters `/inputs/` shows, and when `pcap_stats` was last read into them.
    monitor: Arc<super::metrics::InputStats>,
    stats_at: Instant,
}

impl PcapSource {
    pub fn open(o: &PcapOptions) -> Result<PcapSource, SnifferError> {
        let err = |what: &str, e: pcap::Error| {
            SnifferError::Open(format!("{what} on device {}: {e}", o.device))
        };
        let buffer = if o.buffer_size_mb > 0 {
            o.buffer_size_mb
        } else {
            24
        };
        let inactive = pcap::Capture::from_device(o.device.as_str())
            .map_err(|e| err("pcap", e))?
            .snaplen(o.snaplen.clamp(1, 262_144) as i32)
            .promisc(true)
            .buffer_size((buffer.min(2047) * 1024 * 1024) as i32)
            .timeout(IDLE_TICK.as_millis() as i32)
            .precision(pcap::Precision::Nano);
        let mut cap = inactive
            .open()
            .map_err(|e| err("failed to start capture", e))?;
        let dlt = cap.get_datalink().0;
        let link = LinkType::from_pcap(dlt as u32).ok_or_else(|| {
            SnifferError::Open(format!(
                "device {} has link type {dlt}, which this build does not decode",
                o.device
            ))
        })?;
        if let Some(f) = o.filter.as_deref().filter(|f| !f.is_empty()) {
            cap.filter(f, true)
                .map_err(|e| SnifferError::Open(format!("invalid bpf_filter '{f}': {e}")))?;
        }
        let cap = cap.setnonblock().map_err(|e| err("pcap_setnonblock", e))?;
        tracing::info!(
            "Capturing on device {} with libpcap (link type {dlt}, snaplen {}, buffer {} MiB){}",
            o.device,
            o.snaplen,
            buffer,
            match &o.filter {
                Some(f) if !f.is_empty() => format!(", BPF filter: {f}"),
                _ => String::new(),
            }
        );
        Ok(PcapSource {
            device: o.device.clone(),
            cap,
            link,
            pool: Vec::new(),
            last_batch_at: Instant::now(),
            stats: None,
            monitor: super::metrics::InputStats::register("pcap", &o.device),
            stats_at: Instant::now(),
        })
    }

    /// A buffer no batch uses any more, or a new one.
    fn buffer(&mut self) -> Vec<u8> {
        if let Some(i) = self.pool.iter().position(|b| Arc::strong_count(b) == 1) {
            let b = self.pool.swap_remove(i);
            if let Ok(mut v) = Arc::try_unwrap(b) {
                v.clear();
                return v;
            }
        }
        Vec::with_capacity(BATCH_BYTES + 65_536)
    }

    /// `pcap_stats` (cumulative on Linux), kept for the summary and shown in `/inputs/`.
    fn read_stats(&mut self) {
        self.stats = self.cap.stats().ok();
        if let Some(s) = self.stats {
            let m = &self.monitor;
            m.kernel_packets.store(s.received as u64, Ordering::Relaxed);
            m.kernel_drops.store(s.dropped as u64, Ordering::Relaxed);
            m.interface_drops.store(s.if_dropped as u64, Ordering::Relaxed);
        }
    }

    fn wait_readable(&self, timeout: Duration) {
        let mut pfd = libc::pollfd {
            fd: self.cap.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd; EINTR (a signal) just returns early.
        unsafe { libc::poll(&mut pfd, 1, timeout.as_millis() as i32) };
    }

    fn batch(&mut self, buf: Vec<u8>, frames: Vec<FrameDesc>, clock: Ts) -> PacketBatch {
        let buf = Arc::new(buf);
        if self.pool.len() < POOL {
            self.pool.push(buf.clone());
        }
        self.last_batch_at = Instant::now();
        // Frames read: what `/inputs/` and the summary show.
        self.monitor
            .packets
            .fetch_add(frames.len() as u64, Ordering::Relaxed);
        if self.stats_at.elapsed() >= STATS_EVERY {
            self.stats_at = self.last_batch_at;
            self.read_stats();
        }
        PacketBatch {
            buf: BatchBuf::Owned(buf),
            frames,
            new_pass: false,
            clock,
        }
    }
}

impl PacketSource for PcapSource {
    fn link_type(&self) -> LinkType {
        self.link
    }

    fn next_batch(&mut self) -> Result<Option<PacketBatch>, SnifferError> {
        let mut buf = self.buffer();
        let mut frames = Vec::new();
        loop {
            match self.cap.next_packet() {
                Ok(p) => {
                    let h = p.header;
                    // Nanosecond precision: tv_usec holds nanoseconds.
                    let ts = Ts(h.ts.tv_sec as i64 * 1_000_000_000 + h.ts.tv_usec as i64);
                    frames.push(FrameDesc {
                        ts,
                        offset: buf.len() as u32,
                        len: p.data.len() as u32,
                        orig_len: h.len,
                        link: self.link,
                    });
                    buf.extend_from_slice(p.data);
                    if buf.len() >= BATCH_BYTES || frames.len() >= BATCH_FRAMES {
                        return Ok(Some(self.batch(buf, frames, Ts::ZERO)));
                    }
                }
                Err(pcap::Error::TimeoutExpired) => {
                    if !frames.is_empty() {
                        return Ok(Some(self.batch(buf, frames, Ts::ZERO)));
                    }
                    let idle = self.last_batch_at.elapsed();
                    if idle >= IDLE_TICK {
                        return Ok(Some(self.batch(buf, frames, Ts::now())));
                    }
                    self.wait_readable(IDLE_TICK - idle);
                }
                Err(pcap::Error::NoMorePackets) => return Ok(None),
                Err(e) => {
                    return Err(SnifferError::Read(format!(
                        "reading from device {}: {e}",
                        self.device
                    )))
                }
            }
        }
    }

    fn is_live(&self) -> bool {
        true
    }

    fn finish(&mut self) {
        self.read_stats();
    }

    fn kernel_drops(&self) -> u64 {
        self.stats
            .map(|s| s.dropped as u64 + s.if_dropped as u64)
            .unwrap_or(0)
    }

    fn summary(&self) -> String {
        let mut s = format!(
            "pcap device {}: {} frames received",
            self.device,
            self.monitor.packets.load(Ordering::Relaxed)
        );
        if let Some(st) = self.stats {
            s.push_str(&format!(
                ", pcap_stats: {} received, {} dropped by the kernel, {} dropped by the interface",
                st.received, st.dropped, st.if_dropped
            ));
        }
        s
    }
}
