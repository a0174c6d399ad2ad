//! Dispatch: spreads each capture batch over the workers by a symmetric flow hash, so both
//! directions of a connection, its IP fragments and the ICMP errors about it meet in one worker.
//! IPv4 fragments are reassembled here first (only the first fragment carries the ports), and the
//! whole datagram goes on as a raw-IP frame.

use super::worker::{Tick, WorkerBatch};
use crate::common::Ts;
use crate::decoder::defrag::{FragKey, Ipv4Defrag};
use crate::decoder::peek::{flow_hash, peek_with, Peek};
use crate::decoder::LinkType;
use crate::sniffer::{FrameDesc, PacketBatch};
use std::net::IpAddr;

pub struct Dispatcher {
    workers: usize,
    /// The capture's clock: the latest timestamp seen.
    now: Ts,
    /// The most a frame's timestamp has been behind `now`.
    lateness_ns: i64,
    /// The capture time at which the workers next check their timeouts.
    next_tick: Ts,
    defrag: Ipv4Defrag,
    /// `packetbeat.flows` is on: flows key ICMP by the IP pair and count a reassembled
    /// datagram as its last fragment (link addresses, VLANs, length on the wire), so ICMP
    /// errors go by their own addresses and reassembled datagrams keep that fragment's link
    /// header.
    pub flows: bool,
    pub fragments: u64,
    pub reassembled: u64,
}

impl Dispatcher {
    pub fn new(workers: usize) -> Dispatcher {
        Dispatcher {
            workers: workers.max(1),
            now: Ts::ZERO,
            lateness_ns: 0,
            next_tick: Ts::ZERO,
            defrag: Ipv4Defrag::new(),
            flows: false,
            fragments: 0,
            reassembled: 0,
        }
    }

    /// Sets `packetbeat.limits.ip_datagrams`.
    pub fn set_max_datagrams(&mut self, n: usize) {
        self.defrag.set_max_datagrams(n);
    }

    /// IPv4 datagrams given up before they were whole.
    pub fn datagrams_dropped(&self) -> u64 {
        self.defrag.dropped
    }

    fn worker_of(&self, hash: u64) -> usize {
        ((hash as u128 * self.workers as u128) >> 64) as usize
    }

    /// Moves the capture's clock on to a frame's timestamp; whether a timeout check is due.
    fn clock_to(&mut self, ts: Ts) -> bool {
        if ts > self.now {
            self.now = ts;
        } else {
            self.lateness_ns = self.lateness_ns.max(self.now.since(ts));
        }
        self.tick_due()
    }

    fn tick_due(&mut self) -> bool {
        if self.now < self.next_tick {
            return false;
        }
        self.next_tick = self.now.add(TICK_INTERVAL);
        true
    }

    /// A timeout check at the capture's clock, after the first `after` frames of a batch.
    fn tick_after(&self, after: usize) -> Tick {
        Tick {
            after,
            now: self.now,
            lateness_ns: self.lateness_ns,
        }
    }

    /// A timeout check in every worker's batch, after the frames it has so far.
    fn tick_all(&self, out: &mut [WorkerBatch]) {
        for wb in out {
            wb.ticks.push(self.tick_after(wb.frames.len()));
        }
    }

