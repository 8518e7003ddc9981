//! The checks of one object: its kind and version, its metadata, and its schema, with the
//! rules and words of the API server ([`ferroflux_schema`]).

use std::collections::BTreeMap;

use serde_json::Value;

/// What a document is checked as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A whole object, as applied to a cluster.
    Object,
    /// A strategic-merge patch: a partial object (no required fields), whose unknown fields
    /// and wrong types still fail the patched object.
    Patch,
}

/// The served kinds of the groups ferroflux checks, by group and kind, with the schema of each
/// served version.
pub struct Registry {
    kinds: BTreeMap<(String, String), BTreeMap<String, Value>>,
}

/// Whether ferroflux validates objects of `group`: Flux's own API groups, whose schemas
/// ferroflux serves in full. Kinds of other groups it serves (Flagger, Kyverno) carry only the
/// subset ferroflux acts on, while a cluster accepts what their own CRDs declare, so they are
/// skipped like every kind ferroflux does not serve.
fn is_checked_group(group: &str) -> bool {
    group.ends_with(".fluxcd.io")
}

impl Registry {
    /// The kinds of [`ferroflux_api::crds::all`] in checked groups.
    pub fn new() -> Registry {
        let mut kinds = BTreeMap::new();
        for crd in ferroflux_api::crds::all() {
            if !is_checked_group(&crd.spec.group) {
                continue;
            }
            let versions: BTreeMap<String, Value> = crd
                .spec
                .versions
                .iter()
                .filter(|v| v.served)
                .map(|v| {
                    let schema = v
                        .schema
                        .as_ref()
                        .and_then(|s| s.open_api_v3_schema.as_ref())
                        .and_then(|s| serde_json::to_value(s).ok())
                        .unwrap_or_default();
                    (v.name.clone(), schema)
                })
                .collect();
            kinds.insert(
                (crd.spec.group.clone(), crd.spec.names.kind.clone()),
                versions,
            );
        }
        Registry { kinds }
    }

    fn knows_group(&self, group: &str) -> bool {
        self.kinds.keys().any(|(g, _)| g == group)
    }
}

/// How a document was handled.
pub enum Outcome {
    /// Not an object ferroflux checks (another group, no apiVersion/kind, a config file).
    Skipped,
    /// Checked; the problems found, each one line in the API server's words.
    Checked(Vec<String>),
}

/// Checks one document.
pub fn check(registry: &Registry, doc: &Value, mode: Mode) -> Outcome {
    let (Some(api_version), Some(kind)) = (doc["apiVersion"].as_str(), doc["kind"].as_str()) else {
        return Outcome::Skipped;
    };
    let (group, version) = ferroflux_api::convert::split_api_version(api_version);
    // Tool configuration (kustomize's `kustomize.config.k8s.io`, kubelet's and others'
    // `*.config.k8s.io`) has the shape of an object but never reaches an API server.
    if group.ends_with("config.k8s.io") {
        return Outcome::Skipped;
    }
    let mut problems = Vec::new();
    let schema = if registry.knows_group(group) {
        match registry
            .kinds
            .get(&(group.to_string(), kind.to_string()))
            .and_then(|versions| versions.get(version))
        {
            Some(schema) => Some(schema),
            None => {
                // kubectl's words when the API server has no such kind/version (RESTMapper).
                problems.push(format!(
                    "no matches for kind \"{kind}\" in version \"{api_version}\"{}",
                    suggestion(registry, group, kind, version)
                ));
                None
            }
        }
    } else {
        None
    };
    problems.extend(metadata_problems(group, kind, doc, mode, schema.is_some()));
    if let Some(schema) = schema {
        problems.extend(schema_problems(doc, schema, mode));
    } else if problems.is_empty() {
        return Outcome::Skipped;
    }
    Outcome::Checked(problems)
}

/// The served kind or versions a misspelled kind or an unserved version was likely meant as.
fn suggestion(registry: &Registry, group: &str, kind: &str, version: &str) -> String {
    if let Some(versions) = registry.kinds.get(&(group.to_string(), kind.to_string())) {
        let served: Vec<String> = versions.keys().map(|v| format!("{group}/{v}")).collect();
        return format!(" (served: {})", served.join(", "));
    }
    let close = registry
        .kinds
        .iter()
        .filter(|((g, k), _)| g == group && edit_distance(k, kind) <= 2)
        .find(|(_, versions)| versions.contains_key(version))
        .or_else(|| {
            registry
                .kinds
                .iter()
                .find(|((g, k), _)| g == group && edit_distance(k, kind) <= 2)
        });
    match close {
        Some(((_, k), _)) => format!(" (did you mean \"{k}\"?)"),
        None => String::new(),
    }
}

