//! Pull and merge request comments (`githubpullrequestcomment`, `gitlabmergerequestcomment`,
//! `giteapullrequestcomment`): one comment per Provider and object on the change request of
//! the event's `change_request` metadata, found again by a hidden key marker and edited in
//! place, as Flux keeps them. Sending is three steps, so this module plans them: who the token
//! is, the change request's first 100 comments, then [`CommentPlan::write`] decides between
//! creating and editing.

use serde_json::{Value, json};

use super::{Error, Method, Request, ResponseCheck, Settings};
use crate::event::{Event, META_CHANGE_REQUEST};

/// The provider types that comment on change requests.
pub fn is_change_request_provider(provider_type: &str) -> bool {
    matches!(
        provider_type,
        "githubpullrequestcomment" | "gitlabmergerequestcomment" | "giteapullrequestcomment"
    )
}

/// The forge of a comment provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Forge {
    GitHub,
    GitLab,
    Gitea,
}

/// The three steps of one comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentPlan {
    forge: Forge,
    /// Asks the forge who the token belongs to.
    pub whoami: Request,
    /// Lists the change request's first 100 comments, oldest first.
    pub list: Request,
    /// The hidden marker of this Provider's comment on this object.
    pub marker: String,
    body: String,
    /// Where a new comment is created.
    create_url: String,
    /// Where a comment is edited, `{id}` standing for its ID.
    edit_url: String,
    auth: (String, String),
}

fn get(url: String, auth: &(String, String)) -> Request {
    Request {
        method: Method::Get,
        url,
        headers: vec![("Accept".into(), "application/json".into()), auth.clone()],
        body: Vec::new(),
        check: ResponseCheck::Success,
    }
}

/// The plan of the comment `settings` writes for `event` (merged with the Alert's metadata).
///
/// # Errors
/// A missing token, address or `change_request` number.
pub fn comment_plan(settings: &Settings, event: &Event) -> Result<CommentPlan, Error> {
    let kind = settings.provider_type.as_str();
    let forge = match kind {
        "githubpullrequestcomment" => Forge::GitHub,
        "gitlabmergerequestcomment" => Forge::GitLab,
        "giteapullrequestcomment" => Forge::Gitea,
        other => return Err(Error::Unsupported(other.to_string())),
    };
    if settings.provider_uid.is_empty() {
        return Err(Error::Invalid("provider UID cannot be empty".into()));
    }
    let token = settings
        .token
        .as_deref()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::Invalid(format!("{kind} token cannot be empty")))?;
    let raw = event
        .metadata
        .get(META_CHANGE_REQUEST)
        .ok_or_else(|| Error::Invalid(format!("missing {META_CHANGE_REQUEST:?} metadata key")))?;
    let number: u64 = raw.parse().map_err(|_| {
        Error::Invalid(format!(
            "invalid {META_CHANGE_REQUEST:?} metadata value {raw:?}"
        ))
    })?;
    let (host, id) = super::git::parse_git_address(&settings.address)?;
    let o = &event.involved_object;
    let prefix = match forge {
        Forge::GitLab => "flux-mr-comment-key",
        _ => "flux-pr-comment-key",
    };
    let marker = format!(
        "<!-- {prefix}:{}/{}/{}/{} -->",
        settings.provider_uid, o.kind, o.namespace, o.name
    );
    let body = format!("{marker}\n\n{}", super::markdown_post(event));
    let repo = || super::git::owner_repo(&id);
    let (auth, whoami, list, create_url, edit_url) = match forge {
        Forge::GitHub => {
            let (owner, repo) = repo()?;
            let api = if host == "https://github.com" {
                "https://api.github.com".to_string()
            } else {
                format!("{host}/api/v3")
            };
            let base = format!("{api}/repos/{owner}/{repo}/issues");
            (
                ("Authorization".to_string(), format!("Bearer {token}")),
                format!("{api}/user"),
                format!("{base}/{number}/comments?direction=asc&per_page=100&sort=created"),
                format!("{base}/{number}/comments"),
                format!("{base}/comments/{{id}}"),
            )
        }
        Forge::GitLab => {
            let project = id.replace('/', "%2F");
            let base = format!("{host}/api/v4/projects/{project}/merge_requests/{number}/notes");
            (
                ("PRIVATE-TOKEN".to_string(), token.to_string()),
                format!("{host}/api/v4/user"),
                format!("{base}?order_by=created_at&per_page=100&sort=asc"),
                base.clone(),
                format!("{base}/{{id}}"),
            )
        }
        Forge::Gitea => {
            let (owner, repo) = repo()?;
            let base = format!("{host}/api/v1/repos/{owner}/{repo}/issues");
            (
                ("Authorization".to_string(), format!("token {token}")),
                format!("{host}/api/v1/user"),
                format!("{base}/{number}/comments?limit=100&page=1"),
                format!("{base}/{number}/comments"),
                format!("{base}/comments/{{id}}"),
            )
        }
    };
    Ok(CommentPlan {
        forge,
        whoami: get(whoami, &auth),
        list: get(list, &auth),
        marker,
        body,
        create_url,
        edit_url,
        auth,
    })
}

