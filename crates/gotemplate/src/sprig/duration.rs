//! Sprig's `durationRound` (Go's duration text itself is `ferroflux_gocompat::duration`).

use ferroflux_gocompat::duration;

use crate::value::Value;

pub(super) fn duration_round(v: &Value) -> String {
    let d: i64 = match v {
        Value::Str(s) => duration::parse(s).unwrap_or(0),
        Value::Int(i) => *i,
        _ => 0,
    };
    let u = d.unsigned_abs();
    let hour: u64 = 3_600_000_000_000;
    let (year, month, day, minute, second) = (
        hour * 24 * 365,
        hour * 24 * 30,
        hour * 24,
        60_000_000_000u64,
        1_000_000_000u64,
    );
    if u > year {
        format!("{}y", u / year)
    } else if u > month {
        format!("{}mo", u / month)
    } else if u > day {
        format!("{}d", u / day)
    } else if u > hour {
        format!("{}h", u / hour)
    } else if u > minute {
        format!("{}m", u / minute)
    } else if u > second {
        format!("{}s", u / second)
    } else {
        "0s".into()
    }
}
