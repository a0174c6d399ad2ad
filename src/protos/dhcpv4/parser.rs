//! DHCPv4 wire decoder reproducing the `insomniacslk/dhcp` version Packetbeat 8 links
//! (`dhcpv4.FromBytes` of mid-2018, through Elastic's fork): the 236-byte BOOTP header, the
//! magic cookie, and the option list with that library's per-option checks. An option that
//! library rejects makes the whole packet fail (Packetbeat then drops it and counts a parse
//! failure), so the same packets are accepted and rejected here.
//!
//! Pure and panic-free: every length is checked.

/// Why a payload is not a DHCPv4 message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Shorter than the 236-byte header.
    #[error("Invalid DHCPv4 header: shorter than 236 bytes")]
    ShortHeader,
    /// Fewer than 4 bytes after the header.
    #[error("invalid options: shorter than 4 bytes")]
    ShortOptions,
    #[error("invalid magic cookie")]
    BadMagicCookie,
    /// An option failed its checks (its code).
    #[error("invalid DHCPv4 option {0}")]
    BadOption(u8),
}

pub const HEADER_SIZE: usize = 236;
pub const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];

pub const OPTION_PAD: u8 = 0;
pub const OPTION_END: u8 = 255;

/// One decoded option, typed as the library types it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DhcpOption {
    MessageType(u8),
    ParameterRequestList(Vec<u8>),
    RequestedIpAddress([u8; 4]),
    ServerIdentifier([u8; 4]),
    BroadcastAddress([u8; 4]),
    MaximumMessageSize(u16),
    ClassIdentifier(Vec<u8>),
    DomainName(Vec<u8>),
    DomainNameServer(Vec<[u8; 4]>),
    /// RFC 3925 Vendor-Identifying Vendor Class: (enterprise id, data) pairs.
    Vivc(Vec<(u32, Vec<u8>)>),
    /// Any other option (Pad and End included, with no data).
    Generic {
        code: u8,
        data: Vec<u8>,
    },
}

impl DhcpOption {
    pub fn code(&self) -> u8 {
        match self {
            DhcpOption::MessageType(_) => 53,
            DhcpOption::ParameterRequestList(_) => 55,
            DhcpOption::RequestedIpAddress(_) => 50,
            DhcpOption::ServerIdentifier(_) => 54,
            DhcpOption::BroadcastAddress(_) => 28,
            DhcpOption::MaximumMessageSize(_) => 57,
            DhcpOption::ClassIdentifier(_) => 60,
            DhcpOption::DomainName(_) => 15,
            DhcpOption::DomainNameServer(_) => 6,
            DhcpOption::Vivc(_) => 124,
            DhcpOption::Generic { code, .. } => *code,
        }
    }

    /// The library's `Length()`: how many data bytes the option list walker skips.
    fn length(&self) -> usize {
        match self {
            DhcpOption::MessageType(_) => 1,
            DhcpOption::ParameterRequestList(l) => l.len(),
            DhcpOption::RequestedIpAddress(_)
            | DhcpOption::ServerIdentifier(_)
            | DhcpOption::BroadcastAddress(_) => 4,
            DhcpOption::MaximumMessageSize(_) => 2,
            DhcpOption::ClassIdentifier(s) | DhcpOption::DomainName(s) => s.len(),
            DhcpOption::DomainNameServer(l) => 4 * l.len(),
            DhcpOption::Vivc(ids) => ids.iter().map(|(_, d)| 5 + d.len()).sum(),
            DhcpOption::Generic { data, .. } => data.len(),
        }
    }
}

/// A decoded DHCPv4 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dhcpv4Message {
    pub op: u8,
    pub htype: u8,
    pub hlen: u8,
    pub hops: u8,
    pub xid: u32,
    pub secs: u16,
    pub flags: u16,
    pub ciaddr: [u8; 4],
    pub yiaddr: [u8; 4],
    pub siaddr: [u8; 4],
    pub giaddr: [u8; 4],
    pub chaddr: [u8; 16],
    pub sname: [u8; 64],
    pub file: [u8; 128],
    /// Every option parsed, including what follows End.
    pub options: Vec<DhcpOption>,
}

fn ip4(b: &[u8]) -> [u8; 4] {
    [b[0], b[1], b[2], b[3]]
}

