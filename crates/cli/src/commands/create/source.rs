//! `ferroflux create source git|helm|oci|bucket`: the source-controller objects (`v1`) that
//! `flux create source` generates, checked in flux's order and words. Applying them leaves
//! credentials to an existing `--secret-ref` (flux's prompts for new ones are not offered).

use std::process::ExitCode;

use anyhow::bail;
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::CreateArgs;
use super::object::{self, Generated};

/// `ferroflux create source`.
#[derive(Debug, Args)]
pub struct SourceArgs {
    #[command(subcommand)]
    what: SourceKind,
    /// Timeout for the fetches source-controller does (a Go duration; `0s` leaves it out).
    #[arg(long, global = true)]
    fetch_timeout: Option<String>,
}

#[derive(Debug, Subcommand)]
enum SourceKind {
    /// Create or update a GitRepository source.
    Git(GitArgs),
    /// Create or update a HelmRepository source.
    Helm(HelmArgs),
    /// Create or update an OCIRepository source.
    Oci(OciArgs),
    /// Create or update a Bucket source.
    Bucket(BucketArgs),
}

/// Create or update a GitRepository.
#[derive(Debug, Args)]
pub struct GitArgs {
    /// The GitRepository's name.
    name: Option<String>,
    /// Git address, e.g. ssh://git@host/org/repository.
    #[arg(long, default_value = "")]
    url: String,
    /// Git branch.
    #[arg(long, default_value = "")]
    branch: String,
    /// Git tag.
    #[arg(long, default_value = "")]
    tag: String,
    /// Git tag semver range.
    #[arg(long = "tag-semver", default_value = "")]
    semver: String,
    /// Git reference name.
    #[arg(long, default_value = "")]
    ref_name: String,
    /// Git commit.
    #[arg(long, default_value = "")]
    commit: String,
    /// The name of an existing secret containing SSH or basic credentials.
    #[arg(long, default_value = "")]
    secret_ref: String,
    /// The name of an existing secret containing the proxy address and credentials.
    #[arg(long, default_value = "")]
    proxy_secret_ref: String,
    /// The Git provider name (generic, github, aws, azure).
    #[arg(long)]
    provider: Option<String>,
    /// Initialize and include Git submodules in the artifact.
    #[arg(long)]
    recurse_submodules: bool,
    /// Paths to ignore (repeat the flag or separate with commas).
    #[arg(long, value_delimiter = ',')]
    ignore_paths: Vec<String>,
    /// Paths to sparse checkout (repeat the flag or separate with commas).
    #[arg(long, value_delimiter = ',')]
    sparse_checkout_paths: Vec<String>,
}

/// Create or update a HelmRepository.
#[derive(Debug, Args)]
pub struct HelmArgs {
    /// The HelmRepository's name.
    name: Option<String>,
    /// Helm repository address (http, https or oci).
    #[arg(long, default_value = "")]
    url: String,
    /// The name of an existing secret containing TLS, basic auth or docker-config credentials.
    #[arg(long, default_value = "")]
    secret_ref: String,
    /// OCI provider for authentication.
    #[arg(long, default_value = "")]
    oci_provider: String,
    /// Pass credentials to all domains.
    #[arg(long)]
    pass_credentials: bool,
}

