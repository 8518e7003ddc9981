//! Values as Helm computes them: `CoalesceValues`/`MergeValues` (chart defaults < the
//! parent's section for a subchart < user values, `null` deleting a key, `global` copied
//! down to every subchart) and `ProcessDependencies` (conditions, tags, aliases,
//! `import-values`).

use serde_json::Value;

use crate::chart::Chart;

/// A values table (Helm's `map[string]any`).
pub type Table = serde_json::Map<String, Value>;

/// Helm's `GlobalKey`.
const GLOBAL_KEY: &str = "global";

/// Helm's `CoalesceValues` (`merge` false: a `null` deletes the key) and `MergeValues`
/// (`merge` true: nulls are kept) of `vals` over the chart's defaults, subcharts included.
///
/// # Errors
/// A subchart's section that is not a table (`type mismatch on NAME`).
pub fn coalesce_values(chart: &Chart, vals: &Table, merge: bool) -> Result<Table, String> {
    let mut dest = vals.clone();
    coalesce(chart, &mut dest, merge)?;
    Ok(dest)
}

fn coalesce(chart: &Chart, dest: &mut Table, merge: bool) -> Result<(), String> {
    coalesce_chart_values(chart, dest, merge);
    coalesce_deps(chart, dest, merge)
}

fn coalesce_deps(chart: &Chart, dest: &mut Table, merge: bool) -> Result<(), String> {
    for sub in &chart.dependencies {
        let name = sub.name().to_string();
        let mut section = match dest.remove(&name) {
            None => Table::new(),
            Some(Value::Object(m)) => m,
            Some(other) => {
                let shown = go_t_verb(&other);
                dest.insert(name.clone(), other);
                return Err(format!("type mismatch on {name}: {shown}"));
            }
        };
        coalesce_globals(&mut section, dest);
        coalesce(sub, &mut section, merge)?;
        dest.insert(name, Value::Object(section));
    }
    Ok(())
}

/// Go's `%t` of a value that is not a bool.
fn go_t_verb(v: &Value) -> String {
    match v {
        Value::Bool(b) => b.to_string(),
        Value::String(s) => format!("%!t(string={s})"),
        Value::Number(n) if n.is_f64() => format!("%!t(float64={n})"),
        Value::Number(n) => format!("%!t(int64={n})"),
        Value::Null => "%!t(<nil>)".into(),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "map[]".into(),
    }
}

/// Copies the parent's `global` into a subchart's section; the parent's globals win.
fn coalesce_globals(dest: &mut Table, src: &Table) {
    let mut dg = match dest.get(GLOBAL_KEY) {
        None => Table::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return,
    };
    let sg = match src.get(GLOBAL_KEY) {
        None => Table::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return,
    };
    for (key, val) in sg {
        match val {
            Value::Object(vv) => match dg.get(&key) {
                None => {
                    dg.insert(key, Value::Object(vv));
                }
                Some(Value::Object(destv)) => {
                    let mut vv = vv;
                    coalesce_tables(&mut vv, destv.clone(), true);
                    dg.insert(key, Value::Object(vv));
                }
                // A table cannot be merged onto a non-table: Helm skips it.
                Some(_) => {}
            },
            other => {
                if !matches!(dg.get(&key), Some(Value::Object(_))) {
                    dg.insert(key, other);
                }
            }
        }
    }
    dest.insert(GLOBAL_KEY.into(), Value::Object(dg));
}

/// Helm's `coalesceValues`: the chart's own defaults under the values in `v`.
fn coalesce_chart_values(chart: &Chart, v: &mut Table, merge: bool) {
    for (key, val) in chart.values.clone() {
        match v.get_mut(&key) {
            Some(Value::Null) if !merge => {
                v.remove(&key);
            }
            Some(Value::Object(dest)) => {
                if let Value::Object(mut src) = val {
                    let merge = merge || chart.dependencies.iter().any(|d| d.name() == key);
                    if !merge {
                        clean_nil_values(&mut src);
                    }
                    coalesce_tables(dest, src, merge);
                }
            }
            Some(_) => {}
            None => {
                let mut val = val;
                if !merge {
                    if val.is_null() {
                        continue;
                    }
                    if let Value::Object(sub) = &mut val {
                        clean_nil_values(sub);
                    }
                }
                v.insert(key, val);
            }
        }
    }
}

