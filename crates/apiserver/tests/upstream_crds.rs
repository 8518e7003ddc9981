//! The upstream CRDs (`../shared/conformance/upstream-crds/`: Flux 2.9, Flagger, Kyverno) on
//! ferroflux's server, side by side with the real kube-apiserver (the peer built by
//! `scripts/peers.sh`). Every CRD is installed on both and must reach Established; for every
//! kind and served version a sample object is generated from the version's schema (required
//! fields and as many optional ones as the real server accepts), then the same requests go to
//! both servers: create, get, list, watch, merge patch, JSON patch, server-side apply by a
//! second manager (a conflict, then forced), status and scale subresources, table output,
//! invalid objects and delete. Answers (status codes and bodies) are normalised (uids, times,
//! resourceVersions) and compared; the test prints a per-kind/version table and fails on a
//! difference not listed in `upstream_crds/known-differences.txt` (or a listed one that no
//! longer differs).
//!
//! Run: `cargo test -p ferroflux-apiserver --test upstream_crds -- --nocapture`.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ferroflux_testpeers::{KnownFailures, KubeApiserver};
use futures::StreamExt;
use kube::Client;
use regex::Regex;
use serde_json::{Map, Value, json};

const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";
const MERGE: &str = "application/merge-patch+json";
const JSON_PATCH: &str = "application/json-patch+json";
const APPLY: &str = "application/apply-patch+yaml";

/// How deep the generator fills optional fields: past it only required ones (the Kyverno
/// schemas nest policies dozens of levels deep).
const OPTIONAL_DEPTH: usize = 5;
/// How many times a sample is trimmed by the fields the real server refuses before giving up.
const TRIM_ROUNDS: usize = 60;

fn crd_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/upstream-crds")
}

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/upstream_crds")
}

/// Every CRD of the folder, by file name order.
fn load_crds(dir: &Path) -> Vec<Value> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|err| panic!("read {}: {err}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut crds = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)
            .unwrap_or_else(|err| panic!("read {}: {err}", file.display()));
        let docs: Vec<Value> = ferroflux_gocompat::yaml::from_multiple(&text)
            .unwrap_or_else(|err| panic!("parse {}: {err}", file.display()));
        crds.extend(
            docs.into_iter()
                .filter(|d| d["kind"] == "CustomResourceDefinition"),
        );
    }
    crds
}

/// One server's answer: the status code and the JSON body (or the text when not JSON).
#[derive(Clone, Debug, PartialEq)]
struct Answer {
    code: u16,
    body: Value,
}

async fn request(
    client: &Client,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Answer {
    let (code, bytes) = common::request(client, method, uri, headers, body).await;
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    Answer { code, body }
}

/// The first event of a watch on `uri` (the initial ADDED of an existing object).
async fn first_event(client: &Client, uri: &str) -> Answer {
    let request = axum::http::Request::builder()
        .method("GET")
        .uri(uri)
        .body(kube::client::Body::from(Vec::new()))
        .expect("request");
    let response = client.send(request).await.expect("answer");
    let code = response.status().as_u16();
    let mut stream = axum::body::Body::new(response.into_body()).into_data_stream();
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !buf.contains(&b'\n') {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(Ok(chunk))) => buf.extend_from_slice(&chunk),
            _ => break,
        }
    }
    let line = buf.split(|b| *b == b'\n').next().unwrap_or_default();
    let body = serde_json::from_slice(line)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(line).into_owned()));
    Answer { code, body }
}

/// Both servers' clients.
struct Pair {
    real: Client,
    ours: Client,
}

impl Pair {
    async fn send(
        &self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> (Answer, Answer) {
        tokio::join!(
            request(&self.real, method, uri, headers, body),
            request(&self.ours, method, uri, headers, body)
        )
    }
}

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("the suite's patterns are valid")
}

