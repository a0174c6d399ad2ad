//! Packetbeat's flow id (`flows/flowid.go`): the bytes that identify a flow, built layer by layer
//! as the packet is decoded, and their serialisation, which is `flow.id`.
//!
//! Each layer appends its address pair (or its single value) to a buffer and records where it
//! went; both directions of a flow give the same bytes because the first address pair that
//! differs decides the order (the smaller first, `bytes.Compare`) and every later pair follows
//! that decision. The serialised id is base64 (standard alphabet, no padding) of a 17-byte
//! header (flags, the offset of every layer, the layer counts) and the buffer.
//!
//! Everything here lives on the stack: building an id costs no allocation.

/// Layer flags (`FlowIDFlag`), in Packetbeat's bit order.
pub const ETH: u16 = 1 << 0;
pub const OUTER_VLAN: u16 = 1 << 1;
pub const VLAN: u16 = 1 << 2;
pub const OUTER_IPV4: u16 = 1 << 3;
pub const IPV4: u16 = 1 << 4;
pub const OUTER_IPV6: u16 = 1 << 5;
pub const IPV6: u16 = 1 << 6;
pub const ICMPV4: u16 = 1 << 7;
pub const ICMPV6: u16 = 1 << 8;
pub const UDP: u16 = 1 << 9;
pub const TCP: u16 = 1 << 10;
pub const CONNECTION_ID: u16 = 1 << 11;

/// Indices of the layer offsets, in the serialised header's order.
const O_ETH: usize = 0;
const O_OUTER_VLAN: usize = 1;
const O_VLAN: usize = 2;
const O_OUTER_IPV4: usize = 3;
const O_IPV4: usize = 4;
const O_OUTER_IPV6: usize = 5;
const O_IPV6: usize = 6;
const O_UDP: usize = 9;
const O_TCP: usize = 10;
const O_ID: usize = 11;

const UNSET: u8 = 0xff;

/// `SizeFlowIDMax`: MACs, two VLANs, two IPv4 and two IPv6 pairs, ICMP id, ports, connection id.
pub const MAX_ID: usize = 12 + 2 * (2 + 8 + 32) + 2 + 4 + 4 + 8;
/// The serialised header: flags (2), 12 offsets, 3 counts.
pub const META: usize = 17;

/// Which side sorted first (`flowDirection`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    Unset,
    Forward,
    Reversed,
}

/// A flow id under construction for one packet.
#[derive(Clone)]
pub struct FlowId {
    /// The header's room (written by [`FlowId::key_bytes`]), then the id bytes: the table is
    /// searched with these bytes in place, without a copy.
    buf: [u8; META + MAX_ID],
    len: u8,
    flags: u16,
    off: [u8; 12],
    cnt_eth: u8,
    cnt_vlan: u8,
    cnt_ip: u8,
    pub dir: Dir,
}

impl Default for FlowId {
    fn default() -> Self {
        FlowId::new()
    }
}

impl std::fmt::Debug for FlowId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FlowId({})", self.key().serialize())
    }
}

impl FlowId {
    pub fn new() -> FlowId {
        FlowId {
            buf: [0; META + MAX_ID],
            len: 0,
            flags: 0,
            off: [UNSET; 12],
            cnt_eth: 0,
            cnt_vlan: 0,
            cnt_ip: 0,
            dir: Dir::Unset,
        }
    }

    pub fn flags(&self) -> u16 {
        self.flags
    }

    pub fn add_eth(&mut self, src: &[u8; 6], dst: &[u8; 6]) {
        self.add_id(O_ETH, ETH, src, Some(dst), Dir::Unset);
        self.cnt_eth += 1;
    }

    pub fn add_vlan(&mut self, id: u16) {
        self.add_mult_layer(
            O_VLAN,
            O_OUTER_VLAN,
            VLAN,
            OUTER_VLAN,
            &id.to_le_bytes(),
            None,
        );
        self.cnt_vlan += 1;
    }

    pub fn add_ipv4(&mut self, src: &[u8; 4], dst: &[u8; 4]) {
        self.add_mult_layer(O_IPV4, O_OUTER_IPV4, IPV4, OUTER_IPV4, src, Some(dst));
        self.cnt_ip += 1;
    }

    pub fn add_ipv6(&mut self, src: &[u8; 16], dst: &[u8; 16]) {
        self.add_mult_layer(O_IPV6, O_OUTER_IPV6, IPV6, OUTER_IPV6, src, Some(dst));
        self.cnt_ip += 1;
    }

    pub fn add_udp(&mut self, src: u16, dst: u16) {
        self.add_id(
            O_UDP,
            UDP,
            &src.to_le_bytes(),
            Some(&dst.to_le_bytes()),
            Dir::Unset,
        );
    }

