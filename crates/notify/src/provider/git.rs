//! Git forges' commit statuses: GitHub, GitLab, Gitea and Bitbucket Cloud, set on the commit of
//! the event's revision under the Provider's commit status key. The address is the
//! repository's (`https://host/owner/repo`, `ssh://git@host/owner/repo`, `git@host:owner/repo`).
//! Flux first reads the existing statuses to skip a duplicate; this build always sets it
//! (the forges take the same status again).

use serde_json::json;

use super::{Error, PROGRESSING, Request, Settings, name_and_description};
use crate::event::{Event, SEVERITY_ERROR, SEVERITY_INFO};

/// `(scheme://host, owner/repo)` of a repository address, as Flux's `parseGitAddress`
/// (SSH becomes HTTPS).
pub fn parse_git_address(address: &str) -> Result<(String, String), Error> {
    let invalid = || Error::Invalid(format!("failed parsing URL {address:?}"));
    let (scheme, host, path) = match address.split_once("://") {
        Some((scheme, rest)) => {
            let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
            let host = host.rsplit('@').next().unwrap_or(host);
            (scheme, host, path)
        }
        // scp-like `user@host:path`.
        None => {
            let (userhost, path) = address.split_once(':').ok_or_else(invalid)?;
            let host = userhost.rsplit('@').next().unwrap_or(userhost);
            ("ssh", host, path)
        }
    };
    if host.is_empty() || scheme.is_empty() {
        return Err(invalid());
    }
    let scheme = if scheme == "ssh" { "https" } else { scheme };
    // An SSH port is not the forge's HTTPS port.
    let host = if scheme == "https" && address.starts_with("ssh://") {
        host.split(':').next().unwrap_or(host)
    } else {
        host
    };
    let id = path.trim_start_matches('/');
    let id = id.strip_suffix(".git").unwrap_or(id);
    Ok((format!("{scheme}://{host}"), id.to_string()))
}

/// The commit hash of a Flux revision (`main@sha1:<hex>`, `sha1:<hex>`, legacy `main/<hex>`).
pub fn parse_revision(revision: &str) -> Result<String, Error> {
    let tail = revision.rsplit('@').next().unwrap_or(revision);
    let hash = match tail.split_once(':') {
        Some(("sha1" | "sha256", hash)) => hash,
        _ => tail.rsplit('/').next().unwrap_or(tail),
    };
    let hex = hash.chars().all(|c| c.is_ascii_hexdigit());
    if hex && (hash.len() == 40 || hash.len() == 64) {
        Ok(hash.to_string())
    } else {
        Err(Error::Invalid(format!(
            "failed to extract commit hash from '{revision}' revision"
        )))
    }
}

/// `owner/repo` split in two, refused otherwise.
pub(super) fn owner_repo(id: &str) -> Result<(&str, &str), Error> {
    match id.split('/').collect::<Vec<_>>().as_slice() {
        [owner, repo] if !owner.is_empty() && !repo.is_empty() => Ok((owner, repo)),
        _ => Err(Error::Invalid(format!("invalid repository id {id:?}"))),
    }
}