/// Create or update an OCIRepository.
#[derive(Debug, Args)]
pub struct OciArgs {
    /// The OCIRepository's name.
    name: Option<String>,
    /// The OCI repository URL.
    #[arg(long, default_value = "")]
    url: String,
    /// The OCI artifact tag.
    #[arg(long, default_value = "")]
    tag: String,
    /// The OCI artifact tag semver range.
    #[arg(long = "tag-semver", default_value = "")]
    semver: String,
    /// The OCI artifact digest.
    #[arg(long, default_value = "")]
    digest: String,
    /// The OCI provider name (generic, aws, azure, gcp).
    #[arg(long, default_value = "generic")]
    provider: String,
    /// The name of the Kubernetes image pull secret.
    #[arg(long, default_value = "")]
    secret_ref: String,
    /// The name of an existing secret containing the proxy address and credentials.
    #[arg(long, default_value = "")]
    proxy_secret_ref: String,
    /// The name of the Kubernetes service account that refers to an image pull secret.
    #[arg(long, default_value = "")]
    service_account: String,
    /// The name of a secret to use for TLS certificates.
    #[arg(long = "cert-ref", default_value = "")]
    cert_secret_ref: String,
    /// Paths to ignore (repeat the flag or separate with commas).
    #[arg(long, value_delimiter = ',')]
    ignore_paths: Vec<String>,
    /// For registries over plain HTTP.
    #[arg(long)]
    insecure: bool,
    /// The OCI artifact layer selector (`<media-type>:<operation>`).
    #[arg(long, default_value = "")]
    layer_selector: String,
    /// The verify provider for signature verification (cosign).
    #[arg(long)]
    verify_provider: Option<String>,
    /// The name of a secret to use for signature verification.
    #[arg(long, default_value = "")]
    verify_secret_ref: String,
    /// Regular expression for the OIDC subject during signature verification.
    #[arg(long, default_value = "")]
    verify_subject: String,
    /// Regular expression for the OIDC issuer during signature verification.
    #[arg(long = "verify-issuer", default_value = "")]
    verify_oidc_issuer: String,
}

/// Create or update a Bucket.
#[derive(Debug, Args)]
pub struct BucketArgs {
    /// The Bucket's name.
    name: Option<String>,
    /// The bucket provider name (generic, aws, azure, gcp).
    #[arg(long, default_value = "generic")]
    provider: String,
    /// The bucket name.
    #[arg(long, default_value = "")]
    bucket_name: String,
    /// The bucket endpoint address.
    #[arg(long, default_value = "")]
    endpoint: String,
    /// The bucket region.
    #[arg(long, default_value = "")]
    region: String,
    /// For a non-TLS S3 HTTP endpoint.
    #[arg(long)]
    insecure: bool,
    /// The name of an existing secret containing credentials.
    #[arg(long, default_value = "")]
    secret_ref: String,
    /// The name of an existing secret containing the proxy address and credentials.
    #[arg(long, default_value = "")]
    proxy_secret_ref: String,
    /// Paths to ignore (repeat the flag or separate with commas).
    #[arg(long, value_delimiter = ',')]
    ignore_paths: Vec<String>,
}

const fn source_kind(kind: &'static str, plural: &'static str) -> Generated {
    Generated {
        group: "source.toolkit.fluxcd.io",
        version: "v1",
        kind,
        plural,
    }
}

const GIT: Generated = source_kind("GitRepository", "gitrepositories");
const HELM: Generated = source_kind("HelmRepository", "helmrepositories");
const OCI: Generated = source_kind("OCIRepository", "ocirepositories");
const BUCKET: Generated = source_kind("Bucket", "buckets");

/// The providers of OCI and Bucket sources, as flux's flags list them.
const CLOUD_PROVIDERS: &[&str] = &["generic", "aws", "azure", "gcp"];
const GIT_PROVIDERS: &[&str] = &["generic", "github", "aws", "azure"];

pub fn run(args: &SourceArgs, create: &CreateArgs) -> anyhow::Result<ExitCode> {
    let (generated, object) = match &args.what {
        SourceKind::Git(git) => (GIT, git_repository(git, args, create)?),
        SourceKind::Helm(helm) => (HELM, helm_repository(helm, args, create)?),
        SourceKind::Oci(oci) => (OCI, oci_repository(oci, args, create)?),
        SourceKind::Bucket(storage) => (BUCKET, bucket(storage, args, create)?),
    };
    object::finish(generated, &object, create)
}

/// The checks cobra does while parsing the flags: `--interval` and `--fetch-timeout`; the
/// spec's interval and timeout (left out unless above zero).
fn durations(source: &SourceArgs, create: &CreateArgs) -> anyhow::Result<(String, Option<String>)> {
    let interval = object::duration("interval", create.interval())?;
    let timeout = match &source.fetch_timeout {
        Some(value) => Some(object::duration("fetch-timeout", value)?),
        None => None,
    };
    Ok((interval, timeout.filter(|t| t != "0s")))
}

