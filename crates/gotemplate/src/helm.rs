//! Helm's template functions (`toYaml`, `fromYaml`, `toToml`, `include`, `tpl`, `required`,
//! duration helpers, ...), its rendering engine rules, and the `.Files` / `.Capabilities`
//! objects charts call methods on.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;

use crate::exec::Exec;
use crate::sprig::{
    Entry, FResult, Sources, f, from_json_go, insert_all, json_encode, s, sprig_funcs,
};
use crate::value::{HostObject, Map, Value};
use crate::yaml;
use crate::{Error, Func, FuncError, FuncMap, MissingKey, Options, Template, toml};

/// Helm's limit on one template including itself in a chain.
const MAX_INCLUDE_RECURSION: usize = 1000;

/// Stack for a chart render: enough for Helm's 1000-deep include chains.
const RENDER_STACK: usize = 256 << 20;

fn error_map(msg: String) -> Value {
    let mut m = Map::new();
    m.insert("Error".into(), Value::from(msg));
    Value::map(m)
}

fn go_type_of(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

/// `sigs.k8s.io/yaml.Unmarshal` into a map (`want_list` false) or a list.
fn yaml_into(text: &str, want_list: bool) -> Result<Value, String> {
    if text.trim().is_empty() {
        return Ok(if want_list {
            Value::list(Vec::new())
        } else {
            Value::map(Map::new())
        });
    }
    let j: serde_json::Value = ferroflux_gocompat::yaml::from_str(text)
        .map_err(|e| crate::yaml::YamlError(e).to_string())?;
    let target = if want_list {
        "[]interface {}"
    } else {
        "map[string]interface {}"
    };
    match (&j, want_list) {
        (serde_json::Value::Null, false) => Ok(Value::map(Map::new())),
        (serde_json::Value::Null, true) => Ok(Value::list(Vec::new())),
        (serde_json::Value::Object(_), false) | (serde_json::Value::Array(_), true) => {
            Ok(from_json_go(&j))
        }
        (other, _) => Err(format!(
            "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {} into Go value of type {target}",
            go_type_of(other)
        )),
    }
}

/// A Go `time.Duration` value: prints as `1m30s`, counts as nanoseconds.
struct Duration(i64);

impl HostObject for Duration {
    fn type_name(&self) -> String {
        "time.Duration".into()
    }
    fn display(&self) -> String {
        ferroflux_gocompat::duration::format(self.0)
    }
    fn to_plain(&self) -> Value {
        Value::Int(self.0)
    }
    fn has_method(&self, name: &str) -> bool {
        matches!(
            name,
            "Seconds"
                | "Minutes"
                | "Hours"
                | "Milliseconds"
                | "Microseconds"
                | "Nanoseconds"
                | "String"
        )
    }
    fn call(&self, name: &str, _args: &[Value]) -> Option<Result<Value, String>> {
        let d = self.0;
        Some(Ok(match name {
            "Seconds" => Value::Float(secs(d)),
            "Minutes" => {
                Value::Float((d / 60_000_000_000) as f64 + (d % 60_000_000_000) as f64 / 6e10)
            }
            "Hours" => Value::Float(
                (d / 3_600_000_000_000) as f64 + (d % 3_600_000_000_000) as f64 / 3.6e12,
            ),
            "Milliseconds" => Value::Int(d / 1_000_000),
            "Microseconds" => Value::Int(d / 1_000),
            "Nanoseconds" => Value::Int(d),
            "String" => Value::from(self.display()),
            _ => return None,
        }))
    }
}

fn secs(d: i64) -> f64 {
    (d / 1_000_000_000) as f64 + (d % 1_000_000_000) as f64 / 1e9
}

fn duration_from_secs_f64(x: f64) -> Result<i64, String> {
    if !x.is_finite() {
        return Err(format!("invalid duration seconds: {x}"));
    }
    let nanos = x * 1e9;
    if nanos >= i64::MAX as f64 || nanos <= i64::MIN as f64 {
        return Err(format!("duration seconds overflow: {x}"));
    }
    Ok(nanos as i64)
}

/// Helm's `asDuration`: durations, duration strings, numeric strings and numbers as seconds.
fn as_duration(v: &Value) -> Result<i64, String> {
    match v {
        Value::Object(o) if o.type_name() == "time.Duration" => match o.to_plain() {
            Value::Int(n) => Ok(n),
            _ => Err("invalid duration".into()),
        },
        Value::Str(st) => {
            let t = st.trim();
            if t.is_empty() {
                return Err("empty duration".into());
            }
            if let Ok(d) = ferroflux_gocompat::duration::parse(t) {
                return Ok(d);
            }
            if let Some(x) = ferroflux_gocompat::float::parse(t) {
                return duration_from_secs_f64(x);
            }
            Err(format!("could not parse duration {st:?}"))
        }
        Value::Nil => Err("invalid duration".into()),
        Value::Int(i) => i
            .checked_mul(1_000_000_000)
            .ok_or_else(|| format!("duration seconds overflow: {i}")),
        Value::Float(x) => duration_from_secs_f64(*x),
        other => Err(format!("unsupported duration type {}", other.type_name())),
    }
}

fn duration_value(d: i64) -> Value {
    Value::Object(Arc::new(Duration(d)))
}

fn round_duration(d: i64, m: i64) -> i64 {
    if m <= 0 {
        return d;
    }
    let mut r = d % m;
    let less_than_half = |x: i64, y: i64| (x as u64).wrapping_add(x as u64) < y as u64;
    if d < 0 {
        r = -r;
        if less_than_half(r, m) {
            return d + r;
        }
        return d.checked_sub(m - r).unwrap_or(i64::MIN);
    }
    if less_than_half(r, m) {
        return d - r;
    }
    d.checked_add(m - r).unwrap_or(i64::MAX)
}

fn include(ex: &mut Exec<'_>, a: &[Value]) -> Result<Value, FuncError> {
    crate::sprig::arity(a, 2)?;
    let name = s(a, 0)?.to_string();
    let count = ex.include_counts.entry(name.clone()).or_insert(0);
    if *count > MAX_INCLUDE_RECURSION {
        return Err(format!(
            "rendering template has a nested reference name: {name}: unable to execute template"
        )
        .into());
    }
    *count += 1;
    let res = ex.execute_nested(&name, &a[1]);
    if let Some(c) = ex.include_counts.get_mut(&name) {
        *c -= 1;
    }
    res.map(Value::from)
        .map_err(|e| FuncError::Call(e.to_string()))
}

fn tpl(ex: &mut Exec<'_>, a: &[Value]) -> Result<Value, FuncError> {
    crate::sprig::arity(a, 2)?;
    let text = s(a, 0)?;
    let mut clone: Template = ex.template().clone();
    clone
        .parse("gotpl", text)
        .map_err(|e| FuncError::Call(format!("cannot parse template {text:?}: {e}")))?;
    let tree = clone
        .trees
        .get("gotpl")
        .ok_or_else(|| FuncError::from("tpl: the parsed template is missing"))?;
    let mut inner = Exec::new(&clone, tree, &a[1]);
    inner.depth = ex.depth + 1;
    inner.stack_base = ex.stack_base;
    if inner.depth >= clone.options.max_depth {
        return Err(format!(
            "exceeded maximum template depth ({})",
            clone.options.max_depth
        )
        .into());
    }
    inner.include_counts = std::mem::take(&mut ex.include_counts);
    let mut out = String::new();
    let res = inner.run(&a[1], &mut out);
    ex.include_counts = std::mem::take(&mut inner.include_counts);
    res.map_err(|e| {
        FuncError::Call(format!(
            "error during tpl function execution for {text:?}: {e}"
        ))
    })?;
    Ok(Value::from(out.replace("<no value>", "")))
}

/// Helm's function map: Sprig without `env`/`expandenv`, plus Helm's own functions.
/// `include` and `tpl` work in any [`Template`] built with it.
pub fn helm_funcs(sources: &Sources) -> FuncMap {
    let mut m = sprig_funcs(sources);
    m.remove("env");
    m.remove("expandenv");
    insert_all(&mut m, FUNCS);
    type Conv = fn(i64) -> Value;
    let conversions: [(&str, Conv); 8] = [
        ("durationSeconds", |d| Value::Float(secs(d))),
        ("durationMilliseconds", |d| Value::Int(d / 1_000_000)),
        ("durationMicroseconds", |d| Value::Int(d / 1_000)),
        ("durationNanoseconds", Value::Int),
        ("durationMinutes", |d| {
            Value::Float((d / 60_000_000_000) as f64 + (d % 60_000_000_000) as f64 / 6e10)
        }),
        ("durationHours", |d| Value::Float(hours(d))),
        ("durationDays", |d| Value::Float(hours(d) / 24.0)),
        ("durationWeeks", |d| Value::Float(hours(d) / 24.0 / 7.0)),
    ];
    for (name, conv) in conversions {
        m.insert(
            name.into(),
            f(move |a| {
                crate::sprig::arity(a, 1)?;
                Ok(match as_duration(&a[0]) {
                    Ok(d) => conv(d),
                    Err(_) => conv(0),
                })
            }),
        );
    }
    m.insert("include".into(), Arc::new(include) as Func);
    m.insert("tpl".into(), Arc::new(tpl) as Func);
    m
}

/// The functions that need nothing but their arguments, one line each.
const FUNCS: &[Entry] = &[
    ("toYaml", to_yaml_fn),
    ("mustToYaml", to_yaml_fn),
    ("toYamlPretty", to_yaml_pretty_fn),
    ("fromYaml", from_yaml),
    ("fromYamlArray", from_yaml_array),
    ("toToml", to_toml_fn),
    ("mustToToml", must_to_toml),
    ("fromToml", from_toml_fn),
    ("toJson", to_json),
    ("mustToJson", must_to_json),
    ("fromJson", from_json),
    ("fromJsonArray", from_json_array),
    ("mustToDuration", must_to_duration),
    ("durationRoundTo", duration_round_to),
    ("durationTruncateTo", duration_truncate_to),
    ("required", required),
    ("fail", fail),
    ("lookup", lookup_fn),
    ("getHostByName", get_host_by_name),
];

/// `toYaml`, `mustToYaml`.
fn to_yaml_fn(a: &[Value]) -> FResult {
    crate::sprig::arity(a, 1)?;
    Ok(Value::from(
        yaml::to_yaml(&a[0]).trim_end_matches('\n').to_string(),
    ))
}

/// `toYamlPretty`.
fn to_yaml_pretty_fn(a: &[Value]) -> FResult {
    crate::sprig::arity(a, 1)?;
    Ok(Value::from(
        yaml::to_yaml_pretty(&a[0])
            .trim_end_matches('\n')
            .to_string(),
    ))
}

/// `fromYaml`.
fn from_yaml(a: &[Value]) -> FResult {
    Ok(yaml_into(s(a, 0)?, false).unwrap_or_else(error_map))
}

/// `fromYamlArray`.
fn from_yaml_array(a: &[Value]) -> FResult {
    Ok(yaml_into(s(a, 0)?, true).unwrap_or_else(|e| Value::list(vec![Value::from(e)])))
}

/// `toToml`.
fn to_toml_fn(a: &[Value]) -> FResult {
    crate::sprig::arity(a, 1)?;
    Ok(Value::from(toml::to_toml(&a[0]).unwrap_or_else(|e| e)))
}

/// `mustToToml`.
fn must_to_toml(a: &[Value]) -> FResult {
    crate::sprig::arity(a, 1)?;
    toml::to_toml(&a[0])
        .map(Value::from)
        .map_err(FuncError::Call)
}

/// `fromToml`.
fn from_toml_fn(a: &[Value]) -> FResult {
    Ok(toml::from_toml(s(a, 0)?).unwrap_or_else(error_map))
}

/// `toJson`.
fn to_json(a: &[Value]) -> FResult {
    crate::sprig::arity(a, 1)?;
    Ok(Value::from(
        json_encode(&a[0], true, None).unwrap_or_default(),
    ))
}

/// `mustToJson`.
fn must_to_json(a: &[Value]) -> FResult {
    crate::sprig::arity(a, 1)?;
    json_encode(&a[0], true, None).map(Value::from)
}

/// `fromJson`.
fn from_json(a: &[Value]) -> FResult {
    Ok(crate::sprig::parse_json(s(a, 0)?, Some("map"))
        .map(|v| {
            if v.is_nil() {
                Value::map(Map::new())
            } else {
                v
            }
        })
        .unwrap_or_else(error_map))
}

/// `fromJsonArray`.
fn from_json_array(a: &[Value]) -> FResult {
    Ok(crate::sprig::parse_json(s(a, 0)?, Some("list"))
        .map(|v| {
            if v.is_nil() {
                Value::list(Vec::new())
            } else {
                v
            }
        })
        .unwrap_or_else(|e| Value::list(vec![Value::from(e)])))
}

/// `mustToDuration`.
fn must_to_duration(a: &[Value]) -> FResult {
    crate::sprig::arity(a, 1)?;
    as_duration(&a[0])
        .map(duration_value)
        .map_err(FuncError::Call)
}

/// `durationRoundTo`.
fn duration_round_to(a: &[Value]) -> FResult {
    crate::sprig::arity(a, 2)?;
    let Ok(d) = as_duration(&a[0]) else {
        return Ok(duration_value(0));
    };
    Ok(duration_value(match as_duration(&a[1]) {
        Ok(m) => round_duration(d, m),
        Err(_) => d,
    }))
}

/// `durationTruncateTo`.
fn duration_truncate_to(a: &[Value]) -> FResult {
    crate::sprig::arity(a, 2)?;
    let Ok(d) = as_duration(&a[0]) else {
        return Ok(duration_value(0));
    };
    Ok(duration_value(match as_duration(&a[1]) {
        Ok(m) if m > 0 => d - d % m,
        _ => d,
    }))
}

/// `required`.
fn required(a: &[Value]) -> FResult {
    crate::sprig::arity(a, 2)?;
    let msg = s(a, 0)?;
    match &a[1] {
        Value::Nil => Err(FuncError::Call(msg.to_string())),
        Value::Str(v) if v.is_empty() => Err(FuncError::Call(msg.to_string())),
        v => Ok(v.clone()),
    }
}

/// `fail`.
fn fail(a: &[Value]) -> FResult {
    crate::sprig::arity(a, 1)?;
    Err(FuncError::Call(s(a, 0)?.to_string()))
}

/// `lookup`.
fn lookup_fn(a: &[Value]) -> FResult {
    crate::sprig::arity(a, 4)?;
    for i in 0..4 {
        s(a, i)?;
    }
    Ok(Value::map(Map::new()))
}

/// `getHostByName`.
fn get_host_by_name(_: &[Value]) -> FResult {
    Ok(Value::str(""))
}

fn hours(d: i64) -> f64 {
    (d / 3_600_000_000_000) as f64 + (d % 3_600_000_000_000) as f64 / 3.6e12
}

/// Helm's rendering engine over one chart's templates: every template parsed into one set
/// (deeper paths first, so shallower definitions win), every non-partial rendered with
/// `.Template.Name`/`.Template.BasePath` set, `<no value>` blanked unless strict.
pub struct HelmEngine {
    strict: bool,
    funcs: FuncMap,
    options: Options,
}

impl HelmEngine {
    /// A new engine; `strict` makes missing keys errors (Helm's `--strict` lint mode).
    pub fn new(strict: bool) -> Self {
        HelmEngine {
            strict,
            funcs: helm_funcs(&Sources::default()),
            options: Options {
                missing_key: if strict {
                    MissingKey::Error
                } else {
                    MissingKey::Zero
                },
                // Room for Helm's include limit (1000) plus the templates around it; `render`
                // runs on its own thread with a stack to match.
                max_depth: MAX_INCLUDE_RECURSION + 100,
                max_stack: RENDER_STACK - (8 << 20),
                ..Options::default()
            },
        }
    }

    /// Backs `lookup APIVERSION KIND NAMESPACE NAME` with the host's cluster client (Helm's
    /// default, without a cluster, returns an empty map). The callback returns the object (or
    /// the list) as a value, an empty map when nothing is found, or an error message.
    pub fn with_lookup(
        mut self,
        lookup: impl Fn(&str, &str, &str, &str) -> Result<Value, String> + Send + Sync + 'static,
    ) -> Self {
        self.funcs.insert(
            "lookup".into(),
            f(move |a| {
                crate::sprig::arity(a, 4)?;
                lookup(s(a, 0)?, s(a, 1)?, s(a, 2)?, s(a, 3)?).map_err(FuncError::Call)
            }),
        );
        self
    }

    /// Adds or overrides functions (e.g. a real `lookup` backed by a cluster client).
    pub fn with_funcs(mut self, funcs: FuncMap) -> Self {
        self.funcs.extend(funcs);
        self
    }

    /// Renders every template. `data` is the top-level object (`Values`, `Chart`, `Release`,
    /// `Capabilities`, `Files` ...).
    ///
    /// # Errors
    /// The first parse error, or the first execution error of a non-partial template.
    pub fn render(
        &self,
        files: &BTreeMap<String, String>,
        data: &Value,
    ) -> Result<BTreeMap<String, String>, Error> {
        // Deep include chains need more stack than a caller's thread may have; the stack is
        // reserved, not committed, so this costs one thread start per chart.
        std::thread::scope(|scope| {
            std::thread::Builder::new()
                .name("helm-render".into())
                .stack_size(RENDER_STACK)
                .spawn_scoped(scope, || self.render_here(files, data))
                .map_err(|e| Error::Resource {
                    message: format!("cannot start the render thread: {e}"),
                })?
                .join()
                .unwrap_or_else(|_| {
                    Err(Error::Resource {
                        message: "the render thread panicked".into(),
                    })
                })
        })
    }

    fn render_here(
        &self,
        files: &BTreeMap<String, String>,
        data: &Value,
    ) -> Result<BTreeMap<String, String>, Error> {
        let scoped: BTreeMap<String, ScopedTemplate> = files
            .iter()
            .map(|(k, text)| {
                let t = ScopedTemplate {
                    text: text.clone(),
                    data: data.clone(),
                    base_path: base_path(k),
                };
                (k.clone(), t)
            })
            .collect();
        self.render_scoped_here(&scoped)
    }

    /// Renders the templates of a chart and its subcharts, each with the data of its own
    /// chart (`.Values` scoped to the subchart, its `.Chart`, `.Files`, `.Subcharts`), as
    /// Helm's engine does: one template set, so any chart can `include` any definition.
    ///
    /// # Errors
    /// The first parse error, or the first execution error of a non-partial template.
    pub fn render_scoped(
        &self,
        templates: &BTreeMap<String, ScopedTemplate>,
    ) -> Result<BTreeMap<String, String>, Error> {
        std::thread::scope(|scope| {
            std::thread::Builder::new()
                .name("helm-render".into())
                .stack_size(RENDER_STACK)
                .spawn_scoped(scope, || self.render_scoped_here(templates))
                .map_err(|e| Error::Resource {
                    message: format!("cannot start the render thread: {e}"),
                })?
                .join()
                .unwrap_or_else(|_| {
                    Err(Error::Resource {
                        message: "the render thread panicked".into(),
                    })
                })
        })
    }

    fn render_scoped_here(
        &self,
        templates: &BTreeMap<String, ScopedTemplate>,
    ) -> Result<BTreeMap<String, String>, Error> {
        let mut t = Template::with_funcs(self.funcs.clone());
        t.options(Options {
            missing_key: if self.strict {
                MissingKey::Error
            } else {
                MissingKey::Zero
            },
            ..self.options.clone()
        });
        let keys = sort_templates(templates.keys());
        for k in &keys {
            t.parse(k, &templates[*k].text)?;
        }
        let mut out = BTreeMap::new();
        for k in keys {
            let file_name = k.rsplit('/').next().unwrap_or(k);
            if file_name.starts_with('_') {
                continue;
            }
            let scoped = &templates[k];
            let mut vals = match &scoped.data {
                Value::Map(m) => m.snapshot(),
                _ => Map::new(),
            };
            let mut tm = Map::new();
            tm.insert("Name".into(), Value::str(k));
            tm.insert("BasePath".into(), Value::str(&scoped.base_path));
            vals.insert("Template".into(), Value::map(tm));
            let rendered = t.execute(k, &Value::map(vals)).map_err(chart_error)?;
            out.insert(k.clone(), rendered.replace("<no value>", ""));
        }
        Ok(out)
    }
}

/// One template of a chart render with the data it executes with.
#[derive(Clone, Default)]
pub struct ScopedTemplate {
    /// The template text.
    pub text: String,
    /// The top-level object of its chart (`Values`, `Chart`, `Release`, `Capabilities`,
    /// `Files`, `Subcharts`); `Template` is added per template.
    pub data: Value,
    /// `.Template.BasePath`: the `templates` directory of its chart.
    pub base_path: String,
}

/// Helm reports `required` and `fail` as `execution error at (FILE:LINE:COL): MESSAGE`, the
/// message taken from the innermost call even through `include`s.
fn chart_error(e: Error) -> Error {
    let Error::Exec {
        location, message, ..
    } = &e
    else {
        return e;
    };
    let marker = ["error calling required: ", "error calling fail: "]
        .iter()
        .filter_map(|m| message.rfind(m).map(|i| i + m.len()))
        .max();
    match marker {
        Some(start) => Error::Chart {
            location: location.clone(),
            message: message[start..].to_string(),
        },
        None => e,
    }
}

fn base_path(name: &str) -> String {
    let parts: Vec<&str> = name.split('/').collect();
    match parts.iter().position(|p| *p == "templates") {
        Some(i) => parts[..=i].join("/"),
        None => String::new(),
    }
}

/// Helm's parse order: more path segments first; equal depth in reverse lexical order.
fn sort_templates<'a>(keys: impl Iterator<Item = &'a String>) -> Vec<&'a String> {
    let mut v: Vec<&String> = keys.collect();
    v.sort_by(|a, b| {
        let (ca, cb) = (a.matches('/').count(), b.matches('/').count());
        cb.cmp(&ca).then_with(|| b.cmp(a))
    });
    v
}

