//! `bootstrap github`, `bootstrap gitlab` and `bootstrap gitea`: flux's Git provider steps
//! (get or create the repository, add the deploy key) over the provider's REST API, then the
//! `bootstrap git` steps on the repository's HTTPS clone URL with the token, syncing the SSH
//! URL with a deploy key (or the HTTPS URL with `--token-auth`).

use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{ArgAction, Args};
use ferroflux_source::git::{CloneOptions, GitAuth};
use kube::api::Api;
use serde_json::{Value, json};

use super::{Credentials, GitArgs, ssh};

/// A response body is a repository or a short key list; bound what is read.
const MAX_RESPONSE: usize = 1024 * 1024;

/// The Git provider whose API `bootstrap <provider>` calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Provider {
    /// GitHub (and GitHub Enterprise): `/repos/{owner}/{repo}`, bearer token.
    Github,
    /// GitLab: `/api/v4/projects/{owner%2Frepo}`, `PRIVATE-TOKEN` header.
    Gitlab,
    /// Gitea: GitHub-shaped `/api/v1/repos/{owner}/{repo}`, `token` authorization.
    Gitea,
}

/// `bootstrap github|gitlab|gitea` flags, as flux's.
#[derive(Debug, Args)]
pub(super) struct ProviderArgs {
    /// The user or organization (GitLab: group) name.
    #[arg(long)]
    owner: String,
    /// The repository (GitLab: project) name.
    #[arg(long)]
    repository: String,
    /// If true, the owner is assumed to be a user; otherwise an organization or group.
    #[arg(long)]
    personal: bool,
    /// If true, the repository is set up as private.
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    private: bool,
    /// The provider's hostname (github.com, gitlab.com, gitea.com by default).
    #[arg(long, default_value = "")]
    hostname: String,
    /// If true, the deploy key is configured with read/write permissions.
    #[arg(long)]
    read_write_key: bool,
    /// The REST API base URL with its version path (defaults from --hostname; for tests and
    /// proxies).
    #[arg(long, default_value = "", hide = true)]
    api_url: String,
    #[command(flatten)]
    git: GitArgs,
}

/// The repository as the API returns it.
struct Repository {
    clone_url: String,
    ssh_url: String,
    /// The API path of its deploy keys.
    keys_path: String,
}

impl Provider {
    fn token_variable(self) -> &'static str {
        match self {
            Provider::Github => "GITHUB_TOKEN",
            Provider::Gitlab => "GITLAB_TOKEN",
            Provider::Gitea => "GITEA_TOKEN",
        }
    }

    fn default_hostname(self) -> &'static str {
        match self {
            Provider::Github => "github.com",
            Provider::Gitlab => "gitlab.com",
            Provider::Gitea => "gitea.com",
        }
    }

    /// The REST API base URL of `hostname`.
    fn api_base(self, hostname: &str) -> String {
        match self {
            Provider::Github if hostname == "github.com" => "https://api.github.com".to_string(),
            Provider::Github => format!("https://{hostname}/api/v3"),
            Provider::Gitlab => format!("https://{hostname}/api/v4"),
            Provider::Gitea => format!("https://{hostname}/api/v1"),
        }
    }

    /// The response fields of a repository: HTTPS clone URL, SSH clone URL, web page.
    fn url_fields(self) -> [&'static str; 3] {
        match self {
            Provider::Gitlab => ["http_url_to_repo", "ssh_url_to_repo", "web_url"],
            Provider::Github | Provider::Gitea => ["clone_url", "ssh_url", "html_url"],
        }
    }
}

/// Runs `bootstrap <provider>`.
pub(super) fn run(provider: Provider, mut args: ProviderArgs) -> anyhow::Result<ExitCode> {
    let variable = provider.token_variable();
    let token = std::env::var(variable)
        .ok()
        .filter(|t| !t.is_empty())
        .with_context(|| format!("{variable} environment variable is not set"))?;
    let interval = ferroflux_gocompat::duration::parse_std(&args.git.interval)
        .map_err(|e| anyhow::anyhow!("invalid argument for --interval: {e}"))?;
    if args.hostname.is_empty() {
        args.hostname = provider.default_hostname().to_string();
    }
    let api = if args.api_url.is_empty() {
        provider.api_base(&args.hostname)
    } else {
        args.api_url.trim_end_matches('/').to_string()
    };
    let cluster = args.git.install.cluster_args();
    super::super::cluster::block_on(cluster.timeout()?, async {
        let client = cluster.client().await?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("ferroflux/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let api = ProviderApi {
            provider,
            http: &http,
            api: &api,
            token: &token,
        };
        eprintln!("► connecting to {}", args.hostname);
        let repository = api.reconcile_repository(&args).await?;
        args.git.url = repository.clone_url.clone();
        let sync_url = if args.git.token_auth {
            repository.clone_url.clone()
        } else {
            repository.ssh_url.clone()
        };
        let credentials = api.credentials(&client, &args, &repository).await?;
        super::bootstrap(&client, &args.git, &credentials, &sync_url, interval).await
    })
}

