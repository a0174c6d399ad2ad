//! The TCP layer: follows connections on the analyzers' ports and feeds each analyzer the
//! payload of its connections in order.
//!
//! Packetbeat's rules (`protos/tcp/tcp.go`) are kept: a connection is keyed by the tuple of its
//! first packet and found again from either side; the protocol is chosen by source port, then
//! destination port; a segment that ends at or before what was already delivered is a
//! retransmission and ignored; a segment that overlaps it is trimmed; FINs reach the analyzer;
//! an idle connection expires after its protocol's timeout (in packet time here).
//!
//! Two additions. A connection closed by both FINs or a RST ends for its analyzer at once
//! (`expired`, freeing its buffers), but its entry stays, with only its sequence numbers, for the
//! protocol's timeout like Packetbeat's, so late retransmissions are still recognised as such;
//! memory then follows the number of open connections, not the connection rate. And segments
//! that arrive ahead of a hole are held, up to
//! [`MAX_OUT_OF_ORDER_SEGMENTS`] / [`MAX_OUT_OF_ORDER_BYTES`] per direction, so reordering on the
//! wire does not look like loss. The hole is declared a gap (`gap_in_stream`, as Packetbeat does at
//! once) when the receiver acknowledges data beyond it (the capture missed the segment, it will
//! not come again), when the buffer is full, or when the connection ends.
//!
//! Memory is bounded per worker (this build's options, for hostile traffic: a SYN flood, endless
//! out-of-order segments): `packetbeat.limits.tcp_connections` connections (open and closed;
//! past it, a new connection evicts one chosen by the CLOCK algorithm over the connections in
//! creation order: a closed one, or an open one not seen since its turn last came, which ends as
//! on expiry; counted as `evicted`), and held segments count in the
//! worker's stream budget ([`crate::protos::app::stream::budget`]), past which a hole is
//! declared a gap at once.

use crate::common::{IpPortTuple, TcpTuple, Ts};
use crate::decoder::TcpHeader;
use crate::protos::{
    PortMap, ProtocolModules, TcpAnalyzer, TcpConnectionParser, TcpDirection, TcpPacket,
};
use crate::publish::EventSink;
use crate::protos::app::stream::budget;
use rustc_hash::FxHashMap;

pub const MAX_OUT_OF_ORDER_SEGMENTS: usize = 64;
pub const MAX_OUT_OF_ORDER_BYTES: usize = 256 * 1024;
/// How often (packet time) idle connections are looked for.
const SWEEP_INTERVAL_NS: i64 = 1_000_000_000;
/// Default `packetbeat.limits.tcp_connections`, per worker.
pub const DEFAULT_MAX_CONNECTIONS: usize = 262_144;
/// Connections given a second chance (seen since their turn last came) before one is evicted
/// anyway: a fixed cost per eviction.
const EVICTION_TRIES: usize = 32;

/// TCP layer counters (Packetbeat's `tcp` input metrics).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TcpStats {
    pub segments: u64,
    pub payload_bytes: u64,
    pub retransmissions: u64,
    pub overlaps: u64,
    pub gaps: u64,
    pub dropped_because_of_gaps: u64,
    pub reordered: u64,
    pub connections: u64,
    pub expired: u64,
    pub closed: u64,
    /// Connections ended early because the table was full (`packetbeat.limits.tcp_connections`).
    pub evicted: u64,
    /// Bytes refused because the worker's stream budget was spent (`packetbeat.limits.stream_bytes`),
    /// each refusal dropping a stream or declaring a gap.
    pub stream_bytes_refused: u64,
}

struct Held {
    seq: u32,
    ts: Ts,
    tuple: IpPortTuple,
    payload: Vec<u8>,
    fin: bool,
}

#[derive(Default)]
struct Direction {
    /// Sequence number just after the last delivered byte (Packetbeat's `lastSeq`); 0 = unknown.
    last_seq: u32,
    held: Vec<Held>,
    /// Bytes of `held`, taken from the worker's stream budget.
    held_bytes: usize,
}

