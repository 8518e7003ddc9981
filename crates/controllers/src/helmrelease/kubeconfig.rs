//! `spec.kubeConfig`: the release is made on the cluster a kubeconfig Secret points at, as
//! helm-controller does with its default `--insecure-kubeconfig-exec=false` and
//! `--insecure-kubeconfig-tls=false`. The kubeconfig is tenant-written: only inline data is
//! taken (no `exec`, no auth-provider plugins, no file paths that would read the
//! controller's disk), TLS verification stays on, and its size is bounded.

use ferroflux_api::helm::HelmRelease;
use ferroflux_api::meta::reason as meta_reason;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::Api;
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::runtime::ReconcileError;

/// Flux's default key of the kubeconfig in its Secret.
pub const DEFAULT_KEY: &str = "value";
/// The key Flux reads when the default one is absent.
pub const DEFAULT_KEY_YAML: &str = "value.yaml";
/// The largest kubeconfig taken, in bytes.
const MAX_KUBECONFIG: usize = 1024 * 1024;

/// The client config of `spec.kubeConfig`, read from its Secret in the HelmRelease's
/// namespace with `client`; `None` when the release goes to the controller's own cluster.
pub async fn remote_config(
    hr: &HelmRelease,
    client: &kube::Client,
) -> Result<Option<kube::Config>, ReconcileError> {
    let Some(reference) = hr.spec.kube_config.as_ref() else {
        return Ok(None);
    };
    let Some(secret_ref) = reference.secret_ref.as_ref() else {
        // The ConfigMap form asks for a cloud provider's workload identity.
        return Err(ReconcileError::stalling(
            meta_reason::INVALID,
            "not supported by this helm-controller yet: spec.kubeConfig.configMapRef",
        ));
    };
    let namespace = hr.namespace().unwrap_or_default();
    let name = &secret_ref.name;
    let keys: Vec<&str> = match secret_ref.key.as_deref().filter(|k| !k.is_empty()) {
        Some(key) => vec![key],
        None => vec![DEFAULT_KEY, DEFAULT_KEY_YAML],
    };
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let failed =
        |message: String| ReconcileError::generic(meta_reason::RECONCILIATION_FAILED, message);
    let secret = secrets
        .get_opt(name)
        .await
        .map_err(|e| {
            failed(format!(
                "could not get KubeConfig secret '{namespace}/{name}': {}",
                ferroflux_apply::manager::api_message(&e)
            ))
        })?
        .ok_or_else(|| failed(format!("KubeConfig secret '{namespace}/{name}' not found")))?;
    let found = keys
        .iter()
        .find_map(|k| secret.data.as_ref()?.get(*k).map(|d| (*k, d)));
    let Some((key, data)) = found else {
        return Err(failed(format!(
            "KubeConfig secret '{namespace}/{name}' does not contain a '{}' key with a kubeconfig",
            keys.join("' or '")
        )));
    };
    let config = parse(&data.0).map_err(|e| {
        ReconcileError::stalling(
            meta_reason::INVALID,
            format!("KubeConfig secret '{namespace}/{name}' key '{key}': {e}"),
        )
    })?;
    kube::Config::from_custom_kubeconfig(config, &KubeConfigOptions::default())
        .await
        .map(Some)
        .map_err(|e| {
            ReconcileError::stalling(
                meta_reason::INVALID,
                format!("KubeConfig secret '{namespace}/{name}' key '{key}': {e}"),
            )
        })
}

/// Parses a tenant's kubeconfig and refuses what would run a program, read a file or skip
/// TLS verification.
pub fn parse(bytes: &[u8]) -> Result<Kubeconfig, String> {
    if bytes.len() > MAX_KUBECONFIG {
        return Err(format!(
            "the kubeconfig is larger than {MAX_KUBECONFIG} bytes"
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| format!("invalid kubeconfig: {e}"))?;
    // Checked as a YAML value first: go-yaml's budget (aliases, depth) before serde.
    let _: serde_json::Value =
        ferroflux_gocompat::yaml::from_str(text).map_err(|e| format!("invalid kubeconfig: {e}"))?;
    let config = Kubeconfig::from_yaml(text).map_err(|e| format!("invalid kubeconfig: {e}"))?;
    for named in &config.auth_infos {
        let Some(user) = named.auth_info.as_ref() else {
            continue;
        };
        let refused = |what: &str| {
            Err(format!(
                "user '{}': {what} is not allowed (inline credentials only)",
                named.name
            ))
        };
        if user.exec.is_some() {
            return refused("exec");
        }
        if user.auth_provider.is_some() {
            return refused("auth-provider");
        }
        if user.token_file.is_some() {
            return refused("tokenFile");
        }
        if user.client_certificate.is_some() || user.client_key.is_some() {
            return refused("a client certificate or key file");
        }
    }
    for named in &config.clusters {
        let Some(cluster) = named.cluster.as_ref() else {
            continue;
        };
        if cluster.certificate_authority.is_some() {
            return Err(format!(
                "cluster '{}': certificate-authority files are not allowed (inline data only)",
                named.name
            ));
        }
        if cluster.insecure_skip_tls_verify == Some(true) {
            return Err(format!(
                "cluster '{}': TLS verification cannot be skipped",
                named.name
            ));
        }
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts:\n- name: c\n  context: {cluster: c, user: u}\nclusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:6443'}\n";

    #[test]
    fn inline_credentials_are_taken() {
        let text = format!("{BASE}users:\n- name: u\n  user: {{token: abc}}\n");
        assert!(parse(text.as_bytes()).is_ok());
    }

    #[test]
    fn programs_files_and_skipped_tls_are_refused() {
        let exec = format!(
            "{BASE}users:\n- name: u\n  user:\n    exec: {{command: /bin/sh, apiVersion: client.authentication.k8s.io/v1}}\n"
        );
        assert_eq!(
            parse(exec.as_bytes()).err().as_deref(),
            Some("user 'u': exec is not allowed (inline credentials only)")
        );
        let file =
            format!("{BASE}users:\n- name: u\n  user: {{tokenFile: /var/run/secrets/token}}\n");
        assert!(parse(file.as_bytes()).is_err());
        let key = format!("{BASE}users:\n- name: u\n  user: {{client-key: /etc/key.pem}}\n");
        assert!(parse(key.as_bytes()).is_err());
        let ca = BASE.replace(
            "server: 'https://127.0.0.1:6443'",
            "server: 'https://127.0.0.1:6443', certificate-authority: /etc/ca.pem",
        );
        assert!(parse(format!("{ca}users: []\n").as_bytes()).is_err());
        let insecure = BASE.replace(
            "server: 'https://127.0.0.1:6443'",
            "server: 'https://127.0.0.1:6443', insecure-skip-tls-verify: true",
        );
        assert!(parse(format!("{insecure}users: []\n").as_bytes()).is_err());
    }
}
