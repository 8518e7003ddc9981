//! The identity a reconciler applies as: its own, or a tenant's ServiceAccount impersonated.

use kube::{Client, Config};

/// The Kubernetes user name of a ServiceAccount.
pub fn service_account_user(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

/// A client that acts as `system:serviceaccount:<namespace>:<name>` by impersonation from the
/// controller's own `config`. Like Flux, only the user is impersonated: the API server adds the
/// ServiceAccount's groups itself, so the controller needs no right to impersonate groups.
pub fn impersonating_client(
    config: &Config,
    namespace: &str,
    name: &str,
) -> Result<Client, kube::Error> {
    let mut config = config.clone();
    config.auth_info.impersonate = Some(service_account_user(namespace, name));
    Client::try_from(config)
}

/// Which identity applies a Kustomization's objects: its `serviceAccountName`, else the
/// controller's `--default-service-account`, else the controller itself (`None`).
pub fn applier<'a>(
    service_account_name: Option<&'a str>,
    default_service_account: Option<&'a str>,
) -> Option<&'a str> {
    service_account_name
        .filter(|n| !n.is_empty())
        .or(default_service_account.filter(|n| !n.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_service_account_replaces_the_controller_never_the_tenant() {
        assert_eq!(applier(Some("team-a"), Some("restricted")), Some("team-a"));
        assert_eq!(applier(None, Some("restricted")), Some("restricted"));
        assert_eq!(applier(Some(""), Some("restricted")), Some("restricted"));
        assert_eq!(applier(None, None), None);
        assert_eq!(
            service_account_user("team-a", "team-a"),
            "system:serviceaccount:team-a:team-a"
        );
    }
}
