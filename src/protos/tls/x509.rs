//! X.509 certificates as Go's `crypto/x509` parses them and as Packetbeat prints them
//! (`certToMap`, `pkix.Name.String()`, `SignatureAlgorithm.String()`, `big.Int.Text(10)`).
//!
//! A small strict DER reader, written here rather than taken from an X.509 crate because what
//! counts is Go's verdict: a certificate Go would refuse (bad structure, unsupported elliptic
//! curve, malformed SAN) is refused here too, and Packetbeat then drops the whole Certificate
//! message; one Go accepts is read the way Go reads it (names, times, serials, key sizes).
//! PEM for the raw chains comes from the `pem` crate, whose LF output is Go's byte for byte.

use chrono::{NaiveDate, NaiveDateTime};
use serde_json::{json, Map, Value};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A parsed certificate with what the event needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Certificate {
    /// The whole DER encoding (`cert.Raw`): hashed for fingerprints, PEM-encoded for raw chains.
    pub raw: Vec<u8>,
    pub version: i64,
    pub serial: String,
    pub signature_algorithm: String,
    pub public_key_algorithm: String,
    pub public_key_size: u64,
    pub issuer: Name,
    pub subject: Name,
    pub not_before: NaiveDateTime,
    pub not_after: NaiveDateTime,
    pub dns_names: Vec<String>,
    pub emails: Vec<String>,
    pub ips: Vec<IpAddr>,
}

/// One attribute of a distinguished name.
#[derive(Debug, Clone, PartialEq)]
pub struct Atv {
    pub oid: Vec<u64>,
    /// The value when it is one of the ASN.1 string types Go turns into a `string`.
    pub text: Option<String>,
    /// Go's `asn1.Marshal` of the value (used for unknown attribute types).
    pub der: Vec<u8>,
}

/// `pkix.Name` after `FillFromRDNSequence`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Name {
    pub names: Vec<Atv>,
    pub country: Vec<String>,
    pub organization: Vec<String>,
    pub organizational_unit: Vec<String>,
    pub locality: Vec<String>,
    pub province: Vec<String>,
    pub street_address: Vec<String>,
    pub postal_code: Vec<String>,
    pub serial_number: String,
    pub common_name: String,
}

/// A certificate Go would refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

type R<T> = Result<T, Malformed>;

/// A DER element: tag, contents, whole encoding, what follows.
type Tlv<'a> = (u8, &'a [u8], &'a [u8], &'a [u8]);

/// An attribute of a name being printed: type, value, value re-marshalled.
type PrintedAtv = (Vec<u64>, Option<String>, Vec<u8>);

/// One DER element: tag, contents, the whole encoding, and what follows it.
fn read_tlv(b: &[u8]) -> R<Tlv<'_>> {
    let tag = *b.first().ok_or(Malformed)?;
    if tag & 0x1f == 0x1f {
        return Err(Malformed); // high tag numbers are not used in certificates
    }
    let l0 = *b.get(1).ok_or(Malformed)?;
    let (len, hdr) = if l0 < 0x80 {
        (l0 as usize, 2)
    } else {
        let n = (l0 & 0x7f) as usize;
        if n == 0 || n > 4 {
            return Err(Malformed);
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *b.get(2 + i).ok_or(Malformed)? as usize;
        }
        if len < 0x80 {
            return Err(Malformed); // DER: shortest form
        }
        (len, 2 + n)
    };
    let end = hdr.checked_add(len).ok_or(Malformed)?;
    if end > b.len() {
        return Err(Malformed);
    }
    Ok((tag, &b[hdr..end], &b[..end], &b[end..]))
}

fn expect(b: &[u8], tag: u8) -> R<(&[u8], &[u8])> {
    let (t, c, _, rest) = read_tlv(b)?;
    if t != tag {
        return Err(Malformed);
    }
    Ok((c, rest))
}

