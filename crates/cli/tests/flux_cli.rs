//! The real `flux` CLI (built by `scripts/peers.sh build flux`) against `ferroflux up`: once the
//! example fleet is Ready, `flux get`, `flux reconcile --with-source`, `flux events`, `flux tree`
//! and `flux suspend/resume` work, and where ferroflux has the same command both print the same.
//! The test prints `N identical, N different` with the diff of each difference.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;

/// A running `ferroflux up` with the bundled fleet, and the flux binary to point at it.
struct Up {
    _up: common::Killed,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    flux: PathBuf,
}

impl Up {
    /// `flux ARGS --kubeconfig K`; flux prints its progress and errors on stderr.
    fn flux(&self, args: &[&str]) -> Output {
        Command::new(&self.flux)
            .args(args)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["--timeout", "2m"])
            // The API server is on loopback: a proxy of the machine must not see the requests.
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env_remove("HTTPS_PROXY")
            .env_remove("https_proxy")
            .env_remove("HTTP_PROXY")
            .env_remove("http_proxy")
            .stdin(Stdio::null())
            .output()
            .expect("flux runs")
    }

    /// `ferroflux ARGS --kubeconfig K`.
    fn ferroflux(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_ferroflux"))
            .args(args)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .stdin(Stdio::null())
            .output()
            .expect("ferroflux runs")
    }

    /// An object as JSON, read with kubectl.
    fn object(&self, resource: &str, name: &str, namespace: &str) -> Value {
        let output = common::kubectl(
            &self.kubeconfig,
            &["get", resource, name, "-n", namespace, "-o", "json"],
            None,
        );
        assert!(
            output.status.success(),
            "kubectl get {resource} {name}: {}",
            text(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("kubectl prints JSON")
    }

    /// Commits `file` with `content` to the fleet repository's `main`; returns the new commit.
    fn commit_to_fleet(&self, file: &str, content: &str) -> String {
        common::commit_to_fleet(self.dir.path(), file, content)
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Starts `ferroflux up` with the bundled fleet and waits until every Kustomization is Ready;
/// None when git or kubectl is missing (a skip, a failure under `CI=true`).
fn start_up(flux: PathBuf) -> Option<Up> {
    if !common::require("git", &["--version"]) || !common::require_kubectl() {
        return None;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("data");
    let log = std::fs::File::create(dir.path().join("up.log")).expect("log file");
    let up = common::Killed(
        Command::new(env!("CARGO_BIN_EXE_ferroflux"))
            .args(["up", "--receiver-listen=127.0.0.1:0", "--data-dir"])
            .arg(&data_dir)
            .args(["--listen", &format!("127.0.0.1:{}", common::free_port())])
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("ferroflux up starts"),
    );
    let up = Up {
        _up: up,
        kubeconfig: data_dir.join("apiserver/kubeconfig"),
        dir,
        flux,
    };
    let started = Instant::now();
    let mut last = String::new();
    while started.elapsed() < Duration::from_secs(180) {
        std::thread::sleep(Duration::from_millis(500));
        if !up.kubeconfig.is_file() {
            continue;
        }
        let output = up.ferroflux(&["get", "kustomizations", "-A"]);
        last = text(&output.stdout);
        let rows: Vec<&str> = last.lines().skip(1).collect();
        if rows.len() == 4
            && rows
                .iter()
                .all(|r| r.split('\t').nth(4).map(str::trim) == Some("True"))
        {
            return Some(up);
        }
    }
    let log = std::fs::read_to_string(up.dir.path().join("up.log")).unwrap_or_default();
    panic!("the fleet did not become Ready within 180s:\n{last}\n{log}");
}

/// Everything a command shows: exit status, standard output and standard error.
fn shown(output: &Output) -> String {
    format!(
        "exit {}\n{}{}",
        output.status.code().unwrap_or(-1),
        text(&output.stdout),
        text(&output.stderr)
    )
}

/// Waits until the fleet's Kustomizations applied `commit` and every Kustomization is Ready at
/// its generation, so that flux and ferroflux read settled statuses.
fn settle(up: &Up, commit: &str) {
    let wanted = format!("main@sha1:{commit}");
    let started = Instant::now();
    loop {
        let applied = ["flux-system", "tenants"].iter().all(|name| {
            let ks = up.object("kustomizations", name, "flux-system");
            ks["status"]["lastAppliedRevision"] == wanted.as_str()
        });
        let list = up.ferroflux(&["get", "kustomizations", "-A"]);
        let all_ready = text(&list.stdout)
            .lines()
            .skip(1)
            .all(|r| r.split('\t').nth(4).map(str::trim) == Some("True"));
        if applied && all_ready {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the fleet did not apply {wanted}:\n{}",
            text(&list.stdout)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Outputs compared between flux and ferroflux.
#[derive(Default)]
struct Comparisons {
    identical: Vec<String>,
    different: Vec<(String, String)>,
}

impl Comparisons {
    fn compare(&mut self, command: &str, flux: &str, ours: &str) {
        if flux == ours {
            self.identical.push(command.to_string());
            return;
        }
        let mut diff = String::new();
        let (flux_lines, our_lines): (Vec<&str>, Vec<&str>) =
            (flux.lines().collect(), ours.lines().collect());
        for index in 0..flux_lines.len().max(our_lines.len()) {
            let (f, o) = (flux_lines.get(index), our_lines.get(index));
            if f != o {
                diff.push_str(&format!(
                    "-flux:      {}\n+ferroflux: {}\n",
                    f.unwrap_or(&"<none>"),
                    o.unwrap_or(&"<none>")
                ));
            }
        }
        self.different.push((command.to_string(), diff));
    }

    /// Runs `args` with flux, ferroflux, then flux again, and compares all they show once the
    /// two flux runs agree (a controller may change a status between two runs).
    fn compare_commands(&mut self, up: &Up, when: &str, args: &[&str]) {
        for _ in 0..10 {
            let before = shown(&up.flux(args));
            let ours = shown(&up.ferroflux(args));
            if before == shown(&up.flux(args)) {
                self.compare(&format!("{}{when}", args.join(" ")), &before, &ours);
                return;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        panic!("flux {args:?} kept changing its output");
    }

    fn report(&self) -> String {
        let mut out = format!(
            "{} identical, {} different\n",
            self.identical.len(),
            self.different.len()
        );
        for command in &self.identical {
            out.push_str(&format!("  identical: {command}\n"));
        }
        for (command, diff) in &self.different {
            out.push_str(&format!("  different: {command}\n{diff}"));
        }
        out
    }
}

/// A full commit hash (40 hex digits) and its 8-digit prefix replaced by `<rev>`: the two
/// reconciliations compared apply different commits.
fn without_commit(text: &str, commits: &[&str]) -> String {
    commits.iter().fold(text.to_string(), |text, commit| {
        text.replace(commit, "<rev>").replace(&commit[..8], "<rev>")
    })
}

/// What the controllers show for `name`'s inventory, as `flux tree` would print it: one
/// `Kind/namespace/name` line per entry, nested Kustomizations expanded.
fn tree_lines(up: &Up, namespace: &str, name: &str, depth: usize, out: &mut Vec<String>) {
    let ks = up.object("kustomizations", name, namespace);
    let entries = ks["status"]["inventory"]["entries"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for entry in entries {
        let id = entry["id"].as_str().unwrap_or_default();
        // An inventory id is namespace_name_group_kind.
        let parts: Vec<&str> = id.splitn(4, '_').collect();
        let [ns, child, group, kind] = parts[..] else {
            panic!("inventory id {id:?} is not namespace_name_group_kind");
        };
        if group == "kustomize.toolkit.fluxcd.io"
            && kind == "Kustomization"
            && ns == namespace
            && child == name
        {
            continue;
        }
        let shown = if ns.is_empty() {
            format!("{kind}/{child}")
        } else {
            format!("{kind}/{ns}/{child}")
        };
        out.push(format!("{depth}:{shown}"));
        if group == "kustomize.toolkit.fluxcd.io" && kind == "Kustomization" {
            tree_lines(up, ns, child, depth + 1, out);
        }
    }
}

/// The `depth:Kind/namespace/name` lines of `flux tree` output (depth from the indentation).
fn parse_tree(output: &str) -> Vec<String> {
    output
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let start = line
                .char_indices()
                .find(|(_, c)| !matches!(c, ' ' | '│' | '├' | '└' | '─'))
                .map_or(line.len(), |(i, _)| i);
            // Every level indents by four columns, the top level included.
            let depth = (line[..start].chars().count() / 4).saturating_sub(1);
            format!("{depth}:{}", &line[start..])
        })
        .collect()
}

const GETS: [&[&str]; 2] = [
    &["get", "sources", "git", "-A"],
    &["get", "kustomizations", "-A"],
];

fn probe(step: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: flux-cli-probe\n  namespace: flux-system\ndata:\n  step: {step}\n"
    )
}

/// `flux get` and `ferroflux get`: same columns, same rows, byte for byte; the same error
/// for a namespace without objects.
fn compare_gets(up: &Up, comparisons: &mut Comparisons) {
    for args in GETS.into_iter().chain([
        &["get", "sources", "git"][..],
        &["get", "kustomizations"],
        &["get", "kustomizations", "-n", "team-a"],
        &["get", "kustomizations", "-n", "nowhere"],
    ]) {
        comparisons.compare_commands(up, "", args);
    }
}

/// Image, Helm and notification objects beside the fleet, so that every kind of `get` has rows
/// (the image objects point at a registry that is not there: they show their failure).
const MORE_KINDS: &str = r#"apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata:
  name: podinfo
  namespace: flux-system
spec:
  image: 127.0.0.1:1/stefanprodan/podinfo
  interval: 1h
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata:
  name: podinfo
  namespace: flux-system
spec:
  imageRepositoryRef:
    name: podinfo
  policy:
    semver:
      range: ">=1.0.0"
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageUpdateAutomation
metadata:
  name: fleet
  namespace: flux-system
  labels:
    team: images
spec:
  interval: 1h
  suspend: true
  sourceRef:
    kind: GitRepository
    name: flux-system
  git:
    commit:
      author:
        name: fluxcdbot
        email: fluxcdbot@localhost
    push:
      branch: flux-image-updates
  update:
    path: ./clusters
    strategy: Setters
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata:
  name: podinfo
  namespace: flux-system
spec:
  url: http://127.0.0.1:1/charts
  interval: 1h
  suspend: true
---
apiVersion: notification.toolkit.fluxcd.io/v1beta3
kind: Provider
metadata:
  name: slack
  namespace: flux-system
spec:
  type: generic
  address: http://127.0.0.1:1/hook
---
apiVersion: notification.toolkit.fluxcd.io/v1beta3
kind: Alert
metadata:
  name: all
  namespace: flux-system
spec:
  providerRef:
    name: slack
  eventSources:
    - kind: Kustomization
      name: "*"
"#;

/// `get images ...`, `get sources all`, `get all`, the NAME argument, `--status-selector`,
/// `-l` and `--no-header` with flux and ferroflux, byte for byte.
fn compare_all_kinds(up: &Up, comparisons: &mut Comparisons) {
    common::kubectl_ok(
        &up.kubeconfig,
        &["apply", "-f", "-"],
        Some(MORE_KINDS.as_bytes()),
    );
    let invocations: &[&[&str]] = &[
        &["get", "images", "repository"],
        &["get", "images", "policy"],
        &["get", "image", "update", "-A"],
        &["get", "images", "all"],
        &["get", "images", "all", "-A"],
        &["get", "sources", "all"],
        &["get", "sources", "all", "-A"],
        &["get", "sources", "helm"],
        &["get", "all"],
        &["get", "all", "-A"],
        &["get", "all", "-n", "team-a"],
        &["get", "alert-providers"],
        &["get", "alerts", "-A"],
        &["get", "receivers"],
        &["get", "kustomizations", "flux-system"],
        &["get", "kustomizations", "nothing-here"],
        &["get", "all", "podinfo"],
        &[
            "get",
            "kustomizations",
            "-A",
            "--status-selector",
            "ready=true",
        ],
        &[
            "get",
            "kustomizations",
            "-A",
            "--status-selector",
            "ready!=true",
        ],
        &["get", "images", "all", "--status-selector", "ready=false"],
        &["get", "kustomizations", "-A", "--no-header"],
        &["get", "images", "update", "-l", "team=images"],
        &["get", "images", "update", "-l", "team=none"],
        &["stats"],
        &["stats", "-A"],
    ];
    for args in invocations {
        comparisons.compare_commands(up, "", args);
    }
    // The Flux 2.9 columns the seed reads: IMAGE and TAG, LAST RUN.
    let policies = text(&up.ferroflux(&["get", "images", "policy"]).stdout);
    let header: Vec<&str> = policies
        .lines()
        .next()
        .unwrap_or_default()
        .split('\t')
        .map(str::trim)
        .collect();
    assert_eq!(
        header,
        ["NAME", "IMAGE", "TAG", "READY", "MESSAGE"],
        "{policies}"
    );
    let updates = text(&up.ferroflux(&["get", "images", "update"]).stdout);
    assert!(updates.starts_with("NAME \tLAST RUN"), "{updates}");
    compare_export_and_delete(up, comparisons);
}

/// `flux export` of every kind present and `flux delete` (with and without `--silent`).
fn compare_export_and_delete(up: &Up, comparisons: &mut Comparisons) {
    let exports: &[&[&str]] = &[
        &["export", "kustomization", "flux-system"],
        &["export", "kustomization", "--all", "-n", "team-a"],
        &["export", "source", "git", "--all"],
        &["export", "source", "helm", "podinfo"],
        &["export", "image", "repository", "podinfo"],
        &["export", "image", "policy", "--all"],
        &["export", "image", "update", "fleet"],
        &["export", "alert", "all"],
        &["export", "alert-provider", "slack"],
        &["export", "helmrelease", "nothing-here"],
        &["export", "receiver", "--all"],
        &["export", "kustomization"],
    ];
    for args in exports {
        comparisons.compare_commands(up, "", args);
    }
    for args in [
        &["delete", "kustomization", "nothing-here", "--silent"][..],
        &["delete", "alert"],
    ] {
        comparisons.compare(
            &args.join(" "),
            &shown(&up.flux(args)),
            &shown(&up.ferroflux(args)),
        );
    }
    // Without `--silent` both ask (flux draws promptui's terminal codes around the question) and,
    // without an answer, abort.
    let unanswered = ["delete", "alert", "all"];
    for output in [up.flux(&unanswered), up.ferroflux(&unanswered)] {
        let all = shown(&output);
        assert!(all.starts_with("exit 1\n"), "{all}");
        assert!(
            all.contains("Are you sure you want to delete this alert"),
            "{all}"
        );
        assert!(all.trim_end().ends_with("✗ aborting"), "{all}");
    }
    // A real deletion by each, of the same object (applied again in between).
    let delete = ["delete", "alert", "all", "--silent"];
    let flux = shown(&up.flux(&delete));
    common::kubectl_ok(
        &up.kubeconfig,
        &["apply", "-f", "-"],
        Some(MORE_KINDS.as_bytes()),
    );
    let ours = shown(&up.ferroflux(&delete));
    comparisons.compare(&delete.join(" "), &flux, &ours);
    let gone = common::kubectl(
        &up.kubeconfig,
        &[
            "get",
            "alerts.notification.toolkit.fluxcd.io",
            "all",
            "-n",
            "flux-system",
        ],
        None,
    );
    assert!(!gone.status.success(), "the alert is still there");
}

/// `flux version -o json` and ours: flux's keys, the same controllers and distribution (the
/// `flux` key is each client's own version); `--client` has only `flux`.
fn compare_version(up: &Up, comparisons: &mut Comparisons) {
    let args = ["version", "-o", "json"];
    let without_client = |o: Output| -> String {
        let mut map: serde_json::Map<String, Value> =
            serde_json::from_slice(&o.stdout).unwrap_or_default();
        let client = map.remove("flux");
        format!(
            "exit {} client {}\n{}{}",
            o.status.code().unwrap_or(-1),
            client.is_some(),
            Value::Object(map),
            text(&o.stderr)
        )
    };
    comparisons.compare(
        &args.join(" "),
        &without_client(up.flux(&args)),
        &without_client(up.ferroflux(&args)),
    );
    let client = up.ferroflux(&["version", "--client", "-o", "json"]);
    let client: serde_json::Map<String, Value> =
        serde_json::from_slice(&client.stdout).expect("version -o json prints JSON");
    assert_eq!(client.keys().collect::<Vec<_>>(), ["flux"]);
}

/// `flux build kustomization` and ours, on the fleet's own directories (the Kustomizations read
/// from the cluster), on a local Kustomization file with `--dry-run` and postBuild variables,
/// and their errors.
fn compare_build(up: &Up, comparisons: &mut Comparisons) {
    let work = up.dir.path().join("fleet-work");
    let path_of = |name: &str| {
        let ks = up.object("kustomizations", name, "flux-system");
        let path = ks["spec"]["path"].as_str().unwrap_or_default().to_string();
        work.join(path.trim_start_matches("./"))
            .to_string_lossy()
            .into_owned()
    };
    let (fleet, tenants) = (path_of("flux-system"), path_of("tenants"));
    let local = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(local.path().join("app")).expect("app dir");
    for (file, content) in [
        (
            "ks.yaml",
            "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  \
             name: local\n  namespace: apps\nspec:\n  interval: 5m\n  path: ./\n  prune: true\n  \
             sourceRef:\n    kind: GitRepository\n    name: none\n  targetNamespace: apps\n  \
             commonMetadata:\n    labels:\n      team: a\n  postBuild:\n    substitute:\n      \
             greeting: hello\n",
        ),
        (
            "app/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: greeting\ndata:\n  \
             greeting: ${greeting}\n  other: ${missing:=default}\n",
        ),
    ] {
        std::fs::write(local.path().join(file), content).expect("write a local file");
    }
    let file = local.path().join("ks.yaml").to_string_lossy().into_owned();
    let app = local.path().join("app").to_string_lossy().into_owned();
    let invocations: Vec<Vec<&str>> = vec![
        vec!["build", "kustomization", "flux-system", "--path", &fleet],
        vec!["build", "kustomization", "tenants", "--path", &tenants],
        vec![
            "build",
            "ks",
            "local",
            "--path",
            &app,
            "--kustomization-file",
            &file,
            "--dry-run",
        ],
        vec![
            "build",
            "ks",
            "local",
            "--path",
            &app,
            "--kustomization-file",
            &file,
            "--dry-run",
            "-n",
            "apps",
        ],
        vec![
            "build",
            "kustomization",
            "flux-system",
            "--path",
            "/nonexistent",
        ],
        vec![
            "build",
            "kustomization",
            "local",
            "--path",
            &app,
            "--dry-run",
        ],
        vec!["build", "kustomization", "nothing-here", "--path", &fleet],
        vec!["build", "kustomization"],
    ];
    for args in &invocations {
        comparisons.compare_commands(up, "", args);
    }
}

/// `flux check --pre` and `flux check` against `up`, and ferroflux's: both pass (up labels its
/// Deployments and CRDs as Flux's install does) and print the same.
fn compare_check(up: &Up, comparisons: &mut Comparisons) {
    for args in [&["check", "--pre"][..], &["check"]] {
        let flux = up.flux(args);
        eprintln!("flux {}:\n{}", args.join(" "), shown(&flux));
        let ours = up.ferroflux(args);
        eprintln!("ferroflux {}:\n{}", args.join(" "), shown(&ours));
        assert!(
            ours.status.success(),
            "ferroflux {args:?}: {}",
            shown(&ours)
        );
        assert!(flux.status.success(), "flux {args:?}: {}", shown(&flux));
        comparisons.compare(&args.join(" "), &shown(&flux), &shown(&ours));
    }
}

/// A new commit, reconciled by flux with its source: the new revision is applied. Then the
/// same with ferroflux for a second commit, which is returned (the fleet ends on it).
fn reconcile_with_source(up: &Up, comparisons: &mut Comparisons) -> String {
    let first = up.commit_to_fleet("clusters/prod/flux-cli-probe.yaml", &probe("one"));
    let reconcile = ["reconcile", "kustomization", "flux-system", "--with-source"];
    let flux = up.flux(&reconcile);
    assert!(flux.status.success(), "flux reconcile: {}", shown(&flux));
    let applied = format!("✔ applied revision main@sha1:{first}");
    assert!(text(&flux.stderr).contains(&applied), "{}", shown(&flux));
    assert_eq!(
        up.object("configmap", "flux-cli-probe", "flux-system")["data"]["step"],
        "one"
    );
    let ks = up.object("kustomizations", "flux-system", "flux-system");
    assert_eq!(
        ks["status"]["lastAppliedRevision"],
        format!("main@sha1:{first}")
    );

    // ferroflux's reconcile of the next commit shows what flux showed for the first.
    let second = up.commit_to_fleet("clusters/prod/flux-cli-probe.yaml", &probe("two"));
    let ours = up.ferroflux(&reconcile);
    assert!(
        ours.status.success(),
        "ferroflux reconcile: {}",
        shown(&ours)
    );
    assert_eq!(
        up.object("configmap", "flux-cli-probe", "flux-system")["data"]["step"],
        "two"
    );
    comparisons.compare(
        &reconcile.join(" "),
        &without_commit(&shown(&flux), &[&first]),
        &without_commit(&shown(&ours), &[&second]),
    );
    settle(up, &second);
    for args in GETS {
        comparisons.compare_commands(up, " (after reconcile)", args);
    }
    let listed = text(&up.flux(GETS[1]).stdout);
    assert!(
        listed.contains(&format!("main@sha1:{}", &second[..8])),
        "{listed}"
    );
    second
}

/// `flux events`: the controllers' events about the Flux objects (ferroflux has no events
/// command).
fn check_events(up: &Up, second: &str) {
    let events = up.flux(&["events"]);
    let events_text = text(&events.stdout);
    eprintln!("flux events:\n{events_text}");
    assert!(events.status.success(), "flux events: {}", shown(&events));
    let header: Vec<&str> = events_text
        .lines()
        .next()
        .unwrap_or_default()
        .trim_end()
        .split('\t')
        .map(str::trim)
        .collect();
    assert_eq!(
        header,
        ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
        "{events_text}"
    );
    for wanted in ["Kustomization/flux-system", "GitRepository/flux-system"] {
        assert!(
            events_text
                .lines()
                .any(|l| l.split('\t').nth(3).map(str::trim) == Some(wanted)),
            "no event about {wanted}:\n{events_text}"
        );
    }
    // As Flux's controller does, the change set is reported under the Ready reason held while
    // applying.
    let cells =
        |line: &str| -> Vec<String> { line.split('\t').map(|c| c.trim().to_string()).collect() };
    assert!(
        events_text.lines().map(cells).any(|c| c.len() > 4
            && c[1] == "Normal"
            && c[2] == "Progressing"
            && c[3] == "Kustomization/flux-system"
            && c[4] == "ConfigMap/flux-system/flux-cli-probe created"),
        "no change set event:\n{events_text}"
    );
    // A new message is a new event, not one more repeat of the previous one.
    assert!(
        events_text.lines().map(cells).any(|c| c.len() > 4
            && c[2] == "NewArtifact"
            && c[3] == "GitRepository/flux-system"
            && c[4].contains(second)),
        "no event about the artifact of {second}:\n{events_text}"
    );
    let all_events = up.flux(&["events", "-A"]);
    assert!(all_events.status.success(), "{}", shown(&all_events));
    let all_text = text(&all_events.stdout);
    assert!(
        all_text.lines().any(|l| l.starts_with("team-a")),
        "{all_text}"
    );
}

/// `flux events` output without its LAST SEEN column (ages tick between two runs), without the
/// padding that column's width decides, and with its events (a row and the continuation lines of
/// a multi-line message) sorted: flux sorts by time with Go's unstable sort, so events of the same
/// second come in no defined order.
fn events_without_age(output: &str) -> String {
    let mut lines = output.lines();
    let header = lines.next().unwrap_or_default();
    let age = usize::from(header.starts_with("NAMESPACE"));
    let cells = |line: &str| -> Vec<String> {
        line.split('\t')
            .map(str::trim)
            .enumerate()
            .filter(|(i, _)| *i != age)
            .map(|(_, c)| c.to_string())
            .collect()
    };
    let mut events: Vec<String> = Vec::new();
    for line in lines {
        let row = cells(line);
        // A continuation line has no TYPE.
        let continues = row.get(age).is_some_and(String::is_empty) && !events.is_empty();
        let text = row.join(" | ");
        match events.last_mut() {
            Some(event) if continues => event.push_str(&format!("\n{text}")),
            _ => events.push(text),
        }
    }
    events.sort();
    std::iter::once(cells(header).join(" | "))
        .chain(events)
        .collect::<Vec<_>>()
        .join("\n")
}

/// `ferroflux events` against `flux events`: same rows, same order, ages aside.
fn compare_events(up: &Up, comparisons: &mut Comparisons) {
    let invocations: &[&[&str]] = &[
        &["events"],
        &["events", "-A"],
        &["events", "--for", "Kustomization/flux-system"],
        &[
            "events",
            "--for",
            "kustomization/tenants",
            "--types",
            "Normal",
        ],
        &["events", "--for", "GitRepository"],
        &["events", "-n", "nowhere"],
        &["events", "--for", "Deployment/x"],
        &["events", "--types", "Other"],
    ];
    for args in invocations {
        let normal = |o: &Output| {
            format!(
                "exit {}\n{}\n{}",
                o.status.code().unwrap_or(-1),
                events_without_age(&text(&o.stdout)),
                text(&o.stderr)
            )
        };
        let mut compared = false;
        for _ in 0..10 {
            let before = normal(&up.flux(args));
            let ours = normal(&up.ferroflux(args));
            if before == normal(&up.flux(args)) {
                comparisons.compare(&args.join(" "), &before, &ours);
                compared = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        assert!(compared, "flux {args:?} kept changing its output");
    }
}

/// `flux tree`: every inventory entry, nested Kustomizations expanded (ferroflux has no
/// tree command; the expected tree is read from the Kustomizations' status).
fn check_tree(up: &Up, comparisons: &mut Comparisons) {
    let tree = up.flux(&["tree", "kustomization", "flux-system"]);
    let tree_text = text(&tree.stdout);
    eprintln!("flux tree kustomization flux-system:\n{tree_text}");
    assert!(tree.status.success(), "flux tree: {}", shown(&tree));
    assert_eq!(
        tree_text.lines().next(),
        Some("Kustomization/flux-system/flux-system"),
        "{tree_text}"
    );
    let mut expected = Vec::new();
    tree_lines(up, "flux-system", "flux-system", 0, &mut expected);
    assert_eq!(parse_tree(&tree_text), expected, "{tree_text}");
    for args in [
        &["tree", "kustomization", "flux-system"][..],
        &["tree", "kustomization", "tenants", "--compact"],
        &["tree", "kustomization", "nothing-here"],
        &["tree", "kustomization"],
    ] {
        comparisons.compare_commands(up, "", args);
    }
    for wanted in [
        "0:ConfigMap/flux-system/flux-cli-probe",
        "1:Kustomization/team-a/team-a",
        "2:Deployment/team-a/podinfo",
    ] {
        assert!(
            expected.iter().any(|l| l == wanted),
            "{wanted} missing from the tree:\n{tree_text}"
        );
    }
}

/// `flux suspend`: the suspension shows in both `get`s and both refuse to reconcile
/// (ferroflux has no suspend command).
fn suspend_and_resume(up: &Up, comparisons: &mut Comparisons, second: &str) {
    let suspend = up.flux(&["suspend", "kustomization", "tenants"]);
    assert_eq!(
        shown(&suspend),
        "exit 0\n► suspending kustomization tenants in flux-system namespace\n\
         ✔ kustomization suspended\n"
    );
    let listed = text(&up.ferroflux(GETS[1]).stdout);
    assert!(
        listed.lines().any(|l| {
            let cells: Vec<&str> = l.split('\t').map(str::trim).collect();
            cells.get(1) == Some(&"tenants") && cells.get(3) == Some(&"True")
        }),
        "{listed}"
    );
    comparisons.compare_commands(up, " (suspended)", GETS[1]);
    comparisons.compare_commands(
        up,
        " (suspended)",
        &["reconcile", "kustomization", "tenants"],
    );

    // `flux resume`: the Kustomization is reconciled again and flux sees it complete (ferroflux
    // has no resume command).
    let resume = up.flux(&["resume", "kustomization", "tenants"]);
    let resume_log = shown(&resume);
    assert!(resume.status.success(), "flux resume: {resume_log}");
    for wanted in [
        "✔ Kustomization tenants reconciliation completed".to_string(),
        format!("✔ applied revision main@sha1:{second}"),
    ] {
        assert!(resume_log.contains(&wanted), "{resume_log}");
    }
    comparisons.compare_commands(up, " (resumed)", GETS[1]);

    // ferroflux's suspend and resume print what flux printed and do the same.
    let ours = up.ferroflux(&["suspend", "kustomization", "tenants"]);
    comparisons.compare(
        "suspend kustomization tenants",
        &shown(&suspend),
        &shown(&ours),
    );
    let ks = up.object("kustomizations", "tenants", "flux-system");
    assert_eq!(ks["spec"]["suspend"], true);
    let ours = up.ferroflux(&["resume", "kustomization", "tenants"]);
    comparisons.compare("resume kustomization tenants", &resume_log, &shown(&ours));
    let ks = up.object("kustomizations", "tenants", "flux-system");
    assert_eq!(ks["spec"]["suspend"], false);
    for args in [
        &["suspend", "kustomization", "nothing-here"][..],
        &["resume", "kustomization", "nothing-here"],
        &["suspend", "kustomization"],
        &["suspend", "image", "update", "--all"],
        &["resume", "source", "helm", "podinfo", "--wait=false"],
        &["suspend", "source", "helm", "podinfo"],
        &["resume", "alert", "all"],
    ] {
        let flux = shown(&up.flux(args));
        let ours = shown(&up.ferroflux(args));
        comparisons.compare(&args.join(" "), &flux, &ours);
    }
}

#[test]
fn the_flux_cli_works_on_up_and_shows_what_ferroflux_shows() {
    let started = Instant::now();
    let flux = ferroflux_testpeers::require!(ferroflux_testpeers::peer_binary("flux"));
    let Some(up) = start_up(flux) else { return };
    let mut comparisons = Comparisons::default();
    compare_gets(&up, &mut comparisons);
    compare_all_kinds(&up, &mut comparisons);
    compare_check(&up, &mut comparisons);
    let second = reconcile_with_source(&up, &mut comparisons);
    check_events(&up, &second);
    compare_build(&up, &mut comparisons);
    check_tree(&up, &mut comparisons);
    compare_events(&up, &mut comparisons);
    compare_version(&up, &mut comparisons);
    suspend_and_resume(&up, &mut comparisons, &second);
    compare_reconcile(&up, &mut comparisons);
    compare_trace(&up, &mut comparisons);
    compare_diff(&up, &mut comparisons);
    compare_watch_logs_uninstall(&up, &mut comparisons);

    eprintln!("{}", comparisons.report());
    eprintln!("flux CLI suite took {:.0?}", started.elapsed());
    assert!(comparisons.different.is_empty(), "{}", comparisons.report());
}

/// A chart committed to the fleet and a HelmRelease of it (its HelmChart built from the
/// fleet's GitRepository), Ready before `reconcile helmrelease` runs.
const DEMO_RELEASE: &str = r#"apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: demo
  namespace: flux-system
spec:
  interval: 1h
  chart:
    spec:
      chart: ./charts/demo
      sourceRef:
        kind: GitRepository
        name: flux-system
"#;

fn add_demo_release(up: &Up) {
    let chart = up.dir.path().join("fleet-work/charts/demo/templates");
    std::fs::create_dir_all(&chart).expect("chart dir");
    up.commit_to_fleet(
        "charts/demo/Chart.yaml",
        "apiVersion: v2\nname: demo\nversion: 1.0.0\n",
    );
    up.commit_to_fleet(
        "charts/demo/templates/configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-greeting\ndata:\n  greeting: hello\n",
    );
    // In the fleet, so that the flux-system Kustomization's tree holds the release.
    up.commit_to_fleet("clusters/prod/demo-release.yaml", DEMO_RELEASE);
    let fetched = up.ferroflux(&["reconcile", "ks", "flux-system", "--with-source"]);
    assert!(fetched.status.success(), "{}", shown(&fetched));
    let started = Instant::now();
    loop {
        let output = common::kubectl(
            &up.kubeconfig,
            &[
                "get",
                "helmreleases.helm.toolkit.fluxcd.io",
                "demo",
                "-n",
                "flux-system",
                "-o",
                "json",
            ],
            None,
        );
        let release: Value = serde_json::from_slice(&output.stdout).unwrap_or_default();
        if ferroflux_ready(&release) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the demo HelmRelease did not become Ready: {release}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn ferroflux_ready(object: &Value) -> bool {
    object["status"]["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

/// `flux reconcile` of every kind and ours, one run each (each run changes the cluster, the
/// output does not): sources, Kustomizations, a HelmRelease with its chart and source,
/// `--force`/`--reset`, suspended objects and missing ones.
fn compare_reconcile(up: &Up, comparisons: &mut Comparisons) {
    add_demo_release(up);
    let invocations: &[&[&str]] = &[
        &["reconcile", "source", "git", "flux-system"],
        &["reconcile", "kustomization", "flux-system"],
        &["reconcile", "ks", "team-a", "-n", "team-a", "--with-source"],
        &[
            "reconcile",
            "source",
            "chart",
            "flux-system-demo",
            "--with-source",
        ],
        &["reconcile", "helmrelease", "demo", "--with-source"],
        &["reconcile", "hr", "demo", "--force"],
        &["reconcile", "hr", "demo", "--reset"],
        &["reconcile", "source", "helm", "podinfo"],
        &["reconcile", "image", "update", "fleet"],
        &["reconcile", "source", "git", "nothing-here"],
        &["reconcile", "source", "oci", "nothing-here"],
        &["reconcile", "source", "bucket", "nothing-here"],
        &["reconcile", "image", "repository", "nothing-here"],
        &["reconcile", "image", "policy", "nothing-here"],
        &["reconcile", "receiver", "nothing-here"],
        &["reconcile", "kustomization"],
    ];
    for args in invocations {
        let flux = shown(&up.flux(args));
        let ours = shown(&up.ferroflux(args));
        comparisons.compare(&args.join(" "), &flux, &ours);
    }
    // flux 2.9 has no `reconcile alert`; ours gives flux's answer for objects without a
    // reconciler (v1beta3 Alerts and Providers), and client-go's NotFound.
    for (args, wanted) in [
        (
            &["reconcile", "alert-provider", "slack"][..],
            "exit 0\n✔ reconciliation not supported by the object\n",
        ),
        (
            &["reconcile", "alert", "nothing-here"],
            "exit 1\n✗ alerts.notification.toolkit.fluxcd.io \"nothing-here\" not found\n",
        ),
    ] {
        assert_eq!(shown(&up.ferroflux(args)), wanted, "{args:?}");
    }
    // Ours ran last: `--reset` asked for a reset at the time of its reconcile request.
    let release = up.object("helmreleases.helm.toolkit.fluxcd.io", "demo", "flux-system");
    let annotations = &release["metadata"]["annotations"];
    assert_eq!(
        annotations["reconcile.fluxcd.io/resetAt"], annotations["reconcile.fluxcd.io/requestedAt"],
        "{release}"
    );
    assert!(
        annotations["reconcile.fluxcd.io/forceAt"].is_string(),
        "{release}"
    );
}

/// `flux trace` and ours: objects of a Kustomization (namespaced, cluster-scoped, by
/// `--kind`/`--api-version`, several at once), of the HelmRelease, unmanaged and missing ones.
fn compare_trace(up: &Up, comparisons: &mut Comparisons) {
    let invocations: &[&[&str]] = &[
        &["trace", "deployment", "podinfo", "-n", "team-a"],
        &["trace", "deployment/podinfo", "-n", "team-a"],
        &["trace", "namespace", "team-a"],
        &["trace", "ns/team-a", "deploy/podinfo", "-n", "team-a"],
        &[
            "trace",
            "podinfo",
            "--kind",
            "Deployment",
            "--api-version",
            "apps/v1",
            "-n",
            "team-a",
        ],
        &["trace", "configmap", "demo-greeting"],
        &["trace", "namespace", "default"],
        &["trace", "cm", "nothing-here"],
        &["trace"],
    ];
    for args in invocations {
        comparisons.compare_commands(up, "", args);
    }
    // The HelmRelease in the fleet's inventory: flux's tree lists the objects of its release.
    for args in [
        &["tree", "kustomization", "flux-system"][..],
        &["tree", "kustomization", "flux-system", "--compact"],
    ] {
        comparisons.compare_commands(up, " (with a HelmRelease)", args);
    }
    let tree = shown(&up.ferroflux(&["tree", "kustomization", "flux-system"]));
    assert!(
        tree.contains(
            "HelmRelease/flux-system/demo\n│   └── ConfigMap/flux-system/demo-greeting\n"
        ) || tree.contains(
            "HelmRelease/flux-system/demo\n    └── ConfigMap/flux-system/demo-greeting\n"
        ),
        "{tree}"
    );
    assert_eq!(
        shown(&up.ferroflux(&["tree", "helmrelease", "demo"])),
        "exit 0\nHelmRelease/flux-system/demo\n└── ConfigMap/flux-system/demo-greeting\n\n"
    );
    let traced = shown(&up.ferroflux(&["trace", "configmap", "demo-greeting"]));
    assert!(traced.contains("HelmRelease:    demo"), "{traced}");
}

fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("copy dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            if entry.file_name() != ".git" {
                copy_tree(&entry.path(), &target);
            }
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

/// `flux diff kustomization` and ours: no change (exit 0), a drifted, an added and two pruned
/// objects (exit 1 with the changes), and the errors (exit 2, or 1 without a name).
fn compare_diff(up: &Up, comparisons: &mut Comparisons) {
    let work = up.dir.path().join("fleet-work");
    let tenants = work
        .join("tenants/production")
        .to_string_lossy()
        .into_owned();
    let drifted = up.dir.path().join("drifted");
    copy_tree(&work, &drifted);
    let base = drifted.join("tenants/base/team-a");
    let rbac = std::fs::read_to_string(base.join("rbac.yaml")).expect("rbac.yaml");
    let rbac = rbac
        .replacen(
            "kind: Namespace\nmetadata:\n  name: team-a\n",
            "kind: Namespace\nmetadata:\n  name: team-a\n  annotations:\n    drift: \"yes\"\n",
            1,
        )
        .replace(
            "toolkit.fluxcd.io/tenant: team-a",
            "toolkit.fluxcd.io/tenant: team-x",
        );
    std::fs::write(base.join("rbac.yaml"), rbac).expect("write rbac.yaml");
    std::fs::write(
        base.join("extra.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n  namespace: team-a\ndata:\n  a: b\n",
    )
    .expect("write extra.yaml");
    std::fs::write(
        base.join("kustomization.yaml"),
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - rbac.yaml\n  - extra.yaml\n",
    )
    .expect("write kustomization.yaml");
    let drifted = drifted
        .join("tenants/production")
        .to_string_lossy()
        .into_owned();
    let invocations: &[&[&str]] = &[
        &[
            "diff",
            "kustomization",
            "tenants",
            "--path",
            &tenants,
            "--progress-bar=false",
        ],
        &[
            "diff",
            "ks",
            "tenants",
            "--path",
            &drifted,
            "--progress-bar=false",
        ],
        &["diff", "kustomization", "nothing-here", "--path", &tenants],
        &["diff", "kustomization", "tenants", "--path", "/nonexistent"],
        &["diff", "kustomization"],
    ];
    for args in invocations {
        comparisons.compare_commands(up, "", args);
    }
    let ours = up.ferroflux(&["diff", "ks", "tenants", "--path", &drifted]);
    assert_eq!(ours.status.code(), Some(1), "{}", shown(&ours));
    for wanted in [
        "► Namespace/team-a drifted",
        "► ConfigMap/team-a/extra created",
        "► Kustomization/team-a/team-a deleted",
    ] {
        assert!(text(&ours.stdout).contains(wanted), "{}", shown(&ours));
    }
}

/// Runs flux and ferroflux with exactly `args` (no `--timeout` added) and compares.
fn compare_exact(up: &Up, comparisons: &mut Comparisons, args: &[&str]) {
    let run = |program: &std::path::Path| {
        shown(
            &Command::new(program)
                .args(args)
                .arg("--kubeconfig")
                .arg(&up.kubeconfig)
                .env("NO_PROXY", "127.0.0.1,localhost")
                .env_remove("HTTPS_PROXY")
                .env_remove("https_proxy")
                .stdin(Stdio::null())
                .output()
                .expect("runs"),
        )
    };
    // As `compare_commands`: compared once two flux runs agree (a watch shows every change).
    for _ in 0..5 {
        let before = run(&up.flux);
        let ours = run(std::path::Path::new(env!("CARGO_BIN_EXE_ferroflux")));
        if before == run(&up.flux) {
            comparisons.compare(&args.join(" "), &before, &ours);
            return;
        }
    }
    panic!("flux {args:?} kept changing its output");
}

/// `get --watch` until its timeout (the current objects, nothing changing), `logs` where up has
/// no pods, `uninstall --dry-run` (and without `--silent`, unanswered).
fn compare_watch_logs_uninstall(up: &Up, comparisons: &mut Comparisons) {
    for args in [
        &["get", "kustomizations", "-A", "--watch", "--timeout", "3s"][..],
        &[
            "get",
            "sources",
            "git",
            "flux-system",
            "-w",
            "--timeout",
            "2s",
        ],
        &["get", "all", "--watch"],
        &["uninstall", "--dry-run"],
        &["uninstall", "--dry-run", "--keep-namespace", "-n", "team-a"],
    ] {
        compare_exact(up, comparisons, args);
    }
    let unanswered = up.ferroflux(&["uninstall"]);
    let all = shown(&unanswered);
    assert!(all.starts_with("exit 1\n"), "{all}");
    assert!(all.trim_end().ends_with("✗ aborting"), "{all}");
    // Nothing was deleted by the dry runs or the unanswered question.
    up.object("kustomizations", "flux-system", "flux-system");
    check_logs(up);
}

/// `logs` on up: no pods, so the JSON log of up's controllers beside its kubeconfig
/// (`<data-dir>/controllers.log`), printed and filtered as flux prints pod logs.
fn check_logs(up: &Up) {
    let data = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(data.path().join("apiserver")).expect("apiserver dir");
    let kubeconfig = data.path().join("apiserver/kubeconfig");
    std::fs::copy(&up.kubeconfig, &kubeconfig).expect("copy the kubeconfig");
    let lines = [
        r#"{"level":"info","ts":"2026-12-07T19:14:36.123Z","msg":"server listening","logger":"setup"}"#,
        r#"{"level":"error","ts":"2026-12-07T19:14:37.000Z","msg":"Reconciler error","controllerKind":"Kustomization","name":"apps","namespace":"flux-system","error":"boom"}"#,
        r#"{"timestamp":"2026-12-07T19:14:38.000Z","level":"INFO","fields":{"message":"stored artifact","kind":"GitRepository","name":"team-a","namespace":"team-a"}}"#,
        "not json",
    ];
    let log = lines.join("\n") + "\n";
    std::fs::write(data.path().join("controllers.log"), log).expect("write the log");
    let logs = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_ferroflux"))
            .args(args)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .stdin(Stdio::null())
            .output()
            .expect("ferroflux runs");
        shown(&output)
    };
    // Without -A only the lines of -n's namespace (flux-system), as flux filters.
    assert_eq!(
        logs(&["logs"]),
        "exit 0\n2026-12-07T19:14:37.000Z error Kustomization/apps.flux-system - Reconciler error boom\n"
    );
    assert_eq!(
        logs(&["logs", "-A", "--kind", "gitrepository"]),
        "exit 0\n2026-12-07T19:14:38.000Z info GitRepository/team-a.team-a - stored artifact \n"
    );
    assert_eq!(logs(&["logs", "-A", "--level", "debug"]), "exit 0\n");
    let missing = logs(&[
        "logs",
        "--flux-namespace",
        "nowhere",
        "--log-file",
        "/nonexistent",
    ]);
    assert!(missing.starts_with("exit 1\n"), "{missing}");
}
