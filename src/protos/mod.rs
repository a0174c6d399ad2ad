//! Protocol analyzers and their registry.
//!
//! The shape mirrors Packetbeat's `protos` package. Analyzers are built on the app-layer
//! framework ([`app`]; "Adding an analyzer" there, and the [`template`] analyzer to copy) and
//! listed in one table ([`registry`]). A [`ProtocolModule`] is one configured protocol (its
//! options parsed and validated); it creates analyzer instances, one per packet worker, so
//! workers share nothing on the packet path:
//! - a [`TcpAnalyzer`] gets a fresh [`TcpConnectionParser`] for each connection the TCP layer
//!   assigns to it (by port), and that parser receives the connection's payload in order
//!   (`parse`), FINs (`received_fin`), gaps (`gap_in_stream`) and its end (`expired`);
//! - a [`UdpAnalyzer`] gets every datagram on its ports (`parse_udp`).
//!
//! Analyzers publish into an [`EventSink`]; they never block and never lock.

pub mod amqp;
pub mod app;
pub mod cassandra;
pub mod dhcpv4;
pub mod dns;
pub mod http;
pub mod icmp;
pub mod memcache;
pub mod mongodb;
pub mod mysql;
pub mod nfs;
pub mod pgsql;
pub mod redis;
pub mod registry;
pub mod sip;
pub mod tcp;
pub mod template;
#[cfg(test)]
pub mod testing;
pub mod thrift;
pub mod tls;
pub mod udp;

use crate::common::{IpPortTuple, TcpTuple, Ts};
use crate::publish::EventSink;
use std::net::IpAddr;
use std::time::Duration;

pub use icmp::layer::IcmpLayer;
pub use registry::{build_modules, is_implemented, ProtocolModules, KNOWN_PROTOCOLS};

/// Packetbeat's `protos.DefaultTransactionExpiration`.
pub const DEFAULT_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(10);

/// Which way a segment travels relative to the first packet the TCP layer saw on the connection
/// (`TCPDirectionOriginal` / `TCPDirectionReverse`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TcpDirection {
    Original = 0,
    Reverse = 1,
}

impl TcpDirection {
    pub fn index(self) -> usize {
        self as usize
    }
    pub fn other(self) -> TcpDirection {
        match self {
            TcpDirection::Original => TcpDirection::Reverse,
            TcpDirection::Reverse => TcpDirection::Original,
        }
    }
}

/// One TCP segment's payload as an analyzer sees it (retransmissions removed, overlaps trimmed).
#[derive(Debug, Clone, Copy)]
pub struct TcpPacket<'a> {
    pub ts: Ts,
    /// This packet's addresses (source = sender).
    pub tuple: IpPortTuple,
    pub payload: &'a [u8],
}

/// One UDP datagram.
#[derive(Debug, Clone, Copy)]
pub struct UdpPacket<'a> {
    pub ts: Ts,
    pub tuple: IpPortTuple,
    pub payload: &'a [u8],
}

/// Options every protocol has (`protos.ProtocolCommon` in Packetbeat).
#[derive(Debug, Clone)]
pub struct CommonOptions {
    pub ports: Vec<u16>,
    pub send_request: bool,
    pub send_response: bool,
    pub transaction_timeout: Duration,
}

/// A configured protocol module. Created once from the config, shared by all workers.
pub trait ProtocolModule: Send + Sync {
    /// Packetbeat's protocol name (`http`, `dns`, …); also `type` and `network.protocol`.
    fn name(&self) -> &'static str;
    fn tcp_ports(&self) -> &[u16] {
        &[]
    }
    fn udp_ports(&self) -> &[u16] {
        &[]
    }
    /// A TCP analyzer for one worker, if the protocol runs over TCP.
    fn new_tcp(&self) -> Option<Box<dyn TcpAnalyzer>> {
        None
    }
    /// A UDP analyzer for one worker, if the protocol runs over UDP.
    fn new_udp(&self) -> Option<Box<dyn UdpAnalyzer>> {
        None
    }
    /// An ICMP analyzer for one worker, if the protocol analyses ICMP (only `icmp` does).
    fn new_icmp(&self) -> Option<Box<dyn IcmpAnalyzer>> {
        None
    }
    /// The protocol's counters across workers, for the exit summary.
    fn counters(&self) -> Option<&app::AppCounters> {
        None
    }
}

/// A protocol's TCP side within one worker.
pub trait TcpAnalyzer: Send {
    fn name(&self) -> &'static str;
    /// Idle time after which the TCP layer expires a connection of this protocol
    /// (Packetbeat uses the protocol's `transaction_timeout`).
    fn connection_timeout(&self) -> Duration;
    /// State for a new connection. `conn` is the tuple of the connection's first packet.
    fn new_connection(&mut self, conn: &TcpTuple) -> Box<dyn TcpConnectionParser>;
}

