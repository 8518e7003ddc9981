//! The generator of `src/proto/k8s.table`, the protobuf descriptor table of every built-in kind
//! the server serves (see the doc of `ferroflux_apiserver::proto`).
//!
//! Input: the Kubernetes Go modules (`k8s.io/api`, `apimachinery`, `apiextensions-apiserver`,
//! `kube-aggregator`) at [`K8S_VERSION`], the release of the kube-apiserver test peer. Each
//! package's `generated.proto` gives the message layout (field numbers, scalar/message/map/
//! repeated, fully qualified message types); the Go struct of the same name gives what the wire
//! cannot: the JSON name of each field (`json:"..."`, which differs from the proto field name
//! for some, e.g. `uID`/`uid`), whether it is inlined into its parent (`json:",inline"`), and
//! whether a zero scalar is still written to JSON (a pointer, or a field without `omitempty`).
//!
//! Only messages reachable from the served kinds (their objects and lists) and the
//! kind-independent ones (`Status`, `DeleteOptions`, `WatchEvent`, `Scale`, `TokenRequest`) are
//! written.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

/// The Kubernetes Go modules' version the table is generated from (kube-apiserver 1.36.3).
pub const K8S_VERSION: &str = "v0.36.3";

/// The Go modules read, by import path.
pub const MODULES: &[&str] = &[
    "k8s.io/api",
    "k8s.io/apimachinery",
    "k8s.io/apiextensions-apiserver",
    "k8s.io/kube-aggregator",
];

/// Messages whose JSON form is not their struct form; the server knows their layout itself.
const SPECIAL: &[&str] = &[
    "k8s.io.apimachinery.pkg.apis.meta.v1.Time",
    "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime",
    "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1",
    "k8s.io.apimachinery.pkg.api.resource.Quantity",
    "k8s.io.apimachinery.pkg.util.intstr.IntOrString",
    "k8s.io.apimachinery.pkg.runtime.RawExtension",
    "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSON",
    "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrArray",
    "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrBool",
    "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrStringArray",
];

/// Kinds served for every group version (`*`) or outside the registry's kinds.
const EXTRA_ROOTS: &[(&str, &str, &str)] = &[
    ("*", "meta.k8s.io/v1", "Status"),
    ("*", "meta.k8s.io/v1", "DeleteOptions"),
    ("*", "meta.k8s.io/v1", "WatchEvent"),
    ("autoscaling/v1", "autoscaling/v1", "Scale"),
    (
        "authentication.k8s.io/v1",
        "authentication.k8s.io/v1",
        "TokenRequest",
    ),
];

const SCALARS: &[&str] = &[
    "string", "bytes", "bool", "int32", "int64", "double", "float",
];

/// One field of a `generated.proto` message.
struct ProtoField {
    tag: u32,
    name: String,
    /// `one`, `rep` or `map`.
    shape: &'static str,
    ty: String,
    /// Map value type.
    value: Option<String>,
}

struct ProtoMessage {
    fields: Vec<ProtoField>,
    /// `+protobuf.nullable=true`: the Go type is a slice; JSON is the array of `items`.
    array: bool,
    /// Package directory (for the Go struct).
    dir: PathBuf,
    short: String,
}

/// What the Go struct says about one field (by proto field number).
struct GoField {
    json: String,
    inline: bool,
    keep_zero: bool,
}