/// A provider flag's value, refused as flux's flag types refuse it: `what` names the flag's
/// type, `description` is its help text, `listed` its choices as the refusal lists them.
fn check_provider(
    flag: &str,
    value: &str,
    (what, description): (&str, &str),
    supported: &[&str],
    listed: &str,
) -> anyhow::Result<()> {
    if value.trim().is_empty() {
        bail!(
            "invalid argument {value:?} for \"--{flag}\" flag: no {what} given, please specify {description}"
        );
    }
    if !supported.contains(&value) {
        bail!(
            "invalid argument {value:?} for \"--{flag}\" flag: {what} '{value}' is not supported, must be one of: {listed}"
        );
    }
    Ok(())
}

/// The scheme of a URL as Go's `url.Parse` finds it (lowercased; empty when there is none);
/// an error where Go's parse fails on it.
pub(super) fn go_scheme(raw: &str) -> anyhow::Result<String> {
    for (i, c) in raw.char_indices() {
        match c {
            'a'..='z' | 'A'..='Z' => {}
            '0'..='9' | '+' | '-' | '.' if i > 0 => {}
            ':' if i == 0 => bail!("parse {raw:?}: missing protocol scheme"),
            ':' => return Ok(raw[..i].to_ascii_lowercase()),
            _ => return Ok(String::new()),
        }
    }
    Ok(String::new())
}

/// The host of a URL with an authority (`scheme://[user@]host[:port]/...`).
fn go_host(raw: &str) -> &str {
    let Some((_, rest)) = raw.split_once("://") else {
        return "";
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host)
}

/// `ignore`: the paths one a line, or nothing.
fn ignore(spec: &mut Value, paths: &[String]) {
    if !paths.is_empty() {
        spec["ignore"] = json!(paths.join("\n"));
    }
}

/// A `{name: ...}` reference field, when named.
fn local_reference(spec: &mut Value, field: &str, name: &str) {
    if !name.is_empty() {
        spec[field] = json!({ "name": name });
    }
}

fn object(generated: Generated, metadata: Value, spec: Value) -> Value {
    json!({"apiVersion": format!("{}/{}", generated.group, generated.version),
        "kind": generated.kind, "metadata": metadata, "spec": spec})
}

fn git_repository(
    args: &GitArgs,
    source: &SourceArgs,
    create: &CreateArgs,
) -> anyhow::Result<Value> {
    if let Some(provider) = &args.provider {
        check_provider(
            "provider",
            provider,
            ("source Git provider", "the Git provider name"),
            GIT_PROVIDERS,
            &GIT_PROVIDERS.join("|"),
        )?;
    }
    let (interval, timeout) = durations(source, create)?;
    let name = object::checked_name(args.name.as_deref())?;
    if args.url.is_empty() {
        bail!("url is required");
    }
    let scheme =
        go_scheme(&args.url).map_err(|err| anyhow::anyhow!("git URL parse failed: {err}"))?;
    if !["ssh", "http", "https"].contains(&scheme.as_str()) {
        bail!("git URL scheme '{scheme}' not supported, can be: ssh, http and https");
    }
    if [
        &args.branch,
        &args.tag,
        &args.semver,
        &args.commit,
        &args.ref_name,
    ]
    .iter()
    .all(|r| r.is_empty())
    {
        bail!(
            "a Git ref is required, use one of the following: --branch, --tag, --commit, --ref-name or --tag-semver"
        );
    }
    let metadata = object::metadata(name, create)?;
    // One kind of ref wins, in flux's order; a commit keeps its branch.
    let reference = if !args.commit.is_empty() {
        let mut r = json!({"commit": args.commit});
        if !args.branch.is_empty() {
            r["branch"] = json!(args.branch);
        }
        r
    } else if !args.ref_name.is_empty() {
        json!({"name": args.ref_name})
    } else if !args.semver.is_empty() {
        json!({"semver": args.semver})
    } else if !args.tag.is_empty() {
        json!({"tag": args.tag})
    } else {
        json!({"branch": args.branch})
    };
    let mut spec = json!({"interval": interval, "ref": reference, "url": args.url});
    if args.recurse_submodules {
        spec["recurseSubmodules"] = json!(true);
    }
    ignore(&mut spec, &args.ignore_paths);
    if !args.sparse_checkout_paths.is_empty() {
        spec["sparseCheckout"] = json!(args.sparse_checkout_paths);
    }
    if let Some(timeout) = timeout {
        spec["timeout"] = json!(timeout);
    }
    local_reference(&mut spec, "secretRef", &args.secret_ref);
    local_reference(&mut spec, "proxySecretRef", &args.proxy_secret_ref);
    if let Some(provider) = &args.provider {
        spec["provider"] = json!(provider);
    }
    Ok(object(GIT, metadata, spec))
}

