//! The field transformers: namespace, name prefix/suffix, labels, annotations, images and
//! replicas. Each works on a [`ResMap`] and takes its field specs as data.

use crate::error::{Result, msg};
use crate::fieldspec::{FieldSpec, walk};
use crate::resource::{Gvk, ResMap, Resource};
use crate::yaml::{Map, Value};

fn apply_fs(
    r: &mut Resource,
    fs: &FieldSpec,
    f: &mut dyn FnMut(&mut Value) -> Result<()>,
) -> Result<()> {
    let mut v = Value::Map(std::mem::take(&mut r.obj));
    let res = walk(&mut v, &fs.path, fs.create, f);
    if let Value::Map(m) = v {
        r.obj = m;
    }
    res
}

/// Adds `pairs` to the string maps at the field specs (labels, annotations, selectors).
pub fn add_map_entries(
    m: &mut ResMap,
    pairs: &[(String, String)],
    specs: &[FieldSpec],
) -> Result<()> {
    if pairs.is_empty() {
        return Ok(());
    }
    for r in &mut m.list {
        let gvk = r.gvk();
        for fs in specs {
            if !gvk.is_selected_by(&fs.gvk) {
                continue;
            }
            apply_fs(r, fs, &mut |v| {
                if v.is_null() {
                    *v = Value::Map(Map::new());
                }
                let Some(map) = v.as_map_mut() else {
                    return Err(msg(format!(
                        "wrong node kind: expected MappingNode but got {} at {}",
                        kind_name(v),
                        fs.path_string()
                    )));
                };
                for (k, val) in pairs {
                    map.insert(k.clone(), Value::Str(val.clone()));
                }
                Ok(())
            })?;
        }
    }
    Ok(())
}

fn kind_name(v: &Value) -> &'static str {
    match v {
        Value::Seq(_) => "SequenceNode",
        Value::Map(_) => "MappingNode",
        _ => "ScalarNode",
    }
}

/// Sets the namespace of every namespaced resource, plus the extra namespace fields
/// (`specs`) and the `default` service-account subjects of role bindings.
pub fn set_namespace(
    m: &mut ResMap,
    ns: &str,
    specs: &[FieldSpec],
    subjects_mode: &str,
    unset_only: bool,
) -> Result<()> {
    if ns.is_empty() {
        return Ok(());
    }
    for i in 0..m.list.len() {
        let r = &mut m.list[i];
        if r.obj.is_empty() {
            continue;
        }
        r.store_previous_id();
        let gvk = r.gvk();
        let set = |v: &mut Value| {
            if !(unset_only && matches!(v, Value::Str(s) if !s.is_empty())) {
                *v = Value::Str(ns.to_string());
            }
        };
        if !gvk.is_cluster_scoped() {
            let md = r.metadata_mut();
            let mut cur = md.get("namespace").cloned().unwrap_or(Value::Null);
            set(&mut cur);
            md.insert("namespace", cur);
        }
        if (gvk.kind == "RoleBinding" || gvk.kind == "ClusterRoleBinding")
            && let Some(Value::Seq(subjects)) = r.obj.get_mut("subjects")
        {
            for s in subjects.iter_mut() {
                let Some(sm) = s.as_map_mut() else { continue };
                let hit = match subjects_mode {
                    "none" => false,
                    "allServiceAccounts" => {
                        sm.get("kind").and_then(Value::as_str) == Some("ServiceAccount")
                    }
                    _ => sm.get("name").and_then(Value::as_str) == Some("default"),
                };
                if hit {
                    let mut cur = sm.get("namespace").cloned().unwrap_or(Value::Null);
                    set(&mut cur);
                    sm.insert("namespace", cur);
                }
            }
        }
        let api_version = r.api_version();
        for fs in specs {
            let p = fs.path_string();
            if p == "metadata/namespace" {
                continue;
            }
            if p == "metadata/name" && api_version != "v1" {
                continue;
            }
            if (gvk.kind == "RoleBinding" || gvk.kind == "ClusterRoleBinding")
                && p == "subjects/namespace"
            {
                continue;
            }
            if !gvk.is_selected_by(&fs.gvk) {
                continue;
            }
            apply_fs(r, fs, &mut |v| {
                set(v);
                Ok(())
            })?;
        }
    }
    let mut seen = std::collections::HashSet::new();
    for r in &m.list {
        if !seen.insert(ResMap::id_key(r)) {
            return Err(msg(format!(
                "namespace transformation produces ID conflict: {}",
                r.cur_id()
            )));
        }
    }
    Ok(())
}

const PREFIX_SKIP: &[(&str, &str)] = &[
    ("", "CustomResourceDefinition"),
    ("apiregistration.k8s.io", "APIService"),
    ("", "Namespace"),
];

