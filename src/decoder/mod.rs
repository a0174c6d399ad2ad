//! Packet decoding: link layer → IPv4/IPv6 → TCP/UDP/ICMP, over the capture buffer without
//! copying.
//!
//! Written by hand rather than on etherparse: the hot path needs one pass with no
//! intermediate slicing structures, snaplen-truncated frames must still decode (etherparse's
//! strict slicer rejects them and its defragmenter only takes the strict slice), and the link
//! types Packetbeat sees (BSD loopback, Linux SLL and SLL2, stacked VLAN tags) are a handful of
//! fixed headers. Every length is checked; a malformed packet is counted in [`DecoderStats`]
//! and skipped, never a panic.
//!
//! IPv4 fragments are reassembled ([`defrag`]), as Packetbeat 8 does.

pub mod defrag;
pub mod header;
pub mod link;
pub mod peek;

use crate::common::Ts;
use header::{ipv6, ports, Ipv4Header};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub use link::LinkType;

/// TCP header fields the TCP layer needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpHeader {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
}

impl TcpHeader {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;

    pub fn fin(&self) -> bool {
        self.flags & Self::FIN != 0
    }
    pub fn syn(&self) -> bool {
        self.flags & Self::SYN != 0
    }
    pub fn rst(&self) -> bool {
        self.flags & Self::RST != 0
    }
    pub fn has_ack(&self) -> bool {
        self.flags & Self::ACK != 0
    }
}

/// The transport layer of a decoded packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4<'a> {
    Tcp(TcpHeader, &'a [u8]),
    Udp {
        src_port: u16,
        dst_port: u16,
        payload: &'a [u8],
    },
    /// ICMPv4: type, code, and the bytes after the 4-byte type/code/checksum header.
    Icmp4 {
        icmp_type: u8,
        code: u8,
        body: &'a [u8],
    },
    Icmp6 {
        icmp_type: u8,
        code: u8,
        body: &'a [u8],
    },
    /// Any other IP protocol (not analysed; flows may count it).
    Other {
        proto: u8,
        payload: &'a [u8],
    },
}

/// A decoded packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoded<'a> {
    pub ts: Ts,
    /// Up to two 802.1Q VLAN ids, outermost first (0 = none).
    pub vlans: [u16; 2],
    pub src: IpAddr,
    pub dst: IpAddr,
    /// Bytes of the IP packet (header included), as on the wire when the capture holds it all.
    pub ip_len: usize,
    pub l4: L4<'a>,
    /// The packet completed a fragmented IPv4 datagram.
    pub reassembled: bool,
}

/// Why a packet was not decoded (each is counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// Not IP (ARP, LLDP, …): normal, not an error.
    NotIp,
    /// A header was cut short or inconsistent.
    Malformed,
    /// An IPv4 fragment waiting for the rest of its datagram.
    Fragment,
    /// IPv6 fragment: not reassembled (as in Packetbeat).
    Ipv6Fragment,
}

/// Counters of what the decoder skipped.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DecoderStats {
    pub packets: u64,
    pub not_ip: u64,
    pub malformed: u64,
    pub fragments: u64,
    pub reassembled: u64,
    /// IPv4 datagrams given up before they were whole ([`defrag::Ipv4Defrag::dropped`]; filled
    /// in by [`Decoder::stats`]).
    pub datagrams_dropped: u64,
    pub ipv6_fragments: u64,
}

/// A decoder for one packet source. Owns the fragment reassembly state, so each worker has its own.
#[derive(Default)]
pub struct Decoder {
    defrag: defrag::Ipv4Defrag,
    pub stats: DecoderStats,
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Sets `packetbeat.limits.ip_datagrams`.
    pub fn set_max_datagrams(&mut self, n: usize) {
        self.defrag.set_max_datagrams(n);
    }

    /// The counters, with the datagrams the reassembly gave up.
    pub fn stats(&self) -> DecoderStats {
        DecoderStats {
            datagrams_dropped: self.defrag.dropped,
            ..self.stats
        }
    }

