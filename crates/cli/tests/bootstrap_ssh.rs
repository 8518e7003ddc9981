//! `ferroflux bootstrap git` over SSH (issue 19) against OpenSSH's sshd (testpeers `GitSsh`)
//! with `ferroflux up` as the cluster: with `--private-key-file` the source Secret holds
//! `identity`, `identity.pub` and the scanned `known_hosts`, the GitRepository syncs the ssh://
//! URL and a second run reuses the Secret; without a key file an ECDSA P-384 deploy key is
//! generated, printed and confirmed before anything is pushed.

mod common;

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn bootstrap(kubeconfig: &std::path::Path, url: &str, extra: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferroflux"))
        .args(["bootstrap", "git", "--url", url, "--branch", "main"])
        .args(["--path", "clusters/dev"])
        .args(["--components", "source-controller,kustomize-controller"])
        .args(["--author-email", "flux@localhost", "--timeout", "3m"])
        .args(extra)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ferroflux runs");
    let mut input = child.stdin.take().expect("stdin");
    // The command may end before reading its input.
    let _ = input.write_all(stdin.as_bytes());
    drop(input);
    child.wait_with_output().expect("ferroflux ends")
}

#[test]
fn bootstrap_git_over_ssh_with_a_key_file_and_with_a_generated_key() {
    let Some(up) = common::start_up() else { return };
    let server = ferroflux_testpeers::require!(ferroflux_testpeers::GitSsh::start());
    let bare = server.repos().create("fleet").expect("create repo");
    let work = ferroflux_testpeers::GitWork::new(&bare).expect("work tree");
    work.write("README.md", "fleet\n").expect("write");
    work.commit("initial").expect("commit");
    work.push().expect("push");
    let url = server.url("fleet");
    let key_file = up.dir.path().join("identity");
    std::fs::write(&key_file, server.client_key()).expect("key file");
    let key_arg = key_file.to_string_lossy().into_owned();

    let first = bootstrap(
        &up.kubeconfig,
        &url,
        &[
            "--namespace",
            "flux-ssh",
            "--private-key-file",
            &key_arg,
            "--silent",
        ],
        "",
    );
    let log = text(&first.stderr);
    assert!(first.status.success(), "{log}");
    for wanted in [
        "✔ public key: ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTY",
        "✔ committed component manifests to \"main\"",
        "► installing components in \"flux-ssh\" namespace",
        "► generating source secret",
        "► applying source secret \"flux-ssh/flux-system\"",
        "✔ committed sync manifests to \"main\"",
        "✔ GitRepository reconciled successfully",
        "✔ Kustomization reconciled successfully",
        "✔ all components are healthy",
    ] {
        assert!(log.contains(wanted), "no {wanted:?} in:\n{log}");
    }
    assert!(!log.contains("Please give the key access"), "{log}");

    // The Secret flux writes for SSH, and the GitRepository on the ssh:// URL.
    let secret = common::kubectl_json(
        &up.kubeconfig,
        &["get", "secret", "flux-system", "-n", "flux-ssh"],
    );
    let data = |k: &str| {
        use base64::Engine as _;
        let b64 = secret["data"][k].as_str().unwrap_or_default();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("base64");
        String::from_utf8(bytes).expect("utf-8")
    };
    assert_eq!(data("identity"), server.client_key());
    assert!(
        data("identity.pub").starts_with("ecdsa-sha2-nistp256 "),
        "{secret}"
    );
    assert_eq!(data("known_hosts"), server.known_hosts());
    let repo = common::kubectl_json(
        &up.kubeconfig,
        &["get", "gitrepositories", "flux-ssh", "-n", "flux-ssh"],
    );
    assert_eq!(repo["spec"]["url"], url.as_str(), "{repo}");
    assert_eq!(repo["spec"]["secretRef"]["name"], "flux-system", "{repo}");
    assert_eq!(common::ready_condition(&repo).0, "True", "{repo}");

    // What was pushed over SSH.
    let check = up.dir.path().join("check");
    common::git(
        up.dir.path(),
        &["clone", "-q", &bare.to_string_lossy(), "check"],
    );
    let sync = std::fs::read_to_string(check.join("clusters/dev/flux-ssh/gotk-sync.yaml"))
        .expect("gotk-sync.yaml");
    assert!(sync.contains(&format!("  url: {url}\n")), "{sync}");
    let head = common::git(&check, &["rev-parse", "HEAD"]);

    // Second run with no key file and no --silent: the Secret's identity is reused, so there
    // is nothing to confirm and nothing to commit.
    let second = bootstrap(&up.kubeconfig, &url, &["--namespace", "flux-ssh"], "");
    let log = text(&second.stderr);
    assert!(second.status.success(), "{log}");
    for wanted in [
        "✔ component manifests are up to date",
        "✔ source secret up to date",
        "✔ sync manifests are up to date",
    ] {
        assert!(log.contains(wanted), "no {wanted:?} in:\n{log}");
    }
    assert!(!log.contains("public key"), "{log}");

    // A generated deploy key: ECDSA P-384, printed, and a "no" aborts before any push.
    let refused = bootstrap(&up.kubeconfig, &url, &["--namespace", "flux-gen"], "n\n");
    let log = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{log}");
    assert!(
        log.contains("✔ public key: ecdsa-sha2-nistp384 AAAAE2VjZHNhLXNoYTItbmlzdHAzODQ"),
        "{log}"
    );
    assert!(
        log.contains("? Please give the key access to your repository [y/N] "),
        "{log}"
    );
    assert!(log.ends_with("✗ aborting\n"), "{log}");
    assert!(!log.contains("cloning"), "{log}");

    // Confirmed but not authorized by the server: the push is made with the generated key,
    // so sshd refuses it and nothing reaches the repository.
    let unauthorized = bootstrap(&up.kubeconfig, &url, &["--namespace", "flux-gen"], "y\n");
    let log = text(&unauthorized.stderr);
    assert_eq!(unauthorized.status.code(), Some(1), "{log}");
    assert!(log.contains("failed to clone repository"), "{log}");
    common::git(&check, &["pull", "-q", "origin", "main"]);
    assert_eq!(common::git(&check, &["rev-parse", "HEAD"]), head);

    // flux's refusals.
    let rsa = bootstrap(
        &up.kubeconfig,
        &url,
        &["--namespace", "flux-gen", "--ssh-key-algorithm", "rsa"],
        "",
    );
    assert_eq!(rsa.status.code(), Some(1));
    assert!(
        text(&rsa.stderr).contains("ferroflux generates ecdsa deploy keys only"),
        "{}",
        text(&rsa.stderr)
    );
}
