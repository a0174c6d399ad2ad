//! A packet worker: decodes the frames dispatched to it, drives its own TCP and UDP layers and
//! analyzers, and finalises and encodes the events they publish. Workers share nothing; their
//! events leave in batches, already serialised, so the output only writes.

use super::queue::{EventQueue, TryPushError};
use super::stages::{Stage, StageClock};
use crate::common::{IpPortTuple, Ts};
use crate::decoder::{Decoder, DecoderStats, Skip, L4};
use crate::flows::flowid::FlowId;
use crate::flows::{FlowStats, Flows, IcmpTypeCode};
use crate::protos::tcp::{Tcp, TcpStats};
use crate::protos::udp::{Udp, UdpStats};
use crate::protos::{IcmpLayer, IcmpPacket, ProtocolModules};
use crate::publish::json::JsonCodec;
use crate::publish::pipeline::{Pipeline, PipelineStats};
use crate::publish::{Event, EventSink};
use crate::sniffer::{BatchBuf, Frame, FrameDesc};
use std::sync::mpsc::Receiver;

/// Events per batch handed to the output.
pub const EVENT_BATCH: usize = 256;

/// Frames dispatched to one worker from one capture batch.
#[derive(Debug, Default)]
pub struct WorkerBatch {
    /// The capture buffer the frames point into.
    pub shared: Option<BatchBuf>,
    /// Bytes of frames made by the dispatcher (reassembled IPv4 datagrams).
    pub owned: Vec<u8>,
    /// Frames in capture order; `true` when the frame is in `owned`.
    pub frames: Vec<(FrameDesc, bool)>,
    /// When the layers' timeouts are checked: at points of the capture, not of the batching,
    /// so a replay gives the same events whatever its pace and however it is cut into batches.
    pub ticks: Vec<Tick>,
    /// End all connections and transactions before these frames (a new pass of `-l`).
    pub new_pass: bool,
}

/// A timeout check, after the first `after` frames of the batch. `now` is the capture's clock
/// there (the latest timestamp so far, over all frames, not only this worker's) and
/// `lateness_ns` how far behind it packets have been stamped so far: every worker gets the same
/// values at the same point of the capture, so timeouts fire alike however flows are spread.
#[derive(Debug, Clone, Copy)]
pub struct Tick {
    pub after: usize,
    pub now: Ts,
    pub lateness_ns: i64,
}

impl WorkerBatch {
    fn frame(&self, d: &FrameDesc, owned: bool) -> Frame<'_> {
        let data: &[u8] = if owned {
            let start = d.offset as usize;
            &self.owned[start..start + d.len as usize]
        } else {
            self.shared.as_ref().map(|b| b.data(d)).unwrap_or(&[])
        };
        d.with_data(data)
    }
}

/// What a worker did, reported when it ends; `total += &report` sums the workers'.
#[derive(Debug, Default, Clone, Copy)]
pub struct WorkerReport {
    pub decoder: DecoderStats,
    pub tcp: TcpStats,
    pub udp: UdpStats,
    pub pipeline: PipelineStats,
    pub flows: FlowStats,
    /// Events dropped because the output queue was full (live capture only).
    pub queue_dropped: u64,
}

/// `a += &b` for structs of counters, field by field. The field list is matched exhaustively,
/// so a struct that gains a counter does not compile until it is listed here.
macro_rules! sum_fields {
    ($($t:ident { $($f:ident),* $(,)? })*) => {$(
        impl std::ops::AddAssign<&$t> for $t {
            fn add_assign(&mut self, other: &$t) {
                let $t { $($f),* } = other;
                $(self.$f += $f;)*
            }
        }
    )*};
}

sum_fields! {
    WorkerReport { decoder, tcp, udp, pipeline, flows, queue_dropped }
    FlowStats { flows, reported, evicted }
    DecoderStats { packets, not_ip, malformed, fragments, reassembled, datagrams_dropped, ipv6_fragments }
    TcpStats {
        segments, payload_bytes, retransmissions, overlaps, gaps, dropped_because_of_gaps,
        reordered, connections, expired, closed, evicted, stream_bytes_refused,
    }
    UdpStats { datagrams, analysed }
    PipelineStats { published, invalid, ignored_outgoing, dropped_by_processors }
}

