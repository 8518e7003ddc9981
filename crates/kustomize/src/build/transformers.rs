//! The transformer stage of one kustomization, in upstream's order, plus builtin transformer
//! plugin configurations (`transformers:`).

use super::patches::{
    apply_patch_entry, apply_smp_to, find_patch_target, load_patch_text, patch_docs,
};
use super::*;

/// Records that a builtin transformer configured in `kfile` ran over every resource
/// (buildMetadata `transformerAnnotations`).
pub(crate) fn note(ldr: &Loader<'_>, kfile: Option<&str>, acc: &mut Acc, kind: &str) {
    let Some(kfile) = kfile else { return };
    if !ldr.track_origin {
        return;
    }
    let o = builtin_origin(ldr, kfile, kind, "");
    for r in &mut acc.res.list {
        r.transformations.push(o.clone());
    }
}

pub(crate) fn run_transformers(
    ldr: &Loader<'_>,
    k: &Map,
    kfile: Option<&str>,
    acc: &mut Acc,
) -> Result<()> {
    let cfg = acc.config.clone();
    if !seq(k, "patchesStrategicMerge").is_empty() {
        run_smp_list(ldr, k, acc)?;
        note(ldr, kfile, acc, "PatchStrategicMergeTransformer");
    }
    run_rest(ldr, k, kfile, acc, &cfg)
}

pub(crate) fn run_smp_list(ldr: &Loader<'_>, k: &Map, acc: &mut Acc) -> Result<()> {
    // patchesStrategicMerge
    for p in seq(k, "patchesStrategicMerge") {
        let Some(s) = p.scalar_text() else { continue };
        let (text, file) = load_patch_text(ldr, &s)?;
        let docs = patch_docs(&text, &file)?;
        if docs.is_empty() {
            return Err(msg(format!("patch appears to be empty; file={s}")));
        }
        for d in docs {
            let Value::Map(pm) = d else { continue };
            let targets = find_patch_target(&acc.res, &pm)?;
            let mut deleted = Vec::new();
            for i in targets {
                if !apply_smp_to(ldr, &mut acc.res.list[i], &pm, false, false) {
                    deleted.push(i);
                }
            }
            for i in deleted.into_iter().rev() {
                acc.res.list.remove(i);
            }
        }
    }
    Ok(())
}

