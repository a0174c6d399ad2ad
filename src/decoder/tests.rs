use super::*;
use crate::publish::community_id::community_id;
use crate::sniffer::file::FileSource;
use std::path::{Path, PathBuf};

fn shared(rel: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared")
        .join(rel);
    p.exists().then_some(p)
}

fn eth_ipv4_udp(payload: &[u8], vlans: &[u16]) -> Vec<u8> {
    let mut f = vec![0u8; 12];
    for v in vlans {
        f.extend_from_slice(&[0x81, 0x00]);
        f.extend_from_slice(&v.to_be_bytes());
    }
    f.extend_from_slice(&[0x08, 0x00]);
    let total = 20 + 8 + payload.len();
    f.extend_from_slice(&[
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        1,
        0,
        0,
        64,
        17,
        0,
        0,
        10,
        0,
        0,
        1,
        10,
        0,
        0,
        2,
    ]);
    let ulen = 8 + payload.len();
    f.extend_from_slice(&[0x13, 0x88, 0, 53, (ulen >> 8) as u8, ulen as u8, 0, 0]);
    f.extend_from_slice(payload);
    f
}

#[test]
fn ethernet_vlan_udp() {
    let mut d = Decoder::new();
    let mut frame = eth_ipv4_udp(b"hello", &[100, 200]);
    frame.extend_from_slice(&[0u8; 10]); // Ethernet padding is trimmed by the IP length
    let p = d.decode(LinkType::Ethernet, Ts(1), &frame).unwrap();
    assert_eq!(p.vlans, [100, 200]);
    assert_eq!(p.src, "10.0.0.1".parse::<IpAddr>().unwrap());
    assert_eq!(
        p.l4,
        L4::Udp {
            src_port: 5000,
            dst_port: 53,
            payload: b"hello"
        }
    );
}

#[test]
fn truncated_and_garbage_frames_are_counted_not_fatal() {
    let mut d = Decoder::new();
    let frame = eth_ipv4_udp(b"hello world", &[]);
    // Every prefix of a valid frame, and a few corruptions, decode or are skipped, never panic.
    for len in 0..frame.len() {
        let _ = d.decode(LinkType::Ethernet, Ts(1), &frame[..len]);
    }
    for i in 0..frame.len() {
        let mut bad = frame.clone();
        bad[i] ^= 0xff;
        let _ = d.decode(LinkType::Ethernet, Ts(1), &bad);
    }
    for link in [
        LinkType::Null,
        LinkType::LinuxSll,
        LinkType::LinuxSll2,
        LinkType::Raw,
        LinkType::Loop,
    ] {
        for len in 0..64 {
            let junk: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let _ = d.decode(link, Ts(1), &junk);
        }
    }
    assert!(d.stats.malformed > 0);
    assert_eq!(d.stats.packets, d.stats.packets); // counters add up below
    let skipped = d.stats.not_ip + d.stats.malformed + d.stats.fragments + d.stats.ipv6_fragments;
    assert!(skipped <= d.stats.packets);
}

