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

    /// An object from its `Kind/name` or `Kind/namespace/name` text (as `ObjectRef` prints it).
    fn obj(text: &str) -> ObjectRef {
        let parts: Vec<&str> = text.split('/').collect();
        let (kind, namespace, name) = match parts[..] {
            [kind, name] => (kind, "", name),
            [kind, namespace, name] => (kind, namespace, name),
            _ => panic!("not an object: {text}"),
        };
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
        let expected = [
            "CustomResourceDefinition/podinfos.example.com",
            "Namespace/team-a",
            "ClusterRole/reader",
            "IngressClass/nginx",
            "ServiceAccount/team-a/team-a",
            "Service/team-a/podinfo",
            "Deployment/team-a/podinfo",
            "Podinfo/team-a/custom",
        ];
        // Reversed, every pair starts out of order.
        let mut objects: Vec<ObjectRef> = expected.iter().rev().copied().map(obj).collect();
        sort_for_apply(&mut objects);
        let order: Vec<String> = objects.iter().map(ToString::to_string).collect();
        assert_eq!(order, expected);
    }
}
