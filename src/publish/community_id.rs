//! Community ID flow hash (v1, seed 0), as libbeat's `flowhash.CommunityID` computes it for
//! `network.community_id`. Specification: corelight/community-id-spec.

use base64::Engine;
use sha1::{Digest, Sha1};
use std::net::IpAddr;

const ICMP4_EQUIV: &[(u8, u8)] = &[
    (8, 0),   // echo request -> reply
    (0, 8),   // echo reply -> request
    (13, 14), // timestamp
    (14, 13),
    (15, 16), // info request -> reply (libbeat has no reverse entry)
    (10, 9),  // router solicitation / advertisement
    (9, 10),
    (17, 18), // address mask
    (18, 17),
];

const ICMP6_EQUIV: &[(u8, u8)] = &[
    (128, 129), // echo
    (129, 128),
    (133, 134), // router solicitation / advertisement
    (134, 133),
    (136, 135), // neighbor advertisement / solicitation
    (135, 136),
    (130, 131), // MLDv1 query -> report (no reverse entry)
    (139, 140), // who-are-you
    (140, 139),
    (144, 145), // home agent address discovery
    (145, 144),
];

/// The address's bytes as the hash takes them (IPv4-mapped IPv6 as IPv4), on the stack.
struct RawIp {
    bytes: [u8; 16],
    len: usize,
}

impl RawIp {
    fn of(ip: &IpAddr) -> RawIp {
        let v4 = |o: [u8; 4]| {
            let mut bytes = [0; 16];
            bytes[..4].copy_from_slice(&o);
            RawIp { bytes, len: 4 }
        };
        match ip {
            IpAddr::V4(a) => v4(a.octets()),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(m) => v4(m.octets()),
                None => RawIp {
                    bytes: a.octets(),
                    len: 16,
                },
            },
        }
    }

    fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// Computes the Community ID of a flow. For ICMP (`proto` 1 or 58) pass the ICMP type and code
/// as `src_port` and `dst_port`.
pub fn community_id(src: IpAddr, src_port: u16, dst: IpAddr, dst_port: u16, proto: u8) -> String {
    community_id_seeded(src, src_port, dst, dst_port, proto, 0)
}

/// The same with a seed (the `community_id` processor's `seed` option).
pub fn community_id_seeded(
    src: IpAddr,
    src_port: u16,
    dst: IpAddr,
    dst_port: u16,
    proto: u8,
    seed: u16,
) -> String {
    let (mut sip, mut dip) = (RawIp::of(&src), RawIp::of(&dst));
    let (mut sport, mut dport) = (src_port, dst_port);
    let mut one_way = false;
    if proto == 1 || proto == 58 {
        let table = if proto == 1 { ICMP4_EQUIV } else { ICMP6_EQUIV };
        let (icmp_type, icmp_code) = (src_port as u8, dst_port as u8);
        match table.iter().find(|(t, _)| *t == icmp_type) {
            Some((_, equiv)) => {
                sport = icmp_type as u16;
                dport = *equiv as u16;
            }
            None => {
                sport = icmp_type as u16;
                dport = icmp_code as u16;
                one_way = true;
            }
        }
    }
    let sorted =
        sip.as_slice() < dip.as_slice() || (sip.as_slice() == dip.as_slice() && sport < dport);
    if !one_way && !sorted {
        std::mem::swap(&mut sip, &mut dip);
        std::mem::swap(&mut sport, &mut dport);
    }
    let mut h = Sha1::new();
    h.update(seed.to_be_bytes());
    h.update(sip.as_slice());
    h.update(dip.as_slice());
    h.update([proto, 0]);
    if matches!(proto, 6 | 17 | 132 | 1 | 58) {
        h.update(sport.to_be_bytes());
        h.update(dport.to_be_bytes());
    }
    // "1:" and the base64 of the 20-byte digest: 30 bytes, one allocation.
    let mut id = String::with_capacity(30);
    id.push_str("1:");
    base64::engine::general_purpose::STANDARD.encode_string(h.finalize(), &mut id);
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_vectors() {
        // From the community-id-spec baseline (tcp.pcap): 128.232.110.120:34855 -> 66.35.250.204:80
        let id = community_id(
            "128.232.110.120".parse().unwrap(),
            34855,
            "66.35.250.204".parse().unwrap(),
            80,
            6,
        );
        assert_eq!(id, "1:LQU9qZlK+B5F3KDmev6m5PMibrg=");
        // and the reverse direction hashes the same
        let rev = community_id(
            "66.35.250.204".parse().unwrap(),
            80,
            "128.232.110.120".parse().unwrap(),
            34855,
            6,
        );
        assert_eq!(rev, id);
    }
}
