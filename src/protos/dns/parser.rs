//! DNS wire-format decoder: a pure function from `&[u8]` to a [`Message`].
//!
//! Packetbeat decodes with `miekg/dns` (`Msg.Unpack`) and then formats what that library
//! produced, so what counts here is not RFC purity but reproducing miekg's decisions:
//! - which messages are rejected (any error anywhere rejects the whole message, and Packetbeat
//!   then reports "Message's data could not be decoded as DNS"),
//! - how lying section counts are handled (a record that starts exactly at the end of the
//!   message ends the section silently; anything else short is an error),
//! - how names and strings are escaped (`\.`, `\DDD`, …),
//! - that the RDATA of every record is read from the message cut at the record's end, with
//!   early exits when the RDATA ends between two fields (the missing fields stay zero),
//! - that the rdata must be consumed exactly (`bad rdlength`),
//! - that an RR with RDLENGTH 0 has no rdata at all (`noRdata`: e.g. an A record without IP).
//!
//! We do not use a DNS crate: none reproduces miekg's escaping, its tolerance rules and its
//! per-type presentation (which Packetbeat partly overrides), and getting those exactly right is
//! the whole point. Every read is bounds-checked; compression pointers are limited to miekg's
//! 126 jumps and names to 255 wire octets, so loops and bombs end in an error, never a panic.

/// Why a message could not be decoded (only for logs and tests: Packetbeat reports every decode
/// failure with the same note).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub &'static str);

type Result<T> = std::result::Result<T, DecodeError>;

pub const TYPE_A: u16 = 1;
pub const TYPE_NS: u16 = 2;
pub const TYPE_MD: u16 = 3;
pub const TYPE_MF: u16 = 4;
pub const TYPE_CNAME: u16 = 5;
pub const TYPE_SOA: u16 = 6;
pub const TYPE_MB: u16 = 7;
pub const TYPE_MG: u16 = 8;
pub const TYPE_MR: u16 = 9;
pub const TYPE_PTR: u16 = 12;
pub const TYPE_MINFO: u16 = 14;
pub const TYPE_MX: u16 = 15;
pub const TYPE_TXT: u16 = 16;
pub const TYPE_RP: u16 = 17;
pub const TYPE_AFSDB: u16 = 18;
pub const TYPE_RT: u16 = 21;
pub const TYPE_NSAPPTR: u16 = 23;
pub const TYPE_SIG: u16 = 24;
pub const TYPE_PX: u16 = 26;
pub const TYPE_AAAA: u16 = 28;
pub const TYPE_SRV: u16 = 33;
pub const TYPE_NAPTR: u16 = 35;
pub const TYPE_KX: u16 = 36;
pub const TYPE_DNAME: u16 = 39;
pub const TYPE_OPT: u16 = 41;
pub const TYPE_DS: u16 = 43;
pub const TYPE_RRSIG: u16 = 46;
pub const TYPE_NSEC: u16 = 47;
pub const TYPE_DNSKEY: u16 = 48;
pub const TYPE_NSEC3: u16 = 50;
pub const TYPE_NSEC3PARAM: u16 = 51;
pub const TYPE_TALINK: u16 = 58;
pub const TYPE_LP: u16 = 107;

/// miekg's `maxDomainNameWireOctets`.
const MAX_NAME_WIRE_OCTETS: i32 = 255;
/// miekg's `maxCompressionPointers`: (255+1)/2 - 2.
const MAX_COMPRESSION_POINTERS: usize = 126;

/// A decoded message, the fields of `mkdns.Msg` Packetbeat reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub id: u16,
    pub response: bool,
    pub opcode: u8,
    pub authoritative: bool,
    pub truncated: bool,
    pub recursion_desired: bool,
    pub recursion_available: bool,
    pub zero: bool,
    pub authenticated_data: bool,
    pub checking_disabled: bool,
    /// Header RCODE ORed with the OPT record's extended RCODE, as miekg does after unpacking.
    pub rcode: u16,
    pub questions: Vec<Question>,
    pub answers: Vec<Record>,
    pub authorities: Vec<Record>,
    pub additionals: Vec<Record>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Question {
    /// Presentation form as miekg gives it (escaped, with the trailing dot; "." for the root).
    pub name: String,
    pub qtype: u16,
    pub qclass: u16,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub name: String,
    pub rtype: u16,
    pub class: u16,
    pub ttl: u32,
    pub data: RData,
}

