//! `ferroflux bootstrap gitea` (issue 19) against a local HTTP endpoint implementing the
//! Gitea REST calls flux makes (get the repository, create it for the organization, list and
//! add deploy keys), whose clone URL is a file:// path of
//! the sshd peer's bare repository and whose SSH URL is that peer: the calls are asserted,
//! the repository gets the manifests and the cluster syncs over SSH with the deploy key.

mod common;

use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use serde_json::{Value, json};

#[derive(Clone, Default)]
struct Gitea {
    calls: Arc<Mutex<Vec<String>>>,
    bodies: Arc<Mutex<Vec<Value>>>,
    created: Arc<Mutex<bool>>,
    repo: Arc<Value>,
}

/// Every call: recorded with its token, answered as Gitea answers it.
async fn api(
    State(gt): State<Gitea>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let path = uri.path().to_string();
    gt.calls
        .lock()
        .expect("lock")
        .push(format!("{method} {path} [{token}]"));
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if !body.is_null() {
        gt.bodies.lock().expect("lock").push(body.clone());
    }
    let created = *gt.created.lock().expect("lock");
    match (method.as_str(), path.as_str()) {
        ("GET", "/api/v1/repos/team/fleet") if created => {
            axum::Json((*gt.repo).clone()).into_response()
        }
        ("GET", "/api/v1/repos/team/fleet") => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"message": "The target couldn't be found."})),
        )
            .into_response(),
        ("POST", "/api/v1/orgs/team/repos") => {
            *gt.created.lock().expect("lock") = true;
            (StatusCode::CREATED, axum::Json((*gt.repo).clone())).into_response()
        }
        ("GET", "/api/v1/repos/team/fleet/keys") => axum::Json(json!([])).into_response(),
        ("POST", "/api/v1/repos/team/fleet/keys") => (
            StatusCode::CREATED,
            axum::Json(json!({"id": 1, "title": body["title"], "key": body["key"]})),
        )
            .into_response(),
        _ => StatusCode::NOT_IMPLEMENTED.into_response(),
    }
}

fn serve(gt: Gitea) -> String {
    let app = Router::new().fallback(api).with_state(gt);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            axum::serve(listener, app).await.expect("serve");
        });
    });
    format!("http://{addr}/api/v1")
}

