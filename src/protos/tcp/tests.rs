use super::*;
use crate::protos::{ProtocolModule, TcpAnalyzer};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the recording analyzer saw, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Call {
    Data(u64, TcpDirection, Vec<u8>),
    Fin(u64, TcpDirection),
    Gap(u64, TcpDirection, usize),
    Expired(u64),
}

type Log = Arc<Mutex<Vec<Call>>>;

struct Recorder {
    log: Log,
    drop_on_gap: bool,
}

struct RecConn {
    log: Log,
    drop_on_gap: bool,
}

impl TcpConnectionParser for RecConn {
    fn parse(&mut self, _: &mut EventSink, conn: &TcpTuple, dir: TcpDirection, pkt: &TcpPacket) {
        self.log
            .lock()
            .unwrap()
            .push(Call::Data(conn.stream_id, dir, pkt.payload.to_vec()));
    }
    fn received_fin(&mut self, _: &mut EventSink, conn: &TcpTuple, dir: TcpDirection, _: Ts) {
        self.log
            .lock()
            .unwrap()
            .push(Call::Fin(conn.stream_id, dir));
    }
    fn gap_in_stream(
        &mut self,
        _: &mut EventSink,
        conn: &TcpTuple,
        dir: TcpDirection,
        n: usize,
        _: Ts,
    ) -> bool {
        self.log
            .lock()
            .unwrap()
            .push(Call::Gap(conn.stream_id, dir, n));
        self.drop_on_gap
    }
    fn expired(&mut self, _: &mut EventSink, conn: &TcpTuple, _: Ts) {
        self.log.lock().unwrap().push(Call::Expired(conn.stream_id));
    }
}

impl TcpAnalyzer for Recorder {
    fn name(&self) -> &'static str {
        "rec"
    }
    fn connection_timeout(&self) -> Duration {
        Duration::from_secs(10)
    }
    fn new_connection(&mut self, _: &TcpTuple) -> Box<dyn TcpConnectionParser> {
        Box::new(RecConn {
            log: self.log.clone(),
            drop_on_gap: self.drop_on_gap,
        })
    }
}

struct RecModule {
    log: Log,
    drop_on_gap: bool,
}

impl ProtocolModule for RecModule {
    fn name(&self) -> &'static str {
        "rec"
    }
    fn tcp_ports(&self) -> &[u16] {
        &[80]
    }
    fn new_tcp(&self) -> Option<Box<dyn TcpAnalyzer>> {
        Some(Box::new(Recorder {
            log: self.log.clone(),
            drop_on_gap: self.drop_on_gap,
        }))
    }
}

fn setup(drop_on_gap: bool) -> (Tcp, Log) {
    let log: Log = Arc::default();
    let modules = ProtocolModules {
        modules: vec![Arc::new(RecModule {
            log: log.clone(),
            drop_on_gap,
        })],
        reporters: Default::default(),
    };
    (Tcp::new(&modules), log)
}

const CLIENT: (&str, u16) = ("10.0.0.1", 40000);
const SERVER: (&str, u16) = ("10.0.0.2", 80);

fn seg(tcp: &mut Tcp, to_server: bool, seq: u32, ack: u32, flags: u8, payload: &[u8], t_ms: i64) {
    let (a, b) = if to_server {
        (CLIENT, SERVER)
    } else {
        (SERVER, CLIENT)
    };
    let tuple = IpPortTuple::new(a.0.parse().unwrap(), a.1, b.0.parse().unwrap(), b.1);
    let hdr = TcpHeader {
        src_port: a.1,
        dst_port: b.1,
        seq,
        ack,
        flags,
    };
    tcp.process(
        &mut EventSink::new(),
        Ts(t_ms * 1_000_000),
        tuple,
        &hdr,
        payload,
    );
}

const A: u8 = TcpHeader::ACK;
const O: TcpDirection = TcpDirection::Original;
const R: TcpDirection = TcpDirection::Reverse;

fn calls(log: &Log) -> Vec<Call> {
    log.lock().unwrap().clone()
}