/// EDNS(0) option, decoded into the variants Packetbeat names (`mkdns.EDNS0_*`).
#[derive(Debug, Clone, PartialEq)]
pub enum EdnsOption {
    Llq {
        version: u16,
        opcode: u16,
        error: u16,
        id: u64,
        lease_life: u32,
    },
    Ul {
        lease: u32,
        key_lease: u32,
    },
    Nsid(Vec<u8>),
    Dau(Vec<u8>),
    Dhu(Vec<u8>),
    N3u(Vec<u8>),
    Subnet {
        family: u16,
        source_netmask: u8,
        source_scope: u8,
        address: Vec<u8>,
    },
    /// `None` when the option was empty.
    Expire(Option<u32>),
    Cookie(Vec<u8>),
    /// Options Packetbeat does not print (keepalive, padding, EDE, ESU).
    Ignored(u16),
    /// Any other code (miekg's `EDNS0_LOCAL`).
    Local {
        code: u16,
        data: Vec<u8>,
    },
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Opt {
    pub udp_size: u16,
    /// The TTL field: extended RCODE, version, DO bit.
    pub ttl: u32,
    pub options: Vec<EdnsOption>,
}

impl Opt {
    pub fn do_bit(&self) -> bool {
        self.ttl & 0x8000 != 0
    }
    pub fn version(&self) -> u8 {
        (self.ttl >> 16) as u8
    }
    /// miekg's `ExtendedRcode()`: the upper 8 bits of the 12-bit RCODE.
    pub fn extended_rcode(&self) -> u16 {
        ((self.ttl >> 24) as u16) << 4
    }
}

/// RDATA of the types Packetbeat formats field by field; everything else is [`RData::Raw`].
#[derive(Debug, Clone, PartialEq)]
pub enum RData {
    /// A / AAAA with RDLENGTH 0 (miekg leaves the IP nil; Packetbeat then skips the record).
    NoIp,
    A([u8; 4]),
    Aaaa([u8; 16]),
    /// CNAME, NS, PTR target.
    Name(String),
    Mx {
        preference: u16,
        exchange: String,
    },
    Soa {
        mname: String,
        rname: String,
        serial: u32,
        refresh: u32,
        retry: u32,
        expire: u32,
        minimum: u32,
    },
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: String,
    },
    Txt(Vec<String>),
    Dnskey {
        flags: u16,
        protocol: u8,
        algorithm: u8,
        public_key: Vec<u8>,
    },
    Ds {
        key_tag: u16,
        algorithm: u8,
        digest_type: u8,
        digest: Vec<u8>,
    },
    Rrsig {
        type_covered: u16,
        algorithm: u8,
        labels: u8,
        original_ttl: u32,
        expiration: u32,
        inception: u32,
        key_tag: u16,
        signer_name: String,
        signature: Vec<u8>,
    },
    Nsec {
        next_domain: String,
        types: Vec<u16>,
    },
    Nsec3 {
        hash: u8,
        flags: u8,
        iterations: u16,
        salt: Vec<u8>,
        next_domain: Vec<u8>,
        types: Vec<u16>,
    },
    Nsec3Param {
        hash: u8,
        flags: u8,
        iterations: u16,
        salt: Vec<u8>,
    },
    Opt(Opt),
    /// Uncompressed RDATA as miekg's `ToRFC3597` would re-pack it (names expanded).
    Raw(Vec<u8>),
}

/// Decodes one DNS message as `mkdns.Msg.Unpack` would.
pub fn parse_message(msg: &[u8]) -> Result<Message> {
    if msg.len() < 12 {
        return Err(DecodeError("dns: buffer size too small"));
    }
    let u16_at = |o: usize| u16::from_be_bytes([msg[o], msg[o + 1]]);
    let id = u16_at(0);
    let bits = u16_at(2);
    let counts = [u16_at(4), u16_at(6), u16_at(8), u16_at(10)];
    let mut m = Message {
        id,
        response: bits & 0x8000 != 0,
        opcode: ((bits >> 11) & 0xF) as u8,
        authoritative: bits & 0x0400 != 0,
        truncated: bits & 0x0200 != 0,
        recursion_desired: bits & 0x0100 != 0,
        recursion_available: bits & 0x0080 != 0,
        zero: bits & 0x0040 != 0,
        authenticated_data: bits & 0x0020 != 0,
        checking_disabled: bits & 0x0010 != 0,
        rcode: bits & 0xF,
        questions: Vec::new(),
        answers: Vec::new(),
        authorities: Vec::new(),
        additionals: Vec::new(),
    };
    let mut off = 12;
    // Header only: miekg returns it without sections (Packetbeat then rejects it as too short).
    if off == msg.len() {
        return Ok(m);
    }
    for _ in 0..counts[0] {
        let start = off;
        let (q, next) = unpack_question(msg, off)?;
        off = next;
        if off == start {
            break;
        }
        m.questions.push(q);
    }
    let (answers, next) = unpack_rr_slice(counts[1], msg, off)?;
    m.answers = answers;
    let (authorities, next) = unpack_rr_slice(counts[2], msg, next)?;
    m.authorities = authorities;
    let (additionals, _) = unpack_rr_slice(counts[3], msg, next)?;
    m.additionals = additionals;
    if let Some(opt) = m.edns() {
        m.rcode |= opt.extended_rcode();
    }
    Ok(m)
}

