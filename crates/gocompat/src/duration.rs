//! Go's `time.Duration` text: [`parse`] is `time.ParseDuration` (same grammar, same overflow
//! rules, same messages) and [`format`] is `Duration.String()`.
//!
//! Guarantees: no input panics; every overflow is an error, as in Go; a parsed duration fits an
//! `i64` of nanoseconds, and [`parse_std`] converts it without any unchecked arithmetic.

use std::fmt::Write;
use std::time::Duration;

/// Nanoseconds in one second.
const SECOND: u64 = 1_000_000_000;

/// Longest piece of the user's text repeated in an error message, so a huge value cannot make a
/// huge status message.
const MAX_QUOTED_BYTES: usize = 64;

/// Why a duration was refused. Messages are Go's, with the text quoted as Go quotes it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not the grammar `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`, or the value overflows `int64`
    /// nanoseconds.
    #[error("time: invalid duration {}", quote(.0))]
    Invalid(String),
    /// A number without a unit (`10`).
    #[error("time: missing unit in duration {}", quote(.0))]
    MissingUnit(String),
    /// A unit other than `ns`, `us` (`µs`, `μs`), `ms`, `s`, `m`, `h`.
    #[error("time: unknown unit {} in duration {}", quote(.unit), quote(.text))]
    UnknownUnit {
        /// The unit as written.
        unit: String,
        /// The whole duration as written.
        text: String,
    },
    /// A valid Go duration below zero where only a span of time makes sense (an interval, a
    /// timeout).
    #[error("time: invalid duration {}: must not be negative", quote(.0))]
    Negative(String),
}

fn unit_nanos(unit: &str) -> Option<u64> {
    Some(match unit {
        "ns" => 1,
        "us" | "µs" | "μs" => 1_000,
        "ms" => 1_000_000,
        "s" => SECOND,
        "m" => 60 * SECOND,
        "h" => 3_600 * SECOND,
        _ => return None,
    })
}

/// Go's `time.ParseDuration`: a signed count of nanoseconds.
///
/// Errors: [`DurationError`] with Go's message (`time: invalid duration "99999999999999999999h"`)
/// for bad grammar, unknown or missing units, and any value outside `int64` nanoseconds.
pub fn parse(text: &str) -> Result<i64, DurationError> {
    let invalid = || DurationError::Invalid(text.to_string());
    let (neg, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let limit: u64 = 1 << 63;
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let first = rest.as_bytes()[0];
        if !(first == b'.' || first.is_ascii_digit()) {
            return Err(invalid());
        }
        let (whole, after_int, pre) = leading_int(rest).ok_or_else(invalid)?;
        rest = after_int;
        let (mut fraction, mut scale, mut post) = (0u64, 1f64, false);
        if let Some(after_dot) = rest.strip_prefix('.') {
            let (f, s, after_fraction) = leading_fraction(after_dot);
            post = after_fraction.len() != after_dot.len();
            (fraction, scale, rest) = (f, s, after_fraction);
        }
        if !pre && !post {
            return Err(invalid());
        }
        let unit_len = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        if unit_len == 0 {
            return Err(DurationError::MissingUnit(text.to_string()));
        }
        let unit_text = &rest[..unit_len];
        rest = &rest[unit_len..];
        let unit = unit_nanos(unit_text).ok_or_else(|| DurationError::UnknownUnit {
            unit: unit_text.to_string(),
            text: text.to_string(),
        })?;
        if whole > limit / unit {
            return Err(invalid());
        }
        let mut value = whole * unit;
        if fraction > 0 {
            // As Go: float64 keeps fractions of an hour nanosecond-accurate; the product is at
            // most one hour in nanoseconds, so the cast cannot saturate.
            value = value.saturating_add((fraction as f64 * (unit as f64 / scale)) as u64);
            if value > limit {
                return Err(invalid());
            }
        }
        total = total.checked_add(value).ok_or_else(invalid)?;
        if total > limit {
            return Err(invalid());
        }
    }
    if neg {
        // total <= 2^63, so the negation fits i64 (2^63 itself is i64::MIN).
        return Ok(0i64.wrapping_sub_unsigned(total));
    }
    i64::try_from(total).map_err(|_| invalid())
}

/// Like [`parse`], for a span of time (an interval, a timeout, a delay): negative values are
/// refused with [`DurationError::Negative`].
pub fn parse_std(text: &str) -> Result<Duration, DurationError> {
    let nanos = parse(text)?;
    let nanos = u64::try_from(nanos).map_err(|_| DurationError::Negative(text.to_string()))?;
    Ok(Duration::from_nanos(nanos))
}