/// Finds the module directories (downloading them into the Go module cache if needed).
pub fn module_dirs() -> Result<BTreeMap<String, PathBuf>, String> {
    let tmp = std::env::temp_dir();
    let args: Vec<String> = MODULES
        .iter()
        .map(|m| format!("{m}@{K8S_VERSION}"))
        .collect();
    let out = std::process::Command::new("go")
        .args(["mod", "download", "-json"])
        .args(&args)
        // Outside any Go module, so no go.mod's requirements interfere.
        .current_dir(&tmp)
        .output()
        .map_err(|e| format!("go is not usable: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "go mod download failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    // `-json` prints one object per module, back to back.
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut dirs = BTreeMap::new();
    for v in serde_json::Deserializer::from_str(&text).into_iter::<serde_json::Value>() {
        let v = v.map_err(|e| format!("go mod download output: {e}"))?;
        let (Some(path), Some(dir)) = (v["Path"].as_str(), v["Dir"].as_str()) else {
            return Err(format!("go mod download: no directory for {v}"));
        };
        dirs.insert(path.to_string(), PathBuf::from(dir));
    }
    Ok(dirs)
}

fn files_named(dir: &Path, name: &str, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            files_named(&p, name, out);
        } else if p.file_name().is_some_and(|n| n == name) {
            out.push(p);
        }
    }
}

/// Parses one `generated.proto`: (package, messages by short name).
fn parse_proto(text: &str, dir: &Path) -> Result<(String, Vec<ProtoMessage>), String> {
    let mut package = String::new();
    let mut messages = Vec::new();
    let mut current: Option<ProtoMessage> = None;
    let mut comment = String::new();
    for line in text.lines() {
        let t = line.trim();
        if let Some(c) = t.strip_prefix("//") {
            comment.push_str(c);
            comment.push('\n');
            continue;
        }
        if let Some(p) = t.strip_prefix("package ") {
            package = p.trim_end_matches(';').to_string();
        } else if let Some(name) = t.strip_prefix("message ") {
            let name = name.trim_end_matches('{').trim().to_string();
            current = Some(ProtoMessage {
                fields: Vec::new(),
                array: comment.contains("+protobuf.nullable=true"),
                dir: dir.to_path_buf(),
                short: name,
            });
        } else if t == "}" {
            messages.extend(current.take());
        } else if let Some(m) = current.as_mut()
            && !t.is_empty()
        {
            let decl = t.trim_end_matches(';');
            let (lhs, tag) = decl
                .rsplit_once('=')
                .ok_or_else(|| format!("{package}.{}: cannot read {t:?}", m.short))?;
            let tag: u32 = tag
                .trim()
                .parse()
                .map_err(|_| format!("{package}.{}: bad tag in {t:?}", m.short))?;
            let resolve = |ty: &str| -> String {
                let ty = ty.trim();
                if let Some(q) = ty.strip_prefix('.') {
                    q.to_string()
                } else if SCALARS.contains(&ty) {
                    ty.to_string()
                } else {
                    format!("{package}.{ty}")
                }
            };
            let f = if let Some(rest) = lhs.trim().strip_prefix("map<") {
                let (types, name) = rest
                    .split_once('>')
                    .ok_or_else(|| format!("bad map field {t:?}"))?;
                let (k, v) = types
                    .split_once(',')
                    .ok_or_else(|| format!("bad map field {t:?}"))?;
                ProtoField {
                    tag,
                    name: name.trim().to_string(),
                    shape: "map",
                    ty: resolve(k),
                    value: Some(resolve(v)),
                }
            } else {
                let parts: Vec<&str> = lhs.split_whitespace().collect();
                let [label, ty, name] = parts[..] else {
                    return Err(format!("{package}.{}: cannot read {t:?}", m.short));
                };
                ProtoField {
                    tag,
                    name: name.to_string(),
                    shape: match label {
                        "optional" => "one",
                        "repeated" => "rep",
                        other => return Err(format!("unexpected label {other:?} in {t:?}")),
                    },
                    ty: resolve(ty),
                    value: None,
                }
            };
            m.fields.push(f);
        }
        if !t.starts_with("//") {
            comment.clear();
        }
    }
    Ok((package, messages))
}

