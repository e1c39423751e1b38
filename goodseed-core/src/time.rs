//! Timestamps as text: ISO 8601 in UTC, written the way Python's
//! `datetime.isoformat()` writes an aware UTC datetime, which is the form 0.4.0 stores
//! in `created_at`, `closed_at`, config `updated_at` and reports as `last_modified`.
//!
//! The clock is not read here: callers pass the time in.

use std::fmt::Write as _;

/// A UTC instant with microsecond precision, as Python's `datetime` holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UtcMicros(pub i64);

impl UtcMicros {
    /// From whole unix seconds.
    pub fn from_unix_seconds(seconds: i64) -> UtcMicros {
        UtcMicros(seconds.saturating_mul(1_000_000))
    }

    /// From a unix time given as seconds and nanoseconds, as a file's mtime is.
    ///
    /// Rounds the way Python's `datetime.fromtimestamp(st_mtime)` does: the float
    /// `seconds + nanos * 1e-9` rounded half-to-even to the microsecond, so that the text
    /// matches 0.4.0's `last_modified` digit for digit.
    pub fn from_unix_float_parts(seconds: i64, nanos: u32) -> UtcMicros {
        let t = seconds as f64 + f64::from(nanos) * 1e-9;
        let whole = t.floor();
        let frac_micros = ((t - whole) * 1e6).round_ties_even();
        UtcMicros(whole as i64 * 1_000_000 + frac_micros as i64)
    }

    /// Whole unix seconds, rounded down.
    pub fn unix_seconds(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }

    /// `YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00`, microseconds left out when zero, exactly as
    /// Python's `isoformat()` writes an aware UTC datetime.
    ///
    /// ```
    /// use goodseed_core::time::UtcMicros;
    /// assert_eq!(UtcMicros(0).to_iso8601(), "1970-01-01T00:00:00+00:00");
    /// assert_eq!(UtcMicros(1_700_000_000_123_456).to_iso8601(), "2023-11-14T22:13:20.123456+00:00");
    /// ```
    pub fn to_iso8601(self) -> String {
        let secs = self.0.div_euclid(1_000_000);
        let micros = self.0.rem_euclid(1_000_000);
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        let mut out = String::with_capacity(32);
        let _ = write!(
            out,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
            sod / 3600,
            sod % 3600 / 60,
            sod % 60
        );
        if micros != 0 {
            let _ = write!(out, ".{micros:06}");
        }
        out.push_str("+00:00");
        out
    }

    /// Reads the ISO 8601 forms 0.4.0 writes and Python's `fromisoformat` accepts
    /// commonly: `YYYY-MM-DD[THH:MM[:SS[.f{1,6}]]][Z|±HH:MM]`. A missing offset is read
    /// as UTC. Returns `None` for anything else.
    pub fn parse_iso8601(text: &str) -> Option<UtcMicros> {
        let b = text.as_bytes();
        let num = |s: &[u8]| -> Option<i64> {
            if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
                return None;
            }
            std::str::from_utf8(s).ok()?.parse().ok()
        };
        if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let (y, mo, d) = (num(&b[0..4])?, num(&b[5..7])?, num(&b[8..10])?);
        if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
            return None;
        }
        let mut rest = &b[10..];
        let (mut h, mut mi, mut s, mut micros) = (0, 0, 0, 0);
        if let Some((&sep, tail)) = rest.split_first()
            && (sep == b'T' || sep == b' ')
        {
            if tail.len() < 5 || tail[2] != b':' {
                return None;
            }
            h = num(&tail[0..2])?;
            mi = num(&tail[3..5])?;
            rest = &tail[5..];
            if rest.first() == Some(&b':') {
                s = num(rest.get(1..3)?)?;
                rest = &rest[3..];
                if rest.first() == Some(&b'.') {
                    let digits = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
                    if !(1..=6).contains(&digits) {
                        return None;
                    }
                    let f = num(&rest[1..=digits])?;
                    micros = f * 10i64.pow(6 - digits as u32);
                    rest = &rest[1 + digits..];
                }
            }
        }
        if h > 23 || mi > 59 || s > 59 {
            return None;
        }
        let offset_secs = match rest {
            [] | [b'Z'] => 0,
            [sign @ (b'+' | b'-'), oh1, oh2, b':', om1, om2] => {
                let v = num(&[*oh1, *oh2])? * 3600 + num(&[*om1, *om2])? * 60;
                if *sign == b'-' { -v } else { v }
            }
            _ => return None,
        };
        let days = days_from_civil(y, mo, d);
        let secs = days * 86_400 + h * 3600 + mi * 60 + s - offset_secs;
        Some(UtcMicros(secs * 1_000_000 + micros))
    }
}

