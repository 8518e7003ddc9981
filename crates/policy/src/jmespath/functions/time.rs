//! Kyverno's `time_*` functions (`pkg/engine/jmespath/time.go`): times are RFC 3339 strings
//! read and written with Go's layouts (`ferroflux_gocompat::time`), durations are Go durations.

use std::time::{SystemTime, UNIX_EPOCH};

use ferroflux_gocompat::{duration, time as gotime};
use jmespath::Rcvar;

use super::{Args, JpError, boolean, fail, string};

/// Go's `time.RFC3339`.
const RFC3339: &str = "2006-01-02T15:04:05Z07:00";
/// The wall clock of a time without its zone, to learn the zone's offset.
const WALL: &str = "2006-01-02T15:04:05";
/// Seconds from Go's zero time (January 1, year 1, UTC) to the Unix epoch; `Truncate` counts
/// from the former.
const ZERO_TO_UNIX: i128 = 62_135_596_800;
const NANOS: i128 = 1_000_000_000;

/// An instant in nanoseconds since the Unix epoch and the UTC offset (seconds) it is shown in.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Instant {
    nanos: i128,
    offset: i64,
}

impl Instant {
    fn from_go(t: &gotime::GoTime) -> Result<Self, String> {
        // GoTime keeps its offset private: the same wall clock read as UTC tells it.
        let wall = gotime::parse(WALL, &t.format(WALL))?;
        Ok(Instant {
            nanos: i128::from(t.unix()) * NANOS + i128::from(t.nanos()),
            offset: wall.unix() - t.unix(),
        })
    }

    fn now() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        Instant { nanos, offset: 0 }
    }

    /// Go's `Format(time.RFC3339)`: seconds only, `Z` for a zero offset.
    fn rfc3339(self) -> String {
        let local = self.nanos.div_euclid(NANOS) + i128::from(self.offset);
        let secs = i64::try_from(local).unwrap_or(i64::MAX);
        let mut out = gotime::GoTime::utc(secs, 0).format(WALL);
        if self.offset == 0 {
            out.push('Z');
        } else {
            let sign = if self.offset < 0 { '-' } else { '+' };
            let abs = self.offset.unsigned_abs();
            out.push_str(&format!("{sign}{:02}:{:02}", abs / 3600, (abs / 60) % 60));
        }
        out
    }

    fn utc(self) -> Self {
        Instant { offset: 0, ..self }
    }

    /// Wall clock fields in the time's own zone: (minute, hour, day, month, weekday).
    fn cron_fields(self) -> Result<[i64; 5], String> {
        let local = self.nanos.div_euclid(NANOS) + i128::from(self.offset);
        let t = gotime::GoTime::utc(i64::try_from(local).map_err(|e| e.to_string())?, 0);
        let field = |layout: &str| t.format(layout).parse::<i64>().map_err(|e| e.to_string());
        let weekday = (local.div_euclid(86_400) + 4).rem_euclid(7) as i64;
        Ok([field("4")?, field("15")?, field("2")?, field("1")?, weekday])
    }
}

/// `time.Parse(layout, value)` as an [`Instant`].
fn parse(layout: &str, value: &str) -> Result<Instant, String> {
    Instant::from_go(&gotime::parse(layout, value)?)
}

fn time_arg(a: &Args<'_, '_>, i: usize) -> Result<Instant, JpError> {
    parse(RFC3339, &a.str(i)?).map_err(|e| fail(a.name, e))
}

fn duration_arg(a: &Args<'_, '_>, i: usize) -> Result<i64, JpError> {
    duration::parse(&a.str(i)?).map_err(|e| fail(a.name, e))
}

/// Go's `Time.Sub`: a duration, saturated at the bounds of `int64` nanoseconds.
fn sub(later: Instant, earlier: Instant) -> String {
    let d = (later.nanos - earlier.nanos).clamp(i128::from(i64::MIN), i128::from(i64::MAX));
    duration::format(d as i64)
}

/// Go's `Time.Truncate`: rounds down to a multiple of `d` since Go's zero time.
fn truncate(t: Instant, d: i64) -> Instant {
    if d <= 0 {
        return t;
    }
    let since_zero = t.nanos + ZERO_TO_UNIX * NANOS;
    Instant {
        nanos: t.nanos - since_zero.rem_euclid(i128::from(d)),
        ..t
    }
}