/// Per-connection analyzer state. All calls for one connection come in packet order.
pub trait TcpConnectionParser: Send {
    /// In-order payload of one segment.
    fn parse(&mut self, out: &mut EventSink, conn: &TcpTuple, dir: TcpDirection, pkt: &TcpPacket);
    /// The sender of `dir` closed its side.
    fn received_fin(&mut self, out: &mut EventSink, conn: &TcpTuple, dir: TcpDirection, ts: Ts);
    /// `nbytes` of the `dir` stream were never seen. Return `true` to drop this connection's
    /// state (the TCP layer then starts a fresh parser with a new stream id).
    fn gap_in_stream(
        &mut self,
        out: &mut EventSink,
        conn: &TcpTuple,
        dir: TcpDirection,
        nbytes: usize,
        ts: Ts,
    ) -> bool;
    /// The connection is gone: idle timeout, or the end of the capture. Publish what is
    /// complete; report what is pending as Packetbeat would on expiry.
    fn expired(&mut self, out: &mut EventSink, conn: &TcpTuple, now: Ts);
}

/// A protocol's UDP side within one worker.
pub trait UdpAnalyzer: Send {
    fn name(&self) -> &'static str;
    fn parse_udp(&mut self, out: &mut EventSink, pkt: &UdpPacket);
    /// Packet time moved on to `now`: expire transactions older than the timeout.
    fn tick(&mut self, _out: &mut EventSink, _now: Ts) {}
    /// End of the capture: publish what is still pending as on expiry.
    fn flush(&mut self, _out: &mut EventSink, _now: Ts) {}
}

/// The packet-time clock a layer (UDP, ICMP) runs its analyzers' transaction timeouts by: they
/// are asked to expire transactions every `INTERVAL_NS` of capture time.
#[derive(Debug, Default, Clone, Copy)]
pub struct TickClock {
    now: Ts,
    last_tick: Ts,
}

impl TickClock {
    pub const INTERVAL_NS: i64 = 100_000_000;

    /// The latest packet time seen.
    pub fn now(&self) -> Ts {
        self.now
    }

    /// A packet's time: the clock only moves forward.
    pub fn observe(&mut self, ts: Ts) {
        if ts > self.now {
            self.now = ts;
        }
    }

    /// Moves to `ts` and says whether the analyzers are due a tick.
    pub fn tick_due(&mut self, ts: Ts) -> bool {
        self.observe(ts);
        if self.now.since(self.last_tick) >= Self::INTERVAL_NS {
            self.last_tick = self.now;
            return true;
        }
        false
    }
}

/// Which analyzer owns each port: a flat table, so the per-packet lookup is one load.
#[derive(Clone)]
pub struct PortMap {
    /// Analyzer index + 1 per port; 0 = no analyzer.
    slots: Box<[u8]>,
}

impl Default for PortMap {
    fn default() -> Self {
        PortMap {
            slots: vec![0u8; 65536].into_boxed_slice(),
        }
    }
}

impl PortMap {
    pub fn insert(&mut self, port: u16, analyzer: usize) {
        assert!(analyzer < 255, "at most 254 analyzers per transport");
        self.slots[port as usize] = analyzer as u8 + 1;
    }

    pub fn get(&self, port: u16) -> Option<usize> {
        match self.slots[port as usize] {
            0 => None,
            n => Some(n as usize - 1),
        }
    }

    /// Packetbeat's rule: the source port decides first, then the destination port.
    pub fn for_tuple(&self, src_port: u16, dst_port: u16) -> Option<usize> {
        self.get(src_port).or_else(|| self.get(dst_port))
    }
}

/// One ICMPv4 or ICMPv6 message as the decoder delivers it.
#[derive(Debug, Clone, Copy)]
pub struct IcmpPacket<'a> {
    pub ts: Ts,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// 4 or 6.
    pub version: u8,
    pub icmp_type: u8,
    pub code: u8,
    /// The bytes after type, code and checksum.
    pub body: &'a [u8],
    pub vlans: [u16; 2],
    pub ip_len: usize,
}

impl<'a> IcmpPacket<'a> {
    /// The ICMP message of a decoded packet (`None` for other transports).
    pub fn from_decoded(pkt: &crate::decoder::Decoded<'a>) -> Option<IcmpPacket<'a>> {
        use crate::decoder::L4;
        let (version, icmp_type, code, body) = match pkt.l4 {
            L4::Icmp4 {
                icmp_type,
                code,
                body,
            } => (4, icmp_type, code, body),
            L4::Icmp6 {
                icmp_type,
                code,
                body,
            } => (6, icmp_type, code, body),
            _ => return None,
        };
        Some(IcmpPacket {
            ts: pkt.ts,
            src: pkt.src,
            dst: pkt.dst,
            version,
            icmp_type,
            code,
            body,
            vlans: pkt.vlans,
            ip_len: pkt.ip_len,
        })
    }
}

/// A protocol's ICMP side within one worker.
pub trait IcmpAnalyzer: Send {
    fn name(&self) -> &'static str;
    fn process(&mut self, out: &mut EventSink, pkt: &IcmpPacket);
    /// Packet time moved on to `now`: expire transactions older than the timeout.
    fn tick(&mut self, _out: &mut EventSink, _now: Ts) {}
    /// End of the capture: publish what is still pending as on expiry.
    fn flush(&mut self, _out: &mut EventSink, _now: Ts) {}
}