pub struct Worker {
    pub decoder: Decoder,
    pub tcp: Tcp,
    pub udp: Udp,
    pub icmp: IcmpLayer,
    pub sink: EventSink,
    /// The flow table, when `packetbeat.flows` is enabled (none: no cost on the packet path).
    pub flows: Option<Flows>,
    pipeline: Pipeline,
    /// The output's codec, when events can be encoded here (see `outputs::codec_for`).
    codec: Option<JsonCodec>,
    /// Capacity for the next encoded event.
    encoded_hint: usize,
    /// Live capture: events leave at every timeout check (not only in full batches), and when
    /// the output queue is full they are dropped and counted instead of waited for.
    pub live: bool,
    /// Events leave at every timeout check, not only in full batches: live capture, and DPDK
    /// (whose port may idle for long with a few events waiting).
    pub flush_on_tick: bool,
    queue_dropped: u64,
    /// Where this worker leaves its counters for the monitoring, and its slot there.
    pub monitoring: Option<(std::sync::Arc<crate::monitoring::Live>, usize)>,
    /// Cycles per stage (feature `stage-cycles`; nothing otherwise).
    stages: StageClock,
}

impl Worker {
    pub fn new(modules: &ProtocolModules, pipeline: Pipeline, codec: Option<JsonCodec>) -> Worker {
        Worker {
            decoder: Decoder::new(),
            tcp: Tcp::new(modules),
            udp: Udp::new(modules),
            icmp: IcmpLayer::new(modules),
            sink: EventSink::new(),
            flows: None,
            pipeline,
            codec,
            encoded_hint: 1024,
            live: false,
            flush_on_tick: false,
            queue_dropped: 0,
            monitoring: None,
            stages: StageClock::default(),
        }
    }

    /// Processes one frame; events it completes are left in `self.sink`.
    pub fn handle(&mut self, frame: &Frame) {
        let Worker {
            decoder,
            tcp,
            udp,
            icmp,
            sink,
            flows,
            stages,
            ..
        } = self;
        let mut mark = stages.mark();
        // The flow id is built as Packetbeat's decoder builds it, layer by layer, on the stack;
        // without flows there is none (and no cost).
        let mut fid = flows.as_ref().map(|_| FlowId::new());
        let mut to_ip = false;
        if let Some(id) = fid.as_mut() {
            to_ip = crate::flows::add_link_layers(id, frame.link, frame.data);
        }
        let decoded = decoder.decode(frame.link, frame.ts, frame.data);
        stages.lap(Stage::Decode, &mut mark, 1);
        let pkt = match decoded {
            Ok(pkt) => pkt,
            Err(e) => {
                if let (Some(fl), Some(id)) = (flows, fid.as_mut()) {
                    Self::flow_of_undecoded(fl, sink, id, to_ip, frame, e);
                    stages.lap(Stage::Flows, &mut mark, 1);
                }
                return;
            }
        };
        let mut to_l4 = false;
        if let Some(id) = fid.as_mut().filter(|_| to_ip) {
            to_l4 = crate::flows::add_ip_layer(
                id,
                &pkt,
                crate::flows::ip_bytes(frame.link, frame.data),
            );
        }
        let mut icmp_tc = IcmpTypeCode::None;
        match pkt.l4 {
            L4::Tcp(hdr, payload) => {
                let tuple = IpPortTuple::new(pkt.src, hdr.src_port, pkt.dst, hdr.dst_port);
                let conn = tcp.process(sink, pkt.ts, tuple, &hdr, payload);
                if let Some(id) = fid.as_mut().filter(|_| to_l4) {
                    id.add_tcp(hdr.src_port, hdr.dst_port);
                    if conn != 0 {
                        id.add_connection_id(conn);
                    }
                }
            }
            L4::Udp {
                src_port,
                dst_port,
                payload,
            } => {
                let tuple = IpPortTuple::new(pkt.src, src_port, pkt.dst, dst_port);
                udp.process(sink, pkt.ts, tuple, payload);
                if let Some(id) = fid.as_mut().filter(|_| to_l4) {
                    id.add_udp(src_port, dst_port);
                }
            }
            L4::Icmp4 {
                icmp_type, code, ..
            }
            | L4::Icmp6 {
                icmp_type, code, ..
            } => {
                if to_l4 {
                    let tc = (icmp_type as u16) << 8 | code as u16;
                    icmp_tc = if matches!(pkt.l4, L4::Icmp4 { .. }) {
                        IcmpTypeCode::V4(tc)
                    } else {
                        IcmpTypeCode::V6(tc)
                    };
                }
                if let Some(msg) = IcmpPacket::from_decoded(&pkt) {
                    icmp.process(sink, &msg);
                }
            }
            L4::Other { .. } => {}
        }
        stages.lap(Stage::Transport, &mut mark, 1);
        if let (Some(fl), Some(id)) = (flows, fid.as_mut()) {
            fl.record(sink, id, frame.ts, frame.orig_len as u64, icmp_tc);
            stages.lap(Stage::Flows, &mut mark, 1);
        }
    }