/// The commit status of the provider type for `event`: none for `Progressing` (except Gitea,
/// which shows it as pending).
pub(super) fn commit_status(settings: &Settings, event: &Event) -> Result<Vec<Request>, Error> {
    let kind = settings.provider_type.as_str();
    let token = settings
        .token
        .as_deref()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::Invalid(format!("{kind} token cannot be empty")))?;
    let key = settings
        .commit_status
        .as_deref()
        .filter(|k| !k.is_empty())
        .ok_or_else(|| Error::Invalid("commit status cannot be empty".into()))?;
    let (host, id) = parse_git_address(&settings.address)?;
    let progressing = event.reason == PROGRESSING;
    if progressing && kind != "gitea" {
        return Ok(Vec::new());
    }
    let revision = event
        .revision()
        .ok_or_else(|| Error::Invalid("missing revision metadata".into()))?;
    let sha = parse_revision(revision)?;
    let state = |info: &'static str, error: &'static str| match event.severity.as_str() {
        SEVERITY_INFO => Ok(info),
        SEVERITY_ERROR => Ok(error),
        _ => Err(Error::Invalid(format!("can't convert to {kind} state"))),
    };
    let (name, desc) = name_and_description(event);
    let request = match kind {
        "github" => {
            let (owner, repo) = owner_repo(&id)?;
            let api = if host == "https://github.com" {
                "https://api.github.com".to_string()
            } else {
                format!("{host}/api/v3")
            };
            let body =
                json!({"state": state("success", "failure")?, "context": key, "description": desc});
            Request::json(format!("{api}/repos/{owner}/{repo}/statuses/{sha}"), &body)
                .header("Authorization", format!("Bearer {token}"))
                .header("Accept", "application/vnd.github+json")
        }
        "gitlab" => {
            let project = id.replace('/', "%2F");
            let body =
                json!({"state": state("success", "failed")?, "name": key, "description": desc});
            Request::json(
                format!("{host}/api/v4/projects/{project}/statuses/{sha}"),
                &body,
            )
            .header("PRIVATE-TOKEN", token)
        }
        "gitea" => {
            let (owner, repo) = owner_repo(&id)?;
            let state = if progressing {
                "pending"
            } else {
                state("success", "failure")?
            };
            let body =
                json!({"state": state, "target_url": "", "description": desc, "context": key});
            Request::json(
                format!("{host}/api/v1/repos/{owner}/{repo}/statuses/{sha}"),
                &body,
            )
            .header("Authorization", format!("token {token}"))
        }
        _ => {
            use base64::Engine as _;
            use sha1::Digest;
            let (owner, repo) = owner_repo(&id)?;
            if token.split(':').count() != 2 {
                return Err(Error::Invalid(
                    "invalid token format, expected to be <user>:<password>".into(),
                ));
            }
            let body = json!({
                "state": state("SUCCESSFUL", "FAILED")?,
                "key": data_encoding::HEXLOWER.encode(&sha1::Sha1::digest(key.as_bytes())),
                "name": name, "description": desc, "url": "https://bitbucket.org",
            });
            let basic = base64::engine::general_purpose::STANDARD.encode(token);
            Request::json(
                format!("https://api.bitbucket.org/2.0/repositories/{owner}/{repo}/commit/{sha}/statuses/build"),
                &body,
            )
            .header("Authorization", format!("Basic {basic}"))
        }
    };
    Ok(vec![request])
}

/// Bitbucket Server (and Data Center): a build status on the commit, from the repository's
/// HTTP(S) clone address (`https://host[/context]/scm/<project>/<repo>.git`). The key is the
/// SHA-1 of the commit status (Bitbucket caps keys at 40 characters), the name carries the
/// description, as Bitbucket shows it in the browser. A token is a Bearer, otherwise username
/// and password are Basic auth.
pub(super) fn bitbucket_server(settings: &Settings, event: &Event) -> Result<Vec<Request>, Error> {
    use sha1::Digest;
    let commits = bitbucket_server_commits(&settings.address)?;
    let key = settings
        .commit_status
        .as_deref()
        .filter(|k| !k.is_empty())
        .ok_or_else(|| Error::Invalid("commit status cannot be empty".into()))?;
    let token = settings.token.as_deref().unwrap_or_default();
    if token.is_empty() && (settings.username.is_empty() || settings.password.is_empty()) {
        return Err(Error::Invalid(
            "invalid credentials, expected to be one of username/password or API Token".into(),
        ));
    }
    if event.reason == PROGRESSING {
        return Ok(Vec::new());
    }
    let revision = event
        .revision()
        .ok_or_else(|| Error::Invalid("missing revision metadata".into()))?;
    let sha = parse_revision(revision)
        .map_err(|e| Error::Invalid(format!("could not parse revision: {e}")))?;
    let state = match event.severity.as_str() {
        SEVERITY_INFO => "SUCCESSFUL",
        SEVERITY_ERROR => "FAILED",
        _ => {
            return Err(Error::Invalid(
                "couldn't convert to bitbucket server state: bitbucket server state generated on info or error events only".into(),
            ));
        }
    };
    let (name, desc) = name_and_description(event);
    let mut body = serde_json::Map::new();
    if !desc.is_empty() {
        body.insert("description".into(), desc.clone().into());
    }
    body.insert(
        "key".into(),
        data_encoding::HEXLOWER
            .encode(&sha1::Sha1::digest(key.as_bytes()))
            .into(),
    );
    body.insert("name".into(), format!("{name} [{desc}]").into());
    body.insert("state".into(), state.into());
    body.insert("url".into(), settings.address.clone().into());
    let auth = if token.is_empty() {
        use base64::Engine as _;
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", settings.username, settings.password));
        format!("Basic {basic}")
    } else {
        format!("Bearer {token}")
    };
    let request = Request::json(
        format!("{commits}/{sha}/builds"),
        &serde_json::Value::Object(body),
    )
    .header("Authorization", auth)
    .header("x-atlassian-token", "no-check")
    .header("x-requested-with", "XMLHttpRequest");
    Ok(vec![request])
}