/// Consumes the leading `[0-9]*`; `None` when it overflows Go's `int64` range. The flag says
/// whether any digit was read.
fn leading_int(s: &str) -> Option<(u64, &str, bool)> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let mut x: u64 = 0;
    for c in s.as_bytes()[..digits].iter() {
        if x > (1 << 63) / 10 {
            return None;
        }
        x = x * 10 + u64::from(c - b'0');
        if x > 1 << 63 {
            return None;
        }
    }
    Some((x, &s[digits..], digits > 0))
}

/// Consumes the leading `[0-9]*` of a fraction: past `int64` precision the digits are read but
/// no longer accumulated, as Go does.
fn leading_fraction(s: &str) -> (u64, f64, &str) {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let (mut x, mut scale, mut overflow) = (0u64, 1f64, false);
    for c in s.as_bytes()[..digits].iter() {
        if overflow {
            continue;
        }
        if x > ((1u64 << 63) - 1) / 10 {
            overflow = true;
            continue;
        }
        let y = x * 10 + u64::from(c - b'0');
        if y > 1 << 63 {
            overflow = true;
            continue;
        }
        x = y;
        scale *= 10.0;
    }
    (x, scale, &s[digits..])
}

/// Go's `quote` from package time: ASCII printable characters as they are (`"` and `\`
/// escaped), every other byte as `\xNN`. Long text is cut with `...` after the quote.
fn quote(text: &str) -> String {
    let mut cut = text.len().min(MAX_QUOTED_BYTES);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut out = String::with_capacity(cut + 2);
    out.push('"');
    for c in text[..cut].chars() {
        if !c.is_ascii() || c < ' ' {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "\\x{b:02x}");
            }
        } else {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out.push('"');
    if cut < text.len() {
        out.push_str("...");
    }
    out
}

