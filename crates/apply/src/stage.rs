//! The order objects are applied in. Like Flux, cluster definitions (CRDs, Namespaces,
//! ClusterRoles) go first so that the objects that need them can be applied after the CRDs are
//! Established; Class kinds (StorageClass, IngressClass, ...) go next; everything else last.
//! Within a stage, kinds follow the order Helm and Flux use, then namespace and name.

use crate::object::ObjectRef;

/// An apply stage, in the order the stages run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// CustomResourceDefinitions, Namespaces and ClusterRoles.
    ClusterDefinitions,
    /// Kinds named `...Class`: RuntimeClass, PriorityClass, StorageClass, IngressClass, ...
    Classes,
    /// Everything else.
    Resources,
}

/// The stage an object belongs to.
pub fn stage_of(object: &ObjectRef) -> Stage {
    match object.kind.as_str() {
        "CustomResourceDefinition" | "Namespace" | "ClusterRole" => Stage::ClusterDefinitions,
        kind if kind.ends_with("Class") => Stage::Classes,
        _ => Stage::Resources,
    }
}

const KIND_ORDER: &[&str] = &[
    "CustomResourceDefinition",
    "Namespace",
    "ResourceQuota",
    "StorageClass",
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
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

fn kind_rank(kind: &str) -> usize {
    KIND_ORDER
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(KIND_ORDER.len())
}

/// The key objects are applied by; pruning runs in the reverse order.
pub fn apply_order(object: &ObjectRef) -> (Stage, usize, String, String, String) {
    (
        stage_of(object),
        kind_rank(&object.kind),
        object.kind.clone(),
        object.namespace.clone(),
        object.name.clone(),
    )
}

/// Sorts objects into apply order (stable for equal keys).
pub fn sort_for_apply(objects: &mut [ObjectRef]) {
    objects.sort_by_cached_key(apply_order);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(kind: &str, namespace: &str, name: &str) -> ObjectRef {
        ObjectRef {
            group: String::new(),
            version: "v1".into(),
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    #[test]
    fn definitions_then_classes_then_resources() {
        let mut objects = vec![
            obj("Deployment", "team-a", "podinfo"),
            obj("IngressClass", "", "nginx"),
            obj("Service", "team-a", "podinfo"),
            obj("Namespace", "", "team-a"),
            obj("Podinfo", "team-a", "custom"),
            obj("CustomResourceDefinition", "", "podinfos.example.com"),
            obj("ClusterRole", "", "reader"),
            obj("ServiceAccount", "team-a", "team-a"),
        ];
        sort_for_apply(&mut objects);
        let order: Vec<String> = objects.iter().map(ToString::to_string).collect();
        assert_eq!(
            order,
            [
                "CustomResourceDefinition/podinfos.example.com",
                "Namespace/team-a",
                "ClusterRole/reader",
                "IngressClass/nginx",
                "ServiceAccount/team-a/team-a",
                "Service/team-a/podinfo",
                "Deployment/team-a/podinfo",
                "Podinfo/team-a/custom",
            ]
        );
    }
}
