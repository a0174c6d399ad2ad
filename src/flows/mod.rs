//! Network flows (`packetbeat.flows`), as Packetbeat's `flows` package reports them.
//!
//! What Packetbeat does: every decoded packet, analysed or not, builds a flow id from its layers
//! (Ethernet addresses, 802.1Q VLAN ids, IPv4/IPv6 addresses, TCP/UDP ports, and the TCP
//! layer's connection id when an analyzer follows the connection; see [`flowid`]). The flow of
//! that id, in a table, counts the packet and its length on the wire (`ci.Length`) in the
//! direction of the packet: the first packet's sender is `source`. ICMP packets also record
//! their type and code (the flow is looked up before the ICMP id is added, so ICMP flows are
//! keyed by their addresses only). Non-IP Ethernet frames make MAC-only flows; IPv4 fragments
//! are counted once, when the datagram is complete.
//!
//! A worker reports on a tick: every `period` all flows (`flow.final: false`), every `timeout`
//! the flows idle for longer than `timeout` (`flow.final: true`, removed); `period: -1s` reports
//! only those. When Packetbeat stops, every remaining flow is reported as final. The ticks run
//! every gcd(timeout, period) (at least 1s), the first aligned on a multiple of 10 seconds.
//!
//! What this module does differently: the ticks and every flow time run on *packet time*
//! (Packetbeat uses the wall clock), so a file replayed with `-t` gives the flows of the live
//! capture, on every run alike; the end of a file is Packetbeat's stop. Each packet worker has
//! its own table (the dispatcher gives all packets of a flow to one worker), with a bound on
//! its size, `packetbeat.flows.max_flows` (our option): when it is full, the least recently
//! seen eighth of its flows is reported as final and dropped, and counted (`evicted`).
//!
//! On the packet path a flow costs one hash lookup with the stack-built key in place; no
//! allocation (new flows excepted), no lock. Several workers give the same flows as one, but
//! for the connection id inside the `flow.id` of analysed TCP connections, which is the
//! worker's TCP layer's own count (Packetbeat's is over the whole capture).

pub mod event;
pub mod flowid;

use crate::common::Ts;
use crate::config::FlowsConfig;
use crate::publish::EventSink;
use flowid::{Dir, FlowId, FlowKey};
use rustc_hash::FxHashMap;

/// Flows a worker's table holds by default (`packetbeat.flows.max_flows`).
pub const DEFAULT_MAX_FLOWS: usize = 1_000_000;

/// Reports collected before a tick or an eviction hands them to its drain.
pub const DRAIN_EVERY: usize = 256;

/// Where a tick or an eviction hands its reports as they pile up: the worker finalises, encodes
/// and queues them, so a table's reports are never all in memory at once.
pub type Drain<'a> = &'a mut dyn FnMut(&mut EventSink);

/// The tick alignment of Packetbeat's flows worker (`align = 10` seconds).
const ALIGN_NS: i64 = 10_000_000_000;

/// The reporting settings, validated as Packetbeat validates them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub timeout_ns: i64,
    /// `None` for `period <= 0` (report only when a flow ends).
    pub period_ns: Option<i64>,
    pub delta: bool,
    pub max_flows: usize,
}

impl Settings {
    /// `NewFlows`/`newFlowsWorker`'s checks, with their error messages.
    pub fn from_config(c: &FlowsConfig) -> anyhow::Result<Settings> {
        let timeout_ns = c.timeout.0.as_nanos().min(i64::MAX as u128) as i64;
        if timeout_ns < 1_000_000_000 {
            anyhow::bail!("packetbeat.flows: timeout must be >= 1s");
        }
        let period = c.period.value.as_nanos().min(i64::MAX as u128) as i64;
        let period_ns = if c.period.negative || period == 0 {
            None
        } else if period < 1_000_000_000 {
            anyhow::bail!("packetbeat.flows: report period must be -1 or >= 1s");
        } else {
            Some(period)
        };
        Ok(Settings {
            timeout_ns,
            period_ns,
            delta: c.enable_delta_flow_reports,
            max_flows: c.max_flows.max(1),
        })
    }

