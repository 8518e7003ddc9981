//! `ferroflux bootstrap git` against `ferroflux up`'s Git server (issue 19): the first run
//! commits gotk-components.yaml (with `--components-extra`-style selection and a controller's
//! extra args), installs the components in their own namespace, writes the source Secret,
//! commits gotk-sync.yaml and kustomization.yaml and waits until the sync GitRepository and
//! Kustomization are Ready and the controllers healthy; a second run changes nothing.

mod common;

use std::process::{Command, Output, Stdio};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn bootstrap(kubeconfig: &std::path::Path, url: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferroflux"))
        .args(["bootstrap", "git", "--url", url, "--branch", "main"])
        .args(["--path", "clusters/staging", "--namespace", "flux-staging"])
        .args([
            "--token-auth",
            "--allow-insecure-http",
            "--password",
            "token",
        ])
        .args(["--components", "source-controller,kustomize-controller"])
        .args(["--kustomize-controller-extra-args=--no-cross-namespace-refs=true"])
        .args(["--author-email", "flux@localhost", "--timeout", "3m"])
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .stdin(Stdio::null())
        .output()
        .expect("ferroflux runs")
}

#[test]
fn bootstrap_git_commits_installs_syncs_and_is_idempotent() {
    let Some(up) = common::start_up() else { return };
    let fleet = common::kubectl_json(
        &up.kubeconfig,
        &["get", "gitrepositories", "flux-system", "-n", "flux-system"],
    );
    let url = fleet["spec"]["url"]
        .as_str()
        .expect("fleet URL")
        .to_string();

    let first = bootstrap(&up.kubeconfig, &url);
    let log = text(&first.stderr);
    assert!(first.status.success(), "{log}");
    for wanted in [
        "► cloning branch \"main\" from Git repository",
        "✔ committed component manifests to \"main\"",
        "► installing components in \"flux-staging\" namespace",
        "✔ reconciled components",
        "► generating source secret",
        "✔ committed sync manifests to \"main\"",
        "✔ reconciled sync configuration",
        "✔ GitRepository reconciled successfully",
        "✔ Kustomization reconciled successfully",
        "✔ all components are healthy",
    ] {
        assert!(log.contains(wanted), "no {wanted:?} in:\n{log}");
    }
    assert!(text(&first.stdout).is_empty(), "{}", text(&first.stdout));

    // What was pushed.
    let work = up.dir.path().join("check");
    let bare = up.dir.path().join("data/git/fleet-infra.git");
    common::git(
        up.dir.path(),
        &["clone", "-q", &bare.to_string_lossy(), "check"],
    );
    let dir = work.join("clusters/staging/flux-staging");
    let components =
        std::fs::read_to_string(dir.join("gotk-components.yaml")).expect("gotk-components.yaml");
    assert!(
        components.contains("--no-cross-namespace-refs=true"),
        "{components}"
    );
    assert!(components.contains("name: source-controller"));
    assert!(!components.contains("name: helm-controller"));
    let sync = std::fs::read_to_string(dir.join("gotk-sync.yaml")).expect("gotk-sync.yaml");
    assert!(sync.contains("  path: ./clusters/staging\n"), "{sync}");
    assert_eq!(
        std::fs::read_to_string(dir.join("kustomization.yaml")).expect("kustomization.yaml"),
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n\
         - gotk-components.yaml\n- gotk-sync.yaml\n"
    );
    let head = common::git(&work, &["rev-parse", "HEAD"]);
    let secret = common::kubectl_json(
        &up.kubeconfig,
        &["get", "secret", "flux-system", "-n", "flux-staging"],
    );
    assert!(secret["data"]["password"].is_string(), "{secret}");
    let ks = common::kubectl_json(
        &up.kubeconfig,
        &[
            "get",
            "kustomizations",
            "flux-staging",
            "-n",
            "flux-staging",
        ],
    );
    assert_eq!(common::ready_condition(&ks).0, "True", "{ks}");

    // Idempotent: nothing to commit, nothing to install, the same head.
    let second = bootstrap(&up.kubeconfig, &url);
    let log = text(&second.stderr);
    assert!(second.status.success(), "{log}");
    for wanted in [
        "✔ component manifests are up to date",
        "✔ source secret up to date",
        "✔ sync manifests are up to date",
        "✔ all components are healthy",
    ] {
        assert!(log.contains(wanted), "no {wanted:?} in:\n{log}");
    }
    assert!(!log.contains("installing components"), "{log}");
    common::git(&work, &["pull", "-q", "origin", "main"]);
    assert_eq!(common::git(&work, &["rev-parse", "HEAD"]), head);

    // `install` applies (not only `--export`) and waits for the controllers it installed.
    let install = Command::new(env!("CARGO_BIN_EXE_ferroflux"))
        .args(["install", "--namespace", "flux-install"])
        .args(["--components", "source-controller", "--timeout", "2m"])
        .arg("--kubeconfig")
        .arg(&up.kubeconfig)
        .stdin(Stdio::null())
        .output()
        .expect("ferroflux runs");
    let log = text(&install.stderr);
    assert!(install.status.success(), "{log}");
    for wanted in [
        "✚ generating manifests\n✔ manifests build completed\n► installing components in flux-install namespace\n",
        "Deployment/flux-install/source-controller created\n",
        "◎ verifying installation\n✔ source-controller: deployment ready\n✔ install finished\n",
    ] {
        assert!(log.contains(wanted), "no {wanted:?} in:\n{log}");
    }

    // flux's refusals.
    let insecure = Command::new(env!("CARGO_BIN_EXE_ferroflux"))
        .args(["bootstrap", "git", "--url", &url, "--token-auth"])
        .output()
        .expect("ferroflux runs");
    assert_eq!(insecure.status.code(), Some(1));
    assert_eq!(
        text(&insecure.stderr),
        "✗ scheme http is insecure, pass --allow-insecure-http=true to allow it\n"
    );
}