impl Message {
    /// miekg's `IsEdns0`: the last OPT record of the additional section.
    pub fn edns(&self) -> Option<&Opt> {
        self.additionals.iter().rev().find_map(|r| match &r.data {
            RData::Opt(o) if r.rtype == TYPE_OPT => Some(o),
            _ => None,
        })
    }

    /// Whether miekg's `Msg.Len()` would exceed the 12-byte header, i.e. whether any section has
    /// an entry (every question or record adds at least 5 bytes).
    pub fn has_body(&self) -> bool {
        !(self.questions.is_empty()
            && self.answers.is_empty()
            && self.authorities.is_empty()
            && self.additionals.is_empty())
    }
}

fn unpack_question(msg: &[u8], off: usize) -> Result<(Question, usize)> {
    let (name, mut off) = unpack_domain_name(msg, off)?;
    let mut q = Question {
        name,
        qtype: 0,
        qclass: 0,
    };
    if off == msg.len() {
        return Ok((q, off));
    }
    (q.qtype, off) = u16_be(msg, off)?;
    if off == msg.len() {
        return Ok((q, off));
    }
    (q.qclass, off) = u16_be(msg, off)?;
    Ok((q, off))
}

fn unpack_rr_slice(count: u16, msg: &[u8], mut off: usize) -> Result<(Vec<Record>, usize)> {
    let mut out = Vec::new();
    for _ in 0..count {
        let start = off;
        let (rr, next) = unpack_rr(msg, off)?;
        off = next;
        // "If offset does not increase anymore, l is a lie".
        if off == start {
            break;
        }
        if let Some(rr) = rr {
            out.push(rr);
        }
    }
    Ok((out, off))
}

/// One RR. `None` with an unchanged offset when the message ends exactly here (miekg's
/// zero-value header, which ends the section).
fn unpack_rr(msg: &[u8], off: usize) -> Result<(Option<Record>, usize)> {
    if off == msg.len() {
        return Ok((None, off));
    }
    let (name, off) = unpack_domain_name(msg, off)?;
    let (rtype, off) = u16_be(msg, off)?;
    let (class, off) = u16_be(msg, off)?;
    let (ttl, off) = u32_be(msg, off)?;
    let (rdlength, off) = u16_be(msg, off)?;
    let end = off + rdlength as usize;
    if end > msg.len() {
        return Err(DecodeError("dns: overflowing header size"));
    }
    // miekg hands the type's unpacker the message cut at the end of this record.
    let cut = &msg[..end];
    let data = if rdlength == 0 {
        empty_rdata(rtype)
    } else {
        let (data, next) = unpack_rdata(rtype, cut, off)?;
        if next != end {
            return Err(DecodeError("dns: bad rdlength"));
        }
        data
    };
    let mut rr = Record {
        name,
        rtype,
        class,
        ttl,
        data,
    };
    fix_opt_header(&mut rr);
    Ok((Some(rr), end))
}

/// RDATA of a record with RDLENGTH 0: the zero value of miekg's type.
fn empty_rdata(rtype: u16) -> RData {
    match rtype {
        TYPE_A | TYPE_AAAA => RData::NoIp,
        TYPE_CNAME | TYPE_NS | TYPE_PTR => RData::Name(String::new()),
        TYPE_MX => RData::Mx {
            preference: 0,
            exchange: String::new(),
        },
        TYPE_SOA => RData::Soa {
            mname: String::new(),
            rname: String::new(),
            serial: 0,
            refresh: 0,
            retry: 0,
            expire: 0,
            minimum: 0,
        },
        TYPE_SRV => RData::Srv {
            priority: 0,
            weight: 0,
            port: 0,
            target: String::new(),
        },
        TYPE_TXT => RData::Txt(Vec::new()),
        TYPE_DNSKEY => RData::Dnskey {
            flags: 0,
            protocol: 0,
            algorithm: 0,
            public_key: Vec::new(),
        },
        TYPE_DS => RData::Ds {
            key_tag: 0,
            algorithm: 0,
            digest_type: 0,
            digest: Vec::new(),
        },
        TYPE_RRSIG => RData::Rrsig {
            type_covered: 0,
            algorithm: 0,
            labels: 0,
            original_ttl: 0,
            expiration: 0,
            inception: 0,
            key_tag: 0,
            signer_name: String::new(),
            signature: Vec::new(),
        },
        TYPE_NSEC => RData::Nsec {
            next_domain: String::new(),
            types: Vec::new(),
        },
        TYPE_NSEC3 => RData::Nsec3 {
            hash: 0,
            flags: 0,
            iterations: 0,
            salt: Vec::new(),
            next_domain: Vec::new(),
            types: Vec::new(),
        },
        TYPE_NSEC3PARAM => RData::Nsec3Param {
            hash: 0,
            flags: 0,
            iterations: 0,
            salt: Vec::new(),
        },
        TYPE_OPT => RData::Opt(Opt::default()),
        _ => RData::Raw(Vec::new()),
    }
}

