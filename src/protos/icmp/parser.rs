//! ICMP message classification and naming (Packetbeat's `protos/icmp/message.go`, and the
//! type/code names of gopacket's `ICMPv4TypeCode` / `ICMPv6TypeCode`).
//!
//! Everything here is pure: [`parse`] turns an ICMP message (type, code, the bytes after the
//! checksum) into the [`IcmpInfo`] the analyzer tracks, and never panics.

/// What Packetbeat takes from one ICMP message on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpInfo {
    pub version: u8,
    pub icmp_type: u8,
    pub code: u8,
    /// Identifier and sequence number for the types that pair (0 otherwise).
    pub id: u16,
    pub seq: u16,
    /// Packetbeat's `length`: the bytes after the 8-byte header (gopacket's `Payload`).
    pub length: usize,
}

/// ICMPv4 types that are responses (every other type is a request).
const V4_RESPONSES: &[u8] = &[0, 14, 16, 18];
/// ICMPv6 types that are responses.
const V6_RESPONSES: &[u8] = &[129];
/// ICMPv4 error types.
const V4_ERRORS: &[u8] = &[3, 4, 11, 12];
/// ICMPv6 error types.
const V6_ERRORS: &[u8] = &[1, 2, 3, 4];
/// ICMPv4 types that come as request/response pairs.
const V4_PAIRS: &[u8] = &[8, 0, 13, 14, 15, 16, 17, 18];
/// ICMPv6 types that come as request/response pairs.
const V6_PAIRS: &[u8] = &[128, 129];

/// Decodes one ICMP message as Packetbeat's decoder and `extractTrackingData` do. `body` is
/// what follows type, code and checksum. `None` when Packetbeat would not process the message:
/// ICMPv4 shorter than gopacket's 8-byte header, or ICMPv6 without the 4 bytes Packetbeat's
/// decoder strips (Packetbeat would panic there; we skip).
pub fn parse(version: u8, icmp_type: u8, code: u8, body: &[u8]) -> Option<IcmpInfo> {
    if body.len() < 4 || !(version == 4 || version == 6) {
        return None;
    }
    let (id, seq) = if requires_counterpart(version, icmp_type) {
        (
            u16::from_be_bytes([body[0], body[1]]),
            u16::from_be_bytes([body[2], body[3]]),
        )
    } else {
        (0, 0)
    };
    Some(IcmpInfo {
        version,
        icmp_type,
        code,
        id,
        seq,
        length: body.len() - 4,
    })
}

/// `isRequest`.
pub fn is_request(version: u8, icmp_type: u8) -> bool {
    let responses = if version == 4 {
        V4_RESPONSES
    } else {
        V6_RESPONSES
    };
    !responses.contains(&icmp_type)
}

/// `isError`.
pub fn is_error(version: u8, icmp_type: u8) -> bool {
    let errors = if version == 4 { V4_ERRORS } else { V6_ERRORS };
    errors.contains(&icmp_type)
}

/// `requiresCounterpart`.
pub fn requires_counterpart(version: u8, icmp_type: u8) -> bool {
    let pairs = if version == 4 { V4_PAIRS } else { V6_PAIRS };
    pairs.contains(&icmp_type)
}

fn v4_names(t: u8) -> Option<(&'static str, &'static [(u8, &'static str)])> {
    Some(match t {
        3 => (
            "DestinationUnreachable",
            &[
                (0, "Net"),
                (1, "Host"),
                (2, "Protocol"),
                (3, "Port"),
                (4, "FragmentationNeeded"),
                (5, "SourceRoutingFailed"),
                (6, "NetUnknown"),
                (7, "HostUnknown"),
                (8, "SourceIsolated"),
                (9, "NetAdminProhibited"),
                (10, "HostAdminProhibited"),
                (11, "NetTOS"),
                (12, "HostTOS"),
                (13, "CommAdminProhibited"),
                (14, "HostPrecedence"),
                (15, "PrecedenceCutoff"),
            ][..],
        ),
        11 => (
            "TimeExceeded",
            &[(0, "TTLExceeded"), (1, "FragmentReassemblyTimeExceeded")][..],
        ),
        12 => (
            "ParameterProblem",
            &[
                (0, "PointerIndicatesError"),
                (1, "MissingOption"),
                (2, "BadLength"),
            ][..],
        ),
        4 => ("SourceQuench", &[][..]),
        5 => (
            "Redirect",
            &[(0, "Net"), (1, "Host"), (2, "TOS+Net"), (3, "TOS+Host")][..],
        ),
        8 => ("EchoRequest", &[][..]),
        0 => ("EchoReply", &[][..]),
        13 => ("TimestampRequest", &[][..]),
        14 => ("TimestampReply", &[][..]),
        15 => ("InfoRequest", &[][..]),
        16 => ("InfoReply", &[][..]),
        10 => ("RouterSolicitation", &[][..]),
        9 => ("RouterAdvertisement", &[][..]),
        17 => ("AddressMaskRequest", &[][..]),
        18 => ("AddressMaskReply", &[][..]),
        _ => return None,
    })
}

fn v6_names(t: u8) -> Option<(&'static str, &'static [(u8, &'static str)])> {
    Some(match t {
        1 => (
            "DestinationUnreachable",
            &[
                (0, "NoRouteToDst"),
                (1, "AdminProhibited"),
                (2, "BeyondScopeOfSrc"),
                (3, "AddressUnreachable"),
                (4, "PortUnreachable"),
                (5, "SrcAddressFailedPolicy"),
                (6, "RejectRouteToDst"),
            ][..],
        ),
        2 => ("PacketTooBig", &[][..]),
        3 => (
            "TimeExceeded",
            &[
                (0, "HopLimitExceeded"),
                (1, "FragmentReassemblyTimeExceeded"),
            ][..],
        ),
        4 => (
            "ParameterProblem",
            &[
                (0, "ErroneousHeaderField"),
                (1, "UnrecognizedNextHeader"),
                (2, "UnrecognizedIPv6Option"),
            ][..],
        ),
        128 => ("EchoRequest", &[][..]),
        129 => ("EchoReply", &[][..]),
        133 => ("RouterSolicitation", &[][..]),
        134 => ("RouterAdvertisement", &[][..]),
        135 => ("NeighborSolicitation", &[][..]),
        136 => ("NeighborAdvertisement", &[][..]),
        137 => ("Redirect", &[][..]),
        _ => return None,
    })
}

/// `humanReadable`: the type/code text Packetbeat puts in `icmp.request.message` and
/// `icmp.response.message`.
///
/// gopacket's `ICMPv4TypeCode.String()` (Packetbeat 8's unit tests: `DestinationUnreachable(Port)`,
/// `DestinationUnreachable(AddressUnreachable)`): a type without code names prints its name
/// alone (`EchoRequest`, as the reference Packetbeat build writes it; Packetbeat 8.0, on the older
/// packet library, wrote `EchoRequest(0)`), an unknown code of a known type `Type(Code: n)`, an
/// unknown type `t(c)`.
pub fn human_readable(version: u8, icmp_type: u8, code: u8) -> String {
    let names = if version == 4 {
        v4_names(icmp_type)
    } else {
        v6_names(icmp_type)
    };
    match names {
        None => format!("{icmp_type}({code})"),
        Some((name, [])) => name.to_string(),
        Some((name, codes)) => match codes.iter().find(|(c, _)| *c == code) {
            Some((_, c)) => format!("{name}({c})"),
            None => format!("{name}(Code: {code})"),
        },
    }
}
