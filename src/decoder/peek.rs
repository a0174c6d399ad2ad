//! A light look at a frame for dispatching it to a worker: which flow it belongs to, without a
//! full decode. Both directions of a connection give the same hash; an ICMP error gives the hash
//! of the flow whose packet it quotes; an IPv4 fragment is reported as such, to be reassembled
//! before dispatch (fragments after the first carry no ports).

use super::header::{ipv4, ipv6, Ipv4Header};
use super::{ipv6_addresses, ipv6_upper_layer, link, ports_of, LinkType};
use std::net::IpAddr;

/// What a frame is, for dispatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peek<'a> {
    /// A flow hash, the same for both directions.
    Flow(u64),
    /// An IPv4 fragment: the IP header's fields and the fragment's payload.
    Ipv4Fragment {
        src: [u8; 4],
        dst: [u8; 4],
        id: u16,
        proto: u8,
        offset: usize,
        more: bool,
        payload: &'a [u8],
    },
    /// Not IP, or not decodable: any worker will count it.
    Other,
}

/// Mixes words into a 64-bit hash (the FxHash step).
#[inline]
fn mix(h: u64, w: u64) -> u64 {
    (h.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95)
}

fn ip_words(ip: &IpAddr) -> (u64, u64) {
    match ip {
        IpAddr::V4(v4) => (u32::from(*v4) as u64, 0),
        IpAddr::V6(v6) => {
            let o = v6.octets();
            (
                u64::from_be_bytes(o[..8].try_into().expect("8")),
                u64::from_be_bytes(o[8..].try_into().expect("8")),
            )
        }
    }
}

/// Symmetric flow hash of two endpoints.
pub fn flow_hash(a: IpAddr, a_port: u16, b: IpAddr, b_port: u16) -> u64 {
    let (x, y) = {
        let ka = (ip_words(&a), a_port);
        let kb = (ip_words(&b), b_port);
        if ka <= kb {
            (ka, kb)
        } else {
            (kb, ka)
        }
    };
    let mut h = 0u64;
    for w in [x.0 .0, x.0 .1, x.1 as u64, y.0 .0, y.0 .1, y.1 as u64] {
        h = mix(h, w);
    }
    h
}

fn ports(proto: u8, l4: &[u8]) -> (u16, u16) {
    match proto {
        6 | 17 | 132 if l4.len() >= 4 => ports_of(l4),
        _ => (0, 0),
    }
}

fn v4_addr(b: &[u8], at: usize) -> IpAddr {
    IpAddr::from([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The flow of the packet an ICMP error quotes (inner IP header + 8 bytes), if readable.
fn quoted_flow(inner: &[u8]) -> Option<u64> {
    match inner.first()? >> 4 {
        4 => {
            // The quoted header may be cut (8 bytes after it are quoted): only the fixed part
            // must be there.
            if inner.len() < ipv4::MIN_LEN {
                return None;
            }
            let ihl = ((inner[ipv4::VERSION_IHL] & 0x0f) as usize) * 4;
            let (sp, dp) = ports(inner[ipv4::PROTOCOL], inner.get(ihl..)?);
            Some(flow_hash(
                v4_addr(inner, ipv4::SRC),
                sp,
                v4_addr(inner, ipv4::DST),
                dp,
            ))
        }
        6 => {
            let (src, dst, next, rest, _) = ipv6_upper_layer(inner).ok()?;
            let (sp, dp) = ports(next, rest);
            Some(flow_hash(src, sp, dst, dp))
        }
        _ => None,
    }
}

/// Looks at a frame for dispatch.
pub fn peek(link_type: LinkType, frame: &[u8]) -> Peek<'_> {
    peek_with(link_type, frame, true)
}

/// [`peek`]; with `quoted` false an ICMP error goes by its own addresses, as any other ICMP
/// message (flows key ICMP by the IP pair, so all of a pair's ICMP must meet in one worker).
pub fn peek_with(link_type: LinkType, frame: &[u8], quoted: bool) -> Peek<'_> {
    let Ok((ip, _)) = link::strip(link_type, frame) else {
        return Peek::Other;
    };
    match ip.first().map(|b| b >> 4) {
        Some(4) => {
            let Some(h) = Ipv4Header::parse(ip) else {
                return Peek::Other;
            };
            let (src, dst, proto) = (h.src, h.dst, h.protocol);
            if h.is_fragment() {
                return Peek::Ipv4Fragment {
                    src,
                    dst,
                    id: h.id,
                    proto,
                    offset: h.fragment_offset,
                    more: h.more_fragments,
                    payload: h.payload(ip),
                };
            }
            let l4 = h.payload(ip);
            if quoted && proto == 1 && l4.len() >= 8 && matches!(l4[0], 3 | 4 | 5 | 11 | 12) {
                if let Some(h) = quoted_flow(&l4[8..]) {
                    return Peek::Flow(h);
                }
            }
            let (sp, dp) = ports(proto, l4);
            Peek::Flow(flow_hash(IpAddr::from(src), sp, IpAddr::from(dst), dp))
        }
        Some(6) => match ipv6_upper_layer(ip) {
            Ok((src, dst, next, rest, _)) => {
                if quoted && next == 58 && rest.len() >= 8 && (1..=4).contains(&rest[0]) {
                    if let Some(h) = quoted_flow(&rest[8..]) {
                        return Peek::Flow(h);
                    }
                }
                let (sp, dp) = ports(next, rest);
                Peek::Flow(flow_hash(src, sp, dst, dp))
            }
            // IPv6 fragments are not reassembled: keep a host pair's fragments together.
            Err(_) if ip.len() >= ipv6::LEN => {
                let (src, dst) = ipv6_addresses(ip);
                Peek::Flow(flow_hash(src, 0, dst, 0))
            }
            Err(_) => Peek::Other,
        },
        _ => Peek::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric() {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(flow_hash(a, 1234, b, 80), flow_hash(b, 80, a, 1234));
        assert_ne!(flow_hash(a, 1234, b, 80), flow_hash(a, 1235, b, 80));
        let c: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(flow_hash(c, 53, a, 999), flow_hash(a, 999, c, 53));
    }

    #[test]
    fn icmp_error_goes_with_the_flow_it_quotes() {
        // An ICMPv4 port unreachable from 10.0.0.2 quoting UDP 10.0.0.1:5000 -> 10.0.0.2:53.
        let inner = [
            0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 0x13, 0x88, 0, 53,
            0, 8, 0, 0,
        ];
        let mut ip = vec![
            0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1,
        ];
        ip.extend_from_slice(&[3, 3, 0, 0, 0, 0, 0, 0]);
        ip.extend_from_slice(&inner);
        let total = ip.len() as u16;
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        let flow = flow_hash(
            "10.0.0.1".parse().unwrap(),
            5000,
            "10.0.0.2".parse().unwrap(),
            53,
        );
        assert_eq!(peek(LinkType::Raw, &ip), Peek::Flow(flow));
    }
}
