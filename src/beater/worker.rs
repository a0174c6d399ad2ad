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
    /// Frames in capture order.
    pub frames: Vec<FrameDesc>,
    /// The indices in `frames`, ascending, of the frames whose bytes are in `owned` (the others
    /// are in `shared`).
    pub in_owned: Vec<u32>,
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
    pub(crate) fn frame(&self, d: &FrameDesc, owned: bool) -> Frame<'_> {
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
    finisher: Finisher,
    /// Live capture: events leave at every timeout check (not only in full batches), and when
    /// the output queue is full they are dropped and counted instead of waited for.
    pub live: bool,
    /// Events leave at every timeout check, not only in full batches: live capture, and DPDK
    /// (whose port may idle for long with a few events waiting).
    pub flush_on_tick: bool,
    queue_dropped: u64,
    /// The output queue was closed: nothing more can be delivered.
    output_gone: bool,
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
            finisher: Finisher {
                pipeline,
                codec,
                encoded_hint: 1024,
            },
            live: false,
            flush_on_tick: false,
            queue_dropped: 0,
            output_gone: false,
            monitoring: None,
            stages: StageClock::default(),
        }
    }

    /// Processes one frame; events it completes are left in `self.sink`.
    pub fn handle(&mut self, frame: &Frame) {
        self.handle_to(frame, None)
    }

    /// [`Worker::handle`]; with a queue, a flow table's mass reports (an eviction) are
    /// finished and queued as they are made.
    fn handle_to(&mut self, frame: &Frame, queue: Option<&dyn EventQueue>) {
        let Worker {
            decoder,
            tcp,
            udp,
            icmp,
            sink,
            flows,
            stages,
            finisher,
            live,
            queue_dropped,
            output_gone,
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
            let mut drain = finisher.drain(queue, *live, queue_dropped, output_gone);
            fl.record_draining(
                sink,
                id,
                frame.ts,
                frame.orig_len as u64,
                icmp_tc,
                &mut drain,
            );
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
        self.handle_batch_to(b, None)
    }

    /// [`Worker::handle_batch`]; with a queue, a flow table's reports are finished and queued
    /// as they are made, not all held until the batch ends.
    fn handle_batch_to(&mut self, b: &WorkerBatch, queue: Option<&dyn EventQueue>) {
        if b.new_pass {
            self.flush();
        }
        let mut ticks = b.ticks.iter().peekable();
        while let Some(t) = ticks.next_if(|t| t.after == 0) {
            self.tick(t, queue);
        }
        // The next frame whose bytes are in `owned` (usize::MAX: none left).
        let owned_at = |k: usize| b.in_owned.get(k).map_or(usize::MAX, |&o| o as usize);
        let (mut k, mut next_owned) = (0, owned_at(0));
        for (i, d) in b.frames.iter().enumerate() {
            let owned = i == next_owned;
            if owned {
                k += 1;
                next_owned = owned_at(k);
            }
            let f = b.frame(d, owned);
            self.handle_to(&f, queue);
            while let Some(t) = ticks.next_if(|t| t.after <= i + 1) {
                self.tick(t, queue);
            }
        }
        for t in ticks {
            self.tick(t, queue);
        }
    }

    fn tick(&mut self, t: &Tick, queue: Option<&dyn EventQueue>) {
        if !t.now.is_zero() {
            self.tcp.tick(&mut self.sink, t.now, t.lateness_ns);
            self.udp.tick(&mut self.sink, t.now);
            self.icmp.tick(&mut self.sink, t.now);
            let Worker {
                flows: Some(f),
                sink,
                finisher,
                live,
                queue_dropped,
                output_gone,
                ..
            } = self
            else {
                return;
            };
            let mut drain = finisher.drain(queue, *live, queue_dropped, output_gone);
            f.tick_draining(sink, t.now, t.lateness_ns, &mut drain);
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
        self.finisher
            .finish(self.sink.take(), Some(&mut self.stages))
    }

    /// The worker thread: batches in, encoded events out, until the input closes or the output
    /// goes away.
    pub fn run(mut self, rx: Receiver<WorkerBatch>, events: &dyn EventQueue) -> WorkerReport {
        for batch in rx {
            if !self.step(&batch, events) {
                break;
            }
        }
        self.end(events)
    }

    /// One batch: its frames and timeout checks, then its events to `events` once a batch of
    /// them is due. `false` once the output is gone (nothing more can be delivered).
    pub fn step(&mut self, batch: &WorkerBatch, events: &dyn EventQueue) -> bool {
        self.handle_batch_to(batch, Some(events));
        if self.output_gone {
            return false;
        }
        if let Some((m, slot)) = &self.monitoring {
            m.worker_report(*slot, &self.report());
        }
        let due = self.sink.len() >= EVENT_BATCH
            || (self.flush_on_tick && !self.sink.is_empty() && !batch.ticks.is_empty());
        if !due {
            return true;
        }
        let out = self.take_events();
        if out.is_empty() {
            return true;
        }
        if !send(events, out, self.live, &mut self.queue_dropped) {
            self.output_gone = true;
        }
        !self.output_gone
    }

    /// End of input: what every analyzer and the flow table still hold is reported and
    /// queued (waiting for room, also live: nothing comes after it). Returns the counters.
    pub fn end(mut self, events: &dyn EventQueue) -> WorkerReport {
        if !self.output_gone {
            self.tcp.flush(&mut self.sink);
            self.udp.flush(&mut self.sink);
            self.icmp.flush(&mut self.sink);
            let Worker {
                flows,
                sink,
                finisher,
                queue_dropped,
                output_gone,
                ..
            } = &mut self;
            if let Some(f) = flows {
                let mut drain = finisher.drain(Some(events), false, queue_dropped, output_gone);
                f.flush_draining(sink, &mut drain);
            }
            let rest = self.take_events();
            if !rest.is_empty() && !self.output_gone {
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
            pipeline: self.finisher.pipeline.stats,
            flows: self.flows.as_ref().map(|f| f.stats).unwrap_or_default(),
            queue_dropped: self.queue_dropped,
        }
    }
}

/// Sends finished events to the output queue: a live capture drops (and counts) what a full
/// queue has no room for, a file replay waits. `false` once the queue is closed.
fn send(queue: &dyn EventQueue, out: Vec<Event>, live: bool, dropped: &mut u64) -> bool {
    if live {
        match queue.try_push(out) {
            Ok(()) => true,
            Err(TryPushError::Full(b)) => {
                *dropped += b.len() as u64;
                true
            }
            Err(TryPushError::Closed(_)) => false,
        }
    } else {
        queue.push(out).is_ok()
    }
}

/// The last steps of a worker's events: the publish pipeline, then the output's codec.
struct Finisher {
    pipeline: Pipeline,
    /// The output's codec, when events can be encoded here (see `outputs::codec_for`).
    codec: Option<JsonCodec>,
    /// Capacity for the next encoded event.
    encoded_hint: usize,
}

impl Finisher {
    /// Runs `events` through the pipeline and encodes the ones it keeps.
    fn finish(&mut self, events: Vec<Event>, mut stages: Option<&mut StageClock>) -> Vec<Event> {
        let mut out = Vec::with_capacity(events.len());
        let mut mark = stages.as_ref().map(|s| s.mark());
        let mut lap = |stage: Stage, stages: &mut Option<&mut StageClock>| {
            if let (Some(s), Some(m)) = (stages.as_mut(), mark.as_mut()) {
                s.lap(stage, m, 1);
            }
        };
        for e in events {
            let kept = self.pipeline.process(e);
            lap(Stage::Events, &mut stages);
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
                    lap(Stage::Encode, &mut stages);
                }
                out.push(e);
            }
        }
        out
    }

    /// A flow table's drain (see `Flows::tick_draining`): with a queue, the reports are
    /// finished and queued as they are made; without one (tests, benches), they stay in the
    /// sink.
    fn drain<'a>(
        &'a mut self,
        queue: Option<&'a dyn EventQueue>,
        live: bool,
        dropped: &'a mut u64,
        gone: &'a mut bool,
    ) -> impl FnMut(&mut EventSink) + 'a {
        move |sink| {
            if let Some(q) = queue {
                self.drain_to(q, sink, live, dropped, gone);
            }
        }
    }

    /// Finishes the events of `sink` and queues them; once the queue is closed, they are
    /// dropped (nothing can deliver them) and `gone` is set.
    fn drain_to(
        &mut self,
        queue: &dyn EventQueue,
        sink: &mut EventSink,
        live: bool,
        dropped: &mut u64,
        gone: &mut bool,
    ) {
        let events = sink.take();
        if *gone {
            return;
        }
        let out = self.finish(events, None);
        if !out.is_empty() && !send(queue, out, live, dropped) {
            *gone = true;
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

    /// Ethernet + IPv4 + UDP, from 10.0.x.y:`port` to 10.1.0.1:9999.
    fn udp_frame(host: u16, port: u16) -> Vec<u8> {
        let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00];
        let mut ip = vec![0x45, 0, 0, 32, 0, 0, 0x40, 0, 64, 17, 0, 0];
        ip.extend_from_slice(&[10, 0, (host >> 8) as u8, host as u8, 10, 1, 0, 1]);
        let sum = ip
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
            .sum::<u32>();
        let sum = !((sum & 0xffff) + (sum >> 16)) as u16;
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(&port.to_be_bytes());
        f.extend_from_slice(&9999u16.to_be_bytes());
        f.extend_from_slice(&[0, 12, 0, 0, b'p', b'i', b'n', b'g']);
        f
    }

    /// Records the size of every batch queued.
    #[derive(Default)]
    struct SizesQueue(std::sync::Mutex<Vec<usize>>);

    impl EventQueue for SizesQueue {
        fn push(&self, batch: Vec<Event>) -> Result<(), Vec<Event>> {
            self.0.lock().unwrap().push(batch.len());
            Ok(())
        }
        fn try_push(&self, batch: Vec<Event>) -> Result<(), TryPushError> {
            self.push(batch).map_err(TryPushError::Full)
        }
        fn pop(&self, _: usize) -> Option<Vec<Event>> {
            None
        }
        fn close(&self) {}
        fn len(&self) -> usize {
            0
        }
        fn fill(&self) -> crate::beater::queue::QueueFill {
            Default::default()
        }
    }

    /// A flow tick reports every flow of the table at once; the worker queues those reports
    /// in batches as they are made, so a big table's reports are never all in memory.
    #[test]
    fn a_tick_reporting_a_big_flow_table_queues_its_reports_in_batches() {
        const FLOWS: usize = 5000;
        let modules = ProtocolModules::default();
        let mut w = Worker::new(&modules, Pipeline::for_tests(&[]), None);
        w.flows = Some(Flows::new(crate::flows::Settings {
            timeout_ns: 30_000_000_000,
            period_ns: Some(10_000_000_000),
            delta: false,
            max_flows: 1_000_000,
        }));
        let mut owned = Vec::new();
        let mut frames = Vec::new();
        for i in 0..FLOWS {
            let f = udp_frame(i as u16, 1024 + (i % 1000) as u16);
            frames.push(FrameDesc {
                ts: Ts(1_000_000_000),
                offset: owned.len() as u32,
                len: f.len() as u32,
                orig_len: f.len() as u32,
                link: crate::decoder::LinkType::Ethernet,
            });
            owned.extend_from_slice(&f);
        }
        let tick = |s: i64| Tick {
            after: FLOWS,
            now: Ts(s * 1_000_000_000),
            lateness_ns: 0,
        };
        let (tx, rx) = std::sync::mpsc::sync_channel(4);
        // The first tick sets the clock; the flows worker's first report is due at 20 s.
        tx.send(WorkerBatch {
            owned,
            in_owned: (0..frames.len() as u32).collect(),
            frames,
            ticks: vec![tick(1), tick(21)],
            ..Default::default()
        })
        .unwrap();
        drop(tx);
        let q = SizesQueue::default();
        let report = w.run(rx, &q);
        let sizes = q.0.into_inner().unwrap();
        // Every flow reported twice: on the tick, and as final at the end.
        assert_eq!(report.flows.reported, 2 * FLOWS as u64);
        assert_eq!(sizes.iter().sum::<usize>(), 2 * FLOWS);
        let largest = sizes.iter().max().copied().unwrap_or(0);
        assert!(
            largest <= crate::flows::DRAIN_EVERY.max(EVENT_BATCH),
            "a batch of {largest} events was queued"
        );
    }
}
