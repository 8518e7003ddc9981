//! The objects Flux's installation creates for its applier, shared by the bootstrap of the
//! embedded control plane and `ferroflux install --export`, so both grant the same rights.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// The ServiceAccount of the controller that applies manifests (Flux's helm-controller, the
/// other applier, has no ferroflux counterpart).
pub const APPLIER: &str = "kustomize-controller";

/// Flux's `cluster-reconciler` binding: like Flux, the applier is cluster-admin and tenants are
/// confined by impersonation. Under lockdown (`--default-service-account`) the platform's own
/// Kustomizations name this account in `spec.serviceAccountName`.
pub fn cluster_reconciler(namespace: &str) -> ClusterRoleBinding {
    binding("cluster-reconciler", "cluster-admin", namespace, &[APPLIER])
}

/// A ClusterRoleBinding of `role` to the ServiceAccounts `service_accounts` of `namespace`.
pub fn binding(
    name: &str,
    role: &str,
    namespace: &str,
    service_accounts: &[&str],
) -> ClusterRoleBinding {
    ClusterRoleBinding {
        metadata: meta(name, None, "rbac"),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "ClusterRole".into(),
            name: role.into(),
        },
        subjects: Some(
            service_accounts
                .iter()
                .map(|sa| Subject {
                    kind: "ServiceAccount".into(),
                    name: sa.to_string(),
                    namespace: Some(namespace.to_string()),
                    ..Subject::default()
                })
                .collect(),
        ),
    }
}

/// A controller's ServiceAccount.
pub fn service_account(name: &str, namespace: &str) -> ServiceAccount {
    ServiceAccount {
        metadata: meta(name, Some(namespace), name),
        ..ServiceAccount::default()
    }
}

/// The labels of every object ferroflux installs: part of ferroflux, and which component.
pub fn labels(component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "app.kubernetes.io/part-of".to_string(),
            "ferroflux".to_string(),
        ),
        (
            "app.kubernetes.io/component".to_string(),
            component.to_string(),
        ),
    ])
}

/// The metadata of an installed object, with [`labels`].
pub fn meta(name: &str, namespace: Option<&str>, component: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: namespace.map(str::to_string),
        labels: Some(labels(component)),
        ..ObjectMeta::default()
    }
}
