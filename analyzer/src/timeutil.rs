//! Time parsing and formatting without a date library.
//!
//! - [`parse_time_arg`]: an RFC 3339 time (`2026-07-28T12:00:00Z`, `…T12:00:00.5+02:00`) or a
//!   duration back from "now" (`90s`, `30m`, `1h`, `7d`, `2w`; also `1h30m`).
//! - [`format_rfc3339_ns`]: UTC RFC 3339 with nanoseconds (`2026-11-21T05:51:00.123456789Z`).
//!
//! All instants are Unix nanoseconds (`i64`, UTC). Civil-date conversions follow Howard
//! Hinnant's `days_from_civil` / `civil_from_days` algorithms (proleptic Gregorian calendar).

use anyhow::{Context, Result, anyhow, bail};

/// Nanoseconds per second.
pub const NS_PER_SEC: i64 = 1_000_000_000;

/// Earliest instant a range may start at: 1970-01-01T00:00:00Z (Unix ns 0; spans carry Unix
/// timestamps, nothing is older).
pub const MIN_RANGE_NS: i64 = 0;

/// Latest instant a range may end at: 2200-01-01T00:00:00Z in Unix ns. With
/// [`MIN_RANGE_NS`] it keeps every range length and step count far from `i64` overflow
/// (`i64::MAX` ns is 2262-04-11).
pub const MAX_RANGE_NS: i64 = 7_258_118_400 * NS_PER_SEC;

/// Days since 1970-01-01 of the civil date `y-m-d` (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Civil date `(y, m, d)` of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Formats Unix nanoseconds as UTC RFC 3339 with 9 fractional digits, e.g.
/// `2026-11-21T05:51:00.123456789Z`.
pub fn format_rfc3339_ns(ns: i64) -> String {
    let secs = ns.div_euclid(NS_PER_SEC);
    let frac = ns.rem_euclid(NS_PER_SEC);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:09}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

/// Parses a duration such as `90s`, `30m`, `1h`, `7d`, `2w`, `1h30m` (units `ms`, `s`, `m`,
/// `h`, `d`, `w`) into nanoseconds.
///
/// # Errors
/// Empty input, a number without a unit, an unknown unit, or an overflow.
pub fn parse_duration_ns(s: &str) -> Result<i64> {
    let s = s.trim();
    if s.is_empty() {
        bail!("empty duration");
    }
    let mut total: i64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            bail!("duration {s:?}: expected a number at {rest:?}");
        }
        let n: i64 = rest[..digits]
            .parse()
            .with_context(|| format!("duration {s:?}"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let mult: i64 = match unit {
            "ms" => 1_000_000,
            "s" => NS_PER_SEC,
            "m" => 60 * NS_PER_SEC,
            "h" => 3600 * NS_PER_SEC,
            "d" => 86_400 * NS_PER_SEC,
            "w" => 7 * 86_400 * NS_PER_SEC,
            "" => bail!("duration {s:?}: missing unit (ms, s, m, h, d, w)"),
            other => bail!("duration {s:?}: unknown unit {other:?} (ms, s, m, h, d, w)"),
        };
        total = n
            .checked_mul(mult)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| anyhow!("duration {s:?} overflows"))?;
    }
    Ok(total)
}

fn num(s: &str, what: &str) -> Result<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        bail!("bad {what} {s:?}");
    }
    Ok(s.parse()?)
}

