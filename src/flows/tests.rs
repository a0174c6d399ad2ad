use super::flowid::*;
use super::*;
use crate::config::{FlowsConfig, GoDuration, SignedDuration};
use std::time::Duration;

const A: [u8; 6] = [0x00, 0x11, 0x22, 0x33, 0x44, 0x55];
const B: [u8; 6] = [0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb];
const IP1: [u8; 4] = [10, 0, 0, 1];
const IP2: [u8; 4] = [10, 0, 0, 2];

fn tcp_id(mac: (&[u8; 6], &[u8; 6]), ip: (&[u8; 4], &[u8; 4]), ports: (u16, u16)) -> FlowId {
    let mut id = FlowId::new();
    id.add_eth(mac.0, mac.1);
    id.add_ipv4(ip.0, ip.1);
    id.add_tcp(ports.0, ports.1);
    id
}

fn secs(s: i64) -> Ts {
    Ts(s * 1_000_000_000)
}

fn settings(timeout: u64, period: Option<u64>) -> Settings {
    let c = FlowsConfig {
        timeout: GoDuration(Duration::from_secs(timeout)),
        period: match period {
            Some(p) => SignedDuration {
                negative: false,
                value: Duration::from_secs(p),
            },
            None => SignedDuration {
                negative: true,
                value: Duration::from_secs(1),
            },
        },
        ..FlowsConfig::default()
    };
    Settings::from_config(&c).unwrap()
}

fn json(ev: &crate::publish::Event) -> serde_json::Value {
    serde_json::Value::Object(ev.fields.to_map())
}

#[test]
fn layout_of_an_ethernet_ipv4_tcp_id() {
    let id = tcp_id((&A, &B), (&IP1, &IP2), (1234, 80));
    let k = id.key();
    let mut want = vec![
        0x11, 0x04, // ETH | IPV4 | TCP
        0, 0xff, 0xff, 0xff, 12, 0xff, 0xff, 0xff, 0xff, 0xff, 20, 0xff, // offsets
        1, 0, 1, // counts
    ];
    want.extend_from_slice(&A);
    want.extend_from_slice(&B);
    want.extend_from_slice(&IP1);
    want.extend_from_slice(&IP2);
    want.extend_from_slice(&1234u16.to_le_bytes());
    want.extend_from_slice(&80u16.to_le_bytes());
    assert_eq!(k.as_bytes(), &want[..]);
    assert_eq!(id.dir, Dir::Forward);
    use base64::Engine;
    assert_eq!(
        k.serialize(),
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(&want)
    );
}

#[test]
fn both_directions_share_the_key() {
    let f = tcp_id((&A, &B), (&IP1, &IP2), (1234, 80));
    let r = tcp_id((&B, &A), (&IP2, &IP1), (80, 1234));
    assert_eq!(f.key(), r.key());
    assert_eq!((f.dir, r.dir), (Dir::Forward, Dir::Reversed));
}

#[test]
fn the_first_differing_layer_decides_the_order() {
    // The MACs sort one way, the addresses the other: the MACs decide, the addresses follow,
    // so the bytes are not each pair sorted on its own.
    let id = tcp_id((&A, &B), (&IP2, &IP1), (80, 1234));
    let k = id.key();
    assert_eq!(&k.as_bytes()[META + 12..META + 16], &IP2);
    assert_eq!(k.ipv4(id.dir), Some((IP2, IP1)));
    assert_eq!(k.tcp(id.dir), Some((80, 1234)));
    // Equal MACs (loopback): the addresses decide.
    let lo = tcp_id((&[0; 6], &[0; 6]), (&IP2, &IP1), (80, 1234));
    assert_eq!(lo.dir, Dir::Reversed);
    assert_eq!(&lo.key().as_bytes()[META + 12..META + 16], &IP1);
    // Ports compare as their little-endian bytes, as Packetbeat's bytes.Compare does.
    let mut p = FlowId::new();
    p.add_ipv4(&IP1, &IP1);
    p.add_udp(256, 1); // 00 01 vs 01 00
    assert_eq!(p.dir, Dir::Forward);
}

#[test]
fn stacked_vlans_are_outer_then_inner() {
    let mut id = FlowId::new();
    id.add_eth(&A, &B);
    id.add_vlan(100);
    id.add_vlan(200);
    id.add_ipv4(&IP1, &IP2);
    let k = id.key();
    assert_eq!(k.flags(), ETH | VLAN | OUTER_VLAN | IPV4);
    assert_eq!((k.outer_vlan(), k.vlan()), (Some(100), Some(200)));
    let mut f = Flows::new(settings(30, None));
    let mut out = EventSink::new();
    f.record(&mut out, &mut id, secs(1), 60, IcmpTypeCode::V4(8 << 8));
    f.flush(&mut out);
    let ev = json(&out.take()[0]);
    assert_eq!(ev["flow"]["vlan"], serde_json::json!([100, 200]));
    assert_eq!(ev["network"]["transport"], "icmp");
}