/// Replaces what two fresh servers may differ in for reasons that say nothing about
/// compatibility: uids, times, resourceVersions.
fn normalise(v: &mut Value) {
    static UID: std::sync::LazyLock<Regex> = std::sync::LazyLock::new(|| {
        re(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
    });
    static TIME: std::sync::LazyLock<Regex> = std::sync::LazyLock::new(|| {
        re(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")
    });
    static RV: std::sync::LazyLock<Regex> =
        std::sync::LazyLock::new(|| re(r"(resourceVersion\W+)\d+"));
    match v {
        Value::Object(m) => {
            for (k, child) in m.iter_mut() {
                if matches!(k.as_str(), "resourceVersion" | "continue")
                    && !child.is_object()
                    && !child.is_null()
                {
                    *child = json!("<rv>");
                } else {
                    normalise(child);
                }
            }
            // Causes come in schema-walk order, a Go map's random order in kube.
            if let Some(Value::Array(causes)) = m.get_mut("causes") {
                causes.sort_by_key(|c| c.to_string());
            }
            // Entries are ordered by their times (to the second) first: which writes share a
            // second is chance.
            if let Some(Value::Array(entries)) = m.get_mut("managedFields") {
                entries.sort_by_key(|e| {
                    (
                        e["operation"].to_string(),
                        e["manager"].to_string(),
                        e["subresource"].to_string(),
                    )
                });
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalise),
        Value::String(s) => {
            let t = UID.replace_all(s, "<uid>");
            let t = TIME.replace_all(&t, "<time>");
            let t = RV.replace_all(&t, "${1}<rv>");
            *s = t.into_owned();
        }
        _ => {}
    }
}

/// The comparable form of a pair of answers.
fn comparable(a: &Answer) -> Answer {
    let mut a = a.clone();
    normalise(&mut a.body);
    // A table's date cells are ages, which tick.
    let dates: Vec<usize> = a.body["columnDefinitions"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .filter(|(_, c)| c["type"] == "date")
        .map(|(i, _)| i)
        .collect();
    for row in a
        .body
        .get_mut("rows")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        for &i in &dates {
            if let Some(cell) = row["cells"].get_mut(i).filter(|c| c.is_string()) {
                *cell = json!("<age>");
            }
        }
    }
    a
}

/// One served version of a CRD, with what the cases need of it.
struct Version {
    crd_name: String,
    group: String,
    kind: String,
    plural: String,
    namespaced: bool,
    name: String,
    schema: Value,
    status: bool,
    scale: bool,
}

impl Version {
    fn collection(&self) -> String {
        if self.namespaced {
            format!(
                "/apis/{}/{}/namespaces/default/{}",
                self.group, self.name, self.plural
            )
        } else {
            format!("/apis/{}/{}/{}", self.group, self.name, self.plural)
        }
    }

    fn object(&self, name: &str) -> String {
        format!("{}/{name}", self.collection())
    }

    fn api_version(&self) -> String {
        format!("{}/{}", self.group, self.name)
    }
}

fn served_versions(crd: &Value) -> Vec<Version> {
    let spec = &crd["spec"];
    let mut out = Vec::new();
    for v in spec["versions"].as_array().into_iter().flatten() {
        if v["served"] != true {
            continue;
        }
        out.push(Version {
            crd_name: crd["metadata"]["name"].as_str().unwrap_or_default().into(),
            group: spec["group"].as_str().unwrap_or_default().into(),
            kind: spec["names"]["kind"].as_str().unwrap_or_default().into(),
            plural: spec["names"]["plural"].as_str().unwrap_or_default().into(),
            namespaced: spec["scope"] == "Namespaced",
            name: v["name"].as_str().unwrap_or_default().into(),
            schema: v["schema"]["openAPIV3Schema"].clone(),
            status: v["subresources"]["status"].is_object(),
            scale: v["subresources"]["scale"].is_object(),
        });
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The sample generator.

/// Strings tried, in order, for a string field with a pattern or a format; field-name hints
/// come first.
const STRING_CANDIDATES: &[&str] = &[
    "sample",
    "1m0s",
    "1m",
    "https://example.com/sample",
    "oci://example.com/sample",
    "example.com",
    "1.0.0",
    "v1",
    "1",
    "a",
    "A",
    "*",
    "Sample",
    "sample.yaml",
    "./sample",
    "*/5 * * * *",
    "sample@example.com",
    "sha256:0000000000000000000000000000000000000000000000000000000000000000",
    "2024-01-01T00:00:00Z",
    "10.0.0.0/8",
    "127.0.0.1",
];

fn name_hint(field: &str) -> Option<&'static str> {
    let f = field.to_ascii_lowercase();
    Some(match f.as_str() {
        "url" | "endpoint" | "address" => "https://example.com/sample",
        "interval" | "timeout" | "retryinterval" | "requeuedependency" => "1m0s",
        "semver" | "range" => ">=1.0.0",
        "apiversion" => "v1",
        "kind" => "ConfigMap",
        "namespace" => "default",
        "lasttransitiontime" | "lastupdatetime" | "lasthandledreconcileat" => {
            "2024-01-01T00:00:00Z"
        }
        _ => return None,
    })
}

fn fits(s: &str, schema: &Value) -> bool {
    if let Some(min) = schema["minLength"].as_u64()
        && (s.chars().count() as u64) < min
    {
        return false;
    }
    if let Some(max) = schema["maxLength"].as_u64()
        && (s.chars().count() as u64) > max
    {
        return false;
    }
    if let Some(p) = schema["pattern"].as_str() {
        match Regex::new(p) {
            Ok(r) if r.is_match(s) => {}
            _ => return false,
        }
    }
    match schema["format"].as_str() {
        Some("date-time") => s == "2024-01-01T00:00:00Z",
        Some("uri") => s.contains("://"),
        Some("duration") => s == "1m0s" || s == "1m",
        Some("int-or-string") | None | Some(_) => true,
    }
}

fn gen_string(field: &str, schema: &Value) -> Option<Value> {
    if let Some(e) = schema["enum"].as_array() {
        return e.first().cloned();
    }
    name_hint(field)
        .into_iter()
        .chain(STRING_CANDIDATES.iter().copied())
        .find(|s| fits(s, schema))
        .map(|s| json!(s))
}

fn gen_number(schema: &Value, integer: bool) -> Value {
    let min =
        schema["minimum"]
            .as_f64()
            .unwrap_or(1.0)
            .max(if schema["exclusiveMinimum"] == true {
                schema["minimum"].as_f64().unwrap_or(0.0) + 1.0
            } else {
                f64::MIN
            });
    let mut v = if min > 1.0 { min } else { 1.0 };
    if let Some(max) = schema["maximum"].as_f64()
        && v > max
    {
        v = max;
    }
    if integer { json!(v as i64) } else { json!(v) }
}

/// A value for `schema` at `path` (`None` when none fits): required properties always,
/// optional ones up to [`OPTIONAL_DEPTH`].
fn generate(schema: &Value, field: &str, depth: usize) -> Option<Value> {
    if depth > 24 {
        return None;
    }
    if let Some(e) = schema["enum"].as_array() {
        return e.first().cloned();
    }
    if schema["x-kubernetes-int-or-string"] == true {
        return Some(if schema["pattern"].is_string() {
            gen_string(field, schema)?
        } else {
            json!(1)
        });
    }
    if schema["x-kubernetes-embedded-resource"] == true {
        return Some(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "sample"}}));
    }
    match schema["type"].as_str() {
        Some("string") => gen_string(field, schema),
        Some("integer") => Some(gen_number(schema, true)),
        Some("number") => Some(gen_number(schema, false)),
        Some("boolean") => Some(json!(true)),
        Some("array") => {
            let item = generate(&schema["items"], field, depth + 1)?;
            let min = schema["minItems"].as_u64().unwrap_or(1).max(1);
            if min > 1 {
                // Distinct items need more than one generated value; leave such lists out.
                return None;
            }
            Some(json!([item]))
        }
        Some("object") | None => {
            let mut out = Map::new();
            let (mut required, excluded) = alternatives(schema);
            required.extend(
                schema["required"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(str::to_string),
            );
            if let Some(props) = schema["properties"].as_object() {
                for (k, s) in props {
                    let is_required = required.contains(k);
                    if excluded.contains(k) || (!is_required && depth >= OPTIONAL_DEPTH) {
                        continue;
                    }
                    if depth == 0 && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                        continue;
                    }
                    match generate(s, k, depth + 1) {
                        Some(v) => {
                            out.insert(k.clone(), v);
                        }
                        None if is_required => return None,
                        None => {}
                    }
                }
            } else if let Some(additional) =
                schema.get("additionalProperties").filter(|a| a.is_object())
            {
                if depth < OPTIONAL_DEPTH
                    && let Some(v) = generate(additional, "key", depth + 1)
                {
                    out.insert("key".into(), v);
                }
            } else if schema["x-kubernetes-preserve-unknown-fields"] == true
                && depth < OPTIONAL_DEPTH
            {
                out.insert("key".into(), json!("value"));
            }
            let min = schema["minProperties"].as_u64().unwrap_or(0);
            if (out.len() as u64) < min {
                return None;
            }
            Some(Value::Object(out))
        }
        Some(_) => None,
    }
}

/// The `required` lists of a schema's alternatives (`oneOf`, `anyOf`, `not`) and the fields its
/// CEL rules test with `has(self.x)`: the first alternative's fields are required, the other
/// fields they name left out, so that exactly one alternative holds.
fn alternatives(schema: &Value) -> (Vec<String>, Vec<String>) {
    fn required_lists(s: &Value, positive: bool, out: &mut Vec<(bool, Vec<String>)>) {
        if let Some(r) = s["required"].as_array() {
            out.push((
                positive,
                r.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect(),
            ));
        }
        for key in ["oneOf", "anyOf", "allOf"] {
            for alt in s[key].as_array().into_iter().flatten() {
                required_lists(alt, positive, out);
            }
        }
        if s["not"].is_object() {
            required_lists(&s["not"], !positive, out);
        }
    }
    static HAS: std::sync::LazyLock<Regex> =
        std::sync::LazyLock::new(|| re(r"has\(self\.([A-Za-z0-9_]+)\)"));
    let mut lists = Vec::new();
    for key in ["oneOf", "anyOf"] {
        for alt in schema[key].as_array().into_iter().flatten() {
            required_lists(alt, true, &mut lists);
        }
    }
    if schema["not"].is_object() {
        required_lists(&schema["not"], false, &mut lists);
    }
    for rule in schema["x-kubernetes-validations"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let named: Vec<String> = HAS
            .captures_iter(rule["rule"].as_str().unwrap_or_default())
            .map(|c| c[1].to_string())
            .collect();
        if named.len() > 1 {
            lists.push((false, named));
        }
    }
    let chosen: Vec<String> = match lists.iter().find(|(positive, _)| *positive) {
        Some((_, fields)) => fields.clone(),
        None => lists
            .first()
            .and_then(|(_, f)| f.first().cloned())
            .into_iter()
            .collect(),
    };
    let excluded = lists
        .iter()
        .flat_map(|(_, f)| f.iter())
        .filter(|f| !chosen.contains(f))
        .cloned()
        .collect();
    (chosen, excluded)
}

/// The schema of `path` (dotted, `[i]` for list items) under `schema`.
fn schema_at<'a>(schema: &'a Value, path: &[Step]) -> Option<&'a Value> {
    let mut node = schema;
    for step in path {
        node = match step {
            Step::Key(k) => node["properties"]
                .get(k)
                .or_else(|| node.get("additionalProperties"))?,
            Step::Index(_) => node.get("items")?,
        };
    }
    Some(node)
}