impl Drop for Direction {
    fn drop(&mut self) {
        budget::release(self.held_bytes);
    }
}

struct Connection {
    /// FIN seen from each side.
    fin: [bool; 2],
    tcptuple: TcpTuple,
    analyzer: usize,
    /// `None` once the connection is closed (both FINs, or a RST): only its sequence numbers are
    /// kept, to recognise retransmissions; new data starts a fresh parser.
    parser: Option<Box<dyn TcpConnectionParser>>,
    dirs: [Direction; 2],
    /// The latest timestamp of its packets.
    last_seen: Ts,
    /// The capture's clock (at the last timeout check) when its last packet arrived. In a
    /// capture whose timestamps run backwards, packets keep arriving for a connection while
    /// their stamps stay behind the clock: it is active, not idle.
    last_active: Ts,
    timeout_ns: i64,
}

/// What connection methods need from the layer: the analyzers (to start parsers), the counters,
/// the stream id source and the event sink.
struct Ctx<'a> {
    analyzers: &'a mut [Box<dyn TcpAnalyzer>],
    stats: &'a mut TcpStats,
    next_id: &'a mut u64,
    out: &'a mut EventSink,
}

/// The TCP layer of one worker.
pub struct Tcp {
    analyzers: Vec<Box<dyn TcpAnalyzer>>,
    port_map: PortMap,
    /// Open connections, keyed by the canonical tuple (see `IpPortTuple::canonical`). Each is
    /// kept in its table entry, next to its key: a packet's lookup then reads the connection
    /// from the cache lines it already loaded.
    conns: FxHashMap<IpPortTuple, Connection>,
    /// Closed connections, kept until their timeout (see `Connection::parser`). They outnumber
    /// the open ones many times over on busy links, so they wait in a table of their own: the
    /// open table stays small enough for its lookups to hit the cache. A closed connection that
    /// sees a packet moves to the open table for it, and back.
    /// Boxed: they wait, mostly untouched, and an entry of the table's spare room costs a
    /// pointer, not a connection.
    closed: FxHashMap<IpPortTuple, Box<Connection>>,
    next_id: u64,
    now: Ts,
    /// The capture's clock at the last timeout check (over all workers' frames).
    clock: Ts,
    last_sweep: Ts,
    /// `packetbeat.limits.tcp_connections`.
    max_connections: usize,
    /// Connections in creation order, each with its `last_seen` when it was queued: the CLOCK
    /// hand for eviction. Entries of connections gone since are skipped when reached.
    order: std::collections::VecDeque<(IpPortTuple, Ts)>,
    pub stats: TcpStats,
}

/// `int32(a - b)`: TCP sequence comparison with wrap-around.
fn seq_diff(a: u32, b: u32) -> i32 {
    a.wrapping_sub(b) as i32
}

impl Tcp {
    pub fn new(modules: &ProtocolModules) -> Tcp {
        let mut analyzers = Vec::new();
        let mut port_map = PortMap::default();
        for m in &modules.modules {
            if let Some(a) = m.new_tcp() {
                let idx = analyzers.len();
                for &p in m.tcp_ports() {
                    port_map.insert(p, idx);
                }
                analyzers.push(a);
            }
        }
        Tcp {
            analyzers,
            port_map,
            conns: FxHashMap::default(),
            closed: FxHashMap::default(),
            next_id: 0,
            now: Ts::ZERO,
            clock: Ts::ZERO,
            last_sweep: Ts::ZERO,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            order: Default::default(),
            stats: TcpStats::default(),
        }
    }

    /// Sets `packetbeat.limits.tcp_connections` (at least 1).
    pub fn set_max_connections(&mut self, n: usize) {
        self.max_connections = n.max(1);
    }

