//! The build pipeline: load a kustomization, accumulate resources from files, bases and
//! components, run generators and transformers in upstream's order, then fix hashes, name
//! references and vars.

use std::collections::HashSet;
use std::path::Path;

use crate::error::{Error, Result, msg};
use crate::fieldspec::{FieldSpec, builtins};
use crate::fs::FileSystem;
use crate::generator::{self, GenOptions};
use crate::loader::{LoadRestrictor, Loader};
use crate::nameref;
use crate::patch::{self, Selector};
use crate::resource::{Gvk, Origin, ResMap, Resource, rel_join};
use crate::transform::{self, ImageOverride};
use crate::vars;
use crate::yaml::{Map, Value, parse_documents};

mod config;
mod generate;
mod kustfile;
mod patches;
mod transformers;

use config::{TConfig, crds_config};
use generate::{absorb, builtin_origin, origin_value, plugin_configs, plugin_origin};
use generate::{is_inline_config, run_builtin_generator};
pub use kustfile::KNOWN_FIELDS;
use kustfile::{BUILTIN_OPENAPI_VERSION, parse_kustomization};
use transformers::run_transformers;

/// Resource order of the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Reorder {
    /// kustomize's legacy kind-based order (the CLI default).
    #[default]
    Legacy,
    /// Depth-first input order.
    None,
}

/// Build options (the CLI flags).
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Output order; `sortOptions` in the kustomization wins.
    pub reorder: Reorder,
    /// File load restriction.
    pub load_restrictor: LoadRestrictor,
}

/// What accumulating a kustomization yields.
#[derive(Default)]
struct Acc {
    res: ResMap,
    config: TConfig,
    vars: Vec<Value>,
}

fn yaml_err(file: &Path, e: crate::yaml::YamlError) -> Error {
    Error::Yaml {
        file: file.to_path_buf(),
        line: e.line,
        message: e.message,
    }
}

