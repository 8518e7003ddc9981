//! Go's `fmt` printing rules for template values: `%v` (floats as `1e+06`, maps as
//! `map[a:1 b:2]`), `Sprint`/`Sprintln` spacing and the `Sprintf` verbs templates use.

use std::fmt::Write;

use crate::value::Value;

/// Decimal digits of |f| without trailing zeros and the decimal point position
/// (|f| = 0.d1d2... x 10^dp), as Go's strconv computes them.
fn digits(f: f64, sig: Option<usize>) -> (Vec<u8>, i32) {
    if f == 0.0 {
        return (Vec::new(), 0);
    }
    let s = match sig {
        None => format!("{:e}", f.abs()),
        Some(n) => format!("{:.*e}", n.max(1) - 1, f.abs()),
    };
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut d: Vec<u8> = mant.bytes().filter(u8::is_ascii_digit).collect();
    while d.len() > 1 && d.last() == Some(&b'0') {
        d.pop();
    }
    if d == [b'0'] {
        return (Vec::new(), 0);
    }
    (d, exp + 1)
}

fn fmt_e(out: &mut String, d: &[u8], dp: i32, prec: usize, upper: bool) {
    out.push(if d.is_empty() { '0' } else { d[0] as char });
    if prec > 0 {
        out.push('.');
        for i in 1..=prec {
            out.push(d.get(i).map(|b| *b as char).unwrap_or('0'));
        }
    }
    out.push(if upper { 'E' } else { 'e' });
    let exp = if d.is_empty() { 0 } else { dp - 1 };
    out.push(if exp < 0 { '-' } else { '+' });
    let e = exp.unsigned_abs();
    if e < 10 {
        out.push('0');
    }
    let _ = write!(out, "{e}");
}

fn fmt_f(out: &mut String, d: &[u8], dp: i32, prec: usize) {
    if dp > 0 {
        for i in 0..dp as usize {
            out.push(d.get(i).map(|b| *b as char).unwrap_or('0'));
        }
    } else {
        out.push('0');
    }
    if prec > 0 {
        out.push('.');
        for i in 1..=prec as i32 {
            let j = dp + i - 1;
            let c = if j >= 0 {
                d.get(j as usize).map(|b| *b as char).unwrap_or('0')
            } else {
                '0'
            };
            out.push(c);
        }
    }
}

/// Go's `strconv.FormatFloat(f, verb, prec, 64)` for verbs `e`, `E`, `f`, `g`, `G`
/// (`prec` `None` = shortest).
pub fn format_float(f: f64, verb: char, prec: Option<usize>) -> String {
    let mut out = String::new();
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if f.is_sign_negative() {
        out.push('-');
    }
    match verb {
        'e' | 'E' => {
            let (d, dp) = match prec {
                None => digits(f, None),
                Some(p) => digits(f, Some(p + 1)),
            };
            let p = prec.unwrap_or(d.len().saturating_sub(1));
            fmt_e(&mut out, &d, dp, p, verb == 'E');
        }
        'f' | 'F' => match prec {
            Some(p) => {
                let s = format!("{:.*}", p, f.abs());
                out.push_str(&s);
            }
            None => {
                let (d, dp) = digits(f, None);
                let p = (d.len() as i32 - dp).max(0) as usize;
                fmt_f(&mut out, &d, dp, p);
            }
        },
        _ => {
            let shortest = prec.is_none();
            let (d, dp) = match prec {
                None => digits(f, None),
                Some(p) => digits(f, Some(p.max(1))),
            };
            let nd = d.len() as i32;
            let mut p = match prec {
                None => nd,
                Some(p) => p.max(1) as i32,
            };
            let mut eprec = p;
            if eprec > nd && nd >= dp {
                eprec = nd;
            }
            if shortest {
                eprec = 6;
            }
            let exp = dp - 1;
            if exp < -4 || exp >= eprec {
                if p > nd {
                    p = nd;
                }
                fmt_e(&mut out, &d, dp, (p - 1).max(0) as usize, verb == 'G');
            } else {
                if p > dp {
                    p = nd;
                }
                fmt_f(&mut out, &d, dp, (p - dp).max(0) as usize);
            }
        }
    }
    out
}

