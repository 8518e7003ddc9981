//! `ferroflux bootstrap github` (issue 19) against a local HTTP endpoint implementing the
//! GitHub REST calls flux makes (get repository, create it for the user, list and add deploy
//! keys), whose clone URL is `ferroflux up`'s Git server and whose SSH URL is the sshd peer:
//! the calls are asserted, the repository gets the manifests over HTTPS-with-token and the
//! cluster syncs over SSH with the deploy key that was added.

mod common;

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

#[derive(Clone, Default)]
struct Github {
    calls: Arc<Mutex<Vec<String>>>,
    bodies: Arc<Mutex<Vec<Value>>>,
    created: Arc<Mutex<bool>>,
    repo: Arc<Value>,
}

impl Github {
    fn record(&self, headers: &HeaderMap, call: String, body: Option<Value>) {
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        self.calls
            .lock()
            .expect("lock")
            .push(format!("{call} [{auth}]"));
        self.bodies.lock().expect("lock").extend(body);
    }
}

async fn get_repo(
    State(gh): State<Github>,
    headers: HeaderMap,
    Path((o, r)): Path<(String, String)>,
) -> (StatusCode, Json<Value>) {
    gh.record(&headers, format!("GET /repos/{o}/{r}"), None);
    if *gh.created.lock().expect("lock") {
        (StatusCode::OK, Json((*gh.repo).clone()))
    } else {
        (StatusCode::NOT_FOUND, Json(json!({"message": "Not Found"})))
    }
}

async fn create_repo(
    State(gh): State<Github>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    gh.record(&headers, "POST /user/repos".into(), Some(body));
    *gh.created.lock().expect("lock") = true;
    (StatusCode::CREATED, Json((*gh.repo).clone()))
}

async fn list_keys(
    State(gh): State<Github>,
    headers: HeaderMap,
    Path((o, r)): Path<(String, String)>,
) -> Json<Value> {
    gh.record(&headers, format!("GET /repos/{o}/{r}/keys"), None);
    Json(json!([]))
}