fn str_list(k: &Map, key: &str) -> Vec<String> {
    match k.get(key) {
        Some(Value::Seq(items)) => items.iter().filter_map(Value::scalar_text).collect(),
        Some(Value::Str(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

fn seq(k: &Map, key: &str) -> Vec<Value> {
    match k.get(key) {
        Some(Value::Seq(items)) => items.clone(),
        _ => Vec::new(),
    }
}

fn str_pairs(v: Option<&Value>) -> Vec<(String, String)> {
    v.and_then(Value::as_map)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.scalar_text().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default()
}

/// Label and annotation values are strings in Kubernetes; upstream reads them as such.
fn stringify_meta_maps(obj: &mut Map) {
    let Some(Value::Map(md)) = obj.get_mut("metadata") else {
        return;
    };
    for key in ["labels", "annotations"] {
        if let Some(Value::Map(lm)) = md.get_mut(key) {
            for (_, v) in lm.iter_mut() {
                if !matches!(v, Value::Str(_) | Value::Map(_) | Value::Seq(_)) {
                    *v = Value::Str(v.scalar_text().unwrap_or_default());
                }
            }
        }
    }
}

/// Upstream's metadata check: a kind and a name are required.
fn validated(mut m: Map) -> Result<Resource> {
    let text = |k: &str| m.get(k).and_then(Value::scalar_text).unwrap_or_default();
    if text("kind").is_empty() {
        return Err(msg(format!(
            "missing kind in object {}",
            crate::yaml::emit::to_json(&Value::Map(m))
        )));
    }
    let name = m
        .get("metadata")
        .and_then(|md| md.get("name"))
        .and_then(Value::scalar_text)
        .unwrap_or_default();
    if name.is_empty() {
        return Err(msg(format!(
            "missing metadata.name in object {}",
            crate::yaml::emit::to_json(&Value::Map(m))
        )));
    }
    stringify_meta_maps(&mut m);
    Ok(Resource::new(m))
}

/// Parses resource documents from text: drops empty documents, expands `List` kinds.
pub fn resources_from_text(text: &str, file: &Path) -> Result<Vec<Resource>> {
    let docs = crate::yaml::parse::parse_objects(text).map_err(|e| yaml_err(file, e))?;
    let mut out = Vec::new();
    for d in docs {
        match d {
            Value::Null => {}
            Value::Map(m) if m.is_empty() => {}
            Value::Map(m) => {
                let kind = m
                    .get("kind")
                    .and_then(Value::scalar_text)
                    .unwrap_or_default();
                if kind.ends_with("List")
                    && let Some(Value::Seq(items)) = m.get("items")
                {
                    for (i, it) in items.iter().enumerate() {
                        match it {
                            Value::Map(im) => out.push(validated(im.clone())?),
                            _ => {
                                return Err(msg(format!(
                                    "empty item at [items {i}] in object {}",
                                    crate::yaml::emit::to_json(&Value::Map(m.clone()))
                                )));
                            }
                        }
                    }
                    continue;
                }
                out.push(validated(m)?);
            }
            _ => return Err(msg("missing Resource metadata")),
        }
    }
    Ok(out)
}

/// Builds the kustomization in `dir` and returns the YAML stream kustomize would print.
pub fn build(fs: &dyn FileSystem, dir: &Path, opts: Options) -> Result<String> {
    let docs = build_resources(fs, dir, opts)?;
    let values: Vec<Value> = docs.into_iter().map(|r| Value::Map(r.obj)).collect();
    for v in &values {
        check_json_encodable(v)?;
    }
    Ok(crate::yaml::to_yaml_stream(values.iter()))
}

/// Upstream prints each resource through JSON, which has no infinities or NaN.
fn check_json_encodable(v: &Value) -> Result<()> {
    match v {
        Value::Float(f) if !f.is_finite() => Err(msg(format!(
            "json: unsupported value: {}",
            if f.is_nan() {
                "NaN"
            } else if *f > 0.0 {
                "+Inf"
            } else {
                "-Inf"
            }
        ))),
        Value::Seq(items) => items.iter().try_for_each(check_json_encodable),
        Value::Map(m) => m.iter().try_for_each(|(_, x)| check_json_encodable(x)),
        _ => Ok(()),
    }
}

/// Builds and returns the final resources.
pub fn build_resources(fs: &dyn FileSystem, dir: &Path, opts: Options) -> Result<Vec<Resource>> {
    let root = if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| msg(format!("cannot read the working directory: {e}")))?
            .join(dir)
    };
    let mut ldr = Loader::new(fs, &root, opts.load_restrictor)?;
    let (text, kfile) = ldr.kustomization_file()?;
    let k = parse_kustomization(&text, &ldr.root.join(&kfile))?;
    ldr.track_origin = !str_list(&k, "buildMetadata").is_empty();
    let mut acc = accumulate(&ldr, &k, &kfile, Acc::default())?;
    // Hash suffixes, then references, then vars: only once, at the top.
    for r in &mut acc.res.list {
        if r.needs_hash {
            let h = generator::content_hash(r);
            r.store_previous_id();
            let n = format!("{}-{h}", r.name());
            r.set_name(&n);
            r.needs_hash = false;
        }
    }
    nameref::fix_name_references(&mut acc.res, &acc.config.name_refs)?;
    vars::resolve_vars(&mut acc.res, &acc.vars, &acc.config.section("varReference"))?;
    // Ordering.
    match k.get("sortOptions") {
        Some(so) => {
            let order = so
                .get("order")
                .and_then(Value::scalar_text)
                .unwrap_or_default();
            let legacy_opts = so.get("legacySortOptions");
            match order.as_str() {
                "legacy" => {
                    let (mut first, mut last) = nameref::default_order();
                    if let Some(lo) = legacy_opts {
                        first = lo
                            .get("orderFirst")
                            .and_then(Value::as_seq)
                            .map(|s| s.iter().filter_map(Value::scalar_text).collect())
                            .unwrap_or_default();
                        last = lo
                            .get("orderLast")
                            .and_then(Value::as_seq)
                            .map(|s| s.iter().filter_map(Value::scalar_text).collect())
                            .unwrap_or_default();
                    }
                    nameref::legacy_sort(&mut acc.res, &first, &last);
                }
                "fifo" => {
                    if legacy_opts.is_some() {
                        return Err(msg(
                            "the field 'sortOptions.legacySortOptions' is set but the selected sort order is 'fifo', not 'legacy'",
                        ));
                    }
                }
                _ => {
                    return Err(msg(
                        "the field 'sortOptions.order' must be one of [fifo, legacy]",
                    ));
                }
            }
        }
        None => {
            if opts.reorder == Reorder::Legacy {
                let (first, last) = nameref::default_order();
                nameref::legacy_sort(&mut acc.res, &first, &last);
            }
        }
    }
    // Local-only configuration objects never leave the build.
    acc.res.list.retain(|r| {
        !r.annotations()
            .iter()
            .any(|(k, v)| k == "config.kubernetes.io/local-config" && v == "true")
    });
    let build_meta = str_list(&k, "buildMetadata");
    if build_meta.iter().any(|b| b == "managedByLabel") {
        let pairs = vec![(
            "app.kubernetes.io/managed-by".to_string(),
            // What the reference (`kubectl kustomize`, a library build) prints.
            "kustomize-(devel)".to_string(),
        )];
        transform::add_map_entries(
            &mut acc.res,
            &pairs,
            &[FieldSpec::new(Gvk::default(), "metadata/labels", true)],
        )?;
    }
    for r in &mut acc.res.list {
        if build_meta.iter().any(|b| b == "originAnnotations")
            && let Some(o) = &r.origin
        {
            let text = o.render("", "");
            r.metadata_mut()
                .map_entry("annotations")
                .insert("config.kubernetes.io/origin", Value::Str(text));
        }
        if build_meta.iter().any(|b| b == "transformerAnnotations") && !r.transformations.is_empty()
        {
            let text: String = r
                .transformations
                .iter()
                .map(|o| o.render("- ", "  "))
                .collect();
            r.metadata_mut().map_entry("annotations").insert(
                "alpha.config.kubernetes.io/transformations",
                Value::Str(text),
            );
        }
    }
    Ok(acc.res.list)
}

/// One kustomization onto `acc`, in kustomize's order (`accumulateTarget`).
fn accumulate(ldr: &Loader<'_>, k: &Map, kfile: &str, mut acc: Acc) -> Result<Acc> {
    load_openapi(ldr, k)?;
    // 1. resources
    let mut seen = acc.res.id_keys();
    for path in str_list(k, "resources") {
        accumulate_resource(ldr, &path, &mut acc, &mut seen)
            .map_err(|e| e.prefix("accumulating resources"))?;
    }
    // 2. configurations and crds
    load_configurations(ldr, k, &mut acc)?;
    // 3. generators
    run_generators(ldr, k, kfile, &mut acc)?;
    // 4. components
    for c in str_list(k, "components") {
        acc = accumulate_component(ldr, &c, acc)?;
    }
    // 5. transformers
    run_transformers(ldr, k, Some(kfile), &mut acc)?;
    // 6. vars
    bind_vars(k, &mut acc)?;
    Ok(acc)
}

/// The OpenAPI schema: the first `openapi` field met wins (the top kustomization's before its
/// bases'); `version:` selects the built-in schema.
fn load_openapi(ldr: &Loader<'_>, k: &Map) -> Result<()> {
    let Some(o) = k.get("openapi") else {
        return Ok(());
    };
    if ldr.schema.borrow().is_some() {
        return Ok(());
    }
    let version = o
        .get("version")
        .and_then(Value::scalar_text)
        .unwrap_or_default();
    let path = o.get("path").and_then(Value::scalar_text);
    if path.is_some() && !version.is_empty() {
        return Err(msg(
            "builtin version and custom schema provided, cannot use both",
        ));
    }
    if !version.is_empty() && version != BUILTIN_OPENAPI_VERSION {
        return Err(msg(format!(
            "the specified OpenAPI version is not built in: '{version}' (only {BUILTIN_OPENAPI_VERSION} is)"
        )));
    }
    if o.get("path").is_none() && version.is_empty() {
        return Ok(());
    }
    let mut defs = Map::new();
    if let Some(path) = path {
        let bytes = ldr.load(&path)?;
        let docs = parse_documents(&String::from_utf8_lossy(&bytes))
            .map_err(|e| yaml_err(&ldr.abs(&path), e))?;
        if let Some(d) = docs
            .into_iter()
            .find_map(|d| d.get("definitions").and_then(Value::as_map).cloned())
        {
            defs = d;
        }
    }
    *ldr.schema.borrow_mut() = Some(defs);
    Ok(())
}

/// `configurations` (transformer configs) and `crds` merged over the built-in config.
fn load_configurations(ldr: &Loader<'_>, k: &Map, acc: &mut Acc) -> Result<()> {
    let mut cfg = TConfig::builtin();
    cfg.merge(&acc.config);
    for c in str_list(k, "configurations") {
        let bytes = ldr.load(&c)?;
        for d in parse_documents(&String::from_utf8_lossy(&bytes))
            .map_err(|e| yaml_err(&ldr.abs(&c), e))?
        {
            cfg.merge_config(&d);
        }
    }
    for c in str_list(k, "crds") {
        let bytes = ldr.load(&c)?;
        crds_config(&String::from_utf8_lossy(&bytes), &mut cfg);
    }
    acc.config = cfg;
    Ok(())
}

/// `configMapGenerator`, `secretGenerator` and `generators`.
fn run_generators(ldr: &Loader<'_>, k: &Map, kfile: &str, acc: &mut Acc) -> Result<()> {
    let global = GenOptions::from_value(k.get("generatorOptions"));
    for (key, secret, kind) in [
        ("configMapGenerator", false, "ConfigMapGenerator"),
        ("secretGenerator", true, "SecretGenerator"),
    ] {
        for g in seq(k, key) {
            let mut r = generator::generate(ldr, &g, global.as_ref(), secret)?;
            if ldr.track_origin {
                r.origin = Some(builtin_origin(ldr, kfile, kind, ""));
            }
            absorb(&mut acc.res, r)?;
        }
    }
    for g in str_list(k, "generators") {
        let inline = is_inline_config(&g);
        for cfg in plugin_configs(ldr, &g)? {
            let file = if inline { kfile } else { g.as_str() };
            let origin = plugin_origin(ldr, file, &cfg);
            run_builtin_generator(ldr, &cfg, acc, origin)?;
        }
    }
    Ok(())
}

/// One entry of `components`: a `Component` accumulated on top of what is there so far.
fn accumulate_component(ldr: &Loader<'_>, c: &str, acc: Acc) -> Result<Acc> {
    let child = ldr.child(c).map_err(|e| {
        msg(format!(
            "accumulating components: loader.New {:?}",
            e.to_string()
        ))
    })?;
    let (text, kfile) = child.kustomization_file()?;
    let ck = parse_kustomization(&text, &child.root.join(&kfile))?;
    let ckind = ck
        .get("kind")
        .and_then(Value::scalar_text)
        .unwrap_or_default();
    if ckind != "Component" {
        let inner = format!(
            "expected kind 'Component' for path '{}' but got '{}'",
            child.root.display(),
            ckind
        );
        return Err(msg(format!(
            "accumulating components: accumulateDirectory: {inner:?}"
        )));
    }
    accumulate(&child, &ck, &kfile, acc).map_err(|e| {
        e.prefix(format!(
            "accumulating components: recursed accumulation of path '{}'",
            child.root.display()
        ))
    })
}

/// `vars`: each name once across the whole build.
fn bind_vars(k: &Map, acc: &mut Acc) -> Result<()> {
    for v in seq(k, "vars") {
        let name = v
            .get("name")
            .and_then(Value::scalar_text)
            .unwrap_or_default();
        if acc
            .vars
            .iter()
            .any(|x| x.get("name").and_then(Value::scalar_text).as_deref() == Some(name.as_str()))
        {
            return Err(msg(format!("var '{name}' already encountered")));
        }
        vars::bind_var(&mut acc.res, &v)?;
        acc.vars.push(v);
    }
    Ok(())
}

fn accumulate_resource(
    ldr: &Loader<'_>,
    path: &str,
    acc: &mut Acc,
    seen: &mut HashSet<(Gvk, String, String)>,
) -> Result<()> {
    let abs = ldr.abs(path);
    let file_err = if ldr.fs.exists(&abs) && !ldr.fs.is_dir(&abs) {
        match ldr.load(path) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                let rs = match resources_from_text(&text, &abs) {
                    Ok(rs) => rs,
                    Err(e @ Error::Yaml { .. }) => return Err(e),
                    Err(e) => {
                        return Err(msg(format!(
                            "accumulation err='accumulating resources from '{path}': {e}': must build at directory: '{}': file is not directory",
                            abs.display()
                        )));
                    }
                };
                for mut r in rs {
                    r.origin = Some(origin_value(ldr, path));
                    acc.res
                        .append_seen(r, seen)
                        .map_err(|e| msg(format!("merging resources from '{path}': {e}")))?;
                }
                return Ok(());
            }
            Err(e) => e,
        }
    } else if ldr.fs.is_dir(&abs) {
        let child = ldr.child(path)?;
        let (text, kfile) = child.kustomization_file().map_err(|e| {
            e.prefix(format!(
                "accumulation err='accumulating resources from '{path}': read {}: is a directory'",
                abs.display()
            ))
        })?;
        let ck = parse_kustomization(&text, &child.root.join(&kfile))?;
        if ck.get("kind").and_then(Value::scalar_text).as_deref() == Some("Component") {
            return Err(msg(format!(
                "accumulation err='accumulating resources from '{path}': read {}: is a directory': expected kind != 'Component' for path '{}'",
                abs.display(),
                child.root.display()
            )));
        }
        let sub = accumulate(&child, &ck, &kfile, Acc::default()).map_err(|e| {
            e.prefix(format!(
                "recursed accumulation of path '{}'",
                child.root.display()
            ))
        })?;
        for r in sub.res.list {
            acc.res.append_seen(r, seen)?;
        }
        acc.config.merge(&sub.config);
        for v in sub.vars {
            let name = v
                .get("name")
                .and_then(Value::scalar_text)
                .unwrap_or_default();
            if acc.vars.iter().any(|x| {
                x.get("name").and_then(Value::scalar_text).as_deref() == Some(name.as_str())
            }) {
                return Err(msg(format!("var '{name}' already encountered")));
            }
            acc.vars.push(v);
        }
        return Ok(());
    } else if crate::loader::is_remote(path) {
        return Err(msg(format!(
            "remote resource '{path}' refused: remote bases and URLs are not supported (vendor it into the repository)"
        )));
    } else {
        msg(format!(
            "evalsymlink failure on '{}' : lstat {}: no such file or directory",
            abs.display(),
            abs.display()
        ))
    };
    Err(msg(format!(
        "accumulation err='accumulating resources from '{path}': {file_err}': must build at directory: not a valid directory: evalsymlink failure on '{}' : lstat {}: no such file or directory",
        abs.display(),
        abs.display()
    )))
}