    /// `newFlowsWorker`: the tick, and every how many ticks timeouts are checked and flows
    /// reported (`-1`: never).
    fn ticks(&self) -> (i64, i64, i64) {
        match self.period_ns {
            None => (self.timeout_ns, 1, -1),
            Some(p) => {
                let tick = gcd(self.timeout_ns, p).max(1_000_000_000);
                ((tick), (self.timeout_ns / tick).max(1), (p / tick).max(1))
            }
        }
    }
}

fn gcd(mut a: i64, mut b: i64) -> i64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// One direction's counters (`flowStats`): only what was set is reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirStats {
    pub packets: u64,
    pub bytes: u64,
    /// The last ICMPv4 / ICMPv6 `type << 8 | code` seen in this direction.
    pub icmp4: Option<u16>,
    pub icmp6: Option<u16>,
}

/// A bidirectional flow (`biFlow`).
#[derive(Debug, Clone)]
pub struct Flow {
    /// The direction of the packet that created the flow: its sender is `source`.
    pub dir: Dir,
    pub created: Ts,
    pub last: Ts,
    /// `[source → destination, destination → source]`, `None` until a packet went that way.
    pub stats: [Option<DirStats>; 2],
    /// Creation order (the least recently seen flow goes first when the table is full).
    seq: u64,
}

/// What the packet adds besides one packet and its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpTypeCode {
    None,
    V4(u16),
    V6(u16),
}

/// Counters of a worker's flow table.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FlowStats {
    pub flows: u64,
    pub reported: u64,
    pub evicted: u64,
}

/// The flow table and reporter of one packet worker.
pub struct Flows {
    settings: Settings,
    tick_ns: i64,
    ticks_timeout: i64,
    ticks_period: i64,
    n_timeout: i64,
    n_period: i64,
    /// Packet time of the next tick; zero until the first clock value.
    next_tick: Ts,
    /// The capture's clock, from the ticks (the same in every worker).
    clock: Ts,
    /// How far behind the clock packets have been stamped so far (merged captures).
    lateness_ns: i64,
    /// The flows, each stored with its key: one place in memory per packet's lookup.
    index: FxHashMap<FlowKey, Flow>,
    seq: u64,
    pub stats: FlowStats,
}