impl From<UtcMicros> for std::time::SystemTime {
    /// The clock reading of a time.
    fn from(t: UtcMicros) -> std::time::SystemTime {
        let d = std::time::Duration::from_micros(t.0.unsigned_abs());
        if t.0 >= 0 { std::time::UNIX_EPOCH + d } else { std::time::UNIX_EPOCH - d }
    }
}

impl From<std::time::SystemTime> for UtcMicros {
    /// Converts a clock reading or file time (truncated to the microsecond).
    fn from(t: std::time::SystemTime) -> UtcMicros {
        match t.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => UtcMicros(i64::try_from(d.as_micros()).unwrap_or(i64::MAX)),
            Err(e) => UtcMicros(-i64::try_from(e.duration().as_micros()).unwrap_or(i64::MAX)),
        }
    }
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The inverse of [`civil_from_days`].
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn formats_like_python_isoformat() {
        let cases = [
            (0, "1970-01-01T00:00:00+00:00"),
            (1, "1970-01-01T00:00:00.000001+00:00"),
            (951_782_400_000_000, "2000-02-29T00:00:00+00:00"),
            (1_763_796_861_500_000, "2025-11-22T07:34:21.500000+00:00"),
            (-1, "1969-12-31T23:59:59.999999+00:00"),
        ];
        for (micros, want) in cases {
            assert_eq!(UtcMicros(micros).to_iso8601(), want);
        }
    }

    #[test]
    fn parses_common_forms() {
        let cases = [
            ("2025-11-22T07:34:21.5+00:00", Some(1_763_796_861_500_000)),
            ("2025-11-22T07:34:21.500000+00:00", Some(1_763_796_861_500_000)),
            ("2025-11-22T08:34:21.5+01:00", Some(1_763_796_861_500_000)),
            ("2025-11-22T07:34:21Z", Some(1_763_796_861_000_000)),
            ("2025-11-22 07:34", Some(1_763_796_840_000_000)),
            ("2025-11-22", Some(1_763_769_600_000_000)),
            ("2025-13-01", None),
            ("yesterday", None),
            ("2025-11-22T07:34:21.1234567", None),
        ];
        for (text, want) in cases {
            assert_eq!(UtcMicros::parse_iso8601(text).map(|t| t.0), want, "{text}");
        }
    }

    #[test]
    fn mtime_rounding_matches_python() {
        // Python: datetime.fromtimestamp(1700000000 + 123456789e-9, tz=utc).isoformat()
        assert_eq!(
            UtcMicros::from_unix_float_parts(1_700_000_000, 123_456_789).to_iso8601(),
            "2023-11-14T22:13:20.123457+00:00"
        );
        assert_eq!(
            UtcMicros::from_unix_float_parts(1_700_000_000, 0).to_iso8601(),
            "2023-11-14T22:13:20+00:00"
        );
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(micros in -62_000_000_000_000_000i64..250_000_000_000_000_000) {
            let t = UtcMicros(micros);
            let text = t.to_iso8601();
            if micros >= -62_135_596_800_000_000 { // year >= 1
                prop_assert_eq!(UtcMicros::parse_iso8601(&text), Some(t), "{}", text);
            }
        }
    }
}