/// Helm's `coalesceTablesFullKey`: `src` fills what `dst` lacks; with `merge` false a
/// `null` in `dst` over a value in `src` deletes the key.
pub fn coalesce_tables(dst: &mut Table, mut src: Table, merge: bool) {
    let src_non_nil: std::collections::HashSet<String> = src
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, _)| k.clone())
        .collect();
    for (key, val) in dst.iter() {
        if val.is_null() {
            src.insert(key.clone(), Value::Null);
        }
    }
    for (key, val) in src {
        match dst.get_mut(&key) {
            Some(Value::Null) if !merge && src_non_nil.contains(&key) => {
                dst.remove(&key);
            }
            None => {
                dst.insert(key, val);
            }
            Some(dv) => {
                if let (Value::Object(dvm), Value::Object(vm)) = (dv, val) {
                    coalesce_tables(dvm, vm, merge);
                }
            }
        }
    }
}

fn clean_nil_values(m: &mut Table) {
    m.retain(|_, v| !v.is_null());
    for v in m.values_mut() {
        if let Value::Object(sub) = v {
            clean_nil_values(sub);
        }
    }
}

/// Helm's `Values.Table`: the table at a dotted path.
pub fn table<'a>(v: &'a Table, path: &str) -> Option<&'a Table> {
    let mut t = v;
    for part in path.split('.') {
        match t.get(part) {
            Some(Value::Object(m)) => t = m,
            _ => return None,
        }
    }
    Some(t)
}

/// Helm's `Values.PathValue`: the non-table value at a dotted path.
fn path_value<'a>(v: &'a Table, path: &str) -> Option<&'a Value> {
    let (parent, key) = match path.rsplit_once('.') {
        Some((p, k)) => (table(v, p)?, k),
        None => (v, path),
    };
    parent.get(key).filter(|x| !x.is_object())
}

/// Helm's `ProcessDependencies`: drops the subcharts disabled by conditions or tags,
/// renames aliased ones, and imports values from children into parents.
///
/// # Errors
/// A values section of the wrong type.
pub fn process_dependencies(chart: &mut Chart, vals: &Table) -> Result<(), String> {
    process_dependency_enabled(chart, vals, "", 0)?;
    process_dependency_import_values(chart, 0)
}

fn compatible(constraint: &str, version: &str) -> bool {
    let Ok(v) = ferroflux_semver::Version::parse(version) else {
        return false;
    };
    ferroflux_semver::Constraints::parse(constraint).is_ok_and(|c| c.check(&v))
}

fn process_dependency_enabled(
    c: &mut Chart,
    v: &Table,
    path: &str,
    depth: usize,
) -> Result<(), String> {
    if c.metadata.dependencies.is_empty() || depth > crate::chart::MAX_SUBCHART_DEPTH {
        return Ok(());
    }
    let existing = std::mem::take(&mut c.dependencies);
    let mut deps: Vec<Chart> = existing
        .iter()
        .filter(|e| {
            !c.metadata
                .dependencies
                .iter()
                .any(|r| e.name() == r.name && compatible(&r.version, &e.metadata.version))
        })
        .cloned()
        .collect();
    for req in &mut c.metadata.dependencies {
        let found = existing
            .iter()
            .find(|e| e.name() == req.name && compatible(&req.version, &e.metadata.version));
        if let Some(found) = found {
            let mut copy = found.clone();
            if !req.alias.is_empty() {
                copy.metadata.name = req.alias.clone();
            }
            deps.push(copy);
        }
        if !req.alias.is_empty() {
            req.name = req.alias.clone();
        }
        req.enabled = true;
    }
    c.dependencies = deps;
    let cvals = coalesce_values(c, v, false)?;
    process_dependency_tags(&mut c.metadata.dependencies, &cvals);
    process_dependency_conditions(&mut c.metadata.dependencies, &cvals, path);
    let removed: Vec<String> = c
        .metadata
        .dependencies
        .iter()
        .filter(|r| !r.enabled)
        .map(|r| r.name.clone())
        .collect();
    c.dependencies
        .retain(|d| !removed.contains(&d.metadata.name));
    c.metadata
        .dependencies
        .retain(|r| !removed.contains(&r.name));
    for t in &mut c.dependencies {
        let subpath = format!("{path}{}.", t.metadata.name);
        process_dependency_enabled(t, &cvals, &subpath, depth + 1)?;
    }
    Ok(())
}

