//! Kubernetes resource quantities (`k8s.io/apimachinery/pkg/api/resource`) as Kyverno compares
//! and computes with them: `100Mi`, `1.5`, `250m`, `1e3`.
//!
//! A quantity is held as a count of nano-units in an `i128`, which is exact for everything
//! kube itself keeps exact (nano precision, rounded away from zero like `ParseQuantity`);
//! values beyond about 10^29 are refused rather than approximated, so a comparison never lies.

use std::cmp::Ordering;

const NANO: i128 = 1_000_000_000;

/// How a quantity is written back: the format of the text it was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `Ki`, `Mi`, ... suffixes.
    BinarySi,
    /// `m`, `k`, `M`, ... suffixes (and none).
    DecimalSi,
    /// `e3`-style exponents.
    DecimalExponent,
}

/// A parsed quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity {
    nanos: i128,
    format: Format,
}

impl Quantity {
    /// `resource.ParseQuantity`: `None` when kube would refuse the text.
    pub fn parse(text: &str) -> Option<Quantity> {
        let (negative, rest) = match text.as_bytes().first()? {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, suffix) = rest.split_at(number_len);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
            return None;
        }
        let (exp10, exp2, format) = parse_suffix(suffix)?;
        let mut mantissa: i128 = 0;
        for digit in whole.bytes().chain(fraction.bytes()) {
            mantissa = mantissa
                .checked_mul(10)?
                .checked_add(i128::from(digit - b'0'))?;
        }
        let frac_len = i32::try_from(fraction.len()).ok()?;
        let scaled = mantissa.checked_mul(1i128.checked_shl(exp2)?)?;
        let nanos = scale10(scaled, 9 - frac_len + exp10)?;
        Some(Quantity {
            nanos: if negative { -nanos } else { nanos },
            format,
        })
    }

    /// A plain number as a quantity (`fmt.Sprint(f)` then `ParseQuantity`, as Kyverno does).
    pub fn from_f64(value: f64) -> Option<Quantity> {
        Quantity::parse(&ferroflux_gocompat::float::format_g(value))
    }

    /// `Quantity.Cmp`.
    pub fn cmp(&self, other: &Quantity) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }

    /// `AsApproximateFloat64`.
    pub fn as_f64(&self) -> f64 {
        self.nanos as f64 / NANO as f64
    }

    /// Whether the value is a whole number.
    pub fn as_integer(&self) -> Option<i128> {
        (self.nanos % NANO == 0).then_some(self.nanos / NANO)
    }

    /// `a + b` in `a`'s format.
    pub fn checked_add(&self, other: &Quantity) -> Option<Quantity> {
        Some(self.with_nanos(self.nanos.checked_add(other.nanos)?))
    }

    /// `a - b` in `a`'s format.
    pub fn checked_sub(&self, other: &Quantity) -> Option<Quantity> {
        Some(self.with_nanos(self.nanos.checked_sub(other.nanos)?))
    }

    /// `a × b` in `a`'s format, `b` a plain number quantity.
    pub fn checked_mul(&self, other: &Quantity) -> Option<Quantity> {
        let product = self.nanos.checked_mul(other.nanos)?;
        Some(self.with_nanos(product / NANO))
    }

    /// `a ÷ b` rounded toward zero, in `a`'s format; `None` for a zero divisor.
    pub fn checked_div(&self, other: &Quantity) -> Option<Quantity> {
        if other.nanos == 0 {
            return None;
        }
        Some(self.with_nanos(self.nanos.checked_mul(NANO)? / other.nanos))
    }

    /// A whole number in `a`'s format.
    pub fn from_integer(value: i128, format: Format) -> Option<Quantity> {
        Some(Quantity {
            nanos: value.checked_mul(NANO)?,
            format,
        })
    }

    /// The format this quantity is written in.
    pub fn format(&self) -> Format {
        self.format
    }

    fn with_nanos(&self, nanos: i128) -> Quantity {
        Quantity {
            nanos,
            format: self.format,
        }
    }
}