/// The commits endpoint of a Bitbucket Server clone address, as Flux's
/// `parseBitbucketServerGitAddress`: the context path is what comes before the last `/scm/`.
pub fn bitbucket_server_commits(address: &str) -> Result<String, Error> {
    let (scheme, rest) = address.split_once("://").ok_or_else(|| {
        Error::Invalid(format!(
            "could not parse git address: unsupported scheme type in address: {address}. Must be http or https"
        ))
    })?;
    if scheme != "http" && scheme != "https" {
        return Err(Error::Invalid(format!(
            "could not parse git address: unsupported scheme type in address: {scheme}. Must be http or https"
        )));
    }
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let path = format!("/{path}");
    let path = path.strip_suffix(".git").unwrap_or(&path);
    let index = path.rfind("/scm/").ok_or_else(|| {
        Error::Invalid(
            "could not parse git address: supplied provider address is not http(s) git clone url"
                .into(),
        )
    })?;
    let context = &path[..index];
    let id = &path[index + "/scm/".len()..];
    let (project, repo) = owner_repo(id).map_err(|_| {
        Error::Invalid(format!(
            "could not parse git address: invalid repository id {id:?}"
        ))
    })?;
    Ok(format!(
        "{scheme}://{host}{context}/rest/api/latest/projects/{project}/repos/{repo}/commits"
    ))
}

/// The REST API version of Azure DevOps' commit statuses the Go client sends.
const AZURE_DEVOPS_API_VERSION: &str = "6.0-preview.1";

/// Azure DevOps: a commit status from `https://dev.azure.com/<org>/<project>/_git/<repo>`,
/// named by the commit status key under the genre `fluxcd` (`fluxcd:<summary>` with an
/// Alert summary), with the token as a personal access token (Basic auth, empty user).
pub(super) fn azure_devops(settings: &Settings, event: &Event) -> Result<Vec<Request>, Error> {
    use base64::Engine as _;
    let token = settings
        .token
        .as_deref()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            Error::Invalid(
                "failed to acquire azure devops token: workload identity is not supported by ferroflux, set 'token' in the Secret".into(),
            )
        })?;
    let (host, id) = parse_git_address(&settings.address)?;
    let key = settings
        .commit_status
        .as_deref()
        .filter(|k| !k.is_empty())
        .ok_or_else(|| Error::Invalid("commit status cannot be empty".into()))?;
    let (org, project, repo) = match id.split('/').collect::<Vec<_>>().as_slice() {
        [org, project, _, repo] => (*org, *project, *repo),
        _ => return Err(Error::Invalid(format!("invalid repository id {id:?}"))),
    };
    if event.reason == PROGRESSING {
        return Ok(Vec::new());
    }
    let revision = event
        .revision()
        .ok_or_else(|| Error::Invalid("missing revision metadata".into()))?;
    let sha = parse_revision(revision)?;
    let state = match event.severity.as_str() {
        SEVERITY_INFO => "succeeded",
        SEVERITY_ERROR => "error",
        _ => return Err(Error::Invalid("can't convert to azure devops state".into())),
    };
    let genre = match event.metadata.get(crate::event::META_SUMMARY) {
        Some(summary) => format!("fluxcd:{summary}"),
        None => "fluxcd".to_string(),
    };
    let (_, desc) = name_and_description(event);
    let body = json!({
        "context": {"genre": genre, "name": key},
        "description": desc,
        "state": state,
    });
    let basic = base64::engine::general_purpose::STANDARD.encode(format!(":{token}"));
    let url = format!(
        "{host}/{org}/{project}/_apis/git/repositories/{repo}/commits/{sha}/statuses?api-version={AZURE_DEVOPS_API_VERSION}"
    );
    Ok(vec![
        Request::json(url, &body)
            .header("Authorization", format!("Basic {basic}"))
            .header("Accept", "application/json"),
    ])
}

