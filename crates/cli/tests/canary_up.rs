//! The canary controller on `ferroflux up`: it runs as Flagger's `flagger` component with its
//! CRDs; a Canary of a Deployment is initialized (primary, Services, the target scaled to
//! zero) and promoted through a blue/green run of the `kubernetes` provider; and the
//! acceptance of issue 20: a `gatewayapi:v1` Canary judged by Debian's Prometheus (the
//! `ferroflux-testpeers` metrics app) progresses a tag committed to the fleet in 10 % steps to
//! 50 % and promotes it, rolls the next back on errors, without the fleet's Kustomization
//! fighting Flagger's scale-to-zero; and the chain image automation -> Git -> Kustomization ->
//! Canary without a human. `up` keeps Flagger's ten-second interval floor, so each run takes
//! a few minutes. Every wait is on a condition.

use std::process::Command;
use std::time::Duration;

mod common;

use common::process::wait_for;

const NS: &str = "canary-demo";

const MANIFESTS: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: canary-demo
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: podinfo
  namespace: canary-demo
spec:
  replicas: 2
  selector:
    matchLabels:
      app: podinfo
  template:
    metadata:
      labels:
        app: podinfo
    spec:
      containers:
        - name: podinfod
          image: ghcr.io/stefanprodan/podinfo:6.0.0
          ports:
            - containerPort: 9898
              name: http
---
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: podinfo
  namespace: canary-demo
spec:
  provider: kubernetes
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: podinfo
  service:
    port: 9898
  analysis:
    interval: 1s
    threshold: 1
    iterations: 1
"#;

fn phase(kubeconfig: &std::path::Path) -> String {
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["get", "canary", "podinfo", "-n", NS])
        .args(["-o", "jsonpath={.status.phase}"])
        .output()
        .expect("kubectl runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn wait_phase(kubeconfig: &std::path::Path, wanted: &str) {
    let reached = wait_for(Duration::from_secs(300), || {
        (phase(kubeconfig) == wanted).then_some(())
    });
    assert!(
        reached.is_some(),
        "the Canary never reached {wanted}: {}",
        common::kubectl_ok(
            kubeconfig,
            &["get", "canary", "podinfo", "-n", NS, "-o", "yaml"],
            None
        )
    );
}

