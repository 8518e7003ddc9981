//! Go's floats as text: `strconv.FormatFloat` with shortest digits (`%v`, `%e`),
//! `encoding/json`'s choice between them, and `strconv.ParseFloat`, so a number reads and prints
//! here as the Go program reads and prints it.
//!
//! ```
//! use ferroflux_gocompat::float;
//!
//! assert_eq!(float::format_g(1234567.5), "1.2345675e+06");
//! assert_eq!(float::format_g(0.0001), "0.0001");
//! assert_eq!(float::json(1e-7), "1e-7");
//! assert_eq!(float::json(1e21), "1e+21");
//! assert_eq!(float::parse("0x1p-2"), Some(0.25));
//! assert_eq!(float::parse("1e400"), None);
//! ```

/// Go's text for NaN and the infinities.
fn non_finite(f: f64) -> Option<String> {
    if f.is_nan() {
        Some("NaN".into())
    } else if f.is_infinite() {
        Some(if f > 0.0 { "+Inf" } else { "-Inf" }.into())
    } else {
        None
    }
}

/// `encoding/json`'s text for a finite float: shortest digits, exponent form outside
/// `[1e-6, 1e21)` with `e-09` trimmed to `e-9`.
pub fn json(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = format_e(f);
        // Go trims `e-09` to `e-9` in JSON.
        if let Some(pos) = s.find("e-0") {
            return format!("{}e-{}", &s[..pos], &s[pos + 3..]);
        }
        return s;
    }
    // Shortest decimal without exponent.
    let s = format!("{f}");
    s.trim_end_matches(".0").to_string()
}

fn decimal_digits(f: f64) -> (String, i32) {
    // Shortest round-trip digits and decimal exponent such that f = 0.d1d2.. * 10^exp.
    let s = format!("{:e}", f.abs());
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let exp: i32 = exp.parse().unwrap_or(0);
    (digits, exp + 1)
}

/// `strconv.FormatFloat(f, 'e', -1, 64)`: shortest digits, at least two exponent digits.
pub fn format_e(f: f64) -> String {
    if let Some(text) = non_finite(f) {
        return text;
    }
    let (digits, dp) = decimal_digits(f);
    let sign = if f < 0.0 { "-" } else { "" };
    let exp = dp - 1;
    let mant = if digits.len() > 1 {
        format!("{}.{}", &digits[..1], &digits[1..])
    } else {
        digits.clone()
    };
    let esign = if exp < 0 { '-' } else { '+' };
    format!("{sign}{mant}e{esign}{:02}", exp.abs())
}

/// `strconv.FormatFloat(f, 'g', -1, 64)` (`%v` of a float64): shortest digits, exponent form
/// when the decimal exponent is below -4 or at least 6 (Go's threshold for shortest output).
pub fn format_g(f: f64) -> String {
    if let Some(text) = non_finite(f) {
        return text;
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let (digits, dp) = decimal_digits(f);
    let exp = dp - 1;
    if !(-4..6).contains(&exp) {
        return format_e(f);
    }
    let sign = if f < 0.0 { "-" } else { "" };
    if dp <= 0 {
        format!("{sign}0.{}{}", "0".repeat((-dp) as usize), digits)
    } else if dp as usize >= digits.len() {
        format!("{sign}{}{}", digits, "0".repeat(dp as usize - digits.len()))
    } else {
        format!(
            "{sign}{}.{}",
            &digits[..dp as usize],
            &digits[dp as usize..]
        )
    }
}

/// Go's `strconv.ParseFloat(s, 64)`: decimal or hexadecimal (`0x1p-2`) literals, `_` between
/// digits, `inf`/`infinity`/`nan`; out-of-range values are errors, not infinities.
pub fn parse(s: &str) -> Option<f64> {
    let (negative, body) = match s.as_bytes().first() {
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let signed = |v: f64| if negative { -v } else { v };
    if lower == "inf" || lower == "infinity" {
        return Some(signed(f64::INFINITY));
    }
    if lower == "nan" {
        return (body.len() == s.len()).then_some(f64::NAN);
    }
    if !underscores_ok(&lower) {
        return None;
    }
    let clean: String = lower.chars().filter(|c| *c != '_').collect();
    let value = if let Some(hex) = clean.strip_prefix("0x") {
        parse_hex_float(hex)?
    } else {
        if !clean
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'+' | b'-'))
        {
            return None;
        }
        clean.parse::<f64>().ok()?
    };
    value.is_finite().then(|| signed(value))
}

/// Go's rule: `_` only between digits, or between a base prefix and a digit.
fn underscores_ok(s: &str) -> bool {
    if !s.contains('_') {
        return true;
    }
    let bytes = s.as_bytes();
    let (start, hex) = if s.starts_with("0x") || s.starts_with("0b") || s.starts_with("0o") {
        (2, s.starts_with("0x"))
    } else {
        (0, false)
    };
    let is_digit = |b: u8| b.is_ascii_digit() || (hex && b.is_ascii_hexdigit());
    for (i, &b) in bytes.iter().enumerate().skip(start) {
        if b != b'_' {
            continue;
        }
        let before_ok = if i == start {
            start == 2
        } else {
            is_digit(bytes[i - 1])
        };
        let after_ok = bytes.get(i + 1).is_some_and(|&n| is_digit(n));
        if !before_ok || !after_ok {
            return false;
        }
    }
    true
}

/// A hexadecimal float body after `0x`: hex digits with an optional point, then a required
/// binary exponent `p[+-]N`.
fn parse_hex_float(s: &str) -> Option<f64> {
    let (mantissa, exponent) = s.split_once('p')?;
    let exponent: i32 = exponent.parse().ok()?;
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    let mut value = 0f64;
    for c in int_part.chars() {
        value = value * 16.0 + f64::from(c.to_digit(16)?);
    }
    let mut scale = 1.0 / 16.0;
    for c in frac_part.chars() {
        value += f64::from(c.to_digit(16)?) * scale;
        scale /= 16.0;
    }
    Some(value * 2f64.powi(exponent))
}
