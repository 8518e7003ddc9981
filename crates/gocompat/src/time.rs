//! Go's `time` layouts (`2006-01-02T15:04:05Z07:00`): `Time.Format` and `time.Parse` for the
//! engines that take a layout from users (Sprig's date functions, Kyverno's `time_*`). Without a
//! time-zone database only UTC and fixed offsets parsed from input are known.

use std::fmt::Write;

/// A Go `time.Time`: Unix seconds, nanoseconds and the zone it is shown in.
#[derive(Clone, Debug, PartialEq)]
pub struct GoTime {
    secs: i64,
    nanos: u32,
    offset: i32,
    zone: String,
}

const MONTHS: [&str; 12] = [
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
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// Days since 1970-01-01 to (year, month 1-12, day 1-31), proleptic Gregorian.
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl GoTime {
    /// A time in UTC from Unix seconds and nanoseconds.
    pub fn utc(secs: i64, nanos: u32) -> Self {
        GoTime {
            secs,
            nanos,
            offset: 0,
            zone: "UTC".into(),
        }
    }

    /// The same instant shown in UTC.
    pub fn in_utc(&self) -> Self {
        GoTime::utc(self.secs, self.nanos)
    }

    /// Unix seconds (Go's `Time.Unix`).
    pub fn unix(&self) -> i64 {
        self.secs
    }

    /// Nanoseconds within the second.
    pub fn nanos(&self) -> u32 {
        self.nanos
    }

    /// The year in the time's own zone (Go's `Time.Year`).
    pub fn year(&self) -> i64 {
        civil((self.secs + self.offset as i64).div_euclid(86_400)).0
    }

    /// Go's `Time.String`: `2006-01-02 15:04:05.999999999 -0700 MST`, the zone name left out
    /// when a parsed offset has none.
    pub fn to_go_string(&self) -> String {
        let s = self.format("2006-01-02 15:04:05.999999999 -0700 MST");
        if self.zone.is_empty() {
            s.trim_end().to_string()
        } else {
            s
        }
    }

    /// Go's `Time.Format`.
    pub fn format(&self, layout: &str) -> String {
        let local = self.secs + self.offset as i64;
        let days = local.div_euclid(86_400);
        let sod = local.rem_euclid(86_400);
        let (year, month, day) = civil(days);
        let (hour, min, sec) = (sod / 3600, (sod / 60) % 60, sod % 60);
        let hour12 = if hour % 12 == 0 { 12 } else { hour % 12 };
        let weekday = (days + 4).rem_euclid(7) as usize;
        let yday = days - days_from_civil(year, 1, 1) + 1;
        let mut out = String::new();
        let mut rest = layout;
        while !rest.is_empty() {
            macro_rules! tok {
                ($t:expr, $body:expr) => {
                    if let Some(r) = rest.strip_prefix($t) {
                        #[allow(clippy::redundant_closure_call)]
                        ($body)(&mut out);
                        rest = r;
                        continue;
                    }
                };
            }
            // A token that prints formatted numbers, or a piece of text.
            macro_rules! tok_write {
                ($t:expr, $($fmt:tt)+) => {
                    tok!($t, |o: &mut String| {
                        let _ = write!(o, $($fmt)+);
                    })
                };
            }
            macro_rules! tok_push {
                ($t:expr, $text:expr) => {
                    tok!($t, |o: &mut String| o.push_str($text))
                };
            }
            tok_push!("January", MONTHS[month as usize - 1]);
            tok_push!("Jan", &MONTHS[month as usize - 1][..3]);
            tok_push!("Monday", DAYS[weekday]);
            tok_push!("Mon", &DAYS[weekday][..3]);
            tok_push!("MST", &self.zone);
            tok_write!("2006", "{year:04}");
            tok_push!("-07:00:00", &offset_str(self.offset, true, true, false));
            tok_push!("-07:00", &offset_str(self.offset, true, false, false));
            tok_push!("-0700", &offset_str(self.offset, false, false, false));
            tok_push!("-07", &offset_str(self.offset, false, false, false)[..3]);
            tok_push!("Z07:00", &offset_str(self.offset, true, false, true));
            tok_push!("Z0700", &offset_str(self.offset, false, false, true));
            tok!("Z07", |o: &mut String| {
                let z = offset_str(self.offset, false, false, true);
                o.push_str(if z == "Z" { "Z" } else { &z[..3] });
            });
            tok_write!("002", "{yday:03}");
            tok_write!("__2", "{yday:>3}");
            tok_write!("01", "{month:02}");
            tok_write!("02", "{day:02}");
            tok_write!("_2", "{day:>2}");
            tok_write!("06", "{:02}", year.rem_euclid(100));
            tok_write!("15", "{hour:02}");
            tok_write!("03", "{hour12:02}");
            tok_write!("04", "{min:02}");
            tok_write!("05", "{sec:02}");
            tok_push!("PM", if hour >= 12 { "PM" } else { "AM" });
            tok_push!("pm", if hour >= 12 { "pm" } else { "am" });
            if let Some(r) = write_fraction(rest, self.nanos, &mut out) {
                rest = r;
                continue;
            }
            tok_write!("1", "{month}");
            tok_write!("2", "{day}");
            tok_write!("3", "{hour12}");
            tok_write!("4", "{min}");
            tok_write!("5", "{sec}");
            let c = rest.chars().next().unwrap_or(' ');
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
        out
    }
}

/// A fractional-seconds element of a layout at the start of `rest` (`.000`, `,999`): writes
/// it and returns the rest of the layout; `None` when `rest` does not start with one.
fn write_fraction<'l>(rest: &'l str, nanos: u32, out: &mut String) -> Option<&'l str> {
    let r = rest.strip_prefix(['.', ','])?;
    let digits = r.bytes().take_while(|b| *b == b'0' || *b == b'9').count();
    if digits == 0
        || r.as_bytes()[0] != r.as_bytes()[digits - 1]
        || r[digits..].starts_with(|c: char| c.is_ascii_digit())
    {
        return None;
    }
    let frac = format!("{nanos:09}");
    let mut f = frac[..digits.min(9)].to_string();
    if r.starts_with('9') {
        while f.ends_with('0') {
            f.pop();
        }
        if f.is_empty() {
            return Some(&r[digits..]);
        }
    }
    out.push(rest.as_bytes()[0] as char);
    out.push_str(&f);
    Some(&r[digits..])
}

