//! What `helm template` adds around a render: user values from values files, `--set` and
//! `--set-string`, and the printed stream (CRDs on request, the manifest, then the hooks,
//! `--show-only` filtering).

use serde_json::Value;

use crate::render::Rendered;

/// Helm's `values.Options.MergeValues`: values files (their text, in order), then `--set`
/// lines, then `--set-string` lines.
///
/// # Errors
/// A values file that is not YAML, or a malformed `--set` line, in Helm's words.
pub fn user_values(
    values_files: &[(String, String)],
    set: &[String],
    set_string: &[String],
) -> Result<Value, String> {
    let mut base = Value::Object(Default::default());
    for (name, text) in values_files {
        let mut current: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            crate::chart::lenient_yaml(text).map_err(|e| format!("failed to parse {name}: {e}"))?
        };
        if current.is_null() {
            current = Value::Object(Default::default());
        }
        if !current.is_object() {
            return Err(format!(
                "failed to parse {name}: error unmarshaling JSON: while decoding JSON: json: cannot unmarshal into Go value of type map[string]interface {{}}"
            ));
        }
        crate::chart::float_numbers(&mut current);
        crate::chartutil::merge_maps(&mut base, current);
    }
    for (lines, force) in [(set, false), (set_string, true)] {
        for line in lines {
            if let Value::Object(m) = &mut base {
                let what = if force { "set-string" } else { "set" };
                crate::strvals::parse_into(line, m, force)
                    .map_err(|e| format!("failed parsing --{what} data: {e}"))?;
            }
        }
    }
    Ok(base)
}

/// The text `helm template` prints for a render: with `include_crds` the CRDs first, the
/// release manifest, then every hook; with `show_only` only the documents rendered from
/// matching template paths (Go's `filepath.Match` on the path below the chart name).
///
/// # Errors
/// `could not find template PATTERN in chart`.
pub fn template_output(
    rendered: &Rendered,
    include_crds: bool,
    show_only: &[String],
) -> Result<String, String> {
    let mut body = String::new();
    if include_crds {
        for (path, content) in &rendered.crds {
            body.push_str(&format!("---\n# Source: {path}\n{content}\n"));
        }
    }
    body.push_str(&rendered.manifest);
    let mut out = format!("{}\n", body.trim());
    for h in &rendered.hooks {
        out.push_str(&format!("---\n# Source: {}\n{}\n", h.path, h.manifest));
    }
    if show_only.is_empty() {
        return Ok(out);
    }
    let docs = crate::manifest::split_manifests(&out);
    let mut selected = String::new();
    for pattern in show_only {
        let mut found = false;
        for doc in &docs {
            let Some(source) = doc.lines().find_map(|l| l.strip_prefix("# Source: ")) else {
                continue;
            };
            let Some((_, rest)) = source.split_once('/') else {
                continue;
            };
            if glob_match(pattern, rest) {
                selected.push_str(&format!("---\n{doc}\n"));
                found = true;
            }
        }
        if !found {
            return Err(format!("could not find template {pattern} in chart"));
        }
    }
    Ok(selected)
}

/// Go's `filepath.Match` for `*`, `?` and literal characters.
fn glob_match(pattern: &str, name: &str) -> bool {
    fn rec(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len())
                .take_while(|i| *i == 0 || n[i - 1] != '/')
                .any(|i| rec(&p[1..], &n[i..])),
            Some('?') => !n.is_empty() && n[0] != '/' && rec(&p[1..], &n[1..]),
            Some(c) => n.first() == Some(c) && rec(&p[1..], &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    rec(&p, &n)
}
