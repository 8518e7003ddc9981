//! Generated resources: generator plugins, `behavior: create|merge|replace`, and the origin
//! records of build metadata.

use super::*;

pub(crate) fn origin_value(ldr: &Loader<'_>, path: &str) -> Origin {
    Origin {
        path: Some(rel_join(&ldr.origin, path)),
        ..Default::default()
    }
}

pub(crate) fn builtin_origin(ldr: &Loader<'_>, file: &str, kind: &str, name: &str) -> Origin {
    Origin {
        configured_in: Some(rel_join(&ldr.origin, file)),
        configured_by: Some(("builtin".into(), kind.into(), name.into(), String::new())),
        ..Default::default()
    }
}

/// Adds a generated resource, honouring `behavior: create|merge|replace`.
pub(crate) fn absorb(res: &mut ResMap, mut r: Resource) -> Result<()> {
    let id = r.cur_id();
    let matches = res.positions_by_any_id(|xi| xi.equals(&id));
    let behavior = r.behavior.clone().unwrap_or_else(|| "create".into());
    match matches.len() {
        0 => {
            if behavior == "merge" || behavior == "replace" {
                return Err(msg(format!(
                    "id {id} does not exist; cannot merge or replace"
                )));
            }
            res.append(r)
        }
        1 => {
            let idx = matches[0];
            let old = res.list[idx].clone();
            if behavior != "merge" && behavior != "replace" {
                return Err(msg(format!(
                    "id {id} exists; can not use behavior: '{behavior}', behavior must be merge or replace"
                )));
            }
            for key in ["labels", "annotations"] {
                let old_pairs = match key {
                    "labels" => old.labels(),
                    _ => old.annotations(),
                };
                if old_pairs.is_empty() {
                    continue;
                }
                let mut merged: Map = old_pairs
                    .into_iter()
                    .map(|(k, v)| (k, Value::Str(v)))
                    .collect();
                if let Some(Value::Map(nl)) = r.obj.get("metadata").and_then(|m| m.get(key)) {
                    for (k, v) in nl.iter() {
                        merged.insert(k.clone(), v.clone());
                    }
                }
                r.metadata_mut().insert(key, Value::Map(merged));
            }
            r.set_name(&old.name());
            let ns = old.namespace();
            if ns.is_empty() {
                r.metadata_mut().remove("namespace");
            } else {
                r.set_namespace(&ns);
            }
            if behavior == "merge" {
                for key in ["data", "binaryData"] {
                    if let Some(Value::Map(od)) = old.obj.get(key) {
                        let mut merged = od.clone();
                        if let Some(Value::Map(nd)) = r.obj.get(key) {
                            for (k, v) in nd.iter() {
                                merged.insert(k.clone(), v.clone());
                            }
                        }
                        r.obj.insert(key, Value::Map(merged));
                    }
                }
                if r.origin.is_none() || old.origin.is_some() {
                    r.origin = old.origin.clone();
                }
            }
            r.needs_hash = r.needs_hash && old.needs_hash;
            r.behavior = old.behavior.clone();
            r.prev = old.prev.clone();
            r.prefixes = old.prefixes.clone();
            r.suffixes = old.suffixes.clone();
            r.ref_vars = old.ref_vars.clone();
            res.list[idx] = r;
            Ok(())
        }
        _ => Err(msg(format!(
            "found multiple objects that could accept merge of {id}"
        ))),
    }
}