fn helm_repository(
    args: &HelmArgs,
    source: &SourceArgs,
    create: &CreateArgs,
) -> anyhow::Result<Value> {
    let (interval, timeout) = durations(source, create)?;
    let name = object::checked_name(args.name.as_deref())?;
    if args.url.is_empty() {
        bail!("url is required");
    }
    let metadata = object::metadata(name, create)?;
    let scheme = go_scheme(&args.url).map_err(|err| anyhow::anyhow!("url parse failed: {err}"))?;
    if !["http", "https", "oci"].contains(&scheme.as_str()) {
        bail!("url scheme '{scheme}' not supported, can be: http, https and oci");
    }
    if go_host(&args.url).is_empty() {
        bail!("url host is required");
    }
    let mut spec = json!({"interval": interval, "url": args.url});
    if scheme == "oci" {
        spec["type"] = json!("oci");
        if !args.oci_provider.is_empty() {
            spec["provider"] = json!(args.oci_provider);
        }
    }
    if let Some(timeout) = timeout {
        spec["timeout"] = json!(timeout);
    }
    if !args.secret_ref.is_empty() {
        spec["secretRef"] = json!({"name": args.secret_ref});
        if args.pass_credentials {
            spec["passCredentials"] = json!(true);
        }
    }
    Ok(object(HELM, metadata, spec))
}

fn oci_repository(
    args: &OciArgs,
    source: &SourceArgs,
    create: &CreateArgs,
) -> anyhow::Result<Value> {
    check_provider(
        "provider",
        &args.provider,
        ("source OCI provider", "the OCI provider name"),
        CLOUD_PROVIDERS,
        &CLOUD_PROVIDERS.join(", "),
    )?;
    if let Some(provider) = &args.verify_provider {
        check_provider(
            "verify-provider",
            provider,
            (
                "source OCI verify provider",
                "the OCI verify provider name to use for signature verification, available options are: (cosign)",
            ),
            &["cosign"],
            "cosign",
        )?;
    }
    let (interval, timeout) = durations(source, create)?;
    let name = object::checked_name(args.name.as_deref())?;
    if args.url.is_empty() {
        bail!("url is required");
    }
    if [&args.semver, &args.tag, &args.digest]
        .iter()
        .all(|r| r.is_empty())
    {
        bail!("--tag, --tag-semver or --digest is required");
    }
    let layer_selector = if args.layer_selector.is_empty() {
        None
    } else {
        let selector = &args.layer_selector;
        match selector.split_once(':') {
            Some((media_type, operation)) if !media_type.is_empty() && !operation.is_empty() => {
                if operation != "extract" && operation != "copy" {
                    bail!(
                        "invalid --layer-selector {selector:?}: operation must be \"extract\" or \"copy\""
                    );
                }
                Some(json!({"mediaType": media_type, "operation": operation}))
            }
            _ => bail!(
                "invalid --layer-selector {selector:?}: must be in the format '<media-type>:<operation>'"
            ),
        }
    };
    let metadata = object::metadata(name, create)?;
    let mut reference = json!({});
    for (field, value) in [
        ("digest", &args.digest),
        ("semver", &args.semver),
        ("tag", &args.tag),
    ] {
        if !value.is_empty() {
            reference[field] = json!(value);
        }
    }
    let mut spec = json!({"interval": interval, "provider": args.provider, "ref": reference,
        "url": args.url});
    if args.insecure {
        spec["insecure"] = json!(true);
    }
    ignore(&mut spec, &args.ignore_paths);
    if let Some(selector) = layer_selector {
        spec["layerSelector"] = selector;
    }
    if let Some(timeout) = timeout {
        spec["timeout"] = json!(timeout);
    }
    if !args.service_account.is_empty() {
        spec["serviceAccountName"] = json!(args.service_account);
    }
    local_reference(&mut spec, "secretRef", &args.secret_ref);
    local_reference(&mut spec, "proxySecretRef", &args.proxy_secret_ref);
    local_reference(&mut spec, "certSecretRef", &args.cert_secret_ref);
    if let Some(verify) = verification(args)? {
        spec["verify"] = verify;
    }
    Ok(object(OCI, metadata, spec))
}

