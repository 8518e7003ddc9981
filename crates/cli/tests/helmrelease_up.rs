//! HelmRelease on `ferroflux up` (issue 17): a chart packaged by the real `helm` and served from
//! a Helm repository on loopback is installed by a HelmRelease, a values change upgrades it, and
//! the real `helm` reads the releases `up` stored (`helm list`, `helm history`, `helm get values`).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::process::wait_for;

const CHART: &[(&str, &str)] = &[
    (
        "demo/Chart.yaml",
        "apiVersion: v2\nname: demo\nversion: 1.0.0\nappVersion: \"1.0\"\n",
    ),
    ("demo/values.yaml", "greeting: hello\n"),
    (
        "demo/templates/_helpers.tpl",
        "{{- define \"demo.name\" -}}{{ .Release.Name }}-{{ .Chart.Name }}{{- end -}}\n",
    ),
    (
        "demo/templates/configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ include \"demo.name\" . }}\ndata:\n  greeting: {{ .Values.greeting | quote }}\n",
    ),
];

fn helm(binary: &Path, kubeconfig: &Path, args: &[&str]) -> String {
    let out = Command::new(binary)
        .args(args)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .output()
        .expect("helm runs");
    assert!(
        out.status.success(),
        "helm {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Packages the chart with the real `helm` and serves it with its `index.yaml`.
fn chart_repository(binary: &Path, dir: &Path) -> String {
    for (path, text) in CHART {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    let packaged = Command::new(binary)
        .args(["package", "demo", "--destination", "repo"])
        .current_dir(dir)
        .output()
        .expect("helm package runs");
    assert!(
        packaged.status.success(),
        "{}",
        String::from_utf8_lossy(&packaged.stderr)
    );
    let indexed = Command::new(binary)
        .args(["repo", "index", "repo"])
        .current_dir(dir)
        .output()
        .expect("helm repo index runs");
    assert!(
        indexed.status.success(),
        "{}",
        String::from_utf8_lossy(&indexed.stderr)
    );
    let files: BTreeMap<String, Vec<u8>> = ["index.yaml", "demo-1.0.0.tgz"]
        .iter()
        .map(|name| {
            let body = std::fs::read(dir.join("repo").join(name)).expect("packaged file");
            (format!("/{name}"), body)
        })
        .collect();
    common::http::serve_files(files)
}

const RELEASE: &str = r#"apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata: {name: charts, namespace: flux-system}
spec: {url: URL, interval: 1m}
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: demo, namespace: flux-system}
spec:
  interval: 1m
  chart:
    spec:
      chart: demo
      version: "1.x"
      sourceRef: {kind: HelmRepository, name: charts}
  values: {greeting: GREETING}
"#;

fn greeting(kubeconfig: &Path) -> Option<String> {
    let probe = [
        "get",
        "configmap",
        "demo-demo",
        "-n",
        "flux-system",
        "-o",
        "json",
    ];
    let out = common::kubectl(kubeconfig, &probe, None);
    let map: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    map["data"]["greeting"].as_str().map(str::to_string)
}

#[test]
fn a_helmrelease_installs_and_upgrades_on_up_and_helm_reads_the_releases() {
    let binary = match ferroflux_testpeers::peer_binary("helm") {
        Ok(binary) => binary,
        Err(err) => return ferroflux_testpeers::skip(format!("helm: {err}")),
    };
    let Some(up) = common::start_up() else {
        return;
    };
    let url = chart_repository(&binary, up.dir.path());
    let apply = |greeting: &str| {
        let text = RELEASE.replace("URL", &url).replace("GREETING", greeting);
        common::kubectl_ok(&up.kubeconfig, &["apply", "-f", "-"], Some(text.as_bytes()));
    };
    apply("hello from git");
    let installed = wait_for(Duration::from_secs(90), || {
        greeting(&up.kubeconfig).filter(|g| g == "hello from git")
    });
    let log = || std::fs::read_to_string(up.dir.path().join("up.log")).unwrap_or_default();
    assert!(installed.is_some(), "not installed:\n{}", log());
    let ready = wait_for(Duration::from_secs(30), || {
        let hr = common::kubectl_json(
            &up.kubeconfig,
            &["get", "helmrelease", "demo", "-n", "flux-system"],
        );
        (common::ready_condition(&hr).0 == "True").then_some(hr)
    })
    .expect("the HelmRelease is Ready");
    assert_eq!(
        ready["status"]["history"][0]["chartVersion"], "1.0.0",
        "{ready}"
    );

    apply("hello again");
    let upgraded = wait_for(Duration::from_secs(90), || {
        greeting(&up.kubeconfig).filter(|g| g == "hello again")
    });
    assert!(upgraded.is_some(), "not upgraded:\n{}", log());
    let releases: serde_json::Value = serde_json::from_str(&helm(
        &binary,
        &up.kubeconfig,
        &["list", "-n", "flux-system", "-o", "json"],
    ))
    .expect("JSON");
    assert_eq!(releases[0]["name"], "demo", "{releases}");
    assert_eq!(releases[0]["status"], "deployed", "{releases}");
    assert_eq!(releases[0]["chart"], "demo-1.0.0", "{releases}");
    let history: serde_json::Value = serde_json::from_str(&helm(
        &binary,
        &up.kubeconfig,
        &["history", "demo", "-n", "flux-system", "-o", "json"],
    ))
    .expect("JSON");
    let statuses: Vec<&str> = history
        .as_array()
        .expect("revisions")
        .iter()
        .filter_map(|r| r["status"].as_str())
        .collect();
    assert_eq!(statuses, ["superseded", "deployed"], "{history}");
    let values = helm(
        &binary,
        &up.kubeconfig,
        &["get", "values", "demo", "-n", "flux-system", "-o", "json"],
    );
    let values: serde_json::Value = serde_json::from_str(&values).expect("JSON");
    assert_eq!(values["greeting"], "hello again");
}