/// GitHub's `repository_dispatch`: the event as `client_payload`, `Kind/name.namespace` as
/// `event_type`, to the repository of the address.
pub(super) fn github_dispatch(settings: &Settings, event: &Event) -> Result<Request, Error> {
    let token = settings
        .token
        .as_deref()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::Invalid("github token cannot be empty".into()))?;
    let (host, id) = parse_git_address(&settings.address)?;
    let (owner, repo) = owner_repo(&id)?;
    let api = if host == "https://github.com" {
        "https://api.github.com".to_string()
    } else {
        format!("{host}/api/v3")
    };
    let o = &event.involved_object;
    let client_payload: serde_json::Value =
        serde_json::from_slice(&event.to_json()).unwrap_or_default();
    let body = json!({
        "event_type": format!("{}/{}.{}", o.kind, o.name, o.namespace),
        "client_payload": client_payload,
    });
    Ok(
        Request::json(format!("{api}/repos/{owner}/{repo}/dispatches"), &body)
            .header("Authorization", format!("Bearer {token}"))
            .header("Accept", "application/vnd.github+json"),
    )
}

#[cfg(test)]
mod tests {
    use super::super::{merged_event, requests, settings};
    use super::*;

    const SHA: &str = "8a7b1c0d2e3f405162738495a6b7c8d9e0f1a2b3";

    fn event() -> Event {
        let mut event = merged_event();
        event
            .metadata
            .insert("revision".into(), format!("main@sha1:{SHA}"));
        event
    }

    fn git(kind: &str, address: &str) -> Settings {
        let mut s = settings(kind, address);
        s.token = Some("tok".into());
        s.commit_status = Some("kustomization/podinfo/4f1c7e2a".into());
        s
    }

    #[test]
    fn addresses_and_revisions_parse_as_flux_does() {
        assert_eq!(
            parse_git_address("https://github.com/org/repo.git").expect("ok"),
            ("https://github.com".into(), "org/repo".into())
        );
        assert_eq!(
            parse_git_address("ssh://git@gitlab.example:2222/group/sub/repo").expect("ok"),
            ("https://gitlab.example".into(), "group/sub/repo".into())
        );
        assert_eq!(
            parse_git_address("git@github.com:org/repo.git").expect("ok"),
            ("https://github.com".into(), "org/repo".into())
        );
        assert_eq!(
            parse_revision(&format!("main@sha1:{SHA}")).expect("ok"),
            SHA
        );
        assert_eq!(parse_revision(&format!("main/{SHA}")).expect("ok"), SHA);
        assert!(parse_revision("main@sha1:xyz").is_err());
    }

    #[test]
    fn github_gets_a_failure_status_on_the_revision() {
        let r = &requests(&git("github", "https://github.com/org/repo"), &event()).expect("ok")[0];
        assert_eq!(
            r.url,
            format!("https://api.github.com/repos/org/repo/statuses/{SHA}")
        );
        assert_eq!(r.header_value("Authorization"), Some("Bearer tok"));
        assert_eq!(
            r.json_body(),
            json!({"state": "failure", "context": "kustomization/podinfo/4f1c7e2a",
                "description": "reconciliation failed"})
        );
        let enterprise =
            &requests(&git("github", "https://ghe.example/org/repo"), &event()).expect("ok")[0];
        assert!(
            enterprise
                .url
                .starts_with("https://ghe.example/api/v3/repos/org/repo/")
        );
        let mut progressing = event();
        progressing.reason = "Progressing".into();
        assert!(
            requests(&git("github", "https://github.com/org/repo"), &progressing)
                .expect("ok")
                .is_empty()
        );
        let mut no_revision = event();
        no_revision.metadata.remove("revision");
        assert!(requests(&git("github", "https://github.com/org/repo"), &no_revision).is_err());
    }

    #[test]
    fn github_dispatch_sends_the_event_as_client_payload() {
        let r = &requests(
            &git("githubdispatch", "https://github.com/org/repo"),
            &event(),
        )
        .expect("ok")[0];
        assert_eq!(r.url, "https://api.github.com/repos/org/repo/dispatches");
        let body = r.json_body();
        assert_eq!(body["event_type"], "Kustomization/podinfo.apps");
        assert_eq!(body["client_payload"]["reason"], "ReconciliationFailed");
    }