/// A chart's files as `.Files`: `Get`, `GetBytes`, `Glob`, `Lines`, `AsConfig`, `AsSecrets`.
#[derive(Clone, Default)]
pub struct Files {
    files: BTreeMap<String, String>,
}

impl Files {
    /// Files by path relative to the chart root.
    pub fn new(files: BTreeMap<String, String>) -> Self {
        Files { files }
    }

    /// As a template value.
    pub fn into_value(self) -> Value {
        Value::Object(Arc::new(self))
    }
}

fn glob_match(pattern: &str, name: &str) -> bool {
    fn rec(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => {
                if p.get(1) == Some(&'*') {
                    let rest = &p[2..];
                    let rest = if rest.first() == Some(&'/') {
                        &rest[1..]
                    } else {
                        rest
                    };
                    (0..=n.len()).any(|i| rec(rest, &n[i..]))
                } else {
                    (0..=n.len())
                        .take_while(|i| *i == 0 || n[i - 1] != '/')
                        .any(|i| rec(&p[1..], &n[i..]))
                }
            }
            Some('?') => !n.is_empty() && n[0] != '/' && rec(&p[1..], &n[1..]),
            Some(c) => n.first() == Some(c) && rec(&p[1..], &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    rec(&p, &n)
}

impl HostObject for Files {
    fn type_name(&self) -> String {
        "files.Files".into()
    }
    fn display(&self) -> String {
        let m: Map = self
            .files
            .iter()
            .map(|(k, v)| (k.as_str().into(), Value::str(v)))
            .collect();
        crate::gofmt::to_string(&Value::map(m))
    }
    fn has_method(&self, name: &str) -> bool {
        matches!(
            name,
            "Get" | "GetBytes" | "Glob" | "Lines" | "AsConfig" | "AsSecrets"
        )
    }
    /// Files is a map in Helm: `.Files.name` reads a file whose name is a plain identifier.
    fn field(&self, name: &str) -> Option<Value> {
        Some(self.files.get(name).map(Value::str).unwrap_or(Value::Nil))
    }
    fn call(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        let arg = |i: usize| -> Result<String, String> {
            match args.get(i) {
                Some(Value::Str(s)) => Ok(s.to_string()),
                _ => Err(format!("{name} wants a string argument")),
            }
        };
        Some(match name {
            "Get" | "GetBytes" => {
                arg(0).map(|p| Value::from(self.files.get(&p).cloned().unwrap_or_default()))
            }
            // Helm drops one trailing newline before splitting; a missing file has no lines.
            "Lines" => arg(0).map(|p| match self.files.get(&p) {
                None => Value::list(Vec::new()),
                Some(content) if content.is_empty() => Value::list(Vec::new()),
                Some(content) => {
                    let content = content.strip_suffix('\n').unwrap_or(content);
                    Value::list(content.split('\n').map(Value::str).collect())
                }
            }),
            "Glob" => arg(0).map(|pat| {
                let files = self
                    .files
                    .iter()
                    .filter(|(k, _)| glob_match(&pat, k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                Files::new(files).into_value()
            }),
            "AsConfig" => Ok(Value::from(
                yaml::to_yaml(&Value::map(
                    self.files
                        .iter()
                        .map(|(k, v)| (k.rsplit('/').next().unwrap_or(k).into(), Value::str(v)))
                        .collect(),
                ))
                .trim_end_matches('\n')
                .to_string(),
            )),
            "AsSecrets" => Ok(Value::from(
                yaml::to_yaml(&Value::map(
                    self.files
                        .iter()
                        .map(|(k, v)| {
                            (
                                k.rsplit('/').next().unwrap_or(k).into(),
                                Value::from(base64::engine::general_purpose::STANDARD.encode(v)),
                            )
                        })
                        .collect(),
                ))
                .trim_end_matches('\n')
                .to_string(),
            )),
            _ => return None,
        })
    }
    fn to_plain(&self) -> Value {
        Value::map(
            self.files
                .iter()
                .map(|(k, v)| (k.as_str().into(), Value::str(v)))
                .collect(),
        )
    }
}

/// `.Capabilities.APIVersions`: a list of group/versions (and `group/version/Kind`s) with `Has`.
#[derive(Clone, Default)]
pub struct ApiVersions(pub Vec<String>);

impl HostObject for ApiVersions {
    fn type_name(&self) -> String {
        "chartutil.VersionSet".into()
    }
    fn display(&self) -> String {
        format!("[{}]", self.0.join(" "))
    }
    fn has_method(&self, name: &str) -> bool {
        name == "Has"
    }
    fn call(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        if name != "Has" {
            return None;
        }
        Some(match args {
            [Value::Str(v)] => Ok(Value::Bool(self.0.iter().any(|x| x == &**v))),
            _ => Err("Has wants one string argument".into()),
        })
    }
    fn to_plain(&self) -> Value {
        Value::list(self.0.iter().map(Value::str).collect())
    }
}

/// Builds Helm's `.Capabilities` value: `APIVersions` (with `Has`) and `KubeVersion`
/// (`Version`, `Major`, `Minor`, `GitVersion`) from a version like `v1.33.0`.
pub fn capabilities(api_versions: Vec<String>, kube_version: &str) -> Value {
    let v = kube_version.trim_start_matches('v');
    let mut parts = v.split('.');
    let major = parts.next().unwrap_or("1").to_string();
    let minor = parts.next().unwrap_or("0").to_string();
    let mut kv = Map::new();
    kv.insert("Version".into(), Value::from(format!("v{v}")));
    kv.insert("GitVersion".into(), Value::from(format!("v{v}")));
    kv.insert("Major".into(), Value::from(major));
    kv.insert("Minor".into(), Value::from(minor));
    let mut caps = Map::new();
    caps.insert(
        "APIVersions".into(),
        Value::Object(Arc::new(ApiVersions(api_versions))),
    );
    caps.insert("KubeVersion".into(), Value::map(kv));
    Value::map(caps)
}
