//! Transformer configuration: the built-in field specs merged with `configurations:` files
//! and the field specs derived from `crds:` OpenAPI definitions.

use super::*;

/// Transformer configuration merged from built-ins, `configurations` and `crds`.
#[derive(Clone, Default)]
pub struct TConfig {
    pub(crate) sections: Vec<(String, FieldSpec)>,
    pub(crate) name_refs: Vec<(Gvk, FieldSpec)>,
}

impl TConfig {
    pub(crate) fn builtin() -> Self {
        let b = builtins();
        let mut t = TConfig {
            sections: Vec::new(),
            name_refs: b.name_refs.clone(),
        };
        for s in [
            "commonLabels",
            "templateLabels",
            "commonAnnotations",
            "namePrefix",
            "nameSuffix",
            "namespace",
            "images",
            "replicas",
            "varReference",
            "volumeClaimTemplateLabels",
        ] {
            for fs in b.section(s) {
                t.sections.push((s.to_string(), fs));
            }
        }
        t
    }

    pub(crate) fn section(&self, s: &str) -> Vec<FieldSpec> {
        let mut v: Vec<FieldSpec> = self
            .sections
            .iter()
            .filter(|(n, _)| n == s)
            .map(|(_, f)| f.clone())
            .collect();
        if s == "nameSuffix" && v.is_empty() {
            v = self.section("namePrefix");
        }
        v
    }

    pub(crate) fn merge_config(&mut self, cfg: &Value) {
        let Some(m) = cfg.as_map() else { return };
        for (k, v) in m.iter() {
            if k == "nameReference" {
                for nr in v.as_seq().into_iter().flatten() {
                    let s =
                        |key: &str| nr.get(key).and_then(Value::scalar_text).unwrap_or_default();
                    let target = Gvk {
                        group: s("group"),
                        version: s("version"),
                        kind: s("kind"),
                    };
                    for fs in nr
                        .get("fieldSpecs")
                        .and_then(Value::as_seq)
                        .into_iter()
                        .flatten()
                    {
                        if let Some(f) = FieldSpec::from_value(fs)
                            && !self.name_refs.iter().any(|(g, x)| *g == target && *x == f)
                        {
                            self.name_refs.push((target.clone(), f));
                        }
                    }
                }
            } else if let Some(list) = v.as_seq() {
                for fs in list {
                    let Some(f) = FieldSpec::from_value(fs) else {
                        continue;
                    };
                    if self.sections.iter().any(|(n, x)| n == k && *x == f) {
                        continue;
                    }
                    // A kind-specific spec replaces a generic one on the same path (what
                    // upstream does, e.g. `namePrefix` limited to some kinds).
                    let generic = self.sections.iter().position(|(n, x)| {
                        n == k
                            && x.path == f.path
                            && x.gvk == Gvk::default()
                            && f.gvk != Gvk::default()
                    });
                    match generic {
                        Some(i) => self.sections[i] = (k.clone(), f),
                        None => self.sections.push((k.clone(), f)),
                    }
                }
            }
        }
    }

    pub(crate) fn merge(&mut self, other: &TConfig) {
        for (n, f) in &other.sections {
            if !self.sections.iter().any(|(a, b)| a == n && b == f) {
                self.sections.push((n.clone(), f.clone()));
            }
        }
        for (g, f) in &other.name_refs {
            if !self.name_refs.iter().any(|(a, b)| a == g && b == f) {
                self.name_refs.push((g.clone(), f.clone()));
            }
        }
    }
}

/// Field specs from OpenAPI definitions of custom types (`crds:`): a map from type name
/// to `{Schema: {properties}}`; `x-kubernetes-*` extensions mark annotations, label
/// selectors, identities and object references.
pub(crate) fn crds_config(text: &str, cfg: &mut TConfig) {
    let Ok(docs) = parse_documents(text) else {
        return;
    };
    for d in docs {
        let Some(defs) = d.as_map() else { continue };
        for (name, def) in defs.iter() {
            let Some(props) = def.path(&["Schema", "properties"]).and_then(Value::as_map) else {
                continue;
            };
            if !(props.contains_key("kind")
                && props.contains_key("apiVersion")
                && props.contains_key("metadata"))
            {
                continue;
            }
            let kind = name.rsplit('.').next().unwrap_or(name).to_string();
            crd_walk(defs, name, &kind, &mut Vec::new(), cfg, 0);
        }
    }
}

pub(crate) fn crd_walk(
    defs: &Map,
    type_name: &str,
    kind: &str,
    path: &mut Vec<String>,
    cfg: &mut TConfig,
    depth: usize,
) {
    if depth > 20 {
        return;
    }
    let Some(props) = defs
        .get(type_name)
        .and_then(|d| d.path(&["Schema", "properties"]))
        .and_then(Value::as_map)
    else {
        return;
    };
    let gvk = Gvk {
        kind: kind.to_string(),
        ..Default::default()
    };
    for (name, p) in props.iter() {
        path.push(name.clone());
        let fs = |path: &Vec<String>| FieldSpec {
            gvk: gvk.clone(),
            path: path.clone(),
            create: false,
        };
        if p.get("x-kubernetes-annotation").is_some() {
            cfg.sections.push(("commonAnnotations".into(), fs(path)));
        }
        if p.get("x-kubernetes-label-selector").is_some() {
            cfg.sections.push(("commonLabels".into(), fs(path)));
        }
        if p.get("x-kubernetes-identity").is_some() {
            cfg.sections.push(("namePrefix".into(), fs(path)));
        }
        if let (Some(version), Some(rk)) = (
            p.get("x-kubernetes-object-ref-api-version")
                .and_then(Value::scalar_text),
            p.get("x-kubernetes-object-ref-kind")
                .and_then(Value::scalar_text),
        ) {
            let key = p
                .get("x-kubernetes-object-ref-name-key")
                .and_then(Value::scalar_text)
                .unwrap_or_else(|| "name".into());
            let mut full = path.clone();
            full.push(key);
            let target = Gvk {
                kind: rk,
                version,
                ..Default::default()
            };
            cfg.name_refs.push((target, fs(&full)));
        }
        if let Some(r) = p.get("$ref").and_then(Value::as_str) {
            crd_walk(defs, r, kind, path, cfg, depth + 1);
        }
        path.pop();
    }
}
