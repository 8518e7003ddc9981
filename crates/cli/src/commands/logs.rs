//! `ferroflux logs`: the Flux controllers' log lines as `flux logs` prints them
//! (`TS LEVEL Kind/name.namespace - message error`), filtered by `--kind`, `--name`, `--level`
//! and namespace (`-n`, `-A`). On a cluster the lines come from the pods of the Deployments
//! labelled `app.kubernetes.io/part-of=flux` in `--flux-namespace`; `ferroflux up` runs its
//! controllers in one process without pods, so there they come from the JSON log file `up`
//! writes beside its kubeconfig (`<data-dir>/controllers.log`), or `--log-file`.

use std::collections::BTreeMap;
use std::io::Seek as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use futures::{AsyncBufReadExt as _, TryStreamExt as _};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, LogParams};
use serde_json::Value;

use super::cluster::ClusterArgs;

/// The log file of `ferroflux up`'s in-process controllers, relative to its data directory.
pub const UP_LOG_FILE: &str = "controllers.log";
/// How long a log line may be; longer ones are cut (a controller's line is far shorter).
const MAX_LINE: usize = 64 * 1024;

/// Display formatted logs for Flux components.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Displays logs for objects across all namespaces.
    #[arg(short = 'A', long)]
    all_namespaces: bool,
    /// The namespace where the Flux components are running.
    #[arg(long, default_value = "flux-system")]
    flux_namespace: String,
    /// Specifies if the logs should be streamed.
    #[arg(short = 'f', long)]
    follow: bool,
    /// Displays errors of a particular toolkit kind e.g GitRepository.
    #[arg(long)]
    kind: Option<String>,
    /// Log level: debug, info or error.
    #[arg(long, value_parser = ["debug", "info", "error"])]
    level: Option<String>,
    /// Specifies the name of the object logs to be displayed.
    #[arg(long)]
    name: Option<String>,
    /// Only return logs newer than a relative duration like 5s, 2m, or 3h.
    #[arg(long)]
    since: Option<String>,
    /// Lines of recent log file to display (-1: all).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    tail: i64,
    /// The JSON log file of `ferroflux up` (default: `controllers.log` in up's data directory,
    /// found from the kubeconfig it wrote).
    #[arg(long)]
    log_file: Option<PathBuf>,
    #[command(flatten)]
    cluster: ClusterArgs,
}

/// One log line in flux's fields.
#[derive(Debug, Default, PartialEq)]
struct Entry {
    timestamp: String,
    level: String,
    message: String,
    error: String,
    kind: String,
    controller_kind: String,
    name: String,
    namespace: String,
}

impl Entry {
    /// A JSON log line: controller-runtime's (`ts`, `msg`, `reconciler kind`, ...) or
    /// tracing-subscriber's (`timestamp`, `fields.message`, fields and span fields).
    fn parse(line: &str) -> Option<Entry> {
        let value: Value = serde_json::from_str(line).ok()?;
        let field = |keys: &[&str]| -> String {
            for key in keys {
                for place in [&value, &value["fields"], &value["span"]] {
                    match &place[*key] {
                        Value::String(s) => return s.clone(),
                        Value::Number(n) => return n.to_string(),
                        _ => {}
                    }
                }
            }
            String::new()
        };
        Some(Entry {
            timestamp: field(&["ts", "timestamp"]),
            level: field(&["level"]).to_ascii_lowercase(),
            message: field(&["msg", "message"]),
            error: field(&["error"]),
            kind: field(&["reconciler kind", "kind"]),
            controller_kind: field(&["controllerKind", "controller"]),
            name: field(&["name"]),
            namespace: field(&["namespace"]),
        })
    }

    /// flux's `logTmpl`.
    fn render(&self) -> String {
        let kind = if self.kind.is_empty() {
            &self.controller_kind
        } else {
            &self.kind
        };
        let object = if self.name.is_empty() {
            String::new()
        } else {
            format!("/{}.{}", self.name, self.namespace)
        };
        format!(
            "{} {} {kind}{object} - {} {}\n",
            self.timestamp, self.level, self.message, self.error
        )
    }
}

