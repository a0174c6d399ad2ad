//! Capture time.
//!
//! Every timestamp on the packet path is *packet time*: the time the capture says the packet was
//! seen. Timeouts (transactions, connections, fragments) run on it too, so replaying a file with
//! `-t` gives the same events on every run, however fast or slow the machine is.

use std::fmt;
use std::time::Duration;

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

    /// Formats as libbeat's JSON codec does for `@timestamp` and other time values:
    /// UTC, RFC 3339, millisecond precision, `Z` suffix (`timestamp.precision: millisecond`).
    pub fn to_rfc3339_millis(self) -> String {
        let mut s = Vec::with_capacity(24);
        self.write_rfc3339_millis(&mut s);
        String::from_utf8(s).expect("ASCII")
    }

    /// The same, appended to a byte buffer (JSON writers).
    pub fn write_rfc3339_millis(self, out: &mut Vec<u8>) {
        let secs = self.0.div_euclid(1_000_000_000);
        let millis = self.0.rem_euclid(1_000_000_000) / 1_000_000;
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        let (hh, mm, ss) = (sod / 3600, (sod / 60) % 60, sod % 60);
        let mut buf = [0u8; 24];
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
        put(&mut buf, 20, millis, 3);
        buf[23] = b'Z';
        out.extend_from_slice(&buf);
    }
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