impl CommentPlan {
    /// The login of the token's user in the answer of [`CommentPlan::whoami`].
    ///
    /// # Errors
    /// An answer without it.
    pub fn login(&self, whoami: &[u8]) -> Result<String, Error> {
        let field = if self.forge == Forge::GitLab {
            "username"
        } else {
            "login"
        };
        serde_json::from_slice::<Value>(whoami)
            .ok()
            .and_then(|user| user.get(field)?.as_str().map(str::to_string))
            .filter(|login| !login.is_empty())
            .ok_or_else(|| {
                Error::Invalid(
                    "failed to get authenticated user info: no login in the answer".into(),
                )
            })
    }

    /// The write after the list: an edit of the comment of `login` holding the marker, or a
    /// new comment.
    ///
    /// # Errors
    /// A list answer that is not an array of comments.
    pub fn write(&self, login: &str, comments: &[u8]) -> Result<Request, Error> {
        let comments: Vec<Value> = serde_json::from_slice(comments)
            .map_err(|_| Error::Invalid("failed to list comments: unexpected answer".into()))?;
        let author = if self.forge == Forge::GitLab {
            "/author/username"
        } else {
            "/user/login"
        };
        let existing = comments.iter().find(|c| {
            c.pointer(author).and_then(Value::as_str) == Some(login)
                && c.get("body")
                    .and_then(Value::as_str)
                    .is_some_and(|b| b.contains(&self.marker))
        });
        let body = serde_json::to_vec(&json!({"body": self.body})).unwrap_or_default();
        let (method, url) = match existing.and_then(|c| c.get("id")).and_then(Value::as_u64) {
            Some(id) => {
                let method = if self.forge == Forge::GitLab {
                    Method::Put
                } else {
                    Method::Patch
                };
                (method, self.edit_url.replace("{id}", &id.to_string()))
            }
            None => (Method::Post, self.create_url.clone()),
        };
        Ok(Request {
            method,
            url,
            headers: vec![
                ("Content-Type".into(), "application/json".into()),
                ("Accept".into(), "application/json".into()),
                self.auth.clone(),
            ],
            body,
            check: ResponseCheck::Success,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{merged_event, settings};
    use super::*;

    fn plan(kind: &str, address: &str) -> CommentPlan {
        let mut s = settings(kind, address);
        s.token = Some("tok".into());
        let mut event = merged_event();
        event
            .metadata
            .insert(META_CHANGE_REQUEST.into(), "12".into());
        comment_plan(&s, &event).expect("plans")
    }

    #[test]
    fn a_github_comment_is_created_then_edited_in_place() {
        let p = plan("githubpullrequestcomment", "https://github.com/org/repo");
        assert_eq!(p.whoami.url, "https://api.github.com/user");
        assert_eq!(p.whoami.method, Method::Get);
        assert_eq!(p.whoami.header_value("Authorization"), Some("Bearer tok"));
        assert_eq!(
            p.list.url,
            "https://api.github.com/repos/org/repo/issues/12/comments?direction=asc&per_page=100&sort=created"
        );
        assert_eq!(
            p.marker,
            "<!-- flux-pr-comment-key:4f1c7e2a-8b3d-4e5f-9a6b-7c8d9e0f1a2b/Kustomization/apps/podinfo -->"
        );
        assert_eq!(
            p.login(br#"{"login":"flux-bot","id":1}"#),
            Ok("flux-bot".into())
        );
        let create = p.write("flux-bot", b"[]").expect("write");
        assert_eq!(create.method, Method::Post);
        assert_eq!(
            create.url,
            "https://api.github.com/repos/org/repo/issues/12/comments"
        );
        let body = create.json_body()["body"]
            .as_str()
            .expect("body")
            .to_string();
        assert!(
            body.starts_with(&format!("{}\n\n## Flux Status", p.marker)),
            "{body}"
        );
        let comments = json!([
            {"id": 5, "body": p.marker, "user": {"login": "someone-else"}},
            {"id": 7, "body": format!("old\n{}", p.marker), "user": {"login": "flux-bot"}},
        ])
        .to_string();
        let edit = p.write("flux-bot", comments.as_bytes()).expect("write");
        assert_eq!(edit.method, Method::Patch);
        assert_eq!(
            edit.url,
            "https://api.github.com/repos/org/repo/issues/comments/7"
        );
    }

    #[test]
    fn gitlab_and_gitea_comment_on_their_apis() {
        let l = plan(
            "gitlabmergerequestcomment",
            "https://gitlab.com/group/sub/repo",
        );
        assert_eq!(l.whoami.header_value("PRIVATE-TOKEN"), Some("tok"));
        assert!(l.marker.starts_with("<!-- flux-mr-comment-key:"));
        assert_eq!(l.login(br#"{"username":"bot"}"#), Ok("bot".into()));
        let notes = json!([{"id": 3, "body": l.marker, "author": {"username": "bot"}}]).to_string();
        let edit = l.write("bot", notes.as_bytes()).expect("write");
        assert_eq!(edit.method, Method::Put);
        assert_eq!(
            edit.url,
            "https://gitlab.com/api/v4/projects/group%2Fsub%2Frepo/merge_requests/12/notes/3"
        );
        let g = plan("giteapullrequestcomment", "https://gitea.example/org/repo");
        assert_eq!(g.whoami.header_value("Authorization"), Some("token tok"));
        let create = g.write("bot", b"[]").expect("write");
        assert_eq!(
            create.url,
            "https://gitea.example/api/v1/repos/org/repo/issues/12/comments"
        );
        let mut s = settings("githubpullrequestcomment", "https://github.com/org/repo");
        s.token = Some("tok".into());
        assert!(
            comment_plan(&s, &merged_event()).is_err(),
            "needs change_request"
        );
    }
}
