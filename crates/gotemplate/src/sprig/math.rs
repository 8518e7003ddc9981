//! Integer and float math (`add`, `mulf`, `round`, ...), `until`/`untilStep`/`seq`.
//!
//! Sprig's float functions compute in decimal (shopspring/decimal), which is why
//! `mulf 1.2 2.4 10 4` is `115.2` and not `115.19999999999999`; [`Dec`] does the same.

use super::convert::{to_float64, to_int64};
use super::{Entry, FResult, Sources, arity, at_least, f, insert_all, int};
use crate::value::Value;
use crate::{FuncError, FuncMap};

/// Longest list `until`/`untilStep`/`seq` may build: beyond it the template is refused rather
/// than exhausting memory.
const MAX_SEQ: i64 = 1 << 22;

/// A decimal m x 10^e, exact for the sizes templates use.
#[derive(Clone, Copy)]
struct Dec {
    m: i128,
    e: i32,
}

impl Dec {
    fn from_f64(x: f64) -> Option<Dec> {
        if !x.is_finite() {
            return None;
        }
        if x == 0.0 {
            return Some(Dec { m: 0, e: 0 });
        }
        let s = format!("{:e}", x);
        let (mant, exp) = s.split_once('e')?;
        let exp: i32 = exp.parse().ok()?;
        let neg = mant.starts_with('-');
        let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
        let frac_len = mant.split_once('.').map(|(_, f)| f.len()).unwrap_or(0) as i32;
        let m: i128 = digits.parse().ok()?;
        Some(Dec {
            m: if neg { -m } else { m },
            e: exp - frac_len,
        })
    }

    fn align(a: Dec, b: Dec) -> Option<(i128, i128, i32)> {
        let e = a.e.min(b.e);
        let scale = |d: Dec| -> Option<i128> {
            let k = (d.e - e) as u32;
            10i128.checked_pow(k).and_then(|p| d.m.checked_mul(p))
        };
        Some((scale(a)?, scale(b)?, e))
    }

    fn add(self, o: Dec) -> Option<Dec> {
        let (a, b, e) = Dec::align(self, o)?;
        Some(Dec {
            m: a.checked_add(b)?,
            e,
        })
    }

    fn sub(self, o: Dec) -> Option<Dec> {
        let (a, b, e) = Dec::align(self, o)?;
        Some(Dec {
            m: a.checked_sub(b)?,
            e,
        })
    }

    fn mul(self, o: Dec) -> Option<Dec> {
        Some(Dec {
            m: self.m.checked_mul(o.m)?,
            e: self.e + o.e,
        })
    }

    /// Quotient rounded half away from zero to 16 decimal places (shopspring's default).
    fn div(self, o: Dec) -> Option<Dec> {
        if o.m == 0 {
            return None;
        }
        // a/b = (ma/mb) * 10^(ea-eb); want the result with exponent -16.
        let shift = self.e - o.e + 16;
        let (num, den) = if shift >= 0 {
            (self.m.checked_mul(10i128.checked_pow(shift as u32)?)?, o.m)
        } else {
            (
                self.m,
                o.m.checked_mul(10i128.checked_pow((-shift) as u32)?)?,
            )
        };
        let q = num / den;
        let r = num % den;
        let q = if (r.abs() * 2) >= den.abs() {
            q + num.signum() * den.signum()
        } else {
            q
        };
        Some(Dec { m: q, e: -16 })
    }

    fn to_f64(self) -> f64 {
        format!("{}e{}", self.m, self.e).parse().unwrap_or(0.0)
    }
}

fn dec_op(
    first: f64,
    rest: &[Value],
    op: fn(Dec, Dec) -> Option<Dec>,
    fallback: fn(f64, f64) -> f64,
) -> f64 {
    let mut acc = Dec::from_f64(first);
    let mut accf = first;
    for v in rest {
        let x = to_float64(v);
        accf = fallback(accf, x);
        acc = acc.and_then(|a| Dec::from_f64(x).and_then(|d| op(a, d)));
    }
    acc.map(Dec::to_f64).unwrap_or(accf)
}