/// The Go structs of a package directory: struct name -> proto field number -> field.
fn parse_go_structs(dir: &Path) -> BTreeMap<String, BTreeMap<u32, GoField>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        let name = p.file_name().map(|n| n.to_string_lossy().to_string());
        if !name.is_some_and(|n| n.ends_with(".go") && !n.ends_with("_test.go")) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&p) else {
            continue;
        };
        let mut current: Option<(String, BTreeMap<u32, GoField>)> = None;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("type ")
                && let Some(name) = rest.strip_suffix(" struct{}")
            {
                out.insert(name.trim().to_string(), BTreeMap::new());
                continue;
            }
            if let Some(rest) = line.strip_prefix("type ")
                && let Some(name) = rest.strip_suffix(" struct {")
            {
                current = Some((name.trim().to_string(), BTreeMap::new()));
                continue;
            }
            if line == "}" {
                if let Some((name, fields)) = current.take() {
                    out.insert(name, fields);
                }
                continue;
            }
            let Some((_, fields)) = current.as_mut() else {
                continue;
            };
            let t = line.trim();
            if t.starts_with("//") {
                continue;
            }
            let Some((decl, tags)) = t.split_once('`') else {
                continue;
            };
            let tag_value = |key: &str| -> Option<String> {
                let start = tags.find(&format!("{key}:\""))? + key.len() + 2;
                let end = tags[start..].find('"')?;
                Some(tags[start..start + end].to_string())
            };
            let Some(num) = tag_value("protobuf")
                .and_then(|p| p.split(',').nth(1).and_then(|n| n.parse::<u32>().ok()))
            else {
                continue;
            };
            let json = tag_value("json").unwrap_or_default();
            let mut opts = json.split(',');
            let json_name = opts.next().unwrap_or("").to_string();
            let opts: Vec<&str> = opts.collect();
            let parts: Vec<&str> = decl.split_whitespace().collect();
            let go_type = parts.last().copied().unwrap_or("");
            fields.insert(
                num,
                GoField {
                    inline: json_name.is_empty() && opts.contains(&"inline"),
                    keep_zero: go_type.starts_with('*')
                        || !(opts.contains(&"omitempty") || opts.contains(&"omitzero")),
                    json: json_name,
                },
            );
        }
    }
    out
}