    /// Makes room for one more connection (CLOCK): from the oldest in creation order, a closed
    /// connection goes at once (nothing left to report); an open one seen since its turn last
    /// came goes to the back, else it ends as on expiry; after [`EVICTION_TRIES`] open ones the
    /// last of them goes. Entries of connections gone since (expired, or evicted under another
    /// entry) are dropped on the way and do not count as tries: every live connection has an
    /// entry, so one is always found.
    fn evict_one(&mut self, out: &mut EventSink, now: Ts) {
        let mut victim = None;
        let mut tries = 0;
        while let Some((key, stamp)) = self.order.pop_front() {
            if self.closed.contains_key(&key) {
                victim = Some(key);
                break;
            }
            let Some(c) = self.conns.get(&key) else {
                continue; // gone since
            };
            let seen = c.last_seen.max(c.last_active);
            victim = Some(key);
            tries += 1;
            if seen <= stamp || tries == EVICTION_TRIES {
                break;
            }
            self.order.push_back((key, seen));
        }
        let Some(key) = victim else {
            return;
        };
        self.stats.evicted += 1;
        self.expire(out, &key, now);
        // `expire` counted it as expired too.
        self.stats.expired -= 1;
    }

    /// Remembers a new connection for the CLOCK hand; drops the entries of connections gone
    /// since when they outnumber the live ones.
    fn queue_for_eviction(&mut self, key: IpPortTuple, ts: Ts) {
        self.order.push_back((key, ts));
        let live = self.conns.len() + self.closed.len();
        if self.order.len() > 2 * live + 1024 {
            // One entry per live connection (a tuple reused after its connection ended has one
            // entry per use), at its last place.
            let (conns, closed) = (&self.conns, &self.closed);
            let mut kept = rustc_hash::FxHashSet::default();
            let mut rev: Vec<_> = self.order.drain(..).rev().collect();
            rev.retain(|(k, _)| (conns.contains_key(k) || closed.contains_key(k)) && kept.insert(*k));
            self.order.extend(rev.into_iter().rev());
        }
    }

    pub fn connections(&self) -> usize {
        self.conns.len() + self.closed.len()
    }

    /// Handles one TCP segment. Returns the id of the connection the segment belongs to (0
    /// when no analyzer follows it): Packetbeat adds it to the segment's flow id, before a gap
    /// in this segment may give the connection a new one.
    pub fn process(
        &mut self,
        out: &mut EventSink,
        ts: Ts,
        tuple: IpPortTuple,
        hdr: &TcpHeader,
        payload: &[u8],
    ) -> u64 {
        self.stats.segments += 1;
        if ts > self.now {
            self.now = ts;
        }

        // Connections exist only on analysed ports (as in Packetbeat's `decideProtocol`), so
        // the port table answers first: most unanalysed traffic costs no hash lookup at all.
        let Some(analyzer) = self.port_map.for_tuple(tuple.src_port, tuple.dst_port) else {
            return 0;
        };
        // Both directions of a connection share one key.
        let key = tuple.canonical();
        if !self.closed.is_empty() && !self.conns.contains_key(&key) {
            if let Some(c) = self.closed.remove(&key) {
                self.conns.insert(key, *c);
            }
        }
        if let Some(c) = self.conns.get(&key) {
            let dir = if c.tcptuple.tuple == tuple {
                TcpDirection::Original
            } else {
                TcpDirection::Reverse
            };
            // A connection idle past its timeout ends now, before this packet, whenever the
            // periodic sweep would have caught it: the outcome must not depend on when sweeps
            // run. A SYN on a closed connection's tuple may open a new connection.
            if ts.since(c.last_seen) > c.timeout_ns
                || (hdr.syn() && c.parser.is_none() && c.is_new_syn(dir, hdr))
            {
                self.expire(out, &key, ts);
            }
        }
        if self.conns.len() + self.closed.len() >= self.max_connections
            && !self.conns.contains_key(&key)
        {
            self.evict_one(out, ts);
        }
        let self_clock = self.clock;
        let Tcp {
            conns,
            analyzers,
            stats,
            next_id,
            ..
        } = self;
        let mut created = false;
        let conn = conns.entry(key).or_insert_with(|| {
            created = true;
            *next_id += 1;
            let tcptuple = TcpTuple {
                tuple,
                stream_id: *next_id,
            };
            let parser = analyzers[analyzer].new_connection(&tcptuple);
            let timeout_ns = analyzers[analyzer].connection_timeout().as_nanos() as i64;
            stats.connections += 1;
            Connection {
                fin: [false, false],
                tcptuple,
                analyzer,
                parser: Some(parser),
                dirs: Default::default(),
                last_seen: ts,
                last_active: Ts::ZERO,
                timeout_ns,
            }
        });
        let dir = if conn.tcptuple.tuple == tuple {
            TcpDirection::Original
        } else {
            TcpDirection::Reverse
        };
        let mut ctx = Ctx {
            analyzers,
            stats,
            next_id,
            out,
        };
        let conn_id = conn.tcptuple.stream_id;
        conn.last_seen = conn.last_seen.max(ts);
        conn.last_active = self_clock;
        if hdr.fin() {
            conn.fin[dir.index()] = true;
        }
        conn.segment(&mut ctx, dir, created, ts, tuple, hdr, payload);
        if (hdr.rst() || conn.fin == [true, true]) && conn.parser.is_some() {
            conn.close(&mut ctx, ts);
        }
        let closed_now = conn.parser.is_none();
        if created {
            self.queue_for_eviction(key, ts);
        }
        if closed_now {
            if let Some(c) = self.conns.remove(&key) {
                self.closed.insert(key, Box::new(c));
            }
        }
        conn_id
    }

