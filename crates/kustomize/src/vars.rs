//! Legacy `vars` (`$(NAME)` substitution) and `replacements`.

use crate::error::{Result, msg};
use crate::fieldspec::{FieldSpec, walk};
use crate::patch::Selector;
use crate::resource::{ResMap, Resource};
use crate::yaml::{Map, Value};

/// Splits a kyaml field path (`a.b.[name=x].c`, `a.0.b`), honouring `[...]` brackets.
pub fn split_field_path(p: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0;
    for c in p.chars() {
        match c {
            '[' => {
                depth += 1;
                cur.push(c);
            }
            ']' => {
                depth -= 1;
                cur.push(c);
            }
            '.' if depth == 0 => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    // `name[0]` and `name[k=v]` are a field followed by an element selector.
    let mut res = Vec::new();
    for seg in out.into_iter().filter(|s| !s.is_empty()) {
        match seg.find('[') {
            Some(i) if i > 0 && seg.ends_with(']') => {
                res.push(seg[..i].to_string());
                let inner = &seg[i + 1..seg.len() - 1];
                if inner.contains('=') {
                    res.push(format!("[{inner}]"));
                } else {
                    res.push(inner.to_string());
                }
            }
            _ => res.push(seg),
        }
    }
    res
}

fn seg_match<'a>(v: &'a Value, seg: &str) -> Vec<&'a Value> {
    if let Some(inner) = seg.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        let (k, want) = inner.split_once('=').unwrap_or((inner, ""));
        return v
            .as_seq()
            .map(|items| {
                items
                    .iter()
                    .filter(|i| i.get(k).and_then(Value::scalar_text).as_deref() == Some(want))
                    .collect()
            })
            .unwrap_or_default();
    }
    match v {
        Value::Seq(items) if seg == "*" => items.iter().collect(),
        Value::Seq(items) => seg
            .parse::<usize>()
            .ok()
            .and_then(|i| items.get(i))
            .into_iter()
            .collect(),
        Value::Map(m) if seg == "*" => m.iter().map(|(_, v)| v).collect(),
        Value::Map(m) => m.get(seg).into_iter().collect(),
        _ => Vec::new(),
    }
}

/// Reads the value at a field path.
pub fn lookup<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = vec![v];
    for seg in path {
        cur = cur.into_iter().flat_map(|x| seg_match(x, seg)).collect();
    }
    cur.into_iter().next()
}

/// Visits (creating when asked) every value at a field path.
fn visit_mut(
    v: &mut Value,
    path: &[String],
    create: bool,
    f: &mut dyn FnMut(&mut Value) -> Result<()>,
) -> Result<()> {
    let Some((seg, rest)) = path.split_first() else {
        return f(v);
    };
    if let Some(inner) = seg.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        let (k, want) = inner.split_once('=').unwrap_or((inner, ""));
        if let Value::Seq(items) = v {
            let mut hit = false;
            for it in items.iter_mut() {
                if it.get(k).and_then(Value::scalar_text).as_deref() == Some(want) {
                    hit = true;
                    visit_mut(it, rest, create, f)?;
                }
            }
            if !hit && create {
                let mut m = Map::new();
                m.insert(k, Value::Str(want.to_string()));
                let mut nv = Value::Map(m);
                visit_mut(&mut nv, rest, create, f)?;
                items.push(nv);
            }
        }
        return Ok(());
    }
    match v {
        Value::Seq(items) => {
            if seg == "*" {
                for it in items.iter_mut() {
                    visit_mut(it, rest, create, f)?;
                }
            } else if let Some(it) = seg.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                visit_mut(it, rest, create, f)?;
            }
            Ok(())
        }
        Value::Map(m) => {
            if seg == "*" {
                for (_, it) in m.iter_mut() {
                    visit_mut(it, rest, create, f)?;
                }
                return Ok(());
            }
            if !m.contains_key(seg) {
                if !create {
                    return Ok(());
                }
                let init = match rest.first() {
                    Some(n) if n.starts_with('[') => Value::Seq(Vec::new()),
                    Some(_) => Value::Map(Map::new()),
                    None => Value::Null,
                };
                m.insert(seg.clone(), init);
            }
            visit_mut(m.get_mut(seg).expect("present"), rest, create, f)
        }
        Value::Null if create => {
            *v = Value::Map(Map::new());
            visit_mut(v, path, create, f)
        }
        _ => Ok(()),
    }
}

