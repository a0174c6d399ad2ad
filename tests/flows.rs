//! Flows end to end: on every capture of ../shared/pcaps,
//! - the flow events equal flows computed here, independently, from the pcap itself (endpoints
//!   by MAC, VLANs, address and port; packets and bytes on the wire per direction; the first
//!   packet's sender is the source), and
//! - several packet workers give the same flow events as one.

mod common;

use common::{captures_or_skip, run_capture};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// One flow per tuple: the timeout is longer than any capture, the period off.
const FLOWS: &str = "packetbeat.flows:\n  timeout: 24h\n  period: -1s\n";

/// One side of a flow: MAC, address, port (what the capture shows, as strings).
type Endpoint = (String, String, String);

#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Counted {
    source: Endpoint,
    destination: Endpoint,
    src_packets: u64,
    src_bytes: u64,
    dst_packets: u64,
    dst_bytes: u64,
}

/// A flow's identity: the two endpoints (unordered), the VLAN ids, and what carries it.
type Key = (Endpoint, Endpoint, String, String);

fn key(a: &Endpoint, b: &Endpoint, vlans: &str, kind: &str) -> Key {
    let (x, y) = if a <= b { (a, b) } else { (b, a) };
    (x.clone(), y.clone(), vlans.to_string(), kind.to_string())
}

fn mac(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02X}"))
        .collect::<Vec<_>>()
        .join("-")
}

/// A frame: its length on the wire and its captured bytes.
type PcapFrame = (u32, Vec<u8>);