#[test]
fn in_order_both_directions_and_fin() {
    let (mut tcp, log) = setup(false);
    seg(&mut tcp, true, 1000, 0, A, b"GET", 0);
    seg(&mut tcp, true, 1003, 0, A, b" /", 1);
    seg(&mut tcp, false, 5000, 1005, A, b"HTTP", 2);
    seg(&mut tcp, false, 5004, 1005, A | TcpHeader::FIN, b"", 3);
    assert_eq!(
        calls(&log),
        vec![
            Call::Data(1, O, b"GET".to_vec()),
            Call::Data(1, O, b" /".to_vec()),
            Call::Data(1, R, b"HTTP".to_vec()),
            Call::Fin(1, R)
        ]
    );
}

#[test]
fn retransmissions_are_ignored_and_overlaps_trimmed() {
    let (mut tcp, log) = setup(false);
    seg(&mut tcp, true, 1000, 0, A, b"abcd", 0);
    seg(&mut tcp, true, 1000, 0, A, b"abcd", 1); // retransmission
    seg(&mut tcp, true, 1002, 0, A, b"cdef", 2); // overlaps by 2
    assert_eq!(
        calls(&log),
        vec![
            Call::Data(1, O, b"abcd".to_vec()),
            Call::Data(1, O, b"ef".to_vec())
        ]
    );
    assert_eq!(tcp.stats.retransmissions, 1);
    assert_eq!(tcp.stats.overlaps, 1);
}

#[test]
fn reordered_segments_are_delivered_in_order() {
    let (mut tcp, log) = setup(false);
    seg(&mut tcp, true, 1000, 0, A, b"ab", 0);
    seg(&mut tcp, true, 1004, 0, A, b"ef", 1); // ahead of a hole
    seg(&mut tcp, true, 1006, 0, A | TcpHeader::FIN, b"", 2); // FIN behind the hole waits too
    assert_eq!(calls(&log), vec![Call::Data(1, O, b"ab".to_vec())]);
    seg(&mut tcp, true, 1002, 0, A, b"cd", 3); // the missing segment
    assert_eq!(
        calls(&log),
        vec![
            Call::Data(1, O, b"ab".to_vec()),
            Call::Data(1, O, b"cd".to_vec()),
            Call::Data(1, O, b"ef".to_vec()),
            Call::Fin(1, O)
        ]
    );
    assert_eq!(tcp.stats.gaps, 0);
}

#[test]
fn ack_beyond_a_hole_declares_the_gap() {
    let (mut tcp, log) = setup(false);
    seg(&mut tcp, true, 1000, 0, A, b"ab", 0);
    seg(&mut tcp, true, 1010, 0, A, b"xy", 1); // 8 bytes missing
    seg(&mut tcp, false, 5000, 1012, A, b"", 2); // the server acked them all: they are lost to us
    assert_eq!(
        calls(&log),
        vec![
            Call::Data(1, O, b"ab".to_vec()),
            Call::Gap(1, O, 8),
            Call::Data(1, O, b"xy".to_vec())
        ]
    );
}

#[test]
fn gap_that_drops_state_gets_a_new_stream_id() {
    let (mut tcp, log) = setup(true);
    seg(&mut tcp, true, 1000, 0, A, b"ab", 0);
    seg(&mut tcp, true, 1010, 0, A, b"xy", 1);
    seg(&mut tcp, false, 5000, 1012, A, b"", 2);
    seg(&mut tcp, true, 1012, 0, A, b"z", 3);
    assert_eq!(
        calls(&log),
        vec![
            Call::Data(1, O, b"ab".to_vec()),
            Call::Gap(1, O, 8),
            Call::Data(2, O, b"xy".to_vec()),
            Call::Data(2, O, b"z".to_vec())
        ]
    );
    assert_eq!(tcp.stats.dropped_because_of_gaps, 1);
}

#[test]
fn full_reorder_buffer_gives_up_on_the_hole() {
    let (mut tcp, log) = setup(false);
    seg(&mut tcp, true, 1000, 0, A, b"a", 0);
    // Hole at 1001; then more segments than the buffer holds.
    for i in 0..=MAX_OUT_OF_ORDER_SEGMENTS as u32 {
        seg(&mut tcp, true, 1002 + i, 0, A, b"x", 1);
    }
    let c = calls(&log);
    assert_eq!(c[1], Call::Gap(1, O, 1));
    let delivered: usize = c.iter().filter(|c| matches!(c, Call::Data(..))).count();
    assert_eq!(delivered, 1 + MAX_OUT_OF_ORDER_SEGMENTS + 1);
}