pub(crate) fn run_rest(
    ldr: &Loader<'_>,
    k: &Map,
    kfile: Option<&str>,
    acc: &mut Acc,
    cfg: &TConfig,
) -> Result<()> {
    for p in seq(k, "patches") {
        apply_patch_entry(ldr, &mut acc.res, &p)?;
        note(ldr, kfile, acc, "PatchTransformer");
    }
    if let Some(ns) = k.get("namespace").and_then(Value::scalar_text)
        && !ns.is_empty()
    {
        transform::set_namespace(&mut acc.res, &ns, &cfg.section("namespace"), "", false)?;
        note(ldr, kfile, acc, "NamespaceTransformer");
    }
    let prefix = k
        .get("namePrefix")
        .and_then(Value::scalar_text)
        .unwrap_or_default();
    if !prefix.is_empty() {
        transform::add_prefix_suffix(&mut acc.res, &prefix, "", &cfg.section("namePrefix"))?;
        note(ldr, kfile, acc, "PrefixTransformer");
    }
    let suffix = k
        .get("nameSuffix")
        .and_then(Value::scalar_text)
        .unwrap_or_default();
    if !suffix.is_empty() {
        transform::add_prefix_suffix(&mut acc.res, "", &suffix, &cfg.section("nameSuffix"))?;
        note(ldr, kfile, acc, "SuffixTransformer");
    }
    // labels entries, then commonLabels
    for l in seq(k, "labels") {
        let pairs = str_pairs(l.get("pairs"));
        let sel = matches!(l.get("includeSelectors"), Some(Value::Bool(true)));
        let tmpl = matches!(l.get("includeTemplates"), Some(Value::Bool(true)));
        let mut specs: Vec<FieldSpec> = l
            .get("fields")
            .and_then(Value::as_seq)
            .map(|s| s.iter().filter_map(FieldSpec::from_value).collect())
            .unwrap_or_default();
        specs.extend(cfg.section("labels"));
        if sel {
            specs.extend(cfg.section("commonLabels"));
        } else {
            if tmpl {
                specs.extend(cfg.section("templateLabels"));
            }
            if matches!(
                l.get("includeVolumeClaimTemplates"),
                Some(Value::Bool(true))
            ) {
                specs.extend(cfg.section("volumeClaimTemplateLabels"));
            }
            specs.push(FieldSpec::new(Gvk::default(), "metadata/labels", true));
        }
        transform::add_map_entries(&mut acc.res, &pairs, &specs)?;
        note(ldr, kfile, acc, "LabelTransformer");
    }
    let common = str_pairs(k.get("commonLabels"));
    if !common.is_empty() {
        transform::add_map_entries(&mut acc.res, &common, &cfg.section("commonLabels"))?;
        note(ldr, kfile, acc, "LabelTransformer");
    }
    let annos = str_pairs(k.get("commonAnnotations"));
    if !annos.is_empty() {
        transform::add_map_entries(&mut acc.res, &annos, &cfg.section("commonAnnotations"))?;
        note(ldr, kfile, acc, "AnnotationsTransformer");
    }
    // patchesJson6902
    for p in seq(k, "patchesJson6902") {
        let sel = p
            .get("target")
            .map(Selector::from_value)
            .transpose()?
            .unwrap_or_default();
        let (text, file) = if let Some(path) = p.get("path").and_then(Value::scalar_text) {
            let bytes = ldr.load(&path)?;
            (String::from_utf8_lossy(&bytes).into_owned(), ldr.abs(&path))
        } else {
            (
                p.get("patch")
                    .and_then(Value::scalar_text)
                    .unwrap_or_default(),
                ldr.root.join("<inline patch>"),
            )
        };
        let docs = patch_docs(&text, &file)?;
        let Some(ops) = docs.first() else { continue };
        for i in 0..acc.res.list.len() {
            if sel.matches(&acc.res.list[i])? {
                acc.res.list[i].store_previous_id();
                patch::apply_json6902(&mut acc.res.list[i].obj, ops)?;
            }
        }
        note(ldr, kfile, acc, "PatchJson6902Transformer");
    }
    for r in seq(k, "replicas") {
        let name = r
            .get("name")
            .and_then(Value::scalar_text)
            .unwrap_or_default();
        let count = match r.get("count") {
            Some(Value::Int(i)) => *i,
            _ => 0,
        };
        transform::set_replicas(&mut acc.res, &name, count, &cfg.section("replicas"))?;
        note(ldr, kfile, acc, "ReplicaCountTransformer");
    }
    let images: Vec<ImageOverride> = seq(k, "images")
        .iter()
        .filter_map(ImageOverride::from_value)
        .collect();
    for im in &images {
        transform::set_images(
            &mut acc.res,
            std::slice::from_ref(im),
            &cfg.section("images"),
        )?;
        note(ldr, kfile, acc, "ImageTagTransformer");
    }
    let replacements = seq(k, "replacements");
    apply_replacements(ldr, &replacements, acc)?;
    if !replacements.is_empty() {
        note(ldr, kfile, acc, "ReplacementTransformer");
    }
    // transformers: builtin plugin configurations
    for t in str_list(k, "transformers") {
        let inline = is_inline_config(&t);
        for c in plugin_configs(ldr, &t)? {
            run_builtin_transformer(ldr, &c, acc)?;
            if let Some(kf) = kfile {
                let file = if inline { kf } else { t.as_str() };
                if let Some(o) = plugin_origin(ldr, file, &c) {
                    for r in &mut acc.res.list {
                        r.transformations.push(o.clone());
                    }
                }
            }
        }
    }
    Ok(())
}

/// Applies replacement entries, inline or loaded from a `path:` file (one replacement or a
/// list of them per file).
fn apply_replacements(ldr: &Loader<'_>, reps: &[Value], acc: &mut Acc) -> Result<()> {
    for r in reps {
        let spec = if let Some(path) = r.get("path").and_then(Value::scalar_text) {
            let bytes = ldr.load(&path)?;
            patch_docs(&String::from_utf8_lossy(&bytes), &ldr.abs(&path))?
        } else {
            vec![r.clone()]
        };
        for s in spec {
            match s {
                Value::Seq(items) => {
                    for it in items {
                        vars::apply_replacement(&mut acc.res, &it)?;
                    }
                }
                other => vars::apply_replacement(&mut acc.res, &other)?,
            }
        }
    }
    Ok(())
}

pub(crate) fn fieldspecs_of(m: &Map, key: &str) -> Option<Vec<FieldSpec>> {
    m.get(key)
        .and_then(Value::as_seq)
        .map(|s| s.iter().filter_map(FieldSpec::from_value).collect())
}

