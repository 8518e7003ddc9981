//! `ferroflux bootstrap gitlab` (issue 19) against a local HTTP endpoint implementing the
//! GitLab REST calls flux makes (get the project by its encoded path, look up the group,
//! create the project in it, list and add deploy keys), whose clone URL is a file:// path of
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
struct Gitlab {
    calls: Arc<Mutex<Vec<String>>>,
    bodies: Arc<Mutex<Vec<Value>>>,
    created: Arc<Mutex<bool>>,
    project: Arc<Value>,
}

/// Every call: recorded with its token, answered as GitLab answers it.
async fn api(
    State(gl): State<Gitlab>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let token = headers
        .get("private-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let path = uri.path().to_string();
    gl.calls
        .lock()
        .expect("lock")
        .push(format!("{method} {path} [{token}]"));
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if !body.is_null() {
        gl.bodies.lock().expect("lock").push(body.clone());
    }
    let created = *gl.created.lock().expect("lock");
    match (method.as_str(), path.as_str()) {
        ("GET", "/api/v4/projects/team%2Ffleet") if created => {
            axum::Json((*gl.project).clone()).into_response()
        }
        ("GET", "/api/v4/projects/team%2Ffleet") => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"message": "404 Project Not Found"})),
        )
            .into_response(),
        ("GET", "/api/v4/namespaces/team") => {
            axum::Json(json!({"id": 42, "path": "team", "kind": "group"})).into_response()
        }
        ("POST", "/api/v4/projects") => {
            *gl.created.lock().expect("lock") = true;
            (StatusCode::CREATED, axum::Json((*gl.project).clone())).into_response()
        }
        ("GET", "/api/v4/projects/7/deploy_keys") => axum::Json(json!([])).into_response(),
        ("POST", "/api/v4/projects/7/deploy_keys") => (
            StatusCode::CREATED,
            axum::Json(json!({"id": 1, "title": body["title"], "key": body["key"]})),
        )
            .into_response(),
        _ => StatusCode::NOT_IMPLEMENTED.into_response(),
    }
}

fn serve(gl: Gitlab) -> String {
    let app = Router::new().fallback(api).with_state(gl);
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
    format!("http://{addr}/api/v4")
}

#[test]
fn bootstrap_gitlab_creates_the_project_in_the_group_adds_the_deploy_key_and_syncs() {
    let Some(up) = common::start_up() else { return };
    let server = ferroflux_testpeers::require!(ferroflux_testpeers::GitSsh::start());
    let bare = server.repos().create("fleet").expect("create repo");
    let work = ferroflux_testpeers::GitWork::new(&bare).expect("work tree");
    work.write("README.md", "fleet\n").expect("write");
    work.commit("initial").expect("commit");
    work.push().expect("push");
    let ssh_url = server.url("fleet");
    // The clone URL reaches the same bare repository as the SSH URL (GitLab serves one
    // project on both), so what the CLI pushes is what the cluster syncs.
    let clone_url = format!("file://{}", bare.display());
    let gl = Gitlab {
        project: Arc::new(json!({
            "id": 7,
            "web_url": "https://gitlab.example/team/fleet",
            "http_url_to_repo": clone_url,
            "ssh_url_to_repo": ssh_url,
        })),
        ..Gitlab::default()
    };
    let api = serve(gl.clone());
    let key_file = up.dir.path().join("identity");
    std::fs::write(&key_file, server.client_key()).expect("key file");

    let run = || -> Output {
        Command::new(env!("CARGO_BIN_EXE_ferroflux"))
            .args([
                "bootstrap",
                "gitlab",
                "--owner",
                "team",
                "--repository",
                "fleet",
            ])
            .args(["--api-url", &api, "--hostname", "gitlab.example"])
            .args(["--path", "clusters/gl", "--namespace", "flux-gl"])
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
            .env("GITLAB_TOKEN", "gl-token")
            .stdin(Stdio::null())
            .output()
            .expect("ferroflux runs")
    };
    let out = run();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    let calls = gl.calls.lock().expect("lock").clone();
    let bodies = gl.bodies.lock().expect("lock").clone();
    // The provider calls, in flux's order, each with the token in GitLab's header.
    assert_eq!(
        calls,
        [
            "GET /api/v4/projects/team%2Ffleet [gl-token]",
            "GET /api/v4/namespaces/team [gl-token]",
            "POST /api/v4/projects [gl-token]",
            "GET /api/v4/projects/7/deploy_keys [gl-token]",
            "POST /api/v4/projects/7/deploy_keys [gl-token]",
        ],
        "{log}"
    );
    assert_eq!(
        bodies[0],
        json!({"name": "fleet", "namespace_id": 42, "visibility": "private"})
    );
    assert_eq!(bodies[1]["title"], "flux-gl-flux-system-main-clusters/gl");
    assert_eq!(bodies[1]["can_push"], false);
    assert!(
        bodies[1]["key"]
            .as_str()
            .is_some_and(|k| k.starts_with("ecdsa-sha2-nistp256 ")),
        "{bodies:?}"
    );
    for wanted in [
        "► connecting to gitlab.example",
        "✔ repository \"https://gitlab.example/team/fleet\" created",
        "✔ configured deploy key \"flux-gl-flux-system-main-clusters/gl\" for \"fleet\"",
        "✔ committed component manifests to \"main\"",
        "► applying source secret \"flux-gl/flux-system\"",
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
    let sync = std::fs::read_to_string(check.join("clusters/gl/flux-gl/gotk-sync.yaml"))
        .expect("gotk-sync.yaml");
    assert!(sync.contains(&format!("  url: {ssh_url}\n")), "{sync}");
    let repo = common::kubectl_json(
        &up.kubeconfig,
        &["get", "gitrepositories", "flux-gl", "-n", "flux-gl"],
    );
    assert_eq!(repo["spec"]["url"], ssh_url.as_str(), "{repo}");
    assert_eq!(common::ready_condition(&repo).0, "True", "{repo}");

    // A second run finds the project and keeps the Secret and its deploy key.
    gl.calls.lock().expect("lock").clear();
    let again = run();
    let log = String::from_utf8_lossy(&again.stderr).into_owned();
    assert!(again.status.success(), "{log}");
    assert_eq!(
        *gl.calls.lock().expect("lock"),
        ["GET /api/v4/projects/team%2Ffleet [gl-token]"],
        "{log}"
    );
    for wanted in [
        "✔ component manifests are up to date",
        "✔ source secret up to date",
        "✔ sync manifests are up to date",
    ] {
        assert!(log.contains(wanted), "no {wanted:?} in:\n{log}");
    }

    // Without GITLAB_TOKEN nothing is called.
    gl.calls.lock().expect("lock").clear();
    let missing = Command::new(env!("CARGO_BIN_EXE_ferroflux"))
        .args([
            "bootstrap",
            "gitlab",
            "--owner",
            "team",
            "--repository",
            "fleet",
        ])
        .args(["--api-url", &api])
        .env_remove("GITLAB_TOKEN")
        .output()
        .expect("ferroflux runs");
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&missing.stderr)
            .contains("GITLAB_TOKEN environment variable is not set"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
    assert!(gl.calls.lock().expect("lock").is_empty());
}