#[test]
fn idle_connections_expire_in_packet_time_and_at_the_end() {
    let (mut tcp, log) = setup(false);
    seg(&mut tcp, true, 1000, 0, A, b"a", 0);
    // Another connection 11 s later (packet time): the first one has been idle past 10 s.
    let tuple = IpPortTuple::new(
        "10.0.0.3".parse().unwrap(),
        1,
        "10.0.0.2".parse().unwrap(),
        80,
    );
    let hdr = TcpHeader {
        src_port: 1,
        dst_port: 80,
        seq: 1,
        ack: 0,
        flags: A,
    };
    tcp.tick(&mut EventSink::new(), Ts(11_000_000_000), 0);
    tcp.process(&mut EventSink::new(), Ts(11_000_000_000), tuple, &hdr, b"b");
    assert_eq!(
        calls(&log),
        vec![
            Call::Data(1, O, b"a".to_vec()),
            Call::Expired(1),
            Call::Data(2, O, b"b".to_vec())
        ]
    );
    assert_eq!(tcp.connections(), 1);
    tcp.flush(&mut EventSink::new());
    assert_eq!(calls(&log).last(), Some(&Call::Expired(2)));
    assert_eq!(tcp.connections(), 0);
}

#[test]
fn other_ports_are_not_followed() {
    let (mut tcp, log) = setup(false);
    let tuple = IpPortTuple::new(
        "10.0.0.3".parse().unwrap(),
        1,
        "10.0.0.2".parse().unwrap(),
        22,
    );
    let hdr = TcpHeader {
        src_port: 1,
        dst_port: 22,
        seq: 1,
        ack: 0,
        flags: A,
    };
    tcp.process(&mut EventSink::new(), Ts(1), tuple, &hdr, b"ssh");
    assert!(calls(&log).is_empty());
    assert_eq!(tcp.connections(), 0);
}

#[test]
fn sequence_numbers_wrap() {
    let (mut tcp, log) = setup(false);
    seg(&mut tcp, true, u32::MAX - 1, 0, A, b"ab", 0);
    seg(&mut tcp, true, 0, 0, A, b"cd", 1);
    seg(&mut tcp, true, u32::MAX - 1, 0, A, b"ab", 2); // retransmission across the wrap
    assert_eq!(
        calls(&log),
        vec![
            Call::Data(1, O, b"ab".to_vec()),
            Call::Data(1, O, b"cd".to_vec())
        ]
    );
}

#[test]
fn closed_connections_end_at_once_and_keep_recognising_retransmissions() {
    let (mut tcp, log) = setup(false);
    seg(&mut tcp, true, 1000, 0, A, b"req", 0);
    seg(&mut tcp, false, 5000, 1003, A, b"resp", 1);
    seg(&mut tcp, true, 1003, 5004, A | TcpHeader::FIN, b"", 2);
    seg(&mut tcp, false, 5004, 1004, A | TcpHeader::FIN, b"", 3);
    // Both sides closed: the analyzer ends now, not after the idle timeout.
    assert_eq!(calls(&log).last(), Some(&Call::Expired(1)));
    assert_eq!(tcp.stats.closed, 1);
    // A late retransmission of the response (5 s later, within the timeout) is recognised.
    seg(&mut tcp, false, 5000, 1003, A, b"resp", 5_000);
    assert_eq!(tcp.stats.retransmissions, 1);
    assert_eq!(calls(&log).len(), 5);
    // A SYN on the same tuple is a new connection.
    seg(&mut tcp, true, 9000, 0, TcpHeader::SYN, b"", 6_000);
    seg(&mut tcp, true, 9001, 0, A, b"again", 6_001);
    assert_eq!(
        calls(&log).last(),
        Some(&Call::Data(2, O, b"again".to_vec()))
    );
}