fn find_source<'a>(m: &'a ResMap, sel: &Value) -> Result<Vec<&'a Resource>> {
    let s = Selector::from_value(sel)?;
    let mut out = Vec::new();
    for r in &m.list {
        if s.matches_any_id(r)? {
            out.push(r);
        }
    }
    Ok(out)
}

/// Binds a var to the one resource its `objref` names, among the resources known where
/// the var is declared.
pub fn bind_var(m: &mut ResMap, v: &Value) -> Result<()> {
    let name = v
        .get("name")
        .and_then(Value::scalar_text)
        .unwrap_or_default();
    let objref = v.get("objref").cloned().unwrap_or_default();
    let s = |k: &str| {
        objref
            .get(k)
            .and_then(Value::scalar_text)
            .unwrap_or_default()
    };
    let gvk = crate::resource::Gvk::from_api_version(&s("apiVersion"), &s("kind"));
    let (oname, ons) = (s("name"), s("namespace"));
    let hits = m.positions_by_any_id(|id| {
        id.gvk.is_selected_by(&gvk)
            && id.name == oname
            && (ons.is_empty() || id.effective_namespace() == ons)
    });
    if hits.len() > 1 {
        return Err(msg(format!(
            "found {} resId matches for var {name} (unable to disambiguate)",
            hits.len()
        )));
    }
    if let Some(&i) = hits.first() {
        m.list[i].ref_vars.push(name);
    }
    Ok(())
}

/// Resolves `$(VAR)` references in the var-reference fields.
pub fn resolve_vars(m: &mut ResMap, vars: &[Value], specs: &[FieldSpec]) -> Result<()> {
    if vars.is_empty() {
        return Ok(());
    }
    let mut values: Vec<(String, Value)> = Vec::new();
    for v in vars {
        let name = v
            .get("name")
            .and_then(Value::scalar_text)
            .unwrap_or_default();
        let hits: Vec<&Resource> = m
            .list
            .iter()
            .filter(|r| r.ref_vars.contains(&name))
            .collect();
        if hits.len() != 1 {
            return Err(msg(format!(
                "var '{name}' cannot be mapped to a field in the set of known resources"
            )));
        }
        let fp = v
            .get("fieldref")
            .and_then(|f| f.get("fieldPath").or_else(|| f.get("fieldpath")))
            .and_then(Value::scalar_text)
            .unwrap_or_else(|| "metadata.name".into());
        let path = split_field_path(&fp);
        let val = lookup(&hits[0].to_value(), &path).cloned().ok_or_else(|| {
            msg(format!(
                "field specified in var '{name}' not found in corresponding resource"
            ))
        })?;
        values.push((name, val));
    }
    for r in &mut m.list {
        let gvk = r.gvk();
        let mut obj = Value::Map(std::mem::take(&mut r.obj));
        for fs in specs {
            if !gvk.is_selected_by(&fs.gvk) {
                continue;
            }
            walk(&mut obj, &fs.path, false, &mut |v| {
                substitute(v, &values);
                Ok::<(), crate::error::Error>(())
            })?;
        }
        if let Value::Map(o) = obj {
            r.obj = o;
        }
    }
    Ok(())
}

fn substitute(v: &mut Value, values: &[(String, Value)]) {
    match v {
        Value::Str(s) => {
            for (name, val) in values {
                let pat = format!("$({name})");
                if *s == pat {
                    *v = val.clone();
                    return;
                }
                if s.contains(&pat) {
                    let text = val.scalar_text().unwrap_or_default();
                    *s = s.replace(&pat, &text);
                }
            }
        }
        Value::Seq(items) => {
            for it in items {
                substitute(it, values);
            }
        }
        Value::Map(m) => {
            for (_, it) in m.iter_mut() {
                substitute(it, values);
            }
        }
        _ => {}
    }
}