    /// Frames the decoder does not pass on still count in Packetbeat's flows with the layers
    /// it read: non-IP frames by their MACs, IPv6 fragments by their addresses. An IPv4
    /// fragment counts when its datagram is complete, so not here.
    fn flow_of_undecoded(
        fl: &mut Flows,
        sink: &mut crate::publish::EventSink,
        fid: &mut FlowId,
        to_ip: bool,
        frame: &Frame,
        e: Skip,
    ) {
        match e {
            Skip::Fragment => return,
            Skip::Ipv6Fragment if to_ip => {
                let ip = crate::flows::ip_bytes(frame.link, frame.data);
                if let (Some(s), Some(d)) = (ip.get(8..24), ip.get(24..40)) {
                    if let (Ok(s), Ok(d)) = (<&[u8; 16]>::try_from(s), <&[u8; 16]>::try_from(d)) {
                        fid.add_ipv6(s, d);
                    }
                }
            }
            _ => {}
        }
        fl.record(
            sink,
            fid,
            frame.ts,
            frame.orig_len as u64,
            IcmpTypeCode::None,
        );
    }

    pub fn handle_batch(&mut self, b: &WorkerBatch) {
        if b.new_pass {
            self.flush();
        }
        let mut ticks = b.ticks.iter().peekable();
        while let Some(t) = ticks.next_if(|t| t.after == 0) {
            self.tick(t);
        }
        for (i, (d, owned)) in b.frames.iter().enumerate() {
            let f = b.frame(d, *owned);
            self.handle(&f);
            while let Some(t) = ticks.next_if(|t| t.after <= i + 1) {
                self.tick(t);
            }
        }
        for t in ticks {
            self.tick(t);
        }
    }

    fn tick(&mut self, t: &Tick) {
        if !t.now.is_zero() {
            self.tcp.tick(&mut self.sink, t.now, t.lateness_ns);
            self.udp.tick(&mut self.sink, t.now);
            self.icmp.tick(&mut self.sink, t.now);
            if let Some(f) = &mut self.flows {
                f.tick(&mut self.sink, t.now, t.lateness_ns);
            }
        }
    }

    /// End of input: every analyzer reports what is pending.
    pub fn flush(&mut self) {
        self.tcp.flush(&mut self.sink);
        self.udp.flush(&mut self.sink);
        self.icmp.flush(&mut self.sink);
        if let Some(f) = &mut self.flows {
            f.flush(&mut self.sink);
        }
    }

    /// Finalises and encodes the events collected so far.
    pub fn take_events(&mut self) -> Vec<Event> {
        let mut out = Vec::with_capacity(self.sink.len());
        let mut mark = self.stages.mark();
        for e in self.sink.take() {
            let kept = self.pipeline.process(e);
            self.stages.lap(Stage::Events, &mut mark, 1);
            if let Some(mut e) = kept {
                if let Some(codec) = &self.codec {
                    let mut bytes = Vec::with_capacity(self.encoded_hint);
                    codec.encode_into(&e, &mut bytes);
                    // Room for a slightly larger event next time, without regrowing.
                    self.encoded_hint = bytes.len() + bytes.len() / 4;
                    e.encoded = Some(bytes);
                    // The output needs the bytes and the metadata only; what is freed here is
                    // freed on the thread that allocated it, which is cheaper.
                    e.fields = Default::default();
                    e.pb = None;
                    self.stages.lap(Stage::Encode, &mut mark, 1);
                }
                out.push(e);
            }
        }
        out
    }

