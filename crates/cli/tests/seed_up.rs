//! The seed article's Verify section against `ferroflux up --example seed` (issue 19): every
//! command once with `ferroflux` and once with the real `flux` 2.9.5 CLI (`scripts/peers.sh`),
//! kubectl from the peers too, and each line showing what the seed says: team-a Ready with the
//! signed OCI artifact's revision, the policy's `.../podinfo` image at its newest `main-...`
//! tag, the automation's pushed commit, the tenant's ServiceAccount, the lockdown flag in
//! kustomize-controller's args, and a reconcile that completes only once the health check
//! passes. Then the rest of the platform: the Canary of podinfo initializes, the Kyverno URL
//! allowlist refuses another registry and a failing Kustomization reaches the Slack receiver
//! that `up` prints.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::process::wait_for;
use ferroflux_embedded::seed::{PODINFO_TAGS, TEAM_A_TAG};

/// A running `ferroflux up --example seed`, its output files and the peers to point at it.
struct Seed {
    _up: common::Killed,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    registry: String,
    flux: PathBuf,
    kubectl: PathBuf,
}

/// The two CLIs the Verify section runs with.
#[derive(Clone, Copy, Debug)]
enum Cli {
    Flux,
    Ferroflux,
}

impl Seed {
    fn start(flux: PathBuf, kubectl: PathBuf) -> Option<Seed> {
        if !common::require("git", &["--version"]) || !common::require_kubectl() {
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = dir.path().join("data");
        let registry = format!("127.0.0.1:{}", common::free_port());
        let up = common::Killed(
            Command::new(env!("CARGO_BIN_EXE_ferroflux"))
                .args(["up", "--example", "seed", "--receiver-listen=127.0.0.1:0"])
                .args(["--registry-listen", &registry, "--data-dir"])
                .arg(&data_dir)
                .args(["--listen", &format!("127.0.0.1:{}", common::free_port())])
                .stdout(std::fs::File::create(dir.path().join("up.out")).expect("log file"))
                .stderr(std::fs::File::create(dir.path().join("up.err")).expect("log file"))
                .spawn()
                .expect("ferroflux up starts"),
        );
        let seed = Seed {
            _up: up,
            kubeconfig: data_dir.join("apiserver/kubeconfig"),
            dir,
            registry,
            flux,
            kubectl,
        };
        let ready = wait_for(Duration::from_secs(300), || {
            seed.up_output()
                .contains("► the seed is Ready; its Verify section:")
                .then_some(())
        });
        assert!(
            ready.is_some(),
            "the seed did not become Ready:\n{}\n{}",
            seed.up_output(),
            std::fs::read_to_string(seed.dir.path().join("up.err")).unwrap_or_default()
        );
        Some(seed)
    }

    /// What `up` printed so far.
    fn up_output(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("up.out")).unwrap_or_default()
    }

    /// `flux|ferroflux ARGS --kubeconfig K`, standard output and error together (flux prints
    /// its progress on stderr).
    fn run(&self, cli: Cli, args: &[&str]) -> (bool, String) {
        let program = match cli {
            Cli::Flux => self.flux.clone(),
            Cli::Ferroflux => PathBuf::from(env!("CARGO_BIN_EXE_ferroflux")),
        };
        shown(&loopback(
            Command::new(program)
                .args(args)
                .arg("--kubeconfig")
                .arg(&self.kubeconfig),
        ))
    }

    /// The peers' kubectl against `up`.
    fn kubectl(&self, args: &[&str]) -> (bool, String) {
        shown(&loopback(
            Command::new(&self.kubectl)
                .arg("--kubeconfig")
                .arg(&self.kubeconfig)
                .args(args),
        ))
    }

    fn object(&self, args: &[&str]) -> serde_json::Value {
        common::kubectl_json(&self.kubeconfig, args)
    }
}

/// The API server is on loopback: a proxy of the machine must not see the requests.
fn loopback(command: &mut Command) -> Output {
    command
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .stdin(Stdio::null())
        .output()
        .expect("the command runs")
}