fn process_dependency_tags(reqs: &mut [crate::chartutil::Dependency], cvals: &Table) {
    let Some(tags) = table(cvals, "tags") else {
        return;
    };
    for r in reqs {
        let (mut has_true, mut has_false) = (false, false);
        for k in &r.tags {
            match tags.get(k) {
                Some(Value::Bool(true)) => has_true = true,
                Some(Value::Bool(false)) => has_false = true,
                _ => {}
            }
        }
        // Disabled only when some tag is false and none is true.
        r.enabled = has_true || !has_false;
    }
}

fn process_dependency_conditions(
    reqs: &mut [crate::chartutil::Dependency],
    cvals: &Table,
    path: &str,
) {
    for r in reqs {
        for cond in r.condition.trim().split(',') {
            if cond.is_empty() {
                continue;
            }
            if let Some(Value::Bool(b)) = path_value(cvals, &format!("{path}{cond}")) {
                r.enabled = *b;
                break;
            }
        }
    }
}

fn process_dependency_import_values(c: &mut Chart, depth: usize) -> Result<(), String> {
    if depth > crate::chart::MAX_SUBCHART_DEPTH {
        return Ok(());
    }
    for d in &mut c.dependencies {
        process_dependency_import_values(d, depth + 1)?;
    }
    process_import_values(c)
}

/// `pathToMap`: `a.b` and a table to `{a: {b: table}}`; `.` is the table itself.
fn path_to_map(path: &str, data: Table) -> Table {
    if path == "." {
        return data;
    }
    let mut cur = data;
    for part in path.split('.').rev() {
        let mut m = Table::new();
        m.insert(part.to_string(), Value::Object(cur));
        cur = m;
    }
    cur
}

fn go_sprint(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "<nil>".into(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn process_import_values(c: &mut Chart) -> Result<(), String> {
    if c.metadata.dependencies.is_empty() {
        return Ok(());
    }
    let cvals = coalesce_values(c, &Table::new(), true)?;
    let mut b = Table::new();
    for r in &mut c.metadata.dependencies {
        let mut out = Vec::new();
        for riv in &r.import_values {
            let (child, parent) = match riv {
                Value::Object(iv) => (go_sprint(iv.get("child")), go_sprint(iv.get("parent"))),
                Value::String(s) => (format!("exports.{s}"), ".".to_string()),
                _ => continue,
            };
            let mut entry = Table::new();
            entry.insert("child".into(), Value::String(child.clone()));
            entry.insert("parent".into(), Value::String(parent.clone()));
            out.push(Value::Object(entry));
            let Some(vv) = table(&cvals, &format!("{}.{child}", r.name)) else {
                continue;
            };
            let imported = if riv.is_string() {
                vv.clone()
            } else {
                path_to_map(&parent, vv.clone())
            };
            coalesce_tables(&mut b, imported, true);
        }
        r.import_values = out;
    }
    let mut merged = cvals;
    coalesce_tables(&mut merged, b, true);
    c.values = merged;
    Ok(())
}
