//! `ferroflux bootstrap git`: the steps of `flux bootstrap git` over HTTP(S) with token auth
//! or over SSH with a deploy key (read from `--private-key-file` or generated):
//! commits `<path>/<namespace>/gotk-components.yaml` (the manifests of `install`, with its
//! `--components-extra` and `--<controller>-extra-args` flags), installs them when the cluster
//! has no Ready sync Kustomization yet, writes the source Secret, commits `gotk-sync.yaml` and
//! `kustomization.yaml`, applies the sync objects and waits for the GitRepository, the
//! Kustomization and the controllers. Idempotent: a second run commits nothing and says the
//! manifests are up to date.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use ferroflux_source::git::push::{
    Author, CommitRequest, UpdateOutcome, UpdateRequest, Worktree, update_branch,
};
use ferroflux_source::git::{CloneOptions, GitAuth, GitRef};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use super::get;
use super::install::InstallArgs;

mod provider;
mod ssh;

/// Deploy Flux on a cluster the GitOps way.
#[derive(Debug, Args)]
pub struct BootstrapArgs {
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, Subcommand)]
enum What {
    /// Bootstrap with a generic Git server (SSH with a deploy key, or HTTP(S) with
    /// `--token-auth`).
    Git(Box<GitArgs>),
    /// Deploy Flux on a cluster connected to a GitHub repository (created when missing).
    Github(Box<provider::ProviderArgs>),
    /// Deploy Flux on a cluster connected to a GitLab project (created when missing).
    Gitlab(Box<provider::ProviderArgs>),
    /// Deploy Flux on a cluster connected to a Gitea repository (created when missing).
    Gitea(Box<provider::ProviderArgs>),
}

/// `bootstrap git` flags, as flux's.
#[derive(Debug, Args)]
struct GitArgs {
    /// Git repository URL (set by the provider for `bootstrap github|gitlab|gitea`).
    #[arg(long, default_value = "")]
    url: String,
    /// Git branch.
    #[arg(long, default_value = "main")]
    branch: String,
    /// Path relative to the repository root; the cluster sync is scoped to it.
    #[arg(long, default_value = "")]
    path: String,
    /// Sync interval, a Go duration.
    #[arg(long, default_value = "1m")]
    interval: String,
    /// Basic authentication username.
    #[arg(short = 'u', long, default_value = "git")]
    username: String,
    /// Basic authentication password (or token).
    #[arg(short = 'p', long, default_value = "")]
    password: String,
    /// Use the username and password (token) for Git over HTTP(S) instead of an SSH key.
    #[arg(long)]
    token_auth: bool,
    /// Allow insecure HTTP connections.
    #[arg(long)]
    allow_insecure_http: bool,
    /// Path to a private key file used for authenticating to the Git SSH server; without it
    /// a deploy key is generated.
    #[arg(long, default_value = "")]
    private_key_file: String,
    /// SSH key algorithm of the generated deploy key.
    #[arg(long, default_value = "ecdsa")]
    ssh_key_algorithm: String,
    /// SSH ECDSA public key curve of the generated deploy key (p256, p384).
    #[arg(long, default_value = "p384")]
    ssh_ecdsa_curve: String,
    /// SSH hostname, to be used when the SSH host differs from the HTTPS one.
    #[arg(long, default_value = "")]
    ssh_hostname: String,
    /// Name of the secret the sync credentials are stored in.
    #[arg(long, default_value = "flux-system")]
    secret_name: String,
    /// Author name for Git commits.
    #[arg(long, default_value = "Flux")]
    author_name: String,
    /// Author email for Git commits.
    #[arg(long, default_value = "")]
    author_email: String,
    /// A string to add to the commit messages, e.g. '[ci skip]'.
    #[arg(long, default_value = "")]
    commit_message_appendix: String,
    /// Assume the deploy key is set up; skip confirmation.
    #[arg(short, long)]
    silent: bool,
    #[command(flatten)]
    install: InstallArgs,
}

/// How the CLI reaches the repository and what the source Secret holds.
struct Credentials {
    /// Clone and push options.
    options: CloneOptions,
    /// The Secret's data when it is created (never logged).
    secret_data: Value,
}