/// Reads fields in order from the record-cut message, stopping (with zero values for the rest)
/// when the cut is reached between fields, like miekg's generated `unpack` methods.
struct Fields<'a> {
    msg: &'a [u8],
    off: usize,
}

impl<'a> Fields<'a> {
    fn done(&self) -> bool {
        self.off == self.msg.len()
    }
    fn u8(&mut self) -> Result<u8> {
        let b = *self
            .msg
            .get(self.off)
            .ok_or(DecodeError("dns: overflow unpacking uint8"))?;
        self.off += 1;
        Ok(b)
    }
    fn u16(&mut self) -> Result<u16> {
        let (v, o) = u16_be(self.msg, self.off)?;
        self.off = o;
        Ok(v)
    }
    fn u32(&mut self) -> Result<u32> {
        let (v, o) = u32_be(self.msg, self.off)?;
        self.off = o;
        Ok(v)
    }
    fn name(&mut self) -> Result<String> {
        let (n, o) = unpack_domain_name(self.msg, self.off)?;
        self.off = o;
        Ok(n)
    }
    fn bytes(&mut self, n: usize) -> Result<Vec<u8>> {
        let end = self
            .off
            .checked_add(n)
            .filter(|&e| e <= self.msg.len())
            .ok_or(DecodeError("dns: overflow unpacking hex"))?;
        let v = self.msg[self.off..end].to_vec();
        self.off = end;
        Ok(v)
    }
    fn rest(&mut self) -> Vec<u8> {
        let v = self.msg[self.off..].to_vec();
        self.off = self.msg.len();
        v
    }
}

/// The RDATA of a record of type `rtype` starting at `off` in the record-cut message, and the
/// offset after it: one reader per type miekg knows, its raw bytes for the others.
fn unpack_rdata(rtype: u16, msg: &[u8], off: usize) -> Result<(RData, usize)> {
    let mut f = Fields { msg, off };
    let f = &mut f;
    let data = match rtype {
        TYPE_A => a(f)?,
        TYPE_AAAA => aaaa(f)?,
        TYPE_CNAME | TYPE_NS | TYPE_PTR => RData::Name(f.name()?),
        TYPE_MX => mx(f)?,
        TYPE_SRV => srv(f)?,
        TYPE_SOA => soa(f)?,
        TYPE_TXT => txt(f)?,
        TYPE_DNSKEY => dnskey(f)?,
        TYPE_DS => ds(f)?,
        TYPE_RRSIG => rrsig(f)?,
        TYPE_NSEC => nsec(f)?,
        TYPE_NSEC3 => nsec3(f)?,
        TYPE_NSEC3PARAM => nsec3param(f)?,
        TYPE_OPT => RData::Opt(Opt {
            udp_size: 0,
            ttl: 0,
            options: unpack_edns_options(f)?,
        }),
        TYPE_MD | TYPE_MF | TYPE_MB | TYPE_MG | TYPE_MR | TYPE_DNAME | TYPE_NSAPPTR => {
            one_name_rfc3597(f)?
        }
        TYPE_MINFO | TYPE_RP | TYPE_TALINK => two_names_rfc3597(f)?,
        TYPE_AFSDB | TYPE_RT | TYPE_KX | TYPE_LP | TYPE_PX => {
            preference_and_names_rfc3597(f, rtype == TYPE_PX)?
        }
        TYPE_NAPTR => naptr_rfc3597(f)?,
        TYPE_SIG => sig_rfc3597(f)?,
        _ => RData::Raw(f.rest()),
    };
    Ok((data, f.off))
}

// In the readers below, fields after the first start at their zero value and stay so when the
// RDATA ends before them (the labelled block is left early).

fn a(f: &mut Fields) -> Result<RData> {
    let b = f
        .bytes(4)
        .map_err(|_| DecodeError("dns: overflow unpacking a"))?;
    Ok(RData::A([b[0], b[1], b[2], b[3]]))
}

fn aaaa(f: &mut Fields) -> Result<RData> {
    let b = f
        .bytes(16)
        .map_err(|_| DecodeError("dns: overflow unpacking aaaa"))?;
    let mut a = [0u8; 16];
    a.copy_from_slice(&b);
    Ok(RData::Aaaa(a))
}