/// The provider's REST API, called with the token.
struct ProviderApi<'a> {
    provider: Provider,
    http: &'a reqwest::Client,
    api: &'a str,
    token: &'a str,
}

impl ProviderApi<'_> {
    /// One API call; the status and the JSON body (`Null` when empty).
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(reqwest::StatusCode, Value)> {
        let request = self
            .http
            .request(method.clone(), format!("{}{path}", self.api));
        let mut request = match self.provider {
            Provider::Github => request
                .bearer_auth(self.token)
                .header("Accept", "application/vnd.github+json"),
            Provider::Gitlab => request.header("PRIVATE-TOKEN", self.token),
            Provider::Gitea => request.header("Authorization", format!("token {}", self.token)),
        };
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {path} failed"))?;
        let status = response.status();
        let bytes = response.bytes().await?;
        if bytes.len() > MAX_RESPONSE {
            bail!("{method} {path}: response larger than {MAX_RESPONSE} bytes");
        }
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        Ok((status, value))
    }

    /// Gets the repository, creating it (for the user or the organization/group) when it
    /// does not exist.
    async fn reconcile_repository(&self, args: &ProviderArgs) -> anyhow::Result<Repository> {
        let path = match self.provider {
            Provider::Gitlab => format!(
                "/projects/{}",
                path_segment(&format!("{}/{}", args.owner, args.repository))?
            ),
            Provider::Github | Provider::Gitea => {
                format!("/repos/{}/{}", args.owner, args.repository)
            }
        };
        let (status, mut repo) = self.call(reqwest::Method::GET, &path, None).await?;
        let [clone_field, ssh_field, web_field] = self.provider.url_fields();
        if status == reqwest::StatusCode::NOT_FOUND {
            repo = self.create_repository(args).await?;
            eprintln!(
                "✔ repository {:?} created",
                repo[web_field].as_str().unwrap_or_default()
            );
        } else if !status.is_success() {
            bail!("failed to get repository: {status} {}", repo["message"]);
        }
        let clone_url = repo[clone_field]
            .as_str()
            .with_context(|| format!("the repository has no {clone_field}"))?
            .to_string();
        let ssh_url = match repo[ssh_field].as_str() {
            Some(url) if url.starts_with("ssh://") => url.to_string(),
            // The APIs return the scp form; flux syncs the ssh:// form.
            _ => format!(
                "ssh://git@{}/{}/{}",
                args.hostname, args.owner, args.repository
            ),
        };
        let keys_path = match self.provider {
            Provider::Gitlab => {
                let id = repo["id"].as_u64().context("the project has no id")?;
                format!("/projects/{id}/deploy_keys")
            }
            Provider::Github | Provider::Gitea => {
                format!("/repos/{}/{}/keys", args.owner, args.repository)
            }
        };
        Ok(Repository {
            clone_url,
            ssh_url,
            keys_path,
        })
    }

    /// Creates the repository: GitHub and Gitea for the user or the organization, GitLab in
    /// the user's namespace or the group's (looked up by path).
    async fn create_repository(&self, args: &ProviderArgs) -> anyhow::Result<Value> {
        let (create, body) = match self.provider {
            Provider::Gitlab => {
                let visibility = if args.private { "private" } else { "public" };
                let mut body = json!({"name": args.repository, "visibility": visibility});
                if !args.personal {
                    let path = format!("/namespaces/{}", path_segment(&args.owner)?);
                    let (status, group) = self.call(reqwest::Method::GET, &path, None).await?;
                    if !status.is_success() {
                        bail!(
                            "failed to get group {:?}: {status} {}",
                            args.owner,
                            group["message"]
                        );
                    }
                    body["namespace_id"] = group["id"].clone();
                }
                ("/projects".to_string(), body)
            }
            Provider::Github | Provider::Gitea => {
                let create = if args.personal {
                    "/user/repos".to_string()
                } else {
                    format!("/orgs/{}/repos", args.owner)
                };
                let body =
                    json!({"name": args.repository, "private": args.private, "auto_init": true});
                (create, body)
            }
        };
        let (status, created) = self
            .call(reqwest::Method::POST, &create, Some(&body))
            .await?;
        if !status.is_success() {
            bail!(
                "failed to create repository: {status} {}",
                created["message"]
            );
        }
        Ok(created)
    }

    /// The clone credentials (the token over HTTPS) and, when the source Secret is to be
    /// created, its data: the token with `--token-auth`, else a deploy key (read from
    /// `--private-key-file` or generated) that is added to the repository.
    async fn credentials(
        &self,
        client: &kube::Client,
        args: &ProviderArgs,
        repository: &Repository,
    ) -> anyhow::Result<Credentials> {
        // GitLab takes any username with a personal access token; flux uses "git".
        let options = CloneOptions {
            auth: GitAuth::basic("git", self.token),
            // libgit2's local transport (a file:// clone URL of a self-hosted mirror) cannot
            // fetch shallow.
            shallow: !args.git.url.starts_with("file://"),
            ..CloneOptions::default()
        };
        if args.git.token_auth {
            return Ok(Credentials {
                options,
                secret_data: json!({"username": "git", "password": self.token}),
            });
        }
        let namespace = args.git.install.namespace();
        let secrets: Api<k8s_openapi::api::core::v1::Secret> =
            Api::namespaced(client.clone(), namespace);
        if secrets.get_opt(&args.git.secret_name).await?.is_some() {
            // flux keeps an existing Secret and its deploy key.
            return Ok(Credentials {
                options,
                secret_data: Value::Null,
            });
        }
        let key = if args.git.private_key_file.is_empty() {
            ssh::generate(&args.git.ssh_key_algorithm, &args.git.ssh_ecdsa_curve)?
        } else {
            ssh::read_private_key_file(std::path::Path::new(&args.git.private_key_file))?
        };
        eprintln!("✔ public key: {}", key.public_key.trim());
        let (host, port) = ssh::host_and_port(&repository.ssh_url)?;
        let known_hosts = ssh::scan_host_key(&host, port)?;
        self.reconcile_deploy_key(args, &repository.keys_path, &key.public_key)
            .await?;
        Ok(Credentials {
            options,
            secret_data: json!({
                "identity": key.private_key,
                "identity.pub": key.public_key,
                "known_hosts": known_hosts,
            }),
        })
    }

    /// Adds the deploy key unless a key of the same title and value is there; a key of the
    /// same title with another value is replaced.
    async fn reconcile_deploy_key(
        &self,
        args: &ProviderArgs,
        path: &str,
        public_key: &str,
    ) -> anyhow::Result<()> {
        let git = &args.git;
        let title = deploy_key_name(
            git.install.namespace(),
            &git.secret_name,
            &git.branch,
            &git.path,
        );
        let (status, keys) = self.call(reqwest::Method::GET, path, None).await?;
        if !status.is_success() {
            bail!("failed to list deploy keys: {status} {}", keys["message"]);
        }
        for existing in keys.as_array().into_iter().flatten().take(1000) {
            if existing["title"].as_str() != Some(title.as_str()) {
                continue;
            }
            if existing["key"].as_str().map(str::trim) == Some(public_key.trim()) {
                return Ok(());
            }
            if let Some(id) = existing["id"].as_u64() {
                self.call(reqwest::Method::DELETE, &format!("{path}/{id}"), None)
                    .await?;
            }
        }
        let body = match self.provider {
            Provider::Gitlab => {
                json!({"title": title, "key": public_key.trim(), "can_push": args.read_write_key})
            }
            Provider::Github | Provider::Gitea => {
                json!({"title": title, "key": public_key.trim(), "read_only": !args.read_write_key})
            }
        };
        let (status, added) = self.call(reqwest::Method::POST, path, Some(&body)).await?;
        if !status.is_success() {
            bail!(
                "failed to add the deploy key: {status} {}",
                added["message"]
            );
        }
        eprintln!(
            "✔ configured deploy key {title:?} for {:?}",
            args.repository
        );
        Ok(())
    }
}

/// `segment` percent-encoded as one URL path segment (GitLab's `group%2Fproject` ids).
fn path_segment(segment: &str) -> anyhow::Result<String> {
    let mut url = reqwest::Url::parse("http://localhost/")?;
    url.path_segments_mut()
        .map_err(|()| anyhow::anyhow!("cannot encode {segment:?}"))?
        .pop_if_empty()
        .push(segment);
    Ok(url.path().trim_start_matches('/').to_string())
}

/// flux's deploy key title: namespace (and Secret name when it differs), branch, path.
fn deploy_key_name(namespace: &str, secret: &str, branch: &str, path: &str) -> String {
    let mut name = if namespace == secret {
        namespace.to_string()
    } else {
        format!("{namespace}-{secret}")
    };
    for part in [branch, path] {
        if !part.is_empty() {
            name = format!("{name}-{part}");
        }
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gitlab_project_ids_are_one_encoded_segment() {
        assert_eq!(
            path_segment("team/sub group/fleet").ok().as_deref(),
            Some("team%2Fsub%20group%2Ffleet")
        );
    }
}