fn shown(output: &Output) -> (bool, String) {
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

/// The cells of the table row whose first cells are `keys`.
fn row(table: &str, keys: &[&str]) -> Vec<String> {
    table
        .lines()
        .map(|l| {
            l.split('\t')
                .map(|c| c.trim().to_string())
                .collect::<Vec<_>>()
        })
        .find(|cells| cells.len() > keys.len() && cells.iter().zip(keys).all(|(c, k)| c == k))
        .unwrap_or_else(|| panic!("no row {keys:?} in:\n{table}"))
}

/// The commit the image automation pushed to team-a's `flux-image-updates`.
fn pushed_commit(seed: &Seed) -> String {
    let bare = seed.dir.path().join("data/git/team-a.git");
    common::git(&bare, &["rev-parse", "refs/heads/flux-image-updates"])
        .trim()
        .to_string()
}

/// The Verify section, command for command, with `cli`.
fn verify(seed: &Seed, cli: Cli) {
    let (ok, check) = seed.run(cli, &["check"]);
    assert!(ok, "{cli:?} check:\n{check}");
    assert!(
        check.contains("✔ kustomize-controller: deployment ready"),
        "{check}"
    );
    assert!(check.contains("✔ all checks passed"), "{check}");

    let (ok, table) = seed.run(cli, &["get", "kustomizations", "-A"]);
    assert!(ok, "{cli:?}: {table}");
    let team_a = row(&table, &["team-a", "team-a"]);
    let revision = format!("{TEAM_A_TAG}@sha256:");
    assert!(team_a[2].starts_with(&revision), "{cli:?}: {team_a:?}");
    assert_eq!(team_a[4], "True", "{cli:?}: {team_a:?}");
    assert!(
        team_a[5].starts_with(&format!("Applied revision: {revision}")),
        "{cli:?}: {team_a:?}"
    );

    let (ok, table) = seed.run(cli, &["get", "sources", "oci", "-A"]);
    assert!(ok, "{cli:?}: {table}");
    let source = row(&table, &["team-a", "team-a"]);
    assert!(source[2].starts_with(&revision), "{cli:?}: {source:?}");
    assert_eq!(source[4], "True", "{cli:?}: {source:?}");

    let (ok, table) = seed.run(cli, &["get", "image", "policy", "podinfo", "-n", "team-a"]);
    assert!(ok, "{cli:?}: {table}");
    let policy = row(&table, &["podinfo"]);
    assert_eq!(policy[1], format!("{}/podinfo", seed.registry), "{cli:?}");
    // The newest by the extracted timestamp, as the seed's numerical policy picks it.
    assert_eq!(policy[2], PODINFO_TAGS[PODINFO_TAGS.len() - 1], "{cli:?}");
    assert_eq!(policy[3], "True", "{cli:?}: {policy:?}");

    let (ok, table) = seed.run(cli, &["get", "image", "update", "-n", "team-a"]);
    assert!(ok, "{cli:?}: {table}");
    let update = row(&table, &["team-a-images"]);
    assert_eq!(update[3], "True", "{cli:?}: {update:?}");
    let pushed = format!(
        "pushed commit '{}' to branch 'flux-image-updates'",
        pushed_commit(seed)
    );
    assert_eq!(update[4], pushed, "{cli:?}");

    let (ok, accounts) = seed.kubectl(&["get", "sa", "-n", "team-a"]);
    assert!(ok, "{accounts}");
    assert!(
        accounts.lines().any(|l| l.starts_with("team-a ")),
        "{accounts}"
    );

    let (ok, yaml) = seed.kubectl(&[
        "-n",
        "flux-system",
        "get",
        "deploy",
        "kustomize-controller",
        "-o",
        "yaml",
    ]);
    assert!(ok, "{yaml}");
    let grepped: Vec<&str> = yaml
        .lines()
        .filter(|l| l.contains("no-cross-namespace-refs"))
        .collect();
    assert_eq!(
        grepped,
        ["        - --no-cross-namespace-refs=true"],
        "{yaml}"
    );

    reconcile_waits_for_health(seed, cli, &revision);
}

/// `reconcile kustomization team-a --with-source` after podinfo's Deployment is deleted: the
/// reconcile recreates it and completes only once its health check passed, so the Deployment
/// is Available the moment the command returns.
fn reconcile_waits_for_health(seed: &Seed, cli: Cli, revision: &str) {
    let (ok, deleted) = seed.kubectl(&["delete", "deploy", "podinfo", "-n", "team-a"]);
    assert!(ok, "{deleted}");
    let (ok, out) = seed.run(
        cli,
        &[
            "reconcile",
            "kustomization",
            "team-a",
            "-n",
            "team-a",
            "--with-source",
        ],
    );
    assert!(ok, "{cli:?} reconcile:\n{out}");
    assert!(
        out.contains("◎ waiting for OCIRepository reconciliation"),
        "{out}"
    );
    assert!(
        out.contains(&format!("✔ fetched revision {revision}")),
        "{out}"
    );
    assert!(
        out.contains(&format!("✔ applied revision {revision}")),
        "{out}"
    );
    let deployment = seed.object(&["get", "deploy", "podinfo", "-n", "team-a"]);
    let available = deployment["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Available"))
        .map(|c| c["status"].clone());
    assert_eq!(
        available,
        Some("True".into()),
        "{cli:?}: the reconcile returned before podinfo was healthy: {deployment}"
    );
    let ks = seed.object(&["get", "kustomization", "team-a", "-n", "team-a"]);
    let healthy = ks["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Healthy"))
        .map(|c| c["status"].clone());
    assert_eq!(healthy, Some("True".into()), "{ks}");
}