/// Sprig's `untilStep`.
pub(crate) fn until_step(start: i64, stop: i64, step: i64) -> Result<Vec<i64>, FuncError> {
    let mut v = Vec::new();
    let count = if stop < start {
        if step >= 0 {
            return Ok(v);
        }
        (start - stop + (-step) - 1) / (-step)
    } else {
        if step <= 0 {
            return Ok(v);
        }
        (stop - start + step - 1) / step
    };
    if count > MAX_SEQ {
        return Err(format!("a sequence of {count} numbers is too long (limit {MAX_SEQ})").into());
    }
    let mut i = start;
    for _ in 0..count {
        v.push(i);
        i += step;
    }
    Ok(v)
}

fn ints(v: Vec<i64>) -> Value {
    Value::list(v.into_iter().map(Value::Int).collect())
}

fn seq(p: &[i64]) -> Result<String, FuncError> {
    let list = match p.len() {
        1 => {
            let (start, end) = (1, p[0]);
            let inc = if end < start { -1 } else { 1 };
            until_step(start, end + inc, inc)?
        }
        2 => {
            let (start, end) = (p[0], p[1]);
            let step = if end < start { -1 } else { 1 };
            until_step(start, end + step, step)?
        }
        3 => {
            let (start, step, end) = (p[0], p[1], p[2]);
            let mut inc = 1;
            if end < start {
                inc = -1;
                if step > 0 {
                    return Ok(String::new());
                }
            }
            until_step(start, end + inc, step)?
        }
        _ => return Ok(String::new()),
    };
    Ok(list
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(" "))
}

pub(super) fn register(m: &mut FuncMap, sources: &Sources) {
    insert_all(m, FUNCS);
    let rnd = sources.random.clone();
    m.insert(
        "randInt".into(),
        f(move |a| {
            arity(a, 2)?;
            let (lo, hi) = (int(a, 0)?, int(a, 1)?);
            if hi <= lo {
                return Err("invalid argument to Intn".into());
            }
            let r = rnd.as_ref().map(|r| r()).unwrap_or(0);
            Ok(Value::Int(lo + (r % (hi - lo) as u64) as i64))
        }),
    );
}

/// The functions that need nothing but their arguments, one line each.
const FUNCS: &[Entry] = &[
    ("add1", add1),
    ("add", add_fn),
    ("sub", sub_fn),
    ("div", div_fn),
    ("mod", mod_fn),
    ("mul", mul_fn),
    ("add1f", add1f),
    ("addf", addf),
    ("subf", subf),
    ("mulf", mulf),
    ("divf", divf),
    ("max", max_fn),
    ("biggest", max_fn),
    ("min", min_fn),
    ("maxf", maxf),
    ("minf", minf),
    ("ceil", ceil_fn),
    ("floor", floor_fn),
    ("round", round),
    ("until", until),
    ("untilStep", until_step_fn),
    ("seq", seq_fn),
];

/// `add1`.
fn add1(a: &[Value]) -> FResult {
    arity(a, 1)?;
    Ok(Value::Int(to_int64(&a[0]).wrapping_add(1)))
}

/// `add`.
fn add_fn(a: &[Value]) -> FResult {
    Ok(Value::Int(
        a.iter().fold(0i64, |acc, v| acc.wrapping_add(to_int64(v))),
    ))
}

/// `sub`.
fn sub_fn(a: &[Value]) -> FResult {
    arity(a, 2)?;
    Ok(Value::Int(to_int64(&a[0]).wrapping_sub(to_int64(&a[1]))))
}

/// `div`.
fn div_fn(a: &[Value]) -> FResult {
    arity(a, 2)?;
    let d = to_int64(&a[1]);
    if d == 0 {
        return Err("runtime error: integer divide by zero".into());
    }
    Ok(Value::Int(to_int64(&a[0]).wrapping_div(d)))
}

/// `mod`.
fn mod_fn(a: &[Value]) -> FResult {
    arity(a, 2)?;
    let d = to_int64(&a[1]);
    if d == 0 {
        return Err("runtime error: integer divide by zero".into());
    }
    Ok(Value::Int(to_int64(&a[0]).wrapping_rem(d)))
}

/// `mul`.
fn mul_fn(a: &[Value]) -> FResult {
    at_least(a, 1)?;
    Ok(Value::Int(a[1..].iter().fold(to_int64(&a[0]), |acc, v| {
        acc.wrapping_mul(to_int64(v))
    })))
}