fn parse_oid(c: &[u8]) -> R<Vec<u64>> {
    if c.is_empty() {
        return Err(Malformed);
    }
    let mut arcs = Vec::new();
    let mut v: u64 = 0;
    for (i, &byte) in c.iter().enumerate() {
        if v > (u64::MAX >> 7) {
            return Err(Malformed);
        }
        v = (v << 7) | (byte & 0x7f) as u64;
        if byte & 0x80 == 0 {
            if arcs.is_empty() {
                let first = if v < 80 { v / 40 } else { 2 };
                arcs.push(first);
                arcs.push(v - first * 40);
            } else {
                arcs.push(v);
            }
            v = 0;
        } else if i == c.len() - 1 {
            return Err(Malformed);
        }
    }
    Ok(arcs)
}

pub fn oid_string(oid: &[u64]) -> String {
    oid.iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(".")
}

/// Decimal text of a DER INTEGER (two's complement, big-endian), as `big.Int.Text(10)`.
pub fn integer_text(c: &[u8]) -> String {
    if c.is_empty() {
        return "0".into();
    }
    let negative = c[0] & 0x80 != 0;
    let mut mag: Vec<u8> = c.to_vec();
    if negative {
        // magnitude = two's complement negation
        for b in mag.iter_mut() {
            *b = !*b;
        }
        for b in mag.iter_mut().rev() {
            let (v, carry) = b.overflowing_add(1);
            *b = v;
            if !carry {
                break;
            }
        }
    }
    let mut digits = Vec::new();
    let mut n: Vec<u8> = mag.into_iter().skip_while(|&b| b == 0).collect();
    while !n.is_empty() {
        let mut rem: u32 = 0;
        let mut q = Vec::with_capacity(n.len());
        for &b in &n {
            let cur = (rem << 8) | b as u32;
            let d = cur / 10;
            rem = cur % 10;
            if !(q.is_empty() && d == 0) {
                q.push(d as u8);
            }
        }
        digits.push(b'0' + rem as u8);
        n = q;
    }
    if digits.is_empty() {
        digits.push(b'0');
    }
    if negative {
        digits.push(b'-');
    }
    digits.reverse();
    String::from_utf8(digits).unwrap_or_default()
}

/// Bit length of a non-negative DER INTEGER's value.
fn bit_len(c: &[u8]) -> u64 {
    let c: Vec<u8> = c.iter().copied().skip_while(|&b| b == 0).collect();
    match c.first() {
        None => 0,
        Some(&b) => (c.len() as u64 - 1) * 8 + (8 - b.leading_zeros() as u64),
    }
}

/// `asn1`'s PrintableString character set (`*` and `&` rejected, as `Marshal` does).
fn is_printable_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || (b'\''..=b')').contains(&b)
        || (b'+'..=b'/').contains(&b)
        || matches!(b, b' ' | b':' | b'=' | b'?')
}