    pub fn add_tcp(&mut self, src: u16, dst: u16) {
        self.add_id(
            O_TCP,
            TCP,
            &src.to_le_bytes(),
            Some(&dst.to_le_bytes()),
            Dir::Unset,
        );
    }

    /// The TCP layer's connection id (Packetbeat's `uint32` counter, written as 8 bytes).
    pub fn add_connection_id(&mut self, id: u64) {
        self.add_id(O_ID, CONNECTION_ID, &id.to_le_bytes(), None, Dir::Unset);
    }

    /// `sortAddrWrite`: the pair in flow order; a single value only sets an unset direction.
    fn sort<'a>(&mut self, a: &'a [u8], b: Option<&'a [u8]>, hint: Dir) -> (&'a [u8], &'a [u8]) {
        let Some(b) = b else {
            if self.dir == Dir::Unset {
                self.dir = hint;
            }
            return (a, &[]);
        };
        match self.dir {
            Dir::Forward => return (a, b),
            Dir::Reversed => return (b, a),
            Dir::Unset => {}
        }
        match a.cmp(b) {
            std::cmp::Ordering::Less => {
                self.dir = Dir::Forward;
                (a, b)
            }
            std::cmp::Ordering::Greater => {
                self.dir = Dir::Reversed;
                (b, a)
            }
            std::cmp::Ordering::Equal => {
                self.dir = hint;
                (a, b)
            }
        }
    }

    fn append(&mut self, a: &[u8], b: &[u8]) -> Option<u8> {
        let at = self.len as usize;
        let end = at + a.len() + b.len();
        // Packetbeat's layer decoders cannot stack more than the buffer holds; a longer id is
        // cut, not a panic.
        let dst = self.buf[META..].get_mut(at..end)?;
        dst[..a.len()].copy_from_slice(a);
        dst[a.len()..].copy_from_slice(b);
        self.len = end as u8;
        Some(at as u8)
    }

    fn write_at(&mut self, at: u8, a: &[u8], b: &[u8]) {
        let at = at as usize;
        if let Some(dst) = self.buf[META..].get_mut(at..at + a.len() + b.len()) {
            dst[..a.len()].copy_from_slice(a);
            dst[a.len()..].copy_from_slice(b);
        }
    }

    /// `addID`: the first value of a layer appends, a later one overwrites it.
    // Always inlined: it runs for every layer of every packet's flow id, and LLVM's inliner
    // otherwise keeps it out of line or not depending on what else the crate holds (2 % more
    // instructions on a whole replay when it is out of line).
    #[inline(always)]
    fn add_id(&mut self, off: usize, flag: u16, a: &[u8], b: Option<&[u8]>, hint: Dir) {
        let (a, b) = self.sort(a, b, hint);
        if self.off[off] == UNSET {
            if let Some(at) = self.append(a, b) {
                self.off[off] = at;
                self.flags |= flag;
            }
        } else {
            self.write_at(self.off[off], a, b);
        }
    }

    /// `addMultLayerID`: the first value is the layer, the second makes the first the outer
    /// one, a third overwrites the oldest.
    fn add_mult_layer(
        &mut self,
        off: usize,
        outer: usize,
        flag: u16,
        outer_flag: u16,
        a: &[u8],
        b: Option<&[u8]>,
    ) {
        let (a, b) = self.sort(a, b, Dir::Unset);
        match self.flags & (flag | outer_flag) {
            f if f == flag | outer_flag => {
                self.off.swap(off, outer);
                self.write_at(self.off[off], a, b);
            }
            f if f == flag => {
                if let Some(at) = self.append(a, b) {
                    self.off[outer] = self.off[off];
                    self.off[off] = at;
                    self.flags |= outer_flag;
                }
            }
            _ => {
                if let Some(at) = self.append(a, b) {
                    self.off[off] = at;
                    self.flags |= flag;
                }
            }
        }
    }

    /// The key's bytes: the serialised header and the id bytes (what `flow.id` encodes).
    pub fn key_bytes(&mut self) -> &[u8] {
        self.buf[0..2].copy_from_slice(&self.flags.to_le_bytes());
        self.buf[2..14].copy_from_slice(&self.off);
        self.buf[14] = self.cnt_eth;
        self.buf[15] = self.cnt_vlan;
        self.buf[16] = self.cnt_ip;
        &self.buf[..META + self.len as usize]
    }

    /// The table key, owned (for a new flow).
    pub fn key(&self) -> FlowKey {
        let mut id = self.clone();
        FlowKey::new(id.key_bytes())
    }
}

/// Key bytes kept in the table entry itself: Ethernet, two VLAN tags, an IPv6 pair, ports and
/// the connection id fit. Longer keys (stacked IP layers) go to the heap. The table holds up to
/// `max_flows` entries, so the entry's size is the table's memory, and a key at its full
/// `META + MAX_ID` bytes in every entry would make it half as big again.
const INLINE_KEY: usize = 80;

