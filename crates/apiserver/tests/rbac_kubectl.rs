//! `kubectl auth can-i` (SelfSubjectAccessReview through impersonation) against a table of
//! verbs, subresources, resourceNames, wildcards, aggregation and nonResourceURLs.
//! Skips, with a message, where no kubectl is installed.

mod common;

use std::path::Path;
use std::process::Command;

const MANIFEST: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: team-a}
---
apiVersion: v1
kind: Namespace
metadata: {name: team-b}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: team-a, namespace: team-a}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: tenant-app-admin, namespace: team-a}
rules:
- apiGroups: ["", "apps"]
  resources: ["deployments", "services", "configmaps"]
  verbs: ["*"]
- apiGroups: ["apps"]
  resources: ["deployments/scale"]
  verbs: ["get"]
- apiGroups: [""]
  resources: ["secrets"]
  resourceNames: ["app-secret"]
  verbs: ["get", "update"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: tenant, namespace: team-a}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: tenant-app-admin}
subjects:
- {kind: ServiceAccount, name: team-a, namespace: team-a}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: lease-reader
  labels: {rbac.authorization.k8s.io/aggregate-to-view: "true"}
rules:
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["get", "list"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: viewers, namespace: team-b}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects:
- {kind: User, name: vera}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: ops}
rules:
- apiGroups: ["*"]
  resources: ["*/status"]
  verbs: ["get"]
- nonResourceURLs: ["/metrics", "/logs/*"]
  verbs: ["get"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: ops}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: ops}
subjects:
- {kind: Group, name: operators}
"#;

fn kubectl(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> (bool, String) {
    common::kubectl_with_input(kubeconfig, args, stdin).expect("kubectl runs")
}

fn have_kubectl() -> bool {
    Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success())
}

const SA: &str = "--as=system:serviceaccount:team-a:team-a";

/// `kubectl auth can-i` arguments and the expected answer.
const CAN_I_CASES: &[(&[&str], bool)] = &[
    (&["create", "deployments", "-n", "team-a", SA], true),
    (&["create", "deployments", "-n", "team-b", SA], false),
    (&["delete", "deployments.apps", "-n", "team-a", SA], true),
    (&["list", "configmaps", "-n", "team-a", SA], true),
    (&["list", "pods", "-n", "team-a", SA], false),
    (
        &[
            "get",
            "deployments",
            "--subresource=scale",
            "-n",
            "team-a",
            SA,
        ],
        true,
    ),
    (
        &[
            "update",
            "deployments",
            "--subresource=scale",
            "-n",
            "team-a",
            SA,
        ],
        false,
    ),
    (&["get", "secrets/app-secret", "-n", "team-a", SA], true),
    (&["get", "secrets/db", "-n", "team-a", SA], false),
    (&["list", "secrets", "-n", "team-a", SA], false),
    (&["create", "clusterrolebindings", SA], false),
    (&["create", "rolebindings", "-n", "team-a", SA], false),
    (&["*", "*", SA], false),
    (&["*", "*"], true),
    (&["create", "clusterrolebindings"], true),
    (&["impersonate", "serviceaccounts", "-n", "team-a"], true),
    (&["impersonate", "users", SA], false),
    (&["list", "deployments", "-n", "team-b", "--as=vera"], true),
    (
        &["create", "deployments", "-n", "team-b", "--as=vera"],
        false,
    ),
    (&["get", "secrets", "-n", "team-b", "--as=vera"], false),
    (&["list", "leases", "-n", "team-b", "--as=vera"], true),
    (&["delete", "leases", "-n", "team-b", "--as=vera"], false),
    (&["list", "deployments", "-n", "team-a", "--as=vera"], false),
    (&["watch", "replicasets", "-n", "team-b", "--as=vera"], true),
    (
        &[
            "get",
            "deployments",
            "--subresource=status",
            "-A",
            "--as=olga",
            "--as-group=operators",
        ],
        true,
    ),
    (
        &[
            "get",
            "jobs",
            "--subresource=status",
            "-n",
            "x",
            "--as=olga",
            "--as-group=operators",
        ],
        true,
    ),
    (
        &[
            "get",
            "jobs",
            "-n",
            "x",
            "--as=olga",
            "--as-group=operators",
        ],
        false,
    ),
    (
        &["get", "/metrics", "--as=olga", "--as-group=operators"],
        true,
    ),
    (
        &["get", "/logs/kube.log", "--as=olga", "--as-group=operators"],
        true,
    ),
    (
        &["get", "/logsx", "--as=olga", "--as-group=operators"],
        false,
    ),
    (
        &["post", "/metrics", "--as=olga", "--as-group=operators"],
        false,
    ),
    (&["get", "/metrics", SA], false),
    (&["get", "/api", SA], true),
];

#[test]
fn kubectl_auth_can_i_table() {
    if !have_kubectl() {
        ferroflux_testpeers::skip("no kubectl on PATH");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let server = common::ThreadServer::start(dir.path());
    let kc = server.kubeconfig.as_path();
    let (ok, out) = kubectl(kc, &["apply", "-f", "-"], Some(MANIFEST));
    assert!(ok, "apply: {out}");

    check_can_i_cases(kc, CAN_I_CASES);
    denied_write_and_listing(kc);
}

/// Runs `kubectl auth can-i` for every case; all must give the expected answer.
fn check_can_i_cases(kc: &Path, cases: &[(&[&str], bool)]) {
    let mut failed = Vec::new();
    for (args, want) in cases {
        let mut full = vec!["auth", "can-i"];
        full.extend_from_slice(args);
        let (_, out) = kubectl(kc, &full, None);
        let answer = out.lines().find(|l| *l == "yes" || *l == "no");
        let got = match answer {
            Some("yes") => true,
            Some(_) => false,
            None => {
                failed.push(format!("{args:?}: no answer: {out}"));
                continue;
            }
        };
        if got != *want {
            failed.push(format!("{args:?}: want {want}, got {got}: {out}"));
        }
    }
    common::assert_case_table(cases.len(), &failed);
}

/// kubectl itself shows the kube-apiserver message; the denied write is not stored.
fn denied_write_and_listing(kc: &Path) {
    let (ok, out) = kubectl(
        kc,
        &[
            "create",
            "deployment",
            "web",
            "--image=nginx",
            "-n",
            "team-b",
            SA,
        ],
        None,
    );
    assert!(!ok);
    assert!(
        out.contains(r#"deployments.apps is forbidden: User "system:serviceaccount:team-a:team-a" cannot create resource "deployments" in API group "apps" in the namespace "team-b""#),
        "{out}"
    );
    let (ok, out) = kubectl(kc, &["get", "deployment", "web", "-n", "team-b"], None);
    assert!(
        !ok && out.contains("NotFound"),
        "denied write stored: {out}"
    );
    let (ok, out) = kubectl(kc, &["auth", "can-i", "--list", "-n", "team-a", SA], None);
    assert!(ok, "{out}");
    assert!(out.contains("deployments.apps"), "{out}");
    let (ok, out) = kubectl(
        kc,
        &[
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ],
        None,
    );
    if ok {
        assert_eq!(out.trim(), "ferroflux:admin");
    }
}