pub(crate) fn run_builtin_transformer(ldr: &Loader<'_>, c: &Map, acc: &mut Acc) -> Result<()> {
    let r = Resource::new(c.clone());
    let cfg = acc.config.clone();
    if r.api_version() != "builtin" {
        return Err(msg(format!(
            "external plugins disabled; unable to load external plugin '{}'",
            r.kind()
        )));
    }
    let s = |key: &str| c.get(key).and_then(Value::scalar_text).unwrap_or_default();
    match r.kind().as_str() {
        "PrefixSuffixTransformer" | "PrefixTransformer" | "SuffixTransformer" => {
            let specs = fieldspecs_of(c, "fieldSpecs").unwrap_or_else(|| cfg.section("namePrefix"));
            transform::add_prefix_suffix(&mut acc.res, &s("prefix"), "", &specs)?;
            transform::add_prefix_suffix(&mut acc.res, "", &s("suffix"), &specs)?;
        }
        "LabelTransformer" => {
            let specs = fieldspecs_of(c, "fieldSpecs").unwrap_or_default();
            transform::add_map_entries(&mut acc.res, &str_pairs(c.get("labels")), &specs)?;
        }
        "AnnotationsTransformer" => {
            let specs = fieldspecs_of(c, "fieldSpecs").unwrap_or_default();
            transform::add_map_entries(&mut acc.res, &str_pairs(c.get("annotations")), &specs)?;
        }
        "NamespaceTransformer" => {
            let ns = c
                .get("metadata")
                .and_then(|m| m.get("namespace"))
                .and_then(Value::scalar_text)
                .unwrap_or_default();
            let specs = fieldspecs_of(c, "fieldSpecs").unwrap_or_default();
            let unset_only = matches!(c.get("unsetOnly"), Some(Value::Bool(true)));
            transform::set_namespace(
                &mut acc.res,
                &ns,
                &specs,
                &s("setRoleBindingSubjects"),
                unset_only,
            )?;
        }
        "ImageTagTransformer" => {
            let specs = fieldspecs_of(c, "fieldSpecs").unwrap_or_else(|| cfg.section("images"));
            if let Some(o) = c.get("imageTag").and_then(ImageOverride::from_value) {
                transform::set_images(&mut acc.res, &[o], &specs)?;
            }
        }
        "ReplicaCountTransformer" => {
            let specs = fieldspecs_of(c, "fieldSpecs").unwrap_or_else(|| cfg.section("replicas"));
            if let Some(rep) = c.get("replica") {
                let name = rep
                    .get("name")
                    .and_then(Value::scalar_text)
                    .unwrap_or_default();
                let count = match rep.get("count") {
                    Some(Value::Int(i)) => *i,
                    _ => 0,
                };
                transform::set_replicas(&mut acc.res, &name, count, &specs)?;
            }
        }
        "PatchTransformer" => {
            apply_patch_entry(ldr, &mut acc.res, &Value::Map(c.clone()))?;
        }
        "PatchStrategicMergeTransformer" => {
            let mut k = Map::new();
            let mut list = Vec::new();
            for p in c.get("paths").and_then(Value::as_seq).into_iter().flatten() {
                list.push(p.clone());
            }
            if let Some(p) = c.get("patches").and_then(Value::scalar_text) {
                list.push(Value::Str(p));
            }
            k.insert("patchesStrategicMerge", Value::Seq(list));
            run_transformers(ldr, &k, None, acc)?;
        }
        "PatchJson6902Transformer" => {
            let mut k = Map::new();
            let mut entry = c.clone();
            if let Some(op) = c.get("jsonOp").cloned() {
                entry.insert("patch", op);
            }
            k.insert("patchesJson6902", Value::Seq(vec![Value::Map(entry)]));
            run_transformers(ldr, &k, None, acc)?;
        }
        "ReplacementTransformer" => {
            let reps = c
                .get("replacements")
                .and_then(Value::as_seq)
                .cloned()
                .unwrap_or_default();
            apply_replacements(ldr, &reps, acc)?;
        }
        "ConfigMapGenerator" | "SecretGenerator" => {
            run_builtin_generator(ldr, c, acc, None)?;
        }
        other => {
            return Err(msg(format!(
                "unable to load builtin {}",
                Gvk {
                    group: String::new(),
                    version: "builtin".into(),
                    kind: other.into()
                }
            )));
        }
    }
    Ok(())
}