/// Go's `%v` of a value, appended to `out`.
pub fn write_value(out: &mut String, v: &Value) {
    match v {
        Value::Nil => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => out.push_str(&format_float(*f, 'g', None)),
        Value::Str(s) => out.push_str(s),
        Value::List(l) => {
            out.push('[');
            for (i, e) in l.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_value(out, e);
            }
            out.push(']');
        }
        Value::Map(m) => {
            out.push_str("map[");
            for (i, (k, e)) in m.read().iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                write_value(out, e);
            }
            out.push(']');
        }
        Value::Object(o) => out.push_str(&o.display()),
    }
}

/// Go's `%v` of a value.
pub fn to_string(v: &Value) -> String {
    match v {
        Value::Str(s) => s.to_string(),
        _ => {
            let mut s = String::new();
            write_value(&mut s, v);
            s
        }
    }
}

/// Go's `fmt.Sprint`: spaces between operands when neither side is a string.
pub fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !matches!(a, Value::Str(_)) && !matches!(args[i - 1], Value::Str(_)) {
            out.push(' ');
        }
        write_value(&mut out, a);
    }
    out
}

/// Go's `fmt.Sprintln`: always spaces, then a newline.
pub fn sprintln(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        write_value(&mut out, a);
    }
    out.push('\n');
    out
}

#[derive(Default, Clone, Copy)]
struct Spec {
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

fn pad(out: &mut String, s: &str, spec: &Spec, numeric: bool) {
    let Some(w) = spec.width else {
        out.push_str(s);
        return;
    };
    let len = s.chars().count();
    if len >= w {
        out.push_str(s);
        return;
    }
    let fill = w - len;
    if spec.minus {
        out.push_str(s);
        out.extend(std::iter::repeat_n(' ', fill));
    } else if spec.zero && numeric {
        let (sign, rest) = match s.as_bytes().first() {
            Some(b'-' | b'+' | b' ') => s.split_at(1),
            _ => ("", s),
        };
        out.push_str(sign);
        out.extend(std::iter::repeat_n('0', fill));
        out.push_str(rest);
    } else if spec.zero && !numeric {
        out.extend(std::iter::repeat_n('0', fill));
        out.push_str(s);
    } else {
        out.extend(std::iter::repeat_n(' ', fill));
        out.push_str(s);
    }
}

/// The backslash escape Go's `strconv.Quote` writes for `c` inside a double-quoted string
/// (`\"`, `\\`, `\a`, `\b`, `\f`, `\n`, `\r`, `\t`, `\v`), when it has one.
pub(crate) fn short_escape(c: char) -> Option<&'static str> {
    Some(match c {
        '"' => "\\\"",
        '\\' => "\\\\",
        '\x07' => "\\a",
        '\x08' => "\\b",
        '\x0c' => "\\f",
        '\n' => "\\n",
        '\r' => "\\r",
        '\t' => "\\t",
        '\x0b' => "\\v",
        _ => return None,
    })
}