/// `spec.verify` of an OCIRepository: the provider, its secret and the OIDC identity to match.
fn verification(args: &OciArgs) -> anyhow::Result<Option<Value>> {
    let Some(provider) = &args.verify_provider else {
        if !args.verify_secret_ref.is_empty() {
            bail!("a verification provider must be specified when a secret is specified");
        }
        if !args.verify_oidc_issuer.is_empty() || !args.verify_subject.is_empty() {
            bail!(
                "a verification provider must be specified when OIDC issuer/subject is specified"
            );
        }
        return Ok(None);
    };
    let mut verify = json!({ "provider": provider });
    local_reference(&mut verify, "secretRef", &args.verify_secret_ref);
    if !args.verify_oidc_issuer.is_empty() || !args.verify_subject.is_empty() {
        verify["matchOIDCIdentity"] =
            json!([{"issuer": args.verify_oidc_issuer, "subject": args.verify_subject}]);
    }
    Ok(Some(verify))
}

fn bucket(args: &BucketArgs, source: &SourceArgs, create: &CreateArgs) -> anyhow::Result<Value> {
    check_provider(
        "provider",
        &args.provider,
        (
            "source bucket provider",
            "the S3 compatible storage provider name",
        ),
        CLOUD_PROVIDERS,
        &CLOUD_PROVIDERS.join(", "),
    )?;
    let (interval, timeout) = durations(source, create)?;
    let name = object::checked_name(args.name.as_deref())?;
    if args.bucket_name.is_empty() {
        bail!("bucket-name is required");
    }
    if args.endpoint.is_empty() {
        bail!("endpoint is required");
    }
    let metadata = object::metadata(name, create)?;
    let mut spec = json!({"bucketName": args.bucket_name, "endpoint": args.endpoint,
        "interval": interval, "provider": args.provider});
    if args.insecure {
        spec["insecure"] = json!(true);
    }
    if !args.region.is_empty() {
        spec["region"] = json!(args.region);
    }
    ignore(&mut spec, &args.ignore_paths);
    if let Some(timeout) = timeout {
        spec["timeout"] = json!(timeout);
    }
    local_reference(&mut spec, "secretRef", &args.secret_ref);
    local_reference(&mut spec, "proxySecretRef", &args.proxy_secret_ref);
    Ok(object(BUCKET, metadata, spec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_and_hosts_as_go_finds_them() {
        assert_eq!(go_scheme("HTTPS://x").ok().as_deref(), Some("https"));
        assert_eq!(go_scheme("github.com/x").ok().as_deref(), Some(""));
        assert!(go_scheme(":x").is_err());
        assert_eq!(go_host("oci://u@ghcr.io:5000/x"), "ghcr.io:5000");
        assert_eq!(go_host("https:///x"), "");
    }
}
