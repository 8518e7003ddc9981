//! Flux's own source-controller and kustomize-controller, built from their Go modules by
//! `scripts/peers.sh`, reconcile the bundled example fleet against `ferroflux apiserver`: the
//! CRDs come from the controllers' own modules, the fleet from a real git http-backend, and
//! every GitRepository and Kustomization must become Ready with the tenants' apps applied.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ferroflux_testpeers::{GitHttp, GitWork, peer_binary, peer_source, require};
use serde_json::Value;

mod common;

use common::{Killed, free_port, kubectl_ok as kubectl};

/// How long the fleet may take to become Ready: two sources, four Kustomizations, one of them
/// gating on a simulated rollout.
const READY_TIMEOUT: Duration = Duration::from_secs(240);

/// Commits the files below `from` to the bare repository `bare` on `main`.
fn seed(bare: &Path, from: &Path) {
    let work = GitWork::new(bare).expect("a working tree");
    common::copy_dir(from, work.path());
    work.commit("seed").expect("commit");
    work.push().expect("push");
}

/// The CRD files of a controller's module, `config/crd/bases/*.yaml`.
fn upstream_crds(peer: &str) -> Result<Vec<PathBuf>, ferroflux_testpeers::PeerError> {
    let bases = peer_source(peer)?.join("config/crd/bases");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&bases)
        .expect("the module has config/crd/bases")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no CRDs in {}", bases.display());
    Ok(files)
}

/// A Flux controller as its Deployment runs it, but against `kubeconfig`, every port on
/// loopback, its log in `log`. Leader election stays off, the binaries' default: the
/// Deployment turns it on, but outside a pod controller-runtime finds no namespace for the
/// Lease (Flux sets none).
fn start_controller(binary: &Path, kubeconfig: &Path, args: &[String], log: &Path) -> Killed {
    let out = std::fs::File::create(log).expect("log file");
    let err = out.try_clone().expect("log file handle");
    Killed(
        Command::new(binary)
            .arg(format!("--metrics-addr=127.0.0.1:{}", free_port()))
            .arg(format!("--health-addr=127.0.0.1:{}", free_port()))
            .args(["--log-level=debug", "--log-encoding=console"])
            .args(args)
            .env("RUNTIME_NAMESPACE", "flux-system")
            .env("KUBECONFIG", kubeconfig)
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .expect("the controller starts"),
    )
}

/// "Kind namespace/name" -> Ready status and message, of every GitRepository and
/// Kustomization.
fn readiness(kubeconfig: &Path) -> Vec<(String, String, String)> {
    let output = common::kubectl(
        kubeconfig,
        &["get", "gitrepositories,kustomizations", "-A", "-o", "json"],
        None,
    );
    let Ok(list) = serde_json::from_slice::<Value>(&output.stdout) else {
        return Vec::new();
    };
    let items = list["items"].as_array().cloned().unwrap_or_default();
    items
        .iter()
        .map(|item| {
            let (status, message) = common::ready_condition(item);
            let name = format!(
                "{} {}/{}",
                item["kind"].as_str().unwrap_or_default(),
                item["metadata"]["namespace"].as_str().unwrap_or_default(),
                item["metadata"]["name"].as_str().unwrap_or_default()
            );
            (name, status, message)
        })
        .collect()
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The fleet's names that must become Ready.
const WANTED: [&str; 7] = [
    "GitRepository flux-system/flux-system",
    "GitRepository team-a/team-a",
    "GitRepository team-b/team-b",
    "Kustomization flux-system/flux-system",
    "Kustomization flux-system/tenants",
    "Kustomization team-a/team-a",
    "Kustomization team-b/team-b",
];

/// The two controllers running, and their logs.
struct Controllers {
    _source: Killed,
    _kustomize: Killed,
    source_log: PathBuf,
    kustomize_log: PathBuf,
}

/// Seeds the example fleet's two repositories; returns the fleet's URL.
fn serve_fleet(git: &GitHttp) -> String {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    for repo in ["fleet-infra", "tenant-apps"] {
        seed(
            &git.repos().create(repo).expect("a fleet repo"),
            &examples.join(repo),
        );
    }
    git.url("fleet-infra")
}

/// Applies the controllers' CRDs and waits until the API server serves them.
fn install_crds(kubeconfig: &Path, crds: &[PathBuf]) {
    let mut apply = vec!["apply", "--server-side"];
    let crd_args: Vec<String> = crds.iter().map(|p| p.display().to_string()).collect();
    for crd in &crd_args {
        apply.extend(["-f", crd.as_str()]);
    }
    kubectl(kubeconfig, &apply, None);
    kubectl(
        kubeconfig,
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=30s",
            "crd/gitrepositories.source.toolkit.fluxcd.io",
            "crd/kustomizations.kustomize.toolkit.fluxcd.io",
        ],
        None,
    );
}