#[derive(Clone, Debug, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

/// Parses a field path as kube's errors print it (`spec.a[0].b`, `spec.m[key]`).
fn parse_path(text: &str) -> Vec<Step> {
    let mut out = Vec::new();
    for part in text.split('.') {
        let mut rest = part;
        if let Some(i) = rest.find('[') {
            if i > 0 {
                out.push(Step::Key(rest[..i].to_string()));
            }
            rest = &rest[i..];
            while let Some(end) = rest.find(']') {
                let inner = &rest[1..end];
                match inner.parse::<usize>() {
                    Ok(n) => out.push(Step::Index(n)),
                    Err(_) => out.push(Step::Key(inner.trim_matches('"').to_string())),
                }
                rest = &rest[end + 1..];
            }
        } else if !rest.is_empty() {
            out.push(Step::Key(rest.to_string()));
        }
    }
    out
}

/// Removes the value at `path`; true when something was removed.
fn remove_path(obj: &mut Value, path: &[Step]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut node = obj;
    for step in parents {
        node = match (step, node) {
            (Step::Key(k), Value::Object(m)) => match m.get_mut(k) {
                Some(n) => n,
                None => return false,
            },
            (Step::Index(i), Value::Array(a)) => match a.get_mut(*i) {
                Some(n) => n,
                None => return false,
            },
            _ => return false,
        };
    }
    match (last, node) {
        (Step::Key(k), Value::Object(m)) => m.remove(k).is_some(),
        (Step::Index(i), Value::Array(a)) if *i < a.len() => {
            a.remove(*i);
            true
        }
        _ => false,
    }
}

