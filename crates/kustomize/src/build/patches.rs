//! Applying `patches`, `patchesStrategicMerge` and JSON 6902 entries to the accumulated
//! resources.

use super::*;

pub(crate) fn load_patch_text(ldr: &Loader<'_>, s: &str) -> Result<(String, std::path::PathBuf)> {
    // A value with a newline, or one that parses to a mapping/list, is inline YAML.
    let looks_inline = s.contains('\n')
        || matches!(
            parse_documents(s).ok().and_then(|d| d.into_iter().next()),
            Some(Value::Map(_)) | Some(Value::Seq(_))
        );
    if looks_inline {
        return Ok((s.to_string(), ldr.root.join("<inline patch>")));
    }
    let bytes = ldr.load(s)?;
    Ok((String::from_utf8_lossy(&bytes).into_owned(), ldr.abs(s)))
}

pub(crate) fn patch_docs(text: &str, file: &Path) -> Result<Vec<Value>> {
    let docs = parse_documents(text).map_err(|e| yaml_err(file, e))?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

pub(crate) fn apply_smp_to(
    ldr: &Loader<'_>,
    r: &mut Resource,
    patch: &Map,
    allow_name: bool,
    allow_kind: bool,
) -> bool {
    let (name, ns, kind) = (r.name(), r.namespace(), r.kind());
    if allow_name || allow_kind {
        r.store_previous_id();
    }
    let defs = ldr.schema.borrow();
    let schema = patch::Schema::for_kind(defs.as_ref(), &r.gvk());
    let keep = patch::apply_smp(&mut r.obj, patch, schema);
    if !keep {
        return false;
    }
    if !allow_kind {
        r.obj.insert("kind", Value::Str(kind));
    }
    if !allow_name {
        r.set_name(&name);
    }
    if !ns.is_empty() {
        r.set_namespace(&ns);
    } else if let Some(Value::Map(md)) = r.obj.get_mut("metadata") {
        md.remove("namespace");
    }
    true
}

pub(crate) fn find_patch_target(m: &ResMap, patch: &Map) -> Result<Vec<usize>> {
    let p = Resource::new(patch.clone());
    let pid = p.cur_id();
    let hits = m.positions_by_any_id(|id| {
        id.gvk.is_selected_by(&pid.gvk)
            && id.name == pid.name
            && (pid.namespace.is_empty() || id.ns_equals(&pid))
    });
    if hits.is_empty() {
        return Err(msg(format!(
            "no matches for Id {pid}; failed to find unique target for patch {pid}"
        )));
    }
    // Upstream matches the group/version/kind exactly; prefer that when it decides.
    let hits = if hits.len() > 1 {
        let exact_gvk: Vec<usize> = hits
            .iter()
            .copied()
            .filter(|&i| m.list[i].any_id(|id| id.gvk == pid.gvk && id.name == pid.name))
            .collect();
        if exact_gvk.is_empty() {
            hits
        } else {
            exact_gvk
        }
    } else {
        hits
    };
    if hits.len() > 1 && pid.namespace.is_empty() {
        let exact: Vec<usize> = hits
            .iter()
            .copied()
            .filter(|&i| m.list[i].cur_id().ns_equals(&pid))
            .collect();
        if exact.len() == 1 {
            return Ok(exact);
        }
        return Err(msg(format!(
            "multiple matches for Id {pid}; failed to find unique target for patch {pid}"
        )));
    }
    Ok(hits)
}

pub(crate) fn is_json_patch(v: &Value) -> bool {
    matches!(v, Value::Seq(_))
}

/// Applies a `patches:` entry (path or inline, SMP or JSON 6902, with optional target).
pub(crate) fn apply_patch_entry(ldr: &Loader<'_>, m: &mut ResMap, entry: &Value) -> Result<()> {
    let (text, file) = if let Some(p) = entry.get("path").and_then(Value::scalar_text) {
        let bytes = ldr.load(&p)?;
        (String::from_utf8_lossy(&bytes).into_owned(), ldr.abs(&p))
    } else if let Some(p) = entry.get("patch").and_then(Value::scalar_text) {
        (p, ldr.root.join("<inline patch>"))
    } else {
        return Err(msg("must specify one of patch and path in a patches entry"));
    };
    let opts = entry.get("options");
    let allow_name = matches!(
        opts.and_then(|o| o.get("allowNameChange")),
        Some(Value::Bool(true))
    );
    let allow_kind = matches!(
        opts.and_then(|o| o.get("allowKindChange")),
        Some(Value::Bool(true))
    );
    let docs = patch_docs(&text, &file)?;
    if docs.is_empty() {
        return Ok(());
    }
    let target = entry.get("target").map(Selector::from_value).transpose()?;
    if is_json_patch(&docs[0]) {
        let Some(sel) = target else {
            return Err(msg("must specify a target for JSON patch"));
        };
        for i in 0..m.list.len() {
            if sel.matches(&m.list[i])? {
                m.list[i].store_previous_id();
                patch::apply_json6902(&mut m.list[i].obj, &docs[0])?;
            }
        }
        return Ok(());
    }
    for d in docs {
        let Value::Map(pm) = d else {
            return Err(msg(format!(
                "{}: a patch must be a mapping or a list",
                file.display()
            )));
        };
        let targets: Vec<usize> = match &target {
            Some(sel) => {
                let mut v = Vec::new();
                for (i, r) in m.list.iter().enumerate() {
                    if sel.matches(r)? {
                        v.push(i);
                    }
                }
                v
            }
            None => find_patch_target(m, &pm).map_err(|e| {
                let pid = Resource::new(pm.clone()).cur_id();
                e.prefix(format!(
                    "no resource matches strategic merge patch \"{pid}\""
                ))
            })?,
        };
        let mut deleted = Vec::new();
        for i in targets {
            let mut p = pm.clone();
            if target.is_some() {
                let r = &m.list[i];
                if !allow_name {
                    p.map_entry("metadata").insert("name", Value::Str(r.name()));
                }
                if !allow_kind {
                    p.insert("kind", Value::Str(r.kind()));
                }
                p.insert("apiVersion", Value::Str(r.api_version()));
                let ns = r.namespace();
                if !ns.is_empty() {
                    p.map_entry("metadata").insert("namespace", Value::Str(ns));
                }
            }
            if !apply_smp_to(ldr, &mut m.list[i], &p, allow_name, allow_kind) {
                deleted.push(i);
            }
        }
        for i in deleted.into_iter().rev() {
            m.list.remove(i);
        }
    }
    Ok(())
}
