//! Kustomization inventories: what was applied, and what a new build leaves behind to prune.

use std::collections::BTreeSet;

use ferroflux_api::meta::{ResourceInventory, ResourceRef};

use crate::object::{ObjectError, ObjectRef};
use crate::stage::apply_order;

/// The inventory of a set of applied objects, sorted by id as Flux writes it.
pub fn inventory_of(objects: &[ObjectRef]) -> ResourceInventory {
    let mut entries: Vec<ResourceRef> = objects
        .iter()
        .map(|o| ResourceRef {
            id: o.inventory_id(),
            v: o.version.clone(),
        })
        .collect();
    entries.sort_by(|a, b| a.id.cmp(&b.id));
    entries.dedup_by(|a, b| a.id == b.id);
    ResourceInventory { entries }
}

/// The objects of an inventory.
pub fn objects_of(inventory: &ResourceInventory) -> Result<Vec<ObjectRef>, ObjectError> {
    inventory
        .entries
        .iter()
        .map(|e| ObjectRef::from_inventory(&e.id, &e.v))
        .collect()
}

/// Objects of the `old` inventory that are not in `new`, in prune order: the reverse of the
/// apply order, so workloads go before the namespaces and CRDs they live in.
pub fn stale_objects(
    old: &ResourceInventory,
    new: &ResourceInventory,
) -> Result<Vec<ObjectRef>, ObjectError> {
    let kept: BTreeSet<&str> = new.entries.iter().map(|e| e.id.as_str()).collect();
    let mut stale: Vec<ObjectRef> = old
        .entries
        .iter()
        .filter(|e| !kept.contains(e.id.as_str()))
        .map(|e| ObjectRef::from_inventory(&e.id, &e.v))
        .collect::<Result<_, _>>()?;
    stale.sort_by_cached_key(apply_order);
    stale.reverse();
    Ok(stale)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(group: &str, kind: &str, namespace: &str, name: &str) -> ObjectRef {
        ObjectRef {
            group: group.into(),
            version: "v1".into(),
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    #[test]
    fn the_inventory_is_sorted_and_round_trips() {
        let objects = vec![
            obj("apps", "Deployment", "team-a", "podinfo"),
            obj("", "Namespace", "", "team-a"),
            obj("", "Service", "team-a", "podinfo"),
        ];
        let inventory = inventory_of(&objects);
        let ids: Vec<&str> = inventory.entries.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "_team-a__Namespace",
                "team-a_podinfo__Service",
                "team-a_podinfo_apps_Deployment"
            ]
        );
        let mut back = objects_of(&inventory).expect("parses");
        back.sort();
        let mut expected = objects;
        expected.sort();
        assert_eq!(back, expected);
    }

    #[test]
    fn stale_objects_are_pruned_in_reverse_apply_order() {
        let old = inventory_of(&[
            obj("", "Namespace", "", "old-ns"),
            obj("apps", "Deployment", "old-ns", "web"),
            obj("", "ConfigMap", "team-a", "settings"),
            obj("", "Service", "team-a", "podinfo"),
            obj(
                "apiextensions.k8s.io",
                "CustomResourceDefinition",
                "",
                "widgets.example.com",
            ),
        ]);
        let new = inventory_of(&[obj("", "Service", "team-a", "podinfo")]);
        let stale: Vec<String> = stale_objects(&old, &new)
            .expect("valid ids")
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            stale,
            [
                "Deployment/old-ns/web",
                "ConfigMap/team-a/settings",
                "Namespace/old-ns",
                "CustomResourceDefinition/widgets.example.com",
            ]
        );
        assert!(stale_objects(&new, &new).expect("valid").is_empty());
    }
}
