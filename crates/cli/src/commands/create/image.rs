//! `ferroflux create image repository|policy|update`: the image automation objects
//! (image.toolkit.fluxcd.io/v1) that `flux create image` generates, checked in flux's order
//! and words.

use std::process::ExitCode;

use anyhow::bail;
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::CreateArgs;
use super::object::{self, Generated};

/// `ferroflux create image`.
#[derive(Debug, Args)]
pub struct ImageArgs {
    #[command(subcommand)]
    what: ImageKind,
}

#[derive(Debug, Subcommand)]
enum ImageKind {
    /// Create or update an ImageRepository object.
    Repository(RepositoryArgs),
    /// Create or update an ImagePolicy object.
    Policy(PolicyArgs),
    /// Create or update an ImageUpdateAutomation object.
    Update(UpdateArgs),
}

/// Create or update an ImageRepository.
#[derive(Debug, Args)]
pub struct RepositoryArgs {
    /// The ImageRepository's name.
    name: Option<String>,
    /// The image repository to scan, e.g. library/alpine.
    #[arg(long, default_value = "")]
    image: String,
    /// The name of a docker-registry secret to use for credentials.
    #[arg(long, default_value = "")]
    secret_ref: String,
    /// The name of a secret to use for TLS certificates.
    #[arg(long = "cert-ref", default_value = "")]
    cert_secret_ref: String,
    /// A timeout for scanning (the interval when not set).
    #[arg(long, default_value = "0s")]
    scan_timeout: String,
}

/// Create or update an ImagePolicy.
#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// The ImagePolicy's name.
    name: Option<String>,
    /// The name of an ImageRepository object.
    #[arg(long, default_value = "")]
    image_ref: String,
    /// A semver range to apply to tags, e.g. '1.x'.
    #[arg(long = "select-semver", default_value = "")]
    semver: String,
    /// Alphabetical sorting: "asc" selects the last, "desc" the first.
    #[arg(long = "select-alpha", default_value = "")]
    alpha: String,
    /// Numeric sorting: "asc" selects the last, "desc" the first.
    #[arg(long = "select-numeric", default_value = "")]
    numeric: String,
    /// Regular expression pattern used to filter the image tags.
    #[arg(long, default_value = "")]
    filter_regex: String,
    /// Replacement pattern (capture groups of --filter-regex) to sort by.
    #[arg(long, default_value = "")]
    filter_extract: String,
    /// The digest reflection policy (Never, IfNotPresent, Always).
    #[arg(long, default_value = "")]
    reflect_digest: String,
}

/// Create or update an ImageUpdateAutomation.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The ImageUpdateAutomation's name.
    name: Option<String>,
    /// The name of a GitRepository with the upstream Git repository.
    #[arg(long = "git-repo-ref", default_value = "")]
    git_repo_name: String,
    /// The namespace of the GitRepository (the automation's when left out).
    #[arg(long, default_value = "")]
    git_repo_namespace: String,
    /// Path to the directory of the manifests to update (the repository root when left out).
    #[arg(long, default_value = "")]
    git_repo_path: String,
    /// The branch to checkout.
    #[arg(long, default_value = "")]
    checkout_branch: String,
    /// The branch to push commits to (the checkout branch when left out).
    #[arg(long, default_value = "")]
    push_branch: String,
    /// A template for commit messages.
    #[arg(long, default_value = "")]
    commit_template: String,
    /// The name to use for commit author.
    #[arg(long, default_value = "")]
    author_name: String,
    /// The email to use for commit author.
    #[arg(long, default_value = "")]
    author_email: String,
    /// Name of the Secret containing the commit signing key.
    #[arg(long, default_value = "")]
    signing_key_secret: String,
    /// Signing-key format: gpg or ssh.
    #[arg(long, default_value = "")]
    signing_key_type: String,
}

const fn image_kind(kind: &'static str, plural: &'static str) -> Generated {
    Generated {
        group: "image.toolkit.fluxcd.io",
        version: "v1",
        kind,
        plural,
    }
}

const REPOSITORY: Generated = image_kind("ImageRepository", "imagerepositories");
const POLICY: Generated = image_kind("ImagePolicy", "imagepolicies");
const UPDATE: Generated = image_kind("ImageUpdateAutomation", "imageupdateautomations");

/// The characters go-containerregistry allows in a repository name.
const REPOSITORY_CHARS: &str = "abcdefghijklmnopqrstuvwxyz0123456789_-./";

pub fn run(args: &ImageArgs, create: &CreateArgs) -> anyhow::Result<ExitCode> {
    let (generated, object) = match &args.what {
        ImageKind::Repository(repository) => (REPOSITORY, image_repository(repository, create)?),
        ImageKind::Policy(policy) => (POLICY, image_policy(policy, create)?),
        ImageKind::Update(update) => (UPDATE, image_update(update, create)?),
    };
    object::finish(generated, &object, create)
}

