//! Git sources against real servers: `git http-backend` behind lighttpd (with and without
//! basic auth) and `git daemon`, started by ferroflux-testpeers.

mod common;

use ferroflux_source::artifact::IgnoreRules;
use ferroflux_source::git::{self, CloneOptions, GitAuth, GitError, GitRef};
use ferroflux_source::storage::{ObjectKey, Storage};
use ferroflux_testpeers::{Credentials, GitDaemon, GitHttp, GitWork, require};

/// A repository `fleet` with: main (2 commits), branch `dev`, tags v0.9.0, v1.0.0, v1.2.0,
/// v2.0.0-rc.1 (annotated). Returns the work tree and the commit of each tag by name.
fn seed(bare: &std::path::Path) -> (GitWork, Vec<(String, String)>) {
    let work = GitWork::new(bare).expect("work tree");
    let mut tags = Vec::new();
    for (i, tag) in ["v0.9.0", "v1.0.0", "v1.2.0", "v2.0.0-rc.1"]
        .into_iter()
        .enumerate()
    {
        work.write(
            "deploy/app.yaml",
            format!("kind: ConfigMap\nversion: {i}\n"),
        )
        .expect("write");
        let sha = work.commit(&format!("release {tag}")).expect("commit");
        work.tag(tag).expect("tag");
        tags.push((tag.to_string(), sha));
    }
    work.write(".sourceignore", "secrets/\n*.md\n")
        .expect("write");
    work.write("secrets/key.txt", "do not ship").expect("write");
    work.write("NOTES.md", "ignored").expect("write");
    work.write(".github/workflows/ci.yaml", "on: push")
        .expect("write");
    work.commit("main head").expect("commit");
    work.branch("dev").expect("branch");
    work.write("dev.yaml", "dev: true\n").expect("write");
    work.commit("dev work").expect("commit");
    work.checkout("main").expect("checkout");
    work.push().expect("push");
    (work, tags)
}

fn clone(
    url: &str,
    r: &GitRef,
    auth: GitAuth,
) -> Result<(tempfile::TempDir, git::Commit), GitError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let commit = git::checkout(
        url,
        r,
        &dir.path().join("checkout"),
        &CloneOptions {
            auth,
            ..CloneOptions::default()
        },
    )?;
    Ok((dir, commit))
}

#[test]
fn http_branch_tag_semver_and_commit_refs() {
    let server = require!(GitHttp::start(None));
    let bare = server.repos().create("fleet").expect("create repo");
    let (work, tags) = seed(&bare);
    let url = server.url("fleet");
    let main_head = work.head().expect("head");

    let (dir, c) = clone(&url, &GitRef::branch("main"), GitAuth::default()).expect("branch");
    assert_eq!(c.hash, main_head);
    assert_eq!(c.revision, format!("main@sha1:{main_head}"));
    assert_eq!(c.summary, "main head");
    assert!(dir.path().join("checkout/.sourceignore").exists());
    // Shallow: only the tip is present.
    let repo = git2::Repository::open(dir.path().join("checkout")).expect("open");
    assert!(repo.is_shallow(), "branch fetch should be shallow");

    let (dir, c) = clone(&url, &GitRef::branch("dev"), GitAuth::default()).expect("dev");
    assert!(dir.path().join("checkout/dev.yaml").exists());
    assert!(c.revision.starts_with("dev@sha1:"), "{}", c.revision);

    let (dir, c) = clone(&url, &GitRef::tag("v1.0.0"), GitAuth::default()).expect("tag");
    let v1 = &tags[1].1;
    assert_eq!(&c.hash, v1, "an annotated tag resolves to its commit");
    assert_eq!(c.revision, format!("v1.0.0@sha1:{v1}"));
    assert!(
        std::fs::read_to_string(dir.path().join("checkout/deploy/app.yaml"))
            .expect("read")
            .contains("version: 1")
    );

    let (_dir, c) = clone(&url, &GitRef::semver(">=1.0.0"), GitAuth::default()).expect("semver");
    assert_eq!(
        c.revision,
        format!("v1.2.0@sha1:{}", tags[2].1),
        "pre-release 2.0.0-rc.1 is excluded"
    );

    let (_dir, c) = clone(
        &url,
        &GitRef::commit(&tags[0].1, Some("main")),
        GitAuth::default(),
    )
    .expect("commit");
    assert_eq!(c.revision, format!("main@sha1:{}", tags[0].1));
    let (_dir, c) =
        clone(&url, &GitRef::commit(&tags[0].1, None), GitAuth::default()).expect("commit");
    assert_eq!(c.revision, format!("sha1:{}", tags[0].1));

    let name = GitRef {
        name: Some("refs/heads/dev".into()),
        branch: Some("main".into()),
        ..GitRef::default()
    };
    let (_dir, c) = clone(&url, &name, GitAuth::default()).expect("name wins over branch");
    assert!(
        c.revision.starts_with("refs/heads/dev@sha1:"),
        "{}",
        c.revision
    );
}