/// What `flux bootstrap` leaves in the cluster besides the controllers: the namespace, the
/// applier ServiceAccount bound to cluster-admin (the fleet's `tenants` Kustomization
/// impersonates it), the variables the fleet substitutes, and the sync objects.
fn bootstrap(kubeconfig: &Path, fleet_url: &str, git_server: &str) {
    let bootstrap = format!(
        "apiVersion: v1
kind: Namespace
metadata: {{name: flux-system}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {{name: kustomize-controller, namespace: flux-system}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: cluster-reconciler-flux-system}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}}
subjects:
  - {{kind: ServiceAccount, name: kustomize-controller, namespace: flux-system}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: cluster-vars, namespace: flux-system}}
data: {{git_server: \"{git_server}\", cluster_name: prod}}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {{name: flux-system, namespace: flux-system}}
spec:
  interval: 1m0s
  ref: {{branch: main}}
  url: {fleet_url}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {{name: flux-system, namespace: flux-system}}
spec:
  interval: 10m0s
  path: ./clusters/prod
  prune: true
  sourceRef: {{kind: GitRepository, name: flux-system}}
"
    );
    kubectl(
        kubeconfig,
        &["apply", "-f", "-"],
        Some(bootstrap.as_bytes()),
    );
}

/// Starts source-controller and kustomize-controller against `kubeconfig`, their data and
/// logs under `dir`.
fn start_controllers(
    source_controller: &Path,
    kustomize_controller: &Path,
    kubeconfig: &Path,
    dir: &Path,
) -> Controllers {
    // source-controller requires its storage directory to exist, as its volume does.
    let storage = dir.join("storage");
    std::fs::create_dir_all(&storage).expect("storage dir");
    let storage_addr = format!("127.0.0.1:{}", free_port());
    let source_log = dir.join("source-controller.log");
    let source = start_controller(
        source_controller,
        kubeconfig,
        &[
            format!("--storage-path={}", storage.display()),
            format!("--storage-addr={storage_addr}"),
            format!("--storage-adv-addr={storage_addr}"),
        ],
        &source_log,
    );
    let kustomize_log = dir.join("kustomize-controller.log");
    let kustomize = start_controller(kustomize_controller, kubeconfig, &[], &kustomize_log);
    Controllers {
        _source: source,
        _kustomize: kustomize,
        source_log,
        kustomize_log,
    }
}