/// Runs `bootstrap git`.
pub fn run(args: BootstrapArgs) -> anyhow::Result<ExitCode> {
    let args = match args.what {
        What::Git(args) => args,
        What::Github(args) => return provider::run(provider::Provider::Github, *args),
        What::Gitlab(args) => return provider::run(provider::Provider::Gitlab, *args),
        What::Gitea(args) => return provider::run(provider::Provider::Gitea, *args),
    };
    if args.url.is_empty() {
        bail!("required flag(s) \"url\" not set");
    }
    let url = check_url(&args)?;
    let interval = ferroflux_gocompat::duration::parse_std(&args.interval)
        .map_err(|e| anyhow::anyhow!("invalid argument for --interval: {e}"))?;
    let namespace = args.install.namespace().to_string();
    let cluster = args.install.cluster_args();
    super::cluster::block_on(cluster.timeout()?, async {
        let client = cluster.client().await?;
        let credentials = credentials(&client, &args, &namespace).await?;
        bootstrap(&client, &args, &credentials, &url, interval).await
    })
}

/// The steps after the credentials are known: components, source Secret, sync.
async fn bootstrap(
    client: &kube::Client,
    args: &GitArgs,
    credentials: &Credentials,
    url: &str,
    interval: Duration,
) -> anyhow::Result<ExitCode> {
    let options = &credentials.options;
    let namespace = args.install.namespace().to_string();
    let dir = target_dir(&args.path, &namespace);
    let author = Author {
        name: args.author_name.clone(),
        email: args.author_email.clone(),
    };
    eprintln!(
        "► cloning branch {:?} from Git repository {:?}",
        args.branch, args.url
    );
    // The clone is made (and made again for the sync commit) by each commit below.
    eprintln!("✔ cloned repository");
    eprintln!("► generating component manifests");
    let components = components(&args.install)?;
    eprintln!("✔ generated component manifests");
    let message = with_appendix(
        &format!(
            "Add Flux v{} component manifests",
            env!("CARGO_PKG_VERSION")
        ),
        &args.commit_message_appendix,
    );
    let files = [(dir.join("gotk-components.yaml"), components)];
    match commit_files(args, options, &files, &message, &author)? {
        Some(commit) => {
            eprintln!(
                "✔ committed component manifests to {:?} ({commit:?})",
                args.branch
            );
            eprintln!("► pushing component manifests to {:?}", args.url);
        }
        None => eprintln!("✔ component manifests are up to date"),
    }
    install_components(client, &args.install, &namespace).await?;
    source_secret(client, args, &namespace, &credentials.secret_data).await?;
    eprintln!("► generating sync manifests");
    let sync = sync_manifest(url, args, &namespace, interval);
    let kustomization = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n\
                         resources:\n- gotk-components.yaml\n- gotk-sync.yaml\n";
    eprintln!("✔ generated sync manifests");
    let files = [
        (dir.join("gotk-sync.yaml"), sync.clone()),
        (dir.join("kustomization.yaml"), kustomization.to_string()),
    ];
    let message = with_appendix("Add Flux sync manifests", &args.commit_message_appendix);
    let head = match commit_files(args, options, &files, &message, &author)? {
        Some(commit) => {
            eprintln!(
                "✔ committed sync manifests to {:?} ({commit:?})",
                args.branch
            );
            eprintln!("► pushing sync manifests to {:?}", args.url);
            Some(commit)
        }
        None => {
            eprintln!("✔ sync manifests are up to date");
            None
        }
    };
    eprintln!("► applying sync manifests");
    apply_documents(client, &sync).await?;
    eprintln!("✔ reconciled sync configuration");
    wait_synced(client, &namespace, head.as_deref()).await?;
    eprintln!("► confirming components are healthy");
    wait_components(client, &args.install, &namespace).await?;
    eprintln!("✔ all components are healthy");
    Ok(ExitCode::SUCCESS)
}