#[test]
fn counts_per_direction_and_reports_packetbeat_fields() {
    let mut f = Flows::new(settings(30, None));
    let mut out = EventSink::new();
    let mut fwd = tcp_id((&A, &B), (&IP2, &IP1), (40000, 80));
    let mut rev = tcp_id((&B, &A), (&IP1, &IP2), (80, 40000));
    f.record(&mut out, &mut fwd, secs(100), 74, IcmpTypeCode::None);
    f.record(
        &mut out,
        &mut rev,
        Ts(secs(100).0 + 500_000),
        66,
        IcmpTypeCode::None,
    );
    f.record(&mut out, &mut fwd, secs(101), 100, IcmpTypeCode::None);
    assert_eq!(f.len(), 1);
    f.flush(&mut out);
    let evs = out.take();
    assert_eq!(evs.len(), 1);
    let e = json(&evs[0]);
    assert_eq!(e["type"], "flow");
    assert_eq!(e["flow"]["final"], true);
    assert_eq!(e["source"]["ip"], "10.0.0.2");
    assert_eq!(e["source"]["port"], 40000);
    assert_eq!(e["source"]["mac"], "00-11-22-33-44-55");
    assert_eq!(e["source"]["packets"], 2);
    assert_eq!(e["source"]["bytes"], 174);
    assert_eq!(e["destination"]["ip"], "10.0.0.1");
    assert_eq!(e["destination"]["mac"], "66-77-88-99-AA-BB");
    assert_eq!(e["destination"]["packets"], 1);
    assert_eq!(e["destination"]["bytes"], 66);
    assert_eq!(e["network"]["bytes"], 240);
    assert_eq!(e["network"]["packets"], 3);
    assert_eq!(e["network"]["transport"], "tcp");
    assert_eq!(e["network"]["type"], "ipv4");
    assert_eq!(
        e["network"]["community_id"],
        crate::publish::community_id::community_id(
            "10.0.0.2".parse().unwrap(),
            40000,
            "10.0.0.1".parse().unwrap(),
            80,
            6
        )
    );
    assert_eq!(e["event"]["duration"], 1_000_000_000i64);
    assert_eq!(e["event"]["type"], serde_json::json!(["connection", "end"]));
    assert_eq!(e["event"]["action"], "network_flow");
    assert_eq!(e["flow"]["id"], fwd.key().serialize());
}

#[test]
fn mac_only_flows_and_empty_ids() {
    let mut f = Flows::new(settings(30, None));
    let mut out = EventSink::new();
    f.record(
        &mut out,
        &mut FlowId::new(),
        secs(1),
        60,
        IcmpTypeCode::None,
    );
    assert!(f.is_empty());
    let mut id = FlowId::new();
    id.add_eth(&B, &A);
    f.record(&mut out, &mut id, secs(1), 60, IcmpTypeCode::None);
    f.flush(&mut out);
    let e = json(&out.take()[0]);
    assert_eq!(e["source"]["mac"], "66-77-88-99-AA-BB");
    assert!(e["network"].get("type").is_none());
    assert!(e["network"].get("community_id").is_none());
    assert_eq!(e["network"]["packets"], 1);
}

#[test]
fn timeout_kills_after_the_tick() {
    let mut f = Flows::new(settings(30, None));
    let mut out = EventSink::new();
    let mut id = tcp_id((&A, &B), (&IP1, &IP2), (1, 2));
    f.tick(&mut out, secs(1001), 0);
    f.record(&mut out, &mut id, secs(1001), 60, IcmpTypeCode::None);
    f.tick(&mut out, secs(1039), 0);
    assert!(out.is_empty());
    f.tick(&mut out, secs(1040), 0);
    let evs = out.take();
    assert_eq!(evs.len(), 1);
    assert_eq!(json(&evs[0])["flow"]["final"], true);
    assert_eq!(evs[0].timestamp, secs(1040));
    assert!(f.is_empty());
    // The same tuple again is a new flow, with the same id.
    f.record(&mut out, &mut id, secs(1041), 60, IcmpTypeCode::None);
    f.flush(&mut out);
    assert_eq!(out.len(), 1);
}

#[test]
fn period_reports_and_delta() {
    for delta in [false, true] {
        let mut s = settings(30, Some(10));
        s.delta = delta;
        let mut f = Flows::new(s);
        let mut out = EventSink::new();
        let mut id = tcp_id((&A, &B), (&IP1, &IP2), (1, 2));
        f.tick(&mut out, secs(1000), 0);
        for t in 1000..1025 {
            f.record(&mut out, &mut id, secs(t), 10, IcmpTypeCode::None);
            f.tick(&mut out, secs(t), 0);
        }
        // Ticks at 1010 and 1020 (tick = gcd(30, 10) = 10 s, start aligned at 1000).
        let evs = out.take();
        assert_eq!(evs.len(), 2);
        let e = json(&evs[1]);
        assert_eq!(e["flow"]["final"], false);
        assert_eq!(e["event"]["type"], serde_json::json!(["connection"]));
        assert_eq!(e["network"]["packets"], if delta { 10 } else { 21 });
        f.flush(&mut out);
        let e = json(&out.take()[0]);
        assert_eq!(e["network"]["packets"], if delta { 4 } else { 25 });
    }
}

