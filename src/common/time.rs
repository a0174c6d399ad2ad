//! Capture time.
//!
//! Every timestamp on the packet path is *packet time*: the time the capture says the packet was
//! seen. Timeouts (transactions, connections, fragments) run on it too, so replaying a file with
//! `-t` gives the same events on every run, however fast or slow the machine is.

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

/// English month names, as Go's time layouts write them.
pub const MONTH_NAMES: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Fraction digits of every time written into events (`timestamp.precision`: 3, 6 or 9), one
/// setting for the process as in libbeat.
static PRECISION_DIGITS: AtomicU8 = AtomicU8::new(3);

/// The fraction digits `timestamp.precision` asks for (3, 6 or 9).
pub fn precision_digits() -> u8 {
    PRECISION_DIGITS.load(Ordering::Relaxed)
}

/// Sets `timestamp.precision` (`millisecond`, `microsecond`, `nanosecond`); returns false for
/// another value, which leaves milliseconds.
pub fn set_timestamp_precision(name: &str) -> bool {
    let digits = match name.to_ascii_lowercase().as_str() {
        "millisecond" | "" => 3,
        "microsecond" => 6,
        "nanosecond" => 9,
        _ => {
            PRECISION_DIGITS.store(3, Ordering::Relaxed);
            return false;
        }
    };
    PRECISION_DIGITS.store(digits, Ordering::Relaxed);
    true
}

/// Nanoseconds since the Unix epoch.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ts(pub i64);

impl Ts {
    pub const ZERO: Ts = Ts(0);

    pub fn from_duration_since_epoch(d: Duration) -> Ts {
        Ts(d.as_nanos().min(i64::MAX as u128) as i64)
    }