#[test]
fn http_missing_refs_give_clear_errors() {
    let server = require!(GitHttp::start(None));
    let bare = server.repos().create("fleet").expect("create repo");
    seed(&bare);
    let url = server.url("fleet");
    let err = clone(&url, &GitRef::branch("nope"), GitAuth::default()).expect_err("missing branch");
    assert!(matches!(err, GitError::RefNotFound { .. }), "{err}");
    assert!(err.to_string().contains("\"nope\""), "{err}");
    let err = clone(&url, &GitRef::semver(">=5.0.0"), GitAuth::default()).expect_err("no match");
    assert!(matches!(err, GitError::NoSemverMatch { .. }), "{err}");
    let err = clone(
        &url,
        &GitRef::commit("0123456789012345678901234567890123456789", Some("main")),
        GitAuth::default(),
    )
    .expect_err("missing commit");
    assert!(matches!(err, GitError::RefNotFound { .. }), "{err}");
}

#[test]
fn new_commit_is_picked_up_and_resolve_sees_it_without_cloning() {
    let server = require!(GitHttp::start(None));
    let bare = server.repos().create("fleet").expect("create repo");
    let (work, _) = seed(&bare);
    let url = server.url("fleet");
    let main = GitRef::branch("main");
    let before = git::resolve(&url, &main, &CloneOptions::default()).expect("resolve");
    let (_d, first) = clone(&url, &main, GitAuth::default()).expect("clone");
    assert_eq!(before, first.revision);

    work.write("deploy/new.yaml", "kind: Secret\n")
        .expect("write");
    let new_sha = work.commit("add new.yaml").expect("commit");
    work.push().expect("push");

    let after = git::resolve(&url, &main, &CloneOptions::default()).expect("resolve");
    assert_ne!(before, after);
    assert_eq!(after, format!("main@sha1:{new_sha}"));
    let (dir, second) = clone(&url, &main, GitAuth::default()).expect("clone");
    assert_eq!(second.hash, new_sha);
    assert!(dir.path().join("checkout/deploy/new.yaml").exists());
}

#[test]
fn sourceignore_and_default_excludes_are_honoured_in_the_artifact() {
    let server = require!(GitHttp::start(None));
    let bare = server.repos().create("fleet").expect("create repo");
    seed(&bare);
    let (dir, commit) = clone(
        &server.url("fleet"),
        &GitRef::branch("main"),
        GitAuth::default(),
    )
    .expect("clone");
    let storage_dir = tempfile::tempdir().expect("tempdir");
    let storage = Storage::new(storage_dir.path(), "http://127.0.0.1:9").expect("storage");
    let key = ObjectKey::new("GitRepository", "flux-system", "fleet");
    let rules = IgnoreRules::flux_defaults().with_spec_ignore("/deploy/extra-ignored.yaml\n");
    let artifact = storage
        .store_dir(&key, &commit.revision, &dir.path().join("checkout"), &rules)
        .expect("store");
    assert_eq!(artifact.revision, commit.revision);
    assert_eq!(
        artifact.path,
        format!("gitrepository/flux-system/fleet/{}.tar.gz", commit.hash)
    );
    let out = tempfile::tempdir().expect("tempdir");
    let file = std::fs::File::open(storage.local_path(&artifact)).expect("open artifact");
    ferroflux_source::artifact::extract_tar_gz(file, out.path(), &Default::default())
        .expect("extract");
    assert_eq!(
        common::list_files(out.path()),
        [".sourceignore", "deploy/app.yaml"],
        ".git, .github, secrets/ and *.md must be excluded"
    );
}

