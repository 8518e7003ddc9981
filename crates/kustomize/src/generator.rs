//! configMapGenerator / secretGenerator and the content hash suffix.

use base64::Engine;
use ferroflux_gocompat::json;
use sha2::{Digest, Sha256};

use crate::error::{Result, msg};
use crate::loader::Loader;
use crate::resource::Resource;
use crate::yaml::{Map, Value};

/// Generator options (`generatorOptions` and per-generator `options`).
#[derive(Clone, Debug, Default)]
pub struct GenOptions {
    /// Extra labels.
    pub labels: Vec<(String, String)>,
    /// Extra annotations.
    pub annotations: Vec<(String, String)>,
    /// Skip the hash suffix.
    pub disable_hash: bool,
    /// Mark immutable.
    pub immutable: bool,
}

fn pairs(v: Option<&Value>) -> Vec<(String, String)> {
    v.and_then(Value::as_map)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.scalar_text().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default()
}

impl GenOptions {
    /// Reads an options mapping.
    pub fn from_value(v: Option<&Value>) -> Option<Self> {
        let m = v?.as_map()?;
        Some(GenOptions {
            labels: pairs(m.get("labels")),
            annotations: pairs(m.get("annotations")),
            disable_hash: matches!(m.get("disableNameSuffixHash"), Some(Value::Bool(true))),
            immutable: matches!(m.get("immutable"), Some(Value::Bool(true))),
        })
    }

    /// Global options merged under local ones (local values win).
    pub fn merge_global(local: Option<Self>, global: Option<&Self>) -> Self {
        let Some(g) = global else {
            return local.unwrap_or_default();
        };
        let Some(mut l) = local else {
            return g.clone();
        };
        for (local, global) in [
            (&mut l.labels, &g.labels),
            (&mut l.annotations, &g.annotations),
        ] {
            for (k, v) in global {
                if !local.iter().any(|(lk, _)| lk == k) {
                    local.push((k.clone(), v.clone()));
                }
            }
        }
        l.disable_hash |= g.disable_hash;
        l.immutable |= g.immutable;
        l
    }
}

fn str_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Seq(items)) => items.iter().filter_map(Value::scalar_text).collect(),
        Some(Value::Str(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

fn strip_quotes(v: &str) -> &str {
    let b = v.as_bytes();
    if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] {
        &v[1..v.len() - 1]
    } else {
        v
    }
}

/// Parses an env file the way upstream does: `KEY=VALUE` lines (the value is taken
/// verbatim, a line without `=` has an empty value), leading whitespace trimmed, blank and
/// `#` lines skipped, a BOM dropped from the first line. Keys are not validated.
pub fn parse_env(content: &[u8], file: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for (i, raw) in content.split(|b| *b == b'\n').enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let Ok(line) = std::str::from_utf8(raw) else {
            return Err(msg(format!(
                "{file}: line {} has invalid utf8 bytes",
                i + 1
            )));
        };
        let line = if i == 0 {
            line.strip_prefix('\u{FEFF}').unwrap_or(line)
        } else {
            line
        };
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_once('=') {
            Some((k, v)) => out.push((k.to_string(), v.to_string())),
            None => out.push((line.to_string(), String::new())),
        }
    }
    Ok(out)
}