    /// The capture's clock moved on to `now` (the latest timestamp seen so far, by any worker)
    /// and packets have been up to `lateness_ns` behind it: end connections idle for longer than
    /// their timeout plus that lateness. Called at batch boundaries with the same values in every
    /// worker, so the decisions do not depend on how flows are spread over workers; and a capture
    /// whose timestamps run backwards (merged captures) does not end a connection because other
    /// flows' packets are stamped ahead of its own.
    pub fn tick(&mut self, out: &mut EventSink, now: Ts, lateness_ns: i64) {
        self.clock = self.clock.max(now);
        if now > self.now {
            self.now = now;
        }
        if self.now.since(self.last_sweep) < SWEEP_INTERVAL_NS {
            return;
        }
        self.last_sweep = self.now;
        let now = self.now;
        let expired: Vec<IpPortTuple> = self
            .conns
            .iter()
            .chain(self.closed.iter().map(|(k, c)| (k, &**c)))
            .filter(|(_, c)| now.since(c.last_seen.max(c.last_active)) > c.timeout_ns + lateness_ns)
            .map(|(k, _)| *k)
            .collect();
        for key in expired {
            self.expire(out, &key, now);
        }
    }

    fn expire(&mut self, out: &mut EventSink, key: &IpPortTuple, now: Ts) {
        let Some(mut conn) = self
            .conns
            .remove(key)
            .or_else(|| self.closed.remove(key).map(|c| *c))
        else {
            return;
        };
        self.stats.expired += 1;
        let Tcp {
            analyzers,
            stats,
            next_id,
            ..
        } = self;
        let mut ctx = Ctx {
            analyzers,
            stats,
            next_id,
            out,
        };
        conn.end(&mut ctx, now);
    }

    /// End of the capture: every connection ends as if it had gone idle. Packet time is moved
    /// past each connection's timeout, so what analyzers publish matches a live run that kept
    /// going.
    pub fn flush(&mut self, out: &mut EventSink) {
        let mut keys: Vec<(u64, IpPortTuple)> = self
            .conns
            .iter()
            .chain(self.closed.iter().map(|(k, c)| (k, &**c)))
            .map(|(k, c)| (c.tcptuple.stream_id, *k))
            .collect();
        keys.sort_unstable_by_key(|(id, _)| *id);
        for (_, key) in keys {
            let at = self
                .conns
                .get(&key)
                .or_else(|| self.closed.get(&key).map(|c| &**c))
                .map(|c| {
                    c.last_seen
                        .add(std::time::Duration::from_nanos(c.timeout_ns as u64))
                });
            self.expire(out, &key, at.unwrap_or(self.now));
        }
    }
}