/// The frames of a classic pcap file, and its link type.
fn read_pcap(p: &Path) -> Option<(u32, Vec<PcapFrame>)> {
    let d = std::fs::read(p).ok()?;
    let magic = u32::from_le_bytes(d.get(0..4)?.try_into().ok()?);
    let le = match magic {
        0xa1b2c3d4 | 0xa1b23c4d => true,
        0xd4c3b2a1 | 0x4d3cb2a1 => false,
        _ => return None, // pcapng: not read here
    };
    let u32_at = |i: usize| -> Option<u32> {
        let b: [u8; 4] = d.get(i..i + 4)?.try_into().ok()?;
        Some(if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    };
    let link = u32_at(20)?;
    let mut frames = Vec::new();
    let mut at = 24;
    while at + 16 <= d.len() {
        let incl = u32_at(at + 8)? as usize;
        let orig = u32_at(at + 12)?;
        let data = d.get(at + 16..at + 16 + incl)?.to_vec();
        frames.push((orig, data));
        at += 16 + incl;
    }
    Some((link, frames))
}

/// What a frame is, for the independent count: (source, destination, VLANs, kind), or `None`
/// when it is not counted; `Err` for an IPv4 fragment (the capture is left out).
fn classify(link: u32, f: &[u8]) -> Result<Option<(Endpoint, Endpoint, String, String)>, ()> {
    let (mut et, mut rest, smac, dmac) = match link {
        1 if f.len() >= 14 => (
            u16::from_be_bytes([f[12], f[13]]),
            &f[14..],
            mac(&f[6..12]),
            mac(&f[0..6]),
        ),
        113 if f.len() >= 16 => (
            u16::from_be_bytes([f[14], f[15]]),
            &f[16..],
            String::new(),
            String::new(),
        ),
        0 | 108 if f.len() >= 4 => {
            let v = f[4..].first().map(|b| b >> 4);
            (
                if v == Some(6) { 0x86dd } else { 0x0800 },
                &f[4..],
                String::new(),
                String::new(),
            )
        }
        _ => return Ok(None),
    };
    let mut vlans = Vec::new();
    while (et == 0x8100 || et == 0x88a8) && rest.len() >= 4 {
        vlans.push((u16::from_be_bytes([rest[0], rest[1]]) & 0xfff).to_string());
        et = u16::from_be_bytes([rest[2], rest[3]]);
        rest = &rest[4..];
    }
    let vlans = vlans.join(",");
    let eth_only = |smac: String, dmac: String| {
        if smac.is_empty() {
            None
        } else {
            Some((
                (smac, String::new(), String::new()),
                (dmac, String::new(), String::new()),
                vlans.clone(),
                "eth".to_string(),
            ))
        }
    };
    let (sip, dip, proto, l4) = match et {
        0x0800 if rest.len() >= 20 && rest[0] >> 4 == 4 => {
            let ihl = ((rest[0] & 0xf) as usize) * 4;
            let frag = u16::from_be_bytes([rest[6], rest[7]]);
            if frag & 0x3fff != 0 {
                return Err(());
            }
            let total = (u16::from_be_bytes([rest[2], rest[3]]) as usize).min(rest.len());
            let ip = |o: usize| {
                std::net::Ipv4Addr::new(rest[o], rest[o + 1], rest[o + 2], rest[o + 3]).to_string()
            };
            (ip(12), ip(16), rest[9], rest.get(ihl..total).unwrap_or(&[]))
        }
        0x86dd if rest.len() >= 40 && rest[0] >> 4 == 6 => {
            let ip = |o: usize| {
                let b: [u8; 16] = rest[o..o + 16].try_into().unwrap();
                std::net::Ipv6Addr::from(b).to_string()
            };
            let plen = u16::from_be_bytes([rest[4], rest[5]]) as usize;
            let end = (40 + plen).min(rest.len());
            let (mut next, mut l4) = (rest[6], &rest[40..end]);
            if next == 0 && l4.len() >= 8 {
                let len = (l4[1] as usize + 1) * 8;
                next = l4[0];
                l4 = l4.get(len..).unwrap_or(&[]);
            }
            (ip(8), ip(24), next, l4)
        }
        _ => return Ok(eth_only(smac, dmac)),
    };
    let (kind, sp, dp) = match proto {
        6 if l4.len() >= 20 => (
            "tcp",
            u16::from_be_bytes([l4[0], l4[1]]).to_string(),
            u16::from_be_bytes([l4[2], l4[3]]).to_string(),
        ),
        17 if l4.len() >= 8 => (
            "udp",
            u16::from_be_bytes([l4[0], l4[1]]).to_string(),
            u16::from_be_bytes([l4[2], l4[3]]).to_string(),
        ),
        _ => ("ip", String::new(), String::new()),
    };
    Ok(Some((
        (smac, sip, sp),
        (dmac, dip, dp),
        vlans,
        kind.to_string(),
    )))
}

/// The flows of a capture, counted here; `None` for a capture this count does not cover.
fn count(p: &Path) -> Option<BTreeMap<Key, Counted>> {
    let (link, frames) = read_pcap(p)?;
    let mut flows: BTreeMap<Key, Counted> = BTreeMap::new();
    for (orig, f) in frames {
        let Some((s, d, vlans, kind)) = classify(link, &f).ok()? else {
            continue;
        };
        let c = flows
            .entry(key(&s, &d, &vlans, &kind))
            .or_insert_with(|| Counted {
                source: s.clone(),
                destination: d.clone(),
                ..Default::default()
            });
        if s == c.source {
            c.src_packets += 1;
            c.src_bytes += orig as u64;
        } else {
            c.dst_packets += 1;
            c.dst_bytes += orig as u64;
        }
    }
    Some(flows)
}

fn s(v: &Value, k: &str) -> String {
    let mut x = v;
    for p in k.split('.') {
        x = &x[p];
    }
    match x {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a
            .iter()
            .map(|y| y.to_string())
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    }
}

fn n(v: &Value, k: &str) -> u64 {
    s(v, k).parse().unwrap_or(0)
}

/// Our flow events, in the shape of [`count`].
fn ours(events: &[Value]) -> BTreeMap<Key, Counted> {
    let mut out = BTreeMap::new();
    for e in events.iter().filter(|e| e["type"] == "flow") {
        let src = (s(e, "source.mac"), s(e, "source.ip"), s(e, "source.port"));
        let dst = (
            s(e, "destination.mac"),
            s(e, "destination.ip"),
            s(e, "destination.port"),
        );
        let kind = match s(e, "network.transport").as_str() {
            "tcp" => "tcp",
            "udp" => "udp",
            _ if !s(e, "network.type").is_empty() => "ip",
            _ => "eth",
        };
        let k = key(&src, &dst, &s(e, "flow.vlan"), kind);
        let c = Counted {
            source: src,
            destination: dst,
            src_packets: n(e, "source.packets"),
            src_bytes: n(e, "source.bytes"),
            dst_packets: n(e, "destination.packets"),
            dst_bytes: n(e, "destination.bytes"),
        };
        assert!(
            out.insert(k.clone(), c).is_none(),
            "two flow events for {k:?}"
        );
    }
    out
}

#[test]
fn flows_equal_an_independent_count_from_the_pcap() {
    let Some(captures) = captures_or_skip() else {
        return;
    };
    let (mut checked, mut flows) = (0, 0);
    for p in &captures {
        let Some(want) = count(p) else {
            continue;
        };
        let run = run_capture(p, FLOWS, &[]);
        assert_eq!(run.status, 0, "{}: {}", p.display(), run.stderr);
        let got = ours(&run.events);
        assert_eq!(got, want, "{}", p.display());
        checked += 1;
        flows += want.len();
    }
    assert!(checked > 100, "only {checked} captures checked");
    assert!(flows > 200, "only {flows} flows checked");
}

/// The flow id with the connection id's bytes masked: the TCP layer of each worker numbers
/// its own connections (Packetbeat numbers them over the whole capture).
fn without_connection_id(id: &str) -> String {
    use base64::Engine;
    let mut b = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(id)
        .unwrap();
    let flags = u16::from_le_bytes([b[0], b[1]]);
    let off = b[13];
    if flags & (1 << 11) != 0 && off != 0xff {
        let at = 17 + off as usize;
        for x in &mut b[at..at + 8] {
            *x = 0;
        }
    }
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(b)
}

fn flow_events(events: &[Value], mask_connection_ids: bool) -> Vec<String> {
    let mut v: Vec<String> = events
        .iter()
        .filter(|e| e["type"] == "flow")
        .map(|e| {
            let mut e = e.clone();
            for k in ["ephemeral_id", "id"] {
                e["agent"].as_object_mut().map(|a| a.remove(k));
            }
            if mask_connection_ids {
                let id = without_connection_id(e["flow"]["id"].as_str().unwrap());
                e["flow"]["id"] = Value::from(id);
            }
            e.to_string()
        })
        .collect();
    v.sort();
    v
}

#[test]
fn several_workers_give_the_flows_of_one() {
    let Some(captures) = captures_or_skip() else {
        return;
    };
    let analysed = "packetbeat.protocols:\n  - type: icmp\n  - type: dns\n    ports: [53]\n  \
                    - type: http\n    ports: [80, 8000, 8080]\n  - type: mysql\n    ports: [3306]\n  \
                    - type: redis\n    ports: [6379]\n";
    for (protocols, mask) in [("", false), (analysed, true)] {
        for p in &captures {
            let run = |n: usize| {
                let cfg = format!("{protocols}{FLOWS}packetbeat.interfaces.workers: {n}\n");
                let r = run_capture(p, &cfg, &[]);
                assert_eq!(r.status, 0, "{}: {}", p.display(), r.stderr);
                flow_events(&r.events, mask)
            };
            let one = run(1);
            assert!(!one.is_empty(), "{}: no flow", p.display());
            assert_eq!(run(3), one, "{}", p.display());
        }
    }
}

/// A capture of `n` UDP datagrams, each of its own flow (distinct source address and port).
fn flood_pcap(path: &Path, n: u32) {
    let mut out = Vec::with_capacity(24 + n as usize * 58);
    out.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for i in 0..n {
        let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00];
        let src = [10, (i >> 16) as u8, (i >> 8) as u8, i as u8];
        f.extend_from_slice(&[0x45, 0, 0, 30, 0, 0, 0, 0, 64, 17, 0, 0]);
        f.extend_from_slice(&src);
        f.extend_from_slice(&[192, 168, 0, 1]);
        f.extend_from_slice(&(1024 + (i % 50000) as u16).to_be_bytes());
        f.extend_from_slice(&9999u16.to_be_bytes());
        f.extend_from_slice(&[0, 10, 0, 0, b'h', b'i']);
        out.extend_from_slice(&(1_700_000_000 + i / 1000).to_le_bytes());
        out.extend_from_slice(&((i % 1000) * 1000).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(&f);
    }
    std::fs::write(path, out).unwrap();
}

#[test]
fn a_flood_of_tuples_is_bounded_and_every_flow_reported() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("flood.pcap");
    // Small enough for the file output's rotation to keep every event.
    let n = 10_000;
    flood_pcap(&pcap, n);
    let cfg = "packetbeat.flows:\n  timeout: 24h\n  period: -1s\n  max_flows: 100\n";
    let run = run_capture(&pcap, cfg, &[]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    let flows: Vec<&Value> = run.events.iter().filter(|e| e["type"] == "flow").collect();
    // Every flow is reported once, as final: evicted or at the end.
    assert_eq!(flows.len(), n as usize);
    assert!(flows.iter().all(|e| e["flow"]["final"] == true));
    assert!(flows.iter().all(|e| e["network"]["packets"] == 1));
    let evicted: u64 = run
        .stderr
        .split("flows: ")
        .nth(1)
        .and_then(|s| s.split(" reports, ").nth(1))
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no flows summary in {}", run.stderr));
    assert!(evicted >= (n - 100) as u64, "evicted {evicted}");
}