/// `asn1.Marshal` of a Go string: PrintableString when it can be, else UTF8String.
fn marshal_string(s: &str) -> Vec<u8> {
    let tag = if s.bytes().all(is_printable_byte) {
        0x13
    } else {
        0x0c
    };
    let mut out = vec![tag];
    let n = s.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes: Vec<u8> = (n as u32)
            .to_be_bytes()
            .into_iter()
            .skip_while(|&b| b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend(s.as_bytes());
    out
}

/// An attribute value as `x509`'s `parseASN1String` reads it; other types, and values not
/// valid for their type, make Go refuse the certificate.
fn string_value(tag: u8, c: &[u8]) -> R<String> {
    let lossy = || String::from_utf8_lossy(c).into_owned();
    match tag {
        // T61String: the bytes as they are.
        0x14 => Ok(lossy()),
        // PrintableString, with the `*` and `&` x509 tolerates.
        0x13 => {
            if c.iter()
                .all(|&b| is_printable_byte(b) || b == b'*' || b == b'&')
            {
                Ok(lossy())
            } else {
                Err(Malformed)
            }
        }
        0x0c => std::str::from_utf8(c)
            .map(str::to_string)
            .map_err(|_| Malformed),
        0x1e => {
            if !c.len().is_multiple_of(2) {
                return Err(Malformed);
            }
            let mut c = c;
            if c.len() >= 2 && c[c.len() - 1] == 0 && c[c.len() - 2] == 0 {
                c = &c[..c.len() - 2];
            }
            let units: Vec<u16> = c
                .chunks(2)
                .map(|p| u16::from_be_bytes([p[0], p[1]]))
                .collect();
            Ok(String::from_utf16_lossy(&units))
        }
        0x16 => {
            if c.is_ascii() {
                Ok(lossy())
            } else {
                Err(Malformed)
            }
        }
        0x12 => {
            if c.iter().all(|&b| b.is_ascii_digit() || b == b' ') {
                Ok(lossy())
            } else {
                Err(Malformed)
            }
        }
        _ => Err(Malformed),
    }
}

/// A DER Name's contents (the RDN sequence without its outer SEQUENCE header).
pub fn parse_name(c: &[u8]) -> R<Name> {
    let mut name = Name::default();
    let mut rest = c;
    while !rest.is_empty() {
        let (set, r) = expect(rest, 0x31)?;
        rest = r;
        let mut s = set;
        while !s.is_empty() {
            let (atv, r2) = expect(s, 0x30)?;
            s = r2;
            let (oid, r3) = expect(atv, 0x06)?;
            let oid = parse_oid(oid)?;
            let (tag, val, _, _) = read_tlv(r3)?;
            let value = string_value(tag, val)?;
            name.names.push(Atv {
                oid: oid.clone(),
                text: Some(value.clone()),
                der: marshal_string(&value),
            });
            if oid.len() == 4 && oid[0] == 2 && oid[1] == 5 && oid[2] == 4 {
                match oid[3] {
                    3 => name.common_name = value,
                    5 => name.serial_number = value,
                    6 => name.country.push(value),
                    7 => name.locality.push(value),
                    8 => name.province.push(value),
                    9 => name.street_address.push(value),
                    10 => name.organization.push(value),
                    11 => name.organizational_unit.push(value),
                    17 => name.postal_code.push(value),
                    _ => {}
                }
            }
        }
    }
    Ok(name)
}

fn type_name(oid: &[u64]) -> Option<&'static str> {
    if oid.len() != 4 || oid[0] != 2 || oid[1] != 5 || oid[2] != 4 {
        return None;
    }
    Some(match oid[3] {
        3 => "CN",
        5 => "SERIALNUMBER",
        6 => "C",
        7 => "L",
        8 => "ST",
        9 => "STREET",
        10 => "O",
        11 => "OU",
        17 => "POSTALCODE",
        _ => return None,
    })
}

fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let last = v.len().saturating_sub(1);
    for (k, c) in v.char_indices() {
        let esc = match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' => true,
            ' ' => k == 0 || k == last,
            '#' => k == 0,
            _ => false,
        };
        if esc {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl Name {
    /// Go's `pkix.Name.String()`: attributes Go does not map to a field first (printed last),
    /// then the known fields in `ToRDNSequence` order; the sequence printed in reverse.
    pub fn to_go_string(&self) -> String {
        // Each RDN: a list of (oid, text, der).
        let mut rdns: Vec<Vec<PrintedAtv>> = Vec::new();
        for atv in &self.names {
            let t = &atv.oid;
            if t.len() == 4
                && t[0] == 2
                && t[1] == 5
                && t[2] == 4
                && matches!(t[3], 3 | 5 | 6 | 7 | 8 | 9 | 10 | 11 | 17)
            {
                continue;
            }
            rdns.push(vec![(atv.oid.clone(), atv.text.clone(), atv.der.clone())]);
        }
        let mut add = |values: &[String], last: u64| {
            if values.is_empty() {
                return;
            }
            rdns.push(
                values
                    .iter()
                    .map(|v| (vec![2, 5, 4, last], Some(v.clone()), marshal_string(v)))
                    .collect(),
            );
        };
        add(&self.country, 6);
        add(&self.province, 8);
        add(&self.locality, 7);
        add(&self.street_address, 9);
        add(&self.postal_code, 17);
        add(&self.organization, 10);
        add(&self.organizational_unit, 11);
        if !self.common_name.is_empty() {
            add(std::slice::from_ref(&self.common_name), 3);
        }
        if !self.serial_number.is_empty() {
            add(std::slice::from_ref(&self.serial_number), 5);
        }
        let mut s = String::new();
        for (i, rdn) in rdns.iter().rev().enumerate() {
            if i > 0 {
                s.push(',');
            }
            for (j, (oid, text, der)) in rdn.iter().enumerate() {
                if j > 0 {
                    s.push('+');
                }
                match type_name(oid) {
                    None => {
                        s.push_str(&oid_string(oid));
                        s.push_str("=#");
                        s.push_str(&hex(der));
                    }
                    Some(tn) => {
                        s.push_str(tn);
                        s.push('=');
                        s.push_str(&escape(text.as_deref().unwrap_or("")));
                    }
                }
            }
        }
        s
    }

    /// Packetbeat's `toMap(*pkix.Name)`.
    pub fn to_map(&self) -> Map<String, Value> {
        let mut m = Map::new();
        let mut put = |k: &str, v: String| {
            if !v.is_empty() {
                m.insert(k.to_string(), Value::from(v));
            }
        };
        put("country", self.country.join(" "));
        put("organization", self.organization.join(" "));
        put("organizational_unit", self.organizational_unit.join(" "));
        put("locality", self.locality.join(" "));
        put("postal_code", self.postal_code.join(" "));
        put("serial_number", self.serial_number.clone());
        put("common_name", self.common_name.clone());
        put("street_address", self.street_address.join(" "));
        put("state_or_province", self.province.join(" "));
        put("distinguished_name", self.to_go_string());
        m
    }
}

pub fn hex(b: &[u8]) -> String {
    hex::encode(b)
}

fn digits(s: &[u8]) -> R<u32> {
    if s.is_empty() || !s.iter().all(|b| b.is_ascii_digit()) {
        return Err(Malformed);
    }
    Ok(s.iter().fold(0u32, |a, b| a * 10 + (b - b'0') as u32))
}

/// UTCTime / GeneralizedTime, in UTC (Go accepts `Z` or a `+hhmm`/`-hhmm` offset).
fn parse_time(tag: u8, c: &[u8]) -> R<NaiveDateTime> {
    let (year, rest) = match tag {
        0x17 => {
            let y = digits(c.get(0..2).ok_or(Malformed)?)? as i32;
            (if y >= 50 { 1900 + y } else { 2000 + y }, &c[2..])
        }
        0x18 => (digits(c.get(0..4).ok_or(Malformed)?)? as i32, &c[4..]),
        _ => return Err(Malformed),
    };
    let mo = digits(rest.get(0..2).ok_or(Malformed)?)?;
    let d = digits(rest.get(2..4).ok_or(Malformed)?)?;
    let h = digits(rest.get(4..6).ok_or(Malformed)?)?;
    let mi = digits(rest.get(6..8).ok_or(Malformed)?)?;
    let mut rest = &rest[8..];
    let mut sec = 0;
    if tag == 0x18 || rest.first().is_some_and(|b| b.is_ascii_digit()) {
        sec = digits(rest.get(0..2).ok_or(Malformed)?)?;
        rest = &rest[2..];
    }
    let base = NaiveDate::from_ymd_opt(year, mo, d)
        .and_then(|dt| dt.and_hms_opt(h, mi, sec))
        .ok_or(Malformed)?;
    match rest {
        b"Z" => Ok(base),
        [sign @ (b'+' | b'-'), tz @ ..] if tz.len() == 4 => {
            let off = (digits(&tz[0..2])? * 60 + digits(&tz[2..4])?) as i64;
            if off == 0 {
                // Go re-formats the time and compares: a zero offset prints as `Z`.
                return Err(Malformed);
            }
            let off = chrono::Duration::minutes(if *sign == b'+' { off } else { -off });
            base.checked_sub_signed(off).ok_or(Malformed)
        }
        _ => Err(Malformed),
    }
}

/// Go's `SignatureAlgorithm.String()` for an AlgorithmIdentifier.
pub(crate) fn signature_algorithm(alg: &[u8]) -> R<String> {
    let (oid, params) = expect(alg, 0x06)?;
    let oid = oid_string(&parse_oid(oid)?);
    let name = match oid.as_str() {
        "1.2.840.113549.1.1.2" => "MD2-RSA",
        "1.2.840.113549.1.1.4" => "MD5-RSA",
        "1.2.840.113549.1.1.5" | "1.3.14.3.2.29" => "SHA1-RSA",
        "1.2.840.113549.1.1.11" => "SHA256-RSA",
        "1.2.840.113549.1.1.12" => "SHA384-RSA",
        "1.2.840.113549.1.1.13" => "SHA512-RSA",
        "1.2.840.10040.4.3" => "DSA-SHA1",
        "2.16.840.1.101.3.4.3.2" => "DSA-SHA256",
        "1.2.840.10045.4.1" => "ECDSA-SHA1",
        "1.2.840.10045.4.3.2" => "ECDSA-SHA256",
        "1.2.840.10045.4.3.3" => "ECDSA-SHA384",
        "1.2.840.10045.4.3.4" => "ECDSA-SHA512",
        "1.3.101.112" => "Ed25519",
        "1.2.840.113549.1.1.10" => {
            // RSASSA-PSS: the hash in the parameters decides.
            let hash = pss_hash(params).unwrap_or_default();
            match hash.as_str() {
                "2.16.840.1.101.3.4.2.1" => "SHA256-RSAPSS",
                "2.16.840.1.101.3.4.2.2" => "SHA384-RSAPSS",
                "2.16.840.1.101.3.4.2.3" => "SHA512-RSAPSS",
                _ => "0",
            }
        }
        _ => "0",
    };
    Ok(name.to_string())
}

fn pss_hash(params: &[u8]) -> R<String> {
    let (seq, _) = expect(params, 0x30)?;
    let (h, _) = expect(seq, 0xa0)?;
    let (alg, _) = expect(h, 0x30)?;
    let (oid, _) = expect(alg, 0x06)?;
    Ok(oid_string(&parse_oid(oid)?))
}

/// Public key algorithm name (Packetbeat's `toString`) and size (`getKeySize`).
pub(crate) fn public_key(spki: &[u8]) -> R<(String, u64)> {
    let (alg, rest) = expect(spki, 0x30)?;
    let (bits, _) = expect(rest, 0x03)?;
    let (oid, params) = expect(alg, 0x06)?;
    let oid = oid_string(&parse_oid(oid)?);
    let key = bits.get(1..).ok_or(Malformed)?;
    match oid.as_str() {
        "1.2.840.113549.1.1.1" => {
            if params != [0x05, 0x00] {
                return Err(Malformed); // Go: RSA key missing NULL parameters
            }
            let (seq, _) = expect(key, 0x30)?;
            let (n, rest) = expect(seq, 0x02)?;
            let (_e, _) = expect(rest, 0x02)?;
            if n.first().is_some_and(|b| b & 0x80 != 0) {
                return Err(Malformed); // negative modulus
            }
            Ok(("RSA".into(), bit_len(n)))
        }
        "1.2.840.10040.4.1" => {
            let size = expect(params, 0x30)
                .and_then(|(p, _)| expect(p, 0x02))
                .map(|(p, _)| bit_len(p))
                .or_else(|_| expect(key, 0x02).map(|(y, _)| bit_len(y)))?;
            Ok(("DSA".into(), size))
        }
        "1.2.840.10045.2.1" => {
            let (curve, _) = expect(params, 0x06)?;
            let size = match oid_string(&parse_oid(curve)?).as_str() {
                "1.3.132.0.33" => 224,
                "1.2.840.10045.3.1.7" => 256,
                "1.3.132.0.34" => 384,
                "1.3.132.0.35" => 521,
                _ => return Err(Malformed), // Go: "x509: unsupported elliptic curve"
            };
            // An uncompressed point (Go does not accept compressed ones here).
            let n = (size as usize).div_ceil(8);
            if key.len() != 1 + 2 * n || key[0] != 4 {
                return Err(Malformed);
            }
            Ok(("ECDSA".into(), size))
        }
        "1.3.101.112" => {
            if !params.is_empty() || key.len() != 32 {
                return Err(Malformed);
            }
            Ok(("(unknown:4)".into(), 0))
        }
        _ => Ok(("(unknown:0)".into(), 0)),
    }
}

fn parse_san(c: &[u8], cert: &mut Certificate) -> R<()> {
    let (mut seq, _) = expect(c, 0x30)?;
    while !seq.is_empty() {
        let (tag, v, _, rest) = read_tlv(seq)?;
        seq = rest;
        match tag {
            0x81 | 0x82 => {
                if !v.is_ascii() {
                    return Err(Malformed);
                }
                let s = String::from_utf8_lossy(v).into_owned();
                if tag == 0x81 {
                    cert.emails.push(s);
                } else {
                    cert.dns_names.push(s);
                }
            }
            0x87 => match v.len() {
                4 => cert
                    .ips
                    .push(IpAddr::V4(Ipv4Addr::new(v[0], v[1], v[2], v[3]))),
                16 => {
                    let mut a = [0u8; 16];
                    a.copy_from_slice(v);
                    let v6 = Ipv6Addr::from(a);
                    cert.ips.push(match v6.to_ipv4_mapped() {
                        Some(v4) => IpAddr::V4(v4),
                        None => IpAddr::V6(v6),
                    });
                }
                _ => return Err(Malformed),
            },
            _ => {}
        }
    }
    Ok(())
}

/// Parses one DER certificate; `None` where Go's `x509.ParseCertificate` would fail.
pub fn parse_certificate(der: &[u8]) -> Option<Certificate> {
    parse(der).ok()
}

fn parse(der: &[u8]) -> R<Certificate> {
    let (t, cert, whole, trailing) = read_tlv(der)?;
    if t != 0x30 || !trailing.is_empty() {
        return Err(Malformed);
    }
    let (tbs, rest) = expect(cert, 0x30)?;
    let (outer_alg, rest) = expect(rest, 0x30)?;
    let (_sig, _) = expect(rest, 0x03)?;

    let mut b = tbs;
    let mut version = 0i64;
    if b.first() == Some(&0xa0) {
        let (v, r) = expect(b, 0xa0)?;
        let (vi, _) = expect(v, 0x02)?;
        if vi.len() != 1 {
            return Err(Malformed);
        }
        version = vi[0] as i64;
        b = r;
    }
    let version = version + 1;
    if !(1..=3).contains(&version) {
        return Err(Malformed);
    }
    let (serial, r) = expect(b, 0x02)?;
    // cryptobyte's INTEGER checks: not empty, minimally encoded.
    match serial {
        [] => return Err(Malformed),
        [0x00, b, ..] if b & 0x80 == 0 => return Err(Malformed),
        [0xff, b, ..] if b & 0x80 != 0 => return Err(Malformed),
        _ => {}
    }
    let (inner_alg, r) = expect(r, 0x30)?;
    if inner_alg != outer_alg {
        return Err(Malformed); // Go: inner and outer signature algorithm identifiers don't match
    }
    let (issuer, r) = expect(r, 0x30)?;
    let (validity, r) = expect(r, 0x30)?;
    let (subject, r) = expect(r, 0x30)?;
    let (spki, mut r) = expect(r, 0x30)?;

    let (t1, nb, _, vr) = read_tlv(validity)?;
    let (t2, na, _, _) = read_tlv(vr)?;
    let (pk_alg, pk_size) = public_key(spki)?;

    let mut c = Certificate {
        raw: whole.to_vec(),
        version,
        serial: integer_text(serial),
        signature_algorithm: signature_algorithm(outer_alg)?,
        public_key_algorithm: pk_alg,
        public_key_size: pk_size,
        issuer: parse_name(issuer)?,
        subject: parse_name(subject)?,
        not_before: parse_time(t1, nb)?,
        not_after: parse_time(t2, na)?,
        dns_names: Vec::new(),
        emails: Vec::new(),
        ips: Vec::new(),
    };

    while !r.is_empty() {
        let (tag, v, _, rest) = read_tlv(r)?;
        r = rest;
        // Issuer/subject unique IDs are skipped; Go reads extensions of v3 certificates only.
        if tag != 0xa3 || version != 3 {
            continue;
        }
        let (mut exts, _) = expect(v, 0x30)?;
        while !exts.is_empty() {
            let (ext, rest) = expect(exts, 0x30)?;
            exts = rest;
            let (oid, mut er) = expect(ext, 0x06)?;
            let oid = parse_oid(oid)?;
            if er.first() == Some(&0x01) {
                er = expect(er, 0x01)?.1;
            }
            let (val, _) = expect(er, 0x04)?;
            if oid == [2, 5, 29, 17] {
                parse_san(val, &mut c)?;
            }
        }
    }
    Ok(c)
}

#[cfg(test)]
pub fn parse_time_for_test(tag: u8, c: &[u8]) -> R<NaiveDateTime> {
    parse_time(tag, c)
}

/// `time.Time` as libbeat writes it (fraction digits of `timestamp.precision`).
pub fn format_time(t: &NaiveDateTime) -> String {
    let fmt = match crate::common::time::precision_digits() {
        6 => "%Y-%m-%dT%H:%M:%S%.6fZ",
        9 => "%Y-%m-%dT%H:%M:%S%.9fZ",
        _ => "%Y-%m-%dT%H:%M:%S%.3fZ",
    };
    t.format(fmt).to_string()
}

/// PEM, as `x509util.CertToPEMString` (Go's `pem.EncodeToMemory`): base64 in 64-character
/// lines, each ended by LF, between the BEGIN and END lines.
pub fn to_pem(raw: &[u8]) -> String {
    let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    pem::encode_config(&pem::Pem::new("CERTIFICATE", raw), config)
}

impl Certificate {
    /// Packetbeat's `certToMap`.
    pub fn to_map(&self) -> Value {
        let mut m = Map::new();
        m.insert(
            "signature_algorithm".into(),
            json!(self.signature_algorithm),
        );
        m.insert(
            "public_key_algorithm".into(),
            json!(self.public_key_algorithm),
        );
        m.insert("serial_number".into(), json!(self.serial));
        m.insert("issuer".into(), Value::Object(self.issuer.to_map()));
        m.insert("subject".into(), Value::Object(self.subject.to_map()));
        m.insert("not_before".into(), json!(format_time(&self.not_before)));
        m.insert("not_after".into(), json!(format_time(&self.not_after)));
        m.insert("version_number".into(), json!(self.version));
        if self.public_key_size > 0 {
            m.insert("public_key_size".into(), json!(self.public_key_size));
        }
        let mut san: Vec<String> = self.dns_names.clone();
        san.extend(self.emails.iter().cloned());
        san.extend(self.ips.iter().map(|ip| ip.to_string()));
        if !san.is_empty() {
            m.insert("alternative_names".into(), json!(san));
        }
        Value::Object(m)
    }
}
