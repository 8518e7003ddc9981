//! Name references: after renames (prefix, suffix, hash, namespace), every field that names
//! another resource (volumes, env, roleRef, subjects, ...) is updated to the new name.

use std::collections::HashMap;

use crate::error::{Result, msg};
use crate::fieldspec::{FieldSpec, walk};
use crate::resource::{Gvk, ResId, ResMap, Resource, or_placeholder};
use crate::yaml::Value;

/// Sort order of a legacy (`--reorder legacy`) build.
pub fn legacy_sort(m: &mut ResMap, first: &[String], last: &[String]) {
    let order = |k: &str| -> i64 {
        if let Some(i) = first.iter().position(|x| x == k) {
            return i as i64 - first.len() as i64;
        }
        if let Some(i) = last.iter().position(|x| x == k) {
            return 1 + i as i64;
        }
        0
    };
    let gvk_str = |g: &Gvk| {
        format!(
            "{}_{}_{}",
            or_placeholder(&g.group, "~G"),
            or_placeholder(&g.version, "~V"),
            or_placeholder(&g.kind, "~K")
        )
    };
    let id_str = |id: &ResId| {
        format!(
            "{}|{}|{}",
            gvk_str(&id.gvk),
            or_placeholder(&id.namespace, "~X"),
            or_placeholder(&id.name, "~N")
        )
    };
    let ids: Vec<ResId> = m.list.iter().map(Resource::cur_id).collect();
    let mut idx: Vec<usize> = (0..ids.len()).collect();
    idx.sort_by(|&a, &b| {
        let (ia, ib) = (&ids[a], &ids[b]);
        if ia.gvk != ib.gvk {
            let (oa, ob) = (order(&ia.gvk.kind), order(&ib.gvk.kind));
            if oa != ob {
                return oa.cmp(&ob);
            }
            if ia.gvk.kind == "Namespace"
                && ib.gvk.kind == "Namespace"
                && (ia.gvk.group.is_empty() || ib.gvk.group.is_empty())
            {
                return gvk_str(&ib.gvk).cmp(&gvk_str(&ia.gvk));
            }
            return gvk_str(&ia.gvk).cmp(&gvk_str(&ib.gvk));
        }
        id_str(ia).cmp(&id_str(ib))
    });
    let mut old: Vec<Option<Resource>> =
        std::mem::take(&mut m.list).into_iter().map(Some).collect();
    m.list = idx.into_iter().filter_map(|i| old[i].take()).collect();
}

/// The default legacy order: kinds first and last.
pub fn default_order() -> (Vec<String>, Vec<String>) {
    let first = [
        "Namespace",
        "ResourceQuota",
        "StorageClass",
        "CustomResourceDefinition",
        "ServiceAccount",
        "PodSecurityPolicy",
        "Role",
        "ClusterRole",
        "RoleBinding",
        "ClusterRoleBinding",
        "ConfigMap",
        "Secret",
        "Endpoints",
        "Service",
        "LimitRange",
        "PriorityClass",
        "PersistentVolume",
        "PersistentVolumeClaim",
        "Deployment",
        "StatefulSet",
        "CronJob",
        "PodDisruptionBudget",
    ];
    let last = [
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    ];
    (
        first.iter().map(|s| s.to_string()).collect(),
        last.iter().map(|s| s.to_string()).collect(),
    )
}

/// Identities of one resource, computed once per pass.
struct Info {
    cur: ResId,
    prev: Vec<ResId>,
    org_gvk: Gvk,
    org_ns: String,
    cluster: bool,
}

fn role_binding_namespaces(r: &Resource) -> Vec<String> {
    if r.kind() != "RoleBinding" {
        return Vec::new();
    }
    r.obj
        .get("subjects")
        .and_then(Value::as_seq)
        .map(|s| {
            s.iter()
                .filter(|x| x.get("kind").and_then(Value::as_str) == Some("ServiceAccount"))
                .filter_map(|x| x.get("namespace").and_then(Value::scalar_text))
                .collect()
        })
        .unwrap_or_default()
}

struct Ctx<'a> {
    all: &'a [Resource],
    info: &'a [Info],
    by_prev_name: &'a HashMap<String, Vec<usize>>,
    /// Which resources the referrer may refer to (namespace rules).
    cands: &'a [bool],
    referrer: usize,
    target: &'a Gvk,
    fs: &'a FieldSpec,
}