/// The automation's commit, once it has pushed (it runs after the policy resolved).
fn wait_for_automation(seed: &Seed) {
    let pushed = wait_for(Duration::from_secs(120), || {
        let iua = seed.object(&[
            "get",
            "imageupdateautomation",
            "team-a-images",
            "-n",
            "team-a",
        ]);
        let (status, message) = common::ready_condition(&iua);
        (status == "True" && message.starts_with("pushed commit")).then_some(())
    });
    assert!(pushed.is_some(), "the image automation did not push");
    let bare = seed.dir.path().join("data/git/team-a.git");
    let updated = common::git(
        &bare,
        &[
            "show",
            "refs/heads/flux-image-updates:apps/team-a/deployment.yaml",
        ],
    );
    let newest = format!(
        "{}/podinfo:{}",
        seed.registry,
        PODINFO_TAGS[PODINFO_TAGS.len() - 1]
    );
    assert!(updated.contains(&newest), "{updated}");
}

/// Flagger's Canary of podinfo: the canary controller of `up` initializes it (the primary
/// Deployment serves, the Canary's phase is Initialized) next to the health-checked target.
fn canary_initializes(seed: &Seed) {
    let phase = wait_for(Duration::from_secs(180), || {
        let canary = seed.object(&["get", "canary", "podinfo", "-n", "team-a"]);
        let phase = canary["status"]["phase"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        (phase == "Initialized" || phase == "Succeeded").then_some(phase)
    });
    let canary = seed.object(&["get", "canary", "podinfo", "-n", "team-a"]);
    assert!(
        phase.is_some(),
        "the Canary did not initialize: {}",
        canary["status"]
    );
    let primary = seed.object(&["get", "deploy", "podinfo-primary", "-n", "team-a"]);
    assert_eq!(
        primary["status"]["readyReplicas"], 1,
        "{}",
        primary["status"]
    );
    let route = seed.object(&["get", "httproute", "podinfo", "-n", "team-a"]);
    let backends: Vec<&str> = route["spec"]["rules"][0]["backendRefs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| b["name"].as_str())
        .collect();
    assert_eq!(backends, ["podinfo-primary", "podinfo-canary"], "{route}");
}

/// The platform's allowlist: an OCIRepository of another registry is refused at admission.
fn allowlist_refuses_other_registries(seed: &Seed) {
    let foreign = "apiVersion: source.toolkit.fluxcd.io/v1beta2
kind: OCIRepository
metadata: {name: elsewhere, namespace: team-a}
spec: {interval: 10m, url: oci://ghcr.io/someone/else, ref: {tag: latest}}
";
    let output = common::kubectl(
        &seed.kubeconfig,
        &["apply", "-f", "-"],
        Some(foreign.as_bytes()),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "a foreign registry was admitted");
    assert!(
        stderr.contains("OCIRepository url must be under the platform registry"),
        "{stderr}"
    );
}

/// A failing Kustomization's error event reaches the Slack Provider, whose receiver `up` prints.
fn failures_reach_slack(seed: &Seed) {
    let broken = "apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: broken, namespace: flux-system}
spec:
  serviceAccountName: kustomize-controller
  interval: 10m
  sourceRef: {kind: GitRepository, name: flux-system}
  path: ./does-not-exist
  prune: true
";
    common::kubectl_ok(
        &seed.kubeconfig,
        &["apply", "-f", "-"],
        Some(broken.as_bytes()),
    );
    let line =
        "✉ slack #platform-alerts kustomization/broken.flux-system: kustomization path not found";
    let printed = wait_for(Duration::from_secs(60), || {
        seed.up_output().contains(line).then_some(())
    });
    assert!(
        printed.is_some(),
        "up did not print {line:?}:\n{}",
        seed.up_output()
    );
}

#[test]
fn the_seed_verify_section_holds_with_ferroflux_and_flux() {
    let flux = ferroflux_testpeers::require!(ferroflux_testpeers::peer_binary("flux"));
    let kubectl = ferroflux_testpeers::require!(ferroflux_testpeers::peer_binary("kubectl"));
    let Some(seed) = Seed::start(flux, kubectl) else {
        return;
    };
    let printed = seed.up_output();
    for command in [
        "flux check",
        "flux get kustomizations -A",
        "flux get sources oci -A",
        "flux get image policy podinfo -n team-a",
        "flux get image update -n team-a",
        "kubectl get sa -n team-a",
        "kubectl -n flux-system get deploy kustomize-controller -o yaml | grep no-cross-namespace-refs",
        "flux reconcile kustomization team-a -n team-a --with-source",
    ] {
        assert!(
            printed.lines().any(|l| l == command),
            "up does not print {command:?}"
        );
    }
    wait_for_automation(&seed);
    for cli in [Cli::Ferroflux, Cli::Flux] {
        verify(&seed, cli);
        eprintln!("[seed_up] the Verify section holds with {cli:?}");
    }
    canary_initializes(&seed);
    allowlist_refuses_other_registries(&seed);
    failures_reach_slack(&seed);
}