/// Applies one replacement (`source` + `targets`).
pub fn apply_replacement(m: &mut ResMap, rep: &Value) -> Result<()> {
    let src = rep
        .get("source")
        .ok_or_else(|| msg("replacement lacks a source"))?;
    let describe = |v: &Value| crate::yaml::emit::to_json(v);
    let hits = find_source(m, src)?;
    match hits.len() {
        1 => {}
        0 => return Err(msg(format!("nothing selected by {}", describe(src)))),
        _ => {
            return Err(msg(format!(
                "multiple matches for selector {}",
                describe(src)
            )));
        }
    }
    let fp = src
        .get("fieldPath")
        .and_then(Value::scalar_text)
        .filter(|f| !f.is_empty())
        .unwrap_or_else(|| "metadata.name".into());
    let mut value = lookup(&hits[0].to_value(), &split_field_path(&fp))
        .filter(|v| !is_nil_or_empty(v))
        .cloned()
        .ok_or_else(|| {
            msg(format!(
                "fieldPath `{fp}` is missing for replacement source {}",
                hits[0].cur_id()
            ))
        })?;
    if let Some(o) = src.get("options") {
        let delim = o
            .get("delimiter")
            .and_then(Value::scalar_text)
            .unwrap_or_default();
        if !delim.is_empty() {
            let idx = match o.get("index") {
                Some(Value::Int(i)) => *i,
                _ => 0,
            };
            let Some(text) = value.scalar_text() else {
                return Err(msg("delimiter option can only be used with scalar nodes"));
            };
            let parts: Vec<&str> = text.split(delim.as_str()).collect();
            if idx < 0 || idx as usize >= parts.len() {
                return Err(msg(format!(
                    "options.index {idx} is out of bounds for value {text}"
                )));
            }
            // The piece keeps the source node's style: a string that was plain is read
            // again as plain text.
            value = crate::yaml::parse::resolve_plain(parts[idx as usize]);
        }
    }
    for t in rep
        .get("targets")
        .and_then(Value::as_seq)
        .into_iter()
        .flatten()
    {
        let sel = t
            .get("select")
            .ok_or_else(|| msg("target must specify resources to select"))
            .and_then(Selector::from_value)?;
        let rejects: Vec<Selector> = t
            .get("reject")
            .and_then(Value::as_seq)
            .map(|s| s.iter().map(Selector::from_value).collect::<Result<_>>())
            .transpose()?
            .unwrap_or_default();
        let opts = t.get("options");
        let create = matches!(opts.and_then(|o| o.get("create")), Some(Value::Bool(true)));
        let delim = opts
            .and_then(|o| o.get("delimiter"))
            .and_then(Value::scalar_text)
            .unwrap_or_default();
        let idx = match opts.and_then(|o| o.get("index")) {
            Some(Value::Int(i)) => *i,
            _ => 0,
        };
        let mut paths: Vec<String> = t
            .get("fieldPaths")
            .and_then(Value::as_seq)
            .map(|s| s.iter().filter_map(Value::scalar_text).collect())
            .unwrap_or_default();
        if paths.is_empty() {
            paths.push("metadata.name".into());
        }
        for r in &mut m.list {
            if !sel.matches_any_id(r)? {
                continue;
            }
            let mut rejected = false;
            for rj in &rejects {
                if rj.matches_any_id(r)? {
                    rejected = true;
                }
            }
            if rejected {
                continue;
            }
            let mut obj = Value::Map(std::mem::take(&mut r.obj));
            let mut result = Ok(());
            for fp in &paths {
                let path = split_field_path(fp);
                let mut hits = 0usize;
                let res = visit_mut(&mut obj, &path, create, &mut |v| {
                    hits += 1;
                    set_target(v, &value, &delim, idx)
                });
                if let Err(e) = res {
                    result = Err(e);
                    break;
                }
                if hits == 0 {
                    let what = if create { "find or create" } else { "find" };
                    result = Err(msg(format!(
                        "unable to {what} field \"{fp}\" in replacement target"
                    )));
                    break;
                }
            }
            if let Value::Map(o) = obj {
                r.obj = o;
            }
            result?;
        }
    }
    Ok(())
}

