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

    /// A timeout check in every worker's batch, after the frames it has so far.
    fn tick_all(&self, out: &mut [WorkerBatch]) {
        for wb in out {
            wb.ticks.push(Tick {
                after: wb.frames.len(),
                now: self.now,
                lateness_ns: self.lateness_ns,
            });
        }
    }

    /// Splits one capture batch into one batch per worker (every worker gets one, possibly
    /// empty, so its packet-time clock moves on). Timeout checks go in at the frames where the
    /// capture's clock passes each [`TICK_INTERVAL`], the same frames however the capture is
    /// cut into batches.
    pub fn split(&mut self, batch: &PacketBatch) -> Vec<WorkerBatch> {
        let mut out: Vec<WorkerBatch> = (0..self.workers)
            .map(|_| WorkerBatch {
                shared: Some(batch.buf.clone()),
                owned: Vec::new(),
                frames: Vec::new(),
                ticks: Vec::new(),
                new_pass: batch.new_pass,
            })
            .collect();
        if self.workers == 1 {
            // One worker: it decodes and reassembles everything itself, in capture order.
            out[0].frames.reserve(batch.frames.len());
            for d in &batch.frames {
                out[0].frames.push((*d, false));
                if self.clock_to(d.ts) {
                    self.tick_all(&mut out);
                }
            }
            self.idle_clock(batch, &mut out);
            return out;
        }
        for d in &batch.frames {
            let data = batch.buf.data(d);
            match peek_with(d.link, data, !self.flows) {
                Peek::Flow(h) => {
                    let w = self.worker_of(h);
                    out[w].frames.push((*d, false));
                }
                Peek::Other => out[0].frames.push((*d, false)),
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
                        wb.frames.push((
                            FrameDesc {
                                ts: d.ts,
                                offset: offset as u32,
                                len,
                                orig_len,
                                link,
                            },
                            true,
                        ));
                    }
                }
            }
            if self.clock_to(d.ts) {
                self.tick_all(&mut out);
            }
        }
        self.idle_clock(batch, &mut out);
        out
    }

    /// An idle live source: its clock moves time on without packets.
    fn idle_clock(&mut self, batch: &PacketBatch, out: &mut [WorkerBatch]) {
        if batch.clock > self.now {
            self.now = batch.clock;
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