impl Ctx<'_> {
    /// Upstream's `selectReferral`: sieve candidates by an earlier name, the target kind,
    /// the roleRef kind, the namespace, then by matching prefixes/suffixes.
    fn select(
        &self,
        old: &str,
        ns_filter: Option<&dyn Fn(usize) -> bool>,
        by_ns: bool,
    ) -> Result<Option<usize>> {
        let all = self.all;
        let info = self.info;
        let referrer = &all[self.referrer];
        let rinfo = &info[self.referrer];
        let Some(start) = self.by_prev_name.get(old) else {
            return Ok(None);
        };
        let mut c: Vec<usize> = start
            .iter()
            .copied()
            .filter(|&i| self.cands[i])
            .filter(|&i| ns_filter.is_none_or(|f| f(i)))
            .filter(|&i| {
                info[i]
                    .prev
                    .iter()
                    .any(|id| id.gvk.is_selected_by(self.target))
            })
            .collect();
        if self.fs.path_string().ends_with("roleRef/name")
            && let Some(rr) = referrer.obj.get("roleRef")
        {
            let g = Gvk {
                group: rr
                    .get("apiGroup")
                    .and_then(Value::scalar_text)
                    .unwrap_or_default(),
                version: String::new(),
                kind: rr
                    .get("kind")
                    .and_then(Value::scalar_text)
                    .unwrap_or_default(),
            };
            c.retain(|&i| info[i].prev.iter().any(|id| id.gvk.is_selected_by(&g)));
        }
        if !rinfo.cluster {
            c.retain(|&i| {
                info[i].cluster
                    || info[i].cur.gvk.kind == "ServiceAccount"
                    || rinfo.cur.ns_equals(&info[i].cur)
            });
        }
        if c.len() == 1 {
            return Ok(Some(c[0]));
        }
        c.retain(|&i| all[i].prefixes_suffixes_equal(referrer, true));
        if c.len() > 1 {
            c.retain(|&i| all[i].prefixes_suffixes_equal(referrer, false));
        }
        match c.len() {
            0 => Ok(None),
            1 => Ok(Some(c[0])),
            _ => {
                let first = &info[c[0]].cur;
                let same = c.iter().all(|&i| {
                    info[i].cur.name == first.name
                        && (!by_ns || info[i].cur.namespace == first.namespace)
                });
                if same {
                    return Ok(Some(c[0]));
                }
                let ids: Vec<String> = c.iter().map(|&i| info[i].cur.to_string()).collect();
                Err(msg(format!(
                    "found multiple possible referrals: {}",
                    ids.join(", ")
                )))
            }
        }
    }
}

/// Fixes every name reference (upstream's `FixBackReferences`).
pub fn fix_name_references(m: &mut ResMap, refs: &[(Gvk, FieldSpec)]) -> Result<()> {
    let snapshot: Vec<Resource> = m.list.clone();
    let info: Vec<Info> = snapshot
        .iter()
        .map(|r| {
            let cur = r.cur_id();
            let prev = r.prev_ids();
            let org = prev.first().cloned().unwrap_or_else(|| cur.clone());
            Info {
                cluster: cur.gvk.is_cluster_scoped(),
                org_ns: org.effective_namespace().to_string(),
                org_gvk: org.gvk,
                cur,
                prev,
            }
        })
        .collect();
    let mut by_prev_name: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, inf) in info.iter().enumerate() {
        let mut names: Vec<&str> = inf.prev.iter().map(|id| id.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        for n in names {
            by_prev_name.entry(n.to_string()).or_default().push(i);
        }
    }
    for (i, referrer) in snapshot.iter().enumerate() {
        let filters: Vec<&(Gvk, FieldSpec)> = refs
            .iter()
            .filter(|(_, fs)| info[i].org_gvk.is_selected_by(&fs.gvk))
            .collect();
        if filters.is_empty() {
            continue;
        }
        let rbns = role_binding_namespaces(referrer);
        let rid = &info[i].cur;
        let cands: Vec<bool> = info
            .iter()
            .zip(&snapshot)
            .map(|(t, tr)| {
                info[i].cluster
                    || t.cluster
                    || t.cur.ns_equals(rid)
                    || rbns.iter().any(|n| *n == tr.namespace())
            })
            .collect();
        let mut obj = Value::Map(std::mem::take(&mut m.list[i].obj));
        for (target, fs) in filters {
            let ctx = Ctx {
                all: &snapshot,
                info: &info,
                by_prev_name: &by_prev_name,
                cands: &cands,
                referrer: i,
                target,
                fs,
            };
            let res = walk(&mut obj, &fs.path, false, &mut |v| set_ref(&ctx, v));
            if let Err(e) = res {
                if let Value::Map(o) = obj {
                    m.list[i].obj = o;
                }
                return Err(e.prefix(format!(
                    "updating name reference in '{}' field of '{}'",
                    fs.path_string(),
                    rid
                )));
            }
        }
        if let Value::Map(o) = obj {
            m.list[i].obj = o;
        }
    }
    Ok(())
}