/// The credentials of the run. Over SSH: the `identity` of an existing source Secret (flux
/// keeps that Secret), else `--private-key-file`, else a generated deploy key, whose public
/// key is printed and, unless `--silent`, confirmed to have access before anything is pushed;
/// `known_hosts` is scanned from the server (at `--ssh-hostname` for the Secret).
async fn credentials(
    client: &kube::Client,
    args: &GitArgs,
    namespace: &str,
) -> anyhow::Result<Credentials> {
    if !args.url.starts_with("ssh://") {
        return Ok(Credentials {
            options: CloneOptions {
                auth: GitAuth::basic(&args.username, &args.password),
                ..CloneOptions::default()
            },
            secret_data: json!({"username": args.username, "password": args.password}),
        });
    }
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(client.clone(), namespace);
    let existing = secrets
        .get_opt(&args.secret_name)
        .await?
        .and_then(|s| s.data)
        .and_then(|mut d| d.remove("identity"))
        .and_then(|k| String::from_utf8(k.0).ok());
    let key = match existing {
        Some(private_key) => ssh::KeyPair {
            private_key,
            public_key: String::new(),
        },
        None => {
            let key = if args.private_key_file.is_empty() {
                ssh::generate(&args.ssh_key_algorithm, &args.ssh_ecdsa_curve)?
            } else {
                ssh::read_private_key_file(Path::new(&args.private_key_file))?
            };
            confirm_public_key(&key.public_key, args.silent)?;
            key
        }
    };
    let (host, port) = ssh::host_and_port(&args.url)?;
    let known_hosts = ssh::scan_host_key(&host, port)?;
    let secret_known_hosts = if args.ssh_hostname.is_empty() {
        known_hosts.clone()
    } else {
        let (host, port) = ssh::host_and_port(&ssh::with_hostname(&args.url, &args.ssh_hostname)?)?;
        ssh::scan_host_key(&host, port)?
    };
    let secret_data = json!({
        "identity": key.private_key,
        "identity.pub": key.public_key,
        "known_hosts": secret_known_hosts,
    });
    let auth = GitAuth {
        ssh: Some(ferroflux_source::git::SshAuth {
            user: ssh::user(&args.url),
            private_key: key.private_key,
            passphrase: None,
            known_hosts,
        }),
        ..GitAuth::default()
    };
    Ok(Credentials {
        options: CloneOptions {
            auth,
            ..CloneOptions::default()
        },
        secret_data,
    })
}

/// flux's `promptPublicKey`: prints the public key and, unless `silent`, asks that it be
/// given access to the repository (`y` goes on; anything else aborts).
fn confirm_public_key(public_key: &str, silent: bool) -> anyhow::Result<()> {
    eprintln!("✔ public key: {}", public_key.trim());
    if silent {
        return Ok(());
    }
    eprint!("? Please give the key access to your repository [y/N] ");
    let mut answer = String::new();
    // One short answer line; a longer line is not a yes.
    std::io::BufRead::read_line(
        &mut std::io::Read::take(std::io::stdin().lock(), 64),
        &mut answer,
    )?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        bail!("aborting")
    }
}

fn with_appendix(message: &str, appendix: &str) -> String {
    if appendix.is_empty() {
        message.to_string()
    } else {
        format!("{message}\n\n{appendix}")
    }
}

/// The URL the GitRepository syncs from, after flux's scheme checks.
fn check_url(args: &GitArgs) -> anyhow::Result<String> {
    let Some((scheme, _)) = args.url.split_once("://") else {
        bail!("scheme \"\" is not supported");
    };
    match scheme {
        "http" if !args.allow_insecure_http => {
            bail!("scheme http is insecure, pass --allow-insecure-http=true to allow it")
        }
        "http" | "https" if args.token_auth => Ok(args.url.clone()),
        "http" | "https" => bail!(
            "ferroflux bootstraps over HTTP(S) with --token-auth only; use an ssh:// URL for a deploy key"
        ),
        "ssh" if args.token_auth => bail!("--token-auth requires an http(s) URL"),
        "ssh" => ssh::with_hostname(&args.url, &args.ssh_hostname),
        other => bail!("scheme {other:?} is not supported"),
    }
}

/// `<path>/<namespace>` in the repository, as flux joins them.
fn target_dir(path: &str, namespace: &str) -> PathBuf {
    let path = path.trim_start_matches("./").trim_matches('/');
    Path::new(path).join(namespace)
}

/// gotk-components.yaml: flux's generated-file warning, then every install document.
fn components(install: &InstallArgs) -> anyhow::Result<String> {
    let documents = install.manifests()?;
    let mut text = String::from("---\n# This manifest was generated by ferroflux. DO NOT EDIT.\n");
    text.push_str(&format!(
        "# Flux Version: v{}\n# Components: {}\n",
        env!("CARGO_PKG_VERSION"),
        install.component_names().join(",")
    ));
    for document in documents {
        text.push_str("---\n");
        text.push_str(&document);
    }
    Ok(text)
}