/// A segment of a client `port` (on 10.0.0.1) to the server.
fn seg_from(tcp: &mut Tcp, port: u16, seq: u32, flags: u8, payload: &[u8], t_ms: i64) {
    let tuple = IpPortTuple::new(
        CLIENT.0.parse().unwrap(),
        port,
        SERVER.0.parse().unwrap(),
        SERVER.1,
    );
    let hdr = TcpHeader {
        src_port: port,
        dst_port: SERVER.1,
        seq,
        ack: 0,
        flags,
    };
    tcp.process(&mut EventSink::new(), Ts(t_ms * 1_000_000), tuple, &hdr, payload);
}

#[test]
fn a_full_table_evicts_the_least_recently_seen_connection() {
    let (mut tcp, log) = setup(false);
    tcp.set_max_connections(3);
    for (i, port) in [1000u16, 1001, 1002].into_iter().enumerate() {
        seg_from(&mut tcp, port, 1, A, b"x", i as i64);
    }
    assert_eq!(tcp.connections(), 3);
    // A fourth: the oldest (port 1000, stream 1) ends as on expiry.
    seg_from(&mut tcp, 1003, 1, A, b"y", 10);
    assert_eq!(tcp.connections(), 3);
    assert_eq!(tcp.stats.evicted, 1);
    assert_eq!(tcp.stats.expired, 0);
    assert!(calls(&log).contains(&Call::Expired(1)), "{:?}", calls(&log));
    // A packet of a connection already in the table evicts nothing.
    seg_from(&mut tcp, 1003, 2, A, b"z", 11);
    assert_eq!(tcp.stats.evicted, 1);
    // A SYN flood never holds more than the limit.
    for port in 2000u16..3000 {
        seg_from(&mut tcp, port, 1, TcpHeader::SYN, b"", 20);
    }
    assert_eq!(tcp.connections(), 3);
    assert_eq!(tcp.stats.evicted, 1001);
}

/// Connections that ended on their own leave their places in the eviction order behind; a
/// full table still evicts one when those come first (found by the tcp_reassembly fuzz target:
/// the table grew past its limit).
#[test]
fn a_full_table_evicts_past_connections_that_ended_on_their_own() {
    let (mut tcp, _log) = setup(false);
    // 40 connections (more than EVICTION_TRIES) that end by RST and are expired.
    for port in 3000u16..3040 {
        seg_from(&mut tcp, port, 1, A, b"x", 0);
        seg_from(&mut tcp, port, 2, TcpHeader::RST, b"", 0);
    }
    tcp.tick(&mut EventSink::new(), Ts(3_600_000_000_000), 0);
    assert_eq!(tcp.connections(), 0);
    tcp.set_max_connections(5);
    for port in 4000u16..4020 {
        seg_from(&mut tcp, port, 1, A, b"y", 3_600_001);
        assert!(tcp.connections() <= 5, "{} connections", tcp.connections());
    }
    assert_eq!(tcp.connections(), 5);
}

#[test]
fn held_segments_stay_within_the_workers_stream_budget() {
    std::thread::spawn(|| {
        use crate::protos::app::stream::budget;
        budget::set_limit(10_000);
        let (mut tcp, log) = setup(false);
        seg(&mut tcp, true, 1, 0, A, b"a", 0);
        // Segments beyond a hole are held while they fit in the budget...
        for k in 0..3u32 {
            seg(&mut tcp, true, 1000 + k * 3000, 0, A, &[b'b'; 3000], 1);
        }
        assert_eq!(budget::used(), 9000);
        assert_eq!(budget::refused(), 0);
        assert!(!calls(&log).iter().any(|c| matches!(c, Call::Gap(..))));
        // ...past it the hole is declared a gap at once and everything held is delivered.
        seg(&mut tcp, true, 10_000, 0, A, &[b'b'; 3000], 1);
        assert_eq!(budget::refused(), 1);
        assert!(calls(&log).iter().any(|c| matches!(c, Call::Gap(1, _, _))), "{:?}", calls(&log));
        assert_eq!(budget::used(), 0);
        // Held bytes go back to the budget when the connection ends.
        seg(&mut tcp, true, 50_000, 0, A, b"c", 2);
        seg(&mut tcp, true, 60_000, 0, A, &[b'd'; 500], 3);
        assert_eq!(budget::used(), 501);
        tcp.flush(&mut EventSink::new());
        assert_eq!(budget::used(), 0);
    })
    .join()
    .unwrap();
}
