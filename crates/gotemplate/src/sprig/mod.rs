//! Sprig v3's function library (`sprig.TxtFuncMap()`), with Sprig's conversions (`strval`,
//! `toInt64`, `toFloat64`) and Go's parameter typing (a `string` parameter refuses an `int`).

mod convert;
mod data;
mod duration;
mod math;
mod paths;
mod regexes;
mod strings;
mod time;

use std::sync::Arc;

use crate::value::Value;
use crate::{Exec, Func, FuncError, FuncMap};

pub(crate) use data::{from_json_go, json_encode, parse_json};

/// Looks up an environment variable by name.
pub type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Randomness, the clock and the environment, injected so that templates stay pure and tests
/// stay deterministic. Unset sources give fixed values (time zero, a fixed seed, no env).
#[derive(Clone, Default)]
pub struct Sources {
    /// Returns random 64-bit numbers (`rand*`, `uuidv4`, `shuffle`).
    pub random: Option<Arc<dyn Fn() -> u64 + Send + Sync>>,
    /// Returns the current time as Unix seconds (`now`, `ago`, `date` defaults).
    pub now: Option<Arc<dyn Fn() -> i64 + Send + Sync>>,
    /// Looks up an environment variable (`env`, `expandenv`).
    pub env: Option<EnvLookup>,
}

pub(crate) type FResult = Result<Value, FuncError>;

/// One line of a function table: the name templates call and the function it runs.
pub(crate) type Entry = (&'static str, fn(&[Value]) -> FResult);

/// Registers every function of a table.
pub(crate) fn insert_all(m: &mut FuncMap, table: &[Entry]) {
    for &(name, fun) in table {
        m.insert(name.into(), f(fun));
    }
}

pub(crate) fn f(fun: impl Fn(&[Value]) -> FResult + Send + Sync + 'static) -> Func {
    Arc::new(move |_: &mut Exec<'_>, a: &[Value]| fun(a))
}

/// Checks the argument count like Go's `wrong number of args` error.
pub(crate) fn arity(a: &[Value], n: usize) -> Result<(), FuncError> {
    if a.len() != n {
        return Err(format!("wrong number of args: want {n} got {}", a.len()).into());
    }
    Ok(())
}

pub(crate) fn at_least(a: &[Value], n: usize) -> Result<(), FuncError> {
    if a.len() < n {
        return Err(format!("wrong number of args: want at least {n} got {}", a.len()).into());
    }
    Ok(())
}

/// Longest string a Sprig function may build (`replace`, `indent`, `repeat`, ...): chained
/// calls can grow a string exponentially, and a template must fail before memory does.
pub(crate) const MAX_STRING: usize = 64 << 20;

/// Refuses to build a string longer than [`MAX_STRING`].
pub(crate) fn check_len(n: usize) -> Result<(), FuncError> {
    if n > MAX_STRING {
        return Err(
            format!("the result would be {n} bytes, more than the limit of {MAX_STRING}").into(),
        );
    }
    Ok(())
}

/// A Go `string` parameter.
pub(crate) fn s(a: &[Value], i: usize) -> Result<&str, FuncError> {
    match a.get(i) {
        Some(Value::Str(x)) => Ok(x),
        Some(Value::Nil) | None => Err("invalid value; expected string".into()),
        Some(o) => Err(format!(
            "wrong type for value; expected string; got {}",
            o.type_name()
        )
        .into()),
    }
}

/// A Go `int` parameter.
pub(crate) fn int(a: &[Value], i: usize) -> Result<i64, FuncError> {
    match a.get(i) {
        Some(Value::Int(x)) => Ok(*x),
        Some(Value::Nil) | None => Err("invalid value; expected int".into()),
        Some(o) => Err(format!("wrong type for value; expected int; got {}", o.type_name()).into()),
    }
}

/// A Go `bool` parameter.
pub(crate) fn boolean(a: &[Value], i: usize) -> Result<bool, FuncError> {
    match a.get(i) {
        Some(Value::Bool(x)) => Ok(*x),
        Some(Value::Nil) | None => Err("invalid value; expected bool".into()),
        Some(o) => {
            Err(format!("wrong type for value; expected bool; got {}", o.type_name()).into())
        }
    }
}

/// A `[]string` result.
pub(crate) fn strs(v: Vec<String>) -> Value {
    Value::list(v.into_iter().map(Value::from).collect())
}

/// Sprig's text function map.
pub fn sprig_funcs(sources: &Sources) -> FuncMap {
    let mut m = FuncMap::new();
    strings::register(&mut m, sources);
    convert::register(&mut m);
    math::register(&mut m, sources);
    data::register(&mut m, sources);
    time::register(&mut m, sources);
    register_unsupported(&mut m, sources);
    m
}

/// Sprig functions that need cryptography, key generation or the network. They are defined,
/// so that templates using them still parse (and render when the call is not reached), but
/// calling one is an error that says so.
fn register_unsupported(m: &mut FuncMap, sources: &Sources) {
    for name in [
        "bcrypt",
        "htpasswd",
        "genPrivateKey",
        "genCA",
        "genCAWithKey",
        "genSelfSignedCert",
        "genSelfSignedCertWithKey",
        "genSignedCert",
        "genSignedCertWithKey",
        "buildCustomCert",
        "encryptAES",
        "decryptAES",
        "derivePassword",
    ] {
        m.insert(
            name.into(),
            f(move |_| {
                Err(format!(
                    "{name} is not supported by ferroflux's template engine: it needs cryptography \
                     that the engine does not implement; generate the value outside the chart"
                )
                .into())
            }),
        );
    }
    // A pure engine does no DNS; Helm itself disables this lookup by default.
    m.insert("getHostByName".into(), f(|_| Ok(Value::str(""))));
    let src = sources.clone();
    m.insert(
        "randBytes".into(),
        f(move |a| {
            let n = int(a, 0)?.clamp(0, 1 << 20) as usize;
            let mut state = src
                .random
                .as_ref()
                .map(|r| r())
                .unwrap_or(0x2545_F491_4F6C_DD1D)
                | 1;
            let bytes: Vec<u8> = (0..n)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state >> 24) as u8
                })
                .collect();
            use base64::Engine as _;
            Ok(Value::from(
                base64::engine::general_purpose::STANDARD.encode(bytes),
            ))
        }),
    );
}