/// Plugin configurations named by a `transformers:`/`generators:` entry: inline YAML or a
/// file (or a directory of them).
pub(crate) fn plugin_configs(ldr: &Loader<'_>, entry: &str) -> Result<Vec<Map>> {
    if let Ok(docs) = parse_documents(entry)
        && let Some(Value::Map(_)) = docs.first()
    {
        return Ok(docs
            .into_iter()
            .filter_map(|d| match d {
                Value::Map(m) => Some(m),
                _ => None,
            })
            .collect());
    }
    let abs = ldr.abs(entry);
    if ldr.fs.is_dir(&abs) {
        let child = ldr.child(entry)?;
        let (text, kfile) = child.kustomization_file()?;
        let ck = parse_kustomization(&text, &child.root.join(&kfile))?;
        let sub = accumulate(&child, &ck, &kfile, Acc::default())?;
        return Ok(sub.res.list.into_iter().map(|r| r.obj).collect());
    }
    let bytes = ldr.load(entry)?;
    let rs = resources_from_text(&String::from_utf8_lossy(&bytes), &abs)?;
    Ok(rs.into_iter().map(|r| r.obj).collect())
}

pub(crate) fn is_inline_config(entry: &str) -> bool {
    matches!(
        parse_documents(entry)
            .ok()
            .and_then(|d| d.into_iter().next()),
        Some(Value::Map(_))
    )
}

pub(crate) fn plugin_origin(ldr: &Loader<'_>, file: &str, cfg: &Map) -> Option<Origin> {
    if !ldr.track_origin {
        return None;
    }
    let r = Resource::new(cfg.clone());
    Some(Origin {
        configured_in: Some(rel_join(&ldr.origin, file)),
        configured_by: Some((r.api_version(), r.kind(), r.name(), r.namespace())),
        ..Default::default()
    })
}

pub(crate) fn run_builtin_generator(
    ldr: &Loader<'_>,
    cfg: &Map,
    acc: &mut Acc,
    origin: Option<Origin>,
) -> Result<()> {
    let v = Value::Map(cfg.clone());
    let r = Resource::new(cfg.clone());
    let kind = r.kind();
    let mut args = cfg.clone();
    if let Some(Value::Map(md)) = cfg.get("metadata") {
        for k in ["name", "namespace"] {
            if let Some(x) = md.get(k)
                && !args.contains_key(k)
            {
                args.insert(k, x.clone());
            }
        }
    }
    let _ = v;
    match (r.api_version().as_str(), kind.as_str()) {
        ("builtin", "ConfigMapGenerator") | ("builtin", "SecretGenerator") => {
            let mut g =
                generator::generate(ldr, &Value::Map(args), None, kind == "SecretGenerator")?;
            g.origin = origin;
            absorb(&mut acc.res, g)
        }
        ("builtin", "IAMPolicyGenerator") => {
            let cloud = cfg
                .get("cloud")
                .and_then(Value::scalar_text)
                .unwrap_or_default();
            if cloud != "gke" {
                return Err(msg(format!(
                    "IAMPolicyGenerator: cloud '{cloud}' is not supported (only 'gke')"
                )));
            }
            let ks = |k: &str| {
                cfg.get("kubernetesService")
                    .and_then(|v| v.get(k))
                    .and_then(Value::scalar_text)
                    .unwrap_or_default()
            };
            let sa = |k: &str| {
                cfg.get("serviceAccount")
                    .and_then(|v| v.get(k))
                    .and_then(Value::scalar_text)
                    .unwrap_or_default()
            };
            let mut md = Map::new();
            let mut annos = Map::new();
            annos.insert(
                "iam.gke.io/gcp-service-account",
                Value::Str(format!(
                    "{}@{}.iam.gserviceaccount.com",
                    sa("name"),
                    sa("projectId")
                )),
            );
            md.insert("annotations", Value::Map(annos));
            md.insert("name", Value::Str(ks("name")));
            if !ks("namespace").is_empty() {
                md.insert("namespace", Value::Str(ks("namespace")));
            }
            let mut obj = Map::new();
            obj.insert("apiVersion", Value::from("v1"));
            obj.insert("kind", Value::from("ServiceAccount"));
            obj.insert("metadata", Value::Map(md));
            let mut r = Resource::new(obj);
            r.origin = origin;
            acc.res.append(r)
        }
        _ => Err(msg(format!(
            "unable to load builtin {}; external generator plugins are not supported",
            r.cur_id().gvk
        ))),
    }
}