    /// The worker thread: batches in, encoded events out, until the input closes or the output
    /// goes away.
    pub fn run(mut self, rx: Receiver<WorkerBatch>, events: &dyn EventQueue) -> WorkerReport {
        let mut output_gone = false;
        for batch in rx {
            self.handle_batch(&batch);
            if let Some((m, slot)) = &self.monitoring {
                m.worker_report(*slot, &self.report());
            }
            let due = self.sink.len() >= EVENT_BATCH
                || (self.flush_on_tick && !self.sink.is_empty() && !batch.ticks.is_empty());
            if !due {
                continue;
            }
            let out = self.take_events();
            if out.is_empty() {
                continue;
            }
            let gone = if self.live {
                match events.try_push(out) {
                    Ok(()) => false,
                    Err(TryPushError::Full(b)) => {
                        self.queue_dropped += b.len() as u64;
                        false
                    }
                    Err(TryPushError::Closed(_)) => true,
                }
            } else {
                events.push(out).is_err()
            };
            if gone {
                output_gone = true;
                break;
            }
        }
        if !output_gone {
            self.tcp.flush(&mut self.sink);
            self.udp.flush(&mut self.sink);
            self.icmp.flush(&mut self.sink);
            // A flow table's final reports go in batches, not all in memory at once.
            while let Some(f) = &mut self.flows {
                let more = f.flush_some(&mut self.sink, EVENT_BATCH);
                if !more || self.sink.len() >= EVENT_BATCH {
                    let batch = self.take_events();
                    if !batch.is_empty() && events.push(batch).is_err() {
                        break;
                    }
                }
                if !more {
                    break;
                }
            }
            let rest = self.take_events();
            if !rest.is_empty() {
                let _ = events.push(rest);
            }
        }
        let report = self.report();
        if let Some((m, slot)) = &self.monitoring {
            m.worker_report(*slot, &report);
        }
        crate::beater::stages::submit(std::mem::take(&mut self.stages));
        report
    }

    /// The counters so far.
    pub fn report(&self) -> WorkerReport {
        WorkerReport {
            decoder: self.decoder.stats(),
            tcp: crate::protos::tcp::TcpStats {
                stream_bytes_refused: crate::protos::app::stream::budget::refused(),
                ..self.tcp.stats
            },
            udp: self.udp.stats,
            pipeline: self.pipeline.stats,
            flows: self.flows.as_ref().map(|f| f.stats).unwrap_or_default(),
            queue_dropped: self.queue_dropped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_add_up() {
        let mut r = WorkerReport::default();
        r.decoder.packets = 3;
        r.tcp.gaps = 1;
        r.udp.datagrams = 2;
        r.pipeline.published = 4;
        let mut total = WorkerReport::default();
        total += &r;
        total += &r;
        assert_eq!(
            (
                total.decoder.packets,
                total.tcp.gaps,
                total.udp.datagrams,
                total.pipeline.published
            ),
            (6, 2, 4, 8)
        );
    }

    /// A live worker never waits on the output: with the queue full, its events are dropped
    /// and counted (Packetbeat's DropIfFull); the batch at the end still waits for room.
    #[test]
    fn live_worker_drops_and_counts_when_the_output_queue_is_full() {
        use crate::beater::queue::MemQueue;
        let event = || {
            let mut m = crate::publish::event::Map::new();
            m.insert("type".into(), "http".into());
            Event::bare(Ts(1_000_000_000), m)
        };
        let modules = ProtocolModules::default();
        let mut w = Worker::new(&modules, Pipeline::for_tests(&[]), None);
        w.live = true;
        w.flush_on_tick = true;
        let q = MemQueue::new(1);
        q.push(vec![event()]).unwrap();
        w.sink.publish(event());
        w.sink.publish(event());
        let (tx, rx) = std::sync::mpsc::sync_channel(4);
        let tick = Tick {
            after: 0,
            now: Ts(2_000_000_000),
            lateness_ns: 0,
        };
        tx.send(WorkerBatch {
            ticks: vec![tick],
            ..Default::default()
        })
        .unwrap();
        drop(tx);
        let report = w.run(rx, &q);
        assert_eq!(report.queue_dropped, 2);
        assert_eq!(q.len(), 1);
    }
}
