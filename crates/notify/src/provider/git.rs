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
fn owner_repo(id: &str) -> Result<(&str, &str), Error> {
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