fn object(generated: Generated, metadata: Value, spec: Value) -> Value {
    json!({"apiVersion": format!("{}/{}", generated.group, generated.version),
        "kind": generated.kind, "metadata": metadata, "spec": spec})
}

/// go-containerregistry's `name.NewRepository` check of `--image`.
pub(super) fn check_image(image: &str) -> anyhow::Result<()> {
    let (registry, repository) = match image.split_once('/') {
        Some((registry, repository)) if registry.contains(['.', ':']) => (registry, repository),
        _ => ("", image),
    };
    let runes = repository.chars().count();
    if !(2..=255).contains(&runes) {
        bail!("repository must be between 2 and 255 characters in length: {repository}");
    }
    if !repository.chars().all(|c| REPOSITORY_CHARS.contains(c)) {
        bail!("repository can only contain the characters `{REPOSITORY_CHARS}`: {repository}");
    }
    // Go's check: `//<registry>` parses to that very URL authority.
    let authority_chars = |c: char| c.is_ascii_alphanumeric() || ".-:_[]~".contains(c);
    if !registry.chars().all(authority_chars) {
        bail!("registries must be valid RFC 3986 URI authorities: {registry}");
    }
    Ok(())
}

fn image_repository(args: &RepositoryArgs, create: &CreateArgs) -> anyhow::Result<Value> {
    let interval = object::duration("interval", create.interval())?;
    let timeout = object::duration("scan-timeout", &args.scan_timeout)?;
    let name = object::checked_name(args.name.as_deref())?;
    if args.image.is_empty() {
        bail!("an image repository (--image) is required");
    }
    check_image(&args.image)
        .map_err(|err| anyhow::anyhow!("unable to parse image value: {err}"))?;
    let metadata = object::metadata(name, create)?;
    let mut spec = json!({"image": args.image, "interval": interval});
    if timeout != "0s" {
        spec["timeout"] = json!(timeout);
    }
    if !args.secret_ref.is_empty() {
        spec["secretRef"] = json!({"name": args.secret_ref});
    }
    if !args.cert_secret_ref.is_empty() {
        spec["certSecretRef"] = json!({"name": args.cert_secret_ref});
    }
    Ok(object(REPOSITORY, metadata, spec))
}

/// `spec.policy`: one of semver, alphabetical or numerical. As flux's `switch` does, semver
/// beside another choice selects none.
fn selection(args: &PolicyArgs) -> anyhow::Result<Value> {
    let (semver, alpha, numeric) = (&args.semver, &args.alpha, &args.numeric);
    let order = |flag: &str, order: &str| {
        if order != "asc" && order != "desc" {
            bail!("--{flag} must be one of [\"asc\", \"desc\"]");
        }
        Ok(json!({ "order": order }))
    };
    Ok(
        match (semver.is_empty(), alpha.is_empty(), numeric.is_empty()) {
            (false, false, _) | (false, _, false) => json!({}),
            (_, false, false) => bail!(
                "only one of --select-semver, --select-alpha or --select-numeric can be specified"
            ),
            (false, true, true) => json!({"semver": {"range": semver}}),
            (true, false, true) => json!({"alphabetical": order("select-alpha", alpha)?}),
            (true, true, false) => json!({"numerical": order("select-numeric", numeric)?}),
            (true, true, true) => {
                bail!("a policy must be provided with either --select-semver or --select-alpha")
            }
        },
    )
}

/// flux's check of `--filter-extract` against the named groups of `--filter-regex`, as Go's
/// `regexp.Expand` reads `$name`, `${name}` and `$$`.
fn check_extract(template: &str, capture_names: &[&str]) -> anyhow::Result<()> {
    let mut rest = template;
    while let Some(at) = rest.find('$') {
        rest = &rest[at..];
        if rest.as_bytes().get(1) == Some(&b'$') {
            rest = &rest[2..];
            continue;
        }
        let (braced, after) = match rest[1..].strip_prefix('{') {
            Some(after) => (true, after),
            None => (false, &rest[1..]),
        };
        let end = after
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        let name = &after[..end];
        if name.is_empty() || (braced && !after[end..].starts_with('}')) {
            bail!("--filter-extract is malformed");
        }
        rest = &after[end + usize::from(braced)..];
        let numbered = (name.len() == 1 || !name.starts_with('0'))
            && name.len() <= 8
            && name.bytes().all(|b| b.is_ascii_digit());
        if !numbered && !capture_names.contains(&name) {
            bail!("capture group ${name} used in --filter-extract not found in --filter-regex");
        }
    }
    Ok(())
}