    /// Splits one capture batch into one batch per worker (every worker gets one, possibly
    /// empty, so its packet-time clock moves on). Timeout checks go in at the frames where the
    /// capture's clock passes each [`TICK_INTERVAL`], the same frames however the capture is
    /// cut into batches. With one worker, the batch's frames are handed on as they are.
    pub fn split(&mut self, batch: PacketBatch) -> Vec<WorkerBatch> {
        let new_worker_batch = || WorkerBatch {
            shared: Some(batch.buf.clone()),
            owned: Vec::new(),
            frames: Vec::new(),
            in_owned: Vec::new(),
            ticks: Vec::new(),
            new_pass: batch.new_pass,
        };
        if self.workers == 1 {
            // One worker: it decodes and reassembles everything itself, in capture order.
            let mut out = vec![new_worker_batch()];
            for (i, d) in batch.frames.iter().enumerate() {
                if self.clock_to(d.ts) {
                    out[0].ticks.push(self.tick_after(i + 1));
                }
            }
            out[0].frames = batch.frames;
            self.idle_clock(batch.clock, &mut out);
            return out;
        }
        let mut out: Vec<WorkerBatch> = (0..self.workers).map(|_| new_worker_batch()).collect();
        for d in &batch.frames {
            let data = batch.buf.data(d);
            match peek_with(d.link, data, !self.flows) {
                Peek::Flow(h) => {
                    let w = self.worker_of(h);
                    out[w].frames.push(*d);
                }
                Peek::Other => out[0].frames.push(*d),
                Peek::Ipv4Fragment {
                    src,
                    dst,
                    id,
                    proto,
                    offset,
                    more,
                    payload,
                } => {
                    self.fragments += 1;
                    let key = FragKey {
                        src: IpAddr::from(src),
                        dst: IpAddr::from(dst),
                        id,
                        proto,
                    };
                    if let Some(len) = self.defrag.add(d.ts, key, offset, more, payload) {
                        self.reassembled += 1;
                        let datagram = self.defrag.completed(len);
                        let ports = match proto {
                            6 | 17 if datagram.len() >= 4 => (
                                u16::from_be_bytes([datagram[0], datagram[1]]),
                                u16::from_be_bytes([datagram[2], datagram[3]]),
                            ),
                            _ => (0, 0),
                        };
                        let w = self.worker_of(flow_hash(
                            IpAddr::from(src),
                            ports.0,
                            IpAddr::from(dst),
                            ports.1,
                        ));
                        let wb = &mut out[w];
                        let offset = wb.owned.len();
                        // For flows, the last fragment's link header goes in front (its
                        // addresses and VLANs are in the flow id) and its wire length is what
                        // Packetbeat counts; otherwise a raw-IP frame.
                        let link_hdr = if self.flows {
                            crate::decoder::link::strip(d.link, data)
                                .ok()
                                .and_then(|(ip, _)| data.get(..data.len() - ip.len()))
                        } else {
                            None
                        };
                        if let Some(h) = link_hdr {
                            wb.owned.extend_from_slice(h);
                        }
                        write_ipv4(&mut wb.owned, src, dst, id, proto, datagram);
                        let len = (wb.owned.len() - offset) as u32;
                        let (link, orig_len) = match link_hdr {
                            Some(_) => (d.link, d.orig_len),
                            None => (LinkType::Raw, len),
                        };
                        wb.in_owned.push(wb.frames.len() as u32);
                        wb.frames.push(FrameDesc {
                            ts: d.ts,
                            offset: offset as u32,
                            len,
                            orig_len,
                            link,
                        });
                    }
                }
            }
            if self.clock_to(d.ts) {
                self.tick_all(&mut out);
            }
        }
        self.idle_clock(batch.clock, &mut out);
        out
    }

    /// An idle live source: its clock (`clock`, the batch's) moves time on without packets.
    fn idle_clock(&mut self, clock: Ts, out: &mut [WorkerBatch]) {
        if clock > self.now {
            self.now = clock;
            if self.tick_due() {
                self.tick_all(out);
            }
        }
    }
}

/// How often, in capture time, the workers check their timeouts.
const TICK_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