/// A flow's identity: the 17-byte header and the id bytes, as `flow.id` serialises them. Both
/// directions of a flow have the same key.
#[derive(Clone)]
pub enum FlowKey {
    Inline { len: u8, bytes: [u8; INLINE_KEY] },
    Heap(Box<[u8]>),
}

impl PartialEq for FlowKey {
    fn eq(&self, o: &FlowKey) -> bool {
        self.as_bytes() == o.as_bytes()
    }
}

impl Eq for FlowKey {}

// Hashed as its byte slice, so the table can be searched with `&[u8]` (`Borrow`).
impl std::hash::Hash for FlowKey {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.as_bytes().hash(h);
    }
}

impl std::borrow::Borrow<[u8]> for FlowKey {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl std::fmt::Debug for FlowKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FlowKey({})", self.serialize())
    }
}

impl FlowKey {
    fn new(b: &[u8]) -> FlowKey {
        if b.len() <= INLINE_KEY {
            let mut bytes = [0; INLINE_KEY];
            bytes[..b.len()].copy_from_slice(b);
            FlowKey::Inline {
                len: b.len() as u8,
                bytes,
            }
        } else {
            FlowKey::Heap(b.into())
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        match self {
            FlowKey::Inline { len, bytes } => &bytes[..*len as usize],
            FlowKey::Heap(b) => b,
        }
    }

    pub fn flags(&self) -> u16 {
        let b = self.as_bytes();
        u16::from_le_bytes([b[0], b[1]])
    }

    fn id(&self) -> &[u8] {
        &self.as_bytes()[META..]
    }

    /// `Serialize`: `flow.id`.
    pub fn serialize(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(self.as_bytes())
    }

    fn offset(&self, i: usize) -> Option<usize> {
        match self.as_bytes()[2 + i] {
            UNSET => None,
            o => Some(o as usize),
        }
    }

    fn extract(&self, i: usize, size: usize) -> Option<&[u8]> {
        let o = self.offset(i)?;
        self.id().get(o..o + size)
    }

    /// `sortAddrRead`: the pair in the order of the flow's first packet.
    fn pair(&self, i: usize, size: usize, dir: Dir) -> Option<(&[u8], &[u8])> {
        let both = self.extract(i, 2 * size)?;
        let (a, b) = both.split_at(size);
        Some(if dir == Dir::Reversed { (b, a) } else { (a, b) })
    }

    pub fn eth(&self, dir: Dir) -> Option<([u8; 6], [u8; 6])> {
        let (a, b) = self.pair(O_ETH, 6, dir)?;
        Some((a.try_into().ok()?, b.try_into().ok()?))
    }

    pub fn outer_vlan(&self) -> Option<u16> {
        self.extract(O_OUTER_VLAN, 2)
            .map(|v| u16::from_le_bytes([v[0], v[1]]))
    }

    pub fn vlan(&self) -> Option<u16> {
        self.extract(O_VLAN, 2)
            .map(|v| u16::from_le_bytes([v[0], v[1]]))
    }

    pub fn outer_ipv4(&self, dir: Dir) -> Option<([u8; 4], [u8; 4])> {
        let (a, b) = self.pair(O_OUTER_IPV4, 4, dir)?;
        Some((a.try_into().ok()?, b.try_into().ok()?))
    }

    pub fn ipv4(&self, dir: Dir) -> Option<([u8; 4], [u8; 4])> {
        let (a, b) = self.pair(O_IPV4, 4, dir)?;
        Some((a.try_into().ok()?, b.try_into().ok()?))
    }

    pub fn outer_ipv6(&self, dir: Dir) -> Option<([u8; 16], [u8; 16])> {
        let (a, b) = self.pair(O_OUTER_IPV6, 16, dir)?;
        Some((a.try_into().ok()?, b.try_into().ok()?))
    }

    pub fn ipv6(&self, dir: Dir) -> Option<([u8; 16], [u8; 16])> {
        let (a, b) = self.pair(O_IPV6, 16, dir)?;
        Some((a.try_into().ok()?, b.try_into().ok()?))
    }

    pub fn udp(&self, dir: Dir) -> Option<(u16, u16)> {
        let (a, b) = self.pair(O_UDP, 2, dir)?;
        Some((
            u16::from_le_bytes([a[0], a[1]]),
            u16::from_le_bytes([b[0], b[1]]),
        ))
    }

    pub fn tcp(&self, dir: Dir) -> Option<(u16, u16)> {
        let (a, b) = self.pair(O_TCP, 2, dir)?;
        Some((
            u16::from_le_bytes([a[0], a[1]]),
            u16::from_le_bytes([b[0], b[1]]),
        ))
    }
}