/// Whether the last step of `path` is a required property of its parent (list items are).
fn is_required(schema: &Value, path: &[Step]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return true;
    };
    match last {
        Step::Index(_) => true,
        Step::Key(k) => schema_at(schema, parents).is_some_and(|p| {
            p["required"]
                .as_array()
                .is_some_and(|r| r.contains(&json!(k)))
        }),
    }
}

/// Removes the first optional member of the object at `path`; true when one was removed.
fn drop_first_optional(obj: &mut Value, schema: &Value, path: &[Step]) -> bool {
    let Some(Value::Object(m)) = value_at_mut(obj, path) else {
        return false;
    };
    let first = m.keys().find(|k| {
        let mut p = path.to_vec();
        p.push(Step::Key((*k).clone()));
        !(is_required(schema, &p) || path.is_empty() && ROOT.contains(&k.as_str()))
    });
    match first.cloned() {
        Some(k) => m.remove(&k).is_some(),
        None => false,
    }
}

const ROOT: &[&str] = &["apiVersion", "kind", "metadata", "spec"];

fn is_root_part(step: &Step) -> bool {
    matches!(step, Step::Key(k) if ROOT.contains(&k.as_str()))
}

/// The fields a 422 names, from its causes.
fn refused_fields(answer: &Answer) -> Vec<String> {
    answer.body["details"]["causes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| match c["field"].as_str() {
            Some("<nil>") | None => {
                let message = c["message"].as_str()?;
                let start = message.find("\"spec")? + 1;
                let end = start + message[start..].find('"')?;
                Some(message[start..end].to_string())
            }
            Some(field) => Some(field.to_string()),
        })
        .collect()
}

/// A sample object of `v` that the real server accepts: generated, then trimmed by the fields
/// a dry-run create refuses (each refused optional field removed, a refused object keeping only
/// its required members).
async fn sample(real: &Client, v: &Version, name: &str) -> Option<Value> {
    let mut obj = generate(&v.schema, "", 0)?;
    obj["apiVersion"] = json!(v.api_version());
    obj["kind"] = json!(v.kind);
    obj["metadata"] = json!({"name": name, "labels": {"app": "sample"}});
    let uri = format!("{}?dryRun=All&fieldManager=sample", v.collection());
    for _ in 0..TRIM_ROUNDS {
        let answer = request(real, "POST", &uri, &[], Some(&obj)).await;
        if answer.code == 201 {
            return Some(obj);
        }
        let fields = refused_fields(&answer);
        let mut changed = false;
        for field in &fields {
            let path = parse_path(field);
            // A refused object loses its first optional member (a CEL rule or an alternative
            // on it may hold without it); a refused field goes, or else its nearest optional
            // parent.
            if drop_first_optional(&mut obj, &v.schema, &path) {
                changed = true;
                continue;
            }
            let mut at = path.as_slice();
            while !(at.is_empty() || at.len() == 1 && is_root_part(&at[0])) {
                if !is_required(&v.schema, at) && remove_path(&mut obj, at) {
                    changed = true;
                    break;
                }
                at = &at[..at.len() - 1];
            }
        }
        if !changed {
            eprintln!(
                "{} {}: no sample the real server accepts: {}",
                v.kind, v.name, answer.body
            );
            return None;
        }
    }
    None
}

/// The first leaf under `spec` a second manager can change freely (a string without enum,
/// pattern or format, an unbounded integer or a boolean), preferring one inside a list item.
fn changeable_leaf(obj: &Value, schema: &Value) -> Option<Vec<Step>> {
    fn walk(
        v: &Value,
        s: &Value,
        path: &mut Vec<Step>,
        in_list: bool,
        found: &mut Vec<(bool, Vec<Step>)>,
    ) {
        match v {
            Value::Object(m) => {
                for (k, child) in m {
                    let Some(cs) = s["properties"]
                        .get(k)
                        .or_else(|| s.get("additionalProperties"))
                    else {
                        continue;
                    };
                    path.push(Step::Key(k.clone()));
                    walk(child, cs, path, in_list, found);
                    path.pop();
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    path.push(Step::Index(i));
                    walk(item, &s["items"], path, true, found);
                    path.pop();
                }
            }
            Value::String(_)
                if [
                    "enum",
                    "pattern",
                    "format",
                    "maxLength",
                    "x-kubernetes-validations",
                ]
                .iter()
                .all(|k| s[*k].is_null()) =>
            {
                found.push((in_list, path.clone()));
            }
            Value::Bool(_) => found.push((in_list, path.clone())),
            _ => {}
        }
    }
    let mut found = Vec::new();
    let mut path = vec![Step::Key("spec".into())];
    walk(
        &obj["spec"],
        &schema["properties"]["spec"],
        &mut path,
        false,
        &mut found,
    );
    found
        .iter()
        .find(|(in_list, _)| *in_list)
        .or_else(|| found.first())
        .map(|(_, p)| p.clone())
}

fn value_at_mut<'a>(obj: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    let mut node = obj;
    for step in path {
        node = match step {
            Step::Key(k) => node.get_mut(k)?,
            Step::Index(i) => node.get_mut(*i)?,
        };
    }
    Some(node)
}

