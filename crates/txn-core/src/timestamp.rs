//! RFC 3339 date-times with an offset, to epoch milliseconds (UTC).

/// Why a timestamp was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampError {
    /// Not an RFC 3339 date-time with an offset, or an impossible date/time.
    Format,
    /// Outside [2000-01-01T00:00:00Z, 2100-01-01T00:00:00Z).
    Range,
}

/// 2000-01-01T00:00:00Z in epoch milliseconds.
pub const MIN_EPOCH_MS: i64 = 946_684_800_000;
/// 2100-01-01T00:00:00Z in epoch milliseconds.
pub const MAX_EPOCH_MS: i64 = 4_102_444_800_000;

fn num(b: &[u8]) -> Option<i64> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0')))
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `YYYY-MM-DDThh:mm:ss.mmmZ` (UTC, milliseconds) of an epoch-ms instant: the file status's
/// activity times (decision P26), as Python's time.strftime plus the milliseconds.
pub fn iso_ms(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000
    )
}

/// Parse `YYYY-MM-DD(T|t)hh:mm:ss[.fraction](Z|z|+hh:mm|-hh:mm)` (decision P7); fractions are
/// truncated to the millisecond. Then check the range.
pub fn parse_timestamp(text: &str) -> Result<i64, TimestampError> {
    let ms = parse_rfc3339(text.as_bytes()).ok_or(TimestampError::Format)?;
    if (MIN_EPOCH_MS..MAX_EPOCH_MS).contains(&ms) {
        Ok(ms)
    } else {
        Err(TimestampError::Range)
    }
}

/// Epoch milliseconds (fraction truncated) of an RFC 3339 date-time, without the range check.
pub fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    parse_rfc3339(text.as_bytes())
}

fn parse_rfc3339(b: &[u8]) -> Option<i64> {
    if b.len() < 20 {
        return None;
    }
    if b[4] != b'-'
        || !matches!(b[10], b'T' | b't')
        || b[7] != b'-'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d) = (num(&b[0..4])?, num(&b[5..7])?, num(&b[8..10])?);
    let (h, mi, s) = (num(&b[11..13])?, num(&b[14..16])?, num(&b[17..19])?);
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) {
        return None;
    }
    if h > 23 || mi > 59 || s > 59 {
        return None;
    }
    let mut rest = &b[19..];
    let mut millis = 0i64;
    if let Some(frac) = rest.strip_prefix(b".") {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        let mut digits = frac[..n.min(3)].to_vec();
        digits.resize(3, b'0');
        millis = num(&digits)?;
        rest = &frac[n..];
    }
    let offset_min = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), hh @ .., b':', m1, m2] if hh.len() == 2 => {
            let (oh, om) = (num(hh)?, num(&[*m1, *m2])?);
            if oh > 23 || om > 59 {
                return None;
            }
            let total = oh * 60 + om;
            if *sign == b'-' {
                -total
            } else {
                total
            }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3_600 + mi * 60 + s - offset_min * 60;
    Some(secs * 1_000 + millis)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn valid() {
        assert_eq!(parse_timestamp("2000-01-01T00:00:00Z"), Ok(MIN_EPOCH_MS));
        assert_eq!(
            parse_timestamp("2024-03-01T12:30:45.6789+01:00"),
            Ok(1_709_292_645_678)
        );
        assert_eq!(
            parse_timestamp("2024-02-29T00:00:00-00:30"),
            Ok(1_709_166_600_000)
        );
        assert_eq!(
            parse_timestamp("2024-02-29t00:00:00z"),
            Ok(1_709_164_800_000)
        );
    }

    #[test]
    fn format_errors() {
        for bad in [
            "2024-02-30T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-01-01T00:00:00",
            "2024-01-01 00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:00:60Z",
            "2024-01-01T00:00:00.Z",
            "2024-01-01T00:00:00+0100",
            "2024-01-01T00:00:00+24:00",
            "2024-1-01T00:00:00Z",
            "2024-01-01",
            "",
            "２０２４-01-01T00:00:00Z",
        ] {
            assert_eq!(parse_timestamp(bad), Err(TimestampError::Format), "{bad}");
        }
    }

    #[test]
    fn iso_ms_round_trips() {
        for text in [
            "1970-01-01T00:00:00.000Z",
            "2000-02-29T23:59:59.999Z",
            "2026-11-30T18:07:07.521Z",
            "2099-12-31T00:00:00.001Z",
        ] {
            let ms = parse_rfc3339_ms(text).unwrap_or(-1);
            assert_eq!(iso_ms(ms), text);
        }
    }

    #[test]
    fn range() {
        assert_eq!(
            parse_timestamp("1999-12-31T23:59:59.999Z"),
            Err(TimestampError::Range)
        );
        assert_eq!(
            parse_timestamp("2000-01-01T00:30:00+01:00"),
            Err(TimestampError::Range)
        );
        assert_eq!(
            parse_timestamp("2100-01-01T00:00:00Z"),
            Err(TimestampError::Range)
        );
        assert_eq!(
            parse_timestamp("0000-02-29T00:00:00Z"),
            Err(TimestampError::Range)
        );
        assert_eq!(
            parse_timestamp("2099-12-31T23:59:59.999Z"),
            Ok(MAX_EPOCH_MS - 1)
        );
    }

    proptest! {
        #[test]
        fn never_panics(s in ".*") {
            let _ = parse_timestamp(&s);
        }

        #[test]
        fn days_round_trip(days in 0i64..80_000) {
            // Walk forward from 1970 by counting months.
            let (mut y, mut m, mut d) = (1970i64, 1i64, 1i64);
            let mut left = days;
            while left > 0 {
                let dim = days_in_month(y, m);
                let step = left.min(dim - d + 1);
                left -= step;
                d += step;
                if d > dim {
                    d = 1;
                    m += 1;
                    if m > 12 {
                        m = 1;
                        y += 1;
                    }
                }
            }
            prop_assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