fn offset_str(offset: i32, colon: bool, seconds: bool, z: bool) -> String {
    if z && offset == 0 {
        return "Z".into();
    }
    let sign = if offset < 0 { '-' } else { '+' };
    let o = offset.unsigned_abs();
    let (h, m, s) = (o / 3600, (o / 60) % 60, o % 60);
    let sep = if colon { ":" } else { "" };
    let mut out = format!("{sign}{h:02}{sep}{m:02}");
    if seconds {
        let _ = write!(out, "{sep}{s:02}");
    }
    out
}

/// A month or weekday name at the start of `v`, in full or as its three-letter prefix: its
/// index in `names`, and `v` advanced past it.
fn take_name(names: &[&str], long: bool, v: &mut &str) -> Option<usize> {
    let idx = names.iter().position(|n| {
        if long {
            v.starts_with(n)
        } else {
            v.starts_with(&n[..3])
        }
    })?;
    *v = &v[if long { names[idx].len() } else { 3 }..];
    Some(idx)
}

/// A number of `min_digits` to `max_digits` digits at the start of `v`, and `v` advanced past it.
fn take_num(v: &mut &str, min_digits: usize, max_digits: usize) -> Option<i64> {
    let n = v
        .bytes()
        .take(max_digits)
        .take_while(u8::is_ascii_digit)
        .count();
    if n < min_digits {
        return None;
    }
    let x = v[..n].parse().ok()?;
    *v = &v[n..];
    Some(x)
}