fn get_canaries(kubeconfig: &std::path::Path) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_ferroflux"))
        .args(["get", "canaries", "-A", "--kubeconfig"])
        .arg(kubeconfig)
        .output()
        .expect("ferroflux runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn up_runs_flagger_and_a_canary_is_initialized_and_promoted() {
    let Some(up) = common::start_up() else {
        return;
    };
    let kubeconfig = &up.kubeconfig;
    let flagger = common::kubectl_json(
        kubeconfig,
        &["get", "deployment", "flagger", "-n", "flux-system"],
    );
    assert_eq!(
        flagger["spec"]["template"]["spec"]["containers"][0]["args"][0],
        "canary"
    );
    for crd in [
        "canaries.flagger.app",
        "metrictemplates.flagger.app",
        "alertproviders.flagger.app",
        "httproutes.gateway.networking.k8s.io",
    ] {
        common::kubectl_ok(kubeconfig, &["get", "crd", crd], None);
    }
    common::kubectl_ok(
        kubeconfig,
        &["apply", "-f", "-"],
        Some(MANIFESTS.as_bytes()),
    );

    wait_phase(kubeconfig, "Initialized");
    let primary = common::kubectl_json(
        kubeconfig,
        &["get", "deployment", "podinfo-primary", "-n", NS],
    );
    assert_eq!(
        primary["spec"]["template"]["spec"]["containers"][0]["image"],
        "ghcr.io/stefanprodan/podinfo:6.0.0"
    );
    let target = common::kubectl_json(kubeconfig, &["get", "deployment", "podinfo", "-n", NS]);
    assert_eq!(target["spec"]["replicas"], 0);
    for service in ["podinfo", "podinfo-primary", "podinfo-canary"] {
        common::kubectl_ok(kubeconfig, &["get", "service", service, "-n", NS], None);
    }
    let table = get_canaries(kubeconfig);
    let mut lines = table.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAMESPACE",
            "NAME",
            "STATUS",
            "WEIGHT",
            "LASTTRANSITIONTIME"
        ]
    );
    let row: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(row[..4], [NS, "podinfo", "Initialized", "0"], "{table}");

    let patch = r#"{"spec":{"template":{"spec":{"containers":[{"name":"podinfod","image":"ghcr.io/stefanprodan/podinfo:6.0.1"}]}}}}"#;
    common::kubectl_ok(
        kubeconfig,
        &["patch", "deployment", "podinfo", "-n", NS, "-p", patch],
        None,
    );
    wait_phase(kubeconfig, "Succeeded");
    let primary = common::kubectl_json(
        kubeconfig,
        &["get", "deployment", "podinfo-primary", "-n", NS],
    );
    assert_eq!(
        primary["spec"]["template"]["spec"]["containers"][0]["image"],
        "ghcr.io/stefanprodan/podinfo:6.0.1"
    );
    let target = common::kubectl_json(kubeconfig, &["get", "deployment", "podinfo", "-n", NS]);
    assert_eq!(target["spec"]["replicas"], 0);
    let events = common::kubectl_json(kubeconfig, &["get", "events", "-n", NS]);
    let messages: Vec<&str> = events["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["message"].as_str())
        .collect();
    for expected in [
        "Advance podinfo.canary-demo canary iteration 1/1",
        "Copying podinfo.canary-demo template spec to podinfo-primary.canary-demo",
        "Promotion completed! Scaling down podinfo.canary-demo",
    ] {
        assert!(
            messages.contains(&expected),
            "{expected:?} in {messages:#?}"
        );
    }
    assert!(get_canaries(kubeconfig).contains("Succeeded"));
}

/// The Deployment as the fleet holds it, of `image`. Without `spec.replicas`, as Flux
/// documents for Flagger-managed targets: the Kustomization then owns no replica count and
/// its server-side apply leaves Flagger's scale-to-zero alone.
fn fleet_deployment(image: &str) -> String {
    format!(
        "apiVersion: v1
kind: Namespace
metadata:
  name: canary-gitops
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: podinfo
  namespace: canary-gitops
spec:
  selector:
    matchLabels:
      app: podinfo
  template:
    metadata:
      labels:
        app: podinfo
    spec:
      containers:
        - name: podinfod
          image: {image}
          ports:
            - containerPort: 9898
              name: http
"
    )
}

/// The seed's Canary shape (`gatewayapi:v1`) with the test's Prometheus and up's ten-second
/// interval floor.
fn gitops_canary(metrics_server: &str) -> String {
    format!(
        "apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: podinfo
  namespace: canary-gitops
spec:
  provider: gatewayapi:v1
  metricsServer: {metrics_server}
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: podinfo
  service:
    port: 9898
    gatewayRefs:
      - name: public
        namespace: canary-gitops
  analysis:
    interval: 10s
    threshold: 2
    maxWeight: 50
    stepWeight: 10
    metrics:
      - name: request-success-rate
        interval: 30s
        thresholdRange:
          min: 99
"
    )
}

const GITOPS_NS: &str = "canary-gitops";

/// One look at the canary: (phase, canaryWeight, failedChecks, HTTPRoute canary weight).
fn observe(kubeconfig: &std::path::Path) -> (String, i64, i64, i64) {
    let canary = common::kubectl_json(kubeconfig, &["get", "canary", "podinfo", "-n", GITOPS_NS]);
    let route = common::kubectl(
        kubeconfig,
        &["get", "httproute", "podinfo", "-n", GITOPS_NS, "-o", "json"],
        None,
    );
    let route: serde_json::Value = serde_json::from_slice(&route.stdout).unwrap_or_default();
    let status = &canary["status"];
    (
        status["phase"].as_str().unwrap_or_default().to_string(),
        status["canaryWeight"].as_i64().unwrap_or(-1),
        status["failedChecks"].as_i64().unwrap_or(-1),
        route["spec"]["rules"][0]["backendRefs"][1]["weight"]
            .as_i64()
            .unwrap_or(-1),
    )
}