/// Parses an RFC 3339 time (`YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`; `t`/space accepted as the
/// separator, `z` as UTC) into Unix nanoseconds. Fractions beyond 9 digits are truncated.
///
/// # Errors
/// Any deviation from that grammar or an out-of-range field.
pub fn parse_rfc3339_ns(s: &str) -> Result<i64> {
    let err = || anyhow!("not an RFC 3339 time: {s:?}");
    let b = s.as_bytes();
    if b.len() < 20 || !s.is_ascii() {
        return Err(err());
    }
    if b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(err());
    }
    let y = num(&s[0..4], "year")?;
    let mo = num(&s[5..7], "month")?;
    let d = num(&s[8..10], "day")?;
    let h = num(&s[11..13], "hour")?;
    let mi = num(&s[14..16], "minute")?;
    let se = num(&s[17..19], "second")?;
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return Err(err());
    }
    let mut rest = &s[19..];
    let mut frac_ns: i64 = 0;
    if let Some(r) = rest.strip_prefix('.') {
        let n = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
        if n == 0 {
            return Err(err());
        }
        let digits = &r[..n.min(9)];
        frac_ns = num(digits, "fraction")? * 10_i64.pow(9 - digits.len() as u32);
        rest = &r[n..];
    }
    let offset_s: i64 = match rest {
        "Z" | "z" => 0,
        _ => {
            let ob = rest.as_bytes();
            if ob.len() != 6 || ob[3] != b':' {
                return Err(err());
            }
            let sign = match ob[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return Err(err()),
            };
            sign * (num(&rest[1..3], "offset hour")? * 3600
                + num(&rest[4..6], "offset minute")? * 60)
        }
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se - offset_s;
    secs.checked_mul(NS_PER_SEC)
        .and_then(|v| v.checked_add(frac_ns))
        .ok_or_else(err)
}

/// Parses a `--since`/`--until` value: an RFC 3339 time, `now`, or a duration meaning
/// "that long before `now_ns`".
///
/// # Errors
/// When the value is neither.
pub fn parse_time_arg(s: &str, now_ns: i64) -> Result<i64> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("now") {
        return Ok(now_ns);
    }
    if s.len() >= 20 && s.as_bytes().get(4) == Some(&b'-') {
        return parse_rfc3339_ns(s);
    }
    let d = parse_duration_ns(s)
        .with_context(|| format!("{s:?} is neither an RFC 3339 time nor a duration like 1h"))?;
    Ok(now_ns.saturating_sub(d))
}

/// The current time in Unix nanoseconds (system clock).
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn formats_and_parses_known_instants() {
        assert_eq!(format_rfc3339_ns(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            format_rfc3339_ns(1_795_240_260_906_781_311),
            "2026-11-21T05:51:00.906781311Z"
        );
        assert_eq!(
            parse_rfc3339_ns("2026-11-21T05:51:00.906781311Z").ok(),
            Some(1_795_240_260_906_781_311)
        );
        assert_eq!(
            parse_rfc3339_ns("2026-11-21T07:51:00+02:00").ok(),
            Some(1_795_240_260 * NS_PER_SEC)
        );
        assert_eq!(
            parse_rfc3339_ns("2026-11-21T05:51:00.5Z").ok(),
            Some(1_795_240_260_500_000_000)
        );
        assert!(parse_rfc3339_ns("2026-13-21T05:51:00Z").is_err());
        assert!(parse_rfc3339_ns("2026-11-21T05:51:00").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ns("1h").ok(), Some(3600 * NS_PER_SEC));
        assert_eq!(parse_duration_ns("1h30m").ok(), Some(5400 * NS_PER_SEC));
        assert_eq!(parse_duration_ns("7d").ok(), Some(7 * 86_400 * NS_PER_SEC));
        assert_eq!(parse_duration_ns("250ms").ok(), Some(250_000_000));
        assert!(parse_duration_ns("10").is_err());
        assert!(parse_duration_ns("1y").is_err());
        assert!(parse_duration_ns("h").is_err());
        assert_eq!(
            parse_time_arg("30m", 3600 * NS_PER_SEC).ok(),
            Some(1800 * NS_PER_SEC)
        );
        assert_eq!(parse_time_arg("now", 5).ok(), Some(5));
    }

    proptest! {
        #[test]
        fn round_trip(ns in -100_000_000_000_000_000_i64..4_000_000_000_000_000_000_i64) {
            let s = format_rfc3339_ns(ns);
            prop_assert_eq!(parse_rfc3339_ns(&s).ok(), Some(ns));
        }
    }
}