#[test]
fn basic_auth_works_and_a_wrong_password_gives_a_readable_error_without_the_secret() {
    let creds = Credentials::generate();
    let server = require!(GitHttp::start(Some(creds.clone())));
    let bare = server.repos().create("fleet").expect("create repo");
    let (work, _) = seed(&bare);
    let url = server.url("fleet");

    let (_d, c) = clone(
        &url,
        &GitRef::branch("main"),
        GitAuth::basic(&creds.username, &creds.password),
    )
    .expect("right password");
    assert_eq!(c.hash, work.head().expect("head"));

    let wrong = format!("{}-wrong", creds.password);
    let err = clone(
        &url,
        &GitRef::branch("main"),
        GitAuth::basic(&creds.username, &wrong),
    )
    .expect_err("wrong password");
    let msg = err.to_string();
    eprintln!("wrong-credential error as users see it: {msg}");
    assert!(matches!(err, GitError::Auth { .. }), "{msg}");
    assert!(msg.contains("authentication"), "{msg}");
    assert!(
        !msg.contains(&wrong) && !msg.contains(&creds.password),
        "secret leaked: {msg}"
    );
    assert!(
        !format!("{err:?}").contains(&wrong),
        "secret leaked in Debug"
    );

    let err = clone(&url, &GitRef::branch("main"), GitAuth::default()).expect_err("no credentials");
    assert!(matches!(err, GitError::Auth { .. }), "{err}");

    let wrong_options = CloneOptions {
        auth: GitAuth::basic(&creds.username, &wrong),
        ..CloneOptions::default()
    };
    let err = git::resolve(&url, &GitRef::semver(">=1"), &wrong_options)
        .expect_err("ls-remote with a wrong password");
    assert!(matches!(err, GitError::Auth { .. }), "{err}");
    assert!(!err.to_string().contains(&wrong));

    // Credentials embedded in the URL are redacted from messages too.
    let embedded = url.replace("http://", &format!("http://{}:{wrong}@", creds.username));
    let err = clone(&embedded, &GitRef::branch("nope"), GitAuth::default()).expect_err("fails");
    assert!(
        !err.to_string().contains(&wrong),
        "secret leaked from URL: {err}"
    );
}

#[test]
fn git_daemon_clone_and_semver() {
    let server = require!(GitDaemon::start());
    let bare = server.repos().create("fleet").expect("create repo");
    let (work, tags) = seed(&bare);
    let url = server.url("fleet");
    // Flux's default branch is `master`; the seeded repository has only `main`.
    match clone(&url, &GitRef::default(), GitAuth::default()) {
        Err(GitError::RefNotFound { what, .. }) => assert!(what.contains("master"), "{what}"),
        other => panic!("an empty ref must mean branch master, got {other:?}"),
    }
    let (_d, c) = clone(&url, &GitRef::branch("main"), GitAuth::default()).expect("branch");
    assert_eq!(c.hash, work.head().expect("head"));
    let (_d, c) = clone(&url, &GitRef::semver("~1.0"), GitAuth::default()).expect("semver");
    assert_eq!(c.revision, format!("v1.0.0@sha1:{}", tags[1].1));
}

#[test]
fn ssh_identity_and_known_hosts() {
    let server = require!(ferroflux_testpeers::GitSsh::start());
    let bare = server.repos().create("fleet").expect("create repo");
    let (work, _) = seed(&bare);
    let url = server.url("fleet");
    let ssh = |known_hosts: String| GitAuth {
        ssh: Some(git::SshAuth {
            user: server.user().to_string(),
            private_key: server.client_key().to_string(),
            passphrase: None,
            known_hosts,
        }),
        ..GitAuth::default()
    };
    let (_d, c) =
        clone(&url, &GitRef::branch("main"), ssh(server.known_hosts())).expect("ssh clone");
    assert_eq!(c.hash, work.head().expect("head"));

    // A known_hosts that lists another key for this host must stop the connection.
    let forged = server
        .known_hosts()
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
        + " AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n";
    let err = clone(&url, &GitRef::branch("main"), ssh(forged)).expect_err("unknown host key");
    assert!(matches!(err, GitError::UnknownHostKey { .. }), "{err}");
    assert!(!err.to_string().contains("PRIVATE KEY"), "{err}");
}