/// gotk-sync.yaml as flux's `sync.Generate` writes it.
fn sync_manifest(url: &str, args: &GitArgs, namespace: &str, interval: Duration) -> String {
    let nanos = i64::try_from(interval.as_nanos()).unwrap_or(i64::MAX);
    let interval = ferroflux_gocompat::duration::format(nanos);
    let path = args.path.trim_start_matches("./");
    format!(
        "# This manifest was generated by flux. DO NOT EDIT.\n---\n\
         apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  \
         name: {namespace}\n  namespace: {namespace}\nspec:\n  interval: {interval}\n  ref:\n    \
         branch: {branch}\n  secretRef:\n    name: {secret}\n  url: {url}\n---\n\
         apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  \
         name: {namespace}\n  namespace: {namespace}\nspec:\n  interval: 10m0s\n  \
         path: ./{path}\n  prune: true\n  sourceRef:\n    kind: GitRepository\n    \
         name: {namespace}\n",
        branch = args.branch,
        secret = args.secret_name,
    )
}

/// Writes `files` on the branch and pushes one commit when any changed; the new commit.
fn commit_files(
    args: &GitArgs,
    options: &CloneOptions,
    files: &[(PathBuf, String)],
    message: &str,
    author: &Author,
) -> anyhow::Result<Option<String>> {
    let checkout = GitRef::branch(&args.branch);
    let request = UpdateRequest {
        url: &args.url,
        checkout: &checkout,
        push_branch: &args.branch,
        refspec: None,
        push_options: &[],
        options,
        attempts: 3,
    };
    let edit = |tree: &Worktree<'_>| -> Result<((), Option<CommitRequest>), std::io::Error> {
        let mut changed = Vec::new();
        for (path, content) in files {
            let file = tree.dir.join(path);
            if std::fs::read_to_string(&file).ok().as_deref() == Some(content.as_str()) {
                continue;
            }
            if let Some(parent) = file.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&file, content)?;
            changed.push(path.clone());
        }
        let commit = (!changed.is_empty()).then(|| CommitRequest {
            message: message.to_string(),
            author: author.clone(),
            paths: changed,
        });
        Ok(((), commit))
    };
    let outcome = update_branch(&request, edit).map_err(|e| match e {
        ferroflux_source::git::push::PushError::Git(e) => {
            anyhow::anyhow!("failed to clone repository: {e}")
        }
        other => anyhow::anyhow!("failed to push manifests: {other}"),
    })?;
    Ok(match outcome {
        UpdateOutcome::Pushed { commit, .. } => Some(commit),
        UpdateOutcome::Unchanged { .. } => None,
    })
}

/// Installs the components unless the sync Kustomization is already Ready (flux's
/// `mustInstallManifests`), then waits for them.
async fn install_components(
    client: &kube::Client,
    install: &InstallArgs,
    namespace: &str,
) -> anyhow::Result<()> {
    let kustomizations: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &get::KUSTOMIZATIONS.resource());
    let synced = match kustomizations.get_opt(namespace).await? {
        Some(ks) => get::ready(&serde_json::to_value(ks)?).is_some_and(|c| c["status"] == "True"),
        None => false,
    };
    if !synced {
        eprintln!("► installing components in {namespace:?} namespace");
        let documents = install.manifests()?;
        let text = documents.join("---\n");
        apply_documents(client, &text).await?;
        eprintln!("✔ installed components");
    }
    wait_components(client, install, namespace).await?;
    eprintln!("✔ reconciled components");
    Ok(())
}

/// Applies every YAML document of `text` server-side, CRDs first.
async fn apply_documents(client: &kube::Client, text: &str) -> anyhow::Result<()> {
    let objects: Vec<Value> = ferroflux_gocompat::yaml::from_multiple(text)
        .map_err(|e| anyhow::anyhow!("cannot read the manifests: {e}"))?;
    let objects: Vec<Value> = objects.into_iter().filter(Value::is_object).collect();
    let manager = ferroflux_apply::manager::ResourceManager::new(client.clone(), "flux");
    manager
        .apply_all(&objects, &ferroflux_apply::manager::ApplyOptions::default())
        .await
        .map_err(|e| anyhow::anyhow!("install failed: {e}"))?;
    Ok(())
}