impl Connection {
    /// A SYN on this closed connection's tuple starts a new connection when its sequence number
    /// is beyond the old stream's end in that direction (a reused port picks a new initial
    /// sequence number ahead of the old one, RFC 6528); an older SYN is a stale copy.
    fn is_new_syn(&self, dir: TcpDirection, hdr: &TcpHeader) -> bool {
        let last = self.dirs[dir.index()].last_seq;
        last == 0 || seq_diff(hdr.seq, last) > 0
    }

    /// One segment in direction `dir`: Packetbeat's retransmission, overlap and gap rules, with
    /// reordered segments held until the hole fills.
    #[allow(clippy::too_many_arguments)]
    fn segment(
        &mut self,
        ctx: &mut Ctx,
        dir: TcpDirection,
        created: bool,
        ts: Ts,
        tuple: IpPortTuple,
        hdr: &TcpHeader,
        payload: &[u8],
    ) {
        // The peer acknowledging data beyond a hole means the capture lost that data.
        if hdr.has_ack() {
            let other = dir.other();
            let od = &self.dirs[other.index()];
            if !od.held.is_empty() && seq_diff(hdr.ack, od.last_seq) > 0 {
                self.flush_held(ctx, other);
            }
        }
        if payload.is_empty() && !hdr.fin() {
            return;
        }
        ctx.stats.payload_bytes += payload.len() as u64;
        let d = &mut self.dirs[dir.index()];
        let last = d.last_seq;
        let start = hdr.seq;
        let end = start.wrapping_add(payload.len() as u32);
        let mut payload = payload;

        if !payload.is_empty() && last != 0 {
            if seq_diff(end, last) <= 0 {
                ctx.stats.retransmissions += 1;
                return;
            }
            let diff = seq_diff(last, start);
            if diff < 0 && !created {
                // A hole before this segment: hold it and wait for the missing bytes.
                if d.held.len() < MAX_OUT_OF_ORDER_SEGMENTS
                    && d.held_bytes + payload.len() <= MAX_OUT_OF_ORDER_BYTES
                    && budget::try_reserve(payload.len())
                {
                    hold(d, start, ts, tuple, payload, hdr.fin());
                    ctx.stats.reordered += 1;
                    return;
                }
                // Buffer full: give up on the hole, deliver what is held, then this segment
                // (the same trim-or-gap rules as for held segments; this path is rare).
                self.flush_held(ctx, dir);
                let seg = Held {
                    seq: start,
                    ts,
                    tuple,
                    payload: payload.to_vec(),
                    fin: hdr.fin(),
                };
                self.deliver_held(ctx, dir, seg);
                return;
            } else if diff > 0 {
                payload = &payload[diff as usize..];
                ctx.stats.overlaps += 1;
            }
        } else if payload.is_empty() && !d.held.is_empty() {
            // A FIN behind a hole waits with the held data (no bytes: nothing to reserve).
            hold(d, start, ts, tuple, payload, true);
            return;
        }

        // Packetbeat records the end of this segment (a bare FIN does not move it back).
        if !(payload.is_empty() && last != 0 && seq_diff(end, last) < 0) {
            self.dirs[dir.index()].last_seq = end;
        }
        self.deliver(ctx, dir, ts, tuple, payload, hdr.fin());
        self.drain_in_order(ctx, dir);
    }

    /// Hands payload and FIN to the analyzer. Data on a closed connection starts a new parser.
    fn deliver(
        &mut self,
        ctx: &mut Ctx,
        dir: TcpDirection,
        ts: Ts,
        tuple: IpPortTuple,
        payload: &[u8],
        fin: bool,
    ) {
        let tt = self.tcptuple;
        if !payload.is_empty() {
            let parser = self
                .parser
                .get_or_insert_with(|| ctx.analyzers[self.analyzer].new_connection(&tt));
            parser.parse(ctx.out, &tt, dir, &TcpPacket { ts, tuple, payload });
        }
        if fin {
            if let Some(parser) = self.parser.as_mut() {
                parser.received_fin(ctx.out, &tt, dir, ts);
            }
        }
    }