fn change(v: &mut Value) {
    match v {
        Value::String(s) => s.push_str("-changed"),
        Value::Bool(b) => *b = !*b,
        _ => {}
    }
}

/// The first field of `obj` (depth first, under `spec`) whose schema has an enum.
fn enum_field(obj: &Value, schema: &Value, path: &mut Vec<Step>) -> Option<Vec<Step>> {
    match obj {
        Value::Object(m) => {
            for (k, child) in m {
                if path.is_empty() && k != "spec" {
                    continue;
                }
                let Some(cs) = schema["properties"].get(k) else {
                    continue;
                };
                path.push(Step::Key(k.clone()));
                if cs["enum"].is_array() && child.is_string() {
                    return Some(path.clone());
                }
                if let Some(found) = enum_field(child, cs, path) {
                    return Some(found);
                }
                path.pop();
            }
            None
        }
        Value::Array(items) => {
            let first = items.first()?;
            path.push(Step::Index(0));
            if schema["items"]["enum"].is_array() && first.is_string() {
                return Some(path.clone());
            }
            let found = enum_field(first, &schema["items"], path);
            if found.is_none() {
                path.pop();
            }
            found
        }
        _ => None,
    }
}

/// The first required field of `obj` (the root's `spec` first, then depth first).
fn required_field(obj: &Value, schema: &Value, path: &mut Vec<Step>) -> Option<Vec<Step>> {
    let Value::Object(m) = obj else {
        return None;
    };
    for r in schema["required"].as_array().into_iter().flatten() {
        if let Some(r) = r.as_str()
            && m.contains_key(r)
            && !(path.is_empty() && matches!(r, "apiVersion" | "kind" | "metadata"))
        {
            let mut p = path.clone();
            p.push(Step::Key(r.to_string()));
            return Some(p);
        }
    }
    for (k, child) in m {
        if path.is_empty() && k != "spec" {
            continue;
        }
        let Some(cs) = schema["properties"].get(k) else {
            continue;
        };
        path.push(Step::Key(k.clone()));
        let found = match child {
            Value::Array(items) => items.first().and_then(|first| {
                path.push(Step::Index(0));
                let f = required_field(first, &cs["items"], path);
                path.pop();
                f
            }),
            _ => required_field(child, cs, path),
        };
        path.pop();
        if found.is_some() {
            return found;
        }
    }
    None
}