/// Polls the canary until `phase` is reached, returning every distinct observation.
fn observe_until(kubeconfig: &std::path::Path, phase: &str) -> Vec<(String, i64, i64, i64)> {
    let mut seen: Vec<(String, i64, i64, i64)> = Vec::new();
    let reached = wait_for(Duration::from_secs(400), || {
        let now = observe(kubeconfig);
        let done = now.0 == phase;
        if seen.last() != Some(&now) {
            seen.push(now);
        }
        done.then_some(())
    });
    assert!(
        reached.is_some(),
        "the Canary never reached {phase}: {seen:?}"
    );
    seen
}

/// Commits the fleet file, has flux-system reconcile it with its source, and waits until the
/// Kustomization applied the commit and is Ready.
fn commit_and_reconcile(up: &common::Up, content: &str) {
    let commit = common::commit_to_fleet(up.dir.path(), "clusters/prod/canary.yaml", content);
    let output = Command::new(env!("CARGO_BIN_EXE_ferroflux"))
        .args([
            "reconcile",
            "ks",
            "flux-system",
            "--with-source",
            "--kubeconfig",
        ])
        .arg(&up.kubeconfig)
        .output()
        .expect("ferroflux runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    kustomization_applied(&up.kubeconfig, &commit);
}

/// Waits until flux-system applied `commit` and is Ready=True.
fn kustomization_applied(kubeconfig: &std::path::Path, commit: &str) {
    let wanted = format!("main@sha1:{commit}");
    let mut last = serde_json::Value::Null;
    let done = wait_for(Duration::from_secs(120), || {
        last = common::kubectl_json(
            kubeconfig,
            &["get", "kustomization", "flux-system", "-n", "flux-system"],
        );
        let ready = common::ready_condition(&last).0 == "True";
        (ready && last["status"]["lastAppliedRevision"] == wanted.as_str()).then_some(())
    });
    assert!(
        done.is_some(),
        "flux-system did not apply {wanted}: {last:#}"
    );
}

fn target_replicas(kubeconfig: &std::path::Path) -> serde_json::Value {
    common::kubectl_json(
        kubeconfig,
        &["get", "deployment", "podinfo", "-n", GITOPS_NS],
    )["spec"]["replicas"]
        .clone()
}

fn primary_image(kubeconfig: &std::path::Path) -> serde_json::Value {
    common::kubectl_json(
        kubeconfig,
        &["get", "deployment", "podinfo-primary", "-n", GITOPS_NS],
    )["spec"]["template"]["spec"]["containers"][0]["image"]
        .clone()
}

/// The acceptance of issue 20 on `up`: a Deployment applied by the fleet's Kustomization,
/// a `gatewayapi:v1` Canary judged by Debian's Prometheus; a new image committed to Git
/// progresses 10..50 in the HTTPRoute and is promoted, a next one with errors is rolled back
/// after `threshold` failed checks, and the Kustomization never re-scales the target.
#[test]
fn a_commit_progresses_through_the_canary_and_errors_roll_the_next_back() {
    let app = match ferroflux_testpeers::MetricsApp::start(GITOPS_NS, "podinfo") {
        Ok(app) => app,
        Err(err) => panic!("metrics app: {err}"),
    };
    let prometheus = match ferroflux_testpeers::Prometheus::start(app.address()) {
        Ok(prometheus) => prometheus,
        Err(err) if err.is_skip() => return ferroflux_testpeers::skip(err),
        Err(err) => panic!("prometheus: {err}"),
    };
    let Some(up) = common::start_up() else {
        return;
    };
    let kubeconfig = &up.kubeconfig;
    commit_and_reconcile(&up, &fleet_deployment("ghcr.io/stefanprodan/podinfo:6.0.0"));
    common::kubectl_ok(
        kubeconfig,
        &["apply", "-f", "-"],
        Some(gitops_canary(&prometheus.url()).as_bytes()),
    );
    observe_until(kubeconfig, "Initialized");
    assert_eq!(target_replicas(kubeconfig), 0);
    let has_samples = wait_for(Duration::from_secs(60), || {
        prometheus.has_samples().then_some(())
    });
    assert!(has_samples.is_some(), "prometheus never scraped the app");

    // A new tag in Git: the Kustomization applies it, the canary walks 10..50 and promotes.
    commit_and_reconcile(&up, &fleet_deployment("ghcr.io/stefanprodan/podinfo:6.0.1"));
    let seen = observe_until(kubeconfig, "Succeeded");
    let mut weights: Vec<i64> = seen
        .iter()
        .filter(|o| o.0 == "Progressing" && o.1 > 0)
        .map(|o| o.1)
        .collect();
    weights.dedup();
    assert_eq!(weights, [10, 20, 30, 40, 50], "{seen:?}");
    let mut route: Vec<i64> = seen.iter().map(|o| o.3).filter(|w| *w > 0).collect();
    route.dedup();
    assert_eq!(
        route,
        [10, 20, 30, 40, 50],
        "the HTTPRoute weights: {seen:?}"
    );
    assert_eq!(
        primary_image(kubeconfig),
        "ghcr.io/stefanprodan/podinfo:6.0.1"
    );
    assert_eq!(target_replicas(kubeconfig), 0);

    // The Kustomization reconciles again (same commit, forced): it does not fight Flagger.
    let output = Command::new(env!("CARGO_BIN_EXE_ferroflux"))
        .args(["reconcile", "ks", "flux-system", "--kubeconfig"])
        .arg(kubeconfig)
        .output()
        .expect("ferroflux runs");
    assert!(output.status.success());
    let ks = common::kubectl_json(
        kubeconfig,
        &["get", "kustomization", "flux-system", "-n", "flux-system"],
    );
    assert_eq!(common::ready_condition(&ks).0, "True", "{ks:#}");
    assert_eq!(target_replicas(kubeconfig), 0);

    // Errors above 1 %: the next tag is rolled back after threshold (2) failed checks.
    app.set_errors(50);
    commit_and_reconcile(&up, &fleet_deployment("ghcr.io/stefanprodan/podinfo:6.0.2"));
    let seen = observe_until(kubeconfig, "Failed");
    assert!(seen.iter().any(|o| o.2 == 2), "failedChecks 2: {seen:?}");
    let last = seen.last().cloned().unwrap_or_default();
    assert_eq!((last.1, last.3), (0, 0), "{seen:?}");
    assert_eq!(
        primary_image(kubeconfig),
        "ghcr.io/stefanprodan/podinfo:6.0.1"
    );
    assert_eq!(target_replicas(kubeconfig), 0);
    let ks = common::kubectl_json(
        kubeconfig,
        &["get", "kustomization", "flux-system", "-n", "flux-system"],
    );
    assert_eq!(common::ready_condition(&ks).0, "True", "{ks:#}");
}

/// The fleet's image automation of podinfo in `registry`: a semver ImagePolicy and an
/// ImageUpdateAutomation that commits the newest tag to the fleet's `main`.
fn image_automation(registry: &str) -> String {
    format!(
        "apiVersion: image.toolkit.fluxcd.io/v1beta2
kind: ImageRepository
metadata:
  name: podinfo
  namespace: flux-system
spec:
  image: {registry}/podinfo
  interval: 10s
  insecure: true
---
apiVersion: image.toolkit.fluxcd.io/v1beta2
kind: ImagePolicy
metadata:
  name: podinfo
  namespace: flux-system
spec:
  imageRepositoryRef:
    name: podinfo
  policy:
    semver:
      range: '>=6.0.0'
---
apiVersion: image.toolkit.fluxcd.io/v1beta1
kind: ImageUpdateAutomation
metadata:
  name: podinfo
  namespace: flux-system
spec:
  interval: 10s
  sourceRef:
    kind: GitRepository
    name: flux-system
  git:
    checkout:
      ref:
        branch: main
    commit:
      author:
        name: fluxcdbot
        email: fluxcdbot@example.com
    push:
      branch: main
  update:
    path: ./clusters/prod
    strategy: Setters
"
    )
}

/// Pushes a tiny artifact as `<registry>/podinfo:<tag>`: the ImageRepository only lists tags.
fn push_tag(registry: &str, tag: &str) {
    let content = common::dir_with(&[("podinfo.yaml", "kind: ConfigMap\n")]);
    let output = Command::new(env!("CARGO_BIN_EXE_ferroflux"))
        .args(["push", "artifact"])
        .arg(format!("oci://{registry}/podinfo:{tag}"))
        .arg(format!("--path={}", content.path().display()))
        .args([
            "--source=https://git.example/podinfo",
            "--revision=main@sha1:0123",
            "--insecure-registry",
        ])
        .output()
        .expect("ferroflux runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The chain without a human: a new tag in the registry -> the ImagePolicy -> the automation's
/// commit to Git -> the Kustomization applies it -> the Canary progresses and promotes it.
#[test]
fn a_new_tag_reaches_the_primary_through_image_automation_git_and_the_canary() {
    let app = match ferroflux_testpeers::MetricsApp::start(GITOPS_NS, "podinfo") {
        Ok(app) => app,
        Err(err) => panic!("metrics app: {err}"),
    };
    let prometheus = match ferroflux_testpeers::Prometheus::start(app.address()) {
        Ok(prometheus) => prometheus,
        Err(err) if err.is_skip() => return ferroflux_testpeers::skip(err),
        Err(err) => panic!("prometheus: {err}"),
    };
    let Some(up) = common::start_up() else {
        return;
    };
    let kubeconfig = &up.kubeconfig;
    let ports: serde_json::Value = serde_json::from_slice(
        &std::fs::read(up.dir.path().join("data/ports.json")).expect("ports.json"),
    )
    .expect("ports.json is JSON");
    let registry = format!("127.0.0.1:{}", ports["registry"].as_u64().expect("port"));
    push_tag(&registry, "6.0.0");
    let first = format!("{registry}/podinfo:6.0.0");
    let with_setter = fleet_deployment(&first).replace(
        &format!("image: {first}"),
        &format!("image: {first} # {{\"$imagepolicy\": \"flux-system:podinfo\"}}"),
    );
    common::commit_to_fleet(
        up.dir.path(),
        "clusters/prod/images.yaml",
        &image_automation(&registry),
    );
    commit_and_reconcile(&up, &with_setter);
    common::kubectl_ok(
        kubeconfig,
        &["apply", "-f", "-"],
        Some(gitops_canary(&prometheus.url()).as_bytes()),
    );
    observe_until(kubeconfig, "Initialized");
    assert_eq!(primary_image(kubeconfig), first.as_str());

    // From here on no one reconciles or commits: only the controllers of `up` act.
    push_tag(&registry, "6.0.1");
    let seen = observe_until(kubeconfig, "Succeeded");
    let mut weights: Vec<i64> = seen
        .iter()
        .filter(|o| o.0 == "Progressing" && o.1 > 0)
        .map(|o| o.1)
        .collect();
    weights.dedup();
    assert_eq!(weights, [10, 20, 30, 40, 50], "{seen:?}");
    let newest = format!("{registry}/podinfo:6.0.1");
    assert_eq!(primary_image(kubeconfig), newest.as_str());
    assert_eq!(target_replicas(kubeconfig), 0);
    let bare = up.dir.path().join("data/git/fleet-infra.git");
    let author = common::git(&bare, &["log", "-1", "--format=%an", "main"]);
    assert_eq!(author.trim(), "fluxcdbot");
    let deployed = common::git(&bare, &["show", "main:clusters/prod/canary.yaml"]);
    assert!(deployed.contains(&newest), "{deployed}");
}