fn is_nil_or_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Map(m) => m.is_empty(),
        Value::Seq(s) => s.is_empty(),
        _ => false,
    }
}

/// Writes a replacement value into a target field. A scalar target keeps its own style
/// upstream (only the text changes): a string target stays a string, a plain number or
/// boolean target reads the new text as plain YAML again.
fn set_target(v: &mut Value, value: &Value, delim: &str, idx: i64) -> Result<()> {
    let target_is_str = matches!(v, Value::Str(_));
    let target_scalar = !matches!(v, Value::Map(_) | Value::Seq(_));
    if !delim.is_empty() {
        let Some(cur) = v.scalar_text().or_else(|| v.is_null().then(String::new)) else {
            return Err(msg("delimiter option can only be used with scalar nodes"));
        };
        let mut parts: Vec<String> = cur.split(delim).map(str::to_string).collect();
        let text = value.scalar_text().unwrap_or_default();
        if idx < 0 {
            parts.insert(0, text);
        } else if idx as usize >= parts.len() {
            parts.push(text);
        } else {
            parts[idx as usize] = text;
        }
        let joined = parts.join(delim);
        *v = if target_is_str {
            Value::Str(joined)
        } else {
            crate::yaml::parse::resolve_plain(&joined)
        };
        return Ok(());
    }
    match value {
        Value::Map(_) | Value::Seq(_) => *v = value.clone(),
        _ if target_scalar && !v.is_null() => {
            let text = value.scalar_text().unwrap_or_default();
            *v = if target_is_str {
                Value::Str(text)
            } else {
                crate::yaml::parse::resolve_plain(&text)
            };
        }
        _ => *v = value.clone(),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse_documents;

    #[test]
    fn field_paths_with_selectors() {
        let v = parse_documents(
            "spec:\n  containers:\n  - name: a\n    image: x\n  - name: b\n    image: y\n",
        )
        .expect("ok")
        .remove(0);
        let p = split_field_path("spec.containers.[name=b].image");
        assert_eq!(lookup(&v, &p), Some(&Value::from("y")));
        assert_eq!(
            lookup(&v, &split_field_path("spec.containers.0.name")),
            Some(&Value::from("a"))
        );
    }

    #[test]
    fn vars_substitute_whole_and_embedded_references() {
        let mut vals = Value::from("--host=$(SVC)");
        substitute(&mut vals, &[("SVC".into(), Value::from("db"))]);
        assert_eq!(vals, Value::from("--host=db"));
        let mut whole = Value::from("$(PORT)");
        substitute(&mut whole, &[("PORT".into(), Value::Int(80))]);
        assert_eq!(whole, Value::Int(80));
    }

    #[test]
    fn replacements_copy_fields_with_delimiters_and_create() {
        let mut m = ResMap::default();
        for d in parse_documents("apiVersion: v1\nkind: Service\nmetadata:\n  name: db\n  namespace: data\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n      - name: app\n        env:\n        - name: DB\n          value: x.svc:5432\n").expect("ok") {
            if let Value::Map(o) = d {
                m.append(Resource::new(o)).expect("unique");
            }
        }
        let rep = parse_documents("source:\n  kind: Service\n  name: db\n  fieldPath: metadata.namespace\ntargets:\n- select:\n    kind: Deployment\n  fieldPaths:\n  - spec.template.spec.containers.[name=app].env.[name=DB].value\n  - metadata.annotations.ns\n  options:\n    delimiter: '.'\n    index: 0\n    create: true\n").expect("ok").remove(0);
        apply_replacement(&mut m, &rep).expect("applies");
        let d = m.list[1].to_value();
        let env = lookup(
            &d,
            &split_field_path("spec.template.spec.containers.0.env.0.value"),
        );
        assert_eq!(env, Some(&Value::from("data.svc:5432")));
        assert_eq!(
            d.path(&["metadata", "annotations", "ns"]),
            Some(&Value::from("data"))
        );
    }
}