fn image_policy(args: &PolicyArgs, create: &CreateArgs) -> anyhow::Result<Value> {
    // The ImagePolicy's own `--interval` (for digest reflection) has no default.
    let interval = create
        .interval
        .as_deref()
        .map(|value| object::duration("interval", value))
        .transpose()?
        .filter(|every| every != "0s");
    let name = object::checked_name(args.name.as_deref())?;
    if args.image_ref.is_empty() {
        bail!("the name of an ImageRepository in the namespace is required (--image-ref)");
    }
    let metadata = object::metadata(name, create)?;
    let mut spec = json!({"imageRepositoryRef": {"name": args.image_ref},
        "policy": selection(args)?});
    if !args.filter_regex.is_empty() {
        let Ok(pattern) = regex::Regex::new(&args.filter_regex) else {
            bail!("--filter-regex is an invalid regex pattern");
        };
        let mut filter = json!({ "pattern": args.filter_regex });
        if !args.filter_extract.is_empty() {
            let names: Vec<&str> = pattern.capture_names().flatten().collect();
            check_extract(&args.filter_extract, &names)?;
            filter["extract"] = json!(args.filter_extract);
        }
        spec["filterTags"] = filter;
    } else if !args.filter_extract.is_empty() {
        bail!("cannot specify --filter-extract without specifying --filter-regex");
    }
    if !args.reflect_digest.is_empty() {
        if !["Never", "IfNotPresent", "Always"].contains(&args.reflect_digest.as_str()) {
            bail!(
                "invalid value for --reflect-digest, must be one of 'Never', 'IfNotPresent', 'Always'"
            );
        }
        spec["digestReflectionPolicy"] = json!(args.reflect_digest);
    }
    if let Some(interval) = interval {
        if args.reflect_digest != "Always" {
            bail!(
                "the --interval flag can only be used with the 'Always' digest reflection policy, use --reflect-digest=Always"
            );
        }
        spec["interval"] = json!(interval);
    }
    Ok(object(POLICY, metadata, spec))
}

fn image_update(args: &UpdateArgs, create: &CreateArgs) -> anyhow::Result<Value> {
    let interval = object::duration("interval", create.interval())?;
    let name = object::checked_name(args.name.as_deref())?;
    if args.git_repo_name.is_empty() {
        bail!("a reference to a GitRepository is required (--git-repo-ref)");
    }
    if args.checkout_branch.is_empty() {
        bail!("the Git repository branch is required (--checkout-branch)");
    }
    if args.author_name.is_empty() {
        bail!("the author name is required (--author-name)");
    }
    if args.author_email.is_empty() {
        bail!("the author email is required (--author-email)");
    }
    let key_type = args.signing_key_type.as_str();
    if !key_type.is_empty() && args.signing_key_secret.is_empty() {
        bail!("--signing-key-type requires --signing-key-secret");
    }
    if !key_type.is_empty() && key_type != "gpg" && key_type != "ssh" {
        bail!("--signing-key-type must be one of: gpg, ssh");
    }
    let metadata = object::metadata(name, create)?;
    let mut commit = json!({"author": {"email": args.author_email, "name": args.author_name}});
    if !args.commit_template.is_empty() {
        commit["messageTemplate"] = json!(args.commit_template);
    }
    if !args.signing_key_secret.is_empty() {
        let mut key = json!({"secretRef": {"name": args.signing_key_secret}});
        if !key_type.is_empty() {
            key["type"] = json!(key_type);
        }
        commit["signingKey"] = key;
    }
    let mut git = json!({"checkout": {"ref": {"branch": args.checkout_branch}}, "commit": commit});
    if !args.push_branch.is_empty() {
        git["push"] = json!({"branch": args.push_branch});
    }
    let mut spec = json!({"git": git, "interval": interval,
        "sourceRef": object::reference("GitRepository", &args.git_repo_name, &args.git_repo_namespace)});
    if !args.git_repo_path.is_empty() {
        spec["update"] = json!({"path": args.git_repo_path, "strategy": "Setters"});
    }
    Ok(object(UPDATE, metadata, spec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extract_templates_name_groups_of_the_pattern() {
        assert!(check_extract("$ts-${ts}-$1-$$x", &["ts"]).is_ok());
        assert!(check_extract("$other", &["ts"]).is_err());
        assert!(check_extract("${ts", &["ts"]).is_err());
        assert!(check_extract("$-", &["ts"]).is_err());
    }

    #[test]
    fn images_are_checked_like_go_containerregistry() {
        assert!(check_image("ghcr.io/stefanprodan/podinfo").is_ok());
        assert!(check_image("alpine:3").is_err());
        assert!(check_image("a").is_err());
    }
}