/// Adds a name prefix or suffix at the field specs (normally `metadata/name`).
pub fn add_prefix_suffix(
    m: &mut ResMap,
    prefix: &str,
    suffix: &str,
    specs: &[FieldSpec],
) -> Result<()> {
    for r in &mut m.list {
        let org = r.org_id();
        if PREFIX_SKIP.iter().any(|(g, k)| {
            org.gvk.is_selected_by(&Gvk {
                group: g.to_string(),
                version: String::new(),
                kind: k.to_string(),
            })
        }) {
            continue;
        }
        for fs in specs {
            if !org.gvk.is_selected_by(&fs.gvk) {
                continue;
            }
            if fs.path_string() == "metadata/name" {
                if !prefix.is_empty() {
                    r.prefixes.push(prefix.to_string());
                }
                if !suffix.is_empty() {
                    r.suffixes.push(suffix.to_string());
                }
                if !prefix.is_empty() || !suffix.is_empty() {
                    r.store_previous_id();
                }
            }
            apply_fs(r, fs, &mut |v| {
                if let Some(s) = v.scalar_text() {
                    *v = Value::Str(format!("{prefix}{s}{suffix}"));
                }
                Ok(())
            })?;
        }
    }
    Ok(())
}

/// One `images:` entry.
#[derive(Clone, Debug, Default)]
pub struct ImageOverride {
    /// The image name to match.
    pub name: String,
    /// Replacement name.
    pub new_name: Option<String>,
    /// Replacement tag.
    pub new_tag: Option<String>,
    /// Replacement digest.
    pub digest: Option<String>,
}

impl ImageOverride {
    /// Reads an `images:` entry.
    pub fn from_value(v: &Value) -> Option<Self> {
        let m = v.as_map()?;
        let s = |k: &str| {
            m.get(k)
                .and_then(Value::scalar_text)
                .filter(|s| !s.is_empty())
        };
        Some(ImageOverride {
            name: s("name")?,
            new_name: s("newName"),
            new_tag: s("newTag"),
            digest: s("digest"),
        })
    }
}

/// Splits an image reference into (name, tag-with-colon-or-at, digest).
pub fn split_image(image: &str) -> (String, String, String) {
    let (rest, digest) = match image.split_once('@') {
        Some((a, d)) => (a, format!("@{d}")),
        None => (image, String::new()),
    };
    let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
    match rest[last_slash..].rfind(':') {
        Some(i) => (
            rest[..last_slash + i].to_string(),
            rest[last_slash + i..].to_string(),
            digest,
        ),
        None => (rest.to_string(), String::new(), digest),
    }
}

fn update_image(image: &str, o: &ImageOverride) -> Option<String> {
    let (name, tag, digest) = split_image(image);
    if name != o.name {
        return None;
    }
    let new_name = o.new_name.clone().unwrap_or(name);
    let (mut tag, mut digest) = (tag, digest);
    if let Some(t) = &o.new_tag {
        tag = format!(":{t}");
        digest.clear();
    }
    if let Some(d) = &o.digest {
        digest = format!("@{d}");
        if o.new_tag.is_none() {
            tag.clear();
        }
    }
    Some(format!("{new_name}{tag}{digest}"))
}

/// Applies image overrides to containers, init containers and the configured image fields.
pub fn set_images(m: &mut ResMap, images: &[ImageOverride], specs: &[FieldSpec]) -> Result<()> {
    for r in &mut m.list {
        let gvk = r.gvk();
        for fs in specs {
            if !gvk.is_selected_by(&fs.gvk) {
                continue;
            }
            let mut nf = fs.clone();
            nf.create = false;
            apply_fs(r, &nf, &mut |v| {
                if let Some(s) = v.as_str() {
                    for o in images {
                        if let Some(new) = update_image(s, o) {
                            *v = Value::Str(new);
                            break;
                        }
                    }
                }
                Ok(())
            })?;
        }
        // Containers anywhere under the object (e.g. CRDs embedding pod templates).
        let mut v = Value::Map(std::mem::take(&mut r.obj));
        visit_containers(&mut v, images);
        if let Value::Map(mm) = v {
            r.obj = mm;
        }
    }
    Ok(())
}

fn visit_containers(v: &mut Value, images: &[ImageOverride]) {
    match v {
        Value::Map(m) => {
            for (k, child) in m.iter_mut() {
                if (k == "containers" || k == "initContainers")
                    && let Value::Seq(items) = child
                {
                    for it in items.iter_mut() {
                        if let Some(Value::Str(s)) = it.get_mut("image") {
                            for o in images {
                                if let Some(new) = update_image(s, o) {
                                    *s = new;
                                    break;
                                }
                            }
                        }
                    }
                }
                visit_containers(child, images);
            }
        }
        Value::Seq(items) => {
            for it in items {
                visit_containers(it, images);
            }
        }
        _ => {}
    }
}