fn mx(f: &mut Fields) -> Result<RData> {
    let preference = f.u16()?;
    let exchange = if f.done() { String::new() } else { f.name()? };
    Ok(RData::Mx {
        preference,
        exchange,
    })
}

fn srv(f: &mut Fields) -> Result<RData> {
    let mut v = [0u16; 3];
    let mut target = String::new();
    'fields: {
        for slot in v.iter_mut() {
            *slot = f.u16()?;
            if f.done() {
                break 'fields;
            }
        }
        target = f.name()?;
    }
    Ok(RData::Srv {
        priority: v[0],
        weight: v[1],
        port: v[2],
        target,
    })
}

fn soa(f: &mut Fields) -> Result<RData> {
    let mname = f.name()?;
    let mut rname = String::new();
    let mut n = [0u32; 5];
    'fields: {
        if f.done() {
            break 'fields;
        }
        rname = f.name()?;
        if f.done() {
            break 'fields;
        }
        for slot in n.iter_mut() {
            *slot = f.u32()?;
            if f.done() {
                break 'fields;
            }
        }
    }
    Ok(RData::Soa {
        mname,
        rname,
        serial: n[0],
        refresh: n[1],
        retry: n[2],
        expire: n[3],
        minimum: n[4],
    })
}

fn txt(f: &mut Fields) -> Result<RData> {
    let mut strings = Vec::new();
    while !f.done() {
        let (s, o) = unpack_txt_string(f.msg, f.off)?;
        f.off = o;
        strings.push(s);
    }
    Ok(RData::Txt(strings))
}

fn dnskey(f: &mut Fields) -> Result<RData> {
    let flags = f.u16()?;
    let (mut protocol, mut algorithm, mut public_key) = (0, 0, Vec::new());
    'fields: {
        if f.done() {
            break 'fields;
        }
        protocol = f.u8()?;
        if f.done() {
            break 'fields;
        }
        algorithm = f.u8()?;
        if f.done() {
            break 'fields;
        }
        public_key = f.rest();
    }
    Ok(RData::Dnskey {
        flags,
        protocol,
        algorithm,
        public_key,
    })
}

fn ds(f: &mut Fields) -> Result<RData> {
    let key_tag = f.u16()?;
    let (mut algorithm, mut digest_type, mut digest) = (0, 0, Vec::new());
    'fields: {
        if f.done() {
            break 'fields;
        }
        algorithm = f.u8()?;
        if f.done() {
            break 'fields;
        }
        digest_type = f.u8()?;
        if f.done() {
            break 'fields;
        }
        digest = f.rest();
    }
    Ok(RData::Ds {
        key_tag,
        algorithm,
        digest_type,
        digest,
    })
}

fn rrsig(f: &mut Fields) -> Result<RData> {
    let type_covered = f.u16()?;
    let (mut algorithm, mut labels) = (0, 0);
    let (mut original_ttl, mut expiration, mut inception) = (0, 0, 0);
    let (mut key_tag, mut signer_name, mut signature) = (0, String::new(), Vec::new());
    'fields: {
        if f.done() {
            break 'fields;
        }
        algorithm = f.u8()?;
        if f.done() {
            break 'fields;
        }
        labels = f.u8()?;
        if f.done() {
            break 'fields;
        }
        original_ttl = f.u32()?;
        if f.done() {
            break 'fields;
        }
        expiration = f.u32()?;
        if f.done() {
            break 'fields;
        }
        inception = f.u32()?;
        if f.done() {
            break 'fields;
        }
        key_tag = f.u16()?;
        if f.done() {
            break 'fields;
        }
        signer_name = f.name()?;
        if f.done() {
            break 'fields;
        }
        signature = f.rest();
    }
    Ok(RData::Rrsig {
        type_covered,
        algorithm,
        labels,
        original_ttl,
        expiration,
        inception,
        key_tag,
        signer_name,
        signature,
    })
}

fn nsec(f: &mut Fields) -> Result<RData> {
    let next_domain = f.name()?;
    let types = if f.done() {
        Vec::new()
    } else {
        unpack_type_bitmap(f)?
    };
    Ok(RData::Nsec { next_domain, types })
}

/// The fields NSEC3 and NSEC3PARAM begin with.
#[derive(Default)]
struct Nsec3Head {
    hash: u8,
    flags: u8,
    iterations: u16,
    salt: Vec<u8>,
}