/// Levenshtein distance of two short names.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let here = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(here + 1);
            prev = here;
        }
    }
    row[b.len()]
}

/// Name, namespace, labels, annotations and finalizers, as the API server checks them for
/// every kind. A missing name is reported only for kinds ferroflux checks: files of other
/// tools may carry an apiVersion and kind without being objects.
fn metadata_problems(
    group: &str,
    kind: &str,
    doc: &Value,
    mode: Mode,
    served: bool,
) -> Vec<String> {
    let meta = &doc["metadata"];
    let mut causes = Vec::new();
    match meta["name"].as_str() {
        Some(name) => causes.extend(ferroflux_schema::names::name_error(group, kind, name)),
        None if served && mode == Mode::Object && meta["generateName"].is_null() => {
            causes.extend(ferroflux_schema::names::name_error(group, kind, ""));
        }
        None => {}
    }
    if let Some(namespace) = meta["namespace"].as_str() {
        causes.extend(ferroflux_schema::names::namespace_error(namespace));
    }
    if meta.is_object() {
        causes.extend(ferroflux_schema::names::validate_metadata(doc));
    }
    causes
        .into_iter()
        .map(|c| format!("{}: {}", c.field, c.message))
        .collect()
}

/// The object admitted under its version's schema as the API server does; for a patch,
/// pruned and validated without the rules that need the whole object (required fields,
/// CEL rules, defaults).
fn schema_problems(doc: &Value, schema: &Value, mode: Mode) -> Vec<String> {
    let mut obj = doc.clone();
    let (unknown, causes) = match mode {
        Mode::Object => {
            let admission = ferroflux_schema::admit(&mut obj, schema, None);
            (admission.unknown_fields, admission.causes)
        }
        Mode::Patch => {
            strip_patch_directives(&mut obj);
            let unknown = ferroflux_schema::prune(&mut obj, schema);
            let causes = ferroflux_schema::validate(&obj, schema)
                .into_iter()
                .filter(|c| c.reason != "FieldValueRequired")
                .collect();
            (unknown, causes)
        }
    };
    // kube's strict field validation wording.
    unknown
        .into_iter()
        .map(|path| format!("unknown field \"{path}\""))
        .chain(
            causes
                .into_iter()
                .map(|c| format!("{}: {}", c.field, c.message)),
        )
        .collect()
}

/// Removes strategic-merge directives (`$patch`, `$retainKeys`, `$setElementOrder/...`,
/// `$deleteFromPrimitiveList/...`): instructions to the merge, not fields of the object.
fn strip_patch_directives(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|key, _| !key.starts_with('$'));
            map.values_mut().for_each(strip_patch_directives);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_patch_directives),
        _ => {}
    }
}

/// Problems of a JSON 6902 patch (a list of operations), in the words of the JSON patch
/// library kustomize uses where it has them.
pub fn json6902_problems(doc: &Value) -> Vec<String> {
    let Some(ops) = doc.as_array() else {
        return vec!["a JSON 6902 patch must be a list of operations".into()];
    };
    let mut problems = Vec::new();
    for (index, op) in ops.iter().enumerate() {
        let at = format!("operation {}", index + 1);
        let Some(fields) = op.as_object() else {
            problems.push(format!("{at}: must be an object with op and path"));
            continue;
        };
        let name = fields.get("op").and_then(Value::as_str);
        match name {
            None => problems.push(format!("{at}: op: Required value")),
            Some("add" | "remove" | "replace" | "move" | "copy" | "test") => {}
            Some(other) => problems.push(format!(
                "{at}: op: Unsupported value: \"{other}\": supported values: \"add\", \"remove\", \"replace\", \"move\", \"copy\", \"test\""
            )),
        }
        for (key, needed) in [
            ("path", true),
            ("from", matches!(name, Some("move" | "copy"))),
        ] {
            match fields.get(key) {
                Some(Value::String(pointer)) if pointer.is_empty() || pointer.starts_with('/') => {}
                Some(Value::String(pointer)) => problems.push(format!(
                    "{at}: {key}: Invalid value: \"{pointer}\": a JSON pointer must be empty or start with '/'"
                )),
                Some(_) => problems.push(format!("{at}: {key}: must be a string")),
                None if needed => problems.push(format!("{at}: {key}: Required value")),
                None => {}
            }
        }
        if matches!(name, Some("add" | "replace" | "test")) && !fields.contains_key("value") {
            problems.push(format!("{at}: value: Required value"));
        }
    }
    problems
}