/// `dhcpv4.FromBytes`.
pub fn parse(data: &[u8]) -> Result<Dhcpv4Message, ParseError> {
    if data.len() < HEADER_SIZE {
        return Err(ParseError::ShortHeader);
    }
    let mut chaddr = [0u8; 16];
    chaddr.copy_from_slice(&data[28..44]);
    let mut sname = [0u8; 64];
    sname.copy_from_slice(&data[44..108]);
    let mut file = [0u8; 128];
    file.copy_from_slice(&data[108..236]);
    let opts = &data[HEADER_SIZE..];
    if opts.len() < 4 {
        return Err(ParseError::ShortOptions);
    }
    if opts[..4] != MAGIC_COOKIE {
        return Err(ParseError::BadMagicCookie);
    }
    Ok(Dhcpv4Message {
        op: data[0],
        htype: data[1],
        hlen: data[2],
        hops: data[3],
        xid: u32::from_be_bytes([data[4], data[5], data[6], data[7]]),
        secs: u16::from_be_bytes([data[8], data[9]]),
        flags: u16::from_be_bytes([data[10], data[11]]),
        ciaddr: ip4(&data[12..16]),
        yiaddr: ip4(&data[16..20]),
        siaddr: ip4(&data[20..24]),
        giaddr: ip4(&data[24..28]),
        chaddr,
        sname,
        file,
        options: parse_options(&opts[4..])?,
    })
}

/// `OptionsFromBytesWithoutMagicCookie`, with its walker: after an option it skips one byte
/// for the code, one for the length only if the option's `Length()` is not zero, then
/// `Length()` bytes (so a zero-length option's length byte is read again as a Pad).
pub fn parse_options(data: &[u8]) -> Result<Vec<DhcpOption>, ParseError> {
    let mut out = Vec::new();
    let mut idx = 0usize;
    while idx < data.len() {
        let opt = parse_option(&data[idx..])?;
        idx += 1;
        let len = opt.length();
        if len > 0 {
            idx += 1;
        }
        idx += len;
        out.push(opt);
    }
    // The library errors when the walker steps past the end ("read past the end of options").
    if idx > data.len() {
        return Err(ParseError::BadOption(out.last().map_or(0, |o| o.code())));
    }
    Ok(out)
}

/// `ParseOption`: `data` starts at the option code.
pub fn parse_option(data: &[u8]) -> Result<DhcpOption, ParseError> {
    let code = *data.first().ok_or(ParseError::BadOption(0))?;
    let bad = ParseError::BadOption(code);
    // The declared length and the data it covers, checked as the generic parsers do.
    let body = |min_total: usize| -> Result<(usize, &[u8]), ParseError> {
        if data.len() < min_total.max(2) {
            return Err(bad.clone());
        }
        let len = data[1] as usize;
        if data.len() < len + 2 {
            return Err(bad.clone());
        }
        Ok((len, &data[2..2 + len]))
    };
    let fixed = |want: usize| -> Result<&[u8], ParseError> {
        if data.len() < 2 || data[1] as usize != want || data.len() < 2 + want {
            return Err(bad.clone());
        }
        Ok(&data[2..2 + want])
    };
    Ok(match code {
        53 => {
            if data.len() < 3 || data[1] != 1 {
                return Err(bad);
            }
            DhcpOption::MessageType(data[2])
        }
        55 => DhcpOption::ParameterRequestList(body(2)?.1.to_vec()),
        50 => DhcpOption::RequestedIpAddress(ip4(fixed(4)?)),
        54 => DhcpOption::ServerIdentifier(ip4(fixed(4)?)),
        28 => DhcpOption::BroadcastAddress(ip4(fixed(4)?)),
        57 => {
            let b = fixed(2)?;
            DhcpOption::MaximumMessageSize(u16::from_be_bytes([b[0], b[1]]))
        }
        60 => DhcpOption::ClassIdentifier(body(2)?.1.to_vec()),
        15 => DhcpOption::DomainName(body(2)?.1.to_vec()),
        6 => {
            if data.len() < 2 {
                return Err(bad);
            }
            let len = data[1] as usize;
            if len == 0 || !len.is_multiple_of(4) {
                return Err(bad);
            }
            let (_, b) = body(2)?;
            DhcpOption::DomainNameServer(b.chunks_exact(4).map(ip4).collect())
        }
        124 => {
            // The library compares the declared length with *everything* left in the option
            // area, so a VIVC option only parses when nothing follows it.
            if data.len() < 2 || data[1] as usize != data.len() - 2 {
                return Err(bad);
            }
            let mut rest = &data[2..];
            let mut ids = Vec::new();
            while rest.len() > 5 {
                let ent = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
                let n = rest[4] as usize;
                rest = &rest[5..];
                if n > rest.len() {
                    return Err(bad);
                }
                ids.push((ent, rest[..n].to_vec()));
                rest = &rest[n..];
            }
            if !rest.is_empty() {
                return Err(bad);
            }
            DhcpOption::Vivc(ids)
        }
        OPTION_PAD | OPTION_END => DhcpOption::Generic {
            code,
            data: Vec::new(),
        },
        _ => DhcpOption::Generic {
            code,
            data: body(2)?.1.to_vec(),
        },
    })
}