fn json_pointer(path: &[Step]) -> String {
    path.iter()
        .map(|s| match s {
            Step::Key(k) => format!("/{}", k.replace('~', "~0").replace('/', "~1")),
            Step::Index(i) => format!("/{i}"),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The run.

/// The outcome of every case, and the diffs of the differing ones.
#[derive(Default)]
struct Results {
    cases: Vec<(String, bool)>,
    report: String,
}

impl Results {
    fn record(&mut self, case: String, real: &Answer, ours: &Answer) {
        let (r, o) = (comparable(real), comparable(ours));
        let same = r == o;
        if !same {
            self.report.push_str(&format!(
                "\n=== {case}\n--- kube-apiserver ({})\n{}\n+++ ferroflux ({})\n{}\n",
                r.code,
                serde_json::to_string_pretty(&r.body).unwrap_or_default(),
                o.code,
                serde_json::to_string_pretty(&o.body).unwrap_or_default()
            ));
        }
        self.cases.push((case, same));
    }

    fn note(&mut self, case: String, passed: bool, why: &str) {
        if !passed {
            self.report.push_str(&format!("\n=== {case}\n{why}\n"));
        }
        self.cases.push((case, passed));
    }
}

async fn wait_established(client: &Client, name: &str) -> bool {
    let uri = format!("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let a = request(client, "GET", &uri, &[], None).await;
        let established = a.body["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Established" && c["status"] == "True");
        if established {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Waits until the version's collection answers on `client` (discovery of a new CRD lags
/// Established by a moment on kube).
async fn wait_served(client: &Client, v: &Version) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if request(client, "GET", &v.collection(), &[], None)
            .await
            .code
            == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One version's run: the pair of servers, the results, and the sample's identity.
struct Run<'a> {
    pair: &'a Pair,
    results: &'a mut Results,
    id: String,
    uri: String,
    coll: String,
}

impl Run<'_> {
    /// Sends one request to both servers and records the case `step`.
    async fn check(
        &mut self,
        step: &str,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) {
        let (r, o) = self.pair.send(method, uri, headers, body).await;
        self.record(step, &r, &o);
    }

    fn record(&mut self, step: &str, r: &Answer, o: &Answer) {
        self.results.record(format!("{}/{step}", self.id), r, o);
    }

    /// create, get, list, watch, and the merge and JSON patches.
    async fn crud_and_watch(&mut self, obj: &Value, name: &str) {
        let (uri, coll) = (self.uri.clone(), self.coll.clone());
        let create = format!("{coll}?fieldManager=creator");
        self.check("create", "POST", &create, &[], Some(obj)).await;
        self.check("get", "GET", &uri, &[], None).await;
        let list = format!("{coll}?labelSelector=app%3Dsample");
        self.check("list", "GET", &list, &[], None).await;
        let watch = format!("{coll}?watch=true&fieldSelector=metadata.name%3D{name}");
        let (r, o) = tokio::join!(
            first_event(&self.pair.real, &watch),
            first_event(&self.pair.ours, &watch)
        );
        self.record("watch", &r, &o);

        let merge = json!({"metadata": {"labels": {"merged": "yes"}}});
        self.check(
            "merge-patch",
            "PATCH",
            &uri,
            &[("content-type", MERGE)],
            Some(&merge),
        )
        .await;
        let jp = json!([
            {"op": "test", "path": "/metadata/labels/merged", "value": "yes"},
            {"op": "add", "path": "/metadata/annotations", "value": {"json-patched": "yes"}}
        ]);
        self.check(
            "json-patch",
            "PATCH",
            &uri,
            &[("content-type", JSON_PATCH)],
            Some(&jp),
        )
        .await;
    }

    /// Server-side apply: the first manager applies the sample, a second one changes one field
    /// (a conflict), then forces it.
    async fn server_side_apply(&mut self, v: &Version, obj: &Value) {
        let uri = self.uri.clone();
        let apply = &[("content-type", APPLY)];
        let first = format!("{uri}?fieldManager=first");
        self.check("apply", "PATCH", &first, apply, Some(obj)).await;
        let mut second = obj.clone();
        second["metadata"]["labels"] = json!({"second": "yes"});
        let leaf = changeable_leaf(obj, &v.schema);
        if let Some(leaf) = &leaf
            && let Some(value) = value_at_mut(&mut second, leaf)
        {
            change(value);
        }
        let by_second = format!("{uri}?fieldManager=second");
        self.check("apply-conflict", "PATCH", &by_second, apply, Some(&second))
            .await;
        let forced = format!("{uri}?fieldManager=second&force=true");
        self.check("apply-force", "PATCH", &forced, apply, Some(&second))
            .await;
    }

    /// The status and scale subresources, where the version has them.
    async fn subresources(&mut self, v: &Version) {
        let uri = self.uri.clone();
        if v.status
            && let Some(status) = generate(&v.schema["properties"]["status"], "status", 1)
        {
            // Each server's current object (its own resourceVersion), with a status and a label
            // change the status subresource must ignore.
            let (real_now, ours_now) = self.pair.send("GET", &uri, &[], None).await;
            let with_status = |mut body: Value| {
                body["status"] = status.clone();
                body["metadata"]["labels"]["ignored-by-status"] = json!("yes");
                body
            };
            let status_uri = format!("{uri}/status?fieldManager=status");
            let (real_body, ours_body) = (with_status(real_now.body), with_status(ours_now.body));
            let (r, o) = tokio::join!(
                request(&self.pair.real, "PUT", &status_uri, &[], Some(&real_body)),
                request(&self.pair.ours, "PUT", &status_uri, &[], Some(&ours_body))
            );
            self.record("status", &r, &o);
            self.check("status-get", "GET", &format!("{uri}/status"), &[], None)
                .await;
        }
        if v.scale {
            let scale = format!("{uri}/scale");
            self.check("scale-get", "GET", &scale, &[], None).await;
            let replicas = json!({"spec": {"replicas": 3}});
            self.check(
                "scale-patch",
                "PATCH",
                &scale,
                &[("content-type", MERGE)],
                Some(&replicas),
            )
            .await;
        }
    }

    /// Tables for an object and a list.
    async fn tables(&mut self) {
        let (uri, coll) = (self.uri.clone(), self.coll.clone());
        self.check("table-get", "GET", &uri, &[("accept", TABLE)], None)
            .await;
        let list = format!("{coll}?labelSelector=app%3Dsample");
        self.check("table-list", "GET", &list, &[("accept", TABLE)], None)
            .await;
    }

    /// Objects that break the schema's enum or required fields.
    async fn invalid_objects(&mut self, v: &Version, obj: &Value) {
        let (uri, coll) = (self.uri.clone(), self.coll.clone());
        if let Some(path) = enum_field(obj, &v.schema, &mut Vec::new()) {
            let mut bad = obj.clone();
            bad["metadata"]["name"] = json!("invalid-enum");
            if let Some(value) = value_at_mut(&mut bad, &path) {
                *value = json!("NotInTheEnum");
            }
            self.check("invalid-enum", "POST", &coll, &[], Some(&bad))
                .await;
        }
        if let Some(path) = required_field(obj, &v.schema, &mut Vec::new()) {
            let mut bad = obj.clone();
            bad["metadata"]["name"] = json!("invalid-required");
            remove_path(&mut bad, &path);
            self.check("invalid-required", "POST", &coll, &[], Some(&bad))
                .await;
            let remove = json!([{"op": "remove", "path": json_pointer(&path)}]);
            let headers = &[("content-type", JSON_PATCH)];
            self.check(
                "invalid-required-patch",
                "PATCH",
                &uri,
                headers,
                Some(&remove),
            )
            .await;
        }
    }
}

async fn run_version(pair: &Pair, v: &Version, results: &mut Results) {
    let id = format!("{}/{}", v.kind, v.name);
    let name = format!("sample-{}", v.name);
    let Some(obj) = sample(&pair.real, v, &name).await else {
        results.note(
            format!("{id}/sample"),
            false,
            "no sample the real server accepts",
        );
        return;
    };
    let mut run = Run {
        pair,
        results,
        id,
        uri: v.object(&name),
        coll: v.collection(),
    };
    run.crud_and_watch(&obj, &name).await;
    run.server_side_apply(v, &obj).await;
    run.subresources(v).await;
    run.tables().await;
    run.invalid_objects(v, &obj).await;
    let uri = run.uri.clone();
    run.check("delete", "DELETE", &uri, &[], None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_crds_serve_their_objects_as_kube_apiserver_does() {
    let dir = crd_dir();
    if !dir.join("README.md").is_file() {
        ferroflux_testpeers::skip(format!("{} is missing", dir.display()));
        return;
    }
    let known = KnownFailures::load(suite_dir().join("known-differences.txt"))
        .unwrap_or_else(|err| panic!("{err}"));
    let started = Instant::now();
    let crds = load_crds(&dir);
    assert!(!crds.is_empty(), "no CRDs in {}", dir.display());

    let real_start = tokio::task::spawn_blocking(KubeApiserver::start_without_workload_controllers);
    let data = tempfile::tempdir().expect("tempdir");
    let ours_server = common::start(&data.path().join("data"), None).await;
    let real_server = ferroflux_testpeers::require!(real_start.await.expect("start thread"));
    let real_kubeconfig =
        std::fs::read_to_string(real_server.kubeconfig()).expect("read the peer's kubeconfig");
    let pair = Pair {
        real: common::client(&real_kubeconfig).await,
        ours: common::client(&ours_server.kubeconfig).await,
    };

    let mut results = Results::default();
    let crd_uri = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
    for crd in &crds {
        let name = crd["metadata"]["name"].as_str().unwrap_or_default();
        let (r, o) = pair.send("POST", crd_uri, &[], Some(crd)).await;
        results.note(
            format!("{name}/install"),
            r.code == o.code,
            &format!(
                "kube-apiserver {}, ferroflux {}: {}",
                r.code, o.code, o.body
            ),
        );
        let (re, oe) = tokio::join!(
            wait_established(&pair.real, name),
            wait_established(&pair.ours, name)
        );
        results.note(
            format!("{name}/established"),
            re && oe,
            &format!("Established: kube-apiserver {re}, ferroflux {oe}"),
        );
    }
    let mut per_version: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for crd in &crds {
        for v in served_versions(crd) {
            tokio::join!(wait_served(&pair.real, &v), wait_served(&pair.ours, &v));
            let before = results.cases.len();
            run_version(&pair, &v, &mut results).await;
            let row = per_version
                .entry(format!("{} {} ({})", v.kind, v.name, v.crd_name))
                .or_default();
            for (_, same) in &results.cases[before..] {
                if *same {
                    row.0 += 1;
                } else {
                    row.1 += 1;
                }
            }
        }
    }

    let plurals: BTreeMap<String, String> = crds
        .iter()
        .map(|c| {
            let names = &c["spec"]["names"];
            (
                format!(
                    "{}/{}",
                    c["spec"]["group"].as_str().unwrap_or_default(),
                    names["kind"].as_str().unwrap_or_default()
                ),
                names["plural"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    seed_objects_apply(&pair, &plurals, &mut results).await;
    let kubeconfigs = (
        real_server.kubeconfig().to_path_buf(),
        ours_server.kubeconfig_path.clone(),
    );
    for crd in &crds {
        for v in served_versions(crd) {
            if v.kind == "ClusterPolicy" && v.name == "v1" {
                client_side_then_server_side_apply(&pair, &v, &kubeconfigs, &mut results).await;
            }
        }
    }

    let marked: String = results
        .cases
        .iter()
        .filter(|(_, same)| !same)
        .map(|(c, _)| format!("{c}{}\n", known.mark(c)))
        .collect();
    println!("{}", results.report);
    println!(
        "{:<70} {:>9} {:>9}",
        "kind/version", "identical", "different"
    );
    for (row, (same, diff)) in &per_version {
        println!("{row:<70} {same:>9} {diff:>9}");
    }
    let identical = results.cases.iter().filter(|(_, s)| *s).count();
    println!(
        "\ndifferent cases:\n{marked}\n{identical} identical, {} different ({} cases in {:.0?})",
        results.cases.len() - identical,
        results.cases.len(),
        started.elapsed()
    );
    let verdict = known.judge(results.cases.iter().map(|(c, s)| (c.as_str(), *s)));
    println!("{verdict}");
    ours_server.shutdown().await;
    assert!(
        verdict.holds(),
        "the differences disagree with the known-differences list (see above)"
    );
}

/// The apiVersion upstream serves for `api_version`: Flux 2.9 dropped image.toolkit.fluxcd.io
/// v1beta1/v1beta2 and source.toolkit.fluxcd.io v1beta2 (ferroflux's own CRDs still serve
/// them).
fn served_upstream(api_version: &str) -> String {
    match api_version {
        "image.toolkit.fluxcd.io/v1beta1" | "image.toolkit.fluxcd.io/v1beta2" => {
            "image.toolkit.fluxcd.io/v1".into()
        }
        "source.toolkit.fluxcd.io/v1beta2" => "source.toolkit.fluxcd.io/v1".into(),
        other => other.into(),
    }
}

/// Every YAML file under `dir`, recursively, sorted.
fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
    out.sort();
}

/// The seed's Flux objects (the repository's `examples/`) apply on top of the upstream CRDs,
/// with their apiVersions moved to ones upstream serves, alike on both servers.
/// `plurals` maps `group/Kind` to the CRD's plural.
async fn seed_objects_apply(
    pair: &Pair,
    plurals: &BTreeMap<String, String>,
    results: &mut Results,
) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut files = Vec::new();
    yaml_files(&root, &mut files);
    assert!(
        !files.is_empty(),
        "no seed objects under {}",
        root.display()
    );
    for file in files {
        let text = std::fs::read_to_string(&file)
            .unwrap_or_else(|err| panic!("read {}: {err}", file.display()))
            // The seed's postBuild substitution fills this in before applying.
            .replace("${git_server}", "https://git.example.com");
        let docs: Vec<Value> = ferroflux_gocompat::yaml::from_multiple(&text)
            .unwrap_or_else(|err| panic!("parse {}: {err}", file.display()));
        let rel = file
            .strip_prefix(&root)
            .unwrap_or(&file)
            .display()
            .to_string();
        for mut doc in docs {
            let av = doc["apiVersion"].as_str().unwrap_or_default().to_string();
            if !av
                .split('/')
                .next()
                .is_some_and(|g| g.ends_with(".fluxcd.io"))
            {
                continue;
            }
            doc["apiVersion"] = json!(served_upstream(&av));
            let (kind, name) = (
                doc["kind"].as_str().unwrap_or_default().to_string(),
                doc["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
            let ns = doc["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_string();
            let namespace =
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            pair.send("POST", "/api/v1/namespaces", &[], Some(&namespace))
                .await;
            let group = av.split('/').next().unwrap_or_default();
            let Some(plural) = plurals.get(&format!("{group}/{kind}")) else {
                results.note(
                    format!("seed/{rel}/{kind}/{name}"),
                    false,
                    "no upstream CRD serves this kind",
                );
                continue;
            };
            let uri = format!(
                "/apis/{}/namespaces/{ns}/{plural}/{name}?fieldManager=seed&fieldValidation=Strict",
                doc["apiVersion"].as_str().unwrap_or_default()
            );
            let (r, o) = pair
                .send("PATCH", &uri, &[("content-type", APPLY)], Some(&doc))
                .await;
            let case = format!("seed/{rel}/{kind}/{name}");
            if r.code != 200 && r.code != 201 {
                results.note(
                    case,
                    false,
                    &format!("kube-apiserver refused it: {}", r.body),
                );
                continue;
            }
            results.record(case, &r, &o);
        }
    }
}

/// Runs kubectl with `kubeconfig` (a private HOME, so no discovery cache is shared): the exit
/// code and stdout + stderr as an answer.
fn kubectl(kubectl: &Path, kubeconfig: &Path, args: &[&str]) -> Answer {
    let home = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(kubectl)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .env_clear()
        .env("HOME", home.path())
        .env("NO_PROXY", "127.0.0.1,localhost")
        .output()
        .expect("kubectl runs");
    Answer {
        code: out.status.code().map_or(0, |c| c as u16),
        body: json!(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )),
    }
}

/// `kubectl apply` (client-side), then `kubectl apply --server-side` of the same object: kubectl
/// moves the client-side applier's fields to its server-side applier by rewriting
/// managedFields, so the second apply takes them over without a conflict.
async fn client_side_then_server_side_apply(
    pair: &Pair,
    v: &Version,
    kubeconfigs: &(PathBuf, PathBuf),
    results: &mut Results,
) {
    let case = format!("{}/{}/client-side-then-server-side-apply", v.kind, v.name);
    let binary = match ferroflux_testpeers::peer_binary("kubectl") {
        Ok(b) => b,
        Err(err) => {
            ferroflux_testpeers::skip(&err);
            results.note(case, false, &format!("no kubectl: {err}"));
            return;
        }
    };
    // A policy as users write it, leaving its rules to the CRD's defaults: the stored rules
    // then differ from the applied ones, so only the moved ownership avoids a conflict.
    let obj = json!({"apiVersion": v.api_version(), "kind": v.kind,
        "metadata": {"name": "csa-to-ssa"},
        "spec": {"rules": [{"name": "require-team",
            "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
            "validate": {"message": "label team is required",
                "pattern": {"metadata": {"labels": {"team": "?*"}}}}}]}});
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("policy.json");
    std::fs::write(&file, obj.to_string()).expect("write the manifest");
    let file = file.to_string_lossy().into_owned();
    let (real_kc, ours_kc) = kubeconfigs.clone();
    let steps = [
        vec!["apply", "-f", file.as_str()],
        vec!["apply", "--server-side", "-f", file.as_str()],
    ];
    for (i, args) in steps.iter().enumerate() {
        let (b, args2, rk, ok) = (
            binary.clone(),
            args.clone(),
            real_kc.clone(),
            ours_kc.clone(),
        );
        let args2: Vec<String> = args2.iter().map(|a| a.to_string()).collect();
        let (r, o) = tokio::task::spawn_blocking(move || {
            let a: Vec<&str> = args2.iter().map(String::as_str).collect();
            (kubectl(&b, &rk, &a), kubectl(&b, &ok, &a))
        })
        .await
        .expect("kubectl thread");
        results.record(format!("{case}/{i}"), &r, &o);
    }
    let (r, o) = pair.send("GET", &v.object("csa-to-ssa"), &[], None).await;
    results.record(format!("{case}/get"), &r, &o);
}

#[test]
fn kube_error_paths_parse_into_steps() {
    assert_eq!(
        parse_path("spec.rules[0].match.any[1]"),
        vec![
            Step::Key("spec".into()),
            Step::Key("rules".into()),
            Step::Index(0),
            Step::Key("match".into()),
            Step::Key("any".into()),
            Step::Index(1),
        ]
    );
    assert_eq!(json_pointer(&parse_path("spec.a/b[2]")), "/spec/a~1b/2");
}

#[test]
fn normalising_hides_uids_times_and_resource_versions_only() {
    let mut v = json!({"metadata": {"uid": "0f8fad5b-d9cb-469f-a165-70867728950e",
        "creationTimestamp": "2026-12-07T03:40:00Z", "resourceVersion": "812", "name": "x"},
        "message": "the object has been modified; resourceVersion: 12"});
    normalise(&mut v);
    assert_eq!(
        v,
        json!({"metadata": {"uid": "<uid>", "creationTimestamp": "<time>",
            "resourceVersion": "<rv>", "name": "x"},
            "message": "the object has been modified; resourceVersion: <rv>"})
    );
}
