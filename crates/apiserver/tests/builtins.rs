//! Built-in kinds as kube-apiserver serves them, seen through the real kubectl: explain from
//! the OpenAPI v3 schemas, `-o wide` columns, defaulting, and the pod subresources kubectl
//! exec/attach/logs/port-forward/debug call on a pod that has no node.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

struct Kubectl {
    bin: PathBuf,
    kubeconfig: PathBuf,
    dir: tempfile::TempDir,
    // Declared last: dropped after the calls above are done with it.
    _server: common::ThreadServer,
}

impl Kubectl {
    /// A fresh server and the kubectl on PATH; `None` (a skip, a failure under `CI=true`)
    /// without kubectl.
    fn start() -> Option<Kubectl> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let Some(bin) = std::env::split_paths(&path)
            .map(|d| d.join("kubectl"))
            .find(|k| k.is_file())
        else {
            ferroflux_testpeers::skip("kubectl is not on PATH");
            return None;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let server = common::ThreadServer::start(&dir.path().join("data"));
        Some(Kubectl {
            bin,
            kubeconfig: server.kubeconfig.clone(),
            dir,
            _server: server,
        })
    }

    fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(&self.bin)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()
            .expect("kubectl runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args);
        assert!(ok, "kubectl {args:?} failed:\n{out}{err}");
        out
    }

    /// Runs a failing command; returns its stderr.
    fn fails(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args);
        assert!(!ok, "kubectl {args:?} should fail:\n{out}{err}");
        err
    }

    fn apply(&self, manifest: &str) {
        let p = self.dir.path().join("manifest.yaml");
        std::fs::write(&p, manifest).expect("write manifest");
        self.ok(&["apply", "-f", &p.display().to_string()]);
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

#[test]
fn explain_describes_builtin_fields_from_their_schemas() {
    let Some(k) = Kubectl::start() else { return };
    let out = k.ok(&["explain", "deployment.spec.strategy"]);
    assert!(out.contains("GROUP:      apps"), "{out}");
    assert!(out.contains("KIND:       Deployment"), "{out}");
    assert!(
        out.contains("FIELD: strategy <DeploymentStrategy>"),
        "{out}"
    );
    assert!(
        out.contains("rollingUpdate\t<RollingUpdateDeployment>"),
        "{out}"
    );
    assert!(out.contains("Type of deployment."), "{out}");
    let out = k.ok(&["explain", "pods.spec.containers.ports"]);
    assert!(out.contains("FIELD: ports <[]ContainerPort>"), "{out}");
    assert!(out.contains("containerPort\t<integer> -required-"), "{out}");
    let out = k.ok(&["explain", "services.spec.ports.targetPort"]);
    assert!(out.contains("FIELD: targetPort <IntOrString>"), "{out}");
    let out = k.ok(&["explain", "configmaps"]);
    assert!(out.contains("ConfigMap holds configuration data"), "{out}");
    let out = k.ok(&["explain", "clusterrole.rules.verbs"]);
    assert!(
        out.contains("GROUP:      rbac.authorization.k8s.io"),
        "{out}"
    );
    assert!(out.contains("FIELD: verbs <[]string>"), "{out}");
    let out = k.ok(&["explain", "cronjobs.spec.jobTemplate.spec.backoffLimit"]);
    assert!(out.contains("FIELD: backoffLimit <integer>"), "{out}");
}

#[test]
fn the_openapi_documents_carry_kubes_list_extensions() {
    let Some(k) = Kubectl::start() else { return };
    let doc = k.ok(&["get", "--raw", "/openapi/v3/apis/apps/v1"]);
    let doc: serde_json::Value = serde_json::from_str(&doc).expect("JSON");
    let schemas = &doc["components"]["schemas"];
    let deploy = &schemas["io.k8s.api.apps.v1.Deployment"];
    assert_eq!(
        deploy["x-kubernetes-group-version-kind"][0]["kind"],
        "Deployment"
    );
    let containers = &schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
    assert_eq!(containers["x-kubernetes-list-type"], "map");
    assert_eq!(containers["x-kubernetes-list-map-keys"][0], "name");
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    let doc = k.ok(&["get", "--raw", "/openapi/v3/api/v1"]);
    let doc: serde_json::Value = serde_json::from_str(&doc).expect("JSON");
    let ports =
        &doc["components"]["schemas"]["io.k8s.api.core.v1.ServiceSpec"]["properties"]["ports"];
    assert_eq!(
        ports["x-kubernetes-list-map-keys"],
        serde_json::json!(["port", "protocol"])
    );
}

const WORKLOADS: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: demo}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: nginx, image: 'nginx:1.27', ports: [{containerPort: 80}]}
      - {name: side, image: busybox}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: demo}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: once, namespace: demo}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: run, image: 'busybox:1.36', command: [date]}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: tick, namespace: demo}