/// Generates one ConfigMap (`is_secret` false) or Secret from a generator entry.
pub fn generate(
    ldr: &Loader<'_>,
    args: &Value,
    global: Option<&GenOptions>,
    is_secret: bool,
) -> Result<Resource> {
    let m = args
        .as_map()
        .ok_or_else(|| msg("generator entry must be a mapping"))?;
    let s = |k: &str| m.get(k).and_then(Value::scalar_text).unwrap_or_default();
    let name = s("name");
    let namespace = s("namespace");
    let behavior = m
        .get("behavior")
        .and_then(Value::scalar_text)
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| "create".to_string());
    if !["create", "merge", "replace"].contains(&behavior.as_str()) {
        return Err(msg(format!("unknown generator behavior '{behavior}'")));
    }
    let opts = GenOptions::merge_global(GenOptions::from_value(m.get("options")), global);

    let mut data: Vec<(String, Vec<u8>)> = Vec::new();
    let mut add = |k: String, v: Vec<u8>| -> Result<()> {
        if data.iter().any(|(dk, _)| *dk == k) {
            return Err(msg(format!(
                "configmap {name} illegally repeats the key `{k}`"
            )));
        }
        data.push((k, v));
        Ok(())
    };
    let mut envs = str_list(m.get("envs"));
    envs.extend(str_list(m.get("env")));
    for env in envs {
        let bytes = ldr.load(&env)?;
        for (k, v) in parse_env(&bytes, &env)? {
            add(k, v.into_bytes())?;
        }
    }
    for lit in str_list(m.get("literals")) {
        let (k, v) = lit
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| msg(format!("invalid literal source {lit}, expected key=value")))?;
        add(k.to_string(), strip_quotes(v).as_bytes().to_vec())?;
    }
    for f in str_list(m.get("files")) {
        let (key, path) = match f.split_once('=') {
            Some((k, p)) => (k.to_string(), p.to_string()),
            None => (f.rsplit('/').next().unwrap_or(&f).to_string(), f.clone()),
        };
        if key.is_empty() {
            return Err(msg(format!("key name for file path {path} missing")));
        }
        let bytes = ldr.load(&path)?;
        add(key, bytes)?;
    }

    let mut obj = Map::new();
    obj.insert("apiVersion", Value::from("v1"));
    obj.insert(
        "kind",
        Value::from(if is_secret { "Secret" } else { "ConfigMap" }),
    );
    let mut md = Map::new();
    md.insert("name", Value::Str(name.clone()));
    if !namespace.is_empty() {
        md.insert("namespace", Value::Str(namespace));
    }
    for (field, pairs) in [("labels", &opts.labels), ("annotations", &opts.annotations)] {
        if !pairs.is_empty() {
            let map = pairs
                .iter()
                .map(|(k, v)| (k.clone(), Value::Str(v.clone())))
                .collect();
            md.insert(field, Value::Map(map));
        }
    }
    obj.insert("metadata", Value::Map(md));
    let b64 = |b: &[u8]| wrap_base64(&base64::engine::general_purpose::STANDARD.encode(b));
    if is_secret {
        let t = s("type");
        obj.insert(
            "type",
            Value::Str(if t.is_empty() { "Opaque".into() } else { t }),
        );
        if !data.is_empty() {
            obj.insert(
                "data",
                Value::Map(
                    data.iter()
                        .map(|(k, v)| (k.clone(), Value::Str(b64(v))))
                        .collect(),
                ),
            );
        }
    } else {
        let mut text = Map::new();
        let mut bin = Map::new();
        for (k, v) in &data {
            match String::from_utf8(v.clone()) {
                Ok(s) => text.insert(k.clone(), Value::Str(s)),
                Err(_) => bin.insert(k.clone(), Value::Str(b64(v))),
            }
        }
        if !text.is_empty() {
            obj.insert("data", Value::Map(text));
        }
        if !bin.is_empty() {
            obj.insert("binaryData", Value::Map(bin));
        }
    }
    if opts.immutable {
        obj.insert("immutable", Value::Bool(true));
    }
    let mut r = Resource::new(obj);
    r.behavior = Some(behavior);
    r.needs_hash = !opts.disable_hash;
    Ok(r)
}

/// go-yaml's binary encoding: lines of 70 characters, each ending in a newline once the
/// text is 70 characters or longer.
fn wrap_base64(enc: &str) -> String {
    if enc.len() < 70 {
        return enc.to_string();
    }
    let mut out = String::with_capacity(enc.len() + enc.len() / 70 + 1);
    for chunk in enc.as_bytes().chunks(70) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out
}

/// Go's `encoding/json` rendering of a value with sorted keys and HTML escaping.
pub fn go_json(v: &Value) -> String {
    let mut out = String::new();
    write_go_json(v, &mut out);
    out
}

fn write_go_json(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::Float(f) => out.push_str(&crate::yaml::emit::format_float(*f)),
        Value::Str(s) => json::write_string(out, s, true),
        Value::Seq(items) => json::write_array(out, items, |out, v| write_go_json(v, out)),
        Value::Map(m) => {
            let mut members: Vec<(&str, &Value)> = m.iter().map(|(k, v)| (k.as_str(), v)).collect();
            members.sort_by_key(|(k, _)| *k);
            json::write_object(out, members, true, |out, v| write_go_json(v, out));
        }
    }
}