/// An unfragmented IPv4 packet carrying a reassembled datagram (header checksum not computed:
/// the decoder does not check it).
fn write_ipv4(out: &mut Vec<u8>, src: [u8; 4], dst: [u8; 4], id: u16, proto: u8, payload: &[u8]) {
    let total = (20 + payload.len()).min(u16::MAX as usize) as u16;
    out.extend_from_slice(&[0x45, 0]);
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&[0, 0, 64, proto, 0, 0]);
    out.extend_from_slice(&src);
    out.extend_from_slice(&dst);
    out.extend_from_slice(&payload[..(total as usize - 20)]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sniffer::BatchBuf;
    use std::sync::Arc;

    /// Ethernet + IPv4 from 10.0.0.`host` to 10.1.0.1, protocol UDP, with `payload` (a UDP
    /// header and data, or a piece of them), fragment `offset` (8-byte units) and `more`.
    fn ipv4_frame(host: u8, id: u16, offset: u16, more: bool, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00];
        let total = (20 + payload.len()) as u16;
        let frag = offset | if more { 0x2000 } else { 0 };
        f.extend_from_slice(&[0x45, 0]);
        f.extend_from_slice(&total.to_be_bytes());
        f.extend_from_slice(&id.to_be_bytes());
        f.extend_from_slice(&frag.to_be_bytes());
        f.extend_from_slice(&[64, 17, 0, 0, 10, 0, 0, host, 10, 1, 0, 1]);
        f.extend_from_slice(payload);
        f
    }

    /// One batch of `frames`, stamped 60 ms apart from 1 s.
    fn batch(frames: &[Vec<u8>]) -> PacketBatch {
        let mut buf = Vec::new();
        let mut descs = Vec::new();
        for (i, f) in frames.iter().enumerate() {
            descs.push(FrameDesc {
                ts: Ts(1_000_000_000 + i as i64 * 60_000_000),
                offset: buf.len() as u32,
                len: f.len() as u32,
                orig_len: f.len() as u32,
                link: LinkType::Ethernet,
            });
            buf.extend_from_slice(f);
        }
        PacketBatch {
            buf: BatchBuf::Owned(Arc::new(buf)),
            frames: descs,
            new_pass: false,
            clock: Ts::ZERO,
        }
    }

    fn udp(port: u16, data: &[u8]) -> Vec<u8> {
        let mut u = port.to_be_bytes().to_vec();
        u.extend_from_slice(&53u16.to_be_bytes());
        u.extend_from_slice(&((8 + data.len()) as u16).to_be_bytes());
        u.extend_from_slice(&[0, 0]);
        u.extend_from_slice(data);
        u
    }

    #[test]
    fn one_worker_gets_the_frames_as_they_are_with_ticks_where_the_clock_passes() {
        let frames: Vec<Vec<u8>> = (0..5)
            .map(|i| ipv4_frame(i, 1, 0, false, &udp(1000, b"x")))
            .collect();
        let b = batch(&frames);
        let descs = b.frames.clone();
        let mut d = Dispatcher::new(1);
        let out = d.split(b);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].frames, descs);
        assert!(out[0].in_owned.is_empty() && out[0].owned.is_empty());
        // Frames at 1.00, 1.06, 1.12, 1.18, 1.24 s: the first sets the clock (a tick after it,
        // the next due 100 ms on), then 1.12 s passes 1.10 and 1.24 s passes 1.22.
        let after: Vec<usize> = out[0].ticks.iter().map(|t| t.after).collect();
        assert_eq!(after, vec![1, 3, 5]);
    }

    #[test]
    fn a_reassembled_datagram_is_marked_in_the_owned_bytes_of_its_worker() {
        let whole = udp(1000, &[7u8; 24]); // 32 bytes: two fragments of 16
        let frames = vec![
            ipv4_frame(1, 9, 0, true, &whole[..16]),
            ipv4_frame(2, 1, 0, false, &udp(2000, b"plain")),
            ipv4_frame(1, 9, 2, false, &whole[16..]),
        ];
        let mut d = Dispatcher::new(2);
        let out = d.split(batch(&frames));
        assert_eq!((d.fragments, d.reassembled), (2, 1));
        let all: usize = out.iter().map(|w| w.frames.len()).sum();
        assert_eq!(all, 2, "the plain frame and the datagram");
        let with = out
            .iter()
            .find(|w| !w.in_owned.is_empty())
            .expect("a worker with it");
        assert_eq!(with.in_owned.len(), 1);
        let at = with.in_owned[0] as usize;
        let f = with.frame(&with.frames[at], true);
        assert_eq!(f.link, LinkType::Raw);
        assert_eq!(
            &f.data[20..],
            &whole[..],
            "the whole UDP datagram after a new IPv4 header"
        );
        // The other frames of the batches are the capture's own.
        for w in &out {
            for (i, fd) in w.frames.iter().enumerate() {
                if !w.in_owned.contains(&(i as u32)) {
                    assert_eq!(fd.link, LinkType::Ethernet);
                    assert_eq!(w.frame(fd, false).data, &frames[1][..]);
                }
            }
        }
    }
}