    /// Decodes one frame. The result borrows the frame, or the reassembly buffer when the frame
    /// completed a fragmented datagram.
    pub fn decode<'a>(
        &'a mut self,
        link: LinkType,
        ts: Ts,
        frame: &'a [u8],
    ) -> Result<Decoded<'a>, Skip> {
        let Decoder { defrag, stats } = self;
        stats.packets += 1;
        let r = decode_frame(defrag, link, ts, frame);
        match r {
            Err(Skip::NotIp) => stats.not_ip += 1,
            Err(Skip::Malformed) => stats.malformed += 1,
            Err(Skip::Fragment) => stats.fragments += 1,
            Err(Skip::Ipv6Fragment) => stats.ipv6_fragments += 1,
            Ok(_) => {}
        }
        if let Ok(Decoded {
            reassembled: true, ..
        }) = r
        {
            stats.reassembled += 1;
        }
        r
    }
}

fn decode_frame<'a>(
    defrag: &'a mut defrag::Ipv4Defrag,
    link: LinkType,
    ts: Ts,
    frame: &'a [u8],
) -> Result<Decoded<'a>, Skip> {
    let (net, vlans) = link::strip(link, frame)?;
    let Some(&first) = net.first() else {
        return Err(Skip::Malformed);
    };
    match first >> 4 {
        4 => ipv4(defrag, ts, net, vlans),
        6 => ipv6(ts, net, vlans),
        _ => Err(Skip::NotIp),
    }
}

fn ipv4<'a>(
    defrag: &'a mut defrag::Ipv4Defrag,
    ts: Ts,
    ip: &'a [u8],
    vlans: [u16; 2],
) -> Result<Decoded<'a>, Skip> {
    let h = Ipv4Header::parse(ip).ok_or(Skip::Malformed)?;
    let src = IpAddr::V4(Ipv4Addr::from(h.src));
    let dst = IpAddr::V4(Ipv4Addr::from(h.dst));
    let proto = h.protocol;
    if h.is_fragment() {
        let key = defrag::FragKey {
            src,
            dst,
            id: h.id,
            proto,
        };
        match defrag.add(ts, key, h.fragment_offset, h.more_fragments, h.payload(ip)) {
            Some(datagram_len) => {
                let payload = defrag.completed(datagram_len);
                let l4 = transport(proto, payload)?;
                return Ok(Decoded {
                    ts,
                    vlans,
                    src,
                    dst,
                    ip_len: h.ihl + datagram_len,
                    l4,
                    reassembled: true,
                });
            }
            None => return Err(Skip::Fragment),
        }
    }
    let l4 = transport(proto, h.payload(ip))?;
    Ok(Decoded {
        ts,
        vlans,
        src,
        dst,
        ip_len: h.total_len,
        l4,
        reassembled: false,
    })
}

fn ipv6(ts: Ts, ip: &[u8], vlans: [u16; 2]) -> Result<Decoded<'_>, Skip> {
    let (src, dst, next, rest, payload_len) = ipv6_upper_layer(ip)?;
    let l4 = transport(next, rest)?;
    Ok(Decoded {
        ts,
        vlans,
        src,
        dst,
        ip_len: ipv6::LEN + payload_len,
        l4,
        reassembled: false,
    })
}