/// The 10-character content hash kustomize appends to generated names.
pub fn content_hash(r: &Resource) -> String {
    let get = |k: &str| r.obj.get(k).cloned();
    // Upstream looks the name up under a literal "metadata/name" key, which never exists,
    // so the name never takes part in the hash.
    let name = Value::Str(String::new());
    let or_empty = |v: Option<Value>| match v {
        Some(Value::Null) | None => Value::Str(String::new()),
        Some(v) => v,
    };
    let mut m = Map::new();
    match r.kind().as_str() {
        "ConfigMap" => {
            m.insert("kind", Value::from("ConfigMap"));
            m.insert("name", name);
            m.insert("data", or_empty(get("data")));
            if let Some(b @ Value::Map(_)) = get("binaryData") {
                m.insert("binaryData", b);
            }
        }
        "Secret" => {
            m.insert("kind", Value::from("Secret"));
            m.insert("type", or_empty(get("type")));
            m.insert("name", name);
            m.insert("data", or_empty(get("data")));
            if let Some(b @ Value::Map(_)) = get("stringData") {
                m.insert("stringData", b);
            }
        }
        _ => return encode_hash(&go_json(&r.to_value())),
    }
    encode_hash(&go_json(&Value::Map(m)))
}

fn encode_hash(data: &str) -> String {
    let digest = Sha256::digest(data.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    hex[..10]
        .chars()
        .map(|c| match c {
            '0' => 'g',
            '1' => 'h',
            '3' => 'k',
            'a' => 'm',
            'e' => 't',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::MemFs;
    use crate::loader::LoadRestrictor;
    use crate::yaml::parse_documents;
    use std::path::Path;

    #[test]
    fn configmap_from_literals_envs_and_files() {
        let mut fs = MemFs::new();
        fs.add("app/a.env", "# c\nX=1\n\nY=two\n")
            .add("app/f.txt", "hello\n");
        let ldr = crate::loader::Loader::new(&fs, Path::new("/app"), LoadRestrictor::RootOnly)
            .expect("dir");
        let args =
            parse_documents("name: cm\nliterals: [\"K='v'\"]\nenvs: [a.env]\nfiles: [f.txt]\n")
                .expect("ok")
                .remove(0);
        let r = generate(&ldr, &args, None, false).expect("generated");
        let data = r.obj.get("data").expect("data");
        assert_eq!(data.get("K"), Some(&Value::from("v")));
        assert_eq!(data.get("X"), Some(&Value::from("1")));
        assert_eq!(data.get("f.txt"), Some(&Value::from("hello\n")));
        assert!(r.needs_hash);
        assert_eq!(r.behavior.as_deref(), Some("create"));
    }

    #[test]
    fn secret_values_are_base64() {
        let fs = MemFs::new();
        let ldr =
            crate::loader::Loader::new(&fs, Path::new("/"), LoadRestrictor::RootOnly).expect("dir");
        let args = parse_documents("name: s\nliterals: [a=b]\n")
            .expect("ok")
            .remove(0);
        let r = generate(&ldr, &args, None, true).expect("generated");
        assert_eq!(r.obj.get("type"), Some(&Value::from("Opaque")));
        assert_eq!(
            r.obj.get("data").and_then(|d| d.get("a")),
            Some(&Value::from("Yg=="))
        );
    }

    #[test]
    fn hash_depends_on_content_and_uses_the_kustomize_alphabet() {
        let mk = |v: &str| {
            let mut obj = Map::new();
            obj.insert("kind", Value::from("ConfigMap"));
            obj.insert(
                "metadata",
                Value::Map(
                    [("name".to_string(), Value::from("c"))]
                        .into_iter()
                        .collect(),
                ),
            );
            obj.insert(
                "data",
                Value::Map([("k".to_string(), Value::from(v))].into_iter().collect()),
            );
            Resource::new(obj)
        };
        let a = content_hash(&mk("1"));
        let b = content_hash(&mk("2"));
        assert_eq!(a.len(), 10);
        assert_ne!(a, b);
        assert!(a.chars().all(|c| !"013ae".contains(c)));
    }

    #[test]
    fn hash_of_control_characters_matches_kustomize() {
        let mk = |v: &str| {
            let mut obj = Map::new();
            obj.insert("kind", Value::from("ConfigMap"));
            obj.insert(
                "data",
                Value::Map([("k".to_string(), Value::from(v))].into_iter().collect()),
            );
            Resource::new(obj)
        };
        // `kustomize build` v5.8.2 (Go 1.26) of a configMapGenerator literal `k=<value>`.
        assert_eq!(content_hash(&mk("abc<d")), "m24m9tdgf2");
        assert_eq!(content_hash(&mk("a\u{8}b\u{c}c<d")), "2b27k85kgt");
    }

    #[test]
    fn go_json_escapes_html_and_sorts_keys() {
        let v = parse_documents("b: '<&>'\na: 1\n").expect("ok").remove(0);
        assert_eq!(go_json(&v), "{\"a\":1,\"b\":\"\\u003c\\u0026\\u003e\"}");
    }
}
