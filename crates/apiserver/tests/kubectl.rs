//! The machine's kubectl (default, oldest and newest beside it) against a started server.
//! Skips, with a message, where no kubectl is installed.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `kubectl` from PATH plus the oldest and newest `kubectl.1.N` found beside it.
fn kubectls() -> Vec<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    let mut out = Vec::new();
    let mut beside = Vec::new();
    for d in &dirs {
        let k = d.join("kubectl");
        if k.is_file() && out.is_empty() {
            out.push(k.clone());
            let real = std::fs::canonicalize(&k).unwrap_or(k);
            if let Some(parent) = real.parent() {
                for e in std::fs::read_dir(parent).into_iter().flatten().flatten() {
                    let name = e.file_name().to_string_lossy().to_string();
                    if let Some(minor) = name
                        .strip_prefix("kubectl.1.")
                        .and_then(|m| m.parse::<u32>().ok())
                    {
                        beside.push((minor, e.path()));
                    }
                }
            }
        }
    }
    beside.sort();
    if let Some(first) = beside.first() {
        out.push(first.1.clone());
    }
    if beside.len() > 1
        && let Some(last) = beside.last()
    {
        out.push(last.1.clone());
    }
    out
}

struct Kubectl<'a> {
    bin: &'a Path,
    kubeconfig: &'a Path,
}

impl Kubectl<'_> {
    fn run(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new(self.bin)
            .arg("--kubeconfig")
            .arg(self.kubeconfig)
            .args(args)
            .output()
            .expect("kubectl runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    fn ok(&self, args: &[&str]) -> String {
        let (ok, text) = self.run(args);
        assert!(ok, "{} {args:?} failed:\n{text}", self.bin.display());
        text
    }

    fn fails(&self, args: &[&str]) -> String {
        let (ok, text) = self.run(args);
        assert!(!ok, "{} {args:?} should fail:\n{text}", self.bin.display());
        text
    }
}

const DEPLOY: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: demo
  labels: {app: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: nginx
        image: IMAGE
        ports: [{containerPort: 80}]
";

const CRD: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wg]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas}
    additionalPrinterColumns:
    - {name: Size, type: string, jsonPath: .spec.size}
    - {name: Replicas, type: integer, jsonPath: .spec.replicas}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: string, enum: [small, large], description: How big the widget is.}
              replicas: {type: integer, minimum: 0}
          status:
            type: object
            properties:
              replicas: {type: integer}
";

const WIDGET: &str = "apiVersion: example.com/v1
kind: Widget
metadata: {name: w1, namespace: demo}
spec: {size: small, replicas: 1}
";

/// Writes a manifest `name` under `dir`; its path.
fn write_manifest(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write manifest");
    p.display().to_string()
}

fn scenario(bin: &Path) {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = common::ThreadServer::start(&dir.path().join("data"));
    let k = Kubectl {
        bin,
        kubeconfig: &server.kubeconfig,
    };
    let file = |name: &str, text: &str| write_manifest(dir.path(), name, text);

    create_builtins(&k);
    apply_client_and_server_side(&k, &file);
    watch_sees_change(&k, &server.kubeconfig);
    crd_kind(&k, &file);
    label_annotate_patch(&k);
    delete_with_finalizer(&k);

    // Deleting the namespace empties it.
    k.ok(&["delete", "namespace", "demo", "--timeout=20s"]);
    k.fails(&["get", "namespace", "demo"]);
    assert!(!server.url.is_empty());
}