/// flux's source secret step: kept when it exists, else created with the credentials.
async fn source_secret(
    client: &kube::Client,
    args: &GitArgs,
    namespace: &str,
    data: &Value,
) -> anyhow::Result<()> {
    let key = format!("{namespace}/{}", args.secret_name);
    eprintln!("► determining if source secret {key:?} exists");
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(client.clone(), namespace);
    if secrets.get_opt(&args.secret_name).await?.is_some() {
        eprintln!("✔ source secret up to date");
        return Ok(());
    }
    eprintln!("► generating source secret");
    let secret = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": args.secret_name, "namespace": namespace},
        "stringData": data,
    }))?;
    eprintln!("► applying source secret {key:?}");
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .context("failed to apply source secret")?;
    eprintln!("✔ reconciled source secret");
    Ok(())
}

/// Asks for a reconcile of the GitRepository and the Kustomization and waits until each is
/// Ready at its generation (the GitRepository at the pushed commit, when there is one).
async fn wait_synced(
    client: &kube::Client,
    namespace: &str,
    head: Option<&str>,
) -> anyhow::Result<()> {
    let requested = jiff::Timestamp::now().to_string();
    let patch = json!({"metadata": {"annotations": {
        ferroflux_api::meta::RECONCILE_REQUEST_ANNOTATION: requested}}});
    for (shown, kind) in [
        (
            get::source("GitRepository", "gitrepositories"),
            "GitRepository",
        ),
        (get::KUSTOMIZATIONS, "Kustomization"),
    ] {
        eprintln!(
            "◎ waiting for {kind} {:?} to be reconciled",
            format!("{namespace}/{namespace}")
        );
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), namespace, &shown.resource());
        api.patch(namespace, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        loop {
            let object = serde_json::to_value(api.get(namespace).await?)?;
            let at_head = head.is_none_or(|h| shown.revision_of(&object).ends_with(h));
            if get::is_ready(&object) && at_head {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        eprintln!("✔ {kind} reconciled successfully");
    }
    Ok(())
}

/// Waits until every installed controller's Deployment is Current.
async fn wait_components(
    client: &kube::Client,
    install: &InstallArgs,
    namespace: &str,
) -> anyhow::Result<()> {
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(client.clone(), namespace);
    for name in install.component_names() {
        loop {
            let deployment = deployments.get_opt(name).await?;
            let health = ferroflux_apply::health::assess(&serde_json::to_value(&deployment)?);
            match health.status {
                ferroflux_apply::health::Status::Current if deployment.is_some() => break,
                ferroflux_apply::health::Status::Failed => {
                    bail!("{name}: {}", health.message)
                }
                _ => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(subcommand)]
        what: What,
    }

    fn git_args(extra: &[&str]) -> GitArgs {
        let mut argv = vec!["x", "git", "--url", "http://127.0.0.1:1/fleet.git"];
        argv.extend(extra);
        match Cli::parse_from(argv).what {
            What::Git(args) => *args,
            _ => unreachable!("git"),
        }
    }

    #[test]
    fn sync_manifests_are_written_as_flux_writes_them() {
        let args = git_args(&["--path", "clusters/staging", "--token-auth"]);
        let text = sync_manifest(&args.url, &args, "flux-system", Duration::from_secs(60));
        assert!(text.starts_with("# This manifest was generated by flux. DO NOT EDIT.\n---\n"));
        assert!(text.contains("  interval: 1m0s\n  ref:\n    branch: main\n  secretRef:\n    name: flux-system\n  url: http://127.0.0.1:1/fleet.git\n"), "{text}");
        assert!(
            text.contains("  path: ./clusters/staging\n  prune: true\n"),
            "{text}"
        );
        assert_eq!(
            target_dir("./clusters/staging/", "flux-system"),
            PathBuf::from("clusters/staging/flux-system")
        );
    }

    #[test]
    fn insecure_and_ssh_urls_are_refused_as_flux_refuses_them() {
        let refused = check_url(&git_args(&["--token-auth"]));
        assert_eq!(
            refused.err().map(|e| e.to_string()),
            Some("scheme http is insecure, pass --allow-insecure-http=true to allow it".into())
        );
        assert!(check_url(&git_args(&["--token-auth", "--allow-insecure-http"])).is_ok());
    }
}