/// Generates the table text for the served built-in kinds `(group, version, kind)`.
pub fn generate(
    modules: &BTreeMap<String, PathBuf>,
    served: &[(String, String, String)],
) -> Result<String, String> {
    let mut messages: BTreeMap<String, ProtoMessage> = BTreeMap::new();
    // "group/version" -> proto package.
    let mut packages: BTreeMap<String, String> = BTreeMap::new();
    for dir in modules.values() {
        let mut protos = Vec::new();
        files_named(dir, "generated.proto", &mut protos);
        for proto in protos {
            let text =
                std::fs::read_to_string(&proto).map_err(|e| format!("{}: {e}", proto.display()))?;
            let pkg_dir = proto.parent().unwrap_or(dir).to_path_buf();
            let (package, list) = parse_proto(&text, &pkg_dir)?;
            if let Some(group) = group_name(&pkg_dir) {
                let version = pkg_dir
                    .file_name()
                    .map(|v| v.to_string_lossy().to_string())
                    .unwrap_or_default();
                let gv = if group.is_empty() {
                    version
                } else {
                    format!("{group}/{version}")
                };
                packages.insert(gv, package.clone());
            }
            for m in list {
                messages.insert(format!("{package}.{}", m.short), m);
            }
        }
    }
    let mut kinds: BTreeSet<(String, String, String)> = BTreeSet::new();
    let mut queue: VecDeque<String> = VecDeque::new();
    let mut add_kind = |api_version: &str, gv: &str, kind: &str, required: bool| {
        let Some(pkg) = packages.get(gv) else {
            return Err(format!("no Kubernetes package serves {gv}"));
        };
        let name = format!("{pkg}.{kind}");
        if !messages.contains_key(&name) {
            return if required {
                Err(format!("{gv} {kind} has no protobuf message"))
            } else {
                Ok(())
            };
        }
        kinds.insert((api_version.to_string(), kind.to_string(), name.clone()));
        queue.push_back(name);
        Ok(())
    };
    for (group, version, kind) in served {
        let gv = if group.is_empty() {
            version.clone()
        } else {
            format!("{group}/{version}")
        };
        add_kind(&gv, &gv, kind, true)?;
        add_kind(&gv, &gv, &format!("{kind}List"), false)?;
    }
    for (api_version, gv, kind) in EXTRA_ROOTS {
        add_kind(api_version, gv, kind, true)?;
    }
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut go_cache: BTreeMap<PathBuf, BTreeMap<String, BTreeMap<u32, GoField>>> = BTreeMap::new();
    let mut body = String::new();
    let mut out_messages: BTreeMap<String, String> = BTreeMap::new();
    while let Some(name) = queue.pop_front() {
        if SCALARS.contains(&name.as_str()) || !seen.insert(name.clone()) {
            continue;
        }
        let m = messages
            .get(&name)
            .ok_or_else(|| format!("message {name} is referenced but not defined"))?;
        for f in &m.fields {
            queue.push_back(f.ty.clone());
            queue.extend(f.value.clone());
        }
        body.clear();
        if SPECIAL.contains(&name.as_str()) {
            out_messages.insert(name.clone(), format!("message {name} special\n"));
            continue;
        }
        if m.array {
            out_messages.insert(name.clone(), format!("message {name} array\n"));
            continue;
        }
        let structs = go_cache
            .entry(m.dir.clone())
            .or_insert_with(|| parse_go_structs(&m.dir));
        let go = structs
            .get(&m.short)
            .ok_or_else(|| format!("no Go struct for {name} in {}", m.dir.display()))?;
        body.push_str(&format!("message {name}\n"));
        for f in &m.fields {
            let g = go
                .get(&f.tag)
                .ok_or_else(|| format!("{name}.{}: no Go field with tag {}", f.name, f.tag))?;
            let json = if g.inline {
                "-".to_string()
            } else if g.json.is_empty() {
                return Err(format!("{name}.{}: no JSON name", f.name));
            } else {
                g.json.clone()
            };
            let mut line = format!(" {} {json} {} {}", f.tag, f.shape, f.ty);
            if let Some(v) = &f.value {
                line.push(' ');
                line.push_str(v);
            }
            if f.shape == "one" && SCALARS.contains(&f.ty.as_str()) && g.keep_zero {
                line.push_str(" keep");
            }
            body.push_str(&line);
            body.push('\n');
        }
        out_messages.insert(name.clone(), body.clone());
    }
    let mut text = String::from(
        "# Generated by `FERROFLUX_REGENERATE=1 cargo test -p ferroflux-apiserver --test protobuf \
         table`; do not edit.\n",
    );
    text.push_str(&format!(
        "# Source: {} {K8S_VERSION} (generated.proto and the Go structs' tags).\n",
        MODULES.join(", ")
    ));
    text.push_str(
        "# kind <apiVersion|*> <Kind> <message>; message <name> [special|array];\n\
         #  <tag> <json name|- for inline> <one|rep|map> <type> [<map value type>] [keep: zero \
         scalars are written to JSON]\n",
    );
    for (api_version, kind, name) in &kinds {
        text.push_str(&format!("kind {api_version} {kind} {name}\n"));
    }
    for m in out_messages.values() {
        text.push_str(m);
    }
    Ok(text)
}

/// The API group of a package directory (`GroupName` in its Go files); `None` for a package
/// that is no API group version.
fn group_name(dir: &Path) -> Option<String> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.extension().is_none_or(|x| x != "go") {
            continue;
        }
        let text = std::fs::read_to_string(&p).ok()?;
        for line in text.lines() {
            let t = line.trim();
            let rest = t
                .strip_prefix("const GroupName")
                .or_else(|| t.strip_prefix("GroupName"));
            if let Some(rest) = rest
                && let Some(v) = rest.trim().strip_prefix('=')
            {
                let v = v.trim();
                if let Some(s) = v.strip_prefix('"').and_then(|s| s.split('"').next()) {
                    return Some(s.to_string());
                }
            }
        }
    }
    None
}