/// Walks an IPv6 header and its extension headers: (source, destination, upper-layer protocol,
/// upper-layer bytes, payload length).
pub(crate) fn ipv6_upper_layer(ip: &[u8]) -> Result<(IpAddr, IpAddr, u8, &[u8], usize), Skip> {
    if ip.len() < ipv6::LEN {
        return Err(Skip::Malformed);
    }
    let payload_len =
        u16::from_be_bytes([ip[ipv6::PAYLOAD_LEN], ip[ipv6::PAYLOAD_LEN + 1]]) as usize;
    let mut next = ip[ipv6::NEXT_HEADER];
    let (src, dst) = ipv6_addresses(ip);
    let end = (ipv6::LEN + payload_len).min(ip.len());
    let mut rest = &ip[ipv6::LEN..end];
    loop {
        match next {
            0 | 43 | 60 | 135 | 139 | 140 => {
                if rest.len() < 8 {
                    return Err(Skip::Malformed);
                }
                let len = (rest[1] as usize + 1) * 8;
                if rest.len() < len {
                    return Err(Skip::Malformed);
                }
                next = rest[0];
                rest = &rest[len..];
            }
            51 => {
                // Authentication header: length in 4-byte units, minus 2.
                if rest.len() < 8 {
                    return Err(Skip::Malformed);
                }
                let len = (rest[1] as usize + 2) * 4;
                if rest.len() < len {
                    return Err(Skip::Malformed);
                }
                next = rest[0];
                rest = &rest[len..];
            }
            44 => {
                if rest.len() < 8 {
                    return Err(Skip::Malformed);
                }
                let frag = u16::from_be_bytes([rest[2], rest[3]]);
                if frag & 0xfff9 != 0 {
                    // An offset or the M flag: a real fragment.
                    return Err(Skip::Ipv6Fragment);
                }
                // Atomic fragment: the whole datagram.
                next = rest[0];
                rest = &rest[8..];
            }
            59 => return Err(Skip::NotIp), // no next header
            _ => break,
        }
    }
    Ok((src, dst, next, rest, payload_len))
}

/// Source and destination of an IPv6 packet at least [`ipv6::LEN`] long.
pub(crate) fn ipv6_addresses(ip: &[u8]) -> (IpAddr, IpAddr) {
    let at = |i: usize| {
        IpAddr::V6(Ipv6Addr::from(
            <[u8; 16]>::try_from(&ip[i..i + 16]).expect("16 bytes"),
        ))
    };
    (at(ipv6::SRC), at(ipv6::DST))
}

/// The source and destination ports of a TCP, UDP or SCTP header at least 4 bytes long.
pub(crate) fn ports_of(l4: &[u8]) -> (u16, u16) {
    (
        u16::from_be_bytes([l4[ports::SRC], l4[ports::SRC + 1]]),
        u16::from_be_bytes([l4[ports::DST], l4[ports::DST + 1]]),
    )
}

fn transport(proto: u8, data: &[u8]) -> Result<L4<'_>, Skip> {
    match proto {
        6 => {
            if data.len() < 20 {
                return Err(Skip::Malformed);
            }
            let off = ((data[12] >> 4) as usize) * 4;
            if off < 20 || data.len() < off {
                return Err(Skip::Malformed);
            }
            let (src_port, dst_port) = ports_of(data);
            let hdr = TcpHeader {
                src_port,
                dst_port,
                seq: u32::from_be_bytes([data[4], data[5], data[6], data[7]]),
                ack: u32::from_be_bytes([data[8], data[9], data[10], data[11]]),
                flags: data[13],
            };
            Ok(L4::Tcp(hdr, &data[off..]))
        }
        17 => {
            if data.len() < 8 {
                return Err(Skip::Malformed);
            }
            let len = u16::from_be_bytes([data[4], data[5]]) as usize;
            if len < 8 {
                return Err(Skip::Malformed);
            }
            let end = len.min(data.len());
            let (src_port, dst_port) = ports_of(data);
            Ok(L4::Udp {
                src_port,
                dst_port,
                payload: &data[8..end],
            })
        }
        1 | 58 => {
            if data.len() < 4 {
                return Err(Skip::Malformed);
            }
            let (icmp_type, code, body) = (data[0], data[1], &data[4..]);
            Ok(if proto == 1 {
                L4::Icmp4 {
                    icmp_type,
                    code,
                    body,
                }
            } else {
                L4::Icmp6 {
                    icmp_type,
                    code,
                    body,
                }
            })
        }
        other => Ok(L4::Other {
            proto: other,
            payload: data,
        }),
    }
}

#[cfg(test)]
mod tests;