/// `10^exp` applied to `value`; a negative exponent divides, rounding away from zero.
fn scale10(value: i128, exp: i32) -> Option<i128> {
    if exp >= 0 {
        return value.checked_mul(10i128.checked_pow(u32::try_from(exp).ok()?)?);
    }
    let Some(divisor) = 10i128.checked_pow(exp.unsigned_abs()) else {
        return Some(i128::from(value != 0) * value.signum());
    };
    let quotient = value / divisor;
    Some(if value % divisor != 0 {
        quotient + value.signum()
    } else {
        quotient
    })
}

/// The suffix as (power of ten, power of two, format).
fn parse_suffix(suffix: &str) -> Option<(i32, u32, Format)> {
    let binary = |p: u32| Some((0, p, Format::BinarySi));
    let decimal = |p: i32| Some((p, 0, Format::DecimalSi));
    match suffix {
        "" => decimal(0),
        "Ki" => binary(10),
        "Mi" => binary(20),
        "Gi" => binary(30),
        "Ti" => binary(40),
        "Pi" => binary(50),
        "Ei" => binary(60),
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        _ => {
            let exp = suffix.strip_prefix(['e', 'E'])?;
            let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let value: i32 = exp.parse().ok()?;
            // kube caps the exponent far beyond anything `i128` nano-units can hold anyway.
            (value.abs() <= 60).then_some((value, 0, Format::DecimalExponent))
        }
    }
}

impl std::fmt::Display for Quantity {
    /// kube's canonical text (`Quantity.String()`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.nanos == 0 {
            return f.write_str("0");
        }
        if self.format == Format::BinarySi
            && let Some(int) = self.as_integer()
            && int.abs() >= 1024
        {
            let (mut value, mut power) = (int, 0usize);
            while value % 1024 == 0 && power < 6 {
                value /= 1024;
                power += 1;
            }
            let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][power];
            return write!(f, "{value}{suffix}");
        }
        let (mantissa, exp) = decimal_parts(self.nanos);
        if self.format == Format::DecimalExponent {
            return match exp {
                0 => write!(f, "{mantissa}"),
                _ => write!(f, "{mantissa}e{exp}"),
            };
        }
        let suffix = match exp {
            -9 => "n",
            -6 => "u",
            -3 => "m",
            3 => "k",
            6 => "M",
            9 => "G",
            12 => "T",
            15 => "P",
            18 => "E",
            _ => "",
        };
        write!(f, "{mantissa}{suffix}")
    }
}

/// The value as `mantissa × 10^exp`, `exp` a multiple of three between -9 and 18 and as large
/// as keeps the mantissa whole.
fn decimal_parts(nanos: i128) -> (i128, i32) {
    let (mut mantissa, mut exp) = (nanos, -9);
    while mantissa % 1000 == 0 && exp < 18 {
        mantissa /= 1000;
        exp += 3;
    }
    (mantissa, exp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(text: &str) -> Quantity {
        Quantity::parse(text).unwrap_or_else(|| panic!("{text} parses"))
    }

    #[test]
    fn parses_kube_suffixes() {
        assert_eq!(q("1Gi").cmp(&q("1024Mi")), Ordering::Equal);
        assert_eq!(q("1500m").cmp(&q("1.5")), Ordering::Equal);
        assert_eq!(q("1e3").cmp(&q("1k")), Ordering::Equal);
        assert_eq!(q("100Mi").cmp(&q("1024Mi")), Ordering::Less);
        assert_eq!(q("-2").cmp(&q("+4")), Ordering::Less);
        assert_eq!(q("1E").cmp(&q("1e18")), Ordering::Equal);
        for bad in ["", "-", "abc", "1.2.3", "5 ", "1Ki2", "*", "1x"] {
            assert!(Quantity::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn writes_canonical_text() {
        assert_eq!(q("1.5").to_string(), "1500m");
        assert_eq!(q("2000").to_string(), "2k");
        assert_eq!(q("1200").to_string(), "1200");
        assert_eq!(q("2048Ki").to_string(), "2Mi");
        assert_eq!(q("1536").to_string(), "1536");
        let sum = q("1Gi").checked_add(&q("512Mi")).expect("fits");
        assert_eq!(sum.to_string(), "1536Mi");
    }
}