spec:
  schedule: '*/5 * * * *'
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: tick, image: 'busybox:latest'}]
---
apiVersion: v1
kind: Pod
metadata: {name: solo, namespace: demo}
spec:
  containers: [{name: main, image: busybox, command: [sleep, '3600']}]
";

fn words(line: &str) -> Vec<&str> {
    line.split("  ")
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .collect()
}

/// Runs kubectl with `args` and checks the table's header is `header` (columns two spaces
/// apart); the output and the cells of its first row.
fn table(k: &Kubectl, args: &[&str], header: &str) -> (String, Vec<String>) {
    let out = k.ok(args);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(words(lines[0]), words(header), "{out}");
    let row = words(lines[1]).into_iter().map(String::from).collect();
    (out, row)
}

#[test]
fn get_wide_prints_kubes_extra_columns() {
    let Some(k) = Kubectl::start() else { return };
    k.ok(&["create", "namespace", "demo"]);
    k.apply(WORKLOADS);
    wide_deployments_and_pods(&k);
    wide_services_and_jobs(&k);
    roles_pdbs_and_priority_classes(&k);
}

fn wide_deployments_and_pods(k: &Kubectl) {
    let (out, row) = table(
        k,
        &["get", "deploy", "-n", "demo", "-o", "wide"],
        "NAME  READY  UP-TO-DATE  AVAILABLE  AGE  CONTAINERS  IMAGES  SELECTOR",
    );
    assert_eq!(row[..4], ["web", "0/1", "0", "0"], "{out}");
    assert_eq!(
        row[5..],
        ["nginx,side", "nginx:1.27,busybox", "app=web"],
        "{out}"
    );
    let (out, row) = table(
        k,
        &["get", "pods", "-n", "demo", "-o", "wide"],
        "NAME  READY  STATUS  RESTARTS  AGE  IP  NODE  NOMINATED NODE  READINESS GATES",
    );
    assert_eq!(row[..4], ["solo", "0/1", "Pending", "0"], "{out}");
    assert_eq!(row[5..], ["<none>", "<none>", "<none>", "<none>"], "{out}");
}

fn wide_services_and_jobs(k: &Kubectl) {
    let (out, row) = table(
        k,
        &["get", "svc", "web", "-n", "demo", "-o", "wide"],
        "NAME  TYPE  CLUSTER-IP  EXTERNAL-IP  PORT(S)  AGE  SELECTOR",
    );
    assert_eq!(row[1], "ClusterIP", "{out}");
    assert!(row[2].starts_with("10."), "an allocated cluster IP: {out}");
    assert_eq!(row[3..5], ["<none>", "80/TCP"], "{out}");
    assert_eq!(row[6..], ["app=web"], "{out}");
    let (out, row) = table(
        k,
        &["get", "job", "once", "-n", "demo", "-o", "wide"],
        "NAME  STATUS  COMPLETIONS  DURATION  AGE  CONTAINERS  IMAGES  SELECTOR",
    );
    assert_eq!(row[..3], ["once", "Running", "0/1"], "{out}");
    assert_eq!(row[4..6], ["run", "busybox:1.36"], "{out}");
    assert!(
        row[6].starts_with("batch.kubernetes.io/controller-uid="),
        "{out}"
    );
    let (out, row) = table(
        k,
        &["get", "cronjob", "tick", "-n", "demo", "-o", "wide"],
        "NAME  SCHEDULE  TIMEZONE  SUSPEND  ACTIVE  LAST SCHEDULE  AGE  CONTAINERS  IMAGES  SELECTOR",
    );
    assert_eq!(
        row[..6],
        ["tick", "*/5 * * * *", "<none>", "False", "0", "<none>"],
        "{out}"
    );
    assert_eq!(row[7..], ["tick", "busybox:latest", "<none>"], "{out}");
}

