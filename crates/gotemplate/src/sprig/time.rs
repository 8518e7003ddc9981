//! Sprig's date functions over Go's layout strings (`ferroflux_gocompat::time`), with the clock
//! injected through [`Sources::now`]. Without a time-zone database only UTC (and `Local`,
//! which a pure engine treats as UTC) and fixed offsets parsed from input are known; other zone
//! names fall back to UTC as Sprig does when `LoadLocation` fails.

use std::sync::Arc;

use ferroflux_gocompat::time::{GoTime, parse};

use super::{Entry, FResult, Sources, arity, f, insert_all, s};
use crate::value::{HostObject, Value};
use crate::{FuncError, FuncMap};

impl HostObject for GoTime {
    fn type_name(&self) -> String {
        "time.Time".into()
    }
    fn display(&self) -> String {
        self.to_go_string()
    }
    fn has_method(&self, name: &str) -> bool {
        matches!(name, "Unix" | "Year" | "Format" | "UTC")
    }
    fn call(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        Some(match (name, args) {
            ("Unix", []) => Ok(Value::Int(self.unix())),
            ("Year", []) => Ok(Value::Int(self.year())),
            ("Format", [Value::Str(l)]) => Ok(Value::from(self.format(l))),
            ("UTC", []) => Ok(Value::Object(Arc::new(self.in_utc()))),
            _ => return None,
        })
    }
    fn to_plain(&self) -> Value {
        Value::from(self.format("2006-01-02T15:04:05.999999999Z07:00"))
    }
}

fn now(sources: &Sources) -> GoTime {
    GoTime::utc(sources.now.as_ref().map(|n| n()).unwrap_or(0), 0)
}

/// The time a date argument stands for (Sprig accepts `time.Time` and Unix seconds; anything
/// else means now).
fn as_time(v: &Value, sources: &Sources) -> GoTime {
    match v {
        Value::Object(o) if o.type_name() == "time.Time" => match o.call("Unix", &[]) {
            Some(Ok(Value::Int(secs))) => GoTime::utc(secs, 0),
            _ => now(sources),
        },
        Value::Int(secs) => GoTime::utc(*secs, 0),
        _ => now(sources),
    }
}

fn time_value(t: GoTime) -> Value {
    Value::Object(Arc::new(t))
}

pub(super) fn register(m: &mut FuncMap, sources: &Sources) {
    let src = sources.clone();
    m.insert("now".into(), f(move |_| Ok(time_value(now(&src)))));
    for name in [
        "date",
        "htmlDate",
        "dateInZone",
        "date_in_zone",
        "htmlDateInZone",
    ] {
        let src = sources.clone();
        m.insert(
            name.into(),
            f(move |a| {
                let (layout, t, _zone) = match name {
                    "htmlDate" => {
                        arity(a, 1)?;
                        ("2006-01-02".to_string(), as_time(&a[0], &src), "Local")
                    }
                    "htmlDateInZone" => {
                        arity(a, 2)?;
                        ("2006-01-02".to_string(), as_time(&a[0], &src), s(a, 1)?)
                    }
                    "date" => {
                        arity(a, 2)?;
                        (s(a, 0)?.to_string(), as_time(&a[1], &src), "Local")
                    }
                    _ => {
                        arity(a, 3)?;
                        (s(a, 0)?.to_string(), as_time(&a[1], &src), s(a, 2)?)
                    }
                };
                Ok(Value::from(t.in_utc().format(&layout)))
            }),
        );
    }
    for name in ["toDate", "mustToDate"] {
        m.insert(
            name.into(),
            f(move |a| {
                arity(a, 2)?;
                match parse(s(a, 0)?, s(a, 1)?) {
                    Ok(t) => Ok(time_value(t)),
                    Err(e) if name == "mustToDate" => Err(FuncError::Call(e)),
                    Err(_) => Ok(time_value(GoTime::utc(-62_135_596_800, 0))),
                }
            }),
        );
    }
    insert_all(m, FUNCS);
    for name in [
        "dateModify",
        "date_modify",
        "mustDateModify",
        "must_date_modify",
    ] {
        m.insert(
            name.into(),
            f(move |a| {
                arity(a, 2)?;
                let t = match &a[1] {
                    Value::Object(o) if o.type_name() == "time.Time" => match o.call("Unix", &[]) {
                        Some(Ok(Value::Int(secs))) => GoTime::utc(secs, 0),
                        _ => return Err("dateModify wants a time.Time".into()),
                    },
                    other => {
                        return Err(format!(
                            "wrong type for value; expected time.Time; got {}",
                            other.type_name()
                        )
                        .into());
                    }
                };
                match ferroflux_gocompat::duration::parse(s(a, 0)?) {
                    Ok(d) => {
                        let total =
                            t.unix() as i128 * 1_000_000_000 + t.nanos() as i128 + d as i128;
                        Ok(time_value(GoTime::utc(
                            total.div_euclid(1_000_000_000) as i64,
                            total.rem_euclid(1_000_000_000) as u32,
                        )))
                    }
                    Err(e) if name.starts_with("must") => Err(e.to_string().into()),
                    Err(_) => Ok(time_value(t)),
                }
            }),
        );
    }
    let src = sources.clone();
    m.insert(
        "ago".into(),
        f(move |a| {
            arity(a, 1)?;
            let t = as_time(&a[0], &src);
            let d = (now(&src).unix() - t.unix()).saturating_mul(1_000_000_000);
            Ok(Value::from(ferroflux_gocompat::duration::format(d)))
        }),
    );
}

/// The functions that need nothing but their arguments, one line each.
const FUNCS: &[Entry] = &[("unixEpoch", unix_epoch)];

/// `unixEpoch`.
fn unix_epoch(a: &[Value]) -> FResult {
    arity(a, 1)?;
    match &a[0] {
        Value::Object(o) if o.type_name() == "time.Time" => match o.call("Unix", &[]) {
            Some(Ok(v)) => Ok(Value::from(crate::gofmt::to_string(&v))),
            _ => Err("unixEpoch wants a time.Time".into()),
        },
        other => Err(format!(
            "wrong type for value; expected time.Time; got {}",
            other.type_name()
        )
        .into()),
    }
}