async fn add_key(
    State(gh): State<Github>,
    headers: HeaderMap,
    Path((o, r)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    gh.record(
        &headers,
        format!("POST /repos/{o}/{r}/keys"),
        Some(body.clone()),
    );
    (
        StatusCode::CREATED,
        Json(json!({"id": 1, "title": body["title"], "key": body["key"]})),
    )
}

fn serve(gh: Github) -> String {
    let app = Router::new()
        .route("/repos/{o}/{r}", get(get_repo))
        .route("/user/repos", axum::routing::post(create_repo))
        .route("/repos/{o}/{r}/keys", get(list_keys).post(add_key))
        .with_state(gh);
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
    format!("http://{addr}")
}

#[test]
fn bootstrap_github_creates_the_repository_adds_the_deploy_key_and_syncs() {
    let Some(up) = common::start_up() else { return };
    let server = ferroflux_testpeers::require!(ferroflux_testpeers::GitSsh::start());
    let bare = server.repos().create("fleet").expect("create repo");
    let work = ferroflux_testpeers::GitWork::new(&bare).expect("work tree");
    work.write("README.md", "fleet\n").expect("write");
    work.commit("initial").expect("commit");
    work.push().expect("push");
    let ssh_url = server.url("fleet");
    // The clone URL reaches the same bare repository as the SSH URL (GitHub serves one
    // repository on both), so what the CLI pushes is what the cluster syncs.
    let clone_url = format!("file://{}", bare.display());
    let gh = Github {
        repo: Arc::new(json!({
            "html_url": "https://github.example/team/fleet",
            "clone_url": clone_url,
            "ssh_url": ssh_url,
        })),
        ..Github::default()
    };
    let api = serve(gh.clone());
    let key_file = up.dir.path().join("identity");
    std::fs::write(&key_file, server.client_key()).expect("key file");

    let run = || {
        Command::new(env!("CARGO_BIN_EXE_ferroflux"))
            .args([
                "bootstrap",
                "github",
                "--owner",
                "team",
                "--repository",
                "fleet",
            ])
            .args([
                "--personal",
                "--api-url",
                &api,
                "--hostname",
                "github.example",
            ])
            .args(["--path", "clusters/gh", "--namespace", "flux-gh"])
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
            .env("GITHUB_TOKEN", "gh-token")
            .stdin(Stdio::null())
            .output()
            .expect("ferroflux runs")
    };
    let out = run();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    let calls = gh.calls.lock().expect("lock").clone();
    let bodies = gh.bodies.lock().expect("lock").clone();
    // The provider calls, in flux's order, each with the token.
    assert_eq!(
        calls,
        [
            "GET /repos/team/fleet [Bearer gh-token]",
            "POST /user/repos [Bearer gh-token]",
            "GET /repos/team/fleet/keys [Bearer gh-token]",
            "POST /repos/team/fleet/keys [Bearer gh-token]",
        ],
        "{log}"
    );
    assert_eq!(
        bodies[0],
        json!({"name": "fleet", "private": true, "auto_init": true})
    );
    assert_eq!(bodies[1]["title"], "flux-gh-flux-system-main-clusters/gh");
    assert_eq!(bodies[1]["read_only"], true);
    assert!(
        bodies[1]["key"]
            .as_str()
            .is_some_and(|k| k.starts_with("ecdsa-sha2-nistp256 ")),
        "{bodies:?}"
    );
    for wanted in [
        "► connecting to github.example",
        "✔ repository \"https://github.example/team/fleet\" created",
        "✔ configured deploy key \"flux-gh-flux-system-main-clusters/gh\" for \"fleet\"",
        "✔ committed component manifests to \"main\"",
        "► applying source secret \"flux-gh/flux-system\"",
        "✔ GitRepository reconciled successfully",
        "✔ Kustomization reconciled successfully",
        "✔ all components are healthy",
    ] {
        assert!(log.contains(wanted), "no {wanted:?} in:\n{log}");
    }
    assert!(out.status.success(), "{log}");
    // The manifests went to the clone URL; the cluster syncs the SSH URL with the key.
    let check = up.dir.path().join("check");
    common::git(
        up.dir.path(),
        &["clone", "-q", &bare.to_string_lossy(), "check"],
    );
    let sync = std::fs::read_to_string(check.join("clusters/gh/flux-gh/gotk-sync.yaml"))
        .expect("gotk-sync.yaml");
    assert!(sync.contains(&format!("  url: {ssh_url}\n")), "{sync}");
    let repo = common::kubectl_json(
        &up.kubeconfig,
        &["get", "gitrepositories", "flux-gh", "-n", "flux-gh"],
    );
    assert_eq!(repo["spec"]["url"], ssh_url.as_str(), "{repo}");
    assert_eq!(common::ready_condition(&repo).0, "True", "{repo}");
    let secret = common::kubectl_json(
        &up.kubeconfig,
        &["get", "secret", "flux-system", "-n", "flux-gh"],
    );
    assert!(secret["data"]["identity"].is_string(), "{secret}");
    assert!(secret["data"]["known_hosts"].is_string(), "{secret}");

    // A second run finds the repository and keeps the Secret and its deploy key.
    gh.calls.lock().expect("lock").clear();
    let again = run();
    let log = String::from_utf8_lossy(&again.stderr).into_owned();
    assert!(again.status.success(), "{log}");
    assert_eq!(
        *gh.calls.lock().expect("lock"),
        ["GET /repos/team/fleet [Bearer gh-token]"],
        "{log}"
    );
    for wanted in [
        "✔ component manifests are up to date",
        "✔ source secret up to date",
        "✔ sync manifests are up to date",
    ] {
        assert!(log.contains(wanted), "no {wanted:?} in:\n{log}");
    }
}