/// Go's `time.Parse` for the common layout elements (numeric dates and times, month and
/// day names, fractional seconds, numeric offsets and `Z`).
///
/// Errors: the value does not fit the layout, has extra text, or a field is out of range;
/// the message is Go's.
pub fn parse(layout: &str, value: &str) -> Result<GoTime, String> {
    let err = || format!("parsing time {value:?} as {layout:?}: cannot parse");
    let (mut year, mut month, mut day, mut hour, mut min, mut sec, mut nanos, mut offset) =
        (1i64, 1u32, 1u32, 0i64, 0i64, 0i64, 0u32, 0i32);
    let mut pm: Option<bool> = None;
    let mut l = layout;
    let mut v = value;
    while !l.is_empty() {
        macro_rules! field {
            ($t:expr, $min:expr, $max:expr, $set:expr) => {
                if let Some(r) = l.strip_prefix($t) {
                    let x = take_num(&mut v, $min, $max).ok_or_else(err)?;
                    #[allow(clippy::redundant_closure_call)]
                    ($set)(x);
                    l = r;
                    continue;
                }
            };
        }
        if let Some(r) = l.strip_prefix("January").or_else(|| l.strip_prefix("Jan")) {
            let idx = take_name(&MONTHS, l.starts_with("January"), &mut v).ok_or_else(err)?;
            month = idx as u32 + 1;
            l = r;
            continue;
        }
        if let Some(r) = l.strip_prefix("Monday").or_else(|| l.strip_prefix("Mon")) {
            take_name(&DAYS, l.starts_with("Monday"), &mut v).ok_or_else(err)?;
            l = r;
            continue;
        }
        field!("2006", 4, 4, |x| year = x);
        if l.starts_with("Z07:00")
            || l.starts_with("-07:00")
            || l.starts_with("Z0700")
            || l.starts_with("-0700")
        {
            let colon = l[1..].starts_with("07:00");
            let z_ok = l.starts_with('Z');
            l = &l[if colon { 6 } else { 5 }..];
            if z_ok && v.starts_with('Z') {
                v = &v[1..];
                continue;
            }
            let sign = match v.as_bytes().first() {
                Some(b'+') => 1,
                Some(b'-') => -1,
                _ => return Err(err()),
            };
            v = &v[1..];
            let h = take_num(&mut v, 2, 2).ok_or_else(err)?;
            if colon {
                v = v.strip_prefix(':').ok_or_else(err)?;
            }
            let m = take_num(&mut v, 2, 2).ok_or_else(err)?;
            offset = sign * (h * 3600 + m * 60) as i32;
            continue;
        }
        if let Some(r) = l.strip_prefix("MST") {
            let n = v.bytes().take_while(u8::is_ascii_uppercase).count();
            v = &v[n..];
            l = r;
            continue;
        }
        field!("01", 2, 2, |x| month = x as u32);
        field!("02", 2, 2, |x| day = x as u32);
        field!("_2", 1, 2, |x| day = x as u32);
        field!("06", 2, 2, |x| year =
            if x >= 69 { 1900 + x } else { 2000 + x });
        field!("15", 1, 2, |x| hour = x);
        field!("03", 2, 2, |x| hour = x);
        field!("04", 2, 2, |x| min = x);
        field!("05", 2, 2, |x| sec = x);
        if l.starts_with("PM") || l.starts_with("pm") {
            let up = v.get(..2).map(str::to_ascii_uppercase).ok_or_else(err)?;
            pm = Some(match up.as_str() {
                "PM" => true,
                "AM" => false,
                _ => return Err(err()),
            });
            v = &v[2..];
            l = &l[2..];
            continue;
        }
        if (l.starts_with(".0") || l.starts_with(".9")) && v.starts_with('.') {
            let n = l[1..]
                .bytes()
                .take_while(|b| *b == b'0' || *b == b'9')
                .count();
            l = &l[1 + n..];
            v = &v[1..];
            let digits = v.bytes().take_while(u8::is_ascii_digit).count();
            let frac = format!("{:0<9}", &v[..digits.min(9)]);
            nanos = frac.parse().map_err(|_| err())?;
            v = &v[digits..];
            continue;
        }
        field!("1", 1, 2, |x| month = x as u32);
        field!("2", 1, 2, |x| day = x as u32);
        field!("3", 1, 2, |x| hour = x);
        field!("4", 1, 2, |x| min = x);
        field!("5", 1, 2, |x| sec = x);
        let c = l.chars().next().unwrap_or(' ');
        v = v.strip_prefix(c).ok_or_else(err)?;
        l = &l[c.len_utf8()..];
        // Go accepts fractional seconds after a seconds field even when the layout has none.
        if v.starts_with('.') && l.is_empty() {
            return Err(err());
        }
    }
    if !v.is_empty() {
        return Err(format!("parsing time {value:?}: extra text: {v:?}"));
    }
    if let Some(pm) = pm {
        if hour == 12 {
            hour = 0;
        }
        if pm {
            hour += 12;
        }
    }
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 59 {
        return Err(format!("parsing time {value:?}: value out of range"));
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + min * 60 + sec - offset as i64;
    Ok(GoTime {
        secs,
        nanos,
        offset,
        zone: if offset == 0 {
            "UTC".into()
        } else {
            String::new()
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_go_layouts() {
        let t = GoTime::utc(1_560_458_379, 0);
        assert_eq!(t.format("02 Jan 06 15:04 -0700"), "13 Jun 19 20:39 +0000");
        assert_eq!(
            t.format("2006-01-02T15:04:05Z07:00 Monday"),
            "2019-06-13T20:39:39Z Thursday"
        );
        let p = parse("2006-01-02", "2017-12-31").expect("parses");
        assert_eq!(p.format("02/01/2006"), "31/12/2017");
        assert_eq!(p.to_go_string(), "2017-12-31 00:00:00 +0000 UTC");
        assert!(parse("2006-01-02", "2017-13-31").is_err());
        let z = parse("2006-01-02T15:04:05Z07:00", "2019-06-13T22:39:39+02:00").expect("offset");
        assert_eq!(z.unix(), 1_560_458_379);
        assert_eq!(z.in_utc().format("15:04"), "20:39");
    }
}