/// Go's `strconv.Quote` (with `ascii_only`, `QuoteToASCII`).
pub fn quote(s: &str, ascii_only: bool) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if let Some(escaped) = short_escape(c) {
            out.push_str(escaped);
            continue;
        }
        match c {
            c if (c as u32) < 0x20 || c == '\x7f' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_ascii() => out.push(c),
            c if ascii_only || !is_print(c) => {
                if (c as u32) < 0x10000 {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                } else {
                    let _ = write!(out, "\\U{:08x}", c as u32);
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// An approximation of Go's `unicode.IsPrint` for non-ASCII runes.
pub fn is_print(c: char) -> bool {
    if c.is_control() {
        return false;
    }
    let u = c as u32;
    !(matches!(u, 0x80..=0x9f | 0xad | 0x2028 | 0x2029 | 0xfeff | 0xfff9..=0xfffb | 0xe000..=0xf8ff)
        || (0x200b..=0x200f).contains(&u)
        || (0x202a..=0x202e).contains(&u)
        || (0x2060..=0x206f).contains(&u)
        || (u >= 0xf0000)
        || (0xd800..=0xdfff).contains(&u)
        || u == 0x00a0
        || (0x2000..=0x200a).contains(&u)
        || u == 0x3000
        || u == 0x1680
        || u == 0x202f
        || u == 0x205f)
}

fn bad_verb(out: &mut String, verb: char, v: &Value, spec: &Spec) {
    out.push_str("%!");
    out.push(verb);
    out.push('(');
    match v {
        Value::Nil => out.push_str("<nil>"),
        _ => {
            out.push_str(&v.type_name());
            out.push('=');
            // Go prints the operand as %v with the same width, precision and flags.
            fmt_one(out, v, 'v', spec, 1);
        }
    }
    out.push(')');
}

/// strconv's `%x` (shortest) and `%b` forms of a float.
fn special_float(f: f64, verb: char) -> String {
    let neg = f.is_sign_negative();
    let bits = f.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let mut frac = bits & ((1u64 << 52) - 1);
    let sign = if neg { "-" } else { "" };
    if verb == 'b' {
        let (m, e) = if biased == 0 {
            (frac, -1074)
        } else {
            (frac | (1u64 << 52), biased - 1075)
        };
        let esign = if e < 0 { '-' } else { '+' };
        return format!("{sign}{m}p{esign}{}", e.unsigned_abs());
    }
    if f == 0.0 {
        let s = format!("{sign}0x0p+00");
        return if verb == 'X' { s.to_uppercase() } else { s };
    }
    let exp = if biased == 0 {
        let mut e = -1022;
        while frac & (1u64 << 52) == 0 {
            frac <<= 1;
            e -= 1;
        }
        frac &= (1u64 << 52) - 1;
        e
    } else {
        biased - 1023
    };
    let hex = format!("{frac:013x}");
    let hex = hex.trim_end_matches('0');
    let esign = if exp < 0 { '-' } else { '+' };
    let mut s = format!("{sign}0x1");
    if !hex.is_empty() {
        s.push('.');
        s.push_str(hex);
    }
    let _ = write!(s, "p{esign}{:02}", exp.unsigned_abs());
    if verb == 'X' { s.to_uppercase() } else { s }
}

fn fmt_int(out: &mut String, i: i64, verb: char, spec: &Spec) {
    let neg = i < 0;
    let u = i.unsigned_abs();
    let mut body = match verb {
        'd' | 'v' => u.to_string(),
        'b' => format!("{u:b}"),
        'o' | 'O' => format!("{u:o}"),
        'x' => format!("{u:x}"),
        'X' => format!("{u:X}"),
        _ => String::new(),
    };
    if let Some(p) = spec.prec {
        if p == 0 && u == 0 {
            body.clear();
        }
        while body.len() < p {
            body.insert(0, '0');
        }
    }
    let prefix = match verb {
        'b' if spec.sharp => "0b",
        'o' if spec.sharp && u != 0 => "0",
        'O' => "0o",
        'x' if spec.sharp => "0x",
        'X' if spec.sharp => "0X",
        _ => "",
    };
    let sign = if neg {
        "-"
    } else if spec.plus {
        "+"
    } else if spec.space {
        " "
    } else {
        ""
    };
    let s = format!("{sign}{prefix}{body}");
    let mut sp = *spec;
    if spec.prec.is_some() {
        sp.zero = false;
    }
    pad(out, &s, &sp, true);
}

fn fmt_float(out: &mut String, f: f64, verb: char, spec: &Spec) {
    let mut s = match verb {
        'v' => format_float(f, 'g', spec.prec),
        'e' | 'E' => format_float(f, verb, Some(spec.prec.unwrap_or(6))),
        'f' | 'F' => format_float(f, 'f', Some(spec.prec.unwrap_or(6))),
        'g' | 'G' => format_float(f, verb, spec.prec),
        _ => String::new(),
    };
    if spec.plus && !s.starts_with('-') && !s.starts_with('+') {
        s.insert(0, '+');
    } else if spec.space && !s.starts_with('-') {
        s.insert(0, ' ');
    }
    let numeric = f.is_finite();
    pad(out, &s, spec, numeric);
}

fn fmt_str(out: &mut String, s: &str, verb: char, spec: &Spec) {
    let s = match spec.prec {
        Some(p) if matches!(verb, 's' | 'v' | 'q') => s.chars().take(p).collect::<String>(),
        _ => s.to_string(),
    };
    let body = match verb {
        's' | 'v' => s,
        'q' => {
            if spec.sharp && !s.contains('`') && s.chars().all(|c| c == '\t' || !c.is_control()) {
                format!("`{s}`")
            } else {
                quote(&s, spec.plus)
            }
        }
        'x' | 'X' => {
            let mut h = String::new();
            let prefix = if verb == 'x' { "0x" } else { "0X" };
            // For %x the precision counts bytes of input.
            let n = spec.prec.unwrap_or(usize::MAX);
            for (i, b) in s.bytes().take(n).enumerate() {
                if spec.space && i > 0 {
                    h.push(' ');
                }
                if spec.sharp && (spec.space || i == 0) {
                    h.push_str(prefix);
                }
                if verb == 'x' {
                    let _ = write!(h, "{b:02x}");
                } else {
                    let _ = write!(h, "{b:02X}");
                }
            }
            h
        }
        _ => s,
    };
    pad(out, &body, spec, false);
}

fn fmt_one(out: &mut String, v: &Value, verb: char, spec: &Spec, depth: usize) {
    match v {
        Value::Bool(b) if matches!(verb, 't' | 'v') => {
            pad(out, if *b { "true" } else { "false" }, spec, false)
        }
        Value::Int(i) => match verb {
            'd' | 'v' | 'b' | 'o' | 'O' | 'x' | 'X' => fmt_int(out, *i, verb, spec),
            'c' => {
                let c = char::from_u32(*i as u32).unwrap_or('\u{fffd}');
                pad(out, &c.to_string(), spec, false);
            }
            'q' => {
                let c = char::from_u32(*i as u32).unwrap_or('\u{fffd}');
                let q = quote(&c.to_string(), spec.plus);
                let inner = &q[1..q.len() - 1];
                let inner = if inner == "'" {
                    "\\'".to_string()
                } else {
                    inner.replace("\\\"", "\"")
                };
                pad(out, &format!("'{inner}'"), spec, false);
            }
            'U' => pad(out, &format!("U+{:04X}", i), spec, false),
            'e' | 'E' | 'f' | 'F' | 'g' | 'G' => bad_verb(out, verb, v, spec),
            _ => bad_verb(out, verb, v, spec),
        },
        Value::Float(f) => match verb {
            'v' | 'e' | 'E' | 'f' | 'F' | 'g' | 'G' => fmt_float(out, *f, verb, spec),
            'x' | 'X' | 'b' if spec.prec.is_none() && !spec.sharp => {
                let mut t = special_float(*f, verb);
                if spec.plus && !t.starts_with('-') {
                    t.insert(0, '+');
                } else if spec.space && !t.starts_with('-') {
                    t.insert(0, ' ');
                }
                pad(out, &t, spec, true);
            }
            _ => bad_verb(out, verb, v, spec),
        },
        Value::Str(s) => match verb {
            's' | 'v' | 'q' | 'x' | 'X' => fmt_str(out, s, verb, spec),
            _ => bad_verb(out, verb, v, spec),
        },
        Value::List(l) => {
            out.push('[');
            for (i, e) in l.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                fmt_one(out, e, verb, spec, depth + 1);
            }
            out.push(']');
        }
        Value::Map(m) => {
            out.push_str("map[");
            for (i, (k, e)) in m.read().iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                fmt_one(out, &Value::Str(k.clone()), verb, spec, depth + 1);
                out.push(':');
                fmt_one(out, e, verb, spec, depth + 1);
            }
            out.push(']');
        }
        // A nil inside a list or map prints as <nil> whatever the verb.
        Value::Nil if depth > 0 => out.push_str("<nil>"),
        Value::Nil => {
            if verb == 'v' {
                pad(out, "<nil>", spec, false);
            } else {
                bad_verb(out, verb, v, spec);
            }
        }
        Value::Object(o) => match verb {
            'v' | 's' => pad(out, &o.display(), spec, false),
            'q' => pad(out, &quote(&o.display(), false), spec, false),
            _ => bad_verb(out, verb, v, spec),
        },
        Value::Bool(_) => bad_verb(out, verb, v, spec),
    }
}

fn fmt_sharp_v(out: &mut String, v: &Value, depth: usize) {
    match v {
        Value::Nil if depth > 0 => out.push_str("interface {}(nil)"),
        Value::Nil => out.push_str("<nil>"),
        Value::Str(s) => out.push_str(&quote(s, false)),
        Value::List(l) => {
            out.push_str("[]interface {}{");
            for (i, e) in l.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                fmt_sharp_v(out, e, depth + 1);
            }
            out.push('}');
        }
        Value::Map(m) => {
            out.push_str("map[string]interface {}{");
            for (i, (k, e)) in m.read().iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&quote(k, false));
                out.push(':');
                fmt_sharp_v(out, e, depth + 1);
            }
            out.push('}');
        }
        Value::Float(f) => {
            out.push_str(&format_float(*f, 'g', None));
        }
        other => write_value(out, other),
    }
}

