//! Column values as text.
//!
//! A text-format value is its text. A binary-format value (a client asked for binary results
//! in its Bind) is decoded for the common types into the text the server would have sent
//! (`42`, `t`, `2024-01-31 12:00:00`); any other type is written as PostgreSQL writes bytea,
//! `\x` and the bytes in hex. Packetbeat does not read binary values: it keeps them empty and
//! then reads the next column's length from inside the value, so its parse fails and the
//! stream is dropped.

use chrono::{Duration as ChronoDuration, NaiveDate};
use std::borrow::Cow;
use std::fmt::Write as _;

pub const FORMAT_TEXT: u16 = 0;

const BOOL: u32 = 16;
const BYTEA: u32 = 17;
const CHAR: u32 = 18;
const NAME: u32 = 19;
const INT8: u32 = 20;
const INT2: u32 = 21;
const INT4: u32 = 23;
const TEXT: u32 = 25;
const OID: u32 = 26;
const XID: u32 = 28;
const JSON: u32 = 114;
const XML: u32 = 142;
const CIDR: u32 = 650;
const FLOAT4: u32 = 700;
const FLOAT8: u32 = 701;
const UNKNOWN: u32 = 705;
const INET: u32 = 869;
const BPCHAR: u32 = 1042;
const VARCHAR: u32 = 1043;
const DATE: u32 = 1082;
const TIME: u32 = 1083;
const TIMESTAMP: u32 = 1114;
const TIMESTAMPTZ: u32 = 1184;
const NUMERIC: u32 = 1700;
const UUID: u32 = 2950;
const JSONB: u32 = 3802;

/// The value's text. `type_oid` is 0 when no RowDescription told the type.
pub fn render(type_oid: u32, format: u16, v: &[u8]) -> Cow<'_, [u8]> {
    if format == FORMAT_TEXT {
        return v.into();
    }
    match decode_binary(type_oid, v) {
        Some(s) => Cow::Owned(s.into_bytes()),
        None if matches!(
            type_oid,
            TEXT | VARCHAR | BPCHAR | NAME | JSON | XML | UNKNOWN | CHAR
        ) =>
        {
            v.into()
        }
        None => Cow::Owned(hex(v).into_bytes()),
    }
}

/// `\x` and the bytes in hex, as bytea's text output.
fn hex(v: &[u8]) -> String {
    let mut s = String::with_capacity(2 + v.len() * 2);
    s.push_str("\\x");
    for b in v {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn decode_binary(type_oid: u32, v: &[u8]) -> Option<String> {
    let int = |n: usize| -> Option<i64> {
        let b = v.get(..n).filter(|_| v.len() == n)?;
        Some(b.iter().fold(0i64, |acc, &x| (acc << 8) | i64::from(x)))
    };
    Some(match type_oid {
        BOOL if v.len() == 1 => (if v[0] != 0 { "t" } else { "f" }).to_string(),
        BYTEA => hex(v),
        INT2 => (int(2)? as i16).to_string(),
        INT4 => (int(4)? as i32).to_string(),
        INT8 => int(8)?.to_string(),
        OID | XID => (int(4)? as u32).to_string(),
        FLOAT4 => float(f64::from(f32::from_bits(int(4)? as u32))),
        FLOAT8 => float(f64::from_bits(int(8)? as u64)),
        JSONB => match v.split_first() {
            Some((1, text)) => String::from_utf8_lossy(text).into_owned(),
            _ => return None,
        },
        UUID if v.len() == 16 => {
            let h = hex(v);
            let h = &h[2..];
            format!(
                "{}-{}-{}-{}-{}",
                &h[0..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..32]
            )
        }
        DATE => date(int(4)? as i32)?,
        TIME => time_of_day(int(8)?)?,
        TIMESTAMP => timestamp(int(8)?, false)?,
        TIMESTAMPTZ => timestamp(int(8)?, true)?,
        NUMERIC => numeric(v)?,
        INET | CIDR => inet(v, type_oid == CIDR)?,
        _ => return None,
    })
}

/// Floats as the server writes them by default: the shortest text that reads back the same.
fn float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        (if f > 0.0 { "Infinity" } else { "-Infinity" }).into()
    } else {
        f.to_string()
    }
}

/// PostgreSQL's epoch, 2000-01-01.
fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(2000, 1, 1).expect("a valid date")
}

fn date(days: i32) -> Option<String> {
    match days {
        i32::MAX => return Some("infinity".into()),
        i32::MIN => return Some("-infinity".into()),
        _ => {}
    }
    let d = epoch().checked_add_signed(ChronoDuration::try_days(i64::from(days))?)?;
    Some(d.format("%Y-%m-%d").to_string())
}

/// Microseconds as `HH:MM:SS` and the fraction without trailing zeros.
fn clock(us: i64, s: &mut String) {
    let secs = us.div_euclid(1_000_000);
    let frac = us.rem_euclid(1_000_000);
    let _ = write!(
        s,
        "{:02}:{:02}:{:02}",
        secs / 3600 % 24,
        secs / 60 % 60,
        secs % 60
    );
    if frac > 0 {
        let f = format!("{frac:06}");
        s.push('.');
        s.push_str(f.trim_end_matches('0'));
    }
}

fn time_of_day(us: i64) -> Option<String> {
    if !(0..=86_400_000_000).contains(&us) {
        return None;
    }
    let mut s = String::new();
    if us == 86_400_000_000 {
        s.push_str("24:00:00");
    } else {
        clock(us, &mut s);
    }
    Some(s)
}