/// Waits until every object of [`WANTED`] is Ready; fails with the controllers' logs.
fn wait_fleet_ready(kubeconfig: &Path, controllers: &Controllers) {
    let all_ready = |all: &[(String, String, String)]| {
        WANTED.iter().all(|w| {
            all.iter()
                .any(|(name, status, _)| name == w && status == "True")
        })
    };
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut last = Vec::new();
    while Instant::now() < deadline {
        last = readiness(kubeconfig);
        if all_ready(&last) {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    assert!(
        all_ready(&last),
        "not everything is Ready after {READY_TIMEOUT:?}: {last:#?}\n\
         --- source-controller:\n{}\n--- kustomize-controller:\n{}",
        tail(&controllers.source_log, 80),
        tail(&controllers.kustomize_log, 80)
    );
}

/// client-go logs a watch or list the server answered wrongly and carries on (it lists
/// again): the fleet would still become Ready, so the logs are checked too, after a change
/// of the kinds kustomize-controller watches for metadata only.
fn assert_watches_unbroken(kubeconfig: &Path, git_server: &str, controllers: &Controllers) {
    let touched = format!(
        "apiVersion: v1
kind: ConfigMap
metadata: {{name: cluster-vars, namespace: flux-system, labels: {{touched: \"yes\"}}}}
data: {{git_server: \"{git_server}\", cluster_name: prod}}
---
apiVersion: v1
kind: Secret
metadata: {{name: touched, namespace: flux-system}}
"
    );
    kubectl(kubeconfig, &["apply", "-f", "-"], Some(touched.as_bytes()));
    std::thread::sleep(Duration::from_secs(2));
    for log in [&controllers.source_log, &controllers.kustomize_log] {
        let text = std::fs::read_to_string(log).expect("controller log");
        let broken: Vec<&str> = text
            .lines()
            .filter(|l| {
                [
                    "watch ended with error",
                    "Failed to watch",
                    "failed to list",
                ]
                .iter()
                .any(|m| l.contains(m))
            })
            .collect();
        assert!(
            broken.is_empty(),
            "{}:\n{}",
            log.display(),
            broken.join("\n")
        );
    }
}

/// The controllers' Kubernetes Events reach the server.
fn assert_events_recorded(kubeconfig: &Path) {
    let events = kubectl(
        kubeconfig,
        &[
            "get",
            "events",
            "-n",
            "flux-system",
            "-o",
            "jsonpath={.items[*].reason}",
        ],
        None,
    );
    assert!(events.contains("NewArtifact"), "{events}");
    assert!(events.contains("ReconciliationSucceeded"), "{events}");
}

/// Each tenant's podinfo is applied, labelled by its Kustomization, with its variables.
fn assert_tenants_applied(kubeconfig: &Path) {
    for tenant in ["team-a", "team-b"] {
        let deployment: Value = serde_json::from_str(&kubectl(
            kubeconfig,
            &["get", "deployment", "podinfo", "-n", tenant, "-o", "json"],
            None,
        ))
        .expect("kubectl prints JSON");
        assert_eq!(
            deployment["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/name"],
            tenant
        );
        let env = &deployment["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"];
        assert_eq!(env.as_str(), Some(format!("hello from {tenant}").as_str()));
        kubectl(
            kubeconfig,
            &["get", "service", "podinfo", "-n", tenant],
            None,
        );
    }
}

/// Deleting a tenant's sync runs the controllers' finalizers: kustomize-controller prunes
/// what it applied, source-controller drops the artifact; then both objects go.
fn assert_finalizers_prune(kubeconfig: &Path) {
    kubectl(
        kubeconfig,
        &[
            "delete",
            "kustomization,gitrepository",
            "team-b",
            "-n",
            "team-b",
            "--timeout=60s",
        ],
        None,
    );
    let left = kubectl(
        kubeconfig,
        &[
            "get",
            "deployments,services,kustomizations,gitrepositories",
            "-n",
            "team-b",
            "-o",
            "name",
        ],
        None,
    );
    assert_eq!(left, "", "left after the finalizers ran");
}

#[test]
fn fluxs_own_controllers_reconcile_the_example_fleet_to_ready() {
    if !common::require("git", &["--version"]) || !common::require_kubectl() {
        return;
    }
    let source_controller = require!(peer_binary("source-controller"));
    let kustomize_controller = require!(peer_binary("kustomize-controller"));
    let mut crds = require!(upstream_crds("source-controller"));
    crds.extend(require!(upstream_crds("kustomize-controller")));
    let git = require!(GitHttp::start(None));
    let fleet_url = serve_fleet(&git);
    let git_server = fleet_url
        .strip_suffix("/fleet-infra.git")
        .expect("the URL ends with the repository");

    let dir = tempfile::tempdir().expect("temp dir");
    let started = Instant::now();
    let (_apiserver, kubeconfig) = common::start_apiserver(dir.path());
    install_crds(&kubeconfig, &crds);
    bootstrap(&kubeconfig, &fleet_url, git_server);
    let controllers = start_controllers(
        &source_controller,
        &kustomize_controller,
        &kubeconfig,
        dir.path(),
    );
    wait_fleet_ready(&kubeconfig, &controllers);
    eprintln!(
        "the fleet was Ready {:.1}s after the API server started",
        started.elapsed().as_secs_f64()
    );

    assert_watches_unbroken(&kubeconfig, git_server, &controllers);
    assert_events_recorded(&kubeconfig);
    assert_tenants_applied(&kubeconfig);
    assert_finalizers_prune(&kubeconfig);
}