/// Creates the namespace and built-in objects with `kubectl create`, and reads them back.
fn create_builtins(k: &Kubectl) {
    assert!(
        k.ok(&["create", "namespace", "demo"])
            .contains("namespace/demo created")
    );
    // kubectl 1.32+ sends these as protobuf.
    k.ok(&[
        "create",
        "configmap",
        "cm1",
        "-n",
        "demo",
        "--from-literal=a=b",
    ]);
    k.ok(&[
        "create",
        "secret",
        "generic",
        "s1",
        "-n",
        "demo",
        "--from-literal=p=q",
    ]);
    k.ok(&[
        "create",
        "service",
        "clusterip",
        "svc1",
        "-n",
        "demo",
        "--tcp=80:8080",
    ]);
    k.ok(&["create", "serviceaccount", "sa1", "-n", "demo"]);
    k.ok(&[
        "create",
        "deployment",
        "created",
        "-n",
        "demo",
        "--image=nginx:1.27",
        "--port=80",
        "--replicas=2",
    ]);
    let spec = k.ok(&["get", "deploy", "created", "-n", "demo", "-o", "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].image} {.spec.template.spec.containers[0].ports[0].containerPort} {.spec.selector.matchLabels.app}"]);
    assert_eq!(spec, "2 nginx:1.27 80 created");
    let got = k.ok(&[
        "get",
        "cm/cm1",
        "secret/s1",
        "svc/svc1",
        "-n",
        "demo",
        "-o",
        "jsonpath={.items[*].data} {.items[2].spec.ports[0].targetPort}",
    ]);
    assert_eq!(got, r#"{"a":"b"} {"p":"cQ=="} 8080"#);
}

/// Client-side apply, then server-side apply with a conflicting second manager.
fn apply_client_and_server_side(k: &Kubectl, file: &dyn Fn(&str, &str) -> String) {
    // Client-side apply, twice, with a change; the last-applied annotation follows.
    let d1 = file("d1.yaml", &DEPLOY.replace("IMAGE", "nginx:1.25"));
    assert!(k.ok(&["apply", "-f", &d1]).contains("created"));
    let d2 = file("d2.yaml", &DEPLOY.replace("IMAGE", "nginx:1.26"));
    assert!(k.ok(&["apply", "-f", &d2]).contains("configured"));
    let last = k.ok(&[
        "get",
        "deploy",
        "web",
        "-n",
        "demo",
        "-o",
        "jsonpath={.metadata.annotations.kubectl\\.kubernetes\\.io/last-applied-configuration}",
    ]);
    assert!(last.contains("nginx:1.26"), "{last}");

    // Server-side apply; a second manager conflicts until it forces.
    k.ok(&["apply", "--server-side", "-f", &d2]);
    let d3 = file(
        "d3.yaml",
        &DEPLOY
            .replace("IMAGE", "nginx:1.26")
            .replace("replicas: 1", "replicas: 3"),
    );
    let conflict = k.fails(&["apply", "--server-side", "--field-manager=other", "-f", &d3]);
    assert!(
        conflict.contains("conflict") && conflict.contains(".spec.replicas"),
        "{conflict}"
    );
    k.ok(&[
        "apply",
        "--server-side",
        "--field-manager=other",
        "--force-conflicts",
        "-f",
        &d3,
    ]);
    assert_eq!(
        k.ok(&[
            "get",
            "deploy",
            "web",
            "-n",
            "demo",
            "-o",
            "jsonpath={.spec.replicas}"
        ]),
        "3"
    );
    assert!(
        k.ok(&["get", "deploy", "web", "-n", "demo", "-o", "yaml"])
            .contains("kind: Deployment")
    );
}

/// `get -w` sees a change made by another client.
fn watch_sees_change(k: &Kubectl, kubeconfig: &Path) {
    // get -w sees a change made by another client.
    let mut watch = Command::new(k.bin)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args([
            "get",
            "configmaps",
            "-n",
            "demo",
            "-w",
            "--request-timeout=20s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("watch starts");
    let stdout = watch.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    k.ok(&[
        "create",
        "configmap",
        "seen-by-watch",
        "-n",
        "demo",
        "--from-literal=a=b",
    ]);
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut seen = false;
    while Instant::now() < deadline && !seen {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            seen = line.contains("seen-by-watch");
        }
    }
    let _ = watch.kill();
    let _ = watch.wait();
    assert!(seen, "kubectl get -w saw the new ConfigMap");
}

/// A CRD kind with printer columns, a scale subresource and explain.
fn crd_kind(k: &Kubectl, file: &dyn Fn(&str, &str) -> String) {
    // A CRD kind with printer columns, a scale subresource and explain.
    k.ok(&["apply", "-f", &file("crd.yaml", CRD)]);
    let w = file("w.yaml", WIDGET);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !k.run(&["apply", "-f", &w]).0 {
        assert!(Instant::now() < deadline, "the CRD was not served in time");
        std::thread::sleep(Duration::from_millis(100));
    }
    let table = k.ok(&["get", "widgets", "-n", "demo"]);
    assert!(
        table.contains("SIZE") && table.contains("REPLICAS") && table.contains("small"),
        "{table}"
    );
    k.ok(&["scale", "widget", "w1", "-n", "demo", "--replicas=4"]);
    assert_eq!(
        k.ok(&[
            "get",
            "wg",
            "w1",
            "-n",
            "demo",
            "-o",
            "jsonpath={.spec.replicas}"
        ]),
        "4"
    );
    let explain = k.ok(&["explain", "widgets.spec.size"]);
    assert!(explain.contains("How big the widget is"), "{explain}");
    let resources = k.ok(&["api-resources"]);
    assert!(
        resources.contains("widgets") && resources.contains("deployments"),
        "{resources}"
    );
}

/// label, annotate, the three patch types.
fn label_annotate_patch(k: &Kubectl) {
    // label, annotate, the three patch types.
    k.ok(&["label", "deploy", "web", "-n", "demo", "tier=fe"]);
    k.ok(&["annotate", "deploy", "web", "-n", "demo", "note=hi"]);
    k.ok(&[
        "patch",
        "deploy",
        "web",
        "-n",
        "demo",
        "--type=merge",
        "-p",
        r#"{"spec":{"replicas":5}}"#,
    ]);
    k.ok(&["patch", "deploy", "web", "-n", "demo", "--type=json", "-p", r#"[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"nginx:1.27"}]"#]);
    k.ok(&[
        "patch",
        "deploy",
        "web",
        "-n",
        "demo",
        "--type=strategic",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox"}]}}}}"#,
    ]);
    let got = k.ok(&["get", "deploy", "web", "-n", "demo", "-o", "jsonpath={.metadata.labels.tier} {.metadata.annotations.note} {.spec.replicas} {.spec.template.spec.containers[*].image}"]);
    // kube puts a container added by a strategic merge patch before the existing ones.
    assert_eq!(got, "fe hi 5 busybox nginx:1.27");
}

/// delete with a finalizer held, then released.
fn delete_with_finalizer(k: &Kubectl) {
    // delete with a finalizer held, then released.
    k.ok(&[
        "patch",
        "wg",
        "w1",
        "-n",
        "demo",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":["example.com/hold"]}}"#,
    ]);
    k.ok(&["delete", "wg", "w1", "-n", "demo", "--wait=false"]);
    let ts = k.ok(&[
        "get",
        "wg",
        "w1",
        "-n",
        "demo",
        "-o",
        "jsonpath={.metadata.deletionTimestamp}",
    ]);
    assert!(!ts.is_empty(), "held by the finalizer");
    k.ok(&[
        "patch",
        "wg",
        "w1",
        "-n",
        "demo",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    ]);
    k.fails(&["get", "wg", "w1", "-n", "demo"]);
}

#[test]
fn kubectl_suite() {
    let bins = kubectls();
    if bins.is_empty() {
        ferroflux_testpeers::skip("the kubectl suite: no kubectl on PATH");
        return;
    }
    for bin in bins {
        eprintln!("kubectl suite with {}", bin.display());
        scenario(&bin);
    }
}