impl Flows {
    pub fn new(settings: Settings) -> Flows {
        let (tick_ns, ticks_timeout, ticks_period) = settings.ticks();
        Flows {
            settings,
            tick_ns,
            ticks_timeout,
            ticks_period,
            n_timeout: ticks_timeout,
            n_period: ticks_period,
            next_tick: Ts::ZERO,
            clock: Ts::ZERO,
            lateness_ns: 0,
            index: FxHashMap::default(),
            seq: 0,
            stats: FlowStats::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Counts one packet of `wire_len` bytes (`statPackets`, `statBytes`, and the ICMP type
    /// and code) on the flow of `id`. Ids without any layer are not counted.
    pub fn record(
        &mut self,
        out: &mut EventSink,
        id: &mut FlowId,
        ts: Ts,
        wire_len: u64,
        icmp: IcmpTypeCode,
    ) {
        self.record_draining(out, id, ts, wire_len, icmp, &mut |_| {})
    }

    /// [`Flows::record`], handing the reports of an eviction to `drain` every
    /// [`DRAIN_EVERY`] events (see [`Flows::tick_draining`]).
    pub fn record_draining(
        &mut self,
        out: &mut EventSink,
        id: &mut FlowId,
        ts: Ts,
        wire_len: u64,
        icmp: IcmpTypeCode,
        drain: Drain<'_>,
    ) {
        if id.flags() == 0 {
            return;
        }
        let flow = match self.index.get_mut(id.key_bytes()) {
            Some(f) => f,
            None => {
                if self.index.len() >= self.settings.max_flows {
                    self.evict(out, drain);
                }
                self.seq += 1;
                self.stats.flows += 1;
                let flow = Flow {
                    dir: id.dir,
                    created: ts,
                    last: ts,
                    stats: [None, None],
                    seq: self.seq,
                };
                self.index.entry(id.key()).or_insert(flow)
            }
        };
        flow.last = flow.last.max(ts);
        let d = usize::from(flow.dir != id.dir);
        let s = flow.stats[d].get_or_insert_with(DirStats::default);
        s.packets += 1;
        s.bytes += wire_len;
        match icmp {
            IcmpTypeCode::None => {}
            IcmpTypeCode::V4(tc) => s.icmp4 = Some(tc),
            IcmpTypeCode::V6(tc) => s.icmp6 = Some(tc),
        }
    }

    /// The table is full: the least recently seen eighth goes, reported as final.
    fn evict(&mut self, out: &mut EventSink, drain: Drain<'_>) {
        let mut seen: Vec<(Ts, u64)> = self.index.values().map(|f| (f.last, f.seq)).collect();
        if seen.is_empty() {
            return;
        }
        let n = (seen.len() / 8).max(1);
        let (_, &mut limit, _) = seen.select_nth_unstable(n - 1);
        let (now, delta, stats) = (self.clock, self.settings.delta, &mut self.stats);
        self.index.retain(|k, f| {
            if (f.last, f.seq) > limit {
                return true;
            }
            stats.evicted += 1;
            report(out, drain, stats, delta, k, f, now, true);
            false
        });
    }

    /// `flowsProcessor.execute` at packet time `ts`.
    fn execute(
        &mut self,
        out: &mut EventSink,
        drain: Drain<'_>,
        ts: Ts,
        check_timeout: bool,
        reports: bool,
    ) {
        if !check_timeout && !reports {
            return;
        }
        // A capture whose timestamps run backwards delays the end by the worst lateness
        // seen, as the TCP layer does, so a flow is not ended by other flows' later stamps.
        let idle_ns = self.settings.timeout_ns + self.lateness_ns;
        let (delta, stats) = (self.settings.delta, &mut self.stats);
        self.index.retain(|k, f| {
            if check_timeout && ts.since(f.last) > idle_ns {
                report(out, drain, stats, delta, k, f, ts, true);
                return false;
            }
            if reports {
                report(out, drain, stats, delta, k, f, ts, false);
            }
            true
        });
    }

    /// The capture's clock moved on to `now`, packets having been stamped up to `lateness_ns`
    /// behind it (the same values in every worker): runs the ticks due by then.
    pub fn tick(&mut self, out: &mut EventSink, now: Ts, lateness_ns: i64) {
        self.tick_draining(out, now, lateness_ns, &mut |_| {})
    }

    /// [`Flows::tick`], handing the reports to `drain` every [`DRAIN_EVERY`] events: a tick
    /// reports every flow of the table, which may be a million events, and the worker sends
    /// them on in batches rather than holding them all.
    pub fn tick_draining(
        &mut self,
        out: &mut EventSink,
        now: Ts,
        lateness_ns: i64,
        drain: Drain<'_>,
    ) {
        self.lateness_ns = self.lateness_ns.max(lateness_ns);
        if now <= self.clock {
            return;
        }
        self.clock = now;
        if self.next_tick.is_zero() {
            // The worker starts on the next multiple of 10 seconds, then ticks.
            let aligned = (now.nanos() + ALIGN_NS - 1).div_euclid(ALIGN_NS) * ALIGN_NS;
            self.next_tick = Ts(aligned.saturating_add(self.tick_ns));
        }
        while self.next_tick <= now {
            if self.is_empty() {
                // Nothing to report: skip the idle ticks at once, keeping the counters' phase.
                let k = (now.since(self.next_tick) / self.tick_ns) + 1;
                self.n_timeout = (self.n_timeout - 1 - k).rem_euclid(self.ticks_timeout) + 1;
                if self.ticks_period > 0 {
                    self.n_period = (self.n_period - 1 - k).rem_euclid(self.ticks_period) + 1;
                }
                self.next_tick = Ts(self.next_tick.nanos().saturating_add(k * self.tick_ns));
                break;
            }
            let at = self.next_tick;
            self.n_timeout -= 1;
            self.n_period -= 1;
            let check_timeout = self.n_timeout == 0;
            if check_timeout {
                self.n_timeout = self.ticks_timeout;
            }
            let reports = self.ticks_period > 0 && self.n_period == 0;
            if self.n_period <= 0 {
                self.n_period = self.ticks_period;
            }
            self.execute(out, drain, at, check_timeout, reports);
            self.next_tick = Ts(at.nanos().saturating_add(self.tick_ns));
        }
    }

    /// End of the capture (Packetbeat's stop): every flow is reported as final.
    pub fn flush(&mut self, out: &mut EventSink) {
        self.flush_draining(out, &mut |_| {})
    }

    /// [`Flows::flush`], handing the reports to `drain` every [`DRAIN_EVERY`] events, so a
    /// big table's final reports leave in batches rather than all in memory at once.
    pub fn flush_draining(&mut self, out: &mut EventSink, drain: Drain<'_>) {
        let (now, delta, stats) = (self.clock, self.settings.delta, &mut self.stats);
        for (k, mut f) in self.index.drain() {
            report(out, drain, stats, delta, &k, &mut f, now, true);
        }
    }
}

/// Publishes one report of a flow; with `enable_delta_flow_reports`, its counts start again.
#[allow(clippy::too_many_arguments)]
fn report(
    out: &mut EventSink,
    drain: Drain<'_>,
    stats: &mut FlowStats,
    delta: bool,
    key: &FlowKey,
    f: &mut Flow,
    now: Ts,
    final_: bool,
) {
    stats.reported += 1;
    // A flow's report is never stamped before its last packet (the capture's clock comes
    // from the ticks, which may lag this worker's packets by one tick).
    out.publish(event::flow_event(key, f, now.max(f.last), final_));
    if out.len() >= DRAIN_EVERY {
        drain(out);
    }
    if delta {
        // `enable_delta_flow_reports`: each report counts what came since the last one.
        for s in f.stats.iter_mut().flatten() {
            s.packets = 0;
            s.bytes = 0;
        }
    }
}

#[cfg(test)]
mod tests;

/// The link layers of a frame as Packetbeat's decoder adds them to the flow id: the Ethernet
/// addresses, then each 802.1Q/802.1ad tag. Returns whether gopacket would go on to an IP
/// layer (an IPv4 or IPv6 EtherType after the tags).
pub fn add_link_layers(id: &mut FlowId, link: crate::decoder::LinkType, frame: &[u8]) -> bool {
    use crate::decoder::LinkType;
    let (mut et, mut rest) = match link {
        LinkType::Ethernet => {
            let (Some(dst), Some(src), Some(et)) = (
                frame.get(0..6).and_then(|s| <&[u8; 6]>::try_from(s).ok()),
                frame.get(6..12).and_then(|s| <&[u8; 6]>::try_from(s).ok()),
                frame.get(12..14),
            ) else {
                return false;
            };
            id.add_eth(src, dst);
            (u16::from_be_bytes([et[0], et[1]]), &frame[14..])
        }
        LinkType::LinuxSll => match frame.get(14..16) {
            Some(et) => (u16::from_be_bytes([et[0], et[1]]), &frame[16..]),
            None => return false,
        },
        // No link addresses in Packetbeat's flow id for these.
        _ => return true,
    };
    // gopacket decodes 0x8100 and 0x88a8 as Dot1Q.
    while et == 0x8100 || et == 0x88a8 {
        let Some(tag) = rest.get(0..4) else {
            return false;
        };
        id.add_vlan(u16::from_be_bytes([tag[0], tag[1]]) & 0x0fff);
        et = u16::from_be_bytes([tag[2], tag[3]]);
        rest = &rest[4..];
    }
    et == 0x0800 || et == 0x86dd
}

/// The IP layer of a decoded packet, and whether gopacket decodes its transport layer: IPv6
/// extension headers other than hop-by-hop (which gopacket reads as part of the IPv6 header)
/// end the decoding there.
pub fn add_ip_layer(id: &mut FlowId, pkt: &crate::decoder::Decoded, ip: &[u8]) -> bool {
    use std::net::IpAddr;
    match (pkt.src, pkt.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            id.add_ipv4(&s.octets(), &d.octets());
            true
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            id.add_ipv6(&s.octets(), &d.octets());
            let next = match ip.get(6) {
                Some(0) => ip.get(40).copied(),
                n => n.copied(),
            };
            matches!(next, Some(6 | 17 | 58))
        }
        _ => false,
    }
}

/// The IP bytes of a frame, for [`add_ip_layer`].
pub fn ip_bytes(link: crate::decoder::LinkType, frame: &[u8]) -> &[u8] {
    crate::decoder::link::strip(link, frame)
        .map(|(ip, _)| ip)
        .unwrap_or(&[])
}