#[test]
fn ipv4_fragments_reassemble_in_any_order() {
    // Three fragments of one UDP datagram: 0..16, 16..32, 32..40 (payload 32 bytes + UDP header).
    let payload: Vec<u8> = (0..32u8).collect();
    let mut datagram = vec![0x13, 0x88, 0, 53, 0, 40, 0, 0];
    datagram.extend_from_slice(&payload);
    let frag = |off: usize, end: usize, more: bool| {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x00]);
        let total = 20 + end - off;
        let fo = (off / 8) as u16 | if more { 0x2000 } else { 0 };
        f.extend_from_slice(&[
            0x45,
            0,
            0,
            total as u8,
            0xab,
            0xcd,
            (fo >> 8) as u8,
            fo as u8,
            64,
            17,
            0,
            0,
            1,
            1,
            1,
            1,
            2,
            2,
            2,
            2,
        ]);
        f.extend_from_slice(&datagram[off..end]);
        f
    };
    let frames = [frag(0, 16, true), frag(16, 32, true), frag(32, 40, false)];
    for order in [[0, 1, 2], [2, 1, 0], [1, 2, 0]] {
        let mut d = Decoder::new();
        let mut completed = 0;
        for (n, i) in order.iter().enumerate() {
            match d.decode(LinkType::Ethernet, Ts(n as i64), &frames[*i]) {
                Ok(p) => {
                    assert!(p.reassembled);
                    assert_eq!(
                        p.l4,
                        L4::Udp {
                            src_port: 5000,
                            dst_port: 53,
                            payload: &payload
                        }
                    );
                    completed += 1;
                }
                Err(e) => assert_eq!(e, Skip::Fragment),
            }
        }
        assert_eq!(completed, 1);
        assert_eq!(d.stats.reassembled, 1);
    }
}

#[test]
fn packetbeat_defrag_capture_gives_the_whole_dns_response() {
    let Some(path) = shared("pcaps/decoder/udp_edns0_resp.pcap") else {
        return;
    };
    let mut src = FileSource::open(&path, true, 1).unwrap();
    let mut d = Decoder::new();
    let mut sizes = Vec::new();
    while let Some(f) = src.next_frame().unwrap() {
        if let Ok(Decoded {
            l4: L4::Udp { payload, .. },
            ..
        }) = d.decode(f.link, f.ts, f.data)
        {
            sizes.push(payload.len());
        }
    }
    // Packetbeat's decoder test: the three fragments give one 3398-byte UDP payload.
    assert_eq!(sizes, vec![3398]);
}

/// Decodes every packet of libbeat's Community ID captures and checks the hash against
/// libbeat's expected values, packet by packet.
#[test]
fn community_id_matches_libbeat_vectors() {
    let Some(dir) = shared("golden/libbeat_flowhash") else {
        return;
    };
    let mut checked = 0;
    for name in ["icmp", "icmp6", "ipv6", "sctp", "tcp", "udp", "arp"] {
        let log = std::fs::read_to_string(dir.join(format!("{name}.pcap.log"))).unwrap();
        let pcap = shared(&format!("pcaps/libbeat_flowhash/{name}.pcap")).unwrap();
        let mut src = FileSource::open(&pcap, true, 1).unwrap();
        let mut d = Decoder::new();
        let mut lines = log.lines();
        while let Some(f) = src.next_frame().unwrap() {
            let line = lines.next().expect("one log line per packet");
            let expected = line.split(" | ").nth(1).unwrap().trim();
            let got = match d.decode(f.link, f.ts, f.data) {
                Ok(p) => {
                    let (proto, sp, dp) = match p.l4 {
                        L4::Tcp(h, _) => (6, h.src_port, h.dst_port),
                        L4::Udp {
                            src_port, dst_port, ..
                        } => (17, src_port, dst_port),
                        L4::Icmp4 {
                            icmp_type, code, ..
                        } => (1, icmp_type as u16, code as u16),
                        L4::Icmp6 {
                            icmp_type, code, ..
                        } => (58, icmp_type as u16, code as u16),
                        L4::Other { proto, payload } if proto == 132 && payload.len() >= 4 => (
                            132,
                            u16::from_be_bytes([payload[0], payload[1]]),
                            u16::from_be_bytes([payload[2], payload[3]]),
                        ),
                        L4::Other { proto, .. } => (proto, 0, 0),
                    };
                    community_id(p.src, sp, p.dst, dp, proto)
                }
                Err(_) => "<not IP>".to_string(),
            };
            assert_eq!(got, expected, "{name}: {line}");
            checked += 1;
        }
        assert!(
            lines.next().is_none(),
            "{name}: fewer packets than log lines"
        );
    }
    assert_eq!(checked, 6 + 12 + 49 + 17 + 74 + 12 + 2);
}