/// Reads [`Nsec3Head`]; also whether the RDATA goes on after the salt.
fn nsec3_head(f: &mut Fields) -> Result<(Nsec3Head, bool)> {
    let mut h = Nsec3Head::default();
    h.hash = f.u8()?;
    if f.done() {
        return Ok((h, false));
    }
    h.flags = f.u8()?;
    if f.done() {
        return Ok((h, false));
    }
    h.iterations = f.u16()?;
    if f.done() {
        return Ok((h, false));
    }
    let salt_len = f.u8()?;
    if f.done() {
        return Ok((h, false));
    }
    h.salt = f.bytes(salt_len as usize)?;
    Ok((h, !f.done()))
}

fn nsec3(f: &mut Fields) -> Result<RData> {
    let (h, more) = nsec3_head(f)?;
    let (mut next_domain, mut types) = (Vec::new(), Vec::new());
    'fields: {
        if !more {
            break 'fields;
        }
        let hash_len = f.u8()?;
        if f.done() {
            break 'fields;
        }
        next_domain = f
            .bytes(hash_len as usize)
            .map_err(|_| DecodeError("dns: overflow unpacking base32"))?;
        if f.done() {
            break 'fields;
        }
        types = unpack_type_bitmap(f)?;
    }
    Ok(RData::Nsec3 {
        hash: h.hash,
        flags: h.flags,
        iterations: h.iterations,
        salt: h.salt,
        next_domain,
        types,
    })
}

fn nsec3param(f: &mut Fields) -> Result<RData> {
    let (h, _) = nsec3_head(f)?;
    Ok(RData::Nsec3Param {
        hash: h.hash,
        flags: h.flags,
        iterations: h.iterations,
        salt: h.salt,
    })
}

// Types whose RDATA holds domain names, which miekg re-packs uncompressed for RFC 3597
// (Packetbeat prints them as raw RDATA).

/// MD, MF, MB, MG, MR, DNAME, NSAP-PTR: one name.
fn one_name_rfc3597(f: &mut Fields) -> Result<RData> {
    let mut out = Vec::new();
    push_wire_name(&mut out, &f.name()?);
    Ok(RData::Raw(out))
}

/// MINFO, RP, TALINK: two names.
fn two_names_rfc3597(f: &mut Fields) -> Result<RData> {
    let mut out = Vec::new();
    push_wire_name(&mut out, &f.name()?);
    if !f.done() {
        push_wire_name(&mut out, &f.name()?);
    }
    Ok(RData::Raw(out))
}

/// AFSDB, RT, KX, LP: a 16-bit value and a name; PX: and a second name.
fn preference_and_names_rfc3597(f: &mut Fields, two_names: bool) -> Result<RData> {
    let mut out = f.u16()?.to_be_bytes().to_vec();
    if !f.done() {
        push_wire_name(&mut out, &f.name()?);
        if two_names && !f.done() {
            push_wire_name(&mut out, &f.name()?);
        }
    }
    Ok(RData::Raw(out))
}

/// NAPTR: order, preference, three character strings, replacement name.
fn naptr_rfc3597(f: &mut Fields) -> Result<RData> {
    let mut out = Vec::new();
    'fields: {
        out.extend(f.u16()?.to_be_bytes());
        if f.done() {
            break 'fields;
        }
        out.extend(f.u16()?.to_be_bytes());
        for _ in 0..3 {
            if f.done() {
                break 'fields;
            }
            let len = f.u8()?;
            out.push(len);
            out.extend(
                f.bytes(len as usize)
                    .map_err(|_| DecodeError("dns: overflow unpacking string"))?,
            );
        }
        if f.done() {
            break 'fields;
        }
        push_wire_name(&mut out, &f.name()?);
    }
    Ok(RData::Raw(out))
}

/// SIG: the 18 fixed bytes of RRSIG's layout, the signer's name, the signature.
fn sig_rfc3597(f: &mut Fields) -> Result<RData> {
    let mut out = f.bytes(18.min(f.msg.len() - f.off))?;
    if !f.done() {
        push_wire_name(&mut out, &f.name()?);
        out.extend(f.rest());
    }
    Ok(RData::Raw(out))
}

/// Writes a presentation-form name (as produced by [`unpack_domain_name`]) back to wire form,
/// uncompressed, undoing the escapes.
fn push_wire_name(out: &mut Vec<u8>, name: &str) {
    if name == "." || name.is_empty() {
        out.push(0);
        return;
    }
    let b = name.as_bytes();
    let mut label = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) => {
                let v = (b[i + 1] - b'0') as u32 * 100
                    + (b[i + 2] - b'0') as u32 * 10
                    + (b[i + 3] - b'0') as u32;
                label.push(v as u8);
                i += 4;
            }
            b'\\' if i + 1 < b.len() => {
                label.push(b[i + 1]);
                i += 2;
            }
            b'.' => {
                out.push(label.len() as u8);
                out.extend_from_slice(&label);
                label.clear();
                i += 1;
            }
            c => {
                label.push(c);
                i += 1;
            }
        }
    }
    out.push(0);
}