#[test]
fn bootstrap_gitea_creates_the_repository_for_the_organization_adds_the_deploy_key_and_syncs() {
    let Some(up) = common::start_up() else { return };
    let server = ferroflux_testpeers::require!(ferroflux_testpeers::GitSsh::start());
    let bare = server.repos().create("fleet").expect("create repo");
    let work = ferroflux_testpeers::GitWork::new(&bare).expect("work tree");
    work.write("README.md", "fleet\n").expect("write");
    work.commit("initial").expect("commit");
    work.push().expect("push");
    let ssh_url = server.url("fleet");
    // The clone URL reaches the same bare repository as the SSH URL (Gitea serves one
    // repository on both), so what the CLI pushes is what the cluster syncs.
    let clone_url = format!("file://{}", bare.display());
    let gt = Gitea {
        repo: Arc::new(json!({
            "id": 7,
            "html_url": "https://gitea.example/team/fleet",
            "clone_url": clone_url,
            "ssh_url": ssh_url,
        })),
        ..Gitea::default()
    };
    let api = serve(gt.clone());
    let key_file = up.dir.path().join("identity");
    std::fs::write(&key_file, server.client_key()).expect("key file");

    let run = || -> Output {
        Command::new(env!("CARGO_BIN_EXE_ferroflux"))
            .args([
                "bootstrap",
                "gitea",
                "--owner",
                "team",
                "--repository",
                "fleet",
            ])
            .args(["--api-url", &api, "--hostname", "gitea.example"])
            .args(["--path", "clusters/gt", "--namespace", "flux-gt"])
            .args(["--components", "source-controller,kustomize-controller"])
            .args([
                "--author-email",
                "flux@localhost",
                "--timeout",
                "3m",
                "--silent",
            ])
            .arg("--private-key-file")
            .arg(&key_file)
            .arg("--kubeconfig")
            .arg(&up.kubeconfig)
            .env("GITEA_TOKEN", "gt-token")
            .stdin(Stdio::null())
            .output()
            .expect("ferroflux runs")
    };
    let out = run();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    let calls = gt.calls.lock().expect("lock").clone();
    let bodies = gt.bodies.lock().expect("lock").clone();
    // The provider calls, in flux's order, each with the token in Gitea's `token` authorization.
    assert_eq!(
        calls,
        [
            "GET /api/v1/repos/team/fleet [token gt-token]",
            "POST /api/v1/orgs/team/repos [token gt-token]",
            "GET /api/v1/repos/team/fleet/keys [token gt-token]",
            "POST /api/v1/repos/team/fleet/keys [token gt-token]",
        ],
        "{log}"
    );
    assert_eq!(
        bodies[0],
        json!({"name": "fleet", "private": true, "auto_init": true})
    );
    assert_eq!(bodies[1]["title"], "flux-gt-flux-system-main-clusters/gt");
    assert_eq!(bodies[1]["read_only"], true);
    assert!(
        bodies[1]["key"]
            .as_str()
            .is_some_and(|k| k.starts_with("ecdsa-sha2-nistp256 ")),
        "{bodies:?}"
    );
    for wanted in [
        "► connecting to gitea.example",
        "✔ repository \"https://gitea.example/team/fleet\" created",
        "✔ configured deploy key \"flux-gt-flux-system-main-clusters/gt\" for \"fleet\"",
        "✔ committed component manifests to \"main\"",
        "► applying source secret \"flux-gt/flux-system\"",
        "✔ GitRepository reconciled successfully",
        "✔ Kustomization reconciled successfully",
        "✔ all components are healthy",
    ] {
        assert!(log.contains(wanted), "no {wanted:?} in:\n{log}");
    }
    assert!(out.status.success(), "{log}");
    let check = up.dir.path().join("check");
    common::git(
        up.dir.path(),
        &["clone", "-q", &bare.to_string_lossy(), "check"],
    );
    let sync = std::fs::read_to_string(check.join("clusters/gt/flux-gt/gotk-sync.yaml"))
        .expect("gotk-sync.yaml");
    assert!(sync.contains(&format!("  url: {ssh_url}\n")), "{sync}");
    let repo = common::kubectl_json(
        &up.kubeconfig,
        &["get", "gitrepositories", "flux-gt", "-n", "flux-gt"],
    );
    assert_eq!(repo["spec"]["url"], ssh_url.as_str(), "{repo}");
    assert_eq!(common::ready_condition(&repo).0, "True", "{repo}");

    // A second run finds the repository and keeps the Secret and its deploy key.
    gt.calls.lock().expect("lock").clear();
    let again = run();
    let log = String::from_utf8_lossy(&again.stderr).into_owned();
    assert!(again.status.success(), "{log}");
    assert_eq!(
        *gt.calls.lock().expect("lock"),
        ["GET /api/v1/repos/team/fleet [token gt-token]"],
        "{log}"
    );
    for wanted in [
        "✔ component manifests are up to date",
        "✔ source secret up to date",
        "✔ sync manifests are up to date",
    ] {
        assert!(log.contains(wanted), "no {wanted:?} in:\n{log}");
    }

    // Without GITEA_TOKEN nothing is called.
    gt.calls.lock().expect("lock").clear();
    let missing = Command::new(env!("CARGO_BIN_EXE_ferroflux"))
        .args([
            "bootstrap",
            "gitea",
            "--owner",
            "team",
            "--repository",
            "fleet",
        ])
        .args(["--api-url", &api])
        .env_remove("GITEA_TOKEN")
        .output()
        .expect("ferroflux runs");
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&missing.stderr)
            .contains("GITEA_TOKEN environment variable is not set"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
    assert!(gt.calls.lock().expect("lock").is_empty());
}