fn roles_pdbs_and_priority_classes(k: &Kubectl) {
    k.apply(
        "apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: reader, namespace: demo}
rules: [{apiGroups: [''], resources: [pods], verbs: [get]}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web, namespace: demo}
spec: {minAvailable: 1, selector: {matchLabels: {app: web}}}
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: high}
value: 1000
",
    );
    // kube-apiserver has no printer for Roles: its default table has Name and Created At.
    let (out, row) = table(
        k,
        &["get", "role", "reader", "-n", "demo"],
        "NAME  CREATED AT",
    );
    assert!(row[1].ends_with('Z'), "{out}");
    let (out, row) = table(
        k,
        &["get", "pdb", "web", "-n", "demo"],
        "NAME  MIN AVAILABLE  MAX UNAVAILABLE  ALLOWED DISRUPTIONS  AGE",
    );
    assert_eq!(row[..4], ["web", "1", "N/A", "0"], "{out}");
    let (out, row) = table(
        k,
        &["get", "priorityclass", "high", "-o", "wide"],
        "NAME  VALUE  GLOBAL-DEFAULT  AGE  PREEMPTIONPOLICY",
    );
    assert_eq!(row[..3], ["high", "1000", "false"], "{out}");
    assert_eq!(row[4], "PreemptLowerPriority", "{out}");
}

#[test]
fn builtin_kinds_are_defaulted_as_kube_does() {
    let Some(k) = Kubectl::start() else { return };
    k.ok(&["create", "namespace", "demo"]);
    k.apply(WORKLOADS);
    let get = |what: &str, path: &str| {
        k.ok(&["get", what, "-n", "demo", "-o", &format!("jsonpath={path}")])
    };
    assert_eq!(
        get(
            "deploy/web",
            "{.spec.replicas} {.spec.strategy.type} {.spec.strategy.rollingUpdate.maxSurge} {.spec.strategy.rollingUpdate.maxUnavailable} {.spec.revisionHistoryLimit} {.spec.progressDeadlineSeconds}"
        ),
        "1 RollingUpdate 25% 25% 10 600"
    );
    assert_eq!(
        get(
            "deploy/web",
            "{.spec.template.spec.restartPolicy} {.spec.template.spec.dnsPolicy} {.spec.template.spec.schedulerName} {.spec.template.spec.terminationGracePeriodSeconds} {.spec.template.spec.securityContext}"
        ),
        "Always ClusterFirst default-scheduler 30 {}"
    );
    assert_eq!(
        get(
            "deploy/web",
            "{.spec.template.spec.containers[*].imagePullPolicy} {.spec.template.spec.containers[0].terminationMessagePath} {.spec.template.spec.containers[0].terminationMessagePolicy} {.spec.template.spec.containers[0].ports[0].protocol}"
        ),
        "IfNotPresent Always /dev/termination-log File TCP"
    );
    assert_eq!(
        get(
            "svc/web",
            "{.spec.type} {.spec.sessionAffinity} {.spec.ports[0].protocol} {.spec.ports[0].targetPort} {.spec.ipFamilyPolicy} {.spec.ipFamilies} {.spec.internalTrafficPolicy}"
        ),
        "ClusterIP None TCP 80 SingleStack [\"IPv4\"] Cluster"
    );
    assert_eq!(
        get(
            "job/once",
            "{.spec.completions} {.spec.parallelism} {.spec.backoffLimit} {.spec.completionMode} {.spec.suspend} {.spec.template.metadata.labels.job-name}"
        ),
        "1 1 6 NonIndexed false once"
    );
    assert_eq!(
        get(
            "cronjob/tick",
            "{.spec.concurrencyPolicy} {.spec.suspend} {.spec.successfulJobsHistoryLimit} {.spec.failedJobsHistoryLimit} {.spec.jobTemplate.spec.template.spec.containers[0].imagePullPolicy}"
        ),
        "Allow false 3 1 Always"
    );
    assert_eq!(
        get(
            "pod/solo",
            "{.status.phase} {.status.qosClass} {.spec.priority} {.spec.serviceAccountName} {.spec.enableServiceLinks}"
        ),
        "Pending BestEffort 0 default true"
    );
    // Re-applying the same manifests is a no-op: defaulted fields compare equal.
    let rv = get(
        "deploy/web",
        "{.metadata.resourceVersion} {.metadata.generation}",
    );
    k.apply(WORKLOADS);
    assert_eq!(
        get(
            "deploy/web",
            "{.metadata.resourceVersion} {.metadata.generation}"
        ),
        rv
    );
    // A server-side apply result is defaulted too.
    let p = k.path().join("cm.yaml");
    std::fs::write(
        &p,
        "apiVersion: v1\nkind: Service\nmetadata: {name: ssa, namespace: demo}\nspec: {ports: [{port: 8443}]}\n",
    )
    .expect("write");
    k.ok(&["apply", "--server-side", "-f", &p.display().to_string()]);
    assert_eq!(
        get(
            "svc/ssa",
            "{.spec.type} {.spec.ports[0].protocol} {.spec.ports[0].targetPort}"
        ),
        "ClusterIP TCP 8443"
    );
}

