//! Reading a kustomization file: case-insensitive field names, defaults and the checks
//! upstream applies (kind, apiVersion), deprecated spellings, refused features.

use super::*;

/// The one Kubernetes OpenAPI version upstream kustomize has built in.
pub(crate) const BUILTIN_OPENAPI_VERSION: &str = "v1.21.2";

/// The top-level fields of a kustomization file; others are refused (matched
/// case-insensitively, as Go's JSON decoding does).
pub const KNOWN_FIELDS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "resources",
    "bases",
    "components",
    "namespace",
    "namePrefix",
    "nameSuffix",
    "commonLabels",
    "labels",
    "commonAnnotations",
    "patches",
    "patchesStrategicMerge",
    "patchesJson6902",
    "images",
    "imageTags",
    "replicas",
    "configMapGenerator",
    "secretGenerator",
    "generatorOptions",
    "vars",
    "replacements",
    "crds",
    "openapi",
    "sortOptions",
    "buildMetadata",
    "configurations",
    "transformers",
    "generators",
    "validators",
    "helmCharts",
    "helmGlobals",
    "helmChartInflationGenerator",
];

pub(crate) fn parse_kustomization(text: &str, file: &Path) -> Result<Map> {
    let docs =
        crate::yaml::parse::parse_documents_with(text, true).map_err(|e| yaml_err(file, e))?;
    let mut k = match docs.into_iter().find(|d| !d.is_null()) {
        Some(Value::Map(m)) => m,
        None => Map::new(),
        Some(_) => {
            return Err(msg(format!(
                "{}: a kustomization must be a mapping",
                file.display()
            )));
        }
    };
    // Field names match case-insensitively, as Go's JSON decoding does.
    let keys: Vec<String> = k.keys().cloned().collect();
    for key in keys {
        if !KNOWN_FIELDS.iter().any(|f| f.eq_ignore_ascii_case(&key)) {
            return Err(msg(format!(
                "{}: invalid Kustomization: json: unknown field \"{key}\"",
                file.display()
            )));
        }
        if let Some(canon) = KNOWN_FIELDS
            .iter()
            .find(|f| f.eq_ignore_ascii_case(&key) && **f != key)
            && !k.contains_key(canon)
            && let Some(v) = k.remove(&key)
        {
            k.insert(*canon, v);
        }
    }
    // Upstream's FixKustomization and EnforceFields: default kind and apiVersion, then
    // check they agree.
    let kind = k
        .get("kind")
        .and_then(Value::scalar_text)
        .unwrap_or_default();
    let kind = if kind.is_empty() {
        "Kustomization".to_string()
    } else {
        kind
    };
    let required = if kind == "Component" {
        "kustomize.config.k8s.io/v1alpha1"
    } else {
        "kustomize.config.k8s.io/v1beta1"
    };
    let api_version = k
        .get("apiVersion")
        .and_then(Value::scalar_text)
        .unwrap_or_default();
    let mut errs = Vec::new();
    if kind != "Kustomization" && kind != "Component" {
        errs.push("kind should be Kustomization or Component".to_string());
    }
    if !api_version.is_empty() && api_version != required {
        errs.push(format!("apiVersion for {kind} should be {required}"));
    }
    if !errs.is_empty() {
        let dir = file.parent().unwrap_or(file);
        return Err(msg(format!(
            "Failed to read kustomization file under {}:\n{}",
            dir.display(),
            errs.join("\n")
        )));
    }
    k.insert("kind", Value::Str(kind));
    // Deprecated spellings.
    if let Some(Value::Seq(bases)) = k.remove("bases") {
        let mut res = seq(&k, "resources");
        res.extend(bases);
        k.insert("resources", Value::Seq(res));
    }
    if let Some(Value::Seq(tags)) = k.remove("imageTags") {
        let mut im = seq(&k, "images");
        im.extend(tags);
        k.insert("images", Value::Seq(im));
    }
    if k.contains_key("helmCharts") || k.contains_key("helmChartInflationGenerator") {
        return Err(msg(format!(
            "{}: helmCharts are not supported yet (render the chart with Helm and list its output under resources)",
            file.display()
        )));
    }
    Ok(k)
}
