//! The HelmRelease benchmark (`--helm-releases N`): a podinfo-like chart served by a Helm
//! repository on loopback, one HelmRepository and N HelmReleases (each in its own namespace,
//! interval 1h, install/upgrade defaults), all created at once; the clock runs from their
//! creation until every HelmRelease is Ready.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use kube::api::DynamicObject;
use serde_json::json;

use ferroflux_source::artifact::{IgnoreRules, pack_dir};

use crate::{Args, apply, dynamic, usage, wait_for};

/// The chart, Helm's `helm create` shape trimmed to what the Flux benchmark deploys: a
/// Deployment with no replicas, a Service and a ServiceAccount, named through helpers.
const CHART: &[(&str, &str)] = &[
    (
        "podinfo/Chart.yaml",
        "apiVersion: v2
name: podinfo
description: A podinfo-like chart for the ferroflux benchmark
type: application
version: 6.5.0
appVersion: \"6.5.0\"
",
    ),
    (
        "podinfo/values.yaml",
        "replicaCount: 0
image:
  repository: ghcr.io/stefanprodan/podinfo
  tag: \"\"
  pullPolicy: IfNotPresent
service:
  type: ClusterIP
  port: 9898
serviceAccount:
  create: true
  name: \"\"
podAnnotations: {}
resources: {}
",
    ),
    (
        "podinfo/templates/_helpers.tpl",
        "{{- define \"podinfo.fullname\" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix \"-\" }}
{{- else }}
{{- printf \"%s-%s\" .Release.Name .Chart.Name | trunc 63 | trimSuffix \"-\" }}
{{- end }}
{{- end }}

{{- define \"podinfo.selectorLabels\" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define \"podinfo.labels\" -}}
helm.sh/chart: {{ printf \"%s-%s\" .Chart.Name .Chart.Version | replace \"+\" \"_\" | trunc 63 | trimSuffix \"-\" }}
{{ include \"podinfo.selectorLabels\" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define \"podinfo.serviceAccountName\" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include \"podinfo.fullname\" .) .Values.serviceAccount.name }}
{{- else }}
{{- default \"default\" .Values.serviceAccount.name }}
{{- end }}
{{- end }}
",
    ),
    (
        "podinfo/templates/deployment.yaml",
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include \"podinfo.fullname\" . }}
  labels:
    {{- include \"podinfo.labels\" . | nindent 4 }}
spec:
  replicas: {{ .Values.replicaCount }}
  selector:
    matchLabels:
      {{- include \"podinfo.selectorLabels\" . | nindent 6 }}
  template:
    metadata:
      {{- with .Values.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      labels:
        {{- include \"podinfo.selectorLabels\" . | nindent 8 }}
    spec:
      serviceAccountName: {{ include \"podinfo.serviceAccountName\" . }}
      containers:
        - name: {{ .Chart.Name }}
          image: \"{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}\"
          imagePullPolicy: {{ .Values.image.pullPolicy }}
          ports:
            - name: http
              containerPort: 9898
              protocol: TCP
          resources:
            {{- toYaml .Values.resources | nindent 12 }}
",
    ),
    (
        "podinfo/templates/service.yaml",
        "apiVersion: v1
kind: Service
metadata:
  name: {{ include \"podinfo.fullname\" . }}
  labels:
    {{- include \"podinfo.labels\" . | nindent 4 }}
spec:
  type: {{ .Values.service.type }}
  ports:
    - port: {{ .Values.service.port }}
      targetPort: http
      protocol: TCP
      name: http
  selector:
    {{- include \"podinfo.selectorLabels\" . | nindent 4 }}
",
    ),
    (
        "podinfo/templates/serviceaccount.yaml",
        "{{- if .Values.serviceAccount.create -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include \"podinfo.serviceAccountName\" . }}
  labels:
    {{- include \"podinfo.labels\" . | nindent 4 }}
{{- end }}
",
    ),
];

/// Namespace of the HelmRepository.
const REPOSITORY_NAMESPACE: &str = "flux-system";

/// HelmReleases (and namespaces) created at a time.
const CREATE_CONCURRENCY: usize = 16;

/// The chart packed as `helm package` would name it, and the repository index naming it.
fn repository_files() -> anyhow::Result<BTreeMap<String, Vec<u8>>> {
    let dir = tempfile::tempdir()?;
    for (rel, body) in CHART {
        let path = dir.path().join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, body)?;
    }
    let mut tgz = Vec::new();
    let packed = pack_dir(dir.path(), &IgnoreRules::none(), &mut tgz)?;
    let hex = packed.digest.trim_start_matches("sha256:");
    let index = format!(
        "apiVersion: v1
entries:
  podinfo:
  - apiVersion: v2
    name: podinfo
    version: 6.5.0
    appVersion: \"6.5.0\"
    type: application
    urls: [charts/podinfo-6.5.0.tgz]
    digest: {hex}
    created: \"2026-01-01T00:00:00Z\"
generated: \"2026-01-01T00:00:00Z\"
"
    );
    Ok(BTreeMap::from([
        ("/index.yaml".to_string(), index.into_bytes()),
        ("/charts/podinfo-6.5.0.tgz".to_string(), tgz),
    ]))
}

/// Serves the Helm repository on loopback until the process ends; its URL.
async fn serve_repository() -> anyhow::Result<String> {
    let files = Arc::new(repository_files()?);
    let router = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let files = files.clone();
        async move {
            match files.get(uri.path()) {
                Some(body) => (axum::http::StatusCode::OK, body.clone()),
                None => (axum::http::StatusCode::NOT_FOUND, Vec::new()),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(format!("http://{addr}"))
}

fn namespace(i: usize) -> String {
    format!("bench-hr-{i}")
}

/// Runs `create` for 0..count, [`CREATE_CONCURRENCY`] at a time.
async fn for_each<F, Fut>(count: usize, create: F) -> anyhow::Result<()>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let results: Vec<_> = futures::stream::iter(0..count)
        .map(create)
        .buffer_unordered(CREATE_CONCURRENCY)
        .collect()
        .await;
    results.into_iter().collect()
}

/// N HelmReleases of the podinfo-like chart: time until all are Ready, and the peak RSS.
pub async fn helm_releases(
    client: &kube::Client,
    count: usize,
    args: &Args,
    pid: Option<u32>,
    benchmarks: &Path,
) -> anyhow::Result<()> {
    let url = serve_repository().await?;
    println!("► creating {count} namespaces");
    let namespaces = dynamic(client, "", "v1", "Namespace", "");
    for_each(count, |i| {
        let namespaces = namespaces.clone();
        async move {
            apply(
                &namespaces,
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace(i)}}),
            )
            .await
        }
    })
    .await?;
    println!("► creating the HelmRepository ({url}) and {count} HelmReleases");
    let t0 = Instant::now();
    apply(
        &dynamic(
            client,
            ferroflux_api::source::GROUP,
            "v1",
            "HelmRepository",
            REPOSITORY_NAMESPACE,
        ),
        json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "HelmRepository",
            "metadata": {"name": "podinfo", "namespace": REPOSITORY_NAMESPACE},
            "spec": {"interval": "1h", "url": url}}),
    )
    .await?;
    for_each(count, |i| async move {
        let ns = namespace(i);
        apply(
            &dynamic(client, ferroflux_api::helm::GROUP, "v2", "HelmRelease", &ns),
            json!({"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
                "metadata": {"name": "podinfo", "namespace": ns},
                "spec": {"interval": "1h", "chart": {"spec": {
                    "chart": "podinfo", "version": "6.5.0",
                    "sourceRef": {"kind": "HelmRepository", "name": "podinfo",
                        "namespace": REPOSITORY_NAMESPACE}}},
                    "values": {"podAnnotations": {"bench": format!("hr-{i}")}}}}),
        )
        .await
    })
    .await?;
    println!("◎ waiting for {count} HelmReleases to be Ready");
    let all = dynamic(client, ferroflux_api::helm::GROUP, "v2", "HelmRelease", "");
    let ready = |hr: &DynamicObject| {
        hr.metadata
            .namespace
            .as_deref()
            .is_some_and(|n| n.starts_with("bench-hr-"))
            && hr.data["status"]["conditions"]
                .as_array()
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
    };
    wait_for(&all, ready, count, "HelmReleases Ready", t0, args.timeout).await?;
    let wall = t0.elapsed().as_secs_f64();
    crate::report("helmreleases", count, wall, pid.and_then(usage), benchmarks)
}