/// miekg's `unpackDataNsec`.
fn unpack_type_bitmap(f: &mut Fields) -> Result<Vec<u16>> {
    let mut types = Vec::new();
    let mut last_window: i32 = -1;
    while !f.done() {
        if f.off + 2 > f.msg.len() {
            return Err(DecodeError("dns: overflow unpacking NSEC(3)"));
        }
        let window = f.msg[f.off] as i32;
        let length = f.msg[f.off + 1] as usize;
        f.off += 2;
        if window <= last_window {
            return Err(DecodeError(
                "dns: out of order NSEC(3) block in type bitmap",
            ));
        }
        if length == 0 {
            return Err(DecodeError("dns: empty NSEC(3) block in type bitmap"));
        }
        if length > 32 {
            return Err(DecodeError("dns: NSEC(3) block too long in type bitmap"));
        }
        if f.off + length > f.msg.len() {
            return Err(DecodeError("dns: overflowing NSEC(3) block in type bitmap"));
        }
        for (j, b) in f.msg[f.off..f.off + length].iter().enumerate() {
            for bit in 0..8 {
                if b & (0x80 >> bit) != 0 {
                    types.push((window * 256 + j as i32 * 8 + bit) as u16);
                }
            }
        }
        f.off += length;
        last_window = window;
    }
    Ok(types)
}

/// miekg's `unpackDataOpt` and the options' own `unpack` checks.
fn unpack_edns_options(f: &mut Fields) -> Result<Vec<EdnsOption>> {
    let mut opts = Vec::new();
    while !f.done() {
        let code = f
            .u16()
            .map_err(|_| DecodeError("dns: overflow unpacking opt"))?;
        let len = f
            .u16()
            .map_err(|_| DecodeError("dns: overflow unpacking opt"))? as usize;
        let b = f
            .bytes(len)
            .map_err(|_| DecodeError("dns: overflow unpacking opt"))?;
        let be16 = |o: usize| u16::from_be_bytes([b[o], b[o + 1]]);
        let be32 = |o: usize| u32::from_be_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        let opt = match code {
            1 => {
                if b.len() < 18 {
                    return Err(DecodeError("dns: buffer size too small"));
                }
                let id = u64::from_be_bytes([b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13]]);
                EdnsOption::Llq {
                    version: be16(0),
                    opcode: be16(2),
                    error: be16(4),
                    id,
                    lease_life: be32(14),
                }
            }
            2 => match b.len() {
                4 => EdnsOption::Ul {
                    lease: be32(0),
                    key_lease: 0,
                },
                8 => EdnsOption::Ul {
                    lease: be32(0),
                    key_lease: be32(4),
                },
                _ => return Err(DecodeError("dns: bad UL")),
            },
            3 => EdnsOption::Nsid(b),
            5 => EdnsOption::Dau(b),
            6 => EdnsOption::Dhu(b),
            7 => EdnsOption::N3u(b),
            8 => {
                if b.len() < 4 {
                    return Err(DecodeError("dns: buffer size too small"));
                }
                let family = be16(0);
                let (source_netmask, source_scope) = (b[2], b[3]);
                let address = match family {
                    0 => {
                        if source_netmask != 0 {
                            return Err(DecodeError("dns: bad address family"));
                        }
                        vec![0, 0, 0, 0]
                    }
                    1 => {
                        if source_netmask > 32 || source_scope > 32 {
                            return Err(DecodeError("dns: bad netmask"));
                        }
                        let mut a = vec![0u8; 4];
                        let n = (b.len() - 4).min(4);
                        a[..n].copy_from_slice(&b[4..4 + n]);
                        a
                    }
                    2 => {
                        if source_netmask > 128 || source_scope > 128 {
                            return Err(DecodeError("dns: bad netmask"));
                        }
                        let mut a = vec![0u8; 16];
                        let n = (b.len() - 4).min(16);
                        a[..n].copy_from_slice(&b[4..4 + n]);
                        a
                    }
                    _ => return Err(DecodeError("dns: bad address family")),
                };
                EdnsOption::Subnet {
                    family,
                    source_netmask,
                    source_scope,
                    address,
                }
            }
            9 => match b.len() {
                0 => EdnsOption::Expire(None),
                4 => EdnsOption::Expire(Some(be32(0))),
                _ => return Err(DecodeError("dns: buffer size too small")),
            },
            10 => EdnsOption::Cookie(b),
            11 => {
                if b.len() != 0 && b.len() != 2 {
                    return Err(DecodeError("dns: length mismatch"));
                }
                EdnsOption::Ignored(code)
            }
            12 => EdnsOption::Ignored(code),
            15 => {
                if b.len() < 2 {
                    return Err(DecodeError("dns: buffer size too small"));
                }
                EdnsOption::Ignored(code)
            }
            _ => EdnsOption::Local { code, data: b },
        };
        opts.push(opt);
    }
    Ok(opts)
}