    pub fn now() -> Ts {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Ts::from_duration_since_epoch(d)
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    pub fn nanos(self) -> i64 {
        self.0
    }

    pub fn add(self, d: Duration) -> Ts {
        Ts(self
            .0
            .saturating_add(d.as_nanos().min(i64::MAX as u128) as i64))
    }

    /// Nanoseconds from `earlier` to `self` (negative when `earlier` is later).
    pub fn since(self, earlier: Ts) -> i64 {
        self.0 - earlier.0
    }

    /// RFC 3339 in UTC with milliseconds, whatever `timestamp.precision` says (files and logs
    /// of our own; event times use [`Ts::write_rfc3339`]).
    pub fn to_rfc3339_millis(self) -> String {
        let mut s = Vec::with_capacity(24);
        self.write_rfc3339_millis(&mut s);
        String::from_utf8(s).expect("ASCII")
    }

    /// The same, appended to a byte buffer.
    pub fn write_rfc3339_millis(self, out: &mut Vec<u8>) {
        self.write_rfc3339_digits(out, 3);
    }

    /// As libbeat 8's JSON encoder writes event times: UTC, `Z`, with the fraction digits of
    /// `timestamp.precision` (3 by default).
    pub fn write_rfc3339(self, out: &mut Vec<u8>) {
        self.write_rfc3339_digits(out, PRECISION_DIGITS.load(Ordering::Relaxed));
    }

    pub fn to_rfc3339(self) -> String {
        let mut s = Vec::with_capacity(30);
        self.write_rfc3339(&mut s);
        String::from_utf8(s).expect("ASCII")
    }

    /// RFC 3339 in UTC with `digits` (3, 6 or 9) fraction digits.
    pub fn write_rfc3339_digits(self, out: &mut Vec<u8>, digits: u8) {
        let secs = self.0.div_euclid(1_000_000_000);
        let digits = digits.clamp(1, 9) as usize;
        let frac = self.0.rem_euclid(1_000_000_000) / 10i64.pow(9 - digits as u32);
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        let (hh, mm, ss) = (sod / 3600, (sod / 60) % 60, sod % 60);
        let mut buf = [0u8; 30];
        let put = |buf: &mut [u8], at: usize, v: i64, width: usize| {
            let mut v = v;
            for i in (0..width).rev() {
                buf[at + i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(&mut buf, 0, y.clamp(0, 9999), 4);
        buf[4] = b'-';
        put(&mut buf, 5, m, 2);
        buf[7] = b'-';
        put(&mut buf, 8, d, 2);
        buf[10] = b'T';
        put(&mut buf, 11, hh, 2);
        buf[13] = b':';
        put(&mut buf, 14, mm, 2);
        buf[16] = b':';
        put(&mut buf, 17, ss, 2);
        buf[19] = b'.';
        put(&mut buf, 20, frac, digits);
        buf[20 + digits] = b'Z';
        out.extend_from_slice(&buf[..21 + digits]);
    }
}

/// Go's `time.RFC3339Nano` in UTC (trailing zeros of the fraction dropped), as processors see
/// `@timestamp`.
pub fn format_rfc3339_nanos(t: Ts) -> String {
    let mut s = Vec::with_capacity(30);
    t.write_rfc3339_millis(&mut s);
    s.truncate(19);
    let frac = t.0.rem_euclid(1_000_000_000);
    if frac != 0 {
        let digits = format!("{frac:09}");
        s.push(b'.');
        s.extend_from_slice(digits.trim_end_matches('0').as_bytes());
    }
    s.push(b'Z');
    String::from_utf8(s).expect("ASCII")
}

/// Parses RFC 3339 text (any offset, any fraction) to a time.
pub fn parse_rfc3339(s: &str) -> Option<Ts> {
    let dt = chrono::DateTime::parse_from_rfc3339(s).ok()?;
    dt.timestamp_nanos_opt().map(Ts)
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

impl fmt::Debug for Ts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ts({})", self.to_rfc3339_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precisions() {
        let ts = Ts(1_424_218_386_123_456_789);
        let at = |d| {
            let mut v = Vec::new();
            ts.write_rfc3339_digits(&mut v, d);
            String::from_utf8(v).unwrap()
        };
        assert_eq!(at(3), "2015-02-18T00:13:06.123Z");
        assert_eq!(at(6), "2015-02-18T00:13:06.123456Z");
        assert_eq!(at(9), "2015-02-18T00:13:06.123456789Z");
        let mut v = Vec::new();
        Ts(1_424_218_386_000_000_000).write_rfc3339_digits(&mut v, 9);
        assert_eq!(v, b"2015-02-18T00:13:06.000000000Z");
        assert_eq!(format_rfc3339_nanos(ts), "2015-02-18T00:13:06.123456789Z");
        assert_eq!(
            format_rfc3339_nanos(Ts(1_424_218_386_100_000_000)),
            "2015-02-18T00:13:06.1Z"
        );
        assert_eq!(
            parse_rfc3339("2015-02-18T01:13:06.5+01:00"),
            Some(Ts(1_424_218_386_500_000_000))
        );
    }

    #[test]
    fn formats_like_libbeat() {
        // 2015-02-18T00:13:06.123456789Z
        let ts = Ts(1_424_218_386_123_456_789);
        assert_eq!(ts.to_rfc3339_millis(), "2015-02-18T00:13:06.123Z");
        assert_eq!(Ts(0).to_rfc3339_millis(), "1970-01-01T00:00:00.000Z");
        // Leap day, end of year, and agreement with chrono over a range of days.
        assert_eq!(
            Ts(951_782_400_000_000_000).to_rfc3339_millis(),
            "2000-02-29T00:00:00.000Z"
        );
        assert_eq!(
            Ts(3_313_526_399_999_000_000).to_rfc3339_millis(),
            "2074-12-31T23:59:59.999Z"
        );
        for day in (0..60_000).step_by(97) {
            let ns = day as i64 * 86_400_000_000_000 + 45_296_789_000_000;
            let want =
                chrono::DateTime::from_timestamp(ns / 1_000_000_000, (ns % 1_000_000_000) as u32)
                    .unwrap()
                    .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                    .to_string();
            assert_eq!(Ts(ns).to_rfc3339_millis(), want);
        }
    }
}