    #[test]
    fn bitbucket_server_sets_a_build_status_under_the_context_path() {
        let mut s = git(
            "bitbucketserver",
            "https://bb.example/ctx/scm/PROJ/repo.git",
        );
        s.token = None;
        assert!(requests(&s, &event()).is_err(), "needs credentials");
        s.username = "bot".into();
        s.password = "pw".into();
        let r = &requests(&s, &event()).expect("ok")[0];
        assert_eq!(
            r.url,
            format!(
                "https://bb.example/ctx/rest/api/latest/projects/PROJ/repos/repo/commits/{SHA}/builds"
            )
        );
        assert_eq!(r.header_value("Authorization"), Some("Basic Ym90OnB3"));
        assert_eq!(r.header_value("x-atlassian-token"), Some("no-check"));
        assert_eq!(
            r.json_body()["name"],
            "kustomization/podinfo [reconciliation failed]"
        );
        assert_eq!(r.json_body()["description"], "reconciliation failed");
        use sha1::Digest;
        assert_eq!(
            r.json_body()["key"],
            data_encoding::HEXLOWER.encode(&sha1::Sha1::digest(b"kustomization/podinfo/4f1c7e2a"))
        );
        assert_eq!(r.json_body()["state"], "FAILED");
        assert_eq!(
            r.json_body()["url"],
            "https://bb.example/ctx/scm/PROJ/repo.git"
        );
        s.token = Some("api".into());
        let r = &requests(&s, &event()).expect("ok")[0];
        assert_eq!(r.header_value("Authorization"), Some("Bearer api"));
        assert!(bitbucket_server_commits("https://bb.example/PROJ/repo.git").is_err());
        assert!(bitbucket_server_commits("ssh://git@bb.example/scm/PROJ/repo.git").is_err());
        let mut progressing = event();
        progressing.reason = "Progressing".into();
        assert!(requests(&s, &progressing).expect("ok").is_empty());
    }

    #[test]
    fn azure_devops_posts_a_status_with_the_fluxcd_genre() {
        let s = git("azuredevops", "https://dev.azure.com/org/proj/_git/repo");
        let r = &requests(&s, &event()).expect("ok")[0];
        assert_eq!(
            r.url,
            format!(
                "https://dev.azure.com/org/proj/_apis/git/repositories/repo/commits/{SHA}/statuses?api-version=6.0-preview.1"
            )
        );
        assert_eq!(r.header_value("Authorization"), Some("Basic OnRvaw=="));
        assert_eq!(
            r.json_body(),
            json!({"context": {"genre": "fluxcd:Cluster eu-1", "name": "kustomization/podinfo/4f1c7e2a"},
                "description": "reconciliation failed", "state": "error"})
        );
        let mut info = event();
        info.severity = "info".into();
        info.metadata.remove("summary");
        let r = &requests(&s, &info).expect("ok")[0];
        assert_eq!(r.json_body()["state"], "succeeded");
        assert_eq!(r.json_body()["context"]["genre"], "fluxcd");
        assert!(
            requests(
                &git("azuredevops", "https://dev.azure.com/org/repo"),
                &event()
            )
            .is_err()
        );
        let mut no_token = s.clone();
        no_token.token = None;
        assert!(requests(&no_token, &event()).is_err());
    }

    #[test]
    fn gitlab_gitea_and_bitbucket_shapes() {
        let l =
            &requests(&git("gitlab", "https://gitlab.com/group/repo"), &event()).expect("ok")[0];
        assert_eq!(
            l.url,
            format!("https://gitlab.com/api/v4/projects/group%2Frepo/statuses/{SHA}")
        );
        assert_eq!(l.header_value("PRIVATE-TOKEN"), Some("tok"));
        assert_eq!(l.json_body()["state"], "failed");
        let g =
            &requests(&git("gitea", "https://gitea.example/org/repo"), &event()).expect("ok")[0];
        assert_eq!(
            g.url,
            format!("https://gitea.example/api/v1/repos/org/repo/statuses/{SHA}")
        );
        assert_eq!(g.header_value("Authorization"), Some("token tok"));
        let mut b = git("bitbucket", "https://bitbucket.org/org/repo");
        assert!(
            requests(&b, &event()).is_err(),
            "token must be user:password"
        );
        b.token = Some("user:pw".into());
        let r = &requests(&b, &event()).expect("ok")[0];
        assert_eq!(r.json_body()["state"], "FAILED");
        assert_eq!(r.json_body()["name"], "kustomization/podinfo");
        assert_eq!(r.header_value("Authorization"), Some("Basic dXNlcjpwdw=="));
    }
}