#[test]
fn submodules_are_checked_out_with_the_same_credentials_when_asked() {
    let creds = Credentials::generate();
    let server = require!(GitHttp::start(Some(creds.clone())));
    let lib_bare = server.repos().create("lib").expect("create lib");
    let lib = GitWork::new(&lib_bare).expect("work tree");
    lib.write("base/configmap.yaml", "kind: ConfigMap\n")
        .expect("write");
    lib.commit("lib").expect("commit");
    lib.push().expect("push");

    let app_bare = server.repos().create("app").expect("create app");
    let app = GitWork::new(&app_bare).expect("work tree");
    app.write("kustomization.yaml", "resources: [vendor/lib/base]\n")
        .expect("write");
    app.submodule_add("../lib.git", "vendor/lib")
        .expect("submodule add");
    app.commit("app with lib").expect("commit");
    app.tag("v1.0.0").expect("tag");
    app.push().expect("push");

    let options = |recurse| CloneOptions {
        auth: GitAuth::basic(&creds.username, &creds.password),
        recurse_submodules: recurse,
        ..CloneOptions::default()
    };
    let dir = tempfile::tempdir().expect("tempdir");
    // semver lists the tags, then fetches: two authenticated transfers in one checkout.
    git::checkout(
        &server.url("app"),
        &GitRef::semver("1.x"),
        &dir.path().join("a"),
        &options(false),
    )
    .expect("checkout without submodules");
    assert!(!dir.path().join("a/vendor/lib/base/configmap.yaml").exists());
    let c = git::checkout(
        &server.url("app"),
        &GitRef::semver("1.x"),
        &dir.path().join("b"),
        &options(true),
    )
    .expect("checkout with submodules");
    assert!(c.revision.starts_with("v1.0.0@sha1:"), "{}", c.revision);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("b/vendor/lib/base/configmap.yaml"))
            .expect("submodule file"),
        "kind: ConfigMap\n"
    );
}

/// A gate in front of the git server: requests need `Authorization: Bearer <token>`, then
/// go on unchanged (smart HTTP is plain GET/POST, so forwarding them is enough).
async fn bearer_gate(
    upstream: String,
    token: &'static str,
) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    use axum::body::Body;
    use axum::http::{Response, StatusCode};
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let (client, upstream) = (client.clone(), upstream.clone());
        async move {
            let authorized = req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v == format!("Bearer {token}"));
            if !authorized {
                return Response::builder()
                    .status(StatusCode::UNAUTHORIZED)
                    .header("www-authenticate", "Bearer realm=\"git\"")
                    .body(Body::empty())
                    .expect("response");
            }
            let uri = req
                .uri()
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_default();
            let method = req.method().clone();
            let mut out = client.request(method, format!("{upstream}{uri}"));
            for name in ["content-type", "accept", "git-protocol", "content-encoding"] {
                if let Some(v) = req.headers().get(name) {
                    out = out.header(name, v.clone());
                }
            }
            let body = axum::body::to_bytes(req.into_body(), usize::MAX)
                .await
                .expect("body");
            let resp = out.body(body).send().await.expect("upstream");
            let mut builder = Response::builder().status(resp.status().as_u16());
            if let Some(ct) = resp.headers().get("content-type") {
                builder = builder.header("content-type", ct.clone());
            }
            builder
                .body(Body::from(resp.bytes().await.expect("upstream body")))
                .expect("response")
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, task)
}

#[tokio::test(flavor = "multi_thread")]
async fn bearer_token_is_sent_on_listing_and_fetch() {
    common::init_tls();
    let server = require!(GitHttp::start(None));
    let bare = server.repos().create("fleet").expect("create repo");
    let (_work, tags) = seed(&bare);
    let upstream = server
        .url("fleet")
        .trim_end_matches("/fleet.git")
        .to_string();
    let (addr, task) = bearer_gate(upstream, "tok-123").await;
    let url = format!("http://{addr}/fleet.git");
    let result = tokio::task::spawn_blocking(move || {
        let ok = clone(&url, &GitRef::semver(">=1.0.0"), GitAuth::bearer("tok-123"));
        let refused = clone(
            &url,
            &GitRef::branch("main"),
            GitAuth::bearer("tok-wrong-987"),
        );
        (ok.map(|(_d, c)| c), refused.map(|(_d, c)| c))
    })
    .await
    .expect("join");
    let commit = result.0.expect("bearer token accepted");
    assert_eq!(commit.revision, format!("v1.2.0@sha1:{}", tags[2].1));
    let err = result.1.expect_err("wrong token refused");
    assert!(matches!(err, GitError::Auth { .. }), "{err}");
    assert!(
        !err.to_string().contains("tok-wrong-987"),
        "token leaked: {err}"
    );
    task.abort();
}