/// Calls the `time_*` function `a.name`, `None` when it is not one.
pub(super) fn call(a: &Args<'_, '_>) -> Result<Option<Rcvar>, JpError> {
    let out = match a.name {
        "time_now" => (a.arity(0)?, string(Instant::now().rfc3339())?).1,
        "time_now_utc" => (a.arity(0)?, string(Instant::now().rfc3339())?).1,
        "time_since" => time_since(a)?,
        "time_add" => {
            a.arity(2)?;
            let (t, d) = (time_arg(a, 0)?, duration_arg(a, 1)?);
            let moved = Instant {
                nanos: t.nanos + i128::from(d),
                ..t
            };
            string(moved.rfc3339())?
        }
        "time_parse" => time_parse(a)?,
        "time_to_cron" => {
            a.arity(1)?;
            let fields = time_arg(a, 0)?.cron_fields().map_err(|e| fail(a.name, e))?;
            let text: Vec<String> = fields.iter().map(i64::to_string).collect();
            string(text.join(" "))?
        }
        "time_utc" => (a.arity(1)?, string(time_arg(a, 0)?.utc().rfc3339())?).1,
        "time_diff" => (a.arity(2)?, string(sub(time_arg(a, 1)?, time_arg(a, 0)?))?).1,
        "time_before" => {
            (
                a.arity(2)?,
                boolean(time_arg(a, 0)?.nanos < time_arg(a, 1)?.nanos)?,
            )
                .1
        }
        "time_after" => {
            (
                a.arity(2)?,
                boolean(time_arg(a, 0)?.nanos > time_arg(a, 1)?.nanos)?,
            )
                .1
        }
        "time_between" => {
            a.arity(3)?;
            let (t, start, end) = (time_arg(a, 0)?, time_arg(a, 1)?, time_arg(a, 2)?);
            boolean(t.nanos > start.nanos && t.nanos < end.nanos)?
        }
        "time_truncate" => {
            a.arity(2)?;
            let (t, d) = (time_arg(a, 0)?, duration_arg(a, 1)?);
            string(truncate(t, d).rfc3339())?
        }
        _ => return Ok(None),
    };
    Ok(Some(out))
}

/// `time_since(layout, t1, t2)`: `t2 - t1`, `t2` empty meaning now, the layout empty meaning
/// RFC 3339.
fn time_since(a: &Args<'_, '_>) -> Result<Rcvar, JpError> {
    a.arity(3)?;
    let layout = a.str(0)?;
    let layout = if layout.is_empty() { RFC3339 } else { &layout };
    let t1 = parse(layout, &a.str(1)?).map_err(|e| fail(a.name, e))?;
    let t2 = match a.str(2)? {
        s if s.is_empty() => Instant::now(),
        s => parse(layout, &s).map_err(|e| fail(a.name, e))?,
    };
    string(sub(t2, t1))
}

/// `time_parse(layout, value)`: a layout that is an integer reads the value as Unix seconds.
fn time_parse(a: &Args<'_, '_>) -> Result<Rcvar, JpError> {
    a.arity(2)?;
    let (layout, value) = (a.str(0)?, a.str(1)?);
    if layout.parse::<i64>().is_ok() {
        let secs: i64 = value.parse().map_err(|_| {
            fail(
                a.name,
                format!("strconv.ParseInt: parsing {value:?}: invalid syntax"),
            )
        })?;
        let t = Instant {
            nanos: i128::from(secs) * NANOS,
            offset: 0,
        };
        return string(t.rfc3339());
    }
    string(
        parse(&layout, &value)
            .map_err(|e| fail(a.name, e))?
            .rfc3339(),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::jmespath::run_on_empty as run;
    use crate::jmespath::{search, to_var};

    #[test]
    fn kyverno_documented_time_examples() {
        assert_eq!(
            run("time_add('2023-01-12T12:37:56-05:00', '6h')"),
            json!("2023-01-12T18:37:56-05:00")
        );
        assert_eq!(
            run("time_parse('Mon Jan 02 2006 15:04:05 -0700', 'Fri Jun 22 2022 17:45:00 +0100')"),
            json!("2022-06-22T17:45:00+01:00")
        );
        assert_eq!(
            run("time_parse('1136214245', '1666036888')"),
            json!("2022-10-17T20:01:28Z")
        );
        assert_eq!(
            run("time_to_cron('2023-02-02T15:04:05Z')"),
            json!("4 15 2 2 4")
        );
        assert_eq!(
            run("time_utc('2021-01-02T18:04:05-05:00')"),
            json!("2021-01-02T23:04:05Z")
        );
        assert_eq!(
            run("time_diff('2021-01-01T00:00:00Z', '2021-01-02T00:00:00Z')"),
            json!("24h0m0s")
        );
        assert_eq!(
            run("time_before('2023-01-12T14:07:55-05:00', '2023-01-12T19:05:59Z')"),
            json!(false)
        );
        assert_eq!(
            run("time_after('2023-01-12T14:07:55-05:00', '2023-01-12T19:05:59Z')"),
            json!(true)
        );
        assert_eq!(
            run(
                "time_between('2023-01-12T19:05:59Z', '2023-01-01T19:05:59Z', '2023-01-15T19:05:59Z')"
            ),
            json!(true)
        );
        // Truncation counts from Go's zero time, so a day boundary is UTC midnight.
        assert_eq!(
            run("time_truncate('2023-01-12T17:37:00-05:00', '24h')"),
            json!("2023-01-11T19:00:00-05:00")
        );
        assert_eq!(
            run("time_truncate('2023-01-12T17:37:00Z', '1h')"),
            json!("2023-01-12T17:00:00Z")
        );
        assert_eq!(
            run("time_since('', '2021-01-01T00:00:00Z', '2021-01-01T01:30:00Z')"),
            json!("1h30m0s")
        );
    }

    #[test]
    fn now_is_rfc3339_and_bad_input_is_an_error() {
        let now = run("time_now_utc()");
        let text = now.as_str().expect("string");
        assert!(text.ends_with('Z') && text.len() == 20, "{text}");
        assert!(search("time_add('yesterday', '1h')", &to_var(&json!({}))).is_err());
        assert!(
            search(
                "time_add('2023-01-12T12:37:56Z', '1d')",
                &to_var(&json!({}))
            )
            .is_err()
        );
    }
}