/// flux's `filterPrintLog`.
fn selected(args: &LogsArgs, entry: &Entry) -> bool {
    args.level.as_deref().is_none_or(|l| l == entry.level)
        && args.kind.as_deref().is_none_or(|k| {
            k.eq_ignore_ascii_case(&entry.kind) || k.eq_ignore_ascii_case(&entry.controller_kind)
        })
        && args
            .name
            .as_deref()
            .is_none_or(|n| n.eq_ignore_ascii_case(&entry.name))
        && (args.all_namespaces
            || args
                .cluster
                .namespace
                .eq_ignore_ascii_case(&entry.namespace))
}

/// Prints the selected entries of `lines` (non-JSON lines skipped, as flux skips them).
fn print_lines(args: &LogsArgs, lines: &str) -> anyhow::Result<()> {
    for line in lines.lines() {
        if !line.starts_with('{') {
            continue;
        }
        if let Some(entry) = Entry::parse(line).filter(|e| selected(args, e)) {
            out!("{}", entry.render())?;
        }
    }
    Ok(())
}

pub fn run(args: LogsArgs) -> anyhow::Result<ExitCode> {
    let timeout = args.cluster.timeout()?;
    let since = args
        .since
        .as_deref()
        .map(ferroflux_gocompat::duration::parse_std)
        .transpose()
        .map_err(|e| anyhow::anyhow!("invalid argument for --since: {e}"))?;
    super::cluster::block_on(timeout, async {
        let client = args.cluster.client().await?;
        let pods = flux_pods(&client, &args.flux_namespace).await?;
        if pods.is_empty() {
            let Some(file) = up_log_file(&args) else {
                bail!("no Flux pods found in namespace {:?}", args.flux_namespace);
            };
            return file_logs(&args, &file).await;
        }
        let api: Api<Pod> = Api::namespaced(client, &args.flux_namespace);
        let mut failed = false;
        for (pod, container) in pods {
            let params = LogParams {
                follow: args.follow,
                tail_lines: (args.tail > -1).then_some(args.tail),
                since_seconds: since.map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
                container,
                ..LogParams::default()
            };
            if let Err(err) = pod_logs(&args, &api, &pod, &params).await {
                if err.chain().any(|c| c.is::<crate::StdoutError>()) {
                    return Err(err);
                }
                eprintln!("failed getting logs: {err:#}");
                failed = true;
            }
        }
        if failed {
            bail!("failed to collect logs from all Flux pods");
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// One pod per Flux Deployment (a running one first), with the container to read when the pod
/// has several (flux reads `manager`).
async fn flux_pods(
    client: &kube::Client,
    namespace: &str,
) -> anyhow::Result<Vec<(String, Option<String>)>> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let selector = ListParams::default().labels("app.kubernetes.io/part-of=flux");
    let mut found = Vec::new();
    for deployment in deployments.list(&selector).await?.items {
        let labels: BTreeMap<String, String> = deployment
            .spec
            .and_then(|s| s.template.metadata)
            .and_then(|m| m.labels)
            .unwrap_or_default();
        if labels.is_empty() {
            continue;
        }
        let selector: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut listed = pods
            .list(&ListParams::default().labels(&selector.join(",")))
            .await?
            .items;
        listed.sort_by_key(|p| {
            p.status.as_ref().and_then(|s| s.phase.clone()).as_deref() != Some("Running")
        });
        if let Some(pod) = listed.into_iter().next() {
            let containers = pod.spec.as_ref().map_or(0, |s| s.containers.len());
            let container = (containers > 1).then(|| "manager".to_string());
            found.push((pod.metadata.name.unwrap_or_default(), container));
        }
    }
    Ok(found)
}

async fn pod_logs(
    args: &LogsArgs,
    api: &Api<Pod>,
    pod: &str,
    params: &LogParams,
) -> anyhow::Result<()> {
    let mut lines = api.log_stream(pod, params).await?.lines();
    while let Some(line) = lines.try_next().await? {
        print_lines(args, &line)?;
    }
    Ok(())
}

/// `--log-file`, else `controllers.log` in the data directory of the `up` whose kubeconfig
/// (`<data-dir>/apiserver/kubeconfig`) is used.
fn up_log_file(args: &LogsArgs) -> Option<PathBuf> {
    if let Some(file) = &args.log_file {
        return Some(file.clone());
    }
    let kubeconfig = args
        .cluster
        .kubeconfig
        .clone()
        .or_else(|| std::env::var_os("KUBECONFIG").map(PathBuf::from))?;
    let data_dir = kubeconfig.parent()?.parent()?;
    Some(data_dir.join(UP_LOG_FILE)).filter(|f| f.is_file())
}

/// The log file's lines (the last `--tail`), then with `--follow` what is appended to it.
async fn file_logs(args: &LogsArgs, file: &Path) -> anyhow::Result<ExitCode> {
    let mut reader = std::io::BufReader::new(
        std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?,
    );
    let mut lines = Vec::new();
    read_lines(&mut reader, &mut lines)?;
    let skip = match usize::try_from(args.tail) {
        Ok(tail) => lines.len().saturating_sub(tail),
        Err(_) => 0,
    };
    for line in &lines[skip..] {
        print_lines(args, line)?;
    }
    if !args.follow {
        return Ok(ExitCode::SUCCESS);
    }
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut more = Vec::new();
        let position = reader.stream_position()?;
        read_lines(&mut reader, &mut more)?;
        if more.is_empty() {
            reader.seek(std::io::SeekFrom::Start(position))?;
        }
        for line in &more {
            print_lines(args, line)?;
        }
    }
}

/// Reads the complete lines left in `reader`, each cut to [`MAX_LINE`] bytes.
fn read_lines(reader: &mut impl std::io::BufRead, lines: &mut Vec<String>) -> anyhow::Result<()> {
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        let read = reader.read_until(b'\n', &mut buffer)?;
        if read == 0 || buffer.last() != Some(&b'\n') {
            return Ok(());
        }
        buffer.truncate(MAX_LINE);
        lines.push(String::from_utf8_lossy(&buffer).trim_end().to_string());
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        logs: LogsArgs,
    }

    #[test]
    fn controller_runtime_lines_print_like_flux() {
        let line = r#"{"level":"error","ts":"2026-12-07T19:14:36.123Z","msg":"Reconciler error","controller":"kustomization","controllerGroup":"kustomize.toolkit.fluxcd.io","controllerKind":"Kustomization","name":"apps","namespace":"flux-system","reconcileID":"x","error":"boom"}"#;
        let entry = Entry::parse(line);
        assert_eq!(
            entry.as_ref().map(Entry::render).as_deref(),
            Some(
                "2026-12-07T19:14:36.123Z error Kustomization/apps.flux-system - Reconciler error boom\n"
            )
        );
        let args = Cli::parse_from(["x", "--kind", "kustomization", "--level", "error"]).logs;
        assert!(entry.as_ref().is_some_and(|e| selected(&args, e)));
        let args = Cli::parse_from(["x", "--name", "other"]).logs;
        assert!(!entry.as_ref().is_some_and(|e| selected(&args, e)));
        let args = Cli::parse_from(["x", "-n", "team-a"]).logs;
        assert!(!entry.as_ref().is_some_and(|e| selected(&args, e)));
    }

    #[test]
    fn tracing_lines_are_read_too() {
        let line = r#"{"timestamp":"2026-12-07T19:14:36.123456Z","level":"INFO","fields":{"message":"applied","kind":"Kustomization","name":"apps","namespace":"flux-system"},"target":"ferroflux_controllers"}"#;
        let entry = Entry::parse(line).unwrap_or_default();
        assert_eq!(entry.level, "info");
        assert_eq!(entry.message, "applied");
        assert_eq!(
            entry.render(),
            "2026-12-07T19:14:36.123456Z info Kustomization/apps.flux-system - applied \n"
        );
    }
}