/// Go's `fmt.Sprintf` over template values.
pub fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::with_capacity(format.len() + 16);
    let mut argi = 0usize;
    let mut chars = format.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while let Some(&(_, f)) = chars.peek() {
            match f {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                '#' => spec.sharp = true,
                ' ' => spec.space = true,
                '0' => spec.zero = !spec.minus,
                _ => break,
            }
            chars.next();
        }
        let read_num = |chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
                        argi: &mut usize|
         -> Option<usize> {
            if let Some(&(_, '*')) = chars.peek() {
                chars.next();
                let v = args.get(*argi).cloned();
                *argi += 1;
                return match v {
                    Some(Value::Int(i)) if i >= 0 => Some(i as usize),
                    _ => None,
                };
            }
            let mut n: Option<usize> = None;
            while let Some(&(_, d)) = chars.peek() {
                if let Some(x) = d.to_digit(10) {
                    n = Some(
                        n.unwrap_or(0)
                            .saturating_mul(10)
                            .saturating_add(x as usize)
                            .min(1 << 20),
                    );
                    chars.next();
                } else {
                    break;
                }
            }
            n
        };
        spec.width = read_num(&mut chars, &mut argi);
        if let Some(&(_, '.')) = chars.peek() {
            chars.next();
            spec.prec = Some(read_num(&mut chars, &mut argi).unwrap_or(0));
        }
        let Some((_, verb)) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        // `%+v` asks for field names (none here), not for signs on numbers.
        if verb == 'v' && spec.plus && !spec.sharp {
            spec.plus = false;
        }
        let Some(arg) = args.get(argi) else {
            out.push_str("%!");
            out.push(verb);
            out.push_str("(MISSING)");
            continue;
        };
        argi += 1;
        match verb {
            'T' => pad(&mut out, &arg.type_name(), &spec, false),
            'v' if spec.sharp => fmt_sharp_v(&mut out, arg, 0),
            'v' | 'd' | 's' | 'q' | 'x' | 'X' | 't' | 'b' | 'o' | 'O' | 'c' | 'U' | 'e' | 'E'
            | 'f' | 'F' | 'g' | 'G' => fmt_one(&mut out, arg, verb, &spec, 0),
            _ => bad_verb(&mut out, verb, arg, &spec),
        }
    }
    if argi < args.len() {
        out.push_str("%!(EXTRA ");
        for (i, a) in args[argi..].iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            if a.is_nil() {
                out.push_str("<nil>");
                continue;
            }
            out.push_str(&a.type_name());
            out.push('=');
            write_value(&mut out, a);
        }
        out.push(')');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_go() {
        assert_eq!(format_float(1e6, 'g', None), "1e+06");
        assert_eq!(format_float(3.5, 'g', None), "3.5");
        assert_eq!(format_float(100000.0, 'g', None), "100000");
        assert_eq!(format_float(0.0001, 'g', None), "0.0001");
        assert_eq!(format_float(0.00001, 'g', None), "1e-05");
        assert_eq!(format_float(123456789.0, 'g', None), "1.23456789e+08");
        assert_eq!(format_float(0.0, 'g', None), "0");
        assert_eq!(format_float(2.5, 'e', Some(6)), "2.500000e+00");
        assert_eq!(format_float(1.0, 'g', Some(3)), "1");
        assert_eq!(format_float(1234.5678, 'g', Some(3)), "1.23e+03");
    }

    #[test]
    fn sprintf_verbs() {
        assert_eq!(sprintf("%04x", &[Value::Int(127)]), "007f");
        assert_eq!(
            sprintf(
                "%5.2f|%-4d|%q",
                &[Value::Float(1.23456), Value::Int(7), Value::str("a\"b")]
            ),
            " 1.23|7   |\"a\\\"b\""
        );
        assert_eq!(sprintf("%d", &[Value::str("x")]), "%!d(string=x)");
        assert_eq!(sprintf("%d %d", &[Value::Int(1)]), "1 %!d(MISSING)");
        assert_eq!(sprintf("%T", &[Value::Float(1.0)]), "float64");
    }
}