fn set_ref(ctx: &Ctx<'_>, v: &mut Value) -> Result<()> {
    match v {
        Value::Null => Ok(()),
        Value::Seq(items) => {
            for it in items {
                set_ref(ctx, it)?;
            }
            Ok(())
        }
        Value::Map(node) => {
            let Some(old) = node.get("name").and_then(Value::scalar_text) else {
                return Ok(());
            };
            if matches!(node.get("namespace"), Some(Value::Null))
                || matches!(node.get("namespace"), Some(Value::Str(s)) if s.is_empty())
            {
                return Err(msg(format!(
                    "Invalid Input: namespace is blank for resource {}",
                    ctx.info[ctx.referrer].cur
                )));
            }
            let picked = match node.get("namespace").and_then(Value::scalar_text) {
                None => ctx.select(&old, None, true)?,
                Some(ns) => {
                    // Candidates grouped by original namespace, else by current one.
                    let info = ctx.info;
                    let any_org = (0..info.len())
                        .any(|i| ctx.cands[i] && !info[i].cluster && info[i].org_ns == ns);
                    let f_org = |i: usize| !info[i].cluster && info[i].org_ns == ns;
                    let f_cur =
                        |i: usize| !info[i].cluster && info[i].cur.effective_namespace() == ns;
                    if any_org {
                        ctx.select(&old, Some(&f_org), true)?
                    } else {
                        ctx.select(&old, Some(&f_cur), true)?
                    }
                }
            };
            let Some(i) = picked else {
                return Ok(());
            };
            let r = &ctx.all[i];
            let (name, ns) = (r.name(), r.namespace());
            if name == old && ns.is_empty() {
                return Ok(());
            }
            node.insert("name", Value::Str(name));
            if !ns.is_empty() {
                node.insert("namespace", Value::Str(ns));
            }
            Ok(())
        }
        scalar => {
            let Some(old) = scalar.scalar_text() else {
                return Ok(());
            };
            if let Some(i) = ctx.select(&old, None, false)? {
                let name = ctx.all[i].name();
                if name != old {
                    *scalar = Value::Str(name);
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fieldspec::builtins;
    use crate::transform::add_prefix_suffix;

    const APP: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      volumes:\n      - name: v\n        configMap:\n          name: cfg\n      containers:\n      - name: c\n        envFrom:\n        - configMapRef:\n            name: cfg\n        - configMapRef:\n            name: external\n";

    #[test]
    fn renamed_config_maps_are_renamed_where_referenced() {
        let mut m = ResMap::from_yaml_for_test(APP);
        add_prefix_suffix(&mut m, "p-", "", &builtins().section("namePrefix")).expect("ok");
        fix_name_references(&mut m, &builtins().name_refs).expect("ok");
        let d = m.list[1].to_value();
        let spec = d.path(&["spec", "template", "spec"]).expect("spec");
        let vol = &spec.get("volumes").and_then(Value::as_seq).expect("vols")[0];
        assert_eq!(
            vol.path(&["configMap", "name"]),
            Some(&Value::from("p-cfg"))
        );
        let env = spec
            .path(&["containers"])
            .and_then(Value::as_seq)
            .expect("c")[0]
            .get("envFrom")
            .and_then(Value::as_seq)
            .cloned()
            .expect("envFrom");
        assert_eq!(
            env[0].path(&["configMapRef", "name"]),
            Some(&Value::from("p-cfg"))
        );
        // A name that matches nothing in the build is left alone.
        assert_eq!(
            env[1].path(&["configMapRef", "name"]),
            Some(&Value::from("external"))
        );
    }

    #[test]
    fn two_candidates_with_different_new_names_are_an_error() {
        let mut m = ResMap::from_yaml_for_test(
            "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: sa\n  namespace: a\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: sa\n  namespace: b\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: crb\nroleRef:\n  kind: ClusterRole\n  name: r\nsubjects:\n- kind: ServiceAccount\n  name: sa\n",
        );
        for r in &mut m.list {
            r.store_previous_id();
            let n = format!("{}-{}", r.name(), r.namespace());
            r.set_name(&n);
        }
        let e = fix_name_references(&mut m, &builtins().name_refs).expect_err("ambiguous");
        assert!(
            e.to_string().contains("found multiple possible referrals"),
            "{e}"
        );
    }

    #[test]
    fn legacy_order_puts_namespaces_first_and_webhooks_last() {
        let mut m = ResMap::from_yaml_for_test(
            "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\nmetadata:\n  name: w\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\n---\napiVersion: x.io/v1\nkind: Widget\nmetadata:\n  name: z\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: n\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
        );
        let (first, last) = default_order();
        legacy_sort(&mut m, &first, &last);
        let kinds: Vec<String> = m
            .list
            .iter()
            .map(|r| format!("{}/{}", r.kind(), r.name()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                "Namespace/n",
                "ConfigMap/a",
                "ConfigMap/b",
                "Deployment/d",
                "Widget/z",
                "ValidatingWebhookConfiguration/w"
            ]
        );
    }
}