fn timestamp(us: i64, tz: bool) -> Option<String> {
    match us {
        i64::MAX => return Some("infinity".into()),
        i64::MIN => return Some("-infinity".into()),
        _ => {}
    }
    let days = us.div_euclid(86_400_000_000);
    let d = epoch().checked_add_signed(ChronoDuration::try_days(days)?)?;
    let mut s = d.format("%Y-%m-%d ").to_string();
    clock(us.rem_euclid(86_400_000_000), &mut s);
    if tz {
        // The session's time zone is not on the wire: the instant is written in UTC.
        s.push_str("+00");
    }
    Some(s)
}

/// numeric: digit count, weight, sign, display scale, then base-10000 digits.
fn numeric(v: &[u8]) -> Option<String> {
    let word = |i: usize| {
        v.get(i * 2..i * 2 + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    };
    let ndigits = usize::from(word(0)?);
    let weight = word(1)? as i16 as i32;
    let sign = word(2)?;
    let dscale = usize::from(word(3)?);
    if v.len() != 8 + ndigits * 2 {
        return None;
    }
    match sign {
        0xC000 => return Some("NaN".into()),
        0xD000 => return Some("Infinity".into()),
        0xF000 => return Some("-Infinity".into()),
        0x0000 | 0x4000 => {}
        _ => return None,
    }
    let digit = |i: i32| -> Option<u16> {
        if i < 0 || i as usize >= ndigits {
            return Some(0);
        }
        word(4 + i as usize).filter(|&d| d < 10_000)
    };
    let mut s = String::new();
    if sign == 0x4000 {
        s.push('-');
    }
    if weight < 0 {
        s.push('0');
    } else {
        for i in 0..=weight {
            let d = digit(i)?;
            if i == 0 {
                let _ = write!(s, "{d}");
            } else {
                let _ = write!(s, "{d:04}");
            }
        }
    }
    if dscale > 0 {
        s.push('.');
        let mut frac = String::new();
        let mut i = weight + 1;
        while frac.len() < dscale {
            let _ = write!(frac, "{:04}", digit(i)?);
            i += 1;
        }
        frac.truncate(dscale);
        s.push_str(&frac);
    }
    Some(s)
}

/// inet and cidr: family, bits, is-cidr flag, address length, address.
fn inet(v: &[u8], cidr: bool) -> Option<String> {
    let (&[family, bits, _, len], addr) = v.split_first_chunk::<4>()?;
    let (text, max) = match (family, len, addr.len()) {
        (2, 4, 4) => (
            std::net::Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3]).to_string(),
            32,
        ),
        (3, 16, 16) => {
            let a: [u8; 16] = addr.try_into().ok()?;
            (std::net::Ipv6Addr::from(a).to_string(), 128)
        }
        _ => return None,
    };
    Some(if cidr || bits != max {
        format!("{text}/{bits}")
    } else {
        text
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bin(oid: u32, v: &[u8]) -> String {
        String::from_utf8(render(oid, 1, v).into_owned()).unwrap()
    }

    #[test]
    fn text_is_kept_and_binary_decoded() {
        assert_eq!(&*render(INT4, 0, b"42"), b"42");
        assert_eq!(bin(INT4, &[0, 0, 0, 42]), "42");
        assert_eq!(bin(INT2, &[0xff, 0xfe]), "-2");
        assert_eq!(bin(INT8, &[0, 0, 0, 0, 0, 0, 1, 0]), "256");
        assert_eq!(bin(BOOL, &[1]), "t");
        assert_eq!(bin(TEXT, b"hello"), "hello");
        assert_eq!(bin(BYTEA, &[0xde, 0xad]), "\\xdead");
        assert_eq!(bin(FLOAT8, &1.5f64.to_be_bytes()), "1.5");
        assert_eq!(bin(FLOAT4, &f32::NAN.to_be_bytes()), "NaN");
        assert_eq!(bin(JSONB, b"\x01{\"a\": 1}"), "{\"a\": 1}");
        assert_eq!(
            bin(UUID, &[0x12; 16]),
            "12121212-1212-1212-1212-121212121212"
        );
        assert_eq!(bin(DATE, &(-1i32).to_be_bytes()), "1999-12-31");
        assert_eq!(bin(DATE, &i32::MAX.to_be_bytes()), "infinity");
        let noon = 12 * 3_600_000_000i64 + 500_000;
        assert_eq!(bin(TIMESTAMP, &noon.to_be_bytes()), "2000-01-01 12:00:00.5");
        assert_eq!(
            bin(TIMESTAMPTZ, &(-1i64).to_be_bytes()),
            "1999-12-31 23:59:59.999999+00"
        );
        assert_eq!(bin(TIME, &noon.to_be_bytes()), "12:00:00.5");
        // 12345.678 (dscale 3): digits 1, 2345, 6780.
        let num = [0, 3, 0, 1, 0, 0, 0, 3, 0, 1, 0x09, 0x29, 0x1a, 0x7c];
        assert_eq!(bin(NUMERIC, &num), "12345.678");
        // -0.05: weight -1, digit 500, dscale 2.
        let num = [0, 1, 0xff, 0xff, 0x40, 0, 0, 2, 0x01, 0xf4];
        assert_eq!(bin(NUMERIC, &num), "-0.05");
        assert_eq!(bin(NUMERIC, &[0, 0, 0, 0, 0, 0, 0, 0]), "0");
        assert_eq!(bin(INET, &[2, 32, 0, 4, 10, 0, 0, 1]), "10.0.0.1");
        assert_eq!(bin(CIDR, &[2, 8, 1, 4, 10, 0, 0, 0]), "10.0.0.0/8");
        // Unknown types and broken values: the bytes in hex.
        assert_eq!(bin(0, &[1, 2]), "\\x0102");
        assert_eq!(bin(INT4, &[1, 2]), "\\x0102");
        assert_eq!(bin(NUMERIC, &[0, 9]), "\\x0009");
    }
}