/// Sets replica counts for resources named `name` (under any of their names so far);
/// naming nothing is an error, as upstream.
pub fn set_replicas(m: &mut ResMap, name: &str, count: i64, specs: &[FieldSpec]) -> Result<()> {
    let mut found = false;
    for fs in specs {
        for r in &mut m.list {
            if !r.any_id(|id| id.gvk.is_selected_by(&fs.gvk) && id.name == name) {
                continue;
            }
            found = true;
            if !r.gvk().is_selected_by(&fs.gvk) {
                continue;
            }
            apply_fs(r, fs, &mut |v| {
                *v = Value::Int(count);
                Ok(())
            })?;
        }
    }
    if !found {
        // Upstream lists them in its sorted field-spec order (legacy kind order first).
        let (first, last) = crate::nameref::default_order();
        let rank = |k: &str| -> i64 {
            if let Some(i) = first.iter().position(|x| x == k) {
                i as i64 - first.len() as i64
            } else if let Some(i) = last.iter().position(|x| x == k) {
                1 + i as i64
            } else {
                0
            }
        };
        let mut sorted: Vec<&FieldSpec> = specs.iter().collect();
        sorted.sort_by(|a, b| {
            rank(&a.gvk.kind)
                .cmp(&rank(&b.gvk.kind))
                .then_with(|| a.gvk.to_string().cmp(&b.gvk.to_string()))
        });
        let gvks: Vec<String> = sorted.iter().map(|f| f.gvk.to_string()).collect();
        return Err(msg(format!(
            "resource with name {name} does not match a config with the following GVK [{}]",
            gvks.join(" ")
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fieldspec::builtins;

    const DEPLOY: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n      - name: a\n        image: nginx:1.0\n";

    #[test]
    fn common_labels_reach_selectors_and_templates() {
        let mut m = ResMap::from_yaml_for_test(DEPLOY);
        let pairs = vec![("app".to_string(), "x".to_string())];
        add_map_entries(&mut m, &pairs, &builtins().section("commonLabels")).expect("ok");
        let obj = m.list[0].to_value();
        assert!(
            obj.path(&["spec", "selector", "matchLabels", "app"])
                .is_some()
        );
        assert!(
            obj.path(&["spec", "template", "metadata", "labels", "app"])
                .is_some()
        );
        assert!(obj.path(&["metadata", "labels", "app"]).is_some());
    }

    #[test]
    fn namespace_skips_cluster_scoped_kinds() {
        let mut m = ResMap::from_yaml_for_test(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: r\n",
        );
        set_namespace(&mut m, "prod", &builtins().section("namespace"), "", false).expect("ok");
        assert_eq!(m.list[0].namespace(), "prod");
        assert_eq!(m.list[1].namespace(), "");
        assert_eq!(m.list[0].prev.len(), 1);
    }

    #[test]
    fn prefix_and_suffix_rename_and_remember_the_old_name() {
        let mut m = ResMap::from_yaml_for_test(DEPLOY);
        add_prefix_suffix(&mut m, "p-", "", &builtins().section("namePrefix")).expect("ok");
        add_prefix_suffix(&mut m, "", "-s", &builtins().section("namePrefix")).expect("ok");
        assert_eq!(m.list[0].name(), "p-web-s");
        assert_eq!(m.list[0].org_id().name, "web");
        assert_eq!(m.list[0].prefixes, vec!["p-"]);
        assert_eq!(m.list[0].suffixes, vec!["-s"]);
    }

    #[test]
    fn images_get_new_name_tag_and_digest() {
        let o = ImageOverride {
            name: "nginx".into(),
            new_name: Some("reg/nginx".into()),
            new_tag: Some("2.0".into()),
            digest: None,
        };
        assert_eq!(
            update_image("nginx:1.0", &o).as_deref(),
            Some("reg/nginx:2.0")
        );
        assert_eq!(update_image("other:1.0", &o), None);
        let d = ImageOverride {
            name: "nginx".into(),
            digest: Some("sha256:abc".into()),
            ..Default::default()
        };
        assert_eq!(
            update_image("nginx:1.0", &d).as_deref(),
            Some("nginx@sha256:abc")
        );
        assert_eq!(
            split_image("host:5000/a/b:t"),
            ("host:5000/a/b".into(), ":t".into(), String::new())
        );
    }

    #[test]
    fn replicas_are_set_by_name() {
        let mut m = ResMap::from_yaml_for_test(DEPLOY);
        set_replicas(&mut m, "web", 3, &builtins().section("replicas")).expect("ok");
        assert_eq!(
            m.list[0].to_value().path(&["spec", "replicas"]),
            Some(&Value::Int(3))
        );
    }
}
