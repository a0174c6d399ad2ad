//! Where the fields are in the headers both the decoder and the dispatcher's [`peek`] read,
//! named once, and the checked fixed IPv4 header they both start from.
//!
//! [`peek`]: super::peek

/// IPv4 (RFC 791).
pub mod ipv4 {
    /// The fixed header, without options.
    pub const MIN_LEN: usize = 20;
    /// Version (high nibble) and header length in 32-bit words (low nibble).
    pub const VERSION_IHL: usize = 0;
    /// Total length, 16 bits.
    pub const TOTAL_LEN: usize = 2;
    /// Identification, 16 bits.
    pub const ID: usize = 4;
    /// Flags (3 bits) and fragment offset in 8-byte units (13 bits), 16 bits.
    pub const FLAGS_FRAGMENT: usize = 6;
    pub const MORE_FRAGMENTS: u16 = 0x2000;
    pub const FRAGMENT_OFFSET: u16 = 0x1fff;
    pub const PROTOCOL: usize = 9;
    pub const SRC: usize = 12;
    pub const DST: usize = 16;
}

/// IPv6 (RFC 8200).
pub mod ipv6 {
    /// The fixed header.
    pub const LEN: usize = 40;
    /// Payload length, 16 bits.
    pub const PAYLOAD_LEN: usize = 4;
    pub const NEXT_HEADER: usize = 6;
    pub const SRC: usize = 8;
    pub const DST: usize = 24;
}

/// TCP, UDP and SCTP: the ports, 16 bits each, start the header.
pub mod ports {
    pub const SRC: usize = 0;
    pub const DST: usize = 2;
}

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_be_bytes([b[i], b[i + 1]])
}

fn addr_at(b: &[u8], i: usize) -> [u8; 4] {
    [b[i], b[i + 1], b[i + 2], b[i + 3]]
}

/// The fixed IPv4 header of a packet whose header length and total length are consistent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Header {
    /// Header length in bytes (options included).
    pub ihl: usize,
    pub total_len: usize,
    pub id: u16,
    pub more_fragments: bool,
    /// Fragment offset in bytes.
    pub fragment_offset: usize,
    pub protocol: u8,
    pub src: [u8; 4],
    pub dst: [u8; 4],
}

impl Ipv4Header {
    /// `None` when the packet is shorter than the header, or the header length is below 20
    /// or above the packet or the total length.
    #[inline]
    pub fn parse(ip: &[u8]) -> Option<Ipv4Header> {
        if ip.len() < ipv4::MIN_LEN {
            return None;
        }
        let ihl = ((ip[ipv4::VERSION_IHL] & 0x0f) as usize) * 4;
        let total_len = u16_at(ip, ipv4::TOTAL_LEN) as usize;
        if ihl < ipv4::MIN_LEN || ip.len() < ihl || total_len < ihl {
            return None;
        }
        let frag = u16_at(ip, ipv4::FLAGS_FRAGMENT);
        Some(Ipv4Header {
            ihl,
            total_len,
            id: u16_at(ip, ipv4::ID),
            more_fragments: frag & ipv4::MORE_FRAGMENTS != 0,
            fragment_offset: ((frag & ipv4::FRAGMENT_OFFSET) as usize) * 8,
            protocol: ip[ipv4::PROTOCOL],
            src: addr_at(ip, ipv4::SRC),
            dst: addr_at(ip, ipv4::DST),
        })
    }

    pub fn is_fragment(&self) -> bool {
        self.more_fragments || self.fragment_offset != 0
    }

    /// The payload of `ip` (the packet this header was parsed from): up to the total length,
    /// so link-layer padding is trimmed, or as much as a short snaplen left.
    #[inline]
    pub fn payload<'a>(&self, ip: &'a [u8]) -> &'a [u8] {
        &ip[self.ihl..self.total_len.min(ip.len())]
    }
}