#[test]
fn pod_streams_without_a_node_get_kubes_errors_and_debug_adds_an_ephemeral_container() {
    let Some(k) = Kubectl::start() else { return };
    k.ok(&["create", "namespace", "demo"]);
    k.apply(WORKLOADS);
    let err = k.fails(&["exec", "solo", "-n", "demo", "--", "ls"]);
    assert!(
        err.contains("Error from server (BadRequest): pod solo does not have a host assigned"),
        "{err}"
    );
    let err = k.fails(&["attach", "solo", "-n", "demo"]);
    assert!(
        err.contains("pod solo does not have a host assigned"),
        "{err}"
    );
    let err = k.fails(&["exec", "solo", "-n", "demo", "-c", "nope", "--", "ls"]);
    assert!(
        err.contains("container nope is not valid for pod solo"),
        "{err}"
    );
    // kube-apiserver streams an empty log for a pod no node runs.
    assert_eq!(k.ok(&["logs", "solo", "-n", "demo"]), "");
    let raw = k.fails(&[
        "get",
        "--raw",
        "/api/v1/namespaces/demo/pods/solo/portforward",
    ]);
    assert!(
        raw.contains("pod solo does not have a host assigned"),
        "{raw}"
    );
    // kubectl debug patches pods/<name>/ephemeralcontainers (and crashed on a bare 404).
    k.ok(&[
        "debug",
        "solo",
        "-n",
        "demo",
        "--image=busybox:1.36",
        "-c",
        "dbg",
    ]);
    let ec = k.ok(&[
        "get",
        "pod",
        "solo",
        "-n",
        "demo",
        "-o",
        "jsonpath={.spec.ephemeralContainers[0].name} {.spec.ephemeralContainers[0].image} {.spec.ephemeralContainers[0].terminationMessagePolicy}",
    ]);
    assert_eq!(ec, "dbg busybox:1.36 File");
    let err = k.fails(&[
        "debug",
        "solo",
        "-n",
        "demo",
        "--image=busybox",
        "-c",
        "main",
    ]);
    assert!(err.contains("Duplicate value: \"main\""), "{err}");
}