fn u16_be(msg: &[u8], off: usize) -> Result<(u16, usize)> {
    match msg.get(off..off + 2) {
        Some(b) => Ok((u16::from_be_bytes([b[0], b[1]]), off + 2)),
        None => Err(DecodeError("dns: overflow unpacking uint16")),
    }
}

fn u32_be(msg: &[u8], off: usize) -> Result<(u32, usize)> {
    match msg.get(off..off + 4) {
        Some(b) => Ok((u32::from_be_bytes([b[0], b[1], b[2], b[3]]), off + 4)),
        None => Err(DecodeError("dns: overflow unpacking uint32")),
    }
}

/// miekg's `UnpackDomainName`: presentation form with trailing dot, "." for the root;
/// `.`, space, `'`, `@`, `;`, `(`, `)`, `"` and `\` are backslash-escaped, other bytes outside
/// `' '..='~'` become `\DDD`. Returns the offset after the name (after the first pointer).
pub fn unpack_domain_name(msg: &[u8], mut off: usize) -> Result<(String, usize)> {
    // Room for a typical name, so the pushes below do not regrow it.
    let mut s = String::with_capacity(32);
    let mut budget = MAX_NAME_WIRE_OCTETS;
    let mut ptrs = 0usize;
    let mut after_first_ptr = 0usize;
    loop {
        let c = *msg
            .get(off)
            .ok_or(DecodeError("dns: buffer size too small"))? as usize;
        off += 1;
        match c & 0xC0 {
            0x00 => {
                if c == 0 {
                    break;
                }
                let label = msg
                    .get(off..off + c)
                    .ok_or(DecodeError("dns: buffer size too small"))?;
                budget -= c as i32 + 1;
                if budget <= 0 {
                    return Err(DecodeError(
                        "dns: domain name exceeded 255 wire-format octets",
                    ));
                }
                for &b in label {
                    push_escaped_name_byte(&mut s, b);
                }
                s.push('.');
                off += c;
            }
            0xC0 => {
                let c1 = *msg
                    .get(off)
                    .ok_or(DecodeError("dns: buffer size too small"))?
                    as usize;
                off += 1;
                if ptrs == 0 {
                    after_first_ptr = off;
                }
                ptrs += 1;
                if ptrs > MAX_COMPRESSION_POINTERS {
                    return Err(DecodeError("dns: too many compression pointers"));
                }
                off = ((c ^ 0xC0) << 8) | c1;
            }
            _ => return Err(DecodeError("dns: bad rdata")),
        }
    }
    let end = if ptrs == 0 { off } else { after_first_ptr };
    if s.is_empty() {
        s.push('.');
    }
    Ok((s, end))
}

fn push_escaped_name_byte(s: &mut String, b: u8) {
    match b {
        b'.' | b' ' | b'\'' | b'@' | b';' | b'(' | b')' | b'"' | b'\\' => {
            s.push('\\');
            s.push(b as char);
        }
        _ if !(b' '..=b'~').contains(&b) => push_ddd(s, b),
        _ => s.push(b as char),
    }
}

fn push_ddd(s: &mut String, b: u8) {
    s.push('\\');
    s.push((b'0' + b / 100) as char);
    s.push((b'0' + (b / 10) % 10) as char);
    s.push((b'0' + b % 10) as char);
}

/// miekg's `unpackString` (one TXT character-string): `"` and `\` are backslash-escaped, bytes
/// outside `' '..='~'` become `\DDD`.
fn unpack_txt_string(msg: &[u8], off: usize) -> Result<(String, usize)> {
    let l = *msg
        .get(off)
        .ok_or(DecodeError("dns: overflow unpacking txt"))? as usize;
    let bytes = msg
        .get(off + 1..off + 1 + l)
        .ok_or(DecodeError("dns: overflow unpacking txt"))?;
    let mut s = String::with_capacity(l);
    for &b in bytes {
        match b {
            b'"' | b'\\' => {
                s.push('\\');
                s.push(b as char);
            }
            _ if !(b' '..=b'~').contains(&b) => push_ddd(&mut s, b),
            _ => s.push(b as char),
        }
    }
    Ok((s, off + 1 + l))
}

/// The OPT pseudo-record keeps its UDP size in CLASS and its flags in TTL; fill them in after
/// the header was read (kept out of `unpack_rdata`, which only sees the RDATA).
fn fix_opt_header(rr: &mut Record) {
    if let RData::Opt(o) = &mut rr.data {
        o.udp_size = rr.class;
        o.ttl = rr.ttl;
    }
}