    fn gap(&mut self, ctx: &mut Ctx, dir: TcpDirection, nbytes: usize, ts: Ts) {
        ctx.stats.gaps += 1;
        let tt = self.tcptuple;
        let Some(parser) = self.parser.as_mut() else {
            return;
        };
        if parser.gap_in_stream(ctx.out, &tt, dir, nbytes, ts) {
            // Drop the analyzer's state and give the connection a new stream id, as Packetbeat does.
            ctx.stats.dropped_because_of_gaps += 1;
            *ctx.next_id += 1;
            self.tcptuple.stream_id = *ctx.next_id;
            let tt = self.tcptuple;
            self.parser = Some(ctx.analyzers[self.analyzer].new_connection(&tt));
        }
    }

    /// Delivers held segments that the stream has now reached.
    fn drain_in_order(&mut self, ctx: &mut Ctx, dir: TcpDirection) {
        loop {
            let d = &mut self.dirs[dir.index()];
            let Some(first) = d.held.first() else { return };
            if seq_diff(first.seq, d.last_seq) > 0 {
                return; // still a hole
            }
            let h = d.held.remove(0);
            d.held_bytes -= h.payload.len();
            budget::release(h.payload.len());
            self.deliver_held(ctx, dir, h);
        }
    }

    /// Delivers everything held in `dir`, declaring each remaining hole a gap.
    fn flush_held(&mut self, ctx: &mut Ctx, dir: TcpDirection) {
        let held = std::mem::take(&mut self.dirs[dir.index()].held);
        budget::release(std::mem::take(&mut self.dirs[dir.index()].held_bytes));
        for h in held {
            self.deliver_held(ctx, dir, h);
        }
    }

    fn deliver_held(&mut self, ctx: &mut Ctx, dir: TcpDirection, h: Held) {
        let last = self.dirs[dir.index()].last_seq;
        let end = h.seq.wrapping_add(h.payload.len() as u32);
        let mut payload = &h.payload[..];
        if !payload.is_empty() {
            if seq_diff(end, last) <= 0 {
                ctx.stats.retransmissions += 1;
                if h.fin {
                    self.deliver(ctx, dir, h.ts, h.tuple, &[], true);
                }
                return;
            }
            let diff = seq_diff(last, h.seq);
            if diff < 0 {
                self.gap(ctx, dir, (-diff) as usize, h.ts);
            } else if diff > 0 {
                payload = &payload[diff as usize..];
                ctx.stats.overlaps += 1;
            }
            self.dirs[dir.index()].last_seq = end;
        }
        self.deliver(ctx, dir, h.ts, h.tuple, payload, h.fin);
    }

    /// Both sides closed, or a reset: the analyzer ends now; the entry stays as a tombstone.
    fn close(&mut self, ctx: &mut Ctx, ts: Ts) {
        ctx.stats.closed += 1;
        self.end(ctx, ts);
    }

    /// Held data is delivered (holes become gaps) and the analyzer reports what is pending.
    fn end(&mut self, ctx: &mut Ctx, now: Ts) {
        for dir in [TcpDirection::Original, TcpDirection::Reverse] {
            self.flush_held(ctx, dir);
        }
        let tt = self.tcptuple;
        if let Some(mut parser) = self.parser.take() {
            parser.expired(ctx.out, &tt, now);
        }
    }
}

/// Holds a segment ahead of a hole; its bytes were reserved from the worker's budget.
fn hold(d: &mut Direction, seq: u32, ts: Ts, tuple: IpPortTuple, payload: &[u8], fin: bool) {
    d.held_bytes += payload.len();
    let pos = d
        .held
        .iter()
        .position(|h| seq_diff(h.seq, seq) > 0)
        .unwrap_or(d.held.len());
    d.held.insert(
        pos,
        Held {
            seq,
            ts,
            tuple,
            payload: payload.to_vec(),
            fin,
        },
    );
}

#[cfg(test)]
mod tests;