#[test]
fn invalid_settings_are_refused() {
    let mut c = FlowsConfig {
        timeout: GoDuration(Duration::from_millis(500)),
        ..FlowsConfig::default()
    };
    assert!(Settings::from_config(&c)
        .unwrap_err()
        .to_string()
        .contains("timeout must be >= 1s"));
    c.timeout = GoDuration(Duration::from_secs(30));
    c.period = SignedDuration {
        negative: false,
        value: Duration::from_millis(200),
    };
    assert!(Settings::from_config(&c)
        .unwrap_err()
        .to_string()
        .contains("report period must be -1 or >= 1s"));
}

#[test]
fn a_full_table_evicts_the_least_recently_seen() {
    let mut s = settings(30, None);
    s.max_flows = 16;
    let mut f = Flows::new(s);
    let mut out = EventSink::new();
    for port in 0..1000u16 {
        let mut id = tcp_id((&A, &B), (&IP1, &IP2), (port, 80));
        f.record(
            &mut out,
            &mut id,
            secs(1000 + port as i64),
            60,
            IcmpTypeCode::None,
        );
        assert!(f.len() <= 16);
    }
    assert!(f.stats.evicted >= 1000 - 16);
    assert_eq!(out.len() as u64, f.stats.evicted);
    // The newest flow is still there.
    let last = tcp_id((&A, &B), (&IP1, &IP2), (999, 80));
    assert!(f.index.contains_key(&last.key()));
}

#[test]
fn long_ids_are_cut_not_a_panic() {
    let mut id = FlowId::new();
    id.add_eth(&A, &B);
    for v in 0..10 {
        id.add_vlan(v);
    }
    for _ in 0..5 {
        id.add_ipv6(&[1; 16], &[2; 16]);
        id.add_ipv4(&IP1, &IP2);
    }
    id.add_tcp(1, 2);
    id.add_connection_id(7);
    assert!(id.key().as_bytes().len() <= META + MAX_ID);
}

#[test]
fn lateness_delays_the_timeout() {
    let mut f = Flows::new(settings(30, None));
    let mut out = EventSink::new();
    let mut id = tcp_id((&A, &B), (&IP1, &IP2), (1, 2));
    f.tick(&mut out, secs(1001), 0);
    f.record(&mut out, &mut id, secs(1001), 60, IcmpTypeCode::None);
    // Packets have come up to 15 s late: the flow idle 39 s at 1040 is kept until 1070.
    f.tick(&mut out, secs(1040), 15_000_000_000);
    assert!(out.is_empty());
    f.tick(&mut out, secs(1070), 15_000_000_000);
    assert_eq!(out.len(), 1);
}

/// The table holds up to `max_flows` entries: what one costs is the table's memory.
#[test]
fn a_table_entry_stays_small() {
    let entry = std::mem::size_of::<(FlowKey, Flow)>();
    assert!(entry <= 176, "a flow table entry takes {entry} bytes");
}

/// A key longer than the entry keeps inline (stacked IPv6 layers) is kept whole on the heap,
/// and reads back like a short one.
#[test]
fn a_long_key_reads_back_whole() {
    let (o1, o2) = ([0x20u8; 16], [0x30u8; 16]);
    let (i1, i2) = ([0x21u8; 16], [0x31u8; 16]);
    let build = |fwd: bool| {
        let mut id = FlowId::new();
        if fwd {
            id.add_eth(&A, &B);
        } else {
            id.add_eth(&B, &A);
        }
        id.add_vlan(10);
        id.add_vlan(20);
        if fwd {
            id.add_ipv6(&o1, &o2);
            id.add_ipv6(&i1, &i2);
            id.add_tcp(40000, 443);
        } else {
            id.add_ipv6(&o2, &o1);
            id.add_ipv6(&i2, &i1);
            id.add_tcp(443, 40000);
        }
        id.add_connection_id(7);
        id
    };
    let (mut fwd, mut rev) = (build(true), build(false));
    let key = fwd.key();
    assert!(
        key.as_bytes().len() > 80,
        "the key is {} bytes",
        key.as_bytes().len()
    );
    assert_eq!(key.as_bytes(), fwd.key_bytes());
    assert_eq!(key.as_bytes(), rev.key_bytes());
    assert_eq!(rev.key(), key);
    assert_eq!(key.outer_ipv6(fwd.dir), Some((o1, o2)));
    assert_eq!(key.ipv6(fwd.dir), Some((i1, i2)));
    assert_eq!(key.tcp(fwd.dir), Some((40000, 443)));
    assert_eq!((key.outer_vlan(), key.vlan()), (Some(10), Some(20)));
}