/// Go's `Duration.String()` for a signed count of nanoseconds: `1h2m3.5s`, `1.5ms`, `0s`.
pub fn format(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let u = nanos.unsigned_abs();
    // `value` has `digits` decimal places; print it with trailing zeros of the fraction cut.
    let decimal = |value: u64, digits: u32| -> String {
        let p = 10u64.pow(digits);
        let (whole, fraction) = (value / p, value % p);
        if fraction == 0 {
            return whole.to_string();
        }
        let fraction = format!("{fraction:0width$}", width = digits as usize);
        format!("{whole}.{}", fraction.trim_end_matches('0'))
    };
    let body = if u < 1_000 {
        format!("{u}ns")
    } else if u < 1_000_000 {
        format!("{}µs", decimal(u, 3))
    } else if u < SECOND {
        format!("{}ms", decimal(u, 6))
    } else {
        let (secs, sub) = (u / SECOND, u % SECOND);
        let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
        let mut out = String::new();
        if h > 0 {
            let _ = write!(out, "{h}h");
        }
        if h > 0 || m > 0 {
            let _ = write!(out, "{m}m");
        }
        out.push_str(&decimal(s * SECOND + sub, 9));
        out.push('s');
        out
    };
    if nanos < 0 { format!("-{body}") } else { body }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: i64 = 1_000_000;
    const S: i64 = 1_000_000_000;
    const M: i64 = 60 * S;
    const H: i64 = 60 * M;

    /// Go's `parseDurationTests` (time/time_test.go), valid rows.
    #[test]
    fn parses_go_test_table() {
        let rows: &[(&str, i64)] = &[
            ("0", 0),
            ("5s", 5 * S),
            ("30s", 30 * S),
            ("1478s", 1478 * S),
            ("-5s", -5 * S),
            ("+5s", 5 * S),
            ("-0", 0),
            ("+0", 0),
            ("5.0s", 5 * S),
            ("5.6s", 5 * S + 600 * MS),
            ("5.s", 5 * S),
            (".5s", 500 * MS),
            ("1.0s", S),
            ("1.00s", S),
            ("1.004s", S + 4 * MS),
            ("1.0040s", S + 4 * MS),
            ("100.00100s", 100 * S + MS),
            ("10ns", 10),
            ("11us", 11_000),
            ("12µs", 12_000),
            ("12μs", 12_000),
            ("13ms", 13 * MS),
            ("14s", 14 * S),
            ("15m", 15 * M),
            ("16h", 16 * H),
            ("3h30m", 3 * H + 30 * M),
            ("10.5s4m", 4 * M + 10 * S + 500 * MS),
            ("-2m3.4s", -(2 * M + 3 * S + 400 * MS)),
            ("1h2m3s4ms5us6ns", H + 2 * M + 3 * S + 4 * MS + 5_000 + 6),
            ("39h9m14.425s", 39 * H + 9 * M + 14 * S + 425 * MS),
            ("52763797000ns", 52_763_797_000),
            ("0.3333333333333333333h", 20 * M),
            ("9007199254740993ns", (1 << 53) + 1),
            ("9223372036854775807ns", i64::MAX),
            ("9223372036854775.807us", i64::MAX),
            ("9223372036s854ms775us807ns", i64::MAX),
            ("-9223372036854775808ns", i64::MIN),
            ("-9223372036854775.808us", i64::MIN),
            ("-9223372036s854ms775us808ns", i64::MIN),
            ("-9223372036854775808ns", -1 << 63),
            ("-2562047h47m16.854775808s", -1 << 63),
            ("0.100000000000000000000h", 6 * M),
            ("0.830103483285477580700h", 49 * M + 48 * S + 372_539_827),
        ];
        for (text, want) in rows {
            assert_eq!(parse(text), Ok(*want), "{text}");
        }
    }

    /// Go's `parseDurationErrorTests`, with Go's messages.
    #[test]
    fn refuses_go_error_table_with_go_messages() {
        let rows: &[(&str, &str)] = &[
            ("", r#"time: invalid duration """#),
            ("3", r#"time: missing unit in duration "3""#),
            ("-", r#"time: invalid duration "-""#),
            ("s", r#"time: invalid duration "s""#),
            (".", r#"time: invalid duration ".""#),
            ("-.", r#"time: invalid duration "-.""#),
            (".s", r#"time: invalid duration ".s""#),
            ("+.s", r#"time: invalid duration "+.s""#),
            ("1d", r#"time: unknown unit "d" in duration "1d""#),
            (
                "\u{85}\u{85}",
                r#"time: invalid duration "\xc2\x85\xc2\x85""#,
            ),
            ("\u{ffff}", r#"time: invalid duration "\xef\xbf\xbf""#),
            (
                "9223372036854775810ns",
                r#"time: invalid duration "9223372036854775810ns""#,
            ),
            (
                "9223372036854775808ns",
                r#"time: invalid duration "9223372036854775808ns""#,
            ),
            (
                "-9223372036854775809ns",
                r#"time: invalid duration "-9223372036854775809ns""#,
            ),
            (
                "9223372036854776us",
                r#"time: invalid duration "9223372036854776us""#,
            ),
            ("3000000h", r#"time: invalid duration "3000000h""#),
            (
                "9223372036854775.808us",
                r#"time: invalid duration "9223372036854775.808us""#,
            ),
            (
                "9223372036854ms775us808ns",
                r#"time: invalid duration "9223372036854ms775us808ns""#,
            ),
            (
                "99999999999999999999h",
                r#"time: invalid duration "99999999999999999999h""#,
            ),
            (
                "2562047h47m16.854775808s",
                r#"time: invalid duration "2562047h47m16.854775808s""#,
            ),
            ("1h\"", r#"time: unknown unit "h\"" in duration "1h\"""#),
        ];
        for (text, want) in rows {
            let err = parse(text).expect_err(text);
            assert_eq!(err.to_string(), *want, "{text:?}");
        }
    }

    #[test]
    fn interval_that_overflowed_the_controller_is_an_error_not_a_panic() {
        let err = parse_std("99999999999999999999h").expect_err("overflows int64");
        assert_eq!(
            err.to_string(),
            r#"time: invalid duration "99999999999999999999h""#
        );
        assert!(parse_std("2562047h").is_ok(), "just below the int64 limit");
        assert!(parse_std("2562048h").is_err(), "just above the int64 limit");
    }

    #[test]
    fn std_durations_refuse_negative_values() {
        assert_eq!(parse_std("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_std("-0"), Ok(Duration::ZERO));
        assert_eq!(
            parse_std("-5m").expect_err("negative").to_string(),
            r#"time: invalid duration "-5m": must not be negative"#
        );
    }

    #[test]
    fn long_text_is_cut_in_messages() {
        let long = "9".repeat(10_000) + "h";
        let message = parse(&long).expect_err("overflow").to_string();
        assert!(message.len() < 100, "{message}");
        assert!(message.ends_with("\"..."));
    }

    /// Go's `durationTests` (time/time_test.go) for `Duration.String()`.
    #[test]
    fn formats_like_go() {
        let rows: &[(i64, &str)] = &[
            (0, "0s"),
            (1, "1ns"),
            (1_100, "1.1µs"),
            (2_200 * 1_000, "2.2ms"),
            (3_300 * MS, "3.3s"),
            (4 * M + 5 * S, "4m5s"),
            (4 * M + 5001 * MS, "4m5.001s"),
            (5 * H + 6 * M + 7001 * MS, "5h6m7.001s"),
            (8 * M + 1, "8m0.000000001s"),
            (i64::MAX, "2562047h47m16.854775807s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
            (-5 * S, "-5s"),
        ];
        for (nanos, want) in rows {
            assert_eq!(format(*nanos), *want, "{nanos}");
        }
    }

    #[test]
    fn format_and_parse_round_trip() {
        for nanos in [1, 999, 1_000_001, 61 * S + 5, 3 * H + 7, i64::MAX, i64::MIN] {
            assert_eq!(parse(&format(nanos)), Ok(nanos), "{nanos}");
        }
    }
}