/// `add1f`.
fn add1f(a: &[Value]) -> FResult {
    arity(a, 1)?;
    Ok(Value::Float(dec_op(
        to_float64(&a[0]),
        &[Value::Int(1)],
        Dec::add,
        |x, y| x + y,
    )))
}

/// `addf`.
fn addf(a: &[Value]) -> FResult {
    Ok(Value::Float(dec_op(0.0, a, Dec::add, |x, y| x + y)))
}

/// `subf`.
fn subf(a: &[Value]) -> FResult {
    at_least(a, 1)?;
    Ok(Value::Float(dec_op(
        to_float64(&a[0]),
        &a[1..],
        Dec::sub,
        |x, y| x - y,
    )))
}

/// `mulf`.
fn mulf(a: &[Value]) -> FResult {
    at_least(a, 1)?;
    Ok(Value::Float(dec_op(
        to_float64(&a[0]),
        &a[1..],
        Dec::mul,
        |x, y| x * y,
    )))
}

/// `divf`.
fn divf(a: &[Value]) -> FResult {
    at_least(a, 1)?;
    if a[1..].iter().any(|v| to_float64(v) == 0.0) {
        return Err("decimal division by 0".into());
    }
    Ok(Value::Float(dec_op(
        to_float64(&a[0]),
        &a[1..],
        Dec::div,
        |x, y| x / y,
    )))
}

/// `max`, `biggest`.
fn max_fn(a: &[Value]) -> FResult {
    at_least(a, 1)?;
    Ok(Value::Int(a.iter().map(to_int64).max().unwrap_or(0)))
}

/// `min`.
fn min_fn(a: &[Value]) -> FResult {
    at_least(a, 1)?;
    Ok(Value::Int(a.iter().map(to_int64).min().unwrap_or(0)))
}

/// `maxf`.
fn maxf(a: &[Value]) -> FResult {
    at_least(a, 1)?;
    Ok(Value::Float(
        a[1..]
            .iter()
            .fold(to_float64(&a[0]), |acc, v| acc.max(to_float64(v))),
    ))
}

/// `minf`.
fn minf(a: &[Value]) -> FResult {
    at_least(a, 1)?;
    Ok(Value::Float(
        a[1..]
            .iter()
            .fold(to_float64(&a[0]), |acc, v| acc.min(to_float64(v))),
    ))
}

/// `ceil`.
fn ceil_fn(a: &[Value]) -> FResult {
    arity(a, 1)?;
    Ok(Value::Float(to_float64(&a[0]).ceil()))
}

/// `floor`.
fn floor_fn(a: &[Value]) -> FResult {
    arity(a, 1)?;
    Ok(Value::Float(to_float64(&a[0]).floor()))
}

/// `round`.
fn round(a: &[Value]) -> FResult {
    at_least(a, 2)?;
    let val = to_float64(&a[0]);
    let places = int(a, 1)? as f64;
    let round_on = match a.get(2) {
        Some(Value::Float(x)) => *x,
        Some(Value::Int(i)) => *i as f64,
        Some(_) => return Err("wrong type for value; expected float64".into()),
        None => 0.5,
    };
    let pow = 10f64.powf(places);
    let digit = pow * val;
    let frac = digit.fract();
    let r = if frac >= round_on {
        digit.ceil()
    } else {
        digit.floor()
    };
    Ok(Value::Float(r / pow))
}

/// `until`.
fn until(a: &[Value]) -> FResult {
    arity(a, 1)?;
    let n = int(a, 0)?;
    Ok(ints(until_step(0, n, if n < 0 { -1 } else { 1 })?))
}

/// `untilStep`.
fn until_step_fn(a: &[Value]) -> FResult {
    arity(a, 3)?;
    Ok(ints(until_step(int(a, 0)?, int(a, 1)?, int(a, 2)?)?))
}

/// `seq`.
fn seq_fn(a: &[Value]) -> FResult {
    let p: Vec<i64> = (0..a.len()).map(|i| int(a, i)).collect::<Result<_, _>>()?;
    Ok(Value::from(seq(&p)?))
}
